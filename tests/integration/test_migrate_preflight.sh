#!/usr/bin/env bash
# test_migrate_preflight.sh - `ringstor-migrate preflight` between two "hosts"
# (network namespaces) that reach a ringstord appliance in a third one:
#
#   ns H1 (10.78.0.1) --veth--+                       +--veth-- ns H2 (10.78.0.2)
#                             br0 in ns APP (10.78.0.10: ringstord iSCSI + NFS)
#   H1 10.77.0.1/24 <------------- veth pair -------------> H2 10.77.0.2/24
#   ns H3 (10.78.0.3) --veth-- ns APP2 (also 10.78.0.10: a second appliance
#                               with the same configuration, other data)
#
# Cases: the same iSCSI LUN from both hosts (all PASS); LUN 1 vs LUN 2 (path,
# identity and fingerprint FAIL); the same URL answered by another appliance
# with the same config (fingerprint FAIL: same NAA, other bytes); the same NFS
# file; a local file (same inode) and a different local file; a domain XML
# (disks, bridges, memory); a host that cannot run the probe (exit 2).
# The probes run through `ip netns exec` as the remote shell.
# Env: BUILD, CC.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

netns_init rsm
netns_migrate

# ---- the network: H1, H2 and APP as in netns_lib.sh, plus
# H3 <-> APP2 (the impostor appliance at the same address)
netns_hosts
NS_H3=rsm$$h3 NS_APP2=rsm$$a2
netns_add "$NS_H3" "$NS_APP2"
ip link add "rsm$$s3" type veth peer name "rsm$$p3"
ip link set "rsm$$s3" netns "$NS_H3"
ip link set "rsm$$p3" netns "$NS_APP2"
NX "$NS_H3" ip link set "rsm$$s3" name stor0
NX "$NS_H3" ip addr add 10.78.0.3/24 dev stor0
NX "$NS_H3" ip link set stor0 up
NX "$NS_APP2" ip addr add 10.78.0.10/24 dev "rsm$$p3"
NX "$NS_APP2" ip link set "rsm$$p3" up
ok "namespaces: hosts $NS_H1 $NS_H2 $NS_H3, appliances $NS_APP $NS_APP2"

# ---- the appliances: one target, LUN 1 and LUN 2 with different content
mkdir -p "$T/exp" "$T/a2"
head -c $((32 << 20)) /dev/urandom >"$T/lun1.img"
head -c $((32 << 20)) /dev/urandom >"$T/lun2.img"
head -c $((32 << 20)) /dev/urandom >"$T/a2/lun1.img"
cp "$T/lun2.img" "$T/a2/lun2.img"
head -c $((16 << 20)) /dev/urandom >"$T/exp/disk.img"
appliance_conf() {
	cat >"$1" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$2/lun1.img"; create = true; size = "32M"; },
             { lun = 2; path = "$2/lun2.img"; create = true; size = "32M"; } );
    initiator_address = [ "10.78.0.0/24" ];
} );
CONF
}
appliance_conf "$T/app.conf" "$T"
appliance_conf "$T/app2.conf" "$T/a2"

NFS=0
"$RINGSTORD" --help 2>&1 | grep -q -- --nfs-export && NFS=1
NFS_ARGS=()
[ $NFS -eq 1 ] && NFS_ARGS=(--nfs-export "$T/exp 10.78.0.0/24(rw,insecure,no_root_squash)" --nfs-bind 10.78.0.10
	--nfs-port 2049 --mount-port 20048 --portmap-port 111 --portmap builtin)
netns_appliance "$NS_APP" "$T/ctl.sock" "$T/state" "$T/daemon.log" 3260 -c "$T/app.conf" \
	--iscsi-portal 10.78.0.10:3260 "${NFS_ARGS[@]}"
netns_appliance "$NS_APP2" "$T/ctl2.sock" "$T/state2" "$T/daemon2.log" 3260 -c "$T/app2.conf" \
	--iscsi-portal 10.78.0.10:3260
DAEMON2_PID=$APPLIANCE_PID
ok "appliances listening on 10.78.0.10:3260 (nfs: $NFS)"

# ---- helpers
URL1="iscsi://10.78.0.10:3260/$IQN/1"
URL2="iscsi://10.78.0.10:3260/$IQN/2"
PF() { # preflight SRC DST ARGS...: output in $OUT, exit status in $RC
	local src=$1 dst=$2
	shift 2
	OUT=$("$MIGRATE" preflight --source "$src" --dest "$dst" --rsh 'ip netns exec' --remote-cmd "$MIGRATE" \
		--timeout 120 "$@" 2>&1)
	RC=$?
	echo "--- preflight $src -> $dst $*"
	echo "$OUT"
}
has() { # has STATUS CHECK [REASON-SUBSTRING]
	echo "$OUT" | grep -E "^$1 $(printf '%s' "$2" | sed 's/[][]/\\&/g'): " | grep -qF -- "${3:-}" \
		|| fail "expected '$1 $2${3:+: ...$3...}' in the preflight output"
}
no_fail() { echo "$OUT" | grep -q '^FAIL' && fail "unexpected FAIL lines"; return 0; }

# ---- 1. a probe from one host
OUT=$(NX "$NS_H1" "$MIGRATE" probe --json --disk "$URL1") || fail "probe on H1: $OUT"
echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["disks"][0]; \
	assert s["iscsi"]["naa"] and s["iscsi"]["lun"] == 1 and s["size"] == 32 << 20 and s["block_size"] == 512, s; \
	assert len(d["disks"][0]["fingerprint"]["samples"]) == 66; assert any(a["subnet"] == "10.77.0.0/24" for a in d["addresses"])' \
	|| fail "probe --json content"
ok "probe --json on $NS_H1: NAA, LUN, size, 66 samples, subnets"

# ---- 2. the same LUN from both hosts: everything passes
PF "$NS_H1" "$NS_H2" --disk "$URL1"
[ $RC -eq 0 ] || fail "preflight with the same LUN: exit $RC"
no_fail
has PASS 'path[0]'
has PASS 'identity[0]' "same logical unit"
has PASS 'size[0]' "33554432 bytes on both"
has PASS 'fingerprint[0]'
has PASS arch
has PASS subnet "10.77.0.0/24"
has WARN lease "lease check not available yet"
ok "same iSCSI LUN on both hosts: PASS, exit 0"

# JSON form
OUT=$("$MIGRATE" preflight --source "$NS_H1" --dest "$NS_H2" --rsh 'ip netns exec' --remote-cmd "$MIGRATE" \
	--disk "$URL1" --json) || fail "preflight --json: exit $?"
echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["result"] == "PASS"; \
	assert {c["check"] for c in d["checks"]} >= {"identity[0]", "fingerprint[0]", "cpu", "memory", "lease"}' \
	|| fail "preflight --json content"
ok "preflight --json"

# ---- 3. LUN 1 on the source, LUN 2 on the destination
PF "$NS_H1" "$NS_H2" --disk "$URL1" --dest-disk "$URL2"
[ $RC -eq 1 ] || fail "preflight LUN 1 vs LUN 2: exit $RC, want 1"
has FAIL 'path[0]' "different paths"
has FAIL 'identity[0]' "different logical units"
has FAIL 'fingerprint[0]' "content differs"
has PASS 'size[0]'
ok "LUN 1 vs LUN 2: FAIL on path, identity and fingerprint, exit 1"

# ---- 4. the same URL, but H3 reaches another appliance with the same config
PF "$NS_H1" "$NS_H3" --disk "$URL1"
[ $RC -eq 1 ] || fail "preflight against the impostor appliance: exit $RC, want 1"
has FAIL 'fingerprint[0]' "content differs in 66 of 66 samples"
ok "same path and size, other appliance: FAIL on fingerprint, exit 1"

# ---- 5. NFS
if [ $NFS -eq 1 ]; then
	NURL="nfs://10.78.0.10$T/exp/disk.img?nfsport=2049&mountport=20048"
	PF "$NS_H1" "$NS_H2" --disk "$NURL"
	[ $RC -eq 0 ] || fail "preflight with the same NFS file: exit $RC"
	no_fail
	has PASS 'identity[0]' "same file handle"
	has PASS 'fingerprint[0]'
	ok "same NFS file on both hosts: PASS"
	cp "$T/exp/disk.img" "$T/exp/copy.img"
	PF "$NS_H1" "$NS_H2" --disk "$NURL" --dest-disk "nfs://10.78.0.10$T/exp/copy.img?nfsport=2049&mountport=20048"
	[ $RC -eq 1 ] || fail "preflight with a copy of the NFS file: exit $RC, want 1"
	has FAIL 'identity[0]' "different files"
	has PASS 'fingerprint[0]'
	ok "an identical copy on NFS: FAIL on identity (fileid), content alike"
else
	echo "ringstord has no NFS gateway flags: NFS case skipped"
fi

# ---- 6. local paths (both namespaces share this kernel and file system)
head -c $((5 << 20)) /dev/urandom >"$T/local.img"
cp "$T/local.img" "$T/local-copy.img"
PF "$NS_H1" "$NS_H2" --disk "$T/local.img"
[ $RC -eq 0 ] || fail "preflight with the same local file: exit $RC"
has PASS 'identity[0]' "same machine"
PF "$NS_H1" "$NS_H2" --disk "$T/local.img" --dest-disk "$T/local-copy.img"
[ $RC -eq 1 ] || fail "preflight with a copied local file: exit $RC"
has FAIL 'identity[0]' "different files"
has PASS 'fingerprint[0]'
ok "local path: same inode PASS, a copy FAILs on identity"

# ---- 7. a domain XML: disks, bridges, memory
cat >"$T/dom.xml" <<XML
<domain type='kvm'>
  <name>vm1</name>
  <memory unit='MiB'>64</memory>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='iscsi' name='$IQN/1'><host name='10.78.0.10' port='3260'/></source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'><source bridge='brvm'/></interface>
  </devices>
</domain>
XML
NX "$NS_H1" ip link add brvm type bridge
PF "$NS_H1" "$NS_H2" --domain-xml "$T/dom.xml"
[ $RC -eq 1 ] || fail "preflight with a bridge missing on the destination: exit $RC"
has FAIL bridges "brvm"
has PASS memory "the VM needs 64 MiB"
has PASS 'identity[0]' "$URL1"
NX "$NS_H2" ip link add brvm type bridge
sed -i "s/unit='MiB'>64</unit='TiB'>64</" "$T/dom.xml"
PF "$NS_H1" "$NS_H2" --domain-xml "$T/dom.xml"
[ $RC -eq 1 ] || fail "preflight with too little memory: exit $RC"
has PASS bridges
has FAIL memory "the VM needs 67108864 MiB"
sed -i "s/unit='TiB'>64</unit='MiB'>64</" "$T/dom.xml"
PF "$NS_H1" "$NS_H2" --domain-xml "$T/dom.xml"
[ $RC -eq 0 ] || fail "preflight with the domain XML: exit $RC"
no_fail
ok "domain XML: missing bridge FAIL, too little memory FAIL, then PASS"

# ---- 8. errors: a host without the probe, a LUN the destination cannot log in to
PF "$NS_H1" "rsm$$nosuchns" --disk "$URL1"
[ $RC -eq 2 ] || fail "preflight to a missing host: exit $RC, want 2"
echo "$OUT" | grep -q "probe on the destination rsm$$nosuchns failed" || fail "no clear message for a missing host"
PF "$NS_H1" "$NS_H2" --disk "$URL1" --dest-disk "iscsi://10.78.0.10:3260/$IQN/9"
[ $RC -eq 1 ] || fail "preflight with an unknown LUN on the destination: exit $RC"
has FAIL 'path[0]' "the destination cannot probe it"
OUT=$("$MIGRATE" preflight --source a 2>&1); RC=$?
[ $RC -eq 2 ] || fail "usage error: exit $RC"
ok "missing host -> exit 2; unknown LUN -> FAIL; usage -> exit 2"

daemon_alive || fail "ringstord died"
kill -0 "$DAEMON2_PID" || fail "the second ringstord died"
grep -E "runtime error|AddressSanitizer" "$T/daemon.log" "$T/daemon2.log" && fail "sanitizer report"
ok "all preflight cases"
