//! The register-level driver: one implementation of every operation over any [`Mmio`],
//! with the addresses and fields of hw/regs/atomik.rdl ([`regs`]).

use std::path::Path;
use std::sync::Mutex;

use super::mmio::Mmio;
use super::regs;
use crate::error::{Error, Result};
use crate::Op;

/// A probed atomik device.
pub struct FpgaDevice {
    mmio: Box<dyn Mmio>,
    slots: u64,
    lanes: u64,
    version: (u64, u64),
    /// FEATURES.BURST: the windows take bursts, so ACCUMs may be write-combined.
    burst: bool,
    /// SWAP_SET stages its reference in one device register: the write-then-read pair is
    /// serialised (within this process; the kernel path serialises across processes).
    swap_set: Mutex<()>,
}

impl std::fmt::Debug for FpgaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpgaDevice")
            .field("location", &self.mmio.location())
            .field("slots", &self.slots)
            .field("lanes", &self.lanes)
            .finish()
    }
}

fn field(value: u64, mask: u64, lsb: u32) -> u64 {
    (value & mask) >> lsb
}

/// The FEATURES bits this driver needs ([`regs::FEATURES_NEEDED`]) that `features` lacks, each
/// as "NAME (description)" from the generated [`regs::FEATURE_BITS`].
pub fn missing_features(features: u64) -> Vec<String> {
    regs::FEATURE_BITS
        .iter()
        .filter(|f| f.needed && features >> f.bit & 1 == 0)
        .map(|f| format!("{} ({})", f.name, f.desc.trim_end_matches('.')))
        .collect()
}

impl FpgaDevice {
    /// Binds to the device behind `mmio` when its ID register says atomik, its major version
    /// is known and its geometry fits the register map; otherwise an error saying which.
    pub fn probe(mmio: Box<dyn Mmio>) -> Result<FpgaDevice> {
        let loc = mmio.location().display().to_string();
        let bad = |reason: String| Error::BackendUnavailable {
            backend: "fpga",
            reason: format!("{loc}: {reason}"),
        };
        let id = mmio.read64(regs::ID)?;
        let magic = field(id, regs::ID_MAGIC_MASK, regs::ID_MAGIC_LSB);
        if magic != regs::ID_MAGIC_RESET {
            return Err(bad(format!(
                "ID register reads {id:#018x}, not an atomik device (magic {:#x})",
                regs::ID_MAGIC_RESET
            )));
        }
        let v = mmio.read64(regs::VERSION)?;
        let version = (
            field(v, regs::VERSION_MAJOR_MASK, regs::VERSION_MAJOR_LSB),
            field(v, regs::VERSION_MINOR_MASK, regs::VERSION_MINOR_LSB),
        );
        if version.0 != regs::VERSION_MAJOR_RESET {
            return Err(bad(format!(
                "register map version {}.{}, this driver knows {}.x",
                version.0,
                version.1,
                regs::VERSION_MAJOR_RESET
            )));
        }
        let g = mmio.read64(regs::GEOMETRY)?;
        let slots = field(g, regs::GEOMETRY_SLOTS_MASK, regs::GEOMETRY_SLOTS_LSB);
        let lanes = field(g, regs::GEOMETRY_LANES_MASK, regs::GEOMETRY_LANES_LSB);
        if slots == 0 || slots > regs::ACCUM_ENTRIES || lanes == 0 {
            return Err(bad(format!("geometry {slots} slots x {lanes} lanes is outside the register map")));
        }
        let features = mmio.read64(regs::FEATURES)?;
        let missing = missing_features(features);
        if !missing.is_empty() {
            return Err(bad(format!("FEATURES reads {features:#x}, without {}", missing.join(", "))));
        }
        let burst = features & regs::FEATURES_BURST_MASK != 0;
        Ok(FpgaDevice { mmio, slots, lanes, version, burst, swap_set: Mutex::new(()) })
    }

    /// Where the device is.
    pub fn location(&self) -> &Path {
        self.mmio.location()
    }

    /// Slots on the device.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// Lanes (slots handled per cycle).
    pub fn lanes(&self) -> u64 {
        self.lanes
    }

    /// Register map version (major, minor).
    pub fn version(&self) -> (u64, u64) {
        self.version
    }

    /// ACCUM: one posted write into the ACCUM window.
    pub fn accum(&self, slot: u64, d: u64) -> Result<()> {
        self.mmio.write64(regs::ACCUM_BASE + 8 * slot, d)
    }

    /// ACCUMs `deltas[i]` into `start + i`: a burst, write-combined where the path allows
    /// (ACCUMs commute, so merging and reordering them is harmless) and the device takes
    /// bursts (FEATURES.BURST); one write per ACCUM otherwise.
    pub fn accum_dense(&self, start: u64, deltas: &[u64]) -> Result<()> {
        if self.burst {
            self.mmio.write_words_combining(regs::ACCUM_BASE + 8 * start, deltas)
        } else {
            self.mmio.write_words(regs::ACCUM_BASE + 8 * start, deltas)
        }
    }

    /// LOADs consecutive slots with operator `op`: reference = v, accumulator = identity.
    pub fn load(&self, start: u64, values: &[u64], op: Op) -> Result<()> {
        let base = match op {
            Op::Xor => regs::LOAD_XOR_BASE,
            Op::Add => regs::LOAD_ADD_BASE,
        };
        self.mmio.write_words(base + 8 * start, values)
    }

    /// READs consecutive slots.
    pub fn read(&self, start: u64, out: &mut [u64]) -> Result<()> {
        self.mmio.read_words(regs::READ_BASE + 8 * start, out)
    }

    /// SWAP: one read of the SWAP window.
    pub fn swap(&self, slot: u64) -> Result<u64> {
        self.mmio.read64(regs::SWAP_BASE + 8 * slot)
    }

    /// SWAP_SET: stage `reference`, then one read of the SWAP_SET window.
    pub fn swap_set(&self, slot: u64, reference: u64) -> Result<u64> {
        let _g = self.swap_set.lock().unwrap_or_else(|p| p.into_inner());
        self.mmio.write64(regs::SWAP_SET_BASE, reference)?;
        self.mmio.read64(regs::SWAP_SET_BASE + 8 * slot)
    }

    /// Whether slot's accumulator is the identity (the IDENT bitmap).
    pub fn is_clean(&self, slot: u64) -> Result<bool> {
        let word = self.mmio.read64(regs::IDENT_BASE + 8 * (slot / 64))?;
        Ok(word >> (slot % 64) & 1 == 1)
    }

    /// Window accesses the device refused since reset or CLEAR.
    pub fn errors(&self) -> Result<u64> {
        self.mmio.read64(regs::ERRORS)
    }

    /// ACCUMs applied since reset or CLEAR.
    pub fn accums(&self) -> Result<u64> {
        self.mmio.read64(regs::ACCUMS)
    }
}
