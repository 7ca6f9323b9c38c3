#!/bin/bash
# The debug kernel: KASAN + lockdep (config-debug.fragment on top of config.fragment). With GCC
# the kernel drops CONFIG_RUST when KASAN is on, and bookworm's clang is too old for 7.3, so it
# is built with clang 19 and Debian trixie's rustc inside a trixie build root made by
# debootstrap (cached under ~/.cache/atomik/trixie-root).
#   debug-kernel.sh            -> prints the debug kernel build directory
#   debug-kernel.sh --module   -> builds atomik.ko for it, prints the .ko path
set -euo pipefail
source "$(dirname "$0")/common.sh"
ROOT=$ATOMIK_CACHE/trixie-root
ROOT_PKGS="build-essential bc flex bison libelf-dev libssl-dev python3 cpio kmod clang-19 lld-19 llvm-19 libclang-19-dev rustc rust-src bindgen"

make_root() {
  [ -f "$ROOT/.atomik-ready" ] && return 0
  log "debug: making the trixie build root in $ROOT (debootstrap, ~1 min; packages ~2 min)"
  # shellcheck disable=SC2086
  trixie_root "$ROOT" $ROOT_PKGS
  touch "$ROOT/.atomik-ready"
}

# Runs a command inside the root with the cache visible at the same path (and /proc, which
# objtool reads).
# Runs from other checkouts share the root: one at a time (flock), so that none unmounts what
# another still uses.
in_root() {
  (
    flock 9
    mkdir -p "$ROOT$ATOMIK_CACHE"
    mountpoint -q "$ROOT$ATOMIK_CACHE" || mount --bind "$ATOMIK_CACHE" "$ROOT$ATOMIK_CACHE"
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    rc=0
    chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@" || rc=$?
    # Busy when a run from a checkout without this lock still builds in the root: leave the
    # mounts to it.
    umount "$ROOT/proc" "$ROOT$ATOMIK_CACHE" 2>/dev/null || log "debug root busy: its mounts stay"
    exit $rc
  ) 9>"$ROOT.lock"
}

make_root
KEY=$({ echo "$KPKG_VERSION"; cat "$VM_DIR/config.fragment" "$VM_DIR/config-debug.fragment"; cat "$ROOT/var/lib/dpkg/status" | grep -A1 -E '^Package: (rustc|clang-19|bindgen)$'; } | sha256sum | cut -c1-12)
KB=$ATOMIK_CACHE/build/debug-linux-$KPKG_VERSION-$KEY
LLVM=(LLVM=-19)

if [ "${1:-}" = --module ]; then
  OUT=$ATOMIK_CACHE/kmod-build/$CHECKOUT-$(basename "$KB")
  mkdir -p "$OUT/kmod" "$OUT/libatomik/src"
  rm -f "$OUT"/kmod/*.rs "$OUT"/kmod/*.c
  cp "$REPO"/kmod/Kbuild "$REPO"/kmod/Makefile "$REPO"/kmod/*.rs "$REPO"/kmod/*.c "$OUT/kmod/"
  cp "$REPO/libatomik/src/abi.rs" "$REPO/libatomik/src/fp_core.rs" "$REPO/libatomik/src/sdk_abi.rs" "$OUT/libatomik/src/"
  mkdir -p "$OUT/libatomik/src/backend/fpga" && cp "$REPO/libatomik/src/backend/fpga/regs.rs" "$OUT/libatomik/src/backend/fpga/"
  in_root make -s -C "$KB" M="$OUT/kmod" "${LLVM[@]}" modules >&2
  echo "$OUT/kmod/atomik.ko"
  exit 0
fi

if [ -f "$KB/.atomik-built" ]; then log "debug kernel: cached $KB"; echo "$KB"; exit 0; fi
[ -f "$KSRC/Makefile" ] || die "no kernel source at $KSRC: run tests/vm/toolchain.sh"
mkdir -p "$KB"
in_root make -s -C "$KSRC" O="$KB" "${LLVM[@]}" tinyconfig >/dev/null
"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KB" "$KB/.config" "$VM_DIR/config.fragment" "$VM_DIR/config-debug.fragment" >/dev/null
in_root make -s -C "$KSRC" O="$KB" "${LLVM[@]}" olddefconfig >/dev/null
for c in RUST KASAN PROVE_LOCKING SMP; do
  grep -q "^CONFIG_$c=y" "$KB/.config" || die "CONFIG_$c was dropped from $KB/.config"
done
log "debug kernel: building in $KB (clang 19, -j$JOBS, ~10 min; log $KB/build.log)"
start=$SECONDS
in_root make -C "$KSRC" O="$KB" "${LLVM[@]}" -j"$JOBS" all >"$KB/build.log" 2>&1 ||
  { tail -30 "$KB/build.log" >&2; die "debug kernel build failed (log $KB/build.log)"; }
log "debug kernel: built in $((SECONDS - start)) s"
touch "$KB/.atomik-built"
echo "$KB"
