/* preflight.h - run `probe --json` on the source and the destination through
 * a remote-shell command and compare the results (compare.h). */
#ifndef RS_COMPANION_PREFLIGHT_H
#define RS_COMPANION_PREFLIGHT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "companion/domain.h"
#include "companion/probe.h"

#define PREFLIGHT_DEFAULT_RSH "ssh -o BatchMode=yes"
#define PREFLIGHT_DEFAULT_REMOTE_CMD "ringstor-migrate"
#define PREFLIGHT_LOCAL_HOST "local"

struct preflight_opts {
	const char *source, *dest;   /* host names; "local" runs the probe here */
	const char *rsh;             /* remote-shell command; HOST is appended, then the probe */
	const char *remote_cmd;      /* ringstor-migrate on the hosts */
	const char *self_exe;        /* this program, for "local" */
	const char *initiator_name;  /* passed on to the probes, may be NULL */
	const char *dest_initiator_name; /* the destination's probe's, if it differs (NULL: the same) */
	char *const *disks;
	size_t ndisks;
	char *const *dest_disks;     /* NULL, or ndisks paths/URLs the destination uses instead */
	const struct vm_spec *vm;    /* may be NULL */
	int timeout_s;
	bool json;
	/* The lease verdict, found by the caller (migrate_lease_check): it
	 * replaces compare's "lease check not available" when lease_reason
	 * is set.  lease_status is an enum check_status. */
	int lease_status;
	const char *lease_reason;
};

/* The argv that runs the probe on `host` (NULL-terminated, caller frees
 * with argv_free).  With an ssh-like rsh (first word's basename contains
 * "ssh") the remote command is passed as one shell-quoted string, since ssh
 * hands it to the remote shell; otherwise (e.g. `ip netns exec`) the
 * words are appended as they are.  NULL if rsh is malformed. */
char **preflight_argv(const struct preflight_opts *o, const char *host, bool is_dest);
void argv_free(char **argv);
/* POSIX shell single-quoting of one word (caller frees). */
char *shell_quote(const char *s);

/* Runs both probes (at the same time), and if a disk shows the same identity
 * but different content, the source's probe once more (compare.h), then
 * compares and prints the verdicts to out (text or JSON)
 * and diagnostics to err.  Returns the exit code: 0 nothing failed,
 * 1 a check failed, 2 a probe could not be run or understood. */
int preflight_run(const struct preflight_opts *o, FILE *out, FILE *err);
#endif
