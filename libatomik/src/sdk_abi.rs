//! The ABI of the original ATOMiK module (v0.4.0), as its Python SDK `atomik-core` 0.4.0
//! (`atomik_core/device.py`) speaks it: ioctl type `'A'`, tables of contexts private to the
//! open file. `/dev/atomik` serves these beside its own ABI ([`crate::abi`], type `0xA7`), so
//! the SDK's `DeviceTable` and `DeviceContext` run unmodified. Compiled as is by the kernel
//! module (`kmod/sdk_compat.rs`), like `abi.rs`.
//!
//! Semantics (XOR only, as the SDK's `AtomikContext`): LOAD sets the reference and clears the
//! accumulator, ACCUM XORs the delta in, READ returns `reference ^ accumulator`, SWAP returns
//! that state and makes `new_reference` the reference — the current state when it is 0, which
//! is what the SDK sends for `swap(addr)` — and clears the accumulator. The original module
//! ignored `new_reference`.
//!
//! Errors (as for [`crate::abi`]'s ioctls; nothing changes on any error): EINVAL for a
//! context count outside 1..=[`SDK_MAX_CONTEXTS`], an unknown table id (as an unknown region
//! id) or an address outside the table; ENOSPC for a table beyond [`SDK_MAX_TABLES`] on one
//! fd; ENOMEM when the table cannot be allocated; EACCES when the fd's open mode lacks what
//! the op needs (READ read, LOAD/ACCUM write, SWAP both); EFAULT for an unreadable request or
//! unwritable reply; ENOTTY for the original's other commands (fingerprint regions, BATCH).
#![allow(dead_code)]

use crate::abi::{IOC_READ, IOC_WRITE};
use core::mem::size_of;

/// The ioctl type byte of the original module and its SDK.
pub const SDK_IOC_MAGIC: u32 = b'A' as u32;

/// Contexts in one table, at most (the SDK's `ATOMIK_MAX_CONTEXTS`).
pub const SDK_MAX_CONTEXTS: u32 = 65_536;

/// Tables one open file holds, at most (the SDK's `ATOMIK_MAX_TABLES`).
pub const SDK_MAX_TABLES: u32 = 256;

/// GET_INFO `version`: the original module's version whose ABI is served, 0.4.0, as
/// `major << 16 | minor << 8 | patch`.
pub const SDK_VERSION: u32 = 4 << 8;

/// GET_INFO `backend`: 0 software (1 would be the original's FPGA).
pub const SDK_BACKEND_SOFTWARE: u32 = 0;

/// Encodes an ioctl number of type `'A'` like the kernel's `_IOC`.
pub const fn sdk_ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (SDK_IOC_MAGIC << 8) | nr
}

/// CREATE_TABLE request and reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkCreateTable {
    /// Contexts of the new table, 1..=[`SDK_MAX_CONTEXTS`], all zero.
    pub num_contexts: u32,
    /// Out: the id naming the table on this fd (1..=[`SDK_MAX_TABLES`]).
    pub table_id: u32,
}

/// DESTROY_TABLE request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkTableId {
    pub table_id: u32,
}

/// LOAD (`value` = initial state), ACCUM (`value` = delta), READ (`value` out = state).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkContextOp {
    pub table_id: u32,
    pub addr: u32,
    pub value: u64,
}

/// SWAP request and reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkSwap {
    pub table_id: u32,
    pub addr: u32,
    /// The reference after the swap; 0 means the current state.
    pub new_reference: u64,
    /// Out: the state before the swap.
    pub old_state: u64,
}

/// GET_INFO reply: 40 bytes, no padding (four u32 end 8-aligned; device.py's comment about a
/// pad is wrong, its `struct` format `<IIIIQQQ` is right).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkInfo {
    /// [`SDK_VERSION`].
    pub version: u32,
    /// [`SDK_BACKEND_SOFTWARE`].
    pub backend: u32,
    /// Hardware banks: 0.
    pub hw_banks: u32,
    /// Fingerprint regions of the original ABI: 0, not served (atomik's own REGION_* ioctls are).
    pub fp_enabled: u32,
    /// LOAD, ACCUM, READ and SWAP that succeeded on this fd's tables.
    pub ops_total: u64,
    /// Always 0 (no fingerprint regions).
    pub fp_checks: u64,
    /// Always 0.
    pub fp_bytes_saved: u64,
}

const _: () = assert!(size_of::<SdkCreateTable>() == 8);
const _: () = assert!(size_of::<SdkTableId>() == 4);
const _: () = assert!(size_of::<SdkContextOp>() == 16);
const _: () = assert!(size_of::<SdkSwap>() == 24);
const _: () = assert!(size_of::<SdkInfo>() == 40);

/// `_IOWR('A', 0x01, 8)`.
pub const SDK_IOCTL_CREATE_TABLE: u32 = sdk_ioc(IOC_READ | IOC_WRITE, 0x01, size_of::<SdkCreateTable>());
/// `_IOW('A', 0x02, 4)`.
pub const SDK_IOCTL_DESTROY_TABLE: u32 = sdk_ioc(IOC_WRITE, 0x02, size_of::<SdkTableId>());
/// `_IOW('A', 0x10, 16)`.
pub const SDK_IOCTL_LOAD: u32 = sdk_ioc(IOC_WRITE, 0x10, size_of::<SdkContextOp>());
/// `_IOW('A', 0x11, 16)`.
pub const SDK_IOCTL_ACCUM: u32 = sdk_ioc(IOC_WRITE, 0x11, size_of::<SdkContextOp>());
/// `_IOWR('A', 0x12, 16)`.
pub const SDK_IOCTL_READ: u32 = sdk_ioc(IOC_READ | IOC_WRITE, 0x12, size_of::<SdkContextOp>());
/// `_IOWR('A', 0x13, 24)`.
pub const SDK_IOCTL_SWAP: u32 = sdk_ioc(IOC_READ | IOC_WRITE, 0x13, size_of::<SdkSwap>());
/// `_IOR('A', 0x40, 40)`.
pub const SDK_IOCTL_GET_INFO: u32 = sdk_ioc(IOC_READ, 0x40, size_of::<SdkInfo>());

// The numbers the SDK computes (device.py), written out: a change above cannot go unnoticed.
const _: () = assert!(SDK_IOCTL_CREATE_TABLE == 0xC008_4101);
const _: () = assert!(SDK_IOCTL_DESTROY_TABLE == 0x4004_4102);
const _: () = assert!(SDK_IOCTL_LOAD == 0x4010_4110);
const _: () = assert!(SDK_IOCTL_ACCUM == 0x4010_4111);
const _: () = assert!(SDK_IOCTL_READ == 0xC010_4112);
const _: () = assert!(SDK_IOCTL_SWAP == 0xC018_4113);
const _: () = assert!(SDK_IOCTL_GET_INFO == 0x8028_4140);
