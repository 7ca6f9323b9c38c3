//! Timing helpers and result rows.

use std::time::Instant;

use serde_json::{json, Value};

use atomik::Bank;

/// A throughput: ops per second of wall time, and ops per second of the workers' own CPU
/// time (summed over workers: the rate had each worker had its core to itself). On a busy
/// machine the wall figure moves with the other load; the CPU figure much less.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    pub wall: f64,
    pub cpu: f64,
}

impl Rate {
    /// The better of two runs, figure by figure.
    pub fn max(self, o: Rate) -> Rate {
        Rate { wall: self.wall.max(o.wall), cpu: self.cpu.max(o.cpu) }
    }
}

/// A figure a row is compared with: its value and what it is.
pub struct Baseline {
    pub rate: Rate,
    pub to: &'static str,
    /// Compare ops per CPU-second (lock-free loops that never sleep) rather than wall ops/s
    /// (a mutex whose waiters sleep: their CPU time would flatter it).
    pub cpu: bool,
}

impl Baseline {
    pub fn wall(rate: Rate, to: &'static str) -> Baseline {
        Baseline { rate, to, cpu: false }
    }
    pub fn cpu(rate: Rate, to: &'static str) -> Baseline {
        Baseline { rate, to, cpu: true }
    }
    fn ratio(&self, r: Rate) -> f64 {
        if self.cpu {
            r.cpu / self.rate.cpu
        } else {
            r.wall / self.rate.wall
        }
    }
}

/// One measured figure, with the baselines of the same run it is compared with.
pub struct Row {
    pub name: String,
    pub workers: usize,
    pub rate: Rate,
    /// Empty for a baseline itself.
    pub baselines: Vec<Baseline>,
    /// What a row without baselines is ("baseline", "limit").
    pub role: &'static str,
}

impl Row {
    pub fn new(name: impl Into<String>, workers: usize, rate: Rate, baselines: Vec<Baseline>) -> Row {
        Row { name: name.into(), workers, rate, baselines, role: "baseline" }
    }

    /// A baseline row that is the limit of the others (the bare loop).
    pub fn limit(name: impl Into<String>, workers: usize, rate: Rate) -> Row {
        Row { role: "limit", ..Row::new(name, workers, rate, Vec::new()) }
    }

    pub fn text(&self) -> String {
        let ratio = if self.baselines.is_empty() {
            self.role.to_owned()
        } else {
            let r: Vec<String> = self
                .baselines
                .iter()
                .map(|b| {
                    format!("{:.3}x {} ({})", b.ratio(self.rate), b.to, if b.cpu { "CPU" } else { "wall" })
                })
                .collect();
            r.join(", ")
        };
        format!(
            "{:<36} {:>7} {:>10.1} {:>10.1}   {}",
            self.name,
            self.workers,
            self.rate.wall / 1e6,
            self.rate.cpu / 1e6,
            ratio
        )
    }

    pub fn json(&self) -> Value {
        let ratios: Vec<Value> = self
            .baselines
            .iter()
            .map(|b| {
                json!({
                    "to": b.to,
                    "ratio": b.ratio(self.rate),
                    "of": if b.cpu { "ops_per_cpu_sec" } else { "ops_per_sec" },
                })
            })
            .collect();
        let first = self.baselines.first();
        json!({
            "operation": self.name,
            "workers": self.workers,
            "ops_per_sec": self.rate.wall,
            "ops_per_cpu_sec": self.rate.cpu,
            "ratio": first.map(|b| b.ratio(self.rate)),
            "ratio_to": first.map(|b| b.to),
            "ratios": ratios,
        })
    }
}

/// CPU seconds the calling thread has run.
pub fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Runs `f(worker, i)` for `i` in `0..ops` on each of `workers` threads; total ops/s.
pub fn rate(workers: usize, ops: u64, f: impl Fn(usize, u64) + Sync) -> Rate {
    let barrier = std::sync::Barrier::new(workers + 1);
    let (start, cpu) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let c0 = thread_cpu_seconds();
                    // Each worker walks its own pseudo-random sequence: workers meet on a cache
                    // line only as often as the slot count makes them.
                    let offset = (w as u64).wrapping_mul(0x5851_F42D_4C95_7F2D);
                    for i in 0..ops {
                        f(w, i.wrapping_mul(0x9E37_79B9).wrapping_add(offset));
                    }
                    thread_cpu_seconds() - c0
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let cpu: f64 = handles.into_iter().map(|h| ops as f64 / h.join().expect("bench worker")).sum();
        (start, cpu)
    });
    Rate { wall: (workers as u64 * ops) as f64 / start.elapsed().as_secs_f64(), cpu }
}

/// ACCUM through `accum_batch` with batches of 1024 spread slots.
pub fn batched(bank: &Bank, ops: u64) -> Rate {
    let slots = bank.slots();
    let batch: Vec<(u64, u64)> = (0..1024u64).map(|i| (i.wrapping_mul(7) % slots, i | 1)).collect();
    let rounds = (ops / 1024).max(1);
    let (start, c0) = (Instant::now(), thread_cpu_seconds());
    for _ in 0..rounds {
        bank.accum_batch(std::hint::black_box(&batch)).expect("slots are in range");
    }
    let n = (rounds * 1024) as f64;
    Rate { wall: n / start.elapsed().as_secs_f64(), cpu: n / (thread_cpu_seconds() - c0) }
}

/// The 1, 5 and 15 minute load averages now (`/proc/loadavg`), when readable.
pub fn loadavg() -> Option<[f32; 3]> {
    use procfs::Current;
    procfs::LoadAverage::current().ok().map(|l| [l.one, l.five, l.fifteen])
}

/// Load averages as `/proc/loadavg` prints them.
pub fn load_text(l: &Option<[f32; 3]>) -> String {
    match l {
        Some([a, b, c]) => format!("{a:.2} {b:.2} {c:.2}"),
        None => "unknown".into(),
    }
}
