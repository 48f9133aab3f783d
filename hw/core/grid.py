"""The rows x cols systolic PE grid with its result capture and drain read-out."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.core.pe import PE, PEPair
from hw.layouts import ifm_layout, weight_op_layout

__all__ = ["Grid"]


class Grid(wiring.Component):
    """rows x cols PEs, output stationary: PE(i, j) accumulates output channel k0+i, pixel p0+j.

    Weight operations for row i enter at column 0 on ``w_in[i]`` and move one column per cycle;
    IFM lanes for column j enter at row 0 on ``x_in[j]`` and move one row per cycle. The caller
    skews them (row i delayed i cycles, column j delayed j cycles) so that matching operands meet.

    With ``config.dsp_pairs`` the PEs of columns 2k and 2k+1 of a row are one `PEPair` (one
    multiplier), whose column 2k finishes with column 2k+1, a cycle later than a lone PE would.

    Results: every row's operation stream has the same shape, so PE(i, j) finishes an output
    (its ``done``) exactly i + lag(j) cycles after PE(0, 0) would (lag(j) = j, or j | 1 in a
    pair). Within a column the PEs therefore finish one after the other, row 0 first, and each
    column has one result memory (2 x 2^ceil(log2 rows) words, distributed RAM: one write port,
    read without a clock) that takes the finishing PE's accumulator: row ``i`` of the tile goes
    to word ``bank * 2^ceil(log2 rows) + i``. Which row finishes is encoded once, from column
    0's ``done``s, and delayed by each column's lag. The accumulators go straight on with the
    next tile. Tiles alternate between the two banks (tile n into bank n % 2, counted from the
    last ``clear``). ``row0_done`` rises when the last column (the latest) writes row 0 of a
    tile: from the next cycle on, row 0 is in its bank in every column, and row i is from i
    cycles later (each column writes its rows on consecutive cycles), so a drain that starts
    then and reads a row per cycle at most never overtakes the capture. The drain reads a bank
    out a row at a time: ``bottom`` shows row ``row`` of bank ``bank`` (combinationally).

    The caller must (a) let consecutive tiles finish at least ``rows`` cycles apart (PE(0, 0)'s
    ``done``s), so that a column never has two PEs finishing in one cycle, and (b) not read a
    bank's row before it is written or after a later tile has begun to be captured into it (the
    core drains rows 0, 1, ... from the cycle after ``row0_done``, and lets tile n finish only
    after tile n-2 has been read out, and ``rows`` cycles after tile n-1).
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
            "row0_done": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        cells, lag = self._cells(m)

        # Which row of column j finishes this cycle: column 0's one-hot dones encoded, then
        # delayed like the operations that cause them (a column's lag behind column 0).
        row_bits = max(cfg.rows - 1, 1).bit_length()
        done0 = [cells[i][0][3] for i in range(cfg.rows)]
        valid = Signal(name="cap_valid_0")
        index = Signal(row_bits, name="cap_row_0")
        m.d.comb += valid.eq(Cat(*done0).any())
        for b in range(row_bits):
            bit = [done0[i] for i in range(cfg.rows) if (i >> b) & 1]
            m.d.comb += index[b].eq(Cat(*bit).any() if bit else 0)
        for j in range(cfg.cols):
            for step in range(lag[j] - lag[j - 1] if j else 0):
                v = Signal(name=f"cap_valid_{j}_{step}")
                x = Signal(row_bits, name=f"cap_row_{j}_{step}")
                m.d.sync += [v.eq(valid), x.eq(index)]
                valid, index = v, x
            self._column_memory(m, j, [cells[i][j][2] for i in range(cfg.rows)], valid, index,
                                row_bits)
        m.d.comb += self.row0_done.eq(valid & (index == 0))      # (the last column's)
        return m

    def _cells(self, m):
        """The PEs, wired: for PE(i, j), (x_in, x_out, acc, done) of its column; and each
        column's lag (cycles its results come after column 0's, when the operations differ by
        none). With ``dsp_pairs`` columns 2k and 2k+1 are one `PEPair`, both on 2k+1's timing;
        an odd last column is a lone PE."""
        cfg = self._config
        pairs = cfg.cols // 2 if cfg.dsp_pairs else 0
        lag = [j | 1 if j < 2 * pairs else j for j in range(cfg.cols)]
        cells = []
        for i in range(cfg.rows):
            row, w = [], self.w_in[i]
            for j in [*range(0, 2 * pairs, 2), *range(2 * pairs, cfg.cols)]:  # first columns
                unit = PEPair(cfg) if j < 2 * pairs else PE(cfg)
                m.submodules[f"pe_{i}_{j}"] = unit
                m.d.comb += unit.w_in.eq(w)
                w = unit.w_out
                if isinstance(unit, PEPair):
                    row += [(unit.x_in[k], unit.x_out[k], unit.acc[k], unit.done) for k in (0, 1)]
                else:
                    row.append((unit.x_in, unit.x_out, unit.acc, unit.done))
            for j, (x_in, *_rest) in enumerate(row):
                m.d.comb += x_in.eq(self.x_in[j] if i == 0 else cells[i - 1][j][1])
            cells.append(row)
        return cells, lag

    def _column_memory(self, m, j, accs, valid, index, row_bits):
        """Column j's result memory: written with the finishing PE's accumulator, read by the
        drain; its bank flips when the column's last row has been written."""
        cfg = self._config
        mem = Memory(shape=signed(cfg.acc_width), depth=2 << row_bits, init=[])
        m.submodules[f"results_{j}"] = mem
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        bank = Signal(name=f"cap_bank_{j}")
        with m.If(self.clear):
            m.d.sync += bank.eq(0)
        with m.Elif(valid & (index == cfg.rows - 1)):
            m.d.sync += bank.eq(~bank)
        m.d.comb += [
            wr.en.eq(valid),
            wr.addr.eq(Cat(index, bank)),
            wr.data.eq(Array(accs)[index]),
            rd.addr.eq(Cat(self.row[:row_bits], self.bank)),
            self.bottom[j].eq(rd.data),
        ]
