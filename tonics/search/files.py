"""The image files of a collection: every file with an image extension under a root, recursively,
as paths relative to the root with their size and modification time (what decides whether an
indexed image must be encoded again). Links that lead outside the root are left out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tonics.data.images import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ImageFile:
    """One image of the collection: its path relative to the root, size and mtime."""

    path: str
    size: int
    mtime_ns: int


def scan(root: str | Path) -> list[ImageFile]:
    """Every image file under `root` (sorted by relative path)."""
    root = Path(root).resolve()
    found = []
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(directory) / name
            if not path.resolve().is_relative_to(root) or not path.is_file():
                continue
            stat = path.stat()
            found.append(ImageFile(str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: f.path)
