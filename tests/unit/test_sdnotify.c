/* test_sdnotify.c - the hand-written sd_notify protocol (core/sdnotify.c)
 * against real AF_UNIX datagram sockets, path and abstract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/sdnotify.h"

/* Bind a datagram socket where $NOTIFY_SOCKET will point. */
static int listen_at(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (name[0] == '@') {
		memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	} else {
		unlink(name);
		strcpy(sa.sun_path, name);
		len = sizeof(sa);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void recv_msg(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = 0;
}

static void test_unset_is_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_false(rs_notify_enabled());
	assert_int_equal(rs_notify("READY=1"), 0);
	assert_int_equal(rs_notify_ready("x"), 0);
	assert_int_equal(rs_notify_stopping(NULL), 0);
	assert_int_equal(rs_notify_reloading(NULL), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(rs_notify("READY=1"), 0);
}

static void test_path_socket(void **state)
{
	char path[64], buf[512];
	(void)state;
	snprintf(path, sizeof(path), "/tmp/rs-sdnotify-%d.sock", (int)getpid());
	int fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_true(rs_notify_enabled());
	assert_int_equal(rs_notify_ready("serving 2 portals"), 1);
	recv_msg(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=serving 2 portals");
	assert_int_equal(rs_notify_stopping(NULL), 1);
	recv_msg(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	close(fd);
	unlink(path);
	/* Nobody listening any more: an error, never a crash or a hang. */
	assert_true(rs_notify("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64], buf[512];
	(void)state;
	snprintf(name, sizeof(name), "@rs-sdnotify-test-%d", (int)getpid());
	int fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(rs_notify_reloading("reloading /etc/ringstor/ringstor.conf"), 1);
	recv_msg(fd, buf, sizeof(buf));
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_non_null(strstr(buf, "\nSTATUS=reloading /etc/ringstor/ringstor.conf"));
	/* MONOTONIC_USEC is a plain decimal number. */
	char *p = buf + 27;
	assert_true(*p >= '1' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		p++;
	assert_int_equal(*p, '\n');
	assert_int_equal(rs_notifyf("STATUS=%d sessions", 7), 1);
	recv_msg(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=7 sessions");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_status_is_one_line(void **state)
{
	char name[64], buf[512];
	(void)state;
	snprintf(name, sizeof(name), "@rs-sdnotify-inj-%d", (int)getpid());
	int fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	/* A status built from an error message must not smuggle in MAINPID= etc. */
	assert_int_equal(rs_notify_ready("bad line\nMAINPID=1"), 1);
	recv_msg(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=bad line");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_bad_addresses(void **state)
{
	char longp[200];
	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(rs_notify("READY=1"), -EAFNOSUPPORT);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(rs_notify("READY=1"), -EINVAL);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	setenv("NOTIFY_SOCKET", longp, 1);
	assert_int_equal(rs_notify("READY=1"), -EINVAL);
	longp[0] = '@';
	setenv("NOTIFY_SOCKET", longp, 1);
	assert_int_equal(rs_notify("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "/tmp/x", 1);
	assert_int_equal(rs_notify(""), -EINVAL);
	assert_int_equal(rs_notify(NULL), -EINVAL);
	/* Too long for the 4 KiB format buffer. */
	char *big = malloc(5000);
	assert_non_null(big);
	memset(big, 'x', 4999);
	big[4999] = 0;
	assert_int_equal(rs_notifyf("STATUS=%s", big), -ENOMEM);
	free(big);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset_is_noop),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_status_is_one_line),
		cmocka_unit_test(test_bad_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
