//! The page fingerprint: linear over GF(2), position-dependent, identical across SIMD paths.

use atomik::track::fingerprint::{fingerprint, fingerprint_reference, Kernel, PAGE_BYTES, PAGE_WORDS};
use proptest::prelude::*;

fn page_from_words(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn any_page() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u64>(), PAGE_WORDS).prop_map(|w| page_from_words(&w))
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn linear_over_gf2(a in any_page(), b in any_page()) {
        let ab = xor(&a, &b);
        for k in Kernel::available() {
            prop_assert_eq!(k.fingerprint(&ab), k.fingerprint(&a) ^ k.fingerprint(&b), "{:?}", k);
        }
    }

    #[test]
    fn every_path_matches_the_definition(a in any_page()) {
        let want = fingerprint_reference(&a);
        for k in Kernel::available() {
            prop_assert_eq!(k.fingerprint(&a), want, "{:?}", k);
        }
        prop_assert_eq!(fingerprint(&a), want);
    }

    #[test]
    fn repeated_word_is_not_zero(w in 1u64..) {
        let page = page_from_words(&[w; PAGE_WORDS]);
        prop_assert_ne!(fingerprint(&page), 0);
    }

    #[test]
    fn swapping_two_different_words_changes_it(
        a in any_page(), i in 0..PAGE_WORDS, j in 0..PAGE_WORDS,
    ) {
        prop_assume!(a[i * 8..i * 8 + 8] != a[j * 8..j * 8 + 8]);
        let mut swapped = a.clone();
        swapped[i * 8..i * 8 + 8].copy_from_slice(&a[j * 8..j * 8 + 8]);
        swapped[j * 8..j * 8 + 8].copy_from_slice(&a[i * 8..i * 8 + 8]);
        prop_assert_ne!(fingerprint(&swapped), fingerprint(&a));
    }

    #[test]
    fn single_bit_flips_are_seen(a in any_page(), bit in 0..PAGE_BYTES * 8) {
        let mut b = a.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        prop_assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}

#[test]
fn weak_cases_of_the_xor_fold_all_differ() {
    let zero = vec![0u8; PAGE_BYTES];
    let ones = page_from_words(&[u64::MAX; PAGE_WORDS]);
    let repeated = page_from_words(&[0xdead_beef_cafe_f00d; PAGE_WORDS]);
    let mut two = [0u64; PAGE_WORDS];
    two[0] = 1;
    two[1] = 2;
    let mut two_swapped = two;
    two_swapped.swap(0, 1);
    let fps = [
        fingerprint(&zero),
        fingerprint(&ones),
        fingerprint(&repeated),
        fingerprint(&page_from_words(&two)),
        fingerprint(&page_from_words(&two_swapped)),
    ];
    assert_eq!(fps[0], 0, "linear: the zero page maps to 0");
    for i in 0..fps.len() {
        for j in i + 1..fps.len() {
            assert_ne!(fps[i], fps[j], "cases {i} and {j} collide");
        }
    }
    // The plain XOR fold of the original maps these pairs to the same value.
    let fold = |p: &[u8]| p.chunks_exact(8).fold(0u64, |a, w| a ^ u64::from_le_bytes(w.try_into().unwrap()));
    assert_eq!(fold(&zero), fold(&ones));
    assert_eq!(fold(&page_from_words(&two)), fold(&page_from_words(&two_swapped)));
}

#[test]
fn reports_which_paths_run_here() {
    let names: Vec<_> = Kernel::available().iter().map(|k| k.name()).collect();
    println!("fingerprint paths on this CPU: {names:?}, best {}", Kernel::best().name());
    assert_eq!(Kernel::available()[0], Kernel::Portable);
}

#[test]
#[should_panic(expected = "a page is 4096 bytes")]
fn rejects_short_pages() {
    fingerprint(&[0u8; 100]);
}
