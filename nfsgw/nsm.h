/* nsm.h - a minimal Network Status Monitor (X/Open XNFS chapter 11,
 * program 100024 version 1) for the NLM server.
 *
 * What a Linux client needs from the server side to lock without "nolock":
 * an NLM that answers (nlm.c) and a status monitor that takes the SM_NOTIFY
 * its statd sends after it rebooted, so that the locks it held are freed
 * (nlm_tab_free_host: FREE_ALL semantics).  Our own state number lives in
 * <state_dir>/nsm-state: odd while up, bumped at every start.  The clients
 * that took locks are remembered in <state_dir>/nsm-clients, so that after a
 * restart (or a crash) they get SM_NOTIFY from us and reclaim their locks
 * during the grace period; with no such client there is nothing to reclaim
 * and the grace period is skipped.
 *
 * The local-statd procedures (SM_STAT, SM_MON, SM_UNMON, SM_UNMON_ALL,
 * SM_SIMU_CRASH) are answered for completeness: we are nobody's local statd,
 * so MON is accepted and not kept (the NLM monitors its clients itself).
 */
#ifndef RS_NSM_H
#define RS_NSM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc.h"

#define NSM_PROG 100024
#define NSM_VERS 1

#define SM_NULL       0
#define SM_STAT       1
#define SM_MON        2
#define SM_UNMON      3
#define SM_UNMON_ALL  4
#define SM_SIMU_CRASH 5
#define SM_NOTIFY     6

#define SM_MAXSTRLEN 1024
#define NSM_MAX_CLIENTS 4096

extern const struct rpc_program nsm_program;

/* Read and bump the state number (odd = up), load the clients that held
 * locks before.  Returns the number of such clients, or -errno. */
int nsm_init(const char *state_dir);
/* Send SM_NOTIFY to the clients loaded by nsm_init() (callback thread),
 * then forget them.  Optional in the protocol; lets clients reclaim. */
void nsm_notify_previous(void);
void nsm_shutdown(void);
int32_t nsm_state(void);

/* A client took a lock: remember it (persisted from the callback thread). */
void nsm_monitor(const char *name, const struct sockaddr *addr);
/* A client is gone (SM_NOTIFY, FREE_ALL, broken from the CLI). */
void nsm_unmonitor(const char *name);
int nsm_monitored_count(void);

#endif
