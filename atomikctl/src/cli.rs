//! Command-line definition.

use clap::{Args, Parser, Subcommand};

use crate::bench::BenchArgs;

/// Delta-state banks: create, accumulate, read, swap; benchmarks; status.
///
/// Numbers are decimal or 0x-hex; values print as hex unless --dec. Exit codes: 0 ok,
/// 1 failure, 2 bad input (nothing changed), 3 permission denied.
#[derive(Parser, Debug)]
#[command(name = "atomikctl", version, about, long_about = None)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, list, describe and remove banks.
    #[command(subcommand)]
    Bank(BankCmd),
    /// LOAD: set a slot's reference and clear its accumulator.
    Load { name: String, slot: String, value: String },
    /// ACCUM: combine a delta into a slot. With `-` as SLOT, reads `SLOT DELTA` lines from stdin
    /// and applies them as one batch (all checked before any is applied).
    Accum { name: String, slot: String, delta: Option<String> },
    /// READ: a slot's state (reference ∘ accumulator), or every slot with --all.
    Read {
        name: String,
        slot: Option<String>,
        #[arg(long, conflicts_with = "slot")]
        all: bool,
    },
    /// SWAP: print the state and make it the new reference (with --set V: print the state
    /// and make V the new reference, in one step).
    Swap {
        name: String,
        slot: String,
        /// SWAP_SET: the new reference.
        #[arg(long)]
        set: Option<String>,
    },
    /// Which backend is in use and why.
    Status,
    /// Serve the Verilator model of the FPGA RTL on a Unix socket until killed; other
    /// processes use it with ATOMIK_FPGA=unix:PATH (built with feature rtl-model).
    #[cfg(feature = "rtl-model")]
    RtlModel {
        /// Socket path.
        #[arg(long)]
        socket: std::path::PathBuf,
    },
    /// Serve the Verilator model of the FPGA RTL as a PCI device to one vfio-user client
    /// (QEMU's -device vfio-user-pci,socket=PATH) until it disconnects (feature vfio-user).
    #[cfg(feature = "vfio-user")]
    VfioUser {
        /// Socket path (must not exist).
        #[arg(long)]
        socket: std::path::PathBuf,
    },
    /// Measure ops/s of ACCUM, READ, SWAP against a mutex-per-bank design.
    Bench(BenchArgs),
    /// Replicate a bank with peers over authenticated TCP or through NATS JetStream.
    #[command(subcommand)]
    Sync(crate::sync::SyncCmd),
    /// Pages of a process written, changed and silently rewritten, per interval.
    Watch(crate::track::watch::WatchArgs),
    /// Live per-cgroup table: RSS, writes, COW sharing and breaks, duplicates, KSM.
    Top(crate::track::top::TopArgs),
    /// One per-cgroup snapshot as JSON, CSV or OpenMetrics.
    Report(crate::track::report::ReportArgs),
    /// Serve the per-cgroup figures to Prometheus on /metrics, counters accumulated between
    /// scrapes.
    Exporter(crate::track::exporter::ExporterArgs),
    /// Man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenDocs { dir: std::path::PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum BankCmd {
    /// Create a bank.
    Create(CreateArgs),
    /// List banks.
    List,
    /// Describe a bank.
    Info { name: String },
    /// Remove a bank.
    Rm { name: String },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    /// Number of slots.
    #[arg(long)]
    pub slots: String,
    /// Group operator: xor (default) or add.
    #[arg(long, default_value = "xor")]
    pub op: String,
    /// Permission bits, octal.
    #[arg(long, default_value = "0600")]
    pub mode: String,
    /// Writer-private shards for dense batches.
    #[arg(long, default_value = "0")]
    pub shards: String,
    /// Put the slots on the FPGA: through /dev/atomik with the device bound (banks on the
    /// FPGA backend always are).
    #[arg(long)]
    pub fpga: bool,
}
