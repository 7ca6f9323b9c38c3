#!/bin/sh
# DKMS MAKE (and PRE_BUILD with --check) of atomik.ko for kernel KVER. Chooses the tree to
# build against, checks it, builds:
#   1. the kernel's own build tree when it has the Rust build products (a kernel you built, or
#      dkms --kernelsourcedir);
#   2. else /usr/lib/atomik/kbuild/KVER from the package atomik-kbuild-KVER (Debian's
#      headers plus the Rust products they lack, made by packaging/kbuild-products.sh).
#   build.sh [--check] KVER KERNEL_SOURCE_DIR MODULE_DIR
set -eu
check_only=0
[ "${1:-}" = --check ] && { check_only=1; shift; }
kver=$1 ksrc=$2 mdir=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
rustc=${ATOMIK_RUSTC:-/usr/bin/rustc}
bindgen=${ATOMIK_BINDGEN:-/usr/bin/bindgen}
overlay=/usr/lib/atomik/kbuild/$kver
if [ -f "$ksrc/rust/libkernel.rmeta" ]; then
  tree=$ksrc
elif [ -f "$overlay/rust/libkernel.rmeta" ]; then
  tree=$overlay
else
  echo "atomik: cannot build for Linux $kver: its build tree $ksrc lacks the Rust build products
  (rust/libkernel.rmeta; Debian's linux-headers packages ship none). Fix: apt install
  atomik-kbuild-$kver, or make that package with packaging/kbuild-products.sh $kver
  (atomik source, kmod/README.md \"Debian's kernel\"), then: dkms autoinstall -k $kver" >&2
  exit 1
fi
"$here/check-kernel-tree.sh" "$tree" "$rustc"
[ $check_only = 1 ] && exit 0
exec make -C "$tree" M="$mdir" RUSTC="$rustc" HOSTRUSTC="$rustc" BINDGEN="$bindgen" modules
