#!/usr/bin/env bash
# test_nfs_raw.sh - tests/nfs_raw_test.c (libnfs's raw rpc_mount3_* /
# rpc_nfs3_* / rpc_nlm4_* calls) against the real daemon: every MOUNT and
# NFSv3 procedure, every error path, squashing, the secure-port rule, forged
# handles, READDIRPLUS of 50,000 entries, NLM basics, and the write verifier
# and handles across a daemon restart.  The daemon listens on 127.0.0.1 and
# [::1] (--nfs-listen twice), MOUNT also on its own port, no portmapper.
#
# The program is built by the Makefile ($BUILD/nfs_raw_test) or, if that is
# missing or older than its source, here.  Env: BUILD.  Exit 0 pass, 1 fail,
# 77 skip.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs_lib.sh"

[ -x "$RINGSTORD" ] || fail "build $RINGSTORD first"
[ -f /usr/include/nfsc/libnfs-raw-nfs.h ] || skip "libnfs-dev not installed"
command -v python3 >/dev/null || skip "python3 not installed"

PROG=$BUILD/nfs_raw_test
SRC=$TOP/tests/nfs_raw_test.c
if [ ! -x "$PROG" ] || [ "$SRC" -nt "$PROG" ]; then
	SANF=
	[ "${BUILD##*/}" = build-san ] && SANF="-fsanitize=address -fno-omit-frame-pointer"
	mkdir -p "$BUILD"
	${CC:-cc} -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE $SANF -o "$PROG" "$SRC" -lnfs \
		>"$T/cc.log" 2>&1 || { cat "$T/cc.log"; fail "cannot build $PROG"; }
fi

NFSP=$(free_port); MNTP=$(free_port)
B=$T/exports
mkdir -p "$B/rw" "$B/ro" "$B/sq" "$B/all" "$B/sec" "$B/v6"
chmod 0777 "$B/sq" "$B/all"
echo "read only" >"$B/ro/file"
echo "root's file" >"$B/rw/file"
chmod 0644 "$B/rw/file"

have_v6=0
python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null && have_v6=1
LISTEN=(--nfs-listen "127.0.0.1:$NFSP")
HOST6=()
if [ $have_v6 = 1 ]; then
	LISTEN+=(--nfs-listen "[::1]:$NFSP")
	HOST6=(--host6 ::1)
fi

start_gw() {
	NFSD_WAIT_PORT=$NFSP RINGSTOR_NLM_GRACE=0 start_nfsd "${LISTEN[@]}" --mount-port "$MNTP" --no-portmap \
		--nfs-export "$B/rw 127.0.0.1(rw,insecure,no_root_squash) ::1(rw,insecure,no_root_squash)" \
		--nfs-export "$B/ro 127.0.0.1(ro,insecure)" \
		--nfs-export "$B/sq 127.0.0.1(rw,insecure,root_squash,anonuid=65534,anongid=65534)" \
		--nfs-export "$B/all 127.0.0.1(rw,insecure,all_squash,anonuid=1234,anongid=1234)" \
		--nfs-export "$B/sec 127.0.0.1(rw,no_root_squash)" \
		--nfs-export "$B/v6 ::1(rw,insecure,no_root_squash)"
}

start_gw
ok "ringstord up: NFS on 127.0.0.1${HOST6:+ and [::1]} port $NFSP, MOUNT $MNTP, no portmapper"
"$PROG" --host 127.0.0.1 "${HOST6[@]}" --nfs-port "$NFSP" --mount-port "$MNTP" --base "$B" \
	--phase main --state "$T/raw.state" | tee "$T/raw.out"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || fail "nfs_raw_test (main phase): exit $rc"
stop_nfsd
start_gw
"$PROG" --host 127.0.0.1 --nfs-port "$NFSP" --mount-port "$MNTP" --base "$B" \
	--phase restart --state "$T/raw.state" | tee -a "$T/raw.out"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || fail "nfs_raw_test (after the restart): exit $rc"
stop_nfsd
check_daemon_log
ok "clean shutdown"
exit 0
