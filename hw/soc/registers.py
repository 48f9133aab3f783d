"""Control and status registers on an AXI4-Lite slave (SPEC section 4).

The register map is defined once, here (`register_map`); the gateware (`Registers`), the host
driver and docs/registers.md (`registers_markdown`, written by scripts/gen_registers.py and checked
by a test) all come from it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import FORMAT_VERSION, SenseConfig

__all__ = ["Field", "Register", "ErrorCode", "register_map", "register", "id_values",
           "axi_lite_signature", "Registers", "registers_markdown", "MAGIC", "COUNTERS",
           "ADDR_BITS"]

MAGIC = int.from_bytes(b"SENS", "little")
ADDR_BITS = 8            # 256 bytes of register space
RESP_OKAY, RESP_SLVERR = 0, 2

#: Performance counters (64-bit each), in register order.
COUNTERS = ("cycles", "busy_cycles", "macs", "groups_issued", "groups_skipped",
            "dram_read_bytes", "dram_write_bytes")


class ErrorCode(enum.IntEnum):
    """STATUS.error_code: why a run stopped with an error."""
    NONE = 0
    BAD_MAGIC = 1           # the image header's magic is not "SENS"
    BAD_VERSION = 2         # another image format version
    HW_MISMATCH = 3         # the image was packed for other hardware (rows, cols, M, buffers)
    OUT_OF_WINDOW = 4       # an address the image or a descriptor names lies outside the window
    BAD_DESCRIPTOR = 5      # a layer descriptor is inconsistent (shape, kind, sizes)
    AXI_ERROR = 6           # DRAM answered a transaction with SLVERR or DECERR
    ABORTED = 7             # software wrote CTRL.abort
    MISALIGNED = 8          # IMAGE_BASE or ACT_BASE is not 64-byte aligned
    TOO_LARGE = 9           # a layer needs more on-chip buffer than this hardware has


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str             # "ro", "rw", "w1" (write 1 to act; reads 0), "w1c" (write 1 to clear)
    doc: str
    fields: tuple = ()


def register_map() -> list[Register]:
    regs = [
        Register("ID_MAGIC", 0x00, "ro", "\"SENS\" (0x534e4553), as the image magic",
                 (Field("magic", 0, 32, "0x534e4553"),)),
        Register("ID_GRID", 0x04, "ro", "elaboration parameters: format and grid",
                 (Field("format_version", 0, 8, "memory-image format version"),
                  Field("rows", 8, 8, "PE rows"), Field("cols", 16, 8, "PE columns"),
                  Field("group", 24, 8, "group size M"))),
        Register("ID_BUFFERS", 0x08, "ro", "elaboration parameters: sparsity and buffers",
                 (Field("sparse", 0, 1, "1 sparse core, 0 dense baseline"),
                  Field("ifm_kib_log2", 4, 4, "log2 of the IFM buffer size in KiB"),
                  Field("weight_kib_log2", 8, 4, "log2 of the weight buffer size in KiB"),
                  Field("ofm_kib_log2", 12, 4, "log2 of the output buffer size in KiB"),
                  Field("max_channels_log2", 16, 5, "log2 of the bias/requant memory depth"))),
        Register("ID_CLOCK", 0x0C, "ro", "target clock",
                 (Field("clock_mhz", 0, 16, "MHz"),)),
        Register("CTRL", 0x10, "w1", "control: write 1 to a bit to act",
                 (Field("start", 0, 1, "start a run of the image at IMAGE_BASE"),
                  Field("abort", 1, 1, "stop the run after the layer in progress (error "
                        "ABORTED)"))),
        Register("IRQ_ENABLE", 0x14, "rw", "interrupt enable",
                 (Field("done", 0, 1, "raise the interrupt when a run ends"),)),
        Register("STATUS", 0x18, "ro", "run status",
                 (Field("busy", 0, 1, "a run is in progress"),
                  Field("done", 1, 1, "the last run ended (cleared by start)"),
                  Field("error", 2, 1, "the last run ended with an error"),
                  Field("error_code", 8, 8, "ErrorCode of the last run"),
                  Field("layer", 16, 16, "layer being run, or where the error happened"))),
        Register("IRQ_STATUS", 0x1C, "w1c", "pending interrupt; write 1 to clear",
                 (Field("done", 0, 1, "a run ended"),)),
    ]
    addresses = [("IMAGE_BASE", "DRAM address of the memory image (64-byte aligned)"),
                 ("ACT_BASE", "DRAM address of the activation region (64-byte aligned)"),
                 ("WINDOW_BASE", "lowest DRAM address the accelerator may touch"),
                 ("WINDOW_SIZE", "bytes of the DMA window; nothing outside it is accessed")]
    for i, (name, doc) in enumerate(addresses):
        for half, lsb in (("LO", 0), ("HI", 32)):
            regs.append(Register(f"{name}_{half}", 0x20 + 8 * i + (4 if half == "HI" else 0),
                                 "rw", f"{doc}: bits {lsb + 31}..{lsb}",
                                 (Field(name.lower(), 0, 32, f"bits {lsb + 31}..{lsb}"),)))
    for i, name in enumerate(COUNTERS):
        for half in ("LO", "HI"):
            doc = ("low half; reading it latches the high half for the next HI read"
                   if half == "LO" else "high half, as latched by the last LO read")
            regs.append(Register(f"{name.upper()}_{half}", 0x40 + 8 * i + (4 if half == "HI"
                                                                              else 0), "ro", doc,
                                 (Field(name, 0, 32, doc),)))
    return regs


def register(name: str) -> Register:
    for reg in register_map():
        if reg.name == name:
            return reg
    raise KeyError(f"no register {name!r}")


def id_values(config: SenseConfig) -> dict:
    """The ID registers' values for a configuration (what the driver checks an image against)."""
    log2 = lambda v: v.bit_length() - 1  # noqa: E731
    return {
        "ID_MAGIC": MAGIC,
        "ID_GRID": FORMAT_VERSION | config.rows << 8 | config.cols << 16 | config.group << 24,
        "ID_BUFFERS": (int(config.sparse) | log2(config.ifm_kib) << 4
                       | log2(config.weight_kib) << 8 | log2(config.ofm_kib) << 12
                       | log2(config.max_channels) << 16),
        "ID_CLOCK": config.clock_mhz,
    }


def axi_lite_signature(addr_bits: int = ADDR_BITS, data_bits: int = 32) -> wiring.Signature:
    """AXI4-Lite, slave view (In = from the master). In Verilog a member `awaddr` of port
    `s_axil` is `s_axil__awaddr`."""
    return wiring.Signature({
        "awaddr": In(addr_bits), "awvalid": In(1), "awready": Out(1),
        "wdata": In(data_bits), "wstrb": In(data_bits // 8), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
        "araddr": In(addr_bits), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(data_bits), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
    })


class Registers(wiring.Component):
    """The register file behind an AXI4-Lite slave.

    Writes: the address and data channels are accepted independently; the write happens when both
    are held, then B answers OKAY, or SLVERR for an address with no writable register. Reads: one
    cycle after AR, R answers the register (OKAY) or 0 with SLVERR. One transaction of each kind
    at a time; every channel honours valid/ready. wstrb is honoured per byte for rw registers.

    To the accelerator: ``start`` and ``abort_req`` (one-cycle pulses), ``image_base``, ``act_base``,
    ``window_base``, ``window_size`` (64 bits). From it: ``busy``, ``done_pulse`` (a run ended),
    ``error_code`` (valid with done_pulse; 0 = success), ``layer``, and the counters.
    ``irq`` is IRQ_STATUS.done & IRQ_ENABLE.done.
    """

    def __init__(self, config: SenseConfig):
        self._config = config
        members = {
            "axil": Out(axi_lite_signature()),  # slave view: see axi_lite_signature
            "start": Out(1), "abort_req": Out(1), "irq": Out(1),
            "image_base": Out(64), "act_base": Out(64),
            "window_base": Out(64), "window_size": Out(64),
            "busy": In(1), "done_pulse": In(1), "error_code": In(8), "layer": In(16),
        }
        for name in COUNTERS:
            members[name] = In(64)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        regs = register_map()
        ids = id_values(self._config)
        bus = self.axil

        done = Signal()
        error = Signal()
        error_code = Signal(8)
        irq_enable = Signal()
        irq_pending = Signal()
        latched_hi = {name: Signal(32, name=f"{name}_hi_latch") for name in COUNTERS}
        m.d.comb += self.irq.eq(irq_enable & irq_pending)

        with m.If(self.done_pulse):
            m.d.sync += [done.eq(1), error.eq(self.error_code != 0),
                         error_code.eq(self.error_code), irq_pending.eq(1)]

        # -- reads ------------------------------------------------------------------------------
        values = {
            "CTRL": Const(0, 32), "IRQ_ENABLE": irq_enable, "IRQ_STATUS": irq_pending,
            "STATUS": Cat(self.busy, done, error, Const(0, 5), error_code, self.layer),
        }
        values.update({k: Const(v, 32) for k, v in ids.items()})
        for name, sig in (("IMAGE_BASE", self.image_base), ("ACT_BASE", self.act_base),
                          ("WINDOW_BASE", self.window_base), ("WINDOW_SIZE", self.window_size)):
            values[f"{name}_LO"], values[f"{name}_HI"] = sig[:32], sig[32:]
        for name in COUNTERS:
            values[f"{name.upper()}_LO"] = getattr(self, name)[:32]
            values[f"{name.upper()}_HI"] = latched_hi[name]

        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(RESP_SLVERR), bus.rdata.eq(0)]
            with m.Switch(bus.araddr[2:]):      # word address: the low bits select bytes
                for reg in regs:
                    with m.Case(reg.offset >> 2):
                        m.d.sync += [bus.rdata.eq(values[reg.name]), bus.rresp.eq(RESP_OKAY)]
                        counter = reg.name[:-3].lower()
                        if reg.name.endswith("_LO") and counter in COUNTERS:
                            m.d.sync += latched_hi[counter].eq(getattr(self, counter)[32:])
        with m.Elif(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)

        # -- writes -----------------------------------------------------------------------------
        aw_held = Signal()
        aw_addr = Signal(unsigned(ADDR_BITS))
        w_held = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        m.d.comb += [bus.awready.eq(~aw_held & ~bus.bvalid), bus.wready.eq(~w_held & ~bus.bvalid)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_held.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_held.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]

        def merged(old):
            return Cat(*(Mux(w_strb[i], w_data[8 * i:8 * i + 8], old[8 * i:8 * i + 8])
                         for i in range(4)))

        m.d.comb += [self.start.eq(0), self.abort_req.eq(0)]
        with m.If(aw_held & w_held):
            m.d.sync += [aw_held.eq(0), w_held.eq(0), bus.bvalid.eq(1), bus.bresp.eq(RESP_SLVERR)]
            with m.Switch(aw_addr[2:]):         # word address; wstrb selects the bytes
                for reg in regs:
                    if reg.access == "ro":
                        continue
                    with m.Case(reg.offset >> 2):
                        m.d.sync += bus.bresp.eq(RESP_OKAY)
                        if reg.name == "CTRL":
                            m.d.comb += [self.start.eq(w_strb[0] & w_data[0]),
                                         self.abort_req.eq(w_strb[0] & w_data[1])]
                        elif reg.name == "IRQ_ENABLE":
                            with m.If(w_strb[0]):
                                m.d.sync += irq_enable.eq(w_data[0])
                        elif reg.name == "IRQ_STATUS":
                            with m.If(w_strb[0] & w_data[0]):
                                m.d.sync += irq_pending.eq(0)
                        else:
                            target = values[reg.name]
                            m.d.sync += target.eq(merged(target))
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(self.start):
            m.d.sync += [done.eq(0), error.eq(0), error_code.eq(0)]
        return m


def registers_markdown() -> str:
    """docs/registers.md, generated from `register_map`."""
    lines = [
        "# Registers",
        "",
        "Generated by `python scripts/gen_registers.py` from `hw/registers.py` (`register_map`), "
        "the same definition the gateware is built from; `tests/test_registers.py` fails when "
        "this file is out of date.",
        "",
        "An AXI4-Lite slave (32-bit data, byte addresses, 256 bytes), on the ZCU102 behind the "
        "PS's HPM0 master. Reads of an unmapped address return 0 with SLVERR; writes to an "
        "unmapped or read-only address are ignored and answered with SLVERR. `wstrb` is honoured "
        "per byte. 64-bit values are LO/HI pairs; a counter's HI half is latched when its LO half "
        "is read, so LO then HI reads a consistent 64-bit value.",
        "",
        "Access: `ro` read-only, `rw` read-write, `w1` write 1 to a bit to act (reads 0), "
        "`w1c` write 1 to clear.",
        "",
        "| offset | name | access | fields | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for reg in register_map():
        fields = "; ".join(f"[{f.lsb + f.width - 1}:{f.lsb}] `{f.name}`" if f.width > 1
                           else f"[{f.lsb}] `{f.name}`" for f in reg.fields)
        lines.append(f"| 0x{reg.offset:02x} | `{reg.name}` | {reg.access} | {fields} | "
                     f"{reg.doc} |")
    lines += ["", "## Fields", ""]
    for reg in register_map():
        if len(reg.fields) > 1:
            lines.append(f"**{reg.name}**")
            lines.append("")
            for f in reg.fields:
                bits = f"{f.lsb + f.width - 1}:{f.lsb}" if f.width > 1 else f"{f.lsb}"
                lines.append(f"* [{bits}] `{f.name}`: {f.doc}")
            lines.append("")
    lines += ["## Error codes (STATUS.error_code)", "", "| code | name | meaning |",
              "| ---: | --- | --- |"]
    meanings = {
        "NONE": "the run succeeded", "BAD_MAGIC": "the image header's magic is not \"SENS\"",
        "BAD_VERSION": "the image has another format version",
        "HW_MISMATCH": "the image was packed for other hardware (rows, cols, M, buffers)",
        "OUT_OF_WINDOW": "an address the image or a descriptor names lies outside the DMA window; "
                         "no transaction was issued to it",
        "BAD_DESCRIPTOR": "a layer descriptor is inconsistent (kind, shape, block sizes)",
        "AXI_ERROR": "DRAM answered a transaction with SLVERR or DECERR",
        "ABORTED": "software wrote CTRL.abort; the run stopped after the layer in progress",
        "MISALIGNED": "IMAGE_BASE or ACT_BASE is not 64-byte aligned",
        "TOO_LARGE": "a layer needs more on-chip buffer than this hardware has: its input (or, "
                     "with max-pool, its convolution output) beyond one IFM bank, one k tile's "
                     "weights beyond the weight buffer, or, in the IFM-stationary order, all "
                     "its weights beyond the weight buffer",
    }
    for code in ErrorCode:
        lines.append(f"| {code.value} | `{code.name}` | {meanings[code.name]} |")
    return "\n".join(lines) + "\n"
