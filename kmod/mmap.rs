// SPDX-License-Identifier: GPL-2.0
//! mmap of the attached bank's pages into the caller, as they are (no copy).

use crate::{abi, device::Attachment};
use kernel::{mm::virt::VmaNew, prelude::*};

/// Maps pages `[pgoff, pgoff + len)` of the bank. EINVAL past the bank's end or for a writable
/// private mapping (writes would go to copies, not the bank); EACCES without read access (any
/// mapping can be read, as with System V `shmat`), or for a writable mapping without write
/// access. Read-only mappings also lose the right to mprotect to writable.
pub(crate) fn map_bank(att: &Attachment, vma: &VmaNew) -> Result {
    let bank = &att.bank;
    let len = (vma.end() - vma.start()) as u64;
    // SAFETY: the vma is being set up by mmap and is valid for this call; vm_pgoff is a plain
    // field nobody else writes now.
    let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff } as u64;
    let first = pgoff.checked_mul(abi::PAGE_SIZE).ok_or(EINVAL)?;
    let end = first.checked_add(len).ok_or(EINVAL)?;
    if len == 0 || end > bank.bytes() {
        return Err(EINVAL);
    }
    let shared = vma.flags() & kernel::mm::virt::flags::SHARED != 0;
    if att.access & abi::ACCESS_READ == 0 {
        return Err(EACCES);
    }
    if att.access & abi::ACCESS_WRITE == 0 && vma.writable() {
        return Err(EACCES);
    }
    if !shared && vma.writable() {
        // Writes to a private mapping would land in copies, not in the bank.
        return Err(EINVAL);
    }
    if let Some(f) = bank.on_fpga() {
        return map_fpga(att, f, vma, first, len);
    }
    if att.access & abi::ACCESS_WRITE == 0 || !shared {
        // Read-only for good: no mprotect() upgrade, no private copies. (A MAP_SHARED mapping
        // of an fd opened O_RDONLY arrives here without VM_SHARED, as the kernel clears it.)
        vma.try_clear_maywrite()?;
    }
    vma.try_clear_mayexec().map_err(|_| EACCES)?;
    vma.set_dontexpand();
    let mixed = vma.set_mixedmap();
    let first_page = (first / abi::PAGE_SIZE) as usize;
    let count = (len / abi::PAGE_SIZE) as usize;
    for (k, page) in bank.pages()[first_page..first_page + count].iter().enumerate() {
        mixed.vm_insert_page(vma.start() + k * kernel::page::PAGE_SIZE, page)?;
    }
    bank.stats.count_mmap();
    Ok(())
}

/// Maps bytes `[first, first + len)` of an FPGA bank's part of the ACCUM window (checked by
/// the caller against [`crate::bank::Bank::bytes`]), uncached: each 64-bit store is one
/// ACCUM. Only a writable shared mapping makes sense (the window is write-only: reads of it are
/// refused by the device and read as its error value): EACCES without write access, EINVAL
/// when private. ENODEV once the device is gone; unbinding it takes the mapping down (SIGBUS on
/// the next store, see io_map.c).
fn map_fpga(att: &Attachment, f: &crate::bank::FpgaSlotsRef, vma: &VmaNew, first: u64, len: u64) -> Result {
    if att.access & abi::ACCESS_WRITE == 0 {
        return Err(EACCES);
    }
    if vma.flags() & kernel::mm::virt::flags::SHARED == 0 {
        return Err(EINVAL);
    }
    if !f.present() {
        return Err(ENODEV);
    }
    vma.try_clear_mayexec().map_err(|_| EACCES)?;
    f.map_window(vma, first, len)?;
    att.bank.stats.count_mmap();
    Ok(())
}
