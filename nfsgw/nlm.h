/* nlm.h - the Network Lock Manager, versions 1, 3 and 4 (X/Open XNFS
 * "Protocols for X/Open PC Interworking", chapters 9-11 and 14; NLM v4 is the
 * one RFC 1813 section 6 pairs with NFSv3), and its lock table.
 *
 * The lock table lives in the daemon: we are the only NFS server of the
 * exported files, so NLM locks are not mirrored into kernel fcntl() locks
 * (a local process on the server does not see them - the same trade-off as
 * nfs-ganesha without its "lock in the FSAL" option).  Files are keyed by
 * their verified file handle bytes (export id + kernel handle + MAC, all
 * deterministic for one object), owners by (caller_name, svid, oh), ranges
 * follow POSIX (fcntl(2)) rules: shared/exclusive, an owner's own locks
 * never conflict, a new lock replaces the owner's overlapping ranges, and
 * unlocking the middle of a range splits it.  One mutex guards the table:
 * calls arrive on several reactors and the control thread lists and breaks.
 */
#ifndef RS_NLM_H
#define RS_NLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "rpc.h"

#define NLM_PROG 100021

/* Procedures (XNFS chapter 10/14; the same numbers in v1, v3 and v4). */
#define NLMPROC_NULL        0
#define NLMPROC_TEST        1
#define NLMPROC_LOCK        2
#define NLMPROC_CANCEL      3
#define NLMPROC_UNLOCK      4
#define NLMPROC_GRANTED     5
#define NLMPROC_TEST_MSG    6
#define NLMPROC_LOCK_MSG    7
#define NLMPROC_CANCEL_MSG  8
#define NLMPROC_UNLOCK_MSG  9
#define NLMPROC_GRANTED_MSG 10
#define NLMPROC_TEST_RES    11
#define NLMPROC_LOCK_RES    12
#define NLMPROC_CANCEL_RES  13
#define NLMPROC_UNLOCK_RES  14
#define NLMPROC_GRANTED_RES 15
#define NLMPROC_SHARE       20
#define NLMPROC_UNSHARE     21
#define NLMPROC_NM_LOCK     22
#define NLMPROC_FREE_ALL    23

/* nlm4_stats (v1/v3 nlm_stats are the first five). */
#define NLM4_GRANTED             0
#define NLM4_DENIED              1
#define NLM4_DENIED_NOLOCKS      2
#define NLM4_BLOCKED             3
#define NLM4_DENIED_GRACE_PERIOD 4
#define NLM4_DEADLCK             5
#define NLM4_ROFS                6
#define NLM4_STALE_FH            7
#define NLM4_FBIG                8
#define NLM4_FAILED              9

/* fsh4_mode (deny) and fsh4_access bits for SHARE (DOS share modes). */
#define NLM_FSM_DN  0
#define NLM_FSM_DR  1
#define NLM_FSM_DW  2
#define NLM_FSM_DRW 3
#define NLM_FSA_NONE 0
#define NLM_FSA_R    1
#define NLM_FSA_W    2
#define NLM_FSA_RW   3

#define NLM_MAXSTR 1024        /* LM_MAXSTRLEN */
#define NLM_MAXOBJ 1024        /* MAXNETOBJ_SZ */
#define NLM_OFFSET_MAX UINT64_MAX

extern const struct rpc_program nlm4_program;

/* ------------------------------------------------------------ life cycle */

/* Once, before the reactors start (nfsgw_init): NSM state (nsm.h), the list
 * of clients that held locks before (they get SM_NOTIFY and a grace period;
 * none -> no grace period), the callback thread.  portmap_port: where a
 * client on this host (loopback) finds its portmapper (a remote client's is
 * on 111).  0 or -errno. */
int nlm_init(const char *state_dir, uint16_t portmap_port);
void nlm_shutdown(void);
/* Grace period length in seconds for the next nlm_init() (default 45, or
 * $RINGSTOR_NLM_GRACE); nlm_set_grace_now() (re)starts it now (tests). */
void nlm_set_grace(unsigned seconds);
void nlm_set_grace_now(unsigned seconds);
bool nlm_in_grace(void);

/* ------------------------------------------------------------ control plane */

/* Every lock, blocked request and share: client, owner, file, range. */
void nlm_show_locks(FILE *out, bool json);
/* Break locks (and blocked requests and shares) of client (caller_name or
 * address; NULL = any) on path (server path of the file; NULL = any).  Both
 * NULL breaks everything.  Number of entries broken, or -1 (err filled). */
int nlm_break_locks(const char *client, const char *path, char *err, size_t errlen);

/* ------------------------------------------------------------ XDR (tests) */

struct nlm_netobj {
	uint32_t len;
	uint8_t data[NLM_MAXOBJ];
};

/* Decoded arguments of any NLM procedure (fields unused by a procedure
 * stay zero). */
struct nlm_args {
	struct nlm_netobj cookie;
	bool block, exclusive, reclaim;
	int32_t state;
	char caller[NLM_MAXSTR + 1];   /* caller_name; FREE_ALL: name */
	struct nlm_netobj fh, oh;
	int32_t svid;
	uint64_t offset, len;          /* v1/v3: 32-bit on the wire */
	uint32_t mode, access;         /* SHARE */
};

/* Decode the arguments of proc (a call, or a _MSG/_RES for the call-shaped
 * ones) for version vers.  0, or -1 for garbage (short, oversized, bad bool). */
int nlm_decode_args(uint32_t proc, uint32_t vers, const uint8_t *buf, size_t len, struct nlm_args *a);

/* ------------------------------------------------------------ lock table */

/* One lock request as the table sees it.  end is inclusive; a length of 0
 * (to end of file) or a range past 2^64 is end = NLM_OFFSET_MAX. */
struct nlm_req {
	const uint8_t *fh;
	uint32_t fhlen;
	uint32_t export_id;
	const char *caller;
	int32_t svid;
	const uint8_t *oh;
	uint32_t ohlen;
	bool exclusive;
	uint64_t start, end;
	const struct sockaddr *peer;   /* may be NULL (tests) */
};

/* The conflicting lock TEST answers with. */
struct nlm_holder {
	bool exclusive;
	int32_t svid;
	uint32_t ohlen;
	uint8_t oh[NLM_MAXOBJ];
	uint64_t start, end;
};

/* A blocked request granted later: what the GRANTED callback needs. */
struct nlm_grant {
	struct sockaddr_storage peer;
	struct sockaddr_storage local;  /* our address the LOCK came to */
	uint32_t vers;
	bool udp;
	uint32_t cookielen;
	uint8_t cookie[NLM_MAXOBJ];
	char caller[NLM_MAXSTR + 1];
	uint32_t fhlen;
	uint8_t fh[NLM_MAXOBJ];
	uint32_t ohlen;
	uint8_t oh[NLM_MAXOBJ];
	int32_t svid;
	bool exclusive;
	uint64_t start, end;
};

/* For a blocking LOCK: where to send GRANTED. */
struct nlm_block_info {
	uint32_t vers;
	bool udp;
	const uint8_t *cookie;
	uint32_t cookielen;
	const struct sockaddr *local;   /* may be NULL */
};

/* Range helpers: (offset, len) of the wire to [start, end]. */
uint64_t nlm_range_end(uint64_t offset, uint64_t len);

/* Table operations; the result is an NLM4_* status.  TEST fills *holder on
 * NLM4_DENIED.  LOCK with blk != NULL queues a conflicting request
 * (NLM4_BLOCKED) and grants it later through the grant hook. */
uint32_t nlm_tab_test(const struct nlm_req *r, struct nlm_holder *holder);
uint32_t nlm_tab_lock(const struct nlm_req *r, const struct nlm_block_info *blk);
uint32_t nlm_tab_cancel(const struct nlm_req *r);
uint32_t nlm_tab_unlock(const struct nlm_req *r);
uint32_t nlm_tab_share(const struct nlm_req *r, uint32_t mode, uint32_t access);
uint32_t nlm_tab_unshare(const struct nlm_req *r);
/* Free everything of a client: caller_name == name (case-insensitive), or,
 * with addr != NULL, locks taken from that address.  Number freed. */
int nlm_tab_free_host(const char *name, const struct sockaddr *addr);
/* Counts (tests, show): locks, blocked requests, shares. */
void nlm_tab_counts(int *locks, int *blocked, int *shares);
void nlm_tab_clear(void);

/* Called (with the table unlocked) for every blocked request that becomes
 * granted.  The default sends NLM_GRANTED to the client from the callback
 * thread; tests install their own.  NULL restores the default. */
void nlm_set_grant_hook(void (*hook)(const struct nlm_grant *g));

/* ------------------------------------------------------------ RPC client */

/* One blocking RPC call (control plane / callback thread only): to addr
 * (port included), over UDP or TCP, AUTH_SYS as root from a reserved port
 * when possible, from local's address when given (a Linux client matches
 * NLM_GRANTED against the server address it knows).  Results after the
 * accepted reply header into res (*reslen in: capacity, out: length).
 * 0 or -errno. */
int nlm_rpc_call(const struct sockaddr *addr, const struct sockaddr *local, bool udp, uint32_t prog,
		 uint32_t vers, uint32_t proc, const uint8_t *args, size_t alen, uint8_t *res, size_t *reslen,
		 int timeout_ms);
/* Port of prog/vers on the host of addr through its portmapper
 * (PMAPPROC_GETPORT on pmap_port), or 0 / -errno. */
int nlm_getport(const struct sockaddr *addr, uint16_t pmap_port, uint32_t prog, uint32_t vers,
		bool udp);
/* The portmapper port of a client at addr (111, or ours for loopback). */
uint16_t nlm_client_pmap_port(const struct sockaddr *addr);

/* Run fn(arg) on the callback thread (which may block on the network),
 * delay_ms from now.  0, or -errno (not started, out of memory: fn is not
 * called, the caller frees arg). */
int nlm_cb_post(void (*fn)(void *arg), void *arg, unsigned delay_ms);
/* Our host name (caller_name of GRANTED callbacks, mon_name of SM_NOTIFY). */
const char *nlm_hostname(void);

#endif
