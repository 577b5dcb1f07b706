/* scsi_pr.h - SCSI-3 persistent reservations (SPC-4 5.13, 6.15, 6.16) and
 * SPC-2 RESERVE(6)/RELEASE(6) for the SCSI core.
 *
 * The state lives in lu->pr (struct scsi_pr_state, private to scsi_pr.c),
 * allocated lazily and protected by its own mutex: commands for one LU arrive
 * from several reactor threads.  Everything here is synchronous: the command
 * handlers set status / sense / data_in / xfer_len and return; the caller
 * (the dispatcher) completes the command afterwards.
 *
 * I_T nexus identity: registrations are per I_T nexus (SPC-4 5.13, registering) and are
 * keyed by the initiator port name ("iqn...,i,0x<isid>", the iSCSI
 * TransportID format 01b string) plus the relative target port identifier,
 * so they survive session reinstatement and, with APTPL, a daemon restart.
 * The daemon-unique nexus id is remembered per registration only to address
 * unit attentions (scsi_lu_ua_add()).
 */
#ifndef RS_SCSI_PR_H
#define RS_SCSI_PR_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi.h"

/* Reservation check, to be called by the dispatcher before executing any
 * command addressed to an LU (after the unit attention check).  Returns
 * false if the command conflicts with a persistent reservation (SPC-4
 * 5.13.1 table "SPC commands that are allowed in the presence of various
 * reservations", SBC-3 4.17 table) or with an SPC-2 RESERVE(6) reservation;
 * cmd->status is then RESERVATION CONFLICT (no sense data) and the command
 * must be completed without running.  Cheap (one atomic load) when the LU
 * has no reservation. */
bool scsi_pr_check(struct scsi_cmd *cmd);

/* Command handlers (synchronous, do not call cmd->done). */
void scsi_pr_in(struct scsi_cmd *cmd);     /* 0x5E PERSISTENT RESERVE IN */
void scsi_pr_out(struct scsi_cmd *cmd);    /* 0x5F PERSISTENT RESERVE OUT */
void scsi_reserve6(struct scsi_cmd *cmd);  /* 0x16 RESERVE(6) */
void scsi_release6(struct scsi_cmd *cmd);  /* 0x17 RELEASE(6) */
/* PERSISTENT RESERVE OUT for the dispatcher: completes the command itself
 * (scsi_cmd_complete), after the APTPL state file is durable; the file is
 * written by a core/workpool.h thread, so the reactor never waits on fsync.
 * scsi_pr_out() above does the same synchronously. */
void scsi_pr_out_exec(struct scsi_cmd *cmd);

/* Fabric events. */
/* I_T nexus loss (session closed / reinstated): releases the nexus's
 * RESERVE(6) reservation (SPC-2 5.5.1); persistent registrations and
 * reservations are kept (SPC-4 5.13.1). */
void scsi_pr_nexus_lost(struct scsi_lu *lu, uint64_t nexus_id);
/* LOGICAL UNIT RESET / target reset: releases RESERVE(6) (SAM-5 LOGICAL UNIT RESET);
 * persistent reservations are unaffected. */
void scsi_pr_lun_reset(struct scsi_lu *lu);
/* Free lu->pr at LU destruction. */
void scsi_pr_free(struct scsi_lu *lu);

/* APTPL persistence (SPC-4 5.13.4).  The state of an LU that was saved with
 * APTPL=1 is kept in <dir>/pr/<naa hex>.pr.  scsi_pr_load() restores it
 * (call at LU creation; otherwise it happens on the LU's first command).
 * Returns 0 (also when there is nothing to restore or the file is corrupt,
 * which is logged and ignored) or -ENOMEM. */
int scsi_pr_load(struct scsi_lu *lu);
/* Default "/var/lib/ringstor".  Call before LUs are created. */
void scsi_pr_set_state_dir(const char *dir);

#endif
