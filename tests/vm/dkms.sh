#!/bin/bash
# Proves the DKMS packaging against a built kernel tree: the pre-build check refuses a tree
# without Rust build products, `dkms build` and `dkms install` succeed on the real one, and the
# installed module carries atomik's parameters. Cleans up after itself.
#   dkms.sh KBUILD
set -euo pipefail
source "$(dirname "$0")/common.sh"
KB=$1
KREL=$(cat "$KB/include/config/kernel.release")
command -v dkms >/dev/null || die "dkms is not installed (tests/vm/toolchain.sh installs it)"

# 1. The check refuses a tree like a distribution's headers (Rust on, no .rmeta), and one built
#    by another rustc.
FAKE=$(mktemp -d)
trap 'rm -rf "$FAKE"' EXIT
cp "$KB/.config" "$FAKE/.config"; mkdir "$FAKE/include"
if msg=$("$REPO/dkms/check-kernel-tree.sh" "$FAKE" "$RUSTC_BIN" 2>&1); then
  die "dkms pre-build check accepted a tree without Rust build products"
fi
echo "$msg" | grep -q 'lacks the Rust build products' || die "unclear refusal: $msg"
log "dkms: a tree without Rust build products is refused: ${msg%%$'\n'*}"
"$REPO/dkms/check-kernel-tree.sh" "$KB" "$RUSTC_BIN" || die "the check refuses the real tree"
mkdir -p "$FAKE/other/rust"; touch "$FAKE/other/rust/libkernel.rmeta" "$FAKE/other/rust/libcore.rmeta"
sed 's/^CONFIG_RUSTC_VERSION=.*/CONFIG_RUSTC_VERSION=108501/' "$KB/.config" >"$FAKE/other/.config"
if msg=$("$REPO/dkms/check-kernel-tree.sh" "$FAKE/other" "$RUSTC_BIN" 2>&1); then
  die "dkms pre-build check accepted a tree built by another rustc"
fi
echo "$msg" | grep -q 'built by rustc 108501' || die "unclear refusal: $msg"

# 2. Build and install for the built kernel.
VER=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$REPO/dkms/dkms.conf")
dkms remove "atomik/$VER" --all >/dev/null 2>&1 || true
SRC=$("$REPO/dkms/install-source.sh")
# dkms installs only for a kernel that has /lib/modules/KREL: stand in for the installed kernel
# (removed again afterwards when this script made it).
MADE_MODDIR=0
if [ ! -d "/lib/modules/$KREL" ]; then mkdir -p "/lib/modules/$KREL"; MADE_MODDIR=1; fi
cleanup() {
  dkms remove "atomik/$VER" --all >/dev/null 2>&1 || true
  rm -rf "$SRC" "$FAKE"
  if [ $MADE_MODDIR = 1 ]; then rm -rf "/lib/modules/$KREL"; fi
}
trap cleanup EXIT
export ATOMIK_RUSTC=$RUSTC_BIN ATOMIK_BINDGEN=$BINDGEN_BIN
dkms add "atomik/$VER" >/dev/null
# Through dkms itself: a headers-like tree (Rust on, no products) is skipped, not failed (so
# installing such a kernel never fails because of atomik), with one line naming the fix.
rc=0; dkms build "atomik/$VER" -k "$KREL" --kernelsourcedir "$FAKE" >/tmp/atomik-dkms-refuse.log 2>&1 || rc=$?
[ $rc = 77 ] && grep -q 'no Rust build products for it; fix: apt install atomik-kbuild-' /tmp/atomik-dkms-refuse.log ||
  { cat /tmp/atomik-dkms-refuse.log >&2; die "dkms build against a tree without Rust build products: exit $rc, not skipped with the fix"; }
log "dkms: a tree without Rust build products is skipped: $(grep -m1 'atomik: skipped' /tmp/atomik-dkms-refuse.log)"
# The check at the head of MAKE still stops a build that gets there.
if msg=$("$REPO/dkms/build.sh" "$KREL" "$FAKE" /nonexistent 2>&1); then die "build.sh accepted $FAKE"; fi
echo "$msg" | grep -q "apt install" || die "unclear refusal: $msg"
# An unsupported kernel is skipped (dkms exit status 77), not a failure.
rc=0; dkms build "atomik/$VER" -k 6.12.48+deb13-amd64 --kernelsourcedir "$KB" >/tmp/atomik-dkms-excl.log 2>&1 || rc=$?
[ $rc = 77 ] && grep -q BUILD_EXCLUSIVE /tmp/atomik-dkms-excl.log ||
  { cat /tmp/atomik-dkms-excl.log >&2; die "dkms build for Linux 6.12: exit $rc, not skipped by BUILD_EXCLUSIVE_KERNEL"; }
EXCL=$(sed -n 's/^BUILD_EXCLUSIVE_KERNEL="\(.*\)"/\1/p' "$REPO/dkms/dkms.conf")
for k in 7.3 7.3.4 7.3.4+deb13-amd64 7.10.1 7.30.0 8.0.0 10.2.3-rc1; do
  [[ $k =~ $EXCL ]] || die "BUILD_EXCLUSIVE_KERNEL refuses $k"
done
for k in 7.2.9 6.12.48+deb13-amd64 5.10.0; do
  if [[ $k =~ $EXCL ]]; then die "BUILD_EXCLUSIVE_KERNEL accepts $k"; fi
done
log "dkms: Linux 6.12 skipped by BUILD_EXCLUSIVE_KERNEL"
if ! dkms build "atomik/$VER" -k "$KREL" --kernelsourcedir "$KB" >/tmp/atomik-dkms-build.log 2>&1; then
  cat /tmp/atomik-dkms-build.log >&2
  find /var/lib/dkms/atomik -name make.log -exec cat {} + >&2 || true
  die "dkms build failed"
fi
dkms install "atomik/$VER" -k "$KREL" --kernelsourcedir "$KB" --force >/tmp/atomik-dkms-install.log 2>&1 ||
  { cat /tmp/atomik-dkms-install.log >&2; die "dkms install failed"; }
KO=$(find "/lib/modules/$KREL" -name 'atomik.ko*' | head -1)
[ -n "$KO" ] || die "dkms install put no atomik.ko under /lib/modules/$KREL"
modinfo -F parm "$KO" | grep -q '^max_slots' || die "$KO lacks atomik's parameters"
modinfo -F alias "$KO" | grep -qx 'devname:atomik' || die "$KO lacks MODULE_ALIAS(devname:atomik)"
dkms status "atomik/$VER" -k "$KREL" | grep -q installed || die "dkms status does not say installed"
log "dkms: build + install for $KREL OK ($KO)"
