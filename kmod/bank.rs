// SPDX-License-Identifier: GPL-2.0
//! One bank: kernel pages laid out as `abi::BankLayout`, and the slot ops on them.
//!
//! The pages are mapped into userspace as they are (see `mmap.rs`), so every word is accessed
//! with atomic instructions and the writers follow the per-slot seqlock protocol documented in
//! `abi.rs`, exactly as libatomik does in userspace. The kernel's own `Atomic<T>` has no
//! fetch-xor, and these words are shared with userspace code using `core` atomics, so `core`
//! atomics are used here too.
//!
//! Userspace can write every word of a writable mapping, so nothing read from the pages is
//! trusted: a sequence word may be left odd for ever (the waits below sleep and end with
//! ETIMEDOUT), and any value is a valid reference, accumulator or card.

use crate::{abi, access::Owner, registry::Charge, stats::Stats};
#[cfg(CONFIG_PCI)]
use crate::pci::FpgaSlots;
use core::sync::atomic::{fence, AtomicU64, Ordering};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    bindings,
    page::Page,
    prelude::*,
    time::{Delta, Instant, Monotonic},
};

#[cfg(CONFIG_HIGHMEM)]
compile_error!("atomik keeps bank pages permanently addressed: HIGHMEM kernels are unsupported");
// Without HIGHMEM, kmap_local_page() is page_address() unless this debug option forces real
// temporary mappings (only 32-bit x86 offers it); the addresses kept below must be permanent.
#[cfg(CONFIG_DEBUG_KMAP_LOCAL_FORCE_MAP)]
compile_error!("atomik keeps bank pages permanently addressed: DEBUG_KMAP_LOCAL_FORCE_MAP is unsupported");

const PAGE: u64 = abi::PAGE_SIZE;

/// What [`Bank::on_fpga`] returns: the FPGA storage, or (without CONFIG_PCI) a type with no
/// value, so that callers need no cfg of their own.
#[cfg(CONFIG_PCI)]
pub(crate) type FpgaSlotsRef = FpgaSlots;
#[cfg(not(CONFIG_PCI))]
pub(crate) enum FpgaSlotsRef {}
#[cfg(not(CONFIG_PCI))]
impl FpgaSlotsRef {
    pub(crate) fn map_bytes(&self) -> u64 {
        match *self {}
    }
    pub(crate) fn apply(&self, _: u32, _: u64, _: u64) -> Result<u64> {
        match *self {}
    }
    pub(crate) fn present(&self) -> bool {
        match *self {}
    }
    pub(crate) fn is_clean(&self, _: u64) -> Result<bool> {
        match *self {}
    }
    pub(crate) fn map_window(&self, _: &kernel::mm::virt::VmaNew, _: u64, _: u64) -> Result {
        match *self {}
    }
}

/// Busy spins while a slot's seqlock is held, before the waiter starts sleeping: a writer's
/// critical section is a handful of instructions, so a lock held longer than this is held by
/// a descheduled, stopped or dead userspace writer (or a malicious one).
const SPINS: u32 = 256;

/// How long an op waits for a slot's seqlock in all (module parameter `slot_wait_ms`).
fn wait_limit() -> Delta {
    let ms = (*crate::module_parameters::slot_wait_ms.value_ref()).clamp(1, 600_000);
    Delta::from_millis(i64::from(ms))
}

/// The wait of one op for one slot: bounded spins, then sleeps of one jiffy (interruptible),
/// then ETIMEDOUT at the deadline. EINTR as soon as a signal is pending while sleeping.
struct Wait {
    spins: u32,
    since: Option<Instant<Monotonic>>,
}

impl Wait {
    fn new() -> Wait {
        Wait { spins: 0, since: None }
    }

    /// Called each time the slot is found locked (or changed under a reader).
    fn pause(&mut self) -> Result {
        if self.spins < SPINS {
            self.spins += 1;
            core::hint::spin_loop();
            return Ok(());
        }
        let since = *self.since.get_or_insert_with(Instant::<Monotonic>::now);
        if kernel::current!().signal_pending() {
            return Err(EINTR);
        }
        if since.elapsed() >= wait_limit() {
            return Err(ETIMEDOUT);
        }
        // SAFETY: process context (an ioctl), no spinlock held, nothing borrowed across the
        // sleep that another thread could invalidate (the bank is kept alive by the caller's
        // reference). The state is set to TASK_INTERRUPTIBLE inside; a signal ends it early.
        unsafe { bindings::schedule_timeout_interruptible(1) };
        Ok(())
    }
}

/// Lets other tasks run during a long loop (cond_resched()).
fn resched() {
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    // SAFETY: called in process context with no lock held, where rescheduling is allowed.
    unsafe {
        bindings::__cond_resched()
    };
}

/// A named bank.
///
/// # Invariants
///
/// In memory (`fpga` is `None`): `pages.len() == addrs.len() == layout.total_size / PAGE_SIZE`,
/// `addrs[k]` is the permanent kernel address of `pages[k]` (no HIGHMEM), and page 0 holds a
/// header describing `layout`. On the FPGA: no pages, and every op goes to `fpga`.
pub(crate) struct Bank {
    pub(crate) name: [u8; abi::NAME_LEN],
    pub(crate) owner: Owner,
    pub(crate) op: u32,
    pub(crate) layout: abi::BankLayout,
    pages: KVVec<Page>,
    addrs: KVVec<usize>,
    /// The bank's slots on the FPGA (BANK_CREATE_FPGA).
    #[cfg(CONFIG_PCI)]
    pub(crate) fpga: Option<FpgaSlots>,
    pub(crate) stats: Stats,
    /// The bank's share of the memory and bank-count limits, returned when the last reference
    /// to the bank (the registry's, an attached fd's, hence a mapping's) is dropped.
    _charge: Charge,
}

impl Bank {
    /// A bank: in memory, its pages allocated and zeroed (charged to the caller's memory
    /// cgroup) and its header written; with `on_fpga`, its slots on the bound FPGA (see
    /// `pci.rs`: ENODEV without a device, ENOSPC when it has no free run of `layout.slots`).
    /// `charge` covers the bank in the registry's limits.
    pub(crate) fn new(
        name: [u8; abi::NAME_LEN],
        owner: Owner,
        op: u32,
        layout: abi::BankLayout,
        charge: Charge,
        on_fpga: bool,
    ) -> Result<Bank> {
        #[cfg(CONFIG_PCI)]
        let (fpga, (pages, addrs)) = if on_fpga {
            (Some(FpgaSlots::new(layout.slots, op)?), (KVVec::new(), KVVec::new()))
        } else {
            (None, alloc_pages(&layout, op, &name)?)
        };
        #[cfg(not(CONFIG_PCI))]
        let (pages, addrs) = if on_fpga { return Err(ENODEV) } else { alloc_pages(&layout, op, &name)? };
        // INVARIANT: one page and its address per page of the layout, header written; or on
        // the FPGA with no pages.
        Ok(Bank {
            name,
            owner,
            op,
            layout,
            pages,
            addrs,
            #[cfg(CONFIG_PCI)]
            fpga,
            stats: Stats::default(),
            _charge: charge,
        })
    }

    /// The bank's slots on the FPGA, if it lives there.
    pub(crate) fn on_fpga(&self) -> Option<&FpgaSlotsRef> {
        #[cfg(CONFIG_PCI)]
        return self.fpga.as_ref();
        #[cfg(not(CONFIG_PCI))]
        return None;
    }

    pub(crate) fn pages(&self) -> &[Page] {
        &self.pages
    }

    /// Bytes a process may map: the whole layout in memory, the bank's pages of the ACCUM
    /// window on the FPGA.
    pub(crate) fn bytes(&self) -> u64 {
        match self.on_fpga() {
            Some(f) => f.map_bytes(),
            None => self.layout.total_size,
        }
    }

    pub(crate) fn check_slot(&self, slot: u64) -> Result {
        if slot < self.layout.slots {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// The word at byte offset `byte` of the bank, which must be 8-aligned and inside it.
    fn word_at(&self, byte: u64) -> &AtomicU64 {
        let page = (byte / PAGE) as usize;
        let within = (byte % PAGE) as usize;
        // SAFETY: the callers pass an 8-aligned offset inside the layout, so the word lies
        // inside page `page` of the bank (type invariant); the page lives as long as `self`,
        // and all accesses to it, here and in userspace, are atomic.
        unsafe { AtomicU64::from_ptr((self.addrs[page] + within) as *mut u64) }
    }

    /// The word of `slot` in the array at byte offset `array`. `slot` must be checked.
    fn word(&self, array: u64, slot: u64) -> &AtomicU64 {
        self.word_at(array + slot * 8)
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

    /// Runs `f` as the seqlock writer of `slot`, as holder 0 (the kernel): an even word `s` is
    /// locked as `(s + 1) mod 2^32` (high half 0) and released as `(s + 2) mod 2^32`. Any odd
    /// word is a lock held by someone (a userspace holder has its pid in the high half).
    fn write_locked<R>(&self, slot: u64, f: impl FnOnce() -> R) -> Result<R> {
        let seq = self.word(self.layout.seq_off, slot);
        let mut wait = Wait::new();
        let s = loop {
            let s = seq.load(Ordering::Relaxed);
            if s & 1 == 0 {
                let locked = s.wrapping_add(1) & abi::SEQ_COUNTER_MASK;
                if seq.compare_exchange_weak(s, locked, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    // Orders the locked sequence before the data stores that follow (as
                    // libatomik does).
                    fence(Ordering::Release);
                    break s;
                }
            }
            wait.pause()?;
        };
        let r = f();
        seq.store(s.wrapping_add(2) & abi::SEQ_COUNTER_MASK, Ordering::Release);
        Ok(r)
    }

    /// LOAD: `ref = v`, `acc = identity`.
    pub(crate) fn load(&self, slot: u64, v: u64) -> Result {
        self.write_locked(slot, || {
            self.word(self.layout.acc_off, slot).swap(0, Ordering::AcqRel);
            // Deltas already in the shards are discarded by the LOAD too.
            self.fold_shards(slot, true);
            self.word(self.layout.ref_off, slot).store(v, Ordering::Relaxed);
        })
    }

    /// ACCUM: one atomic read-modify-write of the accumulator, then the slot's dirty card is
    /// marked when it is clear (ABI v2: a sync daemon finds the change by the card). Wait-free.
    pub(crate) fn accum(&self, slot: u64, d: u64) {
        let acc = self.word(self.layout.acc_off, slot);
        if self.op == abi::OP_ADD {
            acc.fetch_add(d, Ordering::SeqCst);
        } else {
            acc.fetch_xor(d, Ordering::SeqCst);
        }
        let card = self.word_at(self.layout.card_off + (slot / abi::CARD_SLOTS) * 8);
        if card.load(Ordering::SeqCst) == 0 {
            card.store(1, Ordering::SeqCst);
        }
    }

    /// The state `ref ∘ acc ∘ shards` and whether `acc ∘ shards` is the identity (0 for both
    /// operators), retried until no writer ran in between.
    fn read_parts(&self, slot: u64) -> Result<(u64, bool)> {
        let seq = self.word(self.layout.seq_off, slot);
        let mut wait = Wait::new();
        loop {
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let r = self.word(self.layout.ref_off, slot).load(Ordering::Relaxed);
                let a = self.word(self.layout.acc_off, slot).load(Ordering::Acquire);
                let pending = self.combine(a, self.fold_shards(slot, false));
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 {
                    return Ok((self.combine(r, pending), pending == 0));
                }
            }
            wait.pause()?;
        }
    }

    /// READ: `ref ∘ acc ∘ shards`.
    pub(crate) fn read(&self, slot: u64) -> Result<u64> {
        self.read_parts(slot).map(|(state, _)| state)
    }

    /// IS_CLEAN: whether `acc ∘ shards` is the identity; on the FPGA, the slot's bit of the
    /// IDENT bitmap.
    pub(crate) fn is_clean(&self, slot: u64) -> Result<bool> {
        self.check_slot(slot)?;
        if let Some(f) = self.on_fpga() {
            return f.is_clean(slot);
        }
        self.read_parts(slot).map(|(_, clean)| clean)
    }

    /// SWAP: the current state becomes the reference (returned), the accumulator is reset.
    pub(crate) fn swap(&self, slot: u64) -> Result<u64> {
        self.swap_to(slot, None)
    }

    /// SWAP, then the reference becomes `reference` (SWAP_SET) when given. Returns the state
    /// before; every concurrent ACCUM lands exactly once: before the exchange of the
    /// accumulator (in the returned state) or after it (in the new accumulator).
    fn swap_to(&self, slot: u64, reference: Option<u64>) -> Result<u64> {
        self.write_locked(slot, || {
            let a = self.word(self.layout.acc_off, slot).swap(0, Ordering::AcqRel);
            let f = self.fold_shards(slot, true);
            let r = self.word(self.layout.ref_off, slot);
            let state = self.combine(self.combine(r.load(Ordering::Relaxed), a), f);
            r.store(reference.unwrap_or(state), Ordering::Relaxed);
            state
        })
    }

    /// Applies one op of `kind` (`abi::KIND_*`) and counts it.
    pub(crate) fn apply(&self, kind: u32, slot: u64, value: u64) -> Result<u64> {
        self.check_slot(slot)?;
        if let Some(f) = self.on_fpga() {
            let out = f.apply(kind, slot, value)?;
            self.stats.count(kind);
            return Ok(out);
        }
        let out = match kind {
            abi::KIND_LOAD => self.load(slot, value).map(|()| value)?,
            abi::KIND_ACCUM => {
                self.accum(slot, value);
                value
            }
            abi::KIND_READ => self.read(slot)?,
            abi::KIND_SWAP => self.swap(slot)?,
            abi::KIND_SWAP_SET => self.swap_to(slot, Some(value))?,
            _ => return Err(EINVAL),
        };
        self.stats.count(kind);
        Ok(out)
    }
}

/// The zeroed pages of a bank of `layout` and their permanent addresses, header written.
fn alloc_pages(layout: &abi::BankLayout, op: u32, name: &[u8; abi::NAME_LEN]) -> Result<(KVVec<Page>, KVVec<usize>)> {
    let count = usize::try_from(layout.total_size / PAGE).map_err(|_| ENOMEM)?;
    let mut pages = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
    let mut addrs = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
    for k in 0..count {
        let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        // SAFETY: `page` is a valid page we own. Without HIGHMEM (and without
        // DEBUG_KMAP_LOCAL_FORCE_MAP, both refused above), kmap_local_page() returns
        // page_address(), the page's permanent direct-map address, and needs no unmap.
        let addr = unsafe { bindings::kmap_local_page(page.as_ptr()) } as usize;
        pages.push_within_capacity(page).map_err(|_| ENOMEM)?;
        addrs.push_within_capacity(addr).map_err(|_| ENOMEM)?;
        if k % 1024 == 1023 {
            if kernel::current!().signal_pending() {
                return Err(EINTR);
            }
            resched();
        }
    }
    // SAFETY: page 0 is a zeroed, page-aligned page that nobody else can see yet, and
    // `BankHeader` is exactly one page (asserted in abi.rs).
    unsafe { write_header(addrs[0] as *mut abi::BankHeader, layout, op, name) };
    Ok((pages, addrs))
}

/// Writes the header of a bank of `layout` field by field into a zeroed page (the header is a
/// page: it is not built on the kernel stack).
///
/// # Safety
///
/// `h` points to a zeroed, page-aligned page that nothing else accesses.
unsafe fn write_header(h: *mut abi::BankHeader, layout: &abi::BankLayout, op: u32, name: &[u8; abi::NAME_LEN]) {
    use core::ptr::addr_of_mut;
    // SAFETY: `h` is valid for writes of a whole `BankHeader` (the caller's contract); every
    // field pointer is derived from it without creating references to the zeroed memory.
    unsafe {
        addr_of_mut!((*h).magic).write(abi::BANK_MAGIC);
        addr_of_mut!((*h).abi_version).write(abi::ABI_VERSION);
        addr_of_mut!((*h).header_size).write(abi::BANK_HEADER_SIZE as u32);
        addr_of_mut!((*h).slot_count).write(layout.slots);
        addr_of_mut!((*h).op).write(op);
        addr_of_mut!((*h).shard_count).write(layout.shards);
        addr_of_mut!((*h).total_size).write(layout.total_size);
        addr_of_mut!((*h).seq_off).write(layout.seq_off);
        addr_of_mut!((*h).ref_off).write(layout.ref_off);
        addr_of_mut!((*h).acc_off).write(layout.acc_off);
        addr_of_mut!((*h).shard_off).write(layout.shard_off);
        addr_of_mut!((*h).base_off).write(layout.base_off);
        addr_of_mut!((*h).shard_stride).write(layout.shard_stride);
        addr_of_mut!((*h).taken_off).write(layout.taken_off);
        addr_of_mut!((*h).card_off).write(layout.card_off);
        // origin, incarnation, shard_owner and the reserved fields stay zero.
        addr_of_mut!((*h).name).write(*name);
    }
}
