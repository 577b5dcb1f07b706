/* nfs_raw_test.c - ringstord's NFS gateway against libnfs's raw RPC API
 * (rpc_mount3_*, rpc_nfs3_*, rpc_nlm4_*: libnfs builds every call, we check
 * every reply), driven by our own poll() loop.
 *
 * Covers: MOUNT v3 (NULL, MNT, DUMP, UMNT, UMNTALL, EXPORT); all 22 NFSv3
 * procedures (RFC 1813 section 3.3) on valid input; the error paths NOENT,
 * EXIST, NOTDIR, ISDIR, NOTEMPTY, ROFS, ACCES (client not allowed, squashed
 * writer of a root-owned 0644 file), BADHANDLE (forged, tampered,
 * truncated), STALE (after REMOVE), NAMETOOLONG, BAD_COOKIE, NOT_SYNC,
 * BADTYPE; root_squash / all_squash / anonuid; the secure-port rule (a
 * reserved source port accepted; an unreserved one, from a child that gave
 * up root, refused); the write verifier (one per process; a new one after
 * a restart, with old handles still valid); READDIRPLUS of a 50,000-entry
 * directory with cookie resumption; NLM v4 TEST/LOCK/CANCEL/UNLOCK when
 * the daemon serves NLM.
 *
 * Usage: nfs_raw_test --host H --nfs-port N --mount-port M --base DIR
 *                     --phase main|restart --state FILE [--host6 ::1]
 * DIR holds the exports the script configured (see test_nfs_raw.sh):
 *   DIR/rw    127.0.0.1(rw,insecure,no_root_squash) ::1(...)
 *   DIR/ro    127.0.0.1(ro,insecure)
 *   DIR/sq    127.0.0.1(rw,insecure,root_squash,anonuid=65534,anongid=65534)
 *   DIR/all   127.0.0.1(rw,insecure,all_squash,anonuid=1234,anongid=1234)
 *   DIR/sec   127.0.0.1(rw,no_root_squash)        (secure: the default)
 *   DIR/v6    ::1(rw,insecure,no_root_squash)     (not for 127.0.0.1)
 * One line per check ("ok: ...", "FAIL: ...", "skip: ..."), then
 * "N passed, N failed"; exit 0 only when nothing failed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nlm.h>

#define MOUNT_PROG 100005
#define NFS_PROG   100003
#define NLM_PROG_NO 100021
#define BIG_N      50000

static const char *g_host = "127.0.0.1", *g_host6 = NULL, *g_base, *g_phase = "main", *g_state;
static int g_nfs_port = 2049, g_mount_port = 20048;
static int g_pass, g_fail;

static void okf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void okf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ok: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
	g_pass++;
}

static void failf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
	g_fail++;
}

/* One check: a condition and its description. */
#define CHECK(cond, ...) do { if (cond) okf(__VA_ARGS__); else failf(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------ plumbing */

struct fh {
	uint32_t len;
	char data[NFS3_FHSIZE];
};

/* What a reply carried, copied out of libnfs's buffers (freed when the
 * callback returns). */
struct res {
	int done;
	int rpcst;              /* RPC_STATUS_*, -1 = not sent */
	int st;                 /* nfsstat3 / mountstat3 / nlm4_stats */
	struct fh fh;
	bool have_fh;
	fattr3 attr;
	bool have_attr;
	char verf[8];
	uint32_t count, committed, eof, access;
	char *buf;              /* READ data, READLINK path (malloc) */
	size_t buflen;
	uint32_t u[4];          /* small numbers (FSINFO, PATHCONF, NLM holder) */
	uint64_t u64[2];
	void (*extract)(struct res *, void *);
	void *user;
	char err[256];
};

static void res_free(struct res *r)
{
	free(r->buf);
	r->buf = NULL;
}

static void gen_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct res *r = priv;

	r->done = 1;
	r->rpcst = status;
	if (status != RPC_STATUS_SUCCESS) {
		snprintf(r->err, sizeof(r->err), "%s", data ? (const char *)data : rpc_get_error(rpc));
		return;
	}
	if (data && r->extract) {
		int st;
		/* every NFSv3 and MOUNT result starts with its status */
		memcpy(&st, data, sizeof(st));
		r->st = st;
		r->extract(r, data);
	}
}

static int wait_res(struct rpc_context *rpc, struct res *r)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!r->done) {
		struct pollfd p = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
		int n = poll(&p, 1, 100);

		if (n < 0 && errno != EINTR)
			return -1;
		if (rpc_service(rpc, n > 0 ? p.revents : 0) < 0) {
			snprintf(r->err, sizeof(r->err), "rpc_service: %s", rpc_get_error(rpc));
			r->rpcst = RPC_STATUS_ERROR;
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 60) {
			snprintf(r->err, sizeof(r->err), "timeout");
			r->rpcst = RPC_STATUS_TIMEOUT;
			return -1;
		}
	}
	return r->rpcst == RPC_STATUS_SUCCESS ? 0 : -1;
}

static void conn_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct res *r = priv;
	(void)rpc;
	r->done = 1;
	r->rpcst = status;
	if (status != RPC_STATUS_SUCCESS)
		snprintf(r->err, sizeof(r->err), "%s", data ? (const char *)data : "?");
}

static struct rpc_context *connect_prog(const char *host, int port, int prog, int vers)
{
	struct rpc_context *rpc = rpc_init_context();
	struct res r = { 0 };

	if (!rpc)
		return NULL;
	if (rpc_connect_port_async(rpc, host, port, prog, vers, conn_cb, &r) != 0 ||
	    wait_res(rpc, &r) < 0) {
		fprintf(stderr, "connect %s:%d prog %d: %s %s\n", host, port, prog, r.err,
			rpc_get_error(rpc));
		rpc_destroy_context(rpc);
		return NULL;
	}
	return rpc;
}

static int local_port(struct rpc_context *rpc)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(rpc_get_fd(rpc), (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Issue an async call and wait for it: a struct res by value. */
#define CALL(rpc, fn, args, ex) ({                                       \
	struct res _r;                                                   \
	memset(&_r, 0, sizeof(_r));                                      \
	_r.rpcst = -1;                                                   \
	_r.st = -1;                                                      \
	_r.extract = (ex);                                               \
	if (fn((rpc), gen_cb, (args), &_r) == 0)                         \
		wait_res((rpc), &_r);                                    \
	else                                                             \
		snprintf(_r.err, sizeof(_r.err), "%s", rpc_get_error(rpc)); \
	_r;                                                              \
})

static void set_fh3(nfs_fh3 *o, const struct fh *f)
{
	o->data.data_len = f->len;
	o->data.data_val = (char *)f->data;
}

static void copy_fh(struct fh *d, const char *val, u_int len)
{
	d->len = len > NFS3_FHSIZE ? NFS3_FHSIZE : len;
	memcpy(d->data, val, d->len);
}

static void copy_post_attr(struct res *r, const post_op_attr *a)
{
	if (a->attributes_follow) {
		r->attr = a->post_op_attr_u.attributes;
		r->have_attr = true;
	}
}

/* ------------------------------------------------------------ extractors */

static void ex_none(struct res *r, void *d)
{
	(void)r;
	(void)d;
}

static void ex_mnt(struct res *r, void *d)
{
	mountres3 *m = d;
	if (m->fhs_status == MNT3_OK) {
		copy_fh(&r->fh, m->mountres3_u.mountinfo.fhandle.fhandle3_val,
			m->mountres3_u.mountinfo.fhandle.fhandle3_len);
		r->have_fh = true;
		r->count = m->mountres3_u.mountinfo.auth_flavors.auth_flavors_len;
		for (u_int i = 0; i < r->count && i < 4; i++)
			r->u[i] = (uint32_t)m->mountres3_u.mountinfo.auth_flavors.auth_flavors_val[i];
	}
}

static void ex_getattr(struct res *r, void *d)
{
	GETATTR3res *g = d;
	if (g->status == NFS3_OK) {
		r->attr = g->GETATTR3res_u.resok.obj_attributes;
		r->have_attr = true;
	}
}

static void ex_lookup(struct res *r, void *d)
{
	LOOKUP3res *l = d;
	if (l->status == NFS3_OK) {
		copy_fh(&r->fh, l->LOOKUP3res_u.resok.object.data.data_val,
			l->LOOKUP3res_u.resok.object.data.data_len);
		r->have_fh = true;
		copy_post_attr(r, &l->LOOKUP3res_u.resok.obj_attributes);
	}
}

/* CREATE, MKDIR, SYMLINK, MKNOD: post_op_fh3 obj; post_op_attr obj_attributes. */
#define EX_NEWOBJ(name, T, U)                                                    \
	static void name(struct res *r, void *d)                                 \
	{                                                                        \
		T *c = d;                                                        \
		if (c->status != NFS3_OK)                                        \
			return;                                                  \
		if (c->U.resok.obj.handle_follows) {                             \
			copy_fh(&r->fh, c->U.resok.obj.post_op_fh3_u.handle.data.data_val, \
				c->U.resok.obj.post_op_fh3_u.handle.data.data_len); \
			r->have_fh = true;                                       \
		}                                                                \
		copy_post_attr(r, &c->U.resok.obj_attributes);                   \
	}
EX_NEWOBJ(ex_create, CREATE3res, CREATE3res_u)
EX_NEWOBJ(ex_mkdir, MKDIR3res, MKDIR3res_u)
EX_NEWOBJ(ex_symlink, SYMLINK3res, SYMLINK3res_u)
EX_NEWOBJ(ex_mknod, MKNOD3res, MKNOD3res_u)

static void ex_write(struct res *r, void *d)
{
	WRITE3res *w = d;
	if (w->status == NFS3_OK) {
		r->count = w->WRITE3res_u.resok.count;
		r->committed = w->WRITE3res_u.resok.committed;
		memcpy(r->verf, w->WRITE3res_u.resok.verf, 8);
		copy_post_attr(r, &w->WRITE3res_u.resok.file_wcc.after);
	}
}

static void ex_commit(struct res *r, void *d)
{
	COMMIT3res *c = d;
	if (c->status == NFS3_OK)
		memcpy(r->verf, c->COMMIT3res_u.resok.verf, 8);
}

static void ex_read(struct res *r, void *d)
{
	READ3res *x = d;
	if (x->status == NFS3_OK) {
		r->count = x->READ3res_u.resok.count;
		r->eof = x->READ3res_u.resok.eof;
		r->buflen = x->READ3res_u.resok.data.data_len;
		r->buf = malloc(r->buflen + 1);
		if (r->buf)
			memcpy(r->buf, x->READ3res_u.resok.data.data_val, r->buflen);
	}
}

static void ex_readlink(struct res *r, void *d)
{
	READLINK3res *x = d;
	if (x->status == NFS3_OK && x->READLINK3res_u.resok.data)
		r->buf = strdup(x->READLINK3res_u.resok.data);
}

static void ex_access(struct res *r, void *d)
{
	ACCESS3res *a = d;
	if (a->status == NFS3_OK)
		r->access = a->ACCESS3res_u.resok.access;
}

static void ex_fsinfo(struct res *r, void *d)
{
	FSINFO3res *f = d;
	if (f->status == NFS3_OK) {
		r->u[0] = f->FSINFO3res_u.resok.rtmax;
		r->u[1] = f->FSINFO3res_u.resok.wtmax;
		r->u[2] = f->FSINFO3res_u.resok.dtpref;
		r->u[3] = f->FSINFO3res_u.resok.properties;
		r->u64[0] = f->FSINFO3res_u.resok.maxfilesize;
	}
}

static void ex_fsstat(struct res *r, void *d)
{
	FSSTAT3res *f = d;
	if (f->status == NFS3_OK) {
		r->u64[0] = f->FSSTAT3res_u.resok.tbytes;
		r->u64[1] = f->FSSTAT3res_u.resok.tfiles;
	}
}

static void ex_pathconf(struct res *r, void *d)
{
	PATHCONF3res *p = d;
	if (p->status == NFS3_OK) {
		r->u[0] = p->PATHCONF3res_u.resok.name_max;
		r->u[1] = p->PATHCONF3res_u.resok.linkmax;
		r->u[2] = p->PATHCONF3res_u.resok.no_trunc;
	}
}

/* READDIR/READDIRPLUS: names go to a listing (user). */
struct listing {
	char names[64][NAME_MAX + 1];   /* small directories */
	int n;
	uint8_t *seen;                  /* big directory: file-NNNNN */
	int big, dups, other, with_fh, with_attr;
	uint64_t last_cookie;
	char verf[8];
	uint32_t eof;
	int entries;
};

static void note_name(struct listing *l, const char *name)
{
	int idx;
	char tail;

	l->entries++;
	if (l->seen && sscanf(name, "file-%d%c", &idx, &tail) == 1 && idx >= 0 && idx < BIG_N) {
		if (l->seen[idx])
			l->dups++;
		l->seen[idx] = 1;
		l->big++;
		return;
	}
	if (l->n < 64)
		snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
	else
		l->other++;
}

static bool listed(const struct listing *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return true;
	return false;
}

static void ex_readdir(struct res *r, void *d)
{
	READDIR3res *x = d;
	struct listing *l = r->user;
	if (x->status != NFS3_OK)
		return;
	memcpy(l->verf, x->READDIR3res_u.resok.cookieverf, 8);
	l->eof = x->READDIR3res_u.resok.reply.eof;
	for (entry3 *e = x->READDIR3res_u.resok.reply.entries; e; e = e->nextentry) {
		note_name(l, e->name);
		l->last_cookie = e->cookie;
	}
}

static void ex_readdirplus(struct res *r, void *d)
{
	READDIRPLUS3res *x = d;
	struct listing *l = r->user;
	if (x->status != NFS3_OK)
		return;
	memcpy(l->verf, x->READDIRPLUS3res_u.resok.cookieverf, 8);
	l->eof = x->READDIRPLUS3res_u.resok.reply.eof;
	for (entryplus3 *e = x->READDIRPLUS3res_u.resok.reply.entries; e; e = e->nextentry) {
		note_name(l, e->name);
		l->last_cookie = e->cookie;
		if (e->name_handle.handle_follows)
			l->with_fh++;
		if (e->name_attributes.attributes_follow)
			l->with_attr++;
	}
}

/* The same extractors with the user pointer set (CALL leaves it NULL). */
static struct listing *g_listing;
static void ex_readdir_l(struct res *r, void *d) { r->user = g_listing; ex_readdir(r, d); }
static void ex_readdirplus_l(struct res *r, void *d) { r->user = g_listing; ex_readdirplus(r, d); }

static void ex_dump(struct res *r, void *d)
{
	mountlist *ml = d;
	/* DUMP and EXPORT have no status: count the entries */
	r->st = 0;
	r->count = 0;
	for (mountbody *b = ml ? *ml : NULL; b; b = b->ml_next)
		r->count++;
}

static void ex_export(struct res *r, void *d)
{
	exports *ex = d;
	r->st = 0;
	r->count = 0;
	for (exportnode *e = ex ? *ex : NULL; e; e = e->ex_next) {
		if (e->ex_dir && g_base && strncmp(e->ex_dir, g_base, strlen(g_base)) == 0)
			r->u[0]++;
		r->count++;
	}
}

/* ------------------------------------------------------------ NFS calls */

static struct rpc_context *g_mnt, *g_nfs;

static struct res do_mnt(struct rpc_context *m, const char *path)
{
	return CALL(m, rpc_mount3_mnt_async, (char *)path, ex_mnt);
}

static struct res getattr(struct rpc_context *rpc, const struct fh *f)
{
	GETATTR3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.object, f);
	return CALL(rpc, rpc_nfs3_getattr_async, &a, ex_getattr);
}

static struct res lookup(struct rpc_context *rpc, const struct fh *dir, const char *name)
{
	LOOKUP3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.what.dir, dir);
	a.what.name = (char *)name;
	return CALL(rpc, rpc_nfs3_lookup_async, &a, ex_lookup);
}

static struct res create(struct rpc_context *rpc, const struct fh *dir, const char *name,
			 int how, uint32_t mode, const char *verf)
{
	CREATE3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.how.mode = how;
	if (how == EXCLUSIVE) {
		memcpy(a.how.createhow3_u.verf, verf, 8);
	} else {
		a.how.createhow3_u.obj_attributes.mode.set_it = 1;
		a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = mode;
	}
	return CALL(rpc, rpc_nfs3_create_async, &a, ex_create);
}

static struct res mkdir3(struct rpc_context *rpc, const struct fh *dir, const char *name, uint32_t mode)
{
	MKDIR3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.attributes.mode.set_it = 1;
	a.attributes.mode.set_mode3_u.mode = mode;
	return CALL(rpc, rpc_nfs3_mkdir_async, &a, ex_mkdir);
}

static struct res write3(struct rpc_context *rpc, const struct fh *f, uint64_t off, const void *data,
			 uint32_t len, int stable)
{
	WRITE3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.file, f);
	a.offset = off;
	a.count = len;
	a.stable = stable;
	a.data.data_len = len;
	a.data.data_val = (char *)data;
	return CALL(rpc, rpc_nfs3_write_async, &a, ex_write);
}

static struct res read3(struct rpc_context *rpc, const struct fh *f, uint64_t off, uint32_t count)
{
	READ3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.file, f);
	a.offset = off;
	a.count = count;
	return CALL(rpc, rpc_nfs3_read_async, &a, ex_read);
}

static struct res commit3(struct rpc_context *rpc, const struct fh *f)
{
	COMMIT3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.file, f);
	return CALL(rpc, rpc_nfs3_commit_async, &a, ex_commit);
}

static struct res remove3(struct rpc_context *rpc, const struct fh *dir, const char *name)
{
	REMOVE3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.object.dir, dir);
	a.object.name = (char *)name;
	return CALL(rpc, rpc_nfs3_remove_async, &a, ex_none);
}

static struct res rmdir3(struct rpc_context *rpc, const struct fh *dir, const char *name)
{
	RMDIR3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.object.dir, dir);
	a.object.name = (char *)name;
	return CALL(rpc, rpc_nfs3_rmdir_async, &a, ex_none);
}

static struct res setattr_mode_size(struct rpc_context *rpc, const struct fh *f, int mode,
				    int64_t size, const nfstime3 *guard)
{
	SETATTR3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.object, f);
	if (mode >= 0) {
		a.new_attributes.mode.set_it = 1;
		a.new_attributes.mode.set_mode3_u.mode = (uint32_t)mode;
	}
	if (size >= 0) {
		a.new_attributes.size.set_it = 1;
		a.new_attributes.size.set_size3_u.size = (uint64_t)size;
	}
	if (guard) {
		a.guard.check = 1;
		a.guard.sattrguard3_u.obj_ctime = *guard;
	}
	return CALL(rpc, rpc_nfs3_setattr_async, &a, ex_none);
}

static struct res readdir3(struct rpc_context *rpc, const struct fh *dir, uint64_t cookie,
			   const char *verf, uint32_t count, struct listing *l)
{
	READDIR3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.dir, dir);
	a.cookie = cookie;
	if (verf)
		memcpy(a.cookieverf, verf, 8);
	a.count = count;
	g_listing = l;
	return CALL(rpc, rpc_nfs3_readdir_async, &a, ex_readdir_l);
}

static struct res readdirplus3(struct rpc_context *rpc, const struct fh *dir, uint64_t cookie,
			       const char *verf, uint32_t dircount, uint32_t maxcount,
			       struct listing *l)
{
	READDIRPLUS3args a;
	memset(&a, 0, sizeof(a));
	set_fh3(&a.dir, dir);
	a.cookie = cookie;
	if (verf)
		memcpy(a.cookieverf, verf, 8);
	a.dircount = dircount;
	a.maxcount = maxcount;
	g_listing = l;
	return CALL(rpc, rpc_nfs3_readdirplus_async, &a, ex_readdirplus_l);
}

static const char *nfsstat_name(int st)
{
	switch (st) {
	case NFS3_OK: return "OK";
	case NFS3ERR_PERM: return "PERM";
	case NFS3ERR_NOENT: return "NOENT";
	case NFS3ERR_IO: return "IO";
	case NFS3ERR_ACCES: return "ACCES";
	case NFS3ERR_EXIST: return "EXIST";
	case NFS3ERR_XDEV: return "XDEV";
	case NFS3ERR_NOTDIR: return "NOTDIR";
	case NFS3ERR_ISDIR: return "ISDIR";
	case NFS3ERR_INVAL: return "INVAL";
	case NFS3ERR_ROFS: return "ROFS";
	case NFS3ERR_NAMETOOLONG: return "NAMETOOLONG";
	case NFS3ERR_NOTEMPTY: return "NOTEMPTY";
	case NFS3ERR_STALE: return "STALE";
	case NFS3ERR_BADHANDLE: return "BADHANDLE";
	case NFS3ERR_NOT_SYNC: return "NOT_SYNC";
	case NFS3ERR_BAD_COOKIE: return "BAD_COOKIE";
	case NFS3ERR_NOTSUPP: return "NOTSUPP";
	case NFS3ERR_TOOSMALL: return "TOOSMALL";
	case NFS3ERR_SERVERFAULT: return "SERVERFAULT";
	case NFS3ERR_BADTYPE: return "BADTYPE";
	case NFS3ERR_JUKEBOX: return "JUKEBOX";
	case -1: return "(no reply)";
	default: return "?";
	}
}

/* "want X, got Y" helper for status checks */
#define EXPECT(r, want, what) do {                                                     \
	struct res _x = (r);                                                           \
	if (_x.rpcst == RPC_STATUS_SUCCESS && _x.st == (want))                         \
		okf("%s: %s", what, nfsstat_name(want));                               \
	else                                                                           \
		failf("%s: want %s, got %s (%d) %s", what, nfsstat_name(want),         \
		      _x.rpcst == RPC_STATUS_SUCCESS ? nfsstat_name(_x.st) : "rpc error", \
		      _x.st, _x.err);                                                  \
	res_free(&_x);                                                                 \
} while (0)

static char path_buf[8192];
static const char *P(const char *sub)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s", g_base, sub);
	return path_buf;
}

/* ------------------------------------------------------------ MOUNT */

/* rpc_mount3_null_async has no args argument: its own wrapper. */
static struct res mount_null(struct rpc_context *m)
{
	struct res r;
	memset(&r, 0, sizeof(r));
	r.rpcst = -1;
	if (rpc_mount3_null_async(m, gen_cb, &r) == 0)
		wait_res(m, &r);
	return r;
}

static struct res mount_noargs(struct rpc_context *m, int (*fn)(struct rpc_context *, rpc_cb, void *),
			       void (*ex)(struct res *, void *))
{
	struct res r;
	memset(&r, 0, sizeof(r));
	r.rpcst = -1;
	r.st = -1;
	r.extract = ex;
	if (fn(m, gen_cb, &r) == 0)
		wait_res(m, &r);
	return r;
}

static struct res nfs_null(struct rpc_context *rpc)
{
	struct res r;
	memset(&r, 0, sizeof(r));
	r.rpcst = -1;
	if (rpc_nfs3_null_async(rpc, gen_cb, &r) == 0)
		wait_res(rpc, &r);
	return r;
}

/* ------------------------------------------------------------ tests */

static bool same_fh(const struct fh *a, const struct fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void test_mount(struct fh *root)
{
	struct res r;

	r = mount_null(g_mnt);
	CHECK(r.rpcst == RPC_STATUS_SUCCESS, "MOUNT NULL");
	r = do_mnt(g_mnt, P("rw"));
	CHECK(r.rpcst == 0 && r.st == MNT3_OK && r.have_fh && r.fh.len >= 8,
	      "MNT %s: %u-byte handle", P("rw"), r.fh.len);
	*root = r.fh;
	{
		bool sys = false;
		for (uint32_t i = 0; i < r.count && i < 4; i++)
			sys |= r.u[i] == 1;
		CHECK(sys, "MNT lists AUTH_SYS among %u flavor(s)", r.count);
	}
	r = do_mnt(g_mnt, P("rw"));
	CHECK(r.st == MNT3_OK && same_fh(&r.fh, root), "MNT twice: the same root handle");
	r = do_mnt(g_mnt, "/");
	CHECK(r.rpcst == 0 && r.st == MNT3ERR_ACCES, "MNT / (not exported): MNT3ERR_ACCES (%d)", r.st);
	r = do_mnt(g_mnt, P("rw/no-such-dir"));
	CHECK(r.rpcst == 0 && r.st == MNT3ERR_NOENT, "MNT of a missing directory: MNT3ERR_NOENT (%d)", r.st);
	r = do_mnt(g_mnt, P("v6"));
	CHECK(r.rpcst == 0 && r.st == MNT3ERR_ACCES, "MNT by a client the export does not list: "
	      "MNT3ERR_ACCES (%d)", r.st);
	r = mount_noargs(g_mnt, rpc_mount3_export_async, ex_export);
	CHECK(r.rpcst == 0 && r.u[0] >= 6, "EXPORT lists our %u exports (%u in all)", r.u[0], r.count);
	r = mount_noargs(g_mnt, rpc_mount3_dump_async, ex_dump);
	CHECK(r.rpcst == 0 && r.count >= 1, "DUMP lists %u mount(s)", r.count);
}

static void test_mount_end(void)
{
	struct res r;

	r = CALL(g_mnt, rpc_mount3_umnt_async, (char *)P("rw"), NULL);
	CHECK(r.rpcst == 0, "UMNT");
	r = mount_noargs(g_mnt, rpc_mount3_umntall_async, NULL);
	CHECK(r.rpcst == 0, "UMNTALL");
	r = mount_noargs(g_mnt, rpc_mount3_dump_async, ex_dump);
	CHECK(r.rpcst == 0 && r.count == 0, "DUMP after UMNT/UMNTALL: %u entries", r.count);
}

static void test_procs(const struct fh *root)
{
	struct res r, f, d;
	struct fh file, dir, lnk;
	char verf1[8], buf[8192];
	struct listing *l;
	int rc;

	/* NULL, GETATTR, FSINFO, FSSTAT, PATHCONF, ACCESS on the root */
	r = nfs_null(g_nfs);
	CHECK(r.rpcst == RPC_STATUS_SUCCESS, "NFS NULL");
	r = getattr(g_nfs, root);
	CHECK(r.st == NFS3_OK && r.attr.type == NF3DIR, "GETATTR root: a directory");
	{
		FSINFO3args a = { 0 };
		set_fh3(&a.fsroot, root);
		r = CALL(g_nfs, rpc_nfs3_fsinfo_async, &a, ex_fsinfo);
		CHECK(r.st == NFS3_OK && r.u[0] >= 4096 && r.u[0] <= 1048576 && r.u[1] >= 4096 &&
		      r.u[1] <= 1048576 && r.u64[0] > 0,
		      "FSINFO: rtmax %u wtmax %u dtpref %u properties 0x%x", r.u[0], r.u[1], r.u[2], r.u[3]);
	}
	{
		FSSTAT3args a = { 0 };
		set_fh3(&a.fsroot, root);
		r = CALL(g_nfs, rpc_nfs3_fsstat_async, &a, ex_fsstat);
		CHECK(r.st == NFS3_OK && r.u64[0] > 0, "FSSTAT: %llu bytes, %llu files",
		      (unsigned long long)r.u64[0], (unsigned long long)r.u64[1]);
	}
	{
		PATHCONF3args a = { 0 };
		set_fh3(&a.object, root);
		r = CALL(g_nfs, rpc_nfs3_pathconf_async, &a, ex_pathconf);
		CHECK(r.st == NFS3_OK && r.u[0] == 255, "PATHCONF: name_max %u linkmax %u no_trunc %u",
		      r.u[0], r.u[1], r.u[2]);
	}
	{
		ACCESS3args a = { 0 };
		set_fh3(&a.object, root);
		a.access = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
		r = CALL(g_nfs, rpc_nfs3_access_async, &a, ex_access);
		CHECK(r.st == NFS3_OK && (r.access & (ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY)) ==
		      (ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY), "ACCESS root: granted 0x%x", r.access);
	}

	/* MKDIR, CREATE (UNCHECKED / GUARDED / EXCLUSIVE) */
	d = mkdir3(g_nfs, root, "d", 0755);
	CHECK(d.st == NFS3_OK && d.have_fh && d.have_attr && d.attr.type == NF3DIR, "MKDIR d");
	dir = d.fh;
	EXPECT(mkdir3(g_nfs, root, "d", 0755), NFS3ERR_EXIST, "MKDIR of an existing name");
	f = create(g_nfs, root, "f", UNCHECKED, 0644, NULL);
	CHECK(f.st == NFS3_OK && f.have_fh && f.have_attr && f.attr.type == NF3REG &&
	      (f.attr.mode & 07777) == 0644, "CREATE UNCHECKED f mode 0644");
	file = f.fh;
	EXPECT(create(g_nfs, root, "f", GUARDED, 0644, NULL), NFS3ERR_EXIST, "CREATE GUARDED of an existing name");
	r = create(g_nfs, root, "f", UNCHECKED, 0600, NULL);
	CHECK(r.st == NFS3_OK && same_fh(&r.fh, &file), "CREATE UNCHECKED of an existing file: OK, same handle");
	{
		struct res x1, x2;
		x1 = create(g_nfs, root, "x", EXCLUSIVE, 0, "verf0001");
		x2 = create(g_nfs, root, "x", EXCLUSIVE, 0, "verf0001");
		CHECK(x1.st == NFS3_OK && x2.st == NFS3_OK && x1.have_fh && x2.have_fh &&
		      same_fh(&x1.fh, &x2.fh), "CREATE EXCLUSIVE, then the same verifier again (a retransmission): "
		      "OK, the same file");
		EXPECT(create(g_nfs, root, "x", EXCLUSIVE, 0, "verf0002"), NFS3ERR_EXIST,
		       "CREATE EXCLUSIVE with another verifier");
		/* RFC 1813 3.3.8: the client then SETATTRs the real attributes */
		EXPECT(setattr_mode_size(g_nfs, &x1.fh, 0640, -1, NULL), NFS3_OK, "SETATTR after an exclusive create");
	}

	/* LOOKUP */
	r = lookup(g_nfs, root, "f");
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.fileid == f.attr.fileid, "LOOKUP f: fileid %llu",
	      (unsigned long long)r.attr.fileid);
	EXPECT(lookup(g_nfs, root, "nope"), NFS3ERR_NOENT, "LOOKUP of a missing name");
	EXPECT(lookup(g_nfs, &file, "x"), NFS3ERR_NOTDIR, "LOOKUP in a regular file");
	memset(buf, 'n', 256);
	buf[256] = '\0';
	EXPECT(lookup(g_nfs, root, buf), NFS3ERR_NAMETOOLONG, "LOOKUP of a 256-byte name");
	EXPECT(create(g_nfs, root, buf, UNCHECKED, 0644, NULL), NFS3ERR_NAMETOOLONG, "CREATE of a 256-byte name");
	EXPECT(mkdir3(g_nfs, root, buf, 0755), NFS3ERR_NAMETOOLONG, "MKDIR of a 256-byte name");
	/* never a path walk: '/' in a name, an empty name */
	EXPECT(lookup(g_nfs, root, "a/b"), NFS3ERR_ACCES, "LOOKUP of a name with '/'");
	EXPECT(lookup(g_nfs, root, "../../etc"), NFS3ERR_ACCES, "LOOKUP '../../etc'");
	EXPECT(lookup(g_nfs, root, ""), NFS3ERR_ACCES, "LOOKUP of an empty name");
	EXPECT(create(g_nfs, root, "../escape", UNCHECKED, 0644, NULL), NFS3ERR_ACCES, "CREATE '../escape'");
	r = lookup(g_nfs, root, "..");
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.fileid == getattr(g_nfs, root).attr.fileid,
	      "LOOKUP '..' at the export root: the root itself");
	r = lookup(g_nfs, &dir, "..");
	CHECK(r.st == NFS3_OK && same_fh(&r.fh, root), "LOOKUP d/..: the root handle");

	/* WRITE with every stable_how, COMMIT, READ */
	memset(buf, 'a', 4096);
	r = write3(g_nfs, &file, 0, buf, 4096, UNSTABLE);
	CHECK(r.st == NFS3_OK && r.count == 4096, "WRITE UNSTABLE 4096: count %u committed %u", r.count,
	      r.committed);
	memcpy(verf1, r.verf, 8);
	memset(buf, 'b', 4096);
	r = write3(g_nfs, &file, 4096, buf, 4096, DATA_SYNC);
	CHECK(r.st == NFS3_OK && r.committed >= DATA_SYNC && !memcmp(r.verf, verf1, 8),
	      "WRITE DATA_SYNC: committed %u, the same verifier", r.committed);
	r = write3(g_nfs, &file, 8192, "tail", 4, FILE_SYNC);
	CHECK(r.st == NFS3_OK && r.committed == FILE_SYNC && !memcmp(r.verf, verf1, 8) &&
	      r.have_attr && r.attr.size == 8196, "WRITE FILE_SYNC: committed FILE_SYNC, same verifier, "
	      "wcc size %llu", (unsigned long long)r.attr.size);
	r = commit3(g_nfs, &file);
	CHECK(r.st == NFS3_OK && !memcmp(r.verf, verf1, 8), "COMMIT: the write verifier");
	r = read3(g_nfs, &file, 4090, 100);
	CHECK(r.st == NFS3_OK && r.count == 100 && r.buf && !memcmp(r.buf, "aaaaaabbbb", 10) && !r.eof,
	      "READ across two writes: the data, eof false");
	res_free(&r);
	r = read3(g_nfs, &file, 8190, 100);
	CHECK(r.st == NFS3_OK && r.count == 6 && r.eof && r.buf && !memcmp(r.buf, "bbtail", 6),
	      "READ at the end: short, eof true");
	res_free(&r);
	r = read3(g_nfs, &file, 1 << 30, 100);
	CHECK(r.st == NFS3_OK && r.count == 0 && r.eof, "READ past the end: 0 bytes, eof");
	res_free(&r);
	EXPECT(read3(g_nfs, &dir, 0, 10), NFS3ERR_ISDIR, "READ of a directory");
	EXPECT(write3(g_nfs, &dir, 0, "x", 1, FILE_SYNC), NFS3ERR_ISDIR, "WRITE to a directory");
	{
		/* within one process the verifier never changes */
		bool same = true;
		for (int i = 0; i < 20; i++) {
			r = write3(g_nfs, &file, (uint64_t)i * 10, "0123456789", 10, i % 3);
			same &= r.st == NFS3_OK && !memcmp(r.verf, verf1, 8);
		}
		CHECK(same, "write verifier constant over 20 more writes of every stable_how");
	}

	/* SETATTR: size, mode, guard */
	EXPECT(setattr_mode_size(g_nfs, &file, 0600, 100, NULL), NFS3_OK, "SETATTR mode 0600 size 100");
	r = getattr(g_nfs, &file);
	CHECK(r.st == NFS3_OK && r.attr.size == 100 && (r.attr.mode & 07777) == 0600,
	      "GETATTR after SETATTR: size %llu mode %o", (unsigned long long)r.attr.size, r.attr.mode & 07777);
	{
		nfstime3 bad = r.attr.ctime;
		bad.seconds -= 1000;
		EXPECT(setattr_mode_size(g_nfs, &file, 0644, -1, &bad), NFS3ERR_NOT_SYNC,
		       "SETATTR with a stale ctime guard");
		EXPECT(setattr_mode_size(g_nfs, &file, 0644, -1, &r.attr.ctime), NFS3_OK,
		       "SETATTR with the current ctime guard");
	}

	/* SYMLINK, READLINK */
	{
		SYMLINK3args a;
		memset(&a, 0, sizeof(a));
		set_fh3(&a.where.dir, root);
		a.where.name = "l";
		a.symlink.symlink_data = "d/target";
		r = CALL(g_nfs, rpc_nfs3_symlink_async, &a, ex_symlink);
		CHECK(r.st == NFS3_OK && r.have_fh, "SYMLINK l -> d/target");
		lnk = r.fh;
		READLINK3args b;
		memset(&b, 0, sizeof(b));
		set_fh3(&b.symlink, &lnk);
		r = CALL(g_nfs, rpc_nfs3_readlink_async, &b, ex_readlink);
		CHECK(r.st == NFS3_OK && r.buf && !strcmp(r.buf, "d/target"), "READLINK: '%s'",
		      r.buf ? r.buf : "");
		res_free(&r);
		set_fh3(&b.symlink, &file);
		r = CALL(g_nfs, rpc_nfs3_readlink_async, &b, ex_readlink);
		CHECK(r.rpcst == 0 && r.st == NFS3ERR_INVAL, "READLINK of a regular file: INVAL (%s)",
		      nfsstat_name(r.st));
		res_free(&r);
		r = lookup(g_nfs, root, "l");
		CHECK(r.st == NFS3_OK && r.attr.type == NF3LNK, "LOOKUP of a symlink: not followed");
		/* a symlink out of the export: neither LOOKUP nor MNT follow it */
		a.where.name = "esc";
		a.symlink.symlink_data = "/etc";
		r = CALL(g_nfs, rpc_nfs3_symlink_async, &a, ex_symlink);
		r = lookup(g_nfs, root, "esc");
		CHECK(r.st == NFS3_OK && r.attr.type == NF3LNK, "LOOKUP of a symlink to /etc: the link itself");
		r = do_mnt(g_mnt, P("rw/esc"));
		CHECK(r.rpcst == 0 && r.st != MNT3_OK, "MNT through a symlink to /etc refused (%d)", r.st);
		remove3(g_nfs, root, "esc");
	}

	/* MKNOD: a FIFO; a regular file is BADTYPE */
	{
		MKNOD3args a;
		memset(&a, 0, sizeof(a));
		set_fh3(&a.where.dir, root);
		a.where.name = "fifo";
		a.what.type = NF3FIFO;
		a.what.mknoddata3_u.pipe_attributes.mode.set_it = 1;
		a.what.mknoddata3_u.pipe_attributes.mode.set_mode3_u.mode = 0600;
		r = CALL(g_nfs, rpc_nfs3_mknod_async, &a, ex_mknod);
		CHECK(r.st == NFS3_OK && r.have_attr && r.attr.type == NF3FIFO, "MKNOD fifo (NF3FIFO): %s",
		      nfsstat_name(r.st));
		a.where.name = "reg";
		a.what.type = NF3REG;
		r = CALL(g_nfs, rpc_nfs3_mknod_async, &a, ex_mknod);
		CHECK(r.rpcst == 0 && r.st == NFS3ERR_BADTYPE, "MKNOD of NF3REG: BADTYPE (%s)", nfsstat_name(r.st));
	}

	/* LINK, RENAME */
	{
		LINK3args a;
		memset(&a, 0, sizeof(a));
		set_fh3(&a.file, &file);
		set_fh3(&a.link.dir, &dir);
		a.link.name = "hard";
		r = CALL(g_nfs, rpc_nfs3_link_async, &a, ex_none);
		CHECK(r.st == NFS3_OK, "LINK d/hard -> f");
		r = getattr(g_nfs, &file);
		CHECK(r.attr.nlink == 2, "nlink after LINK: %u", r.attr.nlink);
		r = CALL(g_nfs, rpc_nfs3_link_async, &a, ex_none);
		CHECK(r.st == NFS3ERR_EXIST, "LINK to an existing name: EXIST (%s)", nfsstat_name(r.st));
		set_fh3(&a.file, &dir);
		a.link.name = "dirlink";
		r = CALL(g_nfs, rpc_nfs3_link_async, &a, ex_none);
		CHECK(r.rpcst == 0 && r.st != NFS3_OK, "LINK of a directory refused (%s)", nfsstat_name(r.st));
	}
	{
		RENAME3args a;
		memset(&a, 0, sizeof(a));
		set_fh3(&a.from.dir, &dir);
		a.from.name = "hard";
		set_fh3(&a.to.dir, root);
		a.to.name = "renamed";
		r = CALL(g_nfs, rpc_nfs3_rename_async, &a, ex_none);
		CHECK(r.st == NFS3_OK, "RENAME d/hard -> renamed");
		r = lookup(g_nfs, root, "renamed");
		CHECK(r.st == NFS3_OK && r.attr.fileid == f.attr.fileid, "LOOKUP renamed: the same file");
		r = CALL(g_nfs, rpc_nfs3_rename_async, &a, ex_none);
		CHECK(r.st == NFS3ERR_NOENT, "RENAME of a missing name: NOENT (%s)", nfsstat_name(r.st));
		/* a directory over a non-empty directory */
		mkdir3(g_nfs, root, "e", 0755);
		create(g_nfs, &dir, "inside", UNCHECKED, 0644, NULL);
		a.from.name = "e";
		set_fh3(&a.from.dir, root);
		a.to.name = "d";
		r = CALL(g_nfs, rpc_nfs3_rename_async, &a, ex_none);
		CHECK(r.st == NFS3ERR_EXIST || r.st == NFS3ERR_NOTEMPTY,
		      "RENAME of a directory over a non-empty one: %s", nfsstat_name(r.st));
		a.from.name = "renamed";
		a.to.name = "d";
		r = CALL(g_nfs, rpc_nfs3_rename_async, &a, ex_none);
		CHECK(r.st == NFS3ERR_ISDIR || r.st == NFS3ERR_EXIST,
		      "RENAME of a file over a directory: %s", nfsstat_name(r.st));
		rmdir3(g_nfs, root, "e");
	}

	/* READDIR, READDIRPLUS of the root */
	l = calloc(1, sizeof(*l));
	r = readdir3(g_nfs, root, 0, NULL, 8192, l);
	CHECK(r.st == NFS3_OK && l->eof && listed(l, ".") && listed(l, "..") && listed(l, "f") &&
	      listed(l, "d") && listed(l, "l") && listed(l, "fifo") && listed(l, "renamed"),
	      "READDIR root: %d entries incl. . .. f d l fifo renamed, eof", l->entries);
	{
		char v[8];
		uint64_t c;
		memcpy(v, l->verf, 8);
		memset(l, 0, sizeof(*l));
		r = readdir3(g_nfs, root, 0, NULL, 200, l);
		c = l->last_cookie;
		CHECK(r.st == NFS3_OK && !l->eof && l->entries >= 1, "READDIR with a small count: %d entries, "
		      "not eof", l->entries);
		memset(l, 0, sizeof(*l));
		r = readdir3(g_nfs, root, c, v, 8192, l);
		CHECK(r.st == NFS3_OK && l->eof && l->entries >= 1, "READDIR resumed at its cookie: %d more, eof",
		      l->entries);
		memset(v, 0x5a, 8);
		memset(l, 0, sizeof(*l));
		EXPECT(readdir3(g_nfs, root, c, v, 8192, l), NFS3ERR_BAD_COOKIE,
		       "READDIR with a cookie and a forged cookie verifier");
		memset(l, 0, sizeof(*l));
		EXPECT(readdirplus3(g_nfs, root, c, v, 8192, 32768, l), NFS3ERR_BAD_COOKIE,
		       "READDIRPLUS with a cookie and a forged cookie verifier");
		memset(l, 0, sizeof(*l));
		EXPECT(readdir3(g_nfs, root, 0, NULL, 10, l), NFS3ERR_TOOSMALL, "READDIR with count 10");
	}
	memset(l, 0, sizeof(*l));
	r = readdirplus3(g_nfs, root, 0, NULL, 8192, 65536, l);
	CHECK(r.st == NFS3_OK && l->eof && listed(l, "f") && l->with_fh >= l->entries - 1 &&
	      l->with_attr >= l->entries - 1, "READDIRPLUS root: %d entries, %d with handles, %d with attributes",
	      l->entries, l->with_fh, l->with_attr);
	memset(l, 0, sizeof(*l));
	EXPECT(readdir3(g_nfs, &file, 0, NULL, 8192, l), NFS3ERR_NOTDIR, "READDIR of a regular file");
	free(l);

	/* REMOVE, RMDIR and their errors; STALE after REMOVE */
	EXPECT(rmdir3(g_nfs, root, "d"), NFS3ERR_NOTEMPTY, "RMDIR of a non-empty directory");
	EXPECT(rmdir3(g_nfs, root, "f"), NFS3ERR_NOTDIR, "RMDIR of a regular file");
	rc = remove3(g_nfs, root, "d").st;
	CHECK(rc == NFS3ERR_ISDIR || rc == NFS3ERR_PERM || rc == NFS3ERR_ACCES,
	      "REMOVE of a directory refused: %s", nfsstat_name(rc));
	EXPECT(remove3(g_nfs, root, "nope"), NFS3ERR_NOENT, "REMOVE of a missing name");
	EXPECT(remove3(g_nfs, &dir, "inside"), NFS3_OK, "REMOVE d/inside");
	EXPECT(rmdir3(g_nfs, root, "d"), NFS3_OK, "RMDIR d (now empty)");
	EXPECT(getattr(g_nfs, &dir), NFS3ERR_STALE, "GETATTR of the removed directory's handle");
	EXPECT(remove3(g_nfs, root, "renamed"), NFS3_OK, "REMOVE renamed (one link of f)");
	EXPECT(getattr(g_nfs, &file), NFS3_OK, "f still there through its other link");
	r = create(g_nfs, root, "gone", UNCHECKED, 0644, NULL);
	EXPECT(remove3(g_nfs, root, "gone"), NFS3_OK, "REMOVE gone");
	EXPECT(getattr(g_nfs, &r.fh), NFS3ERR_STALE, "GETATTR of a removed file's handle");
	EXPECT(read3(g_nfs, &r.fh, 0, 10), NFS3ERR_STALE, "READ of a removed file's handle");
	EXPECT(remove3(g_nfs, root, "l"), NFS3_OK, "REMOVE l (the symlink)");
	EXPECT(remove3(g_nfs, root, "fifo"), NFS3_OK, "REMOVE fifo");
	EXPECT(remove3(g_nfs, root, "x"), NFS3_OK, "REMOVE x");
}

static void test_handles(const struct fh *root)
{
	struct fh bad;
	struct res f = create(g_nfs, root, "h", UNCHECKED, 0644, NULL);

	bad = f.fh;
	bad.data[bad.len - 1] ^= 0x40;
	EXPECT(getattr(g_nfs, &bad), NFS3ERR_BADHANDLE, "GETATTR with a tampered MAC byte");
	bad = f.fh;
	bad.data[bad.len / 2] ^= 0x01;
	EXPECT(getattr(g_nfs, &bad), NFS3ERR_BADHANDLE, "GETATTR with a tampered inode byte");
	bad = f.fh;
	bad.len -= 1;
	EXPECT(getattr(g_nfs, &bad), NFS3ERR_BADHANDLE, "GETATTR with a truncated handle");
	memset(&bad, 0, sizeof(bad));
	bad.len = 32;
	EXPECT(getattr(g_nfs, &bad), NFS3ERR_BADHANDLE, "GETATTR with 32 zero bytes");
	bad.len = 0;
	EXPECT(getattr(g_nfs, &bad), NFS3ERR_BADHANDLE, "GETATTR with an empty handle");
	bad.len = 64;
	for (int i = 0; i < 64; i++)
		bad.data[i] = (char)(rand() & 0xff);
	EXPECT(getattr(g_nfs, &bad), NFS3ERR_BADHANDLE, "GETATTR with 64 random bytes");
	bad = *root;
	bad.data[0] ^= 0x80;
	EXPECT(lookup(g_nfs, &bad, "h"), NFS3ERR_BADHANDLE, "LOOKUP in a forged directory handle");
	bad = f.fh;
	bad.data[bad.len - 3] ^= 0x10;
	EXPECT(write3(g_nfs, &bad, 0, "x", 1, FILE_SYNC), NFS3ERR_BADHANDLE, "WRITE through a forged handle");
	remove3(g_nfs, root, "h");
}

static void test_ro(void)
{
	struct res m = do_mnt(g_mnt, P("ro"));
	struct fh root = m.fh;
	struct res r;

	CHECK(m.st == MNT3_OK, "MNT of the ro export");
	EXPECT(create(g_nfs, &root, "new", UNCHECKED, 0644, NULL), NFS3ERR_ROFS, "CREATE on a ro export");
	EXPECT(mkdir3(g_nfs, &root, "newd", 0755), NFS3ERR_ROFS, "MKDIR on a ro export");
	r = lookup(g_nfs, &root, "file");
	CHECK(r.st == NFS3_OK, "LOOKUP on a ro export");
	EXPECT(write3(g_nfs, &r.fh, 0, "x", 1, FILE_SYNC), NFS3ERR_ROFS, "WRITE on a ro export");
	EXPECT(setattr_mode_size(g_nfs, &r.fh, 0600, -1, NULL), NFS3ERR_ROFS, "SETATTR on a ro export");
	EXPECT(remove3(g_nfs, &root, "file"), NFS3ERR_ROFS, "REMOVE on a ro export");
	r = read3(g_nfs, &r.fh, 0, 100);
	CHECK(r.st == NFS3_OK && r.count > 0, "READ on a ro export");
	res_free(&r);
	{
		ACCESS3args a = { 0 };
		set_fh3(&a.object, &root);
		a.access = ACCESS3_READ | ACCESS3_MODIFY;
		r = CALL(g_nfs, rpc_nfs3_access_async, &a, ex_access);
		CHECK(r.st == NFS3_OK && (r.access & ACCESS3_READ) && !(r.access & ACCESS3_MODIFY),
		      "ACCESS on a ro export: read yes, modify no (0x%x)", r.access);
	}
}

/* A context whose AUTH_SYS credential is uid/gid. */
static struct rpc_context *nfs_as(int uid, int gid)
{
	struct rpc_context *rpc = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
	if (rpc) {
		rpc_set_uid(rpc, uid);
		rpc_set_gid(rpc, gid);
	}
	return rpc;
}

static void test_squash(void)
{
	struct res m, r;
	struct fh sq, all, rw;
	struct rpc_context *u1000, *root0;
	char p[4096];
	int fd;

	/* a root-owned 0644 file, and a world-writable directory */
	snprintf(p, sizeof(p), "%s/sq/rootfile", g_base);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, "root's\n", 7) != 7)
			perror("write");
		if (fchown(fd, 0, 0) < 0)
			perror("fchown");
		fchmod(fd, 0644);
		close(fd);
	}
	m = do_mnt(g_mnt, P("sq"));
	sq = m.fh;
	CHECK(m.st == MNT3_OK, "MNT of the root_squash export");
	m = do_mnt(g_mnt, P("all"));
	all = m.fh;
	CHECK(m.st == MNT3_OK, "MNT of the all_squash export");
	m = do_mnt(g_mnt, P("rw"));
	rw = m.fh;

	root0 = nfs_as(0, 0);
	u1000 = nfs_as(1000, 1000);
	if (!root0 || !u1000) {
		failf("cannot connect for the squash checks");
		return;
	}
	/* root_squash: uid 0 is anonuid 65534 */
	r = lookup(root0, &sq, "rootfile");
	CHECK(r.st == NFS3_OK, "LOOKUP rootfile on the root_squash export");
	EXPECT(write3(root0, &r.fh, 0, "x", 1, FILE_SYNC), NFS3ERR_ACCES,
	       "root (squashed to 65534) writing a root-owned 0644 file");
	EXPECT(write3(u1000, &r.fh, 0, "x", 1, FILE_SYNC), NFS3ERR_ACCES,
	       "uid 1000 writing a root-owned 0644 file");
	r = read3(u1000, &r.fh, 0, 100);
	CHECK(r.st == NFS3_OK && r.count == 7, "uid 1000 reading it: allowed");
	res_free(&r);
	r = create(root0, &sq, "by-root", UNCHECKED, 0644, NULL);
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.uid == 65534 && r.attr.gid == 65534,
	      "root_squash: a file root creates belongs to anonuid/anongid (%u/%u)", r.attr.uid, r.attr.gid);
	r = create(u1000, &sq, "by-1000", UNCHECKED, 0644, NULL);
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.uid == 1000 && r.attr.gid == 1000,
	      "root_squash: uid 1000 keeps its id (%u/%u)", r.attr.uid, r.attr.gid);
	/* all_squash: everyone is anonuid=1234 */
	r = create(u1000, &all, "by-1000", UNCHECKED, 0644, NULL);
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.uid == 1234 && r.attr.gid == 1234,
	      "all_squash,anonuid=1234: uid 1000 creates as %u/%u", r.attr.uid, r.attr.gid);
	r = create(root0, &all, "by-root", UNCHECKED, 0644, NULL);
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.uid == 1234, "all_squash: root creates as %u",
	      r.attr.uid);
	/* no_root_squash: root stays root */
	r = create(root0, &rw, "by-root", UNCHECKED, 0644, NULL);
	CHECK(r.st == NFS3_OK && r.have_attr && r.attr.uid == 0, "no_root_squash: root creates as %u",
	      r.attr.uid);
	remove3(root0, &rw, "by-root");
	/* a non-owner cannot chmod */
	r = lookup(u1000, &rw, "file");
	if (r.st == NFS3_OK)
		EXPECT(setattr_mode_size(u1000, &r.fh, 0777, -1, NULL), NFS3ERR_PERM,
		       "uid 1000 chmod of root's file");
	rpc_destroy_context(root0);
	rpc_destroy_context(u1000);
}

/* Export for ::1 only: refused from 127.0.0.1, with a handle got over IPv6. */
static void test_not_allowed(void)
{
	struct rpc_context *m6, *n6;
	struct res r;

	if (!g_host6) {
		printf("skip: no IPv6 listener: handle of a ::1-only export not tried from 127.0.0.1\n");
		return;
	}
	m6 = connect_prog(g_host6, g_mount_port, MOUNT_PROG, 3);
	n6 = connect_prog(g_host6, g_nfs_port, NFS_PROG, 3);
	if (!m6 || !n6) {
		failf("connect over IPv6 to %s", g_host6);
		return;
	}
	r = do_mnt(m6, P("v6"));
	CHECK(r.st == MNT3_OK, "MNT of the ::1 export over IPv6");
	EXPECT(getattr(n6, &r.fh), NFS3_OK, "GETATTR over IPv6");
	EXPECT(getattr(g_nfs, &r.fh), NFS3ERR_ACCES, "GETATTR from 127.0.0.1 with the ::1 export's handle");
	EXPECT(create(g_nfs, &r.fh, "x", UNCHECKED, 0644, NULL), NFS3ERR_ACCES,
	       "CREATE from 127.0.0.1 in the ::1 export");
	/* UMNTALL drops the calling client's entries only: ::1's own */
	mount_noargs(m6, rpc_mount3_umntall_async, NULL);
	rpc_destroy_context(m6);
	rpc_destroy_context(n6);
}

/* exports(5) "secure": source ports below 1024 only. */
static void test_secure(void)
{
	struct res r;
	struct fh root;
	int lp = local_port(g_mnt), status;
	pid_t pid;

	if (lp < 0 || lp >= 1024) {
		printf("skip: libnfs did not bind a reserved port (local port %d; not root?): secure "
		       "export checked by test_nfs_mount.sh\n", lp);
		return;
	}
	r = do_mnt(g_mnt, P("sec"));
	CHECK(r.st == MNT3_OK, "MNT of a secure export from reserved port %d", lp);
	root = r.fh;
	CHECK(local_port(g_nfs) < 1024, "NFS connection from a reserved port (%d)", local_port(g_nfs));
	EXPECT(getattr(g_nfs, &root), NFS3_OK, "GETATTR on the secure export from a reserved port");
	/* a child without root cannot bind a reserved port: libnfs connects
	 * from an ephemeral one */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct rpc_context *m, *n;
		int bad = 0;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		m = connect_prog(g_host, g_mount_port, MOUNT_PROG, 3);
		n = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
		if (!m || !n)
			_exit(4);
		if (local_port(m) < 1024 || local_port(n) < 1024)
			_exit(5);
		r = do_mnt(m, P("sec"));
		bad |= r.st != MNT3ERR_ACCES ? 1 : 0;
		r = getattr(n, &root);
		bad |= r.st != NFS3ERR_PERM && r.st != NFS3ERR_ACCES ? 2 : 0;
		_exit(bad ? 10 + bad : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		failf("fork for the unreserved-port check");
		return;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "secure export from an unreserved port: MNT ACCES, NFS calls refused (child status %d)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void make_big_dir(const char *dir)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s/big", dir);
	if (stat(p, &st) == 0)
		return;
	mkdir(p, 0755);
	for (int i = 0; i < BIG_N; i++) {
		int fd;
		snprintf(p, sizeof(p), "%s/big/file-%05d", dir, i);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd >= 0)
			close(fd);
	}
}

static void test_big(const struct fh *root)
{
	struct listing *l = calloc(1, sizeof(*l));
	struct res r;
	struct fh big;
	uint64_t cookie = 0, mid_cookie = 0;
	char verf[8] = { 0 }, mid_verf[8] = { 0 };
	int calls = 0, missing = 0, mid_big = 0;
	struct timespec t0, t1;

	make_big_dir(P("rw"));
	r = lookup(g_nfs, root, "big");
	big = r.fh;
	l->seen = calloc(BIG_N, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = readdirplus3(g_nfs, &big, cookie, cookie ? verf : NULL, 8192, 32768, l);
		if (r.st != NFS3_OK) {
			failf("READDIRPLUS big, call %d at cookie %llu: %s", calls, (unsigned long long)cookie,
			      nfsstat_name(r.st));
			break;
		}
		calls++;
		cookie = l->last_cookie;
		memcpy(verf, l->verf, 8);
		if (!mid_cookie && l->big >= BIG_N / 2) {
			mid_cookie = cookie;
			memcpy(mid_verf, verf, 8);
			mid_big = l->big;
		}
		if (l->eof || calls > 100000)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int i = 0; i < BIG_N; i++)
		missing += !l->seen[i];
	CHECK(l->eof && l->big == BIG_N && !l->dups && !missing && listed(l, ".") && listed(l, ".."),
	      "READDIRPLUS of 50,000 entries in %d calls (%.1fs): %d names, %d missing, %d twice, "
	      "%d with handles", calls, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	      l->big, missing, l->dups, l->with_fh);
	/* resume from a cookie kept from the middle, on a new connection */
	if (mid_cookie) {
		struct rpc_context *n2 = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
		int rest = 0;
		memset(l->seen, 0, BIG_N);
		l->big = 0;
		l->dups = 0;
		l->eof = 0;
		cookie = mid_cookie;
		memcpy(verf, mid_verf, 8);
		while (n2 && !l->eof) {
			r = readdir3(n2, &big, cookie, verf, 16384, l);
			if (r.st != NFS3_OK)
				break;
			cookie = l->last_cookie;
			memcpy(verf, l->verf, 8);
		}
		rest = l->big;
		CHECK(l->eof && rest == BIG_N - mid_big && !l->dups,
		      "READDIR resumed from a mid-listing cookie on another connection: %d of the "
		      "remaining %d names", rest, BIG_N - mid_big);
		if (n2)
			rpc_destroy_context(n2);
	}
	free(l->seen);
	free(l);
}

/* The duplicate request cache: a REMOVE retransmitted with the same xid on
 * a new connection (what a client does after a reconnect) gets the original
 * OK again, not NOENT; a new xid is executed (NOENT). */
static void test_drc(const struct fh *root)
{
	uint32_t xid = 0x5a000000u | ((uint32_t)rand() & 0xffffff);
	struct rpc_context *c1, *c2, *c3;
	struct res r;

	r = create(g_nfs, root, "dup", UNCHECKED, 0644, NULL);
	c1 = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
	c2 = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
	c3 = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
	if (r.st != NFS3_OK || !c1 || !c2 || !c3) {
		failf("DRC setup");
		return;
	}
	rpc_set_next_xid(c1, xid);
	EXPECT(remove3(c1, root, "dup"), NFS3_OK, "REMOVE dup with a chosen xid");
	rpc_set_next_xid(c2, xid);
	EXPECT(remove3(c2, root, "dup"), NFS3_OK,
	       "the same REMOVE retransmitted on a new connection: the cached reply");
	rpc_set_next_xid(c3, xid + 7);
	EXPECT(remove3(c3, root, "dup"), NFS3ERR_NOENT, "the same REMOVE with a new xid: executed");
	rpc_destroy_context(c1);
	rpc_destroy_context(c2);
	rpc_destroy_context(c3);
}

/* ------------------------------------------------------------ NLM */

struct nlm_res {
	int done, rpcst, st;
	uint32_t holder_svid;
	char err[128];
};

static void nlm_cb_test(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct nlm_res *r = priv;
	(void)rpc;
	r->done = 1;
	r->rpcst = status;
	if (status == RPC_STATUS_SUCCESS && data) {
		NLM4_TESTres *t = data;
		r->st = t->reply.status;
		if (t->reply.status == NLM4_DENIED)
			r->holder_svid = t->reply.nlm4_testreply_u.lock.holder.svid;
	} else if (data && status != RPC_STATUS_SUCCESS) {
		snprintf(r->err, sizeof(r->err), "%s", (const char *)data);
	}
}

/* LOCKres, UNLOCKres, CANCres: cookie then status */
static void nlm_cb_stat(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct nlm_res *r = priv;
	(void)rpc;
	r->done = 1;
	r->rpcst = status;
	if (status == RPC_STATUS_SUCCESS && data)
		r->st = ((NLM4_LOCKres *)data)->status;
	else if (data && status != RPC_STATUS_SUCCESS)
		snprintf(r->err, sizeof(r->err), "%s", (const char *)data);
}

static int nlm_wait(struct rpc_context *rpc, struct nlm_res *r)
{
	struct res w;
	memset(&w, 0, sizeof(w));
	/* reuse wait_res's loop through a res whose done mirrors ours */
	while (!r->done) {
		struct pollfd p = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
		int n = poll(&p, 1, 100);
		if (n < 0 && errno != EINTR)
			return -1;
		if (rpc_service(rpc, n > 0 ? p.revents : 0) < 0)
			return -1;
		if (++w.count > 600)
			return -1;
	}
	return 0;
}

static void fill_lock(nlm4_lock *k, const struct fh *f, const char *owner, u_int svid, uint64_t off,
		      uint64_t len)
{
	k->caller_name = "rawtest";
	k->fh.data.data_len = f->len;
	k->fh.data.data_val = (char *)f->data;
	k->oh = (char *)owner;
	k->svid = svid;
	k->l_offset = off;
	k->l_len = len;
}

static int nlm_lock(struct rpc_context *n, const struct fh *f, const char *owner, u_int svid, bool block)
{
	NLM4_LOCKargs a;
	struct nlm_res r = { 0 };
	for (int tries = 0; tries < 100; tries++) {
		memset(&a, 0, sizeof(a));
		memset(&r, 0, sizeof(r));
		a.cookie.data.data_len = 4;
		a.cookie.data.data_val = "ck01";
		a.block = block;
		a.exclusive = 1;
		fill_lock(&a.lock, f, owner, svid, 0, 100);
		a.state = 1;
		if (rpc_nlm4_lock_async(n, nlm_cb_stat, &a, &r) != 0 || nlm_wait(n, &r) < 0 ||
		    r.rpcst != RPC_STATUS_SUCCESS)
			return -1;
		if (r.st != NLM4_DENIED_GRACE_PERIOD)
			break;
		usleep(200000);     /* a grace period after the start: wait it out */
	}
	return r.st;
}

static int nlm_unlock(struct rpc_context *n, const struct fh *f, const char *owner, u_int svid)
{
	NLM4_UNLOCKargs a;
	struct nlm_res r = { 0 };
	memset(&a, 0, sizeof(a));
	a.cookie.data.data_len = 4;
	a.cookie.data.data_val = "ck02";
	fill_lock(&a.lock, f, owner, svid, 0, 100);
	if (rpc_nlm4_unlock_async(n, nlm_cb_stat, &a, &r) != 0 || nlm_wait(n, &r) < 0 ||
	    r.rpcst != RPC_STATUS_SUCCESS)
		return -1;
	return r.st;
}

static int nlm_test(struct rpc_context *n, const struct fh *f, const char *owner, u_int svid,
		    uint32_t *holder)
{
	NLM4_TESTargs a;
	struct nlm_res r = { 0 };
	memset(&a, 0, sizeof(a));
	a.cookie.data.data_len = 4;
	a.cookie.data.data_val = "ck03";
	a.exclusive = 1;
	fill_lock(&a.lock, f, owner, svid, 50, 10);
	if (rpc_nlm4_test_async(n, nlm_cb_test, &a, &r) != 0 || nlm_wait(n, &r) < 0 ||
	    r.rpcst != RPC_STATUS_SUCCESS)
		return -1;
	if (holder)
		*holder = r.holder_svid;
	return r.st;
}

static int nlm_cancel(struct rpc_context *n, const struct fh *f, const char *owner, u_int svid)
{
	NLM4_CANCargs a;
	struct nlm_res r = { 0 };
	memset(&a, 0, sizeof(a));
	a.cookie.data.data_len = 4;
	a.cookie.data.data_val = "ck04";
	a.block = 1;
	a.exclusive = 1;
	fill_lock(&a.lock, f, owner, svid, 0, 100);
	if (rpc_nlm4_cancel_async(n, nlm_cb_stat, &a, &r) != 0 || nlm_wait(n, &r) < 0 ||
	    r.rpcst != RPC_STATUS_SUCCESS)
		return -1;
	return r.st;
}

static void test_nlm(const struct fh *root)
{
	struct rpc_context *n = connect_prog(g_host, g_nfs_port, NLM_PROG_NO, 4);
	struct nlm_res r = { 0 };
	struct res f;
	uint32_t holder = 0;
	int st;

	if (!n) {
		failf("connect for NLM");
		return;
	}
	if (rpc_nlm4_null_async(n, nlm_cb_stat, &r) != 0 || nlm_wait(n, &r) < 0 ||
	    r.rpcst != RPC_STATUS_SUCCESS) {
		printf("skip: NLM v4 not served (%s): lock checks skipped\n", r.err);
		rpc_destroy_context(n);
		return;
	}
	okf("NLM4 NULL");
	f = create(g_nfs, root, "lockme", UNCHECKED, 0644, NULL);
	st = nlm_test(n, &f.fh, "ownerA", 101, NULL);
	CHECK(st == NLM4_GRANTED, "NLM4 TEST on an unlocked range: GRANTED (%d)", st);
	st = nlm_lock(n, &f.fh, "ownerA", 101, false);
	CHECK(st == NLM4_GRANTED, "NLM4 LOCK exclusive 0..99 by A: GRANTED (%d)", st);
	st = nlm_test(n, &f.fh, "ownerB", 202, &holder);
	CHECK(st == NLM4_DENIED && holder == 101, "NLM4 TEST by B: DENIED, holder svid %u (%d)", holder, st);
	st = nlm_lock(n, &f.fh, "ownerB", 202, false);
	CHECK(st == NLM4_DENIED, "NLM4 LOCK non-blocking by B: DENIED (%d)", st);
	st = nlm_lock(n, &f.fh, "ownerB", 202, true);
	CHECK(st == NLM4_BLOCKED, "NLM4 LOCK blocking by B: BLOCKED (%d)", st);
	st = nlm_cancel(n, &f.fh, "ownerB", 202);
	CHECK(st == NLM4_GRANTED, "NLM4 CANCEL of B's blocked request: GRANTED (%d)", st);
	st = nlm_unlock(n, &f.fh, "ownerA", 101);
	CHECK(st == NLM4_GRANTED, "NLM4 UNLOCK by A: GRANTED (%d)", st);
	st = nlm_test(n, &f.fh, "ownerB", 202, NULL);
	CHECK(st == NLM4_GRANTED, "NLM4 TEST by B after A's unlock (B's request cancelled): GRANTED (%d)", st);
	st = nlm_lock(n, &f.fh, "ownerB", 202, false);
	CHECK(st == NLM4_GRANTED, "NLM4 LOCK by B: GRANTED (%d)", st);
	st = nlm_unlock(n, &f.fh, "ownerB", 202);
	CHECK(st == NLM4_GRANTED, "NLM4 UNLOCK by B: GRANTED (%d)", st);
	{
		struct fh bad = f.fh;
		bad.data[bad.len - 1] ^= 1;
		st = nlm_lock(n, &bad, "ownerA", 101, false);
		CHECK(st == NLM4_STALE_FH || st == NLM4_FAILED, "NLM4 LOCK with a forged handle: refused (%d)", st);
	}
	remove3(g_nfs, root, "lockme");
	rpc_destroy_context(n);
}

/* ------------------------------------------------------------ restart */

static void save_state(const struct fh *root)
{
	struct res f = create(g_nfs, root, "verf-file", UNCHECKED, 0644, NULL);
	struct res w = write3(g_nfs, &f.fh, 0, "before", 6, UNSTABLE);
	FILE *o = fopen(g_state, "w");

	if (!o || f.st != NFS3_OK || w.st != NFS3_OK) {
		failf("cannot record state for the restart check");
		if (o)
			fclose(o);
		return;
	}
	fwrite(&root->len, sizeof(root->len), 1, o);
	fwrite(root->data, 1, sizeof(root->data), o);
	fwrite(&f.fh.len, sizeof(f.fh.len), 1, o);
	fwrite(f.fh.data, 1, sizeof(f.fh.data), o);
	fwrite(w.verf, 1, 8, o);
	fclose(o);
	okf("state recorded for the restart check");
}

static void test_restart(void)
{
	struct fh root, file;
	char verf[8];
	FILE *in = fopen(g_state, "r");
	struct res r;

	if (!in || fread(&root.len, sizeof(root.len), 1, in) != 1 ||
	    fread(root.data, 1, sizeof(root.data), in) != sizeof(root.data) ||
	    fread(&file.len, sizeof(file.len), 1, in) != 1 ||
	    fread(file.data, 1, sizeof(file.data), in) != sizeof(file.data) ||
	    fread(verf, 1, 8, in) != 8) {
		failf("no state from before the restart in %s", g_state ? g_state : "(none)");
		if (in)
			fclose(in);
		return;
	}
	fclose(in);
	r = do_mnt(g_mnt, P("rw"));
	CHECK(r.st == MNT3_OK && same_fh(&r.fh, &root), "after a restart: MNT gives the same root handle");
	r = getattr(g_nfs, &file);
	CHECK(r.st == NFS3_OK && r.attr.size == 6, "after a restart: the old file handle still works");
	r = read3(g_nfs, &file, 0, 6);
	CHECK(r.st == NFS3_OK && r.buf && !memcmp(r.buf, "before", 6), "after a restart: the data is there");
	res_free(&r);
	r = write3(g_nfs, &file, 0, "after!", 6, UNSTABLE);
	CHECK(r.st == NFS3_OK && memcmp(r.verf, verf, 8) != 0,
	      "after a restart: a new write verifier (clients resend uncommitted data)");
	{
		struct res c = commit3(g_nfs, &file);
		CHECK(c.st == NFS3_OK && !memcmp(c.verf, r.verf, 8), "after a restart: COMMIT agrees with WRITE");
	}
	remove3(g_nfs, &root, "verf-file");
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "host6", required_argument, NULL, '6' },
		{ "nfs-port", required_argument, NULL, 'n' },
		{ "mount-port", required_argument, NULL, 'm' },
		{ "base", required_argument, NULL, 'b' },
		{ "phase", required_argument, NULL, 'p' },
		{ "state", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct fh root;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'H': g_host = optarg; break;
		case '6': g_host6 = optarg[0] ? optarg : NULL; break;
		case 'n': g_nfs_port = atoi(optarg); break;
		case 'm': g_mount_port = atoi(optarg); break;
		case 'b': g_base = optarg; break;
		case 'p': g_phase = optarg; break;
		case 's': g_state = optarg; break;
		default:
			fprintf(stderr, "usage: %s --host H --nfs-port N --mount-port M --base DIR "
				"--phase main|restart --state FILE [--host6 ::1]\n", argv[0]);
			return 2;
		}
	}
	if (!g_base || !g_state) {
		fprintf(stderr, "%s: --base and --state are required\n", argv[0]);
		return 2;
	}
	srand((unsigned)time(NULL));
	g_mnt = connect_prog(g_host, g_mount_port, MOUNT_PROG, 3);
	g_nfs = connect_prog(g_host, g_nfs_port, NFS_PROG, 3);
	if (!g_mnt || !g_nfs) {
		printf("FAIL: cannot connect to %s (mount %d, nfs %d)\n", g_host, g_mount_port, g_nfs_port);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	if (!strcmp(g_phase, "restart")) {
		test_restart();
	} else {
		test_mount(&root);
		test_procs(&root);
		test_handles(&root);
		test_ro();
		test_squash();
		test_not_allowed();
		test_secure();
		test_big(&root);
		test_drc(&root);
		test_nlm(&root);
		save_state(&root);
		test_mount_end();
	}
	rpc_destroy_context(g_mnt);
	rpc_destroy_context(g_nfs);
	printf("%d passed, %d failed\n", g_pass, g_fail);
	return g_fail ? 1 : 0;
}
