/* config.h - the libconfig file: portals, settings, CHAP accounts, targets,
 * LUNs, ACLs, and the NFS gateway with its exports.
 *
 * Loading is two-step so that a bad file changes nothing: config_load() parses
 * and validates everything into struct rs_config (errors as "file:line:
 * message"), config_apply() then creates targets/LUNs through the registry.
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../nfsgw/exports.h"
#include "../nfsgw/nfsgw.h"
#include "../target/iscsi.h"
#include "../target/registry.h"

#define CONFIG_MAX_PORTALS 16
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/ringstor"

/* nfs.portmap: how the portmapper (program 100000) is provided.  The values
 * are those of struct nfsgw_settings.portmap. */
#define RS_NFS_PORTMAP_OFF     0   /* "off": none (libnfs ?nfsport=&mountport= URLs) */
#define RS_NFS_PORTMAP_AUTO    1   /* "auto": rpcbind if one answers, else built in */
#define RS_NFS_PORTMAP_RPCBIND 2   /* "rpcbind": always register with rpcbind */
#define RS_NFS_PORTMAP_BUILTIN 3   /* "builtin": always serve our own (nfsgw.c must
				    * learn this value: today it means rpcbind) */

/* accounts = ( { user = "..."; password = "..."; }, ... ) */
struct rs_config_account {
	char user[REG_CHAP_USER_MAX];
	char password[REG_CHAP_SECRET_MAX];
	int line;
};

/* incoming_users = [ ... ]; outgoing_user = "..."; (a target or discovery) */
struct rs_config_chap_bind {
	char (*in)[REG_CHAP_USER_MAX];   /* incoming_users */
	int nin;
	char out[REG_CHAP_USER_MAX];     /* outgoing_user, "" = none */
};

/* One entry of nfs.exports: a parsed exports(5) line. */
struct rs_config_export {
	char path[4096];                 /* as written (canonicalised when applied) */
	struct export_client *clients;   /* exports_parse_line() result, free() */
	int nclients;
	int line;
};

struct rs_config_lun {
	uint64_t lun;
	char path[4096];
	char bstype[16];
	struct bstore_params bs;      /* block_size, direct, readonly, create, size */
	char serial[33];              /* "" = derived */
	bool thin_provisioning;       /* SBC-3 4.7: UNMAP, WRITE SAME unmap, LBPME */
	bool removable;               /* RMB=1: START STOP eject/load, PREVENT ALLOW */
	int line;                     /* where it was defined (messages) */
};

struct rs_config_target {
	int tid;
	char iqn[REG_NAME_MAX];
	struct rs_config_lun *luns;
	int nluns;
	char (*addr_acls)[64];        /* -I specs */
	int naddr_acls;
	char (*name_acls)[REG_NAME_MAX]; /* -Q names */
	int nname_acls;
	struct rs_config_chap_bind chap;  /* incoming_users / outgoing_user */
	int line;                     /* where it was defined (messages) */
};

struct rs_config {
	char source[4096];            /* file name, for messages */
	int threads;                  /* 0 = online CPUs */
	char control_socket[108];     /* "" = default */
	char log_level[16];           /* "" = default */
	char prometheus[128];         /* daemon.prometheus "HOST:PORT"; "" = off */
	char state_dir[4096];         /* daemon.state_dir; "" = CONFIG_DEFAULT_STATE_DIR */
	struct iscsi_portal portals[CONFIG_MAX_PORTALS];
	int nportals;
	struct iscsi_settings iscsi;
	/* CHAP (RFC 7143 12.1.3) */
	struct rs_config_account *accounts;
	int naccounts;
	int nweak;                    /* passwords under REG_CHAP_SECRET_MIN (warned) */
	struct rs_config_chap_bind discovery;
	struct rs_config_target *targets;
	int ntargets;
	/* NFS gateway: settings (nfs.state_dir follows daemon.state_dir when
	 * that is set) and exports. */
	bool nfs_enabled;
	struct nfsgw_settings nfs;
	struct rs_config_export *exports;
	int nexports;
};

/* Parse "ADDR:PORT", "[v6]:PORT", "ADDR" (port 3260) into a portal (tpgt 1). */
int config_parse_portal(const char *s, struct iscsi_portal *p, char *err, size_t errlen);
/* Parse sizes like "1G", "512M", "4096", "10T". */
int config_parse_size(const char *s, uint64_t *out);

/* 0 on success; -1 with "file:line: message" in err. */
int config_load(const char *path, struct rs_config *cfg, char *err, size_t errlen);
/* Same from a string (tests); name is used in messages. */
int config_load_string(const char *text, const char *name, struct rs_config *cfg,
		       char *err, size_t errlen);
/* Same, for the registry's own dump (reg_dump_config()): the running state
 * as a struct rs_config for the reload diff.  Quiet: the warnings that the
 * file already gave (short CHAP passwords) are not repeated. */
int config_load_running(const char *text, struct rs_config *cfg, char *err, size_t errlen);
void config_free(struct rs_config *cfg);
/* Create accounts/targets/LUNs/ACLs in the registry and add the NFS exports
 * (only when nfs_enabled); all or nothing: 0, or -1 with a message.  Also
 * remembers cfg->nfs/nfs_enabled for config_dump_nfs() and
 * config_nfs_enabled(). */
int config_apply(const struct rs_config *cfg, char *err, size_t errlen);

/* The "nfs = { ... };" section of the running configuration (settings as
 * applied, exports as they are now), appended to reg_dump_config()'s output
 * by --op dump. */
void config_dump_nfs(FILE *out);
/* Was the NFS gateway enabled by the applied configuration? */
bool config_nfs_enabled(void);

/* An exports(5) line "PATH CLIENTS" from a path and a client list, escaping
 * blanks and specials of the path as \ooo (exports(5) octal escapes) so that
 * exports_parse_line() gives the path back unchanged.  0, or -1 if it does
 * not fit. */
int config_export_line(const char *path, const char *clients, char *buf, size_t len);

#endif
