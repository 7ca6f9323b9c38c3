//! `atomikctl sync` over loopback TCP: convergence of several processes, refusal of a peer
//! without the secret, `kill -9` of a replica mid-stream, and offline-first clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atomik::Op;

mod sync_support;
use sync_support::{
    bank, create, create_offline, free_port, origin_of, origins_held, shm, wait_all, wait_status,
};

const SECRET: &str = "correct horse battery staple";

struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn atomikctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atomikctl"));
    c.env("ATOMIK_SHM_DIR", shm()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn spawn(args: &[&str], data: &Path, secret: &str) -> Node {
    spawn_logged(args, data, secret, None)
}

/// Like [`spawn`], the daemon's stderr going to `log` when given.
fn spawn_logged(args: &[&str], data: &Path, secret: &str, log: Option<&Path>) -> Node {
    let mut c = atomikctl();
    if let Some(p) = log {
        c.stderr(std::fs::File::create(p).unwrap());
    }
    c.arg("sync").args(args).arg("--data").arg(data).arg("--tick-ms").arg("20");
    c.env("ATOMIK_SYNC_SECRET", secret);
    Node { child: c.spawn().expect("start atomikctl sync") }
}

fn serve(bank: &str, addr: &str, data: &Path) -> Node {
    spawn(&["serve", "--bank", bank, "--slots", "64", "--op", "add", "--listen", addr], data, SECRET)
}

fn join(bank: &str, peer: &str, data: &Path, secret: &str) -> Node {
    spawn(&["join", "--bank", bank, "--slots", "64", "--op", "add", "--peer", peer], data, secret)
}

fn dir(tmp: &tempfile::TempDir, name: &str) -> PathBuf {
    tmp.path().join(name)
}

#[test]
fn three_processes_converge_and_a_peer_without_the_secret_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _s = serve("t1s", &addr, &dir(&tmp, "s"));
    let _a = join("t1a", &addr, &dir(&tmp, "a"), SECRET);
    let _b = join("t1b", &addr, &dir(&tmp, "b"), SECRET);
    let intruder = create("t1x", Op::Add);
    intruder.accum(0, 1_000_000).unwrap();
    let _x = join("t1x", &addr, &dir(&tmp, "x"), "not the secret at all");
    let mut want = vec![0u64; 64];
    for i in 0..200u64 {
        let (b, slot) = (if i % 2 == 0 { "t1a" } else { "t1b" }, (i * 7 % 64) as usize);
        bank(b).accum(slot as u64, i + 1).unwrap();
        want[slot] += i + 1;
    }
    wait_all(&["t1s", "t1a", "t1b"], &want);
    // The intruder was refused: its increment reached nobody, and the server counted it
    // (it may knock after the others converged: wait for the count).
    wait_status(&dir(&tmp, "s"), "recorded a refused peer", |v| v["refused"].as_u64() >= Some(1));
    assert_eq!(bank("t1s").read(0).unwrap(), want[0]);
    assert_eq!(bank("t1x").read_all()[1..], vec![0u64; 63][..], "intruder received data");
}

#[test]
fn kill_9_of_the_server_mid_stream_loses_no_acknowledged_delta() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut s = serve("t2s", &addr, &dir(&tmp, "s"));
    let _a = join("t2a", &addr, &dir(&tmp, "a"), SECRET);
    let _b = join("t2b", &addr, &dir(&tmp, "b"), SECRET);
    let mut want = vec![0u64; 64];
    for round in 0..4u64 {
        for i in 0..100u64 {
            let (b, slot) = (if i % 2 == 0 { "t2a" } else { "t2b" }, ((i + round) % 64) as usize);
            bank(b).accum(slot as u64, 1 + i % 5).unwrap();
            want[slot] += 1 + i % 5;
            if i == 50 {
                // Mid-stream: SIGKILL the server, then restart it from its directory.
                s.child.kill().unwrap();
                s.child.wait().unwrap();
                s = serve("t2s", &addr, &dir(&tmp, "s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_all(&["t2s", "t2a", "t2b"], &want);
}

#[test]
fn kill_9_of_a_client_keeps_what_the_server_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _s = serve("t3s", &addr, &dir(&tmp, "s"));
    let mut a = join("t3a", &addr, &dir(&tmp, "a"), SECRET);
    let mut want = vec![0u64; 64];
    for i in 0..64u64 {
        bank("t3a").accum(i, i + 1).unwrap();
        want[i as usize] += i + 1;
    }
    wait_all(&["t3s", "t3a"], &want); // acknowledged: the server holds it
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    // The client's bank survives in shared memory but its replica restarts from disk.
    a = join("t3a", &addr, &dir(&tmp, "a"), SECRET);
    wait_all(&["t3s", "t3a"], &want);
    bank("t3s").accum(5, 1000).unwrap();
    want[5] += 1000;
    wait_all(&["t3s", "t3a"], &want);
    drop(a);
}

#[test]
fn offline_clients_reconnect_in_random_order_and_lose_no_increment() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _s = serve("t4s", &addr, &dir(&tmp, "s"));
    let names = ["t4c0", "t4c1", "t4c2", "t4c3"];
    let mut want = vec![0u64; 64];
    // Round 1: clients that never ran accumulate offline (concurrent increments on shared slots).
    create_offline(&names, &mut want);
    // Reconnect in a pseudo-random order.
    let mut order = vec![2usize, 0, 3, 1];
    let mut clients: Vec<Option<Node>> = (0..names.len()).map(|_| None).collect();
    for &k in &order {
        clients[k] = Some(join(names[k], &addr, &dir(&tmp, names[k]), SECRET));
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut all: Vec<&str> = names.to_vec();
    all.push("t4s");
    wait_all(&all, &want);
    // Round 2: clients stop cleanly (SIGTERM), accumulate offline again, come back.
    for c in clients.iter_mut() {
        let c = c.take().unwrap();
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.child.id() as i32, libc::SIGTERM) };
        let mut c = c;
        c.child.wait().unwrap();
        std::mem::forget(c);
    }
    for (k, n) in names.iter().enumerate() {
        for t in 0..300u64 {
            let slot = (t + 11 * k as u64) % 64;
            bank(n).accum(slot, 2).unwrap();
            want[slot as usize] += 2;
        }
    }
    order.reverse();
    for &k in &order {
        clients[k] = Some(join(names[k], &addr, &dir(&tmp, names[k]), SECRET));
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_all(&all, &want);
}

#[test]
fn at_the_origin_cap_the_connection_is_kept_and_refused_origins_are_logged_once_and_not_resent() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _h = serve("t5h", &addr, &dir(&tmp, "t5h"));
    let names = ["t5h", "t5a", "t5b", "t5c"];
    let _clients: Vec<Node> = names[1..].iter().map(|n| join(n, &addr, &dir(&tmp, n), SECRET)).collect();
    let mut want = vec![0u64; 64];
    for (k, n) in names.iter().enumerate() {
        bank(n).accum(k as u64, 100 + k as u64).unwrap();
        want[k] = 100 + k as u64;
    }
    wait_all(&names, &want);
    // s holds at most 3 origins: its own and 2 of the 4 the hub relays in one message.
    let log = dir(&tmp, "t5s.log");
    let args =
        ["join", "--bank", "t5s", "--slots", "64", "--op", "add", "--peer", &addr, "--max-origins", "3"];
    let _s = spawn_logged(&args, &dir(&tmp, "t5s"), SECRET, Some(&log));
    let v = wait_status(&dir(&tmp, "t5s"), "joined two origins", |v| {
        v["origins"].as_array().is_some_and(|o| o.len() == 2) && v["refused"].as_u64() >= Some(1)
    });
    let held = origins_held(&v);
    let ids: Vec<u64> = names.iter().map(|n| origin_of(&dir(&tmp, n))).collect();
    let refused: Vec<usize> = (0..4).filter(|&k| !held.contains(&ids[k])).collect();
    assert_eq!(refused.len(), 2, "s holds {held:x?} of {ids:x?}");
    // The admitted part of the hub's message was joined.
    let mut at_s = want.clone();
    for &k in &refused {
        at_s[k] = 0;
    }
    wait_all(&["t5s"], &at_s);
    // No loop: over many anti-entropy rounds (a summary every 200 ms) nothing is refused
    // again (the hub holds the refused origins back) and the one connection stays up.
    std::thread::sleep(Duration::from_millis(500));
    let before = wait_status(&dir(&tmp, "t5s"), "read", |_| true);
    std::thread::sleep(Duration::from_secs(3));
    let after = wait_status(&dir(&tmp, "t5s"), "read", |_| true);
    assert_eq!(before["refused"], after["refused"], "refused again: {before} then {after}");
    assert_eq!(after["peers"].as_array().unwrap().len(), 1, "{after}");
    // The connection still carries the admitted origins' new deltas.
    let ok = (0..4).find(|k| !refused.contains(k)).unwrap();
    bank(names[ok]).accum(10, 7).unwrap();
    want[10] = 7;
    at_s[10] = 7;
    wait_all(&names, &want);
    wait_all(&["t5s"], &at_s);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("live origins")).collect();
    assert_eq!(lines.len(), 2, "one line per refused origin:\n{text}");
    for &k in &refused {
        assert!(text.contains(&format!("{:016x}", ids[k])), "{text}");
    }
}
