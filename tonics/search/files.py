"""The image files of a collection: every file with an image extension under a root, recursively,
as paths relative to the root with their size and modification time (what decides whether an
indexed image must be encoded again). Links that lead outside the root, FIFOs and devices are
left out and counted by reason."""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tonics.data.images import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ImageFile:
    """One image of the collection: its path relative to the root, size and mtime."""

    path: str
    size: int
    mtime_ns: int


def scan(root: str | Path, left_out: Counter | None = None) -> list[ImageFile]:
    """Every image file under `root` (sorted by relative path); the files with an image
    extension that are left out are counted by reason in `left_out` (a link that leads outside
    the root or nowhere, a FIFO, device or directory, a file that cannot be stat-ed)."""
    root = Path(root).resolve()
    left_out = Counter() if left_out is None else left_out
    found = []
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(directory) / name
            try:
                if not path.resolve().is_relative_to(root):
                    left_out["link out of the folder"] += 1
                    continue
                info = path.stat()
            except OSError:
                left_out["link to nothing or unreadable"] += 1
                continue
            if not stat.S_ISREG(info.st_mode):
                left_out["not a regular file (FIFO, device or directory)"] += 1
                continue
            found.append(ImageFile(str(path.relative_to(root)), info.st_size, info.st_mtime_ns))
    return sorted(found, key=lambda f: f.path)
