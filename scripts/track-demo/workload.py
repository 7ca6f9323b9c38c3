"""Memory workloads for scripts/track-demo.sh: each mode runs until killed.

cache  N   holds N MiB of the same bytes every 'cache' process holds (duplicates), rewrites
           1 MiB of it with new bytes every second (writes that change content).
forker N   fills N MiB, forks two children that share it copy-on-write; one rewrites 2 MiB
           with new bytes every second (COW breaks, copies), the other rewrites 2 MiB with the
           bytes already there (COW copies identical to their origin; silent writes).
"""
import os
import sys
import time

MIB = 1 << 20


def pattern(n_mib):
    """n_mib MiB in which every page differs from every other (its index leads it)."""
    filler = bytes(range(256)) * 16
    return bytearray(b"".join(i.to_bytes(8, "little") + filler[8:] for i in range(n_mib * MIB // 4096)))


def cache(n):
    buf = pattern(n)
    i = 0
    while True:
        off = (i % n) * MIB
        buf[off:off + MIB] = os.urandom(MIB)
        i += 1
        time.sleep(1)


def forker(n):
    buf = pattern(n)
    for same in (False, True):
        if os.fork() == 0:
            i = 0
            while True:
                off = (i % (n // 2)) * 2 * MIB
                buf[off:off + 2 * MIB] = buf[off:off + 2 * MIB] if same else os.urandom(2 * MIB)
                i += 1
                time.sleep(1)
    os.wait()


mode, n = sys.argv[1], int(sys.argv[2])
{"cache": cache, "forker": forker}[mode](n)
