//! A real `nats-server -js` for the NATS tests, and `atomikctl sync join --nats` replicas.
#![allow(dead_code)] // each test file uses its own part

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::sync_support::shm;

/// The group's shared secret: every frame on the stream is signed with it.
pub const SECRET: &str = "correct horse battery staple";

/// The nats-server binary, `None` when the tests are to be skipped (ATOMIK_SKIP_NATS=1).
pub fn nats_server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ATOMIK_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(p) = dirs.iter().map(|d| d.join("nats-server")).find(|p| p.is_file()) {
        return Some(p);
    }
    if std::env::var("ATOMIK_SKIP_NATS").as_deref() == Ok("1") {
        eprintln!("nats-server not found: skipped (ATOMIK_SKIP_NATS=1)");
        return None;
    }
    panic!("nats-server not found (apt install nats-server, or ATOMIK_NATS_SERVER=PATH; ATOMIK_SKIP_NATS=1 skips)");
}

/// A `nats-server -js` on a free loopback port with its own store directory.
pub struct NatsServer {
    bin: PathBuf,
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
    /// Extra arguments (e.g. authentication).
    pub args: Vec<String>,
}

impl NatsServer {
    pub fn new(tmp: &tempfile::TempDir) -> Option<NatsServer> {
        let bin = nats_server_bin()?;
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert_ne!(port, 4222);
        Some(NatsServer { bin, port, store: tmp.path().join("jetstream"), child: None, args: Vec::new() })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(&self.bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server gets no chance to flush anything beyond what it already wrote.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Node {
    pub child: Child,
}

impl Node {
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `atomikctl sync join --nats URL --group GROUP` for bank `bank`.
pub fn join(bank: &str, group: &str, op: &str, url: &str, data: &Path) -> Node {
    join_with(bank, group, op, url, data, &[])
}

pub fn join_with(bank: &str, group: &str, op: &str, url: &str, data: &Path, extra: &[&str]) -> Node {
    join_cmd(bank, group, op, url, data, extra, None)
}

/// Like [`join_with`], the daemon's stderr going to `log` when given.
pub fn join_cmd(
    bank: &str,
    group: &str,
    op: &str,
    url: &str,
    data: &Path,
    extra: &[&str],
    log: Option<&Path>,
) -> Node {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atomikctl"));
    c.env("ATOMIK_SHM_DIR", shm()).env("ATOMIK_SYNC_SECRET", SECRET).stdout(Stdio::null());
    c.stderr(match log {
        Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
        None if std::env::var_os("ATOMIK_TEST_VERBOSE").is_some() => Stdio::inherit(),
        None => Stdio::null(),
    });
    c.args(["sync", "join", "--bank", bank, "--slots", "64", "--op", op, "--nats", url, "--group", group]);
    c.arg("--data").arg(data).args(["--tick-ms", "20"]).args(extra);
    Node { child: c.spawn().expect("start atomikctl sync join --nats") }
}

pub use super::sync_support::wait_status;
