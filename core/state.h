/* state.h - the appliance's persistent identity under the state directory. */
#ifndef RS_STATE_H
#define RS_STATE_H

#include <stddef.h>

/* Read <state_dir>/appliance-id (32 hex digits), creating the directory and a
 * random id on first start.  The id makes LU identities (NAA designators,
 * serials) unique per appliance: two appliances with the same configuration
 * must not report the same LUN identity (SPC-4 7.8.6.6).  0 or -errno. */
int rs_appliance_id(const char *state_dir, char *out, size_t len);

#endif
