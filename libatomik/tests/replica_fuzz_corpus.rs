//! Replays the cargo-fuzz corpus of the wire decoder on the stable toolchain, so every input
//! the fuzzer ever kept (including the one that once found a panic) stays a regression test
//! in CI, with the fuzz target's own check.

#[test]
fn every_corpus_input_decodes_or_is_refused_without_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/wire_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("the fuzz corpus is in the repository") {
        atomik::replica::fuzz_check::check_frame(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 100, "corpus unexpectedly small: {n} inputs");
}
