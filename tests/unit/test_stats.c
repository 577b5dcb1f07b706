/* test_stats.c - I/O statistics (core/stats.c): the log-linear histogram
 * against known distributions, per-thread aggregation, the in-flight table,
 * the raw snapshot format (round trip and hostile input), interval diffs,
 * the text / JSON / Prometheus renderers, the NFS hook, and the SCSI core's
 * accounting (target/scsi.c) on a null-backed LU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/stats.h"
#include "target/scsi.h"

/* ---- a minimal JSON syntax checker (RFC 8259), enough for the renderer ---- */

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p)
{
	if (*p != '"')
		return NULL;
	for (p++; *p && *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return *p == '"' ? p + 1 : NULL;
}

static const char *js_number(const char *p)
{
	const char *s = p;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';
		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = js_string(js_ws(p));
				if (!p)
					return NULL;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == ',') {
				p++;
				continue;
			}
			return *p == close ? p + 1 : NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (!strncmp(p, "null", 4))
		return p + 4;
	return js_number(p);
}

static bool json_valid(const char *s)
{
	const char *p = js_value(s, 0);
	return p && *js_ws(p) == '\0';
}

/* ---- helpers ---- */

static char *render(void (*fn)(FILE *, const struct stats_snap *, double), const struct stats_snap *s,
		    double interval)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, s, interval);
	fclose(f);
	return buf;
}

static void render_prom_adapter(FILE *f, const struct stats_snap *s, double interval)
{
	(void)interval;
	stats_render_prometheus(f, s);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t xorshift(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- histogram ---- */

static void test_hist_layout(void **state)
{
	(void)state;
	/* buckets tile [0, 2^36) with no gap or overlap */
	assert_int_equal(stats_hist_low(0), 0);
	for (unsigned i = 0; i + 1 < STATS_HIST_BUCKETS; i++) {
		assert_true(stats_hist_low(i) <= stats_hist_high(i));
		assert_int_equal(stats_hist_high(i) + 1, stats_hist_low(i + 1));
		assert_int_equal(stats_hist_index(stats_hist_low(i)), i);
		assert_int_equal(stats_hist_index(stats_hist_high(i)), i);
	}
	assert_int_equal(stats_hist_high(STATS_HIST_BUCKETS - 1), (1ull << STATS_HIST_MAX_EXP) - 1);
	/* exact below 32, relative width <= 1/16 above */
	for (uint64_t v = 0; v < 32; v++)
		assert_int_equal(stats_hist_low(stats_hist_index(v)), v);
	for (int n = 0; n < 200000; n++) {
		uint64_t v = xorshift() >> (xorshift() % 64);
		unsigned i = stats_hist_index(v);
		assert_true(i < STATS_HIST_BUCKETS);
		if (v >= (1ull << STATS_HIST_MAX_EXP)) {
			assert_int_equal(i, STATS_HIST_BUCKETS - 1);
			continue;
		}
		assert_true(stats_hist_low(i) <= v && v <= stats_hist_high(i));
		if (v >= 32)
			assert_true((stats_hist_high(i) - stats_hist_low(i) + 1) * 16 <= stats_hist_low(i));
	}
	assert_int_equal(stats_hist_index(UINT64_MAX), STATS_HIST_BUCKETS - 1);
}

/* Percentiles against the exact order statistics of the same samples:
 * the reported value is the top of the sample's bucket, so it is never
 * below the true value and at most 1/16 above it. */
static void check_percentiles(uint64_t *vals, size_t n)
{
	static uint64_t hist[STATS_HIST_BUCKETS];
	static const double ps[] = { 1, 10, 50, 90, 99, 99.9, 100 };

	memset(hist, 0, sizeof(hist));
	for (size_t i = 0; i < n; i++)
		hist[stats_hist_index(vals[i])]++;
	qsort(vals, n, sizeof(*vals), cmp_u64);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		double r = ps[k] / 100.0 * (double)n;
		size_t rank = (size_t)r;
		if ((double)rank < r)
			rank++;
		uint64_t exact = vals[(rank ? rank : 1) - 1];
		uint64_t got = stats_hist_percentile(hist, ps[k]);
		assert_true(got >= exact);
		assert_true((double)got <= (double)exact * (1.0 + 1.0 / 16) + 1);
	}
	assert_int_equal(stats_hist_max(hist), stats_hist_high(stats_hist_index(vals[n - 1])));
}

static void test_hist_percentiles(void **state)
{
	enum { N = 100000 };
	uint64_t *v = malloc(N * sizeof(*v));
	uint64_t hist[STATS_HIST_BUCKETS] = { 0 };
	(void)state;

	assert_non_null(v);
	/* uniform 1..N: p50 = 50000, p99 = 99000, p99.9 = 99900 */
	for (int i = 0; i < N; i++)
		v[i] = (uint64_t)i + 1;
	check_percentiles(v, N);
	for (int i = 0; i < N; i++)
		hist[stats_hist_index((uint64_t)i + 1)]++;
	assert_true(llabs((long long)stats_hist_percentile(hist, 50) - 50000) <= 50000 / 16);
	assert_true(llabs((long long)stats_hist_percentile(hist, 99) - 99000) <= 99000 / 16);
	assert_true(llabs((long long)stats_hist_percentile(hist, 99.9) - 99900) <= 99900 / 16);

	/* Pareto-like long tail from 10 us up (no libm in the test link) */
	for (int i = 0; i < N; i++) {
		double u = ((double)(xorshift() >> 11) + 1) / 9007199254740993.0;
		double x = 10000.0 / u;
		v[i] = x > 1e12 ? 1000000000000ull : (uint64_t)x;
	}
	check_percentiles(v, N);

	/* bimodal: 90% at ~10 us, 10% at ~5 ms */
	for (int i = 0; i < N; i++)
		v[i] = (i % 10 == 9) ? 5000000 + xorshift() % 100000 : 10000 + xorshift() % 1000;
	check_percentiles(v, N);

	/* a single sample; an empty histogram */
	v[0] = 12345;
	check_percentiles(v, 1);
	memset(hist, 0, sizeof(hist));
	assert_int_equal(stats_hist_percentile(hist, 50), 0);
	assert_int_equal(stats_hist_max(hist), 0);
	free(v);
}

/* ---- per-thread counters ---- */

struct rec_arg {
	struct stats_obj *o;
	int n;
};

static void *rec_thread(void *p)
{
	struct rec_arg *a = p;

	for (int i = 0; i < a->n; i++) {
		stats_record_start(a->o);
		stats_record(a->o, (enum stats_class)(i % 3), 4096, 1000 + (uint64_t)(i % 1000),
			     i % 100 == 0 ? STATS_ST_CHECK_CONDITION : -1, 5);
	}
	return NULL;
}

static void test_aggregation(void **state)
{
	enum { NT = 4, N = 100000, NSHORT = 80 };
	static struct stats_obj o;
	struct stats_counters c;
	pthread_t th[NT];
	struct rec_arg a = { &o, N }, a1 = { &o, 10 };
	uint64_t total_hist = 0;
	(void)state;

	stats_obj_init(&o);
	for (int i = 0; i < NT; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rec_thread, &a), 0);
	/* read while they run: never more than what was started */
	for (int k = 0; k < 50; k++) {
		stats_obj_read(&o, &c);
		assert_true(c.cls[0].ops + c.cls[1].ops + c.cls[2].ops <= (uint64_t)NT * N);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	/* more threads than slots: the excess share the last slot atomically */
	for (int i = 0; i < NSHORT; i++) {
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, rec_thread, &a1), 0);
		pthread_join(t, NULL);
	}
	{
		pthread_t t2[8];
		struct rec_arg a2 = { &o, 20000 };
		for (int i = 0; i < 8; i++)
			assert_int_equal(pthread_create(&t2[i], NULL, rec_thread, &a2), 0);
		for (int i = 0; i < 8; i++)
			pthread_join(t2[i], NULL);
	}
	stats_obj_read(&o, &c);
	uint64_t expect = (uint64_t)NT * N + NSHORT * 10 + 8 * 20000;
	assert_int_equal(c.cls[0].ops + c.cls[1].ops + c.cls[2].ops, expect);
	assert_int_equal(c.started, expect);
	for (int k = 0; k < STATS_NCLASS; k++)
		for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++)
			total_hist += c.cls[k].hist[i];
	assert_int_equal(total_hist, expect);
	/* i % 100 == 0 fails: per thread ceil(n / 100) */
	uint64_t errs = (uint64_t)NT * (N / 100) + NSHORT * 1 + 8 * (20000 / 100);
	assert_int_equal(c.errors, errs);
	assert_int_equal(c.status[STATS_ST_CHECK_CONDITION], errs);
	assert_int_equal(c.sense_key[5], errs);
	assert_int_equal(c.cls[0].bytes + c.cls[1].bytes + c.cls[2].bytes, 4096 * expect);
	stats_obj_fini(&o);
}

static void test_latency_unknown(void **state)
{
	struct stats_obj o;
	struct stats_counters c;
	(void)state;

	stats_obj_init(&o);
	stats_record(&o, STATS_READ, 512, STATS_LAT_UNKNOWN, -1, -1);
	stats_record(&o, STATS_READ, 512, 2000, -1, -1);
	stats_record(&o, STATS_WRITE, 0, 3000, STATS_ST_BUSY, -1);
	stats_record(&o, 7 /* out of range: other */, 0, 1, 99 /* not a status */, -1);
	stats_obj_read(&o, &c);
	assert_int_equal(c.cls[STATS_READ].ops, 2);
	assert_int_equal(c.cls[STATS_READ].lat_sum_ns, 2000);
	assert_int_equal(c.cls[STATS_READ].bytes, 1024);
	assert_int_equal(c.status[STATS_ST_BUSY], 1);
	assert_int_equal(c.errors, 1);
	assert_int_equal(c.cls[STATS_OTHER].ops, 1);
	stats_obj_fini(&o);
}

/* ---- in-flight table ---- */

static void test_inflight(void **state)
{
	enum { N = 20000 };
	static char keys[N];
	uint64_t t0;
	(void)state;

	assert_false(stats_inflight_take(&keys[0], &t0));
	for (int i = 0; i < N; i++)
		stats_inflight_put(&keys[i], (uint64_t)i * 7);
	stats_inflight_put(&keys[5], 12345);     /* the same key again: replaced */
	/* take in a scrambled order (exercises backward-shift deletion) */
	for (int i = 0; i < N; i++) {
		int k = (int)(((uint64_t)i * 7919) % N);
		assert_true(stats_inflight_take(&keys[k], &t0));
		assert_int_equal(t0, k == 5 ? 12345 : (uint64_t)k * 7);
		assert_false(stats_inflight_take(&keys[k], &t0));
	}
	assert_false(stats_inflight_take(NULL, &t0));
	/* steady state: put/take cycles do not grow anything unbounded */
	for (int r = 0; r < 100000; r++) {
		stats_inflight_put(&keys[r % 64], (uint64_t)r);
		assert_true(stats_inflight_take(&keys[r % 64], &t0));
		assert_int_equal(t0, (uint64_t)r);
	}
}

/* ---- snapshots ---- */

static void fill_entry(struct stats_entry *e, uint64_t scale)
{
	for (int k = 0; k < STATS_NCLASS; k++) {
		e->c.cls[k].ops = 100 * scale * (uint64_t)(k + 1);
		e->c.cls[k].bytes = 4096 * e->c.cls[k].ops;
		e->c.cls[k].lat_sum_ns = 50000 * e->c.cls[k].ops;
		e->c.cls[k].hist[stats_hist_index(40000)] = e->c.cls[k].ops - scale;
		e->c.cls[k].hist[stats_hist_index(1000000)] = scale;
	}
	e->c.started = e->c.cls[0].ops + e->c.cls[1].ops + e->c.cls[2].ops + 3;
	e->c.errors = 2 * scale;
	e->c.status[STATS_ST_CHECK_CONDITION] = scale;
	e->c.status[STATS_ST_RESERVATION_CONFLICT] = scale;
	e->c.sense_key[6] = scale;
}

static void make_snap(struct stats_snap *s, uint64_t scale, uint64_t age)
{
	struct stats_target *t;
	struct stats_entry *e;

	stats_snap_init(s);
	s->time_ns = 1000000000ull * age;
	t = stats_snap_add_target(s, 1, "iqn.2026-11.io.ringstor:a", 2);
	assert_non_null(t);
	assert_int_equal(stats_target_add_initiator(t, "iqn.1994-05.com.example:h1"), 0);
	assert_int_equal(stats_target_add_initiator(t, "weird name\twith % \"quotes\""), 0);
	assert_non_null(stats_snap_add_target(s, 2, "iqn.2026-11.io.ringstor:b", 0));
	e = stats_snap_add(s, STATS_KIND_LU);
	e->tid = 1;
	strcpy(e->target, "iqn.2026-11.io.ringstor:a");
	e->lun = 1;
	e->age_ns = age * 1000000000ull;
	fill_entry(e, scale);
	e = stats_snap_add(s, STATS_KIND_LU);
	e->tid = 1;
	strcpy(e->target, "iqn.2026-11.io.ringstor:a");
	e->lun = 16383;
	e->age_ns = age * 1000000000ull;
	e = stats_snap_add(s, STATS_KIND_EXPORT);
	e->export_id = 4000000000u;
	strcpy(e->path, "/srv/with space/and%percent/\xc3\xa9");
	e->age_ns = age * 1000000000ull;
	fill_entry(e, scale);
	/* an LU whose target is not in the target list (still shown) */
	e = stats_snap_add(s, STATS_KIND_LU);
	e->tid = 9;
	strcpy(e->target, "iqn.2026-11.io.ringstor:orphan");
	e->lun = 0;
	e->age_ns = age * 1000000000ull;
}

static void test_raw_roundtrip(void **state)
{
	struct stats_snap a, b;
	char *buf = NULL, err[128];
	size_t len = 0;
	FILE *f;
	(void)state;

	make_snap(&a, 3, 10);
	f = open_memstream(&buf, &len);
	stats_snap_write_raw(f, &a);
	fclose(f);
	assert_int_equal(stats_snap_parse_raw(buf, len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.time_ns, a.time_ns);
	assert_int_equal(b.nt, a.nt);
	assert_int_equal(b.n, a.n);
	for (int i = 0; i < a.nt; i++) {
		assert_int_equal(b.t[i].tid, a.t[i].tid);
		assert_string_equal(b.t[i].name, a.t[i].name);
		assert_int_equal(b.t[i].nsessions, a.t[i].nsessions);
		assert_int_equal(b.t[i].ninitiators, a.t[i].ninitiators);
		for (int j = 0; j < a.t[i].ninitiators; j++)
			assert_string_equal(b.t[i].initiators[j], a.t[i].initiators[j]);
	}
	for (int i = 0; i < a.n; i++) {
		assert_int_equal(b.e[i].kind, a.e[i].kind);
		assert_int_equal(b.e[i].tid, a.e[i].tid);
		assert_int_equal(b.e[i].lun, a.e[i].lun);
		assert_int_equal(b.e[i].export_id, a.e[i].export_id);
		assert_int_equal(b.e[i].age_ns, a.e[i].age_ns);
		assert_string_equal(b.e[i].target, a.e[i].target);
		assert_string_equal(b.e[i].path, a.e[i].path);
		assert_memory_equal(&b.e[i].c, &a.e[i].c, sizeof(a.e[i].c));
	}
	stats_snap_free(&b);
	free(buf);
	stats_snap_free(&a);
}

static void test_raw_hostile(void **state)
{
	static const char *const bad[] = {
		"",
		"ringstor-stats 2\nend\n",
		"ringstor-stats 1\n",                                   /* no end */
		"ringstor-stats 1\nend\nend\n",                         /* after end */
		"ringstor-stats 1\ninitiator x\nend\n",                 /* before a target */
		"ringstor-stats 1\nctr 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nend\n",
		"ringstor-stats 1\nlu 1 1 5 n\nclass 3 0 0 0\nend\n",  /* class out of range */
		"ringstor-stats 1\nlu 1 1 5 n\nclass 0 0 0 0 528:1\nend\n", /* bucket out of range */
		"ringstor-stats 1\nlu 1 1 5 n\nclass 0 0 0 0 5\nend\n",
		"ringstor-stats 1\nlu 1 1 5 n\nclass 0 0 0 0 5:x\nend\n",
		"ringstor-stats 1\nlu 1 1 5 n\nclass 0 18446744073709551616 0 0\nend\n",
		"ringstor-stats 1\nlu -1 1 5 n\nend\n",
		"ringstor-stats 1\nlu 1 1 5\nend\n",
		"ringstor-stats 1\nlu 1 1 5 a%zz\nend\n",
		"ringstor-stats 1\nlu 1 1 5 a%0\nend\n",
		"ringstor-stats 1\nexport 4294967296 5 /x\nend\n",
		"ringstor-stats 1\ntarget 1 0 a%00b\nend\n",
		"ringstor-stats 1\nbogus\nend\n",
		"ringstor-stats 1\ntime 1 2\nend\n",
	};
	struct stats_snap s;
	char err[128], big[600];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(stats_snap_parse_raw(bad[i], strlen(bad[i]), &s, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		assert_int_equal(s.n, 0);
	}
	/* an embedded NUL */
	assert_int_equal(stats_snap_parse_raw("ringstor-stats 1\n\0end\n", 22, &s, err, sizeof(err)), -1);
	/* a name longer than the field */
	memset(big, 'a', sizeof(big));
	memcpy(big, "ringstor-stats 1\ntarget 1 0 ", 28);
	strcpy(big + 300, "\nend\n");
	assert_int_equal(stats_snap_parse_raw(big, strlen(big), &s, err, sizeof(err)), -1);
	/* an empty string survives (encoded %00) */
	assert_int_equal(stats_snap_parse_raw("ringstor-stats 1\ntarget 1 0 %00\nend\n", 35, &s, err,
					      sizeof(err)), 0);
	assert_int_equal(s.nt, 1);
	assert_string_equal(s.t[0].name, "");
	stats_snap_free(&s);
}

static void test_diff(void **state)
{
	struct stats_snap a, b, d;
	(void)state;

	make_snap(&a, 1, 10);
	make_snap(&b, 3, 12);
	/* LU 16383 was deleted and created again in between: younger now */
	b.e[1].age_ns = 1000000000ull;
	b.e[1].c.cls[0].ops = 7;
	b.e[1].c.started = 7;
	a.e[1].c.cls[0].ops = 1000;
	a.e[1].c.started = 1000;
	assert_int_equal(stats_snap_diff(&b, &a, &d), 0);
	assert_int_equal(d.n, b.n);
	assert_int_equal(d.nt, b.nt);
	assert_int_equal(d.t[0].ninitiators, 2);
	/* deltas */
	for (int k = 0; k < STATS_NCLASS; k++) {
		assert_int_equal(d.e[0].c.cls[k].ops, 200 * (uint64_t)(k + 1));
		assert_int_equal(d.e[0].c.cls[k].hist[stats_hist_index(1000000)], 2);
	}
	assert_int_equal(d.e[0].c.errors, 4);
	assert_int_equal(d.e[0].c.sense_key[6], 2);
	/* in flight stays the current level (3), not a difference */
	{
		uint64_t ops = d.e[0].c.cls[0].ops + d.e[0].c.cls[1].ops + d.e[0].c.cls[2].ops;
		assert_int_equal(d.e[0].c.started - ops, 3);
	}
	/* recreated: counted whole */
	assert_int_equal(d.e[1].c.cls[0].ops, 7);
	stats_snap_free(&d);
	stats_snap_free(&a);
	stats_snap_free(&b);
}

/* ---- renderers ---- */

static void test_render_json(void **state)
{
	struct stats_snap s;
	char *j;
	(void)state;

	make_snap(&s, 1, 10);
	j = render(stats_render_json, &s, 2.0);
	assert_true(json_valid(j));
	assert_non_null(strstr(j, "\"interval_s\": 2.000"));
	/* read: 100 ops over 2 s */
	assert_non_null(strstr(j, "\"read\": {\"ops\": 100, \"bytes\": 409600, \"iops\": 50.000, "
			       "\"bytes_per_s\": 204800.000"));
	assert_non_null(strstr(j, "\"p99.9\": "));
	assert_non_null(strstr(j, "\"sense_keys\": {\"UNIT_ATTENTION\": 1}"));
	assert_non_null(strstr(j, "\"reservation_conflict\": 1"));
	assert_non_null(strstr(j, "\"initiators\": [\"iqn.1994-05.com.example:h1\", "
			       "\"weird name\\u0009with % \\\"quotes\\\"\"]"));
	assert_non_null(strstr(j, "\"export_id\": 4000000000"));
	assert_non_null(strstr(j, "\"name\": \"iqn.2026-11.io.ringstor:orphan\""));
	assert_non_null(strstr(j, "\"inflight\": 3"));
	free(j);

	/* totals: rates over the lifetime (10 s), interval null */
	j = render(stats_render_json, &s, 0);
	assert_true(json_valid(j));
	assert_non_null(strstr(j, "\"interval_s\": null"));
	assert_non_null(strstr(j, "\"iops\": 10.000"));
	free(j);
	stats_snap_free(&s);

	/* empty */
	stats_snap_init(&s);
	j = render(stats_render_json, &s, 0);
	assert_true(json_valid(j));
	assert_string_equal(j, "{\"interval_s\": null, \"targets\": [], \"exports\": []}\n");
	free(j);
	/* the checker itself rejects garbage */
	assert_false(json_valid("{\"a\": 1,}"));
	assert_false(json_valid("{\"a\": nan}"));
}

static void test_render_text(void **state)
{
	struct stats_snap s;
	char *t;
	(void)state;

	make_snap(&s, 1, 10);
	t = render(stats_render_text, &s, 2.0);
	assert_non_null(strstr(t, "Target 1: iqn.2026-11.io.ringstor:a\n"));
	assert_non_null(strstr(t, "    Sessions: 2\n        Initiator: iqn.1994-05.com.example:h1\n"));
	assert_non_null(strstr(t, "    LUN 1: rates over the last 2.0 s, in flight 3\n"));
	assert_non_null(strstr(t, "p99.9_us"));
	assert_non_null(strstr(t, "        read         50.0       0.20          100"));
	assert_non_null(strstr(t, "sense keys: UNIT_ATTENTION 1\n"));
	assert_non_null(strstr(t, "Target 2: iqn.2026-11.io.ringstor:b\n    Sessions: 0\n"));
	assert_non_null(strstr(t, "Target 9: iqn.2026-11.io.ringstor:orphan\n"));
	assert_non_null(strstr(t, "NFS export 4000000000: /srv/with space"));
	free(t);
	stats_snap_free(&s);
}

static void test_render_prometheus(void **state)
{
	struct stats_snap s;
	char *p, *line, *save = NULL;
	uint64_t last = 0;
	bool in_read = false;
	(void)state;

	make_snap(&s, 1, 10);
	p = render(render_prom_adapter, &s, 0);
	assert_non_null(strstr(p, "# TYPE ringstor_lun_ops_total counter\n"));
	assert_non_null(strstr(p, "ringstor_lun_ops_total{tid=\"1\",target=\"iqn.2026-11.io.ringstor:a\","
			       "lun=\"1\",class=\"read\"} 100\n"));
	assert_non_null(strstr(p, "ringstor_target_sessions{tid=\"1\",target=\"iqn.2026-11.io.ringstor:a\"} 2\n"));
	assert_non_null(strstr(p, "ringstor_lun_sense_key_total{tid=\"1\",target=\"iqn.2026-11.io.ringstor:a\","
			       "lun=\"1\",sense_key=\"UNIT_ATTENTION\"} 1\n"));
	assert_non_null(strstr(p, "# TYPE ringstor_lun_latency_seconds histogram\n"));
	assert_non_null(strstr(p, "ringstor_export_ops_total{export_id=\"4000000000\","));
	assert_non_null(strstr(p, "ringstor_lun_inflight{tid=\"1\",target=\"iqn.2026-11.io.ringstor:a\","
			       "lun=\"1\"} 3\n"));
	/* LU 1 read histogram: 99 samples at 40 us, 1 at 1 ms; cumulative and
	 * +Inf == _count */
	assert_non_null(strstr(p, "lun=\"1\",class=\"read\",le=\"6.5536e-05\"} 99\n"));
	assert_non_null(strstr(p, "lun=\"1\",class=\"read\",le=\"0.001048576\"} 100\n"));
	assert_non_null(strstr(p, "lun=\"1\",class=\"read\",le=\"+Inf\"} 100\n"));
	assert_non_null(strstr(p, "ringstor_lun_latency_seconds_count{tid=\"1\",target=\"iqn.2026-11.io.ringstor:a\","
			       "lun=\"1\",class=\"read\"} 100\n"));
	for (line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "_bucket{tid=\"1\"") && strstr(line, "lun=\"1\",class=\"read\"")) {
			uint64_t v = strtoull(strrchr(line, ' ') + 1, NULL, 10);
			if (in_read)
				assert_true(v >= last);
			last = v;
			in_read = true;
		}
		/* every sample line: name{labels} value, or a comment */
		assert_true(line[0] == '#' || strchr(line, '{') || strchr(line, ' '));
	}
	free(p);
	stats_snap_free(&s);
}

/* ---- NFS hook ---- */

static void test_nfs_hook(void **state)
{
	struct stats_counters c;
	struct stats_obj *o;
	(void)state;

	assert_null(stats_nfs_export(77));
	stats_nfs_op(77, STATS_READ, 65536, 100000, false);
	stats_nfs_op(77, STATS_WRITE, 4096, 200000, false);
	stats_nfs_op(77, STATS_OTHER, 0, 5000, true);
	stats_nfs_op(77, STATS_WRITE, 4096, 200000, true);   /* failed: no bytes */
	o = stats_nfs_export(77);
	assert_non_null(o);
	stats_obj_read(o, &c);
	assert_int_equal(c.cls[STATS_READ].ops, 1);
	assert_int_equal(c.cls[STATS_READ].bytes, 65536);
	assert_int_equal(c.cls[STATS_WRITE].ops, 2);
	assert_int_equal(c.cls[STATS_WRITE].bytes, 4096);
	assert_int_equal(c.errors, 2);
	assert_int_equal(c.started, 4);
	assert_null(stats_nfs_export(78));
	/* many ids: the table fills up to STATS_MAX_EXPORTS, then stops counting */
	for (uint32_t id = 1000; id < 1000 + 2 * STATS_MAX_EXPORTS; id++)
		stats_nfs_op(id, STATS_OTHER, 0, 1, false);
	assert_non_null(stats_nfs_export(1000));
	assert_null(stats_nfs_export(1000 + 2 * STATS_MAX_EXPORTS - 1));
	assert_non_null(stats_nfs_export(77));
}

/* ---- SCSI core accounting (target/scsi.c) ---- */

static void on_done(struct scsi_cmd *cmd)
{
	(*(int *)cmd->fabric_priv)++;
}

static void test_scsi_accounting(void **state)
{
	struct bstore_params np = { .block_size = 512, .size = 1 << 20 };
	struct bstore *bs;
	struct scsi_lu *lu;
	struct scsi_nexus nx = { .id = 1, .initiator_port = "iqn.x,i,0x1", .target_port_id = 1 };
	struct scsi_cmd cmd;
	struct stats_counters c;
	int done = 0;
	uint64_t nh = 0;
	(void)state;

	assert_int_equal(stats_scsi_class((const uint8_t[]){ 0x28 }), STATS_READ);
	assert_int_equal(stats_scsi_class((const uint8_t[]){ 0x88 }), STATS_READ);
	assert_int_equal(stats_scsi_class((const uint8_t[]){ 0x2a }), STATS_WRITE);
	assert_int_equal(stats_scsi_class((const uint8_t[]){ 0x89 }), STATS_WRITE);
	assert_int_equal(stats_scsi_class((const uint8_t[]){ 0x00 }), STATS_OTHER);
	assert_int_equal(stats_scsi_class((const uint8_t[]){ 0x42 }), STATS_OTHER);

	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	lu = scsi_lu_create(3, bs, NULL);
	assert_non_null(lu);
	assert_ptr_equal(stats_lu_obj(lu), scsi_lu_stats(lu));

	/* TEST UNIT READY: GOOD, no data (completes inline) */
	memset(&cmd, 0, sizeof(cmd));
	cmd.cdb_len = 6;
	cmd.lu = lu;
	cmd.lun = 3;
	cmd.nexus = &nx;
	cmd.done = on_done;
	cmd.fabric_priv = &done;
	scsi_cmd_execute(&cmd);
	assert_int_equal(done, 1);
	assert_int_equal(cmd.status, SAM_STAT_GOOD);
	scsi_cmd_release(&cmd);

	/* INQUIRY with EVPD=0 and a page code: ILLEGAL REQUEST (SPC-4 6.6) */
	memset(cmd.cdb, 0, sizeof(cmd.cdb));
	cmd.cdb[0] = 0x12;
	cmd.cdb[2] = 0x80;
	cmd.cdb[4] = 96;
	cmd.expected_len = 96;
	scsi_cmd_execute(&cmd);
	assert_int_equal(done, 2);
	assert_int_equal(cmd.status, SAM_STAT_CHECK_CONDITION);
	scsi_cmd_release(&cmd);

	/* INQUIRY standard data: GOOD, 36+ bytes in */
	cmd.cdb[2] = 0;
	scsi_cmd_execute(&cmd);
	assert_int_equal(done, 3);
	assert_int_equal(cmd.status, SAM_STAT_GOOD);
	scsi_cmd_release(&cmd);

	stats_obj_read(scsi_lu_stats(lu), &c);
	assert_int_equal(c.started, 3);
	assert_int_equal(c.cls[STATS_OTHER].ops, 3);
	assert_int_equal(c.cls[STATS_READ].ops + c.cls[STATS_WRITE].ops, 0);
	assert_int_equal(c.errors, 1);
	assert_int_equal(c.status[STATS_ST_CHECK_CONDITION], 1);
	assert_int_equal(c.sense_key[5], 1);
	assert_true(c.cls[STATS_OTHER].bytes >= 36 && c.cls[STATS_OTHER].bytes <= 96);
	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++)
		nh += c.cls[STATS_OTHER].hist[i];
	assert_int_equal(nh, 3);     /* every command got a latency sample */
	/* nothing left in this thread's in-flight table */
	{
		uint64_t t0;
		assert_false(stats_inflight_take(&cmd, &t0));
	}
	scsi_lu_put(lu);
}

/* ---- Prometheus endpoint ---- */

static int fake_collect(struct stats_snap *s, int sel)
{
	struct stats_snap tmp;

	assert_int_equal(sel, STATS_SEL_ALL);
	make_snap(&tmp, 1, 10);
	/* hand over the contents (stats_collect initialised s) */
	tmp.time_ns = s->time_ns;
	*s = tmp;
	return 0;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* One HTTP exchange; returns the whole response (malloc'd). */
static char *http(int port, const char *req)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	ssize_t n;

	assert_non_null(buf);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (*req)
		assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	shutdown(fd, SHUT_WR);
	while ((n = recv(fd, buf + len, cap - len, 0)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void test_prometheus_endpoint(void **state)
{
	char addr[64], *r;
	int port = free_port();
	(void)state;

	assert_true(stats_prometheus_start("nonsense") < 0);
	assert_true(stats_prometheus_start("127.0.0.1:99999") < 0);
	stats_set_collector(fake_collect);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(stats_prometheus_start(addr), 0);
	assert_int_equal(stats_prometheus_start(addr), -EBUSY);

	r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.0 200 OK\r\n", 17));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP ringstor_target_sessions"));
	assert_non_null(strstr(r, "ringstor_lun_ops_total{tid=\"1\""));
	{
		const char *cl = strstr(r, "Content-Length: "), *body = strstr(r, "\r\n\r\n") + 4;
		assert_non_null(cl);
		assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(body));
	}
	free(r);
	r = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.0 200 OK", 15));
	assert_null(strstr(r, "# HELP"));
	free(r);
	r = http(port, "GET / HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.0 404", 12));
	free(r);
	r = http(port, "POST /metrics HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.0 405", 12));
	free(r);
	r = http(port, "\x01\x02garbage");
	assert_true(!strncmp(r, "HTTP/1.0 400", 12));
	free(r);
	r = http(port, "");
	assert_true(!strncmp(r, "HTTP/1.0 400", 12));
	free(r);
	/* still serving after all that */
	r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.0 200 OK", 15));
	free(r);
	stats_prometheus_stop();
	stats_prometheus_stop();
	stats_set_collector(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_layout),
		cmocka_unit_test(test_hist_percentiles),
		cmocka_unit_test(test_aggregation),
		cmocka_unit_test(test_latency_unknown),
		cmocka_unit_test(test_inflight),
		cmocka_unit_test(test_raw_roundtrip),
		cmocka_unit_test(test_raw_hostile),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_render_json),
		cmocka_unit_test(test_render_text),
		cmocka_unit_test(test_render_prometheus),
		cmocka_unit_test(test_nfs_hook),
		cmocka_unit_test(test_scsi_accounting),
		cmocka_unit_test(test_prometheus_endpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
