//! The binding between a bank and its replica directory, as the directory records it.
//!
//! A replica directory mirrors exactly one bank *incarnation*: the bank's header carries the
//! same incarnation id (see [`crate::abi`], "Replicated banks"). The file `binding` holds
//! that id and the per-slot *base* `E0`, which fixes how the bank's `taken` words relate to
//! the replica: `taken[i] = E0[i] ∘ own[i]`, where `own` is this replica's own committed
//! accumulator. The base is chosen once per incarnation:
//! - adopting a bank that was never replicated: `E0 = ref⁻¹`, so everything the bank holds
//!   counts as local changes to replicate;
//! - rebuilding a bank that was lost (reboot): `E0 = own⁻¹`, so the new, empty accumulators
//!   are all local changes and the references come from the replica;
//! - recovering after the directory was lost: `E0 = taken`, so the bank's not yet
//!   replicated changes stay exactly that and the rest is rebuilt from the peers.
//!
//! `pending` is true until the bank's header carries the incarnation: a crash before that
//! makes the next start apply the same binding again (every step of applying it is a plain
//! store of a value computed from this file and the replica, so repeating it is harmless).

use std::path::{Path, PathBuf};

use super::persist::{write_atomic, PersistError};

const MAGIC: &[u8; 8] = b"ATKBIND1";

/// What `binding` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Incarnation id shared with the bank header (never 0).
    pub incarnation: u64,
    /// The incarnation this binding replaces in the bank's header (recovery), else 0.
    pub replaces: u64,
    /// True until the bank header carries `incarnation`.
    pub pending: bool,
    /// Base of the `taken` words, sparse: `(slot, value)` for every slot where it is not the
    /// identity, sorted by slot.
    pub base: Vec<(u32, u64)>,
}

impl Binding {
    /// Path of the binding file in replica directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("binding")
    }

    /// Reads the binding of `dir`; `None` when there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Binding>, PersistError> {
        let path = Binding::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PersistError::Io { path, source }),
        };
        decode(&bytes).map(Some).map_err(|why| PersistError::Corrupt { path, why })
    }

    /// Replaces the binding file atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<(), PersistError> {
        write_atomic(dir, &Binding::path(dir), &encode(self))
    }

    /// The base value of slot `i`.
    pub fn base_of(&self, i: u32, identity: u64) -> u64 {
        self.base.binary_search_by_key(&i, |b| b.0).map_or(identity, |k| self.base[k].1)
    }
}

fn encode(b: &Binding) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + b.base.len() * 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&b.incarnation.to_le_bytes());
    out.extend_from_slice(&b.replaces.to_le_bytes());
    out.push(u8::from(b.pending));
    out.extend_from_slice(&(b.base.len() as u64).to_le_bytes());
    for &(s, v) in &b.base {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Binding, String> {
    let fixed = 8 + 8 + 8 + 1 + 8;
    if bytes.len() < fixed + 4 || &bytes[..8] != MAGIC {
        return Err("not a binding file (bad magic or too short)".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err("checksum mismatch".into());
    }
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let incarnation = u64_at(8);
    let replaces = u64_at(16);
    let pending = match body[24] {
        0 => false,
        1 => true,
        x => return Err(format!("bad pending flag {x}")),
    };
    let count = u64_at(25);
    if count.checked_mul(12).and_then(|n| n.checked_add(fixed as u64)) != Some(body.len() as u64) {
        return Err(format!("{count} base entries do not fit the file"));
    }
    let mut base = Vec::with_capacity(count as usize);
    for k in 0..count as usize {
        let at = fixed + k * 12;
        let s = u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
        base.push((s, u64_at(at + 4)));
    }
    if incarnation == 0 || base.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("zero incarnation or unsorted base".into());
    }
    Ok(Binding { incarnation, replaces, pending, base })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let b = Binding { incarnation: 7, replaces: 3, pending: true, base: vec![(1, 5), (9, u64::MAX)] };
        let bytes = encode(&b);
        assert_eq!(decode(&bytes).unwrap(), b);
        assert_eq!(b.base_of(9, 0), u64::MAX);
        assert_eq!(b.base_of(2, 0), 0);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "a file cut at {cut} bytes was accepted");
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(decode(&flipped).is_err());
    }
}
