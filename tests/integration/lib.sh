# Shared helpers for integration tests (sourced).  Each test gets its own temp
# dir, free loopback port(s) and daemon; everything is cleaned up on exit.
set -u
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD;; esac
RINGSTORD=$BUILD/ringstord
RINGSTORADM=$BUILD/ringstoradm
T=$(mktemp -d /tmp/ringstor-test.XXXXXX)
DAEMON_PID=""
IQN=iqn.2026-11.io.ringstor:test
INIT1=iqn.2026-11.test:init1
INIT2=iqn.2026-11.test:init2

cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; [ -f "$T/daemon.log" ] && { echo "--- daemon log"; tail -30 "$T/daemon.log"; }; exit 1; }
skip() { echo "$*"; exit 77; }
ok() { echo "ok: $*"; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# write_config FILE LUN_PATH [ACL]: one target $IQN with LUN 1 (256 MiB sparse)
write_config() {
	local file=$1 lun=$2 acl=${3:-127.0.0.1}
	cat >"$file" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$lun"; create = true; size = "${LUN_SIZE:-256M}"; } );
    initiator_address = [ "$acl" ];
} );
CONF
}

# start_daemon CONFIG [extra args]: starts ringstord on $PORT, waits until it listens.
start_daemon() {
	local conf=$1; shift
	PORT=${PORT:-$(free_port)}
	SOCK=$T/ctl.sock
	$RINGSTORD -f -c "$conf" -C "$SOCK" --state-dir "$T/state" --iscsi-portal 127.0.0.1:$PORT "$@" >"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then cat "$T/daemon.log"; fail "ringstord exited at startup"; fi
		if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && [ -S "$SOCK" ]; then return 0; fi
		sleep 0.1
	done
	fail "ringstord did not start listening on $PORT"
}

daemon_alive() { kill -0 "$DAEMON_PID" 2>/dev/null; }
URL() { echo "iscsi://127.0.0.1:$PORT/$IQN/${1:-1}"; }
