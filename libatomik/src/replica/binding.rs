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
//!
//! **Adoption** (`atomikctl sync leave`) moves a retired origin's accumulator `a` into this
//! replica's own column without any local ACCUM: `own' = own ∘ a`. The bank's `taken` words
//! stay as they are, so the base absorbs it: `E0' = E0 ∘ a⁻¹`. Both halves must take effect
//! together, so the file first records the adoption as [`Adoption`] (with the own version
//! its delta will have), then the delta is logged, then the adoption is folded into the
//! base. On open, a recorded adoption whose delta made it into the replica (own version ≥
//! `to_version`) is folded; one whose delta did not is dropped (it never happened).

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::op::Op;
use super::persist::{write_atomic, PersistError};

const MAGIC_V1: &[u8; 8] = b"ATKBIND1";
const MAGIC: &[u8; 8] = b"ATKBIND2";

/// An adoption recorded before its delta is logged (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The retired origin.
    pub origin: u64,
    /// Its final version.
    pub final_version: u64,
    /// This replica's own version once the adopting delta is committed.
    pub to_version: u64,
    /// The origin's accumulator, sparse, sorted by slot.
    pub amounts: Vec<(u32, u64)>,
}

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
    /// An adoption whose delta may or may not be logged yet.
    pub adopting: Option<Adoption>,
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

    /// Settles a recorded adoption against the replica's own version: folded into the base
    /// when its delta is in the replica, else dropped. True when the binding changed.
    pub fn settle(&mut self, own_version: u64, op: Op) -> bool {
        let Some(a) = self.adopting.take() else { return false };
        if own_version >= a.to_version {
            let mut base: BTreeMap<u32, u64> = self.base.iter().copied().collect();
            for &(s, v) in &a.amounts {
                let e = base.entry(s).or_insert(op.identity());
                *e = op.combine(*e, op.inverse(v));
            }
            self.base = base.into_iter().filter(|&(_, v)| v != op.identity()).collect();
        }
        true
    }
}

fn put_sparse(out: &mut Vec<u8>, v: &[(u32, u64)]) {
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for &(s, x) in v {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Reads fixed-size fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("truncated binding file".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn sparse(&mut self) -> Result<Vec<(u32, u64)>, String> {
        let count = self.u64()?;
        if count.checked_mul(12).is_none_or(|n| n > self.0.len() as u64) {
            return Err(format!("{count} entries do not fit the binding file"));
        }
        let v: Vec<(u32, u64)> =
            (0..count).map(|_| Ok((self.u32()?, self.u64()?))).collect::<Result<_, String>>()?;
        if v.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("unsorted slots".into());
        }
        Ok(v)
    }
}

fn encode(b: &Binding) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + b.base.len() * 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&b.incarnation.to_le_bytes());
    out.extend_from_slice(&b.replaces.to_le_bytes());
    out.push(u8::from(b.pending));
    put_sparse(&mut out, &b.base);
    match &b.adopting {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            out.extend_from_slice(&a.origin.to_le_bytes());
            out.extend_from_slice(&a.final_version.to_le_bytes());
            out.extend_from_slice(&a.to_version.to_le_bytes());
            put_sparse(&mut out, &a.amounts);
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Binding, String> {
    if bytes.len() < 12 || !(bytes.starts_with(MAGIC) || bytes.starts_with(MAGIC_V1)) {
        return Err("not a binding file (bad magic or too short)".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err("checksum mismatch".into());
    }
    let v1 = body.starts_with(MAGIC_V1);
    let mut r = Reader(&body[8..]);
    let incarnation = r.u64()?;
    let replaces = r.u64()?;
    let pending = match r.u8()? {
        0 => false,
        1 => true,
        x => return Err(format!("bad pending flag {x}")),
    };
    let base = r.sparse()?;
    let adopting = match if v1 { 0 } else { r.u8()? } {
        0 => None,
        1 => Some(Adoption {
            origin: r.u64()?,
            final_version: r.u64()?,
            to_version: r.u64()?,
            amounts: r.sparse()?,
        }),
        x => return Err(format!("bad adoption flag {x}")),
    };
    if !r.0.is_empty() {
        return Err("trailing bytes".into());
    }
    if incarnation == 0 {
        return Err("zero incarnation".into());
    }
    Ok(Binding { incarnation, replaces, pending, base, adopting })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut b = Binding {
            incarnation: 7,
            replaces: 3,
            pending: true,
            base: vec![(1, 5), (9, u64::MAX)],
            adopting: None,
        };
        assert_eq!(decode(&encode(&b)).unwrap(), b);
        b.adopting =
            Some(Adoption { origin: 4, final_version: 9, to_version: 12, amounts: vec![(1, 2), (3, 4)] });
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

    #[test]
    fn an_adoption_is_folded_only_when_its_delta_is_in_the_replica() {
        let adoption =
            Adoption { origin: 4, final_version: 9, to_version: 12, amounts: vec![(1, 5), (3, 4)] };
        let b = Binding {
            incarnation: 7,
            replaces: 0,
            pending: false,
            base: vec![(1, 7)],
            adopting: Some(adoption),
        };
        let mut logged = b.clone();
        assert!(logged.settle(12, Op::Add));
        assert_eq!(logged.base, vec![(1, 2), (3, 4u64.wrapping_neg())]);
        assert_eq!(logged.adopting, None);
        let mut lost = b.clone();
        assert!(lost.settle(11, Op::Add));
        assert_eq!(lost.base, vec![(1, 7)]);
        assert!(!lost.settle(11, Op::Add), "nothing left to settle");
        let mut xor = b;
        xor.settle(12, Op::Xor);
        assert_eq!(xor.base, vec![(1, 2), (3, 4)]);
    }
}
