/* qmp.c - see qmp.h. */
#include "companion/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int qmp_frame_scan(const char *buf, size_t len, size_t *start, size_t *end)
{
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	*start = i;
	*end = i;
	if (i == len)
		return 0;
	if (buf[i] != '{') {
		/* Not an object: drop through the end of this line so one stray
		 * line cannot wedge the stream. */
		while (i < len && buf[i] != '\n')
			i++;
		*end = i < len ? i + 1 : len;
		return -1;
	}
	int depth = 0;
	bool in_str = false, esc = false;
	for (size_t k = i; k < len; k++) {
		if (k - i >= QMP_MAX_MSG) {
			*end = k;
			return -1;
		}
		char c = buf[k];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0) {
				*end = k + 1;
				return 1;
			}
			if (depth < 0) {
				*end = k + 1;
				return -1;
			}
		}
	}
	if (len - i >= QMP_MAX_MSG) {
		*end = len;
		return -1;
	}
	return 0;
}

enum qmp_kind qmp_classify(const struct json_value *msg)
{
	if (!msg || msg->type != JSON_OBJECT)
		return QMP_OTHER;
	if (json_get(msg, "QMP"))
		return QMP_GREETING;
	if (json_get(msg, "return"))
		return QMP_RETURN;
	if (json_get(msg, "error"))
		return QMP_ERROR;
	if (json_get(msg, "event"))
		return QMP_EVENT;
	return QMP_OTHER;
}

char *qmp_command_text(const char *cmd, const char *args_json, unsigned id)
{
	struct strbuf sb = {0};
	sb_puts(&sb, "{\"execute\":");
	json_quote(&sb, cmd);
	if (args_json && *args_json) {
		sb_puts(&sb, ",\"arguments\":");
		sb_puts(&sb, args_json);
	}
	sb_printf(&sb, ",\"id\":%u}\r\n", id);
	if (sb.oom) {
		sb_free(&sb);
		return NULL;
	}
	return sb.buf;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void qmp_init(struct qmp *q)
{
	memset(q, 0, sizeof(*q));
	q->rfd = q->wfd = -1;
	q->relay = -1;
	q->next_id = 1;
}

static int write_all(struct qmp *q, const char *buf, size_t len, long deadline)
{
	while (len) {
		long left = deadline - now_ms();
		if (left <= 0) {
			snprintf(q->err, sizeof(q->err), "timed out sending to QEMU");
			return QMP_E_IO;
		}
		struct pollfd p = { .fd = q->wfd, .events = POLLOUT };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = write(q->wfd, buf, len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(q->err, sizeof(q->err), "sending to QEMU: %s", strerror(errno));
			return QMP_E_IO;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Next complete message, or QMP_E_IO on EOF, error or deadline. */
static int read_message(struct qmp *q, struct json_value **out, long deadline)
{
	for (;;) {
		size_t s, e;
		int r = q->in.len ? qmp_frame_scan(q->in.buf, q->in.len, &s, &e) : 0;
		if (r != 0) {
			struct json_value *v = NULL;
			if (r == 1) {
				char perr[128];
				v = json_parse(q->in.buf + s, e - s, perr, sizeof(perr));
				if (!v)
					snprintf(q->err, sizeof(q->err), "QEMU sent malformed JSON: %s", perr);
			}
			/* consume [0, e) */
			memmove(q->in.buf, q->in.buf + e, q->in.len - e);
			q->in.len -= e;
			q->in.buf[q->in.len] = '\0';
			if (v) {
				*out = v;
				return 0;
			}
			continue; /* skip garbage and malformed messages */
		}
		long left = deadline - now_ms();
		if (left <= 0) {
			snprintf(q->err, sizeof(q->err), "timed out waiting for QEMU");
			return QMP_E_IO;
		}
		struct pollfd p = { .fd = q->rfd, .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno != EINTR) {
			snprintf(q->err, sizeof(q->err), "poll: %s", strerror(errno));
			return QMP_E_IO;
		}
		if (pr <= 0)
			continue;
		char buf[16384];
		ssize_t n = read(q->rfd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(q->err, sizeof(q->err), "QEMU closed the QMP connection%s%s", n < 0 ? ": " : "",
				 n < 0 ? strerror(errno) : "");
			return QMP_E_IO;
		}
		sb_append(&q->in, buf, (size_t)n);
		if (q->in.oom) {
			snprintf(q->err, sizeof(q->err), "out of memory reading QMP");
			return QMP_E_IO;
		}
	}
}

int qmp_execute(struct qmp *q, const char *cmd, const char *args_json, struct json_value **reply,
		int timeout_ms)
{
	if (reply)
		*reply = NULL;
	if (q->rfd < 0) {
		snprintf(q->err, sizeof(q->err), "not connected");
		return QMP_E_IO;
	}
	long deadline = now_ms() + timeout_ms;
	unsigned id = q->next_id++;
	char *text = qmp_command_text(cmd, args_json, id);
	if (!text) {
		snprintf(q->err, sizeof(q->err), "out of memory");
		return QMP_E_IO;
	}
	int r = write_all(q, text, strlen(text), deadline);
	free(text);
	if (r)
		return r;
	for (;;) {
		struct json_value *m = NULL;
		r = read_message(q, &m, deadline);
		if (r)
			return r;
		enum qmp_kind k = qmp_classify(m);
		uint64_t got_id = 0;
		/* Answers to commands we gave up on (timed out) carry their old
		 * id: skip them as we skip events. */
		if ((k == QMP_RETURN || k == QMP_ERROR) && json_u64(json_get(m, "id"), &got_id) && got_id == id) {
			if (k == QMP_ERROR) {
				const struct json_value *e = json_get(m, "error");
				snprintf(q->err, sizeof(q->err), "%s: %s: %s", cmd,
					 json_str(json_get(e, "class")) ? json_str(json_get(e, "class")) : "Error",
					 json_str(json_get(e, "desc")) ? json_str(json_get(e, "desc")) : "?");
				json_free(m);
				return QMP_E_CMD;
			}
			if (reply)
				*reply = m;
			else
				json_free(m);
			return 0;
		}
		json_free(m);
	}
}

const struct json_value *qmp_ret(const struct json_value *reply)
{
	return json_get(reply, "return");
}

int qmp_status(struct qmp *q, char *buf, size_t len, int timeout_ms)
{
	struct json_value *r = NULL;
	int rc = qmp_execute(q, "query-status", NULL, &r, timeout_ms);
	if (rc)
		return rc;
	const char *s = json_str(json_get(qmp_ret(r), "status"));
	snprintf(buf, len, "%s", s ? s : "unknown");
	json_free(r);
	return 0;
}

static int handshake(struct qmp *q, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	for (;;) {
		struct json_value *m = NULL;
		if (read_message(q, &m, deadline))
			return -1;
		enum qmp_kind k = qmp_classify(m);
		json_free(m);
		if (k == QMP_GREETING)
			break;
	}
	long left = deadline - now_ms();
	if (qmp_execute(q, "qmp_capabilities", NULL, NULL, left > 1000 ? (int)left : 1000))
		return -1;
	return 0;
}

int qmp_open_unix(struct qmp *q, const char *path, int timeout_ms)
{
	qmp_init(q);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(q->err, sizeof(q->err), "QMP socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	long deadline = now_ms() + timeout_ms;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(q->err, sizeof(q->err), "socket: %s", strerror(errno));
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			q->rfd = q->wfd = fd;
			break;
		}
		int e = errno;
		close(fd);
		if (now_ms() >= deadline || (e != ENOENT && e != ECONNREFUSED && e != EAGAIN)) {
			snprintf(q->err, sizeof(q->err), "connect %s: %s", path, strerror(e));
			return -1;
		}
		usleep(50 * 1000);
	}
	long left = deadline - now_ms();
	if (handshake(q, left > 2000 ? (int)left : 2000) < 0) {
		char e[sizeof(q->err)];
		snprintf(e, sizeof(e), "%s", q->err);
		qmp_close(q);
		snprintf(q->err, sizeof(q->err), "QMP handshake on %.200s: %.280s", path, e);
		return -1;
	}
	return 0;
}

int qmp_open_cmd(struct qmp *q, char *const argv[], int timeout_ms)
{
	qmp_init(q);
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0) {
		snprintf(q->err, sizeof(q->err), "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		snprintf(q->err, sizeof(q->err), "pipe: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(q->err, sizeof(q->err), "fork: %s", strerror(errno));
		close(in[0]); close(in[1]); close(out[0]); close(out[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	q->wfd = in[1];
	q->rfd = out[0];
	q->relay = pid;
	if (handshake(q, timeout_ms) < 0) {
		char e[sizeof(q->err)];
		snprintf(e, sizeof(e), "%s", q->err);
		qmp_close(q);
		snprintf(q->err, sizeof(q->err), "QMP handshake through %.200s: %.280s", argv[0], e);
		return -1;
	}
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (q->wfd >= 0 && q->wfd != q->rfd)
		close(q->wfd);
	if (q->rfd >= 0)
		close(q->rfd);
	q->rfd = q->wfd = -1;
	if (q->relay > 0) {
		/* The relay exits when its stdin closes; give it a moment. */
		int st;
		for (int i = 0; i < 40; i++) {
			if (waitpid(q->relay, &st, WNOHANG) != 0)
				goto reaped;
			usleep(25 * 1000);
		}
		kill(q->relay, SIGTERM);
		waitpid(q->relay, &st, 0);
	}
reaped:
	q->relay = -1;
	sb_free(&q->in);
}

int qmp_relay(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "qmp-relay: socket path too long\n");
		return 2;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "qmp-relay: connect %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
	const int dst[2] = { fd, 1 };
	char buf[16384];
	for (;;) {
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto out;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(dst[i], buf + off, (size_t)(n - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					goto out;
				off += w;
			}
		}
	}
out:
	close(fd);
	return 0;
}
