#!/usr/bin/env bash
# I/O statistics (issue 7 item 4): ringstoradm --op stat while a load runs.
# Counters grow, the JSON parses, latency percentiles are ordered, errors are
# counted by sense key, sessions and initiators are listed, --interval gives
# rates; the Prometheus endpoint when the daemon offers one.
. "$(dirname "$0")/lib.sh"

command -v qemu-img >/dev/null || skip "qemu-img not installed"
command -v iscsi-inq >/dev/null || skip "iscsi-inq (libiscsi-bin) not installed"

write_config "$T/c.conf" "$T/lun1.img"
PROM_PORT=""
PROM_ARGS=()
if $RINGSTORD --help 2>&1 | grep -q -- '--prometheus'; then
	PROM_PORT=$(free_port)
	PROM_ARGS=(--prometheus "127.0.0.1:$PROM_PORT")
fi
start_daemon "$T/c.conf" "${PROM_ARGS[@]}"
ADM() { $RINGSTORADM -C "$SOCK" "$@"; }

# check_json FILE PYTHON-EXPR...: each expression (over `d`, the document)
# must be true.
check_json() {
	local f=$1; shift
	python3 - "$f" "$@" <<'PY' || fail "JSON check failed on $f: $(head -c 2000 "$f")"
import json, sys
d = json.load(open(sys.argv[1]))
def lun(tid, n):
    for t in d["targets"]:
        if t["tid"] == tid:
            for l in t["luns"]:
                if l["lun"] == n:
                    return l
    raise SystemExit("no LUN %d of target %d" % (n, tid))
def ordered(c):
    l = c["latency_us"]
    return l["p50"] <= l["p90"] <= l["p99"] <= l["p99.9"] <= l["max"] and l["avg"] <= l["max"]
for e in sys.argv[2:]:
    if not eval(e):
        raise SystemExit("false: " + e)
PY
}

# ---- before any I/O
ADM --mode sys --op stat --json >"$T/s0.json" || fail "sys stat failed"
check_json "$T/s0.json" 'd["interval_s"] is None' 'lun(1,1)["read"]["ops"] == 0' \
	'd["targets"][0]["name"] == "'"$IQN"'"' 'd["exports"] == []'
ok "stat before I/O: zero counters, JSON parses"

# ---- a read load, then the totals
qemu-img bench -f raw -c 20000 -d 8 -s 4k -t none "$(URL 1)" >"$T/bench1.log" 2>&1 ||
	fail "qemu-img bench (read) failed: $(tail -3 "$T/bench1.log")"
ADM --mode sys --op stat --json >"$T/s1.json" || fail "sys stat failed"
check_json "$T/s1.json" 'lun(1,1)["read"]["ops"] >= 20000' \
	'lun(1,1)["read"]["bytes"] >= 20000 * 4096' \
	'ordered(lun(1,1)["read"])' 'lun(1,1)["read"]["latency_us"]["p50"] > 0' \
	'lun(1,1)["read"]["iops"] > 0' 'lun(1,1)["inflight"] == 0' \
	'lun(1,1)["errors"]["total"] == lun(1,1)["errors"]["check_condition"] + lun(1,1)["errors"]["busy"] + lun(1,1)["errors"]["reservation_conflict"] + lun(1,1)["errors"]["task_set_full"] + lun(1,1)["errors"]["other"]'
ok "after 20000 reads: counters grew, p50 <= p90 <= p99 <= p99.9 <= max"

# ---- errors: READ (10) beyond the end is ILLEGAL REQUEST, LBA OUT OF
# RANGE (SBC-3 5.11); libiscsi's conformance case sends a series of them.
before=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["targets"][0]["luns"][0]["errors"]["check_condition"])' "$T/s1.json")
timeout 120 iscsi-test-cu -i "$INIT1" --test=SCSI.Read10.BeyondEol "$(URL 1)" >"$T/cu.log" 2>&1 ||
	fail "iscsi-test-cu SCSI.Read10.BeyondEol failed: $(tail -5 "$T/cu.log")"
ADM --mode target --op stat --tid 1 --json >"$T/s2.json" || fail "target stat failed"
check_json "$T/s2.json" "lun(1,1)['errors']['check_condition'] >= $before + 10" \
	'lun(1,1)["errors"]["sense_keys"].get("ILLEGAL_REQUEST", 0) >= 10' \
	'lun(1,1)["errors"]["total"] >= lun(1,1)["errors"]["check_condition"]' \
	'len(d["targets"]) == 1'
ok "CHECK CONDITION counted with its sense key"

# ---- a write load in the background: interval rates, sessions, initiators
qemu-img bench -f raw -c 4000000 -d 8 -s 4k -w -t none "$(URL 1)" >"$T/bench2.log" 2>&1 &
BENCH=$!
for _ in $(seq 50); do
	n=$(ADM --mode target --op stat --tid 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["targets"][0]["sessions"])')
	[ "$n" -ge 1 ] && break
	sleep 0.1
done
ADM --mode target --op stat --tid 1 --interval 1 --json >"$T/s3.json" || fail "interval stat failed"
ADM --mode sys --op stat --interval 0.5 >"$T/s3.txt" || fail "interval text stat failed"
kill "$BENCH" 2>/dev/null; wait "$BENCH" 2>/dev/null
check_json "$T/s3.json" '0.9 <= d["interval_s"] <= 3' 'lun(1,1)["write"]["ops"] > 0' \
	'lun(1,1)["write"]["iops"] > 0' 'lun(1,1)["write"]["bytes_per_s"] > 0' \
	'ordered(lun(1,1)["write"])' 'lun(1,1)["read"]["ops"] == 0' \
	'd["targets"][0]["sessions"] >= 1' 'len(d["targets"][0]["initiators"]) >= 1'
grep -q "^Target 1: $IQN" "$T/s3.txt" || fail "text: no target line: $(cat "$T/s3.txt")"
grep -q "LUN 1: rates over the last" "$T/s3.txt" || fail "text: no interval LUN line"
grep -Eq "^ +write +[0-9.]+ +[0-9.]+ +[1-9][0-9]* " "$T/s3.txt" || fail "text: no write rate: $(cat "$T/s3.txt")"
grep -q "p99.9_us" "$T/s3.txt" || fail "text: no percentile header"
ok "interval rates during a write load; sessions and initiators shown"

# ---- text totals and argument errors
ADM --mode target --op stat --tid 1 >"$T/s4.txt" || fail "target stat text failed"
grep -q "totals since creation" "$T/s4.txt" || fail "text totals: $(cat "$T/s4.txt")"
ADM --mode target --op stat --tid 9 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "stat of a missing target: exit $rc, expected 2 (ENOENT)"
ADM --mode sys --op stat --interval 0 >/dev/null 2>&1; rc=$?
[ $rc -eq 22 ] || fail "--interval 0: exit $rc, expected 22"
ADM --mode sys --op show --interval 1 >/dev/null 2>&1; rc=$?
[ $rc -eq 22 ] || fail "--interval without stat: exit $rc, expected 22"
ADM --mode logicalunit --op stat --tid 1 --lun 1 >/dev/null 2>&1; rc=$?
[ $rc -eq 22 ] || fail "stat in mode logicalunit: exit $rc, expected 22"
ok "text totals; bad arguments rejected"

# ---- a deleted and recreated LUN starts from zero
ADM --mode logicalunit --op delete --tid 1 --lun 1 >/dev/null || fail "lun delete failed"
ADM --mode logicalunit --op new --tid 1 --lun 1 -b "$T/lun1.img" >/dev/null || fail "lun new failed"
ADM --mode sys --op stat --json >"$T/s5.json" || fail "sys stat failed"
check_json "$T/s5.json" 'lun(1,1)["read"]["ops"] == 0' 'lun(1,1)["write"]["ops"] == 0'
ok "recreated LUN starts from zero"

# ---- Prometheus
if [ -n "$PROM_PORT" ]; then
	curl -sf "http://127.0.0.1:$PROM_PORT/metrics" >"$T/metrics" || fail "GET /metrics failed"
	grep -q '^# TYPE ringstor_lun_ops_total counter' "$T/metrics" || fail "no ops metric"
	grep -q "^ringstor_lun_ops_total{tid=\"1\",target=\"$IQN\",lun=\"1\",class=\"read\"} " "$T/metrics" ||
		fail "no per-LUN read counter: $(head -20 "$T/metrics")"
	grep -q '^ringstor_lun_latency_seconds_bucket{.*le="+Inf"}' "$T/metrics" || fail "no histogram"
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROM_PORT/nope")
	[ "$code" = 404 ] || fail "GET /nope: HTTP $code"
	ok "Prometheus /metrics"
else
	echo "note: ringstord has no --prometheus option yet; endpoint not tested here"
fi

daemon_alive || fail "daemon died"
ok "daemon alive"
