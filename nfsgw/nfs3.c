/* nfs3.c - NFSv3 (RFC 1813) procedures: decode, resolve, execute, reply.
 *
 * One struct nfs3_req per call.  The flow:
 *   dispatch (reactor): decode the arguments (xdr.h cursors: every length is
 *     checked before use), verify the file handle(s) (a cached descriptor
 *     for identical handle bytes means they were verified before), find the
 *     export, match the client (exports(5): first match wins), check the
 *     secure-port rule, squash the credentials;
 *   fast procedures (GETATTR, ACCESS, READ, WRITE, COMMIT): io_uring on the
 *     cached descriptor (a workpool job opens it on a miss);
 *   the others: one workpool job that opens what is not cached (as root:
 *     open_by_handle_at needs CAP_DAC_READ_SEARCH), takes on the caller's
 *     credentials (fs_cred_enter) and does the system calls, so the kernel
 *     enforces permissions as for a local user;
 *   reply (reactor): zdr_*3res into rpc_reply_buf(), READ data and
 *     directory entries as the zero-copy payload.
 */
#include "nfs3.h"
#include "../core/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs-zdr.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "../core/lease.h"
#include "../core/log.h"
#include "../core/workpool.h"
#include "exports.h"
#include "fh.h"
#include "fsops.h"
#include "xdr.h"

int nfs3_inline_statx = 1;

enum {
	P_NULL, P_GETATTR, P_SETATTR, P_LOOKUP, P_ACCESS, P_READLINK, P_READ, P_WRITE,
	P_CREATE, P_MKDIR, P_SYMLINK, P_MKNOD, P_REMOVE, P_RMDIR, P_RENAME, P_LINK,
	P_READDIR, P_READDIRPLUS, P_FSSTAT, P_FSINFO, P_PATHCONF, P_COMMIT, P_COUNT
};

#define NAME_CAP 256            /* NAME_MAX + 1 */
#define PATH_CAP 4096           /* symlink targets (PATH_MAX with its NUL) */
#define REPLY_MAX 8192          /* every fixed-shape result fits */
#define DIR_HDR 100             /* status + post_op_attr + cookieverf */
#define AUTH_TOOWEAK_STATUS 0xffffffffu /* resolve(): answer with an auth error */

/* ------------------------------------------------------------ verifier */

static pthread_once_t verf_once = PTHREAD_ONCE_INIT;
static uint64_t verf_base;
static atomic_uint_fast64_t verf_gen;

static void verf_init(void)
{
	struct timespec ts;

	if (getrandom(&verf_base, sizeof(verf_base), 0) != (ssize_t)sizeof(verf_base)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		verf_base = (uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
	}
}

void nfs3_write_verf(uint8_t out[8])
{
	uint64_t v;

	pthread_once(&verf_once, verf_init);
	v = verf_base + atomic_load(&verf_gen) * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
}

void nfs3_write_verf_bump(void)
{
	atomic_fetch_add(&verf_gen, 1);
	log_warn("nfs: a sync write or COMMIT failed; write verifier changed");
}

/* ----------------------------------------------------------- errno map */

uint32_t nfs3_errno_to_status(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:             return NFS3_OK;
	case EPERM:         return NFS3ERR_PERM;
	case ENOENT:        return NFS3ERR_NOENT;
	case EIO:           return NFS3ERR_IO;
	case ENXIO:         return NFS3ERR_NXIO;
	case EACCES:        return NFS3ERR_ACCES;
	case ETXTBSY:       return NFS3ERR_ACCES;
	case EEXIST:        return NFS3ERR_EXIST;
	case EXDEV:         return NFS3ERR_XDEV;
	case ENODEV:        return NFS3ERR_NODEV;
	case ENOTDIR:       return NFS3ERR_NOTDIR;
	case EISDIR:        return NFS3ERR_ISDIR;
	case EINVAL:        return NFS3ERR_INVAL;
	case ELOOP:         return NFS3ERR_INVAL;      /* O_NOFOLLOW met a symlink */
	case EFBIG:         return NFS3ERR_FBIG;
	case EOVERFLOW:     return NFS3ERR_FBIG;
	case ENOSPC:        return NFS3ERR_NOSPC;
	case EROFS:         return NFS3ERR_ROFS;
	case EMLINK:        return NFS3ERR_MLINK;
	case ENAMETOOLONG:  return NFS3ERR_NAMETOOLONG;
	case ENOTEMPTY:     return NFS3ERR_NOTEMPTY;
	case EDQUOT:        return NFS3ERR_DQUOT;
	case ESTALE:        return NFS3ERR_STALE;
	case EBADMSG:       return NFS3ERR_BADHANDLE;  /* fh_verify: forged/truncated */
	case EOPNOTSUPP:    return NFS3ERR_NOTSUPP;
	case EBUSY:         return NFS3ERR_ACCES;      /* rename of a mount point & co. */
	case ENOMEM:
	case EAGAIN:
	case EMFILE:
	case ENFILE:        return NFS3ERR_JUKEBOX;    /* try again later */
	case EFAULT:
	case EBADF:         return NFS3ERR_SERVERFAULT;
	default:            return NFS3ERR_IO;
	}
}

/* -------------------------------------------------------------- request */

struct nfs3_req;

struct req_op {
	struct rs_op op;
	struct nfs3_req *req;
	void (*cb)(struct nfs3_req *req, int res);
};

struct req_fh {
	const uint8_t *data;
	uint32_t len;
	struct fs_obj *obj;     /* cached descriptor (referenced) */
	int fd;                 /* obj->fd or own */
	bool own;               /* opened by this request's job */
	uint32_t type;
	bool writable;
};

struct proc_desc;

struct nfs3_req {
	struct rpc_call *call;
	uint64_t t0_ns;            /* start, for per-export latency statistics */
	const struct proc_desc *pd;
	uint32_t proc;
	struct nfs_export *exp;
	struct export_options opts;
	struct nfs_cred cred;
	int nfh;
	struct req_fh h[2];
	bool reopened;

	/* arguments */
	char name[2][NAME_CAP];
	uint32_t name_err[2];   /* nfsstat3 for an unusable name, 0 if fine */
	struct fs_sattr sa;
	bool guard;
	struct timespec guard_ctime;
	uint32_t access;
	uint64_t offset, cookie;
	uint32_t count, stable, dircount, maxcount;
	const uint8_t *data;
	uint32_t datalen;
	uint32_t createmode;
	uint8_t verf[8];
	char *path;             /* SYMLINK target / READLINK result (heap) */
	uint32_t path_err;
	uint32_t ftype, spec1, spec2;

	/* execution */
	struct wp_job job;
	struct req_op ops[3];
	struct statx stx[3];
	int pending;
	int io_res;
	int stx_err;
	uint32_t done_bytes;

	/* results */
	uint32_t status;
	struct nfs_fh outfh;
	int new_fd;             /* the object of outfh (LOOKUP, CREATE...): cached */
	uint32_t new_type;
	bool new_writable;
	union {
		GETATTR3res getattr;
		SETATTR3res setattr;
		LOOKUP3res lookup;
		ACCESS3res access;
		READLINK3res readlink;
		READ3res read;
		WRITE3res write;
		CREATE3res create;      /* also MKDIR, SYMLINK, MKNOD: same shape */
		MKDIR3res mkdir;
		SYMLINK3res symlink;
		MKNOD3res mknod;
		REMOVE3res remove;
		RMDIR3res rmdir;
		RENAME3res rename;
		LINK3res link;
		FSSTAT3res fsstat;
		FSINFO3res fsinfo;
		PATHCONF3res pathconf;
		COMMIT3res commit;
	} res;
	bool dir_attr_ok;
	struct statx dir_stx;   /* READDIR dir attributes */
	uint8_t cookieverf[8];
	uint8_t *payload;       /* READ data or directory entries */
	size_t payload_len;
};

struct proc_desc {
	const char *name;
	bool (*decode)(struct nfs3_req *r, struct xdr_dec *d);
	void (*work)(struct nfs3_req *r);       /* pool thread, caller's creds */
	void (*fast)(struct nfs3_req *r);       /* reactor, io_uring */
	bool modifies;
	bool want_write;
};

static const struct proc_desc procs[P_COUNT];

static void req_reply(struct nfs3_req *r);

/* ----------------------------------------------------------- attributes */

static ftype3 ftype_of(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:  return NF3REG;
	case S_IFDIR:  return NF3DIR;
	case S_IFBLK:  return NF3BLK;
	case S_IFCHR:  return NF3CHR;
	case S_IFLNK:  return NF3LNK;
	case S_IFSOCK: return NF3SOCK;
	default:       return NF3FIFO;
	}
}

/* RFC 1813 2.6 fattr3.  fsid is the export's id so that each export looks
 * like a file system of its own (and never depends on st_dev). */
static void fattr_fill(const struct nfs3_req *r, const struct statx *s, fattr3 *a)
{
	a->type = ftype_of(s->stx_mode);
	a->mode = s->stx_mode & 07777;
	a->nlink = s->stx_nlink;
	a->uid = s->stx_uid;
	a->gid = s->stx_gid;
	a->size = s->stx_size;
	a->used = s->stx_blocks * 512;
	a->rdev.specdata1 = s->stx_rdev_major;
	a->rdev.specdata2 = s->stx_rdev_minor;
	a->fsid = r->exp ? r->exp->id : 0;
	a->fileid = s->stx_ino;
	a->atime.seconds = (u_int)s->stx_atime.tv_sec;
	a->atime.nseconds = s->stx_atime.tv_nsec;
	a->mtime.seconds = (u_int)s->stx_mtime.tv_sec;
	a->mtime.nseconds = s->stx_mtime.tv_nsec;
	a->ctime.seconds = (u_int)s->stx_ctime.tv_sec;
	a->ctime.nseconds = s->stx_ctime.tv_nsec;
}

static void post_attr(const struct nfs3_req *r, post_op_attr *p, const struct statx *s, bool ok)
{
	p->attributes_follow = ok;
	if (ok)
		fattr_fill(r, s, &p->post_op_attr_u.attributes);
}

static void pre_attr(pre_op_attr *p, const struct statx *s, bool ok)
{
	p->attributes_follow = ok;
	if (ok) {
		wcc_attr *w = &p->pre_op_attr_u.attributes;
		w->size = s->stx_size;
		w->mtime.seconds = (u_int)s->stx_mtime.tv_sec;
		w->mtime.nseconds = s->stx_mtime.tv_nsec;
		w->ctime.seconds = (u_int)s->stx_ctime.tv_sec;
		w->ctime.nseconds = s->stx_ctime.tv_nsec;
	}
}

/* wcc_data (RFC 1813 2.6) from a statx before and one after. */
static void wcc_fill(const struct nfs3_req *r, wcc_data *w, const struct statx *pre, bool pre_ok,
		     const struct statx *post, bool post_ok)
{
	pre_attr(&w->before, pre, pre_ok);
	post_attr(r, &w->after, post, post_ok);
}

/* Encoders for the directory entry lists (xdr.h). */
static void enc_fattr3(struct xdr_enc *e, const fattr3 *a)
{
	xdr_put_u32(e, a->type);
	xdr_put_u32(e, a->mode);
	xdr_put_u32(e, a->nlink);
	xdr_put_u32(e, a->uid);
	xdr_put_u32(e, a->gid);
	xdr_put_u64(e, a->size);
	xdr_put_u64(e, a->used);
	xdr_put_u32(e, a->rdev.specdata1);
	xdr_put_u32(e, a->rdev.specdata2);
	xdr_put_u64(e, a->fsid);
	xdr_put_u64(e, a->fileid);
	xdr_put_u32(e, a->atime.seconds);
	xdr_put_u32(e, a->atime.nseconds);
	xdr_put_u32(e, a->mtime.seconds);
	xdr_put_u32(e, a->mtime.nseconds);
	xdr_put_u32(e, a->ctime.seconds);
	xdr_put_u32(e, a->ctime.nseconds);
}

static void enc_post_op_attr(struct xdr_enc *e, const post_op_attr *p)
{
	xdr_put_u32(e, p->attributes_follow);
	if (p->attributes_follow)
		enc_fattr3(e, &p->post_op_attr_u.attributes);
}

static void set_fh3(nfs_fh3 *out, struct nfs_fh *fh)
{
	out->data.data_len = fh->len;
	out->data.data_val = (char *)fh->data;
}

/* ------------------------------------------------------------- decoding */

static bool dec_fh(struct nfs3_req *r, struct xdr_dec *d)
{
	uint32_t len;
	const uint8_t *p;

	if (r->nfh >= 2)
		return false;
	/* nfs_fh3 is opaque<NFS3_FHSIZE> (RFC 1813 2.5): a longer one is
	 * garbage, a shorter or mangled one fails fh_verify (BADHANDLE). */
	p = xdr_get_opaque(d, &len, NFS3_FHSIZE);
	if (!p)
		return false;
	r->h[r->nfh].data = p;
	r->h[r->nfh].len = len;
	r->h[r->nfh].fd = -1;
	r->nfh++;
	return true;
}

/* filename3 (RFC 1813 2.5): we take up to 4 KiB off the wire so that a long
 * name gets NAMETOOLONG rather than GARBAGE_ARGS; empty names and names with
 * '/' or NUL are refused (never a path walk, never an escape). */
static bool dec_name(struct nfs3_req *r, struct xdr_dec *d, int i)
{
	uint32_t len;
	const uint8_t *p = xdr_get_opaque(d, &len, 4096);

	if (!p)
		return false;
	r->name[i][0] = '\0';
	if (len == 0 || memchr(p, '/', len) || memchr(p, 0, len))
		r->name_err[i] = NFS3ERR_ACCES;
	else if (len >= NAME_CAP)
		r->name_err[i] = NFS3ERR_NAMETOOLONG;
	else {
		memcpy(r->name[i], p, len);
		r->name[i][len] = '\0';
	}
	return true;
}

static bool dec_diropargs(struct nfs3_req *r, struct xdr_dec *d, int i)
{
	return dec_fh(r, d) && dec_name(r, d, i);
}

static bool dec_time(struct xdr_dec *d, struct timespec *ts)
{
	ts->tv_sec = xdr_get_u32(d);
	ts->tv_nsec = xdr_get_u32(d);
	return !d->err;
}

/* sattr3 (RFC 1813 2.6) */
static bool dec_sattr(struct xdr_dec *d, struct fs_sattr *sa)
{
	uint32_t how;

	memset(sa, 0, sizeof(*sa));
	if ((sa->set_mode = xdr_get_u32(d) != 0))
		sa->mode = xdr_get_u32(d);
	if ((sa->set_uid = xdr_get_u32(d) != 0))
		sa->uid = xdr_get_u32(d);
	if ((sa->set_gid = xdr_get_u32(d) != 0))
		sa->gid = xdr_get_u32(d);
	if ((sa->set_size = xdr_get_u32(d) != 0))
		sa->size = xdr_get_u64(d);
	how = xdr_get_u32(d);
	if (how > SET_TO_CLIENT_TIME)
		return false;
	sa->atime_how = (enum fs_time_how)how;
	if (how == SET_TO_CLIENT_TIME && !dec_time(d, &sa->atime))
		return false;
	how = xdr_get_u32(d);
	if (how > SET_TO_CLIENT_TIME)
		return false;
	sa->mtime_how = (enum fs_time_how)how;
	if (how == SET_TO_CLIENT_TIME && !dec_time(d, &sa->mtime))
		return false;
	return !d->err;
}

static bool dec_fh_only(struct nfs3_req *r, struct xdr_dec *d)
{
	return dec_fh(r, d);
}

static bool dec_setattr(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d) || !dec_sattr(d, &r->sa))
		return false;
	if ((r->guard = xdr_get_u32(d) != 0))
		dec_time(d, &r->guard_ctime);
	return !d->err;
}

static bool dec_lookup(struct nfs3_req *r, struct xdr_dec *d)
{
	return dec_diropargs(r, d, 0);
}

static bool dec_access(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d))
		return false;
	r->access = xdr_get_u32(d);
	return !d->err;
}

static bool dec_read(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d))
		return false;
	r->offset = xdr_get_u64(d);
	r->count = xdr_get_u32(d);
	return !d->err;
}

static bool dec_write(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d))
		return false;
	r->offset = xdr_get_u64(d);
	r->count = xdr_get_u32(d);
	r->stable = xdr_get_u32(d);
	r->data = xdr_get_opaque(d, &r->datalen, RPC_MAX_RECORD);
	if (d->err || !r->data || r->stable > FILE_SYNC)
		return false;
	return true;
}

static bool dec_create(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_diropargs(r, d, 0))
		return false;
	r->createmode = xdr_get_u32(d);
	switch (r->createmode) {
	case UNCHECKED:
	case GUARDED:
		return dec_sattr(d, &r->sa);
	case EXCLUSIVE:
		if (xdr_dec_left(d) < 8)
			return false;
		memcpy(r->verf, d->p, 8);
		d->p += 8;
		return true;
	default:
		return false;
	}
}

static bool dec_mkdir(struct nfs3_req *r, struct xdr_dec *d)
{
	return dec_diropargs(r, d, 0) && dec_sattr(d, &r->sa);
}

static bool dec_symlink(struct nfs3_req *r, struct xdr_dec *d)
{
	uint32_t len;
	const uint8_t *p;

	if (!dec_diropargs(r, d, 0) || !dec_sattr(d, &r->sa))
		return false;
	p = xdr_get_opaque(d, &len, 65536);
	if (!p)
		return false;
	if (len == 0 || memchr(p, 0, len)) {
		r->path_err = NFS3ERR_INVAL;
		return true;
	}
	if (len >= PATH_CAP) {
		r->path_err = NFS3ERR_NAMETOOLONG;
		return true;
	}
	r->path = malloc(len + 1);
	if (!r->path) {
		r->path_err = NFS3ERR_JUKEBOX;
		return true;
	}
	memcpy(r->path, p, len);
	r->path[len] = '\0';
	return true;
}

static bool dec_mknod(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_diropargs(r, d, 0))
		return false;
	r->ftype = xdr_get_u32(d);
	switch (r->ftype) {
	case NF3CHR:
	case NF3BLK:
		if (!dec_sattr(d, &r->sa))
			return false;
		r->spec1 = xdr_get_u32(d);
		r->spec2 = xdr_get_u32(d);
		return !d->err;
	case NF3SOCK:
	case NF3FIFO:
		return dec_sattr(d, &r->sa);
	default:
		return !d->err;  /* void arm: answered with BADTYPE */
	}
}

static bool dec_rename(struct nfs3_req *r, struct xdr_dec *d)
{
	return dec_diropargs(r, d, 0) && dec_diropargs(r, d, 1);
}

static bool dec_link(struct nfs3_req *r, struct xdr_dec *d)
{
	return dec_fh(r, d) && dec_diropargs(r, d, 1);
}

static bool dec_readdir(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d))
		return false;
	r->cookie = xdr_get_u64(d);
	if (xdr_dec_left(d) < 8)
		return false;
	memcpy(r->verf, d->p, 8);
	d->p += 8;
	r->count = xdr_get_u32(d);
	r->maxcount = r->count;
	r->dircount = UINT32_MAX;
	return !d->err;
}

static bool dec_readdirplus(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d))
		return false;
	r->cookie = xdr_get_u64(d);
	if (xdr_dec_left(d) < 8)
		return false;
	memcpy(r->verf, d->p, 8);
	d->p += 8;
	r->dircount = xdr_get_u32(d);
	r->maxcount = xdr_get_u32(d);
	return !d->err;
}

static bool dec_commit(struct nfs3_req *r, struct xdr_dec *d)
{
	if (!dec_fh(r, d))
		return false;
	r->offset = xdr_get_u64(d);
	r->count = xdr_get_u32(d);
	return !d->err;
}

/* ------------------------------------------------------- request lifetime */

static void req_free(struct nfs3_req *r)
{
	for (int i = 0; i < r->nfh; i++) {
		if (r->h[i].obj)
			fs_cache_put(r->h[i].obj);
		else if (r->h[i].own && r->h[i].fd >= 0)
			close(r->h[i].fd);
	}
	if (r->new_fd >= 0)
		close(r->new_fd);
	if (r->exp)
		nfs_export_put(r->exp);
	free(r->path);
	free(r->payload);
	free(r);
}

/* Finish with an error status: every XXX3res starts with the status and its
 * resfail arm is all "attributes_follow = FALSE" when zeroed. */
static void req_fail(struct nfs3_req *r, uint32_t status)
{
	memset(&r->res, 0, sizeof(r->res));
	r->status = status;
	req_reply(r);
}

/* Cache what a job opened, so that the next call on the handle is fast. */
static void adopt_own_fds(struct nfs3_req *r)
{
	for (int i = 0; i < r->nfh; i++) {
		struct req_fh *h = &r->h[i];
		if (!h->own || h->fd < 0)
			continue;
		h->own = false;
		h->obj = fs_cache_add(h->data, h->len, r->exp->id, h->fd, h->type, h->writable);
		h->fd = h->obj ? h->obj->fd : -1;
		if (h->obj) {
			h->type = h->obj->type;
			h->writable = h->obj->writable;
		}
	}
}

/* Pool thread: open every handle not served from the cache. */
static int open_missing(struct nfs3_req *r)
{
	for (int i = 0; i < r->nfh; i++) {
		struct req_fh *h = &r->h[i];
		int rc;

		if (h->fd >= 0)
			continue;
		if (i == 1 && h->len == r->h[0].len && memcmp(h->data, r->h[0].data, h->len) == 0) {
			h->fd = r->h[0].fd;     /* same object twice (RENAME in one dir) */
			h->type = r->h[0].type;
			h->writable = r->h[0].writable;
			continue;
		}
		rc = fs_open_handle(h->data, h->len, r->exp->root_fd, r->pd->want_write && r->opts.rw,
				    &h->fd, &h->type, &h->writable);
		if (rc < 0) {
			h->fd = -1;
			return rc;
		}
		h->own = true;
	}
	return 0;
}

static void job_work(struct wp_job *job)
{
	struct nfs3_req *r = container_of(job, struct nfs3_req, job);
	int rc = open_missing(r);

	if (rc < 0) {
		r->status = nfs3_errno_to_status(rc);
		return;
	}
	if (!r->pd->work)
		return;         /* open-only job for a fast procedure */
	rc = fs_cred_enter(&r->cred);
	if (rc < 0) {
		log_err("nfs: cannot switch to uid %u gid %u: %s", r->cred.uid, r->cred.gid,
			strerror(-rc));
		r->status = NFS3ERR_SERVERFAULT;
		return;
	}
	r->status = NFS3_OK;
	r->pd->work(r);
	fs_cred_leave();
	/* The object a LOOKUP or CREATE just handed out is what the client
	 * touches next (GETATTR, READ, WRITE): open it for the cache now, as
	 * root, instead of decoding the handle again in another job. */
	if (r->new_fd >= 0) {
		int pfd = r->new_fd, fd;

		r->new_fd = -1;
		if (r->status == NFS3_OK &&
		    fs_reopen_typed(pfd, r->opts.rw, &fd, &r->new_type, &r->new_writable) == 0)
			r->new_fd = fd;
		close(pfd);
	}
}

static void fast_begin(struct nfs3_req *r);

static void job_done(struct wp_job *job)
{
	struct nfs3_req *r = container_of(job, struct nfs3_req, job);
	bool fast = !r->pd->work;

	adopt_own_fds(r);
	if (fast) {
		if (r->status != NFS3_OK) {
			req_fail(r, r->status);
			return;
		}
		r->reopened = true;
		fast_begin(r);
		return;
	}
	if (r->status == NFS3ERR_STALE && r->h[0].obj)
		fs_cache_forget(r->h[0].obj);
	if (r->new_fd >= 0) {
		struct fs_obj *o = fs_cache_add(r->outfh.data, r->outfh.len, r->exp->id, r->new_fd,
						r->new_type, r->new_writable);
		r->new_fd = -1;
		fs_cache_put(o);
	}
	req_reply(r);
}

static void submit_job(struct nfs3_req *r)
{
	r->job.work = job_work;
	r->job.done = job_done;
	workpool_submit(&r->job);
}

/* --------------------------------------------------------------- replies */

static void send_payload_done(void *arg)
{
	free(arg);
}

static void reply_dir(struct nfs3_req *r)
{
	struct rpc_call *call = r->call;
	uint8_t *buf = rpc_reply_buf(call, DIR_HDR + 16);
	struct xdr_enc e;
	post_op_attr pa;
	uint8_t *payload = NULL;
	size_t plen = 0;

	if (!buf) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	xdr_enc_init(&e, buf, DIR_HDR + 16);
	xdr_put_u32(&e, r->status);
	memset(&pa, 0, sizeof(pa));
	post_attr(r, &pa, &r->dir_stx, r->dir_attr_ok);
	enc_post_op_attr(&e, &pa);
	if (r->status == NFS3_OK) {
		memcpy(e.p, r->cookieverf, 8);
		e.p += 8;
		payload = r->payload;
		plen = r->payload_len;
		r->payload = NULL;
	}
	rpc_reply_send(call, xdr_enc_len(&e), payload, plen, payload ? send_payload_done : NULL,
		       payload);
}

static void reply_read(struct nfs3_req *r)
{
	struct rpc_call *call = r->call;
	uint8_t *buf = rpc_reply_buf(call, 256);
	ZDR z;
	uint32_t len, n = 0;
	uint8_t *payload = NULL;

	if (!buf) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	r->res.read.status = r->status;
	if (r->status == NFS3_OK) {
		n = r->res.read.READ3res_u.resok.count;
		r->res.read.READ3res_u.resok.data.data_len = 0;
		r->res.read.READ3res_u.resok.data.data_val = NULL;
	}
	zdrmem_create(&z, (caddr_t)buf, 256, ZDR_ENCODE);
	if (!zdr_READ3res(&z, &r->res.read)) {
		zdr_destroy(&z);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	len = zdr_getpos(&z);
	zdr_destroy(&z);
	if (r->status == NFS3_OK) {
		/* the opaque data<> length, then the bytes as the payload */
		xdr_put_be32(buf + len - 4, n);
		if (n) {
			payload = r->payload;
			r->payload = NULL;
		}
	}
	rpc_reply_send(call, len, payload, n, payload ? send_payload_done : NULL, payload);
}

/* Encode the result with libnfs's zdr_*3res and send it; frees r. */
static void req_reply(struct nfs3_req *r)
{
	struct rpc_call *call = r->call;
	uint8_t *buf;
	ZDR z;
	bool ok = false;

	if (r->exp) {
		bool good = r->status == NFS3_OK;
		uint64_t bytes = !good ? 0 :
			r->proc == P_READ ? r->res.read.READ3res_u.resok.count :
			r->proc == P_WRITE ? r->res.write.WRITE3res_u.resok.count : 0;
		stats_nfs_op(r->exp->id,
			     r->proc == P_READ ? STATS_READ :
			     (r->proc == P_WRITE || r->proc == P_COMMIT) ? STATS_WRITE : STATS_OTHER,
			     bytes, stats_now_ns() - r->t0_ns, !good);
	}

	if (r->proc == P_READ) {
		reply_read(r);
		req_free(r);
		return;
	}
	if (r->proc == P_READDIR || r->proc == P_READDIRPLUS) {
		reply_dir(r);
		req_free(r);
		return;
	}
	buf = rpc_reply_buf(call, REPLY_MAX);
	if (!buf) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		req_free(r);
		return;
	}
	zdrmem_create(&z, (caddr_t)buf, REPLY_MAX, ZDR_ENCODE);
	switch (r->proc) {
	case P_GETATTR:  r->res.getattr.status = r->status; ok = zdr_GETATTR3res(&z, &r->res.getattr); break;
	case P_SETATTR:  r->res.setattr.status = r->status; ok = zdr_SETATTR3res(&z, &r->res.setattr); break;
	case P_LOOKUP:   r->res.lookup.status = r->status; ok = zdr_LOOKUP3res(&z, &r->res.lookup); break;
	case P_ACCESS:   r->res.access.status = r->status; ok = zdr_ACCESS3res(&z, &r->res.access); break;
	case P_READLINK: r->res.readlink.status = r->status; ok = zdr_READLINK3res(&z, &r->res.readlink); break;
	case P_WRITE:    r->res.write.status = r->status; ok = zdr_WRITE3res(&z, &r->res.write); break;
	case P_CREATE:   r->res.create.status = r->status; ok = zdr_CREATE3res(&z, &r->res.create); break;
	case P_MKDIR:    r->res.mkdir.status = r->status; ok = zdr_MKDIR3res(&z, &r->res.mkdir); break;
	case P_SYMLINK:  r->res.symlink.status = r->status; ok = zdr_SYMLINK3res(&z, &r->res.symlink); break;
	case P_MKNOD:    r->res.mknod.status = r->status; ok = zdr_MKNOD3res(&z, &r->res.mknod); break;
	case P_REMOVE:   r->res.remove.status = r->status; ok = zdr_REMOVE3res(&z, &r->res.remove); break;
	case P_RMDIR:    r->res.rmdir.status = r->status; ok = zdr_RMDIR3res(&z, &r->res.rmdir); break;
	case P_RENAME:   r->res.rename.status = r->status; ok = zdr_RENAME3res(&z, &r->res.rename); break;
	case P_LINK:     r->res.link.status = r->status; ok = zdr_LINK3res(&z, &r->res.link); break;
	case P_FSSTAT:   r->res.fsstat.status = r->status; ok = zdr_FSSTAT3res(&z, &r->res.fsstat); break;
	case P_FSINFO:   r->res.fsinfo.status = r->status; ok = zdr_FSINFO3res(&z, &r->res.fsinfo); break;
	case P_PATHCONF: r->res.pathconf.status = r->status; ok = zdr_PATHCONF3res(&z, &r->res.pathconf); break;
	case P_COMMIT:   r->res.commit.status = r->status; ok = zdr_COMMIT3res(&z, &r->res.commit); break;
	default: break;
	}
	if (!ok) {
		zdr_destroy(&z);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
	} else {
		uint32_t len = zdr_getpos(&z);
		zdr_destroy(&z);
		rpc_reply_send(call, len, NULL, 0, NULL, NULL);
	}
	req_free(r);
}

/* ------------------------------------------------------- fast procedures */

static void op_complete(struct rs_op *op, int res, uint32_t flags)
{
	struct req_op *o = container_of(op, struct req_op, op);
	(void)flags;
	o->cb(o->req, res);
}

static void submit_statx(struct nfs3_req *r, int slot, void (*cb)(struct nfs3_req *, int))
{
	struct req_op *o = &r->ops[slot];

	if (nfs3_inline_statx) {
		/* statx(2) of an open descriptor reads the in-core inode: no I/O
		 * and no lock that I/O holds, so it does not block the reactor. */
		cb(r, fs_statx_fd(r->h[0].fd, &r->stx[slot]));
		return;
	}
	o->op.fn = op_complete;
	o->req = r;
	o->cb = cb;
	io_uring_prep_statx(reactor_sqe_op(r->call->r, &o->op), r->h[0].fd, "",
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT,
			    STATX_BASIC_STATS, &r->stx[slot]);
}

/* A cached descriptor of an object removed since: STALE (RFC 1813 2.6). */
static bool stale_check(struct nfs3_req *r, const struct statx *s)
{
	if (s->stx_nlink == 0) {
		if (r->h[0].obj)
			fs_cache_forget(r->h[0].obj);
		req_fail(r, NFS3ERR_STALE);
		return true;
	}
	return false;
}

static void getattr_done(struct nfs3_req *r, int res)
{
	if (res < 0) {
		req_fail(r, nfs3_errno_to_status(res));
		return;
	}
	if (stale_check(r, &r->stx[0]))
		return;
	fattr_fill(r, &r->stx[0], &r->res.getattr.GETATTR3res_u.resok.obj_attributes);
	r->status = NFS3_OK;
	req_reply(r);
}

static void getattr_fast(struct nfs3_req *r)
{
	submit_statx(r, 0, getattr_done);
}

/* ACCESS (RFC 1813 3.3.4) from the mode bits and the squashed credentials,
 * with the same rules the kernel applies (and the ro export on top). */
static void access_done(struct nfs3_req *r, int res)
{
	const struct statx *s = &r->stx[0];
	uint32_t want = r->access, ok = 0;
	uint32_t m = s->stx_mode, u = s->stx_uid, g = s->stx_gid;

	if (res < 0) {
		req_fail(r, nfs3_errno_to_status(res));
		return;
	}
	if (stale_check(r, s))
		return;
	if (S_ISDIR(m)) {
		if (fs_may(&r->cred, m, u, g, FS_MAY_READ, false))
			ok |= ACCESS3_READ;
		if (fs_may(&r->cred, m, u, g, FS_MAY_EXEC, false))
			ok |= ACCESS3_LOOKUP;
		if (fs_may(&r->cred, m, u, g, FS_MAY_WRITE | FS_MAY_EXEC, false))
			ok |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
	} else {
		if (fs_may(&r->cred, m, u, g, FS_MAY_READ, false))
			ok |= ACCESS3_READ;
		if (fs_may(&r->cred, m, u, g, FS_MAY_WRITE, false))
			ok |= ACCESS3_MODIFY | ACCESS3_EXTEND;
		if (fs_may(&r->cred, m, u, g, FS_MAY_EXEC, false))
			ok |= ACCESS3_EXECUTE;
	}
	if (!r->opts.rw)
		ok &= ~(uint32_t)(ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
	post_attr(r, &r->res.access.ACCESS3res_u.resok.obj_attributes, s, true);
	r->res.access.ACCESS3res_u.resok.access = want & ok;
	r->status = NFS3_OK;
	req_reply(r);
}

static void access_fast(struct nfs3_req *r)
{
	submit_statx(r, 0, access_done);
}

/* READ (RFC 1813 3.3.6): the read and a statx go out together; the reply is
 * built when both are back.  Permission is checked on those attributes
 * before any byte is returned. */
static void read_finish(struct nfs3_req *r)
{
	const struct statx *s = &r->stx[0];
	READ3resok *ok = &r->res.read.READ3res_u.resok;
	int n = r->io_res;

	if (r->stx_err) {
		req_fail(r, nfs3_errno_to_status(r->stx_err));
		return;
	}
	if (stale_check(r, s))
		return;
	if (!fs_may(&r->cred, s->stx_mode, s->stx_uid, s->stx_gid, FS_MAY_READ, true) &&
	    !fs_may(&r->cred, s->stx_mode, s->stx_uid, s->stx_gid, FS_MAY_EXEC, true)) {
		memset(&r->res, 0, sizeof(r->res));
		post_attr(r, &r->res.read.READ3res_u.resfail.file_attributes, s, true);
		r->status = NFS3ERR_ACCES;
		req_reply(r);
		return;
	}
	if (n < 0) {
		memset(&r->res, 0, sizeof(r->res));
		post_attr(r, &r->res.read.READ3res_u.resfail.file_attributes, s, true);
		r->status = nfs3_errno_to_status(n);
		req_reply(r);
		return;
	}
	post_attr(r, &ok->file_attributes, s, true);
	ok->count = (uint32_t)n;
	ok->eof = r->offset + (uint64_t)n >= s->stx_size;
	r->status = NFS3_OK;
	req_reply(r);
}

static void read_io_done(struct nfs3_req *r, int res)
{
	r->io_res = res;
	if (--r->pending == 0)
		read_finish(r);
}

static void read_stx_done(struct nfs3_req *r, int res)
{
	if (res < 0)
		r->stx_err = res;
	if (--r->pending == 0)
		read_finish(r);
}

static void read_fast(struct nfs3_req *r)
{
	struct req_op *o = &r->ops[1];
	uint32_t count = r->count;

	if (r->h[0].type == S_IFDIR) {
		req_fail(r, NFS3ERR_ISDIR);
		return;
	}
	if (r->h[0].type != S_IFREG) {
		req_fail(r, NFS3ERR_INVAL);
		return;
	}
	if (count > NFS3_RTMAX)
		count = NFS3_RTMAX;     /* RFC 1813 3.3.6: the server may return less */
	if (r->offset >= (uint64_t)INT64_MAX)
		count = 0;              /* io_uring reads offset -1 as "current position" */
	else if (r->offset + count > (uint64_t)INT64_MAX)
		count = (uint32_t)((uint64_t)INT64_MAX - r->offset);
	r->io_res = 0;
	r->pending = count ? 2 : 1;
	if (count) {
		r->payload = malloc(count);
		if (!r->payload) {
			req_fail(r, NFS3ERR_JUKEBOX);
			return;
		}
		o->op.fn = op_complete;
		o->req = r;
		o->cb = read_io_done;
		io_uring_prep_read(reactor_sqe_op(r->call->r, &o->op), r->h[0].fd, r->payload,
				   count, r->offset);
	}
	submit_statx(r, 0, read_stx_done);
}

/* WRITE (RFC 1813 3.3.7): statx (pre-op attributes, permission) -> write
 * with RWF_DSYNC / RWF_SYNC for DATA_SYNC / FILE_SYNC -> statx (post-op). */
static void write_post_done(struct nfs3_req *r, int res)
{
	WRITE3resok *ok = &r->res.write.WRITE3res_u.resok;

	wcc_fill(r, &ok->file_wcc, &r->stx[0], true, &r->stx[1], res == 0);
	ok->count = r->done_bytes;
	/* "committed" is the truth: what we made durable (or what an async
	 * export - documented as unsafe - claims). */
	ok->committed = r->stable;
	nfs3_write_verf((uint8_t *)ok->verf);
	r->status = NFS3_OK;
	req_reply(r);
}

static void write_submit(struct nfs3_req *r);

static void write_io_done(struct nfs3_req *r, int res)
{
	if (res < 0) {
		WRITE3resfail *f = &r->res.write.WRITE3res_u.resfail;
		if (r->stable != UNSTABLE && r->opts.sync && res == -EIO)
			nfs3_write_verf_bump();
		memset(&r->res, 0, sizeof(r->res));
		pre_attr(&f->file_wcc.before, &r->stx[0], true);
		r->status = nfs3_errno_to_status(res);
		req_reply(r);
		return;
	}
	r->done_bytes += (uint32_t)res;
	if (res > 0 && r->done_bytes < r->count) {
		write_submit(r);        /* short write: the rest */
		return;
	}
	submit_statx(r, 1, write_post_done);
}

static void write_submit(struct nfs3_req *r)
{
	struct req_op *o = &r->ops[1];
	struct io_uring_sqe *sqe;

	o->op.fn = op_complete;
	o->req = r;
	o->cb = write_io_done;
	sqe = reactor_sqe_op(r->call->r, &o->op);
	io_uring_prep_write(sqe, r->h[0].fd, r->data + r->done_bytes, r->count - r->done_bytes,
			    r->offset + r->done_bytes);
	if (r->opts.sync)
		sqe->rw_flags = r->stable == FILE_SYNC ? RWF_SYNC :
				r->stable == DATA_SYNC ? RWF_DSYNC : 0;
}

static void write_pre_done(struct nfs3_req *r, int res)
{
	const struct statx *s = &r->stx[0];

	if (res < 0) {
		req_fail(r, nfs3_errno_to_status(res));
		return;
	}
	if (stale_check(r, s))
		return;
	if (!fs_may(&r->cred, s->stx_mode, s->stx_uid, s->stx_gid, FS_MAY_WRITE, true)) {
		memset(&r->res, 0, sizeof(r->res));
		wcc_fill(r, &r->res.write.WRITE3res_u.resfail.file_wcc, s, true, s, true);
		r->status = NFS3ERR_ACCES;
		req_reply(r);
		return;
	}
	if (r->count == 0) {
		submit_statx(r, 1, write_post_done);
		return;
	}
	write_submit(r);
}

static void write_fast(struct nfs3_req *r)
{
	if (r->h[0].type == S_IFDIR) {
		req_fail(r, NFS3ERR_ISDIR);
		return;
	}
	if (r->h[0].type != S_IFREG) {
		req_fail(r, NFS3ERR_INVAL);
		return;
	}
	if (!r->h[0].writable) {
		/* reopened read-write and still read-only: a read-only file
		 * system or a running executable */
		req_fail(r, NFS3ERR_ACCES);
		return;
	}
	/* RFC 1813 3.3.7: count is the number of bytes in data. */
	if (r->count > r->datalen) {
		req_fail(r, NFS3ERR_INVAL);
		return;
	}
	if (r->offset > (uint64_t)INT64_MAX || r->offset + r->count > (uint64_t)INT64_MAX) {
		req_fail(r, NFS3ERR_FBIG);
		return;
	}
	if (!r->opts.sync && r->stable != UNSTABLE)
		log_debug("nfs: async export: stable write acknowledged without sync");
	submit_statx(r, 0, write_pre_done);
}

/* COMMIT (RFC 1813 3.3.21): a real fsync of the whole file. */
static void commit_post_done(struct nfs3_req *r, int res)
{
	COMMIT3resok *ok = &r->res.commit.COMMIT3res_u.resok;

	wcc_fill(r, &ok->file_wcc, &r->stx[0], true, &r->stx[1], res == 0);
	nfs3_write_verf((uint8_t *)ok->verf);
	r->status = NFS3_OK;
	req_reply(r);
}

static void commit_sync_done(struct nfs3_req *r, int res)
{
	if (res < 0) {
		COMMIT3resfail *f = &r->res.commit.COMMIT3res_u.resfail;
		/* The data the clients hold as "unstable" may be lost: a new
		 * verifier makes them write it again (RFC 1813 3.3.21). */
		nfs3_write_verf_bump();
		memset(&r->res, 0, sizeof(r->res));
		pre_attr(&f->file_wcc.before, &r->stx[0], true);
		r->status = nfs3_errno_to_status(res);
		req_reply(r);
		return;
	}
	submit_statx(r, 1, commit_post_done);
}

static void commit_pre_done(struct nfs3_req *r, int res)
{
	struct req_op *o = &r->ops[1];

	if (res < 0) {
		req_fail(r, nfs3_errno_to_status(res));
		return;
	}
	if (stale_check(r, &r->stx[0]))
		return;
	if (!r->opts.sync || (r->h[0].type != S_IFREG && r->h[0].type != S_IFDIR)) {
		commit_sync_done(r, 0);
		return;
	}
	o->op.fn = op_complete;
	o->req = r;
	o->cb = commit_sync_done;
	io_uring_prep_fsync(reactor_sqe_op(r->call->r, &o->op), r->h[0].fd, 0);
}

static void commit_fast(struct nfs3_req *r)
{
	submit_statx(r, 0, commit_pre_done);
}

static void fast_begin(struct nfs3_req *r)
{
	struct req_fh *h = &r->h[0];

	if (!r->reopened && (!h->obj || (r->pd->want_write && r->opts.rw && !h->writable))) {
		if (h->obj && !h->writable) {
			/* have it reopened read-write; the job's result replaces
			 * the cached read-only descriptor */
			fs_cache_put(h->obj);
			h->obj = NULL;
			h->fd = -1;
		}
		submit_job(r);
		return;
	}
	if (h->obj) {
		h->fd = h->obj->fd;
		h->type = h->obj->type;
		h->writable = h->obj->writable;
	}
	r->pd->fast(r);
}

/* ---------------------------------------------------- metadata procedures
 * All below run on a pool thread with the caller's credentials. */

static void stat_fd(int fd, struct statx *s, bool *ok)
{
	*ok = fd >= 0 && fs_statx_fd(fd, s) == 0;
}

static bool is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* Export root identity, for ".." and mount point checks. */
static bool root_stat(struct nfs3_req *r, struct statx *s)
{
	return fs_statx_fd(r->exp->root_fd, s) == 0;
}

static void setattr_work(struct nfs3_req *r)
{
	SETATTR3res *res = &r->res.setattr;
	struct statx pre, post;
	bool pre_ok, post_ok;
	struct fs_sattr sa = r->sa;
	int rc = 0;

	stat_fd(r->h[0].fd, &pre, &pre_ok);
	if (r->guard) {
		/* RFC 1813 3.3.2: the guard compares the object's ctime. */
		if (!pre_ok || pre.stx_ctime.tv_sec != (int64_t)(uint32_t)r->guard_ctime.tv_sec ||
		    pre.stx_ctime.tv_nsec != (uint32_t)r->guard_ctime.tv_nsec) {
			r->status = NFS3ERR_NOT_SYNC;
			wcc_fill(r, &res->SETATTR3res_u.resfail.obj_wcc, &pre, pre_ok, &pre, pre_ok);
			return;
		}
	}
	/* The owner may truncate a file whatever its mode (nfsd's owner
	 * override): through our read-write descriptor. */
	if (sa.set_size && pre_ok && r->h[0].type == S_IFREG && r->h[0].writable &&
	    (r->cred.uid == pre.stx_uid || r->cred.uid == 0) && sa.size <= (uint64_t)INT64_MAX) {
		if (ftruncate(r->h[0].fd, (off_t)sa.size) < 0)
			rc = -errno;
		sa.set_size = false;
	}
	if (rc == 0)
		rc = fs_setattr(r->h[0].fd, r->h[0].type, &sa);
	stat_fd(r->h[0].fd, &post, &post_ok);
	r->status = nfs3_errno_to_status(rc);
	wcc_fill(r, &res->SETATTR3res_u.resok.obj_wcc, &pre, pre_ok, &post, post_ok);
}

static void lookup_work(struct nfs3_req *r)
{
	LOOKUP3res *res = &r->res.lookup;
	struct statx dst, cst, rst;
	bool dok, cok;
	int dfd = r->h[0].fd, cfd = -1, rc;
	const char *name = r->name[0];

	stat_fd(dfd, &dst, &dok);
	if (r->h[0].type != S_IFDIR) {
		r->status = NFS3ERR_NOTDIR;
		goto fail;
	}
	if (r->name_err[0]) {
		r->status = r->name_err[0];
		goto fail;
	}
	if (!root_stat(r, &rst)) {
		r->status = NFS3ERR_SERVERFAULT;
		goto fail;
	}
	if (strcmp(name, ".") == 0 ||
	    (strcmp(name, "..") == 0 && dok && dst.stx_ino == rst.stx_ino &&
	     dst.stx_dev_major == rst.stx_dev_major && dst.stx_dev_minor == rst.stx_dev_minor)) {
		/* ".." of the export root is the root itself (like "/.."):
		 * nothing above the export is ever reachable. */
		cfd = openat(dfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	} else if (strcmp(name, "..") == 0) {
		cfd = openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	} else {
		/* O_NOFOLLOW: a symlink is returned as itself; the client
		 * resolves it (RFC 1813 3.3.3). */
		cfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (cfd < 0) {
		r->status = nfs3_errno_to_status(-errno);
		goto fail;
	}
	stat_fd(cfd, &cst, &cok);
	if (!cok) {
		r->status = NFS3ERR_IO;
		goto fail;
	}
	if (cst.stx_dev_major != rst.stx_dev_major || cst.stx_dev_minor != rst.stx_dev_minor) {
		/* A mount point inside the export: we do not cross into another
		 * file system (nfsd's default without crossmnt; its handles
		 * would not decode against this export's root). */
		r->status = NFS3ERR_ACCES;
		goto fail;
	}
	rc = fh_make(r->exp->id, cfd, "", &r->outfh);
	if (rc < 0) {
		r->status = nfs3_errno_to_status(rc == -EOVERFLOW ? -EOPNOTSUPP : rc);
		goto fail;
	}
	r->new_fd = cfd;        /* to the cache, see job_work() */
	r->status = NFS3_OK;
	set_fh3(&res->LOOKUP3res_u.resok.object, &r->outfh);
	post_attr(r, &res->LOOKUP3res_u.resok.obj_attributes, &cst, true);
	post_attr(r, &res->LOOKUP3res_u.resok.dir_attributes, &dst, dok);
	return;
fail:
	if (cfd >= 0)
		close(cfd);
	post_attr(r, &res->LOOKUP3res_u.resfail.dir_attributes, &dst, dok);
}

static void readlink_work(struct nfs3_req *r)
{
	READLINK3res *res = &r->res.readlink;
	struct statx st;
	bool ok;
	ssize_t n;

	stat_fd(r->h[0].fd, &st, &ok);
	if (r->h[0].type != S_IFLNK) {
		r->status = NFS3ERR_INVAL;
		post_attr(r, &res->READLINK3res_u.resfail.symlink_attributes, &st, ok);
		return;
	}
	r->path = malloc(PATH_CAP);
	if (!r->path) {
		r->status = NFS3ERR_JUKEBOX;
		return;
	}
	n = readlinkat(r->h[0].fd, "", r->path, PATH_CAP - 1);
	if (n < 0) {
		r->status = nfs3_errno_to_status(-errno);
		post_attr(r, &res->READLINK3res_u.resfail.symlink_attributes, &st, ok);
		return;
	}
	r->path[n] = '\0';
	r->status = NFS3_OK;
	post_attr(r, &res->READLINK3res_u.resok.symlink_attributes, &st, ok);
	res->READLINK3res_u.resok.data = r->path;
}

/* Common tail of CREATE, MKDIR, SYMLINK and MKNOD (same result shape):
 * handle and attributes of the new object, wcc of the directory. */
static void created(struct nfs3_req *r, int ofd, const struct statx *dpre, bool dpre_ok)
{
	CREATE3res *res = &r->res.create;
	struct statx ost, dpost;
	bool ook, dpost_ok;

	stat_fd(r->h[0].fd, &dpost, &dpost_ok);
	r->status = NFS3_OK;
	if (fh_make(r->exp->id, ofd, "", &r->outfh) == 0) {
		res->CREATE3res_u.resok.obj.handle_follows = 1;
		set_fh3(&res->CREATE3res_u.resok.obj.post_op_fh3_u.handle, &r->outfh);
		r->new_fd = fcntl(ofd, F_DUPFD_CLOEXEC, 0);
	}
	stat_fd(ofd, &ost, &ook);
	post_attr(r, &res->CREATE3res_u.resok.obj_attributes, &ost, ook);
	wcc_fill(r, &res->CREATE3res_u.resok.dir_wcc, dpre, dpre_ok, &dpost, dpost_ok);
}

static void create_failed(struct nfs3_req *r, uint32_t status, const struct statx *dpre,
			  bool dpre_ok)
{
	CREATE3res *res = &r->res.create;
	struct statx dpost;
	bool dpost_ok;

	stat_fd(r->h[0].fd, &dpost, &dpost_ok);
	r->status = status;
	wcc_fill(r, &res->CREATE3res_u.resfail.dir_wcc, dpre, dpre_ok, &dpost, dpost_ok);
}

/* Image leases (core/lease.h, issue 5) on the object a name points at.
 * WRITE/COMMIT/SETATTR(size) are gated in nfs3_dispatch() by the file
 * handle; these procedures name the file by (directory, name) instead, and
 * replacing, truncating, renaming or removing a leased image changes what
 * its holder sees as surely as a WRITE does.  So: the handle of the
 * current target of the name is built and checked like a WRITE's.  No
 * such name (or not a file we can build a handle for) is not leased.
 * Runs in the job (blocking syscalls); the name could change between the
 * check and the operation, which needs a client racing its own rename. */
static bool name_lease_ok(struct nfs3_req *r, int dirfd, const char *name)
{
	struct nfs_fh fh;

	if (!lease_nfs_any_held())
		return true;
	if (fh_make(r->exp->id, dirfd, name, &fh) < 0)
		return true;
	return lease_nfs_write_allowed_sa(r->exp->id, fh.data, fh.len,
					  (const struct sockaddr *)&r->call->peer,
					  r->call->auth.flavor == RPC_AUTH_SYS ? r->call->auth.machine : NULL);
}

/* Checks shared by the procedures that add a name to a directory. */
static uint32_t new_name_check(struct nfs3_req *r, int i)
{
	if (r->h[0].type != S_IFDIR && i == 0)
		return NFS3ERR_NOTDIR;
	if (r->name_err[i])
		return r->name_err[i];
	if (is_dot(r->name[i]))
		return NFS3ERR_EXIST;
	return NFS3_OK;
}

/* EXCLUSIVE create (RFC 1813 3.3.8): the verifier is kept in the new file's
 * atime and mtime seconds (as Linux nfsd does), so that a retransmission
 * finds "its" file and succeeds while anyone else gets EXIST. */
static void excl_times(const uint8_t verf[8], uint32_t *a, uint32_t *m)
{
	uint32_t v[2];

	memcpy(v, verf, 8);
	*m = v[0] & 0x7fffffff;
	*a = v[1] & 0x7fffffff;
}

static void create_work(struct nfs3_req *r)
{
	struct statx dpre, st;
	bool dpre_ok;
	int dfd = r->h[0].fd, fd = -1, rc;
	uint32_t status;
	mode_t mode = r->sa.set_mode ? (r->sa.mode & 07777) : 0644;
	struct fs_sattr sa = r->sa;

	stat_fd(dfd, &dpre, &dpre_ok);
	status = new_name_check(r, 0);
	if (status) {
		create_failed(r, status, &dpre, dpre_ok);
		return;
	}
	if (r->createmode == EXCLUSIVE) {
		uint32_t va, vm;

		excl_times(r->verf, &va, &vm);
		fd = openat(dfd, r->name[0], O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			struct timespec ts[2] = { { va, 0 }, { vm, 0 } };
			if (futimens(fd, ts) < 0) {
				rc = -errno;
				unlinkat(dfd, r->name[0], 0);
				close(fd);
				create_failed(r, nfs3_errno_to_status(rc), &dpre, dpre_ok);
				return;
			}
		} else if (errno == EEXIST) {
			if (fs_statx_at(dfd, r->name[0], &st) == 0 && S_ISREG(st.stx_mode) &&
			    st.stx_atime.tv_sec == va && st.stx_mtime.tv_sec == vm && st.stx_size == 0)
				fd = openat(dfd, r->name[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				create_failed(r, NFS3ERR_EXIST, &dpre, dpre_ok);
				return;
			}
		} else {
			create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
			return;
		}
		created(r, fd, &dpre, dpre_ok);
		close(fd);
		return;
	}

	fd = openat(dfd, r->name[0], O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST && r->createmode == UNCHECKED) {
		/* UNCHECKED on an existing regular file: only the size applies
		 * (what nfsd does; a retransmitted create must not chmod). */
		fd = openat(dfd, r->name[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && (fs_statx_fd(fd, &st) < 0 || !S_ISREG(st.stx_mode))) {
			close(fd);
			create_failed(r, NFS3ERR_EXIST, &dpre, dpre_ok);
			return;
		}
		memset(&sa, 0, sizeof(sa));
		sa.set_size = r->sa.set_size;
		sa.size = r->sa.size;
		if (fd >= 0 && sa.set_size && !name_lease_ok(r, dfd, r->name[0])) {
			/* truncating a leased image is a write (RFC 1813 2.6 ACCES) */
			close(fd);
			create_failed(r, NFS3ERR_ACCES, &dpre, dpre_ok);
			return;
		}
	} else if (fd >= 0) {
		/* umask played on the creation mode: set it exactly; times,
		 * owner and size as asked. */
		sa.set_mode = r->sa.set_mode;
	}
	if (fd < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	rc = fs_setattr(fd, S_IFREG, &sa);
	if (rc < 0) {
		close(fd);
		create_failed(r, nfs3_errno_to_status(rc), &dpre, dpre_ok);
		return;
	}
	created(r, fd, &dpre, dpre_ok);
	close(fd);
}

static void mkdir_work(struct nfs3_req *r)
{
	struct statx dpre;
	bool dpre_ok;
	int dfd = r->h[0].fd, fd, rc;
	uint32_t status;
	struct fs_sattr sa = r->sa;

	stat_fd(dfd, &dpre, &dpre_ok);
	status = new_name_check(r, 0);
	if (status) {
		create_failed(r, status, &dpre, dpre_ok);
		return;
	}
	if (mkdirat(dfd, r->name[0], sa.set_mode ? (sa.mode & 07777) : 0755) < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	fd = openat(dfd, r->name[0], O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	sa.set_size = false;
	rc = fs_setattr(fd, S_IFDIR, &sa);
	if (rc < 0)
		log_debug("nfs: mkdir %s: attributes: %s", r->name[0], strerror(-rc));
	created(r, fd, &dpre, dpre_ok);
	close(fd);
}

static void symlink_work(struct nfs3_req *r)
{
	struct statx dpre;
	bool dpre_ok;
	int dfd = r->h[0].fd, fd;
	uint32_t status;
	struct fs_sattr sa;

	stat_fd(dfd, &dpre, &dpre_ok);
	status = new_name_check(r, 0);
	if (!status)
		status = r->path_err;
	if (status) {
		create_failed(r, status, &dpre, dpre_ok);
		return;
	}
	if (symlinkat(r->path, dfd, r->name[0]) < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	fd = openat(dfd, r->name[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	/* A symlink's mode means nothing on Linux; its owner may be set. */
	memset(&sa, 0, sizeof(sa));
	sa.set_uid = r->sa.set_uid;
	sa.uid = r->sa.uid;
	sa.set_gid = r->sa.set_gid;
	sa.gid = r->sa.gid;
	fs_setattr(fd, S_IFLNK, &sa);
	created(r, fd, &dpre, dpre_ok);
	close(fd);
}

static void mknod_work(struct nfs3_req *r)
{
	struct statx dpre;
	bool dpre_ok;
	int dfd = r->h[0].fd, fd;
	uint32_t status;
	mode_t type;
	dev_t dev = 0;
	struct fs_sattr sa = r->sa;

	stat_fd(dfd, &dpre, &dpre_ok);
	status = new_name_check(r, 0);
	if (status) {
		create_failed(r, status, &dpre, dpre_ok);
		return;
	}
	switch (r->ftype) {
	case NF3CHR:  type = S_IFCHR; dev = makedev(r->spec1, r->spec2); break;
	case NF3BLK:  type = S_IFBLK; dev = makedev(r->spec1, r->spec2); break;
	case NF3SOCK: type = S_IFSOCK; break;
	case NF3FIFO: type = S_IFIFO; break;
	default:
		create_failed(r, NFS3ERR_BADTYPE, &dpre, dpre_ok);
		return;
	}
	if (mknodat(dfd, r->name[0], type | (sa.set_mode ? (sa.mode & 07777) : 0644), dev) < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	fd = openat(dfd, r->name[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		create_failed(r, nfs3_errno_to_status(-errno), &dpre, dpre_ok);
		return;
	}
	sa.set_size = false;
	fs_setattr(fd, type, &sa);
	created(r, fd, &dpre, dpre_ok);
	close(fd);
}

/* REMOVE and RMDIR: same result shape (wcc of the directory). */
static void unlink_common(struct nfs3_req *r, int flags)
{
	REMOVE3res *res = &r->res.remove;
	struct statx pre, post;
	bool pre_ok, post_ok;
	int rc = 0;

	stat_fd(r->h[0].fd, &pre, &pre_ok);
	if (r->h[0].type != S_IFDIR)
		rc = -ENOTDIR;
	else if (r->name_err[0])
		r->status = r->name_err[0];
	else if (is_dot(r->name[0]))
		rc = (flags && strcmp(r->name[0], "..") == 0) ? -ENOTEMPTY : -EINVAL;
	else if (!flags && !name_lease_ok(r, r->h[0].fd, r->name[0]))
		r->status = NFS3ERR_ACCES;      /* removing a leased image */
	else if (unlinkat(r->h[0].fd, r->name[0], flags) < 0)
		rc = -errno;
	if (rc)
		r->status = nfs3_errno_to_status(rc);
	stat_fd(r->h[0].fd, &post, &post_ok);
	wcc_fill(r, &res->REMOVE3res_u.resok.dir_wcc, &pre, pre_ok, &post, post_ok);
}

static void remove_work(struct nfs3_req *r)
{
	unlink_common(r, 0);
}

static void rmdir_work(struct nfs3_req *r)
{
	unlink_common(r, AT_REMOVEDIR);
}

static void rename_work(struct nfs3_req *r)
{
	RENAME3res *res = &r->res.rename;
	struct statx fpre, fpost, tpre, tpost;
	bool fpre_ok, fpost_ok, tpre_ok, tpost_ok;
	int rc = 0;

	stat_fd(r->h[0].fd, &fpre, &fpre_ok);
	stat_fd(r->h[1].fd, &tpre, &tpre_ok);
	if (r->h[0].type != S_IFDIR || r->h[1].type != S_IFDIR)
		rc = -ENOTDIR;
	else if (r->name_err[0])
		r->status = r->name_err[0];
	else if (r->name_err[1])
		r->status = r->name_err[1];
	else if (is_dot(r->name[0]) || is_dot(r->name[1]))
		rc = -EINVAL;
	else if (!name_lease_ok(r, r->h[0].fd, r->name[0]) ||
		 !name_lease_ok(r, r->h[1].fd, r->name[1]))
		r->status = NFS3ERR_ACCES;      /* moving a leased image, or replacing it */
	else if (renameat(r->h[0].fd, r->name[0], r->h[1].fd, r->name[1]) < 0)
		rc = -errno;
	if (rc)
		r->status = nfs3_errno_to_status(rc);
	stat_fd(r->h[0].fd, &fpost, &fpost_ok);
	stat_fd(r->h[1].fd, &tpost, &tpost_ok);
	wcc_fill(r, &res->RENAME3res_u.resok.fromdir_wcc, &fpre, fpre_ok, &fpost, fpost_ok);
	wcc_fill(r, &res->RENAME3res_u.resok.todir_wcc, &tpre, tpre_ok, &tpost, tpost_ok);
}

static void link_work(struct nfs3_req *r)
{
	LINK3res *res = &r->res.link;
	struct statx fst, dpre, dpost;
	bool fok, dpre_ok, dpost_ok;
	char path[64];
	int rc = 0;

	stat_fd(r->h[1].fd, &dpre, &dpre_ok);
	if (r->h[1].type != S_IFDIR)
		rc = -ENOTDIR;
	else if (r->h[0].type == S_IFDIR)
		rc = -EISDIR;
	else if (r->name_err[1])
		r->status = r->name_err[1];
	else if (is_dot(r->name[1]))
		rc = -EEXIST;
	else {
		/* linkat through the magic link: works for any descriptor kind
		 * and, unlike AT_EMPTY_PATH, needs no capability. */
		fs_fd_path(r->h[0].fd, path, sizeof(path));
		if (linkat(AT_FDCWD, path, r->h[1].fd, r->name[1], AT_SYMLINK_FOLLOW) < 0)
			rc = -errno;
	}
	if (rc)
		r->status = nfs3_errno_to_status(rc);
	stat_fd(r->h[0].fd, &fst, &fok);
	stat_fd(r->h[1].fd, &dpost, &dpost_ok);
	post_attr(r, &res->LINK3res_u.resok.file_attributes, &fst, fok);
	wcc_fill(r, &res->LINK3res_u.resok.linkdir_wcc, &dpre, dpre_ok, &dpost, dpost_ok);
}

/* READDIR / READDIRPLUS (RFC 1813 3.3.16, 3.3.17).
 *
 * Cookies are the directory's own d_off values (what telldir would give),
 * so a listing resumes exactly where it stopped, across daemon restarts
 * too.  On the file systems this runs on (ext4/xfs/btrfs hash or index
 * offsets, tmpfs stable offsets) those cookies stay valid while the
 * directory changes, so the cookie verifier identifies the directory (its
 * inode and export) rather than its mtime: a mismatch means the cookie was
 * not ours (BAD_COOKIE) and a concurrent create does not abort a listing
 * (the Linux client ends a listing silently on BAD_COOKIE). */
static void dir_verf(const struct nfs3_req *r, const struct statx *d, uint8_t out[8])
{
	uint64_t v = d->stx_ino * 0x9e3779b97f4a7c15ull ^ ((uint64_t)r->exp->id << 17) ^
		     0x52494e4753544f52ull;

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
}

struct rd_ctx {
	struct nfs3_req *r;
	bool plus;
	struct xdr_enc e;
	size_t limit;           /* bytes for entries (maxcount minus the rest) */
	uint64_t dirbytes, dirmax;
	int n;
	struct statx root, dir;
	bool at_root;
	bool toosmall;
};

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static int rd_entry(void *arg, const struct fs_dirent *d)
{
	struct rd_ctx *c = arg;
	struct nfs3_req *r = c->r;
	size_t nlen = strlen(d->name);
	size_t dsize = 8 + 4 + pad4(nlen) + 8;  /* fileid, name, cookie */
	size_t size = 4 + dsize;                /* value_follows */
	uint64_t fileid = d->ino;
	post_op_attr pa;
	struct nfs_fh fh;
	bool have_fh = false;
	struct statx st;

	memset(&pa, 0, sizeof(pa));
	if (strcmp(d->name, "..") == 0 && c->at_root)
		fileid = c->dir.stx_ino;        /* ".." of the root is the root */
	if (c->plus) {
		if (strcmp(d->name, "..") == 0) {
			/* no attributes or handle: the client LOOKUPs ".." */
		} else if (strcmp(d->name, ".") == 0) {
			post_attr(r, &pa, &c->dir, true);
			have_fh = fh_make(r->exp->id, r->h[0].fd, "", &fh) == 0;
		} else if (fs_statx_at(r->h[0].fd, d->name, &st) == 0 &&
			   st.stx_dev_major == c->root.stx_dev_major &&
			   st.stx_dev_minor == c->root.stx_dev_minor) {
			post_attr(r, &pa, &st, true);
			have_fh = fh_make(r->exp->id, r->h[0].fd, d->name, &fh) == 0;
		}
		size += 4 + (pa.attributes_follow ? 84 : 0) + 4 + (have_fh ? 4 + pad4(fh.len) : 0);
	}
	if (xdr_enc_len(&c->e) + size > c->limit || c->dirbytes + dsize > c->dirmax) {
		if (c->n == 0)
			c->toosmall = true;
		return 1;
	}
	c->dirbytes += dsize;
	xdr_put_u32(&c->e, 1);
	xdr_put_u64(&c->e, fileid);
	xdr_put_opaque(&c->e, d->name, (uint32_t)nlen);
	xdr_put_u64(&c->e, d->next);
	if (c->plus) {
		enc_post_op_attr(&c->e, &pa);
		xdr_put_u32(&c->e, have_fh);
		if (have_fh)
			xdr_put_opaque(&c->e, fh.data, fh.len);
	}
	c->n++;
	return 0;
}

static void readdir_work(struct nfs3_req *r)
{
	struct rd_ctx c;
	bool eof = false;
	size_t cap;
	int rc;

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.plus = r->proc == P_READDIRPLUS;
	stat_fd(r->h[0].fd, &r->dir_stx, &r->dir_attr_ok);
	if (r->h[0].type != S_IFDIR) {
		r->status = NFS3ERR_NOTDIR;
		return;
	}
	if (!r->dir_attr_ok || !root_stat(r, &c.root)) {
		r->status = NFS3ERR_IO;
		return;
	}
	c.dir = r->dir_stx;
	c.at_root = c.dir.stx_ino == c.root.stx_ino &&
		    c.dir.stx_dev_major == c.root.stx_dev_major &&
		    c.dir.stx_dev_minor == c.root.stx_dev_minor;
	dir_verf(r, &c.dir, r->cookieverf);
	/* RFC 1813 3.3.16: a cookie with a verifier that is not the current
	 * one is refused (a zero verifier is what a client sends before it has
	 * seen one). */
	if (r->cookie != 0 && memcmp(r->verf, "\0\0\0\0\0\0\0\0", 8) != 0 &&
	    memcmp(r->verf, r->cookieverf, 8) != 0) {
		r->status = NFS3ERR_BAD_COOKIE;
		return;
	}
	/* maxcount/count bound the whole resok (header + entries + the
	 * list end and eof words); we also stop at 1 MiB. */
	cap = r->maxcount > NFS3_RTMAX ? NFS3_RTMAX : r->maxcount;
	if (cap < DIR_HDR + 8 + 24) {
		r->status = NFS3ERR_TOOSMALL;
		return;
	}
	c.limit = cap - DIR_HDR - 8;
	c.dirmax = c.plus ? (r->dircount ? r->dircount : cap) : UINT64_MAX;
	r->payload = malloc(c.limit + 8);
	if (!r->payload) {
		r->status = NFS3ERR_JUKEBOX;
		return;
	}
	xdr_enc_init(&c.e, r->payload, c.limit + 8);
	/* A linux_dirent64 record (24 bytes + name) is about the size of a
	 * READDIR entry, and a quarter of a READDIRPLUS one (attributes and a
	 * handle); dircount bounds the latter too. */
	rc = fs_readdir(r->h[0].fd, r->cookie,
			!c.plus ? c.limit : (size_t)(c.dirmax < c.limit / 4 ? c.dirmax : c.limit / 4),
			rd_entry, &c, &eof);
	if (rc < 0) {
		r->status = rc == -EINVAL || rc == -ENOENT ? NFS3ERR_BAD_COOKIE :
			    nfs3_errno_to_status(rc);
		return;
	}
	if (c.toosmall) {
		r->status = NFS3ERR_TOOSMALL;
		return;
	}
	xdr_put_u32(&c.e, 0);           /* no more entries */
	xdr_put_u32(&c.e, eof);
	if (c.e.err) {
		r->status = NFS3ERR_SERVERFAULT;
		return;
	}
	r->payload_len = xdr_enc_len(&c.e);
	r->status = NFS3_OK;
}

static void fsstat_work(struct nfs3_req *r)
{
	FSSTAT3res *res = &r->res.fsstat;
	FSSTAT3resok *ok = &res->FSSTAT3res_u.resok;
	struct statvfs sv;
	struct statx st;
	bool sok;

	stat_fd(r->h[0].fd, &st, &sok);
	if (fstatvfs(r->h[0].fd, &sv) < 0) {
		r->status = nfs3_errno_to_status(-errno);
		post_attr(r, &res->FSSTAT3res_u.resfail.obj_attributes, &st, sok);
		return;
	}
	post_attr(r, &ok->obj_attributes, &st, sok);
	ok->tbytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	ok->fbytes = (uint64_t)sv.f_bfree * sv.f_frsize;
	ok->abytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	ok->tfiles = sv.f_files;
	ok->ffiles = sv.f_ffree;
	ok->afiles = sv.f_favail;
	ok->invarsec = 0;
	r->status = NFS3_OK;
}

/* FSINFO (RFC 1813 3.3.19): 1 MiB transfers (our record limit allows a
 * 1 MiB WRITE plus its header), 1 ns times, links and symlinks. */
static void fsinfo_work(struct nfs3_req *r)
{
	FSINFO3resok *ok = &r->res.fsinfo.FSINFO3res_u.resok;
	struct statx st;
	bool sok;

	stat_fd(r->h[0].fd, &st, &sok);
	post_attr(r, &ok->obj_attributes, &st, sok);
	ok->rtmax = NFS3_RTMAX;
	ok->rtpref = NFS3_RTMAX;
	ok->rtmult = 4096;
	ok->wtmax = NFS3_WTMAX;
	ok->wtpref = NFS3_WTMAX;
	ok->wtmult = 4096;
	ok->dtpref = NFS3_DTPREF;
	ok->maxfilesize = (uint64_t)INT64_MAX;
	ok->time_delta.seconds = 0;
	ok->time_delta.nseconds = 1;
	ok->properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
	r->status = NFS3_OK;
}

static void pathconf_work(struct nfs3_req *r)
{
	PATHCONF3resok *ok = &r->res.pathconf.PATHCONF3res_u.resok;
	struct statx st;
	bool sok;
	long lm;

	stat_fd(r->h[0].fd, &st, &sok);
	post_attr(r, &ok->obj_attributes, &st, sok);
	errno = 0;
	lm = fpathconf(r->h[0].fd, _PC_LINK_MAX);
	ok->linkmax = lm > 0 && lm < UINT32_MAX ? (u_int)lm : 32000;
	ok->name_max = NAME_MAX;
	ok->no_trunc = 1;
	ok->chown_restricted = 1;
	ok->case_insensitive = 0;
	ok->case_preserving = 1;
	r->status = NFS3_OK;
}

/* ------------------------------------------------------------- dispatch */

static const struct proc_desc procs[P_COUNT] = {
	[P_NULL]        = { "NULL", NULL, NULL, NULL, false, false },
	[P_GETATTR]     = { "GETATTR", dec_fh_only, NULL, getattr_fast, false, false },
	[P_SETATTR]     = { "SETATTR", dec_setattr, setattr_work, NULL, true, true },
	[P_LOOKUP]      = { "LOOKUP", dec_lookup, lookup_work, NULL, false, false },
	[P_ACCESS]      = { "ACCESS", dec_access, NULL, access_fast, false, false },
	[P_READLINK]    = { "READLINK", dec_fh_only, readlink_work, NULL, false, false },
	[P_READ]        = { "READ", dec_read, NULL, read_fast, false, false },
	[P_WRITE]       = { "WRITE", dec_write, NULL, write_fast, true, true },
	[P_CREATE]      = { "CREATE", dec_create, create_work, NULL, true, false },
	[P_MKDIR]       = { "MKDIR", dec_mkdir, mkdir_work, NULL, true, false },
	[P_SYMLINK]     = { "SYMLINK", dec_symlink, symlink_work, NULL, true, false },
	[P_MKNOD]       = { "MKNOD", dec_mknod, mknod_work, NULL, true, false },
	[P_REMOVE]      = { "REMOVE", dec_lookup, remove_work, NULL, true, false },
	[P_RMDIR]       = { "RMDIR", dec_lookup, rmdir_work, NULL, true, false },
	[P_RENAME]      = { "RENAME", dec_rename, rename_work, NULL, true, false },
	[P_LINK]        = { "LINK", dec_link, link_work, NULL, true, false },
	[P_READDIR]     = { "READDIR", dec_readdir, readdir_work, NULL, false, false },
	[P_READDIRPLUS] = { "READDIRPLUS", dec_readdirplus, readdir_work, NULL, false, false },
	[P_FSSTAT]      = { "FSSTAT", dec_fh_only, fsstat_work, NULL, false, false },
	[P_FSINFO]      = { "FSINFO", dec_fh_only, fsinfo_work, NULL, false, false },
	[P_PATHCONF]    = { "PATHCONF", dec_fh_only, pathconf_work, NULL, false, false },
	[P_COMMIT]      = { "COMMIT", dec_commit, NULL, commit_fast, false, false },
};

static uint16_t peer_port(const struct rpc_call *call)
{
	if (call->peer.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&call->peer)->sin_port);
	if (call->peer.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&call->peer)->sin6_port);
	return 0;
}

/* Credentials after exports(5) squashing (nfs_export_squash, exports.c). */
static void squash(const struct rpc_auth *in, const struct export_options *o, struct nfs_cred *c)
{
	struct rpc_auth a = *in;

	nfs_export_squash(o, &a);
	memset(c, 0, sizeof(*c));
	c->uid = a.uid;
	c->gid = a.gid;
	c->ngids = a.ngids > RPC_MAX_GIDS ? RPC_MAX_GIDS : a.ngids;
	memcpy(c->gids, a.gids, c->ngids * sizeof(c->gids[0]));
}

/* Handles, export, client match, port rule, credentials.  nfsstat3. */
static uint32_t resolve(struct nfs3_req *r)
{
	const struct export_client *cl;
	uint32_t eid = 0;

	for (int i = 0; i < r->nfh; i++) {
		struct req_fh *h = &r->h[i];
		uint32_t id;

		h->obj = fs_cache_get(h->data, h->len);
		if (h->obj) {
			/* identical bytes were verified when the entry was made */
			id = h->obj->export_id;
			h->fd = h->obj->fd;
			h->type = h->obj->type;
			h->writable = h->obj->writable;
		} else if (fh_verify(h->data, h->len, &id) < 0) {
			return NFS3ERR_BADHANDLE;
		}
		if (i == 0)
			eid = id;
		else if (id != eid)
			return NFS3ERR_XDEV;    /* RFC 1813 3.3.14/3.3.15: across exports */
	}
	r->exp = nfs_export_get_by_id(eid);
	if (!r->exp)
		return NFS3ERR_STALE;           /* the export is gone */
	cl = nfs_export_match(r->exp, (const struct sockaddr *)&r->call->peer, NULL);
	if (!cl)
		return NFS3ERR_ACCES;
	r->opts = cl->opts;
	/* exports(5) "secure": requests must come from a port below 1024;
	 * nfsd answers NFSERR_PERM otherwise. */
	if (r->opts.secure && peer_port(r->call) >= 1024)
		return NFS3ERR_PERM;
	/* AUTH_NONE only where the export lists sec=none (RFC 2623 2.3.2:
	 * a flavor the export does not accept is AUTH_TOOWEAK). */
	if (r->call->auth.flavor != RPC_AUTH_SYS && !r->opts.auth_none)
		return AUTH_TOOWEAK_STATUS;
	squash(&r->call->auth, &r->opts, &r->cred);
	return NFS3_OK;
}

/* LOOKUP right on the reactor when it cannot block (RFC 1813 3.3.3): the
 * directory is cached, the caller may search it by its mode bits, and
 * openat2(RESOLVE_CACHED) finds the name in the dentry cache (it returns
 * EAGAIN instead of doing I/O).  Anything else - "." and "..", a miss, a
 * mount point (RESOLVE_NO_XDEV), a search permission that only an ACL could
 * grant - goes to the workpool as before.  true = answered. */
static bool lookup_inline(struct nfs3_req *r)
{
	LOOKUP3res *res = &r->res.lookup;
	struct open_how how;
	struct statx dst, cst;
	int dfd = r->h[0].fd, cfd, fd;
	uint32_t type;
	bool writable;

	if (!r->h[0].obj || r->h[0].type != S_IFDIR || r->name_err[0] || is_dot(r->name[0]))
		return false;
	if (fs_statx_fd(dfd, &dst) < 0 || dst.stx_nlink == 0 ||
	    !fs_may(&r->cred, dst.stx_mode, dst.stx_uid, dst.stx_gid, FS_MAY_EXEC, false))
		return false;
	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_CACHED | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	cfd = (int)syscall(SYS_openat2, dfd, r->name[0], &how, sizeof(how));
	if (cfd < 0) {
		if (errno != ENOENT)
			return false;
		/* a negative dentry: the name does not exist */
		r->status = NFS3ERR_NOENT;
		post_attr(r, &res->LOOKUP3res_u.resfail.dir_attributes, &dst, true);
		req_reply(r);
		return true;
	}
	if (fs_statx_fd(cfd, &cst) < 0 || fh_make(r->exp->id, cfd, "", &r->outfh) < 0) {
		close(cfd);
		return false;
	}
	r->status = NFS3_OK;
	set_fh3(&res->LOOKUP3res_u.resok.object, &r->outfh);
	post_attr(r, &res->LOOKUP3res_u.resok.obj_attributes, &cst, true);
	post_attr(r, &res->LOOKUP3res_u.resok.dir_attributes, &dst, true);
	/* what the client touches next: into the cache (see job_work()) */
	if (fs_reopen_typed(cfd, r->opts.rw, &fd, &type, &writable) == 0)
		fs_cache_put(fs_cache_add(r->outfh.data, r->outfh.len, r->exp->id, fd, type, writable));
	close(cfd);
	req_reply(r);
	return true;
}

static void nfs3_dispatch(struct rpc_call *call)
{
	struct nfs3_req *r;
	struct xdr_dec d;
	uint32_t st;

	if (call->proc == P_NULL) {
		/* RFC 1813 3.3.0: void in, void out */
		if (!rpc_reply_buf(call, 8))
			rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		else
			rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
		return;
	}
	if (call->proc >= P_COUNT) {
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	r->t0_ns = stats_now_ns();
	r->call = call;
	r->proc = call->proc;
	r->pd = &procs[call->proc];
	r->h[0].fd = r->h[1].fd = -1;
	r->new_fd = -1;
	xdr_dec_init(&d, call->args, call->args_len);
	if (!r->pd->decode(r, &d) || d.err) {
		free(r->path);
		free(r);
		rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
		return;
	}
	st = resolve(r);
	if (st == AUTH_TOOWEAK_STATUS) {
		req_free(r);
		rpc_reply_auth_error(call, RPC_AUTH_TOOWEAK);
		return;
	}
	if (st == NFS3_OK && r->pd->modifies && !r->opts.rw)
		st = NFS3ERR_ROFS;
	/* Image leases (core/lease.h, issue 5): only the holder may change a
	 * leased file's data or size (RFC 1813 2.6: NFS3ERR_ACCES). */
	if (st == NFS3_OK && (r->proc == P_WRITE || r->proc == P_COMMIT ||
			      (r->proc == P_SETATTR && r->sa.set_size)) &&
	    !lease_nfs_write_allowed_sa(r->exp->id, r->h[0].data, r->h[0].len,
					(const struct sockaddr *)&r->call->peer,
					r->call->auth.flavor == RPC_AUTH_SYS ? r->call->auth.machine : NULL))
		st = NFS3ERR_ACCES;
	if (st != NFS3_OK) {
		req_fail(r, st);
		return;
	}
	if (r->pd->fast)
		fast_begin(r);
	else if (!(r->proc == P_LOOKUP && lookup_inline(r)))
		submit_job(r);
}

void nfs3_reactor_fini(void)
{
	fs_cache_flush();
}

const struct rpc_program nfs3_program = {
	.prog = NFS3_PROGRAM,
	.vers_lo = NFS3_VERSION,
	.vers_hi = NFS3_VERSION,
	.name = "nfs",
	.dispatch = nfs3_dispatch,
	/* RFC 1813 does not make these idempotent: a retransmitted REMOVE
	 * must get the first reply, not NOENT (duplicate request cache). */
	.non_idempotent_procs = 1u << P_SETATTR | 1u << P_CREATE | 1u << P_MKDIR |
				1u << P_SYMLINK | 1u << P_MKNOD | 1u << P_REMOVE |
				1u << P_RMDIR | 1u << P_RENAME | 1u << P_LINK,
};
