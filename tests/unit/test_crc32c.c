/* test_crc32c.c - CRC32C digests (RFC 3720 B.4 vectors, RFC 7143 13.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/iscsi_pdu.h"

/* The RFC lists the digest bytes in wire order (least significant first). */
static uint32_t wire(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return (uint32_t)a | (uint32_t)b << 8 | (uint32_t)c << 16 | (uint32_t)d << 24;
}

static void check_both(const void *buf, size_t len, uint32_t expect)
{
	assert_int_equal(iscsi_crc32c(buf, len), expect);
	assert_int_equal(iscsi_crc32c_update_portable(0xffffffffu, buf, len) ^ 0xffffffffu, expect);
}

static void test_rfc3720_zeros(void **state)
{
	uint8_t b[32];

	memset(b, 0, sizeof(b));
	check_both(b, sizeof(b), wire(0xaa, 0x36, 0x91, 0x8a));
}

static void test_rfc3720_ones(void **state)
{
	uint8_t b[32];

	memset(b, 0xff, sizeof(b));
	check_both(b, sizeof(b), wire(0x43, 0xab, 0xa8, 0x62));
}

static void test_rfc3720_incrementing(void **state)
{
	uint8_t b[32];

	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	check_both(b, sizeof(b), wire(0x4e, 0x79, 0xdd, 0x46));
}

static void test_rfc3720_decrementing(void **state)
{
	uint8_t b[32];

	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	check_both(b, sizeof(b), wire(0x5c, 0xdb, 0x3f, 0x11));
}

static void test_rfc3720_read_cmd_pdu(void **state)
{
	/* RFC 3720 B.4: an iSCSI SCSI Read (10) command PDU (the BHS). */
	static const uint8_t pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};

	check_both(pdu, sizeof(pdu), wire(0x56, 0x3a, 0x96, 0xd9));
}

static void test_check_value(void **state)
{
	/* The classic CRC-32C check value of "123456789". */
	check_both("123456789", 9, 0xe3069283u);
	/* Empty input: ~(~0) = 0. */
	assert_int_equal(iscsi_crc32c("", 0), 0);
	assert_int_equal(iscsi_crc32c(NULL, 0), 0);
}

/* Bit-at-a-time reference, independent of the table construction. */
static uint32_t crc_ref(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

static void test_random_lengths_alignments(void **state)
{
	enum { N = 4096 + 64 };
	uint8_t *buf = malloc(N);
	unsigned seed = 12345;

	assert_non_null(buf);
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	/* Every alignment 0..15 and many lengths around the 8-byte steps. */
	for (size_t off = 0; off < 16; off++) {
		for (size_t len = 0; len < 80; len++)
			check_both(buf + off, len, crc_ref(buf + off, len));
		check_both(buf + off, 4096, crc_ref(buf + off, 4096));
		check_both(buf + off, 4093, crc_ref(buf + off, 4093));
	}
	free(buf);
}

static void test_incremental(void **state)
{
	uint8_t buf[1000];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	uint32_t whole = iscsi_crc32c(buf, sizeof(buf));

	/* A digest over BHS+AHS or over data+padding is computed in pieces
	 * by the connection layer: any split must give the same result. */
	for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
		uint32_t c = iscsi_crc32c_update(0xffffffffu, buf, cut);

		c = iscsi_crc32c_update(c, buf + cut, sizeof(buf) - cut);
		assert_int_equal(c ^ 0xffffffffu, whole);
		c = iscsi_crc32c_update_portable(0xffffffffu, buf, cut);
		c = iscsi_crc32c_update(c, buf + cut, sizeof(buf) - cut);
		assert_int_equal(c ^ 0xffffffffu, whole);
	}
	/* A one-bit change must change the digest. */
	buf[500] ^= 0x10;
	assert_int_not_equal(iscsi_crc32c(buf, sizeof(buf)), whole);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3720_zeros),
		cmocka_unit_test(test_rfc3720_ones),
		cmocka_unit_test(test_rfc3720_incrementing),
		cmocka_unit_test(test_rfc3720_decrementing),
		cmocka_unit_test(test_rfc3720_read_cmd_pdu),
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_random_lengths_alignments),
		cmocka_unit_test(test_incremental),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
