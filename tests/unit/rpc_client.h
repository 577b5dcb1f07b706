/* rpc_client.h - a tiny blocking ONC RPC client for the unit tests
 * (header-only: each test program includes its own copy). */
#ifndef RS_TEST_RPC_CLIENT_H
#define RS_TEST_RPC_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nfsgw/xdr.h"

/* Bind fd to a free reserved port of 127.0.0.1 (needs root; servers treat
 * a source port < 1024 as a privileged caller).  0 or -1. */
static inline int rc_bind_reserved(int fd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int p = 1023; p >= 600; p--) {
		sa.sin_port = htons((uint16_t)p);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -1;
	}
	return -1;
}

/* A socket of this type connected to 127.0.0.1:port, from a reserved port
 * if reserved (-1 if that cannot be had). */
static inline int rc_connect_from(int type, uint16_t port, bool reserved)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if ((reserved && rc_bind_reserved(fd) < 0) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int rc_connect_tcp(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int rc_udp_socket(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A listening socket on a free loopback port. */
static inline int rc_listen_any(int type, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (type == SOCK_STREAM && listen(fd, 64) < 0)
		return -1;
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Bind a UDP/TCP socket on the same port number (portmapper on TCP+UDP). */
static inline int rc_bind_port(int type, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (type == SOCK_STREAM && listen(fd, 64) < 0)
		return -1;
	return fd;
}

struct rc_cred {
	uint32_t flavor;        /* 0 none, 1 sys */
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[20];
	const char *machine;
};

/* Build a call message (no record mark). */
static inline size_t rc_build_call(uint8_t *buf, size_t cap, uint32_t xid, uint32_t prog,
				   uint32_t vers, uint32_t proc, const struct rc_cred *cred,
				   const void *args, size_t alen)
{
	struct xdr_enc e;

	xdr_enc_init(&e, buf, cap);
	xdr_put_u32(&e, xid);
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, 2);
	xdr_put_u32(&e, prog);
	xdr_put_u32(&e, vers);
	xdr_put_u32(&e, proc);
	if (cred && cred->flavor == 1) {
		uint8_t body[512];
		struct xdr_enc b;
		xdr_enc_init(&b, body, sizeof(body));
		xdr_put_u32(&b, 12345);
		xdr_put_string(&b, cred->machine ? cred->machine : "client");
		xdr_put_u32(&b, cred->uid);
		xdr_put_u32(&b, cred->gid);
		xdr_put_u32(&b, cred->ngids);
		for (uint32_t i = 0; i < cred->ngids && i < 20; i++)
			xdr_put_u32(&b, cred->gids[i]);
		xdr_put_u32(&e, 1);
		xdr_put_opaque(&e, body, (uint32_t)xdr_enc_len(&b));
	} else {
		xdr_put_u32(&e, 0);
		xdr_put_u32(&e, 0);
	}
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, 0);
	if (alen && (size_t)(e.end - e.p) >= alen) {
		memcpy(e.p, args, alen);
		e.p += alen;
	} else if (alen) {
		e.err = true;
	}
	return e.err ? 0 : xdr_enc_len(&e);
}

static inline int rc_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Send msg as nfrag fragments (RFC 5531 section 11). */
static inline int rc_send_record(int fd, const uint8_t *msg, size_t len, int nfrag)
{
	size_t off = 0;

	if (nfrag < 1)
		nfrag = 1;
	for (int i = 0; i < nfrag; i++) {
		size_t n = i == nfrag - 1 ? len - off : len / (size_t)nfrag;
		uint8_t hdr[4];
		xdr_put_be32(hdr, (uint32_t)n | (i == nfrag - 1 ? 0x80000000u : 0));
		if (rc_write_all(fd, hdr, 4) < 0 || rc_write_all(fd, msg + off, n) < 0)
			return -1;
		off += n;
	}
	return 0;
}

static inline int rc_read_all(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		r = recv(fd, p, len, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* One reply record (all fragments); malloc'd; NULL on EOF/timeout. */
static inline uint8_t *rc_recv_record(int fd, uint32_t *len, int timeout_ms)
{
	uint8_t *rec = NULL;
	uint32_t total = 0;

	*len = 0;
	for (;;) {
		uint8_t hdr[4];
		uint32_t v, n;
		uint8_t *nr;

		if (rc_read_all(fd, hdr, 4, timeout_ms) < 0)
			goto fail;
		v = xdr_be32(hdr);
		n = v & 0x7fffffffu;
		nr = realloc(rec, total + n + 1);
		if (!nr)
			goto fail;
		rec = nr;
		if (rc_read_all(fd, rec + total, n, timeout_ms) < 0)
			goto fail;
		total += n;
		if (v & 0x80000000u)
			break;
	}
	*len = total;
	return rec;
fail:
	free(rec);
	return NULL;
}

static inline uint8_t *rc_recv_udp(int fd, uint32_t *len, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t *buf;
	ssize_t r;

	*len = 0;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return NULL;
	buf = malloc(65536);
	if (!buf)
		return NULL;
	r = recv(fd, buf, 65536, 0);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	*len = (uint32_t)r;
	return buf;
}

/* Parse a reply: returns accept_stat (0..5) for MSG_ACCEPTED; for MSG_DENIED
 * 100 (RPC_MISMATCH; res points at "high") or 110 + auth_stat (AUTH_ERROR);
 * -1 if malformed.  res and res_len: what follows accept_stat. */
static inline int rc_parse_reply(const uint8_t *rep, uint32_t len, uint32_t xid,
				 const uint8_t **res, uint32_t *res_len)
{
	struct xdr_dec d;
	uint32_t st, vlen;

	xdr_dec_init(&d, rep, len);
	if (xdr_get_u32(&d) != xid || xdr_get_u32(&d) != 1)
		return -1;
	st = xdr_get_u32(&d);
	if (d.err)
		return -1;
	if (st == 1) {
		uint32_t rs = xdr_get_u32(&d);
		uint32_t detail = xdr_get_u32(&d);
		if (d.err)
			return -1;
		if (res) {
			*res = d.p;
			*res_len = (uint32_t)xdr_dec_left(&d);
		}
		return rs == 0 ? 100 : 110 + (int)detail;
	}
	(void)xdr_get_u32(&d);
	(void)xdr_get_opaque(&d, &vlen, 400);
	st = xdr_get_u32(&d);
	if (d.err)
		return -1;
	if (res) {
		*res = d.p;
		*res_len = (uint32_t)xdr_dec_left(&d);
	}
	return (int)st;
}

#endif
