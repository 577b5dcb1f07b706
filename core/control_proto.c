/* control_proto.c - encode/decode of the control socket protocol
 * (see control_proto.h for the grammar).  Pure functions, unit tested with
 * malformed input: the daemon decodes bytes from any local root process. */
#include "control_proto.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct { const char *name; enum ctl_mode m; } mode_names[] = {
	{ "target", CTL_MODE_TARGET },
	{ "logicalunit", CTL_MODE_LU },
	{ "lu", CTL_MODE_LU },
	{ "system", CTL_MODE_SYS },
	{ "sys", CTL_MODE_SYS },
	{ "conn", CTL_MODE_CONN },
	{ "connection", CTL_MODE_CONN },
	{ "session", CTL_MODE_SESSION },
	{ "account", CTL_MODE_ACCOUNT },
	{ "export", CTL_MODE_EXPORT },
	{ "lock", CTL_MODE_LOCK },
	{ "lease", CTL_MODE_LEASE },
};

static const struct { const char *name; enum ctl_op o; } op_names[] = {
	{ "new", CTL_OP_NEW },
	{ "delete", CTL_OP_DELETE },
	{ "show", CTL_OP_SHOW },
	{ "bind", CTL_OP_BIND },
	{ "unbind", CTL_OP_UNBIND },
	{ "update", CTL_OP_UPDATE },
	{ "dump", CTL_OP_DUMP },
	{ "acquire", CTL_OP_ACQUIRE },
	{ "transfer", CTL_OP_TRANSFER },
	{ "release", CTL_OP_RELEASE },
	{ "stat", CTL_OP_STAT },
	{ "stats", CTL_OP_STAT },
};

enum ctl_mode ctl_mode_parse(const char *s)
{
	if (!s)
		return CTL_MODE_NONE;
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcasecmp(s, mode_names[i].name) == 0)
			return mode_names[i].m;
	return CTL_MODE_NONE;
}

enum ctl_op ctl_op_parse(const char *s)
{
	if (!s)
		return CTL_OP_NONE;
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcasecmp(s, op_names[i].name) == 0)
			return op_names[i].o;
	return CTL_OP_NONE;
}

const char *ctl_mode_name(enum ctl_mode m)
{
	switch (m) {
	case CTL_MODE_TARGET: return "target";
	case CTL_MODE_LU: return "logicalunit";
	case CTL_MODE_SYS: return "system";
	case CTL_MODE_CONN: return "conn";
	case CTL_MODE_SESSION: return "session";
	case CTL_MODE_ACCOUNT: return "account";
	case CTL_MODE_EXPORT: return "export";
	case CTL_MODE_LOCK: return "lock";
	case CTL_MODE_LEASE: return "lease";
	default: return "none";
	}
}

const char *ctl_op_name(enum ctl_op o)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op_names[i].o == o)
			return op_names[i].name;
	return "none";
}

void ctl_request_init(struct ctl_request *r)
{
	memset(r, 0, sizeof(*r));
}

/* ---- encoding ---- */

struct obuf {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void ob_putc(struct obuf *o, char c)
{
	if (o->len + 1 >= o->cap) {
		o->overflow = true;
		return;
	}
	o->p[o->len++] = c;
	o->p[o->len] = '\0';
}

static void ob_puts(struct obuf *o, const char *s)
{
	while (*s)
		ob_putc(o, *s++);
}

static bool needs_escape(unsigned char c)
{
	return c == '%' || c < 0x20 || c == 0x7f;
}

static void ob_kv(struct obuf *o, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";

	ob_puts(o, key);
	ob_putc(o, '=');
	for (const unsigned char *s = (const unsigned char *)val; *s; s++) {
		if (needs_escape(*s)) {
			ob_putc(o, '%');
			ob_putc(o, hex[*s >> 4]);
			ob_putc(o, hex[*s & 15]);
		} else {
			ob_putc(o, (char)*s);
		}
	}
	ob_putc(o, '\n');
}

static void ob_kv_u64(struct obuf *o, const char *key, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	ob_kv(o, key, num);
}

int ctl_request_encode(const struct ctl_request *r, char *buf, size_t len)
{
	struct obuf o = { .p = buf, .len = 0, .cap = len };

	if (!buf || len == 0)
		return -1;
	buf[0] = '\0';
	ob_puts(&o, CTL_MAGIC "\n");
	if (r->mode != CTL_MODE_NONE)
		ob_kv(&o, "mode", ctl_mode_name(r->mode));
	if (r->op != CTL_OP_NONE)
		ob_kv(&o, "op", ctl_op_name(r->op));
	if (r->has_tid)
		ob_kv_u64(&o, "tid", (uint64_t)(unsigned)r->tid);
	if (r->has_lun)
		ob_kv_u64(&o, "lun", r->lun);
	if (r->has_sid)
		ob_kv_u64(&o, "sid", r->sid);
	if (r->has_cid)
		ob_kv_u64(&o, "cid", r->cid);
	if (r->has_blocksize)
		ob_kv_u64(&o, "blocksize", r->blocksize);
	if (r->force)
		ob_kv(&o, "force", "1");
	if (r->json)
		ob_kv(&o, "json", "1");
	if (r->outgoing)
		ob_kv(&o, "outgoing", "1");
	if (r->targetname[0])
		ob_kv(&o, "targetname", r->targetname);
	if (r->backing_store[0])
		ob_kv(&o, "backing-store", r->backing_store);
	if (r->bstype[0])
		ob_kv(&o, "bstype", r->bstype);
	if (r->initiator_address[0])
		ob_kv(&o, "initiator-address", r->initiator_address);
	if (r->initiator_name[0])
		ob_kv(&o, "initiator-name", r->initiator_name);
	if (r->params[0])
		ob_kv(&o, "params", r->params);
	if (r->user[0])
		ob_kv(&o, "user", r->user);
	if (r->password[0])
		ob_kv(&o, "password", r->password);
	if (r->has_export_id)
		ob_kv_u64(&o, "export-id", r->export_id);
	if (r->path[0])
		ob_kv(&o, "path", r->path);
	if (r->clients[0])
		ob_kv(&o, "clients", r->clients);
	if (r->export_line[0])
		ob_kv(&o, "export", r->export_line);
	if (r->holder[0])
		ob_kv(&o, "holder", r->holder);
	if (r->has_epoch)
		ob_kv_u64(&o, "epoch", r->epoch);
	if (r->file[0])
		ob_kv(&o, "file", r->file);
	ob_putc(&o, '\n');
	if (o.overflow)
		return -1;
	return (int)o.len;
}

/* ---- decoding ---- */

size_t ctl_request_complete(const char *buf, size_t len)
{
	for (size_t i = 1; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\n')
			return i + 1;
	return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, a);
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

/* Percent-decode [s, s+n) into out (cap bytes incl. NUL).  Rejects a decoded
 * NUL (it would silently truncate a path) and bad escapes. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0)
				return -1;
			i += 2;
		} else if (c < 0x20 || c == 0x7f) {
			return -1;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

enum { F_MODE, F_OP, F_TID, F_LUN, F_SID, F_BS, F_FORCE, F_JSON, F_TNAME, F_BSTORE,
       F_BSTYPE, F_IADDR, F_INAME, F_PARAMS, F_CID, F_OUTGOING, F_USER, F_PASSWORD,
       F_EXPORT_ID, F_PATH, F_CLIENTS, F_EXPORT, F_HOLDER, F_EPOCH, F_FILE, F_COUNT };

static const char *const field_names[F_COUNT] = {
	"mode", "op", "tid", "lun", "sid", "blocksize", "force", "json", "targetname",
	"backing-store", "bstype", "initiator-address", "initiator-name", "params",
	"cid", "outgoing", "user", "password", "export-id", "path", "clients", "export",
	"holder", "epoch", "file",
};

int ctl_request_decode(const char *buf, size_t len, struct ctl_request *r,
		       char *err, size_t errlen)
{
	char val[CTL_LINE_MAX];
	bool seen[F_COUNT] = { false };
	size_t pos, mlen = strlen(CTL_MAGIC);

	ctl_request_init(r);
	if (!buf || len > CTL_REQ_MAX) {
		set_err(err, errlen, "request too large%s", "");
		return -1;
	}
	if (memchr(buf, '\0', len)) {
		set_err(err, errlen, "NUL byte in request%s", "");
		return -1;
	}
	if (len < mlen + 1 || memcmp(buf, CTL_MAGIC, mlen) != 0 || buf[mlen] != '\n') {
		set_err(err, errlen, "bad protocol header (expected '%s')", CTL_MAGIC);
		return -1;
	}
	pos = mlen + 1;
	for (;;) {
		const char *line = buf + pos, *nl, *eq;
		size_t llen, klen;
		int f;

		if (pos >= len) {
			set_err(err, errlen, "request not terminated by an empty line%s", "");
			return -1;
		}
		nl = memchr(line, '\n', len - pos);
		if (!nl) {
			set_err(err, errlen, "request not terminated by an empty line%s", "");
			return -1;
		}
		llen = (size_t)(nl - line);
		pos += llen + 1;
		if (llen == 0)
			break;
		eq = memchr(line, '=', llen);
		if (!eq) {
			set_err(err, errlen, "malformed request line (no '=')%s", "");
			return -1;
		}
		klen = (size_t)(eq - line);
		for (f = 0; f < F_COUNT; f++)
			if (strlen(field_names[f]) == klen && memcmp(field_names[f], line, klen) == 0)
				break;
		if (f == F_COUNT) {
			char key[40];
			snprintf(key, sizeof(key), "%.*s", (int)(klen < 32 ? klen : 32), line);
			for (char *k = key; *k; k++)
				if (!isprint((unsigned char)*k))
					*k = '?';
			set_err(err, errlen, "unknown request field '%s'", key);
			return -1;
		}
		if (seen[f]) {
			set_err(err, errlen, "duplicate request field '%s'", field_names[f]);
			return -1;
		}
		seen[f] = true;
		if (unescape(eq + 1, llen - klen - 1, val, sizeof(val)) < 0) {
			set_err(err, errlen, "bad value for '%s' (escape, control character or length)",
				field_names[f]);
			return -1;
		}

		uint64_t u;
		size_t cap = 0;
		char *dst = NULL;
		switch (f) {
		case F_MODE:
			r->mode = ctl_mode_parse(val);
			if (r->mode == CTL_MODE_NONE) {
				set_err(err, errlen, "unknown mode '%.40s'", val);
				return -1;
			}
			break;
		case F_OP:
			r->op = ctl_op_parse(val);
			if (r->op == CTL_OP_NONE) {
				set_err(err, errlen, "unknown operation '%.40s'", val);
				return -1;
			}
			break;
		case F_TID:
			if (parse_u64(val, INT32_MAX, &u) < 0 || u == 0) {
				set_err(err, errlen, "invalid tid '%.40s' (1..2147483647)", val);
				return -1;
			}
			r->has_tid = true;
			r->tid = (int)u;
			break;
		case F_LUN:
			if (parse_u64(val, UINT64_MAX, &u) < 0) {
				set_err(err, errlen, "invalid lun '%.40s'", val);
				return -1;
			}
			r->has_lun = true;
			r->lun = u;
			break;
		case F_SID:
			if (parse_u64(val, UINT64_MAX, &u) < 0) {
				set_err(err, errlen, "invalid sid '%.40s'", val);
				return -1;
			}
			r->has_sid = true;
			r->sid = u;
			break;
		case F_BS:
			if (parse_u64(val, UINT32_MAX, &u) < 0) {
				set_err(err, errlen, "invalid blocksize '%.40s'", val);
				return -1;
			}
			r->has_blocksize = true;
			r->blocksize = (uint32_t)u;
			break;
		case F_CID:
			/* RFC 7143 11.12.4: CID is 16 bits */
			if (parse_u64(val, UINT16_MAX, &u) < 0) {
				set_err(err, errlen, "invalid cid '%.40s' (0..65535)", val);
				return -1;
			}
			r->has_cid = true;
			r->cid = (uint16_t)u;
			break;
		case F_EXPORT_ID:
			/* exports.h: export ids (fsid=) are 32 bits */
			if (parse_u64(val, UINT32_MAX, &u) < 0) {
				set_err(err, errlen, "invalid export-id '%.40s' (0..4294967295)", val);
				return -1;
			}
			r->has_export_id = true;
			r->export_id = (uint32_t)u;
			break;
		case F_EPOCH:
			/* core/lease.h: the fencing token, any 64-bit value */
			if (parse_u64(val, UINT64_MAX, &u) < 0) {
				set_err(err, errlen, "invalid epoch '%.40s' (0..18446744073709551615)", val);
				return -1;
			}
			r->has_epoch = true;
			r->epoch = u;
			break;
		case F_FORCE:
		case F_JSON:
		case F_OUTGOING:
			if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0) {
				set_err(err, errlen, "invalid boolean for '%s' (0 or 1)", field_names[f]);
				return -1;
			}
			if (f == F_FORCE)
				r->force = val[0] == '1';
			else if (f == F_JSON)
				r->json = val[0] == '1';
			else
				r->outgoing = val[0] == '1';
			break;
		case F_TNAME: dst = r->targetname; cap = sizeof(r->targetname); break;
		case F_BSTORE: dst = r->backing_store; cap = sizeof(r->backing_store); break;
		case F_BSTYPE: dst = r->bstype; cap = sizeof(r->bstype); break;
		case F_IADDR: dst = r->initiator_address; cap = sizeof(r->initiator_address); break;
		case F_INAME: dst = r->initiator_name; cap = sizeof(r->initiator_name); break;
		case F_PARAMS: dst = r->params; cap = sizeof(r->params); break;
		case F_USER: dst = r->user; cap = sizeof(r->user); break;
		case F_PASSWORD: dst = r->password; cap = sizeof(r->password); break;
		case F_PATH: dst = r->path; cap = sizeof(r->path); break;
		case F_CLIENTS: dst = r->clients; cap = sizeof(r->clients); break;
		case F_EXPORT: dst = r->export_line; cap = sizeof(r->export_line); break;
		case F_HOLDER: dst = r->holder; cap = sizeof(r->holder); break;
		case F_FILE: dst = r->file; cap = sizeof(r->file); break;
		}
		if (dst) {
			if (strlen(val) >= cap) {
				set_err(err, errlen, "value of '%s' too long", field_names[f]);
				return -1;
			}
			strcpy(dst, val);
		}
	}
	if (pos != len) {
		set_err(err, errlen, "trailing data after the request%s", "");
		return -1;
	}
	if (r->mode == CTL_MODE_NONE) {
		set_err(err, errlen, "missing mode%s", "");
		return -1;
	}
	if (r->op == CTL_OP_NONE) {
		set_err(err, errlen, "missing operation%s", "");
		return -1;
	}
	return 0;
}

/* ---- status line ---- */

int ctl_status_format(char *buf, size_t len, int code, const char *msg)
{
	int n;

	if (!buf || len == 0)
		return 0;
	n = snprintf(buf, len, "status %d ", code < 0 ? -code : code);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return 0;
	}
	for (const char *s = msg ? msg : ""; *s && (size_t)n + 2 < len; s++) {
		unsigned char c = (unsigned char)*s;
		buf[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

int ctl_status_parse(const char *line, size_t len, int *code, char *msg, size_t msglen)
{
	size_t i = 7, start;
	long v = 0;

	if (len < 8 || memcmp(line, "status ", 7) != 0)
		return -1;
	start = i;
	while (i < len && isdigit((unsigned char)line[i])) {
		v = v * 10 + (line[i] - '0');
		if (v > 4095)
			return -1;
		i++;
	}
	if (i == start)
		return -1;
	if (i < len && line[i] != ' ' && line[i] != '\n')
		return -1;
	if (i < len && line[i] == ' ')
		i++;
	*code = (int)v;
	if (msg && msglen) {
		size_t o = 0;
		for (; i < len && line[i] != '\n' && o + 1 < msglen; i++)
			msg[o++] = line[i];
		msg[o] = '\0';
	}
	return 0;
}
