/* probe_host.c - host facts for a migration: CPU, hypervisor, memory,
 * bridges, subnets; plus the companion's small shared helpers. */
#include "companion/probe.h"
#include "companion/run.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

char *xstrdup(const char *s)
{
	if (!s)
		return NULL;
	char *r = strdup(s);
	if (!r) {
		fputs("ringstor-migrate: out of memory\n", stderr);
		abort();
	}
	return r;
}

void strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv) {
		fputs("ringstor-migrate: out of memory\n", stderr);
		abort();
	}
	*v = nv;
	nv[(*n)++] = xstrdup(s);
}

bool strv_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

void set_error(char **dst, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(*dst);
	*dst = s ? s : xstrdup("error (out of memory formatting it)");
}

const char *disk_kind_name(enum disk_kind k)
{
	switch (k) {
	case DISK_ISCSI: return "iscsi";
	case DISK_NFS: return "nfs";
	default: return "local";
	}
}

/* Reads a small text file (at most 1 MiB) under root; NULL if absent. */
static char *slurp(const char *root, const char *path)
{
	char full[4096];
	snprintf(full, sizeof(full), "%s%s", root ? root : "", path);
	FILE *f = fopen(full, "re");
	if (!f)
		return NULL;
	struct strbuf sb = {0};
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && sb.len < (1u << 20))
		sb_append(&sb, buf, n);
	fclose(f);
	if (!sb.buf)
		sb_append(&sb, "", 0);
	return sb.buf;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* ---------------------------------------------------------------- parsers */

void probe_parse_cpuinfo(struct probe_host *h, const char *text)
{
	bool have_flags = false;
	const char *p = text;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, n);
		p = nl ? nl + 1 : NULL;
		if (!line)
			break;
		char *colon = strchr(line, ':');
		if (colon) {
			*colon = '\0';
			char *key = trim(line), *val = trim(colon + 1);
			/* x86 "model name"; arm64 has no model name, fall back to
			 * "CPU implementer"/"CPU part"; s390 "processor 0" lines. */
			if (!h->cpu_model && (strcmp(key, "model name") == 0 || strcmp(key, "cpu model") == 0 ||
					      strcmp(key, "cpu") == 0) && *val)
				h->cpu_model = xstrdup(val);
			if (!have_flags && (strcmp(key, "flags") == 0 || strcmp(key, "Features") == 0 ||
					    strcmp(key, "features") == 0)) {
				have_flags = true;
				char *save = NULL;
				for (char *tok = strtok_r(val, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
					if (!strv_has(h->cpu_flags, h->ncpu_flags, tok))
						strv_push(&h->cpu_flags, &h->ncpu_flags, tok);
			}
		}
		free(line);
	}
}

bool probe_parse_meminfo(const char *text, uint64_t *kib)
{
	const char *p = text ? strstr(text, "MemAvailable:") : NULL;
	if (!p)
		return false;
	unsigned long long v;
	if (sscanf(p + strlen("MemAvailable:"), " %llu", &v) != 1)
		return false;
	*kib = v;
	return true;
}

bool probe_subnet(int family, const char *addr, unsigned prefix, char *out, size_t outlen)
{
	unsigned char b[16];
	int af = family == 6 ? AF_INET6 : AF_INET;
	unsigned bits = family == 6 ? 128 : 32;
	if ((family != 4 && family != 6) || prefix > bits || inet_pton(af, addr, b) != 1)
		return false;
	for (unsigned i = 0; i < bits / 8; i++) {
		unsigned keep = prefix > i * 8 ? prefix - i * 8 : 0;
		if (keep < 8)
			b[i] &= (unsigned char)(0xff << (8 - keep));
	}
	char txt[INET6_ADDRSTRLEN];
	if (!inet_ntop(af, b, txt, sizeof(txt)))
		return false;
	snprintf(out, outlen, "%s/%u", txt, prefix);
	return true;
}

/* ---------------------------------------------------------------- collect */

static unsigned mask_prefix(const struct sockaddr *sa)
{
	const unsigned char *m;
	size_t n;
	if (sa->sa_family == AF_INET) {
		m = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		n = 4;
	} else {
		m = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		n = 16;
	}
	unsigned p = 0;
	for (size_t i = 0; i < n; i++)
		for (int bit = 7; bit >= 0; bit--)
			if (m[i] & (1 << bit))
				p++;
	return p;
}

static void collect_addrs(struct probe_host *h)
{
	struct ifaddrs *ifa0;
	if (getifaddrs(&ifa0) < 0)
		return;
	for (struct ifaddrs *ifa = ifa0; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || !ifa->ifa_netmask || !(ifa->ifa_flags & IFF_UP) ||
		    (ifa->ifa_flags & IFF_LOOPBACK))
			continue;
		int fam = ifa->ifa_addr->sa_family;
		if (fam != AF_INET && fam != AF_INET6)
			continue;
		char txt[INET6_ADDRSTRLEN];
		const void *a = fam == AF_INET ? (const void *)&((struct sockaddr_in *)ifa->ifa_addr)->sin_addr
					       : (const void *)&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
		/* Link-local IPv6 (fe80::/10) is on every link and says
		 * nothing about whether two hosts share a network. */
		if (fam == AF_INET6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)a))
			continue;
		if (!inet_ntop(fam, a, txt, sizeof(txt)))
			continue;
		unsigned prefix = mask_prefix(ifa->ifa_netmask);
		char net[INET6_ADDRSTRLEN + 8];
		if (!probe_subnet(fam == AF_INET ? 4 : 6, txt, prefix, net, sizeof(net)))
			continue;
		struct probe_addr *na = realloc(h->addrs, (h->naddrs + 1) * sizeof(*na));
		if (!na)
			break;
		h->addrs = na;
		na[h->naddrs++] = (struct probe_addr){
			.iface = xstrdup(ifa->ifa_name), .family = fam == AF_INET ? 4 : 6,
			.address = xstrdup(txt), .prefix = prefix, .subnet = xstrdup(net),
		};
	}
	freeifaddrs(ifa0);
}

static void collect_bridges(struct probe_host *h, const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/sys/class/net", root);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[4096 + 300];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s/bridge", dir, de->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			strv_push(&h->bridges, &h->nbridges, de->d_name);
	}
	closedir(d);
	/* Sort for stable output. */
	for (size_t i = 1; i < h->nbridges; i++)
		for (size_t j = i; j > 0 && strcmp(h->bridges[j - 1], h->bridges[j]) > 0; j--) {
			char *t = h->bridges[j];
			h->bridges[j] = h->bridges[j - 1];
			h->bridges[j - 1] = t;
		}
}

static bool exists(const char *root, const char *path)
{
	char full[4096];
	snprintf(full, sizeof(full), "%s%s", root, path);
	return access(full, F_OK) == 0;
}

void probe_host_collect(struct probe_host *h, const char *root)
{
	if (!root)
		root = "";
	h->version = PROBE_FORMAT_VERSION;
	char hn[256] = "";
	if (gethostname(hn, sizeof(hn) - 1) == 0)
		h->hostname = xstrdup(hn);
	char *s = slurp(root, "/proc/sys/kernel/random/boot_id");
	if (s) {
		h->boot_id = xstrdup(trim(s));
		free(s);
	}
	struct utsname u;
	if (uname(&u) == 0)
		h->arch = xstrdup(u.machine);
	s = slurp(root, "/proc/cpuinfo");
	if (s) {
		probe_parse_cpuinfo(h, s);
		free(s);
	}
	s = slurp(root, "/proc/meminfo");
	if (s) {
		h->mem_known = probe_parse_meminfo(s, &h->mem_available_kib);
		free(s);
	}
	h->kvm = exists(root, "/dev/kvm");
	h->xen = exists(root, "/proc/xen");
	h->libvirt = exists(root, "/run/libvirt/libvirt-sock") || exists(root, "/var/run/libvirt/libvirt-sock") ||
		     exists(root, "/run/libvirt/virtqemud-sock");
	char qemu[64];
	snprintf(qemu, sizeof(qemu), "qemu-system-%s", h->arch ? h->arch : "x86_64");
	char *qpath = which(qemu);
	if (!qpath && strcmp(qemu, "qemu-system-x86_64") != 0)
		qpath = which("qemu-system-x86_64");
	if (qpath) {
		char *argv[] = { qpath, (char *)"--version", NULL };
		h->qemu_version = run_first_line(argv, 10);
		free(qpath);
	}
	collect_bridges(h, root);
	collect_addrs(h);
}

/* ---------------------------------------------------------------- free */

void probe_disk_free(struct probe_disk *d)
{
	char **strs[] = { &d->spec, &d->error, &d->portal, &d->target, &d->naa, &d->serial, &d->vendor,
			  &d->product, &d->server, &d->export_path, &d->file, &d->fh, &d->realpath,
			  &d->device, &d->mount_source, &d->fstype, &d->wwid };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	memset(d, 0, sizeof(*d));
}

void probe_host_free(struct probe_host *h)
{
	free(h->hostname);
	free(h->boot_id);
	free(h->arch);
	free(h->cpu_model);
	for (size_t i = 0; i < h->ncpu_flags; i++)
		free(h->cpu_flags[i]);
	free(h->cpu_flags);
	free(h->qemu_version);
	for (size_t i = 0; i < h->nbridges; i++)
		free(h->bridges[i]);
	free(h->bridges);
	for (size_t i = 0; i < h->naddrs; i++) {
		free(h->addrs[i].iface);
		free(h->addrs[i].address);
		free(h->addrs[i].subnet);
	}
	free(h->addrs);
	for (size_t i = 0; i < h->ndisks; i++)
		probe_disk_free(&h->disks[i]);
	free(h->disks);
	memset(h, 0, sizeof(*h));
}
