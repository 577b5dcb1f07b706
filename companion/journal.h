/* journal.h - the migration journal: one JSON object per line, appended and
 * fsync'ed before the step it announces has consequences, so that after a
 * crash of the companion (or of its host) `ringstor-migrate recover` knows
 * how far the handover got and can finish it or undo it.
 *
 * Line 1 is {"step":"begin", ...} with everything recover needs (hosts,
 * remote shell, QMP sockets, lease holders and the ringstoradm arguments of
 * each lease); the following lines are the steps, in order:
 *
 *   dest-command{argv}, preflight{exit}, lease-held{i,epoch}, source-checked{running},
 *   dest-started, dest-listening, migrating, [completed,] transfer-point{source_state},
 *   transfer-begin{i,epoch}, lease-transferred{i,epoch}, [switchover, completed,]
 *   dest-cont-sent[{cmd}], dest-running{paused_ms}, source-stopped, done
 * (completed comes before the transfer with --transfer-at completed, after
 * it, following switchover = migrate-continue, with pre-switchover)
 *
 * and on the way back: [dest-unused{state}], rollback{reason}, dest-stopped,
 * lease-returned{i,epoch}, source-resumed, rolled-back; aborted (nothing
 * was changed); in-doubt{reason} (the go had been sent to the destination
 * and it may have written: nothing undone, exit 3); recover{action}.
 *
 * dest-cont-sent is written before the destination is told to run (QMP
 * cont, virsh resume, xl unpause): from then on its guest may have run and
 * written to the disk, so the source's RAM is older than the disk and the
 * source must never be resumed, unless dest-unused says the destination
 * was found not running with no write done.
 *
 * A torn last line (crash in the middle of a write) is ignored: the step it
 * announced did not start, since every record is durable before its step.
 */
#ifndef RS_COMPANION_JOURNAL_H
#define RS_COMPANION_JOURNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "companion/json.h"

#define JOURNAL_FORMAT 1
#define JOURNAL_MAX_LEASES 16
#define JOURNAL_MAX_TEXT (4u << 20)

struct journal {
	int fd;          /* O_APPEND, flock'ed exclusively while we run */
	char *path;
};

/* Creates DIR/NAME-YYYYmmdd-HHMMSS-PID.journal (DIR created if missing).
 * 0, or -1 with err set. */
int journal_create(struct journal *j, const char *dir, const char *name, char *err, size_t errlen);
/* Opens an existing journal to append to (recover).  Fails if another
 * process (a migrate still running) holds it. */
int journal_open(struct journal *j, const char *path, char *err, size_t errlen);
/* Appends {"ts":..., "step":step[, members]} and fsyncs.  members is ""
 * or NULL, or JSON object members without braces ("\"i\":0,\"epoch\":3").
 * 0, or -1 (errno set): the caller must not take the step. */
int journal_record(struct journal *j, const char *step, const char *members);
void journal_close(struct journal *j);
/* Reads a whole journal file (caller frees). */
char *journal_read(const char *path, size_t *len, char *err, size_t errlen);

/* What the journal says happened. */
struct journal_state {
	struct json_value *begin;        /* the begin record (owned) */
	size_t nsteps;                   /* records after begin */
	char last[32];                   /* last step name */
	size_t nleases;                  /* from begin */
	bool lease_held[JOURNAL_MAX_LEASES];
	uint64_t epoch[JOURNAL_MAX_LEASES];      /* the source's epoch */
	bool transfer_begun[JOURNAL_MAX_LEASES];
	bool transferred[JOURNAL_MAX_LEASES];
	uint64_t new_epoch[JOURNAL_MAX_LEASES];  /* after the transfer */
	bool returned[JOURNAL_MAX_LEASES];
	uint64_t returned_epoch[JOURNAL_MAX_LEASES];
	bool source_checked, source_running;     /* source-checked{running} */
	bool dest_started, migrating, transfer_point, switchover, completed;
	bool dest_cont_sent, dest_unused;        /* dest-cont-sent, dest-unused */
	bool dest_running, source_stopped, done;
	bool rollback, dest_stopped, source_resumed, rolled_back, aborted;
	bool torn_tail;                  /* the last line was incomplete */
};

/* Replays the journal text.  0, or -1 with err (no begin record, a
 * malformed line that is not the last, a lease index out of range). */
int journal_replay(const char *text, size_t len, struct journal_state *st, char *err, size_t errlen);
void journal_state_free(struct journal_state *st);

enum recover_action {
	RECOVER_NOTHING,        /* done, rolled back or aborted */
	RECOVER_UNDO,           /* lease still with the source: resume it, stop the destination */
	RECOVER_UNDO_RETURN,    /* a rollback after the transfer: stop the destination,
				   hand the lease back, resume the source */
	RECOVER_FINISH,         /* the lease is with the destination: complete the
				   switchover, resume the destination, stop the source;
				   once the go was sent (dest-cont-sent, dest-running), a
				   destination that is gone is not undone (exit 3) */
	RECOVER_ASK_APPLIANCE,  /* crashed during a transfer: the appliance's lease
				   state says whether it happened */
};
/* The decision for a replayed journal; *why explains it (static text). */
enum recover_action journal_decide(const struct journal_state *st, const char **why);
const char *recover_action_name(enum recover_action a);

/* Helpers for members text: ,"key":value appended (a leading comma only
 * when sb is not empty). */
void jm_str(struct strbuf *sb, const char *key, const char *val);
void jm_u64(struct strbuf *sb, const char *key, uint64_t val);
void jm_bool(struct strbuf *sb, const char *key, bool val);
void jm_raw(struct strbuf *sb, const char *key, const char *json);
#endif
