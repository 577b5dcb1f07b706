/* lease.h - image leases: one writer per LU or NFS file, fenced by an epoch.
 *
 * A lease names an object, a holder and an epoch (issue 5 item 1):
 *
 *  - iSCSI: the object is a logical unit, identified by its NAA designator
 *    (VPD page 83h, SPC-4 7.8.6.6.6).  The control plane finds it by target
 *    tid and LUN, but the lease is keyed by the NAA, because that is the
 *    identity initiators (and hypervisors) see: it is derived from the
 *    appliance id, the target name and the LUN number, so the lease survives
 *    a restart, follows the LU through a LUN delete/re-create under the same
 *    name and number, and never applies to another LU.  The holder is an
 *    initiator name (RFC 7143 4.2.7); it holds the lease through every I_T
 *    nexus (any ISID, any portal group).
 *  - NFS: the object is a regular file under an export, identified by the
 *    kernel handle inside its NFSv3 file handle (nfsgw/fh.c: handle type and
 *    bytes from name_to_handle_at(2) = inode + generation), without the
 *    export id and the MAC.  That identity is stable across restarts and a
 *    change of the handle secret, is the same through nested exports, names
 *    the inode (so it follows hard links and renames, and does not apply to
 *    a new file renamed over the old one).  The holder is a client address (IPv4/IPv6,
 *    compared as addresses) or an AUTH_SYS machine name (RFC 5531 9.2,
 *    compared case-insensitively).
 *
 * Epochs only grow: acquiring a free object gives max(its last epoch, the
 * caller's epoch) + 1, a transfer gives epoch + 1, and a released entry keeps
 * its last epoch so that a later acquire continues above it.  A transfer or
 * release must name the current epoch (a fencing token, as in Chubby's
 * sequencers): a stale one is refused with ESTALE.
 *
 * While a lease is held, write-class commands from anyone but the holder are
 * refused by the data paths (iSCSI RESERVATION CONFLICT, SAM-5 5.3.3 / SPC-4
 * 5.13.1; NFS NFS3ERR_ACCES, RFC 1813 2.6); reads stay allowed.  SCSI-3
 * persistent reservations still apply after the lease gate.
 *
 * Persistence: <state_dir>/leases, a text file rewritten atomically (temp,
 * fsync, rename, fsync of the directory) by the control thread on every
 * change, before the change becomes visible to the data path.  A change that
 * cannot be made durable is refused.  A damaged file refuses the start:
 * silently starting without leases would drop the fencing.
 *
 * The gate is checked when a command starts: a write that passed it before
 * a transfer or release may still complete after it.  Whoever moves a lease
 * must have stopped the old holder's I/O first (a migration transfers with
 * the source paused), as with any fencing token checked at the storage.
 *
 * Threads: the control operations may block (they write the file) and are
 * serialised internally; the *_write_allowed() hooks are for the reactors:
 * no syscalls, one atomic load when no lease of that kind is held, else a
 * read lock (writer-preferring) around a scan of the small table.
 */
#ifndef RS_LEASE_H
#define RS_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LEASE_HOLDER_MAX 256     /* AUTH_SYS machinename <= 255 (RFC 5531 9.2) */
#define LEASE_FID_MAX    64      /* an NFSv3 handle is at most 64 bytes (RFC 1813 2.5) */
#define LEASE_NAME_MAX   224     /* iSCSI names: 223 bytes + NUL */
#define LEASE_PATH_MAX   4096

enum lease_kind {
	LEASE_SCSI = 1,
	LEASE_NFS = 2,
};

/* What a lease is on. */
struct lease_key {
	enum lease_kind kind;
	uint8_t naa[16];                /* LEASE_SCSI: the LU's NAA designator */
	uint32_t export_id;             /* LEASE_NFS: the export it was acquired through
					 * (shown; not part of the identity) */
	uint8_t fid_len;                /* LEASE_NFS: file identity (lease_nfs_fid()) */
	uint8_t fid[LEASE_FID_MAX];
};

/* A lease as the control plane sees it.  tid/lun/target and path describe
 * where the object was last seen; they are shown, and used to find a lease
 * whose LU or file is gone, but never to match commands. */
struct lease_info {
	struct lease_key key;
	bool held;
	uint64_t epoch;                 /* 0: never leased */
	char holder[LEASE_HOLDER_MAX];  /* current holder, or the last one when free */
	int tid;                        /* LEASE_SCSI */
	uint64_t lun;
	char target[LEASE_NAME_MAX];
	char path[LEASE_PATH_MAX];      /* LEASE_NFS: server path of the file */
};

/* ---- start-up ---- */

/* Load <state_dir>/leases (absent: no leases).  0, or -errno with a logged
 * reason; -EINVAL for a damaged file (the daemon must not start).  May be
 * called again (tests): the table is replaced. */
int lease_init(const char *state_dir);
/* Forget the table (no file is touched).  Tests and shutdown. */
void lease_shutdown(void);

/* ---- control plane (control thread; they may block) ----
 * Each returns 0 or a positive errno with a one-line message in msg:
 *   EINVAL  bad holder or arguments      ENOENT  no such lease
 *   EBUSY   held by another holder       ESTALE  the epoch given is not the current one
 *   EOVERFLOW epoch exhausted            EIO/ENOSPC/...  could not be made durable
 * `obj` is the key plus the description (tid/lun/target or path) to store. */

/* Take a free object for holder (or confirm that holder already has it:
 * the epoch is unchanged; with has_epoch it must be the current one).
 * Free: the new epoch is max(last epoch, epoch) + 1. */
int lease_acquire(const struct lease_info *obj, const char *holder, bool has_epoch,
		  uint64_t epoch, uint64_t *new_epoch, char *msg, size_t msglen);
/* Hand a held lease to holder: epoch must be the current one; it becomes
 * epoch + 1. */
int lease_transfer(const struct lease_info *obj, const char *holder, uint64_t epoch,
		   uint64_t *new_epoch, char *msg, size_t msglen);
/* Release a held lease: epoch must be the current one (it is kept);
 * holder (NULL or "": any) must be the holder.  Releasing a free lease at its
 * current epoch succeeds (idempotent, for journal replays). */
int lease_release(const struct lease_info *obj, const char *holder, uint64_t epoch,
		  char *msg, size_t msglen);
/* Copy the entry for key (held or not) into out.  0 or -ENOENT. */
int lease_get(const struct lease_key *key, struct lease_info *out);
/* Find an entry by its description, for objects that are gone:
 * LEASE_SCSI by (target name, lun) - or (tid, lun) when target is NULL;
 * LEASE_NFS by (export_id, path).  0 or -ENOENT. */
int lease_find_scsi(int tid, const char *target, uint64_t lun, struct lease_key *out);
int lease_find_nfs(uint32_t export_id, const char *path, struct lease_key *out);
/* Every entry (key == NULL) or one, as text or JSON:
 * {"leases": [{"lld": "iscsi", "tid": 1, "lun": 1, "target": "iqn...",
 *   "naa": "<32 hex>", "held": true, "holder": "iqn...", "epoch": 3}, ...,
 *  {"lld": "nfs", "export_id": 7, "path": "/srv/x/vm.img", "file_id": "<hex>",
 *   "held": false, "holder": "10.0.0.2", "epoch": 2}]}
 * Returns the number of entries shown. */
int lease_show(FILE *out, bool json, const struct lease_key *key);

/* Holder syntax checks (0, or EINVAL with a message).  iSCSI: an initiator
 * name (printable, no blanks or commas, <= 223 bytes).  NFS: an IPv4/IPv6
 * address or a host name (printable, no blanks, <= 255 bytes). */
int lease_holder_check(enum lease_kind kind, const char *holder, char *msg, size_t msglen);

/* The identity of an NFS file handle built by nfsgw/fh.c: the kernel
 * handle's length, type and bytes (fid[0] is the length k, fid_len is
 * 5 + k).  0, or -EINVAL if fh is not a handle of the known layout. */
int lease_nfs_fid(const uint8_t *fh, size_t fhlen, uint8_t fid[LEASE_FID_MAX], uint8_t *fid_len);

/* ---- data path hooks (reactor threads) ---- */

/* Does this CDB write the medium (SBC-3 / SBC-4 write-class commands)?
 * WRITE(6/10/12/16/32), WRITE AND VERIFY, WRITE SAME, UNMAP, COMPARE AND
 * WRITE, ORWRITE, WRITE ATOMIC, WRITE STREAM, WRITE SCATTERED, WRITE LONG,
 * XDWRITE/XPWRITE/XDWRITEREAD, FORMAT UNIT, REASSIGN BLOCKS, SANITIZE.
 * Not: reads, SYNCHRONIZE CACHE (it writes nothing new), PERSISTENT RESERVE
 * OUT (fencing must keep working), MODE SELECT, EXTENDED COPY (the copy
 * manager gates each destination LU itself with lease_scsi_write_allowed()).
 * cdb must hold at least 10 bytes for opcode 7Fh (SCSI_CDB_MAX in practice). */
bool lease_is_write_opcode(const uint8_t *cdb);

/* May this initiator write the LU with this NAA?  True when no lease is held
 * on it or the initiator holds it.  initiator: the initiator name, or the
 * whole initiator port name "iqn...,i,0x<isid>" (scsi_nexus.initiator_port:
 * the part before ",i," is compared). */
bool lease_scsi_write_allowed(const uint8_t naa[16], const char *initiator);

/* May this client write the file with this handle (WRITE, COMMIT, SETATTR
 * of the size)?  export_id is informational (the file is matched by its
 * kernel handle, whichever export it is reached through).  True when no lease is held on it, or the holder is the
 * client's address (client_addr: numeric, "addr", "addr:port" or
 * "[v6addr]:port"; NULL if unknown) or its AUTH_SYS machine name
 * (machine_name; NULL or "" for AUTH_NONE).  fh must have been verified
 * (fh_verify); an unparsable handle is refused while NFS leases exist. */
bool lease_nfs_write_allowed(uint32_t export_id, const uint8_t *fh, size_t fhlen,
			     const char *client_addr, const char *machine_name);
/* The same with the caller's socket address (AF_INET / AF_INET6; the
 * port is ignored): no formatting on the data path. */
struct sockaddr;
bool lease_nfs_write_allowed_sa(uint32_t export_id, const uint8_t *fh, size_t fhlen,
				const struct sockaddr *peer, const char *machine_name);

/* Number of held leases (both kinds): cheap, for tests and show. */
unsigned lease_held_count(void);
/* Is any NFS lease held?  One atomic load: lets name-based operations
 * (REMOVE, RENAME, CREATE over a file) skip building the target's handle
 * when there is nothing to check. */
bool lease_nfs_any_held(void);

#endif
