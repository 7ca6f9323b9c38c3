//! `atomikctl sync join --nats` against a real `nats-server -js` on a free loopback port:
//! convergence of three processes, `kill -9` of replicas, a restart of the NATS server
//! mid-stream, and offline-first clients that connect in random order.
//!
//! These tests need `nats-server` (Debian package `nats-server`; or set
//! `ATOMIK_NATS_SERVER=/path/to/nats-server`). Without it they fail, unless
//! `ATOMIK_SKIP_NATS=1` says to skip them.
#![cfg(feature = "nats")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod sync_support;
use sync_support::{bank, create_offline, wait_all};
#[path = "sync_support/nats.rs"]
mod nats_support;
use nats_support::{join, join_with, wait_status, NatsServer, Node};

/// A seed printed by the test, so a failing shuffle can be replayed (ATOMIK_TEST_SEED).
fn seed() -> u64 {
    let s = std::env::var("ATOMIK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("ATOMIK_TEST_SEED={s}");
    s
}

fn shuffle(v: &mut [usize], state: &mut u64) {
    for i in (1..v.len()).rev() {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        v.swap(i, ((*state >> 33) % (i as u64 + 1)) as usize);
    }
}

#[test]
fn three_processes_converge_byte_identically_through_nats() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let names = ["n1a", "n1b", "n1c"];
    let nodes: Vec<Node> =
        names.iter().map(|n| join(n, "n1", "xor", &nats.url(), &tmp.path().join(n))).collect();
    let mut want = vec![0u64; 64];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..300u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x % 64) as usize;
        bank(names[(i % 3) as usize]).accum(slot as u64, x).unwrap();
        want[slot] ^= x;
    }
    wait_all(&names, &want);
    for n in &names {
        // Each published its own deltas on the group's stream.
        let v = wait_status(&tmp.path().join(n), "published", |v| {
            v["transport"]["messages_out"].as_u64() >= Some(1)
        });
        assert_eq!(v["transport"]["stream"], "ATOMIK_n1");
    }
    drop(nodes);
}

#[test]
fn kill_9_of_replicas_loses_no_acknowledged_delta_and_replay_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let dir = |n: &str| tmp.path().join(n);
    let mut a = join("n2a", "n2", "add", &url, &dir("n2a"));
    let b = join("n2b", "n2", "add", &url, &dir("n2b"));
    let mut c = join("n2c", "n2", "add", &url, &dir("n2c"));
    let all = ["n2a", "n2b", "n2c"];
    let mut want = vec![0u64; 64];
    for i in 0..64u64 {
        bank("n2a").accum(i, i + 1).unwrap();
        want[i as usize] += i + 1;
    }
    // Acknowledged: b and c hold a's deltas, so the stream has them.
    wait_all(&all, &want);
    a.kill_9();
    // Restart, and wait until it has recovered (reloaded its bank from the replica: local
    // ACCUMs of a crashed replica's bank are only safe once its daemon is back).
    std::fs::remove_file(dir("n2a").join("status.json")).unwrap();
    let a = join("n2a", "n2", "add", &url, &dir("n2a"));
    wait_status(&dir("n2a"), "restarted", |v| v["transport"].is_object());
    wait_all(&all, &want);

    // c dies mid-stream while a and b keep producing; it comes back and replays what it missed.
    for i in 0..400u64 {
        let (p, slot) = (if i % 2 == 0 { "n2a" } else { "n2b" }, i % 64);
        bank(p).accum(slot, 1 + i % 7).unwrap();
        want[slot as usize] += 1 + i % 7;
        if i == 100 {
            c.kill_9();
            c = join("n2c", "n2", "add", &url, &dir("n2c"));
        }
        if i == 200 {
            c.kill_9();
        }
        if i == 300 {
            c = join("n2c", "n2", "add", &url, &dir("n2c"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_all(&all, &want);
    let cursor = std::fs::read_to_string(dir("n2c").join("nats.cursor")).unwrap();
    assert!(cursor.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() > 0, "cursor: {cursor}");
    // And the restarted ones still publish.
    wait_status(&dir("n2c"), "connected", |v| v["transport"]["connected"] == true);
    bank("n2c").accum(3, 1000).unwrap();
    want[3] += 1000;
    wait_all(&all, &want);
    drop((a, b, c));
}

#[test]
fn nats_server_restart_mid_stream_then_clients_reconnect_and_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let names = ["n3a", "n3b", "n3c"];
    let nodes: Vec<Node> = names.iter().map(|n| join(n, "n3", "add", &url, &tmp.path().join(n))).collect();
    let mut want = vec![0u64; 64];
    for i in 0..600u64 {
        let (p, slot) = (names[(i % 3) as usize], (i * 5) % 64);
        bank(p).accum(slot, 1 + i % 4).unwrap();
        want[slot as usize] += 1 + i % 4;
        if i == 200 {
            nats.kill(); // the replicas keep committing locally meanwhile
        }
        if i == 400 {
            nats.start();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_all(&names, &want);
    for n in &names {
        wait_status(&tmp.path().join(n), "reconnected", |v| v["transport"]["connected"] == true);
    }
    drop(nodes);
}

#[test]
fn offline_clients_connect_in_random_order_and_lose_no_increment() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    let url = nats.url();
    let mut rng = seed();
    let names = ["n4c0", "n4c1", "n4c2", "n4c3"];
    let dir = |n: &str| tmp.path().join(n);
    let mut want = vec![0u64; 64];
    // Round 1: clients that never ran accumulate offline (concurrent increments on shared slots).
    create_offline(&names, &mut want);
    // Half of them start while the NATS server is still down, and keep accumulating.
    let mut order: Vec<usize> = (0..names.len()).collect();
    shuffle(&mut order, &mut rng);
    let mut clients: Vec<Option<Node>> = (0..names.len()).map(|_| None).collect();
    for &k in &order[..2] {
        clients[k] = Some(join(names[k], "n4", "add", &url, &dir(names[k])));
    }
    for &k in &order[..2] {
        for t in 0..100u64 {
            bank(names[k]).accum(t % 64, 5).unwrap();
            want[(t % 64) as usize] += 5;
        }
    }
    nats.start();
    for &k in &order[2..] {
        clients[k] = Some(join(names[k], "n4", "add", &url, &dir(names[k])));
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_all(&names, &want);

    // Round 2: clients stop cleanly, accumulate offline again, come back in another order.
    for c in clients.iter_mut() {
        c.take().unwrap().stop();
    }
    for (k, n) in names.iter().enumerate() {
        for t in 0..300u64 {
            let slot = (t + 11 * k as u64) % 64;
            bank(n).accum(slot, 2).unwrap();
            want[slot as usize] += 2;
        }
    }
    shuffle(&mut order, &mut rng);
    for &k in &order {
        clients[k] = Some(join(names[k], "n4", "add", &url, &dir(names[k])));
        std::thread::sleep(Duration::from_millis(50));
    }
    // A brand-new replica joins last and replays the stream from the start.
    let late = join("n4new", "n4", "add", &url, &dir("n4new"));
    let mut all = names.to_vec();
    all.push("n4new");
    wait_all(&all, &want);
    drop((late, clients));
}

#[test]
fn a_replica_offline_longer_than_the_retention_is_repaired_by_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let dir = |n: &str| tmp.path().join(n);
    // Tiny retention: the stream keeps 8 messages per origin, origins snapshot every 3.
    let small = ["--nats-snapshot-every", "3", "--nats-max-per-subject", "8"];
    let a = join_with("n5a", "n5", "add", &url, &dir("n5a"), &small);
    let c = join_with("n5c", "n5", "add", &url, &dir("n5c"), &small);
    let mut want = vec![0u64; 64];
    bank("n5c").accum(1, 1).unwrap();
    want[1] += 1;
    wait_all(&["n5a", "n5c"], &want);
    c.stop();
    // One delta per round-trip: far more messages than the stream keeps.
    for i in 0..60u64 {
        bank("n5a").accum(i % 64, i + 1).unwrap();
        want[(i % 64) as usize] += i + 1;
        // Each ACCUM becomes a's version i + 1 once published (the next waits for it).
        wait_status(&dir("n5a"), "published", |v| v["transport"]["published"].as_u64() > Some(i));
    }
    // The stream dropped most of a's deltas: c (whose cursor is far behind) and a brand-new
    // replica can only converge through a's snapshots.
    let _c = join_with("n5c", "n5", "add", &url, &dir("n5c"), &small);
    let _n = join_with("n5new", "n5", "add", &url, &dir("n5new"), &small);
    wait_all(&["n5a", "n5c", "n5new"], &want);
    // The status counts the joined snapshots (after the bank, at the next tick).
    let new = dir("n5new");
    wait_status(&new, "joined a snapshot", |v| v["snapshots"].as_u64() >= Some(1));
    drop(a);
}
