"""Cycle benchmark (simulated): clock cycles per ACCUM on atomik_top's windows and on a model of
the original's three-transactions-per-op map (legacy/atomik_legacy.v), both driven by
cocotbext-axi masters in the same simulator. Each figure is checked: the final state must equal
the model's, so only ACCUMs that counted are counted. Writes ATOMIK_BENCH_OUT (JSON)."""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Combine, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from harness import Tb, pack, unpack

N = int(os.environ.get("ATOMIK_BENCH_OPS", "2048"))


def now_cycles():
    return int(get_sim_time("ns")) // 10


async def measure(tb, name, run, results):
    start = now_cycles()
    ops, transactions = await run()
    cycles = now_cycles() - start
    results[name] = {"ops": ops, "cycles": cycles, "transactions": transactions,
                     "cycles_per_op": cycles / ops, "transactions_per_op": transactions / ops}
    tb.dut._log.warning("%-28s %8.2f cycles/op  %.3f bus transactions/op", name, cycles / ops, transactions / ops)


@cocotb.test()
async def cycles_per_accum(dut):
    if os.environ.get("ATOMIK_BENCH_TARGET") != "atomik":
        return
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(1)
    results = {}
    slots = tb.slots

    async def single():
        for i in range(N):
            await tb.accum(i % slots, [rng.getrandbits(64)])
        return N, N

    async def posted():
        events = []
        for i in range(N):
            d = rng.getrandbits(64)
            events.append(tb.axi.init_write(tb.addr("ACCUM", i % slots), pack([d]), size=3))
            tb.model.accum(i % slots, d)
        await Combine(*[e.wait() for e in events])
        return N, N

    def burst(n):
        async def run():
            events = []
            for k in range(N // n):
                start = (k * n) % slots
                words = [rng.getrandbits(64) for _ in range(n)]
                events.append(tb.axi.init_write(tb.addr("ACCUM", start), pack(words), size=3))
                for i, d in enumerate(words):
                    tb.model.accum(start + i, d)
            await Combine(*[e.wait() for e in events])
            return (N // n) * n, N // n
        return run

    async def reads():
        for i in range(N // 4):
            await tb.check_read(i % slots)
        return N // 4, N // 4

    await measure(tb, "ACCUM, one at a time", single, results)
    await measure(tb, "ACCUM, posted window", posted, results)
    for n in (16, 64, 256):
        if n <= slots:
            await measure(tb, f"ACCUM, bursts of {n}", burst(n), results)
    await measure(tb, "READ, one at a time", reads, results)

    # Two masters at once: AXI4-Lite single ACCUMs (awaited one at a time) while an AXI4 stream
    # of bursts of 64 keeps the window port busy, to the same slots. Each port's cycles per ACCUM
    # over the AXI4-Lite run, the AXI4 beats counted by the bursts done within it.
    stream = []
    for k in range(N // 16):
        start = (k * 64) % slots
        words = [rng.getrandbits(64) for _ in range(64)]
        stream.append(tb.axi.init_write(tb.addr("ACCUM", start), pack(words), size=3))
        for i, d in enumerate(words):
            tb.model.accum(start + i, d)
    start = now_cycles()
    lite = N // 4
    for i in range(lite):
        d = rng.getrandbits(64)
        await tb.axil.write(tb.addr("ACCUM", i % slots), pack([d]))
        tb.model.accum(i % slots, d)
    cycles = now_cycles() - start
    beats = 64 * sum(e.is_set() for e in stream)
    assert 0 < beats < 64 * len(stream), "the AXI4 stream must outlast the AXI4-Lite run"
    await Combine(*[e.wait() for e in stream])
    for name, ops, transactions in (("two masters: ACCUM, AXI4 bursts of 64", beats, beats / 64),
                                    ("two masters: ACCUM, AXI4-Lite one at a time", lite, lite)):
        results[name] = {"ops": ops, "cycles": cycles, "transactions": transactions,
                         "cycles_per_op": cycles / ops, "transactions_per_op": transactions / ops}
        tb.dut._log.warning("%-28s %8.2f cycles/op", name, cycles / ops)
    await tb.check_all()
    with open(os.environ["ATOMIK_BENCH_OUT"], "w") as f:
        json.dump({"slots": slots, "lanes": tb.lanes, "results": results}, f, indent=1)


@cocotb.test()
async def cycles_per_accum_legacy(dut):
    if os.environ.get("ATOMIK_BENCH_TARGET") != "legacy":
        return
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    rng = random.Random(1)
    model = [0] * 256
    results = {}
    w32 = lambda v: v.to_bytes(4, "little")

    async def single():
        for i in range(N):
            d = rng.getrandbits(64)
            await axil.write(0x00, w32(i % 256))
            await axil.write(0x0C, w32(d & 0xFFFFFFFF))
            await axil.write(0x10, w32(d >> 32))
            model[i % 256] ^= d
        return N, 3 * N

    async def posted():
        events = []
        for i in range(N):
            d = rng.getrandbits(64)
            for a, v in ((0x00, i % 256), (0x0C, d & 0xFFFFFFFF), (0x10, d >> 32)):
                events.append(axil.init_write(a, w32(v)))
            model[i % 256] ^= d
        await Combine(*[e.wait() for e in events])
        return N, 3 * N

    start = now_cycles()
    await measure(type("T", (), {"dut": dut})(), "legacy ACCUM, one at a time", single, results)
    await measure(type("T", (), {"dut": dut})(), "legacy ACCUM, posted", posted, results)
    for s in range(0, 256, 37):
        await axil.write(0x00, w32(s))
        lo = int.from_bytes((await axil.read(0x14, 4)).data, "little")
        hi = int.from_bytes((await axil.read(0x18, 4)).data, "little")
        assert (hi << 32 | lo) == model[s], f"legacy slot {s}"
    with open(os.environ["ATOMIK_BENCH_OUT"], "w") as f:
        json.dump({"slots": 256, "lanes": 1, "results": results}, f, indent=1)
