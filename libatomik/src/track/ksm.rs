//! System-wide KSM counters from `/sys/kernel/mm/ksm`.

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
