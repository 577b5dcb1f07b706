/* domain.c - see domain.h. */
#include "companion/domain.h"
#include "companion/json.h"
#include "companion/probe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_MAX_DEPTH 64
#define XML_MAX_ATTRS 32

void vm_spec_free(struct vm_spec *vm)
{
	free(vm->name);
	for (size_t i = 0; i < vm->ndisks; i++)
		free(vm->disks[i]);
	free(vm->disks);
	for (size_t i = 0; i < vm->nbridges; i++)
		free(vm->bridges[i]);
	free(vm->bridges);
	for (size_t i = 0; i < vm->nnotes; i++)
		free(vm->notes[i]);
	free(vm->notes);
	memset(vm, 0, sizeof(*vm));
}

static void note(struct vm_spec *vm, const char *fmt, const char *a, const char *b)
{
	char buf[512];
	snprintf(buf, sizeof(buf), fmt, a ? a : "", b ? b : "");
	strv_push(&vm->notes, &vm->nnotes, buf);
}

bool parse_size_unit(const char *num, const char *unit, uint64_t default_mult, uint64_t *bytes)
{
	static const struct { const char *u; uint64_t m; } units[] = {
		{ "b", 1 }, { "bytes", 1 }, { "KB", 1000 }, { "k", 1024 }, { "K", 1024 }, { "KiB", 1024 },
		{ "MB", 1000000 }, { "M", 1 << 20 }, { "m", 1 << 20 }, { "MiB", 1 << 20 },
		{ "GB", 1000000000ULL }, { "G", 1ULL << 30 }, { "g", 1ULL << 30 }, { "GiB", 1ULL << 30 },
		{ "TB", 1000000000000ULL }, { "T", 1ULL << 40 }, { "t", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	};
	if (!num)
		return false;
	while (isspace((unsigned char)*num))
		num++;
	if (!isdigit((unsigned char)*num))
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(num, &end, 10);
	if (errno)
		return false;
	while (isspace((unsigned char)*end))
		end++;
	char ubuf[16] = "";
	if (*end) {
		/* a suffix glued to the number (QEMU "-m 2G") */
		size_t n = strcspn(end, " \t\n");
		if (n >= sizeof(ubuf) || end[n] != '\0')
			return false;
		memcpy(ubuf, end, n);
		unit = ubuf;
	}
	uint64_t mult = default_mult;
	if (unit && *unit) {
		mult = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(unit, units[i].u) == 0)
				mult = units[i].m;
		if (!mult)
			return false;
	}
	if (v > UINT64_MAX / mult)
		return false;
	*bytes = v * mult;
	return true;
}

/* ------------------------------------------------------------------ XML */

struct xattr {
	char *name, *value;
};

struct xml {
	const char *p, *end, *start;
	char *err;
	size_t errlen;
};

static int xfail(struct xml *x, const char *why)
{
	snprintf(x->err, x->errlen, "domain XML offset %zu: %s", (size_t)(x->p - x->start), why);
	return -1;
}

/* Decodes the five predefined entities (XML 1.0 section 4.6) and numeric
 * character references below 0x80; returns NULL on an unknown entity. */
static char *xml_decode(const char *s, size_t n)
{
	struct strbuf sb = {0};
	sb_append(&sb, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '&') {
			sb_append(&sb, s + i, 1);
			continue;
		}
		const char *semi = memchr(s + i, ';', n - i);
		if (!semi)
			goto bad;
		size_t k = (size_t)(semi - (s + i)) + 1;
		static const struct { const char *e; char c; } ents[] = {
			{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
		};
		bool found = false;
		for (size_t e = 0; e < 5; e++)
			if (k == strlen(ents[e].e) && memcmp(s + i, ents[e].e, k) == 0) {
				sb_append(&sb, &ents[e].c, 1);
				found = true;
			}
		if (!found && k > 3 && s[i + 1] == '#') {
			unsigned long c = s[i + 2] == 'x' ? strtoul(s + i + 3, NULL, 16) : strtoul(s + i + 2, NULL, 10);
			if (c == 0 || c >= 0x80)
				goto bad;
			char ch = (char)c;
			sb_append(&sb, &ch, 1);
			found = true;
		}
		if (!found)
			goto bad;
		i += k - 1;
	}
	if (sb.oom)
		goto bad;
	return sb.buf;
bad:
	sb_free(&sb);
	return NULL;
}

static const char *attr(const struct xattr *a, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(a[i].name, name) == 0)
			return a[i].value;
	return NULL;
}

struct disk_acc {
	bool active;
	char *device, *type, *file, *dev, *protocol, *name, *host, *port;
	bool in_source;
};

static void replace(char **dst, const char *val)
{
	free(*dst);
	*dst = xstrdup(val);
}

static void disk_acc_free(struct disk_acc *d)
{
	free(d->device); free(d->type); free(d->file); free(d->dev); free(d->protocol);
	free(d->name); free(d->host); free(d->port);
	memset(d, 0, sizeof(*d));
}

static void disk_finish(struct vm_spec *vm, struct disk_acc *d)
{
	const char *device = d->device ? d->device : "disk";
	if (strcmp(device, "disk") != 0 && strcmp(device, "lun") != 0) {
		/* cdrom/floppy media are not migrated state we can verify */
		note(vm, "skipped a %s device%s", device, "");
	} else if (d->file) {
		strv_push(&vm->disks, &vm->ndisks, d->file);
	} else if (d->dev) {
		strv_push(&vm->disks, &vm->ndisks, d->dev);
	} else if (d->protocol && (strcmp(d->protocol, "iscsi") == 0 || strcmp(d->protocol, "nfs") == 0)) {
		if (!d->host || !d->name) {
			note(vm, "skipped a %s disk without <host> or name%s", d->protocol, "");
		} else {
			char *url = NULL;
			const char *name = d->name;
			while (*name == '/')
				name++;
			int r;
			if (strcmp(d->protocol, "iscsi") == 0) {
				/* libvirt names an iSCSI disk "IQN/LUN"; LUN 0 if omitted */
				bool has_lun = strchr(name, '/') != NULL;
				r = asprintf(&url, "iscsi://%s%s%s/%s%s", d->host, d->port ? ":" : "",
					     d->port ? d->port : "", name, has_lun ? "" : "/0");
			} else {
				r = asprintf(&url, "nfs://%s/%s", d->host, name);
			}
			if (r >= 0) {
				strv_push(&vm->disks, &vm->ndisks, url);
				free(url);
			}
		}
	} else if (d->protocol) {
		note(vm, "skipped a disk over protocol '%s' (only iscsi and nfs are probed)%s", d->protocol, "");
	} else {
		note(vm, "skipped a disk of type '%s' without a file/dev source%s", d->type ? d->type : "?", "");
	}
	disk_acc_free(d);
}

int domain_parse_xml(struct vm_spec *vm, const char *text, size_t len, char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	struct xml x = { .p = text, .end = text + len, .start = text, .err = err, .errlen = errlen };
	char *stack[XML_MAX_DEPTH];
	int depth = 0;
	bool saw_domain = false;
	struct disk_acc disk = {0};
	struct strbuf txt = {0};
	char mem_unit[16] = "";
	int ret = -1;

	while (x.p < x.end) {
		if (*x.p != '<') {
			const char *lt = memchr(x.p, '<', (size_t)(x.end - x.p));
			const char *stop = lt ? lt : x.end;
			/* text of /domain/name and /domain/memory */
			if (depth == 2 && (strcmp(stack[1], "name") == 0 || strcmp(stack[1], "memory") == 0))
				sb_append(&txt, x.p, (size_t)(stop - x.p));
			x.p = stop;
			continue;
		}
		size_t left = (size_t)(x.end - x.p);
		if (left >= 4 && memcmp(x.p, "<!--", 4) == 0) {
			const char *e = memmem(x.p + 4, left - 4, "-->", 3);
			if (!e) { xfail(&x, "unterminated comment"); goto out; }
			x.p = e + 3;
			continue;
		}
		if (left >= 2 && (x.p[1] == '?' || x.p[1] == '!')) {
			const char *e = memchr(x.p, '>', left);
			if (!e) { xfail(&x, "unterminated declaration"); goto out; }
			x.p = e + 1;
			continue;
		}
		if (left >= 2 && x.p[1] == '/') {
			/* end tag */
			const char *q = x.p + 2, *e = memchr(q, '>', (size_t)(x.end - q));
			if (!e) { xfail(&x, "unterminated end tag"); goto out; }
			size_t n = (size_t)(e - q);
			while (n && isspace((unsigned char)q[n - 1]))
				n--;
			if (depth == 0 || strlen(stack[depth - 1]) != n || memcmp(stack[depth - 1], q, n) != 0) {
				xfail(&x, "mismatched end tag");
				goto out;
			}
			const char *name = stack[depth - 1];
			if (depth == 2 && strcmp(stack[0], "domain") == 0) {
				char *t = txt.buf ? txt.buf : (char *)"";
				while (isspace((unsigned char)*t))
					t++;
				size_t tn = strlen(t);
				while (tn && isspace((unsigned char)t[tn - 1]))
					t[--tn] = '\0';
				if (strcmp(name, "name") == 0 && !vm->name) {
					vm->name = xml_decode(t, tn);
					if (!vm->name) {
						xfail(&x, "bad entity in <name>");
						goto out;
					}
				} else if (strcmp(name, "memory") == 0) {
					uint64_t bytes;
					if (!parse_size_unit(t, mem_unit[0] ? mem_unit : "KiB", 1024, &bytes)) {
						xfail(&x, "bad <memory> value or unit");
						goto out;
					}
					vm->memory_kib = bytes / 1024;
					vm->mem_known = true;
				}
				sb_free(&txt);
			}
			if (strcmp(name, "disk") == 0 && disk.active)
				disk_finish(vm, &disk);
			if (strcmp(name, "source") == 0)
				disk.in_source = false;
			free(stack[--depth]);
			x.p = e + 1;
			continue;
		}
		/* start tag: <name attr='v' attr="v" ... [/]> */
		const char *q = x.p + 1;
		const char *ns = q;
		while (q < x.end && (isalnum((unsigned char)*q) || *q == '-' || *q == '_' || *q == ':' || *q == '.'))
			q++;
		if (q == ns) { xfail(&x, "bad tag name"); goto out; }
		char *tag = strndup(ns, (size_t)(q - ns));
		struct xattr at[XML_MAX_ATTRS];
		int na = 0;
		bool selfclose = false, bad = false;
		for (;;) {
			while (q < x.end && isspace((unsigned char)*q))
				q++;
			if (q >= x.end) { bad = true; break; }
			if (*q == '>') { q++; break; }
			if (*q == '/' && q + 1 < x.end && q[1] == '>') { selfclose = true; q += 2; break; }
			const char *an = q;
			while (q < x.end && (isalnum((unsigned char)*q) || *q == '-' || *q == '_' || *q == ':' || *q == '.'))
				q++;
			size_t anl = (size_t)(q - an);
			while (q < x.end && isspace((unsigned char)*q))
				q++;
			if (!anl || q >= x.end || *q != '=') { bad = true; break; }
			q++;
			while (q < x.end && isspace((unsigned char)*q))
				q++;
			if (q >= x.end || (*q != '\'' && *q != '"')) { bad = true; break; }
			char quote = *q++;
			const char *vs = q;
			const char *ve = memchr(q, quote, (size_t)(x.end - q));
			if (!ve || na >= XML_MAX_ATTRS) { bad = true; break; }
			char *val = xml_decode(vs, (size_t)(ve - vs));
			if (!val) { bad = true; break; }
			at[na].name = strndup(an, anl);
			at[na].value = val;
			na++;
			q = ve + 1;
		}
		int ok = 0;
		if (bad) {
			xfail(&x, "malformed start tag");
			ok = -1;
		} else if (depth >= XML_MAX_DEPTH) {
			xfail(&x, "nested too deeply");
			ok = -1;
		}
		if (ok == 0) {
			const char *parent = depth ? stack[depth - 1] : NULL;
			if (depth == 0) {
				if (strcmp(tag, "domain") != 0 || saw_domain) {
					xfail(&x, "the root element is not <domain>");
					ok = -1;
				}
				saw_domain = true;
			} else if (depth == 1 && strcmp(tag, "memory") == 0) {
				const char *u = attr(at, na, "unit");
				snprintf(mem_unit, sizeof(mem_unit), "%s", u ? u : "");
				sb_free(&txt);
			} else if (depth == 1 && strcmp(tag, "name") == 0) {
				sb_free(&txt);
			} else if (depth == 2 && strcmp(parent, "devices") == 0 && strcmp(tag, "disk") == 0) {
				disk_acc_free(&disk);
				disk.active = true;
				disk.device = xstrdup(attr(at, na, "device"));
				disk.type = xstrdup(attr(at, na, "type"));
			} else if (disk.active && depth == 3 && strcmp(parent, "disk") == 0 && strcmp(tag, "source") == 0) {
				/* a second <source> in one disk replaces the first */
				replace(&disk.file, attr(at, na, "file"));
				replace(&disk.dev, attr(at, na, "dev"));
				replace(&disk.protocol, attr(at, na, "protocol"));
				replace(&disk.name, attr(at, na, "name"));
				disk.in_source = !selfclose;
			} else if (disk.active && disk.in_source && depth == 4 && strcmp(tag, "host") == 0 && !disk.host) {
				/* the first <host> is the one we probe through */
				replace(&disk.host, attr(at, na, "name"));
				replace(&disk.port, attr(at, na, "port"));
			} else if (depth == 3 && strcmp(parent, "interface") == 0 && strcmp(tag, "source") == 0) {
				const char *b = attr(at, na, "bridge");
				if (b && !strv_has(vm->bridges, vm->nbridges, b))
					strv_push(&vm->bridges, &vm->nbridges, b);
			}
		}
		for (int i = 0; i < na; i++) {
			free(at[i].name);
			free(at[i].value);
		}
		if (ok < 0) {
			free(tag);
			goto out;
		}
		if (selfclose) {
			if (strcmp(tag, "disk") == 0 && disk.active)
				disk_finish(vm, &disk);
			free(tag);
		} else {
			stack[depth++] = tag;
		}
		x.p = q;
	}
	if (!saw_domain) {
		xfail(&x, "no <domain> element");
		goto out;
	}
	if (depth != 0) {
		xfail(&x, "unclosed elements at the end");
		goto out;
	}
	ret = 0;
out:
	while (depth > 0)
		free(stack[--depth]);
	disk_acc_free(&disk);
	sb_free(&txt);
	if (ret < 0)
		vm_spec_free(vm);
	return ret;
}

/* --------------------------------------------------------- QEMU cmdline */

/* Splits a command line into words: NUL-separated (/proc/PID/cmdline) if it
 * contains NULs, else shell-like with '…', "…", backslash escapes and
 * backslash-newline continuations. */
int cmdline_split(const char *text, size_t len, char ***words, size_t *n)
{
	*words = NULL;
	*n = 0;
	if (memchr(text, '\0', len)) {
		for (size_t i = 0; i < len;) {
			size_t k = strnlen(text + i, len - i);
			if (k) {
				char *w = strndup(text + i, k);
				strv_push(words, n, w);
				free(w);
			}
			i += k + 1;
		}
		return 0;
	}
	struct strbuf w = {0};
	bool inword = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c == '\\' && i + 1 < len) {
			if (text[i + 1] != '\n') {
				sb_append(&w, &text[i + 1], 1);
				inword = true;
			}
			i++;
		} else if (c == '\'' || c == '"') {
			const char *e = memchr(text + i + 1, c, len - i - 1);
			if (!e) {
				sb_free(&w);
				for (size_t k = 0; k < *n; k++)
					free((*words)[k]);
				free(*words);
				*words = NULL;
				*n = 0;
				return -1;
			}
			sb_append(&w, text + i + 1, (size_t)(e - text - i - 1));
			inword = true;
			i = (size_t)(e - text);
		} else if (isspace((unsigned char)c)) {
			if (inword) {
				strv_push(words, n, w.buf ? w.buf : "");
				sb_free(&w);
				inword = false;
			}
		} else {
			sb_append(&w, &c, 1);
			inword = true;
		}
	}
	if (inword)
		strv_push(words, n, w.buf ? w.buf : "");
	sb_free(&w);
	return 0;
}

/* QEMU option strings: key=value pairs separated by ',', a literal comma
 * written ",,".  Returns the value of `key` (malloc'd) or NULL; a leading
 * bare word (the implied key, e.g. "bridge" in "-netdev bridge,...")
 * is returned for key "". */
static char *qopt_get(const char *s, const char *key)
{
	size_t klen = strlen(key);
	const char *p = s;
	bool first = true;
	while (*p) {
		struct strbuf item = {0};
		while (*p) {
			if (*p == ',' && p[1] == ',') {
				sb_append(&item, ",", 1);
				p += 2;
			} else if (*p == ',') {
				p++;
				break;
			} else {
				sb_append(&item, p, 1);
				p++;
			}
		}
		char *it = item.buf ? item.buf : NULL;
		if (it) {
			char *eq = strchr(it, '=');
			if (!eq && first && klen == 0)
				return it;
			if (eq && klen && (size_t)(eq - it) == klen && memcmp(it, key, klen) == 0) {
				char *r = xstrdup(eq + 1);
				free(it);
				return r;
			}
			free(it);
		}
		first = false;
	}
	return NULL;
}

static void add_blockdev_json(struct vm_spec *vm, const struct json_value *o)
{
	for (int guard = 0; o && guard < 4; guard++) {
		const char *drv = json_str(json_get(o, "driver"));
		const char *fn = json_str(json_get(o, "filename"));
		if (drv && fn && (strcmp(drv, "file") == 0 || strcmp(drv, "host_device") == 0)) {
			strv_push(&vm->disks, &vm->ndisks, fn);
			return;
		}
		if (drv && strcmp(drv, "iscsi") == 0) {
			const char *portal = json_str(json_get(o, "portal"));
			const char *target = json_str(json_get(o, "target"));
			int64_t lun = 0;
			json_i64(json_get(o, "lun"), &lun);
			if (portal && target) {
				char *url = NULL;
				if (asprintf(&url, "iscsi://%s/%s/%lld", portal, target, (long long)lun) >= 0) {
					strv_push(&vm->disks, &vm->ndisks, url);
					free(url);
				}
			}
			return;
		}
		if (drv && strcmp(drv, "nfs") == 0) {
			const char *host = json_str(json_get(json_get(o, "server"), "host"));
			const char *path = json_str(json_get(o, "path"));
			if (host && path) {
				char *url = NULL;
				if (asprintf(&url, "nfs://%s/%s", host, path[0] == '/' ? path + 1 : path) >= 0) {
					strv_push(&vm->disks, &vm->ndisks, url);
					free(url);
				}
			}
			return;
		}
		const struct json_value *f = json_get(o, "file");
		if (f && f->type == JSON_OBJECT) {
			o = f; /* a format layer (qcow2/raw) over a protocol layer */
			continue;
		}
		return;
	}
}

static void add_blockdev(struct vm_spec *vm, const char *arg)
{
	if (arg[0] == '{') {
		char perr[64];
		struct json_value *v = json_parse(arg, strlen(arg), perr, sizeof(perr));
		if (!v) {
			note(vm, "could not parse -blockdev JSON: %s%s", perr, "");
			return;
		}
		if (json_get(v, "node-name") || json_get(v, "driver"))
			add_blockdev_json(vm, v);
		json_free(v);
		return;
	}
	char *drv = qopt_get(arg, "driver");
	char *fn = qopt_get(arg, "filename");
	if (!fn)
		fn = qopt_get(arg, "file.filename");
	if (fn) {
		strv_push(&vm->disks, &vm->ndisks, fn);
	} else if (drv && strcmp(drv, "iscsi") == 0) {
		char *portal = qopt_get(arg, "portal"), *target = qopt_get(arg, "target"), *lun = qopt_get(arg, "lun");
		char *url = NULL;
		if (portal && target && asprintf(&url, "iscsi://%s/%s/%s", portal, target, lun ? lun : "0") >= 0) {
			strv_push(&vm->disks, &vm->ndisks, url);
			free(url);
		}
		free(portal); free(target); free(lun);
	} else if (drv && strcmp(drv, "nfs") == 0) {
		char *host = qopt_get(arg, "server.host"), *path = qopt_get(arg, "path");
		char *url = NULL;
		if (host && path && asprintf(&url, "nfs://%s/%s", host, path[0] == '/' ? path + 1 : path) >= 0) {
			strv_push(&vm->disks, &vm->ndisks, url);
			free(url);
		}
		free(host); free(path);
	}
	free(drv);
	free(fn);
}

int domain_parse_qemu_cmdline(struct vm_spec *vm, const char *text, size_t len, char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	char **w;
	size_t n;
	if (cmdline_split(text, len, &w, &n) < 0) {
		snprintf(err, errlen, "QEMU command line: unbalanced quotes");
		return -1;
	}
	int ret = -1;
	for (size_t i = 0; i < n; i++) {
		const char *o = w[i];
		/* QEMU accepts both -opt and --opt */
		if (o[0] == '-' && o[1] == '-')
			o++;
		const char *arg = i + 1 < n ? w[i + 1] : NULL;
		if (strcmp(o, "-drive") == 0 && arg) {
			char *f = qopt_get(arg, "file");
			char *media = qopt_get(arg, "media");
			if (f && !(media && strcmp(media, "cdrom") == 0))
				strv_push(&vm->disks, &vm->ndisks, f);
			free(f);
			free(media);
			i++;
		} else if ((strcmp(o, "-hda") == 0 || strcmp(o, "-hdb") == 0 || strcmp(o, "-hdc") == 0 ||
			    strcmp(o, "-hdd") == 0) && arg) {
			strv_push(&vm->disks, &vm->ndisks, arg);
			i++;
		} else if (strcmp(o, "-blockdev") == 0 && arg) {
			add_blockdev(vm, arg);
			i++;
		} else if (strcmp(o, "-m") == 0 && arg) {
			char *sz = strchr(arg, '=') ? qopt_get(arg, "size") : xstrdup(arg);
			uint64_t bytes;
			/* QEMU: a bare number is MiB */
			if (!sz || !parse_size_unit(sz, NULL, 1 << 20, &bytes)) {
				snprintf(err, errlen, "QEMU command line: bad -m '%s'", arg);
				free(sz);
				goto out;
			}
			free(sz);
			vm->memory_kib = bytes / 1024;
			vm->mem_known = true;
			i++;
		} else if ((strcmp(o, "-netdev") == 0 || strcmp(o, "-nic") == 0) && arg) {
			char *type = qopt_get(arg, "");
			if (type && strcmp(type, "bridge") == 0) {
				char *br = qopt_get(arg, "br");
				const char *b = br ? br : "br0"; /* qemu-bridge-helper's default */
				if (!strv_has(vm->bridges, vm->nbridges, b))
					strv_push(&vm->bridges, &vm->nbridges, b);
				free(br);
			}
			free(type);
			i++;
		} else if (strcmp(o, "-name") == 0 && arg) {
			char *nm = strchr(arg, '=') ? qopt_get(arg, "guest") : qopt_get(arg, "");
			free(vm->name);
			vm->name = nm;
			i++;
		}
	}
	ret = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
	if (ret < 0)
		vm_spec_free(vm);
	return ret;
}
