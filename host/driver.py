"""The host driver: one API for the accelerator in simulation and on the board.

    acc = Accelerator(backend)
    await acc.load(image)              # checks ID vs image, copies it, verifies it by CRC
    outputs = await acc.run(inputs)    # (N, C, H, W) int8 -> (N, K, OH, OW) int8
    acc.counters()                     # the performance counters of the last run

A backend moves 32-bit register words and DRAM bytes; its methods are coroutines so that the
same driver code runs inside a cocotb simulation (`sim.benches.system_bench.CocotbBackend`: AxiLiteMaster
as the CPU, AxiRam as DDR) and on the board (`DevMemBackend`: /dev/mem or UIO, synchronous
underneath; `run_sync` drives it without an event loop of its own). The backend owns one
physically contiguous DRAM buffer; the driver puts the image at its start and the activation
region after it, and sets the DMA window to exactly that buffer.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import time
import zlib

import numpy as np

from host import golden
from host.buffers import from_activation, to_activation
from host.image import ImageError, header_s2d, layer_table, read_header, unsupported_problem
from host.s2d import blocked_input
from hw.config import BLOCK_ALIGN, SenseConfig
from hw.regmap import (
    COUNTERS,
    ERROR_TEXT,
    ErrorCode,
    IdError,
    config_from_id,
    id_values,
    register,
)

__all__ = ["Accelerator", "AcceleratorError", "DevMemBackend", "MemoryBackend",
           "run_sync", "buffer_layout", "ACT_ALIGN"]

#: The activation region starts on a 4 KiB boundary of the buffer (bursts split there, so the
#: performance model can place them).
ACT_ALIGN = 4096


def buffer_layout(image: bytes, header: dict) -> tuple[int, int]:
    """Where the driver puts things in its DRAM buffer: (offset of the activation region, bytes
    the buffer needs). The image sits at the start; the activations follow on an ACT_ALIGN
    boundary."""
    act_offset = -(-len(image) // ACT_ALIGN) * ACT_ALIGN
    return act_offset, act_offset + header["act_size"]


class AcceleratorError(RuntimeError):
    """The accelerator refused or failed a run; the message names the error code and layer."""


def _output_shape(last) -> tuple:
    """(C, H, W) of a layer's output from its descriptor (after its fused max-pool)."""
    if not last.pool:
        return (last.out_channels, last.out_h, last.out_w)
    pk, ps, pp = last.pool_kernel, last.pool_stride, last.pool_pad
    return (last.out_channels, golden.output_size(last.out_h, pk, ps, pp),
            golden.output_size(last.out_w, pk, ps, pp))


def _reg(name: str) -> int:
    return register(name).offset


class Accelerator:
    """Drives one Sense accelerator through a backend (see the module docstring)."""

    def __init__(self, backend):
        self.backend = backend
        self.config: SenseConfig | None = None
        self.image: bytes | None = None
        self.header = None
        self.layers = None
        self.act_offset = 0
        self._counters: dict = {}
        self.runs: list[dict] = []
        self._batch = None

    # -- registers --------------------------------------------------------------------------

    async def read(self, name: str) -> int:
        return await self.backend.read32(_reg(name))

    async def write(self, name: str, value: int) -> None:
        await self.backend.write32(_reg(name), value & 0xFFFFFFFF)

    async def write64(self, name: str, value: int) -> None:
        await self.write(f"{name}_LO", value)
        await self.write(f"{name}_HI", value >> 32)

    async def identify(self) -> SenseConfig:
        ids = {name: await self.read(name)
               for name in ("ID_MAGIC", "ID_GRID", "ID_BUFFERS", "ID_CLOCK")}
        try:
            self.config = config_from_id(ids)
        except IdError as e:
            raise AcceleratorError(str(e)) from None
        return self.config

    # -- load -------------------------------------------------------------------------------

    async def load(self, image: bytes, refuse_unsupported: bool = True) -> None:
        """Check the image against the hardware (refusing a mismatch with the fields named, and
        layers this gateware cannot run, unless `refuse_unsupported` is false), copy it to the
        start of the DRAM buffer, read it back and check its CRC, and set the base and window
        registers."""
        config = self.config or await self.identify()
        image = bytes(image)
        header, layers = self._checked(image, config, refuse_unsupported)
        self.act_offset, need = buffer_layout(image, header)
        if need > self.backend.mem_size:
            raise AcceleratorError(f"the image and its activations need {need} bytes of DRAM, "
                                   f"the buffer has {self.backend.mem_size}")
        await self._copy_in(0, image)
        base = self.backend.mem_base
        await self.write64("IMAGE_BASE", base)
        await self.write64("ACT_BASE", base + self.act_offset)
        await self.write64("WINDOW_BASE", base)
        await self.write64("WINDOW_SIZE", need)
        self.image, self.header, self.layers = image, header, layers
        self._batch = None

    @staticmethod
    def _checked(image: bytes, config: SenseConfig, refuse_unsupported: bool = True,
                 what: str = "image") -> tuple:
        """The image's header and layer table, or AcceleratorError naming what is wrong with
        it: other hardware, corrupt, truncated, or (with `refuse_unsupported`) a layer this
        gateware would stop at."""
        try:
            header, layers = layer_table(image, config)
        except ImageError as e:
            raise AcceleratorError(f"{what} refused: {e}") from None
        problem = unsupported_problem(layers, config) if refuse_unsupported else None
        if problem:
            raise AcceleratorError(f"{what} refused: {problem}")
        return header, layers

    async def _copy_in(self, offset: int, image: bytes) -> None:
        """Copy an image to the DRAM buffer at `offset` (the accelerator idle), read it back and
        check it."""
        if await self.read("STATUS") & 1:
            raise AcceleratorError("the accelerator is busy; abort the run first")
        await self.backend.write_mem(offset, image)
        back = await self.backend.read_mem(offset, len(image))
        try:
            read_header(back)
        except ImageError as e:
            raise AcceleratorError(f"the image read back from DRAM is wrong ({e}); check the "
                                   f"DRAM buffer") from None
        if zlib.crc32(back) != zlib.crc32(image):
            raise AcceleratorError("the image read back from DRAM differs from the one written")

    async def load_batch(self, prefix: bytes, suffix: bytes, batch: int, slot_bytes: int,
                         valid_bytes: int | None = None) -> None:
        """Load the two images of a batched run (`host.batch`): the prefix (run once per image,
        its output placed first in its activation region) and the suffix (run once over the
        `batch` prefix outputs, its input placed first), both checked like `load`'s. The buffer
        holds [prefix][suffix][activations]: image n's prefix run uses the activation region
        moved `slot_bytes` on per image, so the outputs stack into the suffix's input.
        `valid_bytes` (a stacked tail, `BatchSplit.valid_bytes`): the bytes of each slot that
        hold the image; the rest of every slot (separator rows) is zeroed after the prefix
        runs."""
        config = self.config or await self.identify()
        if batch < 1 or slot_bytes <= 0 or slot_bytes % BLOCK_ALIGN:
            raise AcceleratorError(f"a batch needs at least one image and a {BLOCK_ALIGN}-byte "
                                   f"aligned slot, not {batch} images of {slot_bytes} bytes")
        if valid_bytes is not None and not 0 < valid_bytes <= slot_bytes:
            raise AcceleratorError(f"a slot of {slot_bytes} bytes cannot hold {valid_bytes} "
                                   f"bytes of an image")
        p_img, s_img = bytes(prefix), bytes(suffix)
        p_head, p_layers = self._checked(p_img, config, what="prefix image")
        s_head, s_layers = self._checked(s_img, config, what="suffix image")
        s_off = -(-len(p_img) // BLOCK_ALIGN) * BLOCK_ALIGN
        act = -(-(s_off + len(s_img)) // ACT_ALIGN) * ACT_ALIGN
        if s_layers[0].in_offset != 0 or p_layers[-1].out_offset != 0:
            raise AcceleratorError("the prefix must write its output, and the suffix read its "
                                   "input, at activation offset 0 (host.batch.pack_batch)")
        need = act + max((batch - 1) * slot_bytes + p_head["act_size"], s_head["act_size"])
        if need > self.backend.mem_size:
            raise AcceleratorError(f"the batch needs {need} bytes of DRAM, the buffer has "
                                   f"{self.backend.mem_size}")
        await self._copy_in(0, p_img)
        await self._copy_in(s_off, s_img)
        base = self.backend.mem_base
        await self.write64("WINDOW_BASE", base)
        await self.write64("WINDOW_SIZE", need)
        self.act_offset = act
        self.image, self.header, self.layers = p_img, p_head, p_layers
        self._batch = dict(batch=batch, slot=slot_bytes, suffix=s_off, layers=s_layers,
                           valid=valid_bytes)

    async def run_batch(self, inputs, timeout: float | None = None) -> np.ndarray:
        """Up to `batch` inputs (N, C, H, W) int8: the prefix run on each, then the suffix once;
        returns the suffix's output (K, P, 1) int8 (`host.batch.unstack_logits` picks each
        image's pixel). `runs` gets the counters of every run, the suffix's last."""
        if self._batch is None:
            raise AcceleratorError("no batch loaded: call load_batch first")
        b = self._batch
        inputs = np.asarray(inputs)
        if not 1 <= len(inputs) <= b["batch"]:
            raise AcceleratorError(f"the batch takes 1 to {b['batch']} inputs, not "
                                   f"{len(inputs)}")
        timeout = timeout if timeout is not None else self.backend.default_timeout
        base, act = self.backend.mem_base, self.act_offset
        await self.write64("IMAGE_BASE", base)
        try:
            for n, x in enumerate(inputs):
                self.act_offset = act + n * b["slot"]
                await self.write64("ACT_BASE", base + self.act_offset)
                await self.run_one(x, timeout)
        finally:
            self.act_offset = act
        if b["valid"] is not None and b["valid"] < b["slot"]:
            # the separator rows (a prefix run's other tensors may have passed there)
            gap = bytes(b["slot"] - b["valid"])
            for n in range(b["batch"]):
                await self.backend.write_mem(act + n * b["slot"] + b["valid"], gap)
        await self.write64("IMAGE_BASE", base + b["suffix"])
        await self.write64("ACT_BASE", base + act)
        await self.start()
        await self.wait(timeout)
        return await self._read_output(b["layers"][-1])

    @property
    def input_shape(self):
        h = self.header
        return (h["input_c"], h["input_h"], h["input_w"])

    @property
    def output_shape(self):
        return _output_shape(self.layers[-1])

    async def _read_output(self, last) -> np.ndarray:
        """The run's counters (into `runs`) and the output of layer `last` (its descriptor)."""
        c, h, w = shape = _output_shape(last)
        nbytes = h * w * -(-c // self.config.group) * self.config.group
        data = await self.backend.read_mem(self.act_offset + last.out_offset, nbytes)
        self._counters = await self.read_counters()
        self.runs.append(dict(self._counters))
        return from_activation(data, shape, self.config)

    # -- run --------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.write("CTRL", register("CTRL").pack(start=1))

    async def abort(self) -> None:
        await self.write("CTRL", register("CTRL").pack(abort=1))

    async def wait(self, timeout: float) -> int:
        """Poll STATUS until the run ends; AcceleratorError on an error code or after `timeout`
        (the backend's unit: cycles in simulation, seconds on the board)."""
        fields = register("STATUS").unpack
        status = await self.backend.poll(_reg("STATUS"), lambda v: not fields(v)["busy"], timeout)
        if status is None:
            raise AcceleratorError(f"the accelerator did not finish within {timeout} "
                                   f"{self.backend.time_unit}")
        st = fields(status)
        if st["error"]:
            code = st["error_code"]
            known = code in ErrorCode._value2member_map_
            name = ErrorCode(code).name if known else str(code)
            text = f": {ERROR_TEXT[ErrorCode(code)]}" if known else ""
            raise AcceleratorError(f"run failed with error {name} ({code}) at layer "
                                   f"{st['layer']}{text}")
        return status

    def input_bytes(self, x: np.ndarray) -> bytes:
        """The bytes the loaded image's first layer reads for input `x` (C, H, W) int8: its
        activation layout, of the blocked map where the first conv reads the input in blocks
        (header `host_ops`, host.s2d)."""
        s2d = header_s2d(self.header, self.layers[0])
        x = np.asarray(x, np.int8)
        return to_activation(blocked_input(x, s2d) if s2d else x, self.config)

    async def run_one(self, x: np.ndarray, timeout: float) -> np.ndarray:
        """One input (C, H, W) int8 -> the last layer's output (K, OH, OW) int8."""
        if self.image is None:
            raise AcceleratorError("no image loaded: call load(image) first")
        x = np.asarray(x)
        if tuple(x.shape) != self.input_shape or x.dtype != np.int8:
            raise AcceleratorError(f"input must be int8 of shape {self.input_shape}, not "
                                   f"{x.dtype} {tuple(x.shape)}")
        first, last = self.layers[0], self.layers[-1]
        await self.backend.write_mem(self.act_offset + first.in_offset, self.input_bytes(x))
        await self.start()
        await self.wait(timeout)
        return await self._read_output(last)

    async def run(self, inputs, timeout: float | None = None) -> np.ndarray:
        """(N, C, H, W) int8 -> (N, K, OH, OW) int8, one run per input."""
        timeout = timeout if timeout is not None else self.backend.default_timeout
        return np.stack([await self.run_one(x, timeout) for x in np.asarray(inputs)])

    async def read_counters(self) -> dict:
        out = {}
        for name in COUNTERS:
            lo = await self.read(f"{name.upper()}_LO")     # latches HI
            hi = await self.read(f"{name.upper()}_HI")
            out[name] = hi << 32 | lo
        return out

    def counters(self) -> dict:
        """The counters of the last run (cycles, busy_cycles, macs, groups_issued,
        groups_skipped, dram_read_bytes, dram_write_bytes)."""
        return dict(self._counters)


def run_sync(coro):
    """Run a driver coroutine to completion on a synchronous backend (the board)."""
    return asyncio.run(coro)


class MemoryBackend:
    """No hardware: the ID registers of `config`, the other registers in a dict, DRAM in a
    bytearray, and every register write recorded in order (`writes`). With it the driver's own
    load sequence becomes data: the self-test system (`hw.soc.selftest`) replays the recorded writes
    on the real register block, and the memory is its block RAM's initial contents."""

    time_unit = "cycles"
    default_timeout = 100

    def __init__(self, config: SenseConfig, mem_size: int, mem_base: int = 0):

        self.regs = {_reg(k): v for k, v in id_values(config).items()}
        self.mem = bytearray(mem_size)
        self.mem_base, self.mem_size = mem_base, mem_size
        self.writes: list[tuple[int, int]] = []

    async def read32(self, offset: int) -> int:
        return self.regs.get(offset, 0)

    async def write32(self, offset: int, value: int) -> None:
        self.regs[offset] = value
        self.writes.append((offset, value))

    async def write_mem(self, offset: int, data: bytes) -> None:
        self.mem[offset:offset + len(data)] = data

    async def read_mem(self, offset: int, length: int) -> bytes:
        return bytes(self.mem[offset:offset + length])

    async def poll(self, offset: int, done, timeout):
        value = await self.read32(offset)
        return value if done(value) else None


class DevMemBackend:
    """The board: registers and a DRAM buffer mapped through /dev/mem (or a UIO device).

    regs_addr: physical address of the register block (the PS's HPM0 window, for example
    0xA000_0000); mem_addr, mem_size: a physically contiguous buffer the kernel does not use,
    reserved as docs/driver.md describes (a reserved-memory node, or CMA through udmabuf).
    """

    time_unit = "seconds"
    default_timeout = 10.0

    def __init__(self, regs_addr: int, mem_addr: int, mem_size: int, device: str = "/dev/mem",
                 uio: str | None = None):
        try:
            if uio:
                self._regs_fd = os.open(uio, os.O_RDWR | os.O_SYNC)
                self._regs = mmap.mmap(self._regs_fd, 4096, offset=0)
            else:
                self._regs_fd = os.open(device, os.O_RDWR | os.O_SYNC)
                self._regs = mmap.mmap(self._regs_fd, 4096, offset=regs_addr)
            self._mem_fd = os.open(device, os.O_RDWR | os.O_SYNC)
            self._mem = mmap.mmap(self._mem_fd, mem_size, offset=mem_addr)
        except OSError as e:
            raise AcceleratorError(f"cannot map the accelerator ({device}): {e.strerror}; run "
                                   f"as root on the board, see docs/driver.md") from None
        self.mem_base = mem_addr
        self.mem_size = mem_size

    async def read32(self, offset: int) -> int:
        return int.from_bytes(self._regs[offset:offset + 4], "little")

    async def write32(self, offset: int, value: int) -> None:
        self._regs[offset:offset + 4] = value.to_bytes(4, "little")

    async def write_mem(self, offset: int, data: bytes) -> None:
        self._mem[offset:offset + len(data)] = data

    async def read_mem(self, offset: int, length: int) -> bytes:
        return bytes(self._mem[offset:offset + length])

    async def poll(self, offset: int, done, timeout: float):
        end = time.monotonic() + timeout
        while True:
            value = await self.read32(offset)
            if done(value):
                return value
            if time.monotonic() > end:
                return None
            time.sleep(1e-4)
