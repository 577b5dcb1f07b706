/* registry.h - the target/LUN/ACL/session registry shared by the iSCSI fabric,
 * the config loader and the control socket.
 *
 * Thread safety: every function takes the registry lock itself.  The data path
 * never holds it: a session keeps a reference to its target
 * (reg_target_put() drops it) and takes a LUN reference per command through
 * reg_target_lun_get(), which only read-locks the target's LUN table.
 * All errors are -errno with a human message in err (when err != NULL):
 * -EEXIST, -ENOENT, -EBUSY (target has sessions), -EINVAL (bad argument).
 */
#ifndef RS_REGISTRY_H
#define RS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "../backend/backend.h"
#include "scsi.h"

#define REG_NAME_MAX 224   /* iSCSI names are at most 223 bytes (RFC 7143 4.2.7.1) */

struct iscsi_target;        /* opaque outside registry.c */

/* A session as the registry shows it (I_T nexus information). */
struct reg_session_info {
	uint64_t nexus_id;
	uint16_t tsih;
	uint8_t isid[6];
	char initiator[REG_NAME_MAX];
	char alias[256];
	char peer_addr[64];     /* "ip:port" of the first connection */
	char params[512];       /* negotiated parameters, "Key=Value\n"... */
	/* Asked by the control thread to close the session (thread-safe; runs the
	 * close on the session's reactor).  May be NULL. */
	void (*kill)(void *ctx);
	void *kill_ctx;
};

struct reg_lun_spec {
	uint64_t lun;
	const char *path;       /* backing path ("" / NULL for null backend) */
	const char *bstype;     /* "file" (default; also block devices), "null" */
	struct bstore_params bs;
	struct scsi_lu_params lu;
};

int reg_init(void);
void reg_shutdown(void);      /* deletes everything; closes backing stores */

/* ---- control plane (tgtadm verbs) ---- */
int reg_target_new(int tid, const char *iqn, char *err, size_t errlen);
int reg_target_delete(int tid, bool force, char *err, size_t errlen);
int reg_lun_new(int tid, const struct reg_lun_spec *spec, char *err, size_t errlen);
int reg_lun_delete(int tid, uint64_t lun, char *err, size_t errlen);
/* -I: address ACL ("ALL", address, CIDR); -Q: initiator name ACL. */
int reg_bind_addr(int tid, const char *spec, char *err, size_t errlen);
int reg_unbind_addr(int tid, const char *spec, char *err, size_t errlen);
int reg_bind_initiator(int tid, const char *iqn, char *err, size_t errlen);
int reg_unbind_initiator(int tid, const char *iqn, char *err, size_t errlen);
/* Re-read the backing size of a LUN (online resize); UA 2A/09 to its nexuses. */
int reg_lun_refresh(int tid, uint64_t lun, char *err, size_t errlen);

/* tgtadm --op show layouts (text) or JSON; tid < 0 = all targets. */
void reg_show_targets(FILE *out, int tid, bool json);
void reg_show_sys(FILE *out, bool json);

/* ---- fabric side ---- */
/* Target by IQN with a reference, or NULL. */
struct iscsi_target *reg_target_get(const char *iqn);
void reg_target_put(struct iscsi_target *t);
const char *reg_target_name(const struct iscsi_target *t);
int reg_target_tid(const struct iscsi_target *t);
/* ACL (tgt semantics): admitted if the peer address matches a bound address
 * OR the initiator name matches a bound name; no ACL at all admits nobody. */
bool reg_target_permits(struct iscsi_target *t, const struct sockaddr *peer,
			const char *initiator);
/* LU with a reference (scsi_lu_put() to drop), or NULL. */
struct scsi_lu *reg_target_lun_get(struct iscsi_target *t, uint64_t lun);
/* Sorted LUN numbers; returns total count (may exceed max). */
int reg_target_luns(struct iscsi_target *t, uint64_t *luns, int max);
/* Call fn for every target the peer/initiator is permitted to see (SendTargets). */
void reg_foreach_permitted(const struct sockaddr *peer, const char *initiator,
			   void (*fn)(const char *iqn, void *arg), void *arg);
/* Register/unregister a session for show and for UA fan-out. */
int reg_session_add(struct iscsi_target *t, const struct reg_session_info *info);
void reg_session_del(struct iscsi_target *t, uint64_t nexus_id);
/* Queue a UA on LU `lun` for every session nexus of the target except
 * except_nexus (0 = none).  lun == UINT64_MAX: every LU of the target. */
void reg_target_ua(struct iscsi_target *t, uint64_t lun, uint64_t except_nexus,
		   uint8_t asc, uint8_t ascq);
/* New daemon-unique nexus id (never 0). */
uint64_t reg_new_nexus_id(void);

/* ---- additions (control plane helpers) ---- */
/* iSCSI name format check (RFC 7143 4.2.7.2, loosely): "iqn.YYYY-MM.domain[:x]",
 * "eui.<16 hex>", "naa.<16|32 hex>"; lowercase; at most 223 bytes.
 * 0, or -EINVAL with a message. */
int reg_name_check(const char *name, char *err, size_t errlen);
/* Canonical backing store type for a tgtadm --bstype word ("rdwr", "aio",
 * "file", "block" -> "file"; "null" -> "null"); NULL if unknown. */
const char *reg_bstype_canonical(const char *bstype);
/* Does target tid exist? */
bool reg_target_exists(int tid);
/* Number of sessions (I_T nexuses) logged in to target tid, or -ENOENT. */
int reg_target_nsessions(int tid);
/* What `--mode sys --op show` reports besides the registry's own state. */
void reg_set_sys_info(const char *version, int nr_reactors,
		      const char *const *portals, int nportals);
/* --mode session|conn --op show: tid < 0 = all targets, sid 0 = all sessions;
 * with_params lists the negotiated parameters. Returns -ENOENT if tid/sid
 * were given and nothing matched, else 0. */
int reg_show_sessions(FILE *out, int tid, uint64_t sid, bool with_params, bool json);

/* ---- CHAP accounts (tgtadm --mode account; RFC 7143 12.1.3) ----
 * tid 0 addresses discovery sessions.  A target (or discovery) with at least
 * one incoming account bound requires CHAP; an outgoing account bound makes
 * mutual CHAP available.  Secrets are copied out, never logged or shown. */
int reg_account_new(const char *user, const char *password, char *err, size_t errlen);
int reg_account_delete(const char *user, char *err, size_t errlen);
/* Change an account's password in place, keeping its bindings (config
 * reload): 0 (with a warning in err if it is short, as reg_account_new()),
 * -ENOENT or -EINVAL. */
int reg_account_set_password(const char *user, const char *password, char *err,
			     size_t errlen);
int reg_account_bind(int tid, const char *user, bool outgoing, char *err, size_t errlen);
int reg_account_unbind(int tid, const char *user, bool outgoing, char *err, size_t errlen);
void reg_show_accounts(FILE *out, bool json);
/* t == NULL: discovery.  True if an incoming account is bound. */
bool reg_chap_required(struct iscsi_target *t);
/* Secret of incoming user `user` bound to t (NULL: discovery).  0 or -ENOENT. */
int reg_chap_incoming_secret(struct iscsi_target *t, const char *user, char *secret,
			     size_t secret_len);
/* The outgoing (mutual CHAP) account bound to t (NULL: discovery).  0 or -ENOENT. */
int reg_chap_outgoing(struct iscsi_target *t, char *user, size_t user_len, char *secret,
		      size_t secret_len);

/* ---- CHAP name/secret rules (shared with the config loader) ---- */
/* CHAP_N and secrets: at most 255 bytes (RFC 7143 12.1.3 / 6.1 text values). */
#define REG_CHAP_USER_MAX   256
#define REG_CHAP_SECRET_MAX 256
/* RFC 7143 9.2.1: secrets of at least 96 bits where IPsec is not used. */
#define REG_CHAP_SECRET_MIN 12

/* CHAP user name: 1..255 printable ASCII characters, no spaces.  0 or -EINVAL. */
int reg_chap_user_check(const char *user, char *err, size_t errlen);
/* CHAP secret: 1..255 bytes, no control characters.  -EINVAL if unusable;
 * 1 (with a "warning: ..." in err) if shorter than REG_CHAP_SECRET_MIN;
 * else 0. */
int reg_chap_secret_check(const char *secret, char *err, size_t errlen);

/* ---- online resize, session kill, running configuration ---- */
/* Online resize of LUN `lun` of target tid to `size` bytes (a multiple of
 * the block size): ftruncate() a regular file, set a null LU's size; block
 * devices are refused (their size is re-read with reg_lun_refresh()).
 * Shrinking needs force.  Every nexus gets CAPACITY DATA HAS CHANGED. */
int reg_lun_resize(int tid, uint64_t lun, uint64_t size, bool force, char *err, size_t errlen);

/* Close session (I_T nexus) sid of target tid through its kill hook.
 * cid < 0: any connection; a session has one connection, shown as 0. */
int reg_session_delete(int tid, uint64_t sid, int cid, char *err, size_t errlen);

/* Write the running configuration (portals, accounts WITH secrets,
 * discovery bindings, targets, LUNs, ACLs) as a config file that
 * config_load() accepts.  Privileged: the caller must keep it private.
 * (The nfs section is appended by config_dump_nfs(), conf/config.h.) */
void reg_dump_config(FILE *out);

/* Per-appliance id mixed into every LU's NAA/serial seed (see core/state.h);
 * call before LUNs are created.  NULL or "" = none (tests). */
void reg_set_appliance_id(const char *id);

#endif
