//! Multi-process stress: P writer processes ACCUM into shared banks while other processes
//! SWAP and READ. The final state must be the group sum of every delta, and no READ or SWAP
//! may return a value that no linearisation allows.
//!
//! Writer `p` owns bit lane `p*16 .. p*16+16` of every slot of an XOR bank and sets those bits
//! in increasing order, slot by slot. In any linearisable history, a value of a slot shows, for
//! each writer, a prefix of its lane (program order), and a later READ of the slot shows a
//! superset of an earlier one (deltas are distinct bits, each applied once, and SWAP never
//! changes the state). A torn READ or a delta lost or doubled by SWAP breaks one of these.
//!
//! A second, ADD bank of a few hot slots gets writer `p`'s increments of `1 << 16p`: each
//! 16-bit lane counts one writer's deltas, so every lane must only grow, and end exact.
//!
//! Runs with its own `main` (harness = false): the same binary is re-executed as the child
//! processes, told their role by environment variables.

use std::process::{Command, ExitCode};

use atomik::{Bank, CreateOptions, Op};

const WRITERS: u64 = 4;
const SLOTS: u64 = 2048;
const LANE: u64 = 16;
const COUNTERS: u64 = 8;
/// Increments per writer per counter slot: fills a 16-bit lane exactly.
const PER_LANE: u64 = 0xffff;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"))
}

/// True when `v`, for every writer lane, is a prefix (bits 0..k of the lane set, rest clear).
fn lanes_are_prefixes(v: u64) -> bool {
    (0..WRITERS).all(|p| {
        let lane = (v >> (p * LANE)) & 0xffff;
        lane & (lane + 1) == 0
    })
}

fn writer(p: u64) {
    let bits = Bank::open(&env("STRESS_BITS")).unwrap();
    let count = Bank::open(&env("STRESS_COUNT")).unwrap();
    let mut batch = Vec::new();
    for m in 0..SLOTS * LANE {
        let (slot, bit) = (m % SLOTS, p * LANE + m / SLOTS);
        // Mix single ACCUMs and small batches; a batch is flushed before the next lane bit of
        // the same slot, so program order per slot is kept.
        if m % 3 == 0 {
            bits.accum(slot, 1 << bit).unwrap();
        } else {
            batch.push((slot, 1u64 << bit));
            if batch.len() == 8 {
                bits.accum_batch(&batch).unwrap();
                batch.clear();
            }
        }
        if slot == SLOTS - 1 {
            bits.accum_batch(&batch).unwrap();
            batch.clear();
        }
    }
    bits.accum_batch(&batch).unwrap();
    for m in 0..COUNTERS * PER_LANE {
        count.accum(m % COUNTERS, 1 << (p * LANE)).unwrap();
    }
    count.accum(COUNTERS, 1).unwrap(); // "done" marker
}

fn check(what: &str, slot: u64, v: u64, prev: &mut [u64]) -> bool {
    let ok = lanes_are_prefixes(v) && v & prev[slot as usize] == prev[slot as usize];
    if !ok {
        eprintln!(
            "{what}: slot {slot} value {v:#018x} after {:#018x}: not linearisable",
            prev[slot as usize]
        );
    }
    prev[slot as usize] = v;
    ok
}

/// Swaps (role "swap") or reads (role "read") until all writers are done; exit code 1 on a
/// value no linearisation allows.
fn observer(swap: bool) -> ExitCode {
    let bits = Bank::open(&env("STRESS_BITS")).unwrap();
    let count = Bank::open(&env("STRESS_COUNT")).unwrap();
    let mut prev = vec![0u64; SLOTS as usize];
    let mut prev_count = vec![0u64; COUNTERS as usize];
    let mut ok = true;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    loop {
        let done = count.read(COUNTERS).unwrap() == WRITERS;
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = x % SLOTS;
            let v = if swap { bits.swap(slot).unwrap() } else { bits.read(slot).unwrap() };
            ok &= check(if swap { "SWAP" } else { "READ" }, slot, v, &mut prev);
            let c = x % COUNTERS;
            let n = if swap { count.swap(c).unwrap() } else { count.read(c).unwrap() };
            let before = prev_count[c as usize];
            if (0..WRITERS).any(|p| (n >> (p * LANE)) & 0xffff < (before >> (p * LANE)) & 0xffff) {
                eprintln!("counter {c}: a lane went back from {before:#018x} to {n:#018x}");
                ok = false;
            }
            prev_count[c as usize] = n;
        }
        if done {
            break;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parent() -> ExitCode {
    let tag = format!("{}-{}", std::process::id(), std::env::var("ATOMIK_BACKEND").unwrap_or_default());
    let (bits_name, count_name) = (format!("test-stress-bits-{tag}"), format!("test-stress-count-{tag}"));
    let bits = Bank::create(&bits_name, CreateOptions::new(SLOTS).op(Op::Xor)).unwrap();
    let count = Bank::create(&count_name, CreateOptions::new(COUNTERS + 1).op(Op::Add)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawn = |role: String| {
        Command::new(&exe)
            .env("STRESS_ROLE", role)
            .env("STRESS_BITS", &bits_name)
            .env("STRESS_COUNT", &count_name)
            .spawn()
            .unwrap()
    };
    let mut children: Vec<_> =
        (0..WRITERS).map(|p| (format!("write:{p}"), spawn(format!("write:{p}")))).collect();
    children.push(("swap".into(), spawn("swap".into())));
    children.push(("read".into(), spawn("read".into())));
    let mut ok = true;
    for (role, mut c) in children {
        let st = c.wait().unwrap();
        if !st.success() {
            eprintln!("child {role} failed: {st}");
            ok = false;
        }
    }
    let all = bits.read_all();
    let wrong = all.iter().filter(|&&v| v != u64::MAX).count();
    if wrong != 0 {
        eprintln!("{wrong} of {SLOTS} slots lack deltas (or got one twice): e.g. {:#x}", all[0]);
        ok = false;
    }
    let counts: Vec<u64> = (0..COUNTERS).map(|c| count.read(c).unwrap()).collect();
    if counts.iter().any(|&c| c != u64::MAX) {
        eprintln!("counters {counts:x?}: every 16-bit lane should hold exactly {PER_LANE:#x}");
        ok = false;
    }
    let _ = Bank::destroy(&bits_name);
    let _ = Bank::destroy(&count_name);
    println!(
        "stress: {WRITERS} writer processes x {} ACCUMs, concurrent SWAP and READ processes: {}",
        SLOTS * LANE + COUNTERS * PER_LANE,
        if ok { "ok" } else { "FAILED" }
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    match std::env::var("STRESS_ROLE").as_deref() {
        Ok("swap") => observer(true),
        Ok("read") => observer(false),
        Ok(role) if role.starts_with("write:") => {
            writer(role[6..].parse().unwrap());
            ExitCode::SUCCESS
        }
        _ => parent(),
    }
}
