//! The shared bank layout in a mapping, and the concurrency protocol over it.
//!
//! Every backend that can map a bank (the userspace default and `/dev/atomik`) hands its
//! mapping to [`BankMemory`]; the protocol itself is documented in [`crate::abi`].

use std::hint::spin_loop;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::abi::{BankHeader, BankLayout, HeaderError, MAX_SHARDS, NAME_LEN};
use crate::error::{Error, Result};
use crate::Op;

/// Byte offset of `BankHeader::shard_owner`.
const SHARD_OWNER_OFF: u64 = std::mem::offset_of!(BankHeader, shard_owner) as u64;

/// A mapped bank: header validated, regions located.
///
/// # Invariants
/// `base` points to a live mapping of at least `layout.total_size` bytes, page aligned, held
/// alive by `map`; every region offset of `layout` lies inside it.
pub struct BankMemory {
    map: MmapRaw,
    base: *mut u8,
    layout: BankLayout,
    op: Op,
    writable: bool,
}

// SAFETY: all access to the mapping goes through atomics; the raw pointer is only a base
// address into a mapping this value owns.
unsafe impl Send for BankMemory {}
// SAFETY: as above: shared access is atomic by construction.
unsafe impl Sync for BankMemory {}

fn header_error(path: &Path, e: HeaderError) -> Error {
    let reason = match e {
        HeaderError::BadMagic => "bad magic (not an atomik bank)".to_owned(),
        HeaderError::Version(v) => {
            format!("ABI version {v}, this build speaks {}", crate::abi::ABI_VERSION)
        }
        HeaderError::BadOp(op) => format!("unknown operator code {op}"),
        HeaderError::BadLayout => "header sizes and offsets are inconsistent".to_owned(),
        HeaderError::Truncated(len) => format!("truncated: only {len} bytes"),
    };
    Error::Corrupt { path: path.to_owned(), reason }
}

impl BankMemory {
    /// Wraps an existing mapping after validating its header against the mapped length.
    /// `path` names the file or device in errors.
    pub fn from_map(map: MmapRaw, path: &Path, writable: bool) -> Result<BankMemory> {
        let len = map.len() as u64;
        if len < crate::abi::BANK_HEADER_SIZE {
            return Err(header_error(path, HeaderError::Truncated(len)));
        }
        // SAFETY: the mapping is at least one header long and page aligned; BankHeader is
        // plain data (any bit pattern is valid). A volatile read copies it out once so a
        // concurrent writer cannot change it between checks.
        let header: BankHeader = unsafe { std::ptr::read_volatile(map.as_ptr() as *const BankHeader) };
        let layout = header.validate(len).map_err(|e| header_error(path, e))?;
        let op = Op::from_code(header.op).ok_or_else(|| header_error(path, HeaderError::BadOp(header.op)))?;
        let base = map.as_mut_ptr();
        // INVARIANT: validate() checked total_size <= len and the offsets against the layout.
        Ok(BankMemory { map, base, layout, op, writable })
    }

    /// Writes a fresh header and zeroed regions into a new, writable mapping of
    /// `layout.total_size` bytes, then wraps it. The magic is written last so that a reader
    /// racing with creation sees either no bank or a whole one.
    pub fn init(
        map: MmapRaw,
        path: &Path,
        layout: BankLayout,
        op: Op,
        name: [u8; NAME_LEN],
    ) -> Result<BankMemory> {
        if (map.len() as u64) < layout.total_size {
            return Err(header_error(path, HeaderError::Truncated(map.len() as u64)));
        }
        let mut header = layout.header(op.code(), name);
        let magic = header.magic;
        header.magic = 0;
        // SAFETY: the mapping is new, private to this process until it is linked into place,
        // at least total_size bytes long and page aligned.
        unsafe {
            std::ptr::write_volatile(map.as_mut_ptr() as *mut BankHeader, header);
            fence(Ordering::Release);
            (*(map.as_mut_ptr() as *const AtomicU64)).store(magic, Ordering::Release);
        }
        BankMemory::from_map(map, path, true)
    }

    /// The layout of this bank.
    pub fn layout(&self) -> BankLayout {
        self.layout
    }

    /// The bank's operator.
    pub fn op(&self) -> Op {
        self.op
    }

    /// Slot count.
    pub fn slots(&self) -> u64 {
        self.layout.slots
    }

    /// Whether this mapping may be written.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The raw mapping (for `msync` or diagnostics).
    pub fn mapping(&self) -> &MmapRaw {
        &self.map
    }

    #[inline(always)]
    fn word(&self, off: u64, i: u64) -> &AtomicU64 {
        assert!(i < self.layout.slots, "slot {i} beyond {}", self.layout.slots);
        // SAFETY: by the type invariant the region at `off` holds `slots` aligned u64 words
        // inside the live mapping, and `i < slots`; AtomicU64 has u64's layout.
        unsafe { &*(self.base.add((off + i * 8) as usize) as *const AtomicU64) }
    }

    #[inline(always)]
    fn seq(&self, i: u64) -> &AtomicU64 {
        self.word(self.layout.seq_off, i)
    }
    #[inline(always)]
    fn reference(&self, i: u64) -> &AtomicU64 {
        self.word(self.layout.ref_off, i)
    }
    #[inline(always)]
    fn acc(&self, i: u64) -> &AtomicU64 {
        self.word(self.layout.acc_off, i)
    }
    #[inline(always)]
    fn shard(&self, k: u32, i: u64) -> &AtomicU64 {
        self.word(self.layout.shard_off + k as u64 * self.layout.shard_stride, i)
    }
    #[inline(always)]
    fn shard_base(&self, k: u32, i: u64) -> &AtomicU64 {
        self.word(self.layout.base_off + k as u64 * self.layout.shard_stride, i)
    }

    /// The lease word of shard `k`.
    pub(crate) fn shard_owner(&self, k: u32) -> &AtomicU64 {
        assert!((k as usize) < MAX_SHARDS);
        // SAFETY: the header page is inside the mapping; shard_owner is an array of
        // MAX_SHARDS aligned u64 words at a fixed offset.
        unsafe { &*(self.base.add((SHARD_OWNER_OFF + k as u64 * 8) as usize) as *const AtomicU64) }
    }

    /// Pointer to `len` words of shard `k` from slot `start`, for a lease holder's dense writes.
    pub(crate) fn shard_words(&self, k: u32, start: u64, len: usize) -> &[AtomicU64] {
        assert!(k < self.layout.shards);
        assert!(start.checked_add(len as u64).is_some_and(|end| end <= self.layout.slots));
        let off = self.layout.shard_off + k as u64 * self.layout.shard_stride + start * 8;
        // SAFETY: range checked against the slot count above; the shard region holds `slots`
        // aligned words inside the mapping (type invariant).
        unsafe { std::slice::from_raw_parts(self.base.add(off as usize) as *const AtomicU64, len) }
    }

    /// Takes the writer lock of slot `i`: returns the even sequence value it replaced.
    #[inline]
    fn lock(&self, i: u64) -> u64 {
        let seq = self.seq(i);
        let mut spins = 0u32;
        loop {
            let s = seq.load(Ordering::Relaxed);
            if s & 1 == 0 && seq.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                // Orders the odd sequence before the data stores that follow.
                fence(Ordering::Release);
                return s;
            }
            backoff(&mut spins);
        }
    }

    #[inline]
    fn unlock(&self, i: u64, s: u64) {
        self.seq(i).store(s.wrapping_add(2), Ordering::Release);
    }

    /// Σ over shards of (shard ∘ base⁻¹): what the shards hold that SWAP has not folded yet.
    /// When `rebase`, records the values read as folded (writer lock held).
    #[inline]
    fn shard_pending(&self, i: u64, rebase: bool) -> u64 {
        let mut f = self.op.identity();
        for k in 0..self.layout.shards {
            let s = self.shard(k, i).load(Ordering::Acquire);
            let b = self.shard_base(k, i);
            f = self.op.combine(f, self.op.difference(s, b.load(Ordering::Relaxed)));
            if rebase {
                b.store(s, Ordering::Relaxed);
            }
        }
        f
    }

    /// LOAD: reference = v, accumulator (and shards) = identity.
    pub fn load(&self, i: u64, v: u64) {
        let s = self.lock(i);
        self.acc(i).swap(self.op.identity(), Ordering::AcqRel);
        self.shard_pending(i, true);
        self.reference(i).store(v, Ordering::Relaxed);
        self.unlock(i, s);
    }

    /// ACCUM: one atomic read-modify-write of the accumulator. Wait-free.
    #[inline]
    pub fn accum(&self, i: u64, d: u64) {
        match self.op {
            Op::Xor => self.acc(i).fetch_xor(d, Ordering::Release),
            Op::Add => self.acc(i).fetch_add(d, Ordering::Release),
        };
    }

    /// READ: reference ∘ accumulator (∘ unfolded shards), never torn by LOAD or SWAP.
    pub fn read(&self, i: u64) -> u64 {
        self.read_parts(i).0
    }

    /// READ, plus whether the accumulator (and shards) are the identity, from one snapshot.
    fn read_parts(&self, i: u64) -> (u64, bool) {
        let seq = self.seq(i);
        let mut spins = 0u32;
        loop {
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let r = self.reference(i).load(Ordering::Relaxed);
                let a = self.acc(i).load(Ordering::Acquire);
                let f = self.shard_pending(i, false);
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 {
                    let pending = self.op.combine(a, f);
                    return (self.op.combine(r, pending), pending == self.op.identity());
                }
            }
            backoff(&mut spins);
        }
    }

    /// True when nothing was accumulated since the last LOAD or SWAP (or it cancelled out).
    pub fn is_clean(&self, i: u64) -> bool {
        self.read_parts(i).1
    }

    /// SWAP: returns the current state and makes it the reference; every concurrent ACCUM
    /// lands exactly once, in the returned state or in the new accumulator.
    pub fn swap(&self, i: u64) -> u64 {
        let s = self.lock(i);
        let a = self.acc(i).swap(self.op.identity(), Ordering::AcqRel);
        let f = self.shard_pending(i, true);
        let r = self.reference(i).load(Ordering::Relaxed);
        let state = self.op.combine(r, self.op.combine(a, f));
        self.reference(i).store(state, Ordering::Relaxed);
        self.unlock(i, s);
        state
    }
}

/// Spins briefly, then yields: a writer holds a slot lock only for a few instructions, but
/// may be descheduled inside them.
#[inline]
fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        spin_loop();
    } else {
        std::thread::yield_now();
    }
}
