#!/bin/bash
# Builds the package atomik-kbuild-KVER: the Rust build products Debian's linux-headers-KVER
# lacks (rust/*.rmeta, the kernel's proc-macro crates, scripts/target.json), regenerated from
# the matching linux-source with Debian's .config and the rustc Debian built the kernel with,
# beside a tree of symlinks into the headers, so that DKMS can build atomik.ko against it.
#   packaging/kbuild-products.sh KVER OUTDIR
# Run on Debian (e.g. a trixie chroot) with, for KVER=7.3.4+deb13-amd64:
#   apt install linux-headers-7.3.4+deb13-amd64 linux-source-7.3=7.3.4-1~bpo13+1 \
#     rustc=1.85.1+dfsg1-1+deb13u1 rust-src=1.85.1+dfsg1-1+deb13u1 bindgen gcc-14 make bc bison flex \
#     libelf-dev libssl-dev openssl python3 dwarves dpkg-dev
# The package owns everything it installs (under /usr/lib/atomik/kbuild/KVER), depends on the
# exact headers upload it was made from, and so goes away with them; nothing is written into
# the headers tree. Why the products fit the stock kernel: kmod/README.md, "Debian's kernel".
set -euo pipefail
KVER=${1:?KVER, e.g. 7.3.4+deb13-amd64}
OUT=${2:?OUTDIR}
H=/usr/src/linux-headers-$KVER
die() { echo "kbuild-products: $*" >&2; exit 1; }
[ -f "$H/.config" ] || die "no $H/.config: apt install linux-headers-$KVER"
HPKG=linux-headers-$KVER
HVER=$(dpkg-query -W -f '${Version}' "$HPKG") || die "$HPKG is not installed"
SRCPKG=linux-source-${KVER%%.*}.$(echo "$KVER" | cut -d. -f2)
SVER=$(dpkg-query -W -f '${Version}' "$SRCPKG" 2>/dev/null) ||
  die "$SRCPKG is not installed: apt install $SRCPKG=$HVER"
[ "$SVER" = "$HVER" ] || die "$SRCPKG is $SVER, the headers are $HVER: apt install $SRCPKG=$HVER"
want=$(sed -n 's/^CONFIG_RUSTC_VERSION=//p' "$H/.config")
[ -n "$want" ] || die "$KVER was built without Rust (no CONFIG_RUSTC_VERSION)"
have=$(rustc --version | awk '{split($2, v, "."); printf "%d", v[1] * 100000 + v[2] * 100 + v[3]}')
[ "$want" = "$have" ] || die "$KVER was built by rustc $want, rustc here is $have: install that rustc"
CC=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="x86_64-linux-gnu-gcc-\([0-9]*\) .*/gcc-\1/p' "$H/.config")
KM=(KERNELRELEASE="$KVER" ARCH=x86 CROSS_COMPILE=x86_64-linux-gnu- CC="x86_64-linux-gnu-${CC:-gcc}" RUSTC=rustc HOSTRUSTC=rustc BINDGEN=bindgen)

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
tar -C "$W" -xf "/usr/src/$SRCPKG.tar.xz"
T=$W/$SRCPKG
cp "$H/.config" "$T/.config"
make -s -C "$T" "${KM[@]}" olddefconfig
diff "$H/.config" "$T/.config" >&2 || die "olddefconfig changed Debian's .config (diff above): not the same source or compiler"
echo "kbuild-products: building rust/ of $SRCPKG $SVER (about 90 s on 2 cores)" >&2
make -s -C "$T" "${KM[@]}" -j"$(nproc)" prepare modules_prepare >"$W/prepare.log" 2>&1 ||
  { tail -30 "$W/prepare.log" >&2; die "make prepare failed"; }
# The rebuilt Rust exports must be exactly the stock kernel's (same crate disambiguators).
cat "$T"/rust/exports_*_generated.h | grep -oE '\((_R|rust_helper_)[0-9A-Za-z_]+\)' | tr -d '()' | sort -u >"$W/rebuilt"
awk '{print $2}' "$H/Module.symvers" | grep -E '^(_R|rust_helper_)' | sort -u >"$W/stock"
missing=$(comm -13 "$W/rebuilt" "$W/stock" | wc -l)
[ "$missing" = 0 ] || die "$missing Rust exports of the stock kernel were not rebuilt: wrong source or rustc"

PKG=atomik-kbuild-$KVER
D=$W/pkg
TREE=/usr/lib/atomik/kbuild/$KVER
mkdir -p "$D$TREE/rust" "$D$TREE/scripts" "$D/DEBIAN" "$D/usr/share/doc/$PKG"
# The headers tree, by symlinks (its scripts/ and rust/ as directories of symlinks, so that the
# products can sit beside them).
for e in "$H"/* "$H"/.[!.]*; do
  [ -e "$e" ] || continue
  case ${e##*/} in scripts | rust | Makefile) ;; *) ln -s "$e" "$D$TREE/${e##*/}" ;; esac
done
# The headers' Makefile is "KBUILD_OUTPUT=<headers>; include <common>/Makefile": a link to it
# would make the headers the object tree (no target.json there) and put the module's objects
# and kbuild's generated Makefile into this tree. Our own copy names this tree instead, so a
# build writes only into the module's directory.
grep -qx "KBUILD_OUTPUT=$H" "$H/Makefile" || die "$H/Makefile does not set KBUILD_OUTPUT=$H: a headers layout this script does not know"
sed "s|^KBUILD_OUTPUT=.*|KBUILD_OUTPUT=$TREE|" "$H/Makefile" >"$D$TREE/Makefile"
for e in "$H"/scripts/* "$H"/scripts/.[!.]*; do
  [ -e "$e" ] && ln -s "$(readlink -f "$e")" "$D$TREE/scripts/${e##*/}"
done
if [ -d "$H/rust" ]; then
  for e in "$H"/rust/*; do [ -e "$e" ] && ln -s "$e" "$D$TREE/rust/${e##*/}"; done
fi
cp "$T"/rust/lib*.rmeta "$T"/rust/lib*.so "$D$TREE/rust/"
cp "$T/scripts/target.json" "$D$TREE/scripts/target.json"
RUSTV=$(dpkg-query -W -f '${Version}' rustc)
cat >"$D/usr/share/doc/$PKG/README" <<DOC
Rust build products of Linux $KVER ($HPKG $HVER), rebuilt from $SRCPKG $SVER with
Debian's .config and rustc $RUSTV by atomik's packaging/kbuild-products.sh.
DKMS builds atomik.ko against $TREE (the headers plus these products).
DOC
cat >"$D/DEBIAN/control" <<CTL
Package: $PKG
Version: $HVER
Architecture: amd64
Maintainer: atomik developers <atomik@localhost>
Installed-Size: $(du -sk --apparent-size "$D$TREE" | cut -f1)
Depends: $HPKG (= $HVER), rustc (= $RUSTV)
Section: kernel
Priority: optional
Description: Rust build products for out-of-tree modules on Linux $KVER
 The rust/*.rmeta, proc-macro crates and scripts/target.json of Linux $KVER, which
 $HPKG does not ship, rebuilt from $SRCPKG with Debian's configuration and
 rustc $RUSTV (every Rust export name equals the stock kernel's), beside symlinks into
 the headers: the tree DKMS builds atomik.ko against.
CTL
mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zzstd --build "$D" "$OUT/${PKG}_${HVER}_amd64.deb" >&2
echo "$OUT/${PKG}_${HVER}_amd64.deb"
