"""Builds hw/rtl with Icarus Verilog and runs the cocotb tests for each configuration.

Usage: run.py [--configs 16x1,64x2] [--ops N] [--testcase NAME]; the build lives in
hw/tb/sim_build/<config> (ignored by git).
"""

import argparse
import os
import sys
from pathlib import Path

from cocotb_tools.runner import get_runner

HW = Path(__file__).resolve().parent.parent
SOURCES = [HW / "rtl" / f for f in ("atomik_top.v", "atomik_regs_axil.v", "atomik_windows.v", "atomik_lane.v")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="16x1,64x2,100x4", help="SLOTSxLANES,...")
    ap.add_argument("--ops", type=int, default=100000)
    ap.add_argument("--testcase", default=None)
    ap.add_argument("--module", default="test_atomik")
    args = ap.parse_args()
    failed = False
    for cfg in args.configs.split(","):
        slots, lanes = (int(x) for x in cfg.split("x"))
        build = HW / "tb" / "sim_build" / cfg
        runner = get_runner("icarus")
        runner.build(sources=SOURCES, includes=[HW / "regs" / "generated"], hdl_toplevel="atomik_top",
                     parameters={"SLOTS": slots, "LANES": lanes}, build_dir=build, always=True,
                     timescale=("1ns", "1ps"))
        results = runner.test(hdl_toplevel="atomik_top", test_module=args.module, test_dir=HW / "tb",
                              build_dir=build, testcase=args.testcase,
                              extra_env={"ATOMIK_SLOTS": str(slots), "ATOMIK_LANES": str(lanes),
                                         "ATOMIK_TB_OPS": str(args.ops)})
        from cocotb_tools.runner import get_results
        tests, fails = get_results(results)
        print(f"hw/tb {cfg}: {tests - fails} passed, {fails} failed")
        failed |= fails > 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
