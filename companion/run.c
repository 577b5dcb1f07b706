/* run.c - see run.h. */
#include "companion/run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char **argv_dup(char *const argv[])
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(argv[i]);
		if (!v[i]) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	return v;
}

int run_start(struct run_job *job, char *const argv[])
{
	memset(job, 0, sizeof(*job));
	job->out_fd = job->err_fd = -1;
	job->status = -1;
	job->pid = -1;
	job->argv = argv_dup(argv);
	if (!job->argv || !job->argv[0]) {
		snprintf(job->why, sizeof(job->why), "empty command");
		return -1;
	}
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0) {
		snprintf(job->why, sizeof(job->why), "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(pe, O_CLOEXEC) < 0) {
		snprintf(job->why, sizeof(job->why), "pipe: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(job->why, sizeof(job->why), "fork: %s", strerror(errno));
		close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execvp(job->argv[0], job->argv);
		fprintf(stderr, "cannot run %s: %s\n", job->argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	job->pid = pid;
	job->out_fd = po[0];
	job->err_fd = pe[0];
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void run_wait_all(struct run_job *jobs, size_t n, int timeout_s)
{
	double deadline = now_s() + timeout_s;
	bool timed_out = false;
	for (;;) {
		struct pollfd pfd[2 * n + 1];
		struct strbuf *dst[2 * n + 1];
		int *fdp[2 * n + 1];
		nfds_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (jobs[i].out_fd >= 0) {
				pfd[k] = (struct pollfd){ .fd = jobs[i].out_fd, .events = POLLIN };
				dst[k] = &jobs[i].out;
				fdp[k++] = &jobs[i].out_fd;
			}
			if (jobs[i].err_fd >= 0) {
				pfd[k] = (struct pollfd){ .fd = jobs[i].err_fd, .events = POLLIN };
				dst[k] = &jobs[i].err;
				fdp[k++] = &jobs[i].err_fd;
			}
		}
		if (k == 0)
			break;
		double left = deadline - now_s();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		int r = poll(pfd, k, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		for (nfds_t i = 0; i < k; i++) {
			if (!pfd[i].revents)
				continue;
			char buf[8192];
			ssize_t got = read(pfd[i].fd, buf, sizeof(buf));
			if (got > 0) {
				/* A probe is a few kB; cap what we keep so a runaway
				 * remote command cannot exhaust memory. */
				if (dst[i]->len < (8u << 20))
					sb_append(dst[i], buf, (size_t)got);
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(*fdp[i]);
				*fdp[i] = -1;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct run_job *j = &jobs[i];
		if (j->out_fd >= 0) { close(j->out_fd); j->out_fd = -1; }
		if (j->err_fd >= 0) { close(j->err_fd); j->err_fd = -1; }
		if (j->pid <= 0)
			continue;
		int st;
		if (timed_out && waitpid(j->pid, &st, WNOHANG) == 0) {
			kill(j->pid, SIGKILL);
			waitpid(j->pid, &st, 0);
			j->status = -1;
			snprintf(j->why, sizeof(j->why), "timed out after %d s", timeout_s);
		} else {
			if (!timed_out)
				while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
					;
			if (WIFEXITED(st))
				j->status = WEXITSTATUS(st);
			else if (WIFSIGNALED(st))
				j->status = 128 + WTERMSIG(st);
		}
		j->pid = -1;
		if (!j->out.buf)
			sb_append(&j->out, "", 0);
		if (!j->err.buf)
			sb_append(&j->err, "", 0);
	}
}

void run_job_free(struct run_job *job)
{
	if (job->argv) {
		for (size_t i = 0; job->argv[i]; i++)
			free(job->argv[i]);
		free(job->argv);
	}
	sb_free(&job->out);
	sb_free(&job->err);
	if (job->out_fd >= 0)
		close(job->out_fd);
	if (job->err_fd >= 0)
		close(job->err_fd);
	memset(job, 0, sizeof(*job));
	job->out_fd = job->err_fd = -1;
}

char *run_first_line(char *const argv[], int timeout_s)
{
	struct run_job j;
	char *r = NULL;
	if (run_start(&j, argv) == 0) {
		run_wait_all(&j, 1, timeout_s);
		if (j.status == 0 && j.out.buf && j.out.len) {
			size_t n = strcspn(j.out.buf, "\n");
			r = strndup(j.out.buf, n);
		}
	}
	run_job_free(&j);
	return r;
}

char *which(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		char *cand = NULL;
		if (asprintf(&cand, "%.*s/%s", (int)n, path, prog) >= 0) {
			if (n && access(cand, X_OK) == 0)
				return cand;
			free(cand);
		}
		path += n;
		if (*path == ':')
			path++;
	}
	return NULL;
}
