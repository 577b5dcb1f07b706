/* fsops.c - see fsops.h. */
#include "fsops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/log.h"

/* ------------------------------------------------------------ credentials */

/* glibc's setgroups() changes every thread of the process (POSIX); the raw
 * system call changes only the calling thread, which is what a pool thread
 * serving one NFS caller needs.  setfsuid/setfsgid are per thread anyway; a
 * switch of fsuid away from 0 drops CAP_DAC_OVERRIDE & co. from this
 * thread's effective set, and the switch back restores them. */
int fs_cred_enter(const struct nfs_cred *c)
{
	gid_t groups[RPC_MAX_GIDS];
	uint32_t n = c->ngids > RPC_MAX_GIDS ? RPC_MAX_GIDS : c->ngids;

	for (uint32_t i = 0; i < n; i++)
		groups[i] = c->gids[i];
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
		return -errno;
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	/* setfsuid reports the previous value, never an error: read back. */
	if ((uint32_t)syscall(SYS_setfsuid, -1) != c->uid ||
	    (uint32_t)syscall(SYS_setfsgid, -1) != c->gid) {
		fs_cred_leave();
		return -EPERM;
	}
	return 0;
}

void fs_cred_leave(void)
{
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	syscall(SYS_setgroups, (size_t)0, NULL);
}

static bool in_group(const struct nfs_cred *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	for (uint32_t i = 0; i < c->ngids && i < RPC_MAX_GIDS; i++)
		if (c->gids[i] == gid)
			return true;
	return false;
}

bool fs_may(const struct nfs_cred *c, uint32_t mode, uint32_t uid, uint32_t gid, int may,
	    bool owner_override)
{
	uint32_t bits;

	if (c->uid == 0) {
		if ((may & FS_MAY_EXEC) && !S_ISDIR(mode) && !(mode & 0111))
			return false;
		return true;
	}
	if (owner_override && c->uid == uid)
		return true;
	if (c->uid == uid)
		bits = (mode >> 6) & 7;
	else if (in_group(c, gid))
		bits = (mode >> 3) & 7;
	else
		bits = mode & 7;
	return ((uint32_t)may & bits) == (uint32_t)may;
}

/* ---------------------------------------------------- per-reactor fd cache */

#define FS_HASH_SIZE 512

struct fs_cache {
	struct fs_obj *hash[FS_HASH_SIZE];
	struct fs_obj lru;      /* sentinel */
	int count;
};

static __thread struct fs_cache *tls_cache;

static struct fs_cache *cache_self(void)
{
	if (!tls_cache) {
		tls_cache = calloc(1, sizeof(*tls_cache));
		if (!tls_cache)
			return NULL;
		tls_cache->lru.next = tls_cache->lru.prev = &tls_cache->lru;
	}
	return tls_cache;
}

static uint32_t key_hash(const uint8_t *k, size_t len)
{
	uint32_t h = 2166136261u;       /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static void lru_unlink(struct fs_obj *o)
{
	o->prev->next = o->next;
	o->next->prev = o->prev;
	o->prev = o->next = o;
}

static void lru_push(struct fs_cache *c, struct fs_obj *o)
{
	o->next = c->lru.next;
	o->prev = &c->lru;
	c->lru.next->prev = o;
	c->lru.next = o;
}

static void unhash(struct fs_cache *c, struct fs_obj *o)
{
	struct fs_obj **pp = &c->hash[o->hash % FS_HASH_SIZE];

	while (*pp && *pp != o)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = o->hnext;
	o->hnext = NULL;
	o->hashed = false;
	lru_unlink(o);
	c->count--;
}

void fs_cache_put(struct fs_obj *o)
{
	if (!o || --o->refs > 0)
		return;
	if (o->fd >= 0)
		close(o->fd);
	free(o);
}

void fs_cache_forget(struct fs_obj *o)
{
	struct fs_cache *c = tls_cache;

	if (!c || !o || !o->hashed)
		return;
	unhash(c, o);
	fs_cache_put(o);
}

struct fs_obj *fs_cache_get(const uint8_t *fh, size_t len)
{
	struct fs_cache *c = tls_cache;
	uint32_t h;

	if (!c || len == 0 || len > NFS_FH_MAX)
		return NULL;
	h = key_hash(fh, len);
	for (struct fs_obj *o = c->hash[h % FS_HASH_SIZE]; o; o = o->hnext) {
		if (o->hash == h && o->keylen == len && memcmp(o->key, fh, len) == 0) {
			lru_unlink(o);
			lru_push(c, o);
			o->refs++;
			return o;
		}
	}
	return NULL;
}

struct fs_obj *fs_cache_add(const uint8_t *fh, size_t len, uint32_t export_id, int fd,
			    uint32_t type, bool writable)
{
	struct fs_cache *c = cache_self();
	struct fs_obj *o, *old;

	if (!c || len == 0 || len > NFS_FH_MAX || !(o = calloc(1, sizeof(*o)))) {
		close(fd);
		return NULL;
	}
	old = fs_cache_get(fh, len);
	if (old) {
		/* Another job opened the same object meanwhile; keep the one
		 * that can write if either can. */
		if (old->writable || !writable) {
			free(o);
			close(fd);
			return old;
		}
		fs_cache_forget(old);
		fs_cache_put(old);
	}
	o->hash = key_hash(fh, len);
	o->keylen = (uint8_t)len;
	memcpy(o->key, fh, len);
	o->export_id = export_id;
	o->fd = fd;
	o->type = type;
	o->writable = writable;
	o->hashed = true;
	o->refs = 2;            /* the cache's and the caller's */
	o->hnext = c->hash[o->hash % FS_HASH_SIZE];
	c->hash[o->hash % FS_HASH_SIZE] = o;
	lru_push(c, o);
	c->count++;
	while (c->count > FS_CACHE_MAX && c->lru.prev != &c->lru)
		fs_cache_forget(c->lru.prev);
	return o;
}

void fs_cache_flush(void)
{
	struct fs_cache *c = tls_cache;

	if (!c)
		return;
	while (c->lru.next != &c->lru)
		fs_cache_forget(c->lru.next);
	free(c);
	tls_cache = NULL;
}

int fs_cache_count(void)
{
	return tls_cache ? tls_cache->count : 0;
}

/* ------------------------------------------------- blocking (pool threads) */

void fs_fd_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int fs_reopen_typed(int pfd, bool want_write, int *fdp, uint32_t *typep, bool *writablep)
{
	char path[64];
	struct stat st;
	int fd;

	if (fstat(pfd, &st) < 0)
		return -errno;
	*typep = st.st_mode & S_IFMT;
	*writablep = false;
	/* Re-open through the O_PATH descriptor's magic link: this reaches the
	 * very inode we hold, whatever happened to its names meanwhile.
	 * FIFOs, sockets, devices and symlinks stay O_PATH: opening them for
	 * I/O has side effects (and NFS never does I/O on them). */
	fs_fd_path(pfd, path, sizeof(path));
	if (S_ISREG(st.st_mode)) {
		fd = -1;
		if (want_write) {
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd >= 0)
				*writablep = true;
		}
		if (fd < 0)
			fd = open(path, O_RDONLY | O_CLOEXEC);
	} else if (S_ISDIR(st.st_mode)) {
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		fd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	}
	if (fd < 0)
		return -errno;
	*fdp = fd;
	return 0;
}

int fs_open_handle(const uint8_t *fh, size_t len, int root_fd, bool want_write,
		   int *fdp, uint32_t *typep, bool *writablep)
{
	int pfd, rc;

	pfd = fh_open(fh, len, root_fd, 0);
	if (pfd < 0)
		return pfd;
	rc = fs_reopen_typed(pfd, want_write, fdp, typep, writablep);
	close(pfd);
	return rc;
}

int fs_statx_fd(int fd, struct statx *stx)
{
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT,
		  STATX_BASIC_STATS, stx) < 0)
		return -errno;
	return 0;
}

int fs_statx_at(int dirfd, const char *name, struct statx *stx)
{
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT,
		  STATX_BASIC_STATS, stx) < 0)
		return -errno;
	return 0;
}

int fs_setattr(int fd, uint32_t type, const struct fs_sattr *sa)
{
	char path[64];

	fs_fd_path(fd, path, sizeof(path));
	if (sa->set_size) {
		if (type != S_IFREG)
			return type == S_IFDIR ? -EISDIR : -EINVAL;
		if (sa->size > (uint64_t)INT64_MAX)
			return -EFBIG;
		/* truncate(2) on the path, not ftruncate(2) on our (root-opened)
		 * descriptor, so that the caller's write permission is checked. */
		if (truncate(path, (off_t)sa->size) < 0)
			return -errno;
	}
	if (sa->set_uid || sa->set_gid) {
		uid_t u = sa->set_uid ? (uid_t)sa->uid : (uid_t)-1;
		gid_t g = sa->set_gid ? (gid_t)sa->gid : (gid_t)-1;
		if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (sa->set_mode && type != S_IFLNK) {
		if (chmod(path, sa->mode & 07777) < 0)
			return -errno;
	}
	if (sa->atime_how != FS_TIME_KEEP || sa->mtime_how != FS_TIME_KEEP) {
		struct timespec ts[2];

		ts[0].tv_sec = 0;
		ts[0].tv_nsec = sa->atime_how == FS_TIME_SERVER ? UTIME_NOW :
				sa->atime_how == FS_TIME_CLIENT ? 0 : UTIME_OMIT;
		if (sa->atime_how == FS_TIME_CLIENT)
			ts[0] = sa->atime;
		ts[1].tv_sec = 0;
		ts[1].tv_nsec = sa->mtime_how == FS_TIME_SERVER ? UTIME_NOW :
				sa->mtime_how == FS_TIME_CLIENT ? 0 : UTIME_OMIT;
		if (sa->mtime_how == FS_TIME_CLIENT)
			ts[1] = sa->mtime;
		if (utimensat(AT_FDCWD, path, ts, 0) < 0)
			return -errno;
	}
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int fs_readdir(int dirfd, uint64_t cookie, size_t want,
	       int (*cb)(void *arg, const struct fs_dirent *d), void *arg, bool *eof)
{
	char path[64];
	/* getdents64 fills the whole buffer; whatever the reply has no room
	 * for is read for nothing (and read again by the next call, from its
	 * cookie).  With READDIRPLUS replies of a few KiB a fixed 32 KiB
	 * buffer read ~10 times the entries sent.  So size it to what the
	 * caller expects to use (plus a quarter); running short only costs
	 * one more getdents64. */
	size_t bufsz = want + want / 4 + 512;
	char *buf;
	int fd, rc = 0;

	*eof = false;
	/* A private descriptor (the cached one is shared by concurrent jobs and
	 * getdents moves its position).  Opened through the magic link: only
	 * read permission on the directory itself is needed, as for readdir. */
	fs_fd_path(dirfd, path, sizeof(path));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (cookie && lseek(fd, (off_t)cookie, SEEK_SET) < 0) {
		rc = errno == EINVAL ? -EINVAL : -errno;
		close(fd);
		return rc;
	}
	if (bufsz < 4096)
		bufsz = 4096;
	if (bufsz > 65536)
		bufsz = 65536;
	buf = malloc(bufsz);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, bufsz);
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0) {
			*eof = true;
			break;
		}
		for (long pos = 0; pos < n;) {
			struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + pos);
			struct fs_dirent d;

			if (de->d_reclen == 0 || pos + de->d_reclen > n) {
				rc = -EIO;
				goto out;
			}
			pos += de->d_reclen;
			d.ino = de->d_ino;
			d.next = (uint64_t)de->d_off;
			d.type = de->d_type;
			d.name = de->d_name;
			if (cb(arg, &d))
				goto out;
		}
	}
out:
	free(buf);
	close(fd);
	return rc;
}
