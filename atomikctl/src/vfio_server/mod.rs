//! `atomikctl vfio-user --socket PATH` (feature `vfio-user`): the Verilator model of the RTL
//! (hw/rtl) presented as a PCI device over the vfio-user protocol, on the `vfio_user` crate's
//! server. A vfio-user client — QEMU >= 10.1's `vfio-user-pci` device, whose `socket` is a
//! SocketAddress (`-device {"driver":"vfio-user-pci","socket":{"type":"unix","path":PATH}}`) — puts it
//! on the guest's PCI bus, so a guest kernel's driver probes, maps and drives
//! a device whose registers are the RTL: every BAR 0 access is one access of the model.
//!
//! Config space is ours to emulate (config.rs); BAR 0 is the register map, 64-bit accesses
//! only, as the RTL takes them. What the RTL refuses (SLVERR) reads as all ones, as a PCIe
//! read the device completes with an error does, and a refused write is dropped (posted
//! writes have no answer); the model counts both in ERRORS. No DMA, no interrupts.

mod config;

use std::mem::size_of;
use std::path::Path;

use atomik::backend::fpga::{regs, rtl::RtlModel, Mmio};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_NUM_IRQS,
    VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{IrqInfo, Server, ServerBackend, ServerRegion};

use config::ConfigSpace;

fn refused(what: String) -> std::io::Error {
    std::io::Error::other(what)
}

/// The device: its config space and one RTL model.
struct Device {
    config: ConfigSpace,
    model: RtlModel,
    /// BAR 0 accesses served, for the exit line.
    accesses: u64,
}

/// Words of a BAR 0 access: 8-byte multiples at 8-byte aligned offsets (the register map's
/// rule), else None.
fn words(offset: u64, len: usize) -> Option<usize> {
    (offset.is_multiple_of(8) && len.is_multiple_of(8) && len > 0).then_some(len / 8)
}

impl Device {
    fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        self.accesses += 1;
        let mut w = vec![u64::MAX; words(offset, data.len()).unwrap_or(0)];
        if w.is_empty() || self.model.read_words(offset, &mut w).is_err() {
            data.fill(0xff);
            return;
        }
        for (chunk, v) in data.chunks_exact_mut(8).zip(&w) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn bar_write(&mut self, offset: u64, data: &[u8]) {
        self.accesses += 1;
        if words(offset, data.len()).is_none() {
            return;
        }
        let w: Vec<u64> =
            data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        // A refused write is counted by the model (ERRORS) and dropped, as a posted write is.
        let _ = self.model.write_words(offset, &w);
    }
}

impl ServerBackend for Device {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> std::io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => self.config.read(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX => {
                self.bar_read(offset, data);
                Ok(())
            }
            _ => Err(refused(format!("read of region {region}, which the device does not have"))),
        }
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => self.config.write(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX => {
                self.bar_write(offset, data);
                Ok(())
            }
            _ => Err(refused(format!("write to region {region}, which the device does not have"))),
        }
    }

    fn dma_map(
        &mut self,
        _flags: vfio_user::DmaMapFlags,
        _offset: u64,
        _address: u64,
        _size: u64,
        _fd: Option<std::fs::File>,
    ) -> std::io::Result<()> {
        // The device does no DMA; the client maps guest memory anyway.
        Ok(())
    }

    fn dma_unmap(
        &mut self,
        _flags: vfio_user::DmaUnmapFlags,
        _address: u64,
        _size: u64,
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        // A device reset is the RTL's reset: a fresh model.
        self.model = RtlModel::new().map_err(|e| refused(e.to_string()))?;
        self.config = ConfigSpace::new();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        _flags: u32,
        _start: u32,
        count: u32,
        _fds: Vec<std::fs::File>,
    ) -> std::io::Result<()> {
        if count == 0 {
            Ok(())
        } else {
            Err(refused(format!("the device has no interrupts (set_irqs index {index}, count {count})")))
        }
    }
}

fn regions() -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = match index {
                VFIO_PCI_CONFIG_REGION_INDEX => config::SIZE as u64,
                VFIO_PCI_BAR0_REGION_INDEX => regs::SIZE,
                _ => 0,
            };
            let flags = if size > 0 { VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE } else { 0 };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: size_of::<vfio_region_info>() as u32,
                    index,
                    size,
                    flags,
                    ..Default::default()
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// Serves one client on a new socket at `path` (which must not exist) until it disconnects.
pub fn serve(path: &Path) -> anyhow::Result<()> {
    let irqs = (0..VFIO_PCI_NUM_IRQS).map(|index| IrqInfo { index, flags: 0, count: 0 }).collect();
    let server = Server::new(path, true, irqs, regions())
        .map_err(|e| anyhow::anyhow!("vfio-user server on {}: {e}", path.display()))?;
    let mut dev = Device { config: ConfigSpace::new(), model: RtlModel::new()?, accesses: 0 };
    eprintln!(
        "atomikctl vfio-user: RTL model ({} slots) as PCI {:04x}:{:04x} on {}",
        atomik::backend::fpga::rtl::MODEL_SLOTS,
        regs::ID_PCI_VENDOR_RESET,
        regs::ID_PCI_DEVICE_RESET,
        path.display()
    );
    let result = server.run(&mut dev);
    eprintln!(
        "atomikctl vfio-user: client gone after {} BAR accesses, {} cycles",
        dev.accesses,
        dev.model.cycles()
    );
    result.map_err(|e| anyhow::anyhow!("vfio-user server on {}: {e}", path.display()))
}
