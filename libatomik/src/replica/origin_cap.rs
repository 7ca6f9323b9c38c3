//! Joining at the origin cap ([`super::model::Config::max_origins`]) without loops, shared by
//! both transports.
//!
//! A message is split before it is joined: the deltas of origins the cap refuses are left
//! out, the rest is joined as usual, so one new origin too many never holds back the others
//! and never ends a connection or stalls a consumer. Each refused origin is logged once (not
//! once per message), and the caller learns which origins were refused so it can tell the
//! sender (TCP) or simply move on (NATS, where the origin's later snapshots repair it once
//! there is room again).

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::daemon::{Daemon, DaemonError};
use super::model::{Joined, ReplicaError};
use super::wire::Message;

/// Refused origins logged so far are remembered up to this many (then no longer logged).
const MAX_LOGGED: usize = 4096;

/// The origins already reported as refused (one line each per daemon run).
#[derive(Debug, Default)]
pub struct RefusalLog {
    logged: Mutex<BTreeSet<u64>>,
}

/// What [`join_admitted`] did.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The outcome of each joined delta.
    pub joined: Vec<Joined>,
    /// The origins the cap refused (their deltas were left out).
    pub refused: Vec<u64>,
    /// The first refusal line for an origin not reported before.
    pub first_report: Option<String>,
}

impl RefusalLog {
    /// True the first time `origin` is reported.
    fn first(&self, origin: u64) -> bool {
        let mut l = self.logged.lock().expect("refusal log lock");
        if l.len() >= MAX_LOGGED {
            return false;
        }
        l.insert(origin)
    }
}

/// Joins what the origin cap admits of `msg` (see the module documentation). `source` names
/// the peer, or the stream/subject, for the error lines. Refusals other than the cap's are
/// returned as errors, as from [`Daemon::join_remote`].
pub fn join_admitted(
    d: &Daemon,
    msg: &Message,
    log: &RefusalLog,
    source: &str,
) -> Result<Admitted, DaemonError> {
    let Message::Deltas { op, deltas } = msg else {
        return Ok(Admitted::default());
    };
    let mut out = Admitted::default();
    let (mut refused, max) = d.with_replica(|r| (r.refused_origins(deltas), r.config().max_origins));
    // Another connection may take the last room between the split and the join: split again
    // (the refused set only grows, so this ends).
    loop {
        let keep: Vec<_> = deltas.iter().filter(|x| !refused.contains(&x.origin)).cloned().collect();
        if keep.is_empty() {
            break;
        }
        match d.join_remote(&Message::Deltas { op: *op, deltas: keep }) {
            Ok(j) => {
                out.joined = j;
                break;
            }
            Err(DaemonError::Replica(ReplicaError::TooManyOrigins { origin, .. }))
            | Err(DaemonError::Mirror(super::mirror::MirrorError::Replica(ReplicaError::TooManyOrigins {
                origin,
                ..
            }))) => refused.push(origin),
            Err(e) => return Err(e),
        }
    }
    if !refused.is_empty() {
        d.count_refused();
    }
    for &o in &refused {
        if log.first(o) {
            let line = format!(
                "{source}: origin {o:016x} refused: already {max} live origins (retire clients, or raise \
                 max_origins); its deltas are not joined here, the others are (logged once per origin)"
            );
            d.note_error(line.clone());
            out.first_report.get_or_insert(line);
        }
    }
    out.refused = refused;
    Ok(out)
}
