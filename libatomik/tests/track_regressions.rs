//! Regressions found by ground-truth runs of `watch`/`top`/`report` (issue 12), each on
//! real processes: pages first touched after the watch started, rates across mapping
//! changes, KSM savings on parent rows, and fingerprint banks that outlive a killed tracker.

mod track_support;

use atomik::track::monitor::{default_ranges, Monitor, MonitorOptions};
use atomik::track::ranges::{Range, PAGE};
use atomik::track::region::{Tracker, TrackerOptions};
use atomik::track::writable::write_ranges;
use std::path::Path;
use std::time::{Duration, Instant};
use track_support::{Child, Region};

fn contains(ranges: &[Range], addr: u64) -> bool {
    ranges.iter().any(|r| r.start <= addr && addr < r.end)
}

/// A monitor of one process only, with write tracking.
fn monitor_of(pid: i32) -> Monitor {
    Monitor::new(MonitorOptions { pids: Some(vec![pid]), writes: true, ..MonitorOptions::default() })
}

/// Defect 1: a reserved region (a malloc arena, a heap that fills up) written only after
/// the watch started was never watched, because the default ranges were its populated
/// pages at the start.
#[test]
fn pages_first_touched_after_the_watch_started_are_seen() {
    let _serial = track_support::serial();
    // 16 MiB, nothing populated; the written pages lie more than 1 MiB from either end.
    let region = Region::reserved(4096);
    let child = Child::fork(&region);
    let ranges = default_ranges(Path::new("/proc"), child.pid).unwrap();
    let mut t = Tracker::watch(child.pid, &ranges, TrackerOptions::default()).unwrap();
    let pages = [1000usize, 1001, 2000, 3000];
    for &p in &pages {
        child.fill(p, 0x5eed_0000 + p as u64);
    }
    let r = t.check().unwrap();
    for &p in &pages {
        assert!(contains(&r.written, region.page_addr(p)), "page {p} written: {:?}", r.written);
        assert!(contains(&r.changed, region.page_addr(p)), "page {p} changed: {:?}", r.changed);
    }
    // Untouched pages of the reservation are not reported, and were not read.
    assert!(!contains(&r.written, region.page_addr(1500)));
    assert!(r.pages_read < 1024, "unpopulated pages cost no read: {} read", r.pages_read);
}

/// Defect 1, file-backed: writes to a private file mapping (a program's initialised data,
/// a file mapped copy-on-write) were never watched, the default ranges being anonymous
/// memory only. Its pages never read before the watch hold the file's bytes, not zeros: a
/// write of the bytes the file holds is silent, a write of others a change.
#[test]
fn writes_to_a_private_file_mapping_are_seen_against_the_files_bytes() {
    let _serial = track_support::serial();
    let region = Region::file(64, 0x7700);
    let child = Child::fork(&region);
    let ranges = write_ranges(Path::new("/proc"), child.pid).unwrap();
    assert!(
        ranges.iter().any(|r| r.start <= region.base && region.range().end <= r.end),
        "the file mapping {:?} is watched: {ranges:x?}",
        region.range()
    );
    let mut m = monitor_of(child.pid);
    m.sample().unwrap();
    let mut t = Tracker::watch(child.pid, &ranges, TrackerOptions::default()).unwrap();
    for p in [1, 2, 3] {
        child.fill(p, 0xdead_0000 + p as u64);
    }
    for p in [10, 11] {
        child.fill(p, 0x7700 + p as u64);
    }
    let r = t.check().unwrap();
    for p in [1, 2, 3] {
        assert!(contains(&r.written, region.page_addr(p)), "page {p} written: {:x?}", r.written);
        assert!(contains(&r.changed, region.page_addr(p)), "page {p} changed: {:x?}", r.changed);
    }
    for p in [10, 11] {
        assert!(!contains(&r.changed, region.page_addr(p)), "page {p} holds the file's bytes again");
        // A full rescan (no soft-dirty) sees content, not writes.
        if r.silent_observable {
            assert!(contains(&r.written, region.page_addr(p)), "page {p} written: {:x?}", r.written);
            assert!(contains(&r.silent, region.page_addr(p)), "page {p} silent: {:x?}", r.silent);
        }
    }
    assert!(!contains(&r.written, region.page_addr(20)), "an untouched page: {:x?}", r.written);
    // The same through the monitor (`top --writes`): its baseline was taken before the
    // writes, so they count in the interval.
    let snap = m.sample().unwrap();
    let row = snap.rows.iter().find(|r| r.cgroup == "/").expect("the root row");
    let changed = row.changed_per_s.expect("a figure") * snap.interval_s;
    assert!((3.0 - 0.5..16.0).contains(&changed), "3 pages changed (and the child's stack): {changed:.1}");
}

/// A private file mapping that appears after the watch started is baselined from the
/// file: rewriting a page with the file's bytes is a silent write, not a change.
#[test]
fn a_file_mapping_added_after_the_watch_started_is_baselined_from_the_file() {
    let _serial = track_support::serial();
    let me = std::process::id() as i32;
    let a = Region::new(8, 0x100);
    let mut t = Tracker::watch(me, &[a.range()], TrackerOptions::default()).unwrap();
    let b = Region::file(8, 0x200);
    let mut ranges = vec![a.range(), b.range()];
    ranges.sort();
    t.remap(&ranges).unwrap();
    b.fill(0, 0x200);
    b.fill(1, 0xbeef);
    let r = t.check().unwrap();
    assert!(contains(&r.changed, b.page_addr(1)), "{:x?}", r.changed);
    assert!(!contains(&r.changed, b.page_addr(0)), "page 0 holds the file's bytes: {:x?}", r.changed);
    assert!(!contains(&r.changed, b.page_addr(2)), "{:x?}", r.changed);
    if r.silent_observable {
        assert!(contains(&r.silent, b.page_addr(0)), "{:?}: {:x?}", r.detector, r.silent);
    }
}

/// Defect 2: a process whose mappings change every interval showed 0.0 written/s, because
/// `top` started a new baseline on any mapping change.
#[test]
fn writes_count_in_an_interval_where_the_mappings_changed() {
    let _serial = track_support::serial();
    let region = Region::new(256, 7000);
    let child = Child::fork(&region);
    let mut m = monitor_of(child.pid);
    m.sample().unwrap();
    for interval in 0..2 {
        for p in 0..20 {
            child.fill(p, 0xfeed_0000 + (interval * 100 + p) as u64);
        }
        child.map_new(4, 0x1234_5678 + interval as u64);
        std::thread::sleep(Duration::from_millis(50));
        let snap = m.sample().unwrap();
        let row = snap.rows.iter().find(|r| r.cgroup == "/").expect("the root row");
        assert_eq!(row.processes, 1, "{:?}", snap.rows);
        let written = row.written_per_s.expect("a figure, not '-'") * snap.interval_s;
        let changed = row.changed_per_s.expect("a figure, not '-'") * snap.interval_s;
        // 20 pages of the region and the 4 of the new mapping; the child's own stack may
        // add a few.
        assert!((24.0 - 0.5..40.0).contains(&written), "interval {interval}: written {written:.1}");
        assert!((24.0 - 0.5..40.0).contains(&changed), "interval {interval}: changed {changed:.1}");
    }
}

const KSM: &str = "/sys/kernel/mm/ksm";

fn ksm_read(f: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(KSM).join(f)).ok().map(|s| s.trim().to_owned())
}

fn merging_pages(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/ksm_stat"))
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("ksm_merging_pages ")?.trim().parse().ok()))
        .unwrap_or(0)
}

/// Puts KSM's settings back as they were.
struct KsmSettings(Vec<(&'static str, String)>);

impl Drop for KsmSettings {
    fn drop(&mut self) {
        for (f, v) in &self.0 {
            let _ = std::fs::write(Path::new(KSM).join(f), v);
        }
    }
}

/// Defect 3: two processes whose 2,000 pages KSM merged with each other's showed twice the
/// saving on the parent row (the sum of their ksm_stat). Needs root (KSM settings, PFNs).
#[test]
fn ksm_saving_of_two_processes_is_counted_once() {
    let _serial = track_support::serial();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || ksm_read("run").is_none() {
        println!("SKIP: needs root and KSM (/sys/kernel/mm/ksm)");
        return;
    }
    const N: usize = 2000;
    let region = Region::new(N, 0x4b53_0000);
    // SAFETY: advice on a mapping this test owns.
    let ok =
        unsafe { libc::madvise(region.base as *mut libc::c_void, N * PAGE as usize, libc::MADV_MERGEABLE) };
    if ok != 0 {
        println!("SKIP: MADV_MERGEABLE refused: {}", std::io::Error::last_os_error());
        return;
    }
    let (a, b) = (Child::fork(&region), Child::fork(&region));
    drop(region);
    // Each child writes its own copy of the same content: 2 × 2,000 equal pages.
    for c in [&a, &b] {
        for p in 0..N {
            c.fill(p, 0x6b73_6d00_0000 + p as u64);
        }
    }
    let saved: Vec<(&str, String)> =
        ["run", "pages_to_scan", "sleep_millisecs"].iter().filter_map(|f| Some((*f, ksm_read(f)?))).collect();
    let _restore = KsmSettings(saved);
    for (f, v) in [("pages_to_scan", "5000"), ("sleep_millisecs", "10"), ("run", "1")] {
        std::fs::write(Path::new(KSM).join(f), v).unwrap();
    }
    let t0 = Instant::now();
    while (merging_pages(a.pid) < N as u64 || merging_pages(b.pid) < N as u64) && t0.elapsed().as_secs() < 60
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ma, mb) = (merging_pages(a.pid), merging_pages(b.pid));
    assert!(ma >= N as u64 && mb >= N as u64, "KSM merged {ma} and {mb} pages of {N} in 60 s");
    let mut m = Monitor::new(MonitorOptions { pids: Some(vec![a.pid, b.pid]), ..MonitorOptions::default() });
    let snap = m.sample().unwrap();
    let root = snap.rows.iter().find(|r| r.cgroup == "/").expect("the root row");
    let mib = |b: i64| b as f64 / 1048576.0;
    let merged = root.ksm_merged_bytes.expect("KSM figures with PFNs") as i64;
    let profit = root.ksm_profit_bytes.expect("KSM figures with PFNs");
    println!(
        "merged {:.1} MiB, saved {:.1} MiB; Σ ksm_stat {:.1} MiB",
        mib(merged),
        mib(profit),
        mib(((ma + mb) * PAGE) as i64)
    );
    // 2,000 KSM pages, each mapped twice: 2,000 pages in RAM, 2,000 saved (7.8 MiB).
    let want = (N as u64 * PAGE) as i64;
    assert!(
        (merged - want).abs() <= 16 * PAGE as i64,
        "merged {:.1} MiB, want {:.1}",
        mib(merged),
        mib(want)
    );
    assert!((profit - want).abs() <= 16 * PAGE as i64, "saved {:.1} MiB, want {:.1}", mib(profit), mib(want));
}

/// Defect 7: a tracker's fingerprint bank is a file in the bank directory, left behind when
/// the tracking process is killed. Now it has no name: a SIGKILLed tracker leaves nothing.
#[test]
fn a_killed_tracker_leaves_no_bank_file() {
    let _serial = track_support::serial();
    let dir = tempfile::tempdir().unwrap();
    let region = Region::new(64, 9000);
    let target = Child::fork(&region);
    let (r, w) = {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    };
    // SAFETY: the child only sets an environment variable of its own, builds a tracker,
    // reports over the pipe and waits to be killed; it never returns into the harness.
    let tracker = unsafe { libc::fork() };
    if tracker == 0 {
        std::env::set_var("ATOMIK_SHM_DIR", dir.path());
        std::env::set_var("ATOMIK_BACKEND", "soft");
        let ok =
            Tracker::watch(target.pid, &[region.range()], TrackerOptions::default()).map(std::mem::forget);
        // SAFETY: one byte from a live buffer.
        unsafe { libc::write(w, [ok.is_ok() as u8].as_ptr().cast(), 1) };
        loop {
            // SAFETY: waits for the SIGKILL.
            unsafe { libc::pause() };
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: reads one byte into a live buffer.
    assert_eq!(unsafe { libc::read(r, b.as_mut_ptr().cast(), 1) }, 1);
    assert_eq!(b[0], 1, "the tracker started");
    // SAFETY: kills and reaps the child forked above.
    unsafe {
        libc::kill(tracker, libc::SIGKILL);
        libc::waitpid(tracker, std::ptr::null_mut(), 0);
        libc::close(r);
        libc::close(w);
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left in the bank directory: {left:?}");
}

/// `top/report/exporter --writes --detector X` where X cannot track a process said its
/// memory was not readable (needs ptrace read access): the sample names the detector and
/// the real reason instead.
#[test]
fn a_forced_detector_that_cannot_track_is_named_with_its_reason() {
    use atomik::track::region::Detector;
    let _serial = track_support::serial();
    let region = Region::new(8, 1);
    let child = Child::fork(&region); // not armed: PAGEMAP_SCAN cannot track it
    let mut m = Monitor::new(MonitorOptions {
        pids: Some(vec![child.pid]),
        writes: true,
        detector: Some(Detector::UffdWp),
        ..MonitorOptions::default()
    });
    let snap = m.sample().unwrap();
    let line = snap.missing.iter().find(|l| l.contains("written/changed/silent leave out"));
    let line = line.unwrap_or_else(|| panic!("no line about the untracked process: {:?}", snap.missing));
    assert!(line.contains(&format!("detector {} unavailable", Detector::UffdWp.name())), "{line}");
    assert!(line.contains("not armed") || line.contains("no PAGEMAP_SCAN"), "{line}");
    assert!(!line.contains("not readable"), "{line}");
}
