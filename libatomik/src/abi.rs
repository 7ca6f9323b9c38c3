//! The atomik ABI, defined once.
//!
//! This file is the single source of truth shared by the library (`libatomik`, as
//! `atomik::abi`) and the kernel module (`kmod/`, through `#[path]`). It must stay
//! dependency-free and `no_std`: only `core` is used. `libatomik/include/atomik.h` mirrors it
//! for C callers and a test checks the two against each other.
//!
//! It holds:
//! - the ioctl numbers of `/dev/atomik` and their `#[repr(C)]` request structs,
//! - the errno conventions of every ioctl,
//! - the shared bank layout that both `/dev/atomik`'s mmap and the userspace default
//!   (files under `/dev/shm/atomik`) use, with its concurrency protocol.
//!
//! # Bank layout
//!
//! A bank of `N` slots is one mapping made of page-aligned regions:
//!
//! | offset            | size                 | contents                                      |
//! |-------------------|----------------------|-----------------------------------------------|
//! | 0                 | 4096                 | [`BankHeader`]                                |
//! | `seq_off`         | `8 N` (page-rounded) | per-slot sequence word (seqlock)              |
//! | `ref_off`         | `8 N` (page-rounded) | per-slot reference                            |
//! | `acc_off`         | `8 N` (page-rounded) | per-slot accumulator                          |
//! | `taken_off`       | `8 N` (page-rounded) | per-slot accumulator value already replicated |
//! | `card_off`        | `8 ⌈N/512⌉` (rounded)| per accumulator page, a dirty card (0 or 1)   |
//! | `shard_off`       | `8 N K` (rounded)    | `K` writer-private accumulator shards (K ≥ 0) |
//! | `base_off`        | `8 N K` (rounded)    | per shard, the value already folded by SWAP   |
//!
//! All words are native-endian `u64` accessed only with atomic instructions. The offsets are
//! a pure function of `(N, K)`: [`BankLayout::new`]. Readers must still validate the header's
//! copy of them against that function before trusting it.
//!
//! # Concurrency protocol (per slot `i`, operator `∘`, identity `e`)
//!
//! - **ACCUM(d)**: one atomic read-modify-write `acc[i] ∘= d` (`lock xor` / `lock xadd`,
//!   sequentially consistent), then the slot's card `c = i / 512` is marked: load
//!   `card[c]` and, only when it is 0, store 1. It never touches `seq[i]`: ACCUM is wait-free
//!   for any number of threads and processes, and the card costs one load that hits the cache
//!   (the store happens once per page between two scans). A sync daemon swaps each card to 0
//!   and then reads the page's accumulators: an ACCUM whose card load saw 1 came before the
//!   swap, so the read sees it; one that saw 0 stores 1 and is found at the next scan.
//! - **Sequence words.** Unlocked, `seq[i]` is an even counter below 2^32. A writer locks it
//!   by compare-and-swap of an even value `s` to `(holder << 32) | ((s + 1) mod 2^32)`
//!   (acquire), where `holder` is its process id, or 0 for the kernel; it unlocks by storing
//!   `(s + 2) mod 2^32` (release). A waiter that finds the lock held for long by a process
//!   that no longer exists (`kill(holder, 0)` fails with `ESRCH`) releases it in the dead
//!   holder's place by the same compare-and-swap from the exact locked word, so no slot stays
//!   wedged by a killed writer. A kernel holder (0) is never released by others.
//! - **Writers (LOAD, SWAP, REF_COMBINE)** serialise on `seq[i]`. The critical section is a
//!   few instructions with no system call and no fault (the pages are mapped and populated).
//!   - REF_COMBINE(d): `ref[i] = ref[i] ∘ d`, the accumulator untouched: how a sync daemon
//!     merges remote changes into a replicated bank (one store, so a writer killed inside it
//!     leaves the old or the new reference, never a torn slot).
//!   - LOAD(v): `ref[i] = v`; `acc[i]` is exchanged with `e` (ACCUMs before the exchange are
//!     discarded by the LOAD, those after it stay).
//!   - SWAP: `a = exchange(acc[i], e)`, fold the shards (below), `ref[i] = ref[i] ∘ a ∘ f`,
//!     return the new `ref[i]`. Every concurrent ACCUM hits `acc[i]` either before the
//!     exchange (it is in the returned state, which became the reference) or after it (it is
//!     in the new accumulator): exactly once, never lost.
//! - **READ**: `s1 = seq[i]` (acquire; if odd, spin), load `ref[i]`, `acc[i]` and the shards,
//!   acquire fence, `s2 = seq[i]`; retry unless `s1 == s2`. A READ therefore never sees a
//!   LOAD or SWAP half done, and is linearised at its load of `acc[i]`.
//! - **Shards** (when `K > 0`): a writer that leased shard `k` (CAS of `shard_owner[k]` from
//!   0 to its pid) is the only one to store to `shard_k[i]`, so it may combine dense batches
//!   into it with plain (vectorised) loads and stores of whole aligned words. Shards are never
//!   reset: SWAP folds `f = Σ_k shard_k[i] ∘ base_k[i]⁻¹` and sets `base_k[i] = shard_k[i]`,
//!   READ adds the same `f`. A delta in a shard is counted exactly once for the same reason as
//!   in `acc`. A READ takes `acc[i]` before the shards, so it is linearisable with respect to
//!   each writer's own program order as long as a writer does not mix shard writes and atomic
//!   ACCUMs on one slot while expecting a concurrent READ to see them in that order.
//!
//! A process killed inside a writer's critical section leaves `seq[i]` locked by a dead
//! holder; the next waiter releases it (above). A LOAD or SWAP killed between its two stores
//! leaves that slot as far as it got (a SWAP killed after taking the accumulator and before
//! storing the reference drops what it took, like a SWAP whose result was thrown away); the
//! window is a handful of instructions with no syscall. The kernel backend's LOAD and SWAP
//! run in the kernel where this cannot happen.
//!
//! # Replicated banks
//!
//! A bank mirrored by `atomikctl sync` is *bound*: [`BankHeader::origin`] holds the replica's
//! origin id and [`BankHeader::incarnation`] the id of this binding (both 0 when unbound).
//! Only the daemon writes `ref` (by REF_COMBINE) and `taken`; producers only ACCUM, so
//! `acc[i] ∘ taken[i]⁻¹` is exactly the local change not yet replicated and
//! `ref[i] ∘ taken[i]` the replicated state. LOAD and SWAP on a bound bank are refused by the
//! library. See `docs/replication.md` for the invariants and why every crash point is safe.
#![allow(dead_code)]

use core::mem::{offset_of, size_of};

/// Version of this ABI: ioctl structs and the bank layout. Bumped on any incompatible change.
pub const ABI_VERSION: u32 = 2;

/// The ioctl type byte of `/dev/atomik` (the legacy C module used `'A'`).
pub const IOC_MAGIC: u32 = 0xA7;

/// Path of the device node.
pub const DEVICE_PATH: &str = "/dev/atomik";

/// Bytes of a bank name, NUL included. Names are `[A-Za-z0-9._-]{1,63}`, not starting with `.`.
pub const NAME_LEN: usize = 64;

/// Largest number of entries in one BATCH ioctl (E2BIG above).
pub const BATCH_MAX: u32 = 65_536;

/// Largest number of writer-private shards per bank.
pub const MAX_SHARDS: usize = 16;

/// Page size the layout is aligned to (x86_64 and the kernel module's target).
pub const PAGE_SIZE: u64 = 4096;

/// Slots per dirty card: one card per page of accumulators.
pub const CARD_SLOTS: u64 = PAGE_SIZE / 8;

/// Bits of a sequence word that hold the counter; the holder's pid sits above them.
pub const SEQ_COUNTER_MASK: u64 = 0xffff_ffff;

// ---------------------------------------------------------------------------------------------
// ioctl number encoding (asm-generic/ioctl.h: dir << 30 | size << 16 | type << 8 | nr)

/// No data transfer.
pub const IOC_NONE: u32 = 0;
/// Userspace writes, the kernel reads.
pub const IOC_WRITE: u32 = 1;
/// The kernel writes, userspace reads.
pub const IOC_READ: u32 = 2;

/// Encodes an ioctl number like the kernel's `_IOC`.
pub const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (IOC_MAGIC << 8) | nr
}

/// Size field of an ioctl number (`_IOC_SIZE`).
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

// ---------------------------------------------------------------------------------------------
// Operators and op kinds

/// Group operator of a bank.
pub const OP_XOR: u32 = 0;
/// Wrapping 64-bit addition.
pub const OP_ADD: u32 = 1;

/// Op kinds of a [`BatchEntry`] (and of statistics).
pub const KIND_LOAD: u32 = 0;
/// acc ∘= value
pub const KIND_ACCUM: u32 = 1;
/// value ← reference ∘ acc
pub const KIND_READ: u32 = 2;
/// value ← state; reference ← state; acc ← identity
pub const KIND_SWAP: u32 = 3;
/// value ← state; reference ← the given value; acc ← identity (SWAP with a new reference).
pub const KIND_SWAP_SET: u32 = 4;

// ---------------------------------------------------------------------------------------------
// Feature bits of [`Info::features`]

/// Banks can be mapped (`mmap` of the attached bank).
pub const FEATURE_MMAP: u32 = 1 << 0;
/// The BATCH ioctl is supported.
pub const FEATURE_BATCH: u32 = 1 << 1;
/// Per-bank statistics (BANK_STATS).
pub const FEATURE_STATS: u32 = 1 << 2;
/// Page-change region tracking (REGION_* ioctls).
pub const FEATURE_REGION: u32 = 1 << 3;
/// An FPGA accelerator is present and bound.
pub const FEATURE_FPGA: u32 = 1 << 4;

/// Access bits of [`BankOpen::access`].
pub const ACCESS_READ: u32 = 1;
/// Write access (LOAD/ACCUM/SWAP, writable mapping).
pub const ACCESS_WRITE: u32 = 2;
/// Set by BANK_OPEN in the reply's [`BankOpen::access`] when the bank's slots are on the FPGA
/// (never in a request: EINVAL). Its mapping (`map_size` bytes from offset 0, `MAP_SHARED`,
/// write access) is then the bank's part of the device's ACCUM window, not the bank layout: a
/// 64-bit store at byte `8·i` accumulates into slot `i` (one posted write per ACCUM); LOAD,
/// READ, SWAP and SWAP_SET go through their ioctls.
pub const BANK_OPEN_FPGA: u32 = 1 << 16;

/// Flag of [`BankCreate::flags`]: create the bank's slots on the bound FPGA (ENODEV when none
/// is, ENOSPC when it has no room; no writer shards).
pub const BANK_CREATE_FPGA: u32 = 1;

// ---------------------------------------------------------------------------------------------
// ioctl request structs

/// GET_INFO reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// [`ABI_VERSION`] of the module.
    pub abi_version: u32,
    /// `FEATURE_*` bits.
    pub features: u32,
    /// Banks named now in the caller's IPC namespace (`/dev/atomik`: the namespace the fd was
    /// opened in).
    pub bank_count: u32,
    /// Module parameter: banks one uid may own.
    pub max_banks_per_user: u32,
    /// Module parameter: slots in one bank.
    pub max_slots: u64,
    /// Module parameter: bytes of bank memory in all.
    pub max_total_bytes: u64,
    /// Bytes of bank memory in use.
    pub used_bytes: u64,
    /// [`BATCH_MAX`] as the module applies it.
    pub max_batch: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// BANK_CREATE request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankCreate {
    /// NUL-terminated name.
    pub name: [u8; NAME_LEN],
    /// Number of slots (≥ 1).
    pub slots: u64,
    /// `OP_XOR` or `OP_ADD`.
    pub op: u32,
    /// Permission bits (like `chmod`, only 0o777 used).
    pub mode: u32,
    /// Writer-private shards, 0..=[`MAX_SHARDS`].
    pub shards: u32,
    /// [`BANK_CREATE_FPGA`] or zero.
    pub flags: u32,
}

/// BANK_OPEN request and reply: attaches the fd to a named bank.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankOpen {
    /// NUL-terminated name (in).
    pub name: [u8; NAME_LEN],
    /// `ACCESS_*` bits asked for (in); must be allowed by the fd's open mode and the bank mode.
    pub access: u32,
    /// Operator of the bank (out).
    pub op: u32,
    /// Slot count (out).
    pub slots: u64,
    /// Bytes to map for the whole bank (out).
    pub map_size: u64,
}

/// BANK_DESTROY request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankName {
    /// NUL-terminated name.
    pub name: [u8; NAME_LEN],
}

/// LOAD / ACCUM / READ / SWAP / SWAP_SET request on the fd's bank.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotOp {
    /// Slot index (< slot count, else EINVAL).
    pub slot: u64,
    /// LOAD: new reference; ACCUM: delta; READ/SWAP: the state (out); SWAP_SET: the new
    /// reference (in), the state before (out).
    pub value: u64,
}

/// One entry of a BATCH.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchEntry {
    /// `KIND_*`.
    pub kind: u32,
    /// 0, or a negative errno for this entry (out).
    pub status: i32,
    /// Slot index.
    pub slot: u64,
    /// In/out value as for [`SlotOp`].
    pub value: u64,
}

/// BATCH request: `count` entries at user address `entries`, copied in once and out once.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// User address of `count` [`BatchEntry`]s.
    pub entries: u64,
    /// Number of entries (≤ [`BATCH_MAX`], else E2BIG).
    pub count: u32,
    /// Entries applied (out). Entries are validated before any is applied.
    pub done: u32,
}

/// BANK_STATS reply: statistics of the fd's bank.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BankStats {
    /// LOAD ops through ioctls.
    pub loads: u64,
    /// ACCUM ops through ioctls.
    pub accums: u64,
    /// READ ops through ioctls.
    pub reads: u64,
    /// SWAP ops through ioctls.
    pub swaps: u64,
    /// BATCH ioctls.
    pub batches: u64,
    /// mmap calls.
    pub mmaps: u64,
    /// Slot count.
    pub slots: u64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Operator.
    pub op: u32,
}

/// One bank as BANK_LIST describes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankListEntry {
    /// NUL-terminated name.
    pub name: [u8; NAME_LEN],
    /// Slot count.
    pub slots: u64,
    /// Bytes of memory the bank takes (its whole mapping).
    pub bytes: u64,
    /// Operator.
    pub op: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Writer-private shards.
    pub shards: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

impl BankListEntry {
    /// An all-zero entry: what a BANK_LIST buffer is filled with before the call.
    pub const EMPTY: BankListEntry = BankListEntry {
        name: [0; NAME_LEN],
        slots: 0,
        bytes: 0,
        op: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        shards: 0,
        reserved: 0,
    };
}

/// BANK_LIST request: fills up to `capacity` [`BankListEntry`]s at user address `entries`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BankList {
    /// User address of `capacity` entries.
    pub entries: u64,
    /// Entries the buffer holds (in).
    pub capacity: u32,
    /// Banks that exist (out); more than `capacity` means the list was cut: ask again.
    pub count: u32,
}

/// REGION_WATCH request and reply: start fingerprinting `len` bytes at `start` in process
/// `pid`. The kernel reads every page now (the baseline) and at each REGION_CHECK.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionWatch {
    /// Process to watch (in its caller's pid namespace); 0 = the caller.
    pub pid: i32,
    /// [`REGION_WATCH_COW`] or 0; other bits are reserved (EINVAL).
    pub flags: u32,
    /// First byte, page aligned.
    pub start: u64,
    /// Bytes, a nonzero multiple of the page size.
    pub len: u64,
    /// Region id on this fd (out, nonzero).
    pub id: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Pages of the range that could not be read (out): unmapped, PROT_NONE or I/O memory.
    pub unreadable: u64,
}

/// REGION_CHECK request and reply: re-reads every page of a region and compares it with the
/// baseline (the content at REGION_WATCH or at the last REGION_CHECKPOINT).
///
/// A page is *changed* when its fingerprint differs from the baseline's, or when it became
/// readable or unreadable. Unreadable pages have no fingerprint (0 in `fingerprints`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionCheck {
    /// Region id (in).
    pub id: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// User address of a bitmap, or 0 for none: bit `i % 8` of byte `i / 8` is set when page
    /// `i` changed (in).
    pub bitmap: u64,
    /// Bytes at `bitmap`; at least `(pages + 7) / 8` when `bitmap` is not 0 (in).
    pub bitmap_len: u64,
    /// User address of one `u64` fingerprint per page, or 0 for none (in).
    pub fingerprints: u64,
    /// Entries at `fingerprints`; at least `pages` when `fingerprints` is not 0 (in).
    pub fingerprints_len: u64,
    /// Pages in the region (out).
    pub pages: u64,
    /// Pages changed since the baseline (out); 0 means nothing changed.
    pub changed: u64,
    /// Pages that could not be read by this check (out).
    pub unreadable: u64,
}

/// [`RegionWatch::flags`]: also keep a copy-on-write record, so that REGION_COW can be asked.
/// It costs 16 bytes per page more, so the region counts twice against `max_region_pages`.
pub const REGION_WATCH_COW: u32 = 1;

/// REGION_COW per-page bit: the page is anonymous and present (not the shared zero page).
pub const COW_PAGE_ANON: u8 = 1 << 0;
/// REGION_COW per-page bit: the page is shared copy-on-write now (see [`RegionCow::shared`]).
pub const COW_PAGE_SHARED: u8 = 1 << 1;
/// REGION_COW per-page bit: a COW break since the previous sample (see [`RegionCow::breaks`]).
pub const COW_PAGE_BROKE: u8 = 1 << 2;
/// REGION_COW per-page bit: the break made an identical copy (see [`RegionCow::identical`]).
pub const COW_PAGE_IDENTICAL: u8 = 1 << 3;

/// REGION_COW request and reply: copy-on-write sharing of a region watched with
/// [`REGION_WATCH_COW`], and COW breaks since the previous *sample* (the last successful
/// REGION_COW, or the REGION_WATCH that made the region). A successful REGION_COW is the next
/// sample; a failed one leaves the previous sample in place.
///
/// What the kernel looks at, page by page, through the same read-only page lookup as
/// REGION_CHECK (never a write fault, never a pin): which page is mapped at the address, whether
/// it is anonymous, and how many times it is mapped (the test `/proc/PID/pagemap` uses for its
/// "exclusively mapped" bit). No page frame number or address of a page leaves the kernel: the
/// module keeps, for each page shared at the last sample, the identity of that page (its
/// `struct page`, compared, never dereferenced later) and its fingerprint.
///
/// - *shared*: an anonymous page (not the shared zero page) mapped more than once — after
///   `fork` by the parent and child, or merged by KSM.
/// - *break*: the page at an address was shared at the previous sample, and now the address
///   maps a different page that is anonymous and mapped only once: this process got its own
///   copy. A page that stayed the same page and became exclusive because the other sharers
///   unmapped it or exited is not a break. Limit: if, between two samples, the shared page is
///   freed (every other sharer dropped it) and its frame becomes this address's page again (a
///   second copy, e.g. across another fork), it reads as the same page and the break is not
///   counted.
/// - *identical copy*: a break whose new page has the fingerprint the shared page had at the
///   previous sample: a write that stored the bytes already there (equal fingerprints are
///   taken as equal content; `fp_core` makes a collision of distinct pages unlikely, not
///   impossible).
///
/// Pages that cannot be read (unmapped, PROT_NONE, I/O memory) and file pages are none of
/// these.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionCow {
    /// Region id (in).
    pub id: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// User address of one byte of `COW_PAGE_*` bits per page, or 0 for none (in).
    pub page_bits: u64,
    /// Bytes at `page_bits`; at least `pages` when `page_bits` is not 0 (in).
    pub page_bits_len: u64,
    /// Pages in the region (out).
    pub pages: u64,
    /// Anonymous present pages now (out).
    pub anon: u64,
    /// Of those, shared copy-on-write now (out).
    pub shared: u64,
    /// COW breaks since the previous sample (out).
    pub breaks: u64,
    /// Of the breaks, identical copies (out).
    pub identical: u64,
}

/// REGION_CHECKPOINT and REGION_UNWATCH request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionId {
    /// Region id.
    pub id: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

// ---------------------------------------------------------------------------------------------
// ioctl numbers. Errors common to all: ENOTTY unknown command, EFAULT bad user pointer,
// EINVAL malformed request (bad name, unknown op/kind, nonzero reserved field, slot out of
// range), EBADFD (as EBADF) an op needing an attached bank on an fd without one.
// Ops that wait for a slot's seqlock (LOAD, READ, SWAP, SWAP_SET, and those in a BATCH; ACCUM
// never waits) spin briefly, then sleep: EINTR when a signal arrives, ETIMEDOUT when the slot
// stayed locked (or kept changing under a READ) for the `slot_wait_ms` module parameter
// (1 s by default). Neither has a side effect on that slot; a BATCH reports what it applied.
// An ioctl that fails has no side effect, except where its documentation says otherwise.

/// Reads [`Info`].
pub const IOCTL_GET_INFO: u32 = ioc(IOC_READ, 0x00, size_of::<Info>());
/// Creates a bank owned by the caller. EEXIST name taken, ENOSPC bank limit of the uid,
/// ENOMEM slot or memory limit (in all, or the uid's `max_user_bytes` unless the opener has
/// CAP_SYS_RESOURCE). A destroyed bank counts against these limits until its last fd and
/// mapping are gone.
pub const IOCTL_BANK_CREATE: u32 = ioc(IOC_WRITE, 0x01, size_of::<BankCreate>());
/// Attaches the fd to a bank. ENOENT no such bank, EACCES mode (or the fd's open mode) denies
/// the access, EBUSY fd already attached, EFAULT reply not writable (the fd stays unattached).
/// Mapping the bank needs read access; a writable shared mapping also write access.
pub const IOCTL_BANK_OPEN: u32 = ioc(IOC_READ | IOC_WRITE, 0x02, size_of::<BankOpen>());
/// Destroys a bank (owner or CAP_SYS_ADMIN, else EPERM). Pages stay valid for existing
/// mappings until they are unmapped.
pub const IOCTL_BANK_DESTROY: u32 = ioc(IOC_WRITE, 0x03, size_of::<BankName>());
/// Lists every bank of the caller's IPC namespace (like `ipcs`: names and owners are visible to
/// all in it). E2BIG when `capacity` is above [`BATCH_MAX`].
pub const IOCTL_BANK_LIST: u32 = ioc(IOC_READ | IOC_WRITE, 0x04, size_of::<BankList>());
/// LOAD. EACCES without write access.
pub const IOCTL_LOAD: u32 = ioc(IOC_WRITE, 0x10, size_of::<SlotOp>());
/// ACCUM. EACCES without write access.
pub const IOCTL_ACCUM: u32 = ioc(IOC_WRITE, 0x11, size_of::<SlotOp>());
/// READ. EACCES without read access.
pub const IOCTL_READ: u32 = ioc(IOC_READ | IOC_WRITE, 0x12, size_of::<SlotOp>());
/// SWAP. EACCES without read and write access (it returns the state).
pub const IOCTL_SWAP: u32 = ioc(IOC_READ | IOC_WRITE, 0x13, size_of::<SlotOp>());
/// SWAP_SET: returns the state (`value` out), sets the reference to `value` (in) and resets
/// the accumulator and shards, in one critical section: a concurrent ACCUM lands exactly once
/// (in the returned state, or in the new accumulator on top of the new reference). EACCES
/// without read and write access. Also a BATCH kind ([`KIND_SWAP_SET`]).
pub const IOCTL_SWAP_SET: u32 = ioc(IOC_READ | IOC_WRITE, 0x16, size_of::<SlotOp>());
/// IS_CLEAN: `value` (out) is 1 when slot `slot`'s accumulator, shards folded in, is the
/// identity (nothing accumulated since the last LOAD or SWAP, or it cancelled out), else 0.
/// The one query a bank on the FPGA, which is not memory-mapped, needs beyond READ. EACCES
/// without read access.
pub const IOCTL_IS_CLEAN: u32 = ioc(IOC_READ | IOC_WRITE, 0x17, size_of::<SlotOp>());
/// BATCH. E2BIG above [`BATCH_MAX`]. EFAULT (nothing applied) when the entries or the
/// request cannot be written back; once entries are applied, the reply is written and only a
/// concurrent unmap of the buffer can still make it fail.
pub const IOCTL_BATCH: u32 = ioc(IOC_READ | IOC_WRITE, 0x14, size_of::<Batch>());
/// Reads [`BankStats`] of the attached bank.
pub const IOCTL_BANK_STATS: u32 = ioc(IOC_READ, 0x15, size_of::<BankStats>());
/// Starts watching a range of a process's pages; the region belongs to this fd (freed by
/// REGION_UNWATCH or when the fd is closed). Another process needs the same access as
/// opening its `/proc/PID/mem` (ptrace access, which implies PTRACE_MODE_READ_FSCREDS): EPERM
/// otherwise, ESRCH no such process, EINVAL unaligned/empty/overflowing range or nonzero
/// reserved field, ENOMEM the fd would watch more than the `max_region_pages` module parameter,
/// ENOSPC the fd has `max_regions_per_fd` regions, EINTR a signal arrived (nothing created).
pub const IOCTL_REGION_WATCH: u32 = ioc(IOC_READ | IOC_WRITE, 0x20, size_of::<RegionWatch>());
/// Re-reads a region and reports its changed pages. EINVAL unknown id or buffer shorter than
/// the region, EFAULT bad buffer, ESRCH the watched address space is gone (exit or exec),
/// EINTR a signal arrived (the baseline is unchanged; repeat the check).
pub const IOCTL_REGION_CHECK: u32 = ioc(IOC_READ | IOC_WRITE, 0x21, size_of::<RegionCheck>());
/// Makes the content seen by the last REGION_CHECK (or REGION_WATCH) the baseline. EINVAL
/// unknown id.
pub const IOCTL_REGION_CHECKPOINT: u32 = ioc(IOC_WRITE, 0x22, size_of::<RegionId>());
/// Stops watching and frees a region. EINVAL unknown id.
pub const IOCTL_REGION_UNWATCH: u32 = ioc(IOC_WRITE, 0x23, size_of::<RegionId>());
/// Copy-on-write figures of a region ([`RegionCow`]): a separate ioctl rather than more fields
/// in [`RegionCheck`], whose size (and so its ioctl number) stays as it is, and because it
/// answers from its own sample, not from the fingerprint baseline. EINVAL unknown id, nonzero
/// `flags`, region watched without [`REGION_WATCH_COW`], or `page_bits_len` below the page
/// count; EFAULT bad buffer; ESRCH the watched address space is gone; ENOMEM no memory for the
/// next sample; EINTR a signal arrived. On any error the previous sample stays.
pub const IOCTL_REGION_COW: u32 = ioc(IOC_READ | IOC_WRITE, 0x24, size_of::<RegionCow>());

// ---------------------------------------------------------------------------------------------
// Shared bank layout

/// `"ATOMIKBK"` little-endian: first word of every bank.
pub const BANK_MAGIC: u64 = u64::from_le_bytes(*b"ATOMIKBK");

/// Bytes of the header page.
pub const BANK_HEADER_SIZE: u64 = PAGE_SIZE;

/// High half of [`BankHeader::owner`] when an owner is recorded (`"OWNR"`), so that a zeroed
/// word never reads as "owned by root".
pub const OWNER_TAG: u64 = 0x4f57_4e52 << 32;

/// The [`BankHeader::owner`] word recording `uid` as the bank's creator.
pub const fn owner_word(uid: u32) -> u64 {
    OWNER_TAG | uid as u64
}

/// The creator uid recorded in a [`BankHeader::owner`] word, `None` when none is recorded.
pub const fn owner_uid(word: u64) -> Option<u32> {
    if word & !0xffff_ffff == OWNER_TAG {
        Some(word as u32)
    } else {
        None
    }
}

/// The first page of every bank mapping.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BankHeader {
    /// [`BANK_MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// [`BANK_HEADER_SIZE`].
    pub header_size: u32,
    /// Slot count `N`.
    pub slot_count: u64,
    /// `OP_XOR` or `OP_ADD`.
    pub op: u32,
    /// Shard count `K`.
    pub shard_count: u32,
    /// Bytes of the whole mapping.
    pub total_size: u64,
    /// Offset of the seqlock words.
    pub seq_off: u64,
    /// Offset of the references.
    pub ref_off: u64,
    /// Offset of the accumulators.
    pub acc_off: u64,
    /// Offset of shard 0 (shard `k` at `shard_off + k * shard_stride`).
    pub shard_off: u64,
    /// Offset of base 0 (base `k` at `base_off + k * shard_stride`).
    pub base_off: u64,
    /// Bytes between consecutive shards (and bases).
    pub shard_stride: u64,
    /// Offset of the replicated-accumulator words (`taken`).
    pub taken_off: u64,
    /// Offset of the dirty cards.
    pub card_off: u64,
    /// Origin id of the replica that mirrors this bank, 0 when unbound. Accessed atomically.
    pub origin: u64,
    /// Id of the binding between this bank and its replica directory, 0 when unbound.
    /// Accessed atomically; written last when binding.
    pub incarnation: u64,
    /// Userspace default only: who created the bank, as [`owner_word`]`(uid)`; 0 in banks the
    /// kernel made (it names and owns those itself). A bank file whose owner differs from the
    /// uid recorded here was substituted or copied by someone else and is refused.
    pub owner: u64,
    /// Per shard, the pid holding its lease (0 = free). Accessed atomically.
    pub shard_owner: [u64; MAX_SHARDS],
    /// NUL-terminated bank name, informational.
    pub name: [u8; NAME_LEN],
    /// Reserved, zero: pads the header to one page.
    pub reserved1: [u8; 3776],
}

/// Where each region of a bank lives: a pure function of the slot and shard counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankLayout {
    /// Slot count `N`.
    pub slots: u64,
    /// Shard count `K`.
    pub shards: u32,
    /// Offset of the seqlock words.
    pub seq_off: u64,
    /// Offset of the references.
    pub ref_off: u64,
    /// Offset of the accumulators.
    pub acc_off: u64,
    /// Offset of the replicated-accumulator words.
    pub taken_off: u64,
    /// Offset of the dirty cards.
    pub card_off: u64,
    /// Number of dirty cards (`⌈N / CARD_SLOTS⌉`).
    pub cards: u64,
    /// Offset of shard 0.
    pub shard_off: u64,
    /// Offset of base 0.
    pub base_off: u64,
    /// Bytes of one slot array rounded up to whole pages.
    pub shard_stride: u64,
    /// Bytes of the whole mapping.
    pub total_size: u64,
}

/// Largest slot count any bank may have (keeps every offset far from overflow: 2^40 slots).
pub const MAX_SLOTS: u64 = 1 << 40;

const fn page_round(bytes: u64) -> u64 {
    (bytes + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

impl BankLayout {
    /// The layout of a bank of `slots` slots and `shards` shards, or `None` when either is out
    /// of range (0 slots, more than [`MAX_SLOTS`], more than [`MAX_SHARDS`] shards).
    pub const fn new(slots: u64, shards: u32) -> Option<BankLayout> {
        if slots == 0 || slots > MAX_SLOTS || shards as usize > MAX_SHARDS {
            return None;
        }
        let array = page_round(slots * 8);
        let cards = slots.div_ceil(CARD_SLOTS);
        let seq_off = BANK_HEADER_SIZE;
        let ref_off = seq_off + array;
        let acc_off = ref_off + array;
        let taken_off = acc_off + array;
        let card_off = taken_off + array;
        let shard_off = card_off + page_round(cards * 8);
        let base_off = shard_off + array * shards as u64;
        let total_size = base_off + array * shards as u64;
        Some(BankLayout {
            slots,
            shards,
            seq_off,
            ref_off,
            acc_off,
            taken_off,
            card_off,
            cards,
            shard_off,
            base_off,
            shard_stride: array,
            total_size,
        })
    }

    /// A fresh header describing this layout.
    pub const fn header(&self, op: u32, name: [u8; NAME_LEN]) -> BankHeader {
        BankHeader {
            magic: BANK_MAGIC,
            abi_version: ABI_VERSION,
            header_size: BANK_HEADER_SIZE as u32,
            slot_count: self.slots,
            op,
            shard_count: self.shards,
            total_size: self.total_size,
            seq_off: self.seq_off,
            ref_off: self.ref_off,
            acc_off: self.acc_off,
            shard_off: self.shard_off,
            base_off: self.base_off,
            shard_stride: self.shard_stride,
            taken_off: self.taken_off,
            card_off: self.card_off,
            origin: 0,
            incarnation: 0,
            owner: 0,
            shard_owner: [0; MAX_SHARDS],
            name,
            reserved1: [0; 3776],
        }
    }
}

/// Why a header cannot be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The first word is not [`BANK_MAGIC`].
    BadMagic,
    /// The ABI version differs (the found version is carried).
    Version(u32),
    /// The operator is unknown.
    BadOp(u32),
    /// Slot or shard counts, offsets or sizes disagree with [`BankLayout::new`].
    BadLayout,
    /// The mapping is shorter than the header says (its length is carried).
    Truncated(u64),
}

impl BankHeader {
    /// Validates every field against the layout function and the length actually available.
    pub fn validate(&self, available: u64) -> Result<BankLayout, HeaderError> {
        if self.magic != BANK_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if self.abi_version != ABI_VERSION {
            return Err(HeaderError::Version(self.abi_version));
        }
        if self.op != OP_XOR && self.op != OP_ADD {
            return Err(HeaderError::BadOp(self.op));
        }
        let layout = match BankLayout::new(self.slot_count, self.shard_count) {
            Some(l) => l,
            None => return Err(HeaderError::BadLayout),
        };
        if self.header_size as u64 != BANK_HEADER_SIZE
            || self.total_size != layout.total_size
            || self.seq_off != layout.seq_off
            || self.ref_off != layout.ref_off
            || self.acc_off != layout.acc_off
            || self.taken_off != layout.taken_off
            || self.card_off != layout.card_off
            || self.shard_off != layout.shard_off
            || self.base_off != layout.base_off
            || self.shard_stride != layout.shard_stride
        {
            return Err(HeaderError::BadLayout);
        }
        if available < layout.total_size {
            return Err(HeaderError::Truncated(available));
        }
        Ok(layout)
    }
}

// ---------------------------------------------------------------------------------------------
// Size and offset checks: every struct whose size is encoded in an ioctl number, and the layout.

const _: () = assert!(size_of::<Info>() == 48);
const _: () = assert!(size_of::<BankCreate>() == 88);
const _: () = assert!(offset_of!(BankCreate, slots) == 64);
const _: () = assert!(offset_of!(BankCreate, flags) == 84);
const _: () = assert!(size_of::<BankOpen>() == 88);
const _: () = assert!(offset_of!(BankOpen, access) == 64);
const _: () = assert!(offset_of!(BankOpen, slots) == 72);
const _: () = assert!(offset_of!(BankOpen, map_size) == 80);
const _: () = assert!(size_of::<BankName>() == 64);
const _: () = assert!(size_of::<SlotOp>() == 16);
const _: () = assert!(size_of::<BatchEntry>() == 24);
const _: () = assert!(offset_of!(BatchEntry, slot) == 8);
const _: () = assert!(size_of::<Batch>() == 16);
const _: () = assert!(offset_of!(Batch, done) == 12);
const _: () = assert!(size_of::<BankStats>() == 72);
const _: () = assert!(size_of::<BankListEntry>() == 104);
const _: () = assert!(offset_of!(BankListEntry, reserved) == 100);
const _: () = assert!(size_of::<BankList>() == 16);
const _: () = assert!(size_of::<BankHeader>() == BANK_HEADER_SIZE as usize);
const _: () = assert!(offset_of!(BankHeader, slot_count) == 16);
const _: () = assert!(offset_of!(BankHeader, total_size) == 32);
const _: () = assert!(offset_of!(BankHeader, shard_stride) == 80);
const _: () = assert!(offset_of!(BankHeader, taken_off) == 88);
const _: () = assert!(offset_of!(BankHeader, card_off) == 96);
const _: () = assert!(offset_of!(BankHeader, origin) == 104);
const _: () = assert!(offset_of!(BankHeader, incarnation) == 112);
const _: () = assert!(offset_of!(BankHeader, owner) == 120);
const _: () = assert!(offset_of!(BankHeader, shard_owner) == 128);
const _: () = assert!(offset_of!(BankHeader, name) == 256);
const _: () = assert!(IOCTL_GET_INFO == 0x8030_a700);
const _: () = assert!(IOCTL_SWAP == 0xc010_a713);
const _: () = assert!(size_of::<RegionWatch>() == 40);
const _: () = assert!(offset_of!(RegionWatch, start) == 8);
const _: () = assert!(offset_of!(RegionWatch, id) == 24);
const _: () = assert!(offset_of!(RegionWatch, unreadable) == 32);
const _: () = assert!(size_of::<RegionCheck>() == 64);
const _: () = assert!(offset_of!(RegionCheck, bitmap) == 8);
const _: () = assert!(offset_of!(RegionCheck, fingerprints) == 24);
const _: () = assert!(offset_of!(RegionCheck, pages) == 40);
const _: () = assert!(offset_of!(RegionCheck, unreadable) == 56);
const _: () = assert!(size_of::<RegionId>() == 8);
const _: () = assert!(size_of::<RegionCow>() == 64);
const _: () = assert!(offset_of!(RegionCow, page_bits) == 8);
const _: () = assert!(offset_of!(RegionCow, pages) == 24);
const _: () = assert!(offset_of!(RegionCow, identical) == 56);
const _: () = assert!(IOCTL_REGION_COW == 0xc040_a724);
const _: () = assert!(IOCTL_REGION_WATCH == 0xc028_a720);
const _: () = assert!(IOCTL_REGION_UNWATCH == 0x4008_a723);
