//! Memory change tracking commands: `watch`, `top`, `report`.

pub mod columns;
pub mod exporter;
pub mod metrics;
pub mod report;
pub mod top;
pub mod tui;
pub mod watch;

use std::path::PathBuf;

use clap::Args;

use atomik::track::error::TrackError;
use atomik::track::monitor::MonitorOptions;
use atomik::track::runtime::RuntimeState;

use crate::BadInput;

/// What `top` and `report` look at and compute.
#[derive(Args, Debug, Clone)]
pub struct MonitorArgs {
    /// Only this cgroup and its descendants (a cgroup v2 path such as /system.slice).
    #[arg(long, default_value = "/")]
    pub cgroup: String,
    /// Scan for duplicate pages (reads all candidate anonymous memory once per sample).
    #[arg(long)]
    pub dups: bool,
    /// Track written/changed/silent pages per process. Opt-in: it keeps a fingerprint per
    /// page, clears the processes' soft-dirty bits each interval (which disturbs other
    /// soft-dirty users such as CRIU), and without soft-dirty re-reads every page.
    #[arg(long)]
    pub writes: bool,
    /// How --writes finds written pages: auto (PAGEMAP_SCAN where the process armed its
    /// memory, else soft-dirty, else a full rescan), or one of them for every process — e.g.
    /// full-rescan, which reads every page each interval but leaves the processes'
    /// soft-dirty bits alone (another soft-dirty user, such as CRIU, is not disturbed).
    #[arg(long, value_enum, default_value = "auto")]
    pub detector: watch::DetectorArg,
    /// Leave out the pagemap columns (COW-SHARED, COW breaks and copies, KSM from PFNs,
    /// duplicates): the cheapest sample, for large machines.
    #[arg(long)]
    pub no_cow: bool,
    /// Only this process (repeatable).
    #[arg(long = "pid")]
    pub pids: Vec<i32>,
    /// Include other users' processes (default: all as root, your own otherwise).
    #[arg(long)]
    pub all_users: bool,
    /// Columns to show, comma-separated (or `all`): processes, memory_current_bytes,
    /// memory_limit_percent, anon_bytes, file_bytes, swap_bytes, memory_events_oom_kill,
    /// memory_pressure_some_avg10, rss_bytes, written_per_s, changed_per_s, silent_per_s,
    /// cow_shared_pages, cow_breaks_per_s, cow_copies_per_s, dup_bytes, ksm_merged_bytes,
    /// ksm_profit_bytes, and the other accounting keys of docs/tracking.md. Default: those
    /// in the table; JSON, CSV and OpenMetrics carry all.
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Read processes from this directory instead of /proc (tests, containers).
    #[arg(long, hide = true)]
    pub proc_root: Option<PathBuf>,
    /// Read cgroup membership from this cgroup2 tree instead of the host's mount.
    #[arg(long, hide = true)]
    pub cgroup_root: Option<PathBuf>,
    /// Read KSM counters from this directory instead of /sys/kernel/mm/ksm.
    #[arg(long, hide = true)]
    pub ksm_dir: Option<PathBuf>,
    /// Read container runtimes' state (container names) from DIR/docker and
    /// DIR/containers/storage instead of /var/lib.
    #[arg(long, hide = true)]
    pub runtime_state: Option<PathBuf>,
}

impl MonitorArgs {
    /// The library options these flags stand for; bad input when `--cgroup` names no
    /// cgroup of the tree read.
    pub fn options(&self) -> Result<MonitorOptions, BadInput> {
        // SAFETY: geteuid cannot fail and has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let d = MonitorOptions::default();
        let cgroup_root = self.cgroup_root.clone().or(d.cgroup_root);
        if !self.cgroup.starts_with('/') {
            return Err(BadInput(format!("--cgroup {:?}: a cgroup path starts with /", self.cgroup)));
        }
        if let Some(root) = &cgroup_root {
            let dir = root.join(self.cgroup.trim_start_matches('/'));
            if !dir.join("cgroup.procs").is_file() {
                return Err(BadInput(format!(
                    "--cgroup {}: no such cgroup ({} does not exist)",
                    self.cgroup,
                    dir.display()
                )));
            }
        }
        Ok(MonitorOptions {
            proc_root: self.proc_root.clone().unwrap_or(d.proc_root),
            cgroup_root,
            ksm_dir: self.ksm_dir.clone().unwrap_or(d.ksm_dir),
            subtree: self.cgroup.clone(),
            dups: self.dups,
            writes: self.writes,
            uid: (euid != 0 && !self.all_users).then_some(euid),
            cow: !self.no_cow,
            pids: (!self.pids.is_empty()).then(|| self.pids.clone()),
            detector: self.detector.detector(),
            runtime_state: self.runtime_state.as_deref().map_or(d.runtime_state, RuntimeState::under),
        })
    }
}

/// Runs a command that writes a report to stdout as a Unix filter does: when the reader
/// goes away (`atomikctl top | head -1`), SIGPIPE ends the process quietly instead of a
/// panic on EPIPE. Nothing is left behind: the trackers' banks are unnamed.
pub fn filter(run: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    // SAFETY: restoring the default disposition of SIGPIPE (Rust's runtime ignores it);
    // no handler is installed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    run()
}

/// The exit code for a tracking error: 2 for bad input (range, pid), 3 for permission.
pub fn exit_code(e: &anyhow::Error) -> Option<u8> {
    match e.downcast_ref::<TrackError>()? {
        TrackError::BadRange { .. } | TrackError::NoProcess { .. } => Some(2),
        TrackError::Permission { .. } => Some(3),
        _ => Some(1),
    }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM end the loop at the next [`sleep`] instead of killing the
/// process, so the trackers' banks are removed on the way out.
pub fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: on_stop only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_stop as *const () as libc::sighandler_t) };
    }
}

/// Whether a stop signal arrived.
pub fn stopped() -> bool {
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sleeps `secs` seconds; false when a stop signal arrived.
pub fn sleep(secs: f64) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while !STOP.load(std::sync::atomic::Ordering::Relaxed) {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
    false
}
