"""A self-contained accelerator system: Sense, its memory in block RAM, and a controller that
runs a network and checks the result. It needs no processor and no DRAM, so it runs on any FPGA
board with a few LEDs (`constraints.ulx3s.Ulx3sTop`), and it is simulated like any other block.

`SelfTest(config, memory, writes, check_offset, expected)`:

* `memory`: the initial memory contents (the packed image, the input, zeros for activations),
  served by an `AxiRam` of `mem_size` bytes at address 0;
* `writes`: the register writes (offset, value) that start a run, in order, the last one being
  CTRL.start: the driver's own sequence (`host.driver.RecordingBackend` records it);
* `check_offset`, `expected`, `mask`: where the network's output lands, the bytes it must hold,
  and which of them are checked (a 0 mask byte is not: padding channels).

After reset the controller writes the input back into the memory (the layers overwrite it in
place, so every run restores it from its own ROM), makes the writes on the accelerator's AXI4-Lite port, polls STATUS
until the run ends, then compares the output with `expected` beat by beat through the memory's
second read port. ``passed`` or ``failed`` then stays high (``error_code`` holds STATUS's
error code if the run failed); a pulse on ``rerun`` starts the run again (the input, then CTRL.start only).
``runs`` counts completed runs.
"""

from __future__ import annotations

import hashlib

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.regmap import register
from hw.soc.accelerator import Accelerator
from hw.soc.axi_ram import AxiRam
from hw.soc.dma import BEAT_BYTES, DATA_BITS

__all__ = ["SelfTest"]


def _beats(offset: int, data: bytes, mask: bytes, width: int):
    """The 16-byte beats covering [offset, offset + len(data)): (first beat, values, masks).
    A byte is in a beat's mask when its `mask` byte is not 0; `width` mask bits per byte (8: a
    bit mask, 1: byte strobes)."""
    first = offset // BEAT_BYTES
    last = -(-(offset + len(data)) // BEAT_BYTES)
    values, masks = [], []
    for beat in range(first, last):
        value = beat_mask = 0
        for byte in range(BEAT_BYTES):
            at = beat * BEAT_BYTES + byte - offset
            if 0 <= at < len(data) and mask[at]:
                value |= data[at] << 8 * byte
                beat_mask |= ((1 << width) - 1) << width * byte
        values.append(value)
        masks.append(beat_mask)
    return first, values, masks


class SelfTest(wiring.Component):
    def __init__(self, config: SenseConfig, *, memory: bytes, mem_size: int,
                 writes: list[tuple[int, int]], check_offset: int, expected: bytes,
                 mask: bytes | None = None, input_offset: int = 0, input_bytes: bytes = b""):
        if not writes or writes[-1] != (register("CTRL").offset, register("CTRL").pack(start=1)):
            raise ValueError("the register writes must end with CTRL.start")
        mask = bytes(b"\xff" * len(expected)) if mask is None else bytes(mask)
        if len(mask) != len(expected):
            raise ValueError("expected and mask differ in length")
        if check_offset < 0 or check_offset + len(expected) > mem_size or not expected:
            raise ValueError(f"the checked range [{check_offset}, "
                             f"{check_offset + len(expected)}) is empty or outside the memory")
        self._args = dict(memory=bytes(memory), mem_size=mem_size, writes=list(writes),
                          check_offset=check_offset, expected=bytes(expected), mask=mask,
                          input_offset=input_offset, input_bytes=bytes(input_bytes))
        self.config = config
        self.memory, self.mem_size = bytes(memory), mem_size
        self.writes = list(writes)
        self.check_offset, self.expected, self.mask = check_offset, bytes(expected), mask
        if input_offset < 0 or input_offset + len(input_bytes) > mem_size:
            raise ValueError("the input lies outside the memory")
        self.input_offset, self.input_bytes = input_offset, bytes(input_bytes)
        self.first_beat, values, masks = _beats(check_offset, expected, mask, 8)
        self.beats = len(values)
        self._expected = [v | m << DATA_BITS for v, m in zip(values, masks)]
        self.input_beat, values, strobes = _beats(input_offset, input_bytes,
                                                  b"\x01" * len(input_bytes), 1)
        self._input = [v | m << DATA_BITS for v, m in zip(values, strobes)]
        super().__init__({
            "rerun": In(1),
            "busy": Out(1), "passed": Out(1), "failed": Out(1),
            "error_code": Out(8), "runs": Out(8),
        })

    def changed(self, **changes) -> "SelfTest":
        """The same system with some constructor arguments changed (for tests)."""
        return SelfTest(self.config, **{**self._args, **changes})

    def key(self) -> str:
        """A short hash of everything that defines this system besides its configuration."""
        text = repr(sorted(self._args.items())).encode()
        return hashlib.sha256(text).hexdigest()[:12]

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = Accelerator(self.config)
        m.submodules.ram = ram = AxiRam(self.mem_size, self.memory,
                                        read_ports=2 if self.config.weight_port else 1,
                                        write_ports=2 if self.config.write_port else 1)
        wiring.connect(m, accel.m_axi, ram.axi)
        if self.config.weight_port:
            wiring.connect(m, accel.m_axi_w, ram.axi_w)
        m.d.comb += self.busy.eq(accel.busy)
        lite = accel.s_axil

        n = len(self.writes)
        addrs = Array(Const(a, len(lite.awaddr)) for a, _ in self.writes)
        datas = Array(Const(v, 32) for _, v in self.writes)
        index = Signal(range(n))
        aw_done = Signal()
        w_done = Signal()
        status = register("STATUS")
        check = Signal(range(self.beats + 1))
        # (at least two entries: a one-entry memory would have a zero-width address)
        m.submodules.expected = expected = Memory(shape=2 * DATA_BITS,
                                                  depth=max(2, self.beats), init=self._expected)
        want = expected.read_port()
        comparing = Signal()
        m.d.comb += [want.addr.eq(check), ram.peek_addr.eq(self.first_beat + check)]
        rerun_seen = Signal()
        m.d.sync += rerun_seen.eq(self.rerun)
        # The input, written back before every run (the layers overwrite it in place).
        n_input = max(1, len(self._input))
        m.submodules.input_rom = input_rom = Memory(shape=DATA_BITS + BEAT_BYTES,
                                                    depth=max(2, n_input),
                                                    init=self._input)
        restore = input_rom.read_port(domain="comb")
        put = Signal(range(n_input + 1))
        m.d.comb += restore.addr.eq(put)

        with m.FSM():
            with m.State("RESTORE"):
                done_restoring = put == len(self._input)
                with m.If(~done_restoring):
                    m.d.comb += [ram.poke_addr.eq(self.input_beat + put),
                                 ram.poke_data.eq(restore.data[:DATA_BITS]),
                                 ram.poke_strb.eq(restore.data[DATA_BITS:])]
                    m.d.sync += put.eq(put + 1)
                with m.Else():
                    m.d.sync += put.eq(0)
                    m.next = "WRITE"
            with m.State("WRITE"):
                aw_hs = lite.awvalid & lite.awready
                w_hs = lite.wvalid & lite.wready
                m.d.comb += [lite.awaddr.eq(addrs[index]), lite.awvalid.eq(~aw_done),
                             lite.wdata.eq(datas[index]), lite.wstrb.eq(0xF),
                             lite.wvalid.eq(~w_done)]
                m.d.sync += [aw_done.eq(aw_done | aw_hs), w_done.eq(w_done | w_hs)]
                with m.If((aw_done | aw_hs) & (w_done | w_hs)):
                    m.next = "WRITE_RESP"
            with m.State("WRITE_RESP"):
                m.d.comb += lite.bready.eq(1)
                with m.If(lite.bvalid):
                    m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                    with m.If(index == n - 1):
                        m.next = "POLL"
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
                        m.next = "WRITE"
            with m.State("POLL"):
                m.d.comb += [lite.araddr.eq(status.offset), lite.arvalid.eq(1)]
                with m.If(lite.arready):
                    m.next = "POLL_RESP"
            with m.State("POLL_RESP"):
                m.d.comb += lite.rready.eq(1)
                with m.If(lite.rvalid):
                    st = status.layout(lite.rdata)
                    with m.If(st.error):
                        m.d.sync += [self.error_code.eq(st.error_code),
                                     self.runs.eq(self.runs + 1)]
                        m.next = "FAIL"
                    with m.Elif(st.done & ~st.busy):
                        m.d.sync += [check.eq(0), comparing.eq(0), self.runs.eq(self.runs + 1)]
                        m.next = "CHECK"
                    with m.Else():
                        m.next = "POLL"
            with m.State("CHECK"):
                # Beat `check` is addressed this cycle; the one before it is compared.
                m.d.sync += [check.eq(check + 1), comparing.eq(1)]
                data, mask = want.data[:DATA_BITS], want.data[DATA_BITS:]
                with m.If(comparing & ((ram.peek_data ^ data) & mask).any()):
                    m.next = "FAIL"
                with m.Elif(check == self.beats):
                    m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += self.passed.eq(1)
                with m.If(self.rerun & ~rerun_seen):
                    m.d.sync += index.eq(n - 1)
                    m.next = "RESTORE"
            with m.State("FAIL"):
                m.d.comb += self.failed.eq(1)
                with m.If(self.rerun & ~rerun_seen):
                    m.d.sync += [index.eq(n - 1), self.error_code.eq(0)]
                    m.next = "RESTORE"
        return m
