"""Board build trees, written to a temporary directory beside the target and renamed into place,
so a failed build never leaves a half-written tree."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["BOARDS", "BuildError", "write_tree"]

#: Boards `sense build` knows; each has a module of this package.
BOARDS = ("zcu102", "ulx3s")


class BuildError(RuntimeError):
    """A build failed or its tools are missing; the message says which and where the log is."""


def write_tree(files: dict, outdir) -> Path:
    """Write {relative name: str | bytes} as the directory `outdir`, replacing it whole."""
    outdir = Path(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(tmp, 0o755)
        if outdir.exists():
            old = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
            os.replace(outdir, old)
            os.replace(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir
