//! `atomikctl sync join --nats`: frames are authenticated end to end (forged, wrongly signed,
//! unauthenticated and replayed frames published by a raw client change no replica), server
//! credentials are passed to NATS, and the origin cap refuses a new origin once without
//! stalling the consumer. Needs `nats-server` (see sync_nats.rs).
#![cfg(feature = "nats")]

use std::path::Path;

use atomik::replica::nats_frame;
use atomik::replica::wire::{self, Delta, Message};
use atomik::Op;

mod sync_support;
use sync_support::{bank, origin_of, origins_held, wait_all};
#[path = "sync_support/nats.rs"]
mod nats_support;
use nats_support::{join, join_cmd, join_with, wait_status, NatsServer, Node};

fn status(data: &Path) -> serde_json::Value {
    wait_status(data, "written", |v| v["transport"].is_object())
}

fn delta_frame(origin: u64, from: u64, slots: Vec<(u32, u64)>) -> Vec<u8> {
    let d = Delta { origin, from, to: from + 1, slots, ..Delta::default() };
    wire::encode(&Message::Deltas { op: Op::Add, deltas: vec![d] })
}

/// Publishes `(subject, payload)` pairs to the stream with a client of its own, and returns
/// the payload of the last message on `replay_from` (an honest frame) for replaying.
fn forge(url: &str, stream: &str, msgs: Vec<(String, Vec<u8>)>, replay_from: &str, replay_to: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let st = js.get_stream(stream).await.unwrap();
        let honest = st.get_last_raw_message_by_subject(replay_from).await.unwrap();
        let mut msgs = msgs;
        msgs.push((replay_to.to_string(), honest.payload.to_vec()));
        for (subject, payload) in msgs {
            js.publish(subject, payload.into()).await.unwrap().await.unwrap();
        }
    });
}

#[test]
fn forged_and_replayed_frames_change_no_replica_and_honest_replicas_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let dir = |n: &str| tmp.path().join(n);
    let a = join("f1a", "f1", "add", &url, &dir("f1a"));
    let b = join("f1b", "f1", "add", &url, &dir("f1b"));
    // A replica with the wrong secret: well-formed deltas, wrongly signed.
    let wrong = tmp.path().join("wrong-secret");
    std::fs::write(&wrong, "not the group's secret").unwrap();
    let w = wrong.to_str().unwrap();
    let _x = join_cmd("f1x", "f1", "add", &url, &dir("f1x"), &["--secret-file", w], None);
    let mut want = vec![0u64; 64];
    for i in 0..64u64 {
        bank(if i % 2 == 0 { "f1a" } else { "f1b" }).accum(i, i + 1).unwrap();
        want[i as usize] += i + 1;
    }
    bank("f1x").accum(0, 1_000_000).unwrap();
    wait_all(&["f1a", "f1b"], &want);
    let ida = origin_of(&dir("f1a"));
    let va = status(&dir("f1a"))["version"].as_u64().unwrap();
    let sub = |o: u64| format!("atomik.f1.{o:016x}");
    let stream = "ATOMIK_f1";
    let fake = 0x0bad_0bad_0bad_0badu64;
    let mut garbage = vec![nats_frame::FORMAT];
    garbage.extend_from_slice(&[0xab; nats_frame::TAG_LEN]);
    garbage.extend_from_slice(&delta_frame(fake, 0, vec![(1, 111)]));
    let forged = vec![
        // A garbage MAC on a new origin.
        (sub(fake), garbage),
        // A well-formed next delta of a, on a's subject, signed with the wrong secret.
        (
            sub(ida),
            nats_frame::seal(b"wrong secret", stream, &sub(ida), &delta_frame(ida, va, vec![(2, 222)])),
        ),
        // An old-format frame without any MAC.
        (sub(fake + 1), delta_frame(fake + 1, 0, vec![(3, 333)])),
    ];
    // And a's honest last frame replayed under another origin's subject.
    forge(&url, stream, forged, &sub(ida), &sub(fake + 2));
    // Every honest replica refused the four forged frames and the wrong secret's.
    for n in ["f1a", "f1b"] {
        let v = wait_status(&dir(n), "refused the forged frames", |v| {
            v["transport"]["refused"].as_u64() >= Some(5) && v["refused"].as_u64() >= Some(5)
        });
        assert!(v["transport"]["authenticated_in"].as_u64() > Some(0), "{v}");
        let last = v["transport"]["last_refusal"].as_str().unwrap();
        assert!(last.starts_with("ATOMIK_f1: seq ") && last.contains(" on atomik.f1."), "{last}");
        let origins = v["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 2, "only a and b are joined: {v}");
    }
    // Nothing forged reached any bank, and the consumers moved on: honest deltas still flow,
    // a included (its own subject now ends with a forged frame).
    for n in ["f1a", "f1b"] {
        assert_eq!(bank(n).read_all(), want, "{n}");
    }
    for i in 0..10u64 {
        bank(if i % 2 == 0 { "f1a" } else { "f1b" }).accum(i, 5).unwrap();
        want[i as usize] += 5;
    }
    wait_all(&["f1a", "f1b"], &want);
    drop((a, b));
}

#[test]
fn nats_without_the_shared_secret_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomikctl"))
        .env("ATOMIK_SHM_DIR", sync_support::shm())
        .env_remove("ATOMIK_SYNC_SECRET")
        .args(["sync", "join", "--bank", "nosecret", "--slots", "8", "--nats", "nats://127.0.0.1:1"])
        .arg("--data")
        .arg(tmp.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no shared secret") && err.contains("NATS"), "{err}");
}

#[test]
fn user_and_password_reach_the_server_and_a_wrong_password_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.args = ["--user", "atomik", "--pass", "s3cret-pass"].map(String::from).to_vec();
    nats.start();
    let url = nats.url();
    let dir = |n: &str| tmp.path().join(n);
    let (good, bad) = (tmp.path().join("good"), tmp.path().join("bad"));
    std::fs::write(&good, "s3cret-pass\n").unwrap();
    std::fs::write(&bad, "guess").unwrap();
    let g = ["--nats-user", "atomik", "--nats-password-file", good.to_str().unwrap()];
    let bd = ["--nats-user", "atomik", "--nats-password-file", bad.to_str().unwrap()];
    let a = join_with("u1a", "u1", "add", &url, &dir("u1a"), &g);
    let b = join_with("u1b", "u1", "add", &url, &dir("u1b"), &g);
    let x = join_with("u1x", "u1", "add", &url, &dir("u1x"), &bd);
    let mut want = vec![0u64; 64];
    bank("u1a").accum(1, 10).unwrap();
    bank("u1b").accum(2, 20).unwrap();
    want[1] = 10;
    want[2] = 20;
    wait_all(&["u1a", "u1b"], &want);
    let v = wait_status(&dir("u1x"), "refused by the server", |v| {
        v["last_error"].as_str().is_some_and(|e| e.contains("connect"))
    });
    assert_eq!(v["transport"]["connected"], false, "{v}");
    let e = v["last_error"].as_str().unwrap().to_lowercase();
    assert!(e.contains(&url) && e.contains("author"), "{e}");
    assert_eq!(bank("u1x").read_all(), vec![0u64; 64], "the refused replica received data");
    drop((a, b, x));
}

#[test]
fn at_the_origin_cap_a_new_origin_is_refused_once_and_the_others_keep_joining() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::new(&tmp) else { return };
    nats.start();
    let url = nats.url();
    let dir = |n: &str| tmp.path().join(n);
    let names = ["c1", "c2", "c3"];
    let nodes: Vec<Node> = names.iter().map(|n| join(n, "cap", "add", &url, &dir(n))).collect();
    let mut want = vec![0u64; 64];
    for (k, n) in names.iter().enumerate() {
        bank(n).accum(k as u64, 100 + k as u64).unwrap();
        want[k] = 100 + k as u64;
    }
    wait_all(&names, &want);
    // c4 holds at most 3 origins: its own and the first two others on the stream.
    let log = tmp.path().join("c4.log");
    let c4 = join_cmd("c4", "cap", "add", &url, &dir("c4"), &["--max-origins", "3"], Some(&log));
    let v = wait_status(&dir("c4"), "refused one origin", |v| v["transport"]["refused"].as_u64() >= Some(1));
    let held = origins_held(&v);
    let ids: Vec<u64> = names.iter().map(|n| origin_of(&dir(n))).collect();
    let refused: Vec<usize> = (0..3).filter(|&k| !held.contains(&ids[k])).collect();
    assert_eq!(refused.len(), 1, "c4 holds {held:x?} of {ids:x?}");
    let r = refused[0];
    let mut at_c4 = want.clone();
    at_c4[r] = 0;
    wait_all(&["c4"], &at_c4);
    // The refused origin keeps publishing; an admitted one too, and c4 still follows it.
    for _ in 0..5 {
        bank(names[r]).accum(r as u64, 1).unwrap();
        want[r] += 1;
        wait_all(&names, &want);
    }
    let ok = (r + 1) % 3;
    bank(names[ok]).accum(10, 7).unwrap();
    want[10] = 7;
    at_c4[10] = 7;
    wait_all(&names, &want);
    wait_all(&["c4"], &at_c4);
    let v = status(&dir("c4"));
    assert!(v["transport"]["refused"].as_u64() >= Some(2), "each refused frame counted: {v}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.lines().filter(|l| l.contains("live origins")).count();
    assert_eq!(lines, 1, "one line for the refused origin, not one per message:\n{text}");
    assert!(text.contains(&format!("{:016x}", ids[r])), "{text}");
    drop((nodes, c4));
}
