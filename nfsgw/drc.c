/* drc.c - duplicate request cache, see drc.h. */
#include "drc.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../core/reactor.h"

#define DRC_BUCKETS 256
#define DRC_CSUM_LEN 256     /* bytes of arguments checksummed (Linux: RC_CSUMLEN) */

struct drc_key {
	uint8_t addr[16];
	uint32_t family;
	uint32_t xid, prog, vers, proc, args_len;
	uint64_t csum;
};

struct drc_entry {
	struct drc_key key;
	bool done;
	uint64_t stamp_ms;      /* creation, then completion */
	uint8_t *reply;
	size_t reply_len;
	struct drc_entry *next;
};

struct drc_bucket {
	pthread_mutex_t lock;
	struct drc_entry *head;
	unsigned n;
};

static struct drc_bucket g_buckets[DRC_BUCKETS];
static unsigned g_per_bucket;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t st_lookups, st_replays, st_inprog, st_evict, st_uncached;
static atomic_uint g_entries;

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void key_from_call(const struct rpc_call *c, struct drc_key *k)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
	size_t n = c->args_len < DRC_CSUM_LEN ? c->args_len : DRC_CSUM_LEN;

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		k->family = AF_INET;
		memcpy(k->addr, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		/* An IPv4-mapped peer is the same client as its IPv4 form. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			k->family = AF_INET;
			memcpy(k->addr, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			k->family = AF_INET6;
			memcpy(k->addr, &s6->sin6_addr, 16);
		}
	}
	k->xid = c->xid;
	k->prog = c->prog;
	k->vers = c->vers;
	k->proc = c->proc;
	k->args_len = c->args_len;
	k->csum = fnv1a(0xcbf29ce484222325ull, c->args, c->args ? n : 0);
}

static unsigned key_bucket(const struct drc_key *k)
{
	uint64_t h = fnv1a(0xcbf29ce484222325ull, k, sizeof(*k));
	return (unsigned)(h ^ (h >> 32)) % DRC_BUCKETS;
}

static bool key_eq(const struct drc_key *a, const struct drc_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static void entry_free(struct drc_entry *e)
{
	free(e->reply);
	free(e);
	atomic_fetch_sub(&g_entries, 1);
}

static void bucket_empty(struct drc_bucket *b)
{
	while (b->head) {
		struct drc_entry *e = b->head;
		b->head = e->next;
		entry_free(e);
	}
	b->n = 0;
}

static void set_size(unsigned max_entries)
{
	unsigned per = max_entries / DRC_BUCKETS;
	g_per_bucket = per ? per : 1;
}

static void default_init(void)
{
	for (int i = 0; i < DRC_BUCKETS; i++) {
		pthread_mutex_init(&g_buckets[i].lock, NULL);
		g_buckets[i].head = NULL;
		g_buckets[i].n = 0;
	}
	if (!g_per_bucket)
		set_size(DRC_DEFAULT_ENTRIES);
}

int drc_init(unsigned max_entries)
{
	pthread_once(&g_once, default_init);
	drc_clear();
	set_size(max_entries ? max_entries : DRC_DEFAULT_ENTRIES);
	return 0;
}

void drc_clear(void)
{
	pthread_once(&g_once, default_init);
	for (int i = 0; i < DRC_BUCKETS; i++) {
		pthread_mutex_lock(&g_buckets[i].lock);
		bucket_empty(&g_buckets[i]);
		pthread_mutex_unlock(&g_buckets[i].lock);
	}
}

/* Make room for one entry in a full bucket: drop expired or the oldest
 * finished entry.  In-progress entries are never evicted (their owner will
 * store into them).  Called with the bucket lock held. */
static bool bucket_make_room(struct drc_bucket *b, uint64_t now)
{
	struct drc_entry **pp, **oldest = NULL;

	for (pp = &b->head; *pp; pp = &(*pp)->next) {
		struct drc_entry *e = *pp;
		if (!e->done)
			continue;
		if (!oldest || e->stamp_ms < (*oldest)->stamp_ms)
			oldest = pp;
	}
	if (!oldest)
		return false;
	{
		struct drc_entry *e = *oldest;
		*oldest = e->next;
		b->n--;
		if (now - e->stamp_ms < DRC_TTL_MS)
			atomic_fetch_add(&st_evict, 1);
		entry_free(e);
	}
	return true;
}

enum drc_result drc_lookup(const struct rpc_call *call, uint8_t **reply, size_t *reply_len)
{
	struct drc_key k;
	struct drc_bucket *b;
	struct drc_entry *e, **pp;
	uint64_t now = rs_now_ms();
	enum drc_result res = DRC_NEW;

	pthread_once(&g_once, default_init);
	*reply = NULL;
	*reply_len = 0;
	key_from_call(call, &k);
	b = &g_buckets[key_bucket(&k)];
	atomic_fetch_add(&st_lookups, 1);
	pthread_mutex_lock(&b->lock);
	for (pp = &b->head; (e = *pp); pp = &e->next) {
		if (!key_eq(&e->key, &k))
			continue;
		if (!e->done) {
			atomic_fetch_add(&st_inprog, 1);
			res = DRC_IN_PROGRESS;
			goto out;
		}
		if (now - e->stamp_ms < DRC_TTL_MS) {
			uint8_t *copy = malloc(e->reply_len ? e->reply_len : 1);
			if (copy) {
				memcpy(copy, e->reply, e->reply_len);
				*reply = copy;
				*reply_len = e->reply_len;
				atomic_fetch_add(&st_replays, 1);
				res = DRC_REPLAY;
				goto out;
			}
		}
		/* Expired (or no memory to replay): execute again, afresh. */
		*pp = e->next;
		b->n--;
		entry_free(e);
		break;
	}
	if (b->n >= g_per_bucket && !bucket_make_room(b, now)) {
		atomic_fetch_add(&st_uncached, 1);
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		atomic_fetch_add(&st_uncached, 1);
		goto out;
	}
	e->key = k;
	e->stamp_ms = now;
	e->next = b->head;
	b->head = e;
	b->n++;
	atomic_fetch_add(&g_entries, 1);
out:
	pthread_mutex_unlock(&b->lock);
	return res;
}

static struct drc_entry **find_pending(struct drc_bucket *b, const struct drc_key *k)
{
	struct drc_entry **pp;

	for (pp = &b->head; *pp; pp = &(*pp)->next)
		if (!(*pp)->done && key_eq(&(*pp)->key, k))
			return pp;
	return NULL;
}

void drc_store(const struct rpc_call *call, const void *reply, size_t len,
	       const void *payload, size_t payload_len)
{
	struct drc_key k;
	struct drc_bucket *b;
	struct drc_entry **pp, *e;
	size_t pad = (4 - (payload_len & 3)) & 3;
	size_t total = len + payload_len + pad;
	uint8_t *copy = NULL;

	pthread_once(&g_once, default_init);
	key_from_call(call, &k);
	b = &g_buckets[key_bucket(&k)];
	if (total <= DRC_MAX_REPLY) {
		copy = malloc(total ? total : 1);
		if (copy) {
			memcpy(copy, reply, len);
			if (payload_len)
				memcpy(copy + len, payload, payload_len);
			memset(copy + len + payload_len, 0, pad);
		}
	}
	pthread_mutex_lock(&b->lock);
	pp = find_pending(b, &k);
	if (pp) {
		e = *pp;
		if (copy) {
			e->reply = copy;
			e->reply_len = total;
			e->done = true;
			e->stamp_ms = rs_now_ms();
			copy = NULL;
		} else {
			/* Too big to keep: forget it rather than block duplicates forever. */
			*pp = e->next;
			b->n--;
			entry_free(e);
			atomic_fetch_add(&st_uncached, 1);
		}
	}
	pthread_mutex_unlock(&b->lock);
	free(copy);
}

void drc_abort(const struct rpc_call *call)
{
	struct drc_key k;
	struct drc_bucket *b;
	struct drc_entry **pp;

	pthread_once(&g_once, default_init);
	key_from_call(call, &k);
	b = &g_buckets[key_bucket(&k)];
	pthread_mutex_lock(&b->lock);
	pp = find_pending(b, &k);
	if (pp) {
		struct drc_entry *e = *pp;
		*pp = e->next;
		b->n--;
		entry_free(e);
	}
	pthread_mutex_unlock(&b->lock);
}

void drc_get_stats(struct drc_stats *st)
{
	st->lookups = atomic_load(&st_lookups);
	st->replays = atomic_load(&st_replays);
	st->in_progress_drops = atomic_load(&st_inprog);
	st->evictions = atomic_load(&st_evict);
	st->uncached = atomic_load(&st_uncached);
	st->entries = atomic_load(&g_entries);
}
