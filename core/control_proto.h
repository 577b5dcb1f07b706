/* control_proto.h - the wire format between ringstoradm and ringstord.
 *
 * One request per connection on the AF_UNIX control socket:
 *
 *   request  = "ringstor-ctl 1\n" *( key "=" value "\n" ) "\n"
 *   response = "status " errno " " message "\n" body
 *
 * The request ends with an empty line; the daemon answers and closes, so the
 * body runs to EOF.  Keys are the tgtadm option names (mode, op, tid, lun,
 * targetname, backing-store, bstype, blocksize, initiator-address,
 * initiator-name, force, json, params, sid, cid, user, password, outgoing;
 * for NFS exports: path, clients, export, export-id; for leases: holder,
 * epoch, file).  Values are percent-encoded
 * ("%0A") for '%', control characters and DEL so that a value can never end a
 * line early.  errno is 0 on success or a positive errno (ENOENT, EEXIST,
 * EBUSY, EINVAL ...); the message is one line.  A request is at most
 * CTL_REQ_MAX bytes; both ends validate everything they decode.
 */
#ifndef RS_CONTROL_PROTO_H
#define RS_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAGIC       "ringstor-ctl 1"
#define CTL_REQ_MAX     16384
#define CTL_MSG_MAX     512
#define CTL_PATH_MAX    4096
#define CTL_NAME_MAX    224     /* iSCSI names: 223 bytes + NUL (RFC 7143 4.2.7.1) */
#define CTL_USER_MAX    256     /* CHAP_N / secrets: 255 bytes + NUL */
#define CTL_CLIENTS_MAX 4096    /* NFS export client list "SPEC(opts) SPEC(opts) ..." */
#define CTL_LINE_MAX    (CTL_PATH_MAX + CTL_CLIENTS_MAX)  /* exports(5) line */
#define CTL_HOLDER_MAX  256     /* lease holder: initiator name, address or AUTH_SYS machine name */
#define CTL_DEFAULT_SOCKET "/run/ringstor/ringstord.sock"

enum ctl_mode {
	CTL_MODE_NONE = 0,
	CTL_MODE_TARGET,
	CTL_MODE_LU,        /* "logicalunit" / "lu" */
	CTL_MODE_SYS,       /* "system" / "sys" */
	CTL_MODE_CONN,      /* "conn" / "connection" */
	CTL_MODE_SESSION,   /* "session" */
	CTL_MODE_ACCOUNT,   /* "account" (CHAP) */
	CTL_MODE_EXPORT,    /* "export" (NFS, --lld nfs) */
	CTL_MODE_LOCK,      /* "lock" (NFS NLM locks, --lld nfs) */
	CTL_MODE_LEASE,     /* "lease" (image leases, iSCSI LUs and NFS files; core/lease.h) */
};

enum ctl_op {
	CTL_OP_NONE = 0,
	CTL_OP_NEW,
	CTL_OP_DELETE,
	CTL_OP_SHOW,
	CTL_OP_BIND,
	CTL_OP_UNBIND,
	CTL_OP_UPDATE,
	CTL_OP_DUMP,        /* running configuration as a config file */
	CTL_OP_ACQUIRE,     /* mode lease */
	CTL_OP_TRANSFER,    /* mode lease */
	CTL_OP_RELEASE,     /* mode lease */
	CTL_OP_STAT,        /* I/O statistics (mode sys, target; core/stats.h) */
};

struct ctl_request {
	enum ctl_mode mode;
	enum ctl_op op;
	bool has_tid;
	int tid;                        /* 1..INT32_MAX */
	bool has_lun;
	uint64_t lun;
	bool has_sid;
	uint64_t sid;
	bool has_cid;
	uint16_t cid;
	bool has_blocksize;
	uint32_t blocksize;
	bool force;
	bool json;
	bool outgoing;                  /* account bind/unbind --outgoing */
	char targetname[CTL_NAME_MAX];
	char backing_store[CTL_PATH_MAX];
	char bstype[16];
	char initiator_address[64];
	char initiator_name[CTL_NAME_MAX];
	char params[1024];              /* "key=value,key=value" or a bare word */
	char user[CTL_USER_MAX];        /* account user name */
	char password[CTL_USER_MAX];    /* account secret (never logged) */
	/* mode export: the export by path or by id, its client list, or the
	 * whole exports(5) line ("/srv/x 10.0.0.0/8(rw) *(ro)") instead. */
	bool has_export_id;
	uint32_t export_id;
	char path[CTL_PATH_MAX];
	char clients[CTL_CLIENTS_MAX];
	char export_line[CTL_LINE_MAX];
	/* mode lease: the holder (initiator name; NFS: client address or
	 * AUTH_SYS machine name), the epoch the caller last saw (the fencing
	 * token), and an NFS file as a path relative to export-id's root
	 * (or --path: the file's absolute server path). */
	char holder[CTL_HOLDER_MAX];
	bool has_epoch;
	uint64_t epoch;
	char file[CTL_PATH_MAX];
};

/* Names <-> enums.  Parsers return NONE for unknown words. */
enum ctl_mode ctl_mode_parse(const char *s);
enum ctl_op ctl_op_parse(const char *s);
const char *ctl_mode_name(enum ctl_mode m);
const char *ctl_op_name(enum ctl_op o);

void ctl_request_init(struct ctl_request *r);
/* Encode into buf; returns the length, or -1 if it does not fit. */
int ctl_request_encode(const struct ctl_request *r, char *buf, size_t len);
/* Decode exactly one request (buf[0..len) must end with the empty line).
 * 0, or -1 with a message in err. */
int ctl_request_decode(const char *buf, size_t len, struct ctl_request *r,
		       char *err, size_t errlen);
/* Position just after the terminating empty line, or 0 if not yet complete. */
size_t ctl_request_complete(const char *buf, size_t len);

/* "status <code> <message>\n" into buf (newlines in msg become spaces).
 * Returns the length (truncated to fit). */
int ctl_status_format(char *buf, size_t len, int code, const char *msg);
/* Parse a status line (without or with its '\n').  0 or -1 if malformed. */
int ctl_status_parse(const char *line, size_t len, int *code, char *msg, size_t msglen);

#endif
