// SPDX-License-Identifier: GPL-2.0
//! The atomik FPGA on PCI: a `kernel::pci::Driver` for the vendor/device ID of
//! hw/regs/atomik.rdl, and the device's slots as the storage of banks created with
//! `BANK_CREATE_FPGA`.
//!
//! Every offset and field comes from the constants generated from the RDL
//! (`libatomik/src/backend/fpga/regs.rs`, compiled here as is). Nothing read from the device is
//! trusted: the probe binds only when the ID register carries our magic and IDs, the major
//! version is known, the geometry fits the register map and every window the module uses is
//! advertised; afterwards a slot index is always checked against the bank's range before it
//! becomes a register offset, so a device that changes its mind can return wrong values but
//! cannot make the module access outside BAR 0. When the device goes away (unbind, removal),
//! the BAR mapping is revoked (`Devres`), ops on its banks fail with ENODEV, and processes'
//! mappings of its window are taken down ([`IoWindow::revoke`]).
//!
//! Device slots are handed out in runs of [`GRANULE`] slots (one page of each window), so that
//! mapping a bank's pages of the ACCUM window into a process never reaches another bank's
//! slots.

use crate::{abi, regs};
use kernel::{
    device::Core,
    io::Io,
    new_mutex, pci,
    prelude::*,
    sync::{Arc, Mutex},
};

/// BAR 0 covers the whole register map.
const BAR_SIZE: usize = regs::SIZE as usize;

/// Slots per page of a window: banks are allocated in whole pages.
pub(crate) const GRANULE: u64 = abi::PAGE_SIZE / 8;

type Bar0 = pci::DevresBar<BAR_SIZE>;

extern "C" {
    // The vma is only passed through to C (io_map.c); bindgen's opaque type for one of its
    // fields makes rustc doubt the pointee, not the pointer.
    #[allow(improper_ctypes)]
    fn atomik_io_map(
        vma: *mut kernel::bindings::vm_area_struct,
        w: *mut core::ffi::c_void,
        first_page: core::ffi::c_ulong,
        len: core::ffi::c_ulong,
    ) -> core::ffi::c_int;
    fn atomik_io_window_new(bar: u64, len: core::ffi::c_ulong) -> *mut core::ffi::c_void;
    fn atomik_io_window_revoke(w: *mut core::ffi::c_void);
    fn atomik_io_window_put(w: *mut core::ffi::c_void);
}

/// The device's BAR 0 as processes map it (io_map.c): pages faulted in while the device is
/// bound, every mapping taken down by [`IoWindow::revoke`] on unbind.
pub(crate) struct IoWindow(core::ptr::NonNull<core::ffi::c_void>);

// SAFETY: the C object is reference-counted and locks its own state; any thread may use it.
unsafe impl Send for IoWindow {}
// SAFETY: as above.
unsafe impl Sync for IoWindow {}

impl IoWindow {
    fn new(bar: u64, len: u64) -> Result<IoWindow> {
        let len = core::ffi::c_ulong::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: allocates a fresh object (or returns NULL); no preconditions.
        let p = unsafe { atomik_io_window_new(bar, len) };
        core::ptr::NonNull::new(p).map(IoWindow).ok_or(ENOMEM)
    }

    /// Takes every process mapping of the window down; later faults get SIGBUS, later mmaps
    /// ENODEV.
    fn revoke(&self) {
        // SAFETY: the object is alive while we hold our reference.
        unsafe { atomik_io_window_revoke(self.0.as_ptr()) }
    }
}

impl Drop for IoWindow {
    fn drop(&mut self) {
        // SAFETY: drops our reference; mappings keep their own.
        unsafe { atomik_io_window_put(self.0.as_ptr()) }
    }
}

/// A bound device.
#[pin_data]
pub(crate) struct Fpga {
    bar: Bar0,
    /// BAR 0 as processes map it (the ACCUM window of their banks).
    window: IoWindow,
    /// Slots of the device (GEOMETRY, checked against the windows' size).
    pub(crate) slots: u64,
    /// Runs of slots in use, `(first, count)`, unordered.
    #[pin]
    used: Mutex<KVec<(u64, u64)>>,
    /// SWAP_SET stages the new reference in one device register: one SWAP_SET at a time.
    #[pin]
    swap_set: Mutex<()>,
}

fn field(word: u64, mask: u64, lsb: u32) -> u64 {
    (word & mask) >> lsb
}

impl Fpga {
    fn io<R>(&self, f: impl FnOnce(&pci::Bar<'_, BAR_SIZE>) -> Result<R>) -> Result<R> {
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        f(&bar)
    }

    fn write(&self, offset: u64, value: u64) -> Result {
        self.io(|bar| bar.try_write64(value, offset as usize))
    }

    fn read(&self, offset: u64) -> Result<u64> {
        self.io(|bar| bar.try_read64(offset as usize))
    }

    /// Reserves `count` slots (rounded up to whole pages, clipped at the device's end),
    /// first fit. ENOSPC when no run is free.
    fn reserve(&self, count: u64) -> Result<Range> {
        let want = count.div_ceil(GRANULE).checked_mul(GRANULE).ok_or(ENOSPC)?;
        let mut used = self.used.lock();
        used.reserve(1, GFP_KERNEL)?;
        let mut first = 0;
        loop {
            if first >= self.slots || self.slots - first < count {
                return Err(ENOSPC);
            }
            let end = first.saturating_add(want).min(self.slots);
            match used.iter().find(|&&(f, n)| f < end && first < f + n) {
                // Runs start at multiples of GRANULE, so the next candidate is one too.
                Some(&(f, n)) => first = f + n,
                None => {
                    used.push_within_capacity((first, end - first)).map_err(|_| ENOMEM)?;
                    return Ok(Range { first, count, reserved: end - first });
                }
            }
        }
    }

    fn release(&self, first: u64) {
        let mut used = self.used.lock();
        if let Some(i) = used.iter().position(|&(f, _)| f == first) {
            let _ = used.remove(i);
        }
    }
}

/// The slots of one bank on the device: `count` from `first`, `reserved` of them held (whole
/// pages, clipped at the device's end).
#[derive(Clone, Copy)]
pub(crate) struct Range {
    pub(crate) first: u64,
    pub(crate) count: u64,
    reserved: u64,
}

/// A bank's storage on the device; returns its slots when dropped (with the bank).
pub(crate) struct FpgaSlots {
    dev: Arc<Fpga>,
    pub(crate) range: Range,
    op: u32,
}

impl FpgaSlots {
    /// Reserves `count` slots on the bound device and LOADs each with the identity and the
    /// bank's operator. ENODEV without a device, ENOSPC when it has no run that large, EINTR
    /// on a signal while loading.
    pub(crate) fn new(count: u64, op: u32) -> Result<FpgaSlots> {
        let dev = bound().ok_or(ENODEV)?;
        let range = dev.reserve(count)?;
        let me = FpgaSlots { dev, range, op };
        // The tail of the last page is the bank's too (mappable): clear it as well.
        for i in 0..range.reserved {
            me.load_raw(range.first + i, 0)?;
            if i % 512 == 511 && kernel::current!().signal_pending() {
                return Err(EINTR);
            }
        }
        Ok(me)
    }

    fn at(&self, base: u64, slot: u64) -> Result<u64> {
        if slot >= self.range.count {
            return Err(EINVAL);
        }
        Ok(base + 8 * (self.range.first + slot))
    }

    fn load_raw(&self, device_slot: u64, v: u64) -> Result {
        let base = if self.op == abi::OP_ADD { regs::LOAD_ADD_BASE } else { regs::LOAD_XOR_BASE };
        self.dev.write(base + 8 * device_slot, v)
    }

    /// One op of `kind` on slot `slot` of the bank (checked here against the bank's range).
    pub(crate) fn apply(&self, kind: u32, slot: u64, value: u64) -> Result<u64> {
        match kind {
            abi::KIND_LOAD => {
                self.at(0, slot)?;
                self.load_raw(self.range.first + slot, value).map(|()| value)
            }
            abi::KIND_ACCUM => self.dev.write(self.at(regs::ACCUM_BASE, slot)?, value).map(|()| value),
            abi::KIND_READ => self.dev.read(self.at(regs::READ_BASE, slot)?),
            abi::KIND_SWAP => self.dev.read(self.at(regs::SWAP_BASE, slot)?),
            abi::KIND_SWAP_SET => {
                let at = self.at(regs::SWAP_SET_BASE, slot)?;
                let _one = self.dev.swap_set.lock();
                self.dev.write(regs::SWAP_SET_BASE, value)?;
                self.dev.read(at)
            }
            _ => Err(EINVAL),
        }
    }

    /// Whether slot `slot`'s accumulator is the identity: its bit of the IDENT bitmap.
    pub(crate) fn is_clean(&self, slot: u64) -> Result<bool> {
        self.at(0, slot)?;
        let s = self.range.first + slot;
        Ok(self.dev.read(regs::IDENT_BASE + 8 * (s / 64))? >> (s % 64) & 1 == 1)
    }

    /// Bytes of the bank's part of the ACCUM window: what a process may map.
    pub(crate) fn map_bytes(&self) -> u64 {
        self.range.reserved.div_ceil(GRANULE) * abi::PAGE_SIZE
    }

    /// Sets up `vma` (being made by mmap) to map bytes `[first, first + len)` of the bank's
    /// pages of the ACCUM window (checked by the caller against [`Self::map_bytes`]).
    pub(crate) fn map_window(&self, vma: &kernel::mm::virt::VmaNew, first: u64, len: u64) -> Result {
        let byte = regs::ACCUM_BASE + 8 * self.range.first + first;
        let page = core::ffi::c_ulong::try_from(byte / abi::PAGE_SIZE).map_err(|_| EINVAL)?;
        let len = core::ffi::c_ulong::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: the vma is being set up by this mmap call and is valid for it; the window
        // lives as long as the device (`self.dev`); io_map.c checks the range against BAR 0
        // and refuses once the device is gone.
        kernel::error::to_result(unsafe { atomik_io_map(vma.as_ptr(), self.dev.window.0.as_ptr(), page, len) })
    }

    /// Whether the device this bank lives on is still bound (a mapping of an unbound BAR
    /// could reach whatever takes its address next).
    pub(crate) fn present(&self) -> bool {
        self.dev.bar.try_access().is_some()
    }
}

impl Drop for FpgaSlots {
    fn drop(&mut self) {
        self.dev.release(self.range.first);
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialised in module init (`init`) before the driver is registered.
    unsafe(uninit) static BOUND: Mutex<Option<Arc<Fpga>>> = None;
}

pub(crate) fn init() {
    // SAFETY: called once, from module init, before the driver is registered.
    unsafe { BOUND.init() };
}

/// The bound device, if any (the first one bound: one device per system for now).
pub(crate) fn bound() -> Option<Arc<Fpga>> {
    BOUND.lock().clone()
}

/// Driver data of a bound device: takes it out of [`BOUND`] on unbind.
pub(crate) struct Bound {
    dev: Arc<Fpga>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let mut b = BOUND.lock();
        if b.as_ref().is_some_and(|d| core::ptr::eq(&**d, &*self.dev)) {
            *b = None;
        }
        drop(b);
        // Banks on the device outlive it (their ops fail with ENODEV); processes' mappings of
        // its window must not, since the PCI core may give its BAR to another device.
        self.dev.window.revoke();
    }
}

pub(crate) struct AtomikPci;

// The kernel's `Vendor` has no constructor from a number outside its crate: the named constant
// must be the RDL's vendor (checked at compile time below).
const VENDOR: pci::Vendor = pci::Vendor::XILINX;
const _: () = assert!(VENDOR.as_raw() as u64 == regs::ID_PCI_VENDOR_RESET);

kernel::pci_device_table!(
    PCI_TABLE,
    <AtomikPci as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(VENDOR, regs::ID_PCI_DEVICE_RESET as u32), ())]
);

/// Checks the header registers; returns the slot count.
fn check_header(bar: &pci::Bar<'_, BAR_SIZE>) -> Result<u64> {
    // Runtime-checked accessors: the kernel's compile-time ones need the region's type to be
    // 8-aligned, and a BAR mapping is typed 4-aligned.
    let id = bar.try_read64(regs::ID as usize)?;
    let version = bar.try_read64(regs::VERSION as usize)?;
    let geometry = bar.try_read64(regs::GEOMETRY as usize)?;
    let features = bar.try_read64(regs::FEATURES as usize)?;
    if field(id, regs::ID_MAGIC_MASK, regs::ID_MAGIC_LSB) != regs::ID_MAGIC_RESET
        || field(id, regs::ID_PCI_VENDOR_MASK, regs::ID_PCI_VENDOR_LSB) != regs::ID_PCI_VENDOR_RESET
        || field(id, regs::ID_PCI_DEVICE_MASK, regs::ID_PCI_DEVICE_LSB) != regs::ID_PCI_DEVICE_RESET
    {
        pr_err!("atomik: PCI device has a foreign ID register {:#x}\n", id);
        return Err(ENODEV);
    }
    let major = field(version, regs::VERSION_MAJOR_MASK, regs::VERSION_MAJOR_LSB);
    if major != regs::VERSION_MAJOR_RESET {
        pr_err!("atomik: register map major version {} is not {}\n", major, regs::VERSION_MAJOR_RESET);
        return Err(ENODEV);
    }
    let slots = field(geometry, regs::GEOMETRY_SLOTS_MASK, regs::GEOMETRY_SLOTS_LSB);
    let shift = field(geometry, regs::GEOMETRY_WINDOW_SHIFT_MASK, regs::GEOMETRY_WINDOW_SHIFT_LSB);
    if slots == 0 || slots > regs::ACCUM_ENTRIES || shift != regs::GEOMETRY_WINDOW_SHIFT_RESET {
        pr_err!("atomik: PCI device geometry {:#x} does not fit the register map\n", geometry);
        return Err(ENODEV);
    }
    // The bits a driver needs are marked in the RDL (`driver_needs`); the generator lists them.
    if features & regs::FEATURES_NEEDED != regs::FEATURES_NEEDED {
        for f in regs::FEATURE_BITS.iter().filter(|f| f.needed && features & (1 << f.bit) == 0) {
            pr_err!("atomik: PCI device lacks feature {} ({})\n", f.name, f.desc);
        }
        return Err(ENODEV);
    }
    Ok(slots)
}

impl pci::Driver for AtomikPci {
    type IdInfo = ();
    type Data<'bound> = Bound;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        if pdev.resource_len(0)? < regs::SIZE {
            dev_err!(pdev, "atomik: BAR 0 is smaller than the register map\n");
            return Err(ENODEV);
        }
        pdev.enable_device_mem()?;
        let bar = pdev.iomap_region_sized::<BAR_SIZE>(0, c"atomik")?;
        let slots = check_header(&bar)?;
        let window = IoWindow::new(pdev.resource_start(0)?, regs::SIZE)?;
        let dev = Arc::pin_init(
            try_pin_init!(Fpga {
                bar: bar.into_devres()?,
                window,
                slots,
                used <- new_mutex!(KVec::new()),
                swap_set <- new_mutex!(()),
            }),
            GFP_KERNEL,
        )?;
        let mut b = BOUND.lock();
        if b.is_some() {
            dev_err!(pdev, "atomik: another atomik device is bound already; only one is served\n");
            return Err(EBUSY);
        }
        *b = Some(dev.clone());
        drop(b);
        dev_info!(pdev, "atomik: FPGA bound, {} slots\n", slots);
        Ok(Bound { dev })
    }
}
