//! The per-cgroup columns: one definition used by the table, CSV, JSON and OpenMetrics.

use atomik::track::accounting::Accounting;
use atomik::track::monitor::CgroupRow;

use crate::BadInput;

/// How a column prints in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Rate,
    Bytes,
    Percent,
    /// A count since the cgroup was created (`_total` in OpenMetrics).
    Total,
}

/// One numeric column.
pub struct Column {
    /// Key for --columns, --sort, CSV headers and JSON fields.
    pub key: &'static str,
    /// Table header.
    pub header: &'static str,
    /// OpenMetrics help text.
    pub help: &'static str,
    pub unit: Unit,
    /// Shown in the table when --columns is not given (JSON, CSV and OpenMetrics carry all).
    pub table: bool,
    pub get: fn(&CgroupRow) -> Option<f64>,
}

fn acct<T: Into<f64>>(r: &CgroupRow, f: impl Fn(&Accounting) -> Option<T>) -> Option<f64> {
    r.accounting.as_ref().and_then(f).map(Into::into)
}

/// u64 as f64 (exact below 2⁵³, which byte and event counts stay under).
fn n(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

fn f(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

/// Every numeric column, in table order.
pub const COLUMNS: &[Column] = &[
    Column {
        key: "processes",
        header: "PROCS",
        help: "Processes in the cgroup and below",
        unit: Unit::Count,
        table: true,
        get: |r| Some(r.processes as f64),
    },
    Column {
        key: "memory_current_bytes",
        header: "MEM",
        help: "memory.current: bytes charged to the cgroup, page cache included",
        unit: Unit::Bytes,
        table: true,
        get: |r| acct(r, |a| n(a.current)),
    },
    Column {
        key: "memory_max_bytes",
        header: "MAX",
        help: "memory.max, bytes (absent: no limit)",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.max)),
    },
    Column {
        key: "memory_high_bytes",
        header: "HIGH",
        help: "memory.high, bytes (absent: no limit)",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.high)),
    },
    Column {
        key: "memory_limit_percent",
        header: "%LIM",
        help: "memory.current as a percent of the tighter of memory.max and memory.high",
        unit: Unit::Percent,
        table: true,
        get: |r| r.accounting.as_ref().and_then(Accounting::limit_percent),
    },
    Column {
        key: "anon_bytes",
        header: "ANON",
        help: "memory.stat anon: anonymous memory, bytes",
        unit: Unit::Bytes,
        table: true,
        get: |r| acct(r, |a| n(a.stat.anon)),
    },
    Column {
        key: "file_bytes",
        header: "FILE",
        help: "memory.stat file: page cache, bytes",
        unit: Unit::Bytes,
        table: true,
        get: |r| acct(r, |a| n(a.stat.file)),
    },
    Column {
        key: "shmem_bytes",
        header: "SHMEM",
        help: "memory.stat shmem: shared memory and tmpfs, bytes",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.stat.shmem)),
    },
    Column {
        key: "kernel_bytes",
        header: "KERNEL",
        help: "memory.stat kernel: kernel memory, bytes",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.stat.kernel)),
    },
    Column {
        key: "sock_bytes",
        header: "SOCK",
        help: "memory.stat sock: network buffers, bytes",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.stat.sock)),
    },
    Column {
        key: "file_dirty_bytes",
        header: "DIRTY",
        help: "memory.stat file_dirty: dirty page cache, bytes",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.stat.file_dirty)),
    },
    Column {
        key: "file_writeback_bytes",
        header: "WBACK",
        help: "memory.stat file_writeback: page cache under writeback, bytes",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.stat.file_writeback)),
    },
    Column {
        key: "swap_bytes",
        header: "SWAP",
        help: "memory.swap.current: swap used, bytes",
        unit: Unit::Bytes,
        table: true,
        get: |r| acct(r, |a| n(a.swap)),
    },
    Column {
        key: "swap_max_bytes",
        header: "SWAPMAX",
        help: "memory.swap.max, bytes (absent: no limit)",
        unit: Unit::Bytes,
        table: false,
        get: |r| acct(r, |a| n(a.swap_max)),
    },
    Column {
        key: "workingset_refault_anon",
        header: "REFLT-A",
        help: "memory.stat workingset_refault_anon: refaults of evicted anonymous pages",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.stat.workingset_refault_anon)),
    },
    Column {
        key: "workingset_refault_file",
        header: "REFLT-F",
        help: "memory.stat workingset_refault_file: refaults of evicted file pages",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.stat.workingset_refault_file)),
    },
    Column {
        key: "pgfault",
        header: "PGFAULT",
        help: "memory.stat pgfault: page faults",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.stat.pgfault)),
    },
    Column {
        key: "pgmajfault",
        header: "MAJFLT",
        help: "memory.stat pgmajfault: major page faults",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.stat.pgmajfault)),
    },
    Column {
        key: "memory_events_high",
        header: "EV-HIGH",
        help: "memory.events high: reclaim over memory.high",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.events.high)),
    },
    Column {
        key: "memory_events_max",
        header: "EV-MAX",
        help: "memory.events max: allocations that hit memory.max",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.events.max)),
    },
    Column {
        key: "memory_events_oom",
        header: "OOM",
        help: "memory.events oom: OOM killer invoked",
        unit: Unit::Total,
        table: false,
        get: |r| acct(r, |a| n(a.events.oom)),
    },
    Column {
        key: "memory_events_oom_kill",
        header: "OOM-KILL",
        help: "memory.events oom_kill: processes killed by the OOM killer",
        unit: Unit::Total,
        table: true,
        get: |r| acct(r, |a| n(a.events.oom_kill)),
    },
    Column {
        key: "memory_pressure_some_avg10",
        header: "PSI-S10",
        help: "memory.pressure some avg10: percent of time some tasks stalled on memory (10 s)",
        unit: Unit::Percent,
        table: true,
        get: |r| acct(r, |a| a.pressure.map(|p| p.some_avg10)),
    },
    Column {
        key: "memory_pressure_some_avg60",
        header: "PSI-S60",
        help: "memory.pressure some avg60 (60 s)",
        unit: Unit::Percent,
        table: false,
        get: |r| acct(r, |a| a.pressure.map(|p| p.some_avg60)),
    },
    Column {
        key: "memory_pressure_full_avg10",
        header: "PSI-F10",
        help: "memory.pressure full avg10: percent of time all tasks stalled on memory (10 s)",
        unit: Unit::Percent,
        table: false,
        get: |r| acct(r, |a| a.pressure.map(|p| p.full_avg10)),
    },
    Column {
        key: "memory_pressure_full_avg60",
        header: "PSI-F60",
        help: "memory.pressure full avg60 (60 s)",
        unit: Unit::Percent,
        table: false,
        get: |r| acct(r, |a| a.pressure.map(|p| p.full_avg60)),
    },
    Column {
        key: "rss_bytes",
        header: "ΣVmRSS",
        help: "Sum of the processes' VmRSS, bytes: counts a page shared by two processes twice and leaves out page cache (memory_current_bytes is what the cgroup is charged)",
        unit: Unit::Bytes,
        table: true,
        get: |r| Some(r.rss_bytes as f64),
    },
    Column {
        key: "written_per_s",
        header: "WRITTEN/s",
        help: "Pages written per second",
        unit: Unit::Rate,
        table: true,
        get: |r| r.written_per_s,
    },
    Column {
        key: "changed_per_s",
        header: "CHANGED/s",
        help: "Pages whose content changed per second",
        unit: Unit::Rate,
        table: true,
        get: |r| r.changed_per_s,
    },
    Column {
        key: "silent_per_s",
        header: "SILENT/s",
        help: "Pages written with unchanged content per second",
        unit: Unit::Rate,
        table: true,
        get: |r| r.silent_per_s,
    },
    Column {
        key: "cow_shared_pages",
        header: "COW-SHARED",
        help: "Anonymous pages shared copy-on-write, per mapping (includes KSM-merged)",
        unit: Unit::Count,
        table: true,
        get: |r| f(r.cow_shared_pages),
    },
    Column {
        key: "cow_breaks_per_s",
        header: "COW-BRK/s",
        help: "Pages going from shared to exclusive per second",
        unit: Unit::Rate,
        table: true,
        get: |r| r.cow_breaks_per_s,
    },
    Column {
        key: "cow_copies_per_s",
        header: "COPIES/s",
        help: "Copy-on-write copies made in these processes per second (PFNs, or /dev/atomik without them)",
        unit: Unit::Rate,
        table: true,
        get: |r| r.cow_copies_per_s,
    },
    Column {
        key: "cow_identical_per_s",
        header: "SAME/s",
        help: "Copy-on-write copies identical to their origin, per second (PFNs, or /dev/atomik without them)",
        unit: Unit::Rate,
        table: true,
        get: |r| r.cow_identical_per_s,
    },
    Column {
        key: "dup_bytes",
        header: "DUP",
        help: "Reclaimable duplicate anonymous memory not merged by KSM, bytes",
        unit: Unit::Bytes,
        table: true,
        get: |r| f(r.dup_bytes),
    },
    Column {
        key: "ksm_merged_bytes",
        header: "KSM",
        help: "KSM-merged memory (ksm_merging_pages), bytes",
        unit: Unit::Bytes,
        table: true,
        get: |r| f(r.ksm_merged_bytes),
    },
    Column {
        key: "ksm_profit_bytes",
        header: "KSM-PROFIT",
        help: "KSM profit (ksm_process_profit), bytes",
        unit: Unit::Bytes,
        table: true,
        get: |r| r.ksm_profit_bytes.map(|v| v as f64),
    },
];

/// The columns named in `keys` (all when empty), or bad input naming the unknown key.
pub fn select(keys: &[String]) -> Result<Vec<&'static Column>, BadInput> {
    if keys.is_empty() {
        return Ok(COLUMNS.iter().collect());
    }
    if keys == ["all"] {
        return Ok(COLUMNS.iter().collect());
    }
    keys.iter()
        .filter(|k| k.as_str() != "cgroup")
        .map(|k| {
            COLUMNS.iter().find(|c| c.key == k).ok_or_else(|| {
                let all: Vec<_> = COLUMNS.iter().map(|c| c.key).collect();
                BadInput(format!("unknown column {k:?}; columns: cgroup, {}", all.join(", ")))
            })
        })
        .collect()
}

/// Sorts rows by `key` (descending for numbers, ascending for `cgroup`).
pub fn sort(rows: &mut [CgroupRow], key: &str) -> Result<(), BadInput> {
    if key == "cgroup" {
        rows.sort_by(|a, b| a.cgroup.cmp(&b.cgroup));
        return Ok(());
    }
    let c = select(&[key.to_owned()])?[0];
    rows.sort_by(|a, b| {
        let (x, y) = ((c.get)(a).unwrap_or(-1.0), (c.get)(b).unwrap_or(-1.0));
        y.total_cmp(&x).then_with(|| a.cgroup.cmp(&b.cgroup))
    });
    Ok(())
}

/// A table cell.
pub fn cell(c: &Column, r: &CgroupRow) -> String {
    match ((c.get)(r), c.unit) {
        (None, _) => "-".into(),
        (Some(v), Unit::Count) => format!("{v:.0}"),
        (Some(v), Unit::Rate) => format!("{v:.1}"),
        (Some(v), Unit::Bytes) => format!("{:.1}M", v / (1024.0 * 1024.0)),
        (Some(v), Unit::Percent) => format!("{v:.1}"),
        (Some(v), Unit::Total) => format!("{v:.0}"),
    }
}

/// The table's columns: those named, or the default set.
pub fn table_columns(keys: &[String]) -> Result<Vec<&'static Column>, BadInput> {
    if keys.is_empty() {
        return Ok(COLUMNS.iter().filter(|c| c.table).collect());
    }
    select(keys)
}
