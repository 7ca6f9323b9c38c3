//! `atomikctl sync leave --nats`: retire a replica that replicates through a NATS stream.
//!
//! There is no connection to a peer to ask, so the leaving replica names its adopter (an
//! origin id from that replica's `atomikctl sync status`) and asks through the stream: it
//! runs the NATS transport without taking any more local changes (its final version is the
//! one it has after the last take), publishes everything it holds that the stream lacks, then
//! a sealed leave request on its own subject ([`super::nats_frame::seal_leave`]). Stream
//! order delivers the request to the adopter after the last delta; the adopter adopts and
//! publishes the adopting delta, and seeing that delta on the stream is the answer.
//!
//! As over TCP ([`super::leave`]), the adopter is recorded in `leaving` before the request
//! is published, a later leave must name the same adopter, no daemon starts on the
//! directory while `leaving` is there (the request stays on the stream: the adopter may act
//! on it whenever it runs), and `left` is written at the end.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::daemon::{Daemon, DaemonConfig};
use super::leave::{asked_adopter, record_asked, record_left, LeaveError, LeaveReport, Left};
use super::nats::{spawn, NatsConfig};
use super::persist::Store;

/// Options of a leave through NATS.
#[derive(Debug, Clone)]
pub struct NatsLeaveOptions {
    pub bank: String,
    /// The transport configuration (its `data` is the replica directory).
    pub nats: NatsConfig,
    /// The replica asked to adopt this one (`None`: the one an interrupted leave asked).
    pub adopter: Option<u64>,
    /// Bound on the wait for the adopter's answer.
    pub timeout: Duration,
}

/// Retires the replica in `o.nats.data` through the stream (see the module doc).
pub fn leave_nats(o: &NatsLeaveOptions) -> Result<LeaveReport, LeaveError> {
    let data = o.nats.data.clone();
    if let Some(left) = Left::load(&data)? {
        return Ok(LeaveReport { left, already: true });
    }
    if Store::peek(&data)?.is_none() {
        return Err(LeaveError::NotReplica { bank: o.bank.clone(), data });
    }
    let asked = asked_adopter(&data)?;
    let adopter = match (asked, o.adopter) {
        (Some(a), Some(b)) if a != b => {
            return Err(LeaveError::WrongAdopter { peer: o.nats.url.clone(), asked: a, got: b })
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(LeaveError::NoAdopter),
    };
    let mut cfg = DaemonConfig::new(&o.bank, &data);
    cfg.secret = o.nats.secret.clone();
    cfg.leaving = true;
    let stop = Arc::new(AtomicBool::new(false));
    let d = Daemon::open(cfg, Arc::clone(&stop))?;
    // The last local changes are taken once, before an adopter is asked; after that the
    // version is final (changes made since stay untaken in the bank, for `sync recover`).
    if asked.is_none() {
        d.tick()?;
    }
    let (id, version) = d.with_replica(|r| (r.id(), r.version()));
    if adopter == id {
        return Err(LeaveError::Refused {
            peer: o.nats.url.clone(),
            reason: "a replica cannot adopt itself: name another replica's origin".into(),
        });
    }
    if version > 0 {
        record_asked(&data, adopter)?;
        d.request_leave(adopter);
    }
    // From the start of the stream: an earlier attempt may have read past the adopting delta
    // (the adopter's later snapshots carry the retirement record too).
    let nats = NatsConfig { replay_all: true, ..o.nats.clone() };
    let transport = spawn(Arc::clone(&d), nats)
        .map_err(|source| LeaveError::Connect { peer: o.nats.url.clone(), source })?;
    let deadline = Instant::now() + o.timeout;
    let answered = loop {
        if version == 0 || d.retired_by().is_some_and(|(a, v)| a == adopter && v >= version) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    d.request_stop();
    transport.finish();
    if !answered {
        return Err(LeaveError::Timeout {
            peer: o.nats.url.clone(),
            what: if d.leave_due().is_some() {
                "the leave request could not be published"
            } else {
                "the adopter did not adopt this replica (is it running on this stream? the request stays there)"
            },
            secs: o.timeout.as_secs(),
        });
    }
    let left = Left { origin: id, adopter: if version == 0 { 0 } else { adopter }, version };
    record_left(&data, &left)?;
    Ok(LeaveReport { left, already: false })
}
