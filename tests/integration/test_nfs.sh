#!/usr/bin/env bash
# test_nfs.sh - the NFSv3 core (nfs3.c, fh.c, fsops.c) against real clients:
#   - libnfs tools (nfs-ls, nfs-cat, nfs-cp in and out, byte for byte) with
#     ?nfsport=&mountport= URLs;
#   - qemu-img create / info / convert in and out / compare on nfs:// URLs
#     (QEMU's driver needs the portmapper on port 111: the test runs in a
#     network namespace of its own, where our built-in portmapper has 111);
#   - a 50,000-entry directory listed with READDIRPLUS (nfs-ls);
#   - a daemon restart (SIGTERM, clean exit, serves again).
# The raw protocol checks are tests/nfs_raw_test.c's (test_nfs_raw.sh).
# Runs the real daemon (build/ringstord --nfs-listen ... --portmap ADDR:PORT).
# Env: BUILD.  Exit 0 pass, 1 fail, 77 skip.
set -u

# A private network namespace: port 111 and 2049 are ours whatever runs on
# the host (rpcbind, a benchmark's nfs-ganesha).
if [ -z "${RS_IN_NETNS:-}" ] && [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
	RS_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
if [ -n "${RS_IN_NETNS:-}" ]; then
	ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null || true
fi

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs_lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
command -v nfs-ls >/dev/null || skip "libnfs-utils (nfs-ls) not installed"
[ -x "$RINGSTORD" ] || fail "build $RINGSTORD first"

if [ -n "${RS_IN_NETNS:-}" ]; then
	NFSP=2049; MNTP=20048; PMP=111
else
	NFSP=$(free_port); MNTP=$(free_port); PMP=$(free_port)
fi
EXP=$T/export
mkdir -p "$EXP/dir1" "$T/state"
echo "hello from ringstor" >"$EXP/file1"
Q="?nfsport=$NFSP&mountport=$MNTP"
NFSD_WAIT_PORT=$NFSP

start_gw() {
	start_nfsd --nfs-listen "127.0.0.1:$NFSP" --mount-port "$MNTP" --portmap "127.0.0.1:$PMP" \
		--nfs-export "$EXP 127.0.0.1(rw,insecure,no_root_squash,sync)"
}
stop_gw() { stop_nfsd; }

start_gw
ok "gateway up: nfs $NFSP, mount $MNTP, portmap $PMP${RS_IN_NETNS:+ (own network namespace)}"

# ------------------------------------------------------------ libnfs tools
out=$(nfs-ls "nfs://127.0.0.1$EXP$Q" 2>&1) || fail "nfs-ls: $out"
echo "$out" | grep -q file1 && echo "$out" | grep -q dir1 || fail "nfs-ls output: $out"
ok "nfs-ls lists the export"
out=$(nfs-cat "nfs://127.0.0.1$EXP/file1$Q" 2>&1) || fail "nfs-cat: $out"
[ "$out" = "hello from ringstor" ] || fail "nfs-cat output: $out"
ok "nfs-cat reads a file"
head -c 5000000 /dev/urandom >"$T/blob"
nfs-cp "$T/blob" "nfs://127.0.0.1$EXP/dir1/blob$Q" >"$T/cp.log" 2>&1 || fail "nfs-cp in: $(cat "$T/cp.log")"
cmp "$T/blob" "$EXP/dir1/blob" || fail "nfs-cp in: content differs"
nfs-cp "nfs://127.0.0.1$EXP/dir1/blob$Q" "$T/blob.back" >"$T/cp.log" 2>&1 || fail "nfs-cp out: $(cat "$T/cp.log")"
cmp "$T/blob" "$T/blob.back" || fail "nfs-cp out: content differs"
ok "nfs-cp 5 MB in and out, byte for byte"
out=$(nfs-cat "nfs://127.0.0.1$EXP/nope$Q" 2>&1) && fail "nfs-cat of a missing file succeeded"
ok "nfs-cat of a missing file fails"

# --------------------------------------------------------------- qemu-img
if ! command -v qemu-img >/dev/null; then
	echo "qemu-img not installed: qemu checks skipped"
elif [ "$PMP" != 111 ]; then
	echo "no private network namespace (needs root and unshare): qemu nfs:// checks skipped"
else
	U=nfs://127.0.0.1$EXP
	qemu-img create -f qcow2 "$U/t.qcow2" 64M >"$T/q.log" 2>&1 || fail "qemu-img create: $(cat "$T/q.log")"
	qemu-img info "$U/t.qcow2" 2>&1 | grep -q "virtual size: 64 MiB" || fail "qemu-img info"
	head -c 24M /dev/urandom >"$T/raw.img"
	qemu-img convert -f raw -O qcow2 "$T/raw.img" "$U/c.qcow2" >"$T/q.log" 2>&1 ||
		fail "qemu-img convert in: $(cat "$T/q.log")"
	qemu-img compare -f raw -F qcow2 "$T/raw.img" "$U/c.qcow2" >"$T/q.log" 2>&1 ||
		fail "qemu-img compare: $(cat "$T/q.log")"
	qemu-img convert -f qcow2 -O raw "$U/c.qcow2" "$T/back.raw" >"$T/q.log" 2>&1 ||
		fail "qemu-img convert out: $(cat "$T/q.log")"
	cmp "$T/raw.img" "$T/back.raw" || fail "qemu-img round trip differs"
	qemu-img convert -f raw -O raw "$T/raw.img" "$U/r.raw" >"$T/q.log" 2>&1 ||
		fail "qemu-img convert raw: $(cat "$T/q.log")"
	cmp "$T/raw.img" "$EXP/r.raw" || fail "qemu-img raw copy differs"
	ok "qemu-img create/info/convert in and out/compare on nfs:// (24 MiB, byte for byte)"
fi

# ------------------------------------------------- 50,000-entry directory
python3 - "$EXP/big" <<'PY' || fail "cannot create the big directory"
import os, sys
d = sys.argv[1]
os.mkdir(d)
for i in range(50000):
    os.close(os.open(os.path.join(d, "file-%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
PY
start=$(date +%s)
nfs-ls "nfs://127.0.0.1$EXP/big$Q" >"$T/big.ls" 2>&1 || fail "nfs-ls big: $(tail -3 "$T/big.ls")"
n=$(grep -c " file-" "$T/big.ls")
u=$(grep -o "file-[0-9]*" "$T/big.ls" | sort -u | wc -l)
[ "$n" = 50000 ] && [ "$u" = 50000 ] || fail "READDIRPLUS listing: $n entries, $u unique (want 50000)"
ok "READDIRPLUS of a 50,000-entry directory: all names once ($(( $(date +%s) - start ))s)"

# The raw protocol checks (handles and the write verifier across a restart,
# forged handles, STALE, WRITE stable_how, cookies, squashing, ...) are in
# tests/nfs_raw_test.c, run by test_nfs_raw.sh.  Here: a restart keeps the
# files reachable through the same URL.
stop_gw
start_gw
out=$(nfs-cat "nfs://127.0.0.1$EXP/file1$Q" 2>&1) || fail "nfs-cat after a restart: $out"
[ "$out" = "hello from ringstor" ] || fail "nfs-cat after a restart: $out"
ok "restart: the export serves again"

stop_gw
check_daemon_log
ok "clean shutdown"
exit 0
