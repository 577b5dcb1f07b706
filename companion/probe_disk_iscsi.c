/* probe_disk_iscsi.c - what a host sees through an iscsi:// URL (libiscsi,
 * synchronous API): target, LUN, the logical unit's NAA designator (SPC-4
 * 7.8.6.1, VPD page 0x83), unit serial number (SPC-4 7.8.16, VPD 0x80),
 * capacity and block size (SBC-3 5.16, READ CAPACITY 16), and a content
 * fingerprint read with READ(16). */
#include "companion/probe.h"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ISCSI_PROBE_TIMEOUT_S 20

static void hexs(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Copies a space-padded ASCII field, trimming padding and non-printables. */
static char *ascii_field(const unsigned char *p, size_t n)
{
	char buf[256];
	size_t k = 0;
	for (size_t i = 0; i < n && k < sizeof(buf) - 1; i++)
		if (p[i] >= 0x20 && p[i] < 0x7f)
			buf[k++] = (char)p[i];
	buf[k] = '\0';
	char *s = buf;
	while (*s == ' ')
		s++;
	while (k && buf[k - 1] == ' ')
		buf[--k] = '\0';
	return xstrdup(s);
}

static bool task_ok(struct scsi_task *t)
{
	return t && t->status == SCSI_STATUS_GOOD;
}

/* VPD 0x83: walk the designation descriptors (SPC-4 7.8.6.1, each a 4-byte
 * header plus DESIGNATOR LENGTH bytes), taking the first NAA designator
 * (type 3) whose ASSOCIATION is 0 (the logical unit itself, not the port or
 * target).  If there is none, fall back to an EUI-64 (2) or T10 (1) one,
 * prefixed with its type so it never compares equal to an NAA. */
static void parse_vpd83(struct probe_disk *d, const unsigned char *p, size_t n)
{
	if (n < 4 || p[1] != 0x83)
		return;
	size_t page = (size_t)p[2] << 8 | p[3];
	size_t end = 4 + page < n ? 4 + page : n;
	char best[2 * 255 + 16] = "";
	int best_rank = 0;
	for (size_t off = 4; off + 4 <= end;) {
		unsigned assoc = (p[off + 1] >> 4) & 3, type = p[off + 1] & 0xf;
		size_t len = p[off + 3];
		if (off + 4 + len > end)
			break; /* truncated descriptor: ignore the rest */
		int rank = 0;
		if (assoc == 0)
			rank = type == 3 ? 3 : type == 2 ? 2 : type == 1 ? 1 : 0;
		if (rank > best_rank && len > 0) {
			char h[2 * 255 + 1];
			hexs(p + off + 4, len, h);
			if (type == 3)
				snprintf(best, sizeof(best), "%s", h);
			else if (type == 2)
				snprintf(best, sizeof(best), "eui:%s", h);
			else
				snprintf(best, sizeof(best), "t10:%s", h);
			best_rank = rank;
		}
		off += 4 + len;
	}
	if (best_rank)
		d->naa = xstrdup(best);
}

struct iscsi_rd {
	struct iscsi_context *ic;
	int lun;
	uint32_t bs;
	unsigned char *buf;
	size_t cap;
};

/* Reads [off, off+len) as whole logical blocks with READ(16) and copies
 * the slice out, so the sample plan need not be block aligned. */
static int iscsi_rd(void *ctx, void *out, uint32_t len, uint64_t off, char *err, size_t errlen)
{
	struct iscsi_rd *r = ctx;
	uint64_t lba = off / r->bs;
	uint64_t end = off + len;
	uint64_t nblk = (end + r->bs - 1) / r->bs - lba;
	size_t bytes = (size_t)(nblk * r->bs);
	if (bytes > r->cap) {
		unsigned char *nb = realloc(r->buf, bytes);
		if (!nb) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->buf = nb;
		r->cap = bytes;
	}
	struct scsi_task *t = iscsi_read16_sync(r->ic, r->lun, lba, (uint32_t)bytes, (int)r->bs, 0, 0, 0, 0, 0);
	if (!task_ok(t) || t->datain.size < 0 || (size_t)t->datain.size < bytes || !t->datain.data) {
		snprintf(err, errlen, "READ(16) lba %llu x %llu: %s", (unsigned long long)lba,
			 (unsigned long long)nblk, t ? iscsi_get_error(r->ic) : "no task");
		if (t)
			scsi_free_scsi_task(t);
		return -1;
	}
	memcpy(r->buf, t->datain.data, bytes);
	scsi_free_scsi_task(t);
	memcpy(out, r->buf + (off - lba * r->bs), len);
	return 0;
}

int probe_disk_iscsi(struct probe_disk *d, const char *initiator_name)
{
	char iname[256];
	if (!initiator_name || !*initiator_name) {
		/* RFC 3722: an iSCSI name is lower case letters, digits, '-', '.'
		 * and ':'; map the host name into that alphabet. */
		char hn[128] = "host";
		gethostname(hn, sizeof(hn) - 1);
		hn[sizeof(hn) - 1] = '\0';
		for (char *p = hn; *p; p++) {
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
			else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
				*p = '-';
		}
		snprintf(iname, sizeof(iname), "iqn.2026-11.io.ringstor:migrate-probe.%s", hn);
		initiator_name = iname;
	}
	struct iscsi_context *ic = iscsi_create_context(initiator_name);
	if (!ic) {
		set_error(&d->error, "cannot create an iSCSI context");
		return -1;
	}
	int ret = -1;
	struct iscsi_url *u = iscsi_parse_full_url(ic, d->spec);
	if (!u) {
		set_error(&d->error, "bad iSCSI URL %s: %s", d->spec, iscsi_get_error(ic));
		goto out;
	}
	d->portal = xstrdup(u->portal);
	d->target = xstrdup(u->target);
	d->lun = u->lun;
	iscsi_set_session_type(ic, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(ic, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_timeout(ic, ISCSI_PROBE_TIMEOUT_S);
	if (iscsi_set_targetname(ic, u->target) != 0 ||
	    iscsi_full_connect_sync(ic, u->portal, u->lun) != 0) {
		set_error(&d->error, "iSCSI login to %s at %s (LUN %d) failed: %s", u->target, u->portal, u->lun,
			  iscsi_get_error(ic));
		goto out;
	}

	/* Standard INQUIRY (SPC-4 6.6.2): vendor 8..15, product 16..31. */
	struct scsi_task *t = iscsi_inquiry_sync(ic, u->lun, 0, 0, 255);
	if (task_ok(t) && t->datain.size >= 32) {
		d->vendor = ascii_field(t->datain.data + 8, 8);
		d->product = ascii_field(t->datain.data + 16, 16);
	}
	if (t)
		scsi_free_scsi_task(t);

	t = iscsi_inquiry_sync(ic, u->lun, 1, SCSI_INQUIRY_PAGECODE_UNIT_SERIAL_NUMBER, 255);
	if (task_ok(t) && t->datain.size >= 4 && t->datain.data[1] == 0x80) {
		size_t n = t->datain.data[3];
		if (n > (size_t)t->datain.size - 4)
			n = (size_t)t->datain.size - 4;
		d->serial = ascii_field(t->datain.data + 4, n);
	}
	if (t)
		scsi_free_scsi_task(t);

	t = iscsi_inquiry_sync(ic, u->lun, 1, SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, 1024);
	if (task_ok(t) && t->datain.size > 0)
		parse_vpd83(d, t->datain.data, (size_t)t->datain.size);
	if (t)
		scsi_free_scsi_task(t);
	if (!d->naa && !d->serial) {
		set_error(&d->error, "%s: the LUN reports neither a VPD 0x83 designator nor a unit serial number",
			  d->spec);
		goto out;
	}

	/* READ CAPACITY(16) parameter data: RETURNED LOGICAL BLOCK ADDRESS
	 * (the last LBA, bytes 0..7) and LOGICAL BLOCK LENGTH (bytes 8..11). */
	t = iscsi_readcapacity16_sync(ic, u->lun);
	if (!task_ok(t) || t->datain.size < 12) {
		set_error(&d->error, "READ CAPACITY(16) on %s failed: %s", d->spec, iscsi_get_error(ic));
		if (t)
			scsi_free_scsi_task(t);
		goto out;
	}
	const unsigned char *rc = t->datain.data;
	uint64_t last = 0;
	for (int i = 0; i < 8; i++)
		last = last << 8 | rc[i];
	uint32_t bl = (uint32_t)rc[8] << 24 | (uint32_t)rc[9] << 16 | (uint32_t)rc[10] << 8 | rc[11];
	scsi_free_scsi_task(t);
	if (bl < 512 || bl > (1u << 20) || (bl & (bl - 1)) || last == UINT64_MAX ||
	    last + 1 > UINT64_MAX / bl) {
		set_error(&d->error, "%s: implausible capacity (last LBA %llu, block %u)", d->spec,
			  (unsigned long long)last, bl);
		goto out;
	}
	d->block_size = bl;
	d->size = (last + 1) * bl;

	char err[512];
	struct iscsi_rd r = { .ic = ic, .lun = u->lun, .bs = bl };
	ret = fingerprint_compute(d->size, iscsi_rd, &r, &d->fp, err, sizeof(err));
	free(r.buf);
	if (ret < 0)
		set_error(&d->error, "fingerprint of %s: %s", d->spec, err);
	iscsi_logout_sync(ic);
out:
	if (u)
		iscsi_destroy_url(u);
	iscsi_destroy_context(ic);
	return ret;
}
