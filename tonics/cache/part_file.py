"""One part file of a sharded cache: a safetensors file mapped without unpickling anything, and
checked to be what it claims before a row of it is served.

A part is only ever written by `store.write_part`, but the file on disk may be damaged, truncated,
planted or written by another version: everything a reader will index by (`pairs`, `pair_image`,
the offsets of ragged arrays, the failures in the metadata) is checked against the part's own
arrays and the cache's pair count, so a lying part is refused with one reason and computed
again, never an IndexError or an allocation the size of its claim.
"""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import numpy as np

_NUMPY = {
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "U8": np.uint8,
    "BOOL": np.bool_,
}

Failures = dict[int, tuple[str, str]]  # global pair index -> (image location, reason)


def _map_tensor(path: Path, name: str, info: dict, data_start: int, size: int) -> np.ndarray:
    dtype = np.dtype(_NUMPY[info["dtype"]])
    shape = tuple(int(n) for n in info["shape"])
    begin, end = (int(n) for n in info["data_offsets"])
    if not 0 <= begin <= end or end - begin != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"tensor {name} does not fit the file")
    if data_start + end > size:
        raise ValueError(f"tensor {name} does not fit the file")
    if math.prod(shape) == 0:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype, "r", offset=data_start + begin, shape=shape)


def map_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of a safetensors file as a read-only memmap, and its metadata; ValueError
    naming the file when it is not a whole, valid safetensors file (or not a regular file)."""
    try:
        if path.is_symlink() or not stat.S_ISREG(path.stat().st_mode):
            raise ValueError("not a regular file")
        size = path.stat().st_size
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 2 <= length <= size - 8:
                raise ValueError("header length out of range")
            header = json.loads(handle.read(length))
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("__metadata__ is not a map of strings")
        arrays = {
            name: _map_tensor(path, name, info, 8 + length, size) for name, info in header.items()
        }
    except Exception as err:  # noqa: BLE001 - whatever is wrong, the file is not ours
        raise ValueError(
            f"{path} is not a valid tonics safetensors file ({type(err).__name__}: {err})"
        ) from err
    return arrays, metadata


def _integers(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    values = np.asarray(arrays[name])
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ValueError(f"{name} is not a list of integers")
    return values


def _check_ragged(arrays: dict[str, np.ndarray], count: int) -> set[str]:
    """Names of the ragged arrays and their offsets, after checking each offsets array runs from 0
    to its values' length without going back."""
    names = set()
    for offsets_name in [n for n in arrays if n.endswith("_offsets")]:
        name = offsets_name.removesuffix("_offsets")
        offsets = _integers(arrays, offsets_name)
        values = arrays.get(name)
        if values is None or values.ndim == 0 or len(offsets) != count + 1:
            raise ValueError(f"{offsets_name} does not match {count} pairs and their {name} rows")
        if offsets[0] != 0 or offsets[-1] != values.shape[0] or (np.diff(offsets) < 0).any():
            raise ValueError(f"{offsets_name} does not run from 0 to the rows of {name}")
        names |= {name, offsets_name}
    return names


def _check_rows(arrays: dict[str, np.ndarray], num_pairs: int | None) -> None:
    """`pairs` name distinct pairs of the cache, `pair_image` rows that exist, every other array a
    row per pair or a row per image."""
    pairs = _integers(arrays, "pairs")
    if num_pairs is not None and len(pairs) and (pairs.min() < 0 or pairs.max() >= num_pairs):
        raise ValueError(f"pairs outside 0..{num_pairs - 1}")
    if len(np.unique(pairs)) != len(pairs):
        raise ValueError("a pair named twice")
    ragged = _check_ragged(arrays, len(pairs))
    rows = {}
    for name, values in arrays.items():
        if name not in ragged | {"pairs", "pair_image"}:
            if values.ndim == 0:
                raise ValueError(f"{name} has no rows")
            rows[name] = values.shape[0]
    image_rows = {n for n in rows.values() if n != len(pairs)}
    if len(image_rows) > 1:
        raise ValueError(f"arrays of {sorted(image_rows)} rows for {len(pairs)} pairs")
    pair_image = _integers(arrays, "pair_image")
    bound = min(image_rows or {len(pairs)})
    if len(pair_image) != len(pairs) or (
        len(pairs) and (pair_image.min() < -1 or pair_image.max() >= bound)
    ):
        raise ValueError(
            f"pair_image does not name rows -1..{bound - 1} for each of {len(pairs)} pairs"
        )


def _failures(metadata: dict[str, str], pairs: np.ndarray) -> Failures:
    raw = json.loads(metadata.get("failures", "{}"))
    if not isinstance(raw, dict):
        raise ValueError("failures is not a map")
    failures = {}
    for key, value in raw.items():
        if not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            raise ValueError(f"failure {key!r} is not [location, reason]")
        failures[int(key)] = (value[0], value[1])
    if not set(failures) <= set(pairs.tolist()):
        raise ValueError("failures name pairs outside the part")
    return failures


def read_part(
    path: Path, key: str, num_pairs: int | None = None
) -> tuple[dict[str, np.ndarray], Failures]:
    """A part's arrays (mapped) and failures; ValueError naming the file and the reason when it is
    not a whole part of the cache `key` of `num_pairs` pairs."""
    arrays, metadata = map_arrays(path)
    if metadata.get("key") != key or "pairs" not in arrays or "pair_image" not in arrays:
        raise ValueError(
            f"{path} belongs to another cache (key {metadata.get('key')!r}, expected {key!r})"
        )
    try:
        _check_rows(arrays, num_pairs)
        failures = _failures(metadata, np.asarray(arrays["pairs"]))
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{path} is not a whole part of this cache ({err})") from err
    return arrays, failures
