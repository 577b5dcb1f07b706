/* nsm.c - a minimal Network Status Monitor for the NLM server (see nsm.h;
 * X/Open XNFS chapter 11 "Status Monitor Protocol").
 *
 * State number (XNFS 11.1): odd while the host is up, even while it is down,
 * increased at every transition.  We have no "down" record to write (a
 * crash writes nothing), so every start moves to the next odd number; peers
 * only compare it for change.
 *
 * Files in <state_dir> (written to a temporary name, fsync()ed, renamed):
 *   nsm-state     the state number, decimal
 *   nsm-clients   one "NAME ADDRESS" line per client holding locks
 * Writing happens on the NLM callback thread, never on a reactor.
 */
#include "nsm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/acl.h"
#include "../core/log.h"
#include "nlm.h"
#include "xdr.h"

struct client {
	char name[256];
	char addr[64];
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int32_t g_state;
static char g_dir[4096];
static struct client *g_mon;            /* clients holding locks now */
static int g_nmon;
static struct client *g_prev;           /* clients of the previous run, to notify */
static int g_nprev;
static bool g_persist_posted;

int32_t nsm_state(void)
{
	int32_t s;

	pthread_mutex_lock(&g_mu);
	s = g_state;
	pthread_mutex_unlock(&g_mu);
	return s;
}

static int write_file(const char *name, const char *data, size_t len)
{
	char path[4200], tmp[4300];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t w = write(fd, data, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		data += w;
		len -= (size_t)w;
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

static int add_client(struct client **v, int *n, const char *name, const char *addr)
{
	struct client *nv;

	for (int i = 0; i < *n; i++)
		if (!strcasecmp((*v)[i].name, name) && !strcmp((*v)[i].addr, addr))
			return 0;
	if (*n >= NSM_MAX_CLIENTS)
		return -ENOSPC;
	nv = realloc(*v, sizeof(**v) * (size_t)(*n + 1));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	snprintf(nv[*n].name, sizeof(nv[0].name), "%s", name);
	snprintf(nv[*n].addr, sizeof(nv[0].addr), "%s", addr);
	(*n)++;
	return 1;
}

/* Callback thread: write the union of current and not yet notified clients. */
static void persist_work(void *arg)
{
	char *buf;
	size_t cap, len = 0;
	int ret;

	(void)arg;
	pthread_mutex_lock(&g_mu);
	g_persist_posted = false;
	cap = (size_t)(g_nmon + g_nprev) * (sizeof(struct client) + 2) + 1;
	buf = malloc(cap);
	if (buf) {
		for (int i = 0; i < g_nprev; i++)
			len += (size_t)snprintf(buf + len, cap - len, "%s %s\n", g_prev[i].name, g_prev[i].addr);
		for (int i = 0; i < g_nmon; i++)
			len += (size_t)snprintf(buf + len, cap - len, "%s %s\n", g_mon[i].name, g_mon[i].addr);
	}
	pthread_mutex_unlock(&g_mu);
	if (!buf)
		return;
	ret = write_file("nsm-clients", buf, len);
	if (ret < 0)
		log_warn("nsm: cannot write %s/nsm-clients: %s", g_dir, strerror(-ret));
	free(buf);
}

/* g_mu held */
static void post_persist(void)
{
	if (g_persist_posted || !g_dir[0])
		return;
	if (nlm_cb_post(persist_work, NULL, 0) == 0)
		g_persist_posted = true;
}

/* Host names and addresses we write must not break the line format. */
static bool clean_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

void nsm_monitor(const char *name, const struct sockaddr *addr)
{
	char a[64];

	acl_sockaddr_str(addr, a, sizeof(a));
	if (!clean_token(name) || strlen(name) >= sizeof(g_mon[0].name) || !clean_token(a))
		return;
	pthread_mutex_lock(&g_mu);
	if (add_client(&g_mon, &g_nmon, name, a) == 1)
		post_persist();
	pthread_mutex_unlock(&g_mu);
}

void nsm_unmonitor(const char *name)
{
	bool changed = false;

	pthread_mutex_lock(&g_mu);
	for (int i = 0; i < g_nmon;) {
		if (!strcasecmp(g_mon[i].name, name) || !strcmp(g_mon[i].addr, name)) {
			g_mon[i] = g_mon[--g_nmon];
			changed = true;
		} else {
			i++;
		}
	}
	if (changed)
		post_persist();
	pthread_mutex_unlock(&g_mu);
}

int nsm_monitored_count(void)
{
	int n;

	pthread_mutex_lock(&g_mu);
	n = g_nmon;
	pthread_mutex_unlock(&g_mu);
	return n;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss);

int nsm_init(const char *state_dir)
{
	struct sockaddr_storage ss;
	char path[4200], line[512], buf[32];
	long old = 0;
	FILE *f;
	int ret, n;

	pthread_mutex_lock(&g_mu);
	free(g_mon);
	free(g_prev);
	g_mon = g_prev = NULL;
	g_nmon = g_nprev = 0;
	g_persist_posted = false;
	snprintf(g_dir, sizeof(g_dir), "%s", state_dir ? state_dir : "");
	pthread_mutex_unlock(&g_mu);
	if (!g_dir[0]) {
		g_state = 1;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/nsm-state", g_dir);
	f = fopen(path, "re");
	if (f) {
		if (fgets(line, sizeof(line), f))
			old = strtol(line, NULL, 10);
		fclose(f);
	}
	if (old < 0 || old >= INT32_MAX - 2)
		old = 0;
	/* next odd number: up again */
	g_state = (int32_t)(old % 2 ? old + 2 : old + 1);
	n = snprintf(buf, sizeof(buf), "%d\n", g_state);
	ret = write_file("nsm-state", buf, (size_t)n);
	if (ret < 0) {
		log_err("nsm: cannot write %s: %s", path, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/nsm-clients", g_dir);
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char name[256], addr[64];
			if (sscanf(line, "%255s %63s", name, addr) == 2 && clean_token(name) &&
			    parse_addr(addr, &ss) == 0)
				add_client(&g_prev, &g_nprev, name, addr);
		}
		fclose(f);
	}
	return g_nprev;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

/* SM_NOTIFY (XNFS 11.3.6) to the status monitor of every client that held
 * locks before we restarted, so that it reclaims them in our grace period.
 * Best effort: a client that is down will learn when it comes back (it
 * notifies us, we free its locks) - which is also what happens when it
 * never hears from us: its locks are gone anyway. */
static void notify_work(void *arg)
{
	struct client *v;
	int n;

	(void)arg;
	pthread_mutex_lock(&g_mu);
	v = g_prev;
	n = g_nprev;
	g_prev = NULL;
	g_nprev = 0;
	pthread_mutex_unlock(&g_mu);
	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		uint8_t args[NLM_MAXSTR + 16], res[8];
		size_t rl = sizeof(res);
		struct xdr_enc e;
		bool udp = true;
		int port, ret;

		if (parse_addr(v[i].addr, &ss) < 0)
			continue;
		port = nlm_getport((struct sockaddr *)&ss, nlm_client_pmap_port((struct sockaddr *)&ss), NSM_PROG,
				   NSM_VERS, true);
		if (port <= 0) {
			udp = false;
			port = nlm_getport((struct sockaddr *)&ss, nlm_client_pmap_port((struct sockaddr *)&ss),
					   NSM_PROG, NSM_VERS, false);
		}
		if (port <= 0) {
			log_info("nsm: no status monitor at %s (%s) to notify", v[i].name, v[i].addr);
			continue;
		}
		set_port(&ss, (uint16_t)port);
		/* stat_chge { string mon_name<SM_MAXSTRLEN>; int state; } */
		xdr_enc_init(&e, args, sizeof(args));
		xdr_put_string(&e, nlm_hostname());
		xdr_put_u32(&e, (uint32_t)nsm_state());
		ret = nlm_rpc_call((struct sockaddr *)&ss, NULL, udp, NSM_PROG, NSM_VERS, SM_NOTIFY, args, xdr_enc_len(&e),
				   res, &rl, 3000);
		if (ret < 0)
			log_info("nsm: SM_NOTIFY to %s (%s): %s", v[i].name, v[i].addr, strerror(-ret));
		else
			log_info("nsm: notified %s (%s) of our restart (state %d)", v[i].name, v[i].addr,
				 nsm_state());
	}
	free(v);
	pthread_mutex_lock(&g_mu);
	post_persist();
	pthread_mutex_unlock(&g_mu);
}

void nsm_notify_previous(void)
{
	/* a second later: let the reactors open the NLM port first, since a
	 * notified client reclaims at once */
	if (g_nprev)
		nlm_cb_post(notify_work, NULL, 1000);
}

void nsm_shutdown(void)
{
	pthread_mutex_lock(&g_mu);
	free(g_mon);
	free(g_prev);
	g_mon = g_prev = NULL;
	g_nmon = g_nprev = 0;
	g_persist_posted = false;
	pthread_mutex_unlock(&g_mu);
}

/* ================================================================ server */

static void reply_state(struct rpc_call *call, bool with_res)
{
	uint8_t *p = rpc_reply_buf(call, 8);
	size_t n = 0;

	if (!p) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	if (with_res) {
		xdr_put_be32(p, 0);             /* sm_res: stat_succ */
		n = 4;
	}
	xdr_put_be32(p + n, (uint32_t)nsm_state());
	rpc_reply_send(call, n + 4, NULL, 0, NULL, NULL);
}

static void reply_void(struct rpc_call *call)
{
	if (!rpc_reply_buf(call, 0)) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
}

static void get_my_id(struct xdr_dec *d)
{
	char name[SM_MAXSTRLEN + 1];

	xdr_get_string(d, name, sizeof(name), SM_MAXSTRLEN);   /* my_name */
	xdr_get_u32(d);                                        /* my_prog */
	xdr_get_u32(d);                                        /* my_vers */
	xdr_get_u32(d);                                        /* my_proc */
}

static void sm_notify(struct rpc_call *call, const char *mon_name, int32_t state)
{
	char host[64];
	int n;

	rpc_peer_str(call, host, sizeof(host));
	/* Our own name: a notification we sent to this host's portmapper
	 * (which may be ours) came back to us. */
	if (!strcasecmp(mon_name, nlm_hostname())) {
		log_debug("nsm: ignoring SM_NOTIFY about ourselves from %s", host);
		return;
	}
	/* The client rebooted: its locks are gone with its processes (XNFS
	 * 11.2).  Match the name its lock manager used; a client that names
	 * itself differently in NSM is matched by address. */
	n = nlm_tab_free_host(mon_name, NULL);
	nsm_unmonitor(mon_name);
	if (n == 0) {
		n = nlm_tab_free_host(NULL, (const struct sockaddr *)&call->peer);
		if (n)
			nsm_unmonitor(host);
	}
	log_notice("nsm: %s (%s) restarted (state %d): %d lock(s) released", mon_name, host, state, n);
}

static void nsm_dispatch(struct rpc_call *call)
{
	char name[SM_MAXSTRLEN + 1];
	struct xdr_dec d;
	int32_t state;

	xdr_dec_init(&d, call->args, call->args_len);
	switch (call->proc) {
	case SM_NULL:
		reply_void(call);
		return;
	case SM_STAT:
		/* sm_name -> sm_stat_res */
		xdr_get_string(&d, name, sizeof(name), SM_MAXSTRLEN);
		if (d.err)
			break;
		reply_state(call, true);
		return;
	case SM_MON:
		/* mon { mon_id { mon_name, my_id }, opaque priv[16] } -> sm_stat_res.
		 * We are nobody's local status monitor: the request is accepted
		 * (a lock manager gives up on locking otherwise) and not kept. */
		xdr_get_string(&d, name, sizeof(name), SM_MAXSTRLEN);
		get_my_id(&d);
		if (d.err || xdr_dec_left(&d) < 16)
			break;
		reply_state(call, true);
		return;
	case SM_UNMON:
		xdr_get_string(&d, name, sizeof(name), SM_MAXSTRLEN);
		get_my_id(&d);
		if (d.err)
			break;
		reply_state(call, false);
		return;
	case SM_UNMON_ALL:
		get_my_id(&d);
		if (d.err)
			break;
		reply_state(call, false);
		return;
	case SM_SIMU_CRASH:
		reply_void(call);
		return;
	case SM_NOTIFY:
		/* stat_chge { mon_name, state } */
		xdr_get_string(&d, name, sizeof(name), SM_MAXSTRLEN);
		state = (int32_t)xdr_get_u32(&d);
		if (d.err)
			break;
		sm_notify(call, name, state);
		reply_void(call);
		return;
	default:
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
		return;
	}
	rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
}

const struct rpc_program nsm_program = {
	.prog = NSM_PROG,
	.vers_lo = NSM_VERS,
	.vers_hi = NSM_VERS,
	.name = "status",
	.dispatch = nsm_dispatch,
};
