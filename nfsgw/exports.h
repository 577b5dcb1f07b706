/* exports.h - NFS exports with /etc/exports (exports(5)) semantics.
 *
 * An export is a directory plus an ordered list of client specs, each with
 * options.  The first client spec that matches the caller wins (exports(5)).
 * Thread safety: the table is changed by the control thread under a lock;
 * lookups return a referenced export (nfs_export_put()).
 */
#ifndef RS_EXPORTS_H
#define RS_EXPORTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "../core/acl.h"
#include "rpc.h"

enum export_client_kind {
	EXPORT_CLIENT_ANY,          /* "*" (also an empty client before "(opts)") */
	EXPORT_CLIENT_ADDR,         /* address or CIDR (IPv4/IPv6): struct acl_addr */
	EXPORT_CLIENT_HOST,         /* exact host name, resolved when the export is added */
	EXPORT_CLIENT_WILDCARD,     /* "*.example.com", matched against the reverse name */
};

struct export_options {
	bool rw;                    /* default ro */
	bool sync;                  /* default sync; async is explicit and unsafe */
	bool root_squash;           /* default on */
	bool all_squash;
	uint32_t anonuid, anongid;  /* default 65534 */
	bool secure;                /* default: source port < 1024 required */
	bool fsid_set;
	uint32_t fsid;
	/* sec= (default "sys"): which RPC flavors the client may use.  AUTH_NONE
	 * callers (and AUTH_SYS ones when "sys" is not listed) are treated as
	 * the anonymous user.  Fields added by the front-end helper. */
	bool auth_sys;
	bool auth_none;
};

struct export_client {
	enum export_client_kind kind;
	char spec[256];             /* as written */
	struct acl_addr addr;       /* EXPORT_CLIENT_ADDR (and resolved HOST addresses) */
	struct acl_addr *host_addrs;
	int nhost_addrs;
	struct export_options opts;
};

struct nfs_export {
	uint32_t id;                /* persistent export id (fsid= or derived from the path) */
	char path[4096];            /* absolute, canonical */
	int root_fd;                /* O_PATH|O_DIRECTORY of path */
	struct export_client *clients;
	int nclients;
	int refcnt;                 /* atomic */
};

/* Parse one exports(5) line ("/srv/x  10.0.0.0/8(rw,no_root_squash) *(ro)").
 * Unknown options are refused with a message.  0 or -1 (err filled). */
int exports_parse_line(const char *line, char *path, size_t pathlen,
		       struct export_client **clients, int *nclients, char *err, size_t errlen);
/* Parse "rw,sync,no_root_squash,anonuid=1000" into opts (defaults applied first). */
int exports_parse_options(const char *opts, struct export_options *o, char *err, size_t errlen);

/* The export table. */
int nfs_export_add(const char *path, const struct export_client *clients, int nclients,
		   char *err, size_t errlen);
int nfs_export_update(const char *path, const struct export_client *clients, int nclients,
		      char *err, size_t errlen);
int nfs_export_delete(const char *path, char *err, size_t errlen);
struct nfs_export *nfs_export_get_by_id(uint32_t id);
struct nfs_export *nfs_export_get_by_path(const char *path);
void nfs_export_put(struct nfs_export *e);
void nfs_exports_show(FILE *out, bool json);
/* Call fn for every export (MOUNT EXPORT procedure). */
void nfs_exports_foreach(void (*fn)(const struct nfs_export *e, void *arg), void *arg);
void nfs_exports_clear(void);

/* First matching client spec for a peer (hostname may be NULL: resolved lazily
 * for WILDCARD specs only, off the reactor).  NULL = not allowed. */
const struct export_client *nfs_export_match(const struct nfs_export *e,
					     const struct sockaddr *peer, const char *hostname);

/* ---- additions (front end) ---- */

/* Canonical option string as `exportfs -v` prints it ("rw,sync,root_squash,..."). */
void exports_options_str(const struct export_options *o, char *buf, size_t len);

/* Map the caller's credential per the matching client's options (exports(5)
 * "User ID Mapping"): all_squash (and AUTH_NONE, and AUTH_SYS without
 * sec=sys) -> anonuid/anongid and no supplementary groups; root_squash ->
 * uid 0 becomes anonuid, gid 0 (also among the groups) becomes anongid. */
void nfs_export_squash(const struct export_options *o, struct rpc_auth *a);

/* The export that contains path (the longest export path that is path itself
 * or one of its ancestors), referenced; *rest points at the remainder of path
 * ("" or "sub/dir", never starting with '/').  path must be normalised
 * (absolute, no "//", no "." or ".." components, no trailing '/'). */
struct nfs_export *nfs_export_get_covering(const char *path, const char **rest);

/* True if a client spec needs the caller's host name (wildcards). */
bool nfs_export_needs_hostname(const struct nfs_export *e);
/* Reverse-resolved (and forward-confirmed) host name of a peer, cached so that
 * nfs_export_match(..., NULL) can match wildcard specs on the reactor.  The
 * MOUNT server fills it (off the reactor) at MNT time. */
void nfs_export_cache_hostname(const struct sockaddr *peer, const char *name);
/* Blocking (call off the reactor): reverse-resolve and forward-confirm peer
 * into name, caching the result.  0 or -1 (no confirmed name). */
int nfs_export_resolve_peer(const struct sockaddr *peer, char *name, size_t len);

#endif
