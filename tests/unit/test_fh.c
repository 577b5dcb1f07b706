/* Unit tests for nfsgw/fh.c: handle make/verify, forgery and tampering,
 * truncation, open by handle, STALE after delete, the key file, and the
 * containment rule (a directory moved out of the export is STALE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsgw/fh.h"

static char base[256];     /* temp dir: base/export is the export */
static char exp_path[512];
static int root_fd = -1;

static const uint8_t key1[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static void touch(const char *rel)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", exp_path, rel);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello", 5), 5);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof(base), "/tmp/rs-fh-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	snprintf(exp_path, sizeof(exp_path), "%s/export", base);
	if (mkdir(exp_path, 0755) < 0)
		return -1;
	root_fd = open(exp_path, O_PATH | O_DIRECTORY);
	fh_secret_set(key1);
	return root_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	close(root_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_make_verify(void **state)
{
	struct nfs_fh fh, fh2;
	uint32_t id = 0;
	(void)state;

	touch("f1");
	assert_int_equal(fh_make(42, root_fd, "f1", &fh), 0);
	assert_true(fh.len > 26 && fh.len <= NFS_FH_MAX);
	assert_int_equal(fh_verify(fh.data, fh.len, &id), 0);
	assert_int_equal(id, 42);
	/* deterministic: same object, same export -> same bytes */
	assert_int_equal(fh_make(42, root_fd, "f1", &fh2), 0);
	assert_int_equal(fh.len, fh2.len);
	assert_memory_equal(fh.data, fh2.data, fh.len);
	/* the root itself (AT_EMPTY_PATH on an O_PATH fd) */
	assert_int_equal(fh_make(42, root_fd, "", &fh2), 0);
	assert_int_equal(fh_verify(fh2.data, fh2.len, NULL), 0);
	assert_memory_not_equal(fh.data, fh2.data, fh.len < fh2.len ? fh.len : fh2.len);
}

static void test_tamper(void **state)
{
	struct nfs_fh fh;
	uint8_t buf[NFS_FH_MAX];
	(void)state;

	touch("f2");
	assert_int_equal(fh_make(7, root_fd, "f2", &fh), 0);
	/* every single-bit flip anywhere is caught */
	for (int i = 0; i < fh.len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(buf, fh.data, fh.len);
			buf[i] ^= (uint8_t)(1u << b);
			assert_int_equal(fh_verify(buf, fh.len, NULL), -EBADMSG);
			assert_true(fh_open(buf, fh.len, root_fd, 0) < 0);
		}
	}
	/* another export id with the old MAC */
	memcpy(buf, fh.data, fh.len);
	buf[9] = 8;
	assert_int_equal(fh_verify(buf, fh.len, NULL), -EBADMSG);
}

static void test_truncate_and_garbage(void **state)
{
	struct nfs_fh fh;
	uint8_t zero[NFS_FH_MAX] = { 0 };
	(void)state;

	touch("f3");
	assert_int_equal(fh_make(7, root_fd, "f3", &fh), 0);
	for (size_t l = 0; l < fh.len; l++)
		assert_int_equal(fh_verify(fh.data, l, NULL), -EBADMSG);
	assert_int_equal(fh_verify(NULL, 0, NULL), -EBADMSG);
	for (size_t l = 0; l <= NFS_FH_MAX; l++)
		assert_int_equal(fh_verify(zero, l, NULL), -EBADMSG);
	/* a longer buffer with the same prefix is not the same handle */
	{
		uint8_t longer[NFS_FH_MAX];
		memset(longer, 0, sizeof(longer));
		memcpy(longer, fh.data, fh.len);
		if (fh.len < NFS_FH_MAX)
			assert_int_equal(fh_verify(longer, fh.len + 1, NULL), -EBADMSG);
	}
}

static void test_forge_other_key(void **state)
{
	struct nfs_fh fh;
	uint8_t key2[32];
	(void)state;

	touch("f4");
	memset(key2, 0x5a, sizeof(key2));
	fh_secret_set(key2);
	assert_int_equal(fh_make(7, root_fd, "f4", &fh), 0);
	fh_secret_set(key1);
	assert_int_equal(fh_verify(fh.data, fh.len, NULL), -EBADMSG);
}

static void test_open_and_stale(void **state)
{
	struct nfs_fh fh;
	struct stat a, b;
	char p[PATH_MAX];
	int fd;
	(void)state;

	touch("f5");
	assert_int_equal(fh_make(7, root_fd, "f5", &fh), 0);
	fd = fh_open(fh.data, fh.len, root_fd, 0);
	assert_true(fd >= 0);
	snprintf(p, sizeof(p), "%s/f5", exp_path);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	close(fd);
	/* renamed: the handle follows the object */
	{
		char q[PATH_MAX];
		snprintf(q, sizeof(q), "%s/f5-renamed", exp_path);
		assert_int_equal(rename(p, q), 0);
		fd = fh_open(fh.data, fh.len, root_fd, 0);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(unlink(q), 0);
	}
	/* deleted: STALE, even though the handle still verifies */
	assert_int_equal(fh_verify(fh.data, fh.len, NULL), 0);
	assert_int_equal(fh_open(fh.data, fh.len, root_fd, 0), -ESTALE);
}

static void test_symlink_handle(void **state)
{
	struct nfs_fh fh;
	char p[PATH_MAX];
	struct stat st;
	int fd;
	(void)state;

	snprintf(p, sizeof(p), "%s/ln", exp_path);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(fh_make(7, root_fd, "ln", &fh), 0);
	fd = fh_open(fh.data, fh.len, root_fd, 0);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISLNK(st.st_mode));   /* never the target */
	close(fd);
}

static void test_dir_moved_out(void **state)
{
	struct nfs_fh fh, fsub;
	char p[PATH_MAX], q[PATH_MAX];
	int fd;
	(void)state;

	snprintf(p, sizeof(p), "%s/d1", exp_path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d1/sub", exp_path);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(fh_make(7, root_fd, "d1", &fh), 0);
	fd = openat(root_fd, "d1", O_PATH | O_DIRECTORY);
	assert_int_equal(fh_make(7, fd, "sub", &fsub), 0);
	close(fd);
	fd = fh_open(fsub.data, fsub.len, root_fd, 0);
	assert_true(fd >= 0);
	close(fd);
	/* someone on the server moves d1 out of the export */
	snprintf(p, sizeof(p), "%s/d1", exp_path);
	snprintf(q, sizeof(q), "%s/outside", base);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(fh_open(fh.data, fh.len, root_fd, 0), -ESTALE);
	assert_int_equal(fh_open(fsub.data, fsub.len, root_fd, 0), -ESTALE);
	/* moved back: valid again */
	assert_int_equal(rename(q, p), 0);
	fd = fh_open(fsub.data, fsub.len, root_fd, 0);
	assert_true(fd >= 0);
	close(fd);
}

static void test_parent_of_export_unreachable(void **state)
{
	struct nfs_fh fh;
	int bfd;
	(void)state;

	/* a handle for the export's parent, MAC'd with our key (as if it had
	 * been issued), still must not open inside this export */
	bfd = open(base, O_PATH | O_DIRECTORY);
	assert_true(bfd >= 0);
	assert_int_equal(fh_make(7, bfd, "", &fh), 0);
	close(bfd);
	assert_int_equal(fh_open(fh.data, fh.len, root_fd, 0), -ESTALE);
}

static void test_key_file(void **state)
{
	char dir[1024], p[PATH_MAX];
	struct nfs_fh a, b;
	struct stat st;
	FILE *f;
	(void)state;

	touch("kf");
	snprintf(dir, sizeof(dir), "%s/state", base);
	assert_int_equal(fh_secret_init(dir), 0);
	snprintf(p, sizeof(p), "%s/nfs-fh.key", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(fh_make(9, root_fd, "kf", &a), 0);
	/* "restart": another key, then the file again -> same handles */
	fh_secret_set(key1);
	assert_int_equal(fh_secret_init(dir), 0);
	assert_int_equal(fh_make(9, root_fd, "kf", &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_int_equal(fh_verify(a.data, a.len, NULL), 0);
	/* a damaged key file is refused, not silently replaced */
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("short", f);
	fclose(f);
	assert_int_equal(fh_secret_init(dir), -EINVAL);
	fh_secret_set(key1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_verify),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_truncate_and_garbage),
		cmocka_unit_test(test_forge_other_key),
		cmocka_unit_test(test_open_and_stale),
		cmocka_unit_test(test_symlink_handle),
		cmocka_unit_test(test_dir_moved_out),
		cmocka_unit_test(test_parent_of_export_unreachable),
		cmocka_unit_test(test_key_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
