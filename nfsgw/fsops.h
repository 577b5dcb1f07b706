/* fsops.h - the file-system side of the NFSv3 gateway.
 *
 * Three parts:
 *  - credentials: a workpool job runs its system calls with the caller's
 *    (squashed) uid/gid/groups, switched per thread with setfsuid/setfsgid/
 *    setgroups (raw system calls: per thread on Linux), so the kernel does
 *    the permission checks, the sticky bit, setgid inheritance and the
 *    ownership of new files exactly as for a local process;
 *  - a per-reactor cache of open file descriptors keyed by file handle bytes
 *    (regular files O_RDWR/O_RDONLY, directories O_RDONLY|O_DIRECTORY, the
 *    rest O_PATH), so the READ/WRITE/GETATTR/COMMIT hot paths go straight to
 *    io_uring without a handle decode;
 *  - blocking helpers for the pool threads (open by handle, setattr,
 *    getdents64 with resumable offsets).
 *
 * Errors are -errno everywhere; nfs3.c turns them into nfsstat3 in one place.
 */
#ifndef RS_FSOPS_H
#define RS_FSOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/reactor.h"
#include "fh.h"
#include "rpc.h"

struct nfs_cred {
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[RPC_MAX_GIDS];
};

/* ------------------------------------------------------------ credentials */

/* Pool thread: take on c for the file-system calls that follow.  0 or -errno
 * (on failure the thread is back to root and the call must not proceed). */
int fs_cred_enter(const struct nfs_cred *c);
/* Back to root (uid 0, gid 0, no supplementary groups). */
void fs_cred_leave(void);

/* Mode-bit check for the io_uring paths (which run with the daemon's own
 * credentials): may = FS_MAY_* bits.  uid 0 passes (except EXEC on a
 * non-directory without any x bit, like the kernel); owner_override lets
 * the owner read/write whatever the mode, as nfsd does for READ/WRITE so
 * that a file created read-only can still be written through its open
 * (RFC 1813 4.4). */
#define FS_MAY_EXEC  1
#define FS_MAY_WRITE 2
#define FS_MAY_READ  4
bool fs_may(const struct nfs_cred *c, uint32_t mode, uint32_t uid, uint32_t gid, int may,
	    bool owner_override);

/* ---------------------------------------------------- per-reactor fd cache */

struct fs_obj {
	struct fs_obj *hnext;           /* hash chain */
	struct fs_obj *prev, *next;     /* LRU, most recent first */
	uint32_t hash;
	uint8_t keylen;
	uint8_t key[NFS_FH_MAX];
	uint32_t export_id;
	int fd;
	uint32_t type;                  /* S_IFREG, S_IFDIR, ... */
	bool writable;                  /* fd is O_RDWR */
	bool hashed;
	int refs;                       /* the cache holds one while hashed */
};

#define FS_CACHE_MAX 256

/* All on the calling reactor's thread; each reactor has its own cache.
 * get: a referenced entry or NULL.  add: takes ownership of fd; replaces an
 * entry with the same key; returns a referenced entry (NULL only on ENOMEM,
 * fd closed).  forget: drop from the cache (the object went STALE); the fd
 * closes with the last reference. */
struct fs_obj *fs_cache_get(const uint8_t *fh, size_t len);
struct fs_obj *fs_cache_add(const uint8_t *fh, size_t len, uint32_t export_id, int fd,
			    uint32_t type, bool writable);
void fs_cache_put(struct fs_obj *o);
void fs_cache_forget(struct fs_obj *o);
/* Drop every entry of this thread's cache (shutdown, tests). */
void fs_cache_flush(void);
int fs_cache_count(void);

/* ------------------------------------------------- blocking (pool threads) */

/* Open the object of a verified handle relative to the export root, with the
 * descriptor kind the cache keeps (see above).  want_write: try O_RDWR for
 * regular files (falls back to O_RDONLY on EROFS/ETXTBSY/EACCES). */
int fs_open_handle(const uint8_t *fh, size_t len, int root_fd, bool want_write,
		   int *fdp, uint32_t *typep, bool *writablep);

/* The cache's kind of descriptor for the object an O_PATH descriptor (or
 * any descriptor) refers to; the caller keeps pfd.  Runs as root: the
 * caller's permissions are checked per operation, not at open. */
int fs_reopen_typed(int pfd, bool want_write, int *fdp, uint32_t *typep, bool *writablep);

/* statx of an fd itself (AT_EMPTY_PATH) or of dirfd/name without following a
 * symlink. */
int fs_statx_fd(int fd, struct statx *stx);
int fs_statx_at(int dirfd, const char *name, struct statx *stx);

enum fs_time_how { FS_TIME_KEEP = 0, FS_TIME_SERVER = 1, FS_TIME_CLIENT = 2 };

struct fs_sattr {
	bool set_mode, set_uid, set_gid, set_size;
	uint32_t mode, uid, gid;
	uint64_t size;
	enum fs_time_how atime_how, mtime_how;
	struct timespec atime, mtime;
};

/* Apply attributes to the object open at fd (any kind of fd), with the
 * credentials in effect: size, owner, mode, times in that order (chown
 * clears set-id bits, truncate and chmod touch ctime/mtime). */
int fs_setattr(int fd, uint32_t type, const struct fs_sattr *sa);

struct fs_dirent {
	uint64_t ino;
	uint64_t next;          /* cookie that resumes after this entry (d_off) */
	uint8_t type;           /* DT_* */
	const char *name;
};

/* Read the directory open at dirfd from cookie (0 = start) on a private
 * descriptor of its own (so concurrent listings never share a position).
 * cb returns 0 to continue, 1 to stop before this entry (no room).  *eof is
 * set when the end was reached.  want: about how many bytes of directory
 * records (struct linux_dirent64) the caller will consume - the size of the
 * getdents64 buffer is derived from it.  0 or -errno (-EINVAL: cookie not
 * valid here). */
int fs_readdir(int dirfd, uint64_t cookie, size_t want,
	       int (*cb)(void *arg, const struct fs_dirent *d), void *arg, bool *eof);

/* "/proc/self/fd/N" for an fd (reaches the object itself, also for O_PATH). */
void fs_fd_path(int fd, char *buf, size_t len);

#endif
