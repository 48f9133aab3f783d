"""host.driver without a simulator: ID decoding, refusals and the register writes of `load`,
against an in-memory backend. The system tests run the same driver on the RTL."""

import asyncio

import numpy as np
import pytest

from host import golden

from host.driver import Accelerator, AcceleratorError, MemoryBackend
from host.image import layer_table, pack_image, unsupported_problem
from host.quant import QLayer, QNetwork
from hw.config import PRESETS, SenseConfig
from hw.regmap import IdError, config_from_id, id_values, register


class FakeDram(MemoryBackend):
    """host.driver's MemoryBackend at a non-zero DRAM address, optionally flipping a bit of
    every write to memory (a broken buffer)."""

    def __init__(self, config, mem_size=1 << 16, corrupt=False):
        super().__init__(config, mem_size, mem_base=0x8000_0000)
        self.corrupt = corrupt

    async def write_mem(self, offset, data):
        await super().write_mem(offset, data)
        if self.corrupt:
            self.mem[offset + len(data) // 2] ^= 1


def tiny_image(config):
    rng = np.random.default_rng(0)
    w = np.zeros((3, 4, 1, 1), np.int8)
    w[:, :2] = rng.integers(-5, 5, size=(3, 2, 1, 1))
    layer = QLayer("conv", "l0", w, np.zeros(3, np.int32), np.full(3, 1 << 15),
                   np.full(3, 16), relu=True)
    return pack_image(QNetwork((4, 2, 2), [layer], 1.0, [], config.group), config)


@pytest.mark.parametrize("name", list(PRESETS))
def test_id_registers_round_trip(name):
    config = PRESETS[name]
    assert config_from_id(id_values(config)) == config


def test_wrong_magic_is_refused():
    ids = id_values(SenseConfig())
    ids["ID_MAGIC"] = 0
    with pytest.raises(IdError, match="no Sense accelerator"):
        config_from_id(ids)
    backend = MemoryBackend(SenseConfig(), 4096)
    backend.regs[register("ID_MAGIC").offset] = 0
    with pytest.raises(AcceleratorError, match="no Sense accelerator"):
        asyncio.run(Accelerator(backend).identify())


def test_impossible_id_registers_are_refused():
    """ID registers naming no valid configuration (here accelerator bits 0, as a bitstream from
    before ID_BUFFERS.acc_width reads) are refused by name, as IdError / AcceleratorError."""
    ids = id_values(SenseConfig())
    ids["ID_BUFFERS"] &= ~(0x3F << 24)
    with pytest.raises(IdError, match="the ID registers name impossible hardware: acc_width "
                                      "must be 20..32 bits .*, not 0"):
        config_from_id(ids)
    backend = MemoryBackend(SenseConfig(), 4096)
    backend.regs[register("ID_BUFFERS").offset] = ids["ID_BUFFERS"]
    with pytest.raises(AcceleratorError, match="impossible hardware: acc_width"):
        asyncio.run(Accelerator(backend).identify())


def test_load_sets_bases_and_window_to_the_buffer():
    config = SenseConfig()
    backend = FakeDram(config)
    acc = Accelerator(backend)
    image = tiny_image(config)
    asyncio.run(acc.load(image))
    regs = {name: backend.regs[register(name).offset] for name in
            ("IMAGE_BASE_LO", "IMAGE_BASE_HI", "ACT_BASE_LO", "WINDOW_BASE_LO", "WINDOW_SIZE_LO")}
    assert regs["IMAGE_BASE_LO"] == 0x8000_0000 and regs["IMAGE_BASE_HI"] == 0
    assert regs["ACT_BASE_LO"] == 0x8000_0000 + acc.act_offset
    assert acc.act_offset % 64 == 0 and acc.act_offset >= len(image)
    assert regs["WINDOW_BASE_LO"] == 0x8000_0000
    assert regs["WINDOW_SIZE_LO"] == acc.act_offset + acc.header["act_size"]
    assert bytes(backend.mem[:len(image)]) == image


def test_load_refuses_other_hardware_corrupt_images_and_small_buffers():
    config = SenseConfig()
    image = tiny_image(config)
    with pytest.raises(AcceleratorError, match="packed for other hardware: rows 4 .image. vs 8"):
        asyncio.run(Accelerator(FakeDram(config.replace(rows=8))).load(image))
    with pytest.raises(AcceleratorError, match="truncated"):
        asyncio.run(Accelerator(FakeDram(config)).load(image[:-1]))
    with pytest.raises(AcceleratorError, match="need .* bytes of DRAM"):
        asyncio.run(Accelerator(FakeDram(config, mem_size=256)).load(image))
    with pytest.raises(AcceleratorError, match="read back from DRAM"):
        asyncio.run(Accelerator(FakeDram(config, corrupt=True)).load(image))


def test_load_refuses_what_this_gateware_cannot_run():
    """A dilated max-pool, or a layer blocked by input channels: refused at load with the
    layer and the reason named (the gateware would stop with UNSUPPORTED); a residual add, a
    global average pooling and a layer in bands load."""
    config = SenseConfig()
    w = np.zeros((4, 4, 1, 1), np.int8)
    w[:, :2] = 1
    conv = QLayer("conv", "c", w, np.zeros(4, np.int32), np.full(4, 1 << 15), np.full(4, 16),
                  relu=True, out_scale=0.5)
    add = QLayer("add", "a", None, None, np.array([1 << 14, 1 << 14]), np.array([15]),
                 inputs=[-1, 0])
    image = pack_image(QNetwork((4, 2, 2), [conv, add], 1.0, [], config.group), config)
    asyncio.run(Accelerator(FakeDram(config)).load(image))
    gap = QLayer("gap", "g", None, None, None, None, inputs=[0])
    image = pack_image(QNetwork((4, 2, 2), [conv, gap], 1.0, [], config.group), config)
    asyncio.run(Accelerator(FakeDram(config)).load(image))
    dilated = QLayer("maxpool", "p", None, None, None, None, inputs=[0],
                     pool=golden.Window.of(2, 1, 0, dilation=2))
    image = pack_image(QNetwork((4, 3, 3), [conv, dilated], 1.0, [], config.group), config)
    with pytest.raises(AcceleratorError, match=r"layer 1 \(maxpool\) needs the whole-network "
                                               r"hardware \(a dilated pooling window\)"):
        asyncio.run(Accelerator(FakeDram(config)).load(image))
    big = QLayer("conv", "big", np.zeros((4, 16, 1, 1), np.int8), np.zeros(4, np.int32),
                 np.full(4, 1 << 15), np.full(4, 16), relu=True)
    # An input beyond the IFM store runs in bands: it loads.
    image = pack_image(QNetwork((16, 40, 40), [big], 1.0, [], config.group), config)
    asyncio.run(Accelerator(FakeDram(config, mem_size=1 << 20)).load(image))
    # One k tile's weights beyond the weight buffer: input-channel blocks; it loads.
    wide = QLayer("conv", "wide", np.zeros((4, 1024, 3, 3), np.int8), np.zeros(4, np.int32),
                  np.full(4, 1 << 15), np.full(4, 16), relu=True)
    image = pack_image(QNetwork((1024, 3, 3), [wide], 1.0, [], config.group), config)
    assert layer_table(image)[1][0].g("exec.c_blocks") == 2
    asyncio.run(Accelerator(FakeDram(config, mem_size=1 << 20)).load(image))
    # Weight blocks (`exec.k_block`, never packed: the ring streams weights) are refused.
    wide_k = QLayer("conv", "k", np.zeros((8, 4, 1, 1), np.int8), np.zeros(8, np.int32),
                    np.full(8, 1 << 15), np.full(8, 16), relu=True)
    image = pack_image(QNetwork((4, 2, 2), [wide_k], 1.0, [], config.group), config)
    d = layer_table(image)[1][0]
    d = d.replace(graph={**d.graph, "exec.k_block": 1})
    assert unsupported_problem([d]).startswith(
        "layer 0 (conv) needs the whole-network hardware (weight blocks of 1 k tiles)")


def test_run_needs_an_image_and_the_right_input():
    config = SenseConfig()
    acc = Accelerator(FakeDram(config))
    with pytest.raises(AcceleratorError, match="no image loaded"):
        asyncio.run(acc.run_one(np.zeros((4, 2, 2), np.int8), 10))
    asyncio.run(acc.load(tiny_image(config)))
    with pytest.raises(AcceleratorError, match=r"input must be int8 of shape \(4, 2, 2\)"):
        asyncio.run(acc.run_one(np.zeros((4, 2, 3), np.int8), 10))


def test_a_run_that_never_ends_times_out():
    config = SenseConfig()
    backend = FakeDram(config)
    acc = Accelerator(backend)
    asyncio.run(acc.load(tiny_image(config)))
    backend.regs[register("STATUS").offset] = 1          # busy forever
    with pytest.raises(AcceleratorError, match="did not finish within 100 cycles"):
        asyncio.run(acc.run_one(np.zeros((4, 2, 2), np.int8), 100))
