/* Unit tests for target/iscsi_chap.c: digests per RFC 1994 4.1 for the four
 * CHAP_A algorithms (expected values computed independently with Python's
 * hashlib), binary value codecs (RFC 7143 6.1), algorithm selection, a full
 * one-way and mutual exchange, reflection refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target/iscsi_chap.h"

static const uint8_t chal16[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void expect_digest(int alg, const char *hex)
{
	uint8_t out[CHAP_MAX_DIGEST];
	char enc[2 * CHAP_MAX_DIGEST + 3];
	assert_int_equal(chap_compute(alg, 1, "secretsecret", 12, chal16, 16, out), 0);
	chap_encode_hex(out, chap_digest_len(alg), enc);
	assert_string_equal(enc + 2, hex);
}

static void test_vectors(void **state)
{
	(void)state;
	expect_digest(CHAP_ALG_MD5, "226dc576c33f04ff9c3a200ffe35f442");
	expect_digest(CHAP_ALG_SHA1, "ae35ac1694de2cf7e68e790fbface9a28501fed7");
	expect_digest(CHAP_ALG_SHA256, "024aef34e176668b34ec2bf7f5525e3bf7f0e94d7cec77cb07d08c3d5a8e23ca");
	expect_digest(CHAP_ALG_SHA3_256, "e2bd0aba5f885a39aa4fbebccc63203c2f728f034cbaf009b44c2f0c5544f172");
	uint8_t out[CHAP_MAX_DIGEST];
	assert_int_equal(chap_compute(4, 1, "x", 1, chal16, 16, out), -1);
	assert_int_equal(chap_digest_len(9), 0);
}

static void test_select(void **state)
{
	(void)state;
	assert_int_equal(chap_select_alg("5"), 5);
	assert_int_equal(chap_select_alg("7,5"), 7);
	assert_int_equal(chap_select_alg("8,7,6,5"), 8);
	assert_int_equal(chap_select_alg("1,2,6"), 6);
	assert_int_equal(chap_select_alg("x,5"), 5);
	assert_int_equal(chap_select_alg("5x"), -1);
	assert_int_equal(chap_select_alg(""), -1);
	assert_int_equal(chap_select_alg("4"), -1);
}

static void test_binary(void **state)
{
	uint8_t out[16];
	size_t len;
	(void)state;
	assert_int_equal(chap_decode_binary("0x0aff", out, sizeof(out), &len), 0);
	assert_int_equal(len, 2);
	assert_int_equal(out[0], 0x0a);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(chap_decode_binary("0xabc", out, sizeof(out), &len), 0); /* implied 0 */
	assert_int_equal(len, 2);
	assert_int_equal(out[0], 0x0a);
	assert_int_equal(out[1], 0xbc);
	assert_int_equal(chap_decode_binary("0bAAEC", out, sizeof(out), &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\x00\x01\x02", 3);
	assert_int_equal(chap_decode_binary("0bAAE=", out, sizeof(out), &len), 0);
	assert_int_equal(len, 2);
	assert_int_equal(chap_decode_binary("0x", out, sizeof(out), &len), -1);
	assert_int_equal(chap_decode_binary("0xzz", out, sizeof(out), &len), -1);
	assert_int_equal(chap_decode_binary("1234", out, sizeof(out), &len), -1);
	assert_int_equal(chap_decode_binary("0b=A", out, sizeof(out), &len), -1);
	/* overflow of the output buffer is refused, not written */
	assert_int_equal(chap_decode_binary("0x00112233445566778899aabbccddeeff00", out, 16, &len), -1);
}

static void test_one_way_and_mutual(void **state)
{
	struct chap_session cs;
	char a[8], i[8], c[2 * CHAP_CHALLENGE_LEN + 3], r[2 * CHAP_MAX_DIGEST + 3];
	uint8_t chal[CHAP_CHALLENGE_LEN], digest[CHAP_MAX_DIGEST];
	size_t len;
	(void)state;

	assert_int_equal(chap_start(&cs, "7,5", a, sizeof(a), i, sizeof(i), c, sizeof(c)), 0);
	assert_string_equal(a, "7");
	/* the initiator's side, computed with the same primitive */
	assert_int_equal(chap_decode_binary(c, chal, sizeof(chal), &len), 0);
	assert_int_equal(len, CHAP_CHALLENGE_LEN);
	assert_int_equal(chap_compute(7, (uint8_t)atoi(i), "pass123456789", 13, chal, len, digest), 0);
	chap_encode_hex(digest, 32, r);
	assert_true(chap_verify(&cs, r, "pass123456789", 13));
	assert_false(chap_verify(&cs, r, "pass12345678X", 13));
	r[5] ^= 1;
	assert_false(chap_verify(&cs, r, "pass123456789", 13));
	assert_false(chap_verify(&cs, "0x1234", "pass123456789", 13));

	/* mutual: answer the initiator's challenge with our outgoing secret */
	assert_int_equal(chap_respond(&cs, "42", "0x00010203040506070809", "outsecret", 9, r, sizeof(r)), 0);
	assert_int_equal(chap_compute(7, 42, "outsecret", 9, (const uint8_t *)"\0\1\2\3\4\5\6\7\10\11", 10, digest), 0);
	char want[2 * CHAP_MAX_DIGEST + 3];
	chap_encode_hex(digest, 32, want);
	assert_string_equal(r, want);
	/* reflection of our own challenge is refused, as are malformed values */
	assert_int_equal(chap_respond(&cs, "42", c, "outsecret", 9, r, sizeof(r)), -1);
	assert_int_equal(chap_respond(&cs, "300", "0x01", "outsecret", 9, r, sizeof(r)), -1);
	assert_int_equal(chap_respond(&cs, "x", "0x01", "outsecret", 9, r, sizeof(r)), -1);
	assert_int_equal(chap_respond(&cs, "1", "zz", "outsecret", 9, r, sizeof(r)), -1);
}

static void test_challenges_differ(void **state)
{
	struct chap_session a, b;
	char av[8], iv[8], c1[80], c2[80];
	(void)state;
	assert_int_equal(chap_start(&a, "5", av, sizeof(av), iv, sizeof(iv), c1, sizeof(c1)), 0);
	assert_int_equal(chap_start(&b, "5", av, sizeof(av), iv, sizeof(iv), c2, sizeof(c2)), 0);
	assert_string_not_equal(c1, c2);
	assert_int_equal(chap_start(&a, "1,2", av, sizeof(av), iv, sizeof(iv), c1, sizeof(c1)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_one_way_and_mutual),
		cmocka_unit_test(test_challenges_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
