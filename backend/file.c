/* file.c - the "file" backstore: a regular file or a block device, driven
 * entirely through io_uring (READ/WRITE/FSYNC/FALLOCATE).
 *
 * Every bio is a tiny state machine whose rs_op is its io_uring user_data
 * (liburing's "completions as data"): the completion handler looks at
 * bio->opcode/bio->stage and either finishes the bio or queues the next step.
 * Short transfers and -EAGAIN/-EINTR are resubmitted; done() only ever runs
 * from a completion, never from inside submit().
 */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/uio.h>
#include <time.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/log.h"

/* One SQE moves at most this much; bigger bios continue as "short" I/O.
 * (sqe->len is 32 bits and huge single requests starve the ring.) */
#define FILE_MAX_SQE_BYTES (1u << 30)
/* Chunk used when WRITE_ZEROES has to fall back to plain writes. */
#define ZERO_CHUNK (1u << 20)

/* Buffered writes done synchronously on the reactor (see file_write_inline):
 * at most this big, and a write slower than INLINE_SLOW_NS sends the store's
 * writes back through io_uring for INLINE_BACKOFF_MS. */
#define INLINE_MAX_BYTES  (256u * 1024)
#define INLINE_SLOW_NS    (2u * 1000 * 1000)
#define INLINE_BACKOFF_MS 1000u

/* Per-store state of the file backend (bs->priv).  Shared by every reactor
 * that submits to the store, hence atomics (relaxed: these are hints). */
struct file_priv {
	_Atomic int nowait;            /* RWF_NOWAIT buffered writes: 0 unknown, 1 yes, -1 no */
	_Atomic uint64_t backoff_until; /* rs_now_ms() before which writes go to io_uring */
};

enum file_stage {
	ST_IO = 0,        /* the main request is in flight */
	ST_ZERO_WRITE,    /* WRITE_ZEROES fallback: writing from zero_buf */
	ST_FAIL,          /* early failure posted through a NOP; err in done_bytes */
};

static pthread_once_t zero_once = PTHREAD_ONCE_INIT;
static void *zero_buf;   /* ZERO_CHUNK zero bytes, 4096-aligned, never written */

static void zero_buf_init(void)
{
	zero_buf = bstore_buf_alloc(ZERO_CHUNK);
	if (zero_buf)
		memset(zero_buf, 0, ZERO_CHUNK);
}

static int file_query_size(struct bstore *bs, uint64_t *size)
{
	struct stat st;

	if (fstat(bs->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		if (ioctl(bs->fd, BLKGETSIZE64, &sz) < 0)
			return -errno;
		*size = sz;
	} else if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else {
		return -EINVAL;
	}
	/* A partial trailing block cannot be addressed by an LBA: round down. */
	*size -= *size % bs->block_size;
	return 0;
}

static int file_open(struct bstore *bs, const struct bstore_params *p)
{
	int flags = O_CLOEXEC | (bs->readonly ? O_RDONLY : O_RDWR);
	struct stat st;
	uint64_t size;
	int ret, fd;

	if (!bs->path || !*bs->path)
		return -EINVAL;
	if (bs->direct)
		flags |= O_DIRECT;

	fd = open(bs->path, flags);
	if (fd < 0 && errno == ENOENT && p->create && !bs->readonly) {
		if (p->size < bs->block_size)
			return -EINVAL;
		fd = open(bs->path, flags | O_CREAT | O_EXCL, 0600);
		if (fd < 0 && errno == EEXIST)   /* lost a race: just open it */
			fd = open(bs->path, flags);
		else if (fd >= 0 && ftruncate(fd, (off_t)(p->size - p->size % bs->block_size)) < 0) {
			ret = -errno;
			close(fd);
			unlink(bs->path);
			return ret;
		}
	}
	if (fd < 0)
		return -errno;
	bs->fd = fd;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto fail;
	}
	bs->is_blockdev = S_ISBLK(st.st_mode);
	if (!bs->is_blockdev && !S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto fail;
	}
	ret = file_query_size(bs, &size);
	if (ret < 0)
		goto fail;
	if (size == 0) {
		ret = -EINVAL;   /* nothing addressable: refuse rather than export 0 blocks */
		goto fail;
	}
	bs->size = size;
	bs->priv = calloc(1, sizeof(struct file_priv));
	if (!bs->priv) {
		ret = -ENOMEM;
		goto fail;
	}
	/* Hole punching works on regular files of every mainstream file system
	 * and on block devices (blkdev_fallocate); a store that refuses returns
	 * -EOPNOTSUPP per bio and the protocol core copes. */
	bs->can_discard = !bs->readonly;
	return 0;
fail:
	close(fd);
	bs->fd = -1;
	return ret;
}

static void file_close(struct bstore *bs)
{
	if (bs->fd >= 0)
		close(bs->fd);
	bs->fd = -1;
	free(bs->priv);
	bs->priv = NULL;
}

static int file_refresh_size(struct bstore *bs)
{
	uint64_t size;
	int ret = file_query_size(bs, &size);

	if (ret < 0)
		return ret;
	bs->size = size;
	return 0;
}

static void file_complete(struct rs_op *op, int res, uint32_t cqe_flags);

static void file_queue_rw(struct bio *bio, bool write, const void *buf, uint64_t len,
			  uint64_t off)
{
	struct io_uring_sqe *sqe = reactor_sqe_op(bio->r, &bio->op);
	unsigned n = len > FILE_MAX_SQE_BYTES ? FILE_MAX_SQE_BYTES : (unsigned)len;

	if (write) {
		io_uring_prep_write(sqe, bio->bs->fd, buf, n, off);
		/* SBC-3 FUA: the data must be on the medium before status; RWF_DSYNC
		 * makes this one write O_DSYNC without a separate flush. */
		if (bio->flags & BIO_F_FUA)
			sqe->rw_flags = RWF_DSYNC;
	} else {
		io_uring_prep_read(sqe, bio->bs->fd, (void *)buf, n, off);
	}
}

/* Queue (or re-queue) the current step of bio. */
static void file_queue(struct bio *bio)
{
	struct bstore *bs = bio->bs;
	struct io_uring_sqe *sqe;
	uint64_t rem = bio->len - bio->done_bytes;

	switch (bio->stage) {
	case ST_ZERO_WRITE:
		file_queue_rw(bio, true, zero_buf, rem > ZERO_CHUNK ? ZERO_CHUNK : rem,
			      bio->offset + bio->done_bytes);
		return;
	case ST_FAIL:
		sqe = reactor_sqe_op(bio->r, &bio->op);
		io_uring_prep_nop(sqe);
		return;
	default:
		break;
	}

	switch (bio->opcode) {
	case BIO_READ:
		file_queue_rw(bio, false, (char *)bio->buf + bio->done_bytes, rem,
			      bio->offset + bio->done_bytes);
		break;
	case BIO_WRITE:
		file_queue_rw(bio, true, (char *)bio->buf + bio->done_bytes, rem,
			      bio->offset + bio->done_bytes);
		break;
	case BIO_FLUSH:
		sqe = reactor_sqe_op(bio->r, &bio->op);
		io_uring_prep_fsync(sqe, bs->fd, IORING_FSYNC_DATASYNC);
		break;
	case BIO_DISCARD:
		sqe = reactor_sqe_op(bio->r, &bio->op);
		io_uring_prep_fallocate(sqe, bs->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)bio->offset, (off_t)bio->len);
		break;
	case BIO_WRITE_ZEROES:
		sqe = reactor_sqe_op(bio->r, &bio->op);
		io_uring_prep_fallocate(sqe, bs->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)bio->offset, (off_t)bio->len);
		break;
	}
}

/* Fail without calling done() inline: post a NOP, finish from its completion. */
static void file_fail_async(struct bio *bio, int err)
{
	bio->stage = ST_FAIL;
	bio->done_bytes = (uint64_t)(-err);
	file_queue(bio);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A buffered (page cache) write, done synchronously on the reactor thread.
 *
 * Why: io_uring can only complete a buffered write without blocking when
 * the file system supports non-blocking buffered writes (FMODE_BUF_WASYNC:
 * XFS, btrfs, block devices).  On ext4 it hands every write to an io-wq
 * worker thread: two extra context switches and a wake-up per write, which
 * cost more CPU than copying 4 KiB into the page cache (measured: 48 -> 26
 * us of server CPU and 4.2 -> 1.9 context switches per 4 KiB write at depth
 * 1; 4 KiB writes at depth 32 +40% IOPS; bench/README.md).
 *
 * RWF_NOWAIT is tried first: where it works, a write that would block comes
 * back with EAGAIN and goes to io_uring as before.  Where the file system
 * refuses RWF_NOWAIT (EOPNOTSUPP, ext4), the write is done blocking but only
 * if it cannot need a read (whole pages) and is not too big, and a write
 * that nevertheless took long (dirty-page throttling, journal waits) turns
 * inline writes off for a second, so a stalled file system stalls the io-wq
 * workers rather than the reactor and its other connections.
 *
 * Durability is that of any buffered write: FUA writes (RWF_DSYNC) and
 * flushes (fdatasync) never come here and keep going through io_uring.
 *
 * Returns true if the bio was handled (its completion is deferred to the
 * reactor loop, never run inline). */
static bool file_write_inline(struct bio *bio)
{
	struct bstore *bs = bio->bs;
	struct file_priv *fp = bs->priv;
	static long page = 0;
	struct iovec iov;
	uint64_t t0 = 0;
	ssize_t n;
	int nw, res;

	if (!fp || bs->direct || (bio->flags & BIO_F_FUA) || bio->len > INLINE_MAX_BYTES)
		return false;
	if (!page) {
		page = sysconf(_SC_PAGESIZE);
		if (page <= 0)
			page = 4096;
	}
	if ((bio->offset | bio->len) & (uint64_t)(page - 1))
		return false;   /* a partial page may need a read first */
	nw = atomic_load_explicit(&fp->nowait, memory_order_relaxed);
	if (nw < 0 && atomic_load_explicit(&fp->backoff_until, memory_order_relaxed) &&
	    rs_now_ms() < atomic_load_explicit(&fp->backoff_until, memory_order_relaxed))
		return false;

	iov.iov_base = bio->buf;
	iov.iov_len = bio->len;
	if (nw >= 0) {
		n = pwritev2(bs->fd, &iov, 1, (off_t)bio->offset, RWF_NOWAIT);
		if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
			atomic_store_explicit(&fp->nowait, -1, memory_order_relaxed);
			nw = -1;
		} else if (n < 0 && errno == EAGAIN) {
			return false;   /* would block: let io-wq do it */
		} else if (!nw) {
			atomic_store_explicit(&fp->nowait, 1, memory_order_relaxed);
		}
	}
	if (nw < 0) {
		t0 = mono_ns();
		n = pwritev2(bs->fd, &iov, 1, (off_t)bio->offset, 0);
		if (mono_ns() - t0 > INLINE_SLOW_NS) {
			atomic_store_explicit(&fp->backoff_until, rs_now_ms() + INLINE_BACKOFF_MS,
					      memory_order_relaxed);
			log_debug("file %s: a buffered write blocked for %llu us: writes go through io-wq for %u ms",
				  bs->path, (unsigned long long)((mono_ns() - t0) / 1000), INLINE_BACKOFF_MS);
		}
	}
	/* What io_uring would have said: bytes written or -errno.  A short
	 * write or a transient error is continued by file_complete() through
	 * io_uring as usual. */
	res = n < 0 ? -errno : (int)n;
	if (reactor_defer(bio->r, &bio->op, res) == 0)
		return true;
	if (res == (int)bio->len) {
		/* No memory for the deferred queue: report the (completed)
		 * write through a NOP instead. */
		bio->stage = ST_FAIL;
		bio->done_bytes = 0;
		file_queue(bio);
		return true;
	}
	if (res > 0)
		bio->done_bytes = (uint64_t)res;
	return false;
}

static void file_submit(struct bstore *bs, struct reactor *r, struct bio *bio)
{
	bio->op.fn = file_complete;
	bio->stage = ST_IO;
	bio->done_bytes = 0;

	if (bs->fd < 0) {
		file_fail_async(bio, -EBADF);
		return;
	}
	if (bio->opcode == BIO_WRITE || bio->opcode == BIO_DISCARD ||
	    bio->opcode == BIO_WRITE_ZEROES) {
		if (bs->readonly) {
			file_fail_async(bio, -EROFS);
			return;
		}
	}
	if (bio->opcode != BIO_FLUSH) {
		if (bio->offset > bs->size || bio->len > bs->size - bio->offset) {
			file_fail_async(bio, -EINVAL);
			return;
		}
		if (bio->len == 0) {
			/* Nothing to move: complete through the ring all the same. */
			file_fail_async(bio, 0);
			return;
		}
		if ((bio->opcode == BIO_READ || bio->opcode == BIO_WRITE) && !bio->buf) {
			file_fail_async(bio, -EINVAL);
			return;
		}
	}
	(void)r;
	if (bio->opcode == BIO_WRITE && file_write_inline(bio))
		return;
	file_queue(bio);
}

static void file_finish(struct bio *bio, int err)
{
	bio->done(bio, err);
}

static void file_complete(struct rs_op *op, int res, uint32_t cqe_flags)
{
	struct bio *bio = container_of(op, struct bio, op);
	bool rw;
	(void)cqe_flags;

	if (bio->stage == ST_FAIL) {
		file_finish(bio, -(int)bio->done_bytes);
		return;
	}
	if (res == -EAGAIN || res == -EINTR) {
		file_queue(bio);
		return;
	}

	rw = bio->stage == ST_ZERO_WRITE || bio->opcode == BIO_READ || bio->opcode == BIO_WRITE;
	if (!rw) {
		if (res < 0 && bio->opcode == BIO_WRITE_ZEROES &&
		    (res == -EOPNOTSUPP || res == -EINVAL || res == -ENOTTY)) {
			/* No ZERO_RANGE on this file system / device: write zeros. */
			pthread_once(&zero_once, zero_buf_init);
			if (!zero_buf) {
				file_finish(bio, -ENOMEM);
				return;
			}
			bio->stage = ST_ZERO_WRITE;
			bio->done_bytes = 0;
			file_queue(bio);
			return;
		}
		file_finish(bio, res < 0 ? res : 0);
		return;
	}

	if (res < 0) {
		file_finish(bio, res);
		return;
	}
	if (res == 0) {
		if (bio->opcode == BIO_READ && bio->stage == ST_IO) {
			/* End of file (store shrank under us, or a sparse-created
			 * file was truncated): the missing tail reads as zeros. */
			memset((char *)bio->buf + bio->done_bytes, 0, bio->len - bio->done_bytes);
			file_finish(bio, 0);
		} else {
			/* A write that makes no progress would loop forever. */
			file_finish(bio, -EIO);
		}
		return;
	}
	bio->done_bytes += (uint64_t)res;
	if (bio->done_bytes >= bio->len) {
		file_finish(bio, 0);
		return;
	}
	if (bio->opcode == BIO_READ && bio->stage == ST_IO && bio->bs->direct &&
	    ((uint64_t)res & (bio->bs->block_size - 1))) {
		/* O_DIRECT short read that is not block aligned: that is EOF, and
		 * an unaligned resubmission would only fail with -EINVAL. */
		memset((char *)bio->buf + bio->done_bytes, 0, bio->len - bio->done_bytes);
		file_finish(bio, 0);
		return;
	}
	file_queue(bio);
}

const struct bstore_ops bstore_file_ops = {
	.name = "file",
	.open = file_open,
	.close = file_close,
	.submit = file_submit,
	.refresh_size = file_refresh_size,
};
