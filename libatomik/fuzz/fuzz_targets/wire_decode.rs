//! Any bytes: `wire::decode` returns an error or a message, never panics; a decoded message
//! re-encodes and decodes to itself, and joining it into a replica never panics either.
//! Inputs are tried as given and with a valid CRC-32C appended, so the fuzzer gets past the
//! checksum into the parser.
#![no_main]

use atomik::replica::{wire, Config, Op, Replica};
use libfuzzer_sys::fuzz_target;

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
        let _ = Op::Xor;
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut framed = data.to_vec();
    framed.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    check(&framed);
});
