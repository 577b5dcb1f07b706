#!/usr/bin/env bash
# libiscsi's conformance suite (iscsi-test-cu) for the commands issue 2 covers.
# Every selected test must pass; skipped tests are counted and printed.
. "$(dirname "$0")/lib.sh"
command -v iscsi-test-cu >/dev/null || skip "iscsi-test-cu not installed"

LUN_SIZE=64M write_config "$T/rs.conf" "$T/lun1.img"
start_daemon "$T/rs.conf"
$RINGSTORADM -C "$SOCK" --lld iscsi --mode target --op bind --tid 1 -Q $INIT1 >/dev/null
$RINGSTORADM -C "$SOCK" --lld iscsi --mode target --op bind --tid 1 -Q $INIT2 >/dev/null

suites=${CU_SUITES:-"SCSI.TestUnitReady SCSI.Inquiry SCSI.ReadCapacity10 SCSI.ReadCapacity16
SCSI.Read6 SCSI.Read10 SCSI.Read12 SCSI.Read16 SCSI.Write10 SCSI.Write12 SCSI.Write16
SCSI.Verify10 SCSI.Verify12 SCSI.Verify16 SCSI.WriteVerify10 SCSI.WriteVerify12 SCSI.WriteVerify16
SCSI.ModeSense6 SCSI.StartStopUnit SCSI.PreventAllow SCSI.ReportSupportedOpcodes SCSI.Mandatory
iSCSI.iSCSIcmdsn iSCSI.iSCSIdatasn iSCSI.iSCSIResiduals iSCSI.iSCSITMF"}
total_fail=0
for s in $suites; do
	timeout 300 iscsi-test-cu -d -v -i $INIT1 -I $INIT2 --test="$s" "$(URL)" >"$T/cu.log" 2>&1
	score=$(python3 "$TOP/tests/cu_score.py" "$T/cu.log")
	echo "$s: $score"
	f=$(echo "$score" | awk '{print $3}')
	n=$(echo "$score" | awk '{print $1 + $3 + $5}')
	if [ "${f:-1}" != 0 ] || [ "${n:-0}" = 0 ]; then
		total_fail=$((total_fail + 1))
		python3 "$TOP/tests/cu_score.py" "$T/cu.log" -v | grep -v "^PASS" | sed 's/^/    /'
	fi
	daemon_alive || fail "daemon died during $s"
done
[ $total_fail -eq 0 ] || fail "$total_fail suites with failures"
