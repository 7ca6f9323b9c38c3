//! Authenticated TCP anti-entropy between replicas of one bank.
//!
//! Records on the stream are `len:u32le kind:u8 payload` (`len` counts kind + payload, at
//! most [`wire::MAX_FRAME`]). A connection starts with a handshake in which each side proves
//! knowledge of the shared secret without sending it:
//!
//! 1. both send `HELLO`: protocol version, bank name, width, operator, origin id, 16-byte
//!    random nonce;
//! 2. both send `AUTH`: HMAC-SHA256(secret, "atomik-sync-v1" ‖ peer nonce ‖ own nonce ‖ own
//!    id ‖ bank), which binds the proof to this connection's nonces (no replay);
//! 3. each checks the peer's proof in constant time; on a mismatch it sends `ERROR` and
//!    closes before any replica data flows.
//!
//! After that, `FRAME` records carry wire messages (see [`super::wire`]): each side sends its
//! summary, answers summaries with what the peer lacks, and every tick pushes whatever its
//! optimistic view of the peer says is missing (own new deltas and relayed ones). Every
//! join is logged (fsync) before a summary can acknowledge it.
//!
//! `LEAVE` and `LEFT` records (protocol 3) retire a replica (`atomikctl sync leave`): the
//! leaving replica, once the peer holds everything it holds, sends `LEAVE`
//! `origin:u64le final_version:u64le` for its own origin (the peer refuses any other), and
//! the peer adopts it and answers `LEFT` `code:u8 value:u64le reason:utf8` (see
//! [`LeaveReply`]).
//!
//! A `REFUSED` record (protocol 2) lists origins whose deltas the receiver refused at its
//! live-origin cap: `origin:u64le*`. The sender then holds those origins back from this peer
//! for a while instead of resending them at every summary (see [`super::tcp_peers`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::op::Op;
use super::wire::{self, Message, WireError};

/// Largest handshake record accepted: nothing big is allocated before authentication.
pub const HANDSHAKE_MAX: usize = 1024;
/// The whole handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Version of the TCP handshake.
pub const PROTOCOL: u8 = 3;
const K_HELLO: u8 = 1;
const K_AUTH: u8 = 2;
const K_FRAME: u8 = 3;
const K_ERROR: u8 = 4;
const K_REFUSED: u8 = 5;
const K_LEAVE: u8 = 6;
const K_LEFT: u8 = 7;
const CONTEXT: &[u8] = b"atomik-sync-v1";

/// Errors of a sync connection.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error("{peer}: {source}")]
    Io { peer: String, source: std::io::Error },
    #[error("{peer}: authentication failed (wrong or missing shared secret)")]
    AuthFailed { peer: String },
    #[error("{peer}: refused by peer: {reason}")]
    Refused { peer: String, reason: String },
    #[error("{peer}: protocol error: {reason}")]
    Protocol { peer: String, reason: String },
    #[error("{peer}: bad frame: {source}")]
    Wire { peer: String, source: WireError },
}

/// A record received after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A wire message.
    Msg(Message),
    /// The peer refused these origins' deltas (its live-origin cap).
    Refused(Vec<u64>),
    /// The peer leaves the cluster and asks us to adopt its origin at this final version.
    Leave { origin: u64, final_version: u64 },
    /// The answer to our `LEAVE`.
    Left(LeaveReply),
}

/// The answer to a `LEAVE` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReply {
    /// Adopted now: the adopting delta is durable here and on its way to every replica.
    Adopted,
    /// Already retired here, at this final version.
    Already(u64),
    /// This replica holds only this version of the origin: send the rest and ask again.
    NotYet(u64),
    /// Refused, with the reason.
    Refused(String),
}

/// What a side announces in its `HELLO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub bank: String,
    pub width: u32,
    pub op: Op,
    pub id: u64,
    pub nonce: [u8; 16],
}

/// A framed, authenticated connection.
pub struct Conn {
    stream: TcpStream,
    peer: String,
    /// The peer's hello (after [`Conn::handshake`]).
    pub remote: Option<Hello>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

fn mac(secret: &[u8], their_nonce: &[u8; 16], my_nonce: &[u8; 16], my_id: u64, bank: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(CONTEXT);
    m.update(their_nonce);
    m.update(my_nonce);
    m.update(&my_id.to_le_bytes());
    m.update(bank.as_bytes());
    m
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        let peer = stream.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string());
        let _ = stream.set_nodelay(true);
        Conn { stream, peer, remote: None, bytes_in: 0, bytes_out: 0 }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    fn io(&self) -> impl Fn(std::io::Error) -> TcpError + '_ {
        |source| TcpError::Io { peer: self.peer.clone(), source }
    }

    fn proto(&self, reason: impl Into<String>) -> TcpError {
        TcpError::Protocol { peer: self.peer.clone(), reason: reason.into() }
    }

    /// A second handle for writing from another thread.
    pub fn try_clone(&self) -> Result<Conn, TcpError> {
        Ok(Conn {
            stream: self.stream.try_clone().map_err(self.io())?,
            peer: self.peer.clone(),
            remote: self.remote.clone(),
            bytes_in: 0,
            bytes_out: 0,
        })
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<(), TcpError> {
        self.stream.set_read_timeout(t).map_err(self.io())
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn send(&mut self, kind: u8, payload: &[u8]) -> Result<(), TcpError> {
        let mut rec = Vec::with_capacity(5 + payload.len());
        rec.extend_from_slice(&(payload.len() as u32 + 1).to_le_bytes());
        rec.push(kind);
        rec.extend_from_slice(payload);
        self.stream.write_all(&rec).map_err(self.io())?;
        self.bytes_out += rec.len() as u64;
        Ok(())
    }

    fn recv(&mut self) -> Result<(u8, Vec<u8>), TcpError> {
        self.recv_limited(wire::MAX_FRAME + 1, None)
    }

    /// Reads `buf` fully, before `deadline` when there is one.
    fn read_full(&mut self, buf: &mut [u8], deadline: Option<std::time::Instant>) -> Result<(), TcpError> {
        let Some(deadline) = deadline else {
            return self.stream.read_exact(buf).map_err(self.io());
        };
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(self.proto("handshake timed out"));
            }
            self.stream.set_read_timeout(Some(left)).map_err(self.io())?;
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(TcpError::Io {
                        peer: self.peer.clone(),
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return Err(self.proto("handshake timed out"))
                }
                Err(e) => return Err(self.io()(e)),
            }
        }
        Ok(())
    }

    /// Receives one record of at most `max` bytes (kind included).
    fn recv_limited(
        &mut self,
        max: usize,
        deadline: Option<std::time::Instant>,
    ) -> Result<(u8, Vec<u8>), TcpError> {
        let mut len = [0u8; 4];
        self.read_full(&mut len, deadline)?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > max {
            return Err(self.proto(format!("record length {len} (at most {max} here)")));
        }
        let mut buf = vec![0u8; len];
        self.read_full(&mut buf, deadline)?;
        self.bytes_in += 4 + len as u64;
        let kind = buf.remove(0);
        Ok((kind, buf))
    }

    /// Sends one wire message.
    pub fn send_msg(&mut self, msg: &Message) -> Result<(), TcpError> {
        self.send(K_FRAME, &wire::encode(msg))
    }

    /// The peer's ERROR frame as an error carrying its reason.
    fn refused(&self, body: &[u8]) -> TcpError {
        TcpError::Refused { peer: self.peer.clone(), reason: String::from_utf8_lossy(body).into() }
    }

    /// Receives a handshake frame of kind `want`: an ERROR frame is the peer refusing us (its
    /// reason carried), any other kind a protocol error.
    fn recv_handshake(
        &mut self,
        want: u8,
        expected: &str,
        deadline: std::time::Instant,
    ) -> Result<Vec<u8>, TcpError> {
        let (kind, body) = self.recv_limited(HANDSHAKE_MAX, Some(deadline))?;
        if kind == K_ERROR {
            return Err(self.refused(&body));
        }
        if kind != want {
            return Err(self.proto(expected));
        }
        Ok(body)
    }

    /// Tells the peer that its deltas of `origins` were refused (at most a frame's worth).
    pub fn send_refused(&mut self, origins: &[u64]) -> Result<(), TcpError> {
        let body: Vec<u8> = origins.iter().take(wire::MAX_FRAME / 8).flat_map(|o| o.to_le_bytes()).collect();
        self.send(K_REFUSED, &body)
    }

    /// Asks the peer to adopt our origin at `final_version` (`atomikctl sync leave`).
    pub fn send_leave(&mut self, origin: u64, final_version: u64) -> Result<(), TcpError> {
        let mut body = origin.to_le_bytes().to_vec();
        body.extend_from_slice(&final_version.to_le_bytes());
        self.send(K_LEAVE, &body)
    }

    /// Answers a `LEAVE` request.
    pub fn send_left(&mut self, reply: &LeaveReply) -> Result<(), TcpError> {
        let (code, value, reason) = match reply {
            LeaveReply::Adopted => (0u8, 0, ""),
            LeaveReply::Already(v) => (1, *v, ""),
            LeaveReply::NotYet(v) => (2, *v, ""),
            LeaveReply::Refused(r) => (3, 0, r.as_str()),
        };
        let mut body = vec![code];
        body.extend_from_slice(&value.to_le_bytes());
        body.extend_from_slice(&reason.as_bytes()[..reason.len().min(HANDSHAKE_MAX)]);
        self.send(K_LEFT, &body)
    }

    fn parse_left(&self, body: &[u8]) -> Result<LeaveReply, TcpError> {
        let bad = || self.proto("malformed LEFT record");
        let value = u64::from_le_bytes(body.get(1..9).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        Ok(match body[0] {
            0 => LeaveReply::Adopted,
            1 => LeaveReply::Already(value),
            2 => LeaveReply::NotYet(value),
            3 => LeaveReply::Refused(String::from_utf8_lossy(&body[9..]).into()),
            _ => return Err(bad()),
        })
    }

    /// Receives one record (the peer's `ERROR` becomes [`TcpError::Refused`]).
    pub fn recv_msg(&mut self) -> Result<Incoming, TcpError> {
        let (kind, body) = self.recv()?;
        match kind {
            K_FRAME => wire::decode(&body)
                .map(Incoming::Msg)
                .map_err(|source| TcpError::Wire { peer: self.peer.clone(), source }),
            K_REFUSED if body.len() % 8 == 0 => Ok(Incoming::Refused(
                body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
            )),
            K_REFUSED => Err(self.proto("malformed REFUSED record")),
            K_LEAVE if body.len() == 16 => Ok(Incoming::Leave {
                origin: u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
                final_version: u64::from_le_bytes(body[8..].try_into().expect("8 bytes")),
            }),
            K_LEAVE => Err(self.proto("malformed LEAVE record")),
            K_LEFT => self.parse_left(&body).map(Incoming::Left),
            K_ERROR => Err(self.refused(&body)),
            k => Err(self.proto(format!("unexpected record kind {k}"))),
        }
    }

    /// Runs the mutual HMAC challenge; on success `remote` holds the peer's hello.
    pub fn handshake(&mut self, me: &Hello, secret: &[u8]) -> Result<Hello, TcpError> {
        let deadline = std::time::Instant::now() + HANDSHAKE_TIMEOUT;
        let mut h = vec![PROTOCOL];
        h.extend_from_slice(&(me.bank.len() as u16).to_le_bytes());
        h.extend_from_slice(me.bank.as_bytes());
        h.extend_from_slice(&me.width.to_le_bytes());
        h.push(me.op.code() as u8);
        h.extend_from_slice(&me.id.to_le_bytes());
        h.extend_from_slice(&me.nonce);
        self.send(K_HELLO, &h)?;
        let body = self.recv_handshake(K_HELLO, "expected HELLO", deadline)?;
        let them = self.parse_hello(&body)?;
        let proof = mac(secret, &them.nonce, &me.nonce, me.id, &me.bank).finalize().into_bytes();
        self.send(K_AUTH, &proof)?;
        let body = self.recv_handshake(K_AUTH, "expected AUTH", deadline)?;
        let ok = mac(secret, &me.nonce, &them.nonce, them.id, &them.bank).verify_slice(&body).is_ok();
        if !ok {
            let _ = self.send(K_ERROR, b"authentication failed");
            return Err(TcpError::AuthFailed { peer: self.peer.clone() });
        }
        if them.width != me.width || them.op != me.op {
            let why = format!(
                "bank shape mismatch: ours {} slots {}, theirs {} slots {}",
                me.width, me.op, them.width, them.op
            );
            let _ = self.send(K_ERROR, why.as_bytes());
            return Err(self.proto(why));
        }
        self.set_read_timeout(None)?;
        self.remote = Some(them.clone());
        Ok(them)
    }

    fn parse_hello(&self, b: &[u8]) -> Result<Hello, TcpError> {
        let bad = || self.proto("malformed HELLO");
        if b.first() != Some(&PROTOCOL) {
            return Err(self.proto(format!("unsupported protocol {:?}", b.first())));
        }
        let n = u16::from_le_bytes(b.get(1..3).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let bank = std::str::from_utf8(b.get(3..3 + n).ok_or_else(bad)?).map_err(|_| bad())?.to_string();
        let rest = b.get(3 + n..).ok_or_else(bad)?;
        if rest.len() != 4 + 1 + 8 + 16 {
            return Err(bad());
        }
        let width = u32::from_le_bytes(rest[0..4].try_into().map_err(|_| bad())?);
        let op = Op::from_code(u32::from(rest[4])).ok_or_else(bad)?;
        let id = u64::from_le_bytes(rest[5..13].try_into().map_err(|_| bad())?);
        let nonce: [u8; 16] = rest[13..29].try_into().map_err(|_| bad())?;
        Ok(Hello { bank, width, op, id, nonce })
    }
}

/// 16 random bytes for a handshake nonce.
pub fn nonce() -> std::io::Result<[u8; 16]> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}
