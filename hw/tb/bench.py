"""Runs bench_cycles.py on atomik_top (256 slots, 1 lane) and on the legacy map model, then
prints the cycles per ACCUM (simulated) and the throughput they project at the synthesized
Fmax and at PCIe Gen3 x4 posted-write rates (projected). Usage: bench.py [--ops N] [--fmax MHZ]
(default Fmax: the FMAX_MHZ line of hw/synth/report.md)."""

import argparse
import json
import re
import sys
from pathlib import Path

from cocotb_tools.runner import get_runner

from run import HW, SOURCES

# PCIe Gen3 x4: 8 GT/s x 4 lanes, 128b/130b coding.
LINK_BYTES_PER_S = 8e9 * 4 * 128 / 130 / 8
# Posted memory-write TLP: STP framing with sequence number (4 B) + 4DW header for a 64-bit
# address (16 B) + LCRC (4 B); DLLP traffic (ACK, flow control) is ignored.
TLP_OVERHEAD = 24


def link_ops(payload_bytes, ops_per_tlp):
    return LINK_BYTES_PER_S / (TLP_OVERHEAD + payload_bytes) * ops_per_tlp


def run(target, top, sources, params, out, ops):
    build = HW / "tb" / "sim_build" / f"bench-{target}"
    runner = get_runner("icarus")
    runner.build(sources=sources, includes=[HW / "regs" / "generated"], hdl_toplevel=top, parameters=params,
                 build_dir=build, always=True, timescale=("1ns", "1ps"))
    runner.test(hdl_toplevel=top, test_module="bench_cycles", test_dir=HW / "tb", build_dir=build,
                extra_env={"ATOMIK_SLOTS": "256", "ATOMIK_LANES": "1", "ATOMIK_BENCH_TARGET": target,
                           "ATOMIK_BENCH_OUT": str(out), "ATOMIK_BENCH_OPS": str(ops)})
    return json.loads(out.read_text())["results"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=2048)
    ap.add_argument("--fmax", type=float, default=None)
    args = ap.parse_args()
    fmax = args.fmax
    if fmax is None:
        m = re.search(r"FMAX_MHZ=([\d.]+)", (HW / "synth" / "report.md").read_text())
        fmax = float(m.group(1))
    out = HW / "tb" / "sim_build"
    out.mkdir(parents=True, exist_ok=True)
    ours = run("atomik", "atomik_top", SOURCES, {"SLOTS": 256, "LANES": 1}, out / "bench-atomik.json", args.ops)
    legacy = run("legacy", "atomik_legacy", [HW / "tb" / "legacy" / "atomik_legacy.v"], {}, out / "bench-legacy.json", args.ops)
    base = legacy["legacy ACCUM, posted"]["cycles_per_op"]
    single = ours["ACCUM, posted window"]["cycles_per_op"]
    print(f"\nSimulated: Icarus Verilog + cocotbext-axi masters, {args.ops} ops per row, 256 slots, 1 lane.")
    print(f"Projected: device rate = Fmax {fmax} MHz / cycles per op; link rate = PCIe Gen3 x4 "
          f"({LINK_BYTES_PER_S / 1e9:.2f} GB/s) / ({TLP_OVERHEAD} B + payload) per posted-write TLP.\n")
    print("| interface, access | bus transactions/op | cycles/op (simulated) | vs legacy posted | "
          "device Mops/s at Fmax (projected) | PCIe Gen3 x4 link limit, Mops/s (projected) | both (projected) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    link = {
        "legacy ACCUM, one at a time": link_ops(4, 1) / 3,
        "legacy ACCUM, posted": link_ops(4, 1) / 3,
        "ACCUM, one at a time": link_ops(8, 1),
        "ACCUM, posted window": link_ops(8, 1),
        "ACCUM, bursts of 16": link_ops(128, 16),
        "ACCUM, bursts of 64": link_ops(256, 32),   # TLPs carry at most 256 B (max payload)
        "ACCUM, bursts of 256": link_ops(256, 32),
        "READ, one at a time": None,
        "two masters: ACCUM, AXI4 bursts of 64": link_ops(256, 32),
        "two masters: ACCUM, AXI4-Lite one at a time": link_ops(8, 1),
    }
    for name, r in list(legacy.items()) + list(ours.items()):
        dev = fmax / r["cycles_per_op"]
        lk = link.get(name)
        lk_s = f"{lk / 1e6:.1f} | {min(dev, lk / 1e6):.1f}" if lk else "(non-posted: a round trip) | -"
        vs = f"{base / r['cycles_per_op']:.2f}x" if "ACCUM" in name else "-"
        print(f"| {name} | {r['transactions_per_op']:.3f} | {r['cycles_per_op']:.2f} | "
              f"{vs} | {dev:.1f} | {lk_s} |")
    b = ours.get("ACCUM, bursts of 64") or ours["ACCUM, bursts of 16"]
    one = ours["ACCUM, one at a time"]["cycles_per_op"]
    print(f"\nTargets: ACCUM {ours['ACCUM, posted window']['transactions_per_op']:.0f} bus transaction/op (goal <= 1); "
          f"bursts of 64 {one / b['cycles_per_op']:.2f}x single-op throughput (goal >= 3x), "
          f"{single / b['cycles_per_op']:.2f}x posted single writes.")
    ok = ours["ACCUM, posted window"]["transactions_per_op"] <= 1 and one / b["cycles_per_op"] >= 3
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
