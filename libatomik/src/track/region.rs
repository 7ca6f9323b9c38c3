//! The region tracker: which pages of a process were written, which changed, and which
//! were written with the same content (silent writes), at a cost that follows the written
//! pages rather than the size of the region.
//!
//! [`Tracker::watch`] fingerprints every page once and LOADs the fingerprints into an atomik
//! [`Bank`] (one XOR slot per page). [`Tracker::check`] asks the kernel which pages were
//! written since the last check, re-reads only those, and ACCUMulates `fp(new) ⊕ fp(old)`:
//! a slot's accumulator is then the identity exactly when the page's content equals the
//! checkpoint's. [`Tracker::checkpoint`] SWAPs the changed slots, making the current content
//! the new baseline.
//!
//! Written pages come from, in order of preference ([`Detector`]):
//! 1. userfaultfd async write-protection + `PAGEMAP_SCAN` (Linux ≥ 6.7), when the watched
//!    memory is armed: always for the calling process, for another process when it armed
//!    itself with [`WpArm`](super::scan::WpArm);
//! 2. soft-dirty bits (CONFIG_MEM_SOFT_DIRTY; x86_64);
//! 3. otherwise a full rescan of every page, which cannot see silent writes and says so.

use super::bitset::PageSet;
use super::error::{Result, TrackError};
use super::fingerprint::fingerprint;
use super::maps::{read_maps, Mapping};
use super::memread::MemReader;
use super::pagemap::{clear_soft_dirty, soft_dirty_supported, PageEntry, Pagemap};
use super::ranges::{clip, coalesce, contains, total_pages, Range, PAGE};
use super::scan::{is_armed, populated, scan_written, WpArm};
use crate::{Bank, CreateOptions, Op};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

mod chunked;
pub use chunked::CHECK_CHUNK_PAGES;
use chunked::{apply, fold_one, Fold};

/// How written pages are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    /// userfaultfd async write-protection, read and re-armed with `PAGEMAP_SCAN`.
    UffdWp,
    /// Soft-dirty bits in `/proc/PID/pagemap`, reset through `clear_refs`.
    SoftDirty,
    /// No write tracking: every page is re-read and re-fingerprinted at every check.
    FullRescan,
}

impl Detector {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Detector::UffdWp => "pagemap-scan-uffd-wp",
            Detector::SoftDirty => "soft-dirty",
            Detector::FullRescan => "full-rescan",
        }
    }

    /// What the user should know about the mode.
    pub fn note(self) -> &'static str {
        match self {
            Detector::UffdWp => "written pages from PAGEMAP_SCAN; only those are re-read",
            Detector::SoftDirty => {
                "written pages from soft-dirty bits; only those are re-read; a first write \
                 racing with clear_refs can be missed until the page is written again"
            }
            Detector::FullRescan => {
                "no write tracking for this process (kernel without soft-dirty, memory not \
                 armed for PAGEMAP_SCAN): every page is re-read at every check; written = \
                 content changed since the previous check; silent writes are not observable"
            }
        }
    }
}

/// Tracker settings.
#[derive(Debug, Clone, Default)]
pub struct TrackerOptions {
    /// Use this detector instead of choosing the best available.
    pub detector: Option<Detector>,
    /// Name of a bank in the bank directory to hold the fingerprints (created; destroyed
    /// on drop unless [`Tracker::keep_bank`]), for inspection with atomikctl. Default: an
    /// unnamed bank (`memfd`) called `track.<our pid>.<target pid>.<n>` in errors, which
    /// leaves no file behind however the tracker's process ends.
    pub bank_name: Option<String>,
    /// Threads fingerprinting a check or baseline of many pages (default: one per core).
    pub threads: Option<usize>,
    /// Fewer pages than this are fingerprinted by one thread (default
    /// [`PARALLEL_MIN_PAGES`]) where the written pages are known before they are read: the
    /// baseline, soft-dirty and full-rescan checks.
    pub parallel_min_pages: Option<u64>,
    /// Watched pages per chunk of a `PAGEMAP_SCAN` check (default [`CHECK_CHUNK_PAGES`]):
    /// the threads take chunks in turn, each walking one and fingerprinting its written
    /// pages; a region of one chunk is checked by one thread.
    pub check_chunk_pages: Option<u64>,
}

/// What a [`Tracker::check`] found, since the last [`Tracker::checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// How written pages were found.
    pub detector: Detector,
    /// Pages written.
    pub written: Vec<Range>,
    /// Pages whose content differs from the checkpoint (accumulator ≠ identity).
    pub changed: Vec<Range>,
    /// Pages written whose content equals the checkpoint's.
    pub silent: Vec<Range>,
    /// False when the detector cannot tell silent writes apart (full rescan).
    pub silent_observable: bool,
    /// Pages re-read by this check (its cost).
    pub pages_read: u64,
}

impl CheckReport {
    /// Pages written.
    pub fn written_pages(&self) -> u64 {
        super::ranges::total_pages(&self.written)
    }
    /// Pages changed.
    pub fn changed_pages(&self) -> u64 {
        super::ranges::total_pages(&self.changed)
    }
    /// Silent writes.
    pub fn silent_pages(&self) -> u64 {
        super::ranges::total_pages(&self.silent)
    }
}

/// Watches page ranges of one process.
pub struct Tracker {
    pid: i32,
    ranges: Vec<Range>,
    /// Slot of the first page of each range.
    first_slot: Vec<u64>,
    pages: u64,
    detector: Detector,
    pagemap: Pagemap,
    source: Source,
    bank: Bank,
    bank_owned: bool,
    _arm: Option<WpArm>,
    written: PageSet,
    changed: PageSet,
    /// Slots whose page was populated when last read: a full rescan folds in the zero page
    /// for those that are not any more (MADV_DONTNEED, MADV_FREE).
    resident: PageSet,
    /// Slots to read at the next check whatever the detector says: pages that came with
    /// [`Tracker::remap`], baselined as the zero page.
    pending: PageSet,
    /// The watched pages that are not private anonymous memory (a private file mapping:
    /// a program's initialised data, a file mapped copy-on-write): an unpopulated one holds
    /// the file's bytes, not zeros, so these are read whether populated or not. Sorted.
    file_backed: Vec<Range>,
    scratch: Vec<Range>,
    /// Threads that fingerprint large sets of pages, and from how many pages on.
    threads: (usize, u64),
    /// Watched pages per chunk of a `PAGEMAP_SCAN` check.
    chunk_pages: u64,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("pid", &self.pid)
            .field("ranges", &self.ranges)
            .field("detector", &self.detector)
            .field("bank", &self.bank.name())
            .finish()
    }
}

/// Where page contents come from.
#[derive(Debug)]
enum Source {
    /// Another process (or this one, safely): `/proc/PID/mem`.
    Remote(MemReader),
    /// This process's own memory, read in place (see [`Tracker::watch_own`]).
    InPlace,
}

impl Source {
    fn for_each_page_in(&mut self, ranges: &[Range], mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        match self {
            Source::Remote(r) => r.for_each_page_in(ranges, f),
            Source::InPlace => {
                // The hardware prefetcher stops at page boundaries, and written pages are
                // mostly far apart: ask for the page after next in the list (whichever range
                // it is in) while this one is fingerprinted, when it is not the page after
                // next in memory.
                let pages = || ranges.iter().flat_map(|r| (r.start..r.end).step_by(PAGE as usize));
                let mut ahead = pages().skip(PREFETCH_AHEAD);
                for addr in pages() {
                    // Not inside a contiguous stretch: there the 64 prefetches a page cost more
                    // than they save (1 GiB all written, two threads: 61–68 ms median
                    // without them against 74–80 ms with, same minute, loadavg 1–1.9).
                    if let Some(next) = ahead.next().filter(|&n| n != addr + PREFETCH_AHEAD as u64 * PAGE) {
                        prefetch_page(next);
                    }
                    // SAFETY: watch_own's contract: the ranges stay mapped and readable
                    // while the tracker lives, and nothing writes them during check().
                    let page = unsafe { std::slice::from_raw_parts(addr as *const u8, PAGE as usize) };
                    f(addr, page);
                }
                Ok(())
            }
        }
    }
}

/// How many pages ahead of the one being fingerprinted in place the next is prefetched.
const PREFETCH_AHEAD: usize = 2;

/// Below this many pages (128 MiB) one thread fingerprints them. A second thread pays off
/// only when the work is long against the wait for a core to run it: on a loaded machine
/// that wait is milliseconds, and at 2048 pages (the former threshold) a 1 GiB region with
/// 1 % written took 5.75 ms on two threads against 2.83 ms on one (`detect` bench, loadavg
/// ~7). 32768 pages are 10–20 ms of one core's fingerprinting.
pub const PARALLEL_MIN_PAGES: u64 = 32768;

/// The `(address, fingerprint)` of every page of `ranges`, in order, fingerprinted by
/// `threads` threads over consecutive shares of the pages (each reading its own share, in
/// place or through its own `/proc/PID/mem` descriptor): at 100 % written the fingerprint,
/// not the memory, is the bottleneck of one core.
fn fingerprints(
    source: &mut Source,
    pid: i32,
    ranges: &[Range],
    (threads, parallel_min): (usize, u64),
) -> Result<Vec<(u64, u64)>> {
    let total: u64 = ranges.iter().map(Range::pages).sum();
    let threads = if total < parallel_min { 1 } else { threads.max(1) };
    if threads == 1 {
        let mut out = Vec::with_capacity(total as usize);
        source.for_each_page_in(ranges, |addr, page| out.push((addr, fingerprint(page))))?;
        return Ok(out);
    }
    // Consecutive shares of about total / threads pages each.
    let share = total.div_ceil(threads as u64);
    let mut shares: Vec<Vec<Range>> = vec![Vec::new()];
    let mut left = share;
    for r in ranges {
        let mut start = r.start;
        while start < r.end {
            let take = ((r.end - start) / PAGE).min(left);
            shares.last_mut().expect("one share at least").push(Range::new(start, start + take * PAGE));
            start += take * PAGE;
            left -= take;
            if left == 0 {
                shares.push(Vec::new());
                left = share;
            }
        }
    }
    let in_place = matches!(source, Source::InPlace);
    let parts: Vec<Result<Vec<(u64, u64)>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = shares
            .iter()
            .filter(|sh| !sh.is_empty())
            .map(|sh| {
                sc.spawn(move || {
                    let mut src =
                        if in_place { Source::InPlace } else { Source::Remote(MemReader::new(pid)) };
                    let mut out = Vec::with_capacity(total_pages(sh) as usize);
                    src.for_each_page_in(sh, |addr, page| out.push((addr, fingerprint(page))))?;
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a fingerprint thread panicked")).collect()
    });
    let mut out = Vec::with_capacity(total as usize);
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Hints the CPU to load the page at `addr` into cache. Never faults.
#[inline]
fn prefetch_page(addr: u64) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..PAGE).step_by(64) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it never faults or reads into the program,
        // whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((addr + line) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

static BANK_SEQ: AtomicU64 = AtomicU64::new(0);

impl Tracker {
    /// Starts watching `ranges` (page aligned, mapped, not overlapping) of process `pid`:
    /// chooses the detector, arms it, then fingerprints every page into a new bank.
    pub fn watch(pid: i32, ranges: &[Range], opts: TrackerOptions) -> Result<Tracker> {
        let mut t = Tracker::setup(pid, ranges, opts)?;
        t.start()?;
        Ok(t)
    }

    fn setup(pid: i32, ranges: &[Range], opts: TrackerOptions) -> Result<Tracker> {
        let mut ranges = ranges.to_vec();
        ranges.sort();
        let maps = validate(pid, &ranges)?;
        let pagemap = Pagemap::open(pid)?;
        let me = std::process::id() as i32;
        let (detector, arm) = choose_detector(pid, me, &pagemap, &ranges, opts.detector)?;
        let pages: u64 = ranges.iter().map(Range::pages).sum();
        let bank = new_bank(opts.bank_name.as_deref(), me, pid, pages)?;
        let first_slot = first_slots(&ranges);
        let file_backed = file_backed(&maps, &ranges);
        Ok(Tracker {
            pid,
            file_backed,
            ranges,
            first_slot,
            pages,
            detector,
            pagemap,
            source: Source::Remote(MemReader::new(pid)),
            bank_owned: opts.bank_name.is_some(),
            bank,
            _arm: arm,
            written: PageSet::new(pages),
            changed: PageSet::new(pages),
            resident: PageSet::new(pages),
            pending: PageSet::new(pages),
            scratch: Vec::new(),
            threads: (
                opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                opts.parallel_min_pages.unwrap_or(PARALLEL_MIN_PAGES),
            ),
            chunk_pages: opts.check_chunk_pages.unwrap_or(CHECK_CHUNK_PAGES),
        })
    }

    /// Watches `ranges` of the calling process and reads them in place instead of through
    /// `/proc/PID/mem` (no system call, no copy: the fast path for a process tracking
    /// its own memory).
    ///
    /// # Safety
    /// The ranges must stay mapped and readable for the tracker's whole life, and no thread
    /// may write them while [`Tracker::watch_own`] or [`Tracker::check`] runs (a racing
    /// write is a data race on memory the tracker reads). Between checks they may be written
    /// freely.
    pub unsafe fn watch_own(ranges: &[Range], opts: TrackerOptions) -> Result<Tracker> {
        let me = std::process::id() as i32;
        let mut t = Tracker::setup(me, ranges, opts)?;
        t.source = Source::InPlace;
        t.start()?;
        Ok(t)
    }

    fn start(&mut self) -> Result<()> {
        // Arm before reading the baseline: a write racing with the read is then reported
        // as written at the next check (at worst as a silent write), never lost.
        self.collect_written()?;
        self.baseline()
    }

    /// Fingerprints the populated pages into the fresh bank. An unpopulated anonymous page
    /// reads as the zero page, whose fingerprint is 0 (the fingerprint is linear): its
    /// slot's fresh reference already says so, and it is never read, so that a reserved
    /// mapping costs nothing and gets no zero-page mappings from us. File-backed pages are
    /// read whether populated or not (reading one maps the file's page in the process,
    /// read-only: no copy is made).
    fn baseline(&mut self) -> Result<()> {
        let mut spans = Vec::new();
        for r in &self.ranges {
            populated(&self.pagemap, *r, &mut spans)?;
        }
        let spans = union(&spans, &self.file_backed);
        for (addr, fp) in fingerprints(&mut self.source, self.pid, &spans, self.threads)? {
            let slot = slot_of(&self.ranges, &self.first_slot, addr);
            self.resident.insert(slot);
            self.bank.load(slot, fp)?;
        }
        Ok(())
    }

    /// Follows a change of the process's mappings: watches `ranges` from now on. Pages in
    /// both the old and the new ranges keep their fingerprint as of the last check (for
    /// them this is a [`Tracker::checkpoint`]); new pages are baselined as the zero page —
    /// new anonymous memory starts zero-filled — and read at the next check, so that what
    /// was written into them since they were mapped counts as written then. The detector
    /// stays; when it cannot cover the new ranges (PAGEMAP_SCAN on another process's
    /// memory it has not armed) this fails and the caller starts a new tracker.
    pub fn remap(&mut self, ranges: &[Range]) -> Result<()> {
        let mut ranges = ranges.to_vec();
        ranges.sort();
        let maps = validate(self.pid, &ranges)?;
        let me = std::process::id() as i32;
        let mut arm = None;
        if self.detector == Detector::UffdWp && !is_armed(&self.pagemap, &ranges) {
            if self.pid != me {
                return Err(TrackError::Sys {
                    pid: self.pid,
                    call: "PAGEMAP_SCAN",
                    source: std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "the new mappings are not armed for async write-protection",
                    ),
                });
            }
            self._arm = None;
            arm = Some(WpArm::arm(&ranges)?);
        }
        let pages: u64 = ranges.iter().map(Range::pages).sum();
        let name = if self.bank_owned { Some(self.bank.name().to_owned()) } else { None };
        if let Some(n) = &name {
            let _ = Bank::destroy(n);
        }
        let bank = new_bank(name.as_deref(), me, self.pid, pages)?;
        let first_slot = first_slots(&ranges);
        let file_backed = file_backed(&maps, &ranges);
        let mut resident = PageSet::new(pages);
        let mut pending = PageSet::new(pages);
        // New file-backed pages are read now: their content before any write is the file's.
        let mut new_file = Vec::new();
        for (ri, r) in ranges.iter().enumerate() {
            for (i, addr) in (r.start..r.end).step_by(PAGE as usize).enumerate() {
                let slot = first_slot[ri] + i as u64;
                match self.slot_at(addr) {
                    Some(old) => {
                        bank.load(slot, self.bank.read(old)?)?;
                        if self.resident.contains(old) {
                            resident.insert(slot);
                        }
                        if self.pending.contains(old) {
                            pending.insert(slot);
                        }
                    }
                    None if contains(&file_backed, addr) => new_file.push(addr),
                    None => {
                        pending.insert(slot);
                    }
                }
            }
        }
        for (addr, fp) in fingerprints(&mut self.source, self.pid, &coalesce(new_file), self.threads)? {
            let slot = slot_of(&ranges, &first_slot, addr);
            resident.insert(slot);
            bank.load(slot, fp)?;
        }
        if arm.is_some() {
            self._arm = arm;
        }
        self.file_backed = file_backed;
        self.ranges = ranges;
        self.first_slot = first_slot;
        self.pages = pages;
        self.bank = bank;
        self.written = PageSet::new(pages);
        self.changed = PageSet::new(pages);
        self.resident = resident;
        self.pending = pending;
        Ok(())
    }

    /// The slot of the page at `addr`, if it is watched.
    fn slot_at(&self, addr: u64) -> Option<u64> {
        let ri = self.ranges.partition_point(|r| r.end <= addr);
        let r = self.ranges.get(ri)?;
        (r.start <= addr).then(|| self.first_slot[ri] + (addr - r.start) / PAGE)
    }

    /// Newly written pages since the previous call, as ranges, into `self.scratch`.
    fn collect_written(&mut self) -> Result<()> {
        self.scratch.clear();
        match self.detector {
            Detector::UffdWp => {
                for r in &self.ranges {
                    scan_written(&self.pagemap, *r, true, &mut self.scratch)?;
                }
            }
            Detector::SoftDirty => {
                let mut entries: Vec<PageEntry> = Vec::new();
                for r in &self.ranges {
                    self.pagemap.read(*r, &mut entries)?;
                    let dirty = entries
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.soft_dirty())
                        .map(|(i, _)| r.start + i as u64 * PAGE);
                    self.scratch.extend(coalesce(dirty));
                }
                clear_soft_dirty(self.pid)?;
            }
            // Only populated pages and file-backed ones: the others are the zero page (see
            // `baseline`).
            Detector::FullRescan => {
                for r in &self.ranges {
                    populated(&self.pagemap, *r, &mut self.scratch)?;
                }
                self.scratch = union(&self.scratch, &self.file_backed);
            }
        }
        if !self.pending.is_empty() {
            // New pages (see `remap`): their populated parts, whatever the detector saw.
            let mut pend = Vec::new();
            for r in coalesce(self.pending.iter().map(|s| slot_addr(&self.ranges, &self.first_slot, s))) {
                populated(&self.pagemap, r, &mut pend)?;
            }
            self.pending.clear();
            self.scratch = union(&self.scratch, &pend);
        }
        Ok(())
    }

    /// Re-reads the pages written since the last check, folds their fingerprint deltas into
    /// the bank, and reports written / changed / silent pages since the last checkpoint.
    pub fn check(&mut self) -> Result<CheckReport> {
        if self.detector == Detector::UffdWp && self.pending.is_empty() {
            // Walk and fingerprint chunk by chunk, on every thread (see `chunked`).
            let chunks = chunked::chunks(&self.ranges, &self.first_slot, self.chunk_pages);
            let check = chunked::Check {
                pagemap: &self.pagemap,
                pid: self.pid,
                bank: &self.bank,
                threads: self.threads.0,
            };
            let read = check.run(&mut self.source, &chunks, &mut self.written, &mut self.changed)?;
            return Ok(self.report(read));
        }
        self.collect_written()?;
        let todo = std::mem::take(&mut self.scratch);
        let fps = fingerprints(&mut self.source, self.pid, &todo, self.threads);
        self.scratch = todo;
        let fps = fps?;
        let pages_read = fps.len() as u64;
        let (bank, written, changed, det) = (&self.bank, &mut self.written, &mut self.changed, self.detector);
        let rescan = det == Detector::FullRescan;
        let mut now_resident = rescan.then(|| PageSet::new(self.pages));
        for (addr, fp) in fps {
            let slot = slot_of(&self.ranges, &self.first_slot, addr);
            if let Some(r) = now_resident.as_mut() {
                r.insert(slot);
            }
            fold(bank, written, changed, rescan, slot, fp)?;
        }
        if let Some(now) = now_resident {
            // Pages that were populated and are not any more read as the zero page now.
            for slot in self.resident.iter().filter(|&s| !now.contains(s)) {
                fold(bank, written, changed, rescan, slot, 0)?;
            }
            self.resident = now;
        }
        Ok(self.report(pages_read))
    }

    fn report(&self, pages_read: u64) -> CheckReport {
        let ranges = |runs: Vec<(u64, u64)>| slot_runs_to_ranges(&self.ranges, &self.first_slot, runs);
        let silent_observable = self.detector != Detector::FullRescan;
        CheckReport {
            detector: self.detector,
            written: ranges(self.written.runs()),
            changed: ranges(self.changed.runs()),
            silent: if silent_observable {
                ranges(self.written.runs_without(&self.changed))
            } else {
                Vec::new()
            },
            silent_observable,
            pages_read,
        }
    }

    /// Whether any page's content differs from the checkpoint, as of the last check. O(1).
    pub fn anything_changed(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Pages whose content differs from the checkpoint, as of the last check. O(1).
    pub fn changed_count(&self) -> u64 {
        self.changed.len()
    }

    /// SWAPs every changed slot (the current content becomes the baseline) and forgets the
    /// written pages. Costs O(changed pages) bank operations.
    pub fn checkpoint(&mut self) -> Result<()> {
        for s in self.changed.iter() {
            self.bank.swap(s)?;
        }
        self.changed.clear();
        self.written.clear();
        Ok(())
    }

    /// The detector in use.
    pub fn detector(&self) -> Detector {
        self.detector
    }

    /// The watched process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The watched ranges, sorted.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Pages watched (= bank slots).
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The bank holding one fingerprint per page, slot `i` = `i`-th watched page.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// Keep a named bank ([`TrackerOptions::bank_name`]) after the tracker is dropped, for
    /// inspection with atomikctl. An unnamed bank goes with the tracker whatever this says.
    pub fn keep_bank(&mut self) {
        self.bank_owned = false;
    }
}

/// Folds a page's current fingerprint `now` into its slot: marks it written (a rescan: only
/// when its content changed) and changed or not.
fn fold(
    bank: &Bank,
    written: &mut PageSet,
    changed: &mut PageSet,
    rescan: bool,
    slot: u64,
    now: u64,
) -> crate::Result<()> {
    // An unchanged fingerprint leaves the accumulator, and so the changed set, as it was.
    match fold_one(bank, slot, now)? {
        Fold::Same if rescan => {}
        f => apply(written, changed, slot, f),
    }
    Ok(())
}

/// The slot of watched address `addr`.
fn slot_of(ranges: &[Range], first_slot: &[u64], addr: u64) -> u64 {
    let ri = ranges.partition_point(|r| r.end <= addr);
    first_slot[ri] + (addr - ranges[ri].start) / PAGE
}

/// The address of `slot`.
fn slot_addr(ranges: &[Range], first_slot: &[u64], slot: u64) -> u64 {
    let ri = first_slot.partition_point(|&f| f <= slot) - 1;
    ranges[ri].start + (slot - first_slot[ri]) * PAGE
}

/// Runs of slots (from [`PageSet::runs`]) as sorted address ranges, split where a run
/// crosses from one watched range into the next, joined where the addresses meet.
fn slot_runs_to_ranges(ranges: &[Range], first_slot: &[u64], runs: Vec<(u64, u64)>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::with_capacity(runs.len());
    for (mut s, e) in runs {
        while s < e {
            let ri = first_slot.partition_point(|&f| f <= s) - 1;
            let t = e.min(first_slot[ri] + ranges[ri].pages());
            let start = ranges[ri].start + (s - first_slot[ri]) * PAGE;
            let end = start + (t - s) * PAGE;
            match out.last_mut() {
                Some(l) if l.end == start => l.end = end,
                _ => out.push(Range::new(start, end)),
            }
            s = t;
        }
    }
    out
}

/// The first slot of each of `ranges`.
fn first_slots(ranges: &[Range]) -> Vec<u64> {
    let mut out = Vec::with_capacity(ranges.len());
    let mut s = 0;
    for r in ranges {
        out.push(s);
        s += r.pages();
    }
    out
}

/// The parts of sorted `ranges` that `maps` says are not private anonymous memory.
fn file_backed(maps: &[Mapping], ranges: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    for m in maps.iter().filter(|m| !m.is_private_anon()) {
        clip(ranges, m.range, &mut out);
    }
    out.sort();
    out
}

/// Two sorted lists of ranges merged into one sorted list without overlaps.
fn union(a: &[Range], b: &[Range]) -> Vec<Range> {
    let mut all: Vec<Range> = a.iter().chain(b).copied().collect();
    all.sort();
    let mut out: Vec<Range> = Vec::with_capacity(all.len());
    for r in all {
        match out.last_mut() {
            Some(l) if r.start <= l.end => l.end = l.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The fingerprint bank: named in the bank directory when the caller asked for a name,
/// otherwise unnamed.
fn new_bank(name: Option<&str>, me: i32, pid: i32, pages: u64) -> Result<Bank> {
    let opts = CreateOptions::new(pages).op(Op::Xor);
    Ok(match name {
        Some(n) => Bank::create(n, opts)?,
        None => {
            let n = BANK_SEQ.fetch_add(1, Ordering::Relaxed);
            Bank::create_unnamed(&format!("track.{me}.{pid}.{n}"), opts)?
        }
    })
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.bank_owned {
            let _ = Bank::destroy(self.bank.name());
        }
    }
}

/// Checks `ranges` against the process's mappings, which it returns.
fn validate(pid: i32, ranges: &[Range]) -> Result<Vec<Mapping>> {
    let bad = |r: &Range, why| TrackError::BadRange { pid, start: r.start, end: r.end, why };
    if ranges.is_empty() {
        return Err(TrackError::BadRange { pid, start: 0, end: 0, why: "no range to watch" });
    }
    let maps = read_maps(Path::new("/proc"), pid)?;
    for (i, r) in ranges.iter().enumerate() {
        if !r.is_page_aligned() {
            return Err(bad(r, "not page aligned or empty"));
        }
        if i > 0 && ranges[i - 1].end > r.start {
            return Err(bad(r, "overlaps another watched range"));
        }
        // Covered by readable mappings with no gap.
        let mut at = r.start;
        for m in maps.iter().filter(|m| m.range.end > r.start && m.range.start < r.end) {
            if m.range.start > at || !m.read {
                break;
            }
            at = m.range.end;
        }
        if at < r.end {
            return Err(bad(r, "not entirely mapped and readable"));
        }
    }
    Ok(maps)
}

fn choose_detector(
    pid: i32,
    me: i32,
    pm: &Pagemap,
    ranges: &[Range],
    forced: Option<Detector>,
) -> Result<(Detector, Option<WpArm>)> {
    let armed = || is_armed(pm, ranges);
    let unavailable =
        |d: Detector, why: String| TrackError::DetectorUnavailable { pid, detector: d.name(), why };
    match forced {
        Some(Detector::FullRescan) => Ok((Detector::FullRescan, None)),
        Some(Detector::SoftDirty) if soft_dirty_supported() => Ok((Detector::SoftDirty, None)),
        Some(Detector::SoftDirty) => Err(unavailable(
            Detector::SoftDirty,
            "this kernel keeps no soft-dirty bits (built without CONFIG_MEM_SOFT_DIRTY)".into(),
        )),
        Some(Detector::UffdWp) if pid == me && !armed() => match WpArm::arm(ranges) {
            Ok(a) => Ok((Detector::UffdWp, Some(a))),
            Err(e) => Err(unavailable(Detector::UffdWp, arm_failure(&e))),
        },
        Some(Detector::UffdWp) if armed() => Ok((Detector::UffdWp, None)),
        Some(Detector::UffdWp) => Err(unavailable(Detector::UffdWp, scan_failure(pm, ranges))),
        None => {
            if armed() {
                Ok((Detector::UffdWp, None))
            } else if pid == me {
                match WpArm::arm(ranges) {
                    Ok(a) => Ok((Detector::UffdWp, Some(a))),
                    Err(_) if soft_dirty_supported() => Ok((Detector::SoftDirty, None)),
                    Err(_) => Ok((Detector::FullRescan, None)),
                }
            } else if soft_dirty_supported() {
                Ok((Detector::SoftDirty, None))
            } else {
                Ok((Detector::FullRescan, None))
            }
        }
    }
}

/// Why arming async write-protection failed, named by what the kernel or the memory lacks.
fn arm_failure(e: &TrackError) -> String {
    let TrackError::Sys { call, source, .. } = e else { return e.to_string() };
    match (*call, source.raw_os_error()) {
        ("userfaultfd", Some(libc::ENOSYS)) => {
            "this kernel has no userfaultfd (built without CONFIG_USERFAULTFD)".into()
        }
        ("userfaultfd", Some(libc::EPERM)) => {
            format!("userfaultfd is not permitted here ({source}: seccomp or vm.unprivileged_userfaultfd)")
        }
        ("UFFDIO_API(WP_ASYNC)", Some(libc::EINVAL)) => {
            "this kernel has no async userfaultfd write-protection (UFFD_FEATURE_WP_ASYNC, \
             Linux >= 6.7, CONFIG_HAVE_ARCH_USERFAULTFD_WP)"
                .into()
        }
        ("UFFDIO_REGISTER(WP)", Some(libc::EINVAL)) => {
            "the memory cannot be write-protected by userfaultfd (only private anonymous and \
             shmem memory can)"
                .into()
        }
        _ => e.to_string(),
    }
}

/// Why `PAGEMAP_SCAN` cannot report written pages of `ranges` (another process's memory
/// that [`is_armed`] said no to): the kernel lacks the ioctl, or the memory is not armed.
fn scan_failure(pm: &Pagemap, ranges: &[Range]) -> String {
    let mut sink = Vec::new();
    let errno = ranges.iter().find_map(|r| match scan_written(pm, *r, false, &mut sink) {
        Err(TrackError::Sys { source, .. }) => Some(source.raw_os_error()),
        _ => None,
    });
    scan_errno_reason(errno.flatten())
}

/// [`scan_failure`] by the errno of the failed `PAGEMAP_SCAN`.
fn scan_errno_reason(errno: Option<i32>) -> String {
    match errno {
        Some(libc::ENOTTY) => "this kernel has no PAGEMAP_SCAN (Linux >= 6.7)".into(),
        _ => "the memory is not armed for async write-protection (the process must arm it \
              itself with atomik::track::scan::WpArm)"
            .into(),
    }
}

#[cfg(test)]
mod detector_reason_tests {
    use super::*;

    fn sys(call: &'static str, errno: i32) -> TrackError {
        TrackError::Sys { pid: 1, call, source: std::io::Error::from_raw_os_error(errno) }
    }

    #[test]
    fn arm_failures_name_what_is_missing() {
        assert!(arm_failure(&sys("userfaultfd", libc::ENOSYS)).contains("CONFIG_USERFAULTFD"));
        assert!(arm_failure(&sys("UFFDIO_API(WP_ASYNC)", libc::EINVAL)).contains("UFFD_FEATURE_WP_ASYNC"));
        assert!(arm_failure(&sys("UFFDIO_REGISTER(WP)", libc::EINVAL)).contains("private anonymous"));
        // Anything else keeps the call and the system's words.
        let other = arm_failure(&sys("UFFDIO_WRITEPROTECT", libc::ENOMEM));
        assert!(other.contains("UFFDIO_WRITEPROTECT") && other.contains("memory"), "{other}");
    }

    #[test]
    fn scan_failures_tell_an_old_kernel_from_unarmed_memory() {
        assert!(scan_errno_reason(Some(libc::ENOTTY)).contains("no PAGEMAP_SCAN"));
        assert!(scan_errno_reason(Some(libc::EPERM)).contains("not armed"));
    }
}
