//! The group operator of a replicated bank.
//!
//! Stand-in for `atomik::Op` until the bank API lands on main; the replica code only needs
//! `combine`, `inverse` and `identity`, which is all an Abelian group gives.

use crate::abi;

/// Abelian group on `u64` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Bitwise XOR: every element is its own inverse.
    Xor,
    /// Wrapping addition modulo 2^64 (counters).
    Add,
}

impl Op {
    /// `a ∘ b`.
    #[inline]
    pub fn combine(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Xor => a ^ b,
            Op::Add => a.wrapping_add(b),
        }
    }

    /// `d⁻¹`, so that `d ∘ d⁻¹ = identity`.
    #[inline]
    pub fn inverse(self, d: u64) -> u64 {
        match self {
            Op::Xor => d,
            Op::Add => d.wrapping_neg(),
        }
    }

    /// The neutral element (0 for both).
    #[inline]
    pub fn identity(self) -> u64 {
        0
    }

    /// The ABI code (`abi::OP_XOR`, `abi::OP_ADD`).
    pub fn code(self) -> u32 {
        match self {
            Op::Xor => abi::OP_XOR,
            Op::Add => abi::OP_ADD,
        }
    }

    /// From an ABI code; `None` for unknown codes.
    pub fn from_code(code: u32) -> Option<Op> {
        match code {
            abi::OP_XOR => Some(Op::Xor),
            abi::OP_ADD => Some(Op::Add),
            _ => None,
        }
    }
}
