#!/usr/bin/env bash
# test_reload.sh - configuration reload on SIGHUP (what `systemctl reload`
# sends after `ringstord --check-config`): while qemu-img bench writes to
# target 1 through one iSCSI session, the file gains a target with a LUN, an
# ACL and an NFS export; after `kill -HUP` they are live (ringstoradm show,
# iscsi-ls) and the bench's session is the same one and finishes without an
# error.  Then: removing the target again, a run-time change undone, a target
# with a session kept when the file drops it, and a broken file that changes
# nothing and names file:line.  Env: BUILD, PORT.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"

command -v iscsi-ls >/dev/null || skip "iscsi-ls (libiscsi-bin) not installed"
command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) not installed"
[ -x "$RINGSTORD" ] && [ -x "$RINGSTORADM" ] || fail "build $RINGSTORD and $RINGSTORADM first"

BENCH_PID=""
cleanup_reload() {
	[ -n "$BENCH_PID" ] && kill -KILL "$BENCH_PID" 2>/dev/null
	cleanup
}
trap cleanup_reload EXIT

CONF=$T/ringstor.conf
IQN2=iqn.2026-11.io.ringstor:reload2
NFSPORT=$(free_port)
mkdir -p "$T/export" "$T/state"
ADM() { "$RINGSTORADM" -C "$SOCK" "$@"; }

# conf [extra targets] [extra target-1 ACL] [exports]: the file, rewritten
conf() {
	local acl="\"127.0.0.1\"" more=""
	[ -n "${2:-}" ] && acl="$acl, \"$2\""
	[ -n "${1:-}" ] && more=",
$1"
	cat >"$CONF" <<CONF
# test_reload.sh
daemon = { log_level = "notice"; };
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/lun1.img"; create = true; size = "256M"; } );
    initiator_address = [ $acl ];
}$more );
nfs = {
    enabled = true;
    listen = [ "127.0.0.1:$NFSPORT" ];
    mount_port = 0;
    nlm_port = 0;
    portmap = "off";
    exports = ( ${3:-} );
};
CONF
}
TARGET2="{ tid = 2; name = \"$IQN2\";
    luns = ( { lun = 1; path = \"$T/lun2.img\"; create = true; size = \"64M\"; } );
    initiator_address = [ \"127.0.0.1\" ]; }"

# reload: SIGHUP, then wait for the summary line (or the refusal)
reload() {
	local before after
	before=$(grep -cE 'reload: .*(changes? applied|not reloaded)' "$T/daemon.log")
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		after=$(grep -cE 'reload: .*(changes? applied|not reloaded)' "$T/daemon.log")
		[ "$after" -gt "$before" ] && return 0
		daemon_alive || fail "ringstord died on SIGHUP"
		sleep 0.1
	done
	fail "no reload summary in the log after SIGHUP"
}
last_summary() { grep -E 'reload: .*(changes? applied|not reloaded)' "$T/daemon.log" | tail -1; }
sessions() { ADM --mode session --op show 2>/dev/null | sed -n 's/^Session: //p' | sort | tr '\n' ' '; }

conf
"$RINGSTORD" --check-config -c "$CONF" >/dev/null || fail "--check-config refused the test file"
start_daemon "$CONF"
ok "started with $CONF"

# ---- an I/O client that runs across the reload (~5 s): calibrate the count
start=$(date +%s%N)
qemu-img bench -c 4000 -d 8 -s 4k -w -t none -f raw "$(URL 1)" >"$T/cal.log" 2>&1 ||
	fail "qemu-img bench: $(cat "$T/cal.log")"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -gt 0 ] || ms=1
count=$(( 4000 * 5000 / ms ))
[ "$count" -lt 20000 ] && count=20000
[ "$count" -gt 3000000 ] && count=3000000
qemu-img bench -c "$count" -d 8 -s 4k -w -t none -f raw "$(URL 1)" >"$T/bench.log" 2>&1 &
BENCH_PID=$!
for _ in $(seq 50); do [ -n "$(sessions)" ] && break; sleep 0.1; done
S_BEFORE=$(sessions)
[ -n "$S_BEFORE" ] || fail "the bench's session does not show"

# ---- add a target with a LUN, an ACL, an NFS export; reload
conf "$TARGET2" "10.0.0.0/8" "\"$T/export 127.0.0.1(rw,no_root_squash,insecure)\""
reload
last_summary | grep -q 'reload: [1-9][0-9]* changes applied' || fail "summary: $(last_summary)"
kill -0 "$BENCH_PID" 2>/dev/null || fail "the bench ended before the reload was checked (count $count)"
S_AFTER=$(sessions)
[ "$S_AFTER" = "$S_BEFORE" ] || fail "sessions changed across the reload: '$S_BEFORE' -> '$S_AFTER'"
ADM --lld iscsi --mode target --op show >"$T/show" || fail "show"
grep -q "^Target 2: $IQN2" "$T/show" || fail "target 2 not live: $(cat "$T/show")"
grep -q "10.0.0.0/8" "$T/show" || fail "the ACL was not added"
out=$(iscsi-ls -s "iscsi://127.0.0.1:$PORT/" 2>&1)
echo "$out" | grep -q "Target:$IQN2" || fail "iscsi-ls does not see target 2: $out"
echo "$out" | grep -q "Lun:1 .*DIRECT_ACCESS" || fail "iscsi-ls shows no LUN: $out"
qemu-img info "iscsi://127.0.0.1:$PORT/$IQN2/1" 2>&1 | grep -q "virtual size: 64 MiB" ||
	fail "qemu-img info on the new target"
ADM --lld nfs --mode export --op show >"$T/exports" 2>&1 || fail "export show: $(cat "$T/exports")"
grep -qF "$T/export" "$T/exports" || fail "the export is not live: $(cat "$T/exports")"
ok "reload added target 2 + LUN, an ACL, an NFS export; session kept ($S_AFTER)"

wait "$BENCH_PID"; rc=$?
BENCH_PID=""
[ "$rc" -eq 0 ] || fail "qemu-img bench failed across the reload (rc $rc): $(cat "$T/bench.log")"
grep -q "Run completed" "$T/bench.log" || fail "bench: $(cat "$T/bench.log")"
ok "the I/O client finished without errors"

# ---- remove target 2 and the export again
conf "" "10.0.0.0/8"
reload
ADM --lld iscsi --mode target --op show >"$T/show"
grep -q "^Target 2:" "$T/show" && fail "target 2 still there"
grep -q "^Target 1: $IQN" "$T/show" || fail "target 1 vanished"
ADM --lld nfs --mode export --op show >"$T/exports" 2>&1
grep -qF "$T/export" "$T/exports" && fail "the export is still there"
ok "reload removed target 2 and the export"

# ---- a run-time change that is not in the file is undone
ADM --lld iscsi --op new --mode target --tid 5 -T iqn.2026-11.io.ringstor:runtime || fail "new tid 5"
reload
ADM --lld iscsi --mode target --op show | grep -q "^Target 5:" && fail "run-time target 5 survived"
last_summary | grep -q "undone" || fail "summary does not say run-time changes are undone"
ok "run-time target undone by the reload (the file is the truth)"

# ---- a target whose session is alive is kept when the file drops it
conf "$TARGET2" "10.0.0.0/8"
reload
qemu-img bench -c "$count" -d 4 -s 4k -w -t none -f raw "iscsi://127.0.0.1:$PORT/$IQN2/1" \
	>"$T/bench2.log" 2>&1 &
BENCH_PID=$!
for _ in $(seq 50); do ADM --mode session --op show --tid 2 2>/dev/null | grep -q Session && break; sleep 0.1; done
conf "" "10.0.0.0/8"
reload
grep -q "target 2 $IQN2 is not in the file but has 1 session" "$T/daemon.log" ||
	fail "no 'kept' warning"
last_summary | grep -q "1 deferred" || fail "summary: $(last_summary)"
ADM --lld iscsi --mode target --op show | grep -q "^Target 2:" || fail "target 2 was removed under its session"
wait "$BENCH_PID"; rc=$?
BENCH_PID=""
[ "$rc" -eq 0 ] || fail "bench on the kept target failed (rc $rc): $(cat "$T/bench2.log")"
# logged out now: the next reload removes it
reload
ADM --lld iscsi --mode target --op show | grep -q "^Target 2:" && fail "target 2 not removed after logout"
ok "target with a session kept, removed by the next reload after logout"

# ---- a broken file changes nothing and names file:line
ADM --lld iscsi --mode target --op show >"$T/show.before"
conf "$TARGET2" "10.0.0.0/8"
sed -i 's/^    tid = 1;/    tid = 1;\n    bogus = 1;/' "$CONF"
line=$(grep -n 'bogus' "$CONF" | cut -d: -f1)
"$RINGSTORD" --check-config -c "$CONF" >/dev/null 2>&1 && fail "--check-config accepted a broken file"
reload
last_summary | grep -qF "$CONF:$line: unknown setting 'bogus'" || fail "no file:line: $(last_summary)"
last_summary | grep -q "nothing changed" || fail "summary: $(last_summary)"
ADM --lld iscsi --mode target --op show >"$T/show.after"
cmp -s "$T/show.before" "$T/show.after" || fail "a broken file changed the running state"
echo 'targets = ( {' >"$CONF"
reload
last_summary | grep -qF "$CONF:" || fail "syntax error without file:line: $(last_summary)"
ok "broken file: nothing changed, $CONF:$line reported"

daemon_alive || fail "ringstord died"
# a clean stop after all that (leaks show here under SAN=1)
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"; rc=$?
DAEMON_PID=""
[ "$rc" -eq 0 ] || fail "ringstord exit status $rc after the reloads"
grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$T/daemon.log" && fail "sanitizer report"
echo "--- reload lines of the daemon log"
grep 'reload' "$T/daemon.log"
exit 0
