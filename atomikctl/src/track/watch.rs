//! `atomikctl watch --pid P`: per interval, the pages of a process written, changed and
//! written without a change.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use atomik::track::error::TrackError;
use atomik::track::procfs::has_exited;
use atomik::track::ranges::{total_pages, Range};
use atomik::track::region::{Detector, Tracker, TrackerOptions};
use atomik::track::writable::{writable_mappings, write_ranges};

use crate::BadInput;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DetectorArg {
    Auto,
    PagemapScan,
    SoftDirty,
    FullRescan,
}

impl DetectorArg {
    /// The detector asked for (`None`: the best available).
    pub fn detector(self) -> Option<Detector> {
        match self {
            DetectorArg::Auto => None,
            DetectorArg::PagemapScan => Some(Detector::UffdWp),
            DetectorArg::SoftDirty => Some(Detector::SoftDirty),
            DetectorArg::FullRescan => Some(Detector::FullRescan),
        }
    }
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
    let detector = args.detector.detector();
    let follow = args.ranges.is_empty();
    let proc = Path::new("/proc");
    let ranges_now = || -> Result<Vec<Range>, TrackError> {
        if follow {
            write_ranges(proc, args.pid)
        } else {
            Ok(args.ranges.clone())
        }
    };
    super::stop_on_signals();
    let mut maps = writable_mappings(proc, args.pid)?;
    let watch = |ranges: &[Range]| {
        Tracker::watch(args.pid, ranges, TrackerOptions { detector, ..Default::default() })
    };
    let mut t = watch(&ranges_now()?)?;
    announce(&args, &t, json);
    if !json {
        println!("{:>8}  {:>9}  {:>9}  {:>9}  {:>9}", "TIME_S", "WRITTEN", "CHANGED", "SILENT", "READ");
    }
    let start = Instant::now();
    let mut n = 0;
    loop {
        if !super::sleep(args.interval) {
            return Ok(());
        }
        // New or changed mappings (a grown heap, a new arena): follow them, keeping the
        // fingerprints of the pages that stay, so the interval's writes still count.
        if follow {
            match writable_mappings(proc, args.pid) {
                Ok(now) if now != maps => {
                    maps = now;
                    match ranges_now().and_then(|r| t.remap(&r)) {
                        Ok(()) => {}
                        Err(e) if exited(args.pid, &e) => return say_exited(args.pid, json),
                        Err(_) => {
                            t = watch(&ranges_now()?)?;
                            announce(&args, &t, json);
                            continue;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) if exited(args.pid, &e) => return say_exited(args.pid, json),
                Err(e) => return Err(e).with_context(|| format!("watching pid {}", args.pid)),
            }
        }
        let r = match t.check() {
            Ok(r) => r,
            Err(e) if exited(args.pid, &e) => return say_exited(args.pid, json),
            // Mappings went away between reading them and the check: start over.
            Err(TrackError::BadRange { .. }) if follow => {
                maps = writable_mappings(proc, args.pid)?;
                t = watch(&ranges_now()?)?;
                announce(&args, &t, json);
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("watching pid {}", args.pid)),
        };
        t.checkpoint()?;
        n += 1;
        // What watching costs when only a full rescan can find the writes: said once.
        if n == 1 && r.detector == Detector::FullRescan && !json {
            eprintln!(
                "full rescan: pid {} costs {:.1} MiB re-read per interval ({} pages; no soft-dirty, not armed for PAGEMAP_SCAN)",
                args.pid,
                (r.pages_read * 4096) as f64 / 1048576.0,
                r.pages_read
            );
        }
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
    }
}

/// Whether `e` comes from the watched process having exited (its /proc entry gone, or a
/// zombie whose mappings are gone), rather than from a real failure.
fn exited(pid: i32, e: &TrackError) -> bool {
    matches!(e, TrackError::NoProcess { .. }) || has_exited(Path::new("/proc"), pid)
}

/// The end of `watch` when the process exits: a line saying so, exit status 0.
fn say_exited(pid: i32, json: bool) -> Result<()> {
    if json {
        println!("{}", json!({"pid": pid, "exited": true}));
    } else {
        println!("pid {pid} exited");
    }
    Ok(())
}

fn announce(args: &WatchArgs, t: &Tracker, json: bool) {
    let ranges = t.ranges().len();
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
