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
#include "companion/hostconf.h"
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
	      "  ringstor-migrate probe [-c FILE] [--json] [--vm NAME | DISKS] [--initiator-name IQN]\n"
	      "  ringstor-migrate preflight [-c FILE] [--vm NAME] --src HOST --dst HOST [--rsh 'COMMAND']\n"
	      "                             [--remote-cmd PATH] [DISKS] [--json] [--timeout SECONDS] [--initiator-name IQN]\n"
	      "  ringstor-migrate migrate [-c FILE] --vm NAME --src HOST --dst HOST [--driver qemu|libvirt|xen] ...\n"
	      "  ringstor-migrate recover [--journal FILE|DIR] [--dry-run]\n"
	      "Common:\n"
	      "  -c, --config FILE     host configuration (libconfig; default " HOSTCONF_DEFAULT_PATH " if it\n"
	      "                        exists): appliance, rsh, hosts, VMs; the command line wins over it\n"
	      "  --vm NAME             a VM of the configuration: its disks, leases, driver, QMP socket\n"
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
	      "  --driver qemu|libvirt|xen   qemu: QMP (default); libvirt: virsh migrate --live --suspend;\n"
	      "                        xen: xl migrate -p (both then: lease transfer, resume/unpause)\n"
	      "  --dest-uri URI        libvirt: the destination URI (default qemu+ssh://DEST_ADDR/system);\n"
	      "                        xen: the host given to xl migrate (default DEST_ADDR)\n"
	      "  --source-uri URI      the same for the source (a migration back, on rollback)\n"
	      "  --domain-xml FILE     libvirt/xen: the domain's definition (disks, memory, bridges for the\n"
	      "                        preflight); libvirt default: virsh dumpxml DOMAIN on the source\n"
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
	{ "config", required_argument, NULL, 'c' },
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
	const char *config, *vm_name, *dest_initiator;
	struct hostconf hc;
	bool hc_loaded;
	const struct hc_vm *cvm;
};

/* -c FILE, else /etc/ringstor/migrate.conf if it exists.  0 (loaded or
 * none), -1 (the message printed: FILE:LINE: why). */
static int config_load(const char *path, struct hostconf *hc, bool *loaded, bool needed)
{
	*loaded = false;
	bool dflt = !path;
	if (!path) {
		if (access(HOSTCONF_DEFAULT_PATH, F_OK) != 0)
			return 0;
		path = HOSTCONF_DEFAULT_PATH;
	}
	char err[700];
	if (hostconf_load(hc, path, err, sizeof(err)) < 0) {
		/* A probe run by another host's preflight gets everything on
		 * its command line: a broken default file here must not fail
		 * it (but it is said). */
		fprintf(stderr, "ringstor-migrate: %s%s\n", err, dflt && !needed ? " (ignored)" : "");
		return dflt && !needed ? 0 : -1;
	}
	*loaded = true;
	return 0;
}

/* The VM named by --vm in the configuration; NULL with a message. */
static const struct hc_vm *config_vm(const struct hostconf *hc, bool loaded, const char *name)
{
	if (!loaded) {
		fprintf(stderr, "ringstor-migrate: --vm %s needs the host configuration: -c FILE (or %s)\n", name,
			HOSTCONF_DEFAULT_PATH);
		return NULL;
	}
	const struct hc_vm *v = hostconf_vm(hc, name);
	if (!v) {
		fprintf(stderr, "ringstor-migrate: %s: no VM named '%s' (", hc->path, name);
		for (size_t i = 0; i < hc->nvms; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", hc->vms[i].name);
		fprintf(stderr, "%s)\n", hc->nvms ? "" : "vms = ( ... ) is empty");
	}
	return v;
}

/* What to append to --rsh for a host: its rsh_host, else the name as given. */
static const char *config_rsh_host(const struct hostconf *hc, const char *name)
{
	const struct hc_host *h = hostconf_host(hc, name);
	return h && h->rsh_host ? h->rsh_host : name;
}

/* Adds the configured VM's memory, bridges and disks to the VM definition
 * (after --qemu-cmdline/--domain-xml, whose values they override). */
static void config_vm_merge(struct vm_spec *vm, bool *have_vm, const struct hc_vm *v, char ***disks, size_t *ndisks)
{
	if (!*have_vm) {
		vm->name = xstrdup(v->name);
		*have_vm = true;
	}
	if (v->mem_known) {
		vm->mem_known = true;
		vm->memory_kib = v->memory_kib;
	}
	for (size_t i = 0; i < v->nbridges; i++)
		if (!strv_has(vm->bridges, vm->nbridges, v->bridges[i]))
			strv_push(&vm->bridges, &vm->nbridges, v->bridges[i]);
	for (size_t i = 0; i < v->ndisks; i++) {
		if (!strv_has(vm->disks, vm->ndisks, v->disks[i]))
			strv_push(&vm->disks, &vm->ndisks, v->disks[i]);
		if (!strv_has(*disks, *ndisks, v->disks[i]))
			strv_push(disks, ndisks, v->disks[i]);
	}
}

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
	while ((c = getopt_long(argc, argv, "hc:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
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
		case OPT_VM: a->vm_name = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringstor-migrate: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (config_load(a->config, &a->hc, &a->hc_loaded, preflight || a->vm_name) < 0)
		return -1;
	if (a->vm_name) {
		a->cvm = config_vm(&a->hc, a->hc_loaded, a->vm_name);
		if (!a->cvm)
			return -1;
		if (!a->qemu_cmdline && !a->domain_xml && !a->domain) {
			a->qemu_cmdline = a->cvm->qemu_cmdline;
			a->domain_xml = a->cvm->domain_xml;
		}
	}
	if (load_vm(a) < 0)
		return -1;
	if (a->cvm)
		config_vm_merge(&a->vm, &a->have_vm, a->cvm, &a->disks, &a->ndisks);
	if (!a->hc_loaded)
		return 0;
	const struct hostconf *hc = &a->hc;
	if (!preflight) {
		/* probe: this host's initiator name, if the configuration knows it */
		char hn[256];
		const struct hc_host *me = gethostname(hn, sizeof(hn)) == 0 ? hostconf_host(hc, hn) : NULL;
		if (!a->initiator && me)
			a->initiator = me->initiator_name;
		return 0;
	}
	const struct hc_host *src = hostconf_host(hc, a->source), *dst = hostconf_host(hc, a->dest);
	if (!a->rsh)
		a->rsh = hc->rsh;
	if (!a->remote_cmd)
		a->remote_cmd = hc->remote_cmd;
	if (!a->appliance)
		a->appliance = hc->appliance;
	if (!a->adm)
		a->adm = hc->adm;
	if (!a->nleases && a->cvm)
		for (size_t i = 0; i < a->cvm->nleases; i++)
			strv_push(&a->leases, &a->nleases, a->cvm->leases[i]);
	if (!a->source_holder && src && a->nleases) {
		char err[400];
		a->source_holder = hostconf_holder(src, a->leases, a->nleases, err, sizeof(err));
		if (!a->source_holder) {
			fprintf(stderr, "ringstor-migrate: %s: %s\n", hc->path, err);
			return -1;
		}
	}
	if (!a->initiator) {
		a->initiator = src ? src->initiator_name : NULL;
		a->dest_initiator = dst ? dst->initiator_name : NULL;
	}
	if (a->source)
		a->source = config_rsh_host(hc, a->source);
	if (a->dest)
		a->dest = config_rsh_host(hc, a->dest);
	return 0;
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
	if (a->hc_loaded)
		hostconf_free(&a->hc);
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
		.self_exe = n > 0 ? self : NULL, .initiator_name = a.initiator, .dest_initiator_name = a.dest_initiator,
		.disks = a.disks,
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
	M_PREFLIGHT_TIMEOUT, M_TRANSFER_AT, M_DEST_URI, M_SOURCE_URI,
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
	{ "dest-uri", required_argument, NULL, M_DEST_URI },
	{ "source-uri", required_argument, NULL, M_SOURCE_URI },
	{ "config", required_argument, NULL, 'c' },
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

/* Fills what the command line left open from the configuration: the
 * driver, the hosts' remote-shell names, addresses and lease identities,
 * the VM's QMP sockets, leases and command line.  *pid gets the source's
 * QEMU pid file (to read its command line when none is given). */
static int rc_from_config(struct migrate_opts *o, struct args *a, char **qs, char **qd, char **pid)
{
	const struct hostconf *hc = &a->hc;
	const struct hc_vm *v = a->cvm;
	const struct hc_host *src = a->hc_loaded ? hostconf_host(hc, o->source) : NULL;
	const struct hc_host *dst = a->hc_loaded ? hostconf_host(hc, o->dest) : NULL;
	if (a->hc_loaded) {
		if (!o->rsh) o->rsh = hc->rsh;
		if (!o->remote_cmd) o->remote_cmd = hc->remote_cmd;
		if (!o->appliance) o->appliance = hc->appliance;
		if (!o->adm) o->adm = hc->adm;
		if (!o->journal_dir) o->journal_dir = hc->journal_dir;
		if (!o->transfer_at) o->transfer_at = hc->transfer_at;
		if (!o->port) o->port = hc->port;
	}
	if (v) {
		if (!o->driver) o->driver = v->driver;
		if (!o->domain) o->domain = v->domain;
		if (!a->qemu_cmdline && !a->domain_xml) {
			a->qemu_cmdline = v->qemu_cmdline;
			a->domain_xml = v->domain_xml;
		}
		if (!a->nleases)
			for (size_t i = 0; i < v->nleases; i++)
				strv_push(&a->leases, &a->nleases, v->leases[i]);
	}
	bool qemu = !o->driver || strcmp(o->driver, "qemu") == 0;
	char err[400];
	if (src && !o->source_holder && a->nleases) {
		o->source_holder = hostconf_holder(src, a->leases, a->nleases, err, sizeof(err));
		/* (the QEMU driver falls back to the -iscsi initiator-name of
		 * the source's command line) */
		if (!o->source_holder && !qemu) {
			fprintf(stderr, "ringstor-migrate: %s: %s\n", hc->path, err);
			return -1;
		}
	}
	if (dst && !o->dest_holder && a->nleases) {
		o->dest_holder = hostconf_holder(dst, a->leases, a->nleases, err, sizeof(err));
		if (!o->dest_holder) {
			fprintf(stderr, "ringstor-migrate: %s: %s\n", hc->path, err);
			return -1;
		}
	}
	if (src && !o->probe_initiator)
		o->probe_initiator = src->initiator_name;
	if (dst && !o->probe_dest_initiator)
		o->probe_dest_initiator = dst->initiator_name;
	if (dst && !o->dest_addr) o->dest_addr = dst->address;
	if (src && !o->source_addr) o->source_addr = src->address;
	if (o->driver && strcmp(o->driver, "libvirt") == 0) {
		if (dst && !o->dest_uri) o->dest_uri = dst->libvirt_uri;
		if (src && !o->source_uri) o->source_uri = src->libvirt_uri;
	}
	if (qemu && v) {
		/* QMP sockets: the VM's own path, else HOST.qmp_dir/NAME.qmp */
		if (!o->qmp_source) {
			if (v->qmp)
				o->qmp_source = v->qmp;
			else if (src && src->qmp_dir && asprintf(qs, "%s/%s.qmp", src->qmp_dir, v->name) > 0)
				o->qmp_source = *qs;
		}
		if (!o->qmp_dest) {
			if (dst && dst->qmp_dir && asprintf(qd, "%s/%s.qmp", dst->qmp_dir, v->name) > 0)
				o->qmp_dest = *qd;
			else if (v->qmp && strcmp(o->source ? o->source : "", o->dest ? o->dest : "") != 0)
				o->qmp_dest = v->qmp; /* the same path on the other host */
		}
		if (v->pidfile) {
			*pid = xstrdup(v->pidfile);
		} else if (o->qmp_source && asprintf(pid, "%s.pid", o->qmp_source) < 0) {
			*pid = NULL;
		}
	}
	if (o->source && a->hc_loaded)
		o->source = config_rsh_host(hc, o->source);
	if (o->dest && a->hc_loaded)
		o->dest = config_rsh_host(hc, o->dest);
	return 0;
}

/* The running source QEMU's command line: /proc/PID/cmdline, PID from its
 * pid file, read on the source host through the remote shell. */
static char *fetch_cmdline(const struct migrate_opts *o, const char *pidfile, size_t *len, char *err, size_t errlen)
{
	if (!pidfile) {
		snprintf(err, errlen, "no QEMU command line: give --qemu-cmdline FILE, or qemu_cmdline/pidfile in the "
			 "VM's configuration");
		return NULL;
	}
	const char *words[] = { "sh", "-c", "p=$(cat \"$1\") && exec cat \"/proc/$p/cmdline\"", "sh", pidfile };
	char **argv = host_argv(o->rsh, o->source, (char *const *)words, 5);
	if (!argv) {
		snprintf(err, errlen, "cannot build a command from --rsh");
		return NULL;
	}
	struct run_job j;
	char *text = NULL;
	if (run_start(&j, argv) == 0)
		run_wait_all(&j, 1, 60);
	if (j.status == 0 && j.out.len) {
		text = j.out.buf;
		*len = j.out.len;
		j.out.buf = NULL;
	} else {
		snprintf(err, errlen, "cannot read the source QEMU's command line (pid file %s on %s): %.200s; give "
			 "--qemu-cmdline FILE", pidfile, o->source, j.err.buf && *j.err.buf ? j.err.buf : j.why);
	}
	run_job_free(&j);
	argv_free(argv);
	return text;
}

/* libvirt driver without a domain XML: the running domain's own, `virsh
 * dumpxml DOMAIN` run on the source host through the remote shell (the
 * counterpart of fetch_cmdline), so that its disks, memory and bridges
 * join the preflight.  NULL with err set. */
static char *fetch_domain_xml(const struct migrate_opts *o, const char *domain, size_t *len, char *err,
			      size_t errlen)
{
	const char *words[] = { "virsh", "dumpxml", domain };
	char **argv = host_argv(o->rsh, o->source, (char *const *)words, 3);
	if (!argv) {
		snprintf(err, errlen, "cannot build a command from --rsh");
		return NULL;
	}
	struct run_job j;
	char *text = NULL;
	if (run_start(&j, argv) == 0)
		run_wait_all(&j, 1, 60);
	if (j.status == 0 && j.out.len) {
		text = j.out.buf;
		*len = j.out.len;
		j.out.buf = NULL;
	} else {
		char line[300] = "";
		if (j.err.buf)
			sscanf(j.err.buf, "%299[^\n]", line);
		snprintf(err, errlen, "virsh dumpxml %s on %s: %s", domain, o->source, *line ? line : j.why);
	}
	run_job_free(&j);
	argv_free(argv);
	return text;
}

static int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = { .progress = true };
	struct args a = {0};
	char *cmdline = NULL, *dest_cmdline = NULL;
	const char *dest_cmdline_file = NULL;
	int rc = 2, c;
	char *qmp_src_buf = NULL, *qmp_dst_buf = NULL, *pid_buf = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hc:", migrate_opts_tbl, NULL)) != -1) {
		switch (c) {
		case 'c': a.config = optarg; break;
		case M_DEST_URI: o.dest_uri = optarg; break;
		case M_SOURCE_URI: o.source_uri = optarg; break;
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
		case M_LEASE: strv_push(&a.leases, &a.nleases, optarg); break;
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
		case M_DOMAIN_XML: a.domain_xml = optarg; break;
		case 'h': usage(stdout); rc = 0; goto out;
		default: usage(stderr); goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringstor-migrate: unexpected argument '%s'\n", argv[optind]);
		goto out;
	}
	if (config_load(a.config, &a.hc, &a.hc_loaded, true) < 0)
		goto out;
	if (o.vm_name) {
		/* --vm names a VM of the configuration; without one there, it
		 * is only a name: the libvirt/xen domain, or the journal's name
		 * next to --qemu-cmdline */
		bool virt_given = o.driver && strcmp(o.driver, "qemu") != 0;
		if (a.hc_loaded)
			a.cvm = hostconf_vm(&a.hc, o.vm_name);
		if (!a.cvm && !virt_given && !a.qemu_cmdline) {
			config_vm(&a.hc, a.hc_loaded, o.vm_name);
			goto out;
		}
	}
	if (rc_from_config(&o, &a, &qmp_src_buf, &qmp_dst_buf, &pid_buf) < 0)
		goto out;
	if (a.qemu_cmdline && a.domain_xml) {
		fprintf(stderr, "ringstor-migrate: give --qemu-cmdline or --domain-xml, not both\n");
		goto out;
	}
	if (a.domain_xml && (!o.driver || strcmp(o.driver, "qemu") == 0)) {
		fprintf(stderr, "ringstor-migrate: the QEMU driver starts the destination from the source's command "
			"line: give --qemu-cmdline FILE (--domain-xml is for the libvirt and xen drivers)\n");
		goto out;
	}
	if (load_vm(&a) < 0)
		goto out;
	if (a.cvm)
		config_vm_merge(&a.vm, &a.have_vm, a.cvm, &a.disks, &a.ndisks);
	char err[512];
	size_t len = 0, dlen = 0;
	const char *dom = o.domain ? o.domain : o.vm_name;
	if (!a.domain_xml && o.driver && strcmp(o.driver, "libvirt") == 0 && o.source && dom) {
		char *xml = fetch_domain_xml(&o, dom, &len, err, sizeof(err));
		struct vm_spec tmp = {0};
		if (!xml || domain_parse_xml(&tmp, xml, len, err, sizeof(err)) < 0) {
			/* not fatal here: the driver itself finds out whether the
			 * domain runs there, and journals why it does not */
			fprintf(stderr, "ringstor-migrate: warning: cannot read the domain's definition (%s); the "
				"preflight compares only the disks given\n", err);
		} else {
			for (size_t i = 0; i < tmp.ndisks; i++)
				if (!strv_has(a.disks, a.ndisks, tmp.disks[i]))
					strv_push(&a.disks, &a.ndisks, tmp.disks[i]);
			if (!a.have_vm) {
				a.vm = tmp;
				a.have_vm = true;
				tmp = (struct vm_spec){0};
			}
		}
		vm_spec_free(&tmp);
		free(xml);
		len = 0;
	}
	if (!a.qemu_cmdline && (!o.driver || strcmp(o.driver, "qemu") == 0) && o.source && o.qmp_source) {
		/* No command line given: the running QEMU's own, from its pid
		 * file on the source host. */
		cmdline = fetch_cmdline(&o, pid_buf, &len, err, sizeof(err));
		if (!cmdline) {
			fprintf(stderr, "ringstor-migrate: %s\n", err);
			goto out;
		}
		struct vm_spec tmp = {0};
		if (domain_parse_qemu_cmdline(&tmp, cmdline, len, err, sizeof(err)) == 0) {
			for (size_t i = 0; i < tmp.ndisks; i++)
				if (!strv_has(a.disks, a.ndisks, tmp.disks[i]))
					strv_push(&a.disks, &a.ndisks, tmp.disks[i]);
			if (!a.have_vm) {
				a.vm = tmp;
				a.have_vm = true;
				tmp = (struct vm_spec){0};
			}
		}
		vm_spec_free(&tmp);
	}
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
	o.leases = a.leases;
	o.nleases = a.nleases;
	o.vm = a.have_vm ? &a.vm : NULL;
	o.disks = a.disks;
	o.ndisks = a.ndisks;
	rc = migrate_run(&o, stdout, stderr);
out:
	free(qmp_src_buf);
	free(qmp_dst_buf);
	free(pid_buf);
	free(cmdline);
	free(dest_cmdline);
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
