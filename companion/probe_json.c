/* probe_json.c - the probe's wire format (JSON) and its text form.
 *
 * {"format": 1, "hostname", "boot_id", "arch",
 *  "cpu": {"model", "flags": [...]},
 *  "hypervisor": {"kvm", "xen", "libvirt", "qemu"},
 *  "memory": {"available_kib"},
 *  "bridges": [...],
 *  "addresses": [{"iface", "family", "address", "prefix", "subnet"}],
 *  "disks": [{"spec", "kind", "error", "size", "block_size",
 *             "iscsi": {...} | "nfs": {...} | "local": {...},
 *             "fingerprint": {"plan", "sha256", "samples": [[offset, length, hash], ...]}}]}
 */
#include "companion/probe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void disk_to_json(struct json_writer *w, const struct probe_disk *d)
{
	jw_begin_object(w, NULL);
	jw_string(w, "spec", d->spec);
	jw_string(w, "kind", disk_kind_name(d->kind));
	jw_string(w, "error", d->error);
	jw_u64(w, "size", d->size);
	jw_u64(w, "block_size", d->block_size);
	switch (d->kind) {
	case DISK_ISCSI:
		jw_begin_object(w, "iscsi");
		jw_string(w, "portal", d->portal);
		jw_string(w, "target", d->target);
		jw_i64(w, "lun", d->lun);
		jw_string(w, "naa", d->naa);
		jw_string(w, "serial", d->serial);
		jw_string(w, "vendor", d->vendor);
		jw_string(w, "product", d->product);
		jw_end_object(w);
		break;
	case DISK_NFS:
		jw_begin_object(w, "nfs");
		jw_string(w, "server", d->server);
		jw_string(w, "export", d->export_path);
		jw_string(w, "file", d->file);
		jw_string(w, "fh", d->fh);
		jw_u64(w, "fileid", d->fileid);
		jw_end_object(w);
		break;
	default:
		jw_begin_object(w, "local");
		jw_string(w, "realpath", d->realpath);
		jw_string(w, "device", d->device);
		jw_u64(w, "inode", d->inode);
		jw_string(w, "mount_source", d->mount_source);
		jw_string(w, "fstype", d->fstype);
		jw_string(w, "wwid", d->wwid);
		jw_end_object(w);
	}
	if (d->fp.valid) {
		jw_begin_object(w, "fingerprint");
		jw_string(w, "plan", d->fp.plan);
		jw_string(w, "sha256", d->fp.sha256);
		jw_begin_array(w, "samples");
		for (unsigned i = 0; i < d->fp.sp.n; i++) {
			jw_begin_array_compact(w, NULL);
			jw_u64(w, NULL, d->fp.sp.off[i]);
			jw_u64(w, NULL, d->fp.sp.len[i]);
			jw_string(w, NULL, d->fp.sample[i]);
			jw_end_array(w);
		}
		jw_end_array(w);
		jw_end_object(w);
	} else {
		jw_null(w, "fingerprint");
	}
	jw_end_object(w);
}

char *probe_to_json(const struct probe_host *h)
{
	struct json_writer w;
	jw_init(&w);
	jw_begin_object(&w, NULL);
	jw_i64(&w, "format", h->version ? h->version : PROBE_FORMAT_VERSION);
	jw_string(&w, "hostname", h->hostname);
	jw_string(&w, "boot_id", h->boot_id);
	jw_string(&w, "arch", h->arch);
	jw_begin_object(&w, "cpu");
	jw_string(&w, "model", h->cpu_model);
	jw_begin_array_compact(&w, "flags");
	for (size_t i = 0; i < h->ncpu_flags; i++)
		jw_string(&w, NULL, h->cpu_flags[i]);
	jw_end_array(&w);
	jw_end_object(&w);
	jw_begin_object(&w, "hypervisor");
	jw_bool(&w, "kvm", h->kvm);
	jw_bool(&w, "xen", h->xen);
	jw_bool(&w, "libvirt", h->libvirt);
	jw_string(&w, "qemu", h->qemu_version);
	jw_end_object(&w);
	jw_begin_object(&w, "memory");
	if (h->mem_known)
		jw_u64(&w, "available_kib", h->mem_available_kib);
	else
		jw_null(&w, "available_kib");
	jw_end_object(&w);
	jw_begin_array_compact(&w, "bridges");
	for (size_t i = 0; i < h->nbridges; i++)
		jw_string(&w, NULL, h->bridges[i]);
	jw_end_array(&w);
	jw_begin_array(&w, "addresses");
	for (size_t i = 0; i < h->naddrs; i++) {
		const struct probe_addr *a = &h->addrs[i];
		jw_begin_object(&w, NULL);
		jw_string(&w, "iface", a->iface);
		jw_i64(&w, "family", a->family);
		jw_string(&w, "address", a->address);
		jw_u64(&w, "prefix", a->prefix);
		jw_string(&w, "subnet", a->subnet);
		jw_end_object(&w);
	}
	jw_end_array(&w);
	jw_begin_array(&w, "disks");
	for (size_t i = 0; i < h->ndisks; i++)
		disk_to_json(&w, &h->disks[i]);
	jw_end_array(&w);
	jw_end_object(&w);
	return jw_finish(&w);
}

/* ---------------------------------------------------------------- parse */

static char *dup_str(const struct json_value *obj, const char *key)
{
	return xstrdup(json_str(json_get(obj, key)));
}

static int disk_from_json(struct probe_disk *d, const struct json_value *v, char *err, size_t errlen, size_t idx)
{
	if (!v || v->type != JSON_OBJECT) {
		snprintf(err, errlen, "disks[%zu] is not an object", idx);
		return -1;
	}
	d->spec = dup_str(v, "spec");
	if (!d->spec) {
		snprintf(err, errlen, "disks[%zu] has no spec", idx);
		return -1;
	}
	const char *kind = json_str(json_get(v, "kind"));
	d->kind = kind && strcmp(kind, "iscsi") == 0 ? DISK_ISCSI :
		  kind && strcmp(kind, "nfs") == 0 ? DISK_NFS : DISK_LOCAL;
	d->error = dup_str(v, "error");
	uint64_t u = 0;
	json_u64(json_get(v, "size"), &d->size);
	if (json_u64(json_get(v, "block_size"), &u) && u <= UINT32_MAX)
		d->block_size = (uint32_t)u;
	const struct json_value *o;
	if ((o = json_get(v, "iscsi"))) {
		d->portal = dup_str(o, "portal");
		d->target = dup_str(o, "target");
		int64_t lun = 0;
		if (json_i64(json_get(o, "lun"), &lun) && lun >= 0 && lun < 1 << 30)
			d->lun = (int)lun;
		d->naa = dup_str(o, "naa");
		d->serial = dup_str(o, "serial");
		d->vendor = dup_str(o, "vendor");
		d->product = dup_str(o, "product");
	}
	if ((o = json_get(v, "nfs"))) {
		d->server = dup_str(o, "server");
		d->export_path = dup_str(o, "export");
		d->file = dup_str(o, "file");
		d->fh = dup_str(o, "fh");
		json_u64(json_get(o, "fileid"), &d->fileid);
	}
	if ((o = json_get(v, "local"))) {
		d->realpath = dup_str(o, "realpath");
		d->device = dup_str(o, "device");
		json_u64(json_get(o, "inode"), &d->inode);
		d->mount_source = dup_str(o, "mount_source");
		d->fstype = dup_str(o, "fstype");
		d->wwid = dup_str(o, "wwid");
	}
	o = json_get(v, "fingerprint");
	if (o && o->type == JSON_OBJECT) {
		const char *plan = json_str(json_get(o, "plan"));
		const char *sha = json_str(json_get(o, "sha256"));
		const struct json_value *samples = json_get(o, "samples");
		if (!plan || !sha || strlen(sha) != 64 || !samples || samples->type != JSON_ARRAY ||
		    samples->n > FP_MAX_SAMPLES) {
			snprintf(err, errlen, "disks[%zu]: malformed fingerprint", idx);
			return -1;
		}
		snprintf(d->fp.plan, sizeof(d->fp.plan), "%s", plan);
		memcpy(d->fp.sha256, sha, 65);
		d->fp.sp.size = d->size;
		for (size_t i = 0; i < samples->n; i++) {
			const struct json_value *s = samples->items[i];
			uint64_t off, len;
			const char *hh = json_str(json_at(s, 2));
			if (json_len(s) != 3 || !json_u64(json_at(s, 0), &off) || !json_u64(json_at(s, 1), &len) ||
			    len > FP_SAMPLE_LEN || !hh || strlen(hh) != 16) {
				snprintf(err, errlen, "disks[%zu]: malformed fingerprint sample %zu", idx, i);
				return -1;
			}
			d->fp.sp.off[i] = off;
			d->fp.sp.len[i] = (uint32_t)len;
			memcpy(d->fp.sample[i], hh, 17);
		}
		d->fp.sp.n = (unsigned)samples->n;
		d->fp.valid = true;
	}
	return 0;
}

int probe_from_json(struct probe_host *h, const char *text, size_t len, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	char perr[128];
	struct json_value *root = json_parse(text, len, perr, sizeof(perr));
	if (!root) {
		snprintf(err, errlen, "not valid JSON (%s)", perr);
		return -1;
	}
	int ret = -1;
	int64_t ver = 0;
	if (root->type != JSON_OBJECT || !json_i64(json_get(root, "format"), &ver)) {
		snprintf(err, errlen, "not a ringstor-migrate probe (no \"format\")");
		goto out;
	}
	if (ver != PROBE_FORMAT_VERSION) {
		snprintf(err, errlen, "probe format %lld, this ringstor-migrate understands %d (version mismatch "
			 "between the hosts?)", (long long)ver, PROBE_FORMAT_VERSION);
		goto out;
	}
	h->version = (int)ver;
	h->hostname = dup_str(root, "hostname");
	h->boot_id = dup_str(root, "boot_id");
	h->arch = dup_str(root, "arch");
	const struct json_value *cpu = json_get(root, "cpu");
	h->cpu_model = dup_str(cpu, "model");
	const struct json_value *flags = json_get(cpu, "flags");
	for (size_t i = 0; i < json_len(flags); i++) {
		const char *f = json_str(json_at(flags, i));
		if (f)
			strv_push(&h->cpu_flags, &h->ncpu_flags, f);
	}
	const struct json_value *hv = json_get(root, "hypervisor");
	json_bool(json_get(hv, "kvm"), &h->kvm);
	json_bool(json_get(hv, "xen"), &h->xen);
	json_bool(json_get(hv, "libvirt"), &h->libvirt);
	h->qemu_version = dup_str(hv, "qemu");
	h->mem_known = json_u64(json_get(json_get(root, "memory"), "available_kib"), &h->mem_available_kib);
	const struct json_value *br = json_get(root, "bridges");
	for (size_t i = 0; i < json_len(br); i++) {
		const char *b = json_str(json_at(br, i));
		if (b)
			strv_push(&h->bridges, &h->nbridges, b);
	}
	const struct json_value *addrs = json_get(root, "addresses");
	if (json_len(addrs)) {
		h->addrs = calloc(json_len(addrs), sizeof(*h->addrs));
		if (!h->addrs) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < json_len(addrs); i++) {
			const struct json_value *a = json_at(addrs, i);
			int64_t fam = 0;
			uint64_t prefix = 0;
			const char *subnet = json_str(json_get(a, "subnet"));
			if (!subnet || !json_i64(json_get(a, "family"), &fam) || (fam != 4 && fam != 6) ||
			    !json_u64(json_get(a, "prefix"), &prefix) || prefix > 128)
				continue; /* an entry we cannot use is not fatal */
			struct probe_addr *pa = &h->addrs[h->naddrs++];
			pa->iface = dup_str(a, "iface");
			pa->family = (int)fam;
			pa->address = dup_str(a, "address");
			pa->prefix = (unsigned)prefix;
			pa->subnet = xstrdup(subnet);
		}
	}
	const struct json_value *disks = json_get(root, "disks");
	if (json_len(disks)) {
		h->disks = calloc(json_len(disks), sizeof(*h->disks));
		if (!h->disks) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < json_len(disks); i++) {
			h->ndisks++;
			if (disk_from_json(&h->disks[i], json_at(disks, i), err, errlen, i) < 0)
				goto out;
		}
	}
	ret = 0;
out:
	json_free(root);
	if (ret < 0)
		probe_host_free(h);
	return ret;
}

/* ---------------------------------------------------------------- text */

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

char *probe_to_text(const struct probe_host *h)
{
	struct strbuf sb = {0};
	sb_printf(&sb, "host:        %s (boot %s)\n", or_dash(h->hostname), or_dash(h->boot_id));
	sb_printf(&sb, "arch:        %s\n", or_dash(h->arch));
	sb_printf(&sb, "cpu model:   %s\n", or_dash(h->cpu_model));
	sb_printf(&sb, "cpu flags:   %zu:", h->ncpu_flags);
	for (size_t i = 0; i < h->ncpu_flags; i++)
		sb_printf(&sb, " %s", h->cpu_flags[i]);
	sb_puts(&sb, "\n");
	sb_printf(&sb, "hypervisor:  kvm=%s xen=%s libvirt=%s qemu=%s\n", h->kvm ? "yes" : "no",
		  h->xen ? "yes" : "no", h->libvirt ? "yes" : "no", or_dash(h->qemu_version));
	if (h->mem_known)
		sb_printf(&sb, "memory:      %" PRIu64 " MiB available\n", h->mem_available_kib / 1024);
	else
		sb_puts(&sb, "memory:      unknown\n");
	sb_puts(&sb, "bridges:    ");
	for (size_t i = 0; i < h->nbridges; i++)
		sb_printf(&sb, " %s", h->bridges[i]);
	sb_puts(&sb, h->nbridges ? "\n" : " none\n");
	for (size_t i = 0; i < h->naddrs; i++)
		sb_printf(&sb, "address:     %s %s/%u (subnet %s)\n", or_dash(h->addrs[i].iface),
			  or_dash(h->addrs[i].address), h->addrs[i].prefix, or_dash(h->addrs[i].subnet));
	for (size_t i = 0; i < h->ndisks; i++) {
		const struct probe_disk *d = &h->disks[i];
		sb_printf(&sb, "disk %zu:      %s (%s)\n", i, d->spec, disk_kind_name(d->kind));
		if (d->error)
			sb_printf(&sb, "  error:     %s\n", d->error);
		switch (d->kind) {
		case DISK_ISCSI:
			sb_printf(&sb, "  target:    %s LUN %d at %s\n", or_dash(d->target), d->lun, or_dash(d->portal));
			sb_printf(&sb, "  naa:       %s\n  serial:    %s\n  product:   %s %s\n", or_dash(d->naa),
				  or_dash(d->serial), or_dash(d->vendor), or_dash(d->product));
			break;
		case DISK_NFS:
			sb_printf(&sb, "  server:    %s export %s file %s\n", or_dash(d->server),
				  or_dash(d->export_path), or_dash(d->file));
			sb_printf(&sb, "  fileid:    %" PRIu64 "\n  fh:        %s\n", d->fileid, or_dash(d->fh));
			break;
		default:
			sb_printf(&sb, "  path:      %s\n  device:    %s inode %" PRIu64 "%s%s\n", or_dash(d->realpath),
				  or_dash(d->device), d->inode, d->wwid ? " wwid " : "", d->wwid ? d->wwid : "");
			sb_printf(&sb, "  mount:     %s (%s)\n", or_dash(d->mount_source), or_dash(d->fstype));
		}
		sb_printf(&sb, "  size:      %" PRIu64 " bytes, block %u\n", d->size, d->block_size);
		if (d->fp.valid) {
			sb_printf(&sb, "  sha256:    %s\n  plan:      %s\n  offsets:  ", d->fp.sha256, d->fp.plan);
			for (unsigned k = 0; k < d->fp.sp.n; k++)
				sb_printf(&sb, " %" PRIu64, d->fp.sp.off[k]);
			sb_puts(&sb, "\n");
		}
	}
	if (sb.oom) {
		sb_free(&sb);
		return NULL;
	}
	return sb.buf;
}
