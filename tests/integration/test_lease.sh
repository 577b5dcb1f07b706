#!/usr/bin/env bash
# test_lease.sh - image leases (issue 5 item 1) against a running ringstord:
#   - `ringstoradm --mode lease` show / acquire / transfer / release on an
#     iSCSI LU: epochs (1, +1 per transfer, kept on release, max(last, given)+1
#     on acquire), a stale epoch refused with exit 116 (ESTALE) and a clear
#     message, another holder refused with exit 16 (EBUSY), --json;
#   - the same on a file under an NFS export (--lld nfs --path FILE and
#     --export-id N --file RELPATH);
#   - the leases persist across a restart (<state_dir>/leases), and a damaged
#     lease file stops the daemon from starting;
#   - with LEASE_ENFORCEMENT=1 (once the SCSI core and the NFS gateway call
#     the lease hooks): a WRITE from a non-holder initiator gets RESERVATION
#     CONFLICT while reads pass, the holder writes, and a transfer moves that
#     right; an NFS WRITE / COMMIT / SETATTR(size) from a non-holder gets
#     NFS3ERR_ACCES, READ passes, the holder (by address or AUTH_SYS machine
#     name) writes.  A SCSI-3 reservation still conflicts beside a lease;
#     EXTENDED COPY into a leased LU conflicts; the lease's NAA is VPD 83h's.
# Env: BUILD, LEASE_ENFORCEMENT.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$RINGSTORD" ] && [ -x "$RINGSTORADM" ] || fail "build $RINGSTORD and $RINGSTORADM first"

NFSP=$(free_port); MNTP=$(free_port); NLMP=$(free_port); PMP=$(free_port)
EXP=$T/export
mkdir -p "$EXP" "$T/state"
head -c 1048576 /dev/zero >"$EXP/vm.img"
cat >"$T/rs.conf" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/lun1.img"; create = true; size = "16M"; },
             { lun = 2; path = "$T/lun2.img"; create = true; size = "16M"; } );
    initiator_name = [ "$INIT1", "$INIT2" ];
} );
CONF
NFSARGS=(--nfs-bind 127.0.0.1 --nfs-port "$NFSP" --mount-port "$MNTP" --nlm-port "$NLMP"
	 --portmap-port "$PMP" --portmap builtin --nfs-export "$EXP 127.0.0.1(rw,insecure,no_root_squash)")
export RINGSTOR_NLM_GRACE=0

adm() { "$RINGSTORADM" -C "$SOCK" "$@"; }
# expect RC CMD...: run ringstoradm, check its exit status, keep stdout/stderr
expect() {
	local want=$1; shift
	adm "$@" >"$T/out" 2>"$T/err"
	local rc=$?
	[ "$rc" = "$want" ] || fail "ringstoradm $*: exit $rc, want $want (stdout: $(cat "$T/out"); stderr: $(cat "$T/err"))"
}
L1=(--mode lease --tid 1 --lun 1)
L2=(--mode lease --tid 1 --lun 2)

start_daemon "$T/rs.conf" "${NFSARGS[@]}"
ok "ringstord up (iSCSI $PORT, NFS $NFSP)"

# ----------------------------------------------------------- iSCSI: CLI
expect 0 --mode lease --op show
[ -s "$T/out" ] && fail "show with no leases printed: $(cat "$T/out")"
expect 0 --mode lease --op show --json
[ "$(cat "$T/out")" = '{"leases": []}' ] || fail "empty JSON show: $(cat "$T/out")"
expect 0 "${L1[@]}" --op show --json
[ "$(cat "$T/out")" = '{"leases": []}' ] || fail "show --json of a LUN without a lease: $(cat "$T/out")"
expect 2 --mode lease --tid 1 --lun 9 --op show --json
expect 0 "${L1[@]}" --op acquire --holder "$INIT1"
[ "$(cat "$T/out")" = 1 ] || fail "first acquire printed '$(cat "$T/out")', want 1"
expect 0 "${L1[@]}" --op acquire --holder "$INIT1"
[ "$(cat "$T/out")" = 1 ] || fail "re-acquire by the holder printed '$(cat "$T/out")', want 1"
expect 16 "${L1[@]}" --op acquire --holder "$INIT2"
grep -q "held by $INIT1 at epoch 1" "$T/err" || fail "EBUSY message: $(cat "$T/err")"
ok "acquire: epoch 1; the holder again: same epoch; another holder: EBUSY (16)"
expect 2 --mode lease --tid 1 --lun 9 --op acquire --holder "$INIT1"
expect 2 --mode lease --tid 7 --lun 1 --op acquire --holder "$INIT1"
expect 22 "${L1[@]}" --op transfer --holder "$INIT2"
expect 22 "${L1[@]}" --op release
expect 22 --mode lease --op acquire --holder "$INIT1"
expect 22 "${L1[@]}" --op acquire --holder "bad holder"
expect 22 "${L1[@]}" --op acquire --holder "$INIT1" --path /x
expect 22 --mode target --op show --holder "$INIT1"
ok "missing LUN/target: ENOENT; missing or bad arguments: EINVAL"
expect 116 "${L1[@]}" --op transfer --holder "$INIT2" --epoch 0
grep -q "stale epoch 0" "$T/err" || fail "stale transfer message: $(cat "$T/err")"
expect 116 "${L1[@]}" --op transfer --holder "$INIT2" --epoch 5
expect 0 "${L1[@]}" --op transfer --holder "$INIT2" --epoch 1
[ "$(cat "$T/out")" = 2 ] || fail "transfer printed '$(cat "$T/out")', want 2"
ok "transfer: stale epochs refused with ESTALE (116); the current one gives epoch 2"
expect 0 "${L1[@]}" --op show --json
python3 - "$T/out" "$INIT2" <<'PY' || fail "show --json of LUN 1: $(cat "$T/out")"
import json, re, sys
d = json.load(open(sys.argv[1]))
assert len(d["leases"]) == 1, d
l = d["leases"][0]
assert l["lld"] == "iscsi" and l["tid"] == 1 and l["lun"] == 1, l
assert l["held"] is True and l["holder"] == sys.argv[2] and l["epoch"] == 2, l
assert re.fullmatch(r"6[0-9a-f]{31}", l["naa"]), l
PY
expect 116 "${L1[@]}" --op release --epoch 1
expect 16 "${L1[@]}" --op release --epoch 2 --holder "$INIT1"
expect 0 "${L1[@]}" --op release --epoch 2
[ "$(cat "$T/out")" = 2 ] || fail "release printed '$(cat "$T/out")'"
expect 0 "${L1[@]}" --op release --epoch 2
expect 116 "${L1[@]}" --op transfer --holder "$INIT1" --epoch 2
expect 0 --mode lease --op show
grep -q "State: free" "$T/out" && grep -q "Last holder: $INIT2" "$T/out" && grep -q "Epoch: 2" "$T/out" ||
	fail "text show after release: $(cat "$T/out")"
expect 0 "${L1[@]}" --op acquire --holder "$INIT1" --epoch 1
[ "$(cat "$T/out")" = 3 ] || fail "acquire after release printed '$(cat "$T/out")', want 3"
expect 0 "${L2[@]}" --op acquire --holder "$INIT2" --epoch 10
[ "$(cat "$T/out")" = 11 ] || fail "acquire with --epoch 10 printed '$(cat "$T/out")', want 11"
expect 0 "${L2[@]}" --op transfer --holder "$INIT2" --epoch 11 --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["epoch"] == 12 and d["held"] is True, d' "$T/out" ||
	fail "transfer --json: $(cat "$T/out")"
ok "release: stale refused, wrong holder refused, idempotent; epochs never go back (3, 11, 12)"

# ------------------------------------------------------------- NFS: CLI
expect 0 --lld nfs --mode lease --op acquire --path "$EXP/vm.img" --holder 127.0.0.2
[ "$(cat "$T/out")" = 1 ] || fail "NFS acquire printed '$(cat "$T/out")'"
expect 22 --lld nfs --mode lease --op acquire --path "$EXP" --holder 127.0.0.2
expect 2 --lld nfs --mode lease --op acquire --path "$EXP/nope.img" --holder 127.0.0.2
expect 2 --lld nfs --mode lease --op acquire --path /etc/hostname --holder 127.0.0.2
expect 22 --lld nfs --mode lease --op acquire --path "$EXP/vm.img" --holder "1.2.3.400"
expect 22 --lld nfs --mode lease --op acquire --tid 1 --lun 1 --holder 127.0.0.2
expect 16 --lld nfs --mode lease --op acquire --path "$EXP/vm.img" --holder 127.0.0.3
expect 0 --mode lease --op show --json
EXPID=$(python3 - "$T/out" "$EXP/vm.img" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = [l for l in d["leases"] if l["lld"] == "nfs"]
assert len(n) == 1 and n[0]["path"].endswith("/vm.img") and n[0]["held"] and n[0]["epoch"] == 1, n
assert n[0]["holder"] == "127.0.0.2" and len(n[0]["file_id"]) > 10
print(n[0]["export_id"])
PY
) || fail "NFS lease in show --json: $(cat "$T/out")"
expect 116 --lld nfs --mode lease --op transfer --export-id "$EXPID" --file vm.img --holder rawtest --epoch 0
expect 0 --lld nfs --mode lease --op transfer --export-id "$EXPID" --file vm.img --holder rawtest --epoch 1
[ "$(cat "$T/out")" = 2 ] || fail "NFS transfer printed '$(cat "$T/out")'"
ok "NFS file leases by --path and by --export-id/--file (export $EXPID): epochs, EBUSY, ESTALE"

# ------------------------------------------------------------ restart
[ -f "$T/state/leases" ] || fail "no lease file under the state dir"
grep -q "^ringstor-leases 1$" "$T/state/leases" || fail "lease file header: $(head -3 "$T/state/leases")"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || fail "exit status on SIGTERM"
DAEMON_PID=""
start_daemon "$T/rs.conf" "${NFSARGS[@]}"
expect 0 --mode lease --op show --json
python3 - "$T/out" "$INIT1" "$INIT2" <<'PY' || fail "leases after a restart: $(cat "$T/out")"
import json, sys
d = json.load(open(sys.argv[1]))
by = {(l.get("lun"), l["lld"]): l for l in d["leases"]}
assert by[(1, "iscsi")]["held"] and by[(1, "iscsi")]["holder"] == sys.argv[2] and by[(1, "iscsi")]["epoch"] == 3, by
assert by[(2, "iscsi")]["holder"] == sys.argv[3] and by[(2, "iscsi")]["epoch"] == 12, by
assert by[(None, "nfs")]["holder"] == "rawtest" and by[(None, "nfs")]["epoch"] == 2, by
PY
expect 116 "${L1[@]}" --op transfer --holder "$INIT2" --epoch 2
expect 0 "${L1[@]}" --op transfer --holder "$INIT1" --epoch 3
[ "$(cat "$T/out")" = 4 ] || fail "transfer after restart printed '$(cat "$T/out")'"
ok "leases and epochs persist across a restart"

# A damaged lease file must stop the start, not silently drop the fencing.
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || fail "exit status on SIGTERM"
DAEMON_PID=""
cp "$T/state/leases" "$T/leases.good"
head -n -1 "$T/state/leases" >"$T/leases.cut" && cp "$T/leases.cut" "$T/state/leases"
timeout 20 "$RINGSTORD" -f -c "$T/rs.conf" -C "$T/ctl2.sock" --state-dir "$T/state" \
	--iscsi-portal 127.0.0.1:$PORT >"$T/bad.log" 2>&1 && fail "ringstord started with a truncated lease file"
grep -q "leases" "$T/bad.log" || fail "no reason given for refusing the lease file: $(cat "$T/bad.log")"
cp "$T/leases.good" "$T/state/leases"
ok "a truncated lease file stops ringstord from starting ($(grep -m1 -o 'leases: .*' "$T/bad.log" | cut -c1-90)...)"
start_daemon "$T/rs.conf" "${NFSARGS[@]}"

# --------------------------------------------------- data path enforcement
if [ "${LEASE_ENFORCEMENT:-1}" != 1 ]; then
	ok "data path enforcement not checked (set LEASE_ENFORCEMENT=1 once the hooks are wired)"
	exit 0
fi

cat >"$T/io.py" <<'PY'
"""iscsi PORT TARGET INITIATOR LUN WANT | nfs NFSP MNTP EXP FILE MACHINE WANT |
pr PORT TARGET INIT1 INIT2 | xcopy PORT TARGET INITIATOR NAA_OF_LUN1"""
import os, socket, struct, sys, time
sys.path.insert(0, os.environ["TOP"] + "/tests")
import iscsi_proto as p

def iscsi(port, target, ini, lun, want, isid=b"\x80\x00\x00\x00\x00\x07"):
    p.HOST, p.PORT, p.TGT, p.INI = "127.0.0.1", port, target, ini
    c = p.Conn(isid=isid)
    st, _ = c.login()
    assert st == 0, "login %s: %#x" % (ini, st)
    for _ in range(4):
        if c.run(p.tur(), lun=lun)[0] == 0:
            break
    st = c.run(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, read=True, lun=lun)[0]
    assert st == 0, "READ(10) by %s: status %s" % (ini, st)
    w10 = c.run(bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, write=True, data=b"L" * 512, lun=lun)[0]
    w16 = c.run(bytes([0x8A, 0] + [0] * 8 + [0, 0, 0, 1, 0, 0]), edtl=512, write=True, data=b"M" * 512, lun=lun)[0]
    ws = c.run(bytes([0x41, 0, 0, 0, 0, 2, 0, 0, 1, 0]), edtl=512, write=True, data=b"\0" * 512, lun=lun)[0]
    sync = c.run(bytes([0x35] + [0] * 9), lun=lun)[0]
    c.close()
    assert (w10, w16, ws) == (want, want, want), \
        "%s on LUN %d: WRITE(10) %s, WRITE(16) %s, WRITE SAME(10) %s; want %s" % (ini, lun, w10, w16, ws, want)
    assert sync == 0, "SYNCHRONIZE CACHE by %s: %s (not write-class)" % (ini, sync)
    print("ok: %s on LUN %d: reads pass, writes -> %#x" % (ini, lun, want))

def pr(port, target, ini1, ini2):
    """LUN 1, lease held by ini1.  PR OUT is not write-class for the lease:
    the non-holder ini2 registers and takes a WRITE EXCLUSIVE reservation;
    then the reservation stops the lease holder ini1 and the lease still
    stops ini2: both gates apply, independently."""
    p.HOST, p.PORT, p.TGT = "127.0.0.1", port, target
    def sess(ini, isid):
        p.INI = ini
        c = p.Conn(isid=isid)
        assert c.login()[0] == 0
        c.drain_ua()
        return c
    def prout(c, sa, key, sark, prtype=0):
        params = struct.pack(">QQI", key, sark, 0) + b"\0\0\0\0"
        cdb = bytes([0x5F, sa, prtype, 0, 0]) + struct.pack(">I", len(params)) + b"\0"
        return c.run(cdb, edtl=len(params), write=True, data=params)[0]
    def w(c):
        return c.run(bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, write=True, data=b"p" * 512)[0]
    a, b = sess(ini1, b"\x80\x00\x00\x00\x00\x11"), sess(ini2, b"\x80\x00\x00\x00\x00\x12")
    assert w(a) == 0 and w(b) == 0x18, "lease alone"
    assert prout(b, 0, 0, 0x77) == 0, "REGISTER by the lease non-holder"
    assert prout(b, 1, 0x77, 0, prtype=1) == 0, "RESERVE (WE) by the lease non-holder"
    assert w(a) == 0x18, "the lease holder must still meet the reservation"
    assert w(b) == 0x18, "the reservation holder must still meet the lease"
    assert prout(b, 2, 0x77, 0, prtype=1) == 0 and prout(b, 0, 0x77, 0) == 0, "RELEASE/unregister"
    assert w(a) == 0 and w(b) == 0x18, "lease alone again"
    print("ok: PR OUT passes the lease gate; a reservation and a lease both apply")

def xc(port, target, ini, naa1_hex):
    """EXTENDED COPY by ini from LUN 2 into LUN 1 (leased by someone else):
    the copy manager writes for ini, so RESERVATION CONFLICT; the other
    direction passes.  Also: the lease's NAA is the one VPD page 83h shows."""
    p.HOST, p.PORT, p.TGT, p.INI = "127.0.0.1", port, target, ini
    c = p.Conn(isid=b"\x80\x00\x00\x00\x00\x21")
    assert c.login()[0] == 0
    for lun in (1, 2):
        for _ in range(4):
            if c.run(p.tur(), lun=lun)[0] == 0:
                break
    naa1, naa2 = p.inquiry_naa(c, 1), p.inquiry_naa(c, 2)
    assert naa1 is not None and naa1.hex() == naa1_hex, (naa1, naa1_hex)
    st = p.xcopy(c, p.xcopy_list([(naa2, 512), (naa1, 512)], [(0, 1, 1, 0, 0)]), lun=2)[0]
    assert st == 0x18, "XCOPY into the leased LU: status %s" % st
    st = p.xcopy(c, p.xcopy_list([(naa1, 512), (naa2, 512)], [(0, 1, 1, 0, 0)], list_id=0x12), lun=2)[0]
    assert st == 0, "XCOPY out of the leased LU: status %s" % st
    print("ok: the lease is on the NAA of VPD 83h; EXTENDED COPY into a leased LU conflicts")

xid = [int(time.time() * 1000) & 0xffffff]
def p32(v): return struct.pack(">I", v)
def p64(v): return struct.pack(">Q", v)
def pop(b): return p32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)
def u32(b, o): return struct.unpack(">I", b[o:o + 4])[0], o + 4

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("connection closed")
        b += c
    return b

def call(port, prog, vers, proc, args, machine):
    xid[0] += 1
    body = p32(0) + pop(machine.encode()) + p32(0) + p32(0) + p32(0)
    m = p32(xid[0]) + p32(0) + p32(2) + p32(prog) + p32(vers) + p32(proc) + p32(1) + pop(body) + p32(0) + p32(0) + args
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(p32(0x80000000 | len(m)) + m)
    data = b""
    while True:
        v = struct.unpack(">I", recvn(s, 4))[0]
        data += recvn(s, v & 0x7fffffff)
        if v & 0x80000000: break
    s.close()
    vlen = struct.unpack(">I", data[16:20])[0]
    o = 20 + vlen
    assert struct.unpack(">I", data[o:o + 4])[0] == 0, "accept_stat"
    return data[o + 4:]

def nfs(nfsp, mntp, exp, name, machine, want):
    r = call(mntp, 100005, 3, 1, pop(exp.encode()), machine)
    st, o = u32(r, 0)
    assert st == 0, "MNT %d" % st
    n, o = u32(r, o)
    root = r[o:o + n]
    r = call(nfsp, 100003, 3, 3, pop(root) + pop(name.encode()), machine)
    st, o = u32(r, 0)
    assert st == 0, "LOOKUP %d" % st
    n, o = u32(r, o)
    fh = r[o:o + n]
    st = u32(call(nfsp, 100003, 3, 6, pop(fh) + p64(0) + p32(512), machine), 0)[0]
    assert st == 0, "READ by %s: %d" % (machine, st)
    wr = u32(call(nfsp, 100003, 3, 7, pop(fh) + p64(0) + p32(512) + p32(2) + pop(b"n" * 512), machine), 0)[0]
    cm = u32(call(nfsp, 100003, 3, 21, pop(fh) + p64(0) + p32(0), machine), 0)[0]
    # SETATTR: mode unset, uid/gid unset, size = 1 MiB (set_size), times unchanged, no guard
    sattr = p32(0) + p32(0) + p32(0) + p32(1) + p64(1048576) + p32(0) + p32(0)
    sa = u32(call(nfsp, 100003, 3, 2, pop(fh) + sattr + p32(0), machine), 0)[0]
    # SETATTR without a size (mode only) is not a write of the data
    sattr = p32(1) + p32(0o644) + p32(0) + p32(0) + p32(0) + p32(0) + p32(0)
    sm = u32(call(nfsp, 100003, 3, 2, pop(fh) + sattr + p32(0), machine), 0)[0]
    assert (wr, cm, sa) == (want, want, want), \
        "%s: WRITE %d, COMMIT %d, SETATTR(size) %d; want %d" % (machine, wr, cm, sa, want)
    assert sm == 0, "SETATTR(mode) by %s: %d" % (machine, sm)
    print("ok: NFS client '%s': READ passes, WRITE/COMMIT/SETATTR(size) -> %d" % (machine, want))
    # Name-based changes of the leased file (REMOVE, RENAME from and over it,
    # CREATE UNCHECKED with a size over it) are writes too; unrelated names
    # are not affected.
    def dirop(name):
        return pop(root) + pop(name.encode())
    def st_of(proc, args):
        return u32(call(nfsp, 100003, 3, proc, args, machine), 0)[0]
    size1m = p32(0) + p32(0) + p32(0) + p32(1) + p64(1048576) + p32(0) + p32(0)
    nosize = p32(0) * 7
    tmp = name + ".tmp." + machine
    decoy = name + ".decoy." + machine
    # (SETATTR above already made the holder's file 1 MiB: same size here)
    got = {
        "CREATE UNCHECKED+size over it": st_of(8, dirop(name) + p32(0) + size1m),
        "RENAME it away": st_of(14, dirop(name) + dirop(tmp)),
    }
    if want == 0:
        # the holder may; put it back (REMOVE / RENAME-over by the holder
        # would destroy the image the later steps use: not tried)
        got["RENAME it back"] = st_of(14, dirop(tmp) + dirop(name))
    else:
        got["REMOVE it"] = st_of(12, dirop(name))
        assert st_of(8, dirop(decoy) + p32(1) + nosize) == 0, "CREATE GUARDED of an unrelated name"
        got["RENAME another file over it"] = st_of(14, dirop(decoy) + dirop(name))
        assert st_of(12, dirop(decoy)) == 0, "REMOVE of an unrelated name"
    for k, v in got.items():
        assert v == want, "%s: %s -> %d, want %d" % (machine, k, v, want)
    assert st_of(8, dirop(name) + p32(0) + nosize) == 0, "CREATE UNCHECKED without a size over it"
    print("ok: NFS client '%s': CREATE-over/REMOVE/RENAME of the leased file -> %d" % (machine, want))

a = sys.argv[1:]
if a[0] == "iscsi":
    iscsi(int(a[1]), a[2], a[3], int(a[4]), int(a[5], 0))
elif a[0] == "pr":
    pr(int(a[1]), a[2], a[3], a[4])
elif a[0] == "xcopy":
    xc(int(a[1]), a[2], a[3], a[4])
else:
    nfs(int(a[1]), int(a[2]), a[3], a[4], a[5], int(a[6]))
PY
export TOP
io() { python3 "$T/io.py" "$@" || fail "data path: $*"; }

# LUN 1 is held by INIT1 (epoch 4), LUN 2 by INIT2 (epoch 12)
io iscsi "$PORT" "$IQN" "$INIT1" 1 0
io iscsi "$PORT" "$IQN" "$INIT2" 1 0x18
io iscsi "$PORT" "$IQN" "$INIT1" 2 0x18
io iscsi "$PORT" "$IQN" "$INIT2" 2 0
io pr "$PORT" "$IQN" "$INIT1" "$INIT2"
expect 0 "${L1[@]}" --op show --json
NAA1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["leases"][0]["naa"])' "$T/out")
io xcopy "$PORT" "$IQN" "$INIT2" "$NAA1"
expect 0 "${L1[@]}" --op transfer --holder "$INIT2" --epoch 4
io iscsi "$PORT" "$IQN" "$INIT1" 1 0x18
io iscsi "$PORT" "$IQN" "$INIT2" 1 0
expect 0 "${L1[@]}" --op release --epoch 5
io iscsi "$PORT" "$IQN" "$INIT1" 1 0
ok "iSCSI: non-holders get RESERVATION CONFLICT, reads and SYNCHRONIZE CACHE pass, transfer/release move the right"

# The NFS file is held by machine name "rawtest" (epoch 2); the raw client
# comes from 127.0.0.1.
io nfs "$NFSP" "$MNTP" "$EXP" vm.img rawtest 0
io nfs "$NFSP" "$MNTP" "$EXP" vm.img otherhost 13
expect 0 --lld nfs --mode lease --op transfer --path "$EXP/vm.img" --holder 127.0.0.1 --epoch 2
io nfs "$NFSP" "$MNTP" "$EXP" vm.img otherhost 0
expect 0 --lld nfs --mode lease --op transfer --path "$EXP/vm.img" --holder 127.0.0.9 --epoch 3
io nfs "$NFSP" "$MNTP" "$EXP" vm.img rawtest 13
expect 0 --lld nfs --mode lease --op release --path "$EXP/vm.img" --epoch 4
io nfs "$NFSP" "$MNTP" "$EXP" vm.img rawtest 0
ok "NFS: non-holders get NFS3ERR_ACCES on WRITE/COMMIT/SETATTR(size), READ passes; by address and by machine name"
grep -E "runtime error|AddressSanitizer" "$T/daemon.log" && fail "sanitizer report"
exit 0
