/* test_nfs_config.c - the NFS gateway's interface spellings: listen
 * endpoints ("ADDR:PORT", "[V6]:PORT"; nfsgw_parse_endpoint/add_listen),
 * the config file's nfs.listen list and portmap = "ADDR:PORT", their errors,
 * the dump of the running nfs section loading back, and the sockets
 * nfsgw_open_sockets() opens for several listen addresses. */
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
#include <sys/socket.h>
#include <unistd.h>

#include "conf/config.h"
#include "nfsgw/nfsgw.h"
#include "target/registry.h"

static struct rs_config cfg;
static char err[1024];

static int load(const char *text)
{
	err[0] = '\0';
	return config_load_string(text, "t.conf", &cfg, err, sizeof(err));
}

static void expect_error(const char *text, int line, const char *needle)
{
	char prefix[32];

	if (load(text) == 0) {
		config_free(&cfg);
		fail_msg("accepted:\n%s", text);
	}
	snprintf(prefix, sizeof(prefix), "t.conf:%d: ", line);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("expected prefix '%s', got '%s'", prefix, err);
	if (needle && !strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
}

static void test_parse_endpoint(void **state)
{
	struct nfsgw_endpoint ep;
	char t[80];
	(void)state;

	assert_int_equal(nfsgw_parse_endpoint("127.0.0.1:2049", &ep, err, sizeof(err)), 0);
	assert_string_equal(ep.addr, "127.0.0.1");
	assert_int_equal(ep.port, 2049);
	nfsgw_endpoint_str(&ep, t, sizeof(t));
	assert_string_equal(t, "127.0.0.1:2049");
	assert_int_equal(nfsgw_parse_endpoint("[::1]:12049", &ep, err, sizeof(err)), 0);
	assert_string_equal(ep.addr, "::1");
	assert_int_equal(ep.port, 12049);
	nfsgw_endpoint_str(&ep, t, sizeof(t));
	assert_string_equal(t, "[::1]:12049");
	assert_int_equal(nfsgw_parse_endpoint("[::]:1", &ep, err, sizeof(err)), 0);
	assert_int_equal(nfsgw_parse_endpoint("0.0.0.0:65535", &ep, err, sizeof(err)), 0);

	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:20x",
		"::1:2049", "[::1]2049", "[::1]:", "[127.0.0.1]:2049", "localhost:2049", ":2049",
		"[]:2049", "1.2.3:2049", "127.0.0.1:-1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (nfsgw_parse_endpoint(bad[i], &ep, err, sizeof(err)) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(err[0] != '\0');
	}
}

static void test_add_listen(void **state)
{
	struct nfsgw_settings s;
	struct nfsgw_endpoint ep;
	(void)state;

	nfsgw_settings_default(&s);
	assert_int_equal(s.nlisten, 0);
	assert_int_equal(nfsgw_parse_endpoint("127.0.0.1:3049", &ep, err, sizeof(err)), 0);
	assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), 0);
	assert_int_equal(s.nfs_port, 3049);          /* the first one's port */
	assert_int_equal(nfsgw_parse_endpoint("[::1]:4049", &ep, err, sizeof(err)), 0);
	assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), 0);
	assert_int_equal(s.nfs_port, 3049);
	assert_int_equal(s.nlisten, 2);
	/* the same endpoint, written otherwise, is a duplicate */
	assert_int_equal(nfsgw_parse_endpoint("[0:0::1]:4049", &ep, err, sizeof(err)), 0);
	assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "twice"));
	for (int i = 2; i < NFSGW_MAX_LISTEN; i++) {
		ep.port = (uint16_t)(5000 + i);
		assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), 0);
	}
	ep.port = 6000;
	assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most"));
}

static void test_config_listen(void **state)
{
	(void)state;

	if (load("nfs = {\n enabled = true;\n listen = [ \"127.0.0.1:12049\", \"[::1]:12049\" ];\n"
		 " mount_port = 12048;\n portmap = \"127.0.0.1:12111\";\n};\n") != 0)
		fail_msg("%s", err);
	assert_true(cfg.nfs_enabled);
	assert_int_equal(cfg.nfs.nlisten, 2);
	assert_string_equal(cfg.nfs.listen[0].addr, "127.0.0.1");
	assert_int_equal(cfg.nfs.listen[0].port, 12049);
	assert_string_equal(cfg.nfs.listen[1].addr, "::1");
	assert_int_equal(cfg.nfs.nfs_port, 12049);
	assert_int_equal(cfg.nfs.mount_port, 12048);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_BUILTIN);
	assert_string_equal(cfg.nfs.portmap_addr, "127.0.0.1");
	assert_int_equal(cfg.nfs.portmap_port, 12111);
	config_free(&cfg);

	/* the older keys keep working, and the words of portmap */
	assert_int_equal(load("nfs = { bind = \"::\"; nfs_port = 3049; portmap = \"off\"; };"), 0);
	assert_int_equal(cfg.nfs.nlisten, 0);
	assert_int_equal(cfg.nfs.nfs_port, 3049);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_OFF);
	assert_string_equal(cfg.nfs.portmap_addr, "");
	config_free(&cfg);
	assert_int_equal(load("nfs = { listen = ( \"0.0.0.0:2049\" ); portmap = \"auto\"; };"), 0);
	assert_int_equal(cfg.nfs.nlisten, 1);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_AUTO);
	config_free(&cfg);
	/* an own portmapper address needs no check against the other ports */
	assert_int_equal(load("nfs = { listen = [ \"127.0.0.1:111\" ]; portmap = \"127.0.0.2:111\"; };"), 0);
	config_free(&cfg);
}

static void test_config_listen_errors(void **state)
{
	(void)state;

	expect_error("nfs = {\n listen = [ \"127.0.0.1\" ];\n};", 2, "ADDR:PORT");
	expect_error("nfs = {\n listen = [ \"localhost:2049\" ];\n};", 2, "numeric");
	expect_error("nfs = {\n listen = [ \"[::1]:0\" ];\n};", 2, "1..65535");
	expect_error("nfs = {\n listen = [ ];\n};", 2, "empty");
	expect_error("nfs = {\n listen = \"127.0.0.1:2049\";\n};", 2, "list of strings");
	expect_error("nfs = {\n listen = [ \"127.0.0.1:2049\",\n \"127.0.0.1:2049\" ];\n};", 3, "twice");
	expect_error("nfs = {\n bind = \"127.0.0.1\";\n listen = [ \"127.0.0.1:2049\" ];\n};", 3,
		     "either 'listen' or 'bind'");
	expect_error("nfs = {\n listen = [ \"127.0.0.1:2049\", \"127.0.0.1:20048\" ];\n};", 2,
		     "also the MOUNT or NLM port");
	expect_error("nfs = {\n listen = [ \"127.0.0.1:111\" ];\n};", 2, "portmap_port 111");
	expect_error("nfs = {\n portmap = \"127.0.0.1\";\n};", 2, "unknown portmap");
	expect_error("nfs = {\n portmap = \"127.0.0.1:0\";\n};", 2, "1..65535");
	expect_error("nfs = {\n portmap = \"[::1]:111\";\n portmap_port = 112;\n};", 3, "already gives");
}

static char *dump_nfs(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_dump_nfs(f);
	fclose(f);
	return buf;
}

static void test_dump_round_trip(void **state)
{
	char *dump;
	(void)state;

	if (load("nfs = {\n enabled = true;\n listen = [ \"127.0.0.1:12049\", \"[::1]:13049\" ];\n"
		 " mount_port = 0;\n portmap = \"[::1]:12111\";\n};\n") != 0)
		fail_msg("%s", err);
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
	dump = dump_nfs();
	assert_non_null(strstr(dump, "listen = [ \"127.0.0.1:12049\", \"[::1]:13049\" ];"));
	assert_non_null(strstr(dump, "portmap = \"[::1]:12111\";"));
	assert_null(strstr(dump, "bind ="));
	if (load(dump) != 0)
		fail_msg("%s\n%s", err, dump);
	assert_int_equal(cfg.nfs.nlisten, 2);
	assert_int_equal(cfg.nfs.listen[1].port, 13049);
	assert_int_equal(cfg.nfs.mount_port, 0);
	assert_string_equal(cfg.nfs.portmap_addr, "::1");
	assert_int_equal(cfg.nfs.portmap_port, 12111);
	config_free(&cfg);
	free(dump);
}

static int sock_port(int fd, int *type, int *family)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss), tl = sizeof(*type);

	getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &tl);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*family = ss.ss_family;
	return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
				       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t p;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

/* Two listen addresses, a MOUNT port, portmapper off: NFS TCP on each
 * address, MOUNT TCP+UDP on each; nothing else (NLM aside). */
static void test_open_sockets(void **state)
{
	struct nfsgw_settings s;
	struct nfsgw_endpoint ep;
	int fds[NFSGW_MAX_FDS], n, nfs_tcp = 0, mnt_tcp = 0, mnt_udp = 0, v6 = 0, other = 0;
	uint16_t np = free_port(), mp = free_port();
	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof(a6)) == 0;
	(void)state;

	if (probe >= 0)
		close(probe);
	nfsgw_settings_default(&s);
	s.portmap = 0;
	s.nlm_port = 0;
	s.mount_port = mp;
	snprintf(ep.addr, sizeof(ep.addr), "127.0.0.1");
	ep.port = np;
	assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), 0);
	if (have_v6) {
		snprintf(ep.addr, sizeof(ep.addr), "::1");
		assert_int_equal(nfsgw_add_listen(&s, &ep, err, sizeof(err)), 0);
	}
	n = nfsgw_open_sockets(&s, fds, NFSGW_MAX_FDS);
	assert_int_equal(n, have_v6 ? 6 : 3);
	for (int i = 0; i < n; i++) {
		int type, fam, p = sock_port(fds[i], &type, &fam);
		if (p == np && type == SOCK_STREAM)
			nfs_tcp++;
		else if (p == mp && type == SOCK_STREAM)
			mnt_tcp++;
		else if (p == mp && type == SOCK_DGRAM)
			mnt_udp++;
		else
			other++;
		v6 += fam == AF_INET6;
		close(fds[i]);
	}
	assert_int_equal(nfs_tcp, have_v6 ? 2 : 1);
	assert_int_equal(mnt_tcp, have_v6 ? 2 : 1);
	assert_int_equal(mnt_udp, have_v6 ? 2 : 1);
	assert_int_equal(other, 0);
	assert_int_equal(v6, have_v6 ? 3 : 0);
	/* the same again (the next reactor's set): SO_REUSEPORT */
	n = nfsgw_open_sockets(&s, fds, NFSGW_MAX_FDS);
	assert_int_equal(n, have_v6 ? 6 : 3);
	int fds2[NFSGW_MAX_FDS];
	int n2 = nfsgw_open_sockets(&s, fds2, NFSGW_MAX_FDS);
	assert_int_equal(n2, n);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	for (int i = 0; i < n2; i++)
		close(fds2[i]);
	/* too few slots: nothing leaks, an error */
	assert_true(nfsgw_open_sockets(&s, fds, 2) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_endpoint),
		cmocka_unit_test(test_add_listen),
		cmocka_unit_test(test_config_listen),
		cmocka_unit_test(test_config_listen_errors),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_open_sockets),
	};
	reg_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
