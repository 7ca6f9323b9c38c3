//! `atomikctl sync leave`: retire a replica for good, so that its origin stops costing every
//! other replica an accumulator.
//!
//! The leaving replica's daemon is stopped first (its directory is locked while it runs).
//! Then, over one authenticated TCP connection to a peer that becomes the *adopter*:
//!
//! 1. the last local changes are taken and logged, as a daemon's tick would (only before an
//!    adopter was asked: a resumed leave keeps the final version it asked with);
//! 2. the peer is sent whatever it lacks until its summary covers every version this
//!    replica holds (so nothing exists only here any more);
//! 3. the adopter is recorded in `leaving` (durable) and asked to adopt (`LEAVE`); it moves
//!    this replica's column into its own in one delta that carries the retirement record
//!    ([`super::mirror::Mirror::adopt`]), and every replica that joins that delta drops the
//!    origin and keeps a 16-byte tombstone;
//! 4. on its answer, `left` is written: from then on no daemon starts on this directory.
//!
//! Exactly one replica may adopt an origin (two would count it twice), so a leave that was
//! interrupted after step 3 is resumed only with the same adopter, recorded in `leaving`;
//! asking it again is harmless (it answers "already retired"). The bank itself stays as it
//! is: it reads the replicated state as of the leave plus any later local change, and
//! `atomikctl sync recover` with a new directory makes it a replica again, keeping those
//! changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::mirror::{Mirror, MirrorError, MirrorOptions};
use super::persist::{write_atomic, PersistError, Store};
use super::tcp::{self, Conn, Hello, Incoming, LeaveReply, TcpError};
use super::wire::Message;

/// Errors of a leave, naming the peer or directory concerned.
#[derive(Debug, thiserror::Error)]
pub enum LeaveError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error(transparent)]
    Tcp(#[from] TcpError),
    #[error(transparent)]
    Daemon(#[from] super::daemon::DaemonError),
    #[error("{data} holds no replica of bank {bank:?}: nothing to leave")]
    NotReplica { bank: String, data: PathBuf },
    #[error("{peer}: cannot connect: {source}")]
    Connect { peer: String, source: std::io::Error },
    #[error(
        "this replica already asked replica {asked:016x} to adopt it, but {peer} is replica {got:016x}: \
         only one replica may adopt an origin; run leave again with --peer pointing at {asked:016x}"
    )]
    WrongAdopter { peer: String, asked: u64, got: u64 },
    #[error("{peer}: refused to adopt this replica: {reason}")]
    Refused { peer: String, reason: String },
    #[error("{peer}: the peer's live-origin cap refused this replica's deltas: it cannot adopt them")]
    PeerCap { peer: String },
    #[error(
        "no adopter: give --adopter ORIGIN, the origin id of a running replica (from its `atomikctl sync \
         status`)"
    )]
    NoAdopter,
    #[error("{peer}: {what} within {secs} s; run leave again")]
    Timeout { peer: String, what: &'static str, secs: u64 },
}

/// What `left` records: this directory's replica is retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub origin: u64,
    /// The replica that adopted it (0: it never produced a delta, nothing to adopt).
    pub adopter: u64,
    /// Its final version.
    pub version: u64,
}

impl Left {
    fn path(dir: &Path) -> PathBuf {
        dir.join("left")
    }

    /// The `left` record of `dir`, if the replica there left.
    pub fn load(dir: &Path) -> Result<Option<Left>, PersistError> {
        read_record(&Left::path(dir))
    }

    fn store(&self, dir: &Path) -> Result<(), PersistError> {
        write_record(dir, &Left::path(dir), self)
    }
}

/// Options of a leave.
#[derive(Debug, Clone)]
pub struct LeaveOptions {
    pub bank: String,
    pub data: PathBuf,
    /// The peer that adopts this replica (`host:port` of a running daemon).
    pub peer: String,
    pub secret: Vec<u8>,
    /// Bound on the whole exchange.
    pub timeout: Duration,
}

/// What a leave did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaveReport {
    pub left: Left,
    /// True when the directory had already left (nothing done now).
    pub already: bool,
}

/// Retires the replica in `o.data` (see the module doc).
pub fn leave(o: &LeaveOptions) -> Result<LeaveReport, LeaveError> {
    if let Some(left) = Left::load(&o.data)? {
        return Ok(LeaveReport { left, already: true });
    }
    if Store::peek(&o.data)?.is_none() {
        return Err(LeaveError::NotReplica { bank: o.bank.clone(), data: o.data.clone() });
    }
    let mut mo = MirrorOptions::new(&o.bank, &o.data);
    mo.leaving = true;
    let mut m = Mirror::open(&mo)?;
    // The last local changes are taken once, before an adopter is asked: after that the
    // version is final (the adopter may already hold it as the final one), and changes made
    // since stay untaken in the bank, for `sync recover`.
    if asked_adopter(&o.data)?.is_none() {
        m.take()?;
        m.checkpoint()?;
    }
    let (id, version) = (m.replica().id(), m.replica().version());
    let deadline = Instant::now() + o.timeout;
    let (mut conn, remote) = connect(o, &m, deadline)?;
    if let Some(asked) = asked_adopter(&o.data)?.filter(|&a| a != remote) {
        return Err(LeaveError::WrongAdopter { peer: o.peer.clone(), asked, got: remote });
    }
    let incoming = reader(&conn)?;
    let timeout = |what| LeaveError::Timeout { peer: o.peer.clone(), what, secs: o.timeout.as_secs() };
    drain(o, &m, &mut conn, &incoming, deadline)
        .map_err(|e| e.unwrap_or_else(|| timeout("the peer did not acknowledge every version")))?;
    if version > 0 {
        record_asked(&o.data, remote)?;
        let reply = ask(&m, &mut conn, &incoming, deadline)
            .map_err(|e| e.unwrap_or_else(|| timeout("no answer to the leave request")))?;
        if let LeaveReply::Refused(reason) = reply {
            return Err(LeaveError::Refused { peer: o.peer.clone(), reason });
        }
    }
    conn.shutdown();
    let left = Left { origin: id, adopter: if version == 0 { 0 } else { remote }, version };
    record_left(&o.data, &left)?;
    Ok(LeaveReport { left, already: false })
}

/// Dials and authenticates; returns the connection and the peer's origin id.
fn connect(o: &LeaveOptions, m: &Mirror, deadline: Instant) -> Result<(Conn, u64), LeaveError> {
    use std::net::ToSocketAddrs;
    let io = |source| LeaveError::Connect { peer: o.peer.clone(), source };
    let addr = o.peer.to_socket_addrs().map_err(io)?.next().ok_or_else(|| {
        io(std::io::Error::new(std::io::ErrorKind::NotFound, "the address resolves to nothing"))
    })?;
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let stream = std::net::TcpStream::connect_timeout(&addr, left).map_err(io)?;
    let _ = stream.set_write_timeout(Some(super::tcp_peers::SEND_TIMEOUT));
    let mut conn = Conn::new(stream);
    let r = m.replica();
    let me = Hello {
        bank: o.bank.clone(),
        width: r.config().width,
        op: r.config().op,
        id: r.id(),
        nonce: tcp::nonce().map_err(io)?,
    };
    let remote = conn.handshake(&me, &o.secret)?;
    Ok((conn, remote.id))
}

/// A thread that reads records into a channel, so that sending never waits for reading.
fn reader(conn: &Conn) -> Result<mpsc::Receiver<Result<Incoming, TcpError>>, LeaveError> {
    let mut r = conn.try_clone()?;
    let peer = r.peer().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("atomik-leave-read".into())
        .spawn(move || loop {
            let got = r.recv_msg();
            let end = got.is_err();
            if tx.send(got).is_err() || end {
                return;
            }
        })
        .map_err(|source| LeaveError::Connect { peer, source })?;
    Ok(rx)
}

/// Next record before `deadline`; `Err(None)` on timeout.
fn next(
    rx: &mpsc::Receiver<Result<Incoming, TcpError>>,
    deadline: Instant,
) -> Result<Incoming, Option<LeaveError>> {
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(Ok(i)) => Ok(i),
        Ok(Err(e)) => Err(Some(e.into())),
        Err(_) => Err(None),
    }
}

/// Summaries after a send that may still lack an origin before it counts as retired there.
const RETIRED_AFTER: u32 = 3;

/// Sends the peer what it lacks until its summary covers every version held here of every
/// other origin (this replica's own is checked by the `LEAVE` answer: a retired origin is in
/// no summary). An origin the peer still lacks after [`RETIRED_AFTER`] summaries that
/// followed a send is retired there (it joins and ignores it): an adopter carries it.
fn drain(
    o: &LeaveOptions,
    m: &Mirror,
    conn: &mut Conn,
    rx: &mpsc::Receiver<Result<Incoming, TcpError>>,
    deadline: Instant,
) -> Result<(), Option<LeaveError>> {
    let me = m.replica().id();
    let op = m.replica().config().op;
    let mut pending: BTreeMap<u64, (u64, Option<u32>)> = m
        .replica()
        .versions()
        .into_iter()
        .filter(|&(id, _)| id != me)
        .map(|(id, v)| (id, (v, None)))
        .collect();
    loop {
        match next(rx, deadline)? {
            Incoming::Msg(Message::Summary { versions, .. }) => {
                let has = |id: u64| versions.binary_search_by_key(&id, |p| p.0).map_or(0, |k| versions[k].1);
                pending.retain(|&id, (v, seen)| {
                    if let Some(n) = seen {
                        *n += 1;
                    }
                    has(id) < *v && seen.is_none_or(|n| n < RETIRED_AFTER)
                });
                if pending.is_empty() {
                    return Ok(());
                }
                let deltas = m.replica().missing_for(&versions);
                for d in &deltas {
                    if let Some((_, seen)) = pending.get_mut(&d.origin) {
                        seen.get_or_insert(0);
                    }
                }
                conn.send_msg(&Message::Deltas { op, deltas }).map_err(|e| Some(e.into()))?;
            }
            Incoming::Refused(_) => return Err(Some(LeaveError::PeerCap { peer: o.peer.clone() })),
            // What the peer sends us is of no use to a replica that leaves.
            Incoming::Msg(Message::Deltas { .. }) | Incoming::Left(_) | Incoming::Leave { .. } => {}
        }
    }
}

/// Sends the peer what it lacks of this replica's own origin, then asks it to adopt it.
fn ask(
    m: &Mirror,
    conn: &mut Conn,
    rx: &mpsc::Receiver<Result<Incoming, TcpError>>,
    deadline: Instant,
) -> Result<LeaveReply, Option<LeaveError>> {
    let r = m.replica();
    loop {
        conn.send_leave(r.id(), r.version()).map_err(|e| Some(e.into()))?;
        match await_reply(rx, deadline)? {
            LeaveReply::NotYet(have) => {
                std::thread::sleep(Duration::from_millis(50));
                let deltas: Vec<_> = r.since(r.id(), have).into_iter().collect();
                let op = r.config().op;
                conn.send_msg(&Message::Deltas { op, deltas }).map_err(|e| Some(e.into()))?;
            }
            reply => return Ok(reply),
        }
    }
}

fn await_reply(
    rx: &mpsc::Receiver<Result<Incoming, TcpError>>,
    deadline: Instant,
) -> Result<LeaveReply, Option<LeaveError>> {
    loop {
        if let Incoming::Left(reply) = next(rx, deadline)? {
            return Ok(reply);
        }
    }
}

/// True when `acked` holds at least `ours`' version of every origin.
pub(crate) fn covers(acked: &[(u64, u64)], ours: &[(u64, u64)]) -> bool {
    ours.iter().all(|&(o, v)| acked.binary_search_by_key(&o, |a| a.0).is_ok_and(|k| acked[k].1 >= v))
}

/// What `leaving` records: the one replica this replica asked to adopt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaving {
    adopter: u64,
}

fn leaving_path(dir: &Path) -> PathBuf {
    dir.join("leaving")
}

/// The adopter a leave in `dir` asked, if one was asked and the leave did not finish.
pub fn asked_adopter(dir: &Path) -> Result<Option<u64>, PersistError> {
    Ok(read_record::<Leaving>(&leaving_path(dir))?.map(|l| l.adopter))
}

/// Records, durably, that this replica asks `adopter` (before the request is sent).
pub(crate) fn record_asked(dir: &Path, adopter: u64) -> Result<(), PersistError> {
    write_record(dir, &leaving_path(dir), &Leaving { adopter })
}

/// Records that the replica in `dir` left (and forgets the pending request).
pub(crate) fn record_left(dir: &Path, left: &Left) -> Result<(), PersistError> {
    left.store(dir)?;
    let _ = std::fs::remove_file(leaving_path(dir));
    Ok(())
}

/// A small record file: `key=value` lines of hexadecimal numbers (readable with `cat`).
trait Record: Sized {
    fn fields(&self) -> Vec<(&'static str, u64)>;
    fn from_fields(get: &dyn Fn(&str) -> Option<u64>) -> Option<Self>;
}

impl Record for Left {
    fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![("origin", self.origin), ("adopter", self.adopter), ("version", self.version)]
    }
    fn from_fields(get: &dyn Fn(&str) -> Option<u64>) -> Option<Left> {
        Some(Left { origin: get("origin")?, adopter: get("adopter")?, version: get("version")? })
    }
}

impl Record for Leaving {
    fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![("adopter", self.adopter)]
    }
    fn from_fields(get: &dyn Fn(&str) -> Option<u64>) -> Option<Leaving> {
        Some(Leaving { adopter: get("adopter")? })
    }
}

fn write_record(dir: &Path, path: &Path, r: &impl Record) -> Result<(), PersistError> {
    let text: String = r.fields().iter().map(|(k, v)| format!("{k}={v:016x}\n")).collect();
    write_atomic(dir, path, text.as_bytes())
}

fn read_record<R: Record>(path: &Path) -> Result<Option<R>, PersistError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::Io { path: path.to_path_buf(), source }),
    };
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| u64::from_str_radix(v.trim(), 16).ok())
    };
    R::from_fields(&get)
        .map(Some)
        .ok_or_else(|| PersistError::Corrupt { path: path.to_path_buf(), why: "unreadable record".into() })
}
