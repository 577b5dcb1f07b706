/* iscsi_pdu.h - iSCSI PDU codec (RFC 7143 section 11).
 *
 * Pure functions on bytes: no sockets, no allocation behind the caller's back.
 * The connection layer reads a 48-byte Basic Header Segment (BHS), asks
 * iscsi_bhs_parse() how much AHS/data/digest follows (validating lengths
 * *before* anything is read), and builds replies with the iscsi_build_*()
 * helpers.  All multi-byte fields are big-endian on the wire (RFC 7143 11.1).
 */
#ifndef RS_ISCSI_PDU_H
#define RS_ISCSI_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_BHS_LEN 48

/* Initiator opcodes (RFC 7143 11.1.1) */
#define ISCSI_OP_NOP_OUT       0x00
#define ISCSI_OP_SCSI_CMD      0x01
#define ISCSI_OP_TMF_REQ       0x02
#define ISCSI_OP_LOGIN_REQ     0x03
#define ISCSI_OP_TEXT_REQ      0x04
#define ISCSI_OP_DATA_OUT      0x05
#define ISCSI_OP_LOGOUT_REQ    0x06
#define ISCSI_OP_SNACK_REQ     0x10
/* Target opcodes */
#define ISCSI_OP_NOP_IN        0x20
#define ISCSI_OP_SCSI_RSP      0x21
#define ISCSI_OP_TMF_RSP       0x22
#define ISCSI_OP_LOGIN_RSP     0x23
#define ISCSI_OP_TEXT_RSP      0x24
#define ISCSI_OP_DATA_IN       0x25
#define ISCSI_OP_LOGOUT_RSP    0x26
#define ISCSI_OP_R2T           0x31
#define ISCSI_OP_ASYNC_MSG     0x32
#define ISCSI_OP_REJECT        0x3f

/* AsyncEvent codes (RFC 7143 11.9.1) */
#define ISCSI_ASYNC_SCSI_EVENT       0
#define ISCSI_ASYNC_LOGOUT_REQUEST   1
#define ISCSI_ASYNC_DROP_CONNECTION  2
#define ISCSI_ASYNC_DROP_SESSION     3
#define ISCSI_ASYNC_RENEGOTIATE      4

#define ISCSI_OPCODE_MASK      0x3f
#define ISCSI_FLAG_IMMEDIATE   0x40  /* byte 0 bit 6 (I) */
#define ISCSI_FLAG_FINAL       0x80  /* byte 1 bit 7 (F) */

/* SCSI Command flags, byte 1 (11.3.1) */
#define ISCSI_CMD_READ         0x40
#define ISCSI_CMD_WRITE        0x20
#define ISCSI_CMD_ATTR_MASK    0x07

/* SCSI Response / Data-In flags (11.4.1, 11.7.1) */
#define ISCSI_RSP_BIDI_OVERFLOW  0x10
#define ISCSI_RSP_BIDI_UNDERFLOW 0x08
#define ISCSI_RSP_OVERFLOW       0x04
#define ISCSI_RSP_UNDERFLOW      0x02
#define ISCSI_DATAIN_ACK         0x40
#define ISCSI_DATAIN_STATUS      0x01

/* Login flags (11.12.1) */
#define ISCSI_LOGIN_TRANSIT    0x80
#define ISCSI_LOGIN_CONTINUE   0x40
#define ISCSI_LOGIN_CSG_SHIFT  2
#define ISCSI_LOGIN_CSG_MASK   0x0c
#define ISCSI_LOGIN_NSG_MASK   0x03
#define ISCSI_STAGE_SECURITY   0
#define ISCSI_STAGE_OPERATIONAL 1
#define ISCSI_STAGE_FULL_FEATURE 3

/* Login status class/detail (11.13.5) as one 16-bit value */
#define ISCSI_LOGIN_STATUS_SUCCESS          0x0000
#define ISCSI_LOGIN_STATUS_TARGET_MOVED_TMP 0x0101
#define ISCSI_LOGIN_STATUS_INIT_ERR         0x0200
#define ISCSI_LOGIN_STATUS_AUTH_FAILED      0x0201
#define ISCSI_LOGIN_STATUS_AUTHZ_FAILED     0x0202
#define ISCSI_LOGIN_STATUS_TGT_NOT_FOUND    0x0203
#define ISCSI_LOGIN_STATUS_TGT_REMOVED      0x0204
#define ISCSI_LOGIN_STATUS_UNSUPPORTED_VER  0x0205
#define ISCSI_LOGIN_STATUS_TOO_MANY_CONNS   0x0206
#define ISCSI_LOGIN_STATUS_MISSING_PARAM    0x0207
#define ISCSI_LOGIN_STATUS_NO_SESSION_SPAN  0x0208
#define ISCSI_LOGIN_STATUS_NO_SESSION_TYPE  0x0209
#define ISCSI_LOGIN_STATUS_NO_SESSION       0x020a
#define ISCSI_LOGIN_STATUS_INVALID_REQ      0x020b
#define ISCSI_LOGIN_STATUS_TARGET_ERROR     0x0300
#define ISCSI_LOGIN_STATUS_NO_RESOURCES     0x0302

/* TMF functions (11.5.1) and responses (11.6.1) */
#define ISCSI_TMF_ABORT_TASK        1
#define ISCSI_TMF_ABORT_TASK_SET    2
#define ISCSI_TMF_CLEAR_ACA         3
#define ISCSI_TMF_CLEAR_TASK_SET    4
#define ISCSI_TMF_LUN_RESET         5
#define ISCSI_TMF_TARGET_WARM_RESET 6
#define ISCSI_TMF_TARGET_COLD_RESET 7
#define ISCSI_TMF_TASK_REASSIGN     8
#define ISCSI_TMF_RSP_COMPLETE        0
#define ISCSI_TMF_RSP_NO_TASK         1
#define ISCSI_TMF_RSP_NO_LUN          2
#define ISCSI_TMF_RSP_TASK_ALLEGIANT  3
#define ISCSI_TMF_RSP_NO_FAILOVER     4
#define ISCSI_TMF_RSP_NOT_SUPPORTED   5
#define ISCSI_TMF_RSP_AUTH_FAILED     6
#define ISCSI_TMF_RSP_REJECTED        255

/* Reject reasons (11.17.1) */
#define ISCSI_REJECT_DIGEST_ERROR       0x02
#define ISCSI_REJECT_SNACK_REJECT       0x03
#define ISCSI_REJECT_PROTOCOL_ERROR     0x04
#define ISCSI_REJECT_CMD_NOT_SUPPORTED  0x05
#define ISCSI_REJECT_IMM_CMD_REJECT     0x06
#define ISCSI_REJECT_TASK_IN_PROGRESS   0x07
#define ISCSI_REJECT_INVALID_DATA_ACK   0x08
#define ISCSI_REJECT_INVALID_PDU_FIELD  0x09
#define ISCSI_REJECT_LONG_OP_REJECT     0x0a
#define ISCSI_REJECT_WAITING_FOR_LOGOUT 0x0c

/* Logout reasons (11.14.1) and responses (11.15.1) */
#define ISCSI_LOGOUT_CLOSE_SESSION   0
#define ISCSI_LOGOUT_CLOSE_CONN      1
#define ISCSI_LOGOUT_REMOVE_CONN     2
#define ISCSI_LOGOUT_RSP_OK          0
#define ISCSI_LOGOUT_RSP_CID_NOT_FOUND 1
#define ISCSI_LOGOUT_RSP_RECOVERY_UNSUPP 2
#define ISCSI_LOGOUT_RSP_CLEANUP_FAILED 3

#define ISCSI_RSVD_TAG 0xffffffffu

/* The 48-byte BHS, as raw bytes.  Accessors below decode the fields that every
 * opcode shares; opcode-specific fields are read with iscsi_get32(bhs, off). */
struct iscsi_bhs {
	uint8_t b[ISCSI_BHS_LEN];
};

static inline uint32_t iscsi_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t iscsi_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void iscsi_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline void iscsi_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8; p[1] = v;
}
static inline uint64_t iscsi_get64(const uint8_t *p)
{
	return (uint64_t)iscsi_get32(p) << 32 | iscsi_get32(p + 4);
}
static inline void iscsi_put64(uint8_t *p, uint64_t v)
{
	iscsi_put32(p, v >> 32); iscsi_put32(p + 4, (uint32_t)v);
}

static inline uint8_t iscsi_bhs_opcode(const struct iscsi_bhs *h) { return h->b[0] & ISCSI_OPCODE_MASK; }
static inline bool iscsi_bhs_immediate(const struct iscsi_bhs *h) { return h->b[0] & ISCSI_FLAG_IMMEDIATE; }
static inline uint8_t iscsi_bhs_flags(const struct iscsi_bhs *h) { return h->b[1]; }
/* TotalAHSLength in bytes (byte 4 counts 4-byte words) */
static inline uint32_t iscsi_bhs_ahs_len(const struct iscsi_bhs *h) { return h->b[4] * 4u; }
static inline uint32_t iscsi_bhs_dlength(const struct iscsi_bhs *h)
{
	return (uint32_t)h->b[5] << 16 | (uint32_t)h->b[6] << 8 | h->b[7];
}
static inline void iscsi_bhs_set_dlength(struct iscsi_bhs *h, uint32_t len)
{
	h->b[5] = len >> 16; h->b[6] = len >> 8; h->b[7] = len;
}
static inline uint64_t iscsi_bhs_lun_raw(const struct iscsi_bhs *h) { return iscsi_get64(h->b + 8); }
static inline uint32_t iscsi_bhs_itt(const struct iscsi_bhs *h) { return iscsi_get32(h->b + 16); }

/* Padding to a 4-byte boundary (RFC 7143 11.1: data segments are padded). */
static inline uint32_t iscsi_pad4(uint32_t len) { return (len + 3u) & ~3u; }

/* Decode an 8-byte SAM LUN (SAM-5 4.6: peripheral and flat addressing) into a
 * LUN number; UINT64_MAX if the addressing method is not supported. */
uint64_t iscsi_lun_decode(uint64_t raw);
/* Encode a LUN number the way REPORT LUNS and the BHS carry it (flat space for
 * lun >= 256, peripheral otherwise). */
uint64_t iscsi_lun_encode(uint64_t lun);

/* CRC32C (Castagnoli, RFC 7143 13.1 / RFC 3720 B.4) as used by iSCSI digests.
 * iscsi_crc32c(NULL,0) style: start with crc = ~0, finish with ~crc; this
 * returns the final value ready to be stored little-endian on the wire. */
uint32_t iscsi_crc32c(const void *data, size_t len);
/* Incremental form: seed with 0xffffffff, feed, then xor with 0xffffffff. */
uint32_t iscsi_crc32c_update(uint32_t crc, const void *data, size_t len);
/* The portable slicing-by-8 path, same contract as iscsi_crc32c_update();
 * exposed so tests can compare it with the SSE4.2 path picked at run time. */
uint32_t iscsi_crc32c_update_portable(uint32_t crc, const void *data, size_t len);

/* Result of validating a received BHS against the negotiated limits. */
enum iscsi_pdu_verdict {
	ISCSI_PDU_OK,
	ISCSI_PDU_REJECT,   /* well-framed but invalid: answer with Reject, keep going */
	ISCSI_PDU_FATAL,    /* framing broken or limits exceeded: drop the connection */
};

/* Check a BHS: opcode known to a target, data length within max_recv_dsl
 * (our MaxRecvDataSegmentLength; login/text use 8192 until negotiated),
 * AHS length sane.  *reject_reason is set for ISCSI_PDU_REJECT. */
enum iscsi_pdu_verdict iscsi_bhs_check(const struct iscsi_bhs *h, uint32_t max_recv_dsl,
				       uint8_t *reject_reason);

/* ---- builders: fill a zeroed BHS for target->initiator PDUs ----
 * StatSN/ExpCmdSN/MaxCmdSN are filled by the connection when it sends. */
void iscsi_build_scsi_rsp(struct iscsi_bhs *h, uint32_t itt, uint8_t status,
			  uint8_t flags_resid, uint32_t residual, uint32_t sense_dlen);
void iscsi_build_data_in(struct iscsi_bhs *h, uint32_t itt, uint64_t lun_raw, uint32_t datasn,
			 uint32_t offset, uint32_t len, bool final, bool with_status,
			 uint8_t status, uint8_t flags_resid, uint32_t residual);
void iscsi_build_r2t(struct iscsi_bhs *h, uint32_t itt, uint64_t lun_raw, uint32_t ttt,
		     uint32_t r2tsn, uint32_t offset, uint32_t len);
void iscsi_build_nop_in(struct iscsi_bhs *h, uint32_t itt, uint32_t ttt, uint64_t lun_raw,
			uint32_t dlen);
void iscsi_build_tmf_rsp(struct iscsi_bhs *h, uint32_t itt, uint8_t response);
void iscsi_build_logout_rsp(struct iscsi_bhs *h, uint32_t itt, uint8_t response,
			    uint16_t time2wait, uint16_t time2retain);
void iscsi_build_reject(struct iscsi_bhs *h, uint8_t reason, uint32_t dlen /* = 48 */);
void iscsi_build_text_rsp(struct iscsi_bhs *h, uint32_t itt, uint32_t ttt, bool final,
			  bool cont, uint64_t lun_raw, uint32_t dlen);
void iscsi_build_login_rsp(struct iscsi_bhs *h, const struct iscsi_bhs *req, uint8_t flags,
			   uint16_t tsih, uint16_t status, uint32_t dlen);
void iscsi_build_async(struct iscsi_bhs *h, uint8_t event, uint16_t p1, uint16_t p2,
		       uint16_t p3, uint32_t dlen);
/* Stamp StatSN (24), ExpCmdSN (28), MaxCmdSN (32) on a target PDU. */
void iscsi_bhs_set_sn(struct iscsi_bhs *h, uint32_t statsn, uint32_t expcmdsn, uint32_t maxcmdsn);

/* Serial number arithmetic (RFC 1982, used by RFC 7143 4.2.2.1). */
static inline bool iscsi_sn_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool iscsi_sn_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

/* ---- text key=value data segments (RFC 7143 6.1) ----
 * Iterate "key=value" pairs, each NUL-terminated.  Returns 1 with *key and *val
 * pointing into a copy the iterator owns, 0 at end, -1 on a malformed pair
 * (no '=', key too long); value > 255 bytes for non-large values is the
 * caller's concern. */
struct iscsi_kv_iter {
	const char *p, *end;
	char key[64];
	char val[8192];
};
void iscsi_kv_iter_init(struct iscsi_kv_iter *it, const void *data, size_t len);
int iscsi_kv_next(struct iscsi_kv_iter *it, const char **key, const char **val);

/* Append "key=value\0" to buf; returns 0 or -1 if it would not fit. */
struct iscsi_kv_buf {
	char *data;
	size_t len, cap;
};
int iscsi_kv_append(struct iscsi_kv_buf *b, const char *key, const char *val);

#endif
