//! atomik: delta-state computing.
//!
//! State is kept per 64-bit slot as a *reference* and an *accumulator* under an Abelian group
//! operator ([`Op::Xor`] or wrapping [`Op::Add`]). Producers ACCUMulate deltas in any order
//! without locks; READ gives `reference ∘ accumulator`; SWAP makes the current state the new
//! reference. Banks of slots live in shared memory (the userspace default) or behind
//! `/dev/atomik`, with one layout for both: see [`abi`].

pub mod abi;
pub mod replica;
