#!/usr/bin/env bash
# Synthesis estimates of hw/rtl with yosys (xc7 and iCE40 at 16, 64 and 512 slots) and the
# nextpnr-ice40 Fmax of a small configuration; writes hw/synth/report.md (the figures in
# hw/README.md). Slow (an hour on the 2-core machine under other builds' load; the 512-slot
# runs dominate), so not part of scripts/test.sh.
#   synth.sh [--slots "16 64 512"] [--fmax-slots 16]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../env.sh"
apt_need yosys nextpnr-ice40 fpga-icestorm
slots="16 64 512"; fmax_slots=16
while [ $# -gt 0 ]; do
    case "$1" in
        --slots) slots="$2"; shift 2 ;;
        --fmax-slots) fmax_slots="$2"; shift 2 ;;
        *) echo "synth.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
out="$here/out"; mkdir -p "$out"
rtl="$here/../rtl"; inc="$here/../regs/generated"
srcs="$rtl/atomik_top.v $rtl/atomik_regs_axil.v $rtl/atomik_windows.v $rtl/atomik_lane.v"

run_yosys() {  # run_yosys NAME SCRIPT
    echo "==> yosys $1" >&2
    nice -n 10 yosys -q -l "$out/$1.log" -p "$2" >/dev/null
}

echo "==> nextpnr-ice40 Fmax, $fmax_slots slots" >&2
run_yosys "fmax-$fmax_slots" "read_verilog -I$inc $srcs $here/fmax_wrap.v; chparam -set SLOTS $fmax_slots fmax_wrap; synth_ice40 -top fmax_wrap -json $out/fmax-$fmax_slots.netlist.json"
nice -n 10 nextpnr-ice40 --hx8k --package ct256 --json "$out/fmax-$fmax_slots.netlist.json" \
    --pcf-allow-unconstrained --freq 100 --timing-allow-fail --seed 1 --log "$out/fmax-$fmax_slots.nextpnr.log" >/dev/null 2>&1

for n in $slots; do
    read_cmd="read_verilog -I$inc $srcs; chparam -set SLOTS $n atomik_top"
    run_yosys "xc7-$n" "$read_cmd; synth_xilinx -top atomik_top -flatten; tee -q -o $out/xc7-$n.json stat -json"
    run_yosys "ice40-$n" "$read_cmd; synth_ice40 -top atomik_top; tee -q -o $out/ice40-$n.json stat -json"
done


python3 "$here/report.py" "$out" "$slots" "$fmax_slots" > "$here/report.md"
cat "$here/report.md"
