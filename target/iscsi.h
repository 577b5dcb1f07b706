/* iscsi.h - the iSCSI fabric's entry points for the daemon (RFC 7143, ERL 0). */
#ifndef RS_ISCSI_H
#define RS_ISCSI_H

#include <stdint.h>
#include <sys/socket.h>

#include "../core/reactor.h"
#include "iscsi_params.h"

struct iscsi_portal {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint16_t tpgt;              /* target portal group tag (1 by default) */
	char text[96];              /* "127.0.0.1:3260,1" / "[::1]:3260,1" for SendTargets */
};

struct iscsi_settings {
	struct iscsi_target_caps caps;
	uint32_t nop_interval_s;    /* ping an idle initiator after this (default 15, 0 = off) */
	uint32_t nop_timeout_s;     /* drop it if no answer (default 30) */
	uint32_t queue_depth;       /* commands per session window (MaxCmdSN - ExpCmdSN + 1), default 128 */
};

/* Global setup, once, before any reactor runs.  Portals are used for
 * SendTargets TargetAddress values. */
int iscsi_init(const struct iscsi_settings *s, const struct iscsi_portal *portals, int nportals);
/* Arm a (multishot) accept on listen_fd; connections accepted there live on r
 * for their whole life.  Call on r's thread (e.g. through reactor_post()). */
int iscsi_reactor_listen(struct reactor *r, int listen_fd);
/* On r's thread: stop accepting, let in-flight I/O finish, close connections. */
void iscsi_reactor_shutdown(struct reactor *r);
/* True when r has no connection or I/O left (reactor may exit). */
int iscsi_reactor_idle(struct reactor *r);

#endif
