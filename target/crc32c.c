/* crc32c.c - CRC32C (Castagnoli) for iSCSI header and data digests.
 *
 * RFC 7143 13.1 (HeaderDigest/DataDigest "CRC32C") and RFC 3720 B.4 define
 * the digest: polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value
 * all ones, final complement, bits reflected.  The 32-bit result is sent
 * least significant byte first, which is why RFC 3720 B.4 lists the CRC of 32
 * zero bytes as "aa 36 91 8a" for the value 0x8a9136aa.
 *
 * Two implementations with identical results:
 *   - x86-64 with SSE4.2: the crc32 instruction (8 bytes per step), chosen at
 *     run time with __builtin_cpu_supports(), so one binary runs everywhere;
 *   - portable slicing-by-8 tables (8 bytes per step, 8 KiB of tables).
 * The tables are built by a constructor before main(), so the hot path has
 * no lazy-init race between reactor threads.
 */
#include <stdint.h>
#include <string.h>

#include "iscsi_pdu.h"

#define CRC32C_POLY_REFLECTED 0x82f63b78u

static uint32_t crc_tab[8][256];
static uint32_t (*crc_impl)(uint32_t crc, const uint8_t *p, size_t len);

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	/* Byte-wise until 8-aligned so the 8-byte loads below are aligned. */
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		/* Little-endian assembly of the two words keeps this
		 * endian-independent (no type punning, no aliasing issue). */
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
			      (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		      crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		      crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		      crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_CRC32C_HW 1
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);  /* x86 is little-endian: matches the reflected CRC */
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

__attribute__((constructor))
static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = crc_tab[0][crc_tab[t - 1][i] & 0xff] ^ (crc_tab[t - 1][i] >> 8);
	crc_impl = crc32c_sw;
#ifdef HAVE_CRC32C_HW
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc_impl = crc32c_hw;
#endif
}

uint32_t iscsi_crc32c_update(uint32_t crc, const void *data, size_t len)
{
	if (!len)
		return crc;
	/* Only reachable from another constructor running before ours (still
	 * single-threaded then); initialisation is idempotent. */
	if (__builtin_expect(!crc_impl, 0))
		crc32c_init();
	return crc_impl(crc, data, len);
}

uint32_t iscsi_crc32c(const void *data, size_t len)
{
	return iscsi_crc32c_update(0xffffffffu, data, len) ^ 0xffffffffu;
}

uint32_t iscsi_crc32c_update_portable(uint32_t crc, const void *data, size_t len)
{
	if (!len)
		return crc;
	if (__builtin_expect(!crc_impl, 0))
		crc32c_init();
	return crc32c_sw(crc, data, len);
}
