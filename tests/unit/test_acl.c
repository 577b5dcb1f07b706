/* test_acl.c - initiator address ACL parsing and matching (core/acl.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/acl.h"

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(12345);
	assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(12345);
	assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
	return ss;
}

static bool match(const char *rule, struct sockaddr_storage peer)
{
	struct acl_addr a;
	char err[128];

	assert_int_equal(acl_addr_parse(rule, &a, err, sizeof(err)), 0);
	return acl_addr_match(&a, (struct sockaddr *)&peer);
}

static void test_parse_all(void **state)
{
	struct acl_addr a;
	char err[128];
	(void)state;

	assert_int_equal(acl_addr_parse("ALL", &a, err, sizeof(err)), 0);
	assert_true(a.all);
	assert_string_equal(a.text, "ALL");
	assert_int_equal(acl_addr_parse("all", &a, err, sizeof(err)), 0);
	assert_true(a.all);
	assert_true(match("ALL", v4("192.0.2.1")));
	assert_true(match("ALL", v6("2001:db8::1")));
}

static void test_parse_v4(void **state)
{
	struct acl_addr a;
	char err[128];
	(void)state;

	assert_int_equal(acl_addr_parse("127.0.0.1", &a, err, sizeof(err)), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.prefix, 32);
	assert_string_equal(a.text, "127.0.0.1");
	/* host bits are cleared and the canonical text shows the network */
	assert_int_equal(acl_addr_parse("10.1.2.3/8", &a, err, sizeof(err)), 0);
	assert_int_equal(a.prefix, 8);
	assert_string_equal(a.text, "10.0.0.0/8");
	assert_int_equal(acl_addr_parse("192.168.1.0/24", &a, err, sizeof(err)), 0);
	assert_string_equal(a.text, "192.168.1.0/24");
	assert_int_equal(acl_addr_parse("1.2.3.4/32", &a, err, sizeof(err)), 0);
	assert_string_equal(a.text, "1.2.3.4");
}

static void test_parse_v6(void **state)
{
	struct acl_addr a;
	char err[128];
	(void)state;

	assert_int_equal(acl_addr_parse("::1", &a, err, sizeof(err)), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.prefix, 128);
	assert_string_equal(a.text, "::1");
	assert_int_equal(acl_addr_parse("[::1]", &a, err, sizeof(err)), 0);
	assert_string_equal(a.text, "::1");
	assert_int_equal(acl_addr_parse("fe80::1234/10", &a, err, sizeof(err)), 0);
	assert_string_equal(a.text, "fe80::/10");
	assert_int_equal(acl_addr_parse("[2001:db8::]/32", &a, err, sizeof(err)), 0);
	assert_string_equal(a.text, "2001:db8::/32");
	/* a v4-mapped rule is the IPv4 rule */
	assert_int_equal(acl_addr_parse("::ffff:10.0.0.0/104", &a, err, sizeof(err)), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.prefix, 8);
	assert_string_equal(a.text, "10.0.0.0/8");
}

static void test_parse_malformed(void **state)
{
	static const char *bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/",
		"1.2.3.4/ 8", "1.2.3.4/+8", "1.2.3.4/8x", "::1/129", "::g", "[::1", "::1]",
		"[1.2.3.4]", "fe80::1%eth0", "localhost", "ALLx", "1.2.3.4/0008",
		" 1.2.3.4", "1.2.3.4 ", "[]", "/8",
	};
	struct acl_addr a;
	char err[128];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (acl_addr_parse(bad[i], &a, err, sizeof(err)) == 0)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(acl_addr_parse(NULL, &a, err, sizeof(err)), -1);
	/* a long string must not overflow anything */
	char longs[300];
	memset(longs, '1', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	assert_int_equal(acl_addr_parse(longs, &a, err, sizeof(err)), -1);
	/* err may be NULL */
	assert_int_equal(acl_addr_parse("bogus", &a, NULL, 0), -1);
}

static void test_match_v4_cidr_edges(void **state)
{
	(void)state;
	assert_true(match("127.0.0.1", v4("127.0.0.1")));
	assert_false(match("127.0.0.1", v4("127.0.0.2")));
	assert_true(match("10.0.0.0/8", v4("10.255.255.255")));
	assert_false(match("10.0.0.0/8", v4("11.0.0.0")));
	/* /0 matches every IPv4 peer but no IPv6 one */
	assert_true(match("0.0.0.0/0", v4("203.0.113.9")));
	assert_false(match("0.0.0.0/0", v6("2001:db8::1")));
	/* /32 is one host */
	assert_true(match("192.0.2.7/32", v4("192.0.2.7")));
	assert_false(match("192.0.2.7/32", v4("192.0.2.6")));
	/* non-octet prefixes */
	assert_true(match("192.168.1.0/25", v4("192.168.1.127")));
	assert_false(match("192.168.1.0/25", v4("192.168.1.128")));
	assert_true(match("172.16.0.0/12", v4("172.31.255.1")));
	assert_false(match("172.16.0.0/12", v4("172.32.0.1")));
}

static void test_match_v6(void **state)
{
	(void)state;
	assert_true(match("::1", v6("::1")));
	assert_false(match("::1", v6("::2")));
	assert_false(match("::1", v4("127.0.0.1")));
	assert_true(match("2001:db8::/32", v6("2001:db8:ffff::1")));
	assert_false(match("2001:db8::/32", v6("2001:db9::1")));
	assert_true(match("::/0", v6("fe80::1")));
	assert_true(match("2001:db8::5/128", v6("2001:db8::5")));
	assert_false(match("2001:db8::5/128", v6("2001:db8::4")));
	assert_true(match("fe80::/10", v6("febf::1")));
	assert_false(match("fe80::/10", v6("fec0::1")));
}

static void test_match_mapped(void **state)
{
	(void)state;
	/* IPv4 peers on a dual-stack socket arrive as ::ffff:a.b.c.d */
	assert_true(match("127.0.0.1", v6("::ffff:127.0.0.1")));
	assert_true(match("10.0.0.0/8", v6("::ffff:10.9.8.7")));
	assert_false(match("10.0.0.0/8", v6("::ffff:11.9.8.7")));
	assert_true(match("::ffff:127.0.0.1", v4("127.0.0.1")));
	/* a mapped peer is not an IPv6 host for v6 rules */
	assert_false(match("::/0", v6("::ffff:127.0.0.1")));
}

static void test_match_null_and_other_family(void **state)
{
	struct acl_addr a;
	struct sockaddr_storage ss;
	char err[64];
	(void)state;

	assert_int_equal(acl_addr_parse("127.0.0.1", &a, err, sizeof(err)), 0);
	assert_false(acl_addr_match(&a, NULL));
	assert_false(acl_addr_match(NULL, NULL));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_false(acl_addr_match(&a, (struct sockaddr *)&ss));
}

static void test_sockaddr_str(void **state)
{
	char buf[64];
	struct sockaddr_storage s;
	(void)state;

	s = v4("192.0.2.1");
	acl_sockaddr_str((struct sockaddr *)&s, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1");
	s = v6("2001:db8::1");
	acl_sockaddr_str((struct sockaddr *)&s, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::1");
	s = v6("::ffff:127.0.0.1");
	acl_sockaddr_str((struct sockaddr *)&s, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1");
	acl_sockaddr_str(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "-");
	/* tiny buffers are not overrun */
	s = v6("2001:db8::1");
	acl_sockaddr_str((struct sockaddr *)&s, buf, 4);
	assert_true(strlen(buf) < 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_all),
		cmocka_unit_test(test_parse_v4),
		cmocka_unit_test(test_parse_v6),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_match_v4_cidr_edges),
		cmocka_unit_test(test_match_v6),
		cmocka_unit_test(test_match_mapped),
		cmocka_unit_test(test_match_null_and_other_family),
		cmocka_unit_test(test_sockaddr_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
