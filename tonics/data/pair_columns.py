"""Writing a pair table (`tonics.data.pair_table`): from whole Arrow columns (the shard index's), or
row by row through `PairColumns`, which every file reader fills.

`PairColumns` keeps at most `CHUNK` rows as Python values, then turns them into Arrow arrays, so a
reader of millions of rows holds Arrow buffers, never an object per pair. Images given as bytes
(a Hugging Face dataset's embedded images) go to a blob file beside the table and are read back by
offset and size, as a shard's members are.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tonics.atomic import atomic_write
from tonics.data.records import SPLITS, caption_key
from tonics.errors import InputError

TABLE_VERSION = 4
META_KEY = b"tonics_pair_table"
CHUNK = 1 << 16
OPTIONAL = ("image_id", "location", "member", "objects")  # stored only when some pair has one


def first_appearance(values: np.ndarray) -> np.ndarray:
    """Renumber `values` 0, 1, ... in order of first appearance."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def _caption_keys(captions, chunk: int = 1 << 18) -> np.ndarray:
    """Each caption's normalised-caption key (`captions`: an Arrow string array): a 64-bit hash,
    so comparing captions costs 8 bytes a pair."""
    keys = np.empty(len(captions), dtype=np.int64)
    for start in range(0, len(captions), chunk):
        block = captions.slice(start, chunk).to_pylist()
        keys[start : start + len(block)] = [caption_key(c) for c in block]
    return keys


def _string_keys(strings) -> np.ndarray:
    """Equal strings -> equal integers (Arrow's dictionary encoding), in first-appearance order."""
    import pyarrow.compute as pc

    return pc.dictionary_encode(strings).indices.to_numpy(zero_copy_only=False)


def _derived_columns(columns: dict) -> dict:
    """The columns computed from the pairs: image codes (one per distinct image id), caption codes
    and keys, and the pairs' order by image id (stable; bytewise = code point order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    images = columns.get("image_id", columns["pair_id"])
    caption_keys = _caption_keys(columns["caption"])
    return {
        "image_code": pa.array(first_appearance(_string_keys(images)).astype(np.int32)),
        "caption_code": pa.array(first_appearance(caption_keys).astype(np.int32)),
        "caption_key": pa.array(caption_keys),
        "image_order": pa.array(pc.sort_indices(images).to_numpy().astype(np.int64)),
    }


def _content_digest(columns: dict, paths: list[str], splits: list[str]) -> str:
    """A digest of the pairs' own columns (ids, captions, images, splits, labels), the shard files
    and the split names: what makes two tables the same table."""
    digest = hashlib.sha256()
    for name in ("pair_id", "caption", "split", "shard", "offset", "size", *OPTIONAL):
        if name in columns:
            digest.update(name.encode())
            for buffer in columns[name].buffers():
                if buffer is not None:
                    digest.update(memoryview(buffer))
    digest.update(json.dumps([paths, splits]).encode())
    return digest.hexdigest()


def write_pair_table(
    path: str | Path,
    columns: dict,
    *,
    paths: list[str],
    splits: list[str],
    skipped: dict,
    source: dict,
) -> Path:
    """Write a pair table (atomically). `columns`: Arrow arrays or numpy arrays by name: pair_id,
    caption, split (numbers into `splits`), shard (a number into `paths`, -1 for a plain file),
    offset and size (-1: the whole file), and the optional image_id (default: the pair id),
    location (a plain file's path), member (a tar member) and objects (labels); `source`: what the
    table was made from (checked when it is opened again); `skipped`: what reading the data
    skipped ({"counts": {reason: n}, "examples": ["where: reason", ...]}), given back to a
    reader that opens the table again."""
    import pyarrow as pa
    import pyarrow.compute as pc

    types = {"split": pa.int8(), "shard": pa.int32(), "offset": pa.int64(), "size": pa.int64()}
    stored = {}
    for name, values in columns.items():
        if name in types:
            stored[name] = pa.array(np.asarray(values, dtype=types[name].to_pandas_dtype()))
        elif name == "objects":
            stored[name] = _one(values, pa.large_list(pa.large_string()))
        else:
            stored[name] = _one(values, pa.large_string())
    if pc.count_distinct(stored["pair_id"]).as_py() != len(stored["pair_id"]):
        raise InputError(f"{path}: pair ids are not unique; the data repeats a pair id")
    stored.update(_derived_columns(stored))
    meta = {
        "version": TABLE_VERSION,
        "paths": paths,
        "splits": splits,
        "skipped": skipped,
        "source": source,
        "digest": _content_digest(stored, paths, splits),
    }
    table = pa.table(stored).replace_schema_metadata({META_KEY: json.dumps(meta)})

    def write(handle) -> None:
        with pa.ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table, max_chunksize=len(table) or None)

    return atomic_write(Path(path), write)


def _one(values, kind):
    """One Arrow array of `kind` from an array, a chunked array or a list of chunks."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(kind)
    if isinstance(values, list) and values and isinstance(values[0], pa.Array):
        return pa.concat_arrays([v.cast(kind) for v in values])
    return pa.array(values, kind)


@functools.cache
def _kind(name: str):
    """The Arrow type of a row column (pyarrow imported on first use)."""
    import pyarrow as pa

    if name == "objects":
        return pa.large_list(pa.large_string())
    return pa.int64() if name in ("split", "shard", "offset", "size") else pa.large_string()


class PairColumns:
    """A pair table being filled row by row (`add`), then written (`write`) to `path`."""

    def __init__(self, path: str | Path) -> None:
        """`path`: the table file to write; a blob for in-memory image bytes goes beside it."""
        self.path = Path(path)
        self.blob = self.path.with_suffix(".images.bin")
        self._blob_handle = None
        self._blob_size = 0
        self._rows: dict[str, list] = {}
        self._chunks: dict[str, list] = {}
        self._count = 0
        self._present: set[str] = set()
        self._splits = list(SPLITS)  # then any other split name a dataset has, as met

    def _split_number(self, split: str) -> int:
        if split not in self._splits:
            self._splits.append(split)
        return self._splits.index(split)

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        pair_id: str,
        caption: str,
        split: str,
        *,
        image_id: str | None = None,
        location: str | None = None,
        data: bytes | None = None,
        objects: tuple[str, ...] = (),
    ) -> None:
        """One pair: its image a file at `location`, or `data` (bytes kept in the blob)."""
        offset = size = -1
        shard = -1
        if data is not None:
            offset, size, shard, location = self._blob_write(data), len(data), 0, None
        row = {
            "pair_id": pair_id,
            "caption": caption,
            "split": self._split_number(split),
            "shard": shard,
            "offset": offset,
            "size": size,
            "image_id": pair_id if image_id is None else image_id,
            "location": location,
            "objects": list(objects),
        }
        if image_id is not None and image_id != pair_id:
            self._present.add("image_id")
        if location is not None:
            self._present.add("location")
        if objects:
            self._present.add("objects")
        for name, value in row.items():
            self._rows.setdefault(name, []).append(value)
        self._count += 1
        if len(self._rows["pair_id"]) >= CHUNK:
            self._flush()

    def _blob_write(self, data: bytes) -> int:
        if self._blob_handle is None:
            self._blob_handle = open(self.blob.with_suffix(".partial"), "wb")  # noqa: SIM115
        offset = self._blob_size
        self._blob_handle.write(data)
        self._blob_size += len(data)
        return offset

    def _flush(self) -> None:
        import pyarrow as pa

        for name, values in self._rows.items():
            self._chunks.setdefault(name, []).append(pa.array(values, _kind(name)))
        self._rows = {}

    def write(self, *, skipped: dict, source: dict) -> Path:
        """Write the table (and close its blob): what every reader's `read` returns, mapped."""
        import pyarrow as pa

        self._flush()
        if self._blob_handle is not None:
            self._blob_handle.close()
            self.blob.with_suffix(".partial").replace(self.blob)
        names = ["pair_id", "caption", "split", "shard", "offset", "size"]
        names += [n for n in OPTIONAL if n in self._present]
        columns = {
            n: pa.concat_arrays(self._chunks[n]) if n in self._chunks else pa.array([], _kind(n))
            for n in names
        }
        return write_pair_table(
            self.path,
            columns,
            paths=[str(self.blob)] if self._blob_handle is not None else [],
            splits=self._splits,
            skipped=skipped,
            source=source,
        )


def stat_of(path: Path) -> dict:
    """What identifies a file's version: its path, size and modification time."""
    stat = os.stat(path)
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
