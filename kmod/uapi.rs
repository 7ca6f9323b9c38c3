// SPDX-License-Identifier: GPL-2.0
//! Kernel-side glue for the shared ABI file: proof that its ioctl numbers equal the kernel's
//! `_IOR`/`_IOW`/`_IOWR` encodings, and the marker traits that let its request structs be
//! copied from and to user memory.

use crate::abi::{self, *};
use kernel::ioctl::{_IOR, _IOW, _IOWR};

const M: u32 = abi::IOC_MAGIC;

const _: () = assert!(IOCTL_GET_INFO == _IOR::<Info>(M, 0x00));
const _: () = assert!(IOCTL_BANK_CREATE == _IOW::<BankCreate>(M, 0x01));
const _: () = assert!(IOCTL_BANK_OPEN == _IOWR::<BankOpen>(M, 0x02));
const _: () = assert!(IOCTL_BANK_DESTROY == _IOW::<BankName>(M, 0x03));
const _: () = assert!(IOCTL_BANK_LIST == _IOWR::<BankList>(M, 0x04));
const _: () = assert!(IOCTL_LOAD == _IOW::<SlotOp>(M, 0x10));
const _: () = assert!(IOCTL_ACCUM == _IOW::<SlotOp>(M, 0x11));
const _: () = assert!(IOCTL_READ == _IOWR::<SlotOp>(M, 0x12));
const _: () = assert!(IOCTL_SWAP == _IOWR::<SlotOp>(M, 0x13));
const _: () = assert!(IOCTL_BATCH == _IOWR::<Batch>(M, 0x14));
const _: () = assert!(IOCTL_BANK_STATS == _IOR::<BankStats>(M, 0x15));
const _: () = assert!(IOCTL_SWAP_SET == _IOWR::<SlotOp>(M, 0x16));
const _: () = assert!(IOCTL_IS_CLEAN == _IOWR::<SlotOp>(M, 0x17));
// The bank pages are mapped to userspace with the same page size the layout assumes.
const _: () = assert!(abi::PAGE_SIZE as usize == kernel::page::PAGE_SIZE);

// SAFETY (for all impls below): each struct is `#[repr(C)]`, made only of integers and byte
// arrays, and has no padding (its size is asserted in abi.rs to equal the sum of its fields),
// so every bit pattern is a valid value and every byte of a value is initialised.
macro_rules! plain_bytes {
    ($($t:ty),*) => {$(
        // SAFETY: see above.
        unsafe impl kernel::transmute::FromBytes for $t {}
        // SAFETY: see above.
        unsafe impl kernel::transmute::AsBytes for $t {}
    )*};
}
plain_bytes!(Info, BankCreate, BankOpen, BankName, SlotOp, BatchEntry, Batch, BankStats, BankList, BankListEntry);
