//! The authenticated NATS payload: every message a replica publishes on the stream is
//!
//! ```text
//! payload = format:u8 tag:[u8; 32] frame          format = 0x81 (FORMAT)
//! tag     = HMAC-SHA256(secret, CONTEXT ‖ format ‖ len:u16le stream ‖ len:u16le subject ‖ frame)
//! ```
//!
//! where `frame` is a wire frame ([`super::wire`]) and `secret` the shared secret of the
//! group (the one TCP uses). The tag binds the frame to the stream (the group) and the
//! subject (the origin), so a frame cannot be replayed under another origin or in another
//! group; inside its own subject a replayed frame is an idempotent duplicate. Receivers
//! verify it in constant time before decoding anything else.
//!
//! A leave request (`atomikctl sync leave --nats`) is its own format, sealed the same way:
//!
//! ```text
//! payload = 0x82 tag:[u8; 32] final_version:u64le adopter:u64le
//! ```
//!
//! published by the leaving replica on its own subject (the subject names who leaves).
//!
//! The format byte has its high bit set, which no unauthenticated payload of earlier builds
//! has (they started with a wire frame, whose first byte is `WIRE_VERSION << 4 | kind`): such
//! payloads are recognised and refused with their own message.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::WIRE_VERSION;

/// First byte of an authenticated payload (format 1).
pub const FORMAT: u8 = 0x81;
/// First byte of an authenticated leave request.
pub const LEAVE_FORMAT: u8 = 0x82;
/// Length of the tag.
pub const TAG_LEN: usize = 32;
const CONTEXT: &[u8] = b"atomik-nats-frame-v1";

/// Why a payload was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameAuthError {
    #[error("unauthenticated frame (no MAC: published by an atomik before NATS authentication, or forged)")]
    Unauthenticated,
    #[error("unknown NATS payload format {0:#04x} (this build speaks {FORMAT:#04x})")]
    Format(u8),
    #[error("payload of {0} bytes is too short for an authenticated frame")]
    Short(usize),
    #[error("bad MAC: not signed with this group's shared secret for this stream and subject")]
    BadMac,
}

fn tag(secret: &[u8], format: u8, stream: &str, subject: &str, frame: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(CONTEXT);
    m.update(&[format]);
    for part in [stream, subject] {
        m.update(&(part.len() as u16).to_le_bytes());
        m.update(part.as_bytes());
    }
    m.update(frame);
    m
}

/// The payload carrying `frame` on `subject` of `stream`.
pub fn seal(secret: &[u8], stream: &str, subject: &str, frame: &[u8]) -> Vec<u8> {
    seal_format(secret, FORMAT, stream, subject, frame)
}

/// The payload asking replica `adopter` to adopt the subject's origin at `final_version`.
pub fn seal_leave(secret: &[u8], stream: &str, subject: &str, final_version: u64, adopter: u64) -> Vec<u8> {
    let mut body = final_version.to_le_bytes().to_vec();
    body.extend_from_slice(&adopter.to_le_bytes());
    seal_format(secret, LEAVE_FORMAT, stream, subject, &body)
}

fn seal_format(secret: &[u8], format: u8, stream: &str, subject: &str, frame: &[u8]) -> Vec<u8> {
    let t = tag(secret, format, stream, subject, frame).finalize().into_bytes();
    let mut out = Vec::with_capacity(1 + TAG_LEN + frame.len());
    out.push(format);
    out.extend_from_slice(&t);
    out.extend_from_slice(frame);
    out
}

/// What an authenticated payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A wire frame.
    Frame(&'a [u8]),
    /// A leave request of the subject's origin.
    Leave { final_version: u64, adopter: u64 },
}

/// The frame inside `payload`, once its tag is verified for `stream` and `subject` (a leave
/// request is refused here: see [`open_payload`]).
pub fn open<'a>(
    secret: &[u8],
    stream: &str,
    subject: &str,
    payload: &'a [u8],
) -> Result<&'a [u8], FrameAuthError> {
    match payload.first() {
        Some(&LEAVE_FORMAT) => Err(FrameAuthError::Format(LEAVE_FORMAT)),
        _ => match open_payload(secret, stream, subject, payload)? {
            Payload::Frame(f) => Ok(f),
            Payload::Leave { .. } => Err(FrameAuthError::Format(LEAVE_FORMAT)),
        },
    }
}

/// What `payload` carries, once its tag is verified for `stream` and `subject`.
pub fn open_payload<'a>(
    secret: &[u8],
    stream: &str,
    subject: &str,
    payload: &'a [u8],
) -> Result<Payload<'a>, FrameAuthError> {
    let format = match payload.first() {
        None => return Err(FrameAuthError::Short(0)),
        Some(&b) if b >> 4 == WIRE_VERSION => return Err(FrameAuthError::Unauthenticated),
        Some(&b) if b == FORMAT || b == LEAVE_FORMAT => b,
        Some(&b) => return Err(FrameAuthError::Format(b)),
    };
    if payload.len() < 1 + TAG_LEN {
        return Err(FrameAuthError::Short(payload.len()));
    }
    let (t, body) = payload[1..].split_at(TAG_LEN);
    tag(secret, format, stream, subject, body).verify_slice(t).map_err(|_| FrameAuthError::BadMac)?;
    if format == FORMAT {
        return Ok(Payload::Frame(body));
    }
    if body.len() != 16 {
        return Err(FrameAuthError::Short(payload.len()));
    }
    Ok(Payload::Leave {
        final_version: u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
        adopter: u64::from_le_bytes(body[8..].try_into().expect("8 bytes")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::wire::{self, Delta, Message};
    use crate::Op;

    fn frame() -> Vec<u8> {
        let d = Delta { origin: 7, from: 0, to: 1, slots: vec![(3, 9)], ..Delta::default() };
        wire::encode(&Message::Deltas { op: Op::Add, deltas: vec![d] })
    }

    #[test]
    fn a_sealed_frame_opens_only_with_its_secret_stream_and_subject() {
        let f = frame();
        let p = seal(b"secret-1", "ATOMIK_g", "atomik.g.0000000000000007", &f);
        assert_eq!(open(b"secret-1", "ATOMIK_g", "atomik.g.0000000000000007", &p), Ok(&f[..]));
        let bad = Err(FrameAuthError::BadMac);
        assert_eq!(open(b"secret-2", "ATOMIK_g", "atomik.g.0000000000000007", &p), bad);
        assert_eq!(open(b"secret-1", "ATOMIK_h", "atomik.g.0000000000000007", &p), bad);
        assert_eq!(open(b"secret-1", "ATOMIK_g", "atomik.g.0000000000000008", &p), bad);
        let mut flipped = p.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(open(b"secret-1", "ATOMIK_g", "atomik.g.0000000000000007", &flipped), bad);
    }

    #[test]
    fn a_leave_request_opens_only_as_one_and_only_with_its_secret_and_subject() {
        let s = "atomik.g.0000000000000007";
        let p = seal_leave(b"secret-1", "ATOMIK_g", s, 41, 0xab);
        let want = Ok(Payload::Leave { final_version: 41, adopter: 0xab });
        assert_eq!(open_payload(b"secret-1", "ATOMIK_g", s, &p), want);
        assert_eq!(open(b"secret-1", "ATOMIK_g", s, &p), Err(FrameAuthError::Format(LEAVE_FORMAT)));
        let bad = Err(FrameAuthError::BadMac);
        assert_eq!(open_payload(b"secret-2", "ATOMIK_g", s, &p), bad);
        assert_eq!(open_payload(b"secret-1", "ATOMIK_g", "atomik.g.0000000000000008", &p), bad);
        // The same bytes under the frame format do not verify: formats are bound by the tag.
        let mut as_frame = p.clone();
        as_frame[0] = FORMAT;
        assert_eq!(open_payload(b"secret-1", "ATOMIK_g", s, &as_frame), bad);
    }

    #[test]
    fn old_unauthenticated_and_unknown_payloads_are_told_apart() {
        let s = "atomik.g.0000000000000007";
        assert_eq!(open(b"k", "ATOMIK_g", s, &frame()), Err(FrameAuthError::Unauthenticated));
        assert_eq!(open(b"k", "ATOMIK_g", s, &[0x83, 0, 0]), Err(FrameAuthError::Format(0x83)));
        assert_eq!(open(b"k", "ATOMIK_g", s, &[FORMAT, 0, 0]), Err(FrameAuthError::Short(3)));
    }
}
