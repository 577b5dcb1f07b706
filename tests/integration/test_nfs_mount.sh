#!/usr/bin/env bash
# test_nfs_mount.sh - the NFS gateway's front end against real clients:
# the built-in portmapper (v2 GETPORT over UDP, v4 GETADDR over TCP), MOUNT
# over UDP and TCP (MNT, EXPORT, DUMP, UMNT, the secure-port rule from a
# reserved and an unreserved source port, not-exported paths), garbage and
# oversized records on the NFS port, then libnfs's own tools (nfs-ls, nfs-cat,
# nfs-cp) with ?nfsport=&mountport= URLs, and a clean SIGTERM shutdown.
#
# Then: exports added, updated and deleted live with ringstoradm; a second
# daemon configured through the config file's nfs section (listen list with
# IPv4 and IPv6, mount_port, portmap = "off"): NFS over IPv6, and no
# portmapper anywhere.
#
# Runs the real daemon (build/ringstord).  Env: BUILD.  Exit 0 pass, 1 fail,
# 77 skip.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs_lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$RINGSTORD" ] || fail "build $RINGSTORD first"

NFSP=$(free_port); MNTP=$(free_port); PMP=$(free_port)
EXP=$T/export; SEC=$T/secure
mkdir -p "$EXP/dir1" "$SEC" "$T/state"
echo "hello from ringstor" >"$EXP/file1"

NFSD_WAIT_PORT=$NFSP
start_nfsd --nfs-listen "127.0.0.1:$NFSP" --mount-port "$MNTP" --portmap "127.0.0.1:$PMP" \
	--nfs-export "$EXP 127.0.0.1(rw,insecure,no_root_squash) *(ro)" \
	--nfs-export "$SEC 127.0.0.1(rw)"
grep -q "NFS 127.0.0.1:$NFSP (MOUNT port $MNTP, portmapper built in)" "$T/daemon.log" ||
	fail "daemon not serving NFS with the built-in portmapper"
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

# ------------------------------------------- exports changed live (ringstoradm)
[ -x "$RINGSTORADM" ] || fail "build $RINGSTORADM first"
LIVE=$T/live
mkdir -p "$LIVE"
echo "live data" >"$LIVE/f"
cat >"$T/mnt.py" <<'PY'
import socket, struct, sys
# MNT over TCP on the MOUNT port: prints the mountstat3
port, path = int(sys.argv[1]), sys.argv[2]
def p32(v): return struct.pack(">I", v)
def pstr(b): return p32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)
body = p32(0) + pstr(b"t") + p32(0) + p32(0) + p32(0)
m = p32(7) + p32(0) + p32(2) + p32(100005) + p32(3) + p32(1) + p32(1) + pstr(body) + p32(0) + p32(0) + pstr(path.encode())
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(p32(0x80000000 | len(m)) + m)
h = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0] & 0x7fffffff
r = s.recv(h, socket.MSG_WAITALL)
vl = struct.unpack(">I", r[16:20])[0]
print(struct.unpack(">I", r[24 + vl:28 + vl])[0])
PY
mntst() { python3 "$T/mnt.py" "$MNTP" "$1"; }
[ "$(mntst "$LIVE")" = 13 ] || fail "an unexported directory mounts"
ADM --lld nfs --mode export --op new --export-id 4242 --path "$LIVE" \
	--clients '127.0.0.1(rw,insecure)' >"$T/adm.out" 2>&1 || fail "export new: $(cat "$T/adm.out")"
[ "$(mntst "$LIVE")" = 0 ] || fail "export added live does not mount"
ADM --lld nfs --mode export --op show >"$T/adm.out" 2>&1 || fail "export show"
grep -qF "$LIVE" "$T/adm.out" && grep -q 4242 "$T/adm.out" || fail "export show: $(cat "$T/adm.out")"
if command -v nfs-cat >/dev/null; then
	out=$(nfs-cat "nfs://127.0.0.1$LIVE/f?nfsport=$NFSP&mountport=$MNTP" 2>&1) || fail "nfs-cat live: $out"
	[ "$out" = "live data" ] || fail "nfs-cat live export: $out"
fi
ok "ringstoradm --op new --export-id 4242: mounts and reads at once"
ADM --lld nfs --mode export --op update --export-id 4242 --clients '10.9.9.9(rw)' >"$T/adm.out" 2>&1 ||
	fail "export update: $(cat "$T/adm.out")"
[ "$(mntst "$LIVE")" = 13 ] || fail "client still allowed after --op update"
ADM --lld nfs --mode export --op update --export-id 4242 --clients '127.0.0.1(ro,insecure)' >"$T/adm.out" 2>&1 ||
	fail "export update: $(cat "$T/adm.out")"
[ "$(mntst "$LIVE")" = 0 ] || fail "client refused after --op update"
if command -v nfs-cp >/dev/null; then
	echo x >"$T/small"
	nfs-cp "$T/small" "nfs://127.0.0.1$LIVE/new?nfsport=$NFSP&mountport=$MNTP" >/dev/null 2>&1 &&
		fail "a write to an export updated to ro succeeded"
	[ -e "$LIVE/new" ] && fail "ro export: file created"
fi
ok "ringstoradm --op update: client list and ro take effect live"
ADM --lld nfs --mode export --op delete --export-id 4242 >"$T/adm.out" 2>&1 || fail "export delete: $(cat "$T/adm.out")"
[ "$(mntst "$LIVE")" = 13 ] || fail "deleted export still mounts"
ADM --lld nfs --mode export --op show --export-id 4242 >"$T/adm.out" 2>&1 && fail "show of a deleted export"
ok "ringstoradm --op delete --export-id: MNT refused (ACCES)"

stop_nfsd
grep -q "stopped" "$T/daemon.log" || fail "no clean stop"
check_daemon_log
ok "clean shutdown"

# ------------------- the config file's spelling: listen list, IPv6, portmap off
NFSP2=$(free_port); MNTP2=$(free_port)
have_v6=0
python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null && have_v6=1
if [ $have_v6 = 1 ]; then L6=", \"[::1]:$NFSP2\""; else L6=""; fi
cat >"$T/nfs.conf" <<CONF
nfs = {
    enabled = true;
    listen = [ "127.0.0.1:$NFSP2"$L6 ];
    mount_port = $MNTP2;
    portmap = "off";
    exports = ( "$EXP 127.0.0.1(rw,insecure) ::1(rw,insecure)" );
};
CONF
"$RINGSTORD" --check-config -c "$T/nfs.conf" >"$T/check.out" 2>&1 || fail "--check-config: $(cat "$T/check.out")"
NFSD_CONF=$T/nfs.conf NFSD_WAIT_PORT=$NFSP2 start_nfsd
[ "$(python3 "$T/mnt.py" "$MNTP2" "$EXP")" = 0 ] || fail "MNT on the config's mount_port"
[ "$(python3 "$T/mnt.py" "$NFSP2" "$EXP")" = 0 ] || fail "MNT on the config's listen port"
ok "config nfs.listen / mount_port: MOUNT on both ports"
if [ $have_v6 = 1 ]; then
	python3 - "$NFSP2" "$EXP" <<'PY' || fail "NFS over IPv6"
import socket, struct, sys
port, path = int(sys.argv[1]), sys.argv[2]
def p32(v): return struct.pack(">I", v)
def pstr(b): return p32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)
def call(s, xid, prog, vers, proc, args):
    body = p32(0) + pstr(b"t") + p32(0) + p32(0) + p32(0)
    m = p32(xid) + p32(0) + p32(2) + p32(prog) + p32(vers) + p32(proc) + p32(1) + pstr(body) + p32(0) + p32(0) + args
    s.sendall(p32(0x80000000 | len(m)) + m)
    h = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0] & 0x7fffffff
    r = s.recv(h, socket.MSG_WAITALL)
    vl = struct.unpack(">I", r[16:20])[0]
    assert struct.unpack(">I", r[20 + vl:24 + vl])[0] == 0
    return r[24 + vl:]
s = socket.create_connection(("::1", port), timeout=5)
r = call(s, 1, 100005, 3, 1, pstr(path.encode()))
assert struct.unpack(">I", r[:4])[0] == 0, "MNT over IPv6"
n = struct.unpack(">I", r[4:8])[0]
fh = r[8:8 + n]
r = call(s, 2, 100003, 3, 1, pstr(fh))
assert struct.unpack(">I", r[:4])[0] == 0, "GETATTR over IPv6"
print("ok: IPv6 listen [::1]:%d: MNT and GETATTR" % port)
PY
else
	echo "no IPv6 loopback: IPv6 listen check skipped"
fi
# Every socket the daemon listens on: iSCSI, NFS, MOUNT and NLM (its
# default port 32803, once NLM is built in), no portmapper.
if command -v ss >/dev/null; then
	ports=$(ss -Hltnup 2>/dev/null | grep "pid=$DAEMON_PID," | awk '{print $5}' | sed 's/.*://' | sort -un | tr '\n' ' ')
	for p in $ports; do
		case " $PORT $NFSP2 $MNTP2 32803 " in *" $p "*) ;; *) fail "unexpected listener on port $p ($ports)";; esac
	done
	case " $ports " in *" $MNTP2 "*) ;; *) fail "no MOUNT listener ($ports)";; esac
else
	echo "ss not installed: listener check skipped"
fi
ok "portmap = \"off\": no portmapper"
stop_nfsd
check_daemon_log
ok "clean shutdown (config-file daemon)"
