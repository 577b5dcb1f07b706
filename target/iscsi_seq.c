/* iscsi_seq.c - the iSCSI fabric's pure sequencing logic: CmdSN window,
 * residual counts, Data-Out/R2T bookkeeping and the ITT table.  No I/O, no
 * allocation: unit tested in tests/unit/test_iscsi_session.c. */
#include <stddef.h>

#include "iscsi_internal.h"

uint32_t iscsi_max_cmdsn(uint32_t exp, uint32_t depth, uint32_t active)
{
	/* RFC 7143 4.2.2.1: MaxCmdSN = ExpCmdSN - 1 closes the window; the
	 * initiator then waits for a response that opens it again. */
	if (depth == 0 || active >= depth)
		return exp - 1;
	return exp + (depth - 1 - active);
}

void iscsi_residual(uint32_t edtl, uint32_t want, uint8_t *flags, uint32_t *resid)
{
	/* RFC 7143 11.4.5.1: Overflow: the command wanted more than the
	 * Expected Data Transfer Length, the residual is the part not
	 * transferred; Underflow: it moved less than EDTL, the residual is
	 * EDTL minus what was moved. */
	if (want > edtl) {
		*flags = ISCSI_RSP_OVERFLOW;
		*resid = want - edtl;
	} else if (want < edtl) {
		*flags = ISCSI_RSP_UNDERFLOW;
		*resid = edtl - want;
	} else {
		*flags = 0;
		*resid = 0;
	}
}

void iscsi_xfer_init(struct iscsi_xfer *x, uint32_t edtl, uint32_t immediate,
		     bool initial_r2t, uint32_t first_burst, uint32_t max_burst,
		     uint32_t max_r2t)
{
	uint32_t unsol = immediate;

	/* RFC 7143 13.13/13.14: with InitialR2T=No the initiator sends
	 * min(FirstBurstLength, EDTL) bytes unsolicited, immediate data
	 * included; with InitialR2T=Yes only the immediate data is unsolicited. */
	if (!initial_r2t) {
		unsol = first_burst < edtl ? first_burst : edtl;
		if (unsol < immediate)
			unsol = immediate;
	}
	if (unsol > edtl)
		unsol = edtl;
	*x = (struct iscsi_xfer){0};
	x->edtl = edtl;
	x->max_burst = max_burst ? max_burst : 262144;
	x->max_r2t = max_r2t == 0 ? 1 : (max_r2t > ISCSI_MAX_R2T_SLOTS ? ISCSI_MAX_R2T_SLOTS : max_r2t);
	x->unsol_len = unsol;
	x->unsol_next = immediate < unsol ? immediate : unsol;
	x->received = x->unsol_next;
	x->unsol_done = x->unsol_next >= unsol;
	x->next_offset = unsol;
}

bool iscsi_xfer_next_r2t(struct iscsi_xfer *x, uint32_t ttt, struct iscsi_r2t *out)
{
	uint32_t len;

	if (x->nr_r2t >= x->max_r2t || x->next_offset >= x->edtl)
		return false;
	for (unsigned i = 0; i < ISCSI_MAX_R2T_SLOTS; i++) {
		struct iscsi_r2t *r = &x->r2t[i];
		if (r->active)
			continue;
		/* RFC 7143 11.8.5: Desired Data Transfer Length is at most
		 * MaxBurstLength. */
		len = x->edtl - x->next_offset;
		if (len > x->max_burst)
			len = x->max_burst;
		*r = (struct iscsi_r2t){ .ttt = ttt, .offset = x->next_offset, .len = len,
					 .active = true };
		x->next_offset += len;
		x->nr_r2t++;
		x->r2tsn++;
		x->r2t_sent++;
		*out = *r;
		return true;
	}
	return false;
}

enum iscsi_dout_verdict iscsi_xfer_data_out(struct iscsi_xfer *x, uint32_t ttt, uint32_t datasn,
					    uint32_t offset, uint32_t len, bool final,
					    bool *seq_done)
{
	uint64_t end = (uint64_t)offset + len;

	*seq_done = false;
	if (ttt == ISCSI_RSVD_TAG) {
		/* Unsolicited data (RFC 7143 11.7.4: TTT 0xffffffff). */
		if (x->unsol_done)
			return ISCSI_DOUT_BAD_TTT;
		if (datasn != x->unsol_datasn)
			return ISCSI_DOUT_BAD_DATASN;
		/* DataPDUInOrder=Yes: continuously increasing offsets, no gaps
		 * or overlays (RFC 7143 13.15). */
		if (offset != x->unsol_next || end > x->unsol_len)
			return ISCSI_DOUT_BAD_OFFSET;
		if (final && end != x->unsol_len)
			return ISCSI_DOUT_BAD_FINAL;
		x->unsol_next = (uint32_t)end;
		x->unsol_datasn++;
		x->received += len;
		if (x->unsol_next == x->unsol_len)
			x->unsol_done = true;
		return ISCSI_DOUT_OK;
	}
	for (unsigned i = 0; i < ISCSI_MAX_R2T_SLOTS; i++) {
		struct iscsi_r2t *r = &x->r2t[i];
		if (!r->active || r->ttt != ttt)
			continue;
		/* RFC 7143 11.7.5: DataSN starts at 0 for every R2T sequence. */
		if (datasn != r->datasn)
			return ISCSI_DOUT_BAD_DATASN;
		if (offset != r->offset + r->received || end > (uint64_t)r->offset + r->len)
			return ISCSI_DOUT_BAD_OFFSET;
		if (final && end != (uint64_t)r->offset + r->len)
			return ISCSI_DOUT_BAD_FINAL;
		r->received += len;
		r->datasn++;
		x->received += len;
		if (r->received == r->len) {
			r->active = false;
			x->nr_r2t--;
			*seq_done = true;
		}
		return ISCSI_DOUT_OK;
	}
	return ISCSI_DOUT_BAD_TTT;
}

void iscsi_itt_add(struct iscsi_itt_table *t, struct iscsi_itt_node *n)
{
	unsigned h = n->itt % ISCSI_ITT_BUCKETS;
	n->next = t->b[h];
	t->b[h] = n;
	t->count++;
}

struct iscsi_itt_node *iscsi_itt_find(struct iscsi_itt_table *t, uint32_t itt)
{
	struct iscsi_itt_node *n;
	for (n = t->b[itt % ISCSI_ITT_BUCKETS]; n; n = n->next)
		if (n->itt == itt)
			return n;
	return NULL;
}

bool iscsi_itt_del(struct iscsi_itt_table *t, struct iscsi_itt_node *n)
{
	struct iscsi_itt_node **pp;
	for (pp = &t->b[n->itt % ISCSI_ITT_BUCKETS]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->count--;
			return true;
		}
	}
	return false;
}
