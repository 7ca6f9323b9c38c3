//! Duplicate pages across real processes, confirmed by bytes, grouped by cgroup label.

mod track_support;

use atomik::track::cow::sample_anon;
use atomik::track::dups::{find_duplicates, DupProcess};
use atomik::track::ranges::{Range, PAGE};
use std::path::Path;
use track_support::{Child, Region};

/// Exclusive pages of `pid` inside `within`.
fn candidates(pid: i32, within: Range) -> Vec<Range> {
    let s = sample_anon(Path::new("/proc"), pid).unwrap();
    s.exclusive_ranges
        .iter()
        .filter_map(|r| {
            let (a, b) = (r.start.max(within.start), r.end.min(within.end));
            (a < b).then(|| Range::new(a, b))
        })
        .collect()
}

#[test]
fn two_processes_holding_the_same_n_pages_are_n_duplicates() {
    let _serial = track_support::serial();
    const N: usize = 24;
    let seed = 0x5eed_0000_0000 + std::process::id() as u64 * 1000;
    let region = Region::new(N + 8, seed);
    let child = Child::fork(&region);
    // The child rewrites N pages with the content they have: each write copies the page,
    // so both processes now hold N private pages with identical bytes.
    for p in 0..N {
        child.fill(p, seed + p as u64);
    }
    // The last 8 pages get content nobody else has.
    for p in N..N + 8 {
        child.fill(p, !(seed + p as u64));
    }
    let me = std::process::id() as i32;
    let procs = vec![
        DupProcess { pid: me, cgroup: "/a".into(), ranges: candidates(me, region.range()) },
        DupProcess { pid: child.pid, cgroup: "/a".into(), ranges: candidates(child.pid, region.range()) },
    ];
    assert_eq!(procs[1].ranges.iter().map(Range::pages).sum::<u64>(), (N + 8) as u64);
    let rep = find_duplicates(&procs);
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    assert_eq!(rep.scanned_pages, 2 * (N + 8) as u64);
    assert_eq!(rep.reclaimable_pages, N as u64);
    assert_eq!(rep.classes, N as u64);
    assert_eq!(rep.unconfirmed, 0);
    let a = rep.per_cgroup["/a"];
    assert_eq!((a.pages, a.within, a.across, a.zero_filled), (N as u64, N as u64, 0, 0));
    assert_eq!(a.bytes(), N as u64 * PAGE);

    // The same processes in two cgroups: the copies are across cgroups, and counted in the
    // cgroup that does not keep the content.
    let mut procs = procs;
    procs[1].cgroup = "/b".into();
    let rep = find_duplicates(&procs);
    assert_eq!(rep.reclaimable_pages, N as u64);
    let b = rep.per_cgroup["/b"];
    assert_eq!((b.pages, b.within, b.across), (N as u64, 0, N as u64));
    assert!(!rep.per_cgroup.contains_key("/a"));
}

#[test]
fn shared_cow_pages_are_not_duplicates() {
    let _serial = track_support::serial();
    let region = Region::new(16, 0x77_0000 + std::process::id() as u64);
    let child = Child::fork(&region);
    let me = std::process::id() as i32;
    // Nothing written after fork: one physical page per address, nothing to reclaim.
    let procs = vec![
        DupProcess { pid: me, cgroup: "/".into(), ranges: candidates(me, region.range()) },
        DupProcess { pid: child.pid, cgroup: "/".into(), ranges: candidates(child.pid, region.range()) },
    ];
    let rep = find_duplicates(&procs);
    assert_eq!(rep.scanned_pages, 0, "shared pages are not candidates");
    assert_eq!(rep.reclaimable_pages, 0);
}

#[test]
fn vanished_process_is_skipped_with_its_pid() {
    let procs =
        vec![DupProcess { pid: i32::MAX - 3, cgroup: "/".into(), ranges: vec![Range::new(PAGE, 2 * PAGE)] }];
    let rep = find_duplicates(&procs);
    assert_eq!(rep.skipped.len(), 1);
    assert!(rep.skipped[0].1.contains(&format!("pid {}", i32::MAX - 3)), "{:?}", rep.skipped);
}
