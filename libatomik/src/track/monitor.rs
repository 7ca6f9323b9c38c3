//! Per-cgroup memory activity over time: the model behind `atomikctl top` and `report`.
//!
//! Readers (`procfs`, `cgroup`, `ksm`, `cow`, `dups`, `region`) give raw per-process
//! samples; a [`Monitor`] keeps the previous sample and the per-process trackers, and turns
//! two samples into per-cgroup rows with rates.

use super::cgroup::{ancestors, in_subtree, read_membership};
use super::cow::{cow_breaks, identical_copies, sample_anon, AnonSample};
use super::dups::{find_duplicates, DupProcess, DupReport};
use super::error::TrackError;
use super::ksm::{read_ksm, KsmGlobal};
use super::maps::read_maps;
use super::procfs::{list_pids, read_proc, ProcInfo};
use super::ranges::{Range, PAGE};
use super::region::{Detector, Tracker, TrackerOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where to read from and what to compute.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The proc root (`/proc`).
    pub proc_root: PathBuf,
    /// A cgroup2 mount to read membership from; `None`: from `/proc/PID/cgroup`.
    pub cgroup_root: Option<PathBuf>,
    /// The KSM sysfs directory.
    pub ksm_dir: PathBuf,
    /// Only cgroups at or below this path.
    pub subtree: String,
    /// Read pagemaps: COW-shared pages and COW breaks.
    pub cow: bool,
    /// Scan for duplicate pages (reads all candidate memory).
    pub dups: bool,
    /// Track written / changed / silent pages per process.
    pub writes: bool,
    /// Only processes of this uid (None: all).
    pub uid: Option<u32>,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            proc_root: "/proc".into(),
            cgroup_root: super::cgroup::host_cgroup2(),
            ksm_dir: "/sys/kernel/mm/ksm".into(),
            subtree: "/".into(),
            cow: true,
            dups: false,
            writes: false,
            uid: None,
        }
    }
}

/// One row of `top`: a cgroup and everything below it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupRow {
    /// cgroup path.
    pub cgroup: String,
    /// Processes in it and below.
    pub processes: u64,
    /// Σ VmRSS, bytes.
    pub rss_bytes: u64,
    /// Pages written per second (None: not tracked).
    pub written_per_s: Option<f64>,
    /// Pages whose content changed per second.
    pub changed_per_s: Option<f64>,
    /// Silent writes per second (written, content unchanged); None when not tracked or not
    /// observable for some process of the row (full-rescan mode).
    pub silent_per_s: Option<f64>,
    /// Present anonymous pages shared copy-on-write (per mapping: a page shared by two
    /// processes counts twice). Includes KSM-merged pages.
    pub cow_shared_pages: Option<u64>,
    /// Pages that went from shared to exclusive, per second.
    pub cow_breaks_per_s: Option<f64>,
    /// Of those, copies made in these processes (needs PFNs), per second.
    pub cow_copies_per_s: Option<f64>,
    /// Of those, copies whose bytes equal the origin still mapped by the parent at the same
    /// address (writes that did not need a copy), per second (needs PFNs).
    pub cow_identical_per_s: Option<f64>,
    /// Reclaimable duplicate bytes (extra copies of content kept elsewhere).
    pub dup_bytes: Option<u64>,
    /// KSM-merged bytes (Σ ksm_merging_pages).
    pub ksm_merged_bytes: Option<u64>,
    /// KSM profit, bytes (Σ ksm_process_profit).
    pub ksm_profit_bytes: Option<i64>,
}

/// A per-cgroup view of one interval.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds covered by the rates (0 for the first sample: no rates).
    pub interval_s: f64,
    /// Rows, sorted by cgroup path.
    pub rows: Vec<CgroupRow>,
    /// System-wide KSM counters.
    pub ksm: KsmGlobal,
    /// The duplicate scan, when asked for.
    pub dups: Option<DupReport>,
    /// Written-page detectors in use → number of processes.
    pub detectors: BTreeMap<String, u64>,
    /// What could not be filled in, and why.
    pub missing: Vec<String>,
}

struct ProcState {
    anon: Option<AnonSample>,
    /// The tracker and the mappings it was set up for.
    tracker: Option<(Vec<Range>, Tracker)>,
}

/// Keeps what two samples need: the previous per-process state and the trackers.
pub struct Monitor {
    opts: MonitorOptions,
    last: Option<Instant>,
    state: HashMap<i32, ProcState>,
}

#[derive(Default, Clone)]
struct ProcFigures {
    rss: u64,
    written: Option<u64>,
    changed: Option<u64>,
    silent: Option<u64>,
    cow_shared: Option<u64>,
    cow_breaks: Option<u64>,
    cow_copies: Option<u64>,
    cow_identical: Option<u64>,
    ksm_merged: Option<u64>,
    ksm_profit: Option<i64>,
    /// Processes whose silent writes are not observable.
    silent_unknown: u64,
}

fn add_opt<T: std::ops::Add<Output = T> + Copy>(a: &mut Option<T>, b: Option<T>) {
    if let Some(b) = b {
        *a = Some(a.map_or(b, |a| a + b));
    }
}

/// The private anonymous writable mappings of `pid`: when they change, the default ranges
/// are recomputed.
pub fn anon_mappings(proc_root: &Path, pid: i32) -> super::error::Result<Vec<Range>> {
    Ok(read_maps(proc_root, pid)?
        .into_iter()
        .filter(|m| m.is_private_anon() && m.write && m.read)
        .map(|m| m.range)
        .collect())
}

/// What `watch` and `top --writes` track by default: the populated parts of the private
/// anonymous writable mappings (spans of present or swapped pages, gaps under 1 MiB
/// bridged). A mapping may reserve terabytes; only what is in use is watched.
pub fn default_ranges(proc_root: &Path, pid: i32) -> super::error::Result<Vec<Range>> {
    const BRIDGE: u64 = 256 * PAGE;
    let pm = super::pagemap::Pagemap::open_in(proc_root, pid)?;
    let mut out: Vec<Range> = Vec::new();
    let mut spans = Vec::new();
    for m in read_maps(proc_root, pid)?.into_iter().filter(|m| m.is_private_anon() && m.write && m.read) {
        spans.clear();
        super::scan::populated(&pm, m.range, &mut spans)?;
        let mut cur: Option<Range> = None;
        for s in &spans {
            cur = match cur {
                Some(c) if s.start - c.end <= BRIDGE => Some(Range::new(c.start, s.end)),
                Some(c) => {
                    out.push(c);
                    Some(*s)
                }
                None => Some(*s),
            };
        }
        out.extend(cur);
    }
    Ok(out)
}

impl Monitor {
    /// A monitor with no history.
    pub fn new(opts: MonitorOptions) -> Monitor {
        Monitor { opts, last: None, state: HashMap::new() }
    }

    /// The options.
    pub fn options(&self) -> &MonitorOptions {
        &self.opts
    }

    /// Changes the options for the next samples (e.g. no duplicate scan for a sample whose
    /// only use is to start the rates).
    pub fn options_mut(&mut self) -> &mut MonitorOptions {
        &mut self.opts
    }

    /// Takes a sample and returns the rows for the interval since the previous one.
    pub fn sample(&mut self) -> super::error::Result<Snapshot> {
        let now = Instant::now();
        let dt = self.last.map(|l| now.duration_since(l).as_secs_f64()).unwrap_or(0.0);
        self.last = Some(now);
        let mut snap = Snapshot { interval_s: dt, ksm: read_ksm(&self.opts.ksm_dir), ..Default::default() };
        let procs = self.processes(&mut snap)?;
        let mut no_pagemap = 0u64;
        let mut pagemap_error: Option<String> = None;
        let mut no_pfn = false;
        let mut no_zero = false;
        let mut no_writes = 0u64;
        let mut figures: Vec<(i32, String, ProcFigures)> = Vec::new();
        let mut alive = std::collections::HashSet::new();
        for info in &procs {
            alive.insert(info.pid);
            let mut f = ProcFigures {
                rss: info.rss_bytes,
                ksm_merged: info.ksm_merging_pages.map(|p| p * PAGE),
                ksm_profit: info.ksm_profit,
                ..Default::default()
            };
            let st = self.state.entry(info.pid).or_insert(ProcState { anon: None, tracker: None });
            if self.opts.cow && info.rss_bytes > 0 {
                match sample_anon(&self.opts.proc_root, info.pid) {
                    Ok(a) => {
                        no_pfn |= !a.pfn_visible && a.present > 0;
                        no_zero |= !a.zero_page_known;
                        f.cow_shared = Some(a.shared.len() as u64);
                        if let Some(prev) = &st.anon {
                            if let Ok(b) = cow_breaks(&self.opts.proc_root, prev) {
                                f.cow_breaks = Some(b.became_exclusive);
                                f.cow_copies = b.copied;
                                // A fork child's copies can be compared with the parent's
                                // page at the same address while it is still the origin.
                                if b.copied.is_some() {
                                    f.cow_identical = Some(0);
                                }
                                if !b.copied_pages.is_empty() && info.ppid > 0 {
                                    if let Ok(c) = identical_copies(
                                        &self.opts.proc_root,
                                        info.pid,
                                        info.ppid,
                                        &b.copied_pages,
                                    ) {
                                        f.cow_identical = Some(c.identical);
                                    }
                                }
                            }
                        }
                        st.anon = Some(a);
                    }
                    Err(e) => {
                        // A process that exited meanwhile is not missing data.
                        if !matches!(e, TrackError::NoProcess { .. })
                            && Path::new(&self.opts.proc_root).join(info.pid.to_string()).exists()
                        {
                            no_pagemap += 1;
                            pagemap_error.get_or_insert_with(|| e.to_string());
                        }
                        st.anon = None;
                    }
                }
            }
            // Not ourselves: our own reads would be the activity we measure.
            if self.opts.writes && info.rss_bytes > 0 && info.pid != std::process::id() as i32 {
                match track_writes(&self.opts, info.pid, st) {
                    Some((det, w, c, s)) => {
                        *snap.detectors.entry(det.name().to_owned()).or_default() += 1;
                        f.written = Some(w);
                        f.changed = Some(c);
                        f.silent = s;
                        f.silent_unknown = s.is_none() as u64;
                    }
                    None => no_writes += 1,
                }
            }
            figures.push((info.pid, info.cgroup.clone(), f));
        }
        self.state.retain(|pid, _| alive.contains(pid));

        if self.opts.dups {
            let cands: Vec<DupProcess> = procs
                .iter()
                .filter_map(|p| {
                    let a = self.state.get(&p.pid)?.anon.as_ref()?;
                    Some(DupProcess {
                        pid: p.pid,
                        cgroup: p.cgroup.clone(),
                        ranges: a.exclusive_ranges.clone(),
                    })
                })
                .collect();
            snap.dups = Some(find_duplicates(&cands));
        }

        if let Some(uid) = self.opts.uid {
            snap.missing.push(format!(
                "only processes of uid {uid} (other users' memory needs CAP_SYS_PTRACE; \
                 atomikctl --all-users counts them without the pagemap columns)"
            ));
        }
        if no_pagemap > 0 {
            snap.missing.push(format!(
                "COW and duplicate columns leave out {no_pagemap} processes whose pagemap could \
                 not be read (ptrace read access is needed: your own processes, or \
                 CAP_SYS_PTRACE); first: {}",
                pagemap_error.as_deref().unwrap_or("?")
            ));
        }
        if no_pfn {
            snap.missing.push(
                "COW copies: page frame numbers are hidden (needs CAP_SYS_ADMIN); only \
                 shared→exclusive transitions are counted"
                    .into(),
            );
        }
        if no_zero {
            snap.missing.push(
                "zero-page mappings could not be told apart (no PAGEMAP_SCAN): counted as \
                 COW-shared"
                    .into(),
            );
        }
        if no_writes > 0 {
            snap.missing.push(format!(
                "written/changed/silent leave out {no_writes} processes whose memory is not \
                 readable (needs ptrace read access)"
            ));
        }
        if !self.opts.writes {
            snap.missing.push("written/changed/silent: not tracked (use --writes)".into());
        }
        if !self.opts.dups {
            snap.missing.push("duplicates: not scanned (use --dups)".into());
        }
        if snap.detectors.contains_key(Detector::FullRescan.name()) {
            snap.missing.push(format!(
                "silent writes: not observable for processes in {} mode ({})",
                Detector::FullRescan.name(),
                Detector::FullRescan.note()
            ));
        }
        snap.rows = self.roll_up(&figures, dt, snap.dups.as_ref());
        Ok(snap)
    }

    fn processes(&self, snap: &mut Snapshot) -> super::error::Result<Vec<ProcInfo>> {
        let mut cg_of: Option<HashMap<i32, String>> = None;
        if let Some(root) = &self.opts.cgroup_root {
            match read_membership(root) {
                Ok(m) => {
                    cg_of = Some(
                        m.into_iter()
                            .flat_map(|(cg, pids)| pids.into_iter().map(move |p| (p, cg.clone())))
                            .collect(),
                    )
                }
                Err(e) => snap.missing.push(format!("cgroupfs unreadable ({e}); using /proc/PID/cgroup")),
            }
        }
        let mut out = Vec::new();
        for pid in list_pids(&self.opts.proc_root)? {
            let Some(mut info) = read_proc(&self.opts.proc_root, pid)? else {
                continue;
            };
            if self.opts.uid.is_some_and(|u| u != info.uid) {
                continue;
            }
            if let Some(cg) = cg_of.as_ref().and_then(|m| m.get(&pid)) {
                info.cgroup = cg.clone();
            }
            // Processes outside the subtree cost nothing: no pagemap, no tracker.
            if in_subtree(&info.cgroup, &self.opts.subtree) {
                out.push(info);
            }
        }
        Ok(out)
    }

    fn roll_up(
        &self,
        figures: &[(i32, String, ProcFigures)],
        dt: f64,
        dups: Option<&DupReport>,
    ) -> Vec<CgroupRow> {
        let mut sums: BTreeMap<String, (u64, ProcFigures)> = BTreeMap::new();
        for (_, cg, f) in figures {
            for a in ancestors(cg) {
                if !in_subtree(&a, &self.opts.subtree) {
                    continue;
                }
                let (n, s) = sums.entry(a).or_default();
                *n += 1;
                s.rss += f.rss;
                add_opt(&mut s.written, f.written);
                add_opt(&mut s.changed, f.changed);
                add_opt(&mut s.silent, f.silent);
                s.silent_unknown += f.silent_unknown;
                add_opt(&mut s.cow_shared, f.cow_shared);
                add_opt(&mut s.cow_breaks, f.cow_breaks);
                add_opt(&mut s.cow_copies, f.cow_copies);
                add_opt(&mut s.cow_identical, f.cow_identical);
                add_opt(&mut s.ksm_merged, f.ksm_merged);
                add_opt(&mut s.ksm_profit, f.ksm_profit);
            }
        }
        let rate = |v: Option<u64>| (dt > 0.0).then_some(()).and(v).map(|v| v as f64 / dt);
        sums.into_iter()
            .map(|(cg, (n, s))| {
                let dup_bytes = dups.map(|d| {
                    d.per_cgroup.iter().filter(|(c, _)| in_subtree(c, &cg)).map(|(_, x)| x.bytes()).sum()
                });
                CgroupRow {
                    cgroup: cg,
                    processes: n,
                    rss_bytes: s.rss,
                    written_per_s: rate(s.written),
                    changed_per_s: rate(s.changed),
                    // A sum that leaves out processes would understate: unknown instead.
                    silent_per_s: if s.silent_unknown > 0 { None } else { rate(s.silent) },
                    cow_shared_pages: s.cow_shared,
                    cow_breaks_per_s: rate(s.cow_breaks),
                    cow_copies_per_s: rate(s.cow_copies),
                    cow_identical_per_s: rate(s.cow_identical),
                    dup_bytes,
                    ksm_merged_bytes: s.ksm_merged,
                    ksm_profit_bytes: s.ksm_profit,
                }
            })
            .collect()
    }
}

/// Checks (and creates or re-creates, when the mappings changed) the tracker of one
/// process; returns (detector, written, changed, silent) for the interval.
fn track_writes(
    opts: &MonitorOptions,
    pid: i32,
    st: &mut ProcState,
) -> Option<(Detector, u64, u64, Option<u64>)> {
    let maps = anon_mappings(&opts.proc_root, pid).ok()?;
    let fresh = !matches!(&st.tracker, Some((m, _)) if *m == maps);
    if fresh {
        st.tracker = None;
        let ranges = default_ranges(&opts.proc_root, pid).ok()?;
        if ranges.is_empty() {
            return None;
        }
        let t = Tracker::watch(pid, &ranges, TrackerOptions::default()).ok()?;
        let det = t.detector();
        st.tracker = Some((maps, t));
        // A new baseline: nothing to report for this interval.
        return Some((det, 0, 0, (det != Detector::FullRescan).then_some(0)));
    }
    let (_, t) = st.tracker.as_mut()?;
    let r = t.check().ok()?;
    t.checkpoint().ok()?;
    Some((r.detector, r.written_pages(), r.changed_pages(), r.silent_observable.then(|| r.silent_pages())))
}
