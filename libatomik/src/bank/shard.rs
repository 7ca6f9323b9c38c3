//! Writer-private accumulator shards: dense batches at memory speed, still lock-free.
//!
//! A lock-prefixed read-modify-write per word caps a dense ACCUM pass far below memory
//! bandwidth. A writer that leases a shard is the only one to store to it, so it combines
//! deltas with plain loads and stores of whole words; READ and SWAP fold the shards in
//! (see the protocol in [`crate::abi`]). Like per-CPU counters, but exact: SWAP records what
//! it folded instead of resetting a shard under its writer.

use std::sync::atomic::Ordering;

use crate::bank::BankMemory;
use crate::error::{Error, Result};

/// A leased shard. Dropping it returns the lease; deltas already written stay in the bank.
pub struct ShardWriter<'a> {
    memory: &'a BankMemory,
    shard: u32,
    token: u64,
}

/// The pid part of a lease token.
fn token_pid(token: u64) -> i32 {
    (token & 0x7fff_ffff) as i32
}

/// True when the process holding `token` is gone, so its lease may be taken over. Its
/// stores were whole words: a delta it had not stored yet simply never happened.
fn holder_is_dead(token: u64) -> bool {
    // SAFETY: kill with signal 0 only checks for the process's existence.
    let r = unsafe { libc::kill(token_pid(token), 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

impl<'a> ShardWriter<'a> {
    pub(crate) fn lease(memory: &'a BankMemory, bank: &str) -> Result<ShardWriter<'a>> {
        use std::sync::atomic::AtomicU64;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let shards = memory.layout().shards;
        let token = (NEXT.fetch_add(1, Ordering::Relaxed) << 32) | std::process::id() as u64;
        for k in 0..shards {
            let owner = memory.shard_owner(k);
            let cur = owner.load(Ordering::Acquire);
            let free = cur == 0 || holder_is_dead(cur);
            if free && owner.compare_exchange(cur, token, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return Ok(ShardWriter { memory, shard: k, token });
            }
        }
        Err(Error::NoFreeShard { name: bank.to_owned(), shards })
    }

    /// The shard index held.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// ACCUMs `deltas[i]` into slot `start + i` with plain loads and stores: no lock prefix.
    /// Slots must lie inside the bank (checked, whole batch before any write).
    pub fn accum_dense(&mut self, start: u64, deltas: &[u64]) -> Result<()> {
        let slots = self.memory.slots();
        if start.checked_add(deltas.len() as u64).is_none_or(|end| end > slots) {
            return Err(Error::SlotOutOfRange {
                bank: String::new(),
                slot: start + deltas.len() as u64,
                slots,
            });
        }
        let words = self.memory.shard_words(self.shard, start, deltas.len());
        let op = self.memory.op();
        for (w, &d) in words.iter().zip(deltas) {
            // Only this lease holder stores to the word, so load + store is not a lost update.
            w.store(op.combine(w.load(Ordering::Relaxed), d), Ordering::Release);
        }
        self.memory.mark_range(start, start + deltas.len() as u64);
        Ok(())
    }
}

impl Drop for ShardWriter<'_> {
    fn drop(&mut self) {
        let _ = self.memory.shard_owner(self.shard).compare_exchange(
            self.token,
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}
