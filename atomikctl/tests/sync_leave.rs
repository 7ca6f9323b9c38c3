//! `atomikctl sync leave` with real daemons over loopback TCP: the leaving replica's origin is
//! adopted by one peer and dropped by every replica, and a ledger of every acknowledged ACCUM
//! still equals every bank — also when the adopter is killed at either adoption crash point,
//! and when the bank that left is made a replica again.

use std::path::Path;
use std::process::{Command, Output};

use atomik::Op;

mod sync_support;
use sync_support::node::{join, op_name, serve, Ledger, Node, SECRET};
use sync_support::{free_port, origin_of, origins_held, shm, wait_status};

fn atomikctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atomikctl"))
        .env("ATOMIK_SHM_DIR", shm())
        .env("ATOMIK_SYNC_SECRET", SECRET)
        .args(args)
        .output()
        .expect("run atomikctl")
}

fn leave(bank: &str, data: &Path, peer: &str) -> Output {
    let d = data.to_str().unwrap();
    atomikctl(&["sync", "leave", "--bank", bank, "--data", d, "--peer", peer, "--timeout-s", "30", "--json"])
}

/// Waits until a replica's status shows `gone` retired and no longer held.
fn wait_dropped(data: &Path, gone: u64) {
    wait_status(data, "drop the replica that left", |v| {
        v["retired"].as_u64().unwrap_or(0) >= 1 && !origins_held(v).contains(&gone)
    });
}

#[test]
fn a_replica_that_leaves_is_adopted_and_dropped_everywhere() {
    for op in [Op::Add, Op::Xor] {
        let dir = tempfile::tempdir().unwrap();
        let n = |k: &str| format!("lv{k}{}", op_name(op));
        let (a, l, c) = (n("a"), n("l"), n("c"));
        let addr = free_port();
        let (da, dl, dc) = (dir.path().join("a"), dir.path().join("l"), dir.path().join("c"));
        let mut hub = serve(&a, op, &addr, &da);
        hub.wait_up();
        let mut leaver = join(&l, op, &addr, &dl);
        let _other = join(&c, op, &addr, &dc);
        let mut ledger = Ledger::new(op, 64);
        for _ in 0..3 {
            for b in [&a, &l, &c] {
                ledger.produce(b, 50);
            }
        }
        ledger.wait(&[&a, &l, &c]);
        let l_id = origin_of(&dl);
        leaver.stop();
        // Made while no daemon runs: the leave takes them as the last changes.
        ledger.produce(&l, 40);
        let out = leave(&l, &dl, &addr);
        assert!(out.status.success(), "leave failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["origin"].as_str().unwrap(), format!("{l_id:016x}"));
        assert_eq!(v["adopter"].as_str().unwrap(), format!("{:016x}", origin_of(&da)));
        assert_eq!(v["already"], false);
        // Asking again is harmless.
        let again: serde_json::Value = serde_json::from_slice(&leave(&l, &dl, &addr).stdout).unwrap();
        assert_eq!(again["already"], true);
        // The bank that left keeps working alone; its later changes are not the cluster's.
        let before = ledger.want.clone();
        let mut alone = Ledger { op, want: before.clone(), rng: 77 };
        alone.produce(&l, 30);
        for _ in 0..2 {
            ledger.produce(&a, 40);
            ledger.produce(&c, 40);
        }
        ledger.wait(&[&a, &c]);
        wait_dropped(&da, l_id);
        wait_dropped(&dc, l_id);

        // No daemon starts on the directory of a replica that left; recover makes the bank
        // a replica again, keeping what was written since (so the cluster gets it now).
        let mut restarted = join(&l, op, &addr, &dl);
        let st = restarted.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(restarted.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!st.success() && err.contains("left the cluster") && err.contains("sync recover"), "{err}");
        let fresh = dir.path().join("l2");
        let out = atomikctl(&["sync", "recover", "--bank", &l, "--data", fresh.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _rejoined = join(&l, op, &addr, &fresh);
        let mut all = ledger;
        for (k, w) in all.want.iter_mut().enumerate() {
            // What was written into l alone since the leave, on top.
            let since = op.combine(alone.want[k], op.inverse(before[k]));
            *w = op.combine(*w, since);
        }
        all.wait(&[&a, &l, &c]);
        hub.stop();
    }
}

#[test]
fn an_adopter_killed_while_adopting_loses_and_doubles_nothing() {
    for point in ["adopt-recorded", "adopt-after-log"] {
        let op = Op::Add;
        let dir = tempfile::tempdir().unwrap();
        let n = |k: &str| format!("lk{k}{}", point.len());
        let (a, l, c) = (n("a"), n("l"), n("c"));
        let addr = free_port();
        let (da, dl, dc) = (dir.path().join("a"), dir.path().join("l"), dir.path().join("c"));
        let args = ["serve", "--bank", &a, "--slots", "64", "--op", "add", "--listen", &addr];
        let mut hub = Node::start(&args, &da, &[("ATOMIK_SYNC_CRASH_AT", point)]);
        hub.wait_up();
        let mut leaver = join(&l, op, &addr, &dl);
        // The third replica also listens: a second candidate adopter.
        let addr_c = free_port();
        let args_c =
            ["serve", "--bank", &c, "--slots", "64", "--op", "add", "--listen", &addr_c, "--peer", &addr];
        let _other = Node::start(&args_c, &dc, &[]);
        let mut ledger = Ledger::new(op, 64);
        for b in [&a, &l, &c] {
            ledger.produce(b, 80);
        }
        ledger.wait(&[&a, &l, &c]);
        let l_id = origin_of(&dl);
        leaver.stop();
        let out = leave(&l, &dl, &addr);
        assert!(!out.status.success(), "{point}: the adopter died, yet the leave succeeded");
        let _ = hub.child.wait();
        // Asked once, the adopter may have adopted: no other replica may adopt it too.
        let out = leave(&l, &dl, &addr_c);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("only one replica may adopt"), "{point}: {err}");
        // Written after the adopter was asked: the version it was asked for is final, so
        // these stay in the bank, not taken, until the bank is a replica again.
        ledger.produce(&l, 25);
        hub.restart();
        hub.wait_up();
        let out = leave(&l, &dl, &addr);
        assert!(out.status.success(), "{point}: {}", String::from_utf8_lossy(&out.stderr));
        ledger.produce(&a, 30);
        ledger.produce(&c, 30);
        wait_dropped(&da, l_id);
        wait_dropped(&dc, l_id);
        let fresh = dir.path().join("l2");
        let out = atomikctl(&["sync", "recover", "--bank", &l, "--data", fresh.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _rejoined = join(&l, op, &addr, &fresh);
        ledger.wait(&[&a, &l, &c]);
        hub.stop();
    }
}

#[test]
fn leave_refuses_while_the_daemon_runs_and_without_a_replica() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let data = dir.path().join("a");
    let mut hub = serve("lr", Op::Xor, &addr, &data);
    hub.wait_up();
    let out = leave("lr", &data, &addr);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("stop it"), "{err}");
    let out = leave("lr", &dir.path().join("none"), &addr);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("holds no replica"), "{err}");
    hub.stop();
}
