//! The shared bank layout in a mapping, and the concurrency protocol over it.
//!
//! Every backend that can map a bank (the userspace default and `/dev/atomik`) hands its
//! mapping to [`BankMemory`]; the protocol itself is documented in [`crate::abi`].

use std::hint::spin_loop;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::abi::{BankHeader, BankLayout, HeaderError, CARD_SLOTS, MAX_SHARDS, NAME_LEN, SEQ_COUNTER_MASK};
use crate::error::{Error, Result};
use crate::Op;

/// Byte offset of `BankHeader::shard_owner`.
const SHARD_OWNER_OFF: u64 = std::mem::offset_of!(BankHeader, shard_owner) as u64;
/// Byte offset of `BankHeader::origin`.
const ORIGIN_OFF: u64 = std::mem::offset_of!(BankHeader, origin) as u64;
/// Byte offset of `BankHeader::incarnation`.
const INCARNATION_OFF: u64 = std::mem::offset_of!(BankHeader, incarnation) as u64;
/// Waits (spins and yields) on a locked slot between two checks that its holder still lives.
const DEAD_CHECK_EVERY: u32 = 1024;

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
        if i >= self.layout.slots {
            beyond("slot", i, self.layout.slots);
        }
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

    #[inline(always)]
    fn taken(&self, i: u64) -> &AtomicU64 {
        self.word(self.layout.taken_off, i)
    }

    #[inline(always)]
    fn card(&self, c: u64) -> &AtomicU64 {
        if c >= self.layout.cards {
            beyond("card", c, self.layout.cards);
        }
        // SAFETY: the card region holds `cards` aligned u64 words inside the live mapping
        // (type invariant, validated layout) and `c < cards`.
        unsafe { &*(self.base.add((self.layout.card_off + c * 8) as usize) as *const AtomicU64) }
    }

    #[inline(always)]
    fn header_word(&self, off: u64) -> &AtomicU64 {
        // SAFETY: `off` is the offset of an aligned u64 field of the header page, which is
        // inside the mapping.
        unsafe { &*(self.base.add(off as usize) as *const AtomicU64) }
    }

    /// Origin id of the replica bound to this bank (0: unbound).
    pub fn origin(&self) -> u64 {
        self.header_word(ORIGIN_OFF).load(Ordering::Acquire)
    }

    /// Id of the binding between this bank and its replica directory (0: unbound).
    pub fn incarnation(&self) -> u64 {
        self.header_word(INCARNATION_OFF).load(Ordering::Acquire)
    }

    /// Binds the bank to replica `origin` under binding `incarnation` (both 0: unbinds). The
    /// incarnation is stored last, so a bank reads as bound only when both are written.
    pub fn set_binding(&self, origin: u64, incarnation: u64) {
        self.header_word(INCARNATION_OFF).store(0, Ordering::Release);
        self.header_word(ORIGIN_OFF).store(origin, Ordering::Release);
        self.header_word(INCARNATION_OFF).store(incarnation, Ordering::Release);
    }

    /// The accumulator of slot `i` alone (no reference, no shards).
    pub fn accumulator(&self, i: u64) -> u64 {
        self.acc(i).load(Ordering::SeqCst)
    }

    /// The reference of slot `i`, read consistently with the writers.
    pub fn reference_value(&self, i: u64) -> u64 {
        self.seq_read(i, || self.reference(i).load(Ordering::Relaxed))
    }

    /// Runs `load` as a seqlock reader of slot `i`: again until no writer held or took the
    /// slot meanwhile; waits on a locked slot (releasing a dead holder's lock).
    #[inline]
    fn seq_read<T>(&self, i: u64, load: impl Fn() -> T) -> T {
        let seq = self.seq(i);
        let mut spins = 0u32;
        loop {
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let v = load();
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 {
                    return v;
                }
            } else {
                self.wait_locked(i, s1, &mut spins);
            }
            backoff(&mut spins);
        }
    }

    /// The replicated part of slot `i`'s accumulator (written by the sync daemon only).
    pub fn taken_value(&self, i: u64) -> u64 {
        self.taken(i).load(Ordering::Acquire)
    }

    /// Records that the accumulator of slot `i` is replicated up to `v` (sync daemon only).
    pub fn set_taken(&self, i: u64, v: u64) {
        self.taken(i).store(v, Ordering::Release);
    }

    /// REF_COMBINE: `ref[i] ∘= d` as a seqlock writer, the accumulator untouched.
    pub fn ref_combine(&self, i: u64, d: u64) {
        let s = self.lock(i);
        let r = self.reference(i);
        r.store(self.op.combine(r.load(Ordering::Relaxed), d), Ordering::Relaxed);
        self.unlock(i, s);
    }

    /// `ref[i] = v` as a seqlock writer, the accumulator untouched (recovery of a replica).
    pub fn set_reference(&self, i: u64, v: u64) {
        let s = self.lock(i);
        self.reference(i).store(v, Ordering::Relaxed);
        self.unlock(i, s);
    }

    /// Number of dirty cards (pages of accumulators).
    pub fn cards(&self) -> u64 {
        self.layout.cards
    }

    /// Clears card `c` and says whether it was marked: an ACCUM into its slots happened since
    /// the last clear. Read the card's slots after this returns (see the ABI's card protocol).
    pub fn take_card(&self, c: u64) -> bool {
        let card = self.card(c);
        // A plain load first: most cards are clean, and a load does not take the line.
        card.load(Ordering::Relaxed) != 0 && card.swap(0, Ordering::SeqCst) != 0
    }

    /// Marks the cards of slots `start..end` (after non-RMW writes, e.g. shard stores).
    pub(crate) fn mark_range(&self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        fence(Ordering::SeqCst);
        for c in start / CARD_SLOTS..=(end - 1) / CARD_SLOTS {
            self.mark(c);
        }
    }

    #[inline(always)]
    fn mark(&self, c: u64) {
        let card = self.card(c);
        if card.load(Ordering::SeqCst) == 0 {
            card.store(1, Ordering::SeqCst);
        }
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
        let me = holder_id() << 32;
        let mut spins = 0u32;
        loop {
            let s = seq.load(Ordering::Relaxed);
            if s & 1 == 0 {
                let locked = me | (s.wrapping_add(1) & SEQ_COUNTER_MASK);
                if seq.compare_exchange_weak(s, locked, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    // Orders the locked sequence before the data stores that follow.
                    fence(Ordering::Release);
                    return s;
                }
            } else {
                self.wait_locked(i, s, &mut spins);
            }
            backoff(&mut spins);
        }
    }

    #[inline]
    fn unlock(&self, i: u64, s: u64) {
        self.seq(i).store(s.wrapping_add(2) & SEQ_COUNTER_MASK, Ordering::Release);
    }

    /// Called while slot `i` is seen locked as `w`: now and then checks that the holder is
    /// alive, and releases the lock in a dead holder's place (robust-futex style).
    #[cold]
    fn wait_locked(&self, i: u64, w: u64, spins: &mut u32) {
        if *spins == 0 || !(*spins).is_multiple_of(DEAD_CHECK_EVERY) {
            return;
        }
        let holder = w >> 32;
        if holder == 0 || holder == holder_id() || holder > i32::MAX as u64 {
            return; // the kernel, this process, or not a pid: wait
        }
        // SAFETY: kill with signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(holder as libc::pid_t, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let released = (w & SEQ_COUNTER_MASK).wrapping_add(1) & SEQ_COUNTER_MASK;
            let _ = self.seq(i).compare_exchange(w, released, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// The raw sequence word of slot `i` (tests and diagnostics).
    pub fn sequence(&self, i: u64) -> &AtomicU64 {
        self.seq(i)
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

    /// ACCUM: one atomic read-modify-write of the accumulator, then the slot's dirty card is
    /// marked if it is clear (one load that hits the cache). Wait-free.
    #[inline(always)]
    pub fn accum(&self, i: u64, d: u64) {
        let acc = self.acc(i);
        // Both addresses are computed (and bounds checked) before the RMW: after it, a full
        // barrier, only the card's load remains, with no reload of the layout. The load itself
        // still follows the RMW (both SeqCst), as the card protocol requires.
        let card = self.card(i / CARD_SLOTS);
        match self.op {
            Op::Xor => acc.fetch_xor(d, Ordering::SeqCst),
            Op::Add => acc.fetch_add(d, Ordering::SeqCst),
        };
        if card.load(Ordering::SeqCst) == 0 {
            card.store(1, Ordering::SeqCst);
        }
    }

    /// READ: reference ∘ accumulator (∘ unfolded shards), never torn by LOAD or SWAP.
    pub fn read(&self, i: u64) -> u64 {
        self.read_parts(i).0
    }

    /// READ, plus whether the accumulator (and shards) are the identity, from one snapshot.
    fn read_parts(&self, i: u64) -> (u64, bool) {
        self.seq_read(i, || {
            let r = self.reference(i).load(Ordering::Relaxed);
            let a = self.acc(i).load(Ordering::Acquire);
            let pending = self.op.combine(a, self.shard_pending(i, false));
            (self.op.combine(r, pending), pending == self.op.identity())
        })
    }

    /// True when nothing was accumulated since the last LOAD or SWAP (or it cancelled out).
    pub fn is_clean(&self, i: u64) -> bool {
        self.read_parts(i).1
    }

    /// SWAP_SET: returns the current state, makes `reference` the reference and the
    /// accumulator the identity; every concurrent ACCUM lands exactly once, in the returned
    /// state or in the new accumulator (as for SWAP).
    pub fn swap_set(&self, i: u64, reference: u64) -> u64 {
        let s = self.lock(i);
        let a = self.acc(i).swap(self.op.identity(), Ordering::AcqRel);
        let f = self.shard_pending(i, true);
        let r = self.reference(i).load(Ordering::Relaxed);
        self.reference(i).store(reference, Ordering::Relaxed);
        self.unlock(i, s);
        self.op.combine(r, self.op.combine(a, f))
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

/// The bounds checks' failure, out of line: keeps the panic's formatting (and the spills of
/// its arguments) off ACCUM's hot path so that ACCUM inlines into its callers' loops.
#[cold]
#[inline(never)]
#[track_caller]
fn beyond(what: &str, i: u64, n: u64) -> ! {
    panic!("{what} {i} beyond {n}")
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

/// This process's id as a sequence-word holder; refreshed in a forked child.
fn holder_id() -> u64 {
    use std::sync::atomic::AtomicU32;
    static PID: AtomicU32 = AtomicU32::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget() {
        PID.store(0, Ordering::Relaxed);
    }
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return u64::from(p);
    }
    HOOK.call_once(|| {
        // SAFETY: registers a child-side fork handler that only stores to an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    let p = std::process::id();
    PID.store(p, Ordering::Relaxed);
    u64::from(p)
}
