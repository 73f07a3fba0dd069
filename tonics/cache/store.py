"""Sharded, memory-mapped caches of per-pair tensors, written by every rank in parallel.

A cache is a directory of part files (`part-00000-of-00004.safetensors`, ...) and a
`manifest.json`. The training pairs are cut into parts of whole images (every pair of an image
lies in the part that holds the image), about `PART_PAIRS` pairs each and at least one per rank.
Rank r computes parts r, r + W, r + 2W, ... and writes each one atomically as soon as it is done,
so a build that is killed resumes from the parts already written. When every part is on disk, rank
0 writes the manifest: the cache is complete when the manifest exists.

Reading maps each part's arrays straight from the file (numpy memmap at the offsets given in the
safetensors JSON header): nothing is unpickled, nothing is read until a batch asks for its rows,
and the processes of one machine share the pages, so a 20 GB cache costs each rank the rows it
touches, not 20 GB. Files are only ever replaced by a rename (a new inode), so a running reader
keeps the pages it mapped; overwriting a part in place under a running job would fault it.

Each part holds `pairs` (global indices of its pairs, in row order), `pair_image` (each pair's
image row within the part, -1 where the image failed to load), per-pair arrays (a row per pair),
per-image arrays (a row per image) and ragged per-pair arrays (`name` rows end to end, pair j of
the part owning rows `name_offsets[j]:name_offsets[j+1]`). Failures travel as JSON metadata.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from tonics.atomic import atomic_write, atomic_write_path
from tonics.cache.part_file import Failures, read_part

log = logging.getLogger(__name__)

PART_PAIRS = 50_000  # pairs per part: a killed build loses at most one part per rank
MANIFEST = "manifest.json"
FORMAT = "tonics-sharded-cache-1"
PART_NAME = re.compile(r"part-\d{5}-of-\d{5}\.safetensors")
BuildPart = Callable[[list[int], str], tuple[dict[str, torch.Tensor], Failures]]


def part_name(index: int, count: int) -> str:
    """File name of part `index` of `count`."""
    return f"part-{index:05d}-of-{count:05d}.safetensors"


def parts_for(num_pairs: int, world_size: int) -> int:
    """How many parts a cache of `num_pairs` pairs is cut into when `world_size` ranks write it."""
    return max(world_size, math.ceil(num_pairs / PART_PAIRS), 1)


def partition(image_ids: Sequence[str], count: int) -> list[list[int]]:
    """Pair indices of each part: whole images in order of first appearance, about equal pairs;
    at most `count` parts, none empty."""
    groups: dict[str, list[int]] = {}
    for index, image_id in enumerate(image_ids):
        groups.setdefault(image_id, []).append(index)
    target = max(len(image_ids), 1) / count
    parts: list[list[int]] = [[] for _ in range(count)]
    done = 0
    for group in groups.values():
        parts[min(int(done / target), count - 1)].extend(group)
        done += len(group)
    return [part for part in parts if part]


class ShardedStore:
    """A complete cache directory, mapped lazily: rows are read when a batch asks for them."""

    def __init__(
        self,
        directory: Path,
        parts: list[dict[str, np.ndarray]],
        failures: Failures,
        manifest: dict,
    ) -> None:
        self.directory, self.parts, self.failures, self.manifest = (
            directory,
            parts,
            failures,
            manifest,
        )
        num_pairs = int(manifest["num_pairs"])
        self.pair_part = np.full(num_pairs, -1, dtype=np.int32)
        self.pair_row = np.zeros(num_pairs, dtype=np.int64)
        for index, arrays in enumerate(parts):  # each part's pairs checked by read_part
            pairs = np.asarray(arrays["pairs"])
            self.pair_part[pairs] = index
            self.pair_row[pairs] = np.arange(len(pairs))
        if (self.pair_part < 0).any():
            raise ValueError(
                f"{directory}: the parts do not cover every pair; delete the directory to "
                "rebuild it"
            )

    @classmethod
    def open(cls, directory: Path, key: str, num_pairs: int | None = None) -> ShardedStore:
        """The cache in `directory`; ValueError naming the file when anything is missing or
        invalid: another key, a pair count other than `num_pairs`, a part name that is not one of
        ours (so nothing outside the directory is ever mapped)."""
        manifest_path = directory / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("format") != FORMAT or manifest.get("key") != key:
                raise ValueError("another format or key")
            count = manifest.get("num_pairs")
            if (
                not isinstance(count, int)
                or count < 1
                or (num_pairs is not None and count != num_pairs)
            ):
                raise ValueError(f"num_pairs {count!r}, expected {num_pairs}")
            names = manifest.get("parts")
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(n, str) and PART_NAME.fullmatch(n) for n in names)
            ):
                raise ValueError("part names are not this cache's")
        except Exception as err:  # noqa: BLE001
            raise ValueError(
                f"{manifest_path} is not a valid manifest of this cache ({err})"
            ) from err
        parts, failures = [], {}
        for name in manifest["parts"]:
            arrays, part_failures = read_part(directory / name, key, manifest["num_pairs"])
            parts.append(arrays)
            failures.update(part_failures)
        return cls(directory, parts, failures, manifest)

    @property
    def num_pairs(self) -> int:
        """Pairs the cache covers."""
        return len(self.pair_part)

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data on disk (mapped, not held in memory)."""
        return sum(a.nbytes for arrays in self.parts for a in arrays.values())

    def dtype(self, name: str) -> torch.dtype:
        """The stored dtype of array `name`."""
        return torch.from_numpy(np.empty(0, self.parts[0][name].dtype)).dtype

    def _groups(self, pairs: np.ndarray):
        parts, rows = self.pair_part[pairs], self.pair_row[pairs]
        for part in np.unique(parts):
            selected = np.nonzero(parts == part)[0]
            yield self.parts[part], selected, rows[selected]

    def per_pair(self, name: str, pairs: torch.Tensor) -> torch.Tensor:
        """Rows of per-pair array `name` for these pairs, in their order."""
        pairs = np.asarray(pairs, dtype=np.int64)
        sample = self.parts[0][name]
        out = np.empty((len(pairs), *sample.shape[1:]), sample.dtype)
        for arrays, selected, rows in self._groups(pairs):
            out[selected] = arrays[name][rows]
        return torch.from_numpy(out)

    def image_keys(self, pairs: torch.Tensor) -> np.ndarray:
        """A number naming each pair's image (part and row), -1 where the image failed."""
        pairs = np.asarray(pairs, dtype=np.int64)
        keys = np.full(len(pairs), -1, dtype=np.int64)
        for arrays, selected, rows in self._groups(pairs):
            local = np.asarray(arrays["pair_image"][rows])
            keys[selected] = np.where(
                local >= 0, (self.pair_part[pairs[selected]].astype(np.int64) << 40) + local, -1
            )
        return keys

    def per_image(self, name: str, keys: np.ndarray) -> torch.Tensor:
        """Rows of per-image array `name` for these image keys (all >= 0), in their order."""
        parts, rows = keys >> 40, keys & ((1 << 40) - 1)
        sample = self.parts[int(parts[0]) if len(keys) else 0][name]
        out = np.empty((len(keys), *sample.shape[1:]), sample.dtype)
        for part in np.unique(parts):
            selected = np.nonzero(parts == part)[0]
            out[selected] = self.parts[part][name][rows[selected]]
        return torch.from_numpy(out)

    def images_of(self, name: str, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows of per-image array `name` for the pairs whose image loaded, usable mask)."""
        keys = self.image_keys(pairs)
        usable = keys >= 0
        return self.per_image(name, keys[usable]), torch.from_numpy(usable)

    def ragged(self, name: str, pairs: torch.Tensor) -> list[torch.Tensor]:
        """Each pair's rows of ragged array `name`, in the pairs' order."""
        pairs = np.asarray(pairs, dtype=np.int64)
        out: list[torch.Tensor | None] = [None] * len(pairs)
        for arrays, selected, rows in self._groups(pairs):
            offsets, values = arrays[f"{name}_offsets"], arrays[name]
            for position, row in zip(selected.tolist(), rows.tolist()):
                out[position] = torch.from_numpy(np.array(values[offsets[row] : offsets[row + 1]]))
        return out


def try_open(directory: Path, key: str, what: str, num_pairs: int) -> ShardedStore | None:
    """The store in `directory` when complete and intact, else None (a damaged one is named)."""
    if not (directory / MANIFEST).is_file():
        return None
    try:
        return ShardedStore.open(directory, key, num_pairs)
    except ValueError as err:
        log.warning("%s: %s; refusing it and computing the damaged parts again", what, err)
        return None


def _part_is_whole(path: Path, key: str, pairs: list[int]) -> bool:
    """Whether `path` holds a whole part of cache `key` with exactly these pairs."""
    if not path.is_file():
        return False
    try:
        arrays, _ = read_part(path, key)
        if np.asarray(arrays["pairs"]).tolist() != list(pairs):
            raise ValueError(f"{path} holds other pairs than its part of this cache")
        return True
    except ValueError as err:
        log.warning("%s; computing it again", err)
        return False


def write_part(
    path: Path, key: str, pairs: list[int], arrays: dict[str, torch.Tensor], failures: Failures
) -> None:
    """Write one part (its pairs' global indices, its arrays, its failures) atomically."""
    tensors = {name: t.contiguous() for name, t in arrays.items()}
    tensors["pairs"] = torch.tensor(pairs, dtype=torch.int64)
    metadata = {"key": key, "failures": json.dumps({str(k): list(v) for k, v in failures.items()})}
    atomic_write_path(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def _build_part(
    path: Path, key: str, pairs, build_part: BuildPart, what: str, index: int, count: int
) -> None:
    """Compute and write one part, unless a whole one is already on disk (a resumed build)."""
    if _part_is_whole(path, key, pairs):
        log.info("%s: part %d/%d already on disk (a resumed build)", what, index + 1, count)
        return
    for partial in path.parent.glob(f".{path.name}.*.partial"):  # left by a killed writer
        partial.unlink(missing_ok=True)
    arrays, failures = build_part(pairs, f"{what}, part {index + 1}/{count}")
    write_part(path, key, pairs, arrays, failures)


def _check_parts(directory: Path, names: list[str], what: str) -> None:
    """After every rank wrote its own parts, all of them must be visible here."""
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(
            f"{what}: {len(missing)} part(s) ({missing[0]}...) missing from {directory} after "
            "every "
            "rank wrote its own: with several nodes the tonics cache (TONICS_CACHE) must be on a "
            "filesystem they all share"
        )


def _write_manifest(
    directory: Path, key: str, names: list[str], num_pairs: int, world_size: int
) -> None:
    """Rank 0's last word: the manifest (the cache is complete) and stale parts removed."""
    manifest = {
        "format": FORMAT,
        "key": key,
        "num_pairs": num_pairs,
        "parts": names,
        "written_by_ranks": world_size,
    }
    atomic_write(
        directory / MANIFEST, lambda out: out.write(json.dumps(manifest, indent=1).encode())
    )
    for stale in directory.glob("part-*.safetensors"):  # parts of a build with another count
        if stale.name not in names:
            stale.unlink(missing_ok=True)


def load_or_build(
    directory: Path,
    key: str,
    image_ids: Sequence[str],
    build_part: BuildPart,
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    what: str = "cache",
) -> ShardedStore:
    """The cache in `directory`, built first when it is not complete.

    `image_ids` has one entry per pair (pairs of one image stay in one part); `build_part(pairs,
    description)` computes a part's arrays and failures. Every rank calls this with the same
    arguments: each builds its own parts, `barrier` waits for all, rank 0 writes the manifest."""
    barrier = barrier or (lambda: None)
    store = try_open(directory, key, what, len(image_ids))
    if store is not None:
        log.info(
            "%s: loaded %s (%d parts, %.1f MB mapped)",
            what,
            directory,
            len(store.parts),
            store.nbytes / 1e6,
        )
        return store
    groups = partition(image_ids, parts_for(len(image_ids), world_size))
    names = [part_name(i, len(groups)) for i in range(len(groups))]
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(rank, len(groups), world_size):
        _build_part(
            directory / names[index], key, groups[index], build_part, what, index, len(groups)
        )
    barrier()
    _check_parts(directory, names, what)
    if rank == 0:
        _write_manifest(directory, key, names, len(image_ids), world_size)
    barrier()
    store = ShardedStore.open(directory, key, len(image_ids))
    count = len(groups)
    log.info(
        "%s: %d parts written by %d rank(s) to %s (%.1f MB)",
        what,
        count,
        world_size,
        directory,
        store.nbytes / 1e6,
    )
    return store


def ranks_of(trainer) -> dict:
    """`rank`, `world_size` and `barrier` keyword arguments for `load_or_build` from a Trainer
    (one process when there is none)."""
    if trainer is None:
        return {"rank": 0, "world_size": 1, "barrier": None}
    return {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "barrier": trainer.strategy.barrier,
    }
