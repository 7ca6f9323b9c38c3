//! ACCUM from several processes on one bank: this binary re-executed as workers.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use atomik::Bank;

use crate::numbers::parse_u64;

/// Total ops/s of `workers` processes each doing `ops` ACCUMs on bank `name`.
pub fn measure(name: &str, workers: usize, ops: u64) -> Result<f64> {
    let exe = std::env::current_exe().context("locating atomikctl for worker processes")?;
    let start = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|_| {
            Command::new(&exe)
                .args(["bench", "--worker", name, &ops.to_string()])
                .spawn()
                .context("starting a bench worker process")
        })
        .collect::<Result<_>>()?;
    for mut c in children {
        let st = c.wait()?;
        if !st.success() {
            bail!("bench worker process failed: {st}");
        }
    }
    Ok((workers as u64 * ops) as f64 / start.elapsed().as_secs_f64())
}

/// The worker side.
pub fn child(name: &str, ops: &str) -> Result<()> {
    let ops = parse_u64(ops, "ops")?;
    let bank = Bank::open(name)?;
    let (mem, mask) = (bank.memory(), (1u64 << (63 - bank.slots().leading_zeros())) - 1);
    // As for threads: each process walks its own pseudo-random sequence of slots.
    let offset = (std::process::id() as u64).wrapping_mul(0x5851_F42D_4C95_7F2D);
    for i in 0..ops {
        let x = i.wrapping_mul(0x9E37_79B9).wrapping_add(offset);
        mem.accum(x & mask, x);
    }
    Ok(())
}
