//! The replica: per-origin accumulators and versions, joined by causal delta-intervals.
//!
//! A replicated bank of `width` slots is the combination, slot by slot, of one accumulator
//! per *origin* (a replica that produced changes). Each origin's accumulator only ever moves
//! forward through versions `0, 1, 2, …` that the origin alone creates, so a replica knows
//! exactly which of an origin's changes it holds. A [`Delta`] Δ(from, to] is joined only
//! when the replica is at `from`; one it already covers is ignored (duplicates are no-ops,
//! unlike a raw XOR delta which a second delivery undoes); one from the future waits in a
//! small buffer until the gap is filled, or the gap is asked for by anti-entropy
//! ([`Replica::summary`] / [`Replica::missing_for`]); a snapshot (`replace`) of an origin's
//! whole accumulator repairs any gap. Every join is therefore idempotent, commutative and
//! associative, and replicas that have seen the same versions hold the same bytes.
//!
//! # Bounded state: retiring origins
//!
//! A transient client costs one accumulator of `width` words at every replica. When it is
//! done it *retires*: it stops producing under its origin id, and an *adopter* replica that
//! holds the client's final version `v` folds the client's accumulator into its own as an
//! ordinary local delta that also carries the record `(client, v)`. Any replica joining that
//! record drops whatever it held of the client (the adopter's delta carries all of it) and
//! keeps a 16-byte tombstone so late deltas or snapshots of the client are ignored. Snapshots
//! of the adopter carry its adopted records too. Live origins are capped
//! ([`Config::max_origins`], error [`ReplicaError::TooManyOrigins`]); tombstones are capped
//! separately ([`Config::max_retired`]).

use std::collections::{BTreeMap, VecDeque};

use super::op::Op;
use super::wire::{Delta, Message};

/// Limits and shape of a replicated bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Slots in the bank.
    pub width: u32,
    /// Group operator.
    pub op: Op,
    /// Most live origins (accumulators) held, this replica's included.
    pub max_origins: usize,
    /// Most tombstones of retired origins held.
    pub max_retired: usize,
    /// Recent deltas kept per origin to serve peers that lag a little (else: snapshot).
    pub log_len: usize,
    /// Out-of-order deltas buffered per origin while waiting for a gap to be filled.
    pub max_pending: usize,
}

impl Config {
    /// Defaults for `width` slots under `op`.
    pub fn new(width: u32, op: Op) -> Config {
        Config { width, op, max_origins: 4096, max_retired: 1 << 20, log_len: 64, max_pending: 64 }
    }
}

/// Errors of the replica model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    #[error("slot {slot} out of range for a bank of {width} slots (origin {origin:#x})")]
    Slot { origin: u64, slot: u32, width: u32 },
    #[error("origin {origin:#x} refused: already {max} live origins (retire clients, or raise max_origins)")]
    TooManyOrigins { origin: u64, max: usize },
    #[error("retired origin {origin:#x} refused: already {max} tombstones")]
    TooManyRetired { origin: u64, max: usize },
    #[error("operator mismatch: bank is {ours:?}, message is {theirs:?}")]
    OpMismatch { ours: Op, theirs: Op },
    #[error("width mismatch: bank has {ours} slots, peer has {theirs}")]
    WidthMismatch { ours: u32, theirs: u32 },
    #[error("cannot retire origin {origin:#x}: this replica holds version {have}, not the final {want}")]
    NotFinal { origin: u64, have: u64, want: u64 },
    #[error("origin {0:#x} is this replica's own id or is not held")]
    NotAdoptable(u64),
}

/// What joining one delta did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The delta (and possibly buffered successors) advanced the origin.
    Applied,
    /// Already covered: nothing changed.
    Duplicate,
    /// The origin is retired: ignored.
    Retired,
    /// From the future: buffered until the gap arrives.
    Buffered,
    /// Neither joinable nor bufferable (overlapping interval, or buffer full): anti-entropy
    /// will resend it.
    Dropped,
}

/// Counters of what the replica did, for status output and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub applied: u64,
    pub duplicates: u64,
    pub buffered: u64,
    pub dropped: u64,
    pub snapshots: u64,
    pub retired: u64,
}

#[derive(Debug, Clone)]
struct Origin {
    version: u64,
    acc: Vec<u64>,
    /// Contiguous deltas ending at `version`, oldest first.
    log: VecDeque<Delta>,
    /// Buffered out-of-order deltas by from-version.
    pending: BTreeMap<u64, Delta>,
    /// Every retirement record this origin has carried (for its snapshots).
    adopted: Vec<(u64, u64)>,
}

impl Origin {
    fn new(width: u32) -> Origin {
        Origin {
            version: 0,
            acc: vec![0; width as usize],
            log: VecDeque::new(),
            pending: BTreeMap::new(),
            adopted: Vec::new(),
        }
    }
}

/// One replica of a replicated bank.
#[derive(Debug, Clone)]
pub struct Replica {
    id: u64,
    cfg: Config,
    origins: BTreeMap<u64, Origin>,
    retired: BTreeMap<u64, u64>,
    /// Converged state: every origin's accumulator combined, plus uncommitted local changes.
    state: Vec<u64>,
    /// Local changes not yet committed into a delta, and which slots they touch.
    uncommitted: Vec<u64>,
    dirty: Vec<u32>,
    /// Origins to fold into the next local commit.
    adopt_next: Vec<(u64, u64)>,
    stats: Stats,
    /// Slots whose state a join changed, when tracking is on (a bank mirror drains it).
    touched: Option<Vec<u32>>,
}

impl Replica {
    /// An empty replica with origin id `id` (unique per replica, never reused).
    pub fn new(id: u64, cfg: Config) -> Replica {
        let mut origins = BTreeMap::new();
        origins.insert(id, Origin::new(cfg.width));
        Replica {
            id,
            cfg,
            origins,
            retired: BTreeMap::new(),
            state: vec![cfg.op.identity(); cfg.width as usize],
            uncommitted: vec![cfg.op.identity(); cfg.width as usize],
            dirty: Vec::new(),
            adopt_next: Vec::new(),
            stats: Stats::default(),
            touched: None,
        }
    }

    /// Starts recording the slots that joins change (see [`Replica::take_touched`]).
    pub fn track_touched(&mut self) {
        self.touched.get_or_insert_with(Vec::new);
    }

    /// The slots whose state joins changed since the last call (unsorted, may repeat).
    pub fn take_touched(&mut self) -> Vec<u32> {
        self.touched.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn touch(&mut self, slot: usize) {
        if let Some(t) = &mut self.touched {
            t.push(slot as u32);
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// The converged state, one word per slot.
    pub fn state(&self) -> &[u64] {
        &self.state
    }
    /// This replica's own committed version.
    pub fn version(&self) -> u64 {
        self.version_of(self.id)
    }
    /// The version held of `origin` (0 if unknown).
    pub fn version_of(&self, origin: u64) -> u64 {
        self.origins.get(&origin).map_or(0, |o| o.version)
    }
    /// This replica's own committed accumulator, one word per slot: every local delta it
    /// committed, combined (what the bank's `taken` words hold beyond their base).
    pub fn own_acc(&self) -> &[u64] {
        &self.origins.get(&self.id).expect("own origin always present").acc
    }
    /// The committed accumulator held of `origin`, if it is live here.
    pub fn acc_of(&self, origin: u64) -> Option<&[u64]> {
        self.origins.get(&origin).map(|o| o.acc.as_slice())
    }
    /// The final version of `origin` if it is retired here (a tombstone).
    pub fn retired_at(&self, origin: u64) -> Option<u64> {
        self.retired.get(&origin).copied()
    }
    /// Number of tombstones (retired origins) held.
    pub fn retired_count(&self) -> usize {
        self.retired.len()
    }
    /// Number of live origins held.
    pub fn origin_count(&self) -> usize {
        self.origins.len()
    }
    /// Tombstones: `(origin, final version)`.
    pub fn retired(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.retired.iter().map(|(&o, &v)| (o, v))
    }
    /// True if there are local changes not yet committed.
    pub fn has_uncommitted(&self) -> bool {
        !self.dirty.is_empty() || !self.adopt_next.is_empty()
    }

    /// 64-bit FNV-1a digest of the converged state (little-endian words).
    pub fn digest(&self) -> u64 {
        digest(&self.state)
    }

    /// ACCUM a local change into `slot`: visible at once in [`Replica::state`], shipped by the
    /// next [`Replica::commit`].
    pub fn accum(&mut self, slot: u32, d: u64) -> Result<(), ReplicaError> {
        if slot >= self.cfg.width {
            return Err(self.slot_error(self.id, slot));
        }
        let op = self.cfg.op;
        let i = slot as usize;
        if self.uncommitted[i] == op.identity() {
            self.dirty.push(slot);
        }
        self.uncommitted[i] = op.combine(self.uncommitted[i], d);
        self.state[i] = op.combine(self.state[i], d);
        Ok(())
    }

    /// Turns the uncommitted local changes into this replica's next delta, Δ(v, v+1].
    /// `None` if nothing changed. The caller must make the delta durable before sending it
    /// (a version number must never be reused for different contents).
    pub fn commit(&mut self) -> Option<Delta> {
        let op = self.cfg.op;
        self.dirty.sort_unstable();
        let mut slots = Vec::with_capacity(self.dirty.len());
        for &s in &self.dirty {
            let v = std::mem::replace(&mut self.uncommitted[s as usize], op.identity());
            if v != op.identity() {
                slots.push((s, v));
            }
        }
        self.dirty.clear();
        let retired = std::mem::take(&mut self.adopt_next);
        if slots.is_empty() && retired.is_empty() {
            return None;
        }
        let from = self.version();
        let delta = Delta { origin: self.id, from, to: from + 1, replace: false, slots, retired };
        // The values are already in `state`: only the accumulator and log move.
        let own = self.origins.get_mut(&self.id).expect("own origin always present");
        for &(s, v) in &delta.slots {
            own.acc[s as usize] = op.combine(own.acc[s as usize], v);
        }
        own.version = delta.to;
        let cfg = self.cfg;
        push_log(own, &delta, cfg.log_len);
        for &(o, v) in &delta.retired {
            own.adopted.push((o, v));
        }
        self.stats.applied += 1;
        Some(delta)
    }

    /// Adopts retired origin `origin` whose final version is `final_version`: its
    /// accumulator is folded into this replica's next commit together with the retirement
    /// record, and it is dropped here at once.
    pub fn adopt(&mut self, origin: u64, final_version: u64) -> Result<(), ReplicaError> {
        if origin == self.id {
            return Err(ReplicaError::NotAdoptable(origin));
        }
        let have = self.version_of(origin);
        if have != final_version || !self.origins.contains_key(&origin) {
            return Err(ReplicaError::NotFinal { origin, have, want: final_version });
        }
        self.check_retired_room(origin)?;
        let gone = self.origins.remove(&origin).expect("checked above");
        let op = self.cfg.op;
        for (i, &v) in gone.acc.iter().enumerate() {
            if v != op.identity() {
                // Remove it from the origin's column and add it to ours: `state` is unchanged.
                if self.uncommitted[i] == op.identity() {
                    self.dirty.push(i as u32);
                }
                self.uncommitted[i] = op.combine(self.uncommitted[i], v);
            }
        }
        self.retired.insert(origin, final_version);
        self.adopt_next.push((origin, final_version));
        self.stats.retired += 1;
        Ok(())
    }

    fn slot_error(&self, origin: u64, slot: u32) -> ReplicaError {
        ReplicaError::Slot { origin, slot, width: self.cfg.width }
    }

    fn check_retired_room(&self, origin: u64) -> Result<(), ReplicaError> {
        if !self.retired.contains_key(&origin) && self.retired.len() >= self.cfg.max_retired {
            return Err(ReplicaError::TooManyRetired { origin, max: self.cfg.max_retired });
        }
        Ok(())
    }

    /// Joins every delta of a `Deltas` message; `Summary` messages are not joined (answer
    /// them with [`Replica::missing_for`]).
    pub fn join_message(&mut self, msg: &Message) -> Result<Vec<Joined>, ReplicaError> {
        match msg {
            Message::Deltas { op, deltas } => {
                self.check_op(*op)?;
                // All or nothing at the origin cap: a message is never left half joined.
                if let Some(&origin) = self.refused_origins(deltas).first() {
                    return Err(ReplicaError::TooManyOrigins { origin, max: self.cfg.max_origins });
                }
                deltas.iter().map(|d| self.join(d)).collect()
            }
            Message::Summary { .. } => Ok(Vec::new()),
        }
    }

    /// True if `origin` is held (live, possibly still empty) or retired here.
    pub fn knows(&self, origin: u64) -> bool {
        self.origins.contains_key(&origin) || self.retired.contains_key(&origin)
    }

    /// The origins of `deltas` that [`Config::max_origins`] refuses (in order, each once):
    /// new origins beyond the room left. Joining the other deltas never meets the cap.
    pub fn refused_origins(&self, deltas: &[Delta]) -> Vec<u64> {
        let mut room = self.cfg.max_origins.saturating_sub(self.origins.len());
        let mut admitted: Vec<u64> = Vec::new();
        let mut refused: Vec<u64> = Vec::new();
        for d in deltas {
            let o = d.origin;
            if self.knows(o) || admitted.contains(&o) || refused.contains(&o) {
                continue;
            }
            if room > 0 {
                room -= 1;
                admitted.push(o);
            } else {
                refused.push(o);
            }
        }
        refused
    }

    /// Checks that a peer's operator matches.
    pub fn check_op(&self, op: Op) -> Result<(), ReplicaError> {
        if op != self.cfg.op {
            return Err(ReplicaError::OpMismatch { ours: self.cfg.op, theirs: op });
        }
        Ok(())
    }

    /// Joins one delta (or snapshot). Idempotent: joining it again is a `Duplicate`.
    pub fn join(&mut self, d: &Delta) -> Result<Joined, ReplicaError> {
        if let Some(&(slot, _)) = d.slots.iter().find(|s| s.0 >= self.cfg.width) {
            return Err(self.slot_error(d.origin, slot));
        }
        // Unsorted slots, an empty interval, or an origin retiring itself: malformed.
        if d.slots.windows(2).any(|w| w[0].0 >= w[1].0)
            || d.to <= d.from
            || d.retired.iter().any(|r| r.0 == d.origin)
        {
            return Ok(self.count(Joined::Dropped));
        }
        if self.retired.contains_key(&d.origin) {
            return Ok(self.count(Joined::Retired));
        }
        if !self.origins.contains_key(&d.origin) {
            if self.origins.len() >= self.cfg.max_origins {
                return Err(ReplicaError::TooManyOrigins { origin: d.origin, max: self.cfg.max_origins });
            }
            self.origins.insert(d.origin, Origin::new(self.cfg.width));
        }
        let have = self.version_of(d.origin);
        let outcome = if d.to <= have {
            Joined::Duplicate
        } else if d.replace {
            self.apply_snapshot(d)?;
            self.drain_pending(d.origin)?;
            Joined::Applied
        } else if d.from == have {
            self.apply_delta(d)?;
            self.drain_pending(d.origin)?;
            Joined::Applied
        } else if d.from > have {
            let max_pending = self.cfg.max_pending;
            let o = self.origins.get_mut(&d.origin).expect("inserted above");
            if o.pending.len() < max_pending || o.pending.contains_key(&d.from) {
                let keep = o.pending.get(&d.from).is_none_or(|p| p.to < d.to);
                if keep {
                    o.pending.insert(d.from, d.clone());
                }
                Joined::Buffered
            } else {
                Joined::Dropped
            }
        } else {
            // from < have < to: overlaps what we hold; a later exact interval will come.
            Joined::Dropped
        };
        if outcome == Joined::Applied && d.replace {
            self.stats.snapshots += 1;
        }
        // A brand-new origin that only got buffered or dropped stays as an empty column.
        Ok(self.count(outcome))
    }

    fn count(&mut self, j: Joined) -> Joined {
        match j {
            Joined::Applied => self.stats.applied += 1,
            Joined::Duplicate | Joined::Retired => self.stats.duplicates += 1,
            Joined::Buffered => self.stats.buffered += 1,
            Joined::Dropped => self.stats.dropped += 1,
        }
        j
    }

    fn apply_delta(&mut self, d: &Delta) -> Result<(), ReplicaError> {
        self.apply_retirements(d)?;
        let op = self.cfg.op;
        let cfg = self.cfg;
        let o = self.origins.get_mut(&d.origin).expect("caller checked");
        for &(s, v) in &d.slots {
            let i = s as usize;
            o.acc[i] = op.combine(o.acc[i], v);
            self.state[i] = op.combine(self.state[i], v);
        }
        o.version = d.to;
        o.adopted.extend_from_slice(&d.retired);
        push_log(o, d, cfg.log_len);
        if let Some(t) = &mut self.touched {
            t.extend(d.slots.iter().map(|s| s.0));
        }
        Ok(())
    }

    fn apply_snapshot(&mut self, d: &Delta) -> Result<(), ReplicaError> {
        self.apply_retirements(d)?;
        let op = self.cfg.op;
        let o = self.origins.get_mut(&d.origin).expect("caller checked");
        let mut next = vec![op.identity(); self.cfg.width as usize];
        for &(s, v) in &d.slots {
            next[s as usize] = v;
        }
        for (i, (old, new)) in o.acc.iter().zip(&next).enumerate() {
            if old != new {
                self.state[i] = op.combine(op.combine(self.state[i], op.inverse(*old)), *new);
                if let Some(t) = &mut self.touched {
                    t.push(i as u32);
                }
            }
        }
        o.acc = next;
        o.version = d.to;
        o.log.clear();
        o.adopted = d.retired.clone();
        o.pending.retain(|_, p| p.to > d.to);
        Ok(())
    }

    /// Drops every origin that `d` retires (its contribution now travels inside `d`).
    fn apply_retirements(&mut self, d: &Delta) -> Result<(), ReplicaError> {
        for &(origin, _) in &d.retired {
            if origin == self.id {
                // Our own id retired by someone else: we were told to stop; keep our column so
                // nothing is lost, but never count it twice.
                return Err(ReplicaError::NotAdoptable(origin));
            }
            self.check_retired_room(origin)?;
        }
        let op = self.cfg.op;
        for &(origin, version) in &d.retired {
            if let Some(gone) = self.origins.remove(&origin) {
                for (i, &v) in gone.acc.iter().enumerate() {
                    if v != op.identity() {
                        self.state[i] = op.combine(self.state[i], op.inverse(v));
                        self.touch(i);
                    }
                }
                self.stats.retired += 1;
            }
            let t = self.retired.entry(origin).or_insert(version);
            *t = (*t).max(version);
        }
        Ok(())
    }

    fn drain_pending(&mut self, origin: u64) -> Result<(), ReplicaError> {
        loop {
            let Some(o) = self.origins.get_mut(&origin) else {
                return Ok(());
            };
            let have = o.version;
            o.pending.retain(|_, p| p.to > have);
            let Some(next) = o.pending.remove(&have) else {
                return Ok(());
            };
            self.apply_delta(&next)?;
            self.stats.applied += 1;
        }
    }

    /// This replica's version of every origin it holds, as a `Summary` message.
    pub fn summary(&self) -> Message {
        Message::Summary { op: self.cfg.op, width: self.cfg.width, versions: self.versions() }
    }

    /// `(origin, version)` for every live origin, sorted by origin.
    pub fn versions(&self) -> Vec<(u64, u64)> {
        self.origins.iter().filter(|(_, o)| o.version > 0).map(|(&id, o)| (id, o.version)).collect()
    }

    /// What a peer whose versions are `peer` lacks: per origin, one delta-interval combined
    /// from the log when it reaches back to the peer's version, else a snapshot.
    pub fn missing_for(&self, peer: &[(u64, u64)]) -> Vec<Delta> {
        self.missing_for_lagging(peer, 1)
    }

    /// Like [`Replica::missing_for`], but only for origins the peer lags by at least
    /// `min_lag` versions: with eager pushes in flight, a lag of one is usually a delta about
    /// to arrive, and answering it would send it twice. A lost delta still gets repaired once
    /// its origin moves on (or by a final `min_lag = 1` round).
    pub fn missing_for_lagging(&self, peer: &[(u64, u64)], min_lag: u64) -> Vec<Delta> {
        let peer_version = |origin: u64| peer.binary_search_by_key(&origin, |p| p.0).map_or(0, |i| peer[i].1);
        let mut out = Vec::new();
        for (&id, o) in &self.origins {
            let pv = peer_version(id);
            if o.version >= pv.saturating_add(min_lag.max(1)) {
                out.push(self.interval(id, o, pv));
            }
        }
        out
    }

    /// Deltas of origin `origin` after version `since` (for pushing new local deltas).
    pub fn since(&self, origin: u64, since: u64) -> Option<Delta> {
        let o = self.origins.get(&origin)?;
        (o.version > since).then(|| self.interval(origin, o, since))
    }

    fn interval(&self, id: u64, o: &Origin, since: u64) -> Delta {
        let op = self.cfg.op;
        let start = o.log.iter().position(|d| d.from == since);
        match start {
            Some(k) if k + 1 == o.log.len() => o.log[k].clone(),
            Some(k) => {
                let mut slots: BTreeMap<u32, u64> = BTreeMap::new();
                let mut retired = Vec::new();
                for d in o.log.iter().skip(k) {
                    for &(s, v) in &d.slots {
                        let e = slots.entry(s).or_insert(op.identity());
                        *e = op.combine(*e, v);
                    }
                    retired.extend_from_slice(&d.retired);
                }
                Delta {
                    origin: id,
                    from: since,
                    to: o.version,
                    replace: false,
                    slots: slots.into_iter().filter(|&(_, v)| v != op.identity()).collect(),
                    retired,
                }
            }
            None => self.snapshot_of(id, o),
        }
    }

    fn snapshot_of(&self, id: u64, o: &Origin) -> Delta {
        let op = self.cfg.op;
        Delta {
            origin: id,
            from: 0,
            to: o.version,
            replace: true,
            slots: (0..self.cfg.width)
                .zip(o.acc.iter().copied())
                .filter(|&(_, v)| v != op.identity())
                .collect(),
            retired: o.adopted.clone(),
        }
    }

    /// Snapshots of every live origin (for persistence and full-state sync).
    pub fn snapshots(&self) -> Vec<Delta> {
        self.origins.iter().filter(|(_, o)| o.version > 0).map(|(&id, o)| self.snapshot_of(id, o)).collect()
    }

    /// Restores tombstones (used when loading persisted state).
    pub fn restore_retired(&mut self, retired: &[(u64, u64)]) {
        for &(o, v) in retired {
            self.origins.remove(&o);
            self.retired.insert(o, v);
        }
    }
}

fn push_log(o: &mut Origin, d: &Delta, log_len: usize) {
    if log_len == 0 {
        return;
    }
    if o.log.len() == log_len {
        o.log.pop_front();
    }
    o.log.push_back(d.clone());
}

/// 64-bit FNV-1a of `words` as little-endian bytes: the state digest compared across nodes.
pub fn digest(words: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
