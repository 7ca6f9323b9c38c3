//! Helpers shared by the `atomikctl sync` integration tests: a private shared-memory
//! directory for banks, and polling until banks converge.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use atomik::{Bank, CreateOptions, Op};

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
