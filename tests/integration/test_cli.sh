#!/usr/bin/env bash
# test_cli.sh - ringstoradm against a real ringstord: the tgt tutorial
# commands (s/tgtadm/ringstoradm/), the show layout and JSON, error exits,
# ACLs as seen by a real initiator (libiscsi's iscsi-ls), sessions, online
# resize and forced deletion.  Env: BUILD, PORT (optional).  Exit 0 pass, 1 fail.
set -u
. "$(dirname "$0")/lib.sh"

command -v iscsi-ls >/dev/null || skip "iscsi-ls (libiscsi-bin) not installed"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$RINGSTORD" ] && [ -x "$RINGSTORADM" ] || fail "build $RINGSTORD and $RINGSTORADM first"

PERF_PID=""
cleanup_cli() {
	# iscsi-perf catches SIGTERM and keeps reconnecting: SIGKILL it
	[ -n "$PERF_PID" ] && kill -KILL "$PERF_PID" 2>/dev/null
	cleanup
}
trap cleanup_cli EXIT

: >"$T/empty.conf"
start_daemon "$T/empty.conf"
ADM() { "$RINGSTORADM" -C "$SOCK" "$@"; }
TGT=iqn.2001-04.com.example:storage.disk1

# run CMD...: captures stdout in $OUT, stderr in $ERR, exit status in $RC
run() {
	"$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
expect_ok() {
	run "$@"
	[ "$RC" -eq 0 ] || fail "expected success (rc $RC): $* -- $ERR"
}
# expect_err RC PATTERN CMD...: exit status RC and "ringstoradm: ...PATTERN..." on stderr
expect_err() {
	local want=$1 pat=$2; shift 2
	run "$@"
	[ "$RC" -eq "$want" ] || fail "expected exit $want, got $RC: $* -- $ERR"
	case $ERR in "ringstoradm: "*) ;; *) fail "no 'ringstoradm:' message for: $* (got '$ERR')";; esac
	echo "$ERR" | grep -q -- "$pat" || fail "message '$ERR' lacks '$pat' ($*)"
	[ -z "$OUT" ] || fail "error wrote to stdout: $OUT"
}
has_line() { printf '%s\n' "$OUT" | grep -qxF -- "$1" || fail "show output lacks line '$1':
$OUT"; }
ls_targets() { iscsi-ls "$@" -s "iscsi://127.0.0.1:$PORT/" 2>&1; }

# ---- basics
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "control socket mode is $(stat -c %a "$SOCK"), not 600"
expect_ok "$RINGSTORADM" --version
echo "$OUT" | grep -q '^ringstoradm ' || fail "--version: $OUT"
expect_ok "$RINGSTORADM" --help
echo "$OUT" | grep -q -- '--initiator-address' || fail "--help lacks options"
expect_ok ADM --lld iscsi --mode target --op show
[ -z "$OUT" ] || fail "empty daemon shows targets: $OUT"
expect_ok ADM --lld iscsi --mode target --op show --json
echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d=={"targets":[]}, d' \
	|| fail "empty JSON show: $OUT"
ok "basics"

# ---- the tgt tutorial
truncate -s 64M "$T/disk.img"
expect_ok ADM --lld iscsi --op new --mode target --tid 1 -T $TGT
expect_ok ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$T/disk.img"
# not bound yet: a target with no ACL admits nobody (tgt semantics)
ls_targets | grep -q "$TGT" && fail "target visible before bind"
expect_ok ADM --lld iscsi --op bind --mode target --tid 1 -I ALL
out=$(ls_targets)
echo "$out" | grep -q "Target:$TGT Portal:127.0.0.1:$PORT,1" || fail "iscsi-ls after bind: $out"
echo "$out" | grep -q "Lun:1 .*DIRECT_ACCESS" || fail "iscsi-ls shows no LUN 1: $out"
ok "tutorial: new target, new LU, bind ALL, discovery"

expect_ok ADM --lld iscsi --mode target --op show
has_line "Target 1: $TGT"
has_line "    System information:"
has_line "        Driver: iscsi"
has_line "        State: ready"
has_line "    I_T nexus information:"
has_line "    LUN information:"
has_line "        LUN: 1"
has_line "            Type: disk"
has_line "            Size: 67 MB, Block size: 512"
has_line "            Online: Yes"
has_line "            Readonly: No"
has_line "            Backing store type: file"
has_line "            Backing store path: $T/disk.img"
has_line "    Account information:"
has_line "    ACL information:"
has_line "        ALL"
echo "$OUT" | grep -q '^            SCSI SN: [[:graph:]]\+$' || fail "no SCSI SN: $OUT"
text_show=$OUT
expect_ok ADM -L iscsi -m target -o show
[ "$OUT" = "$text_show" ] || fail "short options give a different show"
expect_ok ADM --lld iscsi --mode target --op show --tid 1
[ "$OUT" = "$text_show" ] || fail "show --tid 1 differs"
expect_ok ADM --lld iscsi --mode target --op show --json
echo "$OUT" | python3 -m json.tool >/dev/null || fail "show --json is not JSON: $OUT"
echo "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["targets"][0]
assert t["tid"] == 1 and t["name"] == sys.argv[1], t
assert t["luns"][0]["lun"] == 1 and t["luns"][0]["size_bytes"] == 64 << 20, t
assert t["luns"][0]["backing_store_path"] == sys.argv[2], t
assert t["acl"]["addresses"] == ["ALL"], t
' "$TGT" "$T/disk.img" || fail "JSON content: $OUT"
ok "show layout and JSON"

expect_ok ADM --lld iscsi --mode sys --op show
has_line "System:"
has_line "    State: ready"
has_line "LLDs:"
has_line "    iscsi: ready"
expect_ok ADM --mode system --op show --json
echo "$OUT" | python3 -m json.tool >/dev/null || fail "sys show --json: $OUT"
ok "sys show"

# ---- errors: non-zero exit with a message
expect_err 2 "can't find the target 99" ADM --lld iscsi --op delete --mode target --tid 99
expect_err 2 "can't find the target 99" ADM --lld iscsi --op show --mode target --tid 99
expect_err 2 "can't find the target 99" ADM --lld iscsi --op new --mode logicalunit --tid 99 --lun 1 -b "$T/disk.img"
expect_err 17 "already exists" ADM --lld iscsi --op new --mode target --tid 1 -T iqn.2001-04.com.example:other
expect_err 17 "already exists" ADM --lld iscsi --op new --mode target --tid 2 -T $TGT
expect_err 22 "invalid iSCSI name" ADM --lld iscsi --op new --mode target --tid 2 -T foo.bar
expect_err 22 "invalid iSCSI name" ADM --lld iscsi --op new --mode target --tid 2 -T iqn.2001-04.COM.example:x
expect_err 22 "--tid" ADM --lld iscsi --op new --mode target --tid 0 -T iqn.2001-04.com.example:x
expect_err 22 "--tid" ADM --lld iscsi --op new --mode target --tid abc -T iqn.2001-04.com.example:x
expect_err 22 "--tid is required" ADM --lld iscsi --op new --mode target -T iqn.2001-04.com.example:x
expect_err 22 "--targetname is required" ADM --lld iscsi --op new --mode target --tid 2
expect_err 22 "--lun" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun abc -b "$T/disk.img"
expect_err 22 "invalid LUN" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 99999 -b "$T/disk.img"
expect_err 17 "already exists" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$T/disk.img"
expect_err 22 "--lun is required" ADM --lld iscsi --op new --mode logicalunit --tid 1 -b "$T/disk.img"
expect_err 22 "--backing-store is required" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 2
expect_err 2 "nonexistent.img" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -b "$T/nonexistent.img"
expect_err 22 "512 or 4096" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -b "$T/disk.img" --blocksize 1000
expect_err 22 "backing store type" ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -b "$T/disk.img" -E sg
expect_err 2 "can't find LUN 5" ADM --lld iscsi --op delete --mode logicalunit --tid 1 --lun 5
expect_err 22 "prefix" ADM --lld iscsi --op bind --mode target --tid 1 -I 10.0.0.0/33
expect_err 22 "not an IPv4/IPv6" ADM --lld iscsi --op bind --mode target --tid 1 -I 10.0.0.300
expect_err 17 "already bound" ADM --lld iscsi --op bind --mode target --tid 1 -I ALL
expect_err 2 "not bound" ADM --lld iscsi --op unbind --mode target --tid 1 -I 10.0.0.1
expect_err 22 "--initiator-address or --initiator-name" ADM --lld iscsi --op bind --mode target --tid 1
expect_err 22 "unknown mode" ADM --lld iscsi --op show --mode frob
expect_err 22 "unknown operation" ADM --lld iscsi --op frob --mode target
expect_err 22 "--mode is required" ADM --lld iscsi --op show
expect_err 22 "--op is required" ADM --lld iscsi --mode target
expect_err 22 "not supported" ADM --lld fcoe --op show --mode target
expect_err 22 "unexpected argument" ADM --lld iscsi --op show --mode target extra
expect_err 22 "only --op show" ADM --lld iscsi --op new --mode sys
expect_err 22 "unknown --params key" ADM --op new --mode lu --tid 1 --lun 2 -b "$T/disk.img" --params colour=red
expect_err 107 "can't connect" "$RINGSTORADM" -C "$T/nope.sock" --mode target --op show
RINGSTOR_SOCKET=$SOCK "$RINGSTORADM" --mode target --op show >/dev/null || fail "RINGSTOR_SOCKET not honoured"
# nothing of the failed commands was created
expect_ok ADM --lld iscsi --mode target --op show
[ "$OUT" = "$text_show" ] || fail "failed commands changed the configuration:
$OUT"
daemon_alive || fail "daemon died during the error tests"
ok "errors"

# ---- a hostile or stuck local client cannot wedge the control plane
python3 - "$SOCK" <<'PY' || fail "control socket robustness"
import socket, sys, time
path = sys.argv[1]
def ask(data, close_write=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    s.sendall(data)
    if close_write:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out
# garbage, a bad header, an unknown field, an oversized request: all refused
for req in (b"\x00\xff garbage\n\n", b"hello\n\n", b"ringstor-ctl 1\nmode=target\nop=show\nevil=1\n\n",
            b"ringstor-ctl 1\n" + b"x" * 20000):
    r = ask(req)
    assert r.startswith(b"status 22 "), r
# a truncated request (client closed early) gets an answer, not a hang
assert ask(b"ringstor-ctl 1\nmode=target\n").startswith(b"status 22 ")
# a client that connects and says nothing times out without blocking others for long
stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
stuck.connect(path)
t0 = time.time()
r = ask(b"ringstor-ctl 1\nmode=system\nop=show\n\n")
assert r.startswith(b"status 0 "), r
assert time.time() - t0 < 15, time.time() - t0
stuck.close()
PY
daemon_alive || fail "daemon died during the robustness tests"
ok "control socket robustness"

# ---- more LUNs, --mode lu, null backing store, readonly, 4096-byte blocks
truncate -s 32M "$T/disk2.img"
expect_ok ADM --lld iscsi --op new --mode lu --tid 1 --lun 3 -b "$T/disk2.img" --blocksize 4096 --params readonly=1
expect_ok ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -E null --params size=16M
expect_ok ADM --lld iscsi --mode target --op show --tid 1
printf '%s\n' "$OUT" | grep '^        LUN: ' | tr -d ' ' | tr '\n' ' ' | grep -qx 'LUN:1 LUN:2 LUN:3 ' \
	|| fail "LUNs not listed in order: $OUT"
has_line "            Size: 34 MB, Block size: 4096"
has_line "            Readonly: Yes"
has_line "            Backing store type: null"
out=$(ls_targets)
echo "$out" | grep -q "Lun:3 " || fail "iscsi-ls does not see LUN 3: $out"
ok "logicalunit variants"

# ---- initiator-name ACL (-Q) instead of ALL
expect_ok ADM --lld iscsi --op unbind --mode target --tid 1 -I ALL
ls_targets | grep -q "$TGT" && fail "target visible after unbind"
expect_ok ADM --lld iscsi --op bind --mode target --tid 1 -Q "$INIT1"
ls_targets -i "$INIT1" | grep -q "$TGT" || fail "name ACL: $INIT1 cannot see the target"
ls_targets -i "$INIT2" | grep -q "$TGT" && fail "name ACL: $INIT2 sees the target"
expect_ok ADM --lld iscsi --op bind --mode target --tid 1 -I 127.0.0.0/8
ls_targets -i "$INIT2" | grep -q "$TGT" || fail "address ACL 127.0.0.0/8 does not admit $INIT2"
expect_ok ADM --lld iscsi --mode target --op show --tid 1
has_line "        127.0.0.0/8"
has_line "        $INIT1"
ok "ACLs by name and CIDR"

# ---- online resize: refresh re-reads the size
truncate -s 128M "$T/disk.img"
expect_ok ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params refresh
expect_ok ADM --lld iscsi --mode target --op show --tid 1
has_line "            Size: 134 MB, Block size: 512"
cap=$(iscsi-readcapacity16 -i "$INIT1" "iscsi://127.0.0.1:$PORT/$TGT/1" 2>&1)
echo "$cap" | grep -q "Total size:134217728" || fail "initiator sees old capacity: $cap"
expect_err 22 "refresh" ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params readonly=1
ok "online resize"

# ---- sessions: show, delete refused while active, --force kills them
iscsi-perf -i "$INIT1" -m 1 -b 1 "iscsi://127.0.0.1:$PORT/$TGT/1" >"$T/perf.log" 2>&1 &
PERF_PID=$!
for _ in $(seq 50); do
	out=$(ADM --lld iscsi --mode conn --op show 2>/dev/null)
	echo "$out" | grep -q "Initiator: $INIT1" && break
	sleep 0.1
done
echo "$out" | grep -q "Initiator: $INIT1" || fail "conn show does not list the session: $out ($(cat "$T/perf.log"))"
expect_ok ADM --lld iscsi --mode target --op show --tid 1
has_line "            Initiator: $INIT1 alias: none"
has_line "                IP Address: 127.0.0.1"
expect_ok ADM --lld iscsi --mode session --op show --tid 1
echo "$OUT" | grep -q "MaxRecvDataSegmentLength=" || fail "session show lacks negotiated parameters: $OUT"
expect_ok ADM --lld iscsi --mode session --op show --json
echo "$OUT" | python3 -m json.tool >/dev/null || fail "session show --json: $OUT"
expect_err 16 "active" ADM --lld iscsi --op delete --mode target --tid 1
expect_ok ADM --lld iscsi --op delete --mode logicalunit --tid 1 --lun 3
expect_ok ADM --lld iscsi --op delete --mode target --tid 1 --force
expect_ok ADM --lld iscsi --mode target --op show
[ -z "$OUT" ] || fail "target still shown after forced delete: $OUT"
# the session was closed by the kill hook (a reconnect finds no target)
for _ in $(seq 50); do
	out=$(ADM --lld iscsi --mode conn --op show 2>/dev/null)
	[ -z "$out" ] && break
	sleep 0.1
done
[ -z "$out" ] || fail "session survived the forced delete: $out"
kill -KILL "$PERF_PID" 2>/dev/null
wait "$PERF_PID" 2>/dev/null
PERF_PID=""
daemon_alive || fail "daemon died after the forced delete"
ok "sessions and forced delete"

# ---- the remaining tutorial steps on a fresh target
expect_ok ADM --lld iscsi --op new --mode target --tid 1 -T $TGT
expect_ok ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$T/disk.img" --bsoflags direct
expect_ok ADM --lld iscsi --mode target --op show
has_line "            Backing store flags: direct"
expect_ok ADM --lld iscsi --op delete --mode logicalunit --tid 1 --lun 1
expect_ok ADM --lld iscsi --op delete --mode target --tid 1
expect_ok ADM --lld iscsi --mode target --op show
[ -z "$OUT" ] || fail "targets left: $OUT"
daemon_alive || fail "daemon died"
ok "delete LU and target"
echo "test_cli: all passed"
exit 0
