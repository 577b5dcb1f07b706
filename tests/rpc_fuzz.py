#!/usr/bin/env python3
"""rpc_fuzz.py - mutation fuzzing of ringstord's ONC RPC services.

Usage: rpc_fuzz.py PMAP_PORT EXPORT_PATH ITERATIONS SEED

Finds every program the daemon serves through its portmapper (DUMP), builds
one well-formed call per procedure (NFSv3 RFC 1813, MOUNT v3 RFC 1813 5,
NLM v4 / NSM (XNFS), portmapper v2 RFC 1833), with real file handles from a
MNT and a LOOKUP, then sends ITERATIONS mutated calls over TCP (record
marking, RFC 5531 11) and UDP: truncations, byte flips, u32 fields replaced
with boundary values (0, 1, 2^31-1, 2^31, 2^32-1, length+1), junk appended,
mutated RPC headers and credentials, and broken record marks (zero-length,
multi-fragment, oversized).  The server may answer anything an RPC server
may answer (GARBAGE_ARGS, an NFS error status, a reply) or drop the
connection; it must never crash or stop answering.  After every 100 calls a
well-formed NULL call on a fresh connection must be answered within 5 s, and
at the end a GETATTR of the export root must still succeed.

The mutation sequence is reproducible from SEED.  Exit 0 = the server
survived; 1 = it crashed or hung (the failing mutation is printed).
"""
import random
import socket
import struct
import sys
import time

PMP, EXP, ITER, SEED = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(SEED)
xid_ctr = [SEED & 0xffff]


def p32(v):
    return struct.pack(">I", v & 0xffffffff)


def p64(v):
    return struct.pack(">Q", v & 0xffffffffffffffff)


def opaque(b):
    b = b.encode() if isinstance(b, str) else b
    return p32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def auth_sys(machine="fuzzhost", uid=0, gid=0, gids=()):
    body = p32(int(time.time())) + opaque(machine) + p32(uid) + p32(gid) + p32(len(gids))
    for g in gids:
        body += p32(g)
    return p32(1) + opaque(body)


def call_msg(prog, vers, proc, args, cred=None):
    xid_ctr[0] = (xid_ctr[0] + 1) & 0xffffffff
    cred = cred if cred is not None else auth_sys()
    return xid_ctr[0], (p32(xid_ctr[0]) + p32(0) + p32(2) + p32(prog) + p32(vers) + p32(proc)
                        + cred + p32(0) + p32(0) + args)


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed")
        b += c
    return b


def recv_record(s):
    data = b""
    while True:
        v = struct.unpack(">I", recvn(s, 4))[0]
        data += recvn(s, v & 0x7fffffff)
        if v & 0x80000000:
            return data


def tcp_conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tcp_call(port, prog, vers, proc, args=b""):
    """A well-formed call on a fresh connection: (accept_stat, results)."""
    s = tcp_conn(port)
    try:
        x, m = call_msg(prog, vers, proc, args)
        s.sendall(p32(0x80000000 | len(m)) + m)
        rep = recv_record(s)
    finally:
        s.close()
    rx, mtype, stat = struct.unpack(">III", rep[:12])
    assert rx == x and mtype == 1 and stat == 0, "bad reply to a well-formed call"
    vlen = struct.unpack(">I", rep[16:20])[0]
    off = 20 + vlen
    return struct.unpack(">I", rep[off:off + 4])[0], rep[off + 4:]


def u32_at(b, o):
    return struct.unpack(">I", b[o:o + 4])[0], o + 4


# ------------------------------------------------------------------ discovery
acc, res = tcp_call(PMP, 100000, 2, 4)          # PMAPPROC_DUMP
assert acc == 0, "portmapper DUMP"
progs = {}                                        # (prog, vers, prot) -> port
o = 0
while True:
    more, o = u32_at(res, o)
    if not more:
        break
    prog, o = u32_at(res, o)
    vers, o = u32_at(res, o)
    prot, o = u32_at(res, o)
    port, o = u32_at(res, o)
    progs[(prog, vers, prot)] = port
progs[(100000, 2, 6)] = PMP
progs[(100000, 2, 17)] = PMP


def port_of(prog, vers, prot=6):
    return progs.get((prog, vers, prot))


NFSP, MNTP = port_of(100003, 3), port_of(100005, 3)
assert NFSP and MNTP, "NFS and MOUNT must be registered: %r" % progs
acc, res = tcp_call(MNTP, 100005, 3, 1, opaque(EXP))
st, o = u32_at(res, 0)
assert acc == 0 and st == 0, "MNT %s" % EXP
n, o = u32_at(res, o)
ROOT = res[o:o + n]
acc, res = tcp_call(NFSP, 100003, 3, 3, opaque(ROOT) + opaque("seed.txt"))
st, o = u32_at(res, 0)
assert acc == 0 and st == 0, "LOOKUP seed.txt"
n, o = u32_at(res, o)
FILE = res[o:o + n]

# ---------------------------------------------------------------- seed calls
SATTR = p32(1) + p32(0o644) + p32(0) + p32(0) + p32(1) + p64(100) + p32(1) + p32(1)
DIROP = opaque(ROOT) + opaque("fz")
LOCK = opaque("fuzzhost") + opaque(FILE) + opaque(b"owner1") + p32(7) + p64(0) + p64(10)
seeds = [
    # NFSv3 (RFC 1813 3.3.x), every procedure
    (100003, 3, 0, b""),
    (100003, 3, 1, opaque(FILE)),
    (100003, 3, 2, opaque(FILE) + SATTR + p32(0)),
    (100003, 3, 3, opaque(ROOT) + opaque("seed.txt")),
    (100003, 3, 4, opaque(FILE) + p32(0x3f)),
    (100003, 3, 5, opaque(FILE)),
    (100003, 3, 6, opaque(FILE) + p64(0) + p32(4096)),
    (100003, 3, 7, opaque(FILE) + p64(0) + p32(8) + p32(2) + opaque(b"fuzzdata")),
    (100003, 3, 8, DIROP + p32(0) + SATTR),
    (100003, 3, 8, DIROP + p32(2) + b"verifier"),
    (100003, 3, 9, opaque(ROOT) + opaque("fzdir") + SATTR),
    (100003, 3, 10, opaque(ROOT) + opaque("fzlink") + SATTR + opaque("seed.txt")),
    (100003, 3, 11, opaque(ROOT) + opaque("fzfifo") + p32(7) + SATTR),
    (100003, 3, 11, opaque(ROOT) + opaque("fzchr") + p32(3) + SATTR + p32(1) + p32(3)),
    (100003, 3, 12, DIROP),
    (100003, 3, 13, opaque(ROOT) + opaque("fzdir")),
    (100003, 3, 14, DIROP + opaque(ROOT) + opaque("fz2")),
    (100003, 3, 15, opaque(FILE) + opaque(ROOT) + opaque("fzhard")),
    (100003, 3, 16, opaque(ROOT) + p64(0) + b"\0" * 8 + p32(4096)),
    (100003, 3, 17, opaque(ROOT) + p64(0) + b"\0" * 8 + p32(1024) + p32(8192)),
    (100003, 3, 18, opaque(ROOT)),
    (100003, 3, 19, opaque(ROOT)),
    (100003, 3, 20, opaque(ROOT)),
    (100003, 3, 21, opaque(FILE) + p64(0) + p32(0)),
    # MOUNT v3 (RFC 1813 5.2)
    (100005, 3, 0, b""), (100005, 3, 1, opaque(EXP)), (100005, 3, 2, b""),
    (100005, 3, 3, opaque(EXP)), (100005, 3, 4, b""), (100005, 3, 5, b""),
    # NLM v4: TEST, LOCK (non-blocking), CANCEL, UNLOCK, SHARE, UNSHARE, FREE_ALL
    (100021, 4, 1, opaque(b"c1") + p32(1) + LOCK),
    (100021, 4, 2, opaque(b"c2") + p32(0) + p32(1) + LOCK + p32(0) + p32(1)),
    (100021, 4, 3, opaque(b"c3") + p32(0) + p32(1) + LOCK),
    (100021, 4, 4, opaque(b"c4") + LOCK),
    (100021, 4, 20, opaque(b"c5") + opaque("fuzzhost") + opaque(FILE) + opaque(b"o") + p32(1) + p32(1) + p32(0)),
    (100021, 4, 21, opaque(b"c6") + opaque("fuzzhost") + opaque(FILE) + opaque(b"o") + p32(1) + p32(1) + p32(0)),
    (100021, 4, 23, opaque("fuzzhost") + p32(3)),
    # NSM v1: STAT, MON, UNMON, UNMON_ALL, NOTIFY
    (100024, 1, 1, opaque("fuzzhost")),
    (100024, 1, 2, opaque("fuzzhost") + opaque("127.0.0.1") + p32(100021) + p32(4) + p32(16) + b"p" * 16),
    (100024, 1, 3, opaque("fuzzhost") + opaque("127.0.0.1") + p32(100021) + p32(4) + p32(16)),
    (100024, 1, 4, opaque("127.0.0.1") + p32(100021) + p32(4) + p32(16)),
    (100024, 1, 6, opaque("fuzzhost") + p32(5)),
    # portmapper v2 (RFC 1833 3): GETPORT, DUMP, CALLIT
    (100000, 2, 3, p32(100003) + p32(3) + p32(6) + p32(0)),
    (100000, 2, 4, b""),
    (100000, 2, 5, p32(100003) + p32(3) + p32(0) + opaque(b"")),
]
seeds = [sd for sd in seeds if port_of(sd[0], sd[1])]
BOUNDARY = [0, 1, 2, 3, 4, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000, 0x1000000]


def mutate(msg):
    """One or more mutations of a whole call message (header included)."""
    b = bytearray(msg)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.randrange(8)
        if kind == 0 and len(b) > 1:                 # truncate
            del b[rng.randrange(1, len(b)):]
        elif kind == 1 and b:                        # flip bytes
            for _ in range(rng.randrange(1, 5)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind in (2, 3) and len(b) >= 4:        # an aligned u32 -> boundary value
            o = rng.randrange(len(b) // 4) * 4
            v = rng.choice(BOUNDARY + [len(b) - o, len(b) - o + 1])
            b[o:o + 4] = p32(v)
        elif kind == 4:                              # junk appended
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        elif kind == 5 and len(b) > 8:              # a slice duplicated
            i = rng.randrange(len(b))
            j = min(len(b), i + rng.randrange(4, 64))
            b[i:i] = b[i:j]
        elif kind == 6 and len(b) >= 28:            # header: rpcvers/prog/vers/proc
            o = rng.choice((8, 12, 16, 20))
            b[o:o + 4] = p32(rng.choice(BOUNDARY + [2, 3, 22, 100003]))
        elif kind == 7 and len(b) >= 32:            # credential flavor / length
            o = rng.choice((24, 28))
            b[o:o + 4] = p32(rng.choice(BOUNDARY + [6, 400, 401, 0x7ffffff0]))
    return bytes(b)


def frame(m):
    """Record marking, sometimes broken on purpose (RFC 5531 11)."""
    k = rng.randrange(10)
    if k == 0 and len(m) > 8:                        # two fragments
        i = rng.randrange(1, len(m))
        return p32(i) + m[:i] + p32(0x80000000 | (len(m) - i)) + m[i:], False
    if k == 1:                                       # a lying length
        return p32(0x80000000 | rng.choice((0, len(m) + 1, len(m) + 4096, 0x7fffffff))) + m, True
    if k == 2:                                       # an empty non-last fragment first
        return p32(0) + p32(0x80000000 | len(m)) + m, False
    return p32(0x80000000 | len(m)) + m, False


def alive():
    """A well-formed NULL on a fresh connection, answered within 5 s."""
    for attempt in range(3):
        try:
            acc, _ = tcp_call(NFSP, 100003, 3, 0)
            return acc == 0
        except (OSError, EOFError, AssertionError):
            time.sleep(0.5)
    return False


conns = {}
stats = {"replies": 0, "dropped": 0}


def send_tcp(port, framed):
    data, desync = framed
    s = conns.get(port)
    try:
        if s is None:
            s = conns[port] = tcp_conn(port)
        s.sendall(data)
        s.settimeout(0.01)      # replies on loopback take well under 1 ms; the rest is drained later
        try:
            while True:                              # drain what came back
                if not s.recv(65536):
                    raise EOFError
                stats["replies"] += 1
                s.settimeout(0.001)
        except socket.timeout:
            pass
        if desync:          # the stream is out of step now: start a new one
            s.close()
            conns.pop(port, None)
    except (OSError, EOFError):
        stats["dropped"] += 1
        try:
            s.close()
        except Exception:
            pass
        conns.pop(port, None)


udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(0.005)

start = time.time()
sent = 0
for i in range(ITER):
    prog, vers, proc, args = rng.choice(seeds)
    _, m = call_msg(prog, vers, proc, args, cred=auth_sys(gids=range(rng.choice((0, 0, 16)))))
    mm = mutate(m)
    last = (prog, vers, proc, mm.hex())
    if rng.random() < 0.25 and port_of(prog, vers, 17):
        udp.sendto(mm, ("127.0.0.1", port_of(prog, vers, 17)))
        try:
            while True:
                udp.recv(65536)
                stats["replies"] += 1
        except socket.timeout:
            pass
    else:
        send_tcp(port_of(prog, vers), frame(mm))
    sent += 1
    if i % 100 == 99 and not alive():
        print("FAIL: server stopped answering after call %d (prog %d vers %d proc %d), "
              "last message: %s" % (i, prog, vers, proc, last[3]))
        sys.exit(1)

for s in conns.values():
    s.close()
if not alive():
    print("FAIL: server not answering at the end")
    sys.exit(1)
acc, res = tcp_call(NFSP, 100003, 3, 1, opaque(ROOT))
assert acc == 0 and u32_at(res, 0)[0] == 0, "GETATTR of the root after fuzzing"
print("ok: %d mutated calls to %d procedures of %d programs (seed %d) in %.1f s: "
      "%d replies, %d connections dropped by the server; server alive"
      % (sent, len(seeds), len({sd[0] for sd in seeds}), SEED, time.time() - start,
         stats["replies"], stats["dropped"]))
