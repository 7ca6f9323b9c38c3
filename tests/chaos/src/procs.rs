//! Child processes that cannot outlive the harness, and commands with a time bound.
//!
//! Every child is spawned in its own process group (a Ctrl-C at the terminal reaches only the
//! harness, which then stops the run in order) with `PR_SET_PDEATHSIG = SIGKILL` (if the
//! harness dies anyway — a second Ctrl-C, a `kill -9`, an abort — the kernel kills its
//! children, stopped ones included). The parent-death signal fires when the *thread* that
//! spawned the child exits, so long-lived children (daemons, nats-server) are spawned only by
//! the run's main thread, and producer threads only spawn commands they wait for.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use wait_timeout::ChildExt;

/// Makes `cmd` die with the harness and keeps it out of the terminal's process group.
pub fn guard(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id();
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes two system calls
    // (prctl, getppid), both async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent may have died before the prctl took effect.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        })
    }
}

/// A long-lived child, SIGKILLed and reaped when dropped (also while unwinding a panic).
#[derive(Debug)]
pub struct Proc {
    child: Child,
    reaped: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Result<Proc> {
        let child = guard(cmd).spawn().with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        Ok(Proc { child, reaped: None })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig`; a child that has already exited is not an error (nothing to signal).
    pub fn signal(&mut self, sig: Signal) {
        if self.reaped.is_none() {
            // The pid stays ours until we reap it, so this cannot hit another process.
            let _ = kill(Pid::from_raw(self.child.id() as i32), sig);
        }
    }

    /// The exit status once the child has exited, without blocking.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }

    /// Waits at most `d` for the child to exit.
    pub fn wait_for(&mut self, d: Duration) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.wait_timeout(d).ok().flatten();
        }
        self.reaped
    }

    /// SIGKILL (SIGCONT first is not needed: SIGKILL ends stopped processes too) and reap.
    pub fn kill_and_reap(&mut self) -> Option<ExitStatus> {
        self.signal(Signal::SIGKILL);
        self.wait_for(Duration::from_secs(10))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// How a bounded command ended.
#[derive(Debug)]
pub enum Outcome {
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// Still running at the bound: killed, so whether it had an effect is unknown.
    TimedOut,
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited { status, .. } if status.success())
    }
}

/// Runs `cmd` to completion within `timeout`, feeding it `stdin`, capturing small outputs.
/// The outputs are read after the exit, so they must fit in the pipe buffers (64 KiB): true
/// of everything the harness runs (an ACCUM, a 64-slot READ, `sync recover`).
pub fn run_bounded(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Outcome> {
    use std::io::Read;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut p = Proc::spawn(cmd)?;
    if let (Some(data), Some(mut w)) = (stdin, p.child.stdin.take()) {
        // A child that exits without reading gives EPIPE; its exit status says what happened.
        let _ = w.write_all(data);
    }
    let Some(status) = p.wait_for(timeout) else {
        p.kill_and_reap();
        return Ok(Outcome::TimedOut);
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut o) = p.child.stdout.take() {
        o.read_to_end(&mut stdout).context("reading stdout")?;
    }
    if let Some(mut e) = p.child.stderr.take() {
        e.read_to_end(&mut stderr).context("reading stderr")?;
    }
    Ok(Outcome::Exited { status, stdout, stderr })
}
