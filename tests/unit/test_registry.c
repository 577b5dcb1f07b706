/* test_registry.c - target/LUN/ACL/session registry (target/registry.c) and
 * the control plane's request execution (core/control.c: control_execute).
 *
 * The SCSI core and the backends are stubbed here (SPDK style: one unit, its
 * neighbours faked) so that every UA the registry queues can be checked and
 * LU lifetimes observed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/control.h"
#include "core/control_proto.h"
#include "nfsgw/exports.h"
#include "target/registry.h"
#include "target/scsi_pr.h"

/* ------------------------------------------------------------ stubs */

static const struct bstore_ops fake_file_ops = { .name = "file" };
static const struct bstore_ops fake_null_ops = { .name = "null" };
static uint64_t fake_backing_size = 1ull << 30;   /* what a (re)read returns */
static atomic_int lu_alive, bs_alive;
static char last_seed[300];

struct ua_rec {
	uint64_t lun, nexus;
	uint8_t asc, ascq;
};
static struct ua_rec uas[256];
static int nuas, nclears;
static pthread_mutex_t ua_mu = PTHREAD_MUTEX_INITIALIZER;

const struct bstore_ops *bstore_find_ops(const char *type)
{
	if (type && !strcmp(type, "file"))
		return &fake_file_ops;
	if (type && !strcmp(type, "null"))
		return &fake_null_ops;
	return NULL;
}

int bstore_open(const char *type, const char *path, const struct bstore_params *p,
		struct bstore **out)
{
	struct bstore *bs;

	*out = NULL;
	if (!bstore_find_ops(type))
		return -EINVAL;
	if (path && strstr(path, "missing"))
		return -ENOENT;
	bs = calloc(1, sizeof(*bs));
	bs->ops = bstore_find_ops(type);
	bs->path = path ? strdup(path) : NULL;
	bs->fd = -1;
	bs->block_size = p->block_size ? p->block_size : 512;
	bs->size = p->size ? p->size : fake_backing_size;
	bs->readonly = p->readonly;
	bs->direct = p->direct;
	/* "/tmp/rsunit-*" paths are real files (online resize tests) */
	if (path && strncmp(path, "/tmp/rsunit-", 12) == 0) {
		struct stat st;
		bs->fd = open(path, (p->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (bs->fd < 0 || fstat(bs->fd, &st) < 0) {
			int e = -errno;
			if (bs->fd >= 0)
				close(bs->fd);
			free(bs->path);
			free(bs);
			return e;
		}
		bs->size = (uint64_t)st.st_size;
	}
	atomic_fetch_add(&bs_alive, 1);
	*out = bs;
	return 0;
}

void bstore_close(struct bstore *bs)
{
	if (!bs)
		return;
	if (bs->fd >= 0)
		close(bs->fd);
	free(bs->path);
	free(bs);
	atomic_fetch_sub(&bs_alive, 1);
}

/* APTPL restore at LU creation: nothing to restore in these tests. */
int scsi_pr_load(struct scsi_lu *lu)
{
	(void)lu;
	return 0;
}

struct scsi_lu *scsi_lu_create(uint64_t lun, struct bstore *bs, const struct scsi_lu_params *p)
{
	struct scsi_lu *lu = calloc(1, sizeof(*lu));

	lu->lun = lun;
	lu->bs = bs;
	lu->block_size = bs->block_size;
	atomic_init(&lu->nr_blocks, bs->size / bs->block_size);
	lu->readonly = p->readonly;
	snprintf(lu->serial, sizeof(lu->serial), "%s", p->serial ? p->serial : "beaf10");
	snprintf(lu->vendor, sizeof(lu->vendor), "RINGSTOR");
	snprintf(lu->product, sizeof(lu->product), "VIRTUAL-DISK");
	snprintf(last_seed, sizeof(last_seed), "%s", p->naa_seed ? p->naa_seed : "");
	atomic_init(&lu->refcnt, 1);
	atomic_fetch_add(&lu_alive, 1);
	return lu;
}

void scsi_lu_get(struct scsi_lu *lu)
{
	atomic_fetch_add(&lu->refcnt, 1);
}

void scsi_lu_put(struct scsi_lu *lu)
{
	if (atomic_fetch_sub(&lu->refcnt, 1) == 1) {
		bstore_close(lu->bs);
		free(lu);
		atomic_fetch_sub(&lu_alive, 1);
	}
}

void scsi_lu_ua_add(struct scsi_lu *lu, uint64_t nexus_id, uint8_t asc, uint8_t ascq)
{
	pthread_mutex_lock(&ua_mu);
	if (nuas < (int)(sizeof(uas) / sizeof(uas[0])))
		uas[nuas++] = (struct ua_rec){ lu->lun, nexus_id, asc, ascq };
	pthread_mutex_unlock(&ua_mu);
}

void scsi_lu_ua_clear_nexus(struct scsi_lu *lu, uint64_t nexus_id)
{
	(void)lu;
	(void)nexus_id;
	nclears++;
}

int scsi_lu_refresh_capacity(struct scsi_lu *lu)
{
	uint64_t nb = fake_backing_size / lu->block_size;
	struct stat st;

	/* a real file: its size; null: whatever was set; else the fake */
	if (lu->bs->fd >= 0 && fstat(lu->bs->fd, &st) == 0)
		lu->bs->size = (uint64_t)st.st_size;
	if (lu->bs->fd >= 0 || lu->bs->ops == &fake_null_ops)
		nb = lu->bs->size / lu->block_size;

	if (nb == atomic_load(&lu->nr_blocks))
		return 0;
	atomic_store(&lu->nr_blocks, nb);
	return 1;
}

/* ------------------------------------------------------------ helpers */

static int has_ua(uint64_t lun, uint64_t nexus, uint8_t asc, uint8_t ascq)
{
	int n = 0;
	for (int i = 0; i < nuas; i++)
		if (uas[i].lun == lun && uas[i].nexus == nexus && uas[i].asc == asc && uas[i].ascq == ascq)
			n++;
	return n;
}

static struct sockaddr_storage peer4(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;
	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
	return ss;
}

static int add_lun(int tid, uint64_t lun, const char *path)
{
	char err[256];
	struct reg_lun_spec spec = { .lun = lun, .path = path, .bstype = "file" };
	return reg_lun_new(tid, &spec, err, sizeof(err));
}

static int kills;
static void kill_hook(void *ctx)
{
	(void)ctx;
	kills++;
}

static int setup(void **state)
{
	(void)state;
	reg_init();
	nuas = 0;
	nclears = 0;
	kills = 0;
	fake_backing_size = 1ull << 30;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	reg_shutdown();
	assert_int_equal(atomic_load(&lu_alive), 0);
	assert_int_equal(atomic_load(&bs_alive), 0);
	return 0;
}

/* Capture what a show function prints. */
static char *capture_targets(int tid, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	reg_show_targets(f, tid, json);
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------ tests */

static void test_name_check(void **state)
{
	static const char *good[] = {
		"iqn.2026-11.io.ringstor:demo", "iqn.2001-04.com.example:storage.disk1",
		"iqn.1994-05.com.redhat:abc", "iqn.2026-11.io.ringstor", "eui.02004567A425678D",
		"naa.52004567BA64678D", "naa.62004567BA64678D0123456789ABCDEF",
	};
	static const char *bad[] = {
		"", "iqn", "iqn.", "iqn.2026-11", "iqn.2026-11.", "iqn.26-11.io.x", "iqn.2026-13.io.x",
		"iqn.2026-00.io.x", "iqn.2026_11.io.x", "iqn.2026-11.IO.ringstor:demo",
		"iqn.2026-11.io.ringstor:de mo", "iqn.2026-11.io.ringstor:demo/1", "eui.0200",
		"eui.02004567A425678G", "naa.1234", "foo.bar", "IQN.2026-11.io.x",
		"iqn.2026-11.:x",
	};
	char err[256];
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (reg_name_check(good[i], err, sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", good[i], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (reg_name_check(bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(err[0]);
	}
	char longname[300] = "iqn.2026-11.io.ringstor:";
	memset(longname + strlen(longname), 'a', 250);
	longname[280] = '\0';
	assert_int_equal(reg_name_check(longname, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
	assert_int_equal(reg_name_check(NULL, NULL, 0), -EINVAL);
}

static void test_bstype(void **state)
{
	(void)state;
	assert_string_equal(reg_bstype_canonical("rdwr"), "file");
	assert_string_equal(reg_bstype_canonical("aio"), "file");
	assert_string_equal(reg_bstype_canonical("file"), "file");
	assert_string_equal(reg_bstype_canonical(""), "file");
	assert_string_equal(reg_bstype_canonical(NULL), "file");
	assert_string_equal(reg_bstype_canonical("null"), "null");
	assert_null(reg_bstype_canonical("sg"));
}

static void test_target_new_delete(void **state)
{
	char err[256];
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:b", err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "already exists"));
	assert_int_equal(reg_target_new(2, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), -EEXIST);
	assert_int_equal(reg_target_new(0, "iqn.2026-11.io.ringstor:c", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_target_new(-4, "iqn.2026-11.io.ringstor:c", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_target_new(3, "bogus", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid iSCSI name"));
	assert_true(reg_target_exists(1));
	assert_false(reg_target_exists(2));

	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	assert_non_null(t);
	assert_int_equal(reg_target_tid(t), 1);
	assert_string_equal(reg_target_name(t), "iqn.2026-11.io.ringstor:a");
	reg_target_put(t);
	/* names compare case-insensitively (RFC 3722) */
	t = reg_target_get("IQN.2026-11.IO.RINGSTOR:A");
	assert_non_null(t);
	reg_target_put(t);
	assert_null(reg_target_get("iqn.2026-11.io.ringstor:zzz"));
	assert_null(reg_target_get(NULL));

	assert_int_equal(reg_target_delete(7, false, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "can't find the target 7"));
	assert_int_equal(reg_target_delete(1, false, err, sizeof(err)), 0);
	assert_false(reg_target_exists(1));
	assert_null(reg_target_get("iqn.2026-11.io.ringstor:a"));
	/* the name is free again */
	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
}

static void test_lun_errors_and_order(void **state)
{
	char err[256];
	uint64_t luns[8];
	struct reg_lun_spec spec = { .lun = 1, .path = "/x.img", .bstype = "file" };
	(void)state;

	assert_int_equal(add_lun(1, 1, "/x.img"), -ENOENT);   /* no target */
	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	spec.lun = 16384;
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid LUN"));
	spec.lun = 1;
	spec.bstype = "sg";
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "backing store type"));
	spec.bstype = "file";
	spec.path = "";
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "path is required"));
	spec.path = "/x.img";
	spec.bs.block_size = 1024;
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "block size"));
	spec.bs.block_size = 0;
	spec.path = "/nonexistent/missing.img";
	assert_int_equal(reg_lun_new(1, &spec, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.img"));
	assert_int_equal(atomic_load(&bs_alive), 0);
	assert_int_equal(reg_lun_new(1, NULL, err, sizeof(err)), -EINVAL);

	assert_int_equal(add_lun(1, 5, "/5.img"), 0);
	assert_string_equal(last_seed, "iqn.2026-11.io.ringstor:a/5");
	assert_int_equal(add_lun(1, 1, "/1.img"), 0);
	assert_int_equal(add_lun(1, 3, "/3.img"), 0);
	assert_int_equal(add_lun(1, 0, "/0.img"), 0);
	assert_int_equal(add_lun(1, 16383, "/max.img"), 0);
	assert_int_equal(add_lun(1, 3, "/3b.img"), -EEXIST);
	/* null backend needs no path */
	struct reg_lun_spec nspec = { .lun = 9, .bstype = "null" };
	assert_int_equal(reg_lun_new(1, &nspec, err, sizeof(err)), 0);

	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	assert_int_equal(reg_target_luns(t, luns, 8), 6);
	uint64_t want[] = { 0, 1, 3, 5, 9, 16383 };
	for (int i = 0; i < 6; i++)
		assert_true(luns[i] == want[i]);
	/* max smaller than the count: still the total */
	assert_int_equal(reg_target_luns(t, luns, 2), 6);
	assert_true(luns[0] == 0 && luns[1] == 1);

	assert_int_equal(reg_lun_delete(1, 4, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_lun_delete(2, 1, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_lun_delete(1, 3, err, sizeof(err)), 0);
	assert_null(reg_target_lun_get(t, 3));
	assert_int_equal(reg_target_luns(t, luns, 8), 5);
	reg_target_put(t);
	assert_int_equal(atomic_load(&lu_alive), 5);
}

static void test_lun_delete_in_flight(void **state)
{
	char err[256];
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(add_lun(1, 1, "/1.img"), 0);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	struct scsi_lu *lu = reg_target_lun_get(t, 1);   /* a command in flight */
	assert_non_null(lu);
	assert_null(reg_target_lun_get(t, 2));
	assert_int_equal(reg_lun_delete(1, 1, err, sizeof(err)), 0);
	/* still usable by the command holding it */
	assert_int_equal(atomic_load(&lu_alive), 1);
	assert_int_equal(lu->block_size, 512);
	scsi_lu_put(lu);
	assert_int_equal(atomic_load(&lu_alive), 0);
	reg_target_put(t);
}

static void test_acl(void **state)
{
	char err[256];
	struct sockaddr_storage lo = peer4("127.0.0.1"), other = peer4("192.0.2.5");
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	/* tgt semantics: no ACL admits nobody */
	assert_false(reg_target_permits(t, (struct sockaddr *)&lo, "iqn.2026-11.test:init1"));
	assert_int_equal(reg_bind_addr(1, "127.0.0.1", err, sizeof(err)), 0);
	assert_true(reg_target_permits(t, (struct sockaddr *)&lo, "iqn.2026-11.test:init1"));
	assert_false(reg_target_permits(t, (struct sockaddr *)&other, "iqn.2026-11.test:init1"));
	assert_int_equal(reg_bind_addr(1, "127.0.0.1", err, sizeof(err)), -EEXIST);
	assert_int_equal(reg_bind_addr(1, "10.0.0.0/33", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "prefix"));
	assert_int_equal(reg_bind_addr(9, "ALL", err, sizeof(err)), -ENOENT);
	/* a name ACL admits by name from any address (address OR name) */
	assert_int_equal(reg_bind_initiator(1, "iqn.2026-11.test:init2", err, sizeof(err)), 0);
	assert_true(reg_target_permits(t, (struct sockaddr *)&other, "iqn.2026-11.test:init2"));
	assert_true(reg_target_permits(t, (struct sockaddr *)&other, "IQN.2026-11.TEST:INIT2"));
	assert_false(reg_target_permits(t, (struct sockaddr *)&other, "iqn.2026-11.test:init3"));
	assert_false(reg_target_permits(t, (struct sockaddr *)&other, NULL));
	assert_int_equal(reg_bind_initiator(1, "iqn.2026-11.test:init2", err, sizeof(err)), -EEXIST);
	assert_int_equal(reg_bind_initiator(1, "not-a-name", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_unbind_initiator(1, "iqn.2026-11.test:init9", err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_unbind_initiator(1, "iqn.2026-11.test:init2", err, sizeof(err)), 0);
	assert_false(reg_target_permits(t, (struct sockaddr *)&other, "iqn.2026-11.test:init2"));
	/* unbind matches the canonical form */
	assert_int_equal(reg_bind_addr(1, "192.0.2.77/24", err, sizeof(err)), 0);
	assert_true(reg_target_permits(t, (struct sockaddr *)&other, NULL));
	assert_int_equal(reg_unbind_addr(1, "192.0.2.0/24", err, sizeof(err)), 0);
	assert_false(reg_target_permits(t, (struct sockaddr *)&other, NULL));
	assert_int_equal(reg_unbind_addr(1, "192.0.2.0/24", err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_unbind_addr(1, "zzz", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_bind_addr(1, "ALL", err, sizeof(err)), 0);
	assert_true(reg_target_permits(t, (struct sockaddr *)&other, NULL));
	assert_false(reg_target_permits(NULL, (struct sockaddr *)&other, NULL));
	reg_target_put(t);
}

static void collect(const char *iqn, void *arg)
{
	char *out = arg;
	strcat(out, iqn);
	strcat(out, ";");
}

static void test_foreach_permitted(void **state)
{
	char err[256], seen[1024] = "";
	struct sockaddr_storage lo = peer4("127.0.0.1");
	(void)state;

	assert_int_equal(reg_target_new(2, "iqn.2026-11.io.ringstor:b", err, sizeof(err)), 0);
	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(reg_target_new(3, "iqn.2026-11.io.ringstor:c", err, sizeof(err)), 0);
	assert_int_equal(reg_bind_addr(1, "127.0.0.0/8", err, sizeof(err)), 0);
	assert_int_equal(reg_bind_initiator(3, "iqn.2026-11.test:init1", err, sizeof(err)), 0);
	reg_foreach_permitted((struct sockaddr *)&lo, "iqn.2026-11.test:init1", collect, seen);
	assert_string_equal(seen, "iqn.2026-11.io.ringstor:a;iqn.2026-11.io.ringstor:c;");
	seen[0] = '\0';
	reg_foreach_permitted((struct sockaddr *)&lo, "iqn.2026-11.test:x", collect, seen);
	assert_string_equal(seen, "iqn.2026-11.io.ringstor:a;");
}

static void test_sessions_ua_and_delete(void **state)
{
	char err[256];
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(add_lun(1, 1, "/1.img"), 0);
	assert_int_equal(add_lun(1, 2, "/2.img"), 0);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	uint64_t n1 = reg_new_nexus_id(), n2 = reg_new_nexus_id();
	assert_true(n1 != 0 && n2 != 0 && n1 != n2);
	struct reg_session_info si = { .nexus_id = n1, .tsih = 1, .kill = kill_hook };
	strcpy(si.initiator, "iqn.2026-11.test:init1");
	strcpy(si.alias, "host1");
	strcpy(si.peer_addr, "127.0.0.1:40000");
	strcpy(si.params, "MaxRecvDataSegmentLength=262144\nHeaderDigest=None\n");
	assert_int_equal(reg_session_add(t, &si), 0);
	assert_int_equal(reg_session_add(t, &si), -EEXIST);
	si.nexus_id = 0;
	assert_int_equal(reg_session_add(t, &si), -EINVAL);
	si.nexus_id = n2;
	strcpy(si.peer_addr, "[::1]:40001");
	si.alias[0] = '\0';
	assert_int_equal(reg_session_add(t, &si), 0);

	/* targeted UA, with an exception (e.g. LUN RESET from n1) */
	nuas = 0;
	reg_target_ua(t, 1, n1, 0x29, 0x03);
	assert_int_equal(nuas, 1);
	assert_int_equal(has_ua(1, n2, 0x29, 0x03), 1);
	/* all LUs */
	nuas = 0;
	reg_target_ua(t, UINT64_MAX, 0, 0x2a, 0x01);
	assert_int_equal(nuas, 4);
	/* a new LUN: REPORTED LUNS DATA HAS CHANGED for every nexus on every LU */
	nuas = 0;
	assert_int_equal(add_lun(1, 3, "/3.img"), 0);
	assert_int_equal(has_ua(1, n1, 0x3f, 0x0e), 1);
	assert_int_equal(has_ua(2, n2, 0x3f, 0x0e), 1);
	assert_int_equal(has_ua(3, n2, 0x3f, 0x0e), 1);
	assert_int_equal(nuas, 6);
	nuas = 0;
	assert_int_equal(reg_lun_delete(1, 3, err, sizeof(err)), 0);
	assert_int_equal(nuas, 4);
	assert_int_equal(has_ua(3, n1, 0x3f, 0x0e), 0);

	/* online resize */
	nuas = 0;
	assert_int_equal(reg_lun_refresh(1, 2, err, sizeof(err)), 0);
	assert_int_equal(nuas, 0);           /* unchanged: no UA */
	fake_backing_size = 2ull << 30;
	assert_int_equal(reg_lun_refresh(1, 2, err, sizeof(err)), 0);
	assert_int_equal(has_ua(2, n1, 0x2a, 0x09), 1);
	assert_int_equal(has_ua(2, n2, 0x2a, 0x09), 1);
	assert_int_equal(nuas, 2);
	assert_int_equal(reg_lun_refresh(1, 7, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_lun_refresh(5, 1, err, sizeof(err)), -ENOENT);

	/* show: tgtadm layout */
	char *out = capture_targets(-1, false);
	assert_non_null(strstr(out, "Target 1: iqn.2026-11.io.ringstor:a\n"
				    "    System information:\n"
				    "        Driver: iscsi\n"
				    "        State: ready\n"
				    "    I_T nexus information:\n"));
	assert_non_null(strstr(out, "            Initiator: iqn.2026-11.test:init1 alias: host1\n"
				    "            Connection: 0\n"
				    "                IP Address: 127.0.0.1\n"));
	assert_non_null(strstr(out, "alias: none\n"));
	assert_non_null(strstr(out, "                IP Address: ::1\n"));
	assert_non_null(strstr(out, "        LUN: 1\n            Type: disk\n"));
	assert_non_null(strstr(out, "            Size: 1074 MB, Block size: 512\n"));
	assert_non_null(strstr(out, "            Size: 2147 MB, Block size: 512\n"));
	assert_non_null(strstr(out, "            Backing store type: file\n"
				    "            Backing store path: /1.img\n"));
	assert_non_null(strstr(out, "    Account information:\n    ACL information:\n"));
	free(out);
	out = capture_targets(1, true);
	assert_non_null(strstr(out, "\"initiator\": \"iqn.2026-11.test:init1\""));
	assert_non_null(strstr(out, "\"size_bytes\": 2147483648"));
	free(out);

	char *sbuf = NULL;
	size_t slen = 0;
	FILE *f = open_memstream(&sbuf, &slen);
	assert_int_equal(reg_show_sessions(f, -1, 0, true, false), 0);
	assert_int_equal(reg_show_sessions(f, 1, n2, false, true), 0);
	assert_int_equal(reg_show_sessions(f, 9, 0, false, false), -ENOENT);
	assert_int_equal(reg_show_sessions(f, 1, 999999, false, false), -ENOENT);
	fclose(f);
	assert_non_null(strstr(sbuf, "Session: "));
	assert_non_null(strstr(sbuf, "        MaxRecvDataSegmentLength=262144\n"));
	assert_non_null(strstr(sbuf, "\"address\": \"::1\""));
	free(sbuf);

	/* delete while sessions exist: EBUSY, then force kills them */
	assert_int_equal(reg_target_delete(1, false, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "--force"));
	assert_int_equal(kills, 0);
	assert_int_equal(reg_target_delete(1, true, err, sizeof(err)), 0);
	assert_int_equal(kills, 2);
	assert_false(reg_target_exists(1));
	/* the sessions still hold the target; a new session cannot join */
	si.nexus_id = reg_new_nexus_id();
	assert_int_equal(reg_session_add(t, &si), -ENOENT);
	assert_false(reg_target_permits(t, NULL, "x"));
	assert_int_equal(atomic_load(&lu_alive), 2);
	nclears = 0;
	reg_session_del(t, n1);
	reg_session_del(t, n2);
	reg_session_del(t, n2);   /* twice is harmless */
	assert_int_equal(nclears, 4);
	reg_target_put(t);        /* last reference: LUs go */
	assert_int_equal(atomic_load(&lu_alive), 0);
}

static void test_show_json_escaping(void **state)
{
	char err[256];
	(void)state;

	assert_int_equal(reg_target_new(4, "iqn.2026-11.io.ringstor:q", err, sizeof(err)), 0);
	assert_int_equal(add_lun(4, 1, "/tmp/we\"ird\\pa\th\x01\xff.img"), 0);
	char *out = capture_targets(4, true);
	assert_non_null(strstr(out, "\"backing_store_path\": \"/tmp/we\\\"ird\\\\pa\\u0009h\\u0001\\ufffd.img\""));
	assert_non_null(strstr(out, "{\"targets\": [{\"tid\": 4"));
	free(out);
	out = capture_targets(99, true);
	assert_string_equal(out, "{\"targets\": []}\n");
	free(out);
	out = capture_targets(99, false);
	assert_string_equal(out, "");
	free(out);

	char *sbuf = NULL;
	size_t slen = 0;
	const char *portals[] = { "127.0.0.1:3260,1", "[::1]:3260,1" };
	reg_set_sys_info("9.9.9", 2, portals, 2);
	FILE *f = open_memstream(&sbuf, &slen);
	reg_show_sys(f, false);
	reg_show_sys(f, true);
	fclose(f);
	assert_non_null(strstr(sbuf, "System:\n    State: ready\n    debug: off\n"));
	assert_non_null(strstr(sbuf, "LLDs:\n    iscsi: ready\n"));
	assert_non_null(strstr(sbuf, "Portals:\n    127.0.0.1:3260,1\n    [::1]:3260,1\n"));
	assert_non_null(strstr(sbuf, "\"version\": \"9.9.9\""));
	free(sbuf);
}

/* ---- control_execute: the daemon side of ringstoradm ---- */

static int exec(struct ctl_request *r, char **body, char *msg)
{
	size_t len = 0;
	FILE *f = open_memstream(body, &len);
	int code = control_execute(r, f, msg, CTL_MSG_MAX);
	fclose(f);
	return code;
}

static void test_control_execute(void **state)
{
	struct ctl_request r;
	char msg[CTL_MSG_MAX], *body = NULL;
	(void)state;

#define REQ(m, o) do { ctl_request_init(&r); r.mode = (m); r.op = (o); } while (0)
	REQ(CTL_MODE_TARGET, CTL_OP_NEW);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "--tid"));
	free(body);
	r.has_tid = true;
	r.tid = 1;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "--targetname"));
	free(body);
	strcpy(r.targetname, "iqn.2026-11.io.ringstor:ctl");
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_string_equal(msg, "ok");
	free(body);
	assert_int_equal(exec(&r, &body, msg), EEXIST);
	free(body);

	REQ(CTL_MODE_LU, CTL_OP_NEW);
	r.has_tid = true;
	r.tid = 1;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "--lun"));
	free(body);
	r.has_lun = true;
	r.lun = 1;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "--backing-store"));
	free(body);
	strcpy(r.backing_store, "/tmp/missing.img");
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);
	strcpy(r.backing_store, "/tmp/x.img");
	strcpy(r.params, "readonly=1,bogus=2");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "bogus"));
	free(body);
	strcpy(r.params, "readonly=maybe");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.params, "size=lots");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.params, "readonly=1,serial=ABC123");
	r.has_blocksize = true;
	r.blocksize = 1000;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	r.blocksize = 4096;
	strcpy(r.bstype, "sg");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.bstype, "aio");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);

	REQ(CTL_MODE_LU, CTL_OP_UPDATE);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	r.lun = 1;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.params, "refresh");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	strcpy(r.params, "refresh,readonly=0");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);

	REQ(CTL_MODE_TARGET, CTL_OP_BIND);
	r.has_tid = true;
	r.tid = 1;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.initiator_address, "10.0.0.0/40");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.initiator_address, "ALL");
	strcpy(r.initiator_name, "BAD NAME");
	assert_int_equal(exec(&r, &body, msg), EINVAL);   /* all or nothing */
	free(body);
	r.initiator_name[0] = '\0';
	assert_int_equal(exec(&r, &body, msg), 0);       /* ALL was rolled back */
	free(body);

	REQ(CTL_MODE_TARGET, CTL_OP_SHOW);
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_non_null(strstr(body, "Target 1: iqn.2026-11.io.ringstor:ctl\n"));
	assert_non_null(strstr(body, "            Readonly: Yes\n"));
	assert_non_null(strstr(body, "            SCSI SN: ABC123\n"));
	assert_non_null(strstr(body, "Block size: 4096"));
	assert_non_null(strstr(body, "        ALL\n"));
	free(body);
	r.has_tid = true;
	r.tid = 42;
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);

	REQ(CTL_MODE_TARGET, CTL_OP_UPDATE);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	REQ(CTL_MODE_SYS, CTL_OP_NEW);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	REQ(CTL_MODE_SYS, CTL_OP_SHOW);
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_non_null(strstr(body, "System:"));
	free(body);
	REQ(CTL_MODE_SESSION, CTL_OP_SHOW);
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	REQ(CTL_MODE_CONN, CTL_OP_SHOW);
	r.has_sid = true;
	r.sid = 77;
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);
	REQ(CTL_MODE_NONE, CTL_OP_SHOW);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);

	REQ(CTL_MODE_LU, CTL_OP_DELETE);
	r.has_tid = r.has_lun = true;
	r.tid = 1;
	r.lun = 1;
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);
	REQ(CTL_MODE_TARGET, CTL_OP_DELETE);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	r.has_tid = true;
	r.tid = 1;
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
#undef REQ
}

/* Data path readers racing the control plane (run under ASan/TSan). */
static atomic_bool stop_readers;

static void *reader(void *arg)
{
	struct iscsi_target *t = arg;
	uint64_t luns[16];

	while (!atomic_load(&stop_readers)) {
		int n = reg_target_luns(t, luns, 16);
		for (int i = 0; i < n && i < 16; i++) {
			struct scsi_lu *lu = reg_target_lun_get(t, luns[i]);
			if (lu) {
				assert_true(lu->block_size == 512);
				scsi_lu_put(lu);
			}
		}
	}
	return NULL;
}

/* ---- CHAP accounts ---- */

static char *capture_accounts(bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	reg_show_accounts(f, json);
	fclose(f);
	return buf;
}

static void test_accounts(void **state)
{
	char err[256], sec[REG_CHAP_SECRET_MAX], user[REG_CHAP_USER_MAX], longs[300];
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(reg_target_new(2, "iqn.2026-11.io.ringstor:b", err, sizeof(err)), 0);
	struct iscsi_target *t1 = reg_target_get("iqn.2026-11.io.ringstor:a");
	struct iscsi_target *t2 = reg_target_get("iqn.2026-11.io.ringstor:b");

	/* new: validation */
	assert_int_equal(reg_account_new("", "secretsecret12", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_account_new("a b", "secretsecret12", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_account_new("a\x01", "secretsecret12", err, sizeof(err)), -EINVAL);
	memset(longs, 'x', 256);
	longs[256] = '\0';
	assert_int_equal(reg_account_new(longs, "secretsecret12", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_account_new("alice", longs, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "xxxx"));       /* the secret is not echoed */
	assert_int_equal(reg_account_new("alice", "", err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_account_new("alice", "tab\there12345", err, sizeof(err)), -EINVAL);
	longs[255] = '\0';
	err[0] = '\0';
	assert_int_equal(reg_account_new("alice", longs, err, sizeof(err)), 0);   /* 255 bytes: ok */
	assert_string_equal(err, "");
	assert_int_equal(reg_account_new("alice", "other-secret-12", err, sizeof(err)), -EEXIST);
	/* RFC 7143 9.2.1: shorter than 12 bytes is accepted with a warning */
	assert_int_equal(reg_account_new("bob", "short", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "warning:"));
	assert_null(strstr(err, "short\""));
	assert_int_equal(reg_account_new("carol", "carol-secret-1", err, sizeof(err)), 0);
	assert_int_equal(reg_account_new("dave", "dave-secret-12", err, sizeof(err)), 0);

	/* nothing bound: no CHAP anywhere */
	assert_false(reg_chap_required(t1));
	assert_false(reg_chap_required(NULL));
	assert_int_equal(reg_chap_incoming_secret(t1, "alice", sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_outgoing(t1, user, sizeof(user), sec, sizeof(sec)), -ENOENT);

	/* bind: errors */
	assert_int_equal(reg_account_bind(9, "alice", false, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "target 9"));
	assert_int_equal(reg_account_bind(1, "zed", false, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_account_bind(1, "", false, err, sizeof(err)), -EINVAL);

	/* incoming + outgoing on target 1 */
	assert_int_equal(reg_account_bind(1, "alice", false, err, sizeof(err)), 0);
	assert_int_equal(reg_account_bind(1, "alice", false, err, sizeof(err)), -EEXIST);
	assert_int_equal(reg_account_bind(1, "carol", false, err, sizeof(err)), 0);
	assert_int_equal(reg_account_bind(1, "bob", true, err, sizeof(err)), 0);
	/* tgt: one outgoing account per target */
	assert_int_equal(reg_account_bind(1, "dave", true, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "bob"));
	assert_int_equal(reg_account_bind(1, "bob", true, err, sizeof(err)), -EEXIST);
	/* RFC 7143 9.2.1: one secret, one direction, on any target */
	assert_int_equal(reg_account_bind(2, "alice", true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "9.2.1"));
	assert_int_equal(reg_account_bind(2, "bob", false, err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_account_bind(1, "bob", false, err, sizeof(err)), -EINVAL);
	/* discovery (tid 0) */
	assert_int_equal(reg_account_bind(0, "carol", false, err, sizeof(err)), 0);
	assert_int_equal(reg_account_bind(0, "dave", true, err, sizeof(err)), 0);
	assert_int_equal(reg_account_bind(2, "dave", false, err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_account_bind(2, "dave", true, err, sizeof(err)), 0);

	assert_true(reg_chap_required(t1));
	assert_false(reg_chap_required(t2));     /* outgoing only */
	assert_true(reg_chap_required(NULL));
	assert_int_equal(reg_chap_incoming_secret(t1, "carol", sec, sizeof(sec)), 0);
	assert_string_equal(sec, "carol-secret-1");
	assert_int_equal(reg_chap_incoming_secret(t1, "alice", sec, 10), -ENOSPC);
	assert_int_equal(reg_chap_incoming_secret(t1, "alice", sec, sizeof(sec)), 0);
	assert_int_equal(strlen(sec), 255);
	assert_int_equal(reg_chap_incoming_secret(t1, "bob", sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_incoming_secret(t1, "dave", sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_incoming_secret(t1, NULL, sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_incoming_secret(t2, "carol", sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_incoming_secret(NULL, "carol", sec, sizeof(sec)), 0);
	assert_int_equal(reg_chap_incoming_secret(NULL, "alice", sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_outgoing(t1, user, sizeof(user), sec, sizeof(sec)), 0);
	assert_string_equal(user, "bob");
	assert_string_equal(sec, "short");
	assert_int_equal(reg_chap_outgoing(t1, user, 2, sec, sizeof(sec)), -ENOSPC);
	assert_int_equal(reg_chap_outgoing(NULL, user, sizeof(user), sec, sizeof(sec)), 0);
	assert_string_equal(user, "dave");
	assert_string_equal(sec, "dave-secret-12");

	/* show: names only, never a secret */
	char *out = capture_targets(1, false);
	assert_non_null(strstr(out, "    Account information:\n        alice\n        carol\n"
				"        bob (outgoing)\n    ACL information:\n"));
	assert_null(strstr(out, "secret"));
	free(out);
	out = capture_targets(1, true);
	assert_non_null(strstr(out, "\"accounts\": [{\"user\": \"alice\", \"outgoing\": false}, "
				"{\"user\": \"carol\", \"outgoing\": false}, "
				"{\"user\": \"bob\", \"outgoing\": true}]"));
	assert_null(strstr(out, "secret"));
	free(out);
	out = capture_accounts(false);
	assert_string_equal(out, "Account list:\n    alice\n    bob\n    carol\n    dave\n"
			    "Discovery account information:\n    carol\n    dave (outgoing)\n");
	free(out);
	out = capture_accounts(true);
	assert_string_equal(out, "{\"accounts\": [\"alice\", \"bob\", \"carol\", \"dave\"], "
			    "\"discovery\": [{\"user\": \"carol\", \"outgoing\": false}, "
			    "{\"user\": \"dave\", \"outgoing\": true}]}\n");
	free(out);

	/* unbind */
	assert_int_equal(reg_account_unbind(1, "bob", false, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_account_unbind(1, "alice", true, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_account_unbind(7, "alice", false, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_account_unbind(1, "bob", true, err, sizeof(err)), 0);
	assert_int_equal(reg_chap_outgoing(t1, user, sizeof(user), sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_account_bind(1, "dave", true, err, sizeof(err)), 0);  /* slot free */

	/* delete cascades: unbound from every target and from discovery */
	assert_int_equal(reg_account_delete("carol", err, sizeof(err)), 0);
	assert_int_equal(reg_account_delete("carol", err, sizeof(err)), -ENOENT);
	assert_false(reg_chap_required(NULL));
	assert_int_equal(reg_chap_incoming_secret(t1, "carol", sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_account_delete("dave", err, sizeof(err)), 0);
	assert_int_equal(reg_chap_outgoing(t1, user, sizeof(user), sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_outgoing(t2, user, sizeof(user), sec, sizeof(sec)), -ENOENT);
	assert_int_equal(reg_chap_outgoing(NULL, user, sizeof(user), sec, sizeof(sec)), -ENOENT);
	assert_true(reg_chap_required(t1));     /* alice remains */
	out = capture_targets(1, false);
	assert_non_null(strstr(out, "    Account information:\n        alice\n    ACL information:\n"));
	free(out);
	/* a re-created account of the same name is not bound anywhere */
	assert_int_equal(reg_account_new("carol", "carol-secret-2", err, sizeof(err)), 0);
	assert_int_equal(reg_chap_incoming_secret(t1, "carol", sec, sizeof(sec)), -ENOENT);
	/* the registry sees the current secret at every login */
	assert_int_equal(reg_account_delete("alice", err, sizeof(err)), 0);
	assert_int_equal(reg_account_new("alice", "new-alice-secret", err, sizeof(err)), 0);
	assert_int_equal(reg_account_bind(1, "alice", false, err, sizeof(err)), 0);
	assert_int_equal(reg_chap_incoming_secret(t1, "alice", sec, sizeof(sec)), 0);
	assert_string_equal(sec, "new-alice-secret");

	/* deleting a target with bindings (ASan checks the bindings go too) */
	reg_target_put(t1);
	reg_target_put(t2);
	assert_int_equal(reg_target_delete(1, false, err, sizeof(err)), 0);
	assert_int_equal(reg_account_bind(1, "alice", false, err, sizeof(err)), -ENOENT);
}

/* ---- online resize ---- */

static void test_lun_resize(void **state)
{
	char err[256], path[] = "/tmp/rsunit-XXXXXX";
	struct stat st;
	int fd;
	(void)state;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 << 20), 0);
	close(fd);
	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(add_lun(1, 1, path), 0);
	struct reg_lun_spec nspec = { .lun = 2, .bstype = "null", .bs = { .size = 4 << 20 } };
	assert_int_equal(reg_lun_new(1, &nspec, err, sizeof(err)), 0);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	uint64_t n1 = reg_new_nexus_id(), n2 = reg_new_nexus_id();
	struct reg_session_info si = { .nexus_id = n1, .kill = kill_hook };
	strcpy(si.initiator, "iqn.2026-11.test:init1");
	assert_int_equal(reg_session_add(t, &si), 0);
	si.nexus_id = n2;
	assert_int_equal(reg_session_add(t, &si), 0);
	struct scsi_lu *lu = reg_target_lun_get(t, 1);
	assert_true(atomic_load(&lu->nr_blocks) == (8 << 20) / 512);

	/* grow: file extended, capacity updated, 2A/09 to every nexus */
	nuas = 0;
	assert_int_equal(reg_lun_resize(1, 1, 16 << 20, false, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 16 << 20);
	assert_true(atomic_load(&lu->nr_blocks) == (16 << 20) / 512);
	assert_int_equal(nuas, 2);
	assert_int_equal(has_ua(1, n1, 0x2a, 0x09), 1);
	assert_int_equal(has_ua(1, n2, 0x2a, 0x09), 1);
	/* same size: nothing happens */
	nuas = 0;
	assert_int_equal(reg_lun_resize(1, 1, 16 << 20, false, err, sizeof(err)), 0);
	assert_int_equal(nuas, 0);
	/* shrink only with force */
	assert_int_equal(reg_lun_resize(1, 1, 4 << 20, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--force"));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 16 << 20);
	assert_int_equal(reg_lun_resize(1, 1, 4 << 20, true, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 4 << 20);
	assert_true(atomic_load(&lu->nr_blocks) == (4 << 20) / 512);
	assert_int_equal(has_ua(1, n1, 0x2a, 0x09), 1);
	/* bad sizes, unknown LUN/target */
	assert_int_equal(reg_lun_resize(1, 1, 0, false, err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_lun_resize(1, 1, (8 << 20) + 100, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "block size"));
	assert_int_equal(reg_lun_resize(1, 1, UINT64_MAX - 511, false, err, sizeof(err)), -EINVAL);
	assert_int_equal(reg_lun_resize(1, 9, 8 << 20, false, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_lun_resize(9, 1, 8 << 20, false, err, sizeof(err)), -ENOENT);
	/* block devices: refresh only */
	lu->bs->is_blockdev = true;
	assert_int_equal(reg_lun_resize(1, 1, 8 << 20, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "refresh"));
	lu->bs->is_blockdev = false;
	/* read-only LUNs are not resized */
	lu->readonly = true;
	assert_int_equal(reg_lun_resize(1, 1, 8 << 20, false, err, sizeof(err)), -EROFS);
	lu->readonly = false;
	scsi_lu_put(lu);

	/* null LUN: just a number */
	lu = reg_target_lun_get(t, 2);
	nuas = 0;
	assert_int_equal(reg_lun_resize(1, 2, 1ull << 40, false, err, sizeof(err)), 0);
	assert_true(atomic_load(&lu->nr_blocks) == (1ull << 40) / 512);
	assert_int_equal(has_ua(2, n1, 0x2a, 0x09), 1);
	assert_int_equal(has_ua(2, n2, 0x2a, 0x09), 1);
	assert_int_equal(has_ua(1, n1, 0x2a, 0x09), 0);
	scsi_lu_put(lu);

	/* a LUN whose backing store is not a file (fd -1 in the fakes) */
	assert_int_equal(add_lun(1, 3, "/fake.img"), 0);
	assert_int_equal(reg_lun_resize(1, 3, 8 << 20, false, err, sizeof(err)), -EINVAL);

	reg_session_del(t, n1);
	reg_session_del(t, n2);
	reg_target_put(t);
	unlink(path);
}

/* ---- sessions: conn layout, delete ---- */

static void test_session_show_delete(void **state)
{
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f;
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	assert_int_equal(reg_target_new(2, "iqn.2026-11.io.ringstor:b", err, sizeof(err)), 0);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	struct reg_session_info si = { .nexus_id = 7, .tsih = 3, .kill = kill_hook };
	strcpy(si.initiator, "iqn.2026-11.test:init1");
	strcpy(si.peer_addr, "127.0.0.1:40000");
	strcpy(si.params, "MaxRecvDataSegmentLength=262144\n");
	assert_int_equal(reg_session_add(t, &si), 0);
	si.nexus_id = 8;
	si.kill = NULL;
	strcpy(si.peer_addr, "[::1]:40001");
	assert_int_equal(reg_session_add(t, &si), 0);

	f = open_memstream(&buf, &len);
	assert_int_equal(reg_show_sessions(f, 1, 0, false, false), 0);
	fclose(f);
	assert_string_equal(buf, "Session: 7\n    Connection: 0\n        Initiator: iqn.2026-11.test:init1\n"
			    "        IP Address: 127.0.0.1\n"
			    "Session: 8\n    Connection: 0\n        Initiator: iqn.2026-11.test:init1\n"
			    "        IP Address: ::1\n");
	free(buf);

	assert_int_equal(reg_session_delete(2, 7, -1, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_session_delete(9, 7, -1, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_session_delete(1, 99, -1, err, sizeof(err)), -ENOENT);
	assert_int_equal(reg_session_delete(1, 7, 1, err, sizeof(err)), -ENOENT);
	assert_int_equal(kills, 0);
	assert_int_equal(reg_session_delete(1, 7, 0, err, sizeof(err)), 0);
	assert_int_equal(kills, 1);
	assert_int_equal(reg_session_delete(1, 7, -1, err, sizeof(err)), 0);
	assert_int_equal(kills, 2);
	assert_int_equal(reg_session_delete(1, 8, -1, err, sizeof(err)), -EOPNOTSUPP);

	/* through control_execute */
	struct ctl_request r;
	char msg[CTL_MSG_MAX];
	buf = NULL;
	ctl_request_init(&r);
	r.mode = CTL_MODE_SESSION;
	r.op = CTL_OP_DELETE;
	f = open_memstream(&buf, &len);
	assert_int_equal(control_execute(&r, f, msg, sizeof(msg)), EINVAL);   /* no tid */
	r.has_tid = true;
	r.tid = 1;
	assert_int_equal(control_execute(&r, f, msg, sizeof(msg)), EINVAL);   /* no sid */
	assert_non_null(strstr(msg, "--sid"));
	r.has_sid = true;
	r.sid = 7;
	r.mode = CTL_MODE_CONN;
	r.has_cid = true;
	r.cid = 0;
	assert_int_equal(control_execute(&r, f, msg, sizeof(msg)), 0);
	assert_int_equal(kills, 3);
	r.cid = 2;
	assert_int_equal(control_execute(&r, f, msg, sizeof(msg)), ENOENT);
	r.op = CTL_OP_UPDATE;
	assert_int_equal(control_execute(&r, f, msg, sizeof(msg)), EINVAL);
	fclose(f);
	free(buf);

	reg_session_del(t, 7);
	reg_session_del(t, 8);
	reg_target_put(t);
}

/* ---- control_execute: accounts, resize, dump ---- */

static void test_control_accounts_dump(void **state)
{
	struct ctl_request r;
	char msg[CTL_MSG_MAX], *body = NULL;
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", msg, sizeof(msg)), 0);
	ctl_request_init(&r);
	r.mode = CTL_MODE_ACCOUNT;
	r.op = CTL_OP_NEW;
	strcpy(r.user, "alice");
	assert_int_equal(exec(&r, &body, msg), EINVAL);     /* no password */
	free(body);
	strcpy(r.password, "pw");
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_non_null(strstr(msg, "warning:"));
	assert_null(strstr(msg, "pw "));
	free(body);
	strcpy(r.user, "bob");
	strcpy(r.password, "bob's \"secret\" \\ 1");
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_string_equal(msg, "ok");
	free(body);

	r.op = CTL_OP_BIND;
	r.password[0] = '\0';
	assert_int_equal(exec(&r, &body, msg), 0);          /* no tid: discovery */
	free(body);
	assert_true(reg_chap_required(NULL));
	r.has_tid = true;
	r.tid = 1;
	r.outgoing = true;
	strcpy(r.user, "alice");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	r.outgoing = false;
	strcpy(r.user, "bob");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	r.tid = 5;
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);
	r.op = CTL_OP_UPDATE;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	r.op = CTL_OP_SHOW;
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_string_equal(body, "Account list:\n    alice\n    bob\n"
			    "Discovery account information:\n    bob\n");
	free(body);

	/* LUN update size= through control_execute */
	ctl_request_init(&r);
	r.mode = CTL_MODE_LU;
	r.op = CTL_OP_NEW;
	r.has_tid = true;
	r.tid = 1;
	r.has_lun = true;
	r.lun = 3;
	strcpy(r.bstype, "null");
	strcpy(r.params, "size=1M");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	r.op = CTL_OP_UPDATE;
	strcpy(r.params, "size=2M");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	strcpy(r.params, "size=1M");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "--force"));
	free(body);
	r.force = true;
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	strcpy(r.params, "size=2M,refresh");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.params, "readonly=1,size=2M");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.params, "size=banana");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);

	/* dump in any mode; with the secrets, properly escaped */
	r.op = CTL_OP_DUMP;
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_non_null(strstr(body, "PRIVILEGED"));
	assert_non_null(strstr(body, "{ user = \"bob\"; password = \"bob's \\\"secret\\\" \\\\ 1\"; }"));
	assert_non_null(strstr(body, "discovery = {\n    incoming_users = [ \"bob\" ];\n};"));
	assert_non_null(strstr(body, "        incoming_users = [ \"bob\" ];\n"
				"        outgoing_user = \"alice\";\n"));
	assert_non_null(strstr(body, "{ lun = 3; type = \"null\"; size = \"1048576\"; block_size = 512;"));
	free(body);
}

static void test_concurrent_lun_churn(void **state)
{
	char err[256];
	pthread_t th[2];
	(void)state;

	assert_int_equal(reg_target_new(1, "iqn.2026-11.io.ringstor:a", err, sizeof(err)), 0);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	atomic_store(&stop_readers, false);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader, t);
	for (int round = 0; round < 300; round++) {
		uint64_t lun = (uint64_t)(round % 7);
		if (add_lun(1, lun, "/c.img") == -EEXIST)
			assert_int_equal(reg_lun_delete(1, lun, err, sizeof(err)), 0);
	}
	atomic_store(&stop_readers, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	reg_target_put(t);
}

/* ---- --lld nfs --mode export through control_execute ---- */

static void test_control_exports(void **state)
{
	char dir[] = "/tmp/ringstor-ctlexp-XXXXXX", canon[PATH_MAX], d1[PATH_MAX + 16],
	     d2[PATH_MAX + 16];
	struct ctl_request r;
	char msg[CTL_MSG_MAX], *body = NULL;
	struct nfs_export *e;
	uint32_t id1;
	(void)state;

	assert_non_null(mkdtemp(dir));
	assert_non_null(realpath(dir, canon));
	snprintf(d1, sizeof(d1), "%s/images", canon);
	snprintf(d2, sizeof(d2), "%s/iso dir", canon);
	assert_int_equal(mkdir(d1, 0755), 0);
	assert_int_equal(mkdir(d2, 0755), 0);
	nfs_exports_clear();

#define XREQ(o) do { ctl_request_init(&r); r.mode = CTL_MODE_EXPORT; r.op = (o); } while (0)
	/* new: --path + --clients */
	XREQ(CTL_OP_NEW);
	strcpy(r.path, d1);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "--clients"));
	free(body);
	strcpy(r.clients, "10.0.0.0/8(rw,no_root_squash) *(ro)");
	assert_int_equal(exec(&r, &body, msg), 0);
	/* the applied configuration did not enable NFS: said, not refused */
	assert_non_null(strstr(msg, "warning: the NFS gateway is not enabled"));
	free(body);
	e = nfs_export_get_by_path(d1);
	assert_non_null(e);
	assert_int_equal(e->nclients, 2);
	assert_true(e->clients[0].opts.rw);
	assert_false(e->clients[0].opts.root_squash);
	assert_false(e->clients[1].opts.rw);
	id1 = e->id;
	nfs_export_put(e);
	assert_int_equal(exec(&r, &body, msg), EEXIST);
	assert_non_null(strstr(msg, "already exported"));
	free(body);
	/* unknown options are refused with the parser's message */
	XREQ(CTL_OP_NEW);
	strcpy(r.path, d2);
	strcpy(r.clients, "*(rw,nohide)");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "unknown export option 'nohide'"));
	free(body);
	/* a directory that does not exist */
	XREQ(CTL_OP_NEW);
	snprintf(r.path, sizeof(r.path), "%.200s/none", canon);
	strcpy(r.clients, "*");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "No such file"));
	free(body);
	/* both forms at once: ambiguous */
	XREQ(CTL_OP_NEW);
	strcpy(r.path, d2);
	strcpy(r.export_line, "/x *");
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);

	/* new: exports(5) line form (blank in the path written \040) with
	 * --export-id, which becomes fsid= */
	XREQ(CTL_OP_NEW);
	snprintf(r.export_line, sizeof(r.export_line), "%s/iso\\040dir 127.0.0.1(rw,insecure)", canon);
	r.has_export_id = true;
	r.export_id = 4242;
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	e = nfs_export_get_by_id(4242);
	assert_non_null(e);
	assert_string_equal(e->path, d2);
	assert_true(e->clients[0].opts.fsid_set);
	assert_false(e->clients[0].opts.secure);
	nfs_export_put(e);
	/* --export-id that contradicts fsid= */
	XREQ(CTL_OP_NEW);
	snprintf(r.export_line, sizeof(r.export_line), "%s *(fsid=1)", canon);
	r.has_export_id = true;
	r.export_id = 2;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	assert_non_null(strstr(msg, "fsid=1"));
	free(body);

	/* show: text like exportfs -v, and JSON */
	XREQ(CTL_OP_SHOW);
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_non_null(strstr(body, "10.0.0.0/8(rw,"));
	assert_non_null(strstr(body, "127.0.0.1(rw,"));
	free(body);
	r.json = true;
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_true(body[0] == '[');
	assert_non_null(strstr(body, "\"id\":4242"));
	free(body);
	r.has_export_id = true;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);

	/* update by id keeps the path; an update without fsid= keeps the id
	 * (file handles carry it) */
	XREQ(CTL_OP_UPDATE);
	r.has_export_id = true;
	r.export_id = 4242;
	strcpy(r.clients, "*(ro)");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	e = nfs_export_get_by_id(4242);
	assert_non_null(e);
	assert_string_equal(e->path, d2);
	assert_int_equal(e->nclients, 1);
	assert_int_equal(e->clients[0].kind, EXPORT_CLIENT_ANY);
	assert_false(e->clients[0].opts.rw);
	nfs_export_put(e);
	/* update by path (given non-canonically) */
	XREQ(CTL_OP_UPDATE);
	snprintf(r.path, sizeof(r.path), "%.200s/./images/", canon);
	strcpy(r.clients, "*(rw,async)");
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	e = nfs_export_get_by_path(d1);
	assert_non_null(e);
	assert_int_equal(e->id, id1);
	assert_false(e->clients[0].opts.sync);
	nfs_export_put(e);
	/* update of something not exported; path and id that disagree */
	XREQ(CTL_OP_UPDATE);
	strcpy(r.path, canon);
	strcpy(r.clients, "*");
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);
	XREQ(CTL_OP_UPDATE);
	strcpy(r.path, d1);
	strcpy(r.clients, "*");
	r.has_export_id = true;
	r.export_id = 4242;
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	XREQ(CTL_OP_UPDATE);
	r.has_export_id = true;
	r.export_id = 1;
	strcpy(r.clients, "*");
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);

	/* the dump has an nfs section with both exports */
	XREQ(CTL_OP_DUMP);
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_non_null(strstr(body, "\nnfs = {\n    enabled = false;"));
	assert_non_null(strstr(body, d1));
	assert_non_null(strstr(body, "fsid=4242"));
	free(body);

	/* delete by path, by id; then nothing is left */
	XREQ(CTL_OP_DELETE);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);
	strcpy(r.path, d1);
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	free(body);
	XREQ(CTL_OP_DELETE);
	r.has_export_id = true;
	r.export_id = 4242;
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
	assert_int_equal(exec(&r, &body, msg), ENOENT);
	assert_non_null(strstr(msg, "4242"));
	free(body);
	XREQ(CTL_OP_SHOW);
	assert_int_equal(exec(&r, &body, msg), 0);
	assert_string_equal(body, "");
	free(body);
	XREQ(CTL_OP_BIND);
	assert_int_equal(exec(&r, &body, msg), EINVAL);
	free(body);

	/* NLM locks: listing works and is empty without NFS clients */
	ctl_request_init(&r);
	r.mode = CTL_MODE_LOCK;
	r.op = CTL_OP_SHOW;
	assert_int_equal(exec(&r, &body, msg), 0);
	free(body);
#undef XREQ
	nfs_exports_clear();
	rmdir(d1);
	rmdir(d2);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_bstype),
		cmocka_unit_test_setup_teardown(test_target_new_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lun_errors_and_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lun_delete_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_permitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sessions_ua_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_json_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_execute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_lun_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lun_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_show_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_accounts_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_exports, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
