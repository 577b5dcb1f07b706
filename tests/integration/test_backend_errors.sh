#!/usr/bin/env bash
# A full backing file system gives the initiator the SBC-3 sense for a failed
# space allocation, keeps acknowledged data, and the daemon keeps serving.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
mkdir -p "$T/small"
mount -t tmpfs -o size=2m ringstor-test "$T/small" 2>/dev/null || skip "cannot mount tmpfs here"
trap 'cleanup; umount "$T/small" 2>/dev/null; rm -rf "$T"' EXIT
cat >"$T/rs.conf" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/small/lun1.img"; create = true; size = "64M"; } );
    initiator_name = [ "$INIT1" ];
} );
CONF
start_daemon "$T/rs.conf"
python3 "$TOP/tests/backend_errors.py" "$PORT" "$IQN" "$INIT1" || fail "backend error mapping"
daemon_alive || fail "daemon died"
grep -qi "sanitizer\|runtime error" "$T/daemon.log" && fail "sanitizer report"
ok "ENOSPC mapped to sense, daemon alive"
