//! Banks of `/dev/atomik` whose slots are on the FPGA (`BANK_OPEN_FPGA`). They are not memory,
//! so every operation but ACCUM is an ioctl of the bank's fd (the module serialises SWAP_SET's
//! two register accesses); ACCUM is one 64-bit store into the bank's uncached part of the
//! device's ACCUM window, mapped from the same fd: one posted write per op, no system call.

use std::fs::File;
use std::path::Path;

use memmap2::{MmapOptions, MmapRaw};

use super::{slot_ioctl, DeviceControl, SlotIoctl};
use crate::abi;
use crate::backend::{Control, DeviceSlots};
use crate::error::{Error, Result};
use crate::Op;

/// One opened FPGA bank of the module.
pub(super) struct FpgaSlots {
    /// The bank's fd: LOAD, SWAP and SWAP_SET as for memory banks.
    control: DeviceControl,
    slots: u64,
    op: Op,
    writable: bool,
    /// The bank's part of the ACCUM window (write-only), for a writable handle.
    window: Option<MmapRaw>,
}

impl FpgaSlots {
    /// Wraps `dev`, attached to bank `name` by BANK_OPEN (whose reply is `req`); maps the
    /// ACCUM window when writable.
    pub(super) fn new(dev: File, name: &str, req: &abi::BankOpen, location: &Path) -> Result<FpgaSlots> {
        let corrupt = |reason: String| Error::Corrupt { path: location.to_owned(), reason };
        let op = Op::from_code(req.op).ok_or_else(|| corrupt(format!("unknown operator code {}", req.op)))?;
        let writable = req.access & abi::ACCESS_WRITE != 0;
        let window = if writable {
            let len = usize::try_from(req.map_size)
                .ok()
                .filter(|&l| req.slots.checked_mul(8).is_some_and(|need| l as u64 >= need))
                .ok_or_else(|| {
                    corrupt(format!("ACCUM window of {} bytes for {} slots", req.map_size, req.slots))
                })?;
            Some(MmapOptions::new().len(len).map_raw(&dev).map_err(|e| Error::io("mmap", location, e))?)
        } else {
            None
        };
        let control = DeviceControl { dev, name: name.to_owned() };
        Ok(FpgaSlots { control, slots: req.slots, op, writable, window })
    }

    fn slot_op(&self, ioctl: SlotIoctl, slot: u64) -> Result<u64> {
        slot_ioctl(&self.control.dev, &self.control.name, ioctl, slot, 0)
    }
}

impl DeviceSlots for FpgaSlots {
    fn slots(&self) -> u64 {
        self.slots
    }
    fn op(&self) -> Op {
        self.op
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn accum(&self, slot: u64, d: u64) -> Result<()> {
        self.accum_dense(slot, &[d])
    }
    fn accum_dense(&self, start: u64, deltas: &[u64]) -> Result<()> {
        let Some(w) = &self.window else { return Err(Error::ReadOnly { name: self.control.name.clone() }) };
        let end = start.checked_add(deltas.len() as u64).filter(|&e| e <= self.slots);
        if end.is_none() {
            return Err(Error::SlotOutOfRange {
                bank: self.control.name.clone(),
                slot: start,
                slots: self.slots,
            });
        }
        for (i, &d) in deltas.iter().enumerate() {
            // SAFETY: slot start + i < self.slots, and the mapping holds at least 8 bytes per
            // slot (checked in new), 8-aligned (page-aligned mapping): one volatile 64-bit
            // store, one posted write into the device's ACCUM window.
            unsafe { std::ptr::write_volatile((w.as_mut_ptr() as *mut u64).add(start as usize + i), d) };
        }
        Ok(())
    }
    fn load(&self, slot: u64, v: u64) -> Result<()> {
        self.control.load(slot, v)
    }
    fn read_range(&self, start: u64, out: &mut [u64]) -> Result<()> {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.slot_op(SlotIoctl::Read, start + i as u64)?;
        }
        Ok(())
    }
    fn is_clean(&self, slot: u64) -> Result<bool> {
        Ok(self.slot_op(SlotIoctl::IsClean, slot)? == 1)
    }
    fn swap(&self, slot: u64) -> Result<u64> {
        self.control.swap(slot)
    }
    fn swap_set(&self, slot: u64, reference: u64) -> Result<u64> {
        self.control.swap_set(slot, reference)
    }
}
