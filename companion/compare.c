/* compare.c - see compare.h.  Every rule says *why* in its reason: the
 * operator must be able to act on a FAIL without reading the probes. */
#include "companion/compare.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void check_add(struct check_list *l, enum check_status st, const char *name, const char *fmt, ...)
{
	struct check *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		fputs("ringstor-migrate: out of memory\n", stderr);
		abort();
	}
	l->v = nv;
	char *reason = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&reason, fmt, ap) < 0)
		reason = NULL;
	va_end(ap);
	nv[l->n++] = (struct check){ st, xstrdup(name), reason ? reason : xstrdup("(out of memory)") };
}

const char *check_status_name(enum check_status st)
{
	return st == CHECK_PASS ? "PASS" : st == CHECK_WARN ? "WARN" : "FAIL";
}

const struct check *check_find(const struct check_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

int check_list_exit_code(const struct check_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].status == CHECK_FAIL)
			return 1;
	return 0;
}

void check_list_free(struct check_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].reason);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

char *check_list_text(const struct check_list *l)
{
	struct strbuf sb = {0};
	sb_append(&sb, "", 0);
	for (size_t i = 0; i < l->n; i++)
		sb_printf(&sb, "%s %s: %s\n", check_status_name(l->v[i].status), l->v[i].name, l->v[i].reason);
	if (sb.oom) {
		sb_free(&sb);
		return NULL;
	}
	return sb.buf;
}

char *check_list_json(const struct check_list *l, const char *source, const char *dest)
{
	struct json_writer w;
	jw_init(&w);
	jw_begin_object(&w, NULL);
	jw_string(&w, "result", check_list_exit_code(l) ? "FAIL" : "PASS");
	jw_string(&w, "source", source);
	jw_string(&w, "dest", dest);
	jw_begin_array(&w, "checks");
	for (size_t i = 0; i < l->n; i++) {
		jw_begin_object(&w, NULL);
		jw_string(&w, "status", check_status_name(l->v[i].status));
		jw_string(&w, "check", l->v[i].name);
		jw_string(&w, "reason", l->v[i].reason);
		jw_end_object(&w);
	}
	jw_end_array(&w);
	jw_end_object(&w);
	return jw_finish(&w);
}

/* ------------------------------------------------------------------ rules */

static const char *s_(const char *s)
{
	return s && *s ? s : "?";
}

static bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* File systems whose files are the same object on every host that mounts
 * them: st_dev is a per-host number there, the inode is the server's. */
static bool shared_fs(const char *fstype)
{
	static const char *const t[] = { "nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "fuse.glusterfs",
					 "gfs2", "ocfs2", "lustre", "beegfs", "gpfs", "fuse.sshfs", "9p", "virtiofs" };
	if (!fstype)
		return false;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(fstype, t[i]) == 0)
			return true;
	return false;
}

static void name_idx(char *buf, size_t len, const char *what, size_t i)
{
	snprintf(buf, len, "%s[%zu]", what, i);
}

/* Returns true if the identity check PASSed (used to judge fingerprints). */
static bool check_identity(struct check_list *l, const char *nm, const struct probe_host *src,
			   const struct probe_host *dst, const struct probe_disk *a, const struct probe_disk *b)
{
	switch (a->kind) {
	case DISK_ISCSI: {
		/* SPC-4 7.8.6: the NAA designator with LU association names the
		 * logical unit itself, whatever path (portal, target) reaches it. */
		bool have_naa = a->naa && b->naa;
		bool have_serial = a->serial && b->serial;
		if (!have_naa && !have_serial) {
			check_add(l, CHECK_FAIL, nm, "%s: no comparable identity (VPD 0x83 NAA or VPD 0x80 serial) "
				  "from both hosts", a->spec);
			return false;
		}
		if ((have_naa && !streq(a->naa, b->naa)) || (have_serial && !streq(a->serial, b->serial))) {
			check_add(l, CHECK_FAIL, nm, "%s: different logical units: source sees NAA %s serial %s, "
				  "destination sees NAA %s serial %s", a->spec, s_(a->naa), s_(a->serial), s_(b->naa),
				  s_(b->serial));
			return false;
		}
		check_add(l, CHECK_PASS, nm, "%s: same logical unit (NAA %s, serial %s, %s LUN %d)", a->spec,
			  s_(a->naa), s_(a->serial), s_(a->target), a->lun);
		return true;
	}
	case DISK_NFS:
		/* RFC 1813 2.3.3/2.5: the fileid and the file handle are assigned
		 * by the server; equal values mean the same file on the same server. */
		if (a->fileid != b->fileid) {
			check_add(l, CHECK_FAIL, nm, "%s: different files: source sees fileid %" PRIu64
				  ", destination sees fileid %" PRIu64 " (a different server behind %s?)", a->spec,
				  a->fileid, b->fileid, s_(a->server));
			return false;
		}
		if (a->fh && b->fh && strcmp(a->fh, b->fh) != 0) {
			check_add(l, CHECK_FAIL, nm, "%s: same fileid %" PRIu64 " but different file handles (source %s, "
				  "destination %s): not provably the same server", a->spec, a->fileid, a->fh, b->fh);
			return false;
		}
		if (!a->fh || !b->fh) {
			check_add(l, CHECK_WARN, nm, "%s: same fileid %" PRIu64 "; file handle not available on %s",
				  a->spec, a->fileid, !a->fh ? "the source" : "the destination");
			return true;
		}
		check_add(l, CHECK_PASS, nm, "%s: same file on %s:%s (fileid %" PRIu64 ", same file handle)", a->spec,
			  s_(a->server), s_(a->export_path), a->fileid);
		return true;
	default:
		break;
	}
	/* local path */
	if (a->wwid || b->wwid) {
		if (!streq(a->wwid, b->wwid)) {
			check_add(l, CHECK_FAIL, nm, "%s: different block devices: source wwid %s, destination wwid %s",
				  a->spec, s_(a->wwid), s_(b->wwid));
			return false;
		}
		check_add(l, CHECK_PASS, nm, "%s: same block device (wwid %s)", a->spec, a->wwid);
		return true;
	}
	if (shared_fs(a->fstype) || shared_fs(b->fstype)) {
		if (!streq(a->fstype, b->fstype) || !streq(a->mount_source, b->mount_source)) {
			check_add(l, CHECK_FAIL, nm, "%s: different file systems: source %s (%s), destination %s (%s)",
				  a->spec, s_(a->mount_source), s_(a->fstype), s_(b->mount_source), s_(b->fstype));
			return false;
		}
		if (a->inode != b->inode) {
			check_add(l, CHECK_FAIL, nm, "%s: different files on %s: inode %" PRIu64 " vs %" PRIu64, a->spec,
				  s_(a->mount_source), a->inode, b->inode);
			return false;
		}
		check_add(l, CHECK_PASS, nm, "%s: same file on shared %s %s (inode %" PRIu64 ")", a->spec,
			  s_(a->fstype), s_(a->mount_source), a->inode);
		return true;
	}
	/* A local file system: device and inode numbers only mean "the same
	 * file" when both probes ran on the same running kernel. */
	if (!src->boot_id || !dst->boot_id || strcmp(src->boot_id, dst->boot_id) != 0) {
		check_add(l, CHECK_FAIL, nm, "%s: on a local file system (%s on %s) of two different machines: each "
			  "host sees its own copy, not shared storage", a->spec, s_(a->fstype), s_(a->mount_source));
		return false;
	}
	if (!streq(a->device, b->device) || a->inode != b->inode) {
		check_add(l, CHECK_FAIL, nm, "%s: different files: source dev %s inode %" PRIu64 ", destination dev %s "
			  "inode %" PRIu64, a->spec, s_(a->device), a->inode, s_(b->device), b->inode);
		return false;
	}
	check_add(l, CHECK_PASS, nm, "%s: same file (dev %s inode %" PRIu64 ", same machine)", a->spec, s_(a->device),
		  a->inode);
	return true;
}

/* Fingerprint verdict.  When the fingerprints differ and both disks have
 * the same identity, preflight probes again, one host after the other:
 * a2 is the source's second probe and b2 the destination's second one,
 * taken after the source's first (a) and before a2.  A sample equal in a
 * and a2 did not change during that whole interval (the storage is
 * shared, a write in between would show), so b2 must read it the same: a
 * difference there is real.  A sample that differs between a and a2 is
 * being written by the VM and says nothing about the storage.  The first
 * destination probe (b) ran at the same time as a, so it may have read a
 * sample before or after the source did: it is not compared sample by
 * sample with a stable source (that was a false FAIL with a VM that wrote
 * once between the two reads).  b2 NULL: b is taken as the destination
 * read between a and a2 (callers that probed in that order). */
static void check_fingerprint(struct check_list *l, const char *nm, bool same_identity, const struct probe_disk *a,
			      const struct probe_disk *b, const struct probe_disk *a2, const struct probe_disk *b2)
{
	if (!a->fp.valid || !b->fp.valid) {
		check_add(l, CHECK_FAIL, nm, "%s: no fingerprint from the %s", a->spec, !a->fp.valid ? "source" : "destination");
		return;
	}
	if (strcmp(a->fp.sha256, b->fp.sha256) == 0) {
		check_add(l, CHECK_PASS, nm, "%s: same sha256 %.16s... over %u samples", a->spec, a->fp.sha256, a->fp.sp.n);
		return;
	}
	uint64_t first = 0;
	unsigned nd = fingerprint_diff(&a->fp, &b->fp, &first);
	if (nd == UINT_MAX || strcmp(a->fp.plan, b->fp.plan) != 0) {
		check_add(l, CHECK_FAIL, nm, "%s: different sample plans (source \"%s\", destination \"%s\")", a->spec,
			  a->fp.plan, b->fp.plan);
		return;
	}
	unsigned n = a->fp.sp.n, changing = 0, stable_diff = 0;
	uint64_t first_stable = 0;
	bool have2 = same_identity && a2 && a2->fp.valid && fingerprint_diff(&a->fp, &a2->fp, NULL) != UINT_MAX;
	/* the destination read bracketed by the source's two */
	const struct probe_disk *bm = b;
	bool dst_again = have2 && b2 && b2->fp.valid && fingerprint_diff(&a->fp, &b2->fp, NULL) != UINT_MAX;
	if (dst_again)
		bm = b2;
	if (have2) {
		for (unsigned i = 0; i < n; i++) {
			if (strcmp(a->fp.sample[i], a2->fp.sample[i]) != 0) {
				changing++;
			} else if (strcmp(a->fp.sample[i], bm->fp.sample[i]) != 0) {
				if (!stable_diff++)
					first_stable = a->fp.sp.off[i];
			}
		}
	}
	if (have2 && stable_diff == 0 && changing == 0) {
		/* Nothing changed on the source across the second probes and
		 * the destination read the same: the first difference was a
		 * write that fell between the first two (concurrent) probes. */
		check_add(l, CHECK_PASS, nm, "%s: same content in all %u samples when probed again, one host after the "
			  "other (the VM wrote during the first probes)", a->spec, n);
		return;
	}
	if (have2 && stable_diff == 0 && changing < n) {
		check_add(l, CHECK_WARN, nm, "%s: %u of %u samples changed on the source between two probes (the VM is "
			  "writing); the destination matches the source in every stable sample", a->spec, changing, n);
		return;
	}
	if (have2 && stable_diff)
		check_add(l, CHECK_FAIL, nm, "%s: content differs in %u of %u samples that are stable on the source "
			  "(first at offset %" PRIu64 "): the destination sees other data", a->spec, stable_diff, n,
			  first_stable);
	else
		check_add(l, CHECK_FAIL, nm, "%s: content differs in %u of %u samples (first at offset %" PRIu64 "): "
			  "source sha256 %.16s..., destination %.16s...%s", a->spec, nd, n, first, a->fp.sha256,
			  b->fp.sha256, same_identity && !have2 ? " (if the VM is writing, pause it and re-run)" :
			  have2 ? " (every sample changed on the source between two probes: nothing to compare; pause "
				  "the VM and re-run)" : "");
}

static void check_disk(struct check_list *l, size_t i, const struct probe_host *src, const struct probe_host *dst,
		       const struct probe_disk *a, const struct probe_disk *b, const struct probe_disk *a2,
		       const struct probe_disk *b2)
{
	char nm[64];
	name_idx(nm, sizeof(nm), "path", i);
	if (!b) {
		check_add(l, CHECK_FAIL, nm, "%s: the destination's probe does not report this disk", a->spec);
		return;
	}
	if (a->error || b->error) {
		if (a->error)
			check_add(l, CHECK_FAIL, nm, "%s: the source cannot probe it: %s", a->spec, a->error);
		if (b->error)
			check_add(l, CHECK_FAIL, nm, "%s: the destination cannot probe it: %s", b->spec, b->error);
		return;
	}
	if (a->kind != b->kind) {
		check_add(l, CHECK_FAIL, nm, "source uses %s (%s), destination %s (%s)", a->spec, disk_kind_name(a->kind),
			  b->spec, disk_kind_name(b->kind));
		return;
	}
	if (strcmp(a->spec, b->spec) != 0)
		check_add(l, CHECK_FAIL, nm, "different paths: source %s, destination %s (the VM definition names one "
			  "path; both hosts must reach the image through it)", a->spec, b->spec);
	else if (a->kind == DISK_LOCAL && !streq(a->realpath, b->realpath))
		check_add(l, CHECK_WARN, nm, "%s resolves to %s on the source but %s on the destination", a->spec,
			  s_(a->realpath), s_(b->realpath));
	else
		check_add(l, CHECK_PASS, nm, "%s opens on both hosts", a->spec);

	name_idx(nm, sizeof(nm), "identity", i);
	bool same = check_identity(l, nm, src, dst, a, b);

	name_idx(nm, sizeof(nm), "size", i);
	if (a->size != b->size)
		check_add(l, CHECK_FAIL, nm, "%s: source sees %" PRIu64 " bytes, destination %" PRIu64, a->spec, a->size,
			  b->size);
	else
		check_add(l, CHECK_PASS, nm, "%s: %" PRIu64 " bytes on both", a->spec, a->size);

	name_idx(nm, sizeof(nm), "fingerprint", i);
	check_fingerprint(l, nm, same, a, b, a2, b2);
}

/* Disk i of a probe: by position when the spec matches or the host was
 * given its own paths, else by spec. */
static const struct probe_disk *pair_disk(const struct probe_host *h, const char *spec, size_t i, bool by_position)
{
	if (!h)
		return NULL;
	if (i < h->ndisks && (by_position || streq(h->disks[i].spec, spec)))
		return &h->disks[i];
	for (size_t k = 0; k < h->ndisks; k++)
		if (streq(h->disks[k].spec, spec))
			return &h->disks[k];
	return NULL;
}

bool compare_needs_second_source_probe(const struct probe_host *src, const struct probe_host *dst)
{
	bool by_pos = src->ndisks == dst->ndisks;
	for (size_t i = 0; i < src->ndisks; i++) {
		const struct probe_disk *a = &src->disks[i], *b = pair_disk(dst, a->spec, i, by_pos);
		if (!b || a->error || b->error || a->kind != b->kind || !a->fp.valid || !b->fp.valid ||
		    strcmp(a->fp.sha256, b->fp.sha256) == 0)
			continue;
		struct check_list scratch = {0};
		bool same = check_identity(&scratch, "x", src, dst, a, b);
		check_list_free(&scratch);
		if (same)
			return true;
	}
	return false;
}

static void list_missing(struct strbuf *sb, char *const *want, size_t nw, char *const *have, size_t nh, size_t *count)
{
	*count = 0;
	for (size_t i = 0; i < nw; i++)
		if (!strv_has(have, nh, want[i])) {
			if (*count < 24)
				sb_printf(sb, "%s%s", *count ? " " : "", want[i]);
			(*count)++;
		}
	if (*count > 24)
		sb_printf(sb, " (and %zu more)", *count - 24);
	if (!sb->buf)
		sb_append(sb, "", 0);
}

void compare_probes(const struct probe_host *src, const struct probe_host *dst, const struct vm_spec *vm,
		    const struct probe_host *dst_again, const struct probe_host *src_again, struct check_list *l)
{
	bool by_pos = src->ndisks == dst->ndisks;
	/* ---- disks */
	if (src->ndisks == 0)
		check_add(l, CHECK_WARN, "disks", "no VM disks given (use --disk, --domain-xml or --qemu-cmdline): "
			  "storage not verified");
	else
		check_add(l, CHECK_PASS, "disks", "%zu disk(s) to compare", src->ndisks);
	for (size_t i = 0; i < src->ndisks; i++) {
		const struct probe_disk *a = &src->disks[i];
		check_disk(l, i, src, dst, a, pair_disk(dst, a->spec, i, by_pos),
			   pair_disk(src_again, a->spec, i, src_again && src_again->ndisks == src->ndisks),
			   pair_disk(dst_again, a->spec, i, dst_again && dst_again->ndisks == src->ndisks));
	}

	/* ---- CPU */
	if (!src->arch || !dst->arch)
		check_add(l, CHECK_WARN, "arch", "CPU architecture unknown on the %s", !src->arch ? "source" : "destination");
	else if (strcmp(src->arch, dst->arch) != 0)
		check_add(l, CHECK_FAIL, "arch", "source is %s, destination is %s", src->arch, dst->arch);
	else
		check_add(l, CHECK_PASS, "arch", "%s on both", src->arch);

	struct strbuf miss = {0};
	size_t nmiss = 0;
	list_missing(&miss, src->cpu_flags, src->ncpu_flags, dst->cpu_flags, dst->ncpu_flags, &nmiss);
	if (src->ncpu_flags == 0)
		check_add(l, CHECK_WARN, "cpu", "the source reports no CPU flags: cannot compare");
	else if (nmiss)
		check_add(l, CHECK_FAIL, "cpu", "the destination CPU lacks %zu flag(s) the source has: %s", nmiss, miss.buf);
	else if (!streq(src->cpu_model, dst->cpu_model))
		check_add(l, CHECK_WARN, "cpu", "different CPU models (source \"%s\", destination \"%s\"); the "
			  "destination has all %zu source flags", s_(src->cpu_model), s_(dst->cpu_model), src->ncpu_flags);
	else
		check_add(l, CHECK_PASS, "cpu", "same model \"%s\", all %zu flags present", s_(src->cpu_model),
			  src->ncpu_flags);
	sb_free(&miss);

	/* ---- hypervisor */
	struct strbuf hv = {0};
	if (src->kvm && !dst->kvm)
		sb_puts(&hv, " /dev/kvm");
	if (src->xen && !dst->xen)
		sb_puts(&hv, " xen");
	if (src->libvirt && !dst->libvirt)
		sb_puts(&hv, " libvirt");
	if (src->qemu_version && !dst->qemu_version)
		sb_puts(&hv, " qemu");
	if (hv.len)
		check_add(l, CHECK_WARN, "hypervisor", "the destination lacks what the source has:%s", hv.buf);
	else if (src->qemu_version && dst->qemu_version && strcmp(src->qemu_version, dst->qemu_version) != 0)
		check_add(l, CHECK_WARN, "hypervisor", "different QEMU versions (source \"%s\", destination \"%s\")",
			  src->qemu_version, dst->qemu_version);
	else
		check_add(l, CHECK_PASS, "hypervisor", "destination: kvm=%s xen=%s libvirt=%s qemu=%s",
			  dst->kvm ? "yes" : "no", dst->xen ? "yes" : "no", dst->libvirt ? "yes" : "no",
			  dst->qemu_version ? "yes" : "no");
	sb_free(&hv);

	/* ---- memory */
	if (!dst->mem_known)
		check_add(l, CHECK_WARN, "memory", "the destination's available memory is unknown");
	else if (!vm || !vm->mem_known)
		check_add(l, CHECK_WARN, "memory", "the VM's memory size is unknown (no domain XML); the destination "
			  "has %" PRIu64 " MiB available", dst->mem_available_kib / 1024);
	else if (dst->mem_available_kib < vm->memory_kib)
		check_add(l, CHECK_FAIL, "memory", "the destination has %" PRIu64 " MiB available, the VM needs %" PRIu64
			  " MiB", dst->mem_available_kib / 1024, vm->memory_kib / 1024);
	else
		check_add(l, CHECK_PASS, "memory", "the destination has %" PRIu64 " MiB available, the VM needs %" PRIu64
			  " MiB", dst->mem_available_kib / 1024, vm->memory_kib / 1024);

	/* ---- bridges */
	struct strbuf bm = {0};
	size_t nb = 0;
	if (vm && vm->nbridges) {
		list_missing(&bm, vm->bridges, vm->nbridges, dst->bridges, dst->nbridges, &nb);
		if (nb)
			check_add(l, CHECK_FAIL, "bridges", "the destination lacks bridge(s) the VM uses: %s", bm.buf);
		else
			check_add(l, CHECK_PASS, "bridges", "the VM's bridge(s) exist on the destination");
	} else {
		list_missing(&bm, src->bridges, src->nbridges, dst->bridges, dst->nbridges, &nb);
		if (nb)
			check_add(l, CHECK_WARN, "bridges", "the destination lacks bridge(s) the source has: %s "
				  "(the VM's bridges are unknown without a domain XML)", bm.buf);
		else
			check_add(l, CHECK_PASS, "bridges", "%s", src->nbridges ? "every source bridge exists on the destination"
								    : "no bridges on the source");
	}
	sb_free(&bm);

	/* ---- subnets */
	struct strbuf common = {0};
	size_t ncommon = 0;
	for (size_t i = 0; i < src->naddrs; i++) {
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			dup |= streq(src->addrs[k].subnet, src->addrs[i].subnet);
		if (dup)
			continue;
		for (size_t j = 0; j < dst->naddrs; j++)
			if (streq(src->addrs[i].subnet, dst->addrs[j].subnet)) {
				sb_printf(&common, "%s%s", ncommon++ ? " " : "", src->addrs[i].subnet);
				break;
			}
	}
	if (!src->naddrs || !dst->naddrs)
		check_add(l, CHECK_WARN, "subnet", "no addresses reported by the %s", !src->naddrs ? "source" : "destination");
	else if (ncommon)
		check_add(l, CHECK_PASS, "subnet", "in common: %s", common.buf);
	else
		check_add(l, CHECK_FAIL, "subnet", "no IPv4/IPv6 subnet in common between the hosts: the VM's network "
			  "would not follow it");
	sb_free(&common);

	/* ---- lease (the appliance-side lease is issue 5 item 1) */
	check_add(l, CHECK_WARN, "lease", "lease check not available yet");

	/* anything we could not understand in the VM definition */
	for (size_t i = 0; vm && i < vm->nnotes; i++)
		check_add(l, CHECK_WARN, "vm", "%s", vm->notes[i]);
}
