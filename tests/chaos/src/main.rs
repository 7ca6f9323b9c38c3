//! `atomik-chaos`: a Jepsen-style chaos harness for `atomikctl sync` (see README.md here).

mod cli;
mod cluster;
mod ctl;
mod faults;
mod gate;
mod heal;
mod locate;
mod log;
mod model;
mod nats;
mod nemesis;
mod procs;
mod producers;
mod report;
mod run;
mod schedule;
mod signals;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;

use crate::faults::Transport;
use crate::report::Summary;
use crate::run::{Bins, RunSpec};

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match campaign(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atomik-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn campaign(args: &cli::Args) -> Result<ExitCode> {
    signals::install()?;
    let transports = args.transports();
    let bins = Bins {
        atomikctl: locate::atomikctl()?,
        nats_server: if transports.contains(&Transport::Nats) { Some(locate::nats_server()?) } else { None },
    };
    let seed = args.seed.unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 % 1_000_000_000
    });
    let faults = args.fault_kinds();
    let names: Vec<&str> = faults.iter().map(|k| k.name()).collect();
    eprintln!("atomik-chaos: seed {seed}; atomikctl {}", bins.atomikctl.display());
    if let Some(n) = &bins.nats_server {
        eprintln!("atomik-chaos: nats-server {}", n.display());
    }
    eprintln!("atomik-chaos: faults {}", names.join(","));

    let mut specs = Vec::new();
    // Runs interleave the combinations, so a campaign cut short still covered each.
    for _ in 0..args.runs {
        for &transport in &transports {
            for &op in &args.ops() {
                specs.push(RunSpec {
                    run: specs.len() + 1,
                    transport,
                    op,
                    seed: seed.wrapping_add(specs.len() as u64),
                    seconds: args.seconds,
                    faults: faults.clone(),
                    producers: args.producers,
                    heal: Duration::from_secs(args.heal_seconds),
                    keep: args.keep,
                    verbose: args.verbose,
                });
            }
        }
    }
    let mut reports = Vec::new();
    for spec in &specs {
        eprintln!(
            "atomik-chaos: run {}/{}: {} {}, seed {}, {} s",
            spec.run,
            specs.len(),
            spec.transport.name(),
            spec.op.name(),
            spec.seed,
            spec.seconds
        );
        let r = run::run(spec, &bins)?;
        let verdict = if r.pass { "pass".to_owned() } else { format!("FAIL (lost {})", r.lost) };
        eprintln!(
            "atomik-chaos: run {}: {verdict}; {} faults, {} acknowledged{}{}",
            r.run,
            r.faults_total,
            r.ledger.acknowledged,
            r.error.as_ref().map_or(String::new(), |e| format!("; error: {e}")),
            r.dir.as_ref().map_or(String::new(), |d| format!("; kept {d}"))
        );
        reports.push(r);
        if signals::interrupted() {
            break;
        }
    }
    let summary = Summary::new(seed, reports);
    // The closing line is the plain `N passed, N failed` that CI logs are read for.
    let (passed, failed) = (summary.total.passed, summary.total.runs - summary.total.passed);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        eprintln!("chaos: {passed} passed, {failed} failed");
    } else {
        print!("{}", summary.table());
        println!("chaos: {passed} passed, {failed} failed");
    }
    Ok(if signals::interrupted() {
        ExitCode::from(130)
    } else if summary.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
