/* iscsi_chap.c - see iscsi_chap.h.  Hashes come from OpenSSL's libcrypto (a
 * well-kept implementation of all four algorithms, SHA3 included); randomness
 * from getrandom(2). */
#include "iscsi_chap.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const EVP_MD *chap_md(int alg)
{
	switch (alg) {
	case CHAP_ALG_MD5: return EVP_md5();
	case CHAP_ALG_SHA1: return EVP_sha1();
	case CHAP_ALG_SHA256: return EVP_sha256();
	case CHAP_ALG_SHA3_256: return EVP_sha3_256();
	default: return NULL;
	}
}

size_t chap_digest_len(int alg)
{
	switch (alg) {
	case CHAP_ALG_MD5: return 16;
	case CHAP_ALG_SHA1: return 20;
	case CHAP_ALG_SHA256: return 32;
	case CHAP_ALG_SHA3_256: return 32;
	default: return 0;
	}
}

int chap_select_alg(const char *list)
{
	const char *p = list;

	while (p && *p) {
		char *end;
		long v = strtol(p, &end, 10);
		bool clean = end != p && (*end == ',' || *end == '\0');
		if (clean && chap_digest_len((int)v))
			return (int)v;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return -1;
}

int chap_compute(int alg, uint8_t id, const void *secret, size_t secret_len,
		 const uint8_t *challenge, size_t challenge_len, uint8_t *out)
{
	const EVP_MD *md = chap_md(alg);
	EVP_MD_CTX *ctx;
	unsigned int len = 0;
	int ok;

	if (!md)
		return -1;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, &id, 1) &&
	     EVP_DigestUpdate(ctx, secret, secret_len) &&
	     EVP_DigestUpdate(ctx, challenge, challenge_len) && EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
	return ok && len == chap_digest_len(alg) ? 0 : -1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int chap_decode_binary(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = 0;

	if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'X' && s[1] != 'b' && s[1] != 'B'))
		return -1;
	if (s[1] == 'x' || s[1] == 'X') {
		const char *p = s + 2;
		size_t digits = strlen(p);
		if (digits == 0)
			return -1;
		/* RFC 7143 6.1: an odd number of hex digits has an implied leading 0. */
		if (digits % 2) {
			int v = hexval(*p++);
			if (v < 0 || n >= max)
				return -1;
			out[n++] = (uint8_t)v;
		}
		for (; *p; p += 2) {
			int hi = hexval(p[0]), lo = hexval(p[1]);
			if (hi < 0 || lo < 0 || n >= max)
				return -1;
			out[n++] = (uint8_t)(hi << 4 | lo);
		}
	} else {
		uint32_t acc = 0;
		int bits = 0, pads = 0;
		for (const char *p = s + 2; *p; p++) {
			if (*p == '=') {
				pads++;
				continue;
			}
			int v = b64val(*p);
			if (v < 0 || pads)
				return -1;
			acc = acc << 6 | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (n >= max)
					return -1;
				out[n++] = (uint8_t)(acc >> bits);
			}
		}
		if (pads > 2 || n == 0)
			return -1;
	}
	*len = n;
	return 0;
}

void chap_encode_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	*out++ = '0';
	*out++ = 'x';
	for (size_t i = 0; i < len; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 15];
	}
	*out = '\0';
}

int chap_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = getrandom(p, len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

bool chap_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	uint8_t diff = 0;
	for (size_t i = 0; i < len; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

int chap_start(struct chap_session *cs, const char *offered_algs, char *a_val, size_t a_len,
	       char *i_val, size_t i_len, char *c_val, size_t c_len)
{
	int alg = chap_select_alg(offered_algs);

	memset(cs, 0, sizeof(*cs));
	if (alg < 0 || c_len < 2 * CHAP_CHALLENGE_LEN + 3)
		return -1;
	if (chap_random(&cs->id, 1) < 0 || chap_random(cs->challenge, sizeof(cs->challenge)) < 0)
		return -1;
	cs->alg = alg;
	cs->challenge_sent = true;
	snprintf(a_val, a_len, "%d", alg);
	snprintf(i_val, i_len, "%u", cs->id);
	chap_encode_hex(cs->challenge, sizeof(cs->challenge), c_val);
	return 0;
}

bool chap_verify(const struct chap_session *cs, const char *chap_r, const void *secret,
		 size_t secret_len)
{
	uint8_t got[CHAP_MAX_DIGEST], want[CHAP_MAX_DIGEST];
	size_t got_len, dlen = chap_digest_len(cs->alg);

	if (!cs->challenge_sent || !dlen || !chap_r)
		return false;
	if (chap_decode_binary(chap_r, got, sizeof(got), &got_len) < 0 || got_len != dlen)
		return false;
	if (chap_compute(cs->alg, cs->id, secret, secret_len, cs->challenge, sizeof(cs->challenge),
			 want) < 0)
		return false;
	return chap_equal(got, want, dlen);
}

int chap_respond(const struct chap_session *cs, const char *chap_i, const char *chap_c,
		 const void *secret, size_t secret_len, char *r_val, size_t r_len)
{
	uint8_t chal[CHAP_MAX_CHALLENGE], digest[CHAP_MAX_DIGEST];
	size_t chal_len, dlen = chap_digest_len(cs->alg);
	char *end;
	long id;

	if (!chap_i || !chap_c || !dlen || r_len < 2 * dlen + 3)
		return -1;
	id = strtol(chap_i, &end, 0);
	if (end == chap_i || *end || id < 0 || id > 255)
		return -1;
	if (chap_decode_binary(chap_c, chal, sizeof(chal), &chal_len) < 0 || chal_len == 0)
		return -1;
	/* A challenge that echoes ours is a reflection attempt: the initiator
	 * would get us to compute the answer to our own challenge. */
	if (chal_len == sizeof(cs->challenge) && !memcmp(chal, cs->challenge, chal_len))
		return -1;
	if (chap_compute(cs->alg, (uint8_t)id, secret, secret_len, chal, chal_len, digest) < 0)
		return -1;
	chap_encode_hex(digest, dlen, r_val);
	return 0;
}
