/* drc.h - the duplicate request cache for non-idempotent RPCs.
 *
 * Why: an NFS client that loses its TCP connection retransmits the calls it
 * has no reply for on a new connection.  Re-executing a REMOVE, RENAME or
 * exclusive CREATE that already succeeded would fail spuriously (NOENT,
 * EXIST); the cache answers the retransmission with the original reply
 * instead (the classic DRC of Juszczak, "Improving the performance and
 * correctness of an NFS server", USENIX 1989; Linux nfsd's nfscache.c).
 *
 * Key: client address (without the port: a reconnect may come from another
 * one), xid, program, version, procedure, argument length and a checksum of
 * the first bytes of the arguments (so that an xid reused after a client
 * reboot does not replay a stale answer).  Entries are IN_PROGRESS (a
 * duplicate is dropped: the original's reply is still to come) or DONE (the
 * reply bytes are kept and re-sent).  Bounded: a fixed number of entries per
 * hash bucket, the oldest finished one is recycled; finished entries expire
 * after DRC_TTL_MS.  One lock per bucket: reactors are separate threads.
 *
 * The transport (rpc.c) drives it for every procedure a program marks in
 * rpc_program.non_idempotent_procs; programs never see duplicates.
 */
#ifndef RS_DRC_H
#define RS_DRC_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

#define DRC_DEFAULT_ENTRIES 4096
#define DRC_MAX_REPLY 4096          /* larger replies are not cached */
#define DRC_TTL_MS (120 * 1000)

enum drc_result {
	DRC_NEW,           /* not seen: an IN_PROGRESS entry now exists (or the
			    * cache was full: untracked); execute the call */
	DRC_IN_PROGRESS,   /* duplicate of a call still executing: drop it */
	DRC_REPLAY,        /* duplicate of a finished call: send *reply (malloc'd) */
};

struct drc_stats {
	uint64_t lookups, replays, in_progress_drops, evictions, uncached;
	unsigned entries;
};

/* Size the cache (total entries, rounded to the bucket count); also empties
 * it.  Optional: the cache sizes itself with DRC_DEFAULT_ENTRIES on first use. */
int drc_init(unsigned max_entries);
enum drc_result drc_lookup(const struct rpc_call *call, uint8_t **reply, size_t *reply_len);
/* The call finished: keep its reply (the whole RPC message from the xid on:
 * header + results, then payload).  No-op if the call is not tracked. */
void drc_store(const struct rpc_call *call, const void *reply, size_t len,
	       const void *payload, size_t payload_len);
/* The call finished without a reply (rpc_call_drop): forget it. */
void drc_abort(const struct rpc_call *call);
void drc_get_stats(struct drc_stats *st);
void drc_clear(void);

#endif
