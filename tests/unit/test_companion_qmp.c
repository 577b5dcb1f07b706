/* test_companion_qmp.c - the QMP client (companion/qmp.c): framing of
 * JSON objects in a byte stream (split anywhere, several per read, braces
 * inside strings, garbage, oversize), message classification, the command
 * text, and execute against a scripted fake QEMU on a socketpair (greeting,
 * capabilities, events in between, stale ids, errors, EOF, timeout); plus
 * the migrate driver's pure pieces (companion/migrate.c): the destination's
 * QEMU command line, --lease specs, `ringstoradm --op show --json` parsing
 * and the remote-shell argv.  Linked with libcompanion.a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "companion/migrate.h"
#include "companion/preflight.h"
#include "companion/qmp.h"

/* ------------------------------------------------------------ framing */

static void test_frame_basic(void **state)
{
	(void)state;
	size_t s, e;
	const char *one = "{\"return\": {}}\r\n";
	assert_int_equal(qmp_frame_scan(one, strlen(one), &s, &e), 1);
	assert_int_equal(s, 0);
	assert_int_equal(e, strlen(one) - 2);

	/* leading whitespace, two messages in one read */
	const char *two = " \r\n{\"a\":1}{\"b\":[1,{\"c\":2}]}";
	assert_int_equal(qmp_frame_scan(two, strlen(two), &s, &e), 1);
	assert_int_equal(s, 3);
	assert_memory_equal(two + s, "{\"a\":1}", e - s);
	assert_int_equal(qmp_frame_scan(two + e, strlen(two + e), &s, &e), 1);

	/* braces and quotes inside strings, escaped quotes and backslashes */
	const char *str = "{\"desc\":\"a } b { \\\" } \\\\\",\"x\":\"]\"}";
	assert_int_equal(qmp_frame_scan(str, strlen(str), &s, &e), 1);
	assert_int_equal(e, strlen(str));

	/* empty and whitespace-only input needs more */
	assert_int_equal(qmp_frame_scan("", 0, &s, &e), 0);
	assert_int_equal(qmp_frame_scan(" \r\n", 3, &s, &e), 0);
}

static void test_frame_split_everywhere(void **state)
{
	(void)state;
	const char *msg = "{\"event\":\"STOP\",\"data\":{\"s\":\"}{\\\"\"},\"timestamp\":{\"seconds\":1}}";
	size_t n = strlen(msg);
	for (size_t cut = 0; cut < n; cut++) {
		size_t s, e;
		int r = qmp_frame_scan(msg, cut, &s, &e);
		if (r != 0)
			fail_msg("prefix of %zu bytes: %d, want 0 (need more)", cut, r);
	}
	size_t s, e;
	assert_int_equal(qmp_frame_scan(msg, n, &s, &e), 1);
	assert_int_equal(e, n);
}

static void test_frame_garbage(void **state)
{
	(void)state;
	size_t s, e;
	/* a stray line is dropped through its newline */
	const char *g = "oops\n{\"a\":1}";
	assert_int_equal(qmp_frame_scan(g, strlen(g), &s, &e), -1);
	assert_int_equal(e, 5);
	assert_int_equal(qmp_frame_scan(g + e, strlen(g + e), &s, &e), 1);
	/* unbalanced closer */
	const char *u = "{\"a\":1}}";
	assert_int_equal(qmp_frame_scan(u, strlen(u), &s, &e), 1);
	assert_int_equal(qmp_frame_scan(u + e, strlen(u + e), &s, &e), -1);
	/* an endless object is cut at QMP_MAX_MSG */
	size_t big = QMP_MAX_MSG + 10;
	char *b = malloc(big);
	assert_non_null(b);
	b[0] = '{';
	memset(b + 1, '[', big - 1);
	assert_int_equal(qmp_frame_scan(b, big, &s, &e), -1);
	assert_true(e > 0 && e <= big);
	free(b);
}

static void test_classify_and_command(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		enum qmp_kind kind;
	} c[] = {
		{ "{\"QMP\":{\"version\":{},\"capabilities\":[]}}", QMP_GREETING },
		{ "{\"return\":{},\"id\":1}", QMP_RETURN },
		{ "{\"error\":{\"class\":\"GenericError\",\"desc\":\"x\"}}", QMP_ERROR },
		{ "{\"event\":\"RESUME\",\"timestamp\":{}}", QMP_EVENT },
		{ "{\"foo\":1}", QMP_OTHER },
		{ "[1]", QMP_OTHER },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char err[64];
		struct json_value *v = json_parse(c[i].json, strlen(c[i].json), err, sizeof(err));
		assert_non_null(v);
		assert_int_equal(qmp_classify(v), c[i].kind);
		json_free(v);
	}
	assert_int_equal(qmp_classify(NULL), QMP_OTHER);
	char *t = qmp_command_text("migrate", "{\"uri\":\"tcp:1.2.3.4:5\"}", 7);
	assert_string_equal(t, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:1.2.3.4:5\"},\"id\":7}\r\n");
	free(t);
	t = qmp_command_text("query-\"x", NULL, 1);
	assert_string_equal(t, "{\"execute\":\"query-\\\"x\",\"id\":1}\r\n");
	free(t);
}

/* ---------------------------------------------------- a fake QEMU */

struct fake {
	int fd;
	const char *const *script;  /* per received command: the text to send back ("%u" = its id) */
	size_t n;
	char log[4096];             /* commands received */
};

static void *fake_qemu(void *arg)
{
	struct fake *f = arg;
	const char *greet = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
			    "\"capabilities\": [\"oob\"]}}\r\n";
	if (write(f->fd, greet, strlen(greet)) < 0)
		return NULL;
	char buf[4096];
	size_t have = 0;
	for (size_t k = 0; k < f->n; k++) {
		/* read one command */
		size_t s, e;
		int r;
		while ((r = qmp_frame_scan(buf, have, &s, &e)) != 1) {
			ssize_t got = read(f->fd, buf + have, sizeof(buf) - have - 1);
			if (got <= 0)
				return NULL;
			have += (size_t)got;
		}
		char err[64];
		struct json_value *v = json_parse(buf + s, e - s, err, sizeof(err));
		uint64_t id = 0;
		json_u64(json_get(v, "id"), &id);
		const char *cmd = json_str(json_get(v, "execute"));
		strncat(f->log, cmd ? cmd : "?", sizeof(f->log) - strlen(f->log) - 2);
		strcat(f->log, ";");
		json_free(v);
		memmove(buf, buf + e, have - e);
		have -= e;
		if (!f->script[k]) {
			close(f->fd); /* hang up, as a QEMU that quits */
			f->fd = -1;
			break;
		}
		char out[1024];
		snprintf(out, sizeof(out), f->script[k], (unsigned)id, (unsigned)id, (unsigned)id);
		/* dribble it out in small pieces to exercise reassembly */
		for (size_t off = 0; off < strlen(out); off += 7) {
			size_t m = strlen(out) - off < 7 ? strlen(out) - off : 7;
			if (write(f->fd, out + off, m) < 0)
				return NULL;
		}
	}
	return NULL;
}

static void test_execute_against_fake(void **state)
{
	(void)state;
	static const char *const script[] = {
		/* qmp_capabilities */
		"{\"return\": {}, \"id\": %u}\r\n",
		/* query-status: an event first, a stale id, then ours */
		"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n"
		"{\"return\": {\"status\": \"bogus\"}, \"id\": 999}\r\n"
		"{\"return\": {\"status\": \"postmigrate\", \"running\": false}, \"id\": %u}\r\n",
		/* cont: an error */
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Migration is not finalized yet\"}, \"id\": %u}",
		/* query-migrate, two messages glued without CRLF */
		"{\"event\":\"MIGRATION\",\"data\":{\"status\":\"active\"}}{\"return\":{\"status\":\"completed\","
		"\"downtime\":12,\"ram\":{\"transferred\":1048576}},\"id\":%u}",
		/* quit: hang up instead of answering */
		NULL,
	};
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct fake f = { .fd = sv[1], .script = script, .n = 5 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, fake_qemu, &f), 0);

	/* qmp_open_* connect and then do this handshake; here the transport
	 * is the socketpair, and the greeting is skipped like any message
	 * without our id. */
	struct qmp q;
	memset(&q, 0, sizeof(q));
	q.rfd = q.wfd = sv[0];
	q.relay = -1;
	q.next_id = 1;
	assert_int_equal(qmp_execute(&q, "qmp_capabilities", NULL, NULL, 5000), 0);
	char st[64];
	assert_int_equal(qmp_status(&q, st, sizeof(st), 5000), 0);
	assert_string_equal(st, "postmigrate");
	assert_int_equal(qmp_execute(&q, "cont", NULL, NULL, 5000), QMP_E_CMD);
	assert_non_null(strstr(q.err, "GenericError: Migration is not finalized yet"));
	struct json_value *r = NULL;
	assert_int_equal(qmp_execute(&q, "query-migrate", NULL, &r, 5000), 0);
	assert_string_equal(json_str(json_get(qmp_ret(r), "status")), "completed");
	uint64_t dt = 0;
	assert_true(json_u64(json_get(qmp_ret(r), "downtime"), &dt));
	assert_int_equal(dt, 12);
	json_free(r);
	assert_int_equal(qmp_execute(&q, "quit", NULL, NULL, 5000), QMP_E_IO);
	assert_non_null(strstr(q.err, "closed"));
	pthread_join(th, NULL);
	assert_string_equal(f.log, "qmp_capabilities;query-status;cont;query-migrate;quit;");
	assert_int_equal(f.fd, -1);
	qmp_close(&q);
	assert_int_equal(q.rfd, -1);
}

static void test_execute_timeout(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct qmp q;
	memset(&q, 0, sizeof(q));
	q.rfd = q.wfd = sv[0];
	q.relay = -1;
	q.next_id = 1;
	/* a peer that never answers */
	assert_int_equal(qmp_execute(&q, "query-status", NULL, NULL, 200), QMP_E_IO);
	assert_non_null(strstr(q.err, "timed out"));
	/* a late answer to the timed-out command (id 1) is skipped, the
	 * next command's answer (id 2) is taken */
	const char *late = "{\"return\":{\"status\":\"running\"},\"id\":1}\n{\"return\":{\"status\":\"paused\"},\"id\":2}\n";
	assert_int_equal(write(sv[1], late, strlen(late)), (ssize_t)strlen(late));
	char st[64];
	assert_int_equal(qmp_status(&q, st, sizeof(st), 1000), 0);
	assert_string_equal(st, "paused");
	close(sv[1]);
	qmp_close(&q);
	/* not connected */
	assert_int_equal(qmp_execute(&q, "x", NULL, NULL, 10), QMP_E_IO);
	/* a socket that does not exist: bounded retry, then an error */
	assert_int_equal(qmp_open_unix(&q, "/nonexistent/qmp.sock", 100), -1);
	assert_non_null(strstr(q.err, "/nonexistent/qmp.sock"));
}

/* ------------------------------------------------ migrate's pieces */

static char *joined(char **v)
{
	static char buf[4096];
	buf[0] = '\0';
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			strcat(buf, " ");
		strncat(buf, v[i], sizeof(buf) - strlen(buf) - 2);
	}
	return buf;
}

static void test_dest_argv(void **state)
{
	(void)state;
	const char *src = "/usr/bin/qemu-system-x86_64 -name vm1 -m 64 -S -daemonize -pidfile /run/a.pid "
			  "-drive file=iscsi://10.0.0.1/iqn.x:t/1,if=virtio -qmp unix:/run/a.qmp,server=on,wait=off "
			  "-iscsi header-digest=crc32c,initiator-name=iqn.2026-11.h:a,,b,user=u --incoming tcp:0:1 -nic none";
	char err[256];
	char **v = qemu_dest_argv(src, strlen(src), "/run/b.qmp", "/run/b.pid", "iqn.2026-11.h:b", err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(joined(v),
			    "/usr/bin/qemu-system-x86_64 -name vm1 -m 64 "
			    "-drive file=iscsi://10.0.0.1/iqn.x:t/1,if=virtio -iscsi header-digest=crc32c,user=u -nic none "
			    "-qmp unix:/run/b.qmp,server=on,wait=off -daemonize -pidfile /run/b.pid -incoming defer -S "
			    "-iscsi initiator-name=iqn.2026-11.h:b");
	argv_free(v);
	/* /proc/PID/cmdline form (NUL-separated), no initiator wanted */
	const char nul[] = "qemu\0-m\0" "64\0-qmp\0unix:/a,server=on\0";
	v = qemu_dest_argv(nul, sizeof(nul) - 1, "/b", "/b.pid", NULL, err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(joined(v), "qemu -m 64 -qmp unix:/b,server=on,wait=off -daemonize -pidfile /b.pid -incoming defer -S");
	argv_free(v);
	/* errors */
	assert_null(qemu_dest_argv("qemu 'x", 7, "/b", "/p", NULL, err, sizeof(err)));
	assert_null(qemu_dest_argv("", 0, "/b", "/p", NULL, err, sizeof(err)));
	assert_null(qemu_dest_argv("qemu", 4, "/b,x", "/p", NULL, err, sizeof(err)));
	assert_null(qemu_dest_argv("qemu", 4, "/b", "/p", "iqn.a,b", err, sizeof(err)));

	char *i = qemu_cmdline_initiator(src, strlen(src));
	assert_string_equal(i, "iqn.2026-11.h:a,b");
	free(i);
	assert_null(qemu_cmdline_initiator("qemu -m 1", 9));
	char *p = qemu_cmdline_qmp_path(src, strlen(src));
	assert_string_equal(p, "/run/a.qmp");
	free(p);
	assert_null(qemu_cmdline_qmp_path("qemu -qmp tcp:1:2", 17));
}

static void test_lease_spec(void **state)
{
	(void)state;
	char **v = NULL;
	size_t n = 0;
	assert_int_equal(lease_spec_args("tid=1,lun=2", &v, &n), 0);
	assert_int_equal(lease_spec_args("lld=nfs,path=/srv/a=b.img", &v, &n), 0);
	assert_int_equal(n, 8);
	const char *want[] = { "--tid", "1", "--lun", "2", "--lld", "nfs", "--path", "/srv/a=b.img" };
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(v[i], want[i]);
		free(v[i]);
	}
	free(v);
	static const char *bad[] = { "", "tid", "=1", "tid=", "tid=1,,lun=1", "TID=1", "t d=1", "--tid=1x,lun" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		v = NULL;
		n = 0;
		if (lease_spec_args(bad[k], &v, &n) == 0)
			fail_msg("accepted '%s'", bad[k]);
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
	assert_int_equal(lease_spec_args(NULL, &v, &n), -1);
}

static void test_lease_show(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		int rc;
		bool held;
		const char *holder;
		uint64_t epoch;
	} c[] = {
		{ "{\"leases\": [{\"lld\": \"iscsi\", \"tid\": 1, \"lun\": 1, \"naa\": \"6001\", \"held\": true, "
		  "\"holder\": \"iqn.a\", \"epoch\": 3}]}\n", 0, true, "iqn.a", 3 },
		{ "{\"leases\": [{\"held\": false, \"holder\": \"iqn.a\", \"epoch\": 4}]}", 0, false, "", 4 },
		{ "{\"leases\": []}", 0, false, "", 0 },
		{ "{\"holder\": \"10.0.0.2\", \"epoch\": 9}", 0, true, "10.0.0.2", 9 },
		{ "{\"lease\": {\"holder\": null, \"epoch\": 2}}", 0, false, "", 2 },
		{ "[{\"holder\": \"h\", \"epoch\": 1, \"state\": \"free\"}]", 0, false, "", 1 },
		{ "{\"holder\": \"\", \"epoch\": 1}", 0, false, "", 1 },
		{ "Lease: iscsi tid 1", -1, false, "", 0 },
		{ "", -1, false, "", 0 },
	};
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		struct lease_info li;
		char err[128];
		int r = lease_parse_show(c[k].json, strlen(c[k].json), &li, err, sizeof(err));
		if (r != c[k].rc)
			fail_msg("case %zu: rc %d", k, r);
		if (r)
			continue;
		assert_int_equal(li.held, c[k].held);
		assert_string_equal(li.holder, c[k].holder);
		assert_int_equal(li.epoch, c[k].epoch);
	}
}

static void test_host_argv(void **state)
{
	(void)state;
	char *words[] = { (char *)"ringstoradm", (char *)"--holder", (char *)"iqn.a b'c" };
	char **v = host_argv("ip netns exec", "h1", words, 3);
	assert_string_equal(joined(v), "ip netns exec h1 ringstoradm --holder iqn.a b'c");
	assert_null(v[7]);
	argv_free(v);
	v = host_argv("ssh -o BatchMode=yes", "app", words, 3);
	assert_non_null(v);
	assert_string_equal(v[0], "ssh");
	assert_string_equal(v[3], "app");
	assert_string_equal(v[4], "ringstoradm --holder 'iqn.a b'\\''c'");
	assert_null(v[5]);
	argv_free(v);
	v = host_argv("ssh", PREFLIGHT_LOCAL_HOST, words, 3);
	assert_string_equal(joined(v), "ringstoradm --holder iqn.a b'c");
	argv_free(v);
	assert_null(host_argv("'unbalanced", "h", words, 3));
	assert_null(host_argv("", "h", words, 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_basic),
		cmocka_unit_test(test_frame_split_everywhere),
		cmocka_unit_test(test_frame_garbage),
		cmocka_unit_test(test_classify_and_command),
		cmocka_unit_test(test_execute_against_fake),
		cmocka_unit_test(test_execute_timeout),
		cmocka_unit_test(test_dest_argv),
		cmocka_unit_test(test_lease_spec),
		cmocka_unit_test(test_lease_show),
		cmocka_unit_test(test_host_argv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
