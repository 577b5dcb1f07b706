/* rpc.h - ONC RPC v2 (RFC 5531) server transport on the io_uring reactors.
 *
 * TCP with record marking (RFC 5531 section 11) and UDP datagrams.  The
 * transport parses the call header and the credential (AUTH_NONE, AUTH_SYS
 * per RFC 5531 appendix A), finds the registered program/version and hands a
 * struct rpc_call to the program's dispatch function, on the reactor that owns
 * the connection.  The program answers exactly once, now or later (after its
 * I/O completes), with one of the rpc_reply_*() calls, always on the same
 * reactor.  PROG_UNAVAIL / PROG_MISMATCH are answered by the transport itself.
 *
 * Procedure arguments and results are XDR; programs decode/encode them with
 * libnfs's ZDR codecs (nfsc/libnfs-zdr.h, zdr_*3args / zdr_*3res) or by hand.
 */
#ifndef RS_RPC_H
#define RS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../core/reactor.h"

/* accept_stat (RFC 5531 section 9) */
#define RPC_SUCCESS       0
#define RPC_PROG_UNAVAIL  1
#define RPC_PROG_MISMATCH 2
#define RPC_PROC_UNAVAIL  3
#define RPC_GARBAGE_ARGS  4
#define RPC_SYSTEM_ERR    5
/* auth_stat */
#define RPC_AUTH_BADCRED      1
#define RPC_AUTH_REJECTEDCRED 2
#define RPC_AUTH_BADVERF      3
#define RPC_AUTH_TOOWEAK      5
/* flavors */
#define RPC_AUTH_NONE 0
#define RPC_AUTH_SYS  1

#define RPC_MAX_GIDS 16
/* Largest record we accept: a 1 MiB WRITE plus headers. */
#define RPC_MAX_RECORD (1024 * 1024 + 4096)

struct rpc_auth {
	uint32_t flavor;            /* RPC_AUTH_NONE or RPC_AUTH_SYS */
	uint32_t uid, gid;          /* AUTH_SYS; 65534 for AUTH_NONE */
	uint32_t gids[RPC_MAX_GIDS];
	uint32_t ngids;
	char machine[256];          /* AUTH_SYS machinename */
};

struct rpc_xprt;                /* a TCP connection or a UDP socket (opaque) */

struct rpc_call {
	uint32_t xid, prog, vers, proc;
	struct rpc_auth auth;
	const uint8_t *args;        /* XDR procedure arguments, valid until the reply */
	uint32_t args_len;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint16_t local_port;        /* port the call arrived on */
	bool udp;
	struct reactor *r;
	void *prog_priv;            /* free for the program's use */
	/* Local address the call arrived on (portmapper universal addresses). */
	struct sockaddr_storage local;
	socklen_t locallen;

	/* transport private */
	struct rpc_xprt *xprt;
	uint8_t *reply;             /* reply buffer (header room + results) */
	size_t reply_cap;
};

struct rpc_program {
	uint32_t prog;
	uint32_t vers_lo, vers_hi;
	const char *name;           /* "nfs", "mount", "nlockmgr", "portmapper", ... */
	/* Called on the connection's reactor.  Must lead to exactly one
	 * rpc_reply_*() for this call (or rpc_call_drop()). */
	void (*dispatch)(struct rpc_call *call);
	/* Bit p set: procedure p is not idempotent (CREATE, REMOVE, RENAME...).
	 * The transport runs such calls through the duplicate request cache
	 * (drc.h): a retransmission of a call still in progress is dropped, one
	 * of a finished call gets the cached reply again, without dispatch. */
	uint32_t non_idempotent_procs;
};

/* Register a program (before the reactors start).  0 or -errno. */
int rpc_register(const struct rpc_program *p);
/* Look up a registered program (portmapper GETPORT uses this). */
const struct rpc_program *rpc_find(uint32_t prog, uint32_t vers);

/* Reply building.  rpc_reply_buf() returns room for max_len bytes of XDR
 * results (after the reply header the transport writes); encode into it and
 * call rpc_reply_send() with the encoded length.  An optional payload (READ
 * data) is sent after the results without a copy, padded to 4 bytes by the
 * transport; payload_done(payload_arg) runs once it is no longer needed.
 * (Front-end notes: rpc_reply_buf() returns NULL only when out of memory;
 * answer rpc_reply_accept_error(call, RPC_SYSTEM_ERR) then.  The call's args
 * are released by rpc_reply_send(): a payload must not point into them.) */
uint8_t *rpc_reply_buf(struct rpc_call *call, size_t max_len);
void rpc_reply_send(struct rpc_call *call, size_t len, const void *payload, size_t payload_len,
		    void (*payload_done)(void *arg), void *payload_arg);
void rpc_reply_accept_error(struct rpc_call *call, uint32_t accept_stat);
void rpc_reply_auth_error(struct rpc_call *call, uint32_t auth_stat);
/* Finish a call without replying (duplicate of a request still in progress). */
void rpc_call_drop(struct rpc_call *call);

/* Per reactor: accept TCP connections / serve a UDP socket (call on r's thread). */
int rpc_reactor_listen_tcp(struct reactor *r, int listen_fd);
int rpc_reactor_serve_udp(struct reactor *r, int udp_fd);
void rpc_reactor_shutdown(struct reactor *r);
int rpc_reactor_idle(struct reactor *r);

/* Printable peer address without port. */
void rpc_peer_str(const struct rpc_call *call, char *buf, size_t len);

#endif
