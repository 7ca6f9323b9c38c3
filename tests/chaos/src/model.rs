//! The correctness model: what every replica must hold once the cluster has healed.
//!
//! A bank is a commutative group per slot (wrapping ADD or XOR), so the order in which
//! replicas saw the ACCUMs does not matter: after convergence each slot must equal the fold of
//! the deltas whose `atomikctl accum` exited 0 — no more (a delta applied twice) and no less
//! (a delta dropped). Nothing here looks at time; it is only asked after convergence.

use serde::Serialize;

/// The bank's group operator, as `atomikctl --op` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Xor,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Xor => "xor",
        }
    }

    fn combine(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Add => a.wrapping_add(b),
            Op::Xor => a ^ b,
        }
    }
}

/// One acknowledged ACCUM: `atomikctl accum` exited 0 for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub slot: u32,
    pub delta: u64,
    /// Index of the replica whose bank took it.
    pub replica: u8,
    /// Milliseconds since the run started, when it was acknowledged (diagnostics only).
    pub at_ms: u64,
}

/// The state every replica must reach: each slot the fold of its acknowledged deltas.
pub fn fold(op: Op, slots: usize, acks: &[Ack]) -> Vec<u64> {
    let mut state = vec![0u64; slots];
    for a in acks {
        let s = &mut state[a.slot as usize];
        *s = op.combine(*s, a.delta);
    }
    state
}

/// How one slot of one replica differs from the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub slot: usize,
    pub expected: u64,
    pub actual: u64,
    /// ADD: |ledger − state| (the ADD difference read as a signed number); XOR: differing bits.
    pub amount: u64,
    /// ADD: `lost` when the state is below the ledger, `extra` when above (a delta applied
    /// twice, or a loss "repaired" by a negation); XOR: `bits` (a lost and a doubled delta
    /// look the same).
    pub kind: &'static str,
}

/// Every slot where `actual` differs from `expected`.
pub fn mismatches(op: Op, expected: &[u64], actual: &[u64]) -> Vec<Mismatch> {
    assert_eq!(expected.len(), actual.len(), "bank widths differ");
    expected
        .iter()
        .zip(actual)
        .enumerate()
        .filter(|(_, (e, a))| e != a)
        .map(|(slot, (&expected, &actual))| {
            let (amount, kind) = match op {
                Op::Add => {
                    let d = expected.wrapping_sub(actual) as i64;
                    (d.unsigned_abs(), if d > 0 { "lost" } else { "extra" })
                }
                Op::Xor => (u64::from((expected ^ actual).count_ones()), "bits"),
            };
            Mismatch { slot, expected, actual, amount, kind }
        })
        .collect()
}

/// The summed size of a replica's mismatches (`lost` in the report): 0 iff it equals the ledger.
pub fn lost(ms: &[Mismatch]) -> u64 {
    ms.iter().map(|m| m.amount).sum()
}

/// One replica compared with the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicaCheck {
    pub replica: String,
    /// False if its bank could not be read at the end; it then counts as all zeros (every
    /// acknowledged delta lost).
    pub readable: bool,
    pub lost: u64,
    pub mismatches: Vec<Mismatch>,
}

/// Compares every replica's final state with the ledger's fold.
pub fn check(op: Op, expected: &[u64], states: &[(String, Option<Vec<u64>>)]) -> Vec<ReplicaCheck> {
    states
        .iter()
        .map(|(name, state)| {
            let zeros = vec![0; expected.len()];
            let ms = mismatches(op, expected, state.as_deref().unwrap_or(&zeros));
            ReplicaCheck { replica: name.clone(), readable: state.is_some(), lost: lost(&ms), mismatches: ms }
        })
        .collect()
}

/// A run's `lost`: the worst replica's (they are all the same when the replicas converged).
pub fn worst(checks: &[ReplicaCheck]) -> u64 {
    checks.iter().map(|c| c.lost).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(slot: u32, delta: u64) -> Ack {
        Ack { slot, delta, replica: 0, at_ms: 0 }
    }

    #[test]
    fn add_folds_to_the_wrapping_sum_per_slot() {
        let acks = [ack(0, 5), ack(1, 7), ack(0, u64::MAX), ack(0, 3)];
        // 5 + (2^64 − 1) + 3 wraps to 7.
        assert_eq!(fold(Op::Add, 3, &acks), vec![7, 7, 0]);
    }

    #[test]
    fn xor_folds_to_the_xor_per_slot_and_a_repeated_delta_cancels() {
        let acks = [ack(2, 0b1100), ack(2, 0b1010), ack(1, 9), ack(1, 9)];
        assert_eq!(fold(Op::Xor, 3, &acks), vec![0, 0, 0b0110]);
    }

    #[test]
    fn fold_order_does_not_matter() {
        let mut acks: Vec<Ack> = (0..50u64).map(|i| ack((i % 4) as u32, i * 0x9E37_79B9)).collect();
        for op in [Op::Add, Op::Xor] {
            let a = fold(op, 4, &acks);
            acks.reverse();
            assert_eq!(fold(op, 4, &acks), a);
        }
    }

    #[test]
    fn add_mismatch_tells_lost_from_extra() {
        let ms = mismatches(Op::Add, &[10, 4, 9], &[7, 4, 11]);
        assert_eq!(ms.len(), 2);
        assert_eq!((ms[0].slot, ms[0].amount, ms[0].kind), (0, 3, "lost"));
        assert_eq!((ms[1].slot, ms[1].amount, ms[1].kind), (2, 2, "extra"));
        assert_eq!(lost(&ms), 5);
    }

    #[test]
    fn add_mismatch_across_the_wrap_is_small() {
        // The ledger wrapped past 0; the replica is 2 short of it.
        let ms = mismatches(Op::Add, &[1], &[u64::MAX]);
        assert_eq!((ms[0].amount, ms[0].kind), (2, "lost"));
    }

    #[test]
    fn xor_mismatch_counts_differing_bits() {
        let ms = mismatches(Op::Xor, &[0xFF00, 1], &[0x0F00, 1]);
        assert_eq!(ms.len(), 1);
        assert_eq!((ms[0].slot, ms[0].amount, ms[0].kind), (0, 4, "bits"));
        assert_eq!(lost(&ms), 4);
    }

    #[test]
    fn check_counts_each_replica_and_an_unreadable_bank_as_all_lost() {
        let expected = fold(Op::Add, 2, &[ack(0, 5), ack(1, 2)]);
        let states = vec![
            ("c0".to_owned(), Some(vec![5, 2])),
            ("c1".to_owned(), Some(vec![5, 4])),
            ("c2".to_owned(), None),
        ];
        let c = check(Op::Add, &expected, &states);
        assert_eq!(c.iter().map(|c| c.lost).collect::<Vec<_>>(), vec![0, 2, 7]);
        assert_eq!(c[1].mismatches[0].kind, "extra");
        assert!(!c[2].readable && c[2].mismatches.iter().all(|m| m.kind == "lost"));
        assert_eq!(worst(&c), 7);
        assert_eq!(worst(&c[..1]), 0);
    }

    #[test]
    fn equal_states_have_no_mismatch() {
        assert!(mismatches(Op::Add, &[1, 2, 3], &[1, 2, 3]).is_empty());
        assert_eq!(lost(&[]), 0);
    }
}
