//! `atomikctl sync leave --nats` against a real `nats-server -js`: the leaving replica asks
//! its adopter through the stream; every replica drops its origin and every bank still equals
//! the ledger of acknowledged ACCUMs — also when the adopter is killed while adopting and
//! restarted. (Needs `nats-server`, see `sync_nats.rs`.)
#![cfg(feature = "nats")]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use atomik::Op;

mod sync_support;
use sync_support::node::{Ledger, SECRET};
use sync_support::{origin_of, origins_held, shm};
#[path = "sync_support/nats.rs"]
mod nats_support;
use nats_support::{join, wait_status, NatsServer, Node};

fn leave(bank: &str, data: &Path, url: &str, group: &str, adopter: u64) -> Output {
    leave_within(bank, data, url, group, adopter, 60)
}

fn leave_within(bank: &str, data: &Path, url: &str, group: &str, adopter: u64, secs: u32) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atomikctl"))
        .env("ATOMIK_SHM_DIR", shm())
        .env("ATOMIK_SYNC_SECRET", SECRET)
        .args(["sync", "leave", "--bank", bank, "--nats", url, "--group", group, "--json"])
        .args(["--adopter", &format!("{adopter:016x}"), "--timeout-s", &secs.to_string(), "--data"])
        .arg(data)
        .output()
        .expect("run atomikctl sync leave")
}

fn wait_dropped(data: &Path, gone: u64) {
    wait_status(data, "drop the replica that left", |v| {
        v["retired"].as_u64().unwrap_or(0) >= 1 && !origins_held(v).contains(&gone)
    });
}

#[test]
fn a_replica_leaves_through_the_stream_and_is_dropped_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let (a, l, c) = ("nla", "nll", "nlc");
    let dir = |n: &str| tmp.path().join(n);
    let _na = join(a, "nl", "add", &url, &dir(a));
    let nl = join(l, "nl", "add", &url, &dir(l));
    let _nc = join(c, "nl", "add", &url, &dir(c));
    let mut ledger = Ledger::new(Op::Add, 64);
    for b in [a, l, c] {
        ledger.produce(b, 100);
    }
    ledger.wait(&[a, l, c]);
    let (a_id, l_id) = (origin_of(&dir(a)), origin_of(&dir(l)));
    nl.stop();
    ledger.produce(l, 30); // taken by the leave itself
    let out = leave(l, &dir(l), &url, "nl", a_id);
    assert!(out.status.success(), "leave failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["adopter"].as_str().unwrap(), format!("{a_id:016x}"));
    ledger.produce(a, 20);
    ledger.produce(c, 20);
    ledger.wait(&[a, c]);
    wait_dropped(&dir(a), l_id);
    wait_dropped(&dir(c), l_id);
    // Naming another adopter now is refused: the leave is done.
    let again: serde_json::Value =
        serde_json::from_slice(&leave(l, &dir(l), &url, "nl", a_id).stdout).unwrap();
    assert_eq!(again["already"], true);
}

#[test]
fn an_adopter_killed_while_adopting_adopts_after_its_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let (a, l, c) = ("nka", "nkl", "nkc");
    let dir = |n: &str| tmp.path().join(n);
    // The adopter SIGKILLs itself after recording the adoption, before logging its delta.
    let start_a = |crash: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_atomikctl"));
        c.env("ATOMIK_SHM_DIR", shm()).env("ATOMIK_SYNC_SECRET", SECRET);
        if let Some(point) = crash {
            c.env("ATOMIK_SYNC_CRASH_AT", point);
        }
        c.args([
            "sync", "join", "--bank", a, "--slots", "64", "--op", "add", "--nats", &url, "--group", "nk",
        ]);
        c.arg("--data").arg(dir(a)).args(["--tick-ms", "20"]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        Node { child: c.spawn().unwrap() }
    };
    let mut na = start_a(Some("adopt-recorded"));
    let nl = join(l, "nk", "add", &url, &dir(l));
    let _nc = join(c, "nk", "add", &url, &dir(c));
    let mut ledger = Ledger::new(Op::Add, 64);
    for b in [a, l, c] {
        ledger.produce(b, 100);
    }
    ledger.wait(&[a, l, c]);
    let (a_id, l_id) = (origin_of(&dir(a)), origin_of(&dir(l)));
    nl.stop();
    let leaving = {
        let (l, dl, url) = (l.to_string(), dir(l), url.clone());
        std::thread::spawn(move || leave(&l, &dl, &url, "nk", a_id))
    };
    let st = na.child.wait().unwrap();
    assert!(!st.success(), "the adopter was to die at adopt-recorded");
    let _na = start_a(None); // restarted: replays the request from its cursor and adopts
    let out = leaving.join().unwrap();
    assert!(out.status.success(), "leave failed: {}", String::from_utf8_lossy(&out.stderr));
    ledger.produce(a, 20);
    ledger.produce(c, 20);
    ledger.wait(&[a, c]);
    wait_dropped(&dir(a), l_id);
    wait_dropped(&dir(c), l_id);
}

/// A leave that gave up while its adopter was down finishes once the adopter is back: the
/// request waited on the stream, the adopter adopted from it, and a second attempt finds the
/// adopting delta.
#[test]
fn a_leave_that_timed_out_finishes_after_the_adopter_adopted_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let (a, l) = ("nta", "ntl");
    let dir = |n: &str| tmp.path().join(n);
    let na = join(a, "nt", "add", &url, &dir(a));
    let nl = join(l, "nt", "add", &url, &dir(l));
    let mut ledger = Ledger::new(Op::Add, 64);
    for b in [a, l] {
        ledger.produce(b, 100);
    }
    ledger.wait(&[a, l]);
    let (a_id, l_id) = (origin_of(&dir(a)), origin_of(&dir(l)));
    na.stop();
    nl.stop();
    let out = leave_within(l, &dir(l), &url, "nt", a_id, 2);
    assert!(!out.status.success(), "the adopter is down, yet the leave succeeded");
    let _na = join(a, "nt", "add", &url, &dir(a));
    wait_dropped(&dir(a), l_id);
    let out = leave(l, &dir(l), &url, "nt", a_id);
    assert!(out.status.success(), "leave failed: {}", String::from_utf8_lossy(&out.stderr));
    ledger.produce(a, 10);
    ledger.wait(&[a]);
}
