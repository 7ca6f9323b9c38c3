//! Helpers shared by the `atomikctl sync` integration tests: a private shared-memory
//! directory for banks, and polling until banks converge.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use atomik::{Bank, CreateOptions, Op};

pub mod node;

/// A loopback address with a port free right now, for a daemon to listen on.
pub fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// This test process's bank directory (ATOMIK_SHM_DIR), also given to the daemons it starts.
pub fn shm() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        // Set once, before any bank is opened by this process.
        std::env::set_var("ATOMIK_SHM_DIR", d.path());
        d
    })
    .path()
}

/// Opens bank `name`, waiting for a daemon to create it.
pub fn bank(name: &str) -> Bank {
    shm();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Bank::open(name) {
            Ok(b) => return b,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("bank {name}: {e}"),
        }
    }
}

/// Creates a 64-slot bank.
pub fn create(name: &str, op: Op) -> Bank {
    shm();
    Bank::create(name, CreateOptions::new(64).op(op)).unwrap()
}

/// Creates ADD banks `names` and accumulates into them as clients that never ran would:
/// concurrent increments on shared slots, added to `want`.
pub fn create_offline(names: &[&str], want: &mut [u64]) {
    for (k, n) in names.iter().enumerate() {
        let b = create(n, Op::Add);
        for t in 0..500u64 {
            let slot = (t * (k as u64 + 3)) % 64;
            b.accum(slot, 1 + (t + k as u64) % 3).unwrap();
            want[slot as usize] += 1 + (t + k as u64) % 3;
        }
    }
}

/// Polls until every bank reads `want`; panics with the last values after a generous bound
/// (the bound only turns a hang into a failure; nothing here measures speed).
pub fn wait_all(names: &[&str], want: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got: Vec<Vec<u64>> = names.iter().map(|n| bank(n).read_all()).collect();
        if got.iter().all(|g| g == want) {
            return;
        }
        if Instant::now() > deadline {
            panic!("banks {names:?} did not converge to {want:?}: {got:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls a replica's status.json until `pred` holds for it (the file is rewritten every
/// tick, so it may lag the bank a little).
pub fn wait_status(data: &Path, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = std::fs::read_to_string(data.join("status.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
            if pred(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "{}: never {what}: {s}", data.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A replica's own origin id, from its status.json.
pub fn origin_of(data: &Path) -> u64 {
    let v = wait_status(data, "written", |v| v["origin"].is_string());
    u64::from_str_radix(v["origin"].as_str().unwrap(), 16).unwrap()
}

/// The origins a status.json says the replica holds (with a version above 0).
pub fn origins_held(v: &serde_json::Value) -> Vec<u64> {
    let list = v["origins"].as_array().unwrap();
    list.iter().map(|o| u64::from_str_radix(o["origin"].as_str().unwrap(), 16).unwrap()).collect()
}
