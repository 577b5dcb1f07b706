/* test_companion_journal.c - the migration journal (companion/journal.c):
 * replay and the recover decision for every point a handover can stop at
 * (table-driven), torn and malformed records, and the write path
 * (append + fsync, one line per step, the lock against a second writer).
 * Linked with libcompanion.a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "companion/journal.h"

#define BEGIN1 "{\"ts\":1.0,\"step\":\"begin\",\"format\":1,\"driver\":\"qemu\",\"leases\":[\"tid=1,lun=1\"]}\n"
#define BEGIN2 "{\"ts\":1.0,\"step\":\"begin\",\"format\":1,\"driver\":\"qemu\",\"leases\":[\"tid=1,lun=1\",\"tid=1,lun=2\"]}\n"
#define S(x) "{\"step\":\"" x "\"}\n"
#define HELD(i, e) "{\"step\":\"lease-held\",\"i\":" #i ",\"epoch\":" #e "}\n"
#define TBEGIN(i, e) "{\"step\":\"transfer-begin\",\"i\":" #i ",\"epoch\":" #e "}\n"
#define TDONE(i, e) "{\"step\":\"lease-transferred\",\"i\":" #i ",\"epoch\":" #e "}\n"
#define TBACK(i, e) "{\"step\":\"lease-returned\",\"i\":" #i ",\"epoch\":" #e "}\n"

#define UP_TO_MIGRATING BEGIN1 S("preflight") HELD(0, 4) S("dest-started") S("dest-listening") S("migrating")
#define UP_TO_SWITCH UP_TO_MIGRATING S("transfer-point")

struct decide_case {
	const char *name;
	const char *text;
	enum recover_action want;
};

static const struct decide_case cases[] = {
	{ "begin only", BEGIN1, RECOVER_UNDO },
	{ "aborted by preflight", BEGIN1 S("preflight") S("aborted"), RECOVER_NOTHING },
	{ "lease held", BEGIN1 S("preflight") HELD(0, 4), RECOVER_UNDO },
	{ "dest started", BEGIN1 HELD(0, 4) S("dest-started"), RECOVER_UNDO },
	{ "migrating", UP_TO_MIGRATING, RECOVER_UNDO },
	{ "transfer point", UP_TO_SWITCH, RECOVER_UNDO },
	{ "completed before the transfer", UP_TO_MIGRATING S("completed") S("transfer-point"), RECOVER_UNDO },
	{ "completed, transfer in doubt", UP_TO_MIGRATING S("completed") S("transfer-point") TBEGIN(0, 4),
	  RECOVER_ASK_APPLIANCE },
	{ "completed, transferred", UP_TO_MIGRATING S("completed") S("transfer-point") TBEGIN(0, 4) TDONE(0, 5),
	  RECOVER_FINISH },
	{ "transfer begun", UP_TO_SWITCH TBEGIN(0, 4), RECOVER_ASK_APPLIANCE },
	{ "transferred", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5), RECOVER_FINISH },
	{ "switchover", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("switchover"), RECOVER_FINISH },
	{ "completed", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("switchover") S("completed"), RECOVER_FINISH },
	{ "dest running", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("switchover") S("completed") S("dest-running"),
	  RECOVER_FINISH },
	{ "source stopped", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("completed") S("dest-running") S("source-stopped"),
	  RECOVER_FINISH },
	{ "done", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-running") S("source-stopped") S("done"),
	  RECOVER_NOTHING },
	{ "rollback before transfer", UP_TO_MIGRATING S("rollback"), RECOVER_UNDO },
	{ "rollback, dest stopped", UP_TO_MIGRATING S("rollback") S("dest-stopped"), RECOVER_UNDO },
	{ "rolled back", UP_TO_MIGRATING S("rollback") S("dest-stopped") S("source-resumed") S("rolled-back"),
	  RECOVER_NOTHING },
	{ "rollback after transfer", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("rollback"), RECOVER_UNDO_RETURN },
	{ "rollback after transfer, dest stopped", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("rollback") S("dest-stopped"),
	  RECOVER_UNDO_RETURN },
	{ "lease returned", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("rollback") S("dest-stopped") TBACK(0, 6),
	  RECOVER_UNDO },
	{ "rollback with a transfer in doubt", UP_TO_SWITCH TBEGIN(0, 4) S("rollback"), RECOVER_UNDO_RETURN },
	/* the go sent to the destination (cont / virsh resume / xl unpause):
	 * its guest may have written since, so never undo -- unless a
	 * rollback found it provably unused (dest-unused) */
	{ "cont sent", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("completed") S("dest-cont-sent"), RECOVER_FINISH },
	{ "cont sent, then a rollback began (old journal)", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent")
	  S("rollback"), RECOVER_FINISH },
	{ "cont sent, in doubt", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent") S("in-doubt"),
	  RECOVER_FINISH },
	{ "cont sent, in doubt, recover again", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent") S("in-doubt")
	  S("recover") S("in-doubt"), RECOVER_FINISH },
	{ "dest running, then a rollback began", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent")
	  S("dest-running") S("rollback") S("dest-stopped"), RECOVER_FINISH },
	{ "cont sent, dest unused, rollback", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent") S("dest-unused")
	  S("rollback"), RECOVER_UNDO_RETURN },
	{ "cont sent, dest unused, lease returned", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent")
	  S("dest-unused") S("rollback") S("dest-stopped") TBACK(0, 6), RECOVER_UNDO },
	{ "cont sent, dest unused, rolled back", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent")
	  S("dest-unused") S("rollback") S("dest-stopped") TBACK(0, 6) S("source-resumed") S("rolled-back"),
	  RECOVER_NOTHING },
	{ "dest unused without a rollback yet", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent")
	  S("dest-unused"), RECOVER_FINISH },
	{ "recover record is informational", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("recover"), RECOVER_FINISH },
	/* a torn last record: its step never started */
	{ "torn transfer-begin", UP_TO_SWITCH "{\"step\":\"transfer-be", RECOVER_UNDO },
	{ "torn after transferred", UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) "{\"ts\":2,\"st", RECOVER_FINISH },
	/* two leases */
	{ "two: first moved, second not begun", BEGIN2 HELD(0, 1) HELD(1, 7) S("transfer-point") TBEGIN(0, 1) TDONE(0, 2),
	  RECOVER_FINISH },
	{ "two: second in doubt", BEGIN2 HELD(0, 1) HELD(1, 7) TBEGIN(0, 1) TDONE(0, 2) TBEGIN(1, 7),
	  RECOVER_ASK_APPLIANCE },
	{ "two: both moved", BEGIN2 HELD(0, 1) HELD(1, 7) TBEGIN(0, 1) TDONE(0, 2) TBEGIN(1, 7) TDONE(1, 8),
	  RECOVER_FINISH },
	{ "two: rollback, one returned", BEGIN2 HELD(0, 1) HELD(1, 7) TBEGIN(0, 1) TDONE(0, 2) TBEGIN(1, 7) TDONE(1, 8)
	  S("rollback") TBACK(0, 3), RECOVER_UNDO_RETURN },
	{ "CRLF lines and blank lines", "{\"step\":\"begin\",\"format\":1,\"leases\":[\"x=1\"]}\r\n\n" HELD(0, 1) "\r\n",
	  RECOVER_UNDO },
};

static void test_decisions(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct journal_state st;
		char err[256] = "";
		int r = journal_replay(cases[k].text, strlen(cases[k].text), &st, err, sizeof(err));
		if (r != 0)
			fail_msg("%s: replay failed: %s", cases[k].name, err);
		const char *why = NULL;
		enum recover_action a = journal_decide(&st, &why);
		if (a != cases[k].want)
			fail_msg("%s: decided %s (%s), want %s", cases[k].name, recover_action_name(a), why,
				 recover_action_name(cases[k].want));
		assert_non_null(why);
		journal_state_free(&st);
	}
}

static void test_replay_state(void **state)
{
	(void)state;
	const char *t = BEGIN2 S("source-checked") HELD(0, 3) HELD(1, 9) TBEGIN(0, 3) TDONE(0, 4) S("rollback")
		TBACK(0, 5) "{\"step\":\"source-checked\",\"running\":true}\n";
	struct journal_state st;
	char err[256];
	assert_int_equal(journal_replay(t, strlen(t), &st, err, sizeof(err)), 0);
	assert_int_equal(st.nleases, 2);
	assert_true(st.lease_held[0] && st.lease_held[1]);
	assert_int_equal(st.epoch[0], 3);
	assert_int_equal(st.epoch[1], 9);
	assert_true(st.transferred[0]);
	assert_false(st.transferred[1]);
	assert_false(st.dest_cont_sent);
	assert_false(st.dest_unused);
	assert_int_equal(st.new_epoch[0], 4);
	assert_true(st.returned[0]);
	assert_int_equal(st.returned_epoch[0], 5);
	assert_true(st.rollback);
	assert_true(st.source_checked && st.source_running);
	assert_string_equal(st.last, "source-checked");
	assert_int_equal(st.nsteps, 8);
	assert_false(st.torn_tail);
	journal_state_free(&st);
}

static void test_replay_go(void **state)
{
	(void)state;
	const char *t = UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) "{\"step\":\"dest-cont-sent\",\"cmd\":\"cont\"}\n";
	struct journal_state st;
	char err[256];
	const char *why = NULL;
	assert_int_equal(journal_replay(t, strlen(t), &st, err, sizeof(err)), 0);
	assert_true(st.dest_cont_sent);
	assert_false(st.dest_unused);
	assert_false(st.dest_running);
	assert_int_equal(journal_decide(&st, &why), RECOVER_FINISH);
	assert_non_null(strstr(why, "cont was sent"));
	journal_state_free(&st);
	const char *t2 = UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("dest-cont-sent")
		"{\"step\":\"dest-unused\",\"state\":\"paused\",\"writes\":0}\n" S("rollback");
	assert_int_equal(journal_replay(t2, strlen(t2), &st, err, sizeof(err)), 0);
	assert_true(st.dest_cont_sent && st.dest_unused && st.rollback);
	assert_int_equal(journal_decide(&st, &why), RECOVER_UNDO_RETURN);
	journal_state_free(&st);
}

static void test_replay_rejects(void **state)
{
	(void)state;
	static const char *bad[] = {
		"",
		"\n\n",
		S("preflight"),                                           /* no begin */
		"{\"step\":\"begin\",\"format\":2,\"leases\":[]}\n",      /* other format */
		"{\"step\":\"begin\",\"leases\":[]}\n",                   /* no format */
		BEGIN1 "garbage\n" S("done"),                             /* malformed line inside */
		BEGIN1 "[1,2]\n",                                         /* not an object */
		BEGIN1 "{\"step\":\"lease-held\",\"i\":1,\"epoch\":1}\n", /* index out of range */
		BEGIN1 "{\"step\":\"lease-held\",\"i\":0}\n",             /* no epoch */
		BEGIN1 "{\"step\":\"lease-transferred\",\"i\":-1,\"epoch\":1}\n",
		("{\"step\":\"begin\",\"format\":1,\"leases\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
		 "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}\n"),  /* too many leases */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct journal_state st;
		char err[256] = "";
		if (journal_replay(bad[k], strlen(bad[k]), &st, err, sizeof(err)) == 0)
			fail_msg("case %zu accepted: %s", k, bad[k]);
		assert_true(err[0] != '\0');
		assert_null(st.begin);
	}
	/* a torn begin record alone is no journal */
	struct journal_state st;
	char err[256];
	assert_int_equal(journal_replay("{\"step\":\"beg", 12, &st, err, sizeof(err)), -1);
	/* truncated anywhere inside a longer journal: never a crash, and a
	 * prefix that ends inside a record is a torn tail, not an error */
	const char *full = UP_TO_SWITCH TBEGIN(0, 4) TDONE(0, 5) S("switchover") S("completed");
	size_t b1 = strlen(BEGIN1);
	for (size_t n = b1; n <= strlen(full); n++) {
		if (journal_replay(full, n, &st, err, sizeof(err)) != 0)
			fail_msg("prefix of %zu bytes rejected: %s", n, err);
		const char *why;
		enum recover_action a = journal_decide(&st, &why);
		assert_true(a == RECOVER_UNDO || a == RECOVER_ASK_APPLIANCE || a == RECOVER_FINISH);
		journal_state_free(&st);
	}
}

static void test_write_and_read_back(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_journal.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[256];
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	struct journal j;
	char err[256];
	assert_int_equal(journal_create(&j, sub, "vm/1 \"x\"", err, sizeof(err)), 0);
	assert_non_null(strstr(j.path, "/vm_1__x_-"));
	struct strbuf m = {0};
	jm_u64(&m, "format", JOURNAL_FORMAT);
	jm_str(&m, "vm", "vm \"1\"\n");
	jm_raw(&m, "leases", "[\"tid=1,lun=1\"]");
	assert_int_equal(journal_record(&j, "begin", m.buf), 0);
	sb_free(&m);
	jm_u64(&m, "i", 0);
	jm_u64(&m, "epoch", 7);
	jm_bool(&m, "acquired", true);
	assert_int_equal(journal_record(&j, "lease-held", m.buf), 0);
	sb_free(&m);
	assert_int_equal(journal_record(&j, "migrating", NULL), 0);

	/* a second writer is refused while we hold it */
	struct journal j2;
	assert_int_equal(journal_open(&j2, j.path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));

	size_t len = 0;
	char *text = journal_read(j.path, &len, err, sizeof(err));
	assert_non_null(text);
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	assert_int_equal(lines, 3);
	struct journal_state st;
	assert_int_equal(journal_replay(text, len, &st, err, sizeof(err)), 0);
	assert_string_equal(json_str(json_get(st.begin, "vm")), "vm \"1\"\n");
	assert_int_equal(st.epoch[0], 7);
	assert_string_equal(st.last, "migrating");
	journal_state_free(&st);
	free(text);

	char path[512];
	snprintf(path, sizeof(path), "%s", j.path);
	journal_close(&j);
	/* now recover may append */
	assert_int_equal(journal_open(&j2, path, err, sizeof(err)), 0);
	assert_int_equal(journal_record(&j2, "recover", "\"action\":\"undo\""), 0);
	journal_close(&j2);
	text = journal_read(path, &len, err, sizeof(err));
	assert_non_null(strstr(text, "\"step\":\"recover\",\"action\":\"undo\"}\n"));
	free(text);
	unlink(path);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	assert_null(journal_read("/nonexistent/j", &len, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_replay_state),
		cmocka_unit_test(test_replay_go),
		cmocka_unit_test(test_replay_rejects),
		cmocka_unit_test(test_write_and_read_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
