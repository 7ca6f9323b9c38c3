"""Testbench plumbing: clock, reset, the two AXI masters and 64-bit word helpers."""

import os
import struct

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBurstType, AxiBus, AxiLiteBus, AxiLiteMaster, AxiMaster, AxiResp

from model import Model
from regmap import OFFSETS

PERIOD_NS = 10
OKAY = AxiResp.OKAY
SLVERR = AxiResp.SLVERR
INCR = AxiBurstType.INCR
FIXED = AxiBurstType.FIXED
WRAP = AxiBurstType.WRAP


def pack(words):
    return b"".join(struct.pack("<Q", w) for w in words)


def unpack(data):
    return [struct.unpack_from("<Q", data, 8 * i)[0] for i in range(len(data) // 8)]


class Tb:
    def __init__(self, dut):
        self.dut = dut
        self.slots = int(os.environ["ATOMIK_SLOTS"])
        self.lanes = int(os.environ["ATOMIK_LANES"])
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)
        self.model = Model(self.slots)

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.model.clear()

    def cycles(self):
        return int(get_sim_time("ns")) // PERIOD_NS

    # Registers (AXI4-Lite)
    async def reg(self, name):
        r = await self.axil.read(OFFSETS[name], 8)
        assert r.resp == OKAY, f"read of {name}: {r.resp}"
        return unpack(r.data)[0]

    async def reg_write(self, name, value):
        return (await self.axil.write(OFFSETS[name], pack([value]))).resp

    async def accum_fixed(self, slot, words):
        """A FIXED burst of full-width beats at the beat holding `slot`: each beat ACCUMs a word
        into each of the beat's LANES slots (cocotbext-axi moves narrow FIXED beats across lanes)."""
        base = slot - slot % self.lanes
        words = words[: len(words) - len(words) % self.lanes] or [0] * self.lanes
        size = (8 * self.lanes).bit_length() - 1
        assert await self.write("ACCUM", base, words, burst=FIXED, size=size) == OKAY
        for i, d in enumerate(words):
            self.model.accum(base + i % self.lanes, d)
        return len(words)

    async def errors_after(self, coro):
        """Runs `coro` and gives (its result, how much ERRORS grew)."""
        before = await self.reg("ERRORS")
        result = await coro
        return result, await self.reg("ERRORS") - before

    async def clear(self):
        assert await self.reg_write("CONTROL", 1) == OKAY
        self.model.clear()

    # Windows (AXI4)
    def addr(self, window, slot):
        return OFFSETS[window] + 8 * slot

    async def write(self, window, slot, words, burst=INCR, size=3):
        r = await self.axi.write(self.addr(window, slot), pack(words), burst=burst, size=size)
        return r.resp

    async def read(self, window, slot, n=1, burst=INCR):
        r = await self.axi.read(self.addr(window, slot), 8 * n, burst=burst, size=3)
        return unpack(r.data), r.resp

    # Operations checked against the model
    async def accum(self, slot, words):
        assert await self.write("ACCUM", slot, words) == OKAY
        for i, d in enumerate(words):
            self.model.accum(slot + i, d)

    async def load(self, slot, words, add):
        assert await self.write("LOAD_ADD" if add else "LOAD_XOR", slot, words) == OKAY
        for i, v in enumerate(words):
            self.model.load(slot + i, v, add)

    async def check_read(self, slot, n=1):
        got, resp = await self.read("READ", slot, n)
        assert resp == OKAY
        want = [self.model.read(slot + i) for i in range(n)]
        assert got == want, f"READ {slot}..+{n}: got {[hex(x) for x in got]} want {[hex(x) for x in want]}"

    async def check_swap(self, slot, n=1):
        got, resp = await self.read("SWAP", slot, n)
        assert resp == OKAY
        want = [self.model.swap(slot + i) for i in range(n)]
        assert got == want, f"SWAP {slot}..+{n}: got {[hex(x) for x in got]} want {[hex(x) for x in want]}"

    async def check_swap_set(self, slot, n, v):
        assert await self.write("SWAP_SET", 0, [v]) == OKAY
        got, resp = await self.read("SWAP_SET", slot, n)
        assert resp == OKAY
        want = [self.model.swap_set(slot + i, v) for i in range(n)]
        assert got == want, f"SWAP_SET {slot}..+{n}: got {[hex(x) for x in got]} want {[hex(x) for x in want]}"

    async def check_ident(self, k):
        got, resp = await self.read("IDENT", k)
        assert resp == OKAY
        assert got[0] == self.model.ident(k), f"IDENT {k}: got {got[0]:#x} want {self.model.ident(k):#x}"

    async def check_all(self):
        await self.check_read(0, self.slots)
        for k in range((self.slots + 63) // 64):
            await self.check_ident(k)
        assert (await self.reg("STATUS")) & 1 == int(self.model.any_dirty())
        assert await self.reg("ACCUMS") == self.model.accums & ((1 << 64) - 1)
