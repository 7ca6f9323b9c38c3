//! Sync daemons as real processes, and a ledger of acknowledged ACCUMs to compare banks with.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atomik::Op;

use super::{bank, shm};

pub const SECRET: &str = "correct horse battery staple";

/// A daemon process, killed when dropped.
pub struct Node {
    pub child: Child,
    pub args: Vec<String>,
    pub data: PathBuf,
}

impl Node {
    pub fn start(args: &[&str], data: &Path, env: &[(&str, &str)]) -> Node {
        let mut c = Command::new(env!("CARGO_BIN_EXE_atomikctl"));
        c.env("ATOMIK_SHM_DIR", shm()).env("ATOMIK_SYNC_SECRET", SECRET);
        c.arg("sync").args(args).arg("--data").arg(data).arg("--tick-ms").arg("20");
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        Node {
            child: c.spawn().expect("start atomikctl sync"),
            args: args.iter().map(|s| s.to_string()).collect(),
            data: data.to_path_buf(),
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, sig) }, 0);
    }

    /// SIGTERM, and waits for the clean exit.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let st = self.child.wait().unwrap();
        assert!(st.success(), "clean stop failed: {st:?}");
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let _ = std::fs::remove_file(self.data.join("status.json"));
        *self = Node::start(&args, &self.data.clone(), &[]);
    }

    /// Waits until the daemon finished starting (its first status.json).
    pub fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.data.join("status.json").exists() {
            assert!(self.child.try_wait().unwrap().is_none(), "the daemon exited while starting");
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Xor => "xor",
    }
}

pub fn serve(b: &str, op: Op, addr: &str, data: &Path) -> Node {
    Node::start(&["serve", "--bank", b, "--slots", "64", "--op", op_name(op), "--listen", addr], data, &[])
}

pub fn join(b: &str, op: Op, addr: &str, data: &Path) -> Node {
    Node::start(&["join", "--bank", b, "--slots", "64", "--op", op_name(op), "--peer", addr], data, &[])
}

/// Acknowledged ACCUMs, folded per slot.
pub struct Ledger {
    pub op: Op,
    pub want: Vec<u64>,
    pub rng: u64,
}

impl Ledger {
    pub fn new(op: Op, slots: usize) -> Ledger {
        Ledger { op, want: vec![op.identity(); slots], rng: 0x2545_f491_4f6c_dd1d }
    }

    pub fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// `n` ACCUMs into bank `b`, each recorded once it returned Ok.
    pub fn produce(&mut self, b: &str, n: usize) {
        let bank = bank(b);
        for _ in 0..n {
            let slot = (self.next() % self.want.len() as u64) as usize;
            let d = if self.op == Op::Add { self.next() % 100 + 1 } else { self.next() };
            bank.accum(slot as u64, d).unwrap();
            self.want[slot] = self.op.combine(self.want[slot], d);
        }
    }

    /// Every bank in `names` equals the ledger (bounded wait for convergence).
    pub fn wait(&self, names: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got: Vec<Vec<u64>> = names.iter().map(|n| bank(n).read_all()).collect();
            if got.iter().all(|g| *g == self.want) {
                return;
            }
            if Instant::now() > deadline {
                for (n, g) in names.iter().zip(&got) {
                    let diff: Vec<_> = (0..g.len()).filter(|&i| g[i] != self.want[i]).collect();
                    eprintln!("{n}: {} slots differ from the ledger: {diff:?}", diff.len());
                }
                panic!("banks {names:?} did not reach the ledger");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
