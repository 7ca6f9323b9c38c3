//! Ctrl-C (and SIGTERM, SIGHUP): the first stops the run in order — the loops see
//! [`interrupted`], the children are killed as their guards drop, the run directory is kept —
//! a second exits at once (the children then die of their parent-death signal).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("atomik-chaos: interrupted: stopping (again to abort)");
    })
    .context("installing the Ctrl-C handler")
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
