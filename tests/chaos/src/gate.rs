//! A per-replica gate that the nemesis closes around a simulated reboot.
//!
//! A real reboot takes the machine's producers down with the daemon, and an ACCUM that lands
//! in a bank file after its daemon stopped and before the file is deleted is gone on any
//! design: no replica ever saw it. So while a replica "reboots" (`bank-delete`), producers
//! skip it, and closing waits for the ACCUMs already in flight to finish. Every other fault
//! leaves the bank in place, and there producers keep ACCUMing into replicas whose daemon is
//! down: those ACCUMs are acknowledged and must survive.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Gate {
    closed: AtomicBool,
    in_flight: AtomicUsize,
}

/// Held by a producer while its ACCUM runs.
pub struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Gate {
    /// A pass while the gate is open. Announcing first and then checking (both SeqCst, as
    /// [`Gate::close`] does the reverse) means that once `close` has seen no ACCUM in flight,
    /// every later one sees the gate closed.
    pub fn enter(&self) -> Option<Pass<'_>> {
        self.in_flight.fetch_add(1, SeqCst);
        let pass = Pass(self);
        (!self.closed.load(SeqCst)).then_some(pass)
    }

    /// Closes the gate and waits at most `bound` for the ACCUMs in flight; false if some
    /// were still running then.
    pub fn close(&self, bound: Duration) -> bool {
        self.closed.store(true, SeqCst);
        let deadline = Instant::now() + bound;
        while self.in_flight.load(SeqCst) > 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    pub fn open(&self) {
        self.closed.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_lets_nobody_in_and_close_waits_for_those_inside() {
        let g = Gate::default();
        let p = g.enter().expect("open");
        std::thread::scope(|s| {
            let h = s.spawn(|| g.close(Duration::from_secs(5)));
            std::thread::sleep(Duration::from_millis(50));
            assert!(!h.is_finished(), "close returned while an ACCUM was in flight");
            assert!(g.enter().is_none());
            drop(p);
            assert!(h.join().unwrap());
        });
        assert!(g.enter().is_none());
        g.open();
        assert!(g.enter().is_some());
    }

    #[test]
    fn close_gives_up_at_its_bound() {
        let g = Gate::default();
        let _p = g.enter().unwrap();
        assert!(!g.close(Duration::from_millis(20)));
    }
}
