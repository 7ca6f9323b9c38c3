//! What a run found, and the table and JSON that show it.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::faults::Transport;
use crate::model::{Op, ReplicaCheck};
use crate::nemesis::Tally;
use crate::producers::Counts;

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// 1-based, in the order the runs were made.
    pub run: usize,
    pub transport: Transport,
    pub op: Op,
    /// This run's seed: with the same seconds and faults it gives the same fault schedule.
    pub seed: u64,
    /// The command line that replays this run's schedule.
    pub replay: String,
    /// Measured length of the chaos phase (producers and nemesis running).
    pub seconds: f64,
    /// From the start of the heal to convergence (or to its bound).
    pub heal_ms: u64,
    #[serde(flatten)]
    pub nemesis: Tally,
    pub faults_total: u64,
    #[serde(flatten)]
    pub ledger: Counts,
    pub replicas_equal: bool,
    /// The worst replica's summed mismatch with the ledger (see `model::mismatches`).
    pub lost: u64,
    pub replicas: Vec<ReplicaCheck>,
    /// Set when the harness itself could not carry out the run; the run then fails.
    pub error: Option<String>,
    pub pass: bool,
    /// The run directory, when kept (on failure, or with --keep).
    pub dir: Option<String>,
}

impl RunReport {
    /// The verdict: replicas equal each other and the ledger, every `sync recover` and
    /// `sync leave` worked,
    /// and the harness ran as planned.
    pub fn judge(&mut self) {
        self.pass = self.error.is_none()
            && self.replicas_equal
            && self.lost == 0
            && self.nemesis.recover_failures == 0
            && self.nemesis.leave_failures == 0
            && self.ledger.harness_errors == 0;
    }
}

#[derive(Debug, Serialize)]
pub struct Total {
    pub runs: usize,
    pub passed: usize,
    pub faults: u64,
    pub acknowledged: u64,
    pub lost: u64,
}

/// All runs: what `--json` prints.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub pass: bool,
    pub total: Total,
    pub runs: Vec<RunReport>,
}

impl Summary {
    pub fn new(seed: u64, runs: Vec<RunReport>) -> Summary {
        let total = Total {
            runs: runs.len(),
            passed: runs.iter().filter(|r| r.pass).count(),
            faults: runs.iter().map(|r| r.faults_total).sum(),
            acknowledged: runs.iter().map(|r| r.ledger.acknowledged).sum(),
            lost: runs.iter().map(|r| r.lost).sum(),
        };
        Summary { seed, pass: total.passed == total.runs, total, runs }
    }

    /// One row per run, a total row, then the details of each failed run.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, c: [&str; 10]| {
            let line = format!(
                "{:<5} {:<9} {:<3} {:>6} {:>6} {:>7} {:<5} {:>12}  {:<6} {}",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
            );
            let _ = writeln!(s, "{}", line.trim_end());
        };
        row(
            &mut s,
            [
                "RUN",
                "TRANSPORT",
                "OP",
                "SECS",
                "FAULTS",
                "ACKED",
                "EQUAL",
                "LOST",
                "RESULT",
                "FAULTS BY KIND",
            ],
        );
        for r in &self.runs {
            row(
                &mut s,
                [
                    &r.run.to_string(),
                    r.transport.name(),
                    r.op.name(),
                    &format!("{:.1}", r.seconds),
                    &r.faults_total.to_string(),
                    &r.ledger.acknowledged.to_string(),
                    if r.replicas_equal { "yes" } else { "no" },
                    &r.lost.to_string(),
                    if r.pass { "pass" } else { "FAIL" },
                    &kinds(&r.nemesis.faults),
                ],
            );
        }
        let t = &self.total;
        let passed = format!("{}/{} passed", t.passed, t.runs);
        let runs = format!("{} runs", t.runs);
        row(
            &mut s,
            [
                "TOTAL",
                &runs,
                "",
                "",
                &t.faults.to_string(),
                &t.acknowledged.to_string(),
                "",
                &t.lost.to_string(),
                &passed,
                "",
            ],
        );
        for r in self.runs.iter().filter(|r| !r.pass) {
            s.push_str(&details(r));
        }
        s
    }
}

fn kinds(faults: &BTreeMap<&'static str, u64>) -> String {
    faults.iter().map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(" ")
}

/// Why a run failed, and where to look.
fn details(r: &RunReport) -> String {
    let mut s = format!("\nrun {} ({} {}, seed {}) FAILED\n", r.run, r.transport.name(), r.op.name(), r.seed);
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  error: {e}");
    }
    let (t, l) = (&r.nemesis, &r.ledger);
    let _ = writeln!(
        s,
        "  acknowledged {}, rejected {}, indeterminate {}; daemon crashes {}, nats-server crashes {}, \
         SIGTERM timeouts {}, recover failures {}, leave failures {}, losses not injected (stop not clean or not drained) {}; \
         heal {} ms, replicas equal: {}",
        l.acknowledged,
        l.rejected,
        l.indeterminate,
        t.crashes,
        t.nats_crashes,
        t.term_timeouts,
        t.recover_failures,
        t.leave_failures,
        t.losses_skipped,
        r.heal_ms,
        if r.replicas_equal { "yes" } else { "no" }
    );
    for p in &t.problems {
        let _ = writeln!(s, "  {p}");
    }
    for c in r.replicas.iter().filter(|c| c.lost > 0) {
        let slots: Vec<String> =
            c.mismatches.iter().take(6).map(|m| format!("{}:{}{}", m.slot, m.kind, m.amount)).collect();
        let more = c.mismatches.len().saturating_sub(6);
        let more = if more > 0 { format!(" (+{more} slots)") } else { String::new() };
        let unread = if c.readable { "" } else { " (bank unreadable)" };
        let _ = writeln!(
            s,
            "  {}{unread}: lost {} over {} slots: {}{more}",
            c.replica,
            c.lost,
            c.mismatches.len(),
            slots.join(" ")
        );
    }
    if let Some(d) = &r.dir {
        let _ = writeln!(s, "  kept {d} (nemesis.log, logs/, data/*/status.json, ledger.json)");
    }
    let _ = writeln!(s, "  replay: {}", r.replay);
    s
}
