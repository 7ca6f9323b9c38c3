//! A real `nats-server -js` on a free loopback port, killed and restarted on the same port
//! and JetStream store directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::log::Clock;
use crate::procs::Proc;

/// Bound on the server starting to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

pub struct NatsServer {
    bin: PathBuf,
    pub port: u16,
    store: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

/// A port that was free a moment ago (the kernel picks it; it is not 4222, so a system
/// nats-server is never the one under test).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

impl NatsServer {
    pub fn new(bin: PathBuf, store: PathBuf, log: PathBuf) -> Result<NatsServer> {
        Ok(NatsServer { bin, port: free_port()?, store, log, proc: None })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether it was started and not yet seen exiting (see [`NatsServer::reap`]).
    pub fn running(&self) -> bool {
        self.proc.is_some()
    }

    /// Starts the server and waits (bounded) until it accepts connections.
    pub fn start(&mut self, clock: &Clock) -> Result<u32> {
        if self.reap().is_none() && self.running() {
            bail!("nats-server is already running");
        }
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        writeln!(log, "--- {} start", clock.stamp())?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"]).arg(&self.store);
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let mut p = Proc::spawn(&mut cmd)?;
        let pid = p.pid();
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(st) = p.try_exit() {
                bail!("nats-server exited at start ({st}); see {}", self.log.display());
            }
            if Instant::now() > deadline {
                bail!("nats-server did not listen on port {} within {LISTEN_TIMEOUT:?}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(p);
        Ok(pid)
    }

    /// The exit status if the server exited by itself since the last look (then it is down).
    pub fn reap(&mut self) -> Option<std::process::ExitStatus> {
        let st = self.proc.as_mut()?.try_exit()?;
        self.proc = None;
        Some(st)
    }

    /// SIGKILL and reap; the pid it had, if it was running.
    pub fn kill(&mut self) -> Option<u32> {
        let mut p = self.proc.take()?;
        let pid = p.pid();
        p.kill_and_reap();
        Some(pid)
    }
}
