/* iscsi_task.c - SCSI Command, Data-Out, R2T, Data-In and SCSI Response
 * (RFC 7143 11.3, 11.4, 11.7, 11.8) for full feature phase.
 *
 * An iscsi_task embeds the struct scsi_cmd the SCSI core executes; the core
 * never sees a PDU.  Life of a task:
 *   HELD  (non-immediate, CmdSN ahead of ExpCmdSN: waits for the gap)
 *   DATA  (delivered; collecting unsolicited / solicited Data-Out, R2Ts out)
 *   EXEC  (scsi_cmd_execute() ... done())
 *   DONE  (response queued; freed when the last Data-In PDU left)
 * Aborted tasks (TMF, connection loss) finish their backend I/O but send
 * nothing (SAM-5 7.x: the TMF response follows the aborted tasks' end).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "iscsi_internal.h"

#define TASK_FREE_MAX 128

/* ================================================================ alloc/free */

struct iscsi_task *task_alloc(struct iscsi_conn *c)
{
	struct iscsi_task *t = c->task_free;

	if (t) {
		c->task_free = t->next;
		c->ntask_free--;
	} else {
		t = malloc(sizeof(*t));
		if (!t)
			return NULL;
	}
	memset(t, 0, sizeof(*t));
	t->conn = c;
	t->refs = 1;
	t->all_next = c->tasks;
	if (c->tasks)
		c->tasks->all_prev = t;
	c->tasks = t;
	c->ntasks++;
	return t;
}

static void task_unlink_itt(struct iscsi_conn *c, struct iscsi_task *t)
{
	if (t->in_table) {
		iscsi_itt_del(&c->itts, &t->node);
		t->in_table = false;
	}
}

static void task_free(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	task_unlink_itt(c, t);
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		c->tasks = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	c->ntasks--;
	if (t->counted) {
		c->sess.active--;
		t->counted = false;
	}
	if (t->buf)
		bstore_buf_free(t->buf);
	scsi_cmd_release(&t->cmd);
	if (t->has_lu_ref && t->cmd.lu)
		scsi_lu_put(t->cmd.lu);
	if (c->ntask_free < TASK_FREE_MAX) {
		t->next = c->task_free;
		c->task_free = t;
		c->ntask_free++;
	} else {
		free(t);
	}
}

void task_put(struct iscsi_task *t)
{
	if (--t->refs == 0)
		task_free(t);
}

void task_free_cache(struct iscsi_conn *c)
{
	while (c->task_free) {
		struct iscsi_task *t = c->task_free;
		c->task_free = t->next;
		free(t);
	}
	c->ntask_free = 0;
}

/* The task will send nothing more: leave the window and the ITT table. */
static void task_finish(struct iscsi_conn *c, struct iscsi_task *t)
{
	task_unlink_itt(c, t);
	if (t->counted) {
		c->sess.active--;
		t->counted = false;
	}
	t->state = TASK_DONE;
	task_put(t);
}

/* ================================================================ responses */

static void task_respond(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct scsi_cmd *cmd = &t->cmd;
	uint8_t rflags;
	uint32_t resid, want, send_len = 0;
	bool collapse;
	struct iscsi_tx *tx;

	/* RFC 7143 11.4.5: residuals compare EDTL with what the command
	 * moved: for writes the CDB's transfer length, for reads the bytes
	 * the device server produced (possibly less than the allocation
	 * length, SPC-4 4.2.5.6). */
	if (cmd->xfer_is_write)
		want = cmd->xfer_len;
	else
		want = cmd->data_in_len;
	iscsi_residual(t->edtl, want, &rflags, &resid);

	if ((t->flags & ISCSI_CMD_READ) && cmd->data_in && cmd->data_in_len)
		send_len = cmd->data_in_len < t->edtl ? cmd->data_in_len : t->edtl;
	/* Phase collapse (RFC 7143 11.7.3): status rides on the last Data-In
	 * only when there is no sense data to carry. */
	collapse = send_len && cmd->status == SAM_STAT_GOOD && cmd->sense_len == 0;

	if (send_len) {
		uint32_t mxd = c->sess.p.max_xmit_dsl ? c->sess.p.max_xmit_dsl : 8192;
		uint32_t burst = c->sess.p.max_burst ? c->sess.p.max_burst : 262144;
		uint32_t off = 0, in_burst = 0;

		while (off < send_len) {
			uint32_t len = send_len - off;
			bool last, final;

			if (len > mxd)
				len = mxd;
			if (len > burst - in_burst)
				len = burst - in_burst;
			last = off + len == send_len;
			in_burst += len;
			/* F closes a Data-In sequence: MaxBurstLength bounds one
			 * (RFC 7143 13.13). */
			final = last || in_burst == burst;
			if (in_burst == burst)
				in_burst = 0;
			tx = conn_tx_get(c);
			if (!tx) {
				conn_close(c, "out of memory");
				return;
			}
			tx->data = cmd->data_in + off;
			tx->dlen = len;
			tx->task = t;
			t->refs++;
			iscsi_build_data_in((struct iscsi_bhs *)tx->hdr, t->node.itt, 0,
					    t->datain_sn++, off, len, final, last && collapse,
					    cmd->status, rflags, resid);
			conn_tx_queue(c, tx, last && collapse);
			off += len;
		}
	}
	if (!collapse) {
		struct iscsi_bhs *h;

		tx = conn_tx_get(c);
		if (!tx) {
			conn_close(c, "out of memory");
			return;
		}
		if (cmd->sense_len) {
			/* RFC 7143 11.4.7: SenseLength (2 bytes) + sense data. */
			uint32_t sl = cmd->sense_len > SCSI_SENSE_MAX ? SCSI_SENSE_MAX : cmd->sense_len;
			iscsi_put16(tx->inl, (uint16_t)sl);
			memcpy(tx->inl + 2, cmd->sense, sl);
			tx->data = tx->inl;
			tx->dlen = 2 + sl;
		}
		h = (struct iscsi_bhs *)tx->hdr;
		iscsi_build_scsi_rsp(h, t->node.itt, cmd->status, rflags, resid, tx->dlen);
		/* ExpDataSN (11.4.8): R2T and Data-In PDUs sent for the command. */
		iscsi_put32(h->b + 36, t->datain_sn + t->xfer.r2t_sent);
		conn_tx_queue(c, tx, true);
	}
	task_finish(c, t);
}

static void task_scsi_done(struct scsi_cmd *cmd)
{
	struct iscsi_task *t = container_of(cmd, struct iscsi_task, cmd);
	struct iscsi_conn *c = t->conn;

	c->busy++;
	if (t->aborted) {
		/* SAM-5 7.1: an aborted task sends no status. */
		if (t->tmf)
			tmf_task_finished(c, t);
		task_finish(c, t);
	} else {
		task_respond(c, t);
	}
	c->busy--;
	conn_check(c);
}

static void task_execute(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct scsi_cmd *cmd = &t->cmd;
	uint64_t lun = iscsi_lun_decode(t->lun_raw);

	t->state = TASK_EXEC;
	cmd->lun = lun;
	cmd->lu = NULL;
	if (lun != UINT64_MAX && c->sess.target)
		cmd->lu = reg_target_lun_get(c->sess.target, lun);
	t->has_lu_ref = cmd->lu != NULL;
	cmd->nexus = &c->sess.nexus;
	cmd->r = c->r;
	cmd->task_attr = t->flags & ISCSI_CMD_ATTR_MASK;
	cmd->data_out = t->buf;
	cmd->data_out_len = t->buf ? t->xfer.received : 0;
	cmd->expected_len = t->edtl;
	cmd->done = task_scsi_done;
	cmd->fabric_priv = t;
	scsi_cmd_execute(cmd);
}

/* Answer a command that was never executed with a prepared status. */
static void task_prefail_respond(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct scsi_cmd *cmd = &t->cmd;

	t->state = TASK_EXEC;
	cmd->status = t->pf_status;
	if (t->pf_status == SAM_STAT_CHECK_CONDITION)
		scsi_set_sense(cmd, t->pf_key, t->pf_asc, t->pf_ascq);
	cmd->xfer_is_write = (t->flags & ISCSI_CMD_WRITE) != 0;
	cmd->xfer_len = t->edtl;      /* nothing to report as residual */
	cmd->data_in_len = 0;
	if (!cmd->xfer_is_write)
		cmd->xfer_len = 0;
	task_respond(c, t);
}

/* ================================================================ R2T */

static void task_send_r2ts(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct iscsi_r2t r;

	/* RFC 7143 11.8: up to MaxOutstandingR2T bursts of at most
	 * MaxBurstLength each, beyond the unsolicited part. */
	while (iscsi_xfer_next_r2t(&t->xfer, conn_new_ttt(c), &r)) {
		struct iscsi_tx *tx = conn_tx_get(c);
		if (!tx) {
			conn_close(c, "out of memory");
			return;
		}
		iscsi_build_r2t((struct iscsi_bhs *)tx->hdr, t->node.itt, t->lun_raw, r.ttt,
				t->xfer.r2tsn - 1, r.offset, r.len);
		conn_tx_queue(c, tx, false);
	}
}

void task_deliver(struct iscsi_conn *c, struct iscsi_task *t)
{
	if (t->tombstone || t->aborted) {
		task_finish(c, t);
		return;
	}
	if (t->prefail) {
		task_prefail_respond(c, t);
		return;
	}
	if (t->buf && !iscsi_xfer_complete(&t->xfer)) {
		t->state = TASK_DATA;
		task_send_r2ts(c, t);
		return;
	}
	task_execute(c, t);
}

bool task_abort(struct iscsi_conn *c, struct iscsi_task *t)
{
	switch (t->state) {
	case TASK_HELD:
		/* Keeps its CmdSN slot (RFC 7143 4.2.2.1: an aborted command's
		 * CmdSN still counts as received). */
		t->tombstone = true;
		task_unlink_itt(c, t);
		return false;
	case TASK_DATA:
		task_finish(c, t);
		return false;
	case TASK_EXEC:
		t->aborted = true;
		task_unlink_itt(c, t);
		return true;
	case TASK_DONE:
		return false;
	}
	return false;
}

/* ================================================================ SCSI Command */

static void set_prefail(struct iscsi_task *t, uint8_t status, uint8_t key, uint8_t asc, uint8_t ascq)
{
	t->prefail = true;
	t->pf_status = status;
	t->pf_key = key;
	t->pf_asc = asc;
	t->pf_ascq = ascq;
}

/* RFC 7143 11.2.2: AHS list; type 1 = extended CDB, type 2 = expected
 * bidirectional read data length. */
static int parse_ahs(struct iscsi_conn *c, struct iscsi_task *t, bool *bidi)
{
	uint32_t off = 0;

	while (off + 4 <= c->ahs_len) {
		uint16_t alen = iscsi_get16(c->ahs + off);
		uint8_t type = c->ahs[off + 2];
		uint32_t total = iscsi_pad4(3u + alen);

		if (off + total > c->ahs_len)
			return -1;
		if (type == 1) {
			/* AHSLength counts the reserved byte plus CDB bytes 16.. */
			uint32_t n = alen ? alen - 1u : 0;
			if (n > sizeof(t->ext_cdb))
				return -1;
			memcpy(t->ext_cdb, c->ahs + off + 4, n);
			t->ext_cdb_len = (uint8_t)n;
		} else if (type == 2) {
			*bidi = true;
		} else {
			return -1;
		}
		off += total;
	}
	return 0;
}

static uint8_t cdb_len_of(uint8_t op)
{
	switch (op >> 5) {
	case 0:
		return 6;
	case 1:
	case 2:
		return 10;
	case 4:
		return 16;
	case 5:
		return 12;
	default:
		return 16;
	}
}

void task_cmd_header(struct iscsi_conn *c)
{
	const struct iscsi_bhs *h = &c->bhs;
	uint32_t itt = iscsi_bhs_itt(h);
	uint8_t flags = h->b[1];
	uint32_t edtl = iscsi_get32(h->b + 20);
	uint32_t cmdsn = iscsi_get32(h->b + 24);
	bool imm = iscsi_bhs_immediate(h);
	bool bidi = (flags & ISCSI_CMD_READ) && (flags & ISCSI_CMD_WRITE);
	struct iscsi_session *s = &c->sess;
	struct iscsi_task *t;

	if (s->type == ISCSI_SESSION_DISCOVERY) {
		/* RFC 7143 4.3: a discovery session carries Text, NOP and
		 * Logout only. */
		c->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
		return;
	}
	/* RFC 7143 4.2.2.1: out-of-window commands are silently ignored. */
	if (!imm && sess_cmdsn_check(s, cmdsn) == SN_DROP) {
		log_debug("iscsi: %s: CmdSN %u outside [%u, %u], dropped", c->peer_str, cmdsn,
			  s->exp_cmdsn, s->max_cmdsn);
		return;
	}
	if (iscsi_itt_find(&c->itts, itt)) {
		c->rx_reject = ISCSI_REJECT_TASK_IN_PROGRESS;
		return;
	}
	/* Immediate data must fit the negotiated rules (RFC 7143 13.11,
	 * 13.14) and the EDTL. */
	if (c->dlen && (!(flags & ISCSI_CMD_WRITE) || !s->p.immediate_data || c->dlen > edtl ||
			c->dlen > s->p.first_burst)) {
		c->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
		return;
	}
	t = task_alloc(c);
	if (!t) {
		conn_close(c, "out of memory");
		return;
	}
	t->node.itt = itt;
	t->cmdsn = cmdsn;
	t->edtl = edtl;
	t->flags = flags;
	t->immediate = imm;
	t->lun_raw = iscsi_bhs_lun_raw(h);
	t->state = TASK_HELD;
	memcpy(t->cmd.cdb, h->b + 32, 16);
	t->cmd.cdb_len = cdb_len_of(h->b[32]);
	if (c->ahs_len) {
		if (parse_ahs(c, t, &bidi) < 0) {
			task_finish(c, t);
			c->rx_reject = ISCSI_REJECT_INVALID_PDU_FIELD;
			return;
		}
		if (t->ext_cdb_len) {
			memcpy(t->cmd.cdb + 16, t->ext_cdb, t->ext_cdb_len);
			t->cmd.cdb_len = (uint8_t)(16 + t->ext_cdb_len);
		}
	}
	iscsi_itt_add(&c->itts, &t->node);
	t->in_table = true;

	if (bidi) {
		/* No bidirectional commands in our SCSI core. */
		set_prefail(t, SAM_STAT_CHECK_CONDITION, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	} else if ((flags & ISCSI_CMD_WRITE) && edtl > ISCSI_MAX_EDTL) {
		/* Bound memory: we collect a write before executing it. */
		set_prefail(t, SAM_STAT_CHECK_CONDITION, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	} else if (imm && c->ntasks > 2 * s->depth + 32) {
		set_prefail(t, SAM_STAT_TASK_SET_FULL, 0, 0, 0);
	} else if ((flags & ISCSI_CMD_WRITE) && edtl) {
		t->buf = bstore_buf_alloc(edtl);
		if (!t->buf) {
			set_prefail(t, SAM_STAT_BUSY, 0, 0, 0);
		} else {
			t->buf_len = edtl;
			/* RFC 7143 11.3.1 (F bit): F=1 on the command means no
			 * unsolicited Data-Out follows; the rest is solicited. */
			bool no_unsol = s->p.initial_r2t || (flags & ISCSI_FLAG_FINAL);
			iscsi_xfer_init(&t->xfer, edtl, c->dlen, no_unsol, s->p.first_burst,
					s->p.max_burst, s->p.max_outstanding_r2t);
		}
	}
	c->rx_task = t;
	c->rx_task_is_cmd = true;
	c->dst = (c->dlen && t->buf) ? t->buf : NULL;
}

void task_cmd_complete(struct iscsi_conn *c, bool digest_ok)
{
	struct iscsi_task *t = c->rx_task;
	struct iscsi_session *s = &c->sess;

	c->rx_task = NULL;
	if (!t || !c->rx_task_is_cmd)
		return;
	if (!digest_ok) {
		/* Discarded (the Reject went out); keep its CmdSN slot. */
		t->tombstone = true;
		task_unlink_itt(c, t);
	}
	if (t->immediate) {
		/* RFC 7143 3.2.2.1: immediate commands are delivered at once and
		 * do not advance ExpCmdSN. */
		task_deliver(c, t);
		return;
	}
	if (t->cmdsn == s->exp_cmdsn) {
		s->exp_cmdsn++;
		t->counted = !t->tombstone;
		if (t->counted)
			s->active++;
		task_deliver(c, t);
		sess_cmdsn_advance(c);
	} else {
		sess_hold(c, t);
	}
}

/* ================================================================ Data-Out */

void task_dout_header(struct iscsi_conn *c)
{
	const struct iscsi_bhs *h = &c->bhs;
	uint32_t itt = iscsi_bhs_itt(h);
	uint32_t ttt = iscsi_get32(h->b + 20);
	uint32_t datasn = iscsi_get32(h->b + 36);
	uint32_t offset = iscsi_get32(h->b + 40);
	bool final = h->b[1] & ISCSI_FLAG_FINAL;
	struct iscsi_itt_node *n = iscsi_itt_find(&c->itts, itt);
	struct iscsi_task *t;
	bool seq_done = false;
	enum iscsi_dout_verdict v;

	c->rx_seq_done = false;
	if (!n) {
		/* Data for a task we already answered or aborted: discard. */
		log_debug("iscsi: %s: Data-Out for unknown ITT 0x%x", c->peer_str, itt);
		return;
	}
	t = container_of(n, struct iscsi_task, node);
	if (!t->buf || t->prefail || (t->state != TASK_HELD && t->state != TASK_DATA))
		return;
	v = iscsi_xfer_data_out(&t->xfer, ttt, datasn, offset, c->dlen, final, &seq_done);
	c->rx_task = t;
	c->rx_task_is_cmd = false;
	if (v != ISCSI_DOUT_OK) {
		log_warn("iscsi: %s: bad Data-Out (ITT 0x%x TTT 0x%x DataSN %u offset %u len %u): %d",
			 c->peer_str, itt, ttt, datasn, offset, c->dlen, (int)v);
		c->rx_bad_dout = true;
		return;
	}
	c->rx_seq_done = seq_done;
	c->dst = t->buf + offset;
}

void task_dout_complete(struct iscsi_conn *c, bool digest_ok)
{
	struct iscsi_task *t = c->rx_task;

	c->rx_task = NULL;
	if (!t || c->rx_task_is_cmd)
		return;
	if (!digest_ok || c->rx_bad_dout) {
		/* ERL 0 has no way to recover the sequence (RFC 7143 7.12):
		 * reject the PDU and give the command up; the initiator fails
		 * it on the Reject (the ITT is in the rejected header). */
		if (c->rx_bad_dout)
			conn_send_reject(c, ISCSI_REJECT_INVALID_PDU_FIELD, &c->bhs);
		task_abort(c, t);
		return;
	}
	if (t->state != TASK_DATA)
		return;      /* held: data accumulates until delivery */
	if (c->rx_seq_done)
		task_send_r2ts(c, t);
	if (iscsi_xfer_complete(&t->xfer))
		task_execute(c, t);
}
