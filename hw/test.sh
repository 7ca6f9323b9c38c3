#!/usr/bin/env bash
# The hw/ checks scripts/test.sh runs: generated register files match the RDL, Verilator lint
# of the RTL at several geometries, and the cocotb regression on Icarus Verilog.
#   hw/test.sh [--ops N]    (N random ops per geometry in the cocotb run; default 100,000)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
ops=100000
[ "${1:-}" = "--ops" ] && ops="$2"
apt_need iverilog verilator
hw_venv
echo "==> hw: register map drift (hw/regs/check.sh)"
"$here/regs/check.sh"
echo "==> hw: verilator --lint-only -Wall"
for geo in "16 1" "64 2" "512 1" "100 4"; do
    set -- $geo
    verilator --lint-only -Wall -I"$here/regs/generated" -GSLOTS="$1" -GLANES="$2" --top-module atomik_top \
        "$here"/rtl/atomik_top.v "$here"/rtl/atomik_regs_axil.v "$here"/rtl/atomik_windows.v "$here"/rtl/atomik_lane.v
done
echo "lint clean"
echo "==> hw: cocotb on Icarus Verilog (hw/tb), $ops random ops on 64 slots x 2 lanes"
cd "$here/tb"
mkdir -p sim_build
log="$here/tb/sim_build/cocotb.log"
cocotb_run() {  # the simulator's output goes to $log; its tail is shown on failure
    if ! COCOTB_LOG_LEVEL=WARNING PYTHONWARNINGS=ignore "$HW_PY" run.py "$@" > "$log" 2>&1; then
        tail -n 150 "$log"
        grep -E '^hw/tb ' "$log" || true
        echo "hw/tb: cocotb failed (log: $log)" >&2
        exit 1
    fi
    grep -E '^hw/tb ' "$log"
}
cocotb_run --configs 64x2 --ops "$ops"
cocotb_run --configs 16x1,100x4 --ops 5000
