/* config.c - load, validate and apply the libconfig file.
 *
 * The schema is documented in conf/ringstor.conf.example.  Everything is
 * validated before anything is created (a bad file changes nothing), and every
 * complaint names the file and the line of the offending setting, the way
 * compilers do, so an admin can jump straight to it.  Unknown keys are refused:
 * a misspelt "readonly" silently ignored would export a disk read-write.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/acl.h"
#include "../core/log.h"

/* RFC 7143 13.12-13.14: MaxRecvDataSegmentLength, MaxBurstLength and
 * FirstBurstLength are 512..2^24-1; 13.17: MaxOutstandingR2T 1..65535. */
#define ISCSI_LEN_MIN 512u
#define ISCSI_LEN_MAX 16777215u
#define LUN_MAX 16383          /* SAM-5 4.6.7 flat space addressing */

struct cctx {
	const char *name;       /* file name for messages */
	char *err;
	size_t errlen;
	bool quiet;             /* no warnings (re-reading our own dump) */
};

static int cerr(struct cctx *c, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Report "file:line: message"; always returns -1. */
static int cerr(struct cctx *c, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	const char *file = s ? config_setting_source_file(s) : NULL;
	int line = s ? (int)config_setting_source_line(s) : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!file)
		file = c->name;
	if (c->err && c->errlen) {
		if (line > 0)
			snprintf(c->err, c->errlen, "%s:%d: %s", file, line, msg);
		else
			snprintf(c->err, c->errlen, "%s: %s", file, msg);
	}
	return -1;
}

/* ---- small parsers ---- */

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	/* binary multiples, as qemu-img and tgt's --size read them */
	switch (toupper((unsigned char)*p)) {
	case '\0': break;
	case 'K': mult = 1ull << 10; p++; break;
	case 'M': mult = 1ull << 20; p++; break;
	case 'G': mult = 1ull << 30; p++; break;
	case 'T': mult = 1ull << 40; p++; break;
	case 'P': mult = 1ull << 50; p++; break;
	case 'B': break;
	default: return -1;
	}
	if (mult > 1 && (*p == 'i' || *p == 'I') && (p[1] == 'B' || p[1] == 'b'))
		p += 2;
	else if (*p == 'B' || *p == 'b')
		p++;
	if (*p)
		return -1;
	if (v && mult > UINT64_MAX / v)
		return -1;
	*out = v * mult;
	return 0;
}

/* "ADDR[:PORT][,TPGT]".  The target portal group tag (RFC 7143 4.4.1 /
 * 13.9) is 16 bits; 0 is not used so that "no tag" cannot be confused with
 * a group, and the fabric reuses it as the SPC-4 relative target port id /
 * target port group, which must be non-zero. */
int config_parse_portal(const char *s, struct iscsi_portal *p, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 2], addr[INET6_ADDRSTRLEN + 16];
	const char *port_s = NULL, *comma;
	unsigned long port = 3260, tpgt = 1;
	size_t hlen;

	memset(p, 0, sizeof(*p));
	if (!s || !*s) {
		snprintf(err, errlen, "empty portal");
		return -1;
	}
	comma = strchr(s, ',');
	if (comma) {
		char *end;
		if (!isdigit((unsigned char)comma[1])) {
			snprintf(err, errlen, "invalid portal '%s': expected ',TPGT' (1..65535)", s);
			return -1;
		}
		errno = 0;
		tpgt = strtoul(comma + 1, &end, 10);
		if (*end || errno || tpgt == 0 || tpgt > 65535) {
			snprintf(err, errlen, "invalid portal '%s': portal group tag must be 1..65535", s);
			return -1;
		}
		if ((size_t)(comma - s) >= sizeof(addr)) {
			snprintf(err, errlen, "invalid portal '%s'", s);
			return -1;
		}
		memcpy(addr, s, (size_t)(comma - s));
		addr[comma - s] = '\0';
	} else {
		if (strlen(s) >= sizeof(addr)) {
			snprintf(err, errlen, "invalid portal '%s'", s);
			return -1;
		}
		strcpy(addr, s);
	}
	if (!addr[0]) {
		snprintf(err, errlen, "invalid portal '%s': missing address", s);
		return -1;
	}
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb) {
			snprintf(err, errlen, "invalid portal '%s': missing ']'", s);
			return -1;
		}
		hlen = (size_t)(rb - addr - 1);
		if (hlen == 0 || hlen >= sizeof(host)) {
			snprintf(err, errlen, "invalid portal '%s'", s);
			return -1;
		}
		memcpy(host, addr + 1, hlen);
		host[hlen] = '\0';
		if (rb[1] == ':')
			port_s = rb + 2;
		else if (rb[1] != '\0') {
			snprintf(err, errlen, "invalid portal '%s': expected ':PORT' after ']'", s);
			return -1;
		}
	} else {
		const char *colon = strchr(addr, ':');
		if (colon && strchr(colon + 1, ':')) {
			/* bare IPv6 address, no port */
			hlen = strlen(addr);
		} else {
			hlen = colon ? (size_t)(colon - addr) : strlen(addr);
			if (colon)
				port_s = colon + 1;
		}
		if (hlen == 0 || hlen >= sizeof(host)) {
			snprintf(err, errlen, "invalid portal '%s'", s);
			return -1;
		}
		memcpy(host, addr, hlen);
		host[hlen] = '\0';
	}
	if (port_s) {
		char *end;
		if (!isdigit((unsigned char)*port_s)) {
			snprintf(err, errlen, "invalid portal '%s': bad port", s);
			return -1;
		}
		errno = 0;
		port = strtoul(port_s, &end, 10);
		if (*end || errno || port == 0 || port > 65535) {
			snprintf(err, errlen, "invalid portal '%s': port must be 1..65535", s);
			return -1;
		}
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&p->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p->addr;
	if (addr[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		p->addrlen = sizeof(*s4);
		snprintf(p->text, sizeof(p->text), "%s:%lu,%lu", host, port, tpgt);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		char canon[INET6_ADDRSTRLEN];
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		p->addrlen = sizeof(*s6);
		inet_ntop(AF_INET6, &s6->sin6_addr, canon, sizeof(canon));
		snprintf(p->text, sizeof(p->text), "[%s]:%lu,%lu", canon, port, tpgt);
	} else {
		snprintf(err, errlen, "invalid portal '%s': not a numeric IPv4/IPv6 address", s);
		return -1;
	}
	p->tpgt = (uint16_t)tpgt;
	return 0;
}

/* Same listening address?  (The texts differ at most in ",TPGT".) */
static bool same_portal_addr(const struct iscsi_portal *a, const struct iscsi_portal *b)
{
	const char *ca = strrchr(a->text, ','), *cb = strrchr(b->text, ',');
	size_t la = ca ? (size_t)(ca - a->text) : strlen(a->text);
	size_t lb = cb ? (size_t)(cb - b->text) : strlen(b->text);

	return la == lb && memcmp(a->text, b->text, la) == 0;
}

/* ---- typed getters: each returns 1 if present, 0 if absent, -1 on error ---- */

static int check_keys(struct cctx *c, const config_setting_t *grp, const char *what,
		      const char *const *allowed)
{
	int n = config_setting_length(grp);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(m);
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (name && strcmp(name, *a) == 0)
				ok = true;
		if (!ok)
			return cerr(c, m, "unknown setting '%s' in %s", name ? name : "?", what);
	}
	return 0;
}

static int get_group(struct cctx *c, const config_setting_t *parent, const char *key,
		     config_setting_t **out)
{
	config_setting_t *s = config_setting_get_member(parent, key);

	*out = s;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cerr(c, s, "'%s' must be a group { ... }", key);
	return 1;
}

static int get_int(struct cctx *c, const config_setting_t *parent, const char *key,
		   int64_t min, int64_t max, int64_t *out)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	int64_t v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return cerr(c, s, "'%s' must be an integer", key);
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return cerr(c, s, "'%s' = %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", key,
			    v, min, max);
	*out = v;
	return 1;
}

static int get_u32(struct cctx *c, const config_setting_t *parent, const char *key,
		   uint32_t min, uint32_t max, uint32_t *out)
{
	int64_t v = 0;
	int ret = get_int(c, parent, key, min, max, &v);

	if (ret == 1)
		*out = (uint32_t)v;
	return ret;
}

static int get_bool(struct cctx *c, const config_setting_t *parent, const char *key, bool *out)
{
	const config_setting_t *s = config_setting_get_member(parent, key);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cerr(c, s, "'%s' must be true or false", key);
	*out = config_setting_get_bool(s) != 0;
	return 1;
}

static int get_str(struct cctx *c, const config_setting_t *parent, const char *key,
		   char *out, size_t cap)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	const char *v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cerr(c, s, "'%s' must be a string", key);
	v = config_setting_get_string(s);
	if (!v || strlen(v) >= cap)
		return cerr(c, s, "'%s' is too long (at most %zu bytes)", key, cap - 1);
	strcpy(out, v);
	return 1;
}

/* A list/array of strings; returns the setting (or NULL if absent) via *out. */
static int get_str_list(struct cctx *c, const config_setting_t *parent, const char *key,
			const config_setting_t **out)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	int n;

	*out = s;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
		return cerr(c, s, "'%s' must be a list of strings [ \"...\", ... ]", key);
	n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return cerr(c, e, "'%s' must be a list of strings", key);
	}
	return 1;
}

/* ---- CHAP accounts and bindings ---- */

static void chap_bind_free(struct rs_config_chap_bind *b)
{
	free(b->in);
	memset(b, 0, sizeof(*b));
}

static const struct rs_config_account *chap_find(const struct rs_config *cfg, const char *user)
{
	for (int i = 0; i < cfg->naccounts; i++)
		if (strcmp(cfg->accounts[i].user, user) == 0)
			return &cfg->accounts[i];
	return NULL;
}

/* accounts = ( { user = "..."; password = "..."; }, ... ); */
static int load_accounts(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	static const char *const keys[] = { "user", "password", NULL };
	const config_setting_t *l = config_setting_get_member(root, "accounts");
	char msg[256];
	int n, ret;

	if (!l)
		return 0;
	if (config_setting_type(l) != CONFIG_TYPE_LIST)
		return cerr(c, l, "'accounts' must be a list ( { user = \"...\"; password = \"...\"; }, ... )");
	n = config_setting_length(l);
	cfg->accounts = calloc((size_t)(n ? n : 1), sizeof(*cfg->accounts));
	if (!cfg->accounts)
		return cerr(c, l, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *a = config_setting_get_elem(l, (unsigned)i);
		struct rs_config_account *acc = &cfg->accounts[cfg->naccounts];
		const struct rs_config_account *dup;

		if (config_setting_type(a) != CONFIG_TYPE_GROUP)
			return cerr(c, a, "each entry of 'accounts' must be a group { user = ...; password = ...; }");
		if (check_keys(c, a, "an account", keys) < 0)
			return -1;
		acc->line = (int)config_setting_source_line(a);
		ret = get_str(c, a, "user", acc->user, sizeof(acc->user));
		if (ret < 0)
			return -1;
		if (!ret)
			return cerr(c, a, "account without 'user = \"...\";'");
		if (reg_chap_user_check(acc->user, msg, sizeof(msg)) < 0)
			return cerr(c, config_setting_get_member(a, "user"), "%s", msg);
		dup = chap_find(cfg, acc->user);
		if (dup)
			return cerr(c, config_setting_get_member(a, "user"),
				    "duplicate account '%s' (first at line %d)", acc->user, dup->line);
		ret = get_str(c, a, "password", acc->password, sizeof(acc->password));
		if (ret < 0)
			return -1;
		if (!ret)
			return cerr(c, a, "account '%s' without 'password = \"...\";'", acc->user);
		ret = reg_chap_secret_check(acc->password, msg, sizeof(msg));
		if (ret < 0)
			return cerr(c, config_setting_get_member(a, "password"), "account '%s': %s",
				    acc->user, msg);
		if (ret > 0) {
			/* Accepted, but said (never the secret itself). */
			const config_setting_t *pw = config_setting_get_member(a, "password");
			const char *w = strncmp(msg, "warning: ", 9) == 0 ? msg + 9 : msg;
			if (!c->quiet)
				log_warn("%s:%d: account '%s': %s", config_setting_source_file(pw) ?
				 config_setting_source_file(pw) : c->name,
				 (int)config_setting_source_line(pw), acc->user, w);
			cfg->nweak++;
		}
		cfg->naccounts++;
	}
	return 0;
}

/* incoming_users = [ ... ]; outgoing_user = "..."; inside grp, into b. */
static int load_chap_bind(struct cctx *c, const config_setting_t *grp, struct rs_config *cfg,
			  struct rs_config_chap_bind *b, const char *what)
{
	const config_setting_t *l, *o;
	int ret, n;

	ret = get_str_list(c, grp, "incoming_users", &l);
	if (ret < 0)
		return -1;
	if (ret) {
		n = config_setting_length(l);
		b->in = calloc((size_t)(n ? n : 1), sizeof(*b->in));
		if (!b->in)
			return cerr(c, l, "out of memory");
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
			const char *u = config_setting_get_string(e);
			if (!chap_find(cfg, u))
				return cerr(c, e, "%s: incoming user '%s' is not in 'accounts'", what, u);
			for (int j = 0; j < b->nin; j++)
				if (strcmp(b->in[j], u) == 0)
					return cerr(c, e, "%s: duplicate incoming user '%s'", what, u);
			snprintf(b->in[b->nin++], sizeof(b->in[0]), "%s", u);
		}
	}
	o = config_setting_get_member(grp, "outgoing_user");
	ret = get_str(c, grp, "outgoing_user", b->out, sizeof(b->out));
	if (ret < 0)
		return -1;
	if (ret && !chap_find(cfg, b->out))
		return cerr(c, o, "%s: outgoing user '%s' is not in 'accounts'", what, b->out);
	return 0;
}

/* discovery = { incoming_users = [ ... ]; outgoing_user = "..."; }; */
static int load_discovery(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	static const char *const keys[] = { "incoming_users", "outgoing_user", NULL };
	config_setting_t *g;
	int ret;

	ret = get_group(c, root, "discovery", &g);
	if (ret <= 0)
		return ret;
	if (check_keys(c, g, "discovery", keys) < 0)
		return -1;
	return load_chap_bind(c, g, cfg, &cfg->discovery, "discovery");
}

/* RFC 7143 9.2.1: a secret that authenticates initiators must not also
 * authenticate targets.  An account is one secret: one direction only. */
static int check_directions(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	const config_setting_t *ts = config_setting_get_member(root, "targets");
	int nb = cfg->ntargets + 1;

	for (int i = 0; i < nb; i++) {
		const struct rs_config_chap_bind *bo =
			i < cfg->ntargets ? &cfg->targets[i].chap : &cfg->discovery;
		if (!bo->out[0])
			continue;
		for (int j = 0; j < nb; j++) {
			const struct rs_config_chap_bind *bi =
				j < cfg->ntargets ? &cfg->targets[j].chap : &cfg->discovery;
			for (int k = 0; k < bi->nin; k++) {
				if (strcmp(bi->in[k], bo->out) != 0)
					continue;
				const config_setting_t *at = i < cfg->ntargets && ts ?
					config_setting_get_elem(ts, (unsigned)i) :
					config_setting_get_member(root, "discovery");
				const config_setting_t *o = at ? config_setting_get_member(at, "outgoing_user") : NULL;
				return cerr(c, o ? o : at, "account '%s' is used both as an outgoing and an "
					    "incoming user; RFC 7143 9.2.1 forbids one secret in both directions",
					    bo->out);
			}
		}
	}
	return 0;
}

/* ---- sections ---- */

static int load_daemon(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	static const char *const keys[] = {
		"threads", "control_socket", "log_level", "state_dir", "prometheus", NULL
	};
	config_setting_t *d;
	int64_t v;
	int ret;

	ret = get_group(c, root, "daemon", &d);
	if (ret <= 0)
		return ret;
	if (check_keys(c, d, "daemon", keys) < 0)
		return -1;
	ret = get_int(c, d, "threads", 0, 256, &v);
	if (ret < 0)
		return -1;
	if (ret)
		cfg->threads = (int)v;
	if (get_str(c, d, "control_socket", cfg->control_socket, sizeof(cfg->control_socket)) < 0)
		return -1;
	if (get_str(c, d, "prometheus", cfg->prometheus, sizeof(cfg->prometheus)) < 0)
		return -1;
	if (get_str(c, d, "log_level", cfg->log_level, sizeof(cfg->log_level)) < 0)
		return -1;
	if (cfg->log_level[0] && rs_log_parse_level(cfg->log_level) < 0)
		return cerr(c, config_setting_get_member(d, "log_level"),
			    "unknown log_level '%s' (error, warning, notice, info, debug)",
			    cfg->log_level);
	ret = get_str(c, d, "state_dir", cfg->state_dir, sizeof(cfg->state_dir));
	if (ret < 0)
		return -1;
	if (ret) {
		/* Relative to what?  The daemon's working directory is not
		 * something an admin should have to think about. */
		const config_setting_t *s = config_setting_get_member(d, "state_dir");
		if (cfg->state_dir[0] != '/')
			return cerr(c, s, "'state_dir' must be an absolute path, not '%s'",
				    cfg->state_dir);
		for (const char *p = cfg->state_dir; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return cerr(c, s, "'state_dir' contains a control character");
	}
	return 0;
}

/* ---- nfs = { ... } ---- */

/* What config_apply() last put in place, for --op dump and the control
 * socket (which runs on its own thread: hence the lock). */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	bool applied;
	bool enabled;
	struct nfsgw_settings nfs;
} running;


int config_export_line(const char *path, const char *clients, char *buf, size_t len)
{
	size_t o = 0;

	if (!buf || !len || !path)
		return -1;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		/* exports(5): blanks (and what would end or split the path
		 * token) are written as \ooo, as exportfs does. */
		if (*p <= ' ' || *p == 0x7f || strchr("\"\\#()", *p)) {
			if (o + 4 >= len)
				return -1;
			snprintf(buf + o, len - o, "\\%03o", *p);
			o += 4;
		} else {
			if (o + 1 >= len)
				return -1;
			buf[o++] = (char)*p;
		}
	}
	buf[o] = '\0';
	if (clients && *clients) {
		int n = snprintf(buf + o, len - o, " %s", clients);
		if (n < 0 || (size_t)n >= len - o)
			return -1;
	}
	return 0;
}

/* One entry of nfs.exports: "exports(5) line" or { path = ...; clients = ...; }. */
static int load_export(struct cctx *c, const config_setting_t *e, struct rs_config *cfg)
{
	static const char *const keys[] = { "path", "clients", NULL };
	struct rs_config_export *x = &cfg->exports[cfg->nexports];
	const config_setting_t *at = e;
	char line[8192], msg[512];
	int ret;

	x->line = (int)config_setting_source_line(e);
	if (config_setting_type(e) == CONFIG_TYPE_STRING) {
		const char *v = config_setting_get_string(e);
		if (!v || strlen(v) >= sizeof(line))
			return cerr(c, e, "nfs export line too long");
		snprintf(line, sizeof(line), "%s", v);
	} else if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
		char path[4096], clients[4096] = "";
		if (check_keys(c, e, "an nfs export", keys) < 0)
			return -1;
		ret = get_str(c, e, "path", path, sizeof(path));
		if (ret < 0)
			return -1;
		if (!ret)
			return cerr(c, e, "nfs export without 'path = \"/dir\";'");
		if (get_str(c, e, "clients", clients, sizeof(clients)) < 0)
			return -1;
		if (config_setting_get_member(e, "clients"))
			at = config_setting_get_member(e, "clients");
		if (path[0] != '/')
			return cerr(c, config_setting_get_member(e, "path"),
				    "nfs export path '%s' is not absolute", path);
		if (config_export_line(path, clients, line, sizeof(line)) < 0)
			return cerr(c, e, "nfs export too long");
	} else {
		return cerr(c, e, "each entry of 'exports' must be an exports(5) line "
			    "\"/dir client(opts) ...\" or a group { path = ...; clients = ...; }");
	}
	/* exports_parse_line() refuses unknown options by name. */
	if (exports_parse_line(line, x->path, sizeof(x->path), &x->clients, &x->nclients, msg,
			       sizeof(msg)) < 0) {
		x->clients = NULL;
		x->nclients = 0;
		return cerr(c, at, "nfs export: %s", msg);
	}
	cfg->nexports++;    /* config_free() releases it from here on */
	for (int i = 0; i < cfg->nexports - 1; i++)
		if (strcmp(cfg->exports[i].path, x->path) == 0)
			return cerr(c, e, "duplicate nfs export %s (first at line %d)", x->path,
				    cfg->exports[i].line);
	/* File handles carry the export id (fsid= or a hash of the path): two
	 * exports with one explicit fsid would serve each other's handles. */
	for (int k = 0; k < x->nclients; k++) {
		if (!x->clients[k].opts.fsid_set)
			continue;
		for (int i = 0; i < cfg->nexports - 1; i++)
			for (int j = 0; j < cfg->exports[i].nclients; j++)
				if (cfg->exports[i].clients[j].opts.fsid_set &&
				    cfg->exports[i].clients[j].opts.fsid == x->clients[k].opts.fsid)
					return cerr(c, at, "nfs export %s: fsid=%u is already used by %s "
						    "(line %d)", x->path, x->clients[k].opts.fsid,
						    cfg->exports[i].path, cfg->exports[i].line);
		break;
	}
	return 0;
}

static int get_port(struct cctx *c, const config_setting_t *g, const char *key, int64_t min,
		    uint16_t *out)
{
	int64_t v;
	int ret = get_int(c, g, key, min, 65535, &v);

	if (ret == 1)
		*out = (uint16_t)v;
	return ret;
}

static int load_nfs(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	static const char *const keys[] = {
		"enabled", "bind", "nfs_port", "mount_port", "nlm_port", "portmap", "portmap_port",
		"exports", "listen", NULL
	};
	struct nfsgw_settings *s = &cfg->nfs;
	const config_setting_t *l, *at;
	config_setting_t *g;
	char pm[80] = "auto";
	unsigned char abuf[16];
	int ret, n;

	ret = get_group(c, root, "nfs", &g);
	if (ret <= 0)
		return ret;
	if (check_keys(c, g, "nfs", keys) < 0)
		return -1;
	if (get_bool(c, g, "enabled", &cfg->nfs_enabled) < 0)
		return -1;
	ret = get_str(c, g, "bind", s->bind_addr, sizeof(s->bind_addr));
	if (ret < 0)
		return -1;
	if (ret && inet_pton(AF_INET, s->bind_addr, abuf) != 1 &&
	    inet_pton(AF_INET6, s->bind_addr, abuf) != 1)
		return cerr(c, config_setting_get_member(g, "bind"),
			    "nfs bind '%s' is not a numeric IPv4/IPv6 address (e.g. \"0.0.0.0\", \"::\")",
			    s->bind_addr);
	/* mount_port/nlm_port 0 (or equal to nfs_port): no listener of their
	 * own, MOUNT/NLM answer on nfs_port. */
	if (get_port(c, g, "nfs_port", 1, &s->nfs_port) < 0 ||
	    get_port(c, g, "mount_port", 0, &s->mount_port) < 0 ||
	    get_port(c, g, "nlm_port", 0, &s->nlm_port) < 0 ||
	    get_port(c, g, "portmap_port", 1, &s->portmap_port) < 0)
		return -1;
	/* listen = [ "127.0.0.1:2049", "[::1]:2049" ]: NFS and MOUNT on each;
	 * it replaces bind/nfs_port (nfs_port becomes the first one's port). */
	ret = get_str_list(c, g, "listen", &l);
	if (ret < 0)
		return -1;
	if (ret) {
		int nl = config_setting_length(l);
		if (nl == 0)
			return cerr(c, l, "'listen' is empty (give at least one \"ADDR:PORT\")");
		for (int i = 0; i < nl; i++) {
			const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
			struct nfsgw_endpoint ep;
			char msg[256];
			if (nfsgw_parse_endpoint(config_setting_get_string(e), &ep, msg, sizeof(msg)) < 0 ||
			    nfsgw_add_listen(s, &ep, msg, sizeof(msg)) < 0)
				return cerr(c, e, "nfs listen %s", msg);
		}
		if (config_setting_get_member(g, "bind") || config_setting_get_member(g, "nfs_port"))
			return cerr(c, l, "nfs: give either 'listen' or 'bind'/'nfs_port', not both");
	}
	ret = get_str(c, g, "portmap", pm, sizeof(pm));
	if (ret < 0)
		return -1;
	if (strchr(pm, ':')) {
		/* "ADDR:PORT": the built-in portmapper there. */
		struct nfsgw_endpoint ep;
		char msg[256];
		if (nfsgw_parse_endpoint(pm, &ep, msg, sizeof(msg)) < 0)
			return cerr(c, config_setting_get_member(g, "portmap"), "nfs portmap %s", msg);
		if (config_setting_get_member(g, "portmap_port"))
			return cerr(c, config_setting_get_member(g, "portmap_port"),
				    "nfs: portmap = \"%s\" already gives the port", pm);
		s->portmap = RS_NFS_PORTMAP_BUILTIN;
		snprintf(s->portmap_addr, sizeof(s->portmap_addr), "%s", ep.addr);
		s->portmap_port = ep.port;
	} else if (!strcmp(pm, "auto"))
		s->portmap = RS_NFS_PORTMAP_AUTO;
	else if (!strcmp(pm, "builtin"))
		s->portmap = RS_NFS_PORTMAP_BUILTIN;
	else if (!strcmp(pm, "rpcbind"))
		s->portmap = RS_NFS_PORTMAP_RPCBIND;
	else if (!strcmp(pm, "off"))
		s->portmap = RS_NFS_PORTMAP_OFF;
	else
		return cerr(c, config_setting_get_member(g, "portmap"),
			    "unknown portmap '%s' (auto, builtin, rpcbind, off, or \"ADDR:PORT\")", pm);
	/* Two listeners of ours on one port would split its traffic. */
	at = config_setting_get_member(g, "nlm_port");
	if (s->mount_port && s->nlm_port && s->mount_port == s->nlm_port &&
	    s->mount_port != s->nfs_port)
		return cerr(c, at ? at : g, "nfs: mount_port and nlm_port are both %u "
			    "(give them different ports, or nfs_port's)", s->nlm_port);
	for (int i = 0; i < s->nlisten; i++) {
		if (s->mount_port == s->listen[i].port || s->nlm_port == s->listen[i].port) {
			/* allowed for the first (the older nfs_port rule) */
			if (i == 0)
				continue;
			at = config_setting_get_member(g, "listen");
			return cerr(c, at ? at : g, "nfs: listen port %u is also the MOUNT or NLM port",
				    s->listen[i].port);
		}
		if (s->portmap != RS_NFS_PORTMAP_OFF && !s->portmap_addr[0] &&
		    s->portmap_port == s->listen[i].port) {
			at = config_setting_get_member(g, "listen");
			return cerr(c, at ? at : g, "nfs: portmap_port %u is also an NFS listen port",
				    s->portmap_port);
		}
	}
	if (s->portmap != RS_NFS_PORTMAP_OFF && !s->portmap_addr[0] &&
	    (s->portmap_port == s->nfs_port || s->portmap_port == s->mount_port ||
	     s->portmap_port == s->nlm_port)) {
		at = config_setting_get_member(g, "portmap_port");
		return cerr(c, at ? at : g, "nfs: portmap_port %u is also the NFS, MOUNT or NLM port",
			    s->portmap_port);
	}

	l = config_setting_get_member(g, "exports");
	if (!l)
		return 0;
	if (config_setting_type(l) != CONFIG_TYPE_LIST && config_setting_type(l) != CONFIG_TYPE_ARRAY)
		return cerr(c, l, "'exports' must be a list ( \"/dir client(opts)\", "
			    "{ path = ...; clients = ...; }, ... )");
	n = config_setting_length(l);
	cfg->exports = calloc((size_t)(n ? n : 1), sizeof(*cfg->exports));
	if (!cfg->exports)
		return cerr(c, l, "out of memory");
	for (int i = 0; i < n; i++)
		if (load_export(c, config_setting_get_elem(l, (unsigned)i), cfg) < 0)
			return -1;
	return 0;
}

static void conf_quote(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

struct dump_ctx {
	FILE *out;
	int n;
};

static void dump_export(const struct nfs_export *e, void *arg)
{
	struct dump_ctx *d = arg;
	char opts[256];

	fprintf(d->out, "%s        { path = ", d->n++ ? ",\n" : "");
	conf_quote(d->out, e->path);
	fputs(";\n          clients = ", d->out);
	for (int i = 0; i < e->nclients; i++) {
		/* One client per line: libconfig joins adjacent strings.  Specs
		 * are host names or addresses: nothing to escape. */
		exports_options_str(&e->clients[i].opts, opts, sizeof(opts));
		fprintf(d->out, "%s\"%s(%s)%s\"", i ? "\n                    " : "",
			e->clients[i].spec, opts, i + 1 < e->nclients ? " " : "");
	}
	fputs("; }", d->out);
}

static void count_export(const struct nfs_export *e, void *arg)
{
	(void)e;
	++*(int *)arg;
}

void config_dump_nfs(FILE *out)
{
	static const char *const pm[] = { "off", "auto", "rpcbind", "builtin" };
	struct nfsgw_settings s;
	bool enabled;
	int nexp = 0;
	struct dump_ctx d = { .out = out };

	pthread_mutex_lock(&running_lock);
	enabled = running.enabled;
	if (running.applied)
		s = running.nfs;
	else
		nfsgw_settings_default(&s);
	pthread_mutex_unlock(&running_lock);
	nfs_exports_foreach(count_export, &nexp);
	if (!enabled && !nexp)
		return;
	fprintf(out, "\nnfs = {\n    enabled = %s;\n", enabled ? "true" : "false");
	if (s.nlisten > 0) {
		fputs("    listen = [ ", out);
		for (int i = 0; i < s.nlisten && i < NFSGW_MAX_LISTEN; i++) {
			char t[80];
			nfsgw_endpoint_str(&s.listen[i], t, sizeof(t));
			fprintf(out, "%s\"%s\"", i ? ", " : "", t);
		}
		fputs(" ];\n", out);
	} else {
		fputs("    bind = ", out);
		conf_quote(out, s.bind_addr);
		fprintf(out, ";\n    nfs_port = %u;\n", s.nfs_port);
	}
	fprintf(out, "    mount_port = %u;\n    nlm_port = %u;\n", s.mount_port, s.nlm_port);
	if (s.portmap_addr[0] && s.portmap == RS_NFS_PORTMAP_BUILTIN) {
		struct nfsgw_endpoint ep = { .port = s.portmap_port };
		char t[80];
		snprintf(ep.addr, sizeof(ep.addr), "%s", s.portmap_addr);
		nfsgw_endpoint_str(&ep, t, sizeof(t));
		fprintf(out, "    portmap = \"%s\";\n", t);
	} else {
		fprintf(out, "    portmap = \"%s\";\n    portmap_port = %u;\n",
			s.portmap >= 0 && s.portmap <= 3 ? pm[s.portmap] : "auto", s.portmap_port);
	}
	if (nexp) {
		fputs("    exports = (\n", out);
		nfs_exports_foreach(dump_export, &d);
		fputs("\n    );\n", out);
	}
	fputs("};\n", out);
}

bool config_nfs_enabled(void)
{
	bool e;

	pthread_mutex_lock(&running_lock);
	e = running.enabled;
	pthread_mutex_unlock(&running_lock);
	return e;
}

/* header_digest / data_digest = [ "None", "CRC32C" ]: RFC 7143 13.1 lists. */
static int digest_list(struct cctx *c, const config_setting_t *grp, const char *key, int *crc)
{
	const config_setting_t *l;
	int ret = get_str_list(c, grp, key, &l);

	if (ret <= 0)
		return ret;
	if (config_setting_length(l) == 0)
		return cerr(c, l, "'%s' must not be empty", key);
	for (int i = 0; i < config_setting_length(l); i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *v = config_setting_get_string(e);
		if (strcasecmp(v, "CRC32C") == 0)
			*crc = 1;
		else if (strcasecmp(v, "None") != 0)
			return cerr(c, e, "'%s': unknown digest '%s' (None, CRC32C)", key, v);
	}
	return 1;
}

static int load_iscsi(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	static const char *const keys[] = {
		"portals", "max_recv_data_segment_length", "max_burst_length", "first_burst_length",
		"max_outstanding_r2t", "immediate_data", "initial_r2t", "header_digest",
		"data_digest", "allow_crc32c", "nop_interval", "nop_timeout", "queue_depth", NULL
	};
	struct iscsi_target_caps *caps = &cfg->iscsi.caps;
	const config_setting_t *l;
	config_setting_t *g;
	int ret, crc = 0, hd, dd;
	bool b = false;

	ret = get_group(c, root, "iscsi", &g);
	if (ret <= 0)
		return ret;
	if (check_keys(c, g, "iscsi", keys) < 0)
		return -1;
	ret = get_str_list(c, g, "portals", &l);
	if (ret < 0)
		return -1;
	for (int i = 0; ret && i < config_setting_length(l); i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		char msg[256];
		if (cfg->nportals == CONFIG_MAX_PORTALS)
			return cerr(c, e, "too many portals (at most %d)", CONFIG_MAX_PORTALS);
		if (config_parse_portal(config_setting_get_string(e), &cfg->portals[cfg->nportals],
					msg, sizeof(msg)) < 0)
			return cerr(c, e, "%s", msg);
		for (int j = 0; j < cfg->nportals; j++)
			if (same_portal_addr(&cfg->portals[j], &cfg->portals[cfg->nportals]))
				return cerr(c, e, "duplicate portal '%s' (one address:port belongs to "
					    "one portal group)", config_setting_get_string(e));
		cfg->nportals++;
	}
	if (get_u32(c, g, "max_recv_data_segment_length", ISCSI_LEN_MIN, ISCSI_LEN_MAX,
		    &caps->max_recv_dsl) < 0 ||
	    get_u32(c, g, "max_burst_length", ISCSI_LEN_MIN, ISCSI_LEN_MAX, &caps->max_burst) < 0 ||
	    get_u32(c, g, "first_burst_length", ISCSI_LEN_MIN, ISCSI_LEN_MAX, &caps->first_burst) < 0 ||
	    get_u32(c, g, "max_outstanding_r2t", 1, 65535, &caps->max_outstanding_r2t) < 0 ||
	    get_u32(c, g, "nop_interval", 0, 3600, &cfg->iscsi.nop_interval_s) < 0 ||
	    get_u32(c, g, "nop_timeout", 1, 3600, &cfg->iscsi.nop_timeout_s) < 0 ||
	    get_u32(c, g, "queue_depth", 1, 4096, &cfg->iscsi.queue_depth) < 0)
		return -1;
	/* RFC 7143 13.14: FirstBurstLength MUST NOT exceed MaxBurstLength. */
	if (caps->first_burst > caps->max_burst)
		return cerr(c, config_setting_get_member(g, "first_burst_length") ?
			    config_setting_get_member(g, "first_burst_length") : g,
			    "first_burst_length (%u) exceeds max_burst_length (%u)",
			    caps->first_burst, caps->max_burst);
	ret = get_bool(c, g, "immediate_data", &b);
	if (ret < 0)
		return -1;
	if (ret)
		caps->allow_immediate_data = b;
	ret = get_bool(c, g, "initial_r2t", &b);
	if (ret < 0)
		return -1;
	if (ret)
		caps->require_initial_r2t = b;
	ret = get_bool(c, g, "allow_crc32c", &b);
	if (ret < 0)
		return -1;
	if (ret)
		caps->allow_crc32c = b;
	hd = digest_list(c, g, "header_digest", &crc);
	if (hd < 0)
		return -1;
	dd = digest_list(c, g, "data_digest", &crc);
	if (dd < 0)
		return -1;
	if (hd || dd) {
		if (config_setting_get_member(g, "allow_crc32c"))
			return cerr(c, config_setting_get_member(g, "allow_crc32c"),
				    "use either allow_crc32c or header_digest/data_digest, not both");
		caps->allow_crc32c = crc != 0;
	}
	return 0;
}

static int load_lun(struct cctx *c, const config_setting_t *ls, struct rs_config_target *t,
		    struct rs_config_lun *l)
{
	static const char *const keys[] = {
		"lun", "path", "type", "block_size", "direct", "readonly", "create", "size",
		"serial", "thin_provisioning", "removable", NULL
	};
	char type[16] = "file", size_s[64];
	const config_setting_t *s;
	const char *canon;
	int64_t v;
	int ret;

	if (config_setting_type(ls) != CONFIG_TYPE_GROUP)
		return cerr(c, ls, "each entry of 'luns' must be a group { lun = N; ... }");
	if (check_keys(c, ls, "a LUN", keys) < 0)
		return -1;
	l->line = (int)config_setting_source_line(ls);
	ret = get_int(c, ls, "lun", 0, LUN_MAX, &v);
	if (ret < 0)
		return -1;
	if (!ret)
		return cerr(c, ls, "target %d: LUN without 'lun = N;'", t->tid);
	l->lun = (uint64_t)v;
	for (int i = 0; i < t->nluns; i++)
		if (t->luns[i].lun == l->lun)
			return cerr(c, config_setting_get_member(ls, "lun"),
				    "target %d: duplicate LUN %" PRIu64 " (first at line %d)", t->tid,
				    l->lun, t->luns[i].line);
	if (get_str(c, ls, "type", type, sizeof(type)) < 0)
		return -1;
	canon = reg_bstype_canonical(type);
	if (!canon)
		return cerr(c, config_setting_get_member(ls, "type"),
			    "unknown LUN type '%s' (file, null; tgt's rdwr/aio mean file)", type);
	snprintf(l->bstype, sizeof(l->bstype), "%s", canon);
	ret = get_str(c, ls, "path", l->path, sizeof(l->path));
	if (ret < 0)
		return -1;
	if (strcmp(canon, "file") == 0 && !l->path[0])
		return cerr(c, ls, "target %d LUN %" PRIu64 ": 'path' is required for type %s", t->tid,
			    l->lun, canon);
	l->bs.block_size = 512;
	ret = get_u32(c, ls, "block_size", 0, 65536, &l->bs.block_size);
	if (ret < 0)
		return -1;
	if (l->bs.block_size != 512 && l->bs.block_size != 4096)
		return cerr(c, config_setting_get_member(ls, "block_size"),
			    "block_size must be 512 or 4096, not %u", l->bs.block_size);
	if (get_bool(c, ls, "direct", &l->bs.direct) < 0 ||
	    get_bool(c, ls, "readonly", &l->bs.readonly) < 0 ||
	    get_bool(c, ls, "create", &l->bs.create) < 0 ||
	    get_bool(c, ls, "thin_provisioning", &l->thin_provisioning) < 0 ||
	    get_bool(c, ls, "removable", &l->removable) < 0)
		return -1;
	s = config_setting_get_member(ls, "size");
	if (s) {
		if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
			int64_t iv = config_setting_get_int64(s);
			if (iv <= 0)
				return cerr(c, s, "'size' must be positive");
			l->bs.size = (uint64_t)iv;
		} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
			snprintf(size_s, sizeof(size_s), "%s", config_setting_get_string(s));
			if (config_parse_size(size_s, &l->bs.size) < 0 || l->bs.size == 0)
				return cerr(c, s, "invalid size '%s' (e.g. \"512M\", \"1G\", \"10T\")", size_s);
		} else {
			return cerr(c, s, "'size' must be a number of bytes or a string like \"1G\"");
		}
		if (l->bs.size % l->bs.block_size)
			return cerr(c, s, "size %" PRIu64 " is not a multiple of block_size %u",
				    l->bs.size, l->bs.block_size);
	}
	if (l->bs.create && !l->bs.size && strcmp(canon, "file") == 0)
		return cerr(c, ls, "target %d LUN %" PRIu64 ": 'create = true' needs a 'size'", t->tid,
			    l->lun);
	if (l->bs.create && l->bs.readonly)
		return cerr(c, ls, "target %d LUN %" PRIu64 ": 'create' and 'readonly' exclude each other",
			    t->tid, l->lun);
	ret = get_str(c, ls, "serial", l->serial, sizeof(l->serial));
	if (ret < 0)
		return -1;
	/* SPC-4 7.8.15: the unit serial number is printable ASCII. */
	for (const char *p = l->serial; *p; p++)
		if (!isgraph((unsigned char)*p))
			return cerr(c, config_setting_get_member(ls, "serial"),
				    "'serial' must be printable ASCII without spaces");
	return 0;
}

/* Load target number idx; targets[0..idx) are complete (duplicate checks). */
static int load_target(struct cctx *c, const config_setting_t *ts, struct rs_config *cfg,
		       int idx)
{
	struct rs_config_target *t = &cfg->targets[idx];
	static const char *const keys[] = {
		"tid", "name", "luns", "initiator_address", "initiator_name", "incoming_users",
		"outgoing_user", NULL
	};
	const config_setting_t *luns, *acl;
	char msg[256];
	int64_t v;
	int ret, n;

	if (config_setting_type(ts) != CONFIG_TYPE_GROUP)
		return cerr(c, ts, "each entry of 'targets' must be a group { tid = N; ... }");
	if (check_keys(c, ts, "a target", keys) < 0)
		return -1;
	t->line = (int)config_setting_source_line(ts);
	ret = get_int(c, ts, "tid", 1, INT32_MAX, &v);
	if (ret < 0)
		return -1;
	if (!ret)
		return cerr(c, ts, "target without 'tid = N;'");
	t->tid = (int)v;
	for (int i = 0; i < idx; i++)
		if (cfg->targets[i].tid == t->tid)
			return cerr(c, config_setting_get_member(ts, "tid"),
				    "duplicate tid %d (first at line %d)", t->tid, cfg->targets[i].line);
	ret = get_str(c, ts, "name", t->iqn, sizeof(t->iqn));
	if (ret < 0)
		return -1;
	if (!ret)
		return cerr(c, ts, "target %d without 'name = \"iqn....\";'", t->tid);
	if (reg_name_check(t->iqn, msg, sizeof(msg)) < 0)
		return cerr(c, config_setting_get_member(ts, "name"), "%s", msg);
	for (int i = 0; i < idx; i++)
		if (strcasecmp(cfg->targets[i].iqn, t->iqn) == 0)
			return cerr(c, config_setting_get_member(ts, "name"),
				    "duplicate target name %s (first at line %d)", t->iqn,
				    cfg->targets[i].line);

	luns = config_setting_get_member(ts, "luns");
	if (luns) {
		if (config_setting_type(luns) != CONFIG_TYPE_LIST)
			return cerr(c, luns, "'luns' must be a list ( { ... }, ... )");
		n = config_setting_length(luns);
		t->luns = calloc((size_t)(n ? n : 1), sizeof(*t->luns));
		if (!t->luns)
			return cerr(c, luns, "out of memory");
		for (int i = 0; i < n; i++) {
			if (load_lun(c, config_setting_get_elem(luns, (unsigned)i), t, &t->luns[t->nluns]) < 0)
				return -1;
			t->nluns++;
		}
	}

	ret = get_str_list(c, ts, "initiator_address", &acl);
	if (ret < 0)
		return -1;
	if (ret) {
		n = config_setting_length(acl);
		t->addr_acls = calloc((size_t)(n ? n : 1), sizeof(*t->addr_acls));
		if (!t->addr_acls)
			return cerr(c, acl, "out of memory");
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(acl, (unsigned)i);
			struct acl_addr a;
			if (acl_addr_parse(config_setting_get_string(e), &a, msg, sizeof(msg)) < 0)
				return cerr(c, e, "%s", msg);
			for (int j = 0; j < t->naddr_acls; j++)
				if (strcmp(t->addr_acls[j], a.text) == 0)
					return cerr(c, e, "duplicate initiator_address '%s'", a.text);
			snprintf(t->addr_acls[t->naddr_acls++], sizeof(t->addr_acls[0]), "%s", a.text);
		}
	}
	ret = get_str_list(c, ts, "initiator_name", &acl);
	if (ret < 0)
		return -1;
	if (ret) {
		n = config_setting_length(acl);
		t->name_acls = calloc((size_t)(n ? n : 1), sizeof(*t->name_acls));
		if (!t->name_acls)
			return cerr(c, acl, "out of memory");
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(acl, (unsigned)i);
			const char *name = config_setting_get_string(e);
			if (reg_name_check(name, msg, sizeof(msg)) < 0)
				return cerr(c, e, "initiator_name: %s", msg);
			for (int j = 0; j < t->nname_acls; j++)
				if (strcasecmp(t->name_acls[j], name) == 0)
					return cerr(c, e, "duplicate initiator_name '%s'", name);
			snprintf(t->name_acls[t->nname_acls++], REG_NAME_MAX, "%s", name);
		}
	}
	if (config_setting_get_member(ts, "incoming_users") ||
	    config_setting_get_member(ts, "outgoing_user")) {
		char what[48];

		snprintf(what, sizeof(what), "target %d", t->tid);
		if (load_chap_bind(c, ts, cfg, &t->chap, what) < 0)
			return -1;
	}
	return 0;
}

static int load_targets(struct cctx *c, const config_setting_t *root, struct rs_config *cfg)
{
	const config_setting_t *ts = config_setting_get_member(root, "targets");
	int n;

	if (!ts)
		return 0;
	if (config_setting_type(ts) != CONFIG_TYPE_LIST)
		return cerr(c, ts, "'targets' must be a list ( { ... }, ... )");
	n = config_setting_length(ts);
	cfg->targets = calloc((size_t)(n ? n : 1), sizeof(*cfg->targets));
	if (!cfg->targets)
		return cerr(c, ts, "out of memory");
	for (int i = 0; i < n; i++) {
		/* count it first so config_free() releases a half-loaded target */
		cfg->ntargets++;
		if (load_target(c, config_setting_get_elem(ts, (unsigned)i), cfg, i) < 0)
			return -1;
	}
	return 0;
}

static void config_defaults(struct rs_config *cfg, const char *name)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->source, sizeof(cfg->source), "%s", name ? name : "(config)");
	iscsi_caps_default(&cfg->iscsi.caps);
	nfsgw_settings_default(&cfg->nfs);
	snprintf(cfg->nfs.state_dir, sizeof(cfg->nfs.state_dir), "%s", CONFIG_DEFAULT_STATE_DIR);
	cfg->iscsi.nop_interval_s = 15;
	cfg->iscsi.nop_timeout_s = 30;
	cfg->iscsi.queue_depth = 128;
}

static int config_from(config_t *lc, struct rs_config *cfg, struct cctx *c)
{
	static const char *const keys[] = {
		"daemon", "iscsi", "accounts", "discovery", "targets", "nfs", NULL
	};
	const config_setting_t *root = config_root_setting(lc);

	if (check_keys(c, root, "the top level", keys) < 0 ||
	    load_daemon(c, root, cfg) < 0 ||
	    load_iscsi(c, root, cfg) < 0 ||
	    load_accounts(c, root, cfg) < 0 ||
	    load_discovery(c, root, cfg) < 0 ||
	    load_targets(c, root, cfg) < 0 ||
	    check_directions(c, root, cfg) < 0 ||
	    load_nfs(c, root, cfg) < 0) {
		config_free(cfg);
		return -1;
	}
	/* The NFS file handle secret and NSM state live in the state dir. */
	if (cfg->state_dir[0])
		snprintf(cfg->nfs.state_dir, sizeof(cfg->nfs.state_dir), "%s", cfg->state_dir);
	return 0;
}

static int parse_error(config_t *lc, struct cctx *c)
{
	const char *file = config_error_file(lc) ? config_error_file(lc) : c->name;

	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s:%d: %s", file, config_error_line(lc),
			 config_error_text(lc) ? config_error_text(lc) : "syntax error");
	return -1;
}

int config_load(const char *path, struct rs_config *cfg, char *err, size_t errlen)
{
	struct cctx c = { .name = path, .err = err, .errlen = errlen };
	config_t lc;
	FILE *fp;
	int ret;

	config_defaults(cfg, path);
	/* Open it ourselves: libconfig only says "file I/O error". */
	fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	config_init(&lc);
	if (!config_read(&lc, fp)) {
		fclose(fp);
		ret = parse_error(&lc, &c);
		config_destroy(&lc);
		return ret;
	}
	fclose(fp);
	ret = config_from(&lc, cfg, &c);
	config_destroy(&lc);
	return ret;
}

static int load_string(const char *text, const char *name, bool quiet, struct rs_config *cfg,
		       char *err, size_t errlen)
{
	struct cctx c = { .name = name ? name : "(string)", .err = err, .errlen = errlen,
			  .quiet = quiet };
	config_t lc;
	int ret;

	config_defaults(cfg, c.name);
	config_init(&lc);
	if (!config_read_string(&lc, text ? text : "")) {
		ret = parse_error(&lc, &c);
		config_destroy(&lc);
		return ret;
	}
	ret = config_from(&lc, cfg, &c);
	config_destroy(&lc);
	return ret;
}

int config_load_string(const char *text, const char *name, struct rs_config *cfg,
		       char *err, size_t errlen)
{
	return load_string(text, name, false, cfg, err, errlen);
}

int config_load_running(const char *text, struct rs_config *cfg, char *err, size_t errlen)
{
	return load_string(text, "(running configuration)", true, cfg, err, errlen);
}

void config_free(struct rs_config *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; i < cfg->ntargets; i++) {
		free(cfg->targets[i].luns);
		free(cfg->targets[i].addr_acls);
		free(cfg->targets[i].name_acls);
		chap_bind_free(&cfg->targets[i].chap);
	}
	free(cfg->targets);
	cfg->targets = NULL;
	cfg->ntargets = 0;
	if (cfg->accounts)
		explicit_bzero(cfg->accounts, sizeof(*cfg->accounts) * (size_t)cfg->naccounts);
	free(cfg->accounts);
	cfg->accounts = NULL;
	cfg->naccounts = 0;
	cfg->nweak = 0;
	chap_bind_free(&cfg->discovery);
	for (int i = 0; i < cfg->nexports; i++)
		free(cfg->exports[i].clients);
	free(cfg->exports);
	cfg->exports = NULL;
	cfg->nexports = 0;
}

/* Bind b's accounts to tid (0 = discovery). */
static int apply_bind(int tid, const struct rs_config_chap_bind *b, char *msg, size_t msglen)
{
	int ret = 0;

	for (int i = 0; i < b->nin && ret == 0; i++)
		ret = reg_account_bind(tid, b->in[i], false, msg, msglen);
	if (ret == 0 && b->out[0])
		ret = reg_account_bind(tid, b->out, true, msg, msglen);
	return ret;
}

int config_apply(const struct rs_config *cfg, char *err, size_t errlen)
{
	char msg[512];
	int done = 0, naccts = 0, nexp = 0, ret = 0;

	/* Accounts first: targets bind them by name. */
	for (; naccts < cfg->naccounts; naccts++) {
		const struct rs_config_account *a = &cfg->accounts[naccts];
		ret = reg_account_new(a->user, a->password, msg, sizeof(msg));
		if (ret < 0) {
			snprintf(err, errlen, "%s:%d: %s", cfg->source, a->line, msg);
			goto rollback;
		}
	}
	ret = apply_bind(0, &cfg->discovery, msg, sizeof(msg));
	if (ret < 0) {
		snprintf(err, errlen, "%s: discovery: %s", cfg->source, msg);
		goto rollback;
	}
	for (; done < cfg->ntargets; done++) {
		const struct rs_config_target *t = &cfg->targets[done];

		ret = reg_target_new(t->tid, t->iqn, msg, sizeof(msg));
		if (ret < 0) {
			snprintf(err, errlen, "%s:%d: %s", cfg->source, t->line, msg);
			goto rollback;
		}
		for (int i = 0; i < t->nluns && ret == 0; i++) {
			const struct rs_config_lun *l = &t->luns[i];
			struct reg_lun_spec spec = {
				.lun = l->lun,
				.path = l->path,
				.bstype = l->bstype,
				.bs = l->bs,
				.lu = { .serial = l->serial[0] ? l->serial : NULL,
					.readonly = l->bs.readonly,
					.thin_provisioning = l->thin_provisioning,
					.removable = l->removable },
			};
			ret = reg_lun_new(t->tid, &spec, msg, sizeof(msg));
			if (ret < 0)
				snprintf(err, errlen, "%s:%d: target %d LUN %" PRIu64 ": %s", cfg->source,
					 l->line, t->tid, l->lun, msg);
		}
		for (int i = 0; i < t->naddr_acls && ret == 0; i++) {
			ret = reg_bind_addr(t->tid, t->addr_acls[i], msg, sizeof(msg));
			if (ret < 0)
				snprintf(err, errlen, "%s:%d: %s", cfg->source, t->line, msg);
		}
		for (int i = 0; i < t->nname_acls && ret == 0; i++) {
			ret = reg_bind_initiator(t->tid, t->name_acls[i], msg, sizeof(msg));
			if (ret < 0)
				snprintf(err, errlen, "%s:%d: %s", cfg->source, t->line, msg);
		}
		if (ret == 0) {
			ret = apply_bind(t->tid, &t->chap, msg, sizeof(msg));
			if (ret < 0)
				snprintf(err, errlen, "%s:%d: target %d: %s", cfg->source, t->line, t->tid, msg);
		}
		if (ret < 0) {
			done++;  /* this target was created: roll it back too */
			goto rollback;
		}
	}
	/* Exports last: they fail on a missing directory, which is the most
	 * likely runtime error, and then everything above is undone. */
	if (cfg->nfs_enabled) {
		for (; nexp < cfg->nexports; nexp++) {
			const struct rs_config_export *e = &cfg->exports[nexp];
			if (nfs_export_add(e->path, e->clients, e->nclients, msg, sizeof(msg)) < 0) {
				/* (exports.c's messages name the path) */
				snprintf(err, errlen, "%s:%d: nfs: %s", cfg->source, e->line, msg);
				ret = -1;
				goto rollback;
			}
		}
	} else if (cfg->nexports) {
		log_warn("%s: nfs.enabled is false: %d export%s not served", cfg->source,
			 cfg->nexports, cfg->nexports == 1 ? "" : "s");
	}
	pthread_mutex_lock(&running_lock);
	running.applied = true;
	running.enabled = cfg->nfs_enabled;
	running.nfs = cfg->nfs;
	pthread_mutex_unlock(&running_lock);
	return 0;
rollback:
	/* Leave the registry and the export table as we found them (deleting
	 * an account unbinds it). */
	for (int i = 0; i < nexp; i++)
		nfs_export_delete(cfg->exports[i].path, NULL, 0);
	for (int i = 0; i < done; i++)
		reg_target_delete(cfg->targets[i].tid, true, NULL, 0);
	for (int i = 0; i < naccts; i++)
		reg_account_delete(cfg->accounts[i].user, NULL, 0);
	return -1;
}
