//! Command line.

use clap::{Parser, ValueEnum};

use crate::faults::{FaultKind, Transport};
use crate::model::Op;

/// Jepsen-style chaos runs of `atomikctl sync`: four real daemons (TCP or NATS JetStream),
/// concurrent producers ACCUMing through the CLI, a nemesis of kills, stops, pauses, server
/// restarts, bank deletions and replica directory losses; then heal, wait for convergence and
/// compare every replica with the ledger of acknowledged ACCUMs.
///
/// Exit status: 0 if every run passed, 1 if one failed (its directory is kept and printed),
/// 2 on bad usage or missing binaries, 130 when interrupted.
#[derive(Parser, Debug)]
#[command(name = "atomik-chaos", version)]
pub struct Args {
    /// Transport(s) to run.
    #[arg(long, value_enum, default_value = "all")]
    pub transport: TransportArg,
    /// Bank operator(s) to run.
    #[arg(long, value_enum, default_value = "all")]
    pub op: OpArg,
    /// Runs per transport × operator combination.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,
    /// Seconds of producers and faults per run (heal and comparison come after).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// Seed of the first run (the k-th run uses SEED + k); random when absent. With the same
    /// --seconds and --faults a seed gives the same fault schedule.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object with all runs instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep every run's directory, not only those of failed runs.
    #[arg(long)]
    pub keep: bool,
    /// Fault kinds to draw from (comma-separated; default all that apply to the transport).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// Fault kinds to leave out (comma-separated), e.g. `dir-loss` while `sync recover` does
    /// not exist.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub exclude: Vec<FaultKind>,
    /// Concurrent single-ACCUM producers (a batch producer runs besides).
    #[arg(long, default_value_t = 3)]
    pub producers: usize,
    /// Bound on waiting for the replicas to converge after the heal.
    #[arg(long, default_value_t = 60)]
    pub heal_seconds: u64,
    /// Echo the nemesis log on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    Tcp,
    Nats,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OpArg {
    Add,
    Xor,
    All,
}

impl Args {
    pub fn transports(&self) -> Vec<Transport> {
        match self.transport {
            TransportArg::Tcp => vec![Transport::Tcp],
            TransportArg::Nats => vec![Transport::Nats],
            TransportArg::All => vec![Transport::Tcp, Transport::Nats],
        }
    }

    pub fn ops(&self) -> Vec<Op> {
        match self.op {
            OpArg::Add => vec![Op::Add],
            OpArg::Xor => vec![Op::Xor],
            OpArg::All => vec![Op::Add, Op::Xor],
        }
    }

    /// `--faults` (default: all) less `--exclude`, in canonical order.
    pub fn fault_kinds(&self) -> Vec<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .filter(|k| (self.faults.is_empty() || self.faults.contains(k)) && !self.exclude.contains(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("atomik-chaos").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_run_every_combination_with_every_fault() {
        let a = parse(&[]);
        assert_eq!(a.transports().len() * a.ops().len(), 4);
        assert_eq!(a.fault_kinds(), FaultKind::ALL.to_vec());
    }

    #[test]
    fn faults_and_exclude_select_kinds() {
        let a = parse(&["--faults", "kill,dir-loss,pause", "--exclude", "dir-loss"]);
        assert_eq!(a.fault_kinds(), vec![FaultKind::Kill, FaultKind::Pause]);
        let a = parse(&["--exclude", "dir-loss", "--transport", "nats", "--op", "xor"]);
        assert!(!a.fault_kinds().contains(&FaultKind::DirLoss));
        assert_eq!((a.transports(), a.ops()), (vec![Transport::Nats], vec![Op::Xor]));
        assert!(Args::try_parse_from(["atomik-chaos", "--faults", "meteor"]).is_err());
        assert!(Args::try_parse_from(["atomik-chaos", "--runs", "0"]).is_err());
    }
}
