//! The sync daemon behind `atomikctl sync serve|join`: one replica of a named bank, mirrored
//! into that bank ([`super::mirror`]), exchanged with peers by a transport (TCP:
//! [`super::tcp_peers`]; NATS: `super::nats`).
//!
//! Every tick the daemon takes the bank's local changes (found through its dirty cards, so
//! an idle daemon's cost follows the change, not the bank), logs them as its next delta and
//! wakes the transports; remote deltas the transports receive are joined through
//! [`Daemon::join_remote`], logged before they change the bank. The mirror's lock is held
//! for a take or a join (which include an fsync) and never across network I/O: every peer
//! has its own threads, so one slow peer stalls only itself.
//!
//! A clean stop (SIGTERM/SIGINT) takes the last changes, waits a bounded time for the
//! connected peers to acknowledge them (so a stopped replica's deltas are not only on its
//! disk), and checkpoints. After `kill -9` anywhere, the next start is exact (see the
//! mirror's crash table): no acknowledged ACCUM is lost, doubled or negated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::mirror::{Adopted, Mirror, MirrorError, MirrorOptions, Start};
use super::model::{Joined, Replica, ReplicaError};
use super::op::Op;
use super::tcp::LeaveReply;
use super::wire::Message;

/// Options of a sync daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub bank: String,
    /// Replica directory (snapshot, log, binding, status).
    pub data: PathBuf,
    /// Slots and operator to create the bank with when neither it nor a replica exists.
    pub create: Option<(u64, Op)>,
    pub secret: Vec<u8>,
    pub listen: Option<String>,
    pub peers: Vec<String>,
    pub tick: Duration,
    /// Ticks between summaries sent to each peer.
    pub ae_every: u64,
    /// Most TCP connections served at once (others are closed before any handshake).
    pub max_conns: usize,
    /// How long a clean stop waits for peers to acknowledge the last deltas.
    pub drain: Duration,
    /// Most live origins the replica holds (see [`super::model::Config::max_origins`]).
    pub max_origins: usize,
    /// Run by `atomikctl sync leave`, which may resume an interrupted leave.
    pub leaving: bool,
}

impl DaemonConfig {
    /// Defaults: 100 ms ticks, a summary every 10 ticks, 64 connections, 5 s drain.
    pub fn new(bank: impl Into<String>, data: impl Into<PathBuf>) -> DaemonConfig {
        DaemonConfig {
            bank: bank.into(),
            data: data.into(),
            create: None,
            secret: Vec::new(),
            listen: None,
            peers: Vec::new(),
            tick: Duration::from_millis(100),
            ae_every: 10,
            max_conns: 64,
            drain: Duration::from_secs(5),
            max_origins: super::model::Config::new(1, Op::Xor).max_origins,
            leaving: false,
        }
    }
}

/// Errors of the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error("listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl DaemonError {
    /// True when a message was refused by the replica model (bad shape, origin limits):
    /// the sender's fault, not a local failure.
    pub fn is_refusal(&self) -> bool {
        matches!(self, DaemonError::Replica(_) | DaemonError::Mirror(MirrorError::Replica(_)))
    }
}

/// What a transport reports of one connected peer.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub addr: String,
    pub origin: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// The peer's versions from its last summary: what it holds durably.
    pub acked: Vec<(u64, u64)>,
}

#[derive(Default)]
struct Status {
    last_error: String,
    refused: u64,
    transport: Option<String>,
    peers: BTreeMap<u64, PeerInfo>,
    closed_bytes_in: u64,
    closed_bytes_out: u64,
    /// After a clean stop: whether every connected peer acknowledged all we hold.
    drained: Option<bool>,
    /// Leaving over NATS: the adopter asked, and whether the request is on the stream.
    leave: Option<(u64, bool)>,
    /// A delta that retires this replica was seen: `(adopter, final version)`.
    retired_by: Option<(u64, u64)>,
}

/// A running daemon's shared state.
pub struct Daemon {
    cfg: DaemonConfig,
    mirror: Mutex<Mirror>,
    /// Bumped whenever the replica gains versions or a peer's view changes; transports wait
    /// on it.
    generation: Mutex<u64>,
    changed: Condvar,
    status: Mutex<Status>,
    /// Sum of all versions when the digest was last computed, and that digest.
    digest: Mutex<(Option<u64>, u64)>,
    stop: Arc<AtomicBool>,
}

impl Daemon {
    /// Opens the bank and the replica directory and makes them agree (see the mirror).
    pub fn open(cfg: DaemonConfig, stop: Arc<AtomicBool>) -> Result<Arc<Daemon>, DaemonError> {
        // A status left by an earlier run (its `drained` above all) must not be taken for
        // this one's if this one dies before its first tick.
        let _ = std::fs::remove_file(cfg.data.join("status.json"));
        let mut opts = MirrorOptions::new(&cfg.bank, &cfg.data);
        opts.create = cfg.create;
        opts.max_origins = cfg.max_origins;
        opts.leaving = cfg.leaving;
        let mirror = Mirror::open(&opts)?;
        let start = mirror.start();
        let d = Arc::new(Daemon {
            cfg,
            mirror: Mutex::new(mirror),
            generation: Mutex::new(0),
            changed: Condvar::new(),
            status: Mutex::new(Status::default()),
            digest: Mutex::new((None, 0)),
            stop,
        });
        if start != Start::Resumed {
            eprintln!("atomik sync: bank {:?}: {}", d.cfg.bank, start_note(start));
        }
        // A leave decides itself whether to take (never once an adopter was asked).
        if !d.cfg.leaving {
            d.tick()?;
        }
        Ok(d)
    }

    /// The configuration.
    pub fn config(&self) -> &DaemonConfig {
        &self.cfg
    }

    /// True once a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn mirror(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().expect("mirror lock")
    }

    /// Runs the TCP transport (when configured) and the tick loop until the stop flag is set,
    /// then stops cleanly: last take, bounded drain to the peers, checkpoint.
    pub fn run(self: &Arc<Daemon>) -> Result<(), DaemonError> {
        if self.cfg.listen.is_some() || !self.cfg.peers.is_empty() {
            super::tcp_peers::start(self)?;
        }
        while !self.stopping() {
            std::thread::sleep(self.cfg.tick);
            self.tick()?;
        }
        self.tick()?;
        let tcp = self.cfg.listen.is_some() || !self.cfg.peers.is_empty();
        // Over NATS the transport drains after this returns (see `report_drained`).
        let drained = !tcp || self.drain();
        self.mirror().checkpoint()?;
        if tcp {
            self.report_drained(drained);
        }
        if !drained {
            eprintln!(
                "atomik sync: bank {:?}: stopped before any peer acknowledged all this replica holds \
                 (it is safe in {}, and sent at the next start)",
                self.cfg.bank,
                self.cfg.data.display()
            );
        }
        self.poke();
        Ok(())
    }

    /// Waits (bounded by `drain`) until a connected peer acknowledged everything this replica
    /// holds (every origin's version, relayed ones included: a hub's clients may hold deltas
    /// only the hub has relayed), so that this replica's directory is no longer the only copy
    /// of anything. Returns whether that was reached; it cannot be when no peer is connected
    /// and this replica holds anything.
    fn drain(&self) -> bool {
        let deadline = Instant::now() + self.cfg.drain;
        let ours = self.with_replica(|r| r.versions());
        loop {
            let holders = {
                let s = self.status.lock().expect("status lock");
                s.peers.values().filter(|p| super::leave::covers(&p.acked, &ours)).count()
            };
            let drained = ours.is_empty() || holders > 0;
            if drained || Instant::now() >= deadline {
                return drained;
            }
            self.poke();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Records whether the clean stop left a copy of everything this replica holds outside
    /// its directory (status.json `drained`).
    pub fn report_drained(&self, drained: bool) {
        self.status.lock().expect("status lock").drained = Some(drained);
        if let Err(e) = self.write_status() {
            self.note_error(format!("{}: status.json: {e}", self.cfg.data.display()));
        }
    }

    /// One tick: take local changes (logged when this returns), wake the transports, write
    /// status.
    pub fn tick(&self) -> Result<(), DaemonError> {
        let took = {
            let mut m = self.mirror();
            let d = m.take()?;
            m.maybe_checkpoint()?;
            d.is_some()
        };
        if took {
            self.poke();
        }
        self.write_status()?;
        Ok(())
    }

    /// Runs `f` on the replica (under the mirror's lock: keep it short, no I/O).
    pub fn with_replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        f(self.mirror().replica())
    }

    /// Joins a message a transport received: when it changes anything it is logged (fsync)
    /// before this returns, then mirrored into the bank. An error for which
    /// [`DaemonError::is_refusal`] holds means the message was refused; any other error
    /// means it may not be durable.
    pub fn join_remote(&self, msg: &Message) -> Result<Vec<Joined>, DaemonError> {
        let joined = self.mirror().join(msg)?;
        if joined.contains(&Joined::Applied) {
            self.poke();
        }
        Ok(joined)
    }

    /// Adopts a leaving replica's origin (see [`Mirror::adopt`]); the adopting delta is
    /// durable when this returns and the transports are woken to send it.
    pub fn adopt(&self, origin: u64, final_version: u64) -> Result<Adopted, DaemonError> {
        let a = self.mirror().adopt(origin, final_version)?;
        if matches!(a, Adopted::Now(_)) {
            self.poke();
        }
        Ok(a)
    }

    /// Leaving over NATS: asks the transport to publish a leave request naming `adopter`
    /// once every own delta is on the stream.
    pub fn request_leave(&self, adopter: u64) {
        self.status.lock().expect("status lock").leave = Some((adopter, false));
        self.poke();
    }

    /// The adopter of a requested leave not yet published.
    pub fn leave_due(&self) -> Option<u64> {
        match self.status.lock().expect("status lock").leave {
            Some((a, false)) => Some(a),
            _ => None,
        }
    }

    /// Records that the leave request is on the stream.
    pub fn leave_published(&self) {
        if let Some(l) = &mut self.status.lock().expect("status lock").leave {
            l.1 = true;
        }
    }

    /// Records a delta of `adopter` that retires this replica at `version`.
    pub fn note_retired_by(&self, adopter: u64, version: u64) {
        self.status.lock().expect("status lock").retired_by = Some((adopter, version));
        self.poke();
    }

    /// The adopter and final version, once a delta retiring this replica was seen.
    pub fn retired_by(&self) -> Option<(u64, u64)> {
        self.status.lock().expect("status lock").retired_by
    }

    /// Answers a leave request of `origin` at `final_version` (either transport): adopts it
    /// ([`Daemon::adopt`]) and says how. `who` names the asker in the log line. A refusal by
    /// the model is [`LeaveReply::Refused`]; an error means the adoption may not be durable.
    pub fn answer_leave(
        &self,
        origin: u64,
        final_version: u64,
        who: &str,
    ) -> Result<LeaveReply, DaemonError> {
        match self.adopt(origin, final_version) {
            Ok(Adopted::Now(_)) => {
                eprintln!(
                    "atomik sync: {who}adopted leaving replica {origin:016x} at version {final_version}"
                );
                Ok(LeaveReply::Adopted)
            }
            Ok(Adopted::Already(v)) => Ok(LeaveReply::Already(v)),
            Ok(Adopted::NotYet { have }) => Ok(LeaveReply::NotYet(have)),
            Err(e) if e.is_refusal() => Ok(LeaveReply::Refused(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Asks the daemon to stop (cleanly, as on SIGTERM).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.poke();
    }

    /// The current change generation.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().expect("generation lock")
    }

    /// Wakes every transport waiting in [`Daemon::wait_change`].
    pub fn poke(&self) {
        *self.generation.lock().expect("generation lock") += 1;
        self.changed.notify_all();
    }

    /// Waits until the generation differs from `seen` or `timeout` passes; returns it.
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.generation.lock().expect("generation lock");
        let (g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |g| *g == seen && !self.stop.load(Ordering::Relaxed))
            .expect("generation lock");
        *g
    }

    /// Sets another transport's status object (JSON), written to status.json as `transport`.
    pub fn set_transport_status(&self, json: String) {
        self.status.lock().expect("status lock").transport = Some(json);
    }

    /// Records (or updates) a connected peer.
    pub fn set_peer(&self, id: u64, info: PeerInfo) {
        self.status.lock().expect("status lock").peers.insert(id, info);
    }

    /// Updates a connected peer in place.
    pub fn update_peer(&self, id: u64, f: impl FnOnce(&mut PeerInfo)) {
        if let Some(p) = self.status.lock().expect("status lock").peers.get_mut(&id) {
            f(p);
        }
    }

    /// Forgets a peer whose connection ended.
    pub fn remove_peer(&self, id: u64) {
        let mut s = self.status.lock().expect("status lock");
        if let Some(p) = s.peers.remove(&id) {
            s.closed_bytes_in += p.bytes_in;
            s.closed_bytes_out += p.bytes_out;
        }
    }

    /// Connected peers now.
    pub fn peer_count(&self) -> usize {
        self.status.lock().expect("status lock").peers.len()
    }

    /// Counts a refused connection or message.
    pub fn count_refused(&self) {
        self.status.lock().expect("status lock").refused += 1;
    }

    /// Records an error for status.json and prints it.
    pub fn note_error(&self, e: String) {
        eprintln!("atomik sync: {e}");
        self.status.lock().expect("status lock").last_error = e;
    }

    fn write_status(&self) -> std::io::Result<()> {
        let (bank_part, wal) = {
            let m = self.mirror();
            let r = m.replica();
            let s = r.stats();
            // The digest reads every slot: computed again only when some version moved, so an
            // idle tick stays O(changed).
            let key: u64 = r.versions().iter().map(|v| v.1).sum();
            let digest = {
                let mut c = self.digest.lock().expect("digest lock");
                if c.0 != Some(key) {
                    *c = (Some(key), r.digest());
                }
                c.1
            };
            let origins: Vec<_> = r
                .versions()
                .iter()
                .map(|(o, v)| serde_json::json!({"origin": format!("{o:016x}"), "version": v}))
                .collect();
            (
                serde_json::json!({
                    "origin": format!("{:016x}", r.id()),
                    "version": r.version(),
                    "digest": format!("{digest:016x}"),
                    "origins": origins,
                    "applied": s.applied,
                    "duplicates": s.duplicates,
                    "buffered": s.buffered,
                    "snapshots": s.snapshots,
                    "retired": r.retired_count(),
                    "incarnation": format!("{:016x}", m.bank().memory().incarnation()),
                }),
                m.wal_len(),
            )
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let s = self.status.lock().expect("status lock");
        let peers: Vec<_> = s
            .peers
            .values()
            .map(|p| {
                serde_json::json!({
                    "addr": p.addr, "origin": format!("{:016x}", p.origin),
                    "bytes_out": p.bytes_out, "bytes_in": p.bytes_in,
                })
            })
            .collect();
        let transport: serde_json::Value = s
            .transport
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(serde_json::Value::Null);
        let mut json = bank_part;
        let o = json.as_object_mut().expect("an object");
        o.insert("bank".into(), self.cfg.bank.clone().into());
        o.insert("updated_unix".into(), now.into());
        o.insert("listen".into(), self.cfg.listen.clone().unwrap_or_default().into());
        o.insert("peers".into(), peers.into());
        o.insert("refused".into(), s.refused.into());
        o.insert("wal_bytes".into(), wal.into());
        o.insert("last_error".into(), s.last_error.clone().into());
        o.insert("transport".into(), transport);
        o.insert("drained".into(), s.drained.into());
        drop(s);
        let tmp = self.cfg.data.join("status.json.tmp");
        std::fs::write(&tmp, format!("{json}\n"))?;
        std::fs::rename(&tmp, self.cfg.data.join("status.json"))
    }
}

fn start_note(s: Start) -> &'static str {
    match s {
        Start::Adopted => "adopted: its content is replicated as local changes",
        Start::Resumed => "resumed",
        Start::Rebuilt => "the bank was lost (reboot?) and is rebuilt from the replica",
        Start::Recovered => "rebound after a lost replica directory; the rest comes from the peers",
    }
}

/// `atomikctl sync recover`: rebinds a bank whose replica directory was lost, keeping the
/// bank's untaken local changes; the replicated state is rebuilt from the peers when the
/// daemon runs again. `None` when the bank is gone too: then there is nothing to keep, and
/// starting the daemon creates the bank and rebuilds it from the peers.
pub fn recover(bank: &str, data: &std::path::Path) -> Result<Option<Start>, DaemonError> {
    match crate::Bank::open(bank) {
        Err(crate::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(MirrorError::from(e).into()),
        Ok(_) => {}
    }
    let mut opts = MirrorOptions::new(bank, data);
    opts.recover = true;
    let m = Mirror::open(&opts)?;
    Ok(Some(m.start()))
}
