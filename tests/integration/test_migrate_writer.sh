#!/usr/bin/env bash
# test_migrate_writer.sh - live migration of a VM that keeps writing to its
# disk (issue 5: "no write lost or duplicated"), on iscsi:// and on nfs://.
#
# The guest is tests/guest/writer.S, a boot sector built here and written to
# sector 0 of the disk: SeaBIOS boots it from the LUN / NFS file and, for
# n = 1, 2, ..., it writes record n (magic, a per-run nonce, n) to log sector
# LOG0 + n - 1 and to the super sector, after reading both back to see that
# nobody else wrote them (the log sector still zero, the super sector still
# record n - 1), at most ~290 records/s; it keeps the last completed n in RAM
# (0x7e00), with a status that says if it found another copy's write, until
# a key arrives (QMP send-key).  Hosts and appliance are network namespaces
# (netns_lib.sh); the migrations use the host configuration file (-c, --vm)
# with one VM per kind of disk.  Per kind:
#   m1 h1 -> h2 (--transfer-at completed) while it writes; the old host's
#      writes are refused (the lease) and the guest goes on writing on h2
#   m2 h2 -> h1, the destination killed after the lease moved: rolled back,
#      the source resumes (its images re-activated) and goes on writing
#   m3 h2 -> h1 (--transfer-at pre-switchover); it goes on writing on h1
#   m4 h1 -> h2 (pre-switchover), the companion killed right after the lease
#      moved; `recover` finishes the migration and it goes on writing on h2
# each time with records completed during the migration and the guest's
# status still "writing"; then the key (the guest's last completed n is read
# from its RAM).  For the last kind instead, two handovers where the
# destination has run and written when something fails, so that a source
# resumed then would execute those writes a second time (the guest notices:
# status 5 or 6) -- the rule is: once cont was sent to the destination the
# source is never resumed unless the destination provably never wrote:
#   m5 h2 -> h1, the connection to h1's QEMU drops right after the
#      companion's cont reached it (remote_cmd is a wrapper whose qmp-relay
#      to the armed socket forwards cont, loses every answer from then on and
#      hangs up a second later): asked again, h1 runs: migrated, exit 0
#   m6 h1 -> h2, the companion and h2's QEMU killed after the journal's
#      dest-running, once h2's guest has written; `recover` finds the destination gone: nothing
#      undone (exit 3), h1 stays paused, the lease stays with h2; "the
#      operator" stops h1's stale copy; the last n is the disk's super sector
#      (beyond what h1's RAM knows: h2 did write)
# Then the disk, read back through the appliance (qemu-img dd from
# the iscsi:// or nfs:// URL) and checked sector by sector: the log holds
# records 1..last (nothing lost, torn or misplaced), the super sector holds
# last (no old write replayed over a newer one), the boot sector is intact
# and every other sector of the disk is still zero (nothing written twice or
# by anyone else); the appliance's backing file holds the same bytes.  The
# checks check themselves: the disk check must flag a copy with one write
# lost and one replayed, and a second copy of the VM booted from the written
# disk must stop at once, having found record 1 already there.
# Env: BUILD, CC, RINGSTOR_TEST_ACCEL=tcg; for soak runs WRITER_ROUNDS=N (N - 1
# more migrations there and back after m4) and WRITER_WPT=N (the guest's pace,
# records per PIT period; 0 = as fast as the disk answers).
# Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

netns_init rmw
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || skip "qemu-img/qemu-io (qemu-utils) not installed"
netns_qemu
KINDS="iscsi nfs"
"$QEMU" -drive format=help 2>&1 | grep -qw nfs || { KINDS=iscsi; echo "this QEMU has no nfs block driver: iscsi only"; }
command -v ld >/dev/null || skip "ld (binutils) not installed"
netns_migrate
netns_accel
ok "QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), accel $ACCEL, disks: $KINDS"
netns_hosts
netns_qmp_helper

# ---- the guest: one boot sector per kind, each with its own nonce.
# Where it writes: the preflight fingerprints the disk in 64 KiB samples
# (companion/fingerprint.c: the first 64 KiB, 64 spread evenly, the last) and
# tells a VM's writes from other data by probing the source twice; a guest
# that writes in bursts can slip a write between a destination probe and the
# source's first one, which that check takes for different storage (a false
# "FAIL fingerprint", seen here about once in 40 migrations with the super
# sector at LBA 1).  So the super sector and the log live in the gap after
# the first sample (the boot sector, in it, is never written), on a disk big
# enough for the gap to hold every record of the run.
SIZE_MB=512
SECTORS=$((SIZE_MB << 11))
SUPER=128 LOG0=129 # right after the first sample
GAP_END=$(( ((SECTORS * 512 - 65536) / 65 / 4096 * 4096) / 512 )) # the second sample's first sector
MAXSEQ=$((GAP_END - LOG0))
REGION_MB=$(( (GAP_END * 512 + (1 << 20) - 1) >> 20 )) # read back through the appliance
EXP=$T/export
mkdir -p "$EXP" "$T/j" "$T/h1" "$T/h2"
for kind in $KINDS; do
	lo=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ') hi=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
	eval "NONCE_$kind=\"0x$lo 0x$hi\""
	${CC:-cc} -m32 -c -x assembler-with-cpp -DNONCE_LO=0x$lo -DNONCE_HI=0x$hi -DMAXSEQ=$MAXSEQ -DSUPER=$SUPER -DLOG0=$LOG0 -DWPT=${WRITER_WPT:-8} \
		"$TOP/tests/guest/writer.S" -o "$T/writer-$kind.o" 2>"$T/as.err" || { cat "$T/as.err"; fail "cannot assemble writer.S"; }
	ld -m elf_i386 -Ttext 0x7c00 --oformat binary "$T/writer-$kind.o" -o "$T/writer-$kind.bin" 2>"$T/ld.err" ||
		{ cat "$T/ld.err"; fail "cannot link writer.S"; }
	[ "$(stat -c %s "$T/writer-$kind.bin")" = 512 ] || fail "writer-$kind.bin is not one sector"
	[ "$(od -An -j510 -tx1 "$T/writer-$kind.bin" | tr -d ' ')" = 55aa ] || fail "writer-$kind.bin has no boot signature"
done
IMG_iscsi=$T/lun1.img IMG_nfs=$EXP/vm.img
for kind in $KINDS; do
	eval "img=\$IMG_$kind"
	truncate -s ${SIZE_MB}M "$img"
	dd if="$T/writer-$kind.bin" of="$img" conv=notrunc status=none
done
ok "writer.S built: super sector $SUPER, records 1..$MAXSEQ at most from LBA $LOG0; boot sectors in place"

# ---- the appliance: LUN 1 of $IQN and the NFS export, portmapper on 111
cat >"$T/app.conf" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/lun1.img"; } );
    initiator_address = [ "10.78.0.0/24" ];
} );
CONF
netns_appliance "$NS_APP" "$T/ctl.sock" "$T/state" "$T/daemon.log" 3260 -c "$T/app.conf" \
	--iscsi-portal $APP_ADDR:3260 --nfs-listen $APP_ADDR:2049 --mount-port 20048 --portmap $APP_ADDR:111 \
	--nfs-export "$EXP 10.78.0.0/24(rw,no_root_squash,sync,fsid=7)"
URL_iscsi="iscsi://$APP_ADDR:3260/$IQN/1"
URL_nfs="nfs://$APP_ADDR$EXP/vm.img"
ADM="$RINGSTORADM -C $T/ctl.sock"
LEASE_iscsi="--tid 1 --lun 1"
LEASE_nfs="--lld nfs --export-id 7 --file vm.img"
INIT_H1=iqn.2026-11.test:host1 INIT_H2=iqn.2026-11.test:host2
for kind in $KINDS; do
	eval "lo=\$LEASE_$kind"
	# shellcheck disable=SC2086
	$ADM --mode lease --op show $lo --json >"$T/ls.out" 2>&1
	grep -q '"leases"' "$T/ls.out" || fail "ringstoradm --mode lease --op show $lo: $(tail -1 "$T/ls.out")"
done
ok "appliance: $URL_iscsi and $URL_nfs, leases readable"

# remote_cmd: ringstor-migrate, except for a qmp-relay to the socket named in
# $T/drop-after-cont (m5): that one loses the answer to cont (see above)
REMOTE_CMD=$T/remote-cmd
cat >"$REMOTE_CMD" <<EOF
#!/bin/bash
if [ "\$1" = qmp-relay ] && [ "\$2" = "\$(cat $T/drop-after-cont 2>/dev/null)" ]; then
	exec python3 $T/relay-filter.py "$MIGRATE" "\$@"
fi
exec "$MIGRATE" "\$@"
EOF
chmod +x "$REMOTE_CMD"
cat >"$T/relay-filter.py" <<'EOF'
import os, subprocess, sys, threading, time
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
cut = threading.Event()
def up():
    for line in sys.stdin.buffer:
        if b'"cont"' in line:
            cut.set()
        p.stdin.write(line)
        p.stdin.flush()
        if cut.is_set():
            time.sleep(1)          # the guest runs on the destination
            os._exit(0)            # and the connection drops, unanswered
threading.Thread(target=up, daemon=True).start()
for line in p.stdout:
    if not cut.is_set():
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
os._exit(0)
EOF
PORT_N=$((49200 + $$ % 1000))
cat >"$T/migrate.conf" <<CONF
appliance = "$NS_APP";
rsh = "ip netns exec";
adm = "$ADM";
remote_cmd = "$REMOTE_CMD";
journal_dir = "$T/j";
port = $PORT_N;
hosts = (
  { name = "h1"; rsh_host = "$NS_H1"; address = "$ADDR_H1"; initiator_name = "$INIT_H1";
    nfs_holder = "10.78.0.1"; qmp_dir = "$T/h1"; },
  { name = "h2"; rsh_host = "$NS_H2"; address = "$ADDR_H2"; initiator_name = "$INIT_H2";
    nfs_holder = "10.78.0.2"; qmp_dir = "$T/h2"; }
);
vms = (
  { name = "vm_iscsi"; leases = [ "tid=1,lun=1" ]; memory = "64M"; },
  { name = "vm_nfs"; leases = [ "lld=nfs,export-id=7,file=vm.img" ]; memory = "64M"; }
);
CONF

# ---- helpers
# gstate HOST: "LAST STATUS ERROR MAGIC" of the guest on h1/h2 (see writer.S)
gstate() {
	local out a b c d
	out=$(hmp "$T/$1/$VM.qmp" "xp /4wx 0x7e00") || { echo "- - - -"; return; }
	read -r _ a b c d <<<"${out//$'\r'/}"
	case "$d" in 0x52535754) echo "$((a)) $((b)) $((c)) $d";; *) echo "0 0 0 -";; esac
}
# wait_writes HOST N: the guest on HOST has completed record N (it writes there)
wait_writes() {
	local s end=$((SECONDS + 60))
	while [ $SECONDS -lt $end ]; do
		read -r LAST s _ <<<"$(gstate "$1")"
		[ "$s" = 4 ] && fail "$VM on $1: the guest's write failed (INT 13h status $(gstate "$1" | cut -d' ' -f3))"
		[ "$s" = 3 ] && fail "$VM on $1: the disk is full (the test ran too long)"
		[ "$s" = 5 ] || [ "$s" = 6 ] && guest_dup "$1" "$s"
		[ "$LAST" -ge "$2" ] 2>/dev/null && [ "$s" = 1 ] && return 0
		sleep 0.1
	done
	fail "$VM on $1: record $2 not written in 60 s (guest state: $(gstate "$1"))"
}
# guest_dup HOST STATUS: the guest on HOST found another copy's write
guest_dup() {
	local last err
	read -r last _ err _ <<<"$(gstate "$1")"
	if [ "$2" = 5 ]; then
		fail "$VM on $1: record $((last + 1))'s log sector already holds record $err: another copy of this VM" \
			"wrote the disk ahead of this one (a duplicated execution)"
	fi
	fail "$VM on $1: the super sector holds record $err, not $last: a write was lost, replayed, or made by another copy"
}
lease() { # "HELD HOLDER EPOCH"
	# shellcheck disable=SC2086
	$ADM --mode lease --op show $LEASE --json 2>/dev/null | python3 -c '
import json, sys
l = json.load(sys.stdin)["leases"]
print("%s %s %s" % (str(l[0]["held"]).lower(), l[0]["holder"], l[0]["epoch"]) if l else "false - 0")'
}
# write_old NS ID: a 4 KiB write from that host with that lease identity
# (0 if accepted); it would land on the log, so the check below sees it too
write_old() {
	if [ "$KIND" = iscsi ]; then
		NX "$1" qemu-io --image-opts \
			"driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=$APP_ADDR:3260,file.target=$IQN,file.lun=1,file.initiator-name=$2" \
			-c "write -P 0x5a 1M 4k" >"$T/qemu-io.out" 2>&1
	else
		NX "$1" qemu-io -f raw -c "write -P 0x5a 1M 4k" "$URL" >"$T/qemu-io.out" 2>&1
	fi && ! grep -qi "error\|failed\|denied" "$T/qemu-io.out"
}
mig() { # NAME SRC DST TRANSFER_AT [hook]
	local name=$KIND-$1 src=$2 dst=$3 at=$4 hook=${5:-}
	RINGSTOR_MIGRATE_TEST_HOOK=$hook "$MIGRATE" migrate -c "$T/migrate.conf" --vm "$VM" --src "$src" --dst "$dst" \
		--transfer-at "$at" --no-progress --preflight-timeout 120 >"$T/$name.out" 2>&1
	RC=$?
	echo "--- migrate $name ($src -> $dst, lease moved at $at${hook:+, hook $hook}): exit $RC"
	sed 's/^/    /' "$T/$name.out"
	JOURNAL=$(ls -t "$T/j"/*.journal 2>/dev/null | head -1)
}

cat >"$T/verify.py" <<'EOF'
# verify.py REGION BACKING BOOTSECTOR NONCE_LO NONCE_HI LAST SUPER LOG0 [crashed]:
# the disk holds exactly what writer.S wrote, records 1..LAST (layout:
# writer.S); "crashed": the guest died mid-record (m6), between writing record
# LAST to the log and to the super sector, so SUPER may hold LAST - 1.
# REGION is the start of the disk as the appliance serves it; BACKING the
# appliance's file: its start must be the same bytes, and beyond REGION it
# must hold nothing but zeros (its data extents are read, holes are zero).
import errno, os, struct, sys
region, backing, boot = sys.argv[1], sys.argv[2], sys.argv[3]
lo, hi, last, SUPER, LOG0 = int(sys.argv[4], 16), int(sys.argv[5], 16), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
crashed = sys.argv[9:] == ["crashed"]
data = open(region, "rb").read()
boot = open(boot, "rb").read()
zero = bytes(512)
problems = {}
def bad(kind, lba, what):
    problems.setdefault(kind, []).append("LBA %d: %s" % (lba, what))
def record(s):
    """(nonce_ok, seq, lba, intact) of a record, None if s is not one"""
    if s[:8] != b"RSWRITER":
        return None
    nlo, nhi, seq, lba = struct.unpack_from("<IIII", s, 8)
    fill = struct.unpack_from("<121I", s, 24)
    tail, = struct.unpack_from("<I", s, 508)
    return (nlo, nhi) == (lo, hi), seq, lba, fill == (seq,) * 121 and tail == seq ^ 0xffffffff
with open(backing, "rb") as f:
    if f.read(len(data)) != data:
        bad("the appliance serves other bytes than its file holds", 0, "in the first %d bytes" % len(data))
if data[:512] != boot:
    bad("boot sector changed", 0, "not the writer")
for lba in range(1, len(data) // 512):
    s = data[lba * 512:(lba + 1) * 512]
    want = last if lba == SUPER else (lba - LOG0 + 1 if LOG0 <= lba < LOG0 + last else None)
    if want is None:
        if s != zero:
            r = record(s)
            bad("written beyond the last record (duplicate or stray)", lba,
                "record %d%s" % (r[1], "" if r[0] else " of another run") if r else "non-zero bytes")
        continue
    r = record(s)
    if r is None:
        bad("lost" if s == zero else "overwritten by something else", lba, "want record %d" % want)
    elif not r[0]:
        bad("another run's record", lba, "record %d" % r[1])
    elif r[1] != want and not (crashed and lba == SUPER and r[1] == last - 1):
        bad("wrong record (replayed or misplaced)", lba, "record %d, want %d" % (r[1], want))
    elif r[2] != lba:
        bad("misdirected", lba, "record %d was meant for LBA %d" % (r[1], r[2]))
    elif not r[3]:
        bad("torn", lba, "record %d partly written" % r[1])
if LOG0 + last > len(data) // 512:
    bad("the log runs past the region read back", len(data) // 512, "last %d" % last)
fd = os.open(backing, os.O_RDONLY)
off, size = len(data), os.fstat(fd).st_size
while off < size:
    try:
        start = os.lseek(fd, off, os.SEEK_DATA)
    except OSError as e:
        if e.errno == errno.ENXIO:
            break
        raise
    end = os.lseek(fd, start, os.SEEK_HOLE)
    os.lseek(fd, start, os.SEEK_SET)
    pos = start
    while pos < end:
        chunk = os.read(fd, min(1 << 20, end - pos))
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            i = next(i for i, b in enumerate(chunk) if b)
            bad("written beyond the last record (duplicate or stray)", (pos + i) // 512, "non-zero bytes")
            break
        pos += len(chunk)
    off = end
for kind, where in problems.items():
    print("%s: %d sector(s): %s%s" % (kind, len(where), "; ".join(where[:8]), " ..." if len(where) > 8 else ""))
print("checked %d sectors: super sector %d = record %d, records 1..%d at LBA %d..%d, nothing else written; %d problem(s)"
      % (size // 512, SUPER, last, last, LOG0, LOG0 + last - 1, sum(len(w) for w in problems.values())))
sys.exit(1 if problems else 0)
EOF

# migrate_ok NAME SRC DST TRANSFER_AT EPOCH: a migration while the guest
# writes; records complete during it, the guest writes on at DST, the lease is
# DST's at EPOCH ("any": not checked) and SRC's writes are refused
migrate_ok() {
	local name=$1 src=$2 dst=$3 at=$4 epoch=$5 S0 S1 s
	read -r S0 _ <<<"$(gstate "$src")"
	mig "$name" "$src" "$dst" "$at"
	expect "$KIND $name: exit" $RC 0
	expect "$KIND $name: destination" "$(qstatus "$T/$dst/$VM.qmp")" running
	pid_alive "$T/$src/$VM.qmp.pid" && fail "$KIND $name: the source QEMU still runs"
	local l
	l=$(lease)
	[ "$epoch" = any ] && l=${l% *}" any"
	expect "$KIND $name: lease" "$l" "true $(holder "$dst") $epoch"
	read -r S1 s _ <<<"$(gstate "$dst")"
	expect "$KIND $name: guest status on $dst (1 = writing)" "$s" 1
	[ "$S1" -gt "$S0" ] || fail "$KIND $name: no record completed during the migration ($S0 -> $S1)"
	wait_writes "$dst" $((S1 + 30))
	write_old "$(host_ns "$src")" "$(holder "$src")" &&
		fail "$KIND: after $name a write from $src ($(holder "$src")) was accepted"
	ok "$KIND $name: $src -> $dst (lease moved at $at), records $S0 -> $S1 completed during the migration;" \
		"writing on $dst ($LAST); $src fenced"
}
host_ns() { [ "$1" = h1 ] && echo "$NS_H1" || echo "$NS_H2"; }
holder() { # the host's lease identity for this kind of disk
	case $KIND-$1 in
	iscsi-h1) echo "$INIT_H1";; iscsi-h2) echo "$INIT_H2";;
	nfs-h1) echo 10.78.0.1;; nfs-h2) echo 10.78.0.2;;
	esac
}

# split_cases (the last kind, after m4): m5 and m6 (see the top).  Leaves
# S1_M6 (h1's last record when it stopped) and S2 empty (only the disk knows
# the last record); no QEMU runs afterwards.
split_cases() {
	local e S0 s
	e=$(lease | cut -d' ' -f3)
	# m5: the answer to cont lost; the destination runs: migrated
	echo "$T/h1/$VM.qmp" >"$T/drop-after-cont"
	migrate_ok m5 h2 h1 completed $((e + 1))
	rm -f "$T/drop-after-cont"
	grep -q "asked again, the destination runs: going on" "$T/$KIND-m5.out" ||
		fail "$KIND m5: the lost answer to cont did not happen or was not noticed"
	ok "$KIND m5: the answer to cont lost: h1 runs, asked again: migrated, h2 not resumed"

	# m6: the destination and the companion die after dest-running, once
	# the guest on h2 has written 20 more records (its super sector, read
	# from the appliance's file: the QMP sockets are the companion's;
	# 10 s at most); recover
	cat >"$T/kill-after-writes.sh" <<EOF
#!/bin/bash
n() { python3 -c 'import struct, sys
f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2]) * 512 + 16); print(struct.unpack("<I", f.read(4))[0])' "$img" $SUPER; }
s=\$(n) end=\$((SECONDS + 10))
while [ \$SECONDS -lt \$end ] && [ "\$(n)" -lt \$((s + 20)) ]; do sleep 0.05; done
kill -KILL \$(cat "$T/h2/$VM.qmp.pid")
EOF
	read -r S0 _ <<<"$(gstate h1)"
	mig m6 h1 h2 completed "dest-running:bash $T/kill-after-writes.sh; kill -KILL \$RINGSTOR_MIGRATE_PID"
	expect "$KIND m6: exit" $RC 137
	"$MIGRATE" recover --journal "$JOURNAL" >"$T/$KIND-r6.out" 2>&1
	RC=$?
	sed 's/^/    /' "$T/$KIND-r6.out"
	expect "$KIND m6: recover exit" $RC 3
	grep -q "> finish" "$T/$KIND-r6.out" || fail "$KIND m6: recover did not decide to finish"
	grep -q "NOT ROLLING BACK" "$T/$KIND-r6.out" || fail "$KIND m6: recover did not say why it stops"
	pid_alive "$T/h2/$VM.qmp.pid" && fail "$KIND m6: h2's QEMU runs (the hook did not kill it)"
	expect "$KIND m6: source after recover" "$(qstatus "$T/h1/$VM.qmp")" postmigrate
	expect "$KIND m6: lease" "$(lease)" "true $(holder h2) $((e + 2))"
	read -r S1_M6 s _ <<<"$(gstate h1)"
	[ "$s" = 5 ] || [ "$s" = 6 ] && guest_dup h1 "$s"
	sleep 1
	[ "$(gstate h1 | cut -d' ' -f1)" = "$S1_M6" ] && [ "$(qstatus "$T/h1/$VM.qmp")" = postmigrate ] ||
		fail "$KIND m6: h1's copy runs again"
	# the operator: the VM crashed with h2; h1's copy is stale: stop it
	qmp "$T/h1/$VM.qmp" quit >/dev/null
	for _ in $(seq 100); do pid_alive "$T/h1/$VM.qmp.pid" || break; sleep 0.1; done
	pid_alive "$T/h1/$VM.qmp.pid" && fail "$KIND m6: h1's QEMU did not quit"
	S2=
	ok "$KIND m6: destination gone after it ran: recover undid nothing (exit 3), h1 stayed paused at record" \
		"$S1_M6 (from $S0), the lease stayed with h2"
}

# ---- one VM per kind of disk
run_kind() {
	KIND=$1 VM=vm_$1
	local img nonce E1 S0 S1 S2 s id2 err
	eval "URL=\$URL_$KIND LEASE=\$LEASE_$KIND img=\$IMG_$KIND nonce=\$NONCE_$KIND"
	id2=$(holder h2)
	# (as in test_migrate_qemu.sh and test_migrate_qemu_nfs.sh)
	local opts=(-drive "file=$URL,if=virtio,format=raw,cache=none" -iscsi "initiator-name=$INIT_H1")
	[ "$KIND" = nfs ] && opts=(-drive "file=$URL,if=virtio,format=raw")

	echo "==== $KIND: $URL"
	NX "$NS_H1" "$QEMU" -nodefaults -display none -m 64 -accel "$ACCEL" -name "$VM" \
		"${opts[@]}" \
		-qmp "unix:$T/h1/$VM.qmp,server=on,wait=off" -daemonize -pidfile "$T/h1/$VM.qmp.pid" 2>"$T/$VM.err" ||
		{ cat "$T/$VM.err"; fail "QEMU did not start"; }
	wait_writes h1 30
	ok "$KIND: the guest boots from $URL on h1 and writes (record $LAST)"

	# m1: h1 -> h2 while it writes
	# (the companion acquires the free lease for h1, then moves it: any epoch)
	migrate_ok m1 h1 h2 completed any
	E1=$(lease | cut -d' ' -f3)

	# m2: h2 -> h1, the destination killed after the lease moved: the source resumes
	read -r S0 _ <<<"$(gstate h2)"
	mig m2 h2 h1 completed "lease-transferred:kill -KILL \$(cat $T/h1/$VM.qmp.pid)"
	expect "$KIND m2: exit" $RC 1
	expect "$KIND m2: source" "$(qstatus "$T/h2/$VM.qmp")" running
	pid_alive "$T/h1/$VM.qmp.pid" && fail "$KIND m2: the destination still runs"
	expect "$KIND m2: lease" "$(lease)" "true $id2 $((E1 + 2))"
	read -r S1 _ <<<"$(gstate h2)"
	wait_writes h2 $((S1 + 30))
	write_old "$NS_H1" "$(holder h1)" && fail "$KIND: after m2 a write from h1 ($(holder h1)) was accepted"
	ok "$KIND m2: destination killed after the lease moved: rolled back, h2 writes on ($S0 -> $LAST); h1 fenced"

	# m3: h2 -> h1, the lease moved at pre-switchover
	migrate_ok m3 h2 h1 pre-switchover $((E1 + 3))

	# m4: h1 -> h2 (pre-switchover), the companion killed right after the
	# lease moved (the source waits at pre-switchover); recover finishes it
	read -r S0 _ <<<"$(gstate h1)"
	mig m4 h1 h2 pre-switchover "lease-transferred:kill -KILL \$RINGSTOR_MIGRATE_PID"
	expect "$KIND m4: exit" $RC 137
	"$MIGRATE" recover --journal "$JOURNAL" >"$T/$KIND-r4.out" 2>&1
	RC=$?
	sed 's/^/    /' "$T/$KIND-r4.out"
	expect "$KIND m4: recover exit" $RC 0
	grep -q "> finish" "$T/$KIND-r4.out" || fail "$KIND m4: recover did not decide to finish"
	expect "$KIND m4: destination" "$(qstatus "$T/h2/$VM.qmp")" running
	pid_alive "$T/h1/$VM.qmp.pid" && fail "$KIND m4: the source QEMU still runs"
	expect "$KIND m4: lease" "$(lease)" "true $id2 $((E1 + 4))"
	read -r S1 s _ <<<"$(gstate h2)"
	expect "$KIND m4: guest status on h2" "$s" 1
	wait_writes h2 $((S1 + 30))
	ok "$KIND m4: companion killed after the lease moved, recover finished: h2 writes on ($S0 -> $LAST)"

	# more rounds there and back (WRITER_ROUNDS, for soak runs)
	local r e=$((E1 + 4))
	for r in $(seq 2 "${WRITER_ROUNDS:-1}"); do
		migrate_ok "r$r-a" h2 h1 completed $((e + 1))
		migrate_ok "r$r-b" h1 h2 pre-switchover $((e + 2))
		e=$((e + 2))
	done

	local nmig=$((1 + 2 * ${WRITER_ROUNDS:-1}))
	if [ "$KIND" = "${KINDS##* }" ]; then
		split_cases
		nmig=$((nmig + 2))
	else
		# stop it: a key; the guest finishes its record and halts
		qmp "$T/h2/$VM.qmp" send-key '{"keys": [{"type": "qcode", "data": "ret"}]}' >/dev/null || fail "send-key"
		for _ in $(seq 50); do
			read -r S2 s _ <<<"$(gstate h2)"
			[ "$s" = 2 ] && break
			sleep 0.1
		done
		expect "$KIND: guest status after the key (2 = stopped)" "$s" 2
		qmp "$T/h2/$VM.qmp" quit >/dev/null
		for _ in $(seq 100); do pid_alive "$T/h2/$VM.qmp.pid" || break; sleep 0.1; done
		pid_alive "$T/h2/$VM.qmp.pid" && fail "$KIND: QEMU did not quit"
	fi

	# the disk, read back through the appliance (the region the guest writes in)
	rm -f "$T/$KIND.read"
	NX "$NS_H1" qemu-img dd -f raw -O raw bs=1M count=$REGION_MB if="$URL" of="$T/$KIND.read" 2>"$T/dd.err" ||
		{ cat "$T/dd.err"; fail "$KIND: qemu-img dd from $URL"; }
	local crashed=
	if [ -z "$S2" ]; then
		# after m6 only the disk knows the last record: the super
		# sector's, or the next one if the guest died after writing it
		# to the log (verify.py then checks that records 1..S2 are all
		# there, once, and nothing else)
		S2=$(python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read(); SUPER, LOG0 = int(sys.argv[2]), int(sys.argv[3])
def seq(lba):
    s = d[lba * 512:(lba + 1) * 512]
    return struct.unpack_from("<I", s, 16)[0] if s[:8] == b"RSWRITER" else 0
n = seq(SUPER)
print(n + 1 if n and seq(LOG0 + n) == n + 1 else n)' "$T/$KIND.read" $SUPER $LOG0)
		crashed=crashed
		[ "$S2" -gt "$S1_M6" ] ||
			fail "$KIND m6: the disk's last record $S2 is not beyond h1's $S1_M6: h2 did not write (the case proves nothing)"
		ok "$KIND m6: h2 wrote records $((S1_M6 + 1))..$S2 before it died, which h1's memory does not know"
	fi
	# shellcheck disable=SC2086
	python3 "$T/verify.py" "$T/$KIND.read" "$img" "$T/writer-$KIND.bin" $nonce "$S2" $SUPER $LOG0 $crashed >"$T/$KIND.verify" 2>&1
	RC=$?
	sed 's/^/    /' "$T/$KIND.verify"
	[ $RC -eq 0 ] || fail "$KIND: the disk does not hold exactly records 1..$S2"
	# the check itself must see a lost write and a replayed one (on the copy)
	python3 - "$T/$KIND.read" "$S2" $SUPER $LOG0 <<'PY'
import sys
f = open(sys.argv[1], "r+b"); last, SUPER, LOG0 = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
f.seek((LOG0 + last // 2) * 512); f.write(bytes(512))                     # record last/2 + 1: lost
f.seek(LOG0 * 512); old = f.read(512); f.seek(SUPER * 512); f.write(old) # record 1 replayed over SUPER
PY
	# shellcheck disable=SC2086
	python3 "$T/verify.py" "$T/$KIND.read" "$img" "$T/writer-$KIND.bin" $nonce "$S2" $SUPER $LOG0 >"$T/$KIND.verify2" 2>&1 &&
		fail "$KIND: the check passed a disk with a write lost and one replayed"
	grep -q "^lost: 1 sector" "$T/$KIND.verify2" && grep -q "^wrong record.*LBA $SUPER: record 1, want $S2" "$T/$KIND.verify2" ||
		{ cat "$T/$KIND.verify2"; fail "$KIND: the check did not name the lost and the replayed write"; }
	rm -f "$T/$KIND.read"
	ok "$KIND: $S2 records over $nmig migrations and a rollback, none lost, torn," \
		"replayed or duplicated; the appliance serves what its file holds"

	# and a second copy of the VM (booted again from this disk) notices at
	# once (for the first kind only: the guest's check is the same for both)
	[ "$KIND" = "${KINDS%% *}" ] || return 0
	NX "$NS_H1" "$QEMU" -nodefaults -display none -m 64 -accel "$ACCEL" -name "$VM" \
		"${opts[@]}" \
		-qmp "unix:$T/h1/$VM.qmp,server=on,wait=off" -daemonize -pidfile "$T/h1/$VM.qmp.pid" 2>"$T/$VM.err" ||
		{ cat "$T/$VM.err"; fail "QEMU did not start"; }
	local end=$((SECONDS + 60))
	while [ $SECONDS -lt $end ]; do
		read -r _ s err _ <<<"$(gstate h1)"
		[ "$s" = 0 ] || break
		sleep 0.2
	done
	expect "$KIND: the second copy's status and error (5 = found another copy's record)" "$s $err" "5 1"
	qmp "$T/h1/$VM.qmp" quit >/dev/null
	ok "$KIND: a second copy of the VM finds record 1 already written and stops (the guest's own check works)"
}

for kind in $KINDS; do
	run_kind "$kind"
done
daemon_alive || fail "ringstord died"
grep -E "runtime error|AddressSanitizer" "$T/daemon.log" && fail "sanitizer report"
ok "writer migration cases passed ($KINDS, accel $ACCEL)"
