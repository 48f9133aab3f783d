"""Sense gateware (Amaranth 0.5): PE, grid, decoders, output stage, buffers, DMA, registers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sense-accel")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
