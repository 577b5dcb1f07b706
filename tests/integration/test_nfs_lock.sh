#!/usr/bin/env bash
# test_nfs_lock.sh - NLM v4 and the minimal NSM against a running ringstord:
# the portmapper knows nlockmgr and status; MNT + LOOKUP a file; NLM NULL
# (TCP and UDP), TEST, LOCK, a conflicting LOCK from another owner (DENIED,
# TEST names the holder), a blocking LOCK (BLOCKED) granted after UNLOCK
# through an NLM_GRANTED call to a tiny callback lock manager registered with
# the portmapper, the locks listed by `ringstoradm --lld nfs --mode lock --op
# show [--json]` and broken by `--op delete` (by --path, by
# --initiator-address), SHARE/UNSHARE, FREE_ALL, SM_NOTIFY from a "rebooted"
# client, CANCEL; then a restart: the NSM state moves to the next odd number
# and the grace period refuses new locks but takes reclaims.
# Env: BUILD.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$RINGSTORD" ] && [ -x "$RINGSTORADM" ] || fail "build $RINGSTORD and $RINGSTORADM first"

NFSP=$(free_port); MNTP=$(free_port); NLMP=$(free_port); PMP=$(free_port)
EXP=$T/export
mkdir -p "$EXP" "$T/state"
echo "lock me" >"$EXP/lockfile"
: >"$T/empty.conf"
NFSARGS=(--nfs-bind 127.0.0.1 --nfs-port "$NFSP" --mount-port "$MNTP" --nlm-port "$NLMP"
	 --portmap-port "$PMP" --portmap builtin --nfs-export "$EXP 127.0.0.1(rw,insecure)")

export RINGSTOR_NLM_GRACE=0
start_daemon "$T/empty.conf" "${NFSARGS[@]}"
ok "ringstord up: nfs $NFSP, mount $MNTP, nlm $NLMP, portmap $PMP"
[ "$(cat "$T/state/nsm-state")" = 1 ] || fail "nsm-state is '$(cat "$T/state/nsm-state")', not 1"

cat >"$T/nlm.py" <<'PY'
import json, os, socket, struct, subprocess, sys, threading, time

NFSP, MNTP, NLMP, PMP = (int(x) for x in sys.argv[1:5])
EXP, ADM, SOCK, PHASE = sys.argv[5:9]
xid = [int(time.time()) & 0xffff]

def p32(v): return struct.pack(">I", v & 0xffffffff)
def p64(v): return struct.pack(">Q", v)
def pop(b):
    b = b.encode() if isinstance(b, str) else b
    return p32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)
def u32(b, o): return struct.unpack(">I", b[o:o + 4])[0], o + 4
def u64(b, o): return struct.unpack(">Q", b[o:o + 8])[0], o + 8
def gop(b, o):
    n, o = u32(b, o)
    return b[o:o + n], o + ((n + 3) & ~3)

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("connection closed")
        b += c
    return b

def recv_record(s):
    data = b""
    while True:
        v = struct.unpack(">I", recvn(s, 4))[0]
        data += recvn(s, v & 0x7fffffff)
        if v & 0x80000000: return data

def msg(prog, vers, proc, args):
    xid[0] += 1
    body = p32(0) + pop("testclient") + p32(0) + p32(0) + p32(0)
    return xid[0], p32(xid[0]) + p32(0) + p32(2) + p32(prog) + p32(vers) + p32(proc) + p32(1) + pop(body) + p32(0) + p32(0) + args

def parse(x, data):
    rx, mt, st = struct.unpack(">III", data[:12])
    assert rx == x and mt == 1 and st == 0, "denied"
    vlen = struct.unpack(">I", data[16:20])[0]
    o = 20 + vlen
    acc = struct.unpack(">I", data[o:o + 4])[0]
    assert acc == 0, "accept_stat %d" % acc
    return data[o + 4:]

def call(port, prog, vers, proc, args=b""):
    x, m = msg(prog, vers, proc, args)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(p32(0x80000000 | len(m)) + m)
    data = recv_record(s)
    s.close()
    return parse(x, data)

def ucall(port, prog, vers, proc, args=b"", reserved=False):
    x, m = msg(prog, vers, proc, args)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reserved:        # SET/UNSET: the portmapper wants a privileged local caller
        for p in range(1023, 599, -1):
            try:
                s.bind(("127.0.0.1", p))
                break
            except OSError:
                pass
    s.settimeout(5)
    s.sendto(m, ("127.0.0.1", port))
    data = s.recv(65536)
    s.close()
    return parse(x, data)

def ok(m): print("ok:", m, flush=True)

def adm(*a, expect=0):
    r = subprocess.run([ADM, "-C", SOCK, "--lld", "nfs", "--mode", "lock"] + list(a),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == expect, "ringstoradm %s: rc %d: %s %s" % (a, r.returncode, r.stdout, r.stderr)
    return r.stdout + r.stderr

# ---- NLM v4 argument builders (XNFS 14.1)
def alock(fh, caller, svid, off, ln):
    return pop(caller) + pop(fh) + pop("%d@%s" % (svid, caller)) + p32(svid) + p64(off) + p64(ln)

def nlm(proc, args, cookie=b"ck"):
    r = call(NLMP, 100021, 4, proc, pop(cookie) + args)
    c, o = gop(r, 0)
    assert c == cookie, "cookie not echoed"
    st, o = u32(r, o)
    return st, r[o:]

def test(fh, caller, svid, excl, off=0, ln=0):
    return nlm(1, p32(excl) + alock(fh, caller, svid, off, ln))
def lock(fh, caller, svid, excl, off=0, ln=0, block=False, reclaim=False):
    return nlm(2, p32(block) + p32(excl) + alock(fh, caller, svid, off, ln) + p32(reclaim) + p32(1))[0]
def cancel(fh, caller, svid, excl, off=0, ln=0):
    return nlm(3, p32(1) + p32(excl) + alock(fh, caller, svid, off, ln))[0]
def unlock(fh, caller, svid, off=0, ln=0):
    return nlm(4, alock(fh, caller, svid, off, ln))[0]
def share(proc, fh, caller, oh, mode, access):
    r = call(NLMP, 100021, 4, proc, pop(b"sh") + pop(caller) + pop(fh) + pop(oh) + p32(mode) + p32(access) + p32(0))
    c, o = gop(r, 0)
    st, o = u32(r, o)
    return st

GRANTED, DENIED, BLOCKED, GRACE = 0, 1, 3, 4

# ---- MNT + LOOKUP
def lookup_file():
    r = call(MNTP, 100005, 3, 1, pop(EXP))
    st, o = u32(r, 0)
    assert st == 0, "MNT %d" % st
    root, o = gop(r, o)
    r = call(NFSP, 100003, 3, 3, pop(root) + pop("lockfile"))
    st, o = u32(r, 0)
    assert st == 0, "LOOKUP %d" % st
    fh, o = gop(r, o)
    return fh

fh = lookup_file()

if PHASE == "restart":
    # grace period: new locks refused, reclaims taken, TEST refused
    assert lock(fh, "clientR", 5, 1) == GRACE, "new lock during grace"
    assert test(fh, "clientR", 5, 1)[0] == GRACE
    assert lock(fh, "clientC", 30, 1, 0, 10, reclaim=True) == GRANTED, "reclaim during grace"
    ok("grace period: LOCK -> DENIED_GRACE_PERIOD, reclaim LOCK -> GRANTED")
    time.sleep(3.5)
    assert lock(fh, "clientR", 5, 1, 0, 10) == DENIED, "after grace: conflict with the reclaimed lock"
    assert lock(fh, "clientR", 5, 1, 100, 10) == GRANTED
    ok("after the grace period: locks granted, the reclaimed lock holds")
    r = call(NLMP, 100024, 1, 1, pop("x"))
    assert struct.unpack(">II", r[:8]) == (0, 3), r
    ok("SM_STAT: state 3 after one restart")
    sys.exit(0)

# ---- portmapper knows NLM and NSM
r = ucall(PMP, 100000, 2, 3, p32(100021) + p32(4) + p32(6) + p32(0))
assert u32(r, 0)[0] == NLMP, r
r = ucall(PMP, 100000, 2, 3, p32(100021) + p32(1) + p32(17) + p32(0))
assert u32(r, 0)[0] == NLMP, r
r = ucall(PMP, 100000, 2, 3, p32(100024) + p32(1) + p32(17) + p32(0))
assert u32(r, 0)[0] == NLMP, r
ok("portmapper: nlockmgr v4/tcp, v1/udp and status v1/udp on %d" % NLMP)

assert call(NLMP, 100021, 4, 0) == b""
assert ucall(NLMP, 100021, 4, 0) == b""
assert call(NFSP, 100021, 4, 0) == b""
ok("NLM NULL over TCP and UDP, also on the NFS port")

st, _ = test(fh, "clientA", 10, 1)
assert st == GRANTED
assert lock(fh, "clientA", 10, 1, 0, 100) == GRANTED
st, h = test(fh, "clientB", 20, 1, 50, 1)
assert st == DENIED
ex, o = u32(h, 0); svid, o = u32(h, o); oh, o = gop(h, o); off, o = u64(h, o); ln, o = u64(h, o)
assert (ex, svid, oh, off, ln) == (1, 10, b"10@clientA", 0, 100), (ex, svid, oh, off, ln)
assert lock(fh, "clientB", 20, 1, 50, 1) == DENIED
assert lock(fh, "clientB", 20, 0, 100, 0) == GRANTED        # past A's range
ok("TEST/LOCK: conflicting owner DENIED, holder (excl, svid 10, 0+100) named")

# ---- the callback lock manager of "clientB": registered with the portmapper
cb = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
cb.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
cb.bind(("127.0.0.1", 0)); cb.listen(4); cb.settimeout(15)
cbport = cb.getsockname()[1]
got = {}
def cb_serve():
    try:
        c, _ = cb.accept()
        c.settimeout(10)
        data = recv_record(c)
        x, mt, rv, prog, vers, proc = struct.unpack(">IIIIII", data[:24])
        o = 24
        for _ in range(2):
            fl, o = u32(data, o); _b, o = gop(data, o)
        cookie, o = gop(data, o)
        excl, o = u32(data, o)
        caller, o = gop(data, o); cfh, o = gop(data, o); coh, o = gop(data, o)
        svid, o = u32(data, o); off, o = u64(data, o); ln, o = u64(data, o)
        got.update(prog=prog, vers=vers, proc=proc, cookie=cookie, excl=excl, fh=cfh, svid=svid, off=off, ln=ln)
        rep = p32(x) + p32(1) + p32(0) + p32(0) + p32(0) + p32(0) + pop(cookie) + p32(0)
        c.sendall(p32(0x80000000 | len(rep)) + rep)
        c.close()
    except Exception as e:
        got["error"] = repr(e)
t = threading.Thread(target=cb_serve); t.start()
# our NLM on this host is registered too: the "client" takes its place
ucall(PMP, 100000, 2, 2, p32(100021) + p32(4) + p32(6) + p32(0), reserved=True)
r = ucall(PMP, 100000, 2, 1, p32(100021) + p32(4) + p32(6) + p32(cbport), reserved=True)
assert u32(r, 0)[0] == 1, "PMAPPROC_SET refused"

st, _ = nlm(2, p32(1) + p32(1) + alock(fh, "clientB", 21, 10, 20) + p32(0) + p32(1), cookie=b"blk-cookie")
assert st == BLOCKED, st
out = adm("--op", "show")
assert "lockfile" in out and "clientA" in out and "clientB" in out and "blocked" in out, out
js = json.loads(adm("--op", "show", "--json"))
states = sorted((e["client"], e["state"]) for e in js)
assert states == [("clientA", "granted"), ("clientB", "blocked"), ("clientB", "granted")], states
assert all(e["path"] == os.path.realpath(EXP + "/lockfile") for e in js), js
ok("blocking LOCK -> BLOCKED; lock show lists granted and blocked locks with the file's path")

assert unlock(fh, "clientA", 10, 0, 100) == GRANTED
t.join(20)
assert "error" not in got, got
assert got.get("proc") == 5 and got["prog"] == 100021 and got["vers"] == 4, got
assert got["cookie"] == b"blk-cookie" and got["svid"] == 21 and got["off"] == 10 and got["ln"] == 20 and got["excl"] == 1, got
assert got["fh"] == fh
st, h = test(fh, "clientA", 10, 0, 15, 1)
assert st == DENIED and u32(h, 4)[0] == 21
ok("UNLOCK -> NLM_GRANTED callback to the client's lock manager (cookie, svid, range); B holds it")

# ---- breaking from the CLI
adm("--op", "delete", "--path", EXP + "/lockfile")
assert test(fh, "clientA", 10, 1)[0] == GRANTED
js = json.loads(adm("--op", "show", "--json"))
assert js == [], js
out = adm("--op", "delete", "--initiator-address", "nobody.example", expect=2)
assert "no NLM locks" in out, out
assert lock(fh, "clientB", 20, 1) == GRANTED
assert test(fh, "clientA", 10, 1)[0] == DENIED
adm("--op", "delete", "--initiator-address", "clientB")
assert test(fh, "clientA", 10, 1)[0] == GRANTED
ok("lock delete --path and --initiator-address break locks; unknown client refused")

# ---- CANCEL
assert lock(fh, "clientA", 10, 1) == GRANTED
assert lock(fh, "clientB", 22, 1, 0, 0, block=True) == BLOCKED
assert cancel(fh, "clientB", 22, 1) == GRANTED
assert cancel(fh, "clientB", 22, 1) == DENIED
assert unlock(fh, "clientA", 10) == GRANTED
assert "blocked" not in adm("--op", "show")
ok("CANCEL removes a blocked request")

# ---- SHARE / UNSHARE
assert share(20, fh, "clientA", b"oha", 2, 3) == GRANTED     # rw, deny write
assert share(20, fh, "clientB", b"ohb", 0, 2) == DENIED      # wants write
assert share(20, fh, "clientB", b"ohb", 0, 1) == GRANTED     # read only
assert "share" in adm("--op", "show")
assert share(21, fh, "clientA", b"oha", 0, 0) == GRANTED
assert share(21, fh, "clientB", b"ohb", 0, 0) == GRANTED
assert share(20, fh, "clientC", b"ohc", 3, 3) == GRANTED     # exclusive now
assert share(21, fh, "clientC", b"ohc", 0, 0) == GRANTED
ok("SHARE/UNSHARE with DOS deny modes")

# ---- FREE_ALL and SM_NOTIFY
assert lock(fh, "clientA", 10, 1, 0, 10) == GRANTED
call(NLMP, 100021, 4, 23, pop("clientA") + p32(3))
assert test(fh, "clientB", 20, 1)[0] == GRANTED
assert lock(fh, "clientD", 40, 1, 0, 10) == GRANTED
ucall(NLMP, 100024, 1, 6, pop("clientD") + p32(7))           # SM_NOTIFY: clientD rebooted
assert test(fh, "clientB", 20, 1)[0] == GRANTED
ok("FREE_ALL and SM_NOTIFY free a client's locks")

# ---- a lock that survives into the restart phase (remembered for NSM)
assert lock(fh, "clientC", 30, 1, 0, 10) == GRANTED
ok("clientC holds a lock across the restart")
PY

run_py() { timeout 120 python3 "$T/nlm.py" "$NFSP" "$MNTP" "$NLMP" "$PMP" "$EXP" "$RINGSTORADM" "$SOCK" "$@"; }
run_py main || fail "NLM checks (main phase)"
daemon_alive || fail "ringstord died"
for _ in $(seq 50); do grep -q clientC "$T/state/nsm-clients" 2>/dev/null && break; sleep 0.1; done
grep -q "clientC 127.0.0.1" "$T/state/nsm-clients" || fail "nsm-clients lacks clientC: $(cat "$T/state/nsm-clients" 2>&1)"
ok "nsm-clients remembers the client holding a lock"

# ---- restart: grace period for the clients that held locks
kill -TERM "$DAEMON_PID"
for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DAEMON_PID" 2>/dev/null && fail "ringstord did not stop on SIGTERM"
mv "$T/daemon.log" "$T/daemon1.log"
export RINGSTOR_NLM_GRACE=3
start_daemon "$T/empty.conf" "${NFSARGS[@]}"
[ "$(cat "$T/state/nsm-state")" = 3 ] || fail "nsm-state is '$(cat "$T/state/nsm-state")' after a restart, not 3"
grep -q "grace period of 3 s" "$T/daemon.log" || fail "no grace period announced"
run_py restart || fail "NLM checks (restart phase)"
daemon_alive || fail "ringstord died"
ok "NLM and NSM"
