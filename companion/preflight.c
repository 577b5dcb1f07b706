/* preflight.c - see preflight.h. */
#include "companion/preflight.h"
#include "companion/compare.h"
#include "companion/run.h"

#include <stdlib.h>
#include <string.h>

void argv_free(char **argv)
{
	if (!argv)
		return;
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

char *shell_quote(const char *s)
{
	struct strbuf sb = {0};
	bool plain = *s != '\0';
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_", *p))
			plain = false;
	if (plain) {
		sb_puts(&sb, s);
	} else {
		sb_puts(&sb, "'");
		for (const char *p = s; *p; p++) {
			if (*p == '\'')
				sb_puts(&sb, "'\\''");
			else
				sb_append(&sb, p, 1);
		}
		sb_puts(&sb, "'");
	}
	if (sb.oom) {
		sb_free(&sb);
		return NULL;
	}
	return sb.buf;
}

static bool ssh_like(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	return strstr(base ? base + 1 : argv0, "ssh") != NULL;
}

char **preflight_argv(const struct preflight_opts *o, const char *host, bool is_dest)
{
	char **w = NULL;
	size_t n = 0;
	/* the probe's own words */
	char **pw = NULL;
	size_t pn = 0;
	bool local = strcmp(host, PREFLIGHT_LOCAL_HOST) == 0;
	strv_push(&pw, &pn, local ? (o->self_exe ? o->self_exe : "/proc/self/exe")
				  : (o->remote_cmd ? o->remote_cmd : PREFLIGHT_DEFAULT_REMOTE_CMD));
	strv_push(&pw, &pn, "probe");
	strv_push(&pw, &pn, "--json");
	const char *iname = is_dest && o->dest_initiator_name ? o->dest_initiator_name : o->initiator_name;
	if (iname) {
		strv_push(&pw, &pn, "--initiator-name");
		strv_push(&pw, &pn, iname);
	}
	for (size_t i = 0; i < o->ndisks; i++) {
		strv_push(&pw, &pn, "--disk");
		strv_push(&pw, &pn, is_dest && o->dest_disks ? o->dest_disks[i] : o->disks[i]);
	}
	if (local) {
		w = pw;
		n = pn;
		pw = NULL;
		pn = 0;
	} else {
		const char *rsh = o->rsh ? o->rsh : PREFLIGHT_DEFAULT_RSH;
		if (cmdline_split(rsh, strlen(rsh), &w, &n) < 0 || n == 0) {
			for (size_t i = 0; i < n; i++)
				free(w[i]);
			free(w);
			w = NULL;
			goto out;
		}
		strv_push(&w, &n, host);
		if (ssh_like(w[0])) {
			struct strbuf cmd = {0};
			for (size_t i = 0; i < pn; i++) {
				char *q = shell_quote(pw[i]);
				sb_printf(&cmd, "%s%s", i ? " " : "", q ? q : "''");
				free(q);
			}
			strv_push(&w, &n, cmd.buf ? cmd.buf : "");
			sb_free(&cmd);
		} else {
			for (size_t i = 0; i < pn; i++)
				strv_push(&w, &n, pw[i]);
		}
	}
	/* NULL-terminate */
	char **nw = realloc(w, (n + 1) * sizeof(*nw));
	if (!nw) {
		for (size_t i = 0; i < n; i++)
			free(w[i]);
		free(w);
		w = NULL;
		goto out;
	}
	w = nw;
	w[n] = NULL;
out:
	for (size_t i = 0; i < pn; i++)
		free(pw[i]);
	free(pw);
	return w;
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

/* Last non-empty line of a command's stderr, for the error message. */
static const char *tail_line(struct strbuf *sb, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!sb->buf)
		return buf;
	size_t n = sb->len;
	while (n && (sb->buf[n - 1] == '\n' || sb->buf[n - 1] == '\r'))
		n--;
	size_t s = n;
	while (s && sb->buf[s - 1] != '\n')
		s--;
	snprintf(buf, len, "%.*s", (int)(n - s), sb->buf + s);
	return buf;
}

/* Runs probes on hosts[0..n) at once; fills ph[].  Returns 0, or 2 after
 * printing which host failed and how. */
static int run_probes(const struct preflight_opts *o, size_t n, const char *const *hosts, const bool *is_dest,
		      const char *const *role, struct probe_host *ph, FILE *errf)
{
	struct run_job jobs[2];
	char **argv[2] = { NULL, NULL };
	int rc = 2;
	size_t started = 0;
	memset(jobs, 0, sizeof(jobs));
	for (size_t i = 0; i < n; i++) {
		argv[i] = preflight_argv(o, hosts[i], is_dest[i]);
		if (!argv[i]) {
			fprintf(errf, "preflight: cannot build the remote-shell command from --rsh '%s'\n",
				o->rsh ? o->rsh : PREFLIGHT_DEFAULT_RSH);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (run_start(&jobs[i], argv[i]) < 0) {
			char *t = argv_text(argv[i]);
			fprintf(errf, "preflight: cannot run the probe on the %s %s (%s): %s\n", role[i], hosts[i], t,
				jobs[i].why);
			free(t);
			run_job_free(&jobs[i]);
			run_wait_all(jobs, started, 1);
			goto out;
		}
		started++;
	}
	run_wait_all(jobs, n, o->timeout_s > 0 ? o->timeout_s : 300);
	bool bad = false;
	for (size_t i = 0; i < n; i++) {
		char *t = argv_text(argv[i]);
		char line[512];
		/* probe exits 0, or 1 when a disk could not be probed (the JSON
		 * says which and why); anything else means no usable probe. */
		if (jobs[i].status != 0 && jobs[i].status != 1) {
			if (jobs[i].status < 0)
				fprintf(errf, "preflight: probe on the %s %s: %s (command: %s)\n", role[i], hosts[i],
					jobs[i].why, t);
			else
				fprintf(errf, "preflight: probe on the %s %s failed with exit status %d: %s (command: %s)\n",
					role[i], hosts[i], jobs[i].status,
					*tail_line(&jobs[i].err, line, sizeof(line)) ? line : "no message", t);
			bad = true;
		} else {
			char err[256];
			if (probe_from_json(&ph[i], jobs[i].out.buf ? jobs[i].out.buf : "", jobs[i].out.len, err,
					    sizeof(err)) < 0) {
				fprintf(errf, "preflight: the %s %s returned an unusable probe: %s (command: %s%s%s)\n",
					role[i], hosts[i], err, t,
					*tail_line(&jobs[i].err, line, sizeof(line)) ? "; stderr: " : "", line);
				bad = true;
			}
		}
		free(t);
	}
	rc = bad ? 2 : 0;
out:
	for (size_t i = 0; i < n; i++) {
		if (i < started)
			run_job_free(&jobs[i]);
		argv_free(argv[i]);
	}
	return rc;
}

int preflight_run(const struct preflight_opts *o, FILE *out, FILE *errf)
{
	const char *hosts[2] = { o->source, o->dest };
	const char *role[2] = { "source", "destination" };
	const bool is_dest[2] = { false, true };
	/* ph: source, destination (at once), then if needed the destination
	 * again and the source again, one after the other */
	struct probe_host ph[4];
	memset(ph, 0, sizeof(ph));
	/* Both probes run at once so the two fingerprints are taken as close
	 * together in time as possible. */
	int rc = run_probes(o, 2, hosts, is_dest, role, ph, errf);
	if (rc)
		goto out;
	bool again = compare_needs_second_source_probe(&ph[0], &ph[1]);
	if (again) {
		/* The first destination probe ran alongside the source's, so a
		 * VM write can fall between the two reads of one sample: probe
		 * the destination again, then the source, in turn.  A sample
		 * the source read the same before and after the destination's
		 * second read did not change in between (compare.h). */
		const char *h2[1] = { o->dest }, *h3[1] = { o->source };
		const bool d2[1] = { true }, d3[1] = { false };
		const char *r2[1] = { "destination (second probe)" }, *r3[1] = { "source (second probe)" };
		rc = run_probes(o, 1, h2, d2, r2, &ph[2], errf);
		if (rc)
			goto out;
		rc = run_probes(o, 1, h3, d3, r3, &ph[3], errf);
		if (rc)
			goto out;
	}
	struct check_list cl = {0};
	compare_probes(&ph[0], &ph[1], o->vm, again ? &ph[2] : NULL, again ? &ph[3] : NULL, &cl);
	if (o->lease_reason) {
		for (size_t i = 0; i < cl.n; i++) {
			if (strcmp(cl.v[i].name, "lease") != 0)
				continue;
			char *r = strdup(o->lease_reason);
			if (r) {
				free(cl.v[i].reason);
				cl.v[i].reason = r;
				cl.v[i].status = (enum check_status)o->lease_status;
			}
		}
	}
	char *text = o->json ? check_list_json(&cl, o->source, o->dest) : check_list_text(&cl);
	if (text)
		fputs(text, out);
	free(text);
	rc = check_list_exit_code(&cl);
	if (!o->json)
		fprintf(out, "preflight %s -> %s: %s\n", o->source, o->dest,
			rc ? "FAILED (do not migrate)" : "passed");
	check_list_free(&cl);
out:
	for (int i = 0; i < 4; i++)
		probe_host_free(&ph[i]);
	return rc;
}
