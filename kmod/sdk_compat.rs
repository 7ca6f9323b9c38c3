// SPDX-License-Identifier: GPL-2.0
//! The original ATOMiK module's ioctls (type `'A'`), served beside atomik's own so that the
//! original SDK (`atomik-core` 0.4.0, `DeviceTable` / `DeviceContext`) runs unmodified on
//! `/dev/atomik`. The ABI and its errors are `libatomik/src/sdk_abi.rs`.
//!
//! A table is a private XOR bank of the open file: `num_contexts` (reference, accumulator)
//! pairs in kernel memory, never mapped nor shared. One fd holds at most 256 tables of at most
//! 65,536 contexts, 16 bytes each: 256 MiB at worst, allocated with `GFP_KERNEL_ACCOUNT`
//! (charged to the caller's memory cgroup) and freed with the table or the fd. The tables of
//! an fd sit under one mutex (an op is a few loads and stores under it); every request is
//! copied in before it is taken and every reply checked writable before anything changes.

use crate::{
    abi::{ACCESS_READ, ACCESS_WRITE},
    access,
    sdk_abi::*,
};
use core::mem::size_of;
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    fs::File,
    ioctl::{_IOR, _IOW, _IOWR},
    new_mutex,
    prelude::*,
    sync::Mutex,
    uaccess::{UserPtr, UserSlice},
};

const M: u32 = SDK_IOC_MAGIC;
const _: () = assert!(SDK_IOCTL_CREATE_TABLE == _IOWR::<SdkCreateTable>(M, 0x01));
const _: () = assert!(SDK_IOCTL_DESTROY_TABLE == _IOW::<SdkTableId>(M, 0x02));
const _: () = assert!(SDK_IOCTL_LOAD == _IOW::<SdkContextOp>(M, 0x10));
const _: () = assert!(SDK_IOCTL_ACCUM == _IOW::<SdkContextOp>(M, 0x11));
const _: () = assert!(SDK_IOCTL_READ == _IOWR::<SdkContextOp>(M, 0x12));
const _: () = assert!(SDK_IOCTL_SWAP == _IOWR::<SdkSwap>(M, 0x13));
const _: () = assert!(SDK_IOCTL_GET_INFO == _IOR::<SdkInfo>(M, 0x40));

// SAFETY (for all impls below): each struct is `#[repr(C)]`, made only of integers, and has no
// padding (its size is asserted in sdk_abi.rs to equal the sum of its fields), so every bit
// pattern is a valid value and every byte of a value is initialised.
macro_rules! plain_bytes {
    ($($t:ty),*) => {$(
        // SAFETY: see above.
        unsafe impl kernel::transmute::FromBytes for $t {}
        // SAFETY: see above.
        unsafe impl kernel::transmute::AsBytes for $t {}
    )*};
}
plain_bytes!(SdkCreateTable, SdkTableId, SdkContextOp, SdkSwap, SdkInfo);

/// One table: `words[2 * addr]` is the reference of context `addr`, `words[2 * addr + 1]` its
/// accumulator.
struct Table {
    words: KVVec<u64>,
}

/// The tables of one fd: table id `k + 1` is `list[k]` (`None` once destroyed, reused by the
/// next CREATE_TABLE), and the count GET_INFO reports.
pub(crate) struct Tables {
    list: KVec<Option<Table>>,
    ops_total: u64,
}

impl Tables {
    /// No tables (nothing allocated until the first CREATE_TABLE).
    pub(crate) fn new() -> impl PinInit<Mutex<Tables>> {
        new_mutex!(Tables { list: KVec::new(), ops_total: 0 })
    }

    /// The (reference, accumulator) indices of `addr` in table `id`: EINVAL for an unknown
    /// table or an address outside it.
    fn context(&mut self, id: u32, addr: u32) -> Result<(&mut Table, usize)> {
        let k = usize::try_from(id).ok().and_then(|i| i.checked_sub(1)).ok_or(EINVAL)?;
        let table = self.list.get_mut(k).and_then(Option::as_mut).ok_or(EINVAL)?;
        let i = usize::try_from(addr).map_err(|_| EINVAL)?;
        if i >= table.words.len() / 2 {
            return Err(EINVAL);
        }
        Ok((table, 2 * i))
    }
}

/// Whether `cmd` is one of the original's ioctls served here.
pub(crate) fn handles(cmd: u32) -> bool {
    matches!(
        cmd,
        SDK_IOCTL_CREATE_TABLE
            | SDK_IOCTL_DESTROY_TABLE
            | SDK_IOCTL_LOAD
            | SDK_IOCTL_ACCUM
            | SDK_IOCTL_READ
            | SDK_IOCTL_SWAP
            | SDK_IOCTL_GET_INFO
    )
}

/// Runs one of the original's ioctls (`handles(cmd)`) on the fd's tables.
pub(crate) fn dispatch(tables: &Mutex<Tables>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        SDK_IOCTL_CREATE_TABLE => create(tables, arg),
        SDK_IOCTL_DESTROY_TABLE => destroy(tables, arg),
        SDK_IOCTL_LOAD | SDK_IOCTL_ACCUM | SDK_IOCTL_READ => context_op(tables, file, cmd, arg),
        SDK_IOCTL_SWAP => swap(tables, file, arg),
        SDK_IOCTL_GET_INFO => info(tables, arg),
        _ => Err(ENOTTY),
    }
}

fn user(arg: usize, len: usize) -> UserSlice {
    UserSlice::new(UserPtr::from_addr(arg), len)
}

/// EACCES unless the fd's open mode allows `want` (`ACCESS_*`), as atomik's own slot ops.
fn check_mode(file: &File, want: u32) -> Result {
    if want & !access::open_mode(file) != 0 {
        Err(EACCES)
    } else {
        Ok(())
    }
}

fn create(tables: &Mutex<Tables>, arg: usize) -> Result<isize> {
    let (mut r, mut w) = user(arg, size_of::<SdkCreateTable>()).reader_writer();
    let mut req: SdkCreateTable = r.read()?;
    if req.num_contexts == 0 || req.num_contexts > SDK_MAX_CONTEXTS {
        return Err(EINVAL);
    }
    // The reply must be writable before a table exists (the kernel reads the id back out).
    user(arg, size_of::<SdkCreateTable>()).writer().write(&req)?;
    // Allocated without the lock: up to 1 MiB, zeroed (every context starts at state 0).
    let words = KVVec::from_elem(0u64, 2 * req.num_contexts as usize, GFP_KERNEL_ACCOUNT)?;
    let id = {
        let mut t = tables.lock();
        let k = match t.list.iter().position(Option::is_none) {
            Some(k) => k,
            None if t.list.len() < SDK_MAX_TABLES as usize => {
                t.list.push(None, GFP_KERNEL_ACCOUNT)?;
                t.list.len() - 1
            }
            None => return Err(ENOSPC),
        };
        t.list[k] = Some(Table { words });
        k as u32 + 1
    };
    req.table_id = id;
    if let Err(e) = w.write(&req) {
        // Unmapped by another thread since the check: no table is left behind.
        let removed = tables.lock().list.get_mut(id as usize - 1).and_then(Option::take);
        drop(removed);
        return Err(e);
    }
    Ok(0)
}

fn destroy(tables: &Mutex<Tables>, arg: usize) -> Result<isize> {
    let req: SdkTableId = user(arg, size_of::<SdkTableId>()).reader().read()?;
    let removed = {
        let mut t = tables.lock();
        let k = usize::try_from(req.table_id).ok().and_then(|i| i.checked_sub(1)).ok_or(EINVAL)?;
        t.list.get_mut(k).and_then(Option::take).ok_or(EINVAL)?
    };
    // Freed outside the lock.
    drop(removed);
    Ok(0)
}

fn context_op(tables: &Mutex<Tables>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
    let (mut r, mut w) = user(arg, size_of::<SdkContextOp>()).reader_writer();
    let mut req: SdkContextOp = r.read()?;
    check_mode(file, if cmd == SDK_IOCTL_READ { ACCESS_READ } else { ACCESS_WRITE })?;
    if cmd == SDK_IOCTL_READ {
        // Counted when done: the reply must be writable first.
        user(arg, size_of::<SdkContextOp>()).writer().write(&req)?;
    }
    {
        let mut t = tables.lock();
        let (table, i) = t.context(req.table_id, req.addr)?;
        match cmd {
            SDK_IOCTL_LOAD => {
                table.words[i] = req.value;
                table.words[i + 1] = 0;
            }
            SDK_IOCTL_ACCUM => table.words[i + 1] ^= req.value,
            _ => req.value = table.words[i] ^ table.words[i + 1],
        }
        t.ops_total = t.ops_total.wrapping_add(1);
    }
    if cmd == SDK_IOCTL_READ {
        w.write(&req)?;
    }
    Ok(0)
}

fn swap(tables: &Mutex<Tables>, file: &File, arg: usize) -> Result<isize> {
    let (mut r, mut w) = user(arg, size_of::<SdkSwap>()).reader_writer();
    let mut req: SdkSwap = r.read()?;
    check_mode(file, ACCESS_READ | ACCESS_WRITE)?;
    // SWAP changes the context and returns what it took: the reply must be writable first.
    user(arg, size_of::<SdkSwap>()).writer().write(&req)?;
    {
        let mut t = tables.lock();
        let (table, i) = t.context(req.table_id, req.addr)?;
        let state = table.words[i] ^ table.words[i + 1];
        table.words[i] = if req.new_reference == 0 { state } else { req.new_reference };
        table.words[i + 1] = 0;
        req.old_state = state;
        t.ops_total = t.ops_total.wrapping_add(1);
    }
    w.write(&req)?;
    Ok(0)
}

fn info(tables: &Mutex<Tables>, arg: usize) -> Result<isize> {
    let out = SdkInfo {
        version: SDK_VERSION,
        backend: SDK_BACKEND_SOFTWARE,
        ops_total: tables.lock().ops_total,
        ..SdkInfo::default()
    };
    user(arg, size_of::<SdkInfo>()).writer().write(&out)?;
    Ok(0)
}
