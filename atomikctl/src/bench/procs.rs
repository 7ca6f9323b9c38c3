//! ACCUM (or the bare loop) from several processes on one shared array: this binary
//! re-executed as workers. Each worker maps its target and says it is ready; the clock
//! starts when all are, so process start-up and mapping are not measured.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use atomik::{Bank, Op};

use super::bare::{self, BareArray};
use super::measure::{thread_cpu_seconds, Rate};
use crate::numbers::parse_u64;

/// What worker processes hammer.
pub enum Target<'a> {
    /// ACCUM into the bank of this name.
    Accum(&'a str),
    /// The bare loop of `op` on the array at this path.
    Bare(&'a Path, Op),
}

/// Total ops/s (wall and per CPU-second) of `workers` processes each doing `ops` ops on
/// `target`.
pub fn measure(target: &Target<'_>, workers: usize, ops: u64) -> Result<Rate> {
    let exe = std::env::current_exe().context("locating atomikctl for worker processes")?;
    let (mode, what) = match target {
        Target::Accum(name) => ("accum".to_owned(), name.to_string()),
        Target::Bare(path, op) => (format!("bare-{op}"), path.display().to_string()),
    };
    let mut children = Vec::new();
    for _ in 0..workers {
        let c = Command::new(&exe)
            .args(["bench", "--worker", &mode, &what, &ops.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a bench worker process")?;
        children.push(c);
    }
    for c in &mut children {
        let mut line = String::new();
        BufReader::new(c.stdout.as_mut().expect("piped")).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("bench worker process did not start: {line:?}");
        }
    }
    let start = Instant::now();
    for c in &mut children {
        // Closing stdin after the byte: the worker starts on either.
        let mut stdin = c.stdin.take().expect("piped");
        stdin.write_all(b"go\n")?;
    }
    let mut cpu = 0.0;
    for mut c in children {
        let st = c.wait()?;
        if !st.success() {
            bail!("bench worker process failed: {st}");
        }
        let mut line = String::new();
        BufReader::new(c.stdout.as_mut().expect("piped")).read_line(&mut line)?;
        let secs: f64 = line
            .trim()
            .strip_prefix("cpu ")
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bench worker process reported {line:?}"))?;
        cpu += ops as f64 / secs;
    }
    Ok(Rate { wall: (workers as u64 * ops) as f64 / start.elapsed().as_secs_f64(), cpu })
}

/// The worker side: `MODE TARGET OPS` as [`measure`] passes them.
pub fn child(mode: &str, target: &str, ops: &str) -> Result<()> {
    let ops = parse_u64(ops, "ops")?;
    let ready = || -> Result<()> {
        println!("ready");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(())
    };
    // As for threads: each process walks its own pseudo-random sequence of slots.
    let offset = u64::from(std::process::id()).wrapping_mul(0x5851_F42D_4C95_7F2D);
    let seq = |i: u64| i.wrapping_mul(0x9E37_79B9).wrapping_add(offset);
    let cpu = match mode {
        "accum" => {
            let bank = Bank::open(target)?;
            let (mem, mask) = (bank.memory(), bank.slots().next_power_of_two() - 1);
            ready()?;
            let c0 = thread_cpu_seconds();
            for i in 0..ops {
                let x = seq(i);
                mem.accum(x & mask, x);
            }
            thread_cpu_seconds() - c0
        }
        _ => {
            let op: Op = mode
                .strip_prefix("bare-")
                .and_then(|o| o.parse().ok())
                .with_context(|| format!("unknown worker mode {mode:?}"))?;
            let a = BareArray::open(Path::new(target))?;
            let (words, mask) = (a.words(), (a.words().len() as u64).next_power_of_two() - 1);
            ready()?;
            let c0 = thread_cpu_seconds();
            for i in 0..ops {
                let x = seq(i);
                bare::accum(words, op, x & mask, x);
            }
            thread_cpu_seconds() - c0
        }
    };
    println!("cpu {cpu}");
    Ok(())
}
