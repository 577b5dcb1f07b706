/* scsi_sbc.c - SBC-3 block commands: READ/WRITE 6/10/12/16, WRITE AND VERIFY,
 * VERIFY, SYNCHRONIZE CACHE, READ CAPACITY, START STOP UNIT, PREVENT ALLOW
 * MEDIUM REMOVAL, UNMAP, WRITE SAME, GET LBA STATUS, PRE-FETCH, READ DEFECT
 * DATA, and the atomic ones: COMPARE AND WRITE, ORWRITE, WRITE ATOMIC (16).
 *
 * A command that needs the medium becomes exactly one bio at a time (the one
 * embedded in struct scsi_cmd); its completion (sbc_bio_done) runs on the
 * reactor and finishes the command.  The backend never sees a CDB.  Before
 * its first medium access a command claims its LBA range in the LU's range
 * lock (scsi.c): shared for reads and writes, exclusive for the atomic
 * commands; the claim is dropped when the command completes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scsi_internal.h"

enum sbc_stage {
	SBC_READ = 1,       /* READ: data lands in data_in */
	SBC_WRITE,          /* WRITE / WRITE AND VERIFY */
	SBC_RMW_READ,       /* WRITE with a partial last block: read that block */
	SBC_VERIFY_READ,    /* VERIFY: medium read into scratch, maybe compared */
	SBC_FLUSH,          /* SYNCHRONIZE CACHE */
	SBC_UNMAP,          /* UNMAP: one descriptor at a time (index in nr_blocks) */
	SBC_WS_ZERO,        /* WRITE SAME: discard / zero the whole range */
	SBC_WS_PATTERN,     /* WRITE SAME: pattern written chunk by chunk */
	SBC_CAW_READ,       /* COMPARE AND WRITE: medium read into scratch */
	SBC_ORW_READ,       /* ORWRITE: medium read into scratch, OR, write */
};

/* Chunk in which WRITE SAME writes a non-zero pattern. */
#define WS_CHUNK_BYTES (1u << 20)

static void unmap_next(struct scsi_cmd *cmd);
static void rw_start(struct scsi_cmd *cmd);
static void verify_start(struct scsi_cmd *cmd);
static void ws_start(struct scsi_cmd *cmd);
static void sbc_write(struct scsi_cmd *cmd, void *buf, uint64_t bytes);
static void ws_next_chunk(struct scsi_cmd *cmd);
static void sbc_submit(struct scsi_cmd *cmd, enum bio_opcode op, unsigned flags,
		       uint64_t off, uint64_t len, void *buf, void *priv);
static void caw_compare(struct scsi_cmd *cmd);
static void orwrite_merge(struct scsi_cmd *cmd);

/* ------------------------------------------------------------------------ */

void sbc_start_stop_unit(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint8_t pc = cmd->cdb[4] >> 4;
	bool loej = cmd->cdb[4] & 0x02, start = cmd->cdb[4] & 0x01;
	bool prevented;

	/* SBC-3 5.25: a POWER CONDITION other than 0h makes the device server
	 * ignore START and LOEJ; power conditions have no effect here (the
	 * medium is always spinning).  IMMED changes nothing either: the
	 * command completes at once.  LOEJ=0: START alone neither loads nor
	 * ejects anything. */
	if (pc != 0 || !loej) {
		scsi_cmd_complete(cmd);
		return;
	}
	/* LOEJ=1 loads (START=1) or ejects (START=0) the medium, which a
	 * non-removable LU (RMB=0) cannot do. */
	if (!lu->removable) {
		scsi_fail_cdb(cmd, 4, 1);
		return;
	}
	/* SBC-3 5.25 / SPC-4 6.13: while any I_T nexus prevents medium
	 * removal, the medium may be neither ejected nor (re)loaded:
	 * ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED. */
	pthread_mutex_lock(&lu->lock);
	prevented = lu->prevent != NULL;
	if (!prevented)
		atomic_store(&lu->no_medium, !start);
	pthread_mutex_unlock(&lu->lock);
	if (prevented) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED, 0x02);
		return;
	}
	scsi_cmd_complete(cmd);
}

void sbc_prevent_allow(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint64_t id = scsi_nexus_id(cmd);
	struct scsi_prevent **pp, *pv;
	/* SPC-4 6.13: PREVENT field 01b prevents, 00b allows (10b/11b are
	 * obsolete; bit 0 decides, as it always did). */
	bool prevent = cmd->cdb[4] & 0x01;

	/* The prevention belongs to the I_T nexus that asked for it; the
	 * medium stays locked while any nexus holds one. */
	pthread_mutex_lock(&lu->lock);
	for (pp = &lu->prevent; (pv = *pp) && pv->nexus_id != id; pp = &pv->next)
		;
	if (prevent && !pv) {
		pv = calloc(1, sizeof(*pv));
		if (!pv) {
			pthread_mutex_unlock(&lu->lock);
			scsi_set_errno_sense(cmd, -ENOMEM, false);
			scsi_cmd_complete(cmd);
			return;
		}
		pv->nexus_id = id;
		*pp = pv;
	} else if (!prevent && pv) {
		*pp = pv->next;
		free(pv);
	}
	lu->removal_prevented = lu->prevent != NULL;
	pthread_mutex_unlock(&lu->lock);
	scsi_cmd_complete(cmd);
}

static uint8_t *alloc_or_fail(struct scsi_cmd *cmd, size_t len)
{
	uint8_t *b = scsi_data_in_alloc(cmd, len);

	if (!b) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
	}
	return b;
}

void sbc_read_capacity10(struct scsi_cmd *cmd)
{
	uint64_t nb = atomic_load(&cmd->lu->nr_blocks);
	uint32_t lba = get_be32(&cmd->cdb[2]);
	uint8_t *b;

	/* SBC-3 5.15: PMI=0 requires LOGICAL BLOCK ADDRESS=0.  With PMI=1 we
	 * have no "delay point", so the answer is the same. */
	if (!(cmd->cdb[8] & 0x01) && lba) {
		scsi_fail_cdb(cmd, 2, -1);
		return;
	}
	if (!(b = alloc_or_fail(cmd, 8)))
		return;
	/* RETURNED LOGICAL BLOCK ADDRESS: the last LBA, or FFFFFFFFh when it
	 * does not fit (the initiator then uses READ CAPACITY 16). */
	put_be32(b, nb - 1 > 0xffffffffull ? 0xffffffffu : (uint32_t)(nb - 1));
	put_be32(b + 4, cmd->lu->block_size);
	scsi_data_in_done(cmd, 8, 8);
}

void sbc_read_capacity16(struct scsi_cmd *cmd)
{
	uint64_t nb = atomic_load(&cmd->lu->nr_blocks);
	uint32_t alloc = get_be32(&cmd->cdb[10]);
	uint8_t *b;

	if (!(b = alloc_or_fail(cmd, 32)))
		return;
	/* SBC-3 5.16: last LBA, block length, no protection (P_TYPE/PROT_EN 0),
	 * LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 0, LBPME/LBPRZ for thin
	 * LUs, LOWEST ALIGNED LBA 0. */
	put_be64(b, nb - 1);
	put_be32(b + 8, cmd->lu->block_size);
	if (scsi_lu_thin(cmd->lu))
		b[14] = 0x80 | 0x40;
	scsi_data_in_done(cmd, 32, alloc);
}

/* ------------------------------------------------------------------------ */
/* Medium access                                                             */
/* ------------------------------------------------------------------------ */

static void sbc_bio_done(struct bio *bio, int err)
{
	struct scsi_cmd *cmd = container_of(bio, struct scsi_cmd, bio);

	if (err == -EOPNOTSUPP && bio->opcode == BIO_DISCARD) {
		/* No hole punching here: LBPRZ=1 promises zeros, so zero the
		 * range instead (SBC-3 4.7.3.4: unmapping is optional, the
		 * data read back is what is promised). */
		sbc_submit(cmd, BIO_WRITE_ZEROES, 0, bio->offset, bio->len, NULL, NULL);
		return;
	}
	if (err) {
		scsi_set_errno_sense(cmd, err, cmd->stage != SBC_READ && cmd->stage != SBC_VERIFY_READ &&
					 cmd->stage != SBC_CAW_READ && cmd->stage != SBC_ORW_READ &&
					 cmd->stage != SBC_RMW_READ);
		if (cmd->stage == SBC_READ)
			cmd->data_in_len = 0;
		scsi_cmd_complete(cmd);
		return;
	}
	switch (cmd->stage) {
	case SBC_READ:
		cmd->data_in_len = (uint32_t)bio->len;
		break;
	case SBC_VERIFY_READ:
		if (bio->priv) {
			/* BYTCHK: compare the Data-Out buffer with the medium.  With
			 * BYTCHK=11b (SBC-4) one block of data is compared against
			 * every block of the range. */
			const uint8_t *med = bio->buf, *dout = cmd->data_out;
			uint32_t bs = cmd->lu->block_size;
			bool single = (uintptr_t)bio->priv == 3;
			uint64_t i;

			for (i = 0; i < bio->len; i++) {
				uint8_t want = single ? dout[i % bs] : dout[i];
				if (med[i] != want) {
					/* SBC-3 5.30: MISCOMPARE DURING VERIFY OPERATION,
					 * INFORMATION = offset of the first byte that
					 * differs, counted from the Data-Out start. */
					scsi_set_sense_info(cmd, SK_MISCOMPARE,
							    ASC_MISCOMPARE_DURING_VERIFY, 0x00,
							    (uint32_t)(single ? i % bs : i));
					scsi_cmd_complete(cmd);
					return;
				}
			}
		}
		break;
	case SBC_RMW_READ: {
		/* Merge the received bytes over the block just read, then write
		 * the (shortened) range: see sbc_read_write(). */
		uint32_t have = cmd->data_out_len;
		memcpy(cmd->scratch, cmd->data_out, have);
		sbc_write(cmd, cmd->scratch, (uint64_t)cmd->nr_blocks * cmd->lu->block_size);
		return;
	}
	case SBC_UNMAP:
		unmap_next(cmd);
		return;
	case SBC_CAW_READ:
		caw_compare(cmd);
		return;
	case SBC_ORW_READ:
		orwrite_merge(cmd);
		return;
	case SBC_WS_PATTERN:
		if (bio->offset + bio->len < (cmd->lba + cmd->nr_blocks) * cmd->lu->block_size) {
			ws_next_chunk(cmd);
			return;
		}
		break;
	case SBC_WS_ZERO:
		/* WCE=0: the zeroing must be durable before GOOD (SBC-3 6.4.5). */
		if (!atomic_load(&cmd->lu->write_cache)) {
			cmd->stage = SBC_FLUSH;
			sbc_submit(cmd, BIO_FLUSH, 0, 0, 0, NULL, NULL);
			return;
		}
		break;
	default:
		break;
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_cmd_complete(cmd);
}

static void sbc_submit(struct scsi_cmd *cmd, enum bio_opcode op, unsigned flags,
		       uint64_t off, uint64_t len, void *buf, void *priv)
{
	struct reactor *r = cmd->r ? cmd->r : reactor_current();
	struct bio *bio = &cmd->bio;

	if (!r) {
		scsi_fail(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE, 0x00);
		return;
	}
	memset(bio, 0, sizeof(*bio));
	bio->opcode = op;
	bio->flags = flags;
	bio->offset = off;
	bio->len = len;
	bio->buf = buf;
	bio->priv = priv;
	bio->done = sbc_bio_done;
	bstore_submit(cmd->lu->bs, r, bio);
}

/* SBC-3 4.5: LBA range check common to every medium-access command. */
static bool lba_out_of_range(struct scsi_cmd *cmd, uint64_t lba, uint64_t n)
{
	uint64_t nb = atomic_load(&cmd->lu->nr_blocks);

	if (lba > nb || n > nb - lba) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0x00);
		return true;
	}
	return false;
}

static uint32_t clip32(uint64_t v)
{
	return v > 0xffffffffull ? 0xffffffffu : (uint32_t)v;
}

/* Decode LBA and TRANSFER LENGTH of the 10/12/16-byte READ/WRITE/VERIFY
 * family (SBC-3 5.x); *len_byte is where TRANSFER LENGTH starts. */
static void decode_lba_len(const uint8_t *cdb, uint64_t *lba, uint32_t *n, uint16_t *len_byte)
{
	switch (cdb[0] >> 5) {
	case 1:   /* 10-byte (groups 1 and 2) */
	case 2:
		*lba = get_be32(&cdb[2]);
		*n = get_be16(&cdb[7]);
		*len_byte = 7;
		break;
	case 5:   /* 12-byte (group 5) */
		*lba = get_be32(&cdb[2]);
		*n = get_be32(&cdb[6]);
		*len_byte = 6;
		break;
	default:  /* 16-byte (group 4) */
		*lba = get_be64(&cdb[2]);
		*n = get_be32(&cdb[10]);
		*len_byte = 10;
		break;
	}
}

/* Use the Data-Out buffer directly unless O_DIRECT needs an aligned copy. */
static void *write_buffer(struct scsi_cmd *cmd, uint64_t len)
{
	if (!cmd->lu->bs->direct || ((uintptr_t)cmd->data_out & 4095) == 0)
		return cmd->data_out;
	if (cmd->scratch)
		bstore_buf_free(cmd->scratch);
	cmd->scratch = bstore_buf_alloc(len);
	if (cmd->scratch)
		memcpy(cmd->scratch, cmd->data_out, len);
	return cmd->scratch;
}

static void sbc_write(struct scsi_cmd *cmd, void *buf, uint64_t bytes)
{
	unsigned flags = 0;

	/* SBC-3 6.4.5: with WCE=0 every write completes to the medium. */
	if (cmd->fua || !atomic_load(&cmd->lu->write_cache))
		flags |= BIO_F_FUA;
	cmd->stage = SBC_WRITE;
	sbc_submit(cmd, BIO_WRITE, flags, cmd->lba * cmd->lu->block_size, bytes, buf, NULL);
}

void sbc_read_write(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	uint8_t op = cdb[0];
	bool is_write = op == OP_WRITE_6 || op == OP_WRITE_10 || op == OP_WRITE_12 ||
			op == OP_WRITE_16 || op == OP_WRITE_VERIFY_10 ||
			op == OP_WRITE_VERIFY_12 || op == OP_WRITE_VERIFY_16;
	bool is_wv = op == OP_WRITE_VERIFY_10 || op == OP_WRITE_VERIFY_12 ||
		     op == OP_WRITE_VERIFY_16;
	uint64_t lba, bytes;
	uint32_t n;
	uint16_t len_byte;
	uint8_t protect = 0;
	bool fua = false;

	if (op == OP_READ_6 || op == OP_WRITE_6) {
		/* SBC-3 5.8/5.36: 21-bit LBA; TRANSFER LENGTH 0 means 256. */
		lba = get_be24(&cdb[1]) & 0x1fffff;
		n = cdb[4] ? cdb[4] : 256;
		len_byte = 4;
	} else {
		decode_lba_len(cdb, &lba, &n, &len_byte);
		protect = cdb[1] >> 5;
		/* FUA (bit 3) for READ/WRITE; WRITE AND VERIFY has none but
		 * verifying means reading back from the medium, so it is FUA. */
		fua = is_wv || (cdb[1] & 0x08);
		/* DPO (bit 4), FUA_NV (bit 1): cache hints, ignored. */
	}
	bytes = (uint64_t)n * lu->block_size;
	cmd->lba = lba;
	cmd->nr_blocks = n;
	cmd->fua = fua;
	cmd->xfer_len = clip32(bytes);
	cmd->xfer_is_write = is_write;

	/* No protection information (PROTECT=0 in INQUIRY): RDPROTECT /
	 * WRPROTECT other than 000b is an invalid field (SBC-3 4.22.2). */
	if (protect) {
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (is_write && scsi_lu_wp(lu)) {
		scsi_fail(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x00);
		return;
	}
	if (lba_out_of_range(cmd, lba, n))
		return;
	if (n == 0) {                   /* SBC-3: not an error, nothing moves */
		scsi_cmd_complete(cmd);
		return;
	}
	if (bytes > SCSI_MAX_XFER_BYTES) {   /* SBC-3: > Block Limits MAXIMUM TRANSFER LENGTH */
		scsi_fail_cdb(cmd, len_byte, -1);
		return;
	}
	/* Wait for a COMPARE AND WRITE / ORWRITE / WRITE ATOMIC on an
	 * overlapping range to finish (SBC-3 5.2). */
	if (scsi_rl_acquire(cmd, lu, lba, n, is_write ? SCSI_RL_WRITE : SCSI_RL_READ, rw_start))
		rw_start(cmd);
}

/* The medium access of READ/WRITE, once the range is ours. */
static void rw_start(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint64_t lba = cmd->lba, bytes = (uint64_t)cmd->nr_blocks * lu->block_size;

	if (!cmd->xfer_is_write) {
		uint8_t *buf = bstore_buf_alloc(bytes);
		if (!buf) {
			scsi_set_errno_sense(cmd, -ENOMEM, false);
			scsi_cmd_complete(cmd);
			return;
		}
		if (cmd->data_in)
			bstore_buf_free(cmd->data_in);
		cmd->data_in = buf;
		cmd->stage = SBC_READ;
		sbc_submit(cmd, BIO_READ, 0, lba * lu->block_size, bytes, buf, NULL);
		return;
	}

	/* Data-Out shorter than the CDB asks for (the initiator's Expected Data
	 * Transfer Length was smaller).  FCP-4 9.4.2 as libiscsi's residual tests
	 * read it: (a) process the command, except that data beyond the EDTL is
	 * neither transferred nor written, and report the overflow residual; or
	 * (b) write nothing and return INVALID FIELD IN COMMAND INFORMATION UNIT.
	 * We do (a): the whole blocks received are written, and a trailing
	 * partial block is merged into the block on the medium (read-modify-
	 * write), so exactly the received bytes change - what libiscsi's
	 * Write*Residuals check, and what its PR access helpers (512-byte writes
	 * to 4096-byte LUs) need.  Data beyond the CDB's length (EDTL too large)
	 * is never written. */
	if (cmd->data_out_len < bytes || !cmd->data_out) {
		uint32_t have = cmd->data_out ? cmd->data_out_len : 0;
		uint32_t tail = have % lu->block_size;

		if (have == 0) {
			scsi_cmd_complete(cmd);
			return;
		}
		if (tail) {
			uint64_t full = have - tail;
			uint8_t *buf = bstore_buf_alloc(full + lu->block_size);

			if (!buf) {
				scsi_set_errno_sense(cmd, -ENOMEM, true);
				scsi_cmd_complete(cmd);
				return;
			}
			if (cmd->scratch)
				bstore_buf_free(cmd->scratch);
			cmd->scratch = buf;
			cmd->nr_blocks = (uint32_t)(full / lu->block_size) + 1;
			cmd->stage = SBC_RMW_READ;
			sbc_submit(cmd, BIO_READ, 0, lba * lu->block_size + full, lu->block_size,
				   buf + full, NULL);
			return;
		}
		bytes = have;
	}
	{
		void *buf = write_buffer(cmd, bytes);

		if (!buf) {
			scsi_set_errno_sense(cmd, -ENOMEM, true);
			scsi_cmd_complete(cmd);
			return;
		}
		sbc_write(cmd, buf, bytes);
	}
}

/* SBC-3 5.30-5.32 VERIFY 10/12/16. */
void sbc_verify(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	uint8_t bytchk = (cdb[1] >> 1) & 0x03;
	uint64_t lba, bytes, need;
	uint32_t n, bs = lu->block_size;
	uint16_t len_byte;
	uint8_t *buf;

	decode_lba_len(cdb, &lba, &n, &len_byte);
	bytes = (uint64_t)n * bs;
	/* BYTCHK (SBC-4 encoding, compatible with SBC-3's single bit):
	 * 00b medium verification only, 01b compare n blocks of Data-Out,
	 * 11b compare one block of Data-Out against each block; 10b reserved. */
	need = bytchk == 0 ? 0 : bytchk == 1 ? bytes : (n ? bs : 0);
	cmd->lba = lba;
	cmd->nr_blocks = n;
	cmd->xfer_len = clip32(need);
	cmd->xfer_is_write = need != 0;

	if (cdb[1] >> 5) {                      /* VRPROTECT */
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (bytchk == 2) {
		scsi_fail_cdb(cmd, 1, 2);
		return;
	}
	if (lba_out_of_range(cmd, lba, n))
		return;
	if (n == 0) {
		scsi_cmd_complete(cmd);
		return;
	}
	if (bytes > SCSI_MAX_XFER_BYTES) {
		scsi_fail_cdb(cmd, len_byte, -1);
		return;
	}
	if (need && (!cmd->data_out || cmd->data_out_len < need)) {
		/* Same rule as for writes: compare what arrived in whole blocks. */
		uint32_t have = cmd->data_out ? cmd->data_out_len : 0;
		if (have % bs) {
			scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_IU, 0x03);
			return;
		}
		if (have == 0) {
			scsi_cmd_complete(cmd);
			return;
		}
		if (bytchk == 1)
			bytes = have;
	}

	buf = bstore_buf_alloc(bytes);
	if (!buf) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		scsi_cmd_complete(cmd);
		return;
	}
	if (cmd->scratch)
		bstore_buf_free(cmd->scratch);
	cmd->scratch = buf;
	if (scsi_rl_acquire(cmd, lu, lba, n, SCSI_RL_READ, verify_start))
		verify_start(cmd);
}

static void verify_start(struct scsi_cmd *cmd)
{
	uint32_t bs = cmd->lu->block_size;
	uint8_t bytchk = (cmd->cdb[1] >> 1) & 0x03;
	uint64_t bytes = (uint64_t)cmd->nr_blocks * bs;

	/* As computed in sbc_verify(): only the whole blocks received. */
	if (bytchk == 1 && cmd->data_out_len < bytes)
		bytes = cmd->data_out_len;
	cmd->stage = SBC_VERIFY_READ;
	sbc_submit(cmd, BIO_READ, 0, cmd->lba * bs, bytes, cmd->scratch, (void *)(uintptr_t)bytchk);
}

/* SBC-3 5.22/5.23 SYNCHRONIZE CACHE 10/16: NUMBER OF LOGICAL BLOCKS 0 means
 * "to the end of the medium"; the range is checked, then the whole store is
 * flushed (fdatasync has no range).  IMMED is honoured by simply completing
 * after the flush, which is allowed. */
void sbc_sync_cache(struct scsi_cmd *cmd)
{
	uint64_t lba;
	uint32_t n;
	uint16_t len_byte;

	decode_lba_len(cmd->cdb, &lba, &n, &len_byte);
	if (lba_out_of_range(cmd, lba, n))
		return;
	cmd->stage = SBC_FLUSH;
	sbc_submit(cmd, BIO_FLUSH, 0, 0, 0, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* Logical block provisioning: UNMAP, WRITE SAME (SBC-3 5.28, 5.41-5.42)     */
/* ------------------------------------------------------------------------ */

static void unmap_next(struct scsi_cmd *cmd)
{
	const uint8_t *p = cmd->data_out;
	uint32_t count = get_be16(&p[2]) / 16, bs = cmd->lu->block_size;

	/* cmd->nr_blocks is the index of the next descriptor to process. */
	while (cmd->nr_blocks < count) {
		const uint8_t *d = p + 8 + 16 * cmd->nr_blocks++;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);
		if (n == 0)
			continue;
		cmd->stage = SBC_UNMAP;
		sbc_submit(cmd, BIO_DISCARD, 0, lba * bs, (uint64_t)n * bs, NULL, NULL);
		return;
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_cmd_complete(cmd);
}

void sbc_unmap(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint32_t plen = get_be16(&cmd->cdb[7]), bddl, count, i;
	uint64_t nb = atomic_load(&lu->nr_blocks);
	const uint8_t *p = cmd->data_out;
	uint64_t lo = UINT64_MAX, hi = 0;

	cmd->xfer_len = plen;
	cmd->xfer_is_write = true;

	if (scsi_lu_wp(lu)) {
		scsi_fail(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x00);
		return;
	}
	if (!scsi_lu_thin(lu)) {
		/* Consistent with LBPU=0 (and what libiscsi's Unmap.VPD checks). */
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0x00);
		return;
	}
	if (cmd->cdb[1] & 0x01) {       /* ANCHOR: ANC_SUP=0 */
		scsi_fail_cdb(cmd, 1, 0);
		return;
	}
	if (plen == 0) {                /* SBC-3 5.28: not an error */
		scsi_cmd_complete(cmd);
		return;
	}
	if (plen < 8 || !p || cmd->data_out_len < plen) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0x00);
		return;
	}
	bddl = get_be16(&p[2]);
	if (bddl > plen - 8) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR, 0x00);
		return;
	}
	count = bddl / 16;              /* a trailing partial descriptor is ignored */
	if (count > SCSI_MAX_UNMAP_DESCRIPTORS) {
		scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM, 0,
				     false, 2, -1);
		scsi_cmd_complete(cmd);
		return;
	}
	/* Validate every descriptor before unmapping anything. */
	for (i = 0; i < count; i++) {
		const uint8_t *d = p + 8 + 16 * i;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);
		if (lba > nb || n > nb - lba) {
			scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0x00);
			return;
		}
		if (n > SCSI_MAX_UNMAP_LBA_COUNT) {
			scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM, 0,
					     false, (uint16_t)(8 + 16 * i + 8), -1);
			scsi_cmd_complete(cmd);
			return;
		}
		if (n && lba < lo)
			lo = lba;
		if (n && lba + n > hi)
			hi = lba + n;
	}
	cmd->nr_blocks = 0;
	/* One shared claim over the span of all descriptors: unmapping is a
	 * write as far as COMPARE AND WRITE is concerned. */
	if (hi > lo && !scsi_rl_acquire(cmd, lu, lo, hi - lo, SCSI_RL_WRITE, unmap_next))
		return;
	unmap_next(cmd);
}

static void ws_next_chunk(struct scsi_cmd *cmd)
{
	uint32_t bs = cmd->lu->block_size;
	uint64_t end = (cmd->lba + cmd->nr_blocks) * bs;
	uint64_t off = cmd->stage == SBC_WS_PATTERN ? cmd->bio.offset + cmd->bio.len : cmd->lba * bs;
	uint64_t len = end - off;
	unsigned flags = atomic_load(&cmd->lu->write_cache) ? 0 : BIO_F_FUA;

	if (len > WS_CHUNK_BYTES)
		len = WS_CHUNK_BYTES;
	cmd->stage = SBC_WS_PATTERN;
	sbc_submit(cmd, BIO_WRITE, flags, off, len, cmd->scratch, NULL);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* SBC-3 5.41/5.42 WRITE SAME (10) / (16). */
void sbc_write_same(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	bool ws16 = cdb[0] == OP_WRITE_SAME_16;
	bool ndob = ws16 && (cdb[1] & 0x01);    /* SBC-4: no Data-Out, write zeros */
	bool unmap = cdb[1] & 0x08;
	uint32_t bs = lu->block_size, n;
	uint64_t lba, bytes;
	uint16_t len_byte;

	decode_lba_len(cdb, &lba, &n, &len_byte);
	cmd->lba = lba;
	cmd->nr_blocks = n;
	cmd->xfer_len = ndob ? 0 : bs;
	cmd->xfer_is_write = !ndob;

	if (cdb[1] >> 5) {                      /* WRPROTECT: no protection info */
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (cdb[1] & 0x06) {                    /* PBDATA / LBDATA (obsolete) */
		scsi_fail_cdb(cmd, 1, (cdb[1] & 0x04) ? 2 : 1);
		return;
	}
	if (cdb[1] & 0x10) {
		/* ANCHOR (SBC-3 5.42): the anchored state is not supported
		 * (ANC_SUP=0 in the Logical Block Provisioning VPD page). */
		scsi_fail_cdb(cmd, 1, 4);
		return;
	}
	/* Write protection first: a read-only LU answers DATA PROTECT for
	 * every medium write, unmapping included (libiscsi ReadOnly suite). */
	if (scsi_lu_wp(lu)) {
		scsi_fail(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x00);
		return;
	}
	if (unmap && !scsi_lu_thin(lu)) {       /* consistent with LBPWS(10)=0 */
		scsi_fail_cdb(cmd, 1, 3);
		return;
	}
	if (n == 0) {
		/* WSNZ=0 (SBC-3 5.42): NUMBER OF LOGICAL BLOCKS zero means from
		 * LBA to the last LBA of the medium. */
		uint64_t nb = atomic_load(&lu->nr_blocks);

		if (lba >= nb) {
			scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0x00);
			return;
		}
		if (nb - lba > SCSI_MAX_WRITE_SAME_BLOCKS) {
			scsi_fail_cdb(cmd, len_byte, -1);
			return;
		}
		n = (uint32_t)(nb - lba);
		cmd->nr_blocks = n;
	}
	if (lba_out_of_range(cmd, lba, n))
		return;
	bytes = (uint64_t)n * bs;
	/* More than the MAXIMUM WRITE SAME LENGTH of the Block Limits page. */
	if (n > SCSI_MAX_WRITE_SAME_BLOCKS) {
		scsi_fail_cdb(cmd, len_byte, -1);
		return;
	}
	/* Exactly one logical block of Data-Out (libiscsi's
	 * WriteSame*.InvalidDataOutSize): anything else is an inconsistent
	 * Expected Data Transfer Length. */
	if (!ndob && (!cmd->data_out || cmd->data_out_len != bs)) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_IU, 0x03);
		return;
	}
	(void)bytes;
	if (scsi_rl_acquire(cmd, lu, lba, n, SCSI_RL_WRITE, ws_start))
		ws_start(cmd);
}

static void ws_start(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	bool ndob = cdb[0] == OP_WRITE_SAME_16 && (cdb[1] & 0x01);
	bool unmap = cdb[1] & 0x08;
	uint32_t bs = lu->block_size;
	uint64_t lba = cmd->lba, bytes = (uint64_t)cmd->nr_blocks * bs;

	if (unmap) {
		/* UNMAP=1: unmap the range; with LBPRZ=1 it then reads as zeros
		 * whatever the Data-Out block held (SBC-3 5.42). */
		cmd->stage = SBC_WS_ZERO;
		sbc_submit(cmd, BIO_DISCARD, 0, lba * bs, bytes, NULL, NULL);
		return;
	}
	if (ndob || all_zero(cmd->data_out, bs)) {
		cmd->stage = SBC_WS_ZERO;
		sbc_submit(cmd, BIO_WRITE_ZEROES, 0, lba * bs, bytes, NULL, NULL);
		return;
	}
	{
		uint64_t chunk = bytes < WS_CHUNK_BYTES ? bytes : WS_CHUNK_BYTES, off;
		uint8_t *buf = bstore_buf_alloc(chunk);

		if (!buf) {
			scsi_set_errno_sense(cmd, -ENOMEM, true);
			scsi_cmd_complete(cmd);
			return;
		}
		for (off = 0; off < chunk; off += bs)
			memcpy(buf + off, cmd->data_out, bs);
		if (cmd->scratch)
			bstore_buf_free(cmd->scratch);
		cmd->scratch = buf;
		cmd->stage = 0;
		ws_next_chunk(cmd);
	}
}

/* ------------------------------------------------------------------------ */
/* Atomic commands: COMPARE AND WRITE, ORWRITE, WRITE ATOMIC                 */
/* ------------------------------------------------------------------------ */

/* Each claims its range exclusively (scsi_rl_acquire, SCSI_RL_EXCL) before
 * the first medium access and keeps it until the command completes, so no
 * other command of this target - on any reactor - reads or writes an
 * overlapping block in between (SBC-3 5.2, 5.12; SBC-4 4.29). */

static void caw_start(struct scsi_cmd *cmd)
{
	uint64_t bytes = (uint64_t)cmd->nr_blocks * cmd->lu->block_size;

	cmd->stage = SBC_CAW_READ;
	sbc_submit(cmd, BIO_READ, 0, cmd->lba * cmd->lu->block_size, bytes, cmd->scratch, NULL);
}

/* The verify half has been read into scratch: compare, then write. */
static void caw_compare(struct scsi_cmd *cmd)
{
	uint64_t bytes = (uint64_t)cmd->nr_blocks * cmd->lu->block_size, i;
	const uint8_t *med = cmd->scratch, *dout = cmd->data_out;

	if (memcmp(med, dout, bytes) != 0) {
		for (i = 0; i < bytes && med[i] == dout[i]; i++)
			;
		/* SBC-3 5.2: MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION, with
		 * INFORMATION = offset of the first differing byte from the start
		 * of the Data-Out buffer; the medium is left unchanged. */
		scsi_set_sense_info(cmd, SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY, 0x00,
				    (uint32_t)i);
		scsi_cmd_complete(cmd);
		return;
	}
	/* The write half goes through scratch (O_DIRECT alignment). */
	memcpy(cmd->scratch, dout + bytes, bytes);
	sbc_write(cmd, cmd->scratch, bytes);
}

/* SBC-3 5.2 COMPARE AND WRITE (89h). */
void sbc_compare_and_write(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(&cdb[2]);
	uint32_t n = cdb[13], bs = lu->block_size;
	uint64_t bytes = (uint64_t)n * bs;

	cmd->lba = lba;
	cmd->nr_blocks = n;
	cmd->fua = cdb[1] & 0x08;
	cmd->xfer_len = clip32(2 * bytes);
	cmd->xfer_is_write = true;

	if (cdb[1] >> 5) {                      /* WRPROTECT: no protection info */
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (scsi_lu_wp(lu)) {
		scsi_fail(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x00);
		return;
	}
	/* Block Limits MAXIMUM COMPARE AND WRITE LENGTH. */
	if (n > SCSI_MAX_CAW_BLOCKS) {
		scsi_fail_cdb(cmd, 13, -1);
		return;
	}
	if (lba_out_of_range(cmd, lba, n))
		return;
	/* The Data-Out buffer is the verify data followed by the write data,
	 * 2 x NUMBER OF LOGICAL BLOCKS blocks; comparing or writing a part of
	 * it would not be what the initiator asked for.  An Expected Data
	 * Transfer Length that disagrees with the CDB makes the CDB invalid
	 * (as LIO does) - this also catches a 256-block request whose 8-bit
	 * NUMBER OF LOGICAL BLOCKS wrapped to 0. */
	if (cmd->expected_len != 2 * bytes ||
	    (n && (!cmd->data_out || cmd->data_out_len != 2 * bytes))) {
		scsi_fail_cdb(cmd, 13, -1);
		return;
	}
	if (n == 0) {                           /* not an error, nothing happens */
		scsi_cmd_complete(cmd);
		return;
	}
	if (cmd->scratch)
		bstore_buf_free(cmd->scratch);
	cmd->scratch = bstore_buf_alloc(bytes);
	if (!cmd->scratch) {
		scsi_set_errno_sense(cmd, -ENOMEM, true);
		scsi_cmd_complete(cmd);
		return;
	}
	if (scsi_rl_acquire(cmd, lu, lba, n, SCSI_RL_EXCL, caw_start))
		caw_start(cmd);
}

static void orwrite_start(struct scsi_cmd *cmd)
{
	uint64_t bytes = (uint64_t)cmd->nr_blocks * cmd->lu->block_size;

	cmd->stage = SBC_ORW_READ;
	sbc_submit(cmd, BIO_READ, 0, cmd->lba * cmd->lu->block_size, bytes, cmd->scratch, NULL);
}

static void orwrite_merge(struct scsi_cmd *cmd)
{
	uint64_t bytes = (uint64_t)cmd->nr_blocks * cmd->lu->block_size, i;
	uint8_t *med = cmd->scratch;
	const uint8_t *dout = cmd->data_out;

	for (i = 0; i < bytes; i++)
		med[i] |= dout[i];
	sbc_write(cmd, med, bytes);
}

/* The checks ORWRITE (16) and WRITE ATOMIC (16) share, in SBC order: no
 * protection information (byte 1 bits 7-5), software write protect, LBA
 * range, zero length.  Records lba/length/FUA and the transfer size.
 * Returns false when the command is already finished (error or nothing to
 * do). */
static bool sbc_write16_prologue(struct scsi_cmd *cmd, uint64_t lba, uint32_t n)
{
	const uint8_t *cdb = cmd->cdb;

	cmd->lba = lba;
	cmd->nr_blocks = n;
	cmd->fua = cdb[1] & 0x08;
	cmd->xfer_len = clip32((uint64_t)n * cmd->lu->block_size);
	cmd->xfer_is_write = true;

	if (cdb[1] >> 5) {                      /* ORPROTECT / WRPROTECT */
		scsi_fail_cdb(cmd, 1, 7);
		return false;
	}
	if (scsi_lu_wp(cmd->lu)) {
		scsi_fail(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0x00);
		return false;
	}
	if (lba_out_of_range(cmd, lba, n))
		return false;
	if (n == 0) {
		scsi_cmd_complete(cmd);
		return false;
	}
	return true;
}

/* SBC-3 5.12 ORWRITE (16) (8Bh): the medium becomes medium OR Data-Out. */
void sbc_orwrite(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(&cdb[2]), bytes;
	uint32_t n = get_be32(&cdb[10]);

	bytes = (uint64_t)n * lu->block_size;
	if (!sbc_write16_prologue(cmd, lba, n))
		return;
	if (bytes > SCSI_MAX_XFER_BYTES) {
		scsi_fail_cdb(cmd, 10, -1);
		return;
	}
	if (!cmd->data_out || cmd->data_out_len < bytes) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_IU, 0x03);
		return;
	}
	if (cmd->scratch)
		bstore_buf_free(cmd->scratch);
	cmd->scratch = bstore_buf_alloc(bytes);
	if (!cmd->scratch) {
		scsi_set_errno_sense(cmd, -ENOMEM, true);
		scsi_cmd_complete(cmd);
		return;
	}
	if (scsi_rl_acquire(cmd, lu, lba, n, SCSI_RL_EXCL, orwrite_start))
		orwrite_start(cmd);
}

static void write_atomic_start(struct scsi_cmd *cmd)
{
	uint64_t bytes = (uint64_t)cmd->nr_blocks * cmd->lu->block_size;
	void *buf = write_buffer(cmd, bytes);

	if (!buf) {
		scsi_set_errno_sense(cmd, -ENOMEM, true);
		scsi_cmd_complete(cmd);
		return;
	}
	sbc_write(cmd, buf, bytes);
}

/* SBC-4 5.48 WRITE ATOMIC (16) (9Ch).  Up to MAXIMUM ATOMIC TRANSFER LENGTH
 * (Block Limits VPD), no alignment or granularity constraints.  The write is
 * one backend write done while holding the range exclusively, so no command
 * of this target sees the range half written; a power loss mid-write is the
 * store's business (a file system does not promise torn-write protection),
 * which is why the limit is kept modest. */
void sbc_write_atomic(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(&cdb[2]), bytes;
	uint32_t n = get_be16(&cdb[12]);

	bytes = (uint64_t)n * lu->block_size;
	if (!sbc_write16_prologue(cmd, lba, n))
		return;
	if (bytes > SCSI_MAX_ATOMIC_BYTES) {   /* > MAXIMUM ATOMIC TRANSFER LENGTH */
		scsi_fail_cdb(cmd, 12, -1);
		return;
	}
	/* Atomic means all or nothing: a partial Data-Out is not written. */
	if (!cmd->data_out || cmd->data_out_len < bytes) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_IU, 0x03);
		return;
	}
	if (scsi_rl_acquire(cmd, lu, lba, n, SCSI_RL_EXCL, write_atomic_start))
		write_atomic_start(cmd);
}

/* ------------------------------------------------------------------------ */
/* PRE-FETCH, GET LBA STATUS, READ DEFECT DATA                               */
/* ------------------------------------------------------------------------ */

/* SBC-3 5.9 / 5.10 PRE-FETCH (10) / (16).  The range is checked; the data is
 * left to the host page cache (readahead is the kernel's business), so the
 * answer is GOOD - "the cache may not hold all the blocks" - rather than
 * CONDITION MET, which would promise residency we cannot guarantee.  IMMED
 * makes no difference: there is nothing to wait for. */
void sbc_prefetch(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba;
	uint32_t n;

	if (cdb[0] == OP_PRE_FETCH_10) {
		lba = get_be32(&cdb[2]);
		n = get_be16(&cdb[7]);
	} else {
		lba = get_be64(&cdb[2]);
		n = get_be32(&cdb[10]);
	}
	if (lba_out_of_range(cmd, lba, n))
		return;
	cmd->status = SAM_STAT_GOOD;
	scsi_cmd_complete(cmd);
}

#define LBA_STATUS_MAX_DESC 64

enum { LBAS_MAPPED = 0, LBAS_DEALLOCATED = 1 };

/* Next extent starting at byte pos of a file store: its end (bytes) and
 * whether it holds data.  SEEK_DATA/SEEK_HOLE are metadata lookups in the
 * file system (no I/O), cheap enough for the reactor. */
static void file_extent(int fd, uint64_t pos, uint64_t end, uint64_t *ext_end, bool *mapped)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

	if (d < 0) {
		/* ENXIO: no data at or after pos - the rest is a hole.  Any
		 * other error (no SEEK_DATA support): report it mapped. */
		*mapped = errno != ENXIO;
		*ext_end = end;
		return;
	}
	if ((uint64_t)d > pos) {
		*mapped = false;
		*ext_end = (uint64_t)d < end ? (uint64_t)d : end;
		return;
	}
	h = lseek(fd, (off_t)pos, SEEK_HOLE);
	*mapped = true;
	*ext_end = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
}

/* SBC-3 5.20 GET LBA STATUS (SERVICE ACTION IN (16) 9Eh/12h).  A fully
 * provisioned LU is mapped everywhere; a thin one on a file reports what the
 * file system has allocated (holes are deallocated: LBPRZ=1, they read as
 * zeros); a thin null store is treated as mapped. */
void sbc_get_lba_status(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint64_t lba = get_be64(&cmd->cdb[2]);
	uint32_t alloc = get_be32(&cmd->cdb[10]), bs = lu->block_size, nd = 0;
	uint64_t nb = atomic_load(&lu->nr_blocks);
	struct bstore *st = lu->bs;
	uint8_t *b;

	if (lba >= nb) {
		scsi_fail(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0x00);
		return;
	}
	b = alloc_or_fail(cmd, 8 + 16 * LBA_STATUS_MAX_DESC);
	if (!b)
		return;

	if (!scsi_lu_thin(lu) || st->fd < 0) {
		put_be64(&b[8], lba);
		put_be32(&b[16], clip32(nb - lba));
		b[20] = LBAS_MAPPED;
		nd = 1;
	} else {
		uint64_t pos = lba * bs, end = nb * bs;

		/* Extents are converted to whole logical blocks: a partially
		 * allocated block counts as mapped. */
		while (pos < end && nd < LBA_STATUS_MAX_DESC) {
			uint64_t ext_end, first = pos / bs, last;
			bool mapped;
			uint8_t *d = &b[8 + 16 * nd];

			file_extent(st->fd, pos, end, &ext_end, &mapped);
			last = mapped ? (ext_end + bs - 1) / bs : ext_end / bs;
			if (last <= first) {     /* a hole smaller than one block */
				mapped = true;
				last = first + 1;
			}
			if (last > nb)
				last = nb;
			/* One descriptor holds at most 2^32 - 1 blocks. */
			if (last - first > 0xffffffffull)
				last = first + 0xffffffffull;
			if (nd && b[8 + 16 * (nd - 1) + 12] == (mapped ? LBAS_MAPPED : LBAS_DEALLOCATED) &&
			    get_be64(&b[8 + 16 * (nd - 1)]) + get_be32(&b[8 + 16 * (nd - 1) + 8]) == first &&
			    (uint64_t)get_be32(&b[8 + 16 * (nd - 1) + 8]) + (last - first) <= 0xffffffffull) {
				/* Same status as the previous descriptor: extend it. */
				put_be32(&b[8 + 16 * (nd - 1) + 8],
					 get_be32(&b[8 + 16 * (nd - 1) + 8]) + (uint32_t)(last - first));
			} else {
				put_be64(d, first);
				put_be32(d + 8, (uint32_t)(last - first));
				d[12] = mapped ? LBAS_MAPPED : LBAS_DEALLOCATED;
				nd++;
			}
			pos = last * bs;
		}
	}
	put_be32(&b[0], 4 + 16 * nd);           /* PARAMETER DATA LENGTH */
	scsi_data_in_done(cmd, 8 + 16 * nd, alloc);
}

/* SBC-3 5.12 / 5.13 READ DEFECT DATA (10) / (12): a virtual disk has no
 * defects.  The requested lists (PLIST / GLIST) are reported valid and empty,
 * in the requested format (an empty list is valid in every format). */
void sbc_read_defect_data(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool twelve = cdb[0] == OP_READ_DEFECT_DATA_12;
	uint8_t flags = twelve ? cdb[1] : cdb[2];
	uint32_t alloc = twelve ? get_be32(&cdb[6]) : get_be16(&cdb[7]);
	uint8_t *b;

	if (!(b = alloc_or_fail(cmd, 8)))
		return;
	/* PLISTV (bit 4), GLISTV (bit 3), DEFECT LIST FORMAT (bits 2-0);
	 * DEFECT LIST LENGTH 0. */
	b[1] = flags & 0x1f;
	scsi_data_in_done(cmd, twelve ? 8 : 4, alloc);
}
