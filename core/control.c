/* control.c - the control socket: one thread, one request per connection.
 *
 * The control plane may block (opening a backing store can create a file),
 * so it runs in its own thread and never on a reactor.  Each connection is
 * read with a receive timeout and a size bound, so a stuck or hostile local
 * client cannot wedge the daemon; the socket is mode 0600 and the peer's
 * credentials are checked (SO_PEERCRED) as a second line of defence.
 * Wire format: core/control_proto.h.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../conf/config.h"
#include "../nfsgw/exports.h"
#include "../nfsgw/fh.h"
#include "../nfsgw/nlm.h"
#include "../target/registry.h"
#include "control_proto.h"
#include "lease.h"
#include "log.h"
#include "stats.h"

#define CTL_IO_TIMEOUT_S 5

static struct {
	bool running;
	int lfd;
	int stop_fd;
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} ctl = { .lfd = -1, .stop_fd = -1 };

/* ---- request execution ---- */

static int fail(char *msg, size_t msglen, int code, const char *text)
{
	snprintf(msg, msglen, "%s", text);
	return code;
}

static int need_tid(const struct ctl_request *r, char *msg, size_t msglen)
{
	if (!r->has_tid)
		return fail(msg, msglen, EINVAL, "this operation needs --tid");
	return 0;
}

static int need_lun(const struct ctl_request *r, char *msg, size_t msglen)
{
	if (!r->has_lun)
		return fail(msg, msglen, EINVAL, "this operation needs --lun");
	return 0;
}

static bool parse_bool_word(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcasecmp(v, "true")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcasecmp(v, "false")) {
		*out = false;
		return true;
	}
	return false;
}

struct lu_params {
	bool readonly, direct, create, refresh, thin, removable;
	bool non_refresh;       /* any key other than refresh was given */
	uint64_t size;
	char serial[33];
};

/* --params "key=value,key=value" (tgtadm style); bare words mean =1. */
static int parse_lu_params(const char *params, struct lu_params *p, char *msg, size_t msglen)
{
	char buf[1024], *save = NULL, *tok;

	memset(p, 0, sizeof(*p));
	snprintf(buf, sizeof(buf), "%s", params);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : "1";
		bool b;

		if (eq)
			*eq = '\0';
		if (strcmp(tok, "refresh") != 0)
			p->non_refresh = true;
		if (!strcmp(tok, "readonly") || !strcmp(tok, "direct") || !strcmp(tok, "create") ||
		    !strcmp(tok, "refresh") || !strcmp(tok, "thin_provisioning") ||
		    !strcmp(tok, "removable")) {
			if (!parse_bool_word(val, &b)) {
				snprintf(msg, msglen, "--params %s: expected 0/1, got '%.40s'", tok, val);
				return EINVAL;
			}
			if (!strcmp(tok, "readonly"))
				p->readonly = b;
			else if (!strcmp(tok, "direct"))
				p->direct = b;
			else if (!strcmp(tok, "create"))
				p->create = b;
			else if (!strcmp(tok, "thin_provisioning"))
				p->thin = b;
			else if (!strcmp(tok, "removable"))
				p->removable = b;
			else
				p->refresh = b;
		} else if (!strcmp(tok, "size")) {
			if (config_parse_size(val, &p->size) < 0 || p->size == 0) {
				snprintf(msg, msglen, "--params size: invalid size '%.40s'", val);
				return EINVAL;
			}
		} else if (!strcmp(tok, "serial")) {
			if (!*val || strlen(val) > 32) {
				snprintf(msg, msglen, "--params serial: 1..32 printable characters");
				return EINVAL;
			}
			for (const char *s = val; *s; s++) {
				if (*s <= ' ' || *s > '~') {
					snprintf(msg, msglen, "--params serial: 1..32 printable characters");
					return EINVAL;
				}
			}
			snprintf(p->serial, sizeof(p->serial), "%s", val);
		} else {
			snprintf(msg, msglen, "unknown --params key '%.40s' (readonly, direct, create, size, "
				 "serial, thin_provisioning, removable, refresh)", tok);
			return EINVAL;
		}
	}
	return 0;
}

static int exec_target(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	int ret = 0;

	switch (r->op) {
	case CTL_OP_NEW:
		if ((ret = need_tid(r, msg, msglen)))
			return ret;
		if (!r->targetname[0])
			return fail(msg, msglen, EINVAL, "target new needs --targetname");
		return -reg_target_new(r->tid, r->targetname, msg, msglen);
	case CTL_OP_DELETE:
		if ((ret = need_tid(r, msg, msglen)))
			return ret;
		return -reg_target_delete(r->tid, r->force, msg, msglen);
	case CTL_OP_SHOW:
		if (r->has_tid && !reg_target_exists(r->tid)) {
			snprintf(msg, msglen, "can't find the target %d", r->tid);
			return ENOENT;
		}
		reg_show_targets(body, r->has_tid ? r->tid : -1, r->json);
		return 0;
	case CTL_OP_BIND:
	case CTL_OP_UNBIND: {
		bool bind = r->op == CTL_OP_BIND;
		if ((ret = need_tid(r, msg, msglen)))
			return ret;
		if (!r->initiator_address[0] && !r->initiator_name[0])
			return fail(msg, msglen, EINVAL,
				    "bind/unbind needs --initiator-address or --initiator-name");
		if (r->initiator_address[0]) {
			ret = bind ? reg_bind_addr(r->tid, r->initiator_address, msg, msglen)
				   : reg_unbind_addr(r->tid, r->initiator_address, msg, msglen);
			if (ret < 0)
				return -ret;
		}
		if (r->initiator_name[0]) {
			ret = bind ? reg_bind_initiator(r->tid, r->initiator_name, msg, msglen)
				   : reg_unbind_initiator(r->tid, r->initiator_name, msg, msglen);
			if (ret < 0) {
				/* undo the address half so the request is all or nothing */
				if (r->initiator_address[0]) {
					if (bind)
						reg_unbind_addr(r->tid, r->initiator_address, NULL, 0);
					else
						reg_bind_addr(r->tid, r->initiator_address, NULL, 0);
				}
				return -ret;
			}
		}
		return 0;
	}
	default:
		snprintf(msg, msglen, "operation '%s' is not supported in mode target "
			 "(new, delete, show, bind, unbind)", ctl_op_name(r->op));
		return EINVAL;
	}
}

static int exec_lu(const struct ctl_request *r, char *msg, size_t msglen)
{
	struct lu_params lp;
	int ret;

	if ((ret = need_tid(r, msg, msglen)) || (ret = need_lun(r, msg, msglen)))
		return ret;
	switch (r->op) {
	case CTL_OP_NEW: {
		const char *type = reg_bstype_canonical(r->bstype);
		if (!type) {
			snprintf(msg, msglen, "unknown backing store type '%.20s' (rdwr, aio, file, null)",
				 r->bstype);
			return EINVAL;
		}
		if (!strcmp(type, "file") && !r->backing_store[0])
			return fail(msg, msglen, EINVAL, "logicalunit new needs --backing-store");
		if ((ret = parse_lu_params(r->params, &lp, msg, msglen)))
			return ret;
		if (lp.refresh)
			return fail(msg, msglen, EINVAL, "refresh is an update parameter");
		if (r->has_blocksize && r->blocksize != 512 && r->blocksize != 4096) {
			snprintf(msg, msglen, "invalid block size %u (512 or 4096)", r->blocksize);
			return EINVAL;
		}
		if (lp.create && !lp.size && !strcmp(type, "file"))
			return fail(msg, msglen, EINVAL, "--params create=1 needs size=");
		struct reg_lun_spec spec = {
			.lun = r->lun,
			.path = r->backing_store,
			.bstype = type,
			.bs = { .block_size = r->has_blocksize ? r->blocksize : 512,
				.direct = lp.direct, .readonly = lp.readonly,
				.create = lp.create, .size = lp.size },
			.lu = { .serial = lp.serial[0] ? lp.serial : NULL, .readonly = lp.readonly,
				.thin_provisioning = lp.thin,
				.removable = lp.removable },
		};
		return -reg_lun_new(r->tid, &spec, msg, msglen);
	}
	case CTL_OP_DELETE:
		return -reg_lun_delete(r->tid, r->lun, msg, msglen);
	case CTL_OP_UPDATE:
		if ((ret = parse_lu_params(r->params, &lp, msg, msglen)))
			return ret;
		if (lp.size && lp.refresh)
			return fail(msg, msglen, EINVAL, "give either size= or refresh, not both");
		if (lp.size) {
			/* online resize (ftruncate + CAPACITY DATA HAS CHANGED) */
			char *p = strstr(r->params, "size=");
			bool only_size = p && (p == r->params) && !strchr(r->params, ',');
			if (!only_size)
				return fail(msg, msglen, EINVAL,
					    "only 'size=' or 'refresh' can be updated on a live logical unit");
			return -reg_lun_resize(r->tid, r->lun, lp.size, r->force, msg, msglen);
		}
		if (!lp.refresh)
			return fail(msg, msglen, EINVAL,
				    "logicalunit update supports --params size=<bytes|K|M|G|T> (online "
				    "resize) or --params refresh (re-read the backing size)");
		if (lp.non_refresh)
			return fail(msg, msglen, EINVAL,
				    "only 'size=' or 'refresh' can be updated on a live logical unit");
		return -reg_lun_refresh(r->tid, r->lun, msg, msglen);
	default:
		snprintf(msg, msglen, "operation '%s' is not supported in mode logicalunit "
			 "(new, delete, update)", ctl_op_name(r->op));
		return EINVAL;
	}
}

/* tgtadm --mode account.  tid 0 (or no --tid) on bind/unbind means the
 * discovery sessions, as in tgt. */
static int exec_account(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	int tid = r->has_tid ? r->tid : 0;

	switch (r->op) {
	case CTL_OP_NEW:
		if (!r->user[0] || !r->password[0])
			return fail(msg, msglen, EINVAL, "account new needs --user and --password");
		return -reg_account_new(r->user, r->password, msg, msglen);
	case CTL_OP_DELETE:
		if (!r->user[0])
			return fail(msg, msglen, EINVAL, "account delete needs --user");
		return -reg_account_delete(r->user, msg, msglen);
	case CTL_OP_BIND:
		if (!r->user[0])
			return fail(msg, msglen, EINVAL, "account bind needs --user");
		return -reg_account_bind(tid, r->user, r->outgoing, msg, msglen);
	case CTL_OP_UNBIND:
		if (!r->user[0])
			return fail(msg, msglen, EINVAL, "account unbind needs --user");
		return -reg_account_unbind(tid, r->user, r->outgoing, msg, msglen);
	case CTL_OP_SHOW:
		reg_show_accounts(body, r->json);
		return 0;
	default:
		snprintf(msg, msglen, "operation '%s' is not supported in mode account "
			 "(new, delete, bind, unbind, show)", ctl_op_name(r->op));
		return EINVAL;
	}
}

/* ---- NFS exports (--lld nfs --mode export) ---- */

/* The export a user-given path names: by its canonical path (what the table
 * holds), or as given (the directory may be gone since). */
static struct nfs_export *export_lookup(const char *path)
{
	char canon[PATH_MAX];
	struct nfs_export *e = NULL;

	if (realpath(path, canon))
		e = nfs_export_get_by_path(canon);
	if (!e)
		e = nfs_export_get_by_path(path);
	return e;
}

/* The export a request addresses (--path or --export-id), referenced. */
static int export_target(const struct ctl_request *r, struct nfs_export **out, char *msg,
			 size_t msglen)
{
	struct nfs_export *e = NULL;

	*out = NULL;
	if (r->path[0]) {
		e = export_lookup(r->path);
		if (!e) {
			snprintf(msg, msglen, "%.200s is not exported", r->path);
			return ENOENT;
		}
		if (r->has_export_id && e->id != r->export_id) {
			snprintf(msg, msglen, "%.200s has export id %u, not %u", e->path, e->id,
				 r->export_id);
			nfs_export_put(e);
			return EINVAL;
		}
	} else if (r->has_export_id) {
		e = nfs_export_get_by_id(r->export_id);
		if (!e) {
			snprintf(msg, msglen, "no export with id %u", r->export_id);
			return ENOENT;
		}
	} else {
		return fail(msg, msglen, EINVAL, "this operation needs --path or --export-id");
	}
	*out = e;
	return 0;
}

/* export new/update: the exports(5) line of the request, parsed.  The path
 * comes from --export LINE, --path, or (update) the export --export-id names. */
static int export_parse_request(const struct ctl_request *r, char *path, size_t pathlen,
				struct export_client **clients, int *nclients, char *msg, size_t msglen)
{
	char *line;
	const char *p = r->path;
	char idpath[PATH_MAX];
	int ret = 0;

	*clients = NULL;
	*nclients = 0;
	if (r->export_line[0] && (r->path[0] || r->clients[0]))
		return fail(msg, msglen, EINVAL,
			    "give either --export 'PATH CLIENT(opts)...' or --path with --clients");
	if (!r->export_line[0] && !r->clients[0])
		return fail(msg, msglen, EINVAL, "this operation needs --clients 'SPEC(opts) ...' "
			    "(with --path) or --export 'PATH SPEC(opts) ...'");
	if (!r->export_line[0] && !p[0]) {
		struct nfs_export *e;
		if (r->op != CTL_OP_UPDATE || !r->has_export_id)
			return fail(msg, msglen, EINVAL, "this operation needs --path");
		if ((ret = export_target(r, &e, msg, msglen)))
			return ret;
		snprintf(idpath, sizeof(idpath), "%s", e->path);
		nfs_export_put(e);
		p = idpath;
	}
	line = malloc(CTL_LINE_MAX + 8);
	if (!line)
		return fail(msg, msglen, ENOMEM, "out of memory");
	if (r->export_line[0])
		snprintf(line, CTL_LINE_MAX + 8, "%s", r->export_line);
	else if (config_export_line(p, r->clients, line, CTL_LINE_MAX + 8) < 0)
		ret = fail(msg, msglen, EINVAL, "export path and clients too long");
	if (!ret && exports_parse_line(line, path, pathlen, clients, nclients, msg, msglen) < 0)
		ret = EINVAL;
	free(line);
	return ret;
}

static int exec_export(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	struct export_client *clients = NULL;
	struct nfs_export *old = NULL;
	char path[PATH_MAX];
	int n = 0, ret;

	switch (r->op) {
	case CTL_OP_NEW:
	case CTL_OP_UPDATE:
		if ((ret = export_parse_request(r, path, sizeof(path), &clients, &n, msg, msglen)))
			return ret;
		old = export_lookup(path);
		if (r->op == CTL_OP_NEW && old) {
			snprintf(msg, msglen, "%.200s is already exported (id %u)", old->path, old->id);
			ret = EEXIST;
			goto out;
		}
		if (r->op == CTL_OP_UPDATE && !old) {
			snprintf(msg, msglen, "%.200s is not exported", path);
			ret = ENOENT;
			goto out;
		}
		if (r->op == CTL_OP_UPDATE && r->has_export_id && old->id != r->export_id) {
			snprintf(msg, msglen, "%.200s has export id %u, not %u", old->path, old->id,
				 r->export_id);
			ret = EINVAL;
			goto out;
		}
		{
			/* The export id is in every file handle (exports.h): --export-id
			 * on new is fsid=; an update keeps the id unless it names
			 * another, so that mounted clients do not go stale. */
			bool given = false;
			uint32_t fsid = 0;
			for (int i = 0; i < n; i++) {
				if (!clients[i].opts.fsid_set)
					continue;
				if (given && clients[i].opts.fsid != fsid) {
					ret = fail(msg, msglen, EINVAL, "the clients disagree on fsid=");
					goto out;
				}
				given = true;
				fsid = clients[i].opts.fsid;
			}
			if (r->op == CTL_OP_NEW && r->has_export_id) {
				if (given && fsid != r->export_id) {
					snprintf(msg, msglen, "--export-id %u but fsid=%u", r->export_id, fsid);
					ret = EINVAL;
					goto out;
				}
				given = true;
				fsid = r->export_id;
			} else if (r->op == CTL_OP_UPDATE && !given) {
				for (int i = 0; i < old->nclients && !given; i++) {
					if (old->clients[i].opts.fsid_set) {
						given = true;
						fsid = old->clients[i].opts.fsid;
					}
				}
			}
			for (int i = 0; given && i < n; i++) {
				clients[i].opts.fsid_set = true;
				clients[i].opts.fsid = fsid;
			}
		}
		if (r->op == CTL_OP_NEW)
			ret = nfs_export_add(path, clients, n, msg, msglen) < 0 ? EINVAL : 0;
		else
			ret = nfs_export_update(old->path, clients, n, msg, msglen) < 0 ? EINVAL : 0;
		if (!ret && !config_nfs_enabled())
			snprintf(msg, msglen, "warning: the NFS gateway is not enabled (nfs.enabled = "
				 "false): the export is recorded but not served");
out:
		if (old)
			nfs_export_put(old);
		free(clients);
		return ret;
	case CTL_OP_DELETE:
		if ((ret = export_target(r, &old, msg, msglen)))
			return ret;
		snprintf(path, sizeof(path), "%s", old->path);
		nfs_export_put(old);
		if (nfs_export_delete(path, msg, msglen) < 0)
			return ENOENT;    /* deleted meanwhile */
		return 0;
	case CTL_OP_SHOW:
		if (r->path[0] || r->has_export_id)
			return fail(msg, msglen, EINVAL, "export show lists every export "
				    "(--path/--export-id are not used)");
		nfs_exports_show(body, r->json);
		return 0;
	default:
		snprintf(msg, msglen, "operation '%s' is not supported in mode export "
			 "(new, delete, update, show)", ctl_op_name(r->op));
		return EINVAL;
	}
}

static int exec_sessions(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	int ret;

	switch (r->op) {
	case CTL_OP_SHOW:
		ret = reg_show_sessions(body, r->has_tid ? r->tid : -1, r->has_sid ? r->sid : 0,
					r->mode == CTL_MODE_SESSION, r->json);
		if (ret)
			snprintf(msg, msglen, "can't find the %s", r->has_sid ? "session" : "target");
		return -ret;
	case CTL_OP_DELETE:
		if ((ret = need_tid(r, msg, msglen)))
			return ret;
		if (!r->has_sid)
			return fail(msg, msglen, EINVAL, "this operation needs --sid");
		return -reg_session_delete(r->tid, r->sid, r->has_cid ? r->cid : -1, msg, msglen);
	default:
		return fail(msg, msglen, EINVAL, "mode conn/session supports --op show and --op delete");
	}
}

/* NLM locks (issue 4 item 2): list them, or break those of a client
 * (--initiator-address: its caller_name or address) and/or on a file
 * (--path: the server path), all of them with neither. */
static int exec_lock(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	int n;

	switch (r->op) {
	case CTL_OP_SHOW:
		if (r->path[0] || r->initiator_address[0])
			return fail(msg, msglen, EINVAL, "lock show lists every lock "
				    "(--path/--initiator-address are for delete)");
		nlm_show_locks(body, r->json);
		return 0;
	case CTL_OP_DELETE:
		n = nlm_break_locks(r->initiator_address[0] ? r->initiator_address : NULL,
				    r->path[0] ? r->path : NULL, msg, msglen);
		if (n < 0)
			return ENOENT;
		snprintf(msg, msglen, "%d lock(s) broken", n);
		return 0;
	default:
		return fail(msg, msglen, EINVAL, "mode lock supports --op show and --op delete");
	}
}

/* ---- image leases (--mode lease; core/lease.h) ---- */

/* The name of target tid, or false.  The registry has no tid -> name
 * accessor, so read it from its JSON show (names are iSCSI names: no
 * quotes or escapes in them, RFC 7143 4.2.7.2). */
static bool tid_target_name(int tid, char *name, size_t len)
{
	char *buf = NULL, *p, *q;
	size_t blen = 0;
	FILE *f;
	bool ok = false;

	if (!reg_target_exists(tid))
		return false;
	f = open_memstream(&buf, &blen);
	if (!f)
		return false;
	reg_show_targets(f, tid, true);
	fclose(f);
	if (buf && (p = strstr(buf, "\"name\": \"")) != NULL) {
		p += 9;
		q = strchr(p, '"');
		if (q && (size_t)(q - p) < len && q > p) {
			memcpy(name, p, (size_t)(q - p));
			name[q - p] = '\0';
			ok = true;
		}
	}
	free(buf);
	return ok;
}

/* The lease object of an iSCSI request: the LU's NAA when it exists (found
 * = true), else the lease recorded for that target/LUN (found = false). */
static int lease_scsi_object(const struct ctl_request *r, struct lease_info *obj, bool *found,
			     char *msg, size_t msglen)
{
	struct iscsi_target *t = NULL;
	struct scsi_lu *lu = NULL;
	bool named;

	if (!r->has_tid || !r->has_lun)
		return fail(msg, msglen, EINVAL, "an iSCSI lease needs --tid and --lun");
	obj->key.kind = LEASE_SCSI;
	obj->tid = r->tid;
	obj->lun = r->lun;
	named = tid_target_name(r->tid, obj->target, sizeof(obj->target));
	if (named && (t = reg_target_get(obj->target)) != NULL) {
		lu = reg_target_lun_get(t, r->lun);
		reg_target_put(t);
	}
	if (lu) {
		memcpy(obj->key.naa, lu->naa, sizeof(obj->key.naa));
		scsi_lu_put(lu);
		*found = true;
		return 0;
	}
	*found = false;
	if (lease_find_scsi(r->tid, named ? obj->target : NULL, r->lun, &obj->key) == 0)
		return 0;
	if (!named)
		snprintf(msg, msglen, "can't find the target %d", r->tid);
	else
		snprintf(msg, msglen, "can't find LUN %" PRIu64 " of target %d", r->lun, r->tid);
	return ENOENT;
}

/* The lease object of an NFS request (--path FILE, or --export-id N --file
 * REL): the file's identity from its handle when it exists, else the lease
 * recorded for that export and path. */
static int lease_nfs_object(const struct ctl_request *r, struct lease_info *obj, bool *found,
			    char *msg, size_t msglen)
{
	char given[PATH_MAX], canon[PATH_MAX];
	struct nfs_export *e = NULL;
	const char *rest = NULL, *path;
	struct nfs_fh fh;
	struct stat st;
	int fd, rc;

	obj->key.kind = LEASE_NFS;
	*found = false;
	if (r->path[0] && r->file[0])
		return fail(msg, msglen, EINVAL, "give --path FILE or --export-id N --file RELPATH");
	if (r->path[0]) {
		if (r->path[0] != '/')
			return fail(msg, msglen, EINVAL, "--path must be absolute");
		if (strlen(r->path) >= sizeof(given))
			return fail(msg, msglen, EINVAL, "path too long");
		strcpy(given, r->path);
	} else {
		if (!r->has_export_id || !r->file[0])
			return fail(msg, msglen, EINVAL, "an NFS lease needs --path FILE or "
				    "--export-id N --file RELPATH");
		e = nfs_export_get_by_id(r->export_id);
		if (!e) {
			snprintf(msg, msglen, "no export with id %u", r->export_id);
			return ENOENT;
		}
		const char *rel = r->file;
		while (*rel == '/')
			rel++;
		if ((size_t)snprintf(given, sizeof(given), "%s/%s", e->path, rel) >= sizeof(given)) {
			nfs_export_put(e);
			return fail(msg, msglen, EINVAL, "path too long");
		}
		nfs_export_put(e);
		e = NULL;
	}
	/* Canonical (what the export table holds).  A missing file can
	 * still name a lease recorded under that path. */
	errno = 0;
	path = realpath(given, canon) ? canon : given;
	int rp_err = errno ? errno : ENOENT;
	e = nfs_export_get_covering(path, &rest);
	if (!e) {
		snprintf(msg, msglen, "%.200s is not under an NFS export", path);
		return ENOENT;
	}
	obj->key.export_id = e->id;
	if (strlen(path) >= sizeof(obj->path)) {
		nfs_export_put(e);
		return fail(msg, msglen, EINVAL, "path too long");
	}
	strcpy(obj->path, path);
	if (r->has_export_id && e->id != r->export_id && r->path[0]) {
		snprintf(msg, msglen, "%.200s is in export %u, not %u", path, e->id, r->export_id);
		nfs_export_put(e);
		return EINVAL;
	}
	if (path != canon) {
		rc = rp_err;
		nfs_export_put(e);
		if (lease_find_nfs(obj->key.export_id, obj->path, &obj->key) == 0)
			return 0;
		snprintf(msg, msglen, "%.200s: %s", given, strerror(rc));
		return rc;
	}
	if (!*rest) {
		nfs_export_put(e);
		return fail(msg, msglen, EINVAL, "a lease is on a file, not on an export's root");
	}
	/* rest is canonical (no symlinks, no ..) and inside the export */
	fd = openat(e->root_fd, rest, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno;
		nfs_export_put(e);
		snprintf(msg, msglen, "%.200s: %s", path, strerror(rc));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		nfs_export_put(e);
		snprintf(msg, msglen, "%.200s is not a regular file", path);
		return EINVAL;
	}
	/* The same handle the gateway hands to clients (nfsgw/fh.c). */
	rc = fh_make(e->id, fd, "", &fh);
	close(fd);
	nfs_export_put(e);
	if (rc < 0) {
		snprintf(msg, msglen, "%.200s: cannot build its file handle: %s%s", path,
			 strerror(-rc), rc == -EINVAL ? " (is the NFS gateway enabled?)" : "");
		return -rc;
	}
	if (lease_nfs_fid(fh.data, fh.len, obj->key.fid, &obj->key.fid_len) < 0)
		return fail(msg, msglen, EINVAL, "unexpected file handle layout");
	*found = true;
	return 0;
}

static void lease_result(FILE *body, bool json, bool held, const char *holder, uint64_t epoch)
{
	if (!json) {
		fprintf(body, "%" PRIu64 "\n", epoch);
		return;
	}
	fprintf(body, "{\"epoch\": %" PRIu64 ", \"held\": %s, \"holder\": \"", epoch,
		held ? "true" : "false");
	for (const unsigned char *p = (const unsigned char *)holder; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(body, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(body, "\\u%04x", *p);
		else
			fputc(*p, body);
	}
	fputs("\"}\n", body);
}

/* --mode lease: show | acquire | transfer | release (issue 5 item 1).
 * The body of acquire/transfer/release is the resulting epoch (--json:
 * {"epoch": N, "held": B, "holder": "..."}); a stale epoch is ESTALE. */
static int exec_lease(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	bool nfs = r->path[0] || r->file[0] || r->has_export_id;
	bool scsi = r->has_tid || r->has_lun;
	struct lease_info *obj, cur;
	bool found = false;
	uint64_t epoch = 0;
	int ret;

	if (nfs && scsi)
		return fail(msg, msglen, EINVAL, "give --tid/--lun (iSCSI) or --path / --export-id "
			    "--file (NFS), not both");
	if (r->op == CTL_OP_SHOW && !nfs && !scsi) {
		lease_show(body, r->json, NULL);
		return 0;
	}
	switch (r->op) {
	case CTL_OP_SHOW:
	case CTL_OP_ACQUIRE:
	case CTL_OP_TRANSFER:
	case CTL_OP_RELEASE:
		break;
	default:
		snprintf(msg, msglen, "operation '%s' is not supported in mode lease "
			 "(show, acquire, transfer, release)", ctl_op_name(r->op));
		return EINVAL;
	}
	if (!nfs && !scsi)
		return fail(msg, msglen, EINVAL, "this operation needs --tid and --lun (iSCSI) or "
			    "--path FILE / --export-id N --file RELPATH (NFS)");
	if ((r->op == CTL_OP_TRANSFER || r->op == CTL_OP_RELEASE) && !r->has_epoch)
		return fail(msg, msglen, EINVAL, "transfer and release need --epoch (the current "
			    "epoch: the fencing token)");
	if ((r->op == CTL_OP_ACQUIRE || r->op == CTL_OP_TRANSFER) && !r->holder[0])
		return fail(msg, msglen, EINVAL, "acquire and transfer need --holder");
	obj = calloc(1, sizeof(*obj));
	if (!obj)
		return fail(msg, msglen, ENOMEM, "out of memory");
	ret = nfs ? lease_nfs_object(r, obj, &found, msg, msglen)
		  : lease_scsi_object(r, obj, &found, msg, msglen);
	if (ret)
		goto out;
	switch (r->op) {
	case CTL_OP_SHOW:
		/* An existing object without a lease is not an error: an empty
		 * list ({"leases": []}), so that scripts can tell "free" from
		 * "no such LUN/file" (ENOENT, above). */
		if (lease_show(body, r->json, &obj->key) == 0)
			snprintf(msg, msglen, "there is no lease on that %s", nfs ? "file" : "LUN");
		break;
	case CTL_OP_ACQUIRE:
		if (!found) {
			/* never lease what nobody can reach: the identity must be real */
			snprintf(msg, msglen, "%s does not exist (a lease is taken on a live %s)",
				 nfs ? obj->path : "that LUN", nfs ? "file" : "LUN");
			ret = ENOENT;
			break;
		}
		ret = lease_acquire(obj, r->holder, r->has_epoch, r->epoch, &epoch, msg, msglen);
		if (!ret)
			lease_result(body, r->json, true, r->holder, epoch);
		break;
	case CTL_OP_TRANSFER:
		ret = lease_transfer(obj, r->holder, r->epoch, &epoch, msg, msglen);
		if (!ret)
			lease_result(body, r->json, true, r->holder, epoch);
		break;
	case CTL_OP_RELEASE:
		ret = lease_release(obj, r->holder, r->epoch, msg, msglen);
		if (!ret && lease_get(&obj->key, &cur) == 0)
			lease_result(body, r->json, false, cur.holder, cur.epoch);
		break;
	default:
		break;
	}
out:
	free(obj);
	return ret;
}

/* ---- statistics (core/stats.h) ---- */

/* The registry offers no iteration over targets, so the collector reads
 * its own tgtadm-layout show output ("Target <tid>: <name>" at column 0,
 * "Initiator: <name>" in the session list): iSCSI names contain no blanks
 * (RFC 7143 4.2.7.2), and every target found is then taken by name with a
 * reference, so a concurrent delete only drops it from the snapshot. */
static char *show_to_string(int tid, bool sessions)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m)
		return NULL;
	if (sessions)
		reg_show_sessions(m, tid, 0, false, false);
	else
		reg_show_targets(m, tid, false);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void collect_initiators(struct stats_target *st)
{
	char *buf = show_to_string(st->tid, true), *save = NULL, *line;

	if (!buf)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " ");
		if (!strncmp(line, "Initiator: ", 11))
			stats_target_add_initiator(st, line + 11);
	}
	free(buf);
}

static int collect_target(struct stats_snap *s, int tid, const char *name, uint64_t **luns,
			  int *cap)
{
	struct iscsi_target *t = reg_target_get(name);
	struct stats_target *st;
	int n, nsess;

	if (!t)
		return 0;
	if (reg_target_tid(t) != tid) {
		reg_target_put(t);
		return 0;
	}
	nsess = reg_target_nsessions(tid);
	st = stats_snap_add_target(s, tid, name, nsess > 0 ? nsess : 0);
	if (!st) {
		reg_target_put(t);
		return -ENOMEM;
	}
	collect_initiators(st);
	while ((n = reg_target_luns(t, *luns, *cap)) > *cap) {
		uint64_t *nl = realloc(*luns, (size_t)n * sizeof(**luns));
		if (!nl) {
			reg_target_put(t);
			return -ENOMEM;
		}
		*luns = nl;
		*cap = n;
	}
	for (int i = 0; i < n; i++) {
		struct scsi_lu *lu = reg_target_lun_get(t, (*luns)[i]);
		struct stats_entry *e;

		if (!lu)
			continue;
		e = stats_snap_add(s, STATS_KIND_LU);
		if (!e) {
			scsi_lu_put(lu);
			reg_target_put(t);
			return -ENOMEM;
		}
		e->tid = tid;
		snprintf(e->target, sizeof(e->target), "%s", name);
		e->lun = (*luns)[i];
		/* the reference keeps the LU, and so its counters, alive */
		struct stats_obj *o = stats_lu_obj(lu);
		if (o)
			stats_entry_fill(e, o, s->time_ns);
		scsi_lu_put(lu);
	}
	reg_target_put(t);
	return 0;
}

static void collect_export(const struct nfs_export *x, void *arg)
{
	struct stats_snap *s = arg;
	struct stats_obj *o = stats_nfs_export(x->id);
	struct stats_entry *e = stats_snap_add(s, STATS_KIND_EXPORT);

	if (!e)
		return;
	e->export_id = x->id;
	snprintf(e->path, sizeof(e->path), "%s", x->path);
	if (o)
		stats_entry_fill(e, o, s->time_ns);
}

/* stats_collect_fn: the control thread's and the Prometheus thread's view
 * of every LU of the selected targets and every NFS export. */
static int collect_stats(struct stats_snap *s, int sel)
{
	char *buf, *save = NULL, *line;
	uint64_t *luns = NULL;
	int cap = 0, ret = 0;

	if (sel != STATS_SEL_EXPORTS) {
		buf = show_to_string(sel >= 0 ? sel : -1, false);
		if (!buf)
			return -ENOMEM;
		for (line = strtok_r(buf, "\n", &save); line && !ret; line = strtok_r(NULL, "\n", &save)) {
			char name[STATS_NAME_MAX];
			int tid;
			if (strncmp(line, "Target ", 7) != 0 ||
			    sscanf(line, "Target %d: %223s", &tid, name) != 2)
				continue;
			ret = collect_target(s, tid, name, &luns, &cap);
		}
		free(buf);
		free(luns);
	}
	if (!ret && (sel == STATS_SEL_ALL || sel == STATS_SEL_EXPORTS))
		nfs_exports_foreach(collect_export, s);
	return ret;
}

/* --op stat (issue 7 item 4): --mode sys: every target and export;
 * --mode target [--tid N]; --lld nfs --mode export: the exports.  The body
 * is the text or --json rendering of the cumulative counters, or with
 * --params raw the raw snapshot from which ringstoradm --interval computes
 * rates (two snapshots, core/stats.h). */
static int exec_stat(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	struct stats_snap s;
	bool raw = false;
	int sel, ret;

	if (r->params[0]) {
		if (strcmp(r->params, "raw") != 0)
			return fail(msg, msglen, EINVAL, "stat: unknown --params (raw)");
		raw = true;
	}
	switch (r->mode) {
	case CTL_MODE_SYS:
		sel = STATS_SEL_ALL;
		break;
	case CTL_MODE_TARGET:
		sel = STATS_SEL_TARGETS;
		if (r->has_tid) {
			if (!reg_target_exists(r->tid)) {
				snprintf(msg, msglen, "can't find the target %d", r->tid);
				return ENOENT;
			}
			sel = r->tid;
		}
		break;
	case CTL_MODE_EXPORT:
		sel = STATS_SEL_EXPORTS;
		break;
	default:
		return fail(msg, msglen, EINVAL, "--op stat works in mode system, target and export");
	}
	ret = stats_collect(&s, sel);
	if (ret < 0) {
		stats_snap_free(&s);
		return fail(msg, msglen, -ret, strerror(-ret));
	}
	if (raw)
		stats_snap_write_raw(body, &s);
	else if (r->json)
		stats_render_json(body, &s, 0);
	else
		stats_render_text(body, &s, 0);
	stats_snap_free(&s);
	return 0;
}

int control_execute(const struct ctl_request *r, FILE *body, char *msg, size_t msglen)
{
	int ret;

	msg[0] = '\0';
	if (r->op == CTL_OP_STAT) {
		ret = exec_stat(r, body, msg, msglen);
		if (!ret)
			snprintf(msg, msglen, "ok");
		return ret;
	}
	/* --op dump works in any mode: the whole running configuration. */
	if (r->op == CTL_OP_DUMP) {
		reg_dump_config(body);
		config_dump_nfs(body);
		snprintf(msg, msglen, "ok");
		return 0;
	}
	switch (r->mode) {
	case CTL_MODE_TARGET:
		ret = exec_target(r, body, msg, msglen);
		break;
	case CTL_MODE_LU:
		ret = exec_lu(r, msg, msglen);
		break;
	case CTL_MODE_SYS:
		if (r->op != CTL_OP_SHOW)
			return fail(msg, msglen, EINVAL, "mode system supports --op show and --op dump");
		reg_show_sys(body, r->json);
		ret = 0;
		break;
	case CTL_MODE_CONN:
	case CTL_MODE_SESSION:
		ret = exec_sessions(r, body, msg, msglen);
		break;
	case CTL_MODE_ACCOUNT:
		ret = exec_account(r, body, msg, msglen);
		break;
	case CTL_MODE_EXPORT:
		ret = exec_export(r, body, msg, msglen);
		break;
	case CTL_MODE_LOCK:
		ret = exec_lock(r, body, msg, msglen);
		break;
	case CTL_MODE_LEASE:
		ret = exec_lease(r, body, msg, msglen);
		break;
	default:
		return fail(msg, msglen, EINVAL, "unknown mode");
	}
	if (ret < 0)
		ret = -ret;
	if (ret && !msg[0])
		snprintf(msg, msglen, "%s", strerror(ret));
	if (!ret && !msg[0])
		snprintf(msg, msglen, "ok");
	return ret;
}

/* ---- the socket ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void reply(int fd, int code, const char *msg, const char *body, size_t blen)
{
	char line[CTL_MSG_MAX + 32];
	int n = ctl_status_format(line, sizeof(line), code, msg);

	if (write_all(fd, line, (size_t)n) == 0 && body && blen)
		write_all(fd, body, blen);
}

/* After answering: send EOF and swallow what the client may still send
 * (bounded), so that closing with unread input does not reset the
 * connection before the client has read our answer. */
static void finish(int fd)
{
	char sink[4096];
	size_t total = 0;
	struct timeval tv = { .tv_sec = 1 };

	shutdown(fd, SHUT_WR);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (total < (1u << 20)) {
		ssize_t n = recv(fd, sink, sizeof(sink), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static void serve_one(int fd)
{
	static char buf[CTL_REQ_MAX + 1];
	struct ctl_request *req;
	struct timeval tv = { .tv_sec = CTL_IO_TIMEOUT_S };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char msg[CTL_MSG_MAX];
	size_t len = 0, end = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Mode 0600 already keeps others out; this also covers a socket
	 * created in a directory with a looser umask history. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
	    cred.uid != 0 && cred.uid != geteuid()) {
		reply(fd, EPERM, "permission denied", NULL, 0);
		return;
	}
	while (!end) {
		ssize_t n;
		if (len == CTL_REQ_MAX) {
			reply(fd, EINVAL, "request too large", NULL, 0);
			return;
		}
		n = recv(fd, buf + len, CTL_REQ_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				reply(fd, ETIMEDOUT, "timed out waiting for the request", NULL, 0);
			else if (len)
				reply(fd, EINVAL, "truncated request", NULL, 0);
			return;
		}
		len += (size_t)n;
		end = ctl_request_complete(buf, len);
	}
	req = malloc(sizeof(*req));
	if (!req) {
		reply(fd, ENOMEM, "out of memory", NULL, 0);
		return;
	}
	if (ctl_request_decode(buf, end, req, msg, sizeof(msg)) < 0) {
		reply(fd, EINVAL, msg, NULL, 0);
		explicit_bzero(req, sizeof(*req));
		free(req);
		explicit_bzero(buf, end);
		return;
	}
	char *body = NULL;
	size_t blen = 0;
	FILE *out = open_memstream(&body, &blen);
	if (!out) {
		reply(fd, ENOMEM, "out of memory", NULL, 0);
		free(req);
		return;
	}
	int code = control_execute(req, out, msg, sizeof(msg));
	fclose(out);
	if (req->mode == CTL_MODE_LEASE && req->op != CTL_OP_SHOW)
		/* lease changes are the fencing audit trail: always logged */
		log_notice("control: lease %s: %s", ctl_op_name(req->op), msg);
	else if (code)
		log_info("control: %s %s: %s", ctl_mode_name(req->mode), ctl_op_name(req->op), msg);
	else if (req->op != CTL_OP_SHOW && req->op != CTL_OP_STAT)
		log_info("control: %s %s done", ctl_mode_name(req->mode), ctl_op_name(req->op));
	reply(fd, code, msg, body, blen);
	/* account new carries a password, dump returns them all: do not
	 * leave them lying in freed memory. */
	if (body)
		explicit_bzero(body, blen);
	free(body);
	explicit_bzero(req, sizeof(*req));
	free(req);
	explicit_bzero(buf, end);
}

static void *control_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = ctl.lfd, .events = POLLIN },
			{ .fd = ctl.stop_fd, .events = POLLIN },
		};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		int fd = accept4(ctl.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				log_warn("control: accept: %s", strerror(errno));
			continue;
		}
		serve_one(fd);
		finish(fd);
		close(fd);
	}
	return NULL;
}

/* mkdir -p of the socket's directory, 0755 (like /run/tgtd). */
static int make_parent(const char *path)
{
	char dir[sizeof(ctl.path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int control_start(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (ctl.running)
		return -EBUSY;
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
		log_err("control socket path '%s' is empty or too long (max %zu)", path ? path : "",
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = make_parent(path);
	if (ret < 0) {
		log_err("control socket %s: cannot create its directory: %s", path, strerror(-ret));
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		log_err("control socket: %s", strerror(errno));
		return ret;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("control socket %s: exists and is not a socket", path);
			close(fd);
			return -EEXIST;
		}
		/* A live daemon answers; a stale socket from a crash refuses. */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			log_err("control socket %s: another ringstord is running", path);
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			log_err("control socket: %s", strerror(errno));
			return ret;
		}
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		log_err("control socket %s: bind: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	/* Restrict before listen(): until then nobody can connect. */
	if (chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		ret = -errno;
		log_err("control socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return ret;
	}
	ctl.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ctl.stop_fd < 0) {
		ret = -errno;
		close(fd);
		unlink(path);
		return ret;
	}
	ctl.lfd = fd;
	snprintf(ctl.path, sizeof(ctl.path), "%s", path);
	stats_set_collector(collect_stats);
	/* The control thread must not take the daemon's signals. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&ctl.thread, NULL, control_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		close(ctl.stop_fd);
		close(fd);
		unlink(path);
		ctl.lfd = ctl.stop_fd = -1;
		log_err("control thread: %s", strerror(ret));
		return -ret;
	}
	ctl.running = true;
	return 0;
}

void control_stop(void)
{
	uint64_t one = 1;

	if (!ctl.running)
		return;
	if (write(ctl.stop_fd, &one, sizeof(one)) < 0)
		log_warn("control: cannot wake the control thread: %s", strerror(errno));
	pthread_join(ctl.thread, NULL);
	close(ctl.lfd);
	close(ctl.stop_fd);
	unlink(ctl.path);
	ctl.lfd = ctl.stop_fd = -1;
	ctl.running = false;
}
