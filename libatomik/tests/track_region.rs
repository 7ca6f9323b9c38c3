//! The region tracker on real processes: exact written / changed / silent page counts.

mod track_support;

use atomik::track::ranges::{Range, PAGE};
use atomik::track::region::{Detector, Tracker, TrackerOptions};
use track_support::{Child, Region};

fn watch(pid: i32, r: Range, detector: Option<Detector>) -> Tracker {
    Tracker::watch(pid, &[r], TrackerOptions { detector, ..Default::default() }).unwrap()
}

/// A child whose writes can be tracked, and the detector that will do it: PAGEMAP_SCAN
/// when the child could arm its memory (Linux ≥ 6.7), else soft-dirty (kernels with
/// CONFIG_MEM_SOFT_DIRTY), else None with the reason printed.
fn tracked_child(region: &Region) -> Option<(Child, Detector)> {
    let c = Child::fork(region);
    if c.arm() {
        Some((c, Detector::UffdWp))
    } else if atomik::track::pagemap::soft_dirty_supported() {
        println!("userfaultfd async write-protection unavailable: testing soft-dirty");
        Some((c, Detector::SoftDirty))
    } else {
        println!("SKIP: this kernel has neither PAGEMAP_SCAN write tracking nor soft-dirty");
        None
    }
}

#[test]
fn k_written_pages_are_k_written_and_k_changed() {
    let _serial = track_support::serial();
    let region = Region::new(256, 1000);
    let Some((child, detector)) = tracked_child(&region) else { return };
    let mut t = watch(child.pid, region.range(), None);
    assert_eq!(t.detector(), detector);
    let r0 = t.check().unwrap();
    assert_eq!((r0.written_pages(), r0.changed_pages(), r0.pages_read), (0, 0, 0));
    assert!(!t.anything_changed());

    let pages = [3usize, 4, 5, 100, 255];
    for &p in &pages {
        child.fill(p, 0xabcd_0000 + p as u64);
    }
    let r = t.check().unwrap();
    let want: Vec<Range> = vec![
        Range::new(region.page_addr(3), region.page_addr(6)),
        Range::new(region.page_addr(100), region.page_addr(101)),
        Range::new(region.page_addr(255), region.page_addr(256)),
    ];
    assert_eq!(r.written, want);
    assert_eq!(r.changed, want);
    assert!(r.silent.is_empty());
    assert_eq!(r.pages_read, pages.len() as u64, "only written pages are re-read");
    assert!(t.anything_changed());
    assert_eq!(t.changed_count(), 5);

    // The bank holds the current fingerprints: slot i = page i.
    let mut page = vec![0u8; PAGE as usize];
    for (i, w) in page.chunks_exact_mut(8).enumerate() {
        let _ = i;
        w.copy_from_slice(&(0xabcd_0000u64 + 100).to_le_bytes());
    }
    assert_eq!(t.bank().read(100).unwrap(), atomik::track::fingerprint::fingerprint(&page));
    assert!(!t.bank().is_clean(100).unwrap());
    assert!(t.bank().is_clean(99).unwrap());

    t.checkpoint().unwrap();
    assert!(!t.anything_changed());
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages(), r.pages_read), (0, 0, 0));
}

#[test]
fn rewriting_identical_values_is_silent() {
    let _serial = track_support::serial();
    let region = Region::new(64, 7);
    let Some((child, detector)) = tracked_child(&region) else { return };
    let mut t = watch(child.pid, region.range(), None);
    assert_eq!(t.detector(), detector);
    for p in [1usize, 2, 40] {
        child.fill(p, 7 + p as u64); // the value it already holds
    }
    let r = t.check().unwrap();
    assert!(r.silent_observable);
    assert_eq!((r.written_pages(), r.changed_pages(), r.silent_pages()), (3, 0, 3));
    assert!(!t.anything_changed());

    // Change a page, then put the old content back: written, not changed, silent.
    child.fill(10, 1);
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages(), r.silent_pages()), (4, 1, 3));
    child.fill(10, 17);
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages(), r.silent_pages()), (4, 0, 4));
    assert!(t.bank().is_clean(10).unwrap(), "accumulator back to the identity");
}

#[test]
fn full_rescan_sees_changes_but_not_silent_writes() {
    let _serial = track_support::serial();
    let region = Region::new(64, 50);
    let child = Child::fork(&region); // not armed: another process, no tracking
    let mut t = watch(child.pid, region.range(), Some(Detector::FullRescan));
    child.fill(5, 50 + 5); // silent
    child.fill(6, 1);
    child.fill(7, 2);
    let r = t.check().unwrap();
    assert_eq!(r.detector, Detector::FullRescan);
    assert!(!r.silent_observable);
    assert_eq!((r.written_pages(), r.changed_pages()), (2, 2));
    assert_eq!(r.pages_read, 64, "a full rescan reads every page");
}

#[test]
fn unarmed_process_without_soft_dirty_falls_back_and_says_so() {
    let _serial = track_support::serial();
    let region = Region::new(8, 0);
    let child = Child::fork(&region);
    let t = watch(child.pid, region.range(), None);
    if atomik::track::pagemap::soft_dirty_supported() {
        assert_eq!(t.detector(), Detector::SoftDirty);
    } else {
        assert_eq!(t.detector(), Detector::FullRescan);
        assert!(t.detector().note().contains("every page is re-read"));
    }
}

#[test]
fn watching_own_memory_arms_itself() {
    let _serial = track_support::serial();
    let region = Region::new(32, 0);
    let me = std::process::id() as i32;
    let mut t = watch(me, region.range(), None);
    if t.detector() == Detector::FullRescan {
        println!("SKIP: no userfaultfd async write-protection here ({:?})", t.detector());
        return;
    }
    region.fill(9, 12345);
    region.fill(11, 11); // silent
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages(), r.silent_pages()), (2, 1, 1));
}

#[test]
fn errors_name_the_pid_and_the_range() {
    let _serial = track_support::serial();
    let e =
        Tracker::watch(i32::MAX - 7, &[Range::new(0x1000, 0x2000)], TrackerOptions::default()).unwrap_err();
    assert!(e.to_string().contains(&format!("pid {}", i32::MAX - 7)), "{e}");
    let region = Region::new(4, 0);
    let me = std::process::id() as i32;
    let r = Range::new(region.base + 1, region.base + PAGE);
    let e = Tracker::watch(me, &[r], TrackerOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not page aligned"), "{e}");
    let unmapped = Range::new(PAGE, 2 * PAGE);
    let e = Tracker::watch(me, &[unmapped], TrackerOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not entirely mapped"), "{e}");
}

#[test]
fn two_ranges_accumulate_until_checkpoint() {
    let _serial = track_support::serial();
    let (a, b) = (Region::new(8, 100), Region::new(8, 200));
    let me = std::process::id() as i32;
    let mut t = Tracker::watch(me, &[b.range(), a.range()], TrackerOptions::default()).unwrap();
    if t.detector() == Detector::FullRescan {
        println!("SKIP: no write tracking here");
        return;
    }
    assert_eq!(t.pages(), 16);
    a.fill(2, 1);
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages()), (1, 1));
    b.fill(7, 2);
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages()), (2, 2), "since the checkpoint");
    assert_eq!(r.pages_read, 1, "only the newly written page is re-read");
    assert!(r.changed.contains(&Range::new(a.page_addr(2), a.page_addr(3))));
    assert!(r.changed.contains(&Range::new(b.page_addr(7), b.page_addr(8))));
    t.checkpoint().unwrap();
    let r = t.check().unwrap();
    assert_eq!((r.written_pages(), r.changed_pages()), (0, 0));
    // After the checkpoint the new content is the baseline: restoring the old one is a change.
    a.fill(2, 102);
    let r = t.check().unwrap();
    assert_eq!(r.changed_pages(), 1);
}

/// Large checks are fingerprinted on several threads: the same exact answer as one thread.
#[test]
fn several_fingerprint_threads_find_exactly_the_changed_pages() {
    let _serial = track_support::serial();
    let region = Region::new(4096, 31337);
    let child = Child::fork(&region);
    let opts = |threads| TrackerOptions {
        detector: Some(Detector::FullRescan),
        threads: Some(threads),
        parallel_min_pages: Some(1024),
        ..Default::default()
    };
    let mut one = Tracker::watch(child.pid, &[region.range()], opts(1)).unwrap();
    let mut two = Tracker::watch(child.pid, &[region.range()], opts(2)).unwrap();
    let pages: Vec<usize> = (0..4096).step_by(37).collect();
    for &p in &pages {
        child.fill(p, 0xd00d_0000 + p as u64);
    }
    let (a, b) = (one.check().unwrap(), two.check().unwrap());
    let want = atomik::track::ranges::coalesce(pages.iter().map(|&p| region.page_addr(p)));
    assert_eq!(a.changed, want);
    assert_eq!(b.changed, want, "two threads");
    assert_eq!((a.pages_read, b.pages_read), (4096, 4096));
    assert_eq!(one.bank().read_all(), two.bank().read_all(), "the same fingerprints");
}

/// Asking for a detector that cannot track the process names what is missing: the kernel's
/// feature, or the arming of the memory; never another process's cause.
#[test]
fn an_unavailable_detector_names_the_real_reason() {
    use atomik::track::error::TrackError;
    let _serial = track_support::serial();
    let region = Region::new(8, 0);
    let child = Child::fork(&region); // not armed
    let forced = |d| {
        Tracker::watch(
            child.pid,
            &[region.range()],
            TrackerOptions { detector: Some(d), ..Default::default() },
        )
    };
    // PAGEMAP_SCAN exists where our own memory can be scanned for zero pages.
    let pm = atomik::track::pagemap::Pagemap::open(std::process::id() as i32).unwrap();
    let has_scan = atomik::track::scan::scan_category(
        &pm,
        region.range(),
        atomik::track::scan::PAGE_IS_PFNZERO,
        &mut Vec::new(),
    )
    .is_ok();
    match forced(Detector::UffdWp).unwrap_err() {
        TrackError::DetectorUnavailable { pid, detector, why } => {
            assert_eq!((pid, detector), (child.pid, Detector::UffdWp.name()));
            let want = if has_scan { "not armed" } else { "no PAGEMAP_SCAN" };
            assert!(why.contains(want), "{why}");
        }
        e => panic!("expected DetectorUnavailable, got {e}"),
    }
    if atomik::track::pagemap::soft_dirty_supported() {
        assert_eq!(forced(Detector::SoftDirty).unwrap().detector(), Detector::SoftDirty);
    } else {
        let e = forced(Detector::SoftDirty).unwrap_err();
        assert!(matches!(e, TrackError::DetectorUnavailable { .. }), "{e}");
        assert!(e.to_string().contains("CONFIG_MEM_SOFT_DIRTY"), "{e}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Reading in place prefetches the next page of the list of written pages, whichever
    /// range it lies in: over several ranges and any set of written pages, it finds exactly
    /// the pages a tracker reading through /proc/PID/mem (one thread, full rescan) finds,
    /// with the same fingerprints.
    #[test]
    fn in_place_reading_finds_exactly_what_proc_pid_mem_finds(
        written in proptest::collection::btree_set(0usize..600, 0..80),
    ) {
        let _serial = track_support::serial();
        let region = Region::new(600, 7);
        // Three ranges with gaps between them (pages 100..150 and 400..420 unwatched).
        let at = |p: usize| region.page_addr(p);
        let ranges = [Range::new(at(0), at(100)), Range::new(at(150), at(400)), Range::new(at(420), at(600))];
        let watched = |p: usize| !(100..150).contains(&p) && !(400..420).contains(&p);
        // SAFETY: `region` outlives both trackers; this thread does not write it while they
        // run.
        let mut own = unsafe { Tracker::watch_own(&ranges, TrackerOptions::default()) }.unwrap();
        let me = std::process::id() as i32;
        let reference =
            TrackerOptions { detector: Some(Detector::FullRescan), threads: Some(1), ..Default::default() };
        let mut remote = Tracker::watch(me, &ranges, reference).unwrap();
        for &p in &written {
            region.fill(p, 0xfeed_0000 + p as u64);
        }
        let want = atomik::track::ranges::coalesce(written.iter().copied().filter(|&p| watched(p)).map(at));
        let (a, b) = (own.check().unwrap(), remote.check().unwrap());
        proptest::prop_assert_eq!(&b.changed, &want);
        proptest::prop_assert_eq!(&a.changed, &want);
        proptest::prop_assert_eq!(own.bank().read_all(), remote.bank().read_all());
    }

    /// A `PAGEMAP_SCAN` check split into chunks over two threads (the second starts once a
    /// chunk is dense) finds exactly the written, changed and silent pages, reading in place
    /// or through /proc/PID/mem, with the fingerprints of a one-thread full rescan; and so
    /// again after a checkpoint. (One write-protecting tracker at a time: two would take
    /// each other's written pages.)
    #[test]
    fn a_check_in_chunks_on_two_threads_is_exact(
        new in proptest::collection::btree_set(0usize..600, 0..300),
        same in proptest::collection::btree_set(0usize..600, 0..100),
        in_place in proptest::bool::ANY,
    ) {
        let _serial = track_support::serial();
        let region = Region::new(600, 11);
        let at = |p: usize| region.page_addr(p);
        let ranges = [Range::new(at(0), at(100)), Range::new(at(150), at(400)), Range::new(at(420), at(600))];
        let watched = |p: usize| !(100..150).contains(&p) && !(400..420).contains(&p);
        let chunked = TrackerOptions { threads: Some(2), check_chunk_pages: Some(16), ..Default::default() };
        let me = std::process::id() as i32;
        let mut t = if in_place {
            // SAFETY: `region` outlives the tracker; this thread does not write it while the
            // tracker runs.
            unsafe { Tracker::watch_own(&ranges, chunked) }.unwrap()
        } else {
            Tracker::watch(me, &ranges, chunked).unwrap()
        };
        if t.detector() != Detector::UffdWp {
            println!("SKIP: no userfaultfd async write-protection here ({:?})", t.detector());
            return Ok(());
        }
        let reference =
            TrackerOptions { detector: Some(Detector::FullRescan), threads: Some(1), ..Default::default() };
        let mut rescan = Tracker::watch(me, &ranges, reference).unwrap();
        let same: Vec<usize> = same.iter().copied().filter(|p| !new.contains(p)).collect();
        let pages = |ps: &mut dyn Iterator<Item = usize>| {
            let mut v: Vec<usize> = ps.filter(|&p| watched(p)).collect();
            v.sort_unstable();
            atomik::track::ranges::coalesce(v.into_iter().map(at))
        };
        let written = pages(&mut new.iter().chain(&same).copied());
        let (changed, silent) = (pages(&mut new.iter().copied()), pages(&mut same.iter().copied()));
        for round in 0..2u64 {
            for &p in &new {
                region.fill(p, 0xfeed_0000 + p as u64 + (round << 32));
            }
            for &p in &same {
                region.fill(p, 11 + p as u64); // what it holds: written, not changed
            }
            let (a, r) = (t.check().unwrap(), rescan.check().unwrap());
            proptest::prop_assert_eq!(&a.written, &written, "written, round {}", round);
            proptest::prop_assert_eq!(&a.changed, &changed, "changed, round {}", round);
            proptest::prop_assert_eq!(&a.silent, &silent, "silent, round {}", round);
            proptest::prop_assert_eq!(a.pages_read, atomik::track::ranges::total_pages(&written));
            proptest::prop_assert_eq!(&r.changed, &changed, "full rescan, round {}", round);
            proptest::prop_assert_eq!(t.bank().read_all(), rescan.bank().read_all());
            t.checkpoint().unwrap();
            rescan.checkpoint().unwrap();
        }
    }
}
