//! The replicas under test: four `atomikctl sync` daemons (and, on NATS, the server) in one
//! run directory, started, signalled and reaped by the run's main thread.
//!
//! Run directory layout (kept on failure):
//!
//! ```text
//! shm/         ATOMIK_SHM_DIR: the bank files c0..c3
//! data/cN/     each daemon's --data (status.json, log, snapshots)
//! logs/cN.log  each daemon's stdout+stderr, every spawn headed by a stamped line
//! logs/nats.log, nats-store/   nats-server's output and JetStream store
//! nemesis.log  the plan and every step taken, stamped
//! ledger.json, report.json     written at the end of the run
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use crate::ctl::Ctl;
use crate::faults::Transport;
use crate::log::Clock;
use crate::model::Op;
use crate::nats::{free_port, NatsServer};
use crate::procs::Proc;

/// Slots per bank: small, so that concurrent ACCUMs collide on slots all the time.
pub const SLOTS: u64 = 64;
/// `--tick-ms` of every daemon.
pub const TICK_MS: u64 = 50;
/// The NATS group (stream) all replicas meet in.
const GROUP: &str = "chaos";

pub struct Replica {
    pub name: String,
    pub data: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
    pub paused: bool,
    /// The nemesis signalled it to stop, so its exit is no crash.
    expect_exit: bool,
    spawns: u32,
}

/// A daemon's exit noticed by [`Cluster::reap`].
pub struct Exit {
    pub replica: usize,
    pub status: ExitStatus,
    /// False when nobody asked it to stop: it crashed or refused to start.
    pub expected: bool,
}

/// The result of waiting for a daemon to exit.
pub enum Waited {
    NotRunning,
    Exited(ExitStatus),
    StillRunning,
}

pub struct Cluster {
    pub ctl: Ctl,
    pub transport: Transport,
    pub op: Op,
    pub clock: Clock,
    /// The TCP hub's listen address (c0).
    hub: String,
    pub nats: Option<NatsServer>,
    pub replicas: Vec<Replica>,
}

impl Cluster {
    /// Lays out the run directory; starts nothing.
    pub fn new(
        root: &Path,
        bin: PathBuf,
        transport: Transport,
        op: Op,
        replicas: usize,
        nats_bin: Option<PathBuf>,
        clock: Clock,
    ) -> Result<Cluster> {
        let shm = root.join("shm");
        for d in [&shm, &root.join("logs"), &root.join("data")] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let nats = match (transport, nats_bin) {
            (Transport::Nats, Some(bin)) => {
                Some(NatsServer::new(bin, root.join("nats-store"), root.join("logs/nats.log"))?)
            }
            (Transport::Nats, None) => bail!("the NATS transport needs nats-server"),
            (Transport::Tcp, _) => None,
        };
        let replicas = (0..replicas)
            .map(|r| Replica {
                name: format!("c{r}"),
                data: root.join("data").join(format!("c{r}")),
                log: root.join("logs").join(format!("c{r}.log")),
                proc: None,
                paused: false,
                expect_exit: false,
                spawns: 0,
            })
            .collect();
        Ok(Cluster {
            ctl: Ctl { bin, shm },
            transport,
            op,
            clock,
            hub: format!("127.0.0.1:{}", free_port()?),
            nats,
            replicas,
        })
    }

    pub fn name(&self, r: usize) -> &str {
        &self.replicas[r].name
    }

    /// The daemon's command line, the way README's Replication section starts them.
    fn daemon_cmd(&self, r: usize) -> Command {
        let rep = &self.replicas[r];
        let mut c = self.ctl.command();
        c.arg("sync");
        match (self.transport, r) {
            (Transport::Tcp, 0) => c.args(["serve", "--listen", &self.hub]),
            (Transport::Tcp, _) => c.args(["join", "--peer", &self.hub]),
            (Transport::Nats, _) => {
                // NATS frames are signed with the same shared secret as TCP's handshake.
                let url = self.nats.as_ref().map(|n| n.url()).unwrap_or_default();
                c.args(["join", "--nats", &url, "--group", GROUP])
            }
        };
        c.args(["--bank", &rep.name, "--slots", &SLOTS.to_string(), "--op", self.op.name()]);
        c.arg("--data").arg(&rep.data).args(["--tick-ms", &TICK_MS.to_string()]);
        c
    }

    /// How to run `atomikctl sync leave` for replica `r` (its daemon down): adopted by c0,
    /// through the hub over TCP, named by its origin (read from its status when the leave
    /// runs) over NATS.
    pub fn leave_plan(&self, r: usize) -> crate::ctl::LeavePlan {
        let how = match self.transport {
            Transport::Tcp => crate::ctl::LeaveVia::Peer(self.hub.clone()),
            Transport::Nats => crate::ctl::LeaveVia::Nats {
                url: self.nats.as_ref().map(|n| n.url()).unwrap_or_default(),
                group: GROUP.into(),
                adopter_status: self.replicas[0].data.join("status.json"),
            },
        };
        let rep = &self.replicas[r];
        crate::ctl::LeavePlan { ctl: self.ctl.clone(), bank: rep.name.clone(), data: rep.data.clone(), how }
    }

    /// Spawns replica `r`'s daemon (it must be down); returns its pid.
    pub fn start(&mut self, r: usize) -> Result<u32> {
        if self.running(r) {
            bail!("{} is already running", self.name(r));
        }
        let mut cmd = self.daemon_cmd(r);
        let rep = &mut self.replicas[r];
        rep.spawns += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&rep.log)?;
        writeln!(log, "--- {} spawn #{}: {:?}", self.clock.stamp(), rep.spawns, cmd)?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let p = Proc::spawn(&mut cmd)?;
        let pid = p.pid();
        rep.proc = Some(p);
        rep.paused = false;
        rep.expect_exit = false;
        Ok(pid)
    }

    /// Whether the daemon was started and has not been seen exiting.
    pub fn running(&self, r: usize) -> bool {
        self.replicas[r].proc.is_some()
    }

    /// Sends `sig` to a running daemon and returns its pid (`None`: not running, nothing sent).
    pub fn signal(&mut self, r: usize, sig: Signal) -> Option<u32> {
        let rep = &mut self.replicas[r];
        let p = rep.proc.as_mut()?;
        p.signal(sig);
        match sig {
            Signal::SIGSTOP => rep.paused = true,
            Signal::SIGCONT => rep.paused = false,
            _ => rep.expect_exit = true,
        }
        Some(p.pid())
    }

    /// SIGKILL and reap: when this returns the daemon is gone.
    pub fn kill(&mut self, r: usize) -> Option<u32> {
        let rep = &mut self.replicas[r];
        let mut p = rep.proc.take()?;
        rep.paused = false;
        p.kill_and_reap();
        Some(p.pid())
    }

    /// Waits at most `bound` for the daemon to exit.
    pub fn wait_exit(&mut self, r: usize, bound: Duration) -> Waited {
        let rep = &mut self.replicas[r];
        let Some(p) = rep.proc.as_mut() else { return Waited::NotRunning };
        match p.wait_for(bound) {
            Some(st) => {
                rep.proc = None;
                Waited::Exited(st)
            }
            None => Waited::StillRunning,
        }
    }

    /// Daemons that exited since the last look (they are down from now on).
    pub fn reap(&mut self) -> Vec<Exit> {
        let mut out = Vec::new();
        for (r, rep) in self.replicas.iter_mut().enumerate() {
            if let Some(status) = rep.proc.as_mut().and_then(|p| p.try_exit()) {
                rep.proc = None;
                out.push(Exit { replica: r, status, expected: rep.expect_exit });
            }
        }
        out
    }

    /// The bank file of replica `r` in the run's shared-memory directory.
    pub fn bank_file(&self, r: usize) -> PathBuf {
        self.ctl.shm.join(self.name(r))
    }

    /// The inode of `status.json`: the daemon replaces the file (write + rename) at the end
    /// of every tick, so a new inode means a tick finished.
    pub fn status_inode(&self, r: usize) -> Option<u64> {
        std::fs::metadata(self.replicas[r].data.join("status.json")).ok().map(|m| m.ino())
    }

    /// Appends harness text (e.g. `sync recover`'s output) to replica `r`'s log.
    pub fn note(&self, r: usize, text: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.replicas[r].log) {
            let _ = writeln!(f, "--- {} {}", self.clock.stamp(), text.trim_end());
        }
    }
}
