/* scsi.c - the SCSI core's front door: command dispatch, sense data, logical
 * units and their unit attentions.
 *
 * Like LIO's target_core_transport.c, this file decides *whether* a command
 * may run (LU present?  unit attention pending?  opcode known?) and hands it
 * to the SPC-4 (scsi_spc.c) or SBC-3 (scsi_sbc.c) handler.  Every failure is
 * turned into fixed-format sense here, in one place.
 */
#include "scsi.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lease.h"
#include "../core/log.h"
#include "../core/stats.h"
#include "scsi_internal.h"
#include "scsi_pr.h"
#include "scsi_xcopy.h"

int (*scsi_report_luns_hook)(const struct scsi_cmd *cmd, uint64_t *luns, int max);
void (*scsi_lu_event_hook)(const struct scsi_cmd *cmd, uint8_t asc, uint8_t ascq);
int (*scsi_tpg_list_hook)(const struct scsi_cmd *cmd, uint16_t *tpg_ids, int max);

/* Every live LU, for scsi_lu_lookup_naa() (EXTENDED COPY). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scsi_lu *live_list;

/* An LU and its I/O statistics in one allocation: the LU's counters are
 * reached from cmd->lu without a lookup, and live exactly as long as the LU
 * (scsi_lu_create() is the only place LUs are made). */
struct scsi_lu_ext {
	struct scsi_lu lu;
	struct stats_obj stats;
};

struct stats_obj *scsi_lu_stats(const struct scsi_lu *lu)
{
	return &container_of(lu, struct scsi_lu_ext, lu)->stats;
}

/* At most this many UAs are kept per LU; SAM-5 5.14 lets a device server
 * drop the excess once it has run out of room (we keep the oldest). */
#define SCSI_MAX_UA_PER_LU 4096

/* ------------------------------------------------------------------------ */
/* Command table: dispatch + REPORT SUPPORTED OPERATION CODES                */
/* ------------------------------------------------------------------------ */

/* The reservation handlers (scsi_pr.c) are synchronous: complete after. */
static void exec_pr_in(struct scsi_cmd *cmd) { scsi_pr_in(cmd); scsi_cmd_complete(cmd); }
static void exec_pr_out(struct scsi_cmd *cmd) { scsi_pr_out_exec(cmd); }
static void exec_reserve6(struct scsi_cmd *cmd) { scsi_reserve6(cmd); scsi_cmd_complete(cmd); }
static void exec_release6(struct scsi_cmd *cmd) { scsi_release6(cmd); scsi_cmd_complete(cmd); }

/* CONTROL byte: we look at NACA (bit 2) only, to refuse it (SAM-5 5.2). */
#define CTL 0x04
/* READ/WRITE byte 1: RDPROTECT/WRPROTECT (7-5), DPO (4), FUA (3), FUA_NV (1). */
#define RWB1 0xfa

const struct scsi_opdesc scsi_opdescs[] = {
	{ OP_TEST_UNIT_READY, false, 0, 0, 6,
	  { OP_TEST_UNIT_READY, 0, 0, 0, 0, CTL }, spc_test_unit_ready },
	{ OP_REQUEST_SENSE, false, 0, OPF_NO_LU | OPF_NO_UA, 6,
	  { OP_REQUEST_SENSE, 0x01, 0, 0, 0xff, CTL }, spc_request_sense },
	{ OP_READ_6, false, 0, 0, 6,
	  { OP_READ_6, 0x1f, 0xff, 0xff, 0xff, CTL }, sbc_read_write },
	{ OP_WRITE_6, false, 0, 0, 6,
	  { OP_WRITE_6, 0x1f, 0xff, 0xff, 0xff, CTL }, sbc_read_write },
	{ OP_INQUIRY, false, 0, OPF_NO_LU | OPF_NO_UA, 6,
	  { OP_INQUIRY, 0x01, 0xff, 0xff, 0xff, CTL }, spc_inquiry },
	{ OP_MODE_SELECT_6, false, 0, 0, 6,
	  { OP_MODE_SELECT_6, 0x11, 0, 0, 0xff, CTL }, spc_mode_select },
	{ OP_RESERVE_6, false, 0, 0, 6,
	  { OP_RESERVE_6, 0x11, 0, 0, 0, CTL }, exec_reserve6 },
	{ OP_RELEASE_6, false, 0, 0, 6,
	  { OP_RELEASE_6, 0x11, 0, 0, 0, CTL }, exec_release6 },
	{ OP_MODE_SENSE_6, false, 0, 0, 6,
	  { OP_MODE_SENSE_6, 0x08, 0xff, 0xff, 0xff, CTL }, spc_mode_sense },
	{ OP_START_STOP_UNIT, false, 0, 0, 6,
	  { OP_START_STOP_UNIT, 0x01, 0, 0x0f, 0xf7, CTL }, sbc_start_stop_unit },
	{ OP_PREVENT_ALLOW, false, 0, 0, 6,
	  { OP_PREVENT_ALLOW, 0, 0, 0, 0x03, CTL }, sbc_prevent_allow },
	{ OP_READ_CAPACITY_10, false, 0, 0, 10,
	  { OP_READ_CAPACITY_10, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, CTL }, sbc_read_capacity10 },
	{ OP_READ_10, false, 0, 0, 10,
	  { OP_READ_10, RWB1, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, CTL }, sbc_read_write },
	{ OP_WRITE_10, false, 0, 0, 10,
	  { OP_WRITE_10, RWB1, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, CTL }, sbc_read_write },
	{ OP_WRITE_VERIFY_10, false, 0, 0, 10,
	  { OP_WRITE_VERIFY_10, 0xf2, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, CTL }, sbc_read_write },
	{ OP_VERIFY_10, false, 0, 0, 10,
	  { OP_VERIFY_10, 0xf6, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, CTL }, sbc_verify },
	{ OP_PRE_FETCH_10, false, 0, 0, 10,
	  { OP_PRE_FETCH_10, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, CTL }, sbc_prefetch },
	{ OP_SYNC_CACHE_10, false, 0, 0, 10,
	  { OP_SYNC_CACHE_10, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, CTL }, sbc_sync_cache },
	{ OP_READ_DEFECT_DATA_10, false, 0, 0, 10,
	  { OP_READ_DEFECT_DATA_10, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, CTL }, sbc_read_defect_data },
	{ OP_WRITE_SAME_10, false, 0, 0, 10,
	  { OP_WRITE_SAME_10, 0xfe, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, CTL }, sbc_write_same },
	{ OP_UNMAP, false, 0, 0, 10,
	  { OP_UNMAP, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, CTL }, sbc_unmap },
	{ OP_MODE_SELECT_10, false, 0, 0, 10,
	  { OP_MODE_SELECT_10, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, CTL }, spc_mode_select },
	{ OP_MODE_SENSE_10, false, 0, 0, 10,
	  { OP_MODE_SENSE_10, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, CTL }, spc_mode_sense },
	/* PERSISTENT RESERVE IN: READ KEYS, READ RESERVATION, REPORT
	 * CAPABILITIES, READ FULL STATUS (SPC-4 6.15). */
	{ OP_PR_IN, true, 0, 0, 10,
	  { OP_PR_IN, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL }, exec_pr_in },
	{ OP_PR_IN, true, 1, 0, 10,
	  { OP_PR_IN, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL }, exec_pr_in },
	{ OP_PR_IN, true, 2, 0, 10,
	  { OP_PR_IN, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL }, exec_pr_in },
	{ OP_PR_IN, true, 3, 0, 10,
	  { OP_PR_IN, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL }, exec_pr_in },
	/* PERSISTENT RESERVE OUT: REGISTER .. REGISTER AND MOVE (SPC-4 6.16). */
	{ OP_PR_OUT, true, 0, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 1, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 2, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 3, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 4, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 5, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 6, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	{ OP_PR_OUT, true, 7, 0, 10,
	  { OP_PR_OUT, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL }, exec_pr_out },
	/* EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4 / 6.22,
	 * LID1 forms): target/scsi_xcopy.c, asynchronous. */
	{ OP_EXTENDED_COPY, true, XCOPY_SA_LID1, 0, 16,
	  { OP_EXTENDED_COPY, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, scsi_xcopy },
	{ OP_RECEIVE_COPY_RESULTS, true, RCR_SA_COPY_STATUS, 0, 16,
	  { OP_RECEIVE_COPY_RESULTS, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, scsi_receive_copy_results },
	{ OP_RECEIVE_COPY_RESULTS, true, RCR_SA_OPERATING_PARAMS, 0, 16,
	  { OP_RECEIVE_COPY_RESULTS, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, scsi_receive_copy_results },
	{ OP_RECEIVE_COPY_RESULTS, true, RCR_SA_FAILED_SEGMENT, 0, 16,
	  { OP_RECEIVE_COPY_RESULTS, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, scsi_receive_copy_results },
	{ OP_READ_16, false, 0, 0, 16,
	  { OP_READ_16, RWB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_read_write },
	{ OP_COMPARE_AND_WRITE, false, 0, 0, 16,
	  { OP_COMPARE_AND_WRITE, RWB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0, 0, 0, 0xff, 0x3f, CTL }, sbc_compare_and_write },
	{ OP_WRITE_16, false, 0, 0, 16,
	  { OP_WRITE_16, RWB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_read_write },
	{ OP_ORWRITE_16, false, 0, 0, 16,
	  { OP_ORWRITE_16, RWB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x3f, CTL }, sbc_orwrite },
	{ OP_WRITE_VERIFY_16, false, 0, 0, 16,
	  { OP_WRITE_VERIFY_16, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_read_write },
	{ OP_VERIFY_16, false, 0, 0, 16,
	  { OP_VERIFY_16, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_verify },
	{ OP_PRE_FETCH_16, false, 0, 0, 16,
	  { OP_PRE_FETCH_16, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x3f, CTL }, sbc_prefetch },
	{ OP_SYNC_CACHE_16, false, 0, 0, 16,
	  { OP_SYNC_CACHE_16, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_sync_cache },
	{ OP_WRITE_SAME_16, false, 0, 0, 16,
	  { OP_WRITE_SAME_16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_write_same },
	{ OP_WRITE_ATOMIC_16, false, 0, 0, 16,
	  { OP_WRITE_ATOMIC_16, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0, 0, 0xff, 0xff, 0x3f, CTL }, sbc_write_atomic },
	{ OP_SERVICE_ACTION_IN16, true, SAI_READ_CAPACITY_16, 0, 16,
	  { OP_SERVICE_ACTION_IN16, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_read_capacity16 },
	{ OP_SERVICE_ACTION_IN16, true, SAI_GET_LBA_STATUS, 0, 16,
	  { OP_SERVICE_ACTION_IN16, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, CTL }, sbc_get_lba_status },
	{ OP_REPORT_LUNS, false, 0, OPF_NO_LU | OPF_NO_UA, 12,
	  { OP_REPORT_LUNS, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL }, spc_report_luns },
	{ OP_MAINTENANCE_IN, true, MI_REPORT_TARGET_PORT_GROUPS, 0, 12,
	  { OP_MAINTENANCE_IN, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  spc_report_target_port_groups },
	{ OP_MAINTENANCE_IN, true, MI_REPORT_SUPPORTED_OPCODES, 0, 12,
	  { OP_MAINTENANCE_IN, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  spc_report_supported_opcodes },
	{ OP_READ_12, false, 0, 0, 12,
	  { OP_READ_12, RWB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  sbc_read_write },
	{ OP_WRITE_12, false, 0, 0, 12,
	  { OP_WRITE_12, RWB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  sbc_read_write },
	{ OP_WRITE_VERIFY_12, false, 0, 0, 12,
	  { OP_WRITE_VERIFY_12, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  sbc_read_write },
	{ OP_VERIFY_12, false, 0, 0, 12,
	  { OP_VERIFY_12, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  sbc_verify },
	{ OP_READ_DEFECT_DATA_12, false, 0, 0, 12,
	  { OP_READ_DEFECT_DATA_12, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL },
	  sbc_read_defect_data },
};
const size_t scsi_nr_opdescs = sizeof(scsi_opdescs) / sizeof(scsi_opdescs[0]);

/* ------------------------------------------------------------------------ */
/* Sense data (SPC-4 4.5.3 fixed format)                                     */
/* ------------------------------------------------------------------------ */

unsigned scsi_build_sense(uint8_t *buf, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(buf, 0, 18);
	buf[0] = 0x70;          /* current error, fixed format */
	buf[2] = key & 0x0f;
	buf[7] = 10;            /* ADDITIONAL SENSE LENGTH: bytes 8..17 */
	buf[12] = asc;
	buf[13] = ascq;
	return 18;
}

void scsi_set_sense(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq)
{
	cmd->status = SAM_STAT_CHECK_CONDITION;
	cmd->sense_len = (uint8_t)scsi_build_sense(cmd->sense, key, asc, ascq);
}

void scsi_set_sense_field(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq,
			  bool cd, uint16_t byte, int bit)
{
	scsi_set_sense(cmd, key, asc, ascq);
	/* SENSE KEY SPECIFIC, field pointer format (SPC-4 4.5.2.4.2): SKSV,
	 * C/D (1: the error is in the CDB), BPV + BIT POINTER, FIELD POINTER. */
	cmd->sense[15] = 0x80 | (cd ? 0x40 : 0);
	if (bit >= 0 && bit <= 7)
		cmd->sense[15] |= 0x08 | (uint8_t)bit;
	put_be16(&cmd->sense[16], byte);
}

void scsi_set_sense_info(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq,
			 uint32_t info)
{
	scsi_set_sense(cmd, key, asc, ascq);
	cmd->sense[0] |= 0x80;  /* VALID: INFORMATION is meaningful */
	put_be32(&cmd->sense[3], info);
}

void scsi_set_errno_sense(struct scsi_cmd *cmd, int err, bool is_write)
{
	if (err > 0)
		err = -err;
	switch (err) {
	case -EIO:
		/* SBC-3 4.17: unrecovered medium errors. */
		if (is_write)
			scsi_set_sense(cmd, SK_MEDIUM_ERROR, ASC_WRITE_ERROR, 0x00);
		else
			scsi_set_sense(cmd, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR, 0x00);
		break;
	case -ENOSPC:
	case -EDQUOT:
		/* SBC-3 4.7.3.6: a thin provisioned LU out of backing space
		 * reports SPACE ALLOCATION FAILED WRITE PROTECT. */
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x07);
		break;
	case -EROFS:
	case -EPERM:
	case -EACCES:
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x00);
		break;
	case -EINVAL:
		/* The backend refused the range: the store shrank under us. */
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0x00);
		break;
	case -ENOMEM:
	case -EAGAIN:
		/* Transient: SAM-5 BUSY makes the initiator retry later. */
		cmd->status = SAM_STAT_BUSY;
		cmd->sense_len = 0;
		break;
	default:
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE, 0x00);
		break;
	}
}

/* ------------------------------------------------------------------------ */
/* Helpers shared by the command files                                       */
/* ------------------------------------------------------------------------ */

/* Statistics at completion (core/stats.h): class, bytes moved by a command
 * that succeeded, latency since scsi_cmd_execute(), and the SAM-5 status
 * (sense key for CHECK CONDITION, SPC-4 4.5.3 byte 2).  Must run before
 * done(): after it the fabric may reuse the command. */
static void stats_complete(struct scsi_cmd *cmd)
{
	uint64_t t0, lat = STATS_LAT_UNKNOWN, bytes = 0;
	int st = -1, sk = -1;

	if (!cmd->lu)
		return;
	if (stats_inflight_take(cmd, &t0))
		lat = stats_now_ns() - t0;
	switch (cmd->status) {
	case SAM_STAT_GOOD:
	case SAM_STAT_CONDITION_MET:
		bytes = cmd->data_in_len < cmd->expected_len ? cmd->data_in_len : cmd->expected_len;
		if (cmd->xfer_is_write)
			bytes += cmd->data_out_len;
		break;
	case SAM_STAT_CHECK_CONDITION:
		st = STATS_ST_CHECK_CONDITION;
		if (cmd->sense_len > 2)
			sk = cmd->sense[2] & 0x0f;
		break;
	case SAM_STAT_BUSY:
		st = STATS_ST_BUSY;
		break;
	case SAM_STAT_RESERVATION_CONFLICT:
		st = STATS_ST_RESERVATION_CONFLICT;
		break;
	case SAM_STAT_TASK_SET_FULL:
		st = STATS_ST_TASK_SET_FULL;
		break;
	default:
		st = STATS_ST_OTHER;
		break;
	}
	stats_record(scsi_lu_stats(cmd->lu), stats_scsi_class(cmd->cdb), bytes, lat, st, sk);
}

void scsi_cmd_complete(struct scsi_cmd *cmd)
{
	scsi_rl_release(cmd);
	stats_complete(cmd);
	cmd->done(cmd);
}

void scsi_fail(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq)
{
	scsi_set_sense(cmd, key, asc, ascq);
	scsi_cmd_complete(cmd);
}

void scsi_fail_cdb(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 0x00,
			     true, byte, bit);
	scsi_cmd_complete(cmd);
}

uint8_t *scsi_data_in_alloc(struct scsi_cmd *cmd, size_t len)
{
	uint8_t *p;

	if (cmd->data_in) {
		bstore_buf_free(cmd->data_in);
		cmd->data_in = NULL;
	}
	p = bstore_buf_alloc(len);
	if (!p)
		return NULL;
	memset(p, 0, len ? len : 1);
	cmd->data_in = p;
	return p;
}

void scsi_data_in_done(struct scsi_cmd *cmd, uint32_t avail, uint32_t alloc_len)
{
	uint32_t n = avail < alloc_len ? avail : alloc_len;

	cmd->data_in_len = n;
	/* For Data-In commands xfer_len is what the device server actually
	 * returns: SPC-4 4.2.5.6 forbids sending more than the allocation
	 * length, and sending less is an underflow the fabric reports. */
	cmd->xfer_len = n;
	cmd->xfer_is_write = false;
	cmd->status = SAM_STAT_GOOD;
	scsi_cmd_complete(cmd);
}

uint64_t scsi_nexus_id(const struct scsi_cmd *cmd)
{
	return cmd->nexus ? cmd->nexus->id : 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

/* Find the descriptor for cdb; *bad_sa is set when the opcode exists but
 * the service action does not. */
static const struct scsi_opdesc *find_opdesc(const uint8_t *cdb, bool *bad_sa)
{
	size_t i;

	*bad_sa = false;
	for (i = 0; i < scsi_nr_opdescs; i++) {
		const struct scsi_opdesc *d = &scsi_opdescs[i];
		if (d->opcode != cdb[0])
			continue;
		if (!d->has_sa || d->sa == (cdb[1] & 0x1f))
			return d;
		*bad_sa = true;
	}
	return NULL;
}

/* Does the opcode access the medium (or its capacity)?  Those fail while a
 * removable medium is ejected; INQUIRY, MODE SENSE/SELECT, REPORT LUNS,
 * REQUEST SENSE, reservations, START STOP UNIT, PREVENT ALLOW and the copy
 * manager's commands do not (SBC-3 4.x, MMC-6 4.x "medium not present"). */
static bool needs_medium(uint8_t op)
{
	switch (op) {
	case OP_TEST_UNIT_READY:
	case OP_READ_6: case OP_READ_10: case OP_READ_12: case OP_READ_16:
	case OP_WRITE_6: case OP_WRITE_10: case OP_WRITE_12: case OP_WRITE_16:
	case OP_WRITE_VERIFY_10: case OP_WRITE_VERIFY_12: case OP_WRITE_VERIFY_16:
	case OP_VERIFY_10: case OP_VERIFY_12: case OP_VERIFY_16:
	case OP_PRE_FETCH_10: case OP_PRE_FETCH_16:
	case OP_SYNC_CACHE_10: case OP_SYNC_CACHE_16:
	case OP_READ_CAPACITY_10: case OP_SERVICE_ACTION_IN16:
	case OP_WRITE_SAME_10: case OP_WRITE_SAME_16: case OP_UNMAP:
	case OP_COMPARE_AND_WRITE: case OP_ORWRITE_16: case OP_WRITE_ATOMIC_16:
	case OP_READ_DEFECT_DATA_10: case OP_READ_DEFECT_DATA_12:
		return true;
	default:
		return false;
	}
}

void scsi_cmd_execute(struct scsi_cmd *cmd)
{
	const struct scsi_opdesc *d;
	bool bad_sa;
	uint8_t asc, ascq;

	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
	cmd->data_in_len = 0;
	cmd->xfer_len = 0;
	cmd->xfer_is_write = false;
	cmd->stage = 0;
	cmd->lba = 0;
	cmd->nr_blocks = 0;
	cmd->fua = false;
	cmd->rl.held = false;
	cmd->rl.queued = false;
	cmd->rl.lock = NULL;

	/* Statistics: one clock read now, one at completion (vDSO). */
	if (cmd->lu) {
		stats_record_start(scsi_lu_stats(cmd->lu));
		stats_inflight_put(cmd, stats_now_ns());
	}

	d = find_opdesc(cmd->cdb, &bad_sa);

	/* SPC-4 4.x / SAM-5 5.9.5: a LUN without a logical unit answers only
	 * INQUIRY, REPORT LUNS and REQUEST SENSE. */
	if (!cmd->lu && !(d && (d->flags & OPF_NO_LU))) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_LU_NOT_SUPPORTED, 0x00);
		return;
	}

	/* SAM-5 5.14: a pending unit attention terminates any command except
	 * INQUIRY, REPORT LUNS and REQUEST SENSE, and is cleared by doing so.
	 * This comes before opcode validation, as in LIO and SPC-4 5.x. */
	if (cmd->lu && !(d && (d->flags & OPF_NO_UA)) &&
	    scsi_lu_ua_pop(cmd->lu, scsi_nexus_id(cmd), &asc, &ascq)) {
		scsi_fail(cmd, SK_UNIT_ATTENTION, asc, ascq);
		return;
	}

	if (!d) {
		log_debug("scsi: LUN %llu: unsupported CDB %02x/%02x",
			  (unsigned long long)cmd->lun, cmd->cdb[0], cmd->cdb[1]);
		if (bad_sa)
			scsi_fail_cdb(cmd, 1, 4);
		else
			scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0x00);
		return;
	}

	/* SAM-5 5.2: NACA=1 asks for ACA, which we do not support (NormACA=0
	 * in INQUIRY), so the command is rejected. */
	if (cmd->cdb[d->cdb_len - 1] & 0x04) {
		scsi_fail_cdb(cmd, (uint16_t)(d->cdb_len - 1), 2);
		return;
	}
	/* Image leases (core/lease.h, issue 5): a write-class command from
	 * an initiator that does not hold the LU's lease ends in RESERVATION
	 * CONFLICT (SAM-5 5.3.3), before and beside the reservation check. */
	if (cmd->lu && lease_is_write_opcode(cmd->cdb) &&
	    !lease_scsi_write_allowed(cmd->lu->naa, cmd->nexus ? cmd->nexus->initiator_port : NULL)) {
		cmd->status = SAM_STAT_RESERVATION_CONFLICT;
		cmd->sense_len = 0;
		scsi_cmd_complete(cmd);
		return;
	}
	/* SPC-4 5.13.1 / SPC-2 5.5.1: a command that conflicts with a
	 * persistent or RESERVE(6) reservation ends in RESERVATION CONFLICT. */
	if (cmd->lu && !scsi_pr_check(cmd)) {
		scsi_cmd_complete(cmd);
		return;
	}
	/* SBC-3 4.x / SPC-4 6.37: with the removable medium ejected, every
	 * command that needs it reports NOT READY, MEDIUM NOT PRESENT. */
	if (cmd->lu && atomic_load(&cmd->lu->no_medium) && needs_medium(cmd->cdb[0])) {
		scsi_fail(cmd, SK_NOT_READY, ASC_MEDIUM_NOT_PRESENT, 0x00);
		return;
	}
	d->exec(cmd);
}

void scsi_cmd_release(struct scsi_cmd *cmd)
{
	if (cmd->data_in) {
		bstore_buf_free(cmd->data_in);
		cmd->data_in = NULL;
	}
	if (cmd->scratch) {
		bstore_buf_free(cmd->scratch);
		cmd->scratch = NULL;
	}
	cmd->data_in_len = 0;
}

/* ------------------------------------------------------------------------ */
/* Range lock: COMPARE AND WRITE / ORWRITE / WRITE ATOMIC atomicity          */
/* ------------------------------------------------------------------------ */

/* SBC-3 5.2 (COMPARE AND WRITE), 5.12 (ORWRITE) and SBC-4 4.29 (atomic
 * writes) require the read-compare-write / read-modify-write / write to be
 * indivisible with respect to every other command on the LU, and commands
 * for one LU arrive on several reactor threads.  Each medium-access command
 * claims its LBA range here before touching the store: plain reads and
 * writes share, the atomic commands are exclusive over their range.  A
 * claim that conflicts waits, in arrival order, and is resumed on its own
 * reactor through reactor_post() when the conflicting claims are gone. */

void scsi_rl_init(struct scsi_range_lock *rl)
{
	pthread_mutex_init(&rl->mu, NULL);
	rl->active = NULL;
	rl->wait_head = rl->wait_tail = NULL;
}

void scsi_rl_destroy(struct scsi_range_lock *rl)
{
	pthread_mutex_destroy(&rl->mu);
}

static bool rl_conflict(const struct scsi_rl_node *a, const struct scsi_rl_node *b)
{
	if (a->lba >= b->end || b->lba >= a->end)
		return false;
	return a->mode == SCSI_RL_EXCL || b->mode == SCSI_RL_EXCL;
}

/* Does n conflict with a granted claim, or with a waiting claim that came
 * before it (stop at n itself when it is in the wait list)? */
static bool rl_blocked(const struct scsi_range_lock *rl, const struct scsi_rl_node *n)
{
	const struct scsi_rl_node *o;

	for (o = rl->active; o; o = o->next)
		if (rl_conflict(o, n))
			return true;
	for (o = rl->wait_head; o && o != n; o = o->next)
		if (rl_conflict(o, n))
			return true;
	return false;
}

static void rl_link_active(struct scsi_range_lock *rl, struct scsi_rl_node *n)
{
	n->prev = NULL;
	n->next = rl->active;
	if (rl->active)
		rl->active->prev = n;
	rl->active = n;
	n->held = true;
	n->queued = false;
}

static void rl_resume_task(void *arg)
{
	struct scsi_cmd *cmd = arg;

	cmd->rl.resume(cmd);
}

static void rl_post_resume(struct scsi_cmd *cmd)
{
	struct reactor *r = cmd->r;
	int tries = 0;

	/* reactor_post() only fails on ENOMEM; the command must not be lost,
	 * so on our own thread run it here, elsewhere retry. */
	while (!r || reactor_post(r, rl_resume_task, cmd) < 0) {
		if (!r || reactor_current() == r || ++tries > 1000) {
			cmd->rl.resume(cmd);
			return;
		}
		sched_yield();
	}
}

bool scsi_rl_acquire(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba, uint64_t n,
		     int mode, void (*resume)(struct scsi_cmd *cmd))
{
	struct scsi_range_lock *rl = &lu->rl;
	struct scsi_rl_node *node = &cmd->rl;
	bool granted;

	if (node->held || node->queued)
		scsi_rl_release(cmd);
	if (n == 0)
		return true;
	node->lock = rl;
	node->lba = lba;
	node->end = lba + n < lba ? UINT64_MAX : lba + n;
	node->mode = (uint8_t)mode;
	node->resume = resume;
	node->held = node->queued = false;

	pthread_mutex_lock(&rl->mu);
	granted = !rl_blocked(rl, node);
	if (granted) {
		rl_link_active(rl, node);
	} else {
		node->queued = true;
		node->next = NULL;
		node->prev = rl->wait_tail;
		if (rl->wait_tail)
			rl->wait_tail->next = node;
		else
			rl->wait_head = node;
		rl->wait_tail = node;
	}
	pthread_mutex_unlock(&rl->mu);
	return granted;
}

void scsi_rl_release(struct scsi_cmd *cmd)
{
	struct scsi_rl_node *node = &cmd->rl, *w, *next, *grant = NULL;
	struct scsi_range_lock *rl = node->lock;

	if (!rl || !node->held)
		return;
	pthread_mutex_lock(&rl->mu);
	if (node->prev)
		node->prev->next = node->next;
	else
		rl->active = node->next;
	if (node->next)
		node->next->prev = node->prev;
	node->held = false;
	node->prev = node->next = NULL;

	/* Grant, in order, every waiter that no longer conflicts. */
	for (w = rl->wait_head; w; w = next) {
		next = w->next;
		if (rl_blocked(rl, w))
			continue;
		if (w->prev)
			w->prev->next = w->next;
		else
			rl->wait_head = w->next;
		if (w->next)
			w->next->prev = w->prev;
		else
			rl->wait_tail = w->prev;
		rl_link_active(rl, w);
		/* Resume outside the lock, through a separate link: the
		 * active-list links belong to the lock. */
		w->grant_next = grant;
		grant = w;
	}
	pthread_mutex_unlock(&rl->mu);
	node->lock = NULL;
	while (grant) {
		/* Read the link first: once posted the command may run, finish
		 * and claim again on its own thread. */
		w = grant;
		grant = w->grant_next;
		rl_post_resume(container_of(w, struct scsi_cmd, rl));
	}
}

/* ------------------------------------------------------------------------ */
/* Logical units                                                             */
/* ------------------------------------------------------------------------ */

/* FNV-1a, 64 bit: tiny, byte-oriented (so the NAA is the same on every
 * architecture) and stable forever, which is what persistence needs. */
static uint64_t fnv1a64(const char *s, uint64_t h)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Copy an identification string, ASCII-only, space padded to width
 * (SPC-4 4.4.1: left-aligned, graphic characters 0x20-0x7e). */
static void pad_ascii(char *dst, const char *src, size_t width)
{
	size_t i = 0;

	if (src)
		for (; src[i] && i < width; i++)
			dst[i] = (src[i] >= 0x20 && src[i] <= 0x7e) ? src[i] : '_';
	for (; i < width; i++)
		dst[i] = ' ';
	dst[width] = '\0';
}

/* The company ID in our NAA 6 designators.  0x525400 has the IEEE "local"
 * bit set, i.e. it is not a registered OUI, so it cannot clash with a real
 * vendor's designators (the same prefix QEMU uses for locally administered
 * MAC addresses).  A distribution with its own OUI can change it here. */
#define RS_NAA_COMPANY_ID 0x525400u

struct scsi_lu *scsi_lu_create(uint64_t lun, struct bstore *bs, const struct scsi_lu_params *p)
{
	struct scsi_lu_params def = { 0 };
	struct scsi_lu_ext *ext;
	struct scsi_lu *lu;
	char seedbuf[256];
	const char *seed;
	uint64_t h1, h2, hi;
	int i;

	if (!bs || !bs->block_size || bs->size < bs->block_size)
		return NULL;
	if (!p)
		p = &def;
	ext = calloc(1, sizeof(*ext));
	if (!ext)
		return NULL;
	stats_obj_init(&ext->stats);
	stats_set_lu_lookup(scsi_lu_stats);
	lu = &ext->lu;
	lu->lun = lun;
	lu->bs = bs;
	lu->block_size = bs->block_size;
	atomic_init(&lu->nr_blocks, bs->size / bs->block_size);
	pad_ascii(lu->vendor, p->vendor ? p->vendor : "RINGSTOR", 8);
	pad_ascii(lu->product, p->product ? p->product : "VIRTUAL-DISK", 16);
	pad_ascii(lu->revision, p->revision ? p->revision : "0001", 4);

	if (p->naa_seed && *p->naa_seed) {
		seed = p->naa_seed;
	} else {
		snprintf(seedbuf, sizeof(seedbuf), "ringstor/%llu/%s", (unsigned long long)lun,
			 bs->path ? bs->path : "");
		seed = seedbuf;
	}
	h1 = fnv1a64(seed, 0xcbf29ce484222325ull);
	h2 = fnv1a64(seed, h1 ^ 0x9e3779b97f4a7c15ull);
	h2 = fnv1a64("naa-extension", h2);
	/* NAA 6 IEEE Registered Extended (SPC-4 7.8.6.6.6): 4-bit NAA, 24-bit
	 * company ID, 36-bit vendor specific identifier, 64-bit extension. */
	hi = (uint64_t)6 << 60 | (uint64_t)RS_NAA_COMPANY_ID << 36 | (h1 & 0xfffffffffull);
	put_be64(&lu->naa[0], hi);
	put_be64(&lu->naa[8], h2);

	if (p->serial && *p->serial) {
		size_t n = 0;
		for (i = 0; p->serial[i] && n < sizeof(lu->serial) - 1; i++)
			if (p->serial[i] > 0x20 && p->serial[i] <= 0x7e)
				lu->serial[n++] = p->serial[i];
		lu->serial[n] = '\0';
	}
	if (!lu->serial[0])
		snprintf(lu->serial, sizeof(lu->serial), "%016llx", (unsigned long long)h1);

	atomic_init(&lu->write_cache, true);
	atomic_init(&lu->swp, false);
	lu->readonly = p->readonly || bs->readonly;
	lu->thin = p->thin_provisioning;
	lu->removable = p->removable;
	atomic_init(&lu->no_medium, false);
	atomic_init(&lu->refcnt, 1);
	pthread_mutex_init(&lu->lock, NULL);
	scsi_rl_init(&lu->rl);

	pthread_mutex_lock(&live_lock);
	lu->live_next = live_list;
	live_list = lu;
	pthread_mutex_unlock(&live_lock);
	return lu;
}

struct scsi_lu *scsi_lu_lookup_naa(const uint8_t naa[16])
{
	struct scsi_lu *lu;
	int ref;

	pthread_mutex_lock(&live_lock);
	for (lu = live_list; lu; lu = lu->live_next) {
		if (memcmp(lu->naa, naa, 16) != 0)
			continue;
		/* Take a reference unless the LU is already on its way out
		 * (refcnt reached 0 and scsi_lu_put() waits for live_lock). */
		ref = atomic_load(&lu->refcnt);
		while (ref > 0 && !atomic_compare_exchange_weak(&lu->refcnt, &ref, ref + 1))
			;
		if (ref > 0)
			break;
	}
	pthread_mutex_unlock(&live_lock);
	return lu;
}

void scsi_lu_get(struct scsi_lu *lu)
{
	atomic_fetch_add(&lu->refcnt, 1);
}

void scsi_lu_put(struct scsi_lu *lu)
{
	struct scsi_ua *ua, *next;

	if (!lu || atomic_fetch_sub(&lu->refcnt, 1) != 1)
		return;
	pthread_mutex_lock(&live_lock);
	{
		struct scsi_lu **pp;
		for (pp = &live_list; *pp; pp = &(*pp)->live_next) {
			if (*pp == lu) {
				*pp = lu->live_next;
				break;
			}
		}
	}
	pthread_mutex_unlock(&live_lock);
	for (ua = lu->ua_list; ua; ua = next) {
		next = ua->next;
		free(ua);
	}
	while (lu->prevent) {
		struct scsi_prevent *pv = lu->prevent;
		lu->prevent = pv->next;
		free(pv);
	}
	scsi_pr_free(lu);
	pthread_mutex_destroy(&lu->lock);
	scsi_rl_destroy(&lu->rl);
	bstore_close(lu->bs);
	stats_obj_fini(scsi_lu_stats(lu));
	free(container_of(lu, struct scsi_lu_ext, lu));
}

void scsi_lu_ua_add(struct scsi_lu *lu, uint64_t nexus_id, uint8_t asc, uint8_t ascq)
{
	struct scsi_ua **pp, *ua;
	int n = 0;

	pthread_mutex_lock(&lu->lock);
	for (pp = &lu->ua_list; *pp; pp = &(*pp)->next, n++) {
		/* The same condition twice tells the initiator nothing new. */
		if ((*pp)->nexus_id == nexus_id && (*pp)->asc == asc && (*pp)->ascq == ascq) {
			pthread_mutex_unlock(&lu->lock);
			return;
		}
	}
	if (n < SCSI_MAX_UA_PER_LU && (ua = calloc(1, sizeof(*ua)))) {
		ua->nexus_id = nexus_id;
		ua->asc = asc;
		ua->ascq = ascq;
		*pp = ua;   /* append: oldest first */
	}
	pthread_mutex_unlock(&lu->lock);
}

bool scsi_lu_ua_pop(struct scsi_lu *lu, uint64_t nexus_id, uint8_t *asc, uint8_t *ascq)
{
	struct scsi_ua **pp, *ua = NULL;

	/* Unlocked peek: the common case is an empty list. */
	if (!__atomic_load_n(&lu->ua_list, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&lu->lock);
	for (pp = &lu->ua_list; *pp; pp = &(*pp)->next) {
		if ((*pp)->nexus_id == nexus_id) {
			ua = *pp;
			*pp = ua->next;
			break;
		}
	}
	pthread_mutex_unlock(&lu->lock);
	if (!ua)
		return false;
	*asc = ua->asc;
	*ascq = ua->ascq;
	free(ua);
	return true;
}

void scsi_lu_ua_clear_nexus(struct scsi_lu *lu, uint64_t nexus_id)
{
	struct scsi_ua **pp, *ua;

	pthread_mutex_lock(&lu->lock);
	for (pp = &lu->ua_list; *pp;) {
		ua = *pp;
		if (ua->nexus_id == nexus_id) {
			*pp = ua->next;
			free(ua);
		} else {
			pp = &ua->next;
		}
	}
	pthread_mutex_unlock(&lu->lock);
}

void scsi_lu_prevent_clear(struct scsi_lu *lu, uint64_t nexus_id)
{
	struct scsi_prevent **pp, *pv;

	pthread_mutex_lock(&lu->lock);
	for (pp = &lu->prevent; (pv = *pp);) {
		if (nexus_id == SCSI_NEXUS_ALL || pv->nexus_id == nexus_id) {
			*pp = pv->next;
			free(pv);
		} else {
			pp = &pv->next;
		}
	}
	lu->removal_prevented = lu->prevent != NULL;
	pthread_mutex_unlock(&lu->lock);
}

int scsi_lu_refresh_capacity(struct scsi_lu *lu)
{
	uint64_t old = atomic_load(&lu->nr_blocks), nb;
	int ret = 0;

	if (lu->bs->ops->refresh_size)
		ret = lu->bs->ops->refresh_size(lu->bs);
	if (ret < 0)
		return ret;
	nb = lu->bs->size / lu->block_size;
	if (nb == old)
		return 0;
	atomic_store(&lu->nr_blocks, nb);
	return 1;
}
