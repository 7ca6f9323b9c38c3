//! One run: start the cluster, produce and inject faults for the run's seconds, heal, and
//! compare every replica with the ledger.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cluster::{Cluster, SLOTS};
use crate::faults::{FaultKind, Transport};
use crate::gate::Gate;
use crate::heal::heal;
use crate::log::{Clock, NemesisLog};
use crate::model::{check, fold, worst, Op};
use crate::nemesis::{Nemesis, Tally};
use crate::producers::{Counts, Ledger, Producers};
use crate::report::RunReport;
use crate::schedule::{generate, Plan};

/// Four replicas, as in the brief: enough for a hub and three clients, or for three to be
/// down at once while one still takes ACCUMs.
pub const REPLICAS: usize = 4;
/// Bound on the daemons creating their banks at the start.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct RunSpec {
    pub run: usize,
    pub transport: Transport,
    pub op: Op,
    pub seed: u64,
    pub seconds: u64,
    pub faults: Vec<FaultKind>,
    pub producers: usize,
    pub heal: Duration,
    pub keep: bool,
    pub verbose: bool,
}

impl RunSpec {
    /// The command line that replays this run's fault schedule.
    pub fn replay(&self) -> String {
        let mut s = format!(
            "atomik-chaos --transport {} --op {} --runs 1 --seconds {} --seed {}",
            self.transport.name(),
            self.op.name(),
            self.seconds,
            self.seed
        );
        if self.faults.len() < FaultKind::ALL.len() {
            let f: Vec<&str> = self.faults.iter().map(|k| k.name()).collect();
            s += &format!(" --faults {}", f.join(","));
        }
        s
    }
}

/// The binaries under test.
#[derive(Clone, Debug)]
pub struct Bins {
    pub atomikctl: PathBuf,
    pub nats_server: Option<PathBuf>,
}

/// Makes the run in a fresh temporary directory, removed afterwards unless the run failed or
/// `keep` is set. Never panics on the system under test misbehaving: that is a report.
pub fn run(spec: &RunSpec, bins: &Bins) -> Result<RunReport> {
    let prefix = format!("atomik-chaos-{}-{}-", spec.transport.name(), spec.op.name());
    let dir = tempfile::Builder::new().prefix(&prefix).tempdir().context("creating the run directory")?;
    let mut report = RunReport {
        run: spec.run,
        transport: spec.transport,
        op: spec.op,
        seed: spec.seed,
        replay: spec.replay(),
        seconds: 0.0,
        heal_ms: 0,
        nemesis: Tally::default(),
        faults_total: 0,
        ledger: Counts::default(),
        replicas_equal: false,
        lost: 0,
        replicas: Vec::new(),
        error: None,
        pass: false,
        dir: None,
    };
    if let Err(e) = execute(spec, bins, dir.path(), &mut report) {
        report.error = Some(format!("{e:#}"));
    }
    report.faults_total = report.nemesis.total_faults();
    report.judge();
    if !report.pass || spec.keep {
        let path = dir.keep();
        report.dir = Some(path.display().to_string());
        std::fs::write(path.join("report.json"), serde_json::to_string_pretty(&report)?)
            .context("writing report.json")?;
    }
    Ok(report)
}

fn execute(spec: &RunSpec, bins: &Bins, dir: &Path, report: &mut RunReport) -> Result<()> {
    let clock = Clock::start();
    let mut log = NemesisLog::create(&dir.join("nemesis.log"), clock, spec.verbose)?;
    log.raw(format_args!(
        "# run {}: {} {}, seed {}; replay: {}",
        spec.run,
        spec.transport.name(),
        spec.op.name(),
        spec.seed,
        spec.replay()
    ));
    log.raw(format_args!("# atomikctl: {}", bins.atomikctl.display()));
    let plan = Plan {
        seed: spec.seed,
        duration_ms: spec.seconds * 1000,
        transport: spec.transport,
        kinds: spec.faults.clone(),
        replicas: REPLICAS,
    };
    let schedule = generate(&plan);
    log.raw(format_args!(
        "# plan: {} faults (times from the start of the chaos phase)",
        schedule.episodes.len()
    ));
    for (i, e) in schedule.episodes.iter().enumerate() {
        log.raw(format_args!(
            "#   {:>7.3}s  fault #{i} {}: {}",
            e.at_ms as f64 / 1000.0,
            e.kind.name(),
            e.note
        ));
    }

    let mut cluster = Cluster::new(
        dir,
        bins.atomikctl.clone(),
        spec.transport,
        spec.op,
        REPLICAS,
        bins.nats_server.clone(),
        clock,
    )?;
    if let Some(n) = cluster.nats.as_mut() {
        let pid = n.start(&clock)?;
        log.line(format_args!("nats-server started on port {} (pid {pid})", n.port));
    }
    for r in 0..REPLICAS {
        let pid = cluster.start(r)?;
        log.line(format_args!("{} spawn (pid {pid})", cluster.name(r)));
    }
    wait_for_banks(&mut cluster, &mut log)?;

    let gates: Vec<Gate> = (0..REPLICAS).map(|_| Gate::default()).collect();
    let ledger = Ledger::default();
    let stop = AtomicBool::new(false);
    let ctl = cluster.ctl.clone();
    let producers = Producers {
        ctl: &ctl,
        banks: cluster.replicas.iter().map(|r| r.name.clone()).collect(),
        gates: &gates,
        ledger: &ledger,
        stop: &stop,
        op: spec.op,
        slots: SLOTS,
        clock,
    };
    let mut nemesis = Nemesis::new(&mut cluster, &gates, &mut log, spec.seed);
    let base = clock.ms();
    nemesis.log.line(format_args!(
        "chaos: {} producers and a batch producer, {} s of faults",
        spec.producers, spec.seconds
    ));
    let chaos = std::thread::scope(|s| {
        for i in 0..spec.producers {
            let p = &producers;
            s.spawn(move || p.single(spec.seed.wrapping_add(1 + i as u64)));
        }
        s.spawn(|| producers.batch(spec.seed.wrapping_sub(1)));
        let r = nemesis.run(&schedule, base, base + spec.seconds * 1000);
        stop.store(true, Ordering::Relaxed);
        r
    });
    report.seconds = (clock.ms() - base) as f64 / 1000.0;
    report.ledger = ledger.counts();
    report.nemesis = nemesis.tally.clone();
    chaos?;
    nemesis.log.line(format_args!("chaos over: {:?}", report.ledger));

    let healed = heal(&mut nemesis, spec.heal);
    report.nemesis = nemesis.tally.clone();
    let healed = healed?;
    report.heal_ms = healed.wait_ms;
    report.replicas_equal = healed.converged;
    let acks = ledger.acks();
    let expected = fold(spec.op, SLOTS as usize, &acks);
    let names = nemesis.cluster.replicas.iter().map(|r| r.name.clone());
    let checks = check(spec.op, &expected, &names.zip(healed.states).collect::<Vec<_>>());
    report.lost = worst(&checks);
    for c in &checks {
        nemesis.log.line(format_args!("{}: lost {} over {} slots", c.replica, c.lost, c.mismatches.len()));
    }
    report.replicas = checks;
    std::fs::write(dir.join("ledger.json"), serde_json::to_string(&acks)?).context("writing ledger.json")?;
    Ok(())
}

/// Waits (bounded) until every daemon has created its bank, so that producers start against
/// a complete cluster (ACCUMs that fail before are not acknowledged anyway).
fn wait_for_banks(cluster: &mut Cluster, log: &mut NemesisLog) -> Result<()> {
    let t = Instant::now();
    while !(0..REPLICAS).all(|r| cluster.bank_file(r).exists()) {
        if let Some(x) = cluster.reap().first() {
            bail!(
                "{} exited at start ({}); see logs/{}.log",
                cluster.name(x.replica),
                x.status,
                cluster.name(x.replica)
            );
        }
        if t.elapsed() > CREATE_TIMEOUT {
            bail!("the daemons did not create their banks within {CREATE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log.line(format_args!("all banks created in {} ms", t.elapsed().as_millis()));
    Ok(())
}
