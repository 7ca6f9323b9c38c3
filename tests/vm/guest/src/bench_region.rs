//! In-VM benchmark of page-change detection: REGION_CHECK (the kernel engine) beside the
//! userspace engine's full rescan (`Tracker` with `Detector::FullRescan`: process_vm_readv and
//! the same fingerprints), both re-reading every page of the same child's memory each round,
//! and the bare fingerprint loop over a local copy as the compute floor. Printed as pages/s and
//! as ratios to the userspace engine, from one run (absolute numbers under TCG mean little).
//! Each round one page changes; both engines must report exactly that page.

use crate::check::Report;
use crate::dev::Dev;
use crate::region::{by_id, check, read_u64, splitmix, watch, write_u64, Child};
use atomik::abi::*;
use atomik::track::fingerprint::fingerprint_pages;
use atomik::track::ranges::Range;
use atomik::track::region::{Detector, Tracker, TrackerOptions};
use memmap2::MmapMut;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PAGES: u64 = 2048;
const ROUNDS: u64 = 6;
const PAGE: u64 = 4096;

/// The child: maps `PAGES` pages of pseudo-random bytes, sends their address, then for each
/// command `k` changes one word of page `k` and acknowledges; `u64::MAX` ends it.
fn child_main(cmd: i32, ack: i32) -> i32 {
    let Ok(mut map) = MmapMut::map_anon((PAGES * PAGE) as usize) else {
        write_u64(ack, 0);
        return 1;
    };
    for (i, w) in map.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&splitmix(i as u64).to_ne_bytes());
    }
    write_u64(ack, map.as_ptr() as u64);
    while let Some(k) = read_u64(cmd) {
        if k == u64::MAX {
            break;
        }
        let w = &mut map[(k * PAGE) as usize..][..8];
        let v = u64::from_ne_bytes(w.try_into().unwrap()) ^ 0x5a5a;
        w.copy_from_slice(&v.to_ne_bytes());
        write_u64(ack, k);
    }
    0
}

fn rate(pages: u64, t: Duration) -> f64 {
    pages as f64 / t.as_secs_f64()
}

pub fn run(report: &mut Report) {
    report.run("bench: REGION_CHECK beside the userspace engine (pages/s, ratios)", || {
        let (child, start) = Child::spawn(child_main)?;
        ensure!(start != 0, "bench child could not map its pages");
        let d = ok!(Dev::open());
        let w = ok!(watch(&d, child.pid, start, PAGES * PAGE));
        let opts = TrackerOptions { detector: Some(Detector::FullRescan), ..Default::default() };
        let mut tracker = Tracker::watch(child.pid, &[Range::new(start, start + PAGES * PAGE)], opts)
            .map_err(|e| format!("userspace Tracker::watch: {e}"))?;
        let (mut kernel_t, mut user_t) = (Duration::ZERO, Duration::ZERO);
        for r in 0..ROUNDS {
            let page = splitmix(r) % PAGES;
            write_u64(child.cmd, page);
            ensure!(read_u64(child.ack) == Some(page), "bench child did not change page {page}");
            let t = Instant::now();
            let (c, changed, _) = ok!(check(&d, w.id, PAGES));
            kernel_t += t.elapsed();
            ensure!(changed == BTreeSet::from([page]) && c.changed == 1, "round {r}: kernel saw {changed:?}");
            ok!(by_id(&d, IOCTL_REGION_CHECKPOINT, w.id));
            let t = Instant::now();
            let u = tracker.check().map_err(|e| format!("userspace check: {e}"))?;
            user_t += t.elapsed();
            let want = vec![Range::new(start + page * PAGE, start + (page + 1) * PAGE)];
            ensure!(u.changed == want, "round {r}: userspace saw {:?}", u.changed);
            tracker.checkpoint().map_err(|e| format!("userspace checkpoint: {e}"))?;
        }
        // The compute floor: the same fingerprints over a local copy, no copying in the loop.
        let local: Vec<u8> = (0..PAGES * PAGE / 8).flat_map(|i| splitmix(i).to_le_bytes()).collect();
        let mut fps = vec![0u64; PAGES as usize];
        let t = Instant::now();
        for _ in 0..ROUNDS {
            fingerprint_pages(&local, &mut fps);
        }
        let floor_t = t.elapsed();
        let pages = PAGES * ROUNDS;
        let (k, u, f) = (rate(pages, kernel_t), rate(pages, user_t), rate(pages, floor_t));
        println!("bench REGION_CHECK (kernel engine, /dev/atomik)  {k:>12.0} pages/s");
        println!("bench userspace engine full rescan (Tracker)    {u:>12.0} pages/s");
        println!("bench fingerprint loop on a local copy          {f:>12.0} pages/s");
        println!(
            "bench region ratios to the userspace engine: REGION_CHECK {:.2}x, fingerprint loop {:.2}x ({PAGES} pages x {ROUNDS} rounds)",
            k / u,
            f / u
        );
        drop(child);
        Ok(())
    });
}
