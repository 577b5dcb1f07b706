/* xdr.h - minimal bounds-checked XDR (RFC 4506) cursors for hand-encoded
 * protocols (RPC headers, portmapper, MOUNT).
 *
 * Decoding never reads past the end: every getter checks the remaining length
 * first and, on underflow, sets d->err and returns 0/NULL, so a caller can
 * decode a whole structure and test err once at the end.  Encoding likewise
 * sets e->err instead of writing past the buffer.
 */
#ifndef RS_XDR_H
#define RS_XDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct xdr_dec {
	const uint8_t *p, *end;
	bool err;
};

struct xdr_enc {
	uint8_t *p, *start, *end;
	bool err;
};

static inline void xdr_dec_init(struct xdr_dec *d, const void *buf, size_t len)
{
	d->p = buf;
	d->end = d->p + len;
	d->err = false;
}

static inline size_t xdr_dec_left(const struct xdr_dec *d)
{
	return (size_t)(d->end - d->p);
}

static inline uint32_t xdr_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void xdr_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t xdr_get_u32(struct xdr_dec *d)
{
	uint32_t v;

	if (d->err || xdr_dec_left(d) < 4) {
		d->err = true;
		return 0;
	}
	v = xdr_be32(d->p);
	d->p += 4;
	return v;
}

static inline uint64_t xdr_get_u64(struct xdr_dec *d)
{
	uint64_t hi = xdr_get_u32(d);
	return hi << 32 | xdr_get_u32(d);
}

/* Variable-length opaque<max> (RFC 4506 4.10): length, bytes, padding. */
static inline const uint8_t *xdr_get_opaque(struct xdr_dec *d, uint32_t *len, uint32_t max)
{
	uint32_t n = xdr_get_u32(d);
	size_t padded;
	const uint8_t *p;

	if (d->err || n > max) {
		d->err = true;
		*len = 0;
		return NULL;
	}
	padded = ((size_t)n + 3) & ~(size_t)3;
	if (xdr_dec_left(d) < padded) {
		d->err = true;
		*len = 0;
		return NULL;
	}
	p = d->p;
	d->p += padded;
	*len = n;
	return p;
}

/* string<max> into a NUL-terminated buffer of cap bytes (cap > max).  A string
 * with an embedded NUL is refused: paths and names never contain one. */
static inline void xdr_get_string(struct xdr_dec *d, char *buf, size_t cap, uint32_t max)
{
	uint32_t n;
	const uint8_t *p = xdr_get_opaque(d, &n, max);

	if (!p || (size_t)n >= cap || memchr(p, 0, n)) {
		d->err = true;
		if (cap)
			buf[0] = '\0';
		return;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static inline void xdr_enc_init(struct xdr_enc *e, void *buf, size_t len)
{
	e->p = e->start = buf;
	e->end = e->p + len;
	e->err = false;
}

static inline size_t xdr_enc_len(const struct xdr_enc *e)
{
	return (size_t)(e->p - e->start);
}

static inline void xdr_put_u32(struct xdr_enc *e, uint32_t v)
{
	if (e->err || (size_t)(e->end - e->p) < 4) {
		e->err = true;
		return;
	}
	xdr_put_be32(e->p, v);
	e->p += 4;
}

static inline void xdr_put_u64(struct xdr_enc *e, uint64_t v)
{
	xdr_put_u32(e, (uint32_t)(v >> 32));
	xdr_put_u32(e, (uint32_t)v);
}

static inline void xdr_put_opaque(struct xdr_enc *e, const void *data, uint32_t len)
{
	size_t padded = ((size_t)len + 3) & ~(size_t)3;

	xdr_put_u32(e, len);
	if (e->err || (size_t)(e->end - e->p) < padded) {
		e->err = true;
		return;
	}
	if (len)
		memcpy(e->p, data, len);
	memset(e->p + len, 0, padded - len);
	e->p += padded;
}

static inline void xdr_put_string(struct xdr_enc *e, const char *s)
{
	xdr_put_opaque(e, s, (uint32_t)strlen(s));
}

#endif
