#!/usr/bin/env bash
# test_nfs_fuzz.sh - mutated ONC RPC calls (tests/rpc_fuzz.py) against every
# program the NFS gateway serves (NFSv3, MOUNT, NLM, NSM, the built-in
# portmapper), over TCP and UDP.  The daemon must answer or drop, never crash
# or hang; afterwards it still serves libnfs clients and stops cleanly on
# SIGTERM.  Under `make SAN=1` any ASan/UBSan report fails the test.
# Env: BUILD, RS_FUZZ_ITER (default 3000), RS_FUZZ_SEED (default: two fixed
# seeds and one from the clock, printed so that a failure can be replayed).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs_lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
[ -x "$RINGSTORD" ] || fail "build $RINGSTORD first"

NFSP=$(free_port); MNTP=$(free_port); NLMP=$(free_port); PMP=$(free_port)
EXP=$T/export
mkdir -p "$EXP"
echo "seed file" >"$EXP/seed.txt"
NFSD_WAIT_PORT=$NFSP
start_nfsd --nfs-listen "127.0.0.1:$NFSP" --mount-port "$MNTP" --nlm-port "$NLMP" \
	--portmap "127.0.0.1:$PMP" --nfs-export "$EXP 127.0.0.1(rw,insecure,no_root_squash)"
ok "gateway up: nfs $NFSP, mount $MNTP, nlm $NLMP, portmap $PMP"

ITER=${RS_FUZZ_ITER:-3000}
SEEDS=${RS_FUZZ_SEED:-"1 2 $(date +%s)"}
for seed in $SEEDS; do
	python3 "$TOP/tests/rpc_fuzz.py" "$PMP" "$EXP" "$ITER" "$seed" || {
		tail -20 "$T/daemon.log"
		fail "fuzzing with seed $seed (replay: RS_FUZZ_SEED=$seed)"
	}
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "ringstord died (seed $seed)"
	check_daemon_log
done
ok "fuzzed with seeds $SEEDS, $ITER calls each"

if command -v nfs-ls >/dev/null; then
	out=$(nfs-ls "nfs://127.0.0.1$EXP?nfsport=$NFSP&mountport=$MNTP" 2>&1) || fail "nfs-ls after fuzzing: $out"
	grep -q "seed.txt" <<<"$out" || fail "nfs-ls after fuzzing does not list seed.txt: $out"
	ok "libnfs client served after fuzzing"
fi
stop_nfsd
check_daemon_log
ok "clean SIGTERM shutdown after fuzzing"
exit 0
