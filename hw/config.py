"""The one configuration object of Sense.

`SenseConfig` holds every elaboration parameter: grid size, group size M, data and accumulator
widths, buffer sizes, clock. The gateware, the host packer, the performance model and the
generated docs all read it; nothing else repeats these numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

__all__ = ["SenseConfig", "ConfigError", "PRESETS", "FORMAT_VERSION", "BEAT_BYTES",
           "LANE_BITS", "BLOCK_ALIGN", "MAX_BURST", "BURST_BOUNDARY"]

#: Version of the memory-image format (SPEC section 5) that this gateware and packer speak.
FORMAT_VERSION = 2

#: Bytes of one AXI beat of the DMA port (128-bit, the ZCU102's HP ports): the unit of every DRAM
#: transfer, of an IFM bank line and of an output bank line.
BEAT_BYTES = 16
#: Address bits that pick a byte inside a beat (log2 BEAT_BYTES).
LANE_BITS = BEAT_BYTES.bit_length() - 1
#: Every block of the memory image starts on a multiple of this many bytes.
BLOCK_ALIGN = 64
#: Longest AXI burst the DMA issues, in beats, and the boundary no burst crosses (AXI4: 4 KiB).
MAX_BURST = 16
BURST_BOUNDARY = 4096
#: Pixels (IFM banks) the pool pass reads in one cycle by default (`SenseConfig.pool_width`), one
#: line of each: a 3x3 window row in two cycles instead of three. `zcu102` reads 8 (a 3x3 row
#: in one cycle, or two when it straddles an aligned group of 8): since Yosys counts wide muxes
#: into MUXF7/F8 (`hw.synth.WIDEMUX`) its LUTs fit (docs/architecture.md, "Pool pass", has the
#: figures and the commands behind them).
POOL_TAPS = 2
#: The pool pass's read widths (taps per cycle) a configuration may ask for.
POOL_WIDTHS = (1, 2, 4, 8, 16)

GROUP_SIZES = (2, 4, 8, 16)
GRID_RANGE = range(1, 65)
DATA_WIDTHS = (8,)  # SPEC section 2: signed int8 activations and weights
#: The grid's accumulator widths (SPEC section 2: int32 arithmetic; a narrower accumulator is
#: exact for every layer the packer accepts, `host.golden.grid_acc_bound`).
ACC_WIDTHS = range(20, 33)
#: The output stage's sums (bias, partial sums of input-channel blocks): int32 always.
INT32_BITS = 32
BUFFER_KIB_RANGE = (1, 4096)  # the ZU9EG has about 4 MiB of block RAM in all


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and the allowed values."""


@dataclass(frozen=True)
class SenseConfig:
    """Elaboration parameters of one Sense accelerator.

    rows, cols:     PE grid size; row i computes output channel k0+i, column j output pixel p0+j.
    group:          sparsity group size M (M/2 of every M consecutive reduction weights are kept).
    sparse:         False elaborates the dense baseline: the same grid issuing every weight.
    data_width:     activation and weight width in bits (int8).
    acc_width:      the grid's accumulator width in bits, 20..32 (the PEs' accumulators and the
                    drain). The output stage adds the bias and partial sums in int32 whatever
                    it is; the packer refuses a layer whose sums could leave ``acc_width`` bits
                    (``host.golden.grid_acc_bound``), so results equal int32 arithmetic.
    ifm_kib, weight_kib, ofm_kib: on-chip buffer sizes in KiB.
    max_channels:   most output channels one layer may have (depth of the bias/requant memory).
    clock_mhz:      target clock, for the performance model and the platform.
    dsp_pairs:      two multiplies per DSP48E2: the PEs of columns 2k and 2k+1 of a row share one
                    multiplier (they multiply the same weight; their two IFM values are packed
                    into its 27-bit operand, `hw.core.pe.PEPair`). Results and cycle counts are
                    the same either way; only the mapping differs.
    weight_port:    a second AXI4 master, read-only (``m_axi_w``, to a second DRAM port: the
                    ZCU102's S_AXI_HP1_FPD), that carries the weight reads alone. A band's weights
                    are then read from the band's start, while its parameters and input come in
                    on ``m_axi``. Results are the same either way; cycles and the ports differ.
    write_port:     ``m_axi_w`` writes too (needs ``weight_port``; an HP port has both
                    channels): the output writer sends the second half of every pixel tile's
                    pixels on it while the first half goes out on ``m_axi``, two beats a cycle
                    (`hw.soc.output_writer`). Results are the same; cycles differ.
    pool_width:     taps of a window row the pool pass reads per cycle (a power of two; the
                    IFM store's aux read port gives that many consecutive pixels' lines, at most
                    one per bank: ``pool_taps``). Results are the same; cycles and LUTs differ.
    """

    rows: int = 4
    cols: int = 4
    group: int = 4
    sparse: bool = True
    data_width: int = 8
    acc_width: int = 32
    ifm_kib: int = 16
    weight_kib: int = 16
    ofm_kib: int = 8
    max_channels: int = 1024
    clock_mhz: int = 200
    dsp_pairs: bool = False
    weight_port: bool = False
    write_port: bool = False
    pool_width: int = POOL_TAPS

    def __post_init__(self):
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value not in GRID_RANGE:
                raise ConfigError(f"{name} must be an integer from 1 to 64, not {value!r}")
        if self.group not in GROUP_SIZES or isinstance(self.group, bool):
            raise ConfigError(f"group (M) must be one of 2, 4, 8, 16, not {self.group!r}")
        for name in ("sparse", "dsp_pairs", "weight_port", "write_port"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.write_port and not self.weight_port:
            raise ConfigError("write_port needs weight_port: it writes on the weight port's "
                              "AXI master (m_axi_w)")
        if (not isinstance(self.pool_width, int) or isinstance(self.pool_width, bool)
                or self.pool_width not in POOL_WIDTHS):
            raise ConfigError(f"pool_width must be one of {', '.join(map(str, POOL_WIDTHS))}, "
                              f"not {self.pool_width!r}")
        if self.data_width not in DATA_WIDTHS:
            raise ConfigError(f"data_width must be 8 (int8, SPEC section 2), not {self.data_width!r}")
        if (not isinstance(self.acc_width, int) or isinstance(self.acc_width, bool)
                or self.acc_width not in ACC_WIDTHS):
            raise ConfigError(f"acc_width must be {ACC_WIDTHS[0]}..{ACC_WIDTHS[-1]} bits (the "
                              f"grid's accumulators, SPEC section 2), not {self.acc_width!r}")
        lo, hi = BUFFER_KIB_RANGE
        for name in ("ifm_kib", "weight_kib", "ofm_kib"):
            value = getattr(self, name)
            if (not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi
                    or value & (value - 1)):
                raise ConfigError(f"{name} must be a power of two from {lo} to {hi}, not {value!r}")
        if (not isinstance(self.max_channels, int) or isinstance(self.max_channels, bool)
                or not 16 <= self.max_channels <= 65536 or self.max_channels & (self.max_channels - 1)):
            raise ConfigError(f"max_channels must be a power of two from 16 to 65536, "
                              f"not {self.max_channels!r}")
        if not isinstance(self.clock_mhz, int) or isinstance(self.clock_mhz, bool) or \
                not 1 <= self.clock_mhz <= 1000:
            raise ConfigError(f"clock_mhz must be an integer from 1 to 1000, not {self.clock_mhz!r}")

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str) -> "SenseConfig":
        """A named configuration: ``small`` (tests) or ``zcu102`` (the board)."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ConfigError(
                f"config must be one of {', '.join(sorted(PRESETS))}, not {name!r}") from None

    def replace(self, **changes) -> "SenseConfig":
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        fields = {f.name for f in dataclasses.fields(self)}
        for name in changes:
            if name not in fields:
                raise ConfigError(f"unknown configuration field {name!r}; fields are "
                                  f"{', '.join(sorted(fields))}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SenseConfig":
        return cls().replace(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SenseConfig":
        return cls.from_dict(json.loads(text))

    def key(self) -> str:
        """A short stable name for build directories: readable prefix plus a hash of all fields."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:10]
        kind = "s" if self.sparse else "d"
        return f"{self.rows}x{self.cols}m{self.group}{kind}-{digest}"

    # -- derived quantities -------------------------------------------------------------------

    @property
    def lanes(self) -> int:
        """IFM values each column carries per cycle: M when sparse, 1 for the dense baseline."""
        return self.group if self.sparse else 1

    @property
    def pos_width(self) -> int:
        """Bits of a kept weight's position inside its group (log2 M); 0 for the dense baseline."""
        return (self.lanes - 1).bit_length()

    @property
    def kept_per_group(self) -> int:
        """Weights stored per group per output channel (M/2 sparse)."""
        return self.group // 2

    @property
    def cycles_per_group(self) -> int:
        """PE cycles one group of M reduction indices takes: M/2 sparse, M dense."""
        return self.group // 2 if self.sparse else self.group

    @property
    def ifm_words_per_line(self) -> int:
        """IFM words in one bank line (one AXI beat): the banks are written a beat per cycle and
        read a word per cycle."""
        return BEAT_BYTES // self.group

    @property
    def ifm_banks(self) -> int:
        """IFM banks: the smallest power of two >= cols. Each pixel of the layer input is in one
        of them (hw.core.ifm_store), so ifm_kib holds distinct data."""
        return 1 << (self.cols - 1).bit_length()

    @property
    def pool_taps(self) -> int:
        """IFM lines the pool pass reads per cycle (hw.soc.pool): the window taps of one window
        row that lie in one aligned group of this many consecutive pixel indices, so in as many
        consecutive banks that read the same line (``pool_width``, at most the banks)."""
        return min(self.pool_width, self.ifm_banks)

    @property
    def ifm_bank_lines(self) -> int:
        """Beat-sized lines in each IFM bank (a power of two): ifm_kib over the banks."""
        return max(1, self.ifm_kib * 1024 // (self.ifm_banks * BEAT_BYTES))

    @property
    def weight_depth(self) -> int:
        """Words of the weight buffer, a power of two (the buffer is a ring: word n of a layer
        sits at n mod weight_depth); one word is one slot (value, position) for every row."""
        words = max(1, self.weight_kib * 1024 // self.rows)
        return 1 << (words.bit_length() - 1)

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def cells(self) -> int:
        """The grid's repeated cells: its PEs, or with ``dsp_pairs`` its PE pairs and lone PEs
        (an odd last column)."""
        return self.rows * (self.cols - self.cols // 2) if self.dsp_pairs else self.pes

    @property
    def peak_gops(self) -> float:
        """Peak arithmetic rate in GOP/s (one MAC = two operations) at clock_mhz."""
        return 2 * self.pes * self.clock_mhz / 1000


#: The presets' grid accumulators: 28 bits hold the sums of every layer of the built-in
#: networks (VGG-16's fc6 needs the most: 27 bits and the sign, `host.golden.grid_acc_bound`),
#: and any layer of at most 8,256 kept products of weights in -127..127; 4 bits fewer than int32
#: save 8 LUTs per PE pair on xcup (README "Resources").
PRESET_ACC_WIDTH = 28

PRESETS = {
    # Small enough that every test builds and simulates in seconds.
    "small": SenseConfig(rows=4, cols=4, group=4, ifm_kib=16, weight_kib=16, ofm_kib=8,
                         max_channels=1024, acc_width=PRESET_ACC_WIDTH),
    # The open-toolchain board (ULX3S 85F, ECP5 speed 6): the small grid at a clock nextpnr
    # closes (50.4 MHz achieved against a 100 MHz constraint, docs/results/ulx3s-100mhz.json).
    "ulx3s": SenseConfig(rows=4, cols=4, group=4, ifm_kib=16, weight_kib=16, ofm_kib=8,
                         max_channels=1024, clock_mhz=45, acc_width=PRESET_ACC_WIDTH),
    # The board (issue 15): 64x32 PEs = 2,048 MACs/cycle = 819.2 GOP/s at 200 MHz, twice the
    # paper's 1,024, two per DSP48E2; the largest grid whose whole accelerator Yosys fits in 60 %
    # of the ZU9EG's LUTs (README "Resources"). Rows, not columns: the rows share each weight, so
    # a taller grid reads fewer weight bytes per MAC, and the 14x14 / 7x7 maps fill 32-pixel
    # tiles better than 64-pixel ones (docs/architecture.md, "Architecture study"). 1 MiB of
    # weights holds one k tile (64 rows) of VGG-16's 25088-input FC layer; 256 KiB of IFM keeps
    # the block RAM under half of the part (the study: 1-2 % on VGG-16's DRAM traffic).
    "zcu102": SenseConfig(rows=64, cols=32, group=4, ifm_kib=256, weight_kib=1024, ofm_kib=256,
                          max_channels=4096, dsp_pairs=True, weight_port=True, write_port=True,
                          pool_width=8, acc_width=PRESET_ACC_WIDTH),
}
