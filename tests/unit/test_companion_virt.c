/* test_companion_virt.c - the libvirt and Xen drivers of `ringstor-migrate
 * migrate` and their `recover` (companion/migrate.c), against fake `virsh`
 * and `xl` scripts (the libvirt driver also runs against real libvirt in
 * tests/integration/test_migrate_libvirt.sh; Xen only here).
 *
 * The fakes keep each "host"'s domain state in a file (running, paused,
 * or no file: no domain), implement domstate/list, migrate (the source's
 * domain goes, the target's appears paused, as with --suspend / -p),
 * resume/unpause, destroy and domjobabort, and log every action that
 * changes something as "HOST:ACTION" (the same words for both drivers).
 * The fake virsh also answers `virsh version` with HV_QEMU (default
 * 10.0.0) and, like libvirt with a QEMU before 10.0, kills a domain that
 * arrived paused and never ran when it is migrated again (its images are
 * still inactive: QEMU aborts), logged as "HOST:crash".  Its domain has an
 * iSCSI disk whose initiator name is in iqn-HOST: `virsh dumpxml` shows
 * it, `virsh migrate --xml F --persistent-xml P` gives the target the name
 * in F (P must agree, else "HOST:bad-persistent-xml"), a migration
 * without --xml keeps it; every libvirt case checks that the domain, on
 * whichever host it ends, logs in with that host's lease identity.
 * A fake remote shell runs the command with HV_HOST=HOST, a fake
 * ringstoradm keeps the lease in a file (with the epoch fencing), a fake
 * probe prints the same facts for both hosts.
 *
 * Table-driven: for each driver, each case (success; the migration failing
 * before, during or after the switchover; a timeout; the transfer refused
 * with or without a working migration back; the resume failing; the
 * companion killed at each step followed by `recover`) checks the exact
 * sequence of changes, the exit status, where the domain is and runs, and
 * who holds the lease at which epoch.  Each case runs in a child process
 * (the fault hook kills the companion itself).  Linked with libcompanion.a. */
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
	static char buf[8192];
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

/* The fake hypervisor tool: virsh and xl are links to it. */
static const char fake_hv[] =
	"#!/bin/bash\n"
	"D=$(dirname \"$0\")/..\n"
	"me=$(basename \"$0\"); h=${HV_HOST:?no HV_HOST}; st=$D/state-$h\n"
	"cmd=$1; shift\n"
	"log() { echo \"$h:$1\" >>\"$D/log\"; }\n"
	"inj() { case \" ${FAIL_CMD:-} \" in *\" $h:$1 \"*) echo \"error: injected failure of $1 on $h\" >&2; exit 1;; esac; }\n"
	"case $me:$cmd in\n"
	"virsh:domstate) [ -f \"$st\" ] || { echo \"error: failed to get domain '$1'\" >&2;\n"
	"    echo \"error: Domain not found: no domain with matching name '$1'\" >&2; exit 1; }; cat \"$st\";;\n"
	"xl:list) [ -f \"$st\" ] || { echo \"$1 is an invalid domain identifier (rc=-6)\" >&2; exit 1; }\n"
	"    echo 'Name                                        ID   Mem VCPUs\tState\tTime(s)'\n"
	"    case $(cat \"$st\") in running) f=-b----;; paused) f=--p---;; *) f=---s--;; esac\n"
	"    echo \"$1 3 1024 1 $f 1.5\";;\n"
	"virsh:dumpxml) d=${@: -1}; [ -f \"$st\" ] || { echo \"error: failed to get domain '$d'\" >&2; exit 1; }\n"
	"    echo \"<domain type='kvm'><name>$d</name><devices><disk type='network' device='disk'>\"\n"
	"    echo \"<source protocol='iscsi' name='iqn.2026-11.test:t/1'><host name='box'/>\"\n"
	"    if [ -n \"${DUMP_IQN+set}\" ]; then [ -z \"$DUMP_IQN\" ] || echo \"<initiator><iqn name='$DUMP_IQN'/></initiator>\"\n"
	"    elif [ -f \"$D/iqn-$h\" ]; then echo \"<initiator><iqn name='$(cat \"$D/iqn-$h\")'/></initiator>\"; fi\n"
	"    echo '</source></disk></devices></domain>';;\n"
	"virsh:version) echo 'Compiled against library: libvirt 9.0.0'; echo 'Using API: QEMU 9.0.0'\n"
	"    echo \"Running hypervisor: QEMU ${HV_QEMU:-10.0.0}\";;\n"
	"virsh:migrate|xl:migrate) t=${@: -1}; t=${t#qemu+ssh://}; t=${t%/system}\n"
	"    log \"migrate->$t\"; inj migrate\n"
	"    [ \"$(cat \"$st\" 2>/dev/null)\" ] || { echo 'error: no domain' >&2; exit 1; }\n"
	"    if [ -f \"$D/inactive-$h\" ] && [ \"${HV_QEMU:-10.0.0}\" \\< 10 ]; then\n"
	"        rm -f \"$st\" \"$D/inactive-$h\" \"$D/iqn-$h\"; log crash\n"
	"        echo 'error: operation failed: domain is not running' >&2; exit 1\n"
	"    fi\n"
	"    xml= pxml=; while [ $# -gt 0 ]; do case $1 in --xml) xml=$2; shift;; --persistent-xml) pxml=$2; shift;; esac; shift; done\n"
	"    move() {\n"
	"        rm -f \"$D/iqn-$t\"\n"
	"        if [ -n \"$xml\" ]; then i=$(grep -o \"iqn name='[^']*'\" \"$xml\")\n"
	"            [ \"$i\" = \"$(grep -o \"iqn name='[^']*'\" \"$pxml\")\" ] || log bad-persistent-xml\n"
	"            i=${i#iqn name=\\'}; echo \"${i%\\'}\" >\"$D/iqn-$t\"\n"
	"        elif [ -f \"$D/iqn-$h\" ]; then cp \"$D/iqn-$h\" \"$D/iqn-$t\"; fi\n"
	"        rm -f \"$st\" \"$D/inactive-$h\" \"$D/iqn-$h\"; echo paused >\"$D/state-$t\"; [ $me = xl ] || touch \"$D/inactive-$t\"\n"
	"    }\n"
	"    case ${MIG_MODE:-ok}:$h in\n"
	"    hang:hostA) exec sleep 20;;\n"
	"    fail:hostA) echo 'error: migration failed: connection refused' >&2; exit 1;;\n"
	"    failpaused:hostA) echo paused >\"$st\"; echo 'error: migration failed' >&2; exit 1;;\n"
	"    faillate:hostA) move; echo 'error: lost the connection' >&2; exit 1;;\n"
	"    esac\n"
	"    move;;\n"
	"virsh:resume|xl:unpause) log resume; inj resume\n"
	"    [ \"$(cat \"$st\" 2>/dev/null)\" = paused ] || { echo 'error: not paused' >&2; exit 1; }\n"
	"    case ${RESUME_MODE:-ok}:$h in vanish:hostB) rm -f \"$st\" \"$D/inactive-$h\" \"$D/iqn-$h\"\n"
	"        echo 'error: the domain crashed' >&2; exit 1;; esac\n"
	"    echo running >\"$st\"; rm -f \"$D/inactive-$h\"\n"
	"    case ${RESUME_MODE:-ok}:$h in late:hostB) echo 'error: lost the answer' >&2; exit 1;; esac;;\n"
	"virsh:destroy|xl:destroy) log destroy; rm -f \"$st\" \"$D/inactive-$h\" \"$D/iqn-$h\";;\n"
	"virsh:domjobabort) log abort;;\n"
	"*) echo \"fake: unknown $me $cmd\" >&2; exit 2;;\n"
	"esac\n";

/* rsh HOST CMD...: runs CMD as if on HOST. */
static const char fake_rsh[] =
	"#!/bin/bash\n"
	"h=$1; shift\n"
	"D=$(dirname \"$0\")\n"
	"HV_HOST=$h PATH=$D/bin:$PATH exec \"$@\"\n";

/* ringstoradm --mode lease (one lease): "HELD HOLDER EPOCH" in $D/lease;
 * REFUSE_TO=ID refuses transfers to ID. */
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
	"  [ \"$holder\" = \"${REFUSE_TO:-}\" ] && { echo 'transfer refused' >&2; exit 5; }\n"
	"  [ $held = true ] && [ \"$epoch\" = \"$ep\" ] || { echo 'stale epoch' >&2; exit 116; }\n"
	"  echo \"true $holder $((ep + 1))\" >\"$f\";;\n"
	"*) exit 2;;\n"
	"esac\n";

static const char fake_probe[] =
	"#!/bin/sh\n"
	"echo '{\"format\": 1, \"hostname\": \"h\", \"boot_id\": \"b\", \"arch\": \"x86_64\", "
	"\"cpu\": {\"model\": \"m\", \"flags\": [\"fpu\"]}, "
	"\"hypervisor\": {\"kvm\": true, \"xen\": true, \"libvirt\": true, \"qemu\": \"QEMU 7.2\"}, "
	"\"memory\": {\"available_kib\": 4000000}, \"bridges\": [], "
	"\"addresses\": [{\"iface\": \"e\", \"family\": 4, \"address\": \"10.0.0.1\", \"prefix\": 24, "
	"\"subnet\": \"10.0.0.0/24\"}], \"disks\": []}'\n";

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_virt.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char p[256];
	snprintf(p, sizeof(p), "%s/bin", dir);
	mkdir(p, 0755);
	write_file("bin/fakehv", fake_hv, 0755);
	char l1[256], l2[256];
	snprintf(l1, sizeof(l1), "%s/bin/virsh", dir);
	snprintf(l2, sizeof(l2), "%s/bin/xl", dir);
	if (symlink("fakehv", l1) < 0 || symlink("fakehv", l2) < 0)
		return -1;
	write_file("rsh", fake_rsh, 0755);
	write_file("adm", fake_adm, 0755);
	write_file("probe", fake_probe, 0755);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (getenv("KEEP_TEST_DIR")) { fprintf(stderr, "kept %s\n", dir); return 0; }
	return system(cmd) == 0 ? 0 : -1;
}

struct vcase {
	const char *name;
	const char *src_state;  /* "running" / "paused" / NULL: no domain */
	const char *dst_state;
	const char *env;        /* NAME=VALUE;... for the fakes (MIG_MODE, FAIL_CMD, REFUSE_TO) */
	const char *hook;       /* RINGSTOR_MIGRATE_TEST_HOOK step: the companion is killed there */
	int rc;                 /* migrate's exit status (137: killed) */
	const char *log;        /* the changes, in order ("abort" lines only with libvirt) */
	const char *final_a, *final_b; /* domain states afterwards ("" none) */
	const char *lease;      /* "HOLDER EPOCH" afterwards */
	int recover_rc;         /* after a hook: recover's exit status */
	const char *recover_log;
	const char *recover_action; /* in recover's first line (also: run recover without a hook) */
	const char *qemu;       /* the hosts' QEMU version (HV_QEMU; default 10.0.0) */
	bool libvirt_only;
};

#define A "iqn.test:a"
#define B "iqn.test:b"
static const struct vcase cases[] = {
	{ "success", "running", NULL, "", NULL, 0,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "running", B " 6" },
	{ "source paused: stays paused", "paused", NULL, "", NULL, 0,
	  "hostA:migrate->hostB adm:transfer->" B, "", "paused", B " 6" },
	{ "no domain on the source", NULL, NULL, "", NULL, 1, "", "", "", A " 5" },
	{ "domain already on the destination", "running", "running", "", NULL, 1, "", "running", "running", A " 5" },
	{ "migration fails, source untouched", "running", NULL, "MIG_MODE=fail", NULL, 1,
	  "hostA:migrate->hostB", "running", "", A " 5" },
	{ "migration fails, source left paused", "running", NULL, "MIG_MODE=failpaused", NULL, 1,
	  "hostA:migrate->hostB hostA:resume", "running", "", A " 5" },
	{ "migration reports failure but moved", "running", NULL, "MIG_MODE=faillate", NULL, 0,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "running", B " 6" },
	{ "migration times out", "running", NULL, "MIG_MODE=hang", NULL, 1,
	  "hostA:migrate->hostB hostA:abort", "running", "", A " 5" },
	{ "transfer refused: migrated back", "running", NULL, "REFUSE_TO=" B, NULL, 1,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:migrate->hostA hostA:resume", "running", "", A " 5" },
	{ "transfer refused, migration back fails", "running", NULL, "REFUSE_TO=" B ";FAIL_CMD=hostB:migrate", NULL, 3,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:migrate->hostA", "", "paused", A " 5" },
	/* once resume/unpause was sent the domain may have run on the
	 * destination and written: never undone (the lease stays there, the
	 * source is not resumed); recover resumes it there */
	{ "resume on the destination fails: nothing undone, exit 3; recover resumes it there", "running", NULL,
	  "FAIL_CMD=hostB:resume", NULL, 3,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "paused", B " 6",
	  0, "hostB:resume", "finish" },
	{ "resume reports a failure but the domain runs: going on", "running", NULL, "RESUME_MODE=late", NULL, 0,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "running", B " 6" },
	{ "the domain dies at its resume on the destination: exit 3, the source not resumed", "running", NULL,
	  "RESUME_MODE=vanish", NULL, 3,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "", B " 6" },
	/* the companion killed; recover decides */
	{ "killed at migrating", "running", NULL, "", "migrating", 137,
	  "", "running", "", A " 5",
	  0, "", "undo" },
	{ "killed at the transfer point", "running", NULL, "", "transfer-point", 137,
	  "hostA:migrate->hostB", "", "paused", A " 5",
	  0, "hostB:migrate->hostA hostA:resume", "undo" },
	{ "killed at transfer-begin", "running", NULL, "", "transfer-begin", 137,
	  "hostA:migrate->hostB", "", "paused", A " 5",
	  0, "hostB:migrate->hostA hostA:resume", "ask-appliance" },
	{ "killed after the transfer", "running", NULL, "", "lease-transferred", 137,
	  "hostA:migrate->hostB adm:transfer->" B, "", "paused", B " 6",
	  0, "hostB:resume", "finish" },
	{ "killed in a rollback after the refused transfer", "running", NULL, "REFUSE_TO=" B, "rollback", 137,
	  "hostA:migrate->hostB adm:transfer->" B, "", "paused", A " 5",
	  0, "hostB:migrate->hostA hostA:resume", "undo-return-lease" },
	{ "killed after the resume was sent (before it ran): recover resumes it there", "running", NULL, "",
	  "dest-cont-sent", 137, "hostA:migrate->hostB adm:transfer->" B, "", "paused", B " 6",
	  0, "hostB:resume", "finish" },
	{ "killed after the resume, the domain died: recover undoes nothing", "running", NULL, "",
	  "dest-running:rm -f $HV_DIR/state-hostB;", 137,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "", B " 6",
	  3, "", "finish" },
	/* libvirt with QEMU < 10: a domain that arrived paused cannot be
	 * migrated back (QEMU would abort and the guest be lost), so the
	 * way out is forward: the lease to the destination, resume there */
	{ "QEMU 7.2: transfer refused: no migration back, waits paused; recover finishes", "running", NULL,
	  "REFUSE_TO=" B, NULL, 3,
	  "hostA:migrate->hostB adm:transfer->" B " adm:transfer->" B, "", "paused", A " 5",
	  0, "adm:transfer->" B " hostB:resume", "undo-return-lease", "7.2.0", true },
	{ "QEMU 7.2: killed at the transfer point: recover finishes forward", "running", NULL, "", "transfer-point", 137,
	  "hostA:migrate->hostB", "", "paused", A " 5",
	  0, "adm:transfer->" B " hostB:resume", "undo", "7.2.0", true },
	{ "QEMU 7.2: killed in the rollback of a refused transfer: recover finishes", "running", NULL, "REFUSE_TO=" B,
	  "rollback", 137, "hostA:migrate->hostB adm:transfer->" B, "", "paused", A " 5",
	  0, "adm:transfer->" B " hostB:resume", "undo-return-lease", "7.2.0", true },
	{ "QEMU 7.2: resume fails: nothing undone, waits paused with the lease; recover finishes", "running", NULL,
	  "FAIL_CMD=hostB:resume", NULL, 3,
	  "hostA:migrate->hostB adm:transfer->" B " hostB:resume", "", "paused", B " 6",
	  0, "hostB:resume", "finish", "7.2.0", true },

	/* the domain's iSCSI disk logs in as another name than the source's
	 * lease identity: refused before the lease is taken */
	{ "iSCSI disk logging in as QEMU's default name: refused", "running", NULL, "DUMP_IQN=", NULL, 1,
	  "", "running", "", A " 5", 0, NULL, NULL, NULL, true },
	{ "iSCSI disk logging in as another host's name: refused", "running", NULL, "DUMP_IQN=" B, NULL, 1,
	  "", "running", "", A " 5", 0, NULL, NULL, NULL, true },
	{ "QEMU 7.2: source paused, migration reports failure but moved: finished, stays paused", "paused", NULL,
	  "MIG_MODE=faillate", NULL, 0, "hostA:migrate->hostB adm:transfer->" B, "", "paused", B " 6",
	  0, NULL, NULL, "7.2.0", true },
};

static void set_state(const char *host, const char *st)
{
	char name[64];
	snprintf(name, sizeof(name), "state-%s", host);
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	if (st) {
		char t[32];
		snprintf(t, sizeof(t), "%s\n", st);
		write_file(name, t, 0644);
	}
}

static void apply_env(const char *env)
{
	unsetenv("MIG_MODE");
	unsetenv("FAIL_CMD");
	unsetenv("REFUSE_TO");
	unsetenv("DUMP_IQN");
	unsetenv("RESUME_MODE");
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

/* The log without the lines this driver does not have. */
static void log_words(bool libvirt, char *out, size_t len)
{
	char *t = read_text("log");
	out[0] = '\0';
	for (char *s = strtok(t, "\n"); s; s = strtok(NULL, "\n")) {
		if (!libvirt && strstr(s, ":abort"))
			continue;
		size_t l = strlen(out);
		snprintf(out + l, len - l, "%s%s", l ? " " : "", s);
	}
}

static void want_log(bool libvirt, const char *want, const char *what, const char *name)
{
	char got[2048], w[2048] = "";
	log_words(libvirt, got, sizeof(got));
	/* "abort" is libvirt's only; the expectations list it */
	char tmp[2048];
	snprintf(tmp, sizeof(tmp), "%s", want);
	for (char *s = strtok(tmp, " "); s; s = strtok(NULL, " ")) {
		if (!libvirt && strstr(s, ":abort"))
			continue;
		size_t l = strlen(w);
		snprintf(w + l, sizeof(w) - l, "%s%s", l ? " " : "", s);
	}
	if (strcmp(got, w) != 0)
		fail_msg("%s [%s] %s: changes\n  got:  %s\n  want: %s", libvirt ? "libvirt" : "xen", name, what, got, w);
}

static void want_state(bool libvirt, const char *host, const char *want, const char *name)
{
	char n[64];
	snprintf(n, sizeof(n), "state-%s", host);
	const char *got = read_text(n);
	if (strcmp(got, want) != 0)
		fail_msg("%s [%s]: domain on %s is '%s', want '%s'", libvirt ? "libvirt" : "xen", name, host, got, want);
}

/* libvirt: wherever the domain is, its iSCSI disk logs in with that
 * host's lease identity (the destination got its own definition). */
static void want_iqns(bool libvirt, const char *name, const char *when)
{
	if (!libvirt)
		return;
	const char *hosts[] = { "hostA", "hostB" }, *ids[] = { A, B };
	for (int i = 0; i < 2; i++) {
		char n[64], st[32];
		snprintf(n, sizeof(n), "state-%s", hosts[i]);
		snprintf(st, sizeof(st), "%s", read_text(n));
		if (!*st)
			continue;
		snprintf(n, sizeof(n), "iqn-%s", hosts[i]);
		const char *got = read_text(n);
		if (strcmp(got, ids[i]) != 0)
			fail_msg("libvirt [%s] %s: the domain on %s (%s) logs in as '%s', want %s", name, when, hosts[i], st,
				 got, ids[i]);
	}
}

static void run_case(bool libvirt, const struct vcase *k, size_t idx)
{
	char p[512], jdir[256], adm[256], rsh[256], probe[256];
	if (k->libvirt_only && !libvirt)
		return;
	if (k->qemu)
		setenv("HV_QEMU", k->qemu, 1);
	else
		unsetenv("HV_QEMU");
	snprintf(p, sizeof(p), "%s/log", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/inactive-hostA", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/inactive-hostB", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/iqn-hostA", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/iqn-hostB", dir);
	unlink(p);
	set_state("hostA", k->src_state);
	set_state("hostB", k->dst_state);
	if (k->src_state)
		write_file("iqn-hostA", A "\n", 0644);
	if (k->dst_state)
		write_file("iqn-hostB", B "\n", 0644);
	write_file("lease", "true " A " 5\n", 0644);
	snprintf(jdir, sizeof(jdir), "%s/j-%s-%zu", dir, libvirt ? "libvirt" : "xen", idx);
	snprintf(adm, sizeof(adm), "%s/adm", dir);
	snprintf(rsh, sizeof(rsh), "%s/rsh", dir);
	snprintf(probe, sizeof(probe), "%s/probe", dir);
	char *leases[] = { (char *)"tid=1,lun=1" };
	struct migrate_opts o = {
		.driver = libvirt ? "libvirt" : "xen", .vm_name = "vm1", .source = "hostA", .dest = "hostB",
		.appliance = "app", .rsh = rsh, .remote_cmd = probe, .adm = adm, .source_holder = A, .dest_holder = B,
		.leases = leases, .nleases = 1, .journal_dir = jdir, .timeout_s = 2, .progress = false,
		.preflight_timeout_s = 30,
	};
	snprintf(p, sizeof(p), "%s/out-%zu", dir, idx);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		apply_env(k->env);
		setenv("HV_DIR", dir, 1);
		if (k->hook) {
			char h[256];
			/* "STEP" or "STEP:COMMAND;": then the companion is killed */
			snprintf(h, sizeof(h), "%s%s kill -KILL $RINGSTOR_MIGRATE_PID", k->hook, strchr(k->hook, ':') ? "" : ":");
			setenv("RINGSTOR_MIGRATE_TEST_HOOK", h, 1);
		}
		FILE *f = fopen(p, "w");
		if (!f)
			_exit(99);
		int rc = migrate_run(&o, f, f);
		fclose(f);
		_exit(rc);
	}
	int st;
	waitpid(pid, &st, 0);
	int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	const char *drv = libvirt ? "libvirt" : "xen";
	if (rc != k->rc) {
		char n[64];
		snprintf(n, sizeof(n), "out-%zu", idx);
		fail_msg("%s [%s]: exit %d, want %d; output:\n%s", drv, k->name, rc, k->rc, read_text(n));
	}
	want_log(libvirt, k->log, "migrate", k->name);
	want_iqns(libvirt, k->name, "after migrate");
	want_state(libvirt, "hostA", k->final_a, k->name);
	want_state(libvirt, "hostB", k->final_b, k->name);
	if (strcmp(read_text("lease"), k->lease[0] ? (snprintf(p, sizeof(p), "true %s", k->lease), p) : "") != 0)
		fail_msg("%s [%s]: lease '%s', want 'true %s'", drv, k->name, read_text("lease"), k->lease);
	if (!k->hook && !k->recover_action)
		return;
	bool want_one_running = k->recover_rc == 0;

	/* recover, in a clean environment (no injected faults) */
	snprintf(p, sizeof(p), "%s/log", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/rec-%zu", dir, idx);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		apply_env("");
		unsetenv("RINGSTOR_MIGRATE_TEST_HOOK");
		FILE *f = fopen(p, "w");
		if (!f)
			_exit(99);
		int r = recover_run(jdir, NULL, false, f, f);
		fclose(f);
		_exit(r);
	}
	waitpid(pid, &st, 0);
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	char n[64];
	snprintf(n, sizeof(n), "rec-%zu", idx);
	char out[8192];
	snprintf(out, sizeof(out), "%s", read_text(n));
	if (rc != k->recover_rc)
		fail_msg("%s [%s]: recover exit %d, want %d:\n%s", drv, k->name, rc, k->recover_rc, out);
	char want_action[64];
	snprintf(want_action, sizeof(want_action), "-> %s", k->recover_action);
	if (!strstr(out, want_action))
		fail_msg("%s [%s]: recover did not decide '%s':\n%s", drv, k->name, k->recover_action, out);
	want_log(libvirt, k->recover_log, "recover", k->name);
	want_iqns(libvirt, k->name, "after recover");
	/* after recover: exactly one host has the domain, running, and it
	 * holds the lease */
	const char *a = read_text("state-hostA");
	bool on_a = strcmp(a, "running") == 0;
	char a_copy[32];
	snprintf(a_copy, sizeof(a_copy), "%s", a);
	const char *b = read_text("state-hostB");
	bool on_b = strcmp(b, "running") == 0;
	if (!want_one_running) {
		/* recover refused to undo: the source was not resumed and the
		 * lease stayed where it was */
		if (on_a || strcmp(read_text("lease"), k->lease[0] ? (snprintf(p, sizeof(p), "true %s", k->lease), p) : "") != 0)
			fail_msg("%s [%s]: after a refused recover hostA '%s', lease '%s'", drv, k->name, a_copy,
				 read_text("lease"));
		return;
	}
	if (on_a == on_b)
		fail_msg("%s [%s]: after recover hostA '%s', hostB '%s': want exactly one running", drv, k->name, a_copy, b);
	char l[64];
	snprintf(l, sizeof(l), "%s", read_text("lease"));
	if (!strstr(l, on_a ? A : B))
		fail_msg("%s [%s]: after recover the lease is '%s', the domain runs on %s", drv, k->name, l,
			 on_a ? "hostA" : "hostB");
	/* and a second recover has nothing to do */
	pid = fork();
	if (pid == 0) {
		FILE *f = fopen(p, "w");
		if (!f)
			_exit(99);
		int r = recover_run(jdir, NULL, false, f, f);
		fclose(f);
		_exit(r);
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !strstr(read_text(n), "-> nothing"))
		fail_msg("%s [%s]: a second recover: %s", drv, k->name, read_text(n));
}

static void test_libvirt(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(true, &cases[i], i);
}

static void test_xen(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(false, &cases[i], i);
}

/* Usage errors: nothing runs. */
static void test_usage(void **state)
{
	(void)state;
	char *leases[] = { (char *)"tid=1,lun=1" };
	FILE *f = fopen("/dev/null", "w");
	struct migrate_opts o = { .driver = "libvirt", .source = "hostA", .dest = "hostB", .leases = leases,
				  .nleases = 1, .source_holder = A, .dest_holder = B };
	assert_int_equal(migrate_run(&o, f, f), 2);          /* no domain name */
	o.vm_name = "vm1";
	o.dest_holder = A;
	assert_int_equal(migrate_run(&o, f, f), 2);          /* same identity on both sides */
	o.dest_holder = NULL;
	assert_int_equal(migrate_run(&o, f, f), 2);
	o.driver = "vmware";
	o.dest_holder = B;
	assert_int_equal(migrate_run(&o, f, f), 2);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_libvirt),
		cmocka_unit_test(test_xen),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
