//! The page fingerprint, defined once for the library and the kernel module.
//!
//! `fp(page) = Σ_i w_i ⊗ k_i mod P(x)`, `P(x) = x⁶⁴ + x⁴ + x³ + x + 1`, over the 512
//! little-endian words `w_i` of a 4096-byte page, with per-position keys `k_i` from splitmix64
//! ([`KEYS`]); see `atomik::track::fingerprint` for why it is linear and position-dependent.
//!
//! This file is `no_std` and dependency-free (only `core`, no `u128` division, no SIMD, no
//! allocation, no panics on the kernel path) because `kmod/` compiles it through `#[path]`: the
//! kernel engine and the userspace engine then cannot disagree on a fingerprint. The portable
//! carry-less multiply here ([`clmul`], 4-bit windows over a per-word table) is what the kernel
//! runs; userspace adds PCLMULQDQ / VPCLMULQDQ paths that tests check against it.
#![allow(dead_code)]

/// Bytes in a page.
pub const PAGE_BYTES: usize = 4096;
/// 64-bit words in a page.
pub const PAGE_WORDS: usize = PAGE_BYTES / 8;
/// Seed of the key sequence: changing it changes every fingerprint.
pub const KEY_SEED: u64 = 0x6174_6f6d_696b_6670; // "atomikfp"

/// One step of splitmix64: (next state, output).
pub const fn splitmix64(state: u64) -> (u64, u64) {
    let s = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (s, z ^ (z >> 31))
}

const fn make_keys() -> [u64; PAGE_WORDS] {
    let mut keys = [0u64; PAGE_WORDS];
    let mut state = KEY_SEED;
    let mut i = 0;
    while i < PAGE_WORDS {
        let (s, k) = splitmix64(state);
        state = s;
        keys[i] = k;
        i += 1;
    }
    keys
}

/// The per-position keys `k_i` (computed at compile time).
pub static KEYS: [u64; PAGE_WORDS] = make_keys();

const fn make_key_multiples() -> [Multiples; PAGE_WORDS] {
    let keys = make_keys();
    let mut out = [Multiples { hi: [0; 16], lo: [0; 16] }; PAGE_WORDS];
    let mut i = 0;
    while i < PAGE_WORDS {
        out[i] = multiples(keys[i]);
        i += 1;
    }
    out
}

/// The multiples table of every key, built at compile time (128 KiB) so that a fingerprint
/// does not rebuild a table for each of a page's 512 words.
pub static KEY_MULTIPLES: [Multiples; PAGE_WORDS] = make_key_multiples();

/// Reduces the 128-bit carry-less product `hi·x⁶⁴ + lo` modulo `P(x)`.
#[inline]
pub const fn reduce(hi: u64, lo: u64) -> u64 {
    // hi·x⁶⁴ ≡ hi·(x⁴ + x³ + x + 1); the bits shifted out of 64 are folded once more.
    let t = hi ^ (hi << 1) ^ (hi << 3) ^ (hi << 4);
    let o = (hi >> 63) ^ (hi >> 61) ^ (hi >> 60);
    lo ^ t ^ o ^ (o << 1) ^ (o << 3) ^ (o << 4)
}

/// The 16 carry-less multiples `n ⊗ b` (n < 16) of `b`, each as `(hi, lo)`: what [`clmul`]
/// looks up, four bits of its other operand at a time.
#[derive(Clone, Copy)]
pub struct Multiples {
    hi: [u64; 16],
    lo: [u64; 16],
}

/// Carry-less product of `a` and `b` as `(hi, lo)`, four bits of `a` at a time against a
/// 16-entry table of the multiples of `b`. Only constant shifts: no compiler intrinsics.
#[inline]
pub fn clmul(a: u64, b: u64) -> (u64, u64) {
    clmul_by(a, &multiples(b))
}

/// The multiples table of `b` (built once per key at compile time for [`KEY_MULTIPLES`]).
pub const fn multiples(b: u64) -> Multiples {
    // Multiples n ⊗ b for n < 16: each spans at most 67 bits, kept as (hi, lo).
    let mut hi_t = [0u64; 16];
    let mut lo_t = [0u64; 16];
    lo_t[1] = b;
    lo_t[2] = b << 1;
    hi_t[2] = b >> 63;
    lo_t[4] = b << 2;
    hi_t[4] = b >> 62;
    lo_t[8] = b << 3;
    hi_t[8] = b >> 61;
    let mut n = 3;
    while n < 16 {
        // A composite n is its highest bit xor the rest, both already in the table.
        let top = if n >= 8 {
            8
        } else if n >= 4 {
            4
        } else {
            2
        };
        if n != top {
            lo_t[n] = lo_t[top] ^ lo_t[n ^ top];
            hi_t[n] = hi_t[top] ^ hi_t[n ^ top];
        }
        n += 1;
    }
    Multiples { hi: hi_t, lo: lo_t }
}

/// Carry-less product of `a` and the `b` whose multiples are `m`, as `(hi, lo)`.
#[inline]
pub fn clmul_by(a: u64, m: &Multiples) -> (u64, u64) {
    let (hi_t, lo_t) = (&m.hi, &m.lo);
    let (mut hi, mut lo) = (0u64, 0u64);
    let mut nib = 16;
    while nib > 0 {
        nib -= 1;
        let idx = ((a >> (nib * 4)) & 0xf) as usize;
        hi = (hi << 4) | (lo >> 60);
        lo <<= 4;
        hi ^= hi_t[idx];
        lo ^= lo_t[idx];
    }
    (hi, lo)
}

/// Fingerprint of the page whose `i`-th little-endian word is `word(i)`, for `i` in
/// `0..PAGE_WORDS` in order. The kernel reads the words of a user page with volatile loads
/// through this; [`fingerprint`] reads a byte slice.
#[inline]
pub fn fingerprint_words(mut word: impl FnMut(usize) -> u64) -> u64 {
    let (mut hi, mut lo) = (0u64, 0u64);
    let mut i = 0;
    while i < PAGE_WORDS {
        let (h, l) = clmul_by(word(i), &KEY_MULTIPLES[i]);
        hi ^= h;
        lo ^= l;
        i += 1;
    }
    reduce(hi, lo)
}

/// Fingerprint of one page, or `None` when `page` is not [`PAGE_BYTES`] long.
pub fn fingerprint(page: &[u8]) -> Option<u64> {
    let page: &[u8; PAGE_BYTES] = page.try_into().ok()?;
    Some(fingerprint_words(|i| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&page[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::fingerprint as userspace;

    fn clmul_by_bits(a: u64, b: u64) -> u128 {
        (0..64).filter(|bit| (a >> bit) & 1 == 1).fold(0u128, |r, bit| r ^ ((b as u128) << bit))
    }

    #[test]
    fn clmul_matches_bit_by_bit_product() {
        let mut s = 1u64;
        for _ in 0..2000 {
            let (s1, a) = splitmix64(s);
            let (s2, b) = splitmix64(s1);
            s = s2;
            for (a, b) in [(a, b), (a, u64::MAX), (u64::MAX, b), (1 << 63, b), (a, 0)] {
                let (hi, lo) = clmul(a, b);
                assert_eq!(((hi as u128) << 64) | lo as u128, clmul_by_bits(a, b), "{a:#x} ⊗ {b:#x}");
            }
        }
    }

    /// Reduction mod P(x) = x⁶⁴ + x⁴ + x³ + x + 1 by schoolbook long division, bit by bit.
    fn reduce_by_bits(mut r: u128) -> u64 {
        const P: u128 = (1 << 64) | 0b1_1011;
        for bit in (64..128).rev() {
            if (r >> bit) & 1 == 1 {
                r ^= P << (bit - 64);
            }
        }
        r as u64
    }

    #[test]
    fn reduction_matches_long_division() {
        let mut s = 7u64;
        for _ in 0..1000 {
            let (s1, h) = splitmix64(s);
            let (s2, l) = splitmix64(s1);
            s = s2;
            for (h, l) in [(h, l), (u64::MAX, l), (1 << 63, 0), (0, l)] {
                assert_eq!(reduce(h, l), reduce_by_bits(((h as u128) << 64) | l as u128), "{h:#x}:{l:#x}");
            }
        }
    }

    #[test]
    fn keys_are_distinct_nonzero_splitmix_outputs_of_the_seed() {
        let mut sorted = KEYS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PAGE_WORDS, "keys must be distinct (position dependence)");
        assert!(KEYS.iter().all(|&k| k != 0));
        // splitmix64 written out again, independently of the const fn above.
        let mut state = KEY_SEED;
        for (i, &k) in KEYS.iter().enumerate() {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            assert_eq!(k, z ^ (z >> 31), "key {i}");
        }
    }

    #[test]
    fn fingerprint_equals_every_userspace_implementation() {
        let mut s = 42u64;
        let mut page = vec![0u8; PAGE_BYTES];
        for round in 0..40 {
            for w in page.chunks_exact_mut(8) {
                let (n, v) = splitmix64(s);
                s = n;
                // Mix dense random pages with sparse ones and a repeated word.
                let v = match round % 4 {
                    0 => v,
                    1 => v & 0xff,
                    2 => 0x0101_0101_0101_0101,
                    _ => 0,
                };
                w.copy_from_slice(&v.to_le_bytes());
            }
            let core = fingerprint(&page).unwrap();
            assert_eq!(core, userspace::fingerprint_reference(&page), "round {round}");
            for k in userspace::Kernel::available() {
                assert_eq!(core, k.fingerprint(&page), "round {round}, {}", k.name());
            }
        }
        assert_eq!(fingerprint(&page[..100]), None);
    }
}
