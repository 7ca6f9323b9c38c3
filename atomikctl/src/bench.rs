//! `atomikctl bench`: ops/s of the bank operations, each beside baselines run in the same
//! process — the bare `lock xor`/`lock xadd` loop ACCUM cannot beat, a mutex-per-bank design
//! (what the original ATOMiK does per fd) and memcpy — with the machine's load beside them.

mod bare;
mod dense;
pub mod exporter;
mod measure;
mod mutex_bank;
mod procs;
pub mod sync;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use atomik::{Bank, CreateOptions, Op};

use crate::BadInput;
use bare::BareArray;
use measure::{loadavg, rate, Baseline, Rate, Row};
use mutex_bank::MutexBank;

/// The goal for ACCUM against the bare loop (printed beside the ratio, not enforced).
const GOAL: f64 = 0.95;

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
    /// Group operator of the bank; the bare loop is `lock xor` (xor) or `lock xadd` (add).
    #[arg(long, default_value = "xor")]
    pub op: Op,
    /// Alternated runs of the bare loop and ACCUM per worker count; the best of each is kept.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// MiB of slots for the dense batch pass.
    #[arg(long, default_value_t = 64)]
    pub dense_mib: u64,
    /// Internal: run as a child process of the process benchmark.
    #[arg(long, hide = true, num_args = 3, value_names = ["MODE", "TARGET", "OPS"])]
    pub worker: Option<Vec<String>>,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Best rates of `a` and of `b` over `rounds` alternated runs (b, a, b, a, …).
fn alternate(
    rounds: usize,
    mut a: impl FnMut() -> Result<Rate>,
    mut b: impl FnMut() -> Result<Rate>,
) -> Result<(Rate, Rate)> {
    let (mut best_a, mut best_b) = (Rate::default(), Rate::default());
    for _ in 0..rounds {
        best_b = best_b.max(b()?);
        best_a = best_a.max(a()?);
    }
    Ok((best_a, best_b))
}

pub fn run(args: BenchArgs, json: bool) -> Result<()> {
    match &args.sub {
        Some(crate::converge::BenchSub::Converge(a)) => return crate::converge::run(a, json),
        Some(crate::converge::BenchSub::Sync(a)) => return sync::run(a, json),
        Some(crate::converge::BenchSub::Exporter(a)) => return exporter::run(a, json),
        None => {}
    }
    if let Some(w) = &args.worker {
        return procs::child(&w[0], &w[1], &w[2]);
    }
    if args.ops == 0 || args.workers == 0 || args.dense_mib == 0 || args.rounds == 0 {
        return Err(BadInput("--ops, --workers, --rounds and --dense-mib must be at least 1".into()).into());
    }
    if !args.slots.is_power_of_two() {
        // A mask instead of a division keeps the index arithmetic out of the measurement.
        return Err(BadInput(format!("--slots {} must be a power of two", args.slots)).into());
    }
    let load_before = loadavg();
    let op = args.op;
    let name = format!("bench-{}", std::process::id());
    let bank = Bank::create(&name, CreateOptions::new(args.slots).op(op))?;
    let _guard = Remove(name.clone());
    let bare_array = BareArray::create(args.slots)?;
    let words = bare_array.words();
    let insn = bare::instruction(op);
    let mut rows: Vec<Row> = Vec::new();
    let mut goal: Vec<serde_json::Value> = Vec::new();
    let progress = |r: &Row| {
        if !json {
            eprintln!("  measured {} x{}", r.name, r.workers)
        }
    };
    let mask = args.slots - 1;

    let mut single = Rate::default();
    for workers in 1..=args.workers {
        let mutex = MutexBank::new(op, args.slots);
        let base = rate(workers, args.ops, |_, i| mutex.accum(i & mask, i));
        let (ours, limit) = alternate(
            args.rounds,
            || Ok(rate(workers, args.ops, |_, i| bank.memory().accum(i & mask, i))),
            || Ok(rate(workers, args.ops, |_, i| bare::accum(words, op, i & mask, i))),
        )?;
        let mut push = |r: Row| {
            progress(&r);
            rows.push(r);
        };
        push(Row::new("accum (mutex per bank)", workers, base, Vec::new()));
        pair(&mut push, &mut goal, ("threads", insn, workers), ours, limit, Baseline::wall(base, "mutex"));
        if workers == 1 {
            single = ours;
        }
    }
    for workers in 1..=args.workers {
        let (ours, limit) = alternate(
            args.rounds,
            || procs::measure(&procs::Target::Accum(&name), workers, args.ops),
            || procs::measure(&procs::Target::Bare(bare_array.path(), op), workers, args.ops),
        )?;
        let mut push = |r: Row| {
            progress(&r);
            rows.push(r);
        };
        pair(
            &mut push,
            &mut goal,
            ("processes", insn, workers),
            ours,
            limit,
            Baseline::cpu(single, "1-thread accum"),
        );
    }
    let vs_single = || vec![Baseline::cpu(single, "1-thread accum")];
    let read = rate(1, args.ops / 4, |_, i| {
        std::hint::black_box(bank.memory().read(i & mask));
    });
    rows.push(Row::new("read", 1, read, vs_single()));
    let swap = rate(1, args.ops / 4, |_, i| {
        std::hint::black_box(bank.memory().swap(i & mask));
    });
    rows.push(Row::new("swap", 1, swap, vs_single()));
    let batch = measure::batched(&bank, args.ops);
    rows.push(Row::new("accum_batch (1024 per call)", 1, batch, vs_single()));

    let dense = dense::measure(args.dense_mib, args.workers, &|| {
        if !json {
            eprintln!("  measured dense pass")
        }
    })?;
    let load_after = loadavg();
    if json {
        let v = json!({
            "backend": bank.backend().name(),
            "op": op.name(),
            "slots": args.slots,
            "ops": args.ops,
            "rounds": args.rounds,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "accum_vs_bare": {"goal": GOAL, "runs": goal},
            "dense": dense.json(),
        });
        println!("{v}");
    } else {
        println!(
            "backend: {}  op: {op}  slots shared by all workers: {}  best of {} alternated runs",
            bank.backend(),
            args.slots,
            args.rounds
        );
        println!(
            "loadavg before: {}  after: {}",
            measure::load_text(&load_before),
            measure::load_text(&load_after)
        );
        println!("{:<36} {:>7} {:>10} {:>10}   ratio", "operation", "workers", "Mops/s", "Mops/CPU-s");
        for r in &rows {
            println!("{}", r.text());
        }
        let ratios: Vec<String> = goal
            .iter()
            .map(|g| {
                format!(
                    "{} x{}: {:.1} %",
                    g["kind"].as_str().unwrap_or(""),
                    g["workers"],
                    g["ratio"].as_f64().unwrap_or(0.0) * 100.0
                )
            })
            .collect();
        println!(
            "ACCUM / bare {insn} loop, ops per CPU-second (goal >= {:.0} %): {}",
            GOAL * 100.0,
            ratios.join(", ")
        );
        println!();
        print!("{}", dense.text());
    }
    Ok(())
}

/// The bare-loop row and the ACCUM row beside it (`kind`: threads or processes), and their
/// ratio for the goal summary.
fn pair(
    push: &mut dyn FnMut(Row),
    goal: &mut Vec<serde_json::Value>,
    (kind, insn, workers): (&'static str, &str, usize),
    ours: Rate,
    limit: Rate,
    other: Baseline,
) {
    push(Row::limit(format!("bare {insn} loop ({kind})"), workers, limit));
    push(Row::new(
        format!("accum (mapped bank, {kind})"),
        workers,
        ours,
        vec![Baseline::cpu(limit, "bare loop"), other],
    ));
    goal.push(json!({"kind": kind, "workers": workers, "ratio": ours.cpu / limit.cpu}));
}

/// Removes the benchmark's bank however the run ends.
struct Remove(String);
impl Drop for Remove {
    fn drop(&mut self) {
        let _ = Bank::destroy(&self.0);
    }
}
