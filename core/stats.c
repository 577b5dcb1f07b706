/* stats.c - I/O statistics: per-thread counters, log-linear latency
 * histograms, snapshots, the text / JSON / Prometheus renderers and the
 * Prometheus endpoint.  Design notes in stats.h.
 */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"

/* ======================================================================== */
/* Histogram                                                                */
/* ======================================================================== */

/* Bucket layout (see stats.h): group g = 0 holds 0..15 exactly; group g >= 1
 * covers [2^(g+3), 2^(g+4)) in 16 steps of 2^(g-1).  Group 1 (16..31) also
 * has width 1, so every value below 32 has its own bucket. */
unsigned stats_hist_index(uint64_t v)
{
	unsigned e;

	if (v < STATS_HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	if (e >= STATS_HIST_MAX_EXP)
		return STATS_HIST_BUCKETS - 1;
	return (e - STATS_HIST_SUB_BITS + 1) * STATS_HIST_SUB +
	       (unsigned)((v >> (e - STATS_HIST_SUB_BITS)) - STATS_HIST_SUB);
}

uint64_t stats_hist_low(unsigned idx)
{
	unsigned g, s;

	if (idx >= STATS_HIST_BUCKETS)
		idx = STATS_HIST_BUCKETS - 1;
	g = idx / STATS_HIST_SUB;
	s = idx % STATS_HIST_SUB;
	if (g == 0)
		return s;
	return (uint64_t)(STATS_HIST_SUB + s) << (g - 1);
}

uint64_t stats_hist_high(unsigned idx)
{
	unsigned g;

	if (idx >= STATS_HIST_BUCKETS)
		idx = STATS_HIST_BUCKETS - 1;
	g = idx / STATS_HIST_SUB;
	if (g == 0)
		return idx;
	return stats_hist_low(idx) + ((uint64_t)1 << (g - 1)) - 1;
}

uint64_t stats_hist_percentile(const uint64_t *hist, double p)
{
	uint64_t n = 0, rank, cum = 0;
	double r;

	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++)
		n += hist[i];
	if (n == 0)
		return 0;
	if (!(p > 0))
		p = 0;
	if (p > 100)
		p = 100;
	/* nearest-rank: the ceil(p/100 * n)-th smallest sample, at least the 1st */
	r = p / 100.0 * (double)n;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
		cum += hist[i];
		if (cum >= rank)
			return stats_hist_high(i);
	}
	return stats_hist_high(STATS_HIST_BUCKETS - 1);
}

uint64_t stats_hist_max(const uint64_t *hist)
{
	for (unsigned i = STATS_HIST_BUCKETS; i-- > 0;)
		if (hist[i])
			return stats_hist_high(i);
	return 0;
}

/* ======================================================================== */
/* Per-thread counters                                                      */
/* ======================================================================== */

static atomic_int next_slot;
static _Thread_local int my_slot = -1;

#define SHARED_SLOT (STATS_MAX_THREADS - 1)

static int thread_slot(void)
{
	if (my_slot < 0) {
		int s = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed);
		my_slot = s < SHARED_SLOT ? s : SHARED_SLOT;
	}
	return my_slot;
}

/* One writer per slot (except the shared one): a relaxed load + store is a
 * plain add in the generated code, yet well defined against the readers'
 * relaxed loads. */
static inline void ctr_add(uint64_t *p, uint64_t v, bool shared)
{
	if (shared)
		__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
	else
		__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static inline uint64_t ctr_get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void stats_obj_init(struct stats_obj *o)
{
	for (int i = 0; i < STATS_MAX_THREADS; i++)
		atomic_init(&o->slot[i], NULL);
	o->created_ns = stats_now_ns();
}

void stats_obj_fini(struct stats_obj *o)
{
	for (int i = 0; i < STATS_MAX_THREADS; i++) {
		free(atomic_load_explicit(&o->slot[i], memory_order_acquire));
		atomic_store_explicit(&o->slot[i], NULL, memory_order_relaxed);
	}
}

/* This thread's block of o, allocated on first use (once per object and
 * thread; a failed allocation drops the sample, never the command). */
static struct stats_counters *slot_block(struct stats_obj *o, int s)
{
	struct stats_counters *c = atomic_load_explicit(&o->slot[s], memory_order_acquire);
	struct stats_counters *expected = NULL;
	size_t sz;

	if (c)
		return c;
	sz = (sizeof(*c) + 63) & ~(size_t)63;   /* aligned_alloc: a multiple of 64 */
	c = aligned_alloc(64, sz);
	if (!c)
		return NULL;
	memset(c, 0, sz);
	if (!atomic_compare_exchange_strong_explicit(&o->slot[s], &expected, c,
						     memory_order_acq_rel, memory_order_acquire)) {
		free(c);
		c = expected;
	}
	return c;
}

void stats_record_start(struct stats_obj *o)
{
	int s = thread_slot();
	struct stats_counters *c = slot_block(o, s);

	if (c)
		ctr_add(&c->started, 1, s == SHARED_SLOT);
}

void stats_record(struct stats_obj *o, enum stats_class cls, uint64_t bytes,
		  uint64_t latency_ns, int status, int sense_key)
{
	int s = thread_slot();
	bool sh = s == SHARED_SLOT;
	struct stats_counters *c = slot_block(o, s);
	struct stats_class_ctr *k;

	if (!c)
		return;
	if ((unsigned)cls >= STATS_NCLASS)
		cls = STATS_OTHER;
	k = &c->cls[cls];
	ctr_add(&k->ops, 1, sh);
	if (bytes)
		ctr_add(&k->bytes, bytes, sh);
	if (latency_ns != STATS_LAT_UNKNOWN) {
		ctr_add(&k->lat_sum_ns, latency_ns, sh);
		ctr_add(&k->hist[stats_hist_index(latency_ns)], 1, sh);
	}
	if (status >= 0 && status < STATS_NSTATUS) {
		ctr_add(&c->errors, 1, sh);
		ctr_add(&c->status[status], 1, sh);
		if (status == STATS_ST_CHECK_CONDITION && sense_key >= 0 && sense_key < 16)
			ctr_add(&c->sense_key[sense_key], 1, sh);
	}
}

static void counters_add(struct stats_counters *dst, const struct stats_counters *src, bool atomic)
{
#define G(x) (atomic ? ctr_get(&(x)) : (x))
	dst->started += G(src->started);
	dst->errors += G(src->errors);
	for (int i = 0; i < STATS_NSTATUS; i++)
		dst->status[i] += G(src->status[i]);
	for (int i = 0; i < 16; i++)
		dst->sense_key[i] += G(src->sense_key[i]);
	for (int k = 0; k < STATS_NCLASS; k++) {
		dst->cls[k].ops += G(src->cls[k].ops);
		dst->cls[k].bytes += G(src->cls[k].bytes);
		dst->cls[k].lat_sum_ns += G(src->cls[k].lat_sum_ns);
		for (int i = 0; i < (int)STATS_HIST_BUCKETS; i++)
			dst->cls[k].hist[i] += G(src->cls[k].hist[i]);
	}
#undef G
}

void stats_obj_read(const struct stats_obj *o, struct stats_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < STATS_MAX_THREADS; i++) {
		const struct stats_counters *c =
			atomic_load_explicit(&((struct stats_obj *)o)->slot[i], memory_order_acquire);
		if (c)
			counters_add(out, c, true);
	}
}

/* ======================================================================== */
/* In-flight start times (SCSI)                                             */
/* ======================================================================== */

/* The SCSI command structure belongs to the fabric and has no field for a
 * start time, so each reactor keeps its own open-addressing table (linear
 * probing, backward-shift deletion) from command to start time: a command
 * starts and completes on its reactor's thread (scsi.h), so no lock is
 * needed.  A command that completes elsewhere leaves a stale entry, which
 * the next command at the same address overwrites. */
struct inflight_ent {
	const void *key;
	uint64_t t0;
};

struct inflight_tab {
	struct inflight_ent *e;
	size_t cap, n;          /* cap: power of two */
};

#define INFLIGHT_MIN 256
#define INFLIGHT_MAX (1u << 20)

static _Thread_local struct inflight_tab *tl_tab;
static pthread_key_t tab_key;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_destroy(void *p)
{
	struct inflight_tab *t = p;

	if (t) {
		free(t->e);
		free(t);
	}
}

static void tab_key_init(void)
{
	(void)pthread_key_create(&tab_key, tab_destroy);
}

static inline size_t key_hash(const void *key, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 32) & (cap - 1);
}

static void tab_insert(struct inflight_tab *t, const void *key, uint64_t t0)
{
	size_t i = key_hash(key, t->cap);

	while (t->e[i].key && t->e[i].key != key)
		i = (i + 1) & (t->cap - 1);
	if (!t->e[i].key)
		t->n++;
	t->e[i].key = key;
	t->e[i].t0 = t0;
}

static bool tab_grow(struct inflight_tab *t)
{
	struct inflight_tab nt;

	if (t->cap >= INFLIGHT_MAX)
		return false;
	nt.cap = t->cap ? t->cap * 2 : INFLIGHT_MIN;
	nt.n = 0;
	nt.e = calloc(nt.cap, sizeof(*nt.e));
	if (!nt.e)
		return false;
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].key)
			tab_insert(&nt, t->e[i].key, t->e[i].t0);
	free(t->e);
	*t = nt;
	return true;
}

void stats_inflight_put(const void *key, uint64_t t0_ns)
{
	struct inflight_tab *t = tl_tab;

	if (!key)
		return;
	if (!t) {
		pthread_once(&tab_once, tab_key_init);
		t = calloc(1, sizeof(*t));
		if (!t)
			return;
		if (!tab_grow(t)) {
			free(t);
			return;
		}
		tl_tab = t;
		pthread_setspecific(tab_key, t);
	}
	/* load factor <= 1/2 keeps probe sequences short */
	if ((t->n + 1) * 2 > t->cap && !tab_grow(t) && t->n + 1 >= t->cap)
		return;         /* full and cannot grow: this command gets no latency */
	tab_insert(t, key, t0_ns);
}

bool stats_inflight_take(const void *key, uint64_t *t0_ns)
{
	struct inflight_tab *t = tl_tab;
	size_t i, j, h;

	if (!t || !key)
		return false;
	i = key_hash(key, t->cap);
	while (t->e[i].key != key) {
		if (!t->e[i].key)
			return false;
		i = (i + 1) & (t->cap - 1);
	}
	*t0_ns = t->e[i].t0;
	/* backward-shift deletion: pull later members of the cluster into
	 * the hole when their home slot allows it */
	j = i;
	for (;;) {
		t->e[i].key = NULL;
		for (;;) {
			j = (j + 1) & (t->cap - 1);
			if (!t->e[j].key) {
				t->n--;
				return true;
			}
			h = key_hash(t->e[j].key, t->cap);
			/* can e[j] move to i?  yes unless h lies cyclically in (i, j] */
			if (i <= j ? (h <= i || h > j) : (h <= i && h > j))
				break;
		}
		t->e[i] = t->e[j];
		i = j;
	}
}

/* ======================================================================== */
/* SCSI classification                                                      */
/* ======================================================================== */

enum stats_class stats_scsi_class(const uint8_t *cdb)
{
	switch (cdb[0]) {
	case 0x08: case 0x28: case 0xa8: case 0x88:     /* READ (6/10/12/16) */
		return STATS_READ;
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:     /* WRITE (6/10/12/16) */
	case 0x2e: case 0xae: case 0x8e:                /* WRITE AND VERIFY */
	case 0x89:                                      /* COMPARE AND WRITE */
	case 0x8b:                                      /* ORWRITE (16) */
	case 0x9c:                                      /* WRITE ATOMIC (16) */
	case 0x41: case 0x93:                           /* WRITE SAME (10/16) */
		return STATS_WRITE;
	default:
		return STATS_OTHER;
	}
}

static _Atomic(stats_lu_fn) lu_lookup;

void stats_set_lu_lookup(stats_lu_fn fn)
{
	atomic_store_explicit(&lu_lookup, fn, memory_order_release);
}

struct stats_obj *stats_lu_obj(const struct scsi_lu *lu)
{
	stats_lu_fn fn = atomic_load_explicit(&lu_lookup, memory_order_acquire);

	return fn && lu ? fn(lu) : NULL;
}

/* ======================================================================== */
/* NFS exports                                                              */
/* ======================================================================== */

struct export_stats {
	uint32_t id;
	struct stats_obj obj;
};

/* Insert-only open-addressing table: readers on the hot path probe it with
 * acquire loads and no lock; the rare insert takes exp_lock. */
#define EXP_TAB_SIZE (2 * STATS_MAX_EXPORTS)
static _Atomic(struct export_stats *) exp_tab[EXP_TAB_SIZE];
static pthread_mutex_t exp_lock = PTHREAD_MUTEX_INITIALIZER;
static int exp_count;

static inline size_t exp_hash(uint32_t id)
{
	return (size_t)((id * 0x9e3779b1u) >> 16) & (EXP_TAB_SIZE - 1);
}

struct stats_obj *stats_nfs_export(uint32_t export_id)
{
	size_t i = exp_hash(export_id);

	for (size_t n = 0; n < EXP_TAB_SIZE; n++, i = (i + 1) & (EXP_TAB_SIZE - 1)) {
		struct export_stats *x = atomic_load_explicit(&exp_tab[i], memory_order_acquire);
		if (!x)
			return NULL;
		if (x->id == export_id)
			return &x->obj;
	}
	return NULL;
}

static struct stats_obj *export_obj_create(uint32_t export_id)
{
	struct stats_obj *o;
	struct export_stats *x;
	size_t i;

	pthread_mutex_lock(&exp_lock);
	o = stats_nfs_export(export_id);
	if (o || exp_count >= STATS_MAX_EXPORTS)
		goto out;
	x = calloc(1, sizeof(*x));
	if (!x)
		goto out;
	x->id = export_id;
	stats_obj_init(&x->obj);
	for (i = exp_hash(export_id); atomic_load_explicit(&exp_tab[i], memory_order_relaxed);
	     i = (i + 1) & (EXP_TAB_SIZE - 1))
		;
	atomic_store_explicit(&exp_tab[i], x, memory_order_release);
	exp_count++;
	o = &x->obj;
out:
	pthread_mutex_unlock(&exp_lock);
	return o;
}

void stats_nfs_op(uint32_t export_id, enum stats_class cls, uint64_t bytes,
		  uint64_t latency_ns, bool error)
{
	struct stats_obj *o = stats_nfs_export(export_id);

	if (!o && !(o = export_obj_create(export_id)))
		return;
	/* started is counted here too, so that in-flight reads 0 for exports */
	stats_record_start(o);
	stats_record(o, cls, error ? 0 : bytes, latency_ns, error ? STATS_ST_OTHER : -1, -1);
}

/* ======================================================================== */
/* Snapshots                                                                */
/* ======================================================================== */

void stats_snap_init(struct stats_snap *s)
{
	memset(s, 0, sizeof(*s));
}

void stats_snap_free(struct stats_snap *s)
{
	for (int i = 0; i < s->nt; i++)
		free(s->t[i].initiators);
	free(s->t);
	free(s->e);
	memset(s, 0, sizeof(*s));
}

struct stats_entry *stats_snap_add(struct stats_snap *s, enum stats_kind kind)
{
	struct stats_entry *e;

	if (s->n == s->cap) {
		int ncap = s->cap ? s->cap * 2 : 8;
		struct stats_entry *ne = realloc(s->e, (size_t)ncap * sizeof(*ne));
		if (!ne)
			return NULL;
		s->e = ne;
		s->cap = ncap;
	}
	e = &s->e[s->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	return e;
}

struct stats_target *stats_snap_add_target(struct stats_snap *s, int tid, const char *name,
					   int nsessions)
{
	struct stats_target *t;

	if (s->nt == s->capt) {
		int ncap = s->capt ? s->capt * 2 : 8;
		struct stats_target *nt = realloc(s->t, (size_t)ncap * sizeof(*nt));
		if (!nt)
			return NULL;
		s->t = nt;
		s->capt = ncap;
	}
	t = &s->t[s->nt++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
	t->nsessions = nsessions;
	return t;
}

int stats_target_add_initiator(struct stats_target *t, const char *name)
{
	char (*n)[STATS_NAME_MAX];

	if (t->ninitiators >= 65536)
		return -ENOSPC;
	n = realloc(t->initiators, (size_t)(t->ninitiators + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	t->initiators = n;
	snprintf(n[t->ninitiators++], STATS_NAME_MAX, "%s", name ? name : "");
	return 0;
}

void stats_entry_fill(struct stats_entry *e, const struct stats_obj *o, uint64_t now_ns)
{
	stats_obj_read(o, &e->c);
	e->age_ns = now_ns > o->created_ns ? now_ns - o->created_ns : 0;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void counters_sub(struct stats_counters *d, const struct stats_counters *a,
			 const struct stats_counters *b)
{
	d->started = sat_sub(a->started, b->started);
	d->errors = sat_sub(a->errors, b->errors);
	for (int i = 0; i < STATS_NSTATUS; i++)
		d->status[i] = sat_sub(a->status[i], b->status[i]);
	for (int i = 0; i < 16; i++)
		d->sense_key[i] = sat_sub(a->sense_key[i], b->sense_key[i]);
	for (int k = 0; k < STATS_NCLASS; k++) {
		d->cls[k].ops = sat_sub(a->cls[k].ops, b->cls[k].ops);
		d->cls[k].bytes = sat_sub(a->cls[k].bytes, b->cls[k].bytes);
		d->cls[k].lat_sum_ns = sat_sub(a->cls[k].lat_sum_ns, b->cls[k].lat_sum_ns);
		for (int i = 0; i < (int)STATS_HIST_BUCKETS; i++)
			d->cls[k].hist[i] = sat_sub(a->cls[k].hist[i], b->cls[k].hist[i]);
	}
}

static uint64_t ops_total(const struct stats_counters *c)
{
	uint64_t n = 0;

	for (int k = 0; k < STATS_NCLASS; k++)
		n += c->cls[k].ops;
	return n;
}

static bool same_object(const struct stats_entry *a, const struct stats_entry *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == STATS_KIND_EXPORT)
		return a->export_id == b->export_id;
	return a->tid == b->tid && a->lun == b->lun && strcmp(a->target, b->target) == 0;
}

int stats_snap_diff(const struct stats_snap *cur, const struct stats_snap *prev,
		    struct stats_snap *out)
{
	stats_snap_init(out);
	out->time_ns = cur->time_ns;
	for (int i = 0; i < cur->nt; i++) {
		const struct stats_target *ct = &cur->t[i];
		struct stats_target *t = stats_snap_add_target(out, ct->tid, ct->name, ct->nsessions);
		if (!t)
			goto nomem;
		for (int j = 0; j < ct->ninitiators; j++)
			if (stats_target_add_initiator(t, ct->initiators[j]) < 0)
				goto nomem;
	}
	for (int i = 0; i < cur->n; i++) {
		const struct stats_entry *c = &cur->e[i], *p = NULL;
		struct stats_entry *d = stats_snap_add(out, c->kind);
		uint64_t started;

		if (!d)
			goto nomem;
		*d = *c;
		for (int j = 0; j < prev->n; j++) {
			if (same_object(c, &prev->e[j])) {
				p = &prev->e[j];
				break;
			}
		}
		/* younger now than before: deleted and created again */
		if (!p || c->age_ns < p->age_ns)
			continue;
		counters_sub(&d->c, &c->c, &p->c);
		/* in flight is a level, not a rate: keep cur's (started - done)
		 * on top of the delta of completions */
		started = sat_sub(c->c.started, ops_total(&c->c)) + ops_total(&d->c);
		d->c.started = started;
	}
	return 0;
nomem:
	stats_snap_free(out);
	return -ENOMEM;
}

/* ======================================================================== */
/* Raw format (daemon -> ringstoradm)                                       */
/* ======================================================================== */

/* Line based, one token per field, strings percent-encoded:
 *   ringstor-stats 1
 *   time NS
 *   target TID NSESSIONS NAME
 *   initiator NAME                  (of the preceding target)
 *   lu TID LUN AGE_NS NAME
 *   export ID AGE_NS PATH
 *   ctr STARTED ERRORS ST0..ST4 SK0..SK15   (of the preceding lu/export)
 *   class K OPS BYTES LAT_SUM_NS [IDX:COUNT ...]  (non-empty buckets only)
 *   end
 */
#define RAW_MAGIC "ringstor-stats 1"

static void put_str(FILE *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!*s) {
		fputs("%00", out);     /* never an empty token; decodes to "" */
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == '%' || *p == 0x7f)
			fprintf(out, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
		else
			fputc(*p, out);
	}
}

void stats_snap_write_raw(FILE *out, const struct stats_snap *s)
{
	fprintf(out, RAW_MAGIC "\ntime %" PRIu64 "\n", s->time_ns);
	for (int i = 0; i < s->nt; i++) {
		const struct stats_target *t = &s->t[i];
		fprintf(out, "target %d %d ", t->tid, t->nsessions);
		put_str(out, t->name);
		fputc('\n', out);
		for (int j = 0; j < t->ninitiators; j++) {
			fputs("initiator ", out);
			put_str(out, t->initiators[j]);
			fputc('\n', out);
		}
	}
	for (int i = 0; i < s->n; i++) {
		const struct stats_entry *e = &s->e[i];
		const struct stats_counters *c = &e->c;

		if (e->kind == STATS_KIND_LU) {
			fprintf(out, "lu %d %" PRIu64 " %" PRIu64 " ", e->tid, e->lun, e->age_ns);
			put_str(out, e->target);
		} else {
			fprintf(out, "export %" PRIu32 " %" PRIu64 " ", e->export_id, e->age_ns);
			put_str(out, e->path);
		}
		fprintf(out, "\nctr %" PRIu64 " %" PRIu64, c->started, c->errors);
		for (int k = 0; k < STATS_NSTATUS; k++)
			fprintf(out, " %" PRIu64, c->status[k]);
		for (int k = 0; k < 16; k++)
			fprintf(out, " %" PRIu64, c->sense_key[k]);
		fputc('\n', out);
		for (int k = 0; k < STATS_NCLASS; k++) {
			const struct stats_class_ctr *cc = &c->cls[k];
			fprintf(out, "class %d %" PRIu64 " %" PRIu64 " %" PRIu64, k, cc->ops, cc->bytes,
				cc->lat_sum_ns);
			for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
				if (cc->hist[b])
					fprintf(out, " %u:%" PRIu64, b, cc->hist[b]);
			fputc('\n', out);
		}
	}
	fputs("end\n", out);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode token tok (NUL-terminated) into dst[cap]; false if malformed or
 * too long. */
static bool get_str(const char *tok, char *dst, size_t cap)
{
	size_t n = 0;

	for (const char *p = tok; *p; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int h = hexval(p[1]), l = h >= 0 ? hexval(p[2]) : -1;
			if (h < 0 || l < 0)
				return false;
			c = h << 4 | l;
			p += 2;
			if (c == 0) {
				if (strcmp(tok, "%00") != 0)
					return false;
				break;
			}
		}
		if (n + 1 >= cap)
			return false;
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	return true;
}

static bool get_u64(const char *tok, uint64_t *v)
{
	uint64_t x = 0;

	if (!tok || !*tok)
		return false;
	for (const char *p = tok; *p; p++) {
		unsigned d;
		if (*p < '0' || *p > '9')
			return false;
		d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

static bool get_int(const char *tok, int min, int max, int *v)
{
	uint64_t x;

	if (!get_u64(tok, &x) || x < (uint64_t)min || x > (uint64_t)max)
		return false;
	*v = (int)x;
	return true;
}

#define RAW_MAX_TOK (4 + STATS_HIST_BUCKETS + 8)

int stats_snap_parse_raw(const char *buf, size_t len, struct stats_snap *s, char *err,
			 size_t errlen)
{
	char *copy, *line, *save = NULL;
	char *tok[RAW_MAX_TOK];
	struct stats_target *cur_t = NULL;
	struct stats_entry *cur_e = NULL;
	int lineno = 0, ntok;
	bool seen_magic = false, seen_end = false;

	stats_snap_init(s);
	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "statistics: NUL byte in the data");
		return -1;
	}
	copy = malloc(len + 1);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tsave = NULL, *t;
		lineno++;
		if (seen_end)
			goto bad;
		if (!seen_magic) {
			if (strcmp(line, RAW_MAGIC) != 0)
				goto bad;
			seen_magic = true;
			continue;
		}
		ntok = 0;
		for (t = strtok_r(line, " ", &tsave); t; t = strtok_r(NULL, " ", &tsave)) {
			if (ntok == RAW_MAX_TOK)
				goto bad;
			tok[ntok++] = t;
		}
		if (ntok == 0)
			goto bad;
		if (!strcmp(tok[0], "time") && ntok == 2) {
			if (!get_u64(tok[1], &s->time_ns))
				goto bad;
		} else if (!strcmp(tok[0], "target") && ntok == 4) {
			int tid, ns;
			char name[STATS_NAME_MAX];
			if (!get_int(tok[1], 0, INT_MAX, &tid) || !get_int(tok[2], 0, INT_MAX, &ns) ||
			    !get_str(tok[3], name, sizeof(name)))
				goto bad;
			if (!(cur_t = stats_snap_add_target(s, tid, name, ns)))
				goto nomem;
		} else if (!strcmp(tok[0], "initiator") && ntok == 2) {
			char name[STATS_NAME_MAX];
			if (!cur_t || !get_str(tok[1], name, sizeof(name)))
				goto bad;
			if (stats_target_add_initiator(cur_t, name) < 0)
				goto nomem;
		} else if (!strcmp(tok[0], "lu") && ntok == 5) {
			if (!(cur_e = stats_snap_add(s, STATS_KIND_LU)))
				goto nomem;
			if (!get_int(tok[1], 0, INT_MAX, &cur_e->tid) || !get_u64(tok[2], &cur_e->lun) ||
			    !get_u64(tok[3], &cur_e->age_ns) ||
			    !get_str(tok[4], cur_e->target, sizeof(cur_e->target)))
				goto bad;
		} else if (!strcmp(tok[0], "export") && ntok == 4) {
			uint64_t id;
			if (!(cur_e = stats_snap_add(s, STATS_KIND_EXPORT)))
				goto nomem;
			if (!get_u64(tok[1], &id) || id > UINT32_MAX || !get_u64(tok[2], &cur_e->age_ns) ||
			    !get_str(tok[3], cur_e->path, sizeof(cur_e->path)))
				goto bad;
			cur_e->export_id = (uint32_t)id;
		} else if (!strcmp(tok[0], "ctr") && ntok == 3 + STATS_NSTATUS + 16) {
			struct stats_counters *c;
			if (!cur_e)
				goto bad;
			c = &cur_e->c;
			if (!get_u64(tok[1], &c->started) || !get_u64(tok[2], &c->errors))
				goto bad;
			for (int k = 0; k < STATS_NSTATUS; k++)
				if (!get_u64(tok[3 + k], &c->status[k]))
					goto bad;
			for (int k = 0; k < 16; k++)
				if (!get_u64(tok[3 + STATS_NSTATUS + k], &c->sense_key[k]))
					goto bad;
		} else if (!strcmp(tok[0], "class") && ntok >= 5) {
			struct stats_class_ctr *cc;
			int k;
			if (!cur_e || !get_int(tok[1], 0, STATS_NCLASS - 1, &k))
				goto bad;
			cc = &cur_e->c.cls[k];
			if (!get_u64(tok[2], &cc->ops) || !get_u64(tok[3], &cc->bytes) ||
			    !get_u64(tok[4], &cc->lat_sum_ns))
				goto bad;
			memset(cc->hist, 0, sizeof(cc->hist));
			for (int i = 5; i < ntok; i++) {
				char *colon = strchr(tok[i], ':');
				uint64_t idx, cnt;
				if (!colon)
					goto bad;
				*colon = '\0';
				if (!get_u64(tok[i], &idx) || idx >= STATS_HIST_BUCKETS ||
				    !get_u64(colon + 1, &cnt))
					goto bad;
				cc->hist[idx] = cnt;
			}
		} else if (!strcmp(tok[0], "end") && ntok == 1) {
			seen_end = true;
		} else {
			goto bad;
		}
	}
	free(copy);
	if (!seen_end) {
		snprintf(err, errlen, "statistics: truncated data (no end line)");
		stats_snap_free(s);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "statistics: malformed line %d", lineno);
	free(copy);
	stats_snap_free(s);
	return -1;
nomem:
	snprintf(err, errlen, "out of memory");
	free(copy);
	stats_snap_free(s);
	return -1;
}

/* ======================================================================== */
/* Renderers                                                                */
/* ======================================================================== */

static const char *const class_names[STATS_NCLASS] = { "read", "write", "other" };
static const char *const status_names[STATS_NSTATUS] = {
	"check_condition", "busy", "reservation_conflict", "task_set_full", "other"
};
/* SPC-4 table 48 */
static const char *const sense_key_names[16] = {
	"NO_SENSE", "RECOVERED_ERROR", "NOT_READY", "MEDIUM_ERROR", "HARDWARE_ERROR",
	"ILLEGAL_REQUEST", "UNIT_ATTENTION", "DATA_PROTECT", "BLANK_CHECK", "VENDOR_SPECIFIC",
	"COPY_ABORTED", "ABORTED_COMMAND", "RESERVED_C", "VOLUME_OVERFLOW", "MISCOMPARE",
	"COMPLETED",
};

static const double pct_list[] = { 50, 90, 99, 99.9 };
static const char *const pct_names[] = { "p50", "p90", "p99", "p99.9" };
#define NPCT (sizeof(pct_list) / sizeof(pct_list[0]))

/* Seconds over which rates are computed: the interval, or the lifetime. */
static double rate_base(const struct stats_entry *e, double interval_s)
{
	if (interval_s > 0)
		return interval_s;
	return (double)e->age_ns / 1e9;
}

static double per_s(uint64_t v, double base)
{
	return base > 0 ? (double)v / base : 0.0;
}

static uint64_t inflight(const struct stats_entry *e)
{
	return sat_sub(e->c.started, ops_total(&e->c));
}

/* Average latency over the commands that have a latency sample. */
static double avg_us(const struct stats_class_ctr *cc)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++)
		n += cc->hist[i];
	return n ? (double)cc->lat_sum_ns / (double)n / 1e3 : 0.0;
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else if (*p >= 0x80)
			fputs("\\ufffd", out);  /* names are ASCII; never emit invalid UTF-8 */
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* Is the target group of tid present in s->t?  (LUs of unknown targets are
 * still shown, under a group of their own.) */
static const struct stats_target *find_target(const struct stats_snap *s, int tid)
{
	for (int i = 0; i < s->nt; i++)
		if (s->t[i].tid == tid)
			return &s->t[i];
	return NULL;
}

/* tids of LU entries without a target, in order of first appearance */
static bool orphan_first(const struct stats_snap *s, int i)
{
	if (s->e[i].kind != STATS_KIND_LU || find_target(s, s->e[i].tid))
		return false;
	for (int j = 0; j < i; j++)
		if (s->e[j].kind == STATS_KIND_LU && s->e[j].tid == s->e[i].tid)
			return false;
	return true;
}

static void text_entry(FILE *out, const struct stats_entry *e, double interval_s, const char *ind)
{
	const struct stats_counters *c = &e->c;
	double base = rate_base(e, interval_s);
	bool any = false;

	fprintf(out, "%s%-6s %10s %10s %12s %9s %9s %9s %9s %9s %9s\n", ind, "class", "IOPS",
		"MB/s", "ops", "avg_us", "p50_us", "p90_us", "p99_us", "p99.9_us", "max_us");
	for (int k = 0; k < STATS_NCLASS; k++) {
		const struct stats_class_ctr *cc = &c->cls[k];
		fprintf(out, "%s%-6s %10.1f %10.2f %12" PRIu64 " %9.1f", ind, class_names[k],
			per_s(cc->ops, base), per_s(cc->bytes, base) / 1e6, cc->ops,
			avg_us(cc));
		for (size_t p = 0; p < NPCT; p++)
			fprintf(out, " %9.1f", (double)stats_hist_percentile(cc->hist, pct_list[p]) / 1e3);
		fprintf(out, " %9.1f\n", (double)stats_hist_max(cc->hist) / 1e3);
	}
	fprintf(out, "%serrors: %" PRIu64, ind, c->errors);
	if (e->kind == STATS_KIND_LU) {
		fprintf(out, " (check condition %" PRIu64 ", busy %" PRIu64 ", reservation conflict %"
			PRIu64 ", task set full %" PRIu64 ", other %" PRIu64 ")",
			c->status[STATS_ST_CHECK_CONDITION], c->status[STATS_ST_BUSY],
			c->status[STATS_ST_RESERVATION_CONFLICT], c->status[STATS_ST_TASK_SET_FULL],
			c->status[STATS_ST_OTHER]);
	}
	fputc('\n', out);
	for (int k = 0; k < 16; k++) {
		if (!c->sense_key[k])
			continue;
		if (any)
			fprintf(out, ", %s %" PRIu64, sense_key_names[k], c->sense_key[k]);
		else
			fprintf(out, "%ssense keys: %s %" PRIu64, ind, sense_key_names[k], c->sense_key[k]);
		any = true;
	}
	if (any)
		fputc('\n', out);
}

static void text_lu_header(FILE *out, const struct stats_entry *e, double interval_s)
{
	fprintf(out, "    LUN %" PRIu64 ": %s %.1f s, in flight %" PRIu64 "\n", e->lun,
		interval_s > 0 ? "rates over the last" : "totals since creation,",
		interval_s > 0 ? interval_s : (double)e->age_ns / 1e9, inflight(e));
}

static void text_target(FILE *out, const struct stats_snap *s, int tid, const char *name,
			const struct stats_target *t, double interval_s)
{
	fprintf(out, "Target %d: %s\n", tid, name);
	fprintf(out, "    Sessions: %d\n", t ? t->nsessions : 0);
	for (int j = 0; t && j < t->ninitiators; j++)
		fprintf(out, "        Initiator: %s\n", t->initiators[j]);
	for (int i = 0; i < s->n; i++) {
		const struct stats_entry *e = &s->e[i];
		if (e->kind != STATS_KIND_LU || e->tid != tid)
			continue;
		text_lu_header(out, e, interval_s);
		text_entry(out, e, interval_s, "        ");
	}
}

void stats_render_text(FILE *out, const struct stats_snap *s, double interval_s)
{
	for (int i = 0; i < s->nt; i++)
		text_target(out, s, s->t[i].tid, s->t[i].name, &s->t[i], interval_s);
	for (int i = 0; i < s->n; i++)
		if (orphan_first(s, i))
			text_target(out, s, s->e[i].tid, s->e[i].target, NULL, interval_s);
	for (int i = 0; i < s->n; i++) {
		const struct stats_entry *e = &s->e[i];
		if (e->kind != STATS_KIND_EXPORT)
			continue;
		fprintf(out, "NFS export %" PRIu32 ": %s\n", e->export_id, e->path);
		fprintf(out, "    %s %.1f s\n",
			interval_s > 0 ? "rates over the last" : "totals since the first operation,",
			interval_s > 0 ? interval_s : (double)e->age_ns / 1e9);
		text_entry(out, e, interval_s, "    ");
	}
}

static void json_num(FILE *out, double v)
{
	/* JSON has no NaN/Inf; our values are finite, but be sure */
	if (!(v == v) || v > 1e300 || v < -1e300)
		v = 0;
	fprintf(out, "%.3f", v);
}

static void json_entry_body(FILE *out, const struct stats_entry *e, double interval_s)
{
	const struct stats_counters *c = &e->c;
	double base = rate_base(e, interval_s);
	bool first = true;

	fputs("\"age_s\": ", out);
	json_num(out, (double)e->age_ns / 1e9);
	fprintf(out, ", \"inflight\": %" PRIu64, inflight(e));
	for (int k = 0; k < STATS_NCLASS; k++) {
		const struct stats_class_ctr *cc = &c->cls[k];
		fprintf(out, ", \"%s\": {\"ops\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"iops\": ",
			class_names[k], cc->ops, cc->bytes);
		json_num(out, per_s(cc->ops, base));
		fputs(", \"bytes_per_s\": ", out);
		json_num(out, per_s(cc->bytes, base));
		fputs(", \"latency_us\": {\"avg\": ", out);
		json_num(out, avg_us(cc));
		for (size_t p = 0; p < NPCT; p++) {
			fprintf(out, ", \"%s\": ", pct_names[p]);
			json_num(out, (double)stats_hist_percentile(cc->hist, pct_list[p]) / 1e3);
		}
		fputs(", \"max\": ", out);
		json_num(out, (double)stats_hist_max(cc->hist) / 1e3);
		fputs("}}", out);
	}
	fprintf(out, ", \"errors\": {\"total\": %" PRIu64, c->errors);
	if (e->kind == STATS_KIND_LU) {
		for (int k = 0; k < STATS_NSTATUS; k++)
			fprintf(out, ", \"%s\": %" PRIu64, status_names[k], c->status[k]);
		fputs(", \"sense_keys\": {", out);
		for (int k = 0; k < 16; k++) {
			if (!c->sense_key[k])
				continue;
			fprintf(out, "%s\"%s\": %" PRIu64, first ? "" : ", ", sense_key_names[k],
				c->sense_key[k]);
			first = false;
		}
		fputs("}", out);
	}
	fputs("}", out);
}

static void json_target(FILE *out, const struct stats_snap *s, int tid, const char *name,
			const struct stats_target *t, double interval_s)
{
	bool first = true;

	fprintf(out, "{\"tid\": %d, \"name\": ", tid);
	json_str(out, name);
	fprintf(out, ", \"sessions\": %d, \"initiators\": [", t ? t->nsessions : 0);
	for (int j = 0; t && j < t->ninitiators; j++) {
		if (j)
			fputs(", ", out);
		json_str(out, t->initiators[j]);
	}
	fputs("], \"luns\": [", out);
	for (int i = 0; i < s->n; i++) {
		const struct stats_entry *e = &s->e[i];
		if (e->kind != STATS_KIND_LU || e->tid != tid)
			continue;
		fprintf(out, "%s{\"lun\": %" PRIu64 ", ", first ? "" : ", ", e->lun);
		json_entry_body(out, e, interval_s);
		fputs("}", out);
		first = false;
	}
	fputs("]}", out);
}

void stats_render_json(FILE *out, const struct stats_snap *s, double interval_s)
{
	bool first = true;

	fputs("{\"interval_s\": ", out);
	if (interval_s > 0)
		json_num(out, interval_s);
	else
		fputs("null", out);
	fputs(", \"targets\": [", out);
	for (int i = 0; i < s->nt; i++) {
		fputs(first ? "" : ", ", out);
		json_target(out, s, s->t[i].tid, s->t[i].name, &s->t[i], interval_s);
		first = false;
	}
	for (int i = 0; i < s->n; i++) {
		if (!orphan_first(s, i))
			continue;
		fputs(first ? "" : ", ", out);
		json_target(out, s, s->e[i].tid, s->e[i].target, NULL, interval_s);
		first = false;
	}
	fputs("], \"exports\": [", out);
	first = true;
	for (int i = 0; i < s->n; i++) {
		const struct stats_entry *e = &s->e[i];
		if (e->kind != STATS_KIND_EXPORT)
			continue;
		fprintf(out, "%s{\"export_id\": %" PRIu32 ", \"path\": ", first ? "" : ", ", e->export_id);
		json_str(out, e->path);
		fputs(", ", out);
		json_entry_body(out, e, interval_s);
		fputs("}", out);
		first = false;
	}
	fputs("]}\n", out);
}

/* ---- Prometheus text exposition format 0.0.4 ---- */

static void prom_label(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20 || *p == 0x7f)
			fputc('?', out);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void prom_labels(FILE *out, const struct stats_entry *e)
{
	if (e->kind == STATS_KIND_LU) {
		fprintf(out, "tid=\"%d\",target=", e->tid);
		prom_label(out, e->target);
		fprintf(out, ",lun=\"%" PRIu64 "\"", e->lun);
	} else {
		fprintf(out, "export_id=\"%" PRIu32 "\",path=", e->export_id);
		prom_label(out, e->path);
	}
}

static void prom_head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Histogram boundaries: powers of four from 1.024 us to 68.7 s.  Each is a
 * bucket boundary of ours (a power of two), so "<= le" counts are exact. */
#define PROM_LE_FIRST 10
#define PROM_LE_LAST  36
#define PROM_LE_STEP  2

static void prom_kind(FILE *out, const struct stats_snap *s, enum stats_kind kind)
{
	const char *pfx = kind == STATS_KIND_LU ? "ringstor_lun" : "ringstor_export";
	char name[64];
	bool have = false;

	for (int i = 0; i < s->n; i++)
		have |= s->e[i].kind == kind;
	if (!have)
		return;

	snprintf(name, sizeof(name), "%s_ops_total", pfx);
	prom_head(out, name, "counter", "Operations completed, by class (read, write, other).");
	for (int i = 0; i < s->n; i++) {
		if (s->e[i].kind != kind)
			continue;
		for (int k = 0; k < STATS_NCLASS; k++) {
			fprintf(out, "%s{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, ",class=\"%s\"} %" PRIu64 "\n", class_names[k], s->e[i].c.cls[k].ops);
		}
	}
	snprintf(name, sizeof(name), "%s_bytes_total", pfx);
	prom_head(out, name, "counter", "Bytes moved by successful operations, by class.");
	for (int i = 0; i < s->n; i++) {
		if (s->e[i].kind != kind)
			continue;
		for (int k = 0; k < STATS_NCLASS; k++) {
			fprintf(out, "%s{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, ",class=\"%s\"} %" PRIu64 "\n", class_names[k], s->e[i].c.cls[k].bytes);
		}
	}
	snprintf(name, sizeof(name), "%s_errors_total", pfx);
	prom_head(out, name, "counter", kind == STATS_KIND_LU
		  ? "Commands that ended with a status other than GOOD, by status."
		  : "Operations that ended with a status other than NFS3_OK.");
	for (int i = 0; i < s->n; i++) {
		if (s->e[i].kind != kind)
			continue;
		if (kind == STATS_KIND_EXPORT) {
			fprintf(out, "%s{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, "} %" PRIu64 "\n", s->e[i].c.errors);
			continue;
		}
		for (int k = 0; k < STATS_NSTATUS; k++) {
			fprintf(out, "%s{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, ",status=\"%s\"} %" PRIu64 "\n", status_names[k], s->e[i].c.status[k]);
		}
	}
	if (kind == STATS_KIND_LU) {
		snprintf(name, sizeof(name), "%s_sense_key_total", pfx);
		prom_head(out, name, "counter", "CHECK CONDITION responses by sense key.");
		for (int i = 0; i < s->n; i++) {
			if (s->e[i].kind != kind)
				continue;
			for (int k = 0; k < 16; k++) {
				if (!s->e[i].c.sense_key[k])
					continue;
				fprintf(out, "%s{", name);
				prom_labels(out, &s->e[i]);
				fprintf(out, ",sense_key=\"%s\"} %" PRIu64 "\n", sense_key_names[k],
					s->e[i].c.sense_key[k]);
			}
		}
		snprintf(name, sizeof(name), "%s_inflight", pfx);
		prom_head(out, name, "gauge", "Commands started and not yet completed.");
		for (int i = 0; i < s->n; i++) {
			if (s->e[i].kind != kind)
				continue;
			fprintf(out, "%s{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, "} %" PRIu64 "\n", inflight(&s->e[i]));
		}
	}
	snprintf(name, sizeof(name), "%s_latency_seconds", pfx);
	prom_head(out, name, "histogram", kind == STATS_KIND_LU
		  ? "Command latency in the SCSI core and backend, by class."
		  : "Operation latency from decode to reply, by class.");
	for (int i = 0; i < s->n; i++) {
		if (s->e[i].kind != kind)
			continue;
		for (int k = 0; k < STATS_NCLASS; k++) {
			const struct stats_class_ctr *cc = &s->e[i].c.cls[k];
			uint64_t cum = 0;
			unsigned b = 0;
			for (int le = PROM_LE_FIRST; le <= PROM_LE_LAST; le += PROM_LE_STEP) {
				uint64_t bound = (uint64_t)1 << le;
				/* buckets entirely below 2^le (exactly: bucket highs < bound) */
				for (; b < STATS_HIST_BUCKETS && stats_hist_high(b) < bound; b++)
					cum += cc->hist[b];
				fprintf(out, "%s_bucket{", name);
				prom_labels(out, &s->e[i]);
				fprintf(out, ",class=\"%s\",le=\"%.12g\"} %" PRIu64 "\n", class_names[k],
					(double)bound / 1e9, cum);
			}
			fprintf(out, "%s_bucket{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, ",class=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", class_names[k], cc->ops);
			fprintf(out, "%s_sum{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, ",class=\"%s\"} %.9f\n", class_names[k], (double)cc->lat_sum_ns / 1e9);
			fprintf(out, "%s_count{", name);
			prom_labels(out, &s->e[i]);
			fprintf(out, ",class=\"%s\"} %" PRIu64 "\n", class_names[k], cc->ops);
		}
	}
}

void stats_render_prometheus(FILE *out, const struct stats_snap *s)
{
	if (s->nt) {
		prom_head(out, "ringstor_target_sessions", "gauge", "iSCSI sessions (I_T nexuses) logged in.");
		for (int i = 0; i < s->nt; i++) {
			fprintf(out, "ringstor_target_sessions{tid=\"%d\",target=", s->t[i].tid);
			prom_label(out, s->t[i].name);
			fprintf(out, "} %d\n", s->t[i].nsessions);
		}
	}
	prom_kind(out, s, STATS_KIND_LU);
	prom_kind(out, s, STATS_KIND_EXPORT);
}

/* ======================================================================== */
/* Collector and Prometheus endpoint                                        */
/* ======================================================================== */

static _Atomic(stats_collect_fn) collector;

void stats_set_collector(stats_collect_fn fn)
{
	atomic_store(&collector, fn);
}

int stats_collect(struct stats_snap *s, int sel)
{
	stats_collect_fn fn = atomic_load(&collector);

	stats_snap_init(s);
	s->time_ns = stats_now_ns();
	if (!fn)
		return 0;
	return fn(s, sel);
}

static struct {
	bool running;
	int lfd, stop_fd;
	pthread_t thread;
} prom = { .lfd = -1, .stop_fd = -1 };

#define PROM_REQ_MAX 8192

static void prom_send(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void prom_reply(int fd, const char *status, const char *ctype, const char *body,
		       size_t blen, bool head_only)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", status, ctype, blen);

	prom_send(fd, hdr, (size_t)n);
	if (!head_only && blen)
		prom_send(fd, body, blen);
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3);
 * the method is upper-case letters, the target printable ASCII. */
static bool parse_request_line(const char *req, char *method, size_t mlen, char *target,
			       size_t tlen)
{
	size_t eol = strcspn(req, "\r\n"), m, t;
	const char *p = req;

	if (!req[eol])
		return false;           /* no complete line */
	for (m = 0; p[m] >= 'A' && p[m] <= 'Z'; m++)
		;
	if (m == 0 || m >= mlen || p[m] != ' ')
		return false;
	memcpy(method, p, m);
	method[m] = '\0';
	p += m + 1;
	for (t = 0; p + t < req + eol && p[t] > ' ' && p[t] < 0x7f; t++)
		;
	if (t == 0 || t >= tlen || p[t] != ' ')
		return false;
	memcpy(target, p, t);
	target[t] = '\0';
	p += t + 1;
	return (size_t)(req + eol - p) == 8 && !strncmp(p, "HTTP/1.", 7) && (p[7] == '0' || p[7] == '1');
}

/* One HTTP/1.x request per connection (RFC 9112 3: request-line), read with
 * a timeout and a size bound; anything but GET/HEAD /metrics is refused. */
static void prom_serve(int fd)
{
	char req[PROM_REQ_MAX + 1];
	size_t len = 0;
	struct timeval tv = { .tv_sec = 2 };
	char method[8], target[256];
	bool head;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 5;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < PROM_REQ_MAX) {
		ssize_t n = recv(fd, req + len, PROM_REQ_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	if (!parse_request_line(req, method, sizeof(method), target, sizeof(target))) {
		static const char msg[] = "bad request\n";
		prom_reply(fd, "400 Bad Request", "text/plain", msg, sizeof(msg) - 1, false);
		return;
	}
	head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") != 0 && !head) {
		static const char msg[] = "method not allowed\n";
		prom_reply(fd, "405 Method Not Allowed", "text/plain", msg, sizeof(msg) - 1, false);
		return;
	}
	if (strcmp(target, "/metrics") != 0 && strncmp(target, "/metrics?", 9) != 0) {
		static const char msg[] = "not found: try /metrics\n";
		prom_reply(fd, "404 Not Found", "text/plain", msg, sizeof(msg) - 1, head);
		return;
	}
	struct stats_snap s;
	char *body = NULL;
	size_t blen = 0;
	FILE *out = open_memstream(&body, &blen);

	if (!out) {
		prom_reply(fd, "500 Internal Server Error", "text/plain", "", 0, false);
		return;
	}
	stats_collect(&s, STATS_SEL_ALL);
	stats_render_prometheus(out, &s);
	stats_snap_free(&s);
	fclose(out);
	prom_reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, blen, head);
	free(body);
}

static void *prom_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = prom.lfd, .events = POLLIN },
			{ .fd = prom.stop_fd, .events = POLLIN },
		};
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("prometheus: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(prom.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		prom_serve(fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

int stats_prometheus_start(const char *hostport)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	int fd = -1, ret, one = 1;
	sigset_t all, old;

	if (prom.running)
		return -EBUSY;
	if (!hostport || !*hostport)
		return -EINVAL;
	/* "host:port", "[v6]:port" */
	if (hostport[0] == '[') {
		const char *rb = strchr(hostport, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - hostport - 1) >= sizeof(host))
			goto badaddr;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - hostport - 1), hostport + 1);
		port = rb + 2;
	} else {
		colon = strrchr(hostport, ':');
		if (!colon || (size_t)(colon - hostport) >= sizeof(host))
			goto badaddr;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
		port = colon + 1;
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 || atoi(port) > 65535)
		goto badaddr;
	ret = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (ret != 0 || !ai) {
		log_err("prometheus: cannot resolve '%s': %s", hostport, gai_strerror(ret));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		ret = -errno;
		goto fail;
	}
	freeaddrinfo(ai);
	ai = NULL;
	prom.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (prom.stop_fd < 0) {
		ret = -errno;
		goto fail;
	}
	prom.lfd = fd;
	/* like the control thread: no signals here */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&prom.thread, NULL, prom_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		ret = -ret;
		close(prom.stop_fd);
		prom.stop_fd = prom.lfd = -1;
		goto fail;
	}
	prom.running = true;
	log_info("prometheus: serving /metrics on %s", hostport);
	return 0;
fail:
	log_err("prometheus: cannot listen on %s: %s", hostport, strerror(-ret));
	if (ai)
		freeaddrinfo(ai);
	if (fd >= 0)
		close(fd);
	return ret;
badaddr:
	log_err("prometheus: '%s' is not host:port", hostport);
	return -EINVAL;
}

void stats_prometheus_stop(void)
{
	uint64_t one = 1;

	if (!prom.running)
		return;
	if (write(prom.stop_fd, &one, sizeof(one)) < 0)
		log_warn("prometheus: cannot wake the thread: %s", strerror(errno));
	pthread_join(prom.thread, NULL);
	close(prom.lfd);
	close(prom.stop_fd);
	prom.lfd = prom.stop_fd = -1;
	prom.running = false;
}
