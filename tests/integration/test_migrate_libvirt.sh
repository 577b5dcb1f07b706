#!/usr/bin/env bash
# test_migrate_libvirt.sh - `ringstor-migrate migrate --driver libvirt` and
# `recover` against two real libvirt daemons (issue 5): a firmware-only
# guest (no kernel: cheap under KVM and TCG) whose disk is a file of
# ringstord's NFS gateway (libvirt's <disk type='network'><source
# protocol='nfs'>), live-migrated with `virsh migrate --live --suspend`
# between two "hosts", the NFS file lease moving on the appliance.
#
# A host is a network namespace plus a private mount namespace in which
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
# /var/cache/libvirt are the host's own directories under $T (bind mounts
# that only the host's processes see): its libvirtd, and every command run
# "on" it through the remote shell $T/rsh (virsh, the probes), see its own
# daemon at the usual qemu:///system.  The daemons reach each other over
# TCP on the migration network (qemu+tcp://10.77.0.N/system, no auth: the
# namespaces are private) and QEMU's migration stream goes the same way
# (qemu.conf migration_address/migration_host).
#
#   ns H1 (10.78.0.1) --veth--+                       +--veth-- ns H2 (10.78.0.2)
#                             br0 in ns APP (10.78.0.10: ringstord, NFS + portmapper)
#   H1 10.77.0.1/24 <---- veth pair (libvirt + migration stream) ----> H2 10.77.0.2/24
#
# Everything is driven by a host configuration (-c FILE, --vm NAME --src
# hN --dst hM, driver libvirt, each host's libvirt_uri, the lease and its
# holders).  Cases (each checks where the domain runs and is defined, who
# holds the lease at which epoch, and the journal), first with a domain on
# nfs:// (the lease holders: the hosts' storage addresses):
#   1. h1 -> h2 succeeds; then a write from h1 is refused (NFS3ERR_ACCES)
#      and one from h2 accepted
#   2. h2 -> h1, the destination's QEMU killed during the migration:
#      rolled back, the domain runs on h2
#   3. h2 -> h1, the destination's libvirtd killed during the migration:
#      rolled back with a warning about h1; once that daemon is back it has
#      no copy, or a paused stale one that cannot write
#   4. the appliance refuses the lease transfer.  With QEMU >= 10 the
#      paused domain migrates back.  QEMU 7.2 (Debian 12) would abort on
#      that (a domain that arrived paused has inactive images): the domain
#      waits on the destination, paused and fenced, exit 3, and `recover`
#      finishes the migration once the appliance accepts the transfer
#   5. the companion killed right after the lease moved: `recover` resumes
#      the domain on the destination
#   6. the companion killed at the transfer point (domain paused on the
#      destination, lease with the source): `recover` migrates it back, or
#      with QEMU < 10 finishes the migration
#   7. a timeout (the source's QEMU stopped, --timeout 2): `virsh
#      domjobabort`, rolled back
#   8. a migration whose disks come from `virsh dumpxml` on the source
# then with a second domain on an iscsi:// LUN, logging in with its host's
# initiator name (<initiator><iqn name=...>):
#   i0. the source's identity given is not the disk's name: refused
#   i1. h1 -> h2, i2. h2 -> h1: the destination's QEMU and persistent
#       definition log in with the destination's name (virsh migrate --xml
#       --persistent-xml) and only it can write the LUN
# Needs libvirt: apt-get install --no-install-recommends libvirt-daemon
# libvirt-clients libvirt-daemon-driver-qemu (no libvirt-daemon-system:
# nothing here needs systemd, the libvirt-qemu user or dnsmasq).
# Env: BUILD, CC, RINGSTOR_TEST_ACCEL=tcg.  Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/lib.sh"

command -v ip >/dev/null || skip "ip (iproute2) not installed"
command -v python3 >/dev/null || skip "python3 not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) not installed"
command -v qemu-io >/dev/null || skip "qemu-io (qemu-utils) not installed"
[ "$(id -u)" -eq 0 ] || skip "network namespaces and libvirt's system daemon need root"
[ -x "$RINGSTORD" ] || fail "build $RINGSTORD first"
LIBVIRTD=$(command -v libvirtd || echo /usr/sbin/libvirtd)
[ -x "$LIBVIRTD" ] && command -v virsh >/dev/null ||
	skip "libvirt is not installed (apt-get install --no-install-recommends libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu)"
ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 ||
	skip "libvirt's QEMU driver is not installed (libvirt-daemon-driver-qemu)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (test_migrate_qemu.sh installs it)"
QEMU=$(command -v qemu-system-x86_64)
"$QEMU" -drive format=help 2>&1 | grep -qw nfs || skip "this QEMU has no nfs block driver"

NS_H1=rml$$h1 NS_H2=rml$$h2 NS_APP=rml$$ap
DOM=rml$$vm # the domain: a name no other run uses (cleanup finds its QEMUs by it)
DOM_NFS=$DOM DOM_ISCSI=${DOM}i # the domain on nfs://, then the one on iscsi://
ip netns add "$NS_APP" 2>/dev/null || skip "ip netns add is not permitted here"
# libvirt's fixed directories must exist as mount points; the ones made
# here are removed again
MADE_DIRS=()
for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
	[ -d "$d" ] && continue
	mkdir -p "$d" || skip "cannot create the mount point $d"
	MADE_DIRS+=("$d")
done
# the QEMU processes of a domain of this run ("-name guest=NAME,...")
dom_qemu_pids() { # [NAME] (default $DOM)
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "-name guest=${1:-$DOM}," && echo "${p#/proc/}"
	done
}
cleanup_all() {
	for p in "$T"/*.pid "$T"/h1/run/*.pid "$T"/h2/run/*.pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p" 2>/dev/null)
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
	for pid in $(dom_qemu_pids "$DOM_NFS") $(dom_qemu_pids "$DOM_ISCSI"); do
		kill -KILL "$pid" 2>/dev/null
	done
	# and anything else that lives in one of the hosts' mount namespaces
	# (a daemon or QEMU that the cases above left, e.g. stopped)
	for p in /proc/[0-9]*; do
		grep -qF " $T/h" "$p/mountinfo" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	cleanup
	for ns in "$NS_H1" "$NS_H2" "$NS_APP"; do
		ip netns del "$ns" 2>/dev/null
	done
	for d in ${MADE_DIRS[@]+"${MADE_DIRS[@]}"}; do
		rmdir "$d" 2>/dev/null
	done
}
trap cleanup_all EXIT

MIGRATE=$BUILD/ringstor-migrate
if [ ! -x "$MIGRATE" ] || [ -n "$(find "$TOP/companion" -name '*.[ch]' -newer "$MIGRATE")" ]; then
	CC=${CC:-cc}
	MIGRATE=$T/ringstor-migrate
	$CC -std=gnu11 -O1 -g -D_GNU_SOURCE -I"$TOP" -o "$MIGRATE" "$TOP"/companion/*.c -liscsi -lnfs -lcrypto -lconfig \
		$( [ "${BUILD##*/}" = build-san ] && echo -fsanitize=address,undefined ) \
		|| fail "cannot build ringstor-migrate"
fi

ACCEL=tcg
if [ "${RINGSTOR_TEST_ACCEL:-}" != tcg ] && [ -w /dev/kvm ] && timeout 20 "$QEMU" -accel kvm -machine none -nodefaults -display none -S \
	-daemonize -pidfile "$T/kvmprobe.pid" 2>/dev/null; then
	ACCEL=kvm
	kill -KILL "$(cat "$T/kvmprobe.pid")" 2>/dev/null
fi
rm -f "$T/kvmprobe.pid"
[ $ACCEL = kvm ] && DOMTYPE=kvm || DOMTYPE=qemu
ok "libvirt $(virsh --version), QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), accel $ACCEL, disk on nfs://"

# ---- the network (as in test_migrate_qemu_nfs.sh)
NX() { ip netns exec "$@"; }
for ns in "$NS_H1" "$NS_H2"; do
	ip netns add "$ns" || fail "ip netns add $ns"
done
for ns in "$NS_H1" "$NS_H2" "$NS_APP"; do
	NX "$ns" ip link set lo up
done
NX "$NS_APP" ip link add br0 type bridge || skip "cannot create a bridge here"
NX "$NS_APP" ip addr add 10.78.0.10/24 dev br0
NX "$NS_APP" ip link set br0 up
i=0
for ns in "$NS_H1" "$NS_H2"; do
	i=$((i + 1))
	ip link add "rml$$s$i" type veth peer name "rml$$p$i" || skip "cannot create a veth pair here"
	ip link set "rml$$s$i" netns "$ns"
	ip link set "rml$$p$i" netns "$NS_APP"
	NX "$ns" ip link set "rml$$s$i" name stor0
	NX "$ns" ip addr add "10.78.0.$i/24" dev stor0
	NX "$ns" ip link set stor0 up
	NX "$NS_APP" ip link set "rml$$p$i" master br0
	NX "$NS_APP" ip link set "rml$$p$i" up
done
ip link add "rml$$x1" type veth peer name "rml$$x2"
ip link set "rml$$x1" netns "$NS_H1"
ip link set "rml$$x2" netns "$NS_H2"
NX "$NS_H1" ip link set "rml$$x1" name vmnet0
NX "$NS_H2" ip link set "rml$$x2" name vmnet0
NX "$NS_H1" ip addr add 10.77.0.1/24 dev vmnet0
NX "$NS_H2" ip addr add 10.77.0.2/24 dev vmnet0
NX "$NS_H1" ip link set vmnet0 up
NX "$NS_H2" ip link set vmnet0 up

# ---- the appliance: NFS gateway with its portmapper on 111 (QEMU's nfs
# driver asks the portmapper; the namespace makes 111 ours)
EXP=$T/export
mkdir -p "$EXP" "$T/state" "$T/j"
truncate -s 32M "$EXP/vm.img"
cat >"$T/app.conf" <<CONF
targets = ( {
    tid = 1;
    name = "$IQN";
    luns = ( { lun = 1; path = "$T/lun1.img"; create = true; size = "32M"; } );
    initiator_address = [ "10.78.0.0/24" ];
} );
CONF
ip netns exec "$NS_APP" "$RINGSTORD" -f -c "$T/app.conf" -C "$T/ctl.sock" --state-dir "$T/state" \
	--iscsi-portal 10.78.0.10:3260 --nfs-listen 10.78.0.10:2049 --mount-port 20048 --portmap 10.78.0.10:111 \
	--nfs-export "$EXP 10.78.0.0/24(rw,no_root_squash,sync,fsid=7)" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
	kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$T/daemon.log"; fail "ringstord exited at startup"; }
	NX "$NS_APP" bash -c 'exec 3<>/dev/tcp/10.78.0.10/2049' 2>/dev/null && [ -S "$T/ctl.sock" ] && break
	sleep 0.1
done
URL="nfs://10.78.0.10$EXP/vm.img"
NX "$NS_H1" qemu-img info "$URL" >"$T/qi.out" 2>&1 || { cat "$T/qi.out"; fail "qemu-img info $URL from $NS_H1"; }
ok "appliance: NFS export $EXP on 10.78.0.10 (portmapper on 111), iSCSI $IQN LUN 1 on 10.78.0.10:3260"

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
# ringstoradm wrapper: refuses transfers while $T/refuse-transfer exists
cat >"$T/adm" <<EOF
#!/bin/bash
case " \$* " in *" --op transfer "*) [ -e "$T/refuse-transfer" ] && { echo "transfer refused (test)" >&2; exit 5; };; esac
exec $ADM "\$@"
EOF
chmod +x "$T/adm"

# ---- the hosts: the remote shell, and a libvirtd on each
# Debian's libvirtd resolves its default QEMU user (libvirt-qemu, made by
# libvirt-daemon-system) before it reads qemu.conf: without that package
# the hosts see a passwd/group with that user added (bind-mounted too).
OVERLAY_IDS=0
if ! getent passwd libvirt-qemu >/dev/null || ! getent group libvirt-qemu >/dev/null; then
	OVERLAY_IDS=1
	cp /etc/passwd "$T/passwd"
	cp /etc/group "$T/group"
	getent passwd libvirt-qemu >/dev/null ||
		echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$T/passwd"
	getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$T/group"
fi
# $T/rsh HOST CMD...: CMD "on" host h1 or h2; any other HOST is a plain
# network namespace (the appliance's)
cat >"$T/rsh" <<EOF
#!/bin/bash
case \$1 in h1) ns=$NS_H1;; h2) ns=$NS_H2;; *) exec ip netns exec "\$@";; esac
d=$T/\$1
shift
exec ip netns exec "\$ns" unshare -m --propagation private sh -c '
d=\$1; shift
for x in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
	mount --bind "\$d/\${x%%:*}" "\${x#*:}" || exit 255
done
if [ $OVERLAY_IDS = 1 ]; then
	mount --bind $T/passwd /etc/passwd && mount --bind $T/group /etc/group || exit 255
fi
exec "\$@"' rsh "\$d" "\$@"
EOF
chmod +x "$T/rsh"
RSH=$T/rsh
for i in 1 2; do
	h=h$i
	mkdir -p "$T/$h"/{etc,run,lib,log,cache}
	# no cgroups, no security driver, no private /dev, no virtlogd: nothing
	# of what libvirt-daemon-system and systemd would provide is needed
	cat >"$T/$h/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_address = "10.77.0.$i"
migration_host = "10.77.0.$i"
CONF
	cat >"$T/$h/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
listen_addr = "10.77.0.$i"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "00000000-0000-4000-8000-00000000000$i"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
done
# start_libvirtd hN: the host's daemon, until it answers
start_libvirtd() {
	"$RSH" "$1" "$LIBVIRTD" --listen --pid-file /run/libvirt/libvirtd.pid >"$T/$1/libvirtd.out" 2>&1 &
	disown $! # (killed on purpose: no job-control message)
	for _ in $(seq 300); do
		"$RSH" "$1" virsh -c qemu:///system version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$T/$1/libvirtd.out" "$T/$1/log/libvirtd.log" 2>/dev/null | tail -20
	fail "libvirtd on $1 did not come up"
}
for h in h1 h2; do start_libvirtd $h; done
# each daemon must see the other over TCP
"$RSH" h1 virsh -c qemu+tcp://10.77.0.2/system uri >"$T/uri.out" 2>&1 ||
	{ cat "$T/uri.out"; fail "h1 cannot reach h2's libvirtd over qemu+tcp"; }
ok "libvirtd on h1 ($NS_H1) and h2 ($NS_H2), qemu+tcp://10.77.0.N/system"

V() { local h=$1; shift; "$RSH" "$h" virsh -q "$@"; }
# dstate hN: the domain's state there ("absent" if it has none)
dstate() {
	local s
	s=$(V "$1" domstate "$DOM" 2>"$T/dstate.err") || {
		grep -q "failed to get domain" "$T/dstate.err" && { echo absent; return; }
		echo "error: $(cat "$T/dstate.err")"
		return
	}
	echo "$s" | head -1
}
# defined hN: yes if the domain is persistent there
defined() { [ "$(V "$1" dominfo "$DOM" 2>/dev/null | awk '/^Persistent:/ {print $2}')" = yes ] && echo yes || echo no; }
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
# where: "H1STATE/H1DEFINED H2STATE/H2DEFINED"
where() { echo "$(dstate h1)/$(defined h1) $(dstate h2)/$(defined h2)"; }
write_from() { # NS: 0 if a 4 KiB write through nfs:// from that host succeeds
	NX "$1" qemu-io -f raw -c "write -P 0x5a 1M 4k" "$URL" >"$T/qemu-io.out" 2>&1 &&
		! grep -qi "error\|failed\|denied" "$T/qemu-io.out"
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
# the destination's QEMU for this domain (libvirt's pid file on that host)
qemu_pidfile() { echo "$T/$1/run/qemu/$DOM.pid"; }

# ---- the domains and the host configuration
INIT_H1=iqn.2026-11.test:host1 INIT_H2=iqn.2026-11.test:host2
# the second domain, on the iSCSI LUN, logs in with h1's initiator name
# (QEMU's own iSCSI initiator: the name comes from the domain XML)
cat >"$T/$DOM_ISCSI.xml" <<XML
<domain type='$DOMTYPE'>
  <name>$DOM_ISCSI</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$QEMU</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='iscsi' name='$IQN/1'>
        <host name='10.78.0.10' port='3260'/>
        <initiator><iqn name='$INIT_H1'/></initiator>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
cat >"$T/$DOM.xml" <<XML
<domain type='$DOMTYPE'>
  <name>$DOM</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$QEMU</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='nfs' name='$EXP/vm.img'>
        <host name='10.78.0.10'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
cat >"$T/migrate.conf" <<CONF
# ringstor-migrate host configuration for this test
appliance = "$NS_APP";
rsh = "$RSH";
adm = "$T/adm";
remote_cmd = "$MIGRATE";
journal_dir = "$T/j";
hosts = (
  { name = "h1"; rsh_host = "h1"; address = "10.77.0.1"; nfs_holder = "10.78.0.1";
    initiator_name = "$INIT_H1"; libvirt_uri = "qemu+tcp://10.77.0.1/system"; },
  { name = "h2"; rsh_host = "h2"; address = "10.77.0.2"; nfs_holder = "10.78.0.2";
    initiator_name = "$INIT_H2"; libvirt_uri = "qemu+tcp://10.77.0.2/system"; }
);
vms = (
  { name = "$DOM"; driver = "libvirt"; domain_xml = "$T/$DOM.xml";
    leases = [ "lld=nfs,export-id=$EID,file=vm.img" ]; memory = "64M"; },
  { name = "$DOM_ISCSI"; driver = "libvirt"; domain_xml = "$T/$DOM_ISCSI.xml";
    leases = [ "tid=1,lun=1" ]; memory = "64M"; }
);
CONF
mig() { # NAME SRC DST [hook [extra args]]: output in $T/NAME.out, exit status in RC, journal in JOURNAL
	local name=$1 src=$2 dst=$3 hook=${4:-}
	shift $(($# < 4 ? $# : 4))
	mkdir -p "$T/j/$name"
	RINGSTOR_MIGRATE_TEST_HOOK=$hook "$MIGRATE" migrate -c "${CONF:-$T/migrate.conf}" --vm "$DOM" --src "$src" --dst "$dst" \
		--journal "$T/j/$name" --no-progress --preflight-timeout 120 "$@" >"$T/$name.out" 2>&1
	RC=$?
	echo "--- migrate $name ($src -> $dst${hook:+, hook $hook}): exit $RC"
	sed 's/^/    /' "$T/$name.out"
	JOURNAL=$(ls "$T/j/$name"/*.journal 2>/dev/null | head -1)
	[ -n "$JOURNAL" ] || fail "$name: no journal written"
}
recover() { # NAME: recover the journal of migration NAME; output in $T/NAME.rec, status in RC
	"$MIGRATE" recover --journal "$JOURNAL" >"$T/$1.rec" 2>&1
	RC=$?
	echo "--- recover $1: exit $RC"
	sed 's/^/    /' "$T/$1.rec"
}
# A hook command for the destination's QEMU, in the background (the
# companion goes on meanwhile): as soon as it runs (libvirt starts it
# paused, listening; its pid file appears before the exec, hence the
# look at its command line) it is frozen (SIGSTOP), so that the
# migration cannot complete however fast it is; 0.5 s later (libvirt is
# then preparing or sending) SIGNAL goes to the pid in PIDFILE (default:
# that QEMU).  (A kill at a fixed delay instead can come after a KVM
# guest's migration completed: that is another case.)
freeze_then() { # HOST SIGNAL [PIDFILE]
	local q
	q=$(qemu_pidfile "$1")
	echo "(for i in \$(seq 1000); do [ -s $q ] && tr '\\0' ' ' </proc/\$(cat $q)/cmdline | grep -q 'guest=$DOM,' && break;" \
		"sleep 0.01; done; kill -STOP \$(cat $q); sleep 0.5; kill -$2 \$(cat ${3:-$q}); touch $T/hook.done) >/dev/null 2>&1 &"
}
wait_hook() { for _ in $(seq 100); do [ -e "$T/hook.done" ] && break; sleep 0.1; done; rm -f "$T/hook.done"; }
nqemu() { dom_qemu_pids | wc -l; }

# ==== the domain on h1, defined (persistent) and started as an admin would
V h1 define "$T/$DOM.xml" >/dev/null || fail "virsh define on h1"
V h1 start "$DOM" >"$T/start.out" 2>&1 || { cat "$T/start.out" "$T/h1/log/qemu/$DOM.log"; fail "virsh start on h1"; }
expect "domain on h1" "$(where)" "running/yes absent/no"
ok "domain $DOM running on h1 (libvirt, $DOMTYPE), disk $URL"

# ==== preflight from the configuration: the disks of the domain XML
"$MIGRATE" preflight -c "$T/migrate.conf" --vm "$DOM" --src h1 --dst h2 >"$T/pf.out" 2>&1
RC=$?
sed 's/^/    /' "$T/pf.out"
expect "preflight exit" $RC 0
grep -q "^PASS identity\[0\]" "$T/pf.out" || fail "preflight: the NFS file's identity was not compared"
grep -q "^PASS lease: .*free" "$T/pf.out" || fail "preflight: the lease check"
ok "preflight --vm $DOM --src h1 --dst h2: PASS"

# ==== 1. h1 -> h2
mig m1 h1 h2
expect "m1: exit" $RC 0
grep -q "^PASS identity\[0\]" "$T/m1.out" || fail "m1: the domain's disk was not compared"
expect "m1: where" "$(where)" "absent/no running/yes"
expect "m1: QEMU processes" "$(nqemu)" 1
read -r held holder E1 <<<"$(lease)"
expect "m1: lease holder" "$held $holder" "true 10.78.0.2"
has_steps "$JOURNAL" begin preflight lease-held source-checked dest-started migrating completed transfer-point \
	transfer-begin lease-transferred dest-running source-stopped done
grep -q '"step":"lease-held".*"acquired":true' "$JOURNAL" || fail "m1: the lease was not acquired for the source"
E0=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["step"] == "lease-held": print(r["epoch"])' "$JOURNAL")
expect "m1: epoch after the transfer" "$E1" "$((E0 + 1))"
recover m1
expect "m1: recover exit" $RC 0
grep -q "> nothing" "$T/m1.rec" || fail "m1: recover should have nothing to do"
ok "1. h1 -> h2: runs and is defined on h2 only, lease 10.78.0.2 epoch $E0 -> $E1, journal complete"
write_from "$NS_H1" && fail "a write from the old holder (h1, 10.78.0.1) was accepted"
grep -qi "NFS3ERR_ACCES\|denied\|permission" "$T/qemu-io.out" || { cat "$T/qemu-io.out"; fail "h1's write failed for another reason"; }
write_from "$NS_H2" || { cat "$T/qemu-io.out"; fail "a write from the new holder (h2, 10.78.0.2) was refused"; }
ok "fencing: a write from h1 refused (NFS3ERR_ACCES), one from h2 accepted"

# ==== 2. h2 -> h1, the destination's QEMU killed during the migration
mig m2 h2 h1 "migrating:$(freeze_then h1 KILL)"
wait_hook
expect "m2: exit" $RC 1
expect "m2: where" "$(where)" "absent/no running/yes"
expect "m2: lease" "$(lease)" "true 10.78.0.2 $E1"
has_steps "$JOURNAL" migrating rollback dest-stopped source-resumed rolled-back
expect "m2: QEMU processes" "$(nqemu)" 1
ok "2. destination QEMU killed during the migration: rolled back, runs on h2, lease unchanged"

# ==== 3. h2 -> h1, the destination's libvirtd killed during the migration
cp "$T/h1/run/libvirtd.pid" "$T/h1/libvirtd.victim"
mig m3 h2 h1 "migrating:$(freeze_then h1 KILL "$T/h1/libvirtd.victim")"
wait_hook
# (the orphaned QEMU, still frozen, goes on: the daemon finds it when it is back)
for pid in $(dom_qemu_pids); do kill -CONT "$pid"; done
expect "m3: exit" $RC 1
expect "m3: source" "$(dstate h2)/$(defined h2)" "running/yes"
expect "m3: lease" "$(lease)" "true 10.78.0.2 $E1"
has_steps "$JOURNAL" migrating rollback source-resumed rolled-back
grep -q "warning: cannot ask h1 about a copy of $DOM" "$T/m3.out" || fail "m3: no warning about a copy on h1"
start_libvirtd h1
# Back, the daemon finds the QEMU it had left (in the background, after
# it answers) and kills it as a failed incoming migration, or keeps it as a
# paused transient copy: stale, fenced, to be destroyed as the warning says
for _ in $(seq 50); do [ "$(dstate h1)" = absent ] && break; sleep 0.2; done
m3_h1=$(dstate h1)/$(defined h1)
case $m3_h1 in
absent/no) STALE="no copy left there";;
paused/no)
	write_from "$NS_H1" && fail "m3: the stale copy's host h1 could write"
	# (the daemon may be killing it right now: gone is as good)
	V h1 destroy "$DOM" >/dev/null 2>"$T/destroy.err" || grep -q "Domain not found" "$T/destroy.err" ||
		fail "m3: virsh destroy of the stale copy on h1: $(cat "$T/destroy.err")"
	STALE="a paused stale copy on h1 (fenced), destroyed as the warning said";;
*) fail "m3: on h1 after its libvirtd came back: $m3_h1";;
esac
expect "m3: where, h1's libvirtd back" "$(where)" "absent/no running/yes"
expect "m3: QEMU processes" "$(nqemu)" 1
ok "3. destination libvirtd killed during the migration: rolled back, runs on h2, the companion warned about h1; $STALE"

# From here on the domain's host changes with the outcomes: HERE is where
# it runs, E1 the lease's epoch.
HERE=h2
other() { [ "$1" = h1 ] && echo h2 || echo h1; }
ns_of() { [ "$1" = h1 ] && echo "$NS_H1" || echo "$NS_H2"; }
holder_of() { [ "$1" = h1 ] && echo 10.78.0.1 || echo 10.78.0.2; }
on() { # on HOST [STATE]: the expected where() with the domain on HOST only
	[ "$1" = h1 ] && echo "${2:-running}/yes absent/no" || echo "absent/no ${2:-running}/yes"
}
fenced_to() { # HOST: only HOST can write the image
	write_from "$(ns_of "$(other "$1")")" && fail "a write from $(other "$1"), not the holder, was accepted"
	write_from "$(ns_of "$1")" || { cat "$T/qemu-io.out"; fail "a write from the holder $1 was refused"; }
}
# Can the destination's QEMU migrate a domain that arrived paused and
# never ran?  Not before QEMU 10.0 (its images are still inactive: it
# aborts); the driver then finishes the migration instead of going back.
QEMU_MAJOR=$("$QEMU" --version | head -1 | awk '{print $4}' | cut -d. -f1)
BACK_OK=0
[ "${QEMU_MAJOR:-0}" -ge 10 ] && BACK_OK=1

# ==== 4. the appliance refuses the lease transfer.  libvirt cannot keep
# the source's domain after the switchover: with QEMU >= 10 the paused
# domain migrates back; before, migrating it would kill it (QEMU aborts),
# so it waits on the destination, paused and fenced, and recover
# finishes the migration once the appliance accepts the transfer.
S=$HERE D=$(other $HERE)
touch "$T/refuse-transfer"
mig m4 $S $D
expect "m4: lease" "$(lease)" "true $(holder_of $S) $E1"
grep -q "refused" "$T/m4.out" || fail "m4: the reason is not reported"
expect "m4: QEMU processes" "$(nqemu)" 1
if [ $BACK_OK = 1 ]; then
	rm -f "$T/refuse-transfer"
	expect "m4: exit" $RC 1
	expect "m4: where" "$(where)" "$(on $S)"
	has_steps "$JOURNAL" completed transfer-point transfer-begin rollback migrating-back dest-stopped source-resumed \
		rolled-back
	ok "4. lease transfer refused: the domain migrated back to $S and resumed there, lease unchanged"
else
	expect "m4: exit" $RC 3
	grep -q "cannot be migrated back: QEMU $QEMU_MAJOR\." "$T/m4.out" || fail "m4: the reason for not going back"
	expect "m4: where" "$(where)" "$(on $D paused)"
	has_steps "$JOURNAL" completed transfer-point transfer-begin rollback roll-forward transfer-begin
	ok "4a. lease transfer refused, QEMU $QEMU_MAJOR cannot migrate the paused domain back: it waits on $D, paused and" \
		"fenced; no QEMU crashed; exit 3"
	write_from "$(ns_of $D)" && fail "m4: a write from $D, not the holder, was accepted"
	rm -f "$T/refuse-transfer"
	recover m4
	expect "m4: recover exit" $RC 0
	expect "m4: where after recover" "$(where)" "$(on $D)"
	expect "m4: lease after recover" "$(lease)" "true $(holder_of $D) $((E1 + 1))"
	expect "m4: last journal step" "$(last_step "$JOURNAL")" done
	E1=$((E1 + 1)) HERE=$D
	fenced_to $D
	ok "4b. then recover: the lease moved, the domain resumed on $D (epoch $E1); only $D can write"
fi

# ==== 5. the companion killed right after the lease moved; recover finishes
S=$HERE D=$(other $HERE)
mig m5 $S $D 'lease-transferred:kill -KILL $RINGSTOR_MIGRATE_PID'
expect "m5: exit" $RC 137
expect "m5: last journal step" "$(last_step "$JOURNAL")" lease-transferred
expect "m5: where, companion killed" "$(where)" "$(on $D paused)"
recover m5
expect "m5: recover exit" $RC 0
grep -q "> finish" "$T/m5.rec" || fail "m5: recover did not decide to finish"
expect "m5: where" "$(where)" "$(on $D)"
expect "m5: lease" "$(lease)" "true $(holder_of $D) $((E1 + 1))"
has_steps "$JOURNAL" lease-transferred recover dest-running source-stopped done
E1=$((E1 + 1)) HERE=$D
fenced_to $D
ok "5. $S -> $D, companion killed after the lease transfer: recover resumed the domain on $D, lease epoch $E1;" \
	"only $D can write"

# ==== 6. the companion killed at the transfer point (the domain paused on
# the destination, gone from the source, the lease still the source's):
# recover undoes it by a migration back, or (QEMU < 10) finishes it
S=$HERE D=$(other $HERE)
mig m6 $S $D 'transfer-point:kill -KILL $RINGSTOR_MIGRATE_PID'
expect "m6: exit" $RC 137
expect "m6: where, companion killed" "$(where)" "$(on $D paused)"
recover m6
expect "m6: recover exit" $RC 0
grep -q "> undo" "$T/m6.rec" || fail "m6: recover did not decide to undo"
expect "m6: QEMU processes" "$(nqemu)" 1
if [ $BACK_OK = 1 ]; then
	expect "m6: where" "$(where)" "$(on $S)"
	expect "m6: lease" "$(lease)" "true $(holder_of $S) $E1"
	expect "m6: last journal step" "$(last_step "$JOURNAL")" rolled-back
	ok "6. $S -> $D, companion killed at the transfer point: recover migrated the domain back, runs on $S"
else
	grep -q "cannot be migrated back" "$T/m6.rec" || fail "m6: recover did not say why it went forward"
	expect "m6: where" "$(where)" "$(on $D)"
	expect "m6: lease" "$(lease)" "true $(holder_of $D) $((E1 + 1))"
	expect "m6: last journal step" "$(last_step "$JOURNAL")" done
	E1=$((E1 + 1)) HERE=$D
	ok "6. $S -> $D, companion killed at the transfer point: recover could not migrate it back (QEMU $QEMU_MAJOR)," \
		"finished it: runs on $D, lease epoch $E1"
fi

# ==== 7. the migration times out: the source's QEMU is stopped (SIGSTOP)
# as the migration starts and continued 6 s later, --timeout 2: virsh is
# killed, `virsh domjobabort`, rolled back
S=$HERE D=$(other $HERE)
SRC_QEMU_PID=$(cat "$(qemu_pidfile $S)")
rm -f "$T/cont.done"
mig m7 $S $D "migrating:kill -STOP $SRC_QEMU_PID; (sleep 6; kill -CONT $SRC_QEMU_PID; touch $T/cont.done) >/dev/null 2>&1 &" \
	--timeout 2
for _ in $(seq 100); do [ -e "$T/cont.done" ] && break; sleep 0.1; done
expect "m7: exit" $RC 1
grep -q "timed out" "$T/m7.out" || fail "m7: no timeout reported"
for _ in $(seq 50); do [ "$(where)" = "$(on $S)" ] && break; sleep 0.2; done
expect "m7: where" "$(where)" "$(on $S)"
expect "m7: lease" "$(lease)" "true $(holder_of $S) $E1"
has_steps "$JOURNAL" migrating rollback source-resumed rolled-back
expect "m7: QEMU processes" "$(nqemu)" 1
ok "7. $S -> $D timed out: aborted, rolled back, runs on $S, lease unchanged"

# ==== 8. and once more, after all that, with a configuration that gives
# no domain XML: the companion reads it on the source (virsh dumpxml)
sed '/domain_xml = /s/domain_xml = "[^"]*";//' "$T/migrate.conf" >"$T/migrate-nodx.conf"
grep -q domain_xml "$T/migrate-nodx.conf" && fail "the test's configuration still names a domain XML"
S=$HERE D=$(other $HERE)
CONF=$T/migrate-nodx.conf mig m8 $S $D
expect "m8: exit" $RC 0
grep -q "^PASS identity\[0\]: $URL" "$T/m8.out" || fail "m8: the disk of the source's domain XML was not compared"
expect "m8: where" "$(where)" "$(on $D)"
expect "m8: lease" "$(lease)" "true $(holder_of $D) $((E1 + 1))"
fenced_to $D
ok "8. $S -> $D (the domain's disks from virsh dumpxml on $S): runs on $D, lease epoch $((E1 + 1)); only $D can write"

# ==== iSCSI: the second domain, on LUN 1, logging in with its host's
# initiator name; the driver gives the destination its own definition
# (virsh migrate --xml/--persistent-xml with the destination's name),
# else the lease could not tell the two hosts' QEMUs apart
DOM=$DOM_ISCSI
ilease() { # "HELD HOLDER EPOCH" of the LUN's lease
	$ADM --mode lease --op show --tid 1 --lun 1 --json 2>/dev/null | python3 -c '
import json, sys
l = json.load(sys.stdin)["leases"]
print("%s %s %s" % (str(l[0]["held"]).lower(), l[0]["holder"], l[0]["epoch"]) if l else "false - 0")'
}
write_as() { # NS INITIATOR: 0 if a 4 KiB write at 1 MiB succeeds with that initiator name
	NX "$1" qemu-io --image-opts \
		"driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=10.78.0.10:3260,file.target=$IQN,file.lun=1,file.initiator-name=$2" \
		-c "write -P 0x5a 1M 4k" >"$T/qemu-io.out" 2>&1 && ! grep -qi "error\|failed" "$T/qemu-io.out"
}
init_of() { [ "$1" = h1 ] && echo $INIT_H1 || echo $INIT_H2; }
# iscsi_on HOST: the domain's QEMU there logs in as HOST, and so will its persistent definition
iscsi_on() {
	local pid
	pid=$(dom_qemu_pids) || true
	[ "$(echo "$pid" | wc -w)" = 1 ] || fail "iSCSI domain: QEMU processes: '$pid'"
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "\"initiator-name\":\"$(init_of "$1")\"" ||
		fail "the QEMU on $1 does not log in as $(init_of "$1"): $(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o '"initiator-name":"[^"]*"')"
	V "$1" dumpxml --inactive "$DOM" | grep -q "<iqn name='$(init_of "$1")'/>" ||
		fail "the persistent definition on $1 does not name $(init_of "$1")"
}
iscsi_fenced_to() { # HOST: only HOST's initiator name can write the LUN
	write_as "$(ns_of "$(other "$1")")" "$(init_of "$(other "$1")")" &&
		fail "a write as $(init_of "$(other "$1")"), not the holder, was accepted"
	write_as "$(ns_of "$1")" "$(init_of "$1")" || { cat "$T/qemu-io.out"; fail "a write as the holder $(init_of "$1") was refused"; }
}
V h1 define "$T/$DOM.xml" >/dev/null || fail "virsh define $DOM on h1"
V h1 start "$DOM" >"$T/start.out" 2>&1 || { cat "$T/start.out" "$T/h1/log/qemu/$DOM.log"; fail "virsh start $DOM on h1"; }
expect "iSCSI domain on h1" "$(where)" "$(on h1)"
ok "domain $DOM running on h1, disk iscsi://10.78.0.10/$IQN/1 as $INIT_H1"

# the lease identity given is not the name the domain's disk logs in with:
# refused before the lease is taken (it would fence the running domain)
CONF= mig i0 h1 h2 "" --source-holder iqn.2026-11.test:other
expect "i0: exit" $RC 1
grep -q "log(s) in as the source's lease identity iqn.2026-11.test:other" "$T/i0.out" || fail "i0: the reason"
expect "i0: last journal step" "$(last_step "$JOURNAL")" aborted
expect "i0: lease" "$(ilease)" "false - 0"
expect "i0: where" "$(where)" "$(on h1)"
ok "i0. the domain's disk logs in as $INIT_H1, the source's identity given is another: refused, lease not taken"

CONF= mig i1 h1 h2
expect "i1: exit" $RC 0
grep -q "^PASS identity\[0\]" "$T/i1.out" || fail "i1: the LUN's identity was not compared"
grep -q "initiator name on h2 will be $INIT_H2" "$T/i1.out" || fail "i1: the destination's initiator name not said"
expect "i1: where" "$(where)" "$(on h2)"
read -r held holder IE <<<"$(ilease)"
expect "i1: lease" "$held $holder" "true $INIT_H2"
iscsi_on h2
iscsi_fenced_to h2
ok "i1. h1 -> h2: runs on h2 as $INIT_H2 (live and persistent definition), LUN lease $INIT_H2 epoch $IE;" \
	"a write as $INIT_H1 refused, as $INIT_H2 accepted"
mig i2 h2 h1
expect "i2: exit" $RC 0
expect "i2: where" "$(where)" "$(on h1)"
expect "i2: lease" "$(ilease)" "true $INIT_H1 $((IE + 1))"
iscsi_on h1
iscsi_fenced_to h1
ok "i2. h2 -> h1: runs on h1 as $INIT_H1 again, lease epoch $((IE + 1)); only $INIT_H1 can write"
ls /tmp/ringstor-migrate.* >/dev/null 2>&1 && fail "temporary domain XML left in /tmp: $(ls -d /tmp/ringstor-migrate.*)"

kill -0 "$DAEMON_PID" 2>/dev/null || fail "ringstord died"
ok "libvirt migration cases passed"
