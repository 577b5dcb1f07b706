/* test_iscsi_params.c - login key negotiation (RFC 7143 sections 6 and 13).
 *
 * Includes the key sets real initiators send, so a change that breaks
 * open-iscsi or libiscsi logins fails here first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/iscsi_params.h"

struct fx {
	struct iscsi_target_caps caps;
	struct iscsi_neg n;
	char mem[8192];
	struct iscsi_kv_buf out;
	char val[8192];           /* last looked-up answer */
};

static void fx_reset_out(struct fx *f)
{
	f->out.data = f->mem;
	f->out.len = 0;
	f->out.cap = sizeof(f->mem);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	iscsi_caps_default(&f->caps);
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

/* Feed one key; returns the iscsi_neg_key() result, *st the status. */
static int key(struct fx *f, int stage, const char *k, const char *v, uint16_t *st)
{
	uint16_t s = 0xeeee;
	int rc = iscsi_neg_key(&f->n, stage, k, v, &f->out, &s);

	if (rc == ISCSI_NEG_OK)
		assert_int_equal(s, 0);
	if (st)
		*st = s;
	return rc;
}

/* Feed one key that must be accepted (rc 0). */
static void ok(struct fx *f, int stage, const char *k, const char *v)
{
	uint16_t st;

	if (key(f, stage, k, v, &st) != ISCSI_NEG_OK)
		fail_msg("%s=%s failed with status 0x%04x", k, v, st);
}

/* Feed a "key=value\0..." segment like the login layer does. */
static void feed(struct fx *f, int stage, const char *seg, size_t len)
{
	struct iscsi_kv_iter it;
	const char *k, *v;
	int r;

	iscsi_kv_iter_init(&it, seg, len);
	while ((r = iscsi_kv_next(&it, &k, &v)) == 1)
		ok(f, stage, k, v);
	assert_int_equal(r, 0);
}

/* Number of answers for k in the output, and the last value in f->val. */
static int count(struct fx *f, const char *k)
{
	struct iscsi_kv_iter it;
	const char *kk, *vv;
	int n = 0, r;

	iscsi_kv_iter_init(&it, f->out.data, f->out.len);
	while ((r = iscsi_kv_next(&it, &kk, &vv)) == 1) {
		if (!strcmp(kk, k)) {
			n++;
			snprintf(f->val, sizeof(f->val), "%s", vv);
		}
	}
	assert_int_equal(r, 0);       /* the output itself is well-formed */
	return n;
}

static void expect(struct fx *f, const char *k, const char *v)
{
	int n = count(f, k);

	if (n != 1)
		fail_msg("expected one answer for %s, got %d", k, n);
	if (strcmp(f->val, v))
		fail_msg("%s: expected \"%s\", got \"%s\"", k, v, f->val);
}

static void expect_none(struct fx *f, const char *k)
{
	int n = count(f, k);

	if (n)
		fail_msg("unexpected answer %s=%s", k, f->val);
}

/* Negotiate a single key in a fresh operational stage and check the answer. */
static void one(struct fx *f, const char *k, const char *v, const char *answer)
{
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_OPERATIONAL, k, v);
	if (answer)
		expect(f, k, answer);
	else
		expect_none(f, k);
}

#define SEG(s) (s), sizeof(s) - 1

/* ---------------------------------------------------------------- parsers */

static void test_parse_number(void **state)
{
	uint64_t v;

	assert_int_equal(iscsi_parse_number("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(iscsi_parse_number("262144", &v), 0);
	assert_true(v == 262144);
	assert_int_equal(iscsi_parse_number("0x40000", &v), 0);
	assert_true(v == 262144);
	assert_int_equal(iscsi_parse_number("0X1f", &v), 0);
	assert_true(v == 31);
	assert_int_equal(iscsi_parse_number("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(iscsi_parse_number("0xFFFFFFFFFFFFFFFF", &v), 0);
	assert_true(v == UINT64_MAX);
	v = 42;
	assert_int_equal(iscsi_parse_number("18446744073709551616", &v), -1);
	assert_int_equal(iscsi_parse_number("0x10000000000000000", &v), -1);
	assert_int_equal(iscsi_parse_number("", &v), -1);
	assert_int_equal(iscsi_parse_number("0x", &v), -1);
	assert_int_equal(iscsi_parse_number("-1", &v), -1);
	assert_int_equal(iscsi_parse_number("+1", &v), -1);
	assert_int_equal(iscsi_parse_number(" 1", &v), -1);
	assert_int_equal(iscsi_parse_number("1 ", &v), -1);
	assert_int_equal(iscsi_parse_number("12a", &v), -1);
	assert_int_equal(iscsi_parse_number("0x1g", &v), -1);
	assert_int_equal(iscsi_parse_number(NULL, &v), -1);
	assert_true(v == 42);         /* untouched on error */
}

static void test_parse_bool(void **state)
{
	bool b = false;

	assert_int_equal(iscsi_parse_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(iscsi_parse_bool("No", &b), 0);
	assert_false(b);
	assert_int_equal(iscsi_parse_bool("yes", &b), -1);
	assert_int_equal(iscsi_parse_bool("NO", &b), -1);
	assert_int_equal(iscsi_parse_bool("", &b), -1);
	assert_int_equal(iscsi_parse_bool("Yes ", &b), -1);
	assert_int_equal(iscsi_parse_bool("1", &b), -1);
	assert_int_equal(iscsi_parse_bool(NULL, &b), -1);
}

/* ---------------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
	struct iscsi_target_caps c;
	struct iscsi_neg n;

	iscsi_caps_default(&c);
	assert_int_equal(c.max_recv_dsl, 262144);
	assert_int_equal(c.max_burst, 1048576);
	assert_int_equal(c.first_burst, 262144);
	assert_int_equal(c.max_outstanding_r2t, 1);
	assert_true(c.allow_immediate_data);
	assert_false(c.require_initial_r2t);
	assert_true(c.allow_crc32c);
	assert_int_equal(c.max_connections, 1);

	iscsi_neg_init(&n, NULL, 3);
	assert_non_null(n.caps);
	assert_int_equal(n.tpgt, 3);
	/* RFC 7143 section 13 defaults */
	assert_int_equal(n.p.max_xmit_dsl, 8192);
	assert_int_equal(n.p.max_recv_dsl, 8192);
	assert_int_equal(n.p.first_burst, 65536);
	assert_int_equal(n.p.max_burst, 262144);
	assert_true(n.p.immediate_data);
	assert_true(n.p.initial_r2t);
	assert_int_equal(n.p.max_outstanding_r2t, 1);
	assert_int_equal(n.p.default_time2wait, 2);
	assert_int_equal(n.p.default_time2retain, 20);
	assert_true(n.p.data_pdu_in_order);
	assert_true(n.p.data_seq_in_order);
	assert_int_equal(n.p.erl, 0);
	assert_false(n.p.header_digest);
	assert_false(n.p.data_digest);
	assert_int_equal(n.p.max_connections, 1);
	assert_int_equal(n.session_type, ISCSI_SESSION_NORMAL);
	assert_false(n.session_type_seen);
	assert_false(n.sent_max_recv_dsl);
	assert_false(n.sent_tpgt);
	assert_false(n.auth_method_none);
	assert_int_equal(n.seen_keys, 0);
}

/* ---------------------------------------------------------------- real initiators */

/* open-iscsi (iscsid 2.1, default node settings): security stage first with
 * AuthMethod=None, T=1 to operational; then one operational PDU. */
static void test_open_iscsi_normal(void **state)
{
	struct fx *f = *state;

	feed(f, ISCSI_STAGE_SECURITY, SEG("InitiatorName=iqn.2004-10.com.ubuntu:01:5f3e2d1c0b9a\0"
					  "InitiatorAlias=client1\0"
					  "TargetName=iqn.2024-01.org.ringstor:disk0\0"
					  "SessionType=Normal\0"
					  "AuthMethod=None\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &f->out);
	expect(f, "AuthMethod", "None");
	expect(f, "TargetPortalGroupTag", "1");
	expect_none(f, "InitiatorName");        /* declaratives get no answer */
	expect_none(f, "SessionType");
	expect_none(f, "MaxRecvDataSegmentLength");
	assert_true(f->n.auth_method_none);
	assert_true(f->n.session_type_seen);
	assert_string_equal(f->n.initiator_name, "iqn.2004-10.com.ubuntu:01:5f3e2d1c0b9a");
	assert_string_equal(f->n.initiator_alias, "client1");
	assert_string_equal(f->n.target_name, "iqn.2024-01.org.ringstor:disk0");

	fx_reset_out(f);
	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("HeaderDigest=None\0DataDigest=None\0"
					     "DefaultTime2Wait=2\0DefaultTime2Retain=0\0"
					     "IFMarker=No\0OFMarker=No\0ErrorRecoveryLevel=0\0"
					     "InitialR2T=No\0ImmediateData=Yes\0"
					     "MaxBurstLength=16776192\0FirstBurstLength=262144\0"
					     "MaxOutstandingR2T=1\0MaxConnections=1\0"
					     "DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0"
					     "MaxRecvDataSegmentLength=262144\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	expect(f, "HeaderDigest", "None");
	expect(f, "DataDigest", "None");
	expect(f, "DefaultTime2Wait", "2");
	expect(f, "DefaultTime2Retain", "0");
	expect(f, "IFMarker", "No");
	expect(f, "OFMarker", "No");
	expect(f, "ErrorRecoveryLevel", "0");
	expect(f, "InitialR2T", "No");
	expect(f, "ImmediateData", "Yes");
	expect(f, "MaxBurstLength", "1048576");
	expect(f, "FirstBurstLength", "262144");
	expect(f, "MaxOutstandingR2T", "1");
	expect(f, "MaxConnections", "1");
	expect(f, "DataPDUInOrder", "Yes");
	expect(f, "DataSequenceInOrder", "Yes");
	expect(f, "MaxRecvDataSegmentLength", "262144");   /* ours, declared once */
	expect_none(f, "TargetPortalGroupTag");             /* already sent */

	assert_int_equal(f->n.p.max_xmit_dsl, 262144);
	assert_int_equal(f->n.p.max_recv_dsl, 262144);
	assert_int_equal(f->n.p.max_burst, 1048576);
	assert_int_equal(f->n.p.first_burst, 262144);
	assert_false(f->n.p.initial_r2t);
	assert_true(f->n.p.immediate_data);
	assert_int_equal(f->n.p.default_time2wait, 2);
	assert_int_equal(f->n.p.default_time2retain, 0);
	assert_int_equal(f->n.p.erl, 0);
	assert_false(f->n.p.header_digest);
	assert_false(f->n.p.data_digest);
	assert_true(f->n.sent_max_recv_dsl);
	assert_true(f->n.sent_tpgt);
}

/* libiscsi 1.19 without CHAP: skips the security stage and sends everything
 * in one operational PDU with T=1 to full feature phase. */
static void test_libiscsi_normal(void **state)
{
	struct fx *f = *state;

	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("InitiatorName=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test\0"
					     "TargetName=iqn.2024-01.org.ringstor:disk0\0"
					     "SessionType=Normal\0"
					     "HeaderDigest=None,CRC32C\0DataDigest=None\0"
					     "InitialR2T=Yes\0ImmediateData=Yes\0"
					     "MaxBurstLength=262144\0FirstBurstLength=262144\0"
					     "DefaultTime2Wait=2\0DefaultTime2Retain=0\0"
					     "MaxOutstandingR2T=1\0ErrorRecoveryLevel=0\0"
					     "IFMarker=No\0OFMarker=No\0MaxConnections=1\0"
					     "MaxRecvDataSegmentLength=262144\0"
					     "DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	expect(f, "HeaderDigest", "None");      /* first acceptable of the list */
	expect(f, "DataDigest", "None");
	expect(f, "InitialR2T", "Yes");
	expect(f, "ImmediateData", "Yes");
	expect(f, "MaxBurstLength", "262144");
	expect(f, "FirstBurstLength", "262144");
	expect(f, "MaxRecvDataSegmentLength", "262144");
	expect(f, "TargetPortalGroupTag", "1");   /* first (and only) response */
	assert_true(f->n.p.initial_r2t);
	assert_int_equal(f->n.p.first_burst, 262144);
	assert_int_equal(f->n.p.max_burst, 262144);
	assert_false(f->n.auth_method_none);  /* no security stage at all */

	/* Idempotent: a second call adds nothing. */
	size_t len = f->out.len;
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	assert_int_equal(f->out.len, len);
}

/* libiscsi discovery (iscsi-ls): same operational key set, SessionType=Discovery. */
static void test_libiscsi_discovery(void **state)
{
	struct fx *f = *state;

	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("InitiatorName=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-ls\0"
					     "SessionType=Discovery\0"
					     "HeaderDigest=None,CRC32C\0DataDigest=None\0"
					     "InitialR2T=Yes\0ImmediateData=Yes\0"
					     "MaxBurstLength=262144\0FirstBurstLength=262144\0"
					     "DefaultTime2Wait=2\0DefaultTime2Retain=0\0"
					     "MaxOutstandingR2T=1\0ErrorRecoveryLevel=0\0"
					     "IFMarker=No\0OFMarker=No\0MaxConnections=1\0"
					     "MaxRecvDataSegmentLength=262144\0"
					     "DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	assert_int_equal(f->n.session_type, ISCSI_SESSION_DISCOVERY);
	/* "Irrelevant when: SessionType=Discovery" (RFC 7143 13.2, 13.10,
	 * 13.11, 13.13, 13.14, 13.17-13.19) */
	expect(f, "InitialR2T", "Irrelevant");
	expect(f, "ImmediateData", "Irrelevant");
	expect(f, "MaxBurstLength", "Irrelevant");
	expect(f, "FirstBurstLength", "Irrelevant");
	expect(f, "MaxOutstandingR2T", "Irrelevant");
	expect(f, "MaxConnections", "Irrelevant");
	expect(f, "DataPDUInOrder", "Irrelevant");
	expect(f, "DataSequenceInOrder", "Irrelevant");
	/* Still relevant for discovery */
	expect(f, "HeaderDigest", "None");
	expect(f, "DataDigest", "None");
	expect(f, "DefaultTime2Wait", "2");
	expect(f, "DefaultTime2Retain", "0");
	expect(f, "ErrorRecoveryLevel", "0");
	expect(f, "MaxRecvDataSegmentLength", "262144");
	/* No TargetPortalGroupTag in discovery sessions */
	expect_none(f, "TargetPortalGroupTag");
	assert_int_equal(f->n.p.max_xmit_dsl, 262144);
}

/* open-iscsi discovery (iscsiadm -m discovery -t st): security stage, then
 * a reduced operational set. */
static void test_open_iscsi_discovery(void **state)
{
	struct fx *f = *state;

	feed(f, ISCSI_STAGE_SECURITY, SEG("InitiatorName=iqn.2004-10.com.ubuntu:01:5f3e2d1c0b9a\0"
					  "InitiatorAlias=client1\0SessionType=Discovery\0"
					  "AuthMethod=None\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &f->out);
	expect(f, "AuthMethod", "None");
	expect_none(f, "TargetPortalGroupTag");
	fx_reset_out(f);
	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("HeaderDigest=None\0DataDigest=None\0"
					     "DefaultTime2Wait=2\0DefaultTime2Retain=0\0"
					     "IFMarker=No\0OFMarker=No\0ErrorRecoveryLevel=0\0"
					     "MaxRecvDataSegmentLength=32768\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	expect(f, "MaxRecvDataSegmentLength", "262144");
	expect_none(f, "TargetPortalGroupTag");
	assert_int_equal(f->n.p.max_xmit_dsl, 32768);
}

/* Windows / ESXi style extras: iSCSIProtocolLevel, TaskReporting, vendor keys. */
static void test_extension_keys(void **state)
{
	struct fx *f = *state;

	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("iSCSIProtocolLevel=2\0"
					     "TaskReporting=ResponseFence,RFC3720\0"
					     "X-com.microsoft.ManagementIPAddress=10.0.0.1\0"
					     "X#com.example.Foo=1\0"
					     "X-com.vmware.Bar=Yes\0"
					     "SomeFutureKey=42\0"));
	expect(f, "iSCSIProtocolLevel", "1");
	expect(f, "TaskReporting", "RFC3720");
	expect(f, "X-com.microsoft.ManagementIPAddress", "NotUnderstood");
	expect(f, "X#com.example.Foo", "NotUnderstood");
	expect(f, "X-com.vmware.Bar", "NotUnderstood");
	expect(f, "SomeFutureKey", "NotUnderstood");

	one(f, "iSCSIProtocolLevel", "0", "0");
	one(f, "iSCSIProtocolLevel", "1", "1");
	one(f, "iSCSIProtocolLevel", "32", "Reject");
	one(f, "iSCSIProtocolLevel", "x", "Reject");
	one(f, "TaskReporting", "FastAbort,ResponseFence", "Reject");
	one(f, "TaskReporting", "RFC3720", "RFC3720");
	one(f, "TaskReporting", "RFC3720x", "Reject");
}

/* ---------------------------------------------------------------- per key */

static void test_digests(void **state)
{
	struct fx *f = *state;

	one(f, "HeaderDigest", "CRC32C,None", "CRC32C");
	assert_true(f->n.p.header_digest);
	one(f, "DataDigest", "CRC32C,None", "CRC32C");
	assert_true(f->n.p.data_digest);
	one(f, "HeaderDigest", "None,CRC32C", "None");
	assert_false(f->n.p.header_digest);
	one(f, "HeaderDigest", "CRC32C", "CRC32C");
	one(f, "HeaderDigest", "MD5,CRC32C", "CRC32C");   /* unknown values skipped */
	one(f, "HeaderDigest", "crc32c", "Reject");        /* case-sensitive */
	assert_false(f->n.p.header_digest);
	one(f, "HeaderDigest", "", "Reject");
	one(f, "HeaderDigest", ",,None", "None");
	one(f, "HeaderDigest", "CRC32CNone", "Reject");

	f->caps.allow_crc32c = false;
	one(f, "HeaderDigest", "CRC32C,None", "None");
	assert_false(f->n.p.header_digest);
	one(f, "DataDigest", "CRC32C", "Reject");
	assert_false(f->n.p.data_digest);
}

static void test_bursts(void **state)
{
	struct fx *f = *state;

	one(f, "MaxBurstLength", "512", "512");
	one(f, "MaxBurstLength", "16777215", "1048576");
	one(f, "MaxBurstLength", "0x8000", "32768");
	one(f, "MaxBurstLength", "511", "Reject");
	assert_int_equal(f->n.p.max_burst, 262144);        /* default kept */
	one(f, "MaxBurstLength", "16777216", "Reject");
	one(f, "MaxBurstLength", "", "Reject");
	one(f, "MaxBurstLength", "lots", "Reject");
	one(f, "FirstBurstLength", "65536", "65536");
	one(f, "FirstBurstLength", "16777215", "262144");
	one(f, "FirstBurstLength", "100", "Reject");

	/* FirstBurstLength MUST NOT exceed MaxBurstLength (13.14). */
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", "65536");
	ok(f, ISCSI_STAGE_OPERATIONAL, "FirstBurstLength", "262144");
	expect(f, "FirstBurstLength", "65536");
	assert_int_equal(f->n.p.first_burst, 65536);

	/* Reverse order: the later, smaller MaxBurst clamps FirstBurst. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_OPERATIONAL, "FirstBurstLength", "262144");
	ok(f, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", "8192");
	assert_int_equal(f->n.p.max_burst, 8192);
	assert_int_equal(f->n.p.first_burst, 8192);

	/* MaxBurst below the default FirstBurst, FirstBurst never sent. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", "4096");
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	assert_int_equal(f->n.p.first_burst, 4096);

	/* Target caps bound the result. */
	f->caps.max_burst = 131072;
	f->caps.first_burst = 65536;
	one(f, "MaxBurstLength", "262144", "131072");
	one(f, "FirstBurstLength", "262144", "65536");
	/* Caps with FirstBurst > MaxBurst are clamped to MaxBurst. */
	f->caps.first_burst = 1048576;
	one(f, "FirstBurstLength", "16777215", "131072");
}

static void test_max_recv_dsl(void **state)
{
	struct fx *f = *state;

	/* The only "answer" is our own declaration (same key, our value). */
	one(f, "MaxRecvDataSegmentLength", "8192", "262144");
	assert_int_equal(f->n.p.max_xmit_dsl, 8192);
	assert_int_equal(f->n.p.max_recv_dsl, 262144);
	one(f, "MaxRecvDataSegmentLength", "16777215", "262144");
	assert_int_equal(f->n.p.max_xmit_dsl, 16777215);
	one(f, "MaxRecvDataSegmentLength", "512", "262144");
	assert_int_equal(f->n.p.max_xmit_dsl, 512);

	/* Above 2^24-1: clamped (we may always send less). */
	one(f, "MaxRecvDataSegmentLength", "16777216", "262144");
	assert_int_equal(f->n.p.max_xmit_dsl, 16777215);
	one(f, "MaxRecvDataSegmentLength", "0xffffffffff", "262144");
	assert_int_equal(f->n.p.max_xmit_dsl, 16777215);

	/* Unusable declarations fail the login: answering "Reject" under
	 * this key would read as our own declaration. */
	static const char *const bad[] = { "511", "0", "abc", "", "-8192" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint16_t st;

		iscsi_neg_init(&f->n, &f->caps, 1);
		fx_reset_out(f);
		assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "MaxRecvDataSegmentLength", bad[i], &st),
				 ISCSI_NEG_FAIL_INITIATOR);
		assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);
		assert_int_equal(f->n.p.max_xmit_dsl, 8192);
		assert_int_equal(f->n.p.max_recv_dsl, 8192);
		expect_none(f, "MaxRecvDataSegmentLength");
	}

	/* Caps: our own value, clamped to the legal range. */
	f->caps.max_recv_dsl = 65536;
	one(f, "MaxRecvDataSegmentLength", "8192", "65536");
	f->caps.max_recv_dsl = 100;
	one(f, "MaxRecvDataSegmentLength", "8192", "512");
	f->caps.max_recv_dsl = 0;                          /* 0 = default */
	one(f, "MaxRecvDataSegmentLength", "8192", "262144");
	f->caps.max_recv_dsl = 0x7fffffff;
	one(f, "MaxRecvDataSegmentLength", "8192", "16777215");

	/* Initiator never sends it: declared when operational stage ends,
	 * not in the security stage, exactly once. */
	f->caps.max_recv_dsl = 131072;
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &f->out);
	expect_none(f, "MaxRecvDataSegmentLength");
	assert_int_equal(f->n.p.max_recv_dsl, 8192);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	expect(f, "MaxRecvDataSegmentLength", "131072");
	assert_int_equal(f->n.p.max_recv_dsl, 131072);
}

static void test_booleans(void **state)
{
	struct fx *f = *state;

	/* InitialR2T: OR */
	one(f, "InitialR2T", "No", "No");
	assert_false(f->n.p.initial_r2t);
	one(f, "InitialR2T", "Yes", "Yes");
	assert_true(f->n.p.initial_r2t);
	one(f, "InitialR2T", "no", "Reject");
	assert_true(f->n.p.initial_r2t);
	f->caps.require_initial_r2t = true;
	one(f, "InitialR2T", "No", "Yes");
	assert_true(f->n.p.initial_r2t);

	/* ImmediateData: AND */
	one(f, "ImmediateData", "Yes", "Yes");
	assert_true(f->n.p.immediate_data);
	one(f, "ImmediateData", "No", "No");
	assert_false(f->n.p.immediate_data);
	one(f, "ImmediateData", "Maybe", "Reject");
	assert_true(f->n.p.immediate_data);
	f->caps.allow_immediate_data = false;
	one(f, "ImmediateData", "Yes", "No");
	assert_false(f->n.p.immediate_data);

	/* DataPDUInOrder / DataSequenceInOrder: OR, we say Yes */
	one(f, "DataPDUInOrder", "No", "Yes");
	assert_true(f->n.p.data_pdu_in_order);
	one(f, "DataSequenceInOrder", "No", "Yes");
	assert_true(f->n.p.data_seq_in_order);
	one(f, "DataSequenceInOrder", "", "Reject");
}

static void test_numbers(void **state)
{
	struct fx *f = *state;

	/* DefaultTime2Wait: Maximum, 0..3600 */
	one(f, "DefaultTime2Wait", "0", "2");
	assert_int_equal(f->n.p.default_time2wait, 2);
	one(f, "DefaultTime2Wait", "10", "10");
	assert_int_equal(f->n.p.default_time2wait, 10);
	one(f, "DefaultTime2Wait", "3600", "3600");
	one(f, "DefaultTime2Wait", "3601", "Reject");
	assert_int_equal(f->n.p.default_time2wait, 2);
	/* DefaultTime2Retain: Minimum, 0..3600 */
	one(f, "DefaultTime2Retain", "0", "0");
	assert_int_equal(f->n.p.default_time2retain, 0);
	one(f, "DefaultTime2Retain", "60", "20");
	one(f, "DefaultTime2Retain", "5", "5");
	one(f, "DefaultTime2Retain", "4000", "Reject");
	assert_int_equal(f->n.p.default_time2retain, 20);
	/* MaxOutstandingR2T: Minimum, 1..65535 */
	one(f, "MaxOutstandingR2T", "8", "1");
	one(f, "MaxOutstandingR2T", "0", "Reject");
	one(f, "MaxOutstandingR2T", "65536", "Reject");
	f->caps.max_outstanding_r2t = 4;
	one(f, "MaxOutstandingR2T", "8", "4");
	assert_int_equal(f->n.p.max_outstanding_r2t, 4);
	one(f, "MaxOutstandingR2T", "2", "2");
	/* MaxConnections: Minimum, 1..65535 */
	one(f, "MaxConnections", "8", "1");
	assert_int_equal(f->n.p.max_connections, 1);
	one(f, "MaxConnections", "0", "Reject");
	one(f, "MaxConnections", "65536", "Reject");
	f->caps.max_connections = 4;
	one(f, "MaxConnections", "2", "2");
	one(f, "MaxConnections", "65535", "4");
	/* ErrorRecoveryLevel: Minimum 0..2, we support 0 */
	one(f, "ErrorRecoveryLevel", "2", "0");
	assert_int_equal(f->n.p.erl, 0);
	one(f, "ErrorRecoveryLevel", "1", "0");
	one(f, "ErrorRecoveryLevel", "3", "Reject");
	one(f, "ErrorRecoveryLevel", "0x0", "0");
}

static void test_markers(void **state)
{
	struct fx *f = *state;

	one(f, "IFMarker", "Yes", "No");
	one(f, "OFMarker", "No", "No");
	one(f, "OFMarker", "Perhaps", "Reject");
	one(f, "OFMarkInt", "2048~8192", "Reject");
	one(f, "IFMarkInt", "2048", "Reject");
}

static void test_identity_keys(void **state)
{
	struct fx *f = *state;
	char name[300];
	uint16_t st;

	/* 223 bytes is the longest iSCSI name (RFC 7143 4.2.7.1). */
	memset(name, 'n', 223);
	name[223] = '\0';
	one(f, "InitiatorName", name, NULL);
	assert_int_equal(strlen(f->n.initiator_name), 223);
	one(f, "TargetName", name, NULL);
	assert_int_equal(strlen(f->n.target_name), 223);

	name[223] = 'n';
	name[224] = '\0';
	iscsi_neg_init(&f->n, &f->caps, 1);
	assert_int_equal(key(f, ISCSI_STAGE_SECURITY, "InitiatorName", name, &st), ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);
	iscsi_neg_init(&f->n, &f->caps, 1);
	assert_int_equal(key(f, ISCSI_STAGE_SECURITY, "TargetName", name, &st), ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_TGT_NOT_FOUND);
	iscsi_neg_init(&f->n, &f->caps, 1);
	assert_int_equal(key(f, ISCSI_STAGE_SECURITY, "InitiatorName", "", &st), ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_MISSING_PARAM);
	iscsi_neg_init(&f->n, &f->caps, 1);
	assert_int_equal(key(f, ISCSI_STAGE_SECURITY, "TargetName", "", &st), ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_MISSING_PARAM);

	/* Alias: up to 255 bytes; longer is a Reject, not a login failure. */
	memset(name, 'a', 255);
	name[255] = '\0';
	one(f, "InitiatorAlias", name, NULL);
	assert_int_equal(strlen(f->n.initiator_alias), 255);
	name[255] = 'a';
	name[256] = '\0';
	one(f, "InitiatorAlias", name, "Reject");
	assert_string_equal(f->n.initiator_alias, "");

	/* SessionType */
	one(f, "SessionType", "Discovery", NULL);
	assert_int_equal(f->n.session_type, ISCSI_SESSION_DISCOVERY);
	one(f, "SessionType", "Normal", NULL);
	assert_int_equal(f->n.session_type, ISCSI_SESSION_NORMAL);
	iscsi_neg_init(&f->n, &f->caps, 1);
	assert_int_equal(key(f, ISCSI_STAGE_SECURITY, "SessionType", "discovery", &st), ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_NO_SESSION_TYPE);

	/* Keys only a target may send, and FFP-only SendTargets. */
	one(f, "TargetAlias", "foo", "Reject");
	one(f, "TargetAddress", "10.0.0.1:3260,1", "Reject");
	one(f, "TargetPortalGroupTag", "1", "Reject");
	one(f, "SendTargets", "All", "Reject");
}

static void test_auth_method(void **state)
{
	struct fx *f = *state;
	uint16_t st;

	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_SECURITY, "AuthMethod", "CHAP,None");
	expect(f, "AuthMethod", "None");
	assert_true(f->n.auth_method_none);

	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_SECURITY, "AuthMethod", "KRB5,SRP,SPKM1,None");
	expect(f, "AuthMethod", "None");

	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_SECURITY, "AuthMethod", "CHAP");
	expect(f, "AuthMethod", "Reject");
	assert_false(f->n.auth_method_none);

	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_SECURITY, "AuthMethod", "Nonexistent");
	expect(f, "AuthMethod", "Reject");
	assert_false(f->n.auth_method_none);

	/* Security keys outside the security stage: initiator error. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "AuthMethod", "None", &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);
	assert_false(f->n.auth_method_none);
	assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "CHAP_A", "5", &st), ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);
	assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "CHAP_N", "user", &st), ISCSI_NEG_FAIL_INITIATOR);
	/* ... and in the security stage, without CHAP support, NotUnderstood. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	ok(f, ISCSI_STAGE_SECURITY, "CHAP_A", "5");
	expect(f, "CHAP_A", "NotUnderstood");
}

static void test_duplicates(void **state)
{
	struct fx *f = *state;
	uint16_t st;

	ok(f, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", "65536");
	assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", "65536", &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);

	/* Across stages too: one login is one negotiation. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	ok(f, ISCSI_STAGE_SECURITY, "InitiatorName", "iqn.x");
	assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "InitiatorName", "iqn.y", &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);
	assert_string_equal(f->n.initiator_name, "iqn.x");

	/* Even when the first attempt was answered Reject. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	ok(f, ISCSI_STAGE_OPERATIONAL, "HeaderDigest", "MD5");
	assert_int_equal(key(f, ISCSI_STAGE_OPERATIONAL, "HeaderDigest", "None", &st),
			 ISCSI_NEG_FAIL_INITIATOR);

	/* Unknown keys are not tracked: answering twice is harmless. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	ok(f, ISCSI_STAGE_OPERATIONAL, "X-foo", "1");
	ok(f, ISCSI_STAGE_OPERATIONAL, "X-foo", "1");

	/* Every key exactly once in one login: no false duplicate. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	feed(f, ISCSI_STAGE_SECURITY, SEG("InitiatorName=i\0TargetName=t\0SessionType=Normal\0"
					  "AuthMethod=None\0InitiatorAlias=a\0"));
	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("HeaderDigest=None\0DataDigest=None\0MaxConnections=1\0"
					     "InitialR2T=Yes\0ImmediateData=Yes\0"
					     "MaxRecvDataSegmentLength=8192\0MaxBurstLength=262144\0"
					     "FirstBurstLength=65536\0DefaultTime2Wait=2\0"
					     "DefaultTime2Retain=20\0MaxOutstandingR2T=1\0"
					     "DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0"
					     "ErrorRecoveryLevel=0\0IFMarker=No\0OFMarker=No\0"
					     "OFMarkInt=1\0IFMarkInt=1\0iSCSIProtocolLevel=1\0"
					     "TaskReporting=RFC3720\0TargetAlias=x\0TargetAddress=x\0"
					     "TargetPortalGroupTag=1\0SendTargets=All\0"));
}

static void test_answer_values_ignored(void **state)
{
	struct fx *f = *state;

	/* "Reject"/"Irrelevant"/"NotUnderstood" are answers to offers; we
	 * make none, so they produce nothing and change nothing. */
	one(f, "MaxBurstLength", "Irrelevant", NULL);
	assert_int_equal(f->n.p.max_burst, 262144);
	one(f, "HeaderDigest", "Reject", NULL);
	one(f, "TargetPortalGroupTag", "NotUnderstood", NULL);
	assert_int_equal(f->n.seen_keys, 0);
}

static void test_value_length(void **state)
{
	struct fx *f = *state;
	char v[300];

	/* A list of 256 bytes exceeds the simple-value limit (RFC 7143 6.1). */
	memset(v, ',', 256);
	memcpy(v + 252, "None", 4);
	v[256] = '\0';
	one(f, "HeaderDigest", v, "Reject");
	v[0] = 'N';  /* shorten to 255 by starting later */
	one(f, "HeaderDigest", v + 1, "None");
}

static void test_bad_arguments(void **state)
{
	struct fx *f = *state;
	uint16_t st;

	assert_int_equal(iscsi_neg_key(&f->n, ISCSI_STAGE_OPERATIONAL, NULL, "x", &f->out, &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_INIT_ERR);
	assert_int_equal(iscsi_neg_key(&f->n, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", NULL, &f->out, &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(iscsi_neg_key(&f->n, ISCSI_STAGE_OPERATIONAL, "", "1", &f->out, &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	/* NULL status pointer tolerated. */
	assert_int_equal(iscsi_neg_key(&f->n, ISCSI_STAGE_OPERATIONAL, "ImmediateData", "Yes", &f->out, NULL),
			 ISCSI_NEG_OK);
}

static void test_output_full(void **state)
{
	struct fx *f = *state;
	char small[20];
	struct iscsi_kv_buf b = { .data = small, .len = 0, .cap = sizeof(small) };
	uint16_t st = 0;

	/* "MaxBurstLength=65536\0" is 21 bytes: does not fit in 20. */
	assert_int_equal(iscsi_neg_key(&f->n, ISCSI_STAGE_OPERATIONAL, "MaxBurstLength", "65536", &b, &st),
			 ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_NO_RESOURCES);
	assert_int_equal(b.len, 0);

	/* A flood of unknown keys overflowing a login-sized buffer fails
	 * cleanly instead of truncating. */
	iscsi_neg_init(&f->n, &f->caps, 1);
	fx_reset_out(f);
	int rc = ISCSI_NEG_OK;
	for (int i = 0; i < 2000 && rc == ISCSI_NEG_OK; i++) {
		char k[32];

		snprintf(k, sizeof(k), "X-k%d", i);
		rc = iscsi_neg_key(&f->n, ISCSI_STAGE_OPERATIONAL, k, "v", &f->out, &st);
	}
	assert_int_equal(rc, ISCSI_NEG_FAIL_INITIATOR);
	assert_int_equal(st, ISCSI_LOGIN_STATUS_NO_RESOURCES);
	assert_true(f->out.len <= f->out.cap);
	(void)count(f, "X-k0");   /* what was written is still well-formed */
}

static void test_tpgt(void **state)
{
	struct fx *f = *state;

	iscsi_neg_init(&f->n, &f->caps, 7);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &f->out);
	expect(f, "TargetPortalGroupTag", "7");
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &f->out);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	expect(f, "TargetPortalGroupTag", "7");             /* still only once */

	iscsi_neg_init(&f->n, &f->caps, 65535);
	fx_reset_out(f);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	expect(f, "TargetPortalGroupTag", "65535");

	/* A full buffer does not mark it as sent: retried next response. */
	char small[4];
	struct iscsi_kv_buf b = { .data = small, .len = 0, .cap = sizeof(small) };
	iscsi_neg_init(&f->n, &f->caps, 1);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &b);
	assert_false(f->n.sent_tpgt);
	fx_reset_out(f);
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_SECURITY, &f->out);
	expect(f, "TargetPortalGroupTag", "1");
}

/* Text Request negotiation in Full Feature Phase (RFC 7143 6.5). */
static void test_full_feature_text(void **state)
{
	struct fx *f = *state;
	const int ffp = ISCSI_STAGE_FULL_FEATURE;

	feed(f, ISCSI_STAGE_OPERATIONAL, SEG("MaxRecvDataSegmentLength=65536\0MaxBurstLength=65536\0"));
	iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
	assert_int_equal(f->n.p.max_xmit_dsl, 65536);

	/* Re-declaring MaxRecvDataSegmentLength (Use: ALL) is legal and is
	 * not a duplicate; it needs no answer. */
	fx_reset_out(f);
	ok(f, ffp, "MaxRecvDataSegmentLength", "131072");
	assert_int_equal(f->n.p.max_xmit_dsl, 131072);
	ok(f, ffp, "MaxRecvDataSegmentLength", "8192");
	assert_int_equal(f->n.p.max_xmit_dsl, 8192);
	assert_int_equal(f->out.len, 0);
	ok(f, ffp, "MaxRecvDataSegmentLength", "12");
	expect(f, "MaxRecvDataSegmentLength", "Reject");
	assert_int_equal(f->n.p.max_xmit_dsl, 8192);

	/* Login-only keys cannot be renegotiated; nothing changes, no failure. */
	fx_reset_out(f);
	ok(f, ffp, "MaxBurstLength", "1024");
	expect(f, "MaxBurstLength", "Reject");
	assert_int_equal(f->n.p.max_burst, 65536);
	ok(f, ffp, "AuthMethod", "None");
	expect(f, "AuthMethod", "Reject");
	ok(f, ffp, "X-vendor.key", "1");
	expect(f, "X-vendor.key", "NotUnderstood");
	ok(f, ffp, "CHAP_A", "5");
	expect(f, "CHAP_A", "NotUnderstood");
}

/* Random key/value soup: never crashes, output always well-formed, the
 * resulting parameters always inside the RFC ranges and our caps. */
static void test_negotiation_fuzz(void **state)
{
	struct fx *f = *state;
	static const char *const ks[] = {
		"HeaderDigest", "DataDigest", "MaxConnections", "SendTargets", "TargetName",
		"InitiatorName", "TargetAlias", "InitiatorAlias", "TargetAddress",
		"TargetPortalGroupTag", "InitialR2T", "ImmediateData", "MaxRecvDataSegmentLength",
		"MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain",
		"MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder", "ErrorRecoveryLevel",
		"SessionType", "AuthMethod", "IFMarker", "OFMarker", "OFMarkInt", "IFMarkInt",
		"iSCSIProtocolLevel", "TaskReporting", "X-foo", "X#bar", "CHAP_A", "Unknown",
	};
	static const char *const vs[] = {
		"", "0", "1", "2", "511", "512", "8192", "65536", "262144", "16777215",
		"16777216", "0x10", "0x", "99999999999999999999999", "Yes", "No", "yes",
		"None", "CRC32C", "CRC32C,None", "None,CRC32C", ",", "Normal", "Discovery",
		"Reject", "Irrelevant", "NotUnderstood", "RFC3720", "CHAP,None", "iqn.x",
		"2048~8192", "-1", "3600", "3601",
	};
	unsigned seed = 99;

	for (int round = 0; round < 3000; round++) {
		iscsi_caps_default(&f->caps);
		seed = seed * 1103515245u + 12345u;
		f->caps.max_burst = (seed >> 4) % 3 == 0 ? 4096 : f->caps.max_burst;
		f->caps.allow_crc32c = (seed >> 8) & 1;
		iscsi_neg_init(&f->n, &f->caps, 1);
		fx_reset_out(f);
		for (int i = 0; i < 40; i++) {
			uint16_t st;
			int stage;

			seed = seed * 1103515245u + 12345u;
			stage = (int)((seed >> 20) % 3);
			if (stage == 2)
				stage = ISCSI_STAGE_FULL_FEATURE;
			if (iscsi_neg_key(&f->n, stage, ks[(seed >> 4) % (sizeof(ks) / sizeof(ks[0]))],
					  vs[(seed >> 12) % (sizeof(vs) / sizeof(vs[0]))], &f->out, &st) != 0)
				assert_true(st >= 0x0200);
		}
		iscsi_neg_finish_stage(&f->n, ISCSI_STAGE_OPERATIONAL, &f->out);
		(void)count(f, "none");            /* asserts well-formed output */
		const struct iscsi_params *p = &f->n.p;
		assert_true(p->max_xmit_dsl >= 512 && p->max_xmit_dsl <= 16777215);
		assert_true(p->max_recv_dsl >= 512 && p->max_recv_dsl <= 262144);
		/* Negotiated: <= caps; not negotiated: the RFC default. */
		assert_true(p->max_burst >= 512 &&
			    (p->max_burst <= f->caps.max_burst || p->max_burst == 262144));
		assert_true(p->first_burst >= 512 && p->first_burst <= p->max_burst);
		assert_true(p->max_outstanding_r2t == 1);
		assert_true(p->max_connections == 1);
		assert_true(p->erl == 0);
		assert_true(p->default_time2wait <= 3600 && p->default_time2retain <= 20);
		assert_true(p->data_pdu_in_order && p->data_seq_in_order);
		if (!f->caps.allow_crc32c)
			assert_false(p->header_digest || p->data_digest);
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_parse_number),
		T(test_parse_bool),
		T(test_defaults),
		T(test_open_iscsi_normal),
		T(test_libiscsi_normal),
		T(test_libiscsi_discovery),
		T(test_open_iscsi_discovery),
		T(test_extension_keys),
		T(test_digests),
		T(test_bursts),
		T(test_max_recv_dsl),
		T(test_booleans),
		T(test_numbers),
		T(test_markers),
		T(test_identity_keys),
		T(test_auth_method),
		T(test_duplicates),
		T(test_answer_values_ignored),
		T(test_value_length),
		T(test_bad_arguments),
		T(test_output_full),
		T(test_tpgt),
		T(test_full_feature_text),
		T(test_negotiation_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
