//! Generated from hw/regs/atomik.rdl by hw/regs/gen.sh: do not edit.
//!
//! Byte offsets in the device's address space (BAR 0), field positions and reset values.
/// Identity: register offset.
pub const ID: u64 = 0x0;
/// 0x4154_4D4B, 'ATMK'.
pub const ID_MAGIC_LSB: u32 = 0;
/// Mask of `ID_MAGIC` in its register.
pub const ID_MAGIC_MASK: u64 = 0xffffffff;
/// Reset value of `ID_MAGIC`.
pub const ID_MAGIC_RESET: u64 = 0x41544d4b;
/// PCI vendor ID the device enumerates with (placeholder until one is assigned).
pub const ID_PCI_VENDOR_LSB: u32 = 32;
/// Mask of `ID_PCI_VENDOR` in its register.
pub const ID_PCI_VENDOR_MASK: u64 = 0xffff00000000;
/// Reset value of `ID_PCI_VENDOR`.
pub const ID_PCI_VENDOR_RESET: u64 = 0x10ee;
/// PCI device ID.
pub const ID_PCI_DEVICE_LSB: u32 = 48;
/// Mask of `ID_PCI_DEVICE` in its register.
pub const ID_PCI_DEVICE_MASK: u64 = 0xffff000000000000;
/// Reset value of `ID_PCI_DEVICE`.
pub const ID_PCI_DEVICE_RESET: u64 = 0xa70c;
/// Version: register offset.
pub const VERSION: u64 = 0x8;
/// MAJOR
pub const VERSION_MAJOR_LSB: u32 = 0;
/// Mask of `VERSION_MAJOR` in its register.
pub const VERSION_MAJOR_MASK: u64 = 0xffff;
/// Reset value of `VERSION_MAJOR`.
pub const VERSION_MAJOR_RESET: u64 = 0x1;
/// MINOR
pub const VERSION_MINOR_LSB: u32 = 16;
/// Mask of `VERSION_MINOR` in its register.
pub const VERSION_MINOR_MASK: u64 = 0xffff0000;
/// Reset value of `VERSION_MINOR`.
pub const VERSION_MINOR_RESET: u64 = 0x0;
/// Geometry: register offset.
pub const GEOMETRY: u64 = 0x10;
/// Number of slots.
pub const GEOMETRY_SLOTS_LSB: u32 = 0;
/// Mask of `GEOMETRY_SLOTS` in its register.
pub const GEOMETRY_SLOTS_MASK: u64 = 0xffffffff;
/// Reset value of `GEOMETRY_SLOTS`.
pub const GEOMETRY_SLOTS_RESET: u64 = 0x0;
/// 64-bit lanes per window beat: slots processed in parallel per cycle.
pub const GEOMETRY_LANES_LSB: u32 = 32;
/// Mask of `GEOMETRY_LANES` in its register.
pub const GEOMETRY_LANES_MASK: u64 = 0xff00000000;
/// Reset value of `GEOMETRY_LANES`.
pub const GEOMETRY_LANES_RESET: u64 = 0x0;
/// log2 of each window's size in bytes.
pub const GEOMETRY_WINDOW_SHIFT_LSB: u32 = 40;
/// Mask of `GEOMETRY_WINDOW_SHIFT` in its register.
pub const GEOMETRY_WINDOW_SHIFT_MASK: u64 = 0xff0000000000;
/// Reset value of `GEOMETRY_WINDOW_SHIFT`.
pub const GEOMETRY_WINDOW_SHIFT_RESET: u64 = 0x10;
/// Features: register offset.
pub const FEATURES: u64 = 0x18;
/// ACCUM window: one posted write per ACCUM.
pub const FEATURES_ACCUM_WINDOW_LSB: u32 = 0;
/// Mask of `FEATURES_ACCUM_WINDOW` in its register.
pub const FEATURES_ACCUM_WINDOW_MASK: u64 = 0x1;
/// Reset value of `FEATURES_ACCUM_WINDOW`.
pub const FEATURES_ACCUM_WINDOW_RESET: u64 = 0x1;
/// LOAD windows (XOR and ADD).
pub const FEATURES_LOAD_WINDOW_LSB: u32 = 1;
/// Mask of `FEATURES_LOAD_WINDOW` in its register.
pub const FEATURES_LOAD_WINDOW_MASK: u64 = 0x2;
/// Reset value of `FEATURES_LOAD_WINDOW`.
pub const FEATURES_LOAD_WINDOW_RESET: u64 = 0x1;
/// READ window.
pub const FEATURES_READ_WINDOW_LSB: u32 = 2;
/// Mask of `FEATURES_READ_WINDOW` in its register.
pub const FEATURES_READ_WINDOW_MASK: u64 = 0x4;
/// Reset value of `FEATURES_READ_WINDOW`.
pub const FEATURES_READ_WINDOW_RESET: u64 = 0x1;
/// Read-to-swap window.
pub const FEATURES_SWAP_WINDOW_LSB: u32 = 3;
/// Mask of `FEATURES_SWAP_WINDOW` in its register.
pub const FEATURES_SWAP_WINDOW_MASK: u64 = 0x8;
/// Reset value of `FEATURES_SWAP_WINDOW`.
pub const FEATURES_SWAP_WINDOW_RESET: u64 = 0x1;
/// Identity bitmap window.
pub const FEATURES_IDENT_WINDOW_LSB: u32 = 4;
/// Mask of `FEATURES_IDENT_WINDOW` in its register.
pub const FEATURES_IDENT_WINDOW_MASK: u64 = 0x10;
/// Reset value of `FEATURES_IDENT_WINDOW`.
pub const FEATURES_IDENT_WINDOW_RESET: u64 = 0x1;
/// Windows accept AXI4 bursts (without it a driver writes ACCUMs one by one).
pub const FEATURES_BURST_LSB: u32 = 5;
/// Mask of `FEATURES_BURST` in its register.
pub const FEATURES_BURST_MASK: u64 = 0x20;
/// Reset value of `FEATURES_BURST`.
pub const FEATURES_BURST_RESET: u64 = 0x1;
/// Wrapping 64-bit ADD operator.
pub const FEATURES_OP_ADD_LSB: u32 = 6;
/// Mask of `FEATURES_OP_ADD` in its register.
pub const FEATURES_OP_ADD_MASK: u64 = 0x40;
/// Reset value of `FEATURES_OP_ADD`.
pub const FEATURES_OP_ADD_RESET: u64 = 0x1;
/// XOR operator.
pub const FEATURES_OP_XOR_LSB: u32 = 7;
/// Mask of `FEATURES_OP_XOR` in its register.
pub const FEATURES_OP_XOR_MASK: u64 = 0x80;
/// Reset value of `FEATURES_OP_XOR`.
pub const FEATURES_OP_XOR_RESET: u64 = 0x1;
/// SWAP_SET window.
pub const FEATURES_SWAP_SET_WINDOW_LSB: u32 = 8;
/// Mask of `FEATURES_SWAP_SET_WINDOW` in its register.
pub const FEATURES_SWAP_SET_WINDOW_MASK: u64 = 0x100;
/// Reset value of `FEATURES_SWAP_SET_WINDOW`.
pub const FEATURES_SWAP_SET_WINDOW_RESET: u64 = 0x1;
/// Control: register offset.
pub const CONTROL: u64 = 0x20;
/// Write 1: every slot becomes reference 0, accumulator identity, operator XOR, in one cycle. Reads 0.
pub const CONTROL_CLEAR_LSB: u32 = 0;
/// Mask of `CONTROL_CLEAR` in its register.
pub const CONTROL_CLEAR_MASK: u64 = 0x1;
/// Reset value of `CONTROL_CLEAR`.
pub const CONTROL_CLEAR_RESET: u64 = 0x0;
/// Status: register offset.
pub const STATUS: u64 = 0x28;
/// 1 when some slot's accumulator is not the identity.
pub const STATUS_ANY_DIRTY_LSB: u32 = 0;
/// Mask of `STATUS_ANY_DIRTY` in its register.
pub const STATUS_ANY_DIRTY_MASK: u64 = 0x1;
/// Reset value of `STATUS_ANY_DIRTY`.
pub const STATUS_ANY_DIRTY_RESET: u64 = 0x0;
/// Errors: register offset.
pub const ERRORS: u64 = 0x30;
/// COUNT
pub const ERRORS_COUNT_LSB: u32 = 0;
/// Mask of `ERRORS_COUNT` in its register.
pub const ERRORS_COUNT_MASK: u64 = 0xffffffffffffffff;
/// Reset value of `ERRORS_COUNT`.
pub const ERRORS_COUNT_RESET: u64 = 0x0;
/// Accumulations: register offset.
pub const ACCUMS: u64 = 0x38;
/// COUNT
pub const ACCUMS_COUNT_LSB: u32 = 0;
/// Mask of `ACCUMS_COUNT` in its register.
pub const ACCUMS_COUNT_MASK: u64 = 0xffffffffffffffff;
/// Reset value of `ACCUMS_COUNT`.
pub const ACCUMS_COUNT_RESET: u64 = 0x0;
/// Write d at 8*i: accumulator(i) = accumulator(i) op(i) d. One posted write, no response awaited.
pub const ACCUM_BASE: u64 = 0x10000;
/// Words in the ACCUM window.
pub const ACCUM_ENTRIES: u64 = 8192;
/// Write v at 8*i: reference(i) = v, accumulator(i) = identity, op(i) = XOR.
pub const LOAD_XOR_BASE: u64 = 0x20000;
/// Words in the LOAD_XOR window.
pub const LOAD_XOR_ENTRIES: u64 = 8192;
/// Write v at 8*i: reference(i) = v, accumulator(i) = identity, op(i) = wrapping ADD.
pub const LOAD_ADD_BASE: u64 = 0x30000;
/// Words in the LOAD_ADD window.
pub const LOAD_ADD_ENTRIES: u64 = 8192;
/// Read at 8*i: reference(i) op(i) accumulator(i). No side effect.
pub const READ_BASE: u64 = 0x40000;
/// Words in the READ window.
pub const READ_ENTRIES: u64 = 8192;
/// Read at 8*i: returns the state and, in the same cycle, makes it the reference and the accumulator the identity. The read has a side effect: map it uncached, never write-combined or prefetchable.
pub const SWAP_BASE: u64 = 0x50000;
/// Words in the SWAP window.
pub const SWAP_ENTRIES: u64 = 8192;
/// Read word k: bit j is 1 when the accumulator of slot 64*k + j is the identity.
pub const IDENT_BASE: u64 = 0x60000;
/// Words in the IDENT window.
pub const IDENT_ENTRIES: u64 = 128;
/// Write v at offset 0: stages v (a write elsewhere is refused). Read at 8*i: returns the state and, in the same cycle, makes the staged v the reference and the accumulator the identity. One staging word for the device: writers serialise the write-then-read pair. Uncached, like SWAP.
pub const SWAP_SET_BASE: u64 = 0x70000;
/// Words in the SWAP_SET window.
pub const SWAP_SET_ENTRIES: u64 = 8192;
/// Bytes of address space the device decodes.
pub const SIZE: u64 = 0x80000;
/// One bit of FEATURES, as the register map defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureBit {
    /// The field's name in the RDL.
    pub name: &'static str,
    /// Its bit in FEATURES.
    pub bit: u32,
    /// What it means.
    pub desc: &'static str,
    /// A driver of this register map refuses a device without it.
    pub needed: bool,
}
/// Every FEATURES bit, in bit order.
pub const FEATURE_BITS: [FeatureBit; 9] = [
    FeatureBit {
        name: "ACCUM_WINDOW",
        bit: 0,
        desc: "ACCUM window: one posted write per ACCUM.",
        needed: true,
    },
    FeatureBit { name: "LOAD_WINDOW", bit: 1, desc: "LOAD windows (XOR and ADD).", needed: true },
    FeatureBit { name: "READ_WINDOW", bit: 2, desc: "READ window.", needed: true },
    FeatureBit { name: "SWAP_WINDOW", bit: 3, desc: "Read-to-swap window.", needed: true },
    FeatureBit { name: "IDENT_WINDOW", bit: 4, desc: "Identity bitmap window.", needed: true },
    FeatureBit {
        name: "BURST",
        bit: 5,
        desc: "Windows accept AXI4 bursts (without it a driver writes ACCUMs one by one).",
        needed: false,
    },
    FeatureBit { name: "OP_ADD", bit: 6, desc: "Wrapping 64-bit ADD operator.", needed: true },
    FeatureBit { name: "OP_XOR", bit: 7, desc: "XOR operator.", needed: true },
    FeatureBit { name: "SWAP_SET_WINDOW", bit: 8, desc: "SWAP_SET window.", needed: true },
];
/// The FEATURES bits a driver needs (those of [`FEATURE_BITS`] marked `needed`).
pub const FEATURES_NEEDED: u64 = 0x1df;
