//! Which processes are new since the previous sample, and which older processes may have
//! come to share pages with them.
//!
//! A private anonymous page that one process mapped alone becomes mapped by another address
//! space only by a fork (the child shares every page of the parent), by KSM merging, or by
//! a swap-in of a swap entry that another process holds too. So a process that shared no
//! page and had no swap entry at the previous sample, and whose KSM count did not move,
//! shares nothing now unless a process created since shares its pages: the monitor then
//! need not read its pagemap at all (its COW columns are 0). [`Newcomers`] finds the
//! processes created since the previous sample, [`old_sharers`] the older processes that
//! may share pages with them.

use super::cow::{sample_anon, AnonSample};
use super::error::{Result, TrackError};
use super::pagemap::kpagecount;
use super::procfs::{list_pids, read_kernel_text};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The system's fork count since boot (`processes` in `<proc_root>/stat`: every task made,
/// threads too), `None` when unreadable (a fake proc tree).
pub fn forks(proc_root: &Path) -> Option<u64> {
    let text = read_kernel_text(&proc_root.join("stat")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("processes ")?.trim().parse().ok())
}

/// What changed in the process table since the previous [`Newcomers::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// No task was created anywhere.
    NoFork,
    /// Tasks were created; these processes are new (sorted; may be empty when every new
    /// task was a thread or has already exited).
    New(Vec<i32>),
    /// Not known: the first observation, a counter that could not be read, or more pids
    /// allocated than the pid allocator could hand out without going round twice.
    Unknown,
}

/// What one observation saw.
#[derive(Debug, Clone)]
struct Seen {
    forks: u64,
    last_pid: i64,
    /// `CLOCK_BOOTTIME` in clock ticks when the observation began (a process started at or
    /// after it is new).
    ticks: u64,
    pids: Vec<i32>,
}

/// Finds the processes created between two observations, machine-wide.
///
/// The fork count and the pid allocator's last pid (`ns_last_pid`) are read before the
/// process list, so a process created during an observation is new in this one or in the
/// next. A new process is one the previous list did not hold, or one whose pid was reused:
/// the allocator hands pids out in increasing order, wrapping at `pid_max`, so only a pid
/// between the two `ns_last_pid` readings can have been handed out again, and for those the
/// start time in `stat` tells. When more pids were allocated than that interval holds, the
/// allocator went round more than once and any pid may be new: [`Since::Unknown`].
#[derive(Debug, Default)]
pub struct Newcomers {
    prev: Option<Seen>,
}

impl Newcomers {
    /// A finder with no history (its first observation says [`Since::Unknown`]).
    pub fn new() -> Newcomers {
        Newcomers::default()
    }

    /// Observes the process table under `proc_root` and says what is new since the
    /// previous observation.
    pub fn observe(&mut self, proc_root: &Path) -> Since {
        let Some(now) = seen(proc_root) else {
            self.prev = None;
            return Since::Unknown;
        };
        let since = match &self.prev {
            None => Since::Unknown,
            Some(p) if p.forks == now.forks => Since::NoFork,
            Some(p) => new_since(proc_root, p, &now),
        };
        self.prev = Some(now);
        since
    }
}

fn seen(proc_root: &Path) -> Option<Seen> {
    let forks = forks(proc_root)?;
    let last_pid = read_number(&proc_root.join("sys/kernel/ns_last_pid"))?;
    let ticks = boottime_ticks()?;
    let pids = list_pids(proc_root).ok()?;
    Some(Seen { forks, last_pid, ticks, pids })
}

fn read_number(path: &Path) -> Option<i64> {
    read_kernel_text(path).ok()?.trim().parse().ok()
}

/// `CLOCK_BOOTTIME` in the clock ticks of `stat`'s start time, rounded down.
fn boottime_ticks() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let tick_ns = 1_000_000_000 / procfs::ticks_per_second();
    Some((t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64) / tick_ns)
}

/// The lowest pid the allocator hands out once it has wrapped (`RESERVED_PIDS`).
const RESERVED_PIDS: i64 = 300;

fn new_since(proc_root: &Path, prev: &Seen, now: &Seen) -> Since {
    let allocated = now.forks - prev.forks;
    let Some(pid_max) = read_number(&proc_root.join("sys/kernel/pid_max")) else { return Since::Unknown };
    let (from, to) = (prev.last_pid, now.last_pid);
    // The pids the allocator can have handed out since, going round at most once.
    let wrapped = to < from || (to == from && allocated > 0);
    let room = if wrapped { (pid_max - 1 - from) + (to - RESERVED_PIDS + 1).max(0) } else { to - from };
    if allocated > room.max(0) as u64 {
        return Since::Unknown;
    }
    let handed_out = |p: i32| {
        let p = p as i64;
        if wrapped {
            p > from || p <= to
        } else {
            p > from && p <= to
        }
    };
    let mut new = Vec::new();
    let mut old = prev.pids.iter().peekable();
    for &p in &now.pids {
        while old.next_if(|&&o| o < p).is_some() {}
        let listed_before = old.peek() == Some(&&p);
        if !listed_before || (handed_out(p) && started_at_or_after(proc_root, p, prev.ticks)) {
            new.push(p);
        }
    }
    Since::New(new)
}

/// Whether process `pid` started at or after `ticks` (also when its `stat` is unreadable:
/// then it is not known to be the process listed before).
fn started_at_or_after(proc_root: &Path, pid: i32, ticks: u64) -> bool {
    stat(proc_root, pid).is_none_or(|s| s.starttime >= ticks)
}

fn stat(proc_root: &Path, pid: i32) -> Option<procfs::process::Stat> {
    use procfs::FromRead;
    let path = proc_root.join(pid.to_string()).join("stat");
    procfs::process::Stat::from_read(read_kernel_text(&path).ok()?.as_bytes()).ok()
}

/// The older processes that may share pages with new ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldSharers {
    /// None: no new process maps a shared page.
    None,
    /// At most these (the new processes' nearest older ancestors, and the processes that
    /// reaped a child).
    These(HashSet<i32>),
    /// Any process: the sharers could not be told.
    Any,
}

impl OldSharers {
    /// Whether `pid` may share pages with a new process.
    pub fn may_include(&self, pid: i32) -> bool {
        match self {
            OldSharers::None => false,
            OldSharers::These(s) => s.contains(&pid),
            OldSharers::Any => true,
        }
    }
}

/// Samples read by [`old_sharers`], by pid, for the caller to use rather than read again.
pub type Samples = HashMap<i32, Result<AnonSample>>;

/// Which older processes may share pages with the processes in `new`.
///
/// A new process's shared pages come from its ancestors: the nearest older one (its parent,
/// or further up where the parent is new too) maps them unless a process between them
/// exited and it was re-parented (a daemon's double fork: then the grandparent, which
/// mostly waited for the middle process and is among `reapers`, the processes whose
/// waited-for children's fault counts moved). With page frame numbers (CAP_SYS_ADMIN)
/// that is checked: for every shared page of a new process, the mappings counted in the
/// new processes, their nearest older ancestors, `reapers` and `read_anyway` (the processes
/// whose pagemap is read whatever this says, those that already shared pages) must add up
/// to the page's map count in `/proc/kpagecount`, else some other process maps it and
/// [`OldSharers::Any`] is returned. The map counts are read first and the samples
/// after them: a process only loses mappings of an existing page meanwhile (a COW break, an
/// unmap; a fork makes a process new in the next sample, a KSM merge moves its KSM count),
/// so equal sums mean no other process mapped the page when it was counted. Without page
/// frame numbers, or when a new process holds swap entries (which have no map count here)
/// or cannot be read, it is `Any` whenever a new process maps a shared page.
///
/// Every sample read is left in `samples` (new processes, ancestors, reapers,
/// `read_anyway`).
pub fn old_sharers(
    proc_root: &Path,
    new: &[i32],
    read_anyway: &[i32],
    reapers: &[i32],
    samples: &mut Samples,
) -> OldSharers {
    let read = |pid: i32| -> Option<Result<AnonSample>> {
        match sample_anon(proc_root, pid) {
            // It exited: its pages are unmapped, it shares nothing.
            Err(TrackError::NoProcess { .. }) => None,
            r => Some(r),
        }
    };
    let mut first: Samples = HashMap::new();
    let mut pfns: HashSet<u64> = HashSet::new();
    for &pid in new {
        match read(pid) {
            None => {}
            // Swap entries may be shared with anyone who held them at the fork.
            Some(Ok(s)) if s.swapped > 0 => return OldSharers::Any,
            Some(Ok(s)) => {
                pfns.extend(s.shared.iter().map(|&(_, pfn)| pfn));
                first.insert(pid, Ok(s));
            }
            Some(Err(_)) => return OldSharers::Any,
        }
    }
    if pfns.is_empty() {
        samples.extend(first);
        return OldSharers::None;
    }
    if pfns.contains(&0) {
        return OldSharers::Any;
    }
    let pfns: Vec<u64> = pfns.into_iter().collect();
    let Some(counts) = kpagecount(&pfns) else { return OldSharers::Any };
    let is_new: HashSet<i32> = new.iter().copied().collect();
    let mut ancestors = HashSet::new();
    for &pid in new {
        // The nearest older ancestor; a bounded walk (a parent read mid-exit may loop).
        let mut p = pid;
        for _ in 0..64 {
            match stat(proc_root, p) {
                Some(s) if s.ppid > 0 && is_new.contains(&s.ppid) => p = s.ppid,
                Some(s) if s.ppid > 0 => {
                    ancestors.insert(s.ppid);
                    break;
                }
                _ => break,
            }
        }
    }
    // Ancestors and reapers are where the pages are expected: one that cannot be read (pid
    // 1 may not be) is not counted, and the sums tell whether it mattered.
    let mut named = ancestors.clone();
    named.extend(reapers.iter().copied().filter(|p| !is_new.contains(p)));
    let mut counted: HashMap<u64, u64> = pfns.iter().map(|&p| (p, 0)).collect();
    let mut readers: Vec<i32> = new.to_vec();
    readers.extend(named.iter().copied().filter(|p| !is_new.contains(p)));
    readers.extend(read_anyway.iter().copied().filter(|p| !is_new.contains(p) && !named.contains(p)));
    for pid in readers {
        let Some(r) = read(pid) else { continue };
        match &r {
            Ok(s) if is_new.contains(&pid) && s.swapped > 0 => return OldSharers::Any,
            Ok(s) => {
                for (_, pfn) in &s.shared {
                    if let Some(c) = counted.get_mut(pfn) {
                        *c += 1;
                    }
                }
            }
            Err(_) if is_new.contains(&pid) => return OldSharers::Any,
            Err(_) => {}
        }
        samples.insert(pid, r);
    }
    let all_counted = pfns.iter().zip(&counts).all(|(p, &n)| counted.get(p) == Some(&n));
    if all_counted {
        OldSharers::These(named)
    } else {
        OldSharers::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake proc tree: `stat` with the fork count, `sys/kernel/{ns_last_pid,pid_max}`,
    /// and one `PID/stat` per process with its start time.
    struct Fake(tempfile::TempDir);

    impl Fake {
        fn new() -> Fake {
            let f = Fake(tempfile::tempdir().unwrap());
            std::fs::create_dir_all(f.0.path().join("sys/kernel")).unwrap();
            std::fs::write(f.0.path().join("sys/kernel/pid_max"), "1000\n").unwrap();
            f
        }
        fn counters(&self, forks: u64, last_pid: i64) {
            std::fs::write(self.0.path().join("stat"), format!("cpu 1 2 3\nprocesses {forks}\n")).unwrap();
            std::fs::write(self.0.path().join("sys/kernel/ns_last_pid"), format!("{last_pid}\n")).unwrap();
        }
        fn process(&self, pid: i32, start_ticks: u64) {
            let d = self.0.path().join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let stat = format!(
                "{pid} (p) S 1 {pid} {pid} 0 -1 0 10 0 0 0 0 0 0 0 20 0 1 0 {start_ticks} 1000 10 \
                 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
            );
            std::fs::write(d.join("stat"), stat).unwrap();
        }
        fn exit(&self, pid: i32) {
            std::fs::remove_dir_all(self.0.path().join(pid.to_string())).unwrap();
        }
        fn root(&self) -> &Path {
            self.0.path()
        }
    }

    #[test]
    fn new_processes_reused_pids_and_a_wrapped_allocator() {
        let f = Fake::new();
        let t = boottime_ticks().unwrap();
        f.counters(100, 500);
        for p in [1, 400, 510, 700] {
            f.process(p, t / 2);
        }
        let mut n = Newcomers::new();
        assert_eq!(n.observe(f.root()), Since::Unknown, "nothing to compare with yet");
        assert_eq!(n.observe(f.root()), Since::NoFork);

        // Two forks: 501 appears; 510 exited and its pid went to a new process (the
        // allocator passed 510 on its way from 500 to 520); 400 and 700 are not in the
        // interval and are the processes listed before.
        f.counters(102, 520);
        f.process(501, t + 1);
        f.exit(510);
        f.process(510, t + 2);
        assert_eq!(n.observe(f.root()), Since::New(vec![501, 510]));

        // One fork that went round pid_max: 990 is new; 400 and 700 lie outside the
        // interval (520, 999] + [300, 310] and are old.
        f.counters(103, 310);
        f.process(990, boottime_ticks().unwrap() + 1);
        assert_eq!(n.observe(f.root()), Since::New(vec![990]));

        // More pids allocated than the interval holds: the allocator went round again.
        f.counters(110, 312);
        assert_eq!(n.observe(f.root()), Since::Unknown);
        // Threads and processes that are gone already: forks, nobody new.
        f.counters(112, 314);
        assert_eq!(n.observe(f.root()), Since::New(vec![]));
        // A missing counter: unknown, and the next observation starts over.
        std::fs::remove_file(f.root().join("sys/kernel/ns_last_pid")).unwrap();
        assert_eq!(n.observe(f.root()), Since::Unknown);
        f.counters(112, 314);
        assert_eq!(n.observe(f.root()), Since::Unknown);
        assert_eq!(n.observe(f.root()), Since::NoFork);
    }

    #[test]
    fn real_proc_sees_a_spawned_process() {
        let mut n = Newcomers::new();
        let root = Path::new("/proc");
        assert_eq!(n.observe(root), Since::Unknown);
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let since = n.observe(root);
        child.kill().unwrap();
        child.wait().unwrap();
        match since {
            Since::New(v) => assert!(v.contains(&(child.id() as i32)), "{v:?}"),
            other => panic!("a spawned process, said {other:?}"),
        }
    }
}
