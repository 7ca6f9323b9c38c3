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
//!   <origin>:<to>` (JetStream drops a retried publish inside the duplicate window) and
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::Publish, stream};
use futures_util::StreamExt;

use super::daemon::{Daemon, DaemonError};
use super::model::Joined;
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
}

impl NatsConfig {
    /// Defaults for `url` and `group`.
    pub fn new(url: &str, group: &str, data: PathBuf) -> NatsConfig {
        NatsConfig {
            url: url.to_string(),
            group: group.to_string(),
            data,
            tick: Duration::from_millis(100),
            snapshot_every: 1000,
            max_per_subject: 4096,
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
    refused: u64,
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
    d.set_transport_status(format!(
        "{{\"kind\":\"nats\",\"url\":{:?},\"stream\":{:?},\"connected\":{},\"cursor\":{},\"published\":{},\
         \"messages_in\":{},\"bytes_in\":{},\"messages_out\":{},\"bytes_out\":{},\"snapshots_out\":{},\
         \"refused\":{},\"gaps\":{},\"sessions\":{}}}",
        cfg.url,
        cfg.stream_name(),
        n.connected,
        c.seq,
        published,
        n.messages_in,
        n.bytes_in,
        n.messages_out,
        n.bytes_out,
        n.snapshots_out,
        n.refused,
        n.gaps,
        n.sessions
    ));
}

/// The head of this origin's chain on its subject: `(stream sequence, version)`.
#[derive(Debug, Clone, Copy)]
struct Head {
    seq: u64,
    version: u64,
    /// The last message is a snapshot.
    snapshot: bool,
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
    let client = async_nats::ConnectOptions::new()
        .name("atomik sync")
        .connection_timeout(Duration::from_secs(3))
        .connect(cfg.url.as_str())
        .await
        .map_err(|e| err("connect")(e.into()))?;
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
    if cursor.created != created || cursor.seq > info.state.last_sequence {
        // A new (or recreated) stream: replay it all.
        *cursor = Cursor { created, seq: 0 };
    }
    let subject = cfg.subject(id);
    let mut head = read_head(&st, &subject).await.map_err(err("read own subject"))?;
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
    let mut since_snapshot = if head.snapshot || head.version == 0 { 0 } else { cfg.snapshot_every };
    let mut tick = tokio::time::interval(cfg.tick);
    let mut saved = *cursor;
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
                match wire::decode(&m.payload) {
                    Ok(msg @ Message::Deltas { .. }) => match d.join_remote(&msg) {
                        Ok(joined) => {
                            // Past a retention cut (a later snapshot repairs it): counted, not
                            // printed, as a new replica may meet thousands.
                            n.gaps += joined.iter().filter(|j| **j == Joined::Dropped).count() as u64;
                        }
                        Err(e) if e.is_refusal() => {
                            n.refused += 1;
                            d.note_error(format!("{}: seq {seq} on {}: {e}", cfg.stream_name(), m.subject));
                        }
                        // Not durable: do not move the cursor past it.
                        Err(e) => return Err(e.into()),
                    },
                    Ok(Message::Summary { .. }) => {}
                    Err(e) => {
                        n.refused += 1;
                        d.note_error(format!("{}: seq {seq} on {}: {e}", cfg.stream_name(), m.subject));
                    }
                }
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
                    return Ok(());
                }
            }
        }
    }
}

/// Reads the last message of `subject`: its stream sequence and the version it ends at.
async fn read_head(st: &stream::Stream, subject: &str) -> Result<Head, async_nats::Error> {
    match st.get_last_raw_message_by_subject(subject).await {
        Ok(m) => {
            let (version, snapshot) = match wire::decode(&m.payload)? {
                Message::Deltas { deltas, .. } => {
                    (deltas.iter().map(|d| d.to).max().unwrap_or(0), deltas.iter().any(|d| d.replace))
                }
                Message::Summary { .. } => (0, false),
            };
            Ok(Head { seq: m.sequence, version, snapshot })
        }
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
            Ok(Head { seq: 0, version: 0, snapshot: false })
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
    if let Some(delta) = delta {
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
        let id_str = format!("{id:016x}:{}{}", delta.to, if replace { ":s" } else { "" });
        let frame = wire::encode(&Message::Deltas { op, deltas: vec![delta.clone()] });
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
        n.messages_out += 1;
        n.bytes_out += len;
        if replace {
            n.snapshots_out += 1;
            *since_snapshot = 0;
        } else {
            *since_snapshot += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_subject_tokens_and_stream_names() {
        let cfg = NatsConfig::new("nats://127.0.0.1:4222", "hits.eu west>*", PathBuf::from("/nonexistent"));
        assert_eq!(cfg.stream_name(), "ATOMIK_hits_eu_west__");
        assert_eq!(cfg.subject(0xab), "atomik.hits_eu_west__.00000000000000ab");
        assert_eq!(cfg.all_subjects(), "atomik.hits_eu_west__.*");
    }

    #[test]
    fn a_missing_or_torn_cursor_replays_from_the_start() {
        let dir = std::env::temp_dir().join(format!("atomik-nats-cursor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = NatsConfig::new("nats://x", "g", dir.clone());
        assert_eq!(Cursor::load(&cfg), Cursor::default());
        let c = Cursor { created: 1_700_000_000_123_456_789, seq: 42 };
        c.save(&cfg).unwrap();
        assert_eq!(Cursor::load(&cfg), c);
        std::fs::write(Cursor::path(&cfg), "1700000000123456789").unwrap(); // torn write
        assert_eq!(Cursor::load(&cfg), Cursor::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
