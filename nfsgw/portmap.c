/* portmap.c - built-in portmapper/rpcbind (RFC 1833) and a blocking client.
 *
 * Version 2 speaks (prog, vers, protocol, port) mappings; versions 3 and 4
 * speak (prog, vers, netid, universal address, owner).  Both views come from
 * one table.  Our own programs are entered without a host part: GETADDR
 * answers with the address the question arrived on, which is what a client
 * can reach whatever the number of interfaces (rpcbind "fixes up" wildcard
 * addresses the same way).  SET/UNSET are accepted only from loopback
 * callers on a reserved port (< 1024), i.e. local privileged services, as
 * rpcbind does: otherwise any local user could unregister NFS or MOUNT, or
 * point clients at a port of its own.  CALLIT/BCAST/INDIRECT are
 * not offered and silently dropped, as rpcbind does for failed indirect calls
 * (and they are the classic UDP amplification vector).
 */
#include "portmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "rpc_internal.h"
#include "xdr.h"

#define PMAP_MAX_ENTRIES 128

struct pmap_entry {
	uint32_t prog, vers;
	char netid[8];
	uint16_t port;
	char uaddr[64];          /* "" = ours, address of the caller's side */
	char owner[32];
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pmap_entry g_tab[PMAP_MAX_ENTRIES];
static int g_n;

/* ================================================================ table */

int portmap_set(uint32_t prog, uint32_t vers, const char *netid, uint16_t port,
		const char *uaddr, const char *owner)
{
	int ret = 0;

	if (!netid || strlen(netid) >= sizeof(g_tab[0].netid))
		return -EINVAL;
	pthread_mutex_lock(&g_lock);
	for (int i = 0; i < g_n; i++) {
		if (g_tab[i].prog == prog && g_tab[i].vers == vers && !strcmp(g_tab[i].netid, netid)) {
			ret = -EEXIST;
			goto out;
		}
	}
	if (g_n == PMAP_MAX_ENTRIES) {
		ret = -ENOSPC;
		goto out;
	}
	memset(&g_tab[g_n], 0, sizeof(g_tab[g_n]));
	g_tab[g_n].prog = prog;
	g_tab[g_n].vers = vers;
	snprintf(g_tab[g_n].netid, sizeof(g_tab[g_n].netid), "%s", netid);
	g_tab[g_n].port = port;
	snprintf(g_tab[g_n].uaddr, sizeof(g_tab[g_n].uaddr), "%s", uaddr ? uaddr : "");
	snprintf(g_tab[g_n].owner, sizeof(g_tab[g_n].owner), "%s", owner ? owner : "unknown");
	g_n++;
out:
	pthread_mutex_unlock(&g_lock);
	return ret;
}

int portmap_unset(uint32_t prog, uint32_t vers, const char *netid)
{
	int removed = 0;

	pthread_mutex_lock(&g_lock);
	for (int i = 0; i < g_n;) {
		if (g_tab[i].prog == prog && g_tab[i].vers == vers &&
		    (!netid || !*netid || !strcmp(g_tab[i].netid, netid))) {
			g_tab[i] = g_tab[--g_n];
			removed++;
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&g_lock);
	return removed;
}

void portmap_clear(void)
{
	pthread_mutex_lock(&g_lock);
	g_n = 0;
	pthread_mutex_unlock(&g_lock);
}

/* rpcbind's find_service(): the exact version if registered, else (unless
 * exact is required) any version of the program, so that the client reaches
 * the server and learns the supported range from PROG_MISMATCH.  With
 * g_lock held. */
static const struct pmap_entry *find(uint32_t prog, uint32_t vers, const char *netid, bool exact)
{
	const struct pmap_entry *hit = NULL;

	for (int i = 0; i < g_n; i++) {
		if (g_tab[i].prog != prog || strcmp(g_tab[i].netid, netid))
			continue;
		if (g_tab[i].vers == vers)
			return &g_tab[i];
		if (!exact && !hit)
			hit = &g_tab[i];
	}
	return hit;
}

/* ================================================================ addresses */

int pmap_uaddr_format(const struct sockaddr *sa, uint16_t port, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], host, sizeof(host));
		else
			inet_ntop(AF_INET6, a6, host, sizeof(host));
	} else {
		return -1;
	}
	if ((size_t)snprintf(buf, len, "%s.%u.%u", host, port >> 8, port & 0xff) >= len)
		return -1;
	return 0;
}

int pmap_uaddr_port(const char *uaddr)
{
	const char *p2 = strrchr(uaddr, '.'), *p1;
	char *end;
	long hi, lo;

	if (!p2 || p2 == uaddr)
		return -1;
	for (p1 = p2 - 1; p1 > uaddr && *p1 != '.'; p1--)
		;
	if (*p1 != '.')
		return -1;
	hi = strtol(p1 + 1, &end, 10);
	if (end != p2 || hi < 0 || hi > 255)
		return -1;
	lo = strtol(p2 + 1, &end, 10);
	if (*end || end == p2 + 1 || lo < 0 || lo > 255)
		return -1;
	return (int)(hi << 8 | lo);
}

static bool netid_v6(const char *netid)
{
	return strchr(netid, '6') != NULL;
}

/* The universal address of e for a caller that reached us at local: that
 * address if it is of the netid's family (an IPv4-mapped one counts as
 * IPv4), else the netid's wildcard address with the port. */
static void entry_uaddr(const struct pmap_entry *e, const struct rpc_call *call, char *buf,
			size_t len)
{
	const struct sockaddr *la = (const struct sockaddr *)&call->local;
	bool want6 = netid_v6(e->netid), local4;

	if (e->uaddr[0]) {
		snprintf(buf, len, "%s", e->uaddr);
		return;
	}
	local4 = la->sa_family == AF_INET ||
		 (la->sa_family == AF_INET6 &&
		  IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)la)->sin6_addr));
	if (call->locallen && (la->sa_family == AF_INET || la->sa_family == AF_INET6) &&
	    want6 != local4 && pmap_uaddr_format(la, e->port, buf, len) == 0)
		return;
	snprintf(buf, len, "%s.%u.%u", want6 ? "::" : "0.0.0.0", e->port >> 8, e->port & 0xff);
}

/* May this caller SET/UNSET mappings?  A loopback address and a reserved
 * source port (only root can bind one). */
static bool peer_may_register(const struct rpc_call *call)
{
	const struct sockaddr *sa = (const struct sockaddr *)&call->peer;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127 && ntohs(s4->sin_port) < 1024;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		const struct in6_addr *a6 = &s6->sin6_addr;
		if (ntohs(s6->sin6_port) >= 1024)
			return false;
		if (IN6_IS_ADDR_LOOPBACK(a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
	}
	return false;
}

/* ================================================================ server */

static void reply_bool(struct rpc_call *call, bool v)
{
	uint8_t *p = rpc_reply_buf(call, 4);

	if (!p) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	xdr_put_be32(p, v ? 1 : 0);
	rpc_reply_send(call, 4, NULL, 0, NULL, NULL);
}

static void reply_u32(struct rpc_call *call, uint32_t v)
{
	uint8_t *p = rpc_reply_buf(call, 4);

	if (!p) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	xdr_put_be32(p, v);
	rpc_reply_send(call, 4, NULL, 0, NULL, NULL);
}

static void reply_string(struct rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	uint8_t *p = rpc_reply_buf(call, 8 + n);
	struct xdr_enc e;

	if (!p) {
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	xdr_enc_init(&e, p, 8 + n);
	xdr_put_string(&e, s);
	rpc_reply_send(call, xdr_enc_len(&e), NULL, 0, NULL, NULL);
}

static const char *prot_netid(uint32_t prot)
{
	return prot == PMAP_IPPROTO_TCP ? "tcp" : prot == PMAP_IPPROTO_UDP ? "udp" : NULL;
}

/* Version 2: struct mapping { prog; vers; prot; port; } */
static void pmap2(struct rpc_call *call)
{
	struct xdr_dec d;
	uint32_t prog, vers, prot, port;
	const char *netid;

	xdr_dec_init(&d, call->args, call->args_len);
	switch (call->proc) {
	case PMAPPROC_NULL:
		rpc_reply_buf(call, 0);
		rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
		return;
	case PMAPPROC_SET:
	case PMAPPROC_UNSET:
	case PMAPPROC_GETPORT:
		prog = xdr_get_u32(&d);
		vers = xdr_get_u32(&d);
		prot = xdr_get_u32(&d);
		port = xdr_get_u32(&d);
		if (d.err) {
			rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
			return;
		}
		netid = prot_netid(prot);
		if (call->proc == PMAPPROC_GETPORT) {
			const struct pmap_entry *e;
			uint32_t res = 0;
			pthread_mutex_lock(&g_lock);
			if (netid && (e = find(prog, vers, netid, false))) {
				res = e->port;
				if (e->uaddr[0] && pmap_uaddr_port(e->uaddr) >= 0)
					res = (uint32_t)pmap_uaddr_port(e->uaddr);
			}
			pthread_mutex_unlock(&g_lock);
			reply_u32(call, res);
			return;
		}
		if (!peer_may_register(call)) {
			reply_bool(call, false);
			return;
		}
		if (call->proc == PMAPPROC_SET)
			reply_bool(call, netid && port <= 65535 &&
					 portmap_set(prog, vers, netid, (uint16_t)port, NULL, "superuser") == 0);
		else
			/* v2 UNSET removes the tcp and udp mappings of prog/vers */
			reply_bool(call, portmap_unset(prog, vers, "tcp") + portmap_unset(prog, vers, "udp") > 0);
		return;
	case PMAPPROC_DUMP: {
		/* pmaplist: { TRUE, mapping }* FALSE, version-2 netids only */
		uint8_t *p;
		struct xdr_enc e;

		pthread_mutex_lock(&g_lock);
		p = rpc_reply_buf(call, (size_t)g_n * 20 + 4);
		if (!p) {
			pthread_mutex_unlock(&g_lock);
			rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
			return;
		}
		xdr_enc_init(&e, p, (size_t)g_n * 20 + 4);
		for (int i = 0; i < g_n; i++) {
			uint32_t pr = !strcmp(g_tab[i].netid, "tcp") ? PMAP_IPPROTO_TCP
				    : !strcmp(g_tab[i].netid, "udp") ? PMAP_IPPROTO_UDP : 0;
			int up = g_tab[i].uaddr[0] ? pmap_uaddr_port(g_tab[i].uaddr) : g_tab[i].port;
			if (!pr || up < 0)
				continue;
			xdr_put_u32(&e, 1);
			xdr_put_u32(&e, g_tab[i].prog);
			xdr_put_u32(&e, g_tab[i].vers);
			xdr_put_u32(&e, pr);
			xdr_put_u32(&e, (uint32_t)up);
		}
		pthread_mutex_unlock(&g_lock);
		xdr_put_u32(&e, 0);
		rpc_reply_send(call, xdr_enc_len(&e), NULL, 0, NULL, NULL);
		return;
	}
	case PMAPPROC_CALLIT:
		rpc_call_drop(call);
		return;
	default:
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
		return;
	}
}

/* struct rpcb { r_prog; r_vers; string r_netid; string r_addr; string r_owner; } */
struct rpcb {
	uint32_t prog, vers;
	char netid[64], addr[128], owner[256];
};

static bool decode_rpcb(struct xdr_dec *d, struct rpcb *b)
{
	b->prog = xdr_get_u32(d);
	b->vers = xdr_get_u32(d);
	xdr_get_string(d, b->netid, sizeof(b->netid), sizeof(b->netid) - 1);
	xdr_get_string(d, b->addr, sizeof(b->addr), sizeof(b->addr) - 1);
	xdr_get_string(d, b->owner, sizeof(b->owner), sizeof(b->owner) - 1);
	return !d->err;
}

/* Versions 3 and 4 (RFC 1833 section 2.2). */
static void rpcb34(struct rpc_call *call)
{
	struct xdr_dec d;
	struct rpcb b;
	char ua[80];

	xdr_dec_init(&d, call->args, call->args_len);
	switch (call->proc) {
	case PMAPPROC_NULL:
		rpc_reply_buf(call, 0);
		rpc_reply_send(call, 0, NULL, 0, NULL, NULL);
		return;
	case RPCBPROC_SET:
	case RPCBPROC_UNSET:
	case RPCBPROC_GETADDR:
	case RPCBPROC_GETVERSADDR:
		if (call->proc == RPCBPROC_GETVERSADDR && call->vers < 4) {
			rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
			return;
		}
		if (!decode_rpcb(&d, &b)) {
			rpc_reply_accept_error(call, RPC_GARBAGE_ARGS);
			return;
		}
		if (call->proc == RPCBPROC_GETADDR || call->proc == RPCBPROC_GETVERSADDR) {
			const struct pmap_entry *e;
			ua[0] = '\0';
			pthread_mutex_lock(&g_lock);
			e = find(b.prog, b.vers, b.netid, call->proc == RPCBPROC_GETVERSADDR);
			if (e)
				entry_uaddr(e, call, ua, sizeof(ua));
			pthread_mutex_unlock(&g_lock);
			reply_string(call, ua);   /* "" = not registered */
			return;
		}
		if (!peer_may_register(call)) {
			reply_bool(call, false);
			return;
		}
		if (call->proc == RPCBPROC_SET) {
			int port = pmap_uaddr_port(b.addr);
			reply_bool(call, port >= 0 && strlen(b.addr) < sizeof(g_tab[0].uaddr) &&
					 portmap_set(b.prog, b.vers, b.netid, (uint16_t)port, b.addr,
						     b.owner[0] ? b.owner : "unknown") == 0);
		} else {
			reply_bool(call, portmap_unset(b.prog, b.vers, b.netid) > 0);
		}
		return;
	case RPCBPROC_DUMP: {
		/* rpcblist_ptr: { TRUE, rpcb }* FALSE */
		size_t cap = (size_t)PMAP_MAX_ENTRIES * (8 + 12 + 80 + 36) + 4;
		uint8_t *p = rpc_reply_buf(call, cap);
		struct xdr_enc e;

		if (!p) {
			rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
			return;
		}
		xdr_enc_init(&e, p, cap);
		pthread_mutex_lock(&g_lock);
		for (int i = 0; i < g_n; i++) {
			entry_uaddr(&g_tab[i], call, ua, sizeof(ua));
			xdr_put_u32(&e, 1);
			xdr_put_u32(&e, g_tab[i].prog);
			xdr_put_u32(&e, g_tab[i].vers);
			xdr_put_string(&e, g_tab[i].netid);
			xdr_put_string(&e, ua);
			xdr_put_string(&e, g_tab[i].owner);
		}
		pthread_mutex_unlock(&g_lock);
		xdr_put_u32(&e, 0);
		if (e.err) {
			rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
			return;
		}
		rpc_reply_send(call, xdr_enc_len(&e), NULL, 0, NULL, NULL);
		return;
	}
	case RPCBPROC_GETTIME:
		reply_u32(call, (uint32_t)time(NULL));
		return;
	case RPCBPROC_CALLIT:          /* v4: BCAST */
	case RPCBPROC_INDIRECT:
		rpc_call_drop(call);
		return;
	default:
		rpc_reply_accept_error(call, RPC_PROC_UNAVAIL);
		return;
	}
}

static void pmap_dispatch(struct rpc_call *call)
{
	if (call->vers == 2)
		pmap2(call);
	else
		rpcb34(call);
}

const struct rpc_program portmap_program = {
	.prog = PMAP_PROG,
	.vers_lo = 2,
	.vers_hi = 4,
	.name = "portmapper",
	.dispatch = pmap_dispatch,
};

/* ================================================================ client */

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n, int timeout_ms)
{
	while (n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;
		int pr = poll(&pfd, 1, timeout_ms);

		if (pr == 0)
			return -ETIMEDOUT;
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		r = recv(fd, p, n, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int connect_timeout(int fd, const struct sockaddr_in *sa, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);

	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return err ? -err : 0;
}

/* One call over a fresh TCP connection to 127.0.0.1:port; reply results
 * (after the accepted header) into res[0..*reslen).  A reserved source
 * port is used when we can bind one (rpcbind wants it for SET/UNSET). */
static int pmap_rpc(uint16_t port, uint32_t vers, uint32_t proc, const uint8_t *args, size_t alen,
		    uint8_t *res, size_t *reslen, int timeout_ms)
{
	struct sockaddr_in sa;
	uint8_t msg[128], hdr[4];
	struct xdr_enc e;
	uint32_t xid = (uint32_t)rand() ^ (uint32_t)getpid(), mark, rlen;
	uint8_t *rbuf = NULL;
	int fd, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int p = 1023; p >= 600; p--) {
		sa.sin_port = htons((uint16_t)p);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno != EADDRINUSE)
			break;      /* not root: an ephemeral port it is */
	}
	sa.sin_port = htons(port);
	ret = connect_timeout(fd, &sa, timeout_ms);
	if (ret < 0)
		goto out;
	xdr_enc_init(&e, msg + 4, sizeof(msg) - 4);
	xdr_put_u32(&e, xid);
	xdr_put_u32(&e, RPC_MSG_CALL);
	xdr_put_u32(&e, 2);
	xdr_put_u32(&e, PMAP_PROG);
	xdr_put_u32(&e, vers);
	xdr_put_u32(&e, proc);
	xdr_put_u32(&e, RPC_AUTH_NONE);
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, RPC_AUTH_NONE);
	xdr_put_u32(&e, 0);
	if (alen > (size_t)(e.end - e.p)) {
		ret = -EINVAL;
		goto out;
	}
	if (alen)
		memcpy(e.p, args, alen);
	e.p += alen;
	xdr_put_be32(msg, 0x80000000u | (uint32_t)xdr_enc_len(&e));
	ret = write_all(fd, msg, 4 + xdr_enc_len(&e));
	if (ret < 0)
		goto out;
	ret = read_all(fd, hdr, 4, timeout_ms);
	if (ret < 0)
		goto out;
	mark = xdr_be32(hdr);
	rlen = mark & 0x7fffffffu;
	if (!(mark & 0x80000000u) || rlen < 24 || rlen > 65536) {
		ret = -EPROTO;
		goto out;
	}
	rbuf = malloc(rlen);
	if (!rbuf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_all(fd, rbuf, rlen, timeout_ms);
	if (ret < 0)
		goto out;
	if (xdr_be32(rbuf) != xid || xdr_be32(rbuf + 4) != RPC_MSG_REPLY ||
	    xdr_be32(rbuf + 8) != RPC_MSG_ACCEPTED || xdr_be32(rbuf + 20) != RPC_SUCCESS ||
	    xdr_be32(rbuf + 16) != 0) {
		ret = -EPROTO;
		goto out;
	}
	if (*reslen > rlen - 24)
		*reslen = rlen - 24;
	memcpy(res, rbuf + 24, *reslen);
	ret = 0;
out:
	free(rbuf);
	close(fd);
	return ret;
}

int pmap_probe(uint16_t pmap_port, int timeout_ms)
{
	uint8_t res[4];
	size_t rl = 0;

	return pmap_rpc(pmap_port, 2, PMAPPROC_NULL, NULL, 0, res, &rl, timeout_ms);
}

int pmap_client_set(uint16_t pmap_port, bool set, uint32_t prog, uint32_t vers, uint32_t proto,
		    uint16_t port)
{
	uint8_t args[16], res[4];
	size_t rl = sizeof(res);
	int ret;

	xdr_put_be32(args, prog);
	xdr_put_be32(args + 4, vers);
	xdr_put_be32(args + 8, proto);
	xdr_put_be32(args + 12, port);
	ret = pmap_rpc(pmap_port, 2, set ? PMAPPROC_SET : PMAPPROC_UNSET, args, sizeof(args), res,
		       &rl, 2000);
	if (ret < 0)
		return ret;
	if (rl < 4)
		return -EPROTO;
	return xdr_be32(res) ? 1 : 0;
}
