/* iscsi_conn.c - iSCSI connections on io_uring: multishot accept, the
 * resumable PDU reader, the batched sender, per-reactor timers and teardown.
 *
 * Reader (SPDK style): BHS -> check (iscsi_bhs_check, before any payload is
 * read) -> AHS -> header digest -> data -> padding + data digest.  Bytes are
 * received into a per-connection staging buffer and parsed from there; a
 * large data segment whose destination is known (Data-Out, immediate data)
 * is received straight into the command's buffer.  "Reject this PDU" and
 * "drop this connection" are separate outcomes (RFC 7143 7.x, ERL 0).
 *
 * Sender: PDUs are queued as {header, payload pointer, trailer}; one
 * IORING_OP_SENDMSG per connection is in flight and carries as many queued
 * PDUs as fit in its iovec array; partial sends resume where they stopped.
 * Data-In payloads point into the SCSI command's data_in buffer (no copy).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/acl.h"
#include "../core/log.h"
#include "iscsi_internal.h"

struct iscsi_globals iscsi_g;

#define MAX_REACTORS 1024
static struct iscsi_reactor *g_ir[MAX_REACTORS];
static _Atomic uint64_t g_conn_ids;

struct iscsi_listener {
	struct rs_op op;
	int fd;
	bool armed;
	bool failed;                /* accept error: re-armed by the ticker */
	uint16_t tpgt;              /* portal group tag of the portal listened on */
	struct iscsi_reactor *ir;
	struct iscsi_listener *next;
};

static void arm_recv(struct iscsi_conn *c);
static void tx_kick(struct iscsi_conn *c);
static void conn_free(struct iscsi_conn *c);

/* ================================================================ setup */

int iscsi_init(const struct iscsi_settings *s, const struct iscsi_portal *portals, int nportals)
{
	memset(&iscsi_g, 0, sizeof(iscsi_g));
	if (s)
		iscsi_g.s = *s;
	if (iscsi_g.s.caps.max_recv_dsl == 0)
		iscsi_caps_default(&iscsi_g.s.caps);
	if (iscsi_g.s.queue_depth == 0)
		iscsi_g.s.queue_depth = 128;
	if (iscsi_g.s.nop_timeout_s == 0)
		iscsi_g.s.nop_timeout_s = 30;
	if (nportals > 0) {
		iscsi_g.portals = calloc((size_t)nportals, sizeof(*portals));
		if (!iscsi_g.portals)
			return -ENOMEM;
		memcpy(iscsi_g.portals, portals, sizeof(*portals) * (size_t)nportals);
		iscsi_g.nportals = nportals;
	}
	sess_set_hooks();
	return 0;
}

static void ticker_fn(struct rs_ticker *t, uint64_t now);

static struct iscsi_reactor *ir_get(struct reactor *r, bool create)
{
	struct iscsi_reactor *ir;

	if (r->id < 0 || r->id >= MAX_REACTORS)
		return NULL;
	ir = g_ir[r->id];
	if (ir || !create)
		return ir;
	ir = calloc(1, sizeof(*ir));
	if (!ir)
		return NULL;
	ir->r = r;
	ir->ticker.fn = ticker_fn;
	reactor_add_ticker(r, &ir->ticker);
	ir->ticker_on = true;
	g_ir[r->id] = ir;
	return ir;
}

/* ================================================================ accept */

static void conn_new(struct iscsi_reactor *ir, int fd, uint16_t tpgt);

static bool sa_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return false;
}

static unsigned sa_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

static bool sa_wildcard(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return false;
}

/* The portal group tag of the portal a listening socket serves: its bound
 * address is the portal's (a wildcard portal matches by port).  Every
 * connection accepted there belongs to that portal group (RFC 7143 4.4.1),
 * which is also the SCSI target port it reaches (see struct scsi_nexus). */
static uint16_t listen_tpgt(int fd)
{
	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);
	const struct iscsi_portal *wild = NULL;

	memset(&local, 0, sizeof(local));
	if (getsockname(fd, (struct sockaddr *)&local, &sl) == 0) {
		for (int i = 0; i < iscsi_g.nportals; i++) {
			const struct iscsi_portal *p = &iscsi_g.portals[i];

			if (sa_port(&p->addr) != sa_port(&local))
				continue;
			if (sa_same_addr(&p->addr, &local))
				return p->tpgt ? p->tpgt : 1;
			if (sa_wildcard(&p->addr) && !wild)
				wild = p;
		}
	}
	if (wild)
		return wild->tpgt ? wild->tpgt : 1;
	/* Unknown listener (tests): the first portal's group. */
	return iscsi_g.nportals && iscsi_g.portals[0].tpgt ? iscsi_g.portals[0].tpgt : 1;
}

static void arm_accept(struct iscsi_listener *l)
{
	struct io_uring_sqe *sqe = reactor_sqe_op(l->ir->r, &l->op);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->armed = true;
	l->failed = false;
	atomic_fetch_add(&l->ir->naccept, 1);
}

static void on_accept(struct rs_op *op, int res, uint32_t flags)
{
	struct iscsi_listener *l = container_of(op, struct iscsi_listener, op);
	struct iscsi_reactor *ir = l->ir;

	if (!(flags & IORING_CQE_F_MORE)) {
		l->armed = false;
		atomic_fetch_sub(&ir->naccept, 1);
	}
	if (res >= 0) {
		if (ir->shutting_down)
			close(res);
		else
			conn_new(ir, res, l->tpgt);
	} else if (res != -ECANCELED && !ir->shutting_down) {
		log_warn("iscsi: accept: %s", strerror(-res));
		/* EMFILE and friends: retry from the ticker, not in a loop. */
		l->failed = true;
		return;
	}
	if (!l->armed && !ir->shutting_down)
		arm_accept(l);
}

int iscsi_reactor_listen(struct reactor *r, int listen_fd)
{
	struct iscsi_reactor *ir = ir_get(r, true);
	struct iscsi_listener *l;

	if (!ir)
		return -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->op.fn = on_accept;
	l->fd = listen_fd;
	l->tpgt = listen_tpgt(listen_fd);
	l->ir = ir;
	l->next = ir->listeners;
	ir->listeners = l;
	arm_accept(l);
	return 0;
}

void iscsi_reactor_shutdown(struct reactor *r)
{
	struct iscsi_reactor *ir = ir_get(r, false);
	struct iscsi_conn *c, *next;

	if (!ir)
		return;
	ir->shutting_down = true;
	for (struct iscsi_listener *l = ir->listeners; l; l = l->next) {
		if (l->armed) {
			struct io_uring_sqe *sqe = reactor_sqe(r);
			io_uring_prep_cancel(sqe, &l->op, 0);
			io_uring_sqe_set_data(sqe, NULL);
		}
	}
	for (c = ir->conns; c; c = next) {
		next = c->next;
		conn_close(c, "shutdown");
		conn_check(c);
	}
}

int iscsi_reactor_idle(struct reactor *r)
{
	struct iscsi_reactor *ir = ir_get(r, false);

	if (!ir)
		return 1;
	return atomic_load(&ir->nconns) == 0 && atomic_load(&ir->naccept) == 0;
}

static void conn_new(struct iscsi_reactor *ir, int fd, uint16_t tpgt)
{
	struct iscsi_conn *c = calloc(1, sizeof(*c));
	socklen_t sl;
	int one = 1;
	char addr[INET6_ADDRSTRLEN + 2];

	if (!c) {
		close(fd);
		return;
	}
	c->stage = malloc(ISCSI_STAGE_BUF);
	c->rxdata_cap = ISCSI_LOGIN_DSL;
	c->rxdata = malloc(c->rxdata_cap);
	if (!c->stage || !c->rxdata) {
		free(c->stage);
		free(c->rxdata);
		free(c);
		close(fd);
		return;
	}
	c->ir = ir;
	c->r = ir->r;
	c->fd = fd;
	c->id = atomic_fetch_add(&g_conn_ids, 1) + 1;
	c->state = CONN_LOGIN;
	/* Latency: PDUs are batched by us already; Nagle would only delay
	 * the last one. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sl = sizeof(c->peer);
	if (getpeername(fd, (struct sockaddr *)&c->peer, &sl) == 0) {
		acl_sockaddr_str((struct sockaddr *)&c->peer, addr, sizeof(addr));
		if (c->peer.ss_family == AF_INET6)
			snprintf(c->peer_str, sizeof(c->peer_str), "[%s]:%u", addr,
				 ntohs(((struct sockaddr_in6 *)&c->peer)->sin6_port));
		else
			snprintf(c->peer_str, sizeof(c->peer_str), "%s:%u", addr,
				 ntohs(((struct sockaddr_in *)&c->peer)->sin_port));
	} else {
		snprintf(c->peer_str, sizeof(c->peer_str), "?");
	}
	c->tpgt = tpgt;
	iscsi_neg_init(&c->neg, &iscsi_g.s.caps, c->tpgt);
	c->max_recv_dsl = ISCSI_LOGIN_DSL;
	c->sess.depth = iscsi_g.s.queue_depth;
	c->created_ms = c->last_rx_ms = rs_now_ms();
	c->next_ttt = 1;

	c->next = ir->conns;
	if (ir->conns)
		ir->conns->prev = c;
	ir->conns = c;
	atomic_fetch_add(&ir->nconns, 1);
	log_info("iscsi: connection %llu from %s", (unsigned long long)c->id, c->peer_str);

	c->rx = RX_BHS;
	c->dst = c->bhs.b;
	c->want = ISCSI_BHS_LEN;
	c->got = 0;
	arm_recv(c);
}

/* ================================================================ reader */

static void rx_begin(struct iscsi_conn *c, enum rx_state st, uint8_t *dst, uint32_t want)
{
	c->rx = st;
	c->dst = dst;
	c->want = want;
	c->got = 0;
}


static void on_recv(struct rs_op *op, int res, uint32_t flags);

/* Initiators (libiscsi among them) often write a PDU's header and its data
 * segment with separate system calls, so the header arrives alone: we would
 * wake up for 48 bytes, parse them, and sleep again until the data follows,
 * two wake-ups per write command.  While the socket is empty and the rest of
 * a data segment is all we can use, raise SO_RCVLOWAT to its size so that
 * the kernel wakes us once, when the whole segment is there (measured: see
 * bench/README.md).  TCP still reports readiness early on EOF, errors, or
 * when its receive window would otherwise close (tcp_data_ready), so this
 * cannot stall a connection; it costs a setsockopt() on each change, paid
 * only when we were about to sleep anyway. */
#define RX_LOWAT_MAX (1u << 20)
static void rx_set_lowat(struct iscsi_conn *c, uint32_t recv_len)
{
	uint32_t want = 1;
	int v;

	if (c->rx_drained && c->rpos == c->wpos &&
	    (c->rx == RX_DATA || c->rx == RX_AHS || c->rx == RX_TRAILER)) {
		want = c->want - c->got;
		if (want > recv_len)
			want = recv_len;
		if (want > RX_LOWAT_MAX)
			want = RX_LOWAT_MAX;
		if (want == 0)
			want = 1;
	}
	if (want == (c->rcvlowat ? c->rcvlowat : 1))
		return;
	v = (int)want;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
		c->rcvlowat = want;
}

static void arm_recv(struct iscsi_conn *c)
{
	struct io_uring_sqe *sqe;
	uint8_t *buf;
	uint32_t len;

	if (c->recv_armed || c->rx_stopped || c->state == CONN_CLOSING)
		return;
	if (c->rx == RX_DATA && c->dst && c->rpos == c->wpos && c->want - c->got >= 16384) {
		/* Large payload with a known home: receive it in place. */
		buf = c->dst + c->got;
		len = c->want - c->got;
		c->recv_direct = true;
		/* The kernel writes into the task's buffer until the recv
		 * completes: keep the task alive even if it is aborted or the
		 * connection closes meanwhile. */
		c->recv_pin = c->rx_task;
		if (c->recv_pin)
			c->recv_pin->refs++;
	} else {
		if (c->rpos == c->wpos)
			c->rpos = c->wpos = 0;
		if (ISCSI_STAGE_BUF - c->wpos < 8192 && c->rpos > 0) {
			memmove(c->stage, c->stage + c->rpos, c->wpos - c->rpos);
			c->wpos -= c->rpos;
			c->rpos = 0;
		}
		buf = c->stage + c->wpos;
		len = ISCSI_STAGE_BUF - c->wpos;
		c->recv_direct = false;
	}
	rx_set_lowat(c, len);
	c->recv_op.fn = on_recv;
	sqe = reactor_sqe_op(c->r, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, buf, len, 0);
	/* The last recv emptied the socket: the next one would only fail with
	 * EAGAIN before io_uring arms its poll.  Ask for the poll first and
	 * save that wasted attempt (one per request/response round trip). */
	if (c->rx_drained)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	c->recv_len = len;
	c->recv_armed = true;
}

static void rx_after_data(struct iscsi_conn *c);
static void rx_pdu_done(struct iscsi_conn *c, bool digest_ok);

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void le32_put(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static bool ensure_rxdata(struct iscsi_conn *c, uint32_t len)
{
	uint8_t *n;

	if (len <= c->rxdata_cap)
		return true;
	n = realloc(c->rxdata, len);
	if (!n)
		return false;
	c->rxdata = n;
	c->rxdata_cap = len;
	return true;
}

/* Header (BHS, AHS, digest) complete and valid: decide where the data goes. */
static void rx_header_done(struct iscsi_conn *c)
{
	uint8_t op = iscsi_bhs_opcode(&c->bhs);

	c->rx_task = NULL;
	c->rx_task_is_cmd = false;
	c->rx_bad_dout = false;
	c->dst = NULL;
	if (!c->rx_reject) {
		if (c->state == CONN_LOGIN) {
			/* RFC 7143 6.3: only Login Requests until the login
			 * phase is over. */
			if (op != ISCSI_OP_LOGIN_REQ) {
				conn_close(c, "non-login PDU during login");
				return;
			}
			c->dst = c->rxdata;
		} else if (op == ISCSI_OP_SCSI_CMD) {
			task_cmd_header(c);
		} else if (op == ISCSI_OP_DATA_OUT) {
			task_dout_header(c);
		} else if (op == ISCSI_OP_LOGIN_REQ) {
			c->rx_reject = ISCSI_REJECT_PROTOCOL_ERROR;
		} else {
			if (!ensure_rxdata(c, c->dlen)) {
				conn_close(c, "out of memory");
				return;
			}
			c->dst = c->rxdata;
		}
	}
	if (c->state == CONN_CLOSING)
		return;
	if (c->dlen) {
		rx_begin(c, RX_DATA, c->dst, c->dlen);
		return;
	}
	rx_after_data(c);
}

static void rx_after_data(struct iscsi_conn *c)
{
	uint32_t pad = iscsi_pad4(c->dlen) - c->dlen;
	uint32_t tl = pad + (c->ddigest && c->dlen ? 4 : 0);
	uint8_t *data = c->dst;

	if (tl) {
		/* keep dst for the digest: remember it in crc's place */
		c->rx = RX_TRAILER;
		c->want = tl;
		c->got = 0;
		c->dst = c->trailer;
		c->crc = 0;
		if (c->ddigest && c->dlen && data) {
			/* RFC 7143 11.1 / 13.1: the data digest covers the data
			 * segment and its padding. */
			c->crc = iscsi_crc32c_update(0xffffffffu, data, c->dlen);
		}
		c->rx_data_ptr = data;
		return;
	}
	rx_pdu_done(c, true);
}

static void rx_segment_done(struct iscsi_conn *c)
{
	switch (c->rx) {
	case RX_BHS: {
		uint8_t reason = 0;
		enum iscsi_pdu_verdict v = iscsi_bhs_check(&c->bhs, c->max_recv_dsl, &reason);

		if (v == ISCSI_PDU_FATAL) {
			log_warn("iscsi: %s: PDU opcode 0x%02x dlen %u beyond limits, dropping",
				 c->peer_str, iscsi_bhs_opcode(&c->bhs), iscsi_bhs_dlength(&c->bhs));
			conn_close(c, "framing error");
			return;
		}
		c->rx_reject = v == ISCSI_PDU_REJECT ? (reason ? reason : ISCSI_REJECT_PROTOCOL_ERROR) : 0;
		c->ahs_len = iscsi_bhs_ahs_len(&c->bhs);
		c->dlen = iscsi_bhs_dlength(&c->bhs);
		if (c->ahs_len) {
			rx_begin(c, RX_AHS, c->ahs, c->ahs_len);
			return;
		}
	}
		/* fall through */
	case RX_AHS:
		if (c->hdigest) {
			rx_begin(c, RX_HDIG, c->hdig, 4);
			return;
		}
		rx_header_done(c);
		return;
	case RX_HDIG: {
		uint32_t crc = iscsi_crc32c_update(0xffffffffu, c->bhs.b, ISCSI_BHS_LEN);
		crc = iscsi_crc32c_update(crc, c->ahs, c->ahs_len) ^ 0xffffffffu;
		if (crc != le32_get(c->hdig)) {
			/* RFC 7143 7.8: a header digest error leaves us unable
			 * to trust the framing; at ERL 0 the connection goes. */
			log_warn("iscsi: %s: header digest error", c->peer_str);
			conn_close(c, "header digest error");
			return;
		}
		rx_header_done(c);
		return;
	}
	case RX_DATA:
		rx_after_data(c);
		return;
	case RX_TRAILER: {
		bool ok = true;
		uint32_t pad = iscsi_pad4(c->dlen) - c->dlen;
		if (c->ddigest && c->dlen && c->rx_data_ptr) {
			uint32_t crc = iscsi_crc32c_update(c->crc, c->trailer, pad) ^ 0xffffffffu;
			ok = crc == le32_get(c->trailer + pad);
		}
		rx_pdu_done(c, ok);
		return;
	}
	}
}

static void nop_out_handle(struct iscsi_conn *c);
static void logout_handle(struct iscsi_conn *c);

static void rx_pdu_done(struct iscsi_conn *c, bool digest_ok)
{
	uint8_t op = iscsi_bhs_opcode(&c->bhs);

	c->rx_data_ptr = NULL;
	if (c->rx_reject) {
		conn_send_reject(c, c->rx_reject, &c->bhs);
		/* A rejected command still used its CmdSN: let the window move
		 * on (RFC 7143 11.17: the initiator considers it done). */
		if (op == ISCSI_OP_SCSI_CMD && c->state == CONN_FFP && !iscsi_bhs_immediate(&c->bhs)) {
			uint32_t sn = iscsi_get32(c->bhs.b + 24);
			if (sess_cmdsn_check(&c->sess, sn) != SN_DROP)
				sess_consume_cmdsn(c, sn);
		}
	} else if (!digest_ok) {
		/* RFC 7143 7.8 / 11.17.1: data digest error -> Reject 0x02 and
		 * discard the PDU; the connection survives. */
		log_warn("iscsi: %s: data digest error (opcode 0x%02x)", c->peer_str, op);
		if (c->state == CONN_LOGIN) {
			conn_close(c, "data digest error during login");
			return;
		}
		conn_send_reject(c, ISCSI_REJECT_DIGEST_ERROR, &c->bhs);
		if (op == ISCSI_OP_SCSI_CMD)
			task_cmd_complete(c, false);
		else if (op == ISCSI_OP_DATA_OUT)
			task_dout_complete(c, false);
	} else if (c->state == CONN_LOGIN) {
		login_handle(c, c->rxdata, c->dlen);
	} else if (c->state == CONN_FFP) {
		switch (op) {
		case ISCSI_OP_SCSI_CMD:
			task_cmd_complete(c, true);
			break;
		case ISCSI_OP_DATA_OUT:
			task_dout_complete(c, true);
			break;
		case ISCSI_OP_NOP_OUT:
			nop_out_handle(c);
			break;
		case ISCSI_OP_TMF_REQ:
			tmf_handle(c, &c->bhs);
			break;
		case ISCSI_OP_TEXT_REQ:
			text_handle(c, c->rxdata, c->dlen);
			break;
		case ISCSI_OP_LOGOUT_REQ:
			logout_handle(c);
			break;
		default:
			conn_send_reject(c, ISCSI_REJECT_CMD_NOT_SUPPORTED, &c->bhs);
			break;
		}
	}
	if (c->state == CONN_CLOSING)
		return;
	rx_begin(c, RX_BHS, c->bhs.b, ISCSI_BHS_LEN);
}

static void rx_process(struct iscsi_conn *c)
{
	while (c->rpos < c->wpos && c->state != CONN_CLOSING) {
		uint32_t n = c->wpos - c->rpos;

		if (n > c->want - c->got)
			n = c->want - c->got;
		if (c->dst && n)
			memcpy(c->dst + c->got, c->stage + c->rpos, n);
		c->rpos += n;
		c->got += n;
		if (c->got == c->want)
			rx_segment_done(c);
	}
}

static void on_recv(struct rs_op *op, int res, uint32_t flags)
{
	struct iscsi_conn *c = container_of(op, struct iscsi_conn, recv_op);
	struct iscsi_task *pin = c->recv_pin;
	(void)flags;

	c->recv_armed = false;
	c->recv_pin = NULL;
	c->busy++;
	if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
		/* transient: just re-arm */
	} else if (res <= 0) {
		c->rx_stopped = true;
		if (c->state != CONN_CLOSING)
			conn_close(c, res == 0 ? "peer closed" : strerror(-res));
	} else if (c->state != CONN_CLOSING) {
		c->last_rx_ms = rs_now_ms();
		c->ping_out = false;   /* any traffic proves the peer alive */
		c->rx_drained = (uint32_t)res < c->recv_len;
		if (c->recv_direct) {
			c->got += (uint32_t)res;
			if (c->got == c->want)
				rx_segment_done(c);
		} else {
			c->wpos += (uint32_t)res;
		}
		rx_process(c);
	}
	arm_recv(c);
	c->busy--;
	if (pin)
		task_put(pin);
	conn_check(c);
}

/* ================================================================ sender */

struct iscsi_tx *conn_tx_get(struct iscsi_conn *c)
{
	struct iscsi_tx *tx = c->tx_free;

	if (tx) {
		c->tx_free = tx->next;
	} else {
		tx = malloc(sizeof(*tx));
		if (!tx)
			return NULL;
	}
	tx->next = NULL;
	memset(tx->hdr, 0, sizeof(tx->hdr));
	tx->hdr_len = ISCSI_BHS_LEN;
	tx->data = NULL;
	tx->dlen = 0;
	tx->trailer_len = 0;
	tx->owned = NULL;
	tx->task = NULL;
	return tx;
}

static void tx_release(struct iscsi_conn *c, struct iscsi_tx *tx)
{
	free(tx->owned);
	tx->owned = NULL;
	if (tx->task) {
		struct iscsi_task *t = tx->task;
		tx->task = NULL;
		task_put(t);
	}
	tx->next = c->tx_free;
	c->tx_free = tx;
}

static void tx_drop_all(struct iscsi_conn *c)
{
	struct iscsi_tx *tx, *next;

	for (tx = c->txq; tx; tx = next) {
		next = tx->next;
		tx_release(c, tx);
	}
	c->txq = c->txq_tail = NULL;
	c->tx_off = 0;
}

void conn_tx_queue(struct iscsi_conn *c, struct iscsi_tx *tx, bool status)
{
	struct iscsi_bhs *h = (struct iscsi_bhs *)tx->hdr;
	uint32_t pad;

	if (c->tx_dead || (c->state == CONN_CLOSING && !c->close_after_send)) {
		tx_release(c, tx);
		return;
	}
	/* RFC 7143 4.2.2.2: StatSN advances with every status-bearing PDU;
	 * the others carry the next value without consuming it. */
	iscsi_bhs_set_sn(h, c->statsn, c->sess.exp_cmdsn, sess_max_cmdsn(&c->sess));
	if (status)
		c->statsn++;
	tx->hdr_len = ISCSI_BHS_LEN;
	if (c->hdigest) {
		le32_put(tx->hdr + ISCSI_BHS_LEN, iscsi_crc32c(tx->hdr, ISCSI_BHS_LEN));
		tx->hdr_len += 4;
	}
	pad = iscsi_pad4(tx->dlen) - tx->dlen;
	memset(tx->trailer, 0, sizeof(tx->trailer));
	tx->trailer_len = pad;
	if (c->ddigest && tx->dlen) {
		uint32_t crc = iscsi_crc32c_update(0xffffffffu, tx->data, tx->dlen);
		crc = iscsi_crc32c_update(crc, tx->trailer, pad) ^ 0xffffffffu;
		le32_put(tx->trailer + pad, crc);
		tx->trailer_len += 4;
	}
	tx->next = NULL;
	if (c->txq_tail)
		c->txq_tail->next = tx;
	else
		c->txq = tx;
	c->txq_tail = tx;
	tx_kick(c);
}

static void on_send(struct rs_op *op, int res, uint32_t flags);

static void tx_kick(struct iscsi_conn *c)
{
	struct io_uring_sqe *sqe;
	uint32_t skip = c->tx_off;
	size_t bytes = 0;
	unsigned n = 0;

	if (c->send_armed || !c->txq || c->tx_dead)
		return;
	for (struct iscsi_tx *tx = c->txq; tx && n + 3 <= ISCSI_TX_IOV && bytes < (4u << 20);
	     tx = tx->next) {
		const uint8_t *seg[3] = { tx->hdr, tx->data, tx->trailer };
		uint32_t len[3] = { tx->hdr_len, tx->dlen, tx->trailer_len };

		for (int i = 0; i < 3; i++) {
			if (!len[i])
				continue;
			if (skip >= len[i]) {
				skip -= len[i];
				continue;
			}
			c->iov[n].iov_base = (void *)(seg[i] + skip);
			c->iov[n].iov_len = len[i] - skip;
			bytes += len[i] - skip;
			skip = 0;
			n++;
		}
	}
	if (!n)
		return;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = n;
	c->send_op.fn = on_send;
	sqe = reactor_sqe_op(c->r, &c->send_op);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	c->send_armed = true;
}

static void on_send(struct rs_op *op, int res, uint32_t flags)
{
	struct iscsi_conn *c = container_of(op, struct iscsi_conn, send_op);
	(void)flags;

	c->send_armed = false;
	c->busy++;
	if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
		tx_kick(c);
	} else if (res < 0) {
		c->tx_dead = true;
		tx_drop_all(c);
		conn_close(c, strerror(-res));
	} else {
		uint64_t done = (uint64_t)c->tx_off + (uint32_t)res;
		struct iscsi_tx *tx;

		while ((tx = c->txq)) {
			uint64_t total = (uint64_t)tx->hdr_len + tx->dlen + tx->trailer_len;
			if (done < total)
				break;
			done -= total;
			c->txq = tx->next;
			if (!c->txq)
				c->txq_tail = NULL;
			tx_release(c, tx);
		}
		c->tx_off = (uint32_t)done;
		if (c->txq) {
			tx_kick(c);
		} else if (c->close_after_send) {
			c->close_after_send = false;
			conn_close(c, c->close_reason ? c->close_reason : "closed after response");
		}
	}
	c->busy--;
	conn_check(c);
}

void conn_send_reject(struct iscsi_conn *c, uint8_t reason, const struct iscsi_bhs *rejected)
{
	struct iscsi_tx *tx = conn_tx_get(c);

	if (!tx)
		return;
	/* RFC 7143 11.17: the data segment is the rejected PDU's header. */
	memcpy(tx->inl, rejected->b, ISCSI_BHS_LEN);
	tx->data = tx->inl;
	tx->dlen = ISCSI_BHS_LEN;
	iscsi_build_reject((struct iscsi_bhs *)tx->hdr, reason, ISCSI_BHS_LEN);
	conn_tx_queue(c, tx, true);
}

uint32_t conn_new_ttt(struct iscsi_conn *c)
{
	uint32_t t;

	do
		t = c->next_ttt++;
	while (t == ISCSI_RSVD_TAG || t == 0);
	return t;
}

/* ================================================================ NOP / Logout */

static void nop_out_handle(struct iscsi_conn *c)
{
	const struct iscsi_bhs *h = &c->bhs;
	uint32_t itt = iscsi_bhs_itt(h);
	uint32_t ttt = iscsi_get32(h->b + 20);
	struct iscsi_tx *tx;

	if (!iscsi_bhs_immediate(h)) {
		uint32_t sn = iscsi_get32(h->b + 24);
		if (sess_cmdsn_check(&c->sess, sn) == SN_DROP)
			return;
		sess_consume_cmdsn(c, sn);
	}
	/* RFC 7143 11.18.3: a NOP-Out answering our NOP-In carries its TTT. */
	if (ttt != ISCSI_RSVD_TAG && c->ping_out && ttt == c->ping_ttt)
		c->ping_out = false;
	if (itt == ISCSI_RSVD_TAG)
		return;   /* no answer wanted (11.18.2) */
	tx = conn_tx_get(c);
	if (!tx)
		return;
	if (c->dlen) {
		/* Echo the ping data (11.19.5). */
		tx->owned = malloc(c->dlen);
		if (!tx->owned) {
			tx_release(c, tx);
			return;
		}
		memcpy(tx->owned, c->rxdata, c->dlen);
		tx->data = tx->owned;
		tx->dlen = c->dlen;
	}
	iscsi_build_nop_in((struct iscsi_bhs *)tx->hdr, itt, ISCSI_RSVD_TAG,
			   iscsi_bhs_lun_raw(h), tx->dlen);
	conn_tx_queue(c, tx, true);
}

static bool conn_tasks_pending(struct iscsi_conn *c)
{
	for (struct iscsi_task *t = c->tasks; t; t = t->all_next)
		if (t->state != TASK_DONE && !t->tombstone)
			return true;
	return false;
}

static void logout_respond(struct iscsi_conn *c, uint8_t response, bool close)
{
	struct iscsi_tx *tx = conn_tx_get(c);

	if (!tx) {
		conn_close(c, "out of memory");
		return;
	}
	/* RFC 7143 11.15.4/5: Time2Wait/Time2Retain; nothing is retained at
	 * ERL 0. */
	iscsi_build_logout_rsp((struct iscsi_bhs *)tx->hdr, c->logout_itt, response,
			       (uint16_t)c->sess.p.default_time2wait, 0);
	if (close) {
		c->close_after_send = true;
		c->close_reason = "logout";
	}
	conn_tx_queue(c, tx, true);
}

static void logout_handle(struct iscsi_conn *c)
{
	const struct iscsi_bhs *h = &c->bhs;
	uint8_t reason = h->b[1] & 0x7f;
	uint16_t cid = iscsi_get16(h->b + 20);

	if (!iscsi_bhs_immediate(h)) {
		uint32_t sn = iscsi_get32(h->b + 24);
		if (sess_cmdsn_check(&c->sess, sn) == SN_DROP)
			return;
		sess_consume_cmdsn(c, sn);
	}
	c->logout_itt = iscsi_bhs_itt(h);
	switch (reason) {
	case ISCSI_LOGOUT_CLOSE_SESSION:
		break;
	case ISCSI_LOGOUT_CLOSE_CONN:
		if (cid != c->login.cid) {
			logout_respond(c, ISCSI_LOGOUT_RSP_CID_NOT_FOUND, false);
			return;
		}
		break;
	case ISCSI_LOGOUT_REMOVE_CONN:
		/* Connection recovery is ERL 2 (RFC 7143 11.15.1). */
		logout_respond(c, ISCSI_LOGOUT_RSP_RECOVERY_UNSUPP, false);
		return;
	default:
		conn_send_reject(c, ISCSI_REJECT_INVALID_PDU_FIELD, h);
		return;
	}
	/* RFC 7143 11.14: outstanding commands complete before the response;
	 * conn_check() sends it when the last one is done. */
	c->logout_pending = true;
	c->rx_stopped = true;   /* nothing may follow a logout on this connection */
}

/* ================================================================ logout request */

/* Seconds we give an initiator to log out after asking (Parameter3), and the
 * slack before we drop it anyway. */
#define LOGOUT_REQ_MIN_S   2u
#define LOGOUT_REQ_MAX_S  10u
#define LOGOUT_REQ_SLACK_S 2u

void conn_request_logout(struct iscsi_conn *c)
{
	struct iscsi_tx *tx;
	uint32_t wait;

	if (c->state == CONN_CLOSING || c->logout_deadline_ms)
		return;
	if (c->state != CONN_FFP || c->logout_pending) {
		/* Nothing to ask (still logging in) or already logging out:
		 * the latter completes by itself. */
		if (!c->logout_pending)
			conn_close(c, "closed by the administrator");
		conn_check(c);
		return;
	}
	/* RFC 7143 11.9.1: Parameter3 is the time limit for the logout.  The
	 * session's DefaultTime2Wait, kept within reason, is what initiators
	 * already expect to wait around a logout. */
	wait = c->sess.p.default_time2wait;
	if (wait < LOGOUT_REQ_MIN_S)
		wait = LOGOUT_REQ_MIN_S;
	if (wait > LOGOUT_REQ_MAX_S)
		wait = LOGOUT_REQ_MAX_S;
	tx = conn_tx_get(c);
	if (!tx) {
		conn_close(c, "closed by the administrator");
		conn_check(c);
		return;
	}
	iscsi_build_async((struct iscsi_bhs *)tx->hdr, ISCSI_ASYNC_LOGOUT_REQUEST, 0, 0,
			  (uint16_t)wait, 0);
	c->logout_deadline_ms = rs_now_ms() + (uint64_t)(wait + LOGOUT_REQ_SLACK_S) * 1000;
	log_info("iscsi: %s: asking %s to log out within %u s", c->peer_str, c->sess.initiator,
		 wait);
	/* Like LIO, count the Async Message as status (it carries StatSN). */
	conn_tx_queue(c, tx, true);
}

/* ================================================================ lifecycle */

void conn_set_ffp(struct iscsi_conn *c)
{
	c->state = CONN_FFP;
	c->hdigest = c->sess.p.header_digest;
	c->ddigest = c->sess.p.data_digest;
	c->max_recv_dsl = c->sess.p.max_recv_dsl ? c->sess.p.max_recv_dsl : ISCSI_LOGIN_DSL;
	if (!ensure_rxdata(c, c->max_recv_dsl < ISCSI_LOGIN_DSL ? ISCSI_LOGIN_DSL : c->max_recv_dsl))
		conn_close(c, "out of memory");
	c->last_rx_ms = rs_now_ms();
}

void conn_close(struct iscsi_conn *c, const char *why)
{
	struct iscsi_task *t, *next;

	if (c->state == CONN_CLOSING)
		return;
	log_info("iscsi: connection %llu (%s) closing: %s", (unsigned long long)c->id,
		 c->peer_str, why);
	c->state = CONN_CLOSING;
	c->close_after_send = false;
	/* Wake the pending recv (and fail a pending send); the descriptor is
	 * closed only after every io_uring request on it completed. */
	shutdown(c->fd, SHUT_RDWR);
	sess_stop(c);
	for (t = c->tasks; t; t = next) {
		next = t->all_next;
		t->tmf = NULL;
		task_abort(c, t);
	}
	while (c->tmfs) {
		struct iscsi_tmf *m = c->tmfs;
		c->tmfs = m->next;
		free(m);
	}
	if (!c->send_armed)
		tx_drop_all(c);
	free(c->text_acc);
	c->text_acc = NULL;
	c->text_acc_len = 0;
	free(c->text_rsp);
	c->text_rsp = NULL;
	if (c->login.target) {
		reg_target_put(c->login.target);
		c->login.target = NULL;
	}
}

void conn_check(struct iscsi_conn *c)
{
	if (c->busy)
		return;
	if (c->state != CONN_CLOSING) {
		if (c->logout_pending && !conn_tasks_pending(c)) {
			c->logout_pending = false;
			logout_respond(c, ISCSI_LOGOUT_RSP_OK, true);
		}
		return;
	}
	if (c->send_armed && c->tx_dead)
		return;
	if (!c->send_armed && c->txq)
		tx_drop_all(c);
	if (c->recv_armed || c->send_armed || c->ntasks)
		return;
	conn_free(c);
}

static void conn_free(struct iscsi_conn *c)
{
	struct iscsi_reactor *ir = c->ir;

	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ir->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(&ir->nconns, 1);
	while (c->tx_free) {
		struct iscsi_tx *tx = c->tx_free;
		c->tx_free = tx->next;
		free(tx);
	}
	task_free_cache(c);
	if (c->sess.target)
		reg_target_put(c->sess.target);
	free(c->stage);
	free(c->rxdata);
	log_debug("iscsi: connection %llu freed", (unsigned long long)c->id);
	free(c);
}

/* ================================================================ timers */

static void ticker_fn(struct rs_ticker *t, uint64_t now)
{
	struct iscsi_reactor *ir = container_of(t, struct iscsi_reactor, ticker);
	struct iscsi_conn *c, *next;
	uint64_t interval = (uint64_t)iscsi_g.s.nop_interval_s * 1000;
	uint64_t timeout = (uint64_t)iscsi_g.s.nop_timeout_s * 1000;

	if (!ir->shutting_down)
		for (struct iscsi_listener *l = ir->listeners; l; l = l->next)
			if (!l->armed && l->failed)
				arm_accept(l);

	for (c = ir->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_CLOSING)
			continue;
		if (c->logout_deadline_ms && now > c->logout_deadline_ms) {
			conn_close(c, "no logout after the target's request");
			conn_check(c);
			continue;
		}
		if (c->state == CONN_LOGIN) {
			if (now - c->created_ms > ISCSI_LOGIN_TIMEOUT_MS) {
				conn_close(c, "login timeout");
				conn_check(c);
			}
			continue;
		}
		if (!interval)
			continue;
		if (c->ping_out) {
			if (now - c->ping_sent_ms > timeout) {
				conn_close(c, "NOP-Out timeout");
				conn_check(c);
			}
		} else if (now - c->last_rx_ms > interval) {
			/* RFC 7143 11.19: target ping: ITT 0xffffffff, a real TTT
			 * the initiator must echo in a NOP-Out. */
			struct iscsi_tx *tx = conn_tx_get(c);
			if (!tx)
				continue;
			c->ping_ttt = conn_new_ttt(c);
			c->ping_out = true;
			c->ping_sent_ms = now;
			iscsi_build_nop_in((struct iscsi_bhs *)tx->hdr, ISCSI_RSVD_TAG, c->ping_ttt, 0, 0);
			conn_tx_queue(c, tx, false);
		}
	}
}
