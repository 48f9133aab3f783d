"""Output stage: bias, requantization, saturation and ReLU of drained accumulator rows."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import INT32_BITS, SenseConfig
from hw.core.requant import ShiftControls, round_shift_saturate
from hw.layouts import acc_row_layout, ofm_row_layout, param_layout, psum_row_layout

__all__ = ["OutputStage", "STAGES"]

#: Pipeline stages from a drained row to the int8 row (`OutputStage`; the exact core model,
#: host.perf, reads it): parameter read, bias add, multiply, window select, round and saturate.
STAGES = 5


class OutputStage(wiring.Component):
    """Turns one accumulator row (cols accumulators of one output channel, the grid's
    `acc_width` bits each, sign-extended to int32 on entry) into cols int8 outputs.

    ``y = relu?(sat_int8((acc + bias) * mult + (1 << (shift - 1))) >> shift))`` exactly as
    ``host.golden`` (add_bias, requantize, relu), with bias/mult/shift per output channel read
    from the parameter memory (``max_channels`` entries, written through ``par_wr_*``).

    Streams: ``i`` (acc_row_layout) in, ``o`` (ofm_row_layout) out, valid/ready on both.
    `STAGES` pipeline stages (parameter read, bias add, multiply, the requantization's window
    select, rounding and saturation), all advancing together when ``o`` can take a row:
    throughput one row per cycle, latency `STAGES` cycles,
    back-pressure on ``o`` stalls the whole pipeline and then ``i``. ``busy`` is high while any
    stage holds a row.

    Input-channel blocks (held for a whole run): with ``psum_in`` every row waits for a row of
    partial sums on ``psum_i`` and adds it to its accumulators (in stage 1, in int32); with
    ``psum_out`` the row leaves stage 1 on ``psum_o`` as int32 partial sums (no bias, no requantization) and nothing reaches ``o``.
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        self._addr_bits = (config.max_channels - 1).bit_length()
        super().__init__({
            "i": In(stream.Signature(acc_row_layout(config))),
            "o": Out(stream.Signature(ofm_row_layout(config))),
            "psum_i": In(stream.Signature(psum_row_layout(config))),
            "psum_o": Out(stream.Signature(psum_row_layout(config))),
            "psum_in": In(1), "psum_out": In(1),
            "relu": In(1),
            "par_wr_addr": In(unsigned(self._addr_bits)),
            "par_wr_data": In(param_layout(config)),
            "par_wr_en": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        # (the grid's accumulators are `acc_width` bits; from stage 1 on the sums are int32)
        cols, acc_w = cfg.cols, INT32_BITS

        m.submodules.params = params = Memory(shape=param_layout(cfg), depth=cfg.max_channels,
                                              init=[])
        wr = params.write_port()
        rd = params.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(self.par_wr_addr), wr.data.eq(self.par_wr_data),
                     wr.en.eq(self.par_wr_en)]

        advance = Signal()
        # A row enters when the pipeline advances and, with psum_in, its partial sums are there.
        enter = Signal()
        m.d.comb += [enter.eq(self.i.valid & (~self.psum_in | self.psum_i.valid)),
                     self.i.ready.eq(advance & (~self.psum_in | self.psum_i.valid)),
                     self.psum_i.ready.eq(advance & self.i.valid & self.psum_in)]

        header = data.StructLayout({k: v.shape for k, v in ofm_row_layout(cfg)
                                    if k != "data"})

        def stage(name, layout):
            return (Signal(name=f"{name}_valid"), Signal(header, name=f"{name}_hdr"),
                    Signal(layout, name=name))

        # Stage 1: the parameter memory is read (data valid in stage 1), the row registered.
        v1, h1, acc1 = stage("s1", data.ArrayLayout(signed(acc_w), cols))
        m.d.comb += [rd.addr.eq(self.i.payload.channel), rd.en.eq(advance)]
        # Stage 2: accumulator + bias (int32; the packer keeps it in range, SPEC section 2).
        v2, h2, sum2 = stage("s2", data.ArrayLayout(signed(acc_w), cols))
        mult2 = Signal(unsigned(16))
        shift2 = Signal(unsigned(6))
        # Stage 3: * mult, exact in 48 bits signed (int32 times a 16-bit unsigned multiplier).
        v3, h3, prod3 = stage("s3", data.ArrayLayout(signed(acc_w + 16), cols))

        m.d.comb += [advance.eq((~self.o.valid | self.o.ready)
                                & (~self.psum_o.valid | self.psum_o.ready)),
                     self.psum_o.valid.eq(v1 & self.psum_out), self.psum_o.payload.eq(acc1)]
        # Stage 4: the requantization's window select (hw.core.requant), one shift for the
        # row: its clamp and mask registered with stage 3 (from stage 2's shift); the rounding
        # and saturation from stage 4's registers into the output register (stage 5).
        controls = ShiftControls(m, shift2, acc_w + 16, name="out", en=advance)
        results = [round_shift_saturate(m, prod3[j], controls, self.relu, name=f"out{j}",
                                        en=advance)
                   for j in range(cols)]
        v4, h4 = Signal(name="s4_valid"), Signal(header, name="s4_hdr")
        partial = Mux(self.psum_in, self.psum_i.payload.as_value(), 0)
        with m.If(advance):
            m.d.sync += [
                v1.eq(enter),
                *(getattr(h1, name).eq(getattr(self.i.payload, name)) for name, _ in header),
                *(acc1[j].eq((self.i.payload.acc[j] + partial[j * acc_w:(j + 1) * acc_w]
                              .as_signed())[:acc_w].as_signed()) for j in range(cols)),
                v2.eq(v1 & ~self.psum_out), h2.eq(h1), mult2.eq(rd.data.mult), shift2.eq(rd.data.shift),
                v3.eq(v2), h3.eq(h2), v4.eq(v3), h4.eq(h3),
                self.o.valid.eq(v4),
                *(getattr(self.o.payload, name).eq(getattr(h4, name)) for name, _ in header),
            ]
            for j in range(cols):
                total = (acc1[j] + rd.data.bias)[:acc_w].as_signed()
                m.d.sync += [
                    sum2[j].eq(total),
                    prod3[j].eq(sum2[j] * mult2),
                    self.o.payload.data[j].eq(results[j]),
                ]

        m.d.comb += self.busy.eq(v1 | v2 | v3 | v4 | self.o.valid)
        return m
