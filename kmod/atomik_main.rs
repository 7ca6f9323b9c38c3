// SPDX-License-Identifier: GPL-2.0
//! `/dev/atomik`: named banks of delta-state slots, shared between processes through ioctls and
//! mmap, with the same layout and concurrency protocol as libatomik's userspace default.
//!
//! The ABI (ioctl numbers, request structs, bank layout) is `libatomik/src/abi.rs`, compiled
//! here as is so that the module and the library cannot disagree.

use kernel::prelude::*;

// The shared file is written for a library (pub items, docs); here it is crate-private.
#[allow(unreachable_pub)]
#[path = "../libatomik/src/abi.rs"]
mod abi;
// The page fingerprint, shared with libatomik's userspace engine the same way.
#[allow(unreachable_pub)]
#[path = "../libatomik/src/fp_core.rs"]
mod fp_core;
// The original ATOMiK SDK's ioctls (type 'A'), served by sdk_compat.rs.
#[allow(unreachable_pub)]
#[path = "../libatomik/src/sdk_abi.rs"]
mod sdk_abi;
// The FPGA's register map, generated from hw/regs/atomik.rdl for libatomik, shared the same way.
#[cfg(CONFIG_PCI)]
#[allow(dead_code, unreachable_pub)]
#[path = "../libatomik/src/backend/fpga/regs.rs"]
mod regs;
#[cfg(CONFIG_PCI)]
mod pci;
mod uapi;
mod access;
mod bank;
mod batch;
mod device;
mod ioctl;
mod ipc_ns;
mod limits;
mod mmap;
mod region;
mod region_cow;
mod address_space;
mod registry;
mod sdk_compat;
mod stats;

module! {
    type: AtomikModule,
    name: "atomik",
    authors: ["atomik developers"],
    description: "atomik delta-state banks: /dev/atomik",
    license: "GPL",
    // Lets udev/kmod load the module when /dev/atomik is first opened (with a static node).
    alias: ["devname:atomik"],
    params: {
        max_banks_per_user: u32 {
            default: 64,
            description: "Banks one uid may own (ENOSPC above)",
        },
        max_slots: u64 {
            default: 1048576,
            description: "Slots in one bank (ENOMEM above)",
        },
        max_total_bytes: u64 {
            default: 268435456,
            description: "Bytes of bank memory in all banks (ENOMEM above)",
        },
        max_user_bytes: u64 {
            default: 67108864,
            description: "Bytes of bank memory in the banks of one uid, CAP_SYS_RESOURCE exempt (ENOMEM above)",
        },
        slot_wait_ms: u32 {
            default: 1000,
            description: "Milliseconds an op waits for a locked slot before ETIMEDOUT (1..600000)",
        },
        max_region_pages: u64 {
            default: 262144,
            description: "Pages one fd may watch in all its regions, 16 bytes each (ENOMEM above)",
        },
        max_regions_per_fd: u32 {
            default: 64,
            description: "Regions one fd may watch (ENOSPC above)",
        },
    },
}

#[pin_data(PinnedDrop)]
struct AtomikModule {
    #[pin]
    _misc: kernel::miscdevice::MiscDeviceRegistration<device::AtomikFile>,
    /// The PCI driver of the atomik FPGA (pci.rs); banks work without a device.
    #[cfg(CONFIG_PCI)]
    #[pin]
    _pci: kernel::driver::Registration<kernel::pci::Adapter<pci::AtomikPci>>,
}

/// Whether an FPGA is bound (GET_INFO's FEATURE_FPGA).
pub(crate) fn fpga_bound() -> bool {
    #[cfg(CONFIG_PCI)]
    return pci::bound().is_some();
    #[cfg(not(CONFIG_PCI))]
    return false;
}

impl kernel::InPlaceModule for AtomikModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        registry::init();
        #[cfg(CONFIG_PCI)]
        pci::init();
        #[cfg(not(CONFIG_PCI))]
        let _ = module;
        let limits = limits::Limits::get();
        pr_info!(
            "atomik: abi {}, max_banks_per_user={} max_slots={} max_total_bytes={} max_user_bytes={}\n",
            abi::ABI_VERSION,
            limits.banks_per_user,
            limits.slots,
            limits.total_bytes,
            limits.user_bytes
        );
        try_pin_init!(Self {
            _misc <- device::register(),
            #[cfg(CONFIG_PCI)]
            _pci <- kernel::driver::Registration::new(c"atomik", module),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for AtomikModule {
    fn drop(self: Pin<&mut Self>) {
        // Open files and mappings hold a module reference, so only banks nobody has open are
        // left here; their pages go with them.
        registry::clear();
        pr_info!("atomik: unloaded\n");
    }
}
