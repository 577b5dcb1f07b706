/* Unit tests for nfsgw/drc.c: the duplicate request cache (new, in
 * progress, replay), its key (address without port, xid, procedure,
 * argument checksum), padding of cached payloads, aborts, oversized replies
 * and the bounded size with eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "nfsgw/drc.h"

static void mkcall(struct rpc_call *c, const char *ip, uint16_t port, uint32_t xid, uint32_t proc,
		   const void *args, uint32_t alen)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->peer;

	memset(c, 0, sizeof(*c));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	c->peerlen = sizeof(*s4);
	c->xid = xid;
	c->prog = 100003;
	c->vers = 3;
	c->proc = proc;
	c->args = args;
	c->args_len = alen;
}

static int setup(void **state)
{
	(void)state;
	drc_init(4096);
	return 0;
}

static void test_new_inprogress_replay(void **state)
{
	struct rpc_call c, dup;
	uint8_t *rep;
	size_t len;
	(void)state;

	mkcall(&c, "10.0.0.1", 700, 1, 8, "create-args", 11);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
	assert_null(rep);
	/* retransmission while executing: drop */
	mkcall(&dup, "10.0.0.1", 700, 1, 8, "create-args", 11);
	assert_int_equal(drc_lookup(&dup, &rep, &len), DRC_IN_PROGRESS);
	drc_store(&c, "reply-bytes!", 12, NULL, 0);
	/* after: the same bytes again, even from another source port
	 * (a TCP reconnect) */
	mkcall(&dup, "10.0.0.1", 801, 1, 8, "create-args", 11);
	assert_int_equal(drc_lookup(&dup, &rep, &len), DRC_REPLAY);
	assert_int_equal(len, 12);
	assert_memory_equal(rep, "reply-bytes!", 12);
	free(rep);
	/* another client, or other arguments, or another procedure: new */
	mkcall(&dup, "10.0.0.2", 700, 1, 8, "create-args", 11);
	assert_int_equal(drc_lookup(&dup, &rep, &len), DRC_NEW);
	mkcall(&dup, "10.0.0.1", 700, 1, 8, "create-argz", 11);
	assert_int_equal(drc_lookup(&dup, &rep, &len), DRC_NEW);
	mkcall(&dup, "10.0.0.1", 700, 1, 12, "create-args", 11);
	assert_int_equal(drc_lookup(&dup, &rep, &len), DRC_NEW);
}

static void test_v4mapped_same_client(void **state)
{
	struct rpc_call c, m;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m.peer;
	uint8_t *rep;
	size_t len;
	(void)state;

	mkcall(&c, "192.168.1.9", 1000, 77, 14, "x", 1);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
	drc_store(&c, "abcd", 4, NULL, 0);
	memset(&m, 0, sizeof(m));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.168.1.9", &s6->sin6_addr);
	m.xid = 77;
	m.prog = 100003;
	m.vers = 3;
	m.proc = 14;
	m.args = (const uint8_t *)"x";
	m.args_len = 1;
	assert_int_equal(drc_lookup(&m, &rep, &len), DRC_REPLAY);
	free(rep);
}

static void test_payload_padding_and_abort(void **state)
{
	struct rpc_call c;
	uint8_t *rep;
	size_t len;
	(void)state;

	mkcall(&c, "10.0.0.3", 700, 5, 9, "a", 1);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
	drc_store(&c, "head", 4, "12345", 5);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_REPLAY);
	assert_int_equal(len, 4 + 8);
	assert_memory_equal(rep, "head12345\0\0\0", 12);
	free(rep);

	/* aborted (dropped without a reply): forgotten */
	mkcall(&c, "10.0.0.3", 700, 6, 9, "a", 1);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
	drc_abort(&c);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);

	/* a reply too large to keep: not cached, duplicates execute again */
	{
		static uint8_t big[DRC_MAX_REPLY + 4];
		mkcall(&c, "10.0.0.3", 700, 7, 9, "a", 1);
		assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
		drc_store(&c, big, sizeof(big), NULL, 0);
		assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
	}
	/* storing for a call never looked up is harmless */
	mkcall(&c, "10.0.0.3", 700, 8, 9, "a", 1);
	drc_store(&c, "zz", 2, NULL, 0);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
}

/* 256 entries in all (one per bucket): thousands of finished calls evict
 * older ones, the size stays bounded; buckets full of calls in progress
 * make new calls untracked rather than evicting them. */
static void test_bounded_eviction(void **state)
{
	struct rpc_call c;
	struct drc_stats st;
	uint8_t *rep;
	size_t len;
	int replayed = 0;
	(void)state;

	drc_init(256);
	for (uint32_t x = 0; x < 5000; x++) {
		mkcall(&c, "10.1.1.1", 700, x, 8, "args", 4);
		assert_int_equal(drc_lookup(&c, &rep, &len), DRC_NEW);
		drc_store(&c, &x, sizeof(x), NULL, 0);
	}
	drc_get_stats(&st);
	assert_true(st.entries <= 256);
	assert_true(st.evictions >= 5000 - 256);
	/* the most recent ones are mostly still there */
	for (uint32_t x = 4990; x < 5000; x++) {
		mkcall(&c, "10.1.1.1", 700, x, 8, "args", 4);
		enum drc_result r = drc_lookup(&c, &rep, &len);
		if (r == DRC_REPLAY) {
			assert_int_equal(len, 4);
			assert_memory_equal(rep, &x, 4);
			free(rep);
			replayed++;
		} else {
			drc_abort(&c);
		}
	}
	assert_true(replayed > 0);

	/* all in progress: never evicted */
	drc_init(256);
	for (uint32_t x = 0; x < 2000; x++) {
		mkcall(&c, "10.2.2.2", 700, x, 8, "args", 4);
		drc_lookup(&c, &rep, &len);
	}
	drc_get_stats(&st);
	assert_true(st.entries <= 256);
	assert_true(st.uncached > 0);
	mkcall(&c, "10.2.2.2", 700, 0, 8, "args", 4);
	assert_int_equal(drc_lookup(&c, &rep, &len), DRC_IN_PROGRESS);
	drc_clear();
	drc_get_stats(&st);
	assert_int_equal(st.entries, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_new_inprogress_replay, setup),
		cmocka_unit_test_setup(test_v4mapped_same_client, setup),
		cmocka_unit_test_setup(test_payload_padding_and_abort, setup),
		cmocka_unit_test_setup(test_bounded_eviction, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
