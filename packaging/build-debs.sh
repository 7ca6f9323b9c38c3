#!/bin/bash
# Builds the Debian packages atomikctl and atomik-dkms with debhelper (dpkg-buildpackage -b)
# from a copy of the working tree with packaging/debian as debian/. Why debhelper: dh_dkms,
# dh_installsystemd and dh_installsysusers write the standard maintainer scripts (DKMS add,
# build and install for every kernel, and removal; the unit; the group), which cargo-deb does
# not. Needs: apt install debhelper dh-dkms dpkg-dev, and cargo.
#   packaging/build-debs.sh OUTDIR        (CARGO_TARGET_DIR is honoured, e.g. a cache)
set -euo pipefail
OUT=$(mkdir -p "${1:?OUTDIR}" && cd "$1" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
missing=()
for t in dpkg-buildpackage:dpkg-dev dh:debhelper dh_dkms:dh-dkms cargo:cargo; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
[ ${#missing[@]} = 0 ] || { echo "build-debs: missing tools: apt install ${missing[*]}" >&2; exit 1; }
VER=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$REPO/dkms/dkms.conf")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/atomik/target-deb}
# A fixed build directory beside the target directory, files copied with their times, so that
# cargo rebuilds only what changed.
W=$CARGO_TARGET_DIR.src
S=$W/atomik-$VER
rm -rf "$W" && mkdir -p "$S"
(cd "$REPO" && git ls-files -co --exclude-standard -z | grep -zv '^packaging/debian/' |
  xargs -0 cp --parents --preserve=timestamps -t "$S")
cp -r "$REPO/packaging/debian" "$S/debian"
(cd "$S" && dpkg-buildpackage -b -us -uc -d >"$W/build.log" 2>&1) ||
  { tail -40 "$W/build.log" >&2; echo "build-debs: dpkg-buildpackage failed" >&2; exit 1; }
mv "$W"/*.deb "$OUT/"
ls "$OUT"/*.deb
