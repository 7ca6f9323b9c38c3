//! [`Bank`]: a named bank of slots, whatever backend serves it.

mod memory;
mod shard;

pub use memory::BankMemory;
pub use shard::ShardWriter;

use crate::backend::{
    self, Access, Backend, BackendKind, BankInfo, Control, CreateOptions, DeviceSlots, Opened, OpenedSlots,
};
use crate::error::{Error, Result};
use crate::name::BankName;
use crate::Op;

/// An open bank. Cheap operations (ACCUM, READ) go straight to the shared mapping (or, for an
/// FPGA bank, are one register access); all are safe to call from many threads and processes
/// at once.
pub struct Bank {
    name: BankName,
    store: Store,
    control: Option<Box<dyn Control>>,
    info: BankInfo,
    backend: BackendKind,
}

/// Where a bank's slots are.
enum Store {
    Mapped(BankMemory),
    Device(Box<dyn DeviceSlots>),
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank").field("info", &self.info).field("backend", &self.backend).finish()
    }
}

impl Bank {
    /// Creates bank `name` on the selected backend (see [`backend::select`]).
    pub fn create(name: &str, opts: CreateOptions) -> Result<Bank> {
        Bank::create_on(backend::select()?.backend.as_ref(), name, opts)
    }

    /// Opens bank `name` read-write, or read-only when only reading is permitted.
    pub fn open(name: &str) -> Result<Bank> {
        Bank::open_on(backend::select()?.backend.as_ref(), name)
    }

    /// Opens bank `name` with exactly `access`.
    pub fn open_with(name: &str, access: Access) -> Result<Bank> {
        Bank::open_with_on(backend::select()?.backend.as_ref(), name, access)
    }

    /// Destroys bank `name`.
    pub fn destroy(name: &str) -> Result<()> {
        backend::select()?.backend.destroy(&BankName::new(name)?)
    }

    /// Describes every bank on the selected backend.
    pub fn list() -> Result<Vec<Result<BankInfo>>> {
        backend::select()?.backend.list()
    }

    /// A private bank that no other process can open by name and that leaves nothing
    /// behind when this process ends, even by SIGKILL: an unnamed memory file
    /// ([`soft::create_unnamed`](crate::backend::soft::create_unnamed)). `name` appears
    /// only in errors and [`Bank::info`].
    pub fn create_unnamed(name: &str, opts: CreateOptions) -> Result<Bank> {
        let name = BankName::new(name)?;
        let opened = crate::backend::soft::create_unnamed(&name, &opts)?;
        Ok(Bank::from_opened(name, opened, BackendKind::Soft))
    }

    /// [`Bank::create`] on a given backend.
    pub fn create_on(backend: &dyn Backend, name: &str, opts: CreateOptions) -> Result<Bank> {
        let name = BankName::new(name)?;
        let opened = backend.create_slots(&name, &opts)?;
        Ok(Bank::from_slots(name, opened, backend.kind()))
    }

    /// [`Bank::open`] on a given backend.
    pub fn open_on(backend: &dyn Backend, name: &str) -> Result<Bank> {
        match Bank::open_with_on(backend, name, Access::ReadWrite) {
            Err(Error::PermissionDenied { .. }) => Bank::open_with_on(backend, name, Access::ReadOnly),
            other => other,
        }
    }

    /// [`Bank::open_with`] on a given backend.
    pub fn open_with_on(backend: &dyn Backend, name: &str, access: Access) -> Result<Bank> {
        let name = BankName::new(name)?;
        let opened = backend.open_slots(&name, access)?;
        Ok(Bank::from_slots(name, opened, backend.kind()))
    }

    fn from_opened(name: BankName, opened: Opened, backend: BackendKind) -> Bank {
        Bank {
            name,
            store: Store::Mapped(opened.memory),
            control: opened.control,
            info: opened.info,
            backend,
        }
    }

    fn from_slots(name: BankName, opened: OpenedSlots, backend: BackendKind) -> Bank {
        match opened {
            OpenedSlots::Mapped(o) => Bank::from_opened(name, o, backend),
            OpenedSlots::Device { slots, info } => {
                Bank { name, store: Store::Device(slots), control: None, info, backend }
            }
        }
    }

    /// The bank's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Slot count.
    pub fn slots(&self) -> u64 {
        match &self.store {
            Store::Mapped(m) => m.slots(),
            Store::Device(d) => d.slots(),
        }
    }

    /// The operator.
    pub fn op(&self) -> Op {
        match &self.store {
            Store::Mapped(m) => m.op(),
            Store::Device(d) => d.op(),
        }
    }

    /// Which backend serves it.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// Description as of opening.
    pub fn info(&self) -> &BankInfo {
        &self.info
    }

    /// Whether LOAD/ACCUM/SWAP are allowed.
    pub fn writable(&self) -> bool {
        match &self.store {
            Store::Mapped(m) => m.writable(),
            Store::Device(d) => d.writable(),
        }
    }

    /// The mapped shared layout, for code that works on it directly.
    ///
    /// # Panics
    /// On a bank whose slots are on an FPGA ([`Bank::mapped`] is `None`): replication, writer
    /// shards and the other mapping-level features need a mapped bank.
    pub fn memory(&self) -> &BankMemory {
        self.mapped().unwrap_or_else(|| panic!("bank {:?} is on an FPGA, not a mapping", self.name.as_str()))
    }

    /// The mapped shared layout, or `None` for a bank on an FPGA.
    pub fn mapped(&self) -> Option<&BankMemory> {
        match &self.store {
            Store::Mapped(m) => Some(m),
            Store::Device(_) => None,
        }
    }

    fn check(&self, slot: u64) -> Result<()> {
        if slot < self.slots() {
            Ok(())
        } else {
            Err(Error::SlotOutOfRange { bank: self.name.to_string(), slot, slots: self.slots() })
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable() {
            Ok(())
        } else {
            Err(Error::ReadOnly { name: self.name.to_string() })
        }
    }

    /// LOAD and SWAP would discard or move replicated state: refused on a bound bank.
    fn check_unreplicated(&self, op: &'static str) -> Result<()> {
        match self.mapped() {
            Some(m) if m.incarnation() != 0 => {
                Err(Error::Replicated { name: self.name.to_string(), op, origin: m.origin() })
            }
            _ => Ok(()),
        }
    }

    fn check_all<'a>(&self, slots: impl IntoIterator<Item = &'a u64>) -> Result<()> {
        slots.into_iter().try_for_each(|&s| self.check(s))
    }

    /// LOAD: reference = `v`, accumulator = identity.
    pub fn load(&self, slot: u64, v: u64) -> Result<()> {
        self.check(slot)?;
        self.check_writable()?;
        self.check_unreplicated("LOAD")?;
        match (&self.store, &self.control) {
            (Store::Device(d), _) => d.load(slot, v),
            (_, Some(c)) => c.load(slot, v),
            (Store::Mapped(m), None) => {
                m.load(slot, v);
                Ok(())
            }
        }
    }

    /// ACCUM: accumulator ∘= `d`. Lock-free.
    #[inline]
    pub fn accum(&self, slot: u64, d: u64) -> Result<()> {
        self.check(slot)?;
        self.check_writable()?;
        match &self.store {
            Store::Mapped(m) => {
                m.accum(slot, d);
                Ok(())
            }
            Store::Device(dev) => dev.accum(slot, d),
        }
    }

    /// ACCUM of `d`'s inverse: cancels an earlier `accum(slot, d)`.
    pub fn undo(&self, slot: u64, d: u64) -> Result<()> {
        self.accum(slot, self.op().inverse(d))
    }

    /// READ: reference ∘ accumulator.
    #[inline]
    pub fn read(&self, slot: u64) -> Result<u64> {
        self.check(slot)?;
        match &self.store {
            Store::Mapped(m) => Ok(m.read(slot)),
            Store::Device(d) => {
                let mut v = [0];
                d.read_range(slot, &mut v)?;
                Ok(v[0])
            }
        }
    }

    /// True when the accumulator is the identity.
    pub fn is_clean(&self, slot: u64) -> Result<bool> {
        self.check(slot)?;
        match &self.store {
            Store::Mapped(m) => Ok(m.is_clean(slot)),
            Store::Device(d) => d.is_clean(slot),
        }
    }

    /// SWAP: returns the current state and makes it the reference.
    pub fn swap(&self, slot: u64) -> Result<u64> {
        self.check(slot)?;
        self.check_writable()?;
        self.check_unreplicated("SWAP")?;
        match (&self.store, &self.control) {
            (Store::Device(d), _) => d.swap(slot),
            (_, Some(c)) => c.swap(slot),
            (Store::Mapped(m), None) => Ok(m.swap(slot)),
        }
    }

    /// SWAP_SET: returns the current state and makes `reference` the reference, the
    /// accumulator the identity, in one step: every concurrent ACCUM lands exactly once, in
    /// the returned state or in the new accumulator.
    pub fn swap_set(&self, slot: u64, reference: u64) -> Result<u64> {
        self.check(slot)?;
        self.check_writable()?;
        self.check_unreplicated("SWAP_SET")?;
        match (&self.store, &self.control) {
            (Store::Device(d), _) => d.swap_set(slot, reference),
            (_, Some(c)) => c.swap_set(slot, reference),
            (Store::Mapped(m), None) => Ok(m.swap_set(slot, reference)),
        }
    }

    /// ACCUMs every `(slot, delta)`; all slots are checked first, so a bad one changes nothing.
    pub fn accum_batch(&self, ops: &[(u64, u64)]) -> Result<()> {
        self.check_all(ops.iter().map(|(s, _)| s))?;
        self.check_writable()?;
        match &self.store {
            Store::Mapped(m) => {
                for &(s, d) in ops {
                    m.accum(s, d);
                }
                Ok(())
            }
            Store::Device(dev) => ops.iter().try_for_each(|&(s, d)| dev.accum(s, d)),
        }
    }

    /// LOADs every `(slot, value)`; all slots are checked first.
    pub fn load_batch(&self, ops: &[(u64, u64)]) -> Result<()> {
        self.check_all(ops.iter().map(|(s, _)| s))?;
        self.check_writable()?;
        self.check_unreplicated("LOAD")?;
        ops.iter().try_for_each(|&(s, v)| self.load(s, v))
    }

    /// ACCUMs `deltas[i]` into slot `start + i`, with atomic read-modify-writes.
    pub fn accum_dense(&self, start: u64, deltas: &[u64]) -> Result<()> {
        self.check_range(start, deltas.len())?;
        self.check_writable()?;
        match &self.store {
            Store::Mapped(m) => {
                for (i, &d) in deltas.iter().enumerate() {
                    m.accum(start + i as u64, d);
                }
                Ok(())
            }
            Store::Device(_) if deltas.is_empty() => Ok(()),
            Store::Device(dev) => dev.accum_dense(start, deltas),
        }
    }

    fn check_range(&self, start: u64, len: usize) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let last = start.saturating_add(len as u64 - 1);
        self.check(start)?;
        self.check(last)
    }

    /// READs slots `start..start + out.len()` into `out`.
    pub fn read_range(&self, start: u64, out: &mut [u64]) -> Result<()> {
        self.check_range(start, out.len())?;
        match &self.store {
            Store::Mapped(m) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = m.read(start + i as u64);
                }
                Ok(())
            }
            Store::Device(_) if out.is_empty() => Ok(()),
            Store::Device(d) => d.read_range(start, out),
        }
    }

    /// READs every slot.
    ///
    /// # Panics
    /// When the FPGA of a bank on one fails to answer; [`Bank::try_read_all`] returns the error.
    pub fn read_all(&self) -> Vec<u64> {
        self.try_read_all().unwrap_or_else(|e| panic!("{e}"))
    }

    /// READs every slot; fails only for a bank on an FPGA that does not answer.
    pub fn try_read_all(&self) -> Result<Vec<u64>> {
        let mut out = vec![0; self.slots() as usize];
        self.read_range(0, &mut out)?;
        Ok(out)
    }

    /// SWAPs every slot, returning the states.
    pub fn swap_all(&self) -> Result<Vec<u64>> {
        self.check_writable()?;
        self.check_unreplicated("SWAP")?;
        (0..self.slots()).map(|i| self.swap(i)).collect()
    }

    /// Leases a writer-private shard for dense batches (banks created with shards only).
    pub fn shard_writer(&self) -> Result<ShardWriter<'_>> {
        self.check_writable()?;
        match &self.store {
            Store::Mapped(m) => ShardWriter::lease(m, self.name.as_str()),
            Store::Device(_) => Err(Error::NoFreeShard { name: self.name.to_string(), shards: 0 }),
        }
    }
}
