#!/usr/bin/env python3
"""APTPL across a restart (SPC-4 5.13.4), through a raw iSCSI session.

usage: pr_aptpl.py PORT TARGET INIT1 INIT2 phase   (phase: before | after)
before: INIT1 registers key 0x1234 with APTPL=1 and takes a WRITE EXCLUSIVE
        reservation.
after:  (daemon restarted) the registration and the reservation are back,
        INIT2 may read but its WRITE gets RESERVATION CONFLICT."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsi_proto as p  # noqa: E402

PORT, TARGET, INIT1, INIT2, PHASE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
KEY = 0x1234


def session(initiator, isid):
    p.HOST, p.PORT, p.TGT, p.INI = "127.0.0.1", PORT, TARGET, initiator
    c = p.Conn(isid=isid)
    st, _ = c.login()
    assert st == 0, "login failed: %#x" % st
    c.drain_ua()
    return c


def prout(c, sa, key, sark, prtype=0, aptpl=True):
    params = struct.pack(">QQI", key, sark, 0) + bytes([1 if aptpl else 0, 0, 0, 0])
    cdb = bytes([0x5F, sa, prtype, 0, 0]) + struct.pack(">I", len(params)) + b"\0"
    return c.run(cdb, edtl=len(params), write=True, data=params)[0]


def prin(c, sa):
    cdb = bytes([0x5E, sa, 0, 0, 0, 0, 0]) + struct.pack(">H", 512) + b"\0"
    st, data, _, _ = c.run(cdb, edtl=512, read=True)
    assert st == 0, "PR IN %d: status %s" % (sa, st)
    return data


def main():
    c = session(INIT1, b"\x80\x00\x00\x00\x00\x01")
    if PHASE == "before":
        assert prout(c, 0, 0, KEY) == 0, "REGISTER with APTPL failed"
        assert prout(c, 1, KEY, 0, prtype=1) == 0, "RESERVE failed"
        print("registered and reserved with APTPL=1")
        return
    keys = prin(c, 0)
    n = struct.unpack(">I", keys[4:8])[0] // 8
    got = [struct.unpack(">Q", keys[8 + 8 * i:16 + 8 * i])[0] for i in range(n)]
    assert got == [KEY], "READ KEYS after restart: %r" % got
    res = prin(c, 1)
    assert struct.unpack(">I", res[4:8])[0] == 16, "no reservation after restart"
    assert struct.unpack(">Q", res[8:16])[0] == KEY and res[21] & 0x0F == 1, "wrong reservation"
    other = session(INIT2, b"\x80\x00\x00\x00\x00\x02")
    st, _, _, _ = other.run(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, read=True)
    assert st == 0, "read by another initiator must pass under WRITE EXCLUSIVE: %s" % st
    st, _, _, _ = other.run(bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]), edtl=512, write=True,
                            data=b"\0" * 512)
    assert st == 0x18, "write by another initiator: status %s, want RESERVATION CONFLICT" % st
    # clean up: release and unregister (APTPL=0 removes the saved state)
    assert prout(c, 2, KEY, 0, prtype=1, aptpl=False) == 0, "RELEASE"
    assert prout(c, 0, KEY, 0, aptpl=False) == 0, "unregister"
    print("registration, reservation and conflict survived the restart")


if __name__ == "__main__":
    main()
