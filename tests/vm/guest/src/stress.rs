//! Stress: processes × threads mixing ioctl ACCUM, mmap ACCUM, BATCH, READ (ioctl and the
//! mapped seqlock protocol) and SWAP on one bank; the final state must be exactly the fold of
//! every delta, and on an ADD bank no READ may ever go backwards.

use crate::check::Report;
use crate::dev::{Dev, Map};
use atomik::abi::*;
use std::sync::atomic::{fence, Ordering::*};

const SLOTS: u64 = 64;
const PROCS: u64 = 3;
const THREADS: u64 = 2;
const OPS: u64 = 40_000;
const BATCH: u64 = 8;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `j`-th delta of op `i` of worker `w`: slot and value.
fn delta(op: u32, w: u64, i: u64, j: u64) -> (u64, u64) {
    let r = mix(w << 48 ^ i << 8 ^ j);
    let v = if op == OP_ADD { (r >> 8) & 0xff | 1 } else { mix(r) };
    (r % SLOTS, v)
}

/// What op `i` of a worker does.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    IoctlAccum,
    MapAccum,
    Batch,
    Read,
    Swap,
}

fn kind(i: u64) -> Kind {
    match i % 8 {
        0 | 1 => Kind::IoctlAccum,
        2 | 3 => Kind::MapAccum,
        4 => Kind::Batch,
        5 | 6 => Kind::Read,
        _ => Kind::Swap,
    }
}

/// READ through the mapping with the seqlock protocol of abi.rs.
fn map_read(m: &Map, l: &BankLayout, op: u32, s: u64) -> u64 {
    loop {
        let s1 = m.word(l.seq_off + s * 8).load(Acquire);
        if s1 & 1 == 0 {
            let r = m.word(l.ref_off + s * 8).load(Relaxed);
            let a = m.word(l.acc_off + s * 8).load(Acquire);
            fence(Acquire);
            if m.word(l.seq_off + s * 8).load(Relaxed) == s1 {
                return if op == OP_ADD { r.wrapping_add(a) } else { r ^ a };
            }
        }
        std::hint::spin_loop();
    }
}

fn worker(name: &str, op: u32, w: u64) -> Result<(), String> {
    let d = ok!(Dev::open());
    let att = ok!(d.attach(name, ACCESS_READ | ACCESS_WRITE));
    let l = BankLayout::new(SLOTS, 0).unwrap();
    let m = ok!(d.map(att.map_size as usize, 0, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED));
    let mut last = [0u64; SLOTS as usize];
    for i in 0..OPS {
        let (s, v) = delta(op, w, i, 0);
        match kind(i) {
            Kind::IoctlAccum => ok!(d.accum(s, v)),
            Kind::MapAccum => {
                let acc = m.word(l.acc_off + s * 8);
                if op == OP_ADD {
                    acc.fetch_add(v, Release);
                } else {
                    acc.fetch_xor(v, Release);
                }
            }
            Kind::Batch => {
                let mut b: Vec<BatchEntry> = (0..BATCH)
                    .map(|j| {
                        let (s, v) = delta(op, w, i, j);
                        BatchEntry { kind: KIND_ACCUM, status: 0, slot: s, value: v }
                    })
                    .collect();
                ensure!(ok!(d.batch(&mut b)) == BATCH as u32, "batch done");
            }
            Kind::Read | Kind::Swap => {
                let got = match kind(i) {
                    Kind::Swap => ok!(d.swap(s)),
                    _ if i % 16 < 8 => ok!(d.read(s)),
                    _ => map_read(&m, &l, op, s),
                };
                if op == OP_ADD {
                    ensure!(
                        got >= last[s as usize],
                        "worker {w}: slot {s} went back {} -> {got}",
                        last[s as usize]
                    );
                    last[s as usize] = got;
                }
            }
        }
    }
    Ok(())
}

fn expected(op: u32) -> Vec<u64> {
    let mut e = vec![0u64; SLOTS as usize];
    for w in 0..PROCS * THREADS {
        for i in 0..OPS {
            let n = match kind(i) {
                Kind::IoctlAccum | Kind::MapAccum => 1,
                Kind::Batch => BATCH,
                _ => 0,
            };
            for j in 0..n {
                let (s, v) = delta(op, w, i, j);
                let x = &mut e[s as usize];
                *x = if op == OP_ADD { x.wrapping_add(v) } else { *x ^ v };
            }
        }
    }
    e
}

fn stress(op: u32) -> Result<(), String> {
    let name = if op == OP_ADD { "stress-add" } else { "stress-xor" };
    let d = ok!(Dev::open());
    let _ = d.destroy(name);
    ok!(d.create(name, SLOTS, op, 0o600, 0));
    ok!(d.attach(name, ACCESS_READ | ACCESS_WRITE));
    // One child process per PROCS, each running THREADS threads; all start together.
    let mut children = Vec::new();
    for p in 0..PROCS {
        // SAFETY: fork from the single-threaded test process; the child runs the workers and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let r = in_threads(name, op, p);
            if let Err(e) = &r {
                println!("stress child {p}: {e}");
            }
            // SAFETY: leave the child without running the parent's exit path.
            unsafe { libc::_exit(r.is_err() as i32) };
        }
        ensure!(pid > 0, "fork failed");
        children.push(pid);
    }
    let mut failed = 0;
    for pid in children {
        let mut st = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            failed += 1;
        }
    }
    ensure!(failed == 0, "{failed} worker processes failed");
    let want = expected(op);
    let l = BankLayout::new(SLOTS, 0).unwrap();
    let m = ok!(d.map(l.total_size as usize, 0, libc::PROT_READ, libc::MAP_SHARED));
    for s in 0..SLOTS {
        ensure!(
            ok!(d.read(s)) == want[s as usize],
            "slot {s}: read {:#x}, want {:#x}",
            ok!(d.read(s)),
            want[s as usize]
        );
        ensure!(ok!(d.swap(s)) == want[s as usize], "slot {s}: swap");
        ensure!(
            m.word(l.acc_off + s * 8).load(SeqCst) == 0
                && m.word(l.ref_off + s * 8).load(SeqCst) == want[s as usize],
            "slot {s}: words after swap"
        );
        ensure!(m.word(l.seq_off + s * 8).load(SeqCst).is_multiple_of(2), "slot {s}: seqlock left odd");
    }
    drop(m);
    ok!(d.destroy(name));
    Ok(())
}

fn in_threads(name: &str, op: u32, p: u64) -> Result<(), String> {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let name = name.to_owned();
            std::thread::spawn(move || worker(&name, op, p * THREADS + t))
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "thread panicked".to_owned())??;
    }
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run("stress ADD: 3 processes x 2 threads, exact sums, reads monotonic", || stress(OP_ADD));
    report.run("stress XOR: 3 processes x 2 threads, exact state", || stress(OP_XOR));
}
