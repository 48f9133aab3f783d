"""The rows x cols systolic PE grid with its result capture and drain chain."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import SenseConfig
from .layouts import ifm_layout, weight_op_layout
from .pe import PE

__all__ = ["Grid"]


class Grid(wiring.Component):
    """rows x cols PEs, output stationary: PE(i, j) accumulates output channel k0+i, pixel p0+j.

    Weight operations for row i enter at column 0 on ``w_in[i]`` and move one column per cycle;
    IFM lanes for column j enter at row 0 on ``x_in[j]`` and move one row per cycle. The caller
    skews them (row i delayed i cycles, column j delayed j cycles) so that matching operands meet.

    Results: when PE(i, j) finishes an output (its ``done``), its accumulator is copied into the
    result register R(i, j), so the accumulators go straight on with the next tile (double
    buffering). ``corner_done`` is PE(rows-1, cols-1)'s ``done``: the last PE to finish, so when it
    rises every R holds the tile. Each cycle ``shift`` is high, the R rows move down by one:
    ``bottom`` shows R(rows-1, :) and after ``rows`` shifts every row has been out, bottom row first.
    The caller must not shift while a tile is being captured, nor let a tile finish before the
    previous one has been shifted out (the core's sequencer guarantees both).
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        super().__init__({
            "w_in": In(data.ArrayLayout(weight_op_layout(config), config.rows)),
            "x_in": In(data.ArrayLayout(ifm_layout(config), config.cols)),
            "shift": In(1),
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
        result = [[Signal(signed(cfg.acc_width), name=f"r_{i}_{j}") for j in range(cfg.cols)]
                  for i in range(cfg.rows)]
        for i in range(cfg.rows):
            for j in range(cfg.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.w_in.eq(self.w_in[i] if j == 0 else pes[i][j - 1].w_out),
                    pe.x_in.eq(self.x_in[j] if i == 0 else pes[i - 1][j].x_out),
                ]
                with m.If(pe.done):
                    m.d.sync += result[i][j].eq(pe.acc)
                with m.Elif(self.shift):
                    m.d.sync += result[i][j].eq(result[i - 1][j] if i else 0)
        m.d.comb += self.corner_done.eq(pes[-1][-1].done)
        for j in range(cfg.cols):
            m.d.comb += self.bottom[j].eq(result[-1][j])
        return m
