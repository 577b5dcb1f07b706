#!/usr/bin/env bash
# Install the Debian 12 packages ringstor needs to build and test, if missing.
set -euo pipefail
pkgs=(build-essential pkg-config liburing-dev libconfig-dev libcmocka-dev
      libssl-dev libiscsi-dev libiscsi-bin libnfs-dev libnfs-utils qemu-utils qemu-block-extra
      iproute2 python3 scdoc qemu-system-x86)
# libvirt for the companion's libvirt-driver test (tests/integration/
# test_migrate_libvirt.sh), without recommends: those pull in every QEMU
# architecture, lvm2 and the lxc/vbox/xen drivers.  Not libvirt-daemon-system:
# it wants systemd and creates users; the test runs its own daemons.
norec=(libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu)
missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
	done
}
mapfile -t miss < <(missing "${pkgs[@]}")
mapfile -t miss_norec < <(missing "${norec[@]}")
[ ${#miss[@]} -eq 0 ] && [ ${#miss_norec[@]} -eq 0 ] && exit 0
echo "installing: ${miss[*]} ${miss_norec[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
install() {
	[ $# -eq 0 ] && return 0
	$SUDO apt-get install -y -q "$@" || { $SUDO apt-get update -q && $SUDO apt-get install -y -q "$@"; }
}
install "${miss[@]}"
install --no-install-recommends "${miss_norec[@]}"
