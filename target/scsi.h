/* scsi.h - the SCSI core: SPC-4 / SBC-3 block device emulation.
 *
 * The fabric (iSCSI today) hands the core a struct scsi_cmd with the CDB, the
 * logical unit it addresses (or NULL) and any Data-Out payload it already
 * collected, then calls scsi_cmd_execute().  The core never sees a PDU; the
 * backend never sees a CDB.  Completion is one callback, cmd->done(cmd), run
 * on cmd->r's thread (possibly from inside scsi_cmd_execute() for commands
 * that need no I/O).  After done() the fabric reads status/sense/data_in and
 * finally calls scsi_cmd_release().
 *
 * Sense is fixed format (SPC-4 4.5.3), built in one place from a
 * (key, asc, ascq) triple.
 */
#ifndef RS_SCSI_H
#define RS_SCSI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../backend/backend.h"
#include "../core/reactor.h"

/* SAM-5 status codes */
#define SAM_STAT_GOOD                 0x00
#define SAM_STAT_CHECK_CONDITION      0x02
#define SAM_STAT_CONDITION_MET        0x04
#define SAM_STAT_BUSY                 0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL        0x28
#define SAM_STAT_ACA_ACTIVE           0x30
#define SAM_STAT_TASK_ABORTED         0x40

/* sense keys (SPC-4 table 48) */
#define SK_NO_SENSE        0x0
#define SK_RECOVERED_ERROR 0x1
#define SK_NOT_READY       0x2
#define SK_MEDIUM_ERROR    0x3
#define SK_HARDWARE_ERROR  0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION  0x6
#define SK_DATA_PROTECT    0x7
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE      0xe

#define SCSI_SENSE_MAX 96
#define SCSI_CDB_MAX   32

/* An I_T nexus (SAM-5 4.7): the initiator port as a printable name
 * ("iqn...,i,0x<isid>") and a daemon-unique id used for UA/PR bookkeeping. */
struct scsi_nexus {
	uint64_t id;
	char initiator_port[300];
	uint16_t target_port_id;   /* relative target port identifier (1-based) */
	/* The SCSI target port name (SPC-4 7.8.6.2, RFC 7143 10.1.4.3 / 4.2.7):
	 * "<target iqn>,t,0x<tpgt as 4 hex digits>".  The portal group tag is
	 * also target_port_id, so each portal group is one target port and one
	 * target port group (ALUA). */
	char target_port[300];
};

/* A pending unit attention for one nexus (SAM-5 5.14). */
struct scsi_ua {
	uint64_t nexus_id;
	uint8_t asc, ascq;
	struct scsi_ua *next;
};

struct scsi_lu_params {
	const char *vendor;        /* default "RINGSTOR" */
	const char *product;       /* default "VIRTUAL-DISK" */
	const char *revision;      /* default "0001" */
	const char *serial;        /* NULL: derived from naa_seed */
	const char *naa_seed;      /* e.g. "<target iqn>/<lun>"; hashed into NAA + serial */
	bool thin_provisioning;    /* UNMAP / WRITE SAME unmap / LBPME (needs a discard-capable store) */
	bool readonly;
	/* Removable medium (INQUIRY RMB=1): START STOP UNIT with LOEJ=1 ejects
	 * and loads it, PREVENT ALLOW MEDIUM REMOVAL can lock it in (SBC-3
	 * 5.25, SPC-4 6.13).  What virtual CD/USB-stick style LUNs need. */
	bool removable;
};

/* One I_T nexus that asked PREVENT ALLOW MEDIUM REMOVAL to prevent removal
 * (SPC-4 6.13: the prevention is per I_T nexus; the medium stays locked while
 * any nexus holds one). */
struct scsi_prevent {
	uint64_t nexus_id;
	struct scsi_prevent *next;
};

struct scsi_pr_state;
struct scsi_cmd;
struct scsi_range_lock;

/* One command's claim on an LBA range in its LU's range lock (scsi.c).
 * COMPARE AND WRITE, ORWRITE and WRITE ATOMIC take their range exclusively;
 * other writes share with each other, reads share with everything but an
 * exclusive claim (SBC-3 5.2 / SBC-4 4.29: those commands are atomic with
 * respect to every other command).  Core private. */
struct scsi_rl_node {
	struct scsi_rl_node *prev, *next;
	struct scsi_range_lock *lock;   /* the lock this claim is in (held/queued) */
	uint64_t lba, end;         /* [lba, end) */
	uint8_t mode;              /* SCSI_RL_* */
	bool held;                 /* granted: released by scsi_cmd_complete() */
	bool queued;               /* waiting: resume() runs on cmd->r when granted */
	void (*resume)(struct scsi_cmd *cmd);
	struct scsi_rl_node *grant_next;   /* scratch link while being resumed */
};

struct scsi_range_lock {
	pthread_mutex_t mu;
	struct scsi_rl_node *active;                /* granted claims */
	struct scsi_rl_node *wait_head, *wait_tail; /* FIFO of waiting claims */
};

struct scsi_lu {
	uint64_t lun;
	struct bstore *bs;         /* owned: closed when the last ref goes */
	uint32_t block_size;       /* logical block, bytes */
	_Atomic uint64_t nr_blocks;

	char vendor[9], product[17], revision[5];
	char serial[33];
	uint8_t naa[16];           /* NAA 6 (IEEE Registered Extended) designator */

	_Atomic bool write_cache;  /* caching mode page WCE; false => every write is FUA */
	bool readonly;
	bool removable;            /* RMB=1: the medium can be ejected (scsi_lu_params) */
	_Atomic bool no_medium;    /* removable medium ejected: NOT READY 3A/00 */
	/* Some I_T nexus prevents medium removal (summary of `prevent`, kept
	 * under `lock`; read without it by the registry's show). */
	bool removal_prevented;
	bool thin;                 /* thin provisioned: params asked for it and the store can discard */
	_Atomic bool swp;          /* control mode page SWP: software write protect (SPC-4 7.5.8) */
	struct scsi_range_lock rl; /* atomic commands vs. everything else (scsi.c) */
	struct scsi_lu *live_next; /* global list of live LUs (scsi_lu_lookup_naa) */

	atomic_int refcnt;
	pthread_mutex_t lock;      /* protects ua_list, prevent, removal_prevented */
	struct scsi_ua *ua_list;
	struct scsi_prevent *prevent; /* nexuses preventing medium removal */

	/* Persistent reservations + RESERVE(6) state (target/scsi_pr.c); NULL
	 * until first used.  Has its own lock. */
	struct scsi_pr_state *pr;
};

struct scsi_cmd {
	/* ---- set by the fabric before scsi_cmd_execute() ---- */
	uint8_t cdb[SCSI_CDB_MAX];
	uint8_t cdb_len;
	uint64_t lun;              /* LUN number as addressed (SAM-5 4.6 decoded) */
	struct scsi_lu *lu;        /* NULL: no such LU (the core answers per SPC-4) */
	const struct scsi_nexus *nexus;
	struct reactor *r;
	uint8_t task_attr;         /* SIMPLE/ORDERED/HEAD/ACA (informational) */
	uint8_t *data_out;         /* Data-Out payload collected by the fabric */
	uint32_t data_out_len;
	uint32_t expected_len;     /* initiator's Expected Data Transfer Length */
	void (*done)(struct scsi_cmd *cmd);
	void *fabric_priv;

	/* ---- set by the core ---- */
	uint8_t status;            /* SAM_STAT_* */
	uint8_t sense[SCSI_SENSE_MAX];
	uint8_t sense_len;
	uint8_t *data_in;          /* Data-In payload, owned by the core */
	uint32_t data_in_len;      /* bytes the command produced (before EDTL clipping) */
	/* Bytes the CDB asks to move in its data direction (0 if none).  The fabric
	 * computes iSCSI residuals from expected_len vs xfer_len (RFC 7143 11.4.5). */
	uint32_t xfer_len;
	bool xfer_is_write;

	/* ---- core private ---- */
	struct bio bio;
	int stage;
	uint64_t lba;
	uint32_t nr_blocks;
	bool fua;
	void *scratch;
	struct scsi_rl_node rl;
};

/* Execute the command; completion through cmd->done(cmd) exactly once. */
void scsi_cmd_execute(struct scsi_cmd *cmd);
/* Free what the core allocated for cmd (data_in, scratch).  Safe to call twice. */
void scsi_cmd_release(struct scsi_cmd *cmd);

/* Set CHECK CONDITION with fixed-format sense (SPC-4 4.5.3). */
void scsi_set_sense(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq);
/* Same, with INFORMATION / SKSV field pointer variants for ILLEGAL REQUEST:
 * field pointer (byte, bit) into the CDB (cd=true) or parameter list. */
void scsi_set_sense_field(struct scsi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq,
			  bool cd, uint16_t byte, int bit);
/* Build fixed-format sense into buf (>= 18 bytes); returns its length. */
unsigned scsi_build_sense(uint8_t *buf, uint8_t key, uint8_t asc, uint8_t ascq);

/* Map a backend -errno to sense (EIO -> MEDIUM ERROR 11/00, ENOSPC -> DATA
 * PROTECT 27/07 SPACE ALLOCATION FAILED WRITE PROTECT, EROFS -> 27/00 ...). */
void scsi_set_errno_sense(struct scsi_cmd *cmd, int err, bool is_write);

/* Logical units.  create: takes ownership of bs on success. */
struct scsi_lu *scsi_lu_create(uint64_t lun, struct bstore *bs, const struct scsi_lu_params *p);
void scsi_lu_get(struct scsi_lu *lu);
void scsi_lu_put(struct scsi_lu *lu);
/* Queue a unit attention for one nexus; it is reported (CHECK CONDITION,
 * UNIT ATTENTION) on that nexus's next command that is not INQUIRY, REPORT
 * LUNS or REQUEST SENSE (SAM-5 5.14, SPC-4 7.x).  The fabric, which knows the
 * sessions, calls it for each nexus concerned: LUN RESET (29/03 to the other
 * nexuses), capacity change (2A/09), REPORTED LUNS DATA HAS CHANGED (3F/0E),
 * mode parameters changed (2A/01). */
void scsi_lu_ua_add(struct scsi_lu *lu, uint64_t nexus_id, uint8_t asc, uint8_t ascq);
/* Drop every pending UA of a nexus (nexus lost, e.g. session closed). */
void scsi_lu_ua_clear_nexus(struct scsi_lu *lu, uint64_t nexus_id);
/* SPC-4 6.13: a medium removal prevention ends with the I_T nexus that set
 * it (nexus loss, logout) and with every LOGICAL UNIT RESET or target reset
 * (SAM-5 6.3).  nexus_id: that nexus's preventions; SCSI_NEXUS_ALL: all of
 * them (resets).  The fabric calls it next to scsi_lu_ua_clear_nexus(). */
#define SCSI_NEXUS_ALL UINT64_MAX
void scsi_lu_prevent_clear(struct scsi_lu *lu, uint64_t nexus_id);
/* Find a live LU by its NAA designator (EXTENDED COPY target descriptors,
 * SPC-4 6.4.5).  Returns it with a reference (scsi_lu_put), or NULL. */
struct scsi_lu *scsi_lu_lookup_naa(const uint8_t naa[16]);

/* Re-read the backend size.  Returns 1 if it changed (the caller then queues
 * 2A/09 for every nexus), 0 if not, -errno on error. */
int scsi_lu_refresh_capacity(struct scsi_lu *lu);

/* The fabric supplies REPORT LUNS data: the core asks through this hook,
 * set once at startup.  Fills up to max LUN numbers visible to the nexus, returns
 * how many exist in total. */
extern int (*scsi_report_luns_hook)(const struct scsi_cmd *cmd, uint64_t *luns, int max);

/* Optional (NULL: ignored).  Called from the command's reactor thread when a
 * command changed state of cmd->lu that the *other* I_T nexuses must learn
 * through a unit attention: today MODE SELECT changing a mode page (SPC-4
 * 7.5.x: MODE PARAMETERS CHANGED, asc/ascq 2A/01).  The fabric queues
 * scsi_lu_ua_add(cmd->lu, id, asc, ascq) for every nexus with access to the
 * LU except cmd->nexus. */
extern void (*scsi_lu_event_hook)(const struct scsi_cmd *cmd, uint8_t asc, uint8_t ascq);

/* Optional (NULL: the command's own target port group only).  ALUA (SPC-4
 * 5.15): the target port groups through which cmd->lu is reachable.  One
 * group per portal group tag, group id == tag == relative target port id.
 * Fills up to max group ids (ascending) and returns how many exist. */
extern int (*scsi_tpg_list_hook)(const struct scsi_cmd *cmd, uint16_t *tpg_ids, int max);

#endif
