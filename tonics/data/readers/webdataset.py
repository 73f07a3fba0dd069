"""img2dataset output as pairs: webdataset `.tar` shards (`KEY.jpg` + `KEY.txt` [+ `KEY.json`]) or
its `.parquet` shards, read through the random-access shard index (`tonics.data.shard_index`)."""

from __future__ import annotations

import glob
from pathlib import Path

from tonics.data.readers.base import DataFormatError, PairReader
from tonics.data.records import ImageRef, PairRecord
from tonics.memory import paused_gc


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

    def read(self) -> list[PairRecord]:
        """One record per key holding both an image and a caption; orphans are counted."""
        from tonics.data.shard_index import index_for

        shards = self.shard_paths()
        if not shards:
            raise DataFormatError(f"no webdataset shards match '{self.shards}'")
        index = index_for(shards, self.caption_extension, self.index)
        for reason, where in index.skipped:
            self.skip(reason, where)
        with paused_gc():  # millions of records: no collection while they are built
            # one string per shard, shared; a parquet shard's images are read from its blob
            paths = [str(Path(s.get("blob", s["path"]))) for s in index.shards]
            stems = [Path(s["path"]).stem for s in index.shards]
            records = []
            for shard, offset, size, member, caption in zip(
                index.shard, index.offset, index.size, index.member, index.caption, strict=True
            ):
                folder, _, filename = member.rpartition("/")
                key = (
                    f"{folder}/{filename.partition('.')[0]}"
                    if folder
                    else filename.partition(".")[0]
                )
                name = f"{stems[shard]}/{key.lstrip('./')}"
                image = ImageRef(path=paths[shard], tar_member=member, offset=offset, size=size)
                records.append(
                    PairRecord(
                        pair_id=name, image=image, caption=caption, image_id=name, split=self.split
                    )
                )
        return records
