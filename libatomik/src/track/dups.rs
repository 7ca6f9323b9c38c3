//! Duplicate anonymous pages that KSM has not merged: found by fingerprint, confirmed by
//! comparing bytes, reported as reclaimable pages per cgroup.
//!
//! Candidates are present private-anonymous pages that are *exclusively mapped* (pagemap bit
//! 56): each is its own physical page, so two of them with equal bytes are two copies of the
//! same content in RAM. Pages already shared (copy-on-write after fork, KSM-merged, the zero
//! page) are one physical page for several mappings and are not candidates. This needs no
//! PFNs, so it works unprivileged on the caller's own processes.

use super::fingerprint::fingerprint;
use super::memread::MemReader;
use super::ranges::{Range, PAGE};
use std::collections::BTreeMap;

/// A process to scan: which cgroup it is in and which of its pages are candidates.
#[derive(Debug, Clone)]
pub struct DupProcess {
    /// The process.
    pub pid: i32,
    /// Its cgroup (any label: the report is grouped by it).
    pub cgroup: String,
    /// Exclusive anonymous pages (see [`sample_anon`](super::cow::sample_anon)).
    pub ranges: Vec<Range>,
}

/// Duplicates attributed to one cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupDups {
    /// Pages of this cgroup that are extra copies of content kept elsewhere (reclaimable).
    pub pages: u64,
    /// Of those, whose content is kept in the same cgroup.
    pub within: u64,
    /// Of those, whose content is kept in another cgroup.
    pub across: u64,
    /// Of those, all-zero pages.
    pub zero_filled: u64,
}

impl CgroupDups {
    /// Reclaimable bytes.
    pub fn bytes(&self) -> u64 {
        self.pages * PAGE
    }
}

/// Result of a duplicate scan.
#[derive(Debug, Clone, Default)]
pub struct DupReport {
    /// Candidate pages fingerprinted.
    pub scanned_pages: u64,
    /// Sets of ≥ 2 byte-identical pages.
    pub classes: u64,
    /// Pages whose fingerprint matched another page's but whose bytes matched none (a
    /// fingerprint collision, or content that changed between the two reads); never counted.
    pub unconfirmed: u64,
    /// Extra copies in total (Σ class size − 1).
    pub reclaimable_pages: u64,
    /// Per cgroup.
    pub per_cgroup: BTreeMap<String, CgroupDups>,
    /// Processes that could not be read, with the reason.
    pub skipped: Vec<(i32, String)>,
}

struct Cand {
    fp: u64,
    proc_idx: u32,
    addr: u64,
}

fn read_page(reader: &mut MemReader, addr: u64) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    reader.for_each_page(Range::new(addr, addr + PAGE), |_, p| v.extend_from_slice(p)).ok()?;
    Some(v)
}

/// Fingerprints every candidate page, then confirms equal fingerprints byte for byte.
pub fn find_duplicates(procs: &[DupProcess]) -> DupReport {
    let mut rep = DupReport::default();
    let mut cands: Vec<Cand> = Vec::new();
    let mut readers: Vec<MemReader> = procs.iter().map(|p| MemReader::new(p.pid)).collect();
    for (i, p) in procs.iter().enumerate() {
        let before = cands.len();
        for r in &p.ranges {
            let res = readers[i].for_each_page(*r, |addr, page| {
                cands.push(Cand { fp: fingerprint(page), proc_idx: i as u32, addr })
            });
            if let Err(e) = res {
                cands.truncate(before);
                rep.skipped.push((p.pid, e.to_string()));
                break;
            }
        }
    }
    rep.scanned_pages = cands.len() as u64;
    cands.sort_unstable_by_key(|c| (c.fp, c.proc_idx, c.addr));
    let order = |c: &Cand| (procs[c.proc_idx as usize].cgroup.as_str(), c.proc_idx, c.addr);
    for group in cands.chunk_by(|a, b| a.fp == b.fp).filter(|g| g.len() > 1) {
        // Byte-equal classes within the fingerprint group.
        let mut classes: Vec<(Vec<u8>, Vec<&Cand>)> = Vec::new();
        for c in group {
            let Some(bytes) = read_page(&mut readers[c.proc_idx as usize], c.addr) else {
                continue;
            };
            match classes.iter_mut().find(|(b, _)| *b == bytes) {
                Some((_, m)) => m.push(c),
                None => classes.push((bytes, vec![c])),
            }
        }
        rep.unconfirmed += classes.iter().filter(|(_, m)| m.len() == 1).count() as u64;
        for (bytes, mut members) in classes.into_iter().filter(|(_, m)| m.len() > 1) {
            rep.classes += 1;
            let zero = bytes.iter().all(|&b| b == 0);
            members.sort_by(|a, b| order(a).cmp(&order(b)));
            for (k, m) in members.iter().enumerate().skip(1) {
                let cg = &procs[m.proc_idx as usize].cgroup;
                let within = members[..k].iter().any(|e| &procs[e.proc_idx as usize].cgroup == cg);
                let d = rep.per_cgroup.entry(cg.clone()).or_default();
                d.pages += 1;
                d.within += within as u64;
                d.across += !within as u64;
                d.zero_filled += zero as u64;
                rep.reclaimable_pages += 1;
            }
        }
    }
    rep
}
