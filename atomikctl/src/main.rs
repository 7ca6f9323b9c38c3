//! atomikctl (temporary replica-branch entry point; the lead's CLI replaces it).
mod converge;
mod sync;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Replicate a bank with peers.
    #[command(subcommand)]
    Sync(sync::SyncCmd),
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Replication convergence harness.
    Converge(converge::ConvergeArgs),
}

fn main() {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Bench(BenchCmd::Converge(a)) => converge::run(a, cli.json),
        Cmd::Sync(c) => sync::run(c, cli.json),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("atomikctl: {e:#}");
            std::process::exit(2);
        }
    }
}
