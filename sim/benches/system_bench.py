"""cocotb bench for the whole accelerator (hw.soc.accelerator.Accelerator), driven by host.driver.

cocotbext-axi's AxiRam is the DDR (behind ``m_axi``), its AxiLiteMaster the CPU (on ``s_axil``),
and `host.driver.Accelerator` runs on them through `CocotbBackend`: the same driver code as on
the board. The job (JSON file named by SENSE_JOB) is a list of steps:

* ``{"op": "run", "image": path, "inputs": path.npz (x: int8 N,C,H,W), "name": str}``: load the
  image and run every input; the outputs go to ``<results>.<name>.npy``;
* ``{"op": "fail", "image": path, "window": [offset, size] | null, "expect": "ERROR_NAME"}``: load,
  optionally narrow the DMA window (offsets from the DRAM buffer), run one zero input and expect
  the run to end with that error code;
* ``{"op": "reset", "image": path, "after": cycles}``: start a run and pull reset after that many
  cycles (the AxiRam is reset with the design);
* ``{"op": "batch", "image": prefix path, "suffix": path, "inputs": path.npz, "batch": N,
  "slot_bytes": n, "name": str}``: load a batched run's two images (`host.batch`) and run the
  inputs as one batch; the suffix's output goes to ``<results>.<name>.npy``;
* ``{"op": "refuse", "image": path}``: expect the driver to refuse to load the image;
* ``{"op": "timeout", "image": path, "cycles": n}``: expect the driver's timeout on a run.

Options: ``pause`` (probability that each AXI channel of the RAM stalls in a cycle: random DRAM
latency and back-pressure), ``monitor`` (record every AR/AW address and check it against the
window), ``seed``, ``progress`` (a file to write "done total" to after every input). Results: SENSE_RESULTS (JSON:
per step, per input the counters; errors; out-of-window transactions seen).
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam, AxiReadBus, AxiWriteBus
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite

from host.driver import Accelerator, AcceleratorError
from hw.regmap import register
from sim.benches.util import start_clock_and_reset

CLOCK_NS = 10
GUARD = 0x1000          # DRAM below and above the buffer, to catch stray accesses


class CocotbBackend:
    """The driver's backend in simulation: AxiLiteMaster registers, AxiRam memory."""

    time_unit = "cycles"

    def __init__(self, dut, axil, ram, mem_base, mem_size, default_timeout):
        self.dut, self.axil, self.ram = dut, axil, ram
        self.mem_base, self.mem_size = mem_base, mem_size
        self.default_timeout = default_timeout

    async def read32(self, offset):
        resp = await self.axil.read(offset, 4)
        return int.from_bytes(resp.data, "little")

    async def write32(self, offset, value):
        await self.axil.write(offset, int(value).to_bytes(4, "little"))

    async def write_mem(self, offset, data):
        self.ram.write(self.mem_base + offset, bytes(data))

    async def read_mem(self, offset, length):
        return bytes(self.ram.read(self.mem_base + offset, length))

    async def poll(self, offset, done, timeout):
        start = get_sim_time("ns")
        interval = 64
        while True:
            value = await self.read32(offset)
            if done(value):
                return value
            if (get_sim_time("ns") - start) / CLOCK_NS > timeout:
                return None
            await ClockCycles(self.dut.clk, interval)


class LiteMaster:
    """An AXI4-Lite master that drives the register port itself, one transaction at a time, and
    runs no coroutine between transactions (cocotbext-axi's master samples its response channels
    every cycle, which bounds the simulation speed once DRAM is inside the design). Handshakes are
    sampled at the rising edge, as cocotbext-axi does."""

    def __init__(self, dut, prefix="s_axil__"):
        self.clk = dut.clk
        self.sig = {n: getattr(dut, prefix + n) for n in (
            "awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp",
            "bvalid", "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid",
            "rready")}
        for n in ("awvalid", "wvalid", "bready", "arvalid", "rready"):
            self.sig[n].value = 0

    async def _handshake(self, channels):
        """Hold `channels` (name -> data-phase signal values) valid until each handshakes;
        returns the response values sampled at each channel's handshake."""
        s, got = self.sig, {}
        for ch, values in channels.items():
            for name, value in values.items():
                s[name].value = value
            s[ch + ("ready" if ch in ("b", "r") else "valid")].value = 1
        pending = set(channels)
        while pending:
            await RisingEdge(self.clk)
            for ch in list(pending):
                if ch in ("b", "r"):
                    if s[ch + "valid"].value == 1:
                        got[ch] = {n: s[n].value.to_unsigned() for n in (ch + "resp",) + (
                            ("rdata",) if ch == "r" else ())}
                        s[ch + "ready"].value = 0
                        pending.discard(ch)
                elif s[ch + "ready"].value == 1:
                    s[ch + "valid"].value = 0
                    pending.discard(ch)
        return got

    async def write(self, addr, value):
        got = await self._handshake({"aw": {"awaddr": addr},
                                     "w": {"wdata": value, "wstrb": 0xF}, "b": {}})
        return got["b"]["bresp"]

    async def read(self, addr):
        got = await self._handshake({"ar": {"araddr": addr}, "r": {}})
        return got["r"]["rdata"], got["r"]["rresp"]


class DesignBackend(CocotbBackend):
    """The driver's backend on `hw.soc.memsystem.MemSystem`: DRAM is a memory inside the
    design, written and read one 16-byte word per cycle through its poke / peek port; while a
    run is busy, nothing in Python runs until `busy` falls (or the timeout)."""

    def __init__(self, dut, mem_base, mem_size, default_timeout):
        super().__init__(dut, LiteMaster(dut), None, mem_base, mem_size, default_timeout)

    async def read32(self, offset):
        value, resp = await self.axil.read(offset)
        if resp:
            raise AcceleratorError(f"register read at 0x{offset:x} answered SLVERR")
        return value

    async def write32(self, offset, value):
        if await self.axil.write(offset, int(value)):
            raise AcceleratorError(f"register write at 0x{offset:x} answered SLVERR")

    async def write_mem(self, offset, data):
        data = bytes(data)
        addr, end = self.mem_base + offset, self.mem_base + offset + len(data)
        dut = self.dut
        await FallingEdge(dut.clk)
        for word in range(addr // 16, -(-end // 16)):
            lo, hi = max(addr, word * 16), min(end, word * 16 + 16)
            chunk = data[lo - addr:hi - addr]
            shift = lo - word * 16
            dut.poke_addr.value = word
            dut.poke_data.value = int.from_bytes(chunk, "little") << (8 * shift)
            dut.poke_strb.value = ((1 << len(chunk)) - 1) << shift
            await FallingEdge(dut.clk)
        dut.poke_strb.value = 0

    async def read_mem(self, offset, length):
        addr, end = self.mem_base + offset, self.mem_base + offset + length
        dut = self.dut
        out = bytearray()
        for word in range(addr // 16, -(-end // 16)):
            await FallingEdge(dut.clk)
            dut.peek_addr.value = word
            await RisingEdge(dut.clk)
            await ReadOnly()
            out += dut.peek_data.value.to_unsigned().to_bytes(16, "little")
        await FallingEdge(dut.clk)     # leave the read-only phase
        first = addr - (addr // 16) * 16
        return bytes(out[first:first + length])

    async def poll(self, offset, done, timeout):
        start = get_sim_time("ns")
        while True:
            value = await self.read32(offset)
            if done(value):
                return value
            left = timeout - int((get_sim_time("ns") - start) / CLOCK_NS)
            if left <= 0:
                return None
            if self.dut.busy.value == 1:
                # A Timer is one simulator callback; ClockCycles would wake Python every cycle.
                await First(FallingEdge(self.dut.busy), Timer(left * CLOCK_NS, "ns"))
            else:
                await ClockCycles(self.dut.clk, 8)


def _pauses(rng, p):
    while True:
        yield int(rng.random() < p)


def _weight_port(dut) -> bool:
    """Whether the design has the weight port (`SenseConfig.weight_port`: ``m_axi_w``)."""
    return hasattr(dut, "m_axi_w__arvalid")


def _write_port(dut) -> bool:
    """Whether the weight port writes too (`SenseConfig.write_port`)."""
    return hasattr(dut, "m_axi_w__awvalid")


def _channels(dut, kind):
    """(valid, ready, address, length) of every port's AR (`kind` "ar") or AW ("aw")."""
    prefixes = ["m_axi_"]
    if _weight_port(dut) if kind == "ar" else _write_port(dut):
        prefixes.append("m_axi_w_")
    return [tuple(getattr(dut, f"{p}_{kind}{s}") for s in ("valid", "ready", "addr", "len"))
            for p in prefixes]


async def _monitor(dut, seen):
    """Record every AR and AW handshake, of the weight port too: (kind, address, beats)."""
    ports = [("read", c) for c in _channels(dut, "ar")]
    ports += [("write", c) for c in _channels(dut, "aw")]
    while True:
        await RisingEdge(dut.clk)
        for kind, (valid, ready, addr, length) in ports:
            if valid.value == 1 and ready.value == 1:
                seen.append((kind, addr.value.to_unsigned(), length.value.to_unsigned() + 1))


def _progress(path, done, total):
    """Tell the caller how far the run is (sim.sysrun draws the progress bar from it)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{done} {total}\n")
    os.replace(tmp, path)


async def _run_step(acc, backend, step, out, progress):
    """Run every input of a "run" step; the outputs go to an .npy beside the results."""
    x = np.load(step["inputs"])["x"]
    outputs = []
    t_step = time.perf_counter()
    for i, xi in enumerate(x):
        outputs.append(await acc.run_one(xi, backend.default_timeout))
        if progress:
            _progress(progress, i + 1, len(x))
    np.save(f"{os.environ['SENSE_RESULTS']}.{out['name']}.npy", np.stack(outputs))
    out["runs"] = acc.runs
    out["seconds"] = time.perf_counter() - t_step
    out["error"] = None


async def _batch_step(acc, backend, step, out):
    """A "batch" step: both images, every input's prefix run, the suffix run."""
    await acc.load_batch(open(step["image"], "rb").read(), open(step["suffix"], "rb").read(),
                         step["batch"], step["slot_bytes"], step.get("valid_bytes"))
    t_step = time.perf_counter()
    y = await acc.run_batch(np.load(step["inputs"])["x"], backend.default_timeout)
    np.save(f"{os.environ['SENSE_RESULTS']}.{out['name']}.npy", y[None])
    out["runs"] = acc.runs
    out["seconds"] = time.perf_counter() - t_step
    out["error"] = None


async def _design_system(dut, job):
    """The fast path (`MemSystem`): "run" and "refuse" steps only (stalls, the bus monitor and
    fault injection need the cocotbext-axi memory)."""
    dut.poke_strb.value = 0
    backend = DesignBackend(dut, GUARD, job["mem_size"], job.get("timeout", 10_000_000))
    await start_clock_and_reset(dut)
    results = {"steps": []}
    for step in job["steps"]:
        if step["op"] not in ("run", "refuse", "batch"):
            raise ValueError(f"step {step['op']!r} needs the cocotbext-axi DRAM (dram=cocotb)")
        acc = Accelerator(backend)
        out = {"op": step["op"], "name": step.get("name", step["op"])}
        try:
            if step["op"] == "batch":
                await _batch_step(acc, backend, step, out)
                results["steps"].append(out)
                continue
            await acc.load(open(step["image"], "rb").read())
            if step["op"] == "run":
                await _run_step(acc, backend, step, out, job.get("progress"))
            else:
                out["error"] = None
        except AcceleratorError as e:
            out["error"] = str(e)
        results["steps"].append(out)
    with open(os.environ["SENSE_RESULTS"], "w") as f:
        json.dump(results, f)


@cocotb.test()
async def system(dut):
    job = json.loads(open(os.environ["SENSE_JOB"]).read())
    rng = np.random.default_rng(job.get("seed", 1))
    mem_size = job["mem_size"]
    if job.get("dram") == "design":
        await _design_system(dut, job)
        return
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, reset_active_level=True,
                 size=mem_size + 2 * GUARD)
    reads = [ram.read_if]
    writes = [ram.write_if]
    if _weight_port(dut):       # the weight port: a second read port of the same memory
        reads.append(AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_w_"), dut.clk, dut.rst,
                                reset_active_level=True, mem=ram.mem))
    if _write_port(dut):        # and a second write port (`SenseConfig.write_port`)
        writes.append(AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi_w_"), dut.clk, dut.rst,
                                  reset_active_level=True, mem=ram.mem))
    pause = job.get("pause", 0.0)
    if pause:
        for channel in (*(r.ar_channel for r in reads), *(r.r_channel for r in reads),
                        *(w.aw_channel for w in writes), *(w.w_channel for w in writes),
                        *(w.b_channel for w in writes)):
            channel.set_pause_generator(_pauses(rng, pause))
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst,
                         reset_active_level=True)
    await start_clock_and_reset(dut)
    backend = CocotbBackend(dut, axil, ram, GUARD, mem_size, job.get("timeout", 10_000_000))
    seen = []
    if job.get("monitor"):
        cocotb.start_soon(_monitor(dut, seen))
    results = {"steps": []}
    t0 = time.perf_counter()
    for step in job["steps"]:
        acc = Accelerator(backend)
        image = open(step["image"], "rb").read()
        ram.write(0, bytes(mem_size + 2 * GUARD))    # a clean DRAM for every step
        out = {"op": step["op"], "name": step.get("name", step["op"])}
        if step["op"] == "refuse":
            try:
                await acc.load(image)
                out["error"] = None
            except AcceleratorError as e:
                out["error"] = str(e)
            results["steps"].append(out)
            continue
        if step["op"] == "batch":
            try:
                await _batch_step(acc, backend, step, out)
            except AcceleratorError as e:
                out["error"] = str(e)
            results["steps"].append(out)
            continue
        if step["op"] == "run":
            # A refused image or a failed run ends the step with its one-line error.
            try:
                await acc.load(image)
                await _run_step(acc, backend, step, out, job.get("progress"))
            except AcceleratorError as e:
                out["error"] = str(e)
            results["steps"].append(out)
            continue
        # A "fail" step may load an image the driver would refuse, to see the hardware's check.
        await acc.load(image, refuse_unsupported=step["op"] != "fail")
        window = (GUARD, acc.act_offset + acc.header["act_size"])
        if step["op"] == "timeout":
            try:
                await acc.run_one(np.zeros(acc.input_shape, np.int8), step["cycles"])
                out["error"] = None
            except AcceleratorError as e:
                out["error"] = str(e)
            await acc.wait(backend.default_timeout)     # let the run end before the next step
        elif step["op"] == "fail":
            if step.get("window"):
                base, size = step["window"]
                window = (GUARD + base, size)
                await acc.write64("WINDOW_BASE", window[0])
                await acc.write64("WINDOW_SIZE", window[1])
            before = len(seen)
            try:
                await acc.run_one(np.zeros(acc.input_shape, np.int8), backend.default_timeout)
                out["error"] = None
            except AcceleratorError as e:
                out["error"] = str(e)
            out["transactions"] = len(seen) - before
            out["outside"] = [t for t in seen[before:]
                              if t[1] < window[0] or t[1] + 16 * t[2] > window[0] + window[1]]
            out["status"] = await acc.read("STATUS")
        elif step["op"] == "reset":
            await acc.backend.write_mem(acc.act_offset + acc.layers[0].in_offset,
                                        bytes(16))
            await acc.start()
            await ClockCycles(dut.clk, step["after"])
            out["busy_at_reset"] = bool(register("STATUS").unpack(await acc.read("STATUS"))["busy"])
            dut.rst.value = 1
            await ClockCycles(dut.clk, 4)
            dut.rst.value = 0
            await ClockCycles(dut.clk, 4)
            out["status_after_reset"] = await acc.read("STATUS")
        results["steps"].append(out)
    results["wall_seconds"] = time.perf_counter() - t0
    results["outside"] = [t for t in seen
                          if t[1] < GUARD or t[1] + 16 * t[2] > GUARD + mem_size]
    with open(os.environ["SENSE_RESULTS"], "w") as f:
        json.dump(results, f)
