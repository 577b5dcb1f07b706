/* test_companion_qemu.c - the QEMU driver's handover and rollback rules
 * (companion/migrate.c) against a scripted fake QEMU, above all the rule
 * "once cont was sent to the destination, the source is never resumed
 * unless the destination provably never wrote".
 *
 * The destination QEMU starts with -S: until `cont` it runs nothing and
 * writes nothing, so a rollback (stop it, hand the lease back, resume the
 * source) is safe.  From `cont` on its guest may run and write, even when
 * the answer is lost; the source's RAM is then older than the disk, and a
 * source resumed now would execute those writes a second time.  So after
 * cont: the destination is asked again; it runs -> the migration goes on;
 * it answers, does not run and query-blockstats counts no write -> the
 * rollback is safe; anything else (gone, no answer, writes counted) ->
 * nothing is undone: exit 3, the source paused, the lease with the
 * destination.  `recover` applies the same rule (dest-cont-sent,
 * dest-running in the journal).
 *
 * The fakes: a remote shell that runs the command with HV_HOST=HOST; a
 * remote ringstor-migrate whose `probe` prints the same facts for both
 * hosts and whose `qmp-relay SOCK` *is* the fake QEMU of that host,
 * speaking QMP on stdin/stdout (greeting, capabilities, query-status,
 * query-migrate, migrate, migrate-incoming, migrate_cancel,
 * migrate-set-capabilities, cont, quit, query-blockstats), its state in
 * files (qstate-HOST: the run state, no file: no QEMU; mig-HOST: the
 * outgoing migration; writes-HOST: the guest's write count); a fake
 * qemu-system-x86_64 that "starts" the destination (inmigrate); the fake
 * ringstoradm of test_companion_virt.c (a lease with epoch fencing).
 * Every action that changes something is logged as "HOST:ACTION".
 * Faults, on the destination: CONT_MODE (ok, drop: runs and the answer is
 * lost, dropdies: the QEMU dies with the answer, error: refused, not run,
 * errorwrote: refused after the guest ran, wrote and stopped, hang: no
 * answer and not run, hangruns: runs, no answer, pauses: runs, writes and
 * pauses itself, shutdown: stops without writing), STATUS_MODE (drop,
 * dropdies: the query-status after cont is lost / the QEMU dies),
 * BLOCKSTATS_MODE=bad (no counters).  Each case runs in a child process
 * (the fault hook kills the companion itself); recover runs after a hook,
 * without faults.  Linked with libcompanion.a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "companion/migrate.h"

static char dir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f)
		fail_msg("%s: %s", p, strerror(errno));
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
}

static char *read_text(const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	static char buf[16384];
	buf[0] = '\0';
	if (!f)
		return buf;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return buf;
}

/* The remote ringstor-migrate: `probe` and `qmp-relay SOCK` (the fake QEMU). */
static const char fake_remote[] =
	"#!/bin/bash\n"
	"D=$(dirname \"$0\"); h=${HV_HOST:?no HV_HOST}\n"
	"case $1 in\n"
	"probe) echo '{\"format\": 1, \"hostname\": \"h\", \"boot_id\": \"b\", \"arch\": \"x86_64\", '\\\n"
	"  '\"cpu\": {\"model\": \"m\", \"flags\": [\"fpu\"]}, \"hypervisor\": {\"kvm\": true, \"xen\": false, '\\\n"
	"  '\"libvirt\": false, \"qemu\": \"QEMU 9.2\"}, \"memory\": {\"available_kib\": 4000000}, \"bridges\": [], '\\\n"
	"  '\"addresses\": [{\"iface\": \"e\", \"family\": 4, \"address\": \"10.0.0.1\", \"prefix\": 24, '\\\n"
	"  '\"subnet\": \"10.0.0.0/24\"}], \"disks\": []}'; exit 0;;\n"
	"qmp-relay) ;;\n"
	"*) exit 2;;\n"
	"esac\n"
	"st=$D/qstate-$h; mig=$D/mig-$h; wr=$D/writes-$h\n"
	"[ -f \"$st\" ] || exit 1  # no QEMU: the relay cannot connect\n"
	"log() { echo \"$h:$1\" >>\"$D/log\"; }\n"
	"dst() { [ $h = hostB ]; }\n"
	"echo '{\"QMP\": {\"version\": {\"qemu\": {\"major\": 9, \"minor\": 2, \"micro\": 0}}, \"capabilities\": []}}'\n"
	"conted=\n"
	"while IFS= read -r line; do\n"
	"  [[ $line =~ \\\"execute\\\":\\\"([a-z_-]+)\\\" ]] || continue; cmd=${BASH_REMATCH[1]}\n"
	"  id=; [[ $line =~ \\\"id\\\":([0-9]+) ]] && id=${BASH_REMATCH[1]}\n"
	"  ret() { echo \"{\\\"return\\\": $1, \\\"id\\\": $id}\"; }\n"
	"  err() { echo \"{\\\"error\\\": {\\\"class\\\": \\\"GenericError\\\", \\\"desc\\\": \\\"$1\\\"}, \\\"id\\\": $id}\"; }\n"
	"  s=$(cat \"$st\" 2>/dev/null); [ -n \"$s\" ] || exit 0\n"
	"  case $cmd in\n"
	"  qmp_capabilities|migrate-set-capabilities|migrate-incoming) ret '{}';;\n"
	"  query-status)\n"
	"    if dst && [ -n \"$conted\" ]; then case ${STATUS_MODE:-ok} in\n"
	"      drop) exit 0;; dropdies) rm -f \"$st\"; log dies; exit 0;; esac; fi\n"
	"    ret \"{\\\"status\\\": \\\"$s\\\", \\\"running\\\": $([ $s = running ] && echo true || echo false)}\";;\n"
	"  query-migrate) m=$(cat \"$mig\" 2>/dev/null)\n"
	"    if [ -n \"$m\" ]; then ret \"{\\\"status\\\": \\\"$m\\\", \\\"downtime\\\": 12, \\\"total-time\\\": 300, "
	"\\\"ram\\\": {\\\"transferred\\\": 1048576, \\\"remaining\\\": 0, \\\"total\\\": 67108864}}\"; "
	"else ret '{}'; fi;;\n"
	"  migrate) log migrate\n"
	"    [ \"$(cat \"$D/qstate-hostB\" 2>/dev/null)\" = inmigrate ] || { echo failed >\"$mig\"; ret '{}'; continue; }\n"
	"    echo completed >\"$mig\"; echo postmigrate >\"$st\"; echo paused >\"$D/qstate-hostB\"; ret '{}';;\n"
	"  migrate_cancel) log cancel; echo cancelled >\"$mig\"; ret '{}';;\n"
	"  cont) log cont; conted=1\n"
	"    if ! dst; then echo running >\"$st\"; ret '{}'; continue; fi\n"
	"    case ${CONT_MODE:-ok} in\n"
	"    ok) echo running >\"$st\"; echo 7 >\"$wr\"; ret '{}';;\n"
	"    drop) echo running >\"$st\"; echo 7 >\"$wr\"; exit 0;;\n"
	"    dropdies) rm -f \"$st\"; log dies; exit 0;;\n"
	"    error) err 'injected: cannot cont';;\n"
	"    errorwrote) echo paused >\"$st\"; echo 3 >\"$wr\"; err 'injected: stopped after writing';;\n"
	"    hang) exec sleep 5;;\n"
	"    hangruns) echo running >\"$st\"; echo 7 >\"$wr\"; exec sleep 5;;\n"
	"    pauses) echo paused >\"$st\"; echo 5 >\"$wr\"; ret '{}';;\n"
	"    shutdown) echo shutdown >\"$st\"; ret '{}';;\n"
	"    esac;;\n"
	"  query-blockstats) w=$(cat \"$wr\" 2>/dev/null); w=${w:-0}\n"
	"    if dst && [ \"${BLOCKSTATS_MODE:-ok}\" = bad ]; then ret '[{\"device\": \"virtio0\"}]'; continue; fi\n"
	"    ret \"[{\\\"device\\\": \\\"virtio0\\\", \\\"stats\\\": {\\\"rd_operations\\\": 40, "
	"\\\"wr_operations\\\": $w, \\\"failed_wr_operations\\\": 0, \\\"unmap_operations\\\": 0}}, "
	"{\\\"device\\\": \\\"ide1-cd0\\\", \\\"stats\\\": {\\\"rd_operations\\\": 0, \\\"wr_operations\\\": 0}}]\";;\n"
	"  quit) log quit; rm -f \"$st\" \"$mig\"; ret '{}'; exit 0;;\n"
	"  *) err \"unknown command $cmd\";;\n"
	"  esac\n"
	"done\n";

/* The destination QEMU "starts" (-incoming defer -S): inmigrate. */
static const char fake_qemu[] =
	"#!/bin/bash\n"
	"D=$(dirname \"$0\")/..; h=${HV_HOST:?}\n"
	"echo \"$h:start\" >>\"$D/log\"; echo inmigrate >\"$D/qstate-$h\"; rm -f \"$D/writes-$h\" \"$D/mig-$h\"\n";

static const char fake_rsh[] =
	"#!/bin/bash\n"
	"h=$1; shift\n"
	"D=$(dirname \"$0\")\n"
	"HV_HOST=$h PATH=$D/bin:$PATH exec \"$@\"\n";

/* ringstoradm --mode lease (one lease): "HELD HOLDER EPOCH" in $D/lease */
static const char fake_adm[] =
	"#!/bin/bash\n"
	"D=$(dirname \"$0\"); f=$D/lease\n"
	"op= holder= epoch=\n"
	"while [ $# -gt 0 ]; do case $1 in --op) op=$2; shift;; --holder) holder=$2; shift;;\n"
	"  --epoch) epoch=$2; shift;; --json|--mode|--tid|--lun) [ $1 = --json ] || shift;; esac; shift; done\n"
	"read -r held cur ep <\"$f\" 2>/dev/null || { held=false; cur=''; ep=0; }\n"
	"case $op in\n"
	"show) echo \"{\\\"leases\\\": [{\\\"held\\\": $held, \\\"holder\\\": \\\"$cur\\\", \\\"epoch\\\": $ep}]}\";;\n"
	"acquire) echo \"adm:acquire->$holder\" >>\"$D/log\"; [ $held = true ] && [ \"$cur\" != \"$holder\" ] && exit 16\n"
	"  [ $held = true ] || ep=$((ep + 1)); echo \"true $holder $ep\" >\"$f\";;\n"
	"transfer) echo \"adm:transfer->$holder\" >>\"$D/log\"\n"
	"  [ $held = true ] && [ \"$epoch\" = \"$ep\" ] || { echo 'stale epoch' >&2; exit 116; }\n"
	"  echo \"true $holder $((ep + 1))\" >\"$f\";;\n"
	"*) exit 2;;\n"
	"esac\n";

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_qemu.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char p[256];
	snprintf(p, sizeof(p), "%s/bin", dir);
	mkdir(p, 0755);
	write_file("bin/qemu-system-x86_64", fake_qemu, 0755);
	write_file("remote", fake_remote, 0755);
	write_file("rsh", fake_rsh, 0755);
	write_file("adm", fake_adm, 0755);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (getenv("KEEP_TEST_DIR")) {
		fprintf(stderr, "kept %s\n", dir);
		return 0;
	}
	return system(cmd) == 0 ? 0 : -1;
}

#define A "iqn.test:a"
#define B "iqn.test:b"

struct qcase {
	const char *name;
	const char *env;        /* NAME=VALUE;... for the fakes */
	const char *hook;       /* "STEP" (the companion is killed there) or "STEP:COMMAND" */
	int rc;                 /* migrate's exit status (137: killed) */
	const char *log;        /* the changes, in order */
	const char *final_a, *final_b; /* run states afterwards ("" no QEMU) */
	const char *lease;      /* "HOLDER EPOCH" afterwards */
	const char *out_has;    /* in migrate's output, or NULL */
	/* after a hook, or when recover_action is set: recover, without faults */
	int recover_rc;
	const char *recover_log;
	const char *recover_action;
	const char *rec_a, *rec_b, *rec_lease; /* afterwards */
	/* then, if set: this shell command ("the operator"), and recover again */
	const char *fix;
	const char *fix_log, *fix_a, *fix_b, *fix_lease;
};

#define KILL "kill -KILL $RINGSTOR_MIGRATE_PID"
#define GO "hostB:start hostA:migrate adm:transfer->" B " hostB:cont"
static const struct qcase cases[] = {
	{ "success", "", NULL, 0, GO " hostA:quit", "", "running", B " 6", "done: hostB runs the VM" },
	/* before cont: the destination never ran (-S): rollback as before */
	{ "destination gone before cont: rolled back", "", "lease-transferred:rm -f $HV_DIR/qstate-hostB", 1,
	  "hostB:start hostA:migrate adm:transfer->" B " adm:transfer->" A " hostA:cont", "running", "", A " 7",
	  "rolled back" },
	/* cont sent, the outcome lost */
	{ "cont runs, answer lost: asked again, it runs: migrated", "CONT_MODE=drop", NULL, 0, GO " hostA:quit", "",
	  "running", B " 6", "asked again, the destination runs: going on" },
	{ "cont runs, no answer (timeout): asked again, it runs: migrated", "CONT_MODE=hangruns", NULL, 0,
	  GO " hostA:quit", "", "running", B " 6", "going on" },
	{ "cont: the destination dies with the answer: nothing undone, exit 3", "CONT_MODE=dropdies", NULL, 3,
	  GO " hostB:dies", "postmigrate", "", B " 6", "NOT ROLLING BACK" },
	{ "cont, no answer, not run, no write (timeout): rolled back", "CONT_MODE=hang", NULL, 1,
	  GO " hostB:quit adm:transfer->" A " hostA:cont", "running", "", A " 7",
	  "has written nothing (query-blockstats: 0 write operations)" },
	{ "cont refused, not run, no write: rolled back", "CONT_MODE=error", NULL, 1,
	  GO " hostB:quit adm:transfer->" A " hostA:cont", "running", "", A " 7", "the source can resume" },
	{ "cont refused after the guest wrote: nothing undone, exit 3", "CONT_MODE=errorwrote", NULL, 3, GO,
	  "postmigrate", "paused", B " 6", "has written to its disks (3 write operations)" },
	{ "cont refused, write count unknown: nothing undone, exit 3", "CONT_MODE=error;BLOCKSTATS_MODE=bad", NULL, 3,
	  GO, "postmigrate", "paused", B " 6", "whether it wrote is unknown" },
	/* cont answered, then the status */
	{ "status after cont lost: asked again, it runs: migrated", "STATUS_MODE=drop", NULL, 0, GO " hostA:quit", "",
	  "running", B " 6", "query-status on the destination after cont" },
	{ "status after cont: the destination died: nothing undone, exit 3", "STATUS_MODE=dropdies", NULL, 3,
	  GO " hostB:dies", "postmigrate", "", B " 6", "its QMP socket cannot be reached" },
	{ "not running after cont, wrote: nothing undone, exit 3", "CONT_MODE=pauses", NULL, 3, GO, "postmigrate",
	  "paused", B " 6", "the destination is paused after cont" },
	{ "not running after cont, no write: rolled back", "CONT_MODE=shutdown", NULL, 1,
	  GO " hostB:quit adm:transfer->" A " hostA:cont", "running", "", A " 7", "it is shutdown and has written nothing" },
	/* the companion killed; recover */
	{ "killed before cont was sent: recover sends it", "", "dest-cont-sent", 137,
	  "hostB:start hostA:migrate adm:transfer->" B, "postmigrate", "paused", B " 6", NULL,
	  0, "hostB:cont hostA:quit", "finish", "", "running", B " 6" },
	{ "killed at dest-cont-sent, the destination gone: recover undoes nothing", "",
	  "dest-cont-sent:rm -f $HV_DIR/qstate-hostB; " KILL, 137,
	  "hostB:start hostA:migrate adm:transfer->" B, "postmigrate", "", B " 6", NULL,
	  3, "", "finish", "postmigrate", "", B " 6",
	  /* the operator boots the VM again on hostB; recover stops the source */
	  "echo running >$HV_DIR/qstate-hostB", "hostA:quit", "", "running", B " 6" },
	{ "killed at dest-running, the destination gone: recover undoes nothing", "",
	  "dest-running:rm -f $HV_DIR/qstate-hostB; " KILL, 137, GO, "postmigrate", "", B " 6", NULL,
	  3, "", "finish", "postmigrate", "", B " 6",
	  "echo running >$HV_DIR/qstate-hostB", "hostA:quit", "", "running", B " 6" },
	{ "killed at dest-running: recover stops the source", "", "dest-running", 137, GO, "postmigrate", "running",
	  B " 6", NULL, 0, "hostA:quit", "finish", "", "running", B " 6" },
	{ "killed after the destination was found unused: recover goes forward", "CONT_MODE=error", "dest-unused", 137,
	  GO, "postmigrate", "paused", B " 6", NULL, 0, "hostB:cont hostA:quit", "finish", "", "running", B " 6" },
	{ "killed in the rollback of an unused destination: recover finishes it", "CONT_MODE=error", "rollback", 137,
	  GO, "postmigrate", "paused", B " 6", NULL, 0, "hostB:quit adm:transfer->" A " hostA:cont", "undo-return-lease",
	  "running", "", A " 7" },
};

static void apply_env(const char *env)
{
	unsetenv("CONT_MODE");
	unsetenv("STATUS_MODE");
	unsetenv("BLOCKSTATS_MODE");
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *s = strtok(buf, ";"); s; s = strtok(NULL, ";")) {
		char *eq = strchr(s, '=');
		if (eq) {
			*eq = '\0';
			setenv(s, eq + 1, 1);
		}
	}
}

static void want_log(const char *want, const char *what, const char *name)
{
	char got[2048] = "";
	char *t = read_text("log");
	for (char *s = strtok(t, "\n"); s; s = strtok(NULL, "\n")) {
		size_t l = strlen(got);
		snprintf(got + l, sizeof(got) - l, "%s%s", l ? " " : "", s);
	}
	if (strcmp(got, want) != 0)
		fail_msg("[%s] %s: changes\n  got:  %s\n  want: %s", name, what, got, want);
}

static void want_states(const char *a, const char *b, const char *lease, const char *what, const char *name)
{
	char ga[64], gb[64], want_l[128];
	snprintf(ga, sizeof(ga), "%s", read_text("qstate-hostA"));
	snprintf(gb, sizeof(gb), "%s", read_text("qstate-hostB"));
	if (strcmp(ga, a) != 0 || strcmp(gb, b) != 0)
		fail_msg("[%s] %s: hostA '%s' hostB '%s', want '%s' '%s'", name, what, ga, gb, a, b);
	snprintf(want_l, sizeof(want_l), "true %s", lease);
	if (strcmp(read_text("lease"), want_l) != 0)
		fail_msg("[%s] %s: lease '%s', want '%s'", name, what, read_text("lease"), want_l);
}

static int run_child(int (*fn)(const void *), const void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *cur_out;
static const struct migrate_opts *cur_opts;

static int do_migrate(const void *arg)
{
	const struct qcase *k = arg;
	apply_env(k->env);
	setenv("HV_DIR", dir, 1);
	if (k->hook) {
		char h[256];
		if (strchr(k->hook, ':'))
			snprintf(h, sizeof(h), "%s", k->hook);
		else
			snprintf(h, sizeof(h), "%s:" KILL, k->hook);
		setenv("RINGSTOR_MIGRATE_TEST_HOOK", h, 1);
	}
	FILE *f = fopen(cur_out, "w");
	if (!f)
		return 99;
	int rc = migrate_run(cur_opts, f, f);
	fclose(f);
	return rc;
}

static const char *cur_journal;
static int do_recover(const void *arg)
{
	(void)arg;
	apply_env("");
	unsetenv("RINGSTOR_MIGRATE_TEST_HOOK");
	FILE *f = fopen(cur_out, "w");
	if (!f)
		return 99;
	int rc = recover_run(cur_journal, NULL, false, f, f);
	fclose(f);
	return rc;
}

static void reset_log(void)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/log", dir);
	unlink(p);
}

static void run_recover(const struct qcase *k, size_t idx, const char *jdir, int want_rc, const char *want_log_s,
			const char *action, const char *what)
{
	char p[256], n[64];
	snprintf(n, sizeof(n), "rec-%zu", idx);
	snprintf(p, sizeof(p), "%s/%s", dir, n);
	reset_log();
	cur_out = p;
	cur_journal = jdir;
	int rc = run_child(do_recover, NULL);
	if (rc != want_rc)
		fail_msg("[%s] %s: exit %d, want %d:\n%s", k->name, what, rc, want_rc, read_text(n));
	if (action) {
		char want_action[64];
		snprintf(want_action, sizeof(want_action), "-> %s", action);
		if (!strstr(read_text(n), want_action))
			fail_msg("[%s] %s did not decide '%s':\n%s", k->name, what, action, read_text(n));
	}
	if (want_rc == 3 && !strstr(read_text(n), "NOT ROLLING BACK"))
		fail_msg("[%s] %s: exit 3 without saying why:\n%s", k->name, what, read_text(n));
	want_log(want_log_s, what, k->name);
}

static void run_case(const struct qcase *k, size_t idx)
{
	char p[512], jdir[256], adm[256], rsh[256], remote[256], cmdline[512], out[256];
	reset_log();
	const char *files[] = { "qstate-hostB", "mig-hostA", "mig-hostB", "writes-hostA", "writes-hostB" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	write_file("qstate-hostA", "running\n", 0644);
	write_file("lease", "true " A " 5\n", 0644);
	snprintf(jdir, sizeof(jdir), "%s/j-%zu", dir, idx);
	snprintf(adm, sizeof(adm), "%s/adm", dir);
	snprintf(rsh, sizeof(rsh), "%s/rsh", dir);
	snprintf(remote, sizeof(remote), "%s/remote", dir);
	snprintf(cmdline, sizeof(cmdline),
		 "qemu-system-x86_64 -name vm1 -m 64 -drive file=iscsi://box/iqn.2026-11.test:t/1,if=virtio "
		 "-iscsi initiator-name=" A " -qmp unix:%s/vm1.qmp,server=on,wait=off", dir);
	char *leases[] = { (char *)"tid=1,lun=1" };
	struct migrate_opts o = {
		.driver = "qemu", .vm_name = "vm1", .source = "hostA", .dest = "hostB", .appliance = "app",
		.rsh = rsh, .remote_cmd = remote, .adm = adm, .dest_holder = B, .leases = leases, .nleases = 1,
		.journal_dir = jdir, .timeout_s = 20, .progress = false, .preflight_timeout_s = 30,
		.qemu_cmdline = cmdline, .qemu_cmdline_len = strlen(cmdline),
	};
	snprintf(out, sizeof(out), "%s/out-%zu", dir, idx);
	cur_out = out;
	cur_opts = &o;
	int rc = run_child(do_migrate, k);
	char n[64];
	snprintf(n, sizeof(n), "out-%zu", idx);
	if (rc != k->rc)
		fail_msg("[%s]: exit %d, want %d; output:\n%s", k->name, rc, k->rc, read_text(n));
	if (k->out_has && !strstr(read_text(n), k->out_has))
		fail_msg("[%s]: the output lacks \"%s\":\n%s", k->name, k->out_has, read_text(n));
	if (rc == 3 && !strstr(read_text(n), "NOT ROLLING BACK"))
		fail_msg("[%s]: exit 3 without saying why:\n%s", k->name, read_text(n));
	want_log(k->log, "migrate", k->name);
	want_states(k->final_a, k->final_b, k->lease, "after migrate", k->name);
	if (!k->recover_action)
		return;
	run_recover(k, idx, jdir, k->recover_rc, k->recover_log, k->recover_action, "recover");
	want_states(k->rec_a, k->rec_b, k->rec_lease, "after recover", k->name);
	if (k->fix) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "HV_DIR=%s; %s", dir, k->fix);
		if (system(cmd) != 0)
			fail_msg("[%s]: %s failed", k->name, cmd);
		run_recover(k, idx, jdir, 0, k->fix_log, "finish", "recover after the operator's fix");
		want_states(k->fix_a, k->fix_b, k->fix_lease, "after the second recover", k->name);
	}
	/* a further recover has nothing to do, or (exit 3 before) stays put */
	run_recover(k, idx, jdir, 0, "", "nothing", "a last recover");
}

/* cases[lo..hi) */
static void run_range(size_t lo, size_t hi)
{
	/* a lost answer costs this much (10 s in real use) */
	setenv("RINGSTOR_MIGRATE_TEST_QMP_TIMEOUT_MS", "1500", 1);
	assert_true(hi <= sizeof(cases) / sizeof(cases[0]));
	for (size_t i = lo; i < hi; i++)
		run_case(&cases[i], i);
}

/* success, and a destination gone before cont: rolled back as always */
static void test_before_cont(void **state)
{
	(void)state;
	run_range(0, 2);
}

/* cont sent: error, no answer, connection dropped; blockstats 0 / >0 / unknown */
static void test_cont_outcome(void **state)
{
	(void)state;
	run_range(2, 9);
}

/* cont answered; the status query after it lost, or not running */
static void test_status_after_cont(void **state)
{
	(void)state;
	run_range(9, 13);
}

/* the companion killed at dest-cont-sent, dest-running, dest-unused,
 * rollback; recover (and the operator's fix) */
static void test_recover(void **state)
{
	(void)state;
	run_range(13, sizeof(cases) / sizeof(cases[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_cont),
		cmocka_unit_test(test_cont_outcome),
		cmocka_unit_test(test_status_after_cont),
		cmocka_unit_test(test_recover),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
