/* nfsgw.c - the NFSv3 gateway's assembly: programs, sockets, portmapper
 * policy, start and stop (see nfsgw.h for the order of calls).
 *
 * Every registered program answers on every one of our sockets (the RPC
 * transport routes by program number), so NFS, MOUNT and NLM all work on
 * port 2049 as the issue asks, and MOUNT also on its own port, TCP and UDP,
 * for clients that look it up through the portmapper.
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
#include "portmap.h"
#include "rpc.h"

/* NLM is not written yet: a weak reference keeps the front end linking
 * without it.  Note that a weak reference does not pull an object out of a
 * static archive, so once nlm.c exists it must be referenced strongly (as
 * nfs3_program is, through nfs3.h). */
extern const struct rpc_program nlm4_program __attribute__((weak));

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

static bool nlm_present(void)
{
	return &nlm4_program != NULL;
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
	if (nlm_present() && g_s.nlm_port)
		for (uint32_t v = nlm4_program.vers_lo; v <= nlm4_program.vers_hi; v++) {
			fn(nlm4_program.prog, v, false, g_s.nlm_port, arg);
			fn(nlm4_program.prog, v, true, g_s.nlm_port, arg);
		}
}

static bool bind_is_v6(void)
{
	return strchr(g_s.bind_addr, ':') != NULL;
}

static void add_builtin(uint32_t prog, uint32_t vers, bool udp, uint16_t port, void *arg)
{
	(void)arg;
	portmap_set(prog, vers, udp ? "udp" : "tcp", port, NULL, "ringstord");
	if (bind_is_v6())
		portmap_set(prog, vers, udp ? "udp6" : "tcp6", port, NULL, "ringstord");
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
	if (nlm_present() && (ret = rpc_register(&nlm4_program)) < 0)
		return ret;

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

static int open_socket(const struct nfsgw_settings *s, int type, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, zero = 0, fd, err;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s->bind_addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, s->bind_addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, s->bind_addr[0] ? s->bind_addr : "0.0.0.0", &s4->sin_addr) != 1)
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
	/* "::" serves IPv4 too (mapped addresses), like rpcbind and nfsd. */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
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

int nfsgw_open_sockets(const struct nfsgw_settings *s, int *fds, int max)
{
	struct { int type; uint16_t port; const char *what; } want[8];
	int nw = 0, n = 0;

	want[nw++] = (typeof(want[0])){ SOCK_STREAM, s->nfs_port, "NFS" };
	if (s->mount_port && s->mount_port != s->nfs_port) {
		want[nw++] = (typeof(want[0])){ SOCK_STREAM, s->mount_port, "MOUNT" };
		want[nw++] = (typeof(want[0])){ SOCK_DGRAM, s->mount_port, "MOUNT" };
	}
	if (nlm_present() && s->nlm_port && s->nlm_port != s->nfs_port) {
		want[nw++] = (typeof(want[0])){ SOCK_STREAM, s->nlm_port, "NLM" };
		want[nw++] = (typeof(want[0])){ SOCK_DGRAM, s->nlm_port, "NLM" };
	}
	if (g_builtin_pmap) {
		want[nw++] = (typeof(want[0])){ SOCK_STREAM, s->portmap_port, "portmapper" };
		want[nw++] = (typeof(want[0])){ SOCK_DGRAM, s->portmap_port, "portmapper" };
	}
	for (int i = 0; i < nw; i++) {
		int fd;

		if (n == max) {
			fd = -ENOSPC;
		} else {
			fd = open_socket(s, want[i].type, want[i].port);
		}
		if (fd < 0) {
			log_err("nfsgw: cannot open %s %s socket on %s port %u: %s", want[i].what,
				want[i].type == SOCK_STREAM ? "TCP" : "UDP", s->bind_addr, want[i].port,
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
	portmap_clear();
	mount_list_clear();
	drc_clear();
}
