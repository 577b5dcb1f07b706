/* Unit tests for nfsgw/exports.c: exports(5) option parsing (every option,
 * defaults, unknown options refused), line parsing (client spec kinds,
 * "-opts" defaults, quoting, the "host (rw)" trap), the export table (ids,
 * duplicates, references, covering lookups), client matching (first match
 * wins, IPv4-mapped peers, host names, wildcards) and squashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsgw/exports.h"

static char g_dir[256], g_sub[300], g_dir2[300];

static struct sockaddr_storage peer4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(800);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return ss;
}

static struct sockaddr_storage peer6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(800);
	inet_pton(AF_INET6, ip, &s6->sin6_addr);
	return ss;
}

static void test_options_defaults_and_each(void **state)
{
	struct export_options o;
	char err[256];
	(void)state;

	assert_int_equal(exports_parse_options("", &o, err, sizeof(err)), 0);
	assert_false(o.rw);
	assert_true(o.sync);
	assert_true(o.root_squash);
	assert_false(o.all_squash);
	assert_int_equal(o.anonuid, 65534);
	assert_int_equal(o.anongid, 65534);
	assert_true(o.secure);
	assert_false(o.fsid_set);
	assert_true(o.auth_sys);
	assert_false(o.auth_none);

	assert_int_equal(exports_parse_options("rw,async,no_root_squash,all_squash,anonuid=1000,"
					       "anongid=100,insecure,fsid=42,no_subtree_check,sec=sys:none",
					       &o, err, sizeof(err)), 0);
	assert_true(o.rw);
	assert_false(o.sync);
	assert_false(o.root_squash);
	assert_true(o.all_squash);
	assert_int_equal(o.anonuid, 1000);
	assert_int_equal(o.anongid, 100);
	assert_false(o.secure);
	assert_true(o.fsid_set);
	assert_int_equal(o.fsid, 42);
	assert_true(o.auth_sys && o.auth_none);

	/* the last word wins */
	assert_int_equal(exports_parse_options("rw,ro,async,sync,no_root_squash,root_squash,insecure,secure,"
					       "all_squash,no_all_squash", &o, err, sizeof(err)), 0);
	assert_false(o.rw);
	assert_true(o.sync);
	assert_true(o.root_squash);
	assert_true(o.secure);
	assert_false(o.all_squash);

	{
		char buf[256];
		exports_parse_options("rw,no_root_squash,fsid=7", &o, err, sizeof(err));
		exports_options_str(&o, buf, sizeof(buf));
		assert_string_equal(buf, "rw,sync,no_root_squash,no_all_squash,secure,anonuid=65534,"
					 "anongid=65534,sec=sys,fsid=7");
	}
}

static void test_options_refused(void **state)
{
	struct export_options o;
	char err[256];
	static const char *bad[] = {
		"rw,crossmnt", "nohide", "fsid=uuid-1234", "fsid=root", "anonuid=-1", "anonuid=",
		"anongid=abc", "anonuid=99999999999", "sec=krb5", "sec=", "rw=1", "mountpoint",
		"root_squash=yes", "RW",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(exports_parse_options(bad[i], &o, err, sizeof(err)), -1);
		assert_true(strlen(err) > 0);
	}
	exports_parse_options("rw,crossmnt", &o, err, sizeof(err));
	assert_non_null(strstr(err, "crossmnt"));
}

static void test_parse_line_kinds(void **state)
{
	char path[4096], err[256];
	struct export_client *c;
	int n;
	(void)state;

	assert_int_equal(exports_parse_line("/srv/x  10.0.0.0/8(rw,no_root_squash) 192.168.1.5 "
					    "fe80::/10(ro) ::1(rw) 172.16.0.0/255.240.0.0(rw) "
					    "*.example.com(rw) host1(ro,insecure) *(ro)  # comment",
					    path, sizeof(path), &c, &n, err, sizeof(err)), 0);
	assert_string_equal(path, "/srv/x");
	assert_int_equal(n, 8);
	assert_int_equal(c[0].kind, EXPORT_CLIENT_ADDR);
	assert_string_equal(c[0].spec, "10.0.0.0/8");
	assert_true(c[0].opts.rw);
	assert_false(c[0].opts.root_squash);
	assert_int_equal(c[1].kind, EXPORT_CLIENT_ADDR);
	assert_false(c[1].opts.rw);          /* defaults */
	assert_true(c[1].opts.root_squash);
	assert_int_equal(c[2].kind, EXPORT_CLIENT_ADDR);
	assert_int_equal(c[2].addr.family, AF_INET6);
	assert_int_equal(c[3].kind, EXPORT_CLIENT_ADDR);
	assert_int_equal(c[4].kind, EXPORT_CLIENT_ADDR);
	assert_int_equal(c[4].addr.prefix, 12);
	assert_int_equal(c[5].kind, EXPORT_CLIENT_WILDCARD);
	assert_int_equal(c[6].kind, EXPORT_CLIENT_HOST);
	assert_false(c[6].opts.secure);
	assert_int_equal(c[7].kind, EXPORT_CLIENT_ANY);
	free(c);

	/* "-opts" defaults; "host (rw)": host gets defaults, "(rw)" is the world */
	assert_int_equal(exports_parse_line("\"/srv/with\\040space\" -rw,async 10.1.2.3 host2 (rw)",
					    path, sizeof(path), &c, &n, err, sizeof(err)), 0);
	assert_string_equal(path, "/srv/with space");
	assert_int_equal(n, 3);
	assert_true(c[0].opts.rw);
	assert_false(c[0].opts.sync);
	assert_int_equal(c[1].kind, EXPORT_CLIENT_HOST);
	assert_true(c[1].opts.rw);
	assert_int_equal(c[2].kind, EXPORT_CLIENT_ANY);
	free(c);

	/* no client: the world, read-only */
	assert_int_equal(exports_parse_line("/srv/y", path, sizeof(path), &c, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].kind, EXPORT_CLIENT_ANY);
	assert_false(c[0].opts.rw);
	free(c);
}

static void test_parse_line_refused(void **state)
{
	char path[4096], err[256];
	struct export_client *c;
	int n;
	static const char *bad[] = {
		"srv/relative *(rw)", "/srv/x *(rw", "/srv/x *(rw))", "/srv/x @netgroup(rw)",
		"/srv/x gss/krb5(rw)", "/srv/x 10.0.0.0/33(rw)", "/srv/x 10.0.0.0/255.0.255.0(rw)",
		"/srv/x *(rw,bogus_option)", "/srv/x ho$t(rw)", "", "   # only a comment",
		"/srv/x 1.2.3.4/x(rw)",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		c = NULL;
		assert_int_equal(exports_parse_line(bad[i], path, sizeof(path), &c, &n, err, sizeof(err)), -1);
		assert_null(c);
		assert_true(strlen(err) > 0);
	}
}

static int table_setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/rs-exports-test.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	snprintf(g_sub, sizeof(g_sub), "%s/sub", g_dir);
	snprintf(g_dir2, sizeof(g_dir2), "%s/sub/deeper", g_dir);
	mkdir(g_sub, 0755);
	mkdir(g_dir2, 0755);
	return 0;
}

static int table_teardown(void **state)
{
	(void)state;
	nfs_exports_clear();
	rmdir(g_dir2);
	rmdir(g_sub);
	rmdir(g_dir);
	return 0;
}

static int add_line(const char *fmt, const char *dir, char *err, size_t errlen)
{
	char line[1024], path[4096];
	struct export_client *c;
	int n, ret;

	snprintf(line, sizeof(line), fmt, dir);
	if (exports_parse_line(line, path, sizeof(path), &c, &n, err, errlen) < 0)
		return -1;
	ret = nfs_export_add(path, c, n, err, errlen);
	free(c);
	return ret;
}

static void test_table(void **state)
{
	char err[256], path2[400];
	struct nfs_export *e, *e2;
	const char *rest;
	(void)state;

	assert_int_equal(add_line("%s 127.0.0.1(rw) *(ro)", g_dir, err, sizeof(err)), 0);
	e = nfs_export_get_by_path(g_dir);
	assert_non_null(e);
	assert_true(e->id & 0x80000000u);      /* derived from the path */
	assert_true(e->root_fd >= 0);
	assert_int_equal(e->nclients, 2);
	/* the same path twice: refused */
	assert_int_equal(add_line("%s *(rw)", g_dir, err, sizeof(err)), -1);
	/* also when written differently */
	snprintf(path2, sizeof(path2), "%s/sub/..", g_dir);
	assert_int_equal(add_line("%s *(rw)", path2, err, sizeof(err)), -1);
	/* ids are stable: delete + add gives the same id */
	uint32_t id = e->id;
	assert_ptr_equal(nfs_export_get_by_id(id), e);
	nfs_export_put(e);
	assert_int_equal(nfs_export_delete(g_dir, err, sizeof(err)), 0);
	/* still referenced: usable until put */
	assert_true(e->root_fd >= 0);
	nfs_export_put(e);
	assert_null(nfs_export_get_by_id(id));
	assert_int_equal(add_line("%s *(rw)", g_dir, err, sizeof(err)), 0);
	e = nfs_export_get_by_id(id);
	assert_non_null(e);
	nfs_export_put(e);

	/* fsid=: explicit id; a second export with the same fsid is refused */
	assert_int_equal(add_line("%s *(rw,fsid=17)", g_sub, err, sizeof(err)), 0);
	e = nfs_export_get_by_id(17);
	assert_non_null(e);
	assert_string_equal(e->path, g_sub);
	nfs_export_put(e);
	assert_int_equal(add_line("%s *(rw,fsid=17)", g_dir2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "17"));
	/* clients disagreeing on fsid */
	assert_int_equal(add_line("%s 1.2.3.4(fsid=1) *(fsid=2)", g_dir2, err, sizeof(err)), -1);
	/* not a directory / missing */
	assert_int_equal(add_line("%s/nonexistent *(rw)", g_dir, err, sizeof(err)), -1);

	/* covering: the longest export containing the path */
	e = nfs_export_get_covering(g_dir2, &rest);
	assert_non_null(e);
	assert_string_equal(e->path, g_sub);
	assert_string_equal(rest, "deeper");
	nfs_export_put(e);
	e = nfs_export_get_covering(g_dir, &rest);
	assert_string_equal(rest, "");
	nfs_export_put(e);
	snprintf(path2, sizeof(path2), "%sX", g_dir);    /* prefix, but not a component */
	assert_null(nfs_export_get_covering(path2, &rest));

	/* update replaces the clients, keeps the id */
	{
		char path[4096];
		struct export_client *c;
		int n;
		exports_parse_line("/x 10.0.0.0/8(rw,fsid=17)", path, sizeof(path), &c, &n, err, sizeof(err));
		assert_int_equal(nfs_export_update(g_sub, c, n, err, sizeof(err)), 0);
		free(c);
		e2 = nfs_export_get_by_id(17);
		assert_int_equal(e2->nclients, 1);
		assert_int_equal(e2->clients[0].kind, EXPORT_CLIENT_ADDR);
		nfs_export_put(e2);
	}

	/* show: text and JSON */
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		nfs_exports_show(f, false);
		nfs_exports_show(f, true);
		fclose(f);
		assert_non_null(strstr(buf, "10.0.0.0/8(rw,sync,root_squash"));
		assert_non_null(strstr(buf, "\"id\":17"));
		assert_non_null(strstr(buf, "\"kind\":\"address\""));
		free(buf);
	}
	assert_int_equal(nfs_export_delete("/not/exported", err, sizeof(err)), -1);
}

static void test_match(void **state)
{
	char err[256];
	struct nfs_export *e;
	const struct export_client *c;
	struct sockaddr_storage p;
	(void)state;

	assert_int_equal(add_line("%s 127.0.0.1(ro) 10.0.0.0/8(rw,insecure) fd00::/8(rw) "
				  "*.trusted.example(rw,no_root_squash) localhost(rw,all_squash) "
				  "192.168.0.0/16(rw,anonuid=5)", g_dir, err, sizeof(err)), 0);
	e = nfs_export_get_by_path(g_dir);
	assert_non_null(e);
	assert_true(nfs_export_needs_hostname(e));

	/* first match wins: 127.0.0.1 is ro although "localhost" would be rw */
	p = peer4("127.0.0.1");
	c = nfs_export_match(e, (struct sockaddr *)&p, NULL);
	assert_non_null(c);
	assert_string_equal(c->spec, "127.0.0.1");
	assert_false(c->opts.rw);
	/* IPv4-mapped peer on a v6 socket */
	p = peer6("::ffff:10.9.8.7");
	c = nfs_export_match(e, (struct sockaddr *)&p, NULL);
	assert_non_null(c);
	assert_string_equal(c->spec, "10.0.0.0/8");
	p = peer6("fd00::1234");
	c = nfs_export_match(e, (struct sockaddr *)&p, NULL);
	assert_string_equal(c->spec, "fd00::/8");
	/* not listed */
	p = peer4("8.8.8.8");
	assert_null(nfs_export_match(e, (struct sockaddr *)&p, NULL));
	/* wildcard by a given name, and by the cached reverse name */
	assert_non_null(c = nfs_export_match(e, (struct sockaddr *)&p, "vm1.TRUSTED.example"));
	assert_string_equal(c->spec, "*.trusted.example");
	assert_null(nfs_export_match(e, (struct sockaddr *)&p, "vm1.trusted.example.evil.com"));
	nfs_export_cache_hostname((struct sockaddr *)&p, "vm2.trusted.example");
	assert_non_null(c = nfs_export_match(e, (struct sockaddr *)&p, NULL));
	assert_string_equal(c->spec, "*.trusted.example");
	/* host name resolved when the export was added (localhost -> ::1 too) */
	p = peer6("::1");
	c = nfs_export_match(e, (struct sockaddr *)&p, NULL);
	if (c)   /* ::1 resolves from "localhost" on most systems */
		assert_string_equal(c->spec, "localhost");
	p = peer4("192.168.7.7");
	c = nfs_export_match(e, (struct sockaddr *)&p, NULL);
	assert_int_equal(c->opts.anonuid, 5);
	nfs_export_put(e);
}

static void test_squash(void **state)
{
	struct export_options o;
	struct rpc_auth a;
	char err[128];
	(void)state;

	/* root_squash (default): uid 0 and gid 0, also among the groups */
	exports_parse_options("rw", &o, err, sizeof(err));
	memset(&a, 0, sizeof(a));
	a.flavor = RPC_AUTH_SYS;
	a.uid = 0;
	a.gid = 0;
	a.ngids = 3;
	a.gids[0] = 10;
	a.gids[1] = 0;
	a.gids[2] = 20;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 65534);
	assert_int_equal(a.gid, 65534);
	assert_int_equal(a.ngids, 3);
	assert_int_equal(a.gids[1], 65534);
	assert_int_equal(a.gids[2], 20);
	/* ordinary users untouched */
	a.uid = 1000;
	a.gid = 100;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 100);
	/* no_root_squash */
	exports_parse_options("rw,no_root_squash", &o, err, sizeof(err));
	a.uid = 0;
	a.gid = 0;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 0);
	assert_int_equal(a.gid, 0);
	/* (uid_t)-1 / (gid_t)-1 are no user: anonymous, even without squashing */
	a.uid = UINT32_MAX;
	a.gid = UINT32_MAX;
	a.ngids = 2;
	a.gids[0] = UINT32_MAX;
	a.gids[1] = 7;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 65534);
	assert_int_equal(a.gid, 65534);
	assert_int_equal(a.gids[0], 65534);
	assert_int_equal(a.gids[1], 7);
	/* all_squash with anonuid/anongid */
	exports_parse_options("rw,all_squash,anonuid=1234,anongid=99", &o, err, sizeof(err));
	a.uid = 1000;
	a.gid = 100;
	a.ngids = 2;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 1234);
	assert_int_equal(a.gid, 99);
	assert_int_equal(a.ngids, 0);
	/* AUTH_NONE: anonymous whatever the options */
	exports_parse_options("rw,no_root_squash,sec=sys:none", &o, err, sizeof(err));
	memset(&a, 0, sizeof(a));
	a.flavor = RPC_AUTH_NONE;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 65534);
	/* sec=none only: AUTH_SYS callers are anonymous too */
	exports_parse_options("rw,no_root_squash,sec=none", &o, err, sizeof(err));
	a.flavor = RPC_AUTH_SYS;
	a.uid = 0;
	nfs_export_squash(&o, &a);
	assert_int_equal(a.uid, 65534);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_defaults_and_each),
		cmocka_unit_test(test_options_refused),
		cmocka_unit_test(test_parse_line_kinds),
		cmocka_unit_test(test_parse_line_refused),
		cmocka_unit_test_setup_teardown(test_table, table_setup, table_teardown),
		cmocka_unit_test_setup_teardown(test_match, table_setup, table_teardown),
		cmocka_unit_test(test_squash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
