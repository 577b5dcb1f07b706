/* reactor.c - see reactor.h.  A deliberately small loop in the spirit of
 * Redis's ae.c: submit everything queued, wait for at least one completion,
 * dispatch a batch of completions from their user_data, repeat. */
#include "reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

struct io_uring_sqe *reactor_sqe(struct reactor *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->ring))) {
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

	/* COOP_TASKRUN: completions are processed when we enter the kernel
	 * anyway, avoiding IPIs on a busy reactor.  Fall back on old kernels. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	ret = io_uring_queue_init_params(entries, &r->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(entries, &r->ring, &p);
	}
	if (ret < 0)
		return ret;

	r->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (r->wake_fd < 0) {
		ret = -errno;
		io_uring_queue_exit(&r->ring);
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

void reactor_run(struct reactor *r)
{
	current_reactor = r;
	while (!r->stopping) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int ret;

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
