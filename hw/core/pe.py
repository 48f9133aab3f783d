"""The processing element of the sparse systolic grid (SPEC section 4)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.layouts import ifm_layout, weight_op_layout

__all__ = ["PE"]


class PE(wiring.Component):
    """One output-stationary multiply-accumulate cell.

    Weight operations (int8 value, log2(M)-bit position, first, last) arrive from the left
    neighbour on ``w_in``; the M IFM values of the current group arrive from above on ``x_in``.
    The PE selects the IFM at the weight's position, multiplies and accumulates, and passes both
    operands on unchanged, registered, on ``w_out`` / ``x_out``: one cycle per hop, so the grid's
    systolic skew is one cycle per row and per column. In the dense baseline (``sparse=False``)
    ``x_in`` holds one value and there is no position and no select mux.

    Ports
    -----
    w_in : In(weight_op_layout(config))
    x_in : In(ifm_layout(config))
    w_out, x_out : Out, the inputs delayed by exactly one cycle.
    acc : Out(signed(acc_width)), the accumulator register (wraps at int32; the packer keeps every
        legal layer inside the bound, see ``host.golden.acc_bound``).
    done : Out(1), high for exactly one cycle, when ``acc`` holds the completed sum of an output
        whose ``last`` operation entered ``LATENCY`` cycles earlier.

    Timing
    ------
    Throughput one operation per cycle, no stall. An operation presented on ``w_in`` / ``x_in`` in
    cycle t is in ``acc`` from cycle t + LATENCY on: one stage registers the product (so the select
    mux and the multiplier own a cycle, and map to a DSP48E2 with its M register), one accumulates.
    ``first`` makes the accumulator load the product instead of adding it, so consecutive outputs
    need no clear cycle between them; a bubble is an operation with value 0 and neither flag.
    """

    LATENCY = 2

    def __init__(self, config: SenseConfig):
        if not isinstance(config, SenseConfig):
            raise TypeError(f"config must be a SenseConfig, not {config!r}")
        self._config = config
        super().__init__({
            "w_in": In(weight_op_layout(config)),
            "x_in": In(ifm_layout(config)),
            "w_out": Out(weight_op_layout(config)),
            "x_out": Out(ifm_layout(config)),
            "acc": Out(signed(config.acc_width)),
            "done": Out(1),
        })

    @property
    def config(self) -> SenseConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config

        m.d.sync += [
            self.w_out.eq(self.w_in),
            self.x_out.eq(self.x_in),
        ]

        ifm = self.x_in[self.w_in.pos] if cfg.pos_width else self.x_in[0]
        product = Signal(signed(2 * cfg.data_width))
        first = Signal()
        last = Signal()
        m.d.sync += [
            product.eq(self.w_in.value * ifm),
            first.eq(self.w_in.first),
            last.eq(self.w_in.last),
        ]

        base = self.acc & ~first.replicate(cfg.acc_width)  # 0 when a new output starts
        m.d.sync += [
            self.acc.eq(base.as_signed() + product),
            self.done.eq(last),
        ]
        return m
