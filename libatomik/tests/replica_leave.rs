//! Retiring a replica (`atomikctl sync leave`): its column is adopted by one peer, every
//! replica drops it, and no acknowledged ACCUM is lost or doubled — also when the adopter
//! crashes at either adoption crash point, and after every mirror restarts. A ledger of every
//! ACCUM made into any bank is compared with the banks; a crash is the mirror stopped at the
//! point and dropped (what survives is what survives `kill -9`).

mod common;

use std::path::PathBuf;

use atomik::replica::mirror::{Adopted, CrashPoint, Mirror, MirrorError, MirrorOptions};
use atomik::replica::{Message, Op};
use atomik::{Bank, CreateOptions};

const A: usize = 0; // the adopter
const L: usize = 1; // the replica that leaves
const C: usize = 2; // a third replica that only hears of the leave

struct Side {
    name: String,
    data: PathBuf,
    mirror: Option<Mirror>,
}

struct Cluster {
    op: Op,
    slots: u64,
    sides: Vec<Side>,
    ledger: Vec<u64>,
    rng: u64,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn new(tag: &str, op: Op, slots: u64) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let sides: Vec<Side> = (0..3)
            .map(|k| Side {
                name: common::unique_name(&format!("{tag}{k}")),
                data: dir.path().join(format!("r{k}")),
                mirror: None,
            })
            .collect();
        for s in &sides {
            Bank::create(&s.name, CreateOptions::new(slots).op(op)).unwrap();
        }
        let mut c = Cluster {
            op,
            slots,
            sides,
            ledger: vec![op.identity(); slots as usize],
            rng: 0x2545_f491_4f6c_dd1d,
            _dir: dir,
        };
        for k in 0..3 {
            c.open(k, None).unwrap();
        }
        c
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// `n` acknowledged ACCUMs into side `k`'s bank; counted in the ledger when `counted`.
    fn produce(&mut self, k: usize, n: usize, counted: bool) {
        let bank = Bank::open(&self.sides[k].name).unwrap();
        for _ in 0..n {
            let slot = self.next() % self.slots;
            let d = match self.op {
                Op::Add => self.next() % 1000,
                Op::Xor => self.next(),
            };
            bank.accum(slot, d).unwrap();
            if counted {
                self.ledger[slot as usize] = self.op.combine(self.ledger[slot as usize], d);
            }
        }
    }

    fn open(&mut self, k: usize, crash: Option<CrashPoint>) -> Result<(), MirrorError> {
        let s = &mut self.sides[k];
        s.mirror = None;
        let mut o = MirrorOptions::new(&s.name, &s.data);
        o.crash = crash;
        s.mirror = Some(Mirror::open(&o)?);
        Ok(())
    }

    fn mirror(&mut self, k: usize) -> &mut Mirror {
        self.sides[k].mirror.as_mut().expect("side runs")
    }

    /// Every running side takes its changes, then full anti-entropy between running sides.
    fn round(&mut self) {
        for s in &mut self.sides {
            if let Some(m) = s.mirror.as_mut() {
                m.take().unwrap();
            }
        }
        let op = self.op;
        for src in 0..3 {
            for dst in 0..3 {
                if src == dst || self.sides[src].mirror.is_none() || self.sides[dst].mirror.is_none() {
                    continue;
                }
                let peer = self.sides[dst].mirror.as_ref().unwrap().replica().versions();
                let deltas = self.sides[src].mirror.as_ref().unwrap().replica().missing_for(&peer);
                if !deltas.is_empty() {
                    self.mirror(dst).join(&Message::Deltas { op, deltas }).unwrap();
                }
            }
        }
    }

    fn check(&self, k: usize, what: &str) {
        let state = Bank::open(&self.sides[k].name).unwrap().read_all();
        let wrong: Vec<_> =
            (0..self.slots as usize).filter(|&i| state[i] != self.ledger[i]).take(5).collect();
        assert!(
            wrong.is_empty(),
            "{what}: bank {} differs from the ledger at slots {wrong:?}: {:?} vs {:?}",
            self.sides[k].name,
            wrong.iter().map(|&i| state[i]).collect::<Vec<_>>(),
            wrong.iter().map(|&i| self.ledger[i]).collect::<Vec<_>>()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &mut self.sides {
            s.mirror = None;
            let _ = Bank::destroy(&s.name);
        }
    }
}

#[test]
fn an_adopted_replica_is_dropped_everywhere_and_nothing_is_lost_or_doubled() {
    for op in [Op::Add, Op::Xor] {
        for crash in [None, Some(CrashPoint::AdoptRecorded), Some(CrashPoint::AdoptAfterLog)] {
            let what = format!("{op:?}, adopter crash at {:?}", crash.map(CrashPoint::name));
            let mut c = Cluster::new("lv", op, 600);
            for _ in 0..3 {
                for k in 0..3 {
                    c.produce(k, 40, true);
                }
                c.round();
            }
            // L's last changes reach A; C lags behind on them (it hears of L only through A's
            // adopting delta), and A and C have untaken local changes when A adopts.
            c.produce(L, 30, true);
            c.mirror(L).take().unwrap();
            let (l_id, l_version) = (c.mirror(L).replica().id(), c.mirror(L).replica().version());
            let peer = c.mirror(A).replica().versions();
            let deltas = c.mirror(L).replica().missing_for(&peer);
            c.mirror(A).join(&Message::Deltas { op, deltas }).unwrap();
            c.sides[L].mirror = None;
            c.produce(L, 25, false); // after the leave: stays in L's bank alone
            c.produce(A, 20, true);
            c.produce(C, 20, true);

            c.open(A, crash).unwrap();
            match c.mirror(A).adopt(l_id, l_version) {
                Err(MirrorError::Crashed(p)) => assert_eq!(Some(p), crash, "{what}"),
                Ok(Adopted::Now(d)) => assert!(crash.is_none(), "{what}: no crash: {d:?}"),
                other => panic!("{what}: {other:?}"),
            }
            // The leaving replica asks again (it does until it gets an answer).
            c.open(A, None).unwrap();
            let again = c.mirror(A).adopt(l_id, l_version).unwrap();
            match crash {
                Some(CrashPoint::AdoptRecorded) => {
                    assert!(matches!(again, Adopted::Now(_)), "{what}: {again:?}")
                }
                _ => assert_eq!(again, Adopted::Already(l_version), "{what}"),
            }
            for _ in 0..3 {
                c.produce(A, 15, true);
                c.produce(C, 15, true);
                c.round();
            }
            for k in [A, C] {
                let r = c.mirror(k).replica();
                assert_eq!(r.retired_at(l_id), Some(l_version), "{what}: side {k} keeps a tombstone");
                assert!(r.acc_of(l_id).is_none(), "{what}: side {k} still holds a column of the leaver");
                assert_eq!(r.origin_count(), 2, "{what}: side {k}");
                c.check(k, &what);
            }
            // Every restart is exact too: the base absorbed the adoption, so nothing is seen
            // as a local change that was not made.
            for k in [A, C] {
                c.open(k, None).unwrap();
                assert!(c.mirror(k).take().unwrap().is_none(), "{what}: side {k} took a phantom change");
                c.check(k, &format!("{what}, after a restart"));
            }
            c.produce(A, 10, true);
            c.round();
            c.round();
            c.check(C, &format!("{what}, a change after the restarts"));
        }
    }
}

#[test]
fn only_the_final_version_is_adopted() {
    let mut c = Cluster::new("lf", Op::Add, 64);
    c.produce(L, 10, true);
    c.round();
    c.produce(L, 10, true);
    c.mirror(L).take().unwrap();
    let (l_id, v) = (c.mirror(L).replica().id(), c.mirror(L).replica().version());
    // A holds v - 1: it must wait for the rest.
    assert_eq!(c.mirror(A).adopt(l_id, v).unwrap(), Adopted::NotYet { have: v - 1 });
    // A final version below what A holds is not final.
    assert!(matches!(c.mirror(A).adopt(l_id, v - 2), Err(MirrorError::Replica(_))));
    // A replica cannot adopt itself.
    let a_id = c.mirror(A).replica().id();
    assert!(matches!(c.mirror(A).adopt(a_id, 1), Err(MirrorError::Replica(_))));
    c.round();
    assert!(matches!(c.mirror(A).adopt(l_id, v).unwrap(), Adopted::Now(_)));
    c.sides[L].mirror = None;
    c.round();
    for k in [A, C] {
        c.check(k, "after adopting the final version");
    }
}
