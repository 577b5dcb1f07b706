/* nfsgw.c - the NFSv3 gateway's assembly: programs, sockets, portmapper
 * policy, start and stop (see nfsgw.h for the order of calls).
 *
 * Every registered program answers on every one of our sockets (the RPC
 * transport routes by program number), so NFS, MOUNT and NLM all work on
 * port 2049 as the issue asks, and MOUNT also on its own port, TCP and UDP,
 * for clients that look it up through the portmapper.  With several listen
 * endpoints (--nfs-listen, nfs.listen: IPv4 and IPv6) each gets that set:
 * NFS on its own port, MOUNT/NLM on their ports on each listen address, and
 * the built-in portmapper on each listen address (or on portmap_addr).
 *
 * Portmapper policy (nfsgw_settings.portmap): 1 = if an rpcbind already
 * answers on the portmap port, register our programs with it (PMAPPROC_SET,
 * blocking, at startup: control plane) and withdraw them at shutdown;
 * otherwise serve the port ourselves.  2 = always register.  0 = neither
 * (libnfs URLs with ?nfsport=&mountport= need no portmapper).
 */
#include "nfsgw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/log.h"
#include "drc.h"
#include "exports.h"
#include "fh.h"
#include "mount.h"
#include "nfs3.h"
#include "nlm.h"
#include "nsm.h"
#include "portmap.h"
#include "rpc.h"

struct ext_reg {
	uint32_t prog, vers, proto;
	uint16_t port;
};

static struct nfsgw_settings g_s;
static bool g_builtin_pmap;
static struct ext_reg g_ext[32];
static int g_next;

void nfsgw_settings_default(struct nfsgw_settings *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->bind_addr, sizeof(s->bind_addr), "0.0.0.0");
	s->nfs_port = 2049;
	s->mount_port = 20048;
	s->nlm_port = 32803;
	s->portmap = 1;
	s->portmap_port = PMAP_PORT;
	snprintf(s->state_dir, sizeof(s->state_dir), "/var/lib/ringstor");
}

int nfsgw_add_export_line(const char *line, char *err, size_t errlen)
{
	char path[4096];
	struct export_client *clients = NULL;
	int n = 0, ret;

	if (exports_parse_line(line, path, sizeof(path), &clients, &n, err, errlen) < 0)
		return -1;
	ret = nfs_export_add(path, clients, n, err, errlen);
	free(clients);
	return ret;
}

/* NLM (nlm.h) and its status monitor (nsm.h) are always built in; the
 * NLM port may be switched off with nlm_port = 0 (they still answer on the
 * NFS port then, as every program does). */
static bool nlm_present(void)
{
	return true;
}

/* Every (prog, vers, transport, port) we offer, for the portmapper. */
static void for_each_service(void (*fn)(uint32_t prog, uint32_t vers, bool udp, uint16_t port, void *arg),
			     void *arg)
{
	uint16_t mport = g_s.mount_port ? g_s.mount_port : g_s.nfs_port;
	bool mudp = g_s.mount_port != 0;

	for (uint32_t v = nfs3_program.vers_lo; v <= nfs3_program.vers_hi; v++)
		fn(nfs3_program.prog, v, false, g_s.nfs_port, arg);
	for (uint32_t v = mount_program.vers_lo; v <= mount_program.vers_hi; v++) {
		fn(mount_program.prog, v, false, mport, arg);
		if (mudp)
			fn(mount_program.prog, v, true, mport, arg);
	}
	if (nlm_present() && g_s.nlm_port) {
		for (uint32_t v = nlm4_program.vers_lo; v <= nlm4_program.vers_hi; v++) {
			if (v == 2)
				continue;       /* NLM has versions 1, 3 and 4 */
			fn(nlm4_program.prog, v, false, g_s.nlm_port, arg);
			fn(nlm4_program.prog, v, true, g_s.nlm_port, arg);
		}
		/* the status monitor, for clients' SM_NOTIFY after a reboot */
		fn(nsm_program.prog, NSM_VERS, false, g_s.nlm_port, arg);
		fn(nsm_program.prog, NSM_VERS, true, g_s.nlm_port, arg);
	}
}

/* The endpoints NFS and MOUNT answer on: the listen list, or the single
 * bind_addr:nfs_port of the older settings. */
static int endpoints(const struct nfsgw_settings *s, struct nfsgw_endpoint *out)
{
	if (s->nlisten > 0) {
		int n = s->nlisten < NFSGW_MAX_LISTEN ? s->nlisten : NFSGW_MAX_LISTEN;
		memcpy(out, s->listen, sizeof(out[0]) * (size_t)n);
		return n;
	}
	snprintf(out[0].addr, sizeof(out[0].addr), "%s", s->bind_addr[0] ? s->bind_addr : "0.0.0.0");
	out[0].port = s->nfs_port;
	return 1;
}

static bool addr_is_v6(const char *a)
{
	return strchr(a, ':') != NULL;
}

/* Which address families we serve: an IPv6 "::" socket also takes IPv4
 * (mapped addresses) unless an IPv4 endpoint is listed too (see
 * open_socket()). */
static void families(const struct nfsgw_settings *s, bool *v4, bool *v6)
{
	struct nfsgw_endpoint ep[NFSGW_MAX_LISTEN];
	int n = endpoints(s, ep);

	bool any6 = false;

	*v4 = *v6 = false;
	for (int i = 0; i < n; i++) {
		if (addr_is_v6(ep[i].addr)) {
			struct in6_addr a;
			*v6 = true;
			if (inet_pton(AF_INET6, ep[i].addr, &a) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a))
				any6 = true;
		} else {
			*v4 = true;
		}
	}
	/* a lone "::" takes IPv4 too */
	if (any6 && !*v4)
		*v4 = true;
}

static void add_builtin(uint32_t prog, uint32_t vers, bool udp, uint16_t port, void *arg)
{
	bool v4, v6;

	(void)arg;
	families(&g_s, &v4, &v6);
	if (v4)
		portmap_set(prog, vers, udp ? "udp" : "tcp", port, NULL, "ringstord");
	if (v6)
		portmap_set(prog, vers, udp ? "udp6" : "tcp6", port, NULL, "ringstord");
}

int nfsgw_parse_endpoint(const char *str, struct nfsgw_endpoint *ep, char *err, size_t errlen)
{
	unsigned char buf[16];
	const char *colon, *a = str;
	size_t alen;
	char *end;
	long port;

	memset(ep, 0, sizeof(*ep));
	if (!str || !*str) {
		snprintf(err, errlen, "empty address");
		return -1;
	}
	if (str[0] == '[') {
		const char *rb = strchr(str, ']');
		if (!rb || rb[1] != ':') {
			snprintf(err, errlen, "'%s': expected [IPV6]:PORT", str);
			return -1;
		}
		a = str + 1;
		alen = (size_t)(rb - a);
		colon = rb + 1;
	} else {
		colon = strrchr(str, ':');
		if (!colon || memchr(str, ':', (size_t)(colon - str))) {
			snprintf(err, errlen, "'%s': expected ADDR:PORT (IPv6 as [ADDR]:PORT)", str);
			return -1;
		}
		alen = (size_t)(colon - str);
	}
	if (alen == 0 || alen >= sizeof(ep->addr)) {
		snprintf(err, errlen, "'%s': bad address", str);
		return -1;
	}
	memcpy(ep->addr, a, alen);
	ep->addr[alen] = '\0';
	if (inet_pton(str[0] == '[' ? AF_INET6 : AF_INET, ep->addr, buf) != 1) {
		snprintf(err, errlen, "'%s': '%s' is not a numeric %s address", str, ep->addr,
			 str[0] == '[' ? "IPv6" : "IPv4");
		return -1;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 1 || port > 65535) {
		snprintf(err, errlen, "'%s': port must be 1..65535", str);
		return -1;
	}
	ep->port = (uint16_t)port;
	return 0;
}

void nfsgw_endpoint_str(const struct nfsgw_endpoint *ep, char *buf, size_t len)
{
	snprintf(buf, len, addr_is_v6(ep->addr) ? "[%s]:%u" : "%s:%u", ep->addr, ep->port);
}

static bool same_addr(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int fa = addr_is_v6(a) ? AF_INET6 : AF_INET, fb = addr_is_v6(b) ? AF_INET6 : AF_INET;

	if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
		return strcmp(a, b) == 0;
	return memcmp(x, y, fa == AF_INET6 ? 16 : 4) == 0;
}

int nfsgw_add_listen(struct nfsgw_settings *s, const struct nfsgw_endpoint *ep, char *err,
		     size_t errlen)
{
	char t[80];

	nfsgw_endpoint_str(ep, t, sizeof(t));
	if (s->nlisten >= NFSGW_MAX_LISTEN) {
		snprintf(err, errlen, "%s: at most %d NFS listen addresses", t, NFSGW_MAX_LISTEN);
		return -1;
	}
	for (int i = 0; i < s->nlisten; i++)
		if (s->listen[i].port == ep->port && same_addr(s->listen[i].addr, ep->addr)) {
			snprintf(err, errlen, "%s is listed twice", t);
			return -1;
		}
	s->listen[s->nlisten++] = *ep;
	s->nfs_port = s->listen[0].port;
	return 0;
}

static void add_external(uint32_t prog, uint32_t vers, bool udp, uint16_t port, void *arg)
{
	uint32_t proto = udp ? PMAP_IPPROTO_UDP : PMAP_IPPROTO_TCP;
	int ret;

	(void)arg;
	ret = pmap_client_set(g_s.portmap_port, true, prog, vers, proto, port);
	if (ret == 1) {
		if (g_next < (int)(sizeof(g_ext) / sizeof(g_ext[0])))
			g_ext[g_next++] = (struct ext_reg){ prog, vers, proto, port };
	} else {
		/* FALSE: another server already has prog/vers (e.g. kernel nfsd). */
		log_warn("nfsgw: rpcbind refused to register program %u version %u/%s on port %u%s%s",
			 prog, vers, udp ? "udp" : "tcp", port, ret < 0 ? ": " : " (already registered?)",
			 ret < 0 ? strerror(-ret) : "");
	}
}

int nfsgw_init(const struct nfsgw_settings *s)
{
	int ret;

	g_s = *s;
	g_next = 0;
	g_builtin_pmap = false;
	drc_init(0);
	ret = fh_secret_init(s->state_dir);
	if (ret < 0) {
		log_err("nfsgw: file handle secret in %s: %s", s->state_dir, strerror(-ret));
		return ret;
	}
	if ((ret = rpc_register(&mount_program)) < 0)
		return ret;
	if ((ret = rpc_register(&nfs3_program)) < 0)
		return ret;
	if (nlm_present()) {
		if ((ret = rpc_register(&nlm4_program)) < 0 || (ret = rpc_register(&nsm_program)) < 0)
			return ret;
		/* NSM state, grace period, callback thread (nlm.h) */
		if ((ret = nlm_init(s->state_dir, s->portmap_port)) < 0) {
			log_err("nfsgw: NLM: %s", strerror(-ret));
			return ret;
		}
	}

	/* 3 ("builtin"): always serve our own; 1 ("auto"): ours unless an
	 * rpcbind answers; 2 ("rpcbind"): always register with rpcbind. */
	if (s->portmap == 3 || (s->portmap == 1 && pmap_probe(s->portmap_port, 500) < 0)) {
		g_builtin_pmap = true;
	} else if (s->portmap != 0) {
		log_notice("nfsgw: rpcbind answers on port %u: registering with it", s->portmap_port);
		for_each_service(add_external, NULL);
	}
	if (g_builtin_pmap) {
		if ((ret = rpc_register(&portmap_program)) < 0)
			return ret;
		portmap_clear();
		for (uint32_t v = 2; v <= 4; v++) {
			add_builtin(PMAP_PROG, v, false, s->portmap_port, NULL);
			add_builtin(PMAP_PROG, v, true, s->portmap_port, NULL);
		}
		for_each_service(add_builtin, NULL);
	}
	return 0;
}

int nfsgw_builtin_portmap(void)
{
	return g_builtin_pmap ? 1 : 0;
}

static int open_socket(const char *addr, bool v6only, int type, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd, err;

	memset(&ss, 0, sizeof(ss));
	if (addr_is_v6(addr)) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr[0] ? addr : "0.0.0.0", &s4->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT: one socket per reactor on the same port; the kernel
	 * spreads connections (and UDP flows) over them. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* A lone "::" serves IPv4 too (mapped addresses), like rpcbind and
	 * nfsd; next to an IPv4 endpoint it must not, or the two would share
	 * the IPv4 traffic of a port. */
	if (ss.ss_family == AF_INET6) {
		int v = v6only ? 1 : 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

struct want_sock {
	const char *addr;
	int type;
	uint16_t port;
	const char *what;
};

/* (addr, type, port) once only: two listeners would split the traffic. */
static void want_add(struct want_sock *w, int *nw, int max, const char *addr, int type,
		     uint16_t port, const char *what)
{
	for (int i = 0; i < *nw; i++)
		if (w[i].type == type && w[i].port == port && same_addr(w[i].addr, addr))
			return;
	if (*nw < max)
		w[(*nw)++] = (struct want_sock){ addr, type, port, what };
}

int nfsgw_open_sockets(const struct nfsgw_settings *s, int *fds, int max)
{
	struct nfsgw_endpoint ep[NFSGW_MAX_LISTEN];
	struct want_sock want[NFSGW_MAX_FDS];
	int nep = endpoints(s, ep), nw = 0, n = 0;
	bool v4 = false;

	for (int i = 0; i < nep; i++)
		if (!addr_is_v6(ep[i].addr))
			v4 = true;
	/* NFS (and every other program: the transport routes by program
	 * number) on each endpoint, TCP (RFC 1813 leaves UDP optional). */
	for (int i = 0; i < nep; i++)
		want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_STREAM, ep[i].port, "NFS");
	/* The MOUNT and NLM ports: on every listen address, TCP and UDP. */
	for (int i = 0; i < nep; i++) {
		if (s->mount_port && s->mount_port != ep[i].port) {
			want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_STREAM, s->mount_port, "MOUNT");
			want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_DGRAM, s->mount_port, "MOUNT");
		}
		if (nlm_present() && s->nlm_port && s->nlm_port != ep[i].port) {
			want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_STREAM, s->nlm_port, "NLM");
			want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_DGRAM, s->nlm_port, "NLM");
		}
	}
	if (g_builtin_pmap) {
		if (s->portmap_addr[0]) {
			want_add(want, &nw, NFSGW_MAX_FDS, s->portmap_addr, SOCK_STREAM, s->portmap_port,
				 "portmapper");
			want_add(want, &nw, NFSGW_MAX_FDS, s->portmap_addr, SOCK_DGRAM, s->portmap_port,
				 "portmapper");
		} else {
			for (int i = 0; i < nep; i++) {
				want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_STREAM, s->portmap_port,
					 "portmapper");
				want_add(want, &nw, NFSGW_MAX_FDS, ep[i].addr, SOCK_DGRAM, s->portmap_port,
					 "portmapper");
			}
		}
	}
	for (int i = 0; i < nw; i++) {
		int fd;

		if (n == max)
			fd = -ENOSPC;
		else
			/* An own portmapper address is the only socket of its
			 * port: "::" there may take IPv4 too. */
			fd = open_socket(want[i].addr, v4 && want[i].addr != s->portmap_addr,
					 want[i].type, want[i].port);
		if (fd < 0) {
			log_err("nfsgw: cannot open %s %s socket on %s port %u: %s", want[i].what,
				want[i].type == SOCK_STREAM ? "TCP" : "UDP", want[i].addr, want[i].port,
				strerror(-fd));
			while (n > 0)
				close(fds[--n]);
			return fd;
		}
		fds[n++] = fd;
	}
	return n;
}

int nfsgw_reactor_start(struct reactor *r, const int *fds, int nfds)
{
	for (int i = 0; i < nfds; i++) {
		int type = 0, ret;
		socklen_t tl = sizeof(type);

		if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
			return -errno;
		ret = type == SOCK_DGRAM ? rpc_reactor_serve_udp(r, fds[i])
					 : rpc_reactor_listen_tcp(r, fds[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void nfsgw_reactor_shutdown(struct reactor *r)
{
	rpc_reactor_shutdown(r);
}

int nfsgw_reactor_idle(struct reactor *r)
{
	return rpc_reactor_idle(r);
}

void nfsgw_reactor_fini(void)
{
	nfs3_reactor_fini();
}

void nfsgw_shutdown(void)
{
	/* Withdraw what we registered, and only that: v2 UNSET removes every
	 * mapping of prog/vers, so programs another server owns (SET refused)
	 * are not in g_ext and are left alone. */
	for (int i = 0; i < g_next; i++) {
		bool dup = false;
		for (int k = 0; k < i; k++)
			if (g_ext[k].prog == g_ext[i].prog && g_ext[k].vers == g_ext[i].vers)
				dup = true;
		if (!dup)
			pmap_client_set(g_s.portmap_port, false, g_ext[i].prog, g_ext[i].vers,
					g_ext[i].proto, g_ext[i].port);
	}
	g_next = 0;
	nlm_shutdown();
	portmap_clear();
	mount_list_clear();
	drc_clear();
}
