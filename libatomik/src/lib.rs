//! atomik: delta-state computing.
//!
//! State is kept per 64-bit slot as a *reference* and an *accumulator* under an Abelian group
//! operator ([`Op::Xor`] or wrapping [`Op::Add`]). Producers ACCUMulate deltas in any order
//! without locks; READ gives `reference ∘ accumulator`; SWAP makes the current state the new
//! reference. Banks of slots live in shared memory (the userspace default) or behind
//! `/dev/atomik`, with one layout for both: see [`abi`].
//!
//! ```no_run
//! use atomik::{Bank, CreateOptions, Op};
//! let bank = Bank::create("counters", CreateOptions::new(16).op(Op::Add))?;
//! bank.accum(3, 5)?;
//! bank.accum(3, 7)?;
//! assert_eq!(bank.read(3)?, 12);
//! # Ok::<(), atomik::Error>(())
//! ```

pub mod abi;
pub mod backend;
pub mod bank;
mod error;
pub mod fp_core;
mod name;
mod op;
pub mod replica;
pub mod sdk_abi;
mod slot;
pub mod track;

pub use backend::{Access, BackendKind, BankInfo, CreateOptions};
pub use bank::Bank;
pub use error::{Error, Result};
pub use name::BankName;
pub use op::Op;
pub use slot::Slot;
