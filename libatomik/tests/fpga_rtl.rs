//! The FPGA backend against the RTL itself (feature `rtl-model`: hw/rtl verilated in process):
//! every bank operation differential with the userspace default, bank allocation on the
//! device, the probe, and concurrent ACCUM. Run: `cargo test -p atomik --features rtl-model
//! --test fpga_rtl`.

use std::path::Path;
use std::sync::Arc;

use atomik::backend::fpga::rtl::RtlModel;
use atomik::backend::fpga::{regs, FpgaBackend, FpgaDevice, Mmio};
use atomik::backend::soft::SoftBackend;
use atomik::{Bank, CreateOptions, Error, Op};
use proptest::prelude::*;

struct Rig {
    fpga: FpgaBackend,
    soft: SoftBackend,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn rig() -> Rig {
    let dev = FpgaDevice::probe(Box::new(RtlModel::new().unwrap())).unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fpga = FpgaBackend::new(Arc::new(dev), d1.path().join("fpga"));
    let soft = SoftBackend::at(d2.path().join("soft"));
    Rig { fpga, soft, _dirs: (d1, d2) }
}

#[derive(Clone, Debug)]
enum Step {
    Accum(u64, u64),
    Undo(u64, u64),
    Batch(Vec<(u64, u64)>),
    Dense(u64, Vec<u64>),
    Load(u64, u64),
    Read(u64),
    Range(u64, usize),
    Clean(u64),
    Swap(u64),
    SwapSet(u64, u64),
}

fn step(slots: u64) -> impl Strategy<Value = Step> {
    // Slots up to 2 past the end: out-of-range requests must fail the same way on both.
    let s = 0..slots + 2;
    let d = prop_oneof![any::<u64>(), 0..16u64, Just(u64::MAX)];
    prop_oneof![
        4 => (s.clone(), d.clone()).prop_map(|(s, d)| Step::Accum(s, d)),
        1 => (s.clone(), d.clone()).prop_map(|(s, d)| Step::Undo(s, d)),
        1 => prop::collection::vec((s.clone(), d.clone()), 0..8).prop_map(Step::Batch),
        1 => (s.clone(), prop::collection::vec(d.clone(), 0..24)).prop_map(|(s, v)| Step::Dense(s, v)),
        1 => (s.clone(), d.clone()).prop_map(|(s, d)| Step::Load(s, d)),
        2 => s.clone().prop_map(Step::Read),
        1 => (s.clone(), 0..24usize).prop_map(|(s, n)| Step::Range(s, n)),
        1 => s.clone().prop_map(Step::Clean),
        1 => s.clone().prop_map(Step::Swap),
        1 => (s, d).prop_map(|(s, v)| Step::SwapSet(s, v)),
    ]
}

/// Applies `st` to a bank; the outcome as a comparable string.
fn apply(b: &Bank, st: &Step) -> String {
    let r = match st {
        Step::Accum(s, d) => b.accum(*s, *d).map(|()| String::new()),
        Step::Undo(s, d) => b.undo(*s, *d).map(|()| String::new()),
        Step::Batch(ops) => b.accum_batch(ops).map(|()| String::new()),
        Step::Dense(s, v) => b.accum_dense(*s, v).map(|()| String::new()),
        Step::Load(s, v) => b.load(*s, *v).map(|()| String::new()),
        Step::Read(s) => b.read(*s).map(|v| format!("{v:#x}")),
        Step::Range(s, n) => {
            let mut out = vec![0; *n];
            b.read_range(*s, &mut out).map(|()| format!("{out:x?}"))
        }
        Step::Clean(s) => b.is_clean(*s).map(|c| c.to_string()),
        Step::Swap(s) => b.swap(*s).map(|v| format!("{v:#x}")),
        Step::SwapSet(s, v) => b.swap_set(*s, *v).map(|v| format!("{v:#x}")),
    };
    match r {
        Ok(s) => s,
        Err(Error::SlotOutOfRange { slot, slots, .. }) => format!("out of range {slot}/{slots}"),
        Err(e) => panic!("{st:?}: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every operation gives the same answer on the RTL as on the userspace default, and both
    /// banks end with the same state; the device refused nothing.
    #[test]
    fn differential_with_the_userspace_default(
        add in any::<bool>(),
        slots in 1..40u64,
        steps in prop::collection::vec(step(40), 1..120),
    ) {
        let rig = rig();
        let op = if add { Op::Add } else { Op::Xor };
        let opts = CreateOptions::new(slots).op(op);
        // A neighbour bank before and after, to catch writes outside the bank's range.
        let before = Bank::create_on(&rig.fpga, "before", CreateOptions::new(3).op(Op::Add)).unwrap();
        before.load(2, 77).unwrap();
        let f = Bank::create_on(&rig.fpga, "b", opts).unwrap();
        let after = Bank::create_on(&rig.fpga, "after", CreateOptions::new(3)).unwrap();
        after.load(0, 88).unwrap();
        let s = Bank::create_on(&rig.soft, "b", opts).unwrap();
        for st in &steps {
            let st = match st {
                Step::Accum(x, d) => Step::Accum(x % (slots + 2), *d),
                other => other.clone(),
            };
            prop_assert_eq!(apply(&f, &st), apply(&s, &st), "step {:?}", st);
        }
        prop_assert_eq!(f.try_read_all().unwrap(), s.read_all());
        for i in 0..slots {
            prop_assert_eq!(f.is_clean(i).unwrap(), s.is_clean(i).unwrap(), "slot {}", i);
        }
        prop_assert_eq!(before.read_all(), vec![0, 0, 77]);
        prop_assert_eq!(after.read_all(), vec![88, 0, 0]);
        prop_assert_eq!(rig.fpga.device().errors().unwrap(), 0);
    }
}

#[test]
fn probe_reads_the_header() {
    let dev = FpgaDevice::probe(Box::new(RtlModel::new().unwrap())).unwrap();
    assert_eq!(dev.slots(), atomik::backend::fpga::rtl::MODEL_SLOTS.parse::<u64>().unwrap());
    assert_eq!(dev.lanes(), 1);
    assert_eq!(dev.version(), (regs::VERSION_MAJOR_RESET, regs::VERSION_MINOR_RESET));
}

/// A device whose ID register is not ours: refused, with the location and what it read.
struct Foreign;
impl Mmio for Foreign {
    fn location(&self) -> &Path {
        Path::new("PCI 0000:00:04.0 BAR 0")
    }
    fn read_words(&self, _: u64, out: &mut [u64]) -> atomik::Result<()> {
        out.fill(0x1234_5678);
        Ok(())
    }
    fn write_words(&self, _: u64, _: &[u64]) -> atomik::Result<()> {
        panic!("the probe must not write")
    }
}

#[test]
fn probe_refuses_a_foreign_device() {
    let e = FpgaDevice::probe(Box::new(Foreign)).unwrap_err().to_string();
    assert!(e.contains("PCI 0000:00:04.0 BAR 0") && e.contains("0x0000000012345678"), "{e}");
}

#[test]
fn banks_share_the_device_first_fit() {
    let rig = rig();
    let total = rig.fpga.device().slots();
    let a = Bank::create_on(&rig.fpga, "a", CreateOptions::new(total / 2)).unwrap();
    let b = Bank::create_on(&rig.fpga, "b", CreateOptions::new(total / 4).op(Op::Add)).unwrap();
    assert!(matches!(Bank::create_on(&rig.fpga, "a", CreateOptions::new(1)), Err(Error::Exists { .. })));
    let e = Bank::create_on(&rig.fpga, "c", CreateOptions::new(total / 2)).unwrap_err();
    assert!(matches!(e, Error::BadParams { .. }) && e.to_string().contains("free"), "{e}");
    assert!(matches!(
        Bank::create_on(&rig.fpga, "s", CreateOptions::new(4).shards(1)),
        Err(Error::BadParams { .. })
    ));
    a.accum(0, 5).unwrap();
    b.accum(0, 7).unwrap();
    assert_eq!((a.read(0).unwrap(), b.read(0).unwrap()), (5, 7));
    // Freed slots are reused, and a new bank there starts at identity.
    drop(a);
    atomik::backend::Backend::destroy(&rig.fpga, &atomik::BankName::new("a").unwrap()).unwrap();
    let c = Bank::create_on(&rig.fpga, "c", CreateOptions::new(total / 2)).unwrap();
    assert_eq!(c.read(0).unwrap(), 0);
    assert!(c.is_clean(0).unwrap());
    let names: Vec<String> =
        atomik::backend::Backend::list(&rig.fpga).unwrap().into_iter().map(|i| i.unwrap().name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let reopened = Bank::open_on(&rig.fpga, "b").unwrap();
    assert_eq!((reopened.op(), reopened.read(0).unwrap()), (Op::Add, 7));
}

#[test]
fn concurrent_accum_from_threads_counts_every_delta() {
    let rig = rig();
    let b = Bank::create_on(&rig.fpga, "ctr", CreateOptions::new(8).op(Op::Add)).unwrap();
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let b = &b;
            sc.spawn(move || {
                for i in 0..500u64 {
                    b.accum(i % 8, t + 1).unwrap();
                }
            });
        }
    });
    let total: u64 = b.read_all().iter().sum();
    assert_eq!(total, 500 * (1 + 2 + 3 + 4));
    assert_eq!(rig.fpga.device().accums().unwrap(), 2000);
}
