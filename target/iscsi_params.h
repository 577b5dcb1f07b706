/* iscsi_params.h - login key negotiation (RFC 7143 section 6 and 13).
 *
 * Pure logic: the login state machine feeds every key=value the initiator
 * sends to iscsi_neg_key(), which records the outcome in struct iscsi_neg and
 * appends the target's answer (if one is due) to an output buffer.  The
 * connection layer never interprets key strings itself.
 */
#ifndef RS_ISCSI_PARAMS_H
#define RS_ISCSI_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi_pdu.h"

enum iscsi_session_type { ISCSI_SESSION_NORMAL, ISCSI_SESSION_DISCOVERY };

/* The operational parameters in force after login (RFC 7143 13.x). */
struct iscsi_params {
	uint32_t max_xmit_dsl;      /* initiator's MaxRecvDataSegmentLength: our Data-In/text PDUs <= this */
	uint32_t max_recv_dsl;      /* our MaxRecvDataSegmentLength: what the initiator may send us */
	uint32_t first_burst;       /* FirstBurstLength */
	uint32_t max_burst;         /* MaxBurstLength */
	bool immediate_data;        /* ImmediateData */
	bool initial_r2t;           /* InitialR2T */
	uint32_t max_outstanding_r2t;
	uint32_t default_time2wait;
	uint32_t default_time2retain;
	bool data_pdu_in_order;
	bool data_seq_in_order;
	uint32_t erl;               /* ErrorRecoveryLevel: we support 0 only */
	bool header_digest;         /* CRC32C negotiated */
	bool data_digest;
	uint32_t max_connections;
};

/* What the target is willing to do (from the config; defaults below). */
struct iscsi_target_caps {
	uint32_t max_recv_dsl;      /* default 262144 */
	uint32_t max_burst;         /* default 1048576 */
	uint32_t first_burst;       /* default 262144 */
	uint32_t max_outstanding_r2t; /* default 1 */
	bool allow_immediate_data;  /* default true */
	bool require_initial_r2t;   /* default false */
	bool allow_crc32c;          /* default true */
	uint32_t max_connections;   /* default 1 */
};

/* Negotiation state of one login. */
struct iscsi_neg {
	struct iscsi_params p;      /* starts at RFC 7143 defaults */
	const struct iscsi_target_caps *caps;
	uint16_t tpgt;              /* TargetPortalGroupTag to return */

	/* declarative identity keys */
	char initiator_name[224];
	char initiator_alias[256];
	char target_name[224];
	enum iscsi_session_type session_type;
	bool session_type_seen;

	/* bookkeeping */
	bool sent_max_recv_dsl;     /* our MaxRecvDataSegmentLength declared */
	bool sent_tpgt;
	bool auth_method_none;      /* AuthMethod=None agreed */
	uint32_t seen_keys;         /* bitmask of negotiated keys (duplicate detection) */
};

/* RFC 7143 defaults; caps may be NULL for built-in defaults. */
void iscsi_caps_default(struct iscsi_target_caps *c);
void iscsi_neg_init(struct iscsi_neg *n, const struct iscsi_target_caps *caps, uint16_t tpgt);

enum iscsi_neg_result {
	ISCSI_NEG_OK = 0,
	ISCSI_NEG_FAIL_INITIATOR = -1,  /* answer login status 0x0200/0x0207 etc. */
};

/* Negotiate one key sent in a stage (ISCSI_STAGE_SECURITY or _OPERATIONAL).
 * Appends the target's response ("Key=Value", "Key=Reject",
 * "Key=NotUnderstood", "Key=Irrelevant") to out when one is due.  Returns 0, or
 * a negative value with *status set to the login status to send (e.g. 0x0207
 * for a bad value of a key the target cannot ignore, 0x0200 for a malformed
 * key).  Security keys other than AuthMethod are the caller's business (CHAP
 * is handled elsewhere); this function answers AuthMethod=None only.
 * stage ISCSI_STAGE_FULL_FEATURE is for Text Request keys in FFP (other than
 * SendTargets, which the caller handles): never fails, answers Reject for
 * login-only keys, tracks a re-declared MaxRecvDataSegmentLength. */
int iscsi_neg_key(struct iscsi_neg *n, int stage, const char *key, const char *val,
		  struct iscsi_kv_buf *out, uint16_t *status);

/* Called when a login response that moves to Full Feature Phase (or leaves
 * operational stage) is being built: appends what the target must declare or
 * has not yet answered (our MaxRecvDataSegmentLength, TargetPortalGroupTag in
 * the first response of a normal session, ...).  Idempotent: safe (and
 * simplest) to call for every login response before it is sent, with the
 * request's CSG as stage. */
void iscsi_neg_finish_stage(struct iscsi_neg *n, int stage, struct iscsi_kv_buf *out);

/* Parsers exposed for tests: RFC 7143 5.1/6.x numerical and boolean values.
 * Return 0 on success, -1 on malformed input. */
int iscsi_parse_number(const char *s, uint64_t *out);     /* decimal or 0x hex */
int iscsi_parse_bool(const char *s, bool *out);           /* "Yes"/"No" */

#endif
