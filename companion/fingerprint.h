/* fingerprint.h - content fingerprint of a disk image from sampled blocks.
 *
 * Both hosts must hash the same byte ranges, so the sample plan is a pure
 * function of the image size (and the plan version): images of up to
 * FP_WHOLE_MAX bytes are hashed completely in FP_SAMPLE_LEN chunks; larger ones
 * as the first FP_SAMPLE_LEN bytes, FP_SPREAD samples spread evenly between
 * (FP_ALIGN-aligned) and the last FP_SAMPLE_LEN bytes.  The plan is printed
 * with the result so a human can check it.
 *
 * Digest: SHA-256 over, for each sample in order, its offset (8 bytes, big
 * endian), its length (4 bytes, big endian) and its bytes.  Each sample also
 * gets a short hash of its own so a mismatch can say how much differs.
 */
#ifndef RS_COMPANION_FINGERPRINT_H
#define RS_COMPANION_FINGERPRINT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_PLAN_VERSION 1
#define FP_SAMPLE_LEN   65536u
#define FP_SPREAD       64u
#define FP_MAX_SAMPLES  (FP_SPREAD + 2u)
#define FP_ALIGN        4096u
#define FP_WHOLE_MAX    ((uint64_t)FP_MAX_SAMPLES * FP_SAMPLE_LEN)

struct sample_plan {
	uint64_t size;
	unsigned n;
	uint64_t off[FP_MAX_SAMPLES];
	uint32_t len[FP_MAX_SAMPLES];
};

struct fingerprint {
	bool valid;
	char plan[128];                         /* sample_plan_describe() */
	struct sample_plan sp;
	char sample[FP_MAX_SAMPLES][17];        /* first 8 bytes of SHA-256(sample), hex */
	char sha256[65];
};

/* Reads exactly len bytes at off into buf; 0 on success, -1 with err set. */
typedef int (*fp_read_fn)(void *ctx, void *buf, uint32_t len, uint64_t off, char *err, size_t errlen);

void sample_plan_make(uint64_t size, struct sample_plan *p);
void sample_plan_describe(const struct sample_plan *p, char *buf, size_t len);
/* Fills fp from the image through rd; 0 on success, -1 with err set. */
int fingerprint_compute(uint64_t size, fp_read_fn rd, void *ctx, struct fingerprint *fp,
			char *err, size_t errlen);
/* Hashes samples already in memory (image = buf[0..size)); used by tests. */
int fingerprint_buffer(const void *buf, uint64_t size, struct fingerprint *fp);
/* Number of samples whose short hashes differ (plans must be equal; if
 * they are not, returns UINT_MAX); *first gets the offset of the first one. */
unsigned fingerprint_diff(const struct fingerprint *a, const struct fingerprint *b, uint64_t *first);
#endif
