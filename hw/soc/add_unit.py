"""The residual add (SPEC section 8): two int8 tensors of the same shape, each with its own
multiplier, into a third, one 128-bit beat (16 channels of the activation layout) per cycle,
in three stages (the second input's beat beside the buffer read of its partner; the sums; the
rounded, saturated bytes).

The sequencer runs an ADD layer in chunks of at most `CHUNK_BEATS` beats: it reads the chunk of
the first input into this unit's buffer (``a_*``), then starts the unit (``start``, with the
chunk's output address and length) and reads the chunk of the second input into ``b``. The unit
issues the chunk's DMA write command and turns every ``b`` beat and the buffered beat of the
same index into an output beat:

    y = sat_int8((a * mult_a + b * mult_b + (1 << (shift - 1))) >> shift), then ReLU if ``relu``

per byte lane (channel padding is zero in both inputs and stays zero: the rounding term is less
than one step). `host.golden.residual_add` is the same arithmetic.

A fused add (issue 15: a conv with FUSE_ADD) uses the same lanes in stream mode (``stream_a``):
the first operand is the ``a`` stream (the output writer's beats) instead of the buffer, and
each ``a`` beat is paired with the ``b`` beat (the residual's) that arrives with it; the
writer's own command writes the sums.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.core.requant import ShiftControls, round_shift_saturate
from hw.soc.dma import ADDR_BITS, BEAT_BYTES, DATA_BITS, LENGTH_BITS, dma_command_layout

__all__ = ["AddUnit", "CHUNK_BEATS", "add_lane", "add_shift"]

#: Beats of the first input buffered per chunk (4 KiB).
CHUNK_BEATS = 256
#: Bits of a lane's sum a * mult_a + b * mult_b (int8 times 16-bit unsigned, twice).
SUM_BITS = 26


def add_shift(m, shift):
    """The shift's clamp and mask (`hw.core.requant.ShiftControls`), shared by the lanes;
    registered every cycle (the layer's shift is held from the descriptor on, long before the
    first beat)."""
    return ShiftControls(m, shift, SUM_BITS, name="add", en=1)


def add_lane(m, a, b, mult_a, mult_b, shift, relu, en=None):
    """One lane of the add: int8 `a`, `b` (signed values) -> the int8 result (a signal);
    `shift` is what `add_shift` returns. With `en` the sum is registered (taken when `en` is
    high) before the rounding shift: a pipeline stage between the products and the saturation."""
    total = Signal(signed(SUM_BITS))
    if en is None:
        m.d.comb += total.eq(a * mult_a + b * mult_b)
    else:
        with m.If(en):
            m.d.sync += total.eq(a * mult_a + b * mult_b)
    return round_shift_saturate(m, total, shift, relu, name="add")


class AddUnit(wiring.Component):
    """``a_en`` / ``a_addr`` / ``a_data``: a beat of the first input into the buffer. ``start``
    (one cycle, with ``base``, the chunk's output address, and ``length``, its bytes): issue the
    write command, then take ``b`` beats (in order; the buffered beat of the same index is the
    other operand) and send the sums on ``data``, one per cycle when the DMA keeps up. ``busy``
    from ``start`` until the last beat of the chunk has been handed over. With ``stream_a``
    (held for a layer) every ``a`` beat is added to the ``b`` beat taken with it (no command,
    no buffer); ``busy`` while a beat is in the unit.

    With ``chunks=False`` the unit has stream mode only (no buffer, no command; ``stream_a``,
    ``a_*``, ``start``, ``base`` and ``length`` are ignored): the second add unit of a fused
    add on two write channels (the output writer's side 1, `hw.soc.accelerator`)."""

    def __init__(self, chunks: bool = True):
        self._chunks = chunks
        super().__init__({
            "a_en": In(1), "a_addr": In(range(CHUNK_BEATS)), "a_data": In(DATA_BITS),
            "start": In(1), "base": In(ADDR_BITS), "length": In(LENGTH_BITS),
            "mult_a": In(16), "mult_b": In(16), "shift": In(8), "relu": In(1),
            "b": In(stream.Signature(DATA_BITS)),
            "stream_a": In(1), "a": In(stream.Signature(DATA_BITS)),
            "cmd": Out(stream.Signature(dma_command_layout())),
            "data": Out(stream.Signature(DATA_BITS)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        left = Signal(range(CHUNK_BEATS + 1))       # beats still to send
        index = Signal(range(CHUNK_BEATS))          # buffer index of the next b beat
        cmd_pending = Signal()
        stream_a = self.stream_a if self._chunks else Const(1, 1)
        if self._chunks:
            rd = self._chunk_buffer(m, left, index, cmd_pending)

        # Stage 1 holds a b beat while the buffer read of its partner completes; stage 2 holds
        # the lanes' sums (the products off the block RAM's output, registered); the output
        # register is stage 3. All move together whenever the output register can take a beat.
        # (stream mode: stage 1 holds an a beat beside its b beat; both move together)
        advance = ~self.data.valid | self.data.ready
        held, held_a = Signal(DATA_BITS), Signal(DATA_BITS)
        held_valid, sum_valid = Signal(), Signal()
        pair = self.b.valid & (self.a.valid | ~stream_a)
        m.d.comb += [self.b.ready.eq(advance & (self.a.valid | ~stream_a)),
                     self.a.ready.eq(advance & stream_a & self.b.valid)]
        with m.If(advance):
            m.d.sync += [held.eq(self.b.payload), held_a.eq(self.a.payload),
                         held_valid.eq(pair), sum_valid.eq(held_valid)]
            with m.If(pair):
                m.d.sync += index.eq(index + 1)
        first = Signal(DATA_BITS)
        if self._chunks:
            m.d.comb += [rd.addr.eq(index), rd.en.eq(advance),
                         first.eq(Mux(self.stream_a, held_a, rd.data))]
        else:
            m.d.comb += first.eq(held_a)
        shift = add_shift(m, self.shift)
        lanes = [add_lane(m, first[8 * i:8 * i + 8].as_signed(),
                          held[8 * i:8 * i + 8].as_signed(), self.mult_a, self.mult_b,
                          shift, self.relu, en=advance) for i in range(BEAT_BYTES)]
        with m.If(advance):
            m.d.sync += self.data.valid.eq(sum_valid)
            with m.If(sum_valid):
                m.d.sync += self.data.payload.eq(Cat(*lanes))
                with m.If(~stream_a):
                    m.d.sync += left.eq(left - 1)
        m.d.comb += self.busy.eq(cmd_pending | (left != 0) | held_valid | sum_valid
                                 | self.data.valid)
        return m

    def _chunk_buffer(self, m, left, index, cmd_pending):
        """The chunk mode's buffer of the first input and its write command; its read port."""
        m.submodules.buf = buf = Memory(shape=DATA_BITS, depth=CHUNK_BEATS, init=[])
        wr, rd = buf.write_port(), buf.read_port()
        m.d.comb += [wr.en.eq(self.a_en), wr.addr.eq(self.a_addr), wr.data.eq(self.a_data)]
        with m.If(self.start):
            m.d.sync += [cmd_pending.eq(1), index.eq(0),
                         left.eq((self.length + BEAT_BYTES - 1) >> 4),
                         self.cmd.payload.addr.eq(self.base),
                         self.cmd.payload.length.eq(self.length)]
        m.d.comb += self.cmd.valid.eq(cmd_pending)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += cmd_pending.eq(0)
        return rd
