//! Banks of `/dev/atomik` whose slots are on the FPGA (`BANK_OPEN_FPGA`). They are not memory,
//! so every operation but ACCUM is an ioctl of the bank's fd (the module serialises SWAP_SET's
//! two register accesses); ACCUM is one 64-bit store into the bank's uncached part of the
//! device's ACCUM window, mapped from the same fd: one posted write per op, no system call.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use memmap2::{MmapOptions, MmapRaw};

use super::{ioctl_error, sys};
use crate::abi;
use crate::backend::DeviceSlots;
use crate::error::{Error, Result};
use crate::Op;

/// One opened FPGA bank of the module.
pub(super) struct FpgaSlots {
    dev: File,
    name: String,
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
        Ok(FpgaSlots { dev, name: name.to_owned(), slots: req.slots, op, writable, window })
    }

    fn slot_op(&self, ioctl: SlotIoctl, slot: u64, value: u64) -> Result<u64> {
        let mut op = abi::SlotOp { slot, value };
        let fd = self.dev.as_raw_fd();
        // SAFETY: `op` is a valid, writable SlotOp that outlives the call; the fd is attached
        // to the bank and open.
        let r = unsafe {
            match ioctl {
                SlotIoctl::Load => sys::load(fd, &op),
                SlotIoctl::Read => sys::read(fd, &mut op),
                SlotIoctl::Swap => sys::swap(fd, &mut op),
                SlotIoctl::SwapSet => sys::swap_set(fd, &mut op),
                SlotIoctl::IsClean => sys::is_clean(fd, &mut op),
            }
        };
        r.map_err(|e| ioctl_error(ioctl.name(), &self.name, e))?;
        Ok(op.value)
    }
}

/// The slot ioctls an FPGA bank is served by.
#[derive(Clone, Copy)]
enum SlotIoctl {
    Load,
    Read,
    Swap,
    SwapSet,
    IsClean,
}

impl SlotIoctl {
    fn name(self) -> &'static str {
        match self {
            SlotIoctl::Load => "LOAD",
            SlotIoctl::Read => "READ",
            SlotIoctl::Swap => "SWAP",
            SlotIoctl::SwapSet => "SWAP_SET",
            SlotIoctl::IsClean => "IS_CLEAN",
        }
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
        let Some(w) = &self.window else { return Err(Error::ReadOnly { name: self.name.clone() }) };
        let end = start.checked_add(deltas.len() as u64).filter(|&e| e <= self.slots);
        if end.is_none() {
            return Err(Error::SlotOutOfRange { bank: self.name.clone(), slot: start, slots: self.slots });
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
        self.slot_op(SlotIoctl::Load, slot, v).map(|_| ())
    }
    fn read_range(&self, start: u64, out: &mut [u64]) -> Result<()> {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.slot_op(SlotIoctl::Read, start + i as u64, 0)?;
        }
        Ok(())
    }
    fn is_clean(&self, slot: u64) -> Result<bool> {
        Ok(self.slot_op(SlotIoctl::IsClean, slot, 0)? == 1)
    }
    fn swap(&self, slot: u64) -> Result<u64> {
        self.slot_op(SlotIoctl::Swap, slot, 0)
    }
    fn swap_set(&self, slot: u64, reference: u64) -> Result<u64> {
        self.slot_op(SlotIoctl::SwapSet, slot, reference)
    }
}
