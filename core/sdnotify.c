/* sdnotify.c - sd_notify(3) protocol without libsystemd.
 *
 * Protocol (sd_notify(3), "Notes"): $NOTIFY_SOCKET names an AF_UNIX socket of
 * type SOCK_DGRAM; a leading '@' means the Linux abstract namespace (the '@'
 * becomes a NUL byte and the name is not NUL-terminated), a leading '/' a
 * file-system path.  The message is one datagram of newline-separated
 * assignments.  systemd reads the sender's credentials from the socket
 * (SO_PASSCRED on its side), so nothing but the text is sent; with the
 * default NotifyAccess=main it must come from the main PID, which any thread
 * of ringstord is. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/sdnotify.h"

#define NOTIFY_MAX 4096

bool rs_notify_enabled(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	return e && *e;
}

int rs_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t plen, slen;
	ssize_t n;
	int fd, err = 0;

	if (!path || !*path)
		return 0;
	if (!state || !(slen = strlen(state)))
		return -EINVAL;
	plen = strlen(path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (path[0] == '@') {
		/* Abstract: sun_path[0] = 0, the rest of the name follows and the
		 * address length counts exactly its bytes (no terminator). */
		if (plen < 2 || plen > sizeof(sa.sun_path))
			return -EINVAL;
		memcpy(sa.sun_path + 1, path + 1, plen - 1);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	} else if (path[0] == '/') {
		if (plen >= sizeof(sa.sun_path))
			return -EINVAL;
		memcpy(sa.sun_path, path, plen);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	} else {
		/* "vsock:CID:PORT" (systemd >= 254, for VMs) is not used on a host. */
		return -EAFNOSUPPORT;
	}

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		n = sendto(fd, state, slen, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != slen)
		err = -EMSGSIZE;        /* datagrams are all or nothing; be safe */
	close(fd);
	return err ? err : 1;
}

int rs_notifyf(const char *fmt, ...)
{
	char buf[NOTIFY_MAX];
	va_list ap;
	int n;

	if (!rs_notify_enabled())
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(buf))
		return -ENOMEM;
	return rs_notify(buf);
}

/* A STATUS= value is one line: cut it at the first newline so that a message
 * from an error string cannot inject further assignments. */
static int status_len(const char *status)
{
	size_t n = strcspn(status, "\n");
	return n > 1024 ? 1024 : (int)n;
}

int rs_notify_ready(const char *status)
{
	if (!status)
		return rs_notify("READY=1");
	return rs_notifyf("READY=1\nSTATUS=%.*s", status_len(status), status);
}

int rs_notify_reloading(const char *status)
{
	struct timespec ts;
	unsigned long long usec;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
	if (!status)
		return rs_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu", usec);
	return rs_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%.*s", usec,
			  status_len(status), status);
}

int rs_notify_stopping(const char *status)
{
	if (!status)
		return rs_notify("STOPPING=1");
	return rs_notifyf("STOPPING=1\nSTATUS=%.*s", status_len(status), status);
}
