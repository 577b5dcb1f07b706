/* iscsi_pdu.c - iSCSI PDU codec: BHS validation, target PDU builders, SAM LUN
 * encoding and text key=value segments (RFC 7143 sections 6.1 and 11).
 *
 * Everything here is a pure function on caller-owned bytes.  Builders expect
 * a BHS the caller may or may not have zeroed: each one clears it first so a
 * reused buffer never leaks stale fields into reserved bytes (RFC 7143 11.2:
 * reserved fields MUST be sent as 0).
 */
#include <string.h>

#include "iscsi_pdu.h"

/* ---------------------------------------------------------------- BHS check */

enum iscsi_pdu_verdict iscsi_bhs_check(const struct iscsi_bhs *h, uint32_t max_recv_dsl,
				       uint8_t *reject_reason)
{
	uint8_t op = iscsi_bhs_opcode(h);
	uint32_t dlen = iscsi_bhs_dlength(h);
	uint8_t dummy;

	if (!reject_reason)
		reject_reason = &dummy;
	*reject_reason = 0;

	/* The data segment is bounded by our declared MaxRecvDataSegmentLength
	 * (RFC 7143 13.12; 8192 during login, 13.12/6.1).  A peer exceeding it
	 * has broken the negotiated contract; the only way to resynchronise
	 * would be to read and discard up to 16 MiB of data we never agreed to
	 * take, so treat it as a framing error and drop the connection (the
	 * ERL 0 recovery of RFC 7143 7.1.4 / 7.12: connection failure). */
	if (dlen > max_recv_dsl)
		return ISCSI_PDU_FATAL;

	switch (op) {
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_SCSI_CMD:
	case ISCSI_OP_LOGIN_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_DATA_OUT:
		break;
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		/* RFC 7143 11.5 / 11.14: these PDUs carry no data segment.
		 * The framing is intact (we know how much to skip), so the
		 * PDU is rejected rather than the connection dropped. */
		if (dlen) {
			*reject_reason = ISCSI_REJECT_PROTOCOL_ERROR;
			return ISCSI_PDU_REJECT;
		}
		break;
	case ISCSI_OP_SNACK_REQ:
		/* We only support ErrorRecoveryLevel 0, where SNACK is not
		 * used (RFC 7143 7.1.5 / 11.16); reason 0x03 "SNACK Reject"
		 * (11.17.1) lets the initiator fall back to its ERL 0
		 * recovery instead of waiting for a retransmission. */
		*reject_reason = ISCSI_REJECT_SNACK_REJECT;
		return ISCSI_PDU_REJECT;
	default:
		/* Target opcodes, vendor-specific (0x1c-0x1e) and undefined
		 * codes: RFC 7143 11.17.1 reason 0x05 "Command not supported". */
		*reject_reason = ISCSI_REJECT_CMD_NOT_SUPPORTED;
		return ISCSI_PDU_REJECT;
	}

	/* Only the SCSI Command PDU defines AHS (RFC 7143 11.2.2: extended CDB
	 * and bidirectional read length).  TotalAHSLength is at most 1020
	 * bytes, so it never threatens framing: reject, do not drop. */
	if (iscsi_bhs_ahs_len(h) && op != ISCSI_OP_SCSI_CMD) {
		*reject_reason = ISCSI_REJECT_PROTOCOL_ERROR;
		return ISCSI_PDU_REJECT;
	}
	return ISCSI_PDU_OK;
}

/* ---------------------------------------------------------------- LUNs */

/* SAM-5 4.6.1: the first level of the 8-byte LUN is bytes 0-1; bits 7-6 of
 * byte 0 select the address method.  We support single-level LUNs only, so
 * the remaining six bytes (second to fourth level) must be zero. */
uint64_t iscsi_lun_decode(uint64_t raw)
{
	uint8_t b0 = raw >> 56;
	uint8_t b1 = (raw >> 48) & 0xff;

	if (raw & 0x0000ffffffffffffull)
		return UINT64_MAX;
	switch (b0 >> 6) {
	case 0x0:
		/* Peripheral device addressing (SAM-5 4.6.5): byte 0 bits
		 * 5-0 are the bus identifier; 0 means "this level". */
		if (b0 & 0x3f)
			return UINT64_MAX;
		return b1;
	case 0x1:
		/* Flat space addressing (SAM-5 4.6.6): 14-bit LUN. */
		return (uint64_t)(b0 & 0x3f) << 8 | b1;
	default:
		/* Logical unit addressing (10b) and extended addressing (11b,
		 * incl. well-known LUNs) are not supported. */
		return UINT64_MAX;
	}
}

uint64_t iscsi_lun_encode(uint64_t lun)
{
	if (lun < 256)
		return lun << 48;                      /* peripheral, bus 0 */
	if (lun < 16384)
		return (0x4000ull | lun) << 48;        /* flat space */
	return UINT64_MAX;                             /* not representable here */
}

/* ---------------------------------------------------------------- builders */

static void bhs_start(struct iscsi_bhs *h, uint8_t opcode, uint8_t flags, uint32_t dlen)
{
	memset(h->b, 0, sizeof(h->b));
	h->b[0] = opcode;
	h->b[1] = flags;
	iscsi_bhs_set_dlength(h, dlen);
}

/* RFC 7143 11.4: SCSI Response.  Byte 1 bit 7 is always 1; Response 0x00
 * "Command Completed at Target" (we never use the service-response codes: a
 * failure is reported with a SCSI status); the data segment holds the
 * 2-byte SenseLength plus sense data (sense_dlen is the total).  The
 * residual count (44) is only meaningful with the O or U bit; ExpDataSN (36)
 * and Bidirectional Read Residual Count (40) are left for the caller. */
void iscsi_build_scsi_rsp(struct iscsi_bhs *h, uint32_t itt, uint8_t status,
			  uint8_t flags_resid, uint32_t residual, uint32_t sense_dlen)
{
	uint8_t f = flags_resid & (ISCSI_RSP_BIDI_OVERFLOW | ISCSI_RSP_BIDI_UNDERFLOW |
				   ISCSI_RSP_OVERFLOW | ISCSI_RSP_UNDERFLOW);

	bhs_start(h, ISCSI_OP_SCSI_RSP, ISCSI_FLAG_FINAL | f, sense_dlen);
	h->b[2] = 0x00;
	h->b[3] = status;
	iscsi_put32(h->b + 16, itt);
	if (f & (ISCSI_RSP_OVERFLOW | ISCSI_RSP_UNDERFLOW))
		iscsi_put32(h->b + 44, residual);
}

/* RFC 7143 11.7: SCSI Data-In.  S (status) requires F (11.7.1: "If the S bit
 * is set, the F bit MUST also be set"); O/U and the residual count are only
 * valid with S.  The A bit is not used at ERL 0, so the Target Transfer Tag
 * is 0xffffffff (11.7.4). */
void iscsi_build_data_in(struct iscsi_bhs *h, uint32_t itt, uint64_t lun_raw, uint32_t datasn,
			 uint32_t offset, uint32_t len, bool final, bool with_status,
			 uint8_t status, uint8_t flags_resid, uint32_t residual)
{
	uint8_t f = 0;

	if (final || with_status)
		f |= ISCSI_FLAG_FINAL;
	if (with_status) {
		f |= ISCSI_DATAIN_STATUS;
		f |= flags_resid & (ISCSI_RSP_OVERFLOW | ISCSI_RSP_UNDERFLOW);
	}
	bhs_start(h, ISCSI_OP_DATA_IN, f, len);
	if (with_status)
		h->b[3] = status;
	iscsi_put64(h->b + 8, lun_raw);
	iscsi_put32(h->b + 16, itt);
	iscsi_put32(h->b + 20, ISCSI_RSVD_TAG);
	iscsi_put32(h->b + 36, datasn);
	iscsi_put32(h->b + 40, offset);
	if (with_status && (f & (ISCSI_RSP_OVERFLOW | ISCSI_RSP_UNDERFLOW)))
		iscsi_put32(h->b + 44, residual);
}

/* RFC 7143 11.8: Ready To Transfer.  F is always 1. */
void iscsi_build_r2t(struct iscsi_bhs *h, uint32_t itt, uint64_t lun_raw, uint32_t ttt,
		     uint32_t r2tsn, uint32_t offset, uint32_t len)
{
	bhs_start(h, ISCSI_OP_R2T, ISCSI_FLAG_FINAL, 0);
	iscsi_put64(h->b + 8, lun_raw);
	iscsi_put32(h->b + 16, itt);
	iscsi_put32(h->b + 20, ttt);
	iscsi_put32(h->b + 36, r2tsn);
	iscsi_put32(h->b + 40, offset);
	iscsi_put32(h->b + 44, len);
}

/* RFC 7143 11.19: NOP-In.  A reply to a NOP-Out echoes its ITT with TTT
 * 0xffffffff; a target ping uses ITT 0xffffffff and a real TTT. */
void iscsi_build_nop_in(struct iscsi_bhs *h, uint32_t itt, uint32_t ttt, uint64_t lun_raw,
			uint32_t dlen)
{
	bhs_start(h, ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL, dlen);
	iscsi_put64(h->b + 8, lun_raw);
	iscsi_put32(h->b + 16, itt);
	iscsi_put32(h->b + 20, ttt);
}

/* RFC 7143 11.6: Task Management Function Response, response in byte 2. */
void iscsi_build_tmf_rsp(struct iscsi_bhs *h, uint32_t itt, uint8_t response)
{
	bhs_start(h, ISCSI_OP_TMF_RSP, ISCSI_FLAG_FINAL, 0);
	h->b[2] = response;
	iscsi_put32(h->b + 16, itt);
}

/* RFC 7143 11.15: Logout Response; Time2Wait (40) and Time2Retain (42). */
void iscsi_build_logout_rsp(struct iscsi_bhs *h, uint32_t itt, uint8_t response,
			    uint16_t time2wait, uint16_t time2retain)
{
	bhs_start(h, ISCSI_OP_LOGOUT_RSP, ISCSI_FLAG_FINAL, 0);
	h->b[2] = response;
	iscsi_put32(h->b + 16, itt);
	iscsi_put16(h->b + 40, time2wait);
	iscsi_put16(h->b + 42, time2retain);
}

/* RFC 7143 11.17: Reject.  The data segment is the complete rejected BHS
 * (dlen 48); the tag field (16) is 0xffffffff.  DataSN/R2TSN (36) is only
 * used at ERL > 0 and stays 0. */
void iscsi_build_reject(struct iscsi_bhs *h, uint8_t reason, uint32_t dlen)
{
	bhs_start(h, ISCSI_OP_REJECT, ISCSI_FLAG_FINAL, dlen);
	h->b[2] = reason;
	iscsi_put32(h->b + 16, ISCSI_RSVD_TAG);
}

/* RFC 7143 11.11: Text Response.  F and C are mutually exclusive (11.11.1/2:
 * a response with C=1 MUST have F=0), so C wins if both are asked for. */
void iscsi_build_text_rsp(struct iscsi_bhs *h, uint32_t itt, uint32_t ttt, bool final,
			  bool cont, uint64_t lun_raw, uint32_t dlen)
{
	uint8_t f = cont ? ISCSI_LOGIN_CONTINUE : (final ? ISCSI_FLAG_FINAL : 0);

	bhs_start(h, ISCSI_OP_TEXT_RSP, f, dlen);
	iscsi_put64(h->b + 8, lun_raw);
	iscsi_put32(h->b + 16, itt);
	iscsi_put32(h->b + 20, ttt);
}

/* RFC 7143 11.13: Login Response.  flags carries T/C/CSG/NSG as the login
 * layer decided; Version-max and Version-active are 0x00 (11.13.3/4: the
 * only version defined); ISID (8-13) and ITT are echoed from the request;
 * TSIH is the caller's (0 on failure, the new session's in the final
 * response); Status-Class/Detail at 36/37. */
void iscsi_build_login_rsp(struct iscsi_bhs *h, const struct iscsi_bhs *req, uint8_t flags,
			   uint16_t tsih, uint16_t status, uint32_t dlen)
{
	uint8_t isid[6];
	uint32_t itt = iscsi_bhs_itt(req);

	memcpy(isid, req->b + 8, sizeof(isid));  /* req may alias h */
	/* A response with C=1 must not have T=1 (11.13.1). */
	if (flags & ISCSI_LOGIN_CONTINUE)
		flags &= ~ISCSI_LOGIN_TRANSIT;
	bhs_start(h, ISCSI_OP_LOGIN_RSP, flags, dlen);
	h->b[2] = 0x00;
	h->b[3] = 0x00;
	memcpy(h->b + 8, isid, sizeof(isid));
	iscsi_put16(h->b + 14, tsih);
	iscsi_put32(h->b + 16, itt);
	h->b[36] = status >> 8;
	h->b[37] = status & 0xff;
}

/* RFC 7143 11.9: Asynchronous Message.  ITT (16) is 0xffffffff; AsyncEvent at
 * 36, AsyncVCode 37 (0), Parameter1-3 at 38/40/42.  The LUN field is only
 * valid for event 0 (SCSI async event) and stays 0 here. */
void iscsi_build_async(struct iscsi_bhs *h, uint8_t event, uint16_t p1, uint16_t p2,
		       uint16_t p3, uint32_t dlen)
{
	bhs_start(h, ISCSI_OP_ASYNC_MSG, ISCSI_FLAG_FINAL, dlen);
	iscsi_put32(h->b + 16, ISCSI_RSVD_TAG);
	h->b[36] = event;
	iscsi_put16(h->b + 38, p1);
	iscsi_put16(h->b + 40, p2);
	iscsi_put16(h->b + 42, p3);
}

void iscsi_bhs_set_sn(struct iscsi_bhs *h, uint32_t statsn, uint32_t expcmdsn, uint32_t maxcmdsn)
{
	iscsi_put32(h->b + 24, statsn);
	iscsi_put32(h->b + 28, expcmdsn);
	iscsi_put32(h->b + 32, maxcmdsn);
}

/* ---------------------------------------------------------------- text keys */

/* RFC 7143 6.1: key-name is one or more of letters, digits, '.', '-', '+',
 * '@', '_', at most 63 bytes.  '#' is added because RFC 7143 13.22 defines public
 * extension keys as "X#<IANA-registered string>". */
static bool key_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '+' || c == '@' || c == '_' || c == '#';
}

void iscsi_kv_iter_init(struct iscsi_kv_iter *it, const void *data, size_t len)
{
	it->p = data;
	it->end = data ? (const char *)data + len : NULL;
	it->key[0] = '\0';
	it->val[0] = '\0';
}

int iscsi_kv_next(struct iscsi_kv_iter *it, const char **key, const char **val)
{
	const char *nul, *eq;
	size_t klen, vlen;

	if (!it->p)
		return it->end ? -1 : 0;  /* sticky error / empty segment */
	/* Tolerate empty pairs and NUL padding: some initiators count the pad
	 * bytes in DataSegmentLength, and an empty string carries no key. */
	while (it->p < it->end && *it->p == '\0')
		it->p++;
	if (it->p >= it->end)
		return 0;

	/* RFC 7143 6.1: every pair, including the last, is NUL-terminated. */
	nul = memchr(it->p, '\0', (size_t)(it->end - it->p));
	if (!nul)
		goto bad;
	eq = memchr(it->p, '=', (size_t)(nul - it->p));
	if (!eq)
		goto bad;
	klen = (size_t)(eq - it->p);
	vlen = (size_t)(nul - eq - 1);
	if (klen == 0 || klen >= sizeof(it->key) || vlen >= sizeof(it->val))
		goto bad;
	for (size_t i = 0; i < klen; i++)
		if (!key_char_ok((unsigned char)it->p[i]))
			goto bad;
	memcpy(it->key, it->p, klen);
	it->key[klen] = '\0';
	memcpy(it->val, eq + 1, vlen);
	it->val[vlen] = '\0';
	it->p = nul + 1;
	if (key)
		*key = it->key;
	if (val)
		*val = it->val;
	return 1;
bad:
	/* Make the error sticky: the rest of the segment cannot be trusted. */
	it->p = NULL;
	it->end = it->key;  /* any non-NULL marker: "failed", see top of function */
	return -1;
}

int iscsi_kv_append(struct iscsi_kv_buf *b, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	size_t need = kl + 1 + vl + 1;

	if (!b->data || b->len > b->cap || need > b->cap - b->len)
		return -1;
	memcpy(b->data + b->len, key, kl);
	b->data[b->len + kl] = '=';
	memcpy(b->data + b->len + kl + 1, val, vl);
	b->data[b->len + kl + 1 + vl] = '\0';
	b->len += need;
	return 0;
}
