//! A 64-bit page fingerprint that is linear over GF(2) and position-dependent.
//!
//! For a page of 512 little-endian words `w_0 … w_511`,
//!
//! ```text
//! fp(page) = Σ_i  w_i ⊗ k_i   mod P(x),      P(x) = x⁶⁴ + x⁴ + x³ + x + 1
//! ```
//!
//! where `⊗` is carry-less (polynomial) multiplication, `Σ` is XOR, `P` is irreducible (so
//! the arithmetic is GF(2⁶⁴)) and `k_0 … k_511` are 512 distinct fixed keys ([`KEYS`]). The
//! keys and the reduction are defined once, in [`crate::fp_core`], which the kernel module
//! compiles too.
//!
//! **Why linear**: `fp(a ⊕ b) = fp(a) ⊕ fp(b)`. A page's content delta maps to a
//! fingerprint delta, which is what the tracker ACCUMulates into a bank under XOR: the
//! accumulator of a page is the identity exactly when its current fingerprint equals the
//! baseline's.
//!
//! **Why position-dependent**: the original ATOMiK XOR-folded the words, so a page of one
//! repeated word folded to 0 like the zero page and swapping two words changed nothing. Here
//! a repeated word `w` gives `w ⊗ Σk_i ≠ 0`, and swapping words `a`, `b` at positions `i`, `j`
//! changes the fingerprint by `(a ⊕ b) ⊗ (k_i ⊕ k_j) ≠ 0` (keys are distinct, GF(2⁶⁴) has no
//! zero divisors).
//!
//! **Collision probability**: for any fixed nonzero difference `d` between two pages, pick a
//! word `i` with `d_i ≠ 0`; if the keys were drawn uniformly at random, `d_i ⊗ k_i` is uniform
//! over GF(2⁶⁴) whatever the other terms are, so `Pr[fp(a) = fp(b)] = 2⁻⁶⁴` per pair of
//! different pages. The keys are a fixed public sequence (splitmix64 from [`KEY_SEED`]), so
//! this holds for content that does not depend on the keys; someone who knows them can build
//! colliding pages on purpose. Duplicate detection therefore confirms every fingerprint match
//! by comparing bytes; change detection accepts the 2⁻⁶⁴ risk of missing one change.
//!
//! Implementations (chosen once at run time, all bit-identical, checked by tests):
//! AVX-512 + VPCLMULQDQ (8 words per instruction pair), SSE PCLMULQDQ, and a portable one
//! with 4-bit-window tables.

use std::sync::OnceLock;

pub use crate::fp_core::{KEYS, KEY_SEED, PAGE_BYTES, PAGE_WORDS};

/// Reduces a 128-bit carry-less product modulo `P(x) = x⁶⁴ + x⁴ + x³ + x + 1` (the
/// definition shared with the kernel module lives in [`crate::fp_core`]).
#[inline]
pub fn reduce(r: u128) -> u64 {
    crate::fp_core::reduce((r >> 64) as u64, r as u64)
}

/// Bit-by-bit carry-less multiply: the reference the fast paths are tested against.
pub fn clmul_reference(a: u64, b: u64) -> u128 {
    let mut r = 0u128;
    for bit in 0..64 {
        if (a >> bit) & 1 == 1 {
            r ^= (b as u128) << bit;
        }
    }
    r
}

/// Fingerprint by the definition, one bit at a time. Slow; for tests.
pub fn fingerprint_reference(page: &[u8]) -> u64 {
    assert_eq!(page.len(), PAGE_BYTES, "a page is {PAGE_BYTES} bytes");
    let mut acc = 0u128;
    for (i, w) in page.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(w.try_into().expect("chunks_exact(8) yields 8 bytes"));
        acc ^= clmul_reference(w, KEYS[i]);
    }
    reduce(acc)
}

/// An implementation of the fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Table-driven, any CPU.
    Portable,
    /// x86_64 SSE PCLMULQDQ, two words per pair of instructions.
    Pclmul,
    /// x86_64 AVX-512F + VPCLMULQDQ, eight words per pair of instructions.
    Avx512,
}

impl Kernel {
    /// Every implementation this CPU can run, fastest last.
    pub fn available() -> Vec<Kernel> {
        let mut v = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("pclmulqdq") && std::arch::is_x86_feature_detected!("sse2")
            {
                v.push(Kernel::Pclmul);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("vpclmulqdq")
            {
                v.push(Kernel::Avx512);
            }
        }
        v
    }

    /// The fastest implementation on this CPU (detected once).
    pub fn best() -> Kernel {
        static BEST: OnceLock<Kernel> = OnceLock::new();
        *BEST.get_or_init(|| *Kernel::available().last().expect("Portable is always there"))
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Pclmul => "pclmulqdq",
            Kernel::Avx512 => "avx512-vpclmulqdq",
        }
    }

    /// Fingerprints one page with this implementation.
    ///
    /// # Panics
    /// If `page` is not [`PAGE_BYTES`] long, or this CPU lacks the implementation's
    /// instructions (use [`Kernel::available`]).
    pub fn fingerprint(self, page: &[u8]) -> u64 {
        assert_eq!(page.len(), PAGE_BYTES, "a page is {PAGE_BYTES} bytes");
        match self {
            Kernel::Portable => portable::fingerprint(page),
            #[cfg(target_arch = "x86_64")]
            Kernel::Pclmul => {
                assert!(Kernel::available().contains(&self), "CPU lacks pclmulqdq");
                // SAFETY: the CPU supports pclmulqdq and sse2 (checked above); the page is
                // PAGE_BYTES long (asserted above).
                unsafe { x86::fingerprint_pclmul(page) }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                assert!(Kernel::available().contains(&self), "CPU lacks avx512f/vpclmulqdq");
                // SAFETY: the CPU supports avx512f and vpclmulqdq (checked above); the page
                // is PAGE_BYTES long (asserted above).
                unsafe { x86::fingerprint_avx512(page) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => panic!("{} is not available on this architecture", self.name()),
        }
    }
}

/// Fingerprints one 4096-byte page with the fastest implementation on this CPU.
///
/// # Panics
/// If `page` is not [`PAGE_BYTES`] long.
#[inline]
pub fn fingerprint(page: &[u8]) -> u64 {
    assert_eq!(page.len(), PAGE_BYTES, "a page is {PAGE_BYTES} bytes");
    match Kernel::best() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Kernel::best() only returns Avx512 when the CPU has avx512f and vpclmulqdq;
        // the length is asserted above.
        Kernel::Avx512 => unsafe { x86::fingerprint_avx512(page) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Kernel::best() only returns Pclmul when the CPU has pclmulqdq and sse2;
        // the length is asserted above.
        Kernel::Pclmul => unsafe { x86::fingerprint_pclmul(page) },
        _ => portable::fingerprint(page),
    }
}

/// Fingerprints consecutive pages of `data` into `out` (one per page).
///
/// # Panics
/// If `data.len() != out.len() * PAGE_BYTES`.
pub fn fingerprint_pages(data: &[u8], out: &mut [u64]) {
    assert_eq!(data.len(), out.len() * PAGE_BYTES, "one fingerprint per page");
    for (page, fp) in data.chunks_exact(PAGE_BYTES).zip(out.iter_mut()) {
        *fp = fingerprint(page);
    }
}

mod portable {
    use super::{reduce, KEYS, PAGE_BYTES, PAGE_WORDS};
    use std::sync::OnceLock;

    /// `TABLES[i][n] = n ⊗ k_i` for every 4-bit `n`: 512 × 16 × 16 bytes = 128 KiB.
    fn tables() -> &'static [[u128; 16]] {
        static TABLES: OnceLock<Vec<[u128; 16]>> = OnceLock::new();
        TABLES.get_or_init(|| {
            KEYS.iter()
                .map(|&k| {
                    let mut t = [0u128; 16];
                    for (n, e) in t.iter_mut().enumerate() {
                        *e = super::clmul_reference(n as u64, k);
                    }
                    t
                })
                .collect()
        })
    }

    pub fn fingerprint(page: &[u8]) -> u64 {
        debug_assert_eq!(page.len(), PAGE_BYTES);
        let tables = tables();
        let mut acc = 0u128;
        for (i, w) in page.chunks_exact(8).enumerate().take(PAGE_WORDS) {
            let w = u64::from_le_bytes(w.try_into().expect("chunks_exact(8) yields 8 bytes"));
            let t = &tables[i];
            let mut p = 0u128;
            for nib in (0..16).rev() {
                p = (p << 4) ^ t[((w >> (nib * 4)) & 0xf) as usize];
            }
            acc ^= p;
        }
        reduce(acc)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{reduce, KEYS, PAGE_BYTES};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support pclmulqdq and sse2; `page` must be `PAGE_BYTES` long.
    #[target_feature(enable = "pclmulqdq,sse2")]
    pub unsafe fn fingerprint_pclmul(page: &[u8]) -> u64 {
        debug_assert_eq!(page.len(), PAGE_BYTES);
        let p = page.as_ptr() as *const __m128i;
        let k = KEYS.as_ptr() as *const __m128i;
        let mut a0 = _mm_setzero_si128();
        let mut a1 = _mm_setzero_si128();
        let mut a2 = _mm_setzero_si128();
        let mut a3 = _mm_setzero_si128();
        let mut i = 0;
        while i < PAGE_BYTES / 16 {
            // SAFETY: i + 3 < 256, so every load is inside the 4096-byte page and the
            // 4096-byte key array; loadu has no alignment requirement.
            let (w0, w1, w2, w3, k0, k1, k2, k3) = unsafe {
                (
                    _mm_loadu_si128(p.add(i)),
                    _mm_loadu_si128(p.add(i + 1)),
                    _mm_loadu_si128(p.add(i + 2)),
                    _mm_loadu_si128(p.add(i + 3)),
                    _mm_loadu_si128(k.add(i)),
                    _mm_loadu_si128(k.add(i + 1)),
                    _mm_loadu_si128(k.add(i + 2)),
                    _mm_loadu_si128(k.add(i + 3)),
                )
            };
            a0 = _mm_xor_si128(a0, _mm_clmulepi64_si128(w0, k0, 0x00));
            a1 = _mm_xor_si128(a1, _mm_clmulepi64_si128(w0, k0, 0x11));
            a2 = _mm_xor_si128(a2, _mm_clmulepi64_si128(w1, k1, 0x00));
            a3 = _mm_xor_si128(a3, _mm_clmulepi64_si128(w1, k1, 0x11));
            a0 = _mm_xor_si128(a0, _mm_clmulepi64_si128(w2, k2, 0x00));
            a1 = _mm_xor_si128(a1, _mm_clmulepi64_si128(w2, k2, 0x11));
            a2 = _mm_xor_si128(a2, _mm_clmulepi64_si128(w3, k3, 0x00));
            a3 = _mm_xor_si128(a3, _mm_clmulepi64_si128(w3, k3, 0x11));
            i += 4;
        }
        let a = _mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3));
        let lo = _mm_cvtsi128_si64(a) as u64;
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(a, a)) as u64;
        reduce(((hi as u128) << 64) | lo as u128)
    }

    /// # Safety
    /// The CPU must support avx512f and vpclmulqdq; `page` must be `PAGE_BYTES` long.
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    pub unsafe fn fingerprint_avx512(page: &[u8]) -> u64 {
        debug_assert_eq!(page.len(), PAGE_BYTES);
        let p = page.as_ptr() as *const __m512i;
        let k = KEYS.as_ptr() as *const __m512i;
        let mut a0 = _mm512_setzero_si512();
        let mut a1 = _mm512_setzero_si512();
        let mut a2 = _mm512_setzero_si512();
        let mut a3 = _mm512_setzero_si512();
        let mut i = 0;
        while i < PAGE_BYTES / 64 {
            // SAFETY: i + 1 < 64, so both 64-byte loads are inside the page and the key
            // array; loadu has no alignment requirement.
            let (w0, w1, k0, k1) = unsafe {
                (
                    _mm512_loadu_si512(p.add(i)),
                    _mm512_loadu_si512(p.add(i + 1)),
                    _mm512_loadu_si512(k.add(i)),
                    _mm512_loadu_si512(k.add(i + 1)),
                )
            };
            a0 = _mm512_xor_si512(a0, _mm512_clmulepi64_epi128(w0, k0, 0x00));
            a1 = _mm512_xor_si512(a1, _mm512_clmulepi64_epi128(w0, k0, 0x11));
            a2 = _mm512_xor_si512(a2, _mm512_clmulepi64_epi128(w1, k1, 0x00));
            a3 = _mm512_xor_si512(a3, _mm512_clmulepi64_epi128(w1, k1, 0x11));
            i += 2;
        }
        let a = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
        let mut lanes = [0u64; 8];
        // SAFETY: `lanes` is 64 writable bytes; storeu has no alignment requirement.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr() as *mut __m512i, a) };
        let lo = lanes[0] ^ lanes[2] ^ lanes[4] ^ lanes[6];
        let hi = lanes[1] ^ lanes[3] ^ lanes[5] ^ lanes[7];
        reduce(((hi as u128) << 64) | lo as u128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_nonzero() {
        let mut k = KEYS.to_vec();
        k.sort_unstable();
        k.dedup();
        assert_eq!(k.len(), PAGE_WORDS);
        assert!(k[0] != 0);
        assert_ne!(KEYS.iter().fold(0, |a, k| a ^ k), 0, "Σk_i must be nonzero");
    }

    #[test]
    fn reduce_matches_long_division() {
        // x⁶⁴ mod P = x⁴ + x³ + x + 1.
        assert_eq!(reduce(1u128 << 64), 0x1b);
        // x¹²⁷ mod P computed by repeated multiplication by x.
        let mut v: u64 = 1;
        for _ in 0..127 {
            let carry = v >> 63;
            v = (v << 1) ^ (carry * 0x1b);
        }
        assert_eq!(reduce(1u128 << 127), v);
    }
}
