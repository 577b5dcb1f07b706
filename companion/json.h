/* json.h - a tiny JSON writer and a bounded DOM reader for the probe output.
 *
 * RFC 8259 subset that the companion needs: objects, arrays, strings (with
 * \uXXXX escapes, surrogate pairs decoded to UTF-8), numbers kept as their text
 * (so 64-bit sizes survive without a double round trip), true/false/null.
 * The reader rejects (never crashes on) malformed input, nesting deeper than
 * JSON_MAX_DEPTH and documents larger than JSON_MAX_TEXT.
 */
#ifndef RS_COMPANION_JSON_H
#define RS_COMPANION_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_TEXT  (16u << 20)

/* ---- growable string buffer (also used by the text printers) ---- */
struct strbuf {
	char *buf;    /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	bool oom;     /* an allocation failed: contents are truncated */
};
void sb_append(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct strbuf *sb);
/* Appends s as a quoted JSON string (RFC 8259 section 7 escapes); NULL -> "". */
void json_quote(struct strbuf *sb, const char *s);

/* ---- writer: pretty-printed, two-space indent ----
 * Inside an object pass the member name as `key`; inside an array pass NULL.
 * The writer tracks commas; misuse (key in array, too deep) sets w->error. */
struct json_writer {
	struct strbuf out;
	int depth;
	bool first[JSON_MAX_DEPTH + 1];
	bool compact[JSON_MAX_DEPTH + 1];  /* this level is written on one line */
	bool error;
};
void jw_init(struct json_writer *w);
void jw_begin_object(struct json_writer *w, const char *key);
void jw_end_object(struct json_writer *w);
void jw_begin_array(struct json_writer *w, const char *key);
void jw_end_array(struct json_writer *w);
/* An array written on one line ([1, 2, "x"]); for short lists of scalars. */
void jw_begin_array_compact(struct json_writer *w, const char *key);
void jw_string(struct json_writer *w, const char *key, const char *val); /* NULL -> null */
void jw_u64(struct json_writer *w, const char *key, uint64_t val);
void jw_i64(struct json_writer *w, const char *key, int64_t val);
void jw_bool(struct json_writer *w, const char *key, bool val);
void jw_null(struct json_writer *w, const char *key);
/* Returns the finished text (caller frees) or NULL on error/OOM; resets w. */
char *jw_finish(struct json_writer *w);

/* ---- reader ---- */
enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
	enum json_type type;
	bool b;                    /* JSON_BOOL */
	char *str;                 /* JSON_STRING (decoded) or JSON_NUMBER (text) */
	size_t n;                  /* members or elements */
	char **keys;               /* JSON_OBJECT: n keys */
	struct json_value **items; /* JSON_ARRAY/JSON_OBJECT: n values */
};

/* Parses exactly one value (surrounded by optional whitespace) from text[0..len).
 * On error returns NULL and writes "offset N: reason" into err. */
struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json_value *v);

/* Accessors: all accept NULL and the wrong type, returning NULL/false. */
const struct json_value *json_get(const struct json_value *obj, const char *key);
const struct json_value *json_at(const struct json_value *arr, size_t i);
size_t json_len(const struct json_value *arr);            /* 0 unless array/object */
const char *json_str(const struct json_value *v);          /* JSON_STRING only */
bool json_u64(const struct json_value *v, uint64_t *out);  /* non-negative integer */
bool json_i64(const struct json_value *v, int64_t *out);
bool json_bool(const struct json_value *v, bool *out);
#endif
