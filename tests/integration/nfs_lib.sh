# nfs_lib.sh - helpers for the NFS integration tests (sourced after lib.sh):
# start the real daemon (build/ringstord) with NFS flags, stop it cleanly.
#
#   start_nfsd [ringstord args...]   starts ringstord -f with an empty config
#       (unless NFSD_CONF names one), $T/state, a private control socket
#       $SOCK, an iSCSI portal on a free port, --threads 2, and the given
#       NFS flags; waits until the control socket exists (the NFS sockets are
#       bound and listening before it is created) and, if NFSD_WAIT_PORT is
#       set, until that TCP port on 127.0.0.1 accepts.
#   stop_nfsd    SIGTERM, wait (10 s at most), exit status 0 required.
#   ADM ...      ringstoradm on $SOCK.
# The daemon's stderr is appended to $T/daemon.log (restarts keep history).

NFSD_CONF=${NFSD_CONF:-}

start_nfsd() {
	local conf=$NFSD_CONF
	if [ -z "$conf" ]; then
		conf=$T/empty.conf
		: >"$conf"
	fi
	PORT=${PORT:-$(free_port)}
	SOCK=$T/ctl.sock
	rm -f "$SOCK"
	mkdir -p "$T/state"
	"$RINGSTORD" -f -c "$conf" -C "$SOCK" --state-dir "$T/state" --iscsi-portal "127.0.0.1:$PORT" \
		--threads 2 --log-level info "$@" >>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 150); do
		kill -0 "$DAEMON_PID" 2>/dev/null || fail "ringstord exited at startup"
		if [ -S "$SOCK" ]; then
			if [ -z "${NFSD_WAIT_PORT:-}" ] || (exec 3<>"/dev/tcp/127.0.0.1/$NFSD_WAIT_PORT") 2>/dev/null; then
				return 0
			fi
		fi
		sleep 0.1
	done
	fail "ringstord did not come up"
}

stop_nfsd() {
	local rc
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "ringstord died"
	kill -TERM "$DAEMON_PID"
	for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$DAEMON_PID" 2>/dev/null && fail "ringstord did not stop on SIGTERM"
	wait "$DAEMON_PID"; rc=$?
	DAEMON_PID=""
	[ "$rc" = 0 ] || fail "ringstord exit status $rc"
}

ADM() { "$RINGSTORADM" -C "$SOCK" "$@"; }

# Sanitizer reports or errors in the daemon log fail the test.
check_daemon_log() {
	grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$T/daemon.log" && fail "sanitizer report"
	return 0
}
