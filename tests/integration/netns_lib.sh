# shellcheck shell=bash
# netns_lib.sh - the migration tests' "hosts and appliance" (sourced after
# lib.sh; the runner only runs test_*.sh).  Network namespaces stand for the
# machines:
#
#   ns H1 (10.78.0.1) --veth--+                       +--veth-- ns H2 (10.78.0.2)
#                             br0 in ns APP (10.78.0.10: ringstord)
#   H1 10.77.0.1/24 <------- veth pair (vmnet0: the migration stream) -------> H2 10.77.0.2/24
#
#   netns_init PREFIX   requirements (ip, python3, root, a built ringstord;
#                       skip or fail as fits); NS_H1 NS_H2 NS_APP named
#                       PREFIX$$h1 ...; NS_APP created (skip if namespaces are
#                       not permitted); the EXIT trap netns_cleanup.  PREFIX
#                       (3 letters) also names the veth devices, so tests that
#                       run at the same time do not collide.
#   netns_hosts         H1, H2, the bridge, stor0 in each host, vmnet0 between them
#   netns_add NS...     one more namespace (lo up), deleted at exit
#   NX NS CMD...        ip netns exec
#   netns_appliance NS SOCK STATE LOG WAIT_PORT ringstord-args...
#                       ringstord -f -C SOCK --state-dir STATE in NS; waits until
#                       10.78.0.10:WAIT_PORT accepts in NS (and SOCK exists, if
#                       SOCK is not "-"); its pid in APPLIANCE_PID.  The first
#                       one becomes lib.sh's DAEMON_PID (daemon_alive, cleanup);
#                       every one is stopped at exit.
#   netns_migrate       MIGRATE: the build's ringstor-migrate if it is newer than
#                       companion/, else one built in $T (sanitized for build-san)
#   netns_qemu [install]  QEMU (skip if missing; with "install", apt-get first)
#   netns_accel         ACCEL=kvm if /dev/kvm runs a QEMU here, else tcg
#                       (RINGSTOR_TEST_ACCEL=tcg forces tcg)
#   netns_qmp_helper    $T/qmp.py SOCK [CMD [JSON-ARGS]] | SOCK hmp 'LINE':
#                       query-status prints the status, hmp the monitor's text,
#                       other commands their "return" as JSON; "absent" if
#                       nobody answers on SOCK
#   qstatus SOCK, qmp SOCK CMD [ARGS], hmp SOCK LINE
#   pid_alive PIDFILE   the process lives (a zombie does not count)
#   expect WHAT GOT WANT
# Every QEMU the tests start writes a pid file under $T (or one level below):
# netns_cleanup kills them all, then stops the appliances, then deletes the
# namespaces.

APP_ADDR=10.78.0.10
ADDR_H1=10.77.0.1 ADDR_H2=10.77.0.2
NETNS_ALL=()
NETNS_DAEMONS=()

NX() { ip netns exec "$@"; }

netns_cleanup() {
	local p pid d
	for p in "$T"/*.pid "$T"/*/*.pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p" 2>/dev/null)
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
	for d in ${NETNS_DAEMONS[@]+"${NETNS_DAEMONS[@]}"}; do
		[ "$d" = "$DAEMON_PID" ] && continue
		kill -0 "$d" 2>/dev/null || continue
		kill -TERM "$d" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$d" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$d" 2>/dev/null
	done
	cleanup
	for ns in ${NETNS_ALL[@]+"${NETNS_ALL[@]}"}; do
		ip netns del "$ns" 2>/dev/null
	done
}

netns_init() {
	NETNS_PREFIX=$1
	command -v ip >/dev/null || skip "ip (iproute2) not installed"
	command -v python3 >/dev/null || skip "python3 not installed"
	[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
	[ -x "$RINGSTORD" ] || fail "build $RINGSTORD first"
	NS_H1=$NETNS_PREFIX$$h1 NS_H2=$NETNS_PREFIX$$h2 NS_APP=$NETNS_PREFIX$$ap
	ip netns add "$NS_APP" 2>/dev/null || skip "ip netns add is not permitted here"
	NETNS_ALL+=("$NS_APP")
	trap netns_cleanup EXIT
	NX "$NS_APP" ip link set lo up
}

netns_add() {
	local ns
	for ns in "$@"; do
		ip netns add "$ns" || fail "ip netns add $ns"
		NETNS_ALL+=("$ns")
		NX "$ns" ip link set lo up
	done
}

netns_hosts() {
	local p=$NETNS_PREFIX$$ i=0 ns
	netns_add "$NS_H1" "$NS_H2"
	NX "$NS_APP" ip link add br0 type bridge || skip "cannot create a bridge here"
	NX "$NS_APP" ip addr add $APP_ADDR/24 dev br0
	NX "$NS_APP" ip link set br0 up
	for ns in "$NS_H1" "$NS_H2"; do
		i=$((i + 1))
		ip link add "${p}s$i" type veth peer name "${p}p$i" || skip "cannot create a veth pair here"
		ip link set "${p}s$i" netns "$ns"
		ip link set "${p}p$i" netns "$NS_APP"
		NX "$ns" ip link set "${p}s$i" name stor0
		NX "$ns" ip addr add "10.78.0.$i/24" dev stor0
		NX "$ns" ip link set stor0 up
		NX "$NS_APP" ip link set "${p}p$i" master br0
		NX "$NS_APP" ip link set "${p}p$i" up
	done
	# the hosts' own link (the VM network, the migration stream)
	ip link add "${p}x1" type veth peer name "${p}x2" || skip "cannot create a veth pair here"
	ip link set "${p}x1" netns "$NS_H1"
	ip link set "${p}x2" netns "$NS_H2"
	NX "$NS_H1" ip link set "${p}x1" name vmnet0
	NX "$NS_H2" ip link set "${p}x2" name vmnet0
	NX "$NS_H1" ip addr add $ADDR_H1/24 dev vmnet0
	NX "$NS_H2" ip addr add $ADDR_H2/24 dev vmnet0
	NX "$NS_H1" ip link set vmnet0 up
	NX "$NS_H2" ip link set vmnet0 up
}

netns_appliance() {
	local ns=$1 sock=$2 state=$3 log=$4 port=$5
	shift 5
	mkdir -p "$state"
	# exec'd directly by ip netns exec, so that $! is ringstord itself
	ip netns exec "$ns" "$RINGSTORD" -f -C "$sock" --state-dir "$state" "$@" >"$log" 2>&1 &
	APPLIANCE_PID=$!
	NETNS_DAEMONS+=("$APPLIANCE_PID")
	[ -n "$DAEMON_PID" ] || DAEMON_PID=$APPLIANCE_PID
	for _ in $(seq 100); do
		kill -0 "$APPLIANCE_PID" 2>/dev/null || { cat "$log"; fail "ringstord exited at startup in $ns"; }
		if NX "$ns" bash -c "exec 3<>/dev/tcp/$APP_ADDR/$port" 2>/dev/null &&
			{ [ "$sock" = - ] || [ -S "$sock" ]; }; then
			return 0
		fi
		sleep 0.1
	done
	cat "$log"
	fail "ringstord in $ns did not start listening on $APP_ADDR:$port"
}

netns_migrate() {
	MIGRATE=$BUILD/ringstor-migrate
	if [ ! -x "$MIGRATE" ] || [ -n "$(find "$TOP/companion" -name '*.[ch]' -newer "$MIGRATE")" ]; then
		MIGRATE=$T/ringstor-migrate
		${CC:-cc} -std=gnu11 -O1 -g -D_GNU_SOURCE -I"$TOP" -o "$MIGRATE" "$TOP"/companion/*.c \
			-liscsi -lnfs -lcrypto -lconfig \
			$( [ "${BUILD##*/}" = build-san ] && echo -fsanitize=address,undefined ) ||
			fail "cannot build ringstor-migrate"
	fi
}

netns_qemu() {
	if ! command -v qemu-system-x86_64 >/dev/null; then
		[ "${1:-}" = install ] || skip "qemu-system-x86_64 not installed (test_migrate_qemu.sh installs it)"
		echo "qemu-system-x86_64 missing: trying apt-get install qemu-system-x86"
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y --no-install-recommends qemu-system-x86 \
			>"$T/apt.log" 2>&1
		command -v qemu-system-x86_64 >/dev/null ||
			skip "qemu-system-x86_64 is not installed and apt-get install qemu-system-x86 failed: $(tail -1 "$T/apt.log")"
	fi
	QEMU=$(command -v qemu-system-x86_64)
}

netns_accel() {
	ACCEL=tcg
	if [ "${RINGSTOR_TEST_ACCEL:-}" != tcg ] && [ -w /dev/kvm ] &&
		timeout 20 "$QEMU" -accel kvm -machine none -nodefaults -display none -S \
			-daemonize -pidfile "$T/kvmprobe.pid" 2>/dev/null; then
		ACCEL=kvm
		kill -KILL "$(cat "$T/kvmprobe.pid")" 2>/dev/null
	fi
	rm -f "$T/kvmprobe.pid"
}

netns_qmp_helper() {
	cat >"$T/qmp.py" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
try:
    s.connect(sys.argv[1])
except OSError:
    print("absent"); sys.exit(0)
f = s.makefile("rw")
def x(cmd, args=None):
    m = {"execute": cmd}
    if args is not None:
        m["arguments"] = args
    f.write(json.dumps(m) + "\n"); f.flush()
    while True:
        line = f.readline()
        if not line:
            print("absent"); sys.exit(0)
        r = json.loads(line)
        if "return" in r:
            return r["return"]
        if "error" in r:
            print("error: %s" % r["error"].get("desc")); sys.exit(1)
json.loads(f.readline())
x("qmp_capabilities")
cmd = sys.argv[2] if len(sys.argv) > 2 else "query-status"
if cmd == "query-status":
    print(x(cmd)["status"])
elif cmd == "hmp":
    print(x("human-monitor-command", {"command-line": sys.argv[3]}), end="")
else:
    print(json.dumps(x(cmd, json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)))
EOF
}
qstatus() { python3 "$T/qmp.py" "$1"; }
qmp() { python3 "$T/qmp.py" "$@"; }
hmp() { python3 "$T/qmp.py" "$1" hmp "$2"; }

# (a killed daemonized QEMU can linger as a zombie of whatever reaps orphans here)
pid_alive() {
	local p
	p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && [ -r "/proc/$p/stat" ] &&
		[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]
}
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
