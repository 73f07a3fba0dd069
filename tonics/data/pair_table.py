"""Pairs as memory-mapped columns: what a web-scale corpus costs at start-up is a file map, not
a Python object per pair.

A `PairTable` is a sequence of `PairRecord`s whose columns live in one Arrow IPC file (written
once, beside the shard index): pair id, caption, shard number, byte offset and size of the image,
tar member name, each pair's image and normalised-caption numbers (the sampler's variety codes),
its normalised-caption key (which captions evaluation counts as seen in training) and the order
of the pairs by image id (evaluation's order). The file is mapped read-only, so every
rank on a machine shares one copy in the page cache and opening it costs milliseconds whatever the
corpus size; a record object is made only when a batch asks for that pair. Views (a split, a
subset, an order) are the same columns plus an array of row numbers.

Arrow's IPC format is used as is (pyarrow, already a dependency): it is the memory-mappable
columnar format of the Python data stack, so the table also opens in pandas/polars/DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tonics.atomic import atomic_write
from tonics.data.records import ImageRef, PairRecord, caption_key, image_rank
from tonics.errors import InputError

TABLE_VERSION = 2
_META_KEY = b"tonics_pair_table"


class Column(Sequence):
    """One string column of a table view, read lazily: an item is one value, a slice a list."""

    def __init__(self, table: PairTable, name: str) -> None:
        """The column `name` of `table`'s rows."""
        self.table, self.name = table, name

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i):
        array = self.table._arrays[self.name]
        if isinstance(i, slice):
            rows = self.table._row_range(i)
            if isinstance(rows, slice):
                return array.slice(rows.start, rows.stop - rows.start).to_pylist()
            return array.take(rows).to_pylist()
        return array[self.table._row(i)].as_py()

    def __iter__(self) -> Iterator[str]:
        step = 1 << 16
        for start in range(0, len(self), step):
            yield from self[start : start + step]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Column) and other.name == self.name and other.table is self.table:
            return True
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None


class PairTable(Sequence):
    """A sequence of `PairRecord`s over a memory-mapped pair table file (see the module doc)."""

    def __init__(self, path: str | Path, rows: np.ndarray | None = None, _opened=None) -> None:
        """Map the table at `path`; `rows`: the view's row numbers (None: every row, in order)."""
        import pyarrow as pa

        self.path = Path(path)
        if _opened is None:
            try:
                table = pa.ipc.open_file(pa.memory_map(str(self.path), "r")).read_all()
                meta = json.loads(table.schema.metadata[_META_KEY])
            except (OSError, pa.ArrowInvalid, KeyError, TypeError, ValueError) as err:
                raise InputError(
                    f"{self.path}: not a readable tonics pair table ({type(err).__name__}); "
                    "delete it and it is written again from the shard index"
                ) from None
            if meta.get("version") != TABLE_VERSION:
                raise InputError(
                    f"{self.path}: a pair table of format {meta.get('version')}, this tonics "
                    f"reads {TABLE_VERSION}; delete it and it is written again from the index"
                )
            arrays = {name: _one_array(table.column(name)) for name in table.column_names}
            _opened = (meta, arrays)
        self.meta, self._arrays = _opened
        self.rows = rows
        self._paths = [str(p) for p in self.meta["paths"]]
        self._numbers = {
            name: self._arrays[name].to_numpy(zero_copy_only=True)
            for name in (
                "shard",
                "offset",
                "size",
                "image_code",
                "caption_code",
                "caption_key",
                "image_order",
            )
        }

    # ---------------------------------------------------------------- sequence of records

    def __len__(self) -> int:
        return len(self._arrays["pair_id"]) if self.rows is None else len(self.rows)

    def _row(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"pair {i} out of range for {n} pairs")
        return i if self.rows is None else int(self.rows[i])

    def _row_range(self, i: slice):
        """Row numbers of a slice of the view: a slice of the file when contiguous."""
        start, stop, step = i.indices(len(self))
        if self.rows is None and step == 1:
            return slice(start, max(start, stop))
        positions = np.arange(start, stop, step)
        return positions if self.rows is None else self.rows[positions]

    def __getitem__(self, i):
        if isinstance(i, slice):
            rows = self._row_range(i)
            if isinstance(rows, slice):
                rows = np.arange(rows.start, rows.stop)
            return self._view(rows)
        row = self._row(i)
        numbers, arrays = self._numbers, self._arrays
        pair_id = arrays["pair_id"][row].as_py()
        image = ImageRef(
            path=self._paths[int(numbers["shard"][row])],
            tar_member=arrays["member"][row].as_py(),
            offset=int(numbers["offset"][row]),
            size=int(numbers["size"][row]),
        )
        caption = arrays["caption"][row].as_py()
        return PairRecord(pair_id, image, caption, pair_id, self.meta["split"])

    def __iter__(self) -> Iterator[PairRecord]:
        for i in range(len(self)):
            yield self[i]

    def __reduce__(self):
        """Pickled (a spawned DataLoader worker) as its path and rows: the worker maps the file
        again instead of receiving a copy of every column."""
        return (PairTable, (self.path, self.rows))

    def _view(self, rows: np.ndarray) -> PairTable:
        return PairTable(self.path, np.asarray(rows, dtype=np.int64), (self.meta, self._arrays))

    # ---------------------------------------------------------------- what start-up asks

    @property
    def pair_ids(self) -> Column:
        """The pairs' ids, read lazily."""
        return Column(self, "pair_id")

    @property
    def captions(self) -> Column:
        """The pairs' captions, read lazily (a slice reads a block at once)."""
        return Column(self, "caption")

    @property
    def split(self) -> str:
        """The split every pair of this table belongs to."""
        return self.meta["split"]

    @property
    def skipped(self) -> list:
        """What indexing skipped: [reason, where] per skip."""
        return self.meta["skipped"]

    def _numbers_of(self, name: str) -> np.ndarray:
        column = self._numbers[name]
        return column if self.rows is None else column[self.rows]

    def group_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each pair's image number and normalised-caption number, 0, 1, ... in order of first
        appearance in this view (`tonics.data.records.group_codes`), from the stored columns."""
        if self.rows is None:
            return self._numbers["image_code"], self._numbers["caption_code"]
        return tuple(_first_appearance(self._numbers_of(n)) for n in ("image_code", "caption_code"))

    def caption_keys(self) -> np.ndarray:
        """Each pair's normalised-caption key (`tonics.data.records.caption_key`), stored."""
        return self._numbers_of("caption_key")

    def content_digest(self) -> str:
        """A hash of the view's pairs (the file's content hash and the row numbers), for caches
        keyed by the pairs such as the ontology's."""
        digest = hashlib.sha256(self.meta["digest"].encode())
        if self.rows is not None:
            digest.update(np.ascontiguousarray(self.rows, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def select_split(self, split: str) -> PairTable:
        """This table when its pairs are of `split`; an error naming the split otherwise."""
        if split != self.split:
            raise InputError(f"split '{split}' is empty; the data has splits ['{self.split}']")
        return self

    def image_subset(self, fraction: float, seed: int = 0) -> PairTable:
        """The pairs of a seeded `fraction` of the images (`tonics.data.records.image_subset`)."""
        if fraction >= 1:
            return self
        codes = self._numbers_of("image_code")
        images, first_pair = np.unique(codes, return_index=True)
        ranks = [image_rank(seed, self.pair_ids[int(i)]) for i in first_pair]
        order = sorted(range(len(first_pair)), key=ranks.__getitem__)
        keep = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=bool)
        chosen = images[order[: max(1, round(fraction * len(first_pair)))]]
        keep[chosen] = True
        positions = np.flatnonzero(keep[codes])
        return self._view(positions if self.rows is None else self.rows[positions])

    def sorted_by_image(self) -> PairTable:
        """The view ordered by image id (stable), as evaluation orders its pairs (a view's rows
        are distinct: splits and subsets never repeat a pair)."""
        order = self._numbers["image_order"]
        if self.rows is None:
            return self._view(order)
        inside = np.zeros(len(order), dtype=bool)
        inside[self.rows] = True
        return self._view(order[inside[order]])


def _one_array(column):
    """A column as one Arrow array: the mapped chunk itself when there is one (combining copies)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _first_appearance(values: np.ndarray) -> np.ndarray:
    """Renumber `values` 0, 1, ... in order of first appearance."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


# ---------------------------------------------------------------- writing


def _caption_keys(captions, chunk: int = 1 << 18) -> np.ndarray:
    """Each caption's normalised-caption key (`captions`: an Arrow string array): a 64-bit hash
    (`pair_key`'s), so comparing captions costs 8 bytes a pair."""
    keys = np.empty(len(captions), dtype=np.int64)
    for start in range(0, len(captions), chunk):
        block = captions.slice(start, chunk).to_pylist()
        keys[start : start + len(block)] = [caption_key(c) for c in block]
    return keys


def _derived_columns(pair_ids, captions) -> dict:
    """The columns computed from the pairs: image and caption codes, caption keys and the
    order of the pair ids (stable, bytewise = code point order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    caption_keys = _caption_keys(captions)
    caption_codes = _first_appearance(caption_keys)  # numbered in order of first appearance
    return {
        "image_code": pa.array(np.arange(len(pair_ids), dtype=np.int32)),  # one image a pair
        "caption_code": pa.array(caption_codes.astype(np.int32)),
        "caption_key": pa.array(caption_keys),
        "image_order": pa.array(pc.sort_indices(pair_ids).to_numpy().astype(np.int64)),
    }


def _content_digest(columns: dict, paths: list[str], split: str) -> str:
    """A digest of the pairs' own columns (ids, captions, where each image lies), the shard
    files and the split: what makes two tables the same table."""
    digest = hashlib.sha256()
    for name in ("pair_id", "caption", "shard", "offset", "size", "member"):
        for buffer in columns[name].buffers():
            if buffer is not None:
                digest.update(memoryview(buffer))
    digest.update(json.dumps([paths, split]).encode())
    return digest.hexdigest()


def write_pair_table(
    path: str | Path,
    *,
    pair_ids,
    captions,
    shard: np.ndarray,
    offset: np.ndarray,
    size: np.ndarray,
    member,
    paths: list[str],
    split: str,
    skipped: list,
    source: dict,
) -> Path:
    """Write a pair table (atomically) from its columns: `pair_ids`, `captions`, `member`: Arrow
    string arrays; `shard`, `offset`, `size`: integers per pair; `paths`: each shard number's
    file; `source`: what the table was made from (checked when it is opened again)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pair_ids = pa.array(pair_ids, pa.large_string())
    captions = pa.array(captions, pa.large_string())
    if pc.count_distinct(pair_ids).as_py() != len(pair_ids):
        raise InputError(f"{path}: pair ids are not unique; the shards repeat a key")
    columns = {
        "pair_id": pair_ids,
        "caption": captions,
        "shard": pa.array(np.asarray(shard, dtype=np.int32)),
        "offset": pa.array(np.asarray(offset, dtype=np.int64)),
        "size": pa.array(np.asarray(size, dtype=np.int64)),
        "member": pa.array(member, pa.large_string()),
        **_derived_columns(pair_ids, captions),
    }
    meta = {
        "version": TABLE_VERSION,
        "paths": paths,
        "split": split,
        "skipped": skipped,
        "source": source,
        "digest": _content_digest(columns, paths, split),
    }
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(meta)})

    def write(handle) -> None:
        with pa.ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table, max_chunksize=len(table) or None)

    return atomic_write(Path(path), write)


def stat_of(path: Path) -> dict:
    """What identifies a file's version: its size and modification time."""
    stat = os.stat(path)
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
