#!/usr/bin/env bash
# test_cli.sh - ringstoradm against a real ringstord: the tgt tutorial
# commands (s/tgtadm/ringstoradm/), the show layout and JSON, error exits,
# ACLs as seen by a real initiator (libiscsi's iscsi-ls), sessions, online
# resize and forced deletion, CHAP accounts, dump, sessions view and delete,
# portals with group tags; NFS exports (--lld nfs --mode export) when the
# daemon has the NFS gateway.  Env: BUILD, PORT (optional).  Exit 0 pass, 1 fail.
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
# two portals, the second in portal group 2 (multipath)
PORT=${PORT:-$(free_port)}
start_daemon "$T/empty.conf" --iscsi-portal "127.0.0.2:$PORT,2"
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
has_line "Portals:"
has_line "    127.0.0.1:$PORT,1"
has_line "    127.0.0.2:$PORT,2"
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
expect_err 22 "only --op show and --op dump" ADM --lld iscsi --op new --mode sys
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
expect_ok ADM --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -E null --params size=16M,thin_provisioning=1
expect_ok ADM --lld iscsi --mode target --op show --tid 1
has_line "            Thin-provisioning: Yes"
has_line "            Thin-provisioning: No"
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

# ---- CHAP accounts (tgtadm --mode account); secrets are never shown
PW1=alice-Secret-0451
PW2=tgt-Secret-9982
PW3=carol-Secret-7710
expect_ok ADM --lld iscsi --mode account --op new --user alice --password "$PW1"
[ -z "$ERR" ] || fail "account new printed: $ERR"
# the secret need not appear on the command line: environment or stdin
expect_ok env RINGSTOR_PASSWORD="$PW2" "$RINGSTORADM" -C "$SOCK" --mode account --op new --user tgtuser
printf '%s\n' "$PW3" >"$T/pw"
expect_ok sh -c '"$0" -C "$1" --mode account --op new --user carol --password - <"$2"' \
	"$RINGSTORADM" "$SOCK" "$T/pw"
rm -f "$T/pw"
# RFC 7143 9.2.1: a short secret is accepted with a warning
expect_ok ADM --mode account --op new --user weak --password short
echo "$ERR" | grep -q "warning: .*12 bytes" || fail "no warning for a short secret: $ERR"
expect_err 17 "already exists" ADM --mode account --op new --user alice --password "$PW1"
expect_err 22 "printable" ADM --mode account --op new --user "a b" --password "$PW1"
expect_err 22 "--password" env -u RINGSTOR_PASSWORD "$RINGSTORADM" -C "$SOCK" --mode account --op new --user zed
expect_err 22 "--user is required" ADM --mode account --op bind --tid 1
expect_err 22 "--tid is required (0 = discovery" ADM --mode account --op bind --user alice
expect_err 22 "only used by account new" ADM --mode account --op bind --tid 1 --user alice --password x
expect_ok ADM --lld iscsi --op new --mode target --tid 5 -T iqn.2001-04.com.example:chap
expect_ok ADM --lld iscsi --mode account --op bind --tid 5 --user alice
expect_ok ADM --lld iscsi --mode account --op bind --tid 5 --user carol
expect_ok ADM --lld iscsi --mode account --op bind --tid 5 --user tgtuser --outgoing
expect_err 17 "already has an outgoing account" ADM --mode account --op bind --tid 5 --user weak --outgoing
expect_err 17 "already bound" ADM --mode account --op bind --tid 5 --user alice
expect_err 22 "9.2.1" ADM --mode account --op bind --tid 5 --user alice --outgoing
expect_err 2 "can't find the account" ADM --mode account --op bind --tid 5 --user nobody
expect_err 2 "can't find the target 77" ADM --mode account --op bind --tid 77 --user alice
expect_err 2 "not bound" ADM --mode account --op unbind --tid 5 --user weak
expect_ok ADM --lld iscsi --mode target --op show --tid 5
has_line "    Account information:"
has_line "        alice"
has_line "        carol"
has_line "        tgtuser (outgoing)"
expect_ok ADM --lld iscsi --mode target --op show --tid 5 --json
echo "$OUT" | python3 -c '
import json, sys
t = json.load(sys.stdin)["targets"][0]
assert t["accounts"] == [{"user": "alice", "outgoing": False}, {"user": "carol", "outgoing": False},
                         {"user": "tgtuser", "outgoing": True}], t["accounts"]
' || fail "accounts in show --json: $OUT"
# discovery sessions: tid 0
expect_ok ADM --lld iscsi --mode account --op bind --tid 0 --user weak
expect_ok ADM --lld iscsi --mode account --op show
has_line "Account list:"
has_line "    alice"
has_line "    carol"
has_line "    tgtuser"
has_line "    weak"
has_line "Discovery account information:"
expect_ok ADM --mode account --op show --json
echo "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["accounts"] == ["alice", "carol", "tgtuser", "weak"], d
assert d["discovery"] == [{"user": "weak", "outgoing": False}], d
' || fail "account show --json: $OUT"
expect_ok ADM --lld iscsi --mode account --op unbind --tid 0 --user weak
# no secret in any show output nor in the daemon's log
for args in "--mode account --op show" "--mode account --op show --json" "--mode target --op show" \
	    "--mode target --op show --json" "--mode sys --op show" "--mode session --op show"; do
	# shellcheck disable=SC2086
	out=$(ADM $args)
	for pw in "$PW1" "$PW2" "$PW3" short; do
		case $out in *"$pw"*) fail "'ringstoradm $args' shows a secret";; esac
	done
done
for pw in "$PW1" "$PW2" "$PW3"; do
	grep -qF -- "$pw" "$T/daemon.log" && fail "a secret is in the daemon log"
done
ok "CHAP accounts: new, bind (incoming, outgoing, discovery), show without secrets"

# ---- dump: the running configuration as a config file (secrets included)
expect_ok ADM --lld iscsi --op dump
printf '%s\n' "$OUT" >"$T/dump.conf"
grep -q "PRIVILEGED" "$T/dump.conf" || fail "dump lacks the privilege warning"
grep -qF "password = \"$PW1\"" "$T/dump.conf" || fail "dump lacks the accounts: $OUT"
grep -qF "outgoing_user = \"tgtuser\";" "$T/dump.conf" || fail "dump lacks bindings: $OUT"
grep -qF "\"127.0.0.1:$PORT,1\"" "$T/dump.conf" || fail "dump lacks the portal: $OUT"
"$RINGSTORD" --check-config -c "$T/dump.conf" >"$T/check.out" 2>&1 \
	|| fail "dump is not a valid config: $(cat "$T/check.out")"
grep -q "OK (2 targets, 2 portals)" "$T/check.out" || fail "dump check: $(cat "$T/check.out")"
dump1=$OUT
expect_ok ADM --mode target --op dump
[ "$OUT" = "$dump1" ] || fail "--op dump differs between modes"
ok "dump"

# deleting an account unbinds it; the target, then the rest go
expect_ok ADM --lld iscsi --mode account --op delete --user alice
expect_err 2 "can't find the account alice" ADM --mode account --op delete --user alice
expect_ok ADM --lld iscsi --mode target --op show --tid 5
printf '%s\n' "$OUT" | grep -qx "        alice" && fail "deleted account still bound: $OUT"
has_line "        carol"
expect_ok ADM --lld iscsi --mode account --op unbind --tid 5 --user tgtuser --outgoing
expect_ok ADM --lld iscsi --mode account --op bind --tid 5 --user weak --outgoing
expect_ok ADM --lld iscsi --op delete --mode target --tid 5
for u in carol tgtuser weak; do
	expect_ok ADM --lld iscsi --mode account --op delete --user $u
done
expect_ok ADM --mode account --op show
[ "$OUT" = "Account list:" ] || fail "accounts left: $OUT"
ok "account delete cascades"

# ---- online resize: refresh re-reads the size
truncate -s 128M "$T/disk.img"
expect_ok ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params refresh
expect_ok ADM --lld iscsi --mode target --op show --tid 1
has_line "            Size: 134 MB, Block size: 512"
cap=$(iscsi-readcapacity16 -i "$INIT1" "iscsi://127.0.0.1:$PORT/$TGT/1" 2>&1)
echo "$cap" | grep -q "Total size:134217728" || fail "initiator sees old capacity: $cap"
expect_err 22 "refresh" ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params readonly=1
ok "online resize"
# size=: ftruncate the file; the initiator sees the new capacity
expect_ok ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params size=192M
[ "$(stat -c %s "$T/disk.img")" = 201326592 ] || fail "backing file not grown: $(stat -c %s "$T/disk.img")"
cap=$(iscsi-readcapacity16 -i "$INIT1" "iscsi://127.0.0.1:$PORT/$TGT/1" 2>&1)
echo "$cap" | grep -q "Total size:201326592" || fail "initiator sees old capacity after size=: $cap"
expect_err 22 "--force" ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params size=64M
expect_err 22 "block size" ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params size=1000
expect_err 22 "invalid size" ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params size=lots
expect_err 30 "read-only" ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 3 --params size=64M
expect_ok ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 --params size=128M --force
[ "$(stat -c %s "$T/disk.img")" = 134217728 ] || fail "backing file not shrunk"
expect_ok ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 2 --params size=1T
expect_ok ADM --lld iscsi --mode target --op show --tid 1
has_line "            Size: 1099512 MB, Block size: 512"
expect_ok ADM --lld iscsi --op update --mode logicalunit --tid 1 --lun 2 --params size=16M --force
ok "online resize with size="

# ---- a live session: CAPACITY DATA HAS CHANGED, conn show, session delete.
# A raw initiator (RFC 7143 11) so that the unit attention itself is seen.
python3 - 127.0.0.1 "$PORT" "$TGT" "$INIT1:raw" "$RINGSTORADM" "$SOCK" "$T/disk.img" <<'PY' \
	>"$T/raw.log" 2>&1 || fail "live session checks: $(cat "$T/raw.log")"
import json, socket, struct, subprocess, sys, time
host, port, target, init, adm, sock, img = sys.argv[1:8]
port = int(port)

def adm_run(*args):
    r = subprocess.run([adm, "-C", sock] + list(args), capture_output=True, text=True, timeout=30)
    if r.returncode:
        raise SystemExit(f"ringstoradm {' '.join(args)}: rc {r.returncode}: {r.stderr}")
    return r.stdout

def bhs(opcode, flags, dlen=0, lun=0, itt=0, rest=b"", immediate=False):
    h = struct.pack(">BBBBB", opcode | (0x40 if immediate else 0), flags, 0, 0, 0)
    h += dlen.to_bytes(3, "big") + struct.pack(">QI", lun, itt) + rest.ljust(28, b"\0")
    return h

def pad(d):
    return d + b"\0" * (-len(d) % 4)

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise ConnectionError("closed")
        b += c
    return b

def recv_pdu(s):
    h = recv_exact(s, 48)
    n = int.from_bytes(h[5:8], "big")
    return h, (recv_exact(s, (n + 3) & ~3)[:n] if n else b"")

def login(s, keys, csg, nsg, tsih=b"\0\0"):
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in keys.items())
    h = bytearray(bhs(0x03, 0x80 | (csg << 2) | nsg, len(data), itt=1, immediate=True))
    h[8:14] = b"\x80\x00\x00\x00\x00\x77"
    h[14:16] = tsih
    struct.pack_into(">HHII", h, 20, 0, 0, 1, 0)
    s.sendall(bytes(h) + pad(data))
    h, d = recv_pdu(s)
    if h[0] & 0x3F != 0x23 or h[36] != 0:
        raise SystemExit(f"login failed: {h[36]:#x}/{h[37]:#x} {d!r}")
    return h

s = socket.create_connection((host, port), timeout=10)
h = login(s, dict(InitiatorName=init, TargetName=target, SessionType="Normal", AuthMethod="None"), 0, 1)
login(s, dict(HeaderDigest="None", DataDigest="None", MaxRecvDataSegmentLength=65536,
              ErrorRecoveryLevel=0, InitialR2T="Yes", ImmediateData="Yes"), 1, 3, h[14:16])
cmdsn, itt = 1, 0x100

def tur():
    """TEST UNIT READY on LUN 1: (status, (key, asc, ascq))."""
    global cmdsn, itt
    itt += 1
    rest = struct.pack(">III", 0, cmdsn, 0) + b"\0" * 16
    s.sendall(bhs(0x01, 0x81, 0, 1 << 48, itt, rest))
    cmdsn += 1
    while True:
        h, d = recv_pdu(s)
        if h[0] & 0x3F == 0x21:
            break
    status, sense = h[3], None
    if status == 2 and len(d) >= 2:
        sd = d[2:2 + int.from_bytes(d[0:2], "big")]
        if sd and sd[0] & 0x7F in (0x72, 0x73):
            sense = (sd[1] & 0xF, sd[2], sd[3])
        elif len(sd) >= 14:
            sense = (sd[2] & 0xF, sd[12], sd[13])
    return status, sense

# consume what the login left pending (POWER ON / RESET, LUN inventory ...)
for _ in range(8):
    if tur()[0] == 0:
        break
else:
    raise SystemExit("LUN 1 never became ready")

# SBC-3: growing the LU raises CAPACITY DATA HAS CHANGED on this nexus
adm_run("--op", "update", "--mode", "lu", "--tid", "1", "--lun", "1", "--params", "size=160M")
st, sense = tur()
if st != 2 or sense != (6, 0x2A, 0x09):
    raise SystemExit(f"expected UNIT ATTENTION 2A/09 after the resize, got status {st} sense {sense}")
if tur()[0] != 0:
    raise SystemExit("the unit attention was reported twice")
adm_run("--op", "update", "--mode", "lu", "--tid", "1", "--lun", "1", "--params", "size=128M", "--force")
if tur()[1] != (6, 0x2A, 0x09):
    raise SystemExit("no unit attention after the shrink")

# conn show (tgt layout) and session show list us with our address
conn = adm_run("--mode", "conn", "--op", "show", "--tid", "1")
sess = json.loads(adm_run("--mode", "session", "--op", "show", "--tid", "1", "--json"))["sessions"]
mine = [x["session"] for x in sess if x["session"]["initiator"] == init]
if len(mine) != 1:
    raise SystemExit(f"session show: {sess}")
sid = mine[0]["nexus"]
want = f"Session: {sid}\n    Connection: 0\n        Initiator: {init}\n        IP Address: 127.0.0.1\n"
if want not in conn:
    raise SystemExit(f"conn show lacks\n{want}in\n{conn}")
if "MaxRecvDataSegmentLength" not in json.dumps(mine[0].get("params", {})):
    raise SystemExit(f"session show lacks the negotiated parameters: {mine[0]}")
text = adm_run("--mode", "session", "--op", "show", "--tid", "1", "--sid", str(sid))
if f"Initiator: {init}" not in text or "IP Address: 127.0.0.1" not in text:
    raise SystemExit(f"session show --sid: {text}")

# --op delete drops exactly this session: the connection is closed
r = subprocess.run([adm, "-C", sock, "--mode", "session", "--op", "delete", "--tid", "1",
                    "--sid", str(sid), "--cid", "1"], capture_output=True, text=True)
if r.returncode != 2:
    raise SystemExit(f"delete with a wrong cid: rc {r.returncode} {r.stderr}")
adm_run("--mode", "session", "--op", "delete", "--tid", "1", "--sid", str(sid))
s.settimeout(10)
try:
    while True:
        recv_pdu(s)
except (ConnectionError, ConnectionResetError):
    pass
except socket.timeout:
    raise SystemExit("the session was not closed after --op delete")
for _ in range(50):
    if f"Session: {sid}\n" not in adm_run("--mode", "conn", "--op", "show", "--tid", "1"):
        break
    time.sleep(0.1)
else:
    raise SystemExit("the deleted session is still listed")
print("live session checks passed")
PY
expect_err 2 "can't find session" ADM --lld iscsi --mode session --op delete --tid 1 --sid 999999
expect_err 22 "--sid are required" ADM --lld iscsi --mode conn --op delete --tid 1
daemon_alive || fail "daemon died in the live session checks"
ok "live session: 2A/09 after resize, conn/session show, session delete"

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

# ---- NFS exports (--lld nfs): argument checks need no daemon support
expect_ok "$RINGSTORADM" --help
echo "$OUT" | grep -q -- '--clients' || fail "--help lacks the NFS export options"
expect_err 22 "needs --lld nfs" ADM --lld iscsi --mode export --op show
expect_err 22 "iscsi mode" ADM --lld nfs --mode target --op show
expect_err 22 "not supported (iscsi, nfs)" ADM --lld fc --mode target --op show
expect_err 22 "--path is required" ADM --lld nfs --mode export --op new --clients '*(ro)'
expect_err 22 "--clients" ADM --lld nfs --mode export --op new --path /srv/x
expect_err 22 "either --export" ADM --lld nfs --mode export --op new --path /srv/x --export '/srv/x *'
expect_err 22 "--path or --export-id" ADM --lld nfs --mode export --op delete
expect_err 22 "not an absolute path" ADM --lld nfs --mode export --op delete --path srv/x
expect_err 22 "out of range" ADM --lld nfs --mode export --op delete --export-id 4294967296
expect_err 22 "belong to --lld nfs" ADM --lld iscsi --mode target --op show --path /srv/x
expect_err 22 "unsupported operation 'bind'" ADM --lld nfs --mode export --op bind
# NLM locks: listing works (empty here: this daemon serves no NFS clients)
expect_ok ADM --lld nfs --mode lock --op show
ok "nfs: argument checks"

if "$RINGSTORD" --help 2>&1 | grep -qi nfs; then
	mkdir -p "$T/exp1" "$T/exp 2"
	E1=$(cd "$T/exp1" && pwd -P)
	E2=$(cd "$T/exp 2" && pwd -P)
	expect_ok ADM --lld nfs --mode export --op show
	[ -z "$OUT" ] || fail "exports before any were added: $OUT"
	expect_ok ADM --lld nfs --mode export --op new --path "$E1" \
		--clients '127.0.0.0/8(rw,insecure,no_root_squash) *(ro)'
	expect_err 17 "already exported" ADM --lld nfs --mode export --op new --path "$E1" --clients '*'
	expect_err 22 "unknown export option 'nohide'" \
		ADM --lld nfs --mode export --op new --path "$E2" --clients '*(nohide)'
	expect_err 22 "No such file" ADM --lld nfs --mode export --op new --path "$T/none" --clients '*'
	# the exports(5) line form, a blank in the path written \040, and an id
	expect_ok ADM --lld nfs --mode export --op new --export-id 77 \
		--export "$(printf '%s' "$E2" | sed 's/ /\\040/g') *(ro,insecure)"
	expect_ok ADM --lld nfs --mode export --op show
	echo "$OUT" | grep -qF "$E1" || fail "export show lacks $E1: $OUT"
	echo "$OUT" | grep -qF "127.0.0.0/8(rw," || fail "export show lacks the client options: $OUT"
	echo "$OUT" | grep -qF "$E2" || fail "export show lacks '$E2': $OUT"
	expect_ok ADM --lld nfs --mode export --op show --json
	printf '%s' "$OUT" | E1="$E1" E2="$E2" python3 -c '
import json, os, sys
d = json.load(sys.stdin)
paths = {e["path"]: e for e in d}
assert os.environ["E1"] in paths and os.environ["E2"] in paths, d
assert paths[os.environ["E2"]]["id"] == 77, d
assert len(paths[os.environ["E1"]]["clients"]) == 2, d
' || fail "export show --json: $OUT"
	expect_ok ADM --lld nfs --mode export --op update --export-id 77 --clients '127.0.0.1(rw,insecure)'
	expect_ok ADM --lld nfs --mode export --op show --json
	printf '%s' "$OUT" | python3 -c '
import json, sys
d = [e for e in json.load(sys.stdin) if e["id"] == 77]
assert len(d) == 1 and d[0]["clients"][0]["spec"] == "127.0.0.1", d
assert d[0]["clients"][0]["options"].startswith("rw,"), d
' || fail "update by --export-id: $OUT"
	expect_err 2 "not exported" ADM --lld nfs --mode export --op update --path "$T" --clients '*'
	# the dump carries them and is a valid configuration
	expect_ok ADM --op dump
	printf '%s\n' "$OUT" >"$T/dump-nfs.conf"
	grep -q '^nfs = {' "$T/dump-nfs.conf" || fail "dump lacks the nfs section: $OUT"
	grep -qF "path = \"$E1\"" "$T/dump-nfs.conf" || fail "dump lacks $E1: $OUT"
	grep -qF "fsid=77" "$T/dump-nfs.conf" || fail "dump lacks the export id: $OUT"
	"$RINGSTORD" --check-config -c "$T/dump-nfs.conf" >"$T/check.out" 2>&1 \
		|| fail "dump with exports is not a valid config: $(cat "$T/check.out")"
	expect_ok ADM --lld nfs --mode export --op delete --path "$E1"
	expect_err 2 "not exported" ADM --lld nfs --mode export --op delete --path "$E1"
	expect_ok ADM --lld nfs --mode export --op delete --export-id 77
	expect_err 2 "no export with id 77" ADM --lld nfs --mode export --op delete --export-id 77
	expect_ok ADM --lld nfs --mode export --op show
	[ -z "$OUT" ] || fail "exports left after delete: $OUT"
	daemon_alive || fail "daemon died"
	ok "nfs: export new, show, update, dump, delete"
else
	echo "skip: ringstord has no NFS support (--help); live export tests skipped"
fi
echo "test_cli: all passed"
exit 0
