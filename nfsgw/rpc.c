/* rpc.c - ONC RPC v2 server transport (RFC 5531) on the io_uring reactors.
 *
 * TCP: multishot accept per listening socket (one SO_REUSEPORT socket per
 * reactor, so a connection lives on one reactor); a resumable record-marking
 * reader (section 11) that receives into a per-connection staging buffer and,
 * for the body of a large fragment (a WRITE), straight into the record
 * buffer; each complete record becomes a call (struct rpc_txn) handed to its
 * program.  Calls of one connection run concurrently (clients pipeline) and
 * their replies are queued in completion order; one IORING_OP_SENDMSG per
 * connection is in flight and carries as many queued replies as fit in its
 * iovec array, a READ payload going out from the program's buffer without a
 * copy.  At most RPC_MAX_INFLIGHT calls are alive per connection: beyond it
 * the reader stops until replies drain, which bounds memory per client.
 *
 * UDP: one IORING_OP_RECVMSG at a time per socket; a datagram is one call
 * (section 10 of RFC 5531 has no record marking there), the reply is one
 * IORING_OP_SENDMSG to the caller, from the address the call came to
 * (IP_PKTINFO) so that multi-homed hosts answer from the right address.
 *
 * Lifetime: a call holds its transport (ncalls).  A connection that goes
 * away while calls are in flight only stops I/O; calls keep completing into
 * it, their replies are dropped, and the connection is freed when the last
 * call and the last io_uring request are gone.
 */
#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/acl.h"
#include "../core/log.h"
#include "drc.h"
#include "rpc_internal.h"
#include "xdr.h"

#define RPC_MAX_PROGS 32
#define RPC_MAX_REACTORS 1024
#define RPC_STAGE_BUF 65536
#define RPC_DIRECT_MIN 16384            /* fragment bodies this large bypass staging */
#define RPC_TX_IOV 64
#define RPC_HDR_ROOM 28                 /* record mark + accepted reply header */
#define RPC_ACCEPTED_HDR 24
#define RPC_UDP_MAX 65536
#define RPC_UDP_INFLIGHT 256
#define RPC_IDLE_MS (6u * 60u * 1000u)  /* Linux nfsd closes idle TCP after 6 min */

/* ================================================================ programs */

static const struct rpc_program *g_progs[RPC_MAX_PROGS];
static int g_nprogs;

int rpc_register(const struct rpc_program *p)
{
	if (!p || !p->dispatch || p->vers_lo > p->vers_hi)
		return -EINVAL;
	for (int i = 0; i < g_nprogs; i++) {
		const struct rpc_program *q = g_progs[i];
		if (q == p)
			return 0;
		if (q->prog == p->prog && p->vers_lo <= q->vers_hi && q->vers_lo <= p->vers_hi)
			return -EEXIST;
	}
	if (g_nprogs == RPC_MAX_PROGS)
		return -ENOSPC;
	g_progs[g_nprogs++] = p;
	return 0;
}

const struct rpc_program *rpc_find(uint32_t prog, uint32_t vers)
{
	for (int i = 0; i < g_nprogs; i++)
		if (g_progs[i]->prog == prog && vers >= g_progs[i]->vers_lo && vers <= g_progs[i]->vers_hi)
			return g_progs[i];
	return NULL;
}

/* Lowest and highest version registered for prog; false if none. */
static bool prog_versions(uint32_t prog, uint32_t *lo, uint32_t *hi)
{
	bool found = false;

	for (int i = 0; i < g_nprogs; i++) {
		if (g_progs[i]->prog != prog)
			continue;
		if (!found || g_progs[i]->vers_lo < *lo)
			*lo = g_progs[i]->vers_lo;
		if (!found || g_progs[i]->vers_hi > *hi)
			*hi = g_progs[i]->vers_hi;
		found = true;
	}
	return found;
}

/* ================================================================ record marking */

void rpc_rm_init(struct rpc_rm *m, uint32_t max)
{
	memset(m, 0, sizeof(*m));
	m->max = max;
}

void rpc_rm_fini(struct rpc_rm *m)
{
	free(m->rec);
	rpc_rm_init(m, m->max);
}

static enum rpc_rm_result rm_frag_end(struct rpc_rm *m)
{
	m->in_frag = false;
	return m->last ? RPC_RM_RECORD : RPC_RM_MORE;
}

/* RFC 5531 section 11: a fragment header is one 32-bit word, the high bit
 * marks the last fragment of the record, the low 31 bits give the fragment
 * length.  The record limit is checked before any body byte is accepted. */
static enum rpc_rm_result rm_frag_header(struct rpc_rm *m)
{
	uint32_t v = xdr_be32(m->hdr);
	uint32_t len = v & 0x7fffffffu;
	uint64_t need = (uint64_t)m->rec_len + len;

	m->hdr_got = 0;
	m->last = (v >> 31) != 0;
	if (need > m->max)
		return RPC_RM_ERROR;
	if (need == 0)
		need = 1;
	if (need > m->rec_cap) {
		uint8_t *n = realloc(m->rec, need);
		if (!n)
			return RPC_RM_ERROR;
		m->rec = n;
		m->rec_cap = (uint32_t)need;
	}
	m->frag_left = len;
	m->in_frag = true;
	return len ? RPC_RM_MORE : rm_frag_end(m);
}

enum rpc_rm_result rpc_rm_feed(struct rpc_rm *m, const uint8_t *p, size_t n, size_t *used)
{
	enum rpc_rm_result r = RPC_RM_MORE;
	size_t off = 0;

	while (off < n && r == RPC_RM_MORE) {
		if (!m->in_frag) {
			size_t k = 4u - m->hdr_got;
			if (k > n - off)
				k = n - off;
			memcpy(m->hdr + m->hdr_got, p + off, k);
			m->hdr_got += (uint8_t)k;
			off += k;
			if (m->hdr_got == 4)
				r = rm_frag_header(m);
		} else {
			size_t k = m->frag_left;
			if (k > n - off)
				k = n - off;
			memcpy(m->rec + m->rec_len, p + off, k);
			m->rec_len += (uint32_t)k;
			m->frag_left -= (uint32_t)k;
			off += k;
			if (!m->frag_left)
				r = rm_frag_end(m);
		}
	}
	*used = off;
	return r;
}

uint8_t *rpc_rm_direct(struct rpc_rm *m, uint32_t *room)
{
	if (!m->in_frag || !m->frag_left) {
		*room = 0;
		return NULL;
	}
	*room = m->frag_left;
	return m->rec + m->rec_len;
}

enum rpc_rm_result rpc_rm_direct_done(struct rpc_rm *m, uint32_t n)
{
	if (n > m->frag_left)
		return RPC_RM_ERROR;
	m->rec_len += n;
	m->frag_left -= n;
	return m->frag_left ? RPC_RM_MORE : rm_frag_end(m);
}

uint8_t *rpc_rm_take(struct rpc_rm *m, uint32_t *len)
{
	uint8_t *rec = m->rec;

	*len = m->rec_len;
	if (!rec)
		rec = malloc(1);
	m->rec = NULL;
	m->rec_len = m->rec_cap = 0;
	m->last = false;
	m->in_frag = false;
	m->frag_left = 0;
	return rec;
}

/* ================================================================ call header */

/* RFC 5531 appendix A: authsys_parms { stamp; machinename<255>; uid; gid;
 * gids<16> }.  The body must be exactly that long (Linux svcauth_unix too). */
static bool parse_auth_sys(const uint8_t *body, uint32_t len, struct rpc_auth *a)
{
	struct xdr_dec d;
	uint32_t n;

	xdr_dec_init(&d, body, len);
	(void)xdr_get_u32(&d);                 /* stamp */
	xdr_get_string(&d, a->machine, sizeof(a->machine), 255);
	a->uid = xdr_get_u32(&d);
	a->gid = xdr_get_u32(&d);
	n = xdr_get_u32(&d);
	if (d.err || n > RPC_MAX_GIDS)
		return false;
	for (uint32_t i = 0; i < n; i++)
		a->gids[i] = xdr_get_u32(&d);
	a->ngids = n;
	return !d.err && xdr_dec_left(&d) == 0;
}

enum rpc_parse_result rpc_parse_call(const uint8_t *rec, size_t len, struct rpc_call *call,
				     uint32_t *auth_stat)
{
	struct xdr_dec d;
	uint32_t mtype, rpcvers, flavor, clen, vflavor, vlen;
	const uint8_t *cbody;

	xdr_dec_init(&d, rec, len);
	call->xid = xdr_get_u32(&d);
	mtype = xdr_get_u32(&d);
	if (d.err || mtype != RPC_MSG_CALL)
		return RPC_PARSE_DROP;         /* a reply or noise: servers ignore it */
	rpcvers = xdr_get_u32(&d);
	if (d.err)
		return RPC_PARSE_DROP;
	/* Section 9: only version 2 exists; anything else gets RPC_MISMATCH. */
	if (rpcvers != 2)
		return RPC_PARSE_RPC_MISMATCH;
	call->prog = xdr_get_u32(&d);
	call->vers = xdr_get_u32(&d);
	call->proc = xdr_get_u32(&d);
	if (d.err)
		return RPC_PARSE_DROP;
	flavor = xdr_get_u32(&d);
	cbody = xdr_get_opaque(&d, &clen, RPC_MAX_AUTH_BYTES);
	if (d.err) {
		*auth_stat = RPC_AUTH_BADCRED;
		return RPC_PARSE_AUTH_ERROR;
	}
	vflavor = xdr_get_u32(&d);
	(void)xdr_get_opaque(&d, &vlen, RPC_MAX_AUTH_BYTES);
	if (d.err) {
		*auth_stat = RPC_AUTH_BADVERF;
		return RPC_PARSE_AUTH_ERROR;
	}
	memset(&call->auth, 0, sizeof(call->auth));
	switch (flavor) {
	case RPC_AUTH_NONE:
		if (clen) {
			*auth_stat = RPC_AUTH_BADCRED;
			return RPC_PARSE_AUTH_ERROR;
		}
		call->auth.flavor = RPC_AUTH_NONE;
		call->auth.uid = call->auth.gid = 65534;
		break;
	case RPC_AUTH_SYS:
		call->auth.flavor = RPC_AUTH_SYS;
		if (!parse_auth_sys(cbody, clen, &call->auth)) {
			*auth_stat = RPC_AUTH_BADCRED;
			return RPC_PARSE_AUTH_ERROR;
		}
		break;
	default:
		/* RPCSEC_GSS, AUTH_DH...: not offered (Linux: badcred too). */
		*auth_stat = RPC_AUTH_BADCRED;
		return RPC_PARSE_AUTH_ERROR;
	}
	/* AUTH_NONE and AUTH_SYS both come with an empty AUTH_NONE verifier. */
	if (vflavor != RPC_AUTH_NONE || vlen) {
		*auth_stat = RPC_AUTH_BADVERF;
		return RPC_PARSE_AUTH_ERROR;
	}
	call->args = d.p;
	call->args_len = (uint32_t)xdr_dec_left(&d);
	return RPC_PARSE_OK;
}

void rpc_encode_accepted(uint8_t *p, uint32_t xid, uint32_t accept_stat)
{
	xdr_put_be32(p, xid);
	xdr_put_be32(p + 4, RPC_MSG_REPLY);
	xdr_put_be32(p + 8, RPC_MSG_ACCEPTED);
	xdr_put_be32(p + 12, RPC_AUTH_NONE);   /* verifier flavor */
	xdr_put_be32(p + 16, 0);               /* verifier length */
	xdr_put_be32(p + 20, accept_stat);
}

/* ================================================================ transport objects */

enum xprt_kind { XPRT_TCP, XPRT_UDP };

struct rpc_reactor;

struct rpc_listener {
	struct rs_op op;
	int fd;
	bool armed, failed;
	struct rpc_reactor *rr;
	struct rpc_listener *next;
};

union rpc_cmsg {
	struct cmsghdr align;
	uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
};

struct rpc_xprt {
	enum xprt_kind kind;
	struct rpc_reactor *rr;
	struct reactor *r;
	int fd;
	bool closing;
	int busy;                   /* inside one of our handlers: do not free */
	unsigned ncalls;            /* calls alive (dispatched, or reply not yet sent) */
	struct rpc_xprt *prev, *next;
	struct sockaddr_storage peer, local;
	socklen_t peerlen, locallen;
	uint16_t local_port;
	bool wildcard;              /* UDP socket bound to INADDR_ANY/in6addr_any */
	char peer_str[72];
	uint64_t last_rx_ms;

	struct rs_op recv_op;
	bool recv_armed;
	/* TCP reader */
	uint8_t *stage;
	uint32_t rpos, wpos;
	bool recv_direct;
	struct rpc_rm rm;
	/* TCP sender */
	struct rs_op send_op;
	bool send_armed, tx_dead;
	struct rpc_txn *txq, *txq_tail;
	size_t tx_off;
	struct iovec iov[RPC_TX_IOV];
	struct msghdr msg;
	/* UDP receiver */
	uint8_t *ubuf;
	struct iovec uiov;
	struct msghdr umsg;
	struct sockaddr_storage upeer;
	union rpc_cmsg ucmsg;
};

struct rpc_txn {
	struct rpc_call call;       /* container_of(call) */
	uint8_t *record;            /* the call message; call.args points into it */
	bool replied;
	bool drc;                   /* an in-progress DRC entry exists */
	uint8_t *out;               /* message to send (TCP: from the record mark) */
	size_t out_len;
	const void *payload;
	size_t payload_len;
	uint32_t pad;
	void (*payload_done)(void *arg);
	void *payload_arg;
	struct rpc_txn *next;       /* TCP send queue */
	/* UDP send */
	struct rs_op send_op;
	struct msghdr msg;
	struct iovec iov[3];
	union rpc_cmsg cmsg;
};

struct rpc_reactor {
	struct reactor *r;
	struct rs_ticker ticker;
	struct rpc_listener *listeners;
	struct rpc_xprt *xprts;
	atomic_int nxprt, naccept;
	bool shutting_down;
};

static struct rpc_reactor *g_rr[RPC_MAX_REACTORS];
static const uint8_t zero_pad[4];

static void xprt_close(struct rpc_xprt *x, const char *why);
static void xprt_settle(struct rpc_xprt *x);
static void tcp_arm_recv(struct rpc_xprt *x);
static void tcp_tx_kick(struct rpc_xprt *x);
static void udp_arm_recv(struct rpc_xprt *x);
static void ticker_fn(struct rs_ticker *t, uint64_t now);

static struct rpc_reactor *rr_get(struct reactor *r, bool create)
{
	struct rpc_reactor *rr;

	if (r->id < 0 || r->id >= RPC_MAX_REACTORS)
		return NULL;
	rr = g_rr[r->id];
	if (rr && rr->r != r)
		return NULL;   /* another reactor with this id, never shut down */
	if (rr || !create)
		return rr;
	rr = calloc(1, sizeof(*rr));
	if (!rr)
		return NULL;
	rr->r = r;
	rr->ticker.fn = ticker_fn;
	reactor_add_ticker(r, &rr->ticker);
	g_rr[r->id] = rr;
	return rr;
}

static void sockaddr_port_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	acl_sockaddr_str((const struct sockaddr *)ss, addr, sizeof(addr));
	if (ss->ss_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", addr, ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
	else if (ss->ss_family == AF_INET)
		snprintf(buf, len, "%s:%u", addr, ntohs(((const struct sockaddr_in *)ss)->sin_port));
	else
		snprintf(buf, len, "?");
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return 0;
}

void rpc_peer_str(const struct rpc_call *call, char *buf, size_t len)
{
	acl_sockaddr_str((const struct sockaddr *)&call->peer, buf, len);
}

/* ================================================================ calls */

static void txn_free(struct rpc_txn *t)
{
	struct rpc_xprt *x = t->call.xprt;

	if (t->payload_done)
		t->payload_done(t->payload_arg);
	if (t->drc)
		drc_abort(&t->call);
	free(t->call.reply);
	free(t->record);
	free(t);
	x->ncalls--;
	if (!x->busy)
		xprt_settle(x);
}

static void on_udp_send(struct rs_op *op, int res, uint32_t flags)
{
	struct rpc_txn *t = container_of(op, struct rpc_txn, send_op);
	(void)flags;

	if (res < 0 && res != -ECANCELED)
		log_debug("rpc: udp reply to xid 0x%08x: %s", t->call.xid, strerror(-res));
	txn_free(t);
}

static void udp_send(struct rpc_xprt *x, struct rpc_txn *t)
{
	struct io_uring_sqe *sqe;
	int n = 0;

	t->iov[n].iov_base = t->out;
	t->iov[n++].iov_len = t->out_len;
	if (t->payload_len) {
		t->iov[n].iov_base = (void *)t->payload;
		t->iov[n++].iov_len = t->payload_len;
	}
	if (t->pad) {
		t->iov[n].iov_base = (void *)zero_pad;
		t->iov[n++].iov_len = t->pad;
	}
	memset(&t->msg, 0, sizeof(t->msg));
	t->msg.msg_name = &t->call.peer;
	t->msg.msg_namelen = t->call.peerlen;
	t->msg.msg_iov = t->iov;
	t->msg.msg_iovlen = (size_t)n;
	/* Answer from the address the call was sent to (a wildcard socket would
	 * otherwise pick the route's source address, which the client may not
	 * accept as the server's). */
	if (x->wildcard && t->call.local.ss_family == AF_INET) {
		struct cmsghdr *cm;
		struct in_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi_spec_dst = ((struct sockaddr_in *)&t->call.local)->sin_addr;
		t->msg.msg_control = t->cmsg.buf;
		t->msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		cm = CMSG_FIRSTHDR(&t->msg);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	} else if (x->wildcard && t->call.local.ss_family == AF_INET6) {
		struct cmsghdr *cm;
		struct in6_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi6_addr = ((struct sockaddr_in6 *)&t->call.local)->sin6_addr;
		t->msg.msg_control = t->cmsg.buf;
		t->msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		cm = CMSG_FIRSTHDR(&t->msg);
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	t->send_op.fn = on_udp_send;
	sqe = reactor_sqe_op(x->r, &t->send_op);
	io_uring_prep_sendmsg(sqe, x->fd, &t->msg, 0);
}

/* Send the RPC message msg[0..msg_len) (with 4 writable bytes in front of it
 * for the TCP record mark) followed by payload and its XDR padding. */
static void txn_send(struct rpc_txn *t, uint8_t *msg, size_t msg_len, const void *payload,
		     size_t payload_len, void (*payload_done)(void *), void *payload_arg)
{
	struct rpc_xprt *x = t->call.xprt;

	t->payload = payload;
	t->payload_len = payload_len;
	t->payload_done = payload_done;
	t->payload_arg = payload_arg;
	t->pad = (uint32_t)((4 - (payload_len & 3)) & 3);
	if (t->replied) {
		log_err("rpc: second reply for xid 0x%08x (prog %u proc %u) ignored",
			t->call.xid, t->call.prog, t->call.proc);
		if (payload_done)
			payload_done(payload_arg);
		return;
	}
	t->replied = true;
	if (t->drc) {
		/* Keep the reply for retransmissions, even if this connection
		 * is gone: the retransmission comes on the next one. */
		drc_store(&t->call, msg, msg_len, payload, payload_len);
		t->drc = false;
	}
	/* The arguments are no longer needed (rpc.h: valid until the reply). */
	free(t->record);
	t->record = NULL;
	t->call.args = NULL;
	if (x->closing || x->tx_dead) {
		txn_free(t);
		return;
	}
	if (x->kind == XPRT_UDP) {
		t->out = msg;
		t->out_len = msg_len;
		udp_send(x, t);
		return;
	}
	/* RFC 5531 section 11: one fragment, last-fragment bit set. */
	xdr_put_be32(msg - 4, 0x80000000u | (uint32_t)(msg_len + payload_len + t->pad));
	t->out = msg - 4;
	t->out_len = msg_len + 4;
	t->next = NULL;
	if (x->txq_tail)
		x->txq_tail->next = t;
	else
		x->txq = t;
	x->txq_tail = t;
	tcp_tx_kick(x);
}

uint8_t *rpc_reply_buf(struct rpc_call *call, size_t max_len)
{
	size_t need = RPC_HDR_ROOM + max_len;

	if (!call->reply || call->reply_cap < need) {
		uint8_t *n = realloc(call->reply, need);
		if (!n)
			return NULL;
		call->reply = n;
		call->reply_cap = need;
	}
	return call->reply + RPC_HDR_ROOM;
}

void rpc_reply_send(struct rpc_call *call, size_t len, const void *payload, size_t payload_len,
		    void (*payload_done)(void *arg), void *payload_arg)
{
	struct rpc_txn *t = container_of(call, struct rpc_txn, call);
	uint8_t *msg;

	if (!call->reply || RPC_HDR_ROOM + len > call->reply_cap) {
		/* Contract violation (no rpc_reply_buf, or len beyond it). */
		log_err("rpc: reply of %zu bytes without a buffer (prog %u proc %u)", len,
			call->prog, call->proc);
		if (payload_done)
			payload_done(payload_arg);
		rpc_reply_accept_error(call, RPC_SYSTEM_ERR);
		return;
	}
	msg = call->reply + RPC_HDR_ROOM - RPC_ACCEPTED_HDR;
	rpc_encode_accepted(msg, call->xid, RPC_SUCCESS);
	txn_send(t, msg, RPC_ACCEPTED_HDR + len, payload, payload_len, payload_done, payload_arg);
}

/* Room for a small error reply at call->reply + 4. */
static uint8_t *small_reply(struct rpc_call *call)
{
	if (!rpc_reply_buf(call, 64))
		return NULL;
	return call->reply + 4;
}

void rpc_reply_accept_error(struct rpc_call *call, uint32_t accept_stat)
{
	struct rpc_txn *t = container_of(call, struct rpc_txn, call);
	uint8_t *msg = small_reply(call);
	size_t len = RPC_ACCEPTED_HDR;

	if (!msg) {
		rpc_call_drop(call);
		return;
	}
	rpc_encode_accepted(msg, call->xid, accept_stat);
	if (accept_stat == RPC_PROG_MISMATCH) {
		/* Section 9: mismatch_info { low, high } of the versions we have. */
		uint32_t lo = 0, hi = 0;
		prog_versions(call->prog, &lo, &hi);
		xdr_put_be32(msg + 24, lo);
		xdr_put_be32(msg + 28, hi);
		len += 8;
	}
	txn_send(t, msg, len, NULL, 0, NULL, NULL);
}

void rpc_reply_auth_error(struct rpc_call *call, uint32_t auth_stat)
{
	struct rpc_txn *t = container_of(call, struct rpc_txn, call);
	uint8_t *msg = small_reply(call);

	if (!msg) {
		rpc_call_drop(call);
		return;
	}
	xdr_put_be32(msg, call->xid);
	xdr_put_be32(msg + 4, RPC_MSG_REPLY);
	xdr_put_be32(msg + 8, RPC_MSG_DENIED);
	xdr_put_be32(msg + 12, RPC_REJ_AUTH);
	xdr_put_be32(msg + 16, auth_stat);
	txn_send(t, msg, 20, NULL, 0, NULL, NULL);
}

static void reply_rpc_mismatch(struct rpc_txn *t)
{
	uint8_t *msg = small_reply(&t->call);

	if (!msg) {
		rpc_call_drop(&t->call);
		return;
	}
	xdr_put_be32(msg, t->call.xid);
	xdr_put_be32(msg + 4, RPC_MSG_REPLY);
	xdr_put_be32(msg + 8, RPC_MSG_DENIED);
	xdr_put_be32(msg + 12, RPC_REJ_MISMATCH);
	xdr_put_be32(msg + 16, 2);
	xdr_put_be32(msg + 20, 2);
	txn_send(t, msg, 24, NULL, 0, NULL, NULL);
}

void rpc_call_drop(struct rpc_call *call)
{
	struct rpc_txn *t = container_of(call, struct rpc_txn, call);

	if (t->replied) {
		log_err("rpc: drop after reply for xid 0x%08x ignored", call->xid);
		return;
	}
	t->replied = true;
	txn_free(t);
}

static bool proc_non_idempotent(const struct rpc_program *p, uint32_t proc)
{
	return proc < 32 && (p->non_idempotent_procs & (1u << proc));
}

/* A complete call message: parse, route, dispatch.  Takes rec. */
static void handle_record(struct rpc_xprt *x, uint8_t *rec, uint32_t len,
			  const struct sockaddr_storage *peer, socklen_t peerlen,
			  const struct sockaddr_storage *local, socklen_t locallen)
{
	struct rpc_txn *t = calloc(1, sizeof(*t));
	struct rpc_call *call;
	const struct rpc_program *p;
	uint32_t auth_stat = 0;
	enum rpc_parse_result pr;

	if (!t) {
		/* The client retransmits; nothing better to do without memory. */
		free(rec);
		return;
	}
	t->record = rec;
	call = &t->call;
	call->xprt = x;
	call->r = x->r;
	call->udp = x->kind == XPRT_UDP;
	call->peer = *peer;
	call->peerlen = peerlen;
	call->local = *local;
	call->locallen = locallen;
	call->local_port = x->local_port;
	x->ncalls++;

	pr = rpc_parse_call(rec, len, call, &auth_stat);
	switch (pr) {
	case RPC_PARSE_DROP:
		log_debug("rpc: %s: undecodable message of %u bytes dropped", x->peer_str, len);
		rpc_call_drop(call);
		return;
	case RPC_PARSE_RPC_MISMATCH:
		reply_rpc_mismatch(t);
		return;
	case RPC_PARSE_AUTH_ERROR:
		rpc_reply_auth_error(call, auth_stat);
		return;
	case RPC_PARSE_OK:
		break;
	}
	p = rpc_find(call->prog, call->vers);
	if (!p) {
		uint32_t lo, hi;
		rpc_reply_accept_error(call, prog_versions(call->prog, &lo, &hi) ? RPC_PROG_MISMATCH
										 : RPC_PROG_UNAVAIL);
		return;
	}
	if (proc_non_idempotent(p, call->proc)) {
		uint8_t *cached;
		size_t clen;

		switch (drc_lookup(call, &cached, &clen)) {
		case DRC_IN_PROGRESS:
			log_debug("rpc: %s: retransmission of xid 0x%08x in progress, dropped",
				  x->peer_str, call->xid);
			rpc_call_drop(call);
			return;
		case DRC_REPLAY: {
			uint8_t *msg = rpc_reply_buf(call, clen);
			log_debug("rpc: %s: xid 0x%08x answered from the duplicate request cache",
				  x->peer_str, call->xid);
			if (!msg) {
				free(cached);
				rpc_call_drop(call);
				return;
			}
			msg = call->reply + 4;
			memcpy(msg, cached, clen);
			free(cached);
			txn_send(t, msg, clen, NULL, 0, NULL, NULL);
			return;
		}
		case DRC_NEW:
			t->drc = true;
			break;
		}
	}
	p->dispatch(call);
}

/* ================================================================ TCP */

static void tcp_rx_process(struct rpc_xprt *x)
{
	while (!x->closing && x->ncalls < RPC_MAX_INFLIGHT && x->rpos < x->wpos) {
		size_t used = 0;
		enum rpc_rm_result r = rpc_rm_feed(&x->rm, x->stage + x->rpos, x->wpos - x->rpos, &used);

		x->rpos += (uint32_t)used;
		if (r == RPC_RM_ERROR) {
			log_warn("rpc: %s: record larger than %u bytes, dropping the connection",
				 x->peer_str, (unsigned)RPC_MAX_RECORD);
			xprt_close(x, "oversized record");
			return;
		}
		if (r == RPC_RM_RECORD) {
			uint32_t len;
			uint8_t *rec = rpc_rm_take(&x->rm, &len);
			if (!rec) {
				xprt_close(x, "out of memory");
				return;
			}
			handle_record(x, rec, len, &x->peer, x->peerlen, &x->local, x->locallen);
		}
	}
}

static void on_tcp_recv(struct rs_op *op, int res, uint32_t flags)
{
	struct rpc_xprt *x = container_of(op, struct rpc_xprt, recv_op);
	(void)flags;

	x->recv_armed = false;
	x->busy++;
	if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
		/* transient: re-armed by xprt_settle */
	} else if (res <= 0) {
		xprt_close(x, res == 0 ? "peer closed" : strerror(-res));
	} else if (!x->closing) {
		x->last_rx_ms = rs_now_ms();
		if (x->recv_direct) {
			enum rpc_rm_result r = rpc_rm_direct_done(&x->rm, (uint32_t)res);
			if (r == RPC_RM_RECORD) {
				uint32_t len;
				uint8_t *rec = rpc_rm_take(&x->rm, &len);
				if (rec)
					handle_record(x, rec, len, &x->peer, x->peerlen, &x->local,
						      x->locallen);
				else
					xprt_close(x, "out of memory");
			} else if (r == RPC_RM_ERROR) {
				xprt_close(x, "record marking error");
			}
		} else {
			x->wpos += (uint32_t)res;
		}
		tcp_rx_process(x);
	}
	x->busy--;
	xprt_settle(x);
}

static void tcp_arm_recv(struct rpc_xprt *x)
{
	struct io_uring_sqe *sqe;
	uint8_t *buf;
	uint32_t len;

	if (x->recv_armed || x->closing || x->ncalls >= RPC_MAX_INFLIGHT)
		return;
	if (x->rpos == x->wpos) {
		x->rpos = x->wpos = 0;
		buf = rpc_rm_direct(&x->rm, &len);
		if (buf && len >= RPC_DIRECT_MIN) {
			/* A large fragment body (WRITE data): receive in place. */
			x->recv_direct = true;
			goto arm;
		}
	} else if (x->rpos > 0 && RPC_STAGE_BUF - x->wpos < 4096) {
		memmove(x->stage, x->stage + x->rpos, x->wpos - x->rpos);
		x->wpos -= x->rpos;
		x->rpos = 0;
	}
	buf = x->stage + x->wpos;
	len = RPC_STAGE_BUF - x->wpos;
	if (!len)
		return;    /* unprocessed bytes fill the buffer: paused at the limit */
	x->recv_direct = false;
arm:
	x->recv_op.fn = on_tcp_recv;
	sqe = reactor_sqe_op(x->r, &x->recv_op);
	io_uring_prep_recv(sqe, x->fd, buf, len, 0);
	x->recv_armed = true;
}

static void tx_drop_all(struct rpc_xprt *x)
{
	struct rpc_txn *t, *next;

	t = x->txq;
	x->txq = x->txq_tail = NULL;
	x->tx_off = 0;
	for (; t; t = next) {
		next = t->next;
		txn_free(t);
	}
}

static void on_tcp_send(struct rs_op *op, int res, uint32_t flags)
{
	struct rpc_xprt *x = container_of(op, struct rpc_xprt, send_op);
	(void)flags;

	x->send_armed = false;
	x->busy++;
	if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
		tcp_tx_kick(x);
	} else if (res < 0) {
		x->tx_dead = true;
		xprt_close(x, strerror(-res));
		tx_drop_all(x);
	} else {
		uint64_t done = (uint64_t)x->tx_off + (uint32_t)res;
		struct rpc_txn *t;

		while ((t = x->txq)) {
			uint64_t total = (uint64_t)t->out_len + t->payload_len + t->pad;
			if (done < total)
				break;
			done -= total;
			x->txq = t->next;
			if (!x->txq)
				x->txq_tail = NULL;
			txn_free(t);
		}
		x->tx_off = (size_t)done;
		if (x->closing)
			tx_drop_all(x);
		else
			tcp_tx_kick(x);
	}
	x->busy--;
	xprt_settle(x);
}

static void tcp_tx_kick(struct rpc_xprt *x)
{
	struct io_uring_sqe *sqe;
	size_t skip = x->tx_off, bytes = 0;
	unsigned n = 0;

	if (x->send_armed || !x->txq || x->tx_dead || x->closing)
		return;
	for (struct rpc_txn *t = x->txq; t && n + 3 <= RPC_TX_IOV && bytes < (4u << 20); t = t->next) {
		const void *seg[3] = { t->out, t->payload, zero_pad };
		size_t len[3] = { t->out_len, t->payload_len, t->pad };

		for (int i = 0; i < 3; i++) {
			if (!len[i])
				continue;
			if (skip >= len[i]) {
				skip -= len[i];
				continue;
			}
			x->iov[n].iov_base = (uint8_t *)seg[i] + skip;
			x->iov[n].iov_len = len[i] - skip;
			bytes += len[i] - skip;
			skip = 0;
			n++;
		}
	}
	if (!n)
		return;
	memset(&x->msg, 0, sizeof(x->msg));
	x->msg.msg_iov = x->iov;
	x->msg.msg_iovlen = n;
	x->send_op.fn = on_tcp_send;
	sqe = reactor_sqe_op(x->r, &x->send_op);
	io_uring_prep_sendmsg(sqe, x->fd, &x->msg, MSG_NOSIGNAL);
	x->send_armed = true;
}

static void xprt_link(struct rpc_reactor *rr, struct rpc_xprt *x)
{
	x->next = rr->xprts;
	if (rr->xprts)
		rr->xprts->prev = x;
	rr->xprts = x;
	atomic_fetch_add(&rr->nxprt, 1);
}

static void tcp_conn_new(struct rpc_reactor *rr, int fd)
{
	struct rpc_xprt *x = calloc(1, sizeof(*x));
	int one = 1;

	if (!x || !(x->stage = malloc(RPC_STAGE_BUF))) {
		free(x);
		close(fd);
		return;
	}
	x->kind = XPRT_TCP;
	x->rr = rr;
	x->r = rr->r;
	x->fd = fd;
	rpc_rm_init(&x->rm, RPC_MAX_RECORD);
	/* Replies are batched by us; Nagle would only delay the last one. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	x->peerlen = sizeof(x->peer);
	if (getpeername(fd, (struct sockaddr *)&x->peer, &x->peerlen) < 0)
		x->peerlen = 0;
	x->locallen = sizeof(x->local);
	if (getsockname(fd, (struct sockaddr *)&x->local, &x->locallen) < 0)
		x->locallen = 0;
	x->local_port = sockaddr_port(&x->local);
	sockaddr_port_str(&x->peer, x->peer_str, sizeof(x->peer_str));
	x->last_rx_ms = rs_now_ms();
	xprt_link(rr, x);
	log_debug("rpc: connection from %s on port %u", x->peer_str, x->local_port);
	tcp_arm_recv(x);
}

static void arm_accept(struct rpc_listener *l)
{
	struct io_uring_sqe *sqe = reactor_sqe_op(l->rr->r, &l->op);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->armed = true;
	l->failed = false;
	atomic_fetch_add(&l->rr->naccept, 1);
}

static void on_accept(struct rs_op *op, int res, uint32_t flags)
{
	struct rpc_listener *l = container_of(op, struct rpc_listener, op);
	struct rpc_reactor *rr = l->rr;

	if (!(flags & IORING_CQE_F_MORE)) {
		l->armed = false;
		atomic_fetch_sub(&rr->naccept, 1);
	}
	if (res >= 0) {
		if (rr->shutting_down)
			close(res);
		else
			tcp_conn_new(rr, res);
	} else if (res != -ECANCELED && !rr->shutting_down) {
		log_warn("rpc: accept: %s", strerror(-res));
		/* EMFILE and friends: retried from the ticker, not in a loop. */
		l->failed = true;
		return;
	}
	if (!l->armed && !rr->shutting_down && !l->failed)
		arm_accept(l);
}

int rpc_reactor_listen_tcp(struct reactor *r, int listen_fd)
{
	struct rpc_reactor *rr = rr_get(r, true);
	struct rpc_listener *l;

	if (!rr)
		return -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->op.fn = on_accept;
	l->fd = listen_fd;
	l->rr = rr;
	l->next = rr->listeners;
	rr->listeners = l;
	arm_accept(l);
	return 0;
}

/* ================================================================ UDP */

static void udp_local_from_cmsg(struct rpc_xprt *x, struct sockaddr_storage *local,
				socklen_t *locallen)
{
	*local = x->local;
	*locallen = x->locallen;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&x->umsg); cm; cm = CMSG_NXTHDR(&x->umsg, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *s4 = (struct sockaddr_in *)local;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			memset(local, 0, sizeof(*local));
			s4->sin_family = AF_INET;
			s4->sin_addr = pi.ipi_addr;
			s4->sin_port = htons(x->local_port);
			*locallen = sizeof(*s4);
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)local;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			memset(local, 0, sizeof(*local));
			s6->sin6_family = AF_INET6;
			s6->sin6_addr = pi.ipi6_addr;
			s6->sin6_port = htons(x->local_port);
			*locallen = sizeof(*s6);
		}
	}
}

static void on_udp_recv(struct rs_op *op, int res, uint32_t flags)
{
	struct rpc_xprt *x = container_of(op, struct rpc_xprt, recv_op);
	(void)flags;

	x->recv_armed = false;
	x->busy++;
	if (res == -ECANCELED || x->closing) {
		/* shutting down */
	} else if (res < 0) {
		/* ICMP errors surface here (ECONNREFUSED...); keep serving. */
		if (res != -EINTR && res != -EAGAIN && res != -ECONNREFUSED)
			log_debug("rpc: udp recvmsg: %s", strerror(-res));
	} else if (x->umsg.msg_flags & MSG_TRUNC) {
		log_debug("rpc: oversized udp datagram dropped");
	} else {
		uint8_t *rec = malloc(res ? (size_t)res : 1);
		struct sockaddr_storage local;
		socklen_t locallen;

		if (rec) {
			memcpy(rec, x->ubuf, (size_t)res);
			udp_local_from_cmsg(x, &local, &locallen);
			sockaddr_port_str(&x->upeer, x->peer_str, sizeof(x->peer_str));
			handle_record(x, rec, (uint32_t)res, &x->upeer, x->umsg.msg_namelen, &local,
				      locallen);
		}
	}
	x->busy--;
	xprt_settle(x);
}

static void udp_arm_recv(struct rpc_xprt *x)
{
	struct io_uring_sqe *sqe;

	if (x->recv_armed || x->closing || x->ncalls >= RPC_UDP_INFLIGHT)
		return;
	x->uiov.iov_base = x->ubuf;
	x->uiov.iov_len = RPC_UDP_MAX;
	memset(&x->umsg, 0, sizeof(x->umsg));
	x->umsg.msg_name = &x->upeer;
	x->umsg.msg_namelen = sizeof(x->upeer);
	x->umsg.msg_iov = &x->uiov;
	x->umsg.msg_iovlen = 1;
	x->umsg.msg_control = x->ucmsg.buf;
	x->umsg.msg_controllen = sizeof(x->ucmsg.buf);
	x->recv_op.fn = on_udp_recv;
	sqe = reactor_sqe_op(x->r, &x->recv_op);
	io_uring_prep_recvmsg(sqe, x->fd, &x->umsg, 0);
	x->recv_armed = true;
}

int rpc_reactor_serve_udp(struct reactor *r, int udp_fd)
{
	struct rpc_reactor *rr = rr_get(r, true);
	struct rpc_xprt *x;
	int one = 1;

	if (!rr)
		return -ENOMEM;
	x = calloc(1, sizeof(*x));
	if (!x || !(x->ubuf = malloc(RPC_UDP_MAX))) {
		free(x);
		return -ENOMEM;
	}
	x->kind = XPRT_UDP;
	x->rr = rr;
	x->r = r;
	x->fd = udp_fd;
	x->locallen = sizeof(x->local);
	if (getsockname(udp_fd, (struct sockaddr *)&x->local, &x->locallen) < 0)
		x->locallen = 0;
	x->local_port = sockaddr_port(&x->local);
	if (x->local.ss_family == AF_INET) {
		x->wildcard = ((struct sockaddr_in *)&x->local)->sin_addr.s_addr == htonl(INADDR_ANY);
		setsockopt(udp_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	} else if (x->local.ss_family == AF_INET6) {
		x->wildcard = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&x->local)->sin6_addr);
		setsockopt(udp_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	}
	snprintf(x->peer_str, sizeof(x->peer_str), "udp:%u", x->local_port);
	xprt_link(rr, x);
	udp_arm_recv(x);
	return 0;
}

/* ================================================================ lifecycle */

static void xprt_free(struct rpc_xprt *x)
{
	struct rpc_reactor *rr = x->rr;

	if (x->kind == XPRT_TCP)
		close(x->fd);
	if (x->prev)
		x->prev->next = x->next;
	else
		rr->xprts = x->next;
	if (x->next)
		x->next->prev = x->prev;
	atomic_fetch_sub(&rr->nxprt, 1);
	rpc_rm_fini(&x->rm);
	free(x->stage);
	free(x->ubuf);
	log_debug("rpc: %s freed", x->peer_str);
	free(x);
}

/* After any event: resume reading (a call finished below the in-flight
 * limit), or free a closed transport once nothing refers to it. */
static void xprt_settle(struct rpc_xprt *x)
{
	if (x->busy)
		return;
	if (!x->closing) {
		x->busy++;
		if (x->kind == XPRT_TCP) {
			tcp_rx_process(x);
			tcp_arm_recv(x);
		} else {
			udp_arm_recv(x);
		}
		x->busy--;
		if (!x->closing)
			return;
	}
	if (x->kind == XPRT_TCP && !x->send_armed && x->txq) {
		x->busy++;
		tx_drop_all(x);
		x->busy--;
	}
	if (x->recv_armed || x->send_armed || x->ncalls)
		return;
	xprt_free(x);
}

static void xprt_close(struct rpc_xprt *x, const char *why)
{
	if (x->closing)
		return;
	x->closing = true;
	x->busy++;
	if (x->kind == XPRT_TCP) {
		log_debug("rpc: connection %s closing: %s", x->peer_str, why);
		/* Wakes the pending recv and fails a pending send; the descriptor
		 * is closed only when every request on it has completed. */
		shutdown(x->fd, SHUT_RDWR);
		if (!x->send_armed)
			tx_drop_all(x);
	} else if (x->recv_armed) {
		struct io_uring_sqe *sqe = reactor_sqe(x->r);
		io_uring_prep_cancel(sqe, &x->recv_op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	x->busy--;
}

void rpc_reactor_shutdown(struct reactor *r)
{
	struct rpc_reactor *rr = rr_get(r, false);
	struct rpc_xprt *x, *next;

	if (!rr)
		return;
	rr->shutting_down = true;
	for (struct rpc_listener *l = rr->listeners; l; l = l->next) {
		if (l->armed) {
			struct io_uring_sqe *sqe = reactor_sqe(r);
			io_uring_prep_cancel(sqe, &l->op, 0);
			io_uring_sqe_set_data(sqe, NULL);
		}
	}
	for (x = rr->xprts; x; x = next) {
		next = x->next;
		xprt_close(x, "shutdown");
		xprt_settle(x);
	}
}

int rpc_reactor_idle(struct reactor *r)
{
	struct rpc_reactor *rr = rr_get(r, false);

	if (!rr)
		return 1;
	if (atomic_load(&rr->nxprt) != 0 || atomic_load(&rr->naccept) != 0)
		return 0;
	if (rr->shutting_down) {
		/* Nothing in io_uring refers to us any more: release the
		 * per-reactor state, so that a later start begins afresh. */
		reactor_del_ticker(r, &rr->ticker);
		while (rr->listeners) {
			struct rpc_listener *l = rr->listeners;
			rr->listeners = l->next;
			free(l);
		}
		g_rr[r->id] = NULL;
		free(rr);
	}
	return 1;
}

static void ticker_fn(struct rs_ticker *t, uint64_t now)
{
	struct rpc_reactor *rr = container_of(t, struct rpc_reactor, ticker);
	struct rpc_xprt *x, *next;

	if (rr->shutting_down)
		return;
	for (struct rpc_listener *l = rr->listeners; l; l = l->next)
		if (!l->armed && l->failed)
			arm_accept(l);
	for (x = rr->xprts; x; x = next) {
		next = x->next;
		if (x->kind == XPRT_TCP && !x->closing && !x->ncalls && now - x->last_rx_ms > RPC_IDLE_MS) {
			xprt_close(x, "idle");
			xprt_settle(x);
		}
	}
}
