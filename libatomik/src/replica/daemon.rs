//! The sync daemon behind `atomikctl sync serve|join`: one replica of a named bank, mirrored
//! into that bank, kept durable in a directory, exchanged with peers over authenticated TCP.
//!
//! **Mirroring.** Local producers ACCUM into the bank as usual. Every tick the daemon READs
//! the bank; the difference from what it last mirrored is the local change, which it ACCUMs
//! into the replica and commits as a delta (logged with fsync, then sent). Remote changes it
//! joins are ACCUMed into the bank, so READ of the bank is the converged state.
//!
//! **Restart.** After a clean stop (SIGTERM/SIGINT: last tick committed, checkpoint written,
//! `clean` marker fsynced) or with a brand-new replica directory, whatever the bank holds
//! beyond the replica's state is taken as local changes made offline. After a crash the bank
//! is reloaded (LOAD) from the persisted replica: acknowledged deltas are kept, and local
//! ACCUMs of at most the last tick that were never committed are dropped (they could not be
//! told apart from remote changes mirrored just before the crash).

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::model::{Config, Joined, Replica, ReplicaError};
use super::op::Op;
use super::persist::{PersistError, Store};
use super::tcp::{self, Conn, Hello, TcpError};
use super::wire::Message;
use crate::{Bank, CreateOptions};

/// Options of a sync daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub bank: String,
    /// Replica directory (snapshot, log, status).
    pub data: PathBuf,
    /// Slots and operator to create the bank with when it does not exist.
    pub create: Option<(u64, Op)>,
    pub secret: Vec<u8>,
    pub listen: Option<String>,
    pub peers: Vec<String>,
    pub tick: Duration,
    /// Ticks between summaries sent to each peer.
    pub ae_every: u64,
}

/// Errors of the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Bank(#[from] crate::Error),
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("bank {bank:?} does not exist: give its --slots (and --op) to create it")]
    NoBank { bank: String },
    #[error("bank {bank:?} has {slots} slots: replication supports at most {max}")]
    TooWide { bank: String, slots: u64, max: u64 },
    #[error("listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

struct Peer {
    conn: Conn,
    addr: String,
    remote_id: u64,
    view: Vec<(u64, u64)>,
}

struct Inner {
    replica: Replica,
    store: Store,
    bank: Bank,
    seen: Vec<u64>,
    peers: BTreeMap<u64, Peer>,
    refused: u64,
    last_error: String,
    bytes_in: u64,
    bytes_out: u64,
    /// Another transport's status (a JSON object), shown in status.json.
    transport: Option<String>,
}

/// A running daemon's shared state.
pub struct Daemon {
    cfg: DaemonConfig,
    inner: Mutex<Inner>,
    next_conn: AtomicU64,
    stop: Arc<AtomicBool>,
}

impl Daemon {
    /// Opens the bank and the replica directory and reconciles them (see the module doc).
    pub fn open(cfg: DaemonConfig, stop: Arc<AtomicBool>) -> Result<Arc<Daemon>, DaemonError> {
        let bank = match Bank::open(&cfg.bank) {
            Ok(b) => b,
            Err(crate::Error::NotFound { .. }) => match cfg.create {
                Some((slots, op)) => Bank::create(&cfg.bank, CreateOptions::new(slots).op(op))?,
                None => return Err(DaemonError::NoBank { bank: cfg.bank.clone() }),
            },
            Err(e) => return Err(e.into()),
        };
        let width = u32::try_from(bank.slots())
            .ok()
            .filter(|&w| u64::from(w) <= (crate::replica::wire::MAX_FRAME / 9) as u64)
            .ok_or(DaemonError::TooWide {
                bank: cfg.bank.clone(),
                slots: bank.slots(),
                max: (crate::replica::wire::MAX_FRAME / 9) as u64,
            })?;
        let (store, mut replica) = Store::open(&cfg.data, Config::new(width, bank.op()))?;
        let clean = cfg.data.join("clean");
        let fresh = replica.version() == 0 && replica.versions().is_empty();
        let state = replica.state().to_vec();
        if clean.exists() || fresh {
            // Offline local changes: import them as local ACCUMs.
            let cur = bank.read_all();
            let op = bank.op();
            for (i, (&c, &s)) in cur.iter().zip(&state).enumerate() {
                if c != s {
                    replica.accum(i as u32, op.difference(c, s)).expect("slot in range");
                }
            }
            let _ = std::fs::remove_file(&clean);
        } else {
            for (i, &s) in state.iter().enumerate() {
                bank.load(i as u64, s)?;
            }
        }
        let seen = replica.state().to_vec();
        let d = Arc::new(Daemon {
            cfg,
            inner: Mutex::new(Inner {
                replica,
                store,
                bank,
                seen,
                peers: BTreeMap::new(),
                refused: 0,
                last_error: String::new(),
                bytes_in: 0,
                bytes_out: 0,
                transport: None,
            }),
            next_conn: AtomicU64::new(1),
            stop,
        });
        d.tick(0)?;
        Ok(d)
    }

    /// Runs listeners, dialers and the tick loop until the stop flag is set.
    pub fn run(self: &Arc<Daemon>) -> Result<(), DaemonError> {
        if let Some(addr) = &self.cfg.listen {
            let l = TcpListener::bind(addr)
                .map_err(|source| DaemonError::Listen { addr: addr.clone(), source })?;
            let me = Arc::clone(self);
            thread::spawn(move || {
                for s in l.incoming().flatten() {
                    let me = Arc::clone(&me);
                    thread::spawn(move || me.serve_conn(Conn::new(s), None));
                }
            });
        }
        for p in self.cfg.peers.clone() {
            let me = Arc::clone(self);
            thread::spawn(move || me.dial_loop(p));
        }
        let mut n = 1u64;
        while !self.stop.load(Ordering::Relaxed) {
            thread::sleep(self.cfg.tick);
            self.tick(n)?;
            n += 1;
        }
        // Clean stop: last local changes committed, checkpoint, marker.
        self.tick(n)?;
        let mut g = self.inner.lock().expect("daemon lock");
        let g = &mut *g;
        g.store.checkpoint(&g.replica)?;
        let clean = self.cfg.data.join("clean");
        std::fs::File::create(&clean)?.sync_all()?;
        std::fs::File::open(&self.cfg.data)?.sync_all()?;
        Ok(())
    }

    fn dial_loop(self: Arc<Daemon>, addr: String) {
        let mut backoff = Duration::from_millis(100);
        while !self.stop.load(Ordering::Relaxed) {
            let conn = addr
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok());
            match conn {
                Some(s) => {
                    let up = self.serve_conn(Conn::new(s), Some(addr.clone()));
                    if up {
                        backoff = Duration::from_millis(100);
                    }
                }
                None => self.note_error(format!("{addr}: connect failed")),
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Runs `f` on the replica (under the daemon's lock: keep it short).
    pub fn with_replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        f(&self.inner.lock().expect("daemon lock").replica)
    }

    /// Joins a message that another transport received: when it changes anything it is
    /// logged (fsync) before this returns, then mirrored into the bank. A
    /// [`DaemonError::Replica`] means the message was refused (shape, origin limits); any
    /// other error means it may not be durable.
    pub fn join_remote(&self, msg: &Message) -> Result<Vec<Joined>, DaemonError> {
        let mut g = self.inner.lock().expect("daemon lock");
        join_logged(&mut g, msg)
    }

    /// Sets another transport's status object (JSON), written to status.json as `transport`.
    pub fn set_transport_status(&self, json: String) {
        if let Ok(mut g) = self.inner.lock() {
            g.transport = Some(json);
        }
    }

    /// Records an error for status.json and prints it.
    pub fn note_error(&self, e: String) {
        eprintln!("atomik sync: {e}");
        if let Ok(mut g) = self.inner.lock() {
            g.last_error = e;
        }
    }

    /// Handshake, then read messages until the connection ends. True if it authenticated.
    fn serve_conn(self: &Arc<Daemon>, mut conn: Conn, dialed: Option<String>) -> bool {
        let me = {
            let g = self.inner.lock().expect("daemon lock");
            Hello {
                bank: self.cfg.bank.clone(),
                width: g.replica.config().width,
                op: g.replica.config().op,
                id: g.replica.id(),
                nonce: match tcp::nonce() {
                    Ok(n) => n,
                    Err(e) => {
                        drop(g);
                        self.note_error(format!("nonce: {e}"));
                        return false;
                    }
                },
            }
        };
        let remote = match conn.handshake(&me, &self.cfg.secret) {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, TcpError::AuthFailed { .. }) {
                    self.inner.lock().expect("daemon lock").refused += 1;
                }
                self.note_error(format!("refused {}: {e}", conn.peer()));
                return false;
            }
        };
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let writer = match conn.try_clone() {
            Ok(w) => w,
            Err(e) => {
                self.note_error(e.to_string());
                return true;
            }
        };
        {
            let mut g = self.inner.lock().expect("daemon lock");
            let summary = g.replica.summary();
            let mut peer = Peer {
                conn: writer,
                addr: dialed.unwrap_or_else(|| conn.peer().to_string()),
                remote_id: remote.id,
                view: Vec::new(),
            };
            if peer.conn.send_msg(&summary).is_err() {
                return true;
            }
            g.peers.insert(id, peer);
        }
        loop {
            let msg = match conn.recv_msg() {
                Ok(m) => m,
                Err(e) => {
                    self.note_error(e.to_string());
                    break;
                }
            };
            if let Err(e) = self.handle(id, &msg) {
                self.note_error(format!("{}: {e}", conn.peer()));
                break;
            }
        }
        conn.shutdown();
        let mut g = self.inner.lock().expect("daemon lock");
        g.bytes_in += conn.bytes_in;
        if let Some(p) = g.peers.remove(&id) {
            g.bytes_out += p.conn.bytes_out;
        }
        true
    }

    fn handle(&self, peer: u64, msg: &Message) -> Result<(), String> {
        let mut g = self.inner.lock().expect("daemon lock");
        let g = &mut *g;
        match msg {
            Message::Summary { versions, .. } => {
                let deltas = g.replica.missing_for(versions);
                let op = g.replica.config().op;
                if let Some(p) = g.peers.get_mut(&peer) {
                    p.view = versions.clone();
                    if !deltas.is_empty() {
                        p.conn.send_msg(&Message::Deltas { op, deltas }).map_err(|e| e.to_string())?;
                        p.view = merge_views(&p.view, &g.replica.versions());
                    }
                }
            }
            Message::Deltas { .. } => {
                join_logged(g, msg).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// One tick: pull local changes from the bank, commit, log, push to peers, status.
    pub fn tick(&self, n: u64) -> Result<(), DaemonError> {
        let mut g = self.inner.lock().expect("daemon lock");
        let g = &mut *g;
        let op = g.replica.config().op;
        let cur = g.bank.read_all();
        for (i, (&c, s)) in cur.iter().zip(g.seen.iter_mut()).enumerate() {
            if c != *s {
                g.replica.accum(i as u32, op.difference(c, *s)).expect("slot in range");
                *s = c;
            }
        }
        if let Some(d) = g.replica.commit() {
            g.store.log(&Message::Deltas { op, deltas: vec![d] })?;
        }
        let versions = g.replica.versions();
        let summary = n.is_multiple_of(self.cfg.ae_every.max(1)).then(|| g.replica.summary());
        let mut dead = Vec::new();
        for (&id, p) in g.peers.iter_mut() {
            let deltas = g.replica.missing_for(&p.view);
            let mut r = Ok(());
            if !deltas.is_empty() {
                r = p.conn.send_msg(&Message::Deltas { op, deltas });
                p.view = merge_views(&p.view, &versions);
            }
            if let (Ok(()), Some(s)) = (&r, &summary) {
                r = p.conn.send_msg(s);
            }
            if r.is_err() {
                p.conn.shutdown();
                dead.push(id);
            }
        }
        for id in dead {
            if let Some(p) = g.peers.remove(&id) {
                g.bytes_out += p.conn.bytes_out;
            }
        }
        g.store.maybe_checkpoint(&g.replica)?;
        write_status(&self.cfg, g)?;
        Ok(())
    }
}

/// Joins `msg`, logs it (fsync) if it changed anything, and mirrors it into the bank.
fn join_logged(g: &mut Inner, msg: &Message) -> Result<Vec<Joined>, DaemonError> {
    let joined = g.replica.join_message(msg)?;
    if joined.iter().any(|j| matches!(j, Joined::Applied | Joined::Buffered)) {
        g.store.log(msg)?;
        mirror_remote(g)?;
    }
    Ok(joined)
}

/// Per origin, the larger version of two sorted views.
fn merge_views(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut m: BTreeMap<u64, u64> = a.iter().copied().collect();
    for &(o, v) in b {
        let e = m.entry(o).or_insert(0);
        *e = (*e).max(v);
    }
    m.into_iter().collect()
}

/// ACCUMs into the bank what the replica's state gained from remote joins.
fn mirror_remote(g: &mut Inner) -> Result<(), crate::Error> {
    let op = g.replica.config().op;
    let state = g.replica.state();
    for (i, (&t, s)) in state.iter().zip(g.seen.iter_mut()).enumerate() {
        if t != *s {
            g.bank.accum(i as u64, op.difference(t, *s))?;
            *s = t;
        }
    }
    Ok(())
}

fn write_status(cfg: &DaemonConfig, g: &Inner) -> std::io::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let versions: Vec<String> = g
        .replica
        .versions()
        .iter()
        .map(|(o, v)| format!("{{\"origin\":\"{o:016x}\",\"version\":{v}}}"))
        .collect();
    let peers: Vec<String> = g
        .peers
        .values()
        .map(|p| {
            format!(
                "{{\"addr\":{:?},\"origin\":\"{:016x}\",\"bytes_out\":{}}}",
                p.addr, p.remote_id, p.conn.bytes_out
            )
        })
        .collect();
    let s = g.replica.stats();
    let json = format!(
        "{{\"bank\":{:?},\"origin\":\"{:016x}\",\"version\":{},\"digest\":\"{:016x}\",\"updated_unix\":{now},\
         \"listen\":{:?},\"peers\":[{}],\"origins\":[{}],\"applied\":{},\"duplicates\":{},\"buffered\":{},\
         \"snapshots\":{},\"refused\":{},\"wal_bytes\":{},\"last_error\":{:?},\"transport\":{}}}\n",
        cfg.bank,
        g.replica.id(),
        g.replica.version(),
        g.replica.digest(),
        cfg.listen.clone().unwrap_or_default(),
        peers.join(","),
        versions.join(","),
        s.applied,
        s.duplicates,
        s.buffered,
        s.snapshots,
        g.refused,
        g.store.wal_len(),
        g.last_error,
        g.transport.as_deref().unwrap_or("null")
    );
    let tmp = cfg.data.join("status.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, cfg.data.join("status.json"))
}
