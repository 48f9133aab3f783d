"""The AXI4 DMA engines against cocotbext-axi's AxiRam."""


from hw.config import SenseConfig
from sim import harness


def test_dma():
    build = harness.build("dma", SenseConfig.preset("small"))
    harness.run(build, "sim.benches.dma_bench", name="dma")
