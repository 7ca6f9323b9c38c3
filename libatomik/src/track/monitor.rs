//! Per-cgroup memory activity over time: the model behind `atomikctl top` and `report`.
//!
//! Readers (`procfs`, `cgroup`, `ksm`, `cow`, `dups`, `region`) give raw per-process
//! samples; a [`Monitor`] keeps the previous sample and the per-process trackers, and turns
//! two samples into per-cgroup rows with rates.

use super::accounting::{read_accounting, Accounting};
use super::cgroup::{ancestors, in_subtree, read_membership_under};
use super::container::{identify, Identity};
use super::cow::{cow_breaks, identical_copies, sample_anon, AnonSample, CowBreaks};
use super::dups::{add_shared_candidates, find_duplicates, DupProcess, DupReport};
use super::error::TrackError;
use super::kernel_cow::{self, ProcessCow};
use super::ksm::{ksm_pages, read_ksm, KsmGlobal, KsmPages};
use super::maps::{read_maps, Mapping};
use super::newcomers::{old_sharers, Newcomers, OldSharers, Samples, Since};
use super::procfs::{list_pids, read_proc_kept, KeptFiles, ProcInfo, Want};
use super::ranges::{Range, PAGE};
use super::region::{Detector, Tracker, TrackerOptions};
use super::runtime::{Names, RuntimeState};
use super::writable::{writable_mappings, write_ranges};
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
    /// Only these processes (None: all).
    pub pids: Option<Vec<i32>>,
    /// How `writes` finds written pages (None: the best available per process, see
    /// [`Tracker::watch`]).
    pub detector: Option<Detector>,
    /// Where the container runtimes keep their state (container names).
    pub runtime_state: RuntimeState,
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
            pids: None,
            detector: None,
            runtime_state: RuntimeState::default(),
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
    /// Of those, copies made in these processes, per second: from PFNs (CAP_SYS_ADMIN), else
    /// from `/dev/atomik` (REGION_COW) when loaded ([`Snapshot::cow_engines`] says which).
    pub cow_copies_per_s: Option<f64>,
    /// Of those, copies whose bytes equal their origin (writes that did not need a copy), per
    /// second: with PFNs, compared with the page the parent still maps at the same address;
    /// through `/dev/atomik`, the copy's fingerprint equals the shared page's at the previous
    /// sample.
    pub cow_identical_per_s: Option<f64>,
    /// Reclaimable duplicate bytes (extra copies of content kept elsewhere).
    pub dup_bytes: Option<u64>,
    /// KSM-merged bytes: distinct KSM pages the row's processes map (without PFNs, one
    /// process's `ksm_merging_pages`).
    pub ksm_merged_bytes: Option<u64>,
    /// KSM saving, bytes: each mapping of a KSM page mapped `n` times carries `(n − 1)/n`
    /// of a page (so rows add up); without PFNs one process's `ksm_process_profit`.
    pub ksm_profit_bytes: Option<i64>,
    /// What the kernel accounts to the cgroup itself (memory controller, PSI); `None`
    /// without a cgroup2 tree to read.
    pub accounting: Option<Accounting>,
    /// The systemd unit, container or pod the path names.
    pub identity: Option<Identity>,
}

/// One process of a snapshot: what drilling into a cgroup shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessRow {
    /// Process id.
    pub pid: i32,
    /// `Name:` from status.
    pub name: String,
    /// Its cgroup.
    pub cgroup: String,
    /// VmRSS, bytes.
    pub rss_bytes: u64,
    /// Pages written per second (with --writes).
    pub written_per_s: Option<f64>,
    /// Anonymous pages shared copy-on-write.
    pub cow_shared_pages: Option<u64>,
    /// How its writes are found (with --writes).
    pub detector: Option<&'static str>,
    /// Bytes its write tracking re-read this interval when it can only be tracked by full
    /// rescan (no soft-dirty, not armed for PAGEMAP_SCAN): the cost of watching it.
    pub rescan_bytes: Option<u64>,
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
    /// Engines that produced the COW copy columns ([`COW_ENGINE_PFN`], [`COW_ENGINE_KERNEL`])
    /// → number of processes.
    pub cow_engines: BTreeMap<String, u64>,
    /// What could not be filled in, and why.
    pub missing: Vec<String>,
    /// Every process of the view.
    pub processes: Vec<ProcessRow>,
    /// Processes tracked by full rescan: (pid, name, bytes re-read this interval), most
    /// costly first.
    pub rescans: Vec<(i32, String, u64)>,
    /// Processes whose pagemap was not read again: unchanged since the previous sample
    /// (same fault counts, RSS and KSM pages, no page shared copy-on-write).
    pub pagemaps_reused: u64,
    /// Processes that changed since the previous sample but whose pagemap was not read
    /// because none of their pages can be shared: no shared or swapped page at the previous
    /// sample, the same KSM count, and no process created since shares their pages (see
    /// [`old_sharers`](super::newcomers::old_sharers)). Their COW columns are 0.
    pub pagemaps_known_exclusive: u64,
}

/// [`Snapshot::cow_engines`]: copies told apart by page frame numbers from pagemap.
pub const COW_ENGINE_PFN: &str = "pagemap PFNs";
/// [`Snapshot::cow_engines`]: copies counted by the kernel module (REGION_COW).
pub const COW_ENGINE_KERNEL: &str = "/dev/atomik REGION_COW";

struct ProcState {
    /// Its start time: another one means another process got the pid.
    start_ticks: Option<u64>,
    /// Its waited-for children's fault counts at the previous sample.
    child_faults: Option<(u64, u64)>,
    anon: Option<AnonSample>,
    /// The kernel engine's COW watch, used when PFNs are hidden.
    kcow: Option<ProcessCow>,
    /// What `anon` was read under: while it stays the same and `anon` has no shared page,
    /// the pagemap is not read again.
    anon_sig: Option<AnonSig>,
    /// The tracker and the mappings it was set up for.
    tracker: Option<(Vec<Mapping>, Tracker)>,
}

/// What must stay equal for a process's pagemap sample to still hold. A process changes
/// its own anonymous pages by faulting (first touch, swap-in, copy on write: its fault
/// counts move) or by freeing them (its RSS moves); KSM merging moves `ksm_merging_pages`.
/// A fork shares the parent's pages without a fault in the parent, but the parent faults on
/// its next write to any page (its stack, as the fork returns). Pages shared with others can
/// change by the others' writes and exits alone, so a sample with shared pages is never
/// reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AnonSig {
    faults: (u64, u64),
    rss: u64,
    ksm_merging: Option<u64>,
}

/// Keeps what two samples need: the previous per-process state and the trackers.
pub struct Monitor {
    opts: MonitorOptions,
    names: Names,
    last: Option<Instant>,
    state: HashMap<i32, ProcState>,
    /// Whether `/dev/atomik` can give COW figures (looked up at the first need).
    kernel_cow: Option<bool>,
    /// The processes' stat, statm and ksm_stat, open from one sample to the next.
    kept: KeptFiles,
    /// The processes created since the previous sample.
    newcomers: Newcomers,
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
    /// The KSM pages it maps, when PFNs are visible.
    ksm_pages: Option<KsmPages>,
    /// Processes whose silent writes are not observable.
    silent_unknown: u64,
    /// Processes whose written/changed figures for the interval are unknown.
    writes_unknown: u64,
    detector: Option<&'static str>,
    rescan_bytes: Option<u64>,
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

/// Mappings larger than this are watched on their populated parts only (a fingerprint slot
/// per page of a terabyte reservation would cost more than the memory in use).
pub const WHOLE_MAPPING_MAX: u64 = 4 << 30;

/// The populated-or-not ranges of every private anonymous writable mapping (what the
/// COW engines watch): whole — pages first touched later are seen — except mappings over
/// [`WHOLE_MAPPING_MAX`], of which only the populated parts (spans of present or swapped
/// pages, gaps under 1 MiB bridged) are watched. Write tracking also watches private file
/// mappings: [`write_ranges`](super::writable::write_ranges).
pub fn default_ranges(proc_root: &Path, pid: i32) -> super::error::Result<Vec<Range>> {
    let mut out: Vec<Range> = Vec::new();
    let mut pm = None;
    for r in anon_mappings(proc_root, pid)? {
        super::writable::watched_parts(proc_root, pid, &mut pm, r, &mut out)?;
    }
    Ok(out)
}

impl Monitor {
    /// A monitor with no history.
    pub fn new(opts: MonitorOptions) -> Monitor {
        Monitor {
            names: Names::new(opts.runtime_state.clone()),
            opts,
            last: None,
            state: HashMap::new(),
            kernel_cow: None,
            kept: KeptFiles::default(),
            newcomers: Newcomers::new(),
        }
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
        let want = Want { uid: self.opts.uid.is_some(), ksm_stat: !snap.ksm.nothing_merged() };
        // Before any pagemap: a process created during this sample is new in the next one.
        let since = if self.opts.cow { self.newcomers.observe(&self.opts.proc_root) } else { Since::Unknown };
        let mut known_exclusive = 0u64;
        let procs = self.processes(&mut snap, want)?;
        let (sharers, mut presampled) = self.old_sharers(&since, &procs);
        let mut no_pagemap = 0u64;
        let mut pagemap_error: Option<String> = None;
        let mut no_pfn = false;
        let mut no_zero = false;
        let mut no_writes = 0u64;
        let (mut no_detector, mut no_detector_why) = (0u64, None::<String>);
        let mut restarted = 0u64;
        let mut reused = 0u64;
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
            let fresh = || ProcState {
                start_ticks: info.start_ticks,
                child_faults: None,
                anon: None,
                kcow: None,
                anon_sig: None,
                tracker: None,
            };
            let st = self.state.entry(info.pid).or_insert_with(fresh);
            if st.start_ticks != info.start_ticks {
                *st = fresh();
            }
            st.child_faults = info.child_faults;
            if self.opts.cow && info.rss_bytes > 0 {
                // Read before the pagemap, so a change during the read shows next time.
                let sig = info.faults.map(|faults| AnonSig {
                    faults,
                    rss: info.rss_bytes,
                    ksm_merging: info.ksm_merging_pages,
                });
                let shared_none = !self.opts.dups && st.anon.as_ref().is_some_and(|a| a.shared.is_empty());
                let named = matches!(&sharers, OldSharers::These(_)) && sharers.may_include(info.pid);
                let unchanged = shared_none && sig.is_some() && st.anon_sig == sig && !named;
                // Changed, but it shared nothing and held no swap entry, KSM merged nothing
                // new for it, and no process created since shares its pages: none of its
                // pages can be shared now, and its COW figures are 0 without a read.
                let exclusive = !unchanged
                    && shared_none
                    && !matches!(since, Since::Unknown)
                    && !sharers.may_include(info.pid)
                    && sig.zip(st.anon_sig).is_some_and(|(s, p)| s.ksm_merging == p.ksm_merging)
                    && st.anon.as_ref().is_some_and(|a| a.swapped == 0);
                let sampled = if unchanged || exclusive {
                    if unchanged {
                        reused += 1;
                    } else {
                        known_exclusive += 1;
                    }
                    let a = st.anon.take().expect("checked above");
                    let b = CowBreaks { copied: a.pfn_visible.then_some(0), ..Default::default() };
                    Ok((a, Some(b)))
                } else {
                    let a = presampled
                        .remove(&info.pid)
                        .unwrap_or_else(|| sample_anon(&self.opts.proc_root, info.pid));
                    a.map(|a| {
                        let b = st.anon.as_ref().and_then(|prev| cow_breaks(&self.opts.proc_root, prev).ok());
                        (a, b)
                    })
                };
                match sampled {
                    Ok((a, breaks)) => {
                        if !a.pfn_visible && a.present > 0 {
                            // Without PFNs the kernel engine can still tell copies apart
                            // (only for the real /proc: its pids are the module's).
                            let usable = *self.kernel_cow.get_or_insert_with(|| {
                                self.opts.proc_root == Path::new("/proc") && kernel_cow::available()
                            });
                            // An unchanged process with no shared page has no copy to count;
                            // the kernel's record keeps any break for its next sample.
                            let k = usable.then(|| {
                                if unchanged || exclusive {
                                    Ok(None)
                                } else {
                                    kernel_cow::sample_process(&self.opts.proc_root, info.pid, &mut st.kcow)
                                }
                            });
                            match k {
                                Some(Ok(k)) => {
                                    f.cow_copies = Some(k.map_or(0, |k| k.breaks));
                                    f.cow_identical = Some(k.map_or(0, |k| k.identical));
                                    *snap.cow_engines.entry(COW_ENGINE_KERNEL.into()).or_default() += 1;
                                }
                                _ => no_pfn = true,
                            }
                        } else if a.pfn_visible && breaks.is_some() {
                            *snap.cow_engines.entry(COW_ENGINE_PFN.into()).or_default() += 1;
                        }
                        no_zero |= !a.zero_page_known;
                        f.cow_shared = Some(a.shared.len() as u64);
                        if info.ksm_merging_pages.is_some_and(|p| p > 0) {
                            f.ksm_pages = ksm_pages(&a.shared);
                        }
                        if let Some(b) = breaks {
                            f.cow_breaks = Some(b.became_exclusive);
                            f.cow_copies = b.copied.or(f.cow_copies);
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
                        st.anon = Some(a);
                        st.anon_sig = sig;
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
                        st.anon_sig = None;
                    }
                }
            }
            // Not ourselves: our own reads would be the activity we measure.
            if self.opts.writes && info.rss_bytes > 0 && info.pid != std::process::id() as i32 {
                let known = st.tracker.is_some();
                match track_writes(&self.opts, info.pid, st) {
                    Writes::Counted { detector, written, changed, silent, read } => {
                        *snap.detectors.entry(detector.name().to_owned()).or_default() += 1;
                        f.detector = Some(detector.name());
                        if detector == Detector::FullRescan {
                            f.rescan_bytes = Some(read * PAGE);
                        }
                        f.written = Some(written);
                        f.changed = Some(changed);
                        f.silent = silent;
                        f.silent_unknown = silent.is_none() as u64;
                    }
                    Writes::Baseline(detector) => {
                        *snap.detectors.entry(detector.name().to_owned()).or_default() += 1;
                        f.detector = Some(detector.name());
                        // A process seen for the first time starts from its baseline; one
                        // whose tracker had to start over has no figure for the interval.
                        if known {
                            f.writes_unknown = 1;
                            restarted += 1;
                        } else {
                            f.written = Some(0);
                            f.changed = Some(0);
                            f.silent = (detector != Detector::FullRescan).then_some(0);
                            f.silent_unknown = f.silent.is_none() as u64;
                        }
                    }
                    Writes::Unreadable => no_writes += 1,
                    Writes::Unavailable(why) => {
                        no_detector += 1;
                        no_detector_why.get_or_insert(why);
                    }
                }
            }
            snap.processes.push(ProcessRow {
                pid: info.pid,
                name: info.name.clone(),
                cgroup: info.cgroup.clone(),
                rss_bytes: info.rss_bytes,
                written_per_s: f.written.filter(|_| dt > 0.0).map(|w| w as f64 / dt),
                cow_shared_pages: f.cow_shared,
                detector: f.detector,
                rescan_bytes: f.rescan_bytes,
            });
            if let Some(b) = f.rescan_bytes {
                snap.rescans.push((info.pid, info.name.clone(), b));
            }
            figures.push((info.pid, info.cgroup.clone(), f));
        }
        self.state.retain(|pid, _| alive.contains(pid));
        self.kept.retain(|pid| alive.contains(&pid));
        snap.pagemaps_reused = reused;
        snap.pagemaps_known_exclusive = known_exclusive;
        snap.rescans.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));

        if self.opts.dups {
            let (mut cands, samples): (Vec<DupProcess>, Vec<&AnonSample>) = procs
                .iter()
                .filter_map(|p| {
                    let a = self.state.get(&p.pid)?.anon.as_ref()?;
                    let d = DupProcess {
                        pid: p.pid,
                        cgroup: p.cgroup.clone(),
                        ranges: a.exclusive_ranges.clone(),
                    };
                    Some((d, a))
                })
                .unzip();
            if !add_shared_candidates(&mut cands, &samples) && samples.iter().any(|s| !s.shared.is_empty()) {
                snap.missing.push(
                    "duplicates: pages shared copy-on-write are left out (telling their physical \
                     pages apart needs CAP_SYS_ADMIN)"
                        .into(),
                );
            }
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
                "COW copies: page frame numbers are hidden (needs CAP_SYS_ADMIN) and /dev/atomik \
                 could not count them (not loaded, or no access to the process); only \
                 shared→exclusive transitions are counted for those processes"
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
        if no_detector > 0 {
            snap.missing.push(format!(
                "written/changed/silent leave out {no_detector} processes the detector asked for \
                 cannot track; first: {}",
                no_detector_why.as_deref().unwrap_or("?")
            ));
        }
        if restarted > 0 {
            snap.missing.push(format!(
                "written/changed/silent: '-' where {restarted} processes had to be tracked anew \
                 (their mappings changed in a way the tracker could not follow); figures \
                 again from the next interval"
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
        let ksm_unknown = figures
            .iter()
            .filter(|(_, _, f)| f.ksm_pages.is_none() && f.ksm_merged.is_some_and(|m| m > 0))
            .count();
        if ksm_unknown > 1 {
            snap.missing.push(
                "KSM, KSM-PROFIT: '-' on rows with more than one process merging pages: without \
                 page frame numbers (CAP_SYS_ADMIN) the pages they share would count twice"
                    .into(),
            );
        }
        snap.rows = self.roll_up(&figures, dt, snap.dups.as_ref());
        let acct: Vec<&Accounting> = snap.rows.iter().filter_map(|r| r.accounting.as_ref()).collect();
        if self.opts.cgroup_root.is_none() {
            snap.missing.push(
                "cgroup accounting (MEM, %LIM, ANON, FILE, SWAP, OOM-KILL, PSI): no cgroup2 mount".into(),
            );
        } else if acct.iter().all(|a| !a.has_memory_controller()) {
            snap.missing.push(
                "MEM, %LIM, ANON, FILE, SWAP, OOM-KILL: the cgroup v2 memory controller is not enabled for \
                 these cgroups (the root cgroup has none; on hybrid hosts memory is a cgroup v1 controller)"
                    .into(),
            );
        }
        Ok(snap)
    }

    /// The older processes that may share pages with those created since the previous
    /// sample, and the samples read to tell. A pid that is new had another process's state
    /// here if the pid was reused: it is dropped.
    fn old_sharers(&mut self, since: &Since, procs: &[ProcInfo]) -> (OldSharers, Samples) {
        let mut samples = Samples::new();
        let sharers = match since {
            Since::Unknown => OldSharers::Any,
            Since::NoFork => OldSharers::None,
            Since::New(new) => {
                for pid in new {
                    self.state.remove(pid);
                }
                // Those read whatever the answer: they shared or held swap entries.
                let read_anyway: Vec<i32> = procs
                    .iter()
                    .filter(|p| {
                        self.state
                            .get(&p.pid)
                            .and_then(|s| s.anon.as_ref())
                            .is_some_and(|a| !a.shared.is_empty() || a.swapped > 0)
                    })
                    .map(|p| p.pid)
                    .collect();
                // Those that reaped a child: a double fork's grandparent waits for the
                // middle process, and maps the grandchild's pages.
                let reapers: Vec<i32> = procs
                    .iter()
                    .filter(|p| {
                        let before = self.state.get(&p.pid).and_then(|s| s.child_faults);
                        before.is_some() && p.child_faults != before
                    })
                    .map(|p| p.pid)
                    .collect();
                old_sharers(&self.opts.proc_root, new, &read_anyway, &reapers, &mut samples)
            }
        };
        (sharers, samples)
    }

    fn processes(&mut self, snap: &mut Snapshot, want: Want) -> super::error::Result<Vec<ProcInfo>> {
        // Membership from the cgroupfs, of the subtree only: processes outside it are not
        // read at all.
        let mut cg_of: Option<BTreeMap<i32, String>> = None;
        if let Some(root) = &self.opts.cgroup_root {
            match read_membership_under(root, &self.opts.subtree) {
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
        let pids: Vec<i32> = match &cg_of {
            Some(m) => m.keys().copied().collect(),
            None => list_pids(&self.opts.proc_root)?,
        };
        let mut out = Vec::new();
        for pid in pids {
            if self.opts.pids.as_ref().is_some_and(|p| !p.contains(&pid)) {
                continue;
            }
            let cg = cg_of.as_ref().and_then(|m| m.get(&pid)).map(String::as_str);
            let Some(info) = read_proc_kept(&mut self.kept, &self.opts.proc_root, pid, cg, want)? else {
                continue;
            };
            if self.opts.uid.is_some_and(|u| info.uid != Some(u)) {
                continue;
            }
            // Processes outside the subtree cost nothing: no pagemap, no tracker.
            if in_subtree(&info.cgroup, &self.opts.subtree) {
                out.push(info);
            }
        }
        Ok(out)
    }

    fn roll_up(
        &mut self,
        figures: &[(i32, String, ProcFigures)],
        dt: f64,
        dups: Option<&DupReport>,
    ) -> Vec<CgroupRow> {
        let mut sums: BTreeMap<String, (u64, ProcFigures)> = BTreeMap::new();
        let mut ksm: BTreeMap<String, RowKsm> = BTreeMap::new();
        for (_, cg, f) in figures {
            for a in ancestors(cg) {
                if !in_subtree(&a, &self.opts.subtree) {
                    continue;
                }
                ksm.entry(a.clone()).or_default().add(f);
                let (n, s) = sums.entry(a).or_default();
                *n += 1;
                s.rss += f.rss;
                add_opt(&mut s.written, f.written);
                add_opt(&mut s.changed, f.changed);
                add_opt(&mut s.silent, f.silent);
                s.silent_unknown += f.silent_unknown;
                s.writes_unknown += f.writes_unknown;
                add_opt(&mut s.cow_shared, f.cow_shared);
                add_opt(&mut s.cow_breaks, f.cow_breaks);
                add_opt(&mut s.cow_copies, f.cow_copies);
                add_opt(&mut s.cow_identical, f.cow_identical);
            }
        }
        let rate = |v: Option<u64>| (dt > 0.0).then_some(()).and(v).map(|v| v as f64 / dt);
        sums.into_iter()
            .map(|(cg, (n, s))| {
                let (ksm_merged_bytes, ksm_profit_bytes) = ksm.remove(&cg).unwrap_or_default().bytes();
                let dup_bytes = dups.map(|d| {
                    d.per_cgroup.iter().filter(|(c, _)| in_subtree(c, &cg)).map(|(_, x)| x.bytes()).sum()
                });
                let accounting = self.opts.cgroup_root.as_deref().map(|root| read_accounting(root, &cg));
                CgroupRow {
                    identity: identify(&cg).map(|mut i| {
                        if let Some(id) = &i.container_id {
                            i.container_name = self.names.get(i.kind, id);
                        }
                        i
                    }),
                    accounting,
                    cgroup: cg,
                    processes: n,
                    rss_bytes: s.rss,
                    // A sum that leaves out processes would understate: unknown instead.
                    written_per_s: if s.writes_unknown > 0 { None } else { rate(s.written) },
                    changed_per_s: if s.writes_unknown > 0 { None } else { rate(s.changed) },
                    silent_per_s: if s.silent_unknown + s.writes_unknown > 0 { None } else { rate(s.silent) },
                    cow_shared_pages: s.cow_shared,
                    cow_breaks_per_s: rate(s.cow_breaks),
                    cow_copies_per_s: rate(s.cow_copies),
                    cow_identical_per_s: rate(s.cow_identical),
                    dup_bytes,
                    ksm_merged_bytes,
                    ksm_profit_bytes,
                }
            })
            .collect()
    }
}

/// What write tracking gave for one process in one interval.
enum Writes {
    /// Pages written, changed and silently rewritten (None: not observable).
    Counted { detector: Detector, written: u64, changed: u64, silent: Option<u64>, read: u64 },
    /// The tracker started over (a new process, or mappings it could not follow): no
    /// figure for this interval.
    Baseline(Detector),
    /// The memory could not be read.
    Unreadable,
    /// The detector asked for ([`MonitorOptions::detector`]) cannot be used for it: why.
    Unavailable(String),
}

/// The KSM figures of one row, from its processes' KSM pages when PFNs are visible, or else
/// from their `ksm_stat` where that cannot count a page twice (at most one process of the
/// row merges pages: summing two would count each page they share twice).
#[derive(Default)]
struct RowKsm {
    pfns: std::collections::HashSet<u64>,
    saved_pages: f64,
    from_pfns: u64,
    /// ksm_stat of processes without PFN data that merge pages: (merging pages, profit).
    stat: Vec<(u64, i64)>,
    any_stat: bool,
}

impl RowKsm {
    fn add(&mut self, f: &ProcFigures) {
        self.any_stat |= f.ksm_merged.is_some();
        match (&f.ksm_pages, f.ksm_merged) {
            (Some(k), _) => {
                self.from_pfns += 1;
                self.pfns.extend(&k.pfns);
                self.saved_pages += k.saved_pages;
            }
            (None, Some(m)) if m > 0 => self.stat.push((m, f.ksm_profit.unwrap_or(0))),
            _ => {}
        }
    }

    /// (merged bytes: distinct KSM pages the row maps; profit bytes: their share of the
    /// saving), `None` where it cannot be told.
    fn bytes(self) -> (Option<u64>, Option<i64>) {
        match self.stat.len() {
            _ if !self.any_stat && self.from_pfns == 0 => (None, None),
            0 => (Some(self.pfns.len() as u64 * PAGE), Some((self.saved_pages * PAGE as f64).round() as i64)),
            1 if self.from_pfns == 0 => (Some(self.stat[0].0), Some(self.stat[0].1)),
            _ => (None, None),
        }
    }
}

/// Checks the tracker of one process, first following a change of its mappings
/// ([`Tracker::remap`]) so the interval's writes still count; creates a tracker for a new
/// process.
fn track_writes(opts: &MonitorOptions, pid: i32, st: &mut ProcState) -> Writes {
    let Ok(maps) = writable_mappings(&opts.proc_root, pid) else { return Writes::Unreadable };
    if let Some((m, t)) = st.tracker.as_mut() {
        let followed = *m == maps
            || write_ranges(&opts.proc_root, pid).is_ok_and(|r| !r.is_empty() && t.remap(&r).is_ok());
        if followed {
            *m = maps.clone();
            if let Ok(r) = t.check() {
                if t.checkpoint().is_ok() {
                    return Writes::Counted {
                        detector: r.detector,
                        written: r.written_pages(),
                        changed: r.changed_pages(),
                        silent: r.silent_observable.then(|| r.silent_pages()),
                        read: r.pages_read,
                    };
                }
            }
        }
    }
    st.tracker = None;
    let Ok(ranges) = write_ranges(&opts.proc_root, pid) else { return Writes::Unreadable };
    if ranges.is_empty() {
        return Writes::Unreadable;
    }
    match Tracker::watch(
        pid,
        &ranges,
        TrackerOptions { detector: opts.detector, ..TrackerOptions::default() },
    ) {
        Ok(t) => {
            let det = t.detector();
            st.tracker = Some((maps, t));
            Writes::Baseline(det)
        }
        Err(e @ TrackError::DetectorUnavailable { .. }) => Writes::Unavailable(e.to_string()),
        Err(_) => Writes::Unreadable,
    }
}
