//! Copy-on-write sharing and breaks on a real fork.

mod track_support;

use atomik::track::cow::{cow_breaks, identical_copies, sample_anon};
use std::path::Path;
use track_support::{Child, Region};

fn proc_root() -> &'static Path {
    Path::new("/proc")
}

#[test]
fn fork_then_child_writes_counts_cow_breaks() {
    let _serial = track_support::serial();
    let region = Region::new(64, 500);
    let child = Child::fork(&region);
    let me = std::process::id() as i32;
    let in_region = |a: u64| a >= region.base && a < region.range().end;

    // Both processes also touch their stacks and heaps: look at the region only.
    let mut c0 = sample_anon(proc_root(), child.pid).unwrap();
    c0.shared.retain(|(a, _)| in_region(*a));
    assert_eq!(c0.shared.len(), 64, "every page of the region is shared after fork");
    let mut p0 = sample_anon(proc_root(), me).unwrap();
    p0.shared.retain(|(a, _)| in_region(*a));

    // 5 pages get new content, 3 get the content they already had: 8 copies.
    for p in 0..5 {
        child.fill(p, 0xf00 + p as u64);
    }
    for p in 10..13 {
        child.fill(p, 500 + p as u64);
    }
    let b = cow_breaks(proc_root(), &c0).unwrap();
    assert_eq!(b.became_exclusive, 8, "{b:?}");
    let pb = cow_breaks(proc_root(), &p0).unwrap();
    assert_eq!(pb.became_exclusive, 8, "the parent keeps the originals, now exclusive");

    match b.copied {
        None => println!("SKIP copy attribution: PFNs are hidden (needs CAP_SYS_ADMIN)"),
        Some(copied) => {
            assert_eq!(copied, 8, "the child made the copies");
            assert_eq!(pb.copied, Some(0), "the parent copied nothing");
            let same = identical_copies(proc_root(), child.pid, me, &b.copied_pages).unwrap();
            assert_eq!(same.compared, 8);
            assert_eq!(same.identical, 3, "3 writes rewrote the same content");
        }
    }
}

#[test]
fn reading_a_process_does_not_unshare_its_pages() {
    let _serial = track_support::serial();
    let region = Region::new(16, 1);
    let child = Child::fork(&region);
    let in_region = |a: u64| a >= region.base && a < region.range().end;
    let shared = || {
        let s = sample_anon(proc_root(), child.pid).unwrap();
        s.shared.iter().filter(|(a, _)| in_region(*a)).count()
    };
    assert_eq!(shared(), 16);
    // A tracker baseline, a check and a duplicate scan all read the child's pages.
    let mut t = atomik::track::region::Tracker::watch(
        child.pid,
        &[region.range()],
        atomik::track::region::TrackerOptions {
            detector: Some(atomik::track::region::Detector::FullRescan),
            ..Default::default()
        },
    )
    .unwrap();
    t.check().unwrap();
    assert_eq!(shared(), 16, "reading must not copy the target's shared pages");
}
