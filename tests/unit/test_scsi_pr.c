/* test_scsi_pr.c - persistent reservations and RESERVE(6)/RELEASE(6)
 * (target/scsi_pr.c) against SPC-4 5.13 / 6.15 / 6.16 and SPC-2.
 *
 * The commands are driven the way the dispatcher will: scsi_pr_check()
 * first, then the handler (or "executed" for any other opcode). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "target/scsi.h"
#include "target/scsi_internal.h"
#include "target/scsi_pr.h"

#define GOOD     SAM_STAT_GOOD
#define CONFLICT SAM_STAT_RESERVATION_CONFLICT
#define CHECK    SAM_STAT_CHECK_CONDITION

enum { SA_REGISTER, SA_RESERVE, SA_RELEASE, SA_CLEAR, SA_PREEMPT, SA_PREEMPT_ABORT,
       SA_REGISTER_IGNORE, SA_REGISTER_MOVE };
enum { WE = 1, EA = 3, WE_RO = 5, EA_RO = 6, WE_AR = 7, EA_AR = 8 };
static const uint8_t all_types[] = { WE, EA, WE_RO, EA_RO, WE_AR, EA_AR };

#define PORT1 "iqn.2024-01.org.example:init1,i,0x23d000000001"
#define PORT2 "iqn.2024-01.org.example:init2,i,0x23d000000002"
#define PORT3 "iqn.2024-01.org.example:init3,i,0x23d000000003"

static struct scsi_nexus n1 = { .id = 1, .initiator_port = PORT1, .target_port_id = 1 };
static struct scsi_nexus n2 = { .id = 2, .initiator_port = PORT2, .target_port_id = 1 };
static struct scsi_nexus n3 = { .id = 3, .initiator_port = PORT3, .target_port_id = 1 };
/* Never registers: used by the READ KEYS / READ RESERVATION helpers. */
static struct scsi_nexus n9 = { .id = 9, .initiator_port = "iqn.2024-01.org.example:observer,i,0x1",
				.target_port_id = 1 };

static char tmpdir[64];
static struct scsi_cmd C;
static struct scsi_lu *L;

/* ---------------------------------------------------------------------- */

static struct scsi_lu *mk_lu(uint8_t seed)
{
	struct scsi_lu *lu = calloc(1, sizeof(*lu));
	int i;

	assert_non_null(lu);
	lu->lun = seed;
	for (i = 0; i < 16; i++)
		lu->naa[i] = (uint8_t)(seed * 16 + i);
	lu->block_size = 512;
	pthread_mutex_init(&lu->lock, NULL);
	return lu;
}

static void free_lu(struct scsi_lu *lu)
{
	struct scsi_ua *ua, *next;

	if (!lu)
		return;
	scsi_pr_free(lu);
	for (ua = lu->ua_list; ua; ua = next) {
		next = ua->next;
		free(ua);
	}
	pthread_mutex_destroy(&lu->lock);
	free(lu);
}

static struct scsi_cmd *run(struct scsi_lu *lu, const struct scsi_nexus *n, const uint8_t *cdb,
			    unsigned cdb_len, uint8_t *data, uint32_t dlen)
{
	scsi_cmd_release(&C);
	memset(&C, 0, sizeof(C));
	memcpy(C.cdb, cdb, cdb_len);
	C.cdb_len = (uint8_t)cdb_len;
	C.lu = lu;
	C.lun = lu->lun;
	C.nexus = n;
	C.data_out = data;
	C.data_out_len = dlen;
	if (!scsi_pr_check(&C)) {
		assert_int_equal(C.status, CONFLICT);
		assert_int_equal(C.sense_len, 0);
		return &C;
	}
	switch (cdb[0]) {
	case 0x5e: scsi_pr_in(&C); break;
	case 0x5f: scsi_pr_out(&C); break;
	case 0x16: scsi_reserve6(&C); break;
	case 0x17: scsi_release6(&C); break;
	default: C.status = GOOD; break;   /* "executed" */
	}
	return &C;
}

static uint8_t op(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t opcode)
{
	uint8_t cdb[16] = { opcode };
	unsigned len = opcode < 0x20 ? 6 : opcode < 0x60 ? 10 : opcode >= 0xa0 ? 12 : 16;

	if (opcode == 0x1b)
		cdb[4] = 0x01;   /* START STOP UNIT, START=1 */
	return run(lu, n, cdb, len, NULL, 0)->status;
}

static uint8_t read10(struct scsi_lu *lu, const struct scsi_nexus *n) { return op(lu, n, 0x28); }
static uint8_t write10(struct scsi_lu *lu, const struct scsi_nexus *n) { return op(lu, n, 0x2a); }

static void put64(uint8_t *p, uint64_t v)
{
	int i;
	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;
	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* PERSISTENT RESERVE OUT with the basic parameter list plus `extra` bytes
 * after byte 24; plen < 0: the natural length. */
static struct scsi_cmd *prout_x(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t sa,
				uint8_t scope, uint8_t type, uint64_t rk, uint64_t sark,
				uint8_t flags, const uint8_t *extra, uint32_t extra_len, int plen)
{
	static uint8_t param[2048];
	uint8_t cdb[10] = { 0x5f, sa, (uint8_t)(scope << 4 | type) };
	uint32_t len = 24 + extra_len;

	memset(param, 0, sizeof(param));
	put64(param, rk);
	put64(param + 8, sark);
	param[20] = flags;
	if (extra_len)
		memcpy(param + 24, extra, extra_len);
	if (plen >= 0)
		len = (uint32_t)plen;
	cdb[5] = (uint8_t)(len >> 24);
	cdb[6] = (uint8_t)(len >> 16);
	cdb[7] = (uint8_t)(len >> 8);
	cdb[8] = (uint8_t)len;
	return run(lu, n, cdb, 10, param, 24 + extra_len > len ? 24 + extra_len : len);
}

static uint8_t prout(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t sa, uint8_t type,
		     uint64_t rk, uint64_t sark)
{
	return prout_x(lu, n, sa, 0, type, rk, sark, 0, NULL, 0, -1)->status;
}

static uint8_t prout_aptpl(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t sa,
			   uint64_t rk, uint64_t sark, bool aptpl)
{
	return prout_x(lu, n, sa, 0, 0, rk, sark, aptpl ? 1 : 0, NULL, 0, -1)->status;
}

static struct scsi_cmd *prin(struct scsi_lu *lu, const struct scsi_nexus *n, uint8_t sa,
			     uint16_t alloc)
{
	uint8_t cdb[10] = { 0x5e, sa, 0, 0, 0, 0, 0, (uint8_t)(alloc >> 8), (uint8_t)alloc };
	return run(lu, n, cdb, 10, NULL, 0);
}

/* READ KEYS: number of keys; keys[] filled; *gen the PRgeneration. */
static unsigned read_keys(struct scsi_lu *lu, uint64_t *keys, uint32_t *gen)
{
	struct scsi_cmd *c = prin(lu, &n9, 0, 4096);
	unsigned i, nk;

	assert_int_equal(c->status, GOOD);
	assert_true(c->data_in_len >= 8);
	nk = get32(c->data_in + 4) / 8;
	assert_int_equal(c->data_in_len, 8 + 8 * nk);
	for (i = 0; keys && i < nk; i++)
		keys[i] = get64(c->data_in + 8 + 8 * i);
	if (gen)
		*gen = get32(c->data_in);
	return nk;
}

/* READ RESERVATION: 0 if none, else type; *key the reservation key. */
static uint8_t read_res(struct scsi_lu *lu, uint64_t *key)
{
	struct scsi_cmd *c = prin(lu, &n9, 1, 4096);

	assert_int_equal(c->status, GOOD);
	if (get32(c->data_in + 4) == 0) {
		assert_int_equal(c->data_in_len, 8);
		return 0;
	}
	assert_int_equal(get32(c->data_in + 4), 16);
	assert_int_equal(c->data_in_len, 24);
	if (key)
		*key = get64(c->data_in + 8);
	assert_int_equal(c->data_in[21] >> 4, 0);   /* LU_SCOPE */
	return c->data_in[21] & 0x0f;
}

static void assert_sense_at(const struct scsi_cmd *c, uint8_t key, uint8_t asc, uint8_t ascq,
			    int line)
{
	if (c->status != CHECK || (c->sense[2] & 0x0f) != key || c->sense[12] != asc ||
	    c->sense[13] != ascq)
		fail_msg("line %d: status %#x sense %x/%02x/%02x, expected CHECK %x/%02x/%02x", line,
			 c->status, c->sense[2] & 0x0f, c->sense[12], c->sense[13], key, asc, ascq);
}
#define assert_sense(c, k, a, q) assert_sense_at(c, k, a, q, __LINE__)

static void expect_ua(struct scsi_lu *lu, uint64_t id, uint8_t asc, uint8_t ascq)
{
	uint8_t a = 0, q = 0;

	if (!scsi_lu_ua_pop(lu, id, &a, &q))
		fail_msg("nexus %llu: no UA, expected %02x/%02x", (unsigned long long)id, asc, ascq);
	if (a != asc || q != ascq)
		fail_msg("nexus %llu: UA %02x/%02x, expected %02x/%02x", (unsigned long long)id, a, q,
			 asc, ascq);
}

static void expect_no_ua(struct scsi_lu *lu, uint64_t id)
{
	uint8_t a, q;

	if (scsi_lu_ua_pop(lu, id, &a, &q))
		fail_msg("nexus %llu: unexpected UA %02x/%02x", (unsigned long long)id, a, q);
}

/* iSCSI TransportID (SPC-4 7.6.4.6), format 0 or 1. */
static uint32_t mk_tid(uint8_t *p, const char *name, int fmt)
{
	uint32_t n = (uint32_t)strlen(name) + 1;

	n = (n + 3) & ~3u;
	if (n < 20)
		n = 20;
	memset(p, 0, 4 + n);
	p[0] = (uint8_t)(fmt << 6 | 0x05);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	memcpy(p + 4, name, strlen(name));
	return 4 + n;
}

static void pr_path(const struct scsi_lu *lu, char *buf, size_t len)
{
	int i, off = snprintf(buf, len, "%s/pr/", tmpdir);
	for (i = 0; i < 16; i++)
		off += snprintf(buf + off, len - (size_t)off, "%02x", lu->naa[i]);
	snprintf(buf + off, len - (size_t)off, ".pr");
}

static int setup(void **state)
{
	(void)state;
	L = mk_lu(1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	scsi_cmd_release(&C);
	free_lu(L);
	L = NULL;
	return 0;
}

/* ---------------------------------------------------------------------- */

static void test_no_state_fast_path(void **state)
{
	(void)state;
	assert_int_equal(write10(L, &n1), GOOD);
	assert_int_equal(write10(L, &n2), GOOD);
	assert_non_null(L->pr);   /* created (and APTPL looked up) on first use */
	assert_int_equal(read_keys(L, NULL, NULL), 0);
	assert_int_equal(read_res(L, NULL), 0);
}

static void test_register_unregister(void **state)
{
	uint64_t keys[8];
	uint32_t g0, g;
	(void)state;

	read_keys(L, NULL, &g0);
	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0xa1), GOOD);
	assert_int_equal(read_keys(L, keys, &g), 1);
	assert_int_equal(keys[0], 0xa1);
	assert_int_equal(g, g0 + 1);

	/* Registered nexus, wrong RESERVATION KEY: conflict (5.13.7). */
	assert_int_equal(prout(L, &n1, SA_REGISTER, 0, 0, 0xb1), CONFLICT);
	assert_int_equal(prout(L, &n1, SA_REGISTER, 0, 0x99, 0xb1), CONFLICT);
	/* Right key: the key changes. */
	assert_int_equal(prout(L, &n1, SA_REGISTER, 0, 0xa1, 0xb1), GOOD);
	assert_int_equal(read_keys(L, keys, NULL), 1);
	assert_int_equal(keys[0], 0xb1);
	/* REGISTER AND IGNORE EXISTING KEY ignores it. */
	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0x77, 0xc1), GOOD);
	assert_int_equal(read_keys(L, keys, NULL), 1);
	assert_int_equal(keys[0], 0xc1);

	/* Unregistered nexus with a non-zero key: conflict. */
	assert_int_equal(prout(L, &n2, SA_REGISTER, 0, 0x5, 0xa2), CONFLICT);
	/* ... with zero SARK: GOOD, nothing happens, no generation bump. */
	read_keys(L, NULL, &g);
	assert_int_equal(prout(L, &n2, SA_REGISTER, 0, 0, 0), GOOD);
	read_keys(L, NULL, &g0);
	assert_int_equal(g, g0);
	assert_int_equal(read_keys(L, NULL, NULL), 1);
	/* Same key from two nexuses is allowed. */
	assert_int_equal(prout(L, &n2, SA_REGISTER, 0, 0, 0xc1), GOOD);
	assert_int_equal(read_keys(L, keys, NULL), 2);
	assert_int_equal(keys[1], 0xc1);

	/* Unregister both. */
	assert_int_equal(prout(L, &n1, SA_REGISTER, 0, 0xc1, 0), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0), GOOD);
	assert_int_equal(read_keys(L, NULL, &g), 0);
	assert_int_equal(g, g0 + 3);
	/* Unregistered again: REGISTER with the old key conflicts. */
	assert_int_equal(prout(L, &n1, SA_REGISTER, 0, 0xc1, 0), CONFLICT);
}

static void test_registration_follows_port_name(void **state)
{
	struct scsi_nexus again = n1;
	struct scsi_nexus other_tp = n1;
	(void)state;

	again.id = 101;          /* session reinstatement: new id, same port */
	other_tp.id = 102;
	other_tp.target_port_id = 2;
	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0xa1), GOOD);
	assert_int_equal(prout(L, &again, SA_REGISTER, 0, 0xa1, 0xa2), GOOD);
	/* Another target port is another I_T nexus: not registered. */
	assert_int_equal(prout(L, &other_tp, SA_REGISTER, 0, 0xa2, 0xa3), CONFLICT);
	assert_int_equal(prout(L, &other_tp, SA_REGISTER, 0, 0, 0xa3), GOOD);
	assert_int_equal(read_keys(L, NULL, NULL), 2);
	/* ALL_TG_PT=1: one registration through every target port. */
	assert_int_equal(prout(L, &n1, SA_CLEAR, 0, 0xa2, 0), GOOD);
	assert_int_equal(prout_x(L, &n2, SA_REGISTER, 0, 0, 0, 0xb1, 0x04, NULL, 0, -1)->status, GOOD);
	{
		struct scsi_nexus n2tp2 = n2;
		n2tp2.id = 202;
		n2tp2.target_port_id = 2;
		assert_int_equal(prout(L, &n2tp2, SA_REGISTER, 0, 0xb1, 0xb2), GOOD);
	}
	assert_int_equal(read_keys(L, NULL, NULL), 1);
}

static void test_param_list_errors(void **state)
{
	struct scsi_cmd *c;
	(void)state;

	/* Parameter list length must be 24 (SPC-4 6.16.3). */
	c = prout_x(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0, 0xa1, 0, NULL, 0, 23);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	c = prout_x(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0, 0xa1, 0, NULL, 0, 25);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	c = prout_x(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0, 0xa1, 0, NULL, 0, 0);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	assert_int_equal(read_keys(L, NULL, NULL), 0);
	/* The fabric collected less than the CDB announces. */
	{
		uint8_t cdb[10] = { 0x5f, SA_REGISTER_IGNORE, 0, 0, 0, 0, 0, 0, 24 };
		uint8_t p[24] = { 0 };
		p[15] = 1;
		c = run(L, &n1, cdb, 10, p, 16);
		assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
		c = run(L, &n1, cdb, 10, NULL, 0);
		assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
		c = run(L, &n1, cdb, 10, p, 24);
		assert_int_equal(c->status, GOOD);
		assert_int_equal(c->xfer_len, 24);
		assert_true(c->xfer_is_write);
	}
	/* Unknown service action. */
	c = prout_x(L, &n1, 0x08, 0, 0, 0, 1, 0, NULL, 0, -1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(c->sense[15], 0x80 | 0x40 | 0x08 | 4);
	/* SPEC_I_PT with anything but REGISTER. */
	c = prout_x(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0, 0xa1, 0x08, NULL, 0, -1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	/* Bad scope / type for RESERVE. */
	c = prout_x(L, &n1, SA_RESERVE, 1, WE, 1, 0, 0, NULL, 0, -1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	c = prout_x(L, &n1, SA_RESERVE, 0, 2, 1, 0, 0, NULL, 0, -1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x24, 0x00);
}

static void test_prin_service_actions(void **state)
{
	struct scsi_cmd *c;
	int sa;
	(void)state;

	for (sa = 0; sa < 4; sa++)
		assert_int_equal(prin(L, &n1, (uint8_t)sa, 16384)->status, GOOD);
	for (sa = 4; sa < 0x20; sa++) {
		c = prin(L, &n1, (uint8_t)sa, 16384);
		assert_sense(c, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	}
	/* READ KEYS truncated to 8 bytes keeps the ADDITIONAL LENGTH. */
	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0xa1), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0xa2), GOOD);
	c = prin(L, &n1, 0, 8);
	assert_int_equal(c->status, GOOD);
	assert_int_equal(c->data_in_len, 8);
	assert_int_equal(c->xfer_len, 8);
	assert_int_equal(get32(c->data_in + 4), 16);
	c = prin(L, &n1, 0, 12);
	assert_int_equal(c->data_in_len, 12);
	c = prin(L, &n1, 0, 0);
	assert_int_equal(c->status, GOOD);
	assert_int_equal(c->data_in_len, 0);
}

static void test_report_capabilities(void **state)
{
	struct scsi_cmd *c;
	(void)state;

	c = prin(L, &n1, 2, 16384);
	assert_int_equal(c->status, GOOD);
	assert_int_equal(c->data_in_len, 8);
	assert_int_equal(c->data_in[0] << 8 | c->data_in[1], 8);   /* LENGTH */
	assert_int_equal(c->data_in[2], 0x0d);     /* CRH=0 SIP_C ATP_C PTPL_C */
	assert_int_equal(c->data_in[3] & 0x80, 0x80);   /* TMV */
	assert_true(((c->data_in[3] >> 4) & 7) <= 5);   /* ALLOW COMMANDS */
	assert_int_equal(c->data_in[3] & 0x01, 0);      /* PTPL_A */
	assert_int_equal(c->data_in[4], 0xea);
	assert_int_equal(c->data_in[5], 0x01);
}

/* Each supported type can be reserved, read back, and released
 * (libiscsi PrinReportCapabilities.Simple / ProutReserve.Simple). */
static void test_reserve_release_each_type(void **state)
{
	uint64_t key;
	uint32_t g0, g;
	size_t i;
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x1234), GOOD);
	read_keys(L, NULL, &g0);
	for (i = 0; i < sizeof(all_types); i++) {
		uint8_t t = all_types[i];
		/* Unregistered nexus / wrong key cannot reserve. */
		assert_int_equal(prout(L, &n2, SA_RESERVE, t, 0, 0), CONFLICT);
		assert_int_equal(prout(L, &n1, SA_RESERVE, t, 0x999, 0), CONFLICT);
		assert_int_equal(prout(L, &n1, SA_RESERVE, t, 0x1234, 0), GOOD);
		/* Same type again from the holder: GOOD; another type: conflict. */
		assert_int_equal(prout(L, &n1, SA_RESERVE, t, 0x1234, 0), GOOD);
		assert_int_equal(prout(L, &n1, SA_RESERVE, t == WE ? EA : WE, 0x1234, 0), CONFLICT);
		key = 0xdead;
		assert_int_equal(read_res(L, &key), t);
		/* All registrants types report key zero (6.15.3.2). */
		assert_int_equal(key, (t == WE_AR || t == EA_AR) ? 0 : 0x1234);
		/* Wrong type on RELEASE: 26/04. */
		assert_sense(prout_x(L, &n1, SA_RELEASE, 0, t == WE ? EA : WE, 0x1234, 0, 0, NULL, 0, -1),
			     SK_ILLEGAL_REQUEST, 0x26, 0x04);
		assert_int_equal(read_res(L, NULL), t);
		assert_int_equal(prout(L, &n1, SA_RELEASE, t, 0x1234, 0), GOOD);
		assert_int_equal(read_res(L, NULL), 0);
		/* Release with nothing reserved: GOOD. */
		assert_int_equal(prout(L, &n1, SA_RELEASE, t, 0x1234, 0), GOOD);
	}
	/* RESERVE and RELEASE never bump PRgeneration. */
	read_keys(L, NULL, &g);
	assert_int_equal(g, g0);
}

/* The SPC-4 5.13.1 / SBC-3 tables, written out independently of the code:
 * for every type, which command classes may a registered non-holder and an
 * unregistered nexus run? */
struct access_row {
	uint8_t type;
	bool reg_read, reg_write, unreg_read, unreg_write;
};

static const struct access_row access_table[] = {
	{ WE,    true,  false, true,  false },
	{ EA,    false, false, false, false },
	{ WE_RO, true,  true,  true,  false },
	{ EA_RO, true,  true,  false, false },
	{ WE_AR, true,  true,  true,  false },
	{ EA_AR, true,  true,  false, false },
};

static const uint8_t read_ops[] = { 0x08, 0x28, 0xa8, 0x88, 0x2f, 0x1a, 0x5a, 0x3c };
static const uint8_t write_ops[] = { 0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0x35, 0x91, 0x41, 0x93, 0x42,
				     0x15, 0x55, 0x04 };
static const uint8_t always_ops[] = { 0x00, 0x03, 0x12, 0x25, 0x4d, 0xa0, 0x1b };

static void test_access_matrix(void **state)
{
	size_t i, j;
	(void)state;

	for (i = 0; i < sizeof(access_table) / sizeof(access_table[0]); i++) {
		const struct access_row *row = &access_table[i];
		struct scsi_lu *lu = mk_lu((uint8_t)(100 + i));

		assert_int_equal(prout(lu, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
		assert_int_equal(prout(lu, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
		assert_int_equal(prout(lu, &n1, SA_RESERVE, row->type, 0x11, 0), GOOD);

		for (j = 0; j < sizeof(read_ops); j++) {
			uint8_t o = read_ops[j];
			assert_int_equal(op(lu, &n1, o), GOOD);
			if (op(lu, &n2, o) != (row->reg_read ? GOOD : CONFLICT))
				fail_msg("type %u op %#x registered", row->type, o);
			if (op(lu, &n3, o) != (row->unreg_read ? GOOD : CONFLICT))
				fail_msg("type %u op %#x unregistered", row->type, o);
		}
		for (j = 0; j < sizeof(write_ops); j++) {
			uint8_t o = write_ops[j];
			assert_int_equal(op(lu, &n1, o), GOOD);
			if (op(lu, &n2, o) != (row->reg_write ? GOOD : CONFLICT))
				fail_msg("type %u op %#x registered", row->type, o);
			if (op(lu, &n3, o) != (row->unreg_write ? GOOD : CONFLICT))
				fail_msg("type %u op %#x unregistered", row->type, o);
		}
		for (j = 0; j < sizeof(always_ops); j++) {
			assert_int_equal(op(lu, &n2, always_ops[j]), GOOD);
			assert_int_equal(op(lu, &n3, always_ops[j]), GOOD);
		}
		/* START STOP UNIT with START=0 and PREVENT=1 conflict like writes. */
		{
			uint8_t stop[6] = { 0x1b, 0, 0, 0, 0x00, 0 };
			uint8_t prevent[6] = { 0x1e, 0, 0, 0, 0x01, 0 };
			uint8_t rc16[16] = { 0x9e, 0x10 };
			uint8_t rsoc[12] = { 0xa3, 0x0c };
			uint8_t rtpg[12] = { 0xa3, 0x0a };
			assert_int_equal(run(lu, &n3, stop, 6, NULL, 0)->status,
					 row->unreg_write ? GOOD : CONFLICT);
			assert_int_equal(run(lu, &n3, prevent, 6, NULL, 0)->status,
					 row->unreg_write ? GOOD : CONFLICT);
			assert_int_equal(run(lu, &n3, rc16, 16, NULL, 0)->status, GOOD);
			assert_int_equal(run(lu, &n3, rtpg, 12, NULL, 0)->status, GOOD);
			assert_int_equal(run(lu, &n3, rsoc, 12, NULL, 0)->status,
					 row->unreg_read ? GOOD : CONFLICT);
		}
		/* PR IN is always allowed; PR OUT by non-holders is judged
		 * by the service action. */
		assert_int_equal(prin(lu, &n3, 0, 100)->status, GOOD);
		assert_int_equal(prout(lu, &n3, SA_RESERVE, row->type, 0, 0), CONFLICT);
		assert_int_equal(prout(lu, &n3, SA_RELEASE, row->type, 0, 0), CONFLICT);
		assert_int_equal(prout(lu, &n3, SA_CLEAR, 0, 0, 0), CONFLICT);
		assert_int_equal(prout(lu, &n3, SA_PREEMPT, row->type, 0, 0x11), CONFLICT);
		if (row->type == WE_AR || row->type == EA_AR) {
			/* n2 is a holder too. */
			assert_int_equal(prout(lu, &n2, SA_RESERVE, row->type, 0x22, 0), GOOD);
		} else {
			assert_int_equal(prout(lu, &n2, SA_RESERVE, row->type, 0x22, 0), CONFLICT);
			/* RELEASE from a registered non-holder: GOOD, no effect. */
			assert_int_equal(prout(lu, &n2, SA_RELEASE, row->type, 0x22, 0), GOOD);
			assert_int_equal(read_res(lu, NULL), row->type);
		}
		/* Unregistering a registered non-holder removes its access. */
		assert_int_equal(prout(lu, &n2, SA_REGISTER, 0, 0x22, 0), GOOD);
		if (row->type == WE_AR || row->type == EA_AR)
			assert_int_equal(read_res(lu, NULL), row->type);
		assert_int_equal(read10(lu, &n2), row->unreg_read ? GOOD : CONFLICT);
		assert_int_equal(write10(lu, &n2), row->unreg_write ? GOOD : CONFLICT);
		assert_int_equal(prout(lu, &n1, SA_RELEASE, row->type, 0x11, 0), GOOD);
		assert_int_equal(write10(lu, &n2), GOOD);
		assert_int_equal(read10(lu, &n3), GOOD);
		free_lu(lu);
	}
}

/* libiscsi ProutReserve.Ownership*: unregistering the holder releases a
 * single-holder reservation (UA RESERVATIONS RELEASED for RO types), while
 * an all registrants one lives until the last registrant goes. */
static void test_ownership(void **state)
{
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(all_types); i++) {
		uint8_t t = all_types[i];
		struct scsi_lu *lu = mk_lu((uint8_t)(110 + i));
		bool ar = t == WE_AR || t == EA_AR;

		assert_int_equal(prout(lu, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
		assert_int_equal(prout(lu, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
		assert_int_equal(prout(lu, &n1, SA_RESERVE, t, 0x11, 0), GOOD);
		assert_int_equal(prout(lu, &n1, SA_REGISTER, 0, 0x11, 0), GOOD);
		if (ar) {
			assert_int_equal(read_res(lu, NULL), t);
			expect_no_ua(lu, 2);
			assert_int_equal(prout(lu, &n2, SA_RELEASE, t, 0x22, 0), GOOD);
			assert_int_equal(read_res(lu, NULL), 0);
		} else {
			assert_int_equal(read_res(lu, NULL), 0);
			if (t == WE_RO || t == EA_RO)
				expect_ua(lu, 2, 0x2a, 0x04);
			expect_no_ua(lu, 2);
		}
		expect_no_ua(lu, 1);
		assert_int_equal(prout(lu, &n2, SA_REGISTER, 0, 0x22, 0), GOOD);
		/* Last registrant of an AR reservation leaving releases it. */
		assert_int_equal(prout(lu, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
		assert_int_equal(prout(lu, &n1, SA_RESERVE, t, 0x11, 0), GOOD);
		assert_int_equal(prout(lu, &n1, SA_REGISTER, 0, 0x11, 0), GOOD);
		assert_int_equal(read_res(lu, NULL), 0);
		assert_int_equal(write10(lu, &n3), GOOD);
		free_lu(lu);
	}
}

static void test_release_unit_attentions(void **state)
{
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(all_types); i++) {
		uint8_t t = all_types[i];
		struct scsi_lu *lu = mk_lu((uint8_t)(120 + i));

		assert_int_equal(prout(lu, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
		assert_int_equal(prout(lu, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
		assert_int_equal(prout(lu, &n1, SA_RESERVE, t, 0x11, 0), GOOD);
		assert_int_equal(prout(lu, &n1, SA_RELEASE, t, 0x11, 0), GOOD);
		/* SPC-4 5.13.11.2: RO and AR types tell the other registrants. */
		if (t != WE && t != EA)
			expect_ua(lu, 2, 0x2a, 0x04);
		expect_no_ua(lu, 2);
		expect_no_ua(lu, 1);
		expect_no_ua(lu, 3);
		free_lu(lu);
	}
}

static void test_clear(void **state)
{
	uint32_t g0, g;
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
	read_keys(L, NULL, &g0);
	assert_int_equal(prout(L, &n1, SA_RESERVE, EA, 0x11, 0), GOOD);
	assert_int_equal(write10(L, &n3), CONFLICT);
	/* Unregistered / wrong key: conflict. */
	assert_int_equal(prout(L, &n3, SA_CLEAR, 0, 0x11, 0), CONFLICT);
	assert_int_equal(prout(L, &n2, SA_CLEAR, 0, 0x11, 0), CONFLICT);
	/* A registered non-holder may clear (SPC-4 5.13.11.3). */
	assert_int_equal(prout(L, &n2, SA_CLEAR, 0, 0x22, 0), GOOD);
	assert_int_equal(read_res(L, NULL), 0);
	assert_int_equal(read_keys(L, NULL, &g), 0);
	assert_int_equal(g, g0 + 1);
	expect_ua(L, 1, 0x2a, 0x03);
	expect_no_ua(L, 2);
	expect_no_ua(L, 3);
	assert_int_equal(write10(L, &n3), GOOD);
}

static void test_preempt_registrations(void **state)
{
	uint64_t keys[4];
	uint32_t g0, g;
	(void)state;

	/* libiscsi ProutPreempt.RemoveRegistration: no reservation. */
	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
	read_keys(L, NULL, &g0);
	/* Key zero without reservation: INVALID FIELD IN PARAMETER LIST. */
	assert_sense(prout_x(L, &n2, SA_PREEMPT, 0, EA, 0x22, 0, 0, NULL, 0, -1),
		     SK_ILLEGAL_REQUEST, 0x26, 0x00);
	/* A key nobody has: conflict. */
	assert_int_equal(prout(L, &n2, SA_PREEMPT, EA, 0x22, 0x33), CONFLICT);
	/* Wrong own key: conflict. */
	assert_int_equal(prout(L, &n2, SA_PREEMPT, EA, 0x23, 0x11), CONFLICT);
	assert_int_equal(prout(L, &n2, SA_PREEMPT, EA, 0x22, 0x11), GOOD);
	assert_int_equal(read_keys(L, keys, &g), 1);
	assert_int_equal(keys[0], 0x22);
	assert_int_equal(g, g0 + 1);
	assert_int_equal(read_res(L, NULL), 0);   /* type ignored: nothing reserved */
	expect_ua(L, 1, 0x2a, 0x05);
	expect_no_ua(L, 2);

	/* Reservation held by n1; n2 preempts n3's registration only. */
	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n3, SA_REGISTER_IGNORE, 0, 0, 0x33), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE, 0x11, 0), GOOD);
	assert_int_equal(prout(L, &n2, SA_PREEMPT_ABORT, EA, 0x22, 0x33), GOOD);
	assert_int_equal(read_res(L, NULL), WE);
	assert_int_equal(read_keys(L, NULL, NULL), 2);
	expect_ua(L, 3, 0x2a, 0x05);
	expect_no_ua(L, 1);
	/* Zero key with a single-holder reservation: invalid. */
	assert_sense(prout_x(L, &n2, SA_PREEMPT, 0, EA, 0x22, 0, 0, NULL, 0, -1),
		     SK_ILLEGAL_REQUEST, 0x26, 0x00);
}

static void test_preempt_holder(void **state)
{
	uint64_t key, keys[4];
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
	assert_int_equal(prout(L, &n3, SA_REGISTER_IGNORE, 0, 0, 0x33), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, EA, 0x11, 0), GOOD);
	/* Preempting the holder needs a valid scope and type. */
	assert_sense(prout_x(L, &n2, SA_PREEMPT, 1, WE, 0x22, 0x11, 0, NULL, 0, -1),
		     SK_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(read_res(L, NULL), EA);
	/* n2 preempts n1's reservation and changes the type to WE. */
	assert_int_equal(prout(L, &n2, SA_PREEMPT, WE, 0x22, 0x11), GOOD);
	assert_int_equal(read_res(L, &key), WE);
	assert_int_equal(key, 0x22);
	assert_int_equal(read_keys(L, keys, NULL), 2);
	expect_ua(L, 1, 0x2a, 0x05);      /* lost its registration */
	expect_no_ua(L, 1);
	expect_ua(L, 3, 0x2a, 0x04);      /* type changed: RESERVATIONS RELEASED */
	expect_no_ua(L, 3);
	expect_no_ua(L, 2);
	assert_int_equal(write10(L, &n1), CONFLICT);
	assert_int_equal(read10(L, &n1), GOOD);
	assert_int_equal(write10(L, &n2), GOOD);

	/* The holder preempting itself changes the type without UAs for
	 * itself; same type: no UA for the others. */
	assert_int_equal(prout(L, &n2, SA_PREEMPT, WE, 0x22, 0x22), GOOD);
	assert_int_equal(read_res(L, NULL), WE);
	expect_no_ua(L, 3);
	expect_no_ua(L, 2);
	assert_int_equal(read_keys(L, NULL, NULL), 2);
}

static void test_preempt_all_registrants(void **state)
{
	uint64_t keys[4];
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
	assert_int_equal(prout(L, &n3, SA_REGISTER_IGNORE, 0, 0, 0x33), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE_AR, 0x11, 0), GOOD);
	/* Non-zero key: that registration only, reservation stays. */
	assert_int_equal(prout(L, &n2, SA_PREEMPT, EA, 0x22, 0x33), GOOD);
	assert_int_equal(read_res(L, NULL), WE_AR);
	assert_int_equal(read_keys(L, NULL, NULL), 2);
	expect_ua(L, 3, 0x2a, 0x05);
	/* Zero key: everybody else goes, n2 holds the new reservation. */
	assert_int_equal(prout(L, &n2, SA_PREEMPT, EA_RO, 0x22, 0), GOOD);
	assert_int_equal(read_res(L, NULL), EA_RO);
	assert_int_equal(read_keys(L, keys, NULL), 1);
	assert_int_equal(keys[0], 0x22);
	expect_ua(L, 1, 0x2a, 0x05);
	expect_no_ua(L, 2);
	assert_int_equal(read10(L, &n1), CONFLICT);
	assert_int_equal(write10(L, &n2), GOOD);
}

static void test_register_and_move(void **state)
{
	uint8_t param[512];
	uint8_t cdb[10] = { 0x5f, SA_REGISTER_MOVE, WE };
	uint64_t key;
	uint32_t tl, len, g0, g;
	struct scsi_cmd *c;
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE, 0x11, 0), GOOD);
	read_keys(L, NULL, &g0);

#define RM_BUILD(rk, sark, unreg, rtpi, name, fmt) do {                       \
	memset(param, 0, sizeof(param));                                        \
	put64(param, rk);                                                       \
	put64(param + 8, sark);                                                 \
	param[17] = (unreg) ? 0x02 : 0;                                          \
	param[18] = (uint8_t)((rtpi) >> 8);                                      \
	param[19] = (uint8_t)(rtpi);                                             \
	tl = mk_tid(param + 24, name, fmt);                                      \
	param[22] = (uint8_t)(tl >> 8);                                          \
	param[23] = (uint8_t)tl;                                                 \
	len = 24 + tl;                                                           \
	cdb[5] = 0; cdb[6] = 0; cdb[7] = (uint8_t)(len >> 8); cdb[8] = (uint8_t)len; \
} while (0)
#define RM(nx, rk, sark, unreg, rtpi, name, fmt) do {                         \
	RM_BUILD(rk, sark, unreg, rtpi, name, fmt);                             \
	c = run(L, nx, cdb, 10, param, len);                                     \
} while (0)

	/* Non-holder: conflict.  Zero SARK: invalid.  To itself: invalid. */
	RM(&n2, 0, 0x22, false, 1, PORT1, 1);
	assert_int_equal(c->status, CONFLICT);
	RM(&n1, 0x11, 0, false, 1, PORT2, 1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	RM(&n1, 0x11, 0x22, false, 1, PORT1, 1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	/* Bad TransportID (Fibre Channel protocol id). */
	RM_BUILD(0x11, 0x22, false, 1, PORT2, 1);
	param[24] = 0x40;
	c = run(L, &n1, cdb, 10, param, len);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	/* Invalid type / scope in the CDB. */
	RM_BUILD(0x11, 0x22, false, 1, PORT2, 1);
	cdb[2] = 0x04;
	assert_sense(run(L, &n1, cdb, 10, param, len), SK_ILLEGAL_REQUEST, 0x24, 0x00);
	cdb[2] = 0x10 | WE;
	assert_sense(run(L, &n1, cdb, 10, param, len), SK_ILLEGAL_REQUEST, 0x24, 0x00);
	cdb[2] = WE;
	/* Relative target port 0 does not exist. */
	RM_BUILD(0x11, 0x22, false, 0, PORT2, 1);
	assert_sense(run(L, &n1, cdb, 10, param, len), SK_ILLEGAL_REQUEST, 0x26, 0x00);
	/* Length mismatch. */
	RM_BUILD(0x11, 0x22, false, 1, PORT2, 1);
	cdb[8] = (uint8_t)(len - 4);
	c = run(L, &n1, cdb, 10, param, len);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);

	/* Move to n2 (ISID in upper case: names compare case-insensitively). */
	RM(&n1, 0x11, 0x22, false, 1, "iqn.2024-01.org.example:init2,i,0x23D000000002", 1);
	assert_int_equal(c->status, GOOD);
	assert_int_equal(read_res(L, &key), WE);
	assert_int_equal(key, 0x22);
	assert_int_equal(read_keys(L, NULL, &g), 2);
	assert_int_equal(g, g0 + 1);
	assert_int_equal(write10(L, &n2), GOOD);
	assert_int_equal(write10(L, &n1), CONFLICT);
	/* And back with UNREG=1 as EA: n2's registration goes. */
	cdb[2] = EA;
	RM(&n2, 0x22, 0x55, true, 1, PORT1, 1);
	assert_int_equal(c->status, GOOD);
	assert_int_equal(read_res(L, &key), EA);
	assert_int_equal(key, 0x11);   /* n1 was registered: key kept */
	assert_int_equal(read_keys(L, NULL, NULL), 1);
	assert_int_equal(write10(L, &n2), CONFLICT);
	/* All registrants reservations cannot be moved. */
	assert_int_equal(prout(L, &n1, SA_RELEASE, EA, 0x11, 0), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE_AR, 0x11, 0), GOOD);
	RM(&n1, 0x11, 0x22, false, 1, PORT2, 1);
	assert_int_equal(c->status, CONFLICT);
#undef RM
#undef RM_BUILD
}

static void test_spec_i_pt(void **state)
{
	uint8_t extra[512];
	uint32_t off = 4, tl;
	struct scsi_cmd *c;
	(void)state;

	/* n1 registers itself, n2 (format 01b) and n3's node (format 00b:
	 * every ISID), and names itself too (skipped). */
	off += mk_tid(extra + off, PORT2, 1);
	off += mk_tid(extra + off, "iqn.2024-01.org.example:init3", 0);
	off += mk_tid(extra + off, PORT1, 1);
	tl = off - 4;
	extra[0] = 0; extra[1] = 0; extra[2] = (uint8_t)(tl >> 8); extra[3] = (uint8_t)tl;

	/* Length mismatch: 1A/00. */
	c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0, 0x11, 0x08, extra, off, (int)(24 + off - 4));
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0, 0x11, 0x08, NULL, 0, -1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	/* A bad TransportID anywhere: nothing registered. */
	{
		uint8_t bad[512];
		uint32_t boff = 4, first;
		first = mk_tid(bad + boff, PORT2, 1);
		boff += first;
		boff += mk_tid(bad + boff, PORT3, 1);
		bad[4 + first] = 0x41;            /* format 01b, protocol 1 (SPI) */
		bad[2] = (uint8_t)((boff - 4) >> 8);
		bad[3] = (uint8_t)(boff - 4);
		bad[0] = bad[1] = 0;
		c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0, 0x11, 0x08, bad, boff, -1);
		assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
		/* Format 01b without the ISID separator. */
		boff = 4 + mk_tid(bad + 4, "iqn.2024-01.org.example:init2", 1);
		bad[3] = (uint8_t)(boff - 4);
		c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0, 0x11, 0x08, bad, boff, -1);
		assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
		/* Not NUL-terminated. */
		boff = 4 + mk_tid(bad + 4, PORT2, 1);
		bad[3] = (uint8_t)(boff - 4);
		memset(bad + 8, 'a', boff - 8);
		c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0, 0x11, 0x08, bad, boff, -1);
		assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	}
	assert_int_equal(read_keys(L, NULL, NULL), 0);

	c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0, 0x11, 0x08, extra, off, -1);
	assert_int_equal(c->status, GOOD);
	assert_int_equal(read_keys(L, NULL, NULL), 3);
	/* n2 and n3 are registered with the key, can reserve/write. */
	assert_int_equal(prout(L, &n2, SA_RESERVE, WE_RO, 0x11, 0), GOOD);
	assert_int_equal(write10(L, &n3), GOOD);
	{
		struct scsi_nexus n3b = n3;
		n3b.id = 33;
		snprintf(n3b.initiator_port, sizeof(n3b.initiator_port),
			 "iqn.2024-01.org.example:init3,i,0x400000000099");
		assert_int_equal(write10(L, &n3b), GOOD);
		n3b.target_port_id = 2;   /* but only through target port 1 */
		assert_int_equal(write10(L, &n3b), CONFLICT);
	}
	/* SPEC_I_PT from a registered nexus: 26/00. */
	c = prout_x(L, &n1, SA_REGISTER, 0, 0, 0x11, 0x12, 0x08, extra, off, -1);
	assert_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x00);
}

static void test_read_full_status(void **state)
{
	struct scsi_cmd *c;
	uint32_t off, alen, dl;
	const uint8_t *d;
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout_x(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0, 0x22, 0x04, NULL, 0, -1)->status,
			 GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, EA_RO, 0x11, 0), GOOD);

	c = prin(L, &n3, 3, 4096);
	assert_int_equal(c->status, GOOD);
	alen = get32(c->data_in + 4);
	assert_int_equal(c->data_in_len, 8 + alen);
	/* Descriptor 1: n1, holder, type EA_RO, target port 1. */
	d = c->data_in + 8;
	assert_int_equal(get64(d), 0x11);
	assert_int_equal(d[12], 0x01);             /* R_HOLDER */
	assert_int_equal(d[13], EA_RO);
	assert_int_equal(d[18] << 8 | d[19], 1);
	dl = get32(d + 20);
	assert_int_equal(dl % 4, 0);
	assert_true(dl >= 24);
	assert_int_equal(d[24], 0x45);             /* format 01b, iSCSI */
	assert_int_equal(d[26] << 8 | d[27], dl - 4);
	assert_string_equal((const char *)d + 28, PORT1);
	off = 24 + dl;
	/* Descriptor 2: n2, not holder, ALL_TG_PT. */
	d = c->data_in + 8 + off;
	assert_int_equal(get64(d), 0x22);
	assert_int_equal(d[12], 0x02);
	assert_int_equal(d[13], 0);
	dl = get32(d + 20);
	assert_string_equal((const char *)d + 28, PORT2);
	off += 24 + dl;
	assert_int_equal(off, alen);

	/* All registrants: every registrant is a holder. */
	assert_int_equal(prout(L, &n1, SA_RELEASE, EA_RO, 0x11, 0), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE_AR, 0x11, 0), GOOD);
	c = prin(L, &n3, 3, 4096);
	d = c->data_in + 8;
	assert_int_equal(d[12] & 1, 1);
	assert_int_equal(d[13], WE_AR);
	d += 24 + get32(d + 20);
	assert_int_equal(d[12], 0x03);
	assert_int_equal(d[13], WE_AR);
	/* Truncation keeps the header. */
	c = prin(L, &n3, 3, 10);
	assert_int_equal(c->data_in_len, 10);
	assert_int_equal(get32(c->data_in + 4), alen);
}

static void test_aptpl_round_trip(void **state)
{
	char path[512];
	struct scsi_lu *lu2;
	struct scsi_nexus n1b = n1;
	struct scsi_cmd *c;
	struct stat st;
	uint64_t key, keys[4];
	(void)state;

	pr_path(L, path, sizeof(path));
	unlink(path);
	assert_int_equal(prout_aptpl(L, &n1, SA_REGISTER_IGNORE, 0, 0x11, true), GOOD);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);   /* APTPL=0 */
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(prout_aptpl(L, &n2, SA_REGISTER, 0x22, 0x23, true), GOOD);
	assert_int_equal(prout_x(L, &n3, SA_REGISTER_IGNORE, 0, 0, 0, 0x33, 0x05, NULL, 0, -1)->status,
			 GOOD);   /* ALL_TG_PT + APTPL */
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE_RO, 0x11, 0), GOOD);
	c = prin(L, &n1, 2, 100);
	assert_int_equal(c->data_in[3] & 1, 1);    /* PTPL_A */
	assert_int_equal(stat(path, &st), 0);

	/* "Restart": a new LU object with the same NAA. */
	lu2 = mk_lu(1);
	assert_int_equal(scsi_pr_load(lu2), 0);
	assert_int_equal(read_keys(lu2, keys, NULL), 3);
	assert_int_equal(keys[0], 0x11);
	assert_int_equal(keys[1], 0x23);
	assert_int_equal(keys[2], 0x33);
	assert_int_equal(read_res(lu2, &key), WE_RO);
	assert_int_equal(key, 0x11);
	c = prin(lu2, &n1, 2, 100);
	assert_int_equal(c->data_in[3] & 1, 1);
	/* New session ids; matched by port name + target port. */
	n1b.id = 1001;
	assert_int_equal(write10(lu2, &n1b), GOOD);
	assert_int_equal(write10(lu2, &n2), GOOD);
	{
		struct scsi_nexus n3b = n3;
		n3b.id = 3003;
		n3b.target_port_id = 7;   /* ALL_TG_PT survived */
		assert_int_equal(write10(lu2, &n3b), GOOD);
		n3b.target_port_id = 1;
		snprintf(n3b.initiator_port, sizeof(n3b.initiator_port), "%s",
			 "iqn.2024-01.org.example:init3,i,0x23d000000004");
		assert_int_equal(write10(lu2, &n3b), CONFLICT);
	}
	{
		struct scsi_nexus other = n2;
		other.target_port_id = 2;
		other.id = 2002;
		assert_int_equal(write10(lu2, &other), CONFLICT);
	}
	c = prin(lu2, &n1b, 3, 4096);
	assert_int_equal(c->data_in[8 + 12], 0x01);   /* n1 still holder */

	/* APTPL=0 from any nexus removes the file. */
	assert_int_equal(prout_aptpl(lu2, &n2, SA_REGISTER, 0x23, 0x24, false), GOOD);
	assert_int_not_equal(stat(path, &st), 0);
	free_lu(lu2);
	lu2 = mk_lu(1);
	assert_int_equal(scsi_pr_load(lu2), 0);
	assert_int_equal(read_keys(lu2, NULL, NULL), 0);
	free_lu(lu2);
}

/* UAs for a restored registration whose nexus has not logged in yet wait by
 * name (and so do UAs for a nexus that was lost). */
static void test_pending_ua_by_name(void **state)
{
	struct scsi_lu *lu2;
	struct scsi_nexus n1b = n1;
	(void)state;

	assert_int_equal(prout_aptpl(L, &n1, SA_REGISTER_IGNORE, 0, 0x11, true), GOOD);
	assert_int_equal(prout_aptpl(L, &n2, SA_REGISTER_IGNORE, 0, 0x22, true), GOOD);
	lu2 = mk_lu(1);
	assert_int_equal(scsi_pr_load(lu2), 0);
	/* n2 (new session) preempts n1 (not back yet). */
	n1b.id = 1001;
	assert_int_equal(prout(lu2, &n2, SA_PREEMPT, EA, 0x22, 0x11), GOOD);
	expect_no_ua(lu2, 1001);
	/* n1's first command (any) lets the check deliver the UA. */
	assert_int_equal(op(lu2, &n1b, 0x12), GOOD);
	expect_ua(lu2, 1001, 0x2a, 0x05);
	expect_no_ua(lu2, 1001);

	/* Nexus loss: registrations stay, later UAs wait for the name. */
	assert_int_equal(prout(lu2, &n1b, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(lu2, &n2, SA_RESERVE, WE_RO, 0x22, 0), GOOD);
	scsi_pr_nexus_lost(lu2, 1001);
	assert_int_equal(read_keys(lu2, NULL, NULL), 2);
	assert_int_equal(prout(lu2, &n2, SA_RELEASE, WE_RO, 0x22, 0), GOOD);
	expect_no_ua(lu2, 1001);
	n1b.id = 1002;
	assert_int_equal(op(lu2, &n1b, 0x00), GOOD);
	expect_ua(lu2, 1002, 0x2a, 0x04);
	assert_int_equal(prout_aptpl(lu2, &n2, SA_CLEAR, 0x22, 0, false), GOOD);
	assert_int_equal(prout_aptpl(lu2, &n2, SA_REGISTER_IGNORE, 0, 0, false), GOOD);
	free_lu(lu2);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_corrupt_file_ignored(void **state)
{
	char path[512], naa[40], good[2048], buf[2048];
	struct scsi_lu *lu2;
	int i;
	static const char *bad[] = {
		"",
		"garbage\n",
		"ringstor-pr 2\nnaa %s\nend 0\n",
		"ringstor-pr 1\nnaa 00112233445566778899aabbccddeeff\nend 0\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\n",     /* no end */
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\nend 2\n",
		"ringstor-pr 1\nnaa %s\nreg zz 1 0 " PORT1 "\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000000 1 0 " PORT1 "\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 70000 0 " PORT1 "\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 " extra\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 bad,name\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\nres 2 0\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\nres 1 5\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\nres 1 -1\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\nres 7 0\nend 1\n",
		"ringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 " PORT1 "\nreg 0000000000000012 1 0 " PORT1 "\nend 2\n",
		"ringstor-pr 1\nnaa %s\nend 0\nreg 0000000000000011 1 0 " PORT1 "\n",
	};
	(void)state;

	for (i = 0; i < 16; i++)
		snprintf(naa + 2 * i, 3, "%02x", (unsigned)(7 * 16 + i));
	lu2 = mk_lu(7);
	pr_path(lu2, path, sizeof(path));
	free_lu(lu2);
	/* A good file first, to know the format is what we think. */
	snprintf(good, sizeof(good),
		 "# comment\nringstor-pr 1\nnaa %s\nreg 0000000000000011 1 0 %s\n"
		 "reg 0000000000000022 2 1 iqn.2024-01.org.example:init2\nres 6 1\nend 2\n",
		 naa, PORT1);
	write_file(path, good);
	lu2 = mk_lu(7);
	assert_int_equal(scsi_pr_load(lu2), 0);
	assert_int_equal(read_keys(lu2, NULL, NULL), 2);
	assert_int_equal(read_res(lu2, NULL), EA_RO);
	assert_int_equal(write10(lu2, &n3), CONFLICT);
	assert_int_equal(write10(lu2, &n1), GOOD);   /* registrant of an RO type */
	assert_int_equal(write10(lu2, &n2), GOOD);   /* node name covers every ISID */
	free_lu(lu2);

	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(buf, sizeof(buf), bad[i], naa);
#pragma GCC diagnostic pop
		write_file(path, buf);
		lu2 = mk_lu(7);
		assert_int_equal(scsi_pr_load(lu2), 0);
		if (read_keys(lu2, NULL, NULL) != 0 || read_res(lu2, NULL) != 0)
			fail_msg("corrupt file %d was accepted", i);
		assert_int_equal(write10(lu2, &n3), GOOD);
		free_lu(lu2);
	}
	/* Binary junk with NUL bytes. */
	{
		int fd = open(path, O_WRONLY | O_TRUNC);
		static const char junk[] = "ringstor-pr 1\n\0\0\0naa";
		assert_true(fd >= 0);
		assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
		close(fd);
		lu2 = mk_lu(7);
		assert_int_equal(scsi_pr_load(lu2), 0);
		assert_int_equal(read_keys(lu2, NULL, NULL), 0);
		free_lu(lu2);
	}
	unlink(path);
}

static uint8_t reserve6(struct scsi_lu *lu, const struct scsi_nexus *n)
{
	uint8_t cdb[6] = { 0x16 };
	return run(lu, n, cdb, 6, NULL, 0)->status;
}

static uint8_t release6(struct scsi_lu *lu, const struct scsi_nexus *n)
{
	uint8_t cdb[6] = { 0x17 };
	return run(lu, n, cdb, 6, NULL, 0)->status;
}

static void test_reserve6(void **state)
{
	uint8_t cdb[6] = { 0x16, 0x10 };
	(void)state;

	/* libiscsi Reserve6.2Initiators */
	assert_int_equal(reserve6(L, &n1), GOOD);
	assert_int_equal(reserve6(L, &n1), GOOD);
	assert_int_equal(reserve6(L, &n2), CONFLICT);
	assert_int_equal(release6(L, &n2), GOOD);            /* no-op */
	assert_int_equal(op(L, &n1, 0x1a), GOOD);
	assert_int_equal(op(L, &n2, 0x1a), CONFLICT);
	assert_int_equal(op(L, &n2, 0x12), GOOD);            /* INQUIRY */
	assert_int_equal(op(L, &n2, 0xa0), GOOD);            /* REPORT LUNS */
	assert_int_equal(op(L, &n2, 0x03), GOOD);            /* REQUEST SENSE */
	assert_int_equal(op(L, &n2, 0x00), CONFLICT);        /* TEST UNIT READY */
	assert_int_equal(read10(L, &n2), CONFLICT);
	assert_int_equal(write10(L, &n1), GOOD);
	/* PR IN/OUT conflict for everybody (SPC-2 7.11/7.12). */
	assert_int_equal(prin(L, &n1, 0, 100)->status, CONFLICT);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), CONFLICT);
	assert_int_equal(reserve6(L, &n2), CONFLICT);
	assert_int_equal(release6(L, &n1), GOOD);
	assert_int_equal(reserve6(L, &n2), GOOD);
	assert_int_equal(release6(L, &n2), GOOD);
	assert_int_equal(write10(L, &n1), GOOD);
	/* 3RDPTY is not supported. */
	assert_sense(run(L, &n1, cdb, 6, NULL, 0), SK_ILLEGAL_REQUEST, 0x24, 0x00);

	/* Released by nexus loss of the holder, not of others; by LUN reset. */
	assert_int_equal(reserve6(L, &n1), GOOD);
	scsi_pr_nexus_lost(L, 2);
	assert_int_equal(write10(L, &n2), CONFLICT);
	scsi_pr_nexus_lost(L, 1);
	assert_int_equal(write10(L, &n2), GOOD);
	assert_int_equal(reserve6(L, &n2), GOOD);
	scsi_pr_lun_reset(L);
	assert_int_equal(write10(L, &n1), GOOD);
	assert_int_equal(reserve6(L, &n1), GOOD);
	assert_int_equal(release6(L, &n1), GOOD);
}

/* SPC-4 5.13.3: RESERVE(6)/RELEASE(6) with registrations present. */
static void test_reserve6_with_registrations(void **state)
{
	(void)state;

	assert_int_equal(prout(L, &n1, SA_REGISTER_IGNORE, 0, 0, 0x11), GOOD);
	assert_int_equal(prout(L, &n2, SA_REGISTER_IGNORE, 0, 0, 0x22), GOOD);
	/* Registered, no reservation: conflict. */
	assert_int_equal(reserve6(L, &n1), CONFLICT);
	assert_int_equal(release6(L, &n1), CONFLICT);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE, 0x11, 0), GOOD);
	/* Holder: GOOD, nothing happens.  Others: conflict. */
	assert_int_equal(reserve6(L, &n1), GOOD);
	assert_int_equal(release6(L, &n1), GOOD);
	assert_int_equal(read_res(L, NULL), WE);
	assert_int_equal(reserve6(L, &n2), CONFLICT);
	assert_int_equal(reserve6(L, &n3), CONFLICT);
	/* Registrants of RO types: GOOD no-op. */
	assert_int_equal(prout(L, &n1, SA_RELEASE, WE, 0x11, 0), GOOD);
	assert_int_equal(prout(L, &n1, SA_RESERVE, WE_RO, 0x11, 0), GOOD);
	assert_int_equal(reserve6(L, &n2), GOOD);
	assert_int_equal(release6(L, &n2), GOOD);
	assert_int_equal(reserve6(L, &n3), CONFLICT);
	assert_int_equal(read_res(L, NULL), WE_RO);
	assert_int_equal(write10(L, &n2), GOOD);
}

struct thr_arg {
	struct scsi_lu *lu;
	struct scsi_nexus nexus;
	int iters;
};

static void *hammer(void *p)
{
	struct thr_arg *a = p;
	struct scsi_cmd c;
	uint8_t param[24];
	uint8_t cdb[10];
	int i;

	for (i = 0; i < a->iters; i++) {
		memset(&c, 0, sizeof(c));
		memset(param, 0, sizeof(param));
		memset(cdb, 0, sizeof(cdb));
		c.lu = a->lu;
		c.nexus = &a->nexus;
		cdb[0] = 0x5f;
		cdb[8] = 24;
		switch (i % 4) {
		case 0:
			cdb[1] = SA_REGISTER_IGNORE;
			param[15] = (uint8_t)(a->nexus.id + 1);
			break;
		case 1:
			cdb[1] = SA_RESERVE;
			cdb[2] = WE;
			param[7] = (uint8_t)(a->nexus.id + 1);
			break;
		case 2:
			cdb[1] = SA_RELEASE;
			cdb[2] = WE;
			param[7] = (uint8_t)(a->nexus.id + 1);
			break;
		case 3:
			cdb[1] = SA_REGISTER;
			param[7] = (uint8_t)(a->nexus.id + 1);
			break;
		}
		memcpy(c.cdb, cdb, 10);
		c.data_out = param;
		c.data_out_len = 24;
		if (scsi_pr_check(&c))
			scsi_pr_out(&c);
		scsi_cmd_release(&c);
		memset(&c, 0, sizeof(c));
		c.lu = a->lu;
		c.nexus = &a->nexus;
		c.cdb[0] = 0x2a;
		(void)scsi_pr_check(&c);
		c.cdb[0] = 0x5e;
		c.cdb[8] = 200;
		if (scsi_pr_check(&c))
			scsi_pr_in(&c);
		scsi_cmd_release(&c);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct scsi_lu *lu = mk_lu(9);
	struct thr_arg a[4];
	pthread_t t[4];
	int i;
	(void)state;

	for (i = 0; i < 4; i++) {
		a[i].lu = lu;
		a[i].iters = 2000;
		a[i].nexus.id = (uint64_t)(10 + i);
		a[i].nexus.target_port_id = 1;
		snprintf(a[i].nexus.initiator_port, sizeof(a[i].nexus.initiator_port),
			 "iqn.2024-01.org.example:t%d,i,0x%012x", i, i);
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* Every thread ends unregistered; nothing can be reserved. */
	assert_int_equal(read_keys(lu, NULL, NULL), 0);
	assert_int_equal(read_res(lu, NULL), 0);
	free_lu(lu);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_scsi_pr.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	scsi_pr_set_state_dir(tmpdir);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_state_fast_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_unregister, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registration_follows_port_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_param_list_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prin_service_actions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_release_each_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ownership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_unit_attentions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_registrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_all_registrants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_i_pt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_full_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aptpl_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_ua_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_file_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve6_with_registrations, setup, teardown),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
