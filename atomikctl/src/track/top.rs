//! `atomikctl top`: a live per-cgroup table of memory activity.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args;

use atomik::track::monitor::{Monitor, Snapshot};

use super::columns::{cell, select, sort, table_columns, Column};
use super::report::{to_json, two_samples};
use super::MonitorArgs;
use crate::BadInput;

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// Print one table (after one interval, so rates exist) and exit: for scripts.
    #[arg(long)]
    pub once: bool,
    /// Refreshes before exiting (0: until interrupted).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Sort by this column (descending), or `cgroup`.
    #[arg(long, default_value = "rss_bytes")]
    pub sort: String,
    /// Show at most this many rows.
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub monitor: MonitorArgs,
}

pub fn run(args: TopArgs, json: bool) -> Result<()> {
    let cols = if json { select(&args.monitor.columns)? } else { table_columns(&args.monitor.columns)? };
    let mut probe = Vec::new();
    sort(&mut probe, &args.sort)?;
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(BadInput(format!("--interval {} must be a positive number", args.interval)).into());
    }
    super::stop_on_signals();
    let mut m = Monitor::new(args.monitor.options()?);
    // On a terminal, the interactive view; for pipes, --once and --json, the text table.
    if !args.once
        && !json
        && args.count == 0
        && std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal()
    {
        return super::tui::run(m, super::tui::View::new(&args.monitor.cgroup, &args.sort), args.interval);
    }
    let mut snap = two_samples(&mut m, args.interval)?;
    let mut shown = 0u64;
    loop {
        sort(&mut snap.rows, &args.sort)?;
        if let Some(l) = args.limit {
            snap.rows.truncate(l);
        }
        if json {
            println!("{}", to_json(&snap, &cols));
        } else {
            print!("{}", table(&snap, &cols));
        }
        shown += 1;
        if args.once || (args.count > 0 && shown >= args.count) {
            return Ok(());
        }
        if !super::sleep(args.interval) {
            return Ok(());
        }
        snap = m.sample()?;
    }
}

/// The snapshot as an aligned text table with notes below.
pub fn table(snap: &Snapshot, cols: &[&Column]) -> String {
    // The unit/container column only when some row is one.
    let named = snap.rows.iter().any(|r| r.identity.is_some());
    let first = |cgroup: &str, name: &str| {
        let mut v = vec![cgroup.to_owned()];
        if named {
            v.push(name.to_owned());
        }
        v
    };
    let mut grid: Vec<Vec<String>> = vec![first("CGROUP", "UNIT/CONTAINER")
        .into_iter()
        .chain(cols.iter().map(|c| c.header.to_owned()))
        .collect()];
    for r in &snap.rows {
        let name = r.identity.as_ref().map_or("-", |i| i.name.as_str());
        grid.push(first(&r.cgroup, name).into_iter().chain(cols.iter().map(|c| cell(c, r))).collect());
    }
    let text_cols = if named { 2 } else { 1 };
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|i| grid.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &grid {
        let mut line = String::new();
        for (i, v) in row.iter().enumerate() {
            if i == 0 {
                line.push_str(&format!("{v:<w$}", w = widths[0]));
            } else if i < text_cols {
                line.push_str(&format!("  {v:<w$}", w = widths[i]));
            } else {
                line.push_str(&format!("  {v:>w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let k = &snap.ksm;
    let mib = |p: Option<u64>| p.map_or("-".into(), |p| format!("{:.1} MiB", (p * 4096) as f64 / 1048576.0));
    out.push_str(&format!(
        "interval {:.1}s; KSM: run={} sharing={} profit={}",
        snap.interval_s,
        k.run.map_or("-".into(), |v| v.to_string()),
        mib(k.pages_sharing),
        k.general_profit.map_or("-".into(), |v| format!("{:.1} MiB", v as f64 / 1048576.0)),
    ));
    if !snap.detectors.is_empty() {
        let d: Vec<String> = snap.detectors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        out.push_str(&format!("; write detectors: {}", d.join(", ")));
    }
    if !snap.cow_engines.is_empty() {
        let e: Vec<String> = snap.cow_engines.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        out.push_str(&format!("; COW copies/identical by: {} (shared/breaks: pagemap)", e.join(", ")));
    }
    out.push('\n');
    // Who costs a full rescan, and how much (the rest of the list in --json).
    for (pid, name, bytes) in snap.rescans.iter().take(5) {
        out.push_str(&format!(
            "full rescan: pid {pid} ({name}) re-read {:.1} MiB this interval (no soft-dirty, not armed for PAGEMAP_SCAN)\n",
            *bytes as f64 / 1048576.0
        ));
    }
    if snap.rescans.len() > 5 {
        out.push_str(&format!("full rescan: {} more processes\n", snap.rescans.len() - 5));
    }
    for m in &snap.missing {
        out.push_str(&format!("note: {m}\n"));
    }
    out
}
