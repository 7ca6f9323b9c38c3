//! Short-lived `atomikctl` invocations, all against the run's private bank directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::procs::{run_bounded, Outcome};

/// Bound on one ACCUM or READ: they take milliseconds, so reaching it means something hung
/// (the ACCUM then counts as indeterminate: it may or may not have been applied).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on `sync recover`, which may fsync a directory.
pub const RECOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared secret of the TCP replicas (NATS replicas get none).
pub const SECRET: &str = "atomik-chaos shared secret";

/// How to run `atomikctl` for one run.
#[derive(Clone, Debug)]
pub struct Ctl {
    pub bin: PathBuf,
    /// `ATOMIK_SHM_DIR`: where the banks are files.
    pub shm: PathBuf,
}

impl Ctl {
    /// `atomikctl` with the run's bank directory and the userspace backend (a machine with
    /// `/dev/atomik` would otherwise put the banks in the kernel, out of the run's reach).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("ATOMIK_SHM_DIR", &self.shm).env("ATOMIK_BACKEND", "soft").env("ATOMIK_SYNC_SECRET", SECRET);
        c
    }

    /// `atomikctl accum BANK SLOT DELTA`.
    pub fn accum(&self, bank: &str, slot: u32, delta: u64) -> Result<Outcome> {
        let mut c = self.command();
        c.args(["accum", bank, &slot.to_string(), &delta.to_string()]);
        run_bounded(&mut c, None, CMD_TIMEOUT)
    }

    /// `atomikctl accum BANK -` with `SLOT DELTA` lines on stdin (one batch).
    pub fn accum_batch(&self, bank: &str, ops: &[(u32, u64)]) -> Result<Outcome> {
        let input: String = ops.iter().map(|(s, d)| format!("{s} {d}\n")).collect();
        let mut c = self.command();
        c.args(["accum", bank, "-"]);
        run_bounded(&mut c, Some(input.as_bytes()), CMD_TIMEOUT)
    }

    /// `atomikctl read BANK --all --json`: the bank's state, `None` if it cannot be read
    /// (typically: it does not exist right now).
    pub fn read_all(&self, bank: &str) -> Result<Option<Vec<u64>>> {
        let mut c = self.command();
        c.args(["read", bank, "--all", "--json"]);
        match run_bounded(&mut c, None, CMD_TIMEOUT)? {
            Outcome::Exited { status, stdout, .. } if status.success() => {
                #[derive(serde::Deserialize)]
                struct Read {
                    values: Vec<u64>,
                }
                let r: Read = serde_json::from_slice(&stdout).context("parsing atomikctl read --json")?;
                Ok(Some(r.values))
            }
            Outcome::Exited { .. } => Ok(None),
            Outcome::TimedOut => bail!("atomikctl read {bank} did not finish within {CMD_TIMEOUT:?}"),
        }
    }

    /// `atomikctl sync recover --bank BANK --data DATA`.
    pub fn recover(&self, bank: &str, data: &Path) -> Result<Outcome> {
        let mut c = self.command();
        c.args(["sync", "recover", "--bank", bank, "--data"]).arg(data);
        run_bounded(&mut c, None, RECOVER_TIMEOUT)
    }
}
