//! Memory change tracking: which pages of a process were written, which changed, which
//! are shared copy-on-write or duplicated, grouped per cgroup v2.
//!
//! - [`fingerprint`]: a GF(2)-linear, position-dependent 64-bit page fingerprint.

pub mod fingerprint;
pub mod error;
pub mod maps;
pub mod pagemap;
pub mod ranges;
pub mod scan;
pub mod bitset;
pub mod memread;
pub mod region;
