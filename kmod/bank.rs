// SPDX-License-Identifier: GPL-2.0
//! One bank: kernel pages laid out as `abi::BankLayout`, and the slot ops on them.
//!
//! The pages are mapped into userspace as they are (see `mmap.rs`), so every word is accessed
//! with atomic instructions and the writers follow the per-slot seqlock protocol documented in
//! `abi.rs`, exactly as libatomik does in userspace. The kernel's own `Atomic<T>` has no
//! fetch-xor, and these words are shared with userspace code using `core` atomics, so `core`
//! atomics are used here too.

use crate::{abi, access::Owner, stats::Stats};
use core::sync::atomic::{fence, AtomicU64, Ordering};
use kernel::{page::Page, prelude::*, time::Delta};

#[cfg(CONFIG_HIGHMEM)]
compile_error!("atomik keeps bank pages permanently addressed: HIGHMEM kernels are unsupported");

const PAGE: u64 = abi::PAGE_SIZE;

/// Spins between two checks for a pending signal (and a short sleep) while a slot's seqlock
/// is held by someone else.
const SPINS_BEFORE_YIELD: u32 = 1024;

/// A named bank.
///
/// # Invariants
///
/// `pages.len() == addrs.len() == layout.total_size / PAGE_SIZE`, `addrs[k]` is the permanent
/// kernel address of `pages[k]` (no HIGHMEM), and page 0 holds a header written by
/// [`abi::BankLayout::header`].
pub(crate) struct Bank {
    pub(crate) name: [u8; abi::NAME_LEN],
    pub(crate) owner: Owner,
    pub(crate) op: u32,
    pub(crate) layout: abi::BankLayout,
    pages: KVec<Page>,
    addrs: KVec<usize>,
    pub(crate) stats: Stats,
}

impl Bank {
    /// Allocates and zeroes the pages of a bank and writes its header. The caller has checked
    /// `layout.total_size` against the limits.
    pub(crate) fn new(
        name: [u8; abi::NAME_LEN],
        owner: Owner,
        op: u32,
        layout: abi::BankLayout,
    ) -> Result<Bank> {
        let count = usize::try_from(layout.total_size / PAGE).map_err(|_| ENOMEM)?;
        let mut pages = KVec::with_capacity(count, GFP_KERNEL)?;
        let mut addrs = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
            // SAFETY: `page` is a valid page we own. Without HIGHMEM (checked above),
            // kmap_local_page is page_address(): a permanent mapping, no unmap needed.
            let addr = unsafe { kernel::bindings::kmap_local_page(page.as_ptr()) } as usize;
            pages.push(page, GFP_KERNEL)?;
            addrs.push(addr, GFP_KERNEL)?;
        }
        let header = layout.header(op, name);
        // SAFETY: page 0 is a zeroed, page-aligned page that nobody else can see yet, and
        // `BankHeader` is exactly one page (asserted in abi.rs).
        unsafe { core::ptr::write(addrs[0] as *mut abi::BankHeader, header) };
        // INVARIANT: one page and its address per page of the layout, header written.
        Ok(Bank {
            name,
            owner,
            op,
            layout,
            pages,
            addrs,
            stats: Stats::default(),
        })
    }

    pub(crate) fn pages(&self) -> &[Page] {
        &self.pages
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.layout.total_size
    }

    pub(crate) fn check_slot(&self, slot: u64) -> Result {
        if slot < self.layout.slots {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// The word of `slot` in the array at byte offset `array`. `slot` must be checked.
    fn word(&self, array: u64, slot: u64) -> &AtomicU64 {
        let byte = array + slot * 8;
        let page = (byte / PAGE) as usize;
        let within = (byte % PAGE) as usize;
        // SAFETY: `slot < slots` and `array` is an offset of the layout, so the word lies inside
        // page `page` of the bank (type invariant); the address is 8-byte aligned, the page lives
        // as long as `self`, and all accesses to it, here and in userspace, are atomic.
        unsafe { AtomicU64::from_ptr((self.addrs[page] + within) as *mut u64) }
    }

    fn combine(&self, a: u64, b: u64) -> u64 {
        if self.op == abi::OP_ADD {
            a.wrapping_add(b)
        } else {
            a ^ b
        }
    }

    fn inverse(&self, a: u64) -> u64 {
        if self.op == abi::OP_ADD {
            a.wrapping_neg()
        } else {
            a
        }
    }

    /// The not yet folded contents of the writer-private shards: `Σ shard_k ∘ base_k⁻¹`.
    /// With `rebase`, also marks them folded (`base_k = shard_k`); only a seqlock writer may.
    fn fold_shards(&self, slot: u64, rebase: bool) -> u64 {
        let mut f = 0;
        for k in 0..u64::from(self.layout.shards) {
            let stride = k * self.layout.shard_stride;
            let shard = self.word(self.layout.shard_off + stride, slot).load(Ordering::Acquire);
            let base = self.word(self.layout.base_off + stride, slot);
            f = self.combine(f, self.combine(shard, self.inverse(base.load(Ordering::Relaxed))));
            if rebase {
                base.store(shard, Ordering::Relaxed);
            }
        }
        f
    }

    /// Waits a little for a seqlock holder; fails with EINTR when a signal is pending so that a
    /// slot left locked by a killed userspace writer cannot trap the caller in the kernel.
    fn backoff(spins: &mut u32) -> Result {
        *spins = spins.wrapping_add(1);
        if *spins % SPINS_BEFORE_YIELD != 0 {
            core::hint::spin_loop();
            return Ok(());
        }
        if kernel::current!().signal_pending() {
            return Err(EINTR);
        }
        kernel::time::delay::fsleep(Delta::from_micros(1));
        Ok(())
    }

    /// Runs `f` as the seqlock writer of `slot`.
    fn write_locked<R>(&self, slot: u64, f: impl FnOnce() -> R) -> Result<R> {
        let seq = self.word(self.layout.seq_off, slot);
        let mut spins = 0;
        let s = loop {
            let s = seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && seq
                    .compare_exchange_weak(s, s.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Orders the odd sequence before the data stores that follow (as libatomik does).
                fence(Ordering::Release);
                break s;
            }
            Self::backoff(&mut spins)?;
        };
        let r = f();
        seq.store(s.wrapping_add(2), Ordering::Release);
        Ok(r)
    }

    /// LOAD: `ref = v`, `acc = identity`.
    pub(crate) fn load(&self, slot: u64, v: u64) -> Result {
        self.write_locked(slot, || {
            self.word(self.layout.ref_off, slot).store(v, Ordering::Relaxed);
            self.word(self.layout.acc_off, slot).swap(0, Ordering::AcqRel);
            // Deltas already in the shards are discarded by the LOAD too.
            self.fold_shards(slot, true);
        })
    }

    /// ACCUM: one atomic read-modify-write of the accumulator; wait-free.
    pub(crate) fn accum(&self, slot: u64, d: u64) {
        let acc = self.word(self.layout.acc_off, slot);
        if self.op == abi::OP_ADD {
            acc.fetch_add(d, Ordering::AcqRel);
        } else {
            acc.fetch_xor(d, Ordering::AcqRel);
        }
    }

    /// READ: `ref ∘ acc ∘ shards`, retried until no writer ran in between.
    pub(crate) fn read(&self, slot: u64) -> Result<u64> {
        let seq = self.word(self.layout.seq_off, slot);
        let mut spins = 0;
        loop {
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let r = self.word(self.layout.ref_off, slot).load(Ordering::Relaxed);
                let a = self.word(self.layout.acc_off, slot).load(Ordering::Relaxed);
                let f = self.fold_shards(slot, false);
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 {
                    return Ok(self.combine(self.combine(r, a), f));
                }
            }
            Self::backoff(&mut spins)?;
        }
    }

    /// SWAP: the current state becomes the reference (returned), the accumulator is reset.
    pub(crate) fn swap(&self, slot: u64) -> Result<u64> {
        self.write_locked(slot, || {
            let a = self.word(self.layout.acc_off, slot).swap(0, Ordering::AcqRel);
            let f = self.fold_shards(slot, true);
            let r = self.word(self.layout.ref_off, slot);
            let new = self.combine(self.combine(r.load(Ordering::Relaxed), a), f);
            r.store(new, Ordering::Relaxed);
            new
        })
    }

    /// Applies one op of `kind` (`abi::KIND_*`, already validated) and counts it.
    pub(crate) fn apply(&self, kind: u32, slot: u64, value: u64) -> Result<u64> {
        self.check_slot(slot)?;
        let out = match kind {
            abi::KIND_LOAD => self.load(slot, value).map(|()| value)?,
            abi::KIND_ACCUM => {
                self.accum(slot, value);
                value
            }
            abi::KIND_READ => self.read(slot)?,
            abi::KIND_SWAP => self.swap(slot)?,
            _ => return Err(EINVAL),
        };
        self.stats.count(kind);
        Ok(out)
    }
}
