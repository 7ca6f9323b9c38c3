#!/bin/bash
# Installs what the VM harness needs, from the registries only: Debian packages (apt), the kernel
# source (Debian trixie-backports, downloaded and unpacked into the cache), libclang (PyPI),
# bindgen-cli (crates.io). Idempotent: every step is skipped when its product is in the cache.
set -euo pipefail
source "$(dirname "$0")/common.sh"
mkdir -p "$ATOMIK_CACHE"

APT_PKGS=(rustc-web rust-web-src build-essential flex bison bc libelf-dev libssl-dev cpio
  qemu-system-x86 python3-venv xz-utils kmod dkms)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ -x "$RUSTC_BIN" ] || die "$RUSTC_BIN missing after apt (rustc-web)"

if [ ! -f "$KSRC/Makefile" ]; then
  log "kernel source: $KPKG $KPKG_VERSION from trixie-backports"
  A=$ATOMIK_CACHE/aptx
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR trixie-backports main" >"$A/x.list"
  APTX=(-o "Dir::Etc::sourcelist=$A/x.list" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$A/lists"
    -o "Dir::Cache=$A/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  apt-get "${APTX[@]}" update -q
  (cd "$A/debs" && apt-get "${APTX[@]}" download "$KPKG=$KPKG_VERSION")
  X=$ATOMIK_CACHE/src/linux-$KPKG_VERSION
  rm -rf "$X" && mkdir -p "$X/deb"
  dpkg-deb -x "$A/debs/${KPKG}_${KPKG_VERSION/:/%3a}_all.deb" "$X/deb"
  tar -C "$X" -xf "$X/deb/usr/src/$KPKG.tar.xz"
  rm -rf "$X/deb"
  [ -f "$KSRC/Makefile" ] || die "kernel source did not unpack to $KSRC"
fi

if [ ! -f "$LIBCLANG_PATH/libclang.so" ]; then
  log "libclang $LIBCLANG_VERSION from PyPI"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "libclang==$LIBCLANG_VERSION"
fi

if ! "$BINDGEN_BIN" --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
  log "bindgen-cli $BINDGEN_VERSION from crates.io"
  cargo install --locked "bindgen-cli@$BINDGEN_VERSION" --root "$TOOLS"
fi
log "toolchain ready: $("$RUSTC_BIN" --version), $("$BINDGEN_BIN" --version)"
