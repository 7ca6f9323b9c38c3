//! Carries out a [`Schedule`] against the cluster, logging every step, and restarts daemons
//! that exited on their own (a crash, a refusal to start) after a short random delay.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cluster::{Cluster, Waited};
use crate::gate::Gate;
use crate::log::NemesisLog;
use crate::procs::Outcome;
use crate::schedule::{Action, Schedule};
use crate::signals::interrupted;

/// Bound on a clean stop after SIGTERM; past it the daemon is killed (and that is counted).
const TERM_BOUND: Duration = Duration::from_secs(10);
/// Bound on retrying `sync leave` while its adopter is down.
const LEAVE_BOUND: Duration = Duration::from_secs(40);
/// Bound on waiting for two ticks before a `kill -9` reboot.
const QUIET_BOUND: Duration = Duration::from_secs(3);
/// Bound on ACCUMs in flight when a gate closes (an ACCUM's own bound, plus slack).
const GATE_BOUND: Duration = Duration::from_secs(15);

/// What the nemesis did and saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Faults started, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Daemon exits nobody asked for (crash, refusal to start).
    pub crashes: u64,
    /// nats-server exits nobody asked for.
    pub nats_crashes: u64,
    /// Daemons still running `TERM_BOUND` after SIGTERM (then killed).
    pub term_timeouts: u64,
    /// `sync recover` runs that did not exit 0: a run with any fails.
    pub recover_failures: u64,
    /// `sync leave` runs that did not succeed within their bound: a run with any fails.
    pub leave_failures: u64,
    /// Directory losses not injected because the clean stop before them did not drain (no
    /// peer acknowledged everything the replica held: its directory was the only copy), and
    /// bank deletions not injected because the SIGTERM before them did not stop cleanly.
    pub losses_skipped: u64,
    /// Stamped lines for the report: what made the run fail besides the data.
    pub problems: Vec<String>,
}

impl Tally {
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

pub struct Nemesis<'a> {
    pub cluster: &'a mut Cluster,
    pub gates: &'a [Gate],
    pub log: &'a mut NemesisLog,
    /// For the delays before restarting what crashed (those depend on timing anyway).
    rng: ChaCha8Rng,
    restart_at: Vec<Option<u64>>,
    nats_restart_at: Option<u64>,
    /// Per replica: the last directory loss was skipped (so is its recovery).
    loss_skipped: Vec<bool>,
    /// Per replica: a SIGTERM was sent and the daemon did not exit cleanly (it died in the
    /// few milliseconds before its signal handler existed): that stop took nothing, so a
    /// reboot after it would lose what producers wrote since the last tick by definition.
    unclean_term: Vec<bool>,
    /// Per replica: the last signal sent was SIGTERM.
    termed: Vec<bool>,
    /// Per replica: a `sync leave` running in the background, returning (left, tries, ms, last
    /// line, output).
    #[allow(clippy::type_complexity)]
    leaves: Vec<Option<std::thread::JoinHandle<(bool, u32, u64, String, String)>>>,
    pub tally: Tally,
}

impl<'a> Nemesis<'a> {
    pub fn new(
        cluster: &'a mut Cluster,
        gates: &'a [Gate],
        log: &'a mut NemesisLog,
        seed: u64,
    ) -> Nemesis<'a> {
        let n = cluster.replicas.len();
        Nemesis {
            cluster,
            gates,
            log,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x006e_656d_6573_6973),
            restart_at: vec![None; n],
            nats_restart_at: None,
            loss_skipped: vec![false; n],
            unclean_term: vec![false; n],
            termed: vec![false; n],
            leaves: (0..n).map(|_| None).collect(),
            tally: Tally::default(),
        }
    }

    /// Runs every step of `schedule` (times relative to `base_ms` on the run clock), then
    /// keeps watching until `end_ms`.
    pub fn run(&mut self, schedule: &Schedule, base_ms: u64, end_ms: u64) -> Result<()> {
        let mut next = 0;
        let mut started = vec![false; schedule.episodes.len()];
        loop {
            if interrupted() {
                bail!("interrupted");
            }
            self.watch(Duration::from_millis(100)..Duration::from_millis(1000))?;
            let now = self.cluster.clock.ms();
            while let Some(step) = schedule.steps.get(next).filter(|s| base_ms + s.at_ms <= now) {
                if !started[step.episode] {
                    started[step.episode] = true;
                    let e = &schedule.episodes[step.episode];
                    *self.tally.faults.entry(e.kind.name()).or_default() += 1;
                    self.log.line(format_args!("fault #{} {}: {}", step.episode, e.kind.name(), e.note));
                }
                self.step(step.action)?;
                next += 1;
            }
            if next == schedule.steps.len() && now >= end_ms {
                return Ok(());
            }
            let wake = schedule.steps.get(next).map_or(end_ms, |s| base_ms + s.at_ms).min(now + 20);
            std::thread::sleep(Duration::from_millis(wake.saturating_sub(self.cluster.clock.ms()).max(1)));
        }
    }

    /// Reaps exits; a daemon or server that exited on its own is restarted after a delay
    /// drawn from `delay`; due restarts are done.
    pub fn watch(&mut self, delay: std::ops::Range<Duration>) -> Result<()> {
        let now = self.cluster.clock.ms();
        for x in self.cluster.reap() {
            let name = self.cluster.name(x.replica).to_owned();
            if x.expected {
                self.log.line(format_args!("{name} exited ({})", x.status));
                continue;
            }
            self.tally.crashes += 1;
            let d = self.rng.gen_range(delay.clone()).as_millis() as u64;
            self.restart_at[x.replica] = Some(now + d);
            self.log.line(format_args!(
                "{name} exited unexpectedly ({}; see logs/{name}.log), restart in {d} ms",
                x.status
            ));
        }
        if let Some(st) = self.cluster.nats.as_mut().and_then(|n| n.reap()) {
            self.tally.nats_crashes += 1;
            let d = self.rng.gen_range(delay.clone()).as_millis() as u64;
            self.nats_restart_at = Some(now + d);
            self.log.line(format_args!("nats-server exited unexpectedly ({st}), restart in {d} ms"));
        }
        self.poll_leaves()?;
        for r in 0..self.restart_at.len() {
            if self.restart_at[r].is_some_and(|t| t <= now) {
                self.restart_at[r] = None;
                if !self.cluster.running(r) && !self.leaving(r) {
                    let pid = self.cluster.start(r)?;
                    self.log
                        .line(format_args!("{} restart after its exit (pid {pid})", self.cluster.name(r)));
                }
            }
        }
        if self.nats_restart_at.is_some_and(|t| t <= now) {
            self.nats_restart_at = None;
            self.nats_start()?;
        }
        Ok(())
    }

    /// Starts every daemon (and the server) that is down and not already due for a restart:
    /// the heal's "make sure everything runs", repeated while it waits.
    pub fn ensure_up(&mut self) -> Result<()> {
        if self.nats_restart_at.is_none() {
            self.nats_start()?;
        }
        for r in 0..self.restart_at.len() {
            if self.restart_at[r].is_none() && !self.cluster.running(r) && !self.leaving(r) {
                let pid = self.cluster.start(r)?;
                self.log.line(format_args!("{} spawn (pid {pid})", self.cluster.name(r)));
            }
        }
        Ok(())
    }

    fn nats_start(&mut self) -> Result<()> {
        let clock = self.cluster.clock;
        if let Some(n) = self.cluster.nats.as_mut() {
            if !n.running() {
                let pid = n.start(&clock)?;
                self.log.line(format_args!("nats-server started (pid {pid})"));
            }
        }
        Ok(())
    }

    /// One step. A step on a replica cancels a pending crash restart of it: its episode
    /// ends with a restart of its own.
    fn step(&mut self, action: Action) -> Result<()> {
        use Action::*;
        let r = match action {
            NatsKill | NatsStart => usize::MAX,
            Kill(r) | Term(r) | WaitExit(r) | Start(r) | Pause(r) | Resume(r) | CloseGate(r)
            | OpenGate(r) | WaitQuiet(r) | DeleteBank(r) | RemoveData(r) | Recover(r) | Leave(r)
            | LeaveDone(r) => {
                self.restart_at[r] = None;
                r
            }
        };
        if self.leaves.get(r).is_some_and(Option::is_some) && !matches!(action, LeaveDone(_)) {
            let name = self.cluster.name(r).to_owned();
            self.log.line(format_args!("{name} {action:?} skipped: still leaving"));
            return Ok(());
        }
        let name = self.cluster.replicas.get(r).map(|x| x.name.clone()).unwrap_or_default();
        let sent =
            |pid: Option<u32>| pid.map_or("not running: nothing sent".to_owned(), |p| format!("pid {p}"));
        match action {
            Kill(_) => {
                self.termed[r] = false;
                let pid = self.cluster.kill(r);
                self.log.line(format_args!("{name} kill -9 ({})", sent(pid)));
            }
            Term(_) => {
                self.termed[r] = true;
                let pid = self.cluster.signal(r, Signal::SIGTERM);
                self.log.line(format_args!("{name} SIGTERM ({})", sent(pid)));
            }
            Pause(_) => {
                let pid = self.cluster.signal(r, Signal::SIGSTOP);
                self.log.line(format_args!("{name} SIGSTOP ({})", sent(pid)));
            }
            Resume(_) => {
                let pid = self.cluster.signal(r, Signal::SIGCONT);
                self.log.line(format_args!("{name} SIGCONT ({})", sent(pid)));
            }
            WaitExit(_) => self.wait_exit(r, &name),
            Start(_) if self.cluster.running(r) => {
                self.log.line(format_args!("{name} spawn: already running"))
            }
            Start(_) => {
                self.termed[r] = false;
                self.unclean_term[r] = false;
                let pid = self.cluster.start(r)?;
                self.log.line(format_args!("{name} spawn (pid {pid})"));
            }
            CloseGate(_) => {
                let t = Instant::now();
                let all_done = self.gates[r].close(GATE_BOUND);
                let how = if all_done { "" } else { " (ACCUMs still in flight at the bound)" };
                self.log
                    .line(format_args!("{name} producers stopped in {} ms{how}", t.elapsed().as_millis()));
            }
            OpenGate(_) => {
                self.gates[r].open();
                self.log.line(format_args!("{name} producers let in again"));
            }
            WaitQuiet(_) => self.wait_quiet(r, &name),
            DeleteBank(_) if self.unclean_term[r] => {
                self.tally.losses_skipped += 1;
                self.log.line(format_args!("{name} bank deletion skipped: its SIGTERM stop was not clean"));
            }
            DeleteBank(_) => {
                let res = std::fs::remove_file(self.cluster.bank_file(r));
                self.log.line(format_args!(
                    "{name} bank file deleted{}",
                    res.err().map_or(String::new(), |e| format!(": {e}"))
                ));
            }
            Leave(_) => self.start_leave(r, &name),
            LeaveDone(_) if self.leaving(r) => {
                self.log.line(format_args!("{name} still leaving (its adopter is down or catching up)"))
            }
            LeaveDone(_) => {}
            RemoveData(_) if !self.drained(r) => {
                // Losing the only copy of acknowledged deltas is data loss by definition; the
                // daemon's promise is that a drained stop leaves none there.
                self.loss_skipped[r] = true;
                self.tally.losses_skipped += 1;
                self.log.line(format_args!(
                    "{name} rm -rf skipped: its stop did not drain (status.json drained != true)"
                ));
            }
            Recover(_) if self.loss_skipped[r] => {
                self.loss_skipped[r] = false;
                self.log.line(format_args!("{name} sync recover skipped (no loss injected)"));
            }
            RemoveData(_) => {
                let res = std::fs::remove_dir_all(&self.cluster.replicas[r].data);
                let e = res.err().map_or(String::new(), |e| format!(": {e}"));
                self.log.line(format_args!("{name} rm -rf {}{e}", self.cluster.replicas[r].data.display()));
            }
            Recover(_) => self.recover(r, &name),
            NatsKill => {
                let pid = self.cluster.nats.as_mut().and_then(|n| n.kill());
                self.log.line(format_args!("nats-server kill -9 ({})", sent(pid)));
            }
            NatsStart => self.nats_start()?,
        }
        Ok(())
    }

    /// Whether the replica's last clean stop reported every peer acknowledged its state.
    fn drained(&self, r: usize) -> bool {
        let path = self.cluster.replicas[r].data.join("status.json");
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("drained").and_then(serde_json::Value::as_bool))
            .unwrap_or(false)
    }

    fn wait_exit(&mut self, r: usize, name: &str) {
        let t = Instant::now();
        match self.cluster.wait_exit(r, TERM_BOUND) {
            Waited::NotRunning => self.log.line(format_args!("{name} was not running")),
            Waited::Exited(st) => {
                self.unclean_term[r] = self.termed[r] && !st.success();
                self.log.line(format_args!("{name} exited in {} ms ({st})", t.elapsed().as_millis()))
            }
            Waited::StillRunning => {
                self.tally.term_timeouts += 1;
                self.cluster.kill(r);
                self.log.line(format_args!("{name} still running {TERM_BOUND:?} after SIGTERM: kill -9"));
            }
        }
    }

    /// Waits for two fresh status files: the second comes from a tick that began after the
    /// gate closed, which committed every ACCUM acknowledged before.
    fn wait_quiet(&mut self, r: usize, name: &str) {
        let t = Instant::now();
        let mut last = self.cluster.status_inode(r);
        let mut changes = 0;
        while changes < 2 && t.elapsed() < QUIET_BOUND && self.cluster.running(r) {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.cluster.status_inode(r);
            if now != last && now.is_some() {
                changes += 1;
                last = now;
            }
        }
        let how = if changes < 2 { " (bound reached)" } else { "" };
        self.log.line(format_args!("{name} {changes} ticks in {} ms{how}", t.elapsed().as_millis()));
    }

    /// Starts `sync leave` in the background: it may have to wait for its adopter, which the
    /// nemesis may be about to restart.
    fn start_leave(&mut self, r: usize, name: &str) {
        let plan = self.cluster.leave_plan(r);
        self.log.line(format_args!("{name} sync leave started: {}", plan.how.describe()));
        self.leaves[r] = Some(std::thread::spawn(move || plan.run(LEAVE_BOUND)));
    }

    /// Finishes the leaves that ended: a replica that left gets its retired directory
    /// removed, `sync recover` and a restart (under a new origin); one that could not leave
    /// is restarted as it is (a daemon refuses a directory whose leave is unfinished).
    fn poll_leaves(&mut self) -> Result<()> {
        for r in 0..self.leaves.len() {
            if !self.leaves[r].as_ref().is_some_and(|h| h.is_finished()) {
                continue;
            }
            let done = self.leaves[r].take().expect("checked").join();
            let name = self.cluster.name(r).to_owned();
            let (ok, tries, ms, last, output) =
                done.unwrap_or((false, 0, 0, "the leave thread panicked".into(), String::new()));
            self.cluster.note(r, &format!("sync leave:\n{output}"));
            if ok {
                self.log.line(format_args!("{name} sync leave: left after {tries} tries in {ms} ms: {last}"));
                let res = std::fs::remove_dir_all(&self.cluster.replicas[r].data);
                let e = res.err().map_or(String::new(), |e| format!(": {e}"));
                self.log.line(format_args!("{name} rm -rf {}{e}", self.cluster.replicas[r].data.display()));
                self.recover(r, &name);
            } else {
                self.leave_failed(r, &name, &format!("after {tries} tries in {ms} ms: {last}"));
            }
            let pid = self.cluster.start(r)?;
            self.log.line(format_args!("{name} spawn (pid {pid})"));
        }
        Ok(())
    }

    fn leave_failed(&mut self, r: usize, name: &str, why: &str) {
        self.tally.leave_failures += 1;
        self.log.line(format_args!("{name} sync leave FAILED {why}"));
        let stamp = self.cluster.clock.stamp();
        self.tally.problems.push(format!("{stamp} {name}: sync leave failed {why}"));
        let _ = r;
    }

    /// True while a leave of replica `r` runs.
    pub fn leaving(&self, r: usize) -> bool {
        self.leaves[r].is_some()
    }

    fn recover(&mut self, r: usize, name: &str) {
        let data = self.cluster.replicas[r].data.clone();
        let (ok, what, output) = match self.cluster.ctl.recover(name, &data) {
            Ok(Outcome::Exited { status, stdout, stderr }) => {
                let out = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
                (status.success(), status.to_string(), out)
            }
            Ok(Outcome::TimedOut) => (false, "timed out".into(), String::new()),
            Err(e) => (false, format!("{e:#}"), String::new()),
        };
        self.cluster.note(r, &format!("sync recover ({what}):\n{output}"));
        let first = output.lines().next().unwrap_or("").to_owned();
        self.log.line(format_args!("{name} sync recover: {what} {first}"));
        if !ok {
            self.tally.recover_failures += 1;
            let stamp = self.cluster.clock.stamp();
            self.tally.problems.push(format!("{stamp} {name}: sync recover failed ({what}): {first}"));
        }
    }
}
