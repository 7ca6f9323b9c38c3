//! Replica model: idempotent, order-independent joins, gap buffering, snapshot fallback,
//! retirement of origins, caps with clear errors, and inputs the fuzzer found.

use atomik::replica::{wire, Config, Delta, Joined, Message, Op, Replica, ReplicaError};

fn d(origin: u64, from: u64, slots: &[(u32, u64)]) -> Delta {
    Delta { origin, from, to: from + 1, replace: false, slots: slots.to_vec(), retired: vec![] }
}

#[test]
fn a_duplicated_xor_delta_does_not_undo_itself() {
    let mut r = Replica::new(1, Config::new(8, Op::Xor));
    let x = d(2, 0, &[(3, 0xff)]);
    assert_eq!(r.join(&x), Ok(Joined::Applied));
    assert_eq!(r.join(&x), Ok(Joined::Duplicate));
    assert_eq!(r.state()[3], 0xff);
}

#[test]
fn out_of_order_deltas_wait_for_the_gap() {
    let mut r = Replica::new(1, Config::new(8, Op::Add));
    assert_eq!(r.join(&d(2, 1, &[(0, 5)])), Ok(Joined::Buffered));
    assert_eq!(r.state()[0], 0);
    assert_eq!(r.join(&d(2, 0, &[(0, 1)])), Ok(Joined::Applied));
    assert_eq!((r.state()[0], r.version_of(2)), (6, 2));
}

#[test]
fn a_lagging_peer_gets_one_combined_interval_or_a_snapshot() {
    let mut cfg = Config::new(16, Op::Add);
    cfg.log_len = 4;
    let mut a = Replica::new(1, cfg);
    let mut b = Replica::new(2, cfg);
    for t in 0..10u64 {
        a.accum((t % 16) as u32, t + 1).unwrap();
        let delta = a.commit().unwrap();
        if t < 2 {
            b.join(&delta).unwrap();
        }
    }
    // b is at version 2, the log covers 6..10: snapshot.
    let m = a.missing_for(&b.versions());
    assert!(m[0].replace);
    b.join(&m[0]).unwrap();
    assert_eq!(b.state(), a.state());
    // Within the log: one combined interval.
    let mut c = b.clone();
    a.accum(1, 1).unwrap();
    a.commit().unwrap();
    a.accum(1, 1).unwrap();
    a.commit().unwrap();
    let m = a.missing_for(&c.versions());
    assert_eq!((m.len(), m[0].replace, m[0].from, m[0].to), (1, false, 10, 12));
    assert_eq!(m[0].slots, vec![(1, 2)]);
    c.join(&m[0]).unwrap();
    assert_eq!(c.state(), a.state());
}

#[test]
fn joins_commute() {
    let deltas = [d(2, 0, &[(0, 3)]), d(2, 1, &[(1, 4)]), d(3, 0, &[(0, 7)]), d(3, 1, &[(2, 1)])];
    let mut fwd = Replica::new(1, Config::new(4, Op::Xor));
    let mut rev = Replica::new(9, Config::new(4, Op::Xor));
    for x in &deltas {
        fwd.join(x).unwrap();
    }
    for x in deltas.iter().rev() {
        rev.join(x).unwrap();
    }
    assert_eq!(fwd.state(), rev.state());
    assert_eq!(fwd.versions(), rev.versions());
}

#[test]
fn a_retired_origin_is_folded_into_its_adopter_everywhere() {
    let cfg = Config::new(4, Op::Add);
    let mut client = Replica::new(7, cfg);
    let mut server = Replica::new(1, cfg);
    let mut other = Replica::new(2, cfg);
    client.accum(0, 10).unwrap();
    let c1 = client.commit().unwrap();
    client.accum(1, 5).unwrap();
    let c2 = client.commit().unwrap();
    server.join(&c1).unwrap();
    server.join(&c2).unwrap();
    other.join(&c1).unwrap(); // `other` only has half of the client
    assert_eq!(server.adopt(7, 1), Err(ReplicaError::NotFinal { origin: 7, have: 2, want: 1 }));
    server.adopt(7, 2).unwrap();
    let fold = server.commit().unwrap();
    assert_eq!(fold.retired, vec![(7, 2)]);
    assert_eq!(server.origin_count(), 1);
    other.join(&fold).unwrap();
    // Late deliveries of the client are ignored now.
    assert_eq!(other.join(&c2), Ok(Joined::Retired));
    assert_eq!(other.state(), server.state());
    assert_eq!(other.state(), &[10, 5, 0, 0]);
    assert_eq!(other.origin_count(), 2); // itself and the server, not the client
                                         // A fresh replica fed a snapshot of the server also learns the tombstone.
    let mut fresh = Replica::new(3, cfg);
    for s in server.snapshots() {
        fresh.join(&s).unwrap();
    }
    assert_eq!(fresh.join(&c1), Ok(Joined::Retired));
    assert_eq!(fresh.state(), server.state());
}

#[test]
fn too_many_origins_is_a_clear_error() {
    let mut cfg = Config::new(4, Op::Add);
    cfg.max_origins = 2;
    let mut r = Replica::new(1, cfg);
    r.join(&d(2, 0, &[(0, 1)])).unwrap();
    let e = r.join(&d(3, 0, &[(0, 1)])).unwrap_err();
    assert_eq!(e, ReplicaError::TooManyOrigins { origin: 3, max: 2 });
    assert!(e.to_string().contains("retire clients"));
}

#[test]
fn at_the_origin_cap_a_message_is_refused_whole_and_its_admitted_part_joins() {
    let mut cfg = Config::new(4, Op::Add);
    cfg.max_origins = 3;
    let mut r = Replica::new(1, cfg);
    r.join(&d(2, 0, &[(0, 1)])).unwrap();
    let deltas = vec![d(2, 1, &[(0, 1)]), d(5, 0, &[(1, 5)]), d(6, 0, &[(2, 6)]), d(7, 0, &[(3, 7)])];
    // Room for one new origin: 5 (the first) is admitted, 6 and 7 are refused.
    assert_eq!(r.refused_origins(&deltas), vec![6, 7]);
    let msg = Message::Deltas { op: Op::Add, deltas: deltas.clone() };
    assert_eq!(r.join_message(&msg), Err(ReplicaError::TooManyOrigins { origin: 6, max: 3 }));
    assert_eq!(r.state(), &[1, 0, 0, 0], "nothing of a refused message is joined");
    let admitted: Vec<_> = deltas.into_iter().filter(|x| ![6, 7].contains(&x.origin)).collect();
    r.join_message(&Message::Deltas { op: Op::Add, deltas: admitted }).unwrap();
    assert_eq!(r.state(), &[2, 5, 0, 0]);
    assert!(r.knows(5) && !r.knows(6));
}

#[test]
fn slots_out_of_range_are_rejected() {
    let mut r = Replica::new(1, Config::new(4, Op::Add));
    assert!(matches!(r.join(&d(2, 0, &[(4, 1)])), Err(ReplicaError::Slot { slot: 4, .. })));
}

/// Found by cargo-fuzz: a snapshot whose retired list names its own origin panicked.
#[test]
fn fuzz_regression_origin_retiring_itself() {
    let frame: &[u8] = &[
        0x11, 0x01, 0x01, 0x05, 0x09, 0x00, 0x03, 0x01, 0x01, 0x01, 0x05, 0x09, 0x00, 0x03, 0x01, 0x1e, 0xf5,
        0x08, 0x03, 0xff, 0xff, 0x32, 0xff, 0x04, 0x02,
    ];
    let mut framed = frame.to_vec();
    framed.extend_from_slice(&crc32c::crc32c(frame).to_le_bytes());
    if let Ok(msg) = wire::decode(&framed) {
        let mut r = Replica::new(1, Config::new(64, Op::Add));
        let _ = r.join_message(&msg);
    }
    let mut r = Replica::new(1, Config::new(8, Op::Add));
    let mut x = d(9, 0, &[(0, 1)]);
    x.retired = vec![(9, 3)];
    assert_eq!(r.join(&x), Ok(Joined::Dropped));
}
