/* fh.h - NFSv3 file handles: stable across restarts and unforgeable.
 *
 * Layout (at most NFS3_FHSIZE = 64 bytes, RFC 1813 2.5): version, export id,
 * the kernel's own handle for the object (name_to_handle_at(2): inode and
 * generation for the usual file systems; never st_dev), and a truncated
 * HMAC-SHA256 over all of it under a per-appliance secret stored in
 * <state_dir>/nfs-fh.key (created 0600 on first start).  A handle whose MAC
 * does not verify is NFS3ERR_BADHANDLE; one whose object is gone is STALE.
 */
#ifndef RS_FH_H
#define RS_FH_H

#include <stddef.h>
#include <stdint.h>

#define NFS_FH_MAX 64

struct nfs_fh {
	uint8_t len;
	uint8_t data[NFS_FH_MAX];
};

/* Load (or create) the secret.  0 or -errno. */
int fh_secret_init(const char *state_dir);
/* For tests: set the secret directly. */
void fh_secret_set(const uint8_t key[32]);

/* Build a handle for the object at (dirfd, name) (name "" = dirfd itself,
 * AT_EMPTY_PATH) under export_id.  0 or -errno (-EOVERFLOW if the kernel
 * handle does not fit). */
int fh_make(uint32_t export_id, int dirfd, const char *name, struct nfs_fh *out);
/* Verify the MAC and return the export id.  0, or -EBADMSG for a forged,
 * truncated or unknown-version handle. */
int fh_verify(const uint8_t *data, size_t len, uint32_t *export_id);
/* Open the object (O_PATH | extra flags) relative to the export's root fd,
 * checking that it lies inside the export.  fd or -errno (-ESTALE). */
int fh_open(const uint8_t *data, size_t len, int export_root_fd, int flags);

#endif
