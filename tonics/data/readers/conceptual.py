"""Conceptual Captions as its TSV of caption and URL (images fetched by img2dataset); the
img2dataset shards themselves are read by `tonics.data.readers.webdataset`."""

from __future__ import annotations

import csv
import itertools
import logging
from collections import defaultdict
from pathlib import Path
from typing import Literal

from tonics.data.images import IMAGE_EXTENSIONS
from tonics.data.pair_columns import PairColumns
from tonics.data.readers.base import DataFormatError, PairReader, clean_caption

log = logging.getLogger(__name__)

ColumnOrder = Literal["auto", "caption_url", "url_caption"]


def _looks_like_location(field: str) -> bool:
    lowered = field.strip().lower()
    return lowered.startswith(("http://", "https://", "/", "./")) or lowered.endswith(
        IMAGE_EXTENSIONS
    )


class ConceptualCaptionsTsvReader(PairReader):
    """Rows `caption<TAB>url` or `url<TAB>caption` (detected from the first rows, or configured).

    Images are local files written by img2dataset in its `files` layout: row r lives at
    `image_root / image_pattern.format(shard=r // per_shard, index=r % per_shard, row=r)`.
    """

    def __init__(
        self,
        tsv_file: str,
        image_root: str,
        order: ColumnOrder = "auto",
        split: str = "train",
        image_pattern: str = "{shard:05d}/{shard:05d}{index:04d}.jpg",
        per_shard: int = 10000,
        has_header: bool = False,
    ) -> None:
        super().__init__()
        self.tsv_file = tsv_file
        self.image_root = image_root
        self.order = order
        self.split = split
        self.image_pattern = image_pattern
        self.per_shard = per_shard
        self.has_header = has_header

    def _detect_order(self, rows: list[list[str]]) -> str:
        votes = defaultdict(int)
        for row in rows[:100]:
            if len(row) >= 2:
                if _looks_like_location(row[1]) and not _looks_like_location(row[0]):
                    votes["caption_url"] += 1
                elif _looks_like_location(row[0]) and not _looks_like_location(row[1]):
                    votes["url_caption"] += 1
        if not votes:
            raise DataFormatError(
                f"{self.tsv_file}: cannot tell which column holds the URL; set order: "
                "caption_url or url_caption"
            )
        return max(votes, key=votes.get)

    def sources(self) -> list[Path]:
        """The TSV file."""
        return [Path(self.tsv_file)]

    def fill(self, columns: PairColumns) -> None:
        """One pair per well-formed row; short rows and empty captions are counted and skipped."""
        path = Path(self.tsv_file)
        if not path.is_file():
            raise DataFormatError(f"{path}: file not found")
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            if self.has_header:
                next(rows, None)
            first = list(itertools.islice(rows, 100))
            order = self.order if self.order != "auto" else self._detect_order(first)
            for r, row in enumerate(itertools.chain(first, rows)):
                self._add(columns, r, row, order)

    def _add(self, columns: PairColumns, r: int, row: list[str], order: str) -> None:
        if len(row) < 2:
            self.skip("TSV row with fewer than 2 columns")
            return
        caption = clean_caption(row[0] if order == "caption_url" else row[1])
        if not caption or "\ufffd" in caption:
            self.skip("empty or undecodable caption")
            return
        shard, index = divmod(r, self.per_shard)
        local = self.image_pattern.format(shard=shard, index=index, row=r)
        columns.add(f"cc-{r}", caption, self.split, location=str(Path(self.image_root) / local))
