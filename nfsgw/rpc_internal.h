/* rpc_internal.h - the pure parts of the RPC transport (rpc.c), exposed for
 * unit tests: the TCP record-marking reassembler (RFC 5531 section 11) and
 * the call header / credential parser (RFC 5531 section 9, appendix A). */
#ifndef RS_RPC_INTERNAL_H
#define RS_RPC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

#define RPC_MSG_CALL  0
#define RPC_MSG_REPLY 1
#define RPC_MSG_ACCEPTED 0
#define RPC_MSG_DENIED   1
#define RPC_REJ_MISMATCH 0
#define RPC_REJ_AUTH     1
#define RPC_MAX_AUTH_BYTES 400   /* RFC 5531 section 8.2: opaque body<400> */
#define RPC_MAX_INFLIGHT 128     /* calls alive per connection before we stop reading */

/* ---------------------------------------------------------- record marking */

enum rpc_rm_result { RPC_RM_MORE, RPC_RM_RECORD, RPC_RM_ERROR };

struct rpc_rm {
	uint8_t hdr[4];
	uint8_t hdr_got;
	bool in_frag;           /* fragment header parsed, body being read */
	bool last;              /* current fragment ends the record */
	uint32_t frag_left;     /* body bytes still to come */
	uint8_t *rec;
	uint32_t rec_len, rec_cap;
	uint32_t max;           /* largest record accepted */
};

void rpc_rm_init(struct rpc_rm *m, uint32_t max);
void rpc_rm_fini(struct rpc_rm *m);
/* Consume up to n bytes; stops right after a complete record (RPC_RM_RECORD,
 * take it with rpc_rm_take()).  RPC_RM_ERROR: a record longer than max; the
 * connection must go (the stream cannot be resynchronised). */
enum rpc_rm_result rpc_rm_feed(struct rpc_rm *m, const uint8_t *p, size_t n, size_t *used);
/* Receive in place: where the rest of the current fragment body goes (NULL
 * when no fragment body is pending). */
uint8_t *rpc_rm_direct(struct rpc_rm *m, uint32_t *room);
enum rpc_rm_result rpc_rm_direct_done(struct rpc_rm *m, uint32_t n);
/* The completed record; the caller owns (free()s) it.  Never NULL after
 * RPC_RM_RECORD (an empty record is a 1-byte allocation with *len 0). */
uint8_t *rpc_rm_take(struct rpc_rm *m, uint32_t *len);

/* ---------------------------------------------------------- call header */

enum rpc_parse_result {
	RPC_PARSE_OK,
	RPC_PARSE_DROP,          /* not a call, or too short to answer: ignore silently */
	RPC_PARSE_RPC_MISMATCH,  /* rpcvers != 2: MSG_DENIED RPC_MISMATCH (2, 2) */
	RPC_PARSE_AUTH_ERROR,    /* MSG_DENIED AUTH_ERROR, *auth_stat */
};

/* Parse xid .. verifier; fill call->xid/prog/vers/proc/auth/args/args_len. */
enum rpc_parse_result rpc_parse_call(const uint8_t *rec, size_t len, struct rpc_call *call,
				     uint32_t *auth_stat);

/* Encode an accepted reply header (xid, REPLY, MSG_ACCEPTED, AUTH_NONE
 * verifier, accept_stat) into 24 bytes. */
void rpc_encode_accepted(uint8_t *p, uint32_t xid, uint32_t accept_stat);

#endif
