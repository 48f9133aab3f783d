"""Weight and IFM sparsity decoders: they turn preloaded buffers into the grid's skewed operands.

Cycle-level contract (one "slot" = one cycle of the grid; a group takes M/2 slots sparse, M dense):

* The IFM decoder walks the layer's tiles (k tile outer, pixel tile inner), and inside a tile the
  reduction groups g = (kh, kw, cg), channel group innermost. For each group it reads the M-value
  word of every column's pixel from that column's IFM bank (zero padding by bounds check) into a
  staging register: the *candidate*. A candidate whose words are zero for every pixel of the tile
  is skipped in one cycle; otherwise it is issued, one slot per cycle. The next candidate is read
  in the cycle the current one is consumed, so there are no bubbles between groups.
* In the cycle an operation issues, the IFM decoder tells the weight decoder (issue, first, last,
  null) and has already addressed the weight buffer, one cycle earlier, for that slot.
* Both decoders register the operation (the *issue stage*) and delay row i / column j by i / j
  cycles, so the grid's operands meet (see hw/core/grid.py).
* ``first`` marks a tile's first operation. ``last`` marks its last: when the tile's last group is
  skipped, a null operation (value 0) carries the ``last`` flag in the skip cycle instead, so every
  tile ends with exactly one ``last``. A tile's last operation waits for ``last_ok`` (the previous
  tile's results have been drained), so no PE finishes a tile before its result registers are free.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.layouts import (
    CHANNEL_BITS,
    DIM_BITS,
    weight_op_layout,
    weight_word_layout,
)

__all__ = ["WeightDecoder", "tile_info_layout", "delayed", "weight_addr_bits", "WEIGHT_INDEX_BITS"]

#: Width of absolute weight-word indices (the weight buffer is a ring of weight_depth words).
WEIGHT_INDEX_BITS = 32


def delayed(m: Module, value, cycles: int, name: str):
    """`value` delayed by `cycles` registers (a shift register; SRLs on Xilinx)."""
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def tile_info_layout(config: SenseConfig) -> data.StructLayout:
    return data.StructLayout({
        "k0": unsigned(CHANNEL_BITS + 1),
        "p0": unsigned(2 * DIM_BITS),      # the tile's first output pixel (raster index)
        "count": unsigned(config.cols.bit_length()),
    })


def weight_addr_bits(config):
    return max(1, (config.weight_depth - 1).bit_length())


class WeightDecoder(wiring.Component):
    """Weight buffer plus issue stage for the rows.

    The buffer holds ``weight_depth`` words of ``weight_word_layout`` (one slot, every row); the
    word for slot s of group g of k tile kt is at ``(kt * groups + g) * slots + s``. ``rd_addr`` is
    read every cycle (synchronous, non-transparent); in the next cycle ``issue``/``null``/
    ``first``/``last`` say what to do with the word: the issue stage registers one operation per
    row (value forced to 0 when not issuing or null) and row i's operation leaves on ``ops[i]``
    i cycles later.
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "wr_addr": In(unsigned(weight_addr_bits(config))),
            "wr_data": In(weight_word_layout(config)),
            "wr_en": In(1),
            "rd_addr": In(unsigned(weight_addr_bits(config))),
            "issue": In(1),
            "null": In(1),
            "first": In(1),
            "last": In(1),
            "ops": Out(data.ArrayLayout(weight_op_layout(config), config.rows)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.mem = mem = Memory(shape=weight_word_layout(cfg), depth=cfg.weight_depth,
                                        init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
                     rd.addr.eq(self.rd_addr), rd.en.eq(1)]
        use = self.issue & ~self.null
        for i in range(cfg.rows):
            op = Signal(weight_op_layout(cfg), name=f"issue_op_{i}")
            m.d.sync += [
                op.value.eq(Mux(use, rd.data[i].value, 0)),
                op.first.eq(self.issue & self.first),
                op.last.eq(self.issue & self.last),
            ]
            if cfg.pos_width:
                m.d.sync += op.pos.eq(rd.data[i].pos)
            m.d.comb += self.ops[i].eq(delayed(m, op, i, f"row{i}"))
        return m
