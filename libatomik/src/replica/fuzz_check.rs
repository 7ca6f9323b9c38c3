//! The property the wire fuzzer checks, shared by the cargo-fuzz target and the stable test
//! that replays its corpus, so the two cannot drift apart.

use crate::replica::{wire, Config, Replica};

/// Panics if `frame` breaks the decoder's contract: decoding returns an error or a message
/// that re-encodes and decodes to itself, and joining that message into a replica does not
/// panic. The frame is tried as given and with a valid CRC-32C appended, so inputs get past
/// the checksum into the parser.
pub fn check_frame(data: &[u8]) {
    check(data);
    let mut framed = data.to_vec();
    framed.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    check(&framed);
}

fn check(frame: &[u8]) {
    if let Ok(msg) = wire::decode(frame) {
        let again = wire::encode(&msg);
        assert_eq!(wire::decode(&again).as_ref(), Ok(&msg));
        let op = match &msg {
            wire::Message::Deltas { op, .. } | wire::Message::Summary { op, .. } => *op,
        };
        let mut r = Replica::new(1, Config::new(64, op));
        let _ = r.join_message(&msg);
        let _ = r.missing_for(&[]);
    }
}
