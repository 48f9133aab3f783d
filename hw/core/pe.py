"""The processing element of the sparse systolic grid (SPEC section 4)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.layouts import ifm_layout, weight_op_layout

__all__ = ["PE", "PEPair"]


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
    COLUMNS = 1

    def __init__(self, config: SenseConfig):
        if not isinstance(config, SenseConfig):
            raise TypeError(f"config must be a SenseConfig, not {config!r}")
        self._config = config
        n = self.COLUMNS     # per column: one PE's IFM lanes, IFM outputs and accumulator
        per_column = ((lambda shape: shape) if n == 1 else
                      (lambda shape: data.ArrayLayout(shape, n)))
        super().__init__({
            "w_in": In(weight_op_layout(config)),
            "x_in": In(per_column(ifm_layout(config))),
            "w_out": Out(weight_op_layout(config)),
            "x_out": Out(per_column(ifm_layout(config))),
            "acc": Out(per_column(signed(config.acc_width))),
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


class PEPair(PE):
    """Two PEs of one grid row, columns 2k and 2k+1, on one multiplier (``config.dsp_pairs``).

    The two PEs multiply the same weight operation: column 2k in cycle t, column 2k+1 in t+1.
    The pair delays column 2k's operands by the one cycle they take to reach column 2k+1
    anyway, then makes both products with one 27 x 8 multiply (a DSP48E2 is 27 x 18):

        A = (xa - [xb < 0]) * 2^18 + (xb mod 2^18)  =  xa * 2^18 + xb     (27 bits)
        P = A * w  =  xa*w * 2^18 + xb*w                                   (35 bits)

    ``xb*w`` is P's low 18 bits read as signed (|xb*w| <= 2^14), and ``xa*w`` is P's upper
    bits plus bit 17 (the borrow the negative low product took from them), which enters the
    accumulator's adder as its carry-in. The weight's position selects both IFM values.

    Ports: as two PEs side by side. ``w_in`` (column 2k's), ``x_in[k]`` (column 2k+k's);
    ``w_out`` is ``w_in`` two cycles later (column 2k+1's ``w_out``), ``x_out[k]`` is ``x_in[k]``
    one cycle later; ``acc[k]`` and one ``done``, for both columns at once: column 2k+1 on a
    lone PE's timing (``LATENCY`` after its last operation), column 2k one cycle after it.
    """

    COLUMNS = 2

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        dw = cfg.data_width

        w = Signal(weight_op_layout(cfg))        # the operation between the two columns
        m.d.sync += [w.eq(self.w_in), self.w_out.eq(w),
                     self.x_out[0].eq(self.x_in[0]), self.x_out[1].eq(self.x_in[1])]
        x0 = self.x_out[0]                       # column 2k's IFM, a cycle late like w
        pick = (lambda x: x[w.pos]) if cfg.pos_width else (lambda x: x[0])
        xa, xb = pick(x0), pick(self.x_in[1])

        low = 2 * dw + 2                         # 18: the low product's field
        a = Signal(signed(low + dw + 1))         # 27 bits
        m.d.comb += a.eq(Cat(_sext(xb, low), (xa.as_signed() - xb[dw - 1])[:dw + 1]).as_signed())
        product = Signal(signed(low + 2 * dw + 1))   # 35 bits
        first, last = Signal(), Signal()
        m.d.sync += [product.eq(a * w.value), first.eq(w.first), last.eq(w.last)]

        acc_w = cfg.acc_width
        base = [acc & ~first.replicate(acc_w) for acc in self.acc]   # 0 when an output starts
        # Column 2k: upper bits + borrow, as one two-operand add whose lowest bit makes the
        # borrow the carry into bit 0: (2 base + b) + (2 p + 1) = 2 (base + p + b) + (1 - b).
        upper = Cat(product[low - 1], base[0]) + Cat(1, _sext(product[low:], acc_w))
        m.d.sync += [self.acc[0].eq(upper[1:acc_w + 1]),
                     self.acc[1].eq(base[1].as_signed() + product[:low].as_signed())]
        m.d.sync += self.done.eq(last)
        return m


def _sext(value, width):
    """`value` (signed) sign-extended to `width` bits, as raw bits."""
    v = value.as_signed()
    return Cat(v, v[-1].replicate(width - len(v)))
