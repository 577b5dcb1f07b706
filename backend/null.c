/* null.c - the "null" backstore: writes are discarded, reads return zeros.
 *
 * Useful for benchmarking the protocol path.  Every bio still completes
 * from the reactor loop (reactor_defer(), or an IORING_OP_NOP as fallback)
 * so that the "done() is never called inline" contract is the same as for
 * real stores.
 */
#include "backend.h"

#include <errno.h>
#include <string.h>

#define NULL_DEFAULT_SIZE (1ull << 30)

static int null_open(struct bstore *bs, const struct bstore_params *p)
{
	uint64_t size = p->size ? p->size : NULL_DEFAULT_SIZE;

	size -= size % bs->block_size;
	if (size == 0)
		return -EINVAL;
	bs->size = size;
	bs->fd = -1;
	bs->direct = false;
	bs->can_discard = !bs->readonly;
	return 0;
}

static void null_close(struct bstore *bs)
{
	(void)bs;
}

static int null_refresh_size(struct bstore *bs)
{
	(void)bs;
	return 0;
}

static void null_complete(struct rs_op *op, int res, uint32_t cqe_flags)
{
	struct bio *bio = container_of(op, struct bio, op);
	(void)res;
	(void)cqe_flags;

	/* stage carries the verdict decided at submit time (0 or -errno). */
	if (bio->stage == 0 && bio->opcode == BIO_READ && bio->len)
		memset(bio->buf, 0, bio->len);
	if (bio->stage == 0)
		bio->done_bytes = bio->len;
	bio->done(bio, bio->stage);
}

static void null_submit(struct bstore *bs, struct reactor *r, struct bio *bio)
{
	struct io_uring_sqe *sqe;
	int err = 0;

	if (bio->opcode != BIO_FLUSH &&
	    (bio->offset > bs->size || bio->len > bs->size - bio->offset))
		err = -EINVAL;
	else if (bs->readonly && (bio->opcode == BIO_WRITE || bio->opcode == BIO_DISCARD ||
				  bio->opcode == BIO_WRITE_ZEROES))
		err = -EROFS;
	else if (bio->opcode == BIO_READ && bio->len && !bio->buf)
		err = -EINVAL;
	bio->stage = err;
	bio->op.fn = null_complete;
	/* Complete from the reactor loop without a trip through the kernel (a
	 * NOP costs an io_uring_enter round of its own at depth 1); the NOP is
	 * only the fallback when the deferred queue cannot grow. */
	if (reactor_defer(r, &bio->op, 0) == 0)
		return;
	sqe = reactor_sqe_op(r, &bio->op);
	io_uring_prep_nop(sqe);
}

const struct bstore_ops bstore_null_ops = {
	.name = "null",
	.open = null_open,
	.close = null_close,
	.submit = null_submit,
	.refresh_size = null_refresh_size,
};
