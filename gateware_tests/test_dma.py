"""The AXI4 DMA engines against cocotbext-axi's AxiRam."""

from pathlib import Path

from hw import sim
from hw.config import SenseConfig

HERE = Path(__file__).parent


def test_dma():
    build = sim.build("dma", SenseConfig.preset("small"))
    sim.run(build, "dma_bench", module_dir=HERE, name="dma")
