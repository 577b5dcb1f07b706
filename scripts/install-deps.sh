#!/usr/bin/env bash
# Install the Debian 12 packages ringstor needs to build and test, if missing.
set -euo pipefail
pkgs=(build-essential pkg-config liburing-dev libconfig-dev libcmocka-dev
      libssl-dev libiscsi-dev libiscsi-bin libnfs-dev libnfs-utils qemu-utils qemu-block-extra
      iproute2 python3 scdoc qemu-system-x86)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q "${missing[@]}" || { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${missing[@]}"; }
