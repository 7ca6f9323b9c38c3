//! Replays the cargo-fuzz corpus of the wire decoder on the stable toolchain, so every input
//! the fuzzer ever kept (including the one that once found a panic) stays a regression test
//! in CI: decoding returns an error or a message that re-encodes to itself, and joining it
//! into a replica does not panic.

use atomik::replica::{wire, Config, Replica};

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

#[test]
fn every_corpus_input_decodes_or_is_refused_without_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/wire_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("the fuzz corpus is in the repository") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        check(&data);
        let mut framed = data.clone();
        framed.extend_from_slice(&crc32c::crc32c(&data).to_le_bytes());
        check(&framed);
        n += 1;
    }
    assert!(n > 100, "corpus unexpectedly small: {n} inputs");
}
