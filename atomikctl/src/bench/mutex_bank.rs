//! The baseline: one mutex per bank around plain slots, as the original ATOMiK takes a
//! per-fd mutex around every operation.

use std::sync::Mutex;

use atomik::{Op, Slot};

pub struct MutexBank {
    slots: Mutex<Vec<Slot>>,
}

impl MutexBank {
    pub fn new(op: Op, slots: u64) -> MutexBank {
        MutexBank { slots: Mutex::new(vec![Slot::new(op, 0); slots as usize]) }
    }

    pub fn accum(&self, slot: u64, d: u64) {
        let mut g = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        g[slot as usize].accum(d);
    }
}
