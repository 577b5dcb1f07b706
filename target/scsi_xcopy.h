/* scsi_xcopy.h - EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4,
 * 6.22 in their LID1 forms; what VMware VAAI "XCOPY" and Linux's
 * copy-offload use).
 *
 * The copy manager understands one kind of target descriptor, the
 * Identification Descriptor target descriptor (type 0xE4, SPC-4 6.4.6.2) with
 * an NAA designator of an LU of this daemon (any target, any LUN: the copy
 * manager acts for the initiator inside the daemon), and one kind of segment
 * descriptor, block device to block device (type 0x02, SPC-4 6.4.5.5).  The
 * copy runs on the calling reactor: read a chunk from the source store, write
 * it to the destination, repeat; status per (I_T nexus, LIST IDENTIFIER) is
 * kept for RECEIVE COPY RESULTS.
 *
 * The limits below are what RECEIVE COPY RESULTS / OPERATING PARAMETERS
 * reports and what the Third-party Copy VPD page (0x8F, SPC-4 7.8.17) should
 * advertise; scsi_xcopy() enforces them.
 */
#ifndef RS_SCSI_XCOPY_H
#define RS_SCSI_XCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi.h"

#define OP_EXTENDED_COPY       0x83   /* service action 0x00: EXTENDED COPY (LID1) */
#define   XCOPY_SA_LID1        0x00
#define OP_RECEIVE_COPY_RESULTS 0x84
#define   RCR_SA_COPY_STATUS   0x00
#define   RCR_SA_OPERATING_PARAMS 0x03
#define   RCR_SA_FAILED_SEGMENT 0x04

/* Descriptor type codes we implement (SPC-4 table 106 / 111). */
#define XCOPY_SEG_B2B          0x02   /* block device -> block device */
#define XCOPY_TGT_ID           0xE4   /* Identification Descriptor target descriptor */

/* Limits (OPERATING PARAMETERS, SPC-4 6.22.4; VPD 0x8F). */
#define XCOPY_MAX_TARGET_DESC      16u     /* MAXIMUM TARGET DESCRIPTOR COUNT */
#define XCOPY_MAX_SEGMENT_DESC     64u     /* MAXIMUM SEGMENT DESCRIPTOR COUNT */
#define XCOPY_TGT_DESC_LEN         32u     /* every target descriptor is 32 bytes */
#define XCOPY_SEG_B2B_LEN          28u     /* block->block segment descriptor, bytes */
/* MAXIMUM DESCRIPTOR LIST LENGTH: target + segment descriptors, bytes. */
#define XCOPY_MAX_DESC_LIST_LEN \
	(XCOPY_MAX_TARGET_DESC * XCOPY_TGT_DESC_LEN + XCOPY_MAX_SEGMENT_DESC * XCOPY_SEG_B2B_LEN)
#define XCOPY_HDR_LEN              16u     /* parameter list header */
/* Largest EXTENDED COPY parameter list we accept (header + descriptors). */
#define XCOPY_MAX_PARAM_LEN        (XCOPY_HDR_LEN + XCOPY_MAX_DESC_LIST_LEN)
/* MAXIMUM SEGMENT LENGTH, bytes (one segment descriptor's copy). */
#define XCOPY_MAX_SEGMENT_LEN      (256u << 20)
#define XCOPY_MAX_SEGMENT_BLOCKS_512 (XCOPY_MAX_SEGMENT_LEN / 512u)
#define XCOPY_MAX_INLINE_DATA      0u      /* MAXIMUM INLINE DATA LENGTH */
#define XCOPY_HELD_DATA_LIMIT      0u
#define XCOPY_MAX_STREAM_XFER      0u      /* no stream devices */
#define XCOPY_TOTAL_CONCURRENT     64u     /* TOTAL CONCURRENT COPIES */
#define XCOPY_MAX_CONCURRENT       64u     /* MAXIMUM CONCURRENT COPIES */
#define XCOPY_DATA_SEG_GRAN_LOG2   0u      /* DATA SEGMENT GRANULARITY (log2 bytes) */
#define XCOPY_INLINE_GRAN_LOG2     0u
#define XCOPY_HELD_GRAN_LOG2       0u
/* Chunk moved per read/write pair. */
#define XCOPY_CHUNK_BYTES          (1u << 20)

/* EXTENDED COPY (LID1), opcode 0x83 service action 0. */
void scsi_xcopy(struct scsi_cmd *cmd);
/* RECEIVE COPY RESULTS, opcode 0x84 service actions 0, 3, 4. */
void scsi_receive_copy_results(struct scsi_cmd *cmd);

/* Implemented descriptor type codes, for the VPD page / OPERATING PARAMETERS. */
extern const uint8_t xcopy_impl_desc_codes[];
extern const size_t xcopy_nr_impl_desc_codes;

/* Which LUs may an EXTENDED COPY on cmd's I_T nexus use as copy source or
 * destination?  The copy manager finds CSCDs by NAA among all LUs of the
 * daemon, but it must not become a way around LUN masking / ACLs: the fabric,
 * which knows what the nexus may see, sets this hook once at startup (return
 * true if lu is accessible through cmd's I_T nexus).  NULL (default): only
 * cmd->lu itself, i.e. copies within the addressed LU. */
extern bool (*scsi_xcopy_access_hook)(const struct scsi_cmd *cmd, const struct scsi_lu *lu);

/* Forget every copy result recorded for a nexus (session closed).  Optional. */
void scsi_xcopy_forget_nexus(uint64_t nexus_id);

#endif
