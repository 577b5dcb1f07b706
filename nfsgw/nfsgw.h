/* nfsgw.h - the NFSv3 gateway's entry points for the daemon. */
#ifndef RS_NFSGW_H
#define RS_NFSGW_H

#include <stddef.h>
#include <stdint.h>

#include "../core/reactor.h"

#define NFSGW_MAX_LISTEN 8

struct nfsgw_endpoint {
	char addr[64];              /* numeric: "127.0.0.1", "::1", "0.0.0.0", "::" */
	uint16_t port;
};

struct nfsgw_settings {
	char bind_addr[64];         /* "127.0.0.1", "0.0.0.0", "::" */
	uint16_t nfs_port;          /* default 2049 */
	uint16_t mount_port;        /* default 20048 */
	uint16_t nlm_port;          /* default 32803 */
	int portmap;                /* 3: always the built-in portmapper on portmap_port;
				     * 1: built-in portmapper on portmap_port if no rpcbind answers;
				     * 0: never; 2: always register with rpcbind */
	uint16_t portmap_port;      /* default 111 */
	char state_dir[4096];       /* file handle secret, NSM state */
	/* NFS and MOUNT (and NLM) endpoints: --nfs-listen / nfs.listen.  When
	 * nlisten is 0 the single endpoint is bind_addr:nfs_port; otherwise
	 * nfs_port is listen[0].port (what the portmapper announces) and
	 * mount_port / nlm_port listeners open on every listen address. */
	struct nfsgw_endpoint listen[NFSGW_MAX_LISTEN];
	int nlisten;
	char portmap_addr[64];      /* built-in portmapper: "" = every listen address */
};

/* Once, before the reactors start: register programs, load the handle secret. */
int nfsgw_init(const struct nfsgw_settings *s);
/* Per reactor, on its thread: listen (SO_REUSEPORT sockets opened by the caller
 * through nfsgw_open_sockets()). */
int nfsgw_open_sockets(const struct nfsgw_settings *s, int *fds, int max);
int nfsgw_reactor_start(struct reactor *r, const int *fds, int nfds);
void nfsgw_shutdown(void);

/* ---- additions (front end) ----
 * Order of calls for the daemon:
 *   nfsgw_settings_default(&s); ...options...; nfsgw_add_export_line() per export;
 *   workpool_init(0)           (MNT and the NFS metadata calls need it)
 *   nfsgw_init(&s)
 *   per reactor, before the threads start:
 *       n = nfsgw_open_sockets(&s, fds, NFSGW_MAX_FDS)  (SO_REUSEPORT, one set each)
 *   on each reactor's thread (reactor_post): nfsgw_reactor_start(r, fds, n)
 *   shutdown, on each reactor's thread: nfsgw_reactor_shutdown(r); poll
 *       nfsgw_reactor_idle(r) until 1; then nfsgw_reactor_fini() on the thread;
 *   after the reactors stopped: nfsgw_shutdown(), close the fds, workpool_shutdown(). */
#define NFSGW_MAX_FDS 64

void nfsgw_settings_default(struct nfsgw_settings *s);
/* "PATH CLIENT(opts) ..." (exports(5) line) into the export table. 0 or -1. */
int nfsgw_add_export_line(const char *line, char *err, size_t errlen);
void nfsgw_reactor_shutdown(struct reactor *r);
int nfsgw_reactor_idle(struct reactor *r);
void nfsgw_reactor_fini(void);
/* 1 if the built-in portmapper serves, 0 if we registered with rpcbind (or
 * none), valid after nfsgw_init(). */
int nfsgw_builtin_portmap(void);

/* "ADDR:PORT" or "[V6ADDR]:PORT" (numeric, port 1..65535) into ep: 0, or -1
 * with a message. */
int nfsgw_parse_endpoint(const char *s, struct nfsgw_endpoint *ep, char *err, size_t errlen);
/* Append ep to s->listen (keeping nfs_port = listen[0].port): 0, or -1 with
 * a message (full, duplicate). */
int nfsgw_add_listen(struct nfsgw_settings *s, const struct nfsgw_endpoint *ep, char *err,
		     size_t errlen);
/* "ADDR:PORT" / "[V6]:PORT" text of an endpoint. */
void nfsgw_endpoint_str(const struct nfsgw_endpoint *ep, char *buf, size_t len);

#endif
