#!/usr/bin/env bash
# Run every tests/integration/test_*.sh against the real daemon.
# Each test exits 0 (pass), 77 (skip, with a reason on stdout) or anything else (fail).
# Env: BUILD (build dir, default build), TESTS (space-separated subset).
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
export TOP=$PWD
tests=${TESTS:-$(ls tests/integration/test_*.sh)}
pass=0 fail=0 skip=0 failed=""
for t in $tests; do
	name=$(basename "$t" .sh)
	log=$BUILD/tests/$name.log
	mkdir -p "$BUILD/tests"
	start=$(date +%s)
	timeout 600 bash "$t" >"$log" 2>&1
	rc=$?
	dur=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${dur}s)";;
	77) skip=$((skip + 1)); echo "SKIP $name: $(tail -1 "$log")";;
	*) fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (rc $rc, ${dur}s)"; tail -40 "$log" | sed 's/^/    /';;
	esac
done
echo "integration: $pass passed, $fail failed, $skip skipped${failed:+ (failed:$failed)}"
[ $fail -eq 0 ]
