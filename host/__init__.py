"""Sense host package: golden model, pruning, quantization, packing, driver and the `sense` CLI."""

from hw import __version__

__all__ = ["__version__"]
