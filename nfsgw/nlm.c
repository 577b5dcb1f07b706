/* nlm.c - the Network Lock Manager server, versions 1, 3 and 4 (X/Open
 * XNFS, "Protocols for X/Open PC Interworking: SMB, Version 2", chapters 9,
 * 10 and 14; RFC 1813 section 6), and the lock table behind it (see nlm.h).
 *
 * Procedures: NULL, TEST, LOCK (non-blocking and blocking), CANCEL, UNLOCK,
 * GRANTED (we are no client: always "no such request"), the asynchronous
 * TEST_MSG .. UNLOCK_MSG (answered by calling the client's *_RES procedure
 * from the callback thread), the *_RES (accepted and ignored), SHARE and
 * UNSHARE (DOS share reservations, XNFS 14.1.9), NM_LOCK (a lock without
 * status monitoring) and FREE_ALL.
 *
 * Blocking locks (XNFS 10.3.2): a conflicting LOCK with block = TRUE is
 * queued and answered NLM4_BLOCKED; whenever locks on the file are released
 * the queue is scanned in arrival order and every request that no longer
 * conflicts is granted - applied to the table first, so nobody can steal it -
 * and the client is told with an NLM_GRANTED call to its own lock manager
 * (port found through its portmapper), from a callback thread because that
 * call blocks.  If the client answers NLM4_DENIED (it gave up meanwhile) the
 * lock is released again; if it cannot be reached we retry a few times and
 * otherwise keep the lock: a Linux client re-sends its blocking LOCK every
 * 30 seconds and then finds it granted (same owner, same range).
 *
 * Grace period (XNFS 9.3 "Crash recovery"): after a restart, clients that
 * held locks (nsm.c remembers them) get SM_NOTIFY and may reclaim their locks
 * (reclaim = TRUE) for nlm_grace seconds, during which new locks and shares
 * are refused with NLM4_DENIED_GRACE_PERIOD (TEST too: the answer could be
 * wrong before the reclaims are in).  Without any such client the grace
 * period is skipped.  UNLOCK, CANCEL and UNSHARE are always accepted.
 *
 * Deadlock detection (NLM4_DEADLCK) is not done: a blocked request simply
 * waits; clients cancel when their process is interrupted.
 */
#include "nlm.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/acl.h"
#include "../core/log.h"
#include "exports.h"
#include "fh.h"
#include "nsm.h"
#include "portmap.h"
#include "rpc_internal.h"
#include "xdr.h"

#define NLM_MAX_LOCKS   (1 << 20)
#define NLM_MAX_BLOCKED 65536
#define NLM_MAX_SHARES  65536
#define NLM_HASH        1024
#define NLM_GRANT_TRIES 6

/* ================================================================ table */

/* An owner's identity (XNFS 10.2: caller_name, svid and oh together). */
struct owner {
	char *caller;
	uint8_t *oh;
	uint32_t ohlen;
	int32_t svid;
};

struct lk {                     /* a granted byte-range lock */
	struct lk *next;
	struct owner o;
	bool excl;
	uint64_t start, end;        /* inclusive */
	struct sockaddr_storage peer;
};

struct blk {                    /* a queued blocking request */
	struct blk *next;
	struct owner o;
	bool excl;
	uint64_t start, end;
	struct sockaddr_storage peer, local;
	uint32_t vers;
	bool udp;
	uint32_t cookielen;
	uint8_t *cookie;
};

struct shr {                    /* a share reservation */
	struct shr *next;
	struct owner o;             /* svid unused */
	uint32_t mode, access;
	struct sockaddr_storage peer;
};

struct nfile {
	struct nfile *next;
	uint32_t export_id;
	uint32_t fhlen;
	uint8_t *fh;
	struct lk *locks;
	struct blk *blocked;        /* arrival order */
	struct shr *shares;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nfile *g_files[NLM_HASH];
static int g_nlocks, g_nblocked, g_nshares;
static void (*g_grant_hook)(const struct nlm_grant *g);

/* Granted blocked requests collected under the mutex, announced after. */
struct grant_list {
	struct nlm_grant **g;
	int n, cap;
};

static uint32_t fh_hash(const uint8_t *fh, uint32_t len)
{
	uint32_t h = 2166136261u;               /* FNV-1a */

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ fh[i]) * 16777619u;
	return h % NLM_HASH;
}

uint64_t nlm_range_end(uint64_t offset, uint64_t len)
{
	/* XNFS 10.2: l_len 0 means "to the end of the file"; a range past the
	 * largest offset is clamped there as fcntl(2) would. */
	if (len == 0 || len - 1 > NLM_OFFSET_MAX - offset)
		return NLM_OFFSET_MAX;
	return offset + len - 1;
}

static bool owner_eq(const struct owner *o, const struct nlm_req *r)
{
	return o->svid == r->svid && o->ohlen == r->ohlen && !strcmp(o->caller, r->caller) &&
	       (!r->ohlen || !memcmp(o->oh, r->oh, r->ohlen));
}

/* Share owners are (caller_name, oh): nlm4_share has no svid. */
static bool share_owner_eq(const struct owner *o, const struct nlm_req *r)
{
	return o->ohlen == r->ohlen && !strcmp(o->caller, r->caller) &&
	       (!r->ohlen || !memcmp(o->oh, r->oh, r->ohlen));
}

static bool overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

/* One allocation: the entry, then caller name and oh. */
static void *entry_new(size_t size, size_t owner_off, const char *caller, const uint8_t *oh,
		       uint32_t ohlen, int32_t svid)
{
	size_t cl = strlen(caller) + 1;
	uint8_t *p = calloc(1, size + cl + ohlen);
	struct owner *o;

	if (!p)
		return NULL;
	o = (struct owner *)(p + owner_off);
	o->caller = (char *)p + size;
	memcpy(o->caller, caller, cl);
	o->oh = p + size + cl;
	if (ohlen)
		memcpy(o->oh, oh, ohlen);
	o->ohlen = ohlen;
	o->svid = svid;
	return p;
}

#define ENTRY_NEW(type, caller, oh, ohlen, svid) \
	((struct type *)entry_new(sizeof(struct type), offsetof(struct type, o), caller, oh, ohlen, svid))

static struct lk *lk_new(const struct nlm_req *r)
{
	struct lk *l = ENTRY_NEW(lk, r->caller, r->oh, r->ohlen, r->svid);

	if (!l)
		return NULL;
	l->excl = r->exclusive;
	l->start = r->start;
	l->end = r->end;
	if (r->peer)
		memcpy(&l->peer, r->peer, r->peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
									 : sizeof(struct sockaddr_in));
	return l;
}

static struct lk *lk_clone(const struct lk *src)
{
	struct lk *l = ENTRY_NEW(lk, src->o.caller, src->o.oh, src->o.ohlen, src->o.svid);

	if (!l)
		return NULL;
	l->excl = src->excl;
	l->start = src->start;
	l->end = src->end;
	l->peer = src->peer;
	return l;
}

static void copy_peer(struct sockaddr_storage *dst, const struct sockaddr *peer)
{
	memset(dst, 0, sizeof(*dst));
	if (peer)
		memcpy(dst, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							      : sizeof(struct sockaddr_in));
}

static struct nfile *file_find(const uint8_t *fh, uint32_t fhlen, bool create, uint32_t export_id)
{
	uint32_t h = fh_hash(fh, fhlen);
	struct nfile *f;

	for (f = g_files[h]; f; f = f->next)
		if (f->fhlen == fhlen && !memcmp(f->fh, fh, fhlen))
			return f;
	if (!create)
		return NULL;
	f = calloc(1, sizeof(*f) + fhlen);
	if (!f)
		return NULL;
	f->fh = (uint8_t *)(f + 1);
	memcpy(f->fh, fh, fhlen);
	f->fhlen = fhlen;
	f->export_id = export_id;
	f->next = g_files[h];
	g_files[h] = f;
	return f;
}

static void file_maybe_free(struct nfile *f)
{
	struct nfile **pp;

	if (f->locks || f->blocked || f->shares)
		return;
	for (pp = &g_files[fh_hash(f->fh, f->fhlen)]; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			free(f);
			return;
		}
}

/* A granted lock of another owner that conflicts with r (POSIX: two locks
 * conflict when they overlap, belong to different owners and one of them is
 * exclusive). */
static struct lk *find_conflict(struct nfile *f, const struct nlm_req *r)
{
	for (struct lk *l = f->locks; l; l = l->next)
		if (overlap(l->start, l->end, r->start, r->end) && (l->excl || r->exclusive) &&
		    !owner_eq(&l->o, r))
			return l;
	return NULL;
}

/* Remove [start, end] from r's owner's locks (fcntl F_UNLCK semantics):
 * covered locks go, partly covered ones shrink, one that strictly contains
 * the range is split in two using *spare (which is consumed then). */
static void remove_range(struct nfile *f, const struct nlm_req *r, uint64_t start, uint64_t end,
			 struct lk **spare)
{
	struct lk **pp = &f->locks;

	while (*pp) {
		struct lk *l = *pp;

		if (!owner_eq(&l->o, r) || !overlap(l->start, l->end, start, end)) {
			pp = &l->next;
			continue;
		}
		if (l->start >= start && l->end <= end) {
			*pp = l->next;
			free(l);
			g_nlocks--;
			continue;
		}
		if (l->start < start && l->end > end && *spare) {
			struct lk *tail = *spare;

			/* the caller allocated it beforehand (no failure half-way) */
			*spare = NULL;
			tail->excl = l->excl;
			tail->start = end + 1;
			tail->end = l->end;
			tail->peer = l->peer;
			l->end = start - 1;
			tail->next = l->next;
			l->next = tail;
			g_nlocks++;
			pp = &tail->next;
			continue;
		}
		if (l->start < start)
			l->end = start - 1;
		else
			l->start = end + 1;
		pp = &l->next;
	}
}

/* The owner's lock that strictly contains [start, end] (needs a split). */
static struct lk *needs_split(struct nfile *f, const struct nlm_req *r, uint64_t start, uint64_t end)
{
	for (struct lk *l = f->locks; l; l = l->next)
		if (owner_eq(&l->o, r) && l->start < start && l->end > end)
			return l;
	return NULL;
}

/* Apply r to the table (no conflict): carve its range out of the owner's
 * locks, insert it and merge it with the owner's adjacent locks of the same
 * type.  NLM4_GRANTED or NLM4_DENIED_NOLOCKS (nothing changed then). */
static uint32_t apply_lock(struct nfile *f, const struct nlm_req *r)
{
	struct lk *nl, *spare = NULL, *split;
	uint64_t start = r->start, end = r->end;

	if (g_nlocks + 2 > NLM_MAX_LOCKS)
		return NLM4_DENIED_NOLOCKS;
	nl = lk_new(r);
	if (!nl)
		return NLM4_DENIED_NOLOCKS;
	split = needs_split(f, r, start, end);
	if (split && split->excl != r->exclusive && !(spare = lk_clone(split))) {
		free(nl);
		return NLM4_DENIED_NOLOCKS;
	}
	if (split && split->excl == r->exclusive) {
		/* Already held with the same type: nothing changes. */
		free(nl);
		return NLM4_GRANTED;
	}
	remove_range(f, r, start, end, &spare);
	free(spare);
	/* Merge with adjacent locks of the same owner and type. */
	for (struct lk **pp = &f->locks; *pp;) {
		struct lk *l = *pp;

		if (owner_eq(&l->o, r) && l->excl == nl->excl &&
		    ((l->end != NLM_OFFSET_MAX && l->end + 1 == nl->start) ||
		     (nl->end != NLM_OFFSET_MAX && nl->end + 1 == l->start))) {
			if (l->start < nl->start)
				nl->start = l->start;
			if (l->end > nl->end)
				nl->end = l->end;
			*pp = l->next;
			free(l);
			g_nlocks--;
			continue;
		}
		pp = &l->next;
	}
	nl->next = f->locks;
	f->locks = nl;
	g_nlocks++;
	return NLM4_GRANTED;
}

static struct nlm_grant *grant_new(const struct blk *b, const struct nfile *f)
{
	struct nlm_grant *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->peer = b->peer;
	g->local = b->local;
	g->vers = b->vers;
	g->udp = b->udp;
	g->cookielen = b->cookielen;
	if (b->cookielen)
		memcpy(g->cookie, b->cookie, b->cookielen);
	snprintf(g->caller, sizeof(g->caller), "%s", b->o.caller);
	g->fhlen = f->fhlen;
	memcpy(g->fh, f->fh, f->fhlen);
	g->ohlen = b->o.ohlen;
	if (b->o.ohlen)
		memcpy(g->oh, b->o.oh, b->o.ohlen);
	g->svid = b->o.svid;
	g->exclusive = b->excl;
	g->start = b->start;
	g->end = b->end;
	return g;
}

static void req_from_owner(struct nlm_req *r, const struct nfile *f, const struct owner *o, bool excl,
			   uint64_t start, uint64_t end, const struct sockaddr_storage *peer)
{
	memset(r, 0, sizeof(*r));
	r->fh = f->fh;
	r->fhlen = f->fhlen;
	r->export_id = f->export_id;
	r->caller = o->caller;
	r->svid = o->svid;
	r->oh = o->oh;
	r->ohlen = o->ohlen;
	r->exclusive = excl;
	r->start = start;
	r->end = end;
	r->peer = peer->ss_family ? (const struct sockaddr *)peer : NULL;
}

/* Grant, in arrival order, every queued request that no longer conflicts
 * (XNFS 10.3.2).  Frees f when it becomes empty: f is invalid afterwards. */
static void scan_blocked(struct nfile *f, struct grant_list *gl)
{
	struct blk **pp = &f->blocked;

	while (*pp) {
		struct blk *b = *pp;
		struct nlm_req r;

		req_from_owner(&r, f, &b->o, b->excl, b->start, b->end, &b->peer);
		if (find_conflict(f, &r)) {
			pp = &b->next;
			continue;
		}
		if (gl->n == gl->cap) {
			int ncap = gl->cap ? gl->cap * 2 : 8;
			struct nlm_grant **ng = realloc(gl->g, sizeof(*ng) * (size_t)ncap);
			if (!ng) {
				pp = &b->next;
				continue;
			}
			gl->g = ng;
			gl->cap = ncap;
		}
		gl->g[gl->n] = grant_new(b, f);
		if (!gl->g[gl->n] || apply_lock(f, &r) != NLM4_GRANTED) {
			/* out of memory: leave it queued for the next scan */
			free(gl->g[gl->n]);
			gl->g[gl->n] = NULL;
			pp = &b->next;
			continue;
		}
		gl->n++;
		*pp = b->next;
		free(b->cookie);
		free(b);
		g_nblocked--;
	}
	file_maybe_free(f);
}

static void default_grant(const struct nlm_grant *g);

static void announce(struct grant_list *gl)
{
	void (*hook)(const struct nlm_grant *g);

	pthread_mutex_lock(&g_mu);
	hook = g_grant_hook ? g_grant_hook : default_grant;
	pthread_mutex_unlock(&g_mu);
	for (int i = 0; i < gl->n; i++) {
		hook(gl->g[i]);
		free(gl->g[i]);
	}
	free(gl->g);
	gl->g = NULL;
	gl->n = gl->cap = 0;
}

void nlm_set_grant_hook(void (*hook)(const struct nlm_grant *g))
{
	pthread_mutex_lock(&g_mu);
	g_grant_hook = hook;
	pthread_mutex_unlock(&g_mu);
}

uint32_t nlm_tab_test(const struct nlm_req *r, struct nlm_holder *holder)
{
	struct nfile *f;
	struct lk *l;
	uint32_t st = NLM4_GRANTED;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, false, 0);
	if (f && (l = find_conflict(f, r))) {
		st = NLM4_DENIED;
		if (holder) {
			holder->exclusive = l->excl;
			holder->svid = l->o.svid;
			holder->ohlen = l->o.ohlen;
			memcpy(holder->oh, l->o.oh, l->o.ohlen);
			holder->start = l->start;
			holder->end = l->end;
		}
	}
	pthread_mutex_unlock(&g_mu);
	return st;
}

uint32_t nlm_tab_lock(const struct nlm_req *r, const struct nlm_block_info *blk)
{
	struct grant_list gl = { 0 };
	struct nfile *f;
	uint32_t st;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, true, r->export_id);
	if (!f) {
		pthread_mutex_unlock(&g_mu);
		return NLM4_DENIED_NOLOCKS;
	}
	if (!find_conflict(f, r)) {
		st = apply_lock(f, r);
		/* granted now: forget the same request if it was queued before */
		for (struct blk **pp = &f->blocked; st == NLM4_GRANTED && *pp;) {
			struct blk *b = *pp;
			if (owner_eq(&b->o, r) && b->start == r->start && b->end == r->end &&
			    b->excl == r->exclusive) {
				*pp = b->next;
				free(b->cookie);
				free(b);
				g_nblocked--;
			} else {
				pp = &b->next;
			}
		}
		/* A downgrade (exclusive -> shared) may unblock readers. */
		if (st == NLM4_GRANTED && f->blocked)
			scan_blocked(f, &gl);
		else
			file_maybe_free(f);
		pthread_mutex_unlock(&g_mu);
		announce(&gl);
		return st;
	}
	if (!blk) {
		file_maybe_free(f);
		pthread_mutex_unlock(&g_mu);
		return NLM4_DENIED;
	}
	/* Queue it, once: a client re-sends its blocking LOCK periodically
	 * (and retransmits); refresh the callback details only. */
	for (struct blk *b = f->blocked; b; b = b->next) {
		if (owner_eq(&b->o, r) && b->start == r->start && b->end == r->end && b->excl == r->exclusive) {
			uint8_t *c = blk->cookielen ? malloc(blk->cookielen) : NULL;
			if (c || !blk->cookielen) {
				free(b->cookie);
				b->cookie = c;
				b->cookielen = blk->cookielen;
				if (c)
					memcpy(c, blk->cookie, blk->cookielen);
			}
			copy_peer(&b->peer, r->peer);
			copy_peer(&b->local, blk->local);
			b->vers = blk->vers;
			b->udp = blk->udp;
			pthread_mutex_unlock(&g_mu);
			return NLM4_BLOCKED;
		}
	}
	st = NLM4_DENIED_NOLOCKS;
	if (g_nblocked < NLM_MAX_BLOCKED) {
		struct blk *b = ENTRY_NEW(blk, r->caller, r->oh, r->ohlen, r->svid);
		if (b && blk->cookielen && !(b->cookie = malloc(blk->cookielen))) {
			free(b);
			b = NULL;
		}
		if (b) {
			struct blk **pp = &f->blocked;
			b->excl = r->exclusive;
			b->start = r->start;
			b->end = r->end;
			copy_peer(&b->peer, r->peer);
			copy_peer(&b->local, blk->local);
			b->vers = blk->vers;
			b->udp = blk->udp;
			b->cookielen = blk->cookielen;
			if (blk->cookielen)
				memcpy(b->cookie, blk->cookie, blk->cookielen);
			while (*pp)
				pp = &(*pp)->next;
			*pp = b;
			g_nblocked++;
			st = NLM4_BLOCKED;
		}
	}
	file_maybe_free(f);
	pthread_mutex_unlock(&g_mu);
	return st;
}

uint32_t nlm_tab_cancel(const struct nlm_req *r)
{
	struct nfile *f;
	uint32_t st = NLM4_DENIED;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, false, 0);
	if (f) {
		for (struct blk **pp = &f->blocked; *pp; pp = &(*pp)->next) {
			struct blk *b = *pp;
			if (owner_eq(&b->o, r) && b->start == r->start && b->end == r->end &&
			    b->excl == r->exclusive) {
				*pp = b->next;
				free(b->cookie);
				free(b);
				g_nblocked--;
				st = NLM4_GRANTED;
				break;
			}
		}
		file_maybe_free(f);
	}
	pthread_mutex_unlock(&g_mu);
	return st;
}

uint32_t nlm_tab_unlock(const struct nlm_req *r)
{
	struct grant_list gl = { 0 };
	struct nfile *f;
	struct lk *spare = NULL;
	uint32_t st = NLM4_GRANTED;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, false, 0);
	if (f) {
		struct lk *split = needs_split(f, r, r->start, r->end);
		if (split && (g_nlocks >= NLM_MAX_LOCKS || !(spare = lk_clone(split)))) {
			st = NLM4_DENIED_NOLOCKS;
		} else {
			remove_range(f, r, r->start, r->end, &spare);
			free(spare);
		}
		scan_blocked(f, &gl);
	}
	pthread_mutex_unlock(&g_mu);
	announce(&gl);
	return st;
}

/* XNFS 14.1.9: a share request conflicts with another owner's reservation
 * when it wants an access that one denies, or denies an access that one
 * holds. */
uint32_t nlm_tab_share(const struct nlm_req *r, uint32_t mode, uint32_t access)
{
	struct nfile *f;
	struct shr *mine = NULL, *s;
	uint32_t st = NLM4_GRANTED;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, true, r->export_id);
	if (!f) {
		pthread_mutex_unlock(&g_mu);
		return NLM4_DENIED_NOLOCKS;
	}
	for (s = f->shares; s; s = s->next) {
		if (share_owner_eq(&s->o, r)) {
			mine = s;
			continue;
		}
		if ((access & s->mode) || (mode & s->access)) {
			st = NLM4_DENIED;
			goto out;
		}
	}
	if (mine) {
		mine->mode = mode;
		mine->access = access;
		goto out;
	}
	if (g_nshares >= NLM_MAX_SHARES || !(s = ENTRY_NEW(shr, r->caller, r->oh, r->ohlen, 0))) {
		st = NLM4_DENIED_NOLOCKS;
		goto out;
	}
	s->mode = mode;
	s->access = access;
	copy_peer(&s->peer, r->peer);
	s->next = f->shares;
	f->shares = s;
	g_nshares++;
out:
	file_maybe_free(f);
	pthread_mutex_unlock(&g_mu);
	return st;
}

uint32_t nlm_tab_unshare(const struct nlm_req *r)
{
	struct nfile *f;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, false, 0);
	if (f) {
		for (struct shr **pp = &f->shares; *pp; pp = &(*pp)->next)
			if (share_owner_eq(&(*pp)->o, r)) {
				struct shr *s = *pp;
				*pp = s->next;
				free(s);
				g_nshares--;
				break;
			}
		file_maybe_free(f);
	}
	pthread_mutex_unlock(&g_mu);
	return NLM4_GRANTED;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	char x[64], y[64];

	if (!a->ss_family || !b)
		return false;
	acl_sockaddr_str((const struct sockaddr *)a, x, sizeof(x));
	acl_sockaddr_str(b, y, sizeof(y));
	return !strcmp(x, y);
}

/* Selection for free_host / break: by name, by address, by file. */
struct sel {
	const char *name;               /* caller_name (case-insensitive) */
	const struct sockaddr *addr;    /* or the address entries came from */
	const char *name_or_addr;       /* CLI: either */
	const uint8_t **fhs;            /* CLI --path: these files only */
	const uint32_t *fhlens;
	int nfh;
};

static bool sel_file(const struct sel *s, const struct nfile *f)
{
	if (s->nfh < 0)
		return true;
	for (int i = 0; i < s->nfh; i++)
		if (s->fhlens[i] == f->fhlen && !memcmp(s->fhs[i], f->fh, f->fhlen))
			return true;
	return false;
}

static bool sel_entry(const struct sel *s, const struct owner *o, const struct sockaddr_storage *peer)
{
	if (s->name && strcasecmp(o->caller, s->name))
		return false;
	if (s->addr && !same_addr(peer, s->addr))
		return false;
	if (s->name_or_addr) {
		char a[64] = "";
		if (peer->ss_family)
			acl_sockaddr_str((const struct sockaddr *)peer, a, sizeof(a));
		if (strcasecmp(o->caller, s->name_or_addr) && strcmp(a, s->name_or_addr))
			return false;
	}
	return true;
}

static int free_selected(const struct sel *s)
{
	struct grant_list gl = { 0 };
	int n = 0;

	pthread_mutex_lock(&g_mu);
	for (int h = 0; h < NLM_HASH; h++) {
		struct nfile *f = g_files[h], *next;
		for (; f; f = next) {
			bool changed = false;

			next = f->next;
			if (!sel_file(s, f))
				continue;
			for (struct blk **pp = &f->blocked; *pp;) {
				struct blk *b = *pp;
				if (sel_entry(s, &b->o, &b->peer)) {
					*pp = b->next;
					free(b->cookie);
					free(b);
					g_nblocked--;
					n++;
				} else {
					pp = &b->next;
				}
			}
			for (struct lk **pp = &f->locks; *pp;) {
				struct lk *l = *pp;
				if (sel_entry(s, &l->o, &l->peer)) {
					*pp = l->next;
					free(l);
					g_nlocks--;
					n++;
					changed = true;
				} else {
					pp = &l->next;
				}
			}
			for (struct shr **pp = &f->shares; *pp;) {
				struct shr *sh = *pp;
				if (sel_entry(s, &sh->o, &sh->peer)) {
					*pp = sh->next;
					free(sh);
					g_nshares--;
					n++;
				} else {
					pp = &sh->next;
				}
			}
			if (changed)
				scan_blocked(f, &gl);     /* may free f */
			else
				file_maybe_free(f);
		}
	}
	pthread_mutex_unlock(&g_mu);
	announce(&gl);
	return n;
}

int nlm_tab_free_host(const char *name, const struct sockaddr *addr)
{
	struct sel s = { .name = name, .addr = addr, .nfh = -1 };

	if (!name && !addr)
		return 0;
	return free_selected(&s);
}

void nlm_tab_counts(int *locks, int *blocked, int *shares)
{
	pthread_mutex_lock(&g_mu);
	if (locks)
		*locks = g_nlocks;
	if (blocked)
		*blocked = g_nblocked;
	if (shares)
		*shares = g_nshares;
	pthread_mutex_unlock(&g_mu);
}

void nlm_tab_clear(void)
{
	pthread_mutex_lock(&g_mu);
	for (int h = 0; h < NLM_HASH; h++) {
		while (g_files[h]) {
			struct nfile *f = g_files[h];
			g_files[h] = f->next;
			while (f->locks) {
				struct lk *l = f->locks;
				f->locks = l->next;
				free(l);
			}
			while (f->blocked) {
				struct blk *b = f->blocked;
				f->blocked = b->next;
				free(b->cookie);
				free(b);
			}
			while (f->shares) {
				struct shr *s = f->shares;
				f->shares = s->next;
				free(s);
			}
			free(f);
		}
	}
	g_nlocks = g_nblocked = g_nshares = 0;
	pthread_mutex_unlock(&g_mu);
}

/* Is this exact lock still held (a GRANTED callback about to be sent or
 * retried)? */
static bool tab_holds(const struct nlm_req *r)
{
	struct nfile *f;
	bool held = false;

	pthread_mutex_lock(&g_mu);
	f = file_find(r->fh, r->fhlen, false, 0);
	if (f)
		for (struct lk *l = f->locks; l && !held; l = l->next)
			held = owner_eq(&l->o, r) && l->excl == r->exclusive && l->start <= r->start &&
			       l->end >= r->end;
	pthread_mutex_unlock(&g_mu);
	return held;
}

/* ================================================================ XDR */

static bool get_bool(struct xdr_dec *d)
{
	uint32_t v = xdr_get_u32(d);

	if (v > 1)
		d->err = true;          /* RFC 4506 4.4: a bool is 0 or 1 */
	return v == 1;
}

static void get_netobj(struct xdr_dec *d, struct nlm_netobj *o)
{
	const uint8_t *p = xdr_get_opaque(d, &o->len, NLM_MAXOBJ);

	if (p && o->len)
		memcpy(o->data, p, o->len);
	else
		o->len = 0;
}

/* nlm4_lock / nlm_lock (XNFS 14.1.5 / 10.1). */
static void get_lock(struct xdr_dec *d, bool v4, struct nlm_args *a)
{
	xdr_get_string(d, a->caller, sizeof(a->caller), NLM_MAXSTR);
	get_netobj(d, &a->fh);
	get_netobj(d, &a->oh);
	a->svid = (int32_t)xdr_get_u32(d);
	if (v4) {
		a->offset = xdr_get_u64(d);
		a->len = xdr_get_u64(d);
	} else {
		a->offset = xdr_get_u32(d);
		a->len = xdr_get_u32(d);
	}
}

int nlm_decode_args(uint32_t proc, uint32_t vers, const uint8_t *buf, size_t len, struct nlm_args *a)
{
	struct xdr_dec d;
	bool v4 = vers >= 4;

	memset(a, 0, offsetof(struct nlm_args, caller));
	a->caller[0] = '\0';
	a->fh.len = a->oh.len = 0;
	a->svid = 0;
	a->offset = a->len = 0;
	a->mode = a->access = 0;
	xdr_dec_init(&d, buf, len);
	switch (proc) {
	case NLMPROC_TEST:
	case NLMPROC_TEST_MSG:
	case NLMPROC_GRANTED:
	case NLMPROC_GRANTED_MSG:
		get_netobj(&d, &a->cookie);
		a->exclusive = get_bool(&d);
		get_lock(&d, v4, a);
		break;
	case NLMPROC_LOCK:
	case NLMPROC_LOCK_MSG:
	case NLMPROC_NM_LOCK:
		get_netobj(&d, &a->cookie);
		a->block = get_bool(&d);
		a->exclusive = get_bool(&d);
		get_lock(&d, v4, a);
		a->reclaim = get_bool(&d);
		a->state = (int32_t)xdr_get_u32(&d);
		break;
	case NLMPROC_CANCEL:
	case NLMPROC_CANCEL_MSG:
		get_netobj(&d, &a->cookie);
		a->block = get_bool(&d);
		a->exclusive = get_bool(&d);
		get_lock(&d, v4, a);
		break;
	case NLMPROC_UNLOCK:
	case NLMPROC_UNLOCK_MSG:
		get_netobj(&d, &a->cookie);
		get_lock(&d, v4, a);
		break;
	case NLMPROC_SHARE:
	case NLMPROC_UNSHARE:
		/* nlm4_shareargs: cookie, nlm4_share { caller_name, fh, oh,
		 * mode, access }, reclaim (XNFS 14.1.9) */
		get_netobj(&d, &a->cookie);
		xdr_get_string(&d, a->caller, sizeof(a->caller), NLM_MAXSTR);
		get_netobj(&d, &a->fh);
		get_netobj(&d, &a->oh);
		a->mode = xdr_get_u32(&d);
		a->access = xdr_get_u32(&d);
		a->reclaim = get_bool(&d);
		if (a->mode > NLM_FSM_DRW || a->access > NLM_FSA_RW)
			d.err = true;
		break;
	case NLMPROC_FREE_ALL:
		/* nlm4_notify { string name<MAXNAMELEN>; int32 state; } */
		xdr_get_string(&d, a->caller, sizeof(a->caller), NLM_MAXSTR);
		a->state = (int32_t)xdr_get_u32(&d);
		break;
	default:
		return -1;
	}
	return d.err ? -1 : 0;
}

/* nlm4_stats -> v1/v3 nlm_stats (which stop at DENIED_GRACE_PERIOD). */
static uint32_t stat_for(uint32_t vers, uint32_t st)
{
	if (vers >= 4 || st <= NLM4_DENIED_GRACE_PERIOD)
		return st;
	return st == NLM4_DEADLCK ? NLM4_DENIED : NLM4_DENIED_NOLOCKS;
}

static void put_holder(struct xdr_enc *e, uint32_t vers, const struct nlm_holder *h)
{
	uint64_t len = h->end == NLM_OFFSET_MAX ? 0 : h->end - h->start + 1;

	xdr_put_u32(e, h->exclusive);
	xdr_put_u32(e, (uint32_t)h->svid);
	xdr_put_opaque(e, h->oh, h->ohlen);
	if (vers >= 4) {
		xdr_put_u64(e, h->start);
		xdr_put_u64(e, len);
	} else {
		/* 32-bit protocol: clamp what does not fit */
		xdr_put_u32(e, h->start > UINT32_MAX ? UINT32_MAX : (uint32_t)h->start);
		xdr_put_u32(e, len > UINT32_MAX ? 0 : (uint32_t)len);
	}
}

/* nlm4_testres / nlm4_res into buf; returns the length (0 on overflow). */
static size_t encode_res(uint8_t *buf, size_t cap, uint32_t proc, uint32_t vers, const struct nlm_args *a,
			 uint32_t st, const struct nlm_holder *h)
{
	struct xdr_enc e;

	xdr_enc_init(&e, buf, cap);
	xdr_put_opaque(&e, a->cookie.data, a->cookie.len);
	xdr_put_u32(&e, stat_for(vers, st));
	if ((proc == NLMPROC_TEST || proc == NLMPROC_TEST_MSG) && st == NLM4_DENIED)
		put_holder(&e, vers, h);
	if (proc == NLMPROC_SHARE || proc == NLMPROC_UNSHARE)
		xdr_put_u32(&e, 0);             /* nlm4_shareres.sequence */
	return e.err ? 0 : xdr_enc_len(&e);
}

/* ================================================================ grace */

static unsigned g_grace_len = 45;
static bool g_grace_set;
static _Atomic uint64_t g_grace_end_ms;
static uint16_t g_pmap_port = PMAP_PORT;
static char g_hostname[256] = "localhost";

void nlm_set_grace(unsigned seconds)
{
	g_grace_len = seconds;
	g_grace_set = true;
}

void nlm_set_grace_now(unsigned seconds)
{
	atomic_store(&g_grace_end_ms, seconds ? rs_now_ms() + (uint64_t)seconds * 1000 : 0);
}

bool nlm_in_grace(void)
{
	uint64_t end = atomic_load(&g_grace_end_ms);

	return end && rs_now_ms() < end;
}

const char *nlm_hostname(void)
{
	return g_hostname;
}

/* ================================================================ callback thread */

struct cb_job {
	struct cb_job *next;
	uint64_t due_ms;
	void (*fn)(void *arg);
	void *arg;
};

static pthread_mutex_t g_cb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cb_cv;
static struct cb_job *g_cb_q;
static pthread_t g_cb_thr;
static bool g_cb_running, g_cb_stop;
static atomic_bool g_cb_abort;          /* shutdown: cut network waits short */

static void *cb_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g_cb_mu);
	while (!g_cb_stop) {
		struct cb_job *j = g_cb_q;
		uint64_t now = rs_now_ms();

		if (!j) {
			pthread_cond_wait(&g_cb_cv, &g_cb_mu);
			continue;
		}
		if (j->due_ms > now) {
			struct timespec ts;
			uint64_t wait = j->due_ms - now;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&g_cb_cv, &g_cb_mu, &ts);
			continue;
		}
		g_cb_q = j->next;
		pthread_mutex_unlock(&g_cb_mu);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&g_cb_mu);
	}
	pthread_mutex_unlock(&g_cb_mu);
	return NULL;
}

int nlm_cb_post(void (*fn)(void *arg), void *arg, unsigned delay_ms)
{
	struct cb_job *j = calloc(1, sizeof(*j)), **pp;

	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->due_ms = rs_now_ms() + delay_ms;
	pthread_mutex_lock(&g_cb_mu);
	if (!g_cb_running || g_cb_stop) {
		pthread_mutex_unlock(&g_cb_mu);
		free(j);
		return -ESRCH;
	}
	for (pp = &g_cb_q; *pp && (*pp)->due_ms <= j->due_ms; pp = &(*pp)->next)
		;
	j->next = *pp;
	*pp = j;
	pthread_cond_signal(&g_cb_cv);
	pthread_mutex_unlock(&g_cb_mu);
	return 0;
}

static int cb_start(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g_cb_cv, &ca);
	pthread_condattr_destroy(&ca);
	g_cb_stop = false;
	if (pthread_create(&g_cb_thr, NULL, cb_thread, NULL) != 0)
		return -EAGAIN;
	pthread_mutex_lock(&g_cb_mu);
	g_cb_running = true;
	pthread_mutex_unlock(&g_cb_mu);
	return 0;
}

static void cb_stop(void)
{
	pthread_mutex_lock(&g_cb_mu);
	if (!g_cb_running) {
		pthread_mutex_unlock(&g_cb_mu);
		return;
	}
	g_cb_stop = true;
	atomic_store(&g_cb_abort, true);
	pthread_cond_signal(&g_cb_cv);
	pthread_mutex_unlock(&g_cb_mu);
	pthread_join(g_cb_thr, NULL);
	atomic_store(&g_cb_abort, false);
	pthread_mutex_lock(&g_cb_mu);
	g_cb_running = false;
	while (g_cb_q) {
		struct cb_job *j = g_cb_q;
		g_cb_q = j->next;
		/* jobs own their argument, which is always plain malloc'd data */
		free(j->arg);
		free(j);
	}
	pthread_mutex_unlock(&g_cb_mu);
	pthread_cond_destroy(&g_cb_cv);
}

/* ================================================================ RPC client */

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void sa_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

uint16_t nlm_client_pmap_port(const struct sockaddr *addr)
{
	/* A client on this very host uses the portmapper of this host, which
	 * may be ours on a configured port; everybody else's is on 111. */
	return addr && is_loopback(addr) ? g_pmap_port : PMAP_PORT;
}

/* Bind a reserved source port when we may (clients' lock managers and
 * statds may insist on one, as they do for requests from a kernel), on
 * local's address when given and of the right family. */
static void bind_reserved(int fd, int family, const struct sockaddr *local)
{
	struct sockaddr_storage ss;
	socklen_t sl = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int base = (int)((unsigned)rand() % 424);
	bool use_local = local && local->sa_family == family;

	for (int i = 0; i < 64; i++) {
		memset(&ss, 0, sizeof(ss));
		if (use_local)
			memcpy(&ss, local, sl);
		ss.ss_family = (sa_family_t)family;
		sa_set_port(&ss, (uint16_t)(600 + (base + i) % 424));
		if (bind(fd, (struct sockaddr *)&ss, sl) == 0)
			return;
		if (errno == EADDRINUSE)
			continue;
		if (errno == EACCES) {
			/* not root: an ephemeral port on the same address */
			sa_set_port(&ss, 0);
			if (use_local)
				bind(fd, (struct sockaddr *)&ss, sl);
			return;
		}
		if (use_local) {
			/* the address went away: any will do */
			use_local = false;
			continue;
		}
		return;
	}
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = rs_now_ms();
		struct pollfd pfd = { .fd = fd, .events = ev };
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (atomic_load(&g_cb_abort))
			return -ECANCELED;
		/* in slices, so that a shutdown does not wait for a dead peer */
		r = poll(&pfd, 1, deadline - now > 200 ? 200 : (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int recv_full(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
	while (n) {
		ssize_t r;
		int ret = wait_fd(fd, POLLIN, deadline);

		if (ret < 0)
			return ret;
		r = recv(fd, p, n, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_full(int fd, const uint8_t *p, size_t n, uint64_t deadline)
{
	while (n) {
		ssize_t w;
		int ret = wait_fd(fd, POLLOUT, deadline);

		if (ret < 0)
			return ret;
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Parse an RPC reply (RFC 5531 section 9): accepted + SUCCESS -> results. */
static int parse_reply(const uint8_t *rep, size_t len, uint32_t xid, uint8_t *res, size_t *reslen)
{
	struct xdr_dec d;
	uint32_t vlen;

	xdr_dec_init(&d, rep, len);
	if (xdr_get_u32(&d) != xid || d.err)
		return -EAGAIN;         /* not ours (UDP): keep waiting */
	if (xdr_get_u32(&d) != RPC_MSG_REPLY || xdr_get_u32(&d) != RPC_MSG_ACCEPTED)
		return -EPROTO;
	xdr_get_u32(&d);                /* verifier flavor */
	xdr_get_opaque(&d, &vlen, RPC_MAX_AUTH_BYTES);
	if (xdr_get_u32(&d) != RPC_SUCCESS || d.err)
		return -EPROTO;
	if (*reslen > xdr_dec_left(&d))
		*reslen = xdr_dec_left(&d);
	memcpy(res, d.p, *reslen);
	return 0;
}

int nlm_rpc_call(const struct sockaddr *addr, const struct sockaddr *local, bool udp, uint32_t prog,
		 uint32_t vers, uint32_t proc, const uint8_t *args, size_t alen, uint8_t *res, size_t *reslen,
		 int timeout_ms)
{
	static _Atomic uint32_t xid_seq;
	uint64_t deadline = rs_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 3000);
	uint32_t xid = ((uint32_t)getpid() << 16) ^ ((uint32_t)time(NULL) << 8) ^ atomic_fetch_add(&xid_seq, 1);
	size_t cap = 4 + 512 + alen;
	uint8_t *msg = malloc(cap), *rep = NULL;
	struct xdr_enc e;
	uint8_t cred[300];
	struct xdr_enc c;
	int fd, ret;

	if (!msg)
		return -ENOMEM;
	/* AUTH_SYS as root (RFC 5531 appendix A): what kernel lock managers send */
	xdr_enc_init(&c, cred, sizeof(cred));
	xdr_put_u32(&c, (uint32_t)time(NULL));
	xdr_put_string(&c, g_hostname);
	xdr_put_u32(&c, 0);
	xdr_put_u32(&c, 0);
	xdr_put_u32(&c, 0);
	xdr_enc_init(&e, msg + 4, cap - 4);
	xdr_put_u32(&e, xid);
	xdr_put_u32(&e, RPC_MSG_CALL);
	xdr_put_u32(&e, 2);
	xdr_put_u32(&e, prog);
	xdr_put_u32(&e, vers);
	xdr_put_u32(&e, proc);
	xdr_put_u32(&e, RPC_AUTH_SYS);
	xdr_put_opaque(&e, cred, (uint32_t)xdr_enc_len(&c));
	xdr_put_u32(&e, RPC_AUTH_NONE);
	xdr_put_u32(&e, 0);
	if (e.err || c.err || (size_t)(e.end - e.p) < alen) {
		free(msg);
		return -EINVAL;
	}
	if (alen)
		memcpy(e.p, args, alen);
	e.p += alen;
	xdr_put_be32(msg, 0x80000000u | (uint32_t)xdr_enc_len(&e));

	fd = socket(addr->sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		free(msg);
		return -errno;
	}
	bind_reserved(fd, addr->sa_family, local);
	if (connect(fd, addr, sa_len(addr)) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto out;
	}
	if (udp) {
		/* Retransmit a few times within the deadline (RFC 5531 says
		 * nothing; this is what every UDP RPC client does). */
		uint8_t buf[8192];
		uint64_t total = deadline - rs_now_ms(), step = total / 3 + 1;
		ret = -ETIMEDOUT;
		for (int t = 0; t < 3 && ret == -ETIMEDOUT; t++) {
			uint64_t until = rs_now_ms() + step;
			if (until > deadline)
				until = deadline;
			if (send(fd, msg + 4, xdr_enc_len(&e), 0) < 0) {
				ret = -errno;
				break;
			}
			for (;;) {
				ssize_t n;
				ret = wait_fd(fd, POLLIN, until);
				if (ret < 0)
					break;
				n = recv(fd, buf, sizeof(buf), 0);
				if (n < 0) {
					ret = errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
					if (ret == -EAGAIN)
						continue;
					break;
				}
				ret = parse_reply(buf, (size_t)n, xid, res, reslen);
				if (ret != -EAGAIN)
					break;
			}
		}
	} else {
		uint8_t hdr[4];
		uint32_t mark, rlen;

		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret == 0) {
			int err = 0;
			socklen_t el = sizeof(err);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
			ret = err ? -err : 0;
		}
		if (ret == 0)
			ret = send_full(fd, msg, 4 + xdr_enc_len(&e), deadline);
		if (ret == 0)
			ret = recv_full(fd, hdr, 4, deadline);
		if (ret == 0) {
			mark = xdr_be32(hdr);
			rlen = mark & 0x7fffffffu;
			/* one-fragment replies are all we expect for these results */
			if (!(mark & 0x80000000u) || rlen < 24 || rlen > 65536)
				ret = -EPROTO;
		}
		if (ret == 0 && !(rep = malloc(rlen)))
			ret = -ENOMEM;
		if (ret == 0)
			ret = recv_full(fd, rep, rlen, deadline);
		if (ret == 0)
			ret = parse_reply(rep, rlen, xid, res, reslen);
		if (ret == -EAGAIN)
			ret = -EPROTO;
	}
out:
	free(rep);
	free(msg);
	close(fd);
	return ret;
}

int nlm_getport(const struct sockaddr *addr, uint16_t pmap_port, uint32_t prog, uint32_t vers, bool udp)
{
	struct sockaddr_storage ss;
	uint8_t args[16], res[4];
	size_t rl = sizeof(res);
	int ret;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, addr, sa_len(addr));
	sa_set_port(&ss, pmap_port);
	/* PMAPPROC_GETPORT (RFC 1833 section 3.2), v2 answers IPv6 too when
	 * asked over IPv6 by rpcbind */
	xdr_put_be32(args, prog);
	xdr_put_be32(args + 4, vers);
	xdr_put_be32(args + 8, udp ? PMAP_IPPROTO_UDP : PMAP_IPPROTO_TCP);
	xdr_put_be32(args + 12, 0);
	ret = nlm_rpc_call((struct sockaddr *)&ss, NULL, true, PMAP_PROG, 2, PMAPPROC_GETPORT, args,
			   sizeof(args), res, &rl, 2000);
	if (ret < 0)
		return ret;
	if (rl < 4)
		return -EPROTO;
	ret = (int)xdr_be32(res);
	return ret > 65535 ? -EPROTO : ret;
}

/* Find the client's lock manager and call it: prefer the transport its
 * request came over, fall back to the other. */
static int call_client_nlm(const struct sockaddr_storage *peer, const struct sockaddr_storage *local, bool udp,
			   uint32_t vers, uint32_t proc, const uint8_t *args, size_t alen, uint8_t *res,
			   size_t *reslen)
{
	struct sockaddr_storage ss = *peer;
	uint16_t pm = nlm_client_pmap_port((const struct sockaddr *)peer);
	int port = nlm_getport((const struct sockaddr *)peer, pm, NLM_PROG, vers, udp);

	if (port <= 0) {
		udp = !udp;
		port = nlm_getport((const struct sockaddr *)peer, pm, NLM_PROG, vers, udp);
	}
	if (port <= 0)
		return port < 0 ? port : -ENOENT;
	sa_set_port(&ss, (uint16_t)port);
	return nlm_rpc_call((struct sockaddr *)&ss, local->ss_family ? (const struct sockaddr *)local : NULL, udp,
			    NLM_PROG, vers, proc, args, alen, res, reslen, 3000);
}

/* ================================================================ GRANTED callback */

struct grant_job {
	struct nlm_grant g;
	int tries;
};

static void put_lock(struct xdr_enc *e, uint32_t vers, const char *caller, const uint8_t *fh, uint32_t fhlen,
		     const uint8_t *oh, uint32_t ohlen, int32_t svid, uint64_t start, uint64_t end)
{
	uint64_t len = end == NLM_OFFSET_MAX ? 0 : end - start + 1;

	xdr_put_string(e, caller);
	xdr_put_opaque(e, fh, fhlen);
	xdr_put_opaque(e, oh, ohlen);
	xdr_put_u32(e, (uint32_t)svid);
	if (vers >= 4) {
		xdr_put_u64(e, start);
		xdr_put_u64(e, len);
	} else {
		xdr_put_u32(e, start > UINT32_MAX ? UINT32_MAX : (uint32_t)start);
		xdr_put_u32(e, len > UINT32_MAX ? 0 : (uint32_t)len);
	}
}

static void grant_req(const struct nlm_grant *g, struct nlm_req *r)
{
	memset(r, 0, sizeof(*r));
	r->fh = g->fh;
	r->fhlen = g->fhlen;
	r->caller = g->caller;
	r->svid = g->svid;
	r->oh = g->oh;
	r->ohlen = g->ohlen;
	r->exclusive = g->exclusive;
	r->start = g->start;
	r->end = g->end;
}

static void grant_work(void *arg)
{
	struct grant_job *j = arg;
	struct nlm_grant *g = &j->g;
	struct nlm_req r;
	uint8_t *args = malloc(4 * NLM_MAXOBJ + NLM_MAXSTR + 64), res[NLM_MAXOBJ + 16];
	size_t rl = sizeof(res);
	struct xdr_enc e;
	char host[64];
	int ret;

	grant_req(g, &r);
	acl_sockaddr_str((const struct sockaddr *)&g->peer, host, sizeof(host));
	if (!args || !tab_holds(&r)) {
		/* released meanwhile (UNLOCK, FREE_ALL, broken): nothing to say */
		free(args);
		free(j);
		return;
	}
	/* NLM_GRANTED takes nlm4_testargs (XNFS 10.3.5 / 14.2): the client
	 * matches it against its blocked request by fh, svid and range. */
	xdr_enc_init(&e, args, 4 * NLM_MAXOBJ + NLM_MAXSTR + 64);
	xdr_put_opaque(&e, g->cookie, g->cookielen);
	xdr_put_u32(&e, g->exclusive);
	put_lock(&e, g->vers, nlm_hostname(), g->fh, g->fhlen, g->oh, g->ohlen, g->svid, g->start, g->end);
	ret = e.err ? -EINVAL : call_client_nlm(&g->peer, &g->local, g->udp, g->vers, NLMPROC_GRANTED, args,
						 xdr_enc_len(&e), res, &rl);
	free(args);
	if (ret == 0) {
		struct xdr_dec d;
		uint32_t cl, st;

		xdr_dec_init(&d, res, rl);
		xdr_get_opaque(&d, &cl, NLM_MAXOBJ);
		st = xdr_get_u32(&d);
		if (!d.err && st == NLM4_DENIED) {
			/* the client no longer waits for it (interrupted) */
			log_info("nlm: %s (%s) refused the granted lock svid %d: releasing it", g->caller,
				 host, g->svid);
			nlm_tab_unlock(&r);
		} else {
			log_debug("nlm: GRANTED to %s (%s) svid %d acknowledged", g->caller, host, g->svid);
		}
		free(j);
		return;
	}
	if (++j->tries < NLM_GRANT_TRIES &&
	    nlm_cb_post(grant_work, j, 1000u << (j->tries > 4 ? 4 : j->tries)) == 0) {
		log_debug("nlm: GRANTED to %s (%s): %s; retrying", g->caller, host, strerror(-ret));
		return;
	}
	/* Keep the lock: the client re-sends its blocking LOCK and finds it
	 * granted (same owner, same range). */
	log_notice("nlm: cannot tell %s (%s) that its lock was granted: %s", g->caller, host, strerror(-ret));
	free(j);
}

static void default_grant(const struct nlm_grant *g)
{
	struct grant_job *j = malloc(sizeof(*j));

	if (!j)
		return;
	j->g = *g;
	j->tries = 0;
	if (nlm_cb_post(grant_work, j, 0) < 0)
		free(j);
}

/* ================================================================ _MSG replies */

struct res_job {
	struct sockaddr_storage peer, local;
	bool udp;
	uint32_t vers, proc;
	size_t len;
	uint8_t buf[];
};

static void res_work(void *arg)
{
	struct res_job *j = arg;
	uint8_t res[16];
	size_t rl = sizeof(res);
	int ret = call_client_nlm(&j->peer, &j->local, j->udp, j->vers, j->proc, j->buf, j->len, res, &rl);

	if (ret < 0) {
		char host[64];
		acl_sockaddr_str((const struct sockaddr *)&j->peer, host, sizeof(host));
		log_info("nlm: cannot send procedure %u result to %s: %s", j->proc, host, strerror(-ret));
	}
	free(j);
}

/* ================================================================ server */

static uint16_t peer_port(const struct rpc_call *call)
{
	const struct sockaddr *sa = (const struct sockaddr *)&call->peer;

	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* The handle must be one of ours (MAC), its export must exist and the
 * caller must be one of its clients (the lock manager checks the handle
 * as nfsd would: Linux's nlm_fopen goes through nfsd's fh_verify). */
static uint32_t check_fh(struct rpc_call *call, const struct nlm_args *a, uint32_t *eid)
{
	const struct export_client *cl;
	struct nfs_export *e;
	uint32_t st = NLM4_GRANTED;

	if (fh_verify(a->fh.data, a->fh.len, eid) < 0)
		return NLM4_STALE_FH;
	e = nfs_export_get_by_id(*eid);
	if (!e)
		return NLM4_STALE_FH;
	cl = nfs_export_match(e, (const struct sockaddr *)&call->peer, NULL);
	if (!cl || (cl->opts.secure && peer_port(call) >= 1024))
		st = NLM4_DENIED;
	nfs_export_put(e);
	return st;
}

static void args_req(const struct nlm_args *a, struct rpc_call *call, uint32_t eid, struct nlm_req *r)
{
	memset(r, 0, sizeof(*r));
	r->fh = a->fh.data;
	r->fhlen = a->fh.len;
	r->export_id = eid;
	r->caller = a->caller;
	r->svid = a->svid;
	r->oh = a->oh.data;
	r->ohlen = a->oh.len;
	r->exclusive = a->exclusive;
	r->start = a->offset;
	r->end = nlm_range_end(a->offset, a->len);
	r->peer = (const struct sockaddr *)&call->peer;
}

static void reply_void(struct rpc_call *call)
{
	if (!rpc_reply_buf(call, 0)) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
}

static void log_peer(const struct rpc_call *call, const char *what, const struct nlm_args *a, uint32_t st)
{
	if (rs_log_level_cur >= RS_LOG_DEBUG) {
		char host[64];
		rpc_peer_str(call, host, sizeof(host));
		log_debug("nlm: v%u %s from %s (%s) svid %d %s [%llu, +%llu]: %u", call->vers, what, a->caller,
			  host, a->svid, a->exclusive ? "excl" : "shared", (unsigned long long)a->offset,
			  (unsigned long long)a->len, st);
	}
}

/* The synchronous procedures and their _MSG twins share the work; proc is
 * the synchronous number. */
static uint32_t do_proc(struct rpc_call *call, uint32_t proc, struct nlm_args *a, struct nlm_holder *h)
{
	struct nlm_req r;
	uint32_t eid = 0, st;

	switch (proc) {
	case NLMPROC_TEST:
		if (nlm_in_grace())
			return NLM4_DENIED_GRACE_PERIOD;
		if ((st = check_fh(call, a, &eid)) != NLM4_GRANTED)
			return st;
		args_req(a, call, eid, &r);
		return nlm_tab_test(&r, h);
	case NLMPROC_LOCK:
	case NLMPROC_NM_LOCK: {
		struct nlm_block_info bi = { call->vers, call->udp, a->cookie.data, a->cookie.len,
					     call->locallen ? (const struct sockaddr *)&call->local : NULL };

		if (nlm_in_grace() && !a->reclaim)
			return NLM4_DENIED_GRACE_PERIOD;
		if ((st = check_fh(call, a, &eid)) != NLM4_GRANTED)
			return st;
		args_req(a, call, eid, &r);
		/* NM_LOCK is never blocking (XNFS 10.3.13) */
		st = nlm_tab_lock(&r, a->block && proc == NLMPROC_LOCK ? &bi : NULL);
		if ((st == NLM4_GRANTED || st == NLM4_BLOCKED) && proc == NLMPROC_LOCK)
			nsm_monitor(a->caller, (const struct sockaddr *)&call->peer);
		return st;
	}
	case NLMPROC_CANCEL:
		if ((st = check_fh(call, a, &eid)) != NLM4_GRANTED)
			return st;
		args_req(a, call, eid, &r);
		return nlm_tab_cancel(&r);
	case NLMPROC_UNLOCK:
		if ((st = check_fh(call, a, &eid)) != NLM4_GRANTED)
			return st;
		args_req(a, call, eid, &r);
		return nlm_tab_unlock(&r);
	case NLMPROC_GRANTED:
		/* We hold no blocked requests as a client. */
		return NLM4_DENIED;
	case NLMPROC_SHARE:
		if (nlm_in_grace() && !a->reclaim)
			return NLM4_DENIED_GRACE_PERIOD;
		if ((st = check_fh(call, a, &eid)) != NLM4_GRANTED)
			return st;
		args_req(a, call, eid, &r);
		st = nlm_tab_share(&r, a->mode, a->access);
		if (st == NLM4_GRANTED)
			nsm_monitor(a->caller, (const struct sockaddr *)&call->peer);
		return st;
	case NLMPROC_UNSHARE:
		if ((st = check_fh(call, a, &eid)) != NLM4_GRANTED)
			return st;
		args_req(a, call, eid, &r);
		return nlm_tab_unshare(&r);
	default:
		return NLM4_FAILED;
	}
}

static const char *proc_name(uint32_t p)
{
	static const char *const n[] = { "NULL", "TEST", "LOCK", "CANCEL", "UNLOCK", "GRANTED" };

	if (p < sizeof(n) / sizeof(n[0]))
		return n[p];
	switch (p) {
	case NLMPROC_SHARE: return "SHARE";
	case NLMPROC_UNSHARE: return "UNSHARE";
	case NLMPROC_NM_LOCK: return "NM_LOCK";
	default: return "?";
	}
}

#define RES_MAX (4 + NLM_MAXOBJ + 4 + 4 + 4 + 4 + NLM_MAXOBJ + 16 + 8)

static void nlm_dispatch(struct rpc_call *call)
{
	struct nlm_args *a;
	struct nlm_holder *h;
	uint32_t proc = call->proc, sync, st;
	uint8_t *p;
	size_t n;

	if (proc == NLMPROC_NULL) {
		reply_void(call);
		return;
	}
	/* SHARE .. FREE_ALL exist from version 3 on (XNFS 10.3). */
	if ((proc > NLMPROC_GRANTED_RES && proc < NLMPROC_SHARE) || proc > NLMPROC_FREE_ALL ||
	    (proc >= NLMPROC_SHARE && call->vers < 3)) {
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
		return;
	}
	if (proc >= NLMPROC_TEST_RES && proc <= NLMPROC_GRANTED_RES) {
		/* Results of _MSG calls: we send none that expect them. */
		reply_void(call);
		return;
	}
	a = malloc(sizeof(*a));
	h = malloc(sizeof(*h));
	if (!a || !h) {
		free(a);
		free(h);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	if (nlm_decode_args(proc, call->vers, call->args, call->args_len, a) < 0) {
		free(a);
		free(h);
		rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
		return;
	}
	if (proc == NLMPROC_FREE_ALL) {
		/* XNFS 10.3.14: the client rebooted without status monitoring */
		int freed = nlm_tab_free_host(a->caller, NULL);
		if (freed)
			log_info("nlm: FREE_ALL from %s: %d lock(s) released", a->caller, freed);
		nsm_unmonitor(a->caller);
		free(a);
		free(h);
		reply_void(call);
		return;
	}
	sync = proc >= NLMPROC_TEST_MSG && proc <= NLMPROC_GRANTED_MSG ? proc - 5 : proc;
	st = do_proc(call, sync, a, h);
	log_peer(call, proc_name(sync), a, st);
	if (sync != proc) {
		/* Asynchronous variant (XNFS 10.3.6): the answer is a call of the
		 * client's matching _RES procedure; this call's reply is void. */
		struct res_job *j = malloc(sizeof(*j) + RES_MAX);
		if (j) {
			copy_peer(&j->peer, (const struct sockaddr *)&call->peer);
			copy_peer(&j->local, call->locallen ? (const struct sockaddr *)&call->local : NULL);
			j->udp = call->udp;
			j->vers = call->vers;
			j->proc = proc + 5;
			j->len = encode_res(j->buf, RES_MAX, proc, call->vers, a, st, h);
			if (!j->len || nlm_cb_post(res_work, j, 0) < 0)
				free(j);
		}
		free(a);
		free(h);
		reply_void(call);
		return;
	}
	p = rpc_reply_buf(call, RES_MAX);
	if (!p) {
		free(a);
		free(h);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	n = encode_res(p, RES_MAX, proc, call->vers, a, st, h);
	free(a);
	free(h);
	if (!n) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	rpc_reply_send(call, n, NULL, 0, NULL, NULL);
}

const struct rpc_program nlm4_program = {
	.prog = NLM_PROG,
	.vers_lo = 1,
	.vers_hi = 4,
	.name = "nlockmgr",
	.dispatch = nlm_dispatch,
};

/* ================================================================ life cycle */

int nlm_init(const char *state_dir, uint16_t portmap_port)
{
	const char *env = getenv("RINGSTOR_NLM_GRACE");
	unsigned grace = g_grace_len;
	int prev, ret;

	if (!g_grace_set && env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (!*end && v <= 3600)
			grace = (unsigned)v;
		else
			log_warn("nlm: ignoring RINGSTOR_NLM_GRACE='%s' (seconds, 0..3600)", env);
	}
	g_pmap_port = portmap_port ? portmap_port : PMAP_PORT;
	if (gethostname(g_hostname, sizeof(g_hostname)) < 0 || !g_hostname[0])
		snprintf(g_hostname, sizeof(g_hostname), "localhost");
	g_hostname[sizeof(g_hostname) - 1] = '\0';
	nlm_tab_clear();
	prev = nsm_init(state_dir);
	if (prev < 0)
		return prev;
	if ((ret = cb_start()) < 0)
		return ret;
	if (prev > 0 && grace) {
		nlm_set_grace_now(grace);
		log_notice("nlm: %d client(s) held locks before: grace period of %u s for reclaims "
			   "(NSM state %d)", prev, grace, nsm_state());
	} else {
		nlm_set_grace_now(0);
		log_info("nlm: no client held locks before: no grace period (NSM state %d)", nsm_state());
	}
	nsm_notify_previous();
	return 0;
}

void nlm_shutdown(void)
{
	cb_stop();
	nsm_shutdown();
	nlm_tab_clear();
}

/* ================================================================ control plane */

struct snap {
	int kind;               /* 0 lock, 1 blocked, 2 share */
	uint32_t fi;            /* index into the file list */
	char caller[128];
	char addr[64];
	int32_t svid;
	char oh[80];
	bool excl;
	uint64_t start, end;
	uint32_t mode, access;
};

struct snap_file {
	uint32_t export_id, fhlen;
	uint8_t fh[NLM_MAXOBJ];
	char path[4096];
};

static void printable_oh(const struct owner *o, char *buf, size_t len)
{
	size_t n = 0;
	bool text = o->ohlen > 0;

	/* Linux clients send "pid@host": show it as text when it is text */
	for (uint32_t i = 0; i < o->ohlen; i++)
		if (!isprint(o->oh[i]))
			text = false;
	if (text) {
		snprintf(buf, len, "%.*s", (int)(o->ohlen < 70 ? o->ohlen : 70), (const char *)o->oh);
		return;
	}
	buf[0] = '\0';
	for (uint32_t i = 0; i < o->ohlen && n + 3 < len && i < 32; i++)
		n += (size_t)snprintf(buf + n, len - n, "%02x", o->oh[i]);
}

static void snap_owner(struct snap *s, const struct owner *o, const struct sockaddr_storage *peer)
{
	snprintf(s->caller, sizeof(s->caller), "%s", o->caller);
	if (peer->ss_family)
		acl_sockaddr_str((const struct sockaddr *)peer, s->addr, sizeof(s->addr));
	else
		snprintf(s->addr, sizeof(s->addr), "-");
	s->svid = o->svid;
	printable_oh(o, s->oh, sizeof(s->oh));
}

/* Copy the table (under the mutex) so that paths can be resolved (which
 * blocks) without it. */
static int snapshot(struct snap **sv, int *sn, struct snap_file **fv, int *fn)
{
	int ns = 0, nf = 0, cs, cf;
	struct snap *s;
	struct snap_file *f;

	pthread_mutex_lock(&g_mu);
	cs = g_nlocks + g_nblocked + g_nshares + 1;
	cf = 1;
	for (int h = 0; h < NLM_HASH; h++)
		for (struct nfile *x = g_files[h]; x; x = x->next)
			cf++;
	s = calloc((size_t)cs, sizeof(*s));
	f = calloc((size_t)cf, sizeof(*f));
	if (!s || !f) {
		pthread_mutex_unlock(&g_mu);
		free(s);
		free(f);
		return -ENOMEM;
	}
	for (int h = 0; h < NLM_HASH; h++)
		for (struct nfile *x = g_files[h]; x; x = x->next) {
			f[nf].export_id = x->export_id;
			f[nf].fhlen = x->fhlen;
			memcpy(f[nf].fh, x->fh, x->fhlen);
			for (struct lk *l = x->locks; l && ns < cs; l = l->next, ns++) {
				s[ns].kind = 0;
				s[ns].fi = (uint32_t)nf;
				snap_owner(&s[ns], &l->o, &l->peer);
				s[ns].excl = l->excl;
				s[ns].start = l->start;
				s[ns].end = l->end;
			}
			for (struct blk *b = x->blocked; b && ns < cs; b = b->next, ns++) {
				s[ns].kind = 1;
				s[ns].fi = (uint32_t)nf;
				snap_owner(&s[ns], &b->o, &b->peer);
				s[ns].excl = b->excl;
				s[ns].start = b->start;
				s[ns].end = b->end;
			}
			for (struct shr *sh = x->shares; sh && ns < cs; sh = sh->next, ns++) {
				s[ns].kind = 2;
				s[ns].fi = (uint32_t)nf;
				snap_owner(&s[ns], &sh->o, &sh->peer);
				s[ns].mode = sh->mode;
				s[ns].access = sh->access;
			}
			nf++;
		}
	pthread_mutex_unlock(&g_mu);
	*sv = s;
	*sn = ns;
	*fv = f;
	*fn = nf;
	return 0;
}

/* The server path of a locked file (open by handle, then the name the
 * kernel has for it).  Blocking: control plane only. */
static void resolve_path(struct snap_file *f)
{
	struct nfs_export *e = nfs_export_get_by_id(f->export_id);
	char link[64];
	ssize_t n;
	int fd;

	snprintf(f->path, sizeof(f->path), "(export %u, stale handle)", f->export_id);
	if (!e)
		return;
	fd = fh_open(f->fh, f->fhlen, e->root_fd, 0);
	nfs_export_put(e);
	if (fd < 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, f->path, sizeof(f->path) - 1);
	if (n > 0)
		f->path[n] = '\0';
	else
		snprintf(f->path, sizeof(f->path), "(export %u)", f->export_id);
	close(fd);
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static const char *share_str(uint32_t v)
{
	static const char *const n[] = { "none", "r", "w", "rw" };
	return n[v & 3];
}

void nlm_show_locks(FILE *out, bool json)
{
	struct snap *s = NULL;
	struct snap_file *f = NULL;
	int ns = 0, nf = 0;

	if (snapshot(&s, &ns, &f, &nf) < 0) {
		fputs(json ? "[]\n" : "", out);
		return;
	}
	for (int i = 0; i < nf; i++)
		resolve_path(&f[i]);
	if (json)
		fputc('[', out);
	else if (ns == 0)
		fputs("No NLM locks\n", out);
	else
		fprintf(out, "NLM locks (grace period %s, NSM state %d):\n", nlm_in_grace() ? "on" : "off",
			nsm_state());
	for (int i = 0; i < ns; i++) {
		const struct snap *x = &s[i];
		const char *kind = x->kind == 0 ? "granted" : x->kind == 1 ? "blocked" : "share";
		char end[32];

		if (x->end == NLM_OFFSET_MAX)
			snprintf(end, sizeof(end), "EOF");
		else
			snprintf(end, sizeof(end), "%llu", (unsigned long long)x->end);
		if (json) {
			fprintf(out, "%s{\"path\":", i ? "," : "");
			json_str(out, f[x->fi].path);
			fputs(",\"client\":", out);
			json_str(out, x->caller);
			fputs(",\"address\":", out);
			json_str(out, x->addr);
			fprintf(out, ",\"state\":\"%s\",\"svid\":%d,\"owner\":", kind, x->svid);
			json_str(out, x->oh);
			if (x->kind == 2)
				fprintf(out, ",\"access\":\"%s\",\"deny\":\"%s\"}", share_str(x->access),
					share_str(x->mode));
			else if (x->end == NLM_OFFSET_MAX)
				fprintf(out, ",\"type\":\"%s\",\"start\":%llu,\"end\":null}",
					x->excl ? "write" : "read", (unsigned long long)x->start);
			else
				fprintf(out, ",\"type\":\"%s\",\"start\":%llu,\"end\":%llu}",
					x->excl ? "write" : "read", (unsigned long long)x->start,
					(unsigned long long)x->end);
		} else if (x->kind == 2) {
			fprintf(out, "    %s  client %s (%s)  owner %s  share access=%s deny=%s\n",
				f[x->fi].path, x->caller, x->addr, x->oh, share_str(x->access), share_str(x->mode));
		} else {
			fprintf(out, "    %s  client %s (%s)  svid %d  owner %s  %s %llu-%s  %s\n", f[x->fi].path,
				x->caller, x->addr, x->svid, x->oh, x->excl ? "write" : "read",
				(unsigned long long)x->start, end, kind);
		}
	}
	if (json)
		fputs("]\n", out);
	free(s);
	free(f);
}

int nlm_break_locks(const char *client, const char *path, char *err, size_t errlen)
{
	struct sel sl = { .name_or_addr = client && *client ? client : NULL, .nfh = -1 };
	const uint8_t **fhs = NULL;
	uint32_t *lens = NULL;
	struct snap *s = NULL;
	struct snap_file *f = NULL;
	int ns = 0, nf = 0, n;

	if (err && errlen)
		err[0] = '\0';
	if (path && *path) {
		char want[4096];

		if (!realpath(path, want))
			snprintf(want, sizeof(want), "%s", path);
		if (snapshot(&s, &ns, &f, &nf) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		fhs = calloc((size_t)nf + 1, sizeof(*fhs));
		lens = calloc((size_t)nf + 1, sizeof(*lens));
		if (!fhs || !lens) {
			free(fhs);
			free(lens);
			free(s);
			free(f);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		sl.nfh = 0;
		for (int i = 0; i < nf; i++) {
			resolve_path(&f[i]);
			if (!strcmp(f[i].path, want)) {
				fhs[sl.nfh] = f[i].fh;
				lens[sl.nfh++] = f[i].fhlen;
			}
		}
		sl.fhs = fhs;
		sl.fhlens = lens;
		if (sl.nfh == 0) {
			snprintf(err, errlen, "no NLM locks on %s", want);
			free(fhs);
			free(lens);
			free(s);
			free(f);
			return -1;
		}
	}
	n = free_selected(&sl);
	free(fhs);
	free(lens);
	free(s);
	free(f);
	if (n == 0 && sl.name_or_addr) {
		snprintf(err, errlen, "no NLM locks held by %s%s%s", client, path && *path ? " on " : "",
			 path && *path ? path : "");
		return -1;
	}
	if (sl.name_or_addr && !(path && *path))
		nsm_unmonitor(client);
	log_notice("nlm: broke %d lock(s)/request(s)%s%s%s%s from the control plane", n,
		   client && *client ? " of " : "", client && *client ? client : "",
		   path && *path ? " on " : "", path && *path ? path : "");
	return n;
}
