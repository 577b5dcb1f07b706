/* sdnotify.h - the systemd service-manager notification protocol, written by
 * hand so that ringstord needs no libsystemd (sd_notify(3) documents it).
 *
 * Under Type=notify the service manager passes $NOTIFY_SOCKET, an AF_UNIX
 * datagram socket ("/path" or "@abstract"), and waits for "READY=1" before it
 * considers the unit started; "RELOADING=1" ... "READY=1" brackets a reload
 * (ExecReload/SIGHUP), "STOPPING=1" announces a shutdown, "STATUS=text" shows
 * up in `systemctl status`.  One datagram carries newline-separated
 * VARIABLE=value assignments.
 *
 * Outside systemd (no $NOTIFY_SOCKET) every call is a cheap no-op, so callers
 * never need to check for systemd.  The functions are thread-safe: each call
 * opens, sends on and closes its own socket. */
#ifndef RS_SDNOTIFY_H
#define RS_SDNOTIFY_H

#include <stdbool.h>

/* Sends `state` (e.g. "READY=1\nSTATUS=serving") as one datagram to
 * $NOTIFY_SOCKET.  1 = sent, 0 = no $NOTIFY_SOCKET (not under systemd, or
 * not Type=notify), -errno = the socket is unusable or the send failed
 * (-EINVAL: malformed $NOTIFY_SOCKET or empty state). */
int rs_notify(const char *state);

/* printf-style rs_notify(); -ENOMEM if the message exceeds 4 KiB. */
int rs_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Shorthands for the life-cycle messages, each with a STATUS= line.  Callers
 * may pass status NULL. */
int rs_notify_ready(const char *status);
/* RELOADING=1 plus MONOTONIC_USEC=now (CLOCK_MONOTONIC), which systemd >= 253
 * requires for Type=notify-reload and older versions ignore.  Follow it with
 * rs_notify_ready() when the reload is done, whether it succeeded or not. */
int rs_notify_reloading(const char *status);
int rs_notify_stopping(const char *status);

/* Is $NOTIFY_SOCKET set?  (Informative: e.g. to log that readiness goes to
 * systemd.) */
bool rs_notify_enabled(void);

#endif
