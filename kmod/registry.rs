// SPDX-License-Identifier: GPL-2.0
//! The named banks of the system, with the limits that bound them.
//!
//! Banks outlive the files that created or opened them until BANK_DESTROY. Files that are
//! attached to a bank (and their mappings) hold an `Arc`, so a destroyed bank's pages stay valid
//! until the last of them is gone; the memory limit counts a bank until it is destroyed.

use crate::{abi, access::Owner, bank::Bank, limits::Limits};
use kernel::{alloc::KVVec, prelude::*, sync::Arc};

/// All banks and the memory they hold.
pub(crate) struct Banks {
    list: KVec<Arc<Bank>>,
    /// Banks being created (their pages are allocated without the lock held): their names are
    /// taken and they count against their owner's bank limit already.
    pending: KVec<Pending>,
    used_bytes: u64,
}

struct Pending {
    name: [u8; abi::NAME_LEN],
    uid: kernel::task::Kuid,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in module init (`init`) before the device is registered.
    unsafe(uninit) static BANKS: Mutex<Banks> =
        Banks { list: KVec::new(), pending: KVec::new(), used_bytes: 0 };
}

impl Banks {
    fn name_taken(&self, name: &[u8]) -> bool {
        self.list.iter().any(|b| same_name(&b.name, name)) || self.pending.iter().any(|p| same_name(&p.name, name))
    }

    /// Ends a creation: forgets the pending entry, and releases its memory unless it succeeded.
    fn finish_pending(&mut self, name: &[u8], bytes: u64, created: bool) {
        if let Some(i) = self.pending.iter().position(|p| same_name(&p.name, name)) {
            let _ = self.pending.remove(i);
        }
        if !created {
            self.used_bytes -= bytes;
        }
    }
}

pub(crate) fn init() {
    // SAFETY: called once, from module init, before anything else uses `BANKS`.
    unsafe { BANKS.init() };
}

/// Drops every bank (module unload: no file is open any more).
pub(crate) fn clear() {
    let mut banks = BANKS.lock();
    banks.list.clear();
    banks.pending.clear();
    banks.used_bytes = 0;
}

/// Checks a bank name: `[A-Za-z0-9._-]{1,63}`, NUL-terminated, not starting with `.`.
pub(crate) fn check_name(name: &[u8; abi::NAME_LEN]) -> Result<&[u8]> {
    let len = name.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    let name = &name[..len];
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if name.is_empty() || name[0] == b'.' || !name.iter().all(ok) {
        return Err(EINVAL);
    }
    Ok(name)
}

fn same_name(a: &[u8; abi::NAME_LEN], b: &[u8]) -> bool {
    a.starts_with(b) && a.get(b.len()) == Some(&0)
}

/// Creates a bank. EEXIST name taken, ENOSPC bank limit of the uid, ENOMEM slot or memory limit.
pub(crate) fn create(
    raw_name: [u8; abi::NAME_LEN],
    owner: Owner,
    op: u32,
    layout: abi::BankLayout,
) -> Result {
    let name = check_name(&raw_name)?;
    let limits = Limits::get();
    if layout.slots > limits.slots {
        return Err(ENOMEM);
    }
    // Reserve the name, the owner's bank count and the memory first, allocate without the
    // lock held, then publish.
    {
        let mut banks = BANKS.lock();
        if banks.name_taken(name) {
            return Err(EEXIST);
        }
        let owned = banks.list.iter().filter(|b| b.owner.uid == owner.uid).count()
            + banks.pending.iter().filter(|p| p.uid == owner.uid).count();
        if owned >= limits.banks_per_user as usize {
            return Err(ENOSPC);
        }
        let used = banks.used_bytes.checked_add(layout.total_size).ok_or(ENOMEM)?;
        if used > limits.total_bytes {
            return Err(ENOMEM);
        }
        banks.pending.push(Pending { name: raw_name, uid: owner.uid }, GFP_KERNEL)?;
        banks.used_bytes = used;
    }
    let bank = Bank::new(raw_name, owner, op, layout).and_then(|b| Ok(Arc::new(b, GFP_KERNEL)?));
    let mut banks = BANKS.lock();
    let published = match bank {
        Ok(bank) => banks.list.push(bank, GFP_KERNEL).map_err(|e| Error::from(e)),
        Err(e) => Err(e),
    };
    banks.finish_pending(name, layout.total_size, published.is_ok());
    published
}

/// Finds a bank by name. ENOENT when there is none.
pub(crate) fn find(raw_name: &[u8; abi::NAME_LEN]) -> Result<Arc<Bank>> {
    let name = check_name(raw_name)?;
    let banks = BANKS.lock();
    banks.list.iter().find(|b| same_name(&b.name, name)).cloned().ok_or(ENOENT)
}

/// Removes a bank from the registry after `allowed` accepted it.
pub(crate) fn destroy(raw_name: &[u8; abi::NAME_LEN], allowed: impl FnOnce(&Bank) -> Result) -> Result {
    let name = check_name(raw_name)?;
    let removed = {
        let mut banks = BANKS.lock();
        let idx = banks.list.iter().position(|b| same_name(&b.name, name)).ok_or(ENOENT)?;
        allowed(&banks.list[idx])?;
        let bank = banks.list.remove(idx)?;
        banks.used_bytes -= bank.bytes();
        bank
    };
    // The last reference may free the pages: outside the lock.
    drop(removed);
    Ok(())
}

/// Bank count and bytes in use, for GET_INFO.
pub(crate) fn usage() -> (u32, u64) {
    let banks = BANKS.lock();
    (banks.list.len() as u32, banks.used_bytes)
}

/// Describes up to `max` banks; returns them and how many exist.
pub(crate) fn list(max: usize) -> Result<(KVVec<abi::BankListEntry>, u32)> {
    // Allocate before taking the lock (the count may change meanwhile: cut at capacity).
    let mut out = KVVec::with_capacity(max.min(BANKS.lock().list.len()), GFP_KERNEL)?;
    let banks = BANKS.lock();
    for bank in banks.list.iter().take(max.min(out.capacity())) {
        let (uid, gid) = bank.owner.ids();
        out.push_within_capacity(abi::BankListEntry {
            name: bank.name,
            slots: bank.layout.slots,
            bytes: bank.bytes(),
            op: bank.op,
            mode: bank.owner.mode,
            uid,
            gid,
            shards: bank.layout.shards,
            reserved: 0,
        })
        .map_err(|_| ENOMEM)?;
    }
    Ok((out, banks.list.len() as u32))
}
