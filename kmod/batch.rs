// SPDX-License-Identifier: GPL-2.0
//! BATCH: many slot ops with one copy in and one copy out.

use crate::{
    abi::{Batch, BatchEntry, BATCH_MAX, KIND_SWAP_SET},
    device::Attachment,
    ioctl::check_access,
};
use core::mem::size_of;
use kernel::{
    alloc::KVVec,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

const ENTRY: usize = size_of::<BatchEntry>();

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// Field offsets inside one `BatchEntry` (asserted in abi.rs: slot at 8, size 24).
const KIND: usize = 0;
const STATUS: usize = 4;
const SLOT: usize = 8;
const VALUE: usize = 16;

/// Checks one entry: the errno it would fail with, if any.
fn check(att: &Attachment, e: &[u8]) -> Result {
    let kind = u32_at(e, KIND);
    if kind > KIND_SWAP_SET {
        return Err(EINVAL);
    }
    att.bank.check_slot(u64_at(e, SLOT))?;
    check_access(att.access, kind)
}

/// Validates every entry before applying any (EINVAL/EACCES with the culprits' `status` set and
/// `done == 0`), then applies them in order. E2BIG above `BATCH_MAX`.
///
/// The entries and the request are written back once before anything is applied (statuses
/// set, `done == 0`): when either is not writable the BATCH fails with EFAULT having applied
/// nothing, so a caller never retries deltas that were applied. The final write-back can then
/// only fail if another thread unmaps or write-protects the buffers meanwhile.
pub(crate) fn run(att: &Attachment, user: UserSlice, arg: usize) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: Batch = r.read()?;
    if req.count > BATCH_MAX {
        return Err(E2BIG);
    }
    let len = req.count as usize * ENTRY;
    let entries = usize::try_from(req.entries).map_err(|_| EFAULT)?;
    let mut buf = KVVec::new();
    UserSlice::new(UserPtr::from_addr(entries), len).read_all(&mut buf, GFP_KERNEL)?;
    if buf.len() != len {
        return Err(EFAULT);
    }

    let mut first_err = None;
    for e in buf.chunks_exact_mut(ENTRY) {
        let status = match check(att, e) {
            Ok(()) => 0,
            Err(err) => {
                first_err.get_or_insert(err);
                err.to_errno()
            }
        };
        e[STATUS..STATUS + 4].copy_from_slice(&status.to_ne_bytes());
    }
    UserSlice::new(UserPtr::from_addr(entries), len).writer().write_slice(&buf)?;
    req.done = 0;
    UserSlice::new(UserPtr::from_addr(arg), size_of::<Batch>()).writer().write(&req)?;

    let mut done = 0u32;
    if first_err.is_none() {
        att.bank.stats.count_batch();
        for e in buf.chunks_exact_mut(ENTRY) {
            match att.bank.apply(u32_at(e, KIND), u64_at(e, SLOT), u64_at(e, VALUE)) {
                Ok(v) => e[VALUE..VALUE + 8].copy_from_slice(&v.to_ne_bytes()),
                Err(err) => {
                    // Interrupted while waiting for a slot: report what was applied.
                    e[STATUS..STATUS + 4].copy_from_slice(&err.to_errno().to_ne_bytes());
                    first_err = Some(err);
                    break;
                }
            }
            done += 1;
        }
    }

    UserSlice::new(UserPtr::from_addr(entries), len).writer().write_slice(&buf)?;
    req.done = done;
    w.write(&req)?;
    match first_err {
        Some(err) => Err(err),
        None => Ok(0),
    }
}
