/* probe.h - the facts one host reports for a migration (ringstor-migrate probe).
 *
 * A probe is collected on each host (probe_host_collect + probe_disk_*), turned
 * into JSON (probe_to_json) and shipped back to the preflight host, which
 * parses it (probe_from_json) and compares source and destination
 * (compare.h).  All strings are malloc'd and owned by the struct.
 */
#ifndef RS_COMPANION_PROBE_H
#define RS_COMPANION_PROBE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "companion/fingerprint.h"
#include "companion/json.h"

#define PROBE_FORMAT_VERSION 1

enum disk_kind { DISK_LOCAL, DISK_ISCSI, DISK_NFS };

struct probe_disk {
	char *spec;            /* the path or URL exactly as given */
	enum disk_kind kind;
	char *error;           /* non-NULL: this host could not probe it (why) */
	uint64_t size;         /* bytes */
	uint32_t block_size;   /* bytes (iSCSI: logical block; else 512) */

	/* iSCSI (SPC-4 7.8.6 VPD 0x83, 7.8.16 VPD 0x80; SBC-3 5.16 READ CAPACITY 16) */
	char *portal;          /* host[:port] */
	char *target;          /* target IQN */
	int lun;
	char *naa;             /* NAA designator, hex (VPD 0x83, association LU) */
	char *serial;          /* unit serial number (VPD 0x80), trimmed */
	char *vendor, *product;

	/* NFS (RFC 1813): server, export, file inside it, its handle and fileid */
	char *server;
	char *export_path;
	char *file;
	char *fh;              /* file handle, hex */
	uint64_t fileid;

	/* local path: st_dev (major:minor), st_ino, canonical path, mount */
	char *realpath;
	char *device;          /* "major:minor" of st_dev (or st_rdev of a block device) */
	uint64_t inode;
	char *mount_source;    /* from /proc/self/mountinfo */
	char *fstype;
	char *wwid;            /* block devices: /sys/dev/block/M:m/device/wwid if any */

	struct fingerprint fp; /* fp.valid false if not computed */
};

struct probe_addr {
	char *iface;
	int family;            /* 4 or 6 */
	char *address;
	unsigned prefix;
	char *subnet;          /* network/prefix, e.g. 10.77.0.0/24 */
};

struct probe_host {
	int version;
	char *hostname;
	char *boot_id;         /* /proc/sys/kernel/random/boot_id: same machine? */
	char *arch;            /* uname -m */
	char *cpu_model;
	char **cpu_flags;
	size_t ncpu_flags;
	bool kvm, xen, libvirt;
	char *qemu_version;    /* first line of qemu-system-x86_64 --version, or NULL */
	uint64_t mem_available_kib;
	bool mem_known;
	char **bridges;
	size_t nbridges;
	struct probe_addr *addrs;
	size_t naddrs;
	struct probe_disk *disks;
	size_t ndisks;
};

/* ---- collection (probe_host.c) ----
 * Fills the host facts from /proc, /sys, uname and getifaddrs.  Missing
 * facts are left empty, never fatal.  `root` prefixes /proc and /sys paths
 * (NULL or "" for the real ones) so tests can feed canned files. */
void probe_host_collect(struct probe_host *h, const char *root);
/* Parses /proc/cpuinfo text: model and flags (x86 "flags", arm "Features"). */
void probe_parse_cpuinfo(struct probe_host *h, const char *text);
/* Parses /proc/meminfo text: MemAvailable in KiB.  false if absent. */
bool probe_parse_meminfo(const char *text, uint64_t *kib);
/* network/prefix for an address; false if `addr` is not an address of `family`. */
bool probe_subnet(int family, const char *addr, unsigned prefix, char *out, size_t outlen);

/* ---- disks ----
 * probe_disk_run classifies spec (iscsi://, nfs://, else a local path), fills
 * the identity and the fingerprint; on failure sets d->error and returns -1. */
enum disk_kind probe_disk_kind(const char *spec);
int probe_disk_run(struct probe_disk *d, const char *spec, const char *initiator_name);
int probe_disk_iscsi(struct probe_disk *d, const char *initiator_name);
int probe_disk_nfs(struct probe_disk *d);
int probe_disk_local(struct probe_disk *d);

/* ---- JSON ---- */
char *probe_to_json(const struct probe_host *h);  /* caller frees; NULL on OOM */
/* Returns 0, or -1 with a reason in err (bad JSON, missing version, ...). */
int probe_from_json(struct probe_host *h, const char *text, size_t len, char *err, size_t errlen);
/* Human-readable text form (probe without --json). */
char *probe_to_text(const struct probe_host *h);

void probe_disk_free(struct probe_disk *d);
void probe_host_free(struct probe_host *h);

/* small helpers shared by the companion */
char *xstrdup(const char *s);            /* NULL-safe, aborts on OOM */
void strv_push(char ***v, size_t *n, const char *s);
bool strv_has(char *const *v, size_t n, const char *s);
void set_error(char **dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *disk_kind_name(enum disk_kind k);
#endif
