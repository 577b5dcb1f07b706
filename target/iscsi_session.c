/* iscsi_session.c - sessions (RFC 7143 4.x with MaxConnections=1): the
 * daemon-wide session table (TSIH allocation, reinstatement, kills from the
 * control thread), registration with the registry, CmdSN ordering and task
 * management functions (RFC 7143 11.5/11.6, SAM-5 7).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "iscsi_internal.h"
#include "scsi_pr.h"
#include "scsi_xcopy.h"

/* The persistent-reservation module may not be linked into every build yet
 * (unit tests, early integration): call its fabric events only when present. */
#pragma weak scsi_pr_nexus_lost
#pragma weak scsi_pr_lun_reset

/* ================================================================ global table */

struct sess_entry {
	uint64_t conn_id;
	struct reactor *r;
	struct iscsi_conn *conn;    /* only dereferenced on r's thread */
	char initiator[REG_NAME_MAX];
	uint8_t isid[6];
	uint16_t tsih;
	struct iscsi_target *target;
	struct sess_entry *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sess_entry *g_sessions;
static uint16_t g_next_tsih = 1;

uint16_t sess_new_tsih(void)
{
	uint16_t t;
	bool used;

	pthread_mutex_lock(&g_lock);
	do {
		t = g_next_tsih++;
		used = t == 0;
		for (struct sess_entry *e = g_sessions; e && !used; e = e->next)
			used = e->tsih == t;
	} while (used);
	pthread_mutex_unlock(&g_lock);
	return t;
}

static void kill_on_reactor(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct iscsi_conn *c = NULL;

	pthread_mutex_lock(&g_lock);
	for (struct sess_entry *e = g_sessions; e; e = e->next)
		if (e->conn_id == id)
			c = e->conn;
	pthread_mutex_unlock(&g_lock);
	/* We run on the owning reactor and the entry is removed (on this
	 * thread) before the connection is freed, so c is alive. */
	if (c) {
		conn_close(c, "session closed (reinstated, reset or by the administrator)");
		conn_check(c);
	}
}

static void post_kill(struct reactor *r, uint64_t conn_id)
{
	if (reactor_post(r, kill_on_reactor, (void *)(uintptr_t)conn_id) < 0)
		log_warn("iscsi: cannot post session kill");
}

static void logout_req_on_reactor(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct iscsi_conn *c = NULL;

	pthread_mutex_lock(&g_lock);
	for (struct sess_entry *e = g_sessions; e; e = e->next)
		if (e->conn_id == id)
			c = e->conn;
	pthread_mutex_unlock(&g_lock);
	/* Alive for the same reason as in kill_on_reactor(). */
	if (c)
		conn_request_logout(c);
}

/* reg_session_info.kill: called from the control thread when the
 * administrator drops the session (or deletes its target with --force).
 * Unlike reinstatement, the initiator is asked to log out first (RFC 7143
 * 11.9.1) so that it finishes its I/O cleanly; conn_request_logout() drops
 * it if it does not comply in time. */
static void sess_kill_cb(void *ctx)
{
	uint64_t id = (uint64_t)(uintptr_t)ctx;
	struct reactor *r = NULL;

	pthread_mutex_lock(&g_lock);
	for (struct sess_entry *e = g_sessions; e; e = e->next)
		if (e->conn_id == id)
			r = e->r;
	pthread_mutex_unlock(&g_lock);
	if (r && reactor_post(r, logout_req_on_reactor, (void *)(uintptr_t)id) < 0)
		log_warn("iscsi: cannot post a logout request");
}

void sess_kill_others_of_target(struct iscsi_target *t, uint64_t except_conn)
{
	struct { struct reactor *r; uint64_t id; } kill[64];
	int n = 0;

	pthread_mutex_lock(&g_lock);
	for (struct sess_entry *e = g_sessions; e && n < 64; e = e->next)
		if (e->target == t && e->conn_id != except_conn) {
			kill[n].r = e->r;
			kill[n].id = e->conn_id;
			n++;
		}
	pthread_mutex_unlock(&g_lock);
	for (int i = 0; i < n; i++)
		post_kill(kill[i].r, kill[i].id);
}

bool sess_tsih_exists(const char *initiator, const uint8_t *isid, uint16_t tsih)
{
	bool found = false;

	pthread_mutex_lock(&g_lock);
	for (struct sess_entry *e = g_sessions; e && !found; e = e->next)
		found = e->tsih == tsih && !memcmp(e->isid, isid, 6) &&
			!strcmp(e->initiator, initiator);
	pthread_mutex_unlock(&g_lock);
	return found;
}

/* ================================================================ SCSI hooks */

static int report_luns_hook(const struct scsi_cmd *cmd, uint64_t *luns, int max)
{
	const struct iscsi_task *t = cmd->fabric_priv;

	if (!t || !t->conn->sess.target)
		return 0;
	return reg_target_luns(t->conn->sess.target, luns, max);
}

static void lu_event_hook(const struct scsi_cmd *cmd, uint8_t asc, uint8_t ascq)
{
	const struct iscsi_task *t = cmd->fabric_priv;

	if (!t || !t->conn->sess.target || !cmd->nexus)
		return;
	reg_target_ua(t->conn->sess.target, cmd->lun, cmd->nexus->id, asc, ascq);
}

/* EXTENDED COPY (SPC-4 6.4): the copy manager finds its copy sources and
 * destinations by NAA among every LU of the daemon; an initiator may only
 * name LUs it could address itself, i.e. those mapped in its session's
 * target (the session was admitted by that target's ACL, and every LUN of
 * the target is visible to it).  Anything else is unreachable (0D/02). */
static bool xcopy_access_hook(const struct scsi_cmd *cmd, const struct scsi_lu *lu)
{
	const struct iscsi_task *t = cmd->fabric_priv;
	struct iscsi_target *tg;
	uint64_t stack_luns[256], *luns = stack_luns;
	bool found = false;
	int n;

	if (!t || !lu || t->conn->sess.type != ISCSI_SESSION_NORMAL || !(tg = t->conn->sess.target))
		return false;
	n = reg_target_luns(tg, luns, 256);
	if (n > 256) {
		/* Rare: a target with more LUNs than fit on the stack. */
		luns = malloc(sizeof(*luns) * (size_t)n);
		if (!luns)
			return false;
		int m = reg_target_luns(tg, luns, n);   /* LUNs may have gone meanwhile */
		if (m < n)
			n = m;
	}
	for (int i = 0; i < n && !found; i++) {
		struct scsi_lu *x = reg_target_lun_get(tg, luns[i]);

		if (!x)
			continue;
		found = x == lu || memcmp(x->naa, lu->naa, sizeof(x->naa)) == 0;
		scsi_lu_put(x);
	}
	if (luns != stack_luns)
		free(luns);
	return found;
}

/* REPORT TARGET PORT GROUPS (SPC-4 6.36): every portal group of the daemon
 * leads to every target, so each portal group tag is a target port group
 * (and its one relative target port id) of every LU.  Ascending, no
 * duplicates (several portals may share a tag); the command's own group is
 * always there, also for a connection on a listener iscsi_init() was not
 * told about. */
static int tpg_list_hook(const struct scsi_cmd *cmd, uint16_t *tpg_ids, int max)
{
	uint16_t own = cmd->nexus && cmd->nexus->target_port_id ? cmd->nexus->target_port_id : 0;
	uint16_t prev = 0;
	int n = 0;

	for (;;) {
		/* Next tag above prev: O(portals^2), portals are few. */
		uint32_t next = UINT32_MAX;

		for (int i = 0; i < iscsi_g.nportals; i++) {
			uint16_t tag = iscsi_g.portals[i].tpgt ? iscsi_g.portals[i].tpgt : 1;
			if (tag > prev && tag < next)
				next = tag;
		}
		if (own > prev && own < next)
			next = own;
		if (next == UINT32_MAX)
			break;
		if (n < max)
			tpg_ids[n] = (uint16_t)next;
		n++;
		prev = (uint16_t)next;
	}
	return n;
}

void sess_set_hooks(void)
{
	scsi_report_luns_hook = report_luns_hook;
	scsi_lu_event_hook = lu_event_hook;
	scsi_xcopy_access_hook = xcopy_access_hook;
	scsi_tpg_list_hook = tpg_list_hook;
}

/* ================================================================ start/stop */

static void params_text(const struct iscsi_params *p, char *buf, size_t len)
{
	snprintf(buf, len,
		 "HeaderDigest=%s\nDataDigest=%s\nMaxRecvDataSegmentLength=%u\n"
		 "MaxXmitDataSegmentLength=%u\nFirstBurstLength=%u\nMaxBurstLength=%u\n"
		 "ImmediateData=%s\nInitialR2T=%s\nMaxOutstandingR2T=%u\nErrorRecoveryLevel=%u\n"
		 "DefaultTime2Wait=%u\nDefaultTime2Retain=%u\nMaxConnections=%u\n",
		 p->header_digest ? "CRC32C" : "None", p->data_digest ? "CRC32C" : "None",
		 p->max_recv_dsl, p->max_xmit_dsl, p->first_burst, p->max_burst,
		 p->immediate_data ? "Yes" : "No", p->initial_r2t ? "Yes" : "No",
		 p->max_outstanding_r2t, p->erl, p->default_time2wait, p->default_time2retain,
		 p->max_connections);
}

int sess_start(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;
	struct sess_entry *e, *old;
	struct { struct reactor *r; uint64_t id; } kill[16];
	int nkill = 0;

	s->type = c->neg.session_type;
	snprintf(s->initiator, sizeof(s->initiator), "%s", c->neg.initiator_name);
	memcpy(s->isid, c->login.first.b + 8, 6);
	s->target = c->login.target;
	c->login.target = NULL;
	s->p = c->neg.p;
	s->nexus.id = reg_new_nexus_id();
	snprintf(s->nexus.initiator_port, sizeof(s->nexus.initiator_port),
		 "%s,i,0x%02x%02x%02x%02x%02x%02x", s->initiator, s->isid[0], s->isid[1],
		 s->isid[2], s->isid[3], s->isid[4], s->isid[5]);
	s->nexus.target_port_id = c->tpgt;
	/* SPC-4 7.8.6.2 / RFC 7143 4.2.7: the SCSI target port name. */
	if (s->target)
		snprintf(s->nexus.target_port, sizeof(s->nexus.target_port), "%s,t,0x%04x",
			 reg_target_name(s->target), (unsigned)c->tpgt);

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->conn_id = c->id;
	e->r = c->r;
	e->conn = c;
	memcpy(e->initiator, s->initiator, sizeof(e->initiator));
	memcpy(e->isid, s->isid, 6);
	e->tsih = s->tsih;
	e->target = s->target;

	/* RFC 7143 6.3.5 session reinstatement: a login with the same
	 * InitiatorName + ISID (to the same target) replaces the old
	 * session, which is closed wherever it lives. */
	pthread_mutex_lock(&g_lock);
	for (old = g_sessions; old; old = old->next) {
		if (old->target == e->target && !memcmp(old->isid, e->isid, 6) &&
		    !strcmp(old->initiator, e->initiator) && nkill < 16) {
			kill[nkill].r = old->r;
			kill[nkill].id = old->conn_id;
			nkill++;
		}
	}
	e->next = g_sessions;
	g_sessions = e;
	pthread_mutex_unlock(&g_lock);
	s->in_table = true;
	for (int i = 0; i < nkill; i++) {
		log_notice("iscsi: %s: session reinstatement for %s", c->peer_str, s->initiator);
		post_kill(kill[i].r, kill[i].id);
	}

	if (s->type == ISCSI_SESSION_NORMAL && s->target) {
		struct reg_session_info info;

		memset(&info, 0, sizeof(info));
		info.nexus_id = s->nexus.id;
		info.tsih = s->tsih;
		memcpy(info.isid, s->isid, 6);
		snprintf(info.initiator, sizeof(info.initiator), "%s", s->initiator);
		snprintf(info.alias, sizeof(info.alias), "%s", c->neg.initiator_alias);
		snprintf(info.peer_addr, sizeof(info.peer_addr), "%s", c->peer_str);
		params_text(&s->p, info.params, sizeof(info.params));
		info.kill = sess_kill_cb;
		info.kill_ctx = (void *)(uintptr_t)c->id;
		if (reg_session_add(s->target, &info) == 0)
			s->registered = true;
		else
			log_warn("iscsi: %s: cannot register session", c->peer_str);
	}
	s->ffp = true;
	log_info("iscsi: %s: %s session TSIH %u for %s%s%s", c->peer_str,
		 s->type == ISCSI_SESSION_NORMAL ? "normal" : "discovery", s->tsih, s->initiator,
		 s->target ? " -> " : "", s->target ? reg_target_name(s->target) : "");
	return 0;
}

void sess_stop(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;

	if (s->in_table) {
		struct sess_entry **pp, *e;

		pthread_mutex_lock(&g_lock);
		for (pp = &g_sessions; (e = *pp); pp = &e->next) {
			if (e->conn_id == c->id) {
				*pp = e->next;
				free(e);
				break;
			}
		}
		pthread_mutex_unlock(&g_lock);
		s->in_table = false;
	}
	if (s->registered) {
		uint64_t luns[256];
		int n = reg_target_luns(s->target, luns, 256);

		reg_session_del(s->target, s->nexus.id);
		s->registered = false;
		/* SAM-5 6.3.x: a lost I_T nexus takes its pending UAs along. */
		for (int i = 0; i < n && i < 256; i++) {
			struct scsi_lu *lu = reg_target_lun_get(s->target, luns[i]);
			if (lu) {
				scsi_lu_ua_clear_nexus(lu, s->nexus.id);
				/* SPC-4 6.13: I_T nexus loss ends its medium
				 * removal prevention. */
				scsi_lu_prevent_clear(lu, s->nexus.id);
				/* SPC-2 5.5.1: nexus loss releases RESERVE(6). */
				if (scsi_pr_nexus_lost)
					scsi_pr_nexus_lost(lu, s->nexus.id);
				scsi_lu_put(lu);
			}
		}
		/* Held EXTENDED COPY results belong to the nexus (SPC-4 6.22). */
		scsi_xcopy_forget_nexus(s->nexus.id);
	}
	while (s->held) {
		struct iscsi_task *t = s->held;
		s->held = t->next;
		s->nheld--;
		t->next = NULL;
		t->state = TASK_DONE;
		task_put(t);
	}
	s->ffp = false;
}

/* ================================================================ CmdSN */

uint32_t sess_max_cmdsn(struct iscsi_session *s)
{
	uint32_t m = iscsi_max_cmdsn(s->exp_cmdsn, s->depth, s->active);

	/* Never shrink what we advertised (RFC 7143 4.2.2.1). */
	if (iscsi_sn_lt(m, s->max_cmdsn))
		m = s->max_cmdsn;
	s->max_cmdsn = m;
	return m;
}

enum sn_verdict sess_cmdsn_check(struct iscsi_session *s, uint32_t cmdsn)
{
	if (cmdsn == s->exp_cmdsn)
		return SN_NOW;
	if (iscsi_cmdsn_in_window(s->exp_cmdsn, s->max_cmdsn, cmdsn))
		return SN_LATER;
	return SN_DROP;
}

void sess_hold(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct iscsi_session *s = &c->sess;
	struct iscsi_task **pp;

	t->state = TASK_HELD;
	for (pp = &s->held; *pp && iscsi_sn_lt((*pp)->cmdsn, t->cmdsn); pp = &(*pp)->next)
		;
	if (*pp && (*pp)->cmdsn == t->cmdsn) {
		/* A duplicate CmdSN: the first one wins. */
		t->state = TASK_DONE;
		task_put(t);
		return;
	}
	t->next = *pp;
	*pp = t;
	s->nheld++;
}

void sess_cmdsn_advance(struct iscsi_conn *c)
{
	struct iscsi_session *s = &c->sess;

	while (s->held && s->held->cmdsn == s->exp_cmdsn && c->state != CONN_CLOSING) {
		struct iscsi_task *t = s->held;

		s->held = t->next;
		s->nheld--;
		t->next = NULL;
		s->exp_cmdsn++;
		if (!t->tombstone && !t->aborted) {
			t->counted = true;
			s->active++;
		}
		task_deliver(c, t);
	}
}

void sess_consume_cmdsn(struct iscsi_conn *c, uint32_t cmdsn)
{
	struct iscsi_session *s = &c->sess;
	struct iscsi_task *t;

	if (cmdsn == s->exp_cmdsn) {
		s->exp_cmdsn++;
		sess_cmdsn_advance(c);
		return;
	}
	if (!iscsi_cmdsn_in_window(s->exp_cmdsn, s->max_cmdsn, cmdsn))
		return;
	t = task_alloc(c);
	if (!t)
		return;
	t->tombstone = true;
	t->cmdsn = cmdsn;
	sess_hold(c, t);
}

/* ================================================================ TMF */

static void tmf_respond(struct iscsi_conn *c, struct iscsi_tmf *m)
{
	struct iscsi_tx *tx = conn_tx_get(c);

	if (tx) {
		iscsi_build_tmf_rsp((struct iscsi_bhs *)tx->hdr, m->itt, m->response);
		if (m->cold_reset) {
			c->close_after_send = true;
			c->close_reason = "target cold reset";
		}
		conn_tx_queue(c, tx, true);
	}
	if (m->cold_reset && c->sess.target)
		sess_kill_others_of_target(c->sess.target, c->id);
	free(m);
}

void tmf_task_finished(struct iscsi_conn *c, struct iscsi_task *t)
{
	struct iscsi_tmf *m = t->tmf, **pp;

	t->tmf = NULL;
	if (!m || --m->waiting)
		return;
	for (pp = &c->tmfs; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	tmf_respond(c, m);
}

/* Abort the connection's tasks matching lun_raw (or all); running ones make
 * the TMF wait (SAM-5 7.1: the response follows the aborted tasks' end). */
static void abort_matching(struct iscsi_conn *c, struct iscsi_tmf *m, bool all, uint64_t lun_raw)
{
	struct iscsi_task *t, *next;

	for (t = c->tasks; t; t = next) {
		next = t->all_next;
		if (t->tombstone || t->state == TASK_DONE || t->aborted)
			continue;
		if (!all && t->lun_raw != lun_raw)
			continue;
		if (t->state == TASK_HELD && !t->in_table)
			continue;
		if (task_abort(c, t) && !t->tmf) {
			t->tmf = m;
			m->waiting++;
		}
	}
}

void tmf_handle(struct iscsi_conn *c, const struct iscsi_bhs *h)
{
	struct iscsi_session *s = &c->sess;
	uint8_t fn = h->b[1] & 0x7f;
	uint32_t rtt = iscsi_get32(h->b + 20);
	uint32_t refcmdsn = iscsi_get32(h->b + 32);
	uint64_t lun_raw = iscsi_bhs_lun_raw(h);
	uint64_t lun = iscsi_lun_decode(lun_raw);
	struct iscsi_tmf *m;
	struct scsi_lu *lu = NULL;

	if (s->type == ISCSI_SESSION_DISCOVERY) {
		conn_send_reject(c, ISCSI_REJECT_PROTOCOL_ERROR, h);
		return;
	}
	if (!iscsi_bhs_immediate(h)) {
		uint32_t sn = iscsi_get32(h->b + 24);
		if (sess_cmdsn_check(s, sn) == SN_DROP)
			return;
		sess_consume_cmdsn(c, sn);
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		conn_close(c, "out of memory");
		return;
	}
	m->itt = iscsi_bhs_itt(h);
	m->response = ISCSI_TMF_RSP_COMPLETE;

	switch (fn) {
	case ISCSI_TMF_ABORT_TASK: {
		struct iscsi_itt_node *n = iscsi_itt_find(&c->itts, rtt);
		struct iscsi_task *t = n ? container_of(n, struct iscsi_task, node) : NULL;

		if (t && t->state != TASK_DONE) {
			if (task_abort(c, t) && !t->tmf) {
				t->tmf = m;
				m->waiting++;
			}
		} else if (iscsi_cmdsn_in_window(s->exp_cmdsn, s->max_cmdsn, refcmdsn)) {
			/* RFC 7143 11.5.1: the referenced command has not arrived
			 * (RefCmdSN in the window, not received): treat its
			 * CmdSN as received and answer Function Complete, so a
			 * late copy is ignored. */
			bool received = false;
			for (struct iscsi_task *x = s->held; x; x = x->next)
				received |= x->cmdsn == refcmdsn;
			if (received)
				m->response = ISCSI_TMF_RSP_NO_TASK;
			else
				sess_consume_cmdsn(c, refcmdsn);
		} else {
			m->response = ISCSI_TMF_RSP_NO_TASK;
		}
		break;
	}
	case ISCSI_TMF_ABORT_TASK_SET:
	case ISCSI_TMF_CLEAR_TASK_SET:
	case ISCSI_TMF_LUN_RESET:
		if (lun == UINT64_MAX || !s->target || !(lu = reg_target_lun_get(s->target, lun))) {
			m->response = ISCSI_TMF_RSP_NO_LUN;
			break;
		}
		if (fn == ISCSI_TMF_LUN_RESET) {
			if (scsi_pr_lun_reset)
				scsi_pr_lun_reset(lu);     /* SAM-5 6.3.2: releases RESERVE(6) */
			/* SPC-4 6.13: a logical unit reset ends every
			 * medium removal prevention. */
			scsi_lu_prevent_clear(lu, SCSI_NEXUS_ALL);
		}
		scsi_lu_put(lu);
		abort_matching(c, m, false, lun_raw);
		/* Tasks of other sessions are not ours to abort (they live on
		 * other reactors); SAM-5 lets us tell them through a UA. */
		if (fn == ISCSI_TMF_CLEAR_TASK_SET)
			reg_target_ua(s->target, lun, s->nexus.id, 0x2f, 0x00); /* COMMANDS CLEARED BY ANOTHER INITIATOR */
		else if (fn == ISCSI_TMF_LUN_RESET)
			/* SAM-5 6.3.3: a logical unit reset establishes the UA
			 * for every I_T nexus, the requester's included (what
			 * libiscsi's MultipathIO.Reset checks on each path). */
			reg_target_ua(s->target, lun, 0, 0x29, 0x03); /* BUS DEVICE RESET FUNCTION OCCURRED */
		break;
	case ISCSI_TMF_TARGET_WARM_RESET:
	case ISCSI_TMF_TARGET_COLD_RESET:
		abort_matching(c, m, true, 0);
		if (s->target) {
			uint64_t luns[256];
			int n = reg_target_luns(s->target, luns, 256);

			for (int i = 0; i < n && i < 256; i++) {
				struct scsi_lu *x = reg_target_lun_get(s->target, luns[i]);
				if (x) {
					if (scsi_pr_lun_reset)
						scsi_pr_lun_reset(x);
					/* SPC-4 6.13: a hard reset ends
					 * every prevention. */
					scsi_lu_prevent_clear(x, SCSI_NEXUS_ALL);
					scsi_lu_put(x);
				}
			}
			/* SAM-5 6.3.2 hard reset: every I_T nexus. */
			reg_target_ua(s->target, UINT64_MAX, 0, 0x29, 0x00);
		}
		m->cold_reset = fn == ISCSI_TMF_TARGET_COLD_RESET;
		break;
	case ISCSI_TMF_TASK_REASSIGN:
		/* RFC 7143 11.6.1: at ERL 0 "Task allegiance reassignment not
		 * supported". */
		m->response = ISCSI_TMF_RSP_NO_FAILOVER;
		break;
	case ISCSI_TMF_CLEAR_ACA:
	default:
		m->response = ISCSI_TMF_RSP_NOT_SUPPORTED;
		break;
	}
	if (m->waiting) {
		m->next = c->tmfs;
		c->tmfs = m;
		return;
	}
	tmf_respond(c, m);
}
