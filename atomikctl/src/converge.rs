//! `atomikctl bench converge`: the replication convergence harness.
//!
//! Runs the deterministic simulator of `atomik::replica::sim` for every requested bank count
//! and fault model with the same seed and workload, prints each node's final digest and the
//! bytes moved, and fails (exit 1) unless every node of every run holds the same state as the
//! workload computed directly.

use anyhow::{bail, Result};

use crate::BadInput;

/// Named benchmarks under `atomikctl bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchSub {
    /// Replication convergence harness: N simulated replicas under faults.
    Converge(ConvergeArgs),
    /// Replication cost: idle sync daemon CPU per bank size, and tick (take) time per share
    /// of slots changed, each beside an O(bank) read pass measured in the same run.
    Sync(crate::bench::sync::SyncBenchArgs),
    /// Exporter cost: CPU of one monitor sample and one /metrics scrape with many processes
    /// in many cgroups (spawned by the benchmark).
    Exporter(crate::bench::exporter::ExporterBenchArgs),
}
use atomik::replica::sim::{self, Faults, SimConfig};
use atomik::Op;

/// Options of `bench converge`.
#[derive(Debug, clap::Args)]
pub struct ConvergeArgs {
    /// Replicas (nodes), full mesh.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Ticks of workload.
    #[arg(long, default_value_t = 4096)]
    pub ticks: u64,
    /// Seed of the workload and of the faults (decimal or 0x hex).
    #[arg(long, default_value = "0xDEADBEEF0BADF00D", value_parser = parse_u64)]
    pub seed: u64,
    /// Slots of the whole state.
    #[arg(long, default_value_t = 256)]
    pub slots: u32,
    /// Fraction of the slots each node changes per tick.
    #[arg(long, default_value_t = 0.05)]
    pub density: f64,
    /// Operator: xor (random words) or add (small increments).
    #[arg(long, default_value = "xor")]
    pub op: Op,
    /// Bank counts to split the state over (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub banks: Vec<u32>,
    /// Fault models (comma separated): none, loss, dup, reorder, partition, crash, all.
    #[arg(long, value_delimiter = ',', default_value = "none,loss,dup,reorder,partition,crash,all")]
    pub faults: Vec<String>,
    /// Loss probability in percent for the loss and all models.
    #[arg(long, default_value_t = 5.0)]
    pub loss: f64,
    /// Duplication probability in percent for the dup and all models.
    #[arg(long, default_value_t = 5.0)]
    pub dup: f64,
    /// Largest extra delivery delay in ticks for the reorder and all models.
    #[arg(long, default_value_t = 8)]
    pub reorder: u64,
    /// Ticks between anti-entropy summaries of each node.
    #[arg(long, default_value_t = 16)]
    pub ae_interval: u64,
}

/// Parses decimal or `0x` hexadecimal.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.replace('_', "");
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

fn fault_model(name: &str, a: &ConvergeArgs) -> Result<Faults> {
    let none = Faults::default();
    let loss = a.loss / 100.0;
    let dup = a.dup / 100.0;
    Ok(match name {
        "none" => none,
        "loss" => Faults { loss, ..none },
        "dup" => Faults { dup, ..none },
        "reorder" => Faults { reorder: a.reorder, ..none },
        "partition" => Faults { partition_every: 997, partition_len: 200, ..none },
        "crash" => Faults { crash_every: 1499, crash_down: 50, ..none },
        "all" => Faults { loss, dup, reorder: a.reorder, ..Faults::all() },
        other => {
            return Err(BadInput(format!(
                "unknown fault model {other:?} (none, loss, dup, reorder, partition, crash, all)"
            ))
            .into())
        }
    })
}

/// Runs the harness: an error (exit 1) if any node diverged, exit 2 for bad options.
pub fn run(a: &ConvergeArgs, json: bool) -> Result<()> {
    if a.nodes == 0 || a.ticks == 0 || a.slots == 0 || a.ae_interval == 0 {
        return Err(BadInput("--nodes, --ticks, --slots and --ae-interval must be positive".into()).into());
    }
    if !(0.0..=1.0).contains(&a.density) {
        return Err(BadInput(format!("--density must be within 0..=1, got {}", a.density)).into());
    }
    if !(0.0..=100.0).contains(&a.loss) || a.loss >= 100.0 || !(0.0..=100.0).contains(&a.dup) {
        return Err(BadInput("--loss must be in 0..100 and --dup in 0..=100 (percent)".into()).into());
    }
    if let Some(b) = a.banks.iter().find(|&&b| b == 0 || b > a.slots) {
        return Err(BadInput(format!("bank count {b} must be within 1..={}", a.slots)).into());
    }
    let models: Vec<(String, Faults)> =
        a.faults.iter().map(|n| Ok((n.clone(), fault_model(n, a)?))).collect::<Result<_>>()?;
    let mut base = SimConfig::new(a.nodes, a.ticks, a.seed);
    base.slots = a.slots;
    base.density = a.density;
    base.op = a.op;
    base.ae_interval = a.ae_interval;
    let expected = sim::expected_digest(&base);
    let mut rows = Vec::new();
    let mut ok = true;
    if !json {
        println!(
            "converge: {} nodes, {} ticks, {} slots, density {}, op {}, seed {:#018x}",
            a.nodes, a.ticks, a.slots, a.density, a.op, a.seed
        );
        println!("expected digest {expected:016x}");
        println!(
            "{:<10} {:>5} {:>12} {:>8} {:>10} {:>9} {:>7} {:>7} {:>6} {:>5} {:>6} {:>5} {:<6} digests",
            "faults",
            "banks",
            "bytes",
            "B/delta",
            "push B/t",
            "AE B/t",
            "lost",
            "dup",
            "crash",
            "part",
            "snaps",
            "heal",
            "equal"
        );
    }
    for (name, faults) in &models {
        for &banks in &a.banks {
            let cfg = SimConfig { faults: *faults, banks, ..base };
            let r = sim::run(&cfg);
            let equal = r.converged();
            ok &= equal;
            let per = (a.ticks * a.nodes as u64) as f64;
            let digests: Vec<String> = r.digests.iter().map(|d| format!("{d:016x}")).collect();
            if json {
                rows.push(serde_json::json!({
                    "faults": name,
                    "banks": banks,
                    "bytes": r.bytes,
                    "push_bytes": r.push_bytes,
                    "ae_bytes": r.ae_bytes,
                    "messages": r.messages,
                    "lost": r.lost,
                    "duplicated": r.duplicated,
                    "crashes": r.crashes,
                    "partitions": r.partitions,
                    "snapshots": r.snapshots,
                    "heal_rounds": r.heal_rounds,
                    "converged": equal,
                    "digests": digests,
                }));
            } else {
                println!(
                    "{:<10} {:>5} {:>12} {:>8.1} {:>10.1} {:>9.1} {:>7} {:>7} {:>6} {:>5} {:>6} {:>5} {:<6} {}",
                    name,
                    banks,
                    r.bytes,
                    r.push_bytes as f64 / r.push_messages.max(1) as f64,
                    r.push_bytes as f64 / per,
                    r.ae_bytes as f64 / per,
                    r.lost,
                    r.duplicated,
                    r.crashes,
                    r.partitions,
                    r.snapshots,
                    r.heal_rounds,
                    if equal { "yes" } else { "NO" },
                    digests.join(" ")
                );
            }
        }
    }
    if json {
        let report = serde_json::json!({
            "nodes": a.nodes,
            "ticks": a.ticks,
            "slots": a.slots,
            "density": a.density,
            "op": a.op.to_string(),
            "seed": format!("{:#018x}", a.seed),
            "expected": format!("{expected:016x}"),
            "converged": ok,
            "runs": rows,
        });
        println!("{report}");
    } else if ok {
        println!("all {} runs converged to {expected:016x}", models.len() * a.banks.len());
    } else {
        println!("DIVERGED: some node's digest differs from {expected:016x}");
    }
    if !ok {
        bail!("replicas diverged");
    }
    Ok(())
}
