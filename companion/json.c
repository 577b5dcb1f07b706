/* json.c - see json.h.  Hand-written so the companion needs no JSON library. */
#include "companion/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ strbuf */

static bool sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->oom)
		return false;
	if (extra > SIZE_MAX / 2 - sb->len) {
		sb->oom = true;
		return false;
	}
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return true;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	char *nb = realloc(sb->buf, cap);
	if (!nb) {
		sb->oom = true;
		return false;
	}
	sb->buf = nb;
	sb->cap = cap;
	return true;
}

void sb_append(struct strbuf *sb, const char *s, size_t n)
{
	if (!sb_reserve(sb, n))
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	memset(sb, 0, sizeof(*sb));
}

/* ------------------------------------------------------------------ writer */

void jw_init(struct json_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->first[0] = true;
}

static void jw_indent(struct json_writer *w)
{
	sb_puts(&w->out, "\n");
	for (int i = 0; i < w->depth; i++)
		sb_puts(&w->out, "  ");
}

static void jw_quoted(struct strbuf *sb, const char *s)
{
	sb_puts(sb, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': sb_puts(sb, "\\\""); break;
		case '\\': sb_puts(sb, "\\\\"); break;
		case '\n': sb_puts(sb, "\\n"); break;
		case '\r': sb_puts(sb, "\\r"); break;
		case '\t': sb_puts(sb, "\\t"); break;
		default:
			/* RFC 8259 section 7: control characters must be escaped. */
			if (*p < 0x20)
				sb_printf(sb, "\\u%04x", *p);
			else
				sb_append(sb, (const char *)p, 1);
		}
	}
	sb_puts(sb, "\"");
}

void json_quote(struct strbuf *sb, const char *s)
{
	jw_quoted(sb, s ? s : "");
}

/* Emits the separator, indentation and "key": for the next value. */
static void jw_prefix(struct json_writer *w, const char *key)
{
	if (w->depth == 0) {
		if (!w->first[0] || key)
			w->error = true; /* only one top-level value, without a key */
		w->first[0] = false;
		return;
	}
	bool was_first = w->first[w->depth];
	w->first[w->depth] = false;
	if (w->compact[w->depth]) {
		if (!was_first)
			sb_puts(&w->out, ", ");
	} else {
		if (!was_first)
			sb_puts(&w->out, ",");
		jw_indent(w);
	}
	if (key) {
		jw_quoted(&w->out, key);
		sb_puts(&w->out, ": ");
	}
}

static void jw_open(struct json_writer *w, const char *key, const char *brace, bool compact)
{
	jw_prefix(w, key);
	sb_puts(&w->out, brace);
	if (w->depth >= JSON_MAX_DEPTH) {
		w->error = true;
		return;
	}
	/* inside a one-line array everything stays on that line */
	compact = compact || w->compact[w->depth];
	w->depth++;
	w->first[w->depth] = true;
	w->compact[w->depth] = compact;
}

static void jw_close(struct json_writer *w, const char *brace)
{
	if (w->depth <= 0) {
		w->error = true;
		return;
	}
	bool empty = w->first[w->depth], compact = w->compact[w->depth];
	w->depth--;
	if (!empty && !compact)
		jw_indent(w);
	sb_puts(&w->out, brace);
}

void jw_begin_object(struct json_writer *w, const char *key) { jw_open(w, key, "{", false); }
void jw_end_object(struct json_writer *w) { jw_close(w, "}"); }
void jw_begin_array(struct json_writer *w, const char *key) { jw_open(w, key, "[", false); }
void jw_begin_array_compact(struct json_writer *w, const char *key) { jw_open(w, key, "[", true); }
void jw_end_array(struct json_writer *w) { jw_close(w, "]"); }

void jw_string(struct json_writer *w, const char *key, const char *val)
{
	jw_prefix(w, key);
	if (val)
		jw_quoted(&w->out, val);
	else
		sb_puts(&w->out, "null");
}

void jw_u64(struct json_writer *w, const char *key, uint64_t val)
{
	jw_prefix(w, key);
	sb_printf(&w->out, "%" PRIu64, val);
}

void jw_i64(struct json_writer *w, const char *key, int64_t val)
{
	jw_prefix(w, key);
	sb_printf(&w->out, "%" PRId64, val);
}

void jw_bool(struct json_writer *w, const char *key, bool val)
{
	jw_prefix(w, key);
	sb_puts(&w->out, val ? "true" : "false");
}

void jw_null(struct json_writer *w, const char *key)
{
	jw_prefix(w, key);
	sb_puts(&w->out, "null");
}

char *jw_finish(struct json_writer *w)
{
	char *r = NULL;
	if (!w->error && !w->out.oom && w->depth == 0 && !w->first[0]) {
		sb_puts(&w->out, "\n");
		if (!w->out.oom) {
			r = w->out.buf;
			w->out.buf = NULL;
		}
	}
	sb_free(&w->out);
	jw_init(w);
	return r;
}

/* ------------------------------------------------------------------ reader */

struct jparser {
	const char *p, *end, *start;
	char *err;
	size_t errlen;
	bool failed;
};

static void jfail(struct jparser *ps, const char *why)
{
	if (ps->failed)
		return;
	ps->failed = true;
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "offset %zu: %s", (size_t)(ps->p - ps->start), why);
}

static void jskip_ws(struct jparser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool jhex4(struct jparser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4) {
		jfail(ps, "truncated \\u escape");
		return false;
	}
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);
		if (h < 0) {
			jfail(ps, "bad \\u escape");
			return false;
		}
		v = v << 4 | (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static void put_utf8(struct strbuf *sb, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sb_append(sb, b, n);
}

/* Parses a string starting at the opening quote; returns malloc'd text. */
static char *jstring(struct jparser *ps)
{
	struct strbuf sb = {0};
	ps->p++; /* opening quote */
	sb_append(&sb, "", 0);
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			if (sb.oom) {
				jfail(ps, "out of memory");
				break;
			}
			return sb.buf;
		}
		if (c < 0x20) {
			jfail(ps, "control character in string");
			break;
		}
		if (c != '\\') {
			sb_append(&sb, ps->p, 1);
			ps->p++;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end) {
			jfail(ps, "truncated escape");
			break;
		}
		char e = *ps->p++;
		unsigned cp;
		switch (e) {
		case '"': sb_puts(&sb, "\""); break;
		case '\\': sb_puts(&sb, "\\"); break;
		case '/': sb_puts(&sb, "/"); break;
		case 'b': sb_puts(&sb, "\b"); break;
		case 'f': sb_puts(&sb, "\f"); break;
		case 'n': sb_puts(&sb, "\n"); break;
		case 'r': sb_puts(&sb, "\r"); break;
		case 't': sb_puts(&sb, "\t"); break;
		case 'u':
			if (!jhex4(ps, &cp))
				goto out;
			/* RFC 8259 section 7: characters outside the BMP arrive as a
			 * UTF-16 surrogate pair; a lone surrogate is rejected. */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
					jfail(ps, "lone high surrogate");
					goto out;
				}
				ps->p += 2;
				if (!jhex4(ps, &lo))
					goto out;
				if (lo < 0xdc00 || lo > 0xdfff) {
					jfail(ps, "bad low surrogate");
					goto out;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				jfail(ps, "lone low surrogate");
				goto out;
			}
			if (cp == 0) {
				jfail(ps, "NUL in string");
				goto out;
			}
			put_utf8(&sb, cp);
			break;
		default:
			jfail(ps, "bad escape");
			goto out;
		}
	}
	jfail(ps, "unterminated string");
out:
	sb_free(&sb);
	return NULL;
}

static char *jnumber(struct jparser *ps)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
		jfail(ps, "bad number");
		return NULL;
	}
	if (*ps->p == '0')
		ps->p++;
	else
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			jfail(ps, "bad fraction");
			return NULL;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			jfail(ps, "bad exponent");
			return NULL;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	char *r = strndup(s, (size_t)(ps->p - s));
	if (!r)
		jfail(ps, "out of memory");
	return r;
}

static bool jliteral(struct jparser *ps, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) {
		jfail(ps, "unexpected token");
		return false;
	}
	ps->p += n;
	return true;
}

static bool jpush(struct json_value *v, char *key, struct json_value *item)
{
	if (v->n >= 1u << 20)
		return false;
	struct json_value **ni = realloc(v->items, (v->n + 1) * sizeof(*ni));
	if (!ni)
		return false;
	v->items = ni;
	if (v->type == JSON_OBJECT) {
		char **nk = realloc(v->keys, (v->n + 1) * sizeof(*nk));
		if (!nk)
			return false;
		v->keys = nk;
		v->keys[v->n] = key;
	}
	v->items[v->n++] = item;
	return true;
}

static struct json_value *jvalue(struct jparser *ps, int depth)
{
	jskip_ws(ps);
	if (ps->p >= ps->end) {
		jfail(ps, "unexpected end of input");
		return NULL;
	}
	if (depth > JSON_MAX_DEPTH) {
		jfail(ps, "nested too deeply");
		return NULL;
	}
	struct json_value *v = calloc(1, sizeof(*v));
	if (!v) {
		jfail(ps, "out of memory");
		return NULL;
	}
	char c = *ps->p;
	if (c == '{' || c == '[') {
		bool obj = c == '{';
		char close = obj ? '}' : ']';
		v->type = obj ? JSON_OBJECT : JSON_ARRAY;
		ps->p++;
		jskip_ws(ps);
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return v;
		}
		for (;;) {
			char *key = NULL;
			if (obj) {
				jskip_ws(ps);
				if (ps->p >= ps->end || *ps->p != '"') {
					jfail(ps, "expected member name");
					goto bad;
				}
				key = jstring(ps);
				if (!key)
					goto bad;
				jskip_ws(ps);
				if (ps->p >= ps->end || *ps->p != ':') {
					free(key);
					jfail(ps, "expected ':'");
					goto bad;
				}
				ps->p++;
			}
			struct json_value *item = jvalue(ps, depth + 1);
			if (!item) {
				free(key);
				goto bad;
			}
			if (!jpush(v, key, item)) {
				free(key);
				json_free(item);
				jfail(ps, "out of memory");
				goto bad;
			}
			jskip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == close) {
				ps->p++;
				return v;
			}
			jfail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
			goto bad;
		}
	} else if (c == '"') {
		v->type = JSON_STRING;
		v->str = jstring(ps);
		if (!v->str)
			goto bad;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		v->type = JSON_NUMBER;
		v->str = jnumber(ps);
		if (!v->str)
			goto bad;
	} else if (c == 't') {
		v->type = JSON_BOOL;
		v->b = true;
		if (!jliteral(ps, "true"))
			goto bad;
	} else if (c == 'f') {
		v->type = JSON_BOOL;
		if (!jliteral(ps, "false"))
			goto bad;
	} else if (c == 'n') {
		v->type = JSON_NULL;
		if (!jliteral(ps, "null"))
			goto bad;
	} else {
		jfail(ps, "unexpected character");
		goto bad;
	}
	return v;
bad:
	json_free(v);
	return NULL;
}

struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct jparser ps = { .p = text, .end = text + len, .start = text, .err = err, .errlen = errlen };
	if (err && errlen)
		err[0] = '\0';
	if (!text || len > JSON_MAX_TEXT) {
		jfail(&ps, "document missing or too large");
		return NULL;
	}
	struct json_value *v = jvalue(&ps, 0);
	if (!v)
		return NULL;
	jskip_ws(&ps);
	if (ps.p != ps.end) {
		jfail(&ps, "trailing data after the value");
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct json_value *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT || !key)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

const struct json_value *json_at(const struct json_value *arr, size_t i)
{
	if (!arr || arr->type != JSON_ARRAY || i >= arr->n)
		return NULL;
	return arr->items[i];
}

size_t json_len(const struct json_value *arr)
{
	if (!arr || (arr->type != JSON_ARRAY && arr->type != JSON_OBJECT))
		return 0;
	return arr->n;
}

const char *json_str(const struct json_value *v)
{
	return v && v->type == JSON_STRING ? v->str : NULL;
}

bool json_u64(const struct json_value *v, uint64_t *out)
{
	if (!v || v->type != JSON_NUMBER || !v->str || v->str[0] == '-')
		return false;
	for (const char *p = v->str; *p; p++)
		if (*p < '0' || *p > '9')
			return false; /* fractions/exponents are not integers here */
	errno = 0;
	unsigned long long x = strtoull(v->str, NULL, 10);
	if (errno)
		return false;
	*out = x;
	return true;
}

bool json_i64(const struct json_value *v, int64_t *out)
{
	if (!v || v->type != JSON_NUMBER || !v->str)
		return false;
	for (const char *p = v->str + (v->str[0] == '-'); *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	long long x = strtoll(v->str, NULL, 10);
	if (errno)
		return false;
	*out = x;
	return true;
}

bool json_bool(const struct json_value *v, bool *out)
{
	if (!v || v->type != JSON_BOOL)
		return false;
	*out = v->b;
	return true;
}
