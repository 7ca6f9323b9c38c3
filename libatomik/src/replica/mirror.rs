//! The boundary between a bank and its replica: what a sync daemon does to keep the bank,
//! the replica directory and the peers in agreement, whatever instruction a crash lands on.
//!
//! # Invariants (per slot `i`, operator `∘`)
//!
//! - `acc[i]` holds every local ACCUM; only producers write it.
//! - `taken[i]` (in the bank) is the part of `acc[i]` already turned into replica deltas, so
//!   `acc[i] ∘ taken[i]⁻¹` is exactly the local change not yet taken. Durably,
//!   `taken[i] = base[i] ∘ own[i]`: `base` from the [`Binding`] file, `own` the replica's own
//!   committed accumulator (snapshot + log).
//! - `ref[i] = R[i] ∘ taken[i]⁻¹`, `R` the replica's converged state. Then
//!   `READ = ref ∘ acc = R ∘ (acc ∘ taken⁻¹)`: the replicated state plus the local change not
//!   yet taken — exactly what was acknowledged, at every instant.
//!
//! `taken` and `ref` are written only here, by plain stores (`ref` under the slot's seqlock),
//! and after a crash both are recomputed from the durable replica ([`Mirror::open`]): the bank
//! never has to be trusted beyond `acc` and the binding in its header.
//!
//! # Why each crash point is safe
//!
//! | crash point | state left | on restart |
//! |---|---|---|
//! | taking: after `taken` stores, before the log fsync | `taken` ahead of the log | `taken` reset from the log: the change is untaken again and taken anew |
//! | taking: after the log fsync | delta durable, maybe not sent | sent by anti-entropy (the version is never reused) |
//! | joining: after the log fsync, before/among `ref` stores | `ref` behind `R` | `ref` set from the log |
//! | applying a binding: among `taken`/`ref` stores | partly applied | the same binding applied again (plain stores of values from the files) |
//! | applying a binding: before the header is bound / before the file says bound | `pending` binding | applied again, then completed |
//! | adopting: after the binding records the adoption, before its delta is logged | adoption recorded, own version unchanged | dropped: the adoption never happened (the leaving replica asks again) |
//! | adopting: after the delta is logged, before the base absorbs it | adoption recorded, own version reached | folded into the base (`taken` unchanged, see [`Binding`]) |
//!
//! A delta is taken only after it is durable in the log of no one, and logged before it is
//! sent; a remote delta is logged before it changes the bank. Nothing is ever added to `acc`
//! by the daemon, so nothing it does can double or negate a producer's ACCUM.

use std::path::{Path, PathBuf};

use super::binding::Binding;
use super::model::{Config, Joined, Replica, ReplicaError};
use super::op::Op;
use super::persist::{random_id, PersistError, Store};
use super::wire::{Delta, Message};
use crate::{Bank, CreateOptions};

/// A named point where a test (or `ATOMIK_SYNC_CRASH_AT`) stops the mirror as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The binding file is written (pending), nothing applied.
    BindingStored,
    /// Half of the `taken` words of a binding are written.
    BindingTakenHalf,
    /// Half of the references of a binding are written.
    BindingRefHalf,
    /// The binding is applied, the bank header not yet bound.
    BindingBeforeHeader,
    /// The bank header is bound, the binding file still says pending.
    BindingBeforeDone,
    /// Local changes are recorded in `taken`, not yet logged.
    TakeBeforeLog,
    /// The local delta is logged.
    TakeAfterLog,
    /// A remote message is logged, the bank not yet changed.
    JoinBeforeBank,
    /// A remote message is logged and half of its slots are in the bank.
    JoinBankHalf,
    /// An adoption is recorded in the binding file, its delta not yet logged.
    AdoptRecorded,
    /// The adopting delta is logged, the base not yet updated.
    AdoptAfterLog,
}

impl CrashPoint {
    /// Every crash point, for tests that try them all.
    pub const ALL: [CrashPoint; 11] = [
        CrashPoint::BindingStored,
        CrashPoint::BindingTakenHalf,
        CrashPoint::BindingRefHalf,
        CrashPoint::BindingBeforeHeader,
        CrashPoint::BindingBeforeDone,
        CrashPoint::TakeBeforeLog,
        CrashPoint::TakeAfterLog,
        CrashPoint::JoinBeforeBank,
        CrashPoint::JoinBankHalf,
        CrashPoint::AdoptRecorded,
        CrashPoint::AdoptAfterLog,
    ];

    /// Kebab-case name, as `ATOMIK_SYNC_CRASH_AT` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::BindingStored => "binding-stored",
            CrashPoint::BindingTakenHalf => "binding-taken-half",
            CrashPoint::BindingRefHalf => "binding-ref-half",
            CrashPoint::BindingBeforeHeader => "binding-before-header",
            CrashPoint::BindingBeforeDone => "binding-before-done",
            CrashPoint::TakeBeforeLog => "take-before-log",
            CrashPoint::TakeAfterLog => "take-after-log",
            CrashPoint::JoinBeforeBank => "join-before-bank",
            CrashPoint::JoinBankHalf => "join-bank-half",
            CrashPoint::AdoptRecorded => "adopt-recorded",
            CrashPoint::AdoptAfterLog => "adopt-after-log",
        }
    }

    /// The point named `s`.
    pub fn parse(s: &str) -> Option<CrashPoint> {
        CrashPoint::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// Environment variable: the daemon SIGKILLs itself at this crash point (for process tests).
pub const ENV_CRASH_AT: &str = "ATOMIK_SYNC_CRASH_AT";

/// Errors of the mirror, each naming the bank and directory concerned.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Bank(#[from] crate::Error),
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(
        "bank {bank:?} does not exist and {data} holds no replica: give --slots (and --op) to create it"
    )]
    NoBank { bank: String, data: PathBuf },
    #[error("bank {bank:?} has {slots} slots: replication supports 1 to {max}")]
    BadWidth { bank: String, slots: u64, max: u64 },
    #[error("bank {bank:?} has {shards} writer shards: replicated banks must have none")]
    Shards { bank: String, shards: u32 },
    #[error(
        "bank {bank:?} is bound to replica {origin:016x} (incarnation {incarnation:016x}), but {data} holds \
         no replica of it: the replica directory was lost. To rebuild it from the peers, keeping the \
         bank's local changes not yet replicated, run: atomikctl sync recover --bank {bank} --data {data}"
    )]
    DirectoryLost { bank: String, data: PathBuf, origin: u64, incarnation: u64 },
    #[error(
        "bank {bank:?} is bound to incarnation {bank_incarnation:016x} (replica {bank_origin:016x}) but {data} \
         holds incarnation {dir_incarnation:016x} (replica {dir_origin:016x}): they belong to different \
         replicas; point --data at this bank's own replica directory"
    )]
    Mismatch {
        bank: String,
        data: PathBuf,
        bank_incarnation: u64,
        bank_origin: u64,
        dir_incarnation: u64,
        dir_origin: u64,
    },
    #[error(
        "{data} holds replica state but no binding file (made by an older atomik): move it away to start \
         a new replica"
    )]
    Unbound { data: PathBuf },
    #[error(
        "{data} is the directory of replica {origin:016x}, which left the cluster (adopted by replica \
         {adopter:016x} at version {version}): it no longer replicates bank {bank:?}. To replicate the bank \
         again, keeping its changes since then, run: atomikctl sync recover --bank {bank} --data NEW_EMPTY_DIR"
    )]
    Left { bank: String, data: PathBuf, origin: u64, adopter: u64, version: u64 },
    #[error(
        "{data}: this replica asked replica {adopter:016x} to adopt it and may be retired already: it \
         must not replicate bank {bank:?} any more. Finish with: atomikctl sync leave --bank {bank} --data {data} \
         (naming the same adopter)"
    )]
    Leaving { bank: String, data: PathBuf, adopter: u64 },
    #[error("nothing to recover: {what}")]
    NothingToRecover { what: String },
    #[error("stopped at crash point {}", .0.name())]
    Crashed(CrashPoint),
}

/// How to open a mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Bank name.
    pub bank: String,
    /// Replica directory.
    pub data: PathBuf,
    /// Slots and operator to create the bank with when neither it nor a replica exists.
    pub create: Option<(u64, Op)>,
    /// Rebind a bank whose replica directory was lost (`atomikctl sync recover`).
    pub recover: bool,
    /// Stop (as by a crash) at this point: in-process tests.
    pub crash: Option<CrashPoint>,
    /// Most live origins the replica holds ([`Config::max_origins`]).
    pub max_origins: usize,
    /// Opened by `atomikctl sync leave`, which may resume an interrupted leave.
    pub leaving: bool,
}

impl MirrorOptions {
    /// Mirror `bank` with replica directory `data`.
    pub fn new(bank: impl Into<String>, data: impl Into<PathBuf>) -> MirrorOptions {
        MirrorOptions {
            bank: bank.into(),
            data: data.into(),
            create: None,
            recover: false,
            crash: None,
            max_origins: Config::new(1, Op::Xor).max_origins,
            leaving: false,
        }
    }
}

/// How [`Mirror::open`] found the bank and the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A bank never replicated before: its whole content becomes local changes.
    Adopted,
    /// Bank and directory of the same incarnation: restarted exactly.
    Resumed,
    /// The bank was lost (reboot) and rebuilt from the replica.
    Rebuilt,
    /// The directory was lost; rebound keeping the bank's untaken changes.
    Recovered,
}

/// A bank mirrored by a replica, kept durable in a directory.
pub struct Mirror {
    bank: Bank,
    replica: Replica,
    store: Store,
    data: PathBuf,
    /// `R` as reflected in the bank: `ref[i] = mirrored[i] ∘ taken[i]⁻¹`.
    mirrored: Vec<u64>,
    /// Scan every slot at the next take (after a start: cards may have been cleared by a
    /// daemon that died before reading their slots).
    full_scan: bool,
    crash: Option<CrashPoint>,
    start: Start,
    /// The binding in force (kept to record adoptions).
    binding: Binding,
}

/// What [`Mirror::adopt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// The origin's accumulator is now in this replica's own column: the delta that carries
    /// it and the retirement record, durable, ready to send.
    Now(Delta),
    /// The origin was already retired here (at this final version).
    Already(u64),
    /// This replica holds an earlier version of the origin: send the rest first.
    NotYet { have: u64 },
}

/// Largest bank a replica can mirror: a snapshot must fit one wire frame.
pub const MAX_WIDTH: u64 = (super::wire::MAX_FRAME / 9) as u64;

impl Mirror {
    /// Opens the bank (creating it when it and the replica are missing, rebuilding it when
    /// only the replica survives), opens the replica directory, and makes the two agree.
    pub fn open(opts: &MirrorOptions) -> Result<Mirror, MirrorError> {
        if let Some(left) = super::leave::Left::load(&opts.data)? {
            return Err(MirrorError::Left {
                bank: opts.bank.clone(),
                data: opts.data.clone(),
                origin: left.origin,
                adopter: left.adopter,
                version: left.version,
            });
        }
        if let Some(adopter) = super::leave::asked_adopter(&opts.data)?.filter(|_| !opts.leaving) {
            return Err(MirrorError::Leaving { bank: opts.bank.clone(), data: opts.data.clone(), adopter });
        }
        let peek = Store::peek(&opts.data)?;
        let bank = match Bank::open(&opts.bank) {
            Ok(b) => b,
            Err(crate::Error::NotFound { .. }) => {
                let (slots, op) = match (peek, opts.create) {
                    (Some((w, op)), _) => (u64::from(w), op),
                    (None, Some(c)) => c,
                    (None, None) => {
                        return Err(MirrorError::NoBank { bank: opts.bank.clone(), data: opts.data.clone() })
                    }
                };
                match Bank::create(&opts.bank, CreateOptions::new(slots).op(op)) {
                    Ok(b) => b,
                    Err(crate::Error::Exists { .. }) => Bank::open(&opts.bank)?,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        // Replication lives in the mapped layout (references, taken words, cards); a bank on
        // an FPGA has none.
        if bank.mapped().is_none() {
            let reason = format!(
                "bank {:?} is on an FPGA; replication needs a mapped bank (soft or /dev/atomik)",
                opts.bank
            );
            return Err(crate::Error::BackendUnavailable { backend: "fpga", reason }.into());
        }
        let slots = bank.slots();
        let width = u32::try_from(slots)
            .ok()
            .filter(|&w| u64::from(w) <= MAX_WIDTH)
            .ok_or(MirrorError::BadWidth { bank: opts.bank.clone(), slots, max: MAX_WIDTH })?;
        let shards = bank.memory().layout().shards;
        if shards > 0 {
            return Err(MirrorError::Shards { bank: opts.bank.clone(), shards });
        }
        if !bank.writable() {
            return Err(crate::Error::ReadOnly { name: opts.bank.clone() }.into());
        }
        let cfg = Config { max_origins: opts.max_origins, ..Config::new(width, bank.op()) };
        let (store, mut replica) = Store::open(&opts.data, cfg)?;
        replica.track_touched();
        let mut m = Mirror {
            mirrored: replica.state().to_vec(),
            bank,
            replica,
            store,
            data: opts.data.clone(),
            full_scan: true,
            crash: opts
                .crash
                .or_else(|| std::env::var(ENV_CRASH_AT).ok().and_then(|s| CrashPoint::parse(&s))),
            start: Start::Resumed,
            binding: Binding {
                incarnation: 1,
                replaces: 0,
                pending: false,
                base: Vec::new(),
                adopting: None,
            },
        };
        let (binding, start) = m.choose_binding(opts)?;
        m.start = start;
        m.apply(binding)?;
        Ok(m)
    }

    fn crash_at(&self, p: CrashPoint) -> Result<(), MirrorError> {
        if self.crash == Some(p) {
            if std::env::var(ENV_CRASH_AT).ok().as_deref() == Some(p.name()) {
                // A real crash, for process-level tests of the daemon.
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
            return Err(MirrorError::Crashed(p));
        }
        Ok(())
    }

    /// Decides which binding to apply (see [`Binding`]) and stores it when it is new.
    fn choose_binding(&self, opts: &MirrorOptions) -> Result<(Binding, Start), MirrorError> {
        let mem = self.bank.memory();
        let op = self.bank.op();
        let n = self.bank.slots();
        let bank_inc = mem.incarnation();
        let mut found = Binding::load(&self.data)?;
        if let Some(b) = &mut found {
            // An adoption interrupted by a crash is settled before anything uses the base.
            if b.settle(self.replica.version(), op) {
                b.store(&self.data)?;
            }
        }
        let fresh_replica = self.replica.versions().is_empty();
        let sparse = |f: &dyn Fn(u64) -> u64| -> Vec<(u32, u64)> {
            (0..n).map(|i| (i as u32, f(i))).filter(|&(_, v)| v != op.identity()).collect()
        };
        let new = |replaces: u64, base: Vec<(u32, u64)>| -> Result<Binding, MirrorError> {
            let incarnation = random_id()
                .map_err(|source| PersistError::Io { path: PathBuf::from("/dev/urandom"), source })?;
            let b = Binding { incarnation, replaces, pending: true, base, adopting: None };
            b.store(&self.data)?;
            Ok(b)
        };
        if opts.recover {
            return match (&found, bank_inc) {
                (None, 0) => Err(MirrorError::NothingToRecover {
                    what: format!("bank {:?} was never replicated; just start the daemon", opts.bank),
                }),
                (None, _) if fresh_replica => {
                    let b = new(bank_inc, sparse(&|i| mem.taken_value(i)))?;
                    Ok((b, Start::Recovered))
                }
                (Some(b), _) if b.pending && b.replaces == bank_inc && b.replaces != 0 => {
                    Ok((b.clone(), Start::Recovered))
                }
                _ => Err(MirrorError::NothingToRecover {
                    what: format!("{} holds a replica; just start the daemon", self.data.display()),
                }),
            };
        }
        match found {
            None if bank_inc == 0 => {
                if !fresh_replica {
                    return Err(MirrorError::Unbound { data: self.data.clone() });
                }
                // Everything the bank holds becomes local change: taken = ref⁻¹.
                let b = new(0, sparse(&|i| op.inverse(mem.reference_value(i))))?;
                Ok((b, Start::Adopted))
            }
            None => Err(MirrorError::DirectoryLost {
                bank: opts.bank.clone(),
                data: self.data.clone(),
                origin: mem.origin(),
                incarnation: bank_inc,
            }),
            Some(b) if b.incarnation == bank_inc && mem.origin() == self.replica.id() => {
                Ok((b, Start::Resumed))
            }
            // A binding whose application was interrupted: apply it again. (A recovery whose
            // bank was lost meanwhile falls through to a rebuild: its base describes the
            // old bank's `taken` words, not the new bank's.)
            Some(b) if b.pending && b.replaces != 0 && bank_inc == b.replaces => Ok((b, Start::Recovered)),
            Some(b) if b.pending && b.replaces == 0 && bank_inc == 0 => {
                let start = if fresh_replica && self.replica.version() == 0 {
                    Start::Adopted
                } else {
                    Start::Rebuilt
                };
                Ok((b, start))
            }
            Some(_) if bank_inc == 0 => {
                // The bank was lost and made anew: its accumulators are all local change, the
                // replica is the truth for the rest (taken = identity, so base = own⁻¹).
                let own = self.replica.own_acc();
                let b = new(0, sparse(&|i| op.inverse(own[i as usize])))?;
                Ok((b, Start::Rebuilt))
            }
            Some(b) => Err(MirrorError::Mismatch {
                bank: opts.bank.clone(),
                data: self.data.clone(),
                bank_incarnation: bank_inc,
                bank_origin: mem.origin(),
                dir_incarnation: b.incarnation,
                dir_origin: self.replica.id(),
            }),
        }
    }

    /// Makes the bank agree with the binding and the replica; every step is a plain store
    /// of a value computed from durable state, so a crash anywhere here is repaired by
    /// applying the same binding again.
    fn apply(&mut self, mut b: Binding) -> Result<(), MirrorError> {
        self.crash_at(CrashPoint::BindingStored)?;
        let op = self.bank.op();
        let n = self.bank.slots();
        let mem = self.bank.memory();
        let own = self.replica.own_acc();
        let state = self.replica.state();
        let taken: Vec<u64> =
            (0..n).map(|i| op.combine(b.base_of(i as u32, op.identity()), own[i as usize])).collect();
        for (i, &t) in taken.iter().enumerate() {
            if i as u64 == n / 2 {
                self.crash_at(CrashPoint::BindingTakenHalf)?;
            }
            if mem.taken_value(i as u64) != t {
                mem.set_taken(i as u64, t);
            }
        }
        for (i, (&r, &t)) in state.iter().zip(&taken).enumerate() {
            if i as u64 == n / 2 {
                self.crash_at(CrashPoint::BindingRefHalf)?;
            }
            let want = op.combine(r, op.inverse(t));
            if mem.reference_value(i as u64) != want {
                mem.set_reference(i as u64, want);
            }
        }
        self.mirrored = state.to_vec();
        self.crash_at(CrashPoint::BindingBeforeHeader)?;
        if mem.incarnation() != b.incarnation || mem.origin() != self.replica.id() {
            mem.set_binding(self.replica.id(), b.incarnation);
        }
        self.crash_at(CrashPoint::BindingBeforeDone)?;
        if b.pending {
            b.pending = false;
            b.store(&self.data)?;
        }
        self.binding = b;
        Ok(())
    }

    /// Adopts `origin`, retired at `final_version` (`atomikctl sync leave` on that replica):
    /// its accumulator moves into this replica's own column, and one delta carries it with
    /// the retirement record, so every replica that joins it drops the origin. The bank is
    /// not touched: its state is unchanged, and the base absorbs the adopted amounts so that
    /// `taken = base ∘ own` still holds (see [`Binding`] for the order that makes a crash at
    /// any point safe).
    pub fn adopt(&mut self, origin: u64, final_version: u64) -> Result<Adopted, MirrorError> {
        if let Some(v) = self.replica.retired_at(origin) {
            return Ok(Adopted::Already(v));
        }
        if origin == self.replica.id() {
            return Err(ReplicaError::NotAdoptable(origin).into());
        }
        let have = self.replica.version_of(origin);
        if have < final_version {
            return Ok(Adopted::NotYet { have });
        }
        if have != final_version {
            return Err(ReplicaError::NotFinal { origin, have, want: final_version }.into());
        }
        // Local changes first, in a delta of their own: the adopting delta then holds
        // exactly what was adopted.
        self.take()?;
        let op = self.bank.op();
        let acc = self.replica.acc_of(origin).ok_or(ReplicaError::NotAdoptable(origin))?;
        let amounts: Vec<(u32, u64)> = acc
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v != op.identity())
            .map(|(i, &v)| (i as u32, v))
            .collect();
        let to_version = self.replica.version() + 1;
        let mut b = self.binding.clone();
        b.adopting = Some(super::binding::Adoption { origin, final_version, to_version, amounts });
        b.store(&self.data)?;
        self.crash_at(CrashPoint::AdoptRecorded)?;
        if let Err(e) = self.replica.adopt(origin, final_version) {
            // Refused before anything changed: take the record back.
            self.binding.store(&self.data)?;
            return Err(e.into());
        }
        let delta = self.replica.commit().expect("an adoption always commits a delta");
        self.store.log(&Message::Deltas { op, deltas: vec![delta.clone()] })?;
        self.crash_at(CrashPoint::AdoptAfterLog)?;
        b.settle(self.replica.version(), op);
        b.store(&self.data)?;
        self.binding = b;
        Ok(Adopted::Now(delta))
    }

    /// How the last [`Mirror::open`] found things.
    pub fn start(&self) -> Start {
        self.start
    }

    /// The mirrored bank.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The replica directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Bytes in the log since the last checkpoint.
    pub fn wal_len(&self) -> u64 {
        self.store.wal_len()
    }

    /// Takes the local changes since the last take: finds them through the dirty cards (all
    /// slots after a start), records them in `taken`, commits them as this replica's next
    /// delta and logs it (fsync). Returns the delta, durable, ready to send.
    pub fn take(&mut self) -> Result<Option<Delta>, MirrorError> {
        let op = self.bank.op();
        let n = self.bank.slots();
        let mem = self.bank.memory();
        let scan = |i: u64, replica: &mut Replica, mirrored: &mut [u64]| {
            let a = mem.accumulator(i);
            let t = mem.taken_value(i);
            if a != t {
                let u = op.combine(a, op.inverse(t));
                replica.accum(i as u32, u).expect("slot within width");
                mem.set_taken(i, a);
                mirrored[i as usize] = op.combine(mirrored[i as usize], u);
            }
        };
        if self.full_scan {
            for c in 0..mem.cards() {
                mem.take_card(c);
            }
            for i in 0..n {
                scan(i, &mut self.replica, &mut self.mirrored);
            }
            self.full_scan = false;
        } else {
            for c in 0..mem.cards() {
                if mem.take_card(c) {
                    let first = c * crate::abi::CARD_SLOTS;
                    for i in first..(first + crate::abi::CARD_SLOTS).min(n) {
                        scan(i, &mut self.replica, &mut self.mirrored);
                    }
                }
            }
        }
        self.crash_at(CrashPoint::TakeBeforeLog)?;
        let Some(delta) = self.replica.commit() else {
            return Ok(None);
        };
        self.store.log(&Message::Deltas { op, deltas: vec![delta.clone()] })?;
        self.crash_at(CrashPoint::TakeAfterLog)?;
        Ok(Some(delta))
    }

    /// Joins a message from a peer: when it changes anything it is logged (fsync) before it
    /// changes the bank's references. A [`MirrorError::Replica`] means it was refused.
    pub fn join(&mut self, msg: &Message) -> Result<Vec<Joined>, MirrorError> {
        // A slot out of range in a later delta would leave the earlier ones joined in memory
        // but neither logged nor mirrored: refuse the whole message first.
        let width = self.replica.config().width;
        if let Message::Deltas { deltas, .. } = msg {
            if let Some((d, &(slot, _))) =
                deltas.iter().find_map(|d| d.slots.iter().find(|s| s.0 >= width).map(|s| (d, s)))
            {
                return Err(ReplicaError::Slot { origin: d.origin, slot, width }.into());
            }
        }
        let joined = self.replica.join_message(msg)?;
        let touched = self.replica.take_touched();
        if !joined.iter().any(|j| matches!(j, Joined::Applied | Joined::Buffered)) {
            return Ok(joined);
        }
        self.store.log(msg)?;
        self.crash_at(CrashPoint::JoinBeforeBank)?;
        let op = self.bank.op();
        let state = self.replica.state();
        let mem = self.bank.memory();
        for (k, &s) in touched.iter().enumerate() {
            if k == touched.len() / 2 {
                self.crash_at(CrashPoint::JoinBankHalf)?;
            }
            let i = s as usize;
            if state[i] != self.mirrored[i] {
                mem.ref_combine(i as u64, op.combine(state[i], op.inverse(self.mirrored[i])));
                self.mirrored[i] = state[i];
            }
        }
        Ok(joined)
    }

    /// Checkpoints when the log has grown past its bound.
    pub fn maybe_checkpoint(&mut self) -> Result<(), MirrorError> {
        Ok(self.store.maybe_checkpoint(&self.replica)?)
    }

    /// Writes a snapshot and empties the log (clean stop).
    pub fn checkpoint(&mut self) -> Result<(), MirrorError> {
        Ok(self.store.checkpoint(&self.replica)?)
    }
}
