//! Criterion benches of the bank operations on the selected backend, beside a
//! mutex-per-bank baseline in the same run.

use std::hint::black_box;
use std::sync::Mutex;

use atomik::{Bank, CreateOptions, Op, Slot};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

struct Temp(Bank);
impl Drop for Temp {
    fn drop(&mut self) {
        let _ = Bank::destroy(self.0.name());
    }
}

fn bank(tag: &str, slots: u64, shards: u32) -> Temp {
    let name = format!("bench-{tag}-{}", std::process::id());
    let _ = Bank::destroy(&name);
    Temp(Bank::create(&name, CreateOptions::new(slots).op(Op::Xor).shards(shards)).unwrap())
}

fn ops(c: &mut Criterion) {
    let b = bank("ops", 64, 0);
    let m = b.0.memory();
    let mut g = c.benchmark_group("slot_ops");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("accum", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            m.accum(i & 63, black_box(i));
        })
    });
    g.bench_function("read", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            black_box(m.read(i & 63))
        })
    });
    g.bench_function("swap", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            black_box(m.swap(i & 63))
        })
    });
    let mutex = Mutex::new(vec![Slot::new(Op::Xor, 0); 64]);
    g.bench_function("accum_mutex_baseline", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            mutex.lock().unwrap()[(i & 63) as usize].accum(black_box(i));
        })
    });
    g.finish();
}

fn dense(c: &mut Criterion) {
    const WORDS: usize = 1 << 20; // 8 MiB
    let b = bank("dense", WORDS as u64, 1);
    let deltas: Vec<u64> = (0..WORDS as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    let mut g = c.benchmark_group("dense_8MiB");
    g.throughput(Throughput::Bytes((WORDS * 8) as u64));
    g.sample_size(20);
    let mut dst = vec![0u64; WORDS];
    g.bench_function("memcpy_baseline", |bn| bn.iter(|| dst.copy_from_slice(black_box(&deltas))));
    g.bench_function("accum_dense_atomic", |bn| bn.iter(|| b.0.accum_dense(0, black_box(&deltas)).unwrap()));
    let mut w = b.0.shard_writer().unwrap();
    g.bench_function("accum_dense_shard", |bn| bn.iter(|| w.accum_dense(0, black_box(&deltas)).unwrap()));
    g.finish();
}

criterion_group!(benches, ops, dense);
criterion_main!(benches);
