/* nfs3.h - the NFS version 3 program (RFC 1813) on the RPC transport.
 *
 * All 22 procedures.  Arguments are decoded with the bounds-checked cursors
 * of xdr.h (libnfs 4.0's ZDR decoders trust the lengths they read, which a
 * server cannot do); results are encoded with libnfs's zdr_*3res encoders,
 * except READ data (sent as the transport's zero-copy payload) and the
 * READDIR/READDIRPLUS entry lists (encoded incrementally so that count,
 * dircount and maxcount are honoured exactly).
 *
 * Execution: GETATTR, ACCESS, READ, WRITE and COMMIT run on the reactor with
 * io_uring (STATX, READ, WRITE with RWF_DSYNC/RWF_SYNC, FSYNC) on a cached
 * descriptor; everything else runs as one job on the workpool under the
 * caller's squashed credentials (fsops.h).  The reactor never blocks.
 */
#ifndef RS_NFS3_H
#define RS_NFS3_H

#include <stdint.h>

#include "rpc.h"

#define NFS3_PROGRAM 100003
#define NFS3_VERSION 3

#define NFS3_RTMAX (1024 * 1024)
#define NFS3_WTMAX (1024 * 1024)
#define NFS3_DTPREF (64 * 1024)

extern const struct rpc_program nfs3_program;

/* The one place where -errno (or errno) becomes an nfsstat3 (RFC 1813 2.6). */
uint32_t nfs3_errno_to_status(int err);

/* The write verifier (RFC 1813 3.3.7): fixed for the life of the process,
 * different after a restart, and changed whenever a sync write or a COMMIT
 * fails, so that clients resend their unstable data. */
void nfs3_write_verf(uint8_t out[8]);
void nfs3_write_verf_bump(void);

/* Close this reactor's cached descriptors (call on the reactor's thread at
 * shutdown). */
void nfs3_reactor_fini(void);

/* How GETATTR/ACCESS/READ/WRITE/COMMIT get attributes of the cached
 * descriptor.  1 (default): statx(2) with AT_EMPTY_PATH right on the
 * reactor - it copies the in-core inode of an open file, no I/O, no path
 * walk.  0: IORING_OP_STATX, which the kernel always hands to an io-wq
 * worker (REQ_F_FORCE_ASYNC): a thread hop per call, measured here at about
 * 30% fewer 4 KiB writes/s at depth 32 and twice the depth-1 latency (three
 * statx per WRITE+COMMIT pair).  Use 0 for exports on network or FUSE file
 * systems, whose getattr may block. */
extern int nfs3_inline_statx;

#endif
