#!/bin/sh
# build-deb.sh - build the ringstor and ringstor-host Debian packages from the
# working tree (what `make deb` runs).
#
# dpkg-buildpackage wants debian/ at the top of the source tree; the tree
# keeps it in packaging/debian/.  So: copy the sources (without build output
# and VCS data) to $DEB_OUT/ringstor-VERSION, copy packaging/debian there as
# debian/, build binary packages unsigned, and run lintian when installed.
# The packages end up in $DEB_OUT (default build/deb/).
#
# Environment: DEB_OUT (output directory), DEB_BUILD_OPTIONS (e.g. nocheck),
# LINTIAN=0 to skip lintian.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
version=$(sed -n 's/^#define RINGSTOR_VERSION "\(.*\)"$/\1/p' core/version.h)
debversion=$(sed -n '1s/^ringstor (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ -z "$version" ]; then
	echo "build-deb: cannot read RINGSTOR_VERSION from core/version.h" >&2
	exit 1
fi
# A native package: the Debian version is the upstream version.
if [ "$debversion" != "$version" ]; then
	echo "build-deb: packaging/debian/changelog is at $debversion but core/version.h" \
	     "says $version; add a changelog entry (dch -v $version)" >&2
	exit 1
fi

out=${DEB_OUT:-$top/build/deb}
src=$out/ringstor-$version
rm -rf "$out"
mkdir -p "$src"
tar -C "$top" --exclude=./.git --exclude='./build' --exclude='./build-*' \
    --exclude=./var --exclude=./debian --exclude='./bench/results' -cf - . | tar -C "$src" -xf -
cp -a packaging/debian "$src/debian"

cd "$src"
# Missing tools and build dependencies: installed with apt when we are root
# (like `make deps`), otherwise listed.
need=""
command -v dpkg-buildpackage >/dev/null || need="$need dpkg-dev"
command -v dh >/dev/null || need="$need debhelper"
[ "${LINTIAN:-1}" = 0 ] || command -v lintian >/dev/null || need="$need lintian"
if [ -n "$need" ] || ! dpkg-checkbuilddeps >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "build-deb: missing:$need; as root run: apt-get install$need &&" \
		     "apt-get build-dep $src" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	if [ -n "$need" ]; then
		apt-get install -y -q --no-install-recommends $need ||
			{ apt-get update -q && apt-get install -y -q --no-install-recommends $need; }
	fi
	apt-get build-dep -y -q ./ || { apt-get update -q && apt-get build-dep -y -q ./; }
	dpkg-checkbuilddeps
fi
# Parallel by default (dh honours parallel=N).
case " ${DEB_BUILD_OPTIONS:-} " in
*" parallel="*) ;;
*) export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)";;
esac
dpkg-buildpackage -us -uc -b

cd "$out"
changes=$(ls ./*.changes)
if [ "${LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null; then
	# Errors fail the build; warnings and notes are shown.
	lintian --fail-on error --display-info "$changes"
fi
echo "build-deb: packages in $out:"
ls -1 "$out"/*.deb
