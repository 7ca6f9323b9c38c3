//! The convergence simulator reaches the workload's exact state under every fault model and
//! for 1, 2, 4 and 8 banks, with the same digest.

use atomik::replica::sim::{self, Faults, SimConfig};
use atomik::replica::Op;

fn fault_models() -> Vec<(&'static str, Faults)> {
    let none = Faults::default();
    vec![
        ("none", none),
        ("loss", Faults { loss: 0.2, ..none }),
        ("dup", Faults { dup: 0.3, ..none }),
        ("reorder", Faults { reorder: 20, ..none }),
        ("partition", Faults { partition_every: 300, partition_len: 120, ..none }),
        ("crash", Faults { crash_every: 200, crash_down: 40, ..none }),
        ("all", Faults::all()),
    ]
}

#[test]
fn every_fault_model_and_bank_count_gives_one_digest() {
    for op in [Op::Xor, Op::Add] {
        let mut base = SimConfig::new(4, 1500, 0xDEAD_BEEF_0BAD_F00D);
        base.op = op;
        let expected = sim::expected_digest(&base);
        for (name, faults) in fault_models() {
            for banks in [1, 2, 4, 8] {
                let cfg = SimConfig { faults, banks, ..base };
                let rep = sim::run(&cfg);
                assert!(
                    rep.converged(),
                    "{op:?} {name} banks={banks}: digests {:x?}, expected {expected:x}",
                    rep.digests
                );
                assert_eq!(rep.expected, expected);
            }
        }
    }
}

#[test]
fn faults_really_happen() {
    let mut cfg = SimConfig::new(5, 3000, 7);
    cfg.faults = Faults::all();
    let rep = sim::run(&cfg);
    assert!(rep.converged());
    assert!(rep.lost > 0 && rep.duplicated > 0 && rep.crashes > 0 && rep.partitions > 0);
}

#[test]
fn a_different_seed_gives_a_different_state() {
    let a = sim::run(&SimConfig::new(3, 200, 1));
    let b = sim::run(&SimConfig::new(3, 200, 2));
    assert!(a.converged() && b.converged());
    assert_ne!(a.digests[0], b.digests[0]);
}
