/* scsi_internal.h - shared between the SCSI core's files (scsi.c: dispatch,
 * sense, LUs and UAs; scsi_spc.c: SPC-4 primary commands; scsi_sbc.c: SBC-3
 * block commands).  Not a public interface. */
#ifndef RS_SCSI_INTERNAL_H
#define RS_SCSI_INTERNAL_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi.h"

/* Operation codes we implement (SPC-4 / SBC-3 names). */
#define OP_TEST_UNIT_READY     0x00
#define OP_REQUEST_SENSE       0x03
#define OP_READ_6              0x08
#define OP_WRITE_6             0x0a
#define OP_INQUIRY             0x12
#define OP_MODE_SELECT_6       0x15
#define OP_MODE_SENSE_6        0x1a
#define OP_RESERVE_6           0x16
#define OP_RELEASE_6           0x17
#define OP_START_STOP_UNIT     0x1b
#define OP_PREVENT_ALLOW       0x1e
#define OP_READ_CAPACITY_10    0x25
#define OP_READ_10             0x28
#define OP_WRITE_10            0x2a
#define OP_WRITE_VERIFY_10     0x2e
#define OP_VERIFY_10           0x2f
#define OP_PRE_FETCH_10        0x34
#define OP_READ_DEFECT_DATA_10 0x37
#define OP_SYNC_CACHE_10       0x35
#define OP_WRITE_SAME_10       0x41
#define OP_UNMAP               0x42
#define OP_MODE_SELECT_10      0x55
#define OP_MODE_SENSE_10       0x5a
#define OP_PR_IN               0x5e
#define OP_PR_OUT              0x5f
#define OP_READ_16             0x88
#define OP_COMPARE_AND_WRITE   0x89
#define OP_ORWRITE_16          0x8b
#define OP_WRITE_16            0x8a
#define OP_WRITE_VERIFY_16     0x8e
#define OP_VERIFY_16           0x8f
#define OP_PRE_FETCH_16        0x90
#define OP_SYNC_CACHE_16       0x91
#define OP_WRITE_SAME_16       0x93
#define OP_SERVICE_ACTION_IN16 0x9e
#define   SAI_READ_CAPACITY_16 0x10
#define   SAI_GET_LBA_STATUS   0x12
#define OP_WRITE_ATOMIC_16     0x9c
#define OP_REPORT_LUNS         0xa0
#define OP_MAINTENANCE_IN      0xa3
#define   MI_REPORT_TARGET_PORT_GROUPS 0x0a
#define   MI_REPORT_SUPPORTED_OPCODES 0x0c
#define OP_READ_12             0xa8
#define OP_WRITE_12            0xaa
#define OP_WRITE_VERIFY_12     0xae
#define OP_VERIFY_12           0xaf
#define OP_READ_DEFECT_DATA_12 0xb7

/* Additional sense codes used in more than one file (SPC-4 annex D). */
#define ASC_NO_ADDITIONAL_SENSE      0x00
#define ASC_WRITE_ERROR              0x0c
#define ASC_UNRECOVERED_READ_ERROR   0x11
#define ASC_INVALID_FIELD_IN_IU      0x0e   /* ascq 0x03 */
#define ASC_PARAM_LIST_LENGTH_ERROR  0x1a
#define ASC_MISCOMPARE_DURING_VERIFY 0x1d
#define ASC_INVALID_OPCODE           0x20
#define ASC_LBA_OUT_OF_RANGE         0x21
#define ASC_INVALID_FIELD_IN_CDB     0x24
#define ASC_LU_NOT_SUPPORTED         0x25
#define ASC_INVALID_FIELD_IN_PARAM   0x26
#define ASC_WRITE_PROTECTED          0x27
#define ASC_SAVING_PARAMS_NOT_SUPP   0x39
#define ASC_MEDIUM_NOT_PRESENT       0x3a
#define ASC_MEDIUM_REMOVAL_PREVENTED 0x53   /* ascq 0x02 */
#define ASC_INTERNAL_TARGET_FAILURE  0x44

/* Largest transfer one command may ask for (advertised in the Block Limits
 * VPD page); bounds the per-command buffer we allocate. */
#define SCSI_MAX_XFER_BYTES (8u << 20)

/* Logical block provisioning limits (Block Limits VPD, SBC-3 6.6.3). */
#define SCSI_MAX_UNMAP_LBA_COUNT   0x100000u   /* blocks per UNMAP command */
#define SCSI_MAX_UNMAP_DESCRIPTORS 256u
/* As LIO does: 16-bit, so one WRITE SAME never spans more than 256 MiB. */
#define SCSI_MAX_WRITE_SAME_BLOCKS 0xffffu
/* MAXIMUM COMPARE AND WRITE LENGTH (Block Limits VPD byte 5, 8 bits). */
#define SCSI_MAX_CAW_BLOCKS 255u
/* MAXIMUM ATOMIC TRANSFER LENGTH, bytes (WRITE ATOMIC 16; its TRANSFER
 * LENGTH field is 16 bits, and one backend write covers it). */
#define SCSI_MAX_ATOMIC_BYTES (1u << 20)

/* The LU supports UNMAP / WRITE SAME with UNMAP (LBPME=1, LBPRZ=1): asked
 * for with the thin_provisioning LU parameter, and the store can discard.
 * Every backend that can discard also reads discarded ranges back as zeros:
 * hole punching on files, and on block devices blkdev_fallocate() implements
 * PUNCH_HOLE as a guaranteed zero-out (falling back to WRITE_ZEROES). */
static inline bool scsi_lu_thin(const struct scsi_lu *lu)
{
	return lu->thin && lu->bs && lu->bs->can_discard;
}

/* Write protected: read-only LU or store, or the control mode page's
 * software write protect (SPC-4 7.5.8 SWP). */
static inline bool scsi_lu_wp(const struct scsi_lu *lu)
{
	return lu->readonly || atomic_load(&lu->swp);
}

/* Range lock (scsi.c).  A command claims [lba, lba + n) of an LU in one of
 * three modes; EXCL conflicts with every overlapping claim, READ and WRITE
 * only with EXCL.  Claims are granted in arrival order among conflicting
 * ones (no starvation of COMPARE AND WRITE by a stream of writes). */
enum { SCSI_RL_NONE = 0, SCSI_RL_READ, SCSI_RL_WRITE, SCSI_RL_EXCL };
/* true: granted, go on.  false: queued; resume(cmd) runs later on cmd->r's
 * thread once granted.  A command holds at most one claim at a time; it is
 * dropped by scsi_rl_release() or, at the latest, by scsi_cmd_complete().
 * n == 0 claims nothing and returns true. */
bool scsi_rl_acquire(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba, uint64_t n,
		     int mode, void (*resume)(struct scsi_cmd *cmd));
void scsi_rl_release(struct scsi_cmd *cmd);
void scsi_rl_init(struct scsi_range_lock *rl);
void scsi_rl_destroy(struct scsi_range_lock *rl);

/* Descriptor of one supported command: drives dispatch and REPORT SUPPORTED
 * OPERATION CODES (SPC-4 6.35), so the two can never disagree. */
#define OPF_NO_LU 0x1   /* valid when the LUN has no LU (INQUIRY, REPORT LUNS, REQUEST SENSE) */
#define OPF_NO_UA 0x2   /* neither reports nor clears a unit attention (SAM-5 5.14) */

struct scsi_opdesc {
	uint8_t opcode;
	bool has_sa;
	uint16_t sa;
	uint8_t flags;
	uint8_t cdb_len;
	/* CDB USAGE DATA (SPC-4 6.35.3): byte 0 is the opcode, then a mask of
	 * the bits the device server looks at in each CDB byte. */
	uint8_t usage[16];
	void (*exec)(struct scsi_cmd *cmd);
};

extern const struct scsi_opdesc scsi_opdescs[];
extern const size_t scsi_nr_opdescs;

/* Command handlers. */
void spc_test_unit_ready(struct scsi_cmd *cmd);
void spc_request_sense(struct scsi_cmd *cmd);
void spc_inquiry(struct scsi_cmd *cmd);
void spc_mode_sense(struct scsi_cmd *cmd);
void spc_mode_select(struct scsi_cmd *cmd);
void spc_report_luns(struct scsi_cmd *cmd);
void spc_report_supported_opcodes(struct scsi_cmd *cmd);
void sbc_start_stop_unit(struct scsi_cmd *cmd);
void sbc_prevent_allow(struct scsi_cmd *cmd);
void sbc_read_capacity10(struct scsi_cmd *cmd);
void sbc_read_capacity16(struct scsi_cmd *cmd);
void sbc_read_write(struct scsi_cmd *cmd);
void sbc_verify(struct scsi_cmd *cmd);
void sbc_sync_cache(struct scsi_cmd *cmd);
void sbc_unmap(struct scsi_cmd *cmd);
void sbc_write_same(struct scsi_cmd *cmd);
void sbc_compare_and_write(struct scsi_cmd *cmd);
void sbc_orwrite(struct scsi_cmd *cmd);
void sbc_write_atomic(struct scsi_cmd *cmd);
void sbc_prefetch(struct scsi_cmd *cmd);
void sbc_get_lba_status(struct scsi_cmd *cmd);
void sbc_read_defect_data(struct scsi_cmd *cmd);
void spc_report_target_port_groups(struct scsi_cmd *cmd);

/* Finish the command: call the fabric's done() exactly once. */
void scsi_cmd_complete(struct scsi_cmd *cmd);
/* CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at
 * (byte, bit) of the CDB (bit < 0: no bit pointer), then complete. */
void scsi_fail_cdb(struct scsi_cmd *cmd, uint16_t byte, int bit);
/* Set sense then complete. */
void scsi_fail(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq);
/* Sense with the INFORMATION field (SPC-4 4.5.3, VALID=1). */
void scsi_set_sense_info(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq,
			 uint32_t info);
/* Take the oldest pending UA for nexus_id off the list: true if one was. */
bool scsi_lu_ua_pop(struct scsi_lu *lu, uint64_t nexus_id, uint8_t *asc, uint8_t *ascq);

/* Allocate a zeroed Data-In buffer of len bytes (owned by cmd).  NULL on ENOMEM
 * (the caller then fails the command). */
uint8_t *scsi_data_in_alloc(struct scsi_cmd *cmd, size_t len);
/* Data-In produced by an allocation-length command (SPC-4 4.2.5.6): `avail`
 * bytes were built, only `alloc_len` may be returned.  Sets data_in_len and
 * xfer_len, then completes with GOOD. */
void scsi_data_in_done(struct scsi_cmd *cmd, uint32_t avail, uint32_t alloc_len);

uint64_t scsi_nexus_id(const struct scsi_cmd *cmd);

/* Big-endian field access. */
static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

#endif
