#!/usr/bin/env bash
# iSCSI protocol conformance at the PDU level (tests/iscsi_proto.py): login
# errors, text continuation, SendTargets, digests, R2T, TMFs, logout,
# reinstatement, CHAP (one-way, mutual, discovery; all four CHAP_A
# algorithms), portal groups, ALUA target port groups, EXTENDED COPY between
# LUNs of a target (and not into another target's) and the target's logout
# request (Async Message).
# Then the same features through libiscsi: CHAP URLs and mutual CHAP.
. "$(dirname "$0")/lib.sh"

# Two portals in two portal groups: 127.0.0.1:$PORT (tag 1) and
# 127.0.0.2:$PORT2 (tag 2).
PORT2=$(free_port)
write_config "$T/rs.conf" "$T/lun1.img" "127.0.0.0/8"
start_daemon "$T/rs.conf" --iscsi-portal "127.0.0.2:$PORT2,2"
ADM="$RINGSTORADM -C $SOCK"

# EXTENDED COPY: a second LUN on target 1 and a second target with one LUN.
IQN2=$IQN.two
$ADM --mode logicalunit --op new --tid 1 --lun 2 --backing-store "$T/lun2.img" \
	--params create=1,size=4M >/dev/null || fail "LUN 2 new"
$ADM --mode target --op new --tid 2 --targetname "$IQN2" >/dev/null || fail "target 2 new"
$ADM --mode logicalunit --op new --tid 2 --lun 1 --backing-store "$T/t2lun1.img" \
	--params create=1,size=4M >/dev/null || fail "target 2 LUN 1 new"
$ADM --mode target --op bind --tid 2 --initiator-address ALL >/dev/null || fail "target 2 bind"

python3 "$TOP/tests/iscsi_proto.py" --port "$PORT" --target "$IQN" \
	--adm "$ADM" --portal2 "127.0.0.2:$PORT2,2" --target2 "$IQN2" \
	--groups login,discovery,ffp,digests,r2t,vanish,reinstate,tmf,chap,chapdisc,portals,alua,xcopy,async \
	|| fail "raw PDU checks"
daemon_alive || fail "daemon died"
ok "raw PDU checks"

# Secrets never reach the log.
grep -q "alice-secret-1\|target-secret-9\|disco-secret-22" "$T/daemon.log" && fail "a CHAP secret was logged"
ok "no secret in the log"

# libiscsi clients: CHAP through the URL, mutual CHAP through its environment.
if command -v iscsi-inq >/dev/null; then
	$ADM --lld iscsi --mode account --op new --user libuser --password libsecret12345 || fail "account new"
	$ADM --lld iscsi --mode account --op new --user tgtout --password tgtsecret12345 || fail "account new"
	$ADM --lld iscsi --mode account --op bind --tid 1 --user libuser || fail "account bind"
	U="iscsi://libuser%libsecret12345@127.0.0.1:$PORT/$IQN/1"
	iscsi-inq -i $INIT1 "$U" | grep -q "^Vendor:RINGSTOR" || fail "iscsi-inq with CHAP"
	iscsi-inq -i $INIT1 "iscsi://libuser%wrongsecret99@127.0.0.1:$PORT/$IQN/1" >"$T/o" 2>&1 &&
		fail "wrong CHAP secret accepted"
	grep -qi "authentication failure" "$T/o" || fail "wrong secret: $(cat "$T/o")"
	iscsi-inq -i $INIT1 "iscsi://127.0.0.1:$PORT/$IQN/1" >/dev/null 2>&1 && fail "login without CHAP accepted"
	ok "libiscsi one-way CHAP"
	# Mutual: libiscsi checks the target's CHAP_N/CHAP_R.
	LIBISCSI_CHAP_TARGET_USERNAME=tgtout LIBISCSI_CHAP_TARGET_PASSWORD=tgtsecret12345 \
		iscsi-inq -i $INIT1 "$U" >/dev/null 2>&1 && fail "mutual CHAP without an outgoing account"
	$ADM --lld iscsi --mode account --op bind --tid 1 --user tgtout --outgoing || fail "bind outgoing"
	LIBISCSI_CHAP_TARGET_USERNAME=tgtout LIBISCSI_CHAP_TARGET_PASSWORD=tgtsecret12345 \
		iscsi-inq -i $INIT1 "$U" | grep -q "^Vendor:RINGSTOR" || fail "mutual CHAP"
	LIBISCSI_CHAP_TARGET_USERNAME=tgtout LIBISCSI_CHAP_TARGET_PASSWORD=notthesecret1 \
		iscsi-inq -i $INIT1 "$U" >/dev/null 2>&1 && fail "initiator accepted a wrong target secret"
	ok "libiscsi mutual CHAP"
	# Discovery CHAP (tid 0).
	$ADM --lld iscsi --mode account --op bind --tid 0 --user libuser || fail "bind discovery"
	iscsi-ls -i $INIT1 "iscsi://127.0.0.1:$PORT/" >/dev/null 2>&1 && fail "discovery without CHAP accepted"
	iscsi-ls -i $INIT1 "iscsi://libuser%libsecret12345@127.0.0.1:$PORT/" | grep -q "$IQN" ||
		fail "discovery with CHAP"
	ok "libiscsi discovery CHAP"
	grep -q "libsecret12345\|tgtsecret12345" "$T/daemon.log" && fail "a CHAP secret was logged"
	daemon_alive || fail "daemon died"
fi
grep -qi "sanitizer\|runtime error" "$T/daemon.log" && fail "sanitizer report"
ok "no sanitizer report"
