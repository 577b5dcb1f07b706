/* reload.h - configuration reload (SIGHUP, systemctl reload) without
 * dropping the sessions that the change does not touch.
 *
 * A reload makes the running state match the file, like tgt-admin --update:
 *   1. the file is loaded and validated (config_load()); if that fails
 *      nothing changes and the error is logged as "file:line: message";
 *   2. the running state is captured as a struct rs_config (the registry's
 *      own dump re-read, the export table, the settings in effect);
 *   3. reload_diff(), a pure function of the two, lists the actions;
 *   4. reload_apply() performs them through the registry and nfs_export_*.
 *
 * What is live and what is not (documented in conf/ringstor.conf.example):
 *   - targets, LUNs, ACLs, CHAP accounts and bindings, NFS exports: live.
 *     Objects created at run time with ringstoradm that are not in the file
 *     are removed (the file is the truth).
 *   - additions never disturb anyone (a new LUN raises REPORTED LUNS DATA
 *     HAS CHANGED, SPC-4 table F.2, for the target's sessions);
 *   - ACL and CHAP changes only affect later logins (RFC 7143 6.3: a
 *     session is authorised once, at login); no session is dropped;
 *   - removing or changing storage under a logged-in initiator is refused:
 *     a target that has sessions is neither deleted nor replaced, and its
 *     LUNs are neither deleted nor replaced (path, type, block size, flags,
 *     serial) - the change is logged as deferred and the next reload after
 *     the initiators logged out applies it.  `ringstoradm --op delete
 *     --force` remains the explicit way to pull storage from under a session;
 *   - NFS exports are updated in place (nfs_export_update() keeps file
 *     handles valid) or added/removed (NFS is stateless: clients of a
 *     removed export get NFS3ERR_STALE);
 *   - daemon.log_level: live (unless --log-level was given);
 *   - threads, control socket, state directory, portals, iSCSI negotiation
 *     settings, the NFS gateway's enablement, listeners and portmapper: the
 *     log says "requires a restart".
 */
#ifndef RS_RELOAD_H
#define RS_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum reload_op {
	RL_RESTART,          /* a setting that cannot change live: text only */
	RL_LOG_LEVEL,        /* name = the new level */
	RL_ACCOUNT_ADD,      /* account */
	RL_ACCOUNT_PASSWORD, /* account */
	RL_BIND_DEL,         /* tid (0 = discovery), name = user, outgoing */
	RL_EXPORT_DEL,       /* name = path */
	RL_TARGET_DEL,       /* tid, name = iqn */
	RL_LUN_DEL,          /* tid, lun */
	RL_LUN_REPLACE,      /* tid, lun, new_lun (old_lun: to restore on failure) */
	RL_LUN_ADD,          /* tid, new_lun */
	RL_ACL_ADDR_DEL,     /* tid, name = spec (-I) */
	RL_ACL_NAME_DEL,     /* tid, name = initiator (-Q) */
	RL_ACL_ADDR_ADD,
	RL_ACL_NAME_ADD,
	RL_TARGET_ADD,       /* target (with its LUNs, ACLs and CHAP bindings) */
	RL_BIND_ADD,         /* tid (0 = discovery), name = user, outgoing */
	RL_ACCOUNT_DEL,      /* name = user */
	RL_EXPORT_UPDATE,    /* export */
	RL_EXPORT_ADD,       /* export */
};

/* One action.  The pointers point into the two configurations given to
 * reload_diff(): the plan is valid while both are. */
struct reload_action {
	enum reload_op op;
	int tid;
	uint64_t lun;
	const char *name;
	bool outgoing;
	const struct rs_config_account *account;
	const struct rs_config_target *target;
	const struct rs_config_lun *new_lun;
	const struct rs_config_lun *old_lun;
	const struct rs_config_export *export;
	int line;            /* line in the file (0: the object is not in the file) */
	char text[200];      /* RL_RESTART: what changed */
};

struct reload_plan {
	struct reload_action *v;
	int n, cap;
	bool oom;            /* an action could not be recorded: do not apply */
	const struct rs_config *running;  /* reload_diff()'s first argument */
};

/* reload_diff() flags: what the file does not decide because a command-line
 * option overrides it (the same holds after a restart). */
#define RELOAD_CLI_PORTALS   0x1u   /* --iscsi-portal */
#define RELOAD_CLI_NFS       0x2u   /* NFS flags (--nfs-*, --portmap...) */
#define RELOAD_CLI_LOG_LEVEL 0x4u   /* --log-level */
#define RELOAD_CLI_THREADS   0x8u   /* --threads */
#define RELOAD_CLI_CONTROL   0x10u  /* -C */
#define RELOAD_CLI_STATE_DIR 0x20u  /* --state-dir */

/* The actions that turn `running` into `file`, in the order they must be
 * applied (accounts before bindings, removals before additions that could
 * reuse a tid, a name, an export id or a CHAP direction).  running holds
 * the settings in effect and the objects that exist; file is what the
 * configuration file says (with --nfs-export lines merged in).  The NFS
 * exports are compared only when the gateway runs and stays enabled.
 * 0, or -1 (out of memory: plan->oom). */
int reload_diff(const struct rs_config *running, const struct rs_config *file, unsigned flags,
		struct reload_plan *plan);
void reload_plan_free(struct reload_plan *plan);
/* Short name of an op ("target-add", "lun-replace", ...): logs and tests. */
const char *reload_op_name(enum reload_op op);
/* One line describing an action, e.g. "target 2 iqn...: LUN 1 added". */
void reload_action_str(const struct reload_action *a, char *buf, size_t len);

/* The running state as a configuration: the registry's dump re-read
 * (targets, LUNs, ACLs, accounts, bindings) and the export table.  Settings
 * are left at their defaults (the caller copies those in effect).  0, or -1
 * with a message. */
int reload_snapshot(struct rs_config *out, char *err, size_t errlen);

struct reload_result {
	int applied;         /* actions that changed something */
	int deferred;        /* refused because the target has sessions */
	int failed;          /* errors (logged) */
	int restart;         /* settings that need a restart (logged) */
};

/* Perform plan (logging every action); keeps going after a failed action
 * so that one missing backing file does not block the rest (the next
 * reload retries it). */
void reload_apply(const struct reload_plan *plan, struct reload_result *res);

/* What main.c knows about how the daemon was started. */
struct reload_opts {
	const char *path;                 /* the configuration file (-c or default) */
	const struct rs_config *started;  /* as started: file values + command-line overrides */
	bool nfs_running;                 /* the NFS gateway runs */
	unsigned flags;                   /* RELOAD_CLI_* */
	const char *const *cli_exports;   /* --nfs-export lines: kept across reloads */
	int ncli_exports;
};

/* The whole reload: load, snapshot, diff, apply, log "reload: N changes ...".
 * 0 with res filled (also when nothing changed), or -1 if the file did not
 * load (nothing changed; "file:line: message" in err and in the log). */
int reload_config(const struct reload_opts *o, struct reload_result *res, char *err,
		  size_t errlen);

#endif
