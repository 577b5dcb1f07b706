/* probe_disk_nfs.c - what a host sees through an nfs:// URL (libnfs,
 * synchronous API, NFSv3 RFC 1813): server, export, the file's handle and
 * fileid (the server's inode number), its size, and a content fingerprint. */
#include "companion/probe.h"

#include <fcntl.h>
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NFS_PROBE_TIMEOUT_MS 20000
#define NFS3_FHSIZE 64 /* RFC 1813 2.4: an NFSv3 handle is at most 64 bytes */

/* libnfs hands out the handle of an open file only as the opaque
 * `struct nfs_fh *` of nfs_get_fh() (libnfs-raw.h).  Its layout, {int len;
 * char *val;}, has been stable since libnfs 1.x; mirror it and check the
 * length against the protocol bound before touching the bytes. */
struct libnfs_fh_layout {
	int len;
	char *val;
};

struct nfs_rd {
	struct nfs_context *nfs;
	struct nfsfh *fh;
};

static int nfs_rd(void *ctx, void *buf, uint32_t len, uint64_t off, char *err, size_t errlen)
{
	struct nfs_rd *r = ctx;
	uint32_t done = 0;
	while (done < len) {
		int n = nfs_pread(r->nfs, r->fh, off + done, len - done, (char *)buf + done);
		if (n < 0) {
			snprintf(err, errlen, "NFS READ at offset %llu: %s", (unsigned long long)(off + done),
				 nfs_get_error(r->nfs));
			return -1;
		}
		if (n == 0) {
			snprintf(err, errlen, "short NFS READ at offset %llu (file shrank?)",
				 (unsigned long long)(off + done));
			return -1;
		}
		done += (uint32_t)n;
	}
	return 0;
}

int probe_disk_nfs(struct probe_disk *d)
{
	struct nfs_context *nfs = nfs_init_context();
	if (!nfs) {
		set_error(&d->error, "cannot create an NFS context");
		return -1;
	}
	int ret = -1;
	struct nfsfh *fh = NULL;
	bool mounted = false;
	struct nfs_url *u = nfs_parse_url_full(nfs, d->spec);
	if (!u) {
		set_error(&d->error, "bad NFS URL %s: %s", d->spec, nfs_get_error(nfs));
		goto out;
	}
	nfs_set_timeout(nfs, NFS_PROBE_TIMEOUT_MS);
	d->server = xstrdup(u->server);
	d->export_path = xstrdup(u->path);
	d->file = xstrdup(u->file);
	if (nfs_mount(nfs, u->server, u->path) != 0) {
		set_error(&d->error, "NFS mount of %s:%s failed: %s", u->server, u->path, nfs_get_error(nfs));
		goto out;
	}
	mounted = true;
	struct nfs_stat_64 st;
	if (nfs_stat64(nfs, u->file, &st) != 0) {
		set_error(&d->error, "NFS GETATTR of %s on %s:%s failed: %s", u->file, u->server, u->path,
			  nfs_get_error(nfs));
		goto out;
	}
	d->fileid = st.nfs_ino;
	d->size = st.nfs_size;
	d->block_size = 512;
	if (nfs_open(nfs, u->file, O_RDONLY, &fh) != 0) {
		set_error(&d->error, "NFS open of %s on %s:%s failed: %s", u->file, u->server, u->path,
			  nfs_get_error(nfs));
		fh = NULL;
		goto out;
	}
	const struct libnfs_fh_layout *raw = (const void *)nfs_get_fh(fh);
	if (raw && raw->val && raw->len > 0 && raw->len <= NFS3_FHSIZE) {
		char h[2 * NFS3_FHSIZE + 1];
		static const char dg[] = "0123456789abcdef";
		for (int i = 0; i < raw->len; i++) {
			unsigned char c = (unsigned char)raw->val[i];
			h[2 * i] = dg[c >> 4];
			h[2 * i + 1] = dg[c & 15];
		}
		h[2 * raw->len] = '\0';
		d->fh = xstrdup(h);
	}
	char err[512];
	struct nfs_rd r = { nfs, fh };
	ret = fingerprint_compute(d->size, nfs_rd, &r, &d->fp, err, sizeof(err));
	if (ret < 0)
		set_error(&d->error, "fingerprint of %s: %s", d->spec, err);
out:
	if (fh)
		nfs_close(nfs, fh);
	if (mounted)
		nfs_umount(nfs);
	if (u)
		nfs_destroy_url(u);
	nfs_destroy_context(nfs);
	return ret;
}
