/* test_backend.c - backing stores driven through a real io_uring reactor.
 *
 * Each test submits bios with bstore_submit() and runs the reactor until the
 * done() callback stops it, so the path under test is the production one:
 * SQE prepared by the backend, CQE dispatched by the reactor from user_data.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "core/reactor.h"

static struct reactor R;
static char tmpdir[64];

struct waiter {
	struct bio bio;
	int err;
	int calls;
	bool in_submit;
	bool inline_done;
};

static void on_done(struct bio *bio, int err)
{
	struct waiter *w = container_of(bio, struct waiter, bio);

	w->err = err;
	w->calls++;
	if (w->in_submit)
		w->inline_done = true;
	reactor_stop(bio->r);
}

/* Submit one bio and run the reactor until its done() fires. */
static int run_bio(struct bstore *bs, struct waiter *w, enum bio_opcode op, unsigned flags,
		   uint64_t off, uint64_t len, void *buf)
{
	memset(w, 0, sizeof(*w));
	w->bio.opcode = op;
	w->bio.flags = flags;
	w->bio.offset = off;
	w->bio.len = len;
	w->bio.buf = buf;
	w->bio.done = on_done;
	w->err = 12345;
	w->in_submit = true;
	bstore_submit(bs, &R, &w->bio);
	w->in_submit = false;
	assert_int_equal(w->calls, 0);          /* never completed inline */
	R.stopping = false;
	reactor_run(&R);
	assert_int_equal(w->calls, 1);
	assert_false(w->inline_done);
	return w->err;
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(reactor_init(&R, 0, 64), 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs-test-backend-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	alarm(60);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	reactor_fini(&R);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static void path_in_tmp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* ------------------------------------------------------------------------ */

static void test_find_ops(void **state)
{
	(void)state;
	assert_ptr_equal(bstore_find_ops("file"), &bstore_file_ops);
	assert_ptr_equal(bstore_find_ops("null"), &bstore_null_ops);
	assert_ptr_equal(bstore_find_ops("block"), &bstore_file_ops);
	assert_null(bstore_find_ops("bogus"));
	assert_null(bstore_find_ops(NULL));
}

static void test_bad_params(void **state)
{
	struct bstore_params p = { .block_size = 1000, .size = 1 << 20 };
	struct bstore *bs = (void *)1;
	(void)state;

	assert_int_equal(bstore_open("null", NULL, &p, &bs), -EINVAL);
	assert_null(bs);
	p.block_size = 512;
	assert_int_equal(bstore_open("nope", NULL, &p, &bs), -EINVAL);
	p.size = 100;   /* smaller than a block */
	assert_int_equal(bstore_open("null", NULL, &p, &bs), -EINVAL);
}

static void test_buf_alloc(void **state)
{
	void *p = bstore_buf_alloc(100), *q = bstore_buf_alloc(0);
	(void)state;
	assert_non_null(p);
	assert_non_null(q);
	assert_int_equal((uintptr_t)p & 4095, 0);
	memset(p, 1, 4096);   /* rounded up to a page: ASan checks this */
	bstore_buf_free(p);
	bstore_buf_free(q);
}

static void test_null_io(void **state)
{
	struct bstore_params p = { .block_size = 4096, .size = (1 << 20) + 100 };
	struct bstore *bs;
	struct waiter w;
	uint8_t *buf = bstore_buf_alloc(8192);
	(void)state;

	assert_int_equal(bstore_open("null", NULL, &p, &bs), 0);
	assert_int_equal(bs->size, 1 << 20);      /* rounded down */
	assert_int_equal(bs->block_size, 4096);

	memset(buf, 0xaa, 8192);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 4096, 8192, buf), 0);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, BIO_F_FUA, 0, 4096, buf), 0);
	assert_int_equal(run_bio(bs, &w, BIO_FLUSH, 0, 0, 0, NULL), 0);
	assert_int_equal(run_bio(bs, &w, BIO_DISCARD, 0, 0, 4096, NULL), 0);
	/* beyond the end */
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, (1 << 20) - 4096, 8192, buf), -EINVAL);
	bstore_close(bs);

	/* default size is 1 GiB */
	p.size = 0;
	assert_int_equal(bstore_open("null", NULL, &p, &bs), 0);
	assert_int_equal(bs->size, 1ull << 30);
	bstore_close(bs);

	p.readonly = true;
	assert_int_equal(bstore_open("null", NULL, &p, &bs), 0);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, 0, 0, 4096, buf), -EROFS);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 0, 4096, buf), 0);
	bstore_close(bs);
	bstore_buf_free(buf);
}

static void test_file_create_rw(void **state)
{
	char path[128];
	struct bstore_params p = { .block_size = 512, .create = true, .size = 1 << 20 };
	struct bstore *bs;
	struct waiter w;
	uint8_t *buf = bstore_buf_alloc(65536), *rd = bstore_buf_alloc(65536);
	struct stat st;
	(void)state;

	path_in_tmp(path, sizeof(path), "create.img");
	assert_int_equal(bstore_open("file", path, &p, &bs), 0);
	assert_int_equal(bs->size, 1 << 20);
	assert_false(bs->is_blockdev);
	assert_true(bs->can_discard);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);
	assert_true(st.st_blocks < 64);           /* sparse */

	for (int i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, 0, 4096, 65536, buf), 0);
	assert_int_equal(w.bio.done_bytes, 65536);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, BIO_F_FUA, 512 * 1000, 512, buf), 0);
	memset(rd, 0, 65536);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 4096, 65536, rd), 0);
	assert_memory_equal(rd, buf, 65536);
	assert_int_equal(run_bio(bs, &w, BIO_FLUSH, 0, 0, 0, NULL), 0);

	/* punch a hole in the middle: reads back zeros */
	assert_int_equal(run_bio(bs, &w, BIO_DISCARD, 0, 8192, 8192, NULL), 0);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 4096, 65536, rd), 0);
	assert_memory_equal(rd, buf, 4096);
	for (int i = 4096; i < 12288; i++)
		assert_int_equal(rd[i], 0);
	assert_memory_equal(rd + 12288, buf + 12288, 65536 - 12288);

	/* zero range */
	assert_int_equal(run_bio(bs, &w, BIO_WRITE_ZEROES, 0, 4096 + 512, 1024, NULL), 0);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 4096, 4096, rd), 0);
	assert_memory_equal(rd, buf, 512);
	for (int i = 512; i < 1536; i++)
		assert_int_equal(rd[i], 0);
	assert_memory_equal(rd + 1536, buf + 1536, 4096 - 1536);

	/* out of range and zero length */
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, (1 << 20) - 512, 1024, rd), -EINVAL);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, 0, 1 << 20, 0, rd), 0);
	bstore_close(bs);

	/* reopen without create: same size, data persisted */
	p.create = false;
	assert_int_equal(bstore_open("file", path, &p, &bs), 0);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 512 * 1000, 512, rd), 0);
	assert_memory_equal(rd, buf, 512);
	bstore_close(bs);

	bstore_buf_free(buf);
	bstore_buf_free(rd);
}

static void test_file_missing(void **state)
{
	char path[128];
	struct bstore_params p = { .block_size = 512 };
	struct bstore *bs;
	(void)state;

	path_in_tmp(path, sizeof(path), "missing.img");
	assert_int_equal(bstore_open("file", path, &p, &bs), -ENOENT);
	p.create = true;   /* create without a size */
	assert_int_equal(bstore_open("file", path, &p, &bs), -EINVAL);
	assert_int_equal(bstore_open("file", "/dev/null", &p, &bs), -EINVAL);   /* char device */
	assert_int_equal(bstore_open("file", NULL, &p, &bs), -EINVAL);
}

static void test_file_size_rounding_and_refresh(void **state)
{
	char path[128];
	struct bstore_params p = { .block_size = 4096 };
	struct bstore *bs;
	int fd;
	(void)state;

	path_in_tmp(path, sizeof(path), "odd.img");
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3 * 4096 + 100), 0);
	assert_int_equal(bstore_open("file", path, &p, &bs), 0);
	assert_int_equal(bs->size, 3 * 4096);
	assert_int_equal(ftruncate(fd, 10 * 4096), 0);
	assert_int_equal(bs->ops->refresh_size(bs), 0);
	assert_int_equal(bs->size, 10 * 4096);
	close(fd);
	bstore_close(bs);
}

/* The store shrank under us: a read past EOF comes back zero-filled. */
static void test_file_short_read_past_eof(void **state)
{
	char path[128];
	struct bstore_params p = { .block_size = 512, .create = true, .size = 64 * 1024 };
	struct bstore *bs;
	struct waiter w;
	uint8_t *buf = bstore_buf_alloc(16384), *rd = bstore_buf_alloc(16384);
	(void)state;

	path_in_tmp(path, sizeof(path), "shrink.img");
	assert_int_equal(bstore_open("file", path, &p, &bs), 0);
	memset(buf, 0x5a, 16384);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, 0, 32768, 16384, buf), 0);
	/* truncate behind the backend's back, mid-request and mid-block */
	assert_int_equal(truncate(path, 32768 + 1000), 0);
	memset(rd, 0xff, 16384);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 32768, 16384, rd), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rd[i], 0x5a);
	for (int i = 1000; i < 16384; i++)
		assert_int_equal(rd[i], 0);
	bstore_close(bs);
	bstore_buf_free(buf);
	bstore_buf_free(rd);
}

static void test_file_readonly(void **state)
{
	char path[128];
	struct bstore_params p = { .block_size = 512, .create = true, .size = 1 << 16 };
	struct bstore *bs;
	struct waiter w;
	uint8_t *buf = bstore_buf_alloc(512);
	(void)state;

	path_in_tmp(path, sizeof(path), "ro.img");
	assert_int_equal(bstore_open("file", path, &p, &bs), 0);
	bstore_close(bs);
	p.readonly = true;
	p.create = false;
	assert_int_equal(bstore_open("file", path, &p, &bs), 0);
	assert_true(bs->readonly);
	assert_false(bs->can_discard);
	memset(buf, 1, 512);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, 0, 0, 512, buf), -EROFS);
	assert_int_equal(run_bio(bs, &w, BIO_DISCARD, 0, 0, 512, NULL), -EROFS);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE_ZEROES, 0, 0, 512, NULL), -EROFS);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 0, 512, buf), 0);
	assert_int_equal(buf[0], 0);
	bstore_close(bs);
	bstore_buf_free(buf);
}

static void test_file_direct(void **state)
{
	char path[128];
	struct bstore_params p = { .block_size = 4096, .create = true, .size = 1 << 20,
				   .direct = true };
	struct bstore *bs;
	struct waiter w;
	uint8_t *buf = bstore_buf_alloc(8192), *rd = bstore_buf_alloc(8192);
	int ret;
	(void)state;

	path_in_tmp(path, sizeof(path), "direct.img");
	ret = bstore_open("file", path, &p, &bs);
	if (ret == -EINVAL) {
		skip();   /* file system without O_DIRECT (tmpfs) */
	}
	assert_int_equal(ret, 0);
	memset(buf, 0x42, 8192);
	assert_int_equal(run_bio(bs, &w, BIO_WRITE, BIO_F_FUA, 8192, 8192, buf), 0);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 8192, 8192, rd), 0);
	assert_memory_equal(rd, buf, 8192);
	/* O_DIRECT read crossing a mid-block EOF */
	assert_int_equal(truncate(path, 8192 + 4096 + 10), 0);
	memset(rd, 0xff, 8192);
	assert_int_equal(run_bio(bs, &w, BIO_READ, 0, 8192, 8192, rd), 0);
	assert_memory_equal(rd, buf, 4096 + 10);
	for (int i = 4096 + 10; i < 8192; i++)
		assert_int_equal(rd[i], 0);
	bstore_close(bs);
	bstore_buf_free(buf);
	bstore_buf_free(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_ops),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_buf_alloc),
		cmocka_unit_test(test_null_io),
		cmocka_unit_test(test_file_create_rw),
		cmocka_unit_test(test_file_missing),
		cmocka_unit_test(test_file_size_rounding_and_refresh),
		cmocka_unit_test(test_file_short_read_past_eof),
		cmocka_unit_test(test_file_readonly),
		cmocka_unit_test(test_file_direct),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
