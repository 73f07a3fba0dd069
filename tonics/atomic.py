"""Atomic file writes: a kill at any moment leaves either the old file or the new one, whole.

The new content goes to a temporary file in the destination directory (never `TMPDIR`, which on
clusters is often another filesystem, where a rename becomes a copy), is fsynced, renamed over the
old file with `os.replace` (atomic on POSIX), and the directory is fsynced. Used for checkpoints
and caches. Deliberately free of heavy imports.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then move it into place."""

    def to_path(temporary: Path) -> None:
        with open(temporary, "wb") as out:
            write(out)

    return atomic_write_path(path, to_path)


def atomic_write_path(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)` (for libraries that write to a path themselves) on a
    temporary file beside `path`, fsync it, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent
    )
    os.close(handle)
    try:
        write(Path(temporary))
        with open(temporary, "rb+") as out:
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


_TEMPORARY = re.compile(r"\..+\.(\d+)\.[a-z0-9_]{8}\.partial")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Remove our temporary files in `directory` (`.<name>.<pid>.<random>.partial`) whose writing
    process is gone (a killed write); a file of a live process, or of another name pattern, is
    never touched. Returns what was removed."""
    removed = []
    for candidate in Path(directory).glob(".*.partial"):
        match = _TEMPORARY.fullmatch(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def atomic_torch_save(obj, path: str | Path) -> Path:
    """`torch.save(obj, path)`, atomically."""
    import torch

    return atomic_write(path, lambda out: torch.save(obj, out))
