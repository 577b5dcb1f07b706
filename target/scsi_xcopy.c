/* scsi_xcopy.c - EXTENDED COPY (LID1) and RECEIVE COPY RESULTS.
 *
 * SPC-4 6.4 (EXTENDED COPY, LID1 form as in SPC-3 6.3) and 6.22 (RECEIVE COPY
 * RESULTS, LID1 form as in SPC-3 6.18).  The daemon is its own copy manager:
 * every copy source and destination (CSCD) must be an LU of this daemon,
 * named by an Identification Descriptor target descriptor with its NAA
 * designator.  The copy itself is a read/write loop on the calling reactor,
 * one chunk in flight at a time, so it cannot starve the reactor and needs
 * no locking beyond the LU references it holds.
 *
 * Processing order (each step reports the first error it finds):
 *   1. parameter list header and lengths   -> ILLEGAL REQUEST (1A/00, 26/00)
 *   2. descriptor counts                   -> 26/06, 26/08
 *   3. descriptor type codes               -> 26/07, 26/09
 *   4. descriptor fields                   -> 26/00 with a field pointer
 *   5. LIST IDENTIFIER uniqueness          -> 00/16 OPERATION IN PROGRESS
 *   6. CSCD resolution and segment checks  -> COPY ABORTED (0D/02, 08/04, 00/00),
 *      26/0A, LUN masking (scsi_xcopy_access_hook), reservations of each
 *      CSCD as if the initiator read/wrote it -> RESERVATION CONFLICT
 *   7. the copy                            -> backend errors via scsi_set_errno_sense
 * Results of copies with LIST ID USAGE 00b are held per (I_T nexus, LIST
 * IDENTIFIER) in a small bounded table for RECEIVE COPY RESULTS.
 */
#include "scsi_xcopy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lease.h"
#include "../core/log.h"
#include "scsi_internal.h"
#include "scsi_pr.h"

/* Sense key / additional sense codes specific to third-party copy (SPC-4
 * table 48, annex D). */
#define SK_COPY_ABORTED                0x0a
#define ASC_OPERATION_IN_PROGRESS      0x00   /* ascq 0x16 */
#define ASC_UNREACHABLE_COPY_TARGET    0x08   /* ascq 0x04 */
#define ASC_COPY_TARGET_NOT_REACHABLE  0x0d   /* ascq 0x02 */
#define ASCQ_TOO_MANY_TARGET_DESC      0x06   /* with ASC 0x26 */
#define ASCQ_UNSUPP_TARGET_DESC_TYPE   0x07
#define ASCQ_TOO_MANY_SEGMENT_DESC     0x08
#define ASCQ_UNSUPP_SEGMENT_DESC_TYPE  0x09
#define ASCQ_UNEXPECTED_INEXACT_SEG    0x0a

/* LIST ID USAGE (SPC-4 table 104). */
#define LIST_ID_USAGE_HOLD      0u   /* hold results for RECEIVE COPY RESULTS */
#define LIST_ID_USAGE_RESERVED  1u
#define LIST_ID_USAGE_DISCARD   2u   /* no held data, LIST IDENTIFIER still unique */
#define LIST_ID_USAGE_NONE      3u   /* no held data, LIST IDENTIFIER not used */

/* COPY MANAGER STATUS (SPC-4 6.22.2, LID1). */
#define CM_STATUS_IN_PROGRESS   0x00
#define CM_STATUS_OK            0x01
#define CM_STATUS_ERRORS        0x02

bool (*scsi_xcopy_access_hook)(const struct scsi_cmd *cmd, const struct scsi_lu *lu);

const uint8_t xcopy_impl_desc_codes[] = { XCOPY_SEG_B2B, XCOPY_TGT_ID };
const size_t xcopy_nr_impl_desc_codes = sizeof(xcopy_impl_desc_codes);

/* ------------------------------------------------------------------------ */
/* Held copy results (shared by all reactors)                               */
/* ------------------------------------------------------------------------ */

#define XC_TABLE_SIZE (2 * XCOPY_MAX_CONCURRENT)

struct xc_result {
	bool used;
	bool in_progress;
	bool hold;                 /* LIST ID USAGE 00b: report through RCR */
	bool orphan;               /* nexus gone: drop when the copy ends */
	bool failed_details;       /* FAILED SEGMENT DETAILS not yet reported */
	uint8_t list_id;
	uint8_t cm_status;
	uint8_t cmd_status;        /* SAM status the EXTENDED COPY ended with */
	uint8_t sense_len;
	uint16_t segs_done;
	uint64_t nexus_id;
	uint64_t seq;              /* age, for eviction */
	uint64_t bytes;            /* transfer count */
	uint8_t sense[18];
};

static pthread_mutex_t xc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xc_result xc_table[XC_TABLE_SIZE];
static uint64_t xc_seq;
static unsigned xc_active;     /* copies in progress (all LIST ID USAGEs) */

enum xc_begin { XC_BEGIN_OK, XC_BEGIN_DUP, XC_BEGIN_BUSY };

static struct xc_result *xc_find_locked(uint64_t nexus_id, uint8_t list_id)
{
	for (size_t i = 0; i < XC_TABLE_SIZE; i++) {
		struct xc_result *e = &xc_table[i];
		if (e->used && !e->orphan && e->nexus_id == nexus_id && e->list_id == list_id)
			return e;
	}
	return NULL;
}

/* Register a copy that is starting.  *slot gets its table index, or -1 when
 * nothing needs tracking (LIST ID USAGE 11b). */
static enum xc_begin xc_begin(uint64_t nexus_id, uint8_t list_id, unsigned usage, int *slot)
{
	struct xc_result *e, *victim = NULL;
	enum xc_begin rc = XC_BEGIN_OK;

	*slot = -1;
	pthread_mutex_lock(&xc_lock);
	if (xc_active >= XCOPY_MAX_CONCURRENT) {
		rc = XC_BEGIN_BUSY;
		goto out;
	}
	if (usage != LIST_ID_USAGE_NONE) {
		/* SPC-4 6.4.3.2: a LIST IDENTIFIER must be unique among the
		 * copies in progress on this I_T nexus. */
		e = xc_find_locked(nexus_id, list_id);
		if (e && e->in_progress) {
			rc = XC_BEGIN_DUP;
			goto out;
		}
		if (e) {
			victim = e;            /* replaces the old held result */
		} else {
			for (size_t i = 0; i < XC_TABLE_SIZE; i++) {
				e = &xc_table[i];
				if (!e->used) {
					victim = e;
					break;
				}
				if (!e->in_progress && (!victim || e->seq < victim->seq))
					victim = e;
			}
		}
		if (!victim) {                 /* cannot happen: table > max concurrent */
			rc = XC_BEGIN_BUSY;
			goto out;
		}
		memset(victim, 0, sizeof(*victim));
		victim->used = true;
		victim->in_progress = true;
		victim->hold = usage == LIST_ID_USAGE_HOLD;
		victim->nexus_id = nexus_id;
		victim->list_id = list_id;
		victim->cm_status = CM_STATUS_IN_PROGRESS;
		victim->seq = ++xc_seq;
		*slot = (int)(victim - xc_table);
	}
	xc_active++;
out:
	pthread_mutex_unlock(&xc_lock);
	return rc;
}

static void xc_progress(int slot, uint16_t segs_done, uint64_t bytes)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&xc_lock);
	xc_table[slot].segs_done = segs_done;
	xc_table[slot].bytes = bytes;
	pthread_mutex_unlock(&xc_lock);
}

/* The copy ended.  keep=false: the command failed before any copying could
 * start for a reason reported as ILLEGAL REQUEST, so nothing is held. */
static void xc_end(int slot, bool keep, const struct scsi_cmd *cmd, uint16_t segs_done,
		   uint64_t bytes)
{
	pthread_mutex_lock(&xc_lock);
	if (xc_active)
		xc_active--;
	if (slot >= 0) {
		struct xc_result *e = &xc_table[slot];
		if (!keep || !e->hold || e->orphan) {
			e->used = false;
		} else {
			e->in_progress = false;
			e->segs_done = segs_done;
			e->bytes = bytes;
			e->cmd_status = cmd->status;
			e->seq = ++xc_seq;
			if (cmd->status == SAM_STAT_GOOD) {
				e->cm_status = CM_STATUS_OK;
			} else {
				e->cm_status = CM_STATUS_ERRORS;
				e->failed_details = true;
				e->sense_len = cmd->sense_len < sizeof(e->sense) ?
					       cmd->sense_len : (uint8_t)sizeof(e->sense);
				memcpy(e->sense, cmd->sense, e->sense_len);
			}
		}
	}
	pthread_mutex_unlock(&xc_lock);
}

void scsi_xcopy_forget_nexus(uint64_t nexus_id)
{
	pthread_mutex_lock(&xc_lock);
	for (size_t i = 0; i < XC_TABLE_SIZE; i++) {
		struct xc_result *e = &xc_table[i];
		if (!e->used || e->nexus_id != nexus_id)
			continue;
		if (e->in_progress)
			e->orphan = true;
		else
			e->used = false;
	}
	pthread_mutex_unlock(&xc_lock);
}

/* ------------------------------------------------------------------------ */
/* EXTENDED COPY                                                            */
/* ------------------------------------------------------------------------ */

struct xc_target {
	struct scsi_lu *lu;        /* referenced */
};

struct xc_segment {
	uint16_t src, dst;         /* target descriptor indexes */
	uint64_t src_off, dst_off; /* bytes */
	uint64_t len;              /* bytes */
};

struct xc_job {
	struct scsi_cmd *cmd;
	struct xc_target tgt[XCOPY_MAX_TARGET_DESC];
	unsigned ntgt;
	struct xc_segment seg[XCOPY_MAX_SEGMENT_DESC];
	unsigned nseg;

	unsigned cur;              /* segment being copied */
	uint64_t pos;              /* bytes of it done */
	uint64_t total;            /* bytes done overall */
	uint64_t chunk;            /* bytes in flight */
	bool backwards;            /* overlapping same-LU copy to a higher offset */
	int slot;                  /* xc_table index or -1 */
	/* Reservation check of a CSCD while resolving; during the copy, the
	 * holder of the chunk's range lock claim (scsi.c): a command holds one
	 * claim at a time, and the copy needs one per LU it touches. */
	struct scsi_cmd probe;
	uint8_t *buf;
	size_t buflen;
	struct bio bio;
};

/* ILLEGAL REQUEST with a field pointer into the parameter list. */
static void param_err(struct scsi_cmd *cmd, uint8_t asc, uint8_t ascq, uint32_t byte, int bit)
{
	scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, asc, ascq, false,
			     (uint16_t)(byte > 0xffff ? 0xffff : byte), bit);
}

/* COPY ABORTED (SPC-4 6.4.3.x): COMMAND-SPECIFIC INFORMATION carries the
 * number of the segment being processed, and the sense key specific field is
 * a segment pointer (SPC-4 4.5.2.4.6, SD=1: to the segment descriptor). */
static void copy_aborted(struct scsi_cmd *cmd, uint8_t asc, uint8_t ascq, unsigned seg,
			 uint32_t seg_byte)
{
	scsi_set_sense(cmd, SK_COPY_ABORTED, asc, ascq);
	put_be32(&cmd->sense[8], seg);
	cmd->sense[15] = 0x80 | 0x20;
	put_be16(&cmd->sense[16], (uint16_t)(seg_byte > 0xffff ? 0xffff : seg_byte));
}

static void xc_put_targets(struct xc_job *j)
{
	for (unsigned i = 0; i < j->ntgt; i++) {
		if (j->tgt[i].lu)
			scsi_lu_put(j->tgt[i].lu);
		j->tgt[i].lu = NULL;
	}
}

/* End the command: release everything, record the result, complete. */
static void xc_finish(struct xc_job *j, bool keep)
{
	struct scsi_cmd *cmd = j->cmd;
	int slot = j->slot;
	uint16_t segs = (uint16_t)j->cur;
	uint64_t total = j->total;

	scsi_rl_release(&j->probe);
	xc_put_targets(j);
	if (j->buf)
		bstore_buf_free(j->buf);
	free(j);
	if (slot != -2)
		xc_end(slot, keep, cmd, segs, total);
	scsi_cmd_complete(cmd);
}

/* Validate the parameter list up to (not including) CSCD resolution; fills
 * j->ntgt/j->nseg counts.  false: sense is set. */
static bool xc_check_list(struct scsi_cmd *cmd, const uint8_t *p, uint32_t plen,
			  unsigned *usage_out)
{
	uint32_t tdll, sdll, inl, off, end, n;
	unsigned usage = (p[1] >> 3) & 3;

	tdll = get_be16(&p[2]);
	sdll = get_be32(&p[8]);
	inl = get_be32(&p[12]);

	/* SPC-4 6.4.3.1: the descriptor lists must fit the parameter list. */
	if ((uint64_t)XCOPY_HDR_LEN + tdll + sdll + inl > plen) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0);
		return false;
	}
	if ((uint64_t)tdll + sdll > XCOPY_MAX_DESC_LIST_LEN) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0);
		return false;
	}
	if (usage == LIST_ID_USAGE_RESERVED) {
		param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0, 1, 4);
		return false;
	}
	if (inl > XCOPY_MAX_INLINE_DATA) {
		param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0, 12, -1);
		return false;
	}
	/* Every target descriptor is 32 bytes (SPC-4 6.4.5.1). */
	if (tdll % XCOPY_TGT_DESC_LEN) {
		param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0, 2, -1);
		return false;
	}
	if (tdll / XCOPY_TGT_DESC_LEN > XCOPY_MAX_TARGET_DESC) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM,
			       ASCQ_TOO_MANY_TARGET_DESC);
		return false;
	}
	/* Segment descriptors have their own lengths: count them first. */
	off = XCOPY_HDR_LEN + tdll;
	end = off + sdll;
	for (n = 0; off < end; n++) {
		uint32_t dl;
		if (end - off < 4) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0);
			return false;
		}
		dl = 4u + get_be16(&p[off + 2]);
		if (dl > end - off) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0);
			return false;
		}
		off += dl;
	}
	if (n > XCOPY_MAX_SEGMENT_DESC) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM,
			       ASCQ_TOO_MANY_SEGMENT_DESC);
		return false;
	}

	/* Type codes. */
	for (off = XCOPY_HDR_LEN; off < XCOPY_HDR_LEN + tdll; off += XCOPY_TGT_DESC_LEN) {
		if (p[off] != XCOPY_TGT_ID) {
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, ASCQ_UNSUPP_TARGET_DESC_TYPE,
				  off, -1);
			return false;
		}
	}
	for (off = XCOPY_HDR_LEN + tdll; off < end; off += 4u + get_be16(&p[off + 2])) {
		if (p[off] != XCOPY_SEG_B2B) {
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, ASCQ_UNSUPP_SEGMENT_DESC_TYPE,
				  off, -1);
			return false;
		}
		/* SPC-4 6.4.6.5: DESCRIPTOR LENGTH of a block->block segment is 0018h. */
		if (get_be16(&p[off + 2]) != XCOPY_SEG_B2B_LEN - 4) {
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0, off + 2, -1);
			return false;
		}
	}

	/* Target descriptor fields (SPC-4 6.4.5.1, 6.4.5.2, 6.4.5.x block). */
	for (off = XCOPY_HDR_LEN; off < XCOPY_HDR_LEN + tdll; off += XCOPY_TGT_DESC_LEN) {
		const uint8_t *d = &p[off];
		/* Byte 1 bits 7-5 were LU ID TYPE and NUL in SPC-3; SPC-4
		 * (the version we claim in INQUIRY) made them obsolete, so
		 * they are ignored (as libiscsi's ValidTgtDescr expects of an
		 * SPC-4 device).  Only direct-access block devices are copy
		 * targets. */
		if ((d[1] & 0x1f) != 0) {
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0, off + 1, 4);
			return false;
		}
	}
	*usage_out = usage;
	return true;
}

/* The copy manager reads and writes on behalf of the initiator's I_T nexus,
 * so a CSCD's reservations apply as if it had sent READ(16) / WRITE(16)
 * itself (SPC-4 5.13.1 / SBC-3 4.17).  false: RESERVATION CONFLICT is set. */
static bool xc_pr_ok(struct xc_job *j, struct scsi_lu *lu, bool write)
{
	struct scsi_cmd *pc = &j->probe;

	/* Image leases (core/lease.h): the destination is written on behalf
	 * of this initiator. */
	if (write && !lease_scsi_write_allowed(lu->naa, j->cmd->nexus ? j->cmd->nexus->initiator_port
								       : NULL)) {
		j->cmd->status = SAM_STAT_RESERVATION_CONFLICT;
		j->cmd->sense_len = 0;
		return false;
	}
	memset(pc, 0, sizeof(*pc));
	pc->cdb[0] = write ? 0x8a : 0x88;
	pc->cdb_len = 16;
	pc->lu = lu;
	pc->lun = lu->lun;
	pc->nexus = j->cmd->nexus;
	pc->r = j->cmd->r;
	if (scsi_pr_check(pc))
		return true;
	j->cmd->status = SAM_STAT_RESERVATION_CONFLICT;
	j->cmd->sense_len = 0;
	return false;
}

/* Resolve the CSCDs and check the segments (step 6).  false: status set. */
static bool xc_resolve(struct xc_job *j, const uint8_t *p, uint32_t tdll, uint32_t sdll)
{
	struct scsi_cmd *cmd = j->cmd;
	uint32_t off;
	unsigned i;

	j->ntgt = tdll / XCOPY_TGT_DESC_LEN;
	for (i = 0; i < j->ntgt; i++) {
		const uint8_t *d = &p[XCOPY_HDR_LEN + i * XCOPY_TGT_DESC_LEN];
		uint8_t code_set = d[4] & 0x0f, assoc = (d[5] >> 4) & 3, type = d[5] & 0x0f;
		struct scsi_lu *lu;

		/* We can reach only our own LUs, named by the binary NAA
		 * designator with LU association that VPD page 0x83 reports. */
		if (code_set != 1 || assoc != 0 || type != 3 || d[7] != 16 ||
		    !(lu = scsi_lu_lookup_naa(&d[8]))) {
			copy_aborted(cmd, ASC_COPY_TARGET_NOT_REACHABLE, 0x02, 0,
				     XCOPY_HDR_LEN + i * XCOPY_TGT_DESC_LEN);
			return false;
		}
		j->tgt[i].lu = lu;
		/* LUN masking: an LU this nexus cannot see is unreachable; so
		 * is a removable medium that has been ejected. */
		if ((lu != cmd->lu &&
		     !(scsi_xcopy_access_hook && scsi_xcopy_access_hook(cmd, lu))) ||
		    atomic_load(&lu->no_medium)) {
			copy_aborted(cmd, ASC_COPY_TARGET_NOT_REACHABLE, 0x02, 0,
				     XCOPY_HDR_LEN + i * XCOPY_TGT_DESC_LEN);
			return false;
		}
		/* DISK BLOCK LENGTH (SPC-4 6.4.5.4) must match the device. */
		if (get_be24(&d[29]) != lu->block_size) {
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0,
				  XCOPY_HDR_LEN + i * XCOPY_TGT_DESC_LEN + 29, -1);
			return false;
		}
	}

	off = XCOPY_HDR_LEN + tdll;
	for (i = 0; off < XCOPY_HDR_LEN + tdll + sdll; i++, off += XCOPY_SEG_B2B_LEN) {
		const uint8_t *s = &p[off];
		struct xc_segment *sg = &j->seg[i];
		bool dc = s[1] & 0x02;
		uint16_t nb = get_be16(&s[10]);
		uint64_t slba = get_be64(&s[12]), dlba = get_be64(&s[20]);
		uint64_t bytes, scnt, dcnt, snb, dnb;
		struct scsi_lu *slu, *dlu;

		sg->src = get_be16(&s[4]);
		sg->dst = get_be16(&s[6]);
		/* SPC-4 6.4.3.x: an index naming no target descriptor makes
		 * the copy target unreachable. */
		if (sg->src >= j->ntgt) {
			copy_aborted(cmd, ASC_UNREACHABLE_COPY_TARGET, 0x04, i, 4);
			return false;
		}
		if (sg->dst >= j->ntgt) {
			copy_aborted(cmd, ASC_UNREACHABLE_COPY_TARGET, 0x04, i, 6);
			return false;
		}
		slu = j->tgt[sg->src].lu;
		dlu = j->tgt[sg->dst].lu;
		/* DC=0: NUMBER OF BLOCKS counts source blocks; DC=1: destination
		 * blocks (SPC-4 6.4.6.5). */
		bytes = (uint64_t)nb * (dc ? dlu->block_size : slu->block_size);
		if (bytes % slu->block_size || bytes % dlu->block_size) {
			/* CAT=0 or 1 alike: we never hold residue. */
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, ASCQ_UNEXPECTED_INEXACT_SEG,
				  off + 10, -1);
			return false;
		}
		if (bytes > XCOPY_MAX_SEGMENT_LEN) {
			param_err(cmd, ASC_INVALID_FIELD_IN_PARAM, 0, off + 10, -1);
			return false;
		}
		scnt = bytes / slu->block_size;
		dcnt = bytes / dlu->block_size;
		snb = atomic_load(&slu->nr_blocks);
		dnb = atomic_load(&dlu->nr_blocks);
		/* The copy target would reject the READ/WRITE with LBA OUT OF
		 * RANGE; the copy manager reports the copy as aborted. */
		if (slba > snb || scnt > snb - slba) {
			copy_aborted(cmd, ASC_NO_ADDITIONAL_SENSE, 0, i, 12);
			return false;
		}
		if (dlba > dnb || dcnt > dnb - dlba) {
			copy_aborted(cmd, ASC_NO_ADDITIONAL_SENSE, 0, i, 20);
			return false;
		}
		if (bytes && dlu->readonly) {
			scsi_set_errno_sense(cmd, -EROFS, true);
			return false;
		}
		if (!xc_pr_ok(j, slu, false) || (bytes && !xc_pr_ok(j, dlu, true)))
			return false;
		sg->src_off = slba * slu->block_size;
		sg->dst_off = dlba * dlu->block_size;
		sg->len = bytes;
	}
	j->nseg = i;
	return true;
}

static void xc_step(struct xc_job *j);

/* Same store, destination overlapping above the source: copy the segment
 * from its end so that no source block is overwritten before it was read. */
static void xc_set_direction(struct xc_job *j)
{
	const struct xc_segment *sg = &j->seg[j->cur];

	j->backwards = j->tgt[sg->src].lu->bs == j->tgt[sg->dst].lu->bs &&
		       sg->dst_off > sg->src_off && sg->dst_off < sg->src_off + sg->len;
}

static void xc_io_error(struct xc_job *j, int err, bool is_write)
{
	log_debug("xcopy: segment %u: %s error %d", j->cur, is_write ? "write" : "read", err);
	scsi_set_errno_sense(j->cmd, err, is_write);
	xc_finish(j, true);
}

static uint64_t xc_chunk_off(const struct xc_job *j)
{
	const struct xc_segment *sg = &j->seg[j->cur];
	return j->backwards ? sg->len - j->pos - j->chunk : j->pos;
}

/* Claim the LBA range of the current chunk on one CSCD in its LU's range
 * lock.  The copy manager's reads and writes are READ/WRITE commands sent
 * on the initiator's behalf, so COMPARE AND WRITE, ORWRITE and WRITE ATOMIC
 * must be atomic with respect to them too (SBC-3 5.2, SBC-4 4.29): the
 * source chunk is read under a shared read claim, the destination chunk
 * written under a write claim.  One claim at a time (released before the
 * next is taken), so two copies in opposite directions cannot deadlock.
 * false: queued; resume runs on the reactor once granted. */
static bool xc_claim(struct xc_job *j, struct scsi_lu *lu, uint64_t off, int mode,
		     void (*resume)(struct scsi_cmd *))
{
	uint64_t lba = off / lu->block_size;
	uint64_t end = (off + j->chunk + lu->block_size - 1) / lu->block_size;

	scsi_rl_release(&j->probe);
	return scsi_rl_acquire(&j->probe, lu, lba, end - lba, mode, resume);
}

static void xc_write_done(struct bio *bio, int err)
{
	struct xc_job *j = bio->priv;

	scsi_rl_release(&j->probe);
	if (err) {
		xc_io_error(j, err, true);
		return;
	}
	j->pos += j->chunk;
	j->total += j->chunk;
	xc_progress(j->slot, (uint16_t)j->cur, j->total);
	xc_step(j);
}

static void xc_submit_write(struct xc_job *j)
{
	const struct xc_segment *sg = &j->seg[j->cur];
	struct scsi_lu *dlu = j->tgt[sg->dst].lu;

	memset(&j->bio, 0, sizeof(j->bio));
	j->bio.opcode = BIO_WRITE;
	/* Caching mode page WCE=0 makes every write durable (SBC-3 6.5.4). */
	j->bio.flags = atomic_load(&dlu->write_cache) ? 0 : BIO_F_FUA;
	j->bio.offset = sg->dst_off + xc_chunk_off(j);
	j->bio.len = j->chunk;
	j->bio.buf = j->buf;
	j->bio.done = xc_write_done;
	j->bio.priv = j;
	bstore_submit(dlu->bs, j->cmd->r, &j->bio);
}

static void xc_write_resume(struct scsi_cmd *probe)
{
	xc_submit_write(container_of(probe, struct xc_job, probe));
}

static void xc_read_done(struct bio *bio, int err)
{
	struct xc_job *j = bio->priv;
	const struct xc_segment *sg = &j->seg[j->cur];

	scsi_rl_release(&j->probe);
	if (err) {
		xc_io_error(j, err, false);
		return;
	}
	if (xc_claim(j, j->tgt[sg->dst].lu, sg->dst_off + xc_chunk_off(j), SCSI_RL_WRITE,
		     xc_write_resume))
		xc_submit_write(j);
}

static void xc_submit_read(struct xc_job *j)
{
	const struct xc_segment *sg = &j->seg[j->cur];

	memset(&j->bio, 0, sizeof(j->bio));
	j->bio.opcode = BIO_READ;
	j->bio.offset = sg->src_off + xc_chunk_off(j);
	j->bio.len = j->chunk;
	j->bio.buf = j->buf;
	j->bio.done = xc_read_done;
	j->bio.priv = j;
	bstore_submit(j->tgt[sg->src].lu->bs, j->cmd->r, &j->bio);
}

static void xc_read_resume(struct scsi_cmd *probe)
{
	xc_submit_read(container_of(probe, struct xc_job, probe));
}

/* Issue the next chunk, or finish. */
static void xc_step(struct xc_job *j)
{
	const struct xc_segment *sg;

	while (j->cur < j->nseg && j->pos >= j->seg[j->cur].len) {
		j->cur++;
		j->pos = 0;
		if (j->cur < j->nseg)
			xc_set_direction(j);
	}
	if (j->cur >= j->nseg) {
		j->cmd->status = SAM_STAT_GOOD;
		xc_finish(j, true);
		return;
	}
	sg = &j->seg[j->cur];
	j->chunk = sg->len - j->pos;
	if (j->chunk > j->buflen)
		j->chunk = j->buflen;
	if (xc_claim(j, j->tgt[sg->src].lu, sg->src_off + xc_chunk_off(j), SCSI_RL_READ,
		     xc_read_resume))
		xc_submit_read(j);
}

void scsi_xcopy(struct scsi_cmd *cmd)
{
	uint32_t plen = get_be32(&cmd->cdb[10]);
	const uint8_t *p = cmd->data_out;
	struct xc_job *j;
	unsigned usage = 0;
	uint64_t max_seg = 0;
	enum xc_begin b;

	cmd->xfer_len = plen;
	cmd->xfer_is_write = true;

	/* SPC-4 6.4.1: PARAMETER LIST LENGTH zero is not an error. */
	if (plen == 0) {
		scsi_cmd_complete(cmd);
		return;
	}
	/* The copy runs on the command's reactor (backend.h contract). */
	if (!cmd->r) {
		scsi_fail(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE, 0);
		return;
	}
	if (plen < XCOPY_HDR_LEN || !p || cmd->data_out_len < plen) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0);
		return;
	}
	if (plen > XCOPY_MAX_PARAM_LEN + XCOPY_MAX_INLINE_DATA) {
		/* More than the largest list we advertise cannot be valid. */
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0);
		return;
	}
	if (!xc_check_list(cmd, p, plen, &usage)) {
		scsi_cmd_complete(cmd);
		return;
	}

	j = calloc(1, sizeof(*j));
	if (!j) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}
	j->cmd = cmd;
	j->slot = -2;                  /* not registered */

	b = xc_begin(scsi_nexus_id(cmd), p[0], usage, &j->slot);
	if (b != XC_BEGIN_OK) {
		j->slot = -2;
		if (b == XC_BEGIN_DUP)
			param_err(cmd, ASC_OPERATION_IN_PROGRESS, 0x16, 0, -1);
		else
			scsi_set_errno_sense(cmd, -EAGAIN, false);   /* BUSY */
		xc_finish(j, false);
		return;
	}

	if (!xc_resolve(j, p, get_be16(&p[2]), get_be32(&p[8]))) {
		/* COPY ABORTED and DATA PROTECT end a copy that began (held
		 * for RECEIVE COPY RESULTS); ILLEGAL REQUEST and RESERVATION
		 * CONFLICT refuse it before it began. */
		xc_finish(j, cmd->status == SAM_STAT_CHECK_CONDITION &&
			     (cmd->sense[2] & 0x0f) != SK_ILLEGAL_REQUEST);
		return;
	}

	for (unsigned i = 0; i < j->nseg; i++)
		if (j->seg[i].len > max_seg)
			max_seg = j->seg[i].len;
	if (max_seg == 0) {            /* nothing to move */
		j->cur = j->nseg;
		cmd->status = SAM_STAT_GOOD;
		xc_finish(j, true);
		return;
	}
	j->buflen = max_seg < XCOPY_CHUNK_BYTES ? (size_t)max_seg : XCOPY_CHUNK_BYTES;
	j->buf = bstore_buf_alloc(j->buflen);
	if (!j->buf) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		xc_finish(j, false);
		return;
	}
	/* From here on the probe only holds range lock claims, on the
	 * command's reactor. */
	memset(&j->probe, 0, sizeof(j->probe));
	j->probe.r = cmd->r;
	j->probe.nexus = cmd->nexus;
	j->cur = 0;
	j->pos = 0;
	xc_set_direction(j);
	xc_step(j);
}

/* ------------------------------------------------------------------------ */
/* RECEIVE COPY RESULTS                                                     */
/* ------------------------------------------------------------------------ */

/* OPERATING PARAMETERS (SPC-4 6.22.4, LID1 layout of SPC-3 6.18.4). */
static uint32_t rcr_op_params(uint8_t *b)
{
	uint32_t n = 44 + (uint32_t)xcopy_nr_impl_desc_codes;

	b[4] = 0x01;                                  /* SNLID: LIST ID USAGE 11b accepted */
	put_be16(&b[8], XCOPY_MAX_TARGET_DESC);
	put_be16(&b[10], XCOPY_MAX_SEGMENT_DESC);
	put_be32(&b[12], XCOPY_MAX_DESC_LIST_LEN);
	put_be32(&b[16], XCOPY_MAX_SEGMENT_LEN);
	put_be32(&b[20], XCOPY_MAX_INLINE_DATA);
	put_be32(&b[24], XCOPY_HELD_DATA_LIMIT);
	put_be32(&b[28], XCOPY_MAX_STREAM_XFER);
	put_be16(&b[34], XCOPY_TOTAL_CONCURRENT);
	b[36] = XCOPY_MAX_CONCURRENT;
	b[37] = XCOPY_DATA_SEG_GRAN_LOG2;
	b[38] = XCOPY_INLINE_GRAN_LOG2;
	b[39] = XCOPY_HELD_GRAN_LOG2;
	b[43] = (uint8_t)xcopy_nr_impl_desc_codes;
	memcpy(&b[44], xcopy_impl_desc_codes, xcopy_nr_impl_desc_codes);
	put_be32(&b[0], n - 4);                       /* AVAILABLE DATA */
	return n;
}

void scsi_receive_copy_results(struct scsi_cmd *cmd)
{
	uint8_t sa = cmd->cdb[1] & 0x1f, list_id = cmd->cdb[2];
	uint32_t alloc = get_be32(&cmd->cdb[10]), n = 0;
	struct xc_result *e;
	uint8_t *b;

	b = scsi_data_in_alloc(cmd, 64 + SCSI_SENSE_MAX);
	if (!b) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}

	switch (sa) {
	case RCR_SA_OPERATING_PARAMS:
		n = rcr_op_params(b);
		break;

	case RCR_SA_COPY_STATUS:
		pthread_mutex_lock(&xc_lock);
		e = xc_find_locked(scsi_nexus_id(cmd), list_id);
		if (!e || !e->hold) {
			pthread_mutex_unlock(&xc_lock);
			/* SPC-4 6.22.2: no copy with this LIST IDENTIFIER. */
			scsi_fail_cdb(cmd, 2, -1);
			return;
		}
		/* SPC-4 6.22.2 (LID1): HDD=0, COPY MANAGER STATUS,
		 * SEGMENTS PROCESSED, TRANSFER COUNT UNITS, TRANSFER COUNT. */
		b[4] = e->cm_status & 0x7f;
		put_be16(&b[5], e->segs_done);
		if (e->bytes <= UINT32_MAX) {
			b[7] = 0x00;                  /* bytes */
			put_be32(&b[8], (uint32_t)e->bytes);
		} else {
			b[7] = 0xf1;                  /* kibibytes */
			put_be32(&b[8], (uint32_t)(e->bytes >> 10));
		}
		pthread_mutex_unlock(&xc_lock);
		put_be32(&b[0], 8);
		n = 12;
		break;

	case RCR_SA_FAILED_SEGMENT:
		pthread_mutex_lock(&xc_lock);
		e = xc_find_locked(scsi_nexus_id(cmd), list_id);
		if (!e || !e->hold) {
			pthread_mutex_unlock(&xc_lock);
			scsi_fail_cdb(cmd, 2, -1);
			return;
		}
		if (e->in_progress || !e->failed_details) {
			/* SPC-4 6.22.5: still running, or nothing failed (or
			 * already reported): AVAILABLE DATA zero. */
			n = 4;
		} else {
			b[56] = e->cmd_status;        /* EXTENDED COPY COMMAND STATUS */
			put_be16(&b[58], e->sense_len);
			memcpy(&b[60], e->sense, e->sense_len);
			n = 60u + e->sense_len;
			put_be32(&b[0], n - 4);
			/* The details are discarded once reported. */
			e->failed_details = false;
		}
		pthread_mutex_unlock(&xc_lock);
		break;

	default:
		scsi_fail_cdb(cmd, 1, 4);
		return;
	}
	scsi_data_in_done(cmd, n, alloc);
}
