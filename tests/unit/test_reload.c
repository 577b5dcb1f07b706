/* test_reload.c - configuration reload (conf/reload.c): the diff between
 * two configurations, table-driven, and applying it to the real registry
 * (sessions keep their target and LUNs; a broken file changes nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/reload.h"
#include "core/log.h"
#include "nfsgw/exports.h"
#include "target/registry.h"

/* ---- helpers ---- */

static void load_ok(const char *text, struct rs_config *c)
{
	char err[512];

	if (config_load_string(text, "t.conf", c, err, sizeof(err)) < 0)
		fail_msg("config did not load: %s\n%s", err, text);
}

/* Compact, stable text of an action for the tables. */
static void key(const struct reload_action *a, char *buf, size_t len)
{
	const char *op = reload_op_name(a->op);

	switch (a->op) {
	case RL_RESTART:
		snprintf(buf, len, "restart");
		break;
	case RL_LOG_LEVEL:
	case RL_ACCOUNT_ADD:
	case RL_ACCOUNT_PASSWORD:
	case RL_ACCOUNT_DEL:
	case RL_EXPORT_DEL:
	case RL_EXPORT_ADD:
	case RL_EXPORT_UPDATE:
		snprintf(buf, len, "%s %s", op, a->name);
		break;
	case RL_BIND_DEL:
	case RL_BIND_ADD:
		snprintf(buf, len, "%s %d %s%s", op, a->tid, a->name, a->outgoing ? " out" : "");
		break;
	case RL_TARGET_DEL:
	case RL_TARGET_ADD:
		snprintf(buf, len, "%s %d", op, a->tid);
		break;
	case RL_LUN_DEL:
	case RL_LUN_ADD:
	case RL_LUN_REPLACE:
		snprintf(buf, len, "%s %d/%" PRIu64, op, a->tid, a->lun);
		break;
	default:
		snprintf(buf, len, "%s %d %s", op, a->tid, a->name);
		break;
	}
}

/* ---- the diff, table-driven ---- */

#define T1 "tid = 1; name = \"iqn.2026-11.io.ringstor:a\"; "
#define T2 "tid = 2; name = \"iqn.2026-11.io.ringstor:b\"; "
#define ACC "accounts = ( { user = \"u1\"; password = \"secret-0001\"; }, " \
	    "{ user = \"u2\"; password = \"secret-0002\"; } );\n"
#define NULLLUN(n) "{ lun = " #n "; type = \"null\"; size = \"1G\"; }"

struct diff_case {
	const char *name;
	const char *running;
	const char *file;
	unsigned flags;
	const char *expect[12];   /* in order; NULL-terminated */
};

static const struct diff_case cases[] = {
	{ "identical",
	  ACC "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); initiator_address = [ \"ALL\" ]; "
	  "incoming_users = [ \"u1\" ]; } );",
	  ACC "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); initiator_address = [ \"ALL\" ]; "
	  "incoming_users = [ \"u1\" ]; } );",
	  0, { NULL } },
	{ "empty to empty", "", "", 0, { NULL } },
	{ "target added",
	  "targets = ( { " T1 "} );",
	  "targets = ( { " T1 "}, { " T2 "luns = ( " NULLLUN(1) " ); } );",
	  0, { "target-add 2", NULL } },
	{ "target removed",
	  "targets = ( { " T1 "}, { " T2 "} );",
	  "targets = ( { " T2 "} );",
	  0, { "target-del 1", NULL } },
	{ "tid renamed: removed, then added",
	  "targets = ( { " T1 "} );",
	  "targets = ( { tid = 1; name = \"iqn.2026-11.io.ringstor:other\"; } );",
	  0, { "target-del 1", "target-add 1", NULL } },
	{ "target name compares without case (eui hex)",
	  "targets = ( { tid = 3; name = \"eui.02004567A425678D\"; } );",
	  "targets = ( { tid = 3; name = \"eui.02004567a425678d\"; } );",
	  0, { NULL } },
	{ "LUN added and removed",
	  "targets = ( { " T1 "luns = ( " NULLLUN(1) ", " NULLLUN(2) " ); } );",
	  "targets = ( { " T1 "luns = ( " NULLLUN(2) ", " NULLLUN(3) " ); } );",
	  0, { "lun-del 1/1", "lun-add 1/3", NULL } },
	{ "LUN path changed",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; } ); } );",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/b\"; } ); } );",
	  0, { "lun-replace 1/1", NULL } },
	{ "LUN type changed",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; } ); } );",
	  "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); } );",
	  0, { "lun-replace 1/1", NULL } },
	{ "LUN block size, readonly, direct, thin changed",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; }, { lun = 2; path = \"/a2\"; }, "
	  "{ lun = 3; path = \"/a3\"; }, { lun = 4; path = \"/a4\"; } ); } );",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; block_size = 4096; }, "
	  "{ lun = 2; path = \"/a2\"; readonly = true; }, { lun = 3; path = \"/a3\"; direct = true; }, "
	  "{ lun = 4; path = \"/a4\"; thin_provisioning = true; } ); } );",
	  0, { "lun-replace 1/1", "lun-replace 1/2", "lun-replace 1/3", "lun-replace 1/4", NULL } },
	{ "file LUN: create/size are creation parameters, not changes",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; } ); } );",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; create = true; size = \"1G\"; } ); } );",
	  0, { NULL } },
	{ "serial: derived (empty) matches, explicit differs",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; serial = \"abc\"; }, "
	  "{ lun = 2; path = \"/b\"; serial = \"def\"; } ); } );",
	  "targets = ( { " T1 "luns = ( { lun = 1; path = \"/a\"; }, "
	  "{ lun = 2; path = \"/b\"; serial = \"xyz\"; } ); } );",
	  0, { "lun-replace 1/2", NULL } },
	{ "null LUN size",
	  "targets = ( { " T1 "luns = ( " NULLLUN(1) ", { lun = 2; type = \"null\"; size = \"1G\"; } ); } );",
	  "targets = ( { " T1 "luns = ( " NULLLUN(1) ", { lun = 2; type = \"null\"; size = \"2G\"; } ); } );",
	  0, { "lun-replace 1/2", NULL } },
	{ "ACLs: removals before additions, names without case",
	  "targets = ( { " T1 "initiator_address = [ \"127.0.0.1\", \"10.0.0.0/8\" ]; "
	  "initiator_name = [ \"iqn.2026-11.test:x\" ]; } );",
	  "targets = ( { " T1 "initiator_address = [ \"10.0.0.0/8\", \"ALL\" ]; "
	  "initiator_name = [ \"iqn.2026-11.test:x\", \"iqn.2026-11.test:y\" ]; } );",
	  0, { "acl-addr-del 1 127.0.0.1", "acl-addr-add 1 ALL", "acl-name-add 1 iqn.2026-11.test:y",
	       NULL } },
	{ "accounts: added, password changed, removed",
	  "accounts = ( { user = \"u1\"; password = \"secret-0001\"; }, "
	  "{ user = \"old\"; password = \"secret-0009\"; } );",
	  "accounts = ( { user = \"u1\"; password = \"secret-1111\"; }, "
	  "{ user = \"new\"; password = \"secret-0003\"; } );",
	  0, { "account-password u1", "account-add new", "account-del old", NULL } },
	{ "CHAP: an account changes direction: unbind before bind",
	  ACC "targets = ( { " T1 "incoming_users = [ \"u1\" ]; outgoing_user = \"u2\"; } );",
	  ACC "targets = ( { " T1 "incoming_users = [ \"u2\" ]; outgoing_user = \"u1\"; } );",
	  0, { "bind-del 1 u1", "bind-del 1 u2 out", "bind-add 1 u2", "bind-add 1 u1 out", NULL } },
	{ "CHAP: discovery",
	  ACC "discovery = { incoming_users = [ \"u1\" ]; };",
	  ACC "discovery = { incoming_users = [ \"u2\" ]; };",
	  0, { "bind-del 0 u1", "bind-add 0 u2", NULL } },
	{ "CHAP: a new target carries its bindings",
	  ACC,
	  ACC "targets = ( { " T1 "incoming_users = [ \"u1\" ]; } );",
	  0, { "target-add 1", NULL } },
	{ "order: accounts, unbind, remove, change, add, bind, drop accounts",
	  "accounts = ( { user = \"gone\"; password = \"secret-0009\"; } );\n"
	  "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); incoming_users = [ \"gone\" ]; }, "
	  "{ " T2 "} );",
	  "accounts = ( { user = \"u3\"; password = \"secret-0003\"; } );\n"
	  "targets = ( { " T1 "luns = ( " NULLLUN(1) ", " NULLLUN(2) " ); incoming_users = [ \"u3\" ]; },"
	  " { tid = 3; name = \"iqn.2026-11.io.ringstor:c\"; } );",
	  0, { "account-add u3", "bind-del 1 gone", "target-del 2", "lun-add 1/2", "target-add 3",
	       "bind-add 1 u3", "account-del gone", NULL } },
	{ "settings that need a restart",
	  "daemon = { threads = 2; control_socket = \"/run/a.sock\"; state_dir = \"/var/a\"; };"
	  "iscsi = { portals = [ \"127.0.0.1:3260\" ]; queue_depth = 128; };",
	  "daemon = { threads = 4; control_socket = \"/run/b.sock\"; state_dir = \"/var/b\"; };"
	  "iscsi = { portals = [ \"127.0.0.1:3261\" ]; queue_depth = 64; };",
	  0, { "restart", "restart", "restart", "restart", "restart", NULL } },
	{ "settings overridden on the command line are not the file's",
	  "daemon = { threads = 2; control_socket = \"/run/a.sock\"; state_dir = \"/var/a\"; "
	  "log_level = \"debug\"; }; iscsi = { portals = [ \"127.0.0.1:3260\" ]; };",
	  "daemon = { threads = 4; control_socket = \"/run/b.sock\"; state_dir = \"/var/b\"; };"
	  "iscsi = { portals = [ \"127.0.0.1:3261\" ]; }; nfs = { enabled = true; };",
	  RELOAD_CLI_THREADS | RELOAD_CLI_CONTROL | RELOAD_CLI_STATE_DIR | RELOAD_CLI_PORTALS |
	  RELOAD_CLI_NFS | RELOAD_CLI_LOG_LEVEL, { NULL } },
	{ "default portal equals an explicit 0.0.0.0:3260",
	  "", "iscsi = { portals = [ \"0.0.0.0:3260\" ]; };", 0, { NULL } },
	{ "log level is live; absent means notice",
	  "daemon = { log_level = \"notice\"; };",
	  "daemon = { log_level = \"debug\"; };",
	  0, { "log-level debug", NULL } },
	{ "log level absent = notice",
	  "daemon = { log_level = \"notice\"; };", "", 0, { NULL } },
	{ "NFS enabled needs a restart; exports then untouched",
	  "", "nfs = { enabled = true; exports = ( \"/srv *(ro)\" ); };",
	  0, { "restart", NULL } },
	{ "NFS listeners need a restart",
	  "nfs = { enabled = true; nfs_port = 2049; };",
	  "nfs = { enabled = true; nfs_port = 2050; };",
	  0, { "restart", NULL } },
	{ "NFS exports: removed, updated, added, unchanged",
	  "nfs = { enabled = true; exports = ( \"/srv/a *(ro)\", \"/srv/b *(ro)\", \"/srv/c *(rw)\" ); };",
	  "nfs = { enabled = true; exports = ( \"/srv/b 10.0.0.0/8(rw) *(ro)\", \"/srv/c *(rw)\", "
	  "\"/srv/d *(ro)\" ); };",
	  0, { "export-del /srv/a", "export-update /srv/b", "export-add /srv/d", NULL } },
	{ "NFS export options",
	  "nfs = { enabled = true; exports = ( \"/srv/a *(ro,root_squash)\" ); };",
	  "nfs = { enabled = true; exports = ( \"/srv/a *(ro,no_root_squash)\" ); };",
	  0, { "export-update /srv/a", NULL } },
	{ "NFS on from the command line: the file's exports count",
	  "nfs = { enabled = true; exports = ( \"/srv/a *(ro)\" ); };",
	  "nfs = { enabled = false; exports = ( \"/srv/a *(ro)\", \"/srv/b *(ro)\" ); };",
	  RELOAD_CLI_NFS, { "export-add /srv/b", NULL } },
};

static void test_diff_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct diff_case *dc = &cases[c];
		struct rs_config r, f;
		struct reload_plan plan;
		char got[2048] = "", want[2048] = "", k[300];

		load_ok(dc->running, &r);
		load_ok(dc->file, &f);
		assert_int_equal(reload_diff(&r, &f, dc->flags, &plan), 0);
		for (int i = 0; i < plan.n; i++) {
			key(&plan.v[i], k, sizeof(k));
			strncat(got, k, sizeof(got) - strlen(got) - 2);
			strcat(got, "\n");
		}
		for (int i = 0; dc->expect[i]; i++) {
			strncat(want, dc->expect[i], sizeof(want) - strlen(want) - 2);
			strcat(want, "\n");
		}
		if (strcmp(got, want) != 0)
			fail_msg("case '%s':\nexpected:\n%sgot:\n%s", dc->name, want, got);
		/* every action describes itself */
		for (int i = 0; i < plan.n; i++) {
			char d[400];
			reload_action_str(&plan.v[i], d, sizeof(d));
			assert_true(d[0] && strcmp(d, "?") != 0);
		}
		reload_plan_free(&plan);
		config_free(&r);
		config_free(&f);
	}
}

/* Diffing a configuration with itself, whatever it holds, yields nothing. */
static void test_diff_self(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (int side = 0; side < 2; side++) {
			const char *text = side ? cases[c].file : cases[c].running;
			struct rs_config a, b;
			struct reload_plan plan;
			load_ok(text, &a);
			load_ok(text, &b);
			assert_int_equal(reload_diff(&a, &b, 0, &plan), 0);
			if (plan.n) {
				char k[300];
				key(&plan.v[0], k, sizeof(k));
				fail_msg("case '%s' side %d: '%s'", cases[c].name, side, k);
			}
			reload_plan_free(&plan);
			config_free(&a);
			config_free(&b);
		}
	}
}

/* The plan points into the configurations; the texts carry file lines. */
static void test_diff_lines_and_pointers(void **state)
{
	struct rs_config r, f;
	struct reload_plan plan;
	(void)state;

	load_ok("targets = ( { " T1 "} );", &r);
	load_ok("\n\ntargets = ( { " T1 "luns = (\n " NULLLUN(5) " ); },\n{ " T2 "} );", &f);
	assert_int_equal(reload_diff(&r, &f, 0, &plan), 0);
	assert_int_equal(plan.n, 2);
	assert_int_equal(plan.v[0].op, RL_LUN_ADD);
	assert_ptr_equal(plan.v[0].new_lun, &f.targets[0].luns[0]);
	assert_int_equal(plan.v[0].line, 4);
	assert_int_equal(plan.v[1].op, RL_TARGET_ADD);
	assert_ptr_equal(plan.v[1].target, &f.targets[1]);
	assert_int_equal(plan.v[1].line, 5);
	reload_plan_free(&plan);
	config_free(&r);
	config_free(&f);
}

/* ---- against the registry ---- */

static char dir[64];

static int setup_reg(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_reload.XXXXXX");
	assert_non_null(mkdtemp(dir));
	reg_init();
	return 0;
}

static int teardown_reg(void **state)
{
	char cmd[128];
	(void)state;
	nfs_exports_clear();
	reg_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void apply_text(const char *text)
{
	struct rs_config c;
	char err[512];

	load_ok(text, &c);
	if (config_apply(&c, err, sizeof(err)) < 0)
		fail_msg("config_apply: %s", err);
	config_free(&c);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static char conf_path[128];

static int reload_text(const char *text, struct reload_result *res)
{
	struct reload_opts o = { .path = conf_path, .flags = RELOAD_CLI_LOG_LEVEL };
	char err[512];

	snprintf(conf_path, sizeof(conf_path), "%s/r.conf", dir);
	write_file(conf_path, text);
	return reload_config(&o, res, err, sizeof(err));
}

/* What config_apply() made, re-read from the registry, is what the file
 * says: no difference (the dump round trip the reload relies on). */
static void test_snapshot_roundtrip(void **state)
{
	char text[2048], edir[128];
	struct rs_config f, r;
	struct reload_plan plan;
	char err[512];
	(void)state;

	snprintf(edir, sizeof(edir), "%s/export", dir);
	assert_int_equal(mkdir(edir, 0755), 0);
	snprintf(text, sizeof(text),
		 ACC "discovery = { incoming_users = [ \"u2\" ]; };\n"
		 "targets = ( { " T1 "luns = ( " NULLLUN(1) ", { lun = 2; type = \"null\"; "
		 "block_size = 4096; size = \"64M\"; readonly = true; thin_provisioning = true; "
		 "serial = \"SER1\"; } ); initiator_address = [ \"127.0.0.1\", \"10.0.0.0/8\" ]; "
		 "initiator_name = [ \"iqn.2026-11.test:x\" ]; incoming_users = [ \"u1\" ]; },"
		 "{ " T2 "} );\n"
		 "nfs = { enabled = true; exports = ( \"%s 10.0.0.0/8(rw,no_root_squash) *(ro)\" ); };",
		 edir);
	apply_text(text);
	load_ok(text, &f);
	assert_int_equal(reload_snapshot(&r, err, sizeof(err)), 0);
	assert_int_equal(r.ntargets, 2);
	assert_int_equal(r.nexports, 1);
	r.nfs_enabled = true;
	assert_int_equal(reload_diff(&r, &f, RELOAD_CLI_NFS | RELOAD_CLI_PORTALS, &plan), 0);
	if (plan.n) {
		char k[300];
		key(&plan.v[0], k, sizeof(k));
		fail_msg("%d actions, first '%s'", plan.n, k);
	}
	reload_plan_free(&plan);
	config_free(&r);
	config_free(&f);
}

static void fake_kill(void *ctx)
{
	(void)ctx;
}

static void add_session(int tid, const char *iqn, uint64_t nexus)
{
	struct iscsi_target *t = reg_target_get(iqn);
	struct reg_session_info si = { .nexus_id = nexus, .kill = fake_kill };

	assert_non_null(t);
	assert_int_equal(reg_target_tid(t), tid);
	snprintf(si.initiator, sizeof(si.initiator), "iqn.2026-11.test:init");
	assert_int_equal(reg_session_add(t, &si), 0);
	reg_target_put(t);
}

static void del_session(const char *iqn, uint64_t nexus)
{
	struct iscsi_target *t = reg_target_get(iqn);

	assert_non_null(t);
	reg_session_del(t, nexus);
	reg_target_put(t);
}

static uint64_t lun_blocksize(const char *iqn, uint64_t lun)
{
	struct iscsi_target *t = reg_target_get(iqn);
	struct scsi_lu *lu;
	uint64_t bs = 0;

	assert_non_null(t);
	lu = reg_target_lun_get(t, lun);
	if (lu) {
		bs = lu->block_size;
		scsi_lu_put(lu);
	}
	reg_target_put(t);
	return bs;
}

#define IQN_A "iqn.2026-11.io.ringstor:a"
#define IQN_B "iqn.2026-11.io.ringstor:b"

static void test_reload_sessions_kept(void **state)
{
	struct reload_result res;
	struct iscsi_target *t;
	(void)state;

	apply_text("targets = ( { " T1 "luns = ( " NULLLUN(1) ", " NULLLUN(2) " ); "
		   "initiator_address = [ \"ALL\" ]; }, { " T2 "luns = ( " NULLLUN(1) " ); } );");
	add_session(1, IQN_A, 101);

	/* A reload that adds a target leaves target 1 and its session alone. */
	assert_int_equal(reload_text("targets = ( { " T1 "luns = ( " NULLLUN(1) ", " NULLLUN(2) " ); "
				     "initiator_address = [ \"ALL\" ]; }, { " T2 "luns = ( "
				     NULLLUN(1) " ); }, { tid = 3; name = \"iqn.2026-11.io.ringstor:c\"; "
				     "luns = ( " NULLLUN(1) " ); } );", &res), 0);
	assert_int_equal(res.applied, 1);
	assert_int_equal(res.deferred, 0);
	assert_int_equal(res.failed, 0);
	assert_int_equal(reg_target_nsessions(1), 1);
	assert_true(reg_target_exists(3));

	/* Target 1 gone from the file, LUN 2 changed: kept while the session
	 * lives; target 2 (no session) goes; the ACL change applies. */
	assert_int_equal(reload_text("targets = ( { tid = 3; name = \"iqn.2026-11.io.ringstor:c\"; "
				     "luns = ( " NULLLUN(1) " ); } );", &res), 0);
	assert_int_equal(res.deferred, 1);
	assert_int_equal(res.failed, 0);
	assert_true(reg_target_exists(1));
	assert_false(reg_target_exists(2));
	assert_int_equal(reg_target_nsessions(1), 1);

	/* LUN replaced under a session: deferred; LUN added: applied; ACL
	 * removed: applied (later logins only). */
	assert_int_equal(reload_text("targets = ( { " T1 "luns = ( " NULLLUN(1) ", { lun = 2; type = "
				     "\"null\"; size = \"1G\"; block_size = 4096; }, " NULLLUN(3) " ); } );",
				     &res), 0);
	assert_int_equal(res.deferred, 1);
	assert_int_equal(res.failed, 0);
	assert_int_equal(lun_blocksize(IQN_A, 2), 512);
	assert_int_equal(lun_blocksize(IQN_A, 3), 512);
	t = reg_target_get(IQN_A);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
		assert_false(reg_target_permits(t, (struct sockaddr *)&sin, "iqn.2026-11.test:init"));
	}
	reg_target_put(t);
	assert_int_equal(reg_target_nsessions(1), 1);

	/* The initiator logs out: the next reload applies what was deferred. */
	del_session(IQN_A, 101);
	assert_int_equal(reload_text("targets = ( { " T1 "luns = ( " NULLLUN(1) ", { lun = 2; type = "
				     "\"null\"; size = \"1G\"; block_size = 4096; }, " NULLLUN(3) " ); } );",
				     &res), 0);
	assert_int_equal(res.deferred, 0);
	assert_int_equal(res.applied, 1);
	assert_int_equal(lun_blocksize(IQN_A, 2), 4096);
}

/* A kept target keeps what authenticates it, and its name. */
static void test_reload_kept_target_keeps_chap(void **state)
{
	struct reload_result res;
	struct iscsi_target *t;
	(void)state;

	apply_text(ACC "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); initiator_address = [ \"ALL\" ]; "
		   "incoming_users = [ \"u1\" ]; } );");
	add_session(1, IQN_A, 7);
	/* the file drops target 1 and its account, and gives its name to tid 4 */
	assert_int_equal(reload_text("accounts = ( { user = \"u2\"; password = \"secret-0002\"; } );"
				     "targets = ( { tid = 4; name = \"" IQN_A "\"; } );", &res), 0);
	assert_int_equal(res.deferred, 2);     /* target 1, account u1 */
	assert_int_equal(res.failed, 0);
	assert_true(reg_target_exists(1));
	assert_false(reg_target_exists(4));
	t = reg_target_get(IQN_A);
	assert_non_null(t);
	assert_true(reg_chap_required(t));     /* not opened up */
	reg_target_put(t);
	del_session(IQN_A, 7);
	assert_int_equal(reload_text("accounts = ( { user = \"u2\"; password = \"secret-0002\"; } );"
				     "targets = ( { tid = 4; name = \"" IQN_A "\"; } );", &res), 0);
	assert_int_equal(res.deferred, 0);
	assert_int_equal(res.failed, 0);
	assert_int_equal(res.applied, 3);      /* target 1 removed, 4 added, u1 removed */
	assert_false(reg_target_exists(1));
	assert_true(reg_target_exists(4));
}

static void test_reload_broken_file_changes_nothing(void **state)
{
	struct reload_result res;
	struct reload_opts o = { .flags = RELOAD_CLI_LOG_LEVEL };
	char err[512];
	(void)state;

	apply_text("targets = ( { " T1 "luns = ( " NULLLUN(1) " ); } );");
	assert_int_equal(reload_text("targets = ( { " T2 "} );\nfoo = ;\n", &res), -1);
	assert_int_equal(reload_text("targets = ( { " T2 "luns = ( { lun = 1; type = \"null\"; "
				     "size = \"1G\"; },\n { lun = 1; type = \"null\"; } ); } );", &res), -1);
	assert_true(reg_target_exists(1));
	assert_false(reg_target_exists(2));

	/* the message names the file and line */
	o.path = conf_path;
	write_file(conf_path, "\n\ntargets = ( { tid = 0; name = \"x\"; } );\n");
	assert_int_equal(reload_config(&o, &res, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "r.conf:3:"));
	/* no file at all */
	o.path = NULL;
	assert_int_equal(reload_config(&o, &res, err, sizeof(err)), -1);
	assert_true(reg_target_exists(1));
}

/* Run-time changes (ringstoradm) that are not in the file are undone; an
 * account's password changes in place and keeps its bindings. */
static void test_reload_undoes_runtime_changes(void **state)
{
	const char *text = ACC "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); "
			   "incoming_users = [ \"u1\" ]; } );";
	struct reload_result res;
	char secret[64];
	struct iscsi_target *t;
	(void)state;

	apply_text(text);
	assert_int_equal(reg_target_new(9, "iqn.2026-11.io.ringstor:runtime", NULL, 0), 0);
	assert_int_equal(reg_bind_addr(1, "192.168.0.0/16", NULL, 0), 0);
	assert_int_equal(reg_account_new("rt", "runtime-secret", NULL, 0), 0);
	assert_int_equal(reload_text(text, &res), 0);
	assert_int_equal(res.applied, 3);
	assert_false(reg_target_exists(9));

	assert_int_equal(reload_text(ACC "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); "
				     "incoming_users = [ \"u1\" ]; } );", &res), 0);
	assert_int_equal(res.applied, 0);
	assert_int_equal(reload_text("accounts = ( { user = \"u1\"; password = \"changed-secret\"; } );"
				     "targets = ( { " T1 "luns = ( " NULLLUN(1) " ); "
				     "incoming_users = [ \"u1\" ]; } );", &res), 0);
	assert_int_equal(res.applied, 2);   /* password, account u2 removed */
	t = reg_target_get(IQN_A);
	assert_true(reg_chap_required(t));
	assert_int_equal(reg_chap_incoming_secret(t, "u1", secret, sizeof(secret)), 0);
	assert_string_equal(secret, "changed-secret");
	reg_target_put(t);
}

/* A LUN whose backing file cannot be opened: the rest applies, the old
 * LUN stays when a replacement fails. */
static void test_reload_partial_failure(void **state)
{
	char text[1024], img[128];
	struct reload_result res;
	(void)state;

	snprintf(img, sizeof(img), "%s/a.img", dir);
	snprintf(text, sizeof(text), "targets = ( { " T1 "luns = ( { lun = 1; path = \"%s\"; "
		 "create = true; size = \"1M\"; } ); } );", img);
	apply_text(text);
	snprintf(text, sizeof(text), "targets = ( { " T1 "luns = ( { lun = 1; path = \"%s/missing\"; }, "
		 NULLLUN(2) " ); }, { " T2 "} );", dir);
	assert_int_equal(reload_text(text, &res), 0);
	assert_int_equal(res.failed, 1);
	assert_int_equal(res.applied, 2);
	assert_int_equal(lun_blocksize(IQN_A, 1), 512);   /* restored */
	assert_int_equal(lun_blocksize(IQN_A, 2), 512);
	assert_true(reg_target_exists(2));
}

static void test_reload_exports(void **state)
{
	char text[2048], a[128], b[128];
	struct reload_result res;
	struct nfs_export *e;
	struct reload_opts o = { .flags = RELOAD_CLI_LOG_LEVEL, .nfs_running = true };
	struct rs_config started;
	char err[512];
	uint32_t id;
	(void)state;

	snprintf(a, sizeof(a), "%s/ea", dir);
	snprintf(b, sizeof(b), "%s/eb", dir);
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	snprintf(text, sizeof(text), "nfs = { enabled = true; exports = ( \"%s *(ro)\" ); };", a);
	apply_text(text);
	load_ok(text, &started);
	e = nfs_export_get_by_path(a);
	assert_non_null(e);
	id = e->id;
	nfs_export_put(e);

	snprintf(conf_path, sizeof(conf_path), "%s/r.conf", dir);
	snprintf(text, sizeof(text), "nfs = { enabled = true; exports = ( \"%s *(rw)\", "
		 "\"%s/../eb *(ro)\" ); };", a, a);
	write_file(conf_path, text);
	o.path = conf_path;
	o.started = &started;
	assert_int_equal(reload_config(&o, &res, err, sizeof(err)), 0);
	assert_int_equal(res.applied, 2);
	assert_int_equal(res.restart, 0);
	e = nfs_export_get_by_path(a);
	assert_non_null(e);
	assert_int_equal(e->id, id);           /* handles stay valid */
	assert_true(e->clients[0].opts.rw);
	nfs_export_put(e);
	e = nfs_export_get_by_path(b);          /* canonical path */
	assert_non_null(e);
	nfs_export_put(e);
	/* same again: nothing (the path is compared canonical) */
	assert_int_equal(reload_config(&o, &res, err, sizeof(err)), 0);
	assert_int_equal(res.applied, 0);

	/* --nfs-export lines survive a reload */
	{
		char line[160];
		const char *lines[1] = { line };
		snprintf(line, sizeof(line), "%s *(ro)", b);
		snprintf(text, sizeof(text), "nfs = { enabled = true; exports = ( \"%s *(rw)\" ); };", a);
		write_file(conf_path, text);
		o.cli_exports = lines;
		o.ncli_exports = 1;
		assert_int_equal(reload_config(&o, &res, err, sizeof(err)), 0);
		assert_int_equal(res.applied, 0);
		o.ncli_exports = 0;
		assert_int_equal(reload_config(&o, &res, err, sizeof(err)), 0);
		assert_int_equal(res.applied, 1);
		e = nfs_export_get_by_path(b);
		assert_null(e);
	}
	config_free(&started);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_table),
		cmocka_unit_test(test_diff_self),
		cmocka_unit_test(test_diff_lines_and_pointers),
		cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup_reg, teardown_reg),
		cmocka_unit_test_setup_teardown(test_reload_sessions_kept, setup_reg, teardown_reg),
		cmocka_unit_test_setup_teardown(test_reload_kept_target_keeps_chap, setup_reg,
						teardown_reg),
		cmocka_unit_test_setup_teardown(test_reload_broken_file_changes_nothing, setup_reg,
						teardown_reg),
		cmocka_unit_test_setup_teardown(test_reload_undoes_runtime_changes, setup_reg,
						teardown_reg),
		cmocka_unit_test_setup_teardown(test_reload_partial_failure, setup_reg, teardown_reg),
		cmocka_unit_test_setup_teardown(test_reload_exports, setup_reg, teardown_reg),
	};
	/* quiet: the reload logs every action at notice */
	rs_log_init("test_reload", true, RS_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
