/* iscsi_login.c - the login phase (RFC 7143 6, 11.12, 11.13).
 *
 * Stages: security (CSG 0: AuthMethod None or CHAP), operational (CSG 1),
 * full feature (NSG 3).  Key negotiation itself is iscsi_params.c and the
 * CHAP arithmetic iscsi_chap.c; this file owns the stage machine, the
 * identity checks (InitiatorName, TargetName, ACL), authentication,
 * continuation (C bit) of long texts and the hand-over to the session (TSIH,
 * reinstatement, registry) when the login completes.
 *
 * Authentication (RFC 7143 6.3, 12.1.3): the target (and so whether CHAP is
 * required) is known only once TargetName has been read, and initiators send
 * TargetName and AuthMethod in the same first PDU in either order.  So the
 * security keys (AuthMethod, CHAP_*) of a request are collected while its
 * keys are parsed and acted upon after the identity check.
 */
#include <errno.h>
#include <stdio.h>
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


/* The security keys of one Login Request, collected during parsing. */
struct sec_keys {
	bool has_authm, has_a, has_n, has_r, has_i, has_c;
	bool dup;                   /* a key appeared twice in one request */
	char authm[256];
	char a[256];
	char n[REG_NAME_MAX + 32];
	char r[2 * CHAP_MAX_DIGEST + 8];
	char i[16];
	char c[2 * CHAP_MAX_CHALLENGE + 8];
	bool too_long;              /* a value did not fit: fails authentication */
};

static void sec_put(struct sec_keys *k, bool *has, char *dst, size_t cap, const char *val)
{
	if (*has)
		k->dup = true;
	*has = true;
	if (strlen(val) >= cap) {
		k->too_long = true;
		dst[0] = '\0';
		return;
	}
	memcpy(dst, val, strlen(val) + 1);
}

/* Returns true if key is a security key this layer handles itself. */
static bool sec_collect(struct sec_keys *k, const char *key, const char *val)
{
	if (!strcmp(key, "AuthMethod"))
		sec_put(k, &k->has_authm, k->authm, sizeof(k->authm), val);
	else if (!strcmp(key, "CHAP_A"))
		sec_put(k, &k->has_a, k->a, sizeof(k->a), val);
	else if (!strcmp(key, "CHAP_N"))
		sec_put(k, &k->has_n, k->n, sizeof(k->n), val);
	else if (!strcmp(key, "CHAP_R"))
		sec_put(k, &k->has_r, k->r, sizeof(k->r), val);
	else if (!strcmp(key, "CHAP_I"))
		sec_put(k, &k->has_i, k->i, sizeof(k->i), val);
	else if (!strcmp(key, "CHAP_C"))
		sec_put(k, &k->has_c, k->c, sizeof(k->c), val);
	else
		return false;
	return true;
}

static bool auth_list_has(const char *list, const char *item)
{
	size_t il = strlen(item);

	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);

		if (l == il && !memcmp(p, item, il))
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}

static void wipe(void *p, size_t len)
{
	explicit_bzero(p, len);
}

/* One step of the security stage.  Appends the target's keys to ob and
 * returns 0, or a login status (0x0201 for every authentication failure, RFC
 * 7143 11.13.5: the details stay in our log, not on the wire).  Secrets are
 * wiped from the stack and never logged. */
static uint16_t auth_step(struct iscsi_conn *c, struct sec_keys *k, struct iscsi_kv_buf *ob)
{
	struct iscsi_login *l = &c->login;
	struct iscsi_target *t = l->target;     /* NULL: discovery (tid 0 accounts) */
	const char *who = c->neg.initiator_name[0] ? c->neg.initiator_name : "?";
	char a[16], i[16], ch[2 * CHAP_CHALLENGE_LEN + 3];

	if (k->dup || k->too_long) {
		log_info("iscsi: %s: malformed security keys from %s", c->peer_str, who);
		return ISCSI_LOGIN_STATUS_AUTH_FAILED;
	}
	if (k->has_authm) {
		/* AuthMethod is negotiated once (RFC 7143 6.2 / 12.1). */
		if (l->auth_method_seen)
			return ISCSI_LOGIN_STATUS_INIT_ERR;
		l->auth_method_seen = true;
		/* RFC 7143 6.2: the responder picks from the offered list what
		 * it supports.  With an incoming account bound we support
		 * CHAP only; without one, None only (nothing to check a CHAP
		 * response against). */
		if (l->auth_required && auth_list_has(k->authm, "CHAP")) {
			iscsi_kv_append(ob, "AuthMethod", "CHAP");
			l->auth = AUTH_CHAP_A;
		} else if (!l->auth_required && auth_list_has(k->authm, "None")) {
			iscsi_kv_append(ob, "AuthMethod", "None");
			l->auth = AUTH_DONE;
		} else {
			log_info("iscsi: %s: %s offered AuthMethod=%s, we %s CHAP", c->peer_str,
				 who, k->authm, l->auth_required ? "require" : "have no account for");
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
	}
	if (k->has_a) {
		if (l->auth != AUTH_CHAP_A || k->has_n || k->has_r)
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		/* RFC 7143 12.1.3: CHAP_A=<list>; we answer CHAP_A, CHAP_I and
		 * CHAP_C (fresh identifier and challenge from getrandom()). */
		if (chap_start(&l->chap, k->a, a, sizeof(a), i, sizeof(i), ch, sizeof(ch)) < 0) {
			log_info("iscsi: %s: no supported CHAP algorithm in CHAP_A=%s from %s",
				 c->peer_str, k->a, who);
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
		iscsi_kv_append(ob, "CHAP_A", a);
		iscsi_kv_append(ob, "CHAP_I", i);
		iscsi_kv_append(ob, "CHAP_C", ch);
		l->auth = AUTH_CHAP_R;
		return 0;
	}
	if (k->has_n || k->has_r || k->has_i || k->has_c) {
		char secret[CHAP_SECRET_MAX + 1];
		char ouser[REG_NAME_MAX], osecret[CHAP_SECRET_MAX + 1];
		char r[2 * CHAP_MAX_DIGEST + 3];
		bool good;

		if (l->auth != AUTH_CHAP_R || !k->has_n || !k->has_r) {
			log_info("iscsi: %s: CHAP keys from %s out of sequence or missing", c->peer_str,
				 who);
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
		if (reg_chap_incoming_secret(t, k->n, secret, sizeof(secret)) < 0) {
			log_info("iscsi: %s: CHAP user '%s' (from %s) is not bound to %s", c->peer_str,
				 k->n, who, t ? reg_target_name(t) : "discovery");
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
		good = chap_verify(&l->chap, k->r, secret, strlen(secret));
		wipe(secret, sizeof(secret));
		/* One challenge, one answer (RFC 1994 4.1): a retry needs a
		 * new login. */
		l->chap.challenge_sent = false;
		if (!good) {
			log_info("iscsi: %s: CHAP authentication of user '%s' (from %s) failed",
				 c->peer_str, k->n, who);
			return ISCSI_LOGIN_STATUS_AUTH_FAILED;
		}
		if (k->has_i || k->has_c) {
			/* Mutual CHAP: the initiator authenticates us with the
			 * outgoing account (RFC 7143 12.1.3, second half). */
			int rc;

			if (!k->has_i || !k->has_c) {
				log_info("iscsi: %s: mutual CHAP from %s lacks CHAP_I or CHAP_C",
					 c->peer_str, who);
				return ISCSI_LOGIN_STATUS_AUTH_FAILED;
			}
			if (reg_chap_outgoing(t, ouser, sizeof(ouser), osecret, sizeof(osecret)) < 0) {
				log_info("iscsi: %s: %s asks for mutual CHAP but no outgoing account is bound",
					 c->peer_str, who);
				return ISCSI_LOGIN_STATUS_AUTH_FAILED;
			}
			rc = chap_respond(&l->chap, k->i, k->c, osecret, strlen(osecret), r, sizeof(r));
			wipe(osecret, sizeof(osecret));
			if (rc < 0) {
				log_info("iscsi: %s: mutual CHAP challenge from %s refused (malformed or reflected)",
					 c->peer_str, who);
				return ISCSI_LOGIN_STATUS_AUTH_FAILED;
			}
			iscsi_kv_append(ob, "CHAP_N", ouser);
			iscsi_kv_append(ob, "CHAP_R", r);
		}
		log_info("iscsi: %s: CHAP user '%s' authenticated%s", c->peer_str, k->n,
			 k->has_i ? " (mutual)" : "");
		l->auth = AUTH_DONE;
	}
	return 0;
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
	static __thread struct sec_keys sk;
	const char *key, *val;
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

	memset(&sk, 0, sizeof(sk));
	iscsi_kv_iter_init(&it, data, dlen);
	while ((rc = iscsi_kv_next(&it, &key, &val)) > 0) {
		/* Security keys wait until we know the target (see above). */
		if (csg == ISCSI_STAGE_SECURITY && sec_collect(&sk, key, val))
			continue;
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
		/* Discovery sessions use the discovery (tid 0) accounts. */
		l->auth_required = reg_chap_required(l->target);
	}
	if (csg == ISCSI_STAGE_SECURITY) {
		st = auth_step(c, &sk, &ob);
		if (st) {
			login_fail(c, &req, st);
			goto out;
		}
		if (transit && l->auth != AUTH_DONE) {
			if (l->auth == AUTH_START && !l->auth_required) {
				/* No AuthMethod offered and none needed. */
				l->auth = AUTH_DONE;
			} else if (l->auth == AUTH_START) {
				/* Leaving the security stage without
				 * authenticating when CHAP is required. */
				log_info("iscsi: %s: %s skipped required authentication", c->peer_str,
					 c->neg.initiator_name);
				login_fail(c, &req, ISCSI_LOGIN_STATUS_AUTH_FAILED);
				goto out;
			} else {
				/* RFC 7143 6.3 / 11.13.3: the target answers T=0
				 * while the exchange it started is not over. */
				transit = false;
			}
		}
	} else if (l->auth_required && l->auth != AUTH_DONE) {
		/* RFC 7143 6.3: skipping the security stage is only for
		 * targets that do not require authentication. */
		log_info("iscsi: %s: %s skipped required authentication", c->peer_str,
			 c->neg.initiator_name);
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
