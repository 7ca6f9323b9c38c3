//! Memory change tracking: which pages of a process were written, which changed, which
//! are shared copy-on-write or duplicated, grouped per cgroup v2.
//!
//! - [`fingerprint`]: a GF(2)-linear, position-dependent 64-bit page fingerprint.

pub mod accounting;
pub mod bitset;
pub mod cgroup;
pub mod container;
pub mod cow;
pub mod dups;
pub mod error;
pub mod fingerprint;
pub mod kernel_cow;
pub mod ksm;
pub mod maps;
pub mod memread;
pub mod monitor;
pub mod newcomers;
pub mod pagemap;
pub mod procfs;
pub mod ranges;
pub mod region;
pub mod runtime;
pub mod scan;
pub mod writable;
