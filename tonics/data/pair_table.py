"""Pairs as memory-mapped columns: what a web-scale corpus costs at start-up is a file map, not
a Python object per pair.

A `PairTable` is a sequence of `PairRecord`s whose columns live in one Arrow IPC file, what every
reader returns (written once: beside the shard index for webdataset shards, in the tonics cache
for the other formats; `tonics.data.pair_columns`): pair id, caption, split, image id, where the
image lies (a file's path, or a shard or blob number with the byte offset and size, and the tar
member name), the labelled objects, each pair's image and normalised-caption numbers (the
sampler's variety codes), its normalised-caption key (which captions evaluation counts as seen in
training) and the order of the pairs by image id (evaluation's order). The file is mapped
read-only, so every rank on a machine shares one copy in the page cache and opening it costs
milliseconds whatever the corpus size; a record object is made only when a batch asks for that
pair. Views (a split, a subset, an order) are the same columns plus an array of row numbers.

Arrow's IPC format is used as is (pyarrow, already a dependency): it is the memory-mappable
columnar format of the Python data stack, so the table also opens in pandas/polars/DuckDB.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tonics.data.pair_columns import META_KEY, TABLE_VERSION, first_appearance
from tonics.data.records import ImageRef, PairRecord, image_rank
from tonics.errors import InputError


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
                meta = json.loads(table.schema.metadata[META_KEY])
            except (OSError, pa.ArrowInvalid, KeyError, TypeError, ValueError) as err:
                raise InputError(
                    f"{self.path}: not a readable tonics pair table ({type(err).__name__}); "
                    "delete it and it is written again from the data"
                ) from None
            if meta.get("version") != TABLE_VERSION:
                raise InputError(
                    f"{self.path}: a pair table of format {meta.get('version')}, this tonics "
                    f"reads {TABLE_VERSION}; delete it and it is written again from the data"
                )
            arrays = {name: _one_array(table.column(name)) for name in table.column_names}
            _opened = (meta, arrays)
        self.meta, self._arrays = _opened
        self.rows = rows
        self._paths = [str(p) for p in self.meta["paths"]]
        self._numbers = {
            name: self._arrays[name].to_numpy(zero_copy_only=True)
            for name in (
                "split",
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
        arrays = self._arrays
        pair_id = arrays["pair_id"][row].as_py()
        image_id = arrays["image_id"][row].as_py() if "image_id" in arrays else pair_id
        objects = tuple(arrays["objects"][row].as_py()) if "objects" in arrays else ()
        caption = arrays["caption"][row].as_py()
        split = self.meta["splits"][int(self._numbers["split"][row])]
        return PairRecord(pair_id, self._image(row), caption, image_id, split, objects)

    def _image(self, row: int) -> ImageRef:
        numbers, arrays = self._numbers, self._arrays
        shard, offset = int(numbers["shard"][row]), int(numbers["offset"][row])
        if shard < 0:
            return ImageRef(path=arrays["location"][row].as_py())
        member = arrays["member"][row].as_py() if "member" in arrays else None
        size = int(numbers["size"][row])
        return ImageRef(path=self._paths[shard], tar_member=member, offset=offset, size=size)

    def __iter__(self) -> Iterator[PairRecord]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        """The same pairs in the same order: two views of equal content (by their digests), or
        a view and a list of records, pair by pair."""
        if isinstance(other, PairTable):
            return self.content_digest() == other.content_digest()
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None

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
    def image_ids(self) -> Column:
        """The pairs' image ids (their pair ids where the data has one image a pair)."""
        return Column(self, "image_id" if "image_id" in self._arrays else "pair_id")

    @property
    def objects(self) -> Sequence:
        """The pairs' labelled objects (lists; empty where the data has none)."""
        return Column(self, "objects") if "objects" in self._arrays else [()] * len(self)

    def image_files(self) -> list[str]:
        """The distinct paths of the view's images that are plain files, in order."""
        if "location" not in self._arrays:
            return []
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self._arrays["location"]
        if self.rows is not None:
            column = column.take(pa.array(self.rows))
        return pc.unique(column.drop_null()).to_pylist()

    def splits(self) -> list[str]:
        """The names of the splits this view holds, sorted."""
        present = np.unique(self._numbers_of("split"))
        return sorted(self.meta["splits"][int(n)] for n in present)

    @property
    def skipped(self) -> dict:
        """What reading the data skipped: {"counts": {reason: n}, "examples": [...]}."""
        return self.meta["skipped"]

    def _numbers_of(self, name: str) -> np.ndarray:
        column = self._numbers[name]
        return column if self.rows is None else column[self.rows]

    def group_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each pair's image number and normalised-caption number, 0, 1, ... in order of first
        appearance in this view (`tonics.data.records.group_codes`), from the stored columns."""
        if self.rows is None:
            return self._numbers["image_code"], self._numbers["caption_code"]
        return tuple(first_appearance(self._numbers_of(n)) for n in ("image_code", "caption_code"))

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
        """The view of the pairs of `split`; an error naming the split and those present when
        it has none."""
        names = self.meta["splits"]
        numbers = self._numbers_of("split")
        positions = np.flatnonzero(numbers == names.index(split)) if split in names else []
        if not len(positions):
            raise InputError(f"split '{split}' is empty; the data has splits {self.splits()}")
        if len(positions) == len(self):
            return self
        return self._view(positions if self.rows is None else self.rows[positions])

    def image_subset(self, fraction: float, seed: int = 0) -> PairTable:
        """The pairs of a seeded `fraction` of the images (`tonics.data.records.image_subset`)."""
        if fraction >= 1:
            return self
        codes = self._numbers_of("image_code")
        images, first_pair = np.unique(codes, return_index=True)
        ranks = [image_rank(seed, self.image_ids[int(i)]) for i in first_pair]
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
