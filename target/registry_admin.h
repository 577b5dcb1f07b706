/* registry_admin.h - control-plane additions to the registry (registry.c)
 * that registry.h does not declare yet: CHAP name/secret rules shared with the
 * config loader, online resize, dropping one session, and dumping the running
 * configuration as a config file.  (Meant to be folded into registry.h.)
 *
 * Same conventions as registry.h: every function takes the registry lock
 * itself; errors are -errno with a human message in err.
 */
#ifndef RS_REGISTRY_ADMIN_H
#define RS_REGISTRY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
 * config_load() accepts.  Privileged: the caller must keep it private. */
void reg_dump_config(FILE *out);

#endif
