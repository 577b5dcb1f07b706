/* iscsi_discovery.c - Text Request / Text Response (RFC 7143 11.10/11.11)
 * and SendTargets (RFC 7143 Appendix C).
 *
 * A response longer than the initiator's MaxRecvDataSegmentLength goes out
 * in pieces with the C bit and a Target Transfer Tag; the initiator fetches
 * the next piece with an empty Text Request carrying that TTT.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/acl.h"
#include "../core/log.h"
#include "iscsi_internal.h"

struct st_ctx {
	struct iscsi_conn *c;
	struct iscsi_kv_buf *out;
	const char *only;           /* a single target name, or NULL for all */
	bool failed;
	int count;
};

static int kv_append_grow(struct iscsi_kv_buf *b, const char *key, const char *val)
{
	while (iscsi_kv_append(b, key, val) < 0) {
		size_t ncap = b->cap * 2;
		char *n;

		if (ncap > (1u << 20))
			return -1;
		n = realloc(b->data, ncap);
		if (!n)
			return -1;
		b->data = n;
		b->cap = ncap;
	}
	return 0;
}

/* TargetAddress for a portal: a wildcard portal is reported with the address
 * the initiator reached us at (RFC 7143 13.8: domainname[:port][,tpgt]). */
static void portal_text(struct iscsi_conn *c, const struct iscsi_portal *p, char *buf, size_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)&p->addr;
	bool wildcard = false;
	unsigned port = 3260;
	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);
	char addr[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		wildcard = s4->sin_addr.s_addr == htonl(INADDR_ANY);
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		wildcard = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
		port = ntohs(s6->sin6_port);
	}
	if (!wildcard || getsockname(c->fd, (struct sockaddr *)&local, &sl) < 0) {
		snprintf(buf, len, "%s", p->text);
		return;
	}
	acl_sockaddr_str((const struct sockaddr *)&local, addr, sizeof(addr));
	if (local.ss_family == AF_INET6 && !strchr(addr, '.'))
		snprintf(buf, len, "[%s]:%u,%u", addr, port, (unsigned)(p->tpgt ? p->tpgt : 1));
	else
		snprintf(buf, len, "%s:%u,%u", addr, port, (unsigned)(p->tpgt ? p->tpgt : 1));
}

static void add_target(const char *iqn, void *arg)
{
	struct st_ctx *x = arg;
	char addr[128];

	if (x->failed || (x->only && strcmp(x->only, iqn)))
		return;
	if (kv_append_grow(x->out, "TargetName", iqn) < 0) {
		x->failed = true;
		return;
	}
	x->count++;
	for (int i = 0; i < iscsi_g.nportals; i++) {
		portal_text(x->c, &iscsi_g.portals[i], addr, sizeof(addr));
		if (kv_append_grow(x->out, "TargetAddress", addr) < 0) {
			x->failed = true;
			return;
		}
	}
}

static void text_send_chunk(struct iscsi_conn *c, uint32_t itt)
{
	uint32_t mx = c->sess.p.max_xmit_dsl ? c->sess.p.max_xmit_dsl : 8192;
	uint32_t n = c->text_rsp_len - c->text_rsp_off;
	bool more;
	uint32_t ttt;
	struct iscsi_tx *tx = conn_tx_get(c);

	if (!tx) {
		conn_close(c, "out of memory");
		return;
	}
	if (n > mx)
		n = mx;
	more = c->text_rsp_off + n < c->text_rsp_len;
	/* RFC 7143 11.11.4: a response to be continued carries a TTT other
	 * than 0xffffffff; the final one 0xffffffff. */
	ttt = more ? conn_new_ttt(c) : ISCSI_RSVD_TAG;
	if (n) {
		tx->owned = malloc(n);
		if (!tx->owned) {
			conn_close(c, "out of memory");
			return;
		}
		memcpy(tx->owned, c->text_rsp + c->text_rsp_off, n);
		tx->data = tx->owned;
		tx->dlen = n;
	}
	iscsi_build_text_rsp((struct iscsi_bhs *)tx->hdr, itt, ttt, !more, more, 0, n);
	c->text_rsp_off += n;
	c->text_rsp_ttt = ttt;
	conn_tx_queue(c, tx, true);
	if (!more) {
		free(c->text_rsp);
		c->text_rsp = NULL;
		c->text_rsp_len = c->text_rsp_off = 0;
	}
}

void text_handle(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen)
{
	const struct iscsi_bhs *h = &c->bhs;
	uint32_t itt = iscsi_bhs_itt(h);
	uint32_t ttt = iscsi_get32(h->b + 20);
	bool cont = h->b[1] & ISCSI_LOGIN_CONTINUE;
	struct iscsi_session *s = &c->sess;
	static __thread struct iscsi_kv_iter it;
	struct iscsi_kv_buf out;
	const char *key, *val;
	int rc;

	if (!iscsi_bhs_immediate(h)) {
		uint32_t sn = iscsi_get32(h->b + 24);
		if (sess_cmdsn_check(s, sn) == SN_DROP)
			return;
		sess_consume_cmdsn(c, sn);
	}
	if (ttt != ISCSI_RSVD_TAG) {
		if (c->text_rsp && ttt == c->text_rsp_ttt) {
			text_send_chunk(c, itt);
			return;
		}
		if (!c->text_acc_len) {
			conn_send_reject(c, ISCSI_REJECT_INVALID_PDU_FIELD, h);
			return;
		}
	} else if (c->text_rsp) {
		/* A new request ends an unfinished response (11.10.4). */
		free(c->text_rsp);
		c->text_rsp = NULL;
		c->text_rsp_len = c->text_rsp_off = 0;
	}

	if (cont || c->text_acc_len) {
		uint8_t *n;

		if (c->text_acc_len + dlen > ISCSI_TEXT_MAX) {
			conn_send_reject(c, ISCSI_REJECT_PROTOCOL_ERROR, h);
			free(c->text_acc);
			c->text_acc = NULL;
			c->text_acc_len = 0;
			return;
		}
		n = realloc(c->text_acc, c->text_acc_len + dlen + 1);
		if (!n) {
			conn_close(c, "out of memory");
			return;
		}
		if (dlen)
			memcpy(n + c->text_acc_len, data, dlen);
		c->text_acc = n;
		c->text_acc_len += dlen;
		if (cont) {
			/* RFC 7143 11.10.2: acknowledge the partial text with an
			 * empty response and a TTT. */
			struct iscsi_tx *tx = conn_tx_get(c);
			if (!tx)
				return;
			iscsi_build_text_rsp((struct iscsi_bhs *)tx->hdr, itt, conn_new_ttt(c), false,
					     false, 0, 0);
			conn_tx_queue(c, tx, true);
			return;
		}
		data = c->text_acc;
		dlen = c->text_acc_len;
	}

	out.cap = 4096;
	out.len = 0;
	out.data = malloc(out.cap);
	if (!out.data) {
		conn_close(c, "out of memory");
		return;
	}
	iscsi_kv_iter_init(&it, data, dlen);
	while ((rc = iscsi_kv_next(&it, &key, &val)) > 0) {
		if (!strcmp(key, "SendTargets")) {
			struct st_ctx x = { .c = c, .out = &out };

			if (s->type == ISCSI_SESSION_DISCOVERY) {
				/* Appendix C: All, or one target by name. */
				if (strcmp(val, "All"))
					x.only = val;
				if (*val)
					reg_foreach_permitted((const struct sockaddr *)&c->peer,
							      s->initiator, add_target, &x);
			} else if (!*val && s->target) {
				/* Empty value in a normal session: the session's
				 * own target. */
				add_target(reg_target_name(s->target), &x);
			} else if (!strcmp(val, "All")) {
				/* "All" belongs to discovery sessions. */
				kv_append_grow(&out, key, "Reject");
			} else {
				x.only = val;
				reg_foreach_permitted((const struct sockaddr *)&c->peer,
						      s->initiator, add_target, &x);
			}
			if (x.failed) {
				log_warn("iscsi: %s: SendTargets response too large", c->peer_str);
				break;
			}
		} else {
			/* RFC 7143 11.10 / 13.12: a few keys may be (re)declared in
			 * full feature phase (MaxRecvDataSegmentLength); the
			 * negotiator answers Reject / NotUnderstood for the rest. */
			char ans[512];
			struct iscsi_kv_buf ab = { ans, 0, sizeof(ans) };
			uint16_t st;

			iscsi_neg_key(&c->neg, ISCSI_STAGE_FULL_FEATURE, key, val, &ab, &st);
			for (size_t off = 0; off < ab.len;) {
				char *k = ans + off, *eq = strchr(k, '=');
				size_t l = strlen(k);
				if (eq) {
					*eq = '\0';
					kv_append_grow(&out, k, eq + 1);
				}
				off += l + 1;
			}
			if (c->neg.p.max_xmit_dsl >= 512)
				s->p.max_xmit_dsl = c->neg.p.max_xmit_dsl;
		}
	}
	if (rc < 0)
		log_info("iscsi: %s: malformed Text Request data", c->peer_str);
	free(c->text_acc);
	c->text_acc = NULL;
	c->text_acc_len = 0;

	c->text_rsp = out.data;
	c->text_rsp_len = (uint32_t)out.len;
	c->text_rsp_off = 0;
	text_send_chunk(c, itt);
}
