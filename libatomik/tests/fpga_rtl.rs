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

/// One RTL model seen through its own [`FpgaDevice`] by each opener, as separate processes
/// see one device: nothing of a device object (its locks) is shared, only the device and the
/// record directory. Each write gives other threads a turn, as a slow link does, so
/// interleavings between one opener's accesses come up in every run.
struct SharedModel(Arc<RtlModel>);
impl Mmio for SharedModel {
    fn location(&self) -> &Path {
        self.0.location()
    }
    fn read_words(&self, offset: u64, out: &mut [u64]) -> atomik::Result<()> {
        self.0.read_words(offset, out)
    }
    fn write_words(&self, offset: u64, words: &[u64]) -> atomik::Result<()> {
        let r = self.0.write_words(offset, words);
        std::thread::sleep(std::time::Duration::from_micros(20));
        r
    }
}

fn two_openers() -> (FpgaBackend, FpgaBackend, tempfile::TempDir) {
    let model = Arc::new(RtlModel::new().unwrap());
    let d = tempfile::tempdir().unwrap();
    let opener = || {
        let dev = FpgaDevice::probe(Box::new(SharedModel(model.clone()))).unwrap();
        FpgaBackend::new(Arc::new(dev), d.path().join("fpga"))
    };
    (opener(), opener(), d)
}

#[test]
fn a_destroyed_banks_slots_stay_its_own_until_its_last_handle_closes() {
    use atomik::backend::Backend;
    let (p, q, _d) = two_openers();
    let half = p.device().slots() / 2;
    let old = Bank::create_on(&p, "old", CreateOptions::new(half).op(Op::Add)).unwrap();
    old.accum(0, 5).unwrap();
    q.destroy(&atomik::BankName::new("old").unwrap()).unwrap();
    assert!(matches!(Bank::open_on(&q, "old"), Err(Error::NotFound { .. })));
    // The name is free at once; the slots are not while `old` is open.
    let new = Bank::create_on(&q, "old", CreateOptions::new(half).op(Op::Add)).unwrap();
    let e = Bank::create_on(&q, "third", CreateOptions::new(half)).unwrap_err();
    assert!(e.to_string().contains("free"), "the open handle's slots were handed out again: {e}");
    new.accum(0, 7).unwrap();
    old.accum(0, 1).unwrap();
    assert_eq!((old.read(0).unwrap(), new.read(0).unwrap()), (6, 7), "two banks share device slots");
    drop(old);
    // Its last handle closed, the destroyed bank's slots go to the next bank, at identity.
    let third = Bank::create_on(&p, "third", CreateOptions::new(half)).unwrap();
    assert_eq!(third.read(0).unwrap(), 0);
    let mut names: Vec<String> = p.list().unwrap().into_iter().map(|i| i.unwrap().name).collect();
    names.sort();
    assert_eq!(names, ["old", "third"]);
    assert_eq!(new.read(0).unwrap(), 7);
}

#[test]
fn swap_set_from_separate_openers_installs_each_ones_reference() {
    // SWAP_SET stages its reference in one device register: two openers that each serialised
    // only their own SWAP_SETs would install each other's references.
    let (p, q, _d) = two_openers();
    let a = Bank::create_on(&p, "a", CreateOptions::new(1).op(Op::Add)).unwrap();
    let b = Bank::create_on(&q, "b", CreateOptions::new(1).op(Op::Add)).unwrap();
    std::thread::scope(|sc| {
        for (bank, tag) in [(&a, 1u64 << 40), (&b, 2u64 << 40)] {
            sc.spawn(move || {
                for i in 0..2000u64 {
                    bank.swap_set(0, tag + i).unwrap();
                    assert_eq!(bank.read(0).unwrap(), tag + i, "SWAP_SET {i} of {}", bank.name());
                }
            });
        }
    });
}

#[test]
fn what_a_killed_create_or_destroy_leaves_is_freed_by_the_next_allocation() {
    let (p, _q, d) = two_openers();
    let half = p.device().slots() / 2;
    let dir = d.path().join("fpga");
    drop(Bank::create_on(&p, "probe", CreateOptions::new(1)).unwrap()); // makes the directory
    atomik::backend::Backend::destroy(&p, &atomik::BankName::new("probe").unwrap()).unwrap();
    // A destroy killed after its rename: a dead record nobody holds, claiming the first half.
    // A create killed before its link: a temporary record claiming the second.
    let rec = |base: u64| format!(r#"{{"base":{base},"slots":{half},"op":"xor"}}"#);
    std::fs::write(dir.join(".dead.gone.0"), rec(0)).unwrap();
    std::fs::write(dir.join(".tmp.half"), rec(half)).unwrap();
    let a = Bank::create_on(&p, "a", CreateOptions::new(half)).unwrap();
    let b = Bank::create_on(&p, "b", CreateOptions::new(half)).unwrap();
    assert!(a.info().location.to_string_lossy().ends_with(&format!("slots 0..{half}")), "{:?}", a.info());
    assert!(b.info().location.to_string_lossy().ends_with(&format!("slots {half}..{}", 2 * half)));
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dead.") || n.starts_with(".tmp."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
