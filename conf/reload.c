/* reload.c - apply the difference between the configuration file and the
 * running state (SIGHUP / systemctl reload); the policy is in reload.h.
 *
 * The diff is a pure function of two struct rs_config so that it can be
 * tested table-driven; the running state is turned into one by re-reading
 * the registry's own dump (reg_dump_config(), the same text --op dump
 * writes) and by copying the export table.
 */
#include "reload.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../nfsgw/exports.h"
#include "../target/registry.h"

/* ---- the plan ---- */

static struct reload_action *push(struct reload_plan *p, enum reload_op op)
{
	if (p->oom)
		return NULL;
	if (p->n == p->cap) {
		int ncap = p->cap ? p->cap * 2 : 16;
		struct reload_action *v = realloc(p->v, sizeof(*v) * (size_t)ncap);
		if (!v) {
			p->oom = true;
			return NULL;
		}
		p->v = v;
		p->cap = ncap;
	}
	struct reload_action *a = &p->v[p->n++];
	memset(a, 0, sizeof(*a));
	a->op = op;
	return a;
}

static void restart_note(struct reload_plan *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void restart_note(struct reload_plan *p, const char *fmt, ...)
{
	struct reload_action *a = push(p, RL_RESTART);
	va_list ap;

	if (!a)
		return;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

void reload_plan_free(struct reload_plan *plan)
{
	if (!plan)
		return;
	free(plan->v);
	memset(plan, 0, sizeof(*plan));
}

const char *reload_op_name(enum reload_op op)
{
	switch (op) {
	case RL_RESTART: return "restart";
	case RL_LOG_LEVEL: return "log-level";
	case RL_ACCOUNT_ADD: return "account-add";
	case RL_ACCOUNT_PASSWORD: return "account-password";
	case RL_BIND_DEL: return "bind-del";
	case RL_EXPORT_DEL: return "export-del";
	case RL_TARGET_DEL: return "target-del";
	case RL_LUN_DEL: return "lun-del";
	case RL_LUN_REPLACE: return "lun-replace";
	case RL_LUN_ADD: return "lun-add";
	case RL_ACL_ADDR_DEL: return "acl-addr-del";
	case RL_ACL_NAME_DEL: return "acl-name-del";
	case RL_ACL_ADDR_ADD: return "acl-addr-add";
	case RL_ACL_NAME_ADD: return "acl-name-add";
	case RL_TARGET_ADD: return "target-add";
	case RL_BIND_ADD: return "bind-add";
	case RL_ACCOUNT_DEL: return "account-del";
	case RL_EXPORT_UPDATE: return "export-update";
	case RL_EXPORT_ADD: return "export-add";
	}
	return "?";
}

static const char *bind_where(int tid, char *buf, size_t len)
{
	if (tid == 0)
		snprintf(buf, len, "discovery");
	else
		snprintf(buf, len, "target %d", tid);
	return buf;
}

void reload_action_str(const struct reload_action *a, char *buf, size_t len)
{
	char w[32];

	switch (a->op) {
	case RL_RESTART:
		snprintf(buf, len, "%s: requires a restart", a->text);
		break;
	case RL_LOG_LEVEL:
		snprintf(buf, len, "log level set to %s", a->name);
		break;
	case RL_ACCOUNT_ADD:
		snprintf(buf, len, "account %s added", a->name);
		break;
	case RL_ACCOUNT_PASSWORD:
		snprintf(buf, len, "account %s: password changed", a->name);
		break;
	case RL_ACCOUNT_DEL:
		snprintf(buf, len, "account %s removed", a->name);
		break;
	case RL_BIND_DEL:
		snprintf(buf, len, "%s: account %s unbound%s", bind_where(a->tid, w, sizeof(w)), a->name,
			 a->outgoing ? " (outgoing)" : "");
		break;
	case RL_BIND_ADD:
		snprintf(buf, len, "%s: account %s bound%s", bind_where(a->tid, w, sizeof(w)), a->name,
			 a->outgoing ? " (outgoing)" : "");
		break;
	case RL_TARGET_DEL:
		snprintf(buf, len, "target %d %s removed", a->tid, a->name);
		break;
	case RL_TARGET_ADD:
		snprintf(buf, len, "target %d %s added", a->tid, a->name);
		break;
	case RL_LUN_DEL:
		snprintf(buf, len, "target %d: LUN %" PRIu64 " removed", a->tid, a->lun);
		break;
	case RL_LUN_REPLACE:
		snprintf(buf, len, "target %d: LUN %" PRIu64 " replaced (%s)", a->tid, a->lun, a->text);
		break;
	case RL_LUN_ADD:
		snprintf(buf, len, "target %d: LUN %" PRIu64 " added", a->tid, a->lun);
		break;
	case RL_ACL_ADDR_DEL:
		snprintf(buf, len, "target %d: initiator address %s unbound", a->tid, a->name);
		break;
	case RL_ACL_NAME_DEL:
		snprintf(buf, len, "target %d: initiator name %s unbound", a->tid, a->name);
		break;
	case RL_ACL_ADDR_ADD:
		snprintf(buf, len, "target %d: initiator address %s bound", a->tid, a->name);
		break;
	case RL_ACL_NAME_ADD:
		snprintf(buf, len, "target %d: initiator name %s bound", a->tid, a->name);
		break;
	case RL_EXPORT_DEL:
		snprintf(buf, len, "NFS export %s removed", a->name);
		break;
	case RL_EXPORT_UPDATE:
		snprintf(buf, len, "NFS export %s updated", a->name);
		break;
	case RL_EXPORT_ADD:
		snprintf(buf, len, "NFS export %s added", a->name);
		break;
	default:
		snprintf(buf, len, "?");
		break;
	}
}

/* ---- the diff ---- */

static const struct rs_config_target *find_target(const struct rs_config *c, int tid)
{
	for (int i = 0; i < c->ntargets; i++)
		if (c->targets[i].tid == tid)
			return &c->targets[i];
	return NULL;
}

/* The same target: same tid and name.  A tid that now carries another name
 * is a different target (removed, then added). */
static const struct rs_config_target *same_target(const struct rs_config *c,
						  const struct rs_config_target *t)
{
	const struct rs_config_target *o = find_target(c, t->tid);

	return o && strcasecmp(o->iqn, t->iqn) == 0 ? o : NULL;
}

static const struct rs_config_lun *find_lun(const struct rs_config_target *t, uint64_t lun)
{
	for (int i = 0; i < t->nluns; i++)
		if (t->luns[i].lun == lun)
			return &t->luns[i];
	return NULL;
}

static const struct rs_config_account *find_account(const struct rs_config *c, const char *user)
{
	for (int i = 0; i < c->naccounts; i++)
		if (strcmp(c->accounts[i].user, user) == 0)
			return &c->accounts[i];
	return NULL;
}

static const struct rs_config_export *find_export(const struct rs_config *c, const char *path)
{
	for (int i = 0; i < c->nexports; i++)
		if (strcmp(c->exports[i].path, path) == 0)
			return &c->exports[i];
	return NULL;
}

/* What differs between the running LUN r and the file's f (into why), or
 * false if they are the same LU.  Creation parameters (create, the size of
 * a file LUN) do not describe a running LUN and are not compared; a null
 * LUN's size is what it is. */
static bool lun_differs(const struct rs_config_lun *r, const struct rs_config_lun *f, char *why,
			size_t len)
{
	bool null = strcmp(f->bstype, "null") == 0;

	if (strcmp(r->bstype, f->bstype) != 0)
		snprintf(why, len, "type %s -> %s", r->bstype, f->bstype);
	else if (!null && strcmp(r->path, f->path) != 0)
		snprintf(why, len, "path %.80s -> %.80s", r->path, f->path);
	else if (r->bs.block_size != f->bs.block_size)
		snprintf(why, len, "block_size %u -> %u", r->bs.block_size, f->bs.block_size);
	else if (r->bs.readonly != f->bs.readonly)
		snprintf(why, len, "readonly %s", f->bs.readonly ? "on" : "off");
	else if (r->bs.direct != f->bs.direct)
		snprintf(why, len, "direct %s", f->bs.direct ? "on" : "off");
	else if (r->thin_provisioning != f->thin_provisioning)
		snprintf(why, len, "thin_provisioning %s", f->thin_provisioning ? "on" : "off");
	/* "" = derived from the target name and LUN, which did not change. */
	else if (f->serial[0] && strcmp(r->serial, f->serial) != 0)
		snprintf(why, len, "serial %s -> %s", r->serial, f->serial);
	else if (null && f->bs.size && f->bs.size != r->bs.size)
		snprintf(why, len, "size %" PRIu64 " -> %" PRIu64, r->bs.size, f->bs.size);
	else
		return false;
	return true;
}

static bool in_list(char (*list)[64], int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool in_name_list(char (*list)[REG_NAME_MAX], int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(list[i], s) == 0)
			return true;
	return false;
}

static bool in_users(const struct rs_config_chap_bind *b, const char *user)
{
	for (int i = 0; i < b->nin; i++)
		if (strcmp(b->in[i], user) == 0)
			return true;
	return false;
}

static void bind_dels(struct reload_plan *p, int tid, const struct rs_config_chap_bind *r,
		      const struct rs_config_chap_bind *f, int line)
{
	struct reload_action *a;

	for (int i = 0; i < r->nin; i++) {
		if (in_users(f, r->in[i]))
			continue;
		if ((a = push(p, RL_BIND_DEL))) {
			a->tid = tid;
			a->name = r->in[i];
			a->line = line;
		}
	}
	if (r->out[0] && strcmp(r->out, f->out) != 0 && (a = push(p, RL_BIND_DEL))) {
		a->tid = tid;
		a->name = r->out;
		a->outgoing = true;
		a->line = line;
	}
}

static void bind_adds(struct reload_plan *p, int tid, const struct rs_config_chap_bind *r,
		      const struct rs_config_chap_bind *f, int line)
{
	struct reload_action *a;

	for (int i = 0; i < f->nin; i++) {
		if (in_users(r, f->in[i]))
			continue;
		if ((a = push(p, RL_BIND_ADD))) {
			a->tid = tid;
			a->name = f->in[i];
			a->line = line;
		}
	}
	if (f->out[0] && strcmp(r->out, f->out) != 0 && (a = push(p, RL_BIND_ADD))) {
		a->tid = tid;
		a->name = f->out;
		a->outgoing = true;
		a->line = line;
	}
}

static bool options_equal(const struct export_options *a, const struct export_options *b)
{
	return a->rw == b->rw && a->sync == b->sync && a->root_squash == b->root_squash &&
	       a->all_squash == b->all_squash && a->anonuid == b->anonuid &&
	       a->anongid == b->anongid && a->secure == b->secure && a->fsid_set == b->fsid_set &&
	       (!a->fsid_set || a->fsid == b->fsid) && a->auth_sys == b->auth_sys &&
	       a->auth_none == b->auth_none;
}

static bool export_equal(const struct rs_config_export *a, const struct rs_config_export *b)
{
	if (a->nclients != b->nclients)
		return false;
	/* exports(5): the first matching client wins, so the order matters. */
	for (int i = 0; i < a->nclients; i++)
		if (a->clients[i].kind != b->clients[i].kind ||
		    strcmp(a->clients[i].spec, b->clients[i].spec) != 0 ||
		    !options_equal(&a->clients[i].opts, &b->clients[i].opts))
			return false;
	return true;
}

static bool caps_equal(const struct iscsi_settings *a, const struct iscsi_settings *b)
{
	return a->caps.max_recv_dsl == b->caps.max_recv_dsl &&
	       a->caps.max_burst == b->caps.max_burst &&
	       a->caps.first_burst == b->caps.first_burst &&
	       a->caps.max_outstanding_r2t == b->caps.max_outstanding_r2t &&
	       a->caps.allow_immediate_data == b->caps.allow_immediate_data &&
	       a->caps.require_initial_r2t == b->caps.require_initial_r2t &&
	       a->caps.allow_crc32c == b->caps.allow_crc32c &&
	       a->caps.max_connections == b->caps.max_connections &&
	       a->nop_interval_s == b->nop_interval_s && a->nop_timeout_s == b->nop_timeout_s &&
	       a->queue_depth == b->queue_depth;
}

/* The portal list the daemon listens on for cfg ("0.0.0.0:3260,1" when the
 * file names none, as main.c does). */
static int portal_texts(const struct rs_config *c, const char **out)
{
	if (c->nportals == 0) {
		out[0] = "0.0.0.0:3260,1";
		return 1;
	}
	for (int i = 0; i < c->nportals; i++)
		out[i] = c->portals[i].text;
	return c->nportals;
}

static bool nfs_settings_equal(const struct nfsgw_settings *a, const struct nfsgw_settings *b)
{
	if (a->nlisten != b->nlisten || a->mount_port != b->mount_port ||
	    a->nlm_port != b->nlm_port || a->portmap != b->portmap ||
	    a->portmap_port != b->portmap_port || strcmp(a->portmap_addr, b->portmap_addr) != 0)
		return false;
	if (a->nlisten == 0)
		return strcmp(a->bind_addr, b->bind_addr) == 0 && a->nfs_port == b->nfs_port;
	for (int i = 0; i < a->nlisten && i < NFSGW_MAX_LISTEN; i++)
		if (strcmp(a->listen[i].addr, b->listen[i].addr) != 0 ||
		    a->listen[i].port != b->listen[i].port)
			return false;
	return true;
}

static const char *level_name(int level)
{
	switch (level) {
	case RS_LOG_ERR: return "error";
	case RS_LOG_WARN: return "warning";
	case RS_LOG_NOTICE: return "notice";
	case RS_LOG_INFO: return "info";
	case RS_LOG_DEBUG: return "debug";
	}
	return "notice";
}

static void diff_settings(const struct rs_config *r, const struct rs_config *f, unsigned flags,
			  struct reload_plan *p)
{
	if (!(flags & RELOAD_CLI_THREADS) && r->threads != f->threads)
		restart_note(p, "daemon.threads %d -> %d", r->threads, f->threads);
	if (!(flags & RELOAD_CLI_CONTROL) && strcmp(r->control_socket, f->control_socket) != 0)
		restart_note(p, "daemon.control_socket \"%.60s\" -> \"%.60s\"", r->control_socket,
			     f->control_socket);
	if (!(flags & RELOAD_CLI_STATE_DIR) && strcmp(r->state_dir, f->state_dir) != 0)
		restart_note(p, "daemon.state_dir \"%.60s\" -> \"%.60s\"", r->state_dir, f->state_dir);
	if (!(flags & RELOAD_CLI_PORTALS)) {
		const char *rp[CONFIG_MAX_PORTALS], *fp[CONFIG_MAX_PORTALS];
		int nr = portal_texts(r, rp), nf = portal_texts(f, fp);
		bool same = nr == nf;
		for (int i = 0; same && i < nr; i++)
			same = strcmp(rp[i], fp[i]) == 0;
		/* Listening sockets are opened per reactor before the threads
		 * start (SO_REUSEPORT); portals are not reopened live. */
		if (!same)
			restart_note(p, "iscsi.portals changed");
	}
	if (!caps_equal(&r->iscsi, &f->iscsi))
		restart_note(p, "iscsi negotiation settings changed");
	if (!(flags & RELOAD_CLI_NFS)) {
		if (r->nfs_enabled != f->nfs_enabled)
			restart_note(p, "nfs.enabled %s -> %s", r->nfs_enabled ? "true" : "false",
				     f->nfs_enabled ? "true" : "false");
		else if (f->nfs_enabled && !nfs_settings_equal(&r->nfs, &f->nfs))
			restart_note(p, "nfs listeners/portmapper changed");
	}
	if (!(flags & RELOAD_CLI_LOG_LEVEL)) {
		int rl = rs_log_parse_level(r->log_level[0] ? r->log_level : "notice");
		int fl = rs_log_parse_level(f->log_level[0] ? f->log_level : "notice");
		struct reload_action *a;
		if (fl >= 0 && rl != fl && (a = push(p, RL_LOG_LEVEL)))
			a->name = level_name(fl);
	}
}

static void diff_target(const struct rs_config_target *r, const struct rs_config_target *f,
			struct reload_plan *p)
{
	struct reload_action *a;
	char why[sizeof(a->text)];

	for (int i = 0; i < r->nluns; i++) {
		const struct rs_config_lun *fl = find_lun(f, r->luns[i].lun);
		if (fl)
			continue;
		if ((a = push(p, RL_LUN_DEL))) {
			a->tid = f->tid;
			a->lun = r->luns[i].lun;
			a->old_lun = &r->luns[i];
			a->line = f->line;
		}
	}
	for (int i = 0; i < f->nluns; i++) {
		const struct rs_config_lun *rl = find_lun(r, f->luns[i].lun);
		if (!rl || !lun_differs(rl, &f->luns[i], why, sizeof(why)))
			continue;
		if ((a = push(p, RL_LUN_REPLACE))) {
			a->tid = f->tid;
			a->lun = f->luns[i].lun;
			a->old_lun = rl;
			a->new_lun = &f->luns[i];
			a->line = f->luns[i].line;
			snprintf(a->text, sizeof(a->text), "%s", why);
		}
	}
	for (int i = 0; i < f->nluns; i++) {
		if (find_lun(r, f->luns[i].lun))
			continue;
		if ((a = push(p, RL_LUN_ADD))) {
			a->tid = f->tid;
			a->lun = f->luns[i].lun;
			a->new_lun = &f->luns[i];
			a->line = f->luns[i].line;
		}
	}
	/* ACLs are checked at login only: removals first is safe. */
	for (int i = 0; i < r->naddr_acls; i++)
		if (!in_list(f->addr_acls, f->naddr_acls, r->addr_acls[i]) &&
		    (a = push(p, RL_ACL_ADDR_DEL))) {
			a->tid = f->tid;
			a->name = r->addr_acls[i];
			a->line = f->line;
		}
	for (int i = 0; i < r->nname_acls; i++)
		if (!in_name_list(f->name_acls, f->nname_acls, r->name_acls[i]) &&
		    (a = push(p, RL_ACL_NAME_DEL))) {
			a->tid = f->tid;
			a->name = r->name_acls[i];
			a->line = f->line;
		}
	for (int i = 0; i < f->naddr_acls; i++)
		if (!in_list(r->addr_acls, r->naddr_acls, f->addr_acls[i]) &&
		    (a = push(p, RL_ACL_ADDR_ADD))) {
			a->tid = f->tid;
			a->name = f->addr_acls[i];
			a->line = f->line;
		}
	for (int i = 0; i < f->nname_acls; i++)
		if (!in_name_list(r->name_acls, r->nname_acls, f->name_acls[i]) &&
		    (a = push(p, RL_ACL_NAME_ADD))) {
			a->tid = f->tid;
			a->name = f->name_acls[i];
			a->line = f->line;
		}
}

int reload_diff(const struct rs_config *r, const struct rs_config *f, unsigned flags,
		struct reload_plan *p)
{
	struct reload_action *a;
	/* Exports are live only while the gateway runs and stays on. */
	bool exports = r->nfs_enabled && (f->nfs_enabled || (flags & RELOAD_CLI_NFS));

	memset(p, 0, sizeof(*p));
	p->running = r;
	diff_settings(r, f, flags, p);

	/* 1. accounts that bindings below will need */
	for (int i = 0; i < f->naccounts; i++) {
		const struct rs_config_account *ra = find_account(r, f->accounts[i].user);
		if (ra && strcmp(ra->password, f->accounts[i].password) == 0)
			continue;
		if ((a = push(p, ra ? RL_ACCOUNT_PASSWORD : RL_ACCOUNT_ADD))) {
			a->name = f->accounts[i].user;
			a->account = &f->accounts[i];
			a->line = f->accounts[i].line;
		}
	}
	/* 2. unbind first: an account may change direction (RFC 7143 9.2.1
	 * forbids both at once) and a target has one outgoing account. */
	bind_dels(p, 0, &r->discovery, &f->discovery, 0);
	for (int i = 0; i < f->ntargets; i++) {
		const struct rs_config_target *rt = same_target(r, &f->targets[i]);
		if (rt)
			bind_dels(p, f->targets[i].tid, &rt->chap, &f->targets[i].chap,
				  f->targets[i].line);
	}
	/* 3. exports that go, before updates that may take over their fsid */
	if (exports)
		for (int i = 0; i < r->nexports; i++)
			if (!find_export(f, r->exports[i].path) && (a = push(p, RL_EXPORT_DEL)))
				a->name = r->exports[i].path;
	/* 4. targets that go (or whose tid now names another target) */
	for (int i = 0; i < r->ntargets; i++) {
		if (same_target(f, &r->targets[i]))
			continue;
		if ((a = push(p, RL_TARGET_DEL))) {
			const struct rs_config_target *ft = find_target(f, r->targets[i].tid);
			a->tid = r->targets[i].tid;
			a->name = r->targets[i].iqn;
			a->line = ft ? ft->line : 0;
		}
	}
	/* 5. targets that stay: LUNs and ACLs */
	for (int i = 0; i < f->ntargets; i++) {
		const struct rs_config_target *rt = same_target(r, &f->targets[i]);
		if (rt)
			diff_target(rt, &f->targets[i], p);
	}
	/* 6. new targets, complete with LUNs, ACLs and bindings */
	for (int i = 0; i < f->ntargets; i++) {
		if (same_target(r, &f->targets[i]))
			continue;
		if ((a = push(p, RL_TARGET_ADD))) {
			a->tid = f->targets[i].tid;
			a->name = f->targets[i].iqn;
			a->target = &f->targets[i];
			a->line = f->targets[i].line;
		}
	}
	/* 7. bindings of targets that stay, and of discovery */
	bind_adds(p, 0, &r->discovery, &f->discovery, 0);
	for (int i = 0; i < f->ntargets; i++) {
		const struct rs_config_target *rt = same_target(r, &f->targets[i]);
		if (rt)
			bind_adds(p, f->targets[i].tid, &rt->chap, &f->targets[i].chap,
				  f->targets[i].line);
	}
	/* 8. accounts that go (deleting one unbinds it everywhere) */
	for (int i = 0; i < r->naccounts; i++)
		if (!find_account(f, r->accounts[i].user) && (a = push(p, RL_ACCOUNT_DEL)))
			a->name = r->accounts[i].user;
	/* 9. exports that change or come */
	if (exports) {
		for (int i = 0; i < f->nexports; i++) {
			const struct rs_config_export *re = find_export(r, f->exports[i].path);
			if (re && export_equal(re, &f->exports[i]))
				continue;
			if ((a = push(p, re ? RL_EXPORT_UPDATE : RL_EXPORT_ADD))) {
				a->name = f->exports[i].path;
				a->export = &f->exports[i];
				a->line = f->exports[i].line;
			}
		}
	}
	return p->oom ? -1 : 0;
}

/* ---- the running state ---- */

struct export_copy {
	struct rs_config *c;
	int cap;
	bool oom;
};

static void copy_export(const struct nfs_export *e, void *arg)
{
	struct export_copy *ec = arg;
	struct rs_config *c = ec->c;
	struct rs_config_export *x;

	if (ec->oom)
		return;
	if (c->nexports == ec->cap) {
		int ncap = ec->cap ? ec->cap * 2 : 8;
		struct rs_config_export *v = realloc(c->exports, sizeof(*v) * (size_t)ncap);
		if (!v) {
			ec->oom = true;
			return;
		}
		c->exports = v;
		ec->cap = ncap;
	}
	x = &c->exports[c->nexports];
	memset(x, 0, sizeof(*x));
	snprintf(x->path, sizeof(x->path), "%s", e->path);
	x->clients = calloc((size_t)(e->nclients ? e->nclients : 1), sizeof(*x->clients));
	if (!x->clients) {
		ec->oom = true;
		return;
	}
	for (int i = 0; i < e->nclients; i++) {
		/* spec, kind and options only: resolved addresses stay with
		 * the export (config_free() frees clients, not host_addrs). */
		x->clients[i] = e->clients[i];
		x->clients[i].host_addrs = NULL;
		x->clients[i].nhost_addrs = 0;
	}
	x->nclients = e->nclients;
	c->nexports++;
}

int reload_snapshot(struct rs_config *out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct export_copy ec = { .c = out };
	int ret;

	memset(out, 0, sizeof(*out));
	if (!fp) {
		snprintf(err, errlen, "running state: %s", strerror(errno));
		return -1;
	}
	reg_dump_config(fp);
	if (fclose(fp) != 0 || !buf) {
		free(buf);
		snprintf(err, errlen, "running state: out of memory");
		return -1;
	}
	ret = config_load_running(buf, out, err, errlen);
	explicit_bzero(buf, len);      /* it holds the CHAP secrets */
	free(buf);
	if (ret < 0)
		return -1;
	ec.cap = out->nexports;    /* (the dump has no nfs section: 0) */
	nfs_exports_foreach(copy_export, &ec);
	if (ec.oom) {
		config_free(out);
		snprintf(err, errlen, "running state: out of memory");
		return -1;
	}
	return 0;
}

/* ---- applying ---- */

static void lun_spec(const struct rs_config_lun *l, struct reg_lun_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->lun = l->lun;
	spec->path = l->path;
	spec->bstype = l->bstype;
	spec->bs = l->bs;
	spec->lu.serial = l->serial[0] ? l->serial : NULL;
	spec->lu.readonly = l->bs.readonly;
	spec->lu.thin_provisioning = l->thin_provisioning;
}

/* Targets whose removal was refused (sessions): a new target with the same
 * tid or name cannot be created this time, and the accounts that
 * authenticate them stay. */
struct kept {
	const struct rs_config_target **t;   /* in the running configuration */
	int n;
};

static const struct rs_config_target *is_kept(const struct kept *k, int tid, const char *iqn)
{
	for (int i = 0; i < k->n; i++)
		if (k->t[i]->tid == tid || (iqn && strcasecmp(k->t[i]->iqn, iqn) == 0))
			return k->t[i];
	return NULL;
}

static void keep(struct kept *k, const struct rs_config *running, int tid)
{
	const struct rs_config_target *t = running ? find_target(running, tid) : NULL;
	const struct rs_config_target **v;

	if (!t || !(v = realloc(k->t, sizeof(*v) * (size_t)(k->n + 1))))
		return;
	k->t = v;
	k->t[k->n++] = t;
}

/* Does a kept target still use account user (incoming or outgoing)? */
static const struct rs_config_target *kept_user(const struct kept *k, const char *user)
{
	for (int i = 0; i < k->n; i++)
		if (in_users(&k->t[i]->chap, user) || strcmp(k->t[i]->chap.out, user) == 0)
			return k->t[i];
	return NULL;
}

static int sessions_of(int tid)
{
	int n = reg_target_nsessions(tid);

	return n > 0 ? n : 0;
}

/* A new target with everything in it; failures of its parts are logged
 * and counted, what worked stays (the next reload retries the rest). */
static int add_target(const struct rs_config_target *t, const char *src, int *failed)
{
	char msg[512];
	int ret = reg_target_new(t->tid, t->iqn, msg, sizeof(msg));

	if (ret < 0) {
		log_err("reload: %s:%d: target %d: %s", src, t->line, t->tid, msg);
		return -1;
	}
	for (int i = 0; i < t->nluns; i++) {
		struct reg_lun_spec spec;
		lun_spec(&t->luns[i], &spec);
		if (reg_lun_new(t->tid, &spec, msg, sizeof(msg)) < 0) {
			log_err("reload: %s:%d: target %d LUN %" PRIu64 ": %s", src, t->luns[i].line,
				t->tid, t->luns[i].lun, msg);
			++*failed;
		}
	}
	for (int i = 0; i < t->naddr_acls; i++)
		if (reg_bind_addr(t->tid, t->addr_acls[i], msg, sizeof(msg)) < 0) {
			log_err("reload: %s:%d: target %d: %s", src, t->line, t->tid, msg);
			++*failed;
		}
	for (int i = 0; i < t->nname_acls; i++)
		if (reg_bind_initiator(t->tid, t->name_acls[i], msg, sizeof(msg)) < 0) {
			log_err("reload: %s:%d: target %d: %s", src, t->line, t->tid, msg);
			++*failed;
		}
	for (int i = 0; i < t->chap.nin; i++)
		if (reg_account_bind(t->tid, t->chap.in[i], false, msg, sizeof(msg)) < 0) {
			log_err("reload: %s:%d: target %d: %s", src, t->line, t->tid, msg);
			++*failed;
		}
	if (t->chap.out[0] && reg_account_bind(t->tid, t->chap.out, true, msg, sizeof(msg)) < 0) {
		log_err("reload: %s:%d: target %d: %s", src, t->line, t->tid, msg);
		++*failed;
	}
	return 0;
}

static void apply_one(const struct reload_plan *plan, const struct reload_action *a,
		      const char *src, struct kept *kept, struct reload_result *res)
{
	const struct rs_config_target *kt;
	char desc[400], msg[512] = "";
	struct reg_lun_spec spec;
	int ret = 0, n;

	reload_action_str(a, desc, sizeof(desc));
	switch (a->op) {
	case RL_RESTART:
		log_warn("reload: %s", desc);
		res->restart++;
		return;
	case RL_LOG_LEVEL: {
		int lvl = rs_log_parse_level(a->name);
		if (lvl < 0)
			return;
		/* Written by this thread only; the others merely compare it. */
		rs_log_level_cur = (enum rs_log_level)lvl;
		break;
	}
	case RL_ACCOUNT_ADD:
		ret = reg_account_new(a->account->user, a->account->password, msg, sizeof(msg));
		break;
	case RL_ACCOUNT_PASSWORD:
		ret = reg_account_set_password(a->account->user, a->account->password, msg,
					       sizeof(msg));
		break;
	case RL_ACCOUNT_DEL:
		/* Deleting an account unbinds it, and a target without
		 * incoming accounts no longer asks for CHAP: never open a
		 * kept target that way. */
		if ((kt = kept_user(kept, a->name))) {
			log_warn("reload: account %s is not in the file but target %d (kept, it has "
				 "sessions) uses it: kept", a->name, kt->tid);
			res->deferred++;
			return;
		}
		ret = reg_account_delete(a->name, msg, sizeof(msg));
		break;
	case RL_BIND_DEL:
		ret = reg_account_unbind(a->tid, a->name, a->outgoing, msg, sizeof(msg));
		break;
	case RL_BIND_ADD:
		ret = reg_account_bind(a->tid, a->name, a->outgoing, msg, sizeof(msg));
		break;
	case RL_TARGET_DEL:
		n = sessions_of(a->tid);
		if (n) {
			/* Never pull a disk from under a logged-in initiator on
			 * the strength of an edited file. */
			log_warn("reload: target %d %s is not in the file but has %d session%s: "
				 "kept (log the initiators out and reload again, or "
				 "ringstoradm --op delete --force)", a->tid, a->name, n,
				 n == 1 ? "" : "s");
			keep(kept, plan->running, a->tid);
			res->deferred++;
			return;
		}
		ret = reg_target_delete(a->tid, false, msg, sizeof(msg));
		break;
	case RL_TARGET_ADD:
		if ((kt = is_kept(kept, a->tid, a->name))) {
			log_warn("reload: %s:%d: target %d %s not created yet: target %d %s (kept, it "
				 "has sessions) holds its tid or name", src, a->line, a->tid, a->name,
				 kt->tid, kt->iqn);
			return;
		}
		if (add_target(a->target, src, &res->failed) < 0) {
			res->failed++;
			return;
		}
		res->applied++;
		log_notice("reload: %s", desc);
		return;
	case RL_LUN_DEL:
	case RL_LUN_REPLACE:
		n = sessions_of(a->tid);
		if (n) {
			/* An initiator that has this LU mounted would see its
			 * data vanish or change under it (a different backing
			 * file, a different block size). */
			log_warn("reload: %s:%d: %s deferred: the target has %d session%s (log the "
				 "initiators out and reload again)", src, a->line, desc, n,
				 n == 1 ? "" : "s");
			res->deferred++;
			return;
		}
		ret = reg_lun_delete(a->tid, a->lun, msg, sizeof(msg));
		if (ret < 0 || a->op == RL_LUN_DEL)
			break;
		lun_spec(a->new_lun, &spec);
		ret = reg_lun_new(a->tid, &spec, msg, sizeof(msg));
		if (ret < 0) {
			/* Put the old one back rather than leave a hole. */
			char m2[256];
			lun_spec(a->old_lun, &spec);
			if (reg_lun_new(a->tid, &spec, m2, sizeof(m2)) < 0)
				log_err("reload: target %d LUN %" PRIu64 ": cannot restore it: %s", a->tid,
					a->lun, m2);
			else
				log_notice("reload: target %d LUN %" PRIu64 ": the previous LUN is back",
					   a->tid, a->lun);
		}
		break;
	case RL_LUN_ADD:
		lun_spec(a->new_lun, &spec);
		/* reg_lun_new() raises REPORTED LUNS DATA HAS CHANGED. */
		ret = reg_lun_new(a->tid, &spec, msg, sizeof(msg));
		break;
	case RL_ACL_ADDR_DEL:
		ret = reg_unbind_addr(a->tid, a->name, msg, sizeof(msg));
		break;
	case RL_ACL_NAME_DEL:
		ret = reg_unbind_initiator(a->tid, a->name, msg, sizeof(msg));
		break;
	case RL_ACL_ADDR_ADD:
		ret = reg_bind_addr(a->tid, a->name, msg, sizeof(msg));
		break;
	case RL_ACL_NAME_ADD:
		ret = reg_bind_initiator(a->tid, a->name, msg, sizeof(msg));
		break;
	case RL_EXPORT_DEL:
		ret = nfs_export_delete(a->name, msg, sizeof(msg));
		break;
	case RL_EXPORT_UPDATE:
		/* in place: the export id and so the file handles stay */
		ret = nfs_export_update(a->export->path, a->export->clients, a->export->nclients, msg,
					sizeof(msg));
		break;
	case RL_EXPORT_ADD:
		ret = nfs_export_add(a->export->path, a->export->clients, a->export->nclients, msg,
				     sizeof(msg));
		break;
	}
	if (ret < 0) {
		if (a->line > 0)
			log_err("reload: %s:%d: not applied: %s: %s", src, a->line, desc, msg);
		else
			log_err("reload: not applied: %s: %s", desc, msg);
		res->failed++;
		return;
	}
	log_notice("reload: %s", desc);
	res->applied++;
}

static void apply_src(const struct reload_plan *plan, const char *src, struct reload_result *res)
{
	struct kept kept = { 0 };

	memset(res, 0, sizeof(*res));
	for (int i = 0; i < plan->n; i++)
		apply_one(plan, &plan->v[i], src, &kept, res);
	free(kept.t);
}

void reload_apply(const struct reload_plan *plan, struct reload_result *res)
{
	apply_src(plan, "config", res);
}

/* --nfs-export lines are part of how the daemon was started: merge them
 * into the file's exports so that a reload keeps them. */
static int merge_cli_exports(struct rs_config *f, const char *const *lines, int n, char *err,
			     size_t errlen)
{
	for (int i = 0; i < n; i++) {
		struct rs_config_export x;
		char msg[256];

		memset(&x, 0, sizeof(x));
		if (exports_parse_line(lines[i], x.path, sizeof(x.path), &x.clients, &x.nclients, msg,
				       sizeof(msg)) < 0) {
			snprintf(err, errlen, "--nfs-export '%s': %s", lines[i], msg);
			return -1;
		}
		bool dup = false;
		for (int j = 0; j < f->nexports; j++)
			if (strcmp(f->exports[j].path, x.path) == 0)
				dup = true;
		if (dup) {
			free(x.clients);
			continue;
		}
		struct rs_config_export *v = realloc(f->exports, sizeof(*v) * (size_t)(f->nexports + 1));
		if (!v) {
			free(x.clients);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		f->exports = v;
		f->exports[f->nexports++] = x;
	}
	return 0;
}

int reload_config(const struct reload_opts *o, struct reload_result *res, char *err,
		  size_t errlen)
{
	struct rs_config *f = NULL, *r = NULL;
	struct reload_plan plan = { 0 };
	char msg[512];
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (!o->path) {
		snprintf(err, errlen, "started without a configuration file: nothing to reload");
		log_warn("reload: %s", err);
		return -1;
	}
	f = calloc(1, sizeof(*f));
	r = calloc(1, sizeof(*r));
	if (!f || !r) {
		snprintf(err, errlen, "out of memory");
		goto out_nofree;
	}
	if (config_load(o->path, f, err, errlen) < 0) {
		/* config_load() frees what it had loaded */
		log_err("reload: %s; configuration not reloaded, nothing changed", err);
		goto out_nofree;
	}
	if (merge_cli_exports(f, o->cli_exports, o->ncli_exports, err, errlen) < 0) {
		log_err("reload: %s; nothing changed", err);
		goto out_f;
	}
	/* The table holds canonical paths (nfs_export_add() resolves them). */
	for (int i = 0; i < f->nexports; i++) {
		char canon[PATH_MAX];
		if (realpath(f->exports[i].path, canon))
			snprintf(f->exports[i].path, sizeof(f->exports[i].path), "%s", canon);
	}
	if (reload_snapshot(r, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s", msg);
		log_err("reload: %s; nothing changed", err);
		goto out_f;
	}
	/* Settings in effect: what the daemon started with (none given: the
	 * file's own, i.e. nothing to report). */
	{
		const struct rs_config *s = o->started ? o->started : f;
		r->threads = s->threads;
		memcpy(r->control_socket, s->control_socket, sizeof(r->control_socket));
		memcpy(r->state_dir, s->state_dir, sizeof(r->state_dir));
		memcpy(r->portals, s->portals, sizeof(r->portals));
		r->nportals = s->nportals;
		r->iscsi = s->iscsi;
		r->nfs = s->nfs;
	}
	r->nfs_enabled = o->nfs_running;
	snprintf(r->log_level, sizeof(r->log_level), "%s", level_name(rs_log_level_cur));

	if (reload_diff(r, f, o->flags, &plan) < 0) {
		snprintf(err, errlen, "out of memory");
		log_err("reload: %s; nothing changed", err);
		goto out_r;
	}
	apply_src(&plan, o->path, res);
	{
		char extra[160] = "";
		size_t l = 0;
		if (res->deferred)
			l += (size_t)snprintf(extra + l, sizeof(extra) - l, ", %d deferred (target has "
					      "sessions)", res->deferred);
		if (res->failed && l < sizeof(extra))
			l += (size_t)snprintf(extra + l, sizeof(extra) - l, ", %d failed", res->failed);
		if (res->restart && l < sizeof(extra))
			snprintf(extra + l, sizeof(extra) - l, ", %d setting%s need%s a restart",
				 res->restart, res->restart == 1 ? "" : "s", res->restart == 1 ? "s" : "");
		/* The file is the truth (tgt-admin --update): what was made at
		 * run time with ringstoradm and is not in it was undone above. */
		log_notice("reload: %d change%s applied from %s%s; the running configuration "
			   "follows the file (run-time changes not in it are undone%s)",
			   res->applied, res->applied == 1 ? "" : "s", o->path, extra,
			   res->deferred ? "; deferred ones are retried by the next reload" : "");
	}
	ret = 0;
out_r:
	reload_plan_free(&plan);
	config_free(r);
out_f:
	config_free(f);
out_nofree:
	if (f)
		explicit_bzero(f, sizeof(*f));
	free(f);
	free(r);
	return ret;
}
