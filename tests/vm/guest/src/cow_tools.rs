//! The kernel COW engine through the library and atomikctl: an unprivileged user (no PFNs)
//! gets COW copy figures from /dev/atomik, `atomikctl status` and `top`'s notes name the engine
//! of each column, and root keeps the PFN engine.

use crate::check::Report;
use crate::cow::{Family, N, NEW, SAME};
use crate::system::{become_user, in_child, reap, spawn_ctl};
use atomik::track::kernel_cow::{caller_engine, CowEngine, KernelCow};
use atomik::track::monitor::{default_ranges, COW_ENGINE_KERNEL, COW_ENGINE_PFN};
use atomik::track::ranges::Range;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;

const PAGE: u64 = 4096;

/// `KernelCow` as uid 1000 on its own process: the exact figures of the workload, from the
/// whole populated anonymous memory of the child as from the one mapping.
fn library_as_user() -> Result<(), String> {
    let f = Family::start(N, Some(1000))?;
    in_child(become_user, || {
        ensure!(caller_engine() == CowEngine::Kernel, "uid 1000 engine: {:?}", caller_engine());
        let one = [Range::new(f.addr, f.addr + N * PAGE)];
        let mut region = KernelCow::watch(f.child, &one).map_err(|e| e.to_string())?;
        let ranges = default_ranges(Path::new("/proc"), f.child).map_err(|e| e.to_string())?;
        let mut all = KernelCow::watch(f.child, &ranges).map_err(|e| e.to_string())?;
        f.write_all()?;
        let k = (NEW.len() + SAME.len()) as u64;
        let r = region.sample().map_err(|e| e.to_string())?;
        ensure!((r.shared, r.breaks, r.identical) == (N - k, k, SAME.len() as u64), "one mapping: {r:?}");
        let a = all.sample().map_err(|e| e.to_string())?;
        ensure!((a.breaks, a.identical) == (k, SAME.len() as u64), "all populated memory: {a:?}");
        Ok(())
    })
}

/// `atomikctl status --json`, then `atomikctl top --json` as `uid` (root when None): two
/// refreshes 3 s apart with the child's writes between them; returns (status, second refresh).
fn top_around_writes(uid: Option<u32>, f: &Family) -> Result<(Value, Value), String> {
    let (pid, out) = spawn_ctl(uid, &["status", "--json"], &[], 1)?;
    let status: Value = serde_json::from_reader(out).map_err(|e| format!("status JSON: {e}"))?;
    reap(pid);
    let (pid, out) = spawn_ctl(uid, &["top", "--json", "--interval", "3", "--count", "2"], &[], 1)?;
    let mut lines = BufReader::new(out).lines();
    let first = lines.next().ok_or("top printed nothing")?.map_err(|e| e.to_string());
    // Written while top sleeps before its next sample.
    let wrote = first.is_ok().then(|| f.write_all());
    let second = lines.next().ok_or("top printed one refresh").map(|l| l.map_err(|e| e.to_string()));
    reap(pid);
    serde_json::from_str::<Value>(&first?).map_err(|e| format!("top JSON: {e}"))?;
    wrote.unwrap_or(Ok(()))?;
    let second: Value = serde_json::from_str(&second??).map_err(|e| format!("top JSON: {e}"))?;
    Ok((status, second))
}

/// Copies and identical copies in the root cgroup's row of a `top` refresh, as counts.
fn counts(snap: &Value) -> Result<(u64, u64), String> {
    let dt = snap["interval_s"].as_f64().ok_or("no interval")?;
    let rows = snap["rows"].as_array().ok_or("no rows")?;
    let row = rows.iter().find(|r| r["cgroup"] == "/").ok_or("no / row")?;
    let n = |k: &str| row[k].as_f64().map(|v| (v * dt).round() as u64).ok_or(format!("no {k} in {row}"));
    Ok((n("cow_copies_per_s")?, n("cow_identical_per_s")?))
}

fn atomikctl_engines() -> Result<(), String> {
    let k = (NEW.len() + SAME.len()) as u64;
    // uid 1000: the family and atomikctl are its only processes, so the counts are exact.
    let f = Family::start(N, Some(1000))?;
    let (status, snap) = top_around_writes(Some(1000), &f)?;
    ensure!(status["cow_engine"] == COW_ENGINE_KERNEL, "status as uid 1000: {status}");
    ensure!(snap["cow_engines"][COW_ENGINE_KERNEL].as_u64() >= Some(2), "engines: {}", snap["cow_engines"]);
    ensure!(snap["cow_engines"].get(COW_ENGINE_PFN).is_none(), "engines: {}", snap["cow_engines"]);
    let (copies, identical) = counts(&snap)?;
    ensure!(
        (copies, identical) == (k, SAME.len() as u64),
        "uid 1000 top: {copies} copies, {identical} identical"
    );
    let notes = snap["missing"].to_string();
    ensure!(!notes.contains("page frame numbers are hidden"), "a note says copies are missing: {notes}");
    drop(f);
    // Root: PFNs, every process counted (the family's copies among them).
    let f = Family::start(N, None)?;
    let (status, snap) = top_around_writes(None, &f)?;
    ensure!(status["cow_engine"] == COW_ENGINE_PFN, "status as root: {status}");
    ensure!(
        snap["cow_engines"].get(COW_ENGINE_KERNEL).is_none(),
        "root used the kernel: {}",
        snap["cow_engines"]
    );
    let (copies, identical) = counts(&snap)?;
    ensure!(
        copies >= k && identical >= SAME.len() as u64,
        "root top: {copies} copies, {identical} identical"
    );
    Ok(())
}

pub fn run(report: &mut Report) {
    report
        .run("cow: the library's KernelCow as uid 1000 gives the workload's exact figures", library_as_user);
    report.run(
        "cow: atomikctl status/top name the engine; uid 1000 gets copies from /dev/atomik",
        atomikctl_engines,
    );
}
