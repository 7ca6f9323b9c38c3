//! Deterministic convergence simulator: N replicas, T ticks, a seeded workload and a fault
//! model, with every message really encoded, checksummed and decoded.
//!
//! The workload of node `n` at tick `t` depends only on `(seed, n, t)`, never on the faults
//! or on how the slots are split into banks, so the final digest must be the same for 1, 2,
//! 4 or 8 banks and under every fault model: that is what [`SimReport::converged`] and the
//! tests compare.
//!
//! Each tick every live node applies its workload, commits one delta per bank, logs it to
//! its simulated disk and pushes it to every peer. Every `ae_interval` ticks it sends its
//! version summary to one peer (rotating), which answers with what is missing (delta-
//! intervals or snapshots). Faults act on messages in flight (loss, duplication, delay up
//! to `reorder` ticks, partitions that heal) and on nodes (crash: the node loses its memory,
//! stays down `crash_down` ticks, restarts from its simulated disk; the workload of its down
//! ticks is replayed on restart, as a client retries an unacknowledged write). After the last
//! tick all faults stop and anti-entropy rounds run until every node has every version.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::model::{digest, Config, Replica};
use super::op::Op;
use super::persist;
use super::wire::{self, Message};

/// Faults injected into the simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub dup: f64,
    /// Extra random delay of up to this many ticks (reordering).
    pub reorder: u64,
    /// Every this many ticks (0: never) the nodes split in two random halves ...
    pub partition_every: u64,
    /// ... for this many ticks, then heal.
    pub partition_len: u64,
    /// Every this many ticks (0: never) one random node crashes ...
    pub crash_every: u64,
    /// ... and stays down this many ticks before restarting from its disk.
    pub crash_down: u64,
}

impl Faults {
    /// Every fault at once, at rates that keep the run interesting.
    pub fn all() -> Faults {
        Faults {
            loss: 0.05,
            dup: 0.05,
            reorder: 8,
            partition_every: 997,
            partition_len: 200,
            crash_every: 1499,
            crash_down: 50,
        }
    }
}

/// Shape of a simulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    pub nodes: usize,
    pub ticks: u64,
    /// Slots of the whole state (split evenly over `banks`).
    pub slots: u32,
    /// Fraction of the slots each node changes per tick.
    pub density: f64,
    pub seed: u64,
    pub banks: u32,
    pub op: Op,
    pub faults: Faults,
    /// Ticks between anti-entropy summaries of a node.
    pub ae_interval: u64,
    /// Ticks between snapshots of a node's simulated disk (the log holds the rest).
    pub checkpoint_interval: u64,
}

impl SimConfig {
    pub fn new(nodes: usize, ticks: u64, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            ticks,
            slots: 256,
            density: 0.05,
            seed,
            banks: 1,
            op: Op::Xor,
            faults: Faults::default(),
            ae_interval: 16,
            checkpoint_interval: 256,
        }
    }
}

/// What a simulation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// Final digest of each node's whole state.
    pub digests: Vec<u64>,
    /// Digest of the expected state: every node's workload combined, computed directly.
    pub expected: u64,
    /// Bytes handed to the network (including lost and duplicated copies).
    pub bytes: u64,
    /// Of which: eager pushes of new local deltas ...
    pub push_bytes: u64,
    /// ... in this many messages (one delta each).
    pub push_messages: u64,
    /// Of which: anti-entropy (summaries and their answers), heal rounds included.
    pub ae_bytes: u64,
    pub messages: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub crashes: u64,
    pub partitions: u64,
    /// Deltas joined as snapshots (fallback when a log did not reach back).
    pub snapshots: u64,
    /// Anti-entropy rounds needed after the last tick.
    pub heal_rounds: u64,
}

impl SimReport {
    /// Every node holds the expected state.
    pub fn converged(&self) -> bool {
        self.digests.iter().all(|&d| d == self.expected)
    }
}

/// SplitMix64: tiny, fast, and good enough to drive a workload and faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }
}

/// The changes node `node` makes at tick `tick`: `(global slot, delta)`, distinct slots.
/// XOR: random words; ADD: small increments 1..=8.
pub fn workload(cfg: &SimConfig, node: usize, tick: u64) -> Vec<(u32, u64)> {
    let mut rng = Rng::new(
        cfg.seed
            ^ (node as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f)
            ^ tick.wrapping_mul(0xe703_7ed1_a0b4_28db),
    );
    let k = ((f64::from(cfg.slots) * cfg.density).round() as u32).min(cfg.slots);
    let mut seen = vec![0u64; (cfg.slots as usize).div_ceil(64)];
    let mut out = Vec::with_capacity(k as usize);
    while out.len() < k as usize {
        let s = rng.below(u64::from(cfg.slots)) as u32;
        let (w, b) = ((s / 64) as usize, s % 64);
        if seen[w] & (1 << b) == 0 {
            seen[w] |= 1 << b;
            let v = match cfg.op {
                Op::Xor => rng.next_u64(),
                Op::Add => 1 + rng.below(8),
            };
            out.push((s, v));
        }
    }
    out
}

/// Splits global slot `s` into (bank, slot within bank): contiguous ranges.
fn route(cfg: &SimConfig, s: u32) -> (usize, u32) {
    let per = cfg.slots.div_ceil(cfg.banks);
    ((s / per) as usize, s % per)
}

fn bank_width(cfg: &SimConfig, b: u32) -> u32 {
    let per = cfg.slots.div_ceil(cfg.banks);
    per.min(cfg.slots.saturating_sub(b * per))
}

struct Disk {
    image: Vec<u8>,
    wal: Vec<u8>,
}

struct Node {
    banks: Vec<Replica>,
    disks: Vec<Disk>,
    down_until: Option<u64>,
    deferred: Vec<u64>,
}

struct InFlight {
    to: usize,
    from: usize,
    bank: usize,
    frame: Vec<u8>,
}

struct Net {
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
    seq: u64,
}

/// Runs a simulation to the end and reports.
pub fn run(cfg: &SimConfig) -> SimReport {
    assert!(cfg.nodes >= 1 && cfg.banks >= 1 && cfg.slots >= cfg.banks);
    let f = cfg.faults;
    let mut rng = Rng::new(cfg.seed ^ 0x5eed_fa17_0000_0001);
    let bank_cfgs: Vec<Config> = (0..cfg.banks).map(|b| Config::new(bank_width(cfg, b), cfg.op)).collect();
    let mut nodes: Vec<Node> = (0..cfg.nodes)
        .map(|n| {
            let banks: Vec<Replica> = bank_cfgs.iter().map(|c| Replica::new(n as u64 + 1, *c)).collect();
            let disks =
                banks.iter().map(|r| Disk { image: persist::encode_image(r), wal: Vec::new() }).collect();
            Node { banks, disks, down_until: None, deferred: Vec::new() }
        })
        .collect();
    let mut net = Net { queue: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), seq: 0 };
    let mut rep = SimReport {
        digests: Vec::new(),
        expected: 0,
        bytes: 0,
        push_bytes: 0,
        push_messages: 0,
        ae_bytes: 0,
        messages: 0,
        lost: 0,
        duplicated: 0,
        crashes: 0,
        partitions: 0,
        snapshots: 0,
        heal_rounds: 0,
    };
    // side[n]: which half of the current partition node n is in (all equal = no partition).
    let mut side = vec![false; cfg.nodes];
    let mut partition_end = 0u64;

    for t in 0..cfg.ticks {
        // Partitions start and heal.
        if f.partition_every > 0 && t % f.partition_every == f.partition_every / 2 {
            for s in side.iter_mut() {
                *s = rng.chance(0.5);
            }
            partition_end = t + f.partition_len;
            rep.partitions += 1;
        }
        if t == partition_end {
            side.iter_mut().for_each(|s| *s = false);
        }
        // Crashes and restarts.
        if f.crash_every > 0 && t % f.crash_every == f.crash_every - 1 {
            let n = rng.below(cfg.nodes as u64) as usize;
            if nodes[n].down_until.is_none() {
                crash(&mut nodes[n], t + f.crash_down.max(1));
                rep.crashes += 1;
            }
        }
        for n in 0..cfg.nodes {
            if nodes[n].down_until.is_some_and(|u| t >= u) {
                restart(cfg, &bank_cfgs, &mut nodes[n]);
            }
        }
        // Workload, commit, log, push.
        for n in 0..cfg.nodes {
            if nodes[n].down_until.is_some() {
                nodes[n].deferred.push(t);
                continue;
            }
            let mut ticks = std::mem::take(&mut nodes[n].deferred);
            ticks.push(t);
            for wt in ticks {
                for (s, v) in workload(cfg, n, wt) {
                    let (b, i) = route(cfg, s);
                    nodes[n].banks[b].accum(i, v).expect("slot in range");
                }
            }
            for b in 0..cfg.banks as usize {
                let Some(d) = nodes[n].banks[b].commit() else {
                    continue;
                };
                let msg = Message::Deltas { op: cfg.op, deltas: vec![d] };
                persist::encode_record(&msg, &mut nodes[n].disks[b].wal);
                let frame = wire::encode(&msg);
                for peer in (0..cfg.nodes).filter(|&p| p != n) {
                    let sent = send(&mut net, &mut rep, &mut rng, cfg, t, &side, n, peer, b, &frame);
                    rep.push_bytes += sent;
                    rep.push_messages += 1;
                }
            }
            if t % cfg.checkpoint_interval == 0 {
                checkpoint(&mut nodes[n]);
            }
        }
        // Anti-entropy: each node asks one peer, rotating.
        if cfg.nodes > 1 && t % cfg.ae_interval == 0 {
            let round = t / cfg.ae_interval;
            for (n, node) in nodes.iter().enumerate() {
                if node.down_until.is_some() {
                    continue;
                }
                let peer = (n + 1 + (round as usize % (cfg.nodes - 1))) % cfg.nodes;
                for b in 0..cfg.banks as usize {
                    let frame = wire::encode(&node.banks[b].summary());
                    rep.ae_bytes += send(&mut net, &mut rep, &mut rng, cfg, t, &side, n, peer, b, &frame);
                }
            }
        }
        deliver(&mut net, &mut nodes, &mut rep, &mut rng, cfg, t, &side, false);
    }

    // Heal: no faults, everyone up, full anti-entropy rounds until quiet.
    let healed = vec![false; cfg.nodes];
    let calm = SimConfig { faults: Faults::default(), ..*cfg };
    for node in nodes.iter_mut() {
        if node.down_until.is_some() {
            restart(cfg, &bank_cfgs, node);
        }
    }
    let mut t = cfg.ticks;
    // Drain what is still in flight, then run rounds.
    while !net.queue.is_empty() {
        deliver(&mut net, &mut nodes, &mut rep, &mut rng, &calm, t, &healed, true);
        t += 1;
    }
    let mut deferred_left = true;
    while deferred_left || !all_equal(&nodes) {
        deferred_left = false;
        for n in 0..cfg.nodes {
            // Deferred workload of a node that was down at the end.
            let ticks = std::mem::take(&mut nodes[n].deferred);
            for wt in ticks {
                for (s, v) in workload(cfg, n, wt) {
                    let (b, i) = route(cfg, s);
                    nodes[n].banks[b].accum(i, v).expect("slot in range");
                }
            }
            for b in 0..cfg.banks as usize {
                if let Some(d) = nodes[n].banks[b].commit() {
                    let msg = Message::Deltas { op: cfg.op, deltas: vec![d] };
                    persist::encode_record(&msg, &mut nodes[n].disks[b].wal);
                }
            }
        }
        for (n, node) in nodes.iter().enumerate() {
            for peer in (0..cfg.nodes).filter(|&p| p != n) {
                for b in 0..cfg.banks as usize {
                    let frame = wire::encode(&node.banks[b].summary());
                    rep.ae_bytes += send(&mut net, &mut rep, &mut rng, &calm, t, &healed, n, peer, b, &frame);
                }
            }
        }
        while !net.queue.is_empty() {
            deliver(&mut net, &mut nodes, &mut rep, &mut rng, &calm, t, &healed, true);
            t += 1;
        }
        rep.heal_rounds += 1;
        assert!(rep.heal_rounds <= 4 * cfg.nodes as u64 + 8, "anti-entropy did not converge");
    }

    rep.digests = nodes.iter().map(|n| node_digest(cfg, n)).collect();
    rep.expected = expected_digest(cfg);
    rep.snapshots = nodes.iter().flat_map(|n| n.banks.iter()).map(|r| r.stats().snapshots).sum();
    rep
}

fn all_equal(nodes: &[Node]) -> bool {
    nodes.windows(2).all(|w| {
        w[0].banks
            .iter()
            .zip(&w[1].banks)
            .all(|(a, b)| a.versions() == b.versions() && a.state() == b.state())
    })
}

/// Digest of a node's whole state: its banks' states laid end to end.
fn node_digest(cfg: &SimConfig, n: &Node) -> u64 {
    let mut words = Vec::with_capacity(cfg.slots as usize);
    for r in &n.banks {
        words.extend_from_slice(r.state());
    }
    digest(&words)
}

/// The state every node must reach, computed straight from the workload.
pub fn expected_digest(cfg: &SimConfig) -> u64 {
    let mut words = vec![cfg.op.identity(); cfg.slots as usize];
    for n in 0..cfg.nodes {
        for t in 0..cfg.ticks {
            for (s, v) in workload(cfg, n, t) {
                words[s as usize] = cfg.op.combine(words[s as usize], v);
            }
        }
    }
    digest(&words)
}

fn crash(node: &mut Node, until: u64) {
    node.down_until = Some(until);
}

fn restart(cfg: &SimConfig, bank_cfgs: &[Config], node: &mut Node) {
    for (b, disk) in node.disks.iter().enumerate() {
        node.banks[b] = persist::decode_image(&disk.image, &disk.wal, bank_cfgs[b])
            .unwrap_or_else(|e| panic!("simulated disk of bank {b} unreadable: {e}"));
    }
    let _ = cfg;
    node.down_until = None;
}

fn checkpoint(node: &mut Node) {
    for (r, disk) in node.banks.iter().zip(node.disks.iter_mut()) {
        disk.image = persist::encode_image(r);
        disk.wal.clear();
    }
}

/// Puts a frame on the wire with the fault model; returns the bytes sent.
#[allow(clippy::too_many_arguments)]
fn send(
    net: &mut Net,
    rep: &mut SimReport,
    rng: &mut Rng,
    cfg: &SimConfig,
    t: u64,
    side: &[bool],
    from: usize,
    to: usize,
    bank: usize,
    frame: &[u8],
) -> u64 {
    let f = cfg.faults;
    rep.messages += 1;
    rep.bytes += frame.len() as u64;
    if side[from] != side[to] || rng.chance(f.loss) {
        rep.lost += 1;
        return frame.len() as u64;
    }
    let copies = if rng.chance(f.dup) {
        rep.duplicated += 1;
        rep.bytes += frame.len() as u64;
        2
    } else {
        1
    };
    for _ in 0..copies {
        let delay = 1 + if f.reorder > 0 { rng.below(f.reorder + 1) } else { 0 };
        let item = InFlight { to, from, bank, frame: frame.to_vec() };
        let slot = match net.free.pop() {
            Some(i) => {
                net.slots[i] = Some(item);
                i
            }
            None => {
                net.slots.push(Some(item));
                net.slots.len() - 1
            }
        };
        net.seq += 1;
        net.queue.push(Reverse((t + delay, (net.seq << 24) | slot as u64)));
    }
    frame.len() as u64 * copies
}

/// Delivers every message due by tick `t` (all of them when `all`).
#[allow(clippy::too_many_arguments)]
fn deliver(
    net: &mut Net,
    nodes: &mut [Node],
    rep: &mut SimReport,
    rng: &mut Rng,
    cfg: &SimConfig,
    t: u64,
    side: &[bool],
    all: bool,
) {
    while let Some(&Reverse((at, key))) = net.queue.peek() {
        if at > t && !all {
            break;
        }
        net.queue.pop();
        let slot = (key & 0xff_ffff) as usize;
        let m = net.slots[slot].take().expect("queued message present");
        net.free.push(slot);
        let node = &mut nodes[m.to];
        if node.down_until.is_some() {
            continue;
        }
        let msg = wire::decode(&m.frame).expect("simulated network does not corrupt");
        let r = &mut node.banks[m.bank];
        match &msg {
            Message::Summary { versions, .. } => {
                // While pushes flow, skip what is probably in flight; heal rounds take all.
                let deltas = r.missing_for_lagging(versions, if all { 1 } else { 3 });
                if !deltas.is_empty() {
                    let answer = wire::encode(&Message::Deltas { op: cfg.op, deltas });
                    rep.ae_bytes += send(net, rep, rng, cfg, t, side, m.to, m.from, m.bank, &answer);
                }
            }
            Message::Deltas { .. } => {
                let joined = r.join_message(&msg).expect("valid delta");
                if joined.contains(&super::model::Joined::Applied)
                    || joined.contains(&super::model::Joined::Buffered)
                {
                    persist::encode_record(&msg, &mut node.disks[m.bank].wal);
                }
            }
        }
    }
}
