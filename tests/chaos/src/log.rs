//! The run's clock and its nemesis log: every fault, restart and unexpected exit, stamped
//! with seconds since the run started (the same stamps head each spawn in the daemon logs,
//! so the two can be read side by side).

use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// Time since the run started.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    /// `12.345s`.
    pub fn stamp(&self) -> String {
        format!("{:.3}s", self.0.elapsed().as_secs_f64())
    }
}

pub struct NemesisLog {
    file: File,
    clock: Clock,
    /// Also print each line on stderr (`--verbose`).
    echo: bool,
}

impl NemesisLog {
    pub fn create(path: &Path, clock: Clock, echo: bool) -> Result<NemesisLog> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut log = NemesisLog { file, clock, echo };
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        log.raw(format_args!(
            "# run started at unix time {:.3}; stamps are seconds since then",
            unix.as_secs_f64()
        ));
        Ok(log)
    }

    /// A stamped line.
    pub fn line(&mut self, msg: impl Display) {
        let stamp = self.clock.stamp();
        self.raw(format_args!("{stamp:>9}  {msg}"));
    }

    /// An unstamped line (headers, the plan).
    pub fn raw(&mut self, msg: impl Display) {
        // The log is diagnostics: a full disk must not abort the run it describes.
        let _ = writeln!(self.file, "{msg}");
        if self.echo {
            eprintln!("{msg}");
        }
    }
}
