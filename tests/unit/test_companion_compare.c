/* test_companion_compare.c - the preflight rules (companion/compare.c),
 * table-driven: every check in PASS, WARN and FAIL; the output formats;
 * and how the remote probe command is built (companion/preflight.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "companion/compare.c"
#include "companion/domain.c"
#include "companion/fingerprint.c"
#include "companion/json.c"
#include "companion/preflight.c"
#include "companion/probe_host.c"
#include "companion/probe_json.c"
#include "companion/run.c"

#define IMG_SIZE (8u << 20)
static unsigned char img_a[IMG_SIZE], img_b[IMG_SIZE];

static void add_addr(struct probe_host *h, const char *iface, int fam, const char *addr, unsigned prefix)
{
	char net[64];
	assert_true(probe_subnet(fam, addr, prefix, net, sizeof(net)));
	h->addrs = realloc(h->addrs, (h->naddrs + 1) * sizeof(*h->addrs));
	h->addrs[h->naddrs++] = (struct probe_addr){ xstrdup(iface), fam, xstrdup(addr), prefix, xstrdup(net) };
}

static void add_disk(struct probe_host *h, enum disk_kind kind, const char *spec, const unsigned char *img)
{
	h->disks = realloc(h->disks, (h->ndisks + 1) * sizeof(*h->disks));
	struct probe_disk *d = &h->disks[h->ndisks++];
	memset(d, 0, sizeof(*d));
	d->spec = xstrdup(spec);
	d->kind = kind;
	d->size = IMG_SIZE;
	d->block_size = 512;
	switch (kind) {
	case DISK_ISCSI:
		d->portal = xstrdup("10.78.0.10:3260");
		d->target = xstrdup("iqn.2026-11.io.ringstor:test");
		d->lun = 1;
		d->naa = xstrdup("6525400a2870d5bcc61d612f4c2cffb8");
		d->serial = xstrdup("974cd96a2870d5bc");
		break;
	case DISK_NFS:
		d->server = xstrdup("10.78.0.10");
		d->export_path = xstrdup("/export");
		d->file = xstrdup("/vm.img");
		d->fh = xstrdup("0108000000aabbcc");
		d->fileid = 4242;
		break;
	default:
		d->realpath = xstrdup(spec);
		d->device = xstrdup("254:0");
		d->inode = 777;
		d->mount_source = xstrdup("/dev/vda");
		d->fstype = xstrdup("ext4");
	}
	assert_int_equal(fingerprint_buffer(img, IMG_SIZE, &d->fp), 0);
}

/* Two identical hosts (the same machine, by boot id) with one disk of each kind. */
static void base_host(struct probe_host *h)
{
	memset(h, 0, sizeof(*h));
	h->version = PROBE_FORMAT_VERSION;
	h->hostname = xstrdup("host");
	h->boot_id = xstrdup("boot-1");
	h->arch = xstrdup("x86_64");
	h->cpu_model = xstrdup("AMD EPYC 7763");
	static const char *const flags[] = { "fpu", "sse2", "avx2", "aes" };
	for (size_t i = 0; i < 4; i++)
		strv_push(&h->cpu_flags, &h->ncpu_flags, flags[i]);
	h->kvm = true;
	h->qemu_version = xstrdup("QEMU emulator version 7.2.0");
	h->mem_known = true;
	h->mem_available_kib = 4u << 20;
	strv_push(&h->bridges, &h->nbridges, "br0");
	add_addr(h, "veth0", 4, "10.77.0.1", 24);
	add_addr(h, "veth0", 6, "fd77::1", 64);
	add_disk(h, DISK_ISCSI, "iscsi://10.78.0.10:3260/iqn.2026-11.io.ringstor:test/1", img_a);
	add_disk(h, DISK_NFS, "nfs://10.78.0.10/export/vm.img", img_a);
	add_disk(h, DISK_LOCAL, "/var/lib/vm.img", img_a);
}

static void base_vm(struct vm_spec *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->name = xstrdup("vm1");
	vm->mem_known = true;
	vm->memory_kib = 1u << 20;
	strv_push(&vm->bridges, &vm->nbridges, "br0");
}

static void set_str(char **p, const char *v)
{
	free(*p);
	*p = xstrdup(v);
}

static void drop_strv(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0) {
			free((*v)[i]);
			memmove(&(*v)[i], &(*v)[i + 1], (*n - i - 1) * sizeof(char *));
			(*n)--;
			return;
		}
}

/* Each case mutates a fresh (src, dst, vm) triple. */
struct env {
	struct probe_host src, dst, src2, dst2;
	struct vm_spec vm;
	bool use_vm, use_src2, use_dst2;
};

typedef void (*mutate_fn)(struct env *e);

static void m_none(struct env *e) { (void)e; }
static void m_no_vm(struct env *e) { e->use_vm = false; }

/* disks */
static void m_no_disks(struct env *e)
{
	for (size_t i = 0; i < e->src.ndisks; i++)
		probe_disk_free(&e->src.disks[i]);
	e->src.ndisks = 0;
}
static void m_dst_error(struct env *e) { set_str(&e->dst.disks[0].error, "iSCSI login failed: no route"); }
static void m_src_error(struct env *e) { set_str(&e->src.disks[0].error, "open failed"); }
static void m_dst_missing_disks(struct env *e)
{
	for (size_t i = 0; i < e->dst.ndisks; i++)
		probe_disk_free(&e->dst.disks[i]);
	e->dst.ndisks = 0;
}
static void m_dst_other_url(struct env *e) { set_str(&e->dst.disks[0].spec, "iscsi://10.78.0.10:3260/iqn.2026-11.io.ringstor:test/2"); }
static void m_dst_other_kind(struct env *e) { e->dst.disks[2].kind = DISK_NFS; }
static void m_dst_realpath(struct env *e) { set_str(&e->dst.disks[2].realpath, "/srv/other.img"); }
/* identity */
static void m_iscsi_naa(struct env *e) { set_str(&e->dst.disks[0].naa, "6525400a2870dad50b6aaa4e140f7bb8"); }
static void m_iscsi_serial(struct env *e) { set_str(&e->dst.disks[0].serial, "974cdc6a2870dad5"); }
static void m_iscsi_no_ids(struct env *e)
{
	for (int k = 0; k < 2; k++) {
		struct probe_disk *d = k ? &e->dst.disks[0] : &e->src.disks[0];
		free(d->naa); d->naa = NULL;
		free(d->serial); d->serial = NULL;
	}
}
static void m_iscsi_serial_only(struct env *e)
{
	free(e->dst.disks[0].naa);
	e->dst.disks[0].naa = NULL;
}
static void m_nfs_fileid(struct env *e) { e->dst.disks[1].fileid = 4343; }
static void m_nfs_fh(struct env *e) { set_str(&e->dst.disks[1].fh, "0108000000ddeeff"); }
static void m_nfs_no_fh(struct env *e) { free(e->dst.disks[1].fh); e->dst.disks[1].fh = NULL; }
static void m_local_other_machine(struct env *e) { set_str(&e->dst.boot_id, "boot-2"); }
static void m_local_inode(struct env *e) { e->dst.disks[2].inode = 778; }
static void m_local_shared_fs(struct env *e)
{
	/* the same NFS-mounted file on two machines: st_dev differs, inode is the server's */
	set_str(&e->dst.boot_id, "boot-2");
	for (int k = 0; k < 2; k++) {
		struct probe_disk *d = k ? &e->dst.disks[2] : &e->src.disks[2];
		set_str(&d->fstype, "nfs4");
		set_str(&d->mount_source, "filer:/vms");
		set_str(&d->device, k ? "0:61" : "0:53");
	}
}
static void m_local_shared_fs_other_source(struct env *e)
{
	m_local_shared_fs(e);
	set_str(&e->dst.disks[2].mount_source, "filer2:/vms");
}
static void m_local_wwid_same(struct env *e)
{
	set_str(&e->dst.boot_id, "boot-2");
	set_str(&e->src.disks[2].wwid, "naa.6525400a2870d5bc");
	set_str(&e->dst.disks[2].wwid, "naa.6525400a2870d5bc");
}
static void m_local_wwid_differ(struct env *e)
{
	set_str(&e->src.disks[2].wwid, "naa.6525400a2870d5bc");
	set_str(&e->dst.disks[2].wwid, "naa.6525400a2870dad5");
}
/* size and fingerprint */
static void m_size(struct env *e) { e->dst.disks[0].size = IMG_SIZE * 2; }
static void m_content(struct env *e)
{
	/* a different LU with other content */
	m_iscsi_naa(e);
	assert_int_equal(fingerprint_buffer(img_b, IMG_SIZE, &e->dst.disks[0].fp), 0);
}
static void m_content_same_identity(struct env *e)
{
	/* same NAA, all content different (e.g. two appliances with one config) */
	assert_int_equal(fingerprint_buffer(img_b, IMG_SIZE, &e->dst.disks[0].fp), 0);
}
static void m_no_fingerprint(struct env *e) { e->dst.disks[1].fp.valid = false; }
static void m_plan_differs(struct env *e) { assert_int_equal(fingerprint_buffer(img_a, IMG_SIZE / 2, &e->dst.disks[0].fp), 0); }
/* A VM writing while we probe: sample 3 differs between the two source
 * probes, and the destination saw the in-between state. */
static void writer_common(struct env *e, bool stable_diff_too)
{
	static unsigned char img_c[IMG_SIZE];
	memcpy(img_c, img_a, IMG_SIZE);
	struct fingerprint *f = &e->src.disks[0].fp;
	img_c[f->sp.off[3] + 1] ^= 0x55;                 /* written by the VM */
	assert_int_equal(fingerprint_buffer(img_c, IMG_SIZE, &e->dst.disks[0].fp), 0);
	img_c[f->sp.off[3] + 2] ^= 0x55;                 /* and again */
	if (stable_diff_too)
		img_c[f->sp.off[7]] ^= 1;                /* but the destination differs elsewhere too */
	assert_int_equal(fingerprint_buffer(img_c, IMG_SIZE, &e->src2.disks[0].fp), 0);
	if (stable_diff_too) {
		/* the destination's sample 7 differs, the source's stays put */
		img_c[f->sp.off[7]] ^= 1;
		assert_int_equal(fingerprint_buffer(img_c, IMG_SIZE, &e->src2.disks[0].fp), 0);
		img_c[f->sp.off[3] + 2] ^= 0x55;
		img_c[f->sp.off[7]] ^= 1;
		assert_int_equal(fingerprint_buffer(img_c, IMG_SIZE, &e->dst.disks[0].fp), 0);
	}
	e->use_src2 = true;
}
static void m_writer(struct env *e) { writer_common(e, false); }
static void m_writer_and_difference(struct env *e) { writer_common(e, true); }
/* The second probes, as preflight takes them when the first fingerprints
 * differ: the destination again (dst2), then the source again (src2), one
 * after the other.  img_w(k, v): img_a with sample k's second byte set to v. */
static const unsigned char *img_w(struct env *e, unsigned k, unsigned char v, unsigned char *buf)
{
	memcpy(buf, img_a, IMG_SIZE);
	if (v)
		buf[e->src.disks[0].fp.sp.off[k] + 1] = v;
	return buf;
}
static void reprobe(struct env *e, const unsigned char *s1, const unsigned char *d1, const unsigned char *d2,
		    const unsigned char *s2)
{
	assert_int_equal(fingerprint_buffer(s1, IMG_SIZE, &e->src.disks[0].fp), 0);
	assert_int_equal(fingerprint_buffer(d1, IMG_SIZE, &e->dst.disks[0].fp), 0);
	assert_int_equal(fingerprint_buffer(d2, IMG_SIZE, &e->dst2.disks[0].fp), 0);
	assert_int_equal(fingerprint_buffer(s2, IMG_SIZE, &e->src2.disks[0].fp), 0);
	e->use_src2 = e->use_dst2 = true;
}
static unsigned char ib1[IMG_SIZE], ib2[IMG_SIZE], ib3[IMG_SIZE];
/* The false FAIL: the VM writes sample 3 once, after the destination's
 * first read and before the source's (both run at once), then never
 * again.  Re-probed in turn, everything matches: PASS. */
static void m_write_between_first_probes(struct env *e)
{
	reprobe(e, img_w(e, 3, 0x77, ib1), img_a, ib1, ib1);
}
/* ... the same, with only the first destination probe and a second source
 * probe (the old order): sample 3 looks stable on the source and different
 * on the destination.  This is why the destination is probed again. */
static void m_write_between_first_probes_old_order(struct env *e)
{
	m_write_between_first_probes(e);
	e->use_dst2 = false;
}
/* The VM keeps writing sample 3 during the re-probe: WARN. */
static void m_writing_during_reprobe(struct env *e)
{
	reprobe(e, img_w(e, 3, 1, ib1), img_a, img_w(e, 3, 2, ib2), img_w(e, 3, 3, ib3));
}
/* Sample 7 stable on the source, different on the destination in both of
 * its probes (the VM writes sample 3 meanwhile): a real difference. */
static void m_reprobe_real_difference(struct env *e)
{
	static unsigned char d[IMG_SIZE];
	img_w(e, 3, 1, ib1);
	img_w(e, 3, 2, ib2);
	memcpy(d, ib2, IMG_SIZE);
	d[e->src.disks[0].fp.sp.off[7]] ^= 1;
	memcpy(ib3, img_a, IMG_SIZE);
	ib3[e->src.disks[0].fp.sp.off[7]] ^= 1;
	reprobe(e, ib1, ib3, d, img_w(e, 3, 3, ib3));
}
/* The destination's first read matched, its second (between two equal
 * source reads) does not: real. */
static void m_reprobe_second_dst_read_differs(struct env *e)
{
	static unsigned char d[IMG_SIZE];
	img_w(e, 3, 1, ib1);
	memcpy(d, ib1, IMG_SIZE);
	d[e->src.disks[0].fp.sp.off[9]] ^= 1;
	reprobe(e, ib1, img_a, d, ib1);
}
/* Same NAA, other data (two appliances with one configuration), re-probed:
 * still a FAIL, every sample stable and different. */
static void m_reprobe_other_content(struct env *e)
{
	reprobe(e, img_a, img_b, img_b, img_a);
}
/* Every sample changed on the source between its probes: nothing can be
 * compared, FAIL with advice. */
static void m_reprobe_all_changing(struct env *e)
{
	static unsigned char s1[IMG_SIZE], s2[IMG_SIZE];
	memcpy(s1, img_a, IMG_SIZE);
	memcpy(s2, img_a, IMG_SIZE);
	for (unsigned k = 0; k < e->src.disks[0].fp.sp.n; k++) {
		s1[e->src.disks[0].fp.sp.off[k]] ^= 1;
		s2[e->src.disks[0].fp.sp.off[k]] ^= 2;
	}
	reprobe(e, s1, img_a, img_a, s2);
}
static void m_content_changed_no_second_probe(struct env *e)
{
	static unsigned char img_c[IMG_SIZE];
	memcpy(img_c, img_a, IMG_SIZE);
	img_c[e->src.disks[0].fp.sp.off[3]] ^= 1;
	assert_int_equal(fingerprint_buffer(img_c, IMG_SIZE, &e->dst.disks[0].fp), 0);
}
/* CPU */
static void m_arch(struct env *e) { set_str(&e->dst.arch, "aarch64"); }
static void m_arch_unknown(struct env *e) { free(e->src.arch); e->src.arch = NULL; }
static void m_flags_missing(struct env *e)
{
	drop_strv(&e->dst.cpu_flags, &e->dst.ncpu_flags, "avx2");
	drop_strv(&e->dst.cpu_flags, &e->dst.ncpu_flags, "aes");
}
static void m_flags_extra_on_dst(struct env *e) { strv_push(&e->dst.cpu_flags, &e->dst.ncpu_flags, "avx512f"); }
static void m_model(struct env *e) { set_str(&e->dst.cpu_model, "AMD EPYC 9654"); }
static void m_no_flags(struct env *e)
{
	for (size_t i = 0; i < e->src.ncpu_flags; i++)
		free(e->src.cpu_flags[i]);
	e->src.ncpu_flags = 0;
}
/* hypervisor */
static void m_no_kvm(struct env *e) { e->dst.kvm = false; }
static void m_qemu_version(struct env *e) { set_str(&e->dst.qemu_version, "QEMU emulator version 8.2.0"); }
/* memory */
static void m_mem_low(struct env *e) { e->dst.mem_available_kib = 512 * 1024; }
static void m_mem_unknown_dst(struct env *e) { e->dst.mem_known = false; }
static void m_mem_unknown_vm(struct env *e) { e->vm.mem_known = false; }
/* bridges */
static void m_vm_bridge_missing(struct env *e) { strv_push(&e->vm.bridges, &e->vm.nbridges, "br-vm"); }
static void m_src_bridge_missing_no_vm(struct env *e)
{
	e->use_vm = false;
	strv_push(&e->src.bridges, &e->src.nbridges, "br-extra");
}
static void m_vm_bridge_only_other_missing(struct env *e)
{
	/* the destination lacks a bridge the VM does not use: fine */
	strv_push(&e->src.bridges, &e->src.nbridges, "br-extra");
}
/* subnets */
static void m_no_common_subnet(struct env *e)
{
	for (size_t i = 0; i < e->dst.naddrs; i++) {
		free(e->dst.addrs[i].subnet);
		e->dst.addrs[i].subnet = xstrdup(i ? "fd99::/64" : "10.99.0.0/24");
	}
}
static void m_v6_only_common(struct env *e)
{
	free(e->dst.addrs[0].subnet);
	e->dst.addrs[0].subnet = xstrdup("10.99.0.0/24");
}
static void m_no_addrs(struct env *e)
{
	for (size_t i = 0; i < e->dst.naddrs; i++) {
		free(e->dst.addrs[i].iface);
		free(e->dst.addrs[i].address);
		free(e->dst.addrs[i].subnet);
	}
	e->dst.naddrs = 0;
}
/* vm notes */
static void m_vm_note(struct env *e) { strv_push(&e->vm.notes, &e->vm.nnotes, "skipped a disk over protocol 'rbd'"); }

static const struct {
	const char *what;
	mutate_fn fn;
	const char *check;
	enum check_status want;
	const char *reason_has;   /* substring of the reason, or NULL */
	int exit_code;
} cases[] = {
	{ "identical", m_none, "path[0]", CHECK_PASS, "opens on both hosts", 0 },
	{ "identical", m_none, "identity[0]", CHECK_PASS, "same logical unit (NAA 6525400a2870d5bc", 0 },
	{ "identical", m_none, "identity[1]", CHECK_PASS, "fileid 4242, same file handle", 0 },
	{ "identical", m_none, "identity[2]", CHECK_PASS, "same machine", 0 },
	{ "identical", m_none, "size[0]", CHECK_PASS, "8388608 bytes on both", 0 },
	{ "identical", m_none, "fingerprint[0]", CHECK_PASS, "same sha256", 0 },
	{ "identical", m_none, "disks", CHECK_PASS, "3 disk(s)", 0 },
	{ "identical", m_none, "arch", CHECK_PASS, "x86_64 on both", 0 },
	{ "identical", m_none, "cpu", CHECK_PASS, "all 4 flags", 0 },
	{ "identical", m_none, "hypervisor", CHECK_PASS, "kvm=yes", 0 },
	{ "identical", m_none, "memory", CHECK_PASS, "4096 MiB available, the VM needs 1024 MiB", 0 },
	{ "identical", m_none, "bridges", CHECK_PASS, "VM's bridge", 0 },
	{ "identical", m_none, "subnet", CHECK_PASS, "10.77.0.0/24 fd77::/64", 0 },
	{ "identical", m_none, "lease", CHECK_WARN, "lease check not available yet", 0 },
	{ "no disks", m_no_disks, "disks", CHECK_WARN, "storage not verified", 0 },
	{ "dest cannot probe", m_dst_error, "path[0]", CHECK_FAIL, "the destination cannot probe it: iSCSI login", 1 },
	{ "source cannot probe", m_src_error, "path[0]", CHECK_FAIL, "the source cannot probe it", 1 },
	{ "dest reports no disks", m_dst_missing_disks, "path[0]", CHECK_FAIL, "does not report this disk", 1 },
	{ "other URL on dest", m_dst_other_url, "path[0]", CHECK_FAIL, "different paths", 1 },
	{ "other kind on dest", m_dst_other_kind, "path[2]", CHECK_FAIL, "(local), destination", 1 },
	{ "path resolves elsewhere", m_dst_realpath, "path[2]", CHECK_WARN, "resolves to /var/lib/vm.img on the source but /srv/other.img", 0 },
	{ "other NAA", m_iscsi_naa, "identity[0]", CHECK_FAIL, "different logical units", 1 },
	{ "other serial", m_iscsi_serial, "identity[0]", CHECK_FAIL, "serial 974cdc6a2870dad5", 1 },
	{ "no identifiers", m_iscsi_no_ids, "identity[0]", CHECK_FAIL, "no comparable identity", 1 },
	{ "serial only on one side", m_iscsi_serial_only, "identity[0]", CHECK_PASS, "same logical unit", 0 },
	{ "other fileid", m_nfs_fileid, "identity[1]", CHECK_FAIL, "fileid 4242, destination sees fileid 4343", 1 },
	{ "other file handle", m_nfs_fh, "identity[1]", CHECK_FAIL, "different file handles", 1 },
	{ "no file handle", m_nfs_no_fh, "identity[1]", CHECK_WARN, "file handle not available on the destination", 0 },
	{ "local fs, two machines", m_local_other_machine, "identity[2]", CHECK_FAIL, "not shared storage", 1 },
	{ "local fs, other inode", m_local_inode, "identity[2]", CHECK_FAIL, "inode 778", 1 },
	{ "shared fs", m_local_shared_fs, "identity[2]", CHECK_PASS, "same file on shared nfs4 filer:/vms", 0 },
	{ "shared fs, other server", m_local_shared_fs_other_source, "identity[2]", CHECK_FAIL, "different file systems", 1 },
	{ "block dev, same wwid", m_local_wwid_same, "identity[2]", CHECK_PASS, "wwid naa.6525400a2870d5bc", 0 },
	{ "block dev, other wwid", m_local_wwid_differ, "identity[2]", CHECK_FAIL, "different block devices", 1 },
	{ "size differs", m_size, "size[0]", CHECK_FAIL, "destination 16777216", 1 },
	{ "other LU, other content", m_content, "fingerprint[0]", CHECK_FAIL, "content differs in 66 of 66 samples", 1 },
	{ "same NAA, other content", m_content_same_identity, "fingerprint[0]", CHECK_FAIL, "66 of 66", 1 },
	{ "no fingerprint", m_no_fingerprint, "fingerprint[1]", CHECK_FAIL, "no fingerprint from the destination", 1 },
	{ "plan differs", m_plan_differs, "fingerprint[0]", CHECK_FAIL, "different sample plans", 1 },
	{ "VM writing", m_writer, "fingerprint[0]", CHECK_WARN, "1 of 66 samples changed on the source", 0 },
	{ "VM writing + real difference", m_writer_and_difference, "fingerprint[0]", CHECK_FAIL, "stable on the source (first at offset", 1 },
	{ "one write between the first probes, re-probed in turn", m_write_between_first_probes, "fingerprint[0]", CHECK_PASS, "same content in all 66 samples when probed again", 0 },
	{ "one write between the first probes, old order", m_write_between_first_probes_old_order, "fingerprint[0]", CHECK_FAIL, "differs in 1 of 66 samples that are stable", 1 },
	{ "VM writing during the re-probe", m_writing_during_reprobe, "fingerprint[0]", CHECK_WARN, "1 of 66 samples changed on the source", 0 },
	{ "re-probed, real difference", m_reprobe_real_difference, "fingerprint[0]", CHECK_FAIL, "1 of 66 samples that are stable on the source (first at offset", 1 },
	{ "re-probed, second destination read differs", m_reprobe_second_dst_read_differs, "fingerprint[0]", CHECK_FAIL, "differs in 1 of 66 samples that are stable", 1 },
	{ "re-probed, other content", m_reprobe_other_content, "fingerprint[0]", CHECK_FAIL, "differs in 66 of 66 samples that are stable", 1 },
	{ "re-probed, every sample changing", m_reprobe_all_changing, "fingerprint[0]", CHECK_FAIL, "every sample changed on the source", 1 },
	{ "changed, no second probe", m_content_changed_no_second_probe, "fingerprint[0]", CHECK_FAIL, "pause it and re-run", 1 },
	{ "arch differs", m_arch, "arch", CHECK_FAIL, "destination is aarch64", 1 },
	{ "arch unknown", m_arch_unknown, "arch", CHECK_WARN, "unknown on the source", 0 },
	{ "flags missing", m_flags_missing, "cpu", CHECK_FAIL, "lacks 2 flag(s) the source has: avx2 aes", 1 },
	{ "extra flags on dest", m_flags_extra_on_dst, "cpu", CHECK_PASS, NULL, 0 },
	{ "model differs", m_model, "cpu", CHECK_WARN, "different CPU models", 0 },
	{ "no flags", m_no_flags, "cpu", CHECK_WARN, "no CPU flags", 0 },
	{ "no kvm on dest", m_no_kvm, "hypervisor", CHECK_WARN, "/dev/kvm", 0 },
	{ "qemu version", m_qemu_version, "hypervisor", CHECK_WARN, "different QEMU versions", 0 },
	{ "memory low", m_mem_low, "memory", CHECK_FAIL, "512 MiB available, the VM needs 1024 MiB", 1 },
	{ "memory unknown (dest)", m_mem_unknown_dst, "memory", CHECK_WARN, "available memory is unknown", 0 },
	{ "memory unknown (vm)", m_mem_unknown_vm, "memory", CHECK_WARN, "memory size is unknown", 0 },
	{ "no vm: memory", m_no_vm, "memory", CHECK_WARN, "4096 MiB available", 0 },
	{ "VM bridge missing", m_vm_bridge_missing, "bridges", CHECK_FAIL, "bridge(s) the VM uses: br-vm", 1 },
	{ "source bridge missing, no vm", m_src_bridge_missing_no_vm, "bridges", CHECK_WARN, "br-extra", 0 },
	{ "unused bridge missing", m_vm_bridge_only_other_missing, "bridges", CHECK_PASS, NULL, 0 },
	{ "no vm: bridges", m_no_vm, "bridges", CHECK_PASS, "every source bridge", 0 },
	{ "no common subnet", m_no_common_subnet, "subnet", CHECK_FAIL, "no IPv4/IPv6 subnet in common", 1 },
	{ "IPv6 in common only", m_v6_only_common, "subnet", CHECK_PASS, "fd77::/64", 0 },
	{ "no addresses", m_no_addrs, "subnet", CHECK_WARN, "destination", 0 },
	{ "vm notes", m_vm_note, "vm", CHECK_WARN, "rbd", 0 },
};

static void test_rules_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct env e;
		base_host(&e.src);
		base_host(&e.dst);
		base_host(&e.src2);
		base_host(&e.dst2);
		base_vm(&e.vm);
		e.use_vm = true;
		e.use_src2 = e.use_dst2 = false;
		cases[k].fn(&e);
		struct check_list cl = {0};
		compare_probes(&e.src, &e.dst, e.use_vm ? &e.vm : NULL, e.use_dst2 ? &e.dst2 : NULL,
			       e.use_src2 ? &e.src2 : NULL, &cl);
		const struct check *c = check_find(&cl, cases[k].check);
		if (!c)
			fail_msg("case '%s': no check %s", cases[k].what, cases[k].check);
		/* path[] may report both sides: look for the matching one */
		for (size_t i = 0; i < cl.n && c->status != cases[k].want; i++)
			if (strcmp(cl.v[i].name, cases[k].check) == 0)
				c = &cl.v[i];
		if (c->status != cases[k].want)
			fail_msg("case '%s': %s is %s, want %s (%s)", cases[k].what, c->name, check_status_name(c->status),
				 check_status_name(cases[k].want), c->reason);
		if (cases[k].reason_has && !strstr(c->reason, cases[k].reason_has))
			fail_msg("case '%s': %s reason \"%s\" lacks \"%s\"", cases[k].what, c->name, c->reason,
				 cases[k].reason_has);
		if (check_list_exit_code(&cl) != cases[k].exit_code) {
			char *t = check_list_text(&cl);
			fail_msg("case '%s': exit code %d, want %d\n%s", cases[k].what, check_list_exit_code(&cl),
				 cases[k].exit_code, t);
		}
		check_list_free(&cl);
		probe_host_free(&e.src);
		probe_host_free(&e.dst);
		probe_host_free(&e.src2);
		probe_host_free(&e.dst2);
		vm_spec_free(&e.vm);
	}
}

static void test_error_disk_skips_other_disk_checks(void **state)
{
	(void)state;
	struct probe_host s, d;
	base_host(&s);
	base_host(&d);
	set_str(&d.disks[0].error, "login failed");
	struct check_list cl = {0};
	compare_probes(&s, &d, NULL, NULL, NULL, &cl);
	assert_null(check_find(&cl, "identity[0]"));
	assert_null(check_find(&cl, "fingerprint[0]"));
	assert_non_null(check_find(&cl, "identity[1]"));
	check_list_free(&cl);
	probe_host_free(&s);
	probe_host_free(&d);
}

static void test_second_probe_trigger(void **state)
{
	(void)state;
	struct env e;
	base_host(&e.src);
	base_host(&e.dst);
	assert_false(compare_needs_second_source_probe(&e.src, &e.dst));
	m_content(&e); /* other identity: a second probe would not help */
	assert_false(compare_needs_second_source_probe(&e.src, &e.dst));
	probe_host_free(&e.dst);
	base_host(&e.dst);
	m_content_changed_no_second_probe(&e); /* same identity, content differs */
	assert_true(compare_needs_second_source_probe(&e.src, &e.dst));
	probe_host_free(&e.src);
	probe_host_free(&e.dst);
}

static void test_output_formats(void **state)
{
	(void)state;
	struct check_list cl = {0};
	check_add(&cl, CHECK_PASS, "arch", "x86_64 on both");
	check_add(&cl, CHECK_WARN, "lease", "lease check not available yet");
	assert_int_equal(check_list_exit_code(&cl), 0);
	check_add(&cl, CHECK_FAIL, "identity[0]", "different \"LUs\"");
	assert_int_equal(check_list_exit_code(&cl), 1);
	char *t = check_list_text(&cl);
	assert_string_equal(t, "PASS arch: x86_64 on both\nWARN lease: lease check not available yet\n"
			       "FAIL identity[0]: different \"LUs\"\n");
	free(t);
	char *j = check_list_json(&cl, "ns1", "ns2");
	assert_non_null(j);
	struct json_value *v = json_parse(j, strlen(j), NULL, 0);
	assert_non_null(v);
	assert_string_equal(json_str(json_get(v, "result")), "FAIL");
	assert_string_equal(json_str(json_get(v, "dest")), "ns2");
	assert_int_equal(json_len(json_get(v, "checks")), 3);
	assert_string_equal(json_str(json_get(json_at(json_get(v, "checks"), 2), "reason")), "different \"LUs\"");
	json_free(v);
	free(j);
	check_list_free(&cl);
}

static void test_remote_command(void **state)
{
	(void)state;
	char *disks[] = { (char *)"nfs://srv/e/f.img?nfsport=2049&mountport=20048", (char *)"/var/lib/it's.img" };
	char *dest_disks[] = { (char *)"nfs://srv/e/g.img", (char *)"/x" };
	struct preflight_opts o = { .rsh = "ip netns exec", .remote_cmd = "/opt/rs/ringstor-migrate",
				    .self_exe = "/self/ringstor-migrate", .disks = disks, .ndisks = 2 };
	char **a = preflight_argv(&o, "ns1", false);
	assert_non_null(a);
	const char *const want_netns[] = { "ip", "netns", "exec", "ns1", "/opt/rs/ringstor-migrate", "probe",
						  "--json", "--disk", disks[0], "--disk", disks[1], NULL };
	for (size_t i = 0; want_netns[i] || a[i]; i++) {
		assert_non_null(a[i]);
		assert_non_null(want_netns[i]);
		assert_string_equal(a[i], want_netns[i]);
	}
	argv_free(a);

	/* ssh: one shell-quoted remote command string */
	o.rsh = "ssh -o 'BatchMode=yes' -p 2222";
	o.initiator_name = "iqn.2026-11.host:a";
	a = preflight_argv(&o, "root@hostb", false);
	assert_string_equal(a[0], "ssh");
	assert_string_equal(a[2], "BatchMode=yes");
	assert_string_equal(a[5], "root@hostb");
	assert_string_equal(a[6], "/opt/rs/ringstor-migrate probe --json --initiator-name iqn.2026-11.host:a --disk "
				  "'nfs://srv/e/f.img?nfsport=2049&mountport=20048' --disk '/var/lib/it'\\''s.img'");
	assert_null(a[7]);
	argv_free(a);

	/* the destination gets its own disks when given */
	o.dest_disks = dest_disks;
	o.rsh = NULL; /* default ssh */
	o.initiator_name = NULL;
	a = preflight_argv(&o, "hostc", true);
	assert_string_equal(a[0], "ssh");
	assert_string_equal(a[1], "-o");
	assert_string_equal(a[2], "BatchMode=yes");
	assert_string_equal(a[3], "hostc");
	assert_string_equal(a[4], "/opt/rs/ringstor-migrate probe --json --disk nfs://srv/e/g.img --disk /x");
	argv_free(a);

	/* local runs this program directly */
	a = preflight_argv(&o, "local", false);
	assert_string_equal(a[0], "/self/ringstor-migrate");
	assert_string_equal(a[1], "probe");
	argv_free(a);

	/* a malformed rsh */
	o.rsh = "ssh 'unbalanced";
	assert_null(preflight_argv(&o, "h", false));
	o.rsh = "   ";
	assert_null(preflight_argv(&o, "h", false));
}

static void test_shell_quote(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } t[] = {
		{ "plain/path-1.img", "plain/path-1.img" },
		{ "", "''" },
		{ "a b", "'a b'" },
		{ "it's", "'it'\\''s'" },
		{ "$(rm -rf /)", "'$(rm -rf /)'" },
		{ "a&b;c|d", "'a&b;c|d'" },
	};
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		char *q = shell_quote(t[k].in);
		assert_string_equal(q, t[k].out);
		free(q);
	}
}

static void test_preflight_local_run(void **state)
{
	(void)state;
	/* A probe command that is not there: exit 2 with the host in the message. */
	struct preflight_opts o = { .source = "local", .dest = "nohost", .rsh = "/nonexistent/rsh",
				    .self_exe = "/nonexistent/self", .timeout_s = 10 };
	char *out = NULL, *err = NULL;
	size_t ol = 0, el = 0;
	FILE *fo = open_memstream(&out, &ol), *fe = open_memstream(&err, &el);
	assert_int_equal(preflight_run(&o, fo, fe), 2);
	fclose(fo);
	fclose(fe);
	assert_non_null(strstr(err, "the source local"));
	assert_non_null(strstr(err, "the destination nohost"));
	assert_non_null(strstr(err, "exit status 127"));
	free(out);
	free(err);

	/* a "probe" that prints garbage: unusable probe, exit 2 */
	o.source = "a";
	o.dest = "b";
	o.rsh = "echo";
	fo = open_memstream(&out, &ol);
	fe = open_memstream(&err, &el);
	assert_int_equal(preflight_run(&o, fo, fe), 2);
	fclose(fo);
	fclose(fe);
	assert_non_null(strstr(err, "returned an unusable probe: not valid JSON"));
	free(out);
	free(err);
}

int main(void)
{
	for (size_t i = 0; i < IMG_SIZE; i++) {
		img_a[i] = (unsigned char)(i * 2654435761u >> 11);
		img_b[i] = (unsigned char)(i * 40503u >> 7);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_table),
		cmocka_unit_test(test_error_disk_skips_other_disk_checks),
		cmocka_unit_test(test_second_probe_trigger),
		cmocka_unit_test(test_output_formats),
		cmocka_unit_test(test_remote_command),
		cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_preflight_local_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
