//! The per-cgroup columns: one definition used by the table, CSV, JSON and OpenMetrics.

use atomik::track::monitor::CgroupRow;

use crate::BadInput;

/// How a column prints in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Rate,
    Bytes,
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
    pub get: fn(&CgroupRow) -> Option<f64>,
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
        get: |r| Some(r.processes as f64),
    },
    Column {
        key: "rss_bytes",
        header: "RSS",
        help: "Sum of VmRSS, bytes",
        unit: Unit::Bytes,
        get: |r| Some(r.rss_bytes as f64),
    },
    Column {
        key: "written_per_s",
        header: "WRITTEN/s",
        help: "Pages written per second",
        unit: Unit::Rate,
        get: |r| r.written_per_s,
    },
    Column {
        key: "changed_per_s",
        header: "CHANGED/s",
        help: "Pages whose content changed per second",
        unit: Unit::Rate,
        get: |r| r.changed_per_s,
    },
    Column {
        key: "silent_per_s",
        header: "SILENT/s",
        help: "Pages written with unchanged content per second",
        unit: Unit::Rate,
        get: |r| r.silent_per_s,
    },
    Column {
        key: "cow_shared_pages",
        header: "COW-SHARED",
        help: "Anonymous pages shared copy-on-write, per mapping (includes KSM-merged)",
        unit: Unit::Count,
        get: |r| f(r.cow_shared_pages),
    },
    Column {
        key: "cow_breaks_per_s",
        header: "COW-BRK/s",
        help: "Pages going from shared to exclusive per second",
        unit: Unit::Rate,
        get: |r| r.cow_breaks_per_s,
    },
    Column {
        key: "cow_copies_per_s",
        header: "COPIES/s",
        help: "Copy-on-write copies made in these processes per second (needs PFNs)",
        unit: Unit::Rate,
        get: |r| r.cow_copies_per_s,
    },
    Column {
        key: "cow_identical_per_s",
        header: "SAME/s",
        help: "Copy-on-write copies identical to their origin in the parent, per second (needs PFNs)",
        unit: Unit::Rate,
        get: |r| r.cow_identical_per_s,
    },
    Column {
        key: "dup_bytes",
        header: "DUP",
        help: "Reclaimable duplicate anonymous memory not merged by KSM, bytes",
        unit: Unit::Bytes,
        get: |r| f(r.dup_bytes),
    },
    Column {
        key: "ksm_merged_bytes",
        header: "KSM",
        help: "KSM-merged memory (ksm_merging_pages), bytes",
        unit: Unit::Bytes,
        get: |r| f(r.ksm_merged_bytes),
    },
    Column {
        key: "ksm_profit_bytes",
        header: "KSM-PROFIT",
        help: "KSM profit (ksm_process_profit), bytes",
        unit: Unit::Bytes,
        get: |r| r.ksm_profit_bytes.map(|v| v as f64),
    },
];

/// The columns named in `keys` (all when empty), or bad input naming the unknown key.
pub fn select(keys: &[String]) -> Result<Vec<&'static Column>, BadInput> {
    if keys.is_empty() {
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
    }
}
