//! LEB128 varints and zigzag, the integer encodings of the replication wire format.
//!
//! Decoding never reads past the slice and rejects overlong or overflowing encodings, so a
//! malformed frame yields an error instead of a panic or a wrapped value.

/// Most bytes a `u64` varint can take.
pub const MAX_LEN: usize = 10;

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put_u64`] writes for `v`.
pub fn len_u64(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Maps signed to unsigned so small magnitudes of either sign encode in few bytes.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More than 64 bits, or a non-canonical trailing zero byte.
    Overflow,
}

/// Reads a varint at `*pos`, advancing it.
pub fn get_u64(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut v: u64 = 0;
    for i in 0..MAX_LEN {
        let b = *buf.get(*pos + i).ok_or(VarintError::Truncated)?;
        let low = u64::from(b & 0x7f);
        if i == MAX_LEN - 1 && b > 1 {
            return Err(VarintError::Overflow);
        }
        v |= low << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(VarintError::Overflow);
            }
            *pos += i + 1;
            return Ok(v);
        }
    }
    Err(VarintError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::MAX >> 1, u64::MAX] {
            let mut b = Vec::new();
            put_u64(&mut b, v);
            assert_eq!(b.len(), len_u64(v));
            let mut p = 0;
            assert_eq!(get_u64(&b, &mut p), Ok(v));
            assert_eq!(p, b.len());
        }
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn rejects_malformed() {
        let mut p = 0;
        assert_eq!(get_u64(&[0x80], &mut p), Err(VarintError::Truncated));
        assert_eq!(get_u64(&[0x80, 0x00], &mut p), Err(VarintError::Overflow));
        assert_eq!(get_u64(&[0xff; 10], &mut p), Err(VarintError::Overflow));
        assert_eq!(get_u64(&[0xff; 11], &mut p), Err(VarintError::Overflow));
        assert_eq!(p, 0);
    }
}
