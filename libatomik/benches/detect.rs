//! Detection time for a watched region at 0.1 %, 1 %, 10 % and 100 % of pages written: the
//! region tracker against a full memcmp with a snapshot and a full xxh3 rescan, all in the
//! same run over the same memory. Prints a Markdown table.
//!
//! `cargo bench -p atomik --bench detect` (1 GiB; `ATOMIK_DETECT_MIB=256` for a smaller
//! region, `ATOMIK_DETECT_REPS` repetitions per cell, median reported).
//!
//! Every method must find exactly the written pages (each write changes its page); the run
//! aborts otherwise. The tracker watches this process's own memory, so it finds written
//! pages with PAGEMAP_SCAN over userfaultfd write-protection where the kernel has it (the
//! detector is printed). It runs twice: reading pages in place (`Tracker::watch_own`, a
//! process tracking itself) against the in-place baselines, and reading them through
//! /proc/PID/mem (how it reads another process) against an xxh3 rescan that reads the
//! same way.
//!
//! A second table gives the floor of any tracker built on `PAGEMAP_SCAN`: the walk alone
//! (the same ioctl with re-protection, no fingerprint) plus a plain read of just the k
//! written pages (the same scattered list, in place and through /proc/PID/mem). Both are
//! timed after the k pages were written again with the words already there, so the walk
//! finds the same k pages and the pages' cache state is the tracker's.

use atomik::track::fingerprint::Kernel;
use atomik::track::memread::MemReader;
use atomik::track::pagemap::Pagemap;
use atomik::track::ranges::{coalesce, total_pages, Range, PAGE};
use atomik::track::region::{Tracker, TrackerOptions};
use atomik::track::scan::scan_written;
use memmap2::{Advice, MmapMut};
use std::time::{Duration, Instant};
use xxhash_rust::xxh3::xxh3_64;

const FRACTIONS: [f64; 4] = [0.001, 0.01, 0.1, 1.0];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The wrapping sum of the words of `bytes`: a plain read of every byte.
fn sum_words(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0u64, |s, w| s.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap())))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run tiny then.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let mib = if bench_mode { env("ATOMIK_DETECT_MIB", 1024) } else { 16 };
    let reps = if bench_mode { env("ATOMIK_DETECT_REPS", 5) } else { 1 } as usize;
    let pages = (mib << 20) as usize / PAGE as usize;
    let len = pages * PAGE as usize;

    let mut map = MmapMut::map_anon(len).unwrap_or_else(|e| panic!("mmap {mib} MiB: {e}"));
    // 4 KiB pages: the tracker reports 4 KiB pages and the baselines compare 4 KiB pages
    // (advice only: a kernel without THP refuses it, and then there are none anyway).
    let _ = map.advise(Advice::NoHugePage);
    // Only used through this slice (and by the kernel on behalf of the tracker, which only
    // reads it).
    let region: &mut [u8] = &mut map;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for w in region.chunks_exact_mut(8) {
        w.copy_from_slice(&rng.next().to_le_bytes());
    }
    let base = region.as_ptr() as u64;
    let range = Range::new(base, base + len as u64);

    let me = std::process::id() as i32;
    let mut snapshot = region.to_vec();
    let mut hashes: Vec<u64> = region.chunks_exact(PAGE as usize).map(xxh3_64).collect();
    let mut reader = MemReader::new(me);

    // Two sweeps over the same memory: the tracker reading in place (a process tracking its
    // own memory), then reading through /proc/PID/mem (how it reads another process).
    // The baselines run in both; each is compared with the matching tracker.
    let mut results: Vec<[Duration; 7]> = vec![[Duration::ZERO; 7]; FRACTIONS.len()];
    // The floor: [walk alone, read of the k pages in place, the same through /proc/PID/mem].
    let mut floor: Vec<[Duration; 3]> = vec![[Duration::ZERO; 3]; FRACTIONS.len()];
    let pagemap = Pagemap::open(me).expect("/proc/self/pagemap");
    let mut detector = "";
    let mut order: Vec<usize> = (0..pages).collect();
    let mut offs: Vec<usize> = Vec::new();
    let mut found: Vec<Range> = Vec::new();
    for in_place in [true, false] {
        let mut tracker = if in_place {
            // SAFETY: the region stays mapped until after the tracker is dropped, and this
            // single thread never writes it while watch_own or check runs.
            unsafe { Tracker::watch_own(&[range], TrackerOptions::default()) }
        } else {
            Tracker::watch(me, &[range], TrackerOptions::default())
        }
        .expect("watch");
        detector = tracker.detector().name();
        for (fi, f) in FRACTIONS.iter().enumerate() {
            let k = ((pages as f64 * f).round() as usize).max(1);
            let (mut tt, mut tm, mut tx, mut tr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut tw, mut tk) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                // k distinct random pages, one word changed in each.
                for i in 0..k {
                    let j = i + (rng.next() as usize) % (pages - i);
                    order.swap(i, j);
                }
                offs.clear();
                for &pg in &order[..k] {
                    let off = pg * PAGE as usize + (rng.next() as usize % 512) * 8;
                    let old = u64::from_le_bytes(region[off..off + 8].try_into().unwrap());
                    region[off..off + 8].copy_from_slice(&(old ^ (rng.next() | 1)).to_le_bytes());
                    offs.push(off);
                }

                let t0 = Instant::now();
                let r = tracker.check().expect("check");
                tt.push(t0.elapsed());
                assert_eq!(r.changed_pages(), k as u64, "tracker changed pages");
                assert_eq!(r.written_pages(), k as u64, "tracker written pages");

                if in_place {
                    let t0 = Instant::now();
                    let n = region
                        .chunks_exact(PAGE as usize)
                        .zip(snapshot.chunks_exact(PAGE as usize))
                        .filter(|(a, b)| a != b)
                        .count();
                    tm.push(t0.elapsed());
                    assert_eq!(n, k, "memcmp changed pages");
                }

                let t0 = Instant::now();
                let mut n = 0;
                let mut rescan = |pg: &[u8], h: &mut u64| {
                    let x = xxh3_64(pg);
                    if x != *h {
                        *h = x;
                        n += 1;
                    }
                };
                if in_place {
                    for (pg, h) in region.chunks_exact(PAGE as usize).zip(hashes.iter_mut()) {
                        rescan(pg, h);
                    }
                } else {
                    let mut hi = hashes.iter_mut();
                    reader
                        .for_each_page(range, |_, pg| rescan(pg, hi.next().unwrap()))
                        .expect("/proc/PID/mem");
                }
                tx.push(t0.elapsed());
                assert_eq!(n, k, "xxh3 changed pages");

                // The floor of any method that looks at every byte: one plain read pass (a
                // sum of the words), in place or through /proc/PID/mem.
                let t0 = Instant::now();
                let mut sum = 0u64;
                if in_place {
                    sum = sum_words(region);
                } else {
                    reader
                        .for_each_page(range, |_, pg| sum = sum.wrapping_add(sum_words(pg)))
                        .expect("/proc/PID/mem");
                }
                std::hint::black_box(sum);
                tr.push(t0.elapsed());

                // The floor of a PAGEMAP_SCAN tracker: write the k words again with the
                // values they hold (the kernel marks the pages written, the content stays),
                // then time the same walk with re-protection alone, and a plain read of the
                // k pages alone.
                for &off in &offs {
                    // SAFETY: `off` is a word of the region; a volatile store of its own
                    // value makes the write happen.
                    unsafe {
                        let w = region.as_mut_ptr().add(off) as *mut u64;
                        std::ptr::write_volatile(w, std::ptr::read_volatile(w));
                    }
                }
                found.clear();
                let t0 = Instant::now();
                scan_written(&pagemap, range, true, &mut found).expect("PAGEMAP_SCAN");
                tw.push(t0.elapsed());
                assert_eq!(total_pages(&found), k as u64, "walk alone: written pages");
                let written = coalesce({
                    let mut a: Vec<u64> = order[..k].iter().map(|&pg| base + (pg as u64) * PAGE).collect();
                    a.sort_unstable();
                    a
                });
                let t0 = Instant::now();
                let mut sum = 0u64;
                if in_place {
                    for r in &written {
                        let at = (r.start - base) as usize..(r.end - base) as usize;
                        sum = sum.wrapping_add(sum_words(&region[at]));
                    }
                } else {
                    reader
                        .for_each_page_in(&written, |_, pg| sum = sum.wrapping_add(sum_words(pg)))
                        .expect("/proc/PID/mem");
                }
                std::hint::black_box(sum);
                tk.push(t0.elapsed());

                // Untimed: every method takes the new content as its baseline.
                tracker.checkpoint().expect("checkpoint");
                for &pg in &order[..k] {
                    let s = pg * PAGE as usize..(pg + 1) * PAGE as usize;
                    snapshot[s.clone()].copy_from_slice(&region[s]);
                }
            }
            let cell = &mut results[fi];
            if in_place {
                (cell[0], cell[2], cell[3], cell[5]) = (median(tt), median(tm), median(tx), median(tr));
                (floor[fi][0], floor[fi][1]) = (median(tw), median(tk));
            } else {
                (cell[1], cell[4], cell[6]) = (median(tt), median(tx), median(tr));
                floor[fi][2] = median(tk);
            }
        }
    }

    println!(
        "region {mib} MiB ({pages} pages of 4 KiB), detector {detector}, fingerprint {}, \
         median of {reps} runs, times in ms",
        Kernel::best().name()
    );
    println!();
    println!(
        "| written | pages | tracker, in place | memcmp vs snapshot | xxh3 rescan | speed-up vs xxh3 \
         | read pass | tracker / read pass | tracker, /proc/PID/mem | xxh3 rescan, /proc/PID/mem | speed-up \
         | read pass, /proc/PID/mem | tracker / read pass |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (f, c) in FRACTIONS.iter().zip(&results) {
        let k = ((pages as f64 * f).round() as usize).max(1);
        let x = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        println!(
            "| {:.1} % | {k} | {} | {} | {} | {:.1}× | {} | {:.2}× | {} | {} | {:.1}× | {} | {:.2}× |",
            f * 100.0,
            ms(c[0]),
            ms(c[2]),
            ms(c[3]),
            x(c[0], c[3]),
            ms(c[5]),
            x(c[5], c[0]),
            ms(c[1]),
            ms(c[4]),
            x(c[1], c[4]),
            ms(c[6]),
            x(c[6], c[1]),
        );
    }
    println!();
    println!(
        "floor of a PAGEMAP_SCAN tracker: the walk with re-protection alone, plus a plain read \
         of only the k written pages (same run, median of {reps})"
    );
    println!();
    println!(
        "| written | pages | walk alone | read of k pages, in place | floor, in place | tracker / floor \
         | xxh3 rescan / floor (best speed-up) | read of k pages, /proc/PID/mem | floor, /proc/PID/mem \
         | tracker / floor | xxh3 rescan / floor (best speed-up) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((f, c), fl) in FRACTIONS.iter().zip(&results).zip(&floor) {
        let k = ((pages as f64 * f).round() as usize).max(1);
        let x = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
        let (own, remote) = (fl[0] + fl[1], fl[0] + fl[2]);
        println!(
            "| {:.1} % | {k} | {} | {} | {} | {:.2}× | {:.1}× | {} | {} | {:.2}× | {:.1}× |",
            f * 100.0,
            ms(fl[0]),
            ms(fl[1]),
            ms(own),
            x(own, c[0]),
            x(own, c[3]),
            ms(fl[2]),
            ms(remote),
            x(remote, c[1]),
            x(remote, c[4]),
        );
    }
}
