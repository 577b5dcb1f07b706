/* Unit tests for core/reactor.c: completion dispatch, cross-thread posting,
 * ticker timing, SQ overflow handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "core/reactor.h"

struct nop_op {
	struct rs_op op;
	struct reactor *r;
	int *count;
	int target;
	int res;
};

static void nop_done(struct rs_op *op, int res, uint32_t flags)
{
	struct nop_op *n = container_of(op, struct nop_op, op);
	(void)flags;
	n->res = res;
	if (++*n->count == n->target)
		reactor_stop(n->r);
}

/* 5000 NOPs on a 64-entry ring: reactor_sqe() must flush a full SQ itself and
 * every completion must come back to its own op. */
static void test_many_nops(void **state)
{
	struct reactor r;
	enum { N = 5000 };
	static struct nop_op ops[N];
	int count = 0;
	(void)state;

	assert_int_equal(reactor_init(&r, 0, 64), 0);
	for (int i = 0; i < N; i++) {
		ops[i] = (struct nop_op){ .op.fn = nop_done, .r = &r, .count = &count, .target = N, .res = -1 };
		struct io_uring_sqe *sqe = reactor_sqe_op(&r, &ops[i].op);
		io_uring_prep_nop(sqe);
	}
	reactor_run(&r);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(ops[i].res, 0);
	reactor_fini(&r);
}

struct post_ctx {
	struct reactor *r;
	int seen[100];
	int n;
};

struct post_arg {
	struct post_ctx *ctx;
	int value;
};

static void posted(void *arg)
{
	struct post_arg *a = arg;
	assert_ptr_equal(reactor_current(), a->ctx->r);
	a->ctx->seen[a->ctx->n++] = a->value;
	if (a->ctx->n == 100)
		reactor_stop(a->ctx->r);
}

static void *poster(void *arg)
{
	static struct post_arg args[100];
	struct post_ctx *ctx = arg;
	for (int i = 0; i < 100; i++) {
		args[i] = (struct post_arg){ ctx, i };
		assert_int_equal(reactor_post(ctx->r, posted, &args[i]), 0);
	}
	return NULL;
}

/* Tasks posted from another thread run on the reactor thread, in order. */
static void test_post_from_other_thread(void **state)
{
	struct reactor r;
	struct post_ctx ctx = { .r = &r };
	pthread_t th;
	(void)state;

	assert_int_equal(reactor_init(&r, 1, 32), 0);
	assert_int_equal(pthread_create(&th, NULL, poster, &ctx), 0);
	reactor_run(&r);
	pthread_join(th, NULL);
	assert_int_equal(ctx.n, 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ctx.seen[i], i);
	assert_null(reactor_current());
	reactor_fini(&r);
}

struct tick_ctx {
	struct rs_ticker t;
	struct reactor *r;
	int ticks;
	uint64_t first, last;
};

static void on_tick(struct rs_ticker *t, uint64_t now)
{
	struct tick_ctx *c = container_of(t, struct tick_ctx, t);
	if (!c->ticks++)
		c->first = now;
	c->last = now;
	if (c->ticks == 2) {
		reactor_del_ticker(c->r, t);
		reactor_stop(c->r);
	}
}

/* Tickers fire about once a second and can remove themselves while firing. */
static void test_ticker(void **state)
{
	struct reactor r;
	struct tick_ctx c = { .t.fn = on_tick, .r = &r };
	uint64_t start = rs_now_ms();
	(void)state;

	assert_int_equal(reactor_init(&r, 2, 32), 0);
	reactor_add_ticker(&r, &c.t);
	reactor_run(&r);
	assert_int_equal(c.ticks, 2);
	assert_true(c.last - c.first >= 900 && c.last - c.first <= 1500);
	assert_true(rs_now_ms() - start >= 1800);
	reactor_fini(&r);
}

struct defer_ctx {
	struct rs_op op;
	struct reactor *r;
	bool submit_returned;
	bool ran_after_return;
	int res;
};

static void defer_done(struct rs_op *op, int res, uint32_t flags)
{
	struct defer_ctx *c = container_of(op, struct defer_ctx, op);
	(void)flags;
	c->ran_after_return = c->submit_returned;
	c->res = res;
	reactor_stop(c->r);   /* stopping from a deferred completion ends the loop */
}

static void defer_start(void *arg)
{
	struct defer_ctx *c = arg;
	assert_int_equal(reactor_defer(c->r, &c->op, 4096), 0);
	c->submit_returned = true;
}

/* reactor_defer(): the completion runs from the loop after the caller has
 * returned, never inside it, carries its result, and may stop the reactor. */
static void test_defer(void **state)
{
	struct reactor r;
	struct defer_ctx c = { .op.fn = defer_done, .r = &r, .res = -1 };
	(void)state;

	assert_int_equal(reactor_init(&r, 3, 32), 0);
	assert_int_equal(reactor_post(&r, defer_start, &c), 0);
	reactor_run(&r);
	assert_true(c.ran_after_return);
	assert_int_equal(c.res, 4096);
	reactor_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_nops),
		cmocka_unit_test(test_post_from_other_thread),
		cmocka_unit_test(test_ticker),
		cmocka_unit_test(test_defer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
