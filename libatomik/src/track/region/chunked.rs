//! The check of memory armed for async write-protection, split into chunks of the watched
//! ranges that the threads take in turn. Each chunk is walked with `PAGEMAP_SCAN` (which
//! re-protects the pages it reports) and its written pages are fingerprinted and folded
//! into the bank by the thread that walked it, so that the kernel's walk of one chunk runs
//! beside the fingerprinting of another, and a page is read while its page-table entries
//! are still in cache.
//!
//! Before, the whole walk ran first and then the fingerprints: at 100 % of 1 GiB written the
//! walk took 9 ms and the fold of the fingerprints into the bank 6 ms, on one core, on top
//! of the fingerprinting; at 1 % the walk (0.6 ms) was a third of the check.
//!
//! Chunks are taken from a shared counter rather than split into fixed halves: on a loaded
//! machine a second thread may get no core for milliseconds, and the first thread then
//! takes every chunk itself, so the check costs what one thread costs plus the spawn.

use super::{fingerprint, Bank, PageSet, Range, Result, Source, PAGE};
use crate::track::memread::MemReader;
use crate::track::pagemap::Pagemap;
use crate::track::scan::scan_written;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Watched pages per chunk by default (16 MiB): 64 chunks in 1 GiB, enough for two threads
/// to share evenly at 100 % written (16384-page chunks: 57 ms median where 4096 gave 50 ms,
/// 1 GiB, idle machine), while the walk's cost per `PAGEMAP_SCAN` call (the mmap lock, the
/// MMU notifier) stays small at 1 % (1.9 against 2.0 ms).
pub const CHECK_CHUNK_PAGES: u64 = 4096;

/// A piece of one watched range and the slot of its first page.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chunk {
    range: Range,
    first_slot: u64,
}

/// `ranges` (with their first slots) cut into chunks of at most `pages` pages.
pub(super) fn chunks(ranges: &[Range], first_slot: &[u64], pages: u64) -> Vec<Chunk> {
    let step = pages.max(1) * PAGE;
    let mut out = Vec::new();
    for (r, &slot) in ranges.iter().zip(first_slot) {
        for start in (r.start..r.end).step_by(step as usize) {
            let range = Range::new(start, (start + step).min(r.end));
            out.push(Chunk { range, first_slot: slot + (start - r.start) / PAGE });
        }
    }
    out
}

/// What folding one written page into its slot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// Its fingerprint equals the slot's state: the accumulator was not touched.
    Same,
    /// The accumulator is now the identity: the page equals its checkpoint content.
    Clean,
    /// The accumulator is not the identity: the page differs from its checkpoint.
    Dirty,
}

/// Folds a page's current fingerprint `now` into `slot`: ACCUMulates `now ⊕ state`.
pub(super) fn fold_one(bank: &Bank, slot: u64, now: u64) -> crate::Result<Fold> {
    let before = bank.read(slot)?;
    if now == before {
        return Ok(Fold::Same);
    }
    bank.accum(slot, now ^ before)?;
    Ok(if bank.is_clean(slot)? { Fold::Clean } else { Fold::Dirty })
}

/// Records a fold in the written and changed sets.
pub(super) fn apply(written: &mut PageSet, changed: &mut PageSet, slot: u64, fold: Fold) {
    written.insert(slot);
    match fold {
        Fold::Same => {}
        Fold::Clean => {
            changed.remove(slot);
        }
        Fold::Dirty => {
            changed.insert(slot);
        }
    }
}

/// Where a chunked check runs and what it updates.
pub(super) struct Check<'a> {
    pub pagemap: &'a Pagemap,
    pub pid: i32,
    pub bank: &'a Bank,
    pub threads: usize,
}

/// A chunk of our own memory counts as dense, and the check calls in the other threads,
/// when at least this share of its pages was written (1 in 4).
const DENSE_SHARE: u64 = 4;

impl Check<'_> {
    /// Walks, fingerprints and folds every chunk, then records the folds in `written` and
    /// `changed`; returns the pages read. On an error the folds already made are still
    /// recorded, so the bank and the sets agree, and the first error is returned.
    ///
    /// The other threads (each reading in place or with its own `/proc/PID/mem`) start only
    /// once a chunk turned out dense: while a thread of the watched process runs on another
    /// core, every re-protection of the walk interrupts that core to flush its TLB (at 1 %
    /// of 1 GiB written two threads took 4–5.7 ms where one took 1.5–1.9 ms; starting them
    /// at once for `/proc/PID/mem` of our own process took 2.8 ms at 0.1 % against 1.0), which
    /// pays off only when there are many pages to fingerprint.
    pub fn run(
        &self,
        source: &mut Source,
        chunks: &[Chunk],
        written: &mut PageSet,
        changed: &mut PageSet,
    ) -> Result<u64> {
        let next = AtomicUsize::new(0);
        let helpers = self.threads.clamp(1, chunks.len().max(1)) - 1;
        let in_place = matches!(source, Source::InPlace);
        let mut parts: Vec<Part> = Vec::with_capacity(helpers + 1);
        let mut read = 0;
        std::thread::scope(|sc| {
            let mut handles = Vec::new();
            let mut spawn = || {
                for _ in 0..helpers {
                    let next = &next;
                    handles.push(sc.spawn(move || {
                        let mut src =
                            if in_place { Source::InPlace } else { Source::Remote(MemReader::new(self.pid)) };
                        let (mut out, mut w) = (Vec::new(), Work::default());
                        let r = (|| {
                            while let Some(c) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                                w.chunk(self, &mut src, c, &mut out)?;
                            }
                            Ok(())
                        })();
                        (out, r)
                    }));
                }
            };
            let mut spawned = helpers == 0;
            // This thread records its own folds as it goes (while the others still work).
            let (mut out, mut w) = (Vec::new(), Work::default());
            let r = (|| {
                while let Some(c) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                    out.clear();
                    let n = w.chunk(self, source, c, &mut out)?;
                    read += n;
                    for &(slot, f) in &out {
                        apply(written, changed, slot, f);
                    }
                    if !spawned && n * DENSE_SHARE >= c.range.pages() {
                        spawn();
                        spawned = true;
                    }
                }
                Ok(())
            })();
            parts.push((Vec::new(), r));
            parts.extend(handles.into_iter().map(|h| h.join().expect("a check thread panicked")));
        });
        let mut first_err = None;
        for (folds, r) in parts {
            read += folds.len() as u64;
            for (slot, f) in folds {
                apply(written, changed, slot, f);
            }
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(read), Err)
    }
}

/// What one thread of a check did: its folds (not yet recorded), and how it ended.
type Part = (Vec<(u64, Fold)>, Result<()>);

/// One thread's buffers.
#[derive(Default)]
struct Work {
    found: Vec<Range>,
    fps: Vec<(u64, u64)>,
}

impl Work {
    /// Walks chunk `c`, fingerprints its written pages, then folds them into the bank (a
    /// separate pass: the `lock xor` of a fold stalls the reads of the next pages when it is
    /// done between them, and the chunk's slots are neighbours), appending `(slot, fold)`
    /// to `out`. Returns the pages written.
    fn chunk(
        &mut self,
        check: &Check<'_>,
        source: &mut Source,
        c: &Chunk,
        out: &mut Vec<(u64, Fold)>,
    ) -> Result<u64> {
        self.found.clear();
        scan_written(check.pagemap, c.range, true, &mut self.found)?;
        self.fps.clear();
        let fps = &mut self.fps;
        source.for_each_page_in(&self.found, |addr, page| {
            fps.push((c.first_slot + (addr - c.range.start) / PAGE, fingerprint(page)))
        })?;
        for &(slot, fp) in &self.fps {
            out.push((slot, fold_one(check.bank, slot, fp)?));
        }
        Ok(self.fps.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_page_once_with_its_slot() {
        let ranges = [Range::new(0x10000, 0x10000 + 5 * PAGE), Range::new(0x40000, 0x40000 + 2 * PAGE)];
        let c = chunks(&ranges, &[0, 5], 2);
        let got: Vec<(u64, u64, u64)> =
            c.iter().map(|c| (c.range.start, c.range.pages(), c.first_slot)).collect();
        assert_eq!(
            got,
            [(0x10000, 2, 0), (0x10000 + 2 * PAGE, 2, 2), (0x10000 + 4 * PAGE, 1, 4), (0x40000, 2, 5)]
        );
    }
}
