/* config.h - the libconfig file: portals, settings, targets, LUNs, ACLs.
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

#include "../target/iscsi.h"
#include "../target/registry.h"

#define CONFIG_MAX_PORTALS 16

struct rs_config_lun {
	uint64_t lun;
	char path[4096];
	char bstype[16];
	struct bstore_params bs;      /* block_size, direct, readonly, create, size */
	char serial[33];              /* "" = derived */
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
	int line;                     /* where it was defined (messages) */
};

struct rs_config {
	char source[4096];            /* file name, for messages */
	int threads;                  /* 0 = online CPUs */
	char control_socket[108];     /* "" = default */
	char log_level[16];           /* "" = default */
	struct iscsi_portal portals[CONFIG_MAX_PORTALS];
	int nportals;
	struct iscsi_settings iscsi;
	struct rs_config_target *targets;
	int ntargets;
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
void config_free(struct rs_config *cfg);
/* Create targets/LUNs/ACLs in the registry; 0 or -1 with message. */
int config_apply(const struct rs_config *cfg, char *err, size_t errlen);

#endif
