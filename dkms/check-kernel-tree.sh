#!/bin/sh
# DKMS PRE_BUILD check: refuse, with a message that says what to do, kernel trees that cannot
# build an out-of-tree Rust module.
#   check-kernel-tree.sh KERNEL_TREE [RUSTC]
tree=$1
rustc=${2:-/usr/bin/rustc}
fail() {
  echo "atomik: cannot build against $tree: $*" >&2
  exit 1
}
[ -f "$tree/.config" ] || fail "no .config (not a configured kernel build tree)"
grep -q '^CONFIG_RUST=y' "$tree/.config" || fail "the kernel was built without CONFIG_RUST"
if [ ! -f "$tree/rust/libkernel.rmeta" ] || [ ! -f "$tree/rust/libcore.rmeta" ]; then
  fail "the tree lacks the Rust build products (rust/libkernel.rmeta, rust/libcore.rmeta).
  Distribution header packages (e.g. Debian's linux-headers-*) ship none: for Debian's kernel
  install atomik-kbuild-KVER (packaging/kbuild-products.sh makes it); for a kernel you built,
  point DKMS at its build tree with --kernelsourcedir."
fi
want=$(sed -n 's/^CONFIG_RUSTC_VERSION=//p' "$tree/.config")
command -v "$rustc" >/dev/null 2>&1 || fail "no rustc at $rustc (set ATOMIK_RUSTC)"
# CONFIG_RUSTC_VERSION is major * 100000 + minor * 100 + patch (1.96.0 -> 109600).
have=$("$rustc" --version | awk '{split($2, v, "."); printf "%d", v[1] * 100000 + v[2] * 100 + v[3]}')
[ -z "$want" ] || [ "$want" = "$have" ] ||
  fail "the kernel's Rust crates were built by rustc $want, $rustc is $have (set ATOMIK_RUSTC
  to the rustc that built the kernel)"
exit 0
