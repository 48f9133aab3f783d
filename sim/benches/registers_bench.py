"""cocotb bench for hw.soc.registers.Registers, driven by cocotbext-axi's AxiLiteMaster."""

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from hw.regmap import COUNTERS, ErrorCode, id_values, register
from sim.benches.util import start_clock_and_reset
from sim.harness import config_from_env

OKAY, SLVERR = 0, 2


async def setup(dut):
    for name in ("busy", "done_pulse", "error_code", "layer", *COUNTERS):
        getattr(dut, name).value = 0
    await start_clock_and_reset(dut)
    return AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axil_"), dut.clk, dut.rst)


async def read32(master, name):
    resp = await master.read(register(name).offset, 4)
    assert resp.resp == OKAY, f"{name}: resp {resp.resp}"
    return int.from_bytes(resp.data, "little")


async def write32(master, name, value):
    resp = await master.write(register(name).offset, value.to_bytes(4, "little"))
    assert resp.resp == OKAY, f"{name}: resp {resp.resp}"


@cocotb.test()
async def id_registers_describe_the_configuration(dut):
    master = await setup(dut)
    for name, value in id_values(config_from_env()).items():
        assert await read32(master, name) == value, name


@cocotb.test()
async def address_registers_read_back_and_drive_outputs(dut):
    master = await setup(dut)
    for i, name in enumerate(("IMAGE_BASE", "ACT_BASE", "WINDOW_BASE", "WINDOW_SIZE")):
        value = 0x0123_4567_89AB_CDE0 + (i << 40)
        await write32(master, f"{name}_LO", value & 0xFFFF_FFFF)
        await write32(master, f"{name}_HI", value >> 32)
        assert await read32(master, f"{name}_LO") == value & 0xFFFF_FFFF
        assert await read32(master, f"{name}_HI") == value >> 32
        assert getattr(dut, name.lower()).value.to_unsigned() == value
    # Byte strobes: one byte written, the other three kept.
    resp = await master.write(register("IMAGE_BASE_LO").offset + 1, b"\x5a")
    assert resp.resp == OKAY
    assert await read32(master, "IMAGE_BASE_LO") == 0x89AB_5AE0


@cocotb.test()
async def start_is_a_single_pulse_and_status_follows_the_run(dut):
    master = await setup(dut)
    pulses = 0

    async def count():
        nonlocal pulses
        while True:
            await RisingEdge(dut.clk)
            pulses += dut.start.value == 1
    cocotb.start_soon(count())
    await write32(master, "IRQ_ENABLE", 1)
    start = register("CTRL").pack(start=1)
    status_of = register("STATUS").unpack
    await write32(master, "CTRL", start)
    await ClockCycles(dut.clk, 3)
    assert pulses == 1
    await FallingEdge(dut.clk)
    dut.busy.value = 1
    dut.layer.value = 2
    assert await read32(master, "STATUS") == register("STATUS").pack(busy=1, layer=2)
    await FallingEdge(dut.clk)                                  # one clock edge: one pulse
    dut.busy.value = 0
    dut.error_code.value = int(ErrorCode.OUT_OF_WINDOW)
    dut.done_pulse.value = 1
    await FallingEdge(dut.clk)
    dut.done_pulse.value = 0
    status = status_of(await read32(master, "STATUS"))
    assert status == {"busy": 0, "done": 1, "error": 1, "error_code": ErrorCode.OUT_OF_WINDOW,
                      "layer": 2}
    assert dut.irq.value == 1 and await read32(master, "IRQ_STATUS") == 1
    await write32(master, "IRQ_STATUS", 1)
    assert dut.irq.value == 0
    await write32(master, "CTRL", start)                       # a new start clears done/error
    status = status_of(await read32(master, "STATUS"))
    assert status["done"] == status["error"] == 0


@cocotb.test()
async def counters_read_consistently_and_bad_accesses_are_refused(dut):
    master = await setup(dut)
    for i, name in enumerate(COUNTERS):
        getattr(dut, name).value = (0x1111_0000 + i) << 32 | 0xFFFF_FFF0 + i
    for i, name in enumerate(COUNTERS):
        lo = await read32(master, f"{name.upper()}_LO")
        getattr(dut, name).value = 0                           # HI was latched by the LO read
        hi = await read32(master, f"{name.upper()}_HI")
        assert (hi << 32 | lo) == ((0x1111_0000 + i) << 32 | 0xFFFF_FFF0 + i), name
    assert (await master.read(0xFC, 4)).resp == SLVERR         # unmapped
    assert (await master.write(0xFC, b"\1\2\3\4")).resp == SLVERR
    assert (await master.write(register("ID_MAGIC").offset, b"\0\0\0\0")).resp == SLVERR
    assert await read32(master, "ID_MAGIC") == id_values(config_from_env())["ID_MAGIC"]
