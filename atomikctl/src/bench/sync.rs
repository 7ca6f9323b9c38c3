//! `atomikctl bench sync`: what replication costs when little changes.
//!
//! - **Idle daemon CPU**: a real `atomikctl sync serve` child per bank size (soft backend in
//!   a private bank directory, secret in its environment), its CPU time (utime + stime of
//!   `/proc/PID/stat`) over a window with no ACCUMs, in % of one core. Beside it: what one
//!   read pass over every accumulator of that bank costs, and that cost paid every tick.
//! - **Tick time**: in this process, a [`Mirror`] on a bank; ACCUM into a random share of the
//!   slots, then time [`Mirror::take`] (median of several rounds; it includes the log's
//!   fsync when anything changed). Beside every figure: one read pass over all accumulators
//!   of the bank (what an O(bank) scan costs), timed in the same rounds.
//!
//! Both print `/proc/loadavg` before and after: the figures are only as quiet as the machine.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use atomik::replica::mirror::{Mirror, MirrorOptions};
use atomik::{Bank, Op};

use super::measure::{load_text, loadavg, thread_cpu_seconds};
use crate::BadInput;

/// Options of `bench sync`.
#[derive(Debug, clap::Args)]
pub struct SyncBenchArgs {
    /// Bank sizes (slots) of the idle-daemon measurement, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "65536,1048576,16777216")]
    pub idle_slots: Vec<u64>,
    /// Milliseconds over which an idle daemon's CPU time is measured.
    #[arg(long, default_value_t = 5000)]
    pub window_ms: u64,
    /// Milliseconds a daemon runs after its first status.json before the window opens.
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// The daemons' tick (`sync serve --tick-ms`).
    #[arg(long, default_value_t = 100)]
    pub tick_ms: u64,
    /// Slots of the bank whose take (tick) time is measured.
    #[arg(long, default_value_t = 1_048_576)]
    pub tick_slots: u64,
    /// Percent of the slots changed before each timed take, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,10")]
    pub changed_pct: Vec<f64>,
    /// Timed takes per share changed (the median is printed).
    #[arg(long, default_value_t = 9)]
    pub rounds: usize,
    /// Group operator of the banks.
    #[arg(long, default_value = "xor")]
    pub op: Op,
    /// Seconds to wait for a daemon's first status.json.
    #[arg(long, default_value_t = 600)]
    pub start_timeout_s: u64,
}

/// A private directory for banks and replica directories, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(a: &SyncBenchArgs, json: bool) -> Result<()> {
    if a.rounds == 0 || a.window_ms == 0 || a.tick_slots == 0 || a.idle_slots.contains(&0) {
        return Err(
            BadInput("--rounds, --window-ms, --tick-slots and --idle-slots must be above 0".into()).into()
        );
    }
    if let Some(p) = a.changed_pct.iter().find(|p| !(0.0..=100.0).contains(*p)) {
        return Err(BadInput(format!("--changed-pct {p} is not between 0 and 100")).into());
    }
    let root = std::env::temp_dir().join(format!("atomik-bench-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let scratch = Scratch(root);
    let shm = scratch.0.join("shm");
    // Set before any bank is opened and before any thread starts: this process (the tick
    // measurement) and the daemons it starts share this private bank directory.
    std::env::set_var("ATOMIK_SHM_DIR", &shm);
    std::env::set_var("ATOMIK_BACKEND", "soft");
    let load_before = loadavg();
    let progress = |s: String| {
        if !json {
            eprintln!("  {s}")
        }
    };

    let mut idle = Vec::new();
    for &n in &a.idle_slots {
        let r = idle_cpu(a, &scratch.0, n)?;
        progress(format!("idle daemon at {n} slots: {:.2} % of a core", r.cpu_pct));
        idle.push(r);
    }
    let tick = tick_times(a, &scratch.0, &|s| progress(s))?;
    let load_after = loadavg();

    if json {
        let v = json!({
            "backend": "soft",
            "op": a.op.name(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "idle": {
                "window_s": a.window_ms as f64 / 1e3,
                "tick_ms": a.tick_ms,
                "runs": idle.iter().map(Idle::json).collect::<Vec<_>>(),
            },
            "tick": tick.json(),
        });
        println!("{v}");
    } else {
        println!("loadavg before: {}  after: {}", load_text(&load_before), load_text(&load_after));
        println!();
        println!(
            "idle `atomikctl sync serve` (soft backend, tick {} ms, no ACCUMs), CPU over {:.1} s; baseline: one read \
             pass over the bank's accumulators, and that pass every tick",
            a.tick_ms,
            a.window_ms as f64 / 1e3
        );
        println!(
            "{:>10} {:>14} {:>16} {:>22}",
            "slots", "daemon % core", "read pass CPU ms", "pass every tick % core"
        );
        for r in &idle {
            println!("{:>10} {:>14.2} {:>16.3} {:>22.2}", r.slots, r.cpu_pct, r.scan_ms, r.scan_pct);
        }
        println!();
        print!("{}", tick.text());
    }
    Ok(())
}

/// One idle-daemon measurement.
struct Idle {
    slots: u64,
    window_s: f64,
    cpu_s: f64,
    cpu_pct: f64,
    scan_ms: f64,
    scan_pct: f64,
}

impl Idle {
    fn json(&self) -> Value {
        json!({
            "slots": self.slots,
            "window_s": self.window_s,
            "cpu_seconds": self.cpu_s,
            "cpu_pct": self.cpu_pct,
            "read_pass_ms": self.scan_ms,
            "read_pass_every_tick_pct": self.scan_pct,
        })
    }
}

/// A daemon child: stopped (SIGTERM, then SIGKILL after a bound) however the run ends.
struct Daemon(Child);

impl Daemon {
    fn stop(&mut self) -> Result<()> {
        if self.0.try_wait()?.is_none() {
            // SAFETY: kill(2) on our own child's pid, which we have not waited for yet.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(120);
            while self.0.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    self.0.kill()?;
                    self.0.wait()?;
                    bail!("the sync daemon did not stop within 120 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.stop().is_err() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

fn idle_cpu(a: &SyncBenchArgs, root: &Path, n: u64) -> Result<Idle> {
    let bank = format!("idle-{n}");
    let data = root.join(&bank);
    let log = root.join(format!("{bank}.stderr"));
    let exe = std::env::current_exe().context("locating atomikctl for the sync daemon")?;
    let secret = format!("bench-sync-{}-{:?}", std::process::id(), Instant::now());
    let child = Command::new(exe)
        .args(["sync", "serve", "--bank", &bank, "--op", a.op.name()])
        .args(["--slots", &n.to_string(), "--tick-ms", &a.tick_ms.to_string(), "--drain-ms", "0"])
        .arg("--data")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .env("ATOMIK_SYNC_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(&log)?))
        .spawn()
        .context("starting atomikctl sync serve")?;
    let mut d = Daemon(child);
    let pid = d.0.id();
    let status = data.join("status.json");
    let deadline = Instant::now() + Duration::from_secs(a.start_timeout_s);
    while !status.exists() {
        if let Some(st) = d.0.try_wait()? {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("the sync daemon for {n} slots exited ({st}) before its first status: {}", err.trim());
        }
        if Instant::now() > deadline {
            bail!("the sync daemon for {n} slots wrote no status.json within {} s", a.start_timeout_s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(a.settle_ms));
    let (c0, t0) = (cpu_seconds(pid)?, Instant::now());
    std::thread::sleep(Duration::from_millis(a.window_ms));
    let (c1, window) = (cpu_seconds(pid)?, t0.elapsed().as_secs_f64());
    if let Some(st) = d.0.try_wait()? {
        bail!("the sync daemon for {n} slots exited during the window ({st})");
    }
    d.stop()?;
    // The baseline, on the same bank once its daemon is gone (so it does not share the CPU).
    let b = Bank::open(&bank)?;
    let scan_ms = median(&mut (0..5).map(|_| read_pass(&b)).collect::<Vec<_>>()) * 1e3;
    drop(b);
    Bank::destroy(&bank)?;
    let _ = std::fs::remove_dir_all(&data);
    let cpu_s = c1 - c0;
    Ok(Idle {
        slots: n,
        window_s: window,
        cpu_s,
        cpu_pct: cpu_s / window * 100.0,
        scan_ms,
        scan_pct: scan_ms / a.tick_ms.max(1) as f64 * 100.0,
    })
}

/// CPU seconds of one pass of loads over every accumulator of `bank` (CPU time, not wall
/// time: on a busy machine a pass is preempted, and the daemon's figure is CPU time too).
fn read_pass(bank: &Bank) -> f64 {
    let mem = bank.memory();
    let start = thread_cpu_seconds();
    let mut x = 0u64;
    for i in 0..bank.slots() {
        x ^= mem.accumulator(i);
    }
    std::hint::black_box(x);
    thread_cpu_seconds() - start
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Take times of one bank.
struct Ticks {
    slots: u64,
    cards: u64,
    rounds: usize,
    /// The first take after opening: every slot scanned.
    full_ms: f64,
    full_cpu_ms: f64,
    full_scan_ms: f64,
    runs: Vec<TickRun>,
}

struct TickRun {
    pct: f64,
    changed: u64,
    pages: u64,
    take_ms: f64,
    take_cpu_ms: f64,
    scan_ms: f64,
}

impl Ticks {
    fn json(&self) -> Value {
        json!({
            "slots": self.slots,
            "pages": self.cards,
            "rounds": self.rounds,
            "full_scan_take_ms": self.full_ms,
            "full_scan_take_cpu_ms": self.full_cpu_ms,
            "full_scan_read_pass_ms": self.full_scan_ms,
            "runs": self.runs.iter().map(|r| json!({
                "changed_pct": r.pct,
                "changed_slots": r.changed,
                "pages_marked": r.pages,
                "take_ms": r.take_ms,
                "take_cpu_ms": r.take_cpu_ms,
                "read_pass_ms": r.scan_ms,
                "take_cpu_vs_read_pass": r.take_cpu_ms / r.scan_ms,
            })).collect::<Vec<_>>(),
        })
    }

    fn text(&self) -> String {
        let mut s = format!(
            "tick time: Mirror::take on a bank of {} slots ({} pages), median of {} (wall: with the log's fsync; \
             CPU: this thread's); baseline: the CPU time of one read pass over all accumulators, same rounds\n",
            self.slots, self.cards, self.rounds
        );
        s += &format!(
            "{:>10} {:>10} {:>14} {:>13} {:>12} {:>16} {:>14}\n",
            "changed",
            "slots",
            "pages marked",
            "take wall ms",
            "take CPU ms",
            "read pass ms",
            "CPU take/pass"
        );
        let row = |what: String, slots: String, pages: String, wall: f64, cpu: f64, scan: f64| {
            format!(
                "{what:>10} {slots:>10} {pages:>14} {wall:>13.3} {cpu:>12.3} {scan:>16.3} {:>13.3}x\n",
                cpu / scan
            )
        };
        for r in &self.runs {
            let (pct, slots, pages) = (format!("{} %", r.pct), r.changed.to_string(), r.pages.to_string());
            s += &row(pct, slots, pages, r.take_ms, r.take_cpu_ms, r.scan_ms);
        }
        s += &row(
            "full scan".into(),
            "-".into(),
            "all".into(),
            self.full_ms,
            self.full_cpu_ms,
            self.full_scan_ms,
        );
        s += "(full scan: the first take after a start reads every slot, as every tick once did)\n";
        s
    }
}

/// A small deterministic generator for the changed slots.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn tick_times(a: &SyncBenchArgs, root: &Path, progress: &dyn Fn(String)) -> Result<Ticks> {
    let n = a.tick_slots;
    let mut opts = MirrorOptions::new("tick", root.join("tick"));
    opts.create = Some((n, a.op));
    let mut m = Mirror::open(&opts)?;
    let cards = m.bank().memory().cards();
    let (t, c) = (Instant::now(), thread_cpu_seconds());
    m.take()?;
    let (full_ms, full_cpu_ms) = (t.elapsed().as_secs_f64() * 1e3, (thread_cpu_seconds() - c) * 1e3);
    let full_scan_ms = read_pass(m.bank()) * 1e3;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut runs = Vec::new();
    for &pct in &a.changed_pct {
        let k = ((n as f64 * pct / 100.0).round() as u64).min(n);
        let (mut takes, mut cpus, mut scans, mut pages) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..a.rounds {
            scans.push(read_pass(m.bank()));
            // k distinct random slots, each given a change (XOR: a nonzero word; ADD: ≥ 1).
            let mut hit = vec![false; n as usize];
            let mut marked = vec![false; cards as usize];
            let mem = m.bank().memory();
            let mut done = 0;
            while done < k {
                let i = rng.next() % n;
                if !hit[i as usize] {
                    hit[i as usize] = true;
                    marked[(i / atomik::abi::CARD_SLOTS) as usize] = true;
                    mem.accum(i, rng.next() | 1);
                    done += 1;
                }
            }
            pages = marked.iter().filter(|&&c| c).count() as u64;
            let (t, c) = (Instant::now(), thread_cpu_seconds());
            m.take()?;
            takes.push(t.elapsed().as_secs_f64());
            cpus.push(thread_cpu_seconds() - c);
        }
        let run = TickRun {
            pct,
            changed: k,
            pages,
            take_ms: median(&mut takes) * 1e3,
            take_cpu_ms: median(&mut cpus) * 1e3,
            scan_ms: median(&mut scans) * 1e3,
        };
        progress(format!("take with {pct} % changed: {:.3} ms", run.take_ms));
        runs.push(run);
        m.maybe_checkpoint()?;
    }
    let bank = m.bank().name().to_owned();
    drop(m);
    Bank::destroy(&bank)?;
    Ok(Ticks { slots: n, cards, rounds: a.rounds, full_ms, full_cpu_ms, full_scan_ms, runs })
}
