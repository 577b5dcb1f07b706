/* ringstoradm - administer a running ringstord, with tgtadm's vocabulary.
 *
 * Every tgt tutorial command works after s/tgtadm/ringstoradm/, e.g.
 *   ringstoradm --lld iscsi --op new --mode target --tid 1 -T iqn.2001-04.com.example:disk1
 *   ringstoradm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b /tmp/disk.img
 *   ringstoradm --lld iscsi --op bind --mode target --tid 1 -I ALL
 *   ringstoradm --lld iscsi --mode target --op show
 *   ringstoradm --lld iscsi --mode account --op new --user U --password -
 *   ringstoradm --lld nfs --mode export --op new --path /srv/x --clients '*(ro)'
 *   ringstoradm --mode lease --op acquire --tid 1 --lun 1 --holder iqn.1994-05.com.example:host-a
 * Arguments are checked here first (so typos fail fast with a clear message),
 * then sent as one request over the control socket (core/control_proto.h);
 * the daemon's answer body goes to stdout, errors to stderr as
 * "ringstoradm: <message>", and the exit status is the errno the daemon
 * reported (EINVAL 22 for bad arguments, ENOENT 2, EEXIST 17, EBUSY 16;
 * ESTALE 116 for a lease operation with a stale epoch), as tgtadm does;
 * 107 (ENOTCONN) when the daemon cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/control_proto.h"
#include "core/stats.h"
#include "core/version.h"

#define RESP_MAX (64u << 20)    /* a show of thousands of LUNs is far below this */
#define CLI_TIMEOUT_S 60        /* creating a LUN may preallocate; be patient */

static void usage(FILE *out)
{
	fprintf(out,
"Usage: ringstoradm [OPTION]...\n"
"Administer ringstord (tgtadm-compatible options).\n"
"\n"
"  -L, --lld iscsi|nfs                low level driver: iscsi (default) or nfs\n"
"  -m, --mode MODE                    iscsi: target | logicalunit (lu) | system (sys) | conn |\n"
"                                     session | account;  nfs: export | lock;  both: lease\n"
"  -o, --op OP                        new | delete | show | bind | unbind | update | dump |\n"
"                                     stat;  lease: show | acquire | transfer | release\n"
"  -t, --tid TID                      target id (> 0; 0 = discovery for account bind/unbind)\n"
"  -T, --targetname IQN               target name (iqn.YYYY-MM.domain:id, eui., naa.)\n"
"  -l, --lun LUN                      logical unit number (0..16383)\n"
"  -b, --backing-store PATH           file or block device backing a LUN\n"
"  -E, --bstype TYPE                  rdwr | aio | file (same thing) | null\n"
"  -y, --blocksize N                  logical block size: 512 (default) or 4096\n"
"      --bsoflags direct              open the backing store with O_DIRECT\n"
"  -I, --initiator-address ADDR       ALL | IPv4/IPv6 address | CIDR (bind/unbind)\n"
"  -Q, --initiator-name IQN           initiator name ACL (bind/unbind)\n"
"  -P, --params K=V[,K=V]             LUN new: readonly, direct, create, size, serial,\n"
"                                     thin_provisioning (UNMAP/WRITE SAME unmap);\n"
"                                     LUN update: size=<bytes|K|M|G|T> (online resize;\n"
"                                     shrinking needs --force) or refresh (re-read the size)\n"
"  -s, --sid SID                      session (I_T nexus) id for conn/session show/delete\n"
"  -c, --cid CID                      connection id for conn delete (0)\n"
"  -u, --user NAME                    CHAP account user name (mode account)\n"
"  -p, --password PASS                CHAP secret; '-' reads it from stdin; default\n"
"                                     $RINGSTOR_PASSWORD (keeps it out of ps)\n"
"  -O, --outgoing                     account bind/unbind: the target's own (mutual CHAP)\n"
"                                     account\n"
"  -F, -f, --force                    delete a target with sessions; shrink a LUN\n"
"  -C, --control-socket PATH          default $RINGSTOR_SOCKET or " CTL_DEFAULT_SOCKET "\n"
"      --json                         machine-readable show / stat output\n"
"      --interval SECONDS             stat: sample twice SECONDS apart (0.1..3600) and\n"
"                                     show rates and latency percentiles over that\n"
"                                     interval (default: totals since creation)\n"
"  -V, --version                      print the version\n"
"  -h, --help                         this text\n"
"\n"
"NFS exports (--lld nfs --mode export; exports(5) semantics, first matching client wins):\n"
"      --path DIR                     the exported directory (new, update, delete)\n"
"      --clients 'SPEC(opts) ...'     client list: *, host, *.domain, address, CIDR, each\n"
"                                     with options rw|ro (default ro), sync|async,\n"
"                                     root_squash|no_root_squash|all_squash, anonuid=,\n"
"                                     anongid=, secure|insecure, fsid=N, sec=sys:none\n"
"      --export 'DIR SPEC(opts) ...'  the same as one /etc/exports line (instead of\n"
"                                     --path and --clients; quote or \\040 blanks in DIR)\n"
"      --export-id N                  new: the export's fsid (persistent file handle id);\n"
"                                     update/delete: select the export by id\n"
"NFS locks (--lld nfs --mode lock; NLM byte-range locks and share reservations):\n"
"      --op show [--json]             every lock, blocked request and share\n"
"      --op delete [--initiator-address CLIENT] [--path FILE]\n"
"                                     break the locks of a client (its NLM name or\n"
"                                     address) and/or on a file; neither: all locks\n"
"Image leases (--mode lease; one writer per LUN or NFS file, fenced by an epoch):\n"
"      --op show [--json]             every lease (or the one of the object given)\n"
"      --op acquire OBJ --holder ID [--epoch E]\n"
"                                     take a free object (new epoch = max(last, E) + 1,\n"
"                                     printed); confirm it if ID holds it already\n"
"      --op transfer OBJ --holder NEW --epoch E\n"
"                                     hand it over; E must be the current epoch (else\n"
"                                     exit 116, ESTALE); prints the new epoch E + 1\n"
"      --op release OBJ --epoch E [--holder ID]\n"
"                                     free it (the epoch is kept; stale E: exit 116)\n"
"      OBJ: --tid N --lun L (iSCSI; the LU's NAA identity)  or  --lld nfs --path FILE\n"
"           or --lld nfs --export-id N --file RELPATH\n"
"      ID:  iSCSI: an initiator name;  NFS: a client address or AUTH_SYS host name\n"
"      While a lease is held, writes from anyone else get RESERVATION CONFLICT (iSCSI)\n"
"      or NFS3ERR_ACCES (NFS); reads stay allowed.  Leases survive restarts.\n"
"Statistics (--op stat; counters are cumulative, rates need --interval):\n"
"      --mode sys --op stat           every LUN and NFS export\n"
"      --mode target --op stat [--tid N]\n"
"                                     the LUNs of one target (or of all) and its sessions\n"
"      --lld nfs --mode export --op stat\n"
"                                     the NFS exports\n"
"      Per LUN / export and class (read, write, other): IOPS, MB/s, operations,\n"
"      average and p50/p90/p99/p99.9/max latency (us, within 6.25%%), errors (SCSI\n"
"      status and sense key), commands in flight; per target the sessions and\n"
"      initiator names.\n"
"\n"
"Examples:\n"
"  ringstoradm --lld iscsi --op new --mode target --tid 1 -T iqn.2001-04.com.example:storage.disk1\n"
"  ringstoradm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b /tmp/disk.img\n"
"  ringstoradm --lld iscsi --op bind --mode target --tid 1 -I ALL\n"
"  ringstoradm --lld iscsi --op show --mode target\n"
"  ringstoradm --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params size=20G\n"
"  ringstoradm --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params refresh\n"
"  RINGSTOR_PASSWORD=... ringstoradm --op new --mode account --user alice\n"
"  ringstoradm --lld iscsi --op bind --mode account --tid 1 --user alice\n"
"  ringstoradm --lld iscsi --op show --mode conn --tid 1\n"
"  ringstoradm --lld iscsi --op delete --mode session --tid 1 --sid 3\n"
"  ringstoradm --lld nfs --mode export --op new --path /srv/images \\\n"
"              --clients '10.0.0.0/8(rw,no_root_squash) *(ro)'\n"
"  ringstoradm --lld nfs --mode export --op new --export '/srv/iso *(ro,insecure)'\n"
"  ringstoradm --lld nfs --mode export --op update --path /srv/iso --clients '*(rw)'\n"
"  ringstoradm --lld nfs --mode export --op show [--json]\n"
"  ringstoradm --lld nfs --mode export --op delete --path /srv/iso\n"
"  ringstoradm --lld nfs --mode lock --op show [--json]\n"
"  ringstoradm --lld nfs --mode lock --op delete --initiator-address client1.example.com\n"
"  ringstoradm --mode lease --op acquire --tid 1 --lun 1 --holder iqn.1994-05.com.example:a\n"
"  ringstoradm --mode lease --op transfer --tid 1 --lun 1 --holder iqn.1994-05.com.example:b --epoch 1\n"
"  ringstoradm --lld nfs --mode lease --op acquire --path /srv/images/vm.img --holder 10.0.0.2\n"
"  ringstoradm --mode lease --op show --json\n"
"  ringstoradm --op dump > running.conf   (contains the CHAP passwords)\n"
"  ringstoradm --mode sys --op stat --interval 1\n"
"  ringstoradm --mode target --op stat --tid 1 --json\n"
"  ringstoradm --lld iscsi --op delete --mode logicalunit --tid 1 --lun 1\n"
"  ringstoradm --lld iscsi --op delete --mode target --tid 1\n");
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("ringstoradm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static uint64_t parse_num(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 0;

	if (!s || !*s)
		die(EINVAL, "%s: missing number", opt);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			die(EINVAL, "%s: '%s' is not a number", opt, s);
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			die(EINVAL, "%s: '%s' is out of range", opt, s);
		v = v * 10 + d;
	}
	if (v < min || v > max)
		die(EINVAL, "%s: %s is out of range (%llu..%llu)", opt, s, (unsigned long long)min,
		    (unsigned long long)max);
	return v;
}

static void copy_opt(const char *opt, char *dst, size_t cap, const char *val)
{
	if (strlen(val) >= cap)
		die(EINVAL, "%s: value too long (at most %zu bytes)", opt, cap - 1);
	strcpy(dst, val);
}

static void add_param(struct ctl_request *r, const char *p)
{
	size_t len = strlen(r->params);

	if (len + strlen(p) + 2 > sizeof(r->params))
		die(EINVAL, "--params: too long");
	if (len)
		strcat(r->params, ",");
	strcat(r->params, p);
}

static bool bsoflags_word(const char *s)
{
	return s && (!strcmp(s, "direct") || !strcmp(s, "sync") || !strcmp(s, "direct,sync") ||
		     !strcmp(s, "sync,direct"));
}

static void apply_bsoflags(struct ctl_request *r, const char *s)
{
	char buf[64], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "direct"))
			add_param(r, "direct=1");
		else if (strcmp(tok, "sync") != 0)   /* every write honours FUA/flush anyway */
			die(EINVAL, "--bsoflags: unknown flag '%s' (direct, sync)", tok);
	}
}

/* What each (mode, op) needs, checked before bothering the daemon. */
static bool tid_given;   /* --tid seen (0 is sent as "no tid") */

static void validate(const struct ctl_request *r)
{
	if (r->op == CTL_OP_DUMP)
		return;
	switch (r->mode) {
	case CTL_MODE_TARGET:
		switch (r->op) {
		case CTL_OP_NEW:
			if (!r->has_tid)
				die(EINVAL, "target new: --tid is required");
			if (!r->targetname[0])
				die(EINVAL, "target new: --targetname is required");
			break;
		case CTL_OP_DELETE:
			if (!r->has_tid)
				die(EINVAL, "target delete: --tid is required");
			break;
		case CTL_OP_BIND:
		case CTL_OP_UNBIND:
			if (!r->has_tid)
				die(EINVAL, "target %s: --tid is required", ctl_op_name(r->op));
			if (!r->initiator_address[0] && !r->initiator_name[0])
				die(EINVAL, "target %s: --initiator-address or --initiator-name is required",
				    ctl_op_name(r->op));
			break;
		case CTL_OP_SHOW:
		case CTL_OP_STAT:
			break;
		default:
			die(EINVAL, "mode target: unsupported operation '%s' (new, delete, show, bind, unbind, "
			    "stat)", ctl_op_name(r->op));
		}
		break;
	case CTL_MODE_LU:
		if (r->op != CTL_OP_NEW && r->op != CTL_OP_DELETE && r->op != CTL_OP_UPDATE)
			die(EINVAL, "mode logicalunit: unsupported operation '%s' (new, delete, update)",
			    ctl_op_name(r->op));
		if (!r->has_tid)
			die(EINVAL, "logicalunit %s: --tid is required", ctl_op_name(r->op));
		if (!r->has_lun)
			die(EINVAL, "logicalunit %s: --lun is required", ctl_op_name(r->op));
		if (r->op == CTL_OP_NEW && !r->backing_store[0] && strcmp(r->bstype, "null") != 0)
			die(EINVAL, "logicalunit new: --backing-store is required");
		if (r->op == CTL_OP_UPDATE && !r->params[0])
			die(EINVAL, "logicalunit update: --params is required (e.g. --params refresh)");
		if (r->has_blocksize && r->blocksize != 512 && r->blocksize != 4096)
			die(EINVAL, "--blocksize: must be 512 or 4096");
		break;
	case CTL_MODE_SYS:
		if (r->op != CTL_OP_SHOW && r->op != CTL_OP_STAT)
			die(EINVAL, "mode %s: only --op show and --op dump (and --op stat) are supported",
			    ctl_mode_name(r->mode));
		break;
	case CTL_MODE_CONN:
	case CTL_MODE_SESSION:
		if (r->op == CTL_OP_DELETE) {
			if (!r->has_tid || !r->has_sid)
				die(EINVAL, "%s delete: --tid and --sid are required", ctl_mode_name(r->mode));
		} else if (r->op != CTL_OP_SHOW) {
			die(EINVAL, "mode %s: only --op show and --op delete are supported",
			    ctl_mode_name(r->mode));
		}
		break;
	case CTL_MODE_ACCOUNT:
		switch (r->op) {
		case CTL_OP_NEW:
			if (!r->user[0])
				die(EINVAL, "account new: --user is required");
			if (!r->password[0])
				die(EINVAL, "account new: --password (or $RINGSTOR_PASSWORD) is required");
			break;
		case CTL_OP_BIND:
		case CTL_OP_UNBIND:
			/* no silent default: a forgotten --tid must not make
			 * discovery require CHAP */
			if (!tid_given)
				die(EINVAL, "account %s: --tid is required (0 = discovery sessions)",
				    ctl_op_name(r->op));
			/* fall through */
		case CTL_OP_DELETE:
			if (!r->user[0])
				die(EINVAL, "account %s: --user is required", ctl_op_name(r->op));
			break;
		case CTL_OP_SHOW:
			break;
		default:
			die(EINVAL, "mode account: unsupported operation '%s' (new, delete, bind, unbind, show)",
			    ctl_op_name(r->op));
		}
		if (r->password[0] && r->op != CTL_OP_NEW)
			die(EINVAL, "--password is only used by account new");
		break;
	case CTL_MODE_EXPORT:
		switch (r->op) {
		case CTL_OP_NEW:
		case CTL_OP_UPDATE:
			if (r->export_line[0] && (r->path[0] || r->clients[0]))
				die(EINVAL, "export %s: give either --export 'DIR SPEC(opts)...' or "
				    "--path with --clients", ctl_op_name(r->op));
			if (!r->export_line[0] && !r->clients[0])
				die(EINVAL, "export %s: --clients 'SPEC(opts) ...' (with --path) or "
				    "--export 'DIR SPEC(opts) ...' is required", ctl_op_name(r->op));
			if (!r->export_line[0] && !r->path[0] &&
			    !(r->op == CTL_OP_UPDATE && r->has_export_id))
				die(EINVAL, "export %s: --path is required", ctl_op_name(r->op));
			break;
		case CTL_OP_DELETE:
			if (!r->path[0] && !r->has_export_id)
				die(EINVAL, "export delete: --path or --export-id is required");
			if (r->clients[0] || r->export_line[0])
				die(EINVAL, "export delete: --clients/--export are not used");
			break;
		case CTL_OP_SHOW:
		case CTL_OP_STAT:
			if (r->path[0] || r->has_export_id || r->clients[0] || r->export_line[0])
				die(EINVAL, "export %s lists every export (no --path/--export-id)",
				    ctl_op_name(r->op));
			break;
		default:
			die(EINVAL, "mode export: unsupported operation '%s' (new, delete, update, show)",
			    ctl_op_name(r->op));
		}
		break;
	case CTL_MODE_LEASE: {
		bool nfs = r->path[0] || r->file[0] || r->has_export_id;
		bool scsi = r->has_tid || r->has_lun;
		if (r->op != CTL_OP_SHOW && r->op != CTL_OP_ACQUIRE && r->op != CTL_OP_TRANSFER &&
		    r->op != CTL_OP_RELEASE)
			die(EINVAL, "mode lease: unsupported operation '%s' (show, acquire, transfer, "
			    "release)", ctl_op_name(r->op));
		if (nfs && scsi)
			die(EINVAL, "lease: give --tid/--lun (iSCSI) or --path / --export-id --file (NFS), "
			    "not both");
		if (scsi && !(r->has_tid && r->has_lun))
			die(EINVAL, "lease: an iSCSI lease needs both --tid and --lun");
		if (nfs && r->path[0] && r->file[0])
			die(EINVAL, "lease: give --path FILE or --export-id N --file RELPATH, not both");
		if (nfs && !r->path[0] && !(r->has_export_id && r->file[0]))
			die(EINVAL, "lease: an NFS lease needs --path FILE or --export-id N --file RELPATH");
		if (r->op != CTL_OP_SHOW && !nfs && !scsi)
			die(EINVAL, "lease %s: the object is required: --tid N --lun L (iSCSI) or "
			    "--lld nfs --path FILE", ctl_op_name(r->op));
		if ((r->op == CTL_OP_ACQUIRE || r->op == CTL_OP_TRANSFER) && !r->holder[0])
			die(EINVAL, "lease %s: --holder is required", ctl_op_name(r->op));
		if ((r->op == CTL_OP_TRANSFER || r->op == CTL_OP_RELEASE) && !r->has_epoch)
			die(EINVAL, "lease %s: --epoch (the current epoch) is required", ctl_op_name(r->op));
		if (r->op == CTL_OP_SHOW && (r->holder[0] || r->has_epoch))
			die(EINVAL, "lease show: --holder/--epoch are not used");
		if (r->clients[0] || r->export_line[0])
			die(EINVAL, "lease: --clients/--export are not used");
		break;
	}
	case CTL_MODE_LOCK:
		if (r->op != CTL_OP_SHOW && r->op != CTL_OP_DELETE)
			die(EINVAL, "mode lock: only --op show and --op delete are supported");
		if (r->op == CTL_OP_SHOW && (r->path[0] || r->initiator_address[0]))
			die(EINVAL, "lock show lists every lock (--path/--initiator-address are for delete)");
		if (r->clients[0] || r->export_line[0] || r->has_export_id)
			die(EINVAL, "lock: --clients/--export/--export-id are not used");
		break;
	default:
		die(EINVAL, "unknown mode");
	}
}

/* --password -: one line from stdin (a pipe, a here-string or a prompt
 * without echo being the caller's business), so that the secret never
 * shows in ps or in the shell history. */
static void read_password(char *dst, size_t cap)
{
	char line[CTL_USER_MAX + 2];
	size_t len;

	if (!fgets(line, sizeof(line), stdin))
		die(EINVAL, "--password -: no password on stdin");
	len = strlen(line);
	if (len && line[len - 1] == '\n')
		line[--len] = '\0';
	else if (!feof(stdin))
		die(EINVAL, "--password -: too long (at most %zu bytes)", cap - 1);
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!len)
		die(EINVAL, "--password -: empty password");
	if (len >= cap)
		die(EINVAL, "--password -: too long (at most %zu bytes)", cap - 1);
	memcpy(dst, line, len + 1);
	explicit_bzero(line, sizeof(line));
}

static int connect_daemon(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CLI_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		die(EINVAL, "control socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(ENOTCONN, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(ENOTCONN, "can't connect to ringstord at %s: %s (is it running? see -C)", path,
		    strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Send one request, read the whole answer.  Returns the daemon's status
 * code; *resp (malloc'd, *got bytes) holds the answer, its body starting at
 * *hdr; msg gets the status message.  Dies if the daemon cannot be reached. */
static int transact(const char *sock, struct ctl_request *req, char **respp, size_t *gotp,
		    size_t *hdrp, char msg[CTL_MSG_MAX])
{
	static char reqbuf[CTL_REQ_MAX];
	int len, fd, code;

	len = ctl_request_encode(req, reqbuf, sizeof(reqbuf));
	explicit_bzero(req->password, sizeof(req->password));
	if (len < 0)
		die(EINVAL, "request too large");
	fd = connect_daemon(sock);
	for (int off = 0; off < len;) {
		ssize_t n = send(fd, reqbuf + off, (size_t)(len - off), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(ENOTCONN, "can't send the request to ringstord: %s", strerror(errno));
		}
		off += (int)n;
	}

	size_t cap = 65536, got = 0;
	char *resp = malloc(cap);
	if (!resp)
		die(ENOMEM, "out of memory");
	for (;;) {
		if (got == cap) {
			if (cap >= RESP_MAX)
				die(EPROTO, "response from ringstord too large");
			char *n = realloc(resp, cap * 2);
			if (!n)
				die(ENOMEM, "out of memory");
			resp = n;
			cap *= 2;
		}
		ssize_t n = recv(fd, resp + got, cap - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(ETIMEDOUT, "no answer from ringstord: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	explicit_bzero(reqbuf, sizeof(reqbuf));

	char *nl = memchr(resp, '\n', got);
	if (!nl || ctl_status_parse(resp, (size_t)(nl - resp + 1), &code, msg, CTL_MSG_MAX) < 0)
		die(EPROTO, "malformed answer from ringstord");
	*respp = resp;
	*gotp = got;
	*hdrp = (size_t)(nl - resp + 1);
	return code;
}

/* One raw statistics snapshot from the daemon (core/stats.h). */
static void stat_sample(const char *sock, const struct ctl_request *base, struct stats_snap *s)
{
	struct ctl_request req = *base;
	char *resp, msg[CTL_MSG_MAX], err[256];
	size_t got, hdr;
	int code;

	snprintf(req.params, sizeof(req.params), "raw");
	req.json = false;
	code = transact(sock, &req, &resp, &got, &hdr, msg);
	if (code) {
		free(resp);
		die(code > 255 ? 1 : code, "%s", msg[0] ? msg : strerror(code));
	}
	if (stats_snap_parse_raw(resp + hdr, got - hdr, s, err, sizeof(err)) < 0) {
		free(resp);
		die(EPROTO, "%s", err);
	}
	free(resp);
}

/* --op stat: the daemon hands out cumulative counters; rates over an
 * interval are the difference of two samples divided by the time between
 * them (the daemon's clock, so that connection set-up does not count). */
static int do_stat(const char *sock, const struct ctl_request *req, double interval_s)
{
	struct stats_snap a, b, d;
	double secs = 0;

	stat_sample(sock, req, &a);
	if (interval_s > 0) {
		struct timespec ts = { .tv_sec = (time_t)interval_s,
				       .tv_nsec = (long)((interval_s - (double)(time_t)interval_s) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		stat_sample(sock, req, &b);
		if (stats_snap_diff(&b, &a, &d) < 0)
			die(ENOMEM, "out of memory");
		secs = b.time_ns > a.time_ns ? (double)(b.time_ns - a.time_ns) / 1e9 : interval_s;
		stats_snap_free(&a);
		stats_snap_free(&b);
		a = d;
	}
	if (req->json)
		stats_render_json(stdout, &a, secs);
	else
		stats_render_text(stdout, &a, secs);
	stats_snap_free(&a);
	if (fflush(stdout) != 0)
		die(EIO, "write error on stdout");
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_BSOFLAGS, OPT_BSOPTS, OPT_NAME, OPT_VALUE, OPT_PATH, OPT_CLIENTS,
	       OPT_EXPORT, OPT_EXPORT_ID, OPT_HOLDER, OPT_EPOCH, OPT_FILE, OPT_INTERVAL };
	static const struct option opts[] = {
		{ "lld", required_argument, NULL, 'L' },
		{ "mode", required_argument, NULL, 'm' },
		{ "op", required_argument, NULL, 'o' },
		{ "tid", required_argument, NULL, 't' },
		{ "sid", required_argument, NULL, 's' },
		{ "cid", required_argument, NULL, 'c' },
		{ "targetname", required_argument, NULL, 'T' },
		{ "lun", required_argument, NULL, 'l' },
		{ "backing-store", required_argument, NULL, 'b' },
		{ "bstype", required_argument, NULL, 'E' },
		{ "blocksize", required_argument, NULL, 'y' },
		{ "bsoflags", required_argument, NULL, OPT_BSOFLAGS },
		{ "bsopts", required_argument, NULL, OPT_BSOPTS },
		{ "initiator-address", required_argument, NULL, 'I' },
		{ "initiator-name", required_argument, NULL, 'Q' },
		{ "params", required_argument, NULL, 'P' },
		{ "force", no_argument, NULL, 'F' },
		{ "control-socket", required_argument, NULL, 'C' },
		{ "control-port", required_argument, NULL, 'C' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "value", required_argument, NULL, OPT_VALUE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "outgoing", no_argument, NULL, 'O' },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "clients", required_argument, NULL, OPT_CLIENTS },
		{ "export", required_argument, NULL, OPT_EXPORT },
		{ "export-id", required_argument, NULL, OPT_EXPORT_ID },
		{ "holder", required_argument, NULL, OPT_HOLDER },
		{ "epoch", required_argument, NULL, OPT_EPOCH },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ctl_request req;
	double interval_s = 0;
	const char *sock = getenv("RINGSTOR_SOCKET");
	bool password_stdin = false, lld_nfs = false, lld_given = false;
	int c, code;

	ctl_request_init(&req);
	if (!sock || !*sock)
		sock = CTL_DEFAULT_SOCKET;
	if (argc < 2) {
		usage(stderr);
		return EINVAL;
	}
	while ((c = getopt_long(argc, argv, "L:m:o:t:s:c:T:l:b:E:y:I:Q:P:FC:f::u:p:OVh", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			if (!strcasecmp(optarg, "nfs"))
				lld_nfs = true;
			else if (!strcasecmp(optarg, "iscsi"))
				lld_nfs = false;
			else
				die(EINVAL, "--lld: driver '%s' is not supported (iscsi, nfs)", optarg);
			lld_given = true;
			break;
		case OPT_PATH:
			if (optarg[0] != '/')
				die(EINVAL, "--path: '%s' is not an absolute path", optarg);
			copy_opt("--path", req.path, sizeof(req.path), optarg);
			break;
		case OPT_CLIENTS:
			copy_opt("--clients", req.clients, sizeof(req.clients), optarg);
			break;
		case OPT_EXPORT:
			copy_opt("--export", req.export_line, sizeof(req.export_line), optarg);
			break;
		case OPT_EXPORT_ID:
			req.export_id = (uint32_t)parse_num("--export-id", optarg, 0, UINT32_MAX);
			req.has_export_id = true;
			break;
		case OPT_HOLDER:
			copy_opt("--holder", req.holder, sizeof(req.holder), optarg);
			break;
		case OPT_EPOCH:
			req.epoch = parse_num("--epoch", optarg, 0, UINT64_MAX);
			req.has_epoch = true;
			break;
		case OPT_INTERVAL: {
			char *end = NULL;
			errno = 0;
			interval_s = strtod(optarg, &end);
			if (errno || !end || *end || end == optarg || !(interval_s >= 0.1) ||
			    interval_s > 3600)
				die(EINVAL, "--interval: '%s' is not a number of seconds in 0.1..3600", optarg);
			break;
		}
		case OPT_FILE:
			if (optarg[0] == '/')
				die(EINVAL, "--file: '%s' must be relative to the export (or use --path)", optarg);
			copy_opt("--file", req.file, sizeof(req.file), optarg);
			break;
		case 'm':
			req.mode = ctl_mode_parse(optarg);
			if (req.mode == CTL_MODE_NONE)
				die(EINVAL, "--mode: unknown mode '%s' (target, logicalunit, system, conn, session, "
				    "account; nfs: export, lock; both: lease)", optarg);
			break;
		case 'o':
			req.op = ctl_op_parse(optarg);
			if (req.op == CTL_OP_NONE)
				die(EINVAL, "--op: unknown operation '%s' (new, delete, show, bind, unbind, update, "
				    "dump; lease: acquire, transfer, release)", optarg);
			break;
		case 't':
			req.tid = (int)parse_num("--tid", optarg, 0, 2147483647);
			req.has_tid = true;
			tid_given = true;
			break;
		case 's':
			req.sid = parse_num("--sid", optarg, 1, UINT64_MAX);
			req.has_sid = true;
			break;
		case 'c':
			req.cid = (uint16_t)parse_num("--cid", optarg, 0, 65535);
			req.has_cid = true;
			break;
		case 'u':
			copy_opt("--user", req.user, sizeof(req.user), optarg);
			break;
		case 'p':
			if (!strcmp(optarg, "-"))
				password_stdin = true;
			else {
				copy_opt("--password", req.password, sizeof(req.password), optarg);
				/* shorten the window in which ps shows it (the
				 * real cure is $RINGSTOR_PASSWORD or "-") */
				memset(optarg, 'x', strlen(optarg));
			}
			break;
		case 'O':
			req.outgoing = true;
			break;
		case 'T':
			copy_opt("--targetname", req.targetname, sizeof(req.targetname), optarg);
			break;
		case 'l':
			req.lun = parse_num("--lun", optarg, 0, UINT64_MAX);
			req.has_lun = true;
			break;
		case 'b':
			copy_opt("--backing-store", req.backing_store, sizeof(req.backing_store), optarg);
			break;
		case 'E':
			copy_opt("--bstype", req.bstype, sizeof(req.bstype), optarg);
			break;
		case 'y':
			req.blocksize = (uint32_t)parse_num("--blocksize", optarg, 1, UINT32_MAX);
			req.has_blocksize = true;
			break;
		case OPT_BSOFLAGS:
			apply_bsoflags(&req, optarg);
			break;
		case OPT_BSOPTS:
			die(EINVAL, "--bsopts is not supported by any ringstor backing store");
		case OPT_NAME:
		case OPT_VALUE:
			die(EINVAL, "--name/--value (target parameter update) is not supported; "
			    "set iSCSI parameters in the configuration file");
		case 'I':
			copy_opt("--initiator-address", req.initiator_address,
				 sizeof(req.initiator_address), optarg);
			break;
		case 'Q':
			copy_opt("--initiator-name", req.initiator_name, sizeof(req.initiator_name), optarg);
			break;
		case 'P':
			add_param(&req, optarg);
			break;
		case 'F':
			req.force = true;
			break;
		case 'f':
			/* tgtadm spells --bsoflags "-f"; we also read a bare -f as
			 * --force.  "-f direct" / "-fdirect" stay bsoflags. */
			if (optarg) {
				apply_bsoflags(&req, optarg);
			} else if (optind < argc && bsoflags_word(argv[optind])) {
				apply_bsoflags(&req, argv[optind]);
				optind++;
			} else {
				req.force = true;
			}
			break;
		case 'C':
			sock = optarg;
			break;
		case OPT_JSON:
			req.json = true;
			break;
		case 'V':
			printf("ringstoradm %s\n", RINGSTOR_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'ringstoradm --help' for more information.\n");
			return EINVAL;
		}
	}
	if (optind < argc)
		die(EINVAL, "unexpected argument '%s'", argv[optind]);
	/* --op dump needs no mode: it is always the whole configuration */
	if (req.op == CTL_OP_DUMP)
		req.mode = CTL_MODE_SYS;
	/* --tid 0 is tgt's name for discovery sessions (account bind) */
	if (req.has_tid && req.tid == 0) {
		if (req.mode != CTL_MODE_ACCOUNT)
			die(EINVAL, "--tid: 0 is out of range (1..2147483647; 0 only with --mode account)");
		req.has_tid = false;
	}
	if (req.mode == CTL_MODE_NONE)
		die(EINVAL, "--mode is required (target, logicalunit, system, conn, session, account; "
		    "nfs: export, lock; both: lease)");
	/* --lld picks the vocabulary: NFS modes under nfs, the others under
	 * iscsi (system and dump cover both). */
	if (lld_given && req.mode == CTL_MODE_LEASE) {
		/* leases exist for both: --lld names which kind of object */
		if (lld_nfs && (req.has_tid || req.has_lun))
			die(EINVAL, "--lld nfs --mode lease: the object is --path FILE or --export-id N "
			    "--file RELPATH, not --tid/--lun");
		if (!lld_nfs && (req.path[0] || req.file[0] || req.has_export_id))
			die(EINVAL, "--mode lease with --path/--export-id/--file needs --lld nfs");
	} else if (lld_given && req.mode != CTL_MODE_SYS) {
		bool nfs_mode = req.mode == CTL_MODE_EXPORT || req.mode == CTL_MODE_LOCK;
		if (lld_nfs && !nfs_mode)
			die(EINVAL, "--lld nfs: mode %s is an iscsi mode (nfs: export, lock)",
			    ctl_mode_name(req.mode));
		if (!lld_nfs && nfs_mode)
			die(EINVAL, "mode %s needs --lld nfs", ctl_mode_name(req.mode));
	}
	if ((req.path[0] || req.clients[0] || req.export_line[0] || req.has_export_id) &&
	    req.mode != CTL_MODE_EXPORT && req.mode != CTL_MODE_LEASE &&
	    !(req.mode == CTL_MODE_LOCK && !req.clients[0] &&
	    !req.export_line[0] && !req.has_export_id) && req.op != CTL_OP_DUMP)
		die(EINVAL, "--path, --clients, --export and --export-id belong to --lld nfs --mode export "
		    "(--path also to --mode lock)");
	if (req.mode == CTL_MODE_ACCOUNT && req.op == CTL_OP_NEW && !req.password[0]) {
		const char *env = getenv("RINGSTOR_PASSWORD");
		if (password_stdin)
			read_password(req.password, sizeof(req.password));
		else if (env && *env)
			copy_opt("RINGSTOR_PASSWORD", req.password, sizeof(req.password), env);
	} else if (password_stdin && req.mode == CTL_MODE_ACCOUNT) {
		die(EINVAL, "--password is only used by account new");
	}
	if ((req.holder[0] || req.has_epoch || req.file[0]) && req.mode != CTL_MODE_LEASE)
		die(EINVAL, "--holder, --epoch and --file belong to --mode lease");
	if (req.op == CTL_OP_NONE)
		die(EINVAL, "--op is required (new, delete, show, bind, unbind, update, dump; "
		    "lease: acquire, transfer, release)");
	validate(&req);

	if (req.op == CTL_OP_STAT) {
		if (req.params[0])
			die(EINVAL, "--op stat takes no --params");
		return do_stat(sock, &req, interval_s);
	}
	if (interval_s > 0)
		die(EINVAL, "--interval belongs to --op stat");

	char *resp = NULL, msg[CTL_MSG_MAX];
	size_t hdr, got;
	code = transact(sock, &req, &resp, &got, &hdr, msg);
	if (got > hdr)
		fwrite(resp + hdr, 1, got - hdr, stdout);
	free(resp);
	if (fflush(stdout) != 0)
		die(EIO, "write error on stdout");
	if (code) {
		fprintf(stderr, "ringstoradm: %s\n", msg[0] ? msg : strerror(code));
		return code > 255 ? 1 : code;
	}
	if (strncmp(msg, "warning:", 8) == 0)
		fprintf(stderr, "ringstoradm: %s\n", msg);
	return 0;
}
