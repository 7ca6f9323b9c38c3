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

/// One `atomikctl sync leave`, run (and retried) on a thread of its own.
pub struct LeavePlan {
    pub ctl: Ctl,
    pub bank: String,
    pub data: PathBuf,
    pub how: LeaveVia,
}

/// Where a leave asks its adopter.
pub enum LeaveVia {
    /// `--peer ADDR`.
    Peer(String),
    /// `--nats URL --group G --adopter ORIGIN`, the origin read from the adopter's status
    /// (it changes when the adopter's directory is lost and recovered).
    Nats { url: String, group: String, adopter_status: PathBuf },
}

impl LeaveVia {
    fn args(&self) -> Result<Vec<String>, String> {
        match self {
            LeaveVia::Peer(addr) => Ok(vec!["--peer".into(), addr.clone()]),
            LeaveVia::Nats { url, group, adopter_status } => {
                let origin = std::fs::read_to_string(adopter_status)
                    .ok()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| v["origin"].as_str().map(str::to_owned))
                    .ok_or_else(|| format!("{}: no origin yet", adopter_status.display()))?;
                Ok(vec![
                    "--nats".into(),
                    url.clone(),
                    "--group".into(),
                    group.clone(),
                    "--adopter".into(),
                    origin,
                ])
            }
        }
    }

    /// For the nemesis log.
    pub fn describe(&self) -> String {
        match self {
            LeaveVia::Peer(addr) => format!("--peer {addr}"),
            LeaveVia::Nats { url, .. } => format!("--nats {url} --adopter c0"),
        }
    }
}

impl LeavePlan {
    /// Runs the leave until it exits 0 or `bound` passes: (left, tries, ms, last line, output).
    pub fn run(self, bound: Duration) -> (bool, u32, u64, String, String) {
        let t = std::time::Instant::now();
        let mut tries = 0;
        let mut output = String::new();
        loop {
            tries += 1;
            let (ok, last) = match self.how.args() {
                Err(why) => (false, why),
                Ok(how) => {
                    let mut c = self.ctl.command();
                    c.args(["sync", "leave", "--bank", &self.bank, "--timeout-s", "10", "--data"]);
                    c.arg(&self.data).args(how);
                    match run_bounded(&mut c, None, RECOVER_TIMEOUT) {
                        Ok(Outcome::Exited { status, stdout, stderr }) => {
                            let out = format!(
                                "{}{}",
                                String::from_utf8_lossy(&stdout),
                                String::from_utf8_lossy(&stderr)
                            );
                            output.push_str(&format!("try {tries} ({status}):\n{out}"));
                            (status.success(), out.lines().next().unwrap_or("").to_owned())
                        }
                        Ok(Outcome::TimedOut) => (false, "timed out".to_owned()),
                        Err(e) => (false, format!("{e:#}")),
                    }
                }
            };
            let ms = t.elapsed().as_millis() as u64;
            if ok || t.elapsed() >= bound {
                return (ok, tries, ms, last, output);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
