#!/usr/bin/env bash
# test_migrate_qemu_nfs.sh - the end-to-end migration test's second run
# (issue 5): the VM's disk on an NFS export of ringstord's gateway
# (nfs://, QEMU's libnfs driver through the built-in portmapper on port
# 111 of the appliance's namespace), the image lease an NFS file lease
# (`ringstoradm --lld nfs --mode lease ... --export-id N --file vm.img`)
# held by the hosts' storage addresses; and everything driven by the host
# configuration file (-c FILE, --vm vm1 --src h1 --dst h2: the QMP sockets
# from each host's qmp_dir, the source's command line read from its pid
# file, the lease and its holders from the configuration).
#
#   ns H1 (10.78.0.1) --veth--+                       +--veth-- ns H2 (10.78.0.2)
#                             br0 in ns APP (10.78.0.10: ringstord, NFS + portmapper)
#   H1 10.77.0.1/24 <------- veth pair (migration stream) -------> H2 10.77.0.2/24
#
# Cases: preflight --vm passes; h1 -> h2 migrates, the lease moves to
# 10.78.0.2; a write from H1 is refused (NFS3ERR_ACCES) and one from H2
# succeeds; h2 -> h1 with the destination killed after the lease moved
# rolls back (lease epoch + 2, the VM runs on h2); h2 -> h1 succeeds.
# Env: BUILD, CC, RINGSTOR_TEST_ACCEL=tcg.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

netns_init rmn
command -v qemu-io >/dev/null || skip "qemu-io (qemu-utils) not installed"
netns_qemu
"$QEMU" -drive format=help 2>&1 | grep -qw nfs || skip "this QEMU has no nfs block driver"
netns_migrate
netns_accel
ok "QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), accel $ACCEL, disk on nfs://"
netns_hosts

# ---- the appliance: NFS gateway with its portmapper on 111 (QEMU's nfs
# driver asks the portmapper; the namespace makes 111 ours)
EXP=$T/export
mkdir -p "$EXP" "$T/j" "$T/h1" "$T/h2"
truncate -s 32M "$EXP/vm.img"
: >"$T/app.conf"
netns_appliance "$NS_APP" "$T/ctl.sock" "$T/state" "$T/daemon.log" 2049 -c "$T/app.conf" \
	--iscsi-portal 10.78.0.10:3260 --nfs-listen 10.78.0.10:2049 --mount-port 20048 --portmap 10.78.0.10:111 \
	--nfs-export "$EXP 10.78.0.0/24(rw,no_root_squash,sync,fsid=7)"
URL="nfs://10.78.0.10$EXP/vm.img"
NX "$NS_H1" qemu-img info "$URL" >"$T/qi.out" 2>&1 || { cat "$T/qi.out"; fail "qemu-img info $URL from $NS_H1"; }
ok "appliance: NFS export $EXP on 10.78.0.10 (portmapper on 111); qemu-img sees $URL"

ADM="$RINGSTORADM -C $T/ctl.sock"
EID=7 # the export's fsid: its id for --export-id
LEASE_OBJ="--lld nfs --export-id $EID --file vm.img"
$ADM --mode lease --op show $LEASE_OBJ --json >"$T/ls.out" 2>&1
grep -q '"leases"' "$T/ls.out" || skip "ringstoradm has no NFS leases here: $(tail -1 "$T/ls.out")"
lease() { # "HELD HOLDER EPOCH"
	$ADM --mode lease --op show $LEASE_OBJ --json 2>/dev/null | python3 -c '
import json, sys
l = json.load(sys.stdin)["leases"]
print("%s %s %s" % (str(l[0]["held"]).lower(), l[0]["holder"], l[0]["epoch"]) if l else "false - 0")'
}
ok "NFS lease object: export-id $EID file vm.img"

# ---- the host configuration
PORT_N=$((49200 + $$ % 1000))
cat >"$T/migrate.conf" <<CONF
# ringstor-migrate host configuration for this test
appliance = "$NS_APP";
rsh = "ip netns exec";
adm = "$ADM";
remote_cmd = "$MIGRATE";
journal_dir = "$T/j";
port = $PORT_N;
hosts = (
  { name = "h1"; rsh_host = "$NS_H1"; address = "10.77.0.1"; nfs_holder = "10.78.0.1"; qmp_dir = "$T/h1"; },
  { name = "h2"; rsh_host = "$NS_H2"; address = "10.77.0.2"; nfs_holder = "10.78.0.2"; qmp_dir = "$T/h2"; }
);
vms = (
  { name = "vm1"; leases = [ "lld=nfs,export-id=$EID,file=vm.img" ]; memory = "64M"; }
);
CONF

netns_qmp_helper
# write_from NS: 0 if a 4 KiB write through nfs:// from that host succeeds
write_from() {
	NX "$1" qemu-io -f raw -c "write -P 0x5a 1M 4k" "$URL" >"$T/qemu-io.out" 2>&1 &&
		! grep -qi "error\|failed\|denied" "$T/qemu-io.out"
}
mig() { # NAME SRC DST [hook]
	local name=$1 src=$2 dst=$3 hook=${4:-}
	RINGSTOR_MIGRATE_TEST_HOOK=$hook "$MIGRATE" migrate -c "$T/migrate.conf" --vm vm1 --src "$src" --dst "$dst" \
		--no-progress --preflight-timeout 120 >"$T/$name.out" 2>&1
	RC=$?
	echo "--- migrate $name ($src -> $dst${hook:+, hook $hook}): exit $RC"
	sed 's/^/    /' "$T/$name.out"
	JOURNAL=$(ls -t "$T/j"/*.journal 2>/dev/null | head -1)
}

# ==== the VM on h1: started as an admin would, its QMP socket in h1's qmp_dir
NX "$NS_H1" "$QEMU" -nodefaults -display none -m 64 -accel "$ACCEL" -name vm1 \
	-drive "file=$URL,if=virtio,format=raw" -qmp "unix:$T/h1/vm1.qmp,server=on,wait=off" \
	-daemonize -pidfile "$T/h1/vm1.qmp.pid" 2>"$T/vm.err" || { cat "$T/vm.err"; fail "QEMU did not start"; }
expect "VM on h1" "$(qstatus "$T/h1/vm1.qmp")" running
ok "VM running on $NS_H1, disk $URL"

# ==== configuration mistakes are reported with file and line, nothing runs
sed 's/nfs_holder = "10.78.0.2"/nfs_holdr = "10.78.0.2"/' "$T/migrate.conf" >"$T/bad.conf"
out=$("$MIGRATE" migrate -c "$T/bad.conf" --vm vm1 --src h1 --dst h2 2>&1)
expect "bad configuration: exit" $? 2
echo "$out" | grep -q "bad.conf:[0-9]*: unknown host setting 'nfs_holdr'" || fail "bad configuration: $out"
out=$("$MIGRATE" preflight -c "$T/migrate.conf" --vm vm9 --src h1 --dst h2 2>&1)
expect "unknown VM: exit" $? 2
echo "$out" | grep -q "no VM named 'vm9' (vm1)" || fail "unknown VM: $out"
ok "configuration errors: FILE:LINE and the setting named; an unknown --vm lists the known ones"

# ==== preflight from the configuration
"$MIGRATE" preflight -c "$T/migrate.conf" --vm vm1 --src h1 --dst h2 --disk "$URL" >"$T/pf.out" 2>&1
RC=$?
sed 's/^/    /' "$T/pf.out"
expect "preflight exit" $RC 0
grep -q "^PASS identity\[0\]" "$T/pf.out" || fail "preflight: the NFS file's identity was not compared"
grep -q "^PASS lease: .*free" "$T/pf.out" || fail "preflight: the lease check"
ok "preflight --vm vm1 --src h1 --dst h2: PASS (same NFS file handle and fileid on both hosts)"

# ==== h1 -> h2
mig m1 h1 h2
expect "m1: exit" $RC 0
grep -q "^PASS identity\[0\]" "$T/m1.out" || fail "m1: the disk from the source's command line was not compared"
expect "m1: destination" "$(qstatus "$T/h2/vm1.qmp")" running
pid_alive "$T/h1/vm1.qmp.pid" && fail "m1: the source QEMU still runs"
read -r held holder E1 <<<"$(lease)"
expect "m1: lease holder" "$held $holder" "true 10.78.0.2"
grep -q '"step":"done"' "$JOURNAL" || fail "m1: journal not done"
ok "h1 -> h2: the VM runs on $NS_H2, the NFS lease is 10.78.0.2's (epoch $E1)"

write_from "$NS_H1" && fail "a write from the old holder (h1, 10.78.0.1) was accepted"
grep -qi "NFS3ERR_ACCES\|denied\|permission" "$T/qemu-io.out" || { cat "$T/qemu-io.out"; fail "h1's write failed for another reason"; }
write_from "$NS_H2" || { cat "$T/qemu-io.out"; fail "a write from the new holder (h2, 10.78.0.2) was refused"; }
ok "fencing: a write from h1 refused (NFS3ERR_ACCES), one from h2 accepted"

# ==== h2 -> h1, the destination killed after the lease moved: rolled back
mig m2 h2 h1 "lease-transferred:kill -KILL \$(cat $T/h1/vm1.qmp.pid)"
expect "m2: exit" $RC 1
expect "m2: source" "$(qstatus "$T/h2/vm1.qmp")" running
pid_alive "$T/h1/vm1.qmp.pid" && fail "m2: the destination still runs"
expect "m2: lease" "$(lease)" "true 10.78.0.2 $((E1 + 2))"
ok "h2 -> h1, destination killed after the transfer: lease handed back (epoch $((E1 + 2))), the VM runs on h2"

# ==== h2 -> h1
mig m3 h2 h1
expect "m3: exit" $RC 0
expect "m3: destination" "$(qstatus "$T/h1/vm1.qmp")" running
pid_alive "$T/h2/vm1.qmp.pid" && fail "m3: the source QEMU still runs"
expect "m3: lease" "$(lease)" "true 10.78.0.1 $((E1 + 3))"
write_from "$NS_H2" && fail "after h2 -> h1 a write from h2 was accepted"
write_from "$NS_H1" || { cat "$T/qemu-io.out"; fail "after h2 -> h1 a write from h1 was refused"; }
ok "h2 -> h1: the VM runs on $NS_H1 again, lease 10.78.0.1 epoch $((E1 + 3)); h2 fenced"

kill -0 "$DAEMON_PID" 2>/dev/null || fail "ringstord died"
ok "NFS migration cases passed"
