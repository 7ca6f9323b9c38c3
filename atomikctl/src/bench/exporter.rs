//! `atomikctl bench exporter`: the CPU cost of the exporter with many processes in many
//! cgroups. Spawns `--procs` processes (each holding `--mib` MiB of touched anonymous memory)
//! spread over `--cgroups` cgroups (when the cgroup2 tree is writable; otherwise all in ours,
//! said so), then times, on this thread's CPU clock, one monitor sample (what the exporter
//! does every --interval: the /proc, pagemap and cgroupfs reads) and one scrape (rendering
//! /metrics), median of `--rounds`, without `--writes`/`--dups` as the exporter defaults.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use atomik::track::cgroup::host_cgroup2;
use atomik::track::monitor::{Monitor, MonitorOptions};

use super::measure::{load_text, loadavg, thread_cpu_seconds};
use crate::track::exporter::{exported_columns, Exported};
use crate::track::metrics::Format;
use crate::BadInput;

#[derive(Args, Debug)]
pub struct ExporterBenchArgs {
    /// Processes to spawn.
    #[arg(long, default_value_t = 500)]
    pub procs: usize,
    /// Cgroups to spread them over.
    #[arg(long, default_value_t = 50)]
    pub cgroups: usize,
    /// MiB of anonymous memory each process touches.
    #[arg(long, default_value_t = 1)]
    pub mib: usize,
    /// Timed samples (the median is printed).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Internal: be one of the spawned processes, holding this many MiB until stdin closes.
    #[arg(long, hide = true)]
    pub hold: Option<usize>,
}

/// A spawned process: it exits when its stdin closes, so none outlives the benchmark.
struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The cgroups made for the run, removed at the end (after the processes left).
struct Cgroups(Vec<std::path::PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn hold(mib: usize) -> Result<()> {
    let mem: Vec<u8> = (0..mib << 20).map(|i| (i >> 12) as u8 ^ 0x5a).collect();
    let mut sink = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)?;
    std::hint::black_box(&mem);
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: &ExporterBenchArgs, json_out: bool) -> Result<()> {
    if let Some(mib) = args.hold {
        return hold(mib);
    }
    if args.procs == 0 || args.cgroups == 0 || args.rounds == 0 {
        return Err(BadInput("--procs, --cgroups and --rounds must be at least 1".into()).into());
    }
    let load_before = loadavg();
    let exe = std::env::current_exe()?;
    // The cgroups, under the host's cgroup2 tree when we may write there.
    let root = host_cgroup2();
    let base = root.as_ref().map(|r| r.join(format!("atomik-bench-{}", std::process::id())));
    let mut made = Cgroups(Vec::new());
    let mut spread = false;
    if let Some(b) = &base {
        if std::fs::create_dir(b).is_ok() {
            made.0.push(b.clone());
            spread = (0..args.cgroups).all(|i| {
                let d = b.join(format!("g{i:03}"));
                let ok = std::fs::create_dir(&d).is_ok();
                made.0.push(d);
                ok
            });
        }
    }
    let mut held = Vec::with_capacity(args.procs);
    for i in 0..args.procs {
        let c = Command::new(&exe)
            .args(["bench", "exporter", "--hold", &args.mib.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("spawning a benchmark process")?;
        if spread {
            let d = base.as_ref().unwrap().join(format!("g{:03}", i % args.cgroups));
            spread = std::fs::write(d.join("cgroup.procs"), c.id().to_string()).is_ok();
        }
        held.push(Held(c));
    }
    // Let them touch their memory.
    std::thread::sleep(std::time::Duration::from_millis(500 + 2 * args.procs as u64));
    let pids: Vec<i32> = held.iter().map(|h| h.0.id() as i32).collect();
    let rel =
        base.as_ref().zip(root.as_ref()).map(|(b, r)| format!("/{}", b.strip_prefix(r).unwrap().display()));
    let opts = MonitorOptions {
        subtree: if spread { rel.clone().unwrap() } else { "/".into() },
        pids: (!spread).then_some(pids),
        ..MonitorOptions::default()
    };
    let mut m = Monitor::new(opts.clone());
    let cols = exported_columns(&[])?;
    let mut exported = Exported::default();
    exported.add(m.sample()?);
    let (mut sample_cpu, mut sample_wall, mut scrape_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut rows = 0;
    let mut bytes = 0;
    for _ in 0..args.rounds {
        let (w, c) = (Instant::now(), thread_cpu_seconds());
        let snap = m.sample()?;
        sample_cpu.push((thread_cpu_seconds() - c) * 1e3);
        sample_wall.push(w.elapsed().as_secs_f64() * 1e3);
        rows = snap.rows.len();
        exported.add(snap);
        let c = thread_cpu_seconds();
        let text = exported.render(&cols, Format::OpenMetrics);
        scrape_cpu.push((thread_cpu_seconds() - c) * 1e3);
        bytes = text.len();
    }
    // The same without the pagemap columns (--no-cow): what reading the pagemaps costs.
    let mut m = Monitor::new(MonitorOptions { cow: false, ..opts });
    m.sample()?;
    let mut lean_cpu = Vec::new();
    for _ in 0..args.rounds {
        let c = thread_cpu_seconds();
        m.sample()?;
        lean_cpu.push((thread_cpu_seconds() - c) * 1e3);
    }
    let lean = median(lean_cpu);
    drop(held);
    drop(made);
    let (s_cpu, s_wall, r_cpu) = (median(sample_cpu), median(sample_wall), median(scrape_cpu));
    let load_after = loadavg();
    let where_ = if spread {
        format!("{} cgroups under {}", args.cgroups, rel.unwrap_or_default())
    } else {
        "one cgroup (the cgroup2 tree is not writable here: no spread)".to_owned()
    };
    if json_out {
        println!(
            "{}",
            json!({"procs": args.procs, "cgroups": if spread { args.cgroups } else { 1 }, "mib_each": args.mib,
                   "rows": rows, "sample_cpu_ms": s_cpu, "sample_no_cow_cpu_ms": lean, "sample_wall_ms": s_wall, "scrape_cpu_ms": r_cpu,
                   "scrape_bytes": bytes, "loadavg_before": load_before, "loadavg_after": load_after})
        );
    } else {
        let mut o = std::io::stdout().lock();
        writeln!(
            o,
            "exporter cost: {} processes ({} MiB each) in {where_}; {rows} rows",
            args.procs, args.mib
        )?;
        writeln!(
            o,
            "loadavg {} -> {}; median of {}",
            load_text(&load_before),
            load_text(&load_after),
            args.rounds
        )?;
        writeln!(o, "| what | CPU ms | wall ms |\n|---|---:|---:|")?;
        writeln!(
            o,
            "| one sample (every --interval: /proc, pagemap, cgroupfs) | {s_cpu:.1} | {s_wall:.1} |"
        )?;
        writeln!(o, "| one sample with --no-cow (no pagemap reads) | {lean:.1} | |")?;
        writeln!(o, "| one scrape (render /metrics, {bytes} bytes) | {r_cpu:.2} | |")?;
        writeln!(o, "| sample + scrape (goal < 50 ms CPU) | {:.1} | |", s_cpu + r_cpu)?;
    }
    Ok(())
}
