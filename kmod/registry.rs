// SPDX-License-Identifier: GPL-2.0
//! The named banks of the system, with the limits that bound them.
//!
//! Banks outlive the files that created or opened them until BANK_DESTROY. Files that are
//! attached to a bank hold an `Arc` (and a mapping holds its file), so a destroyed bank's pages
//! stay valid until the last of them is gone. The limits count a bank for as long as its pages
//! exist: from the start of BANK_CREATE until its last reference is dropped (each bank carries
//! a [`Charge`] that returns its share when the bank is freed), so destroying an attached bank
//! does not free its share of the limits.
//!
//! Names are scoped to the IPC namespace the creating fd was opened in, as System V IPC keys
//! are: each namespace has its own names, lists only its own banks, and cannot open, destroy
//! or count another's. A namespace nothing uses any more (no task, open namespace file or bind
//! mount) can never be entered again, so its banks are removed as if destroyed by the next
//! registry call (attached fds and mappings keep working and keep their charge). The limits
//! stay global: per uid (kuid) across namespaces, and in all.

use crate::{abi, access::Owner, bank::Bank, ipc_ns::IpcNs, limits::Limits};
use kernel::{alloc::KVVec, prelude::*, sync::Arc, task::Kuid};

/// All banks and the memory they hold.
pub(crate) struct Banks {
    list: KVec<Named>,
    /// Names of banks being created (their pages are allocated without the lock held), with
    /// their namespace's address (the creating fd holds a reference to it meanwhile).
    pending: KVec<(usize, [u8; abi::NAME_LEN])>,
    /// What each uid holds: banks that exist (named, being created, or destroyed but still
    /// referenced) and their bytes.
    users: KVec<UserUse>,
    used_bytes: u64,
}

/// A bank under its name in a namespace.
struct Named {
    ns: IpcNs,
    bank: Arc<Bank>,
}

struct UserUse {
    uid: Kuid,
    banks: u32,
    bytes: u64,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in module init (`init`) before the device is registered.
    unsafe(uninit) static BANKS: Mutex<Banks> =
        Banks { list: KVec::new(), pending: KVec::new(), users: KVec::new(), used_bytes: 0 };
}

/// One bank's share of the limits: `bytes` of memory and one bank of `uid`'s. Returned when
/// dropped, which takes the registry lock: never drop one (or a [`Bank`]) with it held.
pub(crate) struct Charge {
    uid: Kuid,
    bytes: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut banks = BANKS.lock();
        banks.used_bytes = banks.used_bytes.saturating_sub(self.bytes);
        if let Some(i) = banks.users.iter().position(|u| u.uid == self.uid) {
            let u = &mut banks.users[i];
            u.banks = u.banks.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(self.bytes);
            if u.banks == 0 {
                let _ = banks.users.remove(i);
            }
        }
    }
}

impl Banks {
    fn position(&self, ns: &IpcNs, name: &[u8]) -> Option<usize> {
        self.list.iter().position(|n| n.ns.is(ns) && same_name(&n.bank.name, name))
    }

    fn name_taken(&self, ns: &IpcNs, name: &[u8]) -> bool {
        self.position(ns, name).is_some() || self.pending.iter().any(|(k, p)| *k == ns.key() && same_name(p, name))
    }

    fn forget_pending(&mut self, ns: &IpcNs, name: &[u8]) {
        if let Some(i) = self.pending.iter().position(|(k, p)| *k == ns.key() && same_name(p, name)) {
            let _ = self.pending.remove(i);
        }
    }

    fn user(&self, uid: Kuid) -> Option<&UserUse> {
        self.users.iter().find(|u| u.uid == uid)
    }
}

pub(crate) fn init() {
    // SAFETY: called once, from module init, before anything else uses `BANKS`.
    unsafe { BANKS.init() };
}

/// Removes the banks of namespaces nothing uses any more (see the module doc), one at a time:
/// each is dropped after the lock is released, since dropping the last reference to a bank
/// returns its charge under the lock.
fn reap_unused_namespaces() {
    loop {
        let gone = {
            let mut banks = BANKS.lock();
            match banks.list.iter().position(|n| !n.ns.in_use()) {
                Some(i) => banks.list.remove(i),
                None => return,
            }
        };
        drop(gone);
    }
}

/// Drops every bank (module unload: no file is open any more).
pub(crate) fn clear() {
    let list = core::mem::take(&mut BANKS.lock().list);
    // Each bank returns its charge, taking the lock: outside it.
    drop(list);
}

/// Checks a bank name: `[A-Za-z0-9._-]{1,63}`, NUL-terminated, not starting with `.`. Returns
/// the name with every byte after the first NUL zeroed, and its length.
pub(crate) fn check_name(raw: &[u8; abi::NAME_LEN]) -> Result<([u8; abi::NAME_LEN], usize)> {
    let len = raw.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    let name = &raw[..len];
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if name.is_empty() || name[0] == b'.' || !name.iter().all(ok) {
        return Err(EINVAL);
    }
    let mut clean = [0u8; abi::NAME_LEN];
    clean[..len].copy_from_slice(name);
    Ok((clean, len))
}

fn same_name(a: &[u8; abi::NAME_LEN], b: &[u8]) -> bool {
    a.starts_with(b) && a.get(b.len()) == Some(&0)
}

/// Creates a bank. EEXIST name taken, ENOSPC bank limit of the uid, ENOMEM slot or memory
/// limit (in all, or the uid's unless `unlimited_user`), EINTR a signal while allocating.
/// With `on_fpga`, the bank's slots are on the FPGA (ENODEV none bound, ENOSPC it has no room)
/// and it takes no bank memory (it still counts as one of the uid's banks).
pub(crate) fn create(
    ns: &IpcNs,
    raw_name: [u8; abi::NAME_LEN],
    owner: Owner,
    op: u32,
    layout: abi::BankLayout,
    unlimited_user: bool,
    on_fpga: bool,
) -> Result {
    let (clean, len) = check_name(&raw_name)?;
    let name = &clean[..len];
    let limits = Limits::get();
    if layout.slots > limits.slots {
        return Err(ENOMEM);
    }
    let bytes = if on_fpga { 0 } else { layout.total_size };
    reap_unused_namespaces();
    // Reserve the name and charge the limits first (the bookkeeping vectors grow under the
    // lock, a mutex; the bank's pages are allocated without it), then publish.
    let charge = {
        let mut banks = BANKS.lock();
        if banks.name_taken(ns, name) {
            return Err(EEXIST);
        }
        let (owned, user_bytes) = banks.user(owner.uid).map_or((0, 0), |u| (u.banks, u.bytes));
        if owned >= limits.banks_per_user {
            return Err(ENOSPC);
        }
        let used = banks.used_bytes.checked_add(bytes).ok_or(ENOMEM)?;
        let user_used = user_bytes.checked_add(bytes).ok_or(ENOMEM)?;
        if used > limits.total_bytes || (!unlimited_user && user_used > limits.user_bytes) {
            return Err(ENOMEM);
        }
        banks.pending.reserve(1, GFP_KERNEL)?;
        if banks.user(owner.uid).is_none() {
            banks.users.push(UserUse { uid: owner.uid, banks: 0, bytes: 0 }, GFP_KERNEL)?;
        }
        banks.pending.push_within_capacity((ns.key(), clean)).map_err(|_| ENOMEM)?;
        let u = banks.users.iter_mut().find(|u| u.uid == owner.uid).ok_or(ENOMEM)?;
        u.banks += 1;
        u.bytes = user_used;
        banks.used_bytes = used;
        Charge { uid: owner.uid, bytes }
    };
    // On any error below the charge (alone, or inside the bank) is returned when dropped,
    // after the lock is released.
    let bank = Bank::new(clean, owner, op, layout, charge, on_fpga)
        .and_then(|b| Ok(Named { ns: ns.clone_ref(), bank: Arc::new(b, GFP_KERNEL)? }));
    let mut banks = BANKS.lock();
    banks.forget_pending(ns, name);
    let bank = match bank {
        Ok(bank) => bank,
        Err(e) => {
            drop(banks);
            return Err(e);
        }
    };
    if banks.list.reserve(1, GFP_KERNEL).is_err() {
        drop(banks);
        drop(bank);
        return Err(ENOMEM);
    }
    if let Err(back) = banks.list.push_within_capacity(bank) {
        drop(banks);
        drop(back);
        return Err(ENOMEM);
    }
    Ok(())
}

/// Finds a bank by name in `ns`. ENOENT when there is none.
pub(crate) fn find(ns: &IpcNs, raw_name: &[u8; abi::NAME_LEN]) -> Result<Arc<Bank>> {
    let (clean, len) = check_name(raw_name)?;
    reap_unused_namespaces();
    let banks = BANKS.lock();
    let i = banks.position(ns, &clean[..len]).ok_or(ENOENT)?;
    Ok(banks.list[i].bank.clone())
}

/// Removes a bank from the registry after `allowed` accepted it. Its charge stays until its
/// last reference (an attached fd, a mapping) is gone.
pub(crate) fn destroy(
    ns: &IpcNs,
    raw_name: &[u8; abi::NAME_LEN],
    allowed: impl FnOnce(&Bank) -> Result,
) -> Result {
    let (clean, len) = check_name(raw_name)?;
    reap_unused_namespaces();
    let removed = {
        let mut banks = BANKS.lock();
        let idx = banks.position(ns, &clean[..len]).ok_or(ENOENT)?;
        allowed(&banks.list[idx].bank)?;
        banks.list.remove(idx)?
    };
    // The last reference frees the pages and returns the charge (which takes the lock).
    drop(removed);
    Ok(())
}

/// Banks named in `ns`, and bytes in use in all namespaces (including destroyed banks still
/// referenced: what the limits count), for GET_INFO.
pub(crate) fn usage(ns: &IpcNs) -> (u32, u64) {
    reap_unused_namespaces();
    let banks = BANKS.lock();
    (banks.list.iter().filter(|n| n.ns.is(ns)).count() as u32, banks.used_bytes)
}

/// Describes up to `max` banks of `ns`; returns them and how many `ns` has.
pub(crate) fn list(ns: &IpcNs, max: usize) -> Result<(KVVec<abi::BankListEntry>, u32)> {
    reap_unused_namespaces();
    // Allocate before taking the lock (the count may change meanwhile: cut at capacity).
    let mut out = KVVec::with_capacity(max.min(BANKS.lock().list.len()), GFP_KERNEL)?;
    let banks = BANKS.lock();
    let mine = || banks.list.iter().filter(|n| n.ns.is(ns)).map(|n| &n.bank);
    for bank in mine().take(max.min(out.capacity())) {
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
    let count = mine().count() as u32;
    Ok((out, count))
}
