#!/bin/bash
# Configures and builds the test kernel (tinyconfig + config.fragment, GCC, Rust) into the cache.
# Prints the build directory on stdout. A finished build (stamp file present) is reused as is.
set -euo pipefail
source "$(dirname "$0")/common.sh"
KBUILD=$ATOMIK_CACHE/build/linux-$KPKG_VERSION-$(kernel_key)
STAMP=$KBUILD/.atomik-built
if [ -f "$STAMP" ]; then log "kernel: cached $KBUILD"; echo "$KBUILD"; exit 0; fi

[ -f "$KSRC/Makefile" ] || die "no kernel source at $KSRC: run tests/vm/toolchain.sh"
mkdir -p "$KBUILD"
make -s -C "$KSRC" O="$KBUILD" "${KMAKE_FLAGS[@]}" rustavailable >&2
make -s -C "$KSRC" O="$KBUILD" "${KMAKE_FLAGS[@]}" tinyconfig >/dev/null
"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KBUILD" "$KBUILD/.config" "$VM_DIR/config.fragment" >/dev/null
make -s -C "$KSRC" O="$KBUILD" "${KMAKE_FLAGS[@]}" olddefconfig >/dev/null
grep -q '^CONFIG_RUST=y' "$KBUILD/.config" || die "CONFIG_RUST was dropped from $KBUILD/.config"
grep -q '^CONFIG_SMP=y' "$KBUILD/.config" || die "CONFIG_SMP was dropped from $KBUILD/.config"
log "kernel: building in $KBUILD (-j$JOBS, 5-11 min; log $KBUILD/build.log)"
start=$SECONDS
if ! make -C "$KSRC" O="$KBUILD" "${KMAKE_FLAGS[@]}" -j"$JOBS" all >"$KBUILD/build.log" 2>&1; then
  tail -30 "$KBUILD/build.log" >&2; die "kernel build failed (log $KBUILD/build.log)"
fi
log "kernel: built in $((SECONDS - start)) s"
touch "$STAMP"
echo "$KBUILD"
