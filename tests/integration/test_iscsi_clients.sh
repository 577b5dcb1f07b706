#!/usr/bin/env bash
# Real libiscsi and QEMU clients against ringstord: discovery, INQUIRY, READ
# CAPACITY, qemu-img convert in and out with a byte-for-byte compare, ACLs.
. "$(dirname "$0")/lib.sh"
command -v iscsi-ls >/dev/null || skip "libiscsi-bin not installed"
command -v qemu-img >/dev/null || skip "qemu-utils not installed"

write_config "$T/rs.conf" "$T/lun1.img"
start_daemon "$T/rs.conf"

# Discovery (SendTargets) lists the target with its portal.
out=$(iscsi-ls -i $INIT1 -s "iscsi://127.0.0.1:$PORT/") || fail "iscsi-ls failed: $out"
echo "$out"
echo "$out" | grep -q "Target:$IQN Portal:127.0.0.1:$PORT,1" || fail "iscsi-ls: target/portal missing"
echo "$out" | grep -q "Lun:1 *Type:DIRECT_ACCESS" || fail "iscsi-ls -s: LUN 1 not a disk"
ok "discovery"

out=$(iscsi-inq -i $INIT1 "$(URL)") || fail "iscsi-inq failed"
echo "$out" | grep -q "^Vendor:RINGSTOR" || fail "iscsi-inq vendor: $out"
out=$(iscsi-inq -i $INIT1 -e 1 -c 131 "$(URL)") || fail "iscsi-inq VPD 83 failed"
echo "$out" | grep -aq "Designator Type:(3) NAA" || fail "VPD 83 has no NAA designator: $out"
naa1=$(echo "$out" | grep -a -A1 "Designator Type:(3) NAA" | md5sum)
ok "inquiry"

out=$(iscsi-readcapacity16 -i $INIT1 "$(URL)") || fail "iscsi-readcapacity16 failed"
echo "$out"
echo "$out" | grep -q "LOGICAL BLOCK LENGTH IN BYTES:512" || fail "block length"
echo "$out" | grep -q "RETURNED LOGICAL BLOCK ADDRESS:524287" || fail "capacity of 256 MiB LUN"
ok "read capacity 16"

# qemu-img: write a random image into the LUN, read it back, compare.
head -c $((32 * 1024 * 1024)) /dev/urandom >"$T/src.raw"
qemu-img convert -n -f raw -O raw "$T/src.raw" "$(URL)" || fail "qemu-img convert to iscsi"
qemu-img convert -f raw -O raw "$(URL)" "$T/back.raw" || fail "qemu-img convert from iscsi"
cmp -n $((32 * 1024 * 1024)) "$T/src.raw" "$T/back.raw" || fail "data read back differs"
# The backing file holds the same bytes (what was acked is on disk).
cmp -n $((32 * 1024 * 1024)) "$T/src.raw" "$T/lun1.img" || fail "backing file differs"
qemu-img compare -f raw -F raw "$T/back.raw" "$(URL)" || fail "qemu-img compare"
ok "qemu-img convert in/out, byte-for-byte"

# ACL: an address ACL of 127.0.0.2 does not admit 127.0.0.1 (login 0x0202),
# and the target is not shown in discovery.
$RINGSTORADM -C "$SOCK" --lld iscsi --mode target --op unbind --tid 1 -I 127.0.0.1 || fail "unbind"
$RINGSTORADM -C "$SOCK" --lld iscsi --mode target --op bind --tid 1 -I 127.0.0.2 || fail "bind"
out=$(iscsi-ls -i $INIT1 -s "iscsi://127.0.0.1:$PORT/" 2>&1)
echo "$out" | grep -q "$IQN" && fail "denied target visible in discovery: $out"
out=$(iscsi-inq -i $INIT1 "$(URL)" 2>&1) && fail "login should be refused: $out"
echo "$out" | grep -qi "author\|0x0202\|not allowed\|denied" || echo "note: refusal message was: $out"
ok "address ACL refuses"
# An initiator-name ACL admits INIT2 only.
$RINGSTORADM -C "$SOCK" --lld iscsi --mode target --op bind --tid 1 -Q $INIT2 || fail "bind -Q"
iscsi-inq -i $INIT2 "$(URL)" >/dev/null || fail "INIT2 should be admitted by name"
iscsi-inq -i $INIT1 "$(URL)" >/dev/null 2>&1 && fail "INIT1 should still be refused"
ok "name ACL"

daemon_alive || fail "daemon died"
# NAA designator is persistent across a restart.
kill -TERM $DAEMON_PID; wait $DAEMON_PID || fail "daemon exit status $? on SIGTERM"
DAEMON_PID=""
start_daemon "$T/rs.conf"
out=$(iscsi-inq -i $INIT1 -e 1 -c 131 "$(URL)") || fail "iscsi-inq after restart"
[ "$(echo "$out" | grep -a -A1 "Designator Type:(3) NAA" | md5sum)" = "$naa1" ] || fail "NAA designator changed across restart"
cmp -n $((32 * 1024 * 1024)) "$T/src.raw" "$T/lun1.img" || fail "data lost across restart"
ok "restart keeps identity and data"
