"""A random-access index of webdataset shards, so a curriculum batch (pairs scattered over many
shards, chosen by ontology node) reads each image with one `seek` + `read`, and start-up reads the
index instead of walking every member of every shard.

One row per image-caption key: shard number, byte offset and size of the image member's data, the
member's name (for messages) and the caption. Stored as Parquet (pyarrow, already a dependency
through `datasets`), with a manifest in the file's metadata: every shard's path, size and mtime and
what indexing skipped (orphans, truncated shards), so a loaded index reports the same skips. A shard
that changed or disappeared since indexing is detected from its size and mtime. Written here rather
than taken from webdataset's `wids` or Lightning's `litdata` because neither is installed and
litdata would re-pack the corpus into its own chunks (a second copy of CC3M); this index reads the
shards as img2dataset wrote them.

img2dataset's parquet output (`output_format: parquet`: one row per sample, the image bytes in a
`jpg`/`png`/`webp` column, `caption`, `key`, `status`) has no byte range per image (column chunks
are compressed and paged), so indexing it copies each shard's image bytes once, end to end, into a
sidecar blob beside the index (`<index>.images/`), and the index points into that: the same one
seek + read as a tar member, at the price of a second copy of the images. At CC scale prefer
img2dataset's webdataset output, which is read in place.
"""

from __future__ import annotations

import json
import logging
import tarfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tonics.atomic import atomic_write
from tonics.data.images import IMAGE_EXTENSIONS
from tonics.data.readers.base import DataFormatError, clean_caption
from tonics.memory import paused_gc

log = logging.getLogger(__name__)

INDEX_VERSION = 1
Skip = Callable[[str, str | None], None]


@dataclass
class ShardIndex:
    """The index in memory: parallel columns, one entry per pair, and the shards' manifest."""

    shards: list[dict]  # {"path", "size", "mtime_ns"} per shard
    shard: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    member: list[str] = field(default_factory=list)
    caption: list[str] = field(default_factory=list)
    skipped: list[list] = field(default_factory=list)  # [reason, where or None] per skip

    def __len__(self) -> int:
        return len(self.offset)


def _damaged(path, err: Exception) -> DataFormatError:
    """The one-line error for a shard index that cannot be read."""
    return DataFormatError(
        f"{path}: damaged shard index ({type(err).__name__}); rebuild it with `tonics index`"
    )


def shard_stat(path: Path) -> dict:
    """A shard's path, size and mtime as the manifest records them."""
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _complete_members(tar: tarfile.TarFile, shard: Path, skip: Skip) -> list[tarfile.TarInfo]:
    """The shard's regular members whose data is wholly in the file. `tarfile` stops silently at
    a truncated header; a shard that does not end with the end-of-archive blocks, or whose last
    member's data runs past the end of the file, is counted and named as truncated."""
    members = tar.getmembers()
    size = shard.stat().st_size
    complete = [m for m in members if m.isfile() and m.offset_data + m.size <= size]
    for member in members:
        if member.isfile() and member.offset_data + member.size > size:
            skip("member cut off by the end of a truncated shard", f"{shard}::{member.name}")
    tar.fileobj.seek(tar.offset)
    trailer = tar.fileobj.read(1024)
    if len(trailer) < 1024 or trailer.strip(b"\0"):
        skip("truncated or corrupt shard (members after this point unreadable)", str(shard))
        log.warning(
            "webdataset: %s is truncated or corrupt after byte %d; kept the %d complete members "
            "before it",
            shard,
            tar.offset,
            len(complete),
        )
    return complete


def _index_shard(index: ShardIndex, number: int, shard: Path, caption_extension: str) -> None:
    def skip(reason: str, where: str | None = None) -> None:
        index.skipped.append([reason, where])

    try:
        with tarfile.open(shard, "r") as tar:
            groups: dict[str, dict[str, tarfile.TarInfo]] = defaultdict(dict)
            for member in _complete_members(tar, shard, skip):
                key, _, extension = Path(member.name).name.partition(".")
                groups[f"{Path(member.name).parent}/{key}"][extension.lower()] = member
            for key in sorted(groups):
                parts = groups[key]
                image = next((parts[e] for e in parts if f".{e}" in IMAGE_EXTENSIONS), None)
                text = parts.get(caption_extension)
                if image is None:
                    skip("tar key with a caption and no image")
                    continue
                if text is None:
                    skip("tar key with an image and no caption")
                    continue
                caption = clean_caption(tar.extractfile(text).read())
                if not caption:
                    skip("empty or undecodable caption")
                    continue
                index.shard.append(number)
                index.offset.append(image.offset_data)
                index.size.append(image.size)
                index.member.append(image.name)
                index.caption.append(caption)
    except tarfile.TarError as err:
        raise DataFormatError(f"{shard}: not a readable tar shard ({err})") from err


PARQUET_IMAGE_COLUMNS = ("jpg", "png", "webp")


def _index_parquet_shard(index: ShardIndex, number: int, shard: Path, blob: Path) -> None:
    """Index an img2dataset parquet shard, copying its image bytes into `blob` (row order)."""
    import pyarrow.parquet as pq

    def skip(reason: str, where: str | None = None) -> None:
        index.skipped.append([reason, where])

    try:
        file = pq.ParquetFile(shard)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataFormatError(f"{shard}: not a readable parquet shard ({err})") from err
    names = file.schema_arrow.names
    image_column = next((c for c in PARQUET_IMAGE_COLUMNS if c in names), None)
    if image_column is None or "caption" not in names:
        raise DataFormatError(
            f"{shard}: an img2dataset parquet shard needs a 'caption' column and an image column "
            f"({', '.join(PARQUET_IMAGE_COLUMNS)}); found {', '.join(names)}"
        )
    columns = [image_column, "caption"] + [c for c in ("key", "status") if c in names]

    def copy(out) -> None:
        offset, row = 0, 0
        for group in range(file.num_row_groups):
            table = file.read_row_group(group, columns=columns).to_pydict()
            keys = table.get("key") or [None] * len(table["caption"])
            statuses = table.get("status") or ["success"] * len(table["caption"])
            for image, caption, key, status in zip(
                table[image_column], table["caption"], keys, statuses
            ):
                where = f"{shard}::{key if key is not None else f'row {row}'}"
                row += 1
                if status not in (None, "success") or not image:
                    skip("parquet row without image bytes (download failed)", where)
                    continue
                caption = clean_caption(caption)
                if not caption:
                    skip("empty or undecodable caption")
                    continue
                out.write(image)
                index.shard.append(number)
                index.offset.append(offset)
                index.size.append(len(image))
                index.member.append(f"{key if key is not None else row - 1}.{image_column}")
                index.caption.append(caption)
                offset += len(image)

    atomic_write(blob, copy)


def blob_path(index_path: Path, number: int, shard: Path) -> Path:
    """Where the image bytes of parquet shard `number` are copied for an index at `index_path`."""
    return index_path.parent / f"{index_path.name}.images" / f"{number:05d}-{shard.stem}.bin"


def _index_one(number: int, shard: Path, caption_extension: str, path: Path | None) -> ShardIndex:
    """One shard's entries (a ShardIndex of its own, merged by `build_index`)."""
    part = ShardIndex(shards=[])
    if shard.suffix == ".parquet":
        if path is None:
            raise ValueError("indexing parquet shards needs the index path (blobs sit beside it)")
        _index_parquet_shard(part, number, shard, blob_path(Path(path), number, shard))
    else:
        _index_shard(part, number, shard, caption_extension)
    return part


def build_index(
    shards: list[Path], caption_extension: str = "txt", path: Path | None = None, workers: int = 1
) -> ShardIndex:
    """Walk every shard once and index its image-caption keys (`path`: where the index will be
    written, which parquet shards' image blobs sit beside). `workers` > 1 indexes shards in that
    many processes; the index is the same, in shard order."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    index = ShardIndex(shards=[shard_stat(s) for s in shards])
    jobs = [(number, shard, caption_extension, path) for number, shard in enumerate(shards)]
    progress = {"desc": "indexing shards", "unit": "shard", "mininterval": 2.0, "total": len(jobs)}
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            parts = list(tqdm(pool.map(_index_one, *zip(*jobs), chunksize=4), **progress))
    else:
        parts = (_index_one(*job) for job in tqdm(jobs, **progress))
    for part in parts:
        for column in ("shard", "offset", "size", "member", "caption", "skipped"):
            getattr(index, column).extend(getattr(part, column))
    for number, shard in enumerate(shards):
        if shard.suffix == ".parquet":
            index.shards[number]["blob"] = str(blob_path(Path(path), number, shard))
    return index


def save_index(index: ShardIndex, path: str | Path, caption_extension: str) -> Path:
    """Write the index as one Parquet file (atomically), its manifest in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "shard": pa.array(index.shard, pa.int32()),
            "offset": pa.array(index.offset, pa.int64()),
            "size": pa.array(index.size, pa.int64()),
            "member": pa.array(index.member, pa.string()),
            "caption": pa.array(index.caption, pa.string()),
        }
    )
    manifest = {
        "version": INDEX_VERSION,
        "caption_extension": caption_extension,
        "shards": index.shards,
        "skipped": index.skipped,
    }
    table = table.replace_schema_metadata({"tonics_shard_index": json.dumps(manifest)})
    return atomic_write(path, lambda handle: pq.write_table(table, handle))


def load_index(path: str | Path) -> tuple[ShardIndex, dict]:
    """The index and its manifest, read without touching the shards."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"tonics_shard_index")
        manifest = json.loads(raw) if raw is not None else None
    except Exception as err:  # noqa: BLE001 - truncated, not Parquet, unreadable: all "damaged"
        raise _damaged(path, err) from None
    names = table.column_names
    if "shard" not in names or not _valid_manifest(manifest, names, table.column("shard")):
        raise DataFormatError(
            f"{path}: not a tonics shard index (no valid manifest); rebuild it with `tonics index`"
        )
    with paused_gc():  # integers through numpy, strings straight from Arrow: fast at CC scale
        numbers = {c: table.column(c).to_numpy().tolist() for c in ("shard", "offset", "size")}
        strings = {c: table.column(c).to_pylist() for c in ("member", "caption")}
    index = ShardIndex(
        manifest["shards"],
        numbers["shard"],
        numbers["offset"],
        numbers["size"],
        strings["member"],
        strings["caption"],
        manifest["skipped"],
    )
    return index, manifest


def _valid_manifest(manifest, column_names, shard_numbers) -> bool:
    """The manifest and columns a tonics index has: shards with paths, skips, and shard numbers
    that point into the shard list."""
    columns = {"shard", "offset", "size", "member", "caption"}
    if not isinstance(manifest, dict) or not columns <= set(column_names):
        return False
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not isinstance(manifest.get("skipped"), list):
        return False
    if not all(isinstance(e, dict) and isinstance(e.get("path"), str) for e in shards):
        return False
    numbers = shard_numbers.to_numpy()
    return len(numbers) == 0 or (0 <= numbers.min() and numbers.max() < len(shards))


def load_manifest(path: str | Path) -> dict:
    """The index's manifest (shards, skips), checked against its columns, without reading the
    pairs: what start-up needs to know whether the index (and the pair table beside it) is
    current."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        raw = (schema.metadata or {}).get(b"tonics_shard_index")
        manifest = json.loads(raw) if raw is not None else None
        readable = manifest is not None and "shard" in schema.names
        shard_column = pq.read_table(path, columns=["shard"]) if readable else None
    except Exception as err:  # noqa: BLE001 - truncated, not Parquet, unreadable: all "damaged"
        raise _damaged(path, err) from None
    if shard_column is None or not _valid_manifest(
        manifest, schema.names, shard_column.column("shard")
    ):
        raise DataFormatError(
            f"{path}: not a tonics shard index (no valid manifest); rebuild it with `tonics index`"
        )
    return manifest
