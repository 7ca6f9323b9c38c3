//! Writer-private shards: dense batches fold into READ and SWAP exactly once.

mod common;

use atomik::{CreateOptions, Error, Op};
use common::TempBank;

#[test]
fn shard_deltas_show_in_read_and_fold_exactly_once_in_swap() {
    for op in [Op::Xor, Op::Add] {
        let b = TempBank::new("shard", CreateOptions::new(8).op(op).shards(2));
        b.load(1, 100).unwrap();
        let mut w = b.shard_writer().unwrap();
        w.accum_dense(0, &[1, 2, 3]).unwrap();
        b.accum(1, 5).unwrap();
        let s1 = op.fold(100, [2, 5]);
        assert_eq!(b.read(1).unwrap(), s1);
        assert!(!b.is_clean(1).unwrap());
        assert_eq!(b.swap(1).unwrap(), s1);
        assert!(b.is_clean(1).unwrap());
        assert_eq!(b.read(1).unwrap(), s1, "swap must not count shard deltas twice");
        w.accum_dense(1, &[7]).unwrap();
        assert_eq!(b.read(1).unwrap(), op.combine(s1, 7));
        b.load(2, 9).unwrap();
        assert_eq!(b.read(2).unwrap(), 9, "load discards accumulated shard deltas");
        assert!(w.accum_dense(7, &[1, 1]).is_err());
    }
}

#[test]
fn leases_are_exclusive_and_returned_on_drop() {
    let b = TempBank::new("lease", CreateOptions::new(4).shards(2));
    let w1 = b.shard_writer().unwrap();
    let w2 = b.shard_writer().unwrap();
    assert_ne!(w1.shard(), w2.shard());
    assert!(matches!(b.shard_writer(), Err(Error::NoFreeShard { shards: 2, .. })));
    drop(w1);
    assert!(b.shard_writer().is_ok());
    let none = TempBank::new("noshard", CreateOptions::new(4));
    assert!(matches!(none.shard_writer(), Err(Error::NoFreeShard { shards: 0, .. })));
}
