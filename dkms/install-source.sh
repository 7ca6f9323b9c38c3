#!/bin/sh
# Copies the module source into /usr/src/atomik-VERSION (the layout dkms.conf expects) and
# registers it with DKMS. Run from a checkout: dkms/install-source.sh [DESTROOT]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$here/dkms/dkms.conf")
dest=${1:-}/usr/src/atomik-$version
rm -rf "$dest"
mkdir -p "$dest/dkms" "$dest/kmod" "$dest/libatomik/src"
cp "$here/dkms/dkms.conf" "$dest/"
cp "$here/dkms/build.sh" "$here/dkms/check-kernel-tree.sh" "$here/dkms/99-atomik.rules" "$dest/dkms/"
cp "$here/kmod/Kbuild" "$here/kmod/Makefile" "$here"/kmod/*.rs "$here"/kmod/*.c "$dest/kmod/"
cp "$here/libatomik/src/abi.rs" "$here/libatomik/src/fp_core.rs" "$here/libatomik/src/sdk_abi.rs" "$dest/libatomik/src/"
mkdir -p "$dest/libatomik/src/backend/fpga" && cp "$here/libatomik/src/backend/fpga/regs.rs" "$dest/libatomik/src/backend/fpga/"
echo "$dest"
