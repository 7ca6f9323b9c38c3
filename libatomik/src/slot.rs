//! One slot's algebra in private memory: the model the shared banks must agree with.

use crate::Op;

/// A (reference, accumulator) pair under an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    op: Op,
    reference: u64,
    acc: u64,
}

impl Slot {
    /// A slot holding `reference` with a clean accumulator.
    pub const fn new(op: Op, reference: u64) -> Slot {
        Slot { op, reference, acc: op.identity() }
    }

    /// LOAD: reference = v, accumulator = identity.
    pub fn load(&mut self, v: u64) {
        self.reference = v;
        self.acc = self.op.identity();
    }

    /// ACCUM: acc = acc ∘ d.
    pub fn accum(&mut self, d: u64) {
        self.acc = self.op.combine(self.acc, d);
    }

    /// ACCUM of `d`'s inverse: cancels an earlier `accum(d)`.
    pub fn undo(&mut self, d: u64) {
        self.accum(self.op.inverse(d));
    }

    /// READ: reference ∘ acc.
    pub const fn read(&self) -> u64 {
        self.op.combine(self.reference, self.acc)
    }

    /// SWAP: returns the current state, makes it the reference, clears the accumulator.
    pub fn swap(&mut self) -> u64 {
        let s = self.read();
        self.load(s);
        s
    }

    /// True when the accumulator is the identity (nothing accumulated since LOAD/SWAP).
    pub const fn is_clean(&self) -> bool {
        self.acc == self.op.identity()
    }

    /// The reference.
    pub const fn reference(&self) -> u64 {
        self.reference
    }

    /// The accumulator.
    pub const fn accumulator(&self) -> u64 {
        self.acc
    }

    /// The operator.
    pub const fn op(&self) -> Op {
        self.op
    }
}
