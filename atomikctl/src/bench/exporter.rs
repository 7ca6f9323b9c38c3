//! `atomikctl bench exporter`: the CPU cost of the exporter with many processes in many
//! cgroups. Spawns `--procs` processes (each holding `--mib` MiB of touched anonymous memory)
//! spread over `--cgroups` cgroups (when the cgroup2 tree is writable; otherwise all in ours,
//! said so), then times, on this thread's CPU clock, one monitor sample (what the exporter
//! does every --interval: the /proc, pagemap and cgroupfs reads) and one scrape (rendering
//! /metrics), median of `--rounds`, without `--writes`/`--dups` as the exporter defaults.
//! Samples are timed six times per round: with the processes idle since the previous
//! sample (their pagemaps are not read again); after every process touched a new page (a
//! process that shared nothing and that no new process shares pages with is not read);
//! the same after a fork elsewhere (`true`, gone before the sample); after one of the
//! processes forked a child that holds its pages (only the parent is read again, when page
//! frame numbers let the sharers be counted); after one made a daemon's grandchild and
//! reaped the middle process (the same); and the same with SIGCHLD ignored (the kernel
//! reaps it: nothing points at the owner, every changed process is read). Against
//! a baseline of the same run: reading the bytes of the per-process files a sample cannot
//! skip.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use atomik::track::cgroup::host_cgroup2;
use atomik::track::monitor::{Monitor, MonitorOptions};

use super::measure::{load_text, loadavg, thread_cpu_seconds};
use crate::track::exporter::{exported_columns, Exported};
use crate::track::metrics::Format;
use crate::BadInput;

#[derive(Args, Debug)]
pub struct ExporterBenchArgs {
    /// Processes to spawn.
    #[arg(long, default_value_t = 500)]
    pub procs: usize,
    /// Cgroups to spread them over.
    #[arg(long, default_value_t = 50)]
    pub cgroups: usize,
    /// MiB of anonymous memory each process touches.
    #[arg(long, default_value_t = 1)]
    pub mib: usize,
    /// Timed samples (the median is printed).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Internal: be one of the spawned processes, holding this many MiB until stdin closes.
    #[arg(long, hide = true)]
    pub hold: Option<usize>,
}

/// A spawned process: it exits when its stdin closes, so none outlives the benchmark.
struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The cgroups made for the run, removed at the end (after the processes left).
struct Cgroups(Vec<std::path::PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A held process: touches `mib` MiB, then for every byte on stdin touches one new page
/// (a fault, RSS + 1 page: the process changed), does what the byte says and answers one
/// byte; exits at end of input. `t`: nothing more; `f`: forks a child that holds the pages
/// (shared copy-on-write); `d`: the same through a daemon's double fork (the child's child
/// stays, the child exits and is reaped here); `z`: the same with SIGCHLD ignored meanwhile
/// (the kernel reaps the child); `e`: ends them.
fn hold(mib: usize) -> Result<()> {
    use std::io::{Read, Write};
    let mem: Vec<u8> = (0..mib << 20).map(|i| (i >> 12) as u8 ^ 0x5a).collect();
    let mut more: Vec<u8> = Vec::with_capacity(1024 << 12);
    let (mut i, mut b) = (std::io::stdin().lock(), [0u8; 1]);
    // The children wait for the end of this pipe, whose write end only this process keeps.
    let mut ends: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> = None;
    let mut children = Vec::new();
    while i.read(&mut b)? == 1 {
        more.resize((more.len() + 4096).min(more.capacity()), 1);
        match b[0] {
            b'f' | b'd' | b'z' => {
                use nix::sys::signal::{signal, SigHandler, Signal};
                let (r, w) = match &ends {
                    Some(e) => e,
                    None => ends.insert(nix::unistd::pipe().context("pipe")?),
                };
                if b[0] == b'z' {
                    // SAFETY: SIG_IGN installs no handler; restored below.
                    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.context("signal")?;
                }
                let child = stay(r, w, b[0] != b'f')?;
                match b[0] {
                    b'f' => children.push(child),
                    b'd' => drop(nix::sys::wait::waitpid(child, None).context("waitpid")?),
                    _ => {
                        // The kernel reaps it: until its pid is gone (at most 5 s).
                        for _ in 0..5000 {
                            if nix::sys::signal::kill(child, None).is_err() {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        // SAFETY: as above.
                        unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }.context("signal")?;
                    }
                }
            }
            b'e' => {
                ends = None;
                for c in children.drain(..) {
                    nix::sys::wait::waitpid(c, None).context("waitpid")?;
                }
            }
            _ => {}
        }
        std::io::stdout().write_all(b"k")?;
        std::io::stdout().flush()?;
    }
    std::hint::black_box((&mem, &more));
    Ok(())
}

/// Forks a process that waits for the end of the pipe `r`/`w`, then leaves; with
/// `daemon`, forks a child that forks it and leaves at once (the caller reaps the child).
fn stay(r: &std::os::fd::OwnedFd, w: &std::os::fd::OwnedFd, daemon: bool) -> Result<nix::unistd::Pid> {
    use nix::unistd::{fork, ForkResult};
    use std::os::fd::AsRawFd;
    // SAFETY: the holder is single-threaded; the child closes a descriptor, blocks reading,
    // forks at most once more and leaves with _exit, touching no lock or allocator.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            if daemon {
                // SAFETY: as above, in the one thread of the child.
                if let Ok(ForkResult::Parent { .. }) = unsafe { fork() } {
                    // SAFETY: leaves the child at once, running no destructor.
                    unsafe { libc::_exit(0) };
                }
            }
            let _ = nix::unistd::close(w.as_raw_fd());
            let mut b = [0u8; 1];
            while nix::unistd::read(r.as_raw_fd(), &mut b).is_ok_and(|n| n > 0) {}
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Makes every held process touch a new page (the first one also doing what `first`
/// says, see [`hold`]), and waits until each has.
fn touch_all(held: &mut [Held], first: u8) -> Result<()> {
    use std::io::{Read, Write};
    for (i, h) in held.iter_mut().enumerate() {
        let cmd = if i == 0 { first } else { b't' };
        h.0.stdin.as_mut().expect("piped").write_all(&[cmd])?;
    }
    for h in held.iter_mut() {
        h.0.stdout.as_mut().expect("piped").read_exact(&mut [0u8; 1]).context("a held process died")?;
    }
    Ok(())
}

/// The baseline: reading (not parsing) the per-process files a sample reads at least, for
/// every process: `/proc/PID/stat` and `statm`, and `ksm_stat` where KSM merges pages.
fn bare_reads(pids: &[i32], ksm_stat: bool) -> f64 {
    let c = thread_cpu_seconds();
    for p in pids {
        let _ = std::fs::read(format!("/proc/{p}/stat"));
        let _ = std::fs::read(format!("/proc/{p}/statm"));
        if ksm_stat {
            let _ = std::fs::read(format!("/proc/{p}/ksm_stat"));
        }
    }
    (thread_cpu_seconds() - c) * 1e3
}

/// The figures of the timed rounds, CPU ms unless named otherwise.
#[derive(Default)]
struct Timings {
    bare: Vec<f64>,
    idle: Vec<f64>,
    idle_wall: Vec<f64>,
    busy: Vec<f64>,
    forked: Vec<f64>,
    child: Vec<f64>,
    daemon: Vec<f64>,
    auto_reaped: Vec<f64>,
    lean: Vec<f64>,
    scrape: Vec<f64>,
    rows: usize,
    bytes: usize,
    reused_idle: u64,
    reused_busy: u64,
    exclusive_busy: u64,
    exclusive_forked: u64,
    exclusive_child: u64,
    exclusive_daemon: u64,
    exclusive_auto_reaped: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: &ExporterBenchArgs, json_out: bool) -> Result<()> {
    if let Some(mib) = args.hold {
        return hold(mib);
    }
    if args.procs == 0 || args.cgroups == 0 || args.rounds == 0 {
        return Err(BadInput("--procs, --cgroups and --rounds must be at least 1".into()).into());
    }
    let load_before = loadavg();
    let exe = std::env::current_exe()?;
    // The cgroups, under the host's cgroup2 tree when we may write there.
    let root = host_cgroup2();
    let base = root.as_ref().map(|r| r.join(format!("atomik-bench-{}", std::process::id())));
    let mut made = Cgroups(Vec::new());
    let mut spread = false;
    if let Some(b) = &base {
        if std::fs::create_dir(b).is_ok() {
            made.0.push(b.clone());
            spread = (0..args.cgroups).all(|i| {
                let d = b.join(format!("g{i:03}"));
                let ok = std::fs::create_dir(&d).is_ok();
                made.0.push(d);
                ok
            });
        }
    }
    let mut held = Vec::with_capacity(args.procs);
    for i in 0..args.procs {
        let c = Command::new(&exe)
            .args(["bench", "exporter", "--hold", &args.mib.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning a benchmark process")?;
        if spread {
            let d = base.as_ref().unwrap().join(format!("g{:03}", i % args.cgroups));
            spread = std::fs::write(d.join("cgroup.procs"), c.id().to_string()).is_ok();
        }
        held.push(Held(c));
    }
    // Let them touch their memory.
    std::thread::sleep(std::time::Duration::from_millis(500 + 2 * args.procs as u64));
    let pids: Vec<i32> = held.iter().map(|h| h.0.id() as i32).collect();
    let rel =
        base.as_ref().zip(root.as_ref()).map(|(b, r)| format!("/{}", b.strip_prefix(r).unwrap().display()));
    let opts = MonitorOptions {
        subtree: if spread { rel.clone().unwrap() } else { "/".into() },
        pids: (!spread).then(|| pids.clone()),
        ..MonitorOptions::default()
    };
    let ksm_stat = !atomik::track::ksm::read_ksm(&opts.ksm_dir).nothing_merged();
    let cols = exported_columns(&[])?;
    let mut exported = Exported::default();
    let mut m = Monitor::new(opts.clone());
    exported.add(m.sample()?);
    let mut t = Timings::default();
    for _ in 0..args.rounds {
        t.bare.push(bare_reads(&pids, ksm_stat));
        // Idle processes: nothing changed since the previous sample.
        let (w, c) = (Instant::now(), thread_cpu_seconds());
        let snap = m.sample()?;
        t.idle.push((thread_cpu_seconds() - c) * 1e3);
        t.idle_wall.push(w.elapsed().as_secs_f64() * 1e3);
        t.rows = snap.rows.len();
        t.reused_idle = snap.pagemaps_reused;
        exported.add(snap);
        let c = thread_cpu_seconds();
        let text = exported.render(&cols, Format::OpenMetrics);
        t.scrape.push((thread_cpu_seconds() - c) * 1e3);
        t.bytes = text.len();
        // Every process touched a page since the previous sample.
        touch_all(&mut held, b't')?;
        let c = thread_cpu_seconds();
        let snap = m.sample()?;
        t.busy.push((thread_cpu_seconds() - c) * 1e3);
        t.reused_busy = snap.pagemaps_reused;
        t.exclusive_busy = snap.pagemaps_known_exclusive;
        // The same after some process forked (here `true`, which has exited since).
        touch_all(&mut held, b't')?;
        Command::new("true").status().context("running true")?;
        let c = thread_cpu_seconds();
        let snap = m.sample()?;
        t.forked.push((thread_cpu_seconds() - c) * 1e3);
        t.exclusive_forked = snap.pagemaps_known_exclusive;
        // One process forked a child that holds its pages, then made a daemon's grandchild;
        // each ended before the next (an untimed sample after).
        for (cmd, cpu, exclusive) in [
            (b'f', &mut t.child, &mut t.exclusive_child),
            (b'd', &mut t.daemon, &mut t.exclusive_daemon),
            (b'z', &mut t.auto_reaped, &mut t.exclusive_auto_reaped),
        ] {
            touch_all(&mut held, cmd)?;
            let c = thread_cpu_seconds();
            let snap = m.sample()?;
            cpu.push((thread_cpu_seconds() - c) * 1e3);
            *exclusive = snap.pagemaps_known_exclusive;
            touch_all(&mut held, b'e')?;
            m.sample()?;
        }
    }
    // The same without the pagemap columns (--no-cow).
    let mut m = Monitor::new(MonitorOptions { cow: false, ..opts });
    m.sample()?;
    for _ in 0..args.rounds {
        let c = thread_cpu_seconds();
        m.sample()?;
        t.lean.push((thread_cpu_seconds() - c) * 1e3);
    }
    drop(held);
    drop(made);
    let load_after = loadavg();
    let where_ = if spread {
        format!("{} cgroups under {}", args.cgroups, rel.unwrap_or_default())
    } else {
        "one cgroup (the cgroup2 tree is not writable here: no spread)".to_owned()
    };
    let (bare, idle, busy, lean, scrape) =
        (median(t.bare), median(t.idle), median(t.busy), median(t.lean), median(t.scrape));
    let (forked, child, daemon) = (median(t.forked), median(t.child), median(t.daemon));
    let auto_reaped = median(t.auto_reaped);
    let (idle_wall, n) = (median(t.idle_wall), args.procs as u64);
    if json_out {
        println!(
            "{}",
            json!({"procs": args.procs, "cgroups": if spread { args.cgroups } else { 1 }, "mib_each": args.mib,
                   "rows": t.rows, "bare_read_cpu_ms": bare, "ksm_stat_read": ksm_stat,
                   "sample_idle_cpu_ms": idle, "sample_idle_wall_ms": idle_wall, "pagemaps_reused_idle": t.reused_idle,
                   "sample_busy_cpu_ms": busy, "pagemaps_reused_busy": t.reused_busy,
                   "pagemaps_known_exclusive_busy": t.exclusive_busy,
                   "sample_busy_after_fork_cpu_ms": forked, "pagemaps_known_exclusive_after_fork": t.exclusive_forked,
                   "sample_busy_forked_child_cpu_ms": child, "pagemaps_known_exclusive_forked_child": t.exclusive_child,
                   "sample_busy_daemon_cpu_ms": daemon, "pagemaps_known_exclusive_daemon": t.exclusive_daemon,
                   "sample_busy_daemon_auto_reaped_cpu_ms": auto_reaped,
                   "pagemaps_known_exclusive_daemon_auto_reaped": t.exclusive_auto_reaped,
                   "sample_no_cow_cpu_ms": lean, "scrape_cpu_ms": scrape, "scrape_bytes": t.bytes,
                   "loadavg_before": load_before, "loadavg_after": load_after})
        );
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "exporter cost: {} processes ({} MiB each) in {where_}; {} rows",
        args.procs, args.mib, t.rows
    )?;
    writeln!(
        o,
        "loadavg {} -> {}; median of {}",
        load_text(&load_before),
        load_text(&load_after),
        args.rounds
    )?;
    let files =
        if ksm_stat { "{stat,statm,ksm_stat}" } else { "{stat,statm} (KSM merges nothing: no ksm_stat)" };
    let x = |v: f64| format!("{:.2}x", v / bare);
    writeln!(o, "| what | CPU ms | vs bare read |\n|---|---:|---:|")?;
    writeln!(o, "| bare read of /proc/PID/{files} of every process (baseline) | {bare:.1} | 1.00x |")?;
    writeln!(
        o,
        "| one sample, idle processes (pagemaps reused: {}/{n}; wall {idle_wall:.1} ms) | {idle:.1} | {} |",
        t.reused_idle,
        x(idle)
    )?;
    writeln!(
        o,
        "| one sample, every process touched a page (pagemaps reused: {}/{n}; changed but known to share \
         nothing, not read: {}/{n}) | {busy:.1} | {} |",
        t.reused_busy,
        t.exclusive_busy,
        x(busy)
    )?;
    writeln!(
        o,
        "| the same after a fork elsewhere (`true`; not read: {}/{n}) | {forked:.1} | {} |",
        t.exclusive_forked,
        x(forked)
    )?;
    writeln!(
        o,
        "| the same, one process forked a child holding its pages (not read: {}/{n}) | {child:.1} | {} |",
        t.exclusive_child,
        x(child)
    )?;
    writeln!(
        o,
        "| the same, one process made a daemon's grandchild, reaping the child (not read: {}/{n}) | {daemon:.1} | {} |",
        t.exclusive_daemon,
        x(daemon)
    )?;
    writeln!(
        o,
        "| the same with SIGCHLD ignored: the kernel reaps the child (not read: {}/{n}) | {auto_reaped:.1} | {} |",
        t.exclusive_auto_reaped,
        x(auto_reaped)
    )?;
    writeln!(o, "| one sample with --no-cow (no pagemap reads) | {lean:.1} | {} |", x(lean))?;
    writeln!(o, "| one scrape (render /metrics, {} bytes) | {scrape:.2} | |", t.bytes)?;
    writeln!(o, "| idle sample + scrape (goal < 50 ms CPU) | {:.1} | |", idle + scrape)?;
    Ok(())
}
