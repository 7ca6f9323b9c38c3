//! The TCP transport of the sync daemon: listener, dialers, and per peer one reader and one
//! writer thread.
//!
//! Isolation: no lock is held across network I/O. A peer's writer computes what the peer
//! lacks under the mirror's lock (in memory, short), releases it, then sends with a write
//! timeout; a peer that does not drain its socket within [`SEND_TIMEOUT`] is disconnected
//! and catches up by anti-entropy when it reconnects. Other peers and the tick loop never
//! wait for it.
//!
//! Before authentication a connection costs little: at most [`DaemonConfig::max_conns`]
//! are served at once (others are closed at accept), handshake records are at most
//! [`super::tcp::HANDSHAKE_MAX`] bytes, and the whole handshake must finish within
//! [`super::tcp::HANDSHAKE_TIMEOUT`].
//!
//! At the live-origin cap ([`DaemonConfig::max_origins`]) a reader joins what the cap admits
//! of each message ([`super::origin_cap`]), keeps the connection, logs each refused origin
//! once, and answers with a `REFUSED` record naming the refused origins. The sending side's
//! writer then leaves those origins out of what it sends this peer for [`REFUSAL_HOLD`]
//! (after which it offers them once more, in case the peer made room): no resend of a
//! refused origin at every anti-entropy round, no reconnect loop.
//!
//! A `LEAVE` request (`atomikctl sync leave` on the peer) is answered by adopting the peer's
//! origin ([`Daemon::adopt`]); the answer goes out through the writer like everything else.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::daemon::{Daemon, DaemonConfig, DaemonError, PeerInfo};
use super::origin_cap::{self, RefusalLog};
use super::tcp::{self, Conn, Hello, Incoming, LeaveReply, TcpError};
use super::wire::Message;

/// A peer that accepts no bytes for this long is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long origins a peer refused (its origin cap) are held back from it.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(60);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Starts the listener (if any) and one dialer per configured peer.
pub fn start(d: &Arc<Daemon>) -> Result<(), DaemonError> {
    let cfg: &DaemonConfig = d.config();
    let active = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(RefusalLog::default());
    if let Some(addr) = &cfg.listen {
        let l =
            TcpListener::bind(addr).map_err(|source| DaemonError::Listen { addr: addr.clone(), source })?;
        let d = Arc::clone(d);
        let active = Arc::clone(&active);
        let log = Arc::clone(&log);
        thread::Builder::new().name("atomik-accept".into()).spawn(move || {
            for s in l.incoming().flatten() {
                if d.stopping() {
                    break;
                }
                if active.load(Ordering::Relaxed) >= d.config().max_conns {
                    d.count_refused();
                    let _ = s.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (dd, aa, ll) = (Arc::clone(&d), Arc::clone(&active), Arc::clone(&log));
                let spawned = thread::Builder::new().name("atomik-peer".into()).spawn(move || {
                    session(&dd, s, None, &ll);
                    aa.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                    d.note_error("cannot start a peer thread".into());
                }
            }
        })?;
    }
    for p in cfg.peers.clone() {
        let (d, log) = (Arc::clone(d), Arc::clone(&log));
        thread::Builder::new().name("atomik-dial".into()).spawn(move || dial_loop(&d, &p, &log))?;
    }
    Ok(())
}

fn dial_loop(d: &Arc<Daemon>, addr: &str, log: &RefusalLog) {
    let mut backoff = Duration::from_millis(100);
    while !d.stopping() {
        let conn = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok());
        match conn {
            Some(s) => {
                if session(d, s, Some(addr.to_owned()), log) {
                    backoff = Duration::from_millis(100);
                }
            }
            None => d.note_error(format!("{addr}: connect failed")),
        }
        // Sleep in small steps so a stop is not delayed by the backoff.
        let until = Instant::now() + backoff;
        while Instant::now() < until && !d.stopping() {
            thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Handshake, then a writer thread and this reader until the connection ends. True if it
/// authenticated.
fn session(d: &Arc<Daemon>, stream: TcpStream, dialed: Option<String>, log: &RefusalLog) -> bool {
    let _ = stream.set_write_timeout(Some(SEND_TIMEOUT));
    let mut conn = Conn::new(stream);
    let me = match hello(d) {
        Ok(h) => h,
        Err(e) => {
            d.note_error(format!("nonce: {e}"));
            return false;
        }
    };
    let remote = match conn.handshake(&me, &d.config().secret) {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, TcpError::AuthFailed { .. }) {
                d.count_refused();
            }
            d.note_error(format!("refused {}: {e}", conn.peer()));
            return false;
        }
    };
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let writer = match conn.try_clone() {
        Ok(w) => w,
        Err(e) => {
            d.note_error(e.to_string());
            return true;
        }
    };
    let addr = dialed.unwrap_or_else(|| conn.peer().to_string());
    d.set_peer(id, PeerInfo { addr, origin: remote.id, ..PeerInfo::default() });
    let shared = Arc::new(Shared::default());
    let w = {
        let (d, shared) = (Arc::clone(d), Arc::clone(&shared));
        thread::Builder::new().name("atomik-send".into()).spawn(move || write_loop(&d, id, writer, &shared))
    };
    if w.is_err() {
        d.note_error("cannot start a sender thread".into());
    } else {
        read_loop(d, id, remote.id, &mut conn, &shared, log);
    }
    shared.closed.store(true, Ordering::Relaxed);
    conn.shutdown();
    d.poke();
    d.update_peer(id, |p| p.bytes_in = conn.bytes_in);
    if let Ok(w) = w {
        let _ = w.join();
    }
    d.remove_peer(id);
    true
}

/// What a peer's reader and writer share.
#[derive(Default)]
struct Shared {
    /// What the peer holds, as far as we know: its last summary, plus what we sent since.
    view: Mutex<Vec<(u64, u64)>>,
    /// A join applied something: send a summary (our acknowledgement) soon.
    ack_due: AtomicBool,
    /// The connection ended.
    closed: AtomicBool,
    /// Origins the peer's deltas were refused for, to tell it (the writer sends them).
    refuse_out: Mutex<Vec<u64>>,
    /// Origins the peer refused, held back from it until the instant given.
    held: Mutex<std::collections::BTreeMap<u64, Instant>>,
    /// Answers to the peer's `LEAVE` requests, to send.
    left_out: Mutex<Vec<LeaveReply>>,
}

fn hello(d: &Daemon) -> std::io::Result<Hello> {
    let nonce = tcp::nonce()?;
    Ok(d.with_replica(|r| Hello {
        bank: d.config().bank.clone(),
        width: r.config().width,
        op: r.config().op,
        id: r.id(),
        nonce,
    }))
}

fn read_loop(d: &Daemon, id: u64, remote: u64, conn: &mut Conn, shared: &Shared, log: &RefusalLog) {
    loop {
        let msg = match conn.recv_msg() {
            Ok(Incoming::Msg(m)) => m,
            Ok(Incoming::Leave { origin, final_version }) => {
                let Some(reply) = answer_leave(d, remote, origin, final_version, conn.peer()) else {
                    return;
                };
                shared.left_out.lock().expect("left lock").push(reply);
                d.poke();
                continue;
            }
            // Only a leaving replica expects answers; a daemon ignores a stray one.
            Ok(Incoming::Left(_)) => continue,
            Ok(Incoming::Refused(origins)) => {
                let until = Instant::now() + REFUSAL_HOLD;
                shared.held.lock().expect("held lock").extend(origins.into_iter().map(|o| (o, until)));
                continue;
            }
            Err(e) => {
                if !d.stopping() {
                    d.note_error(e.to_string());
                }
                return;
            }
        };
        match &msg {
            Message::Summary { versions, .. } => {
                // The peer's summary is what it holds durably: both its acknowledgement of
                // our deltas and the authoritative base of what it still lacks.
                *shared.view.lock().expect("view lock") = versions.clone();
                d.update_peer(id, |p| p.acked = versions.clone());
                d.poke();
            }
            Message::Deltas { .. } => match origin_cap::join_admitted(d, &msg, log, conn.peer()) {
                Ok(a) => {
                    let ack = a
                        .joined
                        .iter()
                        .any(|j| matches!(j, super::Joined::Applied | super::Joined::Buffered));
                    if ack {
                        shared.ack_due.store(true, Ordering::Relaxed);
                    }
                    if !a.refused.is_empty() {
                        shared.refuse_out.lock().expect("refuse lock").extend(a.refused);
                    }
                    if ack || !shared.refuse_out.lock().expect("refuse lock").is_empty() {
                        d.poke();
                    }
                }
                Err(e) if e.is_refusal() => {
                    d.count_refused();
                    d.note_error(format!("{}: refused a message: {e}", conn.peer()));
                    return;
                }
                Err(e) => {
                    d.note_error(format!("{}: {e}", conn.peer()));
                    return;
                }
            },
        }
        d.update_peer(id, |p| p.bytes_in = conn.bytes_in);
    }
}

/// Adopts a leaving peer's origin; `None` when the daemon can no longer answer (the error is
/// noted and the daemon stops: the mirror may be ahead of its log).
fn answer_leave(d: &Daemon, remote: u64, origin: u64, final_version: u64, peer: &str) -> Option<LeaveReply> {
    if origin != remote {
        return Some(LeaveReply::Refused(format!(
            "replica {remote:016x} asked to retire origin {origin:016x}: a replica may only retire itself"
        )));
    }
    match d.answer_leave(origin, final_version, &format!("{peer}: ")) {
        Ok(reply) => Some(reply),
        Err(e) => {
            d.note_error(format!("{peer}: adopting {origin:016x}: {e}"));
            d.request_stop();
            None
        }
    }
}

/// Sends the peer what it lacks whenever the replica changes, and a summary (our
/// acknowledgement and anti-entropy request) after joins and every `ae_every` ticks.
fn write_loop(d: &Daemon, id: u64, mut conn: Conn, shared: &Shared) {
    let cfg = d.config();
    let summary_every = cfg.tick * cfg.ae_every.max(1) as u32;
    let mut last_summary: Option<Instant> = None;
    let mut seen = d.generation();
    while !shared.closed.load(Ordering::Relaxed) {
        // Computed under the mirror's lock (memory only), sent after it is released.
        let view = shared.view.lock().expect("view lock").clone();
        let (op, mut deltas, versions) =
            d.with_replica(|r| (r.config().op, r.missing_for(&view), r.versions()));
        {
            let mut held = shared.held.lock().expect("held lock");
            let now = Instant::now();
            held.retain(|_, until| *until > now);
            deltas.retain(|x| !held.contains_key(&x.origin));
        }
        let refuse = std::mem::take(&mut *shared.refuse_out.lock().expect("refuse lock"));
        let mut r = Ok(());
        if !refuse.is_empty() {
            r = conn.send_refused(&refuse);
        }
        let left = std::mem::take(&mut *shared.left_out.lock().expect("left lock"));
        if r.is_ok() && !deltas.is_empty() {
            r = conn.send_msg(&Message::Deltas { op, deltas });
            // Optimistic: assume it arrives; the peer's next summary corrects us.
            let mut v = shared.view.lock().expect("view lock");
            *v = merge_views(&v, &versions);
        }
        let due = shared.ack_due.swap(false, Ordering::Relaxed)
            || last_summary.is_none_or(|t| t.elapsed() >= summary_every);
        if r.is_ok() && due {
            let summary = d.with_replica(|rep| rep.summary());
            r = conn.send_msg(&summary);
            last_summary = Some(Instant::now());
        }
        for reply in &left {
            if r.is_ok() {
                r = conn.send_left(reply);
            }
        }
        d.update_peer(id, |p| p.bytes_out = conn.bytes_out);
        if let Err(e) = r {
            if !d.stopping() && !shared.closed.load(Ordering::Relaxed) {
                d.note_error(format!("{}: dropped: {e}", conn.peer()));
            }
            conn.shutdown();
            return;
        }
        seen = d.wait_change(seen, cfg.tick);
    }
}

/// Per origin, the larger version of two sorted views.
fn merge_views(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut m: std::collections::BTreeMap<u64, u64> = a.iter().copied().collect();
    for &(o, v) in b {
        let e = m.entry(o).or_insert(0);
        *e = (*e).max(v);
    }
    m.into_iter().collect()
}
