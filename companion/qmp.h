/* qmp.h - a small QEMU Machine Protocol client.
 *
 * QMP (qemu docs/interop/qmp-spec.rst) is JSON objects over a stream: the
 * server greets with {"QMP": {...}}, the client must send qmp_capabilities
 * before anything else, then each {"execute": CMD, "arguments": {...},
 * "id": N} gets exactly one {"return": ...} or {"error": {"class", "desc"}}
 * carrying the same id, with asynchronous {"event": ...} messages
 * interleaved at any point (we skip them).  QEMU ends every message with
 * CRLF, but the spec does not promise one message per line, so framing
 * finds the end of each top-level JSON object by counting braces outside
 * strings (qmp_frame_scan).
 *
 * The stream is a UNIX socket on this host, or the stdin/stdout of a relay
 * command (`RSH HOST ringstor-migrate qmp-relay SOCK`) for a QEMU on
 * another host, so QMP never needs a network listener of its own.
 */
#ifndef RS_COMPANION_QMP_H
#define RS_COMPANION_QMP_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "companion/json.h"

#define QMP_MAX_MSG (1u << 20)   /* a query-migrate reply is ~1 kB */

/* Framing.  Looks at buf[0..len): skips leading whitespace and returns
 *   1  a complete object is buf[*start..*end)
 *   0  more bytes are needed (*start: where the pending object begins)
 *  -1  garbage: bytes that cannot start an object, or an object longer
 *      than QMP_MAX_MSG; *end is how many bytes to drop. */
int qmp_frame_scan(const char *buf, size_t len, size_t *start, size_t *end);

enum qmp_kind { QMP_GREETING, QMP_RETURN, QMP_ERROR, QMP_EVENT, QMP_OTHER };
enum qmp_kind qmp_classify(const struct json_value *msg);

/* {"execute":cmd[,"arguments":args][,"id":id]} plus CRLF; args is a JSON
 * object text or NULL.  Caller frees. */
char *qmp_command_text(const char *cmd, const char *args_json, unsigned id);

struct qmp {
	int rfd, wfd;         /* the same socket, or the relay's stdout/stdin */
	pid_t relay;          /* relay process, or -1 */
	struct strbuf in;     /* bytes received and not consumed yet */
	unsigned next_id;
	char err[512];        /* why the last call failed */
};

/* Connects to a UNIX socket, retrying until timeout_ms (QEMU creates it
 * during startup), then does the handshake.  0 or -1 (q->err). */
int qmp_open_unix(struct qmp *q, const char *path, int timeout_ms);
/* Starts argv (a relay) with pipes as its stdin/stdout, then the handshake. */
int qmp_open_cmd(struct qmp *q, char *const argv[], int timeout_ms);
void qmp_close(struct qmp *q);

#define QMP_E_IO  (-1)   /* transport broke or timed out: QEMU may be gone */
#define QMP_E_CMD (-2)   /* QEMU answered with an error (q->err: class: desc) */
/* Executes cmd and waits for its answer (skipping events).  On 0, *reply
 * (if reply) is the "return" member's owner: use qmp_ret(*reply), free with
 * json_free. */
int qmp_execute(struct qmp *q, const char *cmd, const char *args_json, struct json_value **reply,
		int timeout_ms);
const struct json_value *qmp_ret(const struct json_value *reply);
/* query-status -> "running", "paused", "inmigrate", "postmigrate", ... in
 * buf; 0 or QMP_E_*. */
int qmp_status(struct qmp *q, char *buf, size_t len, int timeout_ms);

/* `ringstor-migrate qmp-relay SOCK`: copies stdin to the socket and the
 * socket to stdout until either side closes.  Returns an exit code. */
int qmp_relay(const char *path);
#endif
