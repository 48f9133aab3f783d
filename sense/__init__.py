"""The `sense` command line: parses arguments, calls the pipeline (host, sim, constraints, hw) and
prints. It is the only package that imports all the others."""

from hw import __version__

__all__ = ["__version__"]
