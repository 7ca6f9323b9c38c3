//! System-wide KSM counters from `/sys/kernel/mm/ksm`.

use super::pagemap::{kpagecount, kpageflags, KPF_KSM};
use std::path::Path;

/// The KSM counters atomikctl reports. `None` where the file is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KsmGlobal {
    /// `run`: 0 stopped, 1 running, 2 unmerging.
    pub run: Option<u64>,
    /// Shared KSM pages in use.
    pub pages_shared: Option<u64>,
    /// Page table entries pointing to them (the saving, in pages).
    pub pages_sharing: Option<u64>,
    /// Bytes saved minus KSM's own metadata cost.
    pub general_profit: Option<i64>,
    /// Zero pages merged with `use_zero_pages`.
    pub ksm_zero_pages: Option<u64>,
}

impl KsmGlobal {
    /// Whether KSM merges nothing anywhere: no KSM page, no merged zero page, and a
    /// `general_profit` of exactly 0 (so no rmap item either, the metadata KSM keeps per
    /// scanned page). Every process's `ksm_stat` then reads 0 merging pages and 0 profit.
    /// False when a counter is missing (an older kernel, or no KSM).
    pub fn nothing_merged(&self) -> bool {
        self.pages_shared == Some(0)
            && self.pages_sharing == Some(0)
            && self.ksm_zero_pages.unwrap_or(0) == 0
            && self.general_profit == Some(0)
    }
}

/// Reads the counters under `dir` (normally `/sys/kernel/mm/ksm`).
pub fn read_ksm(dir: &Path) -> KsmGlobal {
    let n = |f: &str| -> Option<i64> { std::fs::read_to_string(dir.join(f)).ok()?.trim().parse().ok() };
    KsmGlobal {
        run: n("run").map(|v| v as u64),
        pages_shared: n("pages_shared").map(|v| v as u64),
        pages_sharing: n("pages_sharing").map(|v| v as u64),
        general_profit: n("general_profit"),
        ksm_zero_pages: n("ksm_zero_pages").map(|v| v as u64),
    }
}

/// One process's KSM pages, from its page frame numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KsmPages {
    /// PFNs of the KSM pages it maps, sorted, one entry per distinct page.
    pub pfns: Vec<u64>,
    /// Its share of what KSM saves: a KSM page mapped `n` times saves `n − 1` pages, split
    /// evenly between its `n` mappings, so the shares of any set of processes add up to
    /// what KSM saves them together (a parent row is the sum of its children).
    pub saved_pages: f64,
}

/// The KSM pages among `shared`, `(address, pfn)` pairs of pages shared copy-on-write (KSM
/// pages are never exclusively mapped). `None` without PFNs or `/proc/kpageflags` and
/// `/proc/kpagecount` (CAP_SYS_ADMIN).
pub fn ksm_pages(shared: &[(u64, u64)]) -> Option<KsmPages> {
    let pfns: Vec<u64> = shared.iter().map(|&(_, pfn)| pfn).filter(|&p| p != 0).collect();
    if pfns.len() < shared.len() {
        return None;
    }
    let flags = kpageflags(&pfns)?;
    let ksm: Vec<u64> = pfns.iter().zip(&flags).filter(|(_, f)| *f & KPF_KSM != 0).map(|(p, _)| *p).collect();
    let counts = kpagecount(&ksm)?;
    let saved_pages = counts.iter().map(|&n| if n > 1 { (n - 1) as f64 / n as f64 } else { 0.0 }).sum();
    let mut pfns = ksm;
    pfns.sort_unstable();
    pfns.dedup();
    Some(KsmPages { pfns, saved_pages })
}
