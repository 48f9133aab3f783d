"""cocotb benches that the product itself runs (``sense bench``, the simulated driver)."""
