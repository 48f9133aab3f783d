"""Control and status registers on an AXI4-Lite slave (SPEC section 4): the gateware of the
register map that `hw.regmap` defines as data."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import SenseConfig
from hw.regmap import COUNTERS, REGISTER_BYTES, id_values, register, register_map

__all__ = ["axi_lite_signature", "Registers", "ADDR_BITS"]

#: Address bits the slave decodes (the register space is REGISTER_BYTES).
ADDR_BITS = REGISTER_BYTES.bit_length() - 1
RESP_OKAY, RESP_SLVERR = 0, 2


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
        status = Signal(register("STATUS").layout)
        m.d.comb += [status.busy.eq(self.busy), status.done.eq(done), status.error.eq(error),
                     status.error_code.eq(error_code), status.layer.eq(self.layer)]

        with m.If(self.done_pulse):
            m.d.sync += [done.eq(1), error.eq(self.error_code != 0),
                         error_code.eq(self.error_code), irq_pending.eq(1)]

        # -- reads ------------------------------------------------------------------------------
        values = {
            "CTRL": Const(0, 32), "IRQ_ENABLE": irq_enable, "IRQ_STATUS": irq_pending,
            "STATUS": status.as_value(),
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
                            ctrl = reg.layout(w_data)
                            m.d.comb += [self.start.eq(w_strb[0] & ctrl.start),
                                         self.abort_req.eq(w_strb[0] & ctrl.abort)]
                        elif reg.name == "IRQ_ENABLE":
                            with m.If(w_strb[0]):
                                m.d.sync += irq_enable.eq(reg.layout(w_data).done)
                        elif reg.name == "IRQ_STATUS":
                            with m.If(w_strb[0] & reg.layout(w_data).done):
                                m.d.sync += irq_pending.eq(0)
                        else:
                            target = values[reg.name]
                            m.d.sync += target.eq(merged(target))
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(self.start):
            m.d.sync += [done.eq(0), error.eq(0), error_code.eq(0)]
        return m
