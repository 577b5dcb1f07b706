/* probe_disk_local.c - a disk given as a local path (file or block device),
 * and the dispatcher for all disk kinds. */
#include "companion/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum disk_kind probe_disk_kind(const char *spec)
{
	if (strncasecmp(spec, "iscsi://", 8) == 0)
		return DISK_ISCSI;
	if (strncasecmp(spec, "nfs://", 6) == 0)
		return DISK_NFS;
	return DISK_LOCAL;
}

int probe_disk_run(struct probe_disk *d, const char *spec, const char *initiator_name)
{
	memset(d, 0, sizeof(*d));
	d->spec = xstrdup(spec);
	d->kind = probe_disk_kind(spec);
	switch (d->kind) {
	case DISK_ISCSI: return probe_disk_iscsi(d, initiator_name);
	case DISK_NFS: return probe_disk_nfs(d);
	default: return probe_disk_local(d);
	}
}

/* /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

static bool path_under(const char *path, const char *mnt)
{
	size_t n = strlen(mnt);
	if (strcmp(mnt, "/") == 0)
		return true;
	return strncmp(path, mnt, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Finds the mount holding `path` (longest mount point prefix, the later
 * entry winning on overmounts) and records its source and type. */
static void find_mount(struct probe_disk *d, const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	size_t best = 0;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *save = NULL, *fields[6] = {0};
		int nf = 0;
		char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && nf < 6; t = strtok_r(NULL, " ", &save))
			fields[nf++] = t;
		if (nf < 5)
			continue;
		char *mnt = fields[4];
		unescape_octal(mnt);
		char *save2 = NULL;
		char *fstype = strtok_r(sep + 3, " \n", &save2);
		char *source = strtok_r(NULL, " \n", &save2);
		if (!fstype || !source || !path_under(path, mnt))
			continue;
		size_t len = strlen(mnt);
		if (len >= best) {
			best = len;
			unescape_octal(source);
			free(d->mount_source);
			free(d->fstype);
			d->mount_source = xstrdup(source);
			d->fstype = xstrdup(fstype);
		}
	}
	free(line);
	fclose(f);
}

struct fd_ctx {
	int fd;
};

static int fd_read(void *ctx, void *buf, uint32_t len, uint64_t off, char *err, size_t errlen)
{
	struct fd_ctx *c = ctx;
	uint32_t done = 0;
	while (done < len) {
		ssize_t r = pread(c->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "read at offset %llu: %s", (unsigned long long)(off + done),
				 strerror(errno));
			return -1;
		}
		if (r == 0) {
			snprintf(err, errlen, "short read at offset %llu (file shrank?)",
				 (unsigned long long)(off + done));
			return -1;
		}
		done += (uint32_t)r;
	}
	return 0;
}

int probe_disk_local(struct probe_disk *d)
{
	char rp[PATH_MAX];
	if (!realpath(d->spec, rp)) {
		set_error(&d->error, "%s: %s", d->spec, strerror(errno));
		return -1;
	}
	d->realpath = xstrdup(rp);
	int fd = open(rp, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_error(&d->error, "open %s: %s", rp, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		set_error(&d->error, "stat %s: %s", rp, strerror(errno));
		close(fd);
		return -1;
	}
	char dev[64];
	d->block_size = 512;
	d->inode = st.st_ino;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			set_error(&d->error, "BLKGETSIZE64 %s: %s", rp, strerror(errno));
			close(fd);
			return -1;
		}
		d->size = sz;
		int ss = 0;
		if (ioctl(fd, BLKSSZGET, &ss) == 0 && ss > 0)
			d->block_size = (uint32_t)ss;
		snprintf(dev, sizeof(dev), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
		/* The device's world-wide id (SCSI VPD 0x83 as the kernel saw it)
		 * identifies a shared LUN across hosts; major:minor does not. */
		char p[128];
		snprintf(p, sizeof(p), "/sys/dev/block/%s/device/wwid", dev);
		FILE *f = fopen(p, "re");
		if (!f) {
			snprintf(p, sizeof(p), "/sys/dev/block/%s/wwid", dev);
			f = fopen(p, "re");
		}
		if (f) {
			char w[256];
			if (fgets(w, sizeof(w), f)) {
				w[strcspn(w, "\n")] = '\0';
				if (*w)
					d->wwid = xstrdup(w);
			}
			fclose(f);
		}
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
		snprintf(dev, sizeof(dev), "%u:%u", major(st.st_dev), minor(st.st_dev));
	} else {
		set_error(&d->error, "%s is neither a regular file nor a block device", rp);
		close(fd);
		return -1;
	}
	d->device = xstrdup(dev);
	find_mount(d, rp);
	char err[256];
	struct fd_ctx c = { fd };
	int ret = fingerprint_compute(d->size, fd_read, &c, &d->fp, err, sizeof(err));
	if (ret < 0)
		set_error(&d->error, "fingerprint of %s: %s", rp, err);
	close(fd);
	return ret;
}
