#!/usr/bin/env bash
# Run each cmocka unit test binary with a timeout; fail if any fails.
set -u
fail=0; n=0
for t in "$@"; do
	n=$((n + 1))
	if timeout 120 "$t" >"$t.log" 2>&1; then
		echo "PASS $(basename "$t") ($(grep -c '^\[       OK \]' "$t.log") cases)"
	else
		echo "FAIL $(basename "$t")"; sed 's/^/    /' "$t.log" | tail -40; fail=1
	fi
done
echo "unit: $n programs, $([ $fail -eq 0 ] && echo all passed || echo FAILURES)"
exit $fail
