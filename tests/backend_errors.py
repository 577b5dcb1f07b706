#!/usr/bin/env python3
"""Backing-store errors become the right sense data, not a crash (issue 2 item 4).

usage: backend_errors.py PORT TARGET INITIATOR
LUN 1 lives on a 2 MiB tmpfs but claims 64 MiB: writing past the free space must
fail with DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT (27/07, SBC-3 4.7.3.4);
data written before that must read back intact."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsi_proto as p  # noqa: E402

PORT, TARGET, INIT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
p.HOST, p.PORT, p.TGT, p.INI = "127.0.0.1", PORT, TARGET, INIT


def write(c, lba, blocks, fill, fua=False):
    cdb = struct.pack(">BBIBHB", 0x2A, 0x08 if fua else 0, lba, 0, blocks, 0)
    return c.run(cdb, edtl=blocks * 512, write=True, data=bytes([fill]) * (blocks * 512))


def read(c, lba, blocks):
    cdb = struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)
    return c.run(cdb, edtl=blocks * 512, read=True)


c = p.Conn()
st, _ = c.login()
assert st == 0, "login failed %#x" % st
c.drain_ua()
st, _, _, _ = write(c, 0, 64, 0x5A)
assert st == 0, "first 32 KiB must fit: status %s" % st
result = None
for i in range(1, 200):           # 200 x 32 KiB = 6.4 MiB > 2 MiB of tmpfs
    st, _, _, sense = write(c, i * 64, 64, 0xA5)
    if st != 0:
        result = (st, p.sense_of(sense))
        break
assert result is not None, "tmpfs never filled up: no error reported"
assert result[0] == 0x02, "status %#x, want CHECK CONDITION" % result[0]
assert result[1] == (0x7, 0x27, 0x07), "sense %r, want DATA PROTECT 27/07" % (result[1],)
st, data, _, _ = read(c, 0, 64)
assert st == 0 and data == b"\x5a" * (64 * 512), "acked data lost after ENOSPC"
# the session still works
st, _, _, _ = c.run(p.tur())
assert st == 0, "TEST UNIT READY after ENOSPC: %s" % st
print("ENOSPC -> DATA PROTECT 27/07 at write %d; earlier data intact" % i)
