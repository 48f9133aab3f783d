"""The register map, as data (SPEC section 4).

Every register is a `Register` of `Field`s; a register's `layout` (an Amaranth
`data.StructLayout`, padded to 32 bits) and its `pack` / `unpack` come from the fields, so the
bit positions are written here and nowhere else: the gateware (`hw.soc.registers.Registers`,
`hw.soc.selftest`) builds its values from the layouts, the driver (`host.driver`) decodes with
`unpack`, `config_from_id` inverts `id_values`, and docs/registers.md is `registers_markdown()`
(written by scripts/gen_registers.py, checked by a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from hw.config import FORMAT_VERSION, ConfigError, SenseConfig

__all__ = ["Field", "Register", "ErrorCode", "ERROR_TEXT", "register_map", "register",
           "id_values", "config_from_id", "IdError", "registers_markdown", "MAGIC", "COUNTERS",
           "REGISTER_BYTES"]

MAGIC = int.from_bytes(b"SENS", "little")
#: Bytes of register space (the AXI4-Lite slave decodes this many address bits' worth).
REGISTER_BYTES = 256

#: Performance counters (64-bit each), in register order.
COUNTERS = ("cycles", "busy_cycles", "macs", "groups_issued", "groups_skipped",
            "dram_read_bytes", "dram_write_bytes")


class ErrorCode(enum.IntEnum, shape=8):
    """STATUS.error_code: why a run stopped with an error (meanings in `ERROR_TEXT`)."""
    NONE = 0
    BAD_MAGIC = 1
    BAD_VERSION = 2
    HW_MISMATCH = 3
    OUT_OF_WINDOW = 4
    BAD_DESCRIPTOR = 5
    AXI_ERROR = 6
    ABORTED = 7
    MISALIGNED = 8
    TOO_LARGE = 9
    UNSUPPORTED = 10


#: What each error code means: the docs' table and the driver's messages.
ERROR_TEXT = {
    ErrorCode.NONE: "the run succeeded",
    ErrorCode.BAD_MAGIC: "the image header's magic is not \"SENS\"",
    ErrorCode.BAD_VERSION: "the image has another format version",
    ErrorCode.HW_MISMATCH: "the image was packed for other hardware (rows, cols, M, buffers)",
    ErrorCode.OUT_OF_WINDOW: "an address the image or a descriptor names lies outside the DMA "
                             "window; no transaction was issued to it",
    ErrorCode.BAD_DESCRIPTOR: "a layer descriptor is inconsistent (kind, shape, block sizes)",
    ErrorCode.AXI_ERROR: "DRAM answered a transaction with SLVERR or DECERR",
    ErrorCode.ABORTED: "software wrote CTRL.abort; the run stopped after the layer in progress",
    ErrorCode.MISALIGNED: "IMAGE_BASE or ACT_BASE is not 64-byte aligned",
    ErrorCode.TOO_LARGE: "a layer needs more on-chip buffer than this hardware has: a band of "
                         "its input (or a pool band of the map its pool pass reads) beyond the "
                         "IFM store as placed, one k tile's weights (an input-channel block's: "
                         "all of them) beyond the weight buffer, in the IFM-stationary order "
                         "all its weights beyond the weight buffer, "
                         "or an average-pooling window beyond the pool unit's divisors",
    ErrorCode.UNSUPPORTED: "a layer needs hardware this gateware does not have: weight "
                           "blocks, a dilated pooling window, a max-pool that "
                           "counts its padding, a max-pool after a concat's channel range, or "
                           "a stride other than 1, 2, 4, 8",
}


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

    @cached_property
    def layout(self) -> data.StructLayout:
        """The register's 32 bits as a layout: its fields, and `_rsvdN` for the gaps."""
        members, at = {}, 0
        for f in sorted(self.fields, key=lambda f: f.lsb):
            if f.lsb > at:
                members[f"_rsvd{at}"] = unsigned(f.lsb - at)
            members[f.name] = unsigned(f.width)
            at = f.lsb + f.width
        if at < 32:
            members[f"_rsvd{at}"] = unsigned(32 - at)
        return data.StructLayout(members)

    def pack(self, **values) -> int:
        """The register's value with these fields (the others 0); each value range-checked."""
        word = 0
        for f in self.fields:
            v = int(values.pop(f.name, 0))
            if not 0 <= v < 1 << f.width:
                raise ValueError(f"{self.name}.{f.name} must fit {f.width} bits, not {v}")
            word |= v << f.lsb
        if values:
            raise KeyError(f"{self.name} has no field {', '.join(values)}")
        return word

    def unpack(self, word: int) -> dict:
        """{field: value} of a value read from the register."""
        return {f.name: (int(word) >> f.lsb) & ((1 << f.width) - 1) for f in self.fields}


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
                  Field("dsp_pairs", 1, 1, "1 two PEs per multiplier (PE pairs)"),
                  Field("weight_port", 2, 1, "1 weights read on their own AXI port (m_axi_w)"),
                  Field("write_port", 3, 1,
                        "1 the output writer writes half of every tile on m_axi_w too"),
                  Field("ifm_kib_log2", 4, 4, "log2 of the IFM buffer size in KiB"),
                  Field("weight_kib_log2", 8, 4, "log2 of the weight buffer size in KiB"),
                  Field("ofm_kib_log2", 12, 4, "log2 of the output buffer size in KiB"),
                  Field("max_channels_log2", 16, 5, "log2 of the bias/requant memory depth"),
                  Field("pool_width_log2", 21, 3,
                        "log2 of the window taps the pool pass reads a cycle (pool_width)"),
                  Field("acc_width", 24, 6, "bits of the grid's accumulators (acc_width)"))),
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


_BY_NAME: dict[str, Register] = {}


def register(name: str) -> Register:
    if not _BY_NAME:
        _BY_NAME.update((reg.name, reg) for reg in register_map())
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no register {name!r}") from None


def _log2(v: int) -> int:
    return v.bit_length() - 1


def id_values(config: SenseConfig) -> dict:
    """The ID registers' values for a configuration (what the driver checks an image against)."""
    return {
        "ID_MAGIC": register("ID_MAGIC").pack(magic=MAGIC),
        "ID_GRID": register("ID_GRID").pack(format_version=FORMAT_VERSION, rows=config.rows,
                                            cols=config.cols, group=config.group),
        "ID_BUFFERS": register("ID_BUFFERS").pack(
            sparse=int(config.sparse), dsp_pairs=int(config.dsp_pairs),
            weight_port=int(config.weight_port), write_port=int(config.write_port),
            ifm_kib_log2=_log2(config.ifm_kib),
            weight_kib_log2=_log2(config.weight_kib), ofm_kib_log2=_log2(config.ofm_kib),
            max_channels_log2=_log2(config.max_channels),
            pool_width_log2=_log2(config.pool_width), acc_width=config.acc_width),
        "ID_CLOCK": register("ID_CLOCK").pack(clock_mhz=config.clock_mhz),
    }


class IdError(ValueError):
    """The ID registers do not describe a Sense accelerator this software can drive."""


def config_from_id(ids: dict, clock_mhz: int | None = None) -> SenseConfig:
    """The SenseConfig the ID registers describe: the inverse of `id_values`."""
    if ids["ID_MAGIC"] != MAGIC:
        raise IdError(f"no Sense accelerator at this address: ID_MAGIC reads "
                      f"{ids['ID_MAGIC']:#010x}, expected {MAGIC:#010x}")
    grid = register("ID_GRID").unpack(ids["ID_GRID"])
    buffers = register("ID_BUFFERS").unpack(ids["ID_BUFFERS"])
    if grid["format_version"] != FORMAT_VERSION:
        raise IdError(f"the accelerator speaks image format {grid['format_version']}, this "
                      f"driver {FORMAT_VERSION}")
    try:
        return _id_config(grid, buffers, clock_mhz or register("ID_CLOCK").unpack(
            ids["ID_CLOCK"])["clock_mhz"])
    except ConfigError as e:
        raise IdError(f"the ID registers name impossible hardware: {e}") from None


def _id_config(grid: dict, buffers: dict, clock_mhz: int) -> SenseConfig:
    return SenseConfig(rows=grid["rows"], cols=grid["cols"], group=grid["group"],
                       sparse=bool(buffers["sparse"]), dsp_pairs=bool(buffers["dsp_pairs"]),
                       weight_port=bool(buffers["weight_port"]),
                       write_port=bool(buffers["write_port"]),
                       ifm_kib=1 << buffers["ifm_kib_log2"],
                       weight_kib=1 << buffers["weight_kib_log2"],
                       ofm_kib=1 << buffers["ofm_kib_log2"],
                       max_channels=1 << buffers["max_channels_log2"],
                       pool_width=1 << buffers["pool_width_log2"],
                       acc_width=buffers["acc_width"], clock_mhz=clock_mhz)


def registers_markdown() -> str:
    """docs/registers.md, generated from `register_map`."""
    lines = [
        "# Registers",
        "",
        "Generated by `python scripts/gen_registers.py` from `hw/regmap.py` (`register_map`), "
        "the same definition the gateware, the driver and the self-test checker are built from; "
        "`gateware_tests/test_registers.py` fails when this file is out of date.",
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
    for code in ErrorCode:
        lines.append(f"| {code.value} | `{code.name}` | {ERROR_TEXT[code]} |")
    return "\n".join(lines) + "\n"
