"""The rows x cols systolic PE grid with its result capture and drain read-out."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.core.pe import PE
from hw.layouts import ifm_layout, weight_op_layout

__all__ = ["Grid"]


class Grid(wiring.Component):
    """rows x cols PEs, output stationary: PE(i, j) accumulates output channel k0+i, pixel p0+j.

    Weight operations for row i enter at column 0 on ``w_in[i]`` and move one column per cycle;
    IFM lanes for column j enter at row 0 on ``x_in[j]`` and move one row per cycle. The caller
    skews them (row i delayed i cycles, column j delayed j cycles) so that matching operands meet.

    Results: when PE(i, j) finishes an output (its ``done``), its accumulator is copied into a
    result register, so the accumulators go straight on with the next tile. There are two banks of
    result registers, R0 and R1; tiles alternate between them (tile n into bank n % 2, counted from
    the last ``clear``). ``corner_done`` is PE(rows-1, cols-1)'s ``done``: the last PE to finish,
    so when it rises the tile's bank is complete. The drain reads a bank out a row at a time:
    ``bottom`` shows row ``row`` of bank ``bank`` (combinationally; a column's read-out is a
    2 x rows : 1 multiplexer, the result registers are loaded and never shifted, so they cost
    flip-flops and no logic). The caller must not read a bank's row while a tile is being captured
    into it (the core lets tile n finish only after tile n-2 has been read out).
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "w_in": In(data.ArrayLayout(weight_op_layout(config), config.rows)),
            "x_in": In(data.ArrayLayout(ifm_layout(config), config.cols)),
            "clear": In(1),
            "row": In(range(max(config.rows, 2))),
            "bank": In(1),
            "bottom": Out(data.ArrayLayout(signed(config.acc_width), config.cols)),
            "corner_done": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        pes = [[PE(cfg) for _ in range(cfg.cols)] for _ in range(cfg.rows)]
        banks = [[[Signal(signed(cfg.acc_width), name=f"r{b}_{i}_{j}") for j in range(cfg.cols)]
                  for i in range(cfg.rows)] for b in range(2)]
        for i in range(cfg.rows):
            for j in range(cfg.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.w_in.eq(self.w_in[i] if j == 0 else pes[i][j - 1].w_out),
                    pe.x_in.eq(self.x_in[j] if i == 0 else pes[i - 1][j].x_out),
                ]
                sel = Signal(name=f"sel_{i}_{j}")  # the bank this PE's next result goes to
                with m.If(self.clear):
                    m.d.sync += sel.eq(0)
                with m.Elif(pe.done):
                    m.d.sync += sel.eq(~sel)
                for b, result in enumerate(banks):
                    with m.If(pe.done & (sel == b)):
                        m.d.sync += result[i][j].eq(pe.acc)
        m.d.comb += self.corner_done.eq(pes[-1][-1].done)
        for j in range(cfg.cols):
            m.d.comb += self.bottom[j].eq(
                Mux(self.bank, Array(banks[1][i][j] for i in range(cfg.rows))[self.row],
                    Array(banks[0][i][j] for i in range(cfg.rows))[self.row]))
        return m
