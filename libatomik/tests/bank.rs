//! Bank operations through the public API, on whichever backend is selected
//! (`ATOMIK_BACKEND`): the same file runs on the userspace default and on `/dev/atomik`.

mod common;

use atomik::{Access, Bank, CreateOptions, Error, Op};
use common::{unique_name, TempBank};

#[test]
fn load_accum_read_swap() {
    for op in [Op::Xor, Op::Add] {
        let b = TempBank::new("ops", CreateOptions::new(8).op(op));
        assert_eq!(b.read(3).unwrap(), 0);
        b.load(3, 0xCAFE_BABE).unwrap();
        assert!(b.is_clean(3).unwrap());
        b.accum(3, 0x0000_FF00).unwrap();
        b.accum(3, 0x00FF_0000).unwrap();
        assert!(!b.is_clean(3).unwrap());
        let expected = op.fold(0xCAFE_BABE, [0x0000_FF00, 0x00FF_0000]);
        assert_eq!(b.read(3).unwrap(), expected);
        assert_eq!(b.swap(3).unwrap(), expected);
        assert!(b.is_clean(3).unwrap());
        assert_eq!(b.read(3).unwrap(), expected);
        b.accum(3, 77).unwrap();
        b.undo(3, 77).unwrap();
        assert!(b.is_clean(3).unwrap());
        // Other slots untouched.
        assert_eq!(b.read(2).unwrap(), 0);
    }
}

#[test]
fn seed_example_state_is_what_the_algebra_says() {
    // 0xCAFEBABE ⊕ 0x0000FF00 ⊕ 0x00FF0000 (the original's comment said 0xCAFF45BE: wrong).
    let b = TempBank::new("seed", CreateOptions::new(1));
    b.load(0, 0xCAFE_BABE).unwrap();
    b.accum(0, 0x0000_FF00).unwrap();
    b.accum(0, 0x00FF_0000).unwrap();
    assert_eq!(b.read(0).unwrap(), 0xCA01_45BE);
}

#[test]
fn state_is_shared_between_handles() {
    let b = TempBank::new("shared", CreateOptions::new(4).op(Op::Add));
    let other = Bank::open(b.name()).unwrap();
    b.accum(1, 5).unwrap();
    other.accum(1, 7).unwrap();
    assert_eq!(b.read(1).unwrap(), 12);
    assert_eq!(other.swap(1).unwrap(), 12);
    assert!(b.is_clean(1).unwrap());
    assert_eq!(other.op(), Op::Add);
    assert_eq!(other.slots(), 4);
}

#[test]
fn out_of_range_slot_is_an_error_naming_the_bank() {
    let b = TempBank::new("range", CreateOptions::new(4));
    for r in [b.read(4).map(|_| ()), b.accum(4, 1), b.load(99, 1), b.swap(u64::MAX).map(|_| ())] {
        match r {
            Err(Error::SlotOutOfRange { bank, slots: 4, .. }) => assert_eq!(bank, b.name()),
            other => panic!("expected SlotOutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn a_batch_with_one_bad_slot_changes_nothing() {
    let b = TempBank::new("batch", CreateOptions::new(4).op(Op::Add));
    let err = b.accum_batch(&[(0, 1), (1, 2), (4, 3)]).unwrap_err();
    assert!(matches!(err, Error::SlotOutOfRange { slot: 4, .. }), "{err}");
    assert_eq!(b.read_all(), vec![0, 0, 0, 0]);
    b.accum_batch(&[(0, 1), (1, 2), (0, 3)]).unwrap();
    assert_eq!(b.read_all(), vec![4, 2, 0, 0]);
    b.accum_dense(1, &[10, 20, 30]).unwrap();
    assert_eq!(b.read_all(), vec![4, 12, 20, 30]);
    assert!(b.accum_dense(2, &[1, 1, 1]).is_err());
    let mut out = [0u64; 2];
    b.read_range(2, &mut out).unwrap();
    assert_eq!(out, [20, 30]);
    assert_eq!(b.swap_all().unwrap(), vec![4, 12, 20, 30]);
    b.load_batch(&[(0, 9), (3, 8)]).unwrap();
    assert_eq!(b.read_all(), vec![9, 12, 20, 8]);
}

#[test]
fn create_rejects_taken_names_and_bad_parameters() {
    let b = TempBank::new("dup", CreateOptions::new(2));
    assert!(matches!(Bank::create(b.name(), CreateOptions::new(2)), Err(Error::Exists { .. })));
    let name = unique_name("bad");
    assert!(matches!(Bank::create(&name, CreateOptions::new(0)), Err(Error::BadParams { .. })));
    assert!(matches!(Bank::create("../escape", CreateOptions::new(1)), Err(Error::BadName { .. })));
    assert!(matches!(Bank::open(&name), Err(Error::NotFound { .. })));
    assert!(matches!(Bank::destroy(&name), Err(Error::NotFound { .. })));
}

#[test]
fn destroy_removes_the_bank_and_list_shows_it_until_then() {
    let name = unique_name("list");
    let b = Bank::create(&name, common::test_options(CreateOptions::new(3).op(Op::Add).mode(0o640))).unwrap();
    let listed: Vec<_> = Bank::list().unwrap().into_iter().filter_map(|r| r.ok()).collect();
    let me = listed.iter().find(|i| i.name == name).expect("bank listed");
    assert_eq!((me.slots, me.op, me.mode), (3, Op::Add, 0o640));
    b.accum(0, 1).unwrap();
    Bank::destroy(&name).unwrap();
    assert!(matches!(Bank::open(&name), Err(Error::NotFound { .. })));
    // A handle made before destruction keeps working on its own memory.
    b.accum(0, 1).unwrap();
    assert_eq!(b.read(0).unwrap(), 2);
}

#[test]
fn read_only_handles_refuse_writes() {
    let b = TempBank::new("ro", CreateOptions::new(2));
    b.load(0, 42).unwrap();
    let ro = Bank::open_with(b.name(), Access::ReadOnly).unwrap();
    assert!(!ro.writable());
    assert_eq!(ro.read(0).unwrap(), 42);
    for r in [ro.accum(0, 1), ro.load(0, 1), ro.swap(0).map(|_| ())] {
        assert!(matches!(r, Err(Error::ReadOnly { .. })), "{r:?}");
    }
    assert_eq!(b.read(0).unwrap(), 42);
}
