/* lease.c - image leases (see lease.h for the semantics).
 *
 * The table is a small array, replaced copy-on-write: a control operation
 * (serialised by wmu) copies it, applies its change to the copy, writes the
 * copy to <state_dir>/leases and only then swaps it in under the write lock.
 * So the data path never sees a lease that is not durable, and a failed
 * write leaves everything as it was.  The reactors read the table under a
 * writer-preferring read lock, and skip even that while no lease of their
 * kind is held (one atomic load per command).
 */
#include "lease.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define LEASE_FILE       "leases"
#define LEASE_MAGIC      "ringstor-leases 1"
#define LEASE_FILE_MAX   (16u << 20)   /* far above any real table; bounds the read */

/* nfsgw/fh.c handle layout: version byte, kernel handle length k, handle
 * type (4), export id (4), k bytes of kernel handle, then the MAC. */
#define FH_LAYOUT_VERSION 1
#define FH_LAYOUT_HDR     10

struct ent {
	struct lease_key key;
	bool held;
	uint64_t epoch;
	char holder[LEASE_HOLDER_MAX];
	size_t holder_len;
	bool holder_is_addr;            /* LEASE_NFS: holder is an address ... */
	uint8_t holder_addr[16];        /* ... this one (IPv4 as ::ffff:a.b.c.d) */
	int tid;
	uint64_t lun;
	char target[LEASE_NAME_MAX];
	char *path;                     /* never NULL once in a table */
};

static struct {
	pthread_rwlock_t rw;            /* readers: the hooks; writer: the swap */
	pthread_mutex_t wmu;            /* serialises control operations and init */
	struct ent *tab;
	size_t n;
	atomic_uint scsi_held, nfs_held;
	bool ready;
	char dir[LEASE_PATH_MAX];
} L = {
	.rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP,
	.wmu = PTHREAD_MUTEX_INITIALIZER,
};

/* ------------------------------------------------------------------ */
/* holders and addresses                                               */
/* ------------------------------------------------------------------ */

/* Numeric address, optionally bracketed and/or with a port ("a.b.c.d",
 * "a.b.c.d:port", "v6", "[v6]", "[v6]:port") -> 16 bytes, IPv4 mapped. */
static bool parse_addr(const char *s, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct in_addr a4;
	size_t n;
	const char *colon;

	if (!s || !*s)
		return false;
	n = strlen(s);
	if (n >= sizeof(buf))
		return false;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close == s + 1)
			return false;
		if (close[1] && close[1] != ':')
			return false;
		n = (size_t)(close - s - 1);
		memcpy(buf, s + 1, n);
		buf[n] = '\0';
		return inet_pton(AF_INET6, buf, out) == 1;
	}
	memcpy(buf, s, n + 1);
	colon = strchr(buf, ':');
	if (colon && strchr(colon + 1, ':') == NULL)
		buf[colon - buf] = '\0';        /* IPv4 with a port */
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return true;
	}
	return inet_pton(AF_INET6, s, out) == 1;
}

static bool looks_numeric(const char *s)
{
	if (strchr(s, ':'))
		return true;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && *s != '.')
			return false;
	return true;
}

int lease_holder_check(enum lease_kind kind, const char *holder, char *msg, size_t msglen)
{
	size_t n = holder ? strlen(holder) : 0;
	size_t max = kind == LEASE_SCSI ? LEASE_NAME_MAX - 1 : LEASE_HOLDER_MAX - 1;
	uint8_t a[16];

	if (n == 0) {
		snprintf(msg, msglen, "a lease needs a holder (--holder)");
		return EINVAL;
	}
	if (n > max) {
		snprintf(msg, msglen, "holder too long (at most %zu bytes)", max);
		return EINVAL;
	}
	for (const char *p = holder; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || (kind == LEASE_SCSI && c == ',')) {
			snprintf(msg, msglen, "holder '%.64s': printable characters only, no blanks%s",
				 holder, kind == LEASE_SCSI ? " or commas" : "");
			return EINVAL;
		}
	}
	if (kind == LEASE_NFS && looks_numeric(holder)) {
		/* An address: no port, no brackets (those are for the data path). */
		struct in_addr a4;
		if (inet_pton(AF_INET, holder, &a4) != 1 && inet_pton(AF_INET6, holder, a) != 1) {
			snprintf(msg, msglen, "holder '%.64s' is not a valid IPv4/IPv6 address", holder);
			return EINVAL;
		}
	}
	return 0;
}

/* Fill the holder fields of e (holder already checked). */
static void ent_set_holder(struct ent *e, const char *holder)
{
	snprintf(e->holder, sizeof(e->holder), "%s", holder);
	e->holder_len = strlen(e->holder);
	e->holder_is_addr = e->key.kind == LEASE_NFS && looks_numeric(e->holder) &&
			    parse_addr(e->holder, e->holder_addr);
}

/* Does `who` (a holder as the admin writes it) name e's holder? */
static bool holder_equal(const struct ent *e, const char *who)
{
	uint8_t a[16];

	if (e->holder_is_addr)
		return parse_addr(who, a) && memcmp(a, e->holder_addr, 16) == 0;
	return strcasecmp(e->holder, who) == 0;
}

/* ------------------------------------------------------------------ */
/* table helpers (wmu held)                                            */
/* ------------------------------------------------------------------ */

static bool key_equal(const struct lease_key *a, const struct lease_key *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == LEASE_SCSI)
		return memcmp(a->naa, b->naa, 16) == 0;
	/* not the export id: one file may be reached through nested exports */
	return a->fid_len == b->fid_len && memcmp(a->fid, b->fid, a->fid_len) == 0;
}

static bool key_valid(const struct lease_key *k)
{
	if (k->kind == LEASE_SCSI)
		return true;
	return k->kind == LEASE_NFS && k->fid_len >= 5 && k->fid_len <= LEASE_FID_MAX &&
	       k->fid[0] == k->fid_len - 5;
}

static ssize_t find_in(const struct ent *t, size_t n, const struct lease_key *k)
{
	for (size_t i = 0; i < n; i++)
		if (key_equal(&t[i].key, k))
			return (ssize_t)i;
	return -1;
}

static void free_table(struct ent *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		free(t[i].path);
	free(t);
}

/* A deep copy of the live table with room for one more entry. */
static struct ent *copy_table(size_t *n_out)
{
	struct ent *t = calloc(L.n + 1, sizeof(*t));

	if (!t)
		return NULL;
	for (size_t i = 0; i < L.n; i++) {
		t[i] = L.tab[i];
		t[i].path = strdup(L.tab[i].path ? L.tab[i].path : "");
		if (!t[i].path) {
			free_table(t, i);
			return NULL;
		}
	}
	*n_out = L.n;
	return t;
}

static void count_held(const struct ent *t, size_t n, unsigned *scsi, unsigned *nfs)
{
	*scsi = *nfs = 0;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].held)
			continue;
		if (t[i].key.kind == LEASE_SCSI)
			(*scsi)++;
		else
			(*nfs)++;
	}
}

/* Make t the live table (it was made durable already). */
static void swap_in(struct ent *t, size_t n)
{
	struct ent *old;
	size_t oldn;
	unsigned s, f;

	count_held(t, n, &s, &f);
	pthread_rwlock_wrlock(&L.rw);
	old = L.tab;
	oldn = L.n;
	L.tab = t;
	L.n = n;
	/* Published under the write lock: a reader that sees a count > 0
	 * takes the read lock and finds the new table. */
	atomic_store_explicit(&L.scsi_held, s, memory_order_release);
	atomic_store_explicit(&L.nfs_held, f, memory_order_release);
	pthread_rwlock_unlock(&L.rw);
	free_table(old, oldn);
}

/* Describe an object for messages. */
static void describe(const struct ent *e, char *buf, size_t len)
{
	if (e->key.kind == LEASE_SCSI) {
		if (e->target[0])
			snprintf(buf, len, "LUN %" PRIu64 " of target %d (%.200s)", e->lun, e->tid,
				 e->target);
		else
			snprintf(buf, len, "LUN %" PRIu64 " of target %d", e->lun, e->tid);
	} else {
		snprintf(buf, len, "file %.300s (export %u)", e->path && e->path[0] ? e->path : "?",
			 e->key.export_id);
	}
}

/* Copy the description (not the key) of obj into e, if obj has one. */
static int set_description(struct ent *e, const struct lease_info *obj)
{
	if (obj->key.kind == LEASE_SCSI) {
		if (obj->target[0] || obj->tid) {
			e->tid = obj->tid;
			e->lun = obj->lun;
			snprintf(e->target, sizeof(e->target), "%s", obj->target);
		}
		return 0;
	}
	if (obj->path[0] || !e->path) {
		char *p = strdup(obj->path);
		if (!p)
			return ENOMEM;
		free(e->path);
		e->path = p;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */
/* ------------------------------------------------------------------ */

static void put_enc(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p == '%' || *p == 0x7f)
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
	}
}

static void put_hex(FILE *f, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Write t as <dir>/leases: temp file, fsync, rename, fsync the directory.
 * 0 or a positive errno with msg. */
static int persist(const struct ent *t, size_t n, char *msg, size_t msglen)
{
	char path[LEASE_PATH_MAX + 16], tmp[LEASE_PATH_MAX + 24];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/" LEASE_FILE, L.dir);
	snprintf(tmp, sizeof(tmp), "%s/" LEASE_FILE ".tmp", L.dir);
	f = open_memstream(&buf, &len);
	if (!f) {
		snprintf(msg, msglen, "out of memory");
		return ENOMEM;
	}
	fputs("# ringstord image leases (issue 5): rewritten atomically on every change;\n"
	      "# do not edit while ringstord runs.  A damaged file stops ringstord from\n"
	      "# starting rather than dropping the fencing.\n" LEASE_MAGIC "\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct ent *e = &t[i];
		if (e->key.kind == LEASE_SCSI) {
			fputs("scsi naa=", f);
			put_hex(f, e->key.naa, 16);
		} else {
			fprintf(f, "nfs export=%u fid=", e->key.export_id);
			put_hex(f, e->key.fid, e->key.fid_len);
		}
		fprintf(f, " epoch=%" PRIu64 " held=%d holder=", e->epoch, e->held ? 1 : 0);
		put_enc(f, e->holder);
		if (e->key.kind == LEASE_SCSI) {
			fprintf(f, " tid=%d lun=%" PRIu64 " target=", e->tid, e->lun);
			put_enc(f, e->target);
		} else {
			fputs(" path=", f);
			put_enc(f, e->path ? e->path : "");
		}
		fputc('\n', f);
	}
	fprintf(f, "end %zu\n", n);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		snprintf(msg, msglen, "out of memory");
		return ENOMEM;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = errno;
		goto fail;
	}
	rc = -write_all(fd, buf, len);
	if (!rc && fsync(fd) < 0)
		rc = errno;
	if (close(fd) < 0 && !rc)
		rc = errno;
	if (!rc && rename(tmp, path) < 0)
		rc = errno;
	if (rc) {
		unlink(tmp);
		goto fail;
	}
	/* The rename itself must survive a crash (ext4/xfs: fsync the dir). */
	fd = open(L.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			log_warn("leases: fsync of %s: %s", L.dir, strerror(errno));
		close(fd);
	}
	free(buf);
	return 0;
fail:
	free(buf);
	snprintf(msg, msglen, "cannot save the leases to %.300s: %s (nothing changed)", path,
		 strerror(rc));
	log_err("leases: %s", msg);
	return rc ? rc : EIO;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hex(const char *s, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(s);

	if (len == 0 || len % 2 || len / 2 > max)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = len / 2;
	return 0;
}

static int parse_dec(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Percent-decoding in place; refuses NUL and control characters. */
static int unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			p += 2;
		}
		*o++ = (char)c;
	}
	*o = '\0';
	return 0;
}

/* One lease line (without the newline), tokens separated by single blanks.
 * NULL or the reason it is bad. */
static const char *parse_line(char *line, struct ent *e)
{
	enum { HAVE_KEY = 1, HAVE_EPOCH = 2, HAVE_HELD = 4, HAVE_HOLDER = 8, HAVE_EXPORT = 16 };
	char *save = NULL, *tok;
	unsigned have = 0;
	char msg[128];
	uint64_t v;
	size_t n;

	memset(e, 0, sizeof(*e));
	tok = strtok_r(line, " ", &save);
	if (!tok)
		return "empty line";
	if (!strcmp(tok, "scsi"))
		e->key.kind = LEASE_SCSI;
	else if (!strcmp(tok, "nfs"))
		e->key.kind = LEASE_NFS;
	else
		return "unknown record (not scsi/nfs/end)";
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *val = strchr(tok, '=');
		if (!val)
			return "field without '='";
		*val++ = '\0';
		if (unescape(val) < 0)
			return "bad %-escape";
		if (e->key.kind == LEASE_SCSI && !strcmp(tok, "naa")) {
			if (parse_hex(val, e->key.naa, 16, &n) < 0 || n != 16)
				return "naa: not 32 hex digits";
			have |= HAVE_KEY;
		} else if (e->key.kind == LEASE_NFS && !strcmp(tok, "fid")) {
			if (parse_hex(val, e->key.fid, LEASE_FID_MAX, &n) < 0)
				return "fid: not hex";
			e->key.fid_len = (uint8_t)n;
			have |= HAVE_KEY;
		} else if (e->key.kind == LEASE_NFS && !strcmp(tok, "export")) {
			if (parse_dec(val, UINT32_MAX, &v) < 0)
				return "export: not a 32-bit number";
			e->key.export_id = (uint32_t)v;
			have |= HAVE_EXPORT;
		} else if (!strcmp(tok, "epoch")) {
			if (parse_dec(val, UINT64_MAX, &e->epoch) < 0)
				return "epoch: not a number";
			have |= HAVE_EPOCH;
		} else if (!strcmp(tok, "held")) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				return "held: not 0 or 1";
			e->held = val[0] == '1';
			have |= HAVE_HELD;
		} else if (!strcmp(tok, "holder")) {
			if (val[0] && lease_holder_check(e->key.kind, val, msg, sizeof(msg)))
				return "holder: not a valid holder";
			ent_set_holder(e, val);
			have |= HAVE_HOLDER;
		} else if (e->key.kind == LEASE_SCSI && !strcmp(tok, "tid")) {
			if (parse_dec(val, INT32_MAX, &v) < 0)
				return "tid: not a number";
			e->tid = (int)v;
		} else if (e->key.kind == LEASE_SCSI && !strcmp(tok, "lun")) {
			if (parse_dec(val, UINT64_MAX, &e->lun) < 0)
				return "lun: not a number";
		} else if (e->key.kind == LEASE_SCSI && !strcmp(tok, "target")) {
			if (strlen(val) >= sizeof(e->target))
				return "target: too long";
			strcpy(e->target, val);
		} else if (e->key.kind == LEASE_NFS && !strcmp(tok, "path")) {
			if (strlen(val) >= LEASE_PATH_MAX)
				return "path: too long";
			free(e->path);
			e->path = strdup(val);
			if (!e->path)
				return "out of memory";
		} else {
			/* A field we do not know may carry a meaning we would drop. */
			return "unknown field";
		}
	}
	if (!(have & HAVE_KEY) || !(have & HAVE_EPOCH) || !(have & HAVE_HELD) ||
	    !(have & HAVE_HOLDER) || (e->key.kind == LEASE_NFS && !(have & HAVE_EXPORT)))
		return "missing field (naa/fid, export, epoch, held and holder are required)";
	if (!key_valid(&e->key))
		return "fid: not a file identity (length byte, type, kernel handle)";
	if (e->held && (!e->holder[0] || e->epoch == 0))
		return "a held lease needs a holder and an epoch >= 1";
	if (!e->path) {
		e->path = strdup("");
		if (!e->path)
			return "out of memory";
	}
	return NULL;
}

/* Parse the whole file into a new table.  0, or -EINVAL (logged). */
static int parse_file(const char *path, char *buf, struct ent **out, size_t *out_n)
{
	struct ent *t = NULL;
	size_t n = 0, cap = 0;
	bool header = false, end = false;
	int lineno = 0;
	const char *why = NULL;
	char *line;

	/* Walk line by hand (not strtok) to keep the line numbers right. */
	for (line = buf; line && *line && !why; ) {
		char *nl = strchr(line, '\n');
		if (!nl) {
			why = "last line not terminated (truncated file?)";
			break;
		}
		*nl = '\0';
		lineno++;
		if (line[0] == '#' || line[0] == '\0') {
			line = nl + 1;
			continue;
		}
		if (end) {
			why = "data after the end line";
		} else if (!header) {
			if (strcmp(line, LEASE_MAGIC) != 0)
				why = "not a ringstor lease file of version 1 (header '" LEASE_MAGIC "')";
			header = true;
		} else if (!strncmp(line, "end ", 4)) {
			uint64_t cnt;
			if (parse_dec(line + 4, SIZE_MAX, &cnt) < 0 || cnt != n)
				why = "end line does not match the number of leases (truncated or edited)";
			end = true;
		} else {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct ent *nt = realloc(t, nc * sizeof(*t));
				if (!nt) {
					why = "out of memory";
					break;
				}
				t = nt;
				cap = nc;
			}
			why = parse_line(line, &t[n]);
			if (!why && find_in(t, n, &t[n].key) >= 0)
				why = "a second entry for the same object";
			if (why) {
				free(t[n].path);
			} else {
				n++;
			}
		}
		line = nl + 1;
	}
	if (!why && !header)
		why = "no header (empty file?)";
	if (!why && !end)
		why = "no end line (truncated file?)";
	if (why) {
		log_err("leases: %s:%d: %s.  ringstord will not start without its leases: "
			"fix the file, or remove it to drop every lease (and with them the "
			"one-writer guarantee)", path, lineno, why);
		free_table(t, n);
		return -EINVAL;
	}
	*out = t;
	*out_n = n;
	return 0;
}

int lease_init(const char *state_dir)
{
	char path[LEASE_PATH_MAX + 16], tmp[LEASE_PATH_MAX + 24];
	struct ent *t = NULL;
	size_t n = 0, got = 0;
	struct stat st;
	char *buf;
	int fd, rc = 0;

	if (!state_dir || !*state_dir || strlen(state_dir) >= sizeof(L.dir)) {
		log_err("leases: invalid state directory");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/" LEASE_FILE, state_dir);
	snprintf(tmp, sizeof(tmp), "%s/" LEASE_FILE ".tmp", state_dir);
	/* A temp file is a write that never got renamed: the old file (or
	 * none) is the truth. */
	unlink(tmp);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT) {
			rc = -errno;
			log_err("leases: cannot open %s: %s", path, strerror(errno));
			return rc;
		}
	} else {
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)LEASE_FILE_MAX) {
			log_err("leases: %s is not a regular file of sane size", path);
			close(fd);
			return -EINVAL;
		}
		buf = malloc((size_t)st.st_size + 1);
		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		while (got < (size_t)st.st_size) {
			ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				rc = r < 0 ? -errno : -EIO;
				break;
			}
			got += (size_t)r;
		}
		close(fd);
		if (rc) {
			log_err("leases: cannot read %s: %s", path, strerror(-rc));
			free(buf);
			return rc;
		}
		buf[got] = '\0';
		if (strlen(buf) != got) {
			log_err("leases: %s contains NUL bytes; ringstord will not start without "
				"its leases (fix or remove the file)", path);
			free(buf);
			return -EINVAL;
		}
		rc = parse_file(path, buf, &t, &n);
		free(buf);
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&L.wmu);
	snprintf(L.dir, sizeof(L.dir), "%s", state_dir);
	swap_in(t, n);
	L.ready = true;
	pthread_mutex_unlock(&L.wmu);
	if (n) {
		unsigned held = lease_held_count();
		log_notice("leases: %zu entr%s loaded from %s, %u held", n, n == 1 ? "y" : "ies",
			   path, held);
	}
	return 0;
}

void lease_shutdown(void)
{
	pthread_mutex_lock(&L.wmu);
	swap_in(NULL, 0);
	L.ready = false;
	pthread_mutex_unlock(&L.wmu);
}

unsigned lease_held_count(void)
{
	return atomic_load(&L.scsi_held) + atomic_load(&L.nfs_held);
}

bool lease_nfs_any_held(void)
{
	return atomic_load_explicit(&L.nfs_held, memory_order_acquire) != 0;
}

/* ------------------------------------------------------------------ */
/* control operations                                                  */
/* ------------------------------------------------------------------ */

static int begin(const struct lease_info *obj, char *msg, size_t msglen)
{
	if (!obj || !key_valid(&obj->key)) {
		snprintf(msg, msglen, "invalid lease object");
		return EINVAL;
	}
	pthread_mutex_lock(&L.wmu);
	if (!L.ready) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "leases are not available (no state directory)");
		return ENODEV;
	}
	return 0;
}

/* Persist t and make it live; frees t on failure.  wmu held. */
static int commit(struct ent *t, size_t n, char *msg, size_t msglen)
{
	int rc = persist(t, n, msg, msglen);

	if (rc) {
		free_table(t, n);
		return rc;
	}
	swap_in(t, n);
	return 0;
}

int lease_acquire(const struct lease_info *obj, const char *holder, bool has_epoch,
		  uint64_t epoch, uint64_t *new_epoch, char *msg, size_t msglen)
{
	struct ent *t, *e;
	size_t n;
	ssize_t i;
	uint64_t base;
	char what[400];
	int rc;

	if ((rc = lease_holder_check(obj ? obj->key.kind : LEASE_SCSI, holder, msg, msglen)))
		return rc;
	if ((rc = begin(obj, msg, msglen)))
		return rc;
	i = find_in(L.tab, L.n, &obj->key);
	if (i >= 0 && L.tab[i].held) {
		const struct ent *cur = &L.tab[i];
		describe(cur, what, sizeof(what));
		if (holder_equal(cur, holder)) {
			if (has_epoch && epoch != cur->epoch) {
				snprintf(msg, msglen, "stale epoch %" PRIu64 ": %s is held by %s at "
					 "epoch %" PRIu64, epoch, what, cur->holder, cur->epoch);
				rc = ESTALE;
			} else {
				snprintf(msg, msglen, "%s is already held by %s at epoch %" PRIu64, what,
					 cur->holder, cur->epoch);
				if (new_epoch)
					*new_epoch = cur->epoch;
			}
		} else {
			snprintf(msg, msglen, "%s is held by %s at epoch %" PRIu64
				 " (transfer it with --op transfer --epoch %" PRIu64 ")", what,
				 cur->holder, cur->epoch, cur->epoch);
			rc = EBUSY;
		}
		pthread_mutex_unlock(&L.wmu);
		return rc;
	}
	base = i >= 0 ? L.tab[i].epoch : 0;
	if (has_epoch && epoch > base)
		base = epoch;
	if (base == UINT64_MAX) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "epoch exhausted");
		return EOVERFLOW;
	}
	t = copy_table(&n);
	if (!t) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "out of memory");
		return ENOMEM;
	}
	if (i < 0) {
		e = &t[n++];
		memset(e, 0, sizeof(*e));
		e->key = obj->key;
	} else {
		e = &t[i];
	}
	if ((rc = set_description(e, obj))) {
		free_table(t, n);
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "out of memory");
		return rc;
	}
	e->held = true;
	e->epoch = base + 1;
	ent_set_holder(e, holder);
	describe(e, what, sizeof(what));
	rc = commit(t, n, msg, msglen);
	if (!rc) {
		snprintf(msg, msglen, "%s: lease acquired by %s at epoch %" PRIu64, what, holder,
			 base + 1);
		if (new_epoch)
			*new_epoch = base + 1;
	}
	pthread_mutex_unlock(&L.wmu);
	return rc;
}

int lease_transfer(const struct lease_info *obj, const char *holder, uint64_t epoch,
		   uint64_t *new_epoch, char *msg, size_t msglen)
{
	struct ent *t;
	size_t n;
	ssize_t i;
	char what[400];
	int rc;

	if ((rc = lease_holder_check(obj ? obj->key.kind : LEASE_SCSI, holder, msg, msglen)))
		return rc;
	if ((rc = begin(obj, msg, msglen)))
		return rc;
	i = find_in(L.tab, L.n, &obj->key);
	if (i < 0) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "there is no lease on that object (acquire it first)");
		return ENOENT;
	}
	describe(&L.tab[i], what, sizeof(what));
	if (!L.tab[i].held) {
		snprintf(msg, msglen, "stale epoch %" PRIu64 ": the lease on %s was released at epoch %"
			 PRIu64 " (acquire it)", epoch, what, L.tab[i].epoch);
		pthread_mutex_unlock(&L.wmu);
		return ESTALE;
	}
	if (epoch != L.tab[i].epoch) {
		snprintf(msg, msglen, "stale epoch %" PRIu64 ": %s is held by %s at epoch %" PRIu64,
			 epoch, what, L.tab[i].holder, L.tab[i].epoch);
		pthread_mutex_unlock(&L.wmu);
		return ESTALE;
	}
	if (epoch == UINT64_MAX) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "epoch exhausted");
		return EOVERFLOW;
	}
	t = copy_table(&n);
	if (!t || set_description(&t[i], obj)) {
		if (t)
			free_table(t, n);
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "out of memory");
		return ENOMEM;
	}
	t[i].epoch = epoch + 1;
	ent_set_holder(&t[i], holder);
	rc = commit(t, n, msg, msglen);
	if (!rc) {
		snprintf(msg, msglen, "%s: lease transferred to %s at epoch %" PRIu64, what, holder,
			 epoch + 1);
		if (new_epoch)
			*new_epoch = epoch + 1;
	}
	pthread_mutex_unlock(&L.wmu);
	return rc;
}

int lease_release(const struct lease_info *obj, const char *holder, uint64_t epoch,
		  char *msg, size_t msglen)
{
	struct ent *t;
	size_t n;
	ssize_t i;
	char what[400];
	int rc;

	if ((rc = begin(obj, msg, msglen)))
		return rc;
	i = find_in(L.tab, L.n, &obj->key);
	if (i < 0) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "there is no lease on that object");
		return ENOENT;
	}
	describe(&L.tab[i], what, sizeof(what));
	if (epoch != L.tab[i].epoch) {
		snprintf(msg, msglen, "stale epoch %" PRIu64 ": the lease on %s is at epoch %" PRIu64
			 " (%s %s)", epoch, what, L.tab[i].epoch,
			 L.tab[i].held ? "held by" : "released, last holder", L.tab[i].holder);
		pthread_mutex_unlock(&L.wmu);
		return ESTALE;
	}
	if (!L.tab[i].held) {
		snprintf(msg, msglen, "%s: lease already released at epoch %" PRIu64, what, epoch);
		pthread_mutex_unlock(&L.wmu);
		return 0;
	}
	if (holder && holder[0] && !holder_equal(&L.tab[i], holder)) {
		snprintf(msg, msglen, "%s is held by %s, not by %.100s", what, L.tab[i].holder, holder);
		pthread_mutex_unlock(&L.wmu);
		return EBUSY;
	}
	t = copy_table(&n);
	if (!t) {
		pthread_mutex_unlock(&L.wmu);
		snprintf(msg, msglen, "out of memory");
		return ENOMEM;
	}
	t[i].held = false;      /* the epoch and the last holder stay */
	rc = commit(t, n, msg, msglen);
	if (!rc)
		snprintf(msg, msglen, "%s: lease released by %s at epoch %" PRIu64, what,
			 L.tab[i].holder, epoch);
	pthread_mutex_unlock(&L.wmu);
	return rc;
}

static void ent_to_info(const struct ent *e, struct lease_info *out)
{
	memset(out, 0, sizeof(*out));
	out->key = e->key;
	out->held = e->held;
	out->epoch = e->epoch;
	snprintf(out->holder, sizeof(out->holder), "%s", e->holder);
	out->tid = e->tid;
	out->lun = e->lun;
	snprintf(out->target, sizeof(out->target), "%s", e->target);
	snprintf(out->path, sizeof(out->path), "%s", e->path ? e->path : "");
}

int lease_get(const struct lease_key *key, struct lease_info *out)
{
	ssize_t i;

	pthread_mutex_lock(&L.wmu);
	i = find_in(L.tab, L.n, key);
	if (i >= 0 && out)
		ent_to_info(&L.tab[i], out);
	pthread_mutex_unlock(&L.wmu);
	return i >= 0 ? 0 : -ENOENT;
}

/* Prefer a held entry, then the highest epoch. */
static bool better(const struct ent *cand, const struct ent *best)
{
	if (!best)
		return true;
	if (cand->held != best->held)
		return cand->held;
	return cand->epoch > best->epoch;
}

int lease_find_scsi(int tid, const char *target, uint64_t lun, struct lease_key *out)
{
	const struct ent *best = NULL;

	pthread_mutex_lock(&L.wmu);
	for (size_t i = 0; i < L.n; i++) {
		const struct ent *e = &L.tab[i];
		if (e->key.kind != LEASE_SCSI || e->lun != lun)
			continue;
		if (target && target[0] ? strcasecmp(e->target, target) != 0 : e->tid != tid)
			continue;
		if (better(e, best))
			best = e;
	}
	if (best && out)
		*out = best->key;
	pthread_mutex_unlock(&L.wmu);
	return best ? 0 : -ENOENT;
}

int lease_find_nfs(uint32_t export_id, const char *path, struct lease_key *out)
{
	const struct ent *best = NULL;

	pthread_mutex_lock(&L.wmu);
	for (size_t i = 0; i < L.n; i++) {
		const struct ent *e = &L.tab[i];
		if (e->key.kind != LEASE_NFS || e->key.export_id != export_id || !path ||
		    strcmp(e->path, path) != 0)
			continue;
		if (better(e, best))
			best = e;
	}
	if (best && out)
		*out = best->key;
	pthread_mutex_unlock(&L.wmu);
	return best ? 0 : -ENOENT;
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void hex_str(FILE *out, const uint8_t *b, size_t n)
{
	fputc('"', out);
	put_hex(out, b, n);
	fputc('"', out);
}

static void show_one(FILE *out, const struct ent *e, bool json)
{
	if (json) {
		if (e->key.kind == LEASE_SCSI) {
			fprintf(out, "{\"lld\": \"iscsi\", \"tid\": %d, \"lun\": %" PRIu64 ", \"target\": ",
				e->tid, e->lun);
			json_str(out, e->target);
			fputs(", \"naa\": ", out);
			hex_str(out, e->key.naa, 16);
		} else {
			fprintf(out, "{\"lld\": \"nfs\", \"export_id\": %u, \"path\": ", e->key.export_id);
			json_str(out, e->path);
			fputs(", \"file_id\": ", out);
			hex_str(out, e->key.fid, e->key.fid_len);
		}
		fprintf(out, ", \"held\": %s, \"holder\": ", e->held ? "true" : "false");
		json_str(out, e->holder);
		fprintf(out, ", \"epoch\": %" PRIu64 "}", e->epoch);
		return;
	}
	if (e->key.kind == LEASE_SCSI) {
		fprintf(out, "Lease: iscsi tid %d lun %" PRIu64 "%s%s\n", e->tid, e->lun,
			e->target[0] ? " target " : "", e->target);
		fputs("    NAA: ", out);
		put_hex(out, e->key.naa, 16);
	} else {
		fprintf(out, "Lease: nfs export %u path %s\n", e->key.export_id,
			e->path[0] ? e->path : "?");
		fputs("    File id: ", out);
		put_hex(out, e->key.fid, e->key.fid_len);
	}
	fprintf(out, "\n    State: %s\n    %s: %s\n    Epoch: %" PRIu64 "\n",
		e->held ? "held" : "free", e->held ? "Holder" : "Last holder", e->holder, e->epoch);
}

int lease_show(FILE *out, bool json, const struct lease_key *key)
{
	int shown = 0;

	pthread_mutex_lock(&L.wmu);
	if (json)
		fputs("{\"leases\": [", out);
	for (size_t i = 0; i < L.n; i++) {
		if (key && !key_equal(&L.tab[i].key, key))
			continue;
		if (json && shown)
			fputs(", ", out);
		show_one(out, &L.tab[i], json);
		shown++;
	}
	if (json)
		fputs("]}\n", out);
	pthread_mutex_unlock(&L.wmu);
	return shown;
}

/* ------------------------------------------------------------------ */
/* data path                                                           */
/* ------------------------------------------------------------------ */

int lease_nfs_fid(const uint8_t *fh, size_t fhlen, uint8_t fid[LEASE_FID_MAX], uint8_t *fid_len)
{
	size_t k;

	if (!fh || fhlen < FH_LAYOUT_HDR || fh[0] != FH_LAYOUT_VERSION)
		return -EINVAL;
	k = fh[1];
	if ((size_t)FH_LAYOUT_HDR + k > fhlen || 5 + k > LEASE_FID_MAX)
		return -EINVAL;
	/* kernel handle length and type, then the kernel handle: the inode,
	 * whichever export (and so export id) it is reached through */
	memcpy(fid, fh + 1, 5);
	memcpy(fid + 5, fh + FH_LAYOUT_HDR, k);
	*fid_len = (uint8_t)(5 + k);
	return 0;
}

bool lease_is_write_opcode(const uint8_t *cdb)
{
	if (!cdb)
		return false;
	switch (cdb[0]) {
	case 0x04:  /* FORMAT UNIT (SBC-3 5.3) */
	case 0x07:  /* REASSIGN BLOCKS */
	case 0x0a:  /* WRITE(6) */
	case 0x2a:  /* WRITE(10) */
	case 0x2e:  /* WRITE AND VERIFY(10) */
	case 0x3f:  /* WRITE LONG(10) */
	case 0x41:  /* WRITE SAME(10) */
	case 0x42:  /* UNMAP */
	case 0x48:  /* SANITIZE */
	case 0x50:  /* XDWRITE(10) (SBC-2) */
	case 0x51:  /* XPWRITE(10) */
	case 0x53:  /* XDWRITEREAD(10) */
	case 0x89:  /* COMPARE AND WRITE */
	case 0x8a:  /* WRITE(16) */
	case 0x8b:  /* ORWRITE(16) */
	case 0x8e:  /* WRITE AND VERIFY(16) */
	case 0x93:  /* WRITE SAME(16) */
	case 0x9a:  /* WRITE STREAM(16) (SBC-4) */
	case 0x9c:  /* WRITE ATOMIC(16) (SBC-4) */
	case 0xaa:  /* WRITE(12) */
	case 0xae:  /* WRITE AND VERIFY(12) */
		return true;
	case 0x9f:  /* SERVICE ACTION OUT(16) */
		switch (cdb[1] & 0x1f) {
		case 0x11:  /* WRITE LONG(16) */
		case 0x12:  /* WRITE SCATTERED(16) (SBC-4) */
			return true;
		default:
			return false;
		}
	case 0x7f:  /* variable length CDB: service action in bytes 8-9 (SPC-4 4.2.3) */
		switch ((unsigned)cdb[8] << 8 | cdb[9]) {
		case 0x0004:  /* XDWRITE(32) */
		case 0x0006:  /* XPWRITE(32) */
		case 0x0007:  /* XDWRITEREAD(32) */
		case 0x000b:  /* WRITE(32) */
		case 0x000c:  /* WRITE AND VERIFY(32) */
		case 0x000d:  /* WRITE SAME(32) */
		case 0x000e:  /* ORWRITE(32) */
		case 0x000f:  /* WRITE ATOMIC(32) */
		case 0x0010:  /* WRITE STREAM(32) */
		case 0x0011:  /* WRITE SCATTERED(32) */
			return true;
		default:
			return false;
		}
	default:
		return false;
	}
}

/* Length of the initiator name in an initiator port name "name,i,0x...". */
static size_t initiator_name_len(const char *s)
{
	const char *sep = strstr(s, ",i,");

	return sep ? (size_t)(sep - s) : strlen(s);
}

bool lease_scsi_write_allowed(const uint8_t naa[16], const char *initiator)
{
	size_t ilen;
	bool ok = true;

	if (atomic_load_explicit(&L.scsi_held, memory_order_acquire) == 0)
		return true;
	if (!naa)
		return false;
	ilen = initiator ? initiator_name_len(initiator) : 0;
	pthread_rwlock_rdlock(&L.rw);
	for (size_t i = 0; i < L.n; i++) {
		const struct ent *e = &L.tab[i];
		if (!e->held || e->key.kind != LEASE_SCSI || memcmp(e->key.naa, naa, 16) != 0)
			continue;
		/* iSCSI names compare case-insensitively (RFC 3722 stringprep
		 * folds case; initiators differ in what they send). */
		ok = ilen && ilen == e->holder_len && strncasecmp(e->holder, initiator, ilen) == 0;
		break;
	}
	pthread_rwlock_unlock(&L.rw);
	return ok;
}

/* The NFS check proper: addr is the client's address (16 bytes, IPv4
 * mapped) or NULL when unknown. */
static bool nfs_allowed(const uint8_t *fh, size_t fhlen, const uint8_t *addr,
			const char *machine_name)
{
	uint8_t fid[LEASE_FID_MAX], flen;
	bool ok = true;

	if (lease_nfs_fid(fh, fhlen, fid, &flen) < 0)
		return false;   /* cannot tell which file: do not risk it */
	pthread_rwlock_rdlock(&L.rw);
	for (size_t i = 0; i < L.n; i++) {
		const struct ent *e = &L.tab[i];
		if (!e->held || e->key.kind != LEASE_NFS || e->key.fid_len != flen ||
		    memcmp(e->key.fid, fid, flen) != 0)
			continue;
		if (e->holder_is_addr)
			ok = addr && memcmp(addr, e->holder_addr, 16) == 0;
		else
			ok = machine_name && machine_name[0] && strcasecmp(machine_name, e->holder) == 0;
		break;
	}
	pthread_rwlock_unlock(&L.rw);
	return ok;
}

bool lease_nfs_write_allowed(uint32_t export_id, const uint8_t *fh, size_t fhlen,
			     const char *client_addr, const char *machine_name)
{
	uint8_t addr[16];

	(void)export_id;        /* the file is matched whichever export it is reached through */
	if (atomic_load_explicit(&L.nfs_held, memory_order_acquire) == 0)
		return true;
	return nfs_allowed(fh, fhlen, parse_addr(client_addr, addr) ? addr : NULL, machine_name);
}

bool lease_nfs_write_allowed_sa(uint32_t export_id, const uint8_t *fh, size_t fhlen,
				const struct sockaddr *peer, const char *machine_name)
{
	uint8_t addr[16];
	const uint8_t *a = NULL;

	(void)export_id;
	if (atomic_load_explicit(&L.nfs_held, memory_order_acquire) == 0)
		return true;
	if (peer && peer->sa_family == AF_INET) {
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		a = addr;
	} else if (peer && peer->sa_family == AF_INET6) {
		memcpy(addr, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
		a = addr;
	}
	return nfs_allowed(fh, fhlen, a, machine_name);
}
