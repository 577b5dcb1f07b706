/* workpool.h - a small bounded pool of helper threads for the system calls
 * io_uring lacks (getdents, fchmod/fchown/utimensat, ...), in the spirit of
 * libuv's threadpool: the reactor never blocks; a job's work() runs on a pool
 * thread and its done() runs back on the reactor that submitted it. */
#ifndef RS_WORKPOOL_H
#define RS_WORKPOOL_H

#include "reactor.h"

struct wp_job {
	void (*work)(struct wp_job *job);   /* pool thread: may block */
	void (*done)(struct wp_job *job);   /* submitting reactor's thread */
	struct reactor *r;                  /* set by workpool_submit() */
	struct wp_job *next;
};

/* Start n threads (default 4 when n <= 0).  0 or -errno. */
int workpool_init(int nthreads);
/* Queue a job from a reactor thread.  Never blocks. */
void workpool_submit(struct wp_job *job);
/* Are pool threads running (workpool_init() done, no shutdown yet)? */
bool workpool_running(void);
/* Jobs queued or running (for idle checks). */
int workpool_pending(void);
void workpool_shutdown(void);

#endif
