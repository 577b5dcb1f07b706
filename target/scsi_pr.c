/* scsi_pr.c - SCSI-3 persistent reservations (SPC-4 5.13, 6.15, 6.16) and
 * SPC-2 RESERVE(6)/RELEASE(6) reservations.
 *
 * Like LIO's target_core_pr.c this file owns the whole reservation state of
 * a logical unit: registrations (one reservation key per I_T nexus), the
 * persistent reservation (type + holder), the PRgeneration counter, the
 * APTPL flag with its on-disk copy, and the legacy SPC-2 reservation.
 *
 * Identity.  A registration belongs to an I_T nexus, i.e. an (initiator
 * port, target port) pair.  We key it by the initiator port *name* (the
 * iSCSI TransportID format 01b string "iqn...,i,0x<isid>", or just the node
 * name for format 00b TransportIDs, which covers every ISID) and the
 * relative target port identifier (or every target port for ALL_TG_PT=1).
 * Names survive session reinstatement and daemon restarts (APTPL); the
 * daemon-unique nexus id seen most recently on a registration is cached
 * only to address unit attentions.  Conditions for a registration whose
 * nexus has not been seen yet (restored from disk, or created through
 * SPEC_I_PT / REGISTER AND MOVE) wait in a by-name pending list and are
 * queued when that nexus sends its first command.
 *
 * Locking: struct scsi_pr_state has one mutex.  scsi_lu_ua_add() is called
 * with it held (lock order pr->lock -> lu->lock; the UA code never calls
 * back into this file).  `active` is an atomic summary (a reservation of
 * either kind exists, or UAs are pending by name) so that the per-command
 * check costs one load on an unreserved LU.
 */
#include "scsi_pr.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/workpool.h"
#include "scsi_internal.h"

/* Operation codes (SPC-4 / SPC-2 / SBC-3) this file looks at. */
#define PR_OP_TEST_UNIT_READY  0x00
#define PR_OP_REQUEST_SENSE    0x03
#define PR_OP_READ_6           0x08
#define PR_OP_INQUIRY          0x12
#define PR_OP_RESERVE_6        0x16
#define PR_OP_RELEASE_6        0x17
#define PR_OP_MODE_SENSE_6     0x1a
#define PR_OP_START_STOP_UNIT  0x1b
#define PR_OP_RECEIVE_DIAG     0x1c
#define PR_OP_PREVENT_ALLOW    0x1e
#define PR_OP_READ_CAPACITY_10 0x25
#define PR_OP_READ_10          0x28
#define PR_OP_VERIFY_10        0x2f
#define PR_OP_PRE_FETCH_10     0x34
#define PR_OP_READ_DEFECT_10   0x37
#define PR_OP_READ_BUFFER      0x3c
#define PR_OP_LOG_SENSE        0x4d
#define PR_OP_RESERVE_10       0x56
#define PR_OP_RELEASE_10       0x57
#define PR_OP_MODE_SENSE_10    0x5a
#define PR_OP_PR_IN            0x5e
#define PR_OP_PR_OUT           0x5f
#define PR_OP_ACCESS_CTRL_IN   0x86
#define PR_OP_ACCESS_CTRL_OUT  0x87
#define PR_OP_READ_16          0x88
#define PR_OP_READ_ATTRIBUTE   0x8c
#define PR_OP_VERIFY_16        0x8f
#define PR_OP_PRE_FETCH_16     0x90
#define PR_OP_SAI_16           0x9e
#define   PR_SAI_READ_CAPACITY_16 0x10
#define   PR_SAI_GET_LBA_STATUS   0x12
#define PR_OP_REPORT_LUNS      0xa0
#define PR_OP_SECURITY_IN      0xa2
#define PR_OP_MAINTENANCE_IN   0xa3
#define PR_OP_READ_12          0xa8
#define PR_OP_SAI_12           0xab
#define   PR_SAI_READ_MEDIA_SERIAL 0x01
#define PR_OP_VERIFY_12        0xaf
#define PR_OP_READ_DEFECT_12   0xb7

/* PERSISTENT RESERVE IN service actions (SPC-4 6.15.1). */
#define PRIN_READ_KEYS        0x00
#define PRIN_READ_RESERVATION 0x01
#define PRIN_REPORT_CAPS      0x02
#define PRIN_READ_FULL_STATUS 0x03

/* PERSISTENT RESERVE OUT service actions (SPC-4 6.16.2). */
#define PROUT_REGISTER          0x00
#define PROUT_RESERVE           0x01
#define PROUT_RELEASE           0x02
#define PROUT_CLEAR             0x03
#define PROUT_PREEMPT           0x04
#define PROUT_PREEMPT_ABORT     0x05
#define PROUT_REGISTER_IGNORE   0x06
#define PROUT_REGISTER_MOVE     0x07

/* Persistent reservation types (SPC-4 6.15.3, TYPE field). */
#define PR_TYPE_WE     0x1
#define PR_TYPE_EA     0x3
#define PR_TYPE_WE_RO  0x5
#define PR_TYPE_EA_RO  0x6
#define PR_TYPE_WE_AR  0x7
#define PR_TYPE_EA_AR  0x8
#define PR_SCOPE_LU    0x0

/* Additional sense codes. */
#define PR_ASC_PARAM_LIST_LENGTH  0x1a   /* /00 PARAMETER LIST LENGTH ERROR */
#define PR_ASC_INVALID_CDB        0x24   /* /00 INVALID FIELD IN CDB */
#define PR_ASC_INVALID_PARAM      0x26   /* /00 INVALID FIELD IN PARAMETER LIST */
#define PR_ASCQ_INVALID_RELEASE   0x04   /* 26/04 INVALID RELEASE OF PERSISTENT RESERVATION */
#define PR_ASC_PARAMS_CHANGED     0x2a
#define PR_ASCQ_RES_PREEMPTED     0x03   /* 2A/03 RESERVATIONS PREEMPTED */
#define PR_ASCQ_RES_RELEASED      0x04   /* 2A/04 RESERVATIONS RELEASED */
#define PR_ASCQ_REG_PREEMPTED     0x05   /* 2A/05 REGISTRATIONS PREEMPTED */
#define PR_ASC_INSUFFICIENT_RES   0x55
#define PR_ASCQ_INSUFFICIENT_REG  0x04   /* 55/04 INSUFFICIENT REGISTRATION RESOURCES */

/* Resource limits: registrations per LU (beyond: 55/04), UAs kept by name. */
#define PR_MAX_REGS     1024
#define PR_MAX_PENDING  256
#define PR_PORT_MAX     256   /* 223-byte iSCSI name + ",i,0x" + 12 hex digits + NUL */
#define PR_ISCSI_NAME_MAX 223
#define PR_FILE_MAX     (1u << 20)
#define PR_FILE_VERSION 1

struct pr_reg {
	struct pr_reg *next;
	uint64_t key;
	uint64_t nexus_id;       /* last nexus seen on this registration; 0: none yet */
	uint16_t tpid;           /* relative target port identifier */
	bool all_tg_pt;          /* registered through every target port */
	char port[PR_PORT_MAX];  /* canonical initiator port name */
};

/* A unit attention for an I_T nexus known only by name. */
struct pr_pending {
	struct pr_pending *next;
	uint16_t tpid;
	bool all_tg_pt;
	uint8_t asc, ascq;
	char port[PR_PORT_MAX];
};

struct scsi_pr_state {
	pthread_mutex_t lock;
	atomic_bool active;       /* reserved || r6_held || pending: checks needed */
	uint32_t generation;      /* PRgeneration (SPC-4 6.15.2) */
	struct pr_reg *regs;      /* in registration order */
	unsigned nregs;
	bool aptpl;               /* activate persist through power loss */

	bool reserved;            /* a persistent reservation exists */
	uint8_t type;
	struct pr_reg *holder;    /* NULL for all registrants types */

	bool r6_held;             /* SPC-2 RESERVE(6) reservation */
	uint64_t r6_nexus;

	struct pr_pending *pending;
	unsigned npending;

	uint64_t save_seq;        /* snapshots taken (under lock) */
	uint64_t saved_seq;       /* newest snapshot applied (under pr_file_lock) */
};

static char pr_state_dir[PATH_MAX] = "/var/lib/ringstor";

static const struct scsi_nexus pr_anon_nexus = { 0 };

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static bool type_valid(uint8_t type)
{
	switch (type) {
	case PR_TYPE_WE: case PR_TYPE_EA: case PR_TYPE_WE_RO:
	case PR_TYPE_EA_RO: case PR_TYPE_WE_AR: case PR_TYPE_EA_AR:
		return true;
	default:
		return false;
	}
}

static bool type_all_reg(uint8_t type)
{
	return type == PR_TYPE_WE_AR || type == PR_TYPE_EA_AR;
}

static bool type_reg_only(uint8_t type)
{
	return type == PR_TYPE_WE_RO || type == PR_TYPE_EA_RO;
}

static const struct scsi_nexus *cmd_nexus(const struct scsi_cmd *cmd)
{
	return cmd->nexus ? cmd->nexus : &pr_anon_nexus;
}

static void set_conflict(struct scsi_cmd *cmd)
{
	/* SAM-5 status: RESERVATION CONFLICT carries no sense data. */
	cmd->status = SAM_STAT_RESERVATION_CONFLICT;
	cmd->sense_len = 0;
}

static void bad_cdb(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, PR_ASC_INVALID_CDB, 0x00, true, byte, bit);
}

static void bad_param(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, SK_ILLEGAL_REQUEST, PR_ASC_INVALID_PARAM, 0x00, false, byte, bit);
}

static void pll_error(struct scsi_cmd *cmd)
{
	scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, PR_ASC_PARAM_LIST_LENGTH, 0x00);
}

/* Characters allowed in an iSCSI name (RFC 7143 4.2.7.2 after stringprep):
 * we only need to keep the file format and TransportIDs unambiguous, so
 * accept any printable non-space ASCII except the ',' separator. */
static bool name_char_ok(char c)
{
	return c > 0x20 && c < 0x7f && c != ',';
}

/* Canonicalize an initiator port name: "<name>" or "<name>,i,0x<isid hex>"
 * (SPC-4 7.6.4.6; the ISID is compared as a number and printed as 12
 * lowercase hex digits, the way our iSCSI fabric names its nexuses).
 * Returns false if s is not a valid name. */
static bool port_canon(const char *s, size_t len, char *out, size_t outsz)
{
	size_t nlen = 0, i;
	uint64_t isid = 0;

	while (nlen < len && s[nlen] != ',')
		nlen++;
	if (nlen == 0 || nlen > PR_ISCSI_NAME_MAX)
		return false;
	for (i = 0; i < nlen; i++)
		if (!name_char_ok(s[i]))
			return false;
	if (nlen == len) {
		if (nlen + 1 > outsz)
			return false;
		memcpy(out, s, nlen);
		out[nlen] = '\0';
		return true;
	}
	/* ",i,0x" SEPARATOR then the ISID in hex. */
	if (len - nlen < 6 || strncasecmp(s + nlen, ",i,0x", 5) != 0)
		return false;
	i = nlen + 5;
	if (len - i > 12)
		return false;
	for (; i < len; i++) {
		int c = tolower((unsigned char)s[i]);
		if (!isxdigit(c))
			return false;
		isid = isid << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	if (nlen + 5 + 12 + 1 > outsz)
		return false;
	snprintf(out, outsz, "%.*s,i,0x%012" PRIx64, (int)nlen, s, isid);
	return true;
}

static bool port_has_isid(const char *port)
{
	return strchr(port, ',') != NULL;
}

/* Does registration port rp cover the nexus's initiator port np?  A name
 * without ISID (TransportID format 00b) covers every ISID of that node. */
static bool port_covers(const char *rp, const char *np)
{
	size_t n;

	if (port_has_isid(rp))
		return strcasecmp(rp, np) == 0;
	n = strlen(rp);
	return strncasecmp(rp, np, n) == 0 && (np[n] == '\0' || np[n] == ',');
}

static bool reg_matches(const struct pr_reg *r, const struct scsi_nexus *n)
{
	if (r->port[0] && n->initiator_port[0])
		return port_covers(r->port, n->initiator_port) &&
		       (r->all_tg_pt || r->tpid == n->target_port_id);
	/* A fabric without port names: fall back to the nexus id. */
	return r->nexus_id != 0 && r->nexus_id == n->id;
}

static void pr_update_active(struct scsi_pr_state *pr)
{
	atomic_store_explicit(&pr->active, pr->reserved || pr->r6_held || pr->pending != NULL,
			      memory_order_release);
}

/* Queue the name-pending UAs that belong to nexus n. */
static void pr_deliver_pending(struct scsi_lu *lu, struct scsi_pr_state *pr,
			       const struct scsi_nexus *n)
{
	struct pr_pending **pp, *p;

	if (!pr->pending || !n->initiator_port[0] || !n->id)
		return;
	for (pp = &pr->pending; (p = *pp);) {
		if (port_covers(p->port, n->initiator_port) &&
		    (p->all_tg_pt || p->tpid == n->target_port_id)) {
			scsi_lu_ua_add(lu, n->id, p->asc, p->ascq);
			*pp = p->next;
			free(p);
			pr->npending--;
		} else {
			pp = &p->next;
		}
	}
	pr_update_active(pr);
}

/* The registration of nexus n, or NULL.  Remembers n's id on it (a new
 * session of the same initiator port takes over the registration). */
static struct pr_reg *pr_find_reg(struct scsi_pr_state *pr, const struct scsi_nexus *n)
{
	struct pr_reg *r;

	for (r = pr->regs; r; r = r->next) {
		if (reg_matches(r, n)) {
			if (n->id)
				r->nexus_id = n->id;
			return r;
		}
	}
	return NULL;
}

/* Registration for exactly this (port, target port), as named in a
 * TransportID. */
static struct pr_reg *pr_find_port(struct scsi_pr_state *pr, const char *port, uint16_t tpid,
				   bool all_tg_pt)
{
	struct pr_reg *r;

	for (r = pr->regs; r; r = r->next)
		if (strcasecmp(r->port, port) == 0 &&
		    (r->all_tg_pt || all_tg_pt || r->tpid == tpid))
			return r;
	return NULL;
}

static bool pr_is_holder(const struct scsi_pr_state *pr, const struct pr_reg *r)
{
	if (!r || !pr->reserved)
		return false;
	/* SPC-4 5.13 (reservation holder): with an all registrants type every registrant is a
	 * reservation holder. */
	return type_all_reg(pr->type) || pr->holder == r;
}

/* Establish a unit attention for the I_T nexus of registration r. */
static void pr_ua(struct scsi_lu *lu, struct scsi_pr_state *pr, const struct pr_reg *r,
		  uint8_t asc, uint8_t ascq)
{
	struct pr_pending *p, **pp;

	if (r->nexus_id) {
		scsi_lu_ua_add(lu, r->nexus_id, asc, ascq);
		return;
	}
	if (!r->port[0])
		return;
	for (pp = &pr->pending; (p = *pp); pp = &p->next)
		if (p->asc == asc && p->ascq == ascq && p->tpid == r->tpid &&
		    p->all_tg_pt == r->all_tg_pt && strcmp(p->port, r->port) == 0)
			return;
	/* SAM-5 5.14: a device server may drop UAs it has no room for. */
	if (pr->npending >= PR_MAX_PENDING || !(p = calloc(1, sizeof(*p))))
		return;
	p->tpid = r->tpid;
	p->all_tg_pt = r->all_tg_pt;
	p->asc = asc;
	p->ascq = ascq;
	memcpy(p->port, r->port, sizeof(p->port));
	*pp = p;
	pr->npending++;
	pr_update_active(pr);
}

static struct pr_reg *pr_reg_new(struct scsi_pr_state *pr, uint64_t key, const char *port,
				 uint16_t tpid, bool all_tg_pt, uint64_t nexus_id)
{
	struct pr_reg *r, **pp;

	if (pr->nregs >= PR_MAX_REGS || !(r = calloc(1, sizeof(*r))))
		return NULL;
	r->key = key;
	r->tpid = tpid;
	r->all_tg_pt = all_tg_pt;
	r->nexus_id = nexus_id;
	snprintf(r->port, sizeof(r->port), "%s", port);
	for (pp = &pr->regs; *pp; pp = &(*pp)->next)
		;
	*pp = r;
	pr->nregs++;
	return r;
}

/* Unlink and free r.  The caller deals with the reservation first. */
static void pr_reg_free(struct scsi_pr_state *pr, struct pr_reg *r)
{
	struct pr_reg **pp;

	for (pp = &pr->regs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			pr->nregs--;
			break;
		}
	}
	if (pr->holder == r)
		pr->holder = NULL;
	free(r);
}

static void pr_release(struct scsi_pr_state *pr)
{
	pr->reserved = false;
	pr->type = 0;
	pr->holder = NULL;
	pr_update_active(pr);
}

static void pr_reserve(struct scsi_pr_state *pr, uint8_t type, struct pr_reg *holder)
{
	pr->reserved = true;
	pr->type = type;
	pr->holder = type_all_reg(type) ? NULL : holder;
	pr_update_active(pr);
}

/* After registrations went away: an all registrants reservation lives as
 * long as one registrant does; any other one ends with its holder's
 * registration (SPC-4 5.13: holder, releasing).  Returns true if released. */
static bool pr_fixup_after_removal(struct scsi_pr_state *pr)
{
	if (!pr->reserved)
		return false;
	if (type_all_reg(pr->type) ? pr->nregs == 0 : pr->holder == NULL) {
		pr_release(pr);
		return true;
	}
	return false;
}

static struct scsi_pr_state *pr_alloc(void)
{
	struct scsi_pr_state *pr = calloc(1, sizeof(*pr));

	if (!pr)
		return NULL;
	pthread_mutex_init(&pr->lock, NULL);
	atomic_init(&pr->active, false);
	return pr;
}

static void pr_destroy(struct scsi_pr_state *pr)
{
	struct pr_reg *r, *rn;
	struct pr_pending *p, *pn;

	if (!pr)
		return;
	for (r = pr->regs; r; r = rn) {
		rn = r->next;
		free(r);
	}
	for (p = pr->pending; p; p = pn) {
		pn = p->next;
		free(p);
	}
	pthread_mutex_destroy(&pr->lock);
	free(pr);
}

static void pr_load_file(struct scsi_lu *lu, struct scsi_pr_state *pr);

/* lu->pr, created (and restored from disk) on first use.  Lock-free
 * publication: the loser of a creation race frees its copy. */
static struct scsi_pr_state *pr_state(struct scsi_lu *lu)
{
	struct scsi_pr_state *pr = __atomic_load_n(&lu->pr, __ATOMIC_ACQUIRE), *expected = NULL;

	if (pr)
		return pr;
	pr = pr_alloc();
	if (!pr)
		return NULL;
	pr_load_file(lu, pr);
	if (!__atomic_compare_exchange_n(&lu->pr, &expected, pr, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		pr_destroy(pr);
		return expected;
	}
	return pr;
}

/* ------------------------------------------------------------------------ */
/* APTPL persistence (SPC-4 5.13.4)                                          */
/* ------------------------------------------------------------------------ */

void scsi_pr_set_state_dir(const char *dir)
{
	snprintf(pr_state_dir, sizeof(pr_state_dir), "%s",
		 dir && *dir ? dir : "/var/lib/ringstor");
}

static int pr_path(const uint8_t naa[16], char *buf, size_t len, const char *suffix)
{
	char hex[33];
	int i, n;

	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", naa[i]);
	n = snprintf(buf, len, "%s/pr/%s.pr%s", pr_state_dir, hex, suffix);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* What a PERSISTENT RESERVE OUT leaves to be made durable: the text of the
 * state file (or NULL: APTPL is off, remove the file), taken under pr->lock
 * and written later, off the reactor (core/workpool.h), before the command
 * completes: SPC-4 5.13.4 wants the state to survive a power loss once the
 * command that set it has completed with GOOD. */
struct pr_save {
	struct wp_job job;
	struct scsi_cmd *cmd;          /* completed when the file is durable */
	struct scsi_pr_state *pr;      /* lives as long as the LU, which cmd pins */
	uint8_t naa[16];
	uint64_t lun;
	uint64_t seq;                  /* pr->save_seq when taken */
	char *text;
	size_t len;
};

/* Serialises the file updates of all LUs; with pr->saved_seq it keeps a
 * snapshot that a slower pool thread writes late from replacing a newer one. */
static pthread_mutex_t pr_file_lock = PTHREAD_MUTEX_INITIALIZER;

/* Snapshot the state (pr->lock held).  NULL on ENOMEM (logged). */
static struct pr_save *pr_snapshot(const struct scsi_lu *lu, struct scsi_pr_state *pr)
{
	struct pr_save *sv = calloc(1, sizeof(*sv));
	const struct pr_reg *r;
	int idx, holder = -1;
	FILE *f;

	if (!sv)
		goto oom;
	memcpy(sv->naa, lu->naa, 16);
	sv->lun = lu->lun;
	sv->pr = pr;
	sv->seq = ++pr->save_seq;
	if (!pr->aptpl)
		return sv;
	f = open_memstream(&sv->text, &sv->len);
	if (!f) {
		free(sv);
		goto oom;
	}
	fprintf(f, "ringstor-pr %d\n", PR_FILE_VERSION);
	fprintf(f, "naa ");
	for (idx = 0; idx < 16; idx++)
		fprintf(f, "%02x", lu->naa[idx]);
	fprintf(f, "\n");
	for (r = pr->regs, idx = 0; r; r = r->next, idx++) {
		fprintf(f, "reg %016" PRIx64 " %u %d %s\n", r->key, r->tpid, r->all_tg_pt ? 1 : 0,
			r->port);
		if (pr->reserved && pr->holder == r)
			holder = idx;
	}
	if (pr->reserved)
		fprintf(f, "res %u %d\n", pr->type, holder);
	fprintf(f, "end %u\n", pr->nregs);
	if (fclose(f) != 0 || !sv->text) {
		free(sv->text);
		free(sv);
		goto oom;
	}
	return sv;
oom:
	log_err("persistent reservations: out of memory saving the APTPL state of LUN %llu",
		(unsigned long long)lu->lun);
	return NULL;
}

/* Write text to <dir>/pr/<naa>.pr atomically: temp file, fsync, rename,
 * fsync of the directory.  Blocks: pool threads only (or tests). */
static int pr_write_file(const uint8_t naa[16], const char *text, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	int fd, err = 0;
	size_t off = 0;

	if (pr_path(naa, path, sizeof(path), "") < 0 || pr_path(naa, tmp, sizeof(tmp), ".tmp") < 0)
		return -ENAMETOOLONG;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/pr", pr_state_dir) >= sizeof(dir))
		return -ENAMETOOLONG;
	if (mkdir(pr_state_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < len && !err) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno != EINTR)
			err = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (!err && fsync(fd) != 0)
		err = -errno;
	if (close(fd) != 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

/* Make a snapshot durable (the file written, or removed when APTPL is
 * off), unless a newer snapshot of the same LU already was. */
static void pr_save_apply(struct pr_save *sv)
{
	char path[PATH_MAX];
	int err = 0;

	pthread_mutex_lock(&pr_file_lock);
	if (sv->seq > sv->pr->saved_seq) {
		sv->pr->saved_seq = sv->seq;
		if (sv->text)
			err = pr_write_file(sv->naa, sv->text, sv->len);
		else if (pr_path(sv->naa, path, sizeof(path), "") == 0 && unlink(path) < 0 &&
			 errno != ENOENT)
			log_warn("persistent reservations: cannot remove %s: %s", path, strerror(errno));
	}
	pthread_mutex_unlock(&pr_file_lock);
	if (err < 0)
		log_err("persistent reservations: cannot save APTPL state of LUN %llu in %s/pr: %s",
			(unsigned long long)sv->lun, pr_state_dir, strerror(-err));
}

static void pr_save_free(struct pr_save *sv)
{
	free(sv->text);
	free(sv);
}

static void pr_save_work(struct wp_job *job)
{
	pr_save_apply(container_of(job, struct pr_save, job));
}

static void pr_save_done(struct wp_job *job)
{
	struct pr_save *sv = container_of(job, struct pr_save, job);

	scsi_cmd_complete(sv->cmd);
	pr_save_free(sv);
}

static bool parse_u64_hex(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || strlen(s) > 16)
		return false;
	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno == 0 && *end == '\0' && isxdigit((unsigned char)s[0]);
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out <= max;
}

/* Parse one file into pr (empty on entry).  Returns NULL or a complaint. */
static const char *pr_parse_file(const struct scsi_lu *lu, struct scsi_pr_state *pr, char *buf)
{
	char *line, *save = NULL, *tok[5], *tsave, *p;
	char naa[33], port[PR_PORT_MAX];
	bool seen_hdr = false, seen_naa = false, seen_end = false, seen_res = false;
	unsigned long v, tpid, atp;
	long holder = -1;
	uint8_t type = 0;
	uint64_t key;
	int i, nt;

	for (i = 0; i < 16; i++)
		snprintf(naa + 2 * i, 3, "%02x", lu->naa[i]);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (seen_end)
			return "data after end";
		nt = 0;
		for (p = strtok_r(line, " ", &tsave); p; p = strtok_r(NULL, " ", &tsave)) {
			if (nt == 5)
				return "too many fields";
			tok[nt++] = p;
		}
		if (nt == 0)
			continue;
		if (!seen_hdr) {
			if (nt != 2 || strcmp(tok[0], "ringstor-pr") != 0)
				return "bad header";
			if (!parse_ulong(tok[1], 1000, &v) || v != PR_FILE_VERSION)
				return "unsupported version";
			seen_hdr = true;
		} else if (strcmp(tok[0], "naa") == 0 && nt == 2) {
			if (strcasecmp(tok[1], naa) != 0)
				return "belongs to another logical unit";
			seen_naa = true;
		} else if (strcmp(tok[0], "reg") == 0 && nt == 5) {
			if (seen_res)
				return "registration after reservation";
			if (!parse_u64_hex(tok[1], &key) || key == 0)
				return "bad reservation key";
			if (!parse_ulong(tok[2], 0xffff, &tpid) || !parse_ulong(tok[3], 1, &atp))
				return "bad target port";
			if (!port_canon(tok[4], strlen(tok[4]), port, sizeof(port)))
				return "bad initiator port name";
			if (pr_find_port(pr, port, (uint16_t)tpid, atp != 0))
				return "duplicate registration";
			if (!pr_reg_new(pr, key, port, (uint16_t)tpid, atp != 0, 0))
				return "too many registrations";
		} else if (strcmp(tok[0], "res") == 0 && nt == 3) {
			if (seen_res)
				return "two reservations";
			if (!parse_ulong(tok[1], 15, &v) || !type_valid((uint8_t)v))
				return "bad reservation type";
			type = (uint8_t)v;
			if (strcmp(tok[2], "-1") == 0)
				holder = -1;
			else if (parse_ulong(tok[2], PR_MAX_REGS, &v))
				holder = (long)v;
			else
				return "bad holder";
			seen_res = true;
		} else if (strcmp(tok[0], "end") == 0 && nt == 2) {
			if (!parse_ulong(tok[1], PR_MAX_REGS, &v) || v != pr->nregs)
				return "truncated (registration count mismatch)";
			seen_end = true;
		} else {
			return "unknown line";
		}
	}
	if (!seen_hdr || !seen_naa || !seen_end)
		return "incomplete";
	if (seen_res) {
		struct pr_reg *r = pr->regs;
		if (type_all_reg(type)) {
			if (holder != -1 || pr->nregs == 0)
				return "bad all registrants reservation";
			pr_reserve(pr, type, NULL);
		} else {
			if (holder < 0)
				return "reservation without holder";
			for (i = 0; r && i < holder; i++)
				r = r->next;
			if (!r)
				return "holder out of range";
			pr_reserve(pr, type, r);
		}
	}
	pr->aptpl = true;
	return NULL;
}

static void pr_clear_state(struct scsi_pr_state *pr)
{
	while (pr->regs)
		pr_reg_free(pr, pr->regs);
	pr->reserved = false;
	pr->holder = NULL;
	pr->type = 0;
	pr->aptpl = false;
	pr_update_active(pr);
}

static void pr_load_file(struct scsi_lu *lu, struct scsi_pr_state *pr)
{
	char path[PATH_MAX], *buf;
	const char *why;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	if (pr_path(lu->naa, path, sizeof(path), "") < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("persistent reservations: cannot open %s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PR_FILE_MAX) {
		log_warn("persistent reservations: %s is not a usable state file, ignored", path);
		close(fd);
		return;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (strlen(buf) != got)
		why = "contains NUL bytes";
	else
		why = pr_parse_file(lu, pr, buf);
	free(buf);
	if (why) {
		log_warn("persistent reservations: %s is corrupt (%s), ignored", path, why);
		pr_clear_state(pr);
		return;
	}
	log_info("persistent reservations: restored %u registration(s)%s for LUN %llu from %s",
		 pr->nregs, pr->reserved ? " and a reservation" : "", (unsigned long long)lu->lun,
		 path);
}

int scsi_pr_load(struct scsi_lu *lu)
{
	return pr_state(lu) ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* Reservation check (SPC-4 5.13.1 and SBC-3 tables)            */
/* ------------------------------------------------------------------------ */

enum pr_class {
	PRC_ALL,    /* allowed in the presence of any reservation */
	PRC_READ,   /* reads: allowed through Write Exclusive, not Exclusive Access */
	PRC_WRITE,  /* conflicts unless holder (or registrant of RO/AR types) */
};

static enum pr_class pr_cmd_class(const uint8_t *cdb)
{
	switch (cdb[0]) {
	case PR_OP_TEST_UNIT_READY:
	case PR_OP_REQUEST_SENSE:
	case PR_OP_INQUIRY:
	case PR_OP_READ_CAPACITY_10:
	case PR_OP_LOG_SENSE:
	case PR_OP_PR_IN:
	case PR_OP_PR_OUT:          /* service actions are judged by scsi_pr_out() */
	case PR_OP_REPORT_LUNS:
	case PR_OP_ACCESS_CTRL_IN:
	case PR_OP_ACCESS_CTRL_OUT:
	case PR_OP_RESERVE_6:       /* SPC-4 5.13.3: judged by the handlers */
	case PR_OP_RELEASE_6:
	case PR_OP_RESERVE_10:
	case PR_OP_RELEASE_10:
		return PRC_ALL;
	case PR_OP_START_STOP_UNIT:
		/* SBC-3: allowed with START=1 and POWER CONDITION=0 only. */
		return ((cdb[4] & 0x01) && !(cdb[4] & 0xf0)) ? PRC_ALL : PRC_WRITE;
	case PR_OP_PREVENT_ALLOW:
		/* SBC-3: PREVENT=0 is allowed, preventing removal is not. */
		return (cdb[4] & 0x03) == 0 ? PRC_ALL : PRC_WRITE;
	case PR_OP_SAI_16:
		if ((cdb[1] & 0x1f) == PR_SAI_READ_CAPACITY_16)
			return PRC_ALL;
		return (cdb[1] & 0x1f) == PR_SAI_GET_LBA_STATUS ? PRC_READ : PRC_WRITE;
	case PR_OP_MAINTENANCE_IN:
		switch (cdb[1] & 0x1f) {
		case 0x05:  /* REPORT IDENTIFYING INFORMATION */
		case 0x0a:  /* REPORT TARGET PORT GROUPS */
		case 0x0b:  /* REPORT ALIASES */
		case 0x0e:  /* REPORT PRIORITY */
		case 0x0f:  /* REPORT TIMESTAMP */
			return PRC_ALL;
		case 0x0c:  /* REPORT SUPPORTED OPERATION CODES */
		case 0x0d:  /* REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS */
		case 0x10:  /* MANAGEMENT PROTOCOL IN */
			return PRC_READ;
		default:
			return PRC_WRITE;
		}
	case PR_OP_SAI_12:
		return (cdb[1] & 0x1f) == PR_SAI_READ_MEDIA_SERIAL ? PRC_ALL : PRC_WRITE;
	case PR_OP_READ_6:
	case PR_OP_READ_10:
	case PR_OP_READ_12:
	case PR_OP_READ_16:
	case PR_OP_VERIFY_10:
	case PR_OP_VERIFY_12:
	case PR_OP_VERIFY_16:
	case PR_OP_PRE_FETCH_10:
	case PR_OP_PRE_FETCH_16:
	case PR_OP_MODE_SENSE_6:
	case PR_OP_MODE_SENSE_10:
	case PR_OP_READ_BUFFER:
	case PR_OP_RECEIVE_DIAG:
	case PR_OP_READ_ATTRIBUTE:
	case PR_OP_SECURITY_IN:
	case PR_OP_READ_DEFECT_10:
	case PR_OP_READ_DEFECT_12:
		return PRC_READ;
	default:
		/* Everything else modifies the medium or the LU's state (WRITE*,
		 * SYNCHRONIZE CACHE, UNMAP, MODE SELECT, FORMAT UNIT ...):
		 * "Conflict" except for the holder and RO/AR registrants. */
		return PRC_WRITE;
	}
}

/* SPC-4 5.13.1: may a command of class c run on a nexus that is (not) the
 * holder / (not) registered while a persistent reservation of type is held? */
static bool pr_allows(enum pr_class c, uint8_t type, bool holder, bool registered)
{
	if (c == PRC_ALL || holder)
		return true;
	switch (type) {
	case PR_TYPE_WE:
		return c == PRC_READ;
	case PR_TYPE_EA:
		return false;
	case PR_TYPE_WE_RO:
	case PR_TYPE_WE_AR:
		return registered || c == PRC_READ;
	case PR_TYPE_EA_RO:
	case PR_TYPE_EA_AR:
		return registered;
	default:
		return false;
	}
}

/* SPC-2 5.5.1 (RESERVE/RELEASE): commands another initiator may still send while a
 * RESERVE(6) reservation is held; SPC-2 PERSISTENT RESERVE IN/OUT: PERSISTENT RESERVE IN/OUT
 * conflict for every initiator while it exists. */
static bool r6_allows(const uint8_t *cdb, bool holder)
{
	if (cdb[0] == PR_OP_PR_IN || cdb[0] == PR_OP_PR_OUT)
		return false;
	if (holder)
		return true;
	switch (cdb[0]) {
	case PR_OP_INQUIRY:
	case PR_OP_REQUEST_SENSE:
	case PR_OP_REPORT_LUNS:
	case PR_OP_LOG_SENSE:
	case PR_OP_RELEASE_6:      /* a no-op from a non-holder (SPC-2 RELEASE(6)) */
	case PR_OP_RELEASE_10:
		return true;
	case PR_OP_PREVENT_ALLOW:
		return (cdb[4] & 0x03) == 0;
	case PR_OP_MAINTENANCE_IN:
		return (cdb[1] & 0x1f) == 0x0a;   /* REPORT TARGET PORT GROUPS */
	default:
		return false;
	}
}

bool scsi_pr_check(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const struct scsi_nexus *n = cmd_nexus(cmd);
	struct scsi_pr_state *pr;
	struct pr_reg *r;
	bool ok = true;

	if (!lu)
		return true;
	pr = __atomic_load_n(&lu->pr, __ATOMIC_ACQUIRE);
	if (!pr) {
		/* First command on this LU: restore any APTPL state now.  Out
		 * of memory means nothing could have been registered either. */
		pr = pr_state(lu);
		if (!pr)
			return true;
	}
	if (!atomic_load_explicit(&pr->active, memory_order_acquire))
		return true;

	pthread_mutex_lock(&pr->lock);
	pr_deliver_pending(lu, pr, n);
	if (pr->r6_held) {
		ok = r6_allows(cmd->cdb, pr->r6_nexus == n->id);
	} else if (pr->reserved) {
		r = pr_find_reg(pr, n);
		ok = pr_allows(pr_cmd_class(cmd->cdb), pr->type, pr_is_holder(pr, r), r != NULL);
	}
	pthread_mutex_unlock(&pr->lock);
	if (!ok)
		set_conflict(cmd);
	return ok;
}

/* ------------------------------------------------------------------------ */
/* PERSISTENT RESERVE IN (SPC-4 6.15)                                        */
/* ------------------------------------------------------------------------ */

/* Length of the iSCSI TransportID for port (SPC-4 7.6.4.6): the name
 * NUL-terminated, padded to a multiple of 4, at least 20 bytes. */
static uint32_t tid_len(const char *port)
{
	uint32_t n = (uint32_t)strlen(port) + 1;

	n = (n + 3) & ~3u;
	if (n < 20)
		n = 20;
	return 4 + n;
}

static void put_tid(uint8_t *p, const char *port)
{
	uint32_t len = tid_len(port);

	/* FORMAT CODE 01b (name + ISID) or 00b (name only); PROTOCOL
	 * IDENTIFIER 5h: iSCSI. */
	p[0] = (uint8_t)((port_has_isid(port) ? 0x40 : 0x00) | 0x05);
	put_be16(p + 2, (uint16_t)(len - 4));
	memcpy(p + 4, port, strlen(port));
}

void scsi_pr_in(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const struct scsi_nexus *n = cmd_nexus(cmd);
	uint8_t sa = cmd->cdb[1] & 0x1f;
	uint32_t alloc = get_be16(&cmd->cdb[7]), len = 0, off;
	struct scsi_pr_state *pr;
	struct pr_reg *r;
	uint8_t *b = NULL;

	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
	cmd->data_in_len = 0;
	cmd->xfer_len = 0;
	cmd->xfer_is_write = false;
	if (sa > PRIN_READ_FULL_STATUS) {
		bad_cdb(cmd, 1, 4);
		return;
	}
	if (!lu || !(pr = pr_state(lu))) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		return;
	}

	pthread_mutex_lock(&pr->lock);
	pr_deliver_pending(lu, pr, n);
	if (pr->r6_held) {
		pthread_mutex_unlock(&pr->lock);
		set_conflict(cmd);
		return;
	}
	switch (sa) {
	case PRIN_READ_KEYS:
		len = 8 + 8 * pr->nregs;
		break;
	case PRIN_READ_RESERVATION:
		len = pr->reserved ? 24 : 8;
		break;
	case PRIN_REPORT_CAPS:
		len = 8;
		break;
	case PRIN_READ_FULL_STATUS:
		len = 8;
		for (r = pr->regs; r; r = r->next)
			len += 24 + tid_len(r->port);
		break;
	}
	b = scsi_data_in_alloc(cmd, len);
	if (!b) {
		pthread_mutex_unlock(&pr->lock);
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		return;
	}

	switch (sa) {
	case PRIN_READ_KEYS:
		/* SPC-4 6.15.2: PRGENERATION, ADDITIONAL LENGTH (not reduced by
		 * the allocation length), then the keys. */
		put_be32(b, pr->generation);
		put_be32(b + 4, len - 8);
		for (r = pr->regs, off = 8; r; r = r->next, off += 8)
			put_be64(b + off, r->key);
		break;
	case PRIN_READ_RESERVATION:
		/* SPC-4 6.15.3 */
		put_be32(b, pr->generation);
		put_be32(b + 4, len - 8);
		if (pr->reserved) {
			/* All registrants types report key zero (6.15.3.2). */
			if (!type_all_reg(pr->type) && pr->holder)
				put_be64(b + 8, pr->holder->key);
			b[21] = (uint8_t)(PR_SCOPE_LU << 4 | pr->type);
		}
		break;
	case PRIN_REPORT_CAPS:
		/* SPC-4 6.15.4: LENGTH 8; CRH=0, SIP_C=1, ATP_C=1, PTPL_C=1;
		 * TMV=1, ALLOW COMMANDS=001b (TEST UNIT READY is allowed through
		 * WE and EA reservations), PTPL_A; the six types. */
		put_be16(b, 8);
		b[2] = 0x08 | 0x04 | 0x01;
		b[3] = (uint8_t)(0x80 | 0x10 | (pr->aptpl ? 0x01 : 0x00));
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;  /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
		b[5] = 0x01;                              /* EX_AC_AR */
		break;
	case PRIN_READ_FULL_STATUS:
		/* SPC-4 6.15.5: one descriptor per registered I_T nexus. */
		put_be32(b, pr->generation);
		put_be32(b + 4, len - 8);
		for (r = pr->regs, off = 8; r; r = r->next) {
			uint8_t *d = b + off;
			uint32_t tl = tid_len(r->port);

			put_be64(d, r->key);
			d[12] = (uint8_t)((r->all_tg_pt ? 0x02 : 0) | (pr_is_holder(pr, r) ? 0x01 : 0));
			if (pr_is_holder(pr, r))
				d[13] = (uint8_t)(PR_SCOPE_LU << 4 | pr->type);
			put_be16(d + 18, r->tpid);
			put_be32(d + 20, tl);
			put_tid(d + 24, r->port);
			off += 24 + tl;
		}
		break;
	}
	pthread_mutex_unlock(&pr->lock);

	/* SPC-4 4.2.5.6: return at most the allocation length. */
	cmd->data_in_len = len < alloc ? len : alloc;
	cmd->xfer_len = cmd->data_in_len;
}

/* ------------------------------------------------------------------------ */
/* PERSISTENT RESERVE OUT (SPC-4 5.13, 6.16)                     */
/* ------------------------------------------------------------------------ */

struct prout_params {
	uint8_t sa, scope, type;
	uint64_t rk, sark;
	bool spec_i_pt, all_tg_pt, aptpl, unreg;
	uint16_t rtpi;                 /* REGISTER AND MOVE */
	const uint8_t *tids;           /* TransportID parameter data */
	uint32_t tids_len;
	uint32_t tids_off;             /* offset of tids in the parameter list */
};

/* Parse one iSCSI TransportID (SPC-4 7.6.4.6) into a canonical port name.
 * Returns its length, or 0 if it is not a valid iSCSI TransportID. */
static uint32_t parse_tid(const uint8_t *p, uint32_t avail, char *port, size_t portsz)
{
	uint32_t alen;
	unsigned fmt;
	size_t nlen;
	const char *s = (const char *)p + 4;

	if (avail < 4 || (p[0] & 0x0f) != 0x05)
		return 0;
	fmt = p[0] >> 6;
	if (fmt > 1)
		return 0;
	alen = get_be16(p + 2);
	/* ADDITIONAL LENGTH: at least 20 and a multiple of 4. */
	if (alen < 20 || alen % 4 || alen > avail - 4)
		return 0;
	nlen = strnlen(s, alen);
	if (nlen == alen || nlen == 0)
		return 0;   /* must be NUL-terminated inside the descriptor */
	if (fmt == 0 && memchr(s, ',', nlen))
		return 0;
	if (fmt == 1 && !memchr(s, ',', nlen))
		return 0;
	if (!port_canon(s, nlen, port, portsz))
		return 0;
	return 4 + alen;
}

static bool prout_parse(struct scsi_cmd *cmd, struct prout_params *pp)
{
	const uint8_t *d = cmd->data_out;
	uint32_t plen = get_be32(&cmd->cdb[5]);

	memset(pp, 0, sizeof(*pp));
	pp->sa = cmd->cdb[1] & 0x1f;
	pp->scope = cmd->cdb[2] >> 4;
	pp->type = cmd->cdb[2] & 0x0f;
	if (pp->sa > PROUT_REGISTER_MOVE) {
		bad_cdb(cmd, 1, 4);
		return false;
	}
	/* SPC-4 6.16.3: every service action carries at least the 24-byte
	 * basic parameter list.  Data the fabric did not collect is missing. */
	if (plen < 24 || !d || cmd->data_out_len < plen) {
		pll_error(cmd);
		return false;
	}
	pp->rk = get_be64(d);
	pp->sark = get_be64(d + 8);
	if (pp->sa == PROUT_REGISTER_MOVE) {
		/* SPC-4 6.16.4: REGISTER AND MOVE parameter list. */
		pp->unreg = d[17] & 0x02;
		pp->aptpl = d[17] & 0x01;
		pp->rtpi = get_be16(d + 18);
		pp->tids_len = get_be32(d + 20);
		pp->tids_off = 24;
		if ((uint64_t)24 + pp->tids_len != plen) {
			pll_error(cmd);
			return false;
		}
		pp->tids = d + 24;
		return true;
	}
	pp->spec_i_pt = d[20] & 0x08;
	pp->all_tg_pt = d[20] & 0x04;
	pp->aptpl = d[20] & 0x01;
	if (pp->spec_i_pt && pp->sa != PROUT_REGISTER) {
		bad_param(cmd, 20, 3);
		return false;
	}
	if (!pp->spec_i_pt) {
		if (plen != 24) {
			pll_error(cmd);
			return false;
		}
		return true;
	}
	if (plen < 28) {
		pll_error(cmd);
		return false;
	}
	pp->tids_len = get_be32(d + 24);
	pp->tids_off = 28;
	if ((uint64_t)28 + pp->tids_len != plen) {
		pll_error(cmd);
		return false;
	}
	pp->tids = d + 28;
	return true;
}

/* Validate the scope and type of a CDB that establishes a reservation. */
static bool check_scope_type(struct scsi_cmd *cmd, const struct prout_params *pp)
{
	if (pp->scope != PR_SCOPE_LU) {
		bad_cdb(cmd, 2, 7);
		return false;
	}
	if (!type_valid(pp->type)) {
		bad_cdb(cmd, 2, 3);
		return false;
	}
	return true;
}

/* REGISTER / REGISTER AND IGNORE EXISTING KEY (SPC-4 5.13, registering).  Returns true
 * if the state changed. */
static bool prout_register(struct scsi_cmd *cmd, struct scsi_pr_state *pr,
			   const struct prout_params *pp, struct pr_reg *me)
{
	const struct scsi_nexus *n = cmd_nexus(cmd);
	struct scsi_lu *lu = cmd->lu;
	struct pr_reg *r, *first_new = NULL, *next;
	uint32_t off, tl;
	char port[PR_PORT_MAX];
	unsigned extra = 0;

	if (!me) {
		if (pp->sa == PROUT_REGISTER && pp->rk != 0) {
			set_conflict(cmd);
			return false;
		}
		/* Unregistered nexus, key zero: nothing to do, GOOD. */
		if (pp->sark == 0)
			return false;
		/* SPEC_I_PT: validate every TransportID first so that the
		 * registrations happen all or nothing. */
		for (off = 0; pp->spec_i_pt && off < pp->tids_len; off += tl) {
			tl = parse_tid(pp->tids + off, pp->tids_len - off, port, sizeof(port));
			if (!tl) {
				bad_param(cmd, (uint16_t)(pp->tids_off + off), -1);
				return false;
			}
			extra++;
		}
		if (pr->nregs + 1 + extra > PR_MAX_REGS) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, PR_ASC_INSUFFICIENT_RES,
				       PR_ASCQ_INSUFFICIENT_REG);
			return false;
		}
		if (!n->initiator_port[0] && !n->id) {
			/* No identity to register: cannot happen with a fabric. */
			scsi_set_errno_sense(cmd, -EINVAL, false);
			return false;
		}
		me = pr_reg_new(pr, pp->sark, n->initiator_port, n->target_port_id, pp->all_tg_pt,
				n->id);
		if (!me)
			goto nomem;
		first_new = me;
		for (off = 0; pp->spec_i_pt && off < pp->tids_len; off += tl) {
			tl = parse_tid(pp->tids + off, pp->tids_len - off, port, sizeof(port));
			/* Already registered I_T nexuses (including the one
			 * sending the command, or a repeat in the list) are
			 * skipped, as LIO does. */
			if (pr_find_port(pr, port, n->target_port_id, pp->all_tg_pt) ||
			    (n->initiator_port[0] && port_covers(port, n->initiator_port)))
				continue;
			if (!pr_reg_new(pr, pp->sark, port, n->target_port_id, pp->all_tg_pt, 0))
				goto nomem;
		}
		return true;
	}

	if (pp->spec_i_pt) {
		/* SPC-4 6.16.3: SPEC_I_PT from a registered I_T nexus. */
		bad_param(cmd, 20, 3);
		return false;
	}
	if (pp->sa == PROUT_REGISTER && pp->rk != me->key) {
		set_conflict(cmd);
		return false;
	}
	if (pp->sark != 0) {
		me->key = pp->sark;
		return true;
	}

	/* Unregister (SPC-4 5.13: registering, releasing): removing the holder's
	 * registration releases its reservation; for a registrants only
	 * type the other registrants learn RESERVATIONS RELEASED. */
	{
		bool was_holder = pr_is_holder(pr, me);
		uint8_t old_type = pr->type;

		pr_reg_free(pr, me);
		if (was_holder && pr_fixup_after_removal(pr) && type_reg_only(old_type))
			for (r = pr->regs; r; r = r->next)
				pr_ua(lu, pr, r, PR_ASC_PARAMS_CHANGED, PR_ASCQ_RES_RELEASED);
	}
	return true;

nomem:
	/* Undo the partial registration. */
	for (r = first_new; r; r = next) {
		next = r->next;
		pr_reg_free(pr, r);
	}
	scsi_set_errno_sense(cmd, -ENOMEM, false);
	return false;
}

/* Remove the registrations whose key is sark (except `keep`), with
 * REGISTRATIONS PREEMPTED to their nexuses other than the sender's.
 * Returns how many went. */
static unsigned pr_remove_key(struct scsi_lu *lu, struct scsi_pr_state *pr, uint64_t sark,
			      const struct pr_reg *keep, const struct pr_reg *sender)
{
	struct pr_reg *r, *next;
	unsigned n = 0;

	for (r = pr->regs; r; r = next) {
		next = r->next;
		if (r->key != sark || r == keep)
			continue;
		if (r != sender)
			pr_ua(lu, pr, r, PR_ASC_PARAMS_CHANGED, PR_ASCQ_REG_PREEMPTED);
		pr_reg_free(pr, r);
		n++;
	}
	return n;
}

/* PREEMPT / PREEMPT AND ABORT (SPC-4 5.13, preempting).  Tasks of the preempted
 * nexuses are not aborted here: our commands complete in bounded time and
 * the fabric owns task management. */
static bool prout_preempt(struct scsi_cmd *cmd, struct scsi_pr_state *pr,
			  const struct prout_params *pp, struct pr_reg *me)
{
	struct scsi_lu *lu = cmd->lu;
	struct pr_reg *r, *next;
	uint8_t old_type;

	if (!me || pp->rk != me->key) {
		set_conflict(cmd);
		return false;
	}

	if (!pr->reserved) {
		/* No reservation: preempt registrations only. */
		if (pp->sark == 0) {
			bad_param(cmd, 8, -1);
			return false;
		}
		if (!pr_remove_key(lu, pr, pp->sark, NULL, me)) {
			set_conflict(cmd);
			return false;
		}
		return true;
	}

	if (type_all_reg(pr->type)) {
		if (pp->sark != 0) {
			/* Registrations only; the reservation stays while
			 * a registrant does. */
			if (!pr_remove_key(lu, pr, pp->sark, NULL, me)) {
				set_conflict(cmd);
				return false;
			}
			pr_fixup_after_removal(pr);
			return true;
		}
		/* SARK zero: every other registration goes and the sender
		 * takes a new reservation. */
		if (!check_scope_type(cmd, pp))
			return false;
		for (r = pr->regs; r; r = next) {
			next = r->next;
			if (r == me)
				continue;
			pr_ua(lu, pr, r, PR_ASC_PARAMS_CHANGED, PR_ASCQ_REG_PREEMPTED);
			pr_reg_free(pr, r);
		}
		pr_reserve(pr, pp->type, me);
		return true;
	}

	if (pr->holder && pp->sark == pr->holder->key) {
		/* Preempt the holder.  The sender keeps its own
		 * registration even if it shares the key. */
		if (!check_scope_type(cmd, pp))
			return false;
		old_type = pr->type;
		pr_remove_key(lu, pr, pp->sark, me, me);
		pr_reserve(pr, pp->type, me);
		if (old_type != pp->type)
			for (r = pr->regs; r; r = r->next)
				if (r != me)
					pr_ua(lu, pr, r, PR_ASC_PARAMS_CHANGED, PR_ASCQ_RES_RELEASED);
		return true;
	}

	/* The key names no holder: preempt registrations only. */
	if (pp->sark == 0) {
		bad_param(cmd, 8, -1);
		return false;
	}
	if (!pr_remove_key(lu, pr, pp->sark, NULL, me)) {
		set_conflict(cmd);
		return false;
	}
	pr_fixup_after_removal(pr);
	return true;
}

/* REGISTER AND MOVE (SPC-4 5.13, registering and moving). */
static bool prout_register_move(struct scsi_cmd *cmd, struct scsi_pr_state *pr,
				const struct prout_params *pp, struct pr_reg *me)
{
	const struct scsi_nexus *n = cmd_nexus(cmd);
	char port[PR_PORT_MAX];
	struct pr_reg *dest;
	uint32_t tl;

	/* SPC-4 6.16.2 table: SCOPE and TYPE are valid for REGISTER AND MOVE;
	 * the moved reservation takes them (as LIO does). */
	if (!check_scope_type(cmd, pp))
		return false;
	if (!me || pp->rk != me->key) {
		set_conflict(cmd);
		return false;
	}
	if (pp->sark == 0) {
		bad_param(cmd, 8, -1);
		return false;
	}
	/* Only the holder of a reservation that has one holder may move it. */
	if (!pr->reserved || type_all_reg(pr->type) || pr->holder != me) {
		set_conflict(cmd);
		return false;
	}
	tl = parse_tid(pp->tids, pp->tids_len, port, sizeof(port));
	if (!tl) {
		bad_param(cmd, (uint16_t)pp->tids_off, -1);
		return false;
	}
	if (pp->rtpi == 0) {
		bad_param(cmd, 18, -1);
		return false;
	}
	/* The destination must be another I_T nexus than the sender. */
	if (n->initiator_port[0] && port_covers(port, n->initiator_port) &&
	    pp->rtpi == n->target_port_id) {
		bad_param(cmd, (uint16_t)pp->tids_off, -1);
		return false;
	}
	dest = pr_find_port(pr, port, pp->rtpi, false);
	if (dest == me) {
		bad_param(cmd, (uint16_t)pp->tids_off, -1);
		return false;
	}
	if (!dest) {
		dest = pr_reg_new(pr, pp->sark, port, pp->rtpi, false, 0);
		if (!dest) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, PR_ASC_INSUFFICIENT_RES,
				       PR_ASCQ_INSUFFICIENT_REG);
			return false;
		}
	}
	pr_reserve(pr, pp->type, dest);
	if (pp->unreg)
		pr_reg_free(pr, me);
	return true;
}

/* The PERSISTENT RESERVE OUT itself; returns what must be made durable
 * before the command completes (NULL: nothing). */
static struct pr_save *prout_run(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	const struct scsi_nexus *n = cmd_nexus(cmd);
	struct scsi_pr_state *pr;
	struct prout_params pp;
	struct pr_reg *me, *r;
	struct pr_save *save = NULL;
	bool changed = false, gen = false;
	uint8_t old_type;

	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
	cmd->data_in_len = 0;
	cmd->xfer_len = get_be32(&cmd->cdb[5]);
	cmd->xfer_is_write = true;
	if (!prout_parse(cmd, &pp))
		return NULL;
	if (!lu || !(pr = pr_state(lu))) {
		scsi_set_errno_sense(cmd, -ENOMEM, true);
		return NULL;
	}

	pthread_mutex_lock(&pr->lock);
	pr_deliver_pending(lu, pr, n);
	if (pr->r6_held) {
		/* SPC-2 PERSISTENT RESERVE OUT: conflicts while a RESERVE(6) reservation exists. */
		set_conflict(cmd);
		goto out;
	}
	me = pr_find_reg(pr, n);

	switch (pp.sa) {
	case PROUT_REGISTER:
	case PROUT_REGISTER_IGNORE:
		changed = gen = prout_register(cmd, pr, &pp, me);
		break;

	case PROUT_RESERVE:
		/* SPC-4 5.13, reserving */
		if (!check_scope_type(cmd, &pp))
			break;
		if (!me || pp.rk != me->key) {
			set_conflict(cmd);
			break;
		}
		if (pr->reserved) {
			/* The holder may repeat it; anything else conflicts. */
			if (!pr_is_holder(pr, me) || pr->type != pp.type)
				set_conflict(cmd);
			break;
		}
		pr_reserve(pr, pp.type, me);
		changed = true;
		break;

	case PROUT_RELEASE:
		/* SPC-4 5.13, releasing */
		if (!me || pp.rk != me->key) {
			set_conflict(cmd);
			break;
		}
		if (!pr->reserved || !pr_is_holder(pr, me))
			break;          /* GOOD, nothing released */
		if (pp.scope != PR_SCOPE_LU || pp.type != pr->type) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, PR_ASC_INVALID_PARAM,
				       PR_ASCQ_INVALID_RELEASE);
			break;
		}
		old_type = pr->type;
		pr_release(pr);
		if (type_reg_only(old_type) || type_all_reg(old_type))
			for (r = pr->regs; r; r = r->next)
				if (r != me)
					pr_ua(lu, pr, r, PR_ASC_PARAMS_CHANGED, PR_ASCQ_RES_RELEASED);
		changed = true;
		break;

	case PROUT_CLEAR:
		/* SPC-4 5.13, clearing */
		if (!me || pp.rk != me->key) {
			set_conflict(cmd);
			break;
		}
		for (r = pr->regs; r; r = r->next)
			if (r != me)
				pr_ua(lu, pr, r, PR_ASC_PARAMS_CHANGED, PR_ASCQ_RES_PREEMPTED);
		pr_release(pr);
		while (pr->regs)
			pr_reg_free(pr, pr->regs);
		changed = gen = true;
		break;

	case PROUT_PREEMPT:
	case PROUT_PREEMPT_ABORT:
		changed = gen = prout_preempt(cmd, pr, &pp, me);
		break;

	case PROUT_REGISTER_MOVE:
		changed = gen = prout_register_move(cmd, pr, &pp, me);
		break;
	}

	if (cmd->status == SAM_STAT_GOOD) {
		/* SPC-4 6.15.2: PRgeneration counts every successful PR OUT
		 * except RESERVE and RELEASE. */
		if (gen)
			pr->generation++;
		/* SPC-4 6.16.3: APTPL is valid only for the register actions. */
		if (changed && (pp.sa == PROUT_REGISTER || pp.sa == PROUT_REGISTER_IGNORE ||
				pp.sa == PROUT_REGISTER_MOVE))
			pr->aptpl = pp.aptpl;
		/* SPC-4 5.13.4: the disk copy follows the most recent APTPL
		 * value (written when set, removed when cleared). */
		if (changed)
			save = pr_snapshot(lu, pr);
	}
	pr_update_active(pr);
out:
	pthread_mutex_unlock(&pr->lock);
	return save;
}

void scsi_pr_out(struct scsi_cmd *cmd)
{
	struct pr_save *sv = prout_run(cmd);

	if (sv) {
		pr_save_apply(sv);
		pr_save_free(sv);
	}
}

void scsi_pr_out_exec(struct scsi_cmd *cmd)
{
	struct pr_save *sv = prout_run(cmd);

	if (!sv) {
		scsi_cmd_complete(cmd);
		return;
	}
	if (!workpool_running()) {      /* no pool threads (unit tests): inline */
		pr_save_apply(sv);
		pr_save_free(sv);
		scsi_cmd_complete(cmd);
		return;
	}
	/* fsync and rename off the reactor; GOOD once it is durable */
	sv->cmd = cmd;
	sv->job.work = pr_save_work;
	sv->job.done = pr_save_done;
	workpool_submit(&sv->job);
}

/* ------------------------------------------------------------------------ */
/* RESERVE(6) / RELEASE(6) (SPC-2; SPC-4 5.13.3)                  */
/* ------------------------------------------------------------------------ */

/* SPC-4 5.13.3: while registrations exist, RESERVE/RELEASE complete with
 * GOOD and do nothing if the nexus holds the persistent reservation or is
 * registered under a registrants only / all registrants one; otherwise
 * (SPC-2 5.5) they conflict.  Returns true if the command is decided. */
static bool r6_pr_exception(struct scsi_cmd *cmd, struct scsi_pr_state *pr)
{
	struct pr_reg *r;

	if (!pr->nregs)
		return false;
	r = pr_find_reg(pr, cmd_nexus(cmd));
	if (!(r && pr->reserved &&
	      (pr_is_holder(pr, r) || type_reg_only(pr->type) || type_all_reg(pr->type))))
		set_conflict(cmd);
	return true;
}

static struct scsi_pr_state *r6_begin(struct scsi_cmd *cmd)
{
	struct scsi_pr_state *pr;

	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
	cmd->data_in_len = 0;
	cmd->xfer_len = 0;
	cmd->xfer_is_write = false;
	/* Byte 1: 3RDPTY (bit 4) and EXTENT (bit 0) are obsolete features
	 * we do not offer (SPC-2 RESERVE(6)). */
	if (cmd->cdb[1] & 0x11) {
		bad_cdb(cmd, 1, (cmd->cdb[1] & 0x10) ? 4 : 0);
		return NULL;
	}
	if (!cmd->lu || !(pr = pr_state(cmd->lu))) {
		scsi_set_errno_sense(cmd, -ENOMEM, false);
		return NULL;
	}
	return pr;
}

void scsi_reserve6(struct scsi_cmd *cmd)
{
	const struct scsi_nexus *n = cmd_nexus(cmd);
	struct scsi_pr_state *pr = r6_begin(cmd);

	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	pr_deliver_pending(cmd->lu, pr, n);
	if (r6_pr_exception(cmd, pr))
		goto out;
	if (pr->r6_held && pr->r6_nexus != n->id) {
		set_conflict(cmd);
		goto out;
	}
	/* A repeated RESERVE from the holder is not an error (SPC-2 RESERVE(6)). */
	pr->r6_held = true;
	pr->r6_nexus = n->id;
	pr_update_active(pr);
out:
	pthread_mutex_unlock(&pr->lock);
}

void scsi_release6(struct scsi_cmd *cmd)
{
	const struct scsi_nexus *n = cmd_nexus(cmd);
	struct scsi_pr_state *pr = r6_begin(cmd);

	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	pr_deliver_pending(cmd->lu, pr, n);
	if (r6_pr_exception(cmd, pr))
		goto out;
	/* SPC-2 RELEASE(6): releasing a reservation held by another initiator, or
	 * none, is GOOD and changes nothing. */
	if (pr->r6_held && pr->r6_nexus == n->id) {
		pr->r6_held = false;
		pr->r6_nexus = 0;
		pr_update_active(pr);
	}
out:
	pthread_mutex_unlock(&pr->lock);
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

void scsi_pr_nexus_lost(struct scsi_lu *lu, uint64_t nexus_id)
{
	struct scsi_pr_state *pr = lu ? __atomic_load_n(&lu->pr, __ATOMIC_ACQUIRE) : NULL;
	struct pr_reg *r;

	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	if (pr->r6_held && pr->r6_nexus == nexus_id) {
		pr->r6_held = false;
		pr->r6_nexus = 0;
	}
	/* Registrations outlive the nexus; further UAs for them wait by
	 * name for the initiator port to come back. */
	for (r = pr->regs; r; r = r->next)
		if (r->nexus_id == nexus_id && r->port[0])
			r->nexus_id = 0;
	pr_update_active(pr);
	pthread_mutex_unlock(&pr->lock);
}

void scsi_pr_lun_reset(struct scsi_lu *lu)
{
	struct scsi_pr_state *pr = lu ? __atomic_load_n(&lu->pr, __ATOMIC_ACQUIRE) : NULL;

	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	pr->r6_held = false;
	pr->r6_nexus = 0;
	pr_update_active(pr);
	pthread_mutex_unlock(&pr->lock);
}

void scsi_pr_free(struct scsi_lu *lu)
{
	if (!lu)
		return;
	pr_destroy(__atomic_exchange_n(&lu->pr, NULL, __ATOMIC_ACQ_REL));
}
