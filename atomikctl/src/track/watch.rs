//! `atomikctl watch --pid P`: per interval, the pages of a process written, changed and
//! written without a change.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use atomik::track::error::TrackError;
use atomik::track::monitor::{anon_mappings, default_ranges};
use atomik::track::ranges::{total_pages, Range};
use atomik::track::region::{Detector, Tracker, TrackerOptions};

use crate::BadInput;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DetectorArg {
    Auto,
    PagemapScan,
    SoftDirty,
    FullRescan,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The process to watch.
    #[arg(long)]
    pub pid: i32,
    /// Seconds per interval.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Intervals before exiting (0: until the process exits or you interrupt).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Address range START-END (hex) to watch; repeatable. Default: the populated parts of
    /// every private anonymous writable mapping, recomputed when the mappings change.
    #[arg(long = "range", value_parser = parse_range)]
    pub ranges: Vec<Range>,
    /// How to find written pages.
    #[arg(long, value_enum, default_value = "auto")]
    pub detector: DetectorArg,
    /// Also print the page ranges.
    #[arg(long)]
    pub show_ranges: bool,
}

fn parse_range(s: &str) -> Result<Range, String> {
    let (a, b) = s.split_once('-').ok_or("expected START-END")?;
    let hex = |v: &str| {
        u64::from_str_radix(v.trim_start_matches("0x"), 16).map_err(|_| format!("bad address {v:?}"))
    };
    Ok(Range::new(hex(a)?, hex(b)?))
}

pub fn run(args: WatchArgs, json: bool) -> Result<()> {
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(BadInput(format!("--interval {} must be a positive number", args.interval)).into());
    }
    let detector = match args.detector {
        DetectorArg::Auto => None,
        DetectorArg::PagemapScan => Some(Detector::UffdWp),
        DetectorArg::SoftDirty => Some(Detector::SoftDirty),
        DetectorArg::FullRescan => Some(Detector::FullRescan),
    };
    let follow = args.ranges.is_empty();
    let ranges_now = || -> Result<Vec<Range>> {
        Ok(if follow { default_ranges(Path::new("/proc"), args.pid)? } else { args.ranges.clone() })
    };
    let maps_now = || anon_mappings(Path::new("/proc"), args.pid);
    let mut maps = maps_now()?;
    let mut ranges = ranges_now()?;
    let watch = |ranges: &[Range]| {
        Tracker::watch(args.pid, ranges, TrackerOptions { detector, ..Default::default() })
    };
    let mut t = watch(&ranges)?;
    announce(&args, &t, ranges.len(), json);
    if !json {
        println!("{:>8}  {:>9}  {:>9}  {:>9}  {:>9}", "TIME_S", "WRITTEN", "CHANGED", "SILENT", "READ");
    }
    super::stop_on_signals();
    let start = Instant::now();
    let mut n = 0;
    loop {
        if !super::sleep(args.interval) {
            return Ok(());
        }
        let r = match t.check() {
            Ok(r) => r,
            Err(TrackError::NoProcess { .. }) if n > 0 => {
                eprintln!("pid {} exited", args.pid);
                return Ok(());
            }
            // Mappings went away: follow the process's new layout with a new baseline.
            Err(TrackError::BadRange { .. }) if follow => {
                maps = maps_now()?;
                ranges = ranges_now()?;
                t = watch(&ranges)?;
                announce(&args, &t, ranges.len(), json);
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("watching pid {}", args.pid)),
        };
        t.checkpoint()?;
        n += 1;
        let el = start.elapsed().as_secs_f64();
        let silent = r.silent_observable.then(|| r.silent_pages());
        if json {
            let rj = |v: &[Range]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
            let mut o = json!({"t": el, "written": r.written_pages(), "changed": r.changed_pages(),
                "silent": silent, "pages_read": r.pages_read});
            if args.show_ranges {
                o["written_ranges"] = json!(rj(&r.written));
                o["changed_ranges"] = json!(rj(&r.changed));
                o["silent_ranges"] = json!(rj(&r.silent));
            }
            println!("{o}");
        } else {
            println!(
                "{el:>8.1}  {:>9}  {:>9}  {:>9}  {:>9}",
                r.written_pages(),
                r.changed_pages(),
                silent.map_or("-".into(), |s| s.to_string()),
                r.pages_read
            );
            if args.show_ranges {
                for (what, v) in [("written", &r.written), ("changed", &r.changed), ("silent", &r.silent)] {
                    if !v.is_empty() {
                        let s: Vec<String> = v.iter().map(|r| r.to_string()).collect();
                        println!("          {what} ({} pages): {}", total_pages(v), s.join(" "));
                    }
                }
            }
        }
        if args.count > 0 && n >= args.count {
            return Ok(());
        }
        // New mappings (a grown heap, a new arena): watch them from now on.
        if follow {
            let now = maps_now()?;
            if now != maps {
                maps = now;
                ranges = ranges_now()?;
                t = watch(&ranges)?;
                announce(&args, &t, ranges.len(), json);
            }
        }
    }
}

fn announce(args: &WatchArgs, t: &Tracker, ranges: usize, json: bool) {
    if json {
        println!(
            "{}",
            json!({"pid": args.pid, "pages": t.pages(), "ranges": ranges,
                   "detector": t.detector().name(), "note": t.detector().note()})
        );
    } else {
        eprintln!(
            "watching pid {}: {} pages in {} ranges; detector {} ({})",
            args.pid,
            t.pages(),
            ranges,
            t.detector().name(),
            t.detector().note()
        );
    }
}
