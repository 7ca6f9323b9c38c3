//! Wire format: proptest round-trips, rejection of damaged frames without panics, and the
//! compactness the bandwidth targets rely on.

use atomik::replica::sim::{workload, SimConfig};
use atomik::replica::{wire, Config, Delta, Message, Op, Replica, WireError};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Xor), Just(Op::Add)]
}

fn delta() -> impl Strategy<Value = Delta> {
    (
        any::<u64>(),
        0u64..u64::MAX / 2,
        1u64..1000,
        any::<bool>(),
        proptest::collection::btree_map(0u32..5000, any::<u64>(), 0..64),
        proptest::collection::vec((any::<u64>(), any::<u64>()), 0..4),
    )
        .prop_map(|(origin, from, span, replace, slots, retired)| Delta {
            origin,
            from: if replace { 0 } else { from },
            to: if replace { span } else { from + span },
            replace,
            slots: slots.into_iter().collect(),
            retired,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (op(), proptest::collection::vec(delta(), 0..5))
            .prop_map(|(op, deltas)| Message::Deltas { op, deltas }),
        (op(), any::<u32>(), proptest::collection::btree_map(any::<u64>(), any::<u64>(), 0..20))
            .prop_map(|(op, width, v)| Message::Summary { op, width, versions: v.into_iter().collect() }),
    ]
}

proptest! {
    #[test]
    fn round_trip(msg in message()) {
        let frame = wire::encode(&msg);
        prop_assert_eq!(wire::decode(&frame), Ok(msg));
    }

    #[test]
    fn damaged_frames_are_errors_not_panics(msg in message(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut frame = wire::encode(&msg);
        let i = at.index(frame.len());
        frame[i] ^= 1 << bit;
        prop_assert!(wire::decode(&frame).is_err());
        // Truncations are rejected too.
        for cut in [0, 1, frame.len() / 2, frame.len() - 1] {
            prop_assert!(wire::decode(&frame[..cut]).is_err());
        }
    }

    #[test]
    fn garbage_with_a_valid_checksum_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut frame = vec![0x11, 0];
        frame.extend_from_slice(&body);
        let crc = crc32c_of(&frame);
        frame.extend_from_slice(&crc.to_le_bytes());
        let _ = wire::decode(&frame);
    }
}

/// CRC-32C, bit by bit: an independent check of the frame trailer.
fn crc32c_of(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn trailer_is_crc32c() {
    let frame = wire::encode(&Message::Summary { op: Op::Add, width: 9, versions: vec![(1, 2)] });
    let (body, crc) = frame.split_at(frame.len() - 4);
    assert_eq!(u32::from_le_bytes(crc.try_into().unwrap()), crc32c_of(body));
    assert_eq!(
        wire::decode(&frame[..frame.len() - 1]).unwrap_err(),
        WireError::Checksum {
            stated: u32::from_le_bytes([frame[frame.len() - 5], crc[0], crc[1], crc[2]]),
            computed: crc32c_of(&body[..body.len() - 1]),
        }
    );
}

/// Average frame bytes of one replica's per-tick delta in the bandwidth workload.
fn bytes_per_tick(op: Op) -> f64 {
    let mut c = SimConfig::new(1, 500, 0xDEAD_BEEF_0BAD_F00D);
    c.op = op;
    let mut r = Replica::new(0x9e37_79b9_7f4a_7c15, Config::new(256, op)); // a 9-byte varint id
    let mut total = 0usize;
    for t in 0..c.ticks {
        for (s, v) in workload(&c, 0, t) {
            r.accum(s, v).unwrap();
        }
        let d = r.commit().unwrap();
        assert_eq!(d.slots.len(), 13);
        total += wire::encode(&Message::Deltas { op, deltas: vec![d] }).len();
    }
    total as f64 / c.ticks as f64
}

#[test]
fn deltas_meet_the_bandwidth_targets_even_with_a_random_origin_id() {
    let xor = bytes_per_tick(Op::Xor);
    let add = bytes_per_tick(Op::Add);
    assert!(xor <= 140.0, "XOR delta {xor} B/tick > 140");
    assert!(add <= 64.0, "ADD delta {add} B/tick > 64");
}

#[test]
fn dense_changes_switch_to_a_bitmap() {
    let d = Delta {
        origin: 1,
        from: 0,
        to: 1,
        replace: false,
        slots: (0..256).map(|i| (i, 1)).collect(),
        retired: vec![],
    };
    let f = wire::encode(&Message::Deltas { op: Op::Add, deltas: vec![d] });
    // 32-byte bitmap + 256 one-byte values + headers, instead of 256 more index bytes.
    assert!(f.len() < 256 + 32 + 16, "{} bytes", f.len());
}
