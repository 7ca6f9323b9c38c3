//! Per-cgroup grouping: on a fake /proc + cgroupfs tree in a tempdir (always), and on the
//! real cgroup v2 hierarchy when it is mounted and writable.

mod track_support;

use atomik::track::cgroup::{host_cgroup2, read_membership};
use atomik::track::monitor::{Monitor, MonitorOptions};
use std::fs;
use std::path::Path;

fn proc_entry(root: &Path, pid: i32, name: &str, rss_kb: u64, cg: &str, ksm_pages: u64) {
    let d = root.join(pid.to_string());
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("status"), atomik::track::procfs::synthetic_status(name, pid, 1, 1000, rss_kb)).unwrap();
    fs::write(d.join("cgroup"), format!("0::{cg}\n")).unwrap();
    fs::write(
        d.join("ksm_stat"),
        format!("ksm_merging_pages {ksm_pages}\nksm_process_profit {}\n", ksm_pages * 4000),
    )
    .unwrap();
}

fn cgroup_dir(root: &Path, cg: &str, pids: &[i32]) {
    let d = root.join(cg.trim_start_matches('/'));
    fs::create_dir_all(&d).unwrap();
    let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
    fs::write(d.join("cgroup.procs"), text).unwrap();
}

fn fake_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let (proc, cg, ksm) = (t.path().join("proc"), t.path().join("cgroup"), t.path().join("ksm"));
    proc_entry(&proc, 10, "nginx", 1000, "/web.slice/nginx", 0);
    proc_entry(&proc, 11, "nginx", 3000, "/web.slice/nginx", 5);
    proc_entry(&proc, 20, "php", 4000, "/web.slice/php", 2);
    // /proc says /stale, cgroupfs says /db: the cgroupfs wins.
    proc_entry(&proc, 30, "postgres", 8000, "/stale", 0);
    cgroup_dir(&cg, "/", &[]);
    cgroup_dir(&cg, "/web.slice", &[]);
    cgroup_dir(&cg, "/web.slice/nginx", &[10, 11]);
    cgroup_dir(&cg, "/web.slice/php", &[20]);
    cgroup_dir(&cg, "/db", &[30]);
    fs::create_dir_all(&ksm).unwrap();
    fs::write(ksm.join("pages_sharing"), "7\n").unwrap();
    fs::write(ksm.join("general_profit"), "28000\n").unwrap();
    t
}

fn opts(t: &Path, subtree: &str) -> MonitorOptions {
    MonitorOptions {
        proc_root: t.join("proc"),
        cgroup_root: Some(t.join("cgroup")),
        ksm_dir: t.join("ksm"),
        subtree: subtree.into(),
        cow: false,
        dups: false,
        writes: false,
        uid: None,
        pids: None,
        detector: None,
        runtime_state: atomik::track::runtime::RuntimeState::under(&t.join("state")),
    }
}

#[test]
fn fake_tree_groups_recursively_with_ksm() {
    let t = fake_tree();
    let m = read_membership(&t.path().join("cgroup")).unwrap();
    assert_eq!(m["/web.slice/nginx"], vec![10, 11]);
    assert_eq!(m["/"], Vec::<i32>::new());

    let snap = Monitor::new(opts(t.path(), "/")).sample().unwrap();
    let row = |cg: &str| snap.rows.iter().find(|r| r.cgroup == cg).cloned().unwrap();
    assert_eq!(row("/").processes, 4);
    assert_eq!(row("/").rss_bytes, 16000 * 1024);
    assert_eq!(row("/web.slice").processes, 3);
    assert_eq!(row("/web.slice").rss_bytes, 8000 * 1024);
    // Two processes merge pages below /web.slice: without PFNs their ksm_stat cannot be
    // summed (pages they share would count twice); one process's own figures can be shown.
    assert_eq!(row("/web.slice").ksm_merged_bytes, None);
    assert_eq!(row("/web.slice/nginx").ksm_merged_bytes, Some(5 * 4096));
    assert_eq!(row("/web.slice/nginx").ksm_profit_bytes, Some(20000));
    assert!(snap.missing.iter().any(|m| m.contains("KSM") && m.contains("twice")), "{:?}", snap.missing);
    assert_eq!(row("/db").processes, 1, "membership comes from cgroupfs");
    assert!(snap.rows.iter().all(|r| r.cgroup != "/stale"));
    assert_eq!(snap.ksm.pages_sharing, Some(7));
    assert_eq!(snap.ksm.general_profit, Some(28000));
    assert!(snap.missing.iter().any(|m| m.contains("--writes")));
}

#[test]
fn fake_tree_subtree_and_uid_filter() {
    let t = fake_tree();
    let snap = Monitor::new(opts(t.path(), "/web.slice")).sample().unwrap();
    let names: Vec<_> = snap.rows.iter().map(|r| r.cgroup.as_str()).collect();
    assert_eq!(names, ["/web.slice", "/web.slice/nginx", "/web.slice/php"]);
    let mut o = opts(t.path(), "/");
    o.uid = Some(0);
    let snap = Monitor::new(o).sample().unwrap();
    assert!(snap.rows.is_empty(), "all fake processes belong to uid 1000");
}

#[test]
fn fake_tree_without_cgroupfs_uses_proc() {
    let t = fake_tree();
    let mut o = opts(t.path(), "/");
    o.cgroup_root = None;
    let snap = Monitor::new(o).sample().unwrap();
    assert!(snap.rows.iter().any(|r| r.cgroup == "/stale"));
}

/// Real cgroup v2: two child cgroups, a forked process in each.
#[test]
fn real_cgroup_tree_when_writable() {
    let _serial = track_support::serial();
    let Some(root) = host_cgroup2() else {
        println!("SKIP: no cgroup2 mount on this machine");
        return;
    };
    let base = root.join(format!("atomik-test-{}", std::process::id()));
    if let Err(e) = fs::create_dir(&base) {
        println!("SKIP: cgroup2 at {} is not writable: {e}", root.display());
        return;
    }
    // The memory controller for the children, where the host's cgroup2 has it.
    let memory = fs::read_to_string(root.join("cgroup.subtree_control")).is_ok_and(|c| c.contains("memory"))
        && fs::write(base.join("cgroup.subtree_control"), "+memory").is_ok();
    let psi = root.join("memory.pressure").exists();
    let region = track_support::Region::new(4, 1);
    let (a, b) = (track_support::Child::fork(&region), track_support::Child::fork(&region));
    let mut moved = true;
    for (name, pid) in [("a", a.pid), ("b", b.pid)] {
        let d = base.join(name);
        fs::create_dir(&d).unwrap();
        moved &= fs::write(d.join("cgroup.procs"), pid.to_string()).is_ok();
    }
    let rel = format!("/{}", base.strip_prefix(&root).unwrap().display());
    let result = if moved {
        let mut snap = Monitor::new(MonitorOptions {
            cgroup_root: Some(root.clone()),
            subtree: rel.clone(),
            writes: true,
            ..MonitorOptions::default()
        });
        let first = snap.sample();
        // The first sample only takes the baselines; the second has rates.
        // a writes new content; b rewrites a page with the content it has (a copy identical
        // to its origin in the parent).
        let a_fill = first.map(|_| {
            a.fill(0, 0xfeed);
            b.fill(1, 2);
        });
        Some(a_fill.and_then(|_| snap.sample()))
    } else {
        println!("SKIP: cannot move processes between cgroups here");
        None
    };
    // Clean up before asserting: move the children back, remove the cgroups.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap().to_owned();
    for pid in [a.pid, b.pid] {
        let _ = fs::write(root.join(own.trim_start_matches('/')).join("cgroup.procs"), pid.to_string());
    }
    drop((a, b));
    for name in ["a", "b"] {
        let _ = fs::remove_dir(base.join(name));
    }
    let _ = fs::remove_dir(&base);

    if let Some(snap) = result {
        let snap = snap.unwrap();
        let row = |cg: String| snap.rows.iter().find(|r| r.cgroup == cg).cloned();
        assert_eq!(row(rel.clone()).map(|r| r.processes), Some(2), "{:?}", snap.rows);
        assert_eq!(row(format!("{rel}/a")).map(|r| r.processes), Some(1));
        assert_eq!(row(format!("{rel}/b")).map(|r| r.processes), Some(1));
        let a = row(format!("{rel}/a")).unwrap();
        let shared = a.cow_shared_pages.unwrap();
        assert!(shared >= 3, "the forked child shares its region copy-on-write: {shared}");
        assert!(a.changed_per_s.unwrap() > 0.0, "child a changed a page: {a:?}");
        let b = row(format!("{rel}/b")).unwrap();
        match b.cow_identical_per_s {
            Some(v) => assert!(v > 0.0, "b's copy equals its origin: {b:?}"),
            None => println!("SKIP identical copies: PFNs hidden"),
        }
        assert!(snap.detectors.values().sum::<u64>() >= 2, "{:?}", snap.detectors);
        // The cgroup's own accounting: a's copy-on-write copy was charged to a.
        let acct = a.accounting.clone().expect("accounting read from the cgroup2 tree");
        if memory {
            assert!(acct.current.is_some_and(|c| c >= 4096), "memory.current of a: {acct:?}");
            assert!(acct.stat.anon.is_some(), "{acct:?}");
        } else {
            println!("memory controller not enabled for cgroup2 here: MEM is '-'");
            assert_eq!(acct.current, None);
            assert!(snap.missing.iter().any(|m| m.contains("memory controller")), "{:?}", snap.missing);
        }
        assert_eq!(acct.pressure.is_some(), psi, "memory.pressure read where the kernel has PSI: {acct:?}");
    }
}

/// A Docker container's cgroup gets the name `docker run --name` gave it, from Docker's
/// state (`containers/<id>/config.v2.json`), beside the id from its path.
#[test]
fn fake_tree_container_name_from_docker_state() {
    const ID: &str = "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a09";
    let t = tempfile::tempdir().unwrap();
    let cg = format!("/system.slice/docker-{ID}.scope");
    proc_entry(&t.path().join("proc"), 40, "redis", 1000, &cg, 0);
    cgroup_dir(&t.path().join("cgroup"), "/", &[]);
    cgroup_dir(&t.path().join("cgroup"), "/system.slice", &[]);
    cgroup_dir(&t.path().join("cgroup"), &cg, &[40]);
    let d = t.path().join("state/docker/containers").join(ID);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("config.v2.json"), r#"{"ID":"x","Name":"/cache-redis"}"#).unwrap();
    let snap = Monitor::new(opts(t.path(), "/")).sample().unwrap();
    let row = snap.rows.iter().find(|r| r.cgroup == cg).unwrap();
    let i = row.identity.as_ref().unwrap();
    assert_eq!((i.kind, i.container_id.as_deref()), ("docker", Some(ID)));
    assert_eq!(i.container_name.as_deref(), Some("cache-redis"));
    let sys = snap.rows.iter().find(|r| r.cgroup == "/system.slice").unwrap();
    assert_eq!(sys.identity.as_ref().unwrap().container_name, None, "a slice is no container");
}
