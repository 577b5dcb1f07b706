/* config_ext.h - the parts of a loaded configuration that struct rs_config
 * (config.h) has no fields for yet: the CHAP settings (`accounts`, top-level
 * `discovery`, each target's `incoming_users`/`outgoing_user`) and each
 * LUN's `thin_provisioning` switch.
 *
 * Kept beside struct rs_config and looked up by its address until it is
 * folded into that struct: filled by config_load*(), applied by
 * config_apply(), released by config_free().
 */
#ifndef RS_CONFIG_EXT_H
#define RS_CONFIG_EXT_H

#include "../target/registry_admin.h"
#include "config.h"

struct rs_config_account {
	char user[REG_CHAP_USER_MAX];
	char password[REG_CHAP_SECRET_MAX];
	int line;
};

struct rs_config_chap_bind {
	char (*in)[REG_CHAP_USER_MAX];   /* incoming_users */
	int nin;
	char out[REG_CHAP_USER_MAX];     /* outgoing_user, "" = none */
};

struct rs_config_chap {
	struct rs_config_account *accounts;
	int naccounts;
	struct rs_config_chap_bind discovery;
	struct rs_config_chap_bind *targets;   /* parallel to cfg->targets[] */
	int ntargets;
	int nweak;                             /* passwords under 12 bytes (warned) */
	/* lun_thin[i][j]: thin_provisioning of cfg->targets[i].luns[j]
	 * (SBC-3 4.7: UNMAP, WRITE SAME unmap, LBPME); NULL = all false. */
	bool **lun_thin;
};

/* The extra settings of cfg; an empty set (never NULL) if it has none. */
const struct rs_config_chap *config_chap(const struct rs_config *cfg);
/* thin_provisioning of cfg->targets[ti].luns[li]. */
bool config_lun_thin(const struct rs_config *cfg, int ti, int li);

#endif
