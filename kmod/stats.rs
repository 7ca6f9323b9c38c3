// SPDX-License-Identifier: GPL-2.0
//! Per-bank operation counters: BANK_STATS, and `/proc/PID/fdinfo/FD` of an attached fd.

use crate::abi;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{seq_file::SeqFile, seq_print};

/// Ops by kind; counted with relaxed atomics since they are only reported.
#[derive(Default)]
pub(crate) struct Stats {
    loads: AtomicU64,
    accums: AtomicU64,
    reads: AtomicU64,
    swaps: AtomicU64,
    batches: AtomicU64,
    mmaps: AtomicU64,
}

impl Stats {
    /// Counts one op of `kind` (`abi::KIND_*`).
    pub(crate) fn count(&self, kind: u32) {
        let counter = match kind {
            abi::KIND_LOAD => &self.loads,
            abi::KIND_ACCUM => &self.accums,
            abi::KIND_READ => &self.reads,
            _ => &self.swaps,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_batch(&self) {
        self.batches.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_mmap(&self) {
        self.mmaps.fetch_add(1, Relaxed);
    }

    /// Fills the counter fields of a BANK_STATS reply.
    pub(crate) fn fill(&self, out: &mut abi::BankStats) {
        out.loads = self.loads.load(Relaxed);
        out.accums = self.accums.load(Relaxed);
        out.reads = self.reads.load(Relaxed);
        out.swaps = self.swaps.load(Relaxed);
        out.batches = self.batches.load(Relaxed);
        out.mmaps = self.mmaps.load(Relaxed);
    }
}

/// fdinfo lines of an attached fd: bank, access and the bank's counters.
pub(crate) fn show_fdinfo(att: &crate::device::Attachment, m: &SeqFile) {
    let bank = &att.bank;
    let len = bank.name.iter().position(|&b| b == 0).unwrap_or(bank.name.len());
    let name = core::str::from_utf8(&bank.name[..len]).unwrap_or("?");
    let mut s = abi::BankStats::default();
    bank.stats.fill(&mut s);
    let access = match (att.access & abi::ACCESS_READ != 0, att.access & abi::ACCESS_WRITE != 0) {
        (true, true) => "rw",
        (false, true) => "w",
        _ => "r",
    };
    let slots = bank.layout.slots;
    seq_print!(m, "atomik-bank:\t{name}\natomik-access:\t{access}\natomik-slots:\t{slots}\n");
    seq_print!(
        m,
        "atomik-ops:\tload {} accum {} read {} swap {} batch {} mmap {}\n",
        s.loads,
        s.accums,
        s.reads,
        s.swaps,
        s.batches,
        s.mmaps
    );
}
