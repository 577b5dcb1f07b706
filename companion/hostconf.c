/* hostconf.c - see hostconf.h. */
#include "companion/hostconf.h"
#include "companion/domain.h"
#include "companion/probe.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hc_parse {
	const char *name;      /* file name for messages */
	char *err;
	size_t errlen;
	bool failed;
};

static void hc_fail(struct hc_parse *p, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void hc_fail(struct hc_parse *p, const config_setting_t *s, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unsigned line = s ? config_setting_source_line(s) : 0;
	if (line)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->name, line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->name, msg);
}

static const char *type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP: return "a group { }";
	case CONFIG_TYPE_INT: case CONFIG_TYPE_INT64: return "a number";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array [ ]";
	case CONFIG_TYPE_LIST: return "a list ( )";
	default: return "something else";
	}
}

/* A string setting: copied to *dst (non-empty). */
static void get_str(struct hc_parse *p, const config_setting_t *s, char **dst)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		hc_fail(p, s, "'%s' must be a string (\"...\"), not %s", config_setting_name(s),
			type_name(config_setting_type(s)));
		return;
	}
	const char *v = config_setting_get_string(s);
	if (!v || !*v) {
		hc_fail(p, s, "'%s' must not be empty", config_setting_name(s));
		return;
	}
	free(*dst);
	*dst = xstrdup(v);
}

/* An array or list of strings. */
static void get_strv(struct hc_parse *p, const config_setting_t *s, char ***v, size_t *n)
{
	int t = config_setting_type(s);
	if (t == CONFIG_TYPE_STRING) {
		/* a single string is accepted as a list of one */
		char *one = NULL;
		get_str(p, s, &one);
		if (one)
			strv_push(v, n, one);
		free(one);
		return;
	}
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		hc_fail(p, s, "'%s' must be an array of strings [ \"...\", ... ], not %s", config_setting_name(s),
			type_name(t));
		return;
	}
	int len = config_setting_length(s);
	for (int i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING || !config_setting_get_string(e) ||
		    !*config_setting_get_string(e)) {
			hc_fail(p, e, "'%s': element %d must be a non-empty string", config_setting_name(s), i + 1);
			return;
		}
		strv_push(v, n, config_setting_get_string(e));
	}
}

static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s == '/' || *s == '\'' || *s == '"' || *s == '\\')
			return false;
	return true;
}

static void parse_host(struct hc_parse *p, const config_setting_t *g, struct hc_host *h)
{
	h->line = (int)config_setting_source_line(g);
	int n = config_setting_length(g);
	for (int i = 0; i < n && !p->failed; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *k = config_setting_name(s);
		if (!k) {
			hc_fail(p, s, "a host is a group of name = value; settings");
			return;
		}
		char **dst = strcmp(k, "name") == 0            ? &h->name
			     : strcmp(k, "rsh_host") == 0      ? &h->rsh_host
			     : strcmp(k, "address") == 0       ? &h->address
			     : strcmp(k, "initiator_name") == 0 ? &h->initiator_name
			     : strcmp(k, "nfs_holder") == 0    ? &h->nfs_holder
			     : strcmp(k, "qmp_dir") == 0       ? &h->qmp_dir
			     : strcmp(k, "libvirt_uri") == 0   ? &h->libvirt_uri
							       : NULL;
		if (!dst) {
			hc_fail(p, s, "unknown host setting '%s' (known: name, rsh_host, address, initiator_name, "
				"nfs_holder, qmp_dir, libvirt_uri)", k);
			return;
		}
		get_str(p, s, dst);
	}
	if (p->failed)
		return;
	if (!h->name)
		hc_fail(p, g, "a host needs a name");
	else if (!name_ok(h->name))
		hc_fail(p, g, "host name '%s': no spaces, quotes or slashes", h->name);
	else if (h->initiator_name && strchr(h->initiator_name, ','))
		hc_fail(p, g, "host %s: initiator_name must not contain a comma", h->name);
	else if (h->qmp_dir && h->qmp_dir[0] != '/')
		hc_fail(p, g, "host %s: qmp_dir must be an absolute path", h->name);
}

static void parse_vm(struct hc_parse *p, const config_setting_t *g, struct hc_vm *v)
{
	v->line = (int)config_setting_source_line(g);
	int n = config_setting_length(g);
	for (int i = 0; i < n && !p->failed; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *k = config_setting_name(s);
		if (!k) {
			hc_fail(p, s, "a VM is a group of name = value; settings");
			return;
		}
		char **dst = strcmp(k, "name") == 0           ? &v->name
			     : strcmp(k, "driver") == 0       ? &v->driver
			     : strcmp(k, "domain") == 0       ? &v->domain
			     : strcmp(k, "qmp") == 0          ? &v->qmp
			     : strcmp(k, "pidfile") == 0      ? &v->pidfile
			     : strcmp(k, "qemu_cmdline") == 0 ? &v->qemu_cmdline
			     : strcmp(k, "domain_xml") == 0   ? &v->domain_xml
							      : NULL;
		if (dst) {
			get_str(p, s, dst);
		} else if (strcmp(k, "disks") == 0) {
			get_strv(p, s, &v->disks, &v->ndisks);
		} else if (strcmp(k, "leases") == 0) {
			get_strv(p, s, &v->leases, &v->nleases);
		} else if (strcmp(k, "bridges") == 0) {
			get_strv(p, s, &v->bridges, &v->nbridges);
		} else if (strcmp(k, "memory") == 0) {
			int t = config_setting_type(s);
			uint64_t bytes = 0;
			if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
				long long mib = config_setting_get_int64(s);
				if (mib <= 0 || mib > (1LL << 40)) {
					hc_fail(p, s, "memory: %lld MiB is out of range", mib);
					return;
				}
				bytes = (uint64_t)mib << 20;
			} else if (t != CONFIG_TYPE_STRING ||
				   !parse_size_unit(config_setting_get_string(s), NULL, 1u << 20, &bytes) || !bytes) {
				hc_fail(p, s, "memory: want a size like \"1G\", \"512M\" or a number of MiB");
				return;
			}
			v->memory_kib = bytes / 1024;
			v->mem_known = true;
		} else {
			hc_fail(p, s, "unknown VM setting '%s' (known: name, driver, domain, qmp, pidfile, qemu_cmdline, "
				"domain_xml, disks, leases, memory, bridges)", k);
			return;
		}
	}
	if (p->failed)
		return;
	if (!v->name) {
		hc_fail(p, g, "a VM needs a name");
		return;
	}
	if (!name_ok(v->name)) {
		hc_fail(p, g, "VM name '%s': no spaces, quotes or slashes", v->name);
		return;
	}
	if (v->driver && strcmp(v->driver, "qemu") != 0 && strcmp(v->driver, "libvirt") != 0 &&
	    strcmp(v->driver, "xen") != 0) {
		hc_fail(p, g, "VM %s: driver '%s': want qemu, libvirt or xen", v->name, v->driver);
		return;
	}
	if (v->qemu_cmdline && v->domain_xml)
		hc_fail(p, g, "VM %s: give qemu_cmdline or domain_xml, not both", v->name);
	for (size_t i = 0; i < v->nleases && !p->failed; i++)
		if (!strchr(v->leases[i], '='))
			hc_fail(p, g, "VM %s: lease '%s': want KEY=VALUE[,KEY=VALUE...] (ringstoradm options "
				"without the dashes, e.g. \"tid=1,lun=1\")", v->name, v->leases[i]);
}

static const char *const top_keys[] = { "appliance", "rsh", "adm", "remote_cmd", "journal_dir", "transfer_at",
					 "port", "hosts", "vms" };

static void parse_root(struct hc_parse *p, const config_setting_t *root, struct hostconf *hc)
{
	int n = config_setting_length(root);
	for (int i = 0; i < n && !p->failed; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *k = config_setting_name(s);
		bool known = false;
		for (size_t j = 0; j < sizeof(top_keys) / sizeof(top_keys[0]); j++)
			known = known || strcmp(k, top_keys[j]) == 0;
		if (!known) {
			hc_fail(p, s, "unknown setting '%s' (known: appliance, rsh, adm, remote_cmd, journal_dir, "
				"transfer_at, port, hosts, vms)", k);
			return;
		}
		if (strcmp(k, "appliance") == 0) get_str(p, s, &hc->appliance);
		else if (strcmp(k, "rsh") == 0) get_str(p, s, &hc->rsh);
		else if (strcmp(k, "adm") == 0) get_str(p, s, &hc->adm);
		else if (strcmp(k, "remote_cmd") == 0) get_str(p, s, &hc->remote_cmd);
		else if (strcmp(k, "journal_dir") == 0) get_str(p, s, &hc->journal_dir);
		else if (strcmp(k, "transfer_at") == 0) {
			get_str(p, s, &hc->transfer_at);
			if (hc->transfer_at && strcmp(hc->transfer_at, "completed") != 0 &&
			    strcmp(hc->transfer_at, "pre-switchover") != 0)
				hc_fail(p, s, "transfer_at: want \"completed\" or \"pre-switchover\"");
		} else if (strcmp(k, "port") == 0) {
			int t = config_setting_type(s);
			long long v = (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) ? config_setting_get_int64(s) : -1;
			if (v < 1 || v > 65535)
				hc_fail(p, s, "port: want a number 1..65535");
			else
				hc->port = (int)v;
		} else {
			bool hosts = strcmp(k, "hosts") == 0;
			int t = config_setting_type(s);
			if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)) {
				hc_fail(p, s, "'%s' must be a list of groups: %s = ( { name = \"...\"; ... }, ... );", k, k);
				return;
			}
			int m = config_setting_length(s);
			for (int e = 0; e < m && !p->failed; e++) {
				const config_setting_t *g = config_setting_get_elem(s, (unsigned)e);
				if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
					hc_fail(p, g, "'%s': element %d must be a group { ... }", k, e + 1);
					return;
				}
				if (hosts) {
					struct hc_host *nh = realloc(hc->hosts, (hc->nhosts + 1) * sizeof(*nh));
					if (!nh)
						abort();
					hc->hosts = nh;
					memset(&nh[hc->nhosts], 0, sizeof(*nh));
					parse_host(p, g, &nh[hc->nhosts++]);
				} else {
					struct hc_vm *nv = realloc(hc->vms, (hc->nvms + 1) * sizeof(*nv));
					if (!nv)
						abort();
					hc->vms = nv;
					memset(&nv[hc->nvms], 0, sizeof(*nv));
					parse_vm(p, g, &nv[hc->nvms++]);
				}
			}
		}
	}
	/* duplicate names: the second one would never be found */
	for (size_t i = 0; i < hc->nhosts && !p->failed; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(hc->hosts[i].name, hc->hosts[j].name) == 0) {
				snprintf(p->err, p->errlen, "%s:%d: host '%s' is already defined at line %d", p->name,
					 hc->hosts[i].line, hc->hosts[i].name, hc->hosts[j].line);
				p->failed = true;
				break;
			}
	for (size_t i = 0; i < hc->nvms && !p->failed; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(hc->vms[i].name, hc->vms[j].name) == 0) {
				snprintf(p->err, p->errlen, "%s:%d: VM '%s' is already defined at line %d", p->name,
					 hc->vms[i].line, hc->vms[i].name, hc->vms[j].line);
				p->failed = true;
				break;
			}
}

static int hc_finish(struct hostconf *hc, config_t *cfg, int ok, const char *name, char *err, size_t errlen)
{
	if (!ok) {
		const char *f = config_error_file(cfg);
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: %s", name, errno ? strerror(errno) : "cannot read the file");
		else
			snprintf(err, errlen, "%s:%d: %s", f ? f : name, config_error_line(cfg), config_error_text(cfg));
		config_destroy(cfg);
		return -1;
	}
	struct hc_parse p = { .name = name, .err = err, .errlen = errlen };
	hc->path = xstrdup(name);
	parse_root(&p, config_root_setting(cfg), hc);
	config_destroy(cfg);
	if (p.failed) {
		hostconf_free(hc);
		return -1;
	}
	return 0;
}

int hostconf_load(struct hostconf *hc, const char *path, char *err, size_t errlen)
{
	memset(hc, 0, sizeof(*hc));
	config_t cfg;
	config_init(&cfg);
	errno = 0;
	int ok = config_read_file(&cfg, path) == CONFIG_TRUE;
	return hc_finish(hc, &cfg, ok, path, err, errlen);
}

int hostconf_parse(struct hostconf *hc, const char *text, const char *name, char *err, size_t errlen)
{
	memset(hc, 0, sizeof(*hc));
	config_t cfg;
	config_init(&cfg);
	int ok = config_read_string(&cfg, text) == CONFIG_TRUE;
	return hc_finish(hc, &cfg, ok, name, err, errlen);
}

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void hostconf_free(struct hostconf *hc)
{
	free(hc->path);
	free(hc->appliance);
	free(hc->rsh);
	free(hc->adm);
	free(hc->remote_cmd);
	free(hc->journal_dir);
	free(hc->transfer_at);
	for (size_t i = 0; i < hc->nhosts; i++) {
		struct hc_host *h = &hc->hosts[i];
		free(h->name);
		free(h->rsh_host);
		free(h->address);
		free(h->initiator_name);
		free(h->nfs_holder);
		free(h->qmp_dir);
		free(h->libvirt_uri);
	}
	free(hc->hosts);
	for (size_t i = 0; i < hc->nvms; i++) {
		struct hc_vm *v = &hc->vms[i];
		free(v->name);
		free(v->driver);
		free(v->domain);
		free(v->qmp);
		free(v->pidfile);
		free(v->qemu_cmdline);
		free(v->domain_xml);
		strv_free_n(v->disks, v->ndisks);
		strv_free_n(v->leases, v->nleases);
		strv_free_n(v->bridges, v->nbridges);
	}
	free(hc->vms);
	memset(hc, 0, sizeof(*hc));
}

const struct hc_host *hostconf_host(const struct hostconf *hc, const char *name)
{
	for (size_t i = 0; hc && name && i < hc->nhosts; i++)
		if (strcmp(hc->hosts[i].name, name) == 0)
			return &hc->hosts[i];
	return NULL;
}

const struct hc_vm *hostconf_vm(const struct hostconf *hc, const char *name)
{
	for (size_t i = 0; hc && name && i < hc->nvms; i++)
		if (strcmp(hc->vms[i].name, name) == 0)
			return &hc->vms[i];
	return NULL;
}

bool lease_spec_is_nfs(const char *spec)
{
	/* "lld=nfs" anywhere, or an NFS object key */
	const char *p = spec;
	while (p && *p) {
		size_t m = strcspn(p, ",");
		if ((m == 7 && strncmp(p, "lld=nfs", 7) == 0) || strncmp(p, "path=", 5) == 0 ||
		    strncmp(p, "export-id=", 10) == 0 || strncmp(p, "file=", 5) == 0)
			return true;
		p += m;
		if (*p == ',')
			p++;
	}
	return false;
}

const char *hostconf_holder(const struct hc_host *h, char *const *leases, size_t nleases, char *err, size_t errlen)
{
	size_t nfs = 0;
	for (size_t i = 0; i < nleases; i++)
		nfs += lease_spec_is_nfs(leases[i]);
	if (nfs && nfs != nleases) {
		snprintf(err, errlen, "the VM has both iSCSI and NFS leases: a host has one lease identity per "
			 "migration (its initiator name for iSCSI, its address for NFS); migrate such a VM with "
			 "--source-holder/--dest-holder and one kind of lease");
		return NULL;
	}
	if (nfs) {
		const char *id = h->nfs_holder ? h->nfs_holder : h->address;
		if (!id)
			snprintf(err, errlen, "host %s: no nfs_holder or address for its NFS lease identity", h->name);
		return id;
	}
	if (!h->initiator_name)
		snprintf(err, errlen, "host %s: no initiator_name for its iSCSI lease identity", h->name);
	return h->initiator_name;
}
