/* test_scsi.c - the SCSI core (SPC-4 / SBC-3) end to end through a real
 * reactor: CDBs in, status/sense/Data-In out, backends underneath. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "backend/backend.h"
#include "core/reactor.h"
#include "target/scsi.h"
#include "target/scsi_internal.h"

static struct reactor R;
static char tmpdir[64];
static struct scsi_lu *nlu;     /* null backend, 512-byte blocks, 1 MiB */
static struct scsi_lu *flu;     /* file backend, 4096-byte blocks, 4 MiB */
static struct scsi_lu *rolu;    /* null backend, read-only */
static struct scsi_nexus nexus1 = { .id = 1, .initiator_port = "iqn.x,i,0x1", .target_port_id = 1 };
static struct scsi_nexus nexus2 = { .id = 2, .initiator_port = "iqn.y,i,0x2", .target_port_id = 1 };

#define NULL_BLOCKS (1u << 11)   /* 1 MiB / 512 */
#define FILE_BLOCKS (1u << 10)   /* 4 MiB / 4096 */

static int done_calls;

static void on_done(struct scsi_cmd *cmd)
{
	done_calls++;
	if (cmd->r && cmd->r->stopping == false && reactor_current() == cmd->r)
		reactor_stop(cmd->r);
}

/* Execute cmd and run the reactor until done() was called once. */
static void run(struct scsi_cmd *cmd)
{
	done_calls = 0;
	cmd->r = &R;
	cmd->done = on_done;
	if (!cmd->nexus)
		cmd->nexus = &nexus1;
	scsi_cmd_execute(cmd);
	if (done_calls == 0) {
		R.stopping = false;
		reactor_run(&R);
	}
	assert_int_equal(done_calls, 1);
}

static void cmd_init(struct scsi_cmd *cmd, struct scsi_lu *lu, const uint8_t *cdb, size_t len)
{
	memset(cmd, 0, sizeof(*cmd));
	memcpy(cmd->cdb, cdb, len);
	cmd->cdb_len = (uint8_t)len;
	cmd->lu = lu;
	cmd->lun = lu ? lu->lun : 7;
}

/* One-shot: build, run; caller releases. */
static void exec(struct scsi_cmd *cmd, struct scsi_lu *lu, const uint8_t *cdb, size_t len)
{
	cmd_init(cmd, lu, cdb, len);
	run(cmd);
}

static void assert_good(const struct scsi_cmd *cmd)
{
	if (cmd->status != SAM_STAT_GOOD)
		fail_msg("op %#x lba %llu n %u: status %#x sense %x/%02x/%02x", cmd->cdb[0],
			 (unsigned long long)cmd->lba, cmd->nr_blocks, cmd->status, cmd->sense[2],
			 cmd->sense[12], cmd->sense[13]);
}

static void assert_sense(const struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq)
{
	if (cmd->status != SAM_STAT_CHECK_CONDITION)
		fail_msg("status %#x, expected CHECK CONDITION %x/%02x/%02x", cmd->status, key, asc,
			 ascq);
	assert_int_equal(cmd->sense_len, 18);
	assert_int_equal(cmd->sense[0] & 0x7f, 0x70);
	assert_int_equal(cmd->sense[2] & 0x0f, key);
	assert_int_equal(cmd->sense[12], asc);
	assert_int_equal(cmd->sense[13], ascq);
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void wbe16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wbe32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void wbe64(uint8_t *p, uint64_t v) { wbe32(p, (uint32_t)(v >> 32)); wbe32(p + 4, (uint32_t)v); }

/* Build a READ/WRITE/VERIFY-family CDB of the given opcode. */
static size_t rw_cdb(uint8_t *cdb, uint8_t op, uint64_t lba, uint32_t n, uint8_t b1)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	switch (op >> 5) {
	case 0:
		cdb[1] = (uint8_t)((lba >> 16) & 0x1f);
		cdb[2] = (uint8_t)(lba >> 8);
		cdb[3] = (uint8_t)lba;
		cdb[4] = (uint8_t)n;
		return 6;
	case 1:
		cdb[1] = b1;
		wbe32(&cdb[2], (uint32_t)lba);
		wbe16(&cdb[7], (uint16_t)n);
		return 10;
	case 5:
		cdb[1] = b1;
		wbe32(&cdb[2], (uint32_t)lba);
		wbe32(&cdb[6], n);
		return 12;
	default:
		cdb[1] = b1;
		wbe64(&cdb[2], lba);
		wbe32(&cdb[10], n);
		return 16;
	}
}

static int report_luns_hook(const struct scsi_cmd *cmd, uint64_t *luns, int max)
{
	static const uint64_t all[] = { 0, 1, 300 };
	int i;
	(void)cmd;
	for (i = 0; i < 3 && i < max; i++)
		luns[i] = all[i];
	return 3;
}

static int setup(void **state)
{
	struct bstore_params np = { .block_size = 512, .size = 1 << 20 };
	struct bstore_params fp = { .block_size = 4096, .size = 4 << 20, .create = true };
	struct scsi_lu_params lp = { .naa_seed = "iqn.2024-01.test:tgt/0", .thin_provisioning = true };
	struct bstore *bs;
	char path[128];
	(void)state;

	alarm(60);
	assert_int_equal(reactor_init(&R, 0, 64), 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs-test-scsi-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));

	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	nlu = scsi_lu_create(0, bs, &lp);
	assert_non_null(nlu);

	snprintf(path, sizeof(path), "%s/lu.img", tmpdir);
	assert_int_equal(bstore_open("file", path, &fp, &bs), 0);
	lp.naa_seed = "iqn.2024-01.test:tgt/1";
	lp.serial = "SER-1";
	flu = scsi_lu_create(1, bs, &lp);
	assert_non_null(flu);

	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	lp.naa_seed = "iqn.2024-01.test:tgt/2";
	lp.serial = NULL;
	lp.readonly = true;
	rolu = scsi_lu_create(2, bs, &lp);
	assert_non_null(rolu);
	scsi_report_luns_hook = report_luns_hook;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	scsi_lu_put(nlu);
	scsi_lu_put(flu);
	scsi_lu_put(rolu);
	reactor_fini(&R);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Sense                                                                     */
/* ------------------------------------------------------------------------ */

static void test_sense_build(void **state)
{
	struct scsi_cmd cmd;
	uint8_t buf[18];
	(void)state;

	assert_int_equal(scsi_build_sense(buf, SK_ILLEGAL_REQUEST, 0x24, 0x00), 18);
	assert_int_equal(buf[0], 0x70);
	assert_int_equal(buf[2], 0x05);
	assert_int_equal(buf[7], 10);
	assert_int_equal(buf[12], 0x24);
	assert_int_equal(buf[13], 0x00);

	memset(&cmd, 0, sizeof(cmd));
	scsi_set_sense_field(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0, true, 258, 3);
	assert_int_equal(cmd.status, SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd.sense[15], 0x80 | 0x40 | 0x08 | 3);
	assert_int_equal(be16(&cmd.sense[16]), 258);
	scsi_set_sense_field(&cmd, SK_ILLEGAL_REQUEST, 0x26, 0, false, 5, -1);
	assert_int_equal(cmd.sense[15], 0x80);
	assert_int_equal(be16(&cmd.sense[16]), 5);
}

static void test_errno_sense(void **state)
{
	struct scsi_cmd cmd;
	(void)state;

	memset(&cmd, 0, sizeof(cmd));
	scsi_set_errno_sense(&cmd, -EIO, false);
	assert_sense(&cmd, SK_MEDIUM_ERROR, 0x11, 0x00);
	scsi_set_errno_sense(&cmd, -EIO, true);
	assert_sense(&cmd, SK_MEDIUM_ERROR, 0x0c, 0x00);
	scsi_set_errno_sense(&cmd, -ENOSPC, true);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x07);
	scsi_set_errno_sense(&cmd, -EROFS, true);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	scsi_set_errno_sense(&cmd, -EBADF, false);
	assert_sense(&cmd, SK_HARDWARE_ERROR, 0x44, 0x00);
	scsi_set_errno_sense(&cmd, -ENOMEM, false);
	assert_int_equal(cmd.status, SAM_STAT_BUSY);
}

/* ------------------------------------------------------------------------ */
/* Dispatch, LU presence, unit attentions                                    */
/* ------------------------------------------------------------------------ */

static void test_tur_and_unknown_opcode(void **state)
{
	uint8_t tur[6] = { 0x00 }, bad[10] = { 0xc7 }, sai[16] = { 0x9e, 0x11 };
	uint8_t naca[6] = { 0x00, 0, 0, 0, 0, 0x04 };
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, nlu, tur, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 0);
	exec(&cmd, nlu, bad, 10);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x20, 0x00);
	exec(&cmd, nlu, sai, 16);             /* SERVICE ACTION IN, unknown SA */
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	exec(&cmd, nlu, naca, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(be16(&cmd.sense[16]), 5);
}

static void test_no_lu(void **state)
{
	uint8_t tur[6] = { 0x00 }, inq[6] = { 0x12, 0, 0, 0, 96, 0 };
	uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 }, rl[12] = { 0xa0 };
	uint8_t vpd0[6] = { 0x12, 1, 0x00, 0, 255, 0 }, vpd83[6] = { 0x12, 1, 0x83, 0, 255, 0 };
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, NULL, tur, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x25, 0x00);

	exec(&cmd, NULL, inq, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[0], 0x7f);  /* qualifier 011b, type 1Fh */
	scsi_cmd_release(&cmd);

	exec(&cmd, NULL, vpd0, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[0], 0x7f);
	scsi_cmd_release(&cmd);
	exec(&cmd, NULL, vpd83, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);

	exec(&cmd, NULL, rs, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 18);
	assert_int_equal(cmd.data_in[2], SK_ILLEGAL_REQUEST);
	assert_int_equal(cmd.data_in[12], 0x25);
	scsi_cmd_release(&cmd);

	wbe32(&rl[6], 4096);
	exec(&cmd, NULL, rl, 12);
	assert_good(&cmd);
	assert_int_equal(be32(cmd.data_in), 24);
	scsi_cmd_release(&cmd);
}

static void test_unit_attention(void **state)
{
	uint8_t tur[6] = { 0x00 }, inq[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t rs[6] = { 0x03, 0, 0, 0, 252, 0 }, rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	struct scsi_cmd cmd;
	(void)state;

	scsi_lu_ua_add(nlu, 1, 0x29, 0x00);
	scsi_lu_ua_add(nlu, 1, 0x29, 0x00);   /* duplicate: ignored */
	scsi_lu_ua_add(nlu, 1, 0x2a, 0x09);

	/* INQUIRY and REPORT LUNS neither report nor clear it */
	exec(&cmd, nlu, inq, 6);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	exec(&cmd, nlu, rl, 12);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	/* another nexus is unaffected */
	cmd_init(&cmd, nlu, tur, 6);
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_good(&cmd);

	exec(&cmd, nlu, tur, 6);
	assert_sense(&cmd, SK_UNIT_ATTENTION, 0x29, 0x00);
	/* REQUEST SENSE returns (and consumes) the next one */
	exec(&cmd, nlu, rs, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 18);
	assert_int_equal(cmd.data_in[2], SK_UNIT_ATTENTION);
	assert_int_equal(cmd.data_in[12], 0x2a);
	assert_int_equal(cmd.data_in[13], 0x09);
	scsi_cmd_release(&cmd);
	exec(&cmd, nlu, tur, 6);
	assert_good(&cmd);
	exec(&cmd, nlu, rs, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[2], SK_NO_SENSE);
	assert_int_equal(cmd.data_in[12], 0);
	scsi_cmd_release(&cmd);

	/* descriptor format */
	rs[1] = 1;
	exec(&cmd, nlu, rs, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8);
	assert_int_equal(cmd.data_in[0], 0x72);
	scsi_cmd_release(&cmd);

	/* unknown opcodes also report the UA first */
	scsi_lu_ua_add(nlu, 1, 0x3f, 0x0e);
	uint8_t bad[6] = { 0x1d };
	exec(&cmd, nlu, bad, 6);
	assert_sense(&cmd, SK_UNIT_ATTENTION, 0x3f, 0x0e);

	/* nexus loss clears */
	scsi_lu_ua_add(nlu, 1, 0x29, 0x00);
	scsi_lu_ua_add(nlu, 2, 0x29, 0x00);
	scsi_lu_ua_clear_nexus(nlu, 1);
	exec(&cmd, nlu, tur, 6);
	assert_good(&cmd);
	cmd_init(&cmd, nlu, tur, 6);
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_sense(&cmd, SK_UNIT_ATTENTION, 0x29, 0x00);
}

/* ------------------------------------------------------------------------ */
/* INQUIRY                                                                   */
/* ------------------------------------------------------------------------ */

static void test_inquiry_standard(void **state)
{
	uint8_t cdb[6] = { 0x12, 0, 0, 0x01, 0x04, 0 };   /* alloc 260 */
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, flu, cdb, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 96);
	assert_int_equal(cmd.xfer_len, 96);
	assert_false(cmd.xfer_is_write);
	assert_int_equal(cmd.data_in[0], 0x00);
	assert_int_equal(cmd.data_in[2], 0x06);
	assert_int_equal(cmd.data_in[3], 0x12);
	assert_int_equal(cmd.data_in[4], 96 - 5);
	assert_int_equal(cmd.data_in[7] & 0x02, 0x02);
	assert_memory_equal(&cmd.data_in[8], "RINGSTOR", 8);
	assert_memory_equal(&cmd.data_in[16], "VIRTUAL-DISK    ", 16);
	assert_memory_equal(&cmd.data_in[32], "0001", 4);
	assert_int_equal(be16(&cmd.data_in[58]), 0x00a0);
	assert_int_equal(be16(&cmd.data_in[60]), 0x0460);
	assert_int_equal(be16(&cmd.data_in[62]), 0x04c0);
	scsi_cmd_release(&cmd);

	/* allocation length truncation */
	cdb[3] = 0;
	cdb[4] = 10;
	exec(&cmd, flu, cdb, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 10);
	assert_int_equal(cmd.data_in[4], 91);
	scsi_cmd_release(&cmd);
	cdb[4] = 0;
	exec(&cmd, flu, cdb, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 0);
	scsi_cmd_release(&cmd);

	/* EVPD=0 with a page code */
	cdb[2] = 0x80;
	cdb[4] = 255;
	exec(&cmd, flu, cdb, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(cmd.sense[15] & 0xc0, 0xc0);
	assert_int_equal(be16(&cmd.sense[16]), 2);
	scsi_cmd_release(&cmd);
}

static void get_vpd(struct scsi_cmd *cmd, struct scsi_lu *lu, uint8_t page)
{
	uint8_t cdb[6] = { 0x12, 1, page, 0, 255, 0 };
	exec(cmd, lu, cdb, 6);
	assert_good(cmd);
	assert_int_equal(cmd->data_in[1], page);
	assert_int_equal(cmd->data_in_len, 4 + be16(&cmd->data_in[2]));
}

static void test_inquiry_vpd(void **state)
{
	struct scsi_cmd cmd;
	uint8_t naa1[16], naa1b[16];
	uint8_t cdb[6] = { 0x12, 1, 0x99, 0, 255, 0 };
	(void)state;

	get_vpd(&cmd, flu, 0x00);
	assert_int_equal(cmd.data_in_len, 11);
	assert_memory_equal(&cmd.data_in[4], "\x00\x80\x83\x8f\xb0\xb1\xb2", 7);
	scsi_cmd_release(&cmd);

	get_vpd(&cmd, flu, 0x80);
	assert_int_equal(cmd.data_in_len, 4 + 5);
	assert_memory_equal(&cmd.data_in[4], "SER-1", 5);
	scsi_cmd_release(&cmd);

	get_vpd(&cmd, nlu, 0x80);   /* derived serial */
	assert_int_equal(cmd.data_in_len, 4 + 16);
	scsi_cmd_release(&cmd);

	get_vpd(&cmd, flu, 0x83);
	/* NAA 6 designator first */
	assert_int_equal(cmd.data_in[4], 0x01);
	assert_int_equal(cmd.data_in[5], 0x03);
	assert_int_equal(cmd.data_in[7], 16);
	assert_int_equal(cmd.data_in[8] >> 4, 6);
	memcpy(naa1, &cmd.data_in[8], 16);
	/* T10 vendor id */
	assert_int_equal(cmd.data_in[24], 0x02);
	assert_int_equal(cmd.data_in[25], 0x01);
	assert_int_equal(cmd.data_in[27], 8 + 5);
	assert_memory_equal(&cmd.data_in[28], "RINGSTORSER-1", 13);
	/* relative target port */
	assert_int_equal(cmd.data_in[41], 0x51);
	assert_int_equal(cmd.data_in[42], 0x94);
	assert_int_equal(be16(&cmd.data_in[47]), 1);
	scsi_cmd_release(&cmd);

	/* NAA is a pure function of the seed: persistent across restarts */
	{
		struct bstore_params np = { .block_size = 512, .size = 1 << 20 };
		struct scsi_lu_params lp = { .naa_seed = "iqn.2024-01.test:tgt/1" };
		struct bstore *bs;
		struct scsi_lu *lu;
		assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
		lu = scsi_lu_create(1, bs, &lp);
		memcpy(naa1b, lu->naa, 16);
		assert_memory_equal(naa1, naa1b, 16);
		assert_memory_not_equal(naa1, nlu->naa, 16);
		scsi_lu_put(lu);
	}

	get_vpd(&cmd, flu, 0xb0);
	assert_int_equal(cmd.data_in_len, 64);
	assert_int_equal(be16(&cmd.data_in[6]), 1);            /* granularity, 4k blocks */
	assert_int_equal(be32(&cmd.data_in[8]), (8u << 20) / 4096);
	assert_int_equal(cmd.data_in[4], 0x00);                 /* WSNZ=0 */
	assert_int_equal(cmd.data_in[5], 255);                  /* MAX COMPARE AND WRITE LENGTH */
	assert_int_equal(be32(&cmd.data_in[16]), (8u << 20) / 4096); /* MAX PREFETCH LENGTH */
	assert_int_equal(be32(&cmd.data_in[44]), (1u << 20) / 4096); /* MAX ATOMIC TRANSFER LENGTH */
	assert_int_equal(be32(&cmd.data_in[48]), 0);            /* ATOMIC ALIGNMENT */
	assert_int_equal(be32(&cmd.data_in[52]), 0);            /* ATOMIC GRANULARITY */
	assert_int_equal(be32(&cmd.data_in[20]), 0x100000);     /* MAX UNMAP LBA COUNT */
	assert_int_equal(be32(&cmd.data_in[24]), 256);          /* MAX UNMAP DESCRIPTORS */
	assert_int_equal(be32(&cmd.data_in[28]), 1);            /* OPTIMAL UNMAP GRANULARITY */
	assert_int_equal(be64(&cmd.data_in[36]), 0xffff);
	scsi_cmd_release(&cmd);
	get_vpd(&cmd, nlu, 0xb0);
	assert_int_equal(be16(&cmd.data_in[6]), 8);
	scsi_cmd_release(&cmd);

	get_vpd(&cmd, flu, 0xb1);
	assert_int_equal(be16(&cmd.data_in[4]), 1);
	scsi_cmd_release(&cmd);

	get_vpd(&cmd, flu, 0xb2);
	assert_int_equal(cmd.data_in[5], 0xe4);                  /* LBPU LBPWS LBPWS10 LBPRZ */
	assert_int_equal(cmd.data_in[6], 0x02);                  /* thin */
	scsi_cmd_release(&cmd);

	exec(&cmd, flu, cdb, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
}

/* ------------------------------------------------------------------------ */
/* READ CAPACITY                                                             */
/* ------------------------------------------------------------------------ */

static void test_read_capacity(void **state)
{
	uint8_t rc10[10] = { 0x25 }, rc16[16] = { 0x9e, 0x10 };
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, flu, rc10, 10);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8);
	assert_int_equal(be32(cmd.data_in), FILE_BLOCKS - 1);
	assert_int_equal(be32(cmd.data_in + 4), 4096);
	scsi_cmd_release(&cmd);

	rc10[5] = 1;   /* LBA != 0 with PMI=0 */
	exec(&cmd, flu, rc10, 10);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	rc10[8] = 1;   /* PMI=1: fine */
	exec(&cmd, flu, rc10, 10);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	wbe32(&rc16[10], 32);
	exec(&cmd, nlu, rc16, 16);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 32);
	assert_int_equal(be64(cmd.data_in), NULL_BLOCKS - 1);
	assert_int_equal(be32(cmd.data_in + 8), 512);
	assert_int_equal(cmd.data_in[14], 0xc0);          /* LBPME, LBPRZ */
	scsi_cmd_release(&cmd);
	wbe32(&rc16[10], 12);
	exec(&cmd, nlu, rc16, 16);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 12);
	scsi_cmd_release(&cmd);
}

/* ------------------------------------------------------------------------ */
/* READ / WRITE decoding and data path                                       */
/* ------------------------------------------------------------------------ */

static void test_rw_decode(void **state)
{
	static const uint8_t ops[] = { 0x08, 0x28, 0xa8, 0x88, 0x0a, 0x2a, 0xaa, 0x8a };
	uint8_t cdb[16], *data = bstore_buf_alloc(256 * 512);
	struct scsi_cmd cmd;
	size_t i, len;
	(void)state;

	for (i = 0; i < sizeof(ops); i++) {
		bool wr = ops[i] & 0x02;
		len = rw_cdb(cdb, ops[i], 0x123, 3, 0);
		cmd_init(&cmd, nlu, cdb, len);
		if (wr) {
			cmd.data_out = data;
			cmd.data_out_len = 3 * 512;
		}
		run(&cmd);
		assert_good(&cmd);
		assert_int_equal(cmd.lba, 0x123);
		assert_int_equal(cmd.nr_blocks, 3);
		assert_int_equal(cmd.xfer_len, 3 * 512);
		assert_int_equal(cmd.xfer_is_write, wr);
		assert_int_equal(cmd.data_in_len, wr ? 0 : 3 * 512);
		scsi_cmd_release(&cmd);
	}

	/* READ(6)/WRITE(6): TRANSFER LENGTH 0 means 256 blocks */
	len = rw_cdb(cdb, 0x08, 0x10, 0, 0);
	exec(&cmd, nlu, cdb, len);
	assert_good(&cmd);
	assert_int_equal(cmd.nr_blocks, 256);
	assert_int_equal(cmd.data_in_len, 256 * 512);
	scsi_cmd_release(&cmd);
	len = rw_cdb(cdb, 0x0a, 0x10, 0, 0);
	cmd_init(&cmd, nlu, cdb, len);
	cmd.data_out = data;
	cmd.data_out_len = 256 * 512;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 256 * 512);

	/* READ(10..16): TRANSFER LENGTH 0 is GOOD with nothing moved */
	for (i = 1; i < 4; i++) {
		len = rw_cdb(cdb, ops[i], 5, 0, 0);
		exec(&cmd, nlu, cdb, len);
		assert_good(&cmd);
		assert_int_equal(cmd.xfer_len, 0);
		assert_int_equal(cmd.data_in_len, 0);
		scsi_cmd_release(&cmd);
	}

	/* 64-bit LBA decode */
	len = rw_cdb(cdb, 0x88, 0x0123456789abcdefull, 1, 0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	assert_true(cmd.lba == 0x0123456789abcdefull);
	/* 21-bit LBA of READ(6) */
	len = rw_cdb(cdb, 0x08, 0x1fffff, 1, 0);
	exec(&cmd, nlu, cdb, len);
	assert_int_equal(cmd.lba, 0x1fffff);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);

	/* RDPROTECT / WRPROTECT */
	len = rw_cdb(cdb, 0x28, 0, 1, 0x20);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(be16(&cmd.sense[16]), 1);
	len = rw_cdb(cdb, 0x8a, 0, 1, 0xe0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);

	/* beyond the maximum transfer length */
	len = rw_cdb(cdb, 0x28, 0, 0xffff, 0);
	exec(&cmd, flu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);   /* range first */
	len = rw_cdb(cdb, 0xa8, 0, NULL_BLOCKS, 0);
	{
		struct bstore_params bp = { .block_size = 512, .size = 1ull << 32 };
		struct bstore *bs;
		struct scsi_lu *big;
		assert_int_equal(bstore_open("null", NULL, &bp, &bs), 0);
		big = scsi_lu_create(9, bs, NULL);
		len = rw_cdb(cdb, 0xa8, 0, (16u << 20) / 512, 0);
		exec(&cmd, big, cdb, len);
		assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
		assert_int_equal(be16(&cmd.sense[16]), 6);
		scsi_lu_put(big);
	}
	bstore_buf_free(data);
}

static void test_range_checks(void **state)
{
	uint8_t cdb[16];
	struct scsi_cmd cmd;
	size_t len;
	(void)state;

	len = rw_cdb(cdb, 0x28, NULL_BLOCKS - 1, 1, 0);
	exec(&cmd, nlu, cdb, len);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	len = rw_cdb(cdb, 0x28, NULL_BLOCKS - 1, 2, 0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	assert_int_equal(cmd.data_in_len, 0);
	len = rw_cdb(cdb, 0x28, NULL_BLOCKS, 0, 0);
	exec(&cmd, nlu, cdb, len);
	assert_good(&cmd);
	len = rw_cdb(cdb, 0x28, NULL_BLOCKS + 1, 0, 0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	len = rw_cdb(cdb, 0x28, 0xffffffff, 1, 0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	len = rw_cdb(cdb, 0x88, 1ull << 63, 1, 0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	len = rw_cdb(cdb, 0x88, UINT64_MAX, 2, 0);     /* lba + n wraps */
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	len = rw_cdb(cdb, 0x8a, NULL_BLOCKS - 1, 0x10000, 0);
	exec(&cmd, nlu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);

	/* SYNCHRONIZE CACHE range */
	memset(cdb, 0, 16);
	cdb[0] = 0x35;
	wbe32(&cdb[2], NULL_BLOCKS);
	exec(&cmd, nlu, cdb, 10);
	assert_good(&cmd);       /* 0 blocks at the end */
	wbe32(&cdb[2], NULL_BLOCKS + 1);
	exec(&cmd, nlu, cdb, 10);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	memset(cdb, 0, 16);
	cdb[0] = 0x91;
	wbe32(&cdb[10], 10);
	exec(&cmd, flu, cdb, 16);
	assert_good(&cmd);
}

static void test_file_write_read(void **state)
{
	uint8_t cdb[16];
	uint8_t *data = malloc(8 * 4096 + 1);   /* deliberately not page aligned */
	uint8_t *wbuf = data + 1;
	struct scsi_cmd cmd;
	size_t len;
	(void)state;

	for (int i = 0; i < 8 * 4096; i++)
		wbuf[i] = (uint8_t)(i % 251);
	len = rw_cdb(cdb, 0x2a, 10, 8, 0x08);   /* FUA */
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 8 * 4096;
	cmd.expected_len = 8 * 4096;
	run(&cmd);
	assert_good(&cmd);
	assert_true(cmd.bio.flags & BIO_F_FUA);
	assert_int_equal(cmd.xfer_len, 8 * 4096);
	assert_true(cmd.xfer_is_write);
	scsi_cmd_release(&cmd);

	len = rw_cdb(cdb, 0x88, 10, 8, 0);
	exec(&cmd, flu, cdb, len);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8 * 4096);
	assert_int_equal((uintptr_t)cmd.data_in & 4095, 0);
	assert_memory_equal(cmd.data_in, wbuf, 8 * 4096);
	scsi_cmd_release(&cmd);

	/* without FUA and with the write cache on: no FUA */
	len = rw_cdb(cdb, 0x2a, 20, 1, 0);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	assert_false(cmd.bio.flags & BIO_F_FUA);

	/* WRITE AND VERIFY is always durable */
	len = rw_cdb(cdb, 0x2e, 21, 1, 0x02);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	assert_true(cmd.bio.flags & BIO_F_FUA);

	/* short Data-Out: whole blocks are written, the rest untouched */
	memset(wbuf, 'a', 2 * 4096);
	len = rw_cdb(cdb, 0x2a, 30, 2, 0);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 2 * 4096;
	run(&cmd);
	assert_good(&cmd);
	memset(wbuf, 'b', 2 * 4096);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 4096;
	cmd.expected_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 2 * 4096);   /* the fabric reports the overflow */
	len = rw_cdb(cdb, 0x28, 30, 2, 0);
	exec(&cmd, flu, cdb, len);
	assert_good(&cmd);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(cmd.data_in[i], 'b');
	for (int i = 4096; i < 8192; i++)
		assert_int_equal(cmd.data_in[i], 'a');
	scsi_cmd_release(&cmd);
	/* mid-block: exactly the received bytes change (read-modify-write) */
	memset(wbuf, 'c', 8192);
	len = rw_cdb(cdb, 0x2a, 30, 2, 0);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 4096 + 200;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 8192);
	scsi_cmd_release(&cmd);
	len = rw_cdb(cdb, 0x28, 30, 2, 0);
	exec(&cmd, flu, cdb, len);
	assert_good(&cmd);
	for (int i = 0; i < 4096 + 200; i++)
		assert_int_equal(cmd.data_in[i], 'c');
	for (int i = 4096 + 200; i < 8192; i++)
		assert_int_equal(cmd.data_in[i], 'a');
	scsi_cmd_release(&cmd);
	memset(wbuf, 'b', 4096);
	len = rw_cdb(cdb, 0x2a, 30, 1, 0);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = wbuf;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	/* no data at all: GOOD, nothing written */
	cmd_init(&cmd, flu, cdb, len);
	run(&cmd);
	assert_good(&cmd);
	len = rw_cdb(cdb, 0x28, 30, 1, 0);
	exec(&cmd, flu, cdb, len);
	assert_int_equal(cmd.data_in[0], 'b');
	scsi_cmd_release(&cmd);

	free(data);
}

static void test_readonly(void **state)
{
	uint8_t cdb[16], data[512] = { 0 };
	static const uint8_t wops[] = { 0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e };
	struct scsi_cmd cmd;
	size_t i, len;
	(void)state;

	for (i = 0; i < sizeof(wops); i++) {
		len = rw_cdb(cdb, wops[i], 0, 1, 0);
		cmd_init(&cmd, rolu, cdb, len);
		cmd.data_out = data;
		cmd.data_out_len = 512;
		run(&cmd);
		assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	}
	len = rw_cdb(cdb, 0x28, 0, 1, 0);
	exec(&cmd, rolu, cdb, len);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
}

static void test_verify(void **state)
{
	uint8_t cdb[16];
	uint8_t *buf = malloc(4 * 4096);
	struct scsi_cmd cmd;
	size_t len;
	(void)state;

	for (int i = 0; i < 4 * 4096; i++)
		buf[i] = (uint8_t)(i * 13);
	len = rw_cdb(cdb, 0x2a, 100, 4, 0);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = buf;
	cmd.data_out_len = 4 * 4096;
	run(&cmd);
	assert_good(&cmd);

	/* BYTCHK=0: medium verification only, no Data-Out */
	len = rw_cdb(cdb, 0x2f, 100, 4, 0);
	exec(&cmd, flu, cdb, len);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 0);
	scsi_cmd_release(&cmd);

	/* BYTCHK=1 for each size: match */
	static const uint8_t vops[] = { 0x2f, 0xaf, 0x8f };
	for (size_t i = 0; i < 3; i++) {
		len = rw_cdb(cdb, vops[i], 100, 4, 0x02);
		cmd_init(&cmd, flu, cdb, len);
		cmd.data_out = buf;
		cmd.data_out_len = 4 * 4096;
		run(&cmd);
		assert_good(&cmd);
		assert_int_equal(cmd.xfer_len, 4 * 4096);
		assert_true(cmd.xfer_is_write);
		scsi_cmd_release(&cmd);
	}

	/* mismatch: MISCOMPARE with INFORMATION = offset */
	buf[3 * 4096 + 17] ^= 0x55;
	len = rw_cdb(cdb, 0x8f, 100, 4, 0x02);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = buf;
	cmd.data_out_len = 4 * 4096;
	run(&cmd);
	assert_sense(&cmd, SK_MISCOMPARE, 0x1d, 0x00);
	assert_int_equal(cmd.sense[0], 0xf0);     /* VALID */
	assert_int_equal(be32(&cmd.sense[3]), 3 * 4096 + 17);
	scsi_cmd_release(&cmd);

	/* VRPROTECT, reserved BYTCHK, range, zero length */
	len = rw_cdb(cdb, 0x2f, 100, 4, 0x20);
	exec(&cmd, flu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	len = rw_cdb(cdb, 0x2f, 100, 4, 0x04);
	exec(&cmd, flu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	len = rw_cdb(cdb, 0x2f, FILE_BLOCKS - 1, 2, 0);
	exec(&cmd, flu, cdb, len);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	len = rw_cdb(cdb, 0x2f, 0, 0, 0x02);
	exec(&cmd, flu, cdb, len);
	assert_good(&cmd);
	free(buf);
}

/* ------------------------------------------------------------------------ */
/* MODE SENSE / MODE SELECT                                                   */
/* ------------------------------------------------------------------------ */

/* Find page `code` in MODE SENSE data; NULL if absent. */
static const uint8_t *find_page(const uint8_t *d, uint32_t len, bool six, uint8_t code)
{
	uint32_t off = six ? 4u + d[3] : 8u + be16(&d[6]);
	while (off + 2 <= len) {
		if ((d[off] & 0x3f) == code)
			return d + off;
		off += 2u + d[off + 1];
	}
	return NULL;
}

static void test_mode_sense(void **state)
{
	uint8_t ms6[6] = { 0x1a, 0, 0x3f, 0, 255, 0 };
	uint8_t ms10[10] = { 0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0x00, 0 };
	const uint8_t *pg;
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, flu, ms6, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[0], cmd.data_in_len - 1);
	assert_int_equal(cmd.data_in[2], 0x10);            /* DPOFUA, not WP */
	assert_int_equal(cmd.data_in[3], 8);
	assert_int_equal(be32(&cmd.data_in[4]), FILE_BLOCKS);
	assert_int_equal(be32(&cmd.data_in[8]) & 0xffffff, 4096);
	pg = find_page(cmd.data_in, cmd.data_in_len, true, 0x08);
	assert_non_null(pg);
	assert_int_equal(pg[1], 0x12);
	assert_int_equal(pg[2] & 0x04, 0x04);              /* WCE */
	assert_non_null(find_page(cmd.data_in, cmd.data_in_len, true, 0x0a));
	assert_non_null(find_page(cmd.data_in, cmd.data_in_len, true, 0x1c));
	assert_int_equal(cmd.data_in_len, 4 + 8 + 20 + 12 + 12);
	scsi_cmd_release(&cmd);

	/* allocation length 4: header only, length still the full one */
	ms6[4] = 4;
	exec(&cmd, flu, ms6, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 4);
	assert_int_equal(cmd.data_in[0], 4 + 8 + 20 + 12 + 12 - 1);
	scsi_cmd_release(&cmd);

	/* DBD, single page, changeable values */
	ms6[1] = 0x08;
	ms6[2] = 0x40 | 0x08;
	ms6[4] = 255;
	exec(&cmd, flu, ms6, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[3], 0);
	assert_int_equal(cmd.data_in_len, 4 + 20);
	assert_int_equal(cmd.data_in[4], 0x08);
	assert_int_equal(cmd.data_in[6], 0x04);            /* only WCE changeable */
	scsi_cmd_release(&cmd);

	/* saved values: not supported */
	ms6[2] = 0xc0 | 0x08;
	exec(&cmd, flu, ms6, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x39, 0x00);
	/* unknown page, bad subpage */
	ms6[2] = 0x19;
	exec(&cmd, flu, ms6, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(cmd.data_in_len, 0);
	scsi_cmd_release(&cmd);
	ms6[2] = 0x08;
	ms6[3] = 0x01;
	exec(&cmd, flu, ms6, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	ms6[3] = 0xff;
	exec(&cmd, flu, ms6, 6);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	/* MODE SENSE(10) with LLBAA: long block descriptor */
	ms10[1] = 0x10;
	exec(&cmd, nlu, ms10, 10);
	assert_good(&cmd);
	assert_int_equal(be16(&cmd.data_in[0]), cmd.data_in_len - 2);
	assert_int_equal(cmd.data_in[4] & 1, 1);
	assert_int_equal(be16(&cmd.data_in[6]), 16);
	assert_int_equal(be64(&cmd.data_in[8]), NULL_BLOCKS);
	assert_int_equal(be32(&cmd.data_in[20]), 512);
	scsi_cmd_release(&cmd);

	/* write protect bit for a read-only LU */
	ms10[1] = 0;
	exec(&cmd, rolu, ms10, 10);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[3] & 0x80, 0x80);
	assert_int_equal(be16(&cmd.data_in[6]), 8);
	scsi_cmd_release(&cmd);
}

static int events;
static uint8_t event_asc, event_ascq;
static void event_hook(const struct scsi_cmd *cmd, uint8_t asc, uint8_t ascq)
{
	(void)cmd;
	events++;
	event_asc = asc;
	event_ascq = ascq;
}

static void test_mode_select_roundtrip(void **state)
{
	uint8_t ms10[10] = { 0x5a, 0x08, 0x08, 0, 0, 0, 0, 0, 255, 0 };
	uint8_t sel10[10] = { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t sel6[6] = { 0x15, 0x10, 0, 0, 0, 0 };
	uint8_t param[64], cdb[16];
	struct scsi_cmd cmd;
	uint32_t plen;
	size_t len;
	(void)state;

	scsi_lu_event_hook = event_hook;
	events = 0;

	/* MODE SENSE(10) the caching page, clear WCE, MODE SELECT(10) it back */
	exec(&cmd, nlu, ms10, 10);
	assert_good(&cmd);
	plen = cmd.data_in_len;
	assert_int_equal(plen, 8 + 20);
	memcpy(param, cmd.data_in, plen);
	scsi_cmd_release(&cmd);
	param[0] = param[1] = 0;       /* MODE DATA LENGTH is reserved in SELECT */
	param[8] &= 0x3f;              /* PS is reserved too */
	param[8 + 2] &= (uint8_t)~0x04;
	wbe16(&sel10[7], (uint16_t)plen);
	cmd_init(&cmd, nlu, sel10, 10);
	cmd.data_out = param;
	cmd.data_out_len = plen;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, plen);
	assert_true(cmd.xfer_is_write);
	assert_false(atomic_load(&nlu->write_cache));
	assert_int_equal(events, 1);
	assert_int_equal(event_asc, 0x2a);
	assert_int_equal(event_ascq, 0x01);

	exec(&cmd, nlu, ms10, 10);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[8 + 2] & 0x04, 0);
	scsi_cmd_release(&cmd);

	/* WCE=0: every write is FUA */
	{
		uint8_t data[512] = { 0 };
		len = rw_cdb(cdb, 0x2a, 0, 1, 0);
		cmd_init(&cmd, nlu, cdb, len);
		cmd.data_out = data;
		cmd.data_out_len = 512;
		run(&cmd);
		assert_good(&cmd);
		assert_true(cmd.bio.flags & BIO_F_FUA);
	}

	/* MODE SELECT(6) with a block descriptor turns WCE back on */
	memset(param, 0, sizeof(param));
	param[3] = 8;
	wbe32(&param[4], NULL_BLOCKS);
	param[9] = 0;
	param[10] = 0x02;              /* block length 512 */
	param[12] = 0x08;
	param[13] = 0x12;
	param[14] = 0x04;
	sel6[4] = 4 + 8 + 20;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_good(&cmd);
	assert_true(atomic_load(&nlu->write_cache));
	assert_int_equal(events, 2);

	/* the same again: no change, no event */
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(events, 2);

	/* wrong block length in the descriptor */
	param[10] = 0x10;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	assert_int_equal(cmd.sense[15] & 0x40, 0);     /* C/D = 0: parameter list */
	param[10] = 0x02;

	/* a non-changeable bit (RCD) */
	param[14] = 0x05;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	assert_int_equal(be16(&cmd.sense[16]), 14);
	assert_int_equal(cmd.sense[15] & 0x0f, 0x08 | 0);
	param[14] = 0x04;

	/* wrong page length, unknown page */
	param[13] = 0x10;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	param[13] = 0x12;
	param[12] = 0x19;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x26, 0x00);
	param[12] = 0x08;

	/* page runs past the parameter list */
	sel6[4] = 4 + 8 + 10;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 10;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	/* less Data-Out than PARAMETER LIST LENGTH */
	sel6[4] = 4 + 8 + 20;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 10;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	/* SP=1, PF=0 */
	sel6[1] = 0x11;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	sel6[1] = 0x00;
	cmd_init(&cmd, nlu, sel6, 6);
	cmd.data_out = param;
	cmd.data_out_len = 4 + 8 + 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	/* zero-length parameter list is fine */
	sel6[1] = 0x10;
	sel6[4] = 0;
	exec(&cmd, nlu, sel6, 6);
	assert_good(&cmd);
	assert_true(atomic_load(&nlu->write_cache));
	scsi_lu_event_hook = NULL;
}

/* ------------------------------------------------------------------------ */
/* REPORT LUNS, REPORT SUPPORTED OPERATION CODES, misc                        */
/* ------------------------------------------------------------------------ */

static void test_report_luns(void **state)
{
	uint8_t cdb[12] = { 0xa0 };
	struct scsi_cmd cmd;
	(void)state;

	wbe32(&cdb[6], 4096);
	exec(&cmd, nlu, cdb, 12);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8 + 24);
	assert_int_equal(be32(cmd.data_in), 24);
	assert_int_equal(be64(cmd.data_in + 8), 0);
	assert_int_equal(be64(cmd.data_in + 16), 1ull << 48);
	assert_int_equal(cmd.data_in[24], 0x41);              /* flat space: 300 */
	assert_int_equal(cmd.data_in[25], 300 & 0xff);
	scsi_cmd_release(&cmd);

	wbe32(&cdb[6], 20);                                   /* truncated mid-entry */
	exec(&cmd, nlu, cdb, 12);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 20);
	assert_int_equal(be32(cmd.data_in), 24);
	scsi_cmd_release(&cmd);

	wbe32(&cdb[6], 15);
	exec(&cmd, nlu, cdb, 12);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);

	wbe32(&cdb[6], 4096);
	cdb[2] = 1;                                           /* well known LUs only */
	exec(&cmd, nlu, cdb, 12);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8);
	assert_int_equal(be32(cmd.data_in), 0);
	scsi_cmd_release(&cmd);
	cdb[2] = 2;
	exec(&cmd, nlu, cdb, 12);
	assert_good(&cmd);
	assert_int_equal(be32(cmd.data_in), 24);
	scsi_cmd_release(&cmd);
	cdb[2] = 3;
	exec(&cmd, nlu, cdb, 12);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
}

static void rsoc(struct scsi_cmd *cmd, bool rctd, uint8_t opts, uint8_t op, uint16_t sa)
{
	uint8_t cdb[12] = { 0xa3, 0x0c };
	cdb[2] = (uint8_t)((rctd ? 0x80 : 0) | opts);
	cdb[3] = op;
	wbe16(&cdb[4], sa);
	wbe32(&cdb[6], 65535);
	exec(cmd, nlu, cdb, 12);
}

static void test_report_supported_opcodes(void **state)
{
	struct scsi_cmd cmd;
	uint32_t n, i;
	bool saw_read16 = false, saw_rc16 = false;
	(void)state;

	rsoc(&cmd, false, 0, 0, 0);
	assert_good(&cmd);
	n = be32(cmd.data_in);
	assert_int_equal(n % 8, 0);
	assert_int_equal(cmd.data_in_len, 4 + n);
	for (i = 0; i < n / 8; i++) {
		const uint8_t *d = cmd.data_in + 4 + 8 * i;
		assert_int_equal(d[5] & 0x02, 0);
		if (d[0] == 0x88) {
			saw_read16 = true;
			assert_int_equal(be16(d + 6), 16);
		}
		if (d[0] == 0x9e) {
			assert_int_equal(d[5] & 0x01, 1);
			assert_true(be16(d + 2) == 0x10 || be16(d + 2) == 0x12);
			saw_rc16 |= be16(d + 2) == 0x10;
		}
	}
	assert_true(saw_read16 && saw_rc16);
	scsi_cmd_release(&cmd);

	rsoc(&cmd, true, 0, 0, 0);
	assert_good(&cmd);
	n = be32(cmd.data_in);
	assert_int_equal(n % 20, 0);
	for (i = 0; i < n / 20; i++) {
		const uint8_t *d = cmd.data_in + 4 + 20 * i;
		assert_int_equal(d[5] & 0x02, 0x02);
		assert_int_equal(be16(d + 8), 0x0a);
	}
	scsi_cmd_release(&cmd);

	rsoc(&cmd, false, 1, 0x28, 0);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1] & 0x07, 0x03);
	assert_int_equal(be16(cmd.data_in + 2), 10);
	assert_int_equal(cmd.data_in[4], 0x28);
	assert_int_equal(cmd.data_in_len, 4 + 10);
	scsi_cmd_release(&cmd);

	rsoc(&cmd, true, 1, 0x12, 0);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1], 0x83);
	assert_int_equal(cmd.data_in_len, 4 + 6 + 12);
	scsi_cmd_release(&cmd);

	rsoc(&cmd, false, 1, 0x9e, 0x10);        /* has service actions */
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	rsoc(&cmd, false, 2, 0x9e, 0x10);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1] & 0x07, 0x03);
	assert_int_equal(cmd.data_in[4], 0x9e);
	scsi_cmd_release(&cmd);
	rsoc(&cmd, false, 2, 0x9e, 0x11);        /* unsupported SA */
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1] & 0x07, 0x01);
	scsi_cmd_release(&cmd);
	rsoc(&cmd, false, 2, 0x28, 0);           /* no service actions */
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	rsoc(&cmd, false, 1, 0xc7, 0);           /* unsupported opcode */
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1] & 0x07, 0x01);
	scsi_cmd_release(&cmd);
	rsoc(&cmd, false, 3, 0x28, 0x55);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1] & 0x07, 0x03);
	scsi_cmd_release(&cmd);
	rsoc(&cmd, false, 7, 0, 0);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
}

static void test_misc_commands(void **state)
{
	uint8_t ssu[6] = { 0x1b, 0x01, 0, 0, 0x01, 0 };
	uint8_t pa[6] = { 0x1e, 0, 0, 0, 0x01, 0 };
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, nlu, ssu, 6);
	assert_good(&cmd);
	ssu[4] = 0x02;                         /* LOEJ on a non-removable LU */
	exec(&cmd, nlu, ssu, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	ssu[4] = 0x12;                         /* power condition: LOEJ ignored */
	exec(&cmd, nlu, ssu, 6);
	assert_good(&cmd);

	exec(&cmd, nlu, pa, 6);
	assert_good(&cmd);
	assert_true(nlu->removal_prevented);
	pa[4] = 0;
	exec(&cmd, nlu, pa, 6);
	assert_good(&cmd);
	assert_false(nlu->removal_prevented);
}

/* Removable medium (RMB=1): START STOP UNIT ejects and loads, PREVENT ALLOW
 * MEDIUM REMOVAL is per I_T nexus (SPC-4 6.13, SBC-3 5.25). */
static void test_removable_medium(void **state)
{
	struct bstore_params np = { .block_size = 512, .size = 1 << 20 };
	struct scsi_lu_params lp = { .naa_seed = "iqn.2024-01.test:tgt/9", .removable = true };
	uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 }, tur[6] = { 0 };
	uint8_t eject[6] = { 0x1b, 0, 0, 0, 0x02, 0 }, load[6] = { 0x1b, 0x01, 0, 0, 0x03, 0 };
	uint8_t prevent[6] = { 0x1e, 0, 0, 0, 0x01, 0 }, allow[6] = { 0x1e, 0, 0, 0, 0, 0 };
	uint8_t rc10[10] = { 0x25 }, rc16[16] = { 0x9e, 0x10 }, ms6[6] = { 0x1a, 0, 0x3f, 0, 255, 0 };
	uint8_t sync10[10] = { 0x35 }, cdb[16], buf[512] = { 0 };
	struct scsi_lu *rlu;
	struct bstore *bs;
	struct scsi_cmd cmd;
	size_t len;
	(void)state;

	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	rlu = scsi_lu_create(9, bs, &lp);
	assert_non_null(rlu);
	wbe32(&rc16[10], 32);

	exec(&cmd, rlu, inq, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[1] & 0x80, 0x80);          /* RMB */
	scsi_cmd_release(&cmd);
	exec(&cmd, nlu, inq, 6);
	assert_int_equal(cmd.data_in[1] & 0x80, 0);
	scsi_cmd_release(&cmd);

	/* Power conditions and LOEJ=0 leave the medium alone. */
	eject[4] = 0x12;
	exec(&cmd, rlu, eject, 6);
	assert_good(&cmd);
	eject[4] = 0x00;
	exec(&cmd, rlu, eject, 6);
	assert_good(&cmd);
	exec(&cmd, rlu, tur, 6);
	assert_good(&cmd);

	/* Eject: every medium access is NOT READY, MEDIUM NOT PRESENT. */
	eject[4] = 0x02;
	exec(&cmd, rlu, eject, 6);
	assert_good(&cmd);
	exec(&cmd, rlu, eject, 6);                               /* again: still fine */
	assert_good(&cmd);
	exec(&cmd, rlu, tur, 6);
	assert_sense(&cmd, SK_NOT_READY, 0x3a, 0x00);
	len = rw_cdb(cdb, 0x28, 0, 1, 0);
	exec(&cmd, rlu, cdb, len);
	assert_sense(&cmd, SK_NOT_READY, 0x3a, 0x00);
	scsi_cmd_release(&cmd);
	len = rw_cdb(cdb, 0x2a, 0, 1, 0);
	cmd_init(&cmd, rlu, cdb, len);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = sizeof(buf);
	run(&cmd);
	assert_sense(&cmd, SK_NOT_READY, 0x3a, 0x00);
	exec(&cmd, rlu, rc10, 10);
	assert_sense(&cmd, SK_NOT_READY, 0x3a, 0x00);
	exec(&cmd, rlu, rc16, 16);
	assert_sense(&cmd, SK_NOT_READY, 0x3a, 0x00);
	exec(&cmd, rlu, sync10, 10);
	assert_sense(&cmd, SK_NOT_READY, 0x3a, 0x00);
	exec(&cmd, rlu, inq, 6);                                 /* no medium needed */
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	exec(&cmd, rlu, ms6, 6);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	/* A prevention locks the medium out as well as in, for every nexus. */
	exec(&cmd, rlu, prevent, 6);
	assert_good(&cmd);
	assert_true(rlu->removal_prevented);
	exec(&cmd, rlu, load, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x53, 0x02);
	cmd_init(&cmd, rlu, load, 6);
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x53, 0x02);
	cmd_init(&cmd, rlu, allow, 6);                           /* nexus 2 held none */
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_good(&cmd);
	exec(&cmd, rlu, load, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x53, 0x02);
	/* I_T nexus loss of the preventing nexus ends it. */
	scsi_lu_prevent_clear(rlu, nexus2.id);
	assert_true(rlu->removal_prevented);
	scsi_lu_prevent_clear(rlu, nexus1.id);
	assert_false(rlu->removal_prevented);
	exec(&cmd, rlu, load, 6);
	assert_good(&cmd);
	exec(&cmd, rlu, tur, 6);
	assert_good(&cmd);

	/* Two nexuses prevent; allowing on one keeps the other's; a reset
	 * (SCSI_NEXUS_ALL) ends both. */
	exec(&cmd, rlu, prevent, 6);
	assert_good(&cmd);
	exec(&cmd, rlu, prevent, 6);                             /* twice: one entry */
	assert_good(&cmd);
	cmd_init(&cmd, rlu, prevent, 6);
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_good(&cmd);
	exec(&cmd, rlu, allow, 6);
	assert_good(&cmd);
	exec(&cmd, rlu, eject, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x53, 0x02);
	exec(&cmd, rlu, tur, 6);
	assert_good(&cmd);
	scsi_lu_prevent_clear(rlu, SCSI_NEXUS_ALL);
	assert_false(rlu->removal_prevented);
	exec(&cmd, rlu, eject, 6);
	assert_good(&cmd);
	/* Freed with preventions still held: no leak under ASan. */
	exec(&cmd, rlu, prevent, 6);
	assert_good(&cmd);
	exec(&cmd, rlu, load, 6);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x53, 0x02);
	scsi_lu_put(rlu);
}

/* ------------------------------------------------------------------------ */
/* Logical block provisioning                                                */
/* ------------------------------------------------------------------------ */

static void fill_file(uint64_t lba, uint32_t n, uint8_t v)
{
	uint8_t cdb[16], *buf = malloc((size_t)n * 4096);
	struct scsi_cmd cmd;
	size_t len = rw_cdb(cdb, 0x2a, lba, n, 0);

	memset(buf, v, (size_t)n * 4096);
	cmd_init(&cmd, flu, cdb, len);
	cmd.data_out = buf;
	cmd.data_out_len = n * 4096;
	run(&cmd);
	assert_good(&cmd);
	free(buf);
}

/* Read n blocks at lba of flu; every byte must be v. */
static void expect_file(uint64_t lba, uint32_t n, uint8_t v)
{
	uint8_t cdb[16];
	struct scsi_cmd cmd;
	size_t len = rw_cdb(cdb, 0x28, lba, n, 0);

	exec(&cmd, flu, cdb, len);
	assert_good(&cmd);
	for (uint32_t i = 0; i < n * 4096; i++)
		if (cmd.data_in[i] != v)
			fail_msg("block %llu byte %u: %#x != %#x", (unsigned long long)lba + i / 4096,
				 i % 4096, cmd.data_in[i], v);
	scsi_cmd_release(&cmd);
}

static void test_not_thin(void **state)
{
	struct bstore_params np = { .block_size = 512, .size = 1 << 20, .readonly = true };
	uint8_t rc16[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 };
	uint8_t unmap[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 }, param[24] = { 0 };
	uint8_t ws[10] = { 0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0 }, blk[512] = { 0 };
	struct scsi_cmd cmd;
	struct bstore *bs;
	struct scsi_lu *lu;
	(void)state;

	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	lu = scsi_lu_create(5, bs, NULL);
	assert_non_null(lu);
	exec(&cmd, lu, rc16, 16);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[14], 0);
	scsi_cmd_release(&cmd);
	get_vpd(&cmd, lu, 0xb2);
	assert_int_equal(cmd.data_in[5], 0);
	assert_int_equal(cmd.data_in[6], 0);
	scsi_cmd_release(&cmd);
	get_vpd(&cmd, lu, 0xb0);
	assert_int_equal(be32(&cmd.data_in[20]), 0);
	assert_int_equal(be32(&cmd.data_in[24]), 0);
	scsi_cmd_release(&cmd);
	/* read-only wins over "not thin" */
	cmd_init(&cmd, lu, unmap, 10);
	cmd.data_out = param;
	cmd.data_out_len = 24;
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	cmd_init(&cmd, lu, ws, 10);
	cmd.data_out = blk;
	cmd.data_out_len = 512;
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	scsi_lu_put(lu);

	/* a writable LU whose store cannot discard */
	np.readonly = false;
	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	bs->can_discard = false;
	lu = scsi_lu_create(6, bs, NULL);
	assert_non_null(lu);
	get_vpd(&cmd, lu, 0xb2);
	assert_int_equal(cmd.data_in[5], 0);
	scsi_cmd_release(&cmd);
	cmd_init(&cmd, lu, unmap, 10);
	cmd.data_out = param;
	cmd.data_out_len = 24;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x20, 0x00);
	cmd_init(&cmd, lu, ws, 10);
	cmd.data_out = blk;
	cmd.data_out_len = 512;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	ws[1] = 0;                              /* plain WRITE SAME still works */
	cmd_init(&cmd, lu, ws, 10);
	cmd.data_out = blk;
	cmd.data_out_len = 512;
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	scsi_lu_put(lu);
}

static void test_unmap(void **state)
{
	uint8_t cdb[10] = { 0x42 }, param[8 + 16 * 3];
	struct scsi_cmd cmd;
	(void)state;

	fill_file(200, 16, 0x77);
	memset(param, 0, sizeof(param));
	wbe16(&param[0], 6 + 16 * 3);
	wbe16(&param[2], 16 * 3);
	wbe64(&param[8], 201);  wbe32(&param[16], 2);
	wbe64(&param[24], 210); wbe32(&param[32], 0);      /* empty: skipped */
	wbe64(&param[40], 214); wbe32(&param[48], 1);
	wbe16(&cdb[7], sizeof(param));
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = sizeof(param);
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, sizeof(param));
	assert_true(cmd.xfer_is_write);
	expect_file(200, 1, 0x77);
	expect_file(201, 2, 0x00);
	expect_file(203, 11, 0x77);
	expect_file(214, 1, 0x00);
	expect_file(215, 1, 0x77);

	/* a descriptor out of range: nothing is unmapped */
	fill_file(201, 2, 0x66);
	wbe64(&param[40], FILE_BLOCKS - 1); wbe32(&param[48], 2);
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = sizeof(param);
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	expect_file(201, 2, 0x66);

	/* zero-length parameter list, short list, short Data-Out, ANCHOR */
	cdb[7] = cdb[8] = 0;
	exec(&cmd, flu, cdb, 10);
	assert_good(&cmd);
	cdb[8] = 6;
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = 6;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	wbe16(&cdb[7], sizeof(param));
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = 20;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	wbe16(&param[2], 16 * 4);                           /* BDDL beyond the list */
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = sizeof(param);
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x1a, 0x00);
	cdb[1] = 1;
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = sizeof(param);
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);

	/* read-only LU */
	cdb[1] = 0;
	wbe16(&param[2], 16);
	wbe64(&param[8], 0);
	cmd_init(&cmd, rolu, cdb, 10);
	cmd.data_out = param;
	cmd.data_out_len = sizeof(param);
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
}

static void test_write_same(void **state)
{
	uint8_t cdb[16], blk[4096];
	struct scsi_cmd cmd;
	(void)state;

	/* pattern, WRITE SAME(10), crossing the 1 MiB chunking */
	memset(blk, 0x3c, sizeof(blk));
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x41;
	wbe32(&cdb[2], 300);
	wbe16(&cdb[7], 300);
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 4096);
	scsi_cmd_release(&cmd);
	expect_file(300, 300, 0x3c);
	expect_file(600, 1, 0x00);

	/* zeros: WRITE SAME(16) */
	memset(blk, 0, sizeof(blk));
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x93;
	wbe64(&cdb[2], 310);
	wbe32(&cdb[10], 5);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	expect_file(309, 1, 0x3c);
	expect_file(310, 5, 0x00);
	expect_file(315, 1, 0x3c);

	/* UNMAP=1 with a non-zero block: unmapped, reads as zeros (LBPRZ) */
	memset(blk, 0xff, sizeof(blk));
	cdb[1] = 0x08;
	wbe64(&cdb[2], 320);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	expect_file(320, 5, 0x00);
	expect_file(325, 1, 0x3c);

	/* NDOB: no Data-Out at all */
	cdb[1] = 0x01;
	wbe64(&cdb[2], 330);
	cmd_init(&cmd, flu, cdb, 16);
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.xfer_len, 0);
	expect_file(330, 5, 0x00);

	/* WCE=0: zeroing is followed by a flush */
	atomic_store(&flu->write_cache, false);
	cdb[1] = 0x01;
	cmd_init(&cmd, flu, cdb, 16);
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.bio.opcode, BIO_FLUSH);
	atomic_store(&flu->write_cache, true);

	/* WSNZ=0: 0 blocks means up to the last LBA (SBC-3 5.42) */
	cdb[1] = 0;
	wbe64(&cdb[2], FILE_BLOCKS - 24);
	wbe32(&cdb[10], 0);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	expect_file(FILE_BLOCKS - 24, 24, 0xff);
	wbe64(&cdb[2], FILE_BLOCKS);            /* ... but from a valid LBA */
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	wbe64(&cdb[2], 0);                      /* ... and within MAXIMUM WRITE SAME LENGTH */
	cmd_init(&cmd, nlu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 512;
	run(&cmd);
	assert_good(&cmd);                      /* 2048 blocks: fine */
	scsi_cmd_release(&cmd);
	wbe64(&cdb[2], 330);

	/* invalid: wrong Data-Out size, ANCHOR, WRPROTECT, range */
	wbe32(&cdb[10], 1);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 2048;
	run(&cmd);
	assert_int_equal(cmd.status, SAM_STAT_CHECK_CONDITION);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 8192;
	run(&cmd);
	assert_int_equal(cmd.status, SAM_STAT_CHECK_CONDITION);
	cdb[1] = 0x10;
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	cdb[1] = 0x20;
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	cdb[1] = 0;
	wbe64(&cdb[2], FILE_BLOCKS);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	cmd_init(&cmd, rolu, cdb, 16);
	cmd.data_out = blk;
	cmd.data_out_len = 512;
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
}


/* ------------------------------------------------------------------------ */
/* Issue 3: atomic commands, provisioning, ALUA                              */
/* ------------------------------------------------------------------------ */

static void caw_cdb(uint8_t *cdb, uint64_t lba, uint8_t n, uint8_t b1)
{
	memset(cdb, 0, 16);
	cdb[0] = 0x89;
	cdb[1] = b1;
	wbe64(&cdb[2], lba);
	cdb[13] = n;
}

static void test_compare_and_write(void **state)
{
	uint8_t cdb[16], *buf = malloc(2 * 2 * 4096);
	struct scsi_cmd cmd;
	(void)state;

	assert_non_null(buf);
	fill_file(10, 2, 'A');

	/* match: the write half lands */
	memset(buf, 'A', 4096);
	memset(buf + 4096, 'B', 4096);
	caw_cdb(cdb, 10, 1, 0x08);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 2 * 4096;
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	assert_int_equal(cmd.xfer_len, 2 * 4096);
	assert_true(cmd.xfer_is_write);
	scsi_cmd_release(&cmd);
	expect_file(10, 1, 'B');
	expect_file(11, 1, 'A');

	/* miscompare: INFORMATION = offset of the first differing byte, medium unchanged */
	memset(buf, 'B', 4096);
	memset(buf + 4096, 'A', 4096);
	memset(buf + 4096 + 4096, 'C', 2 * 4096);
	memcpy(buf + 4096, buf, 0);
	{
		uint8_t *two = malloc(4 * 4096);
		assert_non_null(two);
		memset(two, 'B', 4096);
		memset(two + 4096, 'A', 4096);
		two[4096 + 777] = 'X';
		memset(two + 2 * 4096, 'Z', 2 * 4096);
		caw_cdb(cdb, 10, 2, 0);
		cmd_init(&cmd, flu, cdb, 16);
		cmd.data_out = two;
		cmd.data_out_len = cmd.expected_len = 4 * 4096;
		run(&cmd);
		assert_sense(&cmd, SK_MISCOMPARE, 0x1d, 0x00);
		assert_int_equal(cmd.sense[0] & 0x80, 0x80);     /* VALID */
		assert_int_equal(be32(&cmd.sense[3]), 4096 + 777);
		scsi_cmd_release(&cmd);
		free(two);
	}
	expect_file(10, 1, 'B');
	expect_file(11, 1, 'A');

	/* 0 blocks, no data: nothing happens */
	caw_cdb(cdb, 10, 0, 0);
	cmd_init(&cmd, flu, cdb, 16);
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	/* 0 blocks with data (a 256-block request wrapped): invalid */
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 2 * 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	/* Data-Out not 2 x blocks */
	caw_cdb(cdb, 10, 1, 0);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 4 * 4096;
	run(&cmd);
	assert_int_equal(cmd.status, SAM_STAT_CHECK_CONDITION);
	scsi_cmd_release(&cmd);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 4096;
	run(&cmd);
	assert_int_equal(cmd.status, SAM_STAT_CHECK_CONDITION);
	scsi_cmd_release(&cmd);
	expect_file(10, 1, 'B');
	/* beyond the end, WRPROTECT, read-only */
	caw_cdb(cdb, FILE_BLOCKS - 1, 2, 0);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 4 * 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	scsi_cmd_release(&cmd);
	caw_cdb(cdb, 10, 1, 0x20);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 2 * 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	caw_cdb(cdb, 0, 1, 0);
	cmd_init(&cmd, rolu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 2 * 512;
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	scsi_cmd_release(&cmd);
	free(buf);
}

static void test_orwrite_and_atomic(void **state)
{
	uint8_t cdb[16], buf[3 * 4096];
	struct scsi_cmd cmd;
	(void)state;

	fill_file(20, 3, 0x00);
	memset(buf, 0xa5, sizeof(buf));
	rw_cdb(cdb, 0x8b, 20, 3, 0);            /* ORWRITE(16) */
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = sizeof(buf);
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	expect_file(20, 3, 0xa5);
	memset(buf, 0x5a, sizeof(buf));
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = sizeof(buf);
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	expect_file(20, 3, 0xff);
	rw_cdb(cdb, 0x8b, FILE_BLOCKS - 1, 3, 0);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = sizeof(buf);
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	scsi_cmd_release(&cmd);
	rw_cdb(cdb, 0x8b, 20, 0, 0);
	cmd_init(&cmd, flu, cdb, 16);
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	/* WRITE ATOMIC(16): TRANSFER LENGTH in bytes 12-13 */
	memset(cdb, 0, 16);
	cdb[0] = 0x9c;
	wbe64(&cdb[2], 20);
	wbe16(&cdb[12], 2);
	memset(buf, 0x11, sizeof(buf));
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = 2 * 4096;
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	expect_file(20, 2, 0x11);
	expect_file(22, 1, 0xff);
	wbe16(&cdb[12], (1u << 20) / 4096 + 1);    /* > MAXIMUM ATOMIC TRANSFER LENGTH */
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = 2 * 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	wbe16(&cdb[12], 0);
	cmd_init(&cmd, flu, cdb, 16);
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	wbe64(&cdb[2], FILE_BLOCKS);
	wbe16(&cdb[12], 1);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	scsi_cmd_release(&cmd);
	wbe64(&cdb[2], 0);
	cmd_init(&cmd, rolu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = 512;
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	scsi_cmd_release(&cmd);
}

static void test_prefetch_defects(void **state)
{
	uint8_t p10[10] = { 0x34, 0x02, 0, 0, 0, 5, 0, 0, 8, 0 };
	uint8_t p16[16] = { 0x90, 0 };
	uint8_t rdd10[10] = { 0x37, 0, 0x18 | 0x04, 0, 0, 0, 0, 0, 32, 0 };
	uint8_t rdd12[12] = { 0xb7, 0x08 | 0x05, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, flu, p10, 10);
	assert_int_equal(cmd.status, SAM_STAT_GOOD);
	wbe64(&p16[2], FILE_BLOCKS - 1);
	wbe32(&p16[10], 2);
	exec(&cmd, flu, p16, 16);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);
	wbe32(&p16[10], 1);
	exec(&cmd, flu, p16, 16);
	assert_good(&cmd);

	exec(&cmd, flu, rdd10, 10);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 4);
	assert_int_equal(cmd.data_in[1], 0x1c);
	assert_int_equal(be16(&cmd.data_in[2]), 0);
	scsi_cmd_release(&cmd);
	exec(&cmd, flu, rdd12, 12);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8);
	assert_int_equal(cmd.data_in[1], 0x0d);
	assert_int_equal(be32(&cmd.data_in[4]), 0);
	scsi_cmd_release(&cmd);
}

static void get_lba_status(struct scsi_cmd *cmd, struct scsi_lu *lu, uint64_t lba, uint32_t alloc)
{
	uint8_t cdb[16] = { 0x9e, 0x12 };
	wbe64(&cdb[2], lba);
	wbe32(&cdb[10], alloc);
	exec(cmd, lu, cdb, 16);
}

static void test_get_lba_status(void **state)
{
	uint8_t unmap[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 }, param[24] = { 0 };
	struct scsi_cmd cmd;
	struct scsi_lu *lu;
	struct bstore *bs;
	struct bstore_params np = { .block_size = 512, .size = 1 << 20 };
	(void)state;

	fill_file(40, 10, 0x77);
	wbe16(&param[0], 22);
	wbe16(&param[2], 16);
	wbe64(&param[8], 42);
	wbe32(&param[16], 3);
	cmd_init(&cmd, flu, unmap, 10);
	cmd.data_out = param;
	cmd.data_out_len = 24;
	run(&cmd);
	assert_good(&cmd);

	get_lba_status(&cmd, flu, 40, 4096);
	assert_good(&cmd);
	assert_true(cmd.data_in_len >= 8 + 3 * 16);
	assert_int_equal(be32(cmd.data_in), cmd.data_in_len - 4);
	assert_int_equal(be64(&cmd.data_in[8]), 40);
	assert_int_equal(be32(&cmd.data_in[16]), 2);
	assert_int_equal(cmd.data_in[20] & 0x0f, 0);            /* mapped */
	assert_int_equal(be64(&cmd.data_in[24]), 42);
	assert_int_equal(be32(&cmd.data_in[32]), 3);
	assert_int_equal(cmd.data_in[36] & 0x0f, 1);            /* deallocated */
	assert_int_equal(be64(&cmd.data_in[40]), 45);
	assert_true(be32(&cmd.data_in[48]) >= 5);
	assert_int_equal(cmd.data_in[52] & 0x0f, 0);
	scsi_cmd_release(&cmd);
	/* the first descriptor starts at the requested LBA, even mid-extent */
	get_lba_status(&cmd, flu, 43, 24);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 24);
	assert_int_equal(be64(&cmd.data_in[8]), 43);
	assert_int_equal(be32(&cmd.data_in[16]), 2);
	assert_int_equal(cmd.data_in[20] & 0x0f, 1);
	scsi_cmd_release(&cmd);
	get_lba_status(&cmd, flu, FILE_BLOCKS - 1, 24);
	assert_good(&cmd);
	assert_int_equal(be64(&cmd.data_in[8]), FILE_BLOCKS - 1);
	assert_int_equal(be32(&cmd.data_in[16]), 1);
	scsi_cmd_release(&cmd);
	get_lba_status(&cmd, flu, FILE_BLOCKS, 24);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x21, 0x00);

	/* null store: mapped throughout */
	get_lba_status(&cmd, nlu, 7, 24);
	assert_good(&cmd);
	assert_int_equal(be64(&cmd.data_in[8]), 7);
	assert_int_equal(be32(&cmd.data_in[16]), NULL_BLOCKS - 7);
	assert_int_equal(cmd.data_in[20], 0);
	scsi_cmd_release(&cmd);

	/* a fully provisioned LU: mapped, RC16 without LBPME, LBP page type 0 */
	assert_int_equal(bstore_open("null", NULL, &np, &bs), 0);
	lu = scsi_lu_create(9, bs, NULL);
	assert_non_null(lu);
	assert_false(lu->thin);
	get_lba_status(&cmd, lu, 0, 24);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[20], 0);
	scsi_cmd_release(&cmd);
	scsi_lu_put(lu);
}

static void test_software_write_protect(void **state)
{
	uint8_t ms[6] = { 0x1a, 0x08, 0x0a, 0, 255, 0 }, msel[6] = { 0x15, 0x10, 0, 0, 16, 0 };
	uint8_t page[16], cdb[16], blk[4096] = { 0 };
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, flu, ms, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[2] & 0x80, 0);
	memset(page, 0, sizeof(page));
	memcpy(page + 4, cmd.data_in + 4, 12);
	scsi_cmd_release(&cmd);
	ms[2] = 0x4a;                           /* changeable values: SWP */
	exec(&cmd, flu, ms, 6);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[4 + 4], 0x08);
	scsi_cmd_release(&cmd);
	ms[2] = 0x0a;

	page[4 + 4] |= 0x08;
	cmd_init(&cmd, flu, msel, 6);
	cmd.data_out = page;
	cmd.data_out_len = 16;
	run(&cmd);
	assert_good(&cmd);
	exec(&cmd, flu, ms, 6);
	assert_int_equal(cmd.data_in[2] & 0x80, 0x80);          /* WP */
	assert_int_equal(cmd.data_in[4 + 4] & 0x08, 0x08);
	scsi_cmd_release(&cmd);
	rw_cdb(cdb, 0x2a, 0, 1, 0);
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_sense(&cmd, SK_DATA_PROTECT, 0x27, 0x00);
	rw_cdb(cdb, 0x28, 0, 1, 0);
	exec(&cmd, flu, cdb, 10);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	page[4 + 4] &= (uint8_t)~0x08;
	cmd_init(&cmd, flu, msel, 6);
	cmd.data_out = page;
	cmd.data_out_len = 16;
	run(&cmd);
	assert_good(&cmd);
	rw_cdb(cdb, 0x2a, 0, 1, 0);
	cmd_init(&cmd, flu, cdb, 10);
	cmd.data_out = blk;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);
	/* the other nexus is told: MODE PARAMETERS CHANGED goes through the hook */
}

static int tpg_hook(const struct scsi_cmd *cmd, uint16_t *ids, int max)
{
	(void)cmd;
	if (max >= 2) {
		ids[0] = 1;
		ids[1] = 2;
	}
	return 2;
}

/* Find a designator in VPD page 0x83 by (PIV/ASSOC/TYPE byte); NULL if absent. */
static const uint8_t *find_desig(const uint8_t *page, uint32_t len, uint8_t b1)
{
	uint32_t off = 4;
	while (off + 4 <= len) {
		if (page[off + 1] == b1)
			return page + off;
		off += 4 + page[off + 3];
	}
	return NULL;
}

static void test_alua_multipath(void **state)
{
	struct scsi_nexus n2 = { .id = 7, .initiator_port = "iqn.z,i,0x7", .target_port_id = 2,
				 .target_port = "iqn.2024-01.test:tgt,t,0x0002" };
	uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 }, vpd[6] = { 0x12, 1, 0x83, 0x01, 0, 0 };
	uint8_t rtpg[12] = { 0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	const uint8_t *d;
	uint8_t naa_path1[16];
	struct scsi_cmd cmd;
	(void)state;

	exec(&cmd, flu, inq, 6);
	assert_int_equal(cmd.data_in[5] & 0x30, 0x10);          /* TPGS implicit */
	assert_int_equal(cmd.data_in[5] & 0x08, 0x08);          /* 3PC */
	scsi_cmd_release(&cmd);

	exec(&cmd, flu, vpd, 6);
	memcpy(naa_path1, &cmd.data_in[8], 16);
	scsi_cmd_release(&cmd);

	cmd_init(&cmd, flu, vpd, 6);
	cmd.nexus = &n2;
	run(&cmd);
	assert_good(&cmd);
	assert_memory_equal(&cmd.data_in[8], naa_path1, 16);    /* same LU on every path */
	d = find_desig(cmd.data_in, cmd.data_in_len, 0x94);     /* relative target port */
	assert_non_null(d);
	assert_int_equal(be16(d + 6), 2);
	d = find_desig(cmd.data_in, cmd.data_in_len, 0x95);     /* target port group */
	assert_non_null(d);
	assert_int_equal(be16(d + 6), 2);
	d = find_desig(cmd.data_in, cmd.data_in_len, 0x98);     /* SCSI name, target port */
	assert_non_null(d);
	assert_int_equal(d[0], 0x53);
	assert_int_equal(d[3] % 4, 0);
	assert_string_equal((const char *)d + 4, "iqn.2024-01.test:tgt,t,0x0002");
	d = find_desig(cmd.data_in, cmd.data_in_len, 0xa8);     /* SCSI name, target device */
	assert_non_null(d);
	assert_string_equal((const char *)d + 4, "iqn.2024-01.test:tgt");
	scsi_cmd_release(&cmd);

	/* REPORT TARGET PORT GROUPS: own group only without the hook */
	cmd_init(&cmd, flu, rtpg, 12);
	cmd.nexus = &n2;
	run(&cmd);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 16);
	assert_int_equal(be32(cmd.data_in), 12);
	assert_int_equal(cmd.data_in[4] & 0x0f, 0);             /* active/optimized */
	assert_int_equal(be16(&cmd.data_in[6]), 2);
	assert_int_equal(cmd.data_in[11], 1);
	assert_int_equal(be16(&cmd.data_in[14]), 2);
	scsi_cmd_release(&cmd);
	scsi_tpg_list_hook = tpg_hook;
	rtpg[1] = 0x2a;                                         /* extended header */
	exec(&cmd, flu, rtpg, 12);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8 + 24);
	assert_int_equal(be32(cmd.data_in), 4 + 24);
	assert_int_equal(cmd.data_in[4], 0x10);
	assert_int_equal(be16(&cmd.data_in[8 + 2]), 1);
	assert_int_equal(be16(&cmd.data_in[8 + 12 + 2]), 2);
	assert_int_equal(be16(&cmd.data_in[8 + 12 + 10]), 2);
	scsi_cmd_release(&cmd);
	rtpg[1] = 0x4a;                                         /* format 010b: reserved */
	exec(&cmd, flu, rtpg, 12);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_tpg_list_hook = NULL;

	/* Third-party Copy VPD page: descriptors add up to the page length */
	get_vpd(&cmd, flu, 0x8f);
	{
		uint32_t off = 4, len = cmd.data_in_len;
		int seen = 0;
		while (off < len) {
			assert_true(off + 4 <= len);
			assert_int_equal(be16(&cmd.data_in[off + 2]) % 4, 0);
			off += 4 + be16(&cmd.data_in[off + 2]);
			seen++;
		}
		assert_int_equal(off, len);
		assert_true(seen >= 3);
	}
	scsi_cmd_release(&cmd);

	/* scsi_lu_lookup_naa finds live LUs only */
	{
		struct scsi_lu *lu = scsi_lu_lookup_naa(flu->naa);
		uint8_t bogus[16] = { 0x60 };
		assert_ptr_equal(lu, flu);
		scsi_lu_put(lu);
		assert_null(scsi_lu_lookup_naa(bogus));
	}
}

/* --- range lock ----------------------------------------------------------- */

static int resumed;
static void count_resume(struct scsi_cmd *cmd)
{
	(void)cmd;
	resumed++;
}

/* Run RL (a reactor of its own) for a short while.  The loop is left by
 * setting `stopping` from a completion on its own thread: reactor_stop()
 * would also kick the wakeup eventfd, and a wakeup seen while stopping is
 * not re-armed - later reactor_post()s to that reactor would be lost. */
static struct reactor RL;
static struct rs_op stop_op;
static struct __kernel_timespec stop_ts = { 0, 20 * 1000 * 1000 };
static void stop_fn(struct rs_op *op, int res, uint32_t flags)
{
	(void)op;
	(void)res;
	(void)flags;
	RL.stopping = true;
}

static void run_until_resumed(int n)
{
	int rounds = 0;

	while (resumed < n && rounds++ < 100) {
		struct io_uring_sqe *sqe;

		stop_op.fn = stop_fn;
		sqe = reactor_sqe_op(&RL, &stop_op);
		io_uring_prep_timeout(sqe, &stop_ts, 0, 0);
		RL.stopping = false;
		reactor_run(&RL);
	}
}

static void test_range_lock(void **state)
{
	struct scsi_cmd a, b, c, d;
	(void)state;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	assert_int_equal(reactor_init(&RL, 5, 64), 0);
	a.r = b.r = c.r = d.r = &RL;
	resumed = 0;
	assert_true(scsi_rl_acquire(&a, flu, 0, 8, SCSI_RL_EXCL, count_resume));
	assert_false(scsi_rl_acquire(&b, flu, 4, 8, SCSI_RL_WRITE, count_resume));
	assert_true(scsi_rl_acquire(&c, flu, 20, 4, SCSI_RL_READ, count_resume));
	/* READ overlapping only the queued WRITE: shares with it, granted */
	assert_true(scsi_rl_acquire(&d, flu, 9, 2, 1, count_resume));
	scsi_rl_release(&d);
	/* a READ that overlaps the EXCL waits */
	assert_false(scsi_rl_acquire(&d, flu, 7, 1, 1, count_resume));
	scsi_rl_release(&c);
	assert_int_equal(resumed, 0);
	scsi_rl_release(&a);
	/* both waiters granted, resumed through reactor_post */
	assert_true(b.rl.held);
	assert_true(d.rl.held);
	run_until_resumed(2);
	assert_int_equal(resumed, 2);
	/* EXCL behind a granted WRITE waits; FIFO: a later WRITE queues behind it */
	assert_false(scsi_rl_acquire(&a, flu, 0, 100, 3, count_resume));
	assert_false(scsi_rl_acquire(&c, flu, 50, 1, 2, count_resume));
	scsi_rl_release(&b);
	scsi_rl_release(&d);
	assert_true(a.rl.held);
	assert_false(c.rl.held);
	scsi_rl_release(&a);
	assert_true(c.rl.held);
	scsi_rl_release(&c);
	run_until_resumed(4);
	assert_int_equal(resumed, 4);
	assert_null(flu->rl.active);
	assert_null(flu->rl.wait_head);
	reactor_fini(&RL);
}

/* --- concurrency: several reactors -------------------------------------- */

struct worker {
	pthread_t th;
	struct reactor r;
	struct scsi_nexus nexus;
	int id, iters;
	atomic_bool done_flag;
	int errors, miscompares, increments;
	struct scsi_cmd cmd;
	bool go_write;                  /* single WRITE job (blocked-by-CAW test) */
	uint8_t buf[2 * 4096];
};

static void w_done(struct scsi_cmd *cmd)
{
	struct worker *w = container_of(cmd, struct worker, cmd);
	atomic_store(&w->done_flag, true);
	/* Not reactor_stop(): see run_until_resumed(). */
	if (reactor_current() == &w->r)
		w->r.stopping = true;
}

static void w_exec(struct worker *w)
{
	atomic_store(&w->done_flag, false);
	w->cmd.r = &w->r;
	w->cmd.done = w_done;
	w->cmd.nexus = &w->nexus;
	w->cmd.lu = flu;
	w->cmd.lun = 1;
	scsi_cmd_execute(&w->cmd);
	while (!atomic_load(&w->done_flag)) {
		w->r.stopping = false;
		reactor_run(&w->r);
	}
}

/* Each worker increments the 64-bit counter at the start of block 0 with
 * READ + COMPARE AND WRITE, retrying on MISCOMPARE.  Lost updates would show
 * as a final count below the number of successful COMPARE AND WRITEs. */
static void *caw_worker(void *arg)
{
	struct worker *w = arg;
	int i;

	if (reactor_init(&w->r, w->id, 64) < 0) {
		w->errors++;
		return NULL;
	}
	for (i = 0; i < w->iters;) {
		uint8_t cdb[16];
		uint64_t v;

		memset(&w->cmd, 0, sizeof(w->cmd));
		w->cmd.cdb_len = (uint8_t)rw_cdb(w->cmd.cdb, 0x88, 0, 1, 0);
		w_exec(w);
		if (w->cmd.status != SAM_STAT_GOOD) {
			w->errors++;
			break;
		}
		memcpy(w->buf, w->cmd.data_in, 4096);
		scsi_cmd_release(&w->cmd);
		memcpy(&v, w->buf, 8);
		memcpy(w->buf + 4096, w->buf, 4096);
		v++;
		memcpy(w->buf + 4096, &v, 8);

		memset(&w->cmd, 0, sizeof(w->cmd));
		caw_cdb(cdb, 0, 1, 0);
		memcpy(w->cmd.cdb, cdb, 16);
		w->cmd.cdb_len = 16;
		w->cmd.data_out = w->buf;
		w->cmd.data_out_len = w->cmd.expected_len = 2 * 4096;
		w_exec(w);
		if (w->cmd.status == SAM_STAT_GOOD) {
			w->increments++;
			i++;
		} else if (w->cmd.status == SAM_STAT_CHECK_CONDITION &&
			   (w->cmd.sense[2] & 0x0f) == SK_MISCOMPARE) {
			w->miscompares++;
		} else {
			w->errors++;
			scsi_cmd_release(&w->cmd);
			break;
		}
		scsi_cmd_release(&w->cmd);

		/* Plain writes to the neighbouring blocks, overlapping a
		 * 2-block claim, keep the lock's shared path busy. */
		memset(&w->cmd, 0, sizeof(w->cmd));
		w->cmd.cdb_len = (uint8_t)rw_cdb(w->cmd.cdb, 0x8a, 1 + (uint64_t)w->id, 1, 0);
		memset(w->buf, w->id, 4096);
		w->cmd.data_out = w->buf;
		w->cmd.data_out_len = 4096;
		w_exec(w);
		if (w->cmd.status != SAM_STAT_GOOD)
			w->errors++;
		scsi_cmd_release(&w->cmd);
	}
	reactor_fini(&w->r);
	return NULL;
}

static void test_caw_concurrent(void **state)
{
	enum { NW = 4, ITERS = 150 };
	static struct worker w[NW];
	uint8_t zero[4096] = { 0 };
	struct scsi_cmd cmd;
	uint64_t v;
	int i, total = 0, mis = 0;
	uint8_t cdb[16];
	(void)state;

	rw_cdb(cdb, 0x8a, 0, 1, 0);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = zero;
	cmd.data_out_len = 4096;
	run(&cmd);
	assert_good(&cmd);

	for (i = 0; i < NW; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = i + 1;
		w[i].iters = ITERS;
		w[i].nexus.id = 100 + (uint64_t)i;
		w[i].nexus.target_port_id = 1;
		assert_int_equal(pthread_create(&w[i].th, NULL, caw_worker, &w[i]), 0);
	}
	for (i = 0; i < NW; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].errors, 0);
		total += w[i].increments;
		mis += w[i].miscompares;
	}
	assert_int_equal(total, NW * ITERS);
	rw_cdb(cdb, 0x88, 0, 1, 0);
	exec(&cmd, flu, cdb, 16);
	assert_good(&cmd);
	memcpy(&v, cmd.data_in, 8);
	scsi_cmd_release(&cmd);
	assert_int_equal(v, (uint64_t)NW * ITERS);
	print_message("caw_concurrent: %d increments, %d miscompares retried\n", total, mis);
	assert_null(flu->rl.active);
}

static void *write_worker(void *arg)
{
	struct worker *w = arg;

	memset(&w->cmd, 0, sizeof(w->cmd));
	w->cmd.cdb_len = (uint8_t)rw_cdb(w->cmd.cdb, 0x8a, 0, 1, 0);
	memset(w->buf, 'W', 4096);
	w->cmd.data_out = w->buf;
	w->cmd.data_out_len = 4096;
	w_exec(w);
	if (w->cmd.status != SAM_STAT_GOOD)
		w->errors++;
	scsi_cmd_release(&w->cmd);
	return NULL;
}

/* A WRITE from another reactor that overlaps an in-flight COMPARE AND WRITE
 * waits for it: it lands after the CAW's write, never between its read and
 * its write. */
static void test_write_waits_for_caw(void **state)
{
	static struct worker w;
	uint8_t cdb[16], *buf = malloc(2 * 4096);
	struct scsi_cmd cmd;
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	(void)state;

	assert_non_null(buf);
	fill_file(0, 1, 'A');
	memset(buf, 'A', 4096);
	memset(buf + 4096, 'C', 4096);
	caw_cdb(cdb, 0, 1, 0);
	cmd_init(&cmd, flu, cdb, 16);
	cmd.data_out = buf;
	cmd.data_out_len = cmd.expected_len = 2 * 4096;
	cmd.r = &R;
	cmd.done = on_done;
	cmd.nexus = &nexus1;
	done_calls = 0;
	scsi_cmd_execute(&cmd);                 /* claims block 0, read queued on R */
	assert_int_equal(done_calls, 0);
	assert_true(cmd.rl.held);

	memset(&w, 0, sizeof(w));
	w.id = 9;
	w.nexus.id = 99;
	assert_int_equal(reactor_init(&w.r, 9, 64), 0);
	assert_int_equal(pthread_create(&w.th, NULL, write_worker, &w), 0);
	nanosleep(&ts, NULL);
	assert_false(atomic_load(&w.done_flag));        /* blocked behind the CAW */
	assert_non_null(flu->rl.wait_head);

	R.stopping = false;
	reactor_run(&R);                        /* the CAW completes, the WRITE resumes */
	assert_int_equal(done_calls, 1);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	pthread_join(w.th, NULL);
	assert_int_equal(w.errors, 0);
	reactor_fini(&w.r);
	expect_file(0, 1, 'W');
	free(buf);
}

/* The dispatcher routes reservations to scsi_pr.c and enforces them. */
static void test_reservation_dispatch(void **state)
{
	uint8_t res6[6] = { 0x16 }, rel6[6] = { 0x17 }, cdb[16];
	uint8_t prin[10] = { 0x5e, 0x02, 0, 0, 0, 0, 0, 0, 8, 0 };
	struct scsi_cmd cmd;
	size_t len;
	(void)state;

	exec(&cmd, nlu, res6, 6);                     /* nexus 1 reserves */
	assert_good(&cmd);
	len = rw_cdb(cdb, 0x28, 0, 1, 0);
	cmd_init(&cmd, nlu, cdb, len);
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_int_equal(cmd.status, SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(cmd.sense_len, 0);
	scsi_cmd_release(&cmd);
	exec(&cmd, nlu, cdb, len);                    /* the holder may read */
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	exec(&cmd, nlu, rel6, 6);
	assert_good(&cmd);
	cmd_init(&cmd, nlu, cdb, len);
	cmd.nexus = &nexus2;
	run(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	/* PERSISTENT RESERVE IN, REPORT CAPABILITIES */
	exec(&cmd, nlu, prin, 10);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 8);
	assert_int_equal(be16(cmd.data_in), 8);
	scsi_cmd_release(&cmd);
	/* service action out of range */
	prin[1] = 0x09;
	exec(&cmd, nlu, prin, 10);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x24, 0x00);
	scsi_cmd_release(&cmd);
}

static void test_refresh_capacity(void **state)
{
	char path[128];
	struct scsi_cmd cmd;
	uint8_t rc10[10] = { 0x25 };
	(void)state;

	assert_int_equal(scsi_lu_refresh_capacity(flu), 0);
	snprintf(path, sizeof(path), "%s/lu.img", tmpdir);
	assert_int_equal(truncate(path, 8 << 20), 0);
	assert_int_equal(scsi_lu_refresh_capacity(flu), 1);
	exec(&cmd, flu, rc10, 10);
	assert_good(&cmd);
	assert_int_equal(be32(cmd.data_in), 2 * FILE_BLOCKS - 1);
	scsi_cmd_release(&cmd);
	scsi_cmd_release(&cmd);    /* safe twice */
	assert_int_equal(truncate(path, 4 << 20), 0);
	assert_int_equal(scsi_lu_refresh_capacity(flu), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sense_build),
		cmocka_unit_test(test_errno_sense),
		cmocka_unit_test(test_tur_and_unknown_opcode),
		cmocka_unit_test(test_no_lu),
		cmocka_unit_test(test_unit_attention),
		cmocka_unit_test(test_inquiry_standard),
		cmocka_unit_test(test_inquiry_vpd),
		cmocka_unit_test(test_read_capacity),
		cmocka_unit_test(test_rw_decode),
		cmocka_unit_test(test_range_checks),
		cmocka_unit_test(test_file_write_read),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_mode_select_roundtrip),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_report_supported_opcodes),
		cmocka_unit_test(test_misc_commands),
		cmocka_unit_test(test_removable_medium),
		cmocka_unit_test(test_not_thin),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_write_same),
		cmocka_unit_test(test_compare_and_write),
		cmocka_unit_test(test_orwrite_and_atomic),
		cmocka_unit_test(test_prefetch_defects),
		cmocka_unit_test(test_get_lba_status),
		cmocka_unit_test(test_software_write_protect),
		cmocka_unit_test(test_alua_multipath),
		cmocka_unit_test(test_range_lock),
		cmocka_unit_test(test_caw_concurrent),
		cmocka_unit_test(test_write_waits_for_caw),
		cmocka_unit_test(test_reservation_dispatch),
		cmocka_unit_test(test_refresh_capacity),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
