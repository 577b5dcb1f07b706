/* stats.h - I/O statistics: per-LU (iSCSI) and per-export (NFS) IOPS,
 * bandwidth, latency percentiles and errors.
 *
 * Hot path (reactor threads): every thread that records gets its own slot
 * (a small integer, assigned on first use) and each stats object keeps one
 * cache-line aligned block of counters per slot, allocated by that thread on
 * its first record.  A slot has one writer, so an update is a relaxed load
 * and store (no lock, no contended atomic, no shared cache line); the
 * readers (control thread, Prometheus thread) sum the slots with relaxed
 * loads.  Threads beyond STATS_MAX_THREADS - 1 share the last slot with
 * atomic adds.  Latency is measured with clock_gettime(CLOCK_MONOTONIC)
 * (vDSO: no system call) once at the start and once at the completion.
 *
 * Counters are cumulative since the object was created (LU or export
 * creation).  Rates are computed by the reader from two samples: ringstoradm
 * --op stat --interval N takes two snapshots N seconds apart and reports
 * the deltas divided by N (latency percentiles from the delta histograms);
 * without --interval it reports the totals and averages over the object's
 * lifetime.  Nothing is kept in the daemon beyond the counters.
 *
 * Latency histogram: log-linear, HdrHistogram-like.  Values (ns) below 16
 * have a bucket each; above, each power-of-two range [2^e, 2^(e+1)) is split
 * into 16 equal sub-buckets, so a bucket's width is at most 1/16 of its
 * lower bound: a percentile is reported as the bucket's highest value, at
 * most 6.25% above the true value.  Values >= 2^36 ns (68.7 s) go to the
 * last bucket.
 */
#ifndef RS_STATS_H
#define RS_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

enum stats_class { STATS_READ = 0, STATS_WRITE, STATS_OTHER, STATS_NCLASS };

/* Non-GOOD outcomes (SAM-5 status codes; NFS: any status but NFS3_OK is
 * STATS_ST_OTHER). */
enum stats_status {
	STATS_ST_CHECK_CONDITION = 0,
	STATS_ST_BUSY,
	STATS_ST_RESERVATION_CONFLICT,
	STATS_ST_TASK_SET_FULL,
	STATS_ST_OTHER,
	STATS_NSTATUS
};

#define STATS_HIST_SUB_BITS 4
#define STATS_HIST_SUB      (1u << STATS_HIST_SUB_BITS)      /* 16 */
#define STATS_HIST_MAX_EXP  36                               /* 2^36 ns = 68.7 s */
#define STATS_HIST_BUCKETS  ((STATS_HIST_MAX_EXP - STATS_HIST_SUB_BITS + 1) * STATS_HIST_SUB)

#define STATS_MAX_THREADS 64

struct stats_class_ctr {
	uint64_t ops;                   /* completed */
	uint64_t bytes;                 /* moved by commands that succeeded */
	uint64_t lat_sum_ns;
	uint64_t hist[STATS_HIST_BUCKETS];
};

/* One thread's share of an object's counters, or a sum of them. */
struct stats_counters {
	uint64_t started;               /* started - completed = in flight */
	uint64_t errors;                /* completed with a status other than GOOD */
	uint64_t status[STATS_NSTATUS];
	uint64_t sense_key[16];         /* CHECK CONDITION by sense key (SPC-4 4.5.6) */
	struct stats_class_ctr cls[STATS_NCLASS];
};

/* A statistics object: one per LU, one per NFS export. */
struct stats_obj {
	_Atomic(struct stats_counters *) slot[STATS_MAX_THREADS];
	uint64_t created_ns;            /* stats_now_ns() at stats_obj_init() */
};

static inline uint64_t stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- histogram math (pure) ---- */
unsigned stats_hist_index(uint64_t v);
/* Smallest and largest value that land in bucket idx. */
uint64_t stats_hist_low(unsigned idx);
uint64_t stats_hist_high(unsigned idx);
/* Value at percentile p (0 < p <= 100) of hist[STATS_HIST_BUCKETS]: the
 * highest value of the bucket holding the ceil(p/100 * n)-th smallest
 * sample.  0 if the histogram is empty. */
uint64_t stats_hist_percentile(const uint64_t *hist, double p);
/* Highest value of the highest non-empty bucket (0 if empty). */
uint64_t stats_hist_max(const uint64_t *hist);

/* ---- objects (any thread) ---- */
void stats_obj_init(struct stats_obj *o);
/* Free the per-thread blocks.  No record may run concurrently (an LU is
 * finalised when its last reference goes, so no command is in flight). */
void stats_obj_fini(struct stats_obj *o);
/* Hot path: a command/operation started (in-flight accounting). */
void stats_record_start(struct stats_obj *o);
/* Hot path: one completed.  status: -1 for success, else the outcome
 * (enum stats_status); sense_key used for CHECK CONDITION (0..15).
 * latency_ns STATS_LAT_UNKNOWN: counted, but not in the latency figures. */
#define STATS_LAT_UNKNOWN UINT64_MAX
void stats_record(struct stats_obj *o, enum stats_class cls, uint64_t bytes,
		  uint64_t latency_ns, int status, int sense_key);
/* Sum of every slot into out (zeroed first).  Readers: control plane. */
void stats_obj_read(const struct stats_obj *o, struct stats_counters *out);

/* ---- SCSI (called by target/scsi.c) ---- */
struct scsi_cmd;
struct scsi_lu;
/* The LU's stats object (it lives in the LU's allocation, target/scsi.c). */
struct stats_obj *scsi_lu_stats(const struct scsi_lu *lu);
/* The same through a hook that scsi.c installs when it creates an LU, so
 * that the control plane can read LU counters without a link-time
 * dependency on the SCSI core (tests stub the core).  NULL if no LU was
 * ever created by scsi_lu_create(). */
typedef struct stats_obj *(*stats_lu_fn)(const struct scsi_lu *lu);
void stats_set_lu_lookup(stats_lu_fn fn);
struct stats_obj *stats_lu_obj(const struct scsi_lu *lu);
/* Command classification for the statistics (SBC-3 opcodes). */
enum stats_class stats_scsi_class(const uint8_t *cdb);
/* Per-thread table of command start times, keyed by the command. */
void stats_inflight_put(const void *key, uint64_t t0_ns);
/* The start time put for key on this thread (and forget it): true, or
 * false if there is none (the command started on another thread). */
bool stats_inflight_take(const void *key, uint64_t *t0_ns);

/* ---- NFS (hook for nfsgw/nfs3.c) ----
 * Account one NFSv3 procedure of export export_id: cls READ (READ), WRITE
 * (WRITE, COMMIT) or OTHER (metadata), bytes moved (READ/WRITE payload),
 * latency from the call's decode to its reply, error = status != NFS3_OK.
 * Any thread.  The first call for an id creates its object (at most
 * STATS_MAX_EXPORTS ids; more are not counted). */
#define STATS_MAX_EXPORTS 1024
void stats_nfs_op(uint32_t export_id, enum stats_class cls, uint64_t bytes,
		  uint64_t latency_ns, bool error);
/* The object of an export id, or NULL if it never saw an operation. */
struct stats_obj *stats_nfs_export(uint32_t export_id);

/* ---- snapshots (control plane) ---- */
#define STATS_NAME_MAX 224
#define STATS_PATH_MAX 4096

enum stats_kind { STATS_KIND_LU = 0, STATS_KIND_EXPORT };

struct stats_entry {
	enum stats_kind kind;
	int tid;                        /* LU: its target */
	char target[STATS_NAME_MAX];    /* LU: target name */
	uint64_t lun;
	uint32_t export_id;             /* export */
	char path[STATS_PATH_MAX];      /* export path */
	uint64_t age_ns;                /* time since the object was created */
	struct stats_counters c;
};

struct stats_target {
	int tid;
	char name[STATS_NAME_MAX];
	int nsessions;
	int ninitiators;
	char (*initiators)[STATS_NAME_MAX];
};

struct stats_snap {
	uint64_t time_ns;               /* daemon's monotonic clock when taken */
	struct stats_entry *e;
	int n, cap;
	struct stats_target *t;
	int nt, capt;
};

void stats_snap_init(struct stats_snap *s);
void stats_snap_free(struct stats_snap *s);
/* Append (copy).  0 or -ENOMEM. */
struct stats_entry *stats_snap_add(struct stats_snap *s, enum stats_kind kind);
struct stats_target *stats_snap_add_target(struct stats_snap *s, int tid, const char *name,
					   int nsessions);
int stats_target_add_initiator(struct stats_target *t, const char *name);
/* Fill e->c and e->age_ns from o (at snapshot time `now`). */
void stats_entry_fill(struct stats_entry *e, const struct stats_obj *o, uint64_t now_ns);

/* The raw snapshot (daemon -> CLI, line based, see stats.c); parse
 * validates everything: 0, or -1 with a message. */
void stats_snap_write_raw(FILE *out, const struct stats_snap *s);
int stats_snap_parse_raw(const char *buf, size_t len, struct stats_snap *s, char *err,
			 size_t errlen);

/* cur - prev, entry by entry (an entry absent from prev, or recreated since,
 * counts whole).  Targets are taken from cur.  0 or -ENOMEM. */
int stats_snap_diff(const struct stats_snap *cur, const struct stats_snap *prev,
		    struct stats_snap *out);

/* Renderers.  interval_s > 0: s holds deltas over that interval (rates =
 * delta / interval); 0: s holds totals (rates = total / lifetime). */
void stats_render_text(FILE *out, const struct stats_snap *s, double interval_s);
void stats_render_json(FILE *out, const struct stats_snap *s, double interval_s);
/* Prometheus text exposition format 0.0.4 (totals; counters and
 * histograms, so that rate() and histogram_quantile() work). */
void stats_render_prometheus(FILE *out, const struct stats_snap *s);

/* ---- Prometheus endpoint (control plane) ----
 * The collector fills a snapshot of everything (set by control.c).  */
#define STATS_SEL_ALL      (-1)   /* every target and export */
#define STATS_SEL_TARGETS  (-2)   /* every target, no exports */
#define STATS_SEL_EXPORTS  (-3)   /* every export, no targets */
/* sel: a tid (>= 0: that target only) or STATS_SEL_*.  0 or -errno. */
typedef int (*stats_collect_fn)(struct stats_snap *s, int sel);
void stats_set_collector(stats_collect_fn fn);
int stats_collect(struct stats_snap *s, int sel);
/* Listen on "host:port" ("127.0.0.1:9105", "[::1]:9105") and serve
 * GET /metrics from a small thread with a blocking accept.  0 or -errno
 * (logged). */
int stats_prometheus_start(const char *hostport);
void stats_prometheus_stop(void);

#endif
