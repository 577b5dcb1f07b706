/* registry.c - targets, LUNs, ACLs and sessions (the tgtadm object model).
 *
 * Locking (see registry.h):
 *   reg_lock (mutex)      the target list, every target's ACLs and session
 *                         list, and writers of a LUN table.
 *   t->lun_lock (rwlock)  the LUN table; the data path read-locks it for the
 *                         few instructions of reg_target_lun_get() and never
 *                         takes reg_lock during I/O.
 * Lock order: reg_lock, then t->lun_lock, then an LU's own lock (inside
 * scsi_lu_ua_add()).
 *
 * Lifetimes: the target list holds one reference to each target, every
 * session another (taken by reg_target_get() at login).  Deleting a target
 * unlinks it and drops the list's reference; the memory and its LUs go when
 * the last session lets go.  LUs are refcounted by the SCSI core, so a LUN
 * deleted while commands are in flight lives until the last command drops
 * its reference.
 *
 * Blocking work (opening a backing store may create a file) is done without
 * reg_lock so that logins on the reactors never wait for the control plane.
 */
#include "registry.h"
#include "scsi_pr.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/acl.h"
#include "../core/log.h"
#include "../core/version.h"

/* SAM-5 4.6.7: single level flat space addressing carries 14 bits, and the
 * fabric decodes LUNs 0..16383; larger numbers could not be addressed. */
#define REG_LUN_MAX 16383

/* SPC-4 table F.2: additional sense codes the registry raises as UAs. */
#define ASC_REPORTED_LUNS_CHANGED 0x3f
#define ASCQ_REPORTED_LUNS_CHANGED 0x0e
#define ASC_CAPACITY_CHANGED 0x2a
#define ASCQ_CAPACITY_CHANGED 0x09

struct reg_lun {
	uint64_t lun;
	struct scsi_lu *lu;
	char bstype[16];
	char *path;
	bool direct;
	bool thin;              /* thin_provisioning was asked for */
};

struct reg_session {
	struct reg_session_info info;
	struct reg_session *next;
};

/* A CHAP account (tgtadm --mode account).  The secret never leaves this
 * file except through reg_chap_*() to the login code and reg_dump_config(). */
struct reg_account {
	char user[REG_CHAP_USER_MAX];
	char secret[REG_CHAP_SECRET_MAX];
	struct reg_account *next;       /* sorted by user */
};

/* Accounts bound to a target or to discovery sessions (by name, so that an
 * account is looked up, and its current secret used, at every login). */
struct chap_bind {
	char (*in)[REG_CHAP_USER_MAX];  /* incoming: initiators authenticating to us */
	int nin;
	char out[REG_CHAP_USER_MAX];    /* outgoing (mutual CHAP); "" = none */
};

struct iscsi_target {
	int tid;
	char name[REG_NAME_MAX];
	atomic_int refcnt;
	bool deleted;                   /* unlinked from the list (reg_lock) */

	pthread_rwlock_t lun_lock;
	struct reg_lun *luns;           /* sorted by lun */
	int nluns, cap_luns;

	struct acl_addr *addr_acls;     /* reg_lock */
	int naddr;
	char (*name_acls)[REG_NAME_MAX];
	int nname;

	struct reg_session *sessions;   /* reg_lock */
	int nsessions;

	struct chap_bind chap;          /* reg_lock */

	struct iscsi_target *next;      /* list sorted by tid */
};

static char appliance_id[40];

void reg_set_appliance_id(const char *id)
{
	snprintf(appliance_id, sizeof(appliance_id), "%s", id ? id : "");
}

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iscsi_target *targets;
static struct reg_account *accounts;   /* reg_lock */
static struct chap_bind disc_chap;     /* discovery sessions (tid 0); reg_lock */
static atomic_uint_fast64_t next_nexus_id = 1;

static struct {
	char version[32];
	int nr_reactors;
	char (*portals)[96];
	int nportals;
} sysinfo;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- names ---- */

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[n] == '\0';
}

int reg_name_check(const char *name, char *err, size_t errlen)
{
	size_t len;

	if (!name || !*name) {
		set_err(err, errlen, "missing iSCSI name");
		return -EINVAL;
	}
	len = strlen(name);
	if (len > REG_NAME_MAX - 1) {
		set_err(err, errlen, "iSCSI name too long (%zu bytes, at most 223)", len);
		return -EINVAL;
	}
	/* RFC 7143 4.2.7.2 (and RFC 3722): after normalisation only lowercase
	 * ASCII letters, digits, '-', '.' and ':' remain.  Uppercase is
	 * refused rather than silently folded so that what the admin types is
	 * what initiators see; EUI/NAA hex digits may be either case. */
	if (strncmp(name, "iqn.", 4) == 0) {
		const char *p = name + 4;
		/* "yyyy-mm." date code */
		for (int i = 0; i < 7; i++) {
			if (i == 4 ? p[i] != '-' : !isdigit((unsigned char)p[i]))
				goto bad_iqn;
		}
		int month = (p[5] - '0') * 10 + (p[6] - '0');
		if (month < 1 || month > 12 || p[7] != '.' || p[8] == '\0' || p[8] == '.' ||
		    p[8] == ':')
			goto bad_iqn;
		for (const char *q = p + 8; *q; q++) {
			unsigned char c = (unsigned char)*q;
			if (!(islower(c) || isdigit(c) || c == '-' || c == '.' || c == ':')) {
				set_err(err, errlen, "invalid iSCSI name '%s': character '%c' not allowed "
					"(lowercase letters, digits, '-', '.', ':')", name,
					isprint(c) ? c : '?');
				return -EINVAL;
			}
		}
		return 0;
bad_iqn:
		set_err(err, errlen, "invalid iSCSI name '%s': expected iqn.YYYY-MM.reverse.domain[:identifier]",
			name);
		return -EINVAL;
	}
	if (strncmp(name, "eui.", 4) == 0) {
		if (len == 4 + 16 && all_hex(name + 4, 16))
			return 0;
		set_err(err, errlen, "invalid iSCSI name '%s': expected eui. and 16 hex digits", name);
		return -EINVAL;
	}
	if (strncmp(name, "naa.", 4) == 0) {
		if ((len == 4 + 16 && all_hex(name + 4, 16)) || (len == 4 + 32 && all_hex(name + 4, 32)))
			return 0;
		set_err(err, errlen, "invalid iSCSI name '%s': expected naa. and 16 or 32 hex digits", name);
		return -EINVAL;
	}
	set_err(err, errlen, "invalid iSCSI name '%s': must start with iqn., eui. or naa.", name);
	return -EINVAL;
}

const char *reg_bstype_canonical(const char *bstype)
{
	if (!bstype || !*bstype)
		return "file";
	/* tgt's rdwr/aio both read and write a file or block device. */
	if (!strcmp(bstype, "file") || !strcmp(bstype, "rdwr") || !strcmp(bstype, "aio") ||
	    !strcmp(bstype, "block") || !strcmp(bstype, "blockdev"))
		return "file";
	if (!strcmp(bstype, "null"))
		return "null";
	return NULL;
}

/* ---- lifetime ---- */

int reg_init(void)
{
	return 0;
}

static void target_free(struct iscsi_target *t)
{
	for (int i = 0; i < t->nluns; i++) {
		scsi_lu_put(t->luns[i].lu);
		free(t->luns[i].path);
	}
	while (t->sessions) {
		struct reg_session *s = t->sessions;
		t->sessions = s->next;
		free(s);
	}
	free(t->luns);
	free(t->addr_acls);
	free(t->name_acls);
	free(t->chap.in);
	pthread_rwlock_destroy(&t->lun_lock);
	free(t);
}

void reg_target_put(struct iscsi_target *t)
{
	if (t && atomic_fetch_sub(&t->refcnt, 1) == 1)
		target_free(t);
}

/* reg_lock held */
static struct iscsi_target *find_tid(int tid)
{
	for (struct iscsi_target *t = targets; t; t = t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

/* Take reg_lock and find target tid.  NULL (lock released, err set) if it
 * does not exist; otherwise the caller holds reg_lock. */
static struct iscsi_target *lock_tid(int tid, char *err, size_t errlen)
{
	struct iscsi_target *t;

	pthread_mutex_lock(&reg_lock);
	t = find_tid(tid);
	if (!t) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "can't find the target %d", tid);
	}
	return t;
}

/* reg_lock held.  Names compare case-insensitively (RFC 3722 normalises case). */
static struct iscsi_target *find_name(const char *name)
{
	for (struct iscsi_target *t = targets; t; t = t->next)
		if (strcasecmp(t->name, name) == 0)
			return t;
	return NULL;
}

void reg_shutdown(void)
{
	struct iscsi_target *list;

	pthread_mutex_lock(&reg_lock);
	list = targets;
	targets = NULL;
	for (struct iscsi_target *t = list; t; t = t->next)
		t->deleted = true;
	pthread_mutex_unlock(&reg_lock);
	while (list) {
		struct iscsi_target *t = list;
		list = t->next;
		reg_target_put(t);
	}
	pthread_mutex_lock(&reg_lock);
	free(sysinfo.portals);
	sysinfo.portals = NULL;
	sysinfo.nportals = 0;
	while (accounts) {
		struct reg_account *a = accounts;
		accounts = a->next;
		explicit_bzero(a->secret, sizeof(a->secret));
		free(a);
	}
	free(disc_chap.in);
	memset(&disc_chap, 0, sizeof(disc_chap));
	pthread_mutex_unlock(&reg_lock);
}

/* ---- targets ---- */

int reg_target_new(int tid, const char *iqn, char *err, size_t errlen)
{
	struct iscsi_target *t, **pp;
	int ret;

	if (tid <= 0) {
		set_err(err, errlen, "invalid tid %d (must be > 0)", tid);
		return -EINVAL;
	}
	ret = reg_name_check(iqn, err, errlen);
	if (ret < 0)
		return ret;
	t = calloc(1, sizeof(*t));
	if (!t) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->tid = tid;
	snprintf(t->name, sizeof(t->name), "%s", iqn);
	atomic_init(&t->refcnt, 1);
	pthread_rwlock_init(&t->lun_lock, NULL);

	pthread_mutex_lock(&reg_lock);
	if (find_tid(tid)) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "target %d already exists", tid);
		target_free(t);
		return -EEXIST;
	}
	if (find_name(iqn)) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "target name %s already exists", iqn);
		target_free(t);
		return -EEXIST;
	}
	for (pp = &targets; *pp && (*pp)->tid < tid; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	pthread_mutex_unlock(&reg_lock);
	log_notice("target %d %s created", tid, iqn);
	return 0;
}

int reg_target_delete(int tid, bool force, char *err, size_t errlen)
{
	struct iscsi_target *t, **pp;

	pthread_mutex_lock(&reg_lock);
	for (pp = &targets; *pp && (*pp)->tid != tid; pp = &(*pp)->next)
		;
	t = *pp;
	if (!t) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "can't find the target %d", tid);
		return -ENOENT;
	}
	if (t->nsessions && !force) {
		int n = t->nsessions;
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "target %d is still active: %d session%s (use --force)", tid, n,
			n == 1 ? "" : "s");
		return -EBUSY;
	}
	/* kill() only posts the close to the session's reactor (registry.h),
	 * so calling it under reg_lock cannot deadlock; the session later
	 * unregisters itself and drops its reference. */
	for (struct reg_session *s = t->sessions; s; s = s->next)
		if (s->info.kill)
			s->info.kill(s->info.kill_ctx);
	*pp = t->next;
	t->next = NULL;
	t->deleted = true;
	pthread_mutex_unlock(&reg_lock);
	log_notice("target %d %s deleted%s", tid, t->name, force ? " (forced)" : "");
	reg_target_put(t);
	return 0;
}

bool reg_target_exists(int tid)
{
	bool found;

	pthread_mutex_lock(&reg_lock);
	found = find_tid(tid) != NULL;
	pthread_mutex_unlock(&reg_lock);
	return found;
}

int reg_target_nsessions(int tid)
{
	struct iscsi_target *t;
	int n;

	pthread_mutex_lock(&reg_lock);
	t = find_tid(tid);
	n = t ? t->nsessions : -ENOENT;
	pthread_mutex_unlock(&reg_lock);
	return n;
}

/* Find a live target by tid and take a reference (control plane helper). */
static struct iscsi_target *get_tid(int tid, char *err, size_t errlen)
{
	struct iscsi_target *t;

	pthread_mutex_lock(&reg_lock);
	t = find_tid(tid);
	if (t)
		atomic_fetch_add(&t->refcnt, 1);
	pthread_mutex_unlock(&reg_lock);
	if (!t)
		set_err(err, errlen, "can't find the target %d", tid);
	return t;
}

/* ---- LUNs ---- */

/* lun_lock held (read or write).  Index of lun, or -(insertion point)-1. */
static int lun_index(const struct iscsi_target *t, uint64_t lun)
{
	int lo = 0, hi = t->nluns - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (t->luns[mid].lun == lun)
			return mid;
		if (t->luns[mid].lun < lun)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -lo - 1;
}

/* reg_lock held.  Queue (asc, ascq) on every LU of t for every session
 * nexus except `except`; lun == UINT64_MAX for all LUs. */
static void ua_fanout_locked(struct iscsi_target *t, uint64_t lun, uint64_t except,
			     uint8_t asc, uint8_t ascq)
{
	pthread_rwlock_rdlock(&t->lun_lock);
	for (struct reg_session *s = t->sessions; s; s = s->next) {
		if (s->info.nexus_id == except)
			continue;
		for (int i = 0; i < t->nluns; i++)
			if (lun == UINT64_MAX || t->luns[i].lun == lun)
				scsi_lu_ua_add(t->luns[i].lu, s->info.nexus_id, asc, ascq);
	}
	pthread_rwlock_unlock(&t->lun_lock);
}

int reg_lun_new(int tid, const struct reg_lun_spec *spec, char *err, size_t errlen)
{
	struct iscsi_target *t;
	struct bstore *bs = NULL;
	struct scsi_lu *lu;
	struct scsi_lu_params lp;
	struct bstore_params bp;
	const char *type;
	char seed[REG_NAME_MAX + 80];
	int ret, idx;

	if (!spec) {
		set_err(err, errlen, "missing LUN specification");
		return -EINVAL;
	}
	if (spec->lun > REG_LUN_MAX) {
		set_err(err, errlen, "invalid LUN %" PRIu64 " (0..%d)", spec->lun, REG_LUN_MAX);
		return -EINVAL;
	}
	type = reg_bstype_canonical(spec->bstype);
	if (!type || !bstore_find_ops(type)) {
		set_err(err, errlen, "unknown backing store type '%s' (file, rdwr, aio, null)",
			spec->bstype ? spec->bstype : "");
		return -EINVAL;
	}
	if (strcmp(type, "file") == 0 && (!spec->path || !*spec->path)) {
		set_err(err, errlen, "LUN %" PRIu64 ": a backing store path is required", spec->lun);
		return -EINVAL;
	}
	bp = spec->bs;
	if (bp.block_size == 0)
		bp.block_size = 512;
	if (bp.block_size != 512 && bp.block_size != 4096) {
		set_err(err, errlen, "invalid block size %u (512 or 4096)", bp.block_size);
		return -EINVAL;
	}
	if (spec->lu.readonly)
		bp.readonly = true;

	t = get_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	pthread_rwlock_rdlock(&t->lun_lock);
	idx = lun_index(t, spec->lun);
	pthread_rwlock_unlock(&t->lun_lock);
	if (idx >= 0) {
		set_err(err, errlen, "LUN %" PRIu64 " of target %d already exists", spec->lun, tid);
		reg_target_put(t);
		return -EEXIST;
	}

	/* May block (file creation, a slow device): no registry lock held. */
	ret = bstore_open(type, spec->path && *spec->path ? spec->path : NULL, &bp, &bs);
	if (ret < 0) {
		set_err(err, errlen, "can't open backing store '%s': %s",
			spec->path && *spec->path ? spec->path : "(null)", strerror(-ret));
		reg_target_put(t);
		return ret;
	}
	lp = spec->lu;
	lp.readonly = bp.readonly || bs->readonly;
	/* The appliance id keeps identities unique between appliances that share
	 * a configuration; target name + LUN keep them stable across restarts. */
	if (appliance_id[0])
		snprintf(seed, sizeof(seed), "%s/%s/%" PRIu64, appliance_id, t->name, spec->lun);
	else
		snprintf(seed, sizeof(seed), "%s/%" PRIu64, t->name, spec->lun);
	lp.naa_seed = seed;
	lu = scsi_lu_create(spec->lun, bs, &lp);
	if (!lu) {
		bstore_close(bs);
		set_err(err, errlen, "can't create LUN %" PRIu64 " (out of memory or bad parameters)",
			spec->lun);
		reg_target_put(t);
		return -ENOMEM;
	}
	/* Restore APTPL reservations now, on the control plane, so that the file
	 * read never happens on a reactor at the LU's first command. */
	scsi_pr_load(lu);

	pthread_mutex_lock(&reg_lock);
	if (t->deleted) {
		ret = -ENOENT;
		set_err(err, errlen, "target %d was deleted meanwhile", tid);
		goto fail_locked;
	}
	pthread_rwlock_wrlock(&t->lun_lock);
	idx = lun_index(t, spec->lun);
	if (idx >= 0) {
		pthread_rwlock_unlock(&t->lun_lock);
		ret = -EEXIST;
		set_err(err, errlen, "LUN %" PRIu64 " of target %d already exists", spec->lun, tid);
		goto fail_locked;
	}
	idx = -idx - 1;
	if (t->nluns == t->cap_luns) {
		int ncap = t->cap_luns ? t->cap_luns * 2 : 4;
		struct reg_lun *n = realloc(t->luns, sizeof(*n) * (size_t)ncap);
		if (!n) {
			pthread_rwlock_unlock(&t->lun_lock);
			ret = -ENOMEM;
			set_err(err, errlen, "out of memory");
			goto fail_locked;
		}
		t->luns = n;
		t->cap_luns = ncap;
	}
	memmove(&t->luns[idx + 1], &t->luns[idx], sizeof(t->luns[0]) * (size_t)(t->nluns - idx));
	struct reg_lun *rl = &t->luns[idx];
	memset(rl, 0, sizeof(*rl));
	rl->lun = spec->lun;
	rl->lu = lu;
	snprintf(rl->bstype, sizeof(rl->bstype), "%s", type);
	rl->path = strdup(spec->path && *spec->path ? spec->path : "None");
	rl->direct = bp.direct;
	rl->thin = spec->lu.thin_provisioning;
	t->nluns++;
	pthread_rwlock_unlock(&t->lun_lock);
	/* SPC-4 5.x / SAM-5 5.14: the inventory changed; tell every nexus
	 * (on every LU so that whatever it addresses next reports it). */
	ua_fanout_locked(t, UINT64_MAX, 0, ASC_REPORTED_LUNS_CHANGED, ASCQ_REPORTED_LUNS_CHANGED);
	pthread_mutex_unlock(&reg_lock);
	log_notice("target %d: LUN %" PRIu64 " created (%s %s, %" PRIu64 " bytes)", tid, spec->lun,
		   type, spec->path && *spec->path ? spec->path : "-", bs->size);
	reg_target_put(t);
	return 0;

fail_locked:
	pthread_mutex_unlock(&reg_lock);
	scsi_lu_put(lu);
	reg_target_put(t);
	return ret;
}

int reg_lun_delete(int tid, uint64_t lun, char *err, size_t errlen)
{
	struct iscsi_target *t;
	struct reg_lun gone;
	int idx;

	t = lock_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	pthread_rwlock_wrlock(&t->lun_lock);
	idx = lun_index(t, lun);
	if (idx < 0) {
		pthread_rwlock_unlock(&t->lun_lock);
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "can't find LUN %" PRIu64 " of target %d", lun, tid);
		return -ENOENT;
	}
	gone = t->luns[idx];
	memmove(&t->luns[idx], &t->luns[idx + 1], sizeof(t->luns[0]) * (size_t)(t->nluns - idx - 1));
	t->nluns--;
	pthread_rwlock_unlock(&t->lun_lock);
	ua_fanout_locked(t, UINT64_MAX, 0, ASC_REPORTED_LUNS_CHANGED, ASCQ_REPORTED_LUNS_CHANGED);
	pthread_mutex_unlock(&reg_lock);
	/* Commands in flight hold their own LU references; the backing store
	 * closes when the last one completes. */
	scsi_lu_put(gone.lu);
	free(gone.path);
	log_notice("target %d: LUN %" PRIu64 " deleted", tid, lun);
	return 0;
}

/* The LU's size changed (or may have): re-read it and, if it moved, tell
 * every nexus.  Returns 0 or -errno. */
static int capacity_changed(struct iscsi_target *t, int tid, uint64_t lun, struct scsi_lu *lu,
			    char *err, size_t errlen)
{
	int ret = scsi_lu_refresh_capacity(lu);

	if (ret < 0) {
		set_err(err, errlen, "can't re-read the size of LUN %" PRIu64 ": %s", lun, strerror(-ret));
		return ret;
	}
	if (ret > 0) {
		/* SBC-3 4.6 / SPC-4 table F.2: CAPACITY DATA HAS CHANGED (2A/09)
		 * is a unit attention for every I_T nexus, so that initiators
		 * re-read the capacity before trusting their cached value. */
		reg_target_ua(t, lun, 0, ASC_CAPACITY_CHANGED, ASCQ_CAPACITY_CHANGED);
		log_notice("target %d: LUN %" PRIu64 " resized to %" PRIu64 " blocks", tid, lun,
			   (uint64_t)atomic_load(&lu->nr_blocks));
	}
	return 0;
}

int reg_lun_refresh(int tid, uint64_t lun, char *err, size_t errlen)
{
	struct iscsi_target *t;
	struct scsi_lu *lu;
	int ret;

	t = get_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	lu = reg_target_lun_get(t, lun);
	if (!lu) {
		set_err(err, errlen, "can't find LUN %" PRIu64 " of target %d", lun, tid);
		reg_target_put(t);
		return -ENOENT;
	}
	ret = capacity_changed(t, tid, lun, lu, err, errlen);
	scsi_lu_put(lu);
	reg_target_put(t);
	return ret;
}

int reg_lun_resize(int tid, uint64_t lun, uint64_t size, bool force, char *err, size_t errlen)
{
	struct iscsi_target *t;
	struct scsi_lu *lu;
	struct bstore *bs;
	uint64_t old;
	int ret = 0;

	t = get_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	lu = reg_target_lun_get(t, lun);
	if (!lu) {
		set_err(err, errlen, "can't find LUN %" PRIu64 " of target %d", lun, tid);
		reg_target_put(t);
		return -ENOENT;
	}
	bs = lu->bs;
	old = (uint64_t)atomic_load(&lu->nr_blocks) * lu->block_size;
	if (size == 0 || size % lu->block_size) {
		set_err(err, errlen, "size %" PRIu64 " is not a positive multiple of the block size %u",
			size, lu->block_size);
		ret = -EINVAL;
	} else if (size > (uint64_t)INT64_MAX) {
		set_err(err, errlen, "size %" PRIu64 " is too large", size);
		ret = -EINVAL;
	} else if (lu->readonly || bs->readonly) {
		set_err(err, errlen, "LUN %" PRIu64 " of target %d is read-only", lun, tid);
		ret = -EROFS;
	} else if (size < old && !force) {
		/* Shrinking throws away whatever lies past the new end and
		 * breaks any filesystem on the LU: only on explicit request. */
		set_err(err, errlen, "shrinking LUN %" PRIu64 " from %" PRIu64 " to %" PRIu64
			" bytes destroys data; use --force", lun, old, size);
		ret = -EINVAL;
	} else if (bs->ops && bs->ops->name && strcmp(bs->ops->name, "null") == 0) {
		/* Nothing behind it: the size is just a number.  (A plain
		 * 64-bit store; the data path only bounds-checks against it.) */
		bs->size = size;
	} else if (bs->is_blockdev) {
		set_err(err, errlen, "LUN %" PRIu64 " is a block device: resize the device, then "
			"use --params refresh", lun);
		ret = -EINVAL;
	} else {
		struct stat st;
		if (bs->fd < 0 || fstat(bs->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			set_err(err, errlen, "LUN %" PRIu64 ": the backing store is not a regular file", lun);
			ret = -EINVAL;
		} else if (ftruncate(bs->fd, (off_t)size) < 0) {
			ret = -errno;
			set_err(err, errlen, "can't resize %s: %s", bs->path ? bs->path : "the backing file",
				strerror(errno));
		}
	}
	if (ret == 0)
		ret = capacity_changed(t, tid, lun, lu, err, errlen);
	scsi_lu_put(lu);
	reg_target_put(t);
	return ret;
}

/* ---- ACLs ---- */

int reg_bind_addr(int tid, const char *spec, char *err, size_t errlen)
{
	struct acl_addr a;
	struct iscsi_target *t;
	char msg[160];

	if (acl_addr_parse(spec, &a, msg, sizeof(msg)) < 0) {
		set_err(err, errlen, "%s", msg);
		return -EINVAL;
	}
	t = lock_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	for (int i = 0; i < t->naddr; i++) {
		if (strcmp(t->addr_acls[i].text, a.text) == 0) {
			pthread_mutex_unlock(&reg_lock);
			set_err(err, errlen, "target %d: address %s is already bound", tid, a.text);
			return -EEXIST;
		}
	}
	struct acl_addr *n = realloc(t->addr_acls, sizeof(*n) * (size_t)(t->naddr + 1));
	if (!n) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->addr_acls = n;
	t->addr_acls[t->naddr++] = a;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

int reg_unbind_addr(int tid, const char *spec, char *err, size_t errlen)
{
	struct acl_addr a;
	struct iscsi_target *t;
	char msg[160];

	if (acl_addr_parse(spec, &a, msg, sizeof(msg)) < 0) {
		set_err(err, errlen, "%s", msg);
		return -EINVAL;
	}
	t = lock_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	for (int i = 0; i < t->naddr; i++) {
		if (strcmp(t->addr_acls[i].text, a.text) == 0) {
			memmove(&t->addr_acls[i], &t->addr_acls[i + 1],
				sizeof(a) * (size_t)(t->naddr - i - 1));
			t->naddr--;
			pthread_mutex_unlock(&reg_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	set_err(err, errlen, "target %d: address %s is not bound", tid, a.text);
	return -ENOENT;
}

int reg_bind_initiator(int tid, const char *iqn, char *err, size_t errlen)
{
	struct iscsi_target *t;
	int ret = reg_name_check(iqn, err, errlen);

	if (ret < 0)
		return ret;
	t = lock_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	for (int i = 0; i < t->nname; i++) {
		if (strcasecmp(t->name_acls[i], iqn) == 0) {
			pthread_mutex_unlock(&reg_lock);
			set_err(err, errlen, "target %d: initiator %s is already bound", tid, iqn);
			return -EEXIST;
		}
	}
	char (*n)[REG_NAME_MAX] = realloc(t->name_acls, sizeof(*n) * (size_t)(t->nname + 1));
	if (!n) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->name_acls = n;
	snprintf(t->name_acls[t->nname++], REG_NAME_MAX, "%s", iqn);
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

int reg_unbind_initiator(int tid, const char *iqn, char *err, size_t errlen)
{
	struct iscsi_target *t;

	if (!iqn || !*iqn) {
		set_err(err, errlen, "missing initiator name");
		return -EINVAL;
	}
	t = lock_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	for (int i = 0; i < t->nname; i++) {
		if (strcasecmp(t->name_acls[i], iqn) == 0) {
			memmove(&t->name_acls[i], &t->name_acls[i + 1],
				sizeof(t->name_acls[0]) * (size_t)(t->nname - i - 1));
			t->nname--;
			pthread_mutex_unlock(&reg_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	set_err(err, errlen, "target %d: initiator %s is not bound", tid, iqn);
	return -ENOENT;
}

/* reg_lock held.  tgt semantics: no rule admits nobody; any match admits. */
static bool permits_locked(const struct iscsi_target *t, const struct sockaddr *peer,
			   const char *initiator)
{
	for (int i = 0; i < t->naddr; i++)
		if (acl_addr_match(&t->addr_acls[i], peer))
			return true;
	if (initiator && *initiator)
		for (int i = 0; i < t->nname; i++)
			if (strcasecmp(t->name_acls[i], initiator) == 0)
				return true;
	return false;
}

bool reg_target_permits(struct iscsi_target *t, const struct sockaddr *peer,
			const char *initiator)
{
	bool ok;

	if (!t)
		return false;
	pthread_mutex_lock(&reg_lock);
	ok = !t->deleted && permits_locked(t, peer, initiator);
	pthread_mutex_unlock(&reg_lock);
	return ok;
}

/* ---- fabric side ---- */

struct iscsi_target *reg_target_get(const char *iqn)
{
	struct iscsi_target *t;

	if (!iqn)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	t = find_name(iqn);
	if (t)
		atomic_fetch_add(&t->refcnt, 1);
	pthread_mutex_unlock(&reg_lock);
	return t;
}

const char *reg_target_name(const struct iscsi_target *t)
{
	return t ? t->name : "";
}

int reg_target_tid(const struct iscsi_target *t)
{
	return t ? t->tid : -1;
}

struct scsi_lu *reg_target_lun_get(struct iscsi_target *t, uint64_t lun)
{
	struct scsi_lu *lu = NULL;
	int idx;

	if (!t)
		return NULL;
	pthread_rwlock_rdlock(&t->lun_lock);
	idx = lun_index(t, lun);
	if (idx >= 0) {
		lu = t->luns[idx].lu;
		scsi_lu_get(lu);
	}
	pthread_rwlock_unlock(&t->lun_lock);
	return lu;
}

int reg_target_luns(struct iscsi_target *t, uint64_t *luns, int max)
{
	int n;

	if (!t)
		return 0;
	pthread_rwlock_rdlock(&t->lun_lock);
	n = t->nluns;
	for (int i = 0; i < n && i < max; i++)
		luns[i] = t->luns[i].lun;
	pthread_rwlock_unlock(&t->lun_lock);
	return n;
}

void reg_foreach_permitted(const struct sockaddr *peer, const char *initiator,
			   void (*fn)(const char *iqn, void *arg), void *arg)
{
	char (*names)[REG_NAME_MAX] = NULL;
	int n = 0, cap = 0;

	/* Collect first, call later: fn (a SendTargets encoder) runs without
	 * reg_lock so it may do what it likes. */
	pthread_mutex_lock(&reg_lock);
	for (struct iscsi_target *t = targets; t; t = t->next) {
		if (!permits_locked(t, peer, initiator))
			continue;
		if (n == cap) {
			int ncap = cap ? cap * 2 : 8;
			char (*nn)[REG_NAME_MAX] = realloc(names, sizeof(*nn) * (size_t)ncap);
			if (!nn)
				break;
			names = nn;
			cap = ncap;
		}
		memcpy(names[n++], t->name, REG_NAME_MAX);
	}
	pthread_mutex_unlock(&reg_lock);
	for (int i = 0; i < n; i++)
		fn(names[i], arg);
	free(names);
}

int reg_session_add(struct iscsi_target *t, const struct reg_session_info *info)
{
	struct reg_session *s, **pp;

	if (!t || !info || info->nexus_id == 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->info = *info;
	pthread_mutex_lock(&reg_lock);
	if (t->deleted) {
		pthread_mutex_unlock(&reg_lock);
		free(s);
		return -ENOENT;
	}
	for (pp = &t->sessions; *pp; pp = &(*pp)->next) {
		if ((*pp)->info.nexus_id == info->nexus_id) {
			pthread_mutex_unlock(&reg_lock);
			free(s);
			return -EEXIST;
		}
	}
	*pp = s;          /* append: show lists sessions in login order */
	t->nsessions++;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

void reg_session_del(struct iscsi_target *t, uint64_t nexus_id)
{
	struct reg_session *s = NULL, **pp;

	if (!t)
		return;
	pthread_mutex_lock(&reg_lock);
	for (pp = &t->sessions; *pp; pp = &(*pp)->next) {
		if ((*pp)->info.nexus_id == nexus_id) {
			s = *pp;
			*pp = s->next;
			t->nsessions--;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (!s)
		return;
	free(s);
	/* SAM-5 5.14: pending UAs belong to the nexus and die with it. */
	pthread_rwlock_rdlock(&t->lun_lock);
	for (int i = 0; i < t->nluns; i++)
		scsi_lu_ua_clear_nexus(t->luns[i].lu, nexus_id);
	pthread_rwlock_unlock(&t->lun_lock);
}

void reg_target_ua(struct iscsi_target *t, uint64_t lun, uint64_t except_nexus,
		   uint8_t asc, uint8_t ascq)
{
	if (!t)
		return;
	pthread_mutex_lock(&reg_lock);
	ua_fanout_locked(t, lun, except_nexus, asc, ascq);
	pthread_mutex_unlock(&reg_lock);
}

uint64_t reg_new_nexus_id(void)
{
	uint64_t id;

	do
		id = atomic_fetch_add(&next_nexus_id, 1);
	while (id == 0);
	return id;
}

void reg_set_sys_info(const char *version, int nr_reactors,
		      const char *const *portals, int nportals)
{
	pthread_mutex_lock(&reg_lock);
	snprintf(sysinfo.version, sizeof(sysinfo.version), "%s", version ? version : "");
	sysinfo.nr_reactors = nr_reactors;
	free(sysinfo.portals);
	sysinfo.portals = NULL;
	sysinfo.nportals = 0;
	if (nportals > 0 && portals) {
		sysinfo.portals = calloc((size_t)nportals, sizeof(*sysinfo.portals));
		if (sysinfo.portals) {
			for (int i = 0; i < nportals; i++)
				snprintf(sysinfo.portals[i], sizeof(sysinfo.portals[i]), "%s",
					 portals[i] ? portals[i] : "");
			sysinfo.nportals = nportals;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- CHAP accounts (tgtadm --mode account) ---- */

int reg_chap_user_check(const char *user, char *err, size_t errlen)
{
	size_t len;

	if (!user || !*user) {
		set_err(err, errlen, "missing account user name");
		return -EINVAL;
	}
	len = strlen(user);
	if (len >= REG_CHAP_USER_MAX) {
		set_err(err, errlen, "account user name too long (%zu bytes, at most %d)", len,
			REG_CHAP_USER_MAX - 1);
		return -EINVAL;
	}
	/* CHAP_N travels as a text value (RFC 7143 6.1, 12.1.3); printable
	 * ASCII without spaces keeps it unambiguous in show output, config
	 * files and initiator tools alike. */
	for (const char *p = user; *p; p++) {
		if (!isgraph((unsigned char)*p)) {
			set_err(err, errlen, "account user name must be printable ASCII without spaces");
			return -EINVAL;
		}
	}
	return 0;
}

int reg_chap_secret_check(const char *secret, char *err, size_t errlen)
{
	size_t len;

	if (!secret || !*secret) {
		set_err(err, errlen, "missing account password");
		return -EINVAL;
	}
	len = strlen(secret);
	if (len >= REG_CHAP_SECRET_MAX) {
		set_err(err, errlen, "account password too long (%zu bytes, at most %d)", len,
			REG_CHAP_SECRET_MAX - 1);
		return -EINVAL;
	}
	for (const unsigned char *p = (const unsigned char *)secret; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			set_err(err, errlen, "account password must not contain control characters");
			return -EINVAL;
		}
	}
	/* RFC 7143 9.2.1: without IPsec a CHAP secret MUST be at least 96
	 * bits; shorter ones are still accepted (initiators in the field use
	 * them) but the admin is told. */
	if (len < REG_CHAP_SECRET_MIN) {
		set_err(err, errlen, "warning: password shorter than %d bytes; RFC 7143 9.2.1 asks "
			"for at least 96-bit CHAP secrets", REG_CHAP_SECRET_MIN);
		return 1;
	}
	return 0;
}

/* reg_lock held */
static struct reg_account *find_account(const char *user)
{
	for (struct reg_account *a = accounts; a; a = a->next)
		if (strcmp(a->user, user) == 0)
			return a;
	return NULL;
}

/* reg_lock held.  tid 0 = discovery.  NULL (message in err) if no target. */
static struct chap_bind *find_bind(int tid, char *err, size_t errlen)
{
	struct iscsi_target *t;

	if (tid == 0)
		return &disc_chap;
	t = tid > 0 ? find_tid(tid) : NULL;
	if (!t) {
		set_err(err, errlen, "can't find the target %d", tid);
		return NULL;
	}
	return &t->chap;
}

static int bind_in_index(const struct chap_bind *b, const char *user)
{
	for (int i = 0; i < b->nin; i++)
		if (strcmp(b->in[i], user) == 0)
			return i;
	return -1;
}

/* reg_lock held.  Is user bound (incoming if !outgoing, else outgoing) to
 * discovery or to any target?  Returns the tid (0 = discovery) or -1. */
static int bound_anywhere(const char *user, bool outgoing)
{
	if (outgoing ? strcmp(disc_chap.out, user) == 0 : bind_in_index(&disc_chap, user) >= 0)
		return 0;
	for (struct iscsi_target *t = targets; t; t = t->next)
		if (outgoing ? strcmp(t->chap.out, user) == 0 : bind_in_index(&t->chap, user) >= 0)
			return t->tid;
	return -1;
}

static void unbind_user(struct chap_bind *b, const char *user)
{
	int i = bind_in_index(b, user);

	if (i >= 0) {
		memmove(&b->in[i], &b->in[i + 1], sizeof(b->in[0]) * (size_t)(b->nin - i - 1));
		b->nin--;
	}
	if (strcmp(b->out, user) == 0)
		b->out[0] = '\0';
}

int reg_account_new(const char *user, const char *password, char *err, size_t errlen)
{
	struct reg_account *a, **pp;
	char warn[160] = "";
	int ret;

	ret = reg_chap_user_check(user, err, errlen);
	if (ret < 0)
		return ret;
	ret = reg_chap_secret_check(password, warn, sizeof(warn));
	if (ret < 0) {
		set_err(err, errlen, "%s", warn);
		return ret;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(a->user, sizeof(a->user), "%s", user);
	snprintf(a->secret, sizeof(a->secret), "%s", password);
	pthread_mutex_lock(&reg_lock);
	if (find_account(user)) {
		pthread_mutex_unlock(&reg_lock);
		explicit_bzero(a->secret, sizeof(a->secret));
		free(a);
		set_err(err, errlen, "account %s already exists", user);
		return -EEXIST;
	}
	for (pp = &accounts; *pp && strcmp((*pp)->user, user) < 0; pp = &(*pp)->next)
		;
	a->next = *pp;
	*pp = a;
	pthread_mutex_unlock(&reg_lock);
	/* the user name only: secrets are never logged */
	log_notice("account %s created%s", user, warn[0] ? " (short password)" : "");
	if (warn[0])
		set_err(err, errlen, "%s", warn);
	return 0;
}

int reg_account_delete(const char *user, char *err, size_t errlen)
{
	struct reg_account *a = NULL, **pp;

	if (!user || !*user) {
		set_err(err, errlen, "missing account user name");
		return -EINVAL;
	}
	pthread_mutex_lock(&reg_lock);
	for (pp = &accounts; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->user, user) == 0) {
			a = *pp;
			*pp = a->next;
			break;
		}
	}
	if (a) {
		/* tgt: deleting an account unbinds it everywhere, so no target
		 * keeps requiring a login nobody can perform by name. */
		unbind_user(&disc_chap, user);
		for (struct iscsi_target *t = targets; t; t = t->next)
			unbind_user(&t->chap, user);
	}
	pthread_mutex_unlock(&reg_lock);
	if (!a) {
		set_err(err, errlen, "can't find the account %s", user);
		return -ENOENT;
	}
	explicit_bzero(a->secret, sizeof(a->secret));
	free(a);
	log_notice("account %s deleted", user);
	return 0;
}

int reg_account_set_password(const char *user, const char *password, char *err, size_t errlen)
{
	struct reg_account *a;
	char warn[160] = "";
	int ret;

	if (!user || !*user) {
		set_err(err, errlen, "missing account user name");
		return -EINVAL;
	}
	ret = reg_chap_secret_check(password, warn, sizeof(warn));
	if (ret < 0) {
		set_err(err, errlen, "%s", warn);
		return ret;
	}
	pthread_mutex_lock(&reg_lock);
	a = find_account(user);
	if (a) {
		/* The secret is looked up at every login (reg_chap_*()), so
		 * sessions already authenticated are not affected. */
		explicit_bzero(a->secret, sizeof(a->secret));
		snprintf(a->secret, sizeof(a->secret), "%s", password);
	}
	pthread_mutex_unlock(&reg_lock);
	if (!a) {
		set_err(err, errlen, "can't find the account %s", user);
		return -ENOENT;
	}
	log_notice("account %s: password changed%s", user, warn[0] ? " (short password)" : "");
	if (warn[0])
		set_err(err, errlen, "%s", warn);
	return 0;
}

int reg_account_bind(int tid, const char *user, bool outgoing, char *err, size_t errlen)
{
	struct chap_bind *b;
	int other;

	if (!user || !*user) {
		set_err(err, errlen, "missing account user name");
		return -EINVAL;
	}
	pthread_mutex_lock(&reg_lock);
	b = find_bind(tid, err, errlen);
	if (!b) {
		pthread_mutex_unlock(&reg_lock);
		return -ENOENT;
	}
	if (!find_account(user)) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "can't find the account %s", user);
		return -ENOENT;
	}
	/* RFC 7143 9.2.1: a secret used to authenticate initiators MUST NOT
	 * be configured to authenticate any target, and vice versa; an
	 * account is one secret, so it serves one direction only. */
	other = bound_anywhere(user, !outgoing);
	if (other >= 0) {
		pthread_mutex_unlock(&reg_lock);
		if (other == 0)
			set_err(err, errlen, "account %s is bound %s to discovery; RFC 7143 9.2.1 forbids "
				"using one secret in both directions", user, outgoing ? "incoming" : "outgoing");
		else
			set_err(err, errlen, "account %s is bound %s to target %d; RFC 7143 9.2.1 forbids "
				"using one secret in both directions", user, outgoing ? "incoming" : "outgoing",
				other);
		return -EINVAL;
	}
	if (outgoing) {
		if (b->out[0]) {
			char cur[REG_CHAP_USER_MAX];
			snprintf(cur, sizeof(cur), "%s", b->out);
			pthread_mutex_unlock(&reg_lock);
			/* tgt's rule: one outgoing account per target (the target
			 * has one identity to prove). */
			if (strcmp(cur, user) == 0)
				set_err(err, errlen, "account %s is already bound as outgoing", user);
			else
				set_err(err, errlen, "%s already has an outgoing account (%s); unbind it first",
					tid ? "the target" : "discovery", cur);
			return -EEXIST;
		}
		snprintf(b->out, sizeof(b->out), "%s", user);
	} else {
		if (bind_in_index(b, user) >= 0) {
			pthread_mutex_unlock(&reg_lock);
			set_err(err, errlen, "account %s is already bound", user);
			return -EEXIST;
		}
		char (*n)[REG_CHAP_USER_MAX] = realloc(b->in, sizeof(*n) * (size_t)(b->nin + 1));
		if (!n) {
			pthread_mutex_unlock(&reg_lock);
			set_err(err, errlen, "out of memory");
			return -ENOMEM;
		}
		b->in = n;
		snprintf(b->in[b->nin++], REG_CHAP_USER_MAX, "%s", user);
	}
	pthread_mutex_unlock(&reg_lock);
	if (tid)
		log_notice("target %d: account %s bound%s", tid, user, outgoing ? " (outgoing)" : "");
	else
		log_notice("discovery: account %s bound%s", user, outgoing ? " (outgoing)" : "");
	return 0;
}

int reg_account_unbind(int tid, const char *user, bool outgoing, char *err, size_t errlen)
{
	struct chap_bind *b;
	int i;

	if (!user || !*user) {
		set_err(err, errlen, "missing account user name");
		return -EINVAL;
	}
	pthread_mutex_lock(&reg_lock);
	b = find_bind(tid, err, errlen);
	if (!b) {
		pthread_mutex_unlock(&reg_lock);
		return -ENOENT;
	}
	if (outgoing) {
		if (strcmp(b->out, user) != 0) {
			pthread_mutex_unlock(&reg_lock);
			set_err(err, errlen, "account %s is not bound as outgoing", user);
			return -ENOENT;
		}
		b->out[0] = '\0';
	} else {
		i = bind_in_index(b, user);
		if (i < 0) {
			pthread_mutex_unlock(&reg_lock);
			set_err(err, errlen, "account %s is not bound", user);
			return -ENOENT;
		}
		memmove(&b->in[i], &b->in[i + 1], sizeof(b->in[0]) * (size_t)(b->nin - i - 1));
		b->nin--;
	}
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

static void json_str(FILE *out, const char *s);

/* reg_lock held (both) */
static void show_bind_text(FILE *out, const struct chap_bind *b, const char *indent)
{
	for (int i = 0; i < b->nin; i++)
		fprintf(out, "%s%s\n", indent, b->in[i]);
	if (b->out[0])
		fprintf(out, "%s%s (outgoing)\n", indent, b->out);
}

static void show_bind_json(FILE *out, const struct chap_bind *b)
{
	fputc('[', out);
	for (int i = 0; i < b->nin; i++) {
		fputs(i ? ", {\"user\": " : "{\"user\": ", out);
		json_str(out, b->in[i]);
		fputs(", \"outgoing\": false}", out);
	}
	if (b->out[0]) {
		fputs(b->nin ? ", {\"user\": " : "{\"user\": ", out);
		json_str(out, b->out);
		fputs(", \"outgoing\": true}", out);
	}
	fputc(']', out);
}

void reg_show_accounts(FILE *out, bool json)
{
	pthread_mutex_lock(&reg_lock);
	if (json) {
		fputs("{\"accounts\": [", out);
		for (struct reg_account *a = accounts; a; a = a->next) {
			json_str(out, a->user);
			if (a->next)
				fputs(", ", out);
		}
		fputs("], \"discovery\": ", out);
		show_bind_json(out, &disc_chap);
		fputs("}\n", out);
	} else {
		/* tgt layout: the names only, never a secret. */
		fputs("Account list:\n", out);
		for (struct reg_account *a = accounts; a; a = a->next)
			fprintf(out, "    %s\n", a->user);
		if (disc_chap.nin || disc_chap.out[0]) {
			fputs("Discovery account information:\n", out);
			show_bind_text(out, &disc_chap, "    ");
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

bool reg_chap_required(struct iscsi_target *t)
{
	bool req;

	pthread_mutex_lock(&reg_lock);
	req = (t ? t->chap.nin : disc_chap.nin) > 0;
	pthread_mutex_unlock(&reg_lock);
	return req;
}

/* Copy a secret out; never truncates (a cut secret would just fail later). */
static int copy_secret(const struct reg_account *a, char *secret, size_t secret_len)
{
	size_t len = strlen(a->secret);

	if (!secret || secret_len <= len)
		return -ENOSPC;
	memcpy(secret, a->secret, len + 1);
	return 0;
}

int reg_chap_incoming_secret(struct iscsi_target *t, const char *user, char *secret,
			     size_t secret_len)
{
	const struct chap_bind *b;
	const struct reg_account *a;
	int ret = -ENOENT;

	if (!user)
		return -ENOENT;
	pthread_mutex_lock(&reg_lock);
	b = t ? &t->chap : &disc_chap;
	if (bind_in_index(b, user) >= 0 && (a = find_account(user)) != NULL)
		ret = copy_secret(a, secret, secret_len);
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

int reg_chap_outgoing(struct iscsi_target *t, char *user, size_t user_len, char *secret,
		      size_t secret_len)
{
	const struct chap_bind *b;
	const struct reg_account *a;
	int ret = -ENOENT;

	pthread_mutex_lock(&reg_lock);
	b = t ? &t->chap : &disc_chap;
	if (b->out[0] && (a = find_account(b->out)) != NULL) {
		if (!user || user_len <= strlen(a->user))
			ret = -ENOSPC;
		else {
			ret = copy_secret(a, secret, secret_len);
			if (ret == 0)
				snprintf(user, user_len, "%s", a->user);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

/* ---- show ---- */

/* JSON string (RFC 8259 7): escape quote, backslash and controls; pass valid
 * UTF-8 through and replace invalid bytes with U+FFFD so the output always
 * parses, whatever bytes a path holds. */
static void json_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	fputc('"', out);
	while (*p) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			p++;
		} else if (c < 0x80) {
			fputc(c, out);
			p++;
		} else {
			int n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
			bool ok = n != 0 && c != 0xc0 && c != 0xc1 && c <= 0xf4;
			for (int i = 1; ok && i < n; i++)
				ok = (p[i] & 0xc0) == 0x80;
			if (ok) {
				fwrite(p, 1, (size_t)n, out);
				p += n;
			} else {
				fputs("\\ufffd", out);
				p++;
			}
		}
	}
	fputc('"', out);
}

/* "ip:port" / "[v6]:port" -> "ip" */
static void peer_host(const char *peer, char *buf, size_t len)
{
	const char *end;

	if (peer[0] == '[') {
		end = strchr(peer, ']');
		snprintf(buf, len, "%.*s", end ? (int)(end - peer - 1) : (int)strlen(peer + 1), peer + 1);
		return;
	}
	end = strrchr(peer, ':');
	if (end && strchr(peer, ':') == end)
		snprintf(buf, len, "%.*s", (int)(end - peer), peer);
	else
		snprintf(buf, len, "%s", peer);
}

/* tgt prints sizes in (decimal) megabytes, rounded: 1 GiB is "1074 MB". */
static uint64_t size_mb(uint64_t bytes)
{
	return (bytes + 500000) / 1000000;
}

static void show_lun_text(FILE *out, const struct reg_lun *rl)
{
	const struct scsi_lu *lu = rl->lu;
	uint64_t bytes = (uint64_t)atomic_load(&lu->nr_blocks) * lu->block_size;
	bool readonly = lu->readonly || (lu->bs && lu->bs->readonly);

	fprintf(out, "        LUN: %" PRIu64 "\n", rl->lun);
	fprintf(out, "            Type: disk\n");
	fprintf(out, "            SCSI ID: %s\n", lu->serial);
	fprintf(out, "            SCSI SN: %s\n", lu->serial);
	fprintf(out, "            Size: %" PRIu64 " MB, Block size: %u\n", size_mb(bytes), lu->block_size);
	fprintf(out, "            Online: Yes\n");
	fprintf(out, "            Removable media: %s\n", lu->removable ? "Yes" : "No");
	fprintf(out, "            Prevent removal: %s\n", lu->removal_prevented ? "Yes" : "No");
	fprintf(out, "            Readonly: %s\n", readonly ? "Yes" : "No");
	fprintf(out, "            SWP: No\n");
	/* thin when asked for and the store can deallocate (SBC-3 4.7) */
	fprintf(out, "            Thin-provisioning: %s\n",
		rl->thin && lu->bs && lu->bs->can_discard ? "Yes" : "No");
	fprintf(out, "            Backing store type: %s\n", rl->bstype);
	fprintf(out, "            Backing store path: %s\n", rl->path ? rl->path : "None");
	fprintf(out, "            Backing store flags:%s\n", rl->direct ? " direct" : "");
}

static void show_lun_json(FILE *out, const struct reg_lun *rl)
{
	const struct scsi_lu *lu = rl->lu;
	uint64_t blocks = (uint64_t)atomic_load(&lu->nr_blocks);
	bool readonly = lu->readonly || (lu->bs && lu->bs->readonly);

	fprintf(out, "{\"lun\": %" PRIu64 ", \"type\": \"disk\", \"scsi_id\": ", rl->lun);
	json_str(out, lu->serial);
	fputs(", \"scsi_sn\": ", out);
	json_str(out, lu->serial);
	fprintf(out, ", \"size_bytes\": %" PRIu64 ", \"block_size\": %u, \"blocks\": %" PRIu64
		", \"online\": true, \"removable\": %s, \"readonly\": %s, \"thin_provisioning\": %s"
		", \"backing_store_type\": ",
		blocks * lu->block_size, lu->block_size, blocks, lu->removable ? "true" : "false",
		readonly ? "true" : "false",
		rl->thin && lu->bs && lu->bs->can_discard ? "true" : "false");
	json_str(out, rl->bstype);
	fputs(", \"backing_store_path\": ", out);
	json_str(out, rl->path);
	fprintf(out, ", \"direct\": %s, \"vendor\": ", rl->direct ? "true" : "false");
	json_str(out, lu->vendor);
	fputs(", \"product\": ", out);
	json_str(out, lu->product);
	fputs("}", out);
}

static void show_session_json(FILE *out, const struct reg_session_info *si, bool with_params)
{
	char host[64];

	peer_host(si->peer_addr, host, sizeof(host));
	fprintf(out, "{\"nexus\": %" PRIu64 ", \"tsih\": %u, \"isid\": \"%02x%02x%02x%02x%02x%02x\", "
		"\"initiator\": ", si->nexus_id, si->tsih, si->isid[0], si->isid[1], si->isid[2],
		si->isid[3], si->isid[4], si->isid[5]);
	json_str(out, si->initiator);
	fputs(", \"alias\": ", out);
	json_str(out, si->alias);
	fputs(", \"connections\": [{\"cid\": 0, \"address\": ", out);
	json_str(out, host);
	fputs(", \"peer\": ", out);
	json_str(out, si->peer_addr);
	fputs("}]", out);
	if (with_params) {
		/* "Key=Value\n" lines -> object */
		char buf[sizeof(si->params)];
		char *save = NULL, *line;
		bool first = true;

		snprintf(buf, sizeof(buf), "%s", si->params);
		fputs(", \"params\": {", out);
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *eq = strchr(line, '=');
			if (!eq)
				continue;
			*eq = '\0';
			fputs(first ? "" : ", ", out);
			json_str(out, line);
			fputs(": ", out);
			json_str(out, eq + 1);
			first = false;
		}
		fputs("}", out);
	}
	fputs("}", out);
}

/* reg_lock held */
static void show_target_text(FILE *out, struct iscsi_target *t)
{
	fprintf(out, "Target %d: %s\n", t->tid, t->name);
	fprintf(out, "    System information:\n");
	fprintf(out, "        Driver: iscsi\n");
	fprintf(out, "        State: ready\n");
	fprintf(out, "    I_T nexus information:\n");
	for (struct reg_session *s = t->sessions; s; s = s->next) {
		char host[64];
		peer_host(s->info.peer_addr, host, sizeof(host));
		fprintf(out, "        I_T nexus: %" PRIu64 "\n", s->info.nexus_id);
		fprintf(out, "            Initiator: %s alias: %s\n", s->info.initiator,
			s->info.alias[0] ? s->info.alias : "none");
		fprintf(out, "            Connection: 0\n");
		fprintf(out, "                IP Address: %s\n", host);
	}
	fprintf(out, "    LUN information:\n");
	pthread_rwlock_rdlock(&t->lun_lock);
	for (int i = 0; i < t->nluns; i++)
		show_lun_text(out, &t->luns[i]);
	pthread_rwlock_unlock(&t->lun_lock);
	fprintf(out, "    Account information:\n");
	show_bind_text(out, &t->chap, "        ");
	fprintf(out, "    ACL information:\n");
	for (int i = 0; i < t->naddr; i++)
		fprintf(out, "        %s\n", t->addr_acls[i].text);
	for (int i = 0; i < t->nname; i++)
		fprintf(out, "        %s\n", t->name_acls[i]);
}

/* reg_lock held */
static void show_target_json(FILE *out, struct iscsi_target *t)
{
	fprintf(out, "{\"tid\": %d, \"name\": ", t->tid);
	json_str(out, t->name);
	fputs(", \"driver\": \"iscsi\", \"state\": \"ready\", \"sessions\": [", out);
	for (struct reg_session *s = t->sessions; s; s = s->next) {
		show_session_json(out, &s->info, false);
		if (s->next)
			fputs(", ", out);
	}
	fputs("], \"luns\": [", out);
	pthread_rwlock_rdlock(&t->lun_lock);
	for (int i = 0; i < t->nluns; i++) {
		if (i)
			fputs(", ", out);
		show_lun_json(out, &t->luns[i]);
	}
	pthread_rwlock_unlock(&t->lun_lock);
	fputs("], \"accounts\": ", out);
	show_bind_json(out, &t->chap);
	fputs(", \"acl\": {\"addresses\": [", out);
	for (int i = 0; i < t->naddr; i++) {
		if (i)
			fputs(", ", out);
		json_str(out, t->addr_acls[i].text);
	}
	fputs("], \"initiators\": [", out);
	for (int i = 0; i < t->nname; i++) {
		if (i)
			fputs(", ", out);
		json_str(out, t->name_acls[i]);
	}
	fputs("]}}", out);
}

void reg_show_targets(FILE *out, int tid, bool json)
{
	bool first = true;

	pthread_mutex_lock(&reg_lock);
	if (json)
		fputs("{\"targets\": [", out);
	for (struct iscsi_target *t = targets; t; t = t->next) {
		if (tid >= 0 && t->tid != tid)
			continue;
		if (json) {
			if (!first)
				fputs(", ", out);
			show_target_json(out, t);
		} else {
			show_target_text(out, t);
		}
		first = false;
	}
	if (json)
		fputs("]}\n", out);
	pthread_mutex_unlock(&reg_lock);
}

int reg_show_sessions(FILE *out, int tid, uint64_t sid, bool with_params, bool json)
{
	bool first = true, tid_found = false;
	int matched = 0;

	pthread_mutex_lock(&reg_lock);
	if (json)
		fputs("{\"sessions\": [", out);
	for (struct iscsi_target *t = targets; t; t = t->next) {
		if (tid >= 0 && t->tid != tid)
			continue;
		tid_found = true;
		for (struct reg_session *s = t->sessions; s; s = s->next) {
			const struct reg_session_info *si = &s->info;
			if (sid && si->nexus_id != sid)
				continue;
			matched++;
			if (json) {
				if (!first)
					fputs(", ", out);
				fprintf(out, "{\"tid\": %d, \"target\": ", t->tid);
				json_str(out, t->name);
				fputs(", \"session\": ", out);
				show_session_json(out, si, with_params);
				fputs("}", out);
				first = false;
				continue;
			}
			char host[64];
			peer_host(si->peer_addr, host, sizeof(host));
			fprintf(out, "Session: %" PRIu64 "\n", si->nexus_id);
			if (!with_params) {
				/* --mode conn: tgt's layout.  One connection per
				 * session (MaxConnections=1), shown as CID 0. */
				fprintf(out, "    Connection: 0\n");
				fprintf(out, "        Initiator: %s\n", si->initiator);
				fprintf(out, "        IP Address: %s\n", host);
				continue;
			}
			fprintf(out, "    Target %d: %s\n", t->tid, t->name);
			fprintf(out, "    Initiator: %s alias: %s\n", si->initiator,
				si->alias[0] ? si->alias : "none");
			fprintf(out, "    ISID: %02x%02x%02x%02x%02x%02x TSIH: %u\n", si->isid[0],
				si->isid[1], si->isid[2], si->isid[3], si->isid[4], si->isid[5], si->tsih);
			fprintf(out, "    Connection: 0\n");
			fprintf(out, "        IP Address: %s\n", host);
			fprintf(out, "        Peer: %s\n", si->peer_addr);
			if (with_params && si->params[0]) {
				char buf[sizeof(si->params)], *save = NULL, *line;
				snprintf(buf, sizeof(buf), "%s", si->params);
				fprintf(out, "    Negotiated parameters:\n");
				for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
					fprintf(out, "        %s\n", line);
			}
		}
	}
	if (json)
		fputs("]}\n", out);
	pthread_mutex_unlock(&reg_lock);
	if ((tid >= 0 && !tid_found) || (sid && !matched))
		return -ENOENT;
	return 0;
}

void reg_show_sys(FILE *out, bool json)
{
	bool debug = rs_log_level_cur >= RS_LOG_DEBUG;
	int ntargets = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct iscsi_target *t = targets; t; t = t->next)
		ntargets++;
	if (json) {
		fputs("{\"system\": {\"state\": \"ready\", \"debug\": ", out);
		fputs(debug ? "true" : "false", out);
		fputs(", \"version\": ", out);
		json_str(out, sysinfo.version[0] ? sysinfo.version : RINGSTOR_VERSION);
		fprintf(out, ", \"reactors\": %d, \"targets\": %d}, \"llds\": {\"iscsi\": \"ready\"}, "
			"\"backing_stores\": [\"file\", \"null\"], \"device_types\": [\"disk\"], "
			"\"portals\": [", sysinfo.nr_reactors, ntargets);
		for (int i = 0; i < sysinfo.nportals; i++) {
			if (i)
				fputs(", ", out);
			json_str(out, sysinfo.portals[i]);
		}
		fputs("]}\n", out);
	} else {
		fprintf(out, "System:\n");
		fprintf(out, "    State: ready\n");
		fprintf(out, "    debug: %s\n", debug ? "on" : "off");
		fprintf(out, "    Version: ringstor %s\n",
			sysinfo.version[0] ? sysinfo.version : RINGSTOR_VERSION);
		if (sysinfo.nr_reactors > 0)
			fprintf(out, "    Reactors: %d\n", sysinfo.nr_reactors);
		fprintf(out, "    Targets: %d\n", ntargets);
		fprintf(out, "LLDs:\n");
		fprintf(out, "    iscsi: ready\n");
		fprintf(out, "Backing stores:\n");
		fprintf(out, "    file (rdwr, aio)\n");
		fprintf(out, "    null\n");
		fprintf(out, "Device types:\n");
		fprintf(out, "    disk\n");
		fprintf(out, "Portals:\n");
		for (int i = 0; i < sysinfo.nportals; i++)
			fprintf(out, "    %s\n", sysinfo.portals[i]);
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- session delete ---- */

int reg_session_delete(int tid, uint64_t sid, int cid, char *err, size_t errlen)
{
	struct iscsi_target *t;
	struct reg_session *s;

	t = lock_tid(tid, err, errlen);
	if (!t)
		return -ENOENT;
	for (s = t->sessions; s; s = s->next)
		if (s->info.nexus_id == sid)
			break;
	if (!s) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "can't find session %" PRIu64 " of target %d", sid, tid);
		return -ENOENT;
	}
	if (cid > 0) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "session %" PRIu64 " has no connection %d (its only connection is 0)",
			sid, cid);
		return -ENOENT;
	}
	if (!s->info.kill) {
		pthread_mutex_unlock(&reg_lock);
		set_err(err, errlen, "session %" PRIu64 " cannot be closed from here", sid);
		return -EOPNOTSUPP;
	}
	/* kill() only posts the close to the session's reactor (registry.h):
	 * safe under reg_lock.  The session unregisters itself when it is
	 * gone, and its UAs and reservations registrations follow SAM-5's
	 * nexus-loss rules on the data path. */
	s->info.kill(s->info.kill_ctx);
	log_notice("target %d: session %" PRIu64 " (%s) closed by the administrator", tid, sid,
		   s->info.initiator);
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

/* ---- dump: the running configuration as a config file ---- */

/* A libconfig string literal: quote, backslash and control bytes escaped
 * (\xNN), everything else verbatim. */
static void conf_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void conf_str_array(FILE *out, const char *indent, const char *key, int n,
			   const char *(*get)(const void *arr, int i), const void *arr)
{
	if (n <= 0)
		return;
	fprintf(out, "%s%s = [ ", indent, key);
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", out);
		conf_str(out, get(arr, i));
	}
	fputs(" ];\n", out);
}

static const char *get_user(const void *arr, int i)
{
	return ((const char (*)[REG_CHAP_USER_MAX])arr)[i];
}

static const char *get_name(const void *arr, int i)
{
	return ((const char (*)[REG_NAME_MAX])arr)[i];
}

static const char *get_addr(const void *arr, int i)
{
	return ((const struct acl_addr *)arr)[i].text;
}

static const char *get_portal(const void *arr, int i)
{
	return ((const char (*)[96])arr)[i];
}

/* reg_lock held */
static void dump_bind(FILE *out, const char *indent, const struct chap_bind *b)
{
	conf_str_array(out, indent, "incoming_users", b->nin, get_user, b->in);
	if (b->out[0]) {
		fprintf(out, "%soutgoing_user = ", indent);
		conf_str(out, b->out);
		fputs(";\n", out);
	}
}

/* reg_lock held */
static void dump_lun(FILE *out, const struct reg_lun *rl, bool last)
{
	const struct scsi_lu *lu = rl->lu;
	bool null = strcmp(rl->bstype, "null") == 0;

	fprintf(out, "            { lun = %" PRIu64 "; type = ", rl->lun);
	conf_str(out, rl->bstype);
	fputs(";", out);
	if (!null) {
		fputs(" path = ", out);
		conf_str(out, rl->path);
		fputs(";", out);
	} else {
		/* a string: sizes beyond 2^31 need no int64 suffix that way */
		fprintf(out, " size = \"%" PRIu64 "\";",
			(uint64_t)atomic_load(&lu->nr_blocks) * lu->block_size);
	}
	fprintf(out, " block_size = %u;", lu->block_size);
	if (rl->direct)
		fputs(" direct = true;", out);
	if (lu->readonly)
		fputs(" readonly = true;", out);
	if (rl->thin)
		fputs(" thin_provisioning = true;", out);
	if (lu->removable)
		fputs(" removable = true;", out);
	/* The serial (derived or given) pins the LU's identity (VPD 80/83)
	 * across the reload. */
	if (lu->serial[0]) {
		fputs(" serial = ", out);
		conf_str(out, lu->serial);
		fputs(";", out);
	}
	fprintf(out, " }%s\n", last ? "" : ",");
}

void reg_dump_config(FILE *out)
{
	pthread_mutex_lock(&reg_lock);
	fputs("# ringstord running configuration (ringstoradm --op dump).\n"
	      "#\n"
	      "# PRIVILEGED: this file holds the CHAP account passwords in clear text.\n"
	      "# It was read over the root-only (0600) control socket; keep it mode 0600\n"
	      "# (umask 077) and out of backups that others can read.\n"
	      "#\n"
	      "# Load it with  ringstord -c FILE  (check first with --check-config).\n"
	      "# iSCSI negotiation limits and daemon settings are not part of the dump.\n\n",
	      out);
	if (sysinfo.nportals > 0) {
		fputs("iscsi = {\n", out);
		conf_str_array(out, "    ", "portals", sysinfo.nportals, get_portal, sysinfo.portals);
		fputs("};\n\n", out);
	}
	if (accounts) {
		fputs("accounts = (\n", out);
		for (struct reg_account *a = accounts; a; a = a->next) {
			fputs("    { user = ", out);
			conf_str(out, a->user);
			fputs("; password = ", out);
			conf_str(out, a->secret);
			fprintf(out, "; }%s\n", a->next ? "," : "");
		}
		fputs(");\n\n", out);
	}
	if (disc_chap.nin || disc_chap.out[0]) {
		fputs("discovery = {\n", out);
		dump_bind(out, "    ", &disc_chap);
		fputs("};\n\n", out);
	}
	fputs("targets = (\n", out);
	for (struct iscsi_target *t = targets; t; t = t->next) {
		fprintf(out, "    {\n        tid = %d;\n        name = ", t->tid);
		conf_str(out, t->name);
		fputs(";\n", out);
		pthread_rwlock_rdlock(&t->lun_lock);
		if (t->nluns) {
			fputs("        luns = (\n", out);
			for (int i = 0; i < t->nluns; i++)
				dump_lun(out, &t->luns[i], i == t->nluns - 1);
			fputs("        );\n", out);
		}
		pthread_rwlock_unlock(&t->lun_lock);
		conf_str_array(out, "        ", "initiator_address", t->naddr, get_addr, t->addr_acls);
		conf_str_array(out, "        ", "initiator_name", t->nname, get_name, t->name_acls);
		dump_bind(out, "        ", &t->chap);
		fprintf(out, "    }%s\n", t->next ? "," : "");
	}
	fputs(");\n", out);
	pthread_mutex_unlock(&reg_lock);
}
