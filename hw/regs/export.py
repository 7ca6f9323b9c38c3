"""Exports hw/regs/atomik.rdl as Verilog localparams and Rust constants.

PeakRDL's cheader exporter writes the C header; this small exporter, on the same
systemrdl-compiler front end, writes what the RTL and the Rust driver include, so all three
come from the one RDL file. Usage: export.py RDL VERILOG_OUT RUST_OUT
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


def verilog(top):
    # No include guard: it is included inside each module that needs the names.
    out = [f"// {HEADER}", "// Included inside a module body: localparams of the register map.",
           "/* verilator lint_off UNUSEDPARAM */"]
    for kind, name, node in walk(top):
        if kind == "reg":
            out.append(f"localparam [31:0] A_{name} = 32'h{node.address_offset:x};")
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
        desc = (node.get_property("desc") or node.get_property("name") or "").split("\n")[0].strip()
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
    return "\n".join(out) + "\n"


def main():
    rdl, vh, rs = sys.argv[1:4]
    rdlc = RDLCompiler()
    rdlc.compile_file(rdl)
    top = rdlc.elaborate().top
    with open(vh, "w") as f:
        f.write(verilog(top))
    with open(rs, "w") as f:
        f.write(rust(top))


if __name__ == "__main__":
    main()
