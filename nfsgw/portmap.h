/* portmap.h - a built-in portmapper / rpcbind (program 100000, versions 2, 3
 * and 4; RFC 1833) for appliances without rpcbind, and a small blocking
 * client to register with an rpcbind that is already running. */
#ifndef RS_PORTMAP_H
#define RS_PORTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc.h"

#define PMAP_PROG 100000
#define PMAP_PORT 111

/* Portmapper v2 procedures (RFC 1833 section 3.2) */
#define PMAPPROC_NULL    0
#define PMAPPROC_SET     1
#define PMAPPROC_UNSET   2
#define PMAPPROC_GETPORT 3
#define PMAPPROC_DUMP    4
#define PMAPPROC_CALLIT  5
/* rpcbind v3/v4 procedures (RFC 1833 section 2.2) */
#define RPCBPROC_SET         1
#define RPCBPROC_UNSET       2
#define RPCBPROC_GETADDR     3
#define RPCBPROC_DUMP        4
#define RPCBPROC_CALLIT      5
#define RPCBPROC_GETTIME     6
#define RPCBPROC_UADDR2TADDR 7
#define RPCBPROC_TADDR2UADDR 8
#define RPCBPROC_GETVERSADDR 9
#define RPCBPROC_INDIRECT    10
#define RPCBPROC_GETADDRLIST 11
#define RPCBPROC_GETSTAT     12

#define PMAP_IPPROTO_TCP 6
#define PMAP_IPPROTO_UDP 17

extern const struct rpc_program portmap_program;

/* The mapping table.  netid: "tcp", "udp", "tcp6", "udp6".  uaddr NULL or ""
 * means "our own address as the caller sees it" (the address the GETADDR call
 * arrived on).  0, -EEXIST (same prog/vers/netid present) or -ENOSPC. */
int portmap_set(uint32_t prog, uint32_t vers, const char *netid, uint16_t port,
		const char *uaddr, const char *owner);
/* Remove prog/vers for netid (NULL = every netid).  Number removed. */
int portmap_unset(uint32_t prog, uint32_t vers, const char *netid);
void portmap_clear(void);

/* Universal addresses (RFC 5665 section 5.2.3.3/4: "h1.h2.h3.h4.p1.p2",
 * IPv6 "x::y.p1.p2").  IPv4-mapped IPv6 addresses are written as IPv4. */
int pmap_uaddr_format(const struct sockaddr *sa, uint16_t port, char *buf, size_t len);
/* Port of a universal address, or -1. */
int pmap_uaddr_port(const char *uaddr);

/* Blocking client, for the control plane only (startup / shutdown).
 * pmap_probe: 0 if something answers an RPC NULL call on 127.0.0.1:port. */
int pmap_probe(uint16_t pmap_port, int timeout_ms);
/* PMAPPROC_SET (set) / PMAPPROC_UNSET on the rpcbind at 127.0.0.1:pmap_port,
 * from a reserved source port.  1 = TRUE, 0 = FALSE (refused), -errno. */
int pmap_client_set(uint16_t pmap_port, bool set, uint32_t prog, uint32_t vers, uint32_t proto,
		    uint16_t port);

#endif
