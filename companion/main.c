/* main.c - ringstor-migrate: the host companion of the ringstor appliance.
 *
 *   ringstor-migrate probe     facts a migration depends on, for this host
 *   ringstor-migrate preflight probe the source and the destination, compare
 *   ringstor-migrate migrate   preflight, lease, live migration, lease transfer
 *   ringstor-migrate recover   finish or undo a handover a crash interrupted
 *   ringstor-migrate qmp-relay SOCK   stdin/stdout <-> a QMP socket (run by
 *                              migrate on the other hosts through the remote shell)
 *
 * (issue 5 items 2, 3 and 4).
 * Exit codes: 0 ok / nothing failed, 1 a check (or a disk probe) failed,
 * 2 usage error or a probe that could not be run.
 */
#include "companion/compare.h"
#include "companion/domain.h"
#include "companion/migrate.h"
#include "companion/qmp.h"
#include "companion/preflight.h"
#include "companion/probe.h"
#include "companion/run.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_VM_FILE (4u << 20)

static void usage(FILE *out)
{
	fputs("Usage:\n"
	      "  ringstor-migrate probe [--json] [DISKS] [--initiator-name IQN]\n"
	      "  ringstor-migrate preflight --source HOST --dest HOST [--rsh 'COMMAND'] [--remote-cmd PATH]\n"
	      "                             [DISKS] [--json] [--timeout SECONDS] [--initiator-name IQN]\n"
	      "DISKS (any mix, repeatable):\n"
	      "  --disk PATH|iscsi://HOST[:PORT]/IQN/LUN|nfs://SERVER/EXPORT/FILE[?nfsport=N&mountport=N]\n"
	      "  --domain-xml FILE     libvirt domain XML: disks, bridges, memory\n"
	      "  --qemu-cmdline FILE   QEMU command line (or a copy of /proc/PID/cmdline)\n"
	      "  --domain NAME         libvirt domain, read with `virsh dumpxml NAME` on this host\n"
	      "preflight:\n"
	      "  --source/--src, --dest/--dst HOST   host names; 'local' probes this host directly\n"
	      "  --rsh 'COMMAND'       remote shell (default '" PREFLIGHT_DEFAULT_RSH "'); HOST is appended,\n"
	      "                        then the probe command (e.g. --rsh 'ip netns exec' with HOST a netns)\n"
	      "  --dest-disk X         the destination's path/URL for the disk at the same position\n"
	      "                        (when it differs; a different path is itself a FAIL)\n"
	      "  --remote-cmd PATH     ringstor-migrate on the hosts (default '" PREFLIGHT_DEFAULT_REMOTE_CMD "')\n"
	      "  --lease KEY=VAL,... --source-holder ID [--appliance HOST] [--adm 'RINGSTORADM [ARGS]']\n"
	      "                        check the image's lease on the appliance: free or held by ID\n"
	      "Prints one line per check: PASS|FAIL|WARN <check>: <reason>.\n"
	      "Exit status: 0 nothing failed, 1 a check failed, 2 usage or probe error.\n"
	      "\n"
	      "  ringstor-migrate migrate --source HOST --dest HOST --qemu-cmdline FILE --lease KEY=VAL[,...]\n"
	      "                           --dest-holder ID [--qmp-source SOCK] [--qmp-dest SOCK] [--dest-addr ADDR]\n"
	      "                           [--port N] [--appliance HOST] [--adm 'RINGSTORADM [ARGS]'] [--rsh 'COMMAND']\n"
	      "                           [--remote-cmd PATH] [--journal DIR] [--source-holder ID] [--vm NAME]\n"
	      "                           [--driver qemu] [--dest-qemu-cmdline FILE] [--timeout S] [--no-progress]\n"
	      "                           [--disk X]... [--initiator-name IQN] [--transfer-at completed|pre-switchover]\n"
	      "  --lease KEY=VAL,...   the image's lease on the appliance, as ringstoradm options without\n"
	      "                        the dashes: tid=1,lun=1 (iSCSI) or lld=nfs,path=P; repeatable\n"
	      "  --source-holder ID    the source's lease identity (default: its -iscsi initiator-name)\n"
	      "  --dest-holder ID      the destination's (for iSCSI also its QEMU's initiator-name)\n"
	      "  --appliance HOST      where ringstoradm runs, through --rsh ('local': here)\n"
	      "  Exit status: 0 migrated; 1 not migrated (preflight failed or rolled back: the source\n"
	      "  runs and holds the lease); 2 usage; 3 rollback incomplete: run recover.\n"
	      "  ringstor-migrate recover --journal FILE|DIR [--dry-run]\n"
	      "  Finishes or undoes the handover a journal records (a DIR: its newest journal).\n",
	      out);
}

enum {
	OPT_JSON = 256, OPT_DISK, OPT_DOMAIN_XML, OPT_QEMU_CMDLINE, OPT_DOMAIN, OPT_INITIATOR, OPT_SOURCE,
	OPT_DEST, OPT_DEST_DISK, OPT_RSH, OPT_REMOTE_CMD, OPT_TIMEOUT, OPT_VM, OPT_LEASE, OPT_APPLIANCE, OPT_ADM,
	OPT_SOURCE_HOLDER,
};

static const struct option long_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "domain-xml", required_argument, NULL, OPT_DOMAIN_XML },
	{ "qemu-cmdline", required_argument, NULL, OPT_QEMU_CMDLINE },
	{ "domain", required_argument, NULL, OPT_DOMAIN },
	{ "initiator-name", required_argument, NULL, OPT_INITIATOR },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "src", required_argument, NULL, OPT_SOURCE },
	{ "dest", required_argument, NULL, OPT_DEST },
	{ "dst", required_argument, NULL, OPT_DEST },
	{ "dest-disk", required_argument, NULL, OPT_DEST_DISK },
	{ "rsh", required_argument, NULL, OPT_RSH },
	{ "remote-cmd", required_argument, NULL, OPT_REMOTE_CMD },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "vm", required_argument, NULL, OPT_VM },
	{ "lease", required_argument, NULL, OPT_LEASE },
	{ "appliance", required_argument, NULL, OPT_APPLIANCE },
	{ "adm", required_argument, NULL, OPT_ADM },
	{ "source-holder", required_argument, NULL, OPT_SOURCE_HOLDER },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct args {
	bool json;
	char **disks;
	size_t ndisks;
	char **dest_disks;
	size_t ndest_disks;
	const char *domain_xml, *qemu_cmdline, *domain, *initiator;
	const char *source, *dest, *rsh, *remote_cmd;
	char **leases;
	size_t nleases;
	const char *appliance, *adm, *source_holder;
	int timeout_s;
	struct vm_spec vm;
	bool have_vm;
};

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct strbuf sb = {0};
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (sb.len + n > MAX_VM_FILE) {
			snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_VM_FILE);
			fclose(f);
			sb_free(&sb);
			return NULL;
		}
		sb_append(&sb, buf, n);
	}
	bool rerr = ferror(f);
	fclose(f);
	if (rerr || sb.oom) {
		snprintf(err, errlen, "%s: read error", path);
		sb_free(&sb);
		return NULL;
	}
	if (!sb.buf)
		sb_append(&sb, "", 0);
	*len = sb.len;
	return sb.buf;
}

/* Reads the VM definition given by --domain-xml/--qemu-cmdline/--domain. */
static int load_vm(struct args *a)
{
	int given = !!a->domain_xml + !!a->qemu_cmdline + !!a->domain;
	if (given == 0)
		return 0;
	if (given > 1) {
		fprintf(stderr, "ringstor-migrate: give only one of --domain-xml, --qemu-cmdline, --domain\n");
		return -1;
	}
	char err[512];
	size_t len = 0;
	char *text = NULL;
	if (a->domain) {
		char *virsh = which("virsh");
		if (!virsh) {
			fprintf(stderr, "ringstor-migrate: --domain %s needs virsh, which is not installed here; "
				"use --domain-xml FILE\n", a->domain);
			return -1;
		}
		char *argv[] = { virsh, (char *)"dumpxml", (char *)a->domain, NULL };
		struct run_job j;
		if (run_start(&j, argv) == 0)
			run_wait_all(&j, 1, 60);
		free(virsh);
		if (j.status != 0) {
			fprintf(stderr, "ringstor-migrate: virsh dumpxml %s failed: %s\n", a->domain,
				j.err.buf && *j.err.buf ? j.err.buf : j.why);
			run_job_free(&j);
			return -1;
		}
		text = j.out.buf;
		len = j.out.len;
		j.out.buf = NULL;
		run_job_free(&j);
	} else {
		text = read_file(a->domain_xml ? a->domain_xml : a->qemu_cmdline, &len, err, sizeof(err));
		if (!text) {
			fprintf(stderr, "ringstor-migrate: %s\n", err);
			return -1;
		}
	}
	int r = a->qemu_cmdline ? domain_parse_qemu_cmdline(&a->vm, text, len, err, sizeof(err))
				: domain_parse_xml(&a->vm, text, len, err, sizeof(err));
	free(text);
	if (r < 0) {
		fprintf(stderr, "ringstor-migrate: %s: %s\n",
			a->domain_xml ? a->domain_xml : a->qemu_cmdline ? a->qemu_cmdline : a->domain, err);
		return -1;
	}
	a->have_vm = true;
	for (size_t i = 0; i < a->vm.ndisks; i++)
		if (!strv_has(a->disks, a->ndisks, a->vm.disks[i]))
			strv_push(&a->disks, &a->ndisks, a->vm.disks[i]);
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a, bool preflight)
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: a->json = true; break;
		case OPT_DISK:
			if (!*optarg) {
				fprintf(stderr, "ringstor-migrate: --disk needs a path or URL\n");
				return -1;
			}
			strv_push(&a->disks, &a->ndisks, optarg);
			break;
		case OPT_DOMAIN_XML: a->domain_xml = optarg; break;
		case OPT_QEMU_CMDLINE: a->qemu_cmdline = optarg; break;
		case OPT_DOMAIN: a->domain = optarg; break;
		case OPT_INITIATOR: a->initiator = optarg; break;
		case OPT_DEST_DISK:
			if (!preflight) {
				fprintf(stderr, "ringstor-migrate: --dest-disk is a preflight option\n");
				return -1;
			}
			strv_push(&a->dest_disks, &a->ndest_disks, optarg);
			break;
		case OPT_LEASE: case OPT_APPLIANCE: case OPT_ADM: case OPT_SOURCE_HOLDER:
			if (!preflight) {
				fprintf(stderr, "ringstor-migrate: %s is a preflight option\n", argv[optind - 1]);
				return -1;
			}
			if (c == OPT_LEASE) strv_push(&a->leases, &a->nleases, optarg);
			if (c == OPT_APPLIANCE) a->appliance = optarg;
			if (c == OPT_ADM) a->adm = optarg;
			if (c == OPT_SOURCE_HOLDER) a->source_holder = optarg;
			break;
		case OPT_SOURCE: case OPT_DEST: case OPT_RSH: case OPT_REMOTE_CMD: case OPT_TIMEOUT:
			if (!preflight) {
				fprintf(stderr, "ringstor-migrate: %s is a preflight option\n", argv[optind - 1]);
				return -1;
			}
			if (c == OPT_SOURCE) a->source = optarg;
			if (c == OPT_DEST) a->dest = optarg;
			if (c == OPT_RSH) a->rsh = optarg;
			if (c == OPT_REMOTE_CMD) a->remote_cmd = optarg;
			if (c == OPT_TIMEOUT) {
				char *end;
				long t = strtol(optarg, &end, 10);
				if (*end || t < 1 || t > 86400) {
					fprintf(stderr, "ringstor-migrate: --timeout wants 1..86400 seconds\n");
					return -1;
				}
				a->timeout_s = (int)t;
			}
			break;
		case OPT_VM:
			fprintf(stderr, "ringstor-migrate: --vm needs the host configuration file, which is not "
				"implemented yet; use --domain-xml FILE or --disk\n");
			return -1;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringstor-migrate: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return load_vm(a);
}

static void args_free(struct args *a)
{
	for (size_t i = 0; i < a->ndisks; i++)
		free(a->disks[i]);
	free(a->disks);
	for (size_t i = 0; i < a->ndest_disks; i++)
		free(a->dest_disks[i]);
	free(a->dest_disks);
	for (size_t i = 0; i < a->nleases; i++)
		free(a->leases[i]);
	free(a->leases);
	vm_spec_free(&a->vm);
}

static int cmd_probe(int argc, char **argv)
{
	struct args a = {0};
	if (parse_args(argc, argv, &a, false) < 0) {
		args_free(&a);
		return 2;
	}
	struct probe_host h = {0};
	probe_host_collect(&h, NULL);
	int rc = 0;
	if (a.ndisks) {
		h.disks = calloc(a.ndisks, sizeof(*h.disks));
		if (!h.disks) {
			fprintf(stderr, "ringstor-migrate: out of memory\n");
			probe_host_free(&h);
			args_free(&a);
			return 2;
		}
		for (size_t i = 0; i < a.ndisks; i++) {
			h.ndisks++;
			if (probe_disk_run(&h.disks[i], a.disks[i], a.initiator) < 0) {
				/* The error travels in the output; say it on stderr too. */
				fprintf(stderr, "ringstor-migrate: disk %s: %s\n", a.disks[i],
					h.disks[i].error ? h.disks[i].error : "probe failed");
				rc = 1;
			}
		}
	}
	char *text = a.json ? probe_to_json(&h) : probe_to_text(&h);
	if (!text) {
		fprintf(stderr, "ringstor-migrate: out of memory formatting the probe\n");
		rc = 2;
	} else {
		fputs(text, stdout);
		free(text);
	}
	if (fflush(stdout) != 0)
		rc = 2;
	probe_host_free(&h);
	args_free(&a);
	return rc;
}

static int cmd_preflight(int argc, char **argv)
{
	struct args a = {0};
	if (parse_args(argc, argv, &a, true) < 0) {
		args_free(&a);
		return 2;
	}
	if (!a.source || !a.dest) {
		fprintf(stderr, "ringstor-migrate: preflight needs --source HOST and --dest HOST\n");
		args_free(&a);
		return 2;
	}
	if (a.ndest_disks && a.ndest_disks != a.ndisks) {
		fprintf(stderr, "ringstor-migrate: --dest-disk given %zu times for %zu disks: give one per disk, "
			"in the same order\n", a.ndest_disks, a.ndisks);
		args_free(&a);
		return 2;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	struct preflight_opts o = {
		.source = a.source, .dest = a.dest, .rsh = a.rsh, .remote_cmd = a.remote_cmd,
		.self_exe = n > 0 ? self : NULL, .initiator_name = a.initiator, .disks = a.disks,
		.ndisks = a.ndisks, .dest_disks = a.ndest_disks ? a.dest_disks : NULL, .vm = a.have_vm ? &a.vm : NULL, .timeout_s = a.timeout_s, .json = a.json,
	};
	char lease_reason[2048];
	if (a.nleases) {
		o.lease_status = migrate_lease_check(a.rsh, a.appliance, a.adm, a.leases, a.nleases, a.source_holder,
						     lease_reason, sizeof(lease_reason));
		o.lease_reason = lease_reason;
	}
	int rc = preflight_run(&o, stdout, stderr);
	fflush(stdout);
	args_free(&a);
	return rc;
}

enum {
	M_VM = 300, M_DRIVER, M_SOURCE, M_DEST, M_APPLIANCE, M_RSH, M_REMOTE_CMD, M_ADM, M_QMP_SOURCE, M_QMP_DEST,
	M_DEST_PIDFILE, M_QEMU_CMDLINE, M_DEST_QEMU_CMDLINE, M_SOURCE_HOLDER, M_DEST_HOLDER, M_LEASE, M_DEST_ADDR,
	M_PORT, M_JOURNAL, M_TIMEOUT, M_NO_PROGRESS, M_DISK, M_INITIATOR, M_DOMAIN_XML, M_DRY_RUN,
	M_PREFLIGHT_TIMEOUT, M_TRANSFER_AT,
};

static const struct option migrate_opts_tbl[] = {
	{ "vm", required_argument, NULL, M_VM },
	{ "driver", required_argument, NULL, M_DRIVER },
	{ "source", required_argument, NULL, M_SOURCE },
	{ "src", required_argument, NULL, M_SOURCE },
	{ "dest", required_argument, NULL, M_DEST },
	{ "dst", required_argument, NULL, M_DEST },
	{ "appliance", required_argument, NULL, M_APPLIANCE },
	{ "rsh", required_argument, NULL, M_RSH },
	{ "remote-cmd", required_argument, NULL, M_REMOTE_CMD },
	{ "adm", required_argument, NULL, M_ADM },
	{ "qmp-source", required_argument, NULL, M_QMP_SOURCE },
	{ "qmp-dest", required_argument, NULL, M_QMP_DEST },
	{ "dest-pidfile", required_argument, NULL, M_DEST_PIDFILE },
	{ "qemu-cmdline", required_argument, NULL, M_QEMU_CMDLINE },
	{ "dest-qemu-cmdline", required_argument, NULL, M_DEST_QEMU_CMDLINE },
	{ "source-holder", required_argument, NULL, M_SOURCE_HOLDER },
	{ "dest-holder", required_argument, NULL, M_DEST_HOLDER },
	{ "lease", required_argument, NULL, M_LEASE },
	{ "dest-addr", required_argument, NULL, M_DEST_ADDR },
	{ "port", required_argument, NULL, M_PORT },
	{ "journal", required_argument, NULL, M_JOURNAL },
	{ "timeout", required_argument, NULL, M_TIMEOUT },
	{ "preflight-timeout", required_argument, NULL, M_PREFLIGHT_TIMEOUT },
	{ "no-progress", no_argument, NULL, M_NO_PROGRESS },
	{ "disk", required_argument, NULL, M_DISK },
	{ "initiator-name", required_argument, NULL, M_INITIATOR },
	{ "domain-xml", required_argument, NULL, M_DOMAIN_XML },
	{ "dry-run", no_argument, NULL, M_DRY_RUN },
	{ "transfer-at", required_argument, NULL, M_TRANSFER_AT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static bool parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = { .progress = true };
	struct args a = {0};
	char **leases = NULL;
	size_t nleases = 0;
	char *cmdline = NULL, *dest_cmdline = NULL;
	const char *dest_cmdline_file = NULL;
	int rc = 2, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", migrate_opts_tbl, NULL)) != -1) {
		switch (c) {
		case M_VM: o.vm_name = optarg; break;
		case M_DRIVER: o.driver = optarg; break;
		case M_SOURCE: o.source = optarg; break;
		case M_DEST: o.dest = optarg; break;
		case M_APPLIANCE: o.appliance = optarg; break;
		case M_RSH: o.rsh = optarg; break;
		case M_REMOTE_CMD: o.remote_cmd = optarg; break;
		case M_ADM: o.adm = optarg; break;
		case M_QMP_SOURCE: o.qmp_source = optarg; break;
		case M_QMP_DEST: o.qmp_dest = optarg; break;
		case M_DEST_PIDFILE: o.dest_pidfile = optarg; break;
		case M_QEMU_CMDLINE: a.qemu_cmdline = optarg; break;
		case M_DEST_QEMU_CMDLINE: dest_cmdline_file = optarg; break;
		case M_SOURCE_HOLDER: o.source_holder = optarg; break;
		case M_DEST_HOLDER: o.dest_holder = optarg; break;
		case M_LEASE: strv_push(&leases, &nleases, optarg); break;
		case M_DEST_ADDR: o.dest_addr = optarg; break;
		case M_PORT:
			if (!parse_int(optarg, 1, 65535, &o.port)) {
				fprintf(stderr, "ringstor-migrate: --port wants 1..65535\n");
				goto out;
			}
			break;
		case M_JOURNAL: o.journal_dir = optarg; break;
		case M_TRANSFER_AT: o.transfer_at = optarg; break;
		case M_TIMEOUT:
		case M_PREFLIGHT_TIMEOUT:
			if (!parse_int(optarg, 1, 86400, c == M_TIMEOUT ? &o.timeout_s : &o.preflight_timeout_s)) {
				fprintf(stderr, "ringstor-migrate: %s wants 1..86400 seconds\n", argv[optind - 1]);
				goto out;
			}
			break;
		case M_NO_PROGRESS: o.progress = false; break;
		case M_DISK: strv_push(&a.disks, &a.ndisks, optarg); break;
		case M_INITIATOR: o.probe_initiator = optarg; break;
		case M_DOMAIN_XML:
			fprintf(stderr, "ringstor-migrate: migrate drives QEMU over QMP: give --qemu-cmdline FILE "
				"(--domain-xml is for preflight)\n");
			goto out;
		case 'h': usage(stdout); rc = 0; goto out;
		default: usage(stderr); goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringstor-migrate: unexpected argument '%s'\n", argv[optind]);
		goto out;
	}
	if (load_vm(&a) < 0)
		goto out;
	char err[512];
	size_t len = 0, dlen = 0;
	if (a.qemu_cmdline) {
		cmdline = read_file(a.qemu_cmdline, &len, err, sizeof(err));
		if (!cmdline) {
			fprintf(stderr, "ringstor-migrate: %s\n", err);
			goto out;
		}
	}
	if (dest_cmdline_file) {
		dest_cmdline = read_file(dest_cmdline_file, &dlen, err, sizeof(err));
		if (!dest_cmdline) {
			fprintf(stderr, "ringstor-migrate: %s\n", err);
			goto out;
		}
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	o.self_exe = n > 0 ? self : NULL;
	o.qemu_cmdline = cmdline;
	o.qemu_cmdline_len = len;
	o.dest_qemu_cmdline = dest_cmdline;
	o.dest_qemu_cmdline_len = dlen;
	o.leases = leases;
	o.nleases = nleases;
	o.vm = a.have_vm ? &a.vm : NULL;
	o.disks = a.disks;
	o.ndisks = a.ndisks;
	rc = migrate_run(&o, stdout, stderr);
out:
	free(cmdline);
	free(dest_cmdline);
	for (size_t i = 0; i < nleases; i++)
		free(leases[i]);
	free(leases);
	args_free(&a);
	return rc;
}

static int cmd_recover(int argc, char **argv)
{
	const char *journal = NULL;
	bool dry = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", migrate_opts_tbl, NULL)) != -1) {
		switch (c) {
		case M_JOURNAL: journal = optarg; break;
		case M_DRY_RUN: dry = true; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "ringstor-migrate: recover takes --journal FILE|DIR [--dry-run]; the rest "
				"comes from the journal\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringstor-migrate: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!journal)
		journal = MIGRATE_DEFAULT_JOURNAL_DIR;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	return recover_run(journal, n > 0 ? self : NULL, dry, stdout, stderr);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "probe") == 0)
		return cmd_probe(argc - 1, argv + 1);
	if (strcmp(cmd, "preflight") == 0)
		return cmd_preflight(argc - 1, argv + 1);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(cmd, "recover") == 0)
		return cmd_recover(argc - 1, argv + 1);
	if (strcmp(cmd, "qmp-relay") == 0) {
		if (argc != 3) {
			fprintf(stderr, "usage: ringstor-migrate qmp-relay SOCKET\n");
			return 2;
		}
		return qmp_relay(argv[2]);
	}
	fprintf(stderr, "ringstor-migrate: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
