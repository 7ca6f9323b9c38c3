//! The replication wire format, version 1.
//!
//! One *frame* is one message, carried whole by the transport (a length-prefixed record on
//! TCP, one message on NATS, one record in the write-ahead log):
//!
//! ```text
//! frame   = head:u8 op:u8 body crc32c:u32le        head = WIRE_VERSION << 4 | kind
//! kind 1  = Deltas:  count:varint delta*count
//! delta   = flags:u8 origin:varint from:varint span:varint slots [retired]
//!           flags: bit0 replace (a snapshot of the origin's accumulator, from = 0)
//!                  bit1 slot indices as a bitmap, else as gaps
//!                  bit2 a retired-origin list follows the slots
//!           to = from + span
//! slots   = gaps:   n:varint (index - previous - 1):varint * n          values
//!         | bitmap: nbytes:varint bitmap[nbytes] (LSB first)            values
//! values  = XOR: u64le * n | ADD: zigzag(value as i64):varint * n
//! retired = m:varint (origin:varint version:varint) * m
//! kind 2  = Summary: width:varint count:varint (origin_gap:varint version:varint)*count
//! ```
//!
//! The checksum is CRC-32C (Castagnoli) of every byte before it: the hardware-accelerated
//! `crc32c` crate computes it. The decoder checks it first, then parses with every count
//! bounded by the bytes that remain, so malformed input is an error, never a panic, and
//! never allocates more than a small multiple of the frame's length.

use super::op::Op;
use super::varint::{self, VarintError};

/// Version in the high nibble of a frame's first byte.
pub const WIRE_VERSION: u8 = 1;
/// Largest frame a transport should accept (256 MiB: a snapshot of 16 Mi slots fits).
pub const MAX_FRAME: usize = 256 << 20;

const KIND_DELTAS: u8 = 1;
const KIND_SUMMARY: u8 = 2;
const FLAG_REPLACE: u8 = 1;
const FLAG_BITMAP: u8 = 2;
const FLAG_RETIRED: u8 = 4;
const CRC_LEN: usize = 4;

/// A causal delta-interval Δ(from, to] of one origin's accumulator, or a snapshot of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta {
    /// The replica that produced the changes.
    pub origin: u64,
    /// The origin version the receiver must already have (0 for a snapshot).
    pub from: u64,
    /// The origin version the receiver has after joining.
    pub to: u64,
    /// A snapshot: `slots` are the whole accumulator (other slots are the identity).
    pub replace: bool,
    /// `(slot, value)`, indices strictly increasing; values combine into the accumulator.
    pub slots: Vec<(u32, u64)>,
    /// Origins whose final accumulators this origin adopted: `(origin, final version)`.
    pub retired: Vec<(u64, u64)>,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Deltas and snapshots under one operator.
    Deltas { op: Op, deltas: Vec<Delta> },
    /// The sender's version of every origin it holds: anti-entropy asks for what is missing.
    Summary { op: Op, width: u32, versions: Vec<(u64, u64)> },
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes is too short")]
    Short(usize),
    #[error("frame is {0} bytes, more than the {MAX_FRAME}-byte limit")]
    TooLong(usize),
    #[error("checksum mismatch: frame says {stated:#010x}, content gives {computed:#010x}")]
    Checksum { stated: u32, computed: u32 },
    #[error("unsupported wire version {0} (this build speaks {WIRE_VERSION})")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("unknown operator code {0}")]
    Op(u8),
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

fn op_code(op: Op) -> u8 {
    op.code() as u8
}

/// Encodes a message into a new frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(msg, &mut out);
    out
}

/// Appends the frame of `msg` to `out`.
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    match msg {
        Message::Deltas { op, deltas } => {
            out.push(WIRE_VERSION << 4 | KIND_DELTAS);
            out.push(op_code(*op));
            varint::put_u64(out, deltas.len() as u64);
            for d in deltas {
                put_delta(out, *op, d);
            }
        }
        Message::Summary { op, width, versions } => {
            out.push(WIRE_VERSION << 4 | KIND_SUMMARY);
            out.push(op_code(*op));
            varint::put_u64(out, u64::from(*width));
            varint::put_u64(out, versions.len() as u64);
            let mut prev = 0u64;
            for &(origin, version) in versions {
                varint::put_u64(out, origin.wrapping_sub(prev));
                varint::put_u64(out, version);
                prev = origin;
            }
        }
    }
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn put_delta(out: &mut Vec<u8>, op: Op, d: &Delta) {
    let max_index = d.slots.last().map_or(0, |s| s.0 as usize);
    let bitmap_len = if d.slots.is_empty() { 0 } else { max_index / 8 + 1 };
    let mut gaps_len = varint::len_u64(d.slots.len() as u64);
    let mut prev: i64 = -1;
    for &(i, _) in &d.slots {
        gaps_len += varint::len_u64((i64::from(i) - prev - 1) as u64);
        prev = i64::from(i);
    }
    let bitmap = varint::len_u64(bitmap_len as u64) + bitmap_len < gaps_len;
    let mut flags = 0;
    if d.replace {
        flags |= FLAG_REPLACE;
    }
    if bitmap {
        flags |= FLAG_BITMAP;
    }
    if !d.retired.is_empty() {
        flags |= FLAG_RETIRED;
    }
    out.push(flags);
    varint::put_u64(out, d.origin);
    varint::put_u64(out, d.from);
    varint::put_u64(out, d.to.wrapping_sub(d.from));
    if bitmap {
        varint::put_u64(out, bitmap_len as u64);
        let base = out.len();
        out.resize(base + bitmap_len, 0);
        for &(i, _) in &d.slots {
            out[base + i as usize / 8] |= 1 << (i % 8);
        }
    } else {
        varint::put_u64(out, d.slots.len() as u64);
        let mut prev: i64 = -1;
        for &(i, _) in &d.slots {
            varint::put_u64(out, (i64::from(i) - prev - 1) as u64);
            prev = i64::from(i);
        }
    }
    for &(_, v) in &d.slots {
        match op {
            Op::Xor => out.extend_from_slice(&v.to_le_bytes()),
            Op::Add => varint::put_u64(out, varint::zigzag(v as i64)),
        }
    }
    if !d.retired.is_empty() {
        varint::put_u64(out, d.retired.len() as u64);
        for &(origin, version) in &d.retired {
            varint::put_u64(out, origin);
            varint::put_u64(out, version);
        }
    }
}

/// A bounded cursor over a frame body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        let b = *self.buf.get(self.pos).ok_or(WireError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        varint::get_u64(self.buf, &mut self.pos).map_err(|e| match e {
            VarintError::Truncated => WireError::Truncated(what),
            VarintError::Overflow => WireError::Malformed(what),
        })
    }

    /// A count of items that take at least `min_bytes` each: never more than what remains.
    fn count(&mut self, what: &'static str, min_bytes: usize) -> Result<usize, WireError> {
        let n = self.varint(what)?;
        if n > (self.remaining() / min_bytes.max(1)) as u64 {
            return Err(WireError::Truncated(what));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

/// Decodes one whole frame.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    if frame.len() > MAX_FRAME {
        return Err(WireError::TooLong(frame.len()));
    }
    if frame.len() < 2 + CRC_LEN {
        return Err(WireError::Short(frame.len()));
    }
    let (body, crc) = frame.split_at(frame.len() - CRC_LEN);
    let stated = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32c::crc32c(body);
    if stated != computed {
        return Err(WireError::Checksum { stated, computed });
    }
    let mut r = Reader { buf: body, pos: 0 };
    let head = r.u8("header")?;
    if head >> 4 != WIRE_VERSION {
        return Err(WireError::Version(head >> 4));
    }
    let code = r.u8("operator")?;
    let op = Op::from_code(u32::from(code)).ok_or(WireError::Op(code))?;
    let msg = match head & 0x0f {
        KIND_DELTAS => {
            // A delta takes at least 5 bytes (flags, origin, from, span, slot count).
            let n = r.count("delta count", 5)?;
            let mut deltas = Vec::with_capacity(n);
            for _ in 0..n {
                deltas.push(get_delta(&mut r, op)?);
            }
            Message::Deltas { op, deltas }
        }
        KIND_SUMMARY => {
            let width = r.varint("width")?;
            let width = u32::try_from(width).map_err(|_| WireError::Malformed("width"))?;
            let n = r.count("summary count", 2)?;
            let mut versions = Vec::with_capacity(n);
            let mut prev = 0u64;
            for i in 0..n {
                let gap = r.varint("summary origin")?;
                if i > 0 && gap == 0 {
                    return Err(WireError::Malformed("summary origins not increasing"));
                }
                let origin = prev.checked_add(gap).ok_or(WireError::Malformed("summary origin"))?;
                versions.push((origin, r.varint("summary version")?));
                prev = origin;
            }
            Message::Summary { op, width, versions }
        }
        k => return Err(WireError::Kind(k)),
    };
    if r.remaining() != 0 {
        return Err(WireError::Trailing(r.remaining()));
    }
    Ok(msg)
}

fn get_delta(r: &mut Reader<'_>, op: Op) -> Result<Delta, WireError> {
    let flags = r.u8("delta flags")?;
    if flags & !(FLAG_REPLACE | FLAG_BITMAP | FLAG_RETIRED) != 0 {
        return Err(WireError::Malformed("delta flags"));
    }
    let replace = flags & FLAG_REPLACE != 0;
    let origin = r.varint("delta origin")?;
    let from = r.varint("delta from")?;
    let span = r.varint("delta span")?;
    let to = from.checked_add(span).ok_or(WireError::Malformed("delta version overflows"))?;
    if replace && from != 0 {
        return Err(WireError::Malformed("snapshot with a from-version"));
    }
    if span == 0 {
        return Err(WireError::Malformed("empty version interval"));
    }
    let mut indices: Vec<u32>;
    if flags & FLAG_BITMAP != 0 {
        let nbytes = r.count("bitmap length", 1)?;
        if nbytes > (u32::MAX as usize) / 8 {
            return Err(WireError::Malformed("bitmap length"));
        }
        let bits = r.bytes(nbytes, "bitmap")?;
        if bits.last() == Some(&0) {
            return Err(WireError::Malformed("bitmap has a zero last byte"));
        }
        let ones: usize = bits.iter().map(|b| b.count_ones() as usize).sum();
        // Each value takes at least one byte: reject before allocating for it.
        if ones > r.remaining() {
            return Err(WireError::Truncated("slot values"));
        }
        indices = Vec::with_capacity(ones);
        for (byte, &b) in bits.iter().enumerate() {
            for bit in 0..8 {
                if b & (1 << bit) != 0 {
                    indices.push((byte * 8 + bit) as u32);
                }
            }
        }
    } else {
        let n = r.count("slot count", 2)?;
        indices = Vec::with_capacity(n);
        let mut next: u64 = 0;
        for _ in 0..n {
            let index = next
                .checked_add(r.varint("slot index")?)
                .filter(|&i| i <= u64::from(u32::MAX))
                .ok_or(WireError::Malformed("slot index"))?;
            indices.push(index as u32);
            next = index + 1;
        }
    }
    let mut slots = Vec::with_capacity(indices.len());
    for i in indices {
        let v = match op {
            Op::Xor => {
                let b = r.bytes(8, "slot value")?;
                u64::from_le_bytes(b.try_into().map_err(|_| WireError::Truncated("slot value"))?)
            }
            Op::Add => varint::unzigzag(r.varint("slot value")?) as u64,
        };
        slots.push((i, v));
    }
    let mut retired = Vec::new();
    if flags & FLAG_RETIRED != 0 {
        let m = r.count("retired count", 2)?;
        if m == 0 {
            return Err(WireError::Malformed("empty retired list"));
        }
        retired.reserve(m);
        for _ in 0..m {
            retired.push((r.varint("retired origin")?, r.varint("retired version")?));
        }
    }
    Ok(Delta { origin, from, to, replace, slots, retired })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(op: Op, idx: &[u32]) -> Message {
        Message::Deltas {
            op,
            deltas: vec![Delta {
                origin: 3,
                from: 70_000,
                to: 70_001,
                replace: false,
                slots: idx.iter().map(|&i| (i, u64::from(i) * 7 + 1)).collect(),
                retired: vec![],
            }],
        }
    }

    #[test]
    fn round_trip_gaps_and_bitmap() {
        for op in [Op::Xor, Op::Add] {
            for idx in [&[1u32, 5, 200][..], &(0..128).collect::<Vec<_>>()[..], &[][..]] {
                let m = sample(op, idx);
                assert_eq!(decode(&encode(&m)), Ok(m));
            }
        }
    }

    #[test]
    fn checksum_catches_a_flipped_bit() {
        let mut f = encode(&sample(Op::Xor, &[4, 9]));
        f[5] ^= 0x10;
        assert!(matches!(decode(&f), Err(WireError::Checksum { .. })));
    }

    #[test]
    fn huge_counts_are_rejected_without_allocating() {
        let mut body = vec![WIRE_VERSION << 4 | KIND_DELTAS, 0];
        varint::put_u64(&mut body, u64::MAX >> 1);
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&body), Err(WireError::Truncated("delta count")));
    }
}
