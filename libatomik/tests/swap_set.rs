//! SWAP_SET: returns the state and sets a new reference in one step, with the same
//! exactly-once guarantee as SWAP for concurrent ACCUMs. Works on the selected backend
//! (`ATOMIK_BACKEND`), so the VM runs it against `/dev/atomik` too.

mod common;

use atomik::{CreateOptions, Op};
use common::TempBank;

#[test]
fn swap_set_returns_the_state_and_installs_the_reference() {
    for op in [Op::Add, Op::Xor] {
        let b = TempBank::new("swapset", CreateOptions::new(4).op(op));
        b.load(1, 10).unwrap();
        b.accum(1, 6).unwrap();
        assert_eq!(b.swap_set(1, 1000).unwrap(), op.combine(10, 6));
        assert!(b.is_clean(1).unwrap(), "the accumulator is reset");
        assert_eq!(b.read(1).unwrap(), 1000);
        b.accum(1, 3).unwrap();
        assert_eq!(b.read(1).unwrap(), op.combine(1000, 3));
        assert!(matches!(b.swap_set(9, 0), Err(atomik::Error::SlotOutOfRange { .. })));
        assert_eq!(b.read(0).unwrap(), 0, "other slots untouched");
    }
}

#[test]
fn no_concurrent_accum_is_lost_or_doubled_by_swap_set() {
    const PER_WRITER: u64 = 200_000;
    let b = TempBank::new("swapset-stress", CreateOptions::new(2).op(Op::Add));
    let name = b.name().to_owned();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let name = name.clone();
            std::thread::spawn(move || {
                let bank = atomik::Bank::open(&name).unwrap();
                for _ in 0..PER_WRITER {
                    bank.accum(0, 1).unwrap();
                }
            })
        })
        .collect();
    // Each SWAP_SET returns (the reference it replaced) + (increments since then) and installs
    // a new reference: the increments it saw are state − previous reference.
    let mut seen = 0u64;
    let mut reference = 0u64;
    let mut rounds = 0u64;
    while writers.iter().any(|w| !w.is_finished()) || rounds < 10 {
        let next = rounds * 1_000_003;
        let state = b.swap_set(0, next).unwrap();
        seen += state.wrapping_sub(reference);
        reference = next;
        rounds += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    seen += b.read(0).unwrap().wrapping_sub(reference);
    assert_eq!(seen, 2 * PER_WRITER, "over {rounds} SWAP_SETs");
}
