/* fh.c - NFSv3 file handles (see fh.h).
 *
 * Wire layout (big endian, at most NFS3_FHSIZE = 64 bytes, RFC 1813 2.5):
 *
 *   0      version (FH_VERSION)
 *   1      kernel handle length k (struct file_handle.handle_bytes)
 *   2..5   kernel handle type (struct file_handle.handle_type)
 *   6..9   export id
 *   10..   k bytes of the kernel's handle (name_to_handle_at(2) without
 *          AT_HANDLE_FID: inode + generation on ext4/xfs/btrfs/tmpfs)
 *   ..     FH_MAC_LEN bytes: HMAC-SHA256(secret, all of the above), truncated
 *
 * Nothing in it depends on st_dev or on the daemon's lifetime, so a handle
 * survives a restart and a reboot (the secret lives in <state_dir>).  The MAC
 * makes handles unforgeable: a client can only present handles we issued,
 * and we only issue handles for objects reached from an export's root (MOUNT,
 * LOOKUP with ".." clamped at the root, READDIRPLUS, CREATE & co.).
 *
 * Containment (fh_open): besides the MAC, an object opened by handle must be
 * on the export's file system (st_dev of the export root), and a directory
 * must have the export root among its ancestors (walked with ".." up to the
 * file system root).  A non-directory moved out of the export by someone on
 * the server stays reachable through a handle issued before the move - the
 * same trade-off as Linux nfsd with no_subtree_check - but it cannot be used
 * to reach anything else: LOOKUP only works in directories, which are
 * checked.
 */
#include "fh.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../core/log.h"

#define FH_VERSION 1
#define FH_HDR 10
#define FH_MAC_LEN 16
#define FH_KMAX (NFS_FH_MAX - FH_HDR - FH_MAC_LEN)
#define FH_KEY_LEN 32
/* Deepest directory we walk up when checking containment. */
#define FH_MAX_DEPTH 4096

static uint8_t fh_key[FH_KEY_LEN];
static bool fh_key_ok;

/* HMAC-SHA256 (RFC 2104) with the key schedule done once: the SHA-256
 * states after absorbing key^ipad and key^opad are kept, and every MAC
 * starts from copies of them.  OpenSSL 3's one-shot HMAC() fetches the
 * algorithm, builds a MAC context and hashes both pads on every call - a
 * few microseconds, paid per entry of a READDIRPLUS reply and per handle
 * verified.  The bytes are the same as HMAC()'s, so handles issued before
 * stay valid.  The pad states are written only by fh_secret_set (startup,
 * tests), before any thread uses them; the copies are read-only. */
static EVP_MD *fh_md;
static EVP_MD_CTX *fh_ictx, *fh_octx;
static __thread EVP_MD_CTX *fh_tctx;    /* per-thread scratch */
static pthread_key_t fh_tkey;           /* frees it when the thread exits */
static pthread_once_t fh_tonce = PTHREAD_ONCE_INIT;
static bool fh_tkey_ok;

static void fh_tctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void fh_tkey_init(void)
{
	fh_tkey_ok = pthread_key_create(&fh_tkey, fh_tctx_free) == 0;
}

static EVP_MD_CTX *fh_scratch(void)
{
	if (fh_tctx)
		return fh_tctx;
	pthread_once(&fh_tonce, fh_tkey_init);
	if (!fh_tkey_ok || !(fh_tctx = EVP_MD_CTX_new()))
		return NULL;
	if (pthread_setspecific(fh_tkey, fh_tctx) != 0) {
		EVP_MD_CTX_free(fh_tctx);
		fh_tctx = NULL;
	}
	return fh_tctx;
}

static void fh_pads_free(void)
{
	EVP_MD_CTX_free(fh_ictx);
	EVP_MD_CTX_free(fh_octx);
	fh_ictx = fh_octx = NULL;
}

static void fh_pads_init(void)
{
	uint8_t ipad[64], opad[64];

	fh_pads_free();
	if (!fh_md)
		fh_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!fh_md)
		return;
	memset(ipad, 0x36, sizeof(ipad));
	memset(opad, 0x5c, sizeof(opad));
	for (int i = 0; i < FH_KEY_LEN; i++) {
		ipad[i] ^= fh_key[i];
		opad[i] ^= fh_key[i];
	}
	fh_ictx = EVP_MD_CTX_new();
	fh_octx = EVP_MD_CTX_new();
	if (!fh_ictx || !fh_octx ||
	    !EVP_DigestInit_ex(fh_ictx, fh_md, NULL) || !EVP_DigestUpdate(fh_ictx, ipad, 64) ||
	    !EVP_DigestInit_ex(fh_octx, fh_md, NULL) || !EVP_DigestUpdate(fh_octx, opad, 64))
		fh_pads_free();         /* fh_mac falls back to HMAC() */
	OPENSSL_cleanse(ipad, sizeof(ipad));
	OPENSSL_cleanse(opad, sizeof(opad));
}

void fh_secret_set(const uint8_t key[32])
{
	memcpy(fh_key, key, FH_KEY_LEN);
	fh_key_ok = true;
	fh_pads_init();
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (int)got;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

static int load_key(const char *path)
{
	uint8_t buf[FH_KEY_LEN + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int n;

	if (fd < 0)
		return -errno;
	n = read_full(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return n;
	if (n != FH_KEY_LEN) {
		/* Never regenerate silently: a new key would turn every handle
		 * held by every client into BADHANDLE. */
		log_err("nfs: %s: expected %d bytes of key, found %d; remove it to start over",
			path, FH_KEY_LEN, n);
		return -EINVAL;
	}
	fh_secret_set(buf);
	return 0;
}

int fh_secret_init(const char *state_dir)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	uint8_t key[FH_KEY_LEN];
	int fd, rc;

	if (!state_dir || !*state_dir)
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/nfs-fh.key", state_dir) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/nfs-fh.key.tmp", state_dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	rc = load_key(path);
	if (rc != -ENOENT)
		return rc;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (size_t got = 0; got < sizeof(key);) {
		ssize_t n = getrandom(key + got, sizeof(key) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	/* Write-then-rename so that a crash never leaves a short key behind. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	rc = write_full(fd, key, sizeof(key));
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	log_notice("nfs: created file handle key %s", path);
	return load_key(path);
}

static void fh_mac(const uint8_t *data, size_t len, uint8_t out[FH_MAC_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (fh_ictx && fh_scratch()) {
		uint8_t inner[EVP_MAX_MD_SIZE];
		unsigned int ilen = 0;

		if (EVP_MD_CTX_copy_ex(fh_tctx, fh_ictx) && EVP_DigestUpdate(fh_tctx, data, len) &&
		    EVP_DigestFinal_ex(fh_tctx, inner, &ilen) &&
		    EVP_MD_CTX_copy_ex(fh_tctx, fh_octx) && EVP_DigestUpdate(fh_tctx, inner, ilen) &&
		    EVP_DigestFinal_ex(fh_tctx, md, &mdlen) && mdlen >= FH_MAC_LEN) {
			memcpy(out, md, FH_MAC_LEN);
			return;
		}
		mdlen = 0;
	}
	if (!HMAC(EVP_sha256(), fh_key, FH_KEY_LEN, data, len, md, &mdlen) || mdlen < FH_MAC_LEN) {
		/* Cannot happen with a working libcrypto; make the MAC
		 * unverifiable rather than predictable. */
		memset(out, 0, FH_MAC_LEN);
		out[0] = 1;
		return;
	}
	memcpy(out, md, FH_MAC_LEN);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int fh_make(uint32_t export_id, int dirfd, const char *name, struct nfs_fh *out)
{
	union {
		struct file_handle h;
		uint8_t raw[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} kh;
	int mnt_id;
	size_t len;

	if (!fh_key_ok)
		return -EINVAL;
	memset(&kh, 0, sizeof(kh));
	kh.h.handle_bytes = MAX_HANDLE_SZ;
	/* No AT_SYMLINK_FOLLOW: a symlink gets a handle of its own; the client
	 * resolves it (RFC 1813 3.3.5 READLINK). */
	if (name_to_handle_at(dirfd, name, &kh.h, &mnt_id, name[0] ? 0 : AT_EMPTY_PATH) < 0)
		return errno == EOVERFLOW ? -EOVERFLOW : -errno;
	if (kh.h.handle_bytes > FH_KMAX)
		return -EOVERFLOW;
	out->data[0] = FH_VERSION;
	out->data[1] = (uint8_t)kh.h.handle_bytes;
	put_be32(out->data + 2, (uint32_t)kh.h.handle_type);
	put_be32(out->data + 6, export_id);
	memcpy(out->data + FH_HDR, kh.h.f_handle, kh.h.handle_bytes);
	len = FH_HDR + kh.h.handle_bytes;
	fh_mac(out->data, len, out->data + len);
	out->len = (uint8_t)(len + FH_MAC_LEN);
	return 0;
}

int fh_verify(const uint8_t *data, size_t len, uint32_t *export_id)
{
	uint8_t mac[FH_MAC_LEN];
	size_t body;

	/* Check every length before touching the bytes it covers. */
	if (!fh_key_ok || !data || len < FH_HDR + FH_MAC_LEN || len > NFS_FH_MAX)
		return -EBADMSG;
	if (data[0] != FH_VERSION || data[1] > FH_KMAX ||
	    len != (size_t)FH_HDR + data[1] + FH_MAC_LEN)
		return -EBADMSG;
	body = FH_HDR + data[1];
	fh_mac(data, body, mac);
	if (CRYPTO_memcmp(mac, data + body, FH_MAC_LEN) != 0)
		return -EBADMSG;
	if (export_id)
		*export_id = get_be32(data + 6);
	return 0;
}

/* Is the directory fd inside the export root (root_st)?  Walks ".." until it
 * meets the root or the top of the file system. */
static int dir_inside(int fd, const struct stat *root_st)
{
	struct stat st;
	int cur = fd, rc = -ESTALE;

	for (int depth = 0; depth < FH_MAX_DEPTH; depth++) {
		int up;
		struct stat ust;

		if (fstat(cur, &st) < 0) {
			rc = -errno;
			break;
		}
		if (st.st_dev == root_st->st_dev && st.st_ino == root_st->st_ino) {
			rc = 0;
			break;
		}
		up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (up < 0) {
			rc = -errno;
			break;
		}
		if (fstat(up, &ust) < 0 || (ust.st_dev == st.st_dev && ust.st_ino == st.st_ino)) {
			/* the file system's (or the mount's) top: never met the root */
			close(up);
			break;
		}
		if (cur != fd)
			close(cur);
		cur = up;
	}
	if (cur != fd)
		close(cur);
	return rc;
}

int fh_open(const uint8_t *data, size_t len, int export_root_fd, int flags)
{
	union {
		struct file_handle h;
		uint8_t raw[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} kh;
	struct stat st, root_st;
	int fd, rc;

	rc = fh_verify(data, len, NULL);
	if (rc < 0)
		return rc;
	memset(&kh, 0, sizeof(kh));
	kh.h.handle_bytes = data[1];
	kh.h.handle_type = (int)get_be32(data + 2);
	memcpy(kh.h.f_handle, data + FH_HDR, data[1]);
	/* The export root's fd names the file system (mount) to decode on.
	 * open_by_handle_at(2) refuses an O_PATH mount_fd (EBADF), and export
	 * roots are O_PATH: reopen it through its magic link then. */
	fd = open_by_handle_at(export_root_fd, &kh.h, O_PATH | O_CLOEXEC | flags);
	if (fd < 0 && errno == EBADF) {
		char path[64];
		int mfd;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", export_root_fd);
		mfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (mfd < 0)
			return -errno;
		fd = open_by_handle_at(mfd, &kh.h, O_PATH | O_CLOEXEC | flags);
		rc = fd < 0 ? -errno : 0;
		close(mfd);
	} else {
		rc = fd < 0 ? -errno : 0;
	}
	if (fd < 0) {
		/* A handle the file system cannot decode (deleted inode, wrong
		 * generation, bad bytes that passed our MAC only because the
		 * export moved to another file system) is stale. */
		if (rc == -EINVAL || rc == -ENOENT || rc == -ENOTDIR)
			rc = -ESTALE;
		return rc;
	}
	if (fstat(fd, &st) < 0 || fstat(export_root_fd, &root_st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (st.st_dev != root_st.st_dev || st.st_nlink == 0) {
		rc = -ESTALE;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = dir_inside(fd, &root_st);
		if (rc < 0) {
			if (rc != -ENOMEM && rc != -EMFILE && rc != -ENFILE)
				rc = -ESTALE;
			goto fail;
		}
	}
	return fd;
fail:
	close(fd);
	return rc;
}
