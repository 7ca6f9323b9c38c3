//! `atomikctl bench`: ops/s of the bank operations, each beside a baseline run in the same
//! process — a mutex-per-bank design (what the original ATOMiK does per fd) and memcpy.

mod dense;
mod measure;
mod mutex_bank;
mod procs;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use atomik::{Bank, CreateOptions, Op};

use crate::BadInput;
use measure::{ops_per_sec, Row};
use mutex_bank::MutexBank;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A named benchmark instead of the bank ops/s one.
    #[command(subcommand)]
    pub sub: Option<crate::converge::BenchSub>,
    /// Operations per measurement (per worker).
    #[arg(long, default_value_t = 20_000_000)]
    pub ops: u64,
    /// Most threads and processes to try (1, 2, … up to this).
    #[arg(long, default_value_t = default_workers())]
    pub workers: usize,
    /// Slots the workers share (a power of two). With few slots, workers fight over the same
    /// cache lines on every op.
    #[arg(long, default_value_t = 65_536)]
    pub slots: u64,
    /// MiB of slots for the dense batch pass.
    #[arg(long, default_value_t = 64)]
    pub dense_mib: u64,
    /// Internal: run as a child process of the process benchmark.
    #[arg(long, hide = true, num_args = 2, value_names = ["BANK", "OPS"])]
    pub worker: Option<Vec<String>>,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

pub fn run(args: BenchArgs, json: bool) -> Result<()> {
    if let Some(crate::converge::BenchSub::Converge(a)) = &args.sub {
        return crate::converge::run(a, json);
    }
    if let Some(w) = &args.worker {
        return procs::child(&w[0], &w[1]);
    }
    if args.ops == 0 || args.workers == 0 || args.dense_mib == 0 {
        return Err(BadInput("--ops, --workers and --dense-mib must be at least 1".into()).into());
    }
    if !args.slots.is_power_of_two() {
        // A mask instead of a division keeps the index arithmetic out of the measurement.
        return Err(BadInput(format!("--slots {} must be a power of two", args.slots)).into());
    }
    let name = format!("bench-{}", std::process::id());
    let bank = Bank::create(&name, CreateOptions::new(args.slots).op(Op::Xor))?;
    let _guard = Remove(name.clone());
    let mut rows: Vec<Row> = Vec::new();
    let progress = |r: &Row| {
        if !json {
            eprintln!("  measured {} x{}", r.name, r.workers)
        }
    };
    let mask = args.slots - 1;

    for workers in 1..=args.workers {
        let mutex = MutexBank::new(Op::Xor, args.slots);
        let base = ops_per_sec(workers, args.ops, |_, i| mutex.accum(i & mask, i));
        let row = Row::new("accum (mutex per bank)", workers, base, None);
        progress(&row);
        rows.push(row);
        let ours = ops_per_sec(workers, args.ops, |_, i| bank.memory().accum(i & mask, i));
        let row = Row::new("accum (mapped bank, threads)", workers, ours, Some(base));
        progress(&row);
        rows.push(row);
    }
    let single = rows[1].ops_per_sec;
    for workers in 1..=args.workers {
        let r = procs::measure(&name, workers, args.ops)?;
        let row = Row::new("accum (mapped bank, processes)", workers, r, Some(single));
        progress(&row);
        rows.push(row);
    }
    let read = ops_per_sec(1, args.ops / 4, |_, i| {
        std::hint::black_box(bank.memory().read(i & mask));
    });
    rows.push(Row::new("read", 1, read, Some(single)));
    let swap = ops_per_sec(1, args.ops / 4, |_, i| {
        std::hint::black_box(bank.memory().swap(i & mask));
    });
    rows.push(Row::new("swap", 1, swap, Some(single)));
    let batch = measure::batched(&bank, args.ops);
    rows.push(Row::new("accum_batch (1024 per call)", 1, batch, Some(single)));

    let dense = dense::measure(args.dense_mib, args.workers, &|| {
        if !json {
            eprintln!("  measured dense pass")
        }
    })?;
    if json {
        let v = json!({
            "backend": bank.backend().name(),
            "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "dense": dense.json(),
        });
        println!("{v}");
    } else {
        println!("backend: {}  (slots shared by all workers: {})", bank.backend(), args.slots);
        println!("{:<34} {:>7} {:>14} {:>22}", "operation", "workers", "Mops/s", "ratio");
        for r in &rows {
            println!("{}", r.text());
        }
        println!();
        print!("{}", dense.text());
    }
    Ok(())
}

/// Removes the benchmark's bank however the run ends.
struct Remove(String);
impl Drop for Remove {
    fn drop(&mut self) {
        let _ = Bank::destroy(&self.0);
    }
}
