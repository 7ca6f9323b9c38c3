//! The group laws and order independence: the properties every producer relies on.

mod common;

use atomik::{CreateOptions, Op, Slot};
use common::TempBank;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Xor), Just(Op::Add)]
}

proptest! {
    #[test]
    fn group_laws(op in op(), a: u64, b: u64, c: u64) {
        prop_assert_eq!(op.combine(a, op.identity()), a);
        prop_assert_eq!(op.combine(a, b), op.combine(b, a));
        prop_assert_eq!(op.combine(op.combine(a, b), c), op.combine(a, op.combine(b, c)));
        prop_assert_eq!(op.combine(a, op.inverse(a)), op.identity());
        prop_assert_eq!(op.combine(op.difference(a, b), b), a);
    }

    #[test]
    fn slot_semantics(op in op(), r: u64, deltas in prop::collection::vec(any::<u64>(), 0..20)) {
        let mut s = Slot::new(op, 0);
        s.load(r);
        prop_assert!(s.is_clean());
        for &d in &deltas { s.accum(d); }
        let expected = op.fold(r, deltas.iter().copied());
        prop_assert_eq!(s.read(), expected);
        prop_assert_eq!(s.swap(), expected);
        prop_assert!(s.is_clean());
        prop_assert_eq!(s.reference(), expected);
        if let Some(&d) = deltas.first() {
            s.accum(d);
            s.undo(d);
            prop_assert!(s.is_clean());
            prop_assert_eq!(s.read(), expected);
        }
    }
}

/// One multiset of (slot, delta) applied in any permutation, batching and split across
/// 1, 2, 4 or 8 banks (slot i of the logical bank lives in bank i % n) gives the same bytes.
fn apply_split(op: Op, slots: u64, deltas: &[(u64, u64)], banks: u64, batch: usize) -> Vec<u64> {
    let per_bank = slots.div_ceil(banks);
    let parts: Vec<TempBank> =
        (0..banks).map(|_| TempBank::new("split", CreateOptions::new(per_bank).op(op))).collect();
    for chunk in deltas.chunks(batch.max(1)) {
        for b in 0..banks {
            let mine: Vec<(u64, u64)> =
                chunk.iter().filter(|(s, _)| s % banks == b).map(|&(s, d)| (s / banks, d)).collect();
            parts[b as usize].accum_batch(&mine).unwrap();
        }
    }
    (0..slots).map(|s| parts[(s % banks) as usize].read(s / banks).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn order_batching_and_bank_count_do_not_matter(
        op in op(),
        deltas in prop::collection::vec((0u64..16, any::<u64>()), 1..200),
        seed: u64,
        batch in 1usize..50,
    ) {
        let reference = apply_split(op, 16, &deltas, 1, deltas.len());
        let mut shuffled = deltas.clone();
        // Fisher–Yates with a simple LCG keyed by the seed: a different order per case.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        for banks in [1, 2, 4, 8] {
            prop_assert_eq!(&apply_split(op, 16, &shuffled, banks, batch), &reference, "banks={}", banks);
        }
        let mut model = vec![Slot::new(op, 0); 16];
        for &(s, d) in &deltas { model[s as usize].accum(d); }
        let expected: Vec<u64> = model.iter().map(|s| s.read()).collect();
        prop_assert_eq!(reference, expected);
    }
}
