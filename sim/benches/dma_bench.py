"""cocotb bench for hw.soc.dma.Dma against cocotbext-axi's AxiRam, random latency and back-pressure."""

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from hw.layouts import pack
from hw.soc.dma import BEAT_BYTES, dma_command_layout
from sim.benches.util import start_clock_and_reset

WINDOW = (0x1000, 0x9000)   # base, size
RAM = 1 << 16


def pauses(p, rng):
    while True:
        yield rng.random() < p


async def setup(dut, seed, p=0.3):
    rng = random.Random(seed)
    for name in ("rd_cmd__valid", "wr_cmd__valid", "wr_data__valid", "rd_data__ready", "clear"):
        getattr(dut, name).value = 0
    dut.window_base.value, dut.window_size.value = WINDOW
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=RAM)
    for ch in (ram.read_if.ar_channel, ram.read_if.r_channel, ram.write_if.aw_channel,
               ram.write_if.w_channel, ram.write_if.b_channel):
        ch.set_pause_generator(pauses(p, rng))
    ram.write(0, bytes(rng.getrandbits(8) for _ in range(RAM)))
    handshakes = {"ar": 0, "aw": 0}
    bursts = []             # the beats of every burst whose AW has gone and W not all

    async def monitor():
        # Counts the address handshakes, and checks that every W beat belongs to a burst whose
        # AW has gone (or goes in the same cycle) and that WLAST ends it as its AWLEN says.
        sent = 0
        while True:
            await RisingEdge(dut.clk)
            handshakes["ar"] += int(dut.m_axi__arvalid.value == 1 and dut.m_axi__arready.value == 1)
            if dut.m_axi__awvalid.value == 1 and dut.m_axi__awready.value == 1:
                handshakes["aw"] += 1
                bursts.append(dut.m_axi__awlen.value.to_unsigned() + 1)
            if dut.m_axi__wvalid.value == 1 and dut.m_axi__wready.value == 1:
                assert bursts, "a W beat before its burst's AW"
                sent += 1
                assert (dut.m_axi__wlast.value == 1) == (sent == bursts[0]), \
                    f"WLAST at beat {sent} of a burst of {bursts[0]}"
                if sent == bursts[0]:
                    bursts.pop(0)
                    sent = 0
    await start_clock_and_reset(dut)
    cocotb.start_soon(monitor())
    return rng, ram, handshakes


async def send_cmd(dut, prefix, addr, length):
    getattr(dut, f"{prefix}__payload").value = pack(dma_command_layout(),
                                                    {"addr": addr, "length": length})
    getattr(dut, f"{prefix}__valid").value = 1
    while True:
        await RisingEdge(dut.clk)
        if getattr(dut, f"{prefix}__ready").value == 1:
            break
    await FallingEdge(dut.clk)
    getattr(dut, f"{prefix}__valid").value = 0


def beat_range(addr, length):
    first = addr & ~(BEAT_BYTES - 1)
    end = (addr + length + BEAT_BYTES - 1) & ~(BEAT_BYTES - 1)
    return first, end


async def read(dut, rng, addr, length, ready_p=0.7):
    first, end = beat_range(addr, length)
    await send_cmd(dut, "rd_cmd", addr, length)
    got = bytearray()
    while len(got) < end - first:
        await FallingEdge(dut.clk)
        ready = rng.random() < ready_p
        dut.rd_data__ready.value = int(ready)
        await RisingEdge(dut.clk)
        if ready and dut.rd_data__valid.value == 1:
            got += dut.rd_data__payload.value.to_unsigned().to_bytes(BEAT_BYTES, "little")
    await FallingEdge(dut.clk)
    dut.rd_data__ready.value = 0
    return first, bytes(got)


async def write(dut, rng, addr, length, payload, valid_p=0.7):
    first, end = beat_range(addr, length)
    cocotb.start_soon(send_cmd(dut, "wr_cmd", addr, length))
    beats = [payload[i:i + BEAT_BYTES] for i in range(0, end - first, BEAT_BYTES)]
    for beat in beats:
        while True:
            await FallingEdge(dut.clk)
            valid = rng.random() < valid_p
            dut.wr_data__valid.value = int(valid)
            dut.wr_data__payload.value = int.from_bytes(beat, "little")
            await RisingEdge(dut.clk)
            if valid and dut.wr_data__ready.value == 1:
                break
    await FallingEdge(dut.clk)
    dut.wr_data__valid.value = 0
    while dut.busy.value == 1:
        await FallingEdge(dut.clk)


@cocotb.test()
async def reads_return_the_covering_beats(dut):
    rng, ram, _ = await setup(dut, 1)
    base, size = WINDOW
    cases = [(0x2FF8, 40), (0x1000, 16), (base + size - 16, 16), (0x1F00, 0x300)]  # 4 KiB edges
    cases += [(rng.randrange(base, base + size - 0x800), rng.randrange(1, 0x800))
              for _ in range(25)]
    total = 0
    for addr, length in cases:
        first, got = await read(dut, rng, addr, length)
        assert got == ram.read(first, len(got)), f"read {addr:#x}+{length}"
        total += len(got)
    assert dut.error.value == 0
    assert dut.bytes_read.value.to_unsigned() == total


@cocotb.test()
async def writes_touch_exactly_their_bytes(dut):
    rng, ram, _ = await setup(dut, 2)
    base, size = WINDOW
    cases = [(0x2FF5, 40), (0x1000, 16), (base + size - 3, 3), (0x1F01, 0x301)]
    cases += [(rng.randrange(base, base + size - 0x800), rng.randrange(1, 0x800))
              for _ in range(20)]
    written = 0
    for addr, length in cases:
        before = ram.read(0, RAM)
        first, end = beat_range(addr, length)
        payload = bytes(rng.getrandbits(8) for _ in range(end - first))
        await write(dut, rng, addr, length, payload)
        after = ram.read(0, RAM)
        expect = bytearray(before)
        expect[addr:addr + length] = payload[addr - first: addr - first + length]
        assert after == bytes(expect), f"write {addr:#x}+{length}"
        written += length
    assert dut.error.value == 0
    assert dut.bytes_written.value.to_unsigned() == written


@cocotb.test()
async def commands_outside_the_window_issue_nothing(dut):
    rng, ram, handshakes = await setup(dut, 3)
    base, size = WINDOW
    for addr, length in [(base - 16, 32), (base + size - 8, 16), (base + size, 16), (0, 16),
                         (base, 0), (base + 1, size)]:
        before = dict(handshakes)
        await send_cmd(dut, "rd_cmd", addr, length)
        for _ in range(20):
            await FallingEdge(dut.clk)
        assert dut.error.value == 1 and dut.busy.value == 0, f"read {addr:#x}+{length}"
        await send_cmd(dut, "wr_cmd", addr, length)
        for _ in range(20):
            await FallingEdge(dut.clk)
        assert handshakes == before, f"{addr:#x}+{length}: a transaction left"
        dut.clear.value = 1
        await FallingEdge(dut.clk)
        dut.clear.value = 0
        await FallingEdge(dut.clk)
        assert dut.error.value == 0
    # And a legal command still works afterwards.
    first, got = await read(dut, rng, base, 64)
    assert got == ram.read(first, 64) and dut.error.value == 0


@cocotb.test()
async def long_writes_take_a_beat_a_cycle(dut):
    """With the data always valid and the memory always ready, a write of many bursts takes one
    cycle per beat: the next burst's AW goes out while the bursts before it are written, and it
    never crosses a 4 KiB edge."""
    rng, ram, handshakes = await setup(dut, 4, p=0.0)
    for addr, length in [(0x1000, 16 * 16 * 5), (0x2F00, 0x300), (0x3008, 0x1000)]:
        first, end = beat_range(addr, length)
        beats = (end - first) // BEAT_BYTES
        aw = handshakes["aw"]
        payload = bytes(rng.getrandbits(8) for _ in range(end - first))
        cocotb.start_soon(send_cmd(dut, "wr_cmd", addr, length))
        dut.wr_data__valid.value = 1
        taken = []
        for cycle in range(beats + 10):
            dut.wr_data__payload.value = int.from_bytes(
                payload[len(taken) * BEAT_BYTES:(len(taken) + 1) * BEAT_BYTES].ljust(BEAT_BYTES,
                                                                                     b"\0"),
                "little")
            await RisingEdge(dut.clk)
            if dut.wr_data__ready.value == 1:
                taken.append(cycle)
                if len(taken) == beats:
                    break
            await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.wr_data__valid.value = 0
        while dut.busy.value == 1:
            await FallingEdge(dut.clk)
        assert taken == list(range(taken[0], taken[0] + beats)), \
            f"{addr:#x}+{length}: beats taken in cycles {taken}"
        edges = len({a >> 12 for a in range(first, end, BEAT_BYTES)})
        assert handshakes["aw"] - aw >= max(-(-beats // 16), edges)
        assert ram.read(addr, length) == payload[addr - first:addr - first + length]
