//! Heal: after the producers and the nemesis have stopped, bring everything up and wait
//! (bounded) until every replica's bank reads the same — and keeps reading the same — before
//! anything is compared with the ledger.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use crate::nemesis::Nemesis;
use crate::signals::interrupted;

/// Equal banks count as converged once they stayed equal and unchanged this long (40 ticks):
/// equality is then no accident of two replicas passing each other.
const STABLE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(200);

pub struct Healed {
    pub converged: bool,
    /// From the start of the heal to convergence (or to the bound).
    pub wait_ms: u64,
    /// Each replica's bank as last read (`None`: it could not be read).
    pub states: Vec<Option<Vec<u64>>>,
}

pub fn heal(n: &mut Nemesis, bound: Duration) -> Result<Healed> {
    let start = Instant::now();
    n.log.line("heal: producers and nemesis stopped; resuming, restarting what is down");
    for g in n.gates {
        g.open();
    }
    for r in 0..n.cluster.replicas.len() {
        if n.cluster.replicas[r].paused {
            n.cluster.signal(r, Signal::SIGCONT);
            n.log.line(format_args!("{} SIGCONT", n.cluster.name(r)));
        }
    }
    // From now on a crashed server or daemon is restarted almost at once.
    let soon = Duration::from_millis(100)..Duration::from_millis(300);
    n.ensure_up()?;
    let mut last: Vec<Option<Vec<u64>>> = Vec::new();
    let mut stable_since = Instant::now();
    loop {
        if interrupted() {
            bail!("interrupted");
        }
        n.watch(soon.clone())?;
        n.ensure_up()?;
        let banks: Vec<String> = n.cluster.replicas.iter().map(|r| r.name.clone()).collect();
        let states = banks.iter().map(|b| n.cluster.ctl.read_all(b)).collect::<Result<Vec<_>>>()?;
        let all_up = (0..banks.len()).all(|r| n.cluster.running(r))
            && n.cluster.nats.as_ref().is_none_or(|s| s.running());
        let equal = states.iter().all(|s| s.is_some() && *s == states[0]);
        if states != last || !equal || !all_up {
            stable_since = Instant::now();
        }
        last = states;
        let wait_ms = start.elapsed().as_millis() as u64;
        if equal && stable_since.elapsed() >= STABLE {
            n.log.line(format_args!("heal: all {} replicas equal after {wait_ms} ms", banks.len()));
            return Ok(Healed { converged: true, wait_ms, states: last });
        }
        if start.elapsed() > bound {
            let digests: Vec<String> =
                last.iter().map(|s| s.as_deref().map_or("unreadable".into(), digest)).collect();
            n.log.line(format_args!("heal: replicas still differ after {bound:?}: {}", digests.join(" ")));
            return Ok(Healed { converged: false, wait_ms, states: last });
        }
        std::thread::sleep(POLL);
    }
}

/// A short fingerprint of a bank's state for the log (FNV-1a; not for security).
fn digest(state: &[u64]) -> String {
    let h = state
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{h:016x}")
}
