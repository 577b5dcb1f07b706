#!/usr/bin/env bash
# Malformed PDUs, vanishing clients and SIGTERM under load: the daemon must
# reject or drop, never crash or hang, and shut down cleanly.
. "$(dirname "$0")/lib.sh"

write_config "$T/rs.conf" "$T/lun1.img"
start_daemon "$T/rs.conf"
$RINGSTORADM -C "$SOCK" --lld iscsi --mode target --op bind --tid 1 -Q $INIT1 >/dev/null || fail "bind"

python3 "$TOP/tests/iscsi_raw.py" 127.0.0.1 "$PORT" "$IQN" "$INIT1" || fail "raw PDU scenarios"
daemon_alive || fail "daemon died"

# Clients killed in the middle of large transfers.
if command -v qemu-img >/dev/null; then
	head -c $((64 * 1024 * 1024)) /dev/urandom >"$T/big.raw"
	for i in 1 2 3; do
		timeout -s KILL 0.$((3 * i)) qemu-img convert -n -f raw -O raw "$T/big.raw" "$(URL)" 2>/dev/null
		timeout -s KILL 0.$((3 * i)) qemu-img convert -f raw -O raw "$(URL)" "$T/out.raw" 2>/dev/null
	done
	daemon_alive || fail "daemon died after killed clients"
	iscsi-inq -i $INIT1 "$(URL)" >/dev/null || fail "not serving after killed clients"
	ok "killed clients"

	# SIGTERM while a writer runs: exit status 0, and what was written stays readable.
	qemu-img convert -n -f raw -O raw "$T/big.raw" "$(URL)" 2>/dev/null &
	writer=$!
	sleep 0.5
	kill -TERM "$DAEMON_PID"
	for _ in $(seq 150); do daemon_alive || break; sleep 0.1; done
	daemon_alive && fail "daemon still running 15 s after SIGTERM"
	wait "$DAEMON_PID"; rc=$?
	DAEMON_PID=""
	[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
	wait $writer 2>/dev/null
	grep -qi "sanitizer\|runtime error" "$T/daemon.log" && fail "sanitizer report"
	ok "clean shutdown under load"
fi
