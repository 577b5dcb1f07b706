/* state.c - see state.h.  Runs at startup, before the reactors: blocking I/O
 * is fine here. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define ID_HEX 32

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static bool valid_id(const char *s)
{
	for (int i = 0; i < ID_HEX; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int rs_appliance_id(const char *state_dir, char *out, size_t len)
{
	char path[4200], tmp[4210], buf[ID_HEX + 2];
	unsigned char raw[ID_HEX / 2];
	int fd, ret;
	ssize_t n;

	if (len < ID_HEX + 1)
		return -EINVAL;
	if ((ret = mkdir_p(state_dir)) < 0)
		return ret;
	snprintf(path, sizeof(path), "%s/appliance-id", state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		close(fd);
		if (n >= ID_HEX && valid_id(buf)) {
			memcpy(out, buf, ID_HEX);
			out[ID_HEX] = '\0';
			return 0;
		}
		/* A damaged id would silently change every LU identity: refuse. */
		log_err("%s: not a valid appliance id; fix or remove it", path);
		return -EINVAL;
	}
	if (errno != ENOENT)
		return -errno;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	snprintf(buf, sizeof(buf), "%s\n", out);
	if (write(fd, buf, ID_HEX + 1) != ID_HEX + 1 || fsync(fd) < 0) {
		ret = -errno;
		close(fd);
		unlink(tmp);
		return ret ? ret : -EIO;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		return -errno;
	log_notice("created appliance id %s in %s", out, path);
	return 0;
}
