/* test_scsi_xcopy.c - EXTENDED COPY (LID1) / RECEIVE COPY RESULTS: parameter
 * list validation, operating parameters, held copy status, and real copies
 * between null and file stores through a real reactor. */
#include <errno.h>
#include <fcntl.h>
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
#include "target/scsi_pr.h"
#include "target/scsi_internal.h"
#include "target/scsi_xcopy.h"

static struct reactor R;
static char tmpdir[64];
static char fpath_a[128], fpath_b[128];
static struct scsi_lu *fa;     /* file, 4096-byte blocks, 8 MiB */
static struct scsi_lu *fb;     /* file, 512-byte blocks, 4 MiB */
static struct scsi_lu *nl;     /* null, 512-byte blocks, 1 MiB */
static struct scsi_lu *ro;     /* null, 512-byte blocks, read-only */
static struct scsi_nexus nexus1 = { .id = 101, .initiator_port = "iqn.x,i,0x1", .target_port_id = 1 };
static struct scsi_nexus nexus2 = { .id = 102, .initiator_port = "iqn.y,i,0x2", .target_port_id = 1 };

#define FA_BLOCKS 2048u    /* 8 MiB / 4096 */
#define FB_BLOCKS 8192u    /* 4 MiB / 512 */

/* Until the core's registry of live LUs answers scsi_lu_lookup_naa (and for
 * running this test against an archive without it): a weak stand-in over
 * this test's LUs.  A strong definition in the archive replaces it. */
__attribute__((weak)) struct scsi_lu *scsi_lu_lookup_naa(const uint8_t naa[16])
{
	struct scsi_lu *all[] = { fa, fb, nl, ro };
	for (size_t i = 0; i < 4; i++) {
		if (all[i] && memcmp(all[i]->naa, naa, 16) == 0) {
			scsi_lu_get(all[i]);
			return all[i];
		}
	}
	return NULL;
}

/* LUN masking as the fabric would do it: everything but `hidden`. */
static const struct scsi_lu *hidden;

static bool access_hook(const struct scsi_cmd *cmd, const struct scsi_lu *lu)
{
	(void)cmd;
	return lu != hidden;
}

static int done_calls;

static void on_done(struct scsi_cmd *cmd)
{
	done_calls++;
	if (cmd->r && reactor_current() == cmd->r)
		reactor_stop(cmd->r);
}

static void cmd_init(struct scsi_cmd *cmd, struct scsi_lu *lu)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->lu = lu;
	cmd->lun = lu->lun;
	cmd->nexus = &nexus1;
	cmd->r = &R;
	cmd->done = on_done;
	cmd->status = SAM_STAT_GOOD;
}

static void wait_done(int want)
{
	while (done_calls < want) {
		R.stopping = false;
		reactor_run(&R);
	}
	assert_int_equal(done_calls, want);
}

static void wbe16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wbe32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void wbe64(uint8_t *p, uint64_t v) { wbe32(p, (uint32_t)(v >> 32)); wbe32(p + 4, (uint32_t)v); }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- parameter list builder (SPC-4 6.4.3) ---- */

struct plist {
	uint8_t b[4096];
	uint32_t tdll, sdll, len;
};

static void pl_init(struct plist *pl, uint8_t list_id, unsigned usage)
{
	memset(pl, 0, sizeof(*pl));
	pl->b[0] = list_id;
	pl->b[1] = (uint8_t)((usage & 3) << 3);
	pl->len = 16;
}

/* Identification descriptor target descriptor naming lu. */
static uint8_t *pl_tgt(struct plist *pl, const struct scsi_lu *lu)
{
	uint8_t *d = &pl->b[pl->len];
	d[0] = 0xe4;
	d[1] = 0x00;           /* LU ID TYPE 0, NUL 0, peripheral type 0 */
	d[4] = 0x01;           /* binary */
	d[5] = 0x03;           /* association LU, NAA */
	d[7] = 16;
	memcpy(&d[8], lu->naa, 16);
	d[29] = (uint8_t)(lu->block_size >> 16);
	d[30] = (uint8_t)(lu->block_size >> 8);
	d[31] = (uint8_t)lu->block_size;
	pl->len += 32;
	pl->tdll += 32;
	return d;
}

static uint8_t *pl_b2b(struct plist *pl, uint16_t src, uint16_t dst, uint16_t nb,
		       uint64_t slba, uint64_t dlba, bool dc)
{
	uint8_t *s = &pl->b[pl->len];
	s[0] = 0x02;
	s[1] = dc ? 0x02 : 0;
	wbe16(&s[2], 0x18);
	wbe16(&s[4], src);
	wbe16(&s[6], dst);
	wbe16(&s[10], nb);
	wbe64(&s[12], slba);
	wbe64(&s[20], dlba);
	pl->len += 28;
	pl->sdll += 28;
	return s;
}

static void pl_finish(struct plist *pl)
{
	wbe16(&pl->b[2], (uint16_t)pl->tdll);
	wbe32(&pl->b[8], pl->sdll);
}

/* Submit EXTENDED COPY with the first plen bytes of pl (no wait). */
static void xcopy_submit(struct scsi_cmd *cmd, struct scsi_lu *lu, struct plist *pl, uint32_t plen,
			 const struct scsi_nexus *nx)
{
	cmd_init(cmd, lu);
	if (nx)
		cmd->nexus = nx;
	cmd->cdb[0] = OP_EXTENDED_COPY;
	cmd->cdb[1] = XCOPY_SA_LID1;
	wbe32(&cmd->cdb[10], plen);
	cmd->cdb_len = 16;
	cmd->data_out = pl->b;
	cmd->data_out_len = plen;
	cmd->expected_len = plen;
	scsi_xcopy(cmd);
}

static void xcopy_run(struct scsi_cmd *cmd, struct scsi_lu *lu, struct plist *pl, uint32_t plen)
{
	done_calls = 0;
	xcopy_submit(cmd, lu, pl, plen, NULL);
	wait_done(1);
	assert_int_equal(cmd->xfer_len, plen);
	assert_true(cmd->xfer_is_write);
}

static void rcr_run(struct scsi_cmd *cmd, struct scsi_lu *lu, uint8_t sa, uint8_t list_id,
		    uint32_t alloc, const struct scsi_nexus *nx)
{
	done_calls = 0;
	cmd_init(cmd, lu);
	if (nx)
		cmd->nexus = nx;
	cmd->cdb[0] = OP_RECEIVE_COPY_RESULTS;
	cmd->cdb[1] = sa;
	cmd->cdb[2] = list_id;
	wbe32(&cmd->cdb[10], alloc);
	cmd->cdb_len = 16;
	scsi_receive_copy_results(cmd);
	wait_done(1);
}

static void assert_good(const struct scsi_cmd *cmd)
{
	if (cmd->status != SAM_STAT_GOOD)
		fail_msg("status %#x sense %x/%02x/%02x", cmd->status, cmd->sense[2] & 0xf,
			 cmd->sense[12], cmd->sense[13]);
}

static void assert_sense(const struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq)
{
	if (cmd->status != SAM_STAT_CHECK_CONDITION || (cmd->sense[2] & 0x0f) != key ||
	    cmd->sense[12] != asc || cmd->sense[13] != ascq)
		fail_msg("status %#x sense %x/%02x/%02x, expected CHECK CONDITION %x/%02x/%02x",
			 cmd->status, cmd->sense[2] & 0xf, cmd->sense[12], cmd->sense[13], key, asc,
			 ascq);
}

/* ---- fixtures ---- */

static struct scsi_lu *mk_lu(uint64_t lun, const char *type, const char *path, uint32_t bs,
			     uint64_t size, bool readonly, const char *seed)
{
	struct bstore_params bp = { .block_size = bs, .create = true, .size = size,
				    .readonly = readonly };
	struct scsi_lu_params lp = { .naa_seed = seed };
	struct bstore *bs_;
	struct scsi_lu *lu;

	if (bstore_open(type, path, &bp, &bs_) != 0)
		return NULL;
	lu = scsi_lu_create(lun, bs_, &lp);
	if (!lu)
		bstore_close(bs_);
	return lu;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs-xcopy-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(fpath_a, sizeof(fpath_a), "%s/a.img", tmpdir);
	snprintf(fpath_b, sizeof(fpath_b), "%s/b.img", tmpdir);
	if (reactor_init(&R, 0, 64) != 0)
		return -1;
	scsi_xcopy_access_hook = access_hook;
	fa = mk_lu(0, "file", fpath_a, 4096, (uint64_t)FA_BLOCKS * 4096, false, "xc/a");
	fb = mk_lu(1, "file", fpath_b, 512, (uint64_t)FB_BLOCKS * 512, false, "xc/b");
	nl = mk_lu(2, "null", "null0", 512, 1u << 20, false, "xc/null");
	ro = mk_lu(3, "null", "null1", 512, 1u << 20, true, "xc/ro");
	return fa && fb && nl && ro ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	scsi_lu_put(fa);
	scsi_lu_put(fb);
	scsi_lu_put(nl);
	scsi_lu_put(ro);
	reactor_fini(&R);
	unlink(fpath_a);
	unlink(fpath_b);
	rmdir(tmpdir);
	return 0;
}

/* Fill [off, off+len) of a backing file with a pattern derived from seed. */
static void file_fill(const char *path, uint64_t off, size_t len, uint32_t seed)
{
	uint8_t *b = malloc(len);
	int fd = open(path, O_WRONLY);
	assert_non_null(b);
	assert_true(fd >= 0);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)((i / 512) * 31 + i * 7 + seed);
	assert_int_equal(pwrite(fd, b, len, (off_t)off), (ssize_t)len);
	close(fd);
	free(b);
}

static uint8_t *file_read(const char *path, uint64_t off, size_t len)
{
	uint8_t *b = malloc(len);
	int fd = open(path, O_RDONLY);
	assert_non_null(b);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, len, (off_t)off), (ssize_t)len);
	close(fd);
	return b;
}

/* ---- tests ---- */

static void test_op_params(void **state)
{
	struct scsi_cmd cmd;
	const uint8_t *b;
	(void)state;

	rcr_run(&cmd, fa, RCR_SA_OPERATING_PARAMS, 0, 1024, NULL);
	assert_good(&cmd);
	b = cmd.data_in;
	assert_int_equal(cmd.data_in_len, 46);
	assert_int_equal(cmd.xfer_len, 46);
	assert_int_equal(be32(&b[0]), 42);
	assert_int_equal(b[4] & 1, 1);
	assert_int_equal(be16(&b[8]), XCOPY_MAX_TARGET_DESC);
	assert_int_equal(be16(&b[10]), XCOPY_MAX_SEGMENT_DESC);
	assert_int_equal(be32(&b[12]), XCOPY_MAX_DESC_LIST_LEN);
	assert_int_equal(be32(&b[16]), XCOPY_MAX_SEGMENT_LEN);
	assert_int_equal(be32(&b[20]), 0);
	assert_int_equal(be32(&b[24]), 0);
	assert_int_equal(be32(&b[28]), 0);
	assert_int_equal(be16(&b[34]), XCOPY_TOTAL_CONCURRENT);
	assert_int_equal(b[36], XCOPY_MAX_CONCURRENT);
	assert_int_equal(b[43], 2);
	assert_int_equal(b[44], 0x02);
	assert_int_equal(b[45], 0xe4);
	scsi_cmd_release(&cmd);

	/* Allocation length clips; 0 returns nothing. */
	rcr_run(&cmd, fa, RCR_SA_OPERATING_PARAMS, 0, 10, NULL);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 10);
	scsi_cmd_release(&cmd);
	rcr_run(&cmd, fa, RCR_SA_OPERATING_PARAMS, 0, 0, NULL);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 0);
	scsi_cmd_release(&cmd);

	/* Unknown service action (the core's table normally filters it). */
	rcr_run(&cmd, fa, 0x01, 0, 64, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	scsi_cmd_release(&cmd);
}

/* Header and length errors: ILLEGAL REQUEST, PARAMETER LIST LENGTH ERROR. */
static void test_param_lengths(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	(void)state;

	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);

	/* Zero: no data, no error (SPC-4 6.4.1). */
	xcopy_run(&cmd, fa, &pl, 0);
	assert_good(&cmd);
	/* Shorter than the header. */
	xcopy_run(&cmd, fa, &pl, 15);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	/* Truncating the target descriptor / the segment descriptor. */
	xcopy_run(&cmd, fa, &pl, 16 + 32 - 1);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	xcopy_run(&cmd, fa, &pl, 16 + 32 + 28 - 1);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	/* The initiator sent less than the CDB announced. */
	cmd_init(&cmd, fa);
	done_calls = 0;
	cmd.cdb[0] = OP_EXTENDED_COPY;
	wbe32(&cmd.cdb[10], pl.len);
	cmd.data_out = pl.b;
	cmd.data_out_len = pl.len - 1;
	scsi_xcopy(&cmd);
	wait_done(1);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	/* No data at all. */
	cmd_init(&cmd, fa);
	done_calls = 0;
	cmd.cdb[0] = OP_EXTENDED_COPY;
	wbe32(&cmd.cdb[10], pl.len);
	scsi_xcopy(&cmd);
	wait_done(1);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	/* The whole list is fine. */
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	/* No reactor to run the copy on: refused at once, nothing leaks. */
	cmd_init(&cmd, fa);
	done_calls = 0;
	cmd.r = NULL;
	cmd.cdb[0] = OP_EXTENDED_COPY;
	wbe32(&cmd.cdb[10], pl.len);
	cmd.data_out = pl.b;
	cmd.data_out_len = pl.len;
	scsi_xcopy(&cmd);
	assert_int_equal(done_calls, 1);
	assert_sense(&cmd, 0x4, 0x44, 0x00);

	/* Segment descriptor whose own length runs past the list. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	wbe16(&pl.b[16 + 32 + 2], 0x40);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	/* Trailing 2 bytes of segment list: too short for a header. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl.sdll += 2;
	pl.len += 2;
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
	/* Longer than the maximum descriptor list length. */
	pl_init(&pl, 1, 0);
	for (unsigned i = 0; i < XCOPY_MAX_TARGET_DESC + 1; i++)
		pl_tgt(&pl, fa);
	for (unsigned i = 0; i < XCOPY_MAX_SEGMENT_DESC + 1 && pl.len + 28 <= sizeof(pl.b); i++)
		pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	assert_true(pl.tdll + pl.sdll > XCOPY_MAX_DESC_LIST_LEN);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x1a, 0x00);
}

static void test_param_fields(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	uint8_t *d;
	(void)state;

	/* Too many target descriptors (26/06). */
	pl_init(&pl, 1, 0);
	for (unsigned i = 0; i < XCOPY_MAX_TARGET_DESC + 1; i++)
		pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x06);
	/* Exactly the maximum is fine. */
	pl_init(&pl, 1, 0);
	for (unsigned i = 0; i < XCOPY_MAX_TARGET_DESC; i++)
		pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, XCOPY_MAX_TARGET_DESC - 1, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);

	/* Too many segment descriptors (26/08). */
	pl_init(&pl, 2, 0);
	pl_tgt(&pl, fa);
	for (unsigned i = 0; i < XCOPY_MAX_SEGMENT_DESC + 1; i++)
		pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x08);

	/* Unsupported target descriptor type (FC N_Port_Name, E0h): 26/07
	 * with a field pointer to the descriptor. */
	pl_init(&pl, 1, 0);
	d = pl_tgt(&pl, fa);
	d[0] = 0xe0;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x07);
	assert_int_equal(cmd.sense[15] & 0xc0, 0x80);   /* SKSV, C/D=0 */
	assert_int_equal(be16(&cmd.sense[16]), 16);

	/* Unsupported segment descriptor type (stream->stream, 03h, 20 bytes). */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	d = &pl.b[pl.len];
	d[0] = 0x03;
	wbe16(&d[2], 0x10);
	pl.len += 20;
	pl.sdll += 20;
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x09);

	/* Block->block with a wrong DESCRIPTOR LENGTH. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	d = pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	wbe16(&d[2], 0x14);
	pl.len -= 4;
	pl.sdll -= 4;
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x00);

	/* SPC-3's LU ID TYPE and NUL bits are obsolete in SPC-4: ignored. */
	pl_init(&pl, 1, 0);
	d = pl_tgt(&pl, fa);
	d[1] = 0xe0;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);

	/* Peripheral device type other than direct access. */
	pl_init(&pl, 1, 0);
	d = pl_tgt(&pl, fa);
	d[1] = 0x01;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x00);

	/* DISK BLOCK LENGTH not the LU's. */
	pl_init(&pl, 1, 0);
	d = pl_tgt(&pl, fa);
	d[30] = 0x02;
	d[31] = 0x00;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x00);
	assert_int_equal(be16(&cmd.sense[16]), 16 + 29);

	/* LIST ID USAGE 01b is reserved. */
	pl_init(&pl, 1, 1);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x00);

	/* Inline data beyond MAXIMUM INLINE DATA LENGTH (0). */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	wbe32(&pl.b[12], 4);
	pl.len += 4;
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x00);

	/* Target descriptor list length not a multiple of 32. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl.len += 4;
	pl.tdll += 4;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x00);

	/* Inexact segment: one 512-byte block into a 4096-byte LU. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fb);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 1, 1, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x0a);
}

/* Errors found while processing the descriptors: COPY ABORTED. */
static void test_copy_aborted(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	uint8_t *d;
	(void)state;

	/* An NAA no LU of ours has. */
	pl_init(&pl, 1, 0);
	d = pl_tgt(&pl, fa);
	d[8 + 15] ^= 0x5a;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x0d, 0x02);

	/* A designator that is not an NAA (T10 vendor ID). */
	pl_init(&pl, 1, 0);
	d = pl_tgt(&pl, fa);
	d[5] = 0x01;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x0d, 0x02);

	/* Destination index naming no target descriptor. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 1, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x08, 0x04);
	assert_int_equal(be32(&cmd.sense[8]), 0);           /* segment 0 */

	/* Second segment beyond the destination's end. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_b2b(&pl, 0, 0, 2048, 0, FA_BLOCKS - 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x00, 0x00);
	assert_int_equal(be32(&cmd.sense[8]), 1);           /* segment 1 */
	/* ... and the source's end; exactly up to the end is fine. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 2, FA_BLOCKS - 1, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x00, 0x00);
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 0xffff, UINT64_MAX - 1, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x00, 0x00);

	/* Read-only destination. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, nl);
	pl_tgt(&pl, ro);
	pl_b2b(&pl, 0, 1, 8, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x7, 0x27, 0x00);
	/* ... as a source it is fine. */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, ro);
	pl_tgt(&pl, nl);
	pl_b2b(&pl, 0, 1, 8, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
}

/* Real data through the file store, across block sizes, many chunks. */
static void test_copy_file(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	uint8_t *src, *dst;
	const size_t n3 = 3u << 20;   /* 3 MiB: several 1 MiB chunks */
	(void)state;

	file_fill(fpath_a, 0, n3, 1);
	/* A[0..768) (4096-byte blocks) -> B at LBA 100 (512-byte blocks), DC=0. */
	pl_init(&pl, 7, 2);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, (uint16_t)(n3 / 4096), 0, 100, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fb, &pl, pl.len);
	assert_good(&cmd);
	src = file_read(fpath_a, 0, n3);
	dst = file_read(fpath_b, 100 * 512, n3);
	assert_memory_equal(src, dst, n3);
	free(dst);

	/* Back again with DC=1 (NUMBER OF BLOCKS counts destination blocks):
	 * B[100..) -> A at LBA 1024, 64 blocks of 4096 bytes. */
	pl_init(&pl, 8, 3);
	pl_tgt(&pl, fb);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 1, 64, 100, 1024, true);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	dst = file_read(fpath_a, 1024ull * 4096, 64 * 4096);
	assert_memory_equal(src, dst, 64 * 4096);
	free(dst);
	free(src);

	/* Several segments in one command, same LU (as libiscsi's Simple). */
	file_fill(fpath_a, 0, 2048 * 4, 9);
	pl_init(&pl, 9, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 2, 0, FA_BLOCKS - 2, false);
	pl_b2b(&pl, 0, 0, 0, 0, 0, false);                  /* zero blocks: no-op */
	pl_b2b(&pl, 0, 0, 1, 1, FA_BLOCKS - 4, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	src = file_read(fpath_a, 0, 2 * 4096);
	dst = file_read(fpath_a, (FA_BLOCKS - 2) * 4096ull, 2 * 4096);
	assert_memory_equal(src, dst, 2 * 4096);
	free(dst);
	dst = file_read(fpath_a, (FA_BLOCKS - 4) * 4096ull, 4096);
	assert_memory_equal(src + 4096, dst, 4096);
	free(dst);
	free(src);
}

/* Overlapping copies inside one LU behave like a memmove in both directions. */
static void test_copy_overlap(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	uint8_t *orig, *now;
	const size_t len = 3000 * 512;   /* > 1 MiB chunk */
	(void)state;

	file_fill(fpath_b, 0, 4u << 20, 3);
	orig = file_read(fpath_b, 0, 4u << 20);
	/* Up: [0, 3000) -> [1000, 4000). */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 0, 3000, 0, 1000, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fb, &pl, pl.len);
	assert_good(&cmd);
	now = file_read(fpath_b, 0, 4u << 20);
	memmove(orig + 1000 * 512, orig, len);
	assert_memory_equal(orig, now, 4u << 20);
	free(now);
	/* Down: [1000, 4000) -> [10, 3010). */
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 0, 3000, 1000, 10, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fb, &pl, pl.len);
	assert_good(&cmd);
	now = file_read(fpath_b, 0, 4u << 20);
	memmove(orig + 10 * 512, orig + 1000 * 512, len);
	assert_memory_equal(orig, now, 4u << 20);
	free(now);
	free(orig);
}

/* Null store as source (zeros) and destination (discarded). */
static void test_copy_null(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	uint8_t *now, zero[8 * 512];
	(void)state;

	file_fill(fpath_b, 0, 8 * 512, 5);
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, nl);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 8, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fb, &pl, pl.len);
	assert_good(&cmd);
	now = file_read(fpath_b, 0, sizeof(zero));
	memset(zero, 0, sizeof(zero));
	assert_memory_equal(now, zero, sizeof(zero));
	free(now);

	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, nl);
	pl_b2b(&pl, 0, 1, 256, 0, 0, false);                 /* 1 MiB into the 1 MiB null LU */
	pl_finish(&pl);
	xcopy_run(&cmd, nl, &pl, pl.len);
	assert_good(&cmd);
}

static void test_copy_status(void **state)
{
	struct scsi_cmd cmd, cmd2;
	struct plist pl;
	const uint8_t *b;
	(void)state;

	/* Nothing known for list 42 yet. */
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 42, 1024, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	assert_int_equal(be16(&cmd.sense[16]), 2);
	rcr_run(&cmd, fa, RCR_SA_FAILED_SEGMENT, 42, 1024, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);

	/* Held (LIST ID USAGE 00b) successful copy of 2 segments. */
	pl_init(&pl, 42, 0);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 4, 0, 0, false);
	pl_b2b(&pl, 1, 0, 8, 0, 4, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 42, 1024, NULL);
	assert_good(&cmd);
	b = cmd.data_in;
	assert_int_equal(cmd.data_in_len, 12);
	assert_int_equal(be32(&b[0]), 8);
	assert_int_equal(b[4], 0x01);                        /* completed, no errors */
	assert_int_equal(be16(&b[5]), 2);
	assert_int_equal(b[7], 0x00);
	assert_int_equal(be32(&b[8]), 4 * 4096 + 8 * 512);
	scsi_cmd_release(&cmd);
	/* No failed segment details for it. */
	rcr_run(&cmd, fa, RCR_SA_FAILED_SEGMENT, 42, 1024, NULL);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in_len, 4);
	assert_int_equal(be32(cmd.data_in), 0);
	scsi_cmd_release(&cmd);
	/* Other nexus: not its copy.  Any LU of the nexus answers. */
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 42, 1024, &nexus2);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	rcr_run(&cmd, fb, RCR_SA_COPY_STATUS, 42, 1024, NULL);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);

	/* LIST ID USAGE 10b / 11b: nothing held. */
	pl.b[0] = 43;
	pl.b[1] = 2 << 3;
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 43, 1024, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	pl.b[1] = 3 << 3;
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 43, 1024, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);

	/* A failed held copy: status "completed with errors", then the failed
	 * segment details once. */
	pl_init(&pl, 44, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 16, 0, FA_BLOCKS - 8, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x00, 0x00);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 44, 1024, NULL);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[4], 0x02);
	scsi_cmd_release(&cmd);
	rcr_run(&cmd, fa, RCR_SA_FAILED_SEGMENT, 44, 1024, NULL);
	assert_good(&cmd);
	b = cmd.data_in;
	assert_int_equal(cmd.data_in_len, 60 + 18);
	assert_int_equal(be32(&b[0]), 56 + 18);
	assert_int_equal(b[56], SAM_STAT_CHECK_CONDITION);
	assert_int_equal(be16(&b[58]), 18);
	assert_int_equal(b[60 + 2] & 0xf, 0xa);
	scsi_cmd_release(&cmd);
	rcr_run(&cmd, fa, RCR_SA_FAILED_SEGMENT, 44, 1024, NULL);
	assert_good(&cmd);
	assert_int_equal(be32(cmd.data_in), 0);
	scsi_cmd_release(&cmd);

	/* ILLEGAL REQUEST before the copy began: nothing held. */
	pl_init(&pl, 45, 0);
	pl_tgt(&pl, fa)[0] = 0xe0;
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0x5, 0x26, 0x07);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 45, 1024, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);

	/* In progress: status 00h; the same LIST IDENTIFIER again is refused
	 * with OPERATION IN PROGRESS, another one is not. */
	pl_init(&pl, 46, 0);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 512, 0, 0, false);                 /* 2 MiB: 2 chunks */
	pl_finish(&pl);
	done_calls = 0;
	xcopy_submit(&cmd, fa, &pl, pl.len, NULL);
	assert_int_equal(done_calls, 0);
	{
		struct scsi_cmd st;
		cmd_init(&st, fa);
		st.cdb[0] = OP_RECEIVE_COPY_RESULTS;
		st.cdb[1] = RCR_SA_COPY_STATUS;
		st.cdb[2] = 46;
		wbe32(&st.cdb[10], 64);
		scsi_receive_copy_results(&st);
		assert_int_equal(done_calls, 1);             /* synchronous */
		assert_good(&st);
		assert_int_equal(st.data_in[4], 0x00);
		scsi_cmd_release(&st);
		rcr_run(&cmd2, fa, RCR_SA_FAILED_SEGMENT, 46, 64, NULL);
		assert_good(&cmd2);
		assert_int_equal(be32(cmd2.data_in), 0);
		scsi_cmd_release(&cmd2);
	}
	done_calls = 0;
	xcopy_submit(&cmd2, fa, &pl, pl.len, NULL);
	assert_int_equal(done_calls, 1);
	assert_sense(&cmd2, 0x5, 0x00, 0x16);
	/* Same list id on another nexus is its own copy. */
	done_calls = 0;
	xcopy_submit(&cmd2, fa, &pl, pl.len, &nexus2);
	wait_done(2);
	assert_good(&cmd);
	assert_good(&cmd2);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 46, 1024, NULL);
	assert_good(&cmd);
	assert_int_equal(cmd.data_in[4], 0x01);
	assert_int_equal(be32(&cmd.data_in[8]), 2u << 20);
	scsi_cmd_release(&cmd);

	/* The nexus goes away: its results go too. */
	scsi_xcopy_forget_nexus(nexus1.id);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 46, 1024, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 46, 1024, &nexus2);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	scsi_xcopy_forget_nexus(nexus2.id);
}

/* Many held results: the table is bounded and evicts the oldest. */
static void test_status_table_bounded(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	(void)state;

	for (unsigned i = 0; i < 256; i++) {
		pl_init(&pl, (uint8_t)i, 0);
		pl_tgt(&pl, nl);
		pl_b2b(&pl, 0, 0, 1, 0, 1, false);
		pl_finish(&pl);
		xcopy_run(&cmd, nl, &pl, pl.len);
		assert_good(&cmd);
	}
	rcr_run(&cmd, nl, RCR_SA_COPY_STATUS, 255, 64, NULL);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
	rcr_run(&cmd, nl, RCR_SA_COPY_STATUS, 0, 64, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	scsi_xcopy_forget_nexus(nexus1.id);
}

/* The copy manager is no way around LUN masking. */
static void test_access(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	(void)state;

	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 1, 0, 0, false);
	pl_finish(&pl);
	hidden = fb;
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x0d, 0x02);
	hidden = NULL;
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);

	/* Without a hook only the addressed LU is reachable. */
	scsi_xcopy_access_hook = NULL;
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_sense(&cmd, 0xa, 0x0d, 0x02);
	pl_init(&pl, 1, 0);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 0, 1, 0, 1, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	scsi_xcopy_access_hook = access_hook;
}

/* PERSISTENT RESERVE OUT, synchronous. */
static void pr_out(struct scsi_lu *lu, const struct scsi_nexus *nx, uint8_t sa, uint8_t type,
		   uint64_t key, uint64_t sakey)
{
	struct scsi_cmd cmd;
	uint8_t pl[24] = { 0 };

	cmd_init(&cmd, lu);
	cmd.nexus = nx;
	cmd.cdb[0] = 0x5f;
	cmd.cdb[1] = sa;
	cmd.cdb[2] = type;
	wbe32(&cmd.cdb[5], sizeof(pl));
	cmd.cdb_len = 10;
	wbe64(&pl[0], key);
	wbe64(&pl[8], sakey);
	cmd.data_out = pl;
	cmd.data_out_len = sizeof(pl);
	scsi_pr_out(&cmd);
	assert_good(&cmd);
	scsi_cmd_release(&cmd);
}

/* A CSCD's reservation binds the copy as if the initiator accessed it. */
static void test_reservations(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	(void)state;

	pr_out(fb, &nexus2, 0x00, 0, 0, 0xabc);             /* REGISTER */
	pr_out(fb, &nexus2, 0x01, 0x01, 0xabc, 0);          /* RESERVE, Write Exclusive */

	/* nexus1 writing fb: conflict; nothing held. */
	pl_init(&pl, 60, 0);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 1, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_int_equal(cmd.status, SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(cmd.sense_len, 0);
	rcr_run(&cmd, fa, RCR_SA_COPY_STATUS, 60, 64, NULL);
	assert_sense(&cmd, 0x5, 0x24, 0x00);
	scsi_cmd_release(&cmd);
	/* The holder may. */
	done_calls = 0;
	xcopy_submit(&cmd, fa, &pl, pl.len, &nexus2);
	wait_done(1);
	assert_good(&cmd);
	/* Reading fb is allowed under Write Exclusive. */
	pl_init(&pl, 61, 0);
	pl_tgt(&pl, fb);
	pl_tgt(&pl, fa);
	pl_b2b(&pl, 0, 1, 8, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);

	pr_out(fb, &nexus2, 0x03, 0, 0xabc, 0);             /* CLEAR */
	pl_init(&pl, 62, 0);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 1, 0, 0, false);
	pl_finish(&pl);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
	scsi_xcopy_forget_nexus(nexus1.id);
	scsi_xcopy_forget_nexus(nexus2.id);
}

/* ---- range lock: the copy is serialised against COMPARE AND WRITE ---- */

struct rl_holder {
	struct scsi_cmd cmd;           /* stands for a COMPARE AND WRITE */
	struct scsi_lu *lu;
	_Atomic bool saw_waiter;       /* the copy queued behind the claim */
	_Atomic int done_when_seen;    /* done_calls at that moment */
	pthread_t th;
};

static _Atomic int xc_done;

static void on_done_atomic(struct scsi_cmd *cmd)
{
	atomic_fetch_add(&xc_done, 1);
	done_calls++;
	if (cmd->r && reactor_current() == cmd->r)
		reactor_stop(cmd->r);
}

static void rl_never(struct scsi_cmd *cmd)
{
	(void)cmd;
	fail_msg("the holder's claim was granted at once, never queued");
}

/* Another thread: wait until the copy queues behind the exclusive claim,
 * give it time to (wrongly) go on, then release the claim. */
static void *rl_holder_thread(void *arg)
{
	struct rl_holder *h = arg;
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	bool waiting = false;

	for (int i = 0; i < 2000 && !waiting; i++) {
		pthread_mutex_lock(&h->lu->rl.mu);
		waiting = h->lu->rl.wait_head != NULL;
		pthread_mutex_unlock(&h->lu->rl.mu);
		if (!waiting)
			nanosleep(&ts, NULL);
	}
	ts.tv_nsec = 100 * 1000 * 1000;
	nanosleep(&ts, NULL);
	atomic_store(&h->done_when_seen, atomic_load(&xc_done));
	atomic_store(&h->saw_waiter, waiting);
	scsi_rl_release(&h->cmd);   /* the "COMPARE AND WRITE" completes */
	return NULL;
}

static void test_range_lock(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	uint8_t *src, *dst;
	(void)state;

	file_fill(fpath_a, 0, 4096, 21);
	src = file_read(fpath_a, 0, 4096);
	/* case 0: the exclusive claim covers the destination (fb 100..107);
	 * case 1: it covers the source (fa block 0). */
	for (int which = 0; which < 2; which++) {
		static struct rl_holder h;
		/* A reactor of its own: a reactor stopped from inside its wake
		 * callback (earlier tests) does not re-arm the wake read, and
		 * this test needs the cross-thread resume through
		 * reactor_post(). */
		static struct reactor R2;

		assert_int_equal(reactor_init(&R2, 2, 64), 0);
		memset(&h, 0, sizeof(h));
		h.cmd.r = &R2;
		h.lu = which == 0 ? fb : fa;
		assert_true(scsi_rl_acquire(&h.cmd, h.lu, which == 0 ? 104 : 0, 1, SCSI_RL_EXCL,
					    rl_never));
		file_fill(fpath_b, 100 * 512, 4096, 99);

		pl_init(&pl, (uint8_t)(70 + which), 3);
		pl_tgt(&pl, fa);
		pl_tgt(&pl, fb);
		pl_b2b(&pl, 0, 1, 1, 0, 100, false);    /* fa block 0 -> fb 100..107 */
		pl_finish(&pl);
		atomic_store(&xc_done, 0);
		done_calls = 0;
		cmd_init(&cmd, fb);
		cmd.r = &R2;
		cmd.done = on_done_atomic;
		cmd.cdb[0] = OP_EXTENDED_COPY;
		cmd.cdb[1] = XCOPY_SA_LID1;
		wbe32(&cmd.cdb[10], pl.len);
		cmd.cdb_len = 16;
		cmd.data_out = pl.b;
		cmd.data_out_len = cmd.expected_len = pl.len;
		assert_int_equal(pthread_create(&h.th, NULL, rl_holder_thread, &h), 0);
		scsi_xcopy(&cmd);
		while (done_calls < 1) {
			R2.stopping = false;
			reactor_run(&R2);
		}
		pthread_join(h.th, NULL);
		reactor_fini(&R2);
		assert_true(atomic_load(&h.saw_waiter));
		assert_int_equal(atomic_load(&h.done_when_seen), 0);
		assert_good(&cmd);
		dst = file_read(fpath_b, 100 * 512, 4096);
		assert_memory_equal(src, dst, 4096);
		free(dst);
		/* Nothing left behind in either lock. */
		assert_null(fa->rl.active);
		assert_null(fb->rl.active);
		assert_null(fa->rl.wait_head);
		assert_null(fb->rl.wait_head);
	}
	free(src);
}

/* A copy never touches an ejected removable medium (unreachable CSCD). */
static void test_no_medium(void **state)
{
	struct scsi_cmd cmd;
	struct plist pl;
	(void)state;

	pl_init(&pl, 80, 3);
	pl_tgt(&pl, fa);
	pl_tgt(&pl, fb);
	pl_b2b(&pl, 0, 1, 1, 0, 0, false);
	pl_finish(&pl);
	atomic_store(&fb->no_medium, true);
	xcopy_run(&cmd, fa, &pl, pl.len);
	atomic_store(&fb->no_medium, false);
	assert_sense(&cmd, 0x0a, 0x0d, 0x02);
	xcopy_run(&cmd, fa, &pl, pl.len);
	assert_good(&cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_params),
		cmocka_unit_test(test_param_lengths),
		cmocka_unit_test(test_param_fields),
		cmocka_unit_test(test_copy_aborted),
		cmocka_unit_test(test_copy_file),
		cmocka_unit_test(test_copy_overlap),
		cmocka_unit_test(test_copy_null),
		cmocka_unit_test(test_copy_status),
		cmocka_unit_test(test_status_table_bounded),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_reservations),
		cmocka_unit_test(test_range_lock),
		cmocka_unit_test(test_no_medium),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
