//! Page fingerprint throughput (GB/s) for each implementation, against xxh3-64 and the plain
//! XOR fold of the original ATOMiK over the same pages.
//!
//! `cargo bench -p atomik --bench fingerprint`

use atomik::track::fingerprint::{Kernel, PAGE_BYTES};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// 1 MiB (fits in L2) and 64 MiB (memory-bound) of pseudo-random pages.
const SIZES: [usize; 2] = [1 << 20, 64 << 20];

fn pages(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678_9abc_def0u64;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for len in SIZES {
        let data = pages(len);
        let mut g = c.benchmark_group(format!("page_hash_{}MiB", len >> 20));
        g.throughput(Throughput::Bytes(len as u64));
        g.sample_size(10);
        for k in Kernel::available() {
            g.bench_function(format!("atomik_fp_{}", k.name()), |b| {
                b.iter(|| data.chunks_exact(PAGE_BYTES).fold(0u64, |a, p| a ^ k.fingerprint(black_box(p))))
            });
        }
        g.bench_function("xxh3_64", |b| {
            b.iter(|| {
                data.chunks_exact(PAGE_BYTES).fold(0u64, |a, p| a ^ xxhash_rust::xxh3::xxh3_64(black_box(p)))
            })
        });
        g.bench_function("xor_fold_original", |b| {
            b.iter(|| {
                data.chunks_exact(PAGE_BYTES).fold(0u64, |a, p| {
                    a ^ black_box(p)
                        .chunks_exact(8)
                        .fold(0u64, |f, w| f ^ u64::from_le_bytes(w.try_into().unwrap()))
                })
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
