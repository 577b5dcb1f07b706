/* migrate.c - see migrate.h. */
#include "companion/migrate.h"
#include "companion/compare.h"
#include "companion/journal.h"
#include "companion/preflight.h"
#include "companion/probe.h"
#include "companion/qmp.h"
#include "companion/run.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a QMP command may take.  The tests shorten it (a lost answer
 * is one of the cases): RINGSTOR_MIGRATE_TEST_QMP_TIMEOUT_MS. */
#define QMP_TIMEOUT_MS   qmp_timeout_ms()
#define ADM_TIMEOUT_S    30
#define MAX_LEASES       JOURNAL_MAX_LEASES

/* ------------------------------------------------------------ helpers */

static int qmp_timeout_ms(void)
{
	const char *e = getenv("RINGSTOR_MIGRATE_TEST_QMP_TIMEOUT_MS");
	int v = e ? atoi(e) : 0;
	return v >= 100 && v <= 600000 ? v : 10000;
}

/* How long to keep trying to reach a QMP socket that is not there. */
static int qmp_connect_ms(void)
{
	int t = qmp_timeout_ms();
	return t < 5000 ? t : 5000;
}

static char **strv_end(char **v, size_t n)
{
	char **nv = realloc(v, (n + 1) * sizeof(*nv));
	if (!nv) {
		fputs("ringstor-migrate: out of memory\n", stderr);
		abort();
	}
	nv[n] = NULL;
	return nv;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool ssh_like(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	return strstr(base ? base + 1 : argv0, "ssh") != NULL;
}

char **host_argv(const char *rsh, const char *host, char *const *words, size_t n)
{
	char **w = NULL;
	size_t k = 0;
	if (!host || strcmp(host, PREFLIGHT_LOCAL_HOST) == 0) {
		for (size_t i = 0; i < n; i++)
			strv_push(&w, &k, words[i]);
		return strv_end(w, k);
	}
	if (!rsh)
		rsh = PREFLIGHT_DEFAULT_RSH;
	if (cmdline_split(rsh, strlen(rsh), &w, &k) < 0 || k == 0) {
		strv_free(w, k);
		return NULL;
	}
	strv_push(&w, &k, host);
	if (ssh_like(w[0])) {
		/* ssh hands its arguments to the remote shell as one line. */
		struct strbuf cmd = {0};
		for (size_t i = 0; i < n; i++) {
			char *q = shell_quote(words[i]);
			sb_printf(&cmd, "%s%s", i ? " " : "", q ? q : "''");
			free(q);
		}
		strv_push(&w, &k, cmd.buf ? cmd.buf : "");
		sb_free(&cmd);
	} else {
		for (size_t i = 0; i < n; i++)
			strv_push(&w, &k, words[i]);
	}
	return strv_end(w, k);
}

static char *argv_text(char *const *argv)
{
	struct strbuf sb = {0};
	for (size_t i = 0; argv && argv[i]; i++) {
		char *q = shell_quote(argv[i]);
		sb_printf(&sb, "%s%s", i ? " " : "", q ? q : "?");
		free(q);
	}
	if (!sb.buf)
		sb_append(&sb, "", 0);
	return sb.buf;
}

static void last_line(const struct strbuf *sb, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!sb->buf)
		return;
	size_t n = sb->len;
	while (n && (sb->buf[n - 1] == '\n' || sb->buf[n - 1] == '\r'))
		n--;
	size_t s = n;
	while (s && sb->buf[s - 1] != '\n')
		s--;
	snprintf(buf, len, "%.*s", (int)(n - s), sb->buf + s);
}

/* ------------------------------------------------ QEMU command lines */

static bool opt_is(const char *w, const char *name)
{
	if (w[0] == '-' && w[1] == '-')
		w++;
	return strcmp(w, name) == 0;
}

/* Value of key in a QEMU option string (",," is a literal comma). */
static char *qopt_value(const char *s, const char *key)
{
	size_t klen = strlen(key);
	const char *p = s;
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
		if (item.buf && strncmp(item.buf, key, klen) == 0 && item.buf[klen] == '=') {
			char *r = xstrdup(item.buf + klen + 1);
			sb_free(&item);
			return r;
		}
		sb_free(&item);
	}
	return NULL;
}

char *qemu_cmdline_initiator(const char *cmdline, size_t len)
{
	char **w = NULL;
	size_t n = 0;
	char *r = NULL;
	if (cmdline_split(cmdline, len, &w, &n) < 0)
		return NULL;
	for (size_t i = 0; i + 1 < n; i++)
		if (opt_is(w[i], "-iscsi")) {
			free(r);
			r = qopt_value(w[i + 1], "initiator-name");
		}
	strv_free(w, n);
	return r;
}

char *qemu_cmdline_qmp_path(const char *cmdline, size_t len)
{
	char **w = NULL;
	size_t n = 0;
	char *r = NULL;
	if (cmdline_split(cmdline, len, &w, &n) < 0)
		return NULL;
	for (size_t i = 0; i + 1 < n && !r; i++)
		if (opt_is(w[i], "-qmp") && strncmp(w[i + 1], "unix:", 5) == 0)
			r = strndup(w[i + 1] + 5, strcspn(w[i + 1] + 5, ","));
	strv_free(w, n);
	return r;
}

char **qemu_dest_argv(const char *cmdline, size_t len, const char *qmp, const char *pidfile, const char *initiator,
		      char *err, size_t errlen)
{
	char **w = NULL;
	size_t n = 0;
	if (cmdline_split(cmdline, len, &w, &n) < 0) {
		snprintf(err, errlen, "QEMU command line: unbalanced quotes");
		return NULL;
	}
	if (n == 0) {
		snprintf(err, errlen, "QEMU command line is empty");
		return NULL;
	}
	if (strchr(qmp, ',')) {
		snprintf(err, errlen, "QMP socket path must not contain a comma: %s", qmp);
		strv_free(w, n);
		return NULL;
	}
	char **o = NULL;
	size_t k = 0;
	strv_push(&o, &k, w[0]);
	for (size_t i = 1; i < n; i++) {
		const char *a = w[i];
		bool has_arg = i + 1 < n;
		/* Ours to set on the destination: its own monitor, daemonized,
		 * paused, waiting for the incoming stream. */
		if ((opt_is(a, "-qmp") || opt_is(a, "-pidfile") || opt_is(a, "-incoming")) && has_arg) {
			i++;
			continue;
		}
		if (opt_is(a, "-daemonize") || opt_is(a, "-S"))
			continue;
		if (opt_is(a, "-iscsi") && has_arg) {
			/* Keep the other -iscsi settings (user, header digest), drop
			 * the initiator name: each host needs its own (the lease
			 * holder is the initiator). */
			struct strbuf keep = {0};
			const char *p = w[i + 1];
			while (*p) {
				size_t m = 0;
				while (p[m] && !(p[m] == ',' && p[m + 1] != ','))
					m += (p[m] == ',' ? 2 : 1);
				if (strncmp(p, "initiator-name=", 15) != 0)
					sb_printf(&keep, "%s%.*s", keep.len ? "," : "", (int)m, p);
				p += m;
				if (*p == ',')
					p++;
			}
			if (keep.len) {
				strv_push(&o, &k, "-iscsi");
				strv_push(&o, &k, keep.buf);
			}
			sb_free(&keep);
			i++;
			continue;
		}
		strv_push(&o, &k, a);
	}
	strv_free(w, n);
	char *q = NULL;
	if (asprintf(&q, "unix:%s,server=on,wait=off", qmp) < 0)
		abort();
	strv_push(&o, &k, "-qmp");
	strv_push(&o, &k, q);
	free(q);
	strv_push(&o, &k, "-daemonize");
	strv_push(&o, &k, "-pidfile");
	strv_push(&o, &k, pidfile);
	strv_push(&o, &k, "-incoming");
	strv_push(&o, &k, "defer");
	strv_push(&o, &k, "-S");
	if (initiator && *initiator) {
		if (strchr(initiator, ',')) {
			snprintf(err, errlen, "initiator name must not contain a comma: %s", initiator);
			strv_free(o, k);
			return NULL;
		}
		char *iv = NULL;
		if (asprintf(&iv, "initiator-name=%s", initiator) < 0)
			abort();
		strv_push(&o, &k, "-iscsi");
		strv_push(&o, &k, iv);
		free(iv);
	}
	return strv_end(o, k);
}

/* ---------------------------------------------------------- leases */

int lease_spec_args(const char *spec, char ***v, size_t *n)
{
	if (!spec || !*spec)
		return -1;
	const char *p = spec;
	while (*p) {
		size_t m = strcspn(p, ",");
		const char *eq = memchr(p, '=', m);
		if (!eq || eq == p || eq == p + m - 1)
			return -1;
		char *k = NULL, *val = NULL;
		if (asprintf(&k, "--%.*s", (int)(eq - p), p) < 0)
			abort();
		val = strndup(eq + 1, (size_t)(p + m - eq - 1));
		if (!val)
			abort();
		for (const char *c = k + 2; *c; c++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-_", *c)) {
				free(k);
				free(val);
				return -1;
			}
		strv_push(v, n, k);
		strv_push(v, n, val);
		free(k);
		free(val);
		p += m;
		if (*p == ',')
			p++;
	}
	return 0;
}

static const struct json_value *lease_obj(const struct json_value *v)
{
	if (!v)
		return NULL;
	if (v->type == JSON_ARRAY)
		return lease_obj(json_at(v, 0));
	if (v->type != JSON_OBJECT)
		return NULL;
	if (json_get(v, "lease"))
		return lease_obj(json_get(v, "lease"));
	if (json_get(v, "leases"))
		return lease_obj(json_get(v, "leases"));
	return v;
}

int lease_parse_show(const char *text, size_t len, struct lease_info *li, char *err, size_t errlen)
{
	memset(li, 0, sizeof(*li));
	char perr[128];
	struct json_value *v = json_parse(text, len, perr, sizeof(perr));
	if (!v) {
		snprintf(err, errlen, "lease show: not JSON: %s", perr);
		return -1;
	}
	const struct json_value *o = lease_obj(v);
	if (!o) {
		/* an empty list: no lease on this image */
		json_free(v);
		return 0;
	}
	const char *h = json_str(json_get(o, "holder"));
	bool held = h && *h;
	bool b;
	if (json_bool(json_get(o, "held"), &b))
		held = b && h && *h;
	const char *state = json_str(json_get(o, "state"));
	if (state && (strcmp(state, "free") == 0 || strcmp(state, "released") == 0))
		held = false;
	li->held = held;
	if (held)
		snprintf(li->holder, sizeof(li->holder), "%s", h);
	if (!json_u64(json_get(o, "epoch"), &li->epoch))
		li->epoch = 0;
	json_free(v);
	return 0;
}

/* ------------------------------------------------------ the context */

struct mctx {
	const char *driver, *vm, *source, *dest, *appliance, *rsh, *remote_cmd, *self_exe, *adm;
	const char *qmp_source, *qmp_dest, *dest_pidfile, *source_holder, *dest_holder;
	const char *dest_addr;
	/* libvirt / Xen drivers (virt == true): the domain, and where `virsh
	 * migrate` / `xl migrate` send it (the destination, and the source for
	 * a migration back) */
	bool virt, libvirt;
	const char *domain, *dest_uri, *source_uri;
	bool forward_tried;               /* rolled forward once (a migration back was impossible) */
	const char *xml_live, *xml_persistent; /* libvirt: --xml/--persistent-xml of the next migrate */
	bool finished;                    /* ... and that finished the migration: done */
	int port;
	char **lease_specs;
	size_t nleases;
	uint64_t epoch[MAX_LEASES];       /* the source's */
	bool transferred[MAX_LEASES];     /* now with the destination */
	uint64_t new_epoch[MAX_LEASES];
	bool source_was_running;
	bool dest_started;
	/* The go was sent to the destination (QMP cont, virsh resume, xl
	 * unpause; journaled as dest-cont-sent first): from then on the guest
	 * may have run there and written to its disk, so the source (whose RAM
	 * is older than the disk then) must never resume unless the
	 * destination is proven never to have written (dest_unused). */
	bool cont_sent;
	bool dest_unused;                 /* QEMU: reachable, not running, 0 writes (query-blockstats) */
	bool at_completion;               /* --transfer-at completed */
	bool completed_recorded;
	uint64_t qemu_downtime_ms;        /* QEMU's own, reported at completion */
	long t_stopped;                   /* when we saw the source stopped (mono ms), 0 unknown */
	struct qmp src, dst;
	bool src_open, dst_open, src_tried, dst_tried;
	struct journal j;
	bool journal_ok;
	FILE *out, *err;
	int timeout_s;
	bool progress;
};

static void say(struct mctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct mctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("migrate: ", c->out);
	vfprintf(c->out, fmt, ap);
	fputc('\n', c->out);
	fflush(c->out);
	va_end(ap);
}

static void complain(struct mctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void complain(struct mctx *c, const char *fmt, ...)
{
	va_list ap;
	fflush(c->out);
	va_start(ap, fmt);
	fputs("ringstor-migrate: ", c->err);
	vfprintf(c->err, fmt, ap);
	fputc('\n', c->err);
	fflush(c->err);
	va_end(ap);
}

/* Fault injection for the tests: RINGSTOR_MIGRATE_TEST_HOOK="STEP:COMMAND"
 * runs COMMAND (sh -c, with RINGSTOR_MIGRATE_PID set) right after STEP is
 * journaled, e.g. to kill the destination, or this process, at exactly
 * that point of the handover. */
static void test_hook(const char *step)
{
	const char *h = getenv("RINGSTOR_MIGRATE_TEST_HOOK");
	if (!h)
		return;
	const char *colon = strchr(h, ':');
	if (!colon || (size_t)(colon - h) != strlen(step) || strncmp(h, step, strlen(step)) != 0)
		return;
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("RINGSTOR_MIGRATE_PID", pid, 1);
	fflush(NULL);
	int r = system(colon + 1);
	(void)r;
}

/* Journals a step; -1 if it could not be made durable (the caller must not
 * take a forward step it cannot record). */
static int rec(struct mctx *c, const char *step, const char *members)
{
	if (journal_record(&c->j, step, members) < 0) {
		complain(c, "cannot write the journal %s: %s", c->j.path, strerror(errno));
		c->journal_ok = false;
		return -1;
	}
	test_hook(step);
	return 0;
}

static int rec_lease(struct mctx *c, const char *step, size_t i, uint64_t epoch, const char *holder)
{
	struct strbuf m = {0};
	jm_u64(&m, "i", i);
	jm_u64(&m, "epoch", epoch);
	if (holder)
		jm_str(&m, "holder", holder);
	int r = rec(c, step, m.buf);
	sb_free(&m);
	return r;
}

static int rec_str(struct mctx *c, const char *step, const char *key, const char *val)
{
	struct strbuf m = {0};
	jm_str(&m, key, val);
	int r = rec(c, step, m.buf);
	sb_free(&m);
	return r;
}

/* Runs words on host and waits; returns the exit status (-1: could not run
 * or timed out); out/errtext get the output. */
static int host_run(struct mctx *c, const char *host, char *const *words, size_t n, int timeout_s,
		    struct strbuf *out, char *why, size_t whylen)
{
	char **argv = host_argv(c->rsh, host, words, n);
	if (!argv) {
		snprintf(why, whylen, "cannot build a command from --rsh '%s'", c->rsh ? c->rsh : "");
		return -1;
	}
	struct run_job jb;
	int st = -1;
	if (run_start(&jb, argv) < 0) {
		snprintf(why, whylen, "%s", jb.why);
	} else {
		run_wait_all(&jb, 1, timeout_s);
		st = jb.status;
		char line[300];
		last_line(&jb.err, line, sizeof(line));
		char *t = argv_text(argv);
		if (st < 0)
			snprintf(why, whylen, "%s (%s)", jb.why, t);
		else if (st != 0)
			snprintf(why, whylen, "exit status %d: %s (%s)", st, *line ? line : "no message", t);
		else
			why[0] = '\0';
		free(t);
		if (out) {
			sb_append(out, jb.out.buf ? jb.out.buf : "", jb.out.len);
		}
	}
	run_job_free(&jb);
	argv_free(argv);
	return st;
}

static int adm_run(struct mctx *c, size_t i, const char *op, const char *holder, const uint64_t *epoch, bool json,
		   struct strbuf *out, char *why, size_t whylen)
{
	char **w = NULL;
	size_t n = 0;
	const char *adm = c->adm ? c->adm : MIGRATE_DEFAULT_ADM;
	if (cmdline_split(adm, strlen(adm), &w, &n) < 0 || n == 0) {
		strv_free(w, n);
		snprintf(why, whylen, "bad --adm '%s'", adm);
		return -1;
	}
	strv_push(&w, &n, "--mode");
	strv_push(&w, &n, "lease");
	strv_push(&w, &n, "--op");
	strv_push(&w, &n, op);
	if (lease_spec_args(c->lease_specs[i], &w, &n) < 0) {
		strv_free(w, n);
		snprintf(why, whylen, "bad --lease '%s'", c->lease_specs[i]);
		return -1;
	}
	if (holder) {
		strv_push(&w, &n, "--holder");
		strv_push(&w, &n, holder);
	}
	if (epoch) {
		char e[32];
		snprintf(e, sizeof(e), "%" PRIu64, *epoch);
		strv_push(&w, &n, "--epoch");
		strv_push(&w, &n, e);
	}
	if (json)
		strv_push(&w, &n, "--json");
	int st = host_run(c, c->appliance, w, n, ADM_TIMEOUT_S, out, why, whylen);
	strv_free(w, n);
	return st;
}

static int lease_show(struct mctx *c, size_t i, struct lease_info *li, char *why, size_t whylen)
{
	struct strbuf out = {0};
	char swhy[512];
	int st = adm_run(c, i, "show", NULL, NULL, true, &out, swhy, sizeof(swhy));
	int r = -1;
	/* ringstoradm exits non-zero for an object that never had a lease but
	 * still prints {"leases": []}: what it prints is what counts. */
	if (st >= 0 && out.len) {
		r = lease_parse_show(out.buf, out.len, li, why, whylen);
		if (r < 0 && st != 0)
			snprintf(why, whylen, "%s", swhy);
	} else {
		snprintf(why, whylen, "%s", st == 0 ? "lease show printed nothing" : swhy);
	}
	sb_free(&out);
	return r;
}

/* Transfers lease i from `from` (at epoch) to `to`.  The appliance's answer
 * can be lost (remote shell died): the lease state is read back either way,
 * and that is what counts.  0 with *new_epoch, or -1 (lease unchanged, or
 * -2: changed by someone else). */
static int lease_transfer(struct mctx *c, size_t i, const char *from, const char *to, uint64_t epoch,
			  uint64_t *new_epoch, char *why, size_t whylen)
{
	char opwhy[512] = "";
	int st = adm_run(c, i, "transfer", to, &epoch, false, NULL, opwhy, sizeof(opwhy));
	struct lease_info li;
	char swhy[512];
	if (lease_show(c, i, &li, swhy, sizeof(swhy)) < 0) {
		/* Trust the transfer's own answer when the state cannot be read. */
		snprintf(why, whylen, "transfer %.200s; then lease show failed: %.200s", st == 0 ? "answered ok" : opwhy, swhy);
		if (st != 0)
			return -1;
		*new_epoch = epoch + 1;
		return 0;
	}
	if (li.held && strcmp(li.holder, to) == 0 && li.epoch > epoch) {
		*new_epoch = li.epoch;
		return 0;
	}
	if (li.held && strcmp(li.holder, from) == 0 && li.epoch == epoch) {
		snprintf(why, whylen, "the appliance refused the transfer: %s", *opwhy ? opwhy : "no reason given");
		return -1;
	}
	snprintf(why, whylen, "the lease changed under us: holder %s, epoch %" PRIu64 " (%s)",
		 li.held ? li.holder : "(none)", li.epoch, *opwhy ? opwhy : "transfer answered ok");
	return -2;
}

/* ------------------------------------------------------------- QMP */

static int qmp_connect(struct mctx *c, struct qmp *q, const char *host, const char *sock, int timeout_ms)
{
	if (!host || strcmp(host, PREFLIGHT_LOCAL_HOST) == 0)
		return qmp_open_unix(q, sock, timeout_ms);
	const char *words[] = { c->remote_cmd ? c->remote_cmd : PREFLIGHT_DEFAULT_REMOTE_CMD, "qmp-relay", sock };
	char **argv = host_argv(c->rsh, host, (char *const *)words, 3);
	if (!argv) {
		snprintf(q->err, sizeof(q->err), "cannot build a command from --rsh");
		return -1;
	}
	/* The relay fails at once if the socket is not there yet (a QEMU
	 * still starting): retry until the deadline. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r;
	for (;;) {
		r = qmp_open_cmd(q, argv, 5000);
		if (r == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= timeout_ms)
			break;
		usleep(200 * 1000);
	}
	argv_free(argv);
	return r;
}

static struct qmp *src_q(struct mctx *c)
{
	if (!c->src_open && !c->src_tried) {
		c->src_tried = true;
		if (qmp_connect(c, &c->src, c->source, c->qmp_source, qmp_connect_ms()) == 0)
			c->src_open = true;
		else
			complain(c, "source QMP %s on %s: %s", c->qmp_source, c->source, c->src.err);
	}
	return c->src_open ? &c->src : NULL;
}

static struct qmp *dst_q(struct mctx *c)
{
	if (!c->dst_open && !c->dst_tried) {
		c->dst_tried = true;
		if (qmp_connect(c, &c->dst, c->dest, c->qmp_dest, qmp_connect_ms()) == 0)
			c->dst_open = true;
		else
			complain(c, "destination QMP %s on %s: %s", c->qmp_dest, c->dest, c->dst.err);
	}
	return c->dst_open ? &c->dst : NULL;
}

/* query-migrate: status into buf; the reply for progress if wanted. */
static int migrate_status(struct qmp *q, char *buf, size_t len, struct json_value **reply)
{
	struct json_value *r = NULL;
	int rc = qmp_execute(q, "query-migrate", NULL, &r, QMP_TIMEOUT_MS);
	if (rc)
		return rc;
	const char *s = json_str(json_get(qmp_ret(r), "status"));
	snprintf(buf, len, "%s", s ? s : "none");
	if (reply)
		*reply = r;
	else
		json_free(r);
	return 0;
}

static void print_progress(struct mctx *c, const struct json_value *reply, bool final)
{
	const struct json_value *r = qmp_ret(reply);
	const struct json_value *ram = json_get(r, "ram");
	uint64_t tr = 0, rem = 0, tot = 0, tt = 0, dt = 0;
	json_u64(json_get(ram, "transferred"), &tr);
	json_u64(json_get(ram, "remaining"), &rem);
	json_u64(json_get(ram, "total"), &tot);
	json_u64(json_get(r, "total-time"), &tt);
	const char *mbps = json_str(json_get(ram, "mbps"));
	if (final) {
		if (json_u64(json_get(r, "downtime"), &dt))
			say(c, "migration completed: %.1f MiB of RAM sent in %" PRIu64 " ms, downtime %" PRIu64 " ms",
			    tr / 1048576.0, tt, dt);
		else
			say(c, "migration completed: %.1f MiB of RAM sent in %" PRIu64 " ms", tr / 1048576.0, tt);
		return;
	}
	if (!c->progress)
		return;
	fprintf(c->err, "migrate: %s  RAM %.1f/%.1f MiB sent, %.1f MiB remaining%s%s%s, %" PRIu64 " ms\n",
		json_str(json_get(r, "status")) ? json_str(json_get(r, "status")) : "?", tr / 1048576.0,
		tot / 1048576.0, rem / 1048576.0, mbps ? ", " : "", mbps ? mbps : "", mbps ? " Mbit/s" : "", tt);
	fflush(c->err);
}

static bool migration_active(const char *st)
{
	return strcmp(st, "setup") == 0 || strcmp(st, "active") == 0 || strcmp(st, "pre-switchover") == 0 ||
	       strcmp(st, "device") == 0 || strcmp(st, "cancelling") == 0 || strncmp(st, "postcopy", 8) == 0 ||
	       strcmp(st, "wait-unplug") == 0;
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Kills the destination QEMU: QMP quit, else its pid file on its host. */
static void stop_dest(struct mctx *c)
{
	struct qmp *q = dst_q(c);
	bool stopped = false;
	if (q) {
		int r = qmp_execute(q, "quit", NULL, NULL, QMP_TIMEOUT_MS);
		/* QEMU may close the socket before its answer arrives. */
		stopped = r == 0 || r == QMP_E_IO;
		qmp_close(q);
		c->dst_open = false;
	}
	if (!stopped && c->dest_pidfile) {
		char *script = NULL;
		char *qp = shell_quote(c->dest_pidfile);
		if (asprintf(&script, "p=$(cat %s 2>/dev/null) && [ -n \"$p\" ] && kill -KILL \"$p\"; true", qp ? qp : "''") < 0)
			abort();
		free(qp);
		const char *words[] = { "sh", "-c", script };
		char why[512];
		if (host_run(c, c->dest, (char *const *)words, 3, 30, NULL, why, sizeof(why)) != 0)
			complain(c, "could not kill the destination QEMU by its pid file %s: %s", c->dest_pidfile, why);
		free(script);
	}
	rec(c, "dest-stopped", NULL);
	say(c, "destination QEMU stopped");
}

/* Cancels the migration if one is under way and resumes the source if it
 * was running.  0, or -1 (the source is not running; why printed). */
static int resume_source(struct mctx *c)
{
	struct qmp *q = src_q(c);
	if (!q) {
		complain(c, "the source QEMU cannot be reached: it does not run the VM any more");
		return -1;
	}
	char st[64];
	if (migrate_status(q, st, sizeof(st), NULL) == 0 && migration_active(st)) {
		if (strcmp(st, "cancelling") != 0)
			qmp_execute(q, "migrate_cancel", NULL, NULL, QMP_TIMEOUT_MS);
		long dl = mono_ms() + 30000;
		while (mono_ms() < dl) {
			if (migrate_status(q, st, sizeof(st), NULL) != 0 || !migration_active(st))
				break;
			usleep(100 * 1000);
		}
	}
	/* Leave the source as we found it: a later migration by someone else
	 * must not stop at pre-switchover waiting for us. */
	qmp_execute(q, "migrate-set-capabilities",
		    "{\"capabilities\":[{\"capability\":\"pause-before-switchover\",\"state\":false}]}", NULL,
		    QMP_TIMEOUT_MS);
	char rs[64];
	if (qmp_status(q, rs, sizeof(rs), QMP_TIMEOUT_MS) != 0) {
		complain(c, "source QMP: %s", q->err);
		return -1;
	}
	if (strcmp(rs, "running") != 0 && c->source_was_running) {
		if (qmp_execute(q, "cont", NULL, NULL, QMP_TIMEOUT_MS) != 0) {
			complain(c, "cont on the source (state %s): %s", rs, q->err);
			return -1;
		}
		if (qmp_status(q, rs, sizeof(rs), QMP_TIMEOUT_MS) != 0 || strcmp(rs, "running") != 0) {
			complain(c, "the source did not resume (state %s)", rs);
			return -1;
		}
	}
	rec_str(c, "source-resumed", "state", rs);
	say(c, "source resumed (%s)", rs);
	return 0;
}

/* Hands every transferred lease back to the source (epoch + 1 again); the
 * destination must be stopped or paused.  0, or -1 (said why). */
static int return_leases(struct mctx *c)
{
	for (size_t i = 0; i < c->nleases; i++) {
		if (!c->transferred[i])
			continue;
		char why[512];
		uint64_t ne = 0;
		if (lease_transfer(c, i, c->dest_holder, c->source_holder, c->new_epoch[i], &ne, why, sizeof(why)) < 0) {
			complain(c, "ROLLBACK INCOMPLETE: cannot hand lease %s back to %s: %s. The source stays "
				 "paused (it could not write). Run: ringstor-migrate recover --journal %s",
				 c->lease_specs[i], c->source_holder, why, c->j.path);
			return -1;
		}
		c->transferred[i] = false;
		c->epoch[i] = ne;
		rec_lease(c, "lease-returned", i, ne, c->source_holder);
		say(c, "lease %s back with %s, epoch %" PRIu64, c->lease_specs[i], c->source_holder, ne);
	}
	return 0;
}

static int virt_rollback_before(struct mctx *c, const char *reason);
static int virt_rollback_after(struct mctx *c, const char *reason);

/* The sum of the write operations (writes, discards, failed ones too) QEMU
 * counted on every drive (query-blockstats, top level: the guest's own
 * requests; migration does not write through them).  0, or -1 (why). */
static int dest_writes(struct qmp *q, uint64_t *n, char *why, size_t whylen)
{
	struct json_value *r = NULL;
	if (qmp_execute(q, "query-blockstats", NULL, &r, QMP_TIMEOUT_MS) != 0) {
		snprintf(why, whylen, "query-blockstats: %s", q->err);
		return -1;
	}
	const struct json_value *a = qmp_ret(r);
	int rc = 0;
	*n = 0;
	if (!a || a->type != JSON_ARRAY) {
		snprintf(why, whylen, "query-blockstats: not a list");
		rc = -1;
	}
	static const char *const keys[] = { "wr_operations", "failed_wr_operations", "unmap_operations",
					     "failed_unmap_operations", "zone_append_operations" };
	for (size_t i = 0; rc == 0 && i < json_len(a); i++) {
		const struct json_value *st = json_get(json_at(a, i), "stats");
		uint64_t v = 0;
		if (!json_u64(json_get(st, "wr_operations"), &v)) {
			snprintf(why, whylen, "query-blockstats: drive %zu has no wr_operations", i);
			rc = -1;
			break;
		}
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (json_u64(json_get(st, keys[k]), &v))
				*n += v;
	}
	json_free(r);
	return rc;
}

enum dest_fate {
	DEST_RUNS,         /* it runs: the go worked */
	DEST_NEVER_WROTE,  /* reachable, not running, no write counted: the source may resume */
	DEST_IN_DOUBT,     /* unreachable, no answer, or it wrote: the source must not resume */
};

/* The go (cont) was sent to the destination QEMU and its outcome is not
 * known (error, timeout, the status query failed or says it does not
 * run): ask again, on a new QMP connection (the old one may be what
 * broke).  ds: its state; seen: what was found, for the operator. */
static enum dest_fate dest_fate_qemu(struct mctx *c, char *ds, size_t dslen, char *seen, size_t seenlen)
{
	/* A connection that broke is opened again; one that could not be
	 * made (dst_q tried for a while) is not tried twice. */
	if (c->dst_open) {
		qmp_close(&c->dst);
		c->dst_open = false;
		c->dst_tried = false;
	}
	snprintf(ds, dslen, "unreachable");
	struct qmp *d = dst_q(c);
	if (!d) {
		snprintf(seen, seenlen, "its QMP socket cannot be reached: %s", c->dst.err);
		return DEST_IN_DOUBT;
	}
	if (qmp_status(d, ds, dslen, QMP_TIMEOUT_MS) != 0) {
		snprintf(seen, seenlen, "query-status: %s", d->err);
		snprintf(ds, dslen, "unknown");
		return DEST_IN_DOUBT;
	}
	if (strcmp(ds, "running") == 0) {
		snprintf(seen, seenlen, "it runs");
		return DEST_RUNS;
	}
	uint64_t wr = 0;
	char why[600];
	if (dest_writes(d, &wr, why, sizeof(why)) < 0) {
		snprintf(seen, seenlen, "it is %s, and whether it wrote is unknown (%.400s)", ds, why);
		return DEST_IN_DOUBT;
	}
	if (wr) {
		snprintf(seen, seenlen, "it is %s and has written to its disks (%" PRIu64 " write operations)", ds, wr);
		return DEST_IN_DOUBT;
	}
	snprintf(seen, seenlen, "it is %s and has written nothing (query-blockstats: 0 write operations)", ds);
	return DEST_NEVER_WROTE;
}

static const char *go_word(const struct mctx *c)
{
	return !c->virt ? "cont" : c->libvirt ? "virsh resume" : "xl unpause";
}

/* The go was sent to the destination and it may have run the guest, which
 * then wrote to the disk: the source's RAM is older than the disk, and a
 * source resumed now would execute those writes a second time (a real
 * guest corrupts its file system).  A crashed VM can be booted again; a
 * source resumed on top of the destination's writes cannot be repaired.
 * So touch nothing: the source stays paused (fenced: the lease is the
 * destination's), the lease stays with the destination.  Exit 3. */
static int stuck_after_go(struct mctx *c, const char *reason, const char *ds, const char *seen)
{
	struct strbuf m = {0};
	jm_str(&m, "reason", reason);
	jm_str(&m, "dest_state", ds);
	rec(c, "in-doubt", m.buf);
	sb_free(&m);
	complain(c, "NOT ROLLING BACK: %s. '%s' had been sent to the destination %s, so the VM may have run "
		 "there and written to its disk; asked again, %s. Resuming the source would replay those writes "
		 "from older memory and corrupt the disk, so nothing was changed: the source on %s stays paused "
		 "(it cannot write, the lease is not its own), the lease stays with the destination (%s). What to "
		 "do: if the VM still runs, or is paused, on %s, that is the VM: resume it there if paused, then "
		 "run: ringstor-migrate recover --journal %s (it stops the source). If it is gone there, the VM "
		 "has crashed: stop the source's copy (never resume it: its memory is stale) and boot the VM "
		 "again from its disk on %s, which holds the lease (or move the lease first with ringstoradm "
		 "--mode lease --op transfer); its disk has everything it wrote.",
		 reason, go_word(c), c->dest, seen, c->source, c->dest_holder, c->dest, c->j.path, c->dest);
	return 3;
}

/* Before undoing anything once the go was sent: 0 if the destination
 * provably never wrote (QEMU: reachable, not running, no write counted;
 * journaled as dest-unused), else stuck_after_go's 3.  libvirt/Xen: their
 * tools do not say whether the guest ran (a resume whose answer was lost
 * may have worked): never undo.  *ran is set when it runs after all. */
static int safe_to_undo(struct mctx *c, const char *reason, bool *ran)
{
	if (ran)
		*ran = false;
	if (!c->cont_sent || c->dest_unused)
		return 0;
	char ds[64], seen[700];
	if (c->virt) {
		snprintf(ds, sizeof(ds), "unknown");
		snprintf(seen, sizeof(seen), "the domain there does not run, and %s cannot tell whether it ran "
			 "in between", c->libvirt ? "libvirt" : "xl");
		return stuck_after_go(c, reason, ds, seen);
	}
	enum dest_fate f = dest_fate_qemu(c, ds, sizeof(ds), seen, sizeof(seen));
	if (f == DEST_RUNS && ran) {
		*ran = true;
		return 0;
	}
	if (f != DEST_NEVER_WROTE)
		return stuck_after_go(c, reason, ds, seen);
	c->dest_unused = true;
	struct strbuf m = {0};
	jm_str(&m, "state", ds);
	jm_u64(&m, "writes", 0);
	rec(c, "dest-unused", m.buf);
	sb_free(&m);
	say(c, "the destination never wrote (%s): the source can resume", seen);
	return 0;
}

/* Before any lease moved: stop the destination, resume the source. */
static int rollback_before(struct mctx *c, const char *reason)
{
	if (c->virt)
		return virt_rollback_before(c, reason);
	if (safe_to_undo(c, reason, NULL))
		return 3;
	say(c, "rolling back: %s", reason);
	rec_str(c, "rollback", "reason", reason);
	if (c->dest_started)
		stop_dest(c);
	if (resume_source(c) < 0) {
		complain(c, "ROLLBACK INCOMPLETE: the source is not running; the lease is still with %s. "
			 "Run: ringstor-migrate recover --journal %s", c->source_holder, c->j.path);
		return 3;
	}
	rec(c, "rolled-back", NULL);
	say(c, "rolled back: %s runs the VM and holds the lease", c->source);
	return 1;
}

/* After (some) leases moved: stop the destination first, hand the leases
 * back (the epoch grows again), only then resume the source. */
static int rollback_after(struct mctx *c, const char *reason)
{
	if (c->virt)
		return virt_rollback_after(c, reason);
	if (safe_to_undo(c, reason, NULL))
		return 3;
	say(c, "rolling back after the lease transfer: %s", reason);
	rec_str(c, "rollback", "reason", reason);
	stop_dest(c);
	if (return_leases(c) < 0)
		return 3;
	if (resume_source(c) < 0) {
		complain(c, "ROLLBACK INCOMPLETE: the source is not running although it holds the lease again. "
			 "Run: ringstor-migrate recover --journal %s", c->j.path);
		return 3;
	}
	rec(c, "rolled-back", NULL);
	say(c, "rolled back: %s runs the VM and holds the lease", c->source);
	return 1;
}

static bool any_transferred(const struct mctx *c)
{
	for (size_t i = 0; i < c->nleases; i++)
		if (c->transferred[i])
			return true;
	return false;
}

static int rollback(struct mctx *c, const char *reason)
{
	return any_transferred(c) ? rollback_after(c, reason) : rollback_before(c, reason);
}

/* Moves every lease not yet moved to the destination.  The source must be
 * stopped.  0, or the rollback's exit code. */
static int transfer_leases(struct mctx *c)
{
	for (size_t i = 0; i < c->nleases; i++) {
		if (c->transferred[i])
			continue;
		if (rec_lease(c, "transfer-begin", i, c->epoch[i], c->dest_holder) < 0)
			return rollback(c, "cannot journal the lease transfer");
		char why[512];
		uint64_t ne = 0;
		int r = lease_transfer(c, i, c->source_holder, c->dest_holder, c->epoch[i], &ne, why, sizeof(why));
		if (r < 0) {
			char reason[700];
			snprintf(reason, sizeof(reason), "lease %s: %s", c->lease_specs[i], why);
			return rollback(c, reason);
		}
		c->transferred[i] = true;
		c->new_epoch[i] = ne;
		rec_lease(c, "lease-transferred", i, ne, c->dest_holder);
		say(c, "lease %s transferred to %s, epoch %" PRIu64 " -> %" PRIu64, c->lease_specs[i], c->dest_holder,
		    c->epoch[i], ne);
	}
	return 0;
}

static long mono_ms(void);

static void record_completed(struct mctx *c, const struct json_value *reply)
{
	if (c->completed_recorded)
		return;
	c->completed_recorded = true;
	print_progress(c, reply, true);
	uint64_t dt = 0, tt = 0;
	struct strbuf m = {0};
	if (json_u64(json_get(qmp_ret(reply), "downtime"), &dt)) {
		jm_u64(&m, "downtime_ms", dt);
		c->qemu_downtime_ms = dt;
	}
	if (json_u64(json_get(qmp_ret(reply), "total-time"), &tt))
		jm_u64(&m, "total_ms", tt);
	rec(c, "completed", m.buf);
	sb_free(&m);
}

/* From "leases transferred" to "done": let the source finish sending,
 * resume the destination, stop the source. */
static int finish(struct mctx *c)
{
	struct qmp *s = src_q(c);
	char st[64] = "unknown";
	if (s) {
		long dl = mono_ms() + 120000;
		struct json_value *last = NULL;
		for (;;) {
			json_free(last);
			last = NULL;
			if (migrate_status(s, st, sizeof(st), &last) != 0) {
				snprintf(st, sizeof(st), "unknown");
				break;
			}
			if (strcmp(st, "pre-switchover") == 0) {
				if (qmp_execute(s, "migrate-continue", "{\"state\":\"pre-switchover\"}", NULL,
						QMP_TIMEOUT_MS) != 0) {
					char reason[600];
					snprintf(reason, sizeof(reason), "migrate-continue: %s", s->err);
					json_free(last);
					return rollback_after(c, reason);
				}
				rec(c, "switchover", NULL);
			} else if (!migration_active(st)) {
				break;
			}
			if (mono_ms() > dl) {
				json_free(last);
				return rollback_after(c, "the switchover did not complete within 120 s");
			}
			usleep(50 * 1000);
		}
		if (strcmp(st, "completed") == 0)
			record_completed(c, last);
		json_free(last);
		if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0) {
			char reason[128];
			snprintf(reason, sizeof(reason), "the migration %s at the switchover", st);
			return rollback_after(c, reason);
		}
	}
	/* The destination: it finishes loading the device state a moment after
	 * the source reports completed. */
	struct qmp *d = dst_q(c);
	char ds[64] = "unreachable";
	if (d) {
		long dl = mono_ms() + 30000;
		for (;;) {
			if (qmp_status(d, ds, sizeof(ds), QMP_TIMEOUT_MS) != 0) {
				snprintf(ds, sizeof(ds), "unreachable");
				break;
			}
			if (strcmp(ds, "inmigrate") != 0 || mono_ms() > dl)
				break;
			usleep(50 * 1000);
		}
	}
	if (strcmp(ds, "running") != 0) {
		if (strcmp(ds, "paused") != 0 && strcmp(ds, "postmigrate") != 0) {
			char reason[200];
			snprintf(reason, sizeof(reason), "the destination is %s after the migration (source: %s)", ds, st);
			return rollback_after(c, reason);
		}
		if (!c->source_was_running) {
			/* The VM was paused on the source: it stays paused. */
			say(c, "the VM was paused on the source; it stays paused on the destination");
		} else {
			/* The destination was started with -S: until cont it
			 * has run nothing and written nothing, and undoing is
			 * safe.  From cont on it may run (even if the answer
			 * is lost): journal that first, and undo only if it
			 * provably never wrote (safe_to_undo). */
			if (rec(c, "dest-cont-sent", NULL) < 0)
				return rollback_after(c, "cannot journal the cont of the destination");
			c->cont_sent = true;
			char reason[700] = "";
			if (qmp_execute(d, "cont", NULL, NULL, QMP_TIMEOUT_MS) != 0)
				snprintf(reason, sizeof(reason), "cont on the destination: %s", d->err);
			else if (qmp_status(d, ds, sizeof(ds), QMP_TIMEOUT_MS) != 0)
				snprintf(reason, sizeof(reason), "query-status on the destination after cont: %s", d->err);
			else if (strcmp(ds, "running") != 0)
				snprintf(reason, sizeof(reason), "the destination is %s after cont", ds);
			if (*reason) {
				bool ran = false;
				if (safe_to_undo(c, reason, &ran))
					return 3;
				if (!ran)
					return rollback_after(c, reason);
				snprintf(ds, sizeof(ds), "running");
				complain(c, "warning: %s; asked again, the destination runs: going on", reason);
			}
		}
	}
	{
		/* How long the guest stood still: with --transfer-at completed
		 * QEMU's downtime, then our lease handover and cont; at
		 * pre-switchover, all of it happened since we saw the stop. */
		struct strbuf m = {0};
		jm_str(&m, "state", ds);
		if (c->t_stopped) {
			long pause = mono_ms() - c->t_stopped + (c->at_completion ? (long)c->qemu_downtime_ms : 0);
			jm_u64(&m, "paused_ms", (uint64_t)pause);
			say(c, "destination %s: %s; the VM stood still for about %ld ms", c->dest, ds, pause);
		} else {
			say(c, "destination %s: %s", c->dest, ds);
		}
		rec(c, "dest-running", m.buf);
		sb_free(&m);
	}
	/* The source: paused (postmigrate) and fenced by the lease; quit it. */
	bool quit = false;
	s = src_q(c);
	if (s) {
		int r = qmp_execute(s, "quit", NULL, NULL, QMP_TIMEOUT_MS);
		quit = r == 0 || r == QMP_E_IO;
		qmp_close(s);
		c->src_open = false;
	}
	struct strbuf m = {0};
	jm_bool(&m, "quit", quit);
	rec(c, "source-stopped", m.buf);
	sb_free(&m);
	if (!quit)
		complain(c, "warning: could not quit the source QEMU (%s); it is paused and cannot write any more",
			 c->qmp_source);
	else
		say(c, "source QEMU on %s stopped", c->source);
	rec(c, "done", NULL);
	say(c, "done: %s runs the VM and holds the lease", c->dest);
	return 0;
}

/* -------------------------------------------- libvirt and Xen drivers
 *
 * Both hand the whole migration to the hypervisor's own tool, run on the
 * source host through the remote shell:
 *
 *   libvirt: virsh migrate --live --suspend --persistent --undefinesource DOMAIN URI
 *   Xen:     xl migrate -p DOMAIN HOST
 *
 * Either leaves the domain paused on the destination (--suspend, -p) and
 * has already stopped the source when it returns: the transfer point is
 * "the tool returned, the source's domain is gone, the destination's is
 * paused".  No write can have come from the destination yet (paused, and
 * not the lease holder); the source cannot write any more (its domain is
 * gone).  Then the lease moves, then `virsh resume` / `xl unpause` on the
 * destination.  Unlike QEMU, neither tool can keep the source's domain
 * around after the switchover, so a failed transfer is undone by migrating
 * the (paused) domain back and resuming it on the source.  The lease is
 * what keeps "one writer" true at every instant; "exactly one host runs
 * the VM" can fail only when the migration back fails too (exit 3: the VM
 * waits, paused and fenced, on the destination).
 *
 * The exit status of a remote command can be lost (ssh dies): every
 * decision is taken from the domain's state on both hosts, read back. */

static int abort_early(struct mctx *c, const char *reason);

enum vstate { VS_RUNNING, VS_PAUSED, VS_ABSENT, VS_OTHER, VS_UNKNOWN };

static const char *vstate_name(enum vstate s)
{
	static const char *const n[] = { "running", "paused", "absent", "other", "unknown" };
	return n[s];
}

enum virt_op { V_STATE, V_MIGRATE, V_MIGRATE_BACK, V_RESUME, V_DESTROY, V_ABORT, V_VERSION };

/* The command words of op (at most 12); 0 if the driver has none. */
static size_t virt_words(const struct mctx *c, enum virt_op op, const char **w)
{
	const char *d = c->domain;
	size_t n = 0;
	if (c->libvirt) {
		w[n++] = "virsh";
		switch (op) {
		case V_STATE: w[n++] = "domstate"; w[n++] = d; break;
		case V_MIGRATE: case V_MIGRATE_BACK:
			/* --suspend: the destination stays paused until the lease
			 * is with it; --persistent --undefinesource: the
			 * definition moves too, so the source cannot simply be
			 * started again. */
			w[n++] = "migrate"; w[n++] = "--live"; w[n++] = "--suspend"; w[n++] = "--persistent";
			w[n++] = "--undefinesource";
			if (c->xml_live) {
				/* the receiving host's own definition (virt_host_xml) */
				w[n++] = "--xml"; w[n++] = c->xml_live;
				w[n++] = "--persistent-xml"; w[n++] = c->xml_persistent;
			}
			w[n++] = d;
			w[n++] = op == V_MIGRATE ? c->dest_uri : c->source_uri;
			break;
		case V_RESUME: w[n++] = "resume"; w[n++] = d; break;
		case V_DESTROY: w[n++] = "destroy"; w[n++] = d; break;
		case V_ABORT: w[n++] = "domjobabort"; w[n++] = d; break;
		case V_VERSION: w[n++] = "version"; break;
		}
	} else {
		w[n++] = "xl";
		switch (op) {
		case V_STATE: w[n++] = "list"; w[n++] = d; break;
		case V_MIGRATE: case V_MIGRATE_BACK:
			/* -p: the domain stays paused on the receiving side */
			w[n++] = "migrate"; w[n++] = "-p"; w[n++] = d;
			w[n++] = op == V_MIGRATE ? c->dest_uri : c->source_uri;
			break;
		case V_RESUME: w[n++] = "unpause"; w[n++] = d; break;
		case V_DESTROY: w[n++] = "destroy"; w[n++] = d; break;
		case V_ABORT: return 0; /* xl has no job abort: its own timeout ends it */
		case V_VERSION: return 0;
		}
	}
	return n;
}

static int virt_run(struct mctx *c, const char *host, enum virt_op op, int timeout_s, struct strbuf *out,
		    char *why, size_t whylen)
{
	const char *w[16];
	size_t n = virt_words(c, op, w);
	if (!n) {
		why[0] = '\0';
		return 0;
	}
	return host_run(c, host, (char *const *)w, n, timeout_s, out, why, whylen);
}

/* Replaces the value of every <iqn name='FROM'/> (either quote) in xml by
 * to; the number replaced, -1 out of memory (*out: the new text). */
static int xml_swap_iqn(const char *xml, const char *from, const char *to, char **out)
{
	struct strbuf sb = {0};
	int n = 0;
	size_t fl = strlen(from);
	const char *p = xml;
	for (const char *q; (q = strstr(p, "<iqn"));) {
		const char *end = strchr(q, '>');
		const char *nm = strstr(q, "name=");
		if (!end || !nm || nm > end || (nm[5] != '\'' && nm[5] != '"')) {
			sb_append(&sb, p, (size_t)(q - p) + 4);
			p = q + 4;
			continue;
		}
		const char *v = nm + 6;
		if (strncmp(v, from, fl) == 0 && v[fl] == nm[5]) {
			sb_append(&sb, p, (size_t)(v - p));
			sb_append(&sb, to, strlen(to));
			p = v + fl;
			n++;
		} else {
			sb_append(&sb, p, (size_t)(v - p));
			p = v;
		}
	}
	sb_append(&sb, p, strlen(p));
	if (sb.oom) {
		sb_free(&sb);
		return -1;
	}
	*out = sb.buf;
	return n;
}

/* libvirt: a domain's iSCSI disks log in with the initiator name of its
 * XML (<source protocol='iscsi'><initiator><iqn name=.../>), the same on
 * every host it runs on, which would make the lease unable to tell the
 * source's copy from the destination's.  When that name is the sending
 * host's lease identity, the receiving host gets its own definition:
 * `virsh dumpxml --migratable` (live) and `--inactive --migratable`
 * (persistent) on the sending host, the name replaced by the receiving
 * host's identity, written to a temporary directory there and given to
 * `virsh migrate --xml --persistent-xml` -- the libvirt counterpart of the
 * QEMU driver's `-iscsi initiator-name=DEST_HOLDER`.  0 (c->xml_* set
 * when a rewrite is needed, *tmpdir to remove afterwards), -1 (why). */
static int virt_host_xml(struct mctx *c, const char *host, const char *from, const char *to, char **tmpdir,
			 char *why, size_t whylen)
{
	*tmpdir = NULL;
	c->xml_live = c->xml_persistent = NULL;
	if (!c->libvirt)
		return 0;
	struct strbuf live = {0}, pers = {0};
	char *nl = NULL, *np = NULL;
	int rc = -1;
	const char *wl[] = { "virsh", "dumpxml", "--migratable", c->domain };
	const char *wp[] = { "virsh", "dumpxml", "--inactive", "--migratable", c->domain };
	if (host_run(c, host, (char *const *)wl, 4, ADM_TIMEOUT_S, &live, why, whylen) != 0 || !live.buf)
		goto out;
	int n = xml_swap_iqn(live.buf, from, to, &nl);
	if (n <= 0) {
		rc = n < 0 ? -1 : 0;
		if (n < 0)
			snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (host_run(c, host, (char *const *)wp, 5, ADM_TIMEOUT_S, &pers, why, whylen) != 0 || !pers.buf ||
	    xml_swap_iqn(pers.buf, from, to, &np) < 0)
		goto out;
	/* one remote command writes both (the text travels as arguments) */
	const char *ww[] = { "sh", "-c",
			     "d=$(mktemp -d \"${TMPDIR:-/tmp}/ringstor-migrate.XXXXXX\") && printf %s \"$1\" >\"$d/live.xml\" && "
			     "printf %s \"$2\" >\"$d/persistent.xml\" && echo \"$d\"",
			     "sh", nl, np };
	struct strbuf dir = {0};
	if (host_run(c, host, (char *const *)ww, 6, ADM_TIMEOUT_S, &dir, why, whylen) != 0 || !dir.buf) {
		sb_free(&dir);
		goto out;
	}
	dir.buf[strcspn(dir.buf, "\r\n")] = '\0';
	if (dir.buf[0] != '/') {
		snprintf(why, whylen, "no temporary directory on %s", host);
		sb_free(&dir);
		goto out;
	}
	*tmpdir = dir.buf;
	static char lp[PATH_MAX], pp[PATH_MAX];
	snprintf(lp, sizeof(lp), "%s/live.xml", dir.buf);
	snprintf(pp, sizeof(pp), "%s/persistent.xml", dir.buf);
	c->xml_live = lp;
	c->xml_persistent = pp;
	say(c, "the domain's iSCSI initiator name on %s will be %s (it is %s on %s)", host == c->source ? c->dest
	    : c->source, to, from, host);
	rc = 0;
out:
	sb_free(&live);
	sb_free(&pers);
	free(nl);
	free(np);
	return rc;
}

static size_t count_str(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* libvirt: the domain's iSCSI disks (QEMU's own initiator) must log in
 * with the source's lease identity: the lease is acquired for it, so a
 * disk logging in as another name (another <iqn name=...>, or none: QEMU's
 * default iqn.2008-11.org.linux-kvm[:NAME]) would have the running
 * domain's own writes refused from then on, and its copies could not be
 * told apart.  Only for iSCSI identities (iqn./eui./naa.): an NFS lease
 * is the host's address whatever the XML says.  0, or -1 with why. */
static int virt_check_identity(struct mctx *c, char *why, size_t whylen)
{
	const char *h = c->source_holder;
	if (strncmp(h, "iqn.", 4) != 0 && strncmp(h, "eui.", 4) != 0 && strncmp(h, "naa.", 4) != 0)
		return 0;
	struct strbuf xml = {0};
	char err[512];
	const char *w[] = { "virsh", "dumpxml", c->domain };
	if (host_run(c, c->source, (char *const *)w, 3, ADM_TIMEOUT_S, &xml, err, sizeof(err)) != 0 || !xml.buf) {
		/* no domain there: migrate_virt says so */
		sb_free(&xml);
		return 0;
	}
	size_t disks = count_str(xml.buf, "protocol='iscsi'") + count_str(xml.buf, "protocol=\"iscsi\"");
	char *swapped = NULL;
	int named = xml_swap_iqn(xml.buf, h, h, &swapped);
	free(swapped);
	sb_free(&xml);
	if (disks && named >= 0 && (size_t)named < disks) {
		snprintf(why, whylen, "the domain %s on %s has %zu iSCSI disk(s) of which %d log(s) in as the source's "
			 "lease identity %s (the others: another <initiator><iqn name=...>, or none: QEMU's default "
			 "iqn.2008-11.org.linux-kvm[:NAME]); the lease would refuse the running domain's own writes. "
			 "Give each iSCSI <source> <initiator><iqn name='%s'/></initiator>", c->domain, c->source, disks,
			 named, h, h);
		return -1;
	}
	return 0;
}

/* Runs the tool's migration: V_MIGRATE on the source (to the destination,
 * as the destination's lease identity), V_MIGRATE_BACK on the destination
 * (to the source).  As host_run. */
static int virt_migrate(struct mctx *c, enum virt_op op, char *why, size_t whylen)
{
	bool back = op == V_MIGRATE_BACK;
	const char *host = back ? c->dest : c->source;
	char *tmpdir = NULL;
	if (virt_host_xml(c, host, back ? c->dest_holder : c->source_holder, back ? c->source_holder : c->dest_holder,
			  &tmpdir, why, whylen) < 0) {
		char w2[600];
		snprintf(w2, sizeof(w2), "%s", why);
		snprintf(why, whylen, "cannot prepare the %s host's domain XML: %s", back ? "source" : "destination", w2);
		return -1;
	}
	const char *w[16];
	size_t n = virt_words(c, op, w);
	int st = host_run(c, host, (char *const *)w, n, c->timeout_s, NULL, why, whylen);
	c->xml_live = c->xml_persistent = NULL;
	if (tmpdir) {
		char e[256];
		const char *wr[] = { "rm", "-rf", tmpdir };
		host_run(c, host, (char *const *)wr, 3, ADM_TIMEOUT_S, NULL, e, sizeof(e));
		free(tmpdir);
	}
	return st;
}

/* The domain's state on host.  libvirt: `virsh domstate` (running,
 * blocked, idle -> running; paused; shut off or "failed to get domain" ->
 * absent).  Xen: `xl list DOMAIN`, the State column (r/b -> running, p ->
 * paused; "invalid domain identifier" -> absent). */
static enum vstate virt_state(struct mctx *c, const char *host, char *txt, size_t len)
{
	struct strbuf out = {0};
	char why[512];
	int st = virt_run(c, host, V_STATE, ADM_TIMEOUT_S, &out, why, sizeof(why));
	enum vstate vs = VS_UNKNOWN;
	snprintf(txt, len, "%.120s", why);
	if (st == 0 && c->libvirt) {
		char line[64] = "";
		sscanf(out.buf ? out.buf : "", "%63[^\n]", line);
		size_t l = strlen(line);
		while (l && (line[l - 1] == ' ' || line[l - 1] == '\r'))
			line[--l] = '\0';
		snprintf(txt, len, "%s", line);
		if (strcmp(line, "running") == 0 || strcmp(line, "blocked") == 0 || strcmp(line, "idle") == 0)
			vs = VS_RUNNING;
		else if (strcmp(line, "paused") == 0)
			vs = VS_PAUSED;
		else if (strcmp(line, "shut off") == 0)
			vs = VS_ABSENT;
		else
			vs = VS_OTHER;
	} else if (st == 0) {
		/* header line, then: NAME ID MEM VCPUS STATE TIME */
		const char *p = out.buf ? strchr(out.buf, '\n') : NULL;
		char name[256] = "", state[32] = "";
		if (p && sscanf(p + 1, "%255s %*s %*s %*s %31s", name, state) == 2) {
			if (strchr(state, 'p'))
				vs = VS_PAUSED;
			else if (strchr(state, 's') || strchr(state, 'c') || strchr(state, 'd'))
				vs = VS_OTHER;
			else
				vs = VS_RUNNING;
			snprintf(txt, len, "%s (%s)", vs == VS_OTHER ? "shut down, crashed or dying" : vstate_name(vs),
				 state);
		} else {
			snprintf(txt, len, "unexpected xl list output");
		}
	} else if (st > 0 && (strstr(why, "failed to get domain") || strstr(why, "ot found") ||
			      strstr(why, "invalid domain identifier"))) {
		vs = VS_ABSENT;
		snprintf(txt, len, "no such domain");
	}
	sb_free(&out);
	return vs;
}

/* Whether the domain paused on the destination can be migrated back.
 * libvirt always sets QEMU's late-block-activate capability on the
 * receiving side, so a domain that arrived with `migrate --suspend` keeps
 * its images inactive until it is resumed (`cont` activates them).  QEMU
 * before 10.0 aborts when such a domain is migrated again (outgoing
 * migration inactivates every image and asserts that none is inactive
 * yet: "bdrv_inactivate_recurse: Assertion `!(bs->open_flags &
 * BDRV_O_INACTIVE)' failed"), which kills the guest and its memory state:
 * seen here with libvirt 9.0 and QEMU 7.2 (Debian 12).  QEMU 10.0 accepts
 * inactive images there ("block: Allow inactivating already inactive
 * nodes", with blockdev-set-active).  So: yes with QEMU >= 10 on the
 * destination (`virsh version`: "Running hypervisor: QEMU X.Y.Z"), no
 * when older or unknown.  Xen: yes.  why says why not. */
static bool virt_can_migrate_back(struct mctx *c, char *why, size_t len)
{
	if (!c->libvirt)
		return true;
	struct strbuf out = {0};
	char err[512];
	int st = virt_run(c, c->dest, V_VERSION, ADM_TIMEOUT_S, &out, err, sizeof(err));
	const char *p = st == 0 && out.buf ? strstr(out.buf, "Running hypervisor: QEMU ") : NULL;
	char ver[32] = "";
	if (p)
		sscanf(p + strlen("Running hypervisor: QEMU "), "%31[0-9.]", ver);
	bool ok = false;
	if (!*ver)
		snprintf(why, len, "the QEMU version on %s is unknown (virsh version: %.200s)", c->dest,
			 st ? err : "no \"Running hypervisor: QEMU\" line");
	else if (atoi(ver) >= 10)
		ok = true;
	else
		snprintf(why, len, "QEMU %s on %s aborts when a domain that arrived paused and never ran there is "
			 "migrated again (its images are still inactive; fixed in QEMU 10.0): that would kill it", ver,
			 c->dest);
	sb_free(&out);
	return ok;
}

static int virt_finish(struct mctx *c);

/* The domain is on the destination only, paused, and cannot be migrated
 * back (virt_can_migrate_back): the only way that keeps it is forward.
 * The lease is with the source, whose domain is gone, so it can move
 * without fencing anyone; then the domain resumes on the destination.
 * Once per run: if that fails too, the domain stays paused there and
 * fenced (nobody runs it, nobody writes, nothing is lost) and recover
 * tries again.  0 finished (c->finished), 3 incomplete. */
static int virt_roll_forward(struct mctx *c, const char *ds, const char *reason)
{
	if (c->forward_tried) {
		complain(c, "ROLLBACK INCOMPLETE: the domain %s waits on %s (%s), fenced: the lease is %s's. It cannot "
			 "go back to %s (%s) and could not be finished on %s. Nobody runs it and nothing is lost; "
			 "once the appliance accepts the transfer run: ringstor-migrate recover --journal %s (it "
			 "moves the lease to %s and resumes the domain there)", c->domain, c->dest, ds,
			 c->source_holder, c->source, reason, c->dest, c->j.path, c->dest_holder);
		return 3;
	}
	c->forward_tried = true;
	say(c, "the domain is on %s only (%s) and cannot be migrated back: %s; finishing the migration instead",
	    c->dest, ds, reason);
	rec_str(c, "roll-forward", "reason", reason);
	int r = transfer_leases(c);
	if (r)
		return r;
	r = virt_finish(c);
	if (r == 0)
		c->finished = true;
	return r;
}

/* Undo with the lease with the source: the domain back on the source and
 * running there (if it was), nothing on the destination.  1 rolled back,
 * 3 incomplete (said why); 0 when the domain could not go back and the
 * migration was finished instead (virt_roll_forward). */
static int virt_undo(struct mctx *c)
{
	char ss[128], ds[128], why[1024];
	enum vstate s = virt_state(c, c->source, ss, sizeof(ss));
	enum vstate d = virt_state(c, c->dest, ds, sizeof(ds));
	if (s == VS_ABSENT && d == VS_PAUSED && !virt_can_migrate_back(c, why, sizeof(why)))
		return virt_roll_forward(c, ds, why);
	if (s == VS_ABSENT && (d == VS_PAUSED || d == VS_RUNNING)) {
		/* The tool had finished: the VM is on the destination only,
		 * paused and fenced (the lease is the source's).  Bring it
		 * back, paused, and resume it where the lease is. */
		if (d == VS_RUNNING)
			virt_run(c, c->dest, V_ABORT, ADM_TIMEOUT_S, NULL, why, sizeof(why));
		rec_str(c, "migrating-back", "uri", c->source_uri);
		say(c, "the domain is on %s only (%s): migrating it back to %s", c->dest, ds, c->source);
		int st = virt_migrate(c, V_MIGRATE_BACK, why, sizeof(why));
		s = virt_state(c, c->source, ss, sizeof(ss));
		d = virt_state(c, c->dest, ds, sizeof(ds));
		if (s != VS_PAUSED && s != VS_RUNNING) {
			complain(c, "ROLLBACK INCOMPLETE: the migration back to %s failed (%s); the domain %s is "
				 "on %s (%s), paused and fenced: the lease is %s's. Run: ringstor-migrate recover "
				 "--journal %s", c->source, st ? why : "source still without the domain", c->domain,
				 c->dest, ds, c->source_holder, c->j.path);
			return 3;
		}
	}
	if (s != VS_PAUSED && s != VS_RUNNING) {
		complain(c, "ROLLBACK INCOMPLETE: the domain %s is on neither host (source %s: %s, destination "
			 "%s: %s); the lease stays with %s. Run: ringstor-migrate recover --journal %s", c->domain,
			 c->source, ss, c->dest, ds, c->source_holder, c->j.path);
		return 3;
	}
	/* The source has it: a copy on the destination is the failed half of
	 * this migration (preflight saw none there), paused or fenced. */
	if (d == VS_PAUSED || d == VS_RUNNING || d == VS_OTHER) {
		if (virt_run(c, c->dest, V_DESTROY, ADM_TIMEOUT_S, NULL, why, sizeof(why)) != 0)
			complain(c, "warning: could not destroy the destination's copy of %s: %s (it cannot write: "
				 "the lease is %s's)", c->domain, why, c->source_holder);
	} else if (d == VS_UNKNOWN) {
		/* e.g. its libvirtd died during the migration: the QEMU it had
		 * started may live on, and the daemon, once back, may show it
		 * (paused: it never got the go) */
		complain(c, "warning: cannot ask %s about a copy of %s (%s); if one shows up there (e.g. once its "
			 "libvirtd is back), destroy it (virsh destroy %s): it is a stale copy and cannot write, the "
			 "lease is %s's", c->dest, c->domain, ds, c->domain, c->source_holder);
	}
	rec_str(c, "dest-stopped", "state", d == VS_UNKNOWN ? "unknown" : "gone");
	if (s == VS_PAUSED && c->source_was_running) {
		if (virt_run(c, c->source, V_RESUME, ADM_TIMEOUT_S, NULL, why, sizeof(why)) != 0 ||
		    virt_state(c, c->source, ss, sizeof(ss)) != VS_RUNNING) {
			complain(c, "ROLLBACK INCOMPLETE: cannot resume %s on %s: %s. It holds the lease; resume "
				 "it by hand or run: ringstor-migrate recover --journal %s", c->domain, c->source,
				 *why ? why : ss, c->j.path);
			return 3;
		}
	}
	rec_str(c, "source-resumed", "state", ss);
	rec(c, "rolled-back", NULL);
	say(c, "rolled back: %s runs the domain %s and holds the lease", c->source, c->domain);
	return 1;
}

static int virt_rollback_before(struct mctx *c, const char *reason)
{
	if (safe_to_undo(c, reason, NULL))
		return 3;
	say(c, "rolling back: %s", reason);
	rec_str(c, "rollback", "reason", reason);
	return virt_undo(c);
}

/* The lease moved but the destination did not resume: it is paused (or
 * gone), so the lease can go back before the domain does. */
static int virt_rollback_after(struct mctx *c, const char *reason)
{
	/* Once resume/unpause was sent the domain may have run there and
	 * written: never hand the lease back, never resume the source. */
	if (safe_to_undo(c, reason, NULL))
		return 3;
	say(c, "rolling back after the lease transfer: %s", reason);
	rec_str(c, "rollback", "reason", reason);
	char ds[128];
	enum vstate d = virt_state(c, c->dest, ds, sizeof(ds));
	if (d == VS_RUNNING) {
		/* Never pull the lease from under a running guest. */
		complain(c, "ROLLBACK INCOMPLETE: the domain %s runs on %s, which holds the lease; leaving it "
			 "there. Run: ringstor-migrate recover --journal %s", c->domain, c->dest, c->j.path);
		return 3;
	}
	if (return_leases(c) < 0)
		return 3;
	/* the way forward has just failed: no second try in this run */
	c->forward_tried = true;
	return virt_undo(c);
}

/* Lease with the destination: resume the domain there. */
static int virt_finish(struct mctx *c)
{
	char ds[128], why[1024];
	enum vstate d = virt_state(c, c->dest, ds, sizeof(ds));
	if (d == VS_PAUSED && c->source_was_running) {
		/* From here on the domain may run on the destination, even if
		 * the answer is lost (see cont_sent). */
		if (rec_str(c, "dest-cont-sent", "cmd", go_word(c)) < 0)
			return virt_rollback_after(c, "cannot journal the resume of the destination");
		c->cont_sent = true;
		if (virt_run(c, c->dest, V_RESUME, ADM_TIMEOUT_S, NULL, why, sizeof(why)) != 0)
			complain(c, "resume on %s: %s", c->dest, why);
		d = virt_state(c, c->dest, ds, sizeof(ds));
	}
	if (d != VS_RUNNING && !(d == VS_PAUSED && !c->source_was_running)) {
		char reason[300];
		snprintf(reason, sizeof(reason), "the domain is %s on the destination after the lease transfer", ds);
		return virt_rollback_after(c, reason);
	}
	struct strbuf m = {0};
	jm_str(&m, "state", ds);
	if (c->t_stopped) {
		long pause = mono_ms() - c->t_stopped;
		jm_u64(&m, "paused_ms", (uint64_t)pause);
		say(c, "destination %s: %s; lease handover and resume took %ld ms", c->dest, ds, pause);
	} else {
		say(c, "destination %s: %s", c->dest, ds);
	}
	rec(c, "dest-running", m.buf);
	sb_free(&m);
	/* the tool stopped the source's domain at the end of the migration */
	m = (struct strbuf){0};
	jm_bool(&m, "quit", true);
	rec(c, "source-stopped", m.buf);
	sb_free(&m);
	rec(c, "done", NULL);
	say(c, "done: %s runs the domain %s and holds the lease", c->dest, c->domain);
	return 0;
}

static int migrate_virt(struct mctx *c)
{
	char ss[128], ds[128], why[1024];
	enum vstate s = virt_state(c, c->source, ss, sizeof(ss));
	if (s != VS_RUNNING && s != VS_PAUSED) {
		snprintf(why, sizeof(why), "the domain %s on %s is %s (%s), not running or paused", c->domain,
			 c->source, vstate_name(s), ss);
		return abort_early(c, why);
	}
	enum vstate d = virt_state(c, c->dest, ds, sizeof(ds));
	if (d != VS_ABSENT) {
		snprintf(why, sizeof(why), "the destination %s %s the domain %s (%s)", c->dest,
			 d == VS_UNKNOWN ? "cannot be asked about" : "already has", c->domain, ds);
		return abort_early(c, why);
	}
	c->source_was_running = s == VS_RUNNING;
	struct strbuf m = {0};
	jm_str(&m, "state", ss);
	jm_bool(&m, "running", c->source_was_running);
	rec(c, "source-checked", m.buf);
	sb_free(&m);

	/* The tool starts the destination paused, migrates and stops the
	 * source: dest-started and migrating are one step here. */
	if (rec(c, "dest-started", NULL) < 0 || rec_str(c, "migrating", "uri", c->dest_uri) < 0)
		return abort_early(c, "cannot write the journal");
	c->dest_started = true;
	say(c, "migrating the domain %s %s -> %s (%s, the destination stays paused)", c->domain, c->source,
	    c->dest_uri, c->libvirt ? "virsh migrate --live --suspend" : "xl migrate -p");
	int st = virt_migrate(c, V_MIGRATE, why, sizeof(why));
	c->t_stopped = mono_ms();
	if (st < 0 && strstr(why, "timed out"))
		virt_run(c, c->source, V_ABORT, ADM_TIMEOUT_S, NULL, ss, sizeof(ss));
	s = virt_state(c, c->source, ss, sizeof(ss));
	d = virt_state(c, c->dest, ds, sizeof(ds));
	if (s == VS_RUNNING || s == VS_PAUSED) {
		char reason[1300];
		if (st != 0)
			snprintf(reason, sizeof(reason), "the migration failed: %s", why);
		else
			snprintf(reason, sizeof(reason), "the migration returned but the domain is still on the source (%s)",
				 ss);
		return virt_rollback_before(c, reason);
	}
	if (d != VS_PAUSED && d != VS_RUNNING) {
		complain(c, "the domain %s is on neither host after the migration (source: %s, destination: %s; %s); "
			 "the lease stays with %s", c->domain, ss, ds, st ? why : "the tool reported success",
			 c->source_holder);
		rec_str(c, "rollback", "reason", "the domain is on neither host");
		return 3;
	}
	if (st != 0)
		say(c, "the tool reported a failure (%s) but the domain is on %s (%s): going on", why, c->dest, ds);
	if (d == VS_RUNNING)
		complain(c, "warning: the domain already runs on %s before the lease moved: its writes are refused "
			 "until the transfer", c->dest);
	rec(c, "completed", NULL);
	say(c, "migration completed: the source's domain is gone, the destination's is %s", ds);
	if (rec_str(c, "transfer-point", "source_state", vstate_name(s)) < 0)
		return virt_rollback_before(c, "cannot write the journal");
	int r = transfer_leases(c);
	if (r || c->finished)
		return r;
	return virt_finish(c);
}

static int lease_check_ctx(struct mctx *c, const char *holder, char *reason, size_t len)
{
	struct strbuf sb = {0};
	int status = CHECK_PASS;
	for (size_t i = 0; i < c->nleases; i++) {
		struct lease_info li;
		char why[512];
		const char *sep = sb.len ? "; " : "";
		if (lease_show(c, i, &li, why, sizeof(why)) < 0) {
			sb_printf(&sb, "%s%s: cannot read it on %s: %s", sep, c->lease_specs[i], c->appliance, why);
			status = CHECK_FAIL;
		} else if (!li.held) {
			sb_printf(&sb, "%s%s free (epoch %" PRIu64 "): will be acquired for %s", sep, c->lease_specs[i],
				  li.epoch, holder);
		} else if (strcmp(li.holder, holder) == 0) {
			sb_printf(&sb, "%s%s held by the source %s (epoch %" PRIu64 ")", sep, c->lease_specs[i], holder,
				  li.epoch);
		} else {
			sb_printf(&sb, "%s%s held by %s (epoch %" PRIu64 "), not by the source %s", sep, c->lease_specs[i],
				  li.holder, li.epoch, holder);
			status = CHECK_FAIL;
		}
	}
	snprintf(reason, len, "%s", sb.buf ? sb.buf : "no lease given");
	sb_free(&sb);
	return status;
}

int migrate_lease_check(const char *rsh, const char *appliance, const char *adm, char *const *leases, size_t n,
			const char *holder, char *reason, size_t len)
{
	struct mctx c;
	memset(&c, 0, sizeof(c));
	c.rsh = rsh ? rsh : PREFLIGHT_DEFAULT_RSH;
	c.appliance = appliance ? appliance : PREFLIGHT_LOCAL_HOST;
	c.adm = adm ? adm : MIGRATE_DEFAULT_ADM;
	c.lease_specs = (char **)leases;
	c.nleases = n;
	if (!holder) {
		snprintf(reason, len, "the source's lease identity is unknown (--source-holder)");
		return CHECK_WARN;
	}
	return lease_check_ctx(&c, holder, reason, len);
}

static void ctx_close(struct mctx *c)
{
	if (c->src_open)
		qmp_close(&c->src);
	if (c->dst_open)
		qmp_close(&c->dst);
	c->src_open = c->dst_open = false;
	journal_close(&c->j);
}

/* ------------------------------------------------------------ migrate */

static int abort_early(struct mctx *c, const char *reason)
{
	rec_str(c, "aborted", "reason", reason);
	complain(c, "not migrating: %s", reason);
	return 1;
}

static int migrate_qemu(struct mctx *c, char **dest_argv, size_t dest_argc)
{
	char why[1024];
	/* 1. the source QEMU */
	struct qmp *s = src_q(c);
	if (!s)
		return abort_early(c, "the source QEMU's QMP socket cannot be reached");
	char rs[64];
	if (qmp_status(s, rs, sizeof(rs), QMP_TIMEOUT_MS) != 0) {
		snprintf(why, sizeof(why), "source query-status: %s", s->err);
		return abort_early(c, why);
	}
	if (strcmp(rs, "running") != 0 && strcmp(rs, "paused") != 0) {
		snprintf(why, sizeof(why), "the source QEMU is %s, not running or paused", rs);
		return abort_early(c, why);
	}
	char ms[64];
	if (migrate_status(s, ms, sizeof(ms), NULL) == 0 && migration_active(ms)) {
		snprintf(why, sizeof(why), "the source QEMU is already migrating (%s)", ms);
		return abort_early(c, why);
	}
	c->source_was_running = strcmp(rs, "running") == 0;
	struct strbuf m = {0};
	jm_str(&m, "state", rs);
	jm_bool(&m, "running", c->source_was_running);
	rec(c, "source-checked", m.buf);
	sb_free(&m);
	/* Where the lease moves (--transfer-at):
	 *  completed: after QEMU reports the migration completed; the source
	 *    is in postmigrate with its images inactivated, so every write it
	 *    will ever make (including format metadata such as qcow2 dirty
	 *    bitmaps stored at inactivation) is done; the destination is
	 *    paused (-S) and has written nothing.
	 *  pre-switchover (QEMU >= 2.11 pause-before-switchover): the source's
	 *    vCPUs are stopped and its disks drained and flushed, and it waits
	 *    for migrate-continue before sending the device state.  Raw images
	 *    are fine; a format that writes metadata when the source
	 *    inactivates its images would be refused by the lease.
	 * Either way the capability is set explicitly, so a value left over
	 * from an earlier run does not decide. */
	if (qmp_execute(s, "migrate-set-capabilities",
			c->at_completion
				? "{\"capabilities\":[{\"capability\":\"pause-before-switchover\",\"state\":false}]}"
				: "{\"capabilities\":[{\"capability\":\"pause-before-switchover\",\"state\":true}]}",
			NULL, QMP_TIMEOUT_MS) != 0) {
		snprintf(why, sizeof(why), "the source QEMU cannot pause before the switchover: %s", s->err);
		return abort_early(c, why);
	}

	/* 2. the destination, paused and listening */
	if (rec(c, "dest-started", NULL) < 0)
		return abort_early(c, "cannot write the journal");
	c->dest_started = true;
	say(c, "starting the destination QEMU on %s", c->dest);
	int st = host_run(c, c->dest, dest_argv, dest_argc, 60, NULL, why, sizeof(why));
	if (st != 0) {
		char reason[1100];
		snprintf(reason, sizeof(reason), "cannot start the destination QEMU: %s", why);
		return rollback_before(c, reason);
	}
	struct qmp *d = NULL;
	if (qmp_connect(c, &c->dst, c->dest, c->qmp_dest, 20000) == 0) {
		c->dst_open = true;
		d = &c->dst;
	}
	c->dst_tried = true;
	if (!d) {
		snprintf(why, sizeof(why), "destination QMP %s: %s", c->qmp_dest, c->dst.err);
		return rollback_before(c, why);
	}
	if (qmp_status(d, rs, sizeof(rs), QMP_TIMEOUT_MS) != 0 || strcmp(rs, "inmigrate") != 0) {
		snprintf(why, sizeof(why), "the destination QEMU is %s, not waiting for a migration",
			 d->err[0] ? d->err : rs);
		return rollback_before(c, why);
	}
	bool v6 = strchr(c->dest_addr, ':') != NULL;
	char uri[300];
	snprintf(uri, sizeof(uri), "tcp:%s%s%s:%d", v6 ? "[" : "", c->dest_addr, v6 ? "]" : "", c->port);
	struct strbuf args = {0};
	jm_str(&args, "uri", uri);
	char *argtext = NULL;
	if (asprintf(&argtext, "{%s}", args.buf) < 0)
		abort();
	sb_free(&args);
	if (qmp_execute(d, "migrate-incoming", argtext, NULL, QMP_TIMEOUT_MS) != 0) {
		snprintf(why, sizeof(why), "migrate-incoming %s on the destination: %s", uri, d->err);
		free(argtext);
		return rollback_before(c, why);
	}
	rec_str(c, "dest-listening", "uri", uri);

	/* 3. migrate */
	if (rec_str(c, "migrating", "uri", uri) < 0) {
		free(argtext);
		return rollback_before(c, "cannot write the journal");
	}
	say(c, "migrating %s -> %s over %s", c->source, c->dest, uri);
	if (qmp_execute(s, "migrate", argtext, NULL, QMP_TIMEOUT_MS) != 0) {
		snprintf(why, sizeof(why), "migrate on the source: %s", s->err);
		free(argtext);
		return rollback_before(c, why);
	}
	free(argtext);
	long deadline = mono_ms() + (long)c->timeout_s * 1000;
	long next_progress = 0;
	for (;;) {
		struct json_value *r = NULL;
		if (migrate_status(s, ms, sizeof(ms), &r) != 0) {
			snprintf(why, sizeof(why), "query-migrate on the source: %s", s->err);
			return rollback_before(c, why);
		}
		if (strcmp(ms, "pre-switchover") == 0 || strcmp(ms, "completed") == 0) {
			c->t_stopped = mono_ms();
			if (strcmp(ms, "completed") == 0)
				record_completed(c, r);
			json_free(r);
			break;
		}
		if (!migration_active(ms)) {
			const char *e = json_str(json_get(qmp_ret(r), "error-desc"));
			snprintf(why, sizeof(why), "the migration %s%s%s", ms, e ? ": " : "", e ? e : "");
			json_free(r);
			return rollback_before(c, why);
		}
		if (mono_ms() >= next_progress) {
			print_progress(c, r, false);
			next_progress = mono_ms() + 1000;
		}
		json_free(r);
		if (mono_ms() > deadline) {
			snprintf(why, sizeof(why), "the migration did not converge within %d s", c->timeout_s);
			return rollback_before(c, why);
		}
		usleep(50 * 1000);
	}

	/* 4. switchover: the source is stopped; move the lease */
	if (qmp_status(s, rs, sizeof(rs), QMP_TIMEOUT_MS) != 0 || strcmp(rs, "running") == 0) {
		snprintf(why, sizeof(why), "the source is %s at the switchover point", s->err[0] ? s->err : rs);
		return rollback_before(c, why);
	}
	if (rec_str(c, "transfer-point", "source_state", rs) < 0)
		return rollback_before(c, "cannot write the journal");
	say(c, "source stopped (%s); transferring the lease", rs);
	int r = transfer_leases(c);
	if (r)
		return r;
	/* 5. let the device state go, resume the destination, stop the source */
	return finish(c);
}

static void ctx_from_opts(struct mctx *c, const struct migrate_opts *o)
{
	c->driver = o->driver ? o->driver : "qemu";
	c->vm = o->vm_name ? o->vm_name : (o->vm && o->vm->name ? o->vm->name : "vm");
	c->source = o->source;
	c->dest = o->dest;
	c->appliance = o->appliance ? o->appliance : PREFLIGHT_LOCAL_HOST;
	c->rsh = o->rsh ? o->rsh : PREFLIGHT_DEFAULT_RSH;
	c->remote_cmd = o->remote_cmd ? o->remote_cmd : PREFLIGHT_DEFAULT_REMOTE_CMD;
	c->self_exe = o->self_exe;
	c->adm = o->adm ? o->adm : MIGRATE_DEFAULT_ADM;
	c->dest_addr = o->dest_addr;
	c->port = o->port ? o->port : MIGRATE_DEFAULT_PORT;
	c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 600;
	c->progress = o->progress;
	c->at_completion = !o->transfer_at || strcmp(o->transfer_at, "completed") == 0;
	for (size_t i = 0; i < o->nleases; i++)
		strv_push(&c->lease_specs, &c->nleases, o->leases[i]);
}

static char *begin_members(const struct mctx *c)
{
	struct strbuf m = {0};
	jm_u64(&m, "format", JOURNAL_FORMAT);
	jm_str(&m, "driver", c->driver);
	jm_str(&m, "vm", c->vm);
	jm_str(&m, "source", c->source);
	jm_str(&m, "dest", c->dest);
	jm_str(&m, "appliance", c->appliance);
	jm_str(&m, "rsh", c->rsh);
	jm_str(&m, "remote_cmd", c->remote_cmd);
	jm_str(&m, "adm", c->adm);
	jm_str(&m, "qmp_source", c->qmp_source);
	jm_str(&m, "qmp_dest", c->qmp_dest);
	jm_str(&m, "dest_pidfile", c->dest_pidfile);
	jm_str(&m, "source_holder", c->source_holder);
	jm_str(&m, "dest_holder", c->dest_holder);
	jm_str(&m, "dest_addr", c->dest_addr);
	if (c->virt) {
		jm_str(&m, "domain", c->domain);
		jm_str(&m, "dest_uri", c->dest_uri);
		jm_str(&m, "source_uri", c->source_uri);
	}
	jm_str(&m, "transfer_at", c->at_completion ? "completed" : "pre-switchover");
	jm_u64(&m, "port", (uint64_t)c->port);
	jm_u64(&m, "pid", (uint64_t)getpid());
	struct strbuf l = {0};
	sb_puts(&l, "[");
	for (size_t i = 0; i < c->nleases; i++) {
		if (i)
			sb_puts(&l, ",");
		json_quote(&l, c->lease_specs[i]);
	}
	sb_puts(&l, "]");
	jm_raw(&m, "leases", l.buf);
	sb_free(&l);
	if (m.oom) {
		sb_free(&m);
		return NULL;
	}
	return m.buf;
}

int migrate_run(const struct migrate_opts *o, FILE *out, FILE *err)
{
	struct mctx c;
	memset(&c, 0, sizeof(c));
	c.j.fd = -1;
	c.out = out;
	c.err = err;
	signal(SIGPIPE, SIG_IGN);
	ctx_from_opts(&c, o);
	int rc = 2;
	char **dest_argv = NULL;
	char *initiator = NULL, *qmp_default = NULL, *pid_default = NULL;
	char *uri_default = NULL, *src_uri_default = NULL;
	char why[1024];
	size_t dest_argc = 0;

	if (!c.source || !c.dest) {
		complain(&c, "migrate needs --source HOST and --dest HOST");
		goto out;
	}
	if (o->transfer_at && strcmp(o->transfer_at, "completed") != 0 && strcmp(o->transfer_at, "pre-switchover") != 0) {
		complain(&c, "--transfer-at wants completed or pre-switchover");
		goto out;
	}
	c.libvirt = strcmp(c.driver, "libvirt") == 0;
	c.virt = c.libvirt || strcmp(c.driver, "xen") == 0;
	if (!c.virt && strcmp(c.driver, "qemu") != 0) {
		complain(&c, "driver '%s': want qemu (QMP), libvirt (virsh) or xen (xl)", c.driver);
		goto out;
	}
	if (c.nleases == 0 || c.nleases > MAX_LEASES) {
		complain(&c, "give the image's lease on the appliance with --lease (e.g. --lease tid=1,lun=1), "
			 "1 to %d times", MAX_LEASES);
		goto out;
	}
	for (size_t i = 0; i < c.nleases; i++) {
		char **t = NULL;
		size_t tn = 0;
		int bad = lease_spec_args(c.lease_specs[i], &t, &tn);
		strv_free(t, tn);
		if (bad < 0) {
			complain(&c, "--lease '%s': want KEY=VALUE[,KEY=VALUE...] (ringstoradm options without the "
				 "dashes, e.g. tid=1,lun=1)", c.lease_specs[i]);
			goto out;
		}
	}
	if (c.virt) {
		c.domain = o->domain ? o->domain : o->vm_name ? o->vm_name : o->vm ? o->vm->name : NULL;
		if (!c.domain) {
			complain(&c, "the %s driver needs the domain's name (--vm NAME)", c.driver);
			goto out;
		}
		c.source_holder = o->source_holder;
		c.dest_holder = o->dest_holder;
		if (!c.source_holder || !c.dest_holder || strcmp(c.source_holder, c.dest_holder) == 0) {
			complain(&c, "the %s driver needs each host's lease identity: --source-holder ID and "
				 "--dest-holder ID, different (the initiator name each host logs in with, or its NFS "
				 "client address)", c.driver);
			goto out;
		}
		c.dest_addr = o->dest_addr ? o->dest_addr : strcmp(c.dest, PREFLIGHT_LOCAL_HOST) == 0 ? "localhost" : c.dest;
		const char *saddr = o->source_addr ? o->source_addr
				    : strcmp(c.source, PREFLIGHT_LOCAL_HOST) == 0 ? "localhost" : c.source;
		if (o->dest_uri) {
			c.dest_uri = o->dest_uri;
		} else if (c.libvirt) {
			if (asprintf(&uri_default, "qemu+ssh://%s/system", c.dest_addr) < 0)
				abort();
			c.dest_uri = uri_default;
		} else {
			c.dest_uri = c.dest_addr;
		}
		if (o->source_uri) {
			c.source_uri = o->source_uri;
		} else if (c.libvirt) {
			if (asprintf(&src_uri_default, "qemu+ssh://%s/system", saddr) < 0)
				abort();
			c.source_uri = src_uri_default;
		} else {
			c.source_uri = saddr;
		}
		goto journal;
	}
	if (!o->qemu_cmdline) {
		complain(&c, "the QEMU driver needs the source's command line (--qemu-cmdline FILE, e.g. a copy "
			 "of /proc/PID/cmdline) to start the destination");
		goto out;
	}
	c.qmp_source = o->qmp_source;
	if (!c.qmp_source)
		c.qmp_source = qmp_default = qemu_cmdline_qmp_path(o->qemu_cmdline, o->qemu_cmdline_len);
	if (!c.qmp_source) {
		complain(&c, "give the source's QMP socket with --qmp-source SOCK (its command line has no "
			 "-qmp unix:...)");
		goto out;
	}
	initiator = qemu_cmdline_initiator(o->qemu_cmdline, o->qemu_cmdline_len);
	c.source_holder = o->source_holder ? o->source_holder : initiator;
	if (!c.source_holder) {
		complain(&c, "give the source's lease identity with --source-holder (its command line has no "
			 "-iscsi initiator-name=...)");
		goto out;
	}
	c.dest_holder = o->dest_holder;
	if (!c.dest_holder || strcmp(c.dest_holder, c.source_holder) == 0) {
		complain(&c, "give the destination its own lease identity with --dest-holder ID (for iSCSI the "
			 "initiator name the destination QEMU will use; it must differ from the source's %s)",
			 c.source_holder);
		goto out;
	}
	if (!c.dest_addr)
		c.dest_addr = strcmp(c.dest, PREFLIGHT_LOCAL_HOST) == 0 ? "127.0.0.1" : c.dest;
	if (o->qmp_dest) {
		c.qmp_dest = o->qmp_dest;
	} else {
		if (asprintf(&qmp_default, "%s.incoming", c.qmp_source) < 0)
			abort();
		c.qmp_dest = qmp_default;
	}
	if (o->dest_pidfile) {
		c.dest_pidfile = o->dest_pidfile;
	} else {
		if (asprintf(&pid_default, "%s.pid", c.qmp_dest) < 0)
			abort();
		c.dest_pidfile = pid_default;
	}
	if (strcmp(c.qmp_dest, c.qmp_source) == 0 && strcmp(c.source, c.dest) == 0) {
		complain(&c, "--qmp-dest must differ from the source's QMP socket on the same host");
		goto out;
	}
	/* An iSCSI lease is held by an initiator name: the destination's QEMU
	 * logs in with the destination's identity. */
	bool iqn = strncmp(c.dest_holder, "iqn.", 4) == 0 || strncmp(c.dest_holder, "eui.", 4) == 0 ||
		   strncmp(c.dest_holder, "naa.", 4) == 0;
	dest_argv = qemu_dest_argv(o->dest_qemu_cmdline ? o->dest_qemu_cmdline : o->qemu_cmdline,
				   o->dest_qemu_cmdline ? o->dest_qemu_cmdline_len : o->qemu_cmdline_len, c.qmp_dest,
				   c.dest_pidfile, iqn ? c.dest_holder : NULL, why, sizeof(why));
	if (!dest_argv) {
		complain(&c, "%s", why);
		goto out;
	}
	while (dest_argv[dest_argc])
		dest_argc++;

journal:
	if (o->vm && o->vm->ndisks > c.nleases)
		complain(&c, "warning: the VM has %zu disks but %zu leases: a disk without a lease is not fenced, "
			 "only the leased ones are guaranteed one writer", o->vm->ndisks, c.nleases);
	/* The journal, before anything changes. */
	if (journal_create(&c.j, o->journal_dir ? o->journal_dir : MIGRATE_DEFAULT_JOURNAL_DIR, c.vm, why,
			   sizeof(why)) < 0) {
		complain(&c, "%s", why);
		goto out;
	}
	c.journal_ok = true;
	char *bm = begin_members(&c);
	if (!bm || rec(&c, "begin", bm) < 0) {
		free(bm);
		goto out;
	}
	free(bm);
	say(&c, "journal %s", c.j.path);
	if (c.virt) {
		const char *w[17];
		size_t wn = virt_words(&c, V_MIGRATE, w);
		w[wn] = NULL;
		char *t = argv_text((char *const *)w);
		struct strbuf m = {0};
		jm_str(&m, "argv", t);
		rec(&c, "dest-command", m.buf);
		sb_free(&m);
		free(t);
	} else {
		char *t = argv_text(dest_argv);
		struct strbuf m = {0};
		jm_str(&m, "argv", t);
		rec(&c, "dest-command", m.buf);
		sb_free(&m);
		free(t);
	}

	/* Preflight: nothing moves unless it is clean. */
	char lease_reason[2048];
	int lease_status = lease_check_ctx(&c, c.source_holder, lease_reason, sizeof(lease_reason));
	struct preflight_opts po = {
		.source = c.source, .dest = c.dest, .rsh = c.rsh, .remote_cmd = c.remote_cmd, .self_exe = c.self_exe,
		.initiator_name = o->probe_initiator, .dest_initiator_name = o->probe_dest_initiator, .disks = o->disks, .ndisks = o->ndisks, .vm = o->vm,
		.timeout_s = o->preflight_timeout_s, .lease_status = lease_status, .lease_reason = lease_reason,
	};
	int pr = preflight_run(&po, out, err);
	{
		struct strbuf m = {0};
		jm_u64(&m, "exit", (uint64_t)pr);
		rec(&c, "preflight", m.buf);
		sb_free(&m);
	}
	if (pr != 0) {
		rc = abort_early(&c, pr == 1 ? "the preflight failed" : "the preflight could not run");
		goto out;
	}

	if (c.libvirt && virt_check_identity(&c, why, sizeof(why)) < 0) {
		rc = abort_early(&c, why);
		goto out;
	}

	/* The lease: acquire it for the source, or verify the source has it. */
	for (size_t i = 0; i < c.nleases; i++) {
		struct lease_info li;
		if (lease_show(&c, i, &li, why, sizeof(why)) < 0) {
			char reason[1100];
			snprintf(reason, sizeof(reason), "lease %s: %s", c.lease_specs[i], why);
			rc = abort_early(&c, reason);
			goto out;
		}
		bool acquired = false;
		if (!li.held) {
			const uint64_t *ep = NULL;
			if (adm_run(&c, i, "acquire", c.source_holder, ep, false, NULL, why, sizeof(why)) != 0 ||
			    lease_show(&c, i, &li, why, sizeof(why)) < 0) {
				char reason[1100];
				snprintf(reason, sizeof(reason), "cannot acquire lease %s for %s: %s", c.lease_specs[i],
					 c.source_holder, why);
				rc = abort_early(&c, reason);
				goto out;
			}
			acquired = true;
		}
		if (!li.held || strcmp(li.holder, c.source_holder) != 0) {
			char reason[1100];
			snprintf(reason, sizeof(reason), "lease %s is held by %s, not by the source %s", c.lease_specs[i],
				 li.held ? li.holder : "nobody", c.source_holder);
			rc = abort_early(&c, reason);
			goto out;
		}
		c.epoch[i] = li.epoch;
		struct strbuf m = {0};
		jm_u64(&m, "i", i);
		jm_u64(&m, "epoch", li.epoch);
		jm_str(&m, "holder", li.holder);
		jm_bool(&m, "acquired", acquired);
		rec(&c, "lease-held", m.buf);
		sb_free(&m);
		say(&c, "lease %s %s by %s, epoch %" PRIu64, c.lease_specs[i], acquired ? "acquired" : "held", li.holder,
		    li.epoch);
	}
	rc = c.virt ? migrate_virt(&c) : migrate_qemu(&c, dest_argv, dest_argc);
out:
	ctx_close(&c);
	argv_free(dest_argv);
	free(uri_default);
	free(src_uri_default);
	free(initiator);
	free(qmp_default);
	free(pid_default);
	strv_free(c.lease_specs, c.nleases);
	return rc;
}

/* ------------------------------------------------------------ recover */

/* The newest *.journal in dir (caller frees), or NULL. */
static char *newest_journal(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *best = NULL;
	struct timespec bt = {0};
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 9 || strcmp(e->d_name + l - 8, ".journal") != 0)
			continue;
		char *p = NULL;
		if (asprintf(&p, "%s/%s", dir, e->d_name) < 0)
			continue;
		struct stat sb;
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (!best || sb.st_mtim.tv_sec > bt.tv_sec ||
		     (sb.st_mtim.tv_sec == bt.tv_sec && sb.st_mtim.tv_nsec > bt.tv_nsec))) {
			free(best);
			best = p;
			bt = sb.st_mtim;
		} else {
			free(p);
		}
	}
	closedir(d);
	return best;
}

static const char *bstr(const struct json_value *b, const char *key)
{
	return json_str(json_get(b, key));
}

int recover_run(const char *journal, const char *self_exe, bool dry_run, FILE *out, FILE *err)
{
	struct mctx c;
	memset(&c, 0, sizeof(c));
	c.j.fd = -1;
	c.out = out;
	c.err = err;
	c.self_exe = self_exe;
	signal(SIGPIPE, SIG_IGN);
	char why[1024];
	char *path = NULL;
	struct stat sb;
	if (stat(journal, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		path = newest_journal(journal);
		if (!path) {
			complain(&c, "no *.journal in %s", journal);
			return 2;
		}
	} else {
		path = xstrdup(journal);
	}
	size_t len = 0;
	char *text = journal_read(path, &len, why, sizeof(why));
	if (!text) {
		complain(&c, "%s", why);
		free(path);
		return 2;
	}
	struct journal_state js;
	int r = journal_replay(text, len, &js, why, sizeof(why));
	free(text);
	if (r < 0) {
		complain(&c, "%s: %s", path, why);
		free(path);
		return 2;
	}
	const char *reason = NULL;
	enum recover_action act = journal_decide(&js, &reason);
	fprintf(out, "recover: %s: last step '%s'%s: %s -> %s\n", path, js.last,
		js.torn_tail ? " (a torn record after it was ignored)" : "", reason, recover_action_name(act));
	int rc = 0;
	if (act == RECOVER_NOTHING || dry_run)
		goto out_state;
	const struct json_value *b = js.begin;
	c.driver = bstr(b, "driver");
	c.vm = bstr(b, "vm");
	c.source = bstr(b, "source");
	c.dest = bstr(b, "dest");
	c.appliance = bstr(b, "appliance");
	c.rsh = bstr(b, "rsh");
	c.remote_cmd = bstr(b, "remote_cmd");
	c.adm = bstr(b, "adm");
	c.qmp_source = bstr(b, "qmp_source");
	c.qmp_dest = bstr(b, "qmp_dest");
	c.dest_pidfile = bstr(b, "dest_pidfile");
	c.source_holder = bstr(b, "source_holder");
	c.dest_holder = bstr(b, "dest_holder");
	c.dest_addr = bstr(b, "dest_addr");
	c.progress = false;
	c.timeout_s = 600;
	c.domain = bstr(b, "domain");
	c.dest_uri = bstr(b, "dest_uri");
	c.source_uri = bstr(b, "source_uri");
	c.libvirt = c.driver && strcmp(c.driver, "libvirt") == 0;
	c.virt = c.libvirt || (c.driver && strcmp(c.driver, "xen") == 0);
	if (!c.source || !c.dest || !c.source_holder || !c.dest_holder || !c.driver ||
	    (c.virt ? !c.domain || !c.dest_uri || !c.source_uri
		    : strcmp(c.driver, "qemu") != 0 || !c.qmp_source || !c.qmp_dest)) {
		complain(&c, "%s: the begin record lacks what recover needs (or names an unknown driver)", path);
		rc = 2;
		goto out_state;
	}
	const struct json_value *ls = json_get(b, "leases");
	for (size_t i = 0; i < js.nleases; i++) {
		const char *s = json_str(json_at(ls, i));
		if (!s) {
			complain(&c, "%s: lease %zu is not a string", path, i);
			rc = 2;
			goto out_state;
		}
		strv_push(&c.lease_specs, &c.nleases, s);
		c.epoch[i] = js.epoch[i];
		c.transferred[i] = js.transferred[i] && !js.returned[i];
		c.new_epoch[i] = js.new_epoch[i];
		if (js.returned[i])
			c.epoch[i] = js.returned_epoch[i];
	}
	/* Was the VM running on the source?  (source-checked; unknown: yes) */
	c.source_was_running = js.source_checked ? js.source_running : true;
	c.dest_started = js.dest_started;
	/* The go was sent (or the destination was seen running): from here on
	 * "destination gone" is not a reason to undo (safe_to_undo). */
	c.cont_sent = js.dest_cont_sent || (js.dest_running && c.source_was_running);
	c.dest_unused = js.dest_unused;
	if (journal_open(&c.j, path, why, sizeof(why)) < 0) {
		complain(&c, "%s", why);
		rc = 2;
		goto out_state;
	}
	c.journal_ok = true;
	rec_str(&c, "recover", "action", recover_action_name(act));

	if (c.virt && act == RECOVER_UNDO_RETURN) {
		/* libvirt/xen: whether the lease is with the destination
		 * decides the direction (a migration back needs it with the
		 * source; a domain that moved is finished where it is). */
		act = RECOVER_ASK_APPLIANCE;
	}
	if (act == RECOVER_ASK_APPLIANCE) {
		bool moved = false, stayed = false;
		for (size_t i = 0; i < c.nleases; i++) {
			if (!js.transfer_begun[i] || js.transferred[i])
				continue;
			struct lease_info li;
			if (lease_show(&c, i, &li, why, sizeof(why)) < 0) {
				complain(&c, "cannot read lease %s from the appliance: %s; try again later", c.lease_specs[i],
					 why);
				rc = 3;
				goto out_state;
			}
			if (li.held && strcmp(li.holder, c.dest_holder) == 0 && li.epoch > c.epoch[i]) {
				c.transferred[i] = true;
				c.new_epoch[i] = li.epoch;
				rec_lease(&c, "lease-transferred", i, li.epoch, c.dest_holder);
				moved = true;
			} else if (li.held && strcmp(li.holder, c.source_holder) == 0 && li.epoch == c.epoch[i]) {
				stayed = true;
			} else {
				complain(&c, "lease %s changed under the migration: holder %s, epoch %" PRIu64
					 "; not touching anything", c.lease_specs[i], li.held ? li.holder : "(none)", li.epoch);
				rc = 3;
				goto out_state;
			}
		}
		act = (moved || any_transferred(&c)) ? RECOVER_FINISH : RECOVER_UNDO;
		say(&c, "the appliance says the lease %s: %s", moved ? "moved" : stayed ? "did not move" : "?",
		    recover_action_name(act));
	}
	switch (act) {
	case RECOVER_UNDO:
		rc = rollback_before(&c, "recover: undo the interrupted migration");
		rc = rc == 1 ? 0 : rc;
		break;
	case RECOVER_UNDO_RETURN:
		rc = rollback_after(&c, "recover: finish the interrupted rollback");
		rc = rc == 1 ? 0 : rc;
		break;
	case RECOVER_FINISH: {
		if (c.virt) {
			/* The source's domain is gone once the tool finished;
			 * a source that still has it must not be fenced under
			 * a running guest. */
			char ss[128];
			enum vstate s = virt_state(&c, c.source, ss, sizeof(ss));
			if (s == VS_RUNNING) {
				complain(&c, "the domain %s runs on the source %s although the lease moved: it cannot "
					 "write; not touching anything, look at both hosts", c.domain, c.source);
				rc = 3;
				break;
			}
			rc = transfer_leases(&c);
			if (rc == 0 && !c.finished)
				rc = virt_finish(&c);
			rc = rc == 1 ? 0 : rc;
			break;
		}
		if (!js.dest_running) {
			/* Leases not moved yet (crash between two transfers): the
			 * source must be stopped for them to move. */
			struct qmp *s = src_q(&c);
			char rs[64] = "unreachable";
			if (s)
				qmp_status(s, rs, sizeof(rs), QMP_TIMEOUT_MS);
			bool all = true;
			for (size_t i = 0; i < c.nleases; i++)
				all = all && c.transferred[i];
			if (!all) {
				if (strcmp(rs, "running") == 0) {
					rc = rollback_after(&c, "recover: the source runs again; undo");
					rc = rc == 1 ? 0 : rc;
					break;
				}
				rc = transfer_leases(&c);
				if (rc)
					break;
			}
		}
		rc = finish(&c);
		break;
	}
	default:
		break;
	}
out_state:
	ctx_close(&c);
	strv_free(c.lease_specs, c.nleases);
	journal_state_free(&js);
	free(path);
	return rc;
}
