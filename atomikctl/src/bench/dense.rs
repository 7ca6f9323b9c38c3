//! Dense batches: ACCUM of a whole array of deltas, in GB/s of delta data, beside memcpy of
//! the same bytes in the same run. Atomic read-modify-write per word versus a leased
//! writer-private shard (plain loads and stores).

use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use atomik::{Bank, CreateOptions, Op};

pub struct Dense {
    bytes: u64,
    memcpy: f64,
    atomic: f64,
    shard: f64,
    shard_threads: Vec<(usize, f64)>,
}

const REPEAT: usize = 5;

fn gbps(bytes: u64, f: &mut dyn FnMut()) -> f64 {
    f(); // warm: fault the pages in
    let start = Instant::now();
    for _ in 0..REPEAT {
        f();
    }
    (bytes * REPEAT as u64) as f64 / start.elapsed().as_secs_f64() / 1e9
}

pub fn measure(mib: u64, workers: usize, progress: &dyn Fn()) -> Result<Dense> {
    let words = (mib << 20) / 8;
    let bytes = words * 8;
    let deltas: Vec<u64> = (0..words).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    let mut dst = vec![0u64; words as usize];
    let memcpy = gbps(bytes, &mut || {
        dst.copy_from_slice(std::hint::black_box(&deltas));
    });
    std::hint::black_box(&dst);
    drop(dst);

    let name = format!("bench-dense-{}", std::process::id());
    let bank = Bank::create(&name, CreateOptions::new(words).op(Op::Xor).shards(workers as u32))?;
    let _guard = super::Remove(name);
    let atomic = gbps(bytes, &mut || bank.accum_dense(0, &deltas).expect("in range"));
    let mut w = bank.shard_writer()?;
    let shard = gbps(bytes, &mut || w.accum_dense(0, &deltas).expect("in range"));
    drop(w);
    // Several writers, each on its own shard and its own part of the bank.
    let mut shard_threads = Vec::new();
    for t in 2..=workers {
        let part = words as usize / t;
        let start = Instant::now();
        std::thread::scope(|s| {
            for k in 0..t {
                let (bank, deltas) = (&bank, &deltas);
                s.spawn(move || {
                    let mut w = bank.shard_writer().expect("a shard per worker");
                    for _ in 0..REPEAT {
                        let lo = k * part;
                        w.accum_dense(lo as u64, &deltas[lo..lo + part]).expect("in range");
                    }
                });
            }
        });
        shard_threads.push((t, (part * t * 8 * REPEAT) as f64 / start.elapsed().as_secs_f64() / 1e9));
    }
    progress();
    Ok(Dense { bytes, memcpy, atomic, shard, shard_threads })
}

impl Dense {
    pub fn text(&self) -> String {
        let mut s = format!(
            "dense ACCUM of {} MiB of deltas (GB/s of delta data):\n  {:<40} {:>8.2} GB/s  baseline\n  {:<40} {:>8.2} GB/s  {:.2}x memcpy\n  {:<40} {:>8.2} GB/s  {:.2}x memcpy ({:.1}x atomic)\n",
            self.bytes >> 20,
            "memcpy (same bytes)",
            self.memcpy,
            "atomic RMW per word (accum_dense)",
            self.atomic,
            self.atomic / self.memcpy,
            "leased writer shard (ShardWriter)",
            self.shard,
            self.shard / self.memcpy,
            self.shard / self.atomic
        );
        for (t, g) in &self.shard_threads {
            s += &format!(
                "  {:<40} {:>8.2} GB/s  {:.2}x memcpy\n",
                format!("{t} writer shards in parallel"),
                g,
                g / self.memcpy
            );
        }
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "bytes": self.bytes,
            "memcpy_gbps": self.memcpy,
            "atomic_gbps": self.atomic,
            "shard_gbps": self.shard,
            "shard_parallel_gbps": self.shard_threads.iter().map(|(t, g)| json!({"writers": t, "gbps": g})).collect::<Vec<_>>(),
        })
    }
}
