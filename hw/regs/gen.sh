#!/usr/bin/env bash
# Regenerates the C header (PeakRDL cheader, plus the FEATURES bits from export.py), Verilog
# localparams and Rust constants from hw/regs/atomik.rdl.
#   gen.sh [OUTDIR]   writes into OUTDIR (default: their checked-in places)
set -euo pipefail
. "$(dirname "$0")/../env.sh"
hw_venv
root="$HW_DIR/.."
out_h="$HW_DIR/regs/generated/atomik_regs.h"
out_vh="$HW_DIR/regs/generated/atomik_regs.vh"
out_rs="$root/libatomik/src/backend/fpga/regs.rs"
if [ $# -ge 1 ]; then
    mkdir -p "$1"; out_h="$1/atomik_regs.h"; out_vh="$1/atomik_regs.vh"; out_rs="$1/regs.rs"
fi
peakrdl c-header "$HW_DIR/regs/atomik.rdl" -o "$out_h"
"$HW_PY" "$HW_DIR/regs/export.py" "$HW_DIR/regs/atomik.rdl" "$out_vh" "$out_rs" "$out_h"
