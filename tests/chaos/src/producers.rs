//! Producers: loops that run `atomikctl accum` against random replicas — including those whose
//! daemon is down at the moment — and record in the ledger every invocation that exited 0.
//!
//! An invocation that failed (the bank does not exist right now, say) was not acknowledged and
//! is not recorded; one that hung past its bound is killed and counted as indeterminate (it
//! may or may not have been applied, so the run cannot blame a mismatch on the daemons then).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::ctl::Ctl;
use crate::gate::Gate;
use crate::log::Clock;
use crate::model::{Ack, Op};
use crate::procs::Outcome;

/// The acknowledged ACCUMs and what happened to the others.
#[derive(Debug, Default)]
pub struct Ledger {
    acks: Mutex<Vec<Ack>>,
    pub rejected: AtomicU64,
    pub indeterminate: AtomicU64,
    /// Harness errors (could not spawn atomikctl at all): a run with any is not judged.
    pub errors: AtomicU64,
}

/// The ledger's counts, for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub acknowledged: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    pub harness_errors: u64,
}

impl Ledger {
    pub fn acks(&self) -> Vec<Ack> {
        self.acks.lock().expect("ledger lock").clone()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            acknowledged: self.acks.lock().expect("ledger lock").len() as u64,
            rejected: self.rejected.load(Relaxed),
            indeterminate: self.indeterminate.load(Relaxed),
            harness_errors: self.errors.load(Relaxed),
        }
    }

    fn record(&self, outcome: anyhow::Result<Outcome>, acks: impl IntoIterator<Item = Ack>) {
        match outcome {
            Ok(o) if o.success() => self.acks.lock().expect("ledger lock").extend(acks),
            Ok(Outcome::Exited { .. }) => {
                self.rejected.fetch_add(1, Relaxed);
            }
            Ok(Outcome::TimedOut) => {
                self.indeterminate.fetch_add(1, Relaxed);
            }
            Err(e) => {
                eprintln!("atomik-chaos: producer: {e:#}");
                self.errors.fetch_add(1, Relaxed);
                // Do not spin on a harness error (e.g. out of processes).
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// What every producer shares.
pub struct Producers<'a> {
    pub ctl: &'a Ctl,
    pub banks: Vec<String>,
    pub gates: &'a [Gate],
    pub ledger: &'a Ledger,
    pub stop: &'a AtomicBool,
    pub op: Op,
    pub slots: u64,
    pub clock: Clock,
}

impl Producers<'_> {
    /// ADD: small positive deltas; XOR: random words.
    fn delta(&self, rng: &mut ChaCha8Rng) -> u64 {
        match self.op {
            Op::Add => rng.gen_range(1..=1000),
            Op::Xor => rng.gen(),
        }
    }

    /// A replica whose gate is open, with the pass held while the caller ACCUMs.
    fn pick(&self, rng: &mut ChaCha8Rng) -> Option<(u8, crate::gate::Pass<'_>)> {
        let r = rng.gen_range(0..self.banks.len());
        let pass = self.gates[r].enter();
        if pass.is_none() {
            // Rebooting: try another (and do not spin if all are).
            std::thread::sleep(Duration::from_millis(1));
        }
        pass.map(|p| (r as u8, p))
    }

    /// One `atomikctl accum BANK SLOT DELTA` at a time until stopped.
    pub fn single(&self, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        while !self.stop.load(Relaxed) {
            let Some((r, _pass)) = self.pick(&mut rng) else { continue };
            let (slot, delta) = (rng.gen_range(0..self.slots) as u32, self.delta(&mut rng));
            let outcome = self.ctl.accum(&self.banks[r as usize], slot, delta);
            let at_ms = self.clock.ms();
            self.ledger.record(outcome, [Ack { slot, delta, replica: r, at_ms }]);
        }
    }

    /// Batches of 2–32 `SLOT DELTA` lines through `atomikctl accum BANK -` until stopped;
    /// a batch is all or nothing, so all its deltas are recorded on exit 0.
    pub fn batch(&self, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        while !self.stop.load(Relaxed) {
            let Some((r, _pass)) = self.pick(&mut rng) else { continue };
            let ops: Vec<(u32, u64)> = (0..rng.gen_range(2..=32))
                .map(|_| (rng.gen_range(0..self.slots) as u32, self.delta(&mut rng)))
                .collect();
            let outcome = self.ctl.accum_batch(&self.banks[r as usize], &ops);
            let at_ms = self.clock.ms();
            self.ledger
                .record(outcome, ops.iter().map(|&(slot, delta)| Ack { slot, delta, replica: r, at_ms }));
        }
    }
}
