#!/bin/bash
# The package atomik-kbuild-KVER for Debian's stock kernel, built on the host at native speed
# (packaging/kbuild-products.sh in a trixie build root with the kernel's own rustc, linux-source
# and headers), cached by inputs. Prints the .deb. The build root is removed afterwards.
set -euo pipefail
source "$(dirname "$0")/common.sh"
KEY=$(deb_key "$DEB_DIR/kbuild.sh" "$DEB_DIR/common.sh" "$REPO/packaging/kbuild-products.sh")
OUT=$DEB_CACHE/kbuild-$KEY
if [ -f "$OUT/.done" ]; then log "kbuild products: cached $OUT"; ls "$OUT"/*.deb; exit 0; fi
ROOT=$DEB_CACHE/kbuild-root-$KEY
log "kbuild products: trixie build root $ROOT (debootstrap ~1 min, packages ~3 min, build ~2 min)"
make_root "$ROOT"
R=$ROOT.tmp
in_root "$R" apt-get install -y -q --no-install-recommends \
  "linux-headers-$DEB_KVER=$DEB_KPKGV" "linux-source-${DEB_KVER%.*}=$DEB_KPKGV" \
  "rustc=$DEB_RUSTV" "libstd-rust-1.85=$DEB_RUSTV" "libstd-rust-dev=$DEB_RUSTV" "rust-src=$DEB_RUSTV" \
  "bindgen=$DEB_BINDGENV" gcc-14 make bc bison flex libelf-dev libssl-dev openssl python3 dwarves dpkg-dev xz-utils zstd >&2
cp "$REPO/packaging/kbuild-products.sh" "$R/tmp/"
in_root "$R" /tmp/kbuild-products.sh "$DEB_KVER" /tmp/out >&2
rm -rf "$OUT" && mkdir -p "$OUT" && mv "$R"/tmp/out/*.deb "$OUT/"
rm -rf "$R"
touch "$OUT/.done"
ls "$OUT"/*.deb
