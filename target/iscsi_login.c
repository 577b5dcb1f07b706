/* iscsi_login.c - the login phase (RFC 7143 6, 11.12, 11.13).
 *
 * Stages: security (CSG 0; AuthMethod=None only for now), operational
 * (CSG 1), full feature (NSG 3).  Key negotiation itself is iscsi_params.c;
 * this file owns the stage machine, the identity checks (InitiatorName,
 * TargetName, ACL), continuation (C bit) of long texts and the hand-over to
 * the session (TSIH, reinstatement, registry) when the login completes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "iscsi_internal.h"

static void login_send(struct iscsi_conn *c, const struct iscsi_bhs *req, uint8_t flags,
		       uint16_t tsih, uint16_t status, const char *data, uint32_t dlen)
{
	struct iscsi_tx *tx = conn_tx_get(c);

	if (!tx) {
		conn_close(c, "out of memory");
		return;
	}
	if (dlen) {
		tx->owned = malloc(dlen);
		if (!tx->owned) {
			conn_close(c, "out of memory");
			return;
		}
		memcpy(tx->owned, data, dlen);
		tx->data = tx->owned;
		tx->dlen = dlen;
	}
	iscsi_build_login_rsp((struct iscsi_bhs *)tx->hdr, req, flags, tsih, status, dlen);
	/* Every Login Response carries (and advances) StatSN (11.13.4). */
	conn_tx_queue(c, tx, true);
}

static void login_fail(struct iscsi_conn *c, const struct iscsi_bhs *req, uint16_t status)
{
	log_info("iscsi: %s: login of %s failed: status 0x%04x", c->peer_str,
		 c->neg.initiator_name[0] ? c->neg.initiator_name : "?", status);
	c->login.failed = true;
	/* RFC 7143 11.13.5: after a failed login the target closes the
	 * connection; send the response first. */
	c->rx_stopped = true;
	c->close_after_send = true;
	c->close_reason = "login failed";
	login_send(c, req, (uint8_t)(c->login.stage << ISCSI_LOGIN_CSG_SHIFT), 0, status, NULL, 0);
}

static int text_accumulate(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen)
{
	uint8_t *n;

	if (!dlen)
		return 0;
	if (c->text_acc_len + dlen > ISCSI_TEXT_MAX)
		return -1;
	n = realloc(c->text_acc, c->text_acc_len + dlen);
	if (!n)
		return -1;
	memcpy(n + c->text_acc_len, data, dlen);
	c->text_acc = n;
	c->text_acc_len += dlen;
	return 0;
}

/* The identity keys arrive in the first Login Request (RFC 7143 6.1/13.x). */
static uint16_t check_identity(struct iscsi_conn *c)
{
	struct iscsi_neg *n = &c->neg;
	struct iscsi_target *t;

	if (!n->initiator_name[0])
		return ISCSI_LOGIN_STATUS_MISSING_PARAM;       /* 13.5: mandatory */
	if (n->session_type == ISCSI_SESSION_DISCOVERY)
		return ISCSI_LOGIN_STATUS_SUCCESS;             /* no TargetName needed */
	if (!n->target_name[0])
		return ISCSI_LOGIN_STATUS_MISSING_PARAM;       /* 13.4: normal sessions */
	t = reg_target_get(n->target_name);
	if (!t)
		return ISCSI_LOGIN_STATUS_TGT_NOT_FOUND;
	if (!reg_target_permits(t, (const struct sockaddr *)&c->peer, n->initiator_name)) {
		reg_target_put(t);
		return ISCSI_LOGIN_STATUS_AUTHZ_FAILED;
	}
	c->login.target = t;
	return ISCSI_LOGIN_STATUS_SUCCESS;
}

void login_handle(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen)
{
	struct iscsi_bhs req = c->bhs;
	uint8_t fl = req.b[1];
	bool transit = fl & ISCSI_LOGIN_TRANSIT;
	bool cont = fl & ISCSI_LOGIN_CONTINUE;
	int csg = (fl & ISCSI_LOGIN_CSG_MASK) >> ISCSI_LOGIN_CSG_SHIFT;
	int nsg = fl & ISCSI_LOGIN_NSG_MASK;
	struct iscsi_login *l = &c->login;
	char out[8192];
	struct iscsi_kv_buf ob = { out, 0, sizeof(out) };
	static __thread struct iscsi_kv_iter it;   /* 8 KiB: keep it off the stack */
	const char *key, *val;
	bool auth_offered = false;
	uint16_t st = 0;
	uint8_t rflags;
	int rc;

	if (l->failed)
		return;
	if (!l->started) {
		l->started = true;
		l->first = req;
		l->tsih_req = iscsi_get16(req.b + 14);
		l->cid = iscsi_get16(req.b + 20);
		l->itt = iscsi_bhs_itt(&req);
		l->stage = csg;
		/* RFC 7143 11.12.6/7: the leading login's CmdSN is the first
		 * ExpCmdSN; our StatSN starts where the initiator expects it. */
		c->sess.exp_cmdsn = iscsi_get32(req.b + 24);
		c->sess.max_cmdsn = c->sess.exp_cmdsn + c->sess.depth - 1;
		c->statsn = iscsi_get32(req.b + 28);
		/* Version-max (byte 2) / Version-min (byte 3): only 0x00 exists. */
		if (req.b[3] != 0x00) {
			login_fail(c, &req, ISCSI_LOGIN_STATUS_UNSUPPORTED_VER);
			return;
		}
	} else if (memcmp(req.b + 8, l->first.b + 8, 6) ||
		   iscsi_get16(req.b + 14) != l->tsih_req) {
		/* RFC 7143 11.12.5: ISID and TSIH stay the same through login. */
		login_fail(c, &req, ISCSI_LOGIN_STATUS_INVALID_REQ);
		return;
	}
	c->exp_statsn = iscsi_get32(req.b + 28);

	if (cont && transit) {
		/* 11.12.2: C and T are mutually exclusive. */
		login_fail(c, &req, ISCSI_LOGIN_STATUS_INIT_ERR);
		return;
	}
	if (cont || c->text_acc_len) {
		/* RFC 7143 6.1 / 11.12.2: text split across PDUs; answer each
		 * partial PDU with an empty response until C=0. */
		if (text_accumulate(c, data, dlen) < 0) {
			login_fail(c, &req, ISCSI_LOGIN_STATUS_INIT_ERR);
			return;
		}
		if (cont) {
			login_send(c, &req, (uint8_t)(csg << ISCSI_LOGIN_CSG_SHIFT), l->tsih_req, 0,
				   NULL, 0);
			return;
		}
		data = c->text_acc;
		dlen = c->text_acc_len;
	}

	/* Stage rules (RFC 7143 6.3 / 11.12.3): CSG is 0 or 1 and never goes
	 * back; a transition goes forward to 1 or 3. */
	if (csg != ISCSI_STAGE_SECURITY && csg != ISCSI_STAGE_OPERATIONAL) {
		login_fail(c, &req, ISCSI_LOGIN_STATUS_INIT_ERR);
		return;
	}
	if (csg < l->stage) {
		login_fail(c, &req, ISCSI_LOGIN_STATUS_INIT_ERR);
		return;
	}
	if (transit && (nsg <= csg || nsg == 2)) {
		login_fail(c, &req, ISCSI_LOGIN_STATUS_INIT_ERR);
		return;
	}
	l->stage = csg;

	iscsi_kv_iter_init(&it, data, dlen);
	while ((rc = iscsi_kv_next(&it, &key, &val)) > 0) {
		if (!strcmp(key, "AuthMethod"))
			auth_offered = true;
		if (iscsi_neg_key(&c->neg, csg, key, val, &ob, &st) < 0) {
			login_fail(c, &req, st ? st : ISCSI_LOGIN_STATUS_INIT_ERR);
			goto out;
		}
	}
	if (rc < 0) {
		login_fail(c, &req, ISCSI_LOGIN_STATUS_INIT_ERR);
		goto out;
	}
	if (!l->identity_checked) {
		l->identity_checked = true;
		st = check_identity(c);
		if (st) {
			login_fail(c, &req, st);
			goto out;
		}
	}
	/* AuthMethod offered without None (CHAP only): we answered Reject; the
	 * login cannot go on (RFC 7143 12.1, status 0x0201). */
	if (csg == ISCSI_STAGE_SECURITY && auth_offered && !c->neg.auth_method_none) {
		login_fail(c, &req, ISCSI_LOGIN_STATUS_AUTH_FAILED);
		goto out;
	}

	rflags = (uint8_t)(csg << ISCSI_LOGIN_CSG_SHIFT);
	if (transit)
		rflags |= ISCSI_LOGIN_TRANSIT | (uint8_t)nsg;
	iscsi_neg_finish_stage(&c->neg, csg, &ob);

	if (transit && nsg == ISCSI_STAGE_FULL_FEATURE) {
		if (l->tsih_req) {
			/* A non-zero TSIH names an existing session: with
			 * MaxConnections=1 this is connection reinstatement,
			 * done as session reinstatement (RFC 7143 6.3.5). */
			if (!sess_tsih_exists(c->neg.initiator_name, l->first.b + 8, l->tsih_req)) {
				login_fail(c, &req, ISCSI_LOGIN_STATUS_NO_SESSION);
				goto out;
			}
			c->sess.tsih = l->tsih_req;
		} else {
			c->sess.tsih = sess_new_tsih();
		}
		if (sess_start(c) < 0) {
			login_fail(c, &req, ISCSI_LOGIN_STATUS_NO_RESOURCES);
			goto out;
		}
		login_send(c, &req, rflags, c->sess.tsih, 0, out, (uint32_t)ob.len);
		/* Digests and the negotiated limits apply from the next PDU. */
		conn_set_ffp(c);
	} else {
		if (transit)
			l->stage = nsg;
		login_send(c, &req, rflags, l->tsih_req, 0, out, (uint32_t)ob.len);
	}
out:
	free(c->text_acc);
	c->text_acc = NULL;
	c->text_acc_len = 0;
}
