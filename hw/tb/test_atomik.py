"""cocotb tests of hw/rtl/atomik_top.v through cocotbext-axi masters, against model.py."""

import os
import random

import cocotb
from cocotb.triggers import Combine, RisingEdge

from harness import FIXED, INCR, OKAY, SLVERR, WRAP, Tb, pack
from model import MASK
from regmap import FIELDS, OFFSETS


def field(value, name):
    lsb, width, _ = FIELDS[name]
    return (value >> lsb) & ((1 << width) - 1)


def reset_value(name):
    return FIELDS[name][2]


@cocotb.test()
async def header_describes_the_instance(dut):
    tb = Tb(dut)
    await tb.reset()
    ident = await tb.reg("ID")
    for f in ("ID_MAGIC", "ID_PCI_VENDOR", "ID_PCI_DEVICE"):
        assert field(ident, f) == reset_value(f), f
    assert field(await tb.reg("VERSION"), "VERSION_MAJOR") == reset_value("VERSION_MAJOR")
    geo = await tb.reg("GEOMETRY")
    assert field(geo, "GEOMETRY_SLOTS") == tb.slots
    assert field(geo, "GEOMETRY_LANES") == tb.lanes
    assert 1 << field(geo, "GEOMETRY_WINDOW_SHIFT") == OFFSETS["LOAD_XOR"] - OFFSETS["ACCUM"]
    feats = await tb.reg("FEATURES")
    bits = [f for f in FIELDS if f.startswith("FEATURES_")]
    assert len(bits) >= 9
    for f in bits:                                  # every bit the RDL defines, as it sets it
        assert field(feats, f) == reset_value(f) == 1, f
    assert feats == sum(1 << FIELDS[f][0] for f in bits), f"FEATURES {feats:#x}: bits the RDL does not define"
    assert await tb.reg("STATUS") == 0 and await tb.reg("ERRORS") == 0 and await tb.reg("ACCUMS") == 0


@cocotb.test()
async def directed_operations(dut):
    tb = Tb(dut)
    await tb.reset()
    last = tb.slots - 1
    # XOR: LOAD, ACCUM, READ, SWAP; a delta applied twice cancels and the slot is identity again.
    await tb.load(0, [0xCAFEBABE], add=False)
    await tb.accum(0, [0x0000FF00])
    await tb.accum(0, [0x00FF0000])
    got, _ = await tb.read("READ", 0)
    assert got == [0xCA0145BE], hex(got[0])
    await tb.check_ident(0)
    assert (await tb.read("IDENT", 0))[0][0] & 1 == 0, "slot 0 dirty"
    await tb.accum(0, [0x0000FF00, ])
    await tb.accum(0, [0x00FF0000])
    assert (await tb.read("IDENT", 0))[0][0] & 1 == 1, "deltas cancelled: identity"
    # ADD wraps at 2^64; SWAP returns the state, which becomes the reference.
    await tb.load(last, [MASK - 1], add=True)
    await tb.accum(last, [3])
    got, _ = await tb.read("SWAP", last)
    assert got == [1]
    tb.model.swap(last)
    await tb.accum(last, [MASK])                    # -1
    await tb.check_read(last)
    got, _ = await tb.read("READ", last)
    assert got == [0]
    # SWAP_SET: the staged value becomes the reference, the accumulator the identity.
    await tb.accum(last, [5])
    await tb.check_swap_set(last, 1, 100)
    got, _ = await tb.read("READ", last)
    assert got == [100]
    assert await tb.write("SWAP_SET", 1, [7]) == SLVERR, "staging only at offset 0"
    await tb.check_all()


@cocotb.test()
async def refused_accesses_change_nothing(dut):
    tb = Tb(dut)
    await tb.reset()
    await tb.load(0, list(range(1, tb.slots + 1)), add=True)
    # A slot beyond SLOTS: SLVERR on every window, nothing changes, ERRORS counts the beat.
    for w in ("ACCUM", "LOAD_XOR", "LOAD_ADD"):
        resp, n = await tb.errors_after(tb.write(w, tb.slots, [7]))
        assert resp == SLVERR and n == 1, w
    for w in ("READ", "SWAP", "SWAP_SET"):
        (got, resp), n = await tb.errors_after(tb.read(w, tb.slots))
        assert resp == SLVERR and got == [0] and n == 1, w
    for w in ("ACCUM",):
        resp, n = await tb.errors_after(tb.write(w, tb.slots, [7]))
        assert resp == SLVERR and n == 1, w
    for w in ("READ", "SWAP"):
        (got, resp), n = await tb.errors_after(tb.read(w, tb.slots))
        assert resp == SLVERR and got == [0] and n == 1, w
    (_, resp), n = await tb.errors_after(tb.read("IDENT", (tb.slots + 63) // 64))
    assert resp == SLVERR and n == 1
    # A write to a read window, a read of a write window.
    for w in ("READ", "SWAP", "IDENT"):
        resp, n = await tb.errors_after(tb.write(w, 0, [7]))
        assert resp == SLVERR and n == 1, w
    for w in ("ACCUM", "LOAD_XOR", "LOAD_ADD"):
        (_, resp), n = await tb.errors_after(tb.read(w, 0))
        assert resp == SLVERR and n == 1, w
    # Half a word (partial strobe) is never written.
    r, n = await tb.errors_after(tb.axi.write(tb.addr("ACCUM", 1), b"\x01\x02\x03\x04", size=2))
    assert r.resp == SLVERR and n == 1
    # A WRAP burst is refused whole.
    r, n = await tb.errors_after(tb.axi.write(tb.addr("ACCUM", 0), pack([1, 2]), burst=WRAP, size=3))
    assert r.resp == SLVERR and n >= 1
    # A burst that runs past the last slot: its in-range beats act, the others are refused.
    if tb.slots >= 2 * tb.lanes:
        resp, n = await tb.errors_after(tb.write("ACCUM", tb.slots - tb.lanes, [5] * (2 * tb.lanes)))
        assert resp == SLVERR and n == tb.lanes
        for i in range(tb.lanes):
            tb.model.accum(tb.slots - tb.lanes + i, 5)
    errors = await tb.reg("ERRORS")
    assert await tb.reg("ERRORS") == errors, "register accesses do not count as window errors"
    await tb.check_all()


@cocotb.test()
async def reset_and_clear_restore_identity(dut):
    tb = Tb(dut)
    for restore in ("reset", "clear"):
        await tb.reset()
        await tb.load(0, [random.getrandbits(64) for _ in range(tb.slots)], add=True)
        await tb.accum(0, [random.getrandbits(64) | 1 for _ in range(tb.slots)])
        assert await tb.reg("STATUS") & 1 == 1
        await tb.write("ACCUM", tb.slots, [1])          # one error to see cleared
        if restore == "reset":
            await tb.reset()
        else:
            await tb.clear()
        assert await tb.reg("ERRORS") == 0 and await tb.reg("ACCUMS") == 0, restore
        got, _ = await tb.read("READ", 0, tb.slots)
        assert got == [0] * tb.slots, restore
        # The operator is XOR again: x ∘ x is the identity.
        await tb.accum(3, [0x55, 0x55])
        await tb.check_all()


@cocotb.test()
async def back_to_back_on_one_slot(dut):
    """Posted ACCUMs issued without waiting, all to one slot: the pipeline forwards each result."""
    tb = Tb(dut)
    await tb.reset()
    for add in (False, True):
        await tb.load(1, [0x1000], add=add)
        deltas = [random.getrandbits(64) for _ in range(64)]
        events = [tb.axi.init_write(tb.addr("ACCUM", 1), pack([d]), size=3) for d in deltas]
        await Combine(*[e.wait() for e in events])
        assert all(e.data.resp == OKAY for e in events)
        for d in deltas:
            tb.model.accum(1, d)
        await tb.check_read(1)
        # A FIXED burst: every beat into the same slot(s).
        await tb.accum_fixed(1, deltas)
        await tb.check_read(0, tb.lanes)
        # LOAD then ACCUM then SWAP then ACCUM back to back.
        tb.axi.init_write(tb.addr("LOAD_ADD" if add else "LOAD_XOR", 1), pack([9]), size=3)
        e = tb.axi.init_write(tb.addr("ACCUM", 1), pack([4]), size=3)
        await e.wait()
        tb.model.load(1, 9, add)
        tb.model.accum(1, 4)
        await tb.check_swap(1)
    await tb.check_all()


@cocotb.test()
async def posted_bursts_under_backpressure(dut):
    """Write bursts posted back to back (the next AW overlaps the last beat) while the master
    stalls W and B at random: each burst gets its own response, a refused one SLVERR and the
    others OKAY, every beat of a good burst counts once and a refused one counts in ERRORS."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(5)
    tb.axi.write_if.w_channel.set_pause_generator(rng.random() < 0.3 for _ in iter(int, 1))
    tb.axi.write_if.b_channel.set_pause_generator(rng.random() < 0.5 for _ in iter(int, 1))
    await tb.load(0, [rng.getrandbits(64) for _ in range(tb.slots)], add=True)
    posted, refused_beats = [], 0
    for _ in range(300):
        n = rng.choice([1, 1, 2, 3, 8, 16])
        start = rng.randrange(0, tb.slots - n + 1)
        words = [rng.getrandbits(64) for _ in range(n)]
        refused = rng.random() < 0.2
        window = "READ" if refused else "ACCUM"
        posted.append((tb.axi.init_write(tb.addr(window, start), pack(words), size=3), refused))
        if refused:
            refused_beats += n                      # 64-bit beats: one per word
        else:
            for i, d in enumerate(words):
                tb.model.accum(start + i, d)
    await Combine(*[e.wait() for e, _ in posted])
    for i, (e, refused) in enumerate(posted):
        assert e.data.resp == (SLVERR if refused else OKAY), f"burst {i}: {e.data.resp}"
    tb.axi.write_if.w_channel.set_pause_generator(None)
    tb.axi.write_if.b_channel.set_pause_generator(None)
    assert await tb.reg("ERRORS") == refused_beats
    await tb.check_all()


@cocotb.test()
async def accum_from_both_ports_at_once(dut):
    """Two masters ACCUM into the same 16 slots at once, one on the AXI4-Lite port (one write at a
    time) and one streaming AXI4 bursts: every delta counts exactly once (ADD, then XOR, with
    random 64-bit deltas, so a lost or doubled one shows), ACCUMS counts them all, and when the
    AXI4-Lite master is done the AXI4 stream is partly done: each port progressed while the other
    was busy, neither waited for the other to finish."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(3)
    hot = min(tb.slots, 16)
    for add in (True, False):
        await tb.load(0, [rng.getrandbits(64) for _ in range(tb.slots)], add=add)
        stream = []
        for _ in range(200):
            n = rng.choice([8, 16]) if hot >= 16 else hot
            start = rng.randrange(0, hot - n + 1)
            words = [rng.getrandbits(64) for _ in range(n)]
            stream.append(tb.axi.init_write(tb.addr("ACCUM", start), pack(words), size=3))
            for i, d in enumerate(words):
                tb.model.accum(start + i, d)
        for _ in range(300):
            slot, d = rng.randrange(hot), rng.getrandbits(64)
            assert (await tb.axil.write(tb.addr("ACCUM", slot), pack([d]))).resp == OKAY
            tb.model.accum(slot, d)
        done = sum(e.is_set() for e in stream)
        dut._log.info("AXI4 bursts done when the AXI4-Lite master finished: %d of %d", done, len(stream))
        assert 0 < done < len(stream), f"AXI4 bursts done when the AXI4-Lite master finished: {done}"
        await Combine(*[e.wait() for e in stream])
        assert all(e.data.resp == OKAY for e in stream)
        await tb.check_all()
    # The AXI4-Lite port's window writes are refused as the AXI4 port's are, and LOAD works.
    for window, slot, strb_ok in (("READ", 0, True), ("ACCUM", tb.slots, True), ("ACCUM", 0, False)):
        data = pack([1]) if strb_ok else b"\x01\x02\x03\x04"
        addr = tb.addr(window, slot) + (0 if strb_ok else 4)
        r, n = await tb.errors_after(tb.axil.write(addr, data))
        assert r.resp == SLVERR and n == 1, (window, slot, strb_ok)
    assert (await tb.axil.write(tb.addr("LOAD_ADD", 2), pack([41]))).resp == OKAY
    assert (await tb.axil.write(tb.addr("ACCUM", 2), pack([1]))).resp == OKAY
    tb.model.load(2, 41, True)
    tb.model.accum(2, 1)
    await tb.check_all()


@cocotb.test()
async def bursts_of_every_length(dut):
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(7)
    await tb.load(0, [rng.getrandbits(64) for _ in range(tb.slots)], add=False)
    for n in (1, 2, 3, 16, 64, 255, 256, tb.slots):
        n = min(n, tb.slots)
        start = rng.randrange(0, tb.slots - n + 1)
        await tb.accum(start, [rng.getrandbits(64) for _ in range(n)])
        await tb.check_read(start, n)
        await tb.check_swap(start, n)
    await tb.check_all()


@cocotb.test()
async def reads_beside_writes(dut):
    """A READ burst of one range while ACCUM bursts go to another: the lanes are shared fairly."""
    tb = Tb(dut)
    await tb.reset()
    half = tb.slots // 2
    await tb.load(0, list(range(tb.slots)), add=True)
    writes = [tb.axi.init_write(tb.addr("ACCUM", half), pack([i + 1] * half), size=3) for i in range(8)]
    got, resp = await tb.read("READ", 0, half)
    assert resp == OKAY and got == [tb.model.read(i) for i in range(half)]
    await Combine(*[e.wait() for e in writes])
    for i in range(8):
        for s in range(half, tb.slots):
            tb.model.accum(s, i + 1)
    await tb.check_all()


@cocotb.test()
async def random_ops_against_the_model(dut):
    """ATOMIK_TB_OPS slot operations (default 100,000; a burst of n counts n) against model.py."""
    tb = Tb(dut)
    await tb.reset()
    target = int(os.environ.get("ATOMIK_TB_OPS", "100000"))
    seed = int(os.environ.get("ATOMIK_TB_SEED", "11"))
    rng = random.Random(seed)
    dut._log.info("random ops: %d, seed %d", target, seed)
    done = 0
    S = tb.slots

    def span():
        n = rng.choice([1, 1, 1, 2, 4, 8, 16, 32, 64, 128])
        n = min(n, S)
        return rng.randrange(0, S - n + 1), n

    def delta():
        return rng.choice([rng.getrandbits(64), rng.getrandbits(8), MASK, 1])

    while done < target:
        k = rng.random()
        start, n = span()
        if k < 0.35:
            await tb.accum(start, [delta() for _ in range(n)])
        elif k < 0.50:
            # Posted ACCUMs in flight together (they commute), beside a READ of the rest.
            events = []
            for _ in range(rng.randrange(2, 6)):
                s, m = span()
                words = [delta() for _ in range(m)]
                events.append(tb.axi.init_write(tb.addr("ACCUM", s), pack(words), size=3))
                for i, d in enumerate(words):
                    tb.model.accum(s + i, d)
                n += m
            await Combine(*[e.wait() for e in events])
            assert all(e.data.resp == OKAY for e in events)
        elif k < 0.60:
            await tb.load(start, [rng.getrandbits(64) for _ in range(n)], add=rng.random() < 0.5)
        elif k < 0.78:
            await tb.check_read(start, n)
        elif k < 0.86:
            await tb.check_swap(start, n)
        elif k < 0.90:
            await tb.check_swap_set(start, n, rng.getrandbits(64))
        elif k < 0.95:
            n = await tb.accum_fixed(rng.randrange(S), [delta() for _ in range(n)])
        elif k < 0.999:
            await tb.check_ident(rng.randrange((S + 63) // 64))
            n = 1
        else:
            await tb.clear()
        done += n
    await tb.check_all()
    dut._log.info("random ops checked: %d", done)
