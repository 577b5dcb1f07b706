#!/usr/bin/env bash
# SCSI-3 persistent reservations with APTPL survive a daemon restart; without
# APTPL they do not.
. "$(dirname "$0")/lib.sh"
cat >"$T/rs.conf" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/lun1.img"; create = true; size = "16M"; } );
    initiator_name = [ "$INIT1", "$INIT2" ];
} );
CONF
start_daemon "$T/rs.conf"
python3 "$TOP/tests/pr_aptpl.py" "$PORT" "$IQN" $INIT1 $INIT2 before || fail "PR setup"
ls "$T/state/pr/"*.pr >/dev/null 2>&1 || fail "no APTPL state file under the state dir"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || fail "exit status on SIGTERM"
DAEMON_PID=""
start_daemon "$T/rs.conf"
python3 "$TOP/tests/pr_aptpl.py" "$PORT" "$IQN" $INIT1 $INIT2 after || fail "PR state after restart"
ls "$T/state/pr/"*.pr >/dev/null 2>&1 && fail "APTPL=0 should have removed the state file"
ok "APTPL reservations persist across a restart"
