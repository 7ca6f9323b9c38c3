//! Copy-on-write sharing and COW breaks of anonymous memory, from pagemap.
//!
//! A present private-anonymous page that is not exclusively mapped (pagemap bit 56 clear)
//! is shared copy-on-write: after `fork`, or merged by KSM. Pages mapping the shared zero
//! page are not counted (found with `PAGEMAP_SCAN`'s `PAGE_IS_PFNZERO`).
//!
//! A COW break between two samples is an address whose page was shared in the first and is
//! exclusive in the second. What the data can show depends on privileges:
//! - everyone: the page became exclusive (`became_exclusive`);
//! - with page frame numbers (CAP_SYS_ADMIN): whether *this* process got a new page there
//!   (`copied`: the PFN changed, a copy was made here), or kept the original because the
//!   other sharers left (the PFN is unchanged);
//! - for a copy in a child whose parent still maps the original page at the same address
//!   (same PFN as before), the copy and its origin can be compared byte for byte
//!   ([`identical_copies`]): an identical copy was a write that did not need a copy.

use super::error::Result;
use super::maps::read_maps;
use super::memread::MemReader;
use super::pagemap::{PageEntry, Pagemap};
use super::ranges::{clip, coalesce, Range, PAGE};
use super::scan::{populated, populated_and_zero};
use std::path::Path;

/// One process's private anonymous memory at one moment.
#[derive(Debug, Clone, Default)]
pub struct AnonSample {
    /// The process.
    pub pid: i32,
    /// Present private-anonymous pages (not counting zero-page mappings).
    pub present: u64,
    /// Of those, mapped only here.
    pub exclusive: u64,
    /// Of those, shared copy-on-write (or KSM-merged): `(address, pfn or 0)`, sorted.
    pub shared: Vec<(u64, u64)>,
    /// Exclusive pages as ranges (the candidates for duplicate detection).
    pub exclusive_ranges: Vec<Range>,
    /// Addresses mapping the shared zero page.
    pub zero_pages: u64,
    /// Swapped-out pages.
    pub swapped: u64,
    /// Whether PFNs were visible (CAP_SYS_ADMIN).
    pub pfn_visible: bool,
    /// Whether zero-page mappings could be told apart (PAGEMAP_SCAN available).
    pub zero_page_known: bool,
}

/// Reads the pagemap of every private anonymous mapping of `pid`.
pub fn sample_anon(proc_root: &Path, pid: i32) -> Result<AnonSample> {
    let maps = read_maps(proc_root, pid)?;
    let pm = Pagemap::open_in(proc_root, pid)?;
    let mut s = AnonSample { pid, zero_page_known: true, ..Default::default() };
    let mut entries: Vec<PageEntry> = Vec::new();
    let mut zero: Vec<Range> = Vec::new();
    let mut excl_addrs: Vec<u64> = Vec::new();
    let mut spans: Vec<Range> = Vec::new();
    let anon: Vec<Range> = maps.iter().filter(|m| m.is_private_anon()).map(|m| m.range).collect();
    // Only populated pages: a mapping may reserve terabytes and use megabytes. With
    // PAGEMAP_SCAN one walk over each run of adjacent private anonymous mappings (a thread's
    // stack and its guard page are one run) gives them and the zero-page mappings among
    // them, clipped to each mapping below. Not one walk from the first to the last: that
    // also walks the page tables of the libraries mapped between (`bench exporter`, every
    // process changed: 43.0–44.0 ms a sample against 46.8–49.3 ms, same minute, idle).
    // (The swapped spans are not needed: the pagemap entries say it.)
    let (mut all_spans, mut all_zero, mut all_swapped) = (Vec::new(), Vec::new(), Vec::new());
    let mut runs: Vec<Range> = Vec::new();
    for m in &anon {
        match runs.last_mut() {
            Some(r) if r.end == m.start => r.end = m.end,
            _ => runs.push(*m),
        }
    }
    for run in runs {
        s.zero_page_known &=
            populated_and_zero(&pm, run, &mut all_spans, &mut all_zero, &mut all_swapped).is_ok();
    }
    for m in &anon {
        zero.clear();
        spans.clear();
        if s.zero_page_known {
            clip(&all_spans, *m, &mut spans);
            clip(&all_zero, *m, &mut zero);
        } else {
            populated(&pm, *m, &mut spans)?;
        }
        // One pagemap read for spans a few pages apart: the entries between are of
        // unpopulated pages, which count for nothing below.
        merge_close(&mut spans, PAGEMAP_GAP_PAGES * PAGE);
        let mut zi = 0;
        for span in &spans {
            pm.read(*span, &mut entries)?;
            for (i, e) in entries.iter().enumerate() {
                let addr = span.start + i as u64 * PAGE;
                if e.swapped() {
                    s.swapped += 1;
                }
                if !e.anon_present() {
                    continue;
                }
                while zi < zero.len() && zero[zi].end <= addr {
                    zi += 1;
                }
                if zi < zero.len() && zero[zi].start <= addr {
                    s.zero_pages += 1;
                    continue;
                }
                s.present += 1;
                s.pfn_visible |= e.pfn().is_some();
                if e.exclusive() {
                    s.exclusive += 1;
                    excl_addrs.push(addr);
                } else {
                    s.shared.push((addr, e.pfn().unwrap_or(0)));
                }
            }
        }
    }
    s.exclusive_ranges = coalesce(excl_addrs);
    Ok(s)
}

/// Spans of unpopulated pages up to this long are read with their neighbours in one
/// pagemap read (8 bytes a page) rather than split into two reads.
const PAGEMAP_GAP_PAGES: u64 = 64;

/// Joins sorted ranges separated by at most `gap` bytes.
fn merge_close(ranges: &mut Vec<Range>, gap: u64) {
    ranges.dedup_by(|next, prev| {
        let close = next.start - prev.end <= gap;
        if close {
            prev.end = next.end;
        }
        close
    });
}

/// Reads the pagemap entries of `pid` at sorted `addrs`.
fn entries_at(pm: &Pagemap, addrs: impl Iterator<Item = u64> + Clone) -> Result<Vec<PageEntry>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for r in coalesce(addrs) {
        pm.read(r, &mut buf)?;
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

/// COW breaks of one process between `before` and now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CowBreaks {
    /// Pages shared in `before` and exclusive now, at the same address.
    pub became_exclusive: u64,
    /// Of those, pages copied in this process (new PFN). `None` without PFNs.
    pub copied: Option<u64>,
    /// The copied pages: `(address, PFN of the page shared before)`.
    pub copied_pages: Vec<(u64, u64)>,
}

/// Compares `before` with the current pagemap of its process.
pub fn cow_breaks(proc_root: &Path, before: &AnonSample) -> Result<CowBreaks> {
    let mut b = CowBreaks { copied: before.pfn_visible.then_some(0), ..Default::default() };
    if before.shared.is_empty() {
        // Nothing was shared: nothing to break, and no pagemap to open.
        return Ok(b);
    }
    let pm = Pagemap::open_in(proc_root, before.pid)?;
    let now = entries_at(&pm, before.shared.iter().map(|&(a, _)| a))?;
    for (&(addr, old_pfn), e) in before.shared.iter().zip(&now) {
        if !(e.anon_present() && e.exclusive()) {
            continue;
        }
        b.became_exclusive += 1;
        if let (Some(c), Some(pfn)) = (b.copied.as_mut(), e.pfn()) {
            if pfn != old_pfn {
                *c += 1;
                b.copied_pages.push((addr, old_pfn));
            }
        }
    }
    Ok(b)
}

/// Copies compared with their origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdenticalCopies {
    /// Copies whose origin the parent still maps at the same address (comparable).
    pub compared: u64,
    /// Of those, byte-identical to the origin.
    pub identical: u64,
}

/// For the pages `child` copied (from [`cow_breaks`]), compares each copy with the page
/// `parent` maps at the same address when that page is still the origin (same PFN).
pub fn identical_copies(
    proc_root: &Path,
    child: i32,
    parent: i32,
    copied: &[(u64, u64)],
) -> Result<IdenticalCopies> {
    let pm = Pagemap::open_in(proc_root, parent)?;
    let now = entries_at(&pm, copied.iter().map(|&(a, _)| a))?;
    let mut out = IdenticalCopies::default();
    let (mut rc, mut rp) = (MemReader::new(child), MemReader::new(parent));
    for (&(addr, origin), e) in copied.iter().zip(&now) {
        if e.pfn() != Some(origin) {
            continue;
        }
        let r = Range::new(addr, addr + PAGE);
        let mut a = Vec::with_capacity(PAGE as usize);
        rc.for_each_page(r, |_, p| a.extend_from_slice(p))?;
        let mut same = false;
        rp.for_each_page(r, |_, p| same = p == &a[..])?;
        out.compared += 1;
        out.identical += same as u64;
    }
    Ok(out)
}
