//! Memory change tracking commands: `watch`, `top`, `report`.

pub mod columns;
pub mod report;
pub mod top;
pub mod watch;

use std::path::PathBuf;

use clap::Args;

use atomik::track::error::TrackError;
use atomik::track::monitor::MonitorOptions;
use atomik::track::pagemap::soft_dirty_supported;

/// What `top` and `report` look at and compute.
#[derive(Args, Debug, Clone)]
pub struct MonitorArgs {
    /// Only this cgroup and its descendants (a cgroup v2 path such as /system.slice).
    #[arg(long, default_value = "/")]
    pub cgroup: String,
    /// Scan for duplicate pages (reads all candidate anonymous memory once per sample).
    #[arg(long)]
    pub dups: bool,
    /// Track written/changed/silent pages per process. On by default when the kernel has
    /// soft-dirty; otherwise every tracked page is re-read each interval, so it is opt-in.
    #[arg(long, overrides_with = "no_writes")]
    pub writes: bool,
    /// Do not track writes.
    #[arg(long)]
    pub no_writes: bool,
    /// Include other users' processes (default: all as root, your own otherwise).
    #[arg(long)]
    pub all_users: bool,
    /// Columns to show, comma-separated: processes, rss_bytes, written_per_s,
    /// changed_per_s, silent_per_s, cow_shared_pages, cow_breaks_per_s, cow_copies_per_s,
    /// dup_bytes, ksm_merged_bytes, ksm_profit_bytes. Default: all.
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
}

impl MonitorArgs {
    /// The library options these flags stand for.
    pub fn options(&self) -> MonitorOptions {
        // SAFETY: geteuid cannot fail and has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let d = MonitorOptions::default();
        MonitorOptions {
            proc_root: self.proc_root.clone().unwrap_or(d.proc_root),
            cgroup_root: self.cgroup_root.clone().or(d.cgroup_root),
            ksm_dir: self.ksm_dir.clone().unwrap_or(d.ksm_dir),
            subtree: self.cgroup.clone(),
            dups: self.dups,
            writes: if self.no_writes { false } else { self.writes || soft_dirty_supported() },
            uid: (euid != 0 && !self.all_users).then_some(euid),
            cow: true,
        }
    }
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
