"""img2dataset output as pairs: webdataset `.tar` shards (`KEY.jpg` + `KEY.txt` [+ `KEY.json`]) or
its `.parquet` shards, read through the random-access shard index (`tonics.data.shard_index`)."""

from __future__ import annotations

import glob
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tonics.data.pair_columns import TABLE_VERSION, stat_of, write_pair_table
from tonics.data.pair_table import PairTable
from tonics.data.readers.base import DataFormatError, PairReader
from tonics.errors import InputError

log = logging.getLogger(__name__)


class WebDatasetReader(PairReader):
    """Pairs from img2dataset shards matched by a glob (sorted): webdataset `.tar` shards, or its
    `.parquet` output, through a random-access index (`tonics.data.shard_index`): built on first
    use (or by `tonics index`), then start-up reads the index and each image is one seek + read
    (in its tar shard, or in the blob a parquet shard's images were copied to)."""

    def __init__(
        self,
        shards: str,
        split: str = "train",
        caption_extension: str = "txt",
        index: str | None = None,
    ) -> None:
        """index: an index file written by `tonics index --out` (default: one kept in the tonics
        cache, rebuilt when a shard changes)."""
        super().__init__()
        self.shards = shards
        self.split = split
        self.caption_extension = caption_extension
        self.index = index

    def shard_paths(self) -> list[Path]:
        """The shard files the glob matches, sorted."""
        return [Path(p) for p in sorted(glob.glob(self.shards))]

    def read(self) -> PairTable:
        """One record per key holding both an image and a caption (orphans are counted), as a
        memory-mapped pair table beside the index (written from the index on first use)."""
        from tonics.data.current_index import current_index_path

        shards = self.shard_paths()
        if not shards:
            raise DataFormatError(f"no webdataset shards match '{self.shards}'")
        index_path = current_index_path(shards, self.caption_extension, self.index)
        table = pair_table_for(index_path, self.split)
        self.restore_skips(table.skipped)
        return table


def table_path(index_path: Path, split: str) -> Path:
    """Where the pair table of an index lives: beside it, one per split name."""
    return index_path.with_name(f"{index_path.stem}.{split}.pairs.arrow")


def pair_table_for(index_path: str | Path, split: str) -> PairTable:
    """The pair table of the index at `index_path`: opened when it was written from this version
    of the index, else written from it first (streaming the index's columns, once)."""
    index_path = Path(index_path)
    path = table_path(index_path, split)
    source = {**stat_of(index_path), "table_version": TABLE_VERSION}
    if path.is_file():
        try:
            table = PairTable(path)
            if table.meta.get("source") == source and table.meta["splits"] == [split]:
                return table
        except InputError as err:
            log.warning("%s: writing it again", err)
    started = time.perf_counter()
    _write_from_index(index_path, path, split, source)
    log.info("pair table written in %.1f s -> %s", time.perf_counter() - started, path)
    return PairTable(path)


def _write_from_index(index_path: Path, path: Path, split: str, source: dict) -> None:
    import pyarrow.parquet as pq

    from tonics.data.shard_index import load_manifest

    manifest = load_manifest(index_path)
    columns = pq.read_table(index_path, columns=["shard", "offset", "size", "member", "caption"])
    # one string per shard; a parquet shard's images are read from its blob
    paths = [str(Path(s.get("blob", s["path"]))) for s in manifest["shards"]]
    stems = [Path(s["path"]).stem for s in manifest["shards"]]
    shard = columns.column("shard").to_numpy()
    member = columns.column("member")
    pair_ids: list[str] = []
    step = 1 << 18
    for start in range(0, len(shard), step):
        names = member.slice(start, step).to_pylist()
        numbers = shard[start : start + len(names)].tolist()
        pair_ids.extend(f"{stems[n]}/{_key(m)}" for n, m in zip(numbers, names))
    write_pair_table(
        path,
        {
            "pair_id": pair_ids,
            "caption": columns.column("caption"),
            "split": np.zeros(len(shard), dtype=np.int8),
            "shard": shard,
            "offset": columns.column("offset").to_numpy(),
            "size": columns.column("size").to_numpy(),
            "member": member,
        },
        paths=paths,
        splits=[split],
        skipped=_skip_record(manifest["skipped"]),
        source=source,
    )


def _skip_record(skips: list) -> dict:
    """The index's skips ([reason, where] each) as a table records them: counts and the first 20
    places."""
    places = [f"{where}: {reason}" for reason, where in skips if where is not None]
    return {"counts": dict(Counter(reason for reason, _ in skips)), "examples": places[:20]}


def _key(member: str) -> str:
    """A tar member's sample key: its folder and its file name up to the first dot."""
    folder, _, filename = member.rpartition("/")
    key = f"{folder}/{filename.partition('.')[0]}" if folder else filename.partition(".")[0]
    return key.lstrip("./")
