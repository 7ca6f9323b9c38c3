//! The group operators a bank can use.

use crate::abi;

/// An Abelian group operator over `u64`. Commutative and associative with an identity and
/// inverses: deltas may be combined in any order, grouping and batching and give the same
/// state, and any delta can be undone by ACCUMulating its inverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Op {
    /// Bitwise XOR: identity 0, every element its own inverse. For flags, fingerprints, sets.
    #[default]
    Xor,
    /// Wrapping addition mod 2^64: identity 0, inverse the wrapping negation. For counters.
    Add,
}

impl Op {
    /// The identity element (0 for both operators).
    #[inline]
    pub const fn identity(self) -> u64 {
        0
    }

    /// `a ∘ b`.
    #[inline]
    pub const fn combine(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Xor => a ^ b,
            Op::Add => a.wrapping_add(b),
        }
    }

    /// `d⁻¹`: `combine(d, inverse(d)) == identity()`.
    #[inline]
    pub const fn inverse(self, d: u64) -> u64 {
        match self {
            Op::Xor => d,
            Op::Add => d.wrapping_neg(),
        }
    }

    /// `a ∘ b⁻¹`: the delta that takes `b` to `a`.
    #[inline]
    pub const fn difference(self, a: u64, b: u64) -> u64 {
        self.combine(a, self.inverse(b))
    }

    /// Folds any number of deltas onto `start`.
    pub fn fold(self, start: u64, deltas: impl IntoIterator<Item = u64>) -> u64 {
        deltas.into_iter().fold(start, |s, d| self.combine(s, d))
    }

    /// The ABI code (`abi::OP_XOR` / `abi::OP_ADD`).
    pub const fn code(self) -> u32 {
        match self {
            Op::Xor => abi::OP_XOR,
            Op::Add => abi::OP_ADD,
        }
    }

    /// The operator for an ABI code, if known.
    pub const fn from_code(code: u32) -> Option<Op> {
        match code {
            abi::OP_XOR => Some(Op::Xor),
            abi::OP_ADD => Some(Op::Add),
            _ => None,
        }
    }

    /// Lower-case name, as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Xor => "xor",
            Op::Add => "add",
        }
    }
}

impl std::str::FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Op, String> {
        match s.to_ascii_lowercase().as_str() {
            "xor" => Ok(Op::Xor),
            "add" => Ok(Op::Add),
            _ => Err(format!("unknown operator {s:?} (expected xor or add)")),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
