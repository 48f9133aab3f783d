"""The self-test system for one input: a packed network, the input and the expected output
turned into `hw.soc.selftest.SelfTest` (the accelerator with its memory in block RAM and a
checker that replays the driver's own register writes)."""

from __future__ import annotations

import numpy as np

from host.buffers import to_activation
from host.digits import load_split
from host.driver import Accelerator, MemoryBackend, buffer_layout, run_sync
from host.image import ImageError, read_header
from host.pipeline import prepare_model
from host.quant import quantize_input, run_int
from hw.config import BEAT_BYTES, SenseConfig
from hw.soc.selftest import SelfTest

__all__ = ["SelfTestError", "selftest_system", "bundled_selftest"]


class SelfTestError(ValueError):
    """The image or the input cannot make a self-test system."""


def selftest_system(config: SenseConfig, image: bytes, x: np.ndarray, expected: np.ndarray):
    """`hw.soc.selftest.SelfTest` for one input: the driver loads `image` and `x` into a memory
    backend (recording its register writes), and the checker expects `expected` (the golden
    model's int8 output, (K, OH, OW)) where the driver would read the output from."""
    try:
        _, need = buffer_layout(image, read_header(image, config))
    except ImageError as e:
        raise SelfTestError(f"image refused: {e}") from None
    need += -need % BEAT_BYTES            # the block RAM holds whole beats
    backend = MemoryBackend(config, need)
    acc = Accelerator(backend)

    async def load():
        await acc.load(image)
        await backend.write_mem(acc.act_offset + acc.layers[0].in_offset, acc.input_bytes(x))
        await acc.start()

    run_sync(load())
    x_bytes = acc.input_bytes(x)
    in_offset = acc.act_offset + acc.layers[0].in_offset
    expected = np.asarray(expected, np.int8)
    out = to_activation(expected, config)
    real = to_activation(np.ones(expected.shape, np.int8), config)  # 0 in padding channels
    offset = acc.act_offset + acc.layers[-1].out_offset
    return SelfTest(config, memory=bytes(backend.mem), mem_size=need,
                    writes=backend.writes, check_offset=offset, expected=out,
                    mask=bytes(0xFF if b else 0 for b in real), input_offset=in_offset,
                    input_bytes=x_bytes)


def bundled_selftest(config: SenseConfig, model=None, index: int = 0):
    """The self-test system for the bundled digits model (or another digits model file) and
    test image `index`, packed for `config` the way `sense pack` does it."""
    prepared = prepare_model(config, model)
    qnet, image = prepared.qnet, prepared.image
    x_test = load_split()[2]
    if not 0 <= index < len(x_test):
        raise SelfTestError(f"--index must be from 0 to {len(x_test) - 1}, not {index}")
    xq = quantize_input(qnet, x_test[index:index + 1])
    want = run_int(qnet, xq, return_all=True)[-1][0]          # (K, OH, OW)
    return selftest_system(config, image, xq[0], want)
