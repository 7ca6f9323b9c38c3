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

# 1. The check refuses a tree like a distribution's headers (Rust on, no .rmeta).
FAKE=$(mktemp -d)
trap 'rm -rf "$FAKE"' EXIT
cp "$KB/.config" "$FAKE/.config"
if msg=$("$REPO/dkms/check-kernel-tree.sh" "$FAKE" "$RUSTC_BIN" 2>&1); then
  die "dkms pre-build check accepted a tree without Rust build products"
fi
echo "$msg" | grep -q 'lacks the Rust build products' || die "unclear refusal: $msg"
log "dkms: a tree without Rust build products is refused: ${msg%%$'\n'*}"

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
dkms status "atomik/$VER" -k "$KREL" | grep -q installed || die "dkms status does not say installed"
log "dkms: build + install for $KREL OK ($KO)"
