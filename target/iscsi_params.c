/* iscsi_params.c - login key negotiation, target side (RFC 7143 sections 5.1,
 * 6 and 13; RFC 7144 for iSCSIProtocolLevel).
 *
 * The initiator is always the originator here: ringstor never offers
 * negotiable keys of its own, it only answers, declares its own
 * MaxRecvDataSegmentLength and returns TargetPortalGroupTag.  That keeps the
 * login a single request/response round trip per stage with every real
 * initiator (open-iscsi, libiscsi, Windows, ESXi all send a full key set).
 *
 * Outcomes per key (RFC 7143 6.2):
 *   - understood, acceptable        -> "Key=<result>"
 *   - understood, value unusable    -> "Key=Reject" (the default stays)
 *   - not relevant to this session  -> "Key=Irrelevant" (discovery sessions)
 *   - unknown, X-..., X#...         -> "Key=NotUnderstood"
 *   - renegotiation in the same login, security key outside the security
 *     stage, unusable identity keys -> login fails (initiator error class).
 */
#include <stdio.h>
#include <string.h>

#include "iscsi_params.h"

#define DSL_MIN 512u
#define DSL_MAX 16777215u           /* 2^24 - 1, RFC 7143 13.12-13.14 */
#define ISCSI_NAME_MAX 223          /* RFC 7143 4.2.7.1: iSCSI names <= 223 bytes */
#define SIMPLE_VALUE_MAX 255        /* RFC 7143 6.1: simple values <= 255 bytes */

/* Our answers for the time keys: the RFC 7143 defaults (13.15, 13.16). */
#define OUR_TIME2WAIT   2u
#define OUR_TIME2RETAIN 20u
/* iSCSIProtocolLevel we implement: 1 = RFC 7143 (RFC 7144 2.1, RFC 7143 13.24). */
#define OUR_PROTOCOL_LEVEL 1u

static const struct iscsi_target_caps builtin_caps = {
	.max_recv_dsl = 262144,
	.max_burst = 1048576,
	.first_burst = 262144,
	.max_outstanding_r2t = 1,
	.allow_immediate_data = true,
	.require_initial_r2t = false,
	.allow_crc32c = true,
	.max_connections = 1,
};

void iscsi_caps_default(struct iscsi_target_caps *c)
{
	*c = builtin_caps;
}

/* ---------------------------------------------------------------- parsers */

int iscsi_parse_number(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -1;
	/* RFC 7143 5.1: hex-constant is "0x"/"0X" followed by hex digits. */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		if (!*s)
			return -1;
		for (; *s; s++) {
			unsigned d;

			if (*s >= '0' && *s <= '9')
				d = (unsigned)(*s - '0');
			else if (*s >= 'a' && *s <= 'f')
				d = (unsigned)(*s - 'a' + 10);
			else if (*s >= 'A' && *s <= 'F')
				d = (unsigned)(*s - 'A' + 10);
			else
				return -1;
			if (v >> 60)
				return -1;      /* would overflow 64 bits */
			v = v << 4 | d;
		}
	} else {
		for (; *s; s++) {
			unsigned d;

			if (*s < '0' || *s > '9')
				return -1;
			d = (unsigned)(*s - '0');
			if (v > (UINT64_MAX - d) / 10)
				return -1;
			v = v * 10 + d;
		}
	}
	*out = v;
	return 0;
}

int iscsi_parse_bool(const char *s, bool *out)
{
	/* RFC 7143 5.1 / 6.2.2: boolean-value is exactly "Yes" or "No" (key
	 * values are case-sensitive). */
	if (!s)
		return -1;
	if (!strcmp(s, "Yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "No")) {
		*out = false;
		return 0;
	}
	return -1;
}

/* ---------------------------------------------------------------- key table */

enum key_id {
	K_HEADER_DIGEST, K_DATA_DIGEST, K_MAX_CONNECTIONS, K_SEND_TARGETS,
	K_TARGET_NAME, K_INITIATOR_NAME, K_TARGET_ALIAS, K_INITIATOR_ALIAS,
	K_TARGET_ADDRESS, K_TPGT, K_INITIAL_R2T, K_IMMEDIATE_DATA,
	K_MAX_RECV_DSL, K_MAX_BURST, K_FIRST_BURST, K_TIME2WAIT, K_TIME2RETAIN,
	K_MAX_OUTSTANDING_R2T, K_DATA_PDU_IN_ORDER, K_DATA_SEQ_IN_ORDER, K_ERL,
	K_SESSION_TYPE, K_AUTH_METHOD, K_IFMARKER, K_OFMARKER, K_OFMARKINT,
	K_IFMARKINT, K_PROTOCOL_LEVEL, K_TASK_REPORTING,
	K_COUNT
};

_Static_assert(K_COUNT <= 32, "seen_keys is a 32-bit mask");

#define KF_NORMAL_ONLY 0x01   /* "Irrelevant when: SessionType=Discovery" */
#define KF_SECURITY    0x02   /* security key: security stage only (RFC 7143 6.3) */

struct key_desc {
	const char *name;
	enum key_id id;
	unsigned flags;
};

static const struct key_desc keys[] = {
	{ "HeaderDigest",             K_HEADER_DIGEST,       0 },              /* 13.1 */
	{ "DataDigest",               K_DATA_DIGEST,         0 },              /* 13.1 */
	{ "MaxConnections",           K_MAX_CONNECTIONS,     KF_NORMAL_ONLY }, /* 13.2 */
	{ "SendTargets",              K_SEND_TARGETS,        0 },              /* 13.3 */
	{ "TargetName",               K_TARGET_NAME,         0 },              /* 13.4 */
	{ "InitiatorName",            K_INITIATOR_NAME,      0 },              /* 13.5 */
	{ "TargetAlias",              K_TARGET_ALIAS,        0 },              /* 13.6 */
	{ "InitiatorAlias",           K_INITIATOR_ALIAS,     0 },              /* 13.7 */
	{ "TargetAddress",            K_TARGET_ADDRESS,      0 },              /* 13.8 */
	{ "TargetPortalGroupTag",     K_TPGT,                0 },              /* 13.9 */
	{ "InitialR2T",               K_INITIAL_R2T,         KF_NORMAL_ONLY }, /* 13.10 */
	{ "ImmediateData",            K_IMMEDIATE_DATA,      KF_NORMAL_ONLY }, /* 13.11 */
	{ "MaxRecvDataSegmentLength", K_MAX_RECV_DSL,        0 },              /* 13.12 */
	{ "MaxBurstLength",           K_MAX_BURST,           KF_NORMAL_ONLY }, /* 13.13 */
	{ "FirstBurstLength",         K_FIRST_BURST,         KF_NORMAL_ONLY }, /* 13.14 */
	{ "DefaultTime2Wait",         K_TIME2WAIT,           0 },              /* 13.15 */
	{ "DefaultTime2Retain",       K_TIME2RETAIN,         0 },              /* 13.16 */
	{ "MaxOutstandingR2T",        K_MAX_OUTSTANDING_R2T, KF_NORMAL_ONLY }, /* 13.17 */
	{ "DataPDUInOrder",           K_DATA_PDU_IN_ORDER,   KF_NORMAL_ONLY }, /* 13.18 */
	{ "DataSequenceInOrder",      K_DATA_SEQ_IN_ORDER,   KF_NORMAL_ONLY }, /* 13.19 */
	{ "ErrorRecoveryLevel",       K_ERL,                 0 },              /* 13.20 */
	{ "SessionType",              K_SESSION_TYPE,        0 },              /* 13.21 */
	{ "AuthMethod",               K_AUTH_METHOD,         KF_SECURITY },    /* 12.1 */
	{ "IFMarker",                 K_IFMARKER,            0 },              /* 13.25 (obsolete) */
	{ "OFMarker",                 K_OFMARKER,            0 },
	{ "OFMarkInt",                K_OFMARKINT,           0 },
	{ "IFMarkInt",                K_IFMARKINT,           0 },
	{ "iSCSIProtocolLevel",       K_PROTOCOL_LEVEL,      0 },              /* 13.24, RFC 7144 */
	{ "TaskReporting",            K_TASK_REPORTING,      KF_NORMAL_ONLY }, /* 13.23 */
};

static const struct key_desc *key_lookup(const char *name)
{
	/* Key names are case-sensitive (RFC 7143 6.1). */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* Security keys of the authentication methods of RFC 7143 12.1 (CHAP, SRP,
 * Kerberos, SPKM).  They are the caller's business in the security stage and
 * a protocol error anywhere else. */
static bool is_security_key(const char *key)
{
	static const char *const prefixes[] = { "CHAP_", "SRP_", "KRB_", "SPKM_", "TargetAuth" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(key, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* ---------------------------------------------------------------- helpers */

static uint32_t clamp32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Caps with zero meaning "default", and values forced into the RFC ranges. */
static uint32_t cap_max_recv_dsl(const struct iscsi_neg *n)
{
	uint32_t v = n->caps->max_recv_dsl ? n->caps->max_recv_dsl : builtin_caps.max_recv_dsl;

	return clamp32(v, DSL_MIN, DSL_MAX);
}

static uint32_t cap_max_burst(const struct iscsi_neg *n)
{
	uint32_t v = n->caps->max_burst ? n->caps->max_burst : builtin_caps.max_burst;

	return clamp32(v, DSL_MIN, DSL_MAX);
}

static uint32_t cap_first_burst(const struct iscsi_neg *n)
{
	uint32_t v = n->caps->first_burst ? n->caps->first_burst : builtin_caps.first_burst;

	/* RFC 7143 13.14: FirstBurstLength MUST NOT exceed MaxBurstLength. */
	return min32(clamp32(v, DSL_MIN, DSL_MAX), cap_max_burst(n));
}

static uint32_t cap_range(uint32_t v, uint32_t dflt, uint32_t hi)
{
	return v ? min32(v, hi) : dflt;
}

static int reply(struct iscsi_kv_buf *out, const char *key, const char *val, uint16_t *status)
{
	if (iscsi_kv_append(out, key, val) < 0) {
		/* The caller's response buffer is full: it is sized for a
		 * login PDU, so this only happens with a pathological flood
		 * of unknown keys.  Fail rather than send a partial answer. */
		*status = ISCSI_LOGIN_STATUS_NO_RESOURCES;
		return ISCSI_NEG_FAIL_INITIATOR;
	}
	return ISCSI_NEG_OK;
}

static int reply_num(struct iscsi_kv_buf *out, const char *key, uint64_t v, uint16_t *status)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return reply(out, key, buf, status);
}

static int reply_bool(struct iscsi_kv_buf *out, const char *key, bool v, uint16_t *status)
{
	return reply(out, key, v ? "Yes" : "No", status);
}

static int fail(uint16_t *status, uint16_t st)
{
	*status = st;
	return ISCSI_NEG_FAIL_INITIATOR;
}

/* True if the comma-separated list-of-values (RFC 7143 5.1) contains item. */
static bool list_has(const char *list, const char *item)
{
	size_t il = strlen(item);
	const char *p = list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);

		if (l == il && !memcmp(p, item, il))
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}

/* Digest lists: RFC 7143 6.2.1 - the acceptor picks the first value of the
 * originator's list it supports; "Reject" if none. */
static int neg_digest(struct iscsi_neg *n, const char *key, const char *val, bool *result,
		      struct iscsi_kv_buf *out, uint16_t *status)
{
	const char *p = val;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);

		if (l == 4 && !memcmp(p, "None", 4)) {
			*result = false;
			return reply(out, key, "None", status);
		}
		if (l == 6 && !memcmp(p, "CRC32C", 6) && n->caps->allow_crc32c) {
			*result = true;
			return reply(out, key, "CRC32C", status);
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return reply(out, key, "Reject", status);
}

/* Parse a numeric value and check its RFC range; false -> answer Reject. */
static bool num_in_range(const char *val, uint64_t lo, uint64_t hi, uint32_t *v)
{
	uint64_t x;

	if (iscsi_parse_number(val, &x) < 0 || x < lo || x > hi)
		return false;
	*v = (uint32_t)x;
	return true;
}

/* MaxRecvDataSegmentLength value of the initiator: >= 512, clamped to 2^24-1. */
static int parse_dsl(const char *val, uint32_t *v)
{
	uint64_t x;

	if (iscsi_parse_number(val, &x) < 0 || x < DSL_MIN)
		return -1;
	*v = x > DSL_MAX ? DSL_MAX : (uint32_t)x;
	return 0;
}

/* Text negotiation in Full Feature Phase (RFC 7143 6.5 / 11.10): only keys
 * with "Use: ALL" may be (re)declared there; of those we track
 * MaxRecvDataSegmentLength.  Login-only keys (IO/LO) are answered Reject,
 * unknown keys NotUnderstood.  Each Text exchange is a new negotiation, so
 * there is no duplicate detection and no login failure here. */
static int neg_key_ffp(struct iscsi_neg *n, const struct key_desc *kd, const char *key,
		       const char *val, struct iscsi_kv_buf *out, uint16_t *status)
{
	uint32_t v;

	if (!kd)
		return reply(out, key, "NotUnderstood", status);
	if (!strcmp(val, "NotUnderstood") || !strcmp(val, "Irrelevant") || !strcmp(val, "Reject"))
		return ISCSI_NEG_OK;
	if (kd->id == K_MAX_RECV_DSL) {
		if (parse_dsl(val, &v) < 0)
			return reply(out, key, "Reject", status);
		n->p.max_xmit_dsl = v;
		return ISCSI_NEG_OK;
	}
	return reply(out, key, "Reject", status);
}

static void declare_max_recv_dsl(struct iscsi_neg *n, struct iscsi_kv_buf *out, uint16_t *status,
				 int *rc)
{
	if (n->sent_max_recv_dsl)
		return;
	*rc = reply_num(out, "MaxRecvDataSegmentLength", cap_max_recv_dsl(n), status);
	if (*rc == ISCSI_NEG_OK) {
		n->sent_max_recv_dsl = true;
		n->p.max_recv_dsl = cap_max_recv_dsl(n);
	}
}

/* ---------------------------------------------------------------- API */

void iscsi_neg_init(struct iscsi_neg *n, const struct iscsi_target_caps *caps, uint16_t tpgt)
{
	memset(n, 0, sizeof(*n));
	n->caps = caps ? caps : &builtin_caps;
	n->tpgt = tpgt;
	n->session_type = ISCSI_SESSION_NORMAL;    /* RFC 7143 13.21 default */

	/* RFC 7143 section 13 defaults: in force for every key the initiator
	 * does not negotiate. */
	n->p.max_xmit_dsl = 8192;
	n->p.max_recv_dsl = 8192;
	n->p.first_burst = 65536;
	n->p.max_burst = 262144;
	n->p.immediate_data = true;
	n->p.initial_r2t = true;
	n->p.max_outstanding_r2t = 1;
	n->p.default_time2wait = 2;
	n->p.default_time2retain = 20;
	n->p.data_pdu_in_order = true;
	n->p.data_seq_in_order = true;
	n->p.erl = 0;
	n->p.header_digest = false;
	n->p.data_digest = false;
	n->p.max_connections = 1;
}

int iscsi_neg_key(struct iscsi_neg *n, int stage, const char *key, const char *val,
		  struct iscsi_kv_buf *out, uint16_t *status)
{
	const struct key_desc *kd;
	uint16_t st_dummy;
	uint32_t v;
	bool b;
	int rc = ISCSI_NEG_OK;

	if (!status)
		status = &st_dummy;
	*status = ISCSI_LOGIN_STATUS_SUCCESS;
	if (!key || !val || !*key)
		return fail(status, ISCSI_LOGIN_STATUS_INIT_ERR);

	kd = key_lookup(key);
	if (stage == ISCSI_STAGE_FULL_FEATURE)
		return neg_key_ffp(n, kd, key, val, out, status);
	if (!kd) {
		if (is_security_key(key)) {
			/* RFC 7143 6.3: security keys only in the security
			 * stage.  There we do not do CHAP etc. ourselves. */
			if (stage != ISCSI_STAGE_SECURITY)
				return fail(status, ISCSI_LOGIN_STATUS_INIT_ERR);
		}
		/* RFC 7143 6.2 / 13.22: unknown keys, private "X-" and
		 * public-extension "X#" keys are answered NotUnderstood. */
		return reply(out, key, "NotUnderstood", status);
	}

	/* These constants are answers (RFC 7143 6.2), valid only for a key we
	 * offered.  We offer nothing, so there is nothing to record. */
	if (!strcmp(val, "NotUnderstood") || !strcmp(val, "Irrelevant") || !strcmp(val, "Reject"))
		return ISCSI_NEG_OK;

	/* RFC 7143 6.1 / 6.2: "An attempt to renegotiate/redeclare parameters
	 * not specifically allowed MUST be detected ... the target MUST respond
	 * with Login reject (initiator error)". */
	if (n->seen_keys & (1u << kd->id))
		return fail(status, ISCSI_LOGIN_STATUS_INIT_ERR);
	n->seen_keys |= 1u << kd->id;

	/* Security keys outside the security stage are a protocol error.  The
	 * converse (operational keys in the security stage; RFC 7143 13 lets
	 * only "Any-Stage" keys appear there) is tolerated: answering them
	 * early is harmless and no known initiator depends on a failure. */
	if ((kd->flags & KF_SECURITY) && stage != ISCSI_STAGE_SECURITY)
		return fail(status, ISCSI_LOGIN_STATUS_INIT_ERR);

	if ((kd->flags & KF_NORMAL_ONLY) && n->session_type == ISCSI_SESSION_DISCOVERY)
		return reply(out, key, "Irrelevant", status);

	/* Names have their own limit (checked below); everything else is a
	 * simple value of at most 255 bytes (RFC 7143 6.1). */
	if (kd->id != K_INITIATOR_NAME && kd->id != K_TARGET_NAME &&
	    strlen(val) > SIMPLE_VALUE_MAX)
		return reply(out, key, "Reject", status);

	switch (kd->id) {
	case K_HEADER_DIGEST:
		return neg_digest(n, key, val, &n->p.header_digest, out, status);
	case K_DATA_DIGEST:
		return neg_digest(n, key, val, &n->p.data_digest, out, status);

	case K_MAX_CONNECTIONS:                /* 1..65535, Minimum */
		if (!num_in_range(val, 1, 65535, &v))
			return reply(out, key, "Reject", status);
		n->p.max_connections = min32(v, cap_range(n->caps->max_connections, 1, 65535));
		return reply_num(out, key, n->p.max_connections, status);

	case K_SEND_TARGETS:
		/* Full Feature Phase only (RFC 7143 13.3). */
		return reply(out, key, "Reject", status);

	case K_TARGET_NAME: {
		size_t l = strlen(val);

		if (l == 0)
			return fail(status, ISCSI_LOGIN_STATUS_MISSING_PARAM);
		if (l > ISCSI_NAME_MAX)
			return fail(status, ISCSI_LOGIN_STATUS_TGT_NOT_FOUND);
		memcpy(n->target_name, val, l + 1);
		return ISCSI_NEG_OK;           /* declarative: no answer */
	}
	case K_INITIATOR_NAME: {
		size_t l = strlen(val);

		if (l == 0)
			return fail(status, ISCSI_LOGIN_STATUS_MISSING_PARAM);
		if (l > ISCSI_NAME_MAX)
			return fail(status, ISCSI_LOGIN_STATUS_INIT_ERR);
		memcpy(n->initiator_name, val, l + 1);
		return ISCSI_NEG_OK;
	}
	case K_INITIATOR_ALIAS:
		snprintf(n->initiator_alias, sizeof(n->initiator_alias), "%s", val);
		return ISCSI_NEG_OK;

	case K_TARGET_ALIAS:
	case K_TARGET_ADDRESS:
	case K_TPGT:
		/* Senders: Target only (13.6, 13.8, 13.9). */
		return reply(out, key, "Reject", status);

	case K_INITIAL_R2T:                    /* Boolean OR (13.10) */
		if (iscsi_parse_bool(val, &b) < 0)
			return reply(out, key, "Reject", status);
		n->p.initial_r2t = b || n->caps->require_initial_r2t;
		return reply_bool(out, key, n->p.initial_r2t, status);

	case K_IMMEDIATE_DATA:                 /* Boolean AND (13.11) */
		if (iscsi_parse_bool(val, &b) < 0)
			return reply(out, key, "Reject", status);
		n->p.immediate_data = b && n->caps->allow_immediate_data;
		return reply_bool(out, key, n->p.immediate_data, status);

	case K_MAX_RECV_DSL:
		/* Declarative (13.12): the initiator's receive limit bounds
		 * our Data-In / response PDUs.  We declare our own in the
		 * same response so the initiator learns it early.  There is
		 * no answer to a declaration, and "MaxRecvDataSegmentLength=
		 * Reject" would be read as *our* declaration by initiators,
		 * so a bad value cannot be answered with Reject:
		 *   - above 2^24-1: the initiator can take at least that
		 *     much; clamping is safe (we only ever send less);
		 *   - malformed or below 512: we cannot honour it, the
		 *     login fails with "initiator error". */
		if (parse_dsl(val, &v) < 0)
			return fail(status, ISCSI_LOGIN_STATUS_INIT_ERR);
		n->p.max_xmit_dsl = v;
		declare_max_recv_dsl(n, out, status, &rc);
		return rc;

	case K_MAX_BURST:                      /* 512..2^24-1, Minimum (13.13) */
		if (!num_in_range(val, DSL_MIN, DSL_MAX, &v))
			return reply(out, key, "Reject", status);
		n->p.max_burst = min32(v, cap_max_burst(n));
		/* FirstBurstLength MUST NOT exceed MaxBurstLength (13.14). If
		 * FirstBurst was answered first with a larger value the
		 * initiator offered inconsistent keys; enforce the smaller. */
		if (n->p.first_burst > n->p.max_burst)
			n->p.first_burst = n->p.max_burst;
		return reply_num(out, key, n->p.max_burst, status);

	case K_FIRST_BURST:                    /* 512..2^24-1, Minimum (13.14) */
		if (!num_in_range(val, DSL_MIN, DSL_MAX, &v))
			return reply(out, key, "Reject", status);
		v = min32(v, cap_first_burst(n));
		if (n->seen_keys & (1u << K_MAX_BURST))
			v = min32(v, n->p.max_burst);
		n->p.first_burst = v;
		return reply_num(out, key, v, status);

	case K_TIME2WAIT:                      /* 0..3600, Maximum (13.15) */
		if (!num_in_range(val, 0, 3600, &v))
			return reply(out, key, "Reject", status);
		n->p.default_time2wait = v > OUR_TIME2WAIT ? v : OUR_TIME2WAIT;
		return reply_num(out, key, n->p.default_time2wait, status);

	case K_TIME2RETAIN:                    /* 0..3600, Minimum (13.16) */
		if (!num_in_range(val, 0, 3600, &v))
			return reply(out, key, "Reject", status);
		n->p.default_time2retain = min32(v, OUR_TIME2RETAIN);
		return reply_num(out, key, n->p.default_time2retain, status);

	case K_MAX_OUTSTANDING_R2T:            /* 1..65535, Minimum (13.17) */
		if (!num_in_range(val, 1, 65535, &v))
			return reply(out, key, "Reject", status);
		n->p.max_outstanding_r2t = min32(v, cap_range(n->caps->max_outstanding_r2t, 1, 65535));
		return reply_num(out, key, n->p.max_outstanding_r2t, status);

	case K_DATA_PDU_IN_ORDER:              /* Boolean OR (13.18) */
		/* We require in-order data (our "Yes" decides the OR). */
		if (iscsi_parse_bool(val, &b) < 0)
			return reply(out, key, "Reject", status);
		n->p.data_pdu_in_order = true;
		return reply_bool(out, key, true, status);

	case K_DATA_SEQ_IN_ORDER:              /* Boolean OR (13.19) */
		if (iscsi_parse_bool(val, &b) < 0)
			return reply(out, key, "Reject", status);
		n->p.data_seq_in_order = true;
		return reply_bool(out, key, true, status);

	case K_ERL:                            /* 0..2, Minimum (13.20); we do 0 */
		if (!num_in_range(val, 0, 2, &v))
			return reply(out, key, "Reject", status);
		n->p.erl = 0;
		return reply_num(out, key, 0, status);

	case K_SESSION_TYPE:                   /* declarative (13.21) */
		if (!strcmp(val, "Normal"))
			n->session_type = ISCSI_SESSION_NORMAL;
		else if (!strcmp(val, "Discovery"))
			n->session_type = ISCSI_SESSION_DISCOVERY;
		else
			return fail(status, ISCSI_LOGIN_STATUS_NO_SESSION_TYPE);
		n->session_type_seen = true;
		return ISCSI_NEG_OK;

	case K_AUTH_METHOD:
		/* List (RFC 7143 12.1).  This version offers None only; if
		 * the initiator insists on authentication we answer Reject
		 * and the login layer fails with 0x0201 when the security
		 * stage ends without auth_method_none. */
		if (list_has(val, "None")) {
			n->auth_method_none = true;
			return reply(out, key, "None", status);
		}
		return reply(out, key, "Reject", status);

	case K_IFMARKER:
	case K_OFMARKER:
		/* Markers are obsolete (RFC 7143 13.25 "Obsoleted Keys": "SHOULD
		 * respond with Reject ... MAY alternatively respond with No").
		 * "No" is what RFC 3720 initiators expect from a Boolean AND
		 * key, so it is the interoperable choice. */
		if (iscsi_parse_bool(val, &b) < 0)
			return reply(out, key, "Reject", status);
		return reply(out, key, "No", status);

	case K_OFMARKINT:
	case K_IFMARKINT:
		/* Obsolete; RFC 7143 requires the constant "Reject". */
		return reply(out, key, "Reject", status);

	case K_PROTOCOL_LEVEL:                 /* 0..31, Minimum (RFC 7144 2.1) */
		if (!num_in_range(val, 0, 31, &v))
			return reply(out, key, "Reject", status);
		return reply_num(out, key, min32(v, OUR_PROTOCOL_LEVEL), status);

	case K_TASK_REPORTING:
		/* RFC 7143 13.23: list of RFC3720, ResponseFence, FastAbort;
		 * we implement plain RFC 3720 semantics only. */
		if (list_has(val, "RFC3720"))
			return reply(out, key, "RFC3720", status);
		return reply(out, key, "Reject", status);

	case K_COUNT:
		break;
	}
	return reply(out, key, "NotUnderstood", status);
}

void iscsi_neg_finish_stage(struct iscsi_neg *n, int stage, struct iscsi_kv_buf *out)
{
	uint16_t st;
	int rc = ISCSI_NEG_OK;

	/* RFC 7143 13.9: TargetPortalGroupTag is returned in the first Login
	 * Response of a Normal session.  Idempotent, so the login layer may call
	 * this on every response. */
	if (n->session_type == ISCSI_SESSION_NORMAL && !n->sent_tpgt) {
		char buf[8];

		snprintf(buf, sizeof(buf), "%u", (unsigned)n->tpgt);
		if (iscsi_kv_append(out, "TargetPortalGroupTag", buf) == 0)
			n->sent_tpgt = true;
	}
	/* Our MaxRecvDataSegmentLength: declared before the operational stage
	 * ends, otherwise the 8192 default would stay in force (13.12). */
	if (stage == ISCSI_STAGE_OPERATIONAL)
		declare_max_recv_dsl(n, out, &st, &rc);

	/* Keep the invariant FirstBurstLength <= MaxBurstLength (13.14) also
	 * when one of them was left at its default. */
	if (n->p.first_burst > n->p.max_burst)
		n->p.first_burst = n->p.max_burst;
}
