"""The current index of a set of shards: found by its path (named, or keyed by the shard paths in
the tonics cache), checked against the shards' sizes and mtimes from its manifest alone, and
rebuilt when a shard was added, removed or changed (the automatic index) or refused with the
reason (a named index, `tonics index --out`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from tonics.data.readers.base import DataFormatError
from tonics.data.shard_index import (
    ShardIndex,
    build_index,
    load_index,
    load_manifest,
    save_index,
    shard_stat,
)

log = logging.getLogger(__name__)


def changed_shards(index: ShardIndex, shards: list[Path]) -> list[str]:
    """Why the index no longer describes these shards (empty when it does): a shard added,
    missing, or with another size or mtime than when it was indexed."""
    indexed = {s["path"]: s for s in index.shards}
    given = set(map(str, shards))
    problems = [f"{s} is not in the index (new shard)" for s in given if s not in indexed]
    for entry in index.shards:
        path = Path(entry["path"])
        if not path.exists():
            problems.append(f"{path} is missing")
        elif "blob" in entry and not Path(entry["blob"]).is_file():
            problems.append(f"{entry['blob']} (the image bytes copied from {path}) is missing")
        elif (stat := shard_stat(path)) != {k: v for k, v in entry.items() if k != "blob"}:
            problems.append(
                f"{path} changed since it was indexed (size {entry['size']} -> "
                f"{stat['size']}, mtime {entry['mtime_ns']} -> {stat['mtime_ns']})"
            )
    others = [p for p in indexed if p not in given and Path(p).exists()]  # (missing: said above)
    return problems + [f"{p} is indexed but not among the shards given" for p in others]


def default_index_path(shards: list[Path], caption_extension: str) -> Path:
    """Where an index is kept when none is named: the tonics cache, keyed by the shard paths."""
    from tonics.paths import cache_dir

    key = hashlib.blake2b(
        "\n".join([caption_extension, *map(str, shards)]).encode(), digest_size=10
    )
    return cache_dir() / "shard-index" / f"index-{key.hexdigest()}.parquet"


def _is_current(path: Path, shards: list[Path], caption_extension: str, named: bool) -> bool:
    """Whether the index at `path` still describes `shards`; False when it must be rebuilt (the
    automatic index); a named index that is damaged or stale is an error naming the problem."""
    try:
        manifest = load_manifest(path)
    except DataFormatError as err:
        if named:
            raise
        log.warning("%s: rebuilding", err)
        return False
    problems = changed_shards(ShardIndex(manifest["shards"]), shards)
    if manifest.get("caption_extension") != caption_extension:
        problems.append(f"indexed with caption extension '{manifest.get('caption_extension')}'")
    if not problems:
        return True
    if named:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataFormatError(f"{path}: {problems[0]}{more}; re-run `tonics index` on the shards")
    log.info("shard index %s is stale (%s): rebuilding", path, problems[0])
    return False


def current_index_path(
    shards: list[Path], caption_extension: str = "txt", path: str | Path | None = None
) -> Path:
    """The path of a current index of these shards: checked from its manifest when it exists,
    else built and saved. A named index file (`tonics index --out`) that no longer matches its
    shards is an error naming them; the automatic one in the cache is rebuilt."""
    shards = [s.resolve() for s in shards]
    named = path is not None
    path = Path(path) if named else default_index_path(shards, caption_extension)
    if path.is_file() and _is_current(path, shards, caption_extension, named):
        return path
    started = time.perf_counter()
    index = build_index(shards, caption_extension, path)
    save_index(index, path, caption_extension)
    log.info(
        "shard index: %d pairs in %d shards indexed in %.1f s -> %s",
        len(index),
        len(shards),
        time.perf_counter() - started,
        path,
    )
    return path


def index_for(
    shards: list[Path], caption_extension: str = "txt", path: str | Path | None = None
) -> ShardIndex:
    """The index of these shards in memory (`current_index_path`, then loaded)."""
    return load_index(current_index_path(shards, caption_extension, path))[0]
