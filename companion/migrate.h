/* migrate.h - `ringstor-migrate migrate` and `recover` (issue 5 item 4).
 *
 * The handover, with the QEMU driver:
 *
 *   preflight (preflight.h) must pass
 *   lease: acquire it for the source's identity, or verify the source holds it
 *   destination QEMU started paused (-S) with -incoming defer, its own QMP
 *     socket and its own iSCSI initiator name; migrate-incoming tcp:ADDR:PORT
 *   source: migrate, poll query-migrate (progress) until "completed": the
 *     source is stopped (postmigrate) with its images inactivated, the
 *     destination paused (-S) -- or, with --transfer-at pre-switchover
 *     (capability pause-before-switchover), until "pre-switchover": the
 *     source's vCPUs stopped and its disks flushed, no device state sent yet
 *   lease transfer to the destination's identity (epoch + 1) on the appliance
 *   (pre-switchover: migrate-continue and wait for "completed"); `cont` on
 *     the destination; `quit` on the source
 *
 * Every step is journaled (journal.h) before it happens.  On a failure
 * before the transfer the source is resumed (migrate_cancel, cont) and the
 * destination is stopped; after it, the destination is stopped first, the
 * lease handed back (epoch + 2) and then the source resumed: at every
 * instant at most one QEMU runs, and only the lease holder can write.
 *
 * The appliance is driven by running ringstoradm there through the same
 * remote shell (`RSH APPLIANCE ringstoradm --mode lease --op ...`), and a
 * QEMU on another host is reached by running `ringstor-migrate qmp-relay
 * SOCK` there: no new network surface.
 *
 * The libvirt and Xen drivers (--driver libvirt|xen) run `virsh migrate
 * --live --suspend` / `xl migrate -p` on the source instead: when the tool
 * returns the source's domain is gone and the destination's paused; the
 * lease moves, then `virsh resume` / `xl unpause` there.  A failed
 * transfer is undone by migrating the paused domain back (see
 * companion/README.md for the exact guarantee).
 */
#ifndef RS_COMPANION_MIGRATE_H
#define RS_COMPANION_MIGRATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "companion/domain.h"

#define MIGRATE_DEFAULT_JOURNAL_DIR "/var/lib/ringstor-migrate"
#define MIGRATE_DEFAULT_ADM "ringstoradm"
#define MIGRATE_DEFAULT_PORT 49152

struct migrate_opts {
	const char *driver;          /* "qemu" (default), "libvirt", "xen" */
	const char *vm_name;         /* --vm; libvirt/xen domain name */
	const char *source, *dest;   /* hosts; "local" = this host, no remote shell */
	const char *appliance;       /* host where ringstoradm runs (default "local") */
	const char *rsh, *remote_cmd, *self_exe;
	const char *adm;             /* ringstoradm command words (default "ringstoradm") */
	const char *qmp_source;      /* the running source's QMP socket (on the source host) */
	const char *qmp_dest;        /* the destination's QMP socket (default QMP_SOURCE.incoming) */
	const char *dest_pidfile;    /* default QMP_DEST.pid */
	const char *qemu_cmdline;    /* the source's QEMU command line (text; NULs or shell words) */
	size_t qemu_cmdline_len;
	const char *dest_qemu_cmdline; /* optional: a different command line for the destination */
	size_t dest_qemu_cmdline_len;
	const char *source_holder;   /* lease identity of the source (default: its -iscsi initiator-name) */
	const char *dest_holder;     /* lease identity of the destination (also its initiator-name) */
	char *const *leases;         /* "tid=1,lun=1" | "export-id=1,file=disk.img" ...: ringstoradm args */
	size_t nleases;
	const char *dest_addr;       /* the address the destination listens on and the source connects to */
	const char *source_addr;     /* the source's address (libvirt/xen: the default target of a migration back) */
	/* libvirt/xen: the domain (default vm_name), and the migration targets:
	 * libvirt URIs (default qemu+ssh://ADDR/system), xl hosts (default ADDR) */
	const char *domain, *dest_uri, *source_uri;
	int port;
	const char *journal_dir;
	const char *transfer_at;     /* "completed" (default) or "pre-switchover" */
	int timeout_s;               /* the migration proper (default 600) */
	bool progress;               /* print RAM progress to err */
	/* preflight */
	const struct vm_spec *vm;
	char *const *disks;
	size_t ndisks;
	const char *probe_initiator; /* initiator name the probes use */
	const char *probe_dest_initiator; /* the destination's probe's (NULL: probe_initiator) */
	int preflight_timeout_s;
};

/* Runs the migration; returns the exit code: 0 migrated; 1 not migrated
 * (preflight failed, or rolled back: the source runs and holds the lease);
 * 2 usage; 3 the rollback itself failed, or was refused because cont
 * (resume, unpause) had been sent to the destination and it may have run
 * and written (the source stays paused, the lease with the destination):
 * run `recover` (the message says what state things are in). */
int migrate_run(const struct migrate_opts *o, FILE *out, FILE *err);

/* Finishes or undoes the handover recorded in a journal (a file, or the
 * newest *.journal in a directory).  Exit codes as migrate_run, with 0 also
 * for "nothing to do". */
int recover_run(const char *journal, const char *self_exe, bool dry_run, FILE *out, FILE *err);

/* The preflight's lease check: reads every lease (`ringstoradm --mode lease
 * --op show --json` on the appliance through rsh) and returns an enum
 * check_status: PASS if each is free or held by holder, FAIL if one is
 * held by someone else or cannot be read; reason says which. */
int migrate_lease_check(const char *rsh, const char *appliance, const char *adm, char *const *leases, size_t n,
			const char *holder, char *reason, size_t len);

/* ---- pieces, exported for the unit tests ---- */

/* The destination's QEMU argv from the source's command line: drops -qmp,
 * -daemonize, -pidfile, -incoming, -S and the initiator-name of -iscsi, then
 * adds -qmp unix:QMP,server=on,wait=off -daemonize -pidfile PIDFILE
 * -incoming defer -S and, if initiator is not NULL, -iscsi
 * initiator-name=INITIATOR.  NULL-terminated (argv_free); NULL + err. */
char **qemu_dest_argv(const char *cmdline, size_t len, const char *qmp, const char *pidfile, const char *initiator,
		      char *err, size_t errlen);
/* Value of initiator-name in the command line's -iscsi option, or NULL (caller frees). */
char *qemu_cmdline_initiator(const char *cmdline, size_t len);
/* The QMP socket path of the command line's -qmp unix:PATH[,...], or NULL. */
char *qemu_cmdline_qmp_path(const char *cmdline, size_t len);

/* "tid=1,lun=1" -> --tid 1 --lun 1 appended to *v.  -1 if malformed. */
int lease_spec_args(const char *spec, char ***v, size_t *n);

struct lease_info {
	bool held;
	char holder[256];
	uint64_t epoch;
};
/* Parses `ringstoradm --mode lease --op show --json` output.  Accepts the
 * lease object itself, {"lease": {...}}, {"leases": [...]} or an array
 * (first element); holder null/"" or "held": false mean free. */
int lease_parse_show(const char *text, size_t len, struct lease_info *li, char *err, size_t errlen);

/* argv that runs words on host: "local" -> the words; otherwise the rsh's
 * words, HOST, then the words (ssh-like rsh: one shell-quoted string). */
char **host_argv(const char *rsh, const char *host, char *const *words, size_t n);
#endif
