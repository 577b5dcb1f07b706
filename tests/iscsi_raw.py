#!/usr/bin/env python3
"""A tiny raw iSCSI client for robustness tests: builds PDUs by hand (RFC 7143
section 11) so that it can send what no real initiator would.

usage: iscsi_raw.py HOST PORT TARGET_IQN INITIATOR_IQN
Runs every scenario; exits 0 if the target behaved (rejected, dropped the
connection, or answered correctly) and is still serving, 1 otherwise."""
import os
import random
import socket
import struct
import sys
import time

# PDU builders shared with the protocol checks (tests/iscsi_proto.py).
import iscsi_proto
from iscsi_proto import bhs, login_pdu, pad4 as pad

HOST, PORT, TARGET, INITIATOR = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
failures = []


def kv(**keys):
    return iscsi_proto.kv(keys)


def connect():
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def recv_pdu(s):
    hdr = recv_exact(s, 48)
    dlen = int.from_bytes(hdr[5:8], "big")
    data = recv_exact(s, (dlen + 3) & ~3)[:dlen] if dlen else b""
    return hdr, data


def closed_or_rejected(s, what):
    """The target must drop the connection or answer with a Reject/error, not hang."""
    try:
        s.settimeout(5)
        hdr, _ = recv_pdu(s)
        return hdr[0] & 0x3F
    except (ConnectionError, ConnectionResetError):
        return "closed"
    except socket.timeout:
        failures.append(f"{what}: no answer and connection left open (hang)")
        return None


def full_login(s, itt=1):
    s.sendall(login_pdu(kv(InitiatorName=INITIATOR, TargetName=TARGET, SessionType="Normal",
                            AuthMethod="None"), csg=0, nsg=1, transit=True, itt=itt))
    hdr, data = recv_pdu(s)
    if hdr[0] & 0x3F != 0x23 or hdr[36] != 0:
        raise RuntimeError(f"security stage failed: status {hdr[36]:#x}/{hdr[37]:#x} {data!r}")
    tsih = hdr[14:16]
    keys = kv(HeaderDigest="None", DataDigest="None", MaxRecvDataSegmentLength=65536,
              InitialR2T="Yes", ImmediateData="Yes", MaxBurstLength=262144,
              FirstBurstLength=65536, ErrorRecoveryLevel=0)
    p = bytearray(login_pdu(keys, csg=1, nsg=3, transit=True, itt=itt))
    p[14:16] = tsih
    s.sendall(bytes(p))
    hdr, data = recv_pdu(s)
    if hdr[0] & 0x3F != 0x23 or hdr[36] != 0:
        raise RuntimeError(f"operational stage failed: {hdr[36]:#x}/{hdr[37]:#x} {data!r}")
    if not (hdr[1] & 0x80) or (hdr[1] & 3) != 3:
        raise RuntimeError("target did not transit to full feature phase")
    return struct.unpack(">I", hdr[24:28])[0]  # StatSN


def scsi_cmd(cdb, edtl, cmdsn, itt, read=False, write=False, data=b"", final=True, lun=1):
    flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 1
    rest = struct.pack(">III", edtl, cmdsn, 0) + cdb.ljust(16, b"\0")
    return bhs(0x01, flags, dlen=len(data), lun=lun << 48, itt=itt, rest=rest) + pad(data)


def scenario(name):
    def wrap(fn):
        try:
            fn()
            print(f"ok: {name}")
        except Exception as e:  # noqa: BLE001 - report any surprise as a failure
            failures.append(f"{name}: {type(e).__name__}: {e}")
        return fn
    return wrap


@scenario("garbage instead of a BHS")
def _():
    s = connect()
    s.sendall(os.urandom(48 * 4))
    closed_or_rejected(s, "garbage")
    s.close()


@scenario("login with 16 MiB data segment length")
def _():
    s = connect()
    hdr = bytearray(login_pdu(b"", csg=0, nsg=1))
    hdr[5:8] = b"\xff\xff\xff"
    s.sendall(bytes(hdr[:48]))
    r = closed_or_rejected(s, "huge dlen")
    if r not in ("closed", 0x23, 0x3F):
        failures.append(f"huge dlen: unexpected answer opcode {r}")
    s.close()


@scenario("half a BHS then disconnect")
def _():
    s = connect()
    s.sendall(login_pdu(kv(InitiatorName=INITIATOR))[:20])
    s.close()


@scenario("login without InitiatorName is refused")
def _():
    s = connect()
    s.sendall(login_pdu(kv(TargetName=TARGET, AuthMethod="None"), csg=0, nsg=1))
    hdr, _ = recv_pdu(s)
    if hdr[0] & 0x3F != 0x23 or hdr[36] != 0x02:
        failures.append(f"missing InitiatorName: status {hdr[36]:#x}/{hdr[37]:#x}")
    s.close()


@scenario("login to an unknown target gets 0x0203")
def _():
    s = connect()
    s.sendall(login_pdu(kv(InitiatorName=INITIATOR, TargetName="iqn.2026-11.nowhere:x",
                           AuthMethod="None"), csg=0, nsg=1))
    hdr, _ = recv_pdu(s)
    if (hdr[36], hdr[37]) != (0x02, 0x03):
        failures.append(f"unknown target: status {hdr[36]:#x}/{hdr[37]:#x}")
    s.close()


@scenario("unknown opcode in full feature phase gets a Reject")
def _():
    s = connect()
    statsn = full_login(s)
    s.sendall(bhs(0x1C, 0x80, itt=7))  # 0x1c: not an initiator opcode
    hdr, data = recv_pdu(s)
    if hdr[0] & 0x3F != 0x3F:
        failures.append(f"unknown opcode answered with opcode {hdr[0] & 0x3F:#x}")
    elif len(data) < 48 or data[:1] != b"\x1c":
        failures.append("Reject does not carry the rejected header")
    # the connection must still work: TEST UNIT READY
    s.sendall(scsi_cmd(b"\x00", 0, cmdsn=1, itt=8))
    for _ in range(3):
        hdr, data = recv_pdu(s)
        if hdr[0] & 0x3F == 0x21:
            break
    else:
        failures.append("no SCSI response after a Reject")
    del statsn
    s.close()


@scenario("write with partial data, then the client vanishes")
def _():
    s = connect()
    full_login(s)
    cdb = struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 64, 0)  # WRITE(10) LBA 0, 64 blocks
    s.sendall(scsi_cmd(cdb, 64 * 512, cmdsn=1, itt=9, write=True, data=b"\xab" * 4096, final=False))
    time.sleep(0.1)
    s.close()


@scenario("500 mutated login PDUs")
def _():
    rnd = random.Random(1234)
    good = login_pdu(kv(InitiatorName=INITIATOR, TargetName=TARGET, AuthMethod="None"), csg=0, nsg=1)
    for i in range(500):
        p = bytearray(good)
        for _ in range(rnd.randint(1, 6)):
            p[rnd.randrange(len(p))] = rnd.randrange(256)
        s = connect()
        try:
            s.sendall(bytes(p))
            s.settimeout(2)
            try:
                recv_pdu(s)
            except (ConnectionError, socket.timeout, OSError):
                pass
        finally:
            s.close()


@scenario("target still serves a clean login")
def _():
    s = connect()
    full_login(s)
    s.sendall(scsi_cmd(b"\x12\x00\x00\x00\x24\x00", 36, cmdsn=1, itt=3, read=True))
    hdr, data = recv_pdu(s)
    if hdr[0] & 0x3F != 0x25 or b"RINGSTOR" not in data:
        failures.append(f"INQUIRY after abuse: opcode {hdr[0] & 0x3F:#x} data {data!r}")
    s.close()


if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("all raw-PDU scenarios behaved")
