//! Any bytes: `wire::decode` returns an error or a message, never panics; a decoded message
//! re-encodes and decodes to itself, and joining it into a replica never panics either
//! (`atomik::replica::fuzz_check`, also replayed over the corpus by a stable test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atomik::replica::fuzz_check::check_frame(data));
