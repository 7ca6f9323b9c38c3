"""Exports hw/regs/atomik.rdl as Verilog localparams and Rust constants, and adds the FEATURES
bits to the C header.

PeakRDL's cheader exporter writes the C header; this small exporter, on the same
systemrdl-compiler front end, writes what the RTL and the Rust driver include, so all three
come from the one RDL file. The FEATURES bits (name, bit, description, whether a driver needs
them: the RDL's driver_needs property) become a table in Rust and an X-macro in C, so drivers
take the list from here instead of writing it out. Usage: export.py RDL VERILOG_OUT RUST_OUT C_HEADER
"""

import sys

from systemrdl import RDLCompiler
from systemrdl.node import FieldNode, MemNode, RegNode

HEADER = "Generated from hw/regs/atomik.rdl by hw/regs/gen.sh: do not edit."


def walk(top):
    """Yields (kind, name, node) for the registers, their fields and the windows, in address order."""
    for child in top.children():
        if isinstance(child, RegNode):
            yield "reg", child.inst_name, child
            for f in child.fields():
                yield "field", f"{child.inst_name}_{f.inst_name}", f
        elif isinstance(child, MemNode):
            yield "mem", child.inst_name, child


def desc_of(node):
    return (node.get_property("desc") or node.get_property("name") or "").split("\n")[0].strip()


def feature_bits(top):
    """[(name, bit, description, needed)] of the FEATURES register's one-bit fields, in bit order."""
    reg = top.get_child_by_name("FEATURES")
    bits = []
    for f in sorted(reg.fields(), key=lambda f: f.lsb):
        assert f.width == 1, f"FEATURES.{f.inst_name} is not one bit"
        bits.append((f.inst_name, f.lsb, desc_of(f), bool(f.get_property("driver_needs", default=False))))
    return bits


def needed_mask(bits):
    return sum(1 << bit for _, bit, _, needed in bits if needed)


def verilog(top):
    # No include guard: it is included inside each module that needs the names.
    out = [f"// {HEADER}", "// Included inside a module body: localparams of the register map.",
           "/* verilator lint_off UNUSEDPARAM */"]
    for kind, name, node in walk(top):
        if kind == "reg":
            out.append(f"localparam [31:0] A_{name} = 32'h{node.address_offset:x};")
            reset = sum((f.get_property("reset") or 0) << f.lsb for f in node.fields())
            w = node.get_property("regwidth")
            out.append(f"localparam [{w - 1}:0] A_{name}_RESET = {w}'h{reset:x};")
        elif kind == "field":
            out.append(f"localparam integer A_{name}_LSB = {node.lsb};")
            out.append(f"localparam integer A_{name}_WIDTH = {node.width};")
            reset = node.get_property("reset")
            if reset is not None:
                out.append(f"localparam [{node.width - 1}:0] A_{name}_RESET = {node.width}'h{reset:x};")
        else:
            out.append(f"localparam [31:0] A_{name}_BASE = 32'h{node.address_offset:x};")
            out.append(f"localparam integer A_{name}_ENTRIES = {node.get_property('mementries')};")
    out.append(f"localparam [31:0] A_SIZE = 32'h{top.size:x};")
    out.append("/* verilator lint_on UNUSEDPARAM */")
    return "\n".join(out) + "\n"


def rust(top):
    out = [f"//! {HEADER}", "//!", "//! Byte offsets in the device's address space (BAR 0), field positions and reset values."]
    for kind, name, node in walk(top):
        desc = desc_of(node)
        if kind == "reg":
            out.append(f"/// {node.get_property('name') or name}: register offset.")
            out.append(f"pub const {name}: u64 = {node.address_offset:#x};")
        elif kind == "field":
            if desc:
                out.append(f"/// {desc}")
            out.append(f"pub const {name}_LSB: u32 = {node.lsb};")
            mask = ((1 << node.width) - 1) << node.lsb
            out.append(f"/// Mask of `{name}` in its register.")
            out.append(f"pub const {name}_MASK: u64 = {mask:#x};")
            reset = node.get_property("reset")
            if reset is not None:
                out.append(f"/// Reset value of `{name}`.")
                out.append(f"pub const {name}_RESET: u64 = {reset:#x};")
        else:
            if desc:
                out.append(f"/// {desc}")
            out.append(f"pub const {name}_BASE: u64 = {node.address_offset:#x};")
            out.append(f"/// Words in the {name} window.")
            out.append(f"pub const {name}_ENTRIES: u64 = {node.get_property('mementries')};")
    out.append("/// Bytes of address space the device decodes.")
    out.append(f"pub const SIZE: u64 = {top.size:#x};")
    bits = feature_bits(top)
    out += [
        "/// One bit of FEATURES, as the register map defines it.",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq)]",
        "pub struct FeatureBit {",
        "    /// The field's name in the RDL.",
        "    pub name: &'static str,",
        "    /// Its bit in FEATURES.",
        "    pub bit: u32,",
        "    /// What it means.",
        "    pub desc: &'static str,",
        "    /// A driver of this register map refuses a device without it.",
        "    pub needed: bool,",
        "}",
        "/// Every FEATURES bit, in bit order.",
        f"pub const FEATURE_BITS: [FeatureBit; {len(bits)}] = [",
    ]
    for name, bit, desc, needed in bits:
        fields = [f"name: {rust_str(name)}", f"bit: {bit}", f"desc: {rust_str(desc)}", f"needed: {str(needed).lower()}"]
        line = f"    FeatureBit {{ {', '.join(fields)} }},"
        # As rustfmt (max_width 110) lays it out, so `cargo fmt` leaves the file as generated.
        out += [line] if len(line) <= 110 else ["    FeatureBit {"] + [f"        {x}," for x in fields] + ["    },"]
    out += ["];", "/// The FEATURES bits a driver needs (those of [`FEATURE_BITS`] marked `needed`).",
            f"pub const FEATURES_NEEDED: u64 = {needed_mask(bits):#x};"]
    return "\n".join(out) + "\n"


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_features(top):
    """The FEATURES bits for the C header: one ATOMIK_FEATURE_<NAME> mask each, the needed mask,
    and ATOMIK_FEATURE_BITS(X), an X-macro calling X(name, bit, description, needed) per bit."""
    bits = feature_bits(top)
    out = ["// FEATURES bits, added by hw/regs/export.py from the RDL:",
           "// ATOMIK_FEATURE_BITS(X) calls X(name, bit, description, needed) for each, in bit order."]
    for name, bit, _, _ in bits:
        out.append(f"#define ATOMIK_FEATURE_{name} (1ull << {bit})")
    out.append(f"#define ATOMIK_FEATURES_NEEDED {needed_mask(bits):#x}ull")
    out.append("#define ATOMIK_FEATURE_BITS(X) \\")
    for i, (name, bit, desc, needed) in enumerate(bits):
        tail = " \\" if i < len(bits) - 1 else ""
        out.append(f"    X({name}, {bit}, {c_str(desc)}, {int(needed)}){tail}")
    return "\n".join(out) + "\n"


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_to_header(path, block):
    """Puts `block` inside the header's include guard and extern "C", before its closing lines."""
    text = open(path).read()
    end = "#ifdef __cplusplus\n}\n#endif"
    assert text.count(end) == 1, f"{path}: no closing extern \"C\" block"
    with open(path, "w") as f:
        f.write(text.replace(end, block + "\n" + end))


def main():
    rdl, vh, rs, h = sys.argv[1:5]
    rdlc = RDLCompiler()
    rdlc.compile_file(rdl)
    top = rdlc.elaborate().top
    with open(vh, "w") as f:
        f.write(verilog(top))
    with open(rs, "w") as f:
        f.write(rust(top))
    add_to_header(h, c_features(top))


if __name__ == "__main__":
    main()
