/* reactor.c - see reactor.h.  A deliberately small loop in the spirit of
 * Redis's ae.c: submit everything queued, wait for at least one completion,
 * dispatch a batch of completions from their user_data, repeat.
 *
 * Ring setup (measured, see bench/README.md "Optimisation log"): the ring is
 * SINGLE_ISSUER|DEFER_TASKRUN where the kernel has it (6.1+).  Completion
 * work (socket readiness, io-wq results) is then queued on the ring and run
 * only when the reactor enters the kernel to wait, instead of interrupting
 * the thread with task_work and an IPI each time; a sleeping reactor is
 * woken once the completions it waits for are there.  SINGLE_ISSUER needs
 * the submitting thread to own the ring, but reactors are set up by the main
 * thread and run by their own: the ring is created R_DISABLED and enabled by
 * whichever thread first submits (normally reactor_run() on the reactor's
 * thread), which makes that thread the issuer. */
#include "reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static __thread struct reactor *current_reactor;

struct reactor *reactor_current(void)
{
	return current_reactor;
}

uint64_t rs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Make the calling thread the ring's issuer (see the top of the file). */
static void reactor_enable(struct reactor *r)
{
	int ret;

	if (r->enabled)
		return;
	r->enabled = true;
	if (!(r->setup_flags & IORING_SETUP_R_DISABLED))
		return;
	/* io_uring_enable_rings() is declared by liburing 2.3's header but
	 * missing from its library: register directly. */
	ret = (int)syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
			   NULL, 0);
	if (ret < 0) {
		log_err("reactor %d: IORING_REGISTER_ENABLE_RINGS: %s", r->id, strerror(errno));
		return;
	}
	/* Only this thread may submit from now on: let it name the ring by its
	 * registered index and skip the fd lookup of every io_uring_enter. */
	if (r->single_issuer)
		io_uring_register_ring_fd(&r->ring);
}

struct io_uring_sqe *reactor_sqe(struct reactor *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->ring))) {
		reactor_enable(r);
		/* SQ full: hand the batch to the kernel and retry.  -EBUSY means
		 * the CQ is overflowing; completions get reaped on the next loop
		 * pass, submitting again later succeeds. */
		int ret = io_uring_submit(&r->ring);
		if (ret < 0 && ret != -EBUSY && ret != -EAGAIN && ret != -EINTR)
			log_err("reactor %d: io_uring_submit: %s", r->id, strerror(-ret));
	}
	return sqe;
}

static void arm_wake(struct reactor *r)
{
	struct io_uring_sqe *sqe = reactor_sqe_op(r, &r->wake_op);
	io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf, sizeof(r->wake_buf), 0);
}

static void run_inbox(struct reactor *r)
{
	struct rs_task *list, *next, *rev = NULL;

	pthread_mutex_lock(&r->inbox_lock);
	list = r->inbox;
	r->inbox = NULL;
	pthread_mutex_unlock(&r->inbox_lock);
	/* The inbox is LIFO; reverse so that tasks run in posting order. */
	for (; list; list = next) {
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev; rev = next) {
		next = rev->next;
		rev->fn(rev->arg);
		free(rev);
	}
}

static void on_wake(struct rs_op *op, int res, uint32_t flags)
{
	struct reactor *r = container_of(op, struct reactor, wake_op);
	(void)flags;
	if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ECANCELED)
		log_warn("reactor %d: eventfd read: %s", r->id, strerror(-res));
	run_inbox(r);
	/* Re-arm even while stopping: a reactor may be run again (tests do), and
	 * reactor_fini() tears the ring down with whatever is still armed. */
	arm_wake(r);
}

static void arm_tick(struct reactor *r)
{
	struct io_uring_sqe *sqe = reactor_sqe_op(r, &r->tick_op);
	r->tick_ts.tv_sec = 1;
	r->tick_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &r->tick_ts, 0, 0);
}

static void on_tick(struct rs_op *op, int res, uint32_t flags)
{
	struct reactor *r = container_of(op, struct reactor, tick_op);
	uint64_t now = rs_now_ms();
	struct rs_ticker *t, *next;
	(void)res;
	(void)flags;
	/* A ticker may remove itself (connection closing): fetch next first. */
	for (t = r->tickers.next; t != &r->tickers; t = next) {
		next = t->next;
		t->fn(t, now);
	}
	arm_tick(r);
}

int reactor_init(struct reactor *r, int id, unsigned entries)
{
	struct io_uring_params p;
	int ret;

	memset(r, 0, sizeof(*r));
	r->id = id;
	r->tickers.next = r->tickers.prev = &r->tickers;
	pthread_mutex_init(&r->inbox_lock, NULL);

	/* Best first: SINGLE_ISSUER|DEFER_TASKRUN (6.1+), then COOP_TASKRUN
	 * (completions processed when we enter the kernel anyway, no IPIs on a
	 * busy reactor; 5.19+), then nothing.  RINGSTOR_URING_FLAGS=0 in the
	 * environment forces the plain ring (A/B measurements). */
	{
		static const unsigned try_flags[] = {
			IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
				IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL,
			IORING_SETUP_COOP_TASKRUN,
			0,
		};
		const char *env = getenv("RINGSTOR_URING_FLAGS");
		unsigned first = env && *env == '0' ? 2 : env && *env == '1' ? 1 : 0;

		ret = -EINVAL;
		for (unsigned i = first; i < sizeof(try_flags) / sizeof(try_flags[0]); i++) {
			memset(&p, 0, sizeof(p));
			p.flags = try_flags[i] | IORING_SETUP_CQSIZE;
			p.cq_entries = entries * 4;
			ret = io_uring_queue_init_params(entries, &r->ring, &p);
			if (ret != -EINVAL)
				break;
		}
		if (ret < 0)
			return ret;
		r->setup_flags = p.flags;
		r->single_issuer = (p.flags & IORING_SETUP_SINGLE_ISSUER) != 0;
		r->enabled = !(p.flags & IORING_SETUP_R_DISABLED);
	}
	r->deferred_cap = 64;
	r->deferred = malloc(r->deferred_cap * sizeof(*r->deferred));
	if (!r->deferred) {
		io_uring_queue_exit(&r->ring);
		return -ENOMEM;
	}

	r->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (r->wake_fd < 0) {
		ret = -errno;
		io_uring_queue_exit(&r->ring);
		free(r->deferred);
		return ret;
	}
	r->wake_op.fn = on_wake;
	r->tick_op.fn = on_tick;
	arm_wake(r);
	arm_tick(r);
	return 0;
}

void reactor_fini(struct reactor *r)
{
	run_inbox(r);
	io_uring_queue_exit(&r->ring);
	free(r->deferred);
	r->deferred = NULL;
	close(r->wake_fd);
	pthread_mutex_destroy(&r->inbox_lock);
}

int reactor_post(struct reactor *r, void (*fn)(void *arg), void *arg)
{
	struct rs_task *t = malloc(sizeof(*t));
	uint64_t one = 1;

	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&r->inbox_lock);
	t->next = r->inbox;
	r->inbox = t;
	pthread_mutex_unlock(&r->inbox_lock);
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

void reactor_stop(struct reactor *r)
{
	uint64_t one = 1;
	r->stopping = true;
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		log_warn("reactor %d: wake: %s", r->id, strerror(errno));
}

void reactor_add_ticker(struct reactor *r, struct rs_ticker *t)
{
	t->next = &r->tickers;
	t->prev = r->tickers.prev;
	r->tickers.prev->next = t;
	r->tickers.prev = t;
}

void reactor_del_ticker(struct reactor *r, struct rs_ticker *t)
{
	(void)r;
	if (!t->next)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

int reactor_defer(struct reactor *r, struct rs_op *op, int res)
{
	if (r->ndeferred == r->deferred_cap) {
		unsigned cap = r->deferred_cap * 2;
		struct rs_deferred *n = realloc(r->deferred, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->deferred = n;
		r->deferred_cap = cap;
	}
	r->deferred[r->ndeferred].op = op;
	r->deferred[r->ndeferred].res = res;
	r->ndeferred++;
	return 0;
}

/* Run the deferred completions queued so far (not the ones they queue: those
 * wait for the next pass, so that a chain cannot starve the ring). */
static void run_deferred(struct reactor *r)
{
	unsigned n = r->ndeferred, i;

	for (i = 0; i < n; i++) {
		/* By index: a callback may grow (move) the array. */
		struct rs_op *op = r->deferred[i].op;
		op->fn(op, r->deferred[i].res, 0);
	}
	memmove(r->deferred, r->deferred + n, (r->ndeferred - n) * sizeof(*r->deferred));
	r->ndeferred -= n;
}

void reactor_run(struct reactor *r)
{
	current_reactor = r;
	reactor_enable(r);
	while (!r->stopping) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int ret;

		if (r->ndeferred) {
			run_deferred(r);
			if (r->stopping)
				break;
		}
		/* Completions are waiting in user space: only submit (and, with
		 * DEFER_TASKRUN, collect what is ready), never sleep. */
		if (r->ndeferred)
			ret = io_uring_submit_and_get_events(&r->ring);
		else
			ret = io_uring_submit_and_wait(&r->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
		    ret != -ETIME) {
			log_err("reactor %d: io_uring_submit_and_wait: %s", r->id, strerror(-ret));
			break;
		}
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			struct rs_op *op = io_uring_cqe_get_data(cqe);
			n++;
			if (op)
				op->fn(op, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&r->ring, n);
	}
	current_reactor = NULL;
}
