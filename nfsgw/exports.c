/* exports.c - the export table with /etc/exports (exports(5)) semantics.
 *
 * Parsing follows exports(5) and nfs-utils' exportfs: a line is a path
 * (optionally double-quoted, with \ooo octal escapes) followed by client
 * specs, each optionally followed by "(options)" with no blank in between; a
 * "-opts" token sets default options for the clients after it; "(opts)"
 * alone (the classic "host (rw)" mistake) is a separate world-wide client,
 * exactly as exports(5) warns.  Options we do not implement are refused
 * loudly instead of being silently ignored; options whose behaviour we
 * always have (no_subtree_check: handles are always checked against the
 * export root) or that have no meaning here (wdelay) are accepted.
 *
 * Export ids are persistent because file handles carry them: fsid=N if given
 * (the same on every client of the export), otherwise a 31-bit FNV-1a hash of
 * the canonical path with the top bit set, so derived ids never collide with
 * small explicit fsids.  Two exports with the same id are refused.
 *
 * The table is a small array under one mutex (changes come from the control
 * thread; lookups from reactors take a reference and drop the lock at once).
 */
#include "exports.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/reactor.h"

#define EXPORTS_MAX 256

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nfs_export *g_exports[EXPORTS_MAX];
static int g_nexports;

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ================================================================ options */

static void options_default(struct export_options *o)
{
	memset(o, 0, sizeof(*o));
	o->rw = false;
	o->sync = true;
	o->root_squash = true;
	o->all_squash = false;
	o->anonuid = o->anongid = 65534;
	o->secure = true;
	o->auth_sys = true;
	o->auth_none = false;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Apply "opt,opt=val,..." on top of *o. */
static int apply_options(const char *opts, struct export_options *o, char *err, size_t errlen)
{
	char buf[1024], *save = NULL, *tok;

	if (strlen(opts) >= sizeof(buf)) {
		seterr(err, errlen, "export options too long");
		return -1;
	}
	strcpy(buf, opts);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');

		if (val)
			*val++ = '\0';
		if (!val && !strcmp(tok, "rw")) {
			o->rw = true;
		} else if (!val && !strcmp(tok, "ro")) {
			o->rw = false;
		} else if (!val && !strcmp(tok, "sync")) {
			o->sync = true;
		} else if (!val && !strcmp(tok, "async")) {
			o->sync = false;
		} else if (!val && !strcmp(tok, "root_squash")) {
			o->root_squash = true;
		} else if (!val && !strcmp(tok, "no_root_squash")) {
			o->root_squash = false;
		} else if (!val && !strcmp(tok, "all_squash")) {
			o->all_squash = true;
		} else if (!val && !strcmp(tok, "no_all_squash")) {
			o->all_squash = false;
		} else if (!val && !strcmp(tok, "secure")) {
			o->secure = true;
		} else if (!val && !strcmp(tok, "insecure")) {
			o->secure = false;
		} else if (!val && (!strcmp(tok, "no_subtree_check") || !strcmp(tok, "subtree_check") ||
				    !strcmp(tok, "wdelay") || !strcmp(tok, "no_wdelay"))) {
			/* accepted: see the header comment */
		} else if (val && !strcmp(tok, "anonuid")) {
			if (!parse_u32(val, &o->anonuid)) {
				seterr(err, errlen, "export option anonuid=%s: expected a number", val);
				return -1;
			}
		} else if (val && !strcmp(tok, "anongid")) {
			if (!parse_u32(val, &o->anongid)) {
				seterr(err, errlen, "export option anongid=%s: expected a number", val);
				return -1;
			}
		} else if (val && !strcmp(tok, "fsid")) {
			if (!parse_u32(val, &o->fsid)) {
				seterr(err, errlen,
				       "export option fsid=%s: only numeric fsids are supported", val);
				return -1;
			}
			o->fsid_set = true;
		} else if (val && !strcmp(tok, "sec")) {
			char *s2 = NULL, *f;
			o->auth_sys = o->auth_none = false;
			for (f = strtok_r(val, ":", &s2); f; f = strtok_r(NULL, ":", &s2)) {
				if (!strcmp(f, "sys")) {
					o->auth_sys = true;
				} else if (!strcmp(f, "none")) {
					o->auth_none = true;
				} else {
					seterr(err, errlen, "export option sec=: flavor '%s' is not supported (sys, none)", f);
					return -1;
				}
			}
			if (!o->auth_sys && !o->auth_none) {
				seterr(err, errlen, "export option sec=: no flavor given");
				return -1;
			}
		} else {
			seterr(err, errlen, "unknown export option '%s%s%s'", tok, val ? "=" : "",
			       val ? val : "");
			return -1;
		}
	}
	return 0;
}

int exports_parse_options(const char *opts, struct export_options *o, char *err, size_t errlen)
{
	options_default(o);
	return apply_options(opts ? opts : "", o, err, errlen);
}

void exports_options_str(const struct export_options *o, char *buf, size_t len)
{
	char sec[16];

	snprintf(sec, sizeof(sec), "%s%s%s", o->auth_sys ? "sys" : "",
		 o->auth_sys && o->auth_none ? ":" : "", o->auth_none ? "none" : "");
	snprintf(buf, len, "%s,%s,%s,%s,%s,anonuid=%u,anongid=%u,sec=%s", o->rw ? "rw" : "ro",
		 o->sync ? "sync" : "async", o->root_squash ? "root_squash" : "no_root_squash",
		 o->all_squash ? "all_squash" : "no_all_squash", o->secure ? "secure" : "insecure",
		 o->anonuid, o->anongid, sec);
	if (o->fsid_set) {
		size_t n = strlen(buf);
		snprintf(buf + n, len > n ? len - n : 0, ",fsid=%u", o->fsid);
	}
}

void nfs_export_squash(const struct export_options *o, struct rpc_auth *a)
{
	bool anon = o->all_squash || a->flavor != RPC_AUTH_SYS || !o->auth_sys;

	if (anon) {
		a->uid = o->anonuid;
		a->gid = o->anongid;
		a->ngids = 0;
		return;
	}
	/* (uid_t)-1 is no user: the kernel takes it as "leave unchanged"
	 * (setfsuid) or rejects it (setgroups).  Linux nfsd maps such an id
	 * to the anonymous user (nfsd_setuser); so do we, and drop it from the
	 * supplementary list. */
	if (a->uid == UINT32_MAX)
		a->uid = o->anonuid;
	if (a->gid == UINT32_MAX)
		a->gid = o->anongid;
	for (uint32_t i = 0, n = a->ngids < RPC_MAX_GIDS ? a->ngids : RPC_MAX_GIDS; i < n; i++)
		if (a->gids[i] == UINT32_MAX)
			a->gids[i] = o->anongid;
	if (!o->root_squash)
		return;
	/* exports(5): root_squash maps uid 0 and gid 0; nfsd also squashes a
	 * gid 0 in the supplementary list, otherwise it would grant root's
	 * group access. */
	if (a->uid == 0)
		a->uid = o->anonuid;
	if (a->gid == 0)
		a->gid = o->anongid;
	for (uint32_t i = 0; i < a->ngids && i < RPC_MAX_GIDS; i++)
		if (a->gids[i] == 0)
			a->gids[i] = o->anongid;
}

/* ================================================================ client specs */

/* "10.0.0.0/255.0.0.0" (exports(5) address/netmask) -> "10.0.0.0/8". */
static int netmask_to_prefix(const char *spec, char *out, size_t outlen)
{
	const char *slash = strchr(spec, '/');
	struct in_addr m;
	uint32_t v;
	int prefix = 0;

	if (!slash || !strchr(slash, '.'))
		return 0;
	if (inet_pton(AF_INET, slash + 1, &m) != 1)
		return -1;
	v = ntohl(m.s_addr);
	while (v & 0x80000000u) {
		prefix++;
		v <<= 1;
	}
	if (v)
		return -1;    /* not contiguous */
	snprintf(out, outlen, "%.*s/%d", (int)(slash - spec), spec, prefix);
	return 1;
}

static int parse_client(const char *spec, const struct export_options *defaults, const char *opts,
			struct export_client *c, char *err, size_t errlen)
{
	char aerr[160], conv[128];
	int nm;

	memset(c, 0, sizeof(*c));
	if (strlen(spec) >= sizeof(c->spec)) {
		seterr(err, errlen, "client spec too long");
		return -1;
	}
	snprintf(c->spec, sizeof(c->spec), "%s", *spec ? spec : "*");
	c->opts = *defaults;
	if (opts && apply_options(opts, &c->opts, err, errlen) < 0)
		return -1;
	if (!*spec || !strcmp(spec, "*")) {
		c->kind = EXPORT_CLIENT_ANY;
		return 0;
	}
	if (spec[0] == '@') {
		seterr(err, errlen, "client '%s': netgroups are not supported", spec);
		return -1;
	}
	if (!strncasecmp(spec, "gss/", 4)) {
		seterr(err, errlen, "client '%s': gss clients are not supported", spec);
		return -1;
	}
	nm = netmask_to_prefix(spec, conv, sizeof(conv));
	if (nm < 0) {
		seterr(err, errlen, "client '%s': bad netmask", spec);
		return -1;
	}
	if (strcasecmp(spec, "ALL") != 0 &&
	    acl_addr_parse(nm ? conv : spec, &c->addr, aerr, sizeof(aerr)) == 0) {
		c->kind = EXPORT_CLIENT_ADDR;
		return 0;
	}
	if (strchr(spec, '/') || strchr(spec, ':')) {
		seterr(err, errlen, "client '%s': not a valid address or CIDR", spec);
		return -1;
	}
	for (const char *p = spec; *p; p++) {
		if (!isalnum((unsigned char)*p) && !strchr(".-_*?[]", *p)) {
			seterr(err, errlen, "client '%s': invalid host name", spec);
			return -1;
		}
	}
	c->kind = strpbrk(spec, "*?[") ? EXPORT_CLIENT_WILDCARD : EXPORT_CLIENT_HOST;
	return 0;
}

/* Next whitespace-separated token of a line; handles "quoted paths" and the
 * client(opts) form.  Returns false at the end of the line or a comment. */
static bool next_token(const char **pp, char *buf, size_t len, bool *quoted, bool *toolong)
{
	const char *p = *pp;
	size_t n = 0;
	int depth = 0;

	*quoted = false;
	*toolong = false;
	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p || *p == '#')
		return false;
	while (*p && (depth || *quoted || !isspace((unsigned char)*p))) {
		char ch = *p++;

		if (ch == '"') {
			*quoted = !*quoted;
			continue;
		}
		if (ch == '\\' && p[0] >= '0' && p[0] <= '7' && p[1] >= '0' && p[1] <= '7' &&
		    p[2] >= '0' && p[2] <= '7') {
			/* exportfs writes blanks in paths as \040 */
			ch = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
			p += 3;
		} else if (ch == '(' && !*quoted) {
			depth++;
		} else if (ch == ')' && !*quoted && depth) {
			depth--;
		}
		if (n + 1 >= len) {
			*toolong = true;
			return false;
		}
		buf[n++] = ch;
	}
	buf[n] = '\0';
	*pp = p;
	return true;
}

int exports_parse_line(const char *line, char *path, size_t pathlen,
		       struct export_client **clients, int *nclients, char *err, size_t errlen)
{
	char tok[4096];
	const char *p = line;
	bool quoted, toolong;
	struct export_options defaults;
	struct export_client *cl = NULL;
	int n = 0;

	*clients = NULL;
	*nclients = 0;
	if (!next_token(&p, tok, sizeof(tok), &quoted, &toolong)) {
		seterr(err, errlen, toolong ? "export path too long" : "empty export line");
		return -1;
	}
	if (tok[0] != '/') {
		seterr(err, errlen, "export path '%s' is not absolute", tok);
		return -1;
	}
	if (strlen(tok) >= pathlen) {
		seterr(err, errlen, "export path too long");
		return -1;
	}
	strcpy(path, tok);
	options_default(&defaults);
	while (next_token(&p, tok, sizeof(tok), &quoted, &toolong)) {
		char *open, *spec = tok, *opts = NULL;
		struct export_client *ncl;

		if (tok[0] == '-') {
			/* "-rw,sync": defaults for the clients that follow */
			if (apply_options(tok + 1, &defaults, err, errlen) < 0)
				goto fail;
			continue;
		}
		open = strchr(tok, '(');
		if (open) {
			size_t l = strlen(open);
			if (l < 2 || open[l - 1] != ')' || strchr(open + 1, '(')) {
				seterr(err, errlen, "client '%s': malformed option list", tok);
				goto fail;
			}
			open[l - 1] = '\0';
			*open = '\0';
			opts = open + 1;
		}
		ncl = realloc(cl, sizeof(*cl) * (size_t)(n + 1));
		if (!ncl) {
			seterr(err, errlen, "out of memory");
			goto fail;
		}
		cl = ncl;
		if (parse_client(spec, &defaults, opts, &cl[n], err, errlen) < 0)
			goto fail;
		n++;
	}
	if (toolong) {
		seterr(err, errlen, "token too long in export line");
		goto fail;
	}
	if (n == 0) {
		/* exports(5): no client at all means every host, default options. */
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		if (parse_client("*", &defaults, NULL, cl, err, errlen) < 0)
			goto fail;
		n = 1;
	}
	*clients = cl;
	*nclients = n;
	return 0;
fail:
	free(cl);
	return -1;
}

/* ================================================================ table */

static void export_free(struct nfs_export *e)
{
	if (e->root_fd >= 0)
		close(e->root_fd);
	for (int i = 0; i < e->nclients; i++)
		free(e->clients[i].host_addrs);
	free(e->clients);
	free(e);
}

void nfs_export_put(struct nfs_export *e)
{
	if (e && __atomic_sub_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		export_free(e);
}

static struct nfs_export *export_ref(struct nfs_export *e)
{
	__atomic_add_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL);
	return e;
}

static uint32_t path_id(const char *path)
{
	uint32_t h = 2166136261u;

	for (const char *p = path; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 16777619u;
	}
	return h | 0x80000000u;
}

/* Resolve EXPORT_CLIENT_HOST names now (control thread): exports(5) matches
 * a host name by the addresses it has when the export is set up. */
static void resolve_hosts(struct export_client *c)
{
	struct addrinfo hints, *res = NULL, *ai;
	int n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(c->spec, NULL, &hints, &res) != 0) {
		log_warn("exports: client '%s' does not resolve; it matches nobody for now", c->spec);
		return;
	}
	for (ai = res; ai; ai = ai->ai_next)
		n++;
	c->host_addrs = calloc((size_t)(n ? n : 1), sizeof(*c->host_addrs));
	if (!c->host_addrs) {
		freeaddrinfo(res);
		return;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char text[INET6_ADDRSTRLEN];
		acl_sockaddr_str(ai->ai_addr, text, sizeof(text));
		if (acl_addr_parse(text, &c->host_addrs[c->nhost_addrs], NULL, 0) == 0)
			c->nhost_addrs++;
	}
	freeaddrinfo(res);
}

static struct nfs_export *export_build(const char *path, const struct export_client *clients,
				       int nclients, char *err, size_t errlen)
{
	struct nfs_export *e;
	char canon[PATH_MAX];
	struct stat st;
	bool fsid_set = false;
	uint32_t fsid = 0;

	if (nclients <= 0) {
		seterr(err, errlen, "export %s: no clients", path);
		return NULL;
	}
	if (!path || path[0] != '/') {
		seterr(err, errlen, "export path '%s' is not absolute", path ? path : "");
		return NULL;
	}
	if (!realpath(path, canon)) {
		seterr(err, errlen, "export %s: %s", path, strerror(errno));
		return NULL;
	}
	if (stat(canon, &st) < 0 || !S_ISDIR(st.st_mode)) {
		seterr(err, errlen, "export %s: not a directory", path);
		return NULL;
	}
	for (int i = 0; i < nclients; i++) {
		if (!clients[i].opts.fsid_set)
			continue;
		if (fsid_set && clients[i].opts.fsid != fsid) {
			seterr(err, errlen, "export %s: clients disagree on fsid= (%u vs %u)", path, fsid,
			       clients[i].opts.fsid);
			return NULL;
		}
		fsid_set = true;
		fsid = clients[i].opts.fsid;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->clients = calloc((size_t)nclients, sizeof(*e->clients)))) {
		free(e);
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	e->root_fd = -1;
	snprintf(e->path, sizeof(e->path), "%s", canon);
	e->id = fsid_set ? fsid : path_id(canon);
	e->refcnt = 1;
	for (int i = 0; i < nclients; i++) {
		e->clients[i] = clients[i];
		e->clients[i].host_addrs = NULL;
		e->clients[i].nhost_addrs = 0;
		e->nclients++;
		if (e->clients[i].kind == EXPORT_CLIENT_HOST)
			resolve_hosts(&e->clients[i]);
	}
	e->root_fd = open(canon, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (e->root_fd < 0) {
		seterr(err, errlen, "export %s: %s", path, strerror(errno));
		export_free(e);
		return NULL;
	}
	return e;
}

/* With g_lock held. */
static int find_path(const char *canon)
{
	for (int i = 0; i < g_nexports; i++)
		if (!strcmp(g_exports[i]->path, canon))
			return i;
	return -1;
}

static int find_id(uint32_t id)
{
	for (int i = 0; i < g_nexports; i++)
		if (g_exports[i]->id == id)
			return i;
	return -1;
}

int nfs_export_add(const char *path, const struct export_client *clients, int nclients,
		   char *err, size_t errlen)
{
	struct nfs_export *e = export_build(path, clients, nclients, err, errlen);
	int i;

	if (!e)
		return -1;
	pthread_mutex_lock(&g_lock);
	if (find_path(e->path) >= 0) {
		seterr(err, errlen, "%s is already exported", e->path);
		goto fail;
	}
	if ((i = find_id(e->id)) >= 0) {
		seterr(err, errlen, "export id %u of %s is already used by %s", e->id, e->path,
		       g_exports[i]->path);
		goto fail;
	}
	if (g_nexports == EXPORTS_MAX) {
		seterr(err, errlen, "too many exports (%d)", EXPORTS_MAX);
		goto fail;
	}
	g_exports[g_nexports++] = e;
	pthread_mutex_unlock(&g_lock);
	log_info("exports: %s exported (id %u, %d client spec%s)", e->path, e->id, e->nclients,
		 e->nclients == 1 ? "" : "s");
	return 0;
fail:
	pthread_mutex_unlock(&g_lock);
	nfs_export_put(e);
	return -1;
}

int nfs_export_update(const char *path, const struct export_client *clients, int nclients,
		      char *err, size_t errlen)
{
	struct nfs_export *e = export_build(path, clients, nclients, err, errlen), *old;
	int i, j;

	if (!e)
		return -1;
	pthread_mutex_lock(&g_lock);
	i = find_path(e->path);
	if (i < 0) {
		seterr(err, errlen, "%s is not exported", e->path);
		goto fail;
	}
	j = find_id(e->id);
	if (j >= 0 && j != i) {
		seterr(err, errlen, "export id %u is already used by %s", e->id, g_exports[j]->path);
		goto fail;
	}
	old = g_exports[i];
	g_exports[i] = e;
	pthread_mutex_unlock(&g_lock);
	nfs_export_put(old);
	return 0;
fail:
	pthread_mutex_unlock(&g_lock);
	nfs_export_put(e);
	return -1;
}

int nfs_export_delete(const char *path, char *err, size_t errlen)
{
	char canon[PATH_MAX];
	struct nfs_export *e;
	int i;

	if (!realpath(path, canon))
		snprintf(canon, sizeof(canon), "%s", path);
	pthread_mutex_lock(&g_lock);
	i = find_path(canon);
	if (i < 0)
		i = find_path(path);
	if (i < 0) {
		pthread_mutex_unlock(&g_lock);
		seterr(err, errlen, "%s is not exported", path);
		return -1;
	}
	e = g_exports[i];
	memmove(&g_exports[i], &g_exports[i + 1], sizeof(g_exports[0]) * (size_t)(g_nexports - i - 1));
	g_nexports--;
	pthread_mutex_unlock(&g_lock);
	log_info("exports: %s no longer exported", e->path);
	nfs_export_put(e);
	return 0;
}

struct nfs_export *nfs_export_get_by_id(uint32_t id)
{
	struct nfs_export *e = NULL;
	int i;

	pthread_mutex_lock(&g_lock);
	if ((i = find_id(id)) >= 0)
		e = export_ref(g_exports[i]);
	pthread_mutex_unlock(&g_lock);
	return e;
}

struct nfs_export *nfs_export_get_by_path(const char *path)
{
	struct nfs_export *e = NULL;
	int i;

	pthread_mutex_lock(&g_lock);
	if ((i = find_path(path)) >= 0)
		e = export_ref(g_exports[i]);
	pthread_mutex_unlock(&g_lock);
	return e;
}

struct nfs_export *nfs_export_get_covering(const char *path, const char **rest)
{
	struct nfs_export *best = NULL;
	size_t bestlen = 0;

	pthread_mutex_lock(&g_lock);
	for (int i = 0; i < g_nexports; i++) {
		const char *ep = g_exports[i]->path;
		size_t l = strlen(ep);

		if (l == 1 && ep[0] == '/')
			l = 0;    /* "/" covers everything */
		if (strncmp(path, ep, l) != 0 || (path[l] != '\0' && path[l] != '/'))
			continue;
		if (!best || l > bestlen) {
			best = g_exports[i];
			bestlen = l;
		}
	}
	if (best) {
		export_ref(best);
		*rest = path + bestlen + (path[bestlen] == '/');
	}
	pthread_mutex_unlock(&g_lock);
	return best;
}

void nfs_exports_foreach(void (*fn)(const struct nfs_export *e, void *arg), void *arg)
{
	pthread_mutex_lock(&g_lock);
	for (int i = 0; i < g_nexports; i++)
		fn(g_exports[i], arg);
	pthread_mutex_unlock(&g_lock);
}

void nfs_exports_clear(void)
{
	struct nfs_export *list[EXPORTS_MAX];
	int n;

	pthread_mutex_lock(&g_lock);
	n = g_nexports;
	memcpy(list, g_exports, sizeof(list[0]) * (size_t)n);
	g_nexports = 0;
	pthread_mutex_unlock(&g_lock);
	for (int i = 0; i < n; i++)
		nfs_export_put(list[i]);
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static const char *kind_name(enum export_client_kind k)
{
	switch (k) {
	case EXPORT_CLIENT_ANY: return "any";
	case EXPORT_CLIENT_ADDR: return "address";
	case EXPORT_CLIENT_HOST: return "host";
	case EXPORT_CLIENT_WILDCARD: return "wildcard";
	}
	return "?";
}

void nfs_exports_show(FILE *out, bool json)
{
	char opts[256];

	pthread_mutex_lock(&g_lock);
	if (json)
		fputc('[', out);
	for (int i = 0; i < g_nexports; i++) {
		const struct nfs_export *e = g_exports[i];

		if (json) {
			fprintf(out, "%s{\"id\":%u,\"path\":", i ? "," : "", e->id);
			json_str(out, e->path);
			fputs(",\"clients\":[", out);
		}
		for (int c = 0; c < e->nclients; c++) {
			const struct export_client *cl = &e->clients[c];

			exports_options_str(&cl->opts, opts, sizeof(opts));
			if (json) {
				fprintf(out, "%s{\"spec\":", c ? "," : "");
				json_str(out, cl->spec);
				fprintf(out, ",\"kind\":\"%s\",\"options\":", kind_name(cl->kind));
				json_str(out, opts);
				fputc('}', out);
			} else {
				/* like `exportfs -v`: one line per client */
				fprintf(out, "%-24s %s(%s)\n", e->path, cl->spec, opts);
			}
		}
		if (json)
			fputs("]}", out);
	}
	if (json)
		fputs("]\n", out);
	pthread_mutex_unlock(&g_lock);
}

/* ================================================================ matching */

#define HOSTCACHE_SIZE 64
#define HOSTCACHE_TTL_MS (10u * 60u * 1000u)

struct hostcache_entry {
	int family;
	uint8_t addr[16];
	char name[256];
	uint64_t stamp;
};

static pthread_mutex_t g_hc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hostcache_entry g_hc[HOSTCACHE_SIZE];
static unsigned g_hc_next;

static bool peer_key(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(addr, &a6->s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6, 16);
		}
		return true;
	}
	return false;
}

void nfs_export_cache_hostname(const struct sockaddr *peer, const char *name)
{
	int family;
	uint8_t addr[16];
	struct hostcache_entry *slot = NULL;

	if (!peer_key(peer, &family, addr))
		return;
	pthread_mutex_lock(&g_hc_lock);
	for (int i = 0; i < HOSTCACHE_SIZE; i++)
		if (g_hc[i].family == family && !memcmp(g_hc[i].addr, addr, 16))
			slot = &g_hc[i];
	if (!slot)
		slot = &g_hc[g_hc_next++ % HOSTCACHE_SIZE];
	slot->family = family;
	memcpy(slot->addr, addr, 16);
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->stamp = rs_now_ms();
	pthread_mutex_unlock(&g_hc_lock);
}

static bool cached_hostname(const struct sockaddr *peer, char *name, size_t len)
{
	int family;
	uint8_t addr[16];
	bool found = false;
	uint64_t now = rs_now_ms();

	if (!peer_key(peer, &family, addr))
		return false;
	pthread_mutex_lock(&g_hc_lock);
	for (int i = 0; i < HOSTCACHE_SIZE; i++) {
		if (g_hc[i].family == family && !memcmp(g_hc[i].addr, addr, 16) &&
		    now - g_hc[i].stamp < HOSTCACHE_TTL_MS) {
			snprintf(name, len, "%s", g_hc[i].name);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&g_hc_lock);
	return found;
}

int nfs_export_resolve_peer(const struct sockaddr *peer, char *name, size_t len)
{
	struct addrinfo hints, *res = NULL;
	socklen_t sl = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						   : sizeof(struct sockaddr_in);
	int family;
	uint8_t addr[16];
	bool confirmed = false;

	if (!peer_key(peer, &family, addr))
		return -1;
	if (getnameinfo(peer, sl, name, (socklen_t)len, NULL, 0, NI_NAMEREQD) != 0)
		return -1;
	/* Forward-confirm (as mountd does): a reverse zone the client controls
	 * must not be enough to claim "*.trusted.example". */
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return -1;
	for (struct addrinfo *ai = res; ai && !confirmed; ai = ai->ai_next) {
		int f2;
		uint8_t a2[16];
		if (peer_key(ai->ai_addr, &f2, a2) && f2 == family && !memcmp(a2, addr, 16))
			confirmed = true;
	}
	freeaddrinfo(res);
	if (!confirmed)
		return -1;
	nfs_export_cache_hostname(peer, name);
	return 0;
}

bool nfs_export_needs_hostname(const struct nfs_export *e)
{
	for (int i = 0; i < e->nclients; i++)
		if (e->clients[i].kind == EXPORT_CLIENT_WILDCARD)
			return true;
	return false;
}

const struct export_client *nfs_export_match(const struct nfs_export *e,
					     const struct sockaddr *peer, const char *hostname)
{
	char cached[256];
	bool have_cached = false, tried = false;

	for (int i = 0; i < e->nclients; i++) {
		const struct export_client *c = &e->clients[i];

		switch (c->kind) {
		case EXPORT_CLIENT_ANY:
			return c;
		case EXPORT_CLIENT_ADDR:
			if (acl_addr_match(&c->addr, peer))
				return c;
			break;
		case EXPORT_CLIENT_HOST:
			for (int k = 0; k < c->nhost_addrs; k++)
				if (acl_addr_match(&c->host_addrs[k], peer))
					return c;
			if (hostname && !strcasecmp(hostname, c->spec))
				return c;
			break;
		case EXPORT_CLIENT_WILDCARD: {
			const char *name = hostname;
			if (!name) {
				if (!tried) {
					have_cached = cached_hostname(peer, cached, sizeof(cached));
					tried = true;
				}
				name = have_cached ? cached : NULL;
			}
			if (name && fnmatch(c->spec, name, FNM_CASEFOLD) == 0)
				return c;
			break;
		}
		}
	}
	return NULL;
}
