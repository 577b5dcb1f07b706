/* backend.h - backing stores ("backstores"): byte-addressed block storage.
 *
 * This API knows nothing of SCSI or NFS so that both protocol cores can share
 * it.  A bstore is opened once (control plane, may block) and then used from any
 * reactor: bstore_submit() queues the I/O on the *calling* reactor's io_uring
 * and bio->done() runs later on that same reactor thread.
 *
 * Error vocabulary: bio->done(bio, err) with err == 0 or -errno (-EIO, -ENOSPC,
 * -EROFS ...).  Short reads/writes are resubmitted inside the backend; a read
 * past end of file is zero-filled.  The protocol core maps -errno to its own
 * status in exactly one place.
 */
#ifndef RS_BACKEND_H
#define RS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/reactor.h"

enum bio_opcode {
	BIO_READ,
	BIO_WRITE,
	BIO_FLUSH,        /* fdatasync of the whole store (offset/len ignored) */
	BIO_DISCARD,      /* punch hole (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE) */
	BIO_WRITE_ZEROES, /* FALLOC_FL_ZERO_RANGE, falling back to writes */
};

#define BIO_F_FUA 0x1     /* write must be durable before done(): RWF_DSYNC */

struct bstore;

struct bio {
	/* filled by the caller */
	enum bio_opcode opcode;
	unsigned flags;            /* BIO_F_* */
	uint64_t offset;           /* bytes */
	uint64_t len;              /* bytes */
	void *buf;                 /* len bytes; 4096-aligned when the store is O_DIRECT */
	void (*done)(struct bio *bio, int err);
	void *priv;                /* caller's */

	/* backend private */
	struct rs_op op;
	struct bstore *bs;
	struct reactor *r;
	uint64_t done_bytes;
	int stage;
};

struct bstore_params {
	uint32_t block_size;       /* 512 or 4096 (logical block size advertised) */
	bool direct;               /* O_DIRECT */
	bool readonly;
	bool create;               /* create a sparse file of `size` bytes if missing */
	uint64_t size;             /* null backend size; sparse-create size */
};

struct bstore_ops {
	const char *name;          /* "file" (also block devices), "null" */
	/* Open/prepare bs->path.  Fills bs->size.  0 or -errno.  May block. */
	int (*open)(struct bstore *bs, const struct bstore_params *p);
	void (*close)(struct bstore *bs);
	/* Queue bio on reactor r.  Must not block.  done() is never called inline. */
	void (*submit)(struct bstore *bs, struct reactor *r, struct bio *bio);
	/* Re-read the size (online resize). 0 or -errno. */
	int (*refresh_size)(struct bstore *bs);
};

struct bstore {
	const struct bstore_ops *ops;
	char *path;
	int fd;
	uint64_t size;             /* bytes */
	uint32_t block_size;
	bool direct;
	bool readonly;
	bool is_blockdev;
	bool can_discard;
	void *priv;
};

/* Look up a backend type by name; NULL if unknown. */
const struct bstore_ops *bstore_find_ops(const char *type);
/* Allocate + open.  *out on success; -errno (-EINVAL for bad type/params). */
int bstore_open(const char *type, const char *path, const struct bstore_params *p,
		struct bstore **out);
void bstore_close(struct bstore *bs);

static inline void bstore_submit(struct bstore *bs, struct reactor *r, struct bio *bio)
{
	bio->bs = bs;
	bio->r = r;
	bio->done_bytes = 0;
	bio->stage = 0;
	bs->ops->submit(bs, r, bio);
}

/* Aligned buffer helpers (4096 alignment, O_DIRECT safe). */
void *bstore_buf_alloc(size_t len);
void bstore_buf_free(void *p);

extern const struct bstore_ops bstore_file_ops;
extern const struct bstore_ops bstore_null_ops;

#endif
