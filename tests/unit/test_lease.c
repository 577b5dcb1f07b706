/* test_lease.c - image leases (core/lease.c) and their control plane
 * (core/control.c --mode lease): epoch rules, holder matching, the write
 * opcode classifier, persistence (round trip, refusal of damaged files,
 * refusal of changes that cannot be saved), readers racing the control
 * thread, and control_execute() against real LUs and NFS files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/control.h"
#include "core/control_proto.h"
#include "core/lease.h"
#include "nfsgw/exports.h"
#include "nfsgw/fh.h"
#include "target/registry.h"

static char dir[256];
static char msg[512];

static const char *H1 = "iqn.2026-11.test:host-a";
static const char *H2 = "iqn.2026-11.test:host-b";

static void rm_rf(const char *d)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_lease.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(lease_init(dir), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	lease_shutdown();
	rm_rf(dir);
	return 0;
}

static struct lease_info scsi_obj(uint8_t tag)
{
	struct lease_info o;

	memset(&o, 0, sizeof(o));
	o.key.kind = LEASE_SCSI;
	o.key.naa[0] = 0x60;
	o.key.naa[15] = tag;
	o.tid = 1;
	o.lun = tag;
	snprintf(o.target, sizeof(o.target), "iqn.2026-11.io.ringstor:t");
	return o;
}

/* A fake NFS identity in the fh.c layout: k, type, export id, handle. */
static void fake_fh(uint8_t *fh, size_t *len, uint32_t export_id, uint8_t tag)
{
	memset(fh, 0, 64);
	fh[0] = 1;
	fh[1] = 8;                       /* kernel handle bytes */
	fh[5] = 1;                       /* handle type */
	fh[6] = (uint8_t)(export_id >> 24);
	fh[7] = (uint8_t)(export_id >> 16);
	fh[8] = (uint8_t)(export_id >> 8);
	fh[9] = (uint8_t)export_id;
	fh[10] = tag;
	fh[17] = 0x5a;
	memset(fh + 18, 0xee, 16);       /* the "MAC" */
	*len = 34;
}

static struct lease_info nfs_obj(uint32_t export_id, uint8_t tag)
{
	struct lease_info o;
	uint8_t fh[64];
	size_t len;

	memset(&o, 0, sizeof(o));
	o.key.kind = LEASE_NFS;
	o.key.export_id = export_id;
	fake_fh(fh, &len, export_id, tag);
	assert_int_equal(lease_nfs_fid(fh, len, o.key.fid, &o.key.fid_len), 0);
	snprintf(o.path, sizeof(o.path), "/srv/export/vm%u.img", tag);
	return o;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ------------------------------------------------------------ classifier */

static void test_opcodes(void **state)
{
	static const uint8_t writes[] = { 0x04, 0x07, 0x0a, 0x2a, 0x2e, 0x3f, 0x41, 0x42, 0x48, 0x50,
					  0x51, 0x53, 0x89, 0x8a, 0x8b, 0x8e, 0x93, 0x9a, 0x9c,
					  0xaa, 0xae };
	static const uint8_t others[] = { 0x00, 0x03, 0x08, 0x12, 0x15, 0x1a, 0x1b, 0x1e, 0x25,
					  0x28, 0x2f, 0x35, 0x3b, 0x3c, 0x55, 0x5a, 0x5e, 0x5f,
					  0x83, 0x84, 0x88, 0x8f, 0x91, 0xa0, 0xa3, 0xa8, 0xaf };
	uint8_t cdb[32];
	(void)state;

	for (size_t i = 0; i < sizeof(writes); i++) {
		memset(cdb, 0, sizeof(cdb));
		cdb[0] = writes[i];
		assert_true(lease_is_write_opcode(cdb));
	}
	for (size_t i = 0; i < sizeof(others); i++) {
		memset(cdb, 0, sizeof(cdb));
		cdb[0] = others[i];
		assert_false(lease_is_write_opcode(cdb));
	}
	/* SERVICE ACTION IN/OUT(16) */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x9e; cdb[1] = 0x10;           /* READ CAPACITY(16) */
	assert_false(lease_is_write_opcode(cdb));
	cdb[0] = 0x9f; cdb[1] = 0x11;           /* WRITE LONG(16) */
	assert_true(lease_is_write_opcode(cdb));
	cdb[1] = 0x12;                          /* WRITE SCATTERED(16) */
	assert_true(lease_is_write_opcode(cdb));
	cdb[1] = 0x05;
	assert_false(lease_is_write_opcode(cdb));
	/* variable length (32-byte) CDBs */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x7f;
	for (unsigned sa = 0; sa < 0x20; sa++) {
		bool w = sa == 0x04 || sa == 0x06 || sa == 0x07 || (sa >= 0x0b && sa <= 0x11);
		cdb[8] = 0;
		cdb[9] = (uint8_t)sa;
		assert_int_equal(lease_is_write_opcode(cdb), w);
	}
	cdb[8] = 0x18; cdb[9] = 0x00;           /* not a write */
	assert_false(lease_is_write_opcode(cdb));
	assert_false(lease_is_write_opcode(NULL));
}

/* ------------------------------------------------------------ epochs */

static void test_acquire_rules(void **state)
{
	struct lease_info o = scsi_obj(1), got;
	uint64_t e = 0;
	(void)state;

	assert_int_equal(lease_get(&o.key, &got), -ENOENT);
	assert_int_equal(lease_acquire(&o, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 1);
	assert_non_null(strstr(msg, "epoch 1"));
	assert_int_equal(lease_held_count(), 1);
	/* the holder again: confirmed, same epoch; with a wrong epoch: stale */
	e = 0;
	assert_int_equal(lease_acquire(&o, "IQN.2026-11.TEST:HOST-A", false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 1);
	assert_int_equal(lease_acquire(&o, H1, true, 1, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_acquire(&o, H1, true, 7, &e, msg, sizeof(msg)), ESTALE);
	/* someone else: busy, and told the epoch */
	assert_int_equal(lease_acquire(&o, H2, false, 0, &e, msg, sizeof(msg)), EBUSY);
	assert_non_null(strstr(msg, H1));
	assert_int_equal(lease_get(&o.key, &got), 0);
	assert_true(got.held);
	assert_int_equal(got.epoch, 1);
	assert_string_equal(got.holder, H1);
	/* a free object with a caller epoch above ours: max + 1 */
	struct lease_info o2 = scsi_obj(2);
	assert_int_equal(lease_acquire(&o2, H2, true, 41, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 42);
	assert_int_equal(lease_held_count(), 2);
	/* bad holders */
	struct lease_info o3 = scsi_obj(3);
	assert_int_equal(lease_acquire(&o3, "", false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_acquire(&o3, NULL, false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_acquire(&o3, "iqn.x y", false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_acquire(&o3, "iqn.x,i,0x1", false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_get(&o3.key, &got), -ENOENT);
}

static void test_transfer_release_rules(void **state)
{
	struct lease_info o = scsi_obj(1), got;
	uint64_t e = 0;
	(void)state;

	assert_int_equal(lease_transfer(&o, H2, 0, &e, msg, sizeof(msg)), ENOENT);
	assert_int_equal(lease_release(&o, NULL, 0, msg, sizeof(msg)), ENOENT);
	assert_int_equal(lease_acquire(&o, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 1);
	/* stale and future epochs are refused, nothing changes */
	assert_int_equal(lease_transfer(&o, H2, 0, &e, msg, sizeof(msg)), ESTALE);
	assert_non_null(strstr(msg, "stale epoch 0"));
	assert_int_equal(lease_transfer(&o, H2, 2, &e, msg, sizeof(msg)), ESTALE);
	assert_int_equal(lease_transfer(&o, "bad holder", 1, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_get(&o.key, &got), 0);
	assert_string_equal(got.holder, H1);
	assert_int_equal(got.epoch, 1);
	/* the right one moves it and bumps the epoch */
	assert_int_equal(lease_transfer(&o, H2, 1, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 2);
	assert_int_equal(lease_get(&o.key, &got), 0);
	assert_string_equal(got.holder, H2);
	assert_int_equal(got.epoch, 2);
	/* the old epoch is now a stale token: a late release from the old
	 * holder's side is refused */
	assert_int_equal(lease_release(&o, H1, 1, msg, sizeof(msg)), ESTALE);
	assert_int_equal(lease_release(&o, H1, 2, msg, sizeof(msg)), EBUSY);
	assert_int_equal(lease_release(&o, H2, 2, msg, sizeof(msg)), 0);
	assert_int_equal(lease_held_count(), 0);
	assert_int_equal(lease_get(&o.key, &got), 0);
	assert_false(got.held);
	assert_int_equal(got.epoch, 2);       /* kept */
	assert_string_equal(got.holder, H2);  /* last holder */
	/* releasing again at that epoch is a no-op; another epoch is stale */
	assert_int_equal(lease_release(&o, NULL, 2, msg, sizeof(msg)), 0);
	assert_int_equal(lease_release(&o, NULL, 1, msg, sizeof(msg)), ESTALE);
	/* a transfer of a released lease is stale: acquire it */
	assert_int_equal(lease_transfer(&o, H1, 2, &e, msg, sizeof(msg)), ESTALE);
	/* epochs never go back: acquire continues above the released epoch,
	 * even when the caller offers a lower one */
	assert_int_equal(lease_acquire(&o, H1, true, 1, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 3);
	/* a transfer to the holder itself re-fences (epoch + 1) */
	assert_int_equal(lease_transfer(&o, H1, 3, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 4);
}

static void test_epoch_overflow(void **state)
{
	struct lease_info o = scsi_obj(9);
	uint64_t e = 0;
	(void)state;

	assert_int_equal(lease_acquire(&o, H1, true, UINT64_MAX, &e, msg, sizeof(msg)), EOVERFLOW);
	assert_int_equal(lease_acquire(&o, H1, true, UINT64_MAX - 1, &e, msg, sizeof(msg)), 0);
	assert_true(e == UINT64_MAX);
	assert_int_equal(lease_transfer(&o, H2, UINT64_MAX, &e, msg, sizeof(msg)), EOVERFLOW);
	assert_int_equal(lease_release(&o, NULL, UINT64_MAX, msg, sizeof(msg)), 0);
	assert_int_equal(lease_acquire(&o, H1, false, 0, &e, msg, sizeof(msg)), EOVERFLOW);
}

static void test_not_initialised(void **state)
{
	struct lease_info o = scsi_obj(1);
	uint64_t e;
	(void)state;

	lease_shutdown();
	assert_int_equal(lease_acquire(&o, H1, false, 0, &e, msg, sizeof(msg)), ENODEV);
	assert_true(lease_scsi_write_allowed(o.key.naa, H2));
	assert_int_equal(lease_init(dir), 0);
}

/* ------------------------------------------------------------ holders */

static void test_scsi_holder_matching(void **state)
{
	struct lease_info o = scsi_obj(1), other = scsi_obj(2);
	uint64_t e;
	(void)state;

	/* no lease at all: everyone writes */
	assert_true(lease_scsi_write_allowed(o.key.naa, H2));
	assert_true(lease_scsi_write_allowed(o.key.naa, NULL));
	assert_int_equal(lease_acquire(&o, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_true(lease_scsi_write_allowed(o.key.naa, H1));
	/* through any I_T nexus of that initiator, any case */
	assert_true(lease_scsi_write_allowed(o.key.naa, "iqn.2026-11.test:host-a,i,0x800000000001"));
	assert_true(lease_scsi_write_allowed(o.key.naa, "IQN.2026-11.TEST:HOST-A,i,0x23d000000002"));
	/* anyone else, a prefix or an extension of the name: no */
	assert_false(lease_scsi_write_allowed(o.key.naa, H2));
	assert_false(lease_scsi_write_allowed(o.key.naa, "iqn.2026-11.test:host-b,i,0x800000000001"));
	assert_false(lease_scsi_write_allowed(o.key.naa, "iqn.2026-11.test:host"));
	assert_false(lease_scsi_write_allowed(o.key.naa, "iqn.2026-11.test:host-aa"));
	assert_false(lease_scsi_write_allowed(o.key.naa, "iqn.2026-11.test:host-aa,i,0x1"));
	assert_false(lease_scsi_write_allowed(o.key.naa, ""));
	assert_false(lease_scsi_write_allowed(o.key.naa, NULL));
	/* other LUs are not affected */
	assert_true(lease_scsi_write_allowed(other.key.naa, H2));
	/* after a transfer the new holder writes, the old one does not */
	assert_int_equal(lease_transfer(&o, H2, 1, &e, msg, sizeof(msg)), 0);
	assert_false(lease_scsi_write_allowed(o.key.naa, H1));
	assert_true(lease_scsi_write_allowed(o.key.naa, H2));
	/* released: everyone again */
	assert_int_equal(lease_release(&o, NULL, 2, msg, sizeof(msg)), 0);
	assert_true(lease_scsi_write_allowed(o.key.naa, H1));
	assert_true(lease_scsi_write_allowed(o.key.naa, "iqn.2026-11.test:z"));
}

static void test_nfs_holder_matching(void **state)
{
	struct lease_info o = nfs_obj(7, 1), byname = nfs_obj(7, 2);
	uint8_t fh[64], fh_other_export[64], fh3[64];
	size_t len, len2, len3;
	uint64_t e;
	(void)state;

	fake_fh(fh, &len, 7, 1);
	fake_fh(fh_other_export, &len2, 9, 1);   /* the same file through another export */
	fake_fh(fh3, &len3, 7, 3);
	assert_true(lease_nfs_write_allowed(7, fh, len, "10.0.0.9", NULL));
	/* holder syntax */
	assert_int_equal(lease_acquire(&o, "10.0.0.300", false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_acquire(&o, "10.0.0.2:2049", false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_acquire(&o, "host a", false, 0, &e, msg, sizeof(msg)), EINVAL);
	assert_int_equal(lease_acquire(&o, "10.0.0.2", false, 0, &e, msg, sizeof(msg)), 0);
	/* the holder's address, in every spelling the gateway may use */
	assert_true(lease_nfs_write_allowed(7, fh, len, "10.0.0.2", NULL));
	assert_true(lease_nfs_write_allowed(7, fh, len, "10.0.0.2:801", "whatever"));
	assert_true(lease_nfs_write_allowed(7, fh, len, "::ffff:10.0.0.2", NULL));
	assert_true(lease_nfs_write_allowed(7, fh, len, "[::ffff:10.0.0.2]:801", NULL));
	assert_true(lease_nfs_write_allowed(9, fh_other_export, len2, "10.0.0.2", NULL));
	/* others - also one that claims the address as its machine name */
	assert_false(lease_nfs_write_allowed(7, fh, len, "10.0.0.3", "10.0.0.2"));
	assert_false(lease_nfs_write_allowed(9, fh_other_export, len2, "10.0.0.3", NULL));
	assert_false(lease_nfs_write_allowed(7, fh, len, NULL, NULL));
	assert_false(lease_nfs_write_allowed(7, fh, len, "garbage", NULL));
	/* other files are free; unparsable handles are refused while leases exist */
	assert_true(lease_nfs_write_allowed(7, fh3, len3, "10.0.0.3", NULL));
	assert_false(lease_nfs_write_allowed(7, fh, 5, "10.0.0.2", NULL));
	fh3[0] = 2;
	assert_false(lease_nfs_write_allowed(7, fh3, len3, "10.0.0.3", NULL));
	/* by AUTH_SYS machine name, case-insensitive; the address does not count */
	assert_int_equal(lease_acquire(&byname, "HostB.example.com", false, 0, &e, msg, sizeof(msg)), 0);
	fake_fh(fh3, &len3, 7, 2);
	assert_true(lease_nfs_write_allowed(7, fh3, len3, "10.0.0.3", "hostb.example.com"));
	assert_false(lease_nfs_write_allowed(7, fh3, len3, "10.0.0.3", "hostc.example.com"));
	assert_false(lease_nfs_write_allowed(7, fh3, len3, "10.0.0.3", ""));
	assert_false(lease_nfs_write_allowed(7, fh3, len3, "hostb.example.com", NULL));
	/* release by a holder spelled differently (IPv4-mapped) */
	assert_int_equal(lease_release(&o, "::ffff:10.0.0.2", 1, msg, sizeof(msg)), 0);
	assert_true(lease_nfs_write_allowed(7, fh, len, "10.0.0.3", NULL));
	/* IPv6 holder */
	assert_int_equal(lease_acquire(&o, "fd00::2", false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 2);
	assert_true(lease_nfs_write_allowed(7, fh, len, "[fd00:0::2]:700", NULL));
	assert_false(lease_nfs_write_allowed(7, fh, len, "fd00::3", NULL));
	/* the socket address variant (what the gateway has at hand) */
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(900) };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, "fd00::2", &s6.sin6_addr);
	assert_true(lease_nfs_write_allowed_sa(7, fh, len, (struct sockaddr *)&s6, NULL));
	inet_pton(AF_INET6, "fd00::3", &s6.sin6_addr);
	assert_false(lease_nfs_write_allowed_sa(7, fh, len, (struct sockaddr *)&s6, "fd00::2"));
	assert_false(lease_nfs_write_allowed_sa(7, fh, len, NULL, NULL));
	inet_pton(AF_INET, "10.0.0.3", &s4.sin_addr);
	fake_fh(fh3, &len3, 7, 2);
	assert_true(lease_nfs_write_allowed_sa(7, fh3, len3, (struct sockaddr *)&s4, "HOSTB.example.com"));
	assert_false(lease_nfs_write_allowed_sa(7, fh3, len3, (struct sockaddr *)&s4, NULL));
	assert_int_equal(lease_transfer(&byname, "10.0.0.3", 1, &e, msg, sizeof(msg)), 0);
	assert_true(lease_nfs_write_allowed_sa(7, fh3, len3, (struct sockaddr *)&s4, NULL));
	inet_pton(AF_INET, "10.0.0.4", &s4.sin_addr);
	assert_false(lease_nfs_write_allowed_sa(7, fh3, len3, (struct sockaddr *)&s4, NULL));
	/* iSCSI leases do not leak into NFS and back */
	assert_true(lease_scsi_write_allowed(o.key.naa, "iqn.x"));
}

static void test_nfs_fid_from_real_handle(void **state)
{
	uint8_t key[32] = { 7 };
	struct nfs_fh a, b;
	uint8_t fa[LEASE_FID_MAX], fb[LEASE_FID_MAX], la, lb;
	char path[400];
	int dfd, fd;
	(void)state;

	fh_secret_set(key);
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	dfd = open(dir, O_PATH | O_DIRECTORY);
	assert_true(dfd >= 0);
	if (fh_make(1, dfd, "file", &a) < 0) {
		close(dfd);
		skip();   /* file system without name_to_handle_at */
	}
	fd = openat(dfd, "file", O_PATH);
	assert_int_equal(fh_make(2, fd, "", &b), 0);
	close(fd);
	close(dfd);
	assert_int_equal(fh_verify(a.data, a.len, NULL), 0);
	assert_int_equal(lease_nfs_fid(a.data, a.len, fa, &la), 0);
	assert_int_equal(lease_nfs_fid(b.data, b.len, fb, &lb), 0);
	/* same file, two exports, two handles: one identity */
	assert_memory_not_equal(a.data, b.data, a.len);
	assert_int_equal(la, lb);
	assert_memory_equal(fa, fb, la);
	assert_int_equal(la, a.len - 10 - 16 + 5);
	/* malformed */
	assert_int_equal(lease_nfs_fid(a.data, 9, fa, &la), -EINVAL);
	assert_int_equal(lease_nfs_fid(NULL, 30, fa, &la), -EINVAL);
	a.data[1] = 60;
	assert_int_equal(lease_nfs_fid(a.data, a.len, fa, &la), -EINVAL);
}

/* ------------------------------------------------------------ persistence */

static void test_persist_round_trip(void **state)
{
	struct lease_info a = scsi_obj(1), b = scsi_obj(2), n = nfs_obj(7, 1), got;
	char path[400], *text;
	uint64_t e;
	(void)state;

	snprintf(n.path, sizeof(n.path), "/srv/with space/%%odd\tname");
	assert_int_equal(lease_acquire(&a, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_transfer(&a, H2, 1, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_acquire(&b, H1, true, 10, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_release(&b, H1, 11, msg, sizeof(msg)), 0);
	assert_int_equal(lease_acquire(&n, "client.example", false, 0, &e, msg, sizeof(msg)), 0);
	snprintf(path, sizeof(path), "%s/leases", dir);
	text = slurp(path);
	assert_non_null(strstr(text, "ringstor-leases 1\n"));
	assert_non_null(strstr(text, "end 3\n"));
	free(text);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/leases.tmp", dir);
	assert_int_equal(access(path, F_OK), -1);

	/* "restart" */
	lease_shutdown();
	assert_int_equal(lease_held_count(), 0);
	spit(path, "half-written garbage");      /* a temp file left by a crash */
	assert_int_equal(lease_init(dir), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(lease_held_count(), 2);
	assert_int_equal(lease_get(&a.key, &got), 0);
	assert_true(got.held);
	assert_int_equal(got.epoch, 2);
	assert_string_equal(got.holder, H2);
	assert_string_equal(got.target, "iqn.2026-11.io.ringstor:t");
	assert_int_equal(got.lun, 1);
	assert_int_equal(lease_get(&b.key, &got), 0);
	assert_false(got.held);
	assert_int_equal(got.epoch, 11);
	assert_int_equal(lease_get(&n.key, &got), 0);
	assert_true(got.held);
	assert_string_equal(got.path, "/srv/with space/%odd\tname");
	assert_int_equal(got.key.export_id, 7);
	/* enforcement is back before anyone asks */
	assert_false(lease_scsi_write_allowed(a.key.naa, H1));
	assert_true(lease_scsi_write_allowed(a.key.naa, H2));
	/* and epochs continue */
	assert_int_equal(lease_acquire(&b, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(e, 12);
	/* lookups by description */
	struct lease_key k;
	assert_int_equal(lease_find_scsi(1, "IQN.2026-11.io.ringstor:T", 2, &k), 0);
	assert_memory_equal(k.naa, b.key.naa, 16);
	assert_int_equal(lease_find_scsi(1, NULL, 1, &k), 0);
	assert_memory_equal(k.naa, a.key.naa, 16);
	assert_int_equal(lease_find_scsi(2, NULL, 1, &k), -ENOENT);
	assert_int_equal(lease_find_nfs(7, "/srv/with space/%odd\tname", &k), 0);
	assert_int_equal(lease_find_nfs(8, "/srv/with space/%odd\tname", &k), -ENOENT);
}

static void test_persist_corrupt(void **state)
{
	static const char *bad[] = {
		"",                                                 /* empty */
		"garbage\n",
		"ringstor-leases 2\nend 0\n",                       /* unknown version */
		"ringstor-leases 1\n",                              /* truncated: no end */
		"ringstor-leases 1\nend 1\n",                       /* count mismatch */
		"ringstor-leases 1\nend 0",                         /* unterminated line */
		"ringstor-leases 1\nend 0\nscsi\n",                 /* data after end */
		"ringstor-leases 1\nscsi naa=60 epoch=1 held=1 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=6000000000000000000000000000000g epoch=1 held=1 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=x held=1 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 held=1 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=0 held=1 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=1 held=2 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=1 held=1 holder=\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=1 held=1 holder=a%2Cb\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=1 held=1 holder=iqn.x color=red\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=1 held=1 holder=iqn.x target=%00\nend 1\n",
		("ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=1 held=1 holder=iqn.x\n"
		 "scsi naa=60000000000000000000000000000001 epoch=2 held=0 holder=iqn.y\nend 2\n"),
		"ringstor-leases 1\nnfs export=1 fid=08000000015a epoch=1 held=1 holder=h\nend 1\n",
		"ringstor-leases 1\nnfs fid=0100000001aa epoch=1 held=1 holder=h\nend 1\n",
		"ringstor-leases 1\nnfs export=1 fid=0100000001aa epoch=1 held=1 holder=1.2.3\nend 1\n",
		"ringstor-leases 1\nlvm naa=60000000000000000000000000000001 epoch=1 held=1 holder=iqn.x\nend 1\n",
		"ringstor-leases 1\nscsi naa=60000000000000000000000000000001 epoch=99999999999999999999 held=1 holder=iqn.x\nend 1\n",
	};
	struct lease_info a = scsi_obj(1);
	char path[400];
	uint64_t e;
	(void)state;

	snprintf(path, sizeof(path), "%s/leases", dir);
	assert_int_equal(lease_acquire(&a, H1, false, 0, &e, msg, sizeof(msg)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spit(path, bad[i]);
		if (lease_init(dir) != -EINVAL)
			fail_msg("damaged lease file %zu accepted: %s", i, bad[i]);
		/* a refused load changes nothing in a running table */
		assert_false(lease_scsi_write_allowed(a.key.naa, H2));
	}
	/* NUL byte */
	FILE *f = fopen(path, "w");
	fwrite("ringstor-leases 1\n\0end 0\n", 1, 25, f);
	fclose(f);
	assert_int_equal(lease_init(dir), -EINVAL);
	/* not a regular file */
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(lease_init(dir) < 0);
	rmdir(path);
	/* good files: comments, blank lines, minimal fields, a free entry */
	spit(path, "# hand-made\n\nringstor-leases 1\n"
	     "scsi naa=60000000000000000000000000000001 epoch=5 held=1 holder=iqn.x\n"
	     "\n# free\nnfs export=3 fid=0100000001aa epoch=2 held=0 holder=\nend 2\n");
	assert_int_equal(lease_init(dir), 0);
	assert_int_equal(lease_held_count(), 1);
	uint8_t naa[16] = { 0x60 };
	naa[15] = 1;
	assert_false(lease_scsi_write_allowed(naa, "iqn.y"));
	assert_true(lease_scsi_write_allowed(naa, "iqn.x,i,0x1"));
	/* no file at all: no leases */
	unlink(path);
	assert_int_equal(lease_init(dir), 0);
	assert_int_equal(lease_held_count(), 0);
}

static void test_persist_failure_changes_nothing(void **state)
{
	struct lease_info a = scsi_obj(1), b = scsi_obj(2), got;
	char moved[300];
	uint64_t e;
	(void)state;

	assert_int_equal(lease_acquire(&a, H1, false, 0, &e, msg, sizeof(msg)), 0);
	/* the state directory disappears (as root, permissions would not stop us) */
	snprintf(moved, sizeof(moved), "%s.moved", dir);
	assert_int_equal(rename(dir, moved), 0);
	assert_int_equal(lease_transfer(&a, H2, 1, &e, msg, sizeof(msg)), ENOENT);
	assert_non_null(strstr(msg, "nothing changed"));
	assert_int_equal(lease_acquire(&b, H1, false, 0, &e, msg, sizeof(msg)), ENOENT);
	assert_int_equal(lease_release(&a, NULL, 1, msg, sizeof(msg)), ENOENT);
	assert_int_equal(rename(moved, dir), 0);
	assert_int_equal(lease_get(&a.key, &got), 0);
	assert_true(got.held);
	assert_int_equal(got.epoch, 1);
	assert_string_equal(got.holder, H1);
	assert_int_equal(lease_get(&b.key, &got), -ENOENT);
	assert_false(lease_scsi_write_allowed(a.key.naa, H2));
	assert_true(lease_scsi_write_allowed(b.key.naa, H2));
	/* and it works again once the directory is back */
	assert_int_equal(lease_transfer(&a, H2, 1, &e, msg, sizeof(msg)), 0);
}

/* ------------------------------------------------------------ show */

static char *capture_show(bool json, const struct lease_key *k, int *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	*n = lease_show(f, json, k);
	fclose(f);
	return buf;
}

static void test_show(void **state)
{
	struct lease_info a = scsi_obj(1), n = nfs_obj(7, 1);
	uint64_t e;
	char *out;
	int cnt;
	(void)state;

	out = capture_show(true, NULL, &cnt);
	assert_int_equal(cnt, 0);
	assert_string_equal(out, "{\"leases\": []}\n");
	free(out);
	snprintf(n.path, sizeof(n.path), "/srv/\"q\"");
	assert_int_equal(lease_acquire(&a, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_acquire(&n, "10.1.2.3", false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_release(&n, NULL, 1, msg, sizeof(msg)), 0);
	out = capture_show(true, NULL, &cnt);
	assert_int_equal(cnt, 2);
	assert_non_null(strstr(out, "\"lld\": \"iscsi\", \"tid\": 1, \"lun\": 1, \"target\": "
			       "\"iqn.2026-11.io.ringstor:t\", \"naa\": \"60000000000000000000000000000001\", "
			       "\"held\": true, \"holder\": \"iqn.2026-11.test:host-a\", \"epoch\": 1}"));
	assert_non_null(strstr(out, "\"lld\": \"nfs\", \"export_id\": 7, \"path\": \"/srv/\\\"q\\\"\""));
	assert_non_null(strstr(out, "\"held\": false, \"holder\": \"10.1.2.3\", \"epoch\": 1}"));
	free(out);
	out = capture_show(false, &a.key, &cnt);
	assert_int_equal(cnt, 1);
	assert_non_null(strstr(out, "Lease: iscsi tid 1 lun 1 target iqn.2026-11.io.ringstor:t\n"));
	assert_non_null(strstr(out, "State: held\n"));
	assert_non_null(strstr(out, "Holder: iqn.2026-11.test:host-a\n"));
	assert_non_null(strstr(out, "Epoch: 1\n"));
	assert_null(strstr(out, "nfs"));
	free(out);
	out = capture_show(false, &n.key, &cnt);
	assert_non_null(strstr(out, "State: free\n    Last holder: 10.1.2.3\n"));
	free(out);
}

/* ------------------------------------------------------------ concurrency */

static atomic_bool stop_readers;
static atomic_long violations, reads;

static void *reader(void *arg)
{
	const struct lease_info *o = arg;
	struct lease_info free_lu = scsi_obj(200);
	uint8_t fh[64];
	size_t len;

	fake_fh(fh, &len, 7, 1);
	while (!atomic_load(&stop_readers)) {
		/* the lease stays held throughout (transfers between H1 and
		 * H2): a third initiator must never get through, an LU
		 * without a lease must always be writable */
		if (lease_scsi_write_allowed(o->key.naa, "iqn.2026-11.test:intruder,i,0x1"))
			atomic_fetch_add(&violations, 1);
		if (!lease_scsi_write_allowed(free_lu.key.naa, "iqn.2026-11.test:intruder"))
			atomic_fetch_add(&violations, 1);
		if (lease_nfs_write_allowed(7, fh, len, "192.0.2.99", "intruder"))
			atomic_fetch_add(&violations, 1);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	struct lease_info o = scsi_obj(1), n = nfs_obj(7, 1), extra;
	pthread_t th[4];
	uint64_t e = 0;
	(void)state;

	assert_int_equal(lease_acquire(&o, H1, false, 0, &e, msg, sizeof(msg)), 0);
	assert_int_equal(lease_acquire(&n, "192.0.2.1", false, 0, &e, msg, sizeof(msg)), 0);
	atomic_store(&stop_readers, false);
	atomic_store(&violations, 0);
	atomic_store(&reads, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &o), 0);
	uint64_t cur = 1;
	for (int i = 0; i < 120; i++) {
		uint64_t ne;
		assert_int_equal(lease_transfer(&o, (i & 1) ? H1 : H2, cur, &ne, msg, sizeof(msg)), 0);
		assert_int_equal(ne, cur + 1);
		cur = ne;
		/* table growth (reallocation) while readers scan it */
		extra = scsi_obj((uint8_t)(10 + i % 60));
		extra.key.naa[14] = (uint8_t)(i / 60 + 1);
		assert_int_equal(lease_acquire(&extra, H1, false, 0, &ne, msg, sizeof(msg)), 0);
		assert_int_equal(lease_release(&extra, NULL, ne, msg, sizeof(msg)), 0);
	}
	atomic_store(&stop_readers, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&violations), 0);
	assert_true(atomic_load(&reads) > 0);
	assert_int_equal(cur, 121);
}

/* ------------------------------------------------------------ wire format */

static void test_proto_lease_fields(void **state)
{
	static struct ctl_request r, back;
	static char buf[CTL_REQ_MAX];
	char err[200];
	int n;
	(void)state;

	assert_int_equal(ctl_mode_parse("lease"), CTL_MODE_LEASE);
	assert_string_equal(ctl_mode_name(CTL_MODE_LEASE), "lease");
	assert_int_equal(ctl_op_parse("acquire"), CTL_OP_ACQUIRE);
	assert_int_equal(ctl_op_parse("transfer"), CTL_OP_TRANSFER);
	assert_int_equal(ctl_op_parse("release"), CTL_OP_RELEASE);
	for (int o = CTL_OP_ACQUIRE; o <= CTL_OP_RELEASE; o++)
		assert_int_equal(ctl_op_parse(ctl_op_name((enum ctl_op)o)), o);
	ctl_request_init(&r);
	r.mode = CTL_MODE_LEASE;
	r.op = CTL_OP_TRANSFER;
	r.has_export_id = true;
	r.export_id = 4000000000u;
	snprintf(r.file, sizeof(r.file), "dir with space/vm%%1.img");
	snprintf(r.holder, sizeof(r.holder), "host.example");
	r.has_epoch = true;
	r.epoch = UINT64_MAX;
	n = ctl_request_encode(&r, buf, sizeof(buf));
	assert_true(n > 0);
	assert_non_null(strstr(buf, "epoch=18446744073709551615\n"));
	assert_int_equal(ctl_request_decode(buf, (size_t)n, &back, err, sizeof(err)), 0);
	assert_int_equal(back.mode, CTL_MODE_LEASE);
	assert_int_equal(back.op, CTL_OP_TRANSFER);
	assert_true(back.has_epoch);
	assert_true(back.epoch == UINT64_MAX);
	assert_string_equal(back.holder, "host.example");
	assert_string_equal(back.file, "dir with space/vm%1.img");
	/* epoch 0 is a value, not "absent" */
	r.epoch = 0;
	n = ctl_request_encode(&r, buf, sizeof(buf));
	assert_int_equal(ctl_request_decode(buf, (size_t)n, &back, err, sizeof(err)), 0);
	assert_true(back.has_epoch);
	assert_true(back.epoch == 0);
	/* malformed epochs */
	static const char *bad[] = {
		"ringstor-ctl 1\nmode=lease\nop=release\nepoch=-1\n\n",
		"ringstor-ctl 1\nmode=lease\nop=release\nepoch=18446744073709551616\n\n",
		"ringstor-ctl 1\nmode=lease\nop=release\nepoch=\n\n",
		"ringstor-ctl 1\nmode=lease\nop=release\nepoch=1\nepoch=2\n\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctl_request_decode(bad[i], strlen(bad[i]), &back, err, sizeof(err)), -1);
}

/* ------------------------------------------------------------ control plane */

static int exec(struct ctl_request *r, char **body)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = control_execute(r, f, msg, sizeof(msg));

	fclose(f);
	if (body)
		*body = buf;
	else
		free(buf);
	return rc;
}

static void lease_req(struct ctl_request *r, enum ctl_op op)
{
	ctl_request_init(r);
	r->mode = CTL_MODE_LEASE;
	r->op = op;
}

static void test_control_iscsi(void **state)
{
	static struct ctl_request r;
	struct reg_lun_spec spec = { .lun = 1, .bstype = "null",
				     .bs = { .block_size = 512, .size = 1 << 20 } };
	struct iscsi_target *t;
	struct scsi_lu *lu;
	uint8_t naa[16], naa2[16];
	char err[256], *body;
	(void)state;

	assert_int_equal(reg_init(), 0);
	reg_set_appliance_id("0123456789abcdef0123456789abcdef");
	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:lease", err, sizeof(err)), 0);
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), 0);
	t = reg_target_get("iqn.2026-11.io.ringstor:lease");
	assert_non_null(t);
	lu = reg_target_lun_get(t, 1);
	assert_non_null(lu);
	memcpy(naa, lu->naa, 16);
	scsi_lu_put(lu);

	lease_req(&r, CTL_OP_ACQUIRE);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	r.lun = 1;
	assert_int_equal(exec(&r, NULL), EINVAL);           /* no holder */
	snprintf(r.holder, sizeof(r.holder), "%s", H1);
	assert_int_equal(exec(&r, &body), 0);
	assert_string_equal(body, "1\n");
	free(body);
	assert_false(lease_scsi_write_allowed(naa, H2));
	assert_true(lease_scsi_write_allowed(naa, H1));
	r.lun = 2;
	assert_int_equal(exec(&r, NULL), ENOENT);           /* no such LUN */
	r.tid = 5;
	assert_int_equal(exec(&r, NULL), ENOENT);           /* no such target */
	r.tid = 1;
	r.lun = 1;
	snprintf(r.holder, sizeof(r.holder), "%s", H2);
	assert_int_equal(exec(&r, NULL), EBUSY);

	lease_req(&r, CTL_OP_TRANSFER);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	r.lun = 1;
	snprintf(r.holder, sizeof(r.holder), "%s", H2);
	assert_int_equal(exec(&r, NULL), EINVAL);           /* no epoch */
	r.has_epoch = true;
	r.epoch = 0;
	assert_int_equal(exec(&r, NULL), ESTALE);
	assert_non_null(strstr(msg, "stale epoch"));
	r.epoch = 1;
	r.json = true;
	assert_int_equal(exec(&r, &body), 0);
	assert_string_equal(body, "{\"epoch\": 2, \"held\": true, \"holder\": \"iqn.2026-11.test:host-b\"}\n");
	free(body);

	lease_req(&r, CTL_OP_SHOW);
	r.json = true;
	assert_int_equal(exec(&r, &body), 0);
	assert_non_null(strstr(body, "\"tid\": 1, \"lun\": 1, \"target\": \"iqn.2026-11.io.ringstor:lease\""));
	free(body);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	r.lun = 1;
	assert_int_equal(exec(&r, &body), 0);
	assert_non_null(strstr(body, "\"epoch\": 2"));
	free(body);
	/* an existing LU without a lease: an empty list, not an error */
	spec.lun = 3;
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), 0);
	spec.lun = 1;
	r.lun = 3;
	assert_int_equal(exec(&r, &body), 0);
	assert_string_equal(body, "{\"leases\": []}\n");
	free(body);
	r.lun = 1;

	/* the LU is deleted and re-created under the same name and number:
	 * same NAA, the lease still applies */
	assert_int_equal(reg_lun_delete(1, 1, err, sizeof(err)), 0);
	assert_false(lease_scsi_write_allowed(naa, H1));
	r.op = CTL_OP_SHOW;                                  /* found through its description */
	assert_int_equal(exec(&r, NULL), 0);
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), 0);
	lu = reg_target_lun_get(t, 1);
	memcpy(naa2, lu->naa, 16);
	scsi_lu_put(lu);
	assert_memory_equal(naa, naa2, 16);
	assert_false(lease_scsi_write_allowed(naa2, H1));

	/* release: stale, wrong holder, right */
	lease_req(&r, CTL_OP_RELEASE);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	r.lun = 1;
	r.has_epoch = true;
	r.epoch = 1;
	assert_int_equal(exec(&r, NULL), ESTALE);
	r.epoch = 2;
	snprintf(r.holder, sizeof(r.holder), "%s", H1);
	assert_int_equal(exec(&r, NULL), EBUSY);
	r.holder[0] = '\0';
	assert_int_equal(exec(&r, &body), 0);
	assert_string_equal(body, "2\n");
	free(body);
	assert_true(lease_scsi_write_allowed(naa, H1));

	/* argument errors */
	lease_req(&r, CTL_OP_NEW);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	assert_int_equal(exec(&r, NULL), EINVAL);
	lease_req(&r, CTL_OP_ACQUIRE);
	snprintf(r.holder, sizeof(r.holder), "%s", H1);
	assert_int_equal(exec(&r, NULL), EINVAL);           /* no object */
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	snprintf(r.path, sizeof(r.path), "/x");
	assert_int_equal(exec(&r, NULL), EINVAL);           /* both kinds */

	reg_target_put(t);
	reg_shutdown();
}

static void test_control_nfs(void **state)
{
	static struct ctl_request r;
	struct export_client *clients = NULL;
	uint8_t key[32] = { 3 };
	char exp[300], file[400], real[PATH_MAX], line[PATH_MAX + 64], path[PATH_MAX];
	struct nfs_export *e;
	struct nfs_fh fh;
	int nclients = 0, fd;
	char *body;
	(void)state;

	fh_secret_set(key);
	snprintf(exp, sizeof(exp), "%s/export", dir);
	assert_int_equal(mkdir(exp, 0755), 0);
	snprintf(file, sizeof(file), "%s/vm.img", exp);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	close(fd);
	assert_non_null(realpath(exp, real));
	snprintf(line, sizeof(line), "%s *(rw,fsid=42)", real);
	assert_int_equal(exports_parse_line(line, path, sizeof(path), &clients, &nclients, msg,
					    sizeof(msg)), 0);
	assert_int_equal(nfs_export_add(path, clients, nclients, msg, sizeof(msg)), 0);
	free(clients);
	e = nfs_export_get_by_id(42);
	assert_non_null(e);
	if (fh_make(42, e->root_fd, "vm.img", &fh) < 0) {
		nfs_export_put(e);
		nfs_exports_clear();
		skip();
	}
	nfs_export_put(e);

	lease_req(&r, CTL_OP_ACQUIRE);
	snprintf(r.path, sizeof(r.path), "%s", file);
	snprintf(r.holder, sizeof(r.holder), "10.0.0.2");
	assert_int_equal(exec(&r, &body), 0);
	assert_string_equal(body, "1\n");
	free(body);
	assert_false(lease_nfs_write_allowed(42, fh.data, fh.len, "10.0.0.3", NULL));
	assert_true(lease_nfs_write_allowed(42, fh.data, fh.len, "10.0.0.2", NULL));

	/* the same file by export id + relative path */
	lease_req(&r, CTL_OP_TRANSFER);
	r.has_export_id = true;
	r.export_id = 42;
	snprintf(r.file, sizeof(r.file), "vm.img");
	snprintf(r.holder, sizeof(r.holder), "10.0.0.3");
	r.has_epoch = true;
	r.epoch = 1;
	assert_int_equal(exec(&r, &body), 0);
	assert_string_equal(body, "2\n");
	free(body);
	assert_true(lease_nfs_write_allowed(42, fh.data, fh.len, "10.0.0.3", NULL));
	assert_false(lease_nfs_write_allowed(42, fh.data, fh.len, "10.0.0.2", NULL));

	/* errors: the export root, a directory, a missing file, outside any export */
	lease_req(&r, CTL_OP_ACQUIRE);
	snprintf(r.holder, sizeof(r.holder), "10.0.0.2");
	snprintf(r.path, sizeof(r.path), "%s", real);
	assert_int_equal(exec(&r, NULL), EINVAL);
	snprintf(r.path, sizeof(r.path), "%.300s/nope", real);
	assert_int_equal(exec(&r, NULL), ENOENT);
	snprintf(r.path, sizeof(r.path), "/proc/version");
	assert_int_equal(exec(&r, NULL), ENOENT);
	r.path[0] = '\0';
	r.has_export_id = true;
	r.export_id = 43;
	snprintf(r.file, sizeof(r.file), "vm.img");
	assert_int_equal(exec(&r, NULL), ENOENT);

	/* a lease on a file that is gone is still found by its path */
	assert_int_equal(unlink(file), 0);
	lease_req(&r, CTL_OP_RELEASE);
	snprintf(r.path, sizeof(r.path), "%.300s/vm.img", real);
	r.has_epoch = true;
	r.epoch = 2;
	assert_int_equal(exec(&r, &body), 0);
	free(body);
	assert_true(lease_nfs_write_allowed(42, fh.data, fh.len, "10.0.0.2", NULL));
	nfs_exports_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opcodes),
		cmocka_unit_test(test_proto_lease_fields),
		cmocka_unit_test_setup_teardown(test_acquire_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_release_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_initialised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scsi_holder_matching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nfs_holder_matching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nfs_fid_from_real_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist_failure_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_iscsi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_nfs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
