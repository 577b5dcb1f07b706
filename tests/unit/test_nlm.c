/* Unit tests for nfsgw/nlm.c and nfsgw/nsm.c: the lock table (POSIX
 * conflicts, split and merge, owner identity, the blocked queue in arrival
 * order, CANCEL, FREE_ALL by name and by address, DOS share modes), NLM4 and
 * NLM1 argument decoding with its bounds, the NSM state file and client
 * list; then the RPC server on a reactor: TEST/LOCK/UNLOCK/CANCEL over TCP,
 * forged handles, the grace period, SHARE, FREE_ALL, SM_NOTIFY, garbage
 * arguments, and a blocking lock granted through an NLM_GRANTED call to a
 * callback server found through the portmapper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/reactor.h"
#include "nfsgw/exports.h"
#include "nfsgw/fh.h"
#include "nfsgw/nlm.h"
#include "nfsgw/nsm.h"
#include "nfsgw/portmap.h"
#include "nfsgw/rpc.h"
#include "tests/unit/rpc_client.h"

/* ================================================================ table */

static const uint8_t FH1[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t FH2[] = { 9, 9, 9, 9 };

static struct nlm_req mk(const uint8_t *fh, size_t fhlen, const char *caller, int32_t svid, bool excl,
			 uint64_t off, uint64_t len)
{
	static char ohs[8][64];
	static int k;
	struct nlm_req r;
	char *oh = ohs[k++ % 8];

	memset(&r, 0, sizeof(r));
	r.fh = fh;
	r.fhlen = (uint32_t)fhlen;
	r.export_id = 7;
	r.caller = caller;
	r.svid = svid;
	snprintf(oh, 64, "%d@%s", svid, caller);
	r.oh = (const uint8_t *)oh;
	r.ohlen = (uint32_t)strlen(oh);
	r.exclusive = excl;
	r.start = off;
	r.end = nlm_range_end(off, len);
	return r;
}

#define R1(caller, svid, excl, off, len) mk(FH1, sizeof(FH1), caller, svid, excl, off, len)

static int nlocks(void)
{
	int n;
	nlm_tab_counts(&n, NULL, NULL);
	return n;
}

static int nblocked(void)
{
	int n;
	nlm_tab_counts(NULL, &n, NULL);
	return n;
}

static struct nlm_grant g_grants[16];
static int g_ngrants;

static void record_grant(const struct nlm_grant *g)
{
	if (g_ngrants < 16)
		g_grants[g_ngrants] = *g;
	g_ngrants++;
}

static int tab_setup(void **state)
{
	(void)state;
	nlm_tab_clear();
	g_ngrants = 0;
	nlm_set_grant_hook(record_grant);
	return 0;
}

static int tab_teardown(void **state)
{
	(void)state;
	nlm_tab_clear();
	nlm_set_grant_hook(NULL);
	return 0;
}

static void test_range(void **state)
{
	(void)state;
	assert_true(nlm_range_end(0, 0) == NLM_OFFSET_MAX);
	assert_true(nlm_range_end(10, 1) == 10);
	assert_true(nlm_range_end(10, 5) == 14);
	assert_true(nlm_range_end(UINT64_MAX - 1, 5) == NLM_OFFSET_MAX);
	assert_true(nlm_range_end(1, UINT64_MAX) == NLM_OFFSET_MAX);
	assert_true(nlm_range_end(0, UINT64_MAX) == UINT64_MAX - 1);
}

static void test_conflicts(void **state)
{
	struct nlm_holder h;
	struct nlm_req a = R1("hostA", 1, false, 0, 100), b = R1("hostB", 2, false, 50, 100);
	struct nlm_req bx = R1("hostB", 2, true, 50, 100), cx = R1("hostC", 3, true, 100, 10);
	(void)state;

	assert_int_equal(nlm_tab_lock(&a, NULL), NLM4_GRANTED);
	/* shared + shared: fine */
	assert_int_equal(nlm_tab_test(&b, &h), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&b, NULL), NLM4_GRANTED);
	/* exclusive over a shared lock of another owner: denied, holder told */
	struct nlm_req cx0 = R1("hostC", 3, true, 0, 10);
	assert_int_equal(nlm_tab_test(&cx0, &h), NLM4_DENIED);
	assert_false(h.exclusive);
	assert_int_equal(h.svid, 1);
	assert_true(h.start == 0 && h.end == 99);
	assert_memory_equal(h.oh, "1@hostA", 7);
	assert_int_equal(nlm_tab_lock(&cx0, NULL), NLM4_DENIED);
	/* [100, 109] overlaps B's [50, 149] */
	assert_int_equal(nlm_tab_lock(&cx, NULL), NLM4_DENIED);
	/* past both: fine; other file: fine */
	struct nlm_req cfar = R1("hostC", 3, true, 150, 0);
	assert_int_equal(nlm_tab_lock(&cfar, NULL), NLM4_GRANTED);
	struct nlm_req other = mk(FH2, sizeof(FH2), "hostC", 3, true, 0, 0);
	assert_int_equal(nlm_tab_lock(&other, NULL), NLM4_GRANTED);
	/* B upgrading to exclusive conflicts with A's shared lock */
	assert_int_equal(nlm_tab_lock(&bx, NULL), NLM4_DENIED);
	/* an owner never conflicts with itself */
	struct nlm_req ax = R1("hostA", 1, true, 0, 10);
	assert_int_equal(nlm_tab_test(&ax, &h), NLM4_GRANTED);
	/* holder of a to-EOF lock */
	struct nlm_req t = R1("hostD", 4, false, 1000, 1);
	assert_int_equal(nlm_tab_test(&t, &h), NLM4_DENIED);
	assert_true(h.exclusive && h.start == 150 && h.end == NLM_OFFSET_MAX);
}

static void test_split_merge(void **state)
{
	struct nlm_holder h;
	(void)state;

	struct nlm_req a = R1("hostA", 1, true, 0, 100);
	assert_int_equal(nlm_tab_lock(&a, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);
	/* unlock the middle: split in two */
	struct nlm_req mid = R1("hostA", 1, true, 40, 20);
	assert_int_equal(nlm_tab_unlock(&mid), NLM4_GRANTED);
	assert_int_equal(nlocks(), 2);
	struct nlm_req t50 = R1("hostB", 2, true, 50, 1), t39 = R1("hostB", 2, true, 39, 1);
	struct nlm_req t60 = R1("hostB", 2, true, 60, 1);
	assert_int_equal(nlm_tab_test(&t50, &h), NLM4_GRANTED);
	assert_int_equal(nlm_tab_test(&t39, &h), NLM4_DENIED);
	assert_true(h.start == 0 && h.end == 39);
	assert_int_equal(nlm_tab_test(&t60, &h), NLM4_DENIED);
	assert_true(h.start == 60 && h.end == 99);
	/* lock the hole again: merged back into one */
	assert_int_equal(nlm_tab_lock(&mid, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);
	assert_int_equal(nlm_tab_test(&t50, &h), NLM4_DENIED);
	assert_true(h.start == 0 && h.end == 99);
	/* adjacent, same type: merged; different type: kept apart */
	struct nlm_req adj = R1("hostA", 1, true, 100, 50);
	assert_int_equal(nlm_tab_lock(&adj, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);
	struct nlm_req sh = R1("hostA", 1, false, 150, 50);
	assert_int_equal(nlm_tab_lock(&sh, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 2);
	/* downgrade the middle of the exclusive range: three pieces */
	struct nlm_req dn = R1("hostA", 1, false, 10, 10);
	assert_int_equal(nlm_tab_lock(&dn, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 4);
	struct nlm_req r15 = R1("hostB", 2, false, 15, 1);
	assert_int_equal(nlm_tab_test(&r15, &h), NLM4_GRANTED);     /* shared now */
	/* re-locking a range held with the same type changes nothing */
	struct nlm_req same = R1("hostA", 1, true, 30, 5);
	assert_int_equal(nlm_tab_lock(&same, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 4);
	/* unlock over everything, partly past the end */
	struct nlm_req all = R1("hostA", 1, true, 5, 0);
	assert_int_equal(nlm_tab_unlock(&all), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);                           /* [0, 4] */
	struct nlm_req zero = R1("hostA", 1, true, 0, 0);
	assert_int_equal(nlm_tab_unlock(&zero), NLM4_GRANTED);
	assert_int_equal(nlocks(), 0);
	/* unlocking nothing is fine */
	assert_int_equal(nlm_tab_unlock(&zero), NLM4_GRANTED);
	/* to-EOF locks merge at the end too */
	struct nlm_req e1 = R1("hostA", 1, true, 0, 10), e2 = R1("hostA", 1, true, 10, 0);
	assert_int_equal(nlm_tab_lock(&e1, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&e2, NULL), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);
	struct nlm_req end = R1("hostA", 1, true, UINT64_MAX - 1, 0);
	assert_int_equal(nlm_tab_unlock(&end), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);
	struct nlm_req tend = R1("hostB", 2, true, UINT64_MAX, 0);
	assert_int_equal(nlm_tab_test(&tend, &h), NLM4_GRANTED);
}

static void test_owners(void **state)
{
	struct nlm_holder h;
	(void)state;

	struct nlm_req a = R1("hostA", 1, true, 0, 10);
	assert_int_equal(nlm_tab_lock(&a, NULL), NLM4_GRANTED);
	/* same caller, other svid: another process, conflicts */
	struct nlm_req a2 = R1("hostA", 2, true, 0, 10);
	assert_int_equal(nlm_tab_test(&a2, &h), NLM4_DENIED);
	/* same caller and svid, other oh: another owner too */
	struct nlm_req a3 = R1("hostA", 1, true, 0, 10);
	a3.oh = (const uint8_t *)"other-oh";
	a3.ohlen = 8;
	assert_int_equal(nlm_tab_test(&a3, &h), NLM4_DENIED);
	/* unlock by another owner does nothing */
	assert_int_equal(nlm_tab_unlock(&a3), NLM4_GRANTED);
	assert_int_equal(nlocks(), 1);
	/* same name on another host: another owner */
	struct nlm_req b = R1("hostB", 1, true, 0, 10);
	b.oh = a.oh;
	b.ohlen = a.ohlen;
	assert_int_equal(nlm_tab_test(&b, &h), NLM4_DENIED);
}

static void test_blocking_order(void **state)
{
	struct nlm_block_info bi = { 4, false, (const uint8_t *)"ck", 2 };
	(void)state;

	struct nlm_req a = R1("hostA", 1, true, 0, 100);
	struct nlm_req b = R1("hostB", 2, true, 0, 100), c = R1("hostC", 3, true, 50, 10);
	struct nlm_req d = R1("hostD", 4, false, 200, 10);
	assert_int_equal(nlm_tab_lock(&a, &bi), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&b, &bi), NLM4_BLOCKED);
	assert_int_equal(nlm_tab_lock(&c, &bi), NLM4_BLOCKED);
	/* a re-sent blocking request is queued once */
	assert_int_equal(nlm_tab_lock(&b, &bi), NLM4_BLOCKED);
	assert_int_equal(nblocked(), 2);
	/* non-conflicting requests are not held up by the queue */
	assert_int_equal(nlm_tab_lock(&d, &bi), NLM4_GRANTED);
	assert_int_equal(g_ngrants, 0);
	/* A unlocks: B (first) gets it; C still conflicts with B */
	assert_int_equal(nlm_tab_unlock(&a), NLM4_GRANTED);
	assert_int_equal(g_ngrants, 1);
	assert_string_equal(g_grants[0].caller, "hostB");
	assert_int_equal(g_grants[0].svid, 2);
	assert_true(g_grants[0].exclusive && g_grants[0].start == 0 && g_grants[0].end == 99);
	assert_int_equal(g_grants[0].cookielen, 2);
	assert_memory_equal(g_grants[0].cookie, "ck", 2);
	assert_int_equal(g_grants[0].fhlen, sizeof(FH1));
	assert_int_equal(g_grants[0].vers, 4);
	assert_int_equal(nblocked(), 1);
	/* B unlocks a part that does not free C's range: nothing */
	struct nlm_req bpart = R1("hostB", 2, true, 0, 10);
	assert_int_equal(nlm_tab_unlock(&bpart), NLM4_GRANTED);
	assert_int_equal(g_ngrants, 1);
	/* then the rest: C */
	assert_int_equal(nlm_tab_unlock(&b), NLM4_GRANTED);
	assert_int_equal(g_ngrants, 2);
	assert_string_equal(g_grants[1].caller, "hostC");
	assert_int_equal(nblocked(), 0);
	struct nlm_holder h;
	struct nlm_req t = R1("hostA", 1, false, 55, 1);
	assert_int_equal(nlm_tab_test(&t, &h), NLM4_DENIED);
	assert_int_equal(h.svid, 3);

	/* several shared waiters are granted together */
	nlm_tab_clear();
	g_ngrants = 0;
	struct nlm_req w = R1("hostW", 9, true, 0, 0);
	assert_int_equal(nlm_tab_lock(&w, NULL), NLM4_GRANTED);
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "r%d", i);
		struct nlm_req r = R1(name, 10 + i, false, 0, 0);
		r.caller = i == 0 ? "r0" : i == 1 ? "r1" : "r2";
		assert_int_equal(nlm_tab_lock(&r, &bi), NLM4_BLOCKED);
	}
	/* a downgrade of the writer lets the readers in */
	struct nlm_req wd = R1("hostW", 9, false, 0, 0);
	assert_int_equal(nlm_tab_lock(&wd, NULL), NLM4_GRANTED);
	assert_int_equal(g_ngrants, 3);
	assert_string_equal(g_grants[0].caller, "r0");
	assert_string_equal(g_grants[2].caller, "r2");
	/* a blocked request granted on re-send leaves the queue */
	nlm_tab_clear();
	g_ngrants = 0;
	assert_int_equal(nlm_tab_lock(&a, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&b, &bi), NLM4_BLOCKED);
	nlm_tab_clear();
	assert_int_equal(nlm_tab_lock(&b, &bi), NLM4_GRANTED);
	assert_int_equal(nblocked(), 0);
}

static void test_cancel(void **state)
{
	struct nlm_block_info bi = { 4, false, NULL, 0 };
	(void)state;

	struct nlm_req a = R1("hostA", 1, true, 0, 100), b = R1("hostB", 2, true, 0, 100);
	assert_int_equal(nlm_tab_lock(&a, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&b, &bi), NLM4_BLOCKED);
	/* another range or type: not that request */
	struct nlm_req b2 = R1("hostB", 2, true, 0, 50), bs = R1("hostB", 2, false, 0, 100);
	assert_int_equal(nlm_tab_cancel(&b2), NLM4_DENIED);
	assert_int_equal(nlm_tab_cancel(&bs), NLM4_DENIED);
	assert_int_equal(nlm_tab_cancel(&b), NLM4_GRANTED);
	assert_int_equal(nblocked(), 0);
	assert_int_equal(nlm_tab_cancel(&b), NLM4_DENIED);
	assert_int_equal(nlm_tab_unlock(&a), NLM4_GRANTED);
	assert_int_equal(g_ngrants, 0);
	assert_int_equal(nlocks(), 0);
}

static void test_free_all(void **state)
{
	struct nlm_block_info bi = { 4, false, NULL, 0 };
	struct sockaddr_in sa1 = { .sin_family = AF_INET }, sa2 = { .sin_family = AF_INET };
	(void)state;

	inet_pton(AF_INET, "10.0.0.1", &sa1.sin_addr);
	inet_pton(AF_INET, "10.0.0.2", &sa2.sin_addr);
	struct nlm_req a1 = R1("hostA", 1, true, 0, 10), a2 = R1("hostA", 2, false, 20, 10);
	struct nlm_req a3 = mk(FH2, sizeof(FH2), "hostA", 1, true, 0, 0);
	struct nlm_req b = R1("hostB", 5, true, 0, 10), c = R1("hostC", 6, true, 100, 1);
	a1.peer = a2.peer = a3.peer = (struct sockaddr *)&sa1;
	b.peer = c.peer = (struct sockaddr *)&sa2;
	assert_int_equal(nlm_tab_lock(&a1, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&a2, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&a3, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&c, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_lock(&b, &bi), NLM4_BLOCKED);
	assert_int_equal(nlm_tab_share(&a1, NLM_FSM_DW, NLM_FSA_R), NLM4_GRANTED);
	/* FREE_ALL(hostA): its 3 locks and the share go, B is granted */
	assert_int_equal(nlm_tab_free_host("HOSTA", NULL), 4);
	assert_int_equal(nlocks(), 2);
	assert_int_equal(nblocked(), 0);
	assert_int_equal(g_ngrants, 1);
	assert_string_equal(g_grants[0].caller, "hostB");
	assert_int_equal(nlm_tab_free_host("nobody", NULL), 0);
	/* by address (a client that names itself differently in NSM) */
	assert_int_equal(nlm_tab_free_host(NULL, (struct sockaddr *)&sa2), 2);
	assert_int_equal(nlocks(), 0);
	assert_int_equal(nlm_tab_free_host(NULL, NULL), 0);
}

static void test_shares(void **state)
{
	int n;
	(void)state;

	struct nlm_req a = R1("hostA", 0, false, 0, 0), b = R1("hostB", 0, false, 0, 0);
	struct nlm_req c = R1("hostC", 0, false, 0, 0);
	/* A reads and denies writers */
	assert_int_equal(nlm_tab_share(&a, NLM_FSM_DW, NLM_FSA_R), NLM4_GRANTED);
	/* B reads, denies nothing: fine */
	assert_int_equal(nlm_tab_share(&b, NLM_FSM_DN, NLM_FSA_R), NLM4_GRANTED);
	/* C wants to write: A denies it */
	assert_int_equal(nlm_tab_share(&c, NLM_FSM_DN, NLM_FSA_W), NLM4_DENIED);
	/* C denies readers: A and B read */
	assert_int_equal(nlm_tab_share(&c, NLM_FSM_DR, NLM_FSA_NONE), NLM4_DENIED);
	/* C reads too: fine */
	assert_int_equal(nlm_tab_share(&c, NLM_FSM_DN, NLM_FSA_R), NLM4_GRANTED);
	nlm_tab_counts(NULL, NULL, &n);
	assert_int_equal(n, 3);
	/* an owner replaces its own reservation */
	assert_int_equal(nlm_tab_share(&c, NLM_FSM_DN, NLM_FSA_NONE), NLM4_GRANTED);
	nlm_tab_counts(NULL, NULL, &n);
	assert_int_equal(n, 3);
	/* after A and B unshare, C may deny reading and write */
	assert_int_equal(nlm_tab_unshare(&a), NLM4_GRANTED);
	assert_int_equal(nlm_tab_share(&c, NLM_FSM_DRW, NLM_FSA_RW), NLM4_DENIED);
	assert_int_equal(nlm_tab_unshare(&b), NLM4_GRANTED);
	assert_int_equal(nlm_tab_share(&c, NLM_FSM_DRW, NLM_FSA_RW), NLM4_GRANTED);
	assert_int_equal(nlm_tab_share(&a, NLM_FSM_DN, NLM_FSA_NONE), NLM4_GRANTED);
	assert_int_equal(nlm_tab_share(&a, NLM_FSM_DN, NLM_FSA_R), NLM4_DENIED);
	/* shares and byte-range locks are independent */
	struct nlm_req l = R1("hostA", 1, true, 0, 0);
	assert_int_equal(nlm_tab_lock(&l, NULL), NLM4_GRANTED);
	assert_int_equal(nlm_tab_unshare(&c), NLM4_GRANTED);
	assert_int_equal(nlm_tab_unshare(&c), NLM4_GRANTED);
	nlm_tab_counts(NULL, NULL, &n);
	assert_int_equal(n, 1);
}

static void test_grace_flag(void **state)
{
	(void)state;
	nlm_set_grace_now(0);
	assert_false(nlm_in_grace());
	nlm_set_grace_now(30);
	assert_true(nlm_in_grace());
	nlm_set_grace_now(0);
	assert_false(nlm_in_grace());
}

/* ================================================================ XDR */

static size_t enc_lock(uint8_t *buf, size_t cap, bool v4, uint32_t proc, const char *caller, uint32_t fhlen,
		       uint32_t ohlen, uint32_t boolv)
{
	struct xdr_enc e;
	uint8_t obj[2048];

	memset(obj, 0xab, sizeof(obj));
	xdr_enc_init(&e, buf, cap);
	xdr_put_opaque(&e, "cookie", 6);
	if (proc == NLMPROC_LOCK || proc == NLMPROC_CANCEL)
		xdr_put_u32(&e, boolv);                 /* block */
	if (proc != NLMPROC_UNLOCK)
		xdr_put_u32(&e, 1);                     /* exclusive */
	xdr_put_string(&e, caller);
	xdr_put_opaque(&e, obj, fhlen);
	xdr_put_opaque(&e, obj, ohlen);
	xdr_put_u32(&e, 4242);
	if (v4) {
		xdr_put_u64(&e, 0x100000000ull);
		xdr_put_u64(&e, 0);
	} else {
		xdr_put_u32(&e, 100);
		xdr_put_u32(&e, 5);
	}
	if (proc == NLMPROC_LOCK) {
		xdr_put_u32(&e, 0);                     /* reclaim */
		xdr_put_u32(&e, 3);                     /* state */
	}
	return e.err ? 0 : xdr_enc_len(&e);
}

static void test_decode(void **state)
{
	uint8_t buf[8192];
	struct nlm_args *a = malloc(sizeof(*a));
	size_t n;
	(void)state;

	assert_non_null(a);
	n = enc_lock(buf, sizeof(buf), true, NLMPROC_LOCK, "client1", 40, 12, 1);
	assert_true(n > 0);
	assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n, a), 0);
	assert_int_equal(a->cookie.len, 6);
	assert_true(a->block && a->exclusive && !a->reclaim);
	assert_int_equal(a->state, 3);
	assert_string_equal(a->caller, "client1");
	assert_int_equal(a->fh.len, 40);
	assert_int_equal(a->oh.len, 12);
	assert_int_equal(a->svid, 4242);
	assert_true(a->offset == 0x100000000ull && a->len == 0);
	/* every truncation is garbage */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, k, a), -1);
	/* trailing bytes are tolerated (RFC 5531 says nothing against them) */
	assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n + 4, a), 0);
	/* a bool that is neither 0 nor 1 */
	n = enc_lock(buf, sizeof(buf), true, NLMPROC_LOCK, "client1", 40, 12, 7);
	assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n, a), -1);
	/* netobj over MAXNETOBJ_SZ, caller_name over LM_MAXSTRLEN */
	n = enc_lock(buf, sizeof(buf), true, NLMPROC_LOCK, "client1", 1025, 12, 1);
	assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n, a), -1);
	n = enc_lock(buf, sizeof(buf), true, NLMPROC_LOCK, "client1", 1024, 1024, 1);
	assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n, a), 0);
	{
		char big[1100];
		memset(big, 'x', sizeof(big));
		big[1025] = '\0';
		n = enc_lock(buf, sizeof(buf), true, NLMPROC_LOCK, big, 8, 8, 1);
		assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n, a), -1);
		big[1024] = '\0';
		n = enc_lock(buf, sizeof(buf), true, NLMPROC_LOCK, big, 8, 8, 1);
		assert_int_equal(nlm_decode_args(NLMPROC_LOCK, 4, buf, n, a), 0);
	}
	/* a huge length field does not wrap */
	n = enc_lock(buf, sizeof(buf), true, NLMPROC_UNLOCK, "c", 8, 8, 1);
	xdr_put_be32(buf + 12, 0xfffffffcu);            /* caller_name length */
	assert_int_equal(nlm_decode_args(NLMPROC_UNLOCK, 4, buf, n, a), -1);
	/* v1/v3: 32-bit offsets */
	n = enc_lock(buf, sizeof(buf), false, NLMPROC_TEST, "c", 32, 8, 1);
	assert_int_equal(nlm_decode_args(NLMPROC_TEST, 1, buf, n, a), 0);
	assert_true(a->offset == 100 && a->len == 5 && a->exclusive);
	assert_int_equal(nlm_decode_args(NLMPROC_TEST, 4, buf, n, a), -1);
	n = enc_lock(buf, sizeof(buf), false, NLMPROC_CANCEL, "c", 32, 8, 0);
	assert_int_equal(nlm_decode_args(NLMPROC_CANCEL_MSG, 3, buf, n, a), 0);
	assert_false(a->block);
	/* SHARE: mode/access in range */
	{
		struct xdr_enc e;
		xdr_enc_init(&e, buf, sizeof(buf));
		xdr_put_opaque(&e, "k", 1);
		xdr_put_string(&e, "host");
		xdr_put_opaque(&e, "fhfhfhfh", 8);
		xdr_put_opaque(&e, "oh", 2);
		xdr_put_u32(&e, NLM_FSM_DW);
		xdr_put_u32(&e, NLM_FSA_R);
		xdr_put_u32(&e, 1);
		n = xdr_enc_len(&e);
		assert_int_equal(nlm_decode_args(NLMPROC_SHARE, 4, buf, n, a), 0);
		assert_true(a->mode == NLM_FSM_DW && a->access == NLM_FSA_R && a->reclaim);
		xdr_put_be32(buf + n - 12, 4);
		assert_int_equal(nlm_decode_args(NLMPROC_SHARE, 4, buf, n, a), -1);
		/* FREE_ALL */
		xdr_enc_init(&e, buf, sizeof(buf));
		xdr_put_string(&e, "gone.example.com");
		xdr_put_u32(&e, 5);
		assert_int_equal(nlm_decode_args(NLMPROC_FREE_ALL, 4, buf, xdr_enc_len(&e), a), 0);
		assert_string_equal(a->caller, "gone.example.com");
		assert_int_equal(nlm_decode_args(NLMPROC_FREE_ALL, 4, buf, xdr_enc_len(&e) - 1, a), -1);
	}
	assert_int_equal(nlm_decode_args(99, 4, buf, n, a), -1);
	assert_int_equal(nlm_decode_args(NLMPROC_TEST, 4, NULL, 0, a), -1);
	free(a);
}

/* ================================================================ NSM files */

static char g_state_dir[300];

static void read_file(const char *name, char *buf, size_t cap)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", g_state_dir, name);
	buf[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void write_text(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", g_state_dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void rm_state(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/nsm-state", g_state_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/nsm-clients", g_state_dir);
	unlink(path);
	rmdir(g_state_dir);
}

static void test_nsm_state(void **state)
{
	char buf[4096];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	(void)state;

	snprintf(g_state_dir, sizeof(g_state_dir), "/tmp/rs-nlm-test.XXXXXX");
	assert_non_null(mkdtemp(g_state_dir));
	/* first start: state 1, no clients, no grace */
	nlm_set_grace(20);
	assert_int_equal(nlm_init(g_state_dir, 1), 0);
	assert_int_equal(nsm_state(), 1);
	assert_false(nlm_in_grace());
	read_file("nsm-state", buf, sizeof(buf));
	assert_string_equal(buf, "1\n");
	/* a client takes a lock: remembered on disk (callback thread) */
	inet_pton(AF_INET, "192.0.2.7", &sa.sin_addr);
	nsm_monitor("client7", (struct sockaddr *)&sa);
	nsm_monitor("client7", (struct sockaddr *)&sa);
	nsm_monitor("bad name", (struct sockaddr *)&sa);
	assert_int_equal(nsm_monitored_count(), 1);
	for (int i = 0; i < 200; i++) {
		read_file("nsm-clients", buf, sizeof(buf));
		if (buf[0])
			break;
		usleep(10000);
	}
	assert_string_equal(buf, "client7 192.0.2.7\n");
	nlm_shutdown();
	/* restart: state 3, the client is to be notified, grace period on
	 * (the notification to 192.0.2.7 is not awaited here) */
	assert_int_equal(nlm_init(g_state_dir, 1), 0);
	assert_int_equal(nsm_state(), 3);
	assert_true(nlm_in_grace());
	nlm_shutdown();
	/* an even (down) state moves to the next odd one; garbage restarts */
	write_text("nsm-state", "10\n");
	write_text("nsm-clients", "\n# nonsense\nonlyname\n");
	assert_int_equal(nlm_init(g_state_dir, 1), 0);
	assert_int_equal(nsm_state(), 11);
	assert_false(nlm_in_grace());
	nlm_shutdown();
	write_text("nsm-state", "-5 garbage\n");
	assert_int_equal(nlm_init(g_state_dir, 1), 0);
	assert_int_equal(nsm_state(), 1);
	nlm_shutdown();
	nlm_set_grace(45);
	rm_state();
}

/* ================================================================ on a reactor */

static struct reactor g_r;
static pthread_t g_thr;
static int g_fds[2];
static uint16_t g_port;
static char g_dir[256];
static struct nfs_fh g_fh, g_fh2;

static void *reactor_thread(void *arg)
{
	(void)arg;
	reactor_run(&g_r);
	return NULL;
}

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

static void start(void *arg)
{
	(void)arg;
	assert_int_equal(rpc_reactor_listen_tcp(&g_r, g_fds[0]), 0);
	assert_int_equal(rpc_reactor_serve_udp(&g_r, g_fds[1]), 0);
}

static void stop(void *arg)
{
	(void)arg;
	rpc_reactor_shutdown(&g_r);
}

static void idle(void *arg)
{
	*(int *)arg = rpc_reactor_idle(&g_r);
}

static int setup(void **state)
{
	uint8_t key[32] = { 7, 7, 7 };
	char err[256], line[512], path[4096], fpath[600];
	struct export_client *c;
	struct nfs_export *e;
	int n, fd;
	(void)state;

	rpc_register(&nlm4_program);
	rpc_register(&nsm_program);
	rpc_register(&portmap_program);
	fh_secret_set(key);
	portmap_clear();
	nfs_exports_clear();
	snprintf(g_dir, sizeof(g_dir), "/tmp/rs-nlm-exp.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	snprintf(g_state_dir, sizeof(g_state_dir), "%s/state", g_dir);
	mkdir(g_state_dir, 0700);
	snprintf(fpath, sizeof(fpath), "%s/file", g_dir);
	fd = open(fpath, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(fpath, sizeof(fpath), "%s/file2", g_dir);
	fd = open(fpath, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(line, sizeof(line), "%s 127.0.0.1(rw,insecure)", g_dir);
	assert_int_equal(exports_parse_line(line, path, sizeof(path), &c, &n, err, sizeof(err)), 0);
	assert_int_equal(nfs_export_add(path, c, n, err, sizeof(err)), 0);
	free(c);
	e = nfs_export_get_by_path(path);
	assert_non_null(e);
	assert_int_equal(fh_make(e->id, e->root_fd, "file", &g_fh), 0);
	assert_int_equal(fh_make(e->id, e->root_fd, "file2", &g_fh2), 0);
	nfs_export_put(e);

	assert_int_equal(reactor_init(&g_r, 0, 256), 0);
	g_fds[0] = rc_listen_any(SOCK_STREAM, &g_port);
	g_fds[1] = rc_bind_port(SOCK_DGRAM, g_port);
	assert_true(g_fds[0] >= 0 && g_fds[1] >= 0);
	nlm_set_grace(0);
	/* our own portmapper serves as the "client's" one (loopback) */
	assert_int_equal(nlm_init(g_state_dir, g_port), 0);
	nlm_set_grant_hook(NULL);
	assert_int_equal(pthread_create(&g_thr, NULL, reactor_thread, NULL), 0);
	on_reactor(start, NULL);
	return 0;
}

static int teardown(void **state)
{
	int ok = 0;
	char p[600];
	(void)state;

	on_reactor(stop, NULL);
	for (int i = 0; i < 500 && !ok; i++) {
		on_reactor(idle, &ok);
		usleep(2000);
	}
	assert_true(ok);
	reactor_stop(&g_r);
	pthread_join(g_thr, NULL);
	reactor_fini(&g_r);
	close(g_fds[0]);
	close(g_fds[1]);
	nlm_shutdown();
	nlm_set_grace(45);
	nfs_exports_clear();
	portmap_clear();
	snprintf(p, sizeof(p), "%s/file", g_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/file2", g_dir);
	unlink(p);
	rm_state();
	rmdir(g_dir);
	return 0;
}

/* One call over a fresh TCP connection; returns accept_stat and copies the
 * results. */
static int call(uint32_t prog, uint32_t vers, uint32_t proc, const void *args, size_t alen, uint8_t *res,
		uint32_t *reslen)
{
	static uint32_t xid = 100;
	uint8_t msg[8192], *rep;
	const uint8_t *r = NULL;
	uint32_t rl = 0, len;
	struct rc_cred cred = { .flavor = 1, .machine = "testclient" };
	int fd = rc_connect_tcp(g_port), st;
	size_t n;

	assert_true(fd >= 0);
	n = rc_build_call(msg, sizeof(msg), ++xid, prog, vers, proc, &cred, args, alen);
	assert_true(n > 0);
	assert_int_equal(rc_send_record(fd, msg, n, 1), 0);
	rep = rc_recv_record(fd, &len, 5000);
	close(fd);
	assert_non_null(rep);
	st = rc_parse_reply(rep, len, xid, &r, &rl);
	if (res && reslen) {
		if (rl > *reslen)
			rl = *reslen;
		memcpy(res, r, rl);
		*reslen = rl;
	}
	free(rep);
	return st;
}

static size_t args_lock(uint8_t *buf, uint32_t proc, const struct nfs_fh *fh, const char *caller, int32_t svid,
			bool block, bool excl, uint64_t off, uint64_t len, bool reclaim)
{
	struct xdr_enc e;
	char oh[64];

	snprintf(oh, sizeof(oh), "%d@%s", svid, caller);
	xdr_enc_init(&e, buf, 4096);
	xdr_put_opaque(&e, "ck01", 4);
	if (proc == NLMPROC_LOCK || proc == NLMPROC_CANCEL || proc == NLMPROC_NM_LOCK)
		xdr_put_u32(&e, block);
	if (proc != NLMPROC_UNLOCK)
		xdr_put_u32(&e, excl);
	xdr_put_string(&e, caller);
	xdr_put_opaque(&e, fh->data, fh->len);
	xdr_put_opaque(&e, oh, (uint32_t)strlen(oh));
	xdr_put_u32(&e, (uint32_t)svid);
	xdr_put_u64(&e, off);
	xdr_put_u64(&e, len);
	if (proc == NLMPROC_LOCK || proc == NLMPROC_NM_LOCK) {
		xdr_put_u32(&e, reclaim);
		xdr_put_u32(&e, 1);
	}
	return xdr_enc_len(&e);
}

/* nlm4_res / nlm4_testres: cookie then stat. */
static uint32_t nlm_call(uint32_t proc, const struct nfs_fh *fh, const char *caller, int32_t svid, bool block,
			 bool excl, uint64_t off, uint64_t len, bool reclaim, uint8_t *holder, uint32_t *hl)
{
	uint8_t args[4096], res[4096];
	uint32_t rl = sizeof(res), cl, st;
	size_t n = args_lock(args, proc, fh, caller, svid, block, excl, off, len, reclaim);
	struct xdr_dec d;

	assert_int_equal(call(NLM_PROG, 4, proc, args, n, res, &rl), 0);
	xdr_dec_init(&d, res, rl);
	xdr_get_opaque(&d, &cl, 1024);
	assert_int_equal(cl, 4);
	assert_memory_equal(res + 4, "ck01", 4);
	st = xdr_get_u32(&d);
	assert_false(d.err);
	if (holder && hl) {
		*hl = (uint32_t)xdr_dec_left(&d);
		memcpy(holder, d.p, *hl);
	}
	return st;
}

static void test_rpc_lock(void **state)
{
	uint8_t h[4096], res[64];
	uint32_t hl, rl;
	struct nfs_fh bad = g_fh;
	(void)state;

	/* NULL */
	rl = sizeof(res);
	assert_int_equal(call(NLM_PROG, 4, NLMPROC_NULL, NULL, 0, res, &rl), 0);
	assert_int_equal(rl, 0);
	assert_int_equal(nlm_call(NLMPROC_TEST, &g_fh, "hostA", 1, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostA", 1, false, true, 0, 100, false, NULL, NULL),
			 NLM4_GRANTED);
	/* another owner: TEST answers the holder */
	assert_int_equal(nlm_call(NLMPROC_TEST, &g_fh, "hostB", 2, false, false, 50, 1, false, h, &hl),
			 NLM4_DENIED);
	{
		struct xdr_dec d;
		uint32_t ohl;
		const uint8_t *oh;
		xdr_dec_init(&d, h, hl);
		assert_int_equal(xdr_get_u32(&d), 1);           /* exclusive */
		assert_int_equal(xdr_get_u32(&d), 1);           /* svid */
		oh = xdr_get_opaque(&d, &ohl, 1024);
		assert_int_equal(ohl, 7);
		assert_memory_equal(oh, "1@hostA", 7);
		assert_true(xdr_get_u64(&d) == 0);
		assert_true(xdr_get_u64(&d) == 100);
		assert_false(d.err);
	}
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostB", 2, false, false, 50, 1, false, NULL, NULL),
			 NLM4_DENIED);
	/* same file through version 1 (32-bit offsets) is the same table */
	{
		uint8_t args[4096], r1[256];
		struct xdr_enc e;
		uint32_t l1 = sizeof(r1);
		xdr_enc_init(&e, args, sizeof(args));
		xdr_put_opaque(&e, "c", 1);
		xdr_put_u32(&e, 0);
		xdr_put_string(&e, "hostB");
		xdr_put_opaque(&e, g_fh.data, g_fh.len);
		xdr_put_opaque(&e, "x", 1);
		xdr_put_u32(&e, 2);
		xdr_put_u32(&e, 10);
		xdr_put_u32(&e, 1);
		assert_int_equal(call(NLM_PROG, 1, NLMPROC_TEST, args, xdr_enc_len(&e), r1, &l1), 0);
		assert_int_equal(xdr_be32(r1 + 8), NLM4_DENIED);
		/* holder: exclusive, svid, oh, offset 0, len 100 (32-bit) */
		assert_int_equal(l1, 8 + 4 + 4 + 4 + 12 + 4 + 4);
		assert_int_equal(xdr_be32(r1 + l1 - 4), 100);
		/* v1 has no SHARE */
		assert_int_equal(call(NLM_PROG, 1, NLMPROC_SHARE, args, xdr_enc_len(&e), r1, &l1), RPC_PROC_UNAVAIL);
	}
	/* the other file is free */
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh2, "hostB", 2, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	/* a forged handle: STALE_FH */
	bad.data[bad.len - 1] ^= 1;
	assert_int_equal(nlm_call(NLMPROC_LOCK, &bad, "hostB", 2, false, true, 0, 0, false, NULL, NULL),
			 NLM4_STALE_FH);
	/* UNLOCK then B gets it */
	assert_int_equal(nlm_call(NLMPROC_UNLOCK, &g_fh, "hostA", 1, false, false, 0, 100, false, NULL, NULL),
			 NLM4_GRANTED);
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostB", 2, false, false, 50, 1, false, NULL, NULL),
			 NLM4_GRANTED);
	/* NM_LOCK: never blocks */
	assert_int_equal(nlm_call(NLMPROC_NM_LOCK, &g_fh, "hostC", 3, true, true, 0, 0, false, NULL, NULL),
			 NLM4_DENIED);
	/* GRANTED to us: we wait for nothing */
	assert_int_equal(nlm_call(NLMPROC_GRANTED, &g_fh, "hostC", 3, false, true, 0, 0, false, NULL, NULL),
			 NLM4_DENIED);
	/* grace period: new locks and TEST refused, reclaims accepted, UNLOCK fine */
	nlm_set_grace_now(30);
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostC", 3, false, true, 500, 1, false, NULL, NULL),
			 NLM4_DENIED_GRACE_PERIOD);
	assert_int_equal(nlm_call(NLMPROC_TEST, &g_fh, "hostC", 3, false, true, 500, 1, false, NULL, NULL),
			 NLM4_DENIED_GRACE_PERIOD);
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostC", 3, false, true, 500, 1, true, NULL, NULL),
			 NLM4_GRANTED);
	assert_int_equal(nlm_call(NLMPROC_UNLOCK, &g_fh, "hostC", 3, false, true, 500, 1, false, NULL, NULL),
			 NLM4_GRANTED);
	nlm_set_grace_now(0);
	/* garbage arguments */
	rl = sizeof(res);
	assert_int_equal(call(NLM_PROG, 4, NLMPROC_LOCK, "\0\0\0\x09", 4, res, &rl), RPC_GARBAGE_ARGS);
	assert_int_equal(call(NLM_PROG, 4, 17, NULL, 0, res, &rl), RPC_PROC_UNAVAIL);
	/* _RES procedures are accepted and ignored */
	rl = sizeof(res);
	assert_int_equal(call(NLM_PROG, 4, NLMPROC_LOCK_RES, "\0\0\0\0\0\0\0\0", 8, res, &rl), 0);
	/* FREE_ALL(hostB) */
	{
		uint8_t args[64];
		struct xdr_enc e;
		int nl;
		xdr_enc_init(&e, args, sizeof(args));
		xdr_put_string(&e, "hostB");
		xdr_put_u32(&e, 2);
		rl = sizeof(res);
		assert_int_equal(call(NLM_PROG, 4, NLMPROC_FREE_ALL, args, xdr_enc_len(&e), res, &rl), 0);
		nlm_tab_counts(&nl, NULL, NULL);
		assert_int_equal(nl, 0);
	}
	/* the control plane sees and breaks locks */
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostD", 4, false, true, 0, 10, false, NULL, NULL),
			 NLM4_GRANTED);
	{
		char *buf = NULL, err[256], fpath[600];
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);
		nlm_show_locks(out, true);
		fclose(out);
		snprintf(fpath, sizeof(fpath), "\"path\":\"%s/file\"", g_dir);
		assert_non_null(strstr(buf, fpath));
		assert_non_null(strstr(buf, "\"client\":\"hostD\""));
		assert_non_null(strstr(buf, "\"type\":\"write\",\"start\":0,\"end\":9"));
		free(buf);
		assert_int_equal(nlm_break_locks("nobody", NULL, err, sizeof(err)), -1);
		snprintf(fpath, sizeof(fpath), "%s/file2", g_dir);
		assert_int_equal(nlm_break_locks(NULL, fpath, err, sizeof(err)), -1);
		snprintf(fpath, sizeof(fpath), "%s/file", g_dir);
		assert_int_equal(nlm_break_locks("127.0.0.1", fpath, err, sizeof(err)), 1);
	}
	assert_int_equal(nlm_call(NLMPROC_TEST, &g_fh, "hostE", 5, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
}

static void test_rpc_share_notify(void **state)
{
	uint8_t args[4096], res[256];
	uint32_t rl;
	struct xdr_enc e;
	int nl, ns;
	(void)state;

	/* SHARE: access rw, deny w */
	xdr_enc_init(&e, args, sizeof(args));
	xdr_put_opaque(&e, "s1", 2);
	xdr_put_string(&e, "hostS");
	xdr_put_opaque(&e, g_fh.data, g_fh.len);
	xdr_put_opaque(&e, "ohS", 3);
	xdr_put_u32(&e, NLM_FSM_DW);
	xdr_put_u32(&e, NLM_FSA_RW);
	xdr_put_u32(&e, 0);
	rl = sizeof(res);
	assert_int_equal(call(NLM_PROG, 4, NLMPROC_SHARE, args, xdr_enc_len(&e), res, &rl), 0);
	assert_int_equal(rl, 8 + 4 + 4);
	assert_int_equal(xdr_be32(res + 8), NLM4_GRANTED);
	/* another owner wanting to write: denied */
	xdr_enc_init(&e, args, sizeof(args));
	xdr_put_opaque(&e, "s2", 2);
	xdr_put_string(&e, "hostT");
	xdr_put_opaque(&e, g_fh.data, g_fh.len);
	xdr_put_opaque(&e, "ohT", 3);
	xdr_put_u32(&e, NLM_FSM_DN);
	xdr_put_u32(&e, NLM_FSA_W);
	xdr_put_u32(&e, 0);
	rl = sizeof(res);
	assert_int_equal(call(NLM_PROG, 4, NLMPROC_SHARE, args, xdr_enc_len(&e), res, &rl), 0);
	assert_int_equal(xdr_be32(res + 8), NLM4_DENIED);
	/* and a lock of hostS */
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostS", 8, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	/* NSM: STAT answers our state */
	xdr_enc_init(&e, args, sizeof(args));
	xdr_put_string(&e, "hostS");
	rl = sizeof(res);
	assert_int_equal(call(NSM_PROG, 1, SM_STAT, args, xdr_enc_len(&e), res, &rl), 0);
	assert_int_equal(rl, 8);
	assert_int_equal(xdr_be32(res), 0);
	assert_int_equal((int32_t)xdr_be32(res + 4), nsm_state());
	assert_true(nsm_state() % 2 == 1);
	/* SM_NOTIFY about ourselves is ignored */
	xdr_enc_init(&e, args, sizeof(args));
	xdr_put_string(&e, nlm_hostname());
	xdr_put_u32(&e, 9);
	rl = sizeof(res);
	assert_int_equal(call(NSM_PROG, 1, SM_NOTIFY, args, xdr_enc_len(&e), res, &rl), 0);
	nlm_tab_counts(&nl, NULL, &ns);
	assert_true(nl == 1 && ns == 1);
	/* SM_NOTIFY: hostS rebooted, its lock and share are gone */
	xdr_enc_init(&e, args, sizeof(args));
	xdr_put_string(&e, "hostS");
	xdr_put_u32(&e, 9);
	rl = sizeof(res);
	assert_int_equal(call(NSM_PROG, 1, SM_NOTIFY, args, xdr_enc_len(&e), res, &rl), 0);
	nlm_tab_counts(&nl, NULL, &ns);
	assert_true(nl == 0 && ns == 0);
	/* garbage */
	rl = sizeof(res);
	assert_int_equal(call(NSM_PROG, 1, SM_NOTIFY, "\0\0\0\x10", 4, res, &rl), RPC_GARBAGE_ARGS);
	assert_int_equal(call(NSM_PROG, 1, 9, NULL, 0, res, &rl), RPC_PROC_UNAVAIL);
	/* SM_MON: accepted */
	xdr_enc_init(&e, args, sizeof(args));
	xdr_put_string(&e, "peer");
	xdr_put_string(&e, "me");
	xdr_put_u32(&e, 100021);
	xdr_put_u32(&e, 4);
	xdr_put_u32(&e, 16);
	for (int i = 0; i < 4; i++)
		xdr_put_u32(&e, 0);
	rl = sizeof(res);
	assert_int_equal(call(NSM_PROG, 1, SM_MON, args, xdr_enc_len(&e), res, &rl), 0);
	assert_int_equal(xdr_be32(res), 0);
	rl = sizeof(res);
	assert_int_equal(call(NSM_PROG, 1, SM_MON, args, xdr_enc_len(&e) - 4, res, &rl), RPC_GARBAGE_ARGS);
}

/* A tiny NLM "client" lock manager: answers one NLM_GRANTED over TCP. */
struct cb_server {
	int fd;
	uint16_t port;
	atomic_int got;
	uint32_t svid;
	uint64_t off, len;
	uint32_t answer;
};

static void *cb_server_thread(void *arg)
{
	struct cb_server *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	uint8_t *rec, rep[256];
	uint32_t len;
	struct xdr_dec d;
	struct xdr_enc e;
	int c;

	if (poll(&pfd, 1, 10000) <= 0)
		return NULL;
	c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	rec = rc_recv_record(c, &len, 5000);
	if (rec) {
		uint32_t xid, vlen, cl, ohl;
		const uint8_t *cookie;
		char caller[1100];
		xdr_dec_init(&d, rec, len);
		xid = xdr_get_u32(&d);
		xdr_get_u32(&d);                          /* CALL */
		xdr_get_u32(&d);                          /* rpcvers */
		if (xdr_get_u32(&d) == NLM_PROG && xdr_get_u32(&d) == 4 &&
		    xdr_get_u32(&d) == NLMPROC_GRANTED) {
			xdr_get_u32(&d);
			xdr_get_opaque(&d, &vlen, 400);       /* cred */
			xdr_get_u32(&d);
			xdr_get_opaque(&d, &vlen, 400);       /* verf */
			cookie = xdr_get_opaque(&d, &cl, 1024);
			xdr_get_u32(&d);                      /* exclusive */
			xdr_get_string(&d, caller, sizeof(caller), 1024);
			xdr_get_opaque(&d, &vlen, 1024);      /* fh */
			xdr_get_opaque(&d, &ohl, 1024);       /* oh */
			s->svid = xdr_get_u32(&d);
			s->off = xdr_get_u64(&d);
			s->len = xdr_get_u64(&d);
			if (!d.err) {
				xdr_enc_init(&e, rep + 4, sizeof(rep) - 4);
				xdr_put_u32(&e, xid);
				xdr_put_u32(&e, 1);
				xdr_put_u32(&e, 0);
				xdr_put_u32(&e, 0);
				xdr_put_u32(&e, 0);
				xdr_put_u32(&e, 0);
				xdr_put_opaque(&e, cookie, cl);
				xdr_put_u32(&e, s->answer);
				xdr_put_be32(rep, 0x80000000u | (uint32_t)xdr_enc_len(&e));
				rc_write_all(c, rep, 4 + xdr_enc_len(&e));
				atomic_store(&s->got, 1);
			}
		}
		free(rec);
	}
	close(c);
	return NULL;
}

static void run_granted(uint32_t answer)
{
	struct cb_server s = { .answer = answer };
	pthread_t t;
	int nl = -1;

	s.fd = rc_listen_any(SOCK_STREAM, &s.port);
	assert_true(s.fd >= 0);
	portmap_unset(NLM_PROG, 4, NULL);
	assert_int_equal(portmap_set(NLM_PROG, 4, "tcp", s.port, NULL, "test"), 0);
	assert_int_equal(pthread_create(&t, NULL, cb_server_thread, &s), 0);

	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostA", 1, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostB", 77, true, true, 10, 20, false, NULL, NULL),
			 NLM4_BLOCKED);
	assert_int_equal(nlm_call(NLMPROC_UNLOCK, &g_fh, "hostA", 1, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(atomic_load(&s.got), 1);
	assert_int_equal(s.svid, 77);
	assert_true(s.off == 10 && s.len == 20);
	/* accepted: B holds it; refused: released again */
	for (int i = 0; i < 200; i++) {
		nlm_tab_counts(&nl, NULL, NULL);
		if (nl == (answer == NLM4_GRANTED ? 1 : 0))
			break;
		usleep(10000);
	}
	assert_int_equal(nl, answer == NLM4_GRANTED ? 1 : 0);
	assert_int_equal(nlm_call(NLMPROC_TEST, &g_fh, "hostA", 1, false, true, 15, 1, false, NULL, NULL),
			 answer == NLM4_GRANTED ? NLM4_DENIED : NLM4_GRANTED);
	nlm_tab_clear();
}

static void test_rpc_granted_callback(void **state)
{
	(void)state;
	run_granted(NLM4_GRANTED);
	run_granted(NLM4_DENIED);
}

/* A client that uses the asynchronous procedures gets its answer as a call
 * of its *_RES procedure (XNFS 10.3.6). */
struct res_server {
	int fd;
	uint16_t port;
	uint32_t proc, stat, cookielen;
	uint8_t cookie[16];
	atomic_int got;
};

static void *res_server_thread(void *arg)
{
	struct res_server *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	uint8_t *rec, rep[64];
	uint32_t len, xid, vlen;
	struct xdr_dec d;
	const uint8_t *ck;
	int c;

	if (poll(&pfd, 1, 10000) <= 0)
		return NULL;
	c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	rec = rc_recv_record(c, &len, 5000);
	if (rec) {
		xdr_dec_init(&d, rec, len);
		xid = xdr_get_u32(&d);
		xdr_get_u32(&d);
		xdr_get_u32(&d);
		xdr_get_u32(&d);
		xdr_get_u32(&d);
		s->proc = xdr_get_u32(&d);
		xdr_get_u32(&d);
		xdr_get_opaque(&d, &vlen, 400);
		xdr_get_u32(&d);
		xdr_get_opaque(&d, &vlen, 400);
		ck = xdr_get_opaque(&d, &s->cookielen, 16);
		s->stat = xdr_get_u32(&d);
		if (!d.err) {
			memcpy(s->cookie, ck, s->cookielen);
			xdr_put_be32(rep, 0x80000000u | 24);
			xdr_put_be32(rep + 4, xid);
			xdr_put_be32(rep + 8, 1);
			memset(rep + 12, 0, 16);
			rc_write_all(c, rep, 28);
			atomic_store(&s->got, 1);
		}
		free(rec);
	}
	close(c);
	return NULL;
}

static void msg_case(uint32_t msg_proc, const char *caller, int32_t svid, uint32_t want_proc, uint32_t want_stat)
{
	struct res_server s = { .proc = 0 };
	uint8_t args[4096], res[64];
	uint32_t rl = sizeof(res);
	pthread_t t;
	size_t n;

	s.fd = rc_listen_any(SOCK_STREAM, &s.port);
	assert_true(s.fd >= 0);
	portmap_unset(NLM_PROG, 4, NULL);
	assert_int_equal(portmap_set(NLM_PROG, 4, "tcp", s.port, NULL, "test"), 0);
	assert_int_equal(pthread_create(&t, NULL, res_server_thread, &s), 0);
	n = args_lock(args, msg_proc - 5, &g_fh, caller, svid, false, true, 0, 0, false);
	/* the call itself is answered with void */
	assert_int_equal(call(NLM_PROG, 4, msg_proc, args, n, res, &rl), 0);
	assert_int_equal(rl, 0);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(atomic_load(&s.got), 1);
	assert_int_equal(s.proc, want_proc);
	assert_int_equal(s.stat, want_stat);
	assert_int_equal(s.cookielen, 4);
	assert_memory_equal(s.cookie, "ck01", 4);
}

static void test_rpc_msg(void **state)
{
	(void)state;
	msg_case(NLMPROC_LOCK_MSG, "hostM", 1, NLMPROC_LOCK_RES, NLM4_GRANTED);
	msg_case(NLMPROC_TEST_MSG, "hostN", 2, NLMPROC_TEST_RES, NLM4_DENIED);
	msg_case(NLMPROC_LOCK_MSG, "hostN", 2, NLMPROC_LOCK_RES, NLM4_DENIED);
	msg_case(NLMPROC_UNLOCK_MSG, "hostM", 1, NLMPROC_UNLOCK_RES, NLM4_GRANTED);
	msg_case(NLMPROC_LOCK_MSG, "hostN", 2, NLMPROC_LOCK_RES, NLM4_GRANTED);
	nlm_tab_clear();
}

static void test_rpc_cancel(void **state)
{
	int nb;
	(void)state;

	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostA", 1, false, true, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	assert_int_equal(nlm_call(NLMPROC_LOCK, &g_fh, "hostB", 2, true, false, 0, 0, false, NULL, NULL),
			 NLM4_BLOCKED);
	nlm_tab_counts(NULL, &nb, NULL);
	assert_int_equal(nb, 1);
	assert_int_equal(nlm_call(NLMPROC_CANCEL, &g_fh, "hostB", 2, true, false, 0, 0, false, NULL, NULL),
			 NLM4_GRANTED);
	assert_int_equal(nlm_call(NLMPROC_CANCEL, &g_fh, "hostB", 2, true, false, 0, 0, false, NULL, NULL),
			 NLM4_DENIED);
	nlm_tab_counts(NULL, &nb, NULL);
	assert_int_equal(nb, 0);
	nlm_tab_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range),
		cmocka_unit_test_setup_teardown(test_conflicts, tab_setup, tab_teardown),
		cmocka_unit_test_setup_teardown(test_split_merge, tab_setup, tab_teardown),
		cmocka_unit_test_setup_teardown(test_owners, tab_setup, tab_teardown),
		cmocka_unit_test_setup_teardown(test_blocking_order, tab_setup, tab_teardown),
		cmocka_unit_test_setup_teardown(test_cancel, tab_setup, tab_teardown),
		cmocka_unit_test_setup_teardown(test_free_all, tab_setup, tab_teardown),
		cmocka_unit_test_setup_teardown(test_shares, tab_setup, tab_teardown),
		cmocka_unit_test(test_grace_flag),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_nsm_state),
		cmocka_unit_test_setup_teardown(test_rpc_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpc_share_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpc_granted_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpc_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpc_msg, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
