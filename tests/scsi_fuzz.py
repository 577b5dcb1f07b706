#!/usr/bin/env python3
"""scsi_fuzz.py - fuzzing of ringstord in the iSCSI full feature phase.

Usage: scsi_fuzz.py HOST PORT TARGET_IQN INITIATOR_IQN LUNS ITERATIONS SEED

LUNS is a comma-separated list of LUN numbers to aim at.  Two kinds of
input, mixed:

* SCSI commands (SPC-4 / SBC-3) that a real initiator could send but with
  random and boundary fields: every opcode the target implements plus random
  ones, CDBs of the length of their group code (6/10/12/16 bytes, variable
  length 7Fh), LBAs and transfer lengths at the edges (0, 1, the last LBA,
  the capacity, 2^32-1, 2^64-1), service actions, and parameter lists for the
  commands that take one (PERSISTENT RESERVE OUT, MODE SELECT, UNMAP,
  EXTENDED COPY, COMPARE AND WRITE, WRITE SAME, WRITE BUFFER...), random or
  built from a valid list and then mutated.  The data goes as immediate data
  and, when the expected length is larger, in answer to R2Ts.
* whole PDUs (SCSI Command, NOP-Out, Task Management, Text, Logout, SNACK,
  Data-Out, unknown opcodes) with bytes of the BHS flipped or set to boundary
  values (RFC 7143 11).

Every command must be answered (a SCSI Response, or Data-In with status)
within 10 s; for mutated PDUs the target may also answer with a Reject or
drop the connection, after which the fuzzer logs in again.  Every 100
inputs, and at the end, a fresh session must get GOOD for TEST UNIT READY
and a sane INQUIRY.  The sequence is reproducible from SEED.
Exit 0: the target survived; 1: it crashed, hung or stopped serving.
"""
import random
import socket
import struct
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import iscsi_proto  # noqa: E402  (PDU builders: RFC 7143 11)

HOST, PORT, TGT, INI = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
LUNS = [int(x) for x in sys.argv[5].split(",")]
ITER, SEED = int(sys.argv[6]), int(sys.argv[7])
iscsi_proto.HOST, iscsi_proto.PORT, iscsi_proto.TGT, iscsi_proto.INI = HOST, PORT, TGT, INI
rng = random.Random(SEED)
stats = {"commands": 0, "pdus": 0, "good": 0, "check": 0, "other_status": 0,
         "rejects": 0, "reconnects": 0}


senses = {}       # "key/asc/ascq" -> count
MRDSL = [8192]     # the target's MaxRecvDataSegmentLength (login answer)


class Hang(Exception):
    pass


def session():
    c = iscsi_proto.Conn(HOST, PORT, isid=b"\x80\x00\x00\x00" + struct.pack(">H", rng.randrange(4)))
    c.s.settimeout(10)
    st, kvs = c.login()
    if st != 0:
        raise RuntimeError("login failed: %#x %r" % (st, kvs))
    MRDSL[0] = min(65536, int(c.login_kvs.get("MaxRecvDataSegmentLength", ["8192"])[-1]))
    return c


def capacity(c, lun):
    """(last LBA, block size) from READ CAPACITY(16), or (2047, 512)."""
    for _ in range(4):
        st, data, _, _ = c.run(bytes([0x9E, 0x10]) + b"\0" * 8 + struct.pack(">I", 32) + b"\0\0",
                               edtl=32, read=True, lun=lun)
        if st == 0 and len(data) >= 12:
            return struct.unpack(">QI", data[:12])
    return 2047, 512


# ---------------------------------------------------------------- CDB makers

def lba_pick(last):
    return rng.choice([0, 1, last, last - 1, last + 1, last // 2, 0xFFFFFFFF, 2 ** 64 - 1,
                       rng.randrange(last + 1)]) & (2 ** 64 - 1)


def len_pick():
    return rng.choice([0, 1, 2, 8, 255, 256, 0xFFFF, 0x10000, 0xFFFFFFFF, rng.randrange(64)])


def rand_cdb(op):
    group = op >> 5
    n = {0: 6, 1: 10, 2: 10, 4: 16, 5: 12}.get(group, 16)
    return bytes([op]) + bytes(rng.randrange(256) for _ in range(n - 1))


def pr_out_params():
    # SPC-4 6.15.3: reservation key, service action key, ..., APTPL bit
    p = struct.pack(">QQ", rng.choice([0, 1, 0x1234, 2 ** 64 - 1]), rng.choice([0, 1, 0xabcd]))
    p += b"\0" * 4 + bytes([rng.choice([0, 1, 4, 8, 0xff])]) + b"\0" * 3
    if rng.random() < 0.3:   # SPEC_I_PT TransportID list, often broken
        tid = b"\x05\x00" + struct.pack(">H", rng.choice([0, 4, 24, 0xfff])) + INI.encode()
        p += struct.pack(">I", rng.choice([len(tid), 0, 0xffffffff, 3])) + tid
    return p


def unmap_params(last):
    # SBC-3 5.28.2: header, block descriptors
    nd = rng.choice([0, 1, 2, 3])
    descs = b"".join(struct.pack(">QI", lba_pick(last), len_pick()) + b"\0" * 4 for _ in range(nd))
    hdr = struct.pack(">HH", rng.choice([len(descs) + 6, 0, 0xffff, 6]),
                      rng.choice([len(descs), 0, 0xffff, 17])) + b"\0" * 4
    return hdr + descs


def xcopy_params(last):
    # SPC-4 6.4.3 (LID1): header, target descriptors, segment descriptors
    tds = b""
    for _ in range(rng.choice([0, 1, 2])):
        naa = bytes([0x60 | rng.randrange(16)]) + bytes(rng.randrange(256) for _ in range(15))
        tds += bytes([0xE4, 0, 0, 0]) + bytes([1, 3, 0, 16]) + naa + b"\0" * 4 + struct.pack(">I", 512)[1:] + b"\0"
    segs = b""
    for _ in range(rng.choice([0, 1, 2])):
        segs += bytes([0x02, 0]) + struct.pack(">H", 0x18) + struct.pack(">HH", rng.choice([0, 1, 5]),
                                                                         rng.choice([0, 1, 0xffff]))
        segs += b"\0\0" + struct.pack(">HQQ", rng.choice([0, 1, 0xffff]), lba_pick(last), lba_pick(last))
    hdr = bytes([rng.randrange(256), rng.choice([0, 0x20, 0x18])]) + struct.pack(">H", len(tds))
    hdr += b"\0" * 4 + struct.pack(">I", len(segs)) + struct.pack(">I", rng.choice([0, 4, 0xffffffff]))
    return hdr + tds + segs


def mode_params():
    # SPC-4 7.5.5/7.5.6: mode parameter header(6), a block descriptor, a page
    pages = [bytes([0x08, 0x12]) + bytes(18), bytes([0x0A, 0x0A]) + bytes(10),
             bytes([0x1C, 0x0A]) + bytes(10), bytes([rng.randrange(64), rng.randrange(256)])]
    bd = struct.pack(">I", rng.choice([0, 1, 0xffffffff])) + struct.pack(">I", rng.choice([512, 4096, 0, 1]))
    use_bd = rng.random() < 0.5
    body = (bd if use_bd else b"") + rng.choice(pages)
    # MODE DATA LENGTH is reserved in MODE SELECT; the block descriptor
    # length usually right, sometimes not
    bdl = rng.choice([8 if use_bd else 0, 8 if use_bd else 0, 0, 16, 255])
    return bytes([0, rng.randrange(256), 0, bdl]) + body


def make_command(lun, last, bs):
    """(cdb, edtl, direction, data)"""
    kind = rng.randrange(17)
    lba, n = lba_pick(last), rng.choice([0, 1, 2, 8, 128, rng.randrange(1, 300)])
    if kind == 0:   # READ 6/10/12/16
        op = rng.choice([0x08, 0x28, 0xA8, 0x88])
        cdb = {0x08: lambda: bytes([0x08]) + struct.pack(">I", lba & 0x1FFFFF)[1:] + bytes([n & 0xff, 0]),
               0x28: lambda: bytes([0x28, rng.choice([0, 8, 0xe0])]) + struct.pack(">IBHB", lba & 0xFFFFFFFF, 0, n & 0xffff, 0),
               0xA8: lambda: bytes([0xA8, 0]) + struct.pack(">IIBB", lba & 0xFFFFFFFF, n, 0, 0),
               0x88: lambda: bytes([0x88, rng.choice([0, 8])]) + struct.pack(">QIBB", lba, n, 0, 0)}[op]()
        return cdb, rng.choice([n * bs, 0, bs, (n + 1) * bs, 65536]), "r", b""
    if kind == 1:   # WRITE 6/10/16, WRITE AND VERIFY, FUA
        op = rng.choice([0x0A, 0x2A, 0x8A, 0x2E, 0x8E])
        n = rng.choice([0, 1, 2, 8, 16])
        if op == 0x0A:
            cdb = bytes([0x0A]) + struct.pack(">I", lba & 0x1FFFFF)[1:] + bytes([n & 0xff, 0])
        elif op in (0x2A, 0x2E):
            cdb = bytes([op, rng.choice([0, 8, 0xe0])]) + struct.pack(">IBHB", lba & 0xFFFFFFFF, 0, n, 0)
        else:
            cdb = bytes([op, rng.choice([0, 8])]) + struct.pack(">QIBB", lba, n, 0, 0)
        edtl = rng.choice([n * bs, n * bs, 0, bs, n * bs + 512])
        return cdb, edtl, "w", bytes(rng.randrange(256) for _ in range(min(edtl, 8192))) * (edtl // 8192 + 1)
    if kind == 2:   # WRITE SAME 10/16 (UNMAP, ANCHOR, NDOB bits)
        if rng.random() < 0.5:
            cdb = bytes([0x41, rng.choice([0, 8, 0x10])]) + struct.pack(">IBHB", lba & 0xFFFFFFFF, 0, n & 0xffff, 0)
        else:
            cdb = bytes([0x93, rng.choice([0, 1, 8, 0x10, 0x18])]) + struct.pack(">QIBB", lba, len_pick(), 0, 0)
        return cdb, rng.choice([bs, 0, 512, 4096]), "w", bytes([rng.randrange(256)]) * 4096
    if kind == 3:   # COMPARE AND WRITE
        nb = rng.choice([0, 1, 2, 255])
        cdb = bytes([0x89, 0]) + struct.pack(">Q", lba) + b"\0\0\0" + bytes([nb]) + b"\0\0"
        edtl = rng.choice([2 * nb * bs, nb * bs, 0, 2 * bs])
        return cdb, edtl, "w", bytes(edtl)
    if kind == 4:   # UNMAP
        p = unmap_params(last)
        cdb = bytes([0x42, rng.choice([0, 1])]) + b"\0" * 5 + struct.pack(">H", rng.choice([len(p), 0, 8, 0xffff])) + b"\0"
        return cdb, len(p), "w", p
    if kind == 5:   # PERSISTENT RESERVE OUT: every service action and type
        p = pr_out_params()
        cdb = bytes([0x5F, rng.randrange(0x10), rng.randrange(16)]) + b"\0\0" + struct.pack(">I", rng.choice([len(p), 24, 0, 0xffff])) + b"\0"
        return cdb, len(p), "w", p
    if kind == 6:   # PERSISTENT RESERVE IN
        al = rng.choice([0, 8, 24, 0x2000, 0xffff])
        return bytes([0x5E, rng.randrange(8)]) + b"\0" * 5 + struct.pack(">H", al) + b"\0", al, "r", b""
    if kind == 7:   # EXTENDED COPY + RECEIVE COPY RESULTS
        if rng.random() < 0.7:
            p = xcopy_params(last)
            cdb = bytes([0x83, 0]) + b"\0" * 8 + struct.pack(">I", rng.choice([len(p), 0, 16, 0xffff])) + b"\0\0"
            return cdb, len(p), "w", p
        al = rng.choice([0, 16, 0x1000])
        return bytes([0x84, rng.randrange(8), rng.randrange(256)]) + b"\0" * 7 + struct.pack(">I", al) + b"\0\0", al, "r", b""
    if kind == 8:   # MODE SELECT / SENSE
        if rng.random() < 0.5:
            p = mode_params()
            if rng.random() < 0.5:
                return bytes([0x15, rng.choice([0x10, 0x11, 0])]) + b"\0\0" + bytes([len(p) & 0xff, 0]), len(p), "w", p
            p = b"\0\0" + p[:1] + p[1:3] + b"\0\0" + p[3:4] + p[4:]
            return bytes([0x55, 0x10]) + b"\0" * 5 + struct.pack(">H", len(p)) + b"\0", len(p), "w", p
        al = rng.choice([0, 4, 255, 0xffff])
        if rng.random() < 0.5:
            return bytes([0x1A, rng.choice([0, 8]), rng.randrange(256), rng.randrange(256), al & 0xff, 0]), al & 0xff, "r", b""
        return bytes([0x5A, rng.choice([0, 8, 0x10]), rng.randrange(256), rng.randrange(256)]) + b"\0\0\0" + struct.pack(">H", al) + b"\0", al, "r", b""
    if kind == 9:   # INQUIRY with every VPD page and bad EVPD/page combinations
        al = rng.choice([0, 1, 5, 36, 255, 0xffff])
        return bytes([0x12, rng.choice([0, 1, 2, 3])]) + bytes([rng.choice([0, 0x80, 0x83, 0x86, 0xB0, 0xB1, 0xB2, 0xB3, 0x8F, rng.randrange(256)])]) + struct.pack(">H", al) + b"\0", al, "r", b""
    if kind == 10:  # SERVICE ACTION IN(16): READ CAPACITY(16), GET LBA STATUS; REPORT TPG etc. (A3h)
        al = rng.choice([0, 8, 32, 0x1000, 0xffffffff])
        if rng.random() < 0.5:
            return bytes([0x9E, rng.choice([0x10, 0x12, 0x13, rng.randrange(32)])]) + struct.pack(">QIBB", lba, al, 0, 0), min(al, 0x10000), "r", b""
        return bytes([0xA3, rng.choice([0x0A, 0x0C, 0x0D, 0x0F, rng.randrange(32)]), rng.randrange(256)]) + b"\0\0\0" + struct.pack(">I", al) + b"\0\0", min(al, 0x10000), "r", b""
    if kind == 11:  # REPORT LUNS, REQUEST SENSE, TUR, SYNC CACHE, PREFETCH, VERIFY, START STOP, PREVENT ALLOW
        op = rng.choice([0xA0, 0x03, 0x00, 0x35, 0x91, 0x34, 0x90, 0x2F, 0x8F, 0x1B, 0x1E, 0x25])
        c = bytearray(rand_cdb(op))
        if op in (0xA0, 0x03):
            al = rng.choice([0, 4, 16, 252, 0x1000])
            return bytes(c), al, "r", b""
        return bytes(c), 0 if op != 0x25 else 8, "r" if op == 0x25 else "n", b""
    if kind == 12:  # variable length (7Fh): READ/WRITE/VERIFY(32) with random lengths
        al = rng.choice([0x18, 0, 0xff, 0x10])
        c = bytearray(rand_cdb(0x7F) + bytes(24))
        c[7] = al
        c[8:10] = struct.pack(">H", rng.choice([0x0009, 0x000B, 0x000A, 0x000C, rng.randrange(65536)]))
        return bytes(c[:rng.choice([10, 16, 32, 32])]), rng.choice([0, bs, 8 * bs]), rng.choice(["r", "w"]), bytes(8 * bs)
    if kind == 13:  # WRITE BUFFER / READ BUFFER / SEND DIAGNOSTIC / RECEIVE DIAGNOSTIC / LOG SENSE/SELECT
        op = rng.choice([0x3B, 0x3C, 0x1D, 0x1C, 0x4D, 0x4C, 0x5C])
        al = rng.choice([0, 4, 64, 0x1000])
        d = "w" if op in (0x3B, 0x1D, 0x4C) else "r"
        return rand_cdb(op)[:6 if op < 0x20 else 10], al, d, bytes(rng.randrange(256) for _ in range(al))
    if kind == 14:  # RESERVE / RELEASE (6/10), FORMAT UNIT, SANITIZE, WRITE ATOMIC, ORWRITE
        op = rng.choice([0x16, 0x17, 0x56, 0x57, 0x04, 0x48, 0x9C, 0x8B])
        c = rand_cdb(op)
        al = rng.choice([0, bs, 4, 8 * bs])
        return c, al, "w", bytes(al)
    # random opcode and random bytes, any direction
    op = rng.randrange(256)
    al = rng.choice([0, 0, 8, 512, 4096])
    return rand_cdb(op), al, rng.choice(["r", "w", "n"]), bytes(rng.randrange(256) for _ in range(min(al, 64))) * 64


def run_command(c, lun, cdb, edtl, direction, data):
    """Send one command with its data (immediate + R2T answers); wait for status."""
    edtl &= 0xFFFFFFFF
    write = direction == "w"
    data = (data * (edtl // max(1, len(data)) + 1))[:edtl] if write and data else bytes(edtl if write else 0)
    imm = data[:min(len(data), MRDSL[0])] if write else b""
    # (a 32-byte CDB is cut to 16: no extended-CDB AHS; the target judges what is left)
    it, b, _ = c.scsi(cdb[:16], edtl=edtl, read=direction == "r",
                      write=write, lun=lun)
    c.send(b, imm)
    deadline = time.time() + 10
    while True:
        if time.time() > deadline:
            raise Hang("no status for CDB %s (edtl %d)" % (cdb.hex(), edtl))
        h, d = c.recv()
        op = h[0] & 0x3F
        if op == 0x25 and h[1] & 1:          # Data-In with status
            return h[3]
        if op == 0x21:
            if h[3] == 2 and len(d) >= 2 + 14:     # sense data (RFC 7143 11.4.7.2)
                sense = d[2:]
                k = "%x/%02x/%02x" % (sense[2] & 0xF, sense[12], sense[13])
                senses[k] = senses.get(k, 0) + 1
            return h[3]
        if op == 0x31:                       # R2T: send what is asked, random bytes, in 64 KiB PDUs
            ttt = struct.unpack(">I", h[20:24])[0]
            off, want = struct.unpack(">II", h[40:48])
            sn = 0
            while want > 0:
                n = min(want, MRDSL[0])
                c.dout(it, ttt, sn, off, (data[off:off + n] or bytes(n)).ljust(n, b"\0"), want == n)
                off += n
                want -= n
                sn += 1
        elif op == 0x3F:
            stats["rejects"] += 1
            return "reject"
        elif op in (0x20, 0x25, 0x32, 0x36):  # NOP-In, Data-In, async message...
            continue
        else:
            return "op%02x" % op


# ---------------------------------------------------------------- PDU mutation

def mutated_pdu(c, lun):
    """A valid-looking PDU of some initiator opcode with BHS bytes damaged."""
    op = rng.choice([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x10, 0x1C, 0x03, 0x3F])
    b = bytearray(48)
    b[0] = op | rng.choice([0, 0x40])
    b[1] = 0x80
    b[8:16] = struct.pack(">Q", lun << 48)
    b[16:20] = struct.pack(">I", c.itt)
    c.itt += 1
    b[20:24] = struct.pack(">I", 0xFFFFFFFF)
    b[24:28] = struct.pack(">I", c.cmdsn)
    b[28:32] = struct.pack(">I", c.statsn)
    if op == 0x01:
        b[1] = 0x80 | 0x40 | 1
        b[20:24] = struct.pack(">I", 512)
        b[32] = 0x28
        b[40:42] = b"\x00\x01"
    data = b""
    desync = False      # a lying length: the target reads our next PDU as this one's data
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(4)
        if k == 0:
            b[rng.randrange(48)] ^= 1 << rng.randrange(8)
        elif k == 1:
            o = rng.randrange(12) * 4
            b[o:o + 4] = struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, c.cmdsn + 1000]))
        elif k == 2:
            data = bytes(rng.randrange(256) for _ in range(rng.choice([1, 3, 48, 600])))
        else:
            b[4] = rng.choice([0, 1, 255])          # TotalAHSLength
            desync = desync or b[4] != 0
    pkt = bytes(b[:5]) + len(data).to_bytes(3, "big") + bytes(b[8:])
    if rng.random() < 0.2:                          # a lying DataSegmentLength
        pkt = pkt[:5] + rng.choice([b"\xff\xff\xff", b"\x00\x10\x00", b"\x00\x00\x01"]) + pkt[8:]
        desync = True
    c.s.sendall(pkt + iscsi_proto.pad4(data))
    c.s.settimeout(0.05)
    try:
        while True:
            h, _ = c.recv()
            if h[0] & 0x3F == 0x3F:
                stats["rejects"] += 1
    except socket.timeout:
        pass
    finally:
        c.s.settimeout(10)
    return desync


def alive():
    c = session()
    try:
        st = c.drain_ua()
        st2, data, _, _ = c.run(b"\x12\x00\x00\x00\x24\x00", edtl=36, read=True)
        return st == 0 and st2 == 0 and len(data) == 36
    finally:
        c.close()


start = time.time()
c = session()
geo = {lun: capacity(c, lun) for lun in LUNS}
last_input = None
for i in range(ITER):
    lun = rng.choice(LUNS)
    last, bs = geo[lun]
    try:
        if rng.random() < 0.12:
            last_input = "mutated PDU"
            stats["pdus"] += 1
            mutated_pdu(c, lun)
            # Whatever it did to the CmdSN window, the data segment framing
            # or the task table, the rest of this session would test the
            # fuzzer's bookkeeping, not the target: a new session, and the
            # target cleans up a connection that vanished mid-command.
            raise EOFError("after a mutated PDU: start a new session")
        else:
            cdb, edtl, direction, data = make_command(lun, last, bs)
            last_input = "CDB %s edtl %d %s" % (cdb.hex(), edtl, direction)
            stats["commands"] += 1
            st = run_command(c, lun, cdb, edtl, direction, data)
            if st == 0:
                stats["good"] += 1
            elif st == 2:
                stats["check"] += 1
            else:
                stats["other_status"] += 1
    except Hang as e:
        print("FAIL: hang: %s" % e)
        sys.exit(1)
    except socket.timeout:
        print("FAIL: no answer within 10 s to %s (input %d)" % (last_input, i))
        sys.exit(1)
    except (OSError, EOFError, AssertionError):
        # dropped by the target (a protocol error on our side): log in again
        stats["reconnects"] += 1
        try:
            c.close()
        except OSError:
            pass
        c = session()
    if i % 100 == 99:
        if not alive():
            print("FAIL: target not serving after input %d (%s)" % (i, last_input))
            sys.exit(1)
        # a fresh session now and then: releases what a PR OUT may have left
        if rng.random() < 0.3:
            c.close()
            c = session()
c.close()
if not alive():
    print("FAIL: target not serving at the end")
    sys.exit(1)
print("ok: seed %d: %d commands (%d GOOD, %d CHECK CONDITION, %d other), %d mutated PDUs, "
      "%d rejects, %d reconnects in %.1f s; target alive"
      % (SEED, stats["commands"], stats["good"], stats["check"], stats["other_status"],
         stats["pdus"], stats["rejects"], stats["reconnects"], time.time() - start))
print("   most frequent sense (key/asc/ascq): " +
      ", ".join("%s x%d" % kv for kv in sorted(senses.items(), key=lambda x: -x[1])[:8]))
