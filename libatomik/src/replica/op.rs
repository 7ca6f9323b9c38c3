//! The group operator of a replicated bank: the bank's own [`crate::Op`].

pub use crate::Op;
