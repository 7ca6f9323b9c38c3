"""The register map as the testbenches see it: read from hw/regs/atomik.rdl itself."""

from pathlib import Path

from systemrdl import RDLCompiler
from systemrdl.node import MemNode, RegNode

RDL = Path(__file__).resolve().parent.parent / "regs" / "atomik.rdl"


def load():
    """{name: offset} of registers and window bases, and {REG_FIELD: reset} of the fields."""
    rdlc = RDLCompiler()
    rdlc.compile_file(str(RDL))
    top = rdlc.elaborate().top
    offsets, resets = {}, {}
    for child in top.children():
        if isinstance(child, (RegNode, MemNode)):
            offsets[child.inst_name] = child.address_offset
        if isinstance(child, RegNode):
            for f in child.fields():
                resets[f"{child.inst_name}_{f.inst_name}"] = (f.lsb, f.width, f.get_property("reset"))
    return offsets, resets


OFFSETS, FIELDS = load()
