/* workpool.c - see workpool.h. */
#include "workpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sched.h>
#include <stdlib.h>

#include "log.h"

static pthread_mutex_t wp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wp_cond = PTHREAD_COND_INITIALIZER;
static struct wp_job *wp_head, *wp_tail;
static pthread_t *wp_threads;
static int wp_nthreads;
static bool wp_stopping;
static atomic_int wp_pending;

static void job_done_on_reactor(void *arg)
{
	struct wp_job *job = arg;
	atomic_fetch_sub(&wp_pending, 1);
	job->done(job);
}

static void *wp_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct wp_job *job;

		pthread_mutex_lock(&wp_lock);
		while (!wp_head && !wp_stopping)
			pthread_cond_wait(&wp_cond, &wp_lock);
		if (!wp_head) {
			pthread_mutex_unlock(&wp_lock);
			return NULL;
		}
		job = wp_head;
		wp_head = job->next;
		if (!wp_head)
			wp_tail = NULL;
		pthread_mutex_unlock(&wp_lock);

		job->work(job);
		if (job->r) {
			/* reactor_post only fails on ENOMEM; retry rather than lose
			 * the completion (the caller's state machine waits for it). */
			while (reactor_post(job->r, job_done_on_reactor, job) < 0)
				sched_yield();
		} else {
			atomic_fetch_sub(&wp_pending, 1);
			job->done(job);
		}
	}
}

int workpool_init(int nthreads)
{
	if (nthreads <= 0)
		nthreads = 4;
	wp_threads = calloc((size_t)nthreads, sizeof(*wp_threads));
	if (!wp_threads)
		return -12;
	wp_stopping = false;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&wp_threads[i], NULL, wp_main, NULL) != 0) {
			log_err("workpool: cannot start thread %d", i);
			break;
		}
		wp_nthreads++;
	}
	return wp_nthreads ? 0 : -11;
}

void workpool_submit(struct wp_job *job)
{
	job->r = reactor_current();
	job->next = NULL;
	atomic_fetch_add(&wp_pending, 1);
	pthread_mutex_lock(&wp_lock);
	if (wp_tail)
		wp_tail->next = job;
	else
		wp_head = job;
	wp_tail = job;
	pthread_cond_signal(&wp_cond);
	pthread_mutex_unlock(&wp_lock);
}

bool workpool_running(void)
{
	bool on;

	pthread_mutex_lock(&wp_lock);
	on = wp_nthreads > 0 && !wp_stopping;
	pthread_mutex_unlock(&wp_lock);
	return on;
}

int workpool_pending(void)
{
	return atomic_load(&wp_pending);
}

void workpool_shutdown(void)
{
	pthread_mutex_lock(&wp_lock);
	wp_stopping = true;
	pthread_cond_broadcast(&wp_cond);
	pthread_mutex_unlock(&wp_lock);
	for (int i = 0; i < wp_nthreads; i++)
		pthread_join(wp_threads[i], NULL);
	free(wp_threads);
	wp_threads = NULL;
	wp_nthreads = 0;
}
