//! Timing helpers and result rows.

use std::time::Instant;

use serde_json::{json, Value};

use atomik::Bank;

/// One measured figure, optionally with the baseline it is compared with.
pub struct Row {
    pub name: &'static str,
    pub workers: usize,
    pub ops_per_sec: f64,
    pub baseline: Option<f64>,
}

impl Row {
    pub fn new(name: &'static str, workers: usize, ops_per_sec: f64, baseline: Option<f64>) -> Row {
        Row { name, workers, ops_per_sec, baseline }
    }

    pub fn text(&self) -> String {
        let ratio = match self.baseline {
            Some(b) => format!("{:.2}x {}", self.ops_per_sec / b, self.baseline_name()),
            None => "baseline".into(),
        };
        format!("{:<34} {:>7} {:>14.1} {:>22}", self.name, self.workers, self.ops_per_sec / 1e6, ratio)
    }

    fn baseline_name(&self) -> &'static str {
        if self.name.starts_with("accum (mapped bank, threads") {
            "vs mutex"
        } else {
            "vs 1-thread accum"
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "operation": self.name,
            "workers": self.workers,
            "ops_per_sec": self.ops_per_sec,
            "ratio": self.baseline.map(|b| self.ops_per_sec / b),
            "ratio_to": self.baseline.map(|_| self.baseline_name()),
        })
    }
}

/// Runs `f(worker, i)` for `i` in `0..ops` on each of `workers` threads; total ops/s.
pub fn ops_per_sec(workers: usize, ops: u64, f: impl Fn(usize, u64) + Sync) -> f64 {
    let barrier = std::sync::Barrier::new(workers + 1);
    let start = std::thread::scope(|s| {
        for w in 0..workers {
            let (f, barrier) = (&f, &barrier);
            s.spawn(move || {
                barrier.wait();
                // Each worker walks its own pseudo-random sequence: workers meet on a cache
                // line only as often as the slot count makes them.
                let offset = (w as u64).wrapping_mul(0x5851_F42D_4C95_7F2D);
                for i in 0..ops {
                    f(w, i.wrapping_mul(0x9E37_79B9).wrapping_add(offset));
                }
            });
        }
        barrier.wait();
        Instant::now()
    });
    (workers as u64 * ops) as f64 / start.elapsed().as_secs_f64()
}

/// ACCUM through `accum_batch` with batches of 1024 spread slots.
pub fn batched(bank: &Bank, ops: u64) -> f64 {
    let slots = bank.slots();
    let batch: Vec<(u64, u64)> = (0..1024u64).map(|i| (i.wrapping_mul(7) % slots, i | 1)).collect();
    let rounds = (ops / 1024).max(1);
    let start = Instant::now();
    for _ in 0..rounds {
        bank.accum_batch(std::hint::black_box(&batch)).expect("slots are in range");
    }
    (rounds * 1024) as f64 / start.elapsed().as_secs_f64()
}
