#!/usr/bin/env bash
# test_nfs_mount.sh - the NFS gateway's front end against real clients:
# the built-in portmapper (v2 GETPORT over UDP, v4 GETADDR over TCP), MOUNT
# over UDP and TCP (MNT, EXPORT, DUMP, UMNT, the secure-port rule from a
# reserved and an unreserved source port, not-exported paths), garbage and
# oversized records on the NFS port, then libnfs's own tools (nfs-ls, nfs-cat,
# nfs-cp) with ?nfsport=&mountport= URLs, and a clean SIGTERM shutdown.
#
# Runs tests/nfsgw_driver.c (built here against the archive) until ringstord
# has its NFS options.  Env: BUILD.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
[ -f "$BUILD/libringstor.a" ] || fail "build $BUILD/libringstor.a first"
CC=${CC:-cc}
DRIVER=$T/nfsgw_driver
$CC -std=gnu11 -O1 -g -D_GNU_SOURCE -pthread -I"$TOP" -o "$DRIVER" "$TOP/tests/nfsgw_driver.c" \
	"$BUILD/libringstor.a" -luring -lconfig -lcrypto -lnfs $( [ "${BUILD##*/}" = build-san ] && echo -fsanitize=address,undefined ) \
	|| fail "cannot build the driver"

NFSP=$(free_port); MNTP=$(free_port); PMP=$(free_port)
EXP=$T/export; SEC=$T/secure
mkdir -p "$EXP/dir1" "$SEC" "$T/state"
echo "hello from ringstor" >"$EXP/file1"

"$DRIVER" --bind 127.0.0.1 --nfs-port "$NFSP" --mount-port "$MNTP" --portmap-port "$PMP" \
	--state-dir "$T/state" --threads 2 --log-level info \
	--export "$EXP 127.0.0.1(rw,insecure,no_root_squash) *(ro)" \
	--export "$SEC 127.0.0.1(rw)" >"$T/driver.out" 2>"$T/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do
	grep -q READY "$T/driver.out" 2>/dev/null && break
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "driver exited at startup"
	sleep 0.1
done
grep -q "READY portmap=builtin" "$T/driver.out" || fail "driver not ready with the built-in portmapper"
ok "gateway up: nfs $NFSP, mount $MNTP, portmap $PMP"

cat >"$T/rpc.py" <<'PY'
import os, socket, struct, sys, time

NFSP, MNTP, PMP = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
EXP, SEC = sys.argv[4], sys.argv[5]
xid = [int(time.time()) & 0xffff]

def p32(v): return struct.pack(">I", v)
def pstr(s):
    b = s.encode() if isinstance(s, str) else s
    return p32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)

def call_msg(prog, vers, proc, args=b"", sys_auth=True):
    xid[0] += 1
    if sys_auth:
        body = p32(0) + pstr("testhost") + p32(0) + p32(0) + p32(0)
        cred = p32(1) + pstr(body)
    else:
        cred = p32(0) + p32(0)
    return xid[0], p32(xid[0]) + p32(0) + p32(2) + p32(prog) + p32(vers) + p32(proc) + cred + p32(0) + p32(0) + args

def parse_reply(x, rep):
    rx, mtype, stat = struct.unpack(">III", rep[:12])
    assert rx == x and mtype == 1, "bad reply header"
    assert stat == 0, "call denied"
    vlen = struct.unpack(">I", rep[16:20])[0]
    off = 20 + vlen
    acc = struct.unpack(">I", rep[off:off + 4])[0]
    return acc, rep[off + 4:]

def udp(port, prog, vers, proc, args=b"", bind_port=0):
    x, m = call_msg(prog, vers, proc, args)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind_port: s.bind(("127.0.0.1", bind_port))
    s.settimeout(3)
    s.sendto(m, ("127.0.0.1", port))
    rep = s.recv(65536)
    s.close()
    return parse_reply(x, rep)

def recv_record(s):
    data = b""
    while True:
        hdr = recvn(s, 4)
        v = struct.unpack(">I", hdr)[0]
        data += recvn(s, v & 0x7fffffff)
        if v & 0x80000000: return data

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("connection closed")
        b += c
    return b

def tcp_conn(port, bind_port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if bind_port: s.bind(("127.0.0.1", bind_port))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s

def tcp(s, prog, vers, proc, args=b""):
    x, m = call_msg(prog, vers, proc, args)
    s.sendall(p32(0x80000000 | len(m)) + m)
    return parse_reply(x, recv_record(s))

def ok(msg): print("ok:", msg, flush=True)

# portmapper v2 GETPORT over UDP
acc, res = udp(PMP, 100000, 2, 3, p32(100005) + p32(3) + p32(17) + p32(0))
assert acc == 0 and struct.unpack(">I", res[:4])[0] == MNTP, res
acc, res = udp(PMP, 100000, 2, 3, p32(100003) + p32(3) + p32(6) + p32(0))
assert acc == 0 and struct.unpack(">I", res[:4])[0] == NFSP, res
ok("PMAPPROC_GETPORT mount/udp=%d nfs/tcp=%d" % (MNTP, NFSP))
# rpcbind v4 GETADDR over TCP
s = tcp_conn(PMP)
acc, res = tcp(s, 100000, 4, 3, p32(100003) + p32(3) + pstr("tcp") + pstr("") + pstr(""))
n = struct.unpack(">I", res[:4])[0]
ua = res[4:4 + n].decode()
assert ua == "127.0.0.1.%d.%d" % (NFSP >> 8, NFSP & 255), ua
s.close()
ok("RPCBPROC_GETADDR nfs tcp -> " + ua)

# MOUNT over UDP: MNT, the handle and flavors
acc, res = udp(MNTP, 100005, 3, 1, pstr(EXP))
st = struct.unpack(">I", res[:4])[0]
assert acc == 0 and st == 0, (acc, st)
fhl = struct.unpack(">I", res[4:8])[0]
assert 8 <= fhl <= 64
nfl = struct.unpack(">I", res[8 + ((fhl + 3) & ~3):12 + ((fhl + 3) & ~3)])[0]
assert nfl >= 1
ok("MNT %s over UDP: %d-byte handle" % (EXP, fhl))
# the same handle on every MNT (stable)
acc, res2 = udp(MNTP, 100005, 3, 1, pstr(EXP + "/"))
assert res2[:8 + fhl] == res[:8 + fhl]
ok("MNT handle is stable")
# not exported / missing / ..
for path, want in (("/etc", 13), (EXP + "/nope", 2), (EXP + "/../x", 2)):
    acc, res = udp(MNTP, 100005, 3, 1, pstr(path))
    st = struct.unpack(">I", res[:4])[0]
    assert acc == 0 and st == want, (path, st)
ok("MNT refusals (ACCES, NOENT)")
# secure export: unreserved source port refused, reserved accepted
acc, res = udp(MNTP, 100005, 3, 1, pstr(SEC))
assert struct.unpack(">I", res[:4])[0] == 13
if os.geteuid() == 0:
    for bp in range(900, 1000):
        try:
            acc, res = udp(MNTP, 100005, 3, 1, pstr(SEC), bind_port=bp)
            break
        except OSError:
            continue
    assert struct.unpack(">I", res[:4])[0] == 0
    ok("secure export: port >= 1024 refused, reserved port accepted")
else:
    ok("secure export: port >= 1024 refused (not root: reserved port untested)")

# MOUNT over TCP on the NFS port too: EXPORT and DUMP
s = tcp_conn(NFSP)
acc, res = tcp(s, 100005, 3, 5)
assert acc == 0
exports = []
off = 0
while struct.unpack(">I", res[off:off + 4])[0] == 1:
    n = struct.unpack(">I", res[off + 4:off + 8])[0]
    d = res[off + 8:off + 8 + n].decode(); off += 8 + ((n + 3) & ~3)
    groups = []
    while struct.unpack(">I", res[off:off + 4])[0] == 1:
        n = struct.unpack(">I", res[off + 4:off + 8])[0]
        groups.append(res[off + 8:off + 8 + n].decode()); off += 8 + ((n + 3) & ~3)
    off += 4
    exports.append((d, groups))
assert (EXP, ["127.0.0.1", "*"]) in exports, exports
ok("EXPORT: %s" % exports)
acc, res = tcp(s, 100005, 3, 2)
assert acc == 0 and struct.unpack(">I", res[:4])[0] == 1
acc, res = tcp(s, 100005, 3, 3, pstr(EXP))
acc, res = tcp(s, 100005, 3, 4)
acc, res = tcp(s, 100005, 3, 2)
assert struct.unpack(">I", res[:4])[0] == 0, "mount list not empty after UMNT/UMNTALL"
ok("DUMP / UMNT / UMNTALL")
# unknown program / version on the NFS port
acc, res = tcp(s, 100099, 1, 0)
assert acc == 1
acc, res = tcp(s, 100005, 9, 0)
assert acc == 2 and struct.unpack(">II", res[:8]) == (1, 3), res
ok("PROG_UNAVAIL / PROG_MISMATCH (1..3)")
s.close()

# garbage and an oversized record: the connection is dropped, the server lives
s = tcp_conn(NFSP)
s.sendall(p32(0x80000000 | (8 << 20)) + b"x" * 100)
try:
    s.settimeout(3)
    assert s.recv(10) == b""
except ConnectionResetError:
    pass
s.close()
s = tcp_conn(NFSP)
s.sendall(p32(0x80000000 | 12) + b"garbagegarba")
acc, res = tcp(s, 100005, 3, 0)
assert acc == 0
s.close()
ok("oversized record drops the connection; garbage is ignored")
PY
python3 "$T/rpc.py" "$NFSP" "$MNTP" "$PMP" "$EXP" "$SEC" || fail "raw RPC checks"

# libnfs clients, straight to the ports (no portmapper needed)
Q="?nfsport=$NFSP&mountport=$MNTP"
if command -v nfs-ls >/dev/null; then
	out=$(nfs-ls "nfs://127.0.0.1$EXP$Q" 2>&1) || fail "nfs-ls: $out"
	echo "$out" | grep -q file1 && echo "$out" | grep -q dir1 || fail "nfs-ls output: $out"
	ok "nfs-ls lists the export"
	out=$(nfs-cat "nfs://127.0.0.1$EXP/file1$Q" 2>&1) || fail "nfs-cat: $out"
	[ "$out" = "hello from ringstor" ] || fail "nfs-cat output: $out"
	ok "nfs-cat reads a file"
	if command -v nfs-cp >/dev/null; then
		head -c 300000 /dev/urandom >"$T/blob"
		nfs-cp "$T/blob" "nfs://127.0.0.1$EXP/blob$Q" >"$T/cp.log" 2>&1 || fail "nfs-cp: $(cat "$T/cp.log")"
		cmp "$T/blob" "$EXP/blob" || fail "nfs-cp: content differs"
		ok "nfs-cp writes a 300 kB file"
	fi
	out=$(nfs-ls "nfs://127.0.0.1/etc$Q" 2>&1) && fail "nfs-ls of an unexported path succeeded"
	ok "nfs-ls of an unexported path fails"
else
	echo "nfs-ls not installed: libnfs client checks skipped"
fi

kill -0 "$DAEMON_PID" || fail "driver died"
kill -TERM "$DAEMON_PID"
for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DAEMON_PID" 2>/dev/null && fail "driver did not stop on SIGTERM"
wait "$DAEMON_PID"; rc=$?
[ $rc -eq 0 ] || fail "driver exit status $rc"
grep -q "stopped" "$T/daemon.log" || fail "no clean stop"
grep -E "ERROR|runtime error|AddressSanitizer" "$T/daemon.log" && fail "sanitizer report"
DAEMON_PID=""
ok "clean shutdown"
