/* test_iscsi_pdu.c - BHS validation, target PDU builders (RFC 7143 section
 * 11), SAM-5 LUN encoding and text key=value segments (RFC 7143 6.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/iscsi_pdu.h"

/* ---------------------------------------------------------------- helpers */

static struct iscsi_bhs mk(uint8_t op, uint32_t dlen, uint8_t ahs_words)
{
	struct iscsi_bhs h;

	memset(&h, 0, sizeof(h));
	h.b[0] = op;
	h.b[4] = ahs_words;
	iscsi_bhs_set_dlength(&h, dlen);
	return h;
}

/* Fill with garbage so builders are proven to clear reserved bytes. */
static void dirty(struct iscsi_bhs *h)
{
	memset(h->b, 0xa5, sizeof(h->b));
}

static void assert_zero(const struct iscsi_bhs *h, int from, int to)
{
	for (int i = from; i < to; i++)
		if (h->b[i] != 0)
			fail_msg("byte %d is 0x%02x, expected 0", i, h->b[i]);
}

static uint32_t g32(const struct iscsi_bhs *h, int off) { return iscsi_get32(h->b + off); }
static uint16_t g16(const struct iscsi_bhs *h, int off) { return iscsi_get16(h->b + off); }

/* ---------------------------------------------------------------- accessors */

static void test_accessors(void **state)
{
	struct iscsi_bhs h = mk(ISCSI_OP_SCSI_CMD | ISCSI_FLAG_IMMEDIATE, 0x123456, 3);

	h.b[1] = 0xc1;
	iscsi_put64(h.b + 8, 0x0102030405060708ull);
	iscsi_put32(h.b + 16, 0xdeadbeef);
	assert_int_equal(iscsi_bhs_opcode(&h), ISCSI_OP_SCSI_CMD);
	assert_true(iscsi_bhs_immediate(&h));
	assert_int_equal(iscsi_bhs_flags(&h), 0xc1);
	assert_int_equal(iscsi_bhs_ahs_len(&h), 12);
	assert_int_equal(iscsi_bhs_dlength(&h), 0x123456);
	assert_int_equal(h.b[5], 0x12);
	assert_int_equal(h.b[7], 0x56);
	assert_true(iscsi_bhs_lun_raw(&h) == 0x0102030405060708ull);
	assert_int_equal(iscsi_bhs_itt(&h), 0xdeadbeef);
	assert_int_equal(h.b[16], 0xde);
	assert_int_equal(iscsi_pad4(0), 0);
	assert_int_equal(iscsi_pad4(1), 4);
	assert_int_equal(iscsi_pad4(4), 4);
	assert_int_equal(iscsi_pad4(5), 8);
	assert_true(iscsi_sn_lt(0xfffffff0u, 5));
	assert_false(iscsi_sn_lt(5, 0xfffffff0u));
	assert_true(iscsi_sn_le(7, 7));
}

/* ---------------------------------------------------------------- bhs_check */

static void test_check_valid_opcodes(void **state)
{
	static const uint8_t ok[] = { ISCSI_OP_NOP_OUT, ISCSI_OP_SCSI_CMD, ISCSI_OP_LOGIN_REQ,
				      ISCSI_OP_TEXT_REQ, ISCSI_OP_DATA_OUT };
	uint8_t reason = 0x77;

	for (size_t i = 0; i < sizeof(ok); i++) {
		struct iscsi_bhs h = mk(ok[i], 100, 0);

		assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_OK);
		h.b[0] |= ISCSI_FLAG_IMMEDIATE;
		assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_OK);
	}
	struct iscsi_bhs t = mk(ISCSI_OP_TMF_REQ | ISCSI_FLAG_IMMEDIATE, 0, 0);
	assert_int_equal(iscsi_bhs_check(&t, 8192, &reason), ISCSI_PDU_OK);
	t = mk(ISCSI_OP_LOGOUT_REQ, 0, 0);
	assert_int_equal(iscsi_bhs_check(&t, 8192, &reason), ISCSI_PDU_OK);
}

static void test_check_unknown_opcodes(void **state)
{
	for (unsigned op = 0; op < 64; op++) {
		struct iscsi_bhs h = mk((uint8_t)op, 0, 0);
		uint8_t reason = 0;
		enum iscsi_pdu_verdict v = iscsi_bhs_check(&h, 8192, &reason);

		if (op <= 0x06) {
			assert_int_equal(v, ISCSI_PDU_OK);
			continue;
		}
		assert_int_equal(v, ISCSI_PDU_REJECT);
		if (op == ISCSI_OP_SNACK_REQ)
			assert_int_equal(reason, ISCSI_REJECT_SNACK_REJECT);
		else
			assert_int_equal(reason, ISCSI_REJECT_CMD_NOT_SUPPORTED);
	}
}

static void test_check_snack_erl0(void **state)
{
	struct iscsi_bhs h = mk(ISCSI_OP_SNACK_REQ, 0, 0);
	uint8_t reason = 0;

	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_REJECT);
	assert_int_equal(reason, ISCSI_REJECT_SNACK_REJECT);
}

static void test_check_data_length(void **state)
{
	uint8_t reason;
	struct iscsi_bhs h = mk(ISCSI_OP_DATA_OUT, 8192, 0);

	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_OK);
	h = mk(ISCSI_OP_DATA_OUT, 8193, 0);
	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_FATAL);
	h = mk(ISCSI_OP_SCSI_CMD, 0xffffff, 0);
	assert_int_equal(iscsi_bhs_check(&h, 262144, &reason), ISCSI_PDU_FATAL);
	/* Over-long data beats the opcode: we cannot even skip it safely. */
	h = mk(0x3f, 9000, 0);
	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_FATAL);
	h = mk(ISCSI_OP_LOGIN_REQ, 0, 0);
	assert_int_equal(iscsi_bhs_check(&h, 0, &reason), ISCSI_PDU_OK);
	/* NULL reason pointer is tolerated. */
	h = mk(0x3f, 0, 0);
	assert_int_equal(iscsi_bhs_check(&h, 8192, NULL), ISCSI_PDU_REJECT);
}

static void test_check_no_data_pdus(void **state)
{
	uint8_t reason = 0;
	struct iscsi_bhs h = mk(ISCSI_OP_TMF_REQ, 4, 0);

	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_REJECT);
	assert_int_equal(reason, ISCSI_REJECT_PROTOCOL_ERROR);
	h = mk(ISCSI_OP_LOGOUT_REQ, 1, 0);
	reason = 0;
	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_REJECT);
	assert_int_equal(reason, ISCSI_REJECT_PROTOCOL_ERROR);
}

static void test_check_ahs(void **state)
{
	uint8_t reason = 0;
	/* Extended CDB AHS on a SCSI command: allowed (max 255 words). */
	struct iscsi_bhs h = mk(ISCSI_OP_SCSI_CMD, 0, 255);

	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_OK);
	h = mk(ISCSI_OP_NOP_OUT, 0, 1);
	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_REJECT);
	assert_int_equal(reason, ISCSI_REJECT_PROTOCOL_ERROR);
	h = mk(ISCSI_OP_DATA_OUT, 512, 2);
	assert_int_equal(iscsi_bhs_check(&h, 8192, &reason), ISCSI_PDU_REJECT);
}

/* ---------------------------------------------------------------- LUNs */

static void test_lun_encode(void **state)
{
	assert_true(iscsi_lun_encode(0) == 0);
	assert_true(iscsi_lun_encode(5) == 0x0005000000000000ull);
	assert_true(iscsi_lun_encode(255) == 0x00ff000000000000ull);
	assert_true(iscsi_lun_encode(256) == 0x4100000000000000ull);
	assert_true(iscsi_lun_encode(0x1234) == 0x5234000000000000ull);
	assert_true(iscsi_lun_encode(16383) == 0x7fff000000000000ull);
	assert_true(iscsi_lun_encode(16384) == UINT64_MAX);
}

static void test_lun_decode(void **state)
{
	assert_true(iscsi_lun_decode(0) == 0);
	assert_true(iscsi_lun_decode(0x0007000000000000ull) == 7);
	assert_true(iscsi_lun_decode(0x4007000000000000ull) == 7);     /* flat, small */
	assert_true(iscsi_lun_decode(0x7fff000000000000ull) == 16383);
	/* Peripheral with a non-zero bus identifier. */
	assert_true(iscsi_lun_decode(0x0107000000000000ull) == UINT64_MAX);
	/* Second level present (hierarchical). */
	assert_true(iscsi_lun_decode(0x0001000100000000ull) == UINT64_MAX);
	assert_true(iscsi_lun_decode(0x0000000000000001ull) == UINT64_MAX);
	/* Logical unit addressing (10b) and REPORT LUNS well-known LUN (11b). */
	assert_true(iscsi_lun_decode(0x8001000000000000ull) == UINT64_MAX);
	assert_true(iscsi_lun_decode(0xc101000000000000ull) == UINT64_MAX);
	for (uint64_t l = 0; l < 16384; l++)
		assert_true(iscsi_lun_decode(iscsi_lun_encode(l)) == l);
}

/* ---------------------------------------------------------------- builders */

static void test_build_scsi_rsp(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_scsi_rsp(&h, 0x11223344, 0x02, ISCSI_RSP_UNDERFLOW, 512, 20);
	assert_int_equal(h.b[0], 0x21);
	assert_int_equal(h.b[1], 0x80 | 0x02);
	assert_int_equal(h.b[2], 0x00);          /* command completed at target */
	assert_int_equal(h.b[3], 0x02);          /* CHECK CONDITION */
	assert_int_equal(h.b[4], 0);
	assert_int_equal(iscsi_bhs_dlength(&h), 20);
	assert_zero(&h, 8, 16);                  /* LUN reserved */
	assert_int_equal(g32(&h, 16), 0x11223344);
	assert_zero(&h, 20, 44);                 /* SNACK tag, SNs, ExpDataSN, bidi residual */
	assert_int_equal(g32(&h, 44), 512);

	/* No residual flag: the residual count must be 0 (11.4.5). */
	dirty(&h);
	iscsi_build_scsi_rsp(&h, 1, 0, 0, 999, 0);
	assert_int_equal(h.b[1], 0x80);
	assert_int_equal(iscsi_bhs_dlength(&h), 0);
	assert_zero(&h, 20, 48);

	/* Overflow and bidi flags pass through, garbage bits do not. */
	iscsi_build_scsi_rsp(&h, 1, 0, ISCSI_RSP_OVERFLOW | ISCSI_RSP_BIDI_UNDERFLOW | 0x61, 7, 0);
	assert_int_equal(h.b[1], 0x80 | 0x04 | 0x08);
	assert_int_equal(g32(&h, 44), 7);
}

static void test_build_data_in(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_data_in(&h, 0xabcd, 0x0001000000000000ull, 3, 8192, 4096, false, false,
			    0x02, ISCSI_RSP_UNDERFLOW, 77);
	assert_int_equal(h.b[0], 0x25);
	assert_int_equal(h.b[1], 0x00);          /* no F, no S, no O/U without S */
	assert_int_equal(h.b[2], 0);
	assert_int_equal(h.b[3], 0);             /* status only with S */
	assert_int_equal(h.b[4], 0);
	assert_int_equal(iscsi_bhs_dlength(&h), 4096);
	assert_true(iscsi_bhs_lun_raw(&h) == 0x0001000000000000ull);
	assert_int_equal(g32(&h, 16), 0xabcd);
	assert_int_equal(g32(&h, 20), 0xffffffff);
	assert_zero(&h, 24, 36);
	assert_int_equal(g32(&h, 36), 3);
	assert_int_equal(g32(&h, 40), 8192);
	assert_int_equal(g32(&h, 44), 0);

	dirty(&h);
	iscsi_build_data_in(&h, 1, 0, 0, 0, 512, true, false, 0, 0, 0);
	assert_int_equal(h.b[1], 0x80);

	/* Phase collapse: S implies F; underflow and residual reported. */
	dirty(&h);
	iscsi_build_data_in(&h, 1, 0, 9, 0, 512, false, true, 0x00, ISCSI_RSP_UNDERFLOW, 1536);
	assert_int_equal(h.b[1], 0x80 | 0x01 | 0x02);
	assert_int_equal(h.b[3], 0x00);
	assert_int_equal(g32(&h, 36), 9);
	assert_int_equal(g32(&h, 44), 1536);

	iscsi_build_data_in(&h, 1, 0, 9, 0, 512, true, true, 0x00, ISCSI_RSP_OVERFLOW, 10);
	assert_int_equal(h.b[1], 0x80 | 0x01 | 0x04);
	assert_int_equal(g32(&h, 44), 10);
	assert_false(h.b[1] & ISCSI_DATAIN_ACK);
}

static void test_build_r2t(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_r2t(&h, 0x10, 0x4101000000000000ull, 0x77, 2, 65536, 262144);
	assert_int_equal(h.b[0], 0x31);
	assert_int_equal(h.b[1], 0x80);
	assert_zero(&h, 2, 8);
	assert_true(iscsi_bhs_lun_raw(&h) == 0x4101000000000000ull);
	assert_int_equal(g32(&h, 16), 0x10);
	assert_int_equal(g32(&h, 20), 0x77);
	assert_zero(&h, 24, 36);
	assert_int_equal(g32(&h, 36), 2);
	assert_int_equal(g32(&h, 40), 65536);
	assert_int_equal(g32(&h, 44), 262144);
}

static void test_build_nop_in(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_nop_in(&h, 0x55, ISCSI_RSVD_TAG, 0, 16);
	assert_int_equal(h.b[0], 0x20);
	assert_int_equal(h.b[1], 0x80);
	assert_zero(&h, 2, 5);
	assert_int_equal(iscsi_bhs_dlength(&h), 16);
	assert_zero(&h, 8, 16);
	assert_int_equal(g32(&h, 16), 0x55);
	assert_int_equal(g32(&h, 20), 0xffffffff);
	assert_zero(&h, 24, 48);

	/* Target-initiated ping. */
	iscsi_build_nop_in(&h, ISCSI_RSVD_TAG, 0x1234, 0, 0);
	assert_int_equal(g32(&h, 16), 0xffffffff);
	assert_int_equal(g32(&h, 20), 0x1234);
}

static void test_build_tmf_rsp(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_tmf_rsp(&h, 0x99, ISCSI_TMF_RSP_NO_TASK);
	assert_int_equal(h.b[0], 0x22);
	assert_int_equal(h.b[1], 0x80);
	assert_int_equal(h.b[2], 1);
	assert_zero(&h, 3, 16);
	assert_int_equal(g32(&h, 16), 0x99);
	assert_zero(&h, 20, 48);
}

static void test_build_logout_rsp(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_logout_rsp(&h, 0x42, ISCSI_LOGOUT_RSP_CID_NOT_FOUND, 2, 20);
	assert_int_equal(h.b[0], 0x26);
	assert_int_equal(h.b[1], 0x80);
	assert_int_equal(h.b[2], 1);
	assert_zero(&h, 3, 16);
	assert_int_equal(g32(&h, 16), 0x42);
	assert_zero(&h, 20, 40);
	assert_int_equal(g16(&h, 40), 2);
	assert_int_equal(g16(&h, 42), 20);
	assert_zero(&h, 44, 48);
}

static void test_build_reject(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_reject(&h, ISCSI_REJECT_CMD_NOT_SUPPORTED, 48);
	assert_int_equal(h.b[0], 0x3f);
	assert_int_equal(h.b[1], 0x80);
	assert_int_equal(h.b[2], 0x05);
	assert_int_equal(h.b[3], 0);
	assert_int_equal(iscsi_bhs_dlength(&h), 48);
	assert_zero(&h, 8, 16);
	assert_int_equal(g32(&h, 16), 0xffffffff);
	assert_zero(&h, 20, 48);
}

static void test_build_text_rsp(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_text_rsp(&h, 7, ISCSI_RSVD_TAG, true, false, 0, 100);
	assert_int_equal(h.b[0], 0x24);
	assert_int_equal(h.b[1], 0x80);
	assert_int_equal(iscsi_bhs_dlength(&h), 100);
	assert_int_equal(g32(&h, 16), 7);
	assert_int_equal(g32(&h, 20), 0xffffffff);
	assert_zero(&h, 24, 48);

	/* Continuation: C=1, F=0, TTT set so the initiator can fetch more. */
	iscsi_build_text_rsp(&h, 7, 0x100, false, true, 0, 8192);
	assert_int_equal(h.b[1], 0x40);
	assert_int_equal(g32(&h, 20), 0x100);
	/* F together with C is illegal (11.11.2): C wins. */
	iscsi_build_text_rsp(&h, 7, 0x100, true, true, 0, 8192);
	assert_int_equal(h.b[1], 0x40);
}

static void test_build_login_rsp(void **state)
{
	struct iscsi_bhs req, h;

	memset(&req, 0, sizeof(req));
	req.b[0] = ISCSI_OP_LOGIN_REQ | ISCSI_FLAG_IMMEDIATE;
	req.b[1] = 0x87;                       /* T, CSG=1, NSG=3 */
	static const uint8_t isid[6] = { 0x80, 0x12, 0x34, 0x56, 0x00, 0x01 };
	memcpy(req.b + 8, isid, 6);
	iscsi_put16(req.b + 14, 0x0000);
	iscsi_put32(req.b + 16, 0xcafef00d);
	iscsi_put16(req.b + 20, 1);            /* CID: not echoed */
	iscsi_put32(req.b + 24, 0x1000);       /* CmdSN: not echoed */

	dirty(&h);
	iscsi_build_login_rsp(&h, &req, ISCSI_LOGIN_TRANSIT | (1 << ISCSI_LOGIN_CSG_SHIFT) | 3,
			      0x0102, ISCSI_LOGIN_STATUS_SUCCESS, 300);
	assert_int_equal(h.b[0], 0x23);
	assert_int_equal(h.b[1], 0x87);
	assert_int_equal(h.b[2], 0);           /* Version-max */
	assert_int_equal(h.b[3], 0);           /* Version-active */
	assert_int_equal(h.b[4], 0);
	assert_int_equal(iscsi_bhs_dlength(&h), 300);
	assert_memory_equal(h.b + 8, isid, 6);
	assert_int_equal(g16(&h, 14), 0x0102);
	assert_int_equal(g32(&h, 16), 0xcafef00d);
	assert_zero(&h, 20, 36);
	assert_int_equal(h.b[36], 0);
	assert_int_equal(h.b[37], 0);
	assert_zero(&h, 38, 48);

	iscsi_build_login_rsp(&h, &req, 0, 0, ISCSI_LOGIN_STATUS_AUTH_FAILED, 0);
	assert_int_equal(h.b[1], 0);
	assert_int_equal(h.b[36], 0x02);
	assert_int_equal(h.b[37], 0x01);
	assert_int_equal(g16(&h, 14), 0);

	/* C and T together are illegal (11.13.1): T is dropped. */
	iscsi_build_login_rsp(&h, &req, ISCSI_LOGIN_TRANSIT | ISCSI_LOGIN_CONTINUE | 0x05, 0, 0, 0);
	assert_int_equal(h.b[1], ISCSI_LOGIN_CONTINUE | 0x05);

	/* In-place: building into the request buffer itself still echoes. */
	struct iscsi_bhs same = req;
	iscsi_build_login_rsp(&same, &same, ISCSI_LOGIN_TRANSIT | 0x07, 5, 0, 0);
	assert_memory_equal(same.b + 8, isid, 6);
	assert_int_equal(g32(&same, 16), 0xcafef00d);
	assert_int_equal(same.b[0], 0x23);
}

static void test_build_async(void **state)
{
	struct iscsi_bhs h;

	dirty(&h);
	iscsi_build_async(&h, 1, 0, 2, 20, 0);    /* "target requests logout" */
	assert_int_equal(h.b[0], 0x32);
	assert_int_equal(h.b[1], 0x80);
	assert_zero(&h, 2, 16);
	assert_int_equal(g32(&h, 16), 0xffffffff);
	assert_zero(&h, 20, 36);
	assert_int_equal(h.b[36], 1);
	assert_int_equal(h.b[37], 0);
	assert_int_equal(g16(&h, 38), 0);
	assert_int_equal(g16(&h, 40), 2);
	assert_int_equal(g16(&h, 42), 20);
	assert_zero(&h, 44, 48);
}

static void test_set_sn(void **state)
{
	struct iscsi_bhs h;

	iscsi_build_tmf_rsp(&h, 1, 0);
	iscsi_bhs_set_sn(&h, 0x01020304, 0x05060708, 0x090a0b0c);
	assert_int_equal(g32(&h, 24), 0x01020304);
	assert_int_equal(g32(&h, 28), 0x05060708);
	assert_int_equal(g32(&h, 32), 0x090a0b0c);
	assert_int_equal(g32(&h, 16), 1);
	assert_zero(&h, 36, 48);
}

/* ---------------------------------------------------------------- text keys */

static void test_kv_basic(void **state)
{
	static const char seg[] = "InitiatorName=iqn.1994-05.com.redhat:abc\0SessionType=Normal\0"
				  "X-com.example=a=b\0Empty=\0";
	struct iscsi_kv_iter it;
	const char *k, *v;

	iscsi_kv_iter_init(&it, seg, sizeof(seg) - 1);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "InitiatorName");
	assert_string_equal(v, "iqn.1994-05.com.redhat:abc");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "SessionType");
	assert_string_equal(v, "Normal");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "X-com.example");
	assert_string_equal(v, "a=b");             /* only the first '=' splits */
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "Empty");
	assert_string_equal(v, "");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 0);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 0);
}

static void test_kv_empty_and_padding(void **state)
{
	struct iscsi_kv_iter it;
	const char *k, *v;

	iscsi_kv_iter_init(&it, "", 0);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 0);
	iscsi_kv_iter_init(&it, NULL, 0);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 0);
	/* Pad bytes counted in the length, and empty strings, carry nothing. */
	iscsi_kv_iter_init(&it, "A=1\0\0\0\0B=2\0\0\0", 13);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "A");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "B");
	assert_string_equal(v, "2");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 0);
}

static void test_kv_malformed(void **state)
{
	struct iscsi_kv_iter it;
	const char *k, *v;

	/* Missing '=' */
	iscsi_kv_iter_init(&it, "A=1\0NoEquals\0B=2\0", 17);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);
	/* ... and the error is sticky: B=2 is not returned. */
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);

	/* Unterminated last pair (RFC 7143 6.1 requires the NUL). */
	iscsi_kv_iter_init(&it, "A=1\0B=2", 7);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);

	/* The NUL is outside the given length: must not be read. */
	iscsi_kv_iter_init(&it, "A=1", 3);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);

	/* Empty key */
	iscsi_kv_iter_init(&it, "=x\0", 3);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);

	/* Illegal characters in the key name */
	iscsi_kv_iter_init(&it, "Bad Key=1\0", 10);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);
	iscsi_kv_iter_init(&it, "K\xc3\xa4=1\0", 6);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);
	/* The allowed punctuation is accepted */
	iscsi_kv_iter_init(&it, "X-a.b+c@d_e=1\0", 14);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "X-a.b+c@d_e");
}

static void test_kv_lengths(void **state)
{
	size_t cap = 64 + 1 + 9000 + 1;
	char *buf = malloc(cap);
	struct iscsi_kv_iter it;
	const char *k, *v;
	size_t n;

	assert_non_null(buf);
	/* 63-byte key: OK; 64: too long (RFC 7143 6.1). */
	memset(buf, 'K', 63);
	memcpy(buf + 63, "=v", 3);
	iscsi_kv_iter_init(&it, buf, 66);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_int_equal(strlen(k), 63);
	memset(buf, 'K', 64);
	memcpy(buf + 64, "=v", 3);
	iscsi_kv_iter_init(&it, buf, 67);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);

	/* Largest value that fits the iterator's copy: 8191 bytes. */
	memcpy(buf, "CHAP_C=", 7);
	memset(buf + 7, 'a', 8191);
	buf[7 + 8191] = '\0';
	n = 7 + 8191 + 1;
	iscsi_kv_iter_init(&it, buf, n);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_int_equal(strlen(v), 8191);
	memset(buf + 7, 'a', 8192);
	buf[7 + 8192] = '\0';
	iscsi_kv_iter_init(&it, buf, 7 + 8192 + 1);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), -1);
	free(buf);
}

static void test_kv_append(void **state)
{
	char mem[32];
	struct iscsi_kv_buf b = { .data = mem, .len = 0, .cap = sizeof(mem) };
	struct iscsi_kv_iter it;
	const char *k, *v;

	assert_int_equal(iscsi_kv_append(&b, "HeaderDigest", "None"), 0);   /* 18 bytes */
	assert_int_equal(b.len, 18);
	assert_memory_equal(mem, "HeaderDigest=None\0", 18);
	/* 14 bytes left: "ABCDEFGHIJ=" + "xx" + NUL = 14 fits exactly. */
	assert_int_equal(iscsi_kv_append(&b, "ABCDEFGHIJ", "xx"), 0);
	assert_int_equal(b.len, 32);
	/* Full: nothing is written. */
	mem[31] = '\0';
	assert_int_equal(iscsi_kv_append(&b, "A", ""), -1);
	assert_int_equal(b.len, 32);

	iscsi_kv_iter_init(&it, b.data, b.len);
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "HeaderDigest");
	assert_string_equal(v, "None");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 1);
	assert_string_equal(k, "ABCDEFGHIJ");
	assert_string_equal(v, "xx");
	assert_int_equal(iscsi_kv_next(&it, &k, &v), 0);

	struct iscsi_kv_buf nobuf = { 0 };
	assert_int_equal(iscsi_kv_append(&nobuf, "A", "B"), -1);
}

/* Random segments: the iterator must never read out of bounds (ASan) and
 * must only return NUL-free, length-bounded keys and values. */
static void test_kv_fuzz(void **state)
{
	static const char alphabet[] = "ab=\0\0X-.#=9 \xff";
	unsigned seed = 42;
	struct iscsi_kv_iter *it = malloc(sizeof(*it));

	assert_non_null(it);
	for (int round = 0; round < 20000; round++) {
		size_t len, n;
		uint8_t *buf;
		const char *k, *v;
		int r;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % 200;
		buf = malloc(len ? len : 1);   /* exact size: overreads trap */
		assert_non_null(buf);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		iscsi_kv_iter_init(it, buf, len);
		n = 0;
		while ((r = iscsi_kv_next(it, &k, &v)) == 1) {
			assert_true(strlen(k) >= 1 && strlen(k) <= 63);
			assert_null(strchr(k, '='));
			assert_true(strlen(v) < sizeof(it->val));
			assert_true(++n <= len);
		}
		assert_true(r == 0 || r == -1);
		assert_int_equal(iscsi_kv_next(it, &k, &v), r);   /* end/error is stable */
		free(buf);
	}
	free(it);
}

/* Random BHSes: the verdict is always one of the three and consistent
 * with the simple rules (length first, then opcode, then AHS). */
static void test_check_fuzz(void **state)
{
	unsigned seed = 7;

	for (int round = 0; round < 100000; round++) {
		struct iscsi_bhs h;
		uint8_t reason = 0xee;

		for (int i = 0; i < ISCSI_BHS_LEN; i++) {
			seed = seed * 1103515245u + 12345u;
			h.b[i] = (uint8_t)(seed >> 16);
		}
		uint32_t max = (seed >> 8) & 0x3ffff;
		enum iscsi_pdu_verdict v = iscsi_bhs_check(&h, max, &reason);

		if (iscsi_bhs_dlength(&h) > max) {
			assert_int_equal(v, ISCSI_PDU_FATAL);
		} else if (v == ISCSI_PDU_REJECT) {
			assert_true(reason == ISCSI_REJECT_CMD_NOT_SUPPORTED ||
				    reason == ISCSI_REJECT_SNACK_REJECT ||
				    reason == ISCSI_REJECT_PROTOCOL_ERROR);
		} else {
			assert_int_equal(v, ISCSI_PDU_OK);
			assert_int_equal(reason, 0);
			assert_true(iscsi_bhs_opcode(&h) <= ISCSI_OP_LOGOUT_REQ);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_check_valid_opcodes),
		cmocka_unit_test(test_check_unknown_opcodes),
		cmocka_unit_test(test_check_snack_erl0),
		cmocka_unit_test(test_check_data_length),
		cmocka_unit_test(test_check_no_data_pdus),
		cmocka_unit_test(test_check_ahs),
		cmocka_unit_test(test_lun_encode),
		cmocka_unit_test(test_lun_decode),
		cmocka_unit_test(test_build_scsi_rsp),
		cmocka_unit_test(test_build_data_in),
		cmocka_unit_test(test_build_r2t),
		cmocka_unit_test(test_build_nop_in),
		cmocka_unit_test(test_build_tmf_rsp),
		cmocka_unit_test(test_build_logout_rsp),
		cmocka_unit_test(test_build_reject),
		cmocka_unit_test(test_build_text_rsp),
		cmocka_unit_test(test_build_login_rsp),
		cmocka_unit_test(test_build_async),
		cmocka_unit_test(test_set_sn),
		cmocka_unit_test(test_kv_basic),
		cmocka_unit_test(test_kv_empty_and_padding),
		cmocka_unit_test(test_kv_malformed),
		cmocka_unit_test(test_kv_lengths),
		cmocka_unit_test(test_kv_append),
		cmocka_unit_test(test_kv_fuzz),
		cmocka_unit_test(test_check_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
