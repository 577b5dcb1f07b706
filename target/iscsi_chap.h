/* iscsi_chap.h - CHAP for iSCSI login (RFC 7143 12.1.3, RFC 1994), one-way and
 * mutual, with the hash algorithms of RFC 7143 / RFC 9266-era registries:
 * MD5 (CHAP_A=5), SHA-1 (6), SHA-256 (7), SHA3-256 (8).
 *
 * Pure logic plus a CSPRNG: the login layer feeds the CHAP_* keys it received
 * and sends what these functions produce.  Secrets never reach a log. */
#ifndef RS_ISCSI_CHAP_H
#define RS_ISCSI_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum chap_alg {
	CHAP_ALG_MD5 = 5,
	CHAP_ALG_SHA1 = 6,
	CHAP_ALG_SHA256 = 7,
	CHAP_ALG_SHA3_256 = 8,
};

#define CHAP_MAX_DIGEST      32
#define CHAP_CHALLENGE_LEN   32     /* bytes of challenge we send (>= digest size) */
#define CHAP_MAX_CHALLENGE   1024   /* longest challenge we accept from an initiator */
#define CHAP_SECRET_MAX      256

/* Digest length for alg, 0 if unsupported. */
size_t chap_digest_len(int alg);
/* Choose from the initiator's CHAP_A list ("7,5" ...): the first entry we
 * support, in the initiator's order of preference (RFC 7143 6.2: the
 * responder picks the first value it supports).  Returns alg or -1. */
int chap_select_alg(const char *list);
/* H(id || secret || challenge) per RFC 1994 section 4.1.  0 or -1. */
int chap_compute(int alg, uint8_t id, const void *secret, size_t secret_len,
		 const uint8_t *challenge, size_t challenge_len, uint8_t *out);
/* RFC 7143 6.1 binary values: "0x" hex or "0b" base64.  0 or -1. */
int chap_decode_binary(const char *s, uint8_t *out, size_t max, size_t *len);
/* Encode as "0x" + lowercase hex; out needs 2*len+3 bytes. */
void chap_encode_hex(const uint8_t *in, size_t len, char *out);
/* Fill buf from the kernel CSPRNG (getrandom).  0 or -errno. */
int chap_random(void *buf, size_t len);
/* Constant-time comparison. */
bool chap_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* One login's CHAP exchange from the target's side. */
struct chap_session {
	int alg;
	uint8_t id;
	uint8_t challenge[CHAP_CHALLENGE_LEN];
	bool challenge_sent;
};

/* After CHAP_A: pick the algorithm and make a fresh identifier + challenge.
 * Writes "CHAP_A=<n>", "CHAP_I=<id>", "CHAP_C=0x..." values into the given
 * buffers.  0, or -1 when no offered algorithm is supported. */
int chap_start(struct chap_session *cs, const char *offered_algs, char *a_val, size_t a_len,
	       char *i_val, size_t i_len, char *c_val, size_t c_len);
/* Check the initiator's CHAP_R for its secret.  true when it matches. */
bool chap_verify(const struct chap_session *cs, const char *chap_r, const void *secret,
		 size_t secret_len);
/* Mutual CHAP: answer the initiator's CHAP_I/CHAP_C with our outgoing secret.
 * Refuses (-1) a challenge identical to ours (reflection attack, RFC 7143
 * 12.1.3), a malformed identifier or challenge.  Writes CHAP_R value. */
int chap_respond(const struct chap_session *cs, const char *chap_i, const char *chap_c,
		 const void *secret, size_t secret_len, char *r_val, size_t r_len);

#endif
