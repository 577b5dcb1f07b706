/* test_control_proto.c - control socket wire format (core/control_proto.c):
 * round trips, escaping, and malformed requests from a hostile client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/control_proto.h"

static char buf[CTL_REQ_MAX + 64];

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(ctl_mode_parse("target"), CTL_MODE_TARGET);
	assert_int_equal(ctl_mode_parse("logicalunit"), CTL_MODE_LU);
	assert_int_equal(ctl_mode_parse("lu"), CTL_MODE_LU);
	assert_int_equal(ctl_mode_parse("system"), CTL_MODE_SYS);
	assert_int_equal(ctl_mode_parse("sys"), CTL_MODE_SYS);
	assert_int_equal(ctl_mode_parse("conn"), CTL_MODE_CONN);
	assert_int_equal(ctl_mode_parse("session"), CTL_MODE_SESSION);
	assert_int_equal(ctl_mode_parse("bogus"), CTL_MODE_NONE);
	assert_int_equal(ctl_mode_parse(NULL), CTL_MODE_NONE);
	assert_int_equal(ctl_op_parse("new"), CTL_OP_NEW);
	assert_int_equal(ctl_op_parse("delete"), CTL_OP_DELETE);
	assert_int_equal(ctl_op_parse("show"), CTL_OP_SHOW);
	assert_int_equal(ctl_op_parse("bind"), CTL_OP_BIND);
	assert_int_equal(ctl_op_parse("unbind"), CTL_OP_UNBIND);
	assert_int_equal(ctl_op_parse("update"), CTL_OP_UPDATE);
	assert_int_equal(ctl_op_parse("frobnicate"), CTL_OP_NONE);
	for (int m = CTL_MODE_TARGET; m <= CTL_MODE_SESSION; m++)
		assert_int_equal(ctl_mode_parse(ctl_mode_name((enum ctl_mode)m)), m);
	for (int o = CTL_OP_NEW; o <= CTL_OP_UPDATE; o++)
		assert_int_equal(ctl_op_parse(ctl_op_name((enum ctl_op)o)), o);
}

static void test_roundtrip(void **state)
{
	struct ctl_request a, b;
	char err[256];
	int len;
	(void)state;

	ctl_request_init(&a);
	a.mode = CTL_MODE_LU;
	a.op = CTL_OP_NEW;
	a.has_tid = true;
	a.tid = 2147483647;
	a.has_lun = true;
	a.lun = 16383;
	a.has_sid = true;
	a.sid = UINT64_MAX;
	a.has_blocksize = true;
	a.blocksize = 4096;
	a.force = true;
	a.json = true;
	strcpy(a.targetname, "iqn.2026-11.io.ringstor:demo");
	/* a path with the characters that could break the line format */
	strcpy(a.backing_store, "/tmp/we ird%20\nname=\r\t\x7f\xc3\xa9.img");
	strcpy(a.bstype, "rdwr");
	strcpy(a.initiator_address, "[::1]/128");
	strcpy(a.initiator_name, "iqn.1994-05.com.redhat:abc");
	strcpy(a.params, "readonly=1,size=1G");

	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal((size_t)len, strlen(buf));
	assert_int_equal(ctl_request_complete(buf, (size_t)len), (size_t)len);
	/* the encoding never contains a raw control character in a value */
	assert_non_null(strstr(buf, "%0A"));
	assert_non_null(strstr(buf, "%25"));
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.mode, a.mode);
	assert_int_equal(b.op, a.op);
	assert_true(b.has_tid);
	assert_int_equal(b.tid, a.tid);
	assert_true(b.has_lun);
	assert_true(b.lun == a.lun);
	assert_true(b.has_sid);
	assert_true(b.sid == a.sid);
	assert_true(b.has_blocksize);
	assert_int_equal(b.blocksize, 4096);
	assert_true(b.force);
	assert_true(b.json);
	assert_string_equal(b.targetname, a.targetname);
	assert_string_equal(b.backing_store, a.backing_store);
	assert_string_equal(b.bstype, a.bstype);
	assert_string_equal(b.initiator_address, a.initiator_address);
	assert_string_equal(b.initiator_name, a.initiator_name);
	assert_string_equal(b.params, a.params);
}

/* the account / session-delete / dump fields */
static void test_roundtrip_accounts(void **state)
{
	struct ctl_request a, b;
	char err[256];
	int len;
	(void)state;

	ctl_request_init(&a);
	a.mode = CTL_MODE_ACCOUNT;
	a.op = CTL_OP_NEW;
	strcpy(a.user, "alice");
	strcpy(a.password, "p%ss\"w=rd \x7f");
	a.outgoing = true;
	a.has_cid = true;
	a.cid = 65535;
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.mode, CTL_MODE_ACCOUNT);
	assert_int_equal(b.op, CTL_OP_NEW);
	assert_string_equal(b.user, "alice");
	assert_string_equal(b.password, a.password);
	assert_true(b.outgoing);
	assert_true(b.has_cid);
	assert_int_equal(b.cid, 65535);

	/* cid 0 is a real value */
	ctl_request_init(&a);
	a.mode = CTL_MODE_CONN;
	a.op = CTL_OP_DELETE;
	a.has_cid = true;
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_true(b.has_cid);
	assert_int_equal(b.cid, 0);
	assert_false(b.outgoing);
	assert_string_equal(b.user, "");

	assert_int_equal(ctl_mode_parse("account"), CTL_MODE_ACCOUNT);
	assert_string_equal(ctl_mode_name(CTL_MODE_ACCOUNT), "account");
	assert_int_equal(ctl_op_parse("dump"), CTL_OP_DUMP);
	assert_string_equal(ctl_op_name(CTL_OP_DUMP), "dump");
	const char *req = CTL_MAGIC "\nmode=sys\nop=dump\n\n";
	assert_int_equal(ctl_request_decode(req, strlen(req), &b, err, sizeof(err)), 0);
	assert_int_equal(b.op, CTL_OP_DUMP);
}

static void test_minimal(void **state)
{
	struct ctl_request r;
	char err[256];
	const char *req = CTL_MAGIC "\nmode=sys\nop=show\n\n";
	(void)state;

	assert_int_equal(ctl_request_decode(req, strlen(req), &r, err, sizeof(err)), 0);
	assert_int_equal(r.mode, CTL_MODE_SYS);
	assert_int_equal(r.op, CTL_OP_SHOW);
	assert_false(r.has_tid);
	assert_false(r.has_lun);
	assert_false(r.force);
	assert_string_equal(r.targetname, "");
}

static void test_encode_overflow(void **state)
{
	struct ctl_request r;
	char small[32];
	(void)state;

	ctl_request_init(&r);
	r.mode = CTL_MODE_TARGET;
	r.op = CTL_OP_SHOW;
	memset(r.backing_store, '\n', sizeof(r.backing_store) - 1);  /* 3x when escaped */
	assert_int_equal(ctl_request_encode(&r, small, sizeof(small)), -1);
	assert_true(ctl_request_encode(&r, buf, sizeof(buf)) > 0);
	assert_int_equal(ctl_request_encode(&r, NULL, 0), -1);
}

static void expect_bad(const char *req, size_t len, const char *needle)
{
	struct ctl_request r;
	char err[256] = "";

	if (ctl_request_decode(req, len, &r, err, sizeof(err)) == 0)
		fail_msg("accepted: %.*s", (int)len, req);
	if (needle && !strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
}

#define BAD(s, needle) expect_bad(s, sizeof(s) - 1, needle)

static void test_malformed(void **state)
{
	(void)state;
	BAD("", "header");
	BAD("\n\n", "header");
	BAD("ringstor-ctl 2\nmode=sys\nop=show\n\n", "header");
	BAD(CTL_MAGIC, "header");
	BAD(CTL_MAGIC "\nmode=sys\nop=show\n", "terminated");
	BAD(CTL_MAGIC "\nmode=sys\nop=show", "terminated");
	BAD(CTL_MAGIC "\nmode=sys\nop=show\n\nextra", "trailing");
	BAD(CTL_MAGIC "\nmode=sys\n\n", "missing operation");
	BAD(CTL_MAGIC "\nop=show\n\n", "missing mode");
	BAD(CTL_MAGIC "\nmode=bogus\nop=show\n\n", "unknown mode");
	BAD(CTL_MAGIC "\nmode=sys\nop=bogus\n\n", "unknown operation");
	BAD(CTL_MAGIC "\nmode=sys\nop=show\nwhat=1\n\n", "unknown request field 'what'");
	BAD(CTL_MAGIC "\nmode=sys\nop=show\nnoequals\n\n", "no '='");
	BAD(CTL_MAGIC "\nmode=sys\nop=show\nmode=sys\n\n", "duplicate");
	BAD(CTL_MAGIC "\nmode=target\nop=show\ntid=0\n\n", "invalid tid");
	BAD(CTL_MAGIC "\nmode=target\nop=show\ntid=-1\n\n", "invalid tid");
	BAD(CTL_MAGIC "\nmode=target\nop=show\ntid=2147483648\n\n", "invalid tid");
	BAD(CTL_MAGIC "\nmode=target\nop=show\ntid=1x\n\n", "invalid tid");
	BAD(CTL_MAGIC "\nmode=target\nop=show\ntid=\n\n", "invalid tid");
	BAD(CTL_MAGIC "\nmode=target\nop=show\ntid= 1\n\n", "invalid tid");
	BAD(CTL_MAGIC "\nmode=lu\nop=new\nlun=18446744073709551616\n\n", "invalid lun");
	BAD(CTL_MAGIC "\nmode=lu\nop=new\nblocksize=4294967296\n\n", "invalid blocksize");
	BAD(CTL_MAGIC "\nmode=target\nop=delete\nforce=yes\n\n", "boolean");
	BAD(CTL_MAGIC "\nmode=target\nop=new\ntargetname=a%G1\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=target\nop=new\ntargetname=a%0\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=target\nop=new\ntargetname=a%\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=target\nop=new\ntargetname=a%00b\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=target\nop=new\ntargetname=a\tb\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=target\nop=new\ntargetname=a\rb\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=target\nop=new\nbstype=0123456789abcdef\n\n", "too long");
	BAD(CTL_MAGIC "\nmode=sys\nop=show\n=x\n\n", "unknown request field");
	BAD(CTL_MAGIC "\nmode=conn\nop=delete\ncid=65536\n\n", "invalid cid");
	BAD(CTL_MAGIC "\nmode=conn\nop=delete\ncid=x\n\n", "invalid cid");
	BAD(CTL_MAGIC "\nmode=account\nop=bind\noutgoing=2\n\n", "boolean");
	/* an embedded NUL */
	expect_bad(CTL_MAGIC "\nmode=sys\0\nop=show\n\n", sizeof(CTL_MAGIC) + 19, "NUL");
}

static void test_too_large(void **state)
{
	struct ctl_request r;
	char err[128];
	char *big = malloc(CTL_REQ_MAX + 10);
	(void)state;

	assert_non_null(big);
	memset(big, 'a', CTL_REQ_MAX + 10);
	assert_int_equal(ctl_request_decode(big, CTL_REQ_MAX + 10, &r, err, sizeof(err)), -1);
	/* a single value longer than any field */
	int n = snprintf(big, CTL_REQ_MAX, CTL_MAGIC "\nmode=lu\nop=new\nbacking-store=");
	memset(big + n, 'p', CTL_PATH_MAX + 10);
	n += CTL_PATH_MAX + 10;
	memcpy(big + n, "\n\n", 2);
	assert_int_equal(ctl_request_decode(big, (size_t)n + 2, &r, err, sizeof(err)), -1);
	free(big);
}

static void test_complete(void **state)
{
	(void)state;
	assert_int_equal(ctl_request_complete("", 0), 0);
	assert_int_equal(ctl_request_complete("a\n", 2), 0);
	assert_int_equal(ctl_request_complete("a\n\n", 3), 3);
	assert_int_equal(ctl_request_complete("a\n\nb", 4), 3);
}

/* Random garbage must be refused without crashing (run under ASan). */
static void test_garbage(void **state)
{
	struct ctl_request r;
	char err[128];
	unsigned seed = 12345;
	(void)state;

	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(rand_r(&seed) % 200);
		size_t mlen = strlen(CTL_MAGIC);
		/* half the time start with a valid header to get past it */
		size_t start = 0;
		if (iter & 1) {
			memcpy(buf, CTL_MAGIC "\n", mlen + 1);
			start = mlen + 1;
		}
		for (size_t i = start; i < start + len; i++) {
			static const char alphabet[] = "mode=op\ntid1%0A=target\nshow\n\n";
			buf[i] = (iter & 2) ? (char)rand_r(&seed)
					    : alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		}
		(void)ctl_request_decode(buf, start + len, &r, err, sizeof(err));
		(void)ctl_request_complete(buf, start + len);
	}
}

static void test_status(void **state)
{
	char line[128], msg[64];
	int code = -1, n;
	(void)state;

	n = ctl_status_format(line, sizeof(line), 0, "ok");
	assert_string_equal(line, "status 0 ok\n");
	assert_int_equal(n, (int)strlen(line));
	assert_int_equal(ctl_status_parse(line, (size_t)n, &code, msg, sizeof(msg)), 0);
	assert_int_equal(code, 0);
	assert_string_equal(msg, "ok");

	/* negative errno is normalised, newlines are flattened */
	n = ctl_status_format(line, sizeof(line), -ENOENT, "can't find\nthe target 5");
	assert_string_equal(line, "status 2 can't find the target 5\n");
	assert_int_equal(ctl_status_parse(line, (size_t)n, &code, msg, sizeof(msg)), 0);
	assert_int_equal(code, ENOENT);
	assert_string_equal(msg, "can't find the target 5");

	/* truncation keeps the line well formed */
	char tiny[16];
	n = ctl_status_format(tiny, sizeof(tiny), 22, "a very long message indeed");
	assert_true(n > 0 && (size_t)n < sizeof(tiny));
	assert_int_equal(tiny[n - 1], '\n');
	assert_int_equal(ctl_status_parse(tiny, (size_t)n, &code, NULL, 0), 0);
	assert_int_equal(code, 22);

	/* no message */
	assert_int_equal(ctl_status_parse("status 17\n", 10, &code, msg, sizeof(msg)), 0);
	assert_int_equal(code, 17);
	assert_string_equal(msg, "");

	/* malformed status lines */
	assert_int_equal(ctl_status_parse("", 0, &code, msg, sizeof(msg)), -1);
	assert_int_equal(ctl_status_parse("state 0 ok\n", 11, &code, msg, sizeof(msg)), -1);
	assert_int_equal(ctl_status_parse("status x ok\n", 12, &code, msg, sizeof(msg)), -1);
	assert_int_equal(ctl_status_parse("status 12x ok\n", 14, &code, msg, sizeof(msg)), -1);
	assert_int_equal(ctl_status_parse("status 99999999999 ok\n", 22, &code, msg, sizeof(msg)), -1);
	assert_int_equal(ctl_status_parse("status -1 ok\n", 13, &code, msg, sizeof(msg)), -1);
}

static void test_roundtrip_exports(void **state)
{
	struct ctl_request a, b;
	char err[256];
	int len;
	(void)state;

	assert_int_equal(ctl_mode_parse("export"), CTL_MODE_EXPORT);
	assert_int_equal(ctl_mode_parse("lock"), CTL_MODE_LOCK);
	assert_string_equal(ctl_mode_name(CTL_MODE_EXPORT), "export");
	assert_string_equal(ctl_mode_name(CTL_MODE_LOCK), "lock");

	/* --path/--clients form, with an id at the top of its range */
	ctl_request_init(&a);
	a.mode = CTL_MODE_EXPORT;
	a.op = CTL_OP_NEW;
	a.has_export_id = true;
	a.export_id = UINT32_MAX;
	strcpy(a.path, "/srv/with blank/%25\x01");
	strcpy(a.clients, "10.0.0.0/8(rw,no_root_squash) *(ro)");
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_true(len > 0);
	assert_non_null(strstr(buf, "\nexport-id=4294967295\n"));
	assert_non_null(strstr(buf, "\npath=/srv/with blank/%2525%01\n"));
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.mode, CTL_MODE_EXPORT);
	assert_int_equal(b.op, CTL_OP_NEW);
	assert_true(b.has_export_id);
	assert_true(b.export_id == UINT32_MAX);
	assert_string_equal(b.path, a.path);
	assert_string_equal(b.clients, a.clients);
	assert_string_equal(b.export_line, "");

	/* exports(5) line form; export id 0 is a value too */
	ctl_request_init(&a);
	a.mode = CTL_MODE_EXPORT;
	a.op = CTL_OP_UPDATE;
	a.has_export_id = true;
	strcpy(a.export_line, "\"/srv/iso\" *(ro,insecure)\n#x");
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.op, CTL_OP_UPDATE);
	assert_true(b.has_export_id);
	assert_int_equal(b.export_id, 0);
	assert_string_equal(b.export_line, a.export_line);
	assert_string_equal(b.path, "");
	assert_string_equal(b.clients, "");

	/* the longest line of each field fits in a request */
	ctl_request_init(&a);
	a.mode = CTL_MODE_EXPORT;
	a.op = CTL_OP_NEW;
	memset(a.path, 'p', sizeof(a.path) - 1);
	a.path[0] = '/';
	memset(a.clients, 'c', sizeof(a.clients) - 1);
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(strlen(b.path), sizeof(b.path) - 1);
	assert_int_equal(strlen(b.clients), sizeof(b.clients) - 1);
	ctl_request_init(&a);
	a.mode = CTL_MODE_EXPORT;
	a.op = CTL_OP_NEW;
	memset(a.export_line, 'l', sizeof(a.export_line) - 1);
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(strlen(b.export_line), sizeof(b.export_line) - 1);

	/* lock mode travels (the daemon answers "not implemented yet") */
	ctl_request_init(&a);
	a.mode = CTL_MODE_LOCK;
	a.op = CTL_OP_SHOW;
	len = ctl_request_encode(&a, buf, sizeof(buf));
	assert_int_equal(ctl_request_decode(buf, (size_t)len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.mode, CTL_MODE_LOCK);
}

static void test_malformed_exports(void **state)
{
	char *big;
	int n;
	(void)state;

	BAD(CTL_MAGIC "\nmode=export\nop=delete\nexport-id=4294967296\n\n", "invalid export-id");
	BAD(CTL_MAGIC "\nmode=export\nop=delete\nexport-id=-1\n\n", "invalid export-id");
	BAD(CTL_MAGIC "\nmode=export\nop=delete\nexport-id=\n\n", "invalid export-id");
	BAD(CTL_MAGIC "\nmode=export\nop=delete\nexport-id=0x10\n\n", "invalid export-id");
	BAD(CTL_MAGIC "\nmode=export\nop=delete\npath=/a\npath=/b\n\n", "duplicate");
	BAD(CTL_MAGIC "\nmode=export\nop=new\nclients=*(rw)%00\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=export\nop=new\nexport=/x\t*(rw)\n\n", "bad value");
	BAD(CTL_MAGIC "\nmode=exports\nop=show\n\n", "unknown mode");
	/* values longer than their field */
	big = malloc(CTL_REQ_MAX);
	assert_non_null(big);
	n = snprintf(big, CTL_REQ_MAX, CTL_MAGIC "\nmode=export\nop=new\npath=/");
	memset(big + n, 'p', CTL_PATH_MAX);
	n += CTL_PATH_MAX;
	memcpy(big + n, "\n\n", 2);
	expect_bad(big, (size_t)n + 2, "too long");
	n = snprintf(big, CTL_REQ_MAX, CTL_MAGIC "\nmode=export\nop=new\nclients=");
	memset(big + n, 'c', CTL_CLIENTS_MAX);
	n += CTL_CLIENTS_MAX;
	memcpy(big + n, "\n\n", 2);
	expect_bad(big, (size_t)n + 2, "too long");
	n = snprintf(big, CTL_REQ_MAX, CTL_MAGIC "\nmode=export\nop=new\nexport=");
	memset(big + n, 'l', CTL_LINE_MAX);
	n += CTL_LINE_MAX;
	memcpy(big + n, "\n\n", 2);
	expect_bad(big, (size_t)n + 2, NULL);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_accounts),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_encode_overflow),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_roundtrip_exports),
		cmocka_unit_test(test_malformed_exports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
