#!/bin/bash
# Builds kmod/atomik.ko against a kernel build tree, in a copy laid out like the repository
# (kmod/ + libatomik/src/abi.rs, which the module includes through #[path]) so that the
# repository stays free of build products.
#   module.sh KBUILD OUTDIR [extra make arguments...]    -> OUTDIR/kmod/atomik.ko
set -euo pipefail
source "$(dirname "$0")/common.sh"
KB=$1; OUT=$2; shift 2
mkdir -p "$OUT/kmod" "$OUT/libatomik/src"
rm -f "$OUT"/kmod/*.rs "$OUT"/kmod/*.c   # a file removed from kmod/ must not linger
cp "$REPO"/kmod/Kbuild "$REPO"/kmod/Makefile "$REPO"/kmod/*.rs "$REPO"/kmod/*.c "$OUT/kmod/"
cp "$REPO/libatomik/src/abi.rs" "$REPO/libatomik/src/fp_core.rs" "$REPO/libatomik/src/sdk_abi.rs" "$OUT/libatomik/src/"
mkdir -p "$OUT/libatomik/src/backend/fpga" && cp "$REPO/libatomik/src/backend/fpga/regs.rs" "$OUT/libatomik/src/backend/fpga/"
make -s -C "$KB" M="$OUT/kmod" "$@" modules >&2
[ -f "$OUT/kmod/atomik.ko" ] || die "no atomik.ko in $OUT/kmod"
echo "$OUT/kmod/atomik.ko"
