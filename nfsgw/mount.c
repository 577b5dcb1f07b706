/* mount.c - MOUNT v3 (RFC 1813 appendix I) and the v1 subset showmount uses.
 *
 * MNT decides who may mount what, as mountd(8) does: the path is normalised,
 * the export containing it is found (a subdirectory of an export may be
 * mounted: QEMU's nfs:// driver mounts the directory of its image), the
 * caller is matched against the export's client specs in order (the first
 * match wins, none -> MNT3ERR_ACCES), the "secure" option wants a source port
 * below 1024, and the directory is opened beneath the export root with
 * openat2(RESOLVE_BENEATH) so that neither ".." nor a symlink leads out of
 * it.  All of that may block (reverse DNS for wildcard specs, path lookup),
 * so MNT runs as a workpool job and answers from the reactor afterwards.
 *
 * The mount list behind DUMP is advisory (RFC 1813 5.2.2: clients may not
 * call UMNT), kept in memory, keyed by client address and path.
 */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/workpool.h"
#include "exports.h"
#include "fh.h"
#include "xdr.h"

#define MOUNT_LIST_MAX 4096

/* ================================================================ mount list */

struct mount_entry {
	char host[64];
	char path[MNTPATHLEN + 1];
};

static pthread_mutex_t g_ml_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mount_entry *g_ml;
static int g_ml_n, g_ml_cap;

static void ml_add(const char *host, const char *path)
{
	pthread_mutex_lock(&g_ml_lock);
	for (int i = 0; i < g_ml_n; i++)
		if (!strcmp(g_ml[i].host, host) && !strcmp(g_ml[i].path, path))
			goto out;
	if (g_ml_n == MOUNT_LIST_MAX) {
		/* Advisory list: forget the oldest rather than refuse a mount. */
		memmove(&g_ml[0], &g_ml[1], sizeof(g_ml[0]) * (size_t)(g_ml_n - 1));
		g_ml_n--;
	}
	if (g_ml_n == g_ml_cap) {
		int ncap = g_ml_cap ? g_ml_cap * 2 : 16;
		struct mount_entry *n = realloc(g_ml, sizeof(*n) * (size_t)ncap);
		if (!n)
			goto out;
		g_ml = n;
		g_ml_cap = ncap;
	}
	snprintf(g_ml[g_ml_n].host, sizeof(g_ml[0].host), "%s", host);
	snprintf(g_ml[g_ml_n].path, sizeof(g_ml[0].path), "%s", path);
	g_ml_n++;
out:
	pthread_mutex_unlock(&g_ml_lock);
}

/* Remove host's entry for path (path NULL: all of host's entries). */
static void ml_del(const char *host, const char *path)
{
	pthread_mutex_lock(&g_ml_lock);
	for (int i = 0; i < g_ml_n;) {
		if (!strcmp(g_ml[i].host, host) && (!path || !strcmp(g_ml[i].path, path))) {
			memmove(&g_ml[i], &g_ml[i + 1], sizeof(g_ml[0]) * (size_t)(g_ml_n - i - 1));
			g_ml_n--;
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&g_ml_lock);
}

void mount_list_clear(void)
{
	pthread_mutex_lock(&g_ml_lock);
	free(g_ml);
	g_ml = NULL;
	g_ml_n = g_ml_cap = 0;
	pthread_mutex_unlock(&g_ml_lock);
}

int mount_list_count(void)
{
	int n;

	pthread_mutex_lock(&g_ml_lock);
	n = g_ml_n;
	pthread_mutex_unlock(&g_ml_lock);
	return n;
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

void mount_list_show(FILE *out, bool json)
{
	pthread_mutex_lock(&g_ml_lock);
	if (json)
		fputc('[', out);
	for (int i = 0; i < g_ml_n; i++) {
		if (json) {
			fprintf(out, "%s{\"host\":", i ? "," : "");
			json_str(out, g_ml[i].host);
			fputs(",\"path\":", out);
			json_str(out, g_ml[i].path);
			fputc('}', out);
		} else
			fprintf(out, "%s:%s\n", g_ml[i].host, g_ml[i].path);
	}
	if (json)
		fputs("]\n", out);
	pthread_mutex_unlock(&g_ml_lock);
}

/* ================================================================ helpers */

int mount_path_normalise(const char *in, char *out, size_t len)
{
	size_t n = 0;
	const char *p = in;

	if (!in || in[0] != '/' || len < 2)
		return -1;
	while (*p) {
		const char *s;
		size_t cl;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		cl = (size_t)(p - s);
		if (cl == 1 && s[0] == '.')
			continue;
		if (cl == 2 && s[0] == '.' && s[1] == '.')
			return -1;
		if (n + 1 + cl + 1 > len)
			return -1;
		out[n++] = '/';
		memcpy(out + n, s, cl);
		n += cl;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

/* A growing XDR output for the list replies. */
struct gbuf {
	uint8_t *p;
	size_t len, cap;
	bool err;
};

static void gb_reserve(struct gbuf *g, size_t n)
{
	if (g->err || g->len + n <= g->cap)
		return;
	size_t ncap = g->cap ? g->cap : 1024;
	while (ncap < g->len + n)
		ncap *= 2;
	uint8_t *np = realloc(g->p, ncap);
	if (!np) {
		g->err = true;
		return;
	}
	g->p = np;
	g->cap = ncap;
}

static void gb_u32(struct gbuf *g, uint32_t v)
{
	gb_reserve(g, 4);
	if (g->err)
		return;
	xdr_put_be32(g->p + g->len, v);
	g->len += 4;
}

static void gb_str(struct gbuf *g, const char *s, size_t max)
{
	size_t n = strnlen(s, max), padded = (n + 3) & ~(size_t)3;

	gb_u32(g, (uint32_t)n);
	gb_reserve(g, padded);
	if (g->err)
		return;
	memcpy(g->p + g->len, s, n);
	memset(g->p + g->len + n, 0, padded - n);
	g->len += padded;
}

static void reply_gbuf(struct rpc_call *call, struct gbuf *g)
{
	uint8_t *p;

	if (g->err || !(p = rpc_reply_buf(call, g->len))) {
		free(g->p);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	memcpy(p, g->p, g->len);
	free(g->p);
	rpc_reply_send(call, g->len, NULL, 0, NULL, NULL);
}

static void reply_void(struct rpc_call *call)
{
	rpc_reply_buf(call, 0);
	rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
}

static uint16_t peer_port(const struct rpc_call *call)
{
	const struct sockaddr *sa = (const struct sockaddr *)&call->peer;

	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* ================================================================ MNT */

struct mnt_job {
	struct wp_job job;
	struct rpc_call *call;
	char path[MNTPATHLEN + 1];
	char host[64];
	uint32_t status;
	struct nfs_fh fh;
	bool auth_sys, auth_none;
};

static int open_beneath(int root_fd, const char *rest)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, root_fd, rest, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

static uint32_t errno_to_mnt3(int err)
{
	switch (err) {
	case ENOENT: return MNT3ERR_NOENT;
	case ENOTDIR: return MNT3ERR_NOTDIR;
	case EACCES: case EPERM: case EXDEV: case ELOOP: return MNT3ERR_ACCES;
	case ENAMETOOLONG: return MNT3ERR_NAMETOOLONG;
	case EIO: return MNT3ERR_IO;
	default: return MNT3ERR_SERVERFAULT;
	}
}

static void mnt_work(struct wp_job *job)
{
	struct mnt_job *j = container_of(job, struct mnt_job, job);
	const struct sockaddr *peer = (const struct sockaddr *)&j->call->peer;
	char norm[MNTPATHLEN + 1], hostname[256];
	const char *rest = "", *hn = NULL;
	const struct export_client *c;
	struct nfs_export *e;
	int fd, ret;

	if (mount_path_normalise(j->path, norm, sizeof(norm)) < 0) {
		j->status = MNT3ERR_NOENT;
		return;
	}
	e = nfs_export_get_covering(norm, &rest);
	if (!e) {
		log_notice("mount: refused request from %s for %s: not exported", j->host, norm);
		j->status = MNT3ERR_ACCES;
		return;
	}
	if (nfs_export_needs_hostname(e) && nfs_export_resolve_peer(peer, hostname, sizeof(hostname)) == 0)
		hn = hostname;
	c = nfs_export_match(e, peer, hn);
	if (!c) {
		log_notice("mount: refused request from %s for %s: client not allowed", j->host, norm);
		j->status = MNT3ERR_ACCES;
		goto out;
	}
	/* exports(5) "secure": requests must come from a port below 1024. */
	if (c->opts.secure && peer_port(j->call) >= 1024) {
		log_notice("mount: refused request from %s for %s: source port %u not reserved "
			   "(export is 'secure')", j->host, norm, peer_port(j->call));
		j->status = MNT3ERR_ACCES;
		goto out;
	}
	if (*rest) {
		fd = open_beneath(e->root_fd, rest);
		if (fd < 0) {
			j->status = errno_to_mnt3(-fd);
			goto out;
		}
	} else {
		fd = e->root_fd;
	}
	ret = fh_make(e->id, fd, "", &j->fh);
	if (fd != e->root_fd)
		close(fd);
	if (ret < 0) {
		log_warn("mount: no file handle for %s: %s", norm, strerror(-ret));
		j->status = MNT3ERR_SERVERFAULT;
		goto out;
	}
	j->auth_sys = c->opts.auth_sys;
	j->auth_none = c->opts.auth_none;
	j->status = MNT3_OK;
	ml_add(j->host, norm);
	log_info("mount: %s mounted %s", j->host, norm);
out:
	nfs_export_put(e);
}

static void mnt_done(struct wp_job *job)
{
	struct mnt_job *j = container_of(job, struct mnt_job, job);
	struct rpc_call *call = j->call;
	uint8_t *p = rpc_reply_buf(call, 4 + 4 + NFS_FH_MAX + 4 + 8);
	struct xdr_enc e;

	if (!p) {
		free(j);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	/* mountres3: fhs_status; OK -> { fhandle3 opaque<64>; int auth_flavors<> } */
	xdr_enc_init(&e, p, 4 + 4 + NFS_FH_MAX + 4 + 8);
	xdr_put_u32(&e, j->status);
	if (j->status == MNT3_OK) {
		xdr_put_opaque(&e, j->fh.data, j->fh.len);
		xdr_put_u32(&e, (uint32_t)j->auth_sys + (uint32_t)j->auth_none);
		if (j->auth_sys)
			xdr_put_u32(&e, RPC_AUTH_SYS);
		if (j->auth_none)
			xdr_put_u32(&e, RPC_AUTH_NONE);
	}
	free(j);
	rpc_reply_send(call, xdr_enc_len(&e), NULL, 0, NULL, NULL);
}

static void proc_mnt(struct rpc_call *call)
{
	struct xdr_dec d;
	struct mnt_job *j;

	if (call->vers < 3) {
		/* v1/v2 MNT answers a fixed 32-byte fhandle, too small for our
		 * handles; those versions are NFSv2's, which we do not serve. */
		uint8_t *p = rpc_reply_buf(call, 4);
		if (!p) {
			rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
			return;
		}
		xdr_put_be32(p, MNT3ERR_ACCES);
		rpc_reply_send(call, 4, NULL, 0, NULL, NULL);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	xdr_dec_init(&d, call->args, call->args_len);
	xdr_get_string(&d, j->path, sizeof(j->path), MNTPATHLEN);
	if (d.err) {
		free(j);
		rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
		return;
	}
	j->call = call;
	rpc_peer_str(call, j->host, sizeof(j->host));
	j->job.work = mnt_work;
	j->job.done = mnt_done;
	workpool_submit(&j->job);
}

/* ================================================================ the rest */

static void proc_umnt(struct rpc_call *call)
{
	struct xdr_dec d;
	char path[MNTPATHLEN + 1], norm[MNTPATHLEN + 1], host[64];

	xdr_dec_init(&d, call->args, call->args_len);
	xdr_get_string(&d, path, sizeof(path), MNTPATHLEN);
	if (d.err) {
		rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
		return;
	}
	rpc_peer_str(call, host, sizeof(host));
	if (mount_path_normalise(path, norm, sizeof(norm)) == 0)
		ml_del(host, norm);
	reply_void(call);
}

static void proc_umntall(struct rpc_call *call)
{
	char host[64];

	rpc_peer_str(call, host, sizeof(host));
	ml_del(host, NULL);
	reply_void(call);
}

static void proc_dump(struct rpc_call *call)
{
	struct gbuf g = { 0 };

	/* mountlist: { TRUE, hostname<255>, dirpath<1024> }* FALSE */
	pthread_mutex_lock(&g_ml_lock);
	for (int i = 0; i < g_ml_n; i++) {
		gb_u32(&g, 1);
		gb_str(&g, g_ml[i].host, MNTNAMLEN);
		gb_str(&g, g_ml[i].path, MNTPATHLEN);
	}
	pthread_mutex_unlock(&g_ml_lock);
	gb_u32(&g, 0);
	reply_gbuf(call, &g);
}

static void export_node(const struct nfs_export *e, void *arg)
{
	struct gbuf *g = arg;

	/* exportnode { dirpath ex_dir; groups ex_groups; exports ex_next } */
	gb_u32(g, 1);
	gb_str(g, e->path, MNTPATHLEN);
	for (int i = 0; i < e->nclients; i++) {
		gb_u32(g, 1);
		gb_str(g, e->clients[i].spec, MNTNAMLEN);
	}
	gb_u32(g, 0);
}

static void proc_export(struct rpc_call *call)
{
	struct gbuf g = { 0 };

	nfs_exports_foreach(export_node, &g);
	gb_u32(&g, 0);
	reply_gbuf(call, &g);
}

static void mount_dispatch(struct rpc_call *call)
{
	switch (call->proc) {
	case MOUNTPROC3_NULL:
		reply_void(call);
		return;
	case MOUNTPROC3_MNT:
		proc_mnt(call);
		return;
	case MOUNTPROC3_DUMP:
		proc_dump(call);
		return;
	case MOUNTPROC3_UMNT:
		proc_umnt(call);
		return;
	case MOUNTPROC3_UMNTALL:
		proc_umntall(call);
		return;
	case MOUNTPROC3_EXPORT:
		proc_export(call);
		return;
	default:
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
		return;
	}
}

const struct rpc_program mount_program = {
	.prog = MOUNT_PROG,
	.vers_lo = 1,
	.vers_hi = 3,
	.name = "mountd",
	.dispatch = mount_dispatch,
};
