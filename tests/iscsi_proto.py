#!/usr/bin/env python3
"""Raw iSCSI protocol checks against ringstord (RFC 7143 edge cases).

A small iSCSI initiator written for tests: it builds every PDU by hand
(RFC 7143 section 11), so it can send what real initiators never do and check
the target's answer byte by byte.  tests/iscsi_raw.py (robustness fuzzing)
shares its PDU helpers.

usage: iscsi_proto.py --port P [--host H] [--target IQN] [--initiator IQN]
                      [--adm "ringstoradm -C SOCK"] [--tid N]
                      [--portal2 HOST:PORT,TAG] [--target2 IQN]
                      [--groups g1,g2,...]

Groups: login discovery ffp digests r2t vanish reinstate tmf chap
        chapdisc portals alua async xcopy.  chap/chapdisc/async need --adm
        (accounts are created, bound and removed again through the control
        socket); portals and alua need --portal2; xcopy needs LUNs 1 and 2 on the
        target and --target2, a second target with LUN 1 that the initiator
        may log in to.
Exit status: 0 all checks passed, 1 otherwise.
"""
import argparse
import hashlib
import os
import shlex
import socket
import struct
import subprocess
import sys
import time

HOST = "127.0.0.1"
PORT = 3260
TGT = "iqn.2026-11.io.ringstor:test"
INI = "iqn.2026-11.test:proto"
fails = 0
checks = 0


# ---------------------------------------------------------------- codec

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


_CRC_T = _crc32c_table()


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc = _CRC_T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def digest(data):
    """RFC 7143 11.1 / 13.1: CRC32C, little-endian on the wire."""
    return struct.pack("<I", crc32c(data) ^ 0xFFFFFFFF)


def pad4(data):
    return data + b"\0" * ((-len(data)) % 4)


def kv(pairs):
    """Text keys (RFC 7143 6.1): key=value NUL-terminated."""
    if isinstance(pairs, dict):
        pairs = pairs.items()
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


def parse_kv(b):
    out = {}
    for p in b.split(b"\0"):
        if b"=" in p:
            k, v = p.split(b"=", 1)
            out.setdefault(k.decode(), []).append(v.decode())
    return out


def bhs(opcode, flags=0, immediate=False, dlen=0, lun=0, itt=0, rest=b""):
    """A 48-byte BHS: opcode/flags, TotalAHSLength 0, DataSegmentLength,
    LUN, ITT and the opcode-specific bytes 20..47."""
    hdr = struct.pack(">BBBBB", opcode | (0x40 if immediate else 0), flags, 0, 0, 0)
    hdr += dlen.to_bytes(3, "big") + struct.pack(">Q", lun) + struct.pack(">I", itt)
    hdr += rest.ljust(28, b"\0")
    assert len(hdr) == 48
    return hdr


def login_pdu(keys, isid=b"\x80\x00\x00\x00\x00\x01", csg=1, nsg=3, transit=True, cmdsn=1,
              itt=1, tsih=0, statsn=0):
    flags = (0x80 if transit else 0) | (csg << 2) | nsg
    hdr = bytearray(bhs(0x03, flags, immediate=True, dlen=len(keys), itt=itt))
    hdr[8:14] = isid
    hdr[14:16] = struct.pack(">H", tsih)
    struct.pack_into(">HHII", hdr, 20, 0, 0, cmdsn, statsn)  # CID, rsvd, CmdSN, ExpStatSN
    return bytes(hdr) + pad4(keys)


def read10(lba, n):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, n, 0)


def write10(lba, n):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, n, 0)


def tur():
    return bytes(6)


# CHAP (RFC 1994 4.1 / RFC 7143 12.1.3): R = H(I || secret || C).
CHAP_HASH = {5: hashlib.md5, 6: hashlib.sha1, 7: hashlib.sha256, 8: hashlib.sha3_256}


def chap_response(alg, ident, secret, challenge):
    h = CHAP_HASH[alg]()
    h.update(bytes([ident]) + secret.encode() + challenge)
    return "0x" + h.hexdigest()


def chap_decode(v):
    assert v[:2] in ("0x", "0X"), v
    return bytes.fromhex(v[2:])


# ---------------------------------------------------------------- reporting

def check(name, cond, info=""):
    global fails, checks
    checks += 1
    if cond:
        print("ok   ", name)
    else:
        fails += 1
        print("FAIL ", name, info)
    return cond


def closed(sock, timeout=3.0):
    """True if the peer closed (or reset) the connection within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            x = sock.recv(4096)
            if not x:
                return True
    except (ConnectionError, OSError) as e:
        return not isinstance(e, socket.timeout)


# ---------------------------------------------------------------- connection

class Conn:
    """One connection / session (MaxConnections=1)."""

    def __init__(self, host=None, port=None, isid=b"\x80\x12\x34\x56\x00\x01"):
        self.s = socket.create_connection((host or HOST, port or PORT), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hd = self.dd = False
        self.cmdsn = 1
        self.statsn = 0
        self.itt = 1
        self.isid = isid
        self.tsih = 0
        self.login_kvs = {}

    def close(self):
        self.s.close()

    def send(self, hdr, data=b"", bad_hd=False, bad_dd=False):
        hdr = bytearray(hdr)
        hdr[5:8] = len(data).to_bytes(3, "big")
        pkt = bytes(hdr)
        if self.hd:
            d = digest(pkt)
            if bad_hd:
                d = bytes([d[0] ^ 1]) + d[1:]
            pkt += d
        if data:
            pdata = pad4(data)
            pkt += pdata
            if self.dd:
                d = digest(pdata)
                if bad_dd:
                    d = bytes([d[0] ^ 1]) + d[1:]
                pkt += d
        self.s.sendall(pkt)

    def recvn(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed")
            b += c
        return b

    def recv(self):
        h = self.recvn(48)
        ahs = self.recvn(h[4] * 4)
        if self.hd:
            d = self.recvn(4)
            assert d == digest(h + ahs), "bad header digest from target"
        dlen = int.from_bytes(h[5:8], "big")
        data = b""
        if dlen:
            pdata = self.recvn(dlen + (-dlen) % 4)
            if self.dd:
                d = self.recvn(4)
                assert d == digest(pdata), "bad data digest from target"
            data = pdata[:dlen]
        op = h[0] & 0x3F
        if op in (0x21, 0x22, 0x23, 0x24, 0x26, 0x32, 0x3F) or (op == 0x25 and h[1] & 1):
            self.statsn = struct.unpack(">I", h[24:28])[0] + 1
        return h, data

    # ---- login

    def login_req(self, flags, keys, vmin=0):
        b = bytearray(48)
        b[0] = 0x43
        b[1] = flags
        b[3] = vmin
        b[8:14] = self.isid
        b[14:16] = struct.pack(">H", self.tsih)
        b[16:20] = struct.pack(">I", self.itt)
        b[24:28] = struct.pack(">I", self.cmdsn)
        b[28:32] = struct.pack(">I", self.statsn)
        return b, kv(keys)

    def login_step(self, csg, nsg, transit, keys):
        """One Login Request/Response; returns (status, kvs, response BHS)."""
        b, d = self.login_req((0x80 if transit else 0) | (csg << 2) | (nsg if transit else 0), keys)
        self.send(b, d)
        h, data = self.recv()
        st = (h[36] << 8) | h[37]
        if st == 0:
            self.tsih = struct.unpack(">H", h[14:16])[0]
        kvs = parse_kv(data)
        for k, v in kvs.items():
            self.login_kvs.setdefault(k, []).extend(v)
        return st, kvs, h

    def identity(self, discovery=False, target=None):
        keys = [("InitiatorName", INI)]
        if discovery:
            keys.append(("SessionType", "Discovery"))
        else:
            keys += [("TargetName", target or TGT), ("SessionType", "Normal")]
        return keys

    def op_keys(self, extra=()):
        return [("HeaderDigest", "CRC32C" if "hd" in extra else "None"),
                ("DataDigest", "CRC32C" if "dd" in extra else "None"),
                ("MaxRecvDataSegmentLength", "512" if "small" in extra else "262144"),
                ("InitialR2T", "Yes" if "r2t" in extra else "No"),
                ("ImmediateData", "No" if "r2t" in extra else "Yes"),
                ("MaxBurstLength", "65536"), ("FirstBurstLength", "65536")]

    def login(self, keys=None, discovery=False, extra=(), target=None):
        """Security stage with AuthMethod=None, then the operational stage."""
        if keys is None:
            keys = self.identity(discovery, target) + [("AuthMethod", "None")]
        st, kvs, h = self.login_step(0, 1, True, keys)
        if st != 0:
            return st, kvs
        return self.login_operational(extra)

    def login_operational(self, extra=()):
        st, kvs, h = self.login_step(1, 3, True, self.op_keys(extra))
        if st == 0:
            self.hd = "hd" in extra
            self.dd = "dd" in extra
            self.ffp = bool(h[1] & 0x80) and (h[1] & 3) == 3
        return st, kvs

    def login_chap(self, user, secret, algs="5", discovery=False, mutual=None, target=None,
                   tamper=None, extra=()):
        """CHAP in the security stage (RFC 7143 12.1.3).  mutual=(user, secret)
        asks the target to authenticate itself.  tamper: 'reflect' (send the
        target's own challenge back), 'no_r' (omit CHAP_R).
        Returns (status, detail) with detail one of the failure stage names
        or the final kvs."""
        keys = self.identity(discovery, target) + [("AuthMethod", "CHAP,None")]
        st, kvs, h = self.login_step(0, 1, True, keys)
        if st:
            return st, "authmethod"
        if kvs.get("AuthMethod") != ["CHAP"] or h[1] & 0x80:
            return -1, ("AuthMethod answer", kvs, h[1])
        st, kvs, h = self.login_step(0, 1, False, [("CHAP_A", algs)])
        if st:
            return st, "chap_a"
        alg = int(kvs["CHAP_A"][0])
        ident = int(kvs["CHAP_I"][0])
        chal = chap_decode(kvs["CHAP_C"][0])
        self.chap_alg, self.chap_challenge = alg, chal
        resp = [("CHAP_N", user)]
        if tamper != "no_r":
            resp.append(("CHAP_R", chap_response(alg, ident, secret, chal)))
        my_id, my_chal = None, None
        if mutual:
            my_id = 77
            my_chal = chal if tamper == "reflect" else os.urandom(24)
            resp += [("CHAP_I", str(my_id)), ("CHAP_C", "0x" + my_chal.hex())]
        st, kvs, h = self.login_step(0, 1, True, resp)
        if st:
            return st, "chap_r"
        if not (h[1] & 0x80):
            return -1, ("no transit after CHAP_R", kvs)
        if mutual:
            want = chap_response(alg, my_id, mutual[1], my_chal)
            if kvs.get("CHAP_N") != [mutual[0]] or kvs.get("CHAP_R", [""])[0].lower() != want:
                return -1, ("mutual CHAP answer wrong", kvs)
        return self.login_operational(extra)

    # ---- full feature phase

    def scsi(self, cdb, edtl=0, read=False, write=False, data=b"", imm=False, cmdsn=None,
             itt=None, final=True, lun=1):
        b = bytearray(48)
        b[0] = 0x01 | (0x40 if imm else 0)
        b[1] = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 1
        b[8:16] = struct.pack(">Q", lun << 48)
        it = itt if itt is not None else self.itt
        self.itt += 1
        b[16:20] = struct.pack(">I", it)
        b[20:24] = struct.pack(">I", edtl)
        sn = self.cmdsn if cmdsn is None else cmdsn
        if cmdsn is None and not imm:
            self.cmdsn += 1
        b[24:28] = struct.pack(">I", sn)
        b[28:32] = struct.pack(">I", self.statsn)
        b[32:32 + len(cdb)] = cdb
        return it, b, data

    def dout(self, itt, ttt, datasn, off, data, final):
        b = bytearray(48)
        b[0] = 0x05
        b[1] = 0x80 if final else 0
        b[8:16] = struct.pack(">Q", 1 << 48)
        b[16:20] = struct.pack(">I", itt)
        b[20:24] = struct.pack(">I", ttt)
        b[28:32] = struct.pack(">I", self.statsn)
        b[36:40] = struct.pack(">I", datasn)
        b[40:44] = struct.pack(">I", off)
        self.send(b, data)

    def response(self):
        """Collect Data-In until status: (status, data, bhs, sense)."""
        buf = b""
        while True:
            h, d = self.recv()
            op = h[0] & 0x3F
            if op == 0x25:
                buf += d
                if h[1] & 1:
                    return h[3], buf, h, b""
            elif op == 0x21:
                return h[3], buf, h, d
            else:
                return "op%02x" % op, d, h, b""

    def run(self, cdb, **kw):
        it, b, d = self.scsi(cdb, **kw)
        self.send(b, d)
        return self.response()

    def drain_ua(self):
        """TEST UNIT READY until GOOD (power-on / reset unit attentions)."""
        s = None
        for _ in range(4):
            s, _, _, _ = self.run(tur())
            if s == 0:
                break
        return s

    def text(self, keys, itt=77, ttt=0xFFFFFFFF):
        b = bytearray(48)
        b[0] = 0x44
        b[1] = 0x80
        b[16:20] = struct.pack(">I", itt)
        b[20:24] = struct.pack(">I", ttt)
        b[24:28] = struct.pack(">I", self.cmdsn)
        b[28:32] = struct.pack(">I", self.statsn)
        self.send(b, kv(keys) if keys else b"")

    def sendtargets(self, value="All", limit=None):
        """SendTargets with continuation (RFC 7143 11.11 / App. C)."""
        self.text([("SendTargets", value)])
        text, n = b"", 0
        while True:
            h, d = self.recv()
            if h[0] & 0x3F != 0x24:
                return None, n
            n += 1
            text += d
            if limit is not None and len(d) > limit:
                check("continued text fits MaxRecvDataSegmentLength", False, len(d))
            if not (h[1] & 0x40):
                return parse_kv(text), n
            self.text(None, ttt=struct.unpack(">I", h[20:24])[0])

    def tmf(self, fn, rtt=0xFFFFFFFF, ref=0, lun=1, itt=None):
        b = bytearray(48)
        b[0] = 0x42
        b[1] = 0x80 | fn
        b[8:16] = struct.pack(">Q", lun << 48)
        b[16:20] = struct.pack(">I", itt if itt is not None else 0x7000 + fn)
        b[20:24] = struct.pack(">I", rtt)
        b[24:28] = struct.pack(">I", self.cmdsn)
        b[28:32] = struct.pack(">I", self.statsn)
        b[32:36] = struct.pack(">I", ref)
        self.send(b)
        while True:
            h, _ = self.recv()
            if h[0] & 0x3F == 0x22:
                return h[2]

    def logout(self, reason=0, itt=0x8888):
        b = bytearray(48)
        b[0] = 0x46
        b[1] = 0x80 | reason
        b[16:20] = struct.pack(">I", itt)
        b[24:28] = struct.pack(">I", self.cmdsn)
        b[28:32] = struct.pack(">I", self.statsn)
        self.send(b)
        return self.recv()


# ---------------------------------------------------------------- groups

def g_login():
    c = Conn()
    st, _ = c.login([("InitiatorName", INI), ("TargetName", TGT), ("AuthMethod", "CHAP")])
    check("AuthMethod=CHAP only, no account bound -> 0x0201", st == 0x0201, hex(st))
    c = Conn()
    st, _ = c.login([("TargetName", TGT), ("AuthMethod", "None")])
    check("login without InitiatorName -> 0x0207", st == 0x0207, hex(st))
    c = Conn()
    st, _ = c.login([("InitiatorName", INI), ("TargetName", TGT + "x"), ("AuthMethod", "None")])
    check("login to an unknown target -> 0x0203", st == 0x0203, hex(st))
    c = Conn()
    st, _ = c.login([("InitiatorName", INI), ("AuthMethod", "None")])
    check("normal login without TargetName -> 0x0207", st == 0x0207, hex(st))
    c = Conn()
    b, d = c.login_req(0x81, [("InitiatorName", INI), ("TargetName", TGT)], vmin=1)
    c.send(b, d)
    h, _ = c.recv()
    check("login with VersionMin 1 -> 0x0205", (h[36] << 8 | h[37]) == 0x0205, h[36:38].hex())
    check("connection closed after a failed login", closed(c.s))
    # C bit: keys split across two PDUs, security stage skipped.
    c = Conn()
    text = kv([("InitiatorName", INI), ("TargetName", TGT), ("SessionType", "Normal")])
    b, _ = c.login_req(0x40 | (1 << 2), [])
    c.send(b, text[:10])
    h, _ = c.recv()
    ok1 = h[0] & 0x3F == 0x23 and h[36] == 0 and not (h[1] & 0x80)
    b, _ = c.login_req(0x80 | (1 << 2) | 3, [])
    c.send(b, text[10:] + kv([("MaxRecvDataSegmentLength", "65536")]))
    h, d = c.recv()
    kvs = parse_kv(d)
    check("login with C bit, security stage skipped", ok1 and h[36] == 0 and h[1] & 0x80 and
          struct.unpack(">H", h[14:16])[0] != 0 and "TargetPortalGroupTag" in kvs,
          (h[36:38].hex(), kvs))
    # C and T together are an initiator error (RFC 7143 11.12.2).
    c = Conn()
    b, d = c.login_req(0xC0 | (1 << 2) | 3, c.identity())
    c.send(b, d)
    h, _ = c.recv()
    check("login with C and T -> 0x0200", (h[36] << 8 | h[37]) == 0x0200, h[36:38].hex())
    # A redeclared key is an initiator error (RFC 7143 6.1).
    c = Conn()
    st, _ = c.login(c.identity() + [("AuthMethod", "None"), ("AuthMethod", "None")])
    check("AuthMethod twice -> login refused", st >= 0x0200, hex(st))
    # Security then straight to full feature phase (NSG=3 from CSG 0).
    c = Conn()
    st, kvs, h = c.login_step(0, 3, True, c.identity() + [("AuthMethod", "None")])
    check("security stage -> full feature phase directly", st == 0 and h[1] & 0x80 and
          (h[1] & 3) == 3 and c.tsih != 0, (hex(st), h[1]))
    c.close()


def g_discovery():
    c = Conn()
    st, _ = c.login(discovery=True, extra=("small",))
    check("discovery login", st == 0, hex(st))
    kvs, n = c.sendtargets("All", limit=512)
    check("SendTargets=All lists the target (%d PDUs)" % n,
          kvs and TGT in kvs.get("TargetName", []) and kvs.get("TargetAddress"), kvs)
    it, b, d = c.scsi(tur(), imm=True)
    c.send(b, d)
    h, d = c.recv()
    check("SCSI command in a discovery session -> Reject", h[0] & 0x3F == 0x3F, h[:4].hex())
    c.close()
    c = Conn()
    st, _ = c.login(discovery=True)
    kvs, n = c.sendtargets(TGT)
    check("SendTargets=<name> lists only that target",
          kvs and kvs.get("TargetName") == [TGT], kvs)
    kvs, n = c.sendtargets("iqn.2026-11.nowhere:x")
    check("SendTargets of an unknown name is empty", kvs == {}, kvs)
    h, _ = c.logout()
    check("discovery logout", h[0] & 0x3F == 0x26 and h[2] == 0, h[:4].hex())
    c.close()


def g_ffp(extra=()):
    c = Conn()
    st, kvs = c.login(extra=extra)
    check("normal login %s" % (extra,), st == 0, (hex(st), kvs))
    if st:
        return
    s = c.drain_ua()
    check("TEST UNIT READY good", s == 0, s)
    # NOP-Out ping with data is echoed (RFC 7143 11.19.5).
    b = bytearray(48)
    b[0] = 0x40
    b[1] = 0x80
    b[16:20] = struct.pack(">I", 0x1234)
    b[20:24] = struct.pack(">I", 0xFFFFFFFF)
    b[24:28] = struct.pack(">I", c.cmdsn)
    c.send(b, b"hello ping")
    h, d = c.recv()
    check("NOP-Out echoed", h[0] & 0x3F == 0x20 and d == b"hello ping" and
          struct.unpack(">I", h[16:20])[0] == 0x1234, (h[:4].hex(), d))
    # Write 200 KiB (immediate + unsolicited + R2T), read it back.
    payload = bytes((i * 7) & 0xFF for i in range(200 * 1024))
    nb = len(payload) // 512
    imm_ok = "r2t" not in extra
    first = min(len(payload), 65536)
    imm = payload[:min(first, 512 if "small" in extra else 262144)] if imm_ok else b""
    it, b, _ = c.scsi(write10(100, nb), edtl=len(payload), write=True,
                      final=not imm_ok or len(imm) >= first)
    c.send(b, imm)
    sent, dsn = len(imm), 0
    mrdsl = 8192 if "small" in extra else 65536
    if imm_ok:
        while sent < first:
            n = min(mrdsl, first - sent)
            c.dout(it, 0xFFFFFFFF, dsn, sent, payload[sent:sent + n], sent + n == first)
            dsn += 1
            sent += n
    r2ts = 0
    while True:
        h, d = c.recv()
        op = h[0] & 0x3F
        if op != 0x31:
            break
        r2ts += 1
        ttt, r2tsn, off, ln = struct.unpack(">IIII", h[20:24] + h[36:48])
        ds, o = 0, off
        while o < off + ln:
            n = min(mrdsl, off + ln - o)
            c.dout(it, ttt, ds, o, payload[o:o + n], o + n == off + ln)
            ds += 1
            o += n
    check("write 200 KiB (%d R2Ts) good" % r2ts, op == 0x21 and h[3] == 0, (op, h[3]))
    s, data, h, _ = c.run(read10(100, nb), edtl=len(payload), read=True)
    check("read 200 KiB back", s == 0 and data == payload, (s, len(data)))
    # Larger than we accept: CHECK CONDITION, no hang.
    it, b, d = c.scsi(write10(0, 1), edtl=64 << 20, write=True, final="r2t" in extra)
    c.send(b, b"\0" * 512 if imm_ok else b"")
    s, _, h, sense = c.response()
    check("EDTL 64 MiB write -> CHECK CONDITION 24/00", s == 2 and sense[2 + 12] == 0x24,
          (s, sense.hex()))
    if imm_ok:
        c.dout(it, 0xFFFFFFFF, 1, 512, b"\0" * 512, False)   # stray, dropped silently
    s, _, _, _ = c.run(tur())
    check("connection alive after a stray Data-Out", s == 0, s)
    # CmdSN out of order is delivered in order (RFC 7143 4.2.2.1).
    sn = c.cmdsn
    c.cmdsn += 2
    itA, bA, dA = c.scsi(tur(), cmdsn=sn + 1)
    itB, bB, dB = c.scsi(tur(), cmdsn=sn)
    c.send(bA, dA)
    c.send(bB, dB)
    _, _, h1, _ = c.response()
    _, _, h2, _ = c.response()
    order = [struct.unpack(">I", h1[16:20])[0], struct.unpack(">I", h2[16:20])[0]]
    check("out-of-order CmdSN delivered in order", order == [itB, itA], order)
    # A CmdSN far outside the window is dropped silently.
    it, b, d = c.scsi(tur(), cmdsn=c.cmdsn + 100000)
    c.send(b, d)
    # ABORT TASK of a command not received yet (RefCmdSN = ExpCmdSN):
    # Function Complete and its CmdSN is consumed (RFC 7143 11.5.1).
    b = bytearray(48)
    b[0] = 0x42
    b[1] = 0x80 | 1
    b[8:16] = struct.pack(">Q", 1 << 48)
    b[16:20] = struct.pack(">I", 0x5555)
    b[20:24] = struct.pack(">I", 0x4444)
    b[24:28] = struct.pack(">I", c.cmdsn)
    b[32:36] = struct.pack(">I", c.cmdsn)
    c.send(b)
    h, _ = c.recv()
    check("ABORT TASK of a not-yet-received CmdSN -> complete",
          h[0] & 0x3F == 0x22 and h[2] == 0, h[:4].hex())
    c.cmdsn += 1
    it, b, d = c.scsi(tur(), cmdsn=c.cmdsn - 1)     # the late copy is ignored
    c.send(b, d)
    it, b, d = c.scsi(tur())
    c.send(b, d)
    s, _, h, _ = c.response()
    check("late aborted command ignored, next answered",
          struct.unpack(">I", h[16:20])[0] == it and s == 0)
    for fn, want in ((8, 4), (3, 5), (1, 1)):
        r = c.tmf(fn, rtt=0x99999, ref=(c.cmdsn - 50) & 0xFFFFFFFF)
        check("TMF function %d -> response %d" % (fn, want), r == want, r)
    b = bytearray(48)
    b[0] = 0x10
    b[1] = 0x80
    c.send(b)
    h, d = c.recv()
    check("SNACK rejected (ERL 0)", h[0] & 0x3F == 0x3F and d[:1] == b"\x10", h[:4].hex())
    b = bytearray(48)
    b[0] = 0x1C
    c.send(b)
    h, d = c.recv()
    check("unknown opcode rejected (reason 0x05)", h[0] & 0x3F == 0x3F and h[2] == 5, h[:4].hex())
    if c.dd:
        it, b, _ = c.scsi(write10(0, 1), edtl=512, write=True)
        c.send(b, b"x" * 512, bad_dd=True)
        h, d = c.recv()
        check("data digest error -> Reject 0x02", h[0] & 0x3F == 0x3F and h[2] == 2, h[:4].hex())
        s, _, _, _ = c.run(tur())
        check("connection alive after a data digest error", s == 0, s)
    c.text([("SendTargets", ""), ("X-foo", "bar")], itt=0x7777)
    h, d = c.recv()
    kvs = parse_kv(d)
    check("SendTargets= in a normal session names this target",
          kvs.get("TargetName") == [TGT] and kvs.get("X-foo") == ["NotUnderstood"], kvs)
    h, d = c.logout()
    check("logout response", h[0] & 0x3F == 0x26 and h[2] == 0, h[:4].hex())
    check("connection closed after logout", closed(c.s))


def g_digests():
    g_ffp(("hd", "dd", "small"))
    c = Conn()
    c.login(extra=("hd", "dd"))
    it, b, d = c.scsi(tur())
    c.send(b, d, bad_hd=True)
    check("header digest error drops the connection", closed(c.s))


def g_r2t():
    g_ffp(("r2t", "small"))
    # F=1 with only part of the data as immediate data: the rest by R2T.
    c = Conn()
    c.login()
    c.drain_ua()
    payload = bytes(range(256)) * 64
    it, b, _ = c.scsi(write10(10, 32), edtl=len(payload), write=True, final=True)
    c.send(b, payload[:4096])
    h, d = c.recv()
    ttt, r2tsn, off, ln = struct.unpack(">IIII", h[20:24] + h[36:48])
    check("F=1 with partial immediate data -> R2T for the rest",
          h[0] & 0x3F == 0x31 and off == 4096 and ln == len(payload) - 4096,
          (h[0] & 0x3F, off, ln))
    c.dout(it, ttt, 0, off, payload[off:], True)
    s, _, h, _ = c.response()
    check("write completes", s == 0, s)
    s, data, h, _ = c.run(read10(10, 32), edtl=len(payload), read=True)
    check("data read back", s == 0 and data == payload)
    # A Data-Out with a wrong offset is rejected, the connection survives.
    it, b, _ = c.scsi(write10(10, 8), edtl=4096, write=True, final=True)
    c.send(b, b"")
    h, d = c.recv()
    ttt = struct.unpack(">I", h[20:24])[0]
    c.dout(it, ttt, 0, 1 << 20, b"z" * 512, True)
    h, d = c.recv()
    check("Data-Out beyond the burst -> Reject", h[0] & 0x3F == 0x3F, h[:4].hex())
    c.close()


def g_vanish():
    c = Conn()
    c.login(extra=("r2t",))
    it, b, d = c.scsi(write10(0, 2048), edtl=1 << 20, write=True)
    c.send(b, d)
    c.recv()  # R2T
    c.dout(it, 0xFFFFFFFF, 0, 0, b"x" * 100, False)
    c.close()
    c = Conn()
    st, _ = c.login()
    check("target alive after a peer vanished mid-write", st == 0, hex(st))
    c.close()


def g_reinstate():
    a = Conn()
    a.login()
    b = Conn(isid=a.isid)
    st, _ = b.login()
    check("session reinstatement: new login succeeds", st == 0, hex(st))
    check("session reinstatement closes the old session", closed(a.s))
    # Connection reinstatement with an unknown TSIH -> 0x020a.
    c = Conn(isid=b"\x80\x00\x00\x00\x00\x42")
    c.tsih = 0x7777
    st, _ = c.login()
    check("login with an unknown TSIH -> 0x020a", st == 0x020A, hex(st))
    b.close()


def g_tmf():
    a = Conn()
    a.login()
    a.drain_ua()
    b_ = Conn(isid=b"\x80\x00\x00\x00\x00\x09")
    b_.login()
    b_.drain_ua()
    it, b, d = a.scsi(tur(), imm=True)
    a.send(b, d)
    s, _, h, _ = a.response()
    exp = struct.unpack(">I", h[28:32])[0]
    check("immediate TUR good, ExpCmdSN unchanged", s == 0 and exp == a.cmdsn, (s, exp, a.cmdsn))
    s, _, h, sense = a.run(read10(0, 1), edtl=512, read=True, write=True)
    check("bidirectional command -> CHECK CONDITION", s == 2, s)
    # A held command (CmdSN gap), then LUN RESET: it is aborted silently.
    sn = a.cmdsn
    it1, b1, d1 = a.scsi(read10(0, 1), edtl=512, read=True, cmdsn=sn + 1)
    a.send(b1, d1)
    r = a.tmf(5)
    check("LUN RESET -> function complete", r == 0, r)
    a.cmdsn = sn + 2
    it2, b2, d2 = a.scsi(tur(), cmdsn=sn)
    a.send(b2, d2)
    s, _, h, sense = a.response()
    itr = struct.unpack(">I", h[16:20])[0]
    check("gap filler answered, aborted held command silent", itr == it2, (hex(itr), hex(it2)))
    check("issuing nexus gets UA 29/03 after LUN RESET (SAM-5 6.3.3)",
          s == 2 and sense[2 + 12] == 0x29 and sense[2 + 13] == 3, (s, sense.hex()))
    s, _, h, sense = a.run(tur())
    check("UA reported once", s == 0, (s, sense.hex()))
    s, _, h, sense = b_.run(tur())
    check("other nexus gets UA 29/03 after LUN RESET",
          s == 2 and sense[2 + 2] & 0xF == 6 and sense[2 + 12] == 0x29 and sense[2 + 13] == 3,
          (s, sense.hex()))
    check("ABORT TASK SET -> complete", a.tmf(2) == 0)
    check("CLEAR TASK SET -> complete", a.tmf(4) == 0)
    s, _, h, sense = b_.run(tur())
    check("other nexus gets UA 2F/00 after CLEAR TASK SET", s == 2 and sense[2 + 12] == 0x2F,
          (s, sense.hex()))
    check("LUN RESET on a missing LUN -> 2", a.tmf(5, lun=7) == 2)
    check("TARGET WARM RESET -> complete", a.tmf(6) == 0)
    b_.drain_ua()
    a.drain_ua()
    check("TARGET COLD RESET -> complete", a.tmf(7) == 0)
    check("cold reset drops the issuing connection", closed(a.s))
    check("cold reset drops the other sessions of the target", closed(b_.s))
    c = Conn()
    st, _ = c.login()
    check("login after a cold reset", st == 0, hex(st))
    c.close()


# ---- CHAP (needs --adm)

ADM = None
TID = 1


def adm(*args, ok=True):
    r = subprocess.run(ADM + ["--lld", "iscsi"] + list(args), capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise RuntimeError("ringstoradm %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def account(user, password):
    adm("--mode", "account", "--op", "new", "--user", user, "--password", password)


def bind(tid, user, outgoing=False, unbind=False):
    a = ["--mode", "account", "--op", "unbind" if unbind else "bind", "--tid", str(tid),
         "--user", user]
    if outgoing:
        a.append("--outgoing")
    adm(*a)


def g_chap():
    account("alice", "alice-secret-1")
    account("mallory", "mallory-secret")
    account("tgtuser", "target-secret-9")
    bind(TID, "alice")
    try:
        for alg in (5, 6, 7, 8):
            c = Conn()
            st, d = c.login_chap("alice", "alice-secret-1", algs=str(alg))
            check("CHAP with CHAP_A=%d" % alg, st == 0 and c.chap_alg == alg, (hex(st), d))
            if st == 0:
                check("CHAP_A=%d: challenge of %d bytes, session works" % (alg, len(c.chap_challenge)),
                      len(c.chap_challenge) >= 16 and c.drain_ua() == 0)
            c.close()
        c = Conn()
        st, d = c.login_chap("alice", "alice-secret-1", algs="99,7,5")
        check("CHAP_A list: first supported algorithm picked (7)", st == 0 and c.chap_alg == 7,
              (hex(st), d))
        c.close()
        c = Conn()
        st, d = c.login_chap("alice", "wrong-password")
        check("CHAP wrong secret -> 0x0201", st == 0x0201 and d == "chap_r", (hex(st), d))
        check("connection closed after authentication failure", closed(c.s))
        c = Conn()
        st, d = c.login_chap("nobody", "alice-secret-1")
        check("CHAP unknown user -> 0x0201", st == 0x0201, (hex(st), d))
        c = Conn()
        st, d = c.login_chap("mallory", "mallory-secret")
        check("CHAP user not bound to this target -> 0x0201", st == 0x0201, (hex(st), d))
        c = Conn()
        st, d = c.login_chap("alice", "alice-secret-1", tamper="no_r")
        check("CHAP_N without CHAP_R -> 0x0201", st == 0x0201, (hex(st), d))
        c = Conn()
        st, d = c.login_chap("alice", "alice-secret-1", algs="3,99")
        check("CHAP_A with no supported algorithm -> 0x0201", st == 0x0201, (hex(st), d))
        c = Conn()
        st, _ = c.login()
        check("AuthMethod=None when CHAP is required -> 0x0201", st == 0x0201, hex(st))
        c = Conn()
        st, _ = c.login(c.identity())   # security stage without AuthMethod
        check("security stage left without authenticating -> 0x0201", st == 0x0201, hex(st))
        c = Conn()
        st, kvs, h = c.login_step(1, 3, True, c.identity() + c.op_keys())
        check("security stage skipped when CHAP is required -> 0x0201", st == 0x0201, hex(st))
        c = Conn()
        st, kvs, h = c.login_step(0, 1, True, c.identity() + [("AuthMethod", "CHAP,None")])
        st2, kvs2, h2 = c.login_step(0, 1, True, [("CHAP_N", "alice"), ("CHAP_R", "0x00")])
        check("CHAP_R before CHAP_A -> 0x0201", st == 0 and st2 == 0x0201, (hex(st), hex(st2)))
        # Discovery is not protected by the target's accounts.
        c = Conn()
        st, _ = c.login(discovery=True)
        check("discovery without CHAP while only the target requires it", st == 0, hex(st))
        c.close()
        # Mutual CHAP.
        c = Conn()
        st, d = c.login_chap("alice", "alice-secret-1", mutual=("tgtuser", "target-secret-9"))
        check("mutual CHAP without an outgoing account -> 0x0201", st == 0x0201, (hex(st), d))
        bind(TID, "tgtuser", outgoing=True)
        for alg in (5, 7):
            c = Conn()
            st, d = c.login_chap("alice", "alice-secret-1", algs=str(alg),
                                 mutual=("tgtuser", "target-secret-9"))
            check("mutual CHAP (CHAP_A=%d)" % alg, st == 0, (hex(st), d))
            c.close()
        c = Conn()
        st, d = c.login_chap("alice", "alice-secret-1", mutual=("tgtuser", "target-secret-9"),
                             tamper="reflect")
        check("mutual CHAP reflecting the target's challenge -> 0x0201", st == 0x0201,
              (hex(st), d))
        c = Conn()
        st, d = c.login_chap("alice", "alice-secret-1", mutual=("tgtuser", "wrong"))
        check("mutual CHAP: initiator detects a wrong target secret", st == -1, (hex(st), d))
        c.close()
        bind(TID, "tgtuser", outgoing=True, unbind=True)
    finally:
        adm("--mode", "account", "--op", "unbind", "--tid", str(TID), "--user", "alice", ok=False)
        adm("--mode", "account", "--op", "unbind", "--tid", str(TID), "--user", "tgtuser",
            "--outgoing", ok=False)
        for u in ("alice", "mallory", "tgtuser"):
            adm("--mode", "account", "--op", "delete", "--user", u, ok=False)
    c = Conn()
    st, _ = c.login()
    check("AuthMethod=None works again once the account is unbound", st == 0, hex(st))
    c.close()


def g_chapdisc():
    account("disco", "disco-secret-22")
    bind(0, "disco")
    try:
        c = Conn()
        st, _ = c.login(discovery=True)
        check("discovery with AuthMethod=None when discovery CHAP is bound -> 0x0201",
              st == 0x0201, hex(st))
        c = Conn()
        st, d = c.login_chap("disco", "disco-secret-22", discovery=True)
        check("discovery CHAP login", st == 0, (hex(st), d))
        if st == 0:
            kvs, n = c.sendtargets("All")
            check("SendTargets after discovery CHAP", kvs and TGT in kvs.get("TargetName", []),
                  kvs)
        c.close()
        c = Conn()
        st, d = c.login_chap("disco", "nope", discovery=True)
        check("discovery CHAP wrong secret -> 0x0201", st == 0x0201, (hex(st), d))
        c = Conn()
        st, _ = c.login()
        check("normal session unaffected by discovery CHAP", st == 0, hex(st))
        c.close()
    finally:
        adm("--mode", "account", "--op", "unbind", "--tid", "0", "--user", "disco", ok=False)
        adm("--mode", "account", "--op", "delete", "--user", "disco", ok=False)


# ---- portals (needs --portal2 HOST:PORT,TAG)

PORTAL2 = None


def g_portals():
    host2, rest = PORTAL2.rsplit(":", 1)
    port2, tag2 = rest.split(",")
    port2, tag2 = int(port2), int(tag2)
    c = Conn()
    st, kvs = c.login()
    tag1 = c.login_kvs.get("TargetPortalGroupTag", ["?"])[0]
    check("login through portal 1", st == 0, hex(st))
    c.close()
    c = Conn(host2, port2, isid=b"\x80\x00\x00\x00\x00\x02")
    st, kvs = c.login()
    check("login through portal 2 returns its tag %d" % tag2,
          st == 0 and c.login_kvs.get("TargetPortalGroupTag") == [str(tag2)],
          (hex(st), c.login_kvs))
    check("the two portals have different tags", tag1 != str(tag2), tag1)
    c.close()
    c = Conn(host2, port2)
    c.login(discovery=True)
    kvs, n = c.sendtargets("All")
    addrs = kvs.get("TargetAddress", []) if kvs else []
    check("SendTargets lists every portal with its tag",
          "%s:%d,%d" % (host2, port2, tag2) in addrs and any(a.endswith("," + tag1) for a in addrs),
          addrs)
    c.close()


def rtpg_groups(c):
    """REPORT TARGET PORT GROUPS (SPC-4 6.36): {group id: [relative port ids]}."""
    cdb = bytes([0xA3, 0x0A, 0, 0, 0, 0]) + struct.pack(">I", 4096) + bytes(2)
    s, data, _, _ = c.run(cdb, edtl=4096, read=True)
    if s != 0 or len(data) < 4:
        return None
    end = min(len(data), 4 + struct.unpack(">I", data[0:4])[0])
    groups, off = {}, 4
    while off + 8 <= end:
        gid, cnt = struct.unpack(">H", data[off + 2:off + 4])[0], data[off + 7]
        ports = [struct.unpack(">H", data[off + 8 + 4 * i + 2:off + 8 + 4 * i + 4])[0]
                 for i in range(cnt) if off + 8 + 4 * i + 4 <= end]
        groups[gid] = ports
        off += 8 + 4 * cnt
    return groups


def g_alua():
    """Every portal group is a target port group of the LU (ALUA, SPC-4 5.15),
    seen the same way through either portal."""
    host2, rest = PORTAL2.rsplit(":", 1)
    port2, tag2 = rest.split(",")
    port2, tag2 = int(port2), int(tag2)
    seen = []
    for host, port, isid in ((HOST, PORT, b"\x80\x00\x00\x00\x00\x41"),
                             (host2, port2, b"\x80\x00\x00\x00\x00\x42")):
        c = Conn(host, port, isid=isid)
        st, _ = c.login()
        if not check("login through %s:%d" % (host, port), st == 0, hex(st)):
            return
        tag = int(c.login_kvs.get("TargetPortalGroupTag", ["0"])[0])
        c.drain_ua()
        g = rtpg_groups(c)
        check("REPORT TARGET PORT GROUPS through tag %d lists both portal groups" % tag,
              g is not None and tag in g and tag2 in g and len(g) >= 2, g)
        check("each group holds its own relative target port (tag %d)" % tag,
              g is not None and all(v == [k] for k, v in g.items()), g)
        seen.append(g)
        c.close()
    check("both paths report the same groups", len(seen) == 2 and seen[0] == seen[1], seen)


# ---- EXTENDED COPY between LUNs (needs LUN 2 and --target2)

TARGET2 = None


def inquiry_naa(c, lun):
    """The NAA designator (binary, LU association) of VPD page 0x83."""
    s, data, _, _ = c.run(bytes([0x12, 0x01, 0x83, 0x01, 0x00, 0x00]), edtl=256, read=True,
                          lun=lun)
    if s != 0 or len(data) < 4:
        return None
    end, off = min(len(data), 4 + struct.unpack(">H", data[2:4])[0]), 4
    while off + 4 <= end:
        cs, at, ln = data[off] & 0x0F, data[off + 1], data[off + 3]
        if cs == 1 and (at & 0x30) == 0 and (at & 0x0F) == 3 and ln == 16:
            return data[off + 4:off + 20]
        off += 4 + ln
    return None


def xcopy_list(targets, segments, list_id=0x11, usage=0):
    """EXTENDED COPY (LID1) parameter list (SPC-4 6.4.3, 6.4.5, 6.4.6.5):
    targets = [(naa, block_size)] as Identification Descriptor target
    descriptors (0xE4), segments = [(src index, dst index, blocks, src lba,
    dst lba)] as block->block segment descriptors (0x02)."""
    td = b""
    for naa, bs in targets:
        d = bytearray(32)
        d[0] = 0xE4
        d[4] = 0x01                       # code set: binary
        d[5] = 0x03                       # association LU, designator type NAA
        d[7] = 16
        d[8:24] = naa
        d[29:32] = bs.to_bytes(3, "big")  # DISK BLOCK LENGTH
        td += bytes(d)
    sd = b""
    for si, di, nb, slba, dlba in segments:
        sd += struct.pack(">BBHHHHHQQ", 0x02, 0, 0x18, si, di, 0, nb, slba, dlba)
    hdr = struct.pack(">BBHIII", list_id, (usage & 3) << 3, len(td), 0, len(sd), 0)
    return hdr + td + sd


def xcopy(c, plist, lun=1):
    cdb = bytes([0x83, 0x00] + [0] * 8) + struct.pack(">I", len(plist)) + bytes(2)
    return c.run(cdb, edtl=len(plist), write=True, data=plist, lun=lun)


def sense_of(sense_seg):
    """(key, asc, ascq) from a SCSI Response data segment (2-byte length prefix)."""
    sn = sense_seg[2:]
    return (sn[2] & 0x0F, sn[12], sn[13]) if len(sn) >= 14 else None


def g_xcopy():
    bs = 512
    c = Conn(isid=b"\x80\x00\x00\x00\x00\x51")
    st, _ = c.login()
    if not check("login for the EXTENDED COPY test", st == 0, hex(st)):
        return
    for lun in (1, 2):
        for _ in range(4):
            if c.run(tur(), lun=lun)[0] == 0:
                break
    naa1, naa2 = inquiry_naa(c, 1), inquiry_naa(c, 2)
    check("LUNs 1 and 2 report NAA designators", naa1 and naa2 and naa1 != naa2, (naa1, naa2))
    c2 = Conn(isid=b"\x80\x00\x00\x00\x00\x52")
    st, _ = c2.login(target=TARGET2)
    check("login to the second target", st == 0, hex(st))
    c2.drain_ua()
    naa_other = inquiry_naa(c2, 1)
    check("the other target's LUN reports an NAA", naa_other is not None)
    other_before = c2.run(read10(0, 8), edtl=8 * bs, read=True)[1]
    if not (naa1 and naa2 and naa_other):
        return

    # Distinct patterns: LUN 1 LBA 0..7, LUN 2 LBA 40..47; LUN 2 LBA 100..107
    # and LUN 1 LBA 60..67 are the destinations.
    pat1 = bytes((i * 13 + 1) & 0xFF for i in range(8 * bs))
    pat2 = bytes((i * 29 + 7) & 0xFF for i in range(8 * bs))
    zero = bytes(8 * bs)
    for lun, lba, data in ((1, 0, pat1), (2, 40, pat2), (2, 100, zero), (1, 60, zero)):
        s = c.run(write10(lba, 8), edtl=len(data), write=True, data=data, lun=lun)[0]
        check("write LUN %d LBA %d" % (lun, lba), s == 0, s)

    # One EXTENDED COPY, two segments in opposite directions between two LUNs
    # of the same target, addressed to LUN 1.
    plist = xcopy_list([(naa1, bs), (naa2, bs)],
                       [(0, 1, 8, 0, 100), (1, 0, 8, 40, 60)], list_id=0x11)
    s, _, _, sn = xcopy(c, plist)
    check("EXTENDED COPY between LUNs 1 and 2 of one target -> GOOD", s == 0,
          (s, sense_of(sn) if sn else None))
    d = c.run(read10(100, 8), edtl=8 * bs, read=True, lun=2)[1]
    check("LUN 2 LBA 100.. holds LUN 1's blocks", d == pat1)
    d = c.run(read10(60, 8), edtl=8 * bs, read=True, lun=1)[1]
    check("LUN 1 LBA 60.. holds LUN 2's blocks", d == pat2)
    d = c.run(read10(0, 8), edtl=8 * bs, read=True, lun=1)[1]
    check("copy source LUN 1 unchanged", d == pat1)
    d = c.run(read10(40, 8), edtl=8 * bs, read=True, lun=2)[1]
    check("copy source LUN 2 unchanged", d == pat2)
    # RECEIVE COPY RESULTS, COPY STATUS (SPC-4 6.22.2, LID1).
    cdb = bytes([0x84, 0x00, 0x11] + [0] * 7) + struct.pack(">I", 64) + bytes(2)
    s, d, _, _ = c.run(cdb, edtl=64, read=True)
    check("RECEIVE COPY RESULTS: copy done, 2 segments, %d bytes" % (16 * bs),
          s == 0 and len(d) >= 12 and d[4] & 0x7F == 1 and struct.unpack(">H", d[5:7])[0] == 2
          and d[7] == 0 and struct.unpack(">I", d[8:12])[0] == 16 * bs, (s, d[:12].hex()))
    # The same copy addressed to LUN 2 works too (either LUN is a way in).
    s = xcopy(c, xcopy_list([(naa2, bs), (naa1, bs)], [(0, 1, 8, 40, 60)], usage=3), lun=2)[0]
    check("EXTENDED COPY through LUN 2 -> GOOD", s == 0, s)

    # An LU of another target is not reachable through this session, in
    # either role (SPC-4 6.4.3: COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE).
    for name, tds in (("source", [(naa_other, bs), (naa1, bs)]),
                      ("destination", [(naa1, bs), (naa_other, bs)])):
        s, _, _, sn = xcopy(c, xcopy_list(tds, [(0, 1, 8, 0, 0)], usage=3))
        check("EXTENDED COPY naming another target's LU as %s -> 0A/0D/02" % name,
              s == 2 and sense_of(sn) == (0x0A, 0x0D, 0x02), (s, sense_of(sn) if sn else None))
    after = c2.run(read10(0, 8), edtl=8 * bs, read=True)[1]
    check("the other target's LU is untouched", after == other_before)
    d = c.run(read10(0, 8), edtl=8 * bs, read=True, lun=1)[1]
    check("LUN 1 untouched by the refused copy", d == pat1)
    s, _, _, sn = xcopy(c, xcopy_list([(bytes([0x65]) + os.urandom(15), bs), (naa1, bs)],
                                      [(0, 1, 1, 0, 0)], usage=3))
    check("EXTENDED COPY naming an unknown NAA -> 0A/0D/02",
          s == 2 and sense_of(sn) == (0x0A, 0x0D, 0x02), (s, sense_of(sn) if sn else None))
    # The other target's session may copy within its own LU, not into ours.
    s = xcopy(c2, xcopy_list([(naa_other, bs)], [(0, 0, 1, 0, 1)], usage=3))[0]
    check("the other target copies within its own LU", s == 0, s)
    s, _, _, sn = xcopy(c2, xcopy_list([(naa_other, bs), (naa2, bs)], [(0, 1, 1, 0, 0)],
                                       usage=3))
    check("... but not into this target's LU",
          s == 2 and sense_of(sn) == (0x0A, 0x0D, 0x02), (s, sense_of(sn) if sn else None))
    c.close()
    c2.close()


# ---- async logout request (needs --adm)

def session_ids(isid_hex=None):
    """Session ids of TID (--mode session --op show), optionally by ISID."""
    r = adm("--mode", "session", "--op", "show", "--tid", str(TID))
    sids, cur = [], None
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Session:"):
            cur = line.split(":", 1)[1].strip()
            if isid_hex is None:
                sids.append(cur)
        elif line.startswith("ISID:") and isid_hex and isid_hex in line.lower():
            sids.append(cur)
    return sids


def g_async():
    c = Conn(isid=b"\x80\x00\x00\x00\x00\x33")
    st, _ = c.login()
    check("login for the async logout test", st == 0, hex(st))
    c.drain_ua()
    sids = session_ids("800000000033")
    if not check("session listed by --mode session --op show", len(sids) == 1, sids):
        return
    adm("--mode", "conn", "--op", "delete", "--tid", str(TID), "--sid", sids[0])
    c.s.settimeout(5)
    h, d = c.recv()
    check("dropped session gets Async Message event 1 (logout request)",
          h[0] & 0x3F == 0x32 and h[36] == 1, h[:4].hex() + " " + h[36:48].hex())
    p3 = struct.unpack(">H", h[42:44])[0]
    check("Parameter3 gives the time to log out (%d s)" % p3, 0 < p3 <= 60, p3)
    s, _, _, _ = c.run(tur())
    check("session serves until it logs out", s == 0, s)
    h, d = c.logout()
    check("logout after the logout request", h[0] & 0x3F == 0x26 and h[2] == 0, h[:4].hex())
    check("connection closed", closed(c.s))
    # An initiator that ignores the request is dropped after the deadline.
    c = Conn(isid=b"\x80\x00\x00\x00\x00\x34")
    c.login()
    sids = session_ids("800000000034")
    t0 = time.time()
    for s_ in sids:
        adm("--mode", "conn", "--op", "delete", "--tid", str(TID), "--sid", s_, ok=False)
    c.s.settimeout(5)
    h, d = c.recv()
    check("second session gets the logout request", h[0] & 0x3F == 0x32 and h[36] == 1)
    p3 = struct.unpack(">H", h[42:44])[0]
    gone = closed(c.s, timeout=p3 + 10)
    dt = time.time() - t0
    check("an initiator ignoring the request is dropped after ~%d s (%.1f s)" % (p3, dt),
          gone and dt >= p3 - 0.5)
    check("dropped session no longer listed", session_ids("800000000034") == [])


GROUPS = {
    "login": g_login, "discovery": g_discovery, "ffp": g_ffp, "digests": g_digests,
    "r2t": g_r2t, "vanish": g_vanish, "reinstate": g_reinstate, "tmf": g_tmf,
    "chap": g_chap, "chapdisc": g_chapdisc, "portals": g_portals, "async": g_async,
    "alua": g_alua, "xcopy": g_xcopy,
}
DEFAULT = ["login", "discovery", "ffp", "digests", "r2t", "vanish", "reinstate", "tmf"]


def main():
    global HOST, PORT, TGT, INI, ADM, TID, PORTAL2, TARGET2
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default=HOST)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", default=TGT)
    ap.add_argument("--initiator", default=INI)
    ap.add_argument("--adm", help="ringstoradm command line, e.g. 'ringstoradm -C sock'")
    ap.add_argument("--tid", type=int, default=1)
    ap.add_argument("--portal2")
    ap.add_argument("--target2")
    ap.add_argument("--groups", default=",".join(DEFAULT))
    a = ap.parse_args()
    HOST, PORT, TGT, INI, TID, PORTAL2 = a.host, a.port, a.target, a.initiator, a.tid, a.portal2
    TARGET2 = a.target2
    ADM = shlex.split(a.adm) if a.adm else None
    for g in a.groups.split(","):
        if g in ("chap", "chapdisc", "async") and not ADM:
            sys.exit("group %s needs --adm" % g)
        if g in ("portals", "alua") and not PORTAL2:
            sys.exit("group %s needs --portal2" % g)
        if g == "xcopy" and not TARGET2:
            sys.exit("group xcopy needs --target2")
        print("== %s" % g)
        t0 = time.time()
        try:
            GROUPS[g]()
        except Exception as e:  # noqa: BLE001 - any surprise is a failure
            check("group %s ran to completion" % g, False, "%s: %s" % (type(e).__name__, e))
        print("   (%.1f s)" % (time.time() - t0))
    print("%d checks, %d failures" % (checks, fails))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
