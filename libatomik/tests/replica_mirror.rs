//! The bank ↔ replica mirror under crashes at every crash point, bank loss (reboot) and
//! directory loss: a ledger of every ACCUM made into either bank (also while its mirror is
//! down) must equal both banks after they converge — ADD by sum, XOR exactly. A crash is
//! simulated by stopping the mirror at the point and dropping it: what survives is exactly
//! what survives a `kill -9` (the bank in shared memory and the fsynced directory).

mod common;

use std::path::PathBuf;

use atomik::replica::mirror::{CrashPoint, Mirror, MirrorError, MirrorOptions, Start};
use atomik::replica::{Message, Op};
use atomik::{Bank, CreateOptions};

struct Side {
    name: String,
    data: PathBuf,
    mirror: Option<Mirror>,
}

struct World {
    op: Op,
    slots: u64,
    sides: [Side; 2],
    ledger: Vec<u64>,
    rng: u64,
    _dir: tempfile::TempDir,
}

impl World {
    fn new(tag: &str, op: Op, slots: u64) -> World {
        let dir = tempfile::tempdir().unwrap();
        let side = |k: usize| Side {
            name: common::unique_name(&format!("{tag}{k}")),
            data: dir.path().join(format!("r{k}")),
            mirror: None,
        };
        let sides = [side(0), side(1)];
        for s in &sides {
            Bank::create(&s.name, CreateOptions::new(slots).op(op)).unwrap();
        }
        World {
            op,
            slots,
            sides,
            ledger: vec![op.identity(); slots as usize],
            rng: 0x9e37_79b9_7f4a_7c15,
            _dir: dir,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A producer's ACCUM into side `k`'s bank; it is acknowledged when it returns.
    fn produce(&mut self, k: usize, n: usize) {
        let bank = Bank::open(&self.sides[k].name).unwrap();
        for _ in 0..n {
            let slot = self.next() % self.slots;
            let d = match self.op {
                Op::Add => self.next() % 1000,
                Op::Xor => self.next(),
            };
            bank.accum(slot, d).unwrap();
            self.ledger[slot as usize] = self.op.combine(self.ledger[slot as usize], d);
        }
    }

    fn open(&mut self, k: usize, crash: Option<CrashPoint>, recover: bool) -> Result<Start, MirrorError> {
        let s = &mut self.sides[k];
        s.mirror = None; // the old one's lock on the directory goes first
        let mut o = MirrorOptions::new(&s.name, &s.data);
        o.crash = crash;
        o.recover = recover;
        let m = Mirror::open(&o)?;
        let start = m.start();
        s.mirror = Some(m);
        Ok(start)
    }

    /// Side `k` takes its local changes and sends them to the other side (if it runs).
    fn tick(&mut self, k: usize) -> Result<(), MirrorError> {
        let op = self.op;
        let Some(m) = self.sides[k].mirror.as_mut() else { return Ok(()) };
        let r = m.take();
        if r.is_err() {
            self.sides[k].mirror = None; // crashed
        }
        if let Some(d) = r? {
            if let Some(peer) = self.sides[1 - k].mirror.as_mut() {
                let msg = Message::Deltas { op, deltas: vec![d] };
                if peer.join(&msg).is_err() {
                    self.sides[1 - k].mirror = None;
                }
            }
        }
        Ok(())
    }

    /// Full anti-entropy in both directions between running sides.
    fn exchange(&mut self) {
        let op = self.op;
        for k in 0..2 {
            let [a, b] = &mut self.sides;
            let (src, dst) = if k == 0 { (a, b) } else { (b, a) };
            let (Some(src), Some(dst)) = (src.mirror.as_mut(), dst.mirror.as_mut()) else { continue };
            let deltas = src.replica().missing_for(&dst.replica().versions());
            if !deltas.is_empty() {
                dst.join(&Message::Deltas { op, deltas }).unwrap();
            }
        }
    }

    /// Restarts both sides unarmed and exchanges until they converge.
    fn settle(&mut self) {
        for k in 0..2 {
            self.open(k, None, false).unwrap();
        }
        for _ in 0..3 {
            self.tick(0).unwrap();
            self.tick(1).unwrap();
            self.exchange();
        }
    }

    fn check(&self, what: &str) {
        for s in &self.sides {
            let bank = Bank::open(&s.name).unwrap();
            let state = bank.read_all();
            let wrong: Vec<_> =
                (0..self.slots as usize).filter(|&i| state[i] != self.ledger[i]).take(5).collect();
            assert!(
                wrong.is_empty(),
                "{what}: bank {} differs from the ledger at slots {wrong:?}: {:?} vs {:?}",
                s.name,
                wrong.iter().map(|&i| state[i]).collect::<Vec<_>>(),
                wrong.iter().map(|&i| self.ledger[i]).collect::<Vec<_>>()
            );
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for s in &mut self.sides {
            s.mirror = None;
            let _ = Bank::destroy(&s.name);
        }
    }
}

/// Before any daemon: content LOADed and ACCUMed into a bank is adopted as local change.
fn seed(w: &mut World) {
    let bank = Bank::open(&w.sides[0].name).unwrap();
    for i in 0..w.slots.min(5) {
        bank.load(i, 100 + i).unwrap();
        w.ledger[i as usize] = 100 + i;
    }
    w.produce(0, 20);
    w.produce(1, 20);
}

#[test]
fn every_crash_point_at_start_and_while_running_loses_nothing() {
    for op in [Op::Add, Op::Xor] {
        for point in CrashPoint::ALL {
            let what = format!("{op:?} crash at {}", point.name());
            // 600 slots: two cards, and half-way points land inside the work.
            let mut w = World::new("mc", op, 600);
            seed(&mut w);
            // A crash while adopting, then a clean start.
            match w.open(0, Some(point), false) {
                Err(MirrorError::Crashed(p)) => assert_eq!(p, point),
                Ok(_) => {}
                Err(e) => panic!("{what}: {e}"),
            }
            w.produce(0, 10);
            w.settle();
            w.check(&format!("{what}, after adopting"));
            // A crash while running: the point is armed on a restarted mirror, traffic flows
            // both ways until it fires.
            w.sides[0].mirror = None;
            let _ = w.open(0, Some(point), false);
            for _ in 0..6 {
                w.produce(0, 30);
                w.produce(1, 30);
                let _ = w.tick(0);
                let _ = w.tick(1);
                let _ = w.tick(1); // side 1's deltas reach side 0's join path
                if w.sides[0].mirror.is_none() {
                    // Down: producers keep going, then it restarts (also armed: a crash
                    // during recovery).
                    w.produce(0, 25);
                    let _ = w.open(0, Some(point), false);
                }
            }
            w.produce(0, 10);
            w.settle();
            w.check(&what);
        }
    }
}

#[test]
fn a_lost_bank_is_rebuilt_from_the_replica_without_negating_anything() {
    for op in [Op::Add, Op::Xor] {
        let mut w = World::new("mb", op, 64);
        seed(&mut w);
        w.settle();
        w.produce(0, 40);
        w.produce(1, 40);
        w.settle();
        // Clean stop, then a reboot empties /dev/shm.
        w.sides[0].mirror = None;
        Bank::destroy(&w.sides[0].name).unwrap();
        // The daemon recreates it from the replica (no --slots needed), with a crash during
        // the rebuild first.
        assert!(matches!(w.open(0, Some(CrashPoint::BindingRefHalf), false), Err(MirrorError::Crashed(_))));
        w.produce(0, 15); // producers on the rebuilt bank before the daemon is back
        assert_eq!(w.open(0, None, false).unwrap(), Start::Rebuilt);
        w.produce(0, 15);
        w.settle();
        w.check(&format!("{op:?} rebuilt"));
        // Taken, then a kill -9 (no clean stop) and a lost bank: the same.
        w.produce(0, 20);
        w.tick(0).unwrap();
        w.sides[0].mirror = None;
        Bank::destroy(&w.sides[0].name).unwrap();
        assert_eq!(w.open(0, None, false).unwrap(), Start::Rebuilt);
        w.settle();
        w.check(&format!("{op:?} killed, then rebuilt"));
    }
}

#[test]
fn a_lost_directory_is_refused_then_recovered_keeping_untaken_changes() {
    for op in [Op::Add, Op::Xor] {
        let mut w = World::new("md", op, 64);
        seed(&mut w);
        w.settle();
        w.produce(0, 30);
        w.produce(1, 30);
        w.settle(); // side 0's deltas are on side 1
        w.sides[0].mirror = None;
        w.produce(0, 25); // while side 0's daemon is down: untaken
        std::fs::remove_dir_all(&w.sides[0].data).unwrap();
        match w.open(0, None, false) {
            Err(e @ MirrorError::DirectoryLost { .. }) => {
                assert!(e.to_string().contains("atomikctl sync recover"), "{e}")
            }
            other => panic!("a lost directory must be refused, got {:?}", other.map(|_| ())),
        }
        // LOAD/SWAP on the still-bound bank are refused, not silently diverging.
        let bank = Bank::open(&w.sides[0].name).unwrap();
        assert!(matches!(bank.load(0, 1), Err(atomik::Error::Replicated { .. })));
        assert!(matches!(bank.swap(0), Err(atomik::Error::Replicated { .. })));
        // Recovery, with a crash half-way through it first.
        assert!(matches!(w.open(0, Some(CrashPoint::BindingRefHalf), true), Err(MirrorError::Crashed(_))));
        assert_eq!(w.open(0, None, true).unwrap(), Start::Recovered);
        w.produce(0, 10);
        w.settle();
        w.check(&format!("{op:?} recovered"));
        // Recovering again is refused: nothing to recover.
        w.sides[0].mirror = None;
        assert!(matches!(w.open(0, None, true), Err(MirrorError::NothingToRecover { .. })));
    }
}

#[test]
fn a_directory_of_another_replica_is_refused() {
    let mut w = World::new("mm", Op::Add, 16);
    w.settle();
    w.sides[0].mirror = None;
    w.sides[1].mirror = None;
    // Side 0's bank with side 1's directory.
    let mut o = MirrorOptions::new(&w.sides[0].name, &w.sides[1].data);
    o.crash = None;
    assert!(matches!(Mirror::open(&o), Err(MirrorError::Mismatch { .. })));
}

#[test]
fn a_message_with_one_bad_delta_changes_nothing() {
    use atomik::replica::Delta;
    let mut w = World::new("mx", Op::Add, 16);
    w.settle();
    let good = Delta { origin: 77, from: 0, to: 1, replace: false, slots: vec![(3, 5)], retired: vec![] };
    let bad = Delta { origin: 78, from: 0, to: 1, replace: false, slots: vec![(99, 1)], retired: vec![] };
    let m = w.sides[0].mirror.as_mut().unwrap();
    let msg = Message::Deltas { op: Op::Add, deltas: vec![good.clone(), bad] };
    assert!(matches!(m.join(&msg), Err(MirrorError::Replica(_))));
    assert_eq!(m.replica().version_of(77), 0, "the good delta of a refused message was joined");
    // Sent again alone it joins, logged and mirrored, and survives a restart.
    m.join(&Message::Deltas { op: Op::Add, deltas: vec![good] }).unwrap();
    w.ledger[3] += 5;
    w.settle();
    w.check("after a refused message");
}
