/* iscsi_internal.h - shared between the iSCSI fabric's files.  Not a public
 * interface: the daemon only sees iscsi.h.
 *
 *   iscsi_seq.c        pure sequencing logic (CmdSN window, residuals, Data-Out
 *                      / R2T bookkeeping, ITT table) - unit tested
 *   iscsi_conn.c       sockets on io_uring: accept, the resumable PDU reader,
 *                      the batched sender, timers, connection teardown
 *   iscsi_login.c      login phase (RFC 7143 6, 11.12/11.13)
 *   iscsi_session.c    sessions: registry, reinstatement, CmdSN ordering, TMF
 *   iscsi_task.c       SCSI Command / Data-Out / R2T / Data-In / Response
 *   iscsi_discovery.c  Text requests, SendTargets (RFC 7143 11.10/11.11, App. C)
 *
 * Threading: a connection (and its session: MaxConnections is 1) lives on the
 * reactor that accepted it; nothing here is touched from another thread
 * except the global session table in iscsi_session.c (mutex) and the
 * reactor-state counters read by iscsi_reactor_idle().
 */
#ifndef RS_ISCSI_INTERNAL_H
#define RS_ISCSI_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../core/reactor.h"
#include "iscsi.h"
#include "iscsi_chap.h"
#include "iscsi_params.h"
#include "iscsi_pdu.h"
#include "registry.h"
#include "scsi.h"

#define ISCSI_LOGIN_DSL       8192u          /* RFC 7143 13.12: until negotiated */
#define ISCSI_MAX_EDTL        (16u << 20)    /* larger writes: CHECK CONDITION */
#define ISCSI_TEXT_MAX        (64u * 1024)   /* accumulated login/text request */
#define ISCSI_LOGIN_TIMEOUT_MS 15000u
#define ISCSI_MAX_R2T_SLOTS   8u             /* cap on MaxOutstandingR2T we track */
#define ISCSI_TX_INLINE       (2 + SCSI_SENSE_MAX + 4)
#define ISCSI_TX_IOV          64u
#define ISCSI_STAGE_BUF       (64u * 1024)
#define ISCSI_ITT_BUCKETS     64u

/* =================================================================
 * Pure sequencing logic (iscsi_seq.c)
 * ================================================================= */

/* RFC 7143 4.2.2.1: a non-immediate command is acceptable only with
 * ExpCmdSN <= CmdSN <= MaxCmdSN (serial arithmetic). */
static inline bool iscsi_cmdsn_in_window(uint32_t exp, uint32_t max, uint32_t sn)
{
	return iscsi_sn_le(exp, sn) && iscsi_sn_le(sn, max);
}

/* MaxCmdSN to advertise: a window of depth commands, shrunk by the commands
 * already delivered but not yet answered so that memory stays bounded.  It
 * never moves backwards: delivering a command raises ExpCmdSN and active
 * together, answering one lowers active only. */
uint32_t iscsi_max_cmdsn(uint32_t exp, uint32_t depth, uint32_t active);

/* Residual of RFC 7143 11.4.5: EDTL versus what the command wanted to move.
 * Sets *flags to ISCSI_RSP_OVERFLOW/UNDERFLOW (or 0) and *resid. */
void iscsi_residual(uint32_t edtl, uint32_t want, uint8_t *flags, uint32_t *resid);

/* One solicited Data-Out sequence (an R2T we sent). */
struct iscsi_r2t {
	uint32_t ttt;
	uint32_t offset, len;       /* the burst we asked for */
	uint32_t received;          /* bytes of it arrived (in order) */
	uint32_t datasn;            /* next expected DataSN (from 0, RFC 7143 11.7.5) */
	bool active;
};

/* Data-Out bookkeeping of one write command (RFC 7143 4.2.5 / 11.7 / 11.8),
 * assuming DataPDUInOrder=Yes and DataSequenceInOrder=Yes, which is what we
 * negotiate. */
struct iscsi_xfer {
	uint32_t edtl;              /* bytes to collect */
	uint32_t max_burst;         /* MaxBurstLength */
	uint32_t max_r2t;           /* MaxOutstandingR2T (capped to ISCSI_MAX_R2T_SLOTS) */
	uint32_t unsol_len;         /* unsolicited bytes expected incl. immediate data */
	uint32_t unsol_next;        /* next unsolicited offset expected */
	uint32_t unsol_datasn;      /* next DataSN of the unsolicited sequence */
	bool unsol_done;            /* F seen (or nothing unsolicited beyond immediate) */
	uint32_t next_offset;       /* where the next R2T starts */
	uint32_t received;          /* total bytes collected */
	uint32_t r2tsn;             /* next R2TSN */
	uint32_t nr_r2t;            /* outstanding R2Ts */
	uint32_t r2t_sent;          /* total R2Ts sent (ExpDataSN in the response) */
	struct iscsi_r2t r2t[ISCSI_MAX_R2T_SLOTS];
};

/* Set up for a command.  immediate = bytes of immediate data that came with
 * the command; unsolicited = InitialR2T=No (FirstBurstLength applies). */
void iscsi_xfer_init(struct iscsi_xfer *x, uint32_t edtl, uint32_t immediate,
		     bool initial_r2t, uint32_t first_burst, uint32_t max_burst,
		     uint32_t max_r2t);
static inline bool iscsi_xfer_complete(const struct iscsi_xfer *x)
{
	return x->received >= x->edtl;
}
/* Next R2T to send if allowed (window of max_r2t); fills *out and returns
 * true; ttt is the tag the caller picked for it. */
bool iscsi_xfer_next_r2t(struct iscsi_xfer *x, uint32_t ttt, struct iscsi_r2t *out);

enum iscsi_dout_verdict {
	ISCSI_DOUT_OK = 0,
	ISCSI_DOUT_BAD_TTT = -1,     /* no such R2T / unsolicited not allowed */
	ISCSI_DOUT_BAD_DATASN = -2,  /* DataSN out of sequence */
	ISCSI_DOUT_BAD_OFFSET = -3,  /* buffer offset / length outside the burst or EDTL */
	ISCSI_DOUT_BAD_FINAL = -4,   /* F bit where the sequence is not complete */
};
/* Validate a Data-Out header before its payload is read; on OK the payload
 * belongs at [offset, offset+len) and the bookkeeping is advanced.
 * *seq_done is set when the PDU completed an R2T sequence (room for the
 * next R2T). */
enum iscsi_dout_verdict iscsi_xfer_data_out(struct iscsi_xfer *x, uint32_t ttt, uint32_t datasn,
					    uint32_t offset, uint32_t len, bool final,
					    bool *seq_done);

/* Intrusive ITT hash table (tasks of one connection). */
struct iscsi_itt_node {
	uint32_t itt;
	struct iscsi_itt_node *next;
};
struct iscsi_itt_table {
	struct iscsi_itt_node *b[ISCSI_ITT_BUCKETS];
	unsigned count;
};
void iscsi_itt_add(struct iscsi_itt_table *t, struct iscsi_itt_node *n);
struct iscsi_itt_node *iscsi_itt_find(struct iscsi_itt_table *t, uint32_t itt);
bool iscsi_itt_del(struct iscsi_itt_table *t, struct iscsi_itt_node *n);

/* =================================================================
 * Runtime objects
 * ================================================================= */

struct iscsi_conn;
struct iscsi_tmf;

/* A PDU waiting to be sent.  hdr holds the BHS plus its digest so that the
 * two go out in one iovec. */
struct iscsi_tx {
	struct iscsi_tx *next;
	uint8_t hdr[ISCSI_BHS_LEN + 4];
	uint32_t hdr_len;
	const uint8_t *data;        /* payload (task data, inline or owned) */
	uint32_t dlen;
	uint8_t trailer[8];         /* padding + data digest */
	uint32_t trailer_len;
	void *owned;                /* free() after sending */
	struct iscsi_task *task;    /* reference released after sending */
	uint8_t inl[ISCSI_TX_INLINE];
};

enum iscsi_task_state {
	TASK_HELD,       /* out of CmdSN order: waiting for the gap to fill */
	TASK_DATA,       /* delivered, collecting Data-Out */
	TASK_EXEC,       /* in the SCSI core / backend */
	TASK_DONE,       /* response queued; waiting for tx references */
};

struct iscsi_task {
	struct scsi_cmd cmd;        /* must stay first-class: container_of from cmd */
	struct iscsi_conn *conn;
	struct iscsi_itt_node node; /* ITT lookup (node.itt) */
	struct iscsi_task *next;    /* held list / free list */
	struct iscsi_task *all_next, *all_prev; /* every live task of the conn */
	enum iscsi_task_state state;
	uint32_t cmdsn;
	uint32_t edtl;
	uint64_t lun_raw;
	uint8_t flags;              /* SCSI Command byte 1 (R/W/attr) */
	bool immediate;
	bool counted;               /* counted in sess active (MaxCmdSN window) */
	bool in_table;              /* in the ITT table */
	bool aborted;               /* suppress the response (TMF / connection loss) */
	bool tombstone;             /* only holds a CmdSN slot */
	bool prefail;               /* answer with the prepared status, never execute */
	bool has_lu_ref;
	uint8_t pf_status, pf_key, pf_asc, pf_ascq;
	struct iscsi_tmf *tmf;      /* TMF waiting for this task's I/O */
	unsigned refs;              /* tx PDUs pointing at cmd.data_in + 1 while live */
	uint8_t *buf;               /* Data-Out buffer (bstore_buf_alloc) */
	uint32_t buf_len;
	struct iscsi_xfer xfer;
	uint32_t datain_sn;         /* Data-In PDUs sent */
	uint8_t ext_cdb[16];        /* AHS extended CDB bytes beyond 16 */
	uint8_t ext_cdb_len;
};

struct iscsi_tmf {
	struct iscsi_tmf *next;
	uint32_t itt;
	uint8_t response;
	unsigned waiting;           /* aborted tasks whose I/O is still running */
	bool cold_reset;
};

/* The session: with MaxConnections=1 it is embedded in its connection. */
struct iscsi_session {
	bool ffp;                   /* login complete, full feature phase */
	enum iscsi_session_type type;
	struct iscsi_target *target; /* reference (normal sessions) */
	struct scsi_nexus nexus;
	uint8_t isid[6];
	uint16_t tsih;
	char initiator[REG_NAME_MAX];
	bool registered;            /* reg_session_add done */
	bool in_table;              /* global session table */
	uint32_t exp_cmdsn;
	uint32_t max_cmdsn;         /* last advertised (monotonic) */
	uint32_t depth;
	uint32_t active;            /* delivered non-immediate commands unanswered */
	struct iscsi_task *held;    /* sorted by CmdSN */
	unsigned nheld;
	struct iscsi_params p;      /* negotiated */
};

enum rx_state { RX_BHS, RX_AHS, RX_HDIG, RX_DATA, RX_TRAILER };

enum conn_state { CONN_LOGIN, CONN_FFP, CONN_CLOSING };

struct iscsi_reactor;

struct iscsi_login {
	bool started;
	struct iscsi_bhs first;     /* leading request (ISID, TSIH, CID ...) */
	uint16_t tsih_req;
	uint16_t cid;
	uint32_t itt;
	int stage;                  /* current stage (CSG we expect) */
	bool identity_checked;
	struct iscsi_target *target;
	bool failed;

	/* Security stage (RFC 7143 6.3, 12.1): where the authentication is. */
	enum login_auth {
		AUTH_START,         /* nothing negotiated yet */
		AUTH_CHAP_A,        /* AuthMethod=CHAP agreed: waiting for CHAP_A */
		AUTH_CHAP_R,        /* challenge sent: waiting for CHAP_N/CHAP_R */
		AUTH_DONE,          /* None agreed or the initiator authenticated */
	} auth;
	bool auth_required;         /* an incoming CHAP account is bound */
	bool auth_method_seen;
	struct chap_session chap;
};

struct iscsi_conn {
	struct iscsi_reactor *ir;
	struct reactor *r;
	struct iscsi_conn *prev, *next;  /* reactor's connection list */
	int fd;
	enum conn_state state;
	uint64_t id;                /* daemon-unique (logging, kill lookups) */
	unsigned busy;              /* callbacks running: defer freeing */
	bool recv_direct;           /* armed recv targets dst, not the staging buffer */
	struct iscsi_task *recv_pin; /* task whose buffer a direct recv writes into */
	bool tx_dead;               /* send failed: drop instead of sending */
	struct sockaddr_storage peer;
	char peer_str[64];          /* "ip:port" */
	uint16_t tpgt;

	/* ---- reader ---- */
	struct rs_op recv_op;
	bool recv_armed;
	bool rx_drained;            /* last recv did not fill its buffer: socket likely empty */
	uint32_t recv_len;          /* size of the armed recv */
	uint32_t rcvlowat;          /* SO_RCVLOWAT in force (0: the default, 1) */
	bool rx_stopped;            /* EOF/error or closing: no more reads */
	uint8_t *stage;             /* staging buffer */
	uint32_t rpos, wpos;
	enum rx_state rx;
	struct iscsi_bhs bhs;
	uint8_t ahs[1024];
	uint32_t ahs_len;
	uint8_t hdig[4];
	uint32_t dlen;              /* data segment length (without padding) */
	uint8_t *dst;               /* where the current segment goes (NULL: discard) */
	uint32_t want, got;         /* bytes of the current segment */
	uint8_t trailer[8];
	uint32_t crc;               /* running data digest */
	uint8_t *rx_data_ptr;       /* data segment the digest covers */
	uint8_t *rxdata;            /* buffer for non-SCSI data segments */
	uint32_t rxdata_cap;
	uint32_t max_recv_dsl;      /* what we accept now (8192 during login) */
	uint8_t rx_reject;          /* reject reason decided at header time (0: none) */
	struct iscsi_task *rx_task; /* task owning the current data segment */
	bool rx_task_is_cmd;        /* segment is immediate data of a new command */
	bool rx_bad_dout;           /* Data-Out failed validation: reject after data */
	bool rx_seq_done;           /* the Data-Out completed an R2T sequence */

	/* ---- sender ---- */
	struct rs_op send_op;
	bool send_armed;
	struct iscsi_tx *txq, *txq_tail;
	uint32_t tx_off;            /* bytes of txq already sent */
	struct msghdr msg;
	struct iovec iov[ISCSI_TX_IOV];
	struct iscsi_tx *tx_free;
	bool close_after_send;
	const char *close_reason;   /* for the log when close_after_send fires */

	/* ---- protocol state ---- */
	uint32_t statsn;
	uint32_t exp_statsn;
	uint32_t login_cmdsn;
	bool hdigest, ddigest;      /* in force (after login) */
	struct iscsi_neg neg;
	struct iscsi_login login;
	struct iscsi_session sess;
	uint8_t *text_acc;          /* login/text request assembled across C bits */
	uint32_t text_acc_len;
	char *text_rsp;             /* long Text response being continued */
	uint32_t text_rsp_len, text_rsp_off, text_rsp_ttt;
	uint32_t next_ttt;

	/* ---- tasks ---- */
	struct iscsi_itt_table itts;
	struct iscsi_task *tasks;   /* all live tasks */
	unsigned ntasks;
	struct iscsi_task *task_free;
	unsigned ntask_free;
	struct iscsi_tmf *tmfs;     /* TMFs waiting for aborted I/O */
	bool logout_pending;
	uint32_t logout_itt;
	uint64_t logout_deadline_ms; /* we asked for a logout (Async event 1): drop after */

	/* ---- timers ---- */
	uint64_t created_ms;
	uint64_t last_rx_ms;
	bool ping_out;
	uint32_t ping_ttt;
	uint64_t ping_sent_ms;
};

/* Per-reactor fabric state. */
struct iscsi_reactor {
	struct reactor *r;
	struct iscsi_conn *conns;
	_Atomic unsigned nconns;
	_Atomic unsigned naccept;   /* armed multishot accepts */
	struct iscsi_listener *listeners;
	struct rs_ticker ticker;
	bool ticker_on;
	bool shutting_down;
};

/* Global settings from iscsi_init(). */
struct iscsi_globals {
	struct iscsi_settings s;
	struct iscsi_portal *portals;
	int nportals;
};
extern struct iscsi_globals iscsi_g;

/* ---- iscsi_conn.c ---- */
struct iscsi_tx *conn_tx_get(struct iscsi_conn *c);
/* Queue a PDU: stamps StatSN (advancing it when status is true), ExpCmdSN
 * and MaxCmdSN, computes digests and starts sending. */
void conn_tx_queue(struct iscsi_conn *c, struct iscsi_tx *tx, bool status);
void conn_send_reject(struct iscsi_conn *c, uint8_t reason, const struct iscsi_bhs *rejected);
void conn_close(struct iscsi_conn *c, const char *why);
/* Called whenever a task or send finished: frees a closing conn when idle,
 * sends a pending logout response. */
void conn_check(struct iscsi_conn *c);
uint32_t conn_new_ttt(struct iscsi_conn *c);
void conn_set_ffp(struct iscsi_conn *c);
/* The administrator drops the session (target deleted with --force, or
 * --mode conn --op delete): ask the initiator to log out (RFC 7143 11.9.1,
 * AsyncEvent 1) and close the connection if it has not done so in time.
 * Connections not in full feature phase are closed at once. */
void conn_request_logout(struct iscsi_conn *c);

/* ---- iscsi_login.c ---- */
void login_handle(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen);

/* ---- iscsi_session.c ---- */
/* Window bookkeeping: returns the MaxCmdSN to stamp now. */
uint32_t sess_max_cmdsn(struct iscsi_session *s);
enum sn_verdict { SN_DROP, SN_NOW, SN_LATER };
/* For a non-immediate PDU: is its CmdSN acceptable, and is it next? */
enum sn_verdict sess_cmdsn_check(struct iscsi_session *s, uint32_t cmdsn);
/* A CmdSN has been consumed in order (ExpCmdSN++), deliver what waited. */
void sess_cmdsn_advance(struct iscsi_conn *c);
/* Keep a task (or a tombstone) until its CmdSN becomes next. */
void sess_hold(struct iscsi_conn *c, struct iscsi_task *t);
/* Consume a CmdSN of a PDU handled out of band (rejected command,
 * non-SCSI request): now or via a tombstone. */
void sess_consume_cmdsn(struct iscsi_conn *c, uint32_t cmdsn);
/* Login complete: register (global table, registry), reinstatement. */
int sess_start(struct iscsi_conn *c);
void sess_stop(struct iscsi_conn *c);
void sess_kill_others_of_target(struct iscsi_target *t, uint64_t except_conn);
void tmf_handle(struct iscsi_conn *c, const struct iscsi_bhs *h);
void tmf_task_finished(struct iscsi_conn *c, struct iscsi_task *t);
uint16_t sess_new_tsih(void);
bool sess_tsih_exists(const char *initiator, const uint8_t *isid, uint16_t tsih);
void sess_set_hooks(void);

/* ---- iscsi_task.c ---- */
struct iscsi_task *task_alloc(struct iscsi_conn *c);
/* SCSI Command header received (data not yet): create the task, decide
 * where immediate data goes.  Returns the destination (may be NULL). */
void task_cmd_header(struct iscsi_conn *c);
/* All of the command PDU (incl. immediate data) received. */
void task_cmd_complete(struct iscsi_conn *c, bool digest_ok);
void task_dout_header(struct iscsi_conn *c);
void task_dout_complete(struct iscsi_conn *c, bool digest_ok);
/* The task's CmdSN came up: start collecting data / execute. */
void task_deliver(struct iscsi_conn *c, struct iscsi_task *t);
/* Abort (TMF or connection loss): returns true if its I/O is still running. */
bool task_abort(struct iscsi_conn *c, struct iscsi_task *t);
void task_put(struct iscsi_task *t);
void task_free_cache(struct iscsi_conn *c);

/* ---- iscsi_discovery.c ---- */
void text_handle(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen);

#endif
