/* test_iscsi_session.c - the iSCSI fabric's pure sequencing logic
 * (target/iscsi_seq.c): CmdSN window, MaxCmdSN, residuals (RFC 7143 11.4.5),
 * Data-Out / R2T bookkeeping (RFC 7143 11.7/11.8) and the ITT table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "target/iscsi_internal.h"

static void test_window(void **state)
{
	(void)state;
	assert_true(iscsi_cmdsn_in_window(10, 20, 10));
	assert_true(iscsi_cmdsn_in_window(10, 20, 20));
	assert_true(iscsi_cmdsn_in_window(10, 20, 15));
	assert_false(iscsi_cmdsn_in_window(10, 20, 9));     /* too low */
	assert_false(iscsi_cmdsn_in_window(10, 20, 21));    /* MaxCmdSN + 1 */
	/* serial arithmetic across the 2^32 wrap (RFC 1982) */
	assert_true(iscsi_cmdsn_in_window(0xfffffff0u, 0x0000000fu, 0xffffffffu));
	assert_true(iscsi_cmdsn_in_window(0xfffffff0u, 0x0000000fu, 0x00000005u));
	assert_false(iscsi_cmdsn_in_window(0xfffffff0u, 0x0000000fu, 0x00000010u));
	assert_false(iscsi_cmdsn_in_window(0xfffffff0u, 0x0000000fu, 0xffffffefu));
	/* closed window: MaxCmdSN = ExpCmdSN - 1 */
	assert_false(iscsi_cmdsn_in_window(5, 4, 5));
}

static void test_max_cmdsn(void **state)
{
	(void)state;
	assert_int_equal(iscsi_max_cmdsn(1, 128, 0), 128);
	assert_int_equal(iscsi_max_cmdsn(1, 128, 10), 118);
	assert_int_equal(iscsi_max_cmdsn(100, 4, 4), 99);   /* full: closed */
	assert_int_equal(iscsi_max_cmdsn(100, 4, 9), 99);
	/* delivery raises ExpCmdSN and active together: MaxCmdSN unchanged */
	assert_int_equal(iscsi_max_cmdsn(11, 32, 3), iscsi_max_cmdsn(10, 32, 2));
	assert_int_equal(iscsi_max_cmdsn(0xffffffffu, 2, 0), 0u);
}

static void test_residual(void **state)
{
	uint8_t f;
	uint32_t r;
	(void)state;

	iscsi_residual(512, 512, &f, &r);
	assert_int_equal(f, 0);
	assert_int_equal(r, 0);
	/* READ10 of 1 block, EDTL 0: overflow by one block */
	iscsi_residual(0, 512, &f, &r);
	assert_int_equal(f, ISCSI_RSP_OVERFLOW);
	assert_int_equal(r, 512);
	/* EDTL 10000 for one block: underflow 10000 - 512 */
	iscsi_residual(10000, 512, &f, &r);
	assert_int_equal(f, ISCSI_RSP_UNDERFLOW);
	assert_int_equal(r, 10000 - 512);
	/* EDTL 200 for one block */
	iscsi_residual(200, 512, &f, &r);
	assert_int_equal(f, ISCSI_RSP_OVERFLOW);
	assert_int_equal(r, 312);
	/* MODE SENSE(6) alloc 255 returning 36 bytes */
	iscsi_residual(255, 36, &f, &r);
	assert_int_equal(f, ISCSI_RSP_UNDERFLOW);
	assert_int_equal(r, 219);
}

static void test_xfer_immediate_only(void **state)
{
	struct iscsi_xfer x;
	struct iscsi_r2t r;
	(void)state;

	/* whole write as immediate data: nothing to solicit */
	iscsi_xfer_init(&x, 4096, 4096, true, 65536, 262144, 1);
	assert_true(iscsi_xfer_complete(&x));
	assert_false(iscsi_xfer_next_r2t(&x, 7, &r));
}

static void test_xfer_initial_r2t(void **state)
{
	struct iscsi_xfer x;
	struct iscsi_r2t r;
	bool done;
	(void)state;

	/* InitialR2T=Yes, 1 KiB immediate, EDTL 600000, MaxBurst 262144,
	 * MaxOutstandingR2T 1 */
	iscsi_xfer_init(&x, 600000, 1024, true, 65536, 262144, 1);
	assert_false(iscsi_xfer_complete(&x));
	/* unsolicited Data-Out not allowed beyond immediate data */
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 0, 1024, 512, true, &done),
			 ISCSI_DOUT_BAD_TTT);
	assert_true(iscsi_xfer_next_r2t(&x, 100, &r));
	assert_int_equal(r.offset, 1024);
	assert_int_equal(r.len, 262144);
	assert_int_equal(x.r2tsn, 1);
	/* only one outstanding */
	assert_false(iscsi_xfer_next_r2t(&x, 101, &r));
	/* wrong TTT */
	assert_int_equal(iscsi_xfer_data_out(&x, 99, 0, 1024, 8192, false, &done),
			 ISCSI_DOUT_BAD_TTT);
	/* wrong DataSN */
	assert_int_equal(iscsi_xfer_data_out(&x, 100, 1, 1024, 8192, false, &done),
			 ISCSI_DOUT_BAD_DATASN);
	/* wrong offset */
	assert_int_equal(iscsi_xfer_data_out(&x, 100, 0, 2048, 8192, false, &done),
			 ISCSI_DOUT_BAD_OFFSET);
	/* F before the burst is complete */
	assert_int_equal(iscsi_xfer_data_out(&x, 100, 0, 1024, 8192, true, &done),
			 ISCSI_DOUT_BAD_FINAL);
	/* the burst in 32 PDUs of 8 KiB */
	for (uint32_t i = 0; i < 32; i++) {
		assert_int_equal(iscsi_xfer_data_out(&x, 100, i, 1024 + i * 8192, 8192, i == 31,
						     &done), ISCSI_DOUT_OK);
		assert_int_equal(done, i == 31);
	}
	/* beyond the burst */
	assert_int_equal(iscsi_xfer_data_out(&x, 100, 32, 1024 + 262144, 512, false, &done),
			 ISCSI_DOUT_BAD_TTT);
	assert_true(iscsi_xfer_next_r2t(&x, 101, &r));
	assert_int_equal(r.offset, 1024 + 262144);
	assert_int_equal(r.len, 262144);
	assert_int_equal(iscsi_xfer_data_out(&x, 101, 0, r.offset, r.len, true, &done),
			 ISCSI_DOUT_OK);
	assert_true(iscsi_xfer_next_r2t(&x, 102, &r));
	assert_int_equal(r.len, 600000 - 1024 - 2 * 262144);
	assert_int_equal(iscsi_xfer_data_out(&x, 102, 0, r.offset, r.len, true, &done),
			 ISCSI_DOUT_OK);
	assert_true(iscsi_xfer_complete(&x));
	assert_false(iscsi_xfer_next_r2t(&x, 103, &r));
	assert_int_equal(x.r2t_sent, 3);
}

static void test_xfer_unsolicited(void **state)
{
	struct iscsi_xfer x;
	struct iscsi_r2t r;
	bool done;
	(void)state;

	/* InitialR2T=No, no immediate data, FirstBurst 65536, EDTL 100000,
	 * MaxOutstandingR2T 2 */
	iscsi_xfer_init(&x, 100000, 0, false, 65536, 16384, 2);
	assert_int_equal(x.unsol_len, 65536);
	/* R2Ts may go out for the part beyond the first burst at once */
	assert_true(iscsi_xfer_next_r2t(&x, 1, &r));
	assert_int_equal(r.offset, 65536);
	assert_int_equal(r.len, 16384);
	assert_true(iscsi_xfer_next_r2t(&x, 2, &r));
	assert_int_equal(r.offset, 81920);
	assert_false(iscsi_xfer_next_r2t(&x, 3, &r));
	/* unsolicited: DataSN 0, 1 ... */
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 0, 0, 32768, false, &done),
			 ISCSI_DOUT_OK);
	/* duplicated DataSN 0 (libiscsi DataSnInvalid case 1) */
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 0, 32768, 32768, true, &done),
			 ISCSI_DOUT_BAD_DATASN);
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 1, 32768, 32768, true, &done),
			 ISCSI_DOUT_OK);
	assert_false(done);
	/* unsolicited sequence is over */
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 2, 65536, 512, false, &done),
			 ISCSI_DOUT_BAD_TTT);
	/* the two R2T sequences, interleaved is fine per sequence */
	assert_int_equal(iscsi_xfer_data_out(&x, 2, 0, 81920, 8192, false, &done), ISCSI_DOUT_OK);
	assert_int_equal(iscsi_xfer_data_out(&x, 1, 0, 65536, 16384, true, &done), ISCSI_DOUT_OK);
	assert_true(done);
	assert_true(iscsi_xfer_next_r2t(&x, 3, &r));
	assert_int_equal(r.offset, 98304);
	assert_int_equal(r.len, 100000 - 98304);
	assert_int_equal(iscsi_xfer_data_out(&x, 2, 1, 90112, 8192, true, &done), ISCSI_DOUT_OK);
	assert_int_equal(iscsi_xfer_data_out(&x, 3, 0, 98304, 100000 - 98304, true, &done),
			 ISCSI_DOUT_OK);
	assert_true(iscsi_xfer_complete(&x));
}

static void test_xfer_bad_datasn(void **state)
{
	struct iscsi_xfer x;
	bool done;
	(void)state;

	/* libiscsi DataSnInvalid: DataSN 27, -1, reversed order */
	iscsi_xfer_init(&x, 1024, 0, false, 65536, 262144, 1);
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 27, 0, 512, false, &done),
			 ISCSI_DOUT_BAD_DATASN);
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 0xffffffffu, 0, 512, false, &done),
			 ISCSI_DOUT_BAD_DATASN);
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 1, 512, 512, true, &done),
			 ISCSI_DOUT_BAD_DATASN);
	/* offset + length beyond EDTL */
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 0, 0, 2048, true, &done),
			 ISCSI_DOUT_BAD_OFFSET);
	/* offset wrap-around */
	assert_int_equal(iscsi_xfer_data_out(&x, ISCSI_RSVD_TAG, 0, 0xfffffe00u, 1024, true, &done),
			 ISCSI_DOUT_BAD_OFFSET);
	assert_false(iscsi_xfer_complete(&x));
}

static void test_xfer_first_burst_caps_unsolicited(void **state)
{
	struct iscsi_xfer x;
	(void)state;

	/* immediate data counts into the first burst */
	iscsi_xfer_init(&x, 300000, 8192, false, 65536, 262144, 1);
	assert_int_equal(x.unsol_len, 65536);
	assert_int_equal(x.received, 8192);
	assert_int_equal(x.unsol_next, 8192);
	assert_int_equal(x.next_offset, 65536);
	/* EDTL smaller than the first burst */
	iscsi_xfer_init(&x, 4096, 0, false, 65536, 262144, 1);
	assert_int_equal(x.unsol_len, 4096);
	assert_int_equal(x.next_offset, 4096);
	/* MaxOutstandingR2T is capped to what we track */
	iscsi_xfer_init(&x, 4096, 0, true, 65536, 262144, 1000);
	assert_int_equal(x.max_r2t, ISCSI_MAX_R2T_SLOTS);
}

static void test_itt_table(void **state)
{
	struct iscsi_itt_table t = {0};
	struct iscsi_itt_node n[200];
	(void)state;

	for (unsigned i = 0; i < 200; i++) {
		n[i].itt = i * 7 + 0x10000;
		iscsi_itt_add(&t, &n[i]);
	}
	assert_int_equal(t.count, 200);
	for (unsigned i = 0; i < 200; i++)
		assert_ptr_equal(iscsi_itt_find(&t, i * 7 + 0x10000), &n[i]);
	assert_null(iscsi_itt_find(&t, 3));
	assert_true(iscsi_itt_del(&t, &n[50]));
	assert_false(iscsi_itt_del(&t, &n[50]));
	assert_null(iscsi_itt_find(&t, 50 * 7 + 0x10000));
	assert_ptr_equal(iscsi_itt_find(&t, 51 * 7 + 0x10000), &n[51]);
	assert_int_equal(t.count, 199);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_max_cmdsn),
		cmocka_unit_test(test_residual),
		cmocka_unit_test(test_xfer_immediate_only),
		cmocka_unit_test(test_xfer_initial_r2t),
		cmocka_unit_test(test_xfer_unsolicited),
		cmocka_unit_test(test_xfer_bad_datasn),
		cmocka_unit_test(test_xfer_first_burst_caps_unsolicited),
		cmocka_unit_test(test_itt_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
