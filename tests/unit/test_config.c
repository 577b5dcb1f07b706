/* test_config.c - libconfig loading, validation ("file:line: message") and
 * applying to the registry (conf/config.c) with the real null/file backends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "target/registry.h"

static struct rs_config cfg;
static char err[1024];

static int load(const char *text)
{
	err[0] = '\0';
	return config_load_string(text, "t.conf", &cfg, err, sizeof(err));
}

/* The text must be refused with exactly "t.conf:<line>: ..." containing needle. */
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
	/* nothing is left allocated after a failure */
	assert_null(cfg.targets);
	assert_int_equal(cfg.ntargets, 0);
	assert_null(cfg.accounts);
	assert_null(cfg.exports);
	assert_int_equal(cfg.nexports, 0);
}

static void test_empty_defaults(void **state)
{
	struct iscsi_target_caps def;
	(void)state;

	assert_int_equal(load(""), 0);
	iscsi_caps_default(&def);
	assert_int_equal(cfg.iscsi.caps.max_recv_dsl, def.max_recv_dsl);
	assert_int_equal(cfg.iscsi.caps.max_burst, def.max_burst);
	assert_int_equal(cfg.iscsi.caps.first_burst, def.first_burst);
	assert_int_equal(cfg.iscsi.caps.max_outstanding_r2t, def.max_outstanding_r2t);
	assert_int_equal(cfg.iscsi.caps.allow_immediate_data, def.allow_immediate_data);
	assert_int_equal(cfg.iscsi.caps.require_initial_r2t, def.require_initial_r2t);
	assert_int_equal(cfg.iscsi.caps.allow_crc32c, def.allow_crc32c);
	assert_int_equal(cfg.iscsi.caps.max_connections, def.max_connections);
	assert_int_equal(cfg.iscsi.nop_interval_s, 15);
	assert_int_equal(cfg.iscsi.nop_timeout_s, 30);
	assert_int_equal(cfg.iscsi.queue_depth, 128);
	assert_int_equal(cfg.ntargets, 0);
	assert_int_equal(cfg.nportals, 0);
	assert_int_equal(cfg.threads, 0);
	assert_string_equal(cfg.control_socket, "");
	assert_string_equal(cfg.source, "t.conf");
	config_free(&cfg);
	config_free(&cfg);   /* idempotent */
}

static const char *full_conf =
	"daemon = { threads = 2; control_socket = \"/tmp/x.sock\"; log_level = \"debug\"; };\n"
	"iscsi = {\n"
	"  portals = [ \"127.0.0.1:3260\", \"[::1]:3261\", \"0.0.0.0\" ];\n"
	"  max_recv_data_segment_length = 65536; max_burst_length = 524288;\n"
	"  first_burst_length = 65536; max_outstanding_r2t = 4; immediate_data = false;\n"
	"  initial_r2t = true; header_digest = [\"None\", \"CRC32C\"]; data_digest = [\"None\"];\n"
	"  nop_interval = 0; nop_timeout = 5; queue_depth = 64;\n"
	"};\n"
	"targets = (\n"
	"  { tid = 1; name = \"iqn.2026-11.io.ringstor:demo\";\n"
	"    luns = ( { lun = 1; path = \"var/demo-lun1.img\"; type = \"file\"; block_size = 512;\n"
	"               direct = false; readonly = false; create = true; size = \"1G\"; },\n"
	"             { lun = 0; type = \"null\"; size = 1048576; block_size = 4096; serial = \"SN0\"; } );\n"
	"    initiator_address = [ \"127.0.0.1\", \"10.1.0.0/16\" ];\n"
	"    initiator_name = [ \"iqn.2026-11.test:init1\" ];\n"
	"  },\n"
	"  { tid = 7; name = \"iqn.2026-11.io.ringstor:other\"; luns = ( { lun = 3; path = \"/dev/null\"; type = \"rdwr\"; readonly = true; } ); }\n"
	");\n";

static void test_full(void **state)
{
	(void)state;
	if (load(full_conf) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.threads, 2);
	assert_string_equal(cfg.control_socket, "/tmp/x.sock");
	assert_string_equal(cfg.log_level, "debug");
	assert_int_equal(cfg.nportals, 3);
	assert_string_equal(cfg.portals[0].text, "127.0.0.1:3260,1");
	assert_string_equal(cfg.portals[1].text, "[::1]:3261,1");
	assert_string_equal(cfg.portals[2].text, "0.0.0.0:3260,1");
	assert_int_equal(cfg.portals[1].addr.ss_family, AF_INET6);
	assert_int_equal(cfg.iscsi.caps.max_recv_dsl, 65536);
	assert_int_equal(cfg.iscsi.caps.max_burst, 524288);
	assert_int_equal(cfg.iscsi.caps.first_burst, 65536);
	assert_int_equal(cfg.iscsi.caps.max_outstanding_r2t, 4);
	assert_false(cfg.iscsi.caps.allow_immediate_data);
	assert_true(cfg.iscsi.caps.require_initial_r2t);
	assert_true(cfg.iscsi.caps.allow_crc32c);
	assert_int_equal(cfg.iscsi.nop_interval_s, 0);
	assert_int_equal(cfg.iscsi.nop_timeout_s, 5);
	assert_int_equal(cfg.iscsi.queue_depth, 64);

	assert_int_equal(cfg.ntargets, 2);
	struct rs_config_target *t = &cfg.targets[0];
	assert_int_equal(t->tid, 1);
	assert_string_equal(t->iqn, "iqn.2026-11.io.ringstor:demo");
	assert_int_equal(t->line, 10);
	assert_int_equal(t->nluns, 2);
	assert_true(t->luns[0].lun == 1);
	assert_string_equal(t->luns[0].path, "var/demo-lun1.img");
	assert_string_equal(t->luns[0].bstype, "file");
	assert_true(t->luns[0].bs.create);
	assert_true(t->luns[0].bs.size == (1ull << 30));
	assert_int_equal(t->luns[0].bs.block_size, 512);
	assert_true(t->luns[1].lun == 0);
	assert_string_equal(t->luns[1].bstype, "null");
	assert_int_equal(t->luns[1].bs.block_size, 4096);
	assert_true(t->luns[1].bs.size == 1048576);
	assert_string_equal(t->luns[1].serial, "SN0");
	assert_int_equal(t->naddr_acls, 2);
	assert_string_equal(t->addr_acls[0], "127.0.0.1");
	assert_string_equal(t->addr_acls[1], "10.1.0.0/16");
	assert_int_equal(t->nname_acls, 1);
	assert_string_equal(t->name_acls[0], "iqn.2026-11.test:init1");
	t = &cfg.targets[1];
	assert_int_equal(t->tid, 7);
	assert_string_equal(t->luns[0].bstype, "file");   /* rdwr */
	assert_true(t->luns[0].bs.readonly);
	assert_int_equal(t->naddr_acls, 0);
	config_free(&cfg);
}

static void test_digest_settings(void **state)
{
	(void)state;
	assert_int_equal(load("iscsi = { header_digest = [\"None\"]; data_digest = [\"None\"]; };"), 0);
	assert_false(cfg.iscsi.caps.allow_crc32c);
	config_free(&cfg);
	assert_int_equal(load("iscsi = { allow_crc32c = false; };"), 0);
	assert_false(cfg.iscsi.caps.allow_crc32c);
	config_free(&cfg);
	assert_int_equal(load("iscsi = { data_digest = [\"crc32c\"]; };"), 0);
	assert_true(cfg.iscsi.caps.allow_crc32c);
	config_free(&cfg);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("daemon = {\n threads = 2;\n\n log_level = ;\n}\n", 4, "syntax error");
	expect_error("daemon = {\n threads = 2;\n threads = 3;\n};\n", 3, "duplicate setting");
	expect_error("\n\nbogus = 1;\n", 3, "unknown setting 'bogus'");
	expect_error("daemon = {\n  thread = 1;\n};\n", 2, "unknown setting 'thread' in daemon");
	expect_error("daemon = 5;\n", 1, "must be a group");
	expect_error("daemon = {\n threads = \"x\";\n};", 2, "must be an integer");
	expect_error("daemon = {\n threads = 1000;\n};", 2, "out of range");
	expect_error("daemon = {\n log_level = \"loud\";\n};", 2, "log_level");
	expect_error("daemon = {\n control_socket = 5;\n};", 2, "must be a string");
	expect_error("iscsi = {\n\n immediate_data = 1;\n};", 3, "true or false");
	expect_error("iscsi = {\n max_recv_data_segment_length = 100;\n};", 2, "out of range");
	expect_error("iscsi = {\n max_burst_length = 16777216;\n};", 2, "out of range");
	expect_error("iscsi = {\n max_outstanding_r2t = 0;\n};", 2, "out of range");
	expect_error("iscsi = {\n queue_depth = 0;\n};", 2, "out of range");
	expect_error("iscsi = {\n nop_timeout = 0;\n};", 2, "out of range");
	expect_error("iscsi = { max_burst_length = 8192;\n first_burst_length = 65536; };", 2,
		     "exceeds max_burst_length");
	expect_error("iscsi = {\n portals = \"127.0.0.1\";\n};", 2, "list of strings");
	expect_error("iscsi = {\n portals = [ \"127.0.0.1:0\" ];\n};", 2, "port");
	expect_error("iscsi = {\n portals = [ \"localhost:3260\" ];\n};", 2, "numeric");
	expect_error("iscsi = {\n portals = [ \"127.0.0.1\",\n \"127.0.0.1:3260\" ];\n};", 3,
		     "duplicate portal");
	expect_error("iscsi = {\n header_digest = [ \"MD5\" ];\n};", 2, "unknown digest");
	expect_error("iscsi = {\n header_digest = [ ];\n};", 2, "must not be empty");
	expect_error("iscsi = {\n allow_crc32c = true; header_digest = [\"None\"];\n};", 2, "not both");
	expect_error("iscsi = {\n frobs = 1;\n};", 2, "unknown setting 'frobs' in iscsi");
	expect_error("targets = 1;", 1, "must be a list");
	expect_error("targets = (\n 1 );", 2, "must be a group");
	expect_error("targets = (\n {\n name = \"iqn.2026-11.io.ringstor:x\"; } );", 2, "without 'tid");
	expect_error("targets = ( { tid = 1; } );", 1, "without 'name");
	expect_error("targets = ( {\n tid = 0;\n name = \"iqn.2026-11.io.ringstor:x\"; } );", 2,
		     "out of range");
	expect_error("targets = ( { tid = 1;\n name = \"iqn.2026-11.io.ringstor:X\"; } );", 2,
		     "invalid iSCSI name");
	expect_error("targets = ( { tid = 1;\n name = \"foo\"; } );", 2, "iqn.");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; },\n"
		     "  { tid = 1; name = \"iqn.2026-11.io.ringstor:y\"; } );", 2,
		     "duplicate tid 1 (first at line 1)");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; },\n"
		     "  { tid = 2;\n name = \"iqn.2026-11.io.ringstor:x\"; } );", 3, "duplicate target name");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\";\n"
		     " colour = \"blue\"; } );", 2, "unknown setting 'colour' in a target");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\";\n"
		     " luns = { lun = 1; }; } );", 2, "'luns' must be a list");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { path = \"/a\"; } ); } );", 2, "without 'lun");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 16384; path = \"/a\"; } ); } );", 2, "out of range");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\"; },\n { lun = 1; path = \"/b\"; } ); } );", 3,
		     "duplicate LUN 1 (first at line 2)");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; } ); } );", 2, "'path' is required");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n type = \"sg\"; } ); } );", 3, "unknown LUN type");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n block_size = 1024; } ); } );", 3, "512 or 4096");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n size = \"12Q\"; } ); } );", 3, "invalid size");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n size = 1000; } ); } );", 3, "not a multiple");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n size = 1.5; } ); } );", 3, "number of bytes");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\"; create = true; } ); } );", 2, "needs a 'size'");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n readonly = \"yes\"; } ); } );", 3, "true or false");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n rdonly = true; } ); } );", 3,
		     "unknown setting 'rdonly' in a LUN");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = (\n"
		     " { lun = 1; path = \"/a\";\n serial = \"a b\"; } ); } );", 3, "serial");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\";\n"
		     " initiator_address = [ \"127.0.0.1\",\n \"10.0.0.0/33\" ]; } );", 3, "prefix");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\";\n"
		     " initiator_address = [ \"10.0.0.1/8\",\n \"10.0.0.0/8\" ]; } );", 3, "duplicate");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\";\n"
		     " initiator_address = \"ALL\"; } );", 2, "list of strings");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\";\n"
		     " initiator_name = [\n \"not an iqn\" ]; } );", 3, "initiator_name");
	/* later targets fail after earlier ones loaded: everything is freed */
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:x\"; luns = ( { lun = 1; path = \"/a\"; } ); initiator_address = [\"ALL\"]; },\n"
		     " { tid = 2; name = \"iqn.2026-11.io.ringstor:y\"; luns = ( { lun = 1;\n path = 5; } ); } );", 3,
		     "must be a string");
}

static void test_missing_file(void **state)
{
	(void)state;
	assert_int_equal(config_load("/nonexistent/ringstor.conf", &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/ringstor.conf: cannot read: No such file or directory");
}

static void test_file_syntax_error(void **state)
{
	char path[] = "/tmp/ringstor-cfg-XXXXXX";
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	assert_true(write(fd, "# comment\n\ndaemon = {\n  threads = ;\n};\n", 40) == 40);
	close(fd);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	char want[64];
	snprintf(want, sizeof(want), "%s:4: ", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got '%s'", err);
	unlink(path);
}

/* The shipped files must load (run from the top of the tree). */
static void test_shipped_files(void **state)
{
	const char *top = getenv("TOP");
	char path[4096];
	(void)state;

	snprintf(path, sizeof(path), "%s/conf/demo.conf", top ? top : ".");
	if (config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.ntargets, 1);
	assert_string_equal(cfg.targets[0].iqn, "iqn.2026-11.io.ringstor:demo");
	assert_int_equal(cfg.targets[0].nluns, 1);
	assert_true(cfg.targets[0].luns[0].lun == 1);
	assert_true(cfg.targets[0].luns[0].bs.size == (1ull << 30));
	assert_true(cfg.targets[0].luns[0].bs.create);
	assert_int_equal(cfg.targets[0].naddr_acls, 1);
	assert_string_equal(cfg.targets[0].addr_acls[0], "127.0.0.1");
	assert_int_equal(cfg.nportals, 1);
	assert_string_equal(cfg.portals[0].text, "127.0.0.1:3260,1");
	config_free(&cfg);

	snprintf(path, sizeof(path), "%s/conf/ringstor.conf.example", top ? top : ".");
	if (config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(cfg.ntargets >= 1);
	/* documents the defaults */
	assert_string_equal(cfg.state_dir, CONFIG_DEFAULT_STATE_DIR);
	assert_false(cfg.nfs_enabled);
	assert_string_equal(cfg.nfs.bind_addr, "0.0.0.0");
	assert_int_equal(cfg.nfs.nfs_port, 2049);
	assert_int_equal(cfg.nfs.mount_port, 20048);
	assert_int_equal(cfg.nfs.nlm_port, 32803);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_AUTO);
	assert_int_equal(cfg.nfs.portmap_port, 111);
	assert_int_equal(cfg.nexports, 2);
	assert_string_equal(cfg.exports[1].path, "/srv/iso");
	config_free(&cfg);
}

static void test_parse_size(void **state)
{
	uint64_t v;
	(void)state;

	assert_int_equal(config_parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(config_parse_size("1G", &v), 0);
	assert_true(v == 1ull << 30);
	assert_int_equal(config_parse_size("512M", &v), 0);
	assert_true(v == 512ull << 20);
	assert_int_equal(config_parse_size("10T", &v), 0);
	assert_true(v == 10ull << 40);
	assert_int_equal(config_parse_size("4k", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(config_parse_size("2GiB", &v), 0);
	assert_true(v == 2ull << 30);
	assert_int_equal(config_parse_size("3GB", &v), 0);
	assert_true(v == 3ull << 30);
	assert_int_equal(config_parse_size("0", &v), 0);
	assert_true(v == 0);
	static const char *bad[] = { "", "G", "1X", "1GG", "-1", " 1", "1 G", "1.5G",
				     "99999999999999999999", "16384P", "1Gi", NULL };
	for (int i = 0; bad[i]; i++)
		if (config_parse_size(bad[i], &v) == 0)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(config_parse_size(NULL, &v), -1);
}

static void test_parse_portal(void **state)
{
	struct iscsi_portal p;
	char e[128];
	(void)state;

	assert_int_equal(config_parse_portal("127.0.0.1:3260", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "127.0.0.1:3260,1");
	assert_int_equal(p.tpgt, 1);
	assert_int_equal(p.addrlen, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&p.addr)->sin_port), 3260);
	assert_int_equal(config_parse_portal("10.0.0.1", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "10.0.0.1:3260,1");
	assert_int_equal(config_parse_portal("[::1]:3261", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "[::1]:3261,1");
	assert_int_equal(p.addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(config_parse_portal("[::]", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "[::]:3260,1");
	assert_int_equal(config_parse_portal("fe80::1", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "[fe80::1]:3260,1");
	static const char *bad[] = { "", ":3260", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
				     "127.0.0.1:x", "[::1", "[::1]x", "[]:3260", "host:3260",
				     "1.2.3.4:32 60", "[1.2.3.4]:3260", "127.0.0.1:-1", NULL };
	for (int i = 0; bad[i]; i++)
		if (config_parse_portal(bad[i], &p, e, sizeof(e)) == 0)
			fail_msg("'%s' accepted", bad[i]);
}

static void test_apply(void **state)
{
	char dir[] = "/tmp/ringstor-apply-XXXXXX", text[2048], path[256];
	struct stat st;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lun1.img", dir);
	snprintf(text, sizeof(text),
		 "targets = (\n"
		 " { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		 "   luns = ( { lun = 1; path = \"%s\"; create = true; size = \"8M\"; },\n"
		 "            { lun = 2; type = \"null\"; size = \"4M\"; } );\n"
		 "   initiator_address = [ \"127.0.0.1\" ]; initiator_name = [ \"iqn.2026-11.test:i\" ]; },\n"
		 " { tid = 2; name = \"iqn.2026-11.io.ringstor:b\"; }\n"
		 ");\n", path);
	reg_init();
	if (load(text) != 0)
		fail_msg("%s", err);
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 8 << 20);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	assert_non_null(t);
	uint64_t luns[4];
	assert_int_equal(reg_target_luns(t, luns, 4), 2);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_true(reg_target_permits(t, (struct sockaddr *)&sin, NULL));
	struct scsi_lu *lu = reg_target_lun_get(t, 1);
	assert_non_null(lu);
	assert_true(atomic_load(&lu->nr_blocks) == (8 << 20) / 512);
	scsi_lu_put(lu);
	reg_target_put(t);
	assert_true(reg_target_exists(2));

	/* applying a file that clashes (tid 2 exists) or cannot open a LUN
	 * changes nothing */
	snprintf(text, sizeof(text),
		 "targets = ( { tid = 3; name = \"iqn.2026-11.io.ringstor:c\"; },\n"
		 " { tid = 4; name = \"iqn.2026-11.io.ringstor:d\"; luns = (\n"
		 "   { lun = 1; path = \"%s/missing/none.img\"; } ); } );\n", dir);
	assert_int_equal(load(text), 0);
	assert_int_equal(config_apply(&cfg, err, sizeof(err)), -1);
	config_free(&cfg);
	assert_non_null(strstr(err, "t.conf:3: target 4 LUN 1: "));
	assert_false(reg_target_exists(3));
	assert_false(reg_target_exists(4));
	assert_int_equal(load("targets = ( { tid = 5; name = \"iqn.2026-11.io.ringstor:e\"; },\n"
			      "{ tid = 2; name = \"iqn.2026-11.io.ringstor:f\"; } );"), 0);
	assert_int_equal(config_apply(&cfg, err, sizeof(err)), -1);
	config_free(&cfg);
	assert_non_null(strstr(err, "t.conf:2: "));
	assert_non_null(strstr(err, "already exists"));
	assert_false(reg_target_exists(5));
	assert_true(reg_target_exists(2));

	reg_shutdown();
	unlink(path);
	rmdir(dir);
}

static void test_portal_tags(void **state)
{
	struct iscsi_portal p;
	char e[128];
	(void)state;

	assert_int_equal(config_parse_portal("127.0.0.2:3260,2", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "127.0.0.2:3260,2");
	assert_int_equal(p.tpgt, 2);
	assert_int_equal(ntohs(((struct sockaddr_in *)&p.addr)->sin_port), 3260);
	assert_int_equal(config_parse_portal("127.0.0.2,7", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "127.0.0.2:3260,7");
	assert_int_equal(config_parse_portal("[::1]:3261,65535", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "[::1]:3261,65535");
	assert_int_equal(p.tpgt, 65535);
	assert_int_equal(config_parse_portal("fe80::1,3", &p, e, sizeof(e)), 0);
	assert_string_equal(p.text, "[fe80::1]:3260,3");
	assert_int_equal(config_parse_portal("10.0.0.1:3260,1", &p, e, sizeof(e)), 0);
	assert_int_equal(p.tpgt, 1);
	static const char *bad[] = { "127.0.0.1:3260,0", "127.0.0.1:3260,65536", "127.0.0.1:3260,",
				     "127.0.0.1:3260,x", "127.0.0.1:3260,1,2", ",1", "127.0.0.1:3260,-1",
				     "127.0.0.1:3260, 1", "[::1],", NULL };
	for (int i = 0; bad[i]; i++)
		if (config_parse_portal(bad[i], &p, e, sizeof(e)) == 0)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(config_parse_portal("127.0.0.1:3260,0", &p, e, sizeof(e)), -1);
	assert_non_null(strstr(e, "1..65535"));

	/* in the file; one address:port is in one group only */
	if (load("iscsi = { portals = [ \"127.0.0.1:3260,1\", \"127.0.0.2:3260,2\", \"[::1]:3260\" ]; };") != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.nportals, 3);
	assert_int_equal(cfg.portals[1].tpgt, 2);
	assert_string_equal(cfg.portals[1].text, "127.0.0.2:3260,2");
	assert_int_equal(cfg.portals[2].tpgt, 1);
	config_free(&cfg);
	expect_error("iscsi = {\n portals = [ \"127.0.0.1:3260,1\",\n \"127.0.0.1:3260,2\" ];\n};", 3,
		     "duplicate portal");
	expect_error("iscsi = {\n portals = [ \"127.0.0.1:3260,0\" ];\n};", 2, "portal group tag");
}

static void test_accounts_config(void **state)
{
	const struct rs_config *ch = &cfg;
	(void)state;

	if (load("accounts = (\n"
		 "  { user = \"alice\"; password = \"alice-secret-1\"; },\n"
		 "  { user = \"bob\"; password = \"short\"; },\n"
		 "  { user = \"tgt\"; password = \"target-secret-2\"; }\n"
		 ");\n"
		 "discovery = { incoming_users = [ \"alice\", \"bob\" ]; outgoing_user = \"tgt\"; };\n"
		 "targets = (\n"
		 "  { tid = 1; name = \"iqn.2026-11.io.ringstor:a\"; incoming_users = [ \"bob\" ];\n"
		 "    outgoing_user = \"tgt\"; },\n"
		 "  { tid = 2; name = \"iqn.2026-11.io.ringstor:b\"; }\n"
		 ");\n") != 0)
		fail_msg("%s", err);
	assert_int_equal(ch->naccounts, 3);
	assert_string_equal(ch->accounts[0].user, "alice");
	assert_string_equal(ch->accounts[0].password, "alice-secret-1");
	assert_int_equal(ch->accounts[1].line, 3);
	assert_int_equal(ch->nweak, 1);
	assert_int_equal(ch->discovery.nin, 2);
	assert_string_equal(ch->discovery.in[1], "bob");
	assert_string_equal(ch->discovery.out, "tgt");
	assert_int_equal(ch->ntargets, 2);
	assert_int_equal(ch->targets[0].chap.nin, 1);
	assert_string_equal(ch->targets[0].chap.in[0], "bob");
	assert_string_equal(ch->targets[0].chap.out, "tgt");
	assert_int_equal(ch->targets[1].chap.nin, 0);
	assert_string_equal(ch->targets[1].chap.out, "");
	config_free(&cfg);
	assert_int_equal(cfg.naccounts, 0);
	assert_null(cfg.accounts);
	assert_int_equal(cfg.discovery.nin, 0);

	/* per-LUN thin_provisioning */
	if (load("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		 "  luns = ( { lun = 1; type = \"null\"; thin_provisioning = true; },\n"
		 "           { lun = 2; type = \"null\"; thin_provisioning = false; },\n"
		 "           { lun = 3; type = \"null\"; } ); } );") != 0)
		fail_msg("%s", err);
	assert_true(cfg.targets[0].luns[0].thin_provisioning);
	assert_false(cfg.targets[0].luns[1].thin_provisioning);
	assert_false(cfg.targets[0].luns[2].thin_provisioning);
	config_free(&cfg);
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  luns = ( { lun = 1; type = \"null\";\n thin_provisioning = 1; } ); } );", 3,
		     "true or false");

	/* no accounts: the empty set, and an empty user list is harmless */
	assert_int_equal(load("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";"
			      " incoming_users = [ ]; } );"), 0);
	assert_int_equal(cfg.naccounts, 0);
	config_free(&cfg);

	/* errors, at the line of the culprit */
	expect_error("accounts = {\n};", 1, "must be a list");
	expect_error("accounts = (\n { user = \"a\"; }\n);", 2, "without 'password");
	expect_error("accounts = (\n { password = \"abcdefghijklm\"; }\n);", 2, "without 'user");
	expect_error("accounts = (\n { user = \"a\";\n   pass = \"x\"; }\n);", 3, "unknown setting 'pass'");
	expect_error("accounts = (\n { user = \"a b\"; password = \"abcdefghijklm\"; }\n);", 2,
		     "printable");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; },\n"
		     " { user = \"a\"; password = \"abcdefghijklm\"; }\n);", 3,
		     "duplicate account 'a' (first at line 2)");
	expect_error("accounts = (\n { user = \"a\";\n password = \"\"; }\n);", 3, "missing account password");
	char big[600];
	snprintf(big, sizeof(big), "accounts = (\n { user = \"a\";\n password = \"%0300d\"; }\n);", 0);
	expect_error(big, 3, "too long");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  incoming_users = [ \"a\",\n \"zed\" ]; } );", 6,
		     "target 1: incoming user 'zed' is not in 'accounts'");
	expect_error("targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  incoming_users = [ \"zed\" ]; } );", 2, "not in 'accounts'");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  outgoing_user = \"zed\"; } );", 5, "outgoing user 'zed'");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  incoming_users = [ \"a\", \"a\" ]; } );", 5, "duplicate incoming user");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  outgoing_user = [ \"a\" ]; } );", 5, "must be a string");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "discovery = {\n incoming_users = [ \"b\" ];\n};", 5,
		     "discovery: incoming user 'b'");
	expect_error("discovery = {\n users = [ ];\n};", 2, "unknown setting 'users' in discovery");
	expect_error("discovery = 1;", 1, "must be a group");
	/* RFC 7143 9.2.1: one account, one direction */
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "discovery = { incoming_users = [ \"a\" ]; };\n"
		     "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  outgoing_user = \"a\"; } );", 6, "9.2.1");
	expect_error("accounts = (\n { user = \"a\"; password = \"abcdefghijklm\"; }\n);\n"
		     "discovery = {\n outgoing_user = \"a\"; };\n"
		     "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		     "  incoming_users = [ \"a\" ]; } );", 5, "both as an outgoing and an incoming");
}

/* load -> apply -> dump -> load -> apply again -> dump: the same. */
static char *dump_now(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	reg_dump_config(f);
	fclose(f);
	return buf;
}

static void apply_with_portals(void)
{
	const char *texts[CONFIG_MAX_PORTALS];

	for (int i = 0; i < cfg.nportals; i++)
		texts[i] = cfg.portals[i].text;
	reg_set_sys_info("test", 1, texts, cfg.nportals);
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

static void test_dump_roundtrip(void **state)
{
	char dir[] = "/tmp/ringstor-dump-XXXXXX", text[4096], path[256], path2[300];
	char *d1, *d2;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lun1.img", dir);
	/* a path that needs escaping in a config string */
	snprintf(path2, sizeof(path2), "%s/we\\\\ird \\\"name\\\".img", dir);
	snprintf(text, sizeof(text),
		 "iscsi = { portals = [ \"127.0.0.1:3260\", \"127.0.0.2:3260,2\", \"[::1]:3261,3\" ]; };\n"
		 "accounts = (\n"
		 "  { user = \"alice\"; password = \"al\\\"ice\\\\sec ret\"; },\n"
		 "  { user = \"bob\"; password = \"short\"; },\n"
		 "  { user = \"tgt\"; password = \"target-secret-2\"; }\n"
		 ");\n"
		 "discovery = { incoming_users = [ \"alice\" ]; };\n"
		 "targets = (\n"
		 " { tid = 3; name = \"iqn.2026-11.io.ringstor:a\";\n"
		 "   luns = ( { lun = 1; path = \"%s\"; create = true; size = \"8M\"; direct = true; },\n"
		 "            { lun = 2; type = \"null\"; size = \"6G\"; block_size = 4096; serial = \"SN-2\";\n"
		 "              thin_provisioning = true; },\n"
		 "            { lun = 5; path = \"%s\"; create = true; size = \"1M\"; } );\n"
		 "   initiator_address = [ \"127.0.0.1\", \"10.0.0.0/8\" ];\n"
		 "   initiator_name = [ \"iqn.2026-11.test:i\" ];\n"
		 "   incoming_users = [ \"alice\", \"bob\" ]; outgoing_user = \"tgt\"; },\n"
		 " { tid = 1; name = \"iqn.2026-11.io.ringstor:b\"; }\n"
		 ");\n", path, path2);
	reg_init();
	if (load(text) != 0)
		fail_msg("%s", err);
	apply_with_portals();
	config_free(&cfg);
	d1 = dump_now();
	assert_non_null(strstr(d1, "block_size = 4096; thin_provisioning = true; serial = \"SN-2\";"));
	{
		/* show tells thin only where it was asked for */
		char *sb = NULL;
		size_t sl = 0;
		FILE *f = open_memstream(&sb, &sl);
		reg_show_targets(f, 3, false);
		fclose(f);
		const char *l2 = strstr(sb, "        LUN: 2\n");
		assert_non_null(l2);
		assert_non_null(strstr(l2, "Thin-provisioning: Yes"));
		assert_true(strstr(sb, "Thin-provisioning: No") < l2);
		free(sb);
	}

	/* the dump is a valid config describing the same thing */
	if (load(d1) != 0)
		fail_msg("%s\n%s", err, d1);
	assert_int_equal(cfg.nportals, 3);
	assert_string_equal(cfg.portals[0].text, "127.0.0.1:3260,1");
	assert_int_equal(cfg.portals[1].tpgt, 2);
	assert_int_equal(cfg.portals[2].tpgt, 3);
	assert_int_equal(cfg.ntargets, 2);
	assert_int_equal(cfg.targets[0].tid, 1);      /* listed by tid */
	const struct rs_config_target *t = &cfg.targets[1];
	assert_int_equal(t->tid, 3);
	assert_int_equal(t->nluns, 3);
	assert_string_equal(t->luns[0].path, path);
	assert_true(t->luns[0].bs.direct);
	assert_false(t->luns[0].bs.create);
	assert_string_equal(t->luns[1].bstype, "null");
	assert_true(t->luns[1].bs.size == 6ull << 30);
	assert_int_equal(t->luns[1].bs.block_size, 4096);
	assert_string_equal(t->luns[1].serial, "SN-2");
	assert_false(t->luns[0].thin_provisioning);
	assert_true(t->luns[1].thin_provisioning);
	assert_false(t->luns[2].thin_provisioning);
	assert_true(t->luns[2].lun == 5);
	assert_non_null(strstr(t->luns[2].path, "we\\ird \"name\".img"));
	assert_int_equal(t->naddr_acls, 2);
	assert_string_equal(t->addr_acls[1], "10.0.0.0/8");
	assert_int_equal(t->nname_acls, 1);
	assert_int_equal(cfg.naccounts, 3);
	assert_string_equal(cfg.accounts[0].password, "al\"ice\\sec ret");
	assert_int_equal(cfg.discovery.nin, 1);
	assert_int_equal(t->chap.nin, 2);
	assert_string_equal(t->chap.out, "tgt");

	/* ... and recreates the same registry */
	reg_shutdown();
	reg_init();
	apply_with_portals();
	config_free(&cfg);
	d2 = dump_now();
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);

	/* an empty registry dumps to a file that loads to nothing */
	reg_shutdown();
	reg_init();
	d1 = dump_now();
	assert_int_equal(load(d1), 0);
	assert_int_equal(cfg.ntargets, 0);
	assert_int_equal(cfg.nportals, 0);
	config_free(&cfg);
	free(d1);
	reg_shutdown();
	unlink(path);
	{
		char p2[300];
		snprintf(p2, sizeof(p2), "%s/we\\ird \"name\".img", dir);
		unlink(p2);
	}
	rmdir(dir);
}

/* apply creates accounts and bindings; a failure rolls them back too */
static void test_apply_accounts(void **state)
{
	char sec[REG_CHAP_SECRET_MAX], user[REG_CHAP_USER_MAX];
	(void)state;

	reg_init();
	if (load("accounts = ( { user = \"alice\"; password = \"alice-secret-1\"; },\n"
		 "  { user = \"tgt\"; password = \"target-secret-2\"; } );\n"
		 "discovery = { incoming_users = [ \"alice\" ]; };\n"
		 "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		 "  incoming_users = [ \"alice\" ]; outgoing_user = \"tgt\"; } );\n") != 0)
		fail_msg("%s", err);
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	assert_true(reg_chap_required(t));
	assert_true(reg_chap_required(NULL));
	assert_int_equal(reg_chap_incoming_secret(t, "alice", sec, sizeof(sec)), 0);
	assert_string_equal(sec, "alice-secret-1");
	assert_int_equal(reg_chap_outgoing(t, user, sizeof(user), sec, sizeof(sec)), 0);
	assert_string_equal(user, "tgt");
	reg_target_put(t);

	/* a second file whose account clashes changes nothing */
	assert_int_equal(load("accounts = ( { user = \"carol\"; password = \"carol-secret-1\"; },\n"
			      " { user = \"alice\"; password = \"alice-secret-9\"; } );\n"
			      "targets = ( { tid = 2; name = \"iqn.2026-11.io.ringstor:b\"; } );"), 0);
	assert_int_equal(config_apply(&cfg, err, sizeof(err)), -1);
	config_free(&cfg);
	assert_non_null(strstr(err, "t.conf:2: "));
	assert_non_null(strstr(err, "already exists"));
	assert_false(reg_target_exists(2));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	reg_show_accounts(f, false);
	fclose(f);
	assert_string_equal(buf, "Account list:\n    alice\n    tgt\n"
			    "Discovery account information:\n    alice\n");
	free(buf);
	/* accounts created before a failing target are rolled back too */
	assert_int_equal(load("accounts = ( { user = \"dave\"; password = \"dave-secret-12\"; } );\n"
			      "targets = ( { tid = 2; name = \"iqn.2026-11.io.ringstor:b\";\n"
			      "  incoming_users = [ \"dave\" ]; outgoing_user = \"dave\"; } );"), -1);
	assert_int_equal(load("accounts = ( { user = \"dave\"; password = \"dave-secret-12\"; } );\n"
			      "targets = ( { tid = 2; name = \"iqn.2026-11.io.ringstor:b\";\n"
			      "  incoming_users = [ \"dave\" ]; },\n"
			      " { tid = 1; name = \"iqn.2026-11.io.ringstor:c\"; } );"), 0);
	assert_int_equal(config_apply(&cfg, err, sizeof(err)), -1);
	config_free(&cfg);
	assert_non_null(strstr(err, "t.conf:4: "));
	assert_false(reg_target_exists(2));
	buf = NULL;
	f = open_memstream(&buf, &len);
	reg_show_accounts(f, false);
	fclose(f);
	assert_null(strstr(buf, "dave"));
	free(buf);
	reg_shutdown();
}

/* online resize with the real file and null backends */
static void test_resize_real(void **state)
{
	char dir[] = "/tmp/ringstor-resize-XXXXXX", text[1024], path[256], e[256];
	struct stat st;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lun1.img", dir);
	snprintf(text, sizeof(text),
		 "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:a\";\n"
		 "  luns = ( { lun = 1; path = \"%s\"; create = true; size = \"8M\"; },\n"
		 "           { lun = 2; type = \"null\"; size = \"4M\"; },\n"
		 "           { lun = 3; path = \"%s\"; readonly = true; } ); } );\n", path, path);
	reg_init();
	if (load(text) != 0)
		fail_msg("%s", err);
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
	struct iscsi_target *t = reg_target_get("iqn.2026-11.io.ringstor:a");
	struct scsi_lu *lu1 = reg_target_lun_get(t, 1), *lu2 = reg_target_lun_get(t, 2);

	assert_int_equal(reg_lun_resize(1, 1, 32 << 20, false, e, sizeof(e)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 32 << 20);
	assert_true(atomic_load(&lu1->nr_blocks) == (32 << 20) / 512);
	assert_int_equal(reg_lun_resize(1, 1, 16 << 20, false, e, sizeof(e)), -EINVAL);
	assert_int_equal(reg_lun_resize(1, 1, 16 << 20, true, e, sizeof(e)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 16 << 20);
	assert_true(atomic_load(&lu1->nr_blocks) == (16 << 20) / 512);
	/* growing the file behind our back + refresh */
	assert_int_equal(truncate(path, 20 << 20), 0);
	assert_int_equal(reg_lun_refresh(1, 1, e, sizeof(e)), 0);
	assert_true(atomic_load(&lu1->nr_blocks) == (20 << 20) / 512);
	/* null */
	assert_int_equal(reg_lun_resize(1, 2, 1ull << 40, false, e, sizeof(e)), 0);
	assert_true(atomic_load(&lu2->nr_blocks) == (1ull << 40) / 512);
	assert_int_equal(reg_lun_resize(1, 2, 1 << 20, false, e, sizeof(e)), -EINVAL);
	assert_int_equal(reg_lun_resize(1, 2, 1 << 20, true, e, sizeof(e)), 0);
	assert_true(atomic_load(&lu2->nr_blocks) == (1 << 20) / 512);
	/* read-only */
	assert_int_equal(reg_lun_resize(1, 3, 64 << 20, false, e, sizeof(e)), -EROFS);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size == 20 << 20);
	scsi_lu_put(lu1);
	scsi_lu_put(lu2);
	reg_target_put(t);
	reg_shutdown();
	unlink(path);
	rmdir(dir);
}

/* ---- daemon.state_dir and the nfs section ---- */

static void test_state_dir(void **state)
{
	char longp[5000];
	(void)state;

	assert_int_equal(load(""), 0);
	assert_string_equal(cfg.state_dir, "");
	assert_string_equal(cfg.nfs.state_dir, CONFIG_DEFAULT_STATE_DIR);
	config_free(&cfg);
	if (load("daemon = {\n state_dir = \"/srv/ringstor state\";\n};\n") != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg.state_dir, "/srv/ringstor state");
	/* the NFS handle secret follows it */
	assert_string_equal(cfg.nfs.state_dir, "/srv/ringstor state");
	config_free(&cfg);
	expect_error("daemon = {\n state_dir = \"var/state\";\n};", 2, "absolute path");
	expect_error("daemon = {\n state_dir = \"\";\n};", 2, "absolute path");
	expect_error("daemon = {\n state_dir = 3;\n};", 2, "must be a string");
	expect_error("daemon = {\n state_dir = \"/a\\nb\";\n};", 2, "control character");
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	snprintf(longp + 4200, 100, "\";\n};");
	{
		char text[5200];
		snprintf(text, sizeof(text), "daemon = {\n state_dir = \"%s", longp);
		expect_error(text, 2, "too long");
	}
}

static void test_nfs_defaults(void **state)
{
	(void)state;
	assert_int_equal(load(""), 0);
	assert_false(cfg.nfs_enabled);
	assert_string_equal(cfg.nfs.bind_addr, "0.0.0.0");
	assert_int_equal(cfg.nfs.nfs_port, 2049);
	assert_int_equal(cfg.nfs.mount_port, 20048);
	assert_int_equal(cfg.nfs.nlm_port, 32803);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_AUTO);
	assert_int_equal(cfg.nfs.portmap_port, 111);
	assert_int_equal(cfg.nexports, 0);
	config_free(&cfg);
	assert_int_equal(load("nfs = { };"), 0);
	assert_false(cfg.nfs_enabled);
	config_free(&cfg);
}

static const char *nfs_conf =
	"nfs = {\n"
	"  enabled = true;\n"
	"  bind = \"127.0.0.1\";\n"
	"  nfs_port = 12049; mount_port = 0; nlm_port = 12049;\n"
	"  portmap = \"off\";\n"
	"  portmap_port = 1111;\n"
	"  exports = (\n"
	"    { path = \"/srv/images\"; clients = \"10.0.0.0/8(rw,no_root_squash) *(ro)\"; },\n"
	"    \"/srv/iso *(ro,insecure)\",\n"
	"    { path = \"/srv/a b(c)\"; clients = \"::1(rw,fsid=7,anonuid=1000)\"; },\n"
	"    \"/srv/all\"\n"
	"  );\n"
	"};\n";

static void test_nfs_section(void **state)
{
	const struct rs_config_export *e;
	(void)state;

	if (load(nfs_conf) != 0)
		fail_msg("%s", err);
	assert_true(cfg.nfs_enabled);
	assert_string_equal(cfg.nfs.bind_addr, "127.0.0.1");
	assert_int_equal(cfg.nfs.nfs_port, 12049);
	assert_int_equal(cfg.nfs.mount_port, 0);
	assert_int_equal(cfg.nfs.nlm_port, 12049);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_OFF);
	assert_int_equal(cfg.nfs.portmap_port, 1111);
	assert_int_equal(cfg.nexports, 4);
	e = &cfg.exports[0];
	assert_string_equal(e->path, "/srv/images");
	assert_int_equal(e->line, 8);
	assert_int_equal(e->nclients, 2);
	assert_int_equal(e->clients[0].kind, EXPORT_CLIENT_ADDR);
	assert_string_equal(e->clients[0].spec, "10.0.0.0/8");
	assert_true(e->clients[0].opts.rw);
	assert_false(e->clients[0].opts.root_squash);
	assert_true(e->clients[0].opts.sync);
	assert_int_equal(e->clients[1].kind, EXPORT_CLIENT_ANY);
	assert_false(e->clients[1].opts.rw);
	assert_true(e->clients[1].opts.root_squash);
	e = &cfg.exports[1];
	assert_string_equal(e->path, "/srv/iso");
	assert_int_equal(e->line, 9);
	assert_int_equal(e->nclients, 1);
	assert_false(e->clients[0].opts.secure);
	assert_false(e->clients[0].opts.rw);
	e = &cfg.exports[2];
	assert_string_equal(e->path, "/srv/a b(c)");     /* escaped and back */
	assert_int_equal(e->clients[0].kind, EXPORT_CLIENT_ADDR);
	assert_true(e->clients[0].opts.fsid_set);
	assert_int_equal(e->clients[0].opts.fsid, 7);
	assert_int_equal(e->clients[0].opts.anonuid, 1000);
	e = &cfg.exports[3];
	assert_string_equal(e->path, "/srv/all");         /* exports(5): everyone, ro */
	assert_int_equal(e->nclients, 1);
	assert_int_equal(e->clients[0].kind, EXPORT_CLIENT_ANY);
	config_free(&cfg);
	assert_null(cfg.exports);

	/* every portmap word; an array of lines is fine too */
	assert_int_equal(load("nfs = { portmap = \"builtin\"; exports = [ \"/x *(rw)\" ]; };"), 0);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_BUILTIN);
	assert_int_equal(cfg.nexports, 1);
	config_free(&cfg);
	assert_int_equal(load("nfs = { portmap = \"rpcbind\"; bind = \"::\"; };"), 0);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_RPCBIND);
	assert_string_equal(cfg.nfs.bind_addr, "::");
	config_free(&cfg);
	assert_int_equal(load("nfs = { portmap = \"auto\"; };"), 0);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_AUTO);
	config_free(&cfg);
	/* state_dir reaches the NFS settings wherever the sections are */
	assert_int_equal(load("nfs = { enabled = true; };\ndaemon = { state_dir = \"/st\"; };"), 0);
	assert_string_equal(cfg.nfs.state_dir, "/st");
	config_free(&cfg);
}

static void test_nfs_errors(void **state)
{
	(void)state;
	expect_error("nfs = {\n enabled = true;\n exprots = ( );\n};", 3, "unknown setting 'exprots' in nfs");
	expect_error("nfs = (\n);", 1, "must be a group");
	expect_error("nfs = {\n enabled = 1;\n};", 2, "true or false");
	expect_error("nfs = {\n bind = \"localhost\";\n};", 2, "numeric");
	expect_error("nfs = {\n bind = 1;\n};", 2, "must be a string");
	expect_error("nfs = {\n nfs_port = 0;\n};", 2, "out of range");
	expect_error("nfs = {\n\n nfs_port = 65536;\n};", 3, "out of range");
	expect_error("nfs = {\n mount_port = -1;\n};", 2, "out of range");
	expect_error("nfs = {\n portmap_port = 0;\n};", 2, "out of range");
	expect_error("nfs = {\n portmap = \"yes\";\n};", 2, "unknown portmap 'yes'");
	expect_error("nfs = {\n portmap = true;\n};", 2, "must be a string");
	expect_error("nfs = {\n mount_port = 5000;\n nlm_port = 5000;\n};", 3, "both 5000");
	expect_error("nfs = {\n nfs_port = 111;\n};", 1, "portmap_port 111");
	expect_error("nfs = {\n nfs_port = 111;\n portmap_port = 111;\n};", 3, "portmap_port 111");
	/* ... but with the portmapper off, port 111 is free */
	assert_int_equal(load("nfs = { nfs_port = 111; portmap = \"off\"; };"), 0);
	config_free(&cfg);
	expect_error("nfs = {\n exports = \"/x\";\n};", 2, "must be a list");
	expect_error("nfs = {\n exports = (\n 5\n );\n};", 3, "exports(5) line");
	/* unknown options are refused with the parser's own words */
	/* (libconfig gives a string the line of the token after it: keep
	 * the closing parenthesis on the string's line) */
	expect_error("nfs = {\n exports = (\n \"/x *(rw)\",\n \"/y *(rw,nohide)\" );\n};", 4,
		     "nfs export: unknown export option 'nohide'");
	expect_error("nfs = {\n exports = (\n { path = \"/x\";\n  clients = \"*(rw,bogus=1)\"; }\n );\n};",
		     4, "unknown export option 'bogus=1'");
	expect_error("nfs = {\n exports = (\n \"srv/x *(rw)\" );\n};", 3, "not absolute");
	expect_error("nfs = {\n exports = (\n { path = \"srv/x\"; clients = \"*\"; }\n );\n};", 3,
		     "not absolute");
	expect_error("nfs = {\n exports = (\n { clients = \"*\"; }\n );\n};", 3, "without 'path");
	expect_error("nfs = {\n exports = (\n { path = \"/x\";\n host = \"*\"; }\n );\n};", 4,
		     "unknown setting 'host' in an nfs export");
	expect_error("nfs = {\n exports = (\n { path = \"/x\"; clients = 3; }\n );\n};", 3,
		     "must be a string");
	expect_error("nfs = {\n exports = (\n \"/x 10.0.0.0/33(rw)\" );\n};", 3, "10.0.0.0/33");
	expect_error("nfs = {\n exports = (\n \"/x @netgroup(rw)\" );\n};", 3, "netgroups");
	expect_error("nfs = {\n exports = (\n \"/x *(rw\" );\n};", 3, "nfs export:");
	expect_error("nfs = {\n exports = (\n \"/x *(rw)\",\n { path = \"/x\"; clients = \"*\"; }\n );\n};",
		     4, "duplicate nfs export /x (first at line 3)");
	expect_error("nfs = {\n exports = (\n \"/x *(fsid=5)\",\n"
		     " { path = \"/y\";\n clients = \"*(ro,fsid=5)\"; }\n );\n};",
		     5, "fsid=5 is already used by /x (line 3)");
}

static void test_export_line(void **state)
{
	char line[256], path[4096];
	struct export_client *cl;
	int n;
	(void)state;

	assert_int_equal(config_export_line("/srv/x", "*(rw)", line, sizeof(line)), 0);
	assert_string_equal(line, "/srv/x *(rw)");
	assert_int_equal(config_export_line("/srv/x", "", line, sizeof(line)), 0);
	assert_string_equal(line, "/srv/x");
	assert_int_equal(config_export_line("/srv/x", NULL, line, sizeof(line)), 0);
	assert_string_equal(line, "/srv/x");
	assert_int_equal(config_export_line("/a b\t\"q\"\\#(p)", "h(ro)", line, sizeof(line)), 0);
	assert_string_equal(line, "/a\\040b\\011\\042q\\042\\134\\043\\050p\\051 h(ro)");
	assert_int_equal(exports_parse_line(line, path, sizeof(path), &cl, &n, NULL, 0), 0);
	assert_string_equal(path, "/a b\t\"q\"\\#(p)");
	assert_int_equal(n, 1);
	assert_string_equal(cl[0].spec, "h");
	free(cl);
	/* does not fit: refused, never truncated */
	assert_int_equal(config_export_line("/srv/x", "*(rw)", line, 8), -1);
	assert_int_equal(config_export_line("/a b", NULL, line, 4), -1);
	assert_int_equal(config_export_line("/a b", NULL, line, 7), -1);
	assert_int_equal(config_export_line("/a b", NULL, line, 8), 0);
	assert_string_equal(line, "/a\\040b");
	assert_int_equal(config_export_line("/ab", NULL, line, 3), -1);
	assert_int_equal(config_export_line("/ab", NULL, NULL, 3), -1);
}

static char *dump_all(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	reg_dump_config(f);
	config_dump_nfs(f);
	fclose(f);
	return buf;
}

static void test_nfs_apply_dump(void **state)
{
	char dir[] = "/tmp/ringstor-nfs-XXXXXX", d1[PATH_MAX + 16], d2[PATH_MAX + 16], d3[PATH_MAX + 16];
	char text[3 * PATH_MAX + 1024], canon[PATH_MAX];
	char *dump, *dump2, *show = NULL;
	size_t slen = 0;
	struct nfs_export *e;
	FILE *f;
	(void)state;

	assert_non_null(mkdtemp(dir));
	assert_non_null(realpath(dir, canon));
	snprintf(d1, sizeof(d1), "%s/images", canon);
	snprintf(d2, sizeof(d2), "%s/iso dir", canon);
	snprintf(d3, sizeof(d3), "%s/missing", canon);
	assert_int_equal(mkdir(d1, 0755), 0);
	assert_int_equal(mkdir(d2, 0755), 0);
	reg_init();

	/* disabled: checked but not served */
	snprintf(text, sizeof(text), "nfs = { exports = ( \"%s *(rw)\" ); };", d1);
	assert_int_equal(load(text), 0);
	assert_int_equal(config_apply(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	assert_false(config_nfs_enabled());
	assert_null(nfs_export_get_by_path(d1));
	dump = dump_all();
	assert_null(strstr(dump, "nfs = {"));     /* nothing to say */
	free(dump);

	/* enabled: the exports are in the table, with their options */
	snprintf(text, sizeof(text),
		 "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:n\"; } );\n"
		 "nfs = {\n enabled = true; bind = \"127.0.0.1\"; nfs_port = 12049; portmap = \"builtin\";\n"
		 " exports = (\n"
		 "  { path = \"%s\"; clients = \"10.0.0.0/8(rw,no_root_squash) *(ro)\"; },\n"
		 "  { path = \"%s\"; clients = \"127.0.0.1(rw,insecure,fsid=42)\"; }\n"
		 " );\n};\n", d1, d2);
	if (load(text) != 0)
		fail_msg("%s", err);
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
	assert_true(config_nfs_enabled());
	e = nfs_export_get_by_path(d1);
	assert_non_null(e);
	assert_int_equal(e->nclients, 2);
	assert_true(e->clients[0].opts.rw);
	nfs_export_put(e);
	e = nfs_export_get_by_id(42);
	assert_non_null(e);
	assert_string_equal(e->path, d2);
	nfs_export_put(e);
	f = open_memstream(&show, &slen);
	nfs_exports_show(f, false);
	fclose(f);
	assert_non_null(strstr(show, "10.0.0.0/8(rw,"));
	free(show);

	/* the dump carries the nfs section and loads back to the same */
	dump = dump_all();
	assert_non_null(strstr(dump, "\nnfs = {\n    enabled = true;\n    bind = \"127.0.0.1\";\n"
				     "    nfs_port = 12049;"));
	assert_non_null(strstr(dump, "portmap = \"builtin\";"));
	if (load(dump) != 0)
		fail_msg("%s\n%s", err, dump);
	assert_true(cfg.nfs_enabled);
	assert_int_equal(cfg.nfs.nfs_port, 12049);
	assert_int_equal(cfg.nfs.portmap, RS_NFS_PORTMAP_BUILTIN);
	assert_int_equal(cfg.nexports, 2);
	assert_string_equal(cfg.exports[1].path, d2);
	assert_true(cfg.exports[1].clients[0].opts.fsid_set);
	assert_false(cfg.exports[1].clients[0].opts.secure);
	reg_shutdown();
	nfs_exports_clear();
	reg_init();
	if (config_apply(&cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
	dump2 = dump_all();
	assert_string_equal(dump, dump2);
	free(dump);
	free(dump2);

	/* a missing directory fails the apply at its line, and undoes all */
	reg_shutdown();
	nfs_exports_clear();
	reg_init();
	snprintf(text, sizeof(text),
		 "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:n\"; } );\n"
		 "nfs = {\n enabled = true;\n exports = (\n \"%s *\",\n \"%s *\" );\n};\n", d1, d3);
	assert_int_equal(load(text), 0);
	assert_int_equal(config_apply(&cfg, err, sizeof(err)), -1);
	config_free(&cfg);
	if (!strstr(err, "t.conf:6: nfs: ") || !strstr(err, "/missing"))
		fail_msg("%s", err);
	assert_false(reg_target_exists(1));
	assert_null(nfs_export_get_by_path(d1));

	reg_shutdown();
	nfs_exports_clear();
	rmdir(d1);
	rmdir(d2);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_digest_settings),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_syntax_error),
		cmocka_unit_test(test_shipped_files),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_portal),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_portal_tags),
		cmocka_unit_test(test_accounts_config),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_apply_accounts),
		cmocka_unit_test(test_resize_real),
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_nfs_defaults),
		cmocka_unit_test(test_nfs_section),
		cmocka_unit_test(test_nfs_errors),
		cmocka_unit_test(test_export_line),
		cmocka_unit_test(test_nfs_apply_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
