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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
