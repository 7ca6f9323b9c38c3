//! A cgroup's own memory accounting, as the kernel keeps it in cgroup v2: `memory.current`,
//! the limits, the key `memory.stat` fields, swap, `memory.events` and memory pressure.
//!
//! Unlike Σ VmRSS of the processes (which counts a shared page once per process and leaves
//! out page cache), these are what the kernel charges the cgroup, page cache included. Each
//! field is `None` where its file is missing: the memory controller is not enabled for the
//! cgroup (on the root cgroup, or on hybrid hosts where memory is a cgroup v1 controller),
//! or the kernel has no PSI.

use std::path::Path;

/// What the kernel accounts to one cgroup (and its descendants).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounting {
    /// `memory.current`: bytes charged, page cache included.
    pub current: Option<u64>,
    /// `memory.max` (hard limit, OOM beyond); `None` when `max` (unlimited) or absent.
    pub max: Option<u64>,
    /// `memory.high` (throttling limit); `None` when `max` or absent.
    pub high: Option<u64>,
    /// `memory.swap.current`, bytes.
    pub swap: Option<u64>,
    /// `memory.swap.max`; `None` when `max` or absent.
    pub swap_max: Option<u64>,
    /// `memory.stat`, the fields operators read.
    pub stat: MemoryStat,
    /// `memory.events`, counters since the cgroup was created.
    pub events: MemoryEvents,
    /// `memory.pressure`, percent of time stalled on memory.
    pub pressure: Option<Pressure>,
}

/// Key fields of `memory.stat` (bytes, or counts for the event fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStat {
    /// Anonymous memory (`anon`).
    pub anon: Option<u64>,
    /// Page cache (`file`).
    pub file: Option<u64>,
    /// Shared memory and tmpfs (`shmem`).
    pub shmem: Option<u64>,
    /// Kernel memory (`kernel`: slab, stacks, page tables, …).
    pub kernel: Option<u64>,
    /// Network buffers (`sock`).
    pub sock: Option<u64>,
    /// Dirty page cache (`file_dirty`).
    pub file_dirty: Option<u64>,
    /// Page cache under writeback (`file_writeback`).
    pub file_writeback: Option<u64>,
    /// Refaults of evicted anonymous pages (`workingset_refault_anon`), a counter.
    pub workingset_refault_anon: Option<u64>,
    /// Refaults of evicted file pages (`workingset_refault_file`), a counter.
    pub workingset_refault_file: Option<u64>,
    /// Page faults (`pgfault`), a counter.
    pub pgfault: Option<u64>,
    /// Major page faults (`pgmajfault`), a counter.
    pub pgmajfault: Option<u64>,
}

/// `memory.events`: how often the cgroup hit its limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Reclaim over `memory.high` (`high`).
    pub high: Option<u64>,
    /// Allocations that hit `memory.max` (`max`).
    pub max: Option<u64>,
    /// The OOM killer was invoked (`oom`).
    pub oom: Option<u64>,
    /// Processes killed by it (`oom_kill`).
    pub oom_kill: Option<u64>,
}

/// `memory.pressure`: share of wall time some (`some`) or all (`full`) tasks stalled on
/// memory, percent, averaged over 10 and 60 s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    /// some avg10.
    pub some_avg10: f64,
    /// some avg60.
    pub some_avg60: f64,
    /// full avg10.
    pub full_avg10: f64,
    /// full avg60.
    pub full_avg60: f64,
}

impl Accounting {
    /// `current` as a percent of the tightest limit (`memory.max`, else `memory.high`).
    pub fn limit_percent(&self) -> Option<f64> {
        let limit = match (self.max, self.high) {
            (Some(m), Some(h)) => m.min(h),
            (m, h) => m.or(h)?,
        };
        let current = self.current?;
        (limit > 0).then(|| current as f64 * 100.0 / limit as f64)
    }

    /// Whether the memory controller is on for the cgroup (anything was read but PSI).
    pub fn has_memory_controller(&self) -> bool {
        self.current.is_some() || self.stat.anon.is_some()
    }
}

/// Reads the accounting of `cgroup` (a path such as `/system.slice`) under the cgroup2
/// mount `root`.
pub fn read_accounting(root: &Path, cgroup: &str) -> Accounting {
    let dir = root.join(cgroup.trim_start_matches('/'));
    let text = |f: &str| super::procfs::read_kernel_text(&dir.join(f)).ok();
    let num = |f: &str| text(f)?.trim().parse::<u64>().ok();
    // "max" means no limit.
    let limit = |f: &str| num(f);
    let stat = text("memory.stat").unwrap_or_default();
    let events = text("memory.events").unwrap_or_default();
    let key = |t: &str, k: &str| {
        t.lines().find_map(|l| {
            let (name, v) = l.split_once(' ')?;
            (name == k).then(|| v.trim().parse().ok()).flatten()
        })
    };
    Accounting {
        current: num("memory.current"),
        max: limit("memory.max"),
        high: limit("memory.high"),
        swap: num("memory.swap.current"),
        swap_max: limit("memory.swap.max"),
        stat: MemoryStat {
            anon: key(&stat, "anon"),
            file: key(&stat, "file"),
            shmem: key(&stat, "shmem"),
            kernel: key(&stat, "kernel"),
            sock: key(&stat, "sock"),
            file_dirty: key(&stat, "file_dirty"),
            file_writeback: key(&stat, "file_writeback"),
            workingset_refault_anon: key(&stat, "workingset_refault_anon"),
            workingset_refault_file: key(&stat, "workingset_refault_file"),
            pgfault: key(&stat, "pgfault"),
            pgmajfault: key(&stat, "pgmajfault"),
        },
        events: MemoryEvents {
            high: key(&events, "high"),
            max: key(&events, "max"),
            oom: key(&events, "oom"),
            oom_kill: key(&events, "oom_kill"),
        },
        pressure: text("memory.pressure").and_then(|t| parse_pressure(&t)),
    }
}

/// The `memory.pressure` text (same format as `/proc/pressure/memory`), parsed by the
/// `procfs` crate.
pub fn parse_pressure(text: &str) -> Option<Pressure> {
    use procfs::FromRead;
    let p = procfs::MemoryPressure::from_read(text.as_bytes()).ok()?;
    // The kernel prints two decimals; the crate keeps f32.
    let pct = |v: f32| (v as f64 * 100.0).round() / 100.0;
    Some(Pressure {
        some_avg10: pct(p.some.avg10),
        some_avg60: pct(p.some.avg60),
        full_avg10: pct(p.full.avg10),
        full_avg60: pct(p.full.avg60),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cgroup_with_limits_and_one_without() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("web.slice");
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("memory.current", "104857600\n"),
            ("memory.max", "209715200\n"),
            ("memory.high", "max\n"),
            ("memory.swap.current", "4096\n"),
            ("memory.swap.max", "max\n"),
            ("memory.stat", "anon 50000\nfile 40000\nkernel 3000\nshmem 10\nsock 0\nfile_dirty 7\nfile_writeback 1\nworkingset_refault_anon 5\nworkingset_refault_file 6\npgfault 1234\npgmajfault 12\nanon_thp 0\n"),
            ("memory.events", "low 0\nhigh 3\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n"),
            ("memory.pressure", "some avg10=1.50 avg60=0.25 avg300=0.00 total=123\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=45\n"),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let a = read_accounting(t.path(), "/web.slice");
        assert_eq!(
            (a.current, a.max, a.high, a.swap, a.swap_max),
            (Some(104857600), Some(209715200), None, Some(4096), None)
        );
        assert_eq!(a.limit_percent(), Some(50.0));
        assert_eq!(
            (a.stat.anon, a.stat.file, a.stat.kernel, a.stat.pgmajfault),
            (Some(50000), Some(40000), Some(3000), Some(12))
        );
        assert_eq!(
            (a.events.high, a.events.max, a.events.oom, a.events.oom_kill),
            (Some(3), Some(2), Some(1), Some(1))
        );
        assert_eq!(
            a.pressure,
            Some(Pressure { some_avg10: 1.5, some_avg60: 0.25, full_avg10: 0.5, full_avg60: 0.1 })
        );
        assert!(a.has_memory_controller());
        let none = read_accounting(t.path(), "/");
        assert_eq!(none, Accounting::default());
        assert_eq!(none.limit_percent(), None);
    }
}
