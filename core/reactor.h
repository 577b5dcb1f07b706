/* reactor.h - one io_uring event loop per thread (the data path's only engine).
 *
 * Contract (liburing's "completions as data"): every submission carries a
 * pointer to a struct rs_op as its user_data; when the completion arrives the
 * reactor calls op->fn(op, cqe->res, cqe->flags).  Objects embed their rs_op
 * and get back to themselves with container_of().  res is >= 0 or -errno,
 * exactly as io_uring reports it.  Multishot requests keep their rs_op alive
 * until a completion arrives without IORING_CQE_F_MORE.
 *
 * A reactor is owned by one thread.  The only thread-safe entry points are
 * reactor_post() and reactor_stop(); everything else must be called from the
 * reactor's own thread (reactor_current() tells which one that is).  The
 * ring is single-issuer where the kernel allows it: the first thread that
 * submits (reactor_run(), or reactor_sqe() finding the SQ full) becomes its
 * only submitter, so a reactor set up on one thread and run on another must
 * not have more than `entries` SQEs prepared before it runs.
 */
#ifndef RS_REACTOR_H
#define RS_REACTOR_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct rs_op;
typedef void (*rs_op_fn)(struct rs_op *op, int res, uint32_t cqe_flags);

struct rs_op {
	rs_op_fn fn;
};

/* A ticker is called about once per second on its reactor (NOP-In pings,
 * login and idle timeouts).  Intrusive doubly linked list; no allocation. */
struct rs_ticker {
	void (*fn)(struct rs_ticker *t, uint64_t now_ms);
	struct rs_ticker *prev, *next;
};

/* Cross-thread work item, see reactor_post(). */
struct rs_task {
	void (*fn)(void *arg);
	void *arg;
	struct rs_task *next;
};

struct reactor {
	struct io_uring ring;
	int id;                 /* 0 .. nr_reactors-1 */
	pthread_t thread;
	volatile bool stopping;

	int wake_fd;            /* eventfd: reactor_post()/reactor_stop() */
	uint64_t wake_buf;
	struct rs_op wake_op;

	pthread_mutex_t inbox_lock;
	struct rs_task *inbox;

	struct __kernel_timespec tick_ts;
	struct rs_op tick_op;
	struct rs_ticker tickers;   /* list head (sentinel) */

	unsigned pending_sqes;      /* prepared but not yet submitted */
	uint64_t live_ops;          /* for clean shutdown accounting (optional) */

	/* The ring is created disabled (IORING_SETUP_R_DISABLED) so that the
	 * thread that runs it, not the one that set it up, becomes its single
	 * issuer (SINGLE_ISSUER|DEFER_TASKRUN); enabled on first use. */
	bool enabled;
	bool single_issuer;
	unsigned setup_flags;       /* IORING_SETUP_* in force (for tests/logs) */

	/* Completions decided without the kernel (reactor_defer()). */
	struct rs_deferred {
		struct rs_op *op;
		int res;
	} *deferred;
	unsigned ndeferred, deferred_cap;
};

/* Set up the ring (entries = SQ size) and the wake/tick machinery.  0 or -errno. */
int reactor_init(struct reactor *r, int id, unsigned entries);
void reactor_fini(struct reactor *r);

/* Get an SQE, submitting what is queued if the SQ is full; never returns NULL. */
struct io_uring_sqe *reactor_sqe(struct reactor *r);

/* Convenience: get an SQE and attach op as its user_data. */
static inline struct io_uring_sqe *reactor_sqe_op(struct reactor *r, struct rs_op *op)
{
	struct io_uring_sqe *sqe = reactor_sqe(r);
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

/* Complete op with res from the loop, after the caller has returned and
 * before the reactor next sleeps: for work finished synchronously (a
 * buffered write done inline) that must still honour "the completion never
 * runs inside the submit call".  Reactor thread only.  0, or -ENOMEM when
 * the queue cannot grow (the caller then completes through the ring). */
int reactor_defer(struct reactor *r, struct rs_op *op, int res);

/* Run until reactor_stop(); submits in batches, reaps completions in batches. */
void reactor_run(struct reactor *r);

/* Thread-safe: run fn(arg) on r's thread soon.  The task memory is copied. 0/-errno */
int reactor_post(struct reactor *r, void (*fn)(void *arg), void *arg);

/* Thread-safe: ask the loop to return after the current batch. */
void reactor_stop(struct reactor *r);

void reactor_add_ticker(struct reactor *r, struct rs_ticker *t);
void reactor_del_ticker(struct reactor *r, struct rs_ticker *t);

/* The reactor running on the calling thread, or NULL (e.g. control thread). */
struct reactor *reactor_current(void);

/* Monotonic milliseconds. */
uint64_t rs_now_ms(void);

#endif
