//! NATS JetStream transport (feature `nats`): replicas of a bank meet in one stream instead
//! of dialing each other.
//!
//! - **Stream and subjects.** Group `G` (the bank's name across machines) uses the stream
//!   `ATOMIK_G` on the subjects `atomik.G.*`; origin `o` publishes only on `atomik.G.<o as
//!   16 hex digits>`. The stream's description records the bank's shape, and a replica of a
//!   different shape refuses to use it.
//! - **Publishing.** Each replica publishes its own committed deltas (the same wire frames as
//!   TCP, already fsynced in its log) as one chain per subject: Δ(P, V] where `P` is the
//!   version of the last message on its subject. Every message carries `Nats-Msg-Id:
//!   <origin>:<to>@<expected last sequence>` (JetStream drops a retried publish inside the duplicate window) and
//!   `Nats-Expected-Last-Subject-Sequence`, so a publish that raced with a retried one is
//!   refused instead of forking the chain; on any doubt `P` is read back from the stream.
//! - **Consuming.** An ordered consumer delivers every subject in stream order from the
//!   *cursor*: the last stream sequence whose message is durably joined (the daemon logs a
//!   join with fsync before it returns). The cursor is kept in `nats.cursor` beside the
//!   replica; a cursor that lags only replays a few messages, which join as duplicates.
//! - **Bounded replay.** The stream keeps at most [`NatsConfig::max_per_subject`] messages per
//!   subject (old ones are discarded), and every origin publishes a snapshot of its own
//!   accumulator on its subject every [`NatsConfig::snapshot_every`] messages (well under the
//!   limit) and when a session starts, so the retained part of every subject holds a
//!   snapshot: a new replica, or one that was offline longer than the retention, replays at
//!   most `max_per_subject` messages per origin, and the snapshot repairs whatever was
//!   discarded before it.
//! - **Authentication.** Every payload is a wire frame sealed with HMAC-SHA256 under the
//!   group's shared secret, bound to the stream and the subject ([`super::nats_frame`]);
//!   a receiver verifies it, and that every delta in it is of the subject's origin, before
//!   joining anything. A refused frame (unauthenticated, forged, malformed) is counted
//!   (`refused`, `last_refusal` in status.json), reported in one line naming the stream, the
//!   sequence and the subject, and passed: the cursor moves on. Who may connect to the
//!   server is the server's business ([`super::nats_connect`]).
//! - **Leaving** (`atomikctl sync leave --nats`): the leaving replica publishes, after its
//!   last delta, a sealed leave request on its own subject naming one adopter
//!   ([`nats_frame::seal_leave`]); stream order means every replica reads it after that
//!   delta. Only the named adopter acts: it adopts the origin ([`Daemon::adopt`], durable
//!   before the cursor moves past the request) and publishes the adopting delta, which every
//!   replica joins and the leaving replica takes as the answer.
//! - **Origin cap.** A frame of an origin beyond [`super::model::Config::max_origins`] is
//!   refused and passed (logged once per origin, [`super::origin_cap`]); that origin's later
//!   snapshots join once there is room.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::Publish, stream};
use futures_util::StreamExt;

use super::daemon::{Daemon, DaemonError};
use super::model::Joined;
use super::nats_connect::NatsAuth;
use super::nats_frame;
use super::origin_cap::{self, RefusalLog};
use super::tcp::LeaveReply;
use super::wire::{self, Message};

/// Options of the NATS transport.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222` (credentials may be
    /// given in the URL: `nats://user:pass@host:4222`).
    pub url: String,
    /// Name of the replicated bank on NATS (subjects `atomik.GROUP.*`, stream `ATOMIK_GROUP`).
    pub group: String,
    /// Directory of the replica (for `nats.cursor`).
    pub data: PathBuf,
    /// How often local deltas are published and the cursor saved.
    pub tick: Duration,
    /// Own messages between two snapshots of the own accumulator.
    pub snapshot_every: u64,
    /// Messages JetStream keeps per subject (must exceed twice `snapshot_every`).
    pub max_per_subject: i64,
    /// The group's shared secret: every frame is sealed and verified with it.
    pub secret: Vec<u8>,
    /// Server credentials and TLS.
    pub auth: NatsAuth,
    /// Replay the whole stream whatever the cursor says (a leaving replica looks for the
    /// adopting delta, which an earlier attempt may have passed).
    pub replay_all: bool,
}

impl NatsConfig {
    /// Defaults for `url` and `group`.
    pub fn new(url: &str, group: &str, data: PathBuf, secret: Vec<u8>) -> NatsConfig {
        NatsConfig {
            url: url.to_string(),
            group: group.to_string(),
            data,
            tick: Duration::from_millis(100),
            snapshot_every: 1000,
            max_per_subject: 4096,
            secret,
            auth: NatsAuth::default(),
            replay_all: false,
        }
    }

    /// The JetStream stream of the group.
    pub fn stream_name(&self) -> String {
        format!("ATOMIK_{}", token(&self.group))
    }

    /// The subject that origin `origin` publishes on.
    pub fn subject(&self, origin: u64) -> String {
        format!("atomik.{}.{origin:016x}", token(&self.group))
    }

    /// The origin a subject of this group belongs to.
    fn origin_of(&self, subject: &str) -> Option<u64> {
        let hex = subject.strip_prefix(&format!("atomik.{}.", token(&self.group)))?;
        (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
    }

    fn all_subjects(&self) -> String {
        format!("atomik.{}.*", token(&self.group))
    }
}

/// A subject token / stream name part: characters outside `[A-Za-z0-9_-]` become `_`.
fn token(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Errors of one NATS session (the transport retries after all but `Fatal`).
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("nats {url}: {what}: {source}")]
    Nats { url: String, what: &'static str, source: async_nats::Error },
    #[error("stream {stream}: {why}")]
    Fatal { stream: String, why: String },
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("{path}: {source}")]
    Cursor { path: PathBuf, source: std::io::Error },
    #[error("nats {url}: {source}")]
    Auth { url: String, source: super::nats_connect::AuthFileError },
}

/// The durable consumer position: the stream's creation time (a recreated stream restarts at
/// sequence 1) and the last sequence whose message is joined and logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cursor {
    created: i128,
    seq: u64,
}

impl Cursor {
    fn path(cfg: &NatsConfig) -> PathBuf {
        cfg.data.join("nats.cursor")
    }

    fn load(cfg: &NatsConfig) -> Cursor {
        let s = std::fs::read_to_string(Self::path(cfg)).unwrap_or_default();
        let mut it = s.split_whitespace();
        match (it.next().and_then(|a| a.parse().ok()), it.next().and_then(|b| b.parse().ok())) {
            (Some(created), Some(seq)) => Cursor { created, seq },
            // Missing or torn: replay from the start (joins are idempotent).
            _ => Cursor::default(),
        }
    }

    /// Replaces the file atomically. No fsync: a cursor lost in a power cut only replays.
    fn save(&self, cfg: &NatsConfig) -> Result<(), NatsError> {
        let path = Self::path(cfg);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{} {}\n", self.created, self.seq))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|source| NatsError::Cursor { path, source })
    }
}

/// Counters shown in `status.json` under `transport`.
#[derive(Debug, Default)]
struct Counters {
    connected: bool,
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
    snapshots_out: u64,
    /// Frames that verified (sealed with the shared secret for their stream and subject).
    authenticated_in: u64,
    /// Frames refused: unauthenticated, forged, malformed, or of an origin beyond the cap.
    refused: u64,
    /// The line reported for the last refused frame.
    last_refusal: String,
    /// Deltas not joinable (before a snapshot, after a retention cut).
    gaps: u64,
    sessions: u64,
}

/// A running NATS transport thread.
pub struct Transport {
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Transport {
    /// Publishes what is left (bounded wait) and stops the thread.
    pub fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Starts the transport for `daemon` on its own thread (a single-threaded tokio runtime).
pub fn spawn(daemon: Arc<Daemon>, cfg: NatsConfig) -> std::io::Result<Transport> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let thread = std::thread::Builder::new()
        .name("atomik-nats".into())
        .spawn(move || rt.block_on(run(daemon, cfg, flag)))?;
    Ok(Transport { done, thread })
}

async fn run(d: Arc<Daemon>, cfg: NatsConfig, done: Arc<AtomicBool>) {
    let mut cursor = Cursor::load(&cfg);
    let mut n = Counters::default();
    let mut backoff = Duration::from_millis(100);
    loop {
        n.sessions += 1;
        let r = session(&d, &cfg, &done, &mut cursor, &mut n).await;
        n.connected = false;
        let _ = cursor.save(&cfg);
        status(&d, &cfg, &cursor, &n, 0);
        match r {
            Ok(()) => return,
            Err(e) => {
                d.note_error(e.to_string());
                if matches!(e, NatsError::Fatal { .. }) || done.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn status(d: &Daemon, cfg: &NatsConfig, c: &Cursor, n: &Counters, published: u64) {
    let v = serde_json::json!({
        "kind": "nats",
        "url": cfg.url,
        "stream": cfg.stream_name(),
        "connected": n.connected,
        "cursor": c.seq,
        "published": published,
        "messages_in": n.messages_in,
        "bytes_in": n.bytes_in,
        "authenticated_in": n.authenticated_in,
        "messages_out": n.messages_out,
        "bytes_out": n.bytes_out,
        "snapshots_out": n.snapshots_out,
        "refused": n.refused,
        "last_refusal": n.last_refusal,
        "gaps": n.gaps,
        "sessions": n.sessions,
    });
    d.set_transport_status(v.to_string());
}

/// The head of this origin's chain on its subject: `(stream sequence, version)`.
#[derive(Debug, Clone, Copy)]
struct Head {
    seq: u64,
    version: u64,
    /// The last message is a snapshot.
    snapshot: bool,
    /// The last message did not verify: our version on the stream is unknown, and only a
    /// snapshot repairs the subject.
    unknown: bool,
}

/// Connects, sets up the stream, and runs until an error or `done`.
async fn session(
    d: &Daemon,
    cfg: &NatsConfig,
    done: &AtomicBool,
    cursor: &mut Cursor,
    n: &mut Counters,
) -> Result<(), NatsError> {
    let err = |what: &'static str| {
        let url = cfg.url.clone();
        move |e: async_nats::Error| NatsError::Nats { url: url.clone(), what, source: e }
    };
    let options =
        cfg.auth.options().await.map_err(|source| NatsError::Auth { url: cfg.url.clone(), source })?;
    let client = options.connect(cfg.url.as_str()).await.map_err(|e| err("connect")(e.into()))?;
    let js = jetstream::new(client.clone());
    let (width, op, id) = d.with_replica(|r| (r.config().width, r.config().op, r.id()));
    // Worst case a snapshot is 9 bytes per slot plus a small header.
    let need = u64::from(width) * 9 + 64;
    let max_payload = client.server_info().max_payload as u64;
    if need > max_payload {
        return Err(NatsError::Fatal {
            stream: cfg.stream_name(),
            why: format!(
                "a snapshot of {width} slots may need {need} bytes, the server's max_payload is {max_payload}"
            ),
        });
    }
    let shape = format!("atomik replicated bank: {width} slots, {op}");
    let mut st = js
        .get_or_create_stream(stream::Config {
            name: cfg.stream_name(),
            description: Some(shape.clone()),
            subjects: vec![cfg.all_subjects()],
            max_messages_per_subject: cfg.max_per_subject,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| err("create stream")(e.into()))?;
    let info = st.info().await.map_err(|e| err("stream info")(e.into()))?.clone();
    if info.config.description.as_deref() != Some(shape.as_str()) {
        return Err(NatsError::Fatal {
            stream: cfg.stream_name(),
            why: format!("it holds {:?}, this bank is {shape:?}", info.config.description),
        });
    }
    let created = info.created.unix_timestamp_nanos();
    if cursor.created != created || cursor.seq > info.state.last_sequence || cfg.replay_all {
        // A new (or recreated) stream: replay it all.
        *cursor = Cursor { created, seq: 0 };
    }
    let subject = cfg.subject(id);
    let mut head = read_head(d, cfg, &st, &subject).await.map_err(err("read own subject"))?;
    let filter = cfg.all_subjects();
    let consumer = st
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter,
            deliver_policy: if cursor.seq == 0 {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::ByStartSequence { start_sequence: cursor.seq + 1 }
            },
            ..Default::default()
        })
        .await
        .map_err(|e| err("create consumer")(e.into()))?;
    let mut messages = consumer.messages().await.map_err(|e| err("consume")(e.into()))?;
    n.connected = true;
    // A snapshot at the start of every session unless the subject ends with one (the previous
    // session may have stopped just before its snapshot), then every `snapshot_every` own
    // messages: the retained tail of the subject always holds one.
    let mut since_snapshot =
        if !head.unknown && (head.snapshot || head.version == 0) { 0 } else { cfg.snapshot_every };
    let mut tick = tokio::time::interval(cfg.tick);
    let mut saved = *cursor;
    let log = RefusalLog::default();
    loop {
        tokio::select! {
            m = messages.next() => {
                let m = match m {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(err("consume")(e.into())),
                    None => return Err(err("consume")("the consumer ended".into())),
                };
                let seq = m.info().map_err(err("message info"))?.stream_sequence;
                n.messages_in += 1;
                n.bytes_in += m.payload.len() as u64;
                receive(d, cfg, &log, seq, &m.subject, &m.payload, n)?;
                cursor.seq = seq;
            }
            _ = tick.tick() => {
                let finishing = done.load(Ordering::Relaxed);
                let publish = publish_own(d, cfg, &js, &subject, &mut head, &mut since_snapshot, n);
                let r = if finishing {
                    // Last words: bounded, whatever is left is published by the next run.
                    tokio::time::timeout(Duration::from_secs(3), publish).await.unwrap_or(Ok(()))
                } else {
                    publish.await
                };
                if *cursor != saved {
                    cursor.save(cfg)?;
                    saved = *cursor;
                }
                status(d, cfg, cursor, n, head.version);
                r?;
                if finishing {
                    // Drained when the stream (durable on the server) holds every delta of ours.
                    let ours = d.with_replica(|r| r.version());
                    d.report_drained(head.version >= ours);
                    return Ok(());
                }
            }
        }
    }
}

/// Verifies, checks and joins one message of the stream; refusals are counted and passed.
/// An error means the join may not be durable (the cursor must not move past it).
fn receive(
    d: &Daemon,
    cfg: &NatsConfig,
    log: &RefusalLog,
    seq: u64,
    subject: &str,
    payload: &[u8],
    n: &mut Counters,
) -> Result<(), NatsError> {
    let stream = cfg.stream_name();
    let refuse = |n: &mut Counters, why: String| {
        n.refused += 1;
        d.count_refused();
        let line = format!("{stream}: seq {seq} on {subject}: refused: {why}");
        d.note_error(line.clone());
        n.last_refusal = line;
    };
    let frame = match nats_frame::open_payload(&cfg.secret, &stream, subject, payload) {
        Ok(nats_frame::Payload::Frame(f)) => f,
        Ok(nats_frame::Payload::Leave { final_version, adopter }) => {
            n.authenticated_in += 1;
            let Some(origin) = cfg.origin_of(subject) else {
                refuse(n, "a leave request on a subject of no origin".into());
                return Ok(());
            };
            return match answer_leave(d, origin, final_version, adopter) {
                Ok(None) => Ok(()),
                Ok(Some(why)) => {
                    refuse(n, why);
                    Ok(())
                }
                Err(e) => Err(e.into()),
            };
        }
        Err(e) => {
            refuse(n, e.to_string());
            return Ok(());
        }
    };
    n.authenticated_in += 1;
    let msg = match wire::decode(frame) {
        Ok(m) => m,
        Err(e) => {
            refuse(n, e.to_string());
            return Ok(());
        }
    };
    let Message::Deltas { deltas, .. } = &msg else {
        return Ok(());
    };
    let owner = cfg.origin_of(subject);
    if let Some(x) = deltas.iter().find(|x| Some(x.origin) != owner) {
        refuse(n, format!("a delta of origin {:016x} on another origin's subject", x.origin));
        return Ok(());
    }
    let me = d.with_replica(|r| r.id());
    if let Some((x, v)) = deltas.iter().find_map(|x| x.retired.iter().find(|r| r.0 == me).map(|r| (x, r.1))) {
        // This replica left and is adopted: the answer a leaving replica waits for.
        d.note_retired_by(x.origin, v);
        return Ok(());
    }
    match origin_cap::join_admitted(d, &msg, log, &format!("{stream}: seq {seq} on {subject}")) {
        Ok(a) => {
            // Past a retention cut (a later snapshot repairs it): counted, not printed, as a
            // new replica may meet thousands.
            n.gaps += a.joined.iter().filter(|j| **j == Joined::Dropped).count() as u64;
            if !a.refused.is_empty() {
                n.refused += 1;
                if let Some(line) = a.first_report {
                    n.last_refusal = line;
                }
            }
            Ok(())
        }
        Err(e) if e.is_refusal() => {
            refuse(n, e.to_string());
            Ok(())
        }
        // Not durable: do not move the cursor past it.
        Err(e) => Err(e.into()),
    }
}

/// Acts on a leave request of `origin` if it names this replica: `Some(reason)` when it is
/// refused, `Err` when the adoption may not be durable (the cursor must not move past it).
fn answer_leave(
    d: &Daemon,
    origin: u64,
    final_version: u64,
    adopter: u64,
) -> Result<Option<String>, DaemonError> {
    if d.with_replica(|r| r.id()) != adopter {
        return Ok(None);
    }
    Ok(match d.answer_leave(origin, final_version, "")? {
        LeaveReply::Adopted | LeaveReply::Already(_) => None,
        LeaveReply::NotYet(have) => Some(format!(
            "leave request of {origin:016x} at version {final_version}: this replica holds version {have} of it, \
             not adopted (the leaving replica asks again)"
        )),
        LeaveReply::Refused(e) => Some(format!("leave request of {origin:016x}: {e}")),
    })
}

/// Reads the last message of `subject`: its stream sequence and the version it ends at. A
/// last message that does not verify (forged by someone who may publish on our subject) says
/// nothing of our version: 0 is assumed, so the next publish starts over with a snapshot.
async fn read_head(
    d: &Daemon,
    cfg: &NatsConfig,
    st: &stream::Stream,
    subject: &str,
) -> Result<Head, async_nats::Error> {
    match st.get_last_raw_message_by_subject(subject).await {
        Ok(m) => {
            let frame = match nats_frame::open_payload(&cfg.secret, &cfg.stream_name(), subject, &m.payload) {
                Ok(nats_frame::Payload::Frame(f)) => f,
                // A leave request of an earlier run follows our last delta, at its version.
                Ok(nats_frame::Payload::Leave { final_version, .. }) => {
                    return Ok(Head {
                        seq: m.sequence,
                        version: final_version,
                        snapshot: false,
                        unknown: false,
                    })
                }
                Err(e) => {
                    d.note_error(format!(
                        "{}: seq {} on {subject} (own subject): {e}; publishing a snapshot after it",
                        cfg.stream_name(),
                        m.sequence
                    ));
                    return Ok(Head { seq: m.sequence, version: 0, snapshot: false, unknown: true });
                }
            };
            let (version, snapshot) = match wire::decode(frame)? {
                Message::Deltas { deltas, .. } => {
                    (deltas.iter().map(|d| d.to).max().unwrap_or(0), deltas.iter().any(|d| d.replace))
                }
                Message::Summary { .. } => (0, false),
            };
            Ok(Head { seq: m.sequence, version, snapshot, unknown: false })
        }
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
            Ok(Head { seq: 0, version: 0, snapshot: false, unknown: false })
        }
        Err(e) => Err(Box::new(e)),
    }
}

/// Publishes this origin's deltas after `head` (and a snapshot when due).
async fn publish_own(
    d: &Daemon,
    cfg: &NatsConfig,
    js: &jetstream::Context,
    subject: &str,
    head: &mut Head,
    since_snapshot: &mut u64,
    n: &mut Counters,
) -> Result<(), NatsError> {
    let (id, op, delta) = d.with_replica(|r| (r.id(), r.config().op, r.since(r.id(), head.version)));
    let mut out = Vec::new();
    // After an unverifiable head only a snapshot helps (an interval from 0 overlaps).
    if let Some(delta) = delta.filter(|_| !head.unknown) {
        out.push(delta);
    }
    if *since_snapshot + out.len() as u64 >= cfg.snapshot_every {
        let snap = d.with_replica(|r| r.snapshots().into_iter().find(|s| s.origin == r.id()));
        out.extend(snap);
    }
    for delta in out {
        if delta.to < head.version || (delta.to == head.version && !delta.replace) {
            continue;
        }
        let replace = delta.replace;
        // The expected last sequence is part of the id: a retry of this publish is dropped as
        // a duplicate, but a publish after a forged message on our subject is not mistaken
        // for an earlier one of the same version.
        let id_str = format!("{id:016x}:{}{}@{}", delta.to, if replace { ":s" } else { "" }, head.seq);
        let frame = wire::encode(&Message::Deltas { op, deltas: vec![delta.clone()] });
        let frame = nats_frame::seal(&cfg.secret, &cfg.stream_name(), subject, &frame);
        let len = frame.len() as u64;
        let publish = Publish::build()
            .payload(frame.into())
            .message_id(id_str)
            .expected_last_subject_sequence(head.seq);
        let fail =
            |e: async_nats::Error| NatsError::Nats { url: cfg.url.clone(), what: "publish", source: e };
        let ack = js.send_publish(subject.to_string(), publish).await.map_err(|e| fail(Box::new(e)))?;
        let ack = ack.await.map_err(|e| fail(Box::new(e)))?;
        head.seq = ack.sequence;
        head.version = delta.to;
        head.snapshot = replace;
        head.unknown = false;
        n.messages_out += 1;
        n.bytes_out += len;
        if replace {
            n.snapshots_out += 1;
            *since_snapshot = 0;
        } else {
            *since_snapshot += 1;
        }
    }
    let own = d.with_replica(|r| r.version());
    if let Some(adopter) = d.leave_due().filter(|_| head.version >= own && !head.unknown) {
        let payload = nats_frame::seal_leave(&cfg.secret, &cfg.stream_name(), subject, own, adopter);
        let publish = Publish::build()
            .payload(payload.into())
            .message_id(format!("{id:016x}:{own}:leave@{}", head.seq))
            .expected_last_subject_sequence(head.seq);
        let fail =
            |e: async_nats::Error| NatsError::Nats { url: cfg.url.clone(), what: "publish", source: e };
        let ack = js.send_publish(subject.to_string(), publish).await.map_err(|e| fail(Box::new(e)))?;
        let ack = ack.await.map_err(|e| fail(Box::new(e)))?;
        head.seq = ack.sequence;
        n.messages_out += 1;
        d.leave_published();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_subject_tokens_and_stream_names() {
        let cfg = NatsConfig::new("nats://127.0.0.1:4222", "hits.eu west>*", PathBuf::from("/x"), vec![]);
        assert_eq!(cfg.stream_name(), "ATOMIK_hits_eu_west__");
        assert_eq!(cfg.subject(0xab), "atomik.hits_eu_west__.00000000000000ab");
        assert_eq!(cfg.all_subjects(), "atomik.hits_eu_west__.*");
        assert_eq!(cfg.origin_of("atomik.hits_eu_west__.00000000000000ab"), Some(0xab));
        assert_eq!(cfg.origin_of("atomik.other.00000000000000ab"), None);
        assert_eq!(cfg.origin_of("atomik.hits_eu_west__.ab"), None);
    }

    #[test]
    fn a_missing_or_torn_cursor_replays_from_the_start() {
        let dir = std::env::temp_dir().join(format!("atomik-nats-cursor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = NatsConfig::new("nats://x", "g", dir.clone(), vec![]);
        assert_eq!(Cursor::load(&cfg), Cursor::default());
        let c = Cursor { created: 1_700_000_000_123_456_789, seq: 42 };
        c.save(&cfg).unwrap();
        assert_eq!(Cursor::load(&cfg), c);
        std::fs::write(Cursor::path(&cfg), "1700000000123456789").unwrap(); // torn write
        assert_eq!(Cursor::load(&cfg), Cursor::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
