#!/usr/bin/env bash
# test_migrate_qemu.sh - `ringstor-migrate migrate` and `recover` with real QEMU
# processes: a firmware-only guest (no kernel: cheap under KVM and TCG) whose
# disk is a ringstord LUN over iscsi://, live-migrated between two "hosts"
# (network namespaces) with the image lease moving on the appliance.
#
#   ns H1 (10.78.0.1) --veth--+                       +--veth-- ns H2 (10.78.0.2)
#                             br0 in ns APP (10.78.0.10: ringstord)
#   H1 10.77.0.1/24 <------- veth pair (migration stream) -------> H2 10.77.0.2/24
#
# Cases (each checks which QEMU runs, who holds the lease at which epoch,
# and the journal):
#   0. the preflight fails: nothing is touched
#   1. H1 -> H2 succeeds; a second recover says there is nothing to do
#   2. H2 -> H1, the destination killed as the migration starts: rolled back
#   3. H2 -> H1, the appliance refuses the lease transfer: rolled back
#   4. H2 -> H1, the destination killed at the switchover, after the lease
#      moved: the lease comes back (epoch + 2), the source resumes
#   5. H2 -> H1, the companion killed right after the lease moved:
#      `recover` finishes the migration
#   6. H1 -> H2, the companion killed with the source stopped, before the
#      transfer: `recover` undoes it
#   7. H1 -> H2, the companion killed between transfer-begin and the
#      transfer: `recover` asks the appliance, then undoes it
#   8. the lease is held by a third party: the preflight fails
# With the appliance's leases in ringstord, also: after a migration a write
# from the old host's initiator is refused, one from the new host's succeeds.
# If ringstoradm has no working --mode lease yet, a fake ringstoradm (a file
# per lease, no fencing) stands in and the fencing checks are skipped.
# Everything runs twice: the lease moved after QEMU reports the migration
# completed (the default), then at pre-switchover (--transfer-at).
# Env: BUILD, CC, RINGSTOR_TEST_ACCEL=tcg.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

netns_init rmq
netns_qemu install
netns_migrate
netns_accel
ok "QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), accel $ACCEL, lease transferred at: ${TRANSFER_AT:-completed}"
netns_hosts

# ---- the appliance
mkdir -p "$T/j"
cat >"$T/app.conf" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/lun1.img"; create = true; size = "32M"; } );
    initiator_address = [ "10.78.0.0/24" ];
} );
CONF
netns_appliance "$NS_APP" "$T/ctl.sock" "$T/state" "$T/daemon.log" 3260 -c "$T/app.conf" --iscsi-portal 10.78.0.10:3260
URL="iscsi://10.78.0.10:3260/$IQN/1"
ok "appliance listening on 10.78.0.10:3260"

# ---- ringstoradm: the real one if its leases work, else a stand-in.
# Either way through a wrapper that can be told to refuse transfers.
REAL_ADM="$RINGSTORADM -C $T/ctl.sock"
REAL_LEASE=0
if out=$($REAL_ADM --mode lease --op show --json 2>&1) && echo "$out" | grep -q '"leases"' &&
	$REAL_ADM --mode lease --op acquire --tid 1 --lun 1 --holder iqn.2026-11.test:probe >/dev/null 2>&1 &&
	e=$($REAL_ADM --mode lease --op show --tid 1 --lun 1 --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["leases"][0]["epoch"])') &&
	$REAL_ADM --mode lease --op release --tid 1 --lun 1 --epoch "$e" >/dev/null 2>&1; then
	REAL_LEASE=1
fi
cat >"$T/fakeadm" <<'EOF'
#!/bin/bash
# Stand-in for `ringstoradm --mode lease` (no fencing): $LEASE_DIR/lease-TID-LUN
# holds "held holder epoch"; same exit codes (116 stale epoch).
op= tid= lun= holder= epoch=
while [ $# -gt 0 ]; do case $1 in
	--op) op=$2; shift;; --tid) tid=$2; shift;; --lun) lun=$2; shift;;
	--holder) holder=$2; shift;; --epoch) epoch=$2; shift;; -C|--mode) shift;; esac; shift; done
f=$LEASE_DIR/lease-$tid-$lun
read -r held cur ep <"$f" 2>/dev/null || { held=false; cur=""; ep=0; }
case $op in
show) [ "$ep" = 0 ] && { echo '{"leases": []}'; exit 2; }
	echo "{\"leases\": [{\"lld\": \"iscsi\", \"tid\": $tid, \"lun\": $lun, \"held\": $held, \"holder\": \"$cur\", \"epoch\": $ep}]}";;
acquire) [ "$held" = true ] && [ "$cur" != "$holder" ] && { echo "held by $cur" >&2; exit 16; }
	[ "$held" = true ] || ep=$((ep + 1)); echo "true $holder $ep" >"$f"; echo "$ep";;
transfer) [ "$held" = true ] && [ "$epoch" = "$ep" ] || { echo "stale epoch" >&2; exit 116; }
	ep=$((ep + 1)); echo "true $holder $ep" >"$f"; echo "$ep";;
release) [ "$epoch" = "$ep" ] || exit 116; echo "false $cur $ep" >"$f";;
esac
EOF
chmod +x "$T/fakeadm"
if [ $REAL_LEASE -eq 1 ]; then
	INNER_ADM=$REAL_ADM
	ok "leases: ringstoradm --mode lease (enforced by ringstord)"
else
	INNER_ADM="env LEASE_DIR=$T $T/fakeadm"
	ok "leases: ringstoradm --mode lease not working here ($(echo "$out" | tail -1)); using a stand-in, no fencing checks"
fi
cat >"$T/adm" <<EOF
#!/bin/bash
# ringstoradm wrapper: refuses transfers while $T/refuse-transfer exists.
case " \$* " in *" --op transfer "*) [ -e "$T/refuse-transfer" ] && { echo "transfer refused (test)" >&2; exit 5; };; esac
exec $INNER_ADM "\$@"
EOF
chmod +x "$T/adm"

# ---- helpers
netns_qmp_helper
lease() { # prints "HELD HOLDER EPOCH"
	$INNER_ADM --mode lease --op show --tid 1 --lun 1 --json 2>/dev/null | python3 -c '
import json, sys
l = json.load(sys.stdin)["leases"]
print("%s %s %s" % (str(l[0]["held"]).lower(), l[0]["holder"], l[0]["epoch"]) if l else "false - 0")'
}
INIT_H1=iqn.2026-11.test:host1 INIT_H2=iqn.2026-11.test:host2
# start_vm NS NAME INITIATOR: the first QEMU of the VM, on host NS
start_vm() {
	echo "$QEMU -nodefaults -display none -m 64 -accel $ACCEL -name vm1 -drive file=$URL,if=virtio,format=raw,cache=none" \
		"-qmp unix:$T/$2.qmp,server=on,wait=off -iscsi initiator-name=$3" >"$T/$2.cmdline"
	# shellcheck disable=SC2046
	NX "$1" $(cat "$T/$2.cmdline") -daemonize -pidfile "$T/$2.pid" 2>"$T/$2.err" || { cat "$T/$2.err"; fail "QEMU $2 did not start"; }
	[ "$(qstatus "$T/$2.qmp")" = running ] || fail "QEMU $2 is not running"
}
TRANSFER_AT=${TRANSFER_AT:-completed}
PORT_N=$((49200 + $$ % 1000))
EXTRA_ARGS=()
# mig NAME SRC_NS DST_NS SRC_VM DST_VM DST_INIT DST_ADDR [hook]: output in $T/NAME.out, exit status in RC
mig() {
	local name=$1 src=$2 dst=$3 svm=$4 dvm=$5 dinit=$6 daddr=$7 hook=${8:-}
	PORT_N=$((PORT_N + 1))
	mkdir -p "$T/j/$name"
	RINGSTOR_MIGRATE_TEST_HOOK=$hook "$MIGRATE" migrate --source "$src" --dest "$dst" --rsh 'ip netns exec' \
		--remote-cmd "$MIGRATE" --appliance "$NS_APP" --adm "$T/adm" --lease tid=1,lun=1 \
		--qemu-cmdline "$T/$svm.cmdline" --qmp-dest "$T/$dvm.qmp" --dest-pidfile "$T/$dvm.pid" \
		--dest-holder "$dinit" --dest-addr "$daddr" --port $PORT_N --journal "$T/j/$name" \
		--no-progress --preflight-timeout 120 --transfer-at "$TRANSFER_AT" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} >"$T/$name.out" 2>&1
	RC=$?
	echo "--- migrate $name ($src -> $dst${hook:+, hook $hook}): exit $RC"
	sed 's/^/    /' "$T/$name.out"
	JOURNAL=$(ls "$T/j/$name"/*.journal 2>/dev/null | head -1)
	[ -n "$JOURNAL" ] || fail "$name: no journal written"
	# the cmdline of the new QEMU, for the next migration
	[ -s "$T/$dvm.cmdline" ] || sed "s|$T/$svm.qmp|$T/$dvm.qmp|; s|initiator-name=[^ ]*|initiator-name=$dinit|" \
		"$T/$svm.cmdline" >"$T/$dvm.cmdline"
}
steps() { python3 -c 'import json,sys; print(" ".join(json.loads(l)["step"] for l in open(sys.argv[1]) if l.strip()))' "$1"; }
has_steps() { # JOURNAL STEP...: the steps appear in this order (others may come between)
	python3 - "$@" <<'PY' || fail "journal steps '$(steps "$1")' lack, in order: ${*:2}"
import json, sys
got = [json.loads(l)["step"] for l in open(sys.argv[1]) if l.strip()]
pos = 0
for want in sys.argv[2:]:
    while pos < len(got) and got[pos] != want:
        pos += 1
    if pos == len(got):
        sys.exit(1)
    pos += 1
PY
}
last_step() { steps "$1" | awk '{print $NF}'; }
# write_as INITIATOR: 0 if a 4 KiB write at 1 MiB succeeds with that initiator name
write_as() {
	local ns=$1 init=$2
	NX "$ns" qemu-io --image-opts \
		"driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=10.78.0.10:3260,file.target=$IQN,file.lun=1,file.initiator-name=$init" \
		-c "write -P 0x5a 1M 4k" >"$T/qemu-io.out" 2>&1 && ! grep -qi "error\|failed" "$T/qemu-io.out"
}

# ==== 1. H1 -> H2
start_vm "$NS_H1" a "$INIT_H1"
ok "VM running on $NS_H1 ($INIT_H1), disk $URL"
LEASE0=$(lease)
# ==== 0. a failing preflight (a second disk the hosts cannot open): nothing moves
EXTRA_ARGS=(--disk "iscsi://10.78.0.10:3260/$IQN/9")
mig m0 "$NS_H1" "$NS_H2" a b "$INIT_H2" $ADDR_H2
EXTRA_ARGS=()
expect "m0: exit" $RC 1
grep -q "^FAIL path\[0\]" "$T/m0.out" || fail "m0: the preflight did not fail on the missing LUN"
expect "m0: last journal step" "$(last_step "$JOURNAL")" aborted
grep -q '"step":"lease-held"\|"step":"dest-started"' "$JOURNAL" && fail "m0: something moved after a failed preflight"
expect "m0: source" "$(qstatus "$T/a.qmp")" running
pid_alive "$T/b.pid" && fail "m0: a destination QEMU was started"
expect "m0: lease" "$(lease)" "$LEASE0"
rm -f "$T/b.cmdline"
ok "0. preflight FAIL: not migrated, journal 'aborted', no lease taken, no destination started"

mig m1 "$NS_H1" "$NS_H2" a b "$INIT_H2" $ADDR_H2
[ $RC -eq 0 ] || fail "m1: migrate exit $RC"
grep -q "^PASS identity\[0\]" "$T/m1.out" || fail "m1: the preflight did not compare the disk"
grep -q "^PASS lease: tid=1,lun=1 free" "$T/m1.out" || fail "m1: the preflight's lease check"
expect "m1: destination" "$(qstatus "$T/b.qmp")" running
pid_alive "$T/a.pid" && fail "m1: the source QEMU still runs"
read -r held holder epoch <<<"$(lease)"
expect "m1: lease holder" "$held $holder" "true $INIT_H2"
E1=$epoch
if [ "$TRANSFER_AT" = completed ]; then
	has_steps "$JOURNAL" begin preflight lease-held source-checked dest-started dest-listening migrating completed \
		transfer-point transfer-begin lease-transferred dest-running source-stopped done
else
	has_steps "$JOURNAL" begin preflight lease-held source-checked dest-started dest-listening migrating \
		transfer-point transfer-begin lease-transferred switchover completed dest-running source-stopped done
fi
grep -q '"step":"lease-held".*"acquired":true' "$JOURNAL" || fail "m1: the lease was not acquired for the source"
E0=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["step"] == "lease-held": print(r["epoch"])' "$JOURNAL")
expect "m1: epoch after the transfer" "$E1" "$((E0 + 1))"
grep -q "downtime" "$T/m1.out" || fail "m1: no downtime reported"
OUT=$("$MIGRATE" recover --journal "$JOURNAL" 2>&1) || fail "m1: recover on a finished journal: $OUT"
echo "$OUT" | grep -q "> nothing" || fail "m1: recover should have nothing to do: $OUT"
ok "1. $NS_H1 -> $NS_H2: destination runs, source gone, lease $INIT_H2 epoch $E0 -> $E1, journal complete"
if [ $REAL_LEASE -eq 1 ]; then
	write_as "$NS_H1" "$INIT_H1" && fail "a write from the old holder $INIT_H1 was accepted"
	write_as "$NS_H2" "$INIT_H2" || { cat "$T/qemu-io.out"; fail "a write from the new holder $INIT_H2 was refused"; }
	ok "fencing: a write as $INIT_H1 refused, as $INIT_H2 accepted"
fi

# ==== 2. H2 -> H1, the destination killed as the migration starts
mig m2 "$NS_H2" "$NS_H1" b c "$INIT_H1" $ADDR_H1 "migrating:kill -KILL \$(cat $T/c.pid)"
expect "m2: exit" $RC 1
expect "m2: source" "$(qstatus "$T/b.qmp")" running
pid_alive "$T/c.pid" && fail "m2: the destination still runs"
expect "m2: lease" "$(lease)" "true $INIT_H2 $E1"
expect "m2: last journal step" "$(last_step "$JOURNAL")" rolled-back
has_steps "$JOURNAL" migrating rollback dest-stopped source-resumed rolled-back
ok "2. destination killed during the migration: rolled back, source runs, lease unchanged"

# ==== 3. H2 -> H1, the appliance refuses the transfer
touch "$T/refuse-transfer"
mig m3 "$NS_H2" "$NS_H1" b c "$INIT_H1" $ADDR_H1
rm -f "$T/refuse-transfer"
expect "m3: exit" $RC 1
expect "m3: source" "$(qstatus "$T/b.qmp")" running
pid_alive "$T/c.pid" && fail "m3: the destination still runs"
expect "m3: lease" "$(lease)" "true $INIT_H2 $E1"
has_steps "$JOURNAL" transfer-point transfer-begin rollback dest-stopped source-resumed rolled-back
grep -q "refused" "$T/m3.out" || fail "m3: the reason is not reported"
ok "3. lease transfer refused: rolled back at the switchover, source runs, lease unchanged"

# ==== 4. H2 -> H1, the destination killed at the switchover, after the lease moved
mig m4 "$NS_H2" "$NS_H1" b c "$INIT_H1" $ADDR_H1 "lease-transferred:kill -KILL \$(cat $T/c.pid)"
expect "m4: exit" $RC 1
expect "m4: source" "$(qstatus "$T/b.qmp")" running
pid_alive "$T/c.pid" && fail "m4: the destination still runs"
expect "m4: lease" "$(lease)" "true $INIT_H2 $((E1 + 2))"
has_steps "$JOURNAL" lease-transferred rollback dest-stopped lease-returned source-resumed rolled-back
E1=$((E1 + 2))
ok "4. destination killed after the lease transfer: lease handed back (epoch $E1), source runs"

# ==== 5. H2 -> H1, the companion killed right after the lease moved; recover finishes
mig m5 "$NS_H2" "$NS_H1" b c "$INIT_H1" $ADDR_H1 "lease-transferred:kill -KILL \$RINGSTOR_MIGRATE_PID"
expect "m5: exit" $RC 137
expect "m5: last journal step" "$(last_step "$JOURNAL")" lease-transferred
"$MIGRATE" recover --journal "$T/j/m5" >"$T/r5.out" 2>&1
RC=$?
sed 's/^/    /' "$T/r5.out"
expect "m5: recover exit" $RC 0
grep -q "> finish" "$T/r5.out" || fail "m5: recover did not decide to finish"
expect "m5: destination" "$(qstatus "$T/c.qmp")" running
pid_alive "$T/b.pid" && fail "m5: the source QEMU still runs"
expect "m5: lease" "$(lease)" "true $INIT_H1 $((E1 + 1))"
has_steps "$JOURNAL" lease-transferred recover completed dest-running source-stopped done
E1=$((E1 + 1))
ok "5. companion killed after the lease transfer: recover finished, $NS_H1 runs, lease epoch $E1"

# ==== 6. H1 -> H2, the companion killed at the transfer point (source stopped); recover undoes
rm -f "$T/d.cmdline"
mig m6 "$NS_H1" "$NS_H2" c d "$INIT_H2" $ADDR_H2 "transfer-point:kill -KILL \$RINGSTOR_MIGRATE_PID"
expect "m6: exit" $RC 137
if [ "$TRANSFER_AT" = completed ]; then
	expect "m6: source paused" "$(qstatus "$T/c.qmp")" postmigrate
else
	expect "m6: source paused" "$(qstatus "$T/c.qmp")" finish-migrate
fi
"$MIGRATE" recover --journal "$JOURNAL" >"$T/r6.out" 2>&1
RC=$?
sed 's/^/    /' "$T/r6.out"
expect "m6: recover exit" $RC 0
grep -q "> undo" "$T/r6.out" || fail "m6: recover did not decide to undo"
expect "m6: source" "$(qstatus "$T/c.qmp")" running
pid_alive "$T/d.pid" && fail "m6: the destination still runs"
expect "m6: lease" "$(lease)" "true $INIT_H1 $E1"
expect "m6: last journal step" "$(last_step "$JOURNAL")" rolled-back
ok "6. companion killed at the transfer point: recover undid it, source runs, lease unchanged"

# ==== 7. H1 -> H2, the companion killed between transfer-begin and the transfer
mig m7 "$NS_H1" "$NS_H2" c d "$INIT_H2" $ADDR_H2 "transfer-begin:kill -KILL \$RINGSTOR_MIGRATE_PID"
expect "m7: exit" $RC 137
"$MIGRATE" recover --journal "$JOURNAL" >"$T/r7.out" 2>&1
RC=$?
sed 's/^/    /' "$T/r7.out"
expect "m7: recover exit" $RC 0
grep -q "> ask-appliance" "$T/r7.out" || fail "m7: recover did not ask the appliance"
expect "m7: source" "$(qstatus "$T/c.qmp")" running
pid_alive "$T/d.pid" && fail "m7: the destination still runs"
expect "m7: lease" "$(lease)" "true $INIT_H1 $E1"
ok "7. companion killed during the transfer: the appliance said not moved, recover undid it"

# ==== 8. the lease is held by a third party: the preflight fails, nothing moves
$INNER_ADM --mode lease --op transfer --tid 1 --lun 1 --holder iqn.2026-11.test:other --epoch "$E1" >/dev/null ||
	fail "cannot hand the lease to a third party"
mig m8 "$NS_H1" "$NS_H2" c d "$INIT_H2" $ADDR_H2
expect "m8: exit" $RC 1
grep -q "^FAIL lease: tid=1,lun=1 held by iqn.2026-11.test:other" "$T/m8.out" || fail "m8: no lease FAIL"
expect "m8: last journal step" "$(last_step "$JOURNAL")" aborted
expect "m8: source" "$(qstatus "$T/c.qmp")" running
pid_alive "$T/d.pid" && fail "m8: a destination QEMU was started"
$INNER_ADM --mode lease --op transfer --tid 1 --lun 1 --holder "$INIT_H1" --epoch $((E1 + 1)) >/dev/null ||
	fail "cannot take the lease back"
ok "8. lease held by someone else: preflight FAIL lease, not migrated"

# a recover with nothing left
OUT=$("$MIGRATE" recover --journal "$JOURNAL" 2>&1) || fail "recover on a rolled-back journal: $OUT"
echo "$OUT" | grep -q "> nothing" || fail "recover should have nothing to do: $OUT"
daemon_alive || fail "ringstord died"
ok "all migration cases passed (lease transferred at: $TRANSFER_AT)"
if [ -z "${RSM_NESTED:-}" ]; then
	echo "==== again, with the lease transferred at pre-switchover"
	RSM_NESTED=1 TRANSFER_AT=pre-switchover bash "$0" 2>&1 | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || fail "the --transfer-at pre-switchover run failed"
fi
