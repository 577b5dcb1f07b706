/* fingerprint.c - see fingerprint.h. */
#include "companion/fingerprint.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sample_plan_make(uint64_t size, struct sample_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->size = size;
	if (size == 0)
		return;
	if (size <= FP_WHOLE_MAX) {
		/* Small image: hash every byte. */
		for (uint64_t off = 0; off < size; off += FP_SAMPLE_LEN) {
			p->off[p->n] = off;
			p->len[p->n] = (uint32_t)(size - off < FP_SAMPLE_LEN ? size - off : FP_SAMPLE_LEN);
			p->n++;
		}
		return;
	}
	/* First block, FP_SPREAD evenly spaced aligned samples, last block.
	 * size > 66 * 64 KiB, so consecutive samples never overlap: the gap
	 * between spread points is (size - L) / 65 > L. */
	uint64_t span = size - FP_SAMPLE_LEN;
	p->off[p->n] = 0;
	p->len[p->n++] = FP_SAMPLE_LEN;
	for (unsigned i = 1; i <= FP_SPREAD; i++) {
		uint64_t o = (uint64_t)((unsigned __int128)span * i / (FP_SPREAD + 1));
		o -= o % FP_ALIGN;
		p->off[p->n] = o;
		p->len[p->n++] = FP_SAMPLE_LEN;
	}
	p->off[p->n] = span;
	p->len[p->n++] = FP_SAMPLE_LEN;
}

void sample_plan_describe(const struct sample_plan *p, char *buf, size_t len)
{
	if (p->size <= FP_WHOLE_MAX)
		snprintf(buf, len, "sha256-v%d size=%llu whole image in %u-byte chunks (%u)",
			 FP_PLAN_VERSION, (unsigned long long)p->size, FP_SAMPLE_LEN, p->n);
	else
		snprintf(buf, len, "sha256-v%d size=%llu first+%u even(align %u)+last x %u bytes (%u)",
			 FP_PLAN_VERSION, (unsigned long long)p->size, FP_SPREAD, FP_ALIGN,
			 FP_SAMPLE_LEN, p->n);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int fp_run(uint64_t size, fp_read_fn rd, void *ctx, struct fingerprint *fp, char *err, size_t errlen)
{
	memset(fp, 0, sizeof(*fp));
	sample_plan_make(size, &fp->sp);
	sample_plan_describe(&fp->sp, fp->plan, sizeof(fp->plan));
	unsigned char *buf = malloc(FP_SAMPLE_LEN);
	EVP_MD_CTX *all = EVP_MD_CTX_new();
	EVP_MD_CTX *one = EVP_MD_CTX_new();
	int ret = -1;
	if (!buf || !all || !one || !EVP_DigestInit_ex(all, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < fp->sp.n; i++) {
		uint64_t off = fp->sp.off[i];
		uint32_t len = fp->sp.len[i];
		if (rd(ctx, buf, len, off, err, errlen) < 0)
			goto out;
		unsigned char hdr[12], md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		for (int b = 0; b < 8; b++)
			hdr[b] = (unsigned char)(off >> (56 - 8 * b));
		for (int b = 0; b < 4; b++)
			hdr[8 + b] = (unsigned char)(len >> (24 - 8 * b));
		if (!EVP_DigestUpdate(all, hdr, sizeof(hdr)) || !EVP_DigestUpdate(all, buf, len) ||
		    !EVP_DigestInit_ex(one, EVP_sha256(), NULL) || !EVP_DigestUpdate(one, buf, len) ||
		    !EVP_DigestFinal_ex(one, md, &mdlen)) {
			snprintf(err, errlen, "SHA-256 failed");
			goto out;
		}
		hex(md, 8, fp->sample[i]);
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_DigestFinal_ex(all, md, &mdlen) || mdlen != 32) {
		snprintf(err, errlen, "SHA-256 failed");
		goto out;
	}
	hex(md, 32, fp->sha256);
	fp->valid = true;
	ret = 0;
out:
	EVP_MD_CTX_free(all);
	EVP_MD_CTX_free(one);
	free(buf);
	return ret;
}

int fingerprint_compute(uint64_t size, fp_read_fn rd, void *ctx, struct fingerprint *fp,
			char *err, size_t errlen)
{
	return fp_run(size, rd, ctx, fp, err, errlen);
}

struct membuf {
	const unsigned char *p;
	uint64_t size;
};

static int mem_read(void *ctx, void *buf, uint32_t len, uint64_t off, char *err, size_t errlen)
{
	struct membuf *m = ctx;
	if (off > m->size || len > m->size - off) {
		snprintf(err, errlen, "read beyond the end");
		return -1;
	}
	memcpy(buf, m->p + off, len);
	return 0;
}

int fingerprint_buffer(const void *buf, uint64_t size, struct fingerprint *fp)
{
	struct membuf m = { buf, size };
	char err[64];
	return fp_run(size, mem_read, &m, fp, err, sizeof(err));
}

unsigned fingerprint_diff(const struct fingerprint *a, const struct fingerprint *b, uint64_t *first)
{
	if (a->sp.size != b->sp.size || a->sp.n != b->sp.n)
		return UINT_MAX;
	unsigned n = 0;
	for (unsigned i = 0; i < a->sp.n; i++) {
		if (a->sp.off[i] != b->sp.off[i] || a->sp.len[i] != b->sp.len[i])
			return UINT_MAX;
		if (strcmp(a->sample[i], b->sample[i]) != 0) {
			if (n == 0 && first)
				*first = a->sp.off[i];
			n++;
		}
	}
	return n;
}
