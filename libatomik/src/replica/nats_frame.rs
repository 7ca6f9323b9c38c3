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
//! The format byte has its high bit set, which no unauthenticated payload of earlier builds
//! has (they started with a wire frame, whose first byte is `WIRE_VERSION << 4 | kind`): such
//! payloads are recognised and refused with their own message.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::WIRE_VERSION;

/// First byte of an authenticated payload (format 1).
pub const FORMAT: u8 = 0x81;
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

fn tag(secret: &[u8], stream: &str, subject: &str, frame: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(CONTEXT);
    m.update(&[FORMAT]);
    for part in [stream, subject] {
        m.update(&(part.len() as u16).to_le_bytes());
        m.update(part.as_bytes());
    }
    m.update(frame);
    m
}

/// The payload carrying `frame` on `subject` of `stream`.
pub fn seal(secret: &[u8], stream: &str, subject: &str, frame: &[u8]) -> Vec<u8> {
    let t = tag(secret, stream, subject, frame).finalize().into_bytes();
    let mut out = Vec::with_capacity(1 + TAG_LEN + frame.len());
    out.push(FORMAT);
    out.extend_from_slice(&t);
    out.extend_from_slice(frame);
    out
}

/// The frame inside `payload`, once its tag is verified for `stream` and `subject`.
pub fn open<'a>(
    secret: &[u8],
    stream: &str,
    subject: &str,
    payload: &'a [u8],
) -> Result<&'a [u8], FrameAuthError> {
    match payload.first() {
        None => return Err(FrameAuthError::Short(0)),
        Some(&b) if b >> 4 == WIRE_VERSION => return Err(FrameAuthError::Unauthenticated),
        Some(&FORMAT) => {}
        Some(&b) => return Err(FrameAuthError::Format(b)),
    }
    if payload.len() < 1 + TAG_LEN {
        return Err(FrameAuthError::Short(payload.len()));
    }
    let (t, frame) = payload[1..].split_at(TAG_LEN);
    tag(secret, stream, subject, frame).verify_slice(t).map_err(|_| FrameAuthError::BadMac)?;
    Ok(frame)
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
    fn old_unauthenticated_and_unknown_payloads_are_told_apart() {
        let s = "atomik.g.0000000000000007";
        assert_eq!(open(b"k", "ATOMIK_g", s, &frame()), Err(FrameAuthError::Unauthenticated));
        assert_eq!(open(b"k", "ATOMIK_g", s, &[0x82, 0, 0]), Err(FrameAuthError::Format(0x82)));
        assert_eq!(open(b"k", "ATOMIK_g", s, &[FORMAT, 0, 0]), Err(FrameAuthError::Short(3)));
    }
}
