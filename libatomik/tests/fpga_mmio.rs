//! The mapped register path (a PCIe BAR's sysfs `resource0`/`resource0_wc`, a UIO map) over
//! plain files standing in for the BAR: the driver puts each operation at the register map's
//! offset, ACCUM bursts go to the write-combined mapping and nothing else does, and accesses
//! outside the mapping are errors naming the device, never a fault.

use std::path::{Path, PathBuf};

use atomik::backend::fpga::{regs, FpgaDevice, MappedMmio, Mmio};
use atomik::Op;

fn word(file: &Path, offset: u64) -> u64 {
    let b = std::fs::read(file).unwrap();
    u64::from_le_bytes(b[offset as usize..offset as usize + 8].try_into().unwrap())
}

/// Every FEATURES bit the register map defines.
fn all_features() -> u64 {
    regs::FEATURE_BITS.iter().fold(0, |m, f| m | 1 << f.bit)
}

/// A file of `len` bytes whose header says: atomik, version 1, `slots` slots, every feature.
fn bar(dir: &Path, name: &str, len: u64, slots: u64) -> PathBuf {
    bar_with(dir, name, len, slots, all_features())
}

fn bar_with(dir: &Path, name: &str, len: u64, slots: u64, features: u64) -> PathBuf {
    let mut b = vec![0u8; len as usize];
    let mut put = |off: u64, v: u64| b[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
    put(regs::ID, regs::ID_MAGIC_RESET | regs::ID_PCI_VENDOR_RESET << 32 | regs::ID_PCI_DEVICE_RESET << 48);
    put(regs::VERSION, regs::VERSION_MAJOR_RESET);
    put(regs::GEOMETRY, slots | 1 << regs::GEOMETRY_LANES_LSB);
    put(regs::FEATURES, features);
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn each_operation_lands_at_its_register_offset() {
    let d = tempfile::tempdir().unwrap();
    let uc = bar(d.path(), "resource0", 0x80000, 64);
    let wc = bar(d.path(), "resource0_wc", 0x80000, 64);
    let mmio = MappedMmio::open(PathBuf::from("PCI test BAR 0"), &uc, Some(&wc)).unwrap();
    assert!(mmio.write_combined());
    let dev = FpgaDevice::probe(Box::new(mmio)).unwrap();
    assert_eq!((dev.slots(), dev.lanes()), (64, 1));

    dev.accum(5, 0xabc).unwrap();
    assert_eq!(word(&uc, regs::ACCUM_BASE + 8 * 5), 0xabc, "a single ACCUM: one uncached write");
    dev.accum_dense(10, &[1, 2, 3]).unwrap();
    assert_eq!([11, 12].map(|s| word(&wc, regs::ACCUM_BASE + 8 * s)), [2, 3], "bursts: write-combined");
    assert_eq!(word(&uc, regs::ACCUM_BASE + 8 * 11), 0, "bursts never through the uncached map");
    dev.load(3, &[7, 8], Op::Add).unwrap();
    assert_eq!([3, 4].map(|s| word(&uc, regs::LOAD_ADD_BASE + 8 * s)), [7, 8]);
    dev.load(3, &[9], Op::Xor).unwrap();
    assert_eq!(word(&uc, regs::LOAD_XOR_BASE + 24), 9);
    dev.swap_set(6, 0x55).unwrap();
    assert_eq!(word(&uc, regs::SWAP_SET_BASE), 0x55, "SWAP_SET stages at offset 0");
}

#[test]
fn a_short_or_foreign_mapping_is_an_error_not_a_fault() {
    let d = tempfile::tempdir().unwrap();
    // Only the header page: the probe reads it, every window access is refused by the span check.
    let short = bar(d.path(), "short", 4096, 64);
    let dev =
        FpgaDevice::probe(Box::new(MappedMmio::open(PathBuf::from("uio7"), &short, None).unwrap())).unwrap();
    let e = dev.accum(0, 1).unwrap_err().to_string();
    assert!(e.contains("uio7") && e.contains("outside"), "{e}");
    // A device whose ID is not ours.
    let foreign = d.path().join("foreign");
    std::fs::write(&foreign, vec![0xffu8; 4096]).unwrap();
    let e = FpgaDevice::probe(Box::new(
        MappedMmio::open(PathBuf::from("PCI 0000:01:00.0 BAR 0"), &foreign, None).unwrap(),
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("PCI 0000:01:00.0 BAR 0") && e.contains("not an atomik device"), "{e}");
    // A geometry beyond the register map.
    let big = bar(d.path(), "big", 4096, regs::ACCUM_ENTRIES + 1);
    let e = FpgaDevice::probe(Box::new(MappedMmio::open(PathBuf::from("big"), &big, None).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("geometry"), "{e}");
    // Unaligned and out-of-range offsets straight on the Mmio.
    let m = MappedMmio::open(PathBuf::from("m"), &short, None).unwrap();
    assert!(m.read64(4).is_err() && m.read64(4096).is_err() && m.write64(u64::MAX - 3, 0).is_err());
    assert_eq!(m.read64(regs::ID).unwrap() & regs::ID_MAGIC_MASK, regs::ID_MAGIC_RESET);
}

#[test]
fn the_probe_names_a_needed_feature_the_device_lacks_and_honours_burst() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(regs::FEATURES_NEEDED & !all_features(), 0, "needed bits are defined bits");
    for f in regs::FEATURE_BITS.iter().filter(|f| f.needed) {
        let p = bar_with(d.path(), f.name, 4096, 64, all_features() & !(1 << f.bit));
        let e = FpgaDevice::probe(Box::new(MappedMmio::open(PathBuf::from("dev"), &p, None).unwrap()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dev") && e.contains(f.name), "{e}");
    }
    // Without BURST the device is usable, and ACCUM runs go one write each through the uncached map.
    let uc = bar_with(d.path(), "resource0", 0x80000, 64, all_features() & !regs::FEATURES_BURST_MASK);
    let wc = bar(d.path(), "resource0_wc", 0x80000, 64);
    let dev =
        FpgaDevice::probe(Box::new(MappedMmio::open(PathBuf::from("bar"), &uc, Some(&wc)).unwrap())).unwrap();
    dev.accum_dense(10, &[1, 2]).unwrap();
    assert_eq!([10, 11].map(|s| word(&uc, regs::ACCUM_BASE + 8 * s)), [1, 2]);
    assert_eq!(word(&wc, regs::ACCUM_BASE + 8 * 10), 0, "no write combining without FEATURES.BURST");
}
