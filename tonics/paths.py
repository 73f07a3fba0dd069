"""Where tonics keeps derived files on disk (ontologies, feature caches, the demo, shard
indexes)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where tonics writes derived files (TONICS_CACHE, else ~/.cache/tonics)."""
    root = Path(os.environ.get("TONICS_CACHE", Path.home() / ".cache" / "tonics"))
    root.mkdir(parents=True, exist_ok=True)
    return root
