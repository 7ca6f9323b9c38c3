#!/bin/sh
# DKMS MAKE (and PRE_BUILD with --check) of atomik.ko for kernel KVER. Chooses the tree to
# build against, checks it, builds:
#   1. the kernel's own build tree when it has the Rust build products (a kernel you built, or
#      dkms --kernelsourcedir);
#   2. else /usr/lib/atomik/kbuild/KVER from the package atomik-kbuild-KVER (Debian's
#      headers plus the Rust products they lack, made by packaging/kbuild-products.sh).
#   build.sh [--check] KVER KERNEL_SOURCE_DIR MODULE_DIR
#   build.sh --ready KVER KERNEL_SOURCE_DIR: exit 0 when it could build; else one line (what
#   is missing, the fix) and 1. Only for kernels dkms.conf's BUILD_EXCLUSIVE_* accept: read by
#   dkms.conf to skip, not fail, a kernel that is not ready.
set -eu
check_only=0 ready=0
[ "${1:-}" = --check ] && { check_only=1; shift; }
[ "${1:-}" = --ready ] && { ready=1; shift; }
kver=$1 ksrc=$2 mdir=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
rustc=${ATOMIK_RUSTC:-/usr/bin/rustc}
bindgen=${ATOMIK_BINDGEN:-/usr/bin/bindgen}
overlay=/usr/lib/atomik/kbuild/$kver
if [ $ready = 1 ]; then
  # Not this module's business: no headers, another version, no Rust (BUILD_EXCLUSIVE_*).
  grep -qs '^CONFIG_RUST=y' "$ksrc/.config" || exit 0
  case $kver in 7.[3-9]* | 7.[1-9][0-9]* | [89].* | [1-9][0-9]*.*) ;; *) exit 0 ;; esac
  if [ ! -f "$ksrc/rust/libkernel.rmeta" ] && [ ! -f "$overlay/rust/libkernel.rmeta" ]; then
    echo "atomik: skipped for Linux $kver: no Rust build products for it; fix: apt install atomik-kbuild-$kver (or make it: packaging/kbuild-products.sh $kver), then dkms autoinstall -k $kver" >&2
    exit 1
  fi
  want=$(sed -n 's/^CONFIG_RUSTC_VERSION=//p' "$ksrc/.config")
  have=$("$rustc" --version 2>/dev/null | awk '{split($2, v, "."); printf "%d", v[1] * 100000 + v[2] * 100 + v[3]}')
  if [ -n "$want" ] && [ "$want" != "$have" ]; then
    echo "atomik: skipped for Linux $kver: built by rustc $want, $rustc is ${have:-missing}; fix: install that rustc (ATOMIK_RUSTC names it), then dkms autoinstall -k $kver" >&2
    exit 1
  fi
  exit 0
fi
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
