"""The original SDK (atomik-core 0.4.0, installed unmodified) on /dev/atomik: thousands of
random load/accum/read/swap (with and without new_reference) and info calls through its
DeviceTable and DeviceContext, each checked against the SDK's own pure-Python AtomikContext
fed the same sequence; then the SDK's limits and errors."""
import errno
import os
import random
import sys

from atomik_core import AtomikContext
from atomik_core.device import ATOMIK_MAX_CONTEXTS, ATOMIK_MAX_TABLES, DeviceContext, DeviceTable

MASK = (1 << 64) - 1
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 20261203)
N = 6000


def value():
    return rng.choice([rng.getrandbits(64), 1 << rng.randrange(64), rng.randrange(1, 256)])


# Tables on their own fds, and two on one shared fd (GET_INFO counts the ops of an fd).
shared = os.open("/dev/atomik", os.O_RDWR)
tables = [DeviceTable(num_contexts=n) for n in (1, 16, 1000)]
tables += [DeviceTable(num_contexts=n, fd=shared) for n in (8, 300)]
models = [[AtomikContext() for _ in range(t.num_contexts)] for t in tables]
fd_ops = {}
ctx, ctx_model = DeviceContext(), AtomikContext()
ids = [t.table_id for t in tables[3:]]
assert len(set(ids)) == len(ids), f"table ids on one fd not distinct: {ids}"

counts = {"load": 0, "accum": 0, "read": 0, "swap": 0, "swap_ref": 0, "info": 0}
for _ in range(N):
    k = rng.randrange(len(tables))
    t, m = tables[k], models[k]
    a = rng.randrange(t.num_contexts)
    op = rng.choice(["load", "accum", "accum", "read", "read", "swap", "swap_ref", "info", "ctx"])
    if op == "ctx":
        # DeviceContext, the drop-in for AtomikContext.
        sub = rng.choice(["load", "accum", "read", "swap"])
        v = value()
        if sub == "load":
            ctx.load(v), ctx_model.load(v)
        elif sub == "accum":
            ctx.accum(v), ctx_model.accum(v)
        elif sub == "read":
            assert ctx.read() == ctx_model.read(), "DeviceContext.read"
        else:
            assert ctx.swap() == ctx_model.swap(), "DeviceContext.swap"
        continue
    counts[op] += 1
    fd = t._fd
    if op == "info":
        info = t.info()
        assert info.version == "0.4.0" and info.backend == "software", repr(info)
        assert info.ops_total == fd_ops.get(fd, 0), f"ops_total {info.ops_total}, want {fd_ops.get(fd, 0)}"
        continue
    fd_ops[fd] = fd_ops.get(fd, 0) + 1
    if op == "load":
        v = value()
        t.load(a, v), m[a].load(v)
    elif op == "accum":
        v = value()
        t.accum(a, v), m[a].accum(v)
    elif op == "read":
        got, want = t.read(a), m[a].read()
        assert got == want, f"read table {t.table_id} addr {a}: {got:#x}, model {want:#x}"
    elif op == "swap":
        got, want = t.swap(a), m[a].swap()
        assert got == want, f"swap: {got:#x}, model {want:#x}"
    else:
        r = value()  # nonzero: 0 means "the current state" on the device
        got, want = t.swap(a, r), m[a].swap(r)
        assert got == want, f"swap({r:#x}): {got:#x}, model {want:#x}"
        assert t.read(a) == r, "swap did not set new_reference"
        fd_ops[fd] += 1
for t, m in zip(tables, models):
    for a in range(t.num_contexts):
        assert t.read(a) == m[a].read(), f"final state of table {t.table_id} addr {a}"

# The README's example (the original's seed 004): the algebra, not its comment.
with DeviceTable(num_contexts=256) as ex:
    ex.load(0, 0xCAFEBABE), ex.accum(0, 0x0000FF00), ex.accum(0, 0x00FF0000)
    assert ex.read(0) == 0xCA0145BE, hex(ex.read(0))
    assert ex.info().ops_total == 4

# Limits and errors, as the SDK sees them.
big = DeviceTable(num_contexts=ATOMIK_MAX_CONTEXTS)
big.load(ATOMIK_MAX_CONTEXTS - 1, 5)
assert big.read(ATOMIK_MAX_CONTEXTS - 1) == 5
try:
    big.read(ATOMIK_MAX_CONTEXTS)
    raise AssertionError("read past the table succeeded")
except OSError as e:
    assert e.errno == errno.EINVAL, e
fd = os.open("/dev/atomik", os.O_RDWR)
many = [DeviceTable(num_contexts=1, fd=fd) for _ in range(ATOMIK_MAX_TABLES)]
try:
    DeviceTable(num_contexts=1, fd=fd)
    raise AssertionError(f"table {ATOMIK_MAX_TABLES + 1} on one fd was created")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
for t in many:
    t.close()
for t in tables + [big]:
    t.close()
ctx.close()
print(f"{N} random SDK calls matched AtomikContext ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
      f"{ATOMIK_MAX_CONTEXTS} contexts and {ATOMIK_MAX_TABLES} tables per fd, then EINVAL/ENOSPC")
