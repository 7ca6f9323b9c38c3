//! `atomikctl report`: one per-cgroup snapshot as JSON, CSV or OpenMetrics.

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use atomik::track::monitor::{Monitor, Snapshot};

use super::columns::{select, Column};
use super::MonitorArgs;
use crate::BadInput;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Openmetrics,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Seconds between the two samples the rates come from.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    #[command(flatten)]
    pub monitor: MonitorArgs,
}

/// Takes two samples `interval` apart: the second one, with rates.
pub fn two_samples(m: &mut Monitor, interval: f64) -> Result<Snapshot> {
    if !(interval.is_finite() && interval > 0.0) {
        return Err(BadInput(format!("--interval {interval} must be a positive number")).into());
    }
    // The first sample only starts the rates: no duplicate scan there.
    let dups = m.options().dups;
    m.options_mut().dups = false;
    let first = m.sample();
    m.options_mut().dups = dups;
    first?;
    super::sleep(interval);
    Ok(m.sample()?)
}

pub fn run(args: ReportArgs, json_flag: bool) -> Result<()> {
    let cols = select(&args.monitor.columns)?;
    let mut m = Monitor::new(args.monitor.options()?);
    let snap = two_samples(&mut m, args.interval)?;
    let format = if json_flag { Format::Json } else { args.format };
    print!("{}", render(&snap, &cols, format));
    Ok(())
}

/// The snapshot in `format`.
pub fn render(snap: &Snapshot, cols: &[&Column], format: Format) -> String {
    match format {
        Format::Json => format!("{}\n", to_json(snap, cols)),
        Format::Csv => csv(snap, cols),
        Format::Openmetrics => openmetrics(snap, cols),
    }
}

/// The snapshot as one JSON object.
pub fn to_json(snap: &Snapshot, cols: &[&Column]) -> Value {
    let rows: Vec<Value> = snap
        .rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("cgroup".into(), json!(r.cgroup));
            o.insert(
                "identity".into(),
                json!(r.identity.as_ref().map(|i| json!({
                    "kind": i.kind, "name": i.name, "container_id": i.container_id,
                    "pod_uid": i.pod_uid, "qos": i.qos, "container_name": i.container_name,
                }))),
            );
            for c in cols {
                o.insert(c.key.into(), json!((c.get)(r)));
            }
            Value::Object(o)
        })
        .collect();
    json!({
        "interval_s": snap.interval_s,
        "rows": rows,
        "ksm": {
            "run": snap.ksm.run,
            "pages_shared": snap.ksm.pages_shared,
            "pages_sharing": snap.ksm.pages_sharing,
            "general_profit": snap.ksm.general_profit,
            "ksm_zero_pages": snap.ksm.ksm_zero_pages,
        },
        "dups": snap.dups.as_ref().map(|d| json!({
            "scanned_pages": d.scanned_pages,
            "classes": d.classes,
            "reclaimable_pages": d.reclaimable_pages,
            "unconfirmed": d.unconfirmed,
            "per_cgroup": d.per_cgroup.iter().map(|(cg, x)| (cg.clone(), json!({
                "pages": x.pages, "within": x.within, "across": x.across,
                "zero_filled": x.zero_filled, "bytes": x.bytes(),
            }))).collect::<serde_json::Map<_, _>>(),
            "skipped": d.skipped.len(),
        })),
        "detectors": snap.detectors,
        "full_rescans": snap.rescans.iter().map(|(pid, name, bytes)| json!({"pid": pid, "name": name, "bytes_read": bytes})).collect::<Vec<_>>(),
        "cow_engines": snap.cow_engines,
        "missing": snap.missing,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(snap: &Snapshot, cols: &[&Column]) -> String {
    let mut out = String::from("cgroup");
    for c in cols {
        out.push(',');
        out.push_str(c.key);
    }
    out.push('\n');
    for r in &snap.rows {
        out.push_str(&csv_field(&r.cgroup));
        for c in cols {
            out.push(',');
            if let Some(v) = (c.get)(r) {
                out.push_str(&format!("{v}"));
            }
        }
        out.push('\n');
    }
    out
}

fn openmetrics(snap: &Snapshot, cols: &[&Column]) -> String {
    super::metrics::render(snap, cols, None, super::metrics::Format::OpenMetrics)
}
