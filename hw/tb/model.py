"""Reference model of the slot array: what every RTL answer is checked against."""

MASK = (1 << 64) - 1


class Model:
    def __init__(self, slots):
        self.slots = slots
        self.clear()

    def clear(self):
        self.ref = [0] * self.slots
        self.acc = [0] * self.slots
        self.add = [False] * self.slots
        self.accums = 0

    def combine(self, i, a, b):
        return (a + b) & MASK if self.add[i] else a ^ b

    def accum(self, i, d):
        self.acc[i] = self.combine(i, self.acc[i], d)
        self.accums += 1

    def load(self, i, v, add):
        self.ref[i], self.acc[i], self.add[i] = v, 0, add

    def read(self, i):
        return self.combine(i, self.ref[i], self.acc[i])

    def swap(self, i):
        s = self.read(i)
        self.ref[i], self.acc[i] = s, 0
        return s

    def swap_set(self, i, v):
        s = self.read(i)
        self.ref[i], self.acc[i] = v, 0
        return s

    def ident(self, k):
        w = 0
        for j in range(64):
            s = 64 * k + j
            if s >= self.slots or self.acc[s] == 0:
                w |= 1 << j
        return w

    def any_dirty(self):
        return any(a != 0 for a in self.acc)
