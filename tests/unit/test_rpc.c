/* Unit tests for nfsgw/rpc.c: record marking (RFC 5531 s.11), call header and
 * AUTH_SYS parsing (s.9, appendix A) with their bounds, and the transport on a
 * real reactor: replies, accept/reject errors, fragmented and oversized
 * records, pipelined calls answered out of order, zero-copy payloads, the
 * duplicate request cache, the in-flight limit, a client vanishing with
 * calls in flight, and UDP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/reactor.h"
#include "nfsgw/drc.h"
#include "nfsgw/rpc.h"
#include "nfsgw/rpc_internal.h"
#include "tests/unit/rpc_client.h"

/* ================================================================ record marking */

static void put_frag(uint8_t *p, uint32_t len, bool last)
{
	xdr_put_be32(p, len | (last ? 0x80000000u : 0));
}

static void test_rm_single(void **state)
{
	struct rpc_rm m;
	uint8_t buf[4 + 8] = { 0 };
	size_t used;
	uint32_t len;
	uint8_t *rec;
	(void)state;

	rpc_rm_init(&m, 1024);
	put_frag(buf, 8, true);
	memcpy(buf + 4, "abcdefgh", 8);
	assert_int_equal(rpc_rm_feed(&m, buf, sizeof(buf), &used), RPC_RM_RECORD);
	assert_int_equal(used, sizeof(buf));
	rec = rpc_rm_take(&m, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(rec, "abcdefgh", 8);
	free(rec);
	rpc_rm_fini(&m);
}

/* Three fragments, fed one byte at a time, then a second record in the same
 * stream: feeding stops right after the first record. */
static void test_rm_fragments_bytewise(void **state)
{
	struct rpc_rm m;
	uint8_t s[64];
	size_t n = 0, off = 0, used;
	uint32_t len;
	uint8_t *rec;
	int records = 0;
	(void)state;

	put_frag(s + n, 3, false); n += 4; memcpy(s + n, "abc", 3); n += 3;
	put_frag(s + n, 0, false); n += 4;
	put_frag(s + n, 4, true); n += 4; memcpy(s + n, "defg", 4); n += 4;
	put_frag(s + n, 2, true); n += 4; memcpy(s + n, "xy", 2); n += 2;

	rpc_rm_init(&m, 1024);
	while (off < n) {
		enum rpc_rm_result r = rpc_rm_feed(&m, s + off, 1, &used);
		assert_int_equal(used, 1);
		off += used;
		assert_int_not_equal(r, RPC_RM_ERROR);
		if (r == RPC_RM_RECORD) {
			rec = rpc_rm_take(&m, &len);
			if (records == 0) {
				assert_int_equal(len, 7);
				assert_memory_equal(rec, "abcdefg", 7);
			} else {
				assert_int_equal(len, 2);
				assert_memory_equal(rec, "xy", 2);
			}
			free(rec);
			records++;
		}
	}
	assert_int_equal(records, 2);

	/* all at once: stops after the first record */
	assert_int_equal(rpc_rm_feed(&m, s, n, &used), RPC_RM_RECORD);
	assert_int_equal(used, 4 + 3 + 4 + 4 + 4);
	free(rpc_rm_take(&m, &len));
	assert_int_equal(rpc_rm_feed(&m, s + used, n - used, &used), RPC_RM_RECORD);
	free(rpc_rm_take(&m, &len));
	assert_int_equal(len, 2);
	rpc_rm_fini(&m);
}

/* The limit is on the whole record, checked at each fragment header before
 * any body byte is taken; exactly max is fine. */
static void test_rm_oversize(void **state)
{
	struct rpc_rm m;
	uint8_t h[4];
	size_t used;
	uint8_t body[100] = { 0 };
	uint32_t len;
	(void)state;

	rpc_rm_init(&m, 100);
	put_frag(h, 101, true);
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_ERROR);
	rpc_rm_fini(&m);

	rpc_rm_init(&m, 100);
	put_frag(h, 60, false);
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_MORE);
	assert_int_equal(rpc_rm_feed(&m, body, 60, &used), RPC_RM_MORE);
	put_frag(h, 41, true);
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_ERROR);
	rpc_rm_fini(&m);

	rpc_rm_init(&m, 100);
	put_frag(h, 0x7fffffffu, true);     /* 2 GiB claim: refused before any allocation */
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_ERROR);
	rpc_rm_fini(&m);

	rpc_rm_init(&m, 100);
	put_frag(h, 100, true);
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_MORE);
	assert_int_equal(rpc_rm_feed(&m, body, 100, &used), RPC_RM_RECORD);
	free(rpc_rm_take(&m, &len));
	assert_int_equal(len, 100);
	rpc_rm_fini(&m);
}

static void test_rm_direct_and_empty(void **state)
{
	struct rpc_rm m;
	uint8_t h[4], *dst;
	size_t used;
	uint32_t room, len;
	uint8_t *rec;
	(void)state;

	rpc_rm_init(&m, 1 << 20);
	assert_null(rpc_rm_direct(&m, &room));
	put_frag(h, 50000, true);
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_MORE);
	dst = rpc_rm_direct(&m, &room);
	assert_non_null(dst);
	assert_int_equal(room, 50000);
	memset(dst, 0xab, 20000);
	assert_int_equal(rpc_rm_direct_done(&m, 20000), RPC_RM_MORE);
	dst = rpc_rm_direct(&m, &room);
	assert_int_equal(room, 30000);
	memset(dst, 0xcd, 30000);
	assert_int_equal(rpc_rm_direct_done(&m, 30000), RPC_RM_RECORD);
	rec = rpc_rm_take(&m, &len);
	assert_int_equal(len, 50000);
	assert_int_equal(rec[19999], 0xab);
	assert_int_equal(rec[20000], 0xcd);
	free(rec);

	/* an empty record: a valid frame (the caller then drops it as garbage) */
	put_frag(h, 0, true);
	assert_int_equal(rpc_rm_feed(&m, h, 4, &used), RPC_RM_RECORD);
	rec = rpc_rm_take(&m, &len);
	assert_non_null(rec);
	assert_int_equal(len, 0);
	free(rec);
	rpc_rm_fini(&m);
}

/* ================================================================ call header */

static size_t build_raw(uint8_t *buf, uint32_t rpcvers, uint32_t flavor, const uint8_t *cred,
			uint32_t clen, uint32_t vflavor, uint32_t vlen)
{
	struct xdr_enc e;
	uint8_t zeros[512] = { 0 };

	xdr_enc_init(&e, buf, 2048);
	xdr_put_u32(&e, 0x1234);
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, rpcvers);
	xdr_put_u32(&e, 100003);
	xdr_put_u32(&e, 3);
	xdr_put_u32(&e, 7);
	xdr_put_u32(&e, flavor);
	xdr_put_opaque(&e, cred, clen);
	xdr_put_u32(&e, vflavor);
	xdr_put_opaque(&e, zeros, vlen);
	xdr_put_u32(&e, 0xdeadbeef);    /* args */
	return xdr_enc_len(&e);
}

static uint32_t sys_body(uint8_t *b, const char *machine, uint32_t uid, uint32_t gid, uint32_t ngids,
			 bool trailing)
{
	struct xdr_enc e;

	xdr_enc_init(&e, b, 1024);
	xdr_put_u32(&e, 1);
	xdr_put_string(&e, machine);
	xdr_put_u32(&e, uid);
	xdr_put_u32(&e, gid);
	xdr_put_u32(&e, ngids);
	for (uint32_t i = 0; i < ngids; i++)
		xdr_put_u32(&e, 100 + i);
	if (trailing)
		xdr_put_u32(&e, 0);
	return (uint32_t)xdr_enc_len(&e);
}

static void test_parse_auth_sys(void **state)
{
	uint8_t msg[2048], body[1024];
	struct rpc_call c;
	uint32_t st = 0;
	uint32_t bl = sys_body(body, "host.example", 1000, 100, 16, false);
	size_t n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 0, 0);
	(void)state;

	memset(&c, 0, sizeof(c));
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_OK);
	assert_int_equal(c.xid, 0x1234);
	assert_int_equal(c.prog, 100003);
	assert_int_equal(c.vers, 3);
	assert_int_equal(c.proc, 7);
	assert_int_equal(c.auth.flavor, RPC_AUTH_SYS);
	assert_int_equal(c.auth.uid, 1000);
	assert_int_equal(c.auth.gid, 100);
	assert_int_equal(c.auth.ngids, 16);
	assert_int_equal(c.auth.gids[15], 115);
	assert_string_equal(c.auth.machine, "host.example");
	assert_int_equal(c.args_len, 4);
	assert_int_equal(xdr_be32(c.args), 0xdeadbeef);

	/* AUTH_NONE: nobody */
	n = build_raw(msg, 2, RPC_AUTH_NONE, NULL, 0, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_OK);
	assert_int_equal(c.auth.flavor, RPC_AUTH_NONE);
	assert_int_equal(c.auth.uid, 65534);
}

static void test_parse_bad_creds(void **state)
{
	uint8_t msg[2048], body[1024];
	struct rpc_call c;
	uint32_t st, bl;
	size_t n;
	char name[300];
	(void)state;

	memset(&c, 0, sizeof(c));
	/* 17 groups */
	bl = sys_body(body, "h", 0, 0, 17, false);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 0, 0);
	st = 0;
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADCRED);
	/* machinename of 256 bytes (limit 255) */
	memset(name, 'a', 256);
	name[256] = '\0';
	bl = sys_body(body, name, 0, 0, 0, false);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADCRED);
	/* 255 is fine */
	name[255] = '\0';
	bl = sys_body(body, name, 0, 0, 0, false);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_OK);
	assert_int_equal(strlen(c.auth.machine), 255);
	/* trailing bytes inside the credential */
	bl = sys_body(body, "h", 0, 0, 2, true);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADCRED);
	/* credential body truncated (claims more groups than present) */
	bl = sys_body(body, "h", 0, 0, 3, false);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl - 4, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	/* credential over 400 bytes */
	memset(body, 0, sizeof(body));
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, 404, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADCRED);
	/* AUTH_NONE with a body */
	n = build_raw(msg, 2, RPC_AUTH_NONE, body, 4, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	/* RPCSEC_GSS */
	n = build_raw(msg, 2, 6, body, 8, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADCRED);
	/* verifier must be an empty AUTH_NONE */
	bl = sys_body(body, "h", 0, 0, 0, false);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 1, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADVERF);
	n = build_raw(msg, 2, RPC_AUTH_SYS, body, bl, 0, 8);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_AUTH_ERROR);
	assert_int_equal(st, RPC_AUTH_BADVERF);
}

static void test_parse_header_garbage(void **state)
{
	uint8_t msg[2048];
	struct rpc_call c;
	uint32_t st;
	size_t n;
	(void)state;

	memset(&c, 0, sizeof(c));
	n = build_raw(msg, 3, 0, NULL, 0, 0, 0);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_RPC_MISMATCH);
	assert_int_equal(c.xid, 0x1234);
	/* every truncation of a valid header is handled without overreading */
	n = build_raw(msg, 2, 0, NULL, 0, 0, 0);
	for (size_t cut = 0; cut < n - 4; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, msg, cut);
		enum rpc_parse_result r = rpc_parse_call(copy, cut, &c, &st);
		assert_int_not_equal(r, RPC_PARSE_OK);
		free(copy);
	}
	/* a REPLY is ignored */
	xdr_put_be32(msg + 4, 1);
	assert_int_equal(rpc_parse_call(msg, n, &c, &st), RPC_PARSE_DROP);
}

/* ================================================================ transport */

#define TPROG 0x20000777u

enum { P_NULL, P_ECHO, P_DEFER, P_PAYLOAD, P_COUNT, P_DROP };

static struct reactor g_r;
static pthread_t g_thr;
static int g_lfd, g_ufd;
static uint16_t g_port, g_uport;
static struct rpc_call *g_deferred[512];
static int g_ndeferred, g_max_deferred;
static atomic_int g_payload_done, g_count_calls;

static void t_dispatch(struct rpc_call *call)
{
	uint8_t *p;

	switch (call->proc) {
	case P_NULL:
		rpc_reply_buf(call, 0);
		rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
		return;
	case P_ECHO:
		p = rpc_reply_buf(call, call->args_len + 8);
		xdr_put_be32(p, call->auth.uid);
		xdr_put_be32(p + 4, call->args_len);
		memcpy(p + 8, call->args, call->args_len);
		rpc_reply_send(call, call->args_len + 8, NULL, 0, NULL, NULL);
		return;
	case P_DEFER:
		g_deferred[g_ndeferred++] = call;
		if (g_ndeferred > g_max_deferred)
			g_max_deferred = g_ndeferred;
		return;
	case P_PAYLOAD: {
		/* args: payload length; results: the length, then the payload */
		uint32_t n = call->args_len >= 4 ? xdr_be32(call->args) : 0;
		uint8_t *data = malloc(n ? n : 1);
		for (uint32_t i = 0; i < n; i++)
			data[i] = (uint8_t)i;
		p = rpc_reply_buf(call, 4);
		xdr_put_be32(p, n);
		rpc_reply_send(call, 4, data, n, (void (*)(void *))free, data);
		atomic_fetch_add(&g_payload_done, 1);
		return;
	}
	case P_COUNT: {
		int v = atomic_fetch_add(&g_count_calls, 1) + 1;
		p = rpc_reply_buf(call, 4);
		xdr_put_be32(p, (uint32_t)v);
		rpc_reply_send(call, 4, NULL, 0, NULL, NULL);
		return;
	}
	case P_DROP:
		rpc_call_drop(call);
		return;
	default:
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
	}
}

static const struct rpc_program t_prog = {
	.prog = TPROG, .vers_lo = 2, .vers_hi = 4, .name = "test", .dispatch = t_dispatch,
	.non_idempotent_procs = 1u << P_COUNT,
};

static void *reactor_thread(void *arg)
{
	(void)arg;
	reactor_run(&g_r);
	return NULL;
}

static void start_listen(void *arg)
{
	(void)arg;
	assert_int_equal(rpc_reactor_listen_tcp(&g_r, g_lfd), 0);
	assert_int_equal(rpc_reactor_serve_udp(&g_r, g_ufd), 0);
}

/* Run fn on the reactor and wait for it. */
struct sync_task {
	void (*fn)(void *);
	void *arg;
	atomic_int done;
};

static void sync_run(void *arg)
{
	struct sync_task *t = arg;
	t->fn(t->arg);
	atomic_store(&t->done, 1);
}

static void on_reactor(void (*fn)(void *), void *arg)
{
	struct sync_task t = { fn, arg, 0 };
	reactor_post(&g_r, sync_run, &t);
	while (!atomic_load(&t.done))
		usleep(1000);
}

static void release_deferred(void *arg)
{
	bool reverse = arg != NULL;
	int n = g_ndeferred;
	struct rpc_call *calls[512];

	memcpy(calls, g_deferred, sizeof(calls[0]) * (size_t)n);
	g_ndeferred = 0;
	for (int i = 0; i < n; i++) {
		struct rpc_call *c = calls[reverse ? n - 1 - i : i];
		uint8_t *p = rpc_reply_buf(c, 4);
		xdr_put_be32(p, c->xid);
		rpc_reply_send(c, 4, NULL, 0, NULL, NULL);
	}
}

static void get_ndeferred(void *arg)
{
	*(int *)arg = g_ndeferred;
}

static void do_shutdown(void *arg)
{
	(void)arg;
	rpc_reactor_shutdown(&g_r);
}

static void get_idle(void *arg)
{
	*(int *)arg = rpc_reactor_idle(&g_r);
}

static int setup(void **state)
{
	(void)state;
	rpc_register(&t_prog);
	drc_init(1024);
	g_ndeferred = g_max_deferred = 0;
	assert_int_equal(reactor_init(&g_r, 0, 256), 0);
	g_lfd = rc_listen_any(SOCK_STREAM, &g_port);
	g_ufd = rc_listen_any(SOCK_DGRAM, &g_uport);
	assert_true(g_lfd >= 0 && g_ufd >= 0);
	assert_int_equal(pthread_create(&g_thr, NULL, reactor_thread, NULL), 0);
	on_reactor(start_listen, NULL);
	return 0;
}

static int teardown(void **state)
{
	int idle = 0;
	(void)state;

	on_reactor(do_shutdown, NULL);
	for (int i = 0; i < 500 && !idle; i++) {
		on_reactor(get_idle, &idle);
		if (!idle)
			usleep(2000);
	}
	assert_true(idle);
	reactor_stop(&g_r);
	pthread_join(g_thr, NULL);
	reactor_fini(&g_r);
	close(g_lfd);
	close(g_ufd);
	return 0;
}

static uint8_t *tcp_call(int fd, uint32_t xid, uint32_t vers, uint32_t proc, const void *args,
			 size_t alen, uint32_t *rlen)
{
	static uint8_t msg[1 << 21];
	struct rc_cred cred = { .flavor = 1, .uid = 1000, .gid = 1000 };
	size_t n = rc_build_call(msg, sizeof(msg), xid, TPROG, vers, proc, &cred, args, alen);

	if (!n || rc_send_record(fd, msg, n, 1) < 0)
		return NULL;
	return rc_recv_record(fd, rlen, 5000);
}

static void test_tcp_echo_and_errors(void **state)
{
	int fd = rc_connect_tcp(g_port);
	uint8_t *rep, msg[256];
	const uint8_t *res;
	uint32_t rlen, reslen;
	size_t n;
	(void)state;

	assert_true(fd >= 0);
	rep = tcp_call(fd, 1, 3, P_ECHO, "hello!!!", 8, &rlen);
	assert_non_null(rep);
	assert_int_equal(rc_parse_reply(rep, rlen, 1, &res, &reslen), RPC_SUCCESS);
	assert_int_equal(reslen, 16);
	assert_int_equal(xdr_be32(res), 1000);
	assert_memory_equal(res + 8, "hello!!!", 8);
	free(rep);

	/* version outside 2..4: PROG_MISMATCH with low/high */
	rep = tcp_call(fd, 2, 7, P_ECHO, NULL, 0, &rlen);
	assert_int_equal(rc_parse_reply(rep, rlen, 2, &res, &reslen), RPC_PROG_MISMATCH);
	assert_int_equal(reslen, 8);
	assert_int_equal(xdr_be32(res), 2);
	assert_int_equal(xdr_be32(res + 4), 4);
	free(rep);

	/* unknown program */
	n = rc_build_call(msg, sizeof(msg), 3, 0x20000999u, 1, 0, NULL, NULL, 0);
	rc_send_record(fd, msg, n, 1);
	rep = rc_recv_record(fd, &rlen, 5000);
	assert_int_equal(rc_parse_reply(rep, rlen, 3, NULL, NULL), RPC_PROG_UNAVAIL);
	free(rep);

	/* unknown procedure: the program's PROC_UNAVAIL */
	rep = tcp_call(fd, 4, 2, 99, NULL, 0, &rlen);
	assert_int_equal(rc_parse_reply(rep, rlen, 4, NULL, NULL), RPC_PROC_UNAVAIL);
	free(rep);

	/* rpcvers 3: MSG_DENIED RPC_MISMATCH 2..2 */
	n = rc_build_call(msg, sizeof(msg), 5, TPROG, 3, 0, NULL, NULL, 0);
	xdr_put_be32(msg + 8, 3);
	rc_send_record(fd, msg, n, 1);
	rep = rc_recv_record(fd, &rlen, 5000);
	assert_int_equal(rc_parse_reply(rep, rlen, 5, &res, &reslen), 100);
	assert_int_equal(xdr_be32(res), 2);
	free(rep);

	/* bad credential: AUTH_ERROR BADCRED */
	n = rc_build_call(msg, sizeof(msg), 6, TPROG, 3, 0, NULL, NULL, 0);
	xdr_put_be32(msg + 24, 6);   /* RPCSEC_GSS */
	rc_send_record(fd, msg, n, 1);
	rep = rc_recv_record(fd, &rlen, 5000);
	assert_int_equal(rc_parse_reply(rep, rlen, 6, NULL, NULL), 110 + RPC_AUTH_BADCRED);
	free(rep);

	/* garbage record and a reply-type message are dropped; the
	 * connection survives and answers the next call */
	rc_send_record(fd, (const uint8_t *)"xyz", 3, 1);
	n = rc_build_call(msg, sizeof(msg), 7, TPROG, 3, 0, NULL, NULL, 0);
	xdr_put_be32(msg + 4, 1);
	rc_send_record(fd, msg, n, 1);
	rep = tcp_call(fd, 8, 3, P_NULL, NULL, 0, &rlen);
	assert_non_null(rep);
	assert_int_equal(rc_parse_reply(rep, rlen, 8, NULL, NULL), RPC_SUCCESS);
	free(rep);

	/* a dropped call gets no answer; the next one does */
	n = rc_build_call(msg, sizeof(msg), 9, TPROG, 3, P_DROP, NULL, NULL, 0);
	rc_send_record(fd, msg, n, 1);
	rep = tcp_call(fd, 10, 3, P_NULL, NULL, 0, &rlen);
	assert_int_equal(rc_parse_reply(rep, rlen, 10, NULL, NULL), RPC_SUCCESS);
	free(rep);
	close(fd);
}

static void test_tcp_fragmented_and_large(void **state)
{
	static uint8_t msg[(1 << 20) + 512];
	uint8_t *args = malloc(1 << 20), *rep;
	struct rc_cred cred = { .flavor = 1, .uid = 7 };
	const uint8_t *res;
	uint32_t rlen, reslen;
	int fd = rc_connect_tcp(g_port);
	size_t n;
	(void)state;

	for (int i = 0; i < (1 << 20); i++)
		args[i] = (uint8_t)(i * 7);
	/* 1 MiB of arguments in 5 fragments: the direct receive path */
	n = rc_build_call(msg, sizeof(msg), 42, TPROG, 3, P_ECHO, &cred, args, 1 << 20);
	assert_true(n > 0);
	assert_int_equal(rc_send_record(fd, msg, n, 5), 0);
	rep = rc_recv_record(fd, &rlen, 10000);
	assert_non_null(rep);
	assert_int_equal(rc_parse_reply(rep, rlen, 42, &res, &reslen), RPC_SUCCESS);
	assert_int_equal(xdr_be32(res + 4), 1 << 20);
	assert_memory_equal(res + 8, args, 1 << 20);
	free(rep);

	/* zero-copy payload with padding */
	for (uint32_t len = 0; len < 9; len++) {
		uint8_t a[4];
		xdr_put_be32(a, len * 1000 + (len & 3));
		rep = tcp_call(fd, 100 + len, 3, P_PAYLOAD, a, 4, &rlen);
		assert_non_null(rep);
		assert_int_equal(rc_parse_reply(rep, rlen, 100 + len, &res, &reslen), RPC_SUCCESS);
		uint32_t pl = xdr_be32(res);
		assert_int_equal(pl, len * 1000 + (len & 3));
		assert_int_equal(reslen, 4 + ((pl + 3) & ~3u));
		for (uint32_t i = 0; i < pl; i++)
			assert_int_equal(res[4 + i], (uint8_t)i);
		free(rep);
	}
	close(fd);
	free(args);
}

static void test_tcp_oversize_drops_connection(void **state)
{
	int fd = rc_connect_tcp(g_port);
	uint8_t h[4], buf[16];
	uint32_t rlen;
	(void)state;

	xdr_put_be32(h, 0x80000000u | (RPC_MAX_RECORD + 1));
	rc_write_all(fd, h, 4);
	assert_null(rc_recv_record(fd, &rlen, 5000));
	assert_true(recv(fd, buf, sizeof(buf), 0) <= 0);
	close(fd);
}

/* Pipelined calls answered in reverse order: every reply arrives with its
 * own xid. */
static void test_tcp_out_of_order(void **state)
{
	int fd = rc_connect_tcp(g_port), n = 0;
	uint8_t msg[256];
	bool seen[10] = { false };
	(void)state;

	for (uint32_t x = 0; x < 10; x++) {
		size_t len = rc_build_call(msg, sizeof(msg), 500 + x, TPROG, 3, P_DEFER, NULL, NULL, 0);
		rc_send_record(fd, msg, len, 1);
	}
	while (n < 10) {
		on_reactor(get_ndeferred, &n);
		usleep(1000);
	}
	on_reactor(release_deferred, (void *)1);
	for (int i = 0; i < 10; i++) {
		uint32_t rlen, reslen;
		const uint8_t *res;
		uint8_t *rep = rc_recv_record(fd, &rlen, 5000);
		uint32_t xid;
		assert_non_null(rep);
		xid = xdr_be32(rep);
		assert_true(xid >= 500 && xid < 510);
		assert_int_equal(rc_parse_reply(rep, rlen, xid, &res, &reslen), RPC_SUCCESS);
		assert_int_equal(xdr_be32(res), xid);
		if (i == 0)
			assert_int_equal(xid, 509);
		seen[xid - 500] = true;
		free(rep);
	}
	for (int i = 0; i < 10; i++)
		assert_true(seen[i]);
	close(fd);
}

/* More calls than RPC_MAX_INFLIGHT: the reader stops at the limit and
 * resumes when replies drain; nothing is lost. */
static void test_tcp_inflight_limit(void **state)
{
	int fd = rc_connect_tcp(g_port), n = 0, got = 0;
	enum { N = 300 };
	uint8_t msg[128];
	(void)state;

	for (uint32_t x = 0; x < N; x++) {
		size_t len = rc_build_call(msg, sizeof(msg), 1000 + x, TPROG, 3, P_DEFER, NULL, NULL, 0);
		rc_send_record(fd, msg, len, 1);
	}
	for (int round = 0; got < N && round < 100; round++) {
		usleep(20000);
		on_reactor(get_ndeferred, &n);
		assert_true(n <= RPC_MAX_INFLIGHT);
		on_reactor(release_deferred, NULL);
		for (;;) {
			uint32_t rlen;
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			if (poll(&pfd, 1, got + n < N ? 50 : 500) <= 0)
				break;
			uint8_t *rep = rc_recv_record(fd, &rlen, 1000);
			assert_non_null(rep);
			free(rep);
			if (++got == N)
				break;
		}
	}
	assert_int_equal(got, N);
	assert_true(g_max_deferred <= RPC_MAX_INFLIGHT);
	assert_true(g_max_deferred >= 64);
	close(fd);
}

/* The client disappears while calls are in flight: the calls complete into
 * a dead connection, which is freed after the last one (ASan checks). */
static void test_tcp_client_vanishes(void **state)
{
	int fd = rc_connect_tcp(g_port), n = 0;
	uint8_t msg[128];
	(void)state;

	for (uint32_t x = 0; x < 20; x++) {
		size_t len = rc_build_call(msg, sizeof(msg), 2000 + x, TPROG, 3, P_DEFER, NULL, NULL, 0);
		rc_send_record(fd, msg, len, 1);
	}
	while (n < 20) {
		on_reactor(get_ndeferred, &n);
		usleep(1000);
	}
	close(fd);
	usleep(50000);   /* let the reactor see the close */
	on_reactor(release_deferred, NULL);
	/* the teardown checks that everything is freed (idle) */
}

/* Non-idempotent procedure: a retransmission (same xid, same args) on a new
 * connection gets the cached reply; the procedure ran once. */
static void test_drc_replay(void **state)
{
	int fd = rc_connect_tcp(g_port), fd2;
	uint8_t *rep1, *rep2;
	uint32_t l1, l2;
	(void)state;

	atomic_store(&g_count_calls, 0);
	rep1 = tcp_call(fd, 777, 3, P_COUNT, "args", 4, &l1);
	assert_non_null(rep1);
	close(fd);
	fd2 = rc_connect_tcp(g_port);
	rep2 = tcp_call(fd2, 777, 3, P_COUNT, "args", 4, &l2);
	assert_non_null(rep2);
	assert_int_equal(l1, l2);
	assert_memory_equal(rep1, rep2, l1);
	assert_int_equal(atomic_load(&g_count_calls), 1);
	free(rep2);
	/* different arguments with the same xid: a new call */
	rep2 = tcp_call(fd2, 777, 3, P_COUNT, "argz", 4, &l2);
	assert_int_equal(atomic_load(&g_count_calls), 2);
	free(rep2);
	/* same xid, idempotent procedure: never cached */
	rep2 = tcp_call(fd2, 777, 3, P_ECHO, "args", 4, &l2);
	assert_int_equal(rc_parse_reply(rep2, l2, 777, NULL, NULL), RPC_SUCCESS);
	free(rep2);
	free(rep1);
	close(fd2);
}

static void test_udp(void **state)
{
	int fd = rc_udp_socket(g_uport);
	uint8_t msg[512], *rep;
	struct rc_cred cred = { .flavor = 1, .uid = 33 };
	const uint8_t *res;
	uint32_t rlen, reslen;
	size_t n;
	(void)state;

	n = rc_build_call(msg, sizeof(msg), 31, TPROG, 2, P_ECHO, &cred, "udp!", 4);
	assert_int_equal(send(fd, msg, n, 0), (ssize_t)n);
	rep = rc_recv_udp(fd, &rlen, 5000);
	assert_non_null(rep);
	assert_int_equal(rc_parse_reply(rep, rlen, 31, &res, &reslen), RPC_SUCCESS);
	assert_int_equal(xdr_be32(res), 33);
	assert_memory_equal(res + 8, "udp!", 4);
	free(rep);

	/* garbage datagram: no answer, socket keeps serving */
	send(fd, "junk", 4, 0);
	n = rc_build_call(msg, sizeof(msg), 32, TPROG, 9, P_ECHO, NULL, NULL, 0);
	send(fd, msg, n, 0);
	rep = rc_recv_udp(fd, &rlen, 5000);
	assert_non_null(rep);
	assert_int_equal(rc_parse_reply(rep, rlen, 32, NULL, NULL), RPC_PROG_MISMATCH);
	free(rep);

	/* payload over UDP */
	{
		uint8_t a[4];
		xdr_put_be32(a, 1001);
		n = rc_build_call(msg, sizeof(msg), 33, TPROG, 2, P_PAYLOAD, NULL, a, 4);
		send(fd, msg, n, 0);
		rep = rc_recv_udp(fd, &rlen, 5000);
		assert_non_null(rep);
		assert_int_equal(rc_parse_reply(rep, rlen, 33, &res, &reslen), RPC_SUCCESS);
		assert_int_equal(reslen, 4 + 1004);
		assert_int_equal(res[4 + 1000], (uint8_t)1000);
		free(rep);
	}
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rm_single),
		cmocka_unit_test(test_rm_fragments_bytewise),
		cmocka_unit_test(test_rm_oversize),
		cmocka_unit_test(test_rm_direct_and_empty),
		cmocka_unit_test(test_parse_auth_sys),
		cmocka_unit_test(test_parse_bad_creds),
		cmocka_unit_test(test_parse_header_garbage),
		cmocka_unit_test_setup_teardown(test_tcp_echo_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_fragmented_and_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_oversize_drops_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_inflight_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_client_vanishes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drc_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp, setup, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
