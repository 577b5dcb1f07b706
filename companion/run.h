/* run.h - run a command, capture its output, with a deadline. */
#ifndef RS_COMPANION_RUN_H
#define RS_COMPANION_RUN_H
#include <stddef.h>
#include <sys/types.h>

#include "companion/json.h"

struct run_job {
	char **argv;            /* owned */
	pid_t pid;
	int out_fd, err_fd;     /* -1 once closed */
	struct strbuf out, err;
	int status;             /* exit code, 128+signal, or -1 (could not run / timed out) */
	char why[256];          /* set when status == -1 */
};

/* Starts argv (argv[0] looked up in PATH) with stdin from /dev/null.
 * Returns 0, or -1 with job->why set. */
int run_start(struct run_job *job, char *const argv[]);
/* Waits for all jobs, collecting output, killing those still running after
 * timeout_s seconds (their status becomes -1, why "timed out"). */
void run_wait_all(struct run_job *jobs, size_t n, int timeout_s);
void run_job_free(struct run_job *job);
/* Convenience: run, wait, return the first line of stdout (caller frees) or NULL. */
char *run_first_line(char *const argv[], int timeout_s);
/* Full path of an executable found in PATH, or NULL (caller frees). */
char *which(const char *prog);
#endif
