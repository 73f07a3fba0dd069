"""Atomic file writes: a kill at any moment leaves either the old file or the new one, whole.

The new content goes to a temporary file in the destination directory (never `TMPDIR`, which on
clusters is often another filesystem, where a rename becomes a copy), is fsynced, renamed over the
old file with `os.replace` (atomic on POSIX), and the directory is fsynced. Used for checkpoints
and caches. Deliberately free of heavy imports.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)  # fmt: skip
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def atomic_torch_save(obj, path: str | Path) -> Path:
    """`torch.save(obj, path)`, atomically."""
    import torch

    return atomic_write(path, lambda out: torch.save(obj, out))
