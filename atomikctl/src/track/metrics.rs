//! Per-cgroup rows as Prometheus text (0.0.4) or OpenMetrics: one renderer for `report` and
//! the exporter. Gauges for states, counters (`_total`) for the kernel's cumulative counts and
//! for the page counts the exporter accumulates between scrapes.

use std::collections::BTreeMap;

use atomik::track::monitor::{CgroupRow, Snapshot};

use super::columns::{Column, Unit};

/// The text format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition 0.0.4: a counter's TYPE line names the `_total` sample.
    Prometheus,
    /// OpenMetrics 1.0: a counter's family has no `_total`, its sample has; ends in `# EOF`.
    OpenMetrics,
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The labels of a row: its cgroup, and what the path names (unit, container, pod).
pub fn row_labels(r: &CgroupRow) -> String {
    let mut l = format!("cgroup=\"{}\"", label(&r.cgroup));
    if let Some(i) = &r.identity {
        l.push_str(&format!(",kind=\"{}\",name=\"{}\"", i.kind, label(&i.name)));
        if let Some(id) = &i.container_id {
            l.push_str(&format!(",container_id=\"{}\"", label(id)));
        }
        if let Some(p) = &i.pod_uid {
            l.push_str(&format!(",pod_uid=\"{}\"", label(p)));
        }
        if let Some(n) = &i.container_name {
            l.push_str(&format!(",container_name=\"{}\"", label(n)));
        }
    }
    l
}

/// Writes the TYPE and HELP lines of a family and returns the samples' name.
fn header(out: &mut String, base: &str, counter: bool, help: &str, format: Format) -> String {
    let sample = if counter { format!("{base}_total") } else { base.to_owned() };
    let family = if counter && format == Format::Prometheus { &sample } else { base };
    let kind = if counter { "counter" } else { "gauge" };
    out.push_str(&format!("# TYPE {family} {kind}\n# HELP {family} {help}.\n"));
    sample
}

/// One family for column `c` over `rows`.
pub fn family(out: &mut String, c: &Column, rows: &[CgroupRow], format: Format) {
    if rows.iter().all(|r| (c.get)(r).is_none()) {
        return;
    }
    let sample = header(out, &format!("atomik_cgroup_{}", c.key), c.unit == Unit::Total, c.help, format);
    for r in rows {
        if let Some(v) = (c.get)(r) {
            out.push_str(&format!("{sample}{{{}}} {v}\n", row_labels(r)));
        }
    }
}

/// A counter the exporter accumulates: name, help, and the per-second rate it sums.
type Accumulated = (&'static str, &'static str, fn(&CgroupRow) -> Option<f64>);

/// The page counts the exporter accumulates from the per-interval rates.
pub const TOTALS: &[Accumulated] = &[
    ("written_pages", "Pages written (needs --writes)", |r| r.written_per_s),
    ("changed_pages", "Pages whose content changed (needs --writes)", |r| r.changed_per_s),
    ("silent_pages", "Pages written with unchanged content (needs --writes)", |r| r.silent_per_s),
    ("cow_breaks", "Pages that went from shared copy-on-write to exclusive", |r| r.cow_breaks_per_s),
    ("cow_copies", "Copy-on-write copies made (needs PFNs)", |r| r.cow_copies_per_s),
    ("cow_identical_copies", "Copy-on-write copies identical to their origin (needs PFNs)", |r| {
        r.cow_identical_per_s
    }),
];

/// Counts accumulated sample after sample: Σ rate × interval per cgroup and counter.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// (counter index in [`TOTALS`], cgroup) → pages.
    pub pages: BTreeMap<(usize, String), f64>,
}

impl Totals {
    /// Adds one interval. A cgroup whose figure is unknown this interval keeps its count.
    pub fn add(&mut self, snap: &Snapshot) {
        if snap.interval_s <= 0.0 {
            return;
        }
        for r in &snap.rows {
            for (i, (_, _, get)) in TOTALS.iter().enumerate() {
                if let Some(rate) = get(r) {
                    *self.pages.entry((i, r.cgroup.clone())).or_default() += rate * snap.interval_s;
                }
            }
        }
        // A cgroup that is gone: its series ends.
        let live: std::collections::HashSet<&str> = snap.rows.iter().map(|r| r.cgroup.as_str()).collect();
        self.pages.retain(|(_, cg), _| live.contains(cg.as_str()));
    }
}

/// The whole exposition: the columns as families, the accumulated totals, KSM, and for
/// OpenMetrics the closing `# EOF`.
pub fn render(snap: &Snapshot, cols: &[&Column], totals: Option<&Totals>, format: Format) -> String {
    let mut out = String::new();
    for c in cols {
        family(&mut out, c, &snap.rows, format);
    }
    if let Some(t) = totals {
        for (i, (key, help, _)) in TOTALS.iter().enumerate() {
            let sample = header(&mut out, &format!("atomik_cgroup_{key}"), true, help, format);
            for r in &snap.rows {
                if let Some(v) = t.pages.get(&(i, r.cgroup.clone())) {
                    out.push_str(&format!("{sample}{{{}}} {}\n", row_labels(r), v.round()));
                }
            }
        }
    }
    let k = &snap.ksm;
    for (name, help, v) in [
        ("atomik_ksm_pages_shared", "KSM pages in use", k.pages_shared.map(|v| v as f64)),
        ("atomik_ksm_pages_sharing", "Mappings of KSM pages", k.pages_sharing.map(|v| v as f64)),
        ("atomik_ksm_general_profit_bytes", "KSM general profit", k.general_profit.map(|v| v as f64)),
    ] {
        if let Some(v) = v {
            header(&mut out, name, false, help, format);
            out.push_str(&format!("{name} {v}\n"));
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}
