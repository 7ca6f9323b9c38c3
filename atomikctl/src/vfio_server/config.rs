//! The PCI configuration space of the simulated device: what the vfio-user client (QEMU) reads
//! to enumerate it. The IDs come from the register map (the ID register's reset values,
//! generated from hw/regs/atomik.rdl), BAR 0 is the register map's size, so the guest's driver
//! finds the same device a real card would present.

use atomik::backend::fpga::regs;

/// Bytes of a conventional PCI configuration header space.
pub const SIZE: usize = 256;

const COMMAND: usize = 0x04;
const BAR0: usize = 0x10;
const INTERRUPT_LINE: usize = 0x3c;
/// Memory space, bus master and INTx disable: the command bits a driver may set.
const COMMAND_WRITABLE: u16 = 0x0002 | 0x0004 | 0x0400;
/// Class code: processing accelerator (0x12), subclass 0, interface 0.
const CLASS_ACCELERATOR: u32 = 0x12_0000;

/// A type-0 header with one 32-bit, non-prefetchable memory BAR (BAR 0) and no capabilities,
/// no interrupt pin. Non-prefetchable: the SWAP window's reads have side effects.
pub struct ConfigSpace {
    bytes: [u8; SIZE],
    /// BAR 0 address bits as last written (the sizing protocol reads back the size mask).
    bar0: u32,
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigSpace {
    pub fn new() -> ConfigSpace {
        let mut c = ConfigSpace { bytes: [0; SIZE], bar0: 0 };
        c.put16(0x00, regs::ID_PCI_VENDOR_RESET as u16);
        c.put16(0x02, regs::ID_PCI_DEVICE_RESET as u16);
        // Revision 1 (register map major version 1), class in the upper 24 bits.
        c.put32(0x08, (CLASS_ACCELERATOR << 8) | regs::VERSION_MAJOR_RESET as u32);
        c.put16(0x2c, regs::ID_PCI_VENDOR_RESET as u16);
        c.put16(0x2e, regs::ID_PCI_DEVICE_RESET as u16);
        c
    }

    fn put16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// BAR 0's register: the written address bits within the size mask, type bits 0
    /// (memory, 32-bit, non-prefetchable).
    fn bar0_value(&self) -> u32 {
        let mask = !(regs::SIZE as u32 - 1);
        self.bar0 & mask
    }

    /// Reads `out.len()` bytes at `offset`. Any span inside the space is allowed.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let start = span(offset, out.len())?;
        let mut view = self.bytes;
        view[BAR0..BAR0 + 4].copy_from_slice(&self.bar0_value().to_le_bytes());
        out.copy_from_slice(&view[start..start + out.len()]);
        Ok(())
    }

    /// Writes bytes at `offset`: only the command register's writable bits, BAR 0 and the
    /// interrupt line take writes; the rest is read-only, as on hardware.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let start = span(offset, data.len())?;
        for (k, &b) in data.iter().enumerate() {
            let at = start + k;
            match at {
                COMMAND | 0x05 => {
                    let shift = 8 * (at - COMMAND);
                    let mask = ((COMMAND_WRITABLE >> shift) & 0xff) as u8;
                    self.bytes[at] = (self.bytes[at] & !mask) | (b & mask);
                }
                BAR0..=0x13 => {
                    let shift = 8 * (at - BAR0);
                    self.bar0 = (self.bar0 & !(0xff << shift)) | (u32::from(b) << shift);
                }
                INTERRUPT_LINE => self.bytes[at] = b,
                _ => {}
            }
        }
        Ok(())
    }
}

fn span(offset: u64, len: usize) -> std::io::Result<usize> {
    let start = usize::try_from(offset).ok().filter(|s| s.checked_add(len).is_some_and(|e| e <= SIZE));
    start.ok_or_else(|| std::io::Error::other(format!("config access of {len} bytes at {offset:#x}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read32(c: &ConfigSpace, at: u64) -> u32 {
        let mut b = [0; 4];
        c.read(at, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    #[test]
    fn ids_come_from_the_register_map() {
        let c = ConfigSpace::new();
        assert_eq!(read32(&c, 0), 0xa70c_10ee);
        assert_eq!(read32(&c, 8) >> 8, CLASS_ACCELERATOR);
    }

    #[test]
    fn bar0_sizing_reads_back_the_register_map_size() {
        let mut c = ConfigSpace::new();
        c.write(0x10, &u32::MAX.to_le_bytes()).unwrap();
        assert_eq!(!read32(&c, 0x10) + 1, regs::SIZE as u32);
        c.write(0x10, &0xfe00_0000u32.to_le_bytes()).unwrap();
        assert_eq!(read32(&c, 0x10), 0xfe00_0000);
    }

    #[test]
    fn read_only_fields_ignore_writes() {
        let mut c = ConfigSpace::new();
        c.write(0, &[0; 4]).unwrap();
        c.write(4, &0xffffu16.to_le_bytes()).unwrap();
        assert_eq!(read32(&c, 0), 0xa70c_10ee);
        assert_eq!(read32(&c, 4) & 0xffff, u32::from(COMMAND_WRITABLE));
        assert!(c.read(255, &mut [0; 2]).is_err());
    }
}
