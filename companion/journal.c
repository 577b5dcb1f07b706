/* journal.c - see journal.h. */
#include "companion/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void jm_key(struct strbuf *sb, const char *key)
{
	if (sb->len)
		sb_puts(sb, ",");
	json_quote(sb, key);
	sb_puts(sb, ":");
}

void jm_str(struct strbuf *sb, const char *key, const char *val)
{
	jm_key(sb, key);
	if (val)
		json_quote(sb, val);
	else
		sb_puts(sb, "null");
}

void jm_u64(struct strbuf *sb, const char *key, uint64_t val)
{
	jm_key(sb, key);
	sb_printf(sb, "%" PRIu64, val);
}

void jm_bool(struct strbuf *sb, const char *key, bool val)
{
	jm_key(sb, key);
	sb_puts(sb, val ? "true" : "false");
}

void jm_raw(struct strbuf *sb, const char *key, const char *json)
{
	jm_key(sb, key);
	sb_puts(sb, json);
}

static int mkdir_p(const char *dir)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The new file's directory entry must be durable too, or a crash could
 * lose the whole journal (fsync(2) NOTES). */
static void fsync_dir_of(const char *path)
{
	char *c = strdup(path);
	if (!c)
		return;
	int dfd = open(dirname(c), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(c);
}

int journal_create(struct journal *j, const char *dir, const char *name, char *err, size_t errlen)
{
	j->fd = -1;
	j->path = NULL;
	if (mkdir_p(dir) < 0) {
		snprintf(err, errlen, "journal directory %s: %s", dir, strerror(errno));
		return -1;
	}
	char safe[64];
	size_t k = 0;
	for (const char *p = name && *name ? name : "vm"; *p && k < sizeof(safe) - 1; p++)
		safe[k++] = (char)(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", *p)
					  ? *p : '_');
	safe[k] = '\0';
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	if (asprintf(&j->path, "%s/%s-%04d%02d%02d-%02d%02d%02d-%d.journal", dir, safe, tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)getpid()) < 0) {
		j->path = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (j->fd < 0 || flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "journal %s: %s", j->path, strerror(errno));
		journal_close(j);
		return -1;
	}
	fsync_dir_of(j->path);
	return 0;
}

int journal_open(struct journal *j, const char *path, char *err, size_t errlen)
{
	j->path = strdup(path);
	j->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (!j->path || j->fd < 0) {
		snprintf(err, errlen, "journal %s: %s", path, strerror(errno));
		journal_close(j);
		return -1;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "journal %s is in use: is a ringstor-migrate still running on it?", path);
		journal_close(j);
		return -1;
	}
	return 0;
}

int journal_record(struct journal *j, const char *step, const char *members)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct strbuf sb = {0};
	sb_printf(&sb, "{\"ts\":%lld.%03ld,\"step\":", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	json_quote(&sb, step);
	if (members && *members) {
		sb_puts(&sb, ",");
		sb_puts(&sb, members);
	}
	sb_puts(&sb, "}\n");
	if (sb.oom) {
		sb_free(&sb);
		errno = ENOMEM;
		return -1;
	}
	/* One write(2) of the whole line: with O_APPEND it lands in one piece
	 * unless the disk fills or the machine dies, and replay drops a torn
	 * last line. */
	size_t off = 0;
	while (off < sb.len) {
		ssize_t n = write(j->fd, sb.buf + off, sb.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			sb_free(&sb);
			errno = e;
			return -1;
		}
		off += (size_t)n;
	}
	sb_free(&sb);
	if (fdatasync(j->fd) < 0)
		return -1;
	return 0;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	free(j->path);
	j->path = NULL;
}

char *journal_read(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct strbuf sb = {0};
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (sb.len + n > JOURNAL_MAX_TEXT) {
			snprintf(err, errlen, "%s: larger than %u bytes: not a journal", path, JOURNAL_MAX_TEXT);
			fclose(f);
			sb_free(&sb);
			return NULL;
		}
		sb_append(&sb, buf, n);
	}
	bool bad = ferror(f) || sb.oom;
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: read error", path);
		sb_free(&sb);
		return NULL;
	}
	if (!sb.buf)
		sb_append(&sb, "", 0);
	*len = sb.len;
	return sb.buf;
}

void journal_state_free(struct journal_state *st)
{
	json_free(st->begin);
	st->begin = NULL;
}

/* Lease index of a step, validated against the begin record. */
static int lease_index(const struct json_value *rec, const struct journal_state *st, size_t *i)
{
	uint64_t v;
	if (!json_u64(json_get(rec, "i"), &v) || v >= st->nleases)
		return -1;
	*i = (size_t)v;
	return 0;
}

int journal_replay(const char *text, size_t len, struct journal_state *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	size_t pos = 0, lineno = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t ll = end - pos;
		const char *line = text + pos;
		pos = nl ? end + 1 : len;
		lineno++;
		while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' '))
			ll--;
		if (ll == 0)
			continue;
		char perr[128];
		struct json_value *rec = json_parse(line, ll, perr, sizeof(perr));
		if (!rec || rec->type != JSON_OBJECT || !json_str(json_get(rec, "step"))) {
			json_free(rec);
			if (!nl) {
				/* A torn last record: its step never started. */
				st->torn_tail = true;
				break;
			}
			snprintf(err, errlen, "line %zu: not a journal record%s%s", lineno, rec ? "" : ": ",
				 rec ? "" : perr);
			journal_state_free(st);
			return -1;
		}
		const char *step = json_str(json_get(rec, "step"));
		if (!st->begin) {
			uint64_t fmt = 0;
			if (strcmp(step, "begin") != 0) {
				snprintf(err, errlen, "line %zu: the journal does not start with a begin record", lineno);
				json_free(rec);
				return -1;
			}
			if (!json_u64(json_get(rec, "format"), &fmt) || fmt != JOURNAL_FORMAT) {
				snprintf(err, errlen, "line %zu: journal format %" PRIu64 ", this program reads %d",
					 lineno, fmt, JOURNAL_FORMAT);
				json_free(rec);
				return -1;
			}
			const struct json_value *ls = json_get(rec, "leases");
			if (json_len(ls) > JOURNAL_MAX_LEASES) {
				snprintf(err, errlen, "line %zu: more than %d leases", lineno, JOURNAL_MAX_LEASES);
				json_free(rec);
				return -1;
			}
			st->nleases = ls && ls->type == JSON_ARRAY ? ls->n : 0;
			st->begin = rec;
			snprintf(st->last, sizeof(st->last), "%s", step);
			continue;
		}
		st->nsteps++;
		snprintf(st->last, sizeof(st->last), "%s", step);
		size_t i = 0;
		uint64_t ep = 0;
		bool needs_i = strcmp(step, "lease-held") == 0 || strcmp(step, "transfer-begin") == 0 ||
			       strcmp(step, "lease-transferred") == 0 || strcmp(step, "lease-returned") == 0;
		if (needs_i && (lease_index(rec, st, &i) < 0 || !json_u64(json_get(rec, "epoch"), &ep))) {
			snprintf(err, errlen, "line %zu: %s without a valid lease index and epoch", lineno, step);
			json_free(rec);
			journal_state_free(st);
			return -1;
		}
		if (strcmp(step, "lease-held") == 0) {
			st->lease_held[i] = true;
			st->epoch[i] = ep;
		} else if (strcmp(step, "transfer-begin") == 0) {
			st->transfer_begun[i] = true;
		} else if (strcmp(step, "lease-transferred") == 0) {
			st->transferred[i] = true;
			st->new_epoch[i] = ep;
		} else if (strcmp(step, "lease-returned") == 0) {
			st->returned[i] = true;
			st->returned_epoch[i] = ep;
		} else if (strcmp(step, "source-checked") == 0) {
			st->source_checked = true;
			st->source_running = json_bool(json_get(rec, "running"), &st->source_running) && st->source_running;
		} else if (strcmp(step, "dest-started") == 0) {
			st->dest_started = true;
		} else if (strcmp(step, "migrating") == 0) {
			st->migrating = true;
		} else if (strcmp(step, "transfer-point") == 0) {
			st->transfer_point = true;
		} else if (strcmp(step, "switchover") == 0) {
			st->switchover = true;
		} else if (strcmp(step, "completed") == 0) {
			st->completed = true;
		} else if (strcmp(step, "dest-cont-sent") == 0) {
			st->dest_cont_sent = true;
		} else if (strcmp(step, "dest-unused") == 0) {
			st->dest_unused = true;
		} else if (strcmp(step, "dest-running") == 0) {
			st->dest_running = true;
		} else if (strcmp(step, "source-stopped") == 0) {
			st->source_stopped = true;
		} else if (strcmp(step, "done") == 0) {
			st->done = true;
		} else if (strcmp(step, "rollback") == 0) {
			st->rollback = true;
		} else if (strcmp(step, "dest-stopped") == 0) {
			st->dest_stopped = true;
		} else if (strcmp(step, "source-resumed") == 0) {
			st->source_resumed = true;
		} else if (strcmp(step, "rolled-back") == 0) {
			st->rolled_back = true;
		} else if (strcmp(step, "aborted") == 0) {
			st->aborted = true;
		}
		/* Other steps (preflight, dest-listening, recover, progress
		 * notes) are informational. */
		json_free(rec);
	}
	if (!st->begin) {
		snprintf(err, errlen, "no begin record: not a ringstor-migrate journal, or empty");
		return -1;
	}
	return 0;
}

enum recover_action journal_decide(const struct journal_state *st, const char **why)
{
	bool any_transferred = false, any_unreturned = false, any_in_doubt = false;
	for (size_t i = 0; i < st->nleases; i++) {
		if (st->transferred[i]) {
			any_transferred = true;
			if (!st->returned[i])
				any_unreturned = true;
		} else if (st->transfer_begun[i]) {
			any_in_doubt = true;
		}
	}
	if (st->done) {
		*why = "the migration completed";
		return RECOVER_NOTHING;
	}
	if (st->rolled_back) {
		*why = "the migration was rolled back";
		return RECOVER_NOTHING;
	}
	if (st->aborted) {
		*why = "the migration was aborted before anything changed";
		return RECOVER_NOTHING;
	}
	if ((st->dest_running || st->dest_cont_sent) && !(st->rollback && st->dest_unused)) {
		/* The destination was told to run: its guest may have written
		 * to the disk since, which the source's RAM does not know, so
		 * the only way is forward (a destination that is gone is not
		 * undone: recover stops there, exit 3).  Unless a rollback had
		 * found it provably unused (dest-unused): that goes on below. */
		*why = st->dest_running ? "the destination was resumed: stop the source"
					: "cont was sent to the destination (it may have run): resume it, stop the source";
		return RECOVER_FINISH;
	}
	if (st->rollback) {
		/* Keep the direction the companion had chosen. */
		if (any_unreturned || any_in_doubt) {
			*why = "a rollback after the lease transfer was interrupted: stop the destination, "
			       "hand the lease back, resume the source";
			return RECOVER_UNDO_RETURN;
		}
		*why = "a rollback was interrupted: stop the destination, resume the source";
		return RECOVER_UNDO;
	}
	if (any_in_doubt) {
		*why = "interrupted during the lease transfer: the appliance decides";
		return RECOVER_ASK_APPLIANCE;
	}
	if (any_transferred) {
		*why = "the lease was transferred to the destination: finish the switchover";
		return RECOVER_FINISH;
	}
	if (!st->nsteps) {
		*why = "interrupted before any step: make sure the source runs";
		return RECOVER_UNDO;
	}
	*why = "interrupted before the lease transfer: resume the source, stop the destination";
	return RECOVER_UNDO;
}

const char *recover_action_name(enum recover_action a)
{
	switch (a) {
	case RECOVER_NOTHING: return "nothing";
	case RECOVER_UNDO: return "undo";
	case RECOVER_UNDO_RETURN: return "undo-return-lease";
	case RECOVER_FINISH: return "finish";
	case RECOVER_ASK_APPLIANCE: return "ask-appliance";
	}
	return "?";
}
