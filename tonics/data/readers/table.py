"""CSV/TSV files of image paths and captions, as open_clip users bring them (its `--csv-img-key`,
`--csv-caption-key`, `--csv-separator`): a header row names the columns; the image and caption
columns are configurable, image paths are relative to `image_root` (or absolute), several rows may
share an image (several captions per image), and an optional column gives each row's split.

Rows with a missing image path or an empty caption, or a broken line, are counted and named
(file:line), never fatal; a file without the named columns is an error that lists the columns it
has.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tonics.data.pair_columns import PairColumns
from tonics.data.readers.base import DataFormatError, PairReader, clean_caption


class CsvReader(PairReader):
    """Pairs from a CSV/TSV file with a header row (see the module docstring)."""

    def __init__(
        self,
        path: str,
        image_root: str = ".",
        image_column: str = "filepath",
        caption_column: str = "title",
        separator: str = "auto",
        split_column: str | None = None,
        split: str = "train",
    ) -> None:
        """`separator`: ',' or '\\t' (or any one character); 'auto' picks '\\t' for .tsv files.
        `split_column`: a column holding each row's split (train/val/test); else every row is
        `split`."""
        super().__init__()
        self.path = path
        self.image_root = image_root
        self.image_column = image_column
        self.caption_column = caption_column
        self.separator = separator
        self.split_column = split_column
        self.split = split

    def _delimiter(self) -> str:
        if self.separator != "auto":
            return "\t" if self.separator in ("\\t", "tab") else self.separator
        return "\t" if Path(self.path).suffix.lower() in (".tsv", ".tab") else ","

    def sources(self) -> list[Path]:
        """The CSV/TSV file."""
        return [Path(self.path)]

    def fill(self, columns: PairColumns) -> None:
        """One pair per usable row."""
        path = Path(self.path)
        if not path.is_file():
            raise DataFormatError(f"{path}: file not found")
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            rows = csv.DictReader(handle, delimiter=self._delimiter())
            header = rows.fieldnames or []
            for column in (self.image_column, self.caption_column, self.split_column):
                if column is not None and column not in header:
                    raise DataFormatError(
                        f"{path}: no column '{column}'; the header has {header}. Set "
                        "image_column / caption_column / split_column (open_clip: --csv-img-key "
                        "/ --csv-caption-key)"
                    )
            for line, row in enumerate(rows, start=2):
                self._add(columns, path, line, row)

    def _add(self, columns: PairColumns, path: Path, line: int, row: dict) -> None:
        where = f"{path}:{line}"
        if None in row:  # more fields than the header
            self.skip("row with more fields than the header", where)
            return
        location = (row.get(self.image_column) or "").strip()
        caption = clean_caption(row.get(self.caption_column))
        if not location:
            self.skip("row without an image path", where)
            return
        if not caption:
            self.skip("empty caption", where)
            return
        split = (row.get(self.split_column) or "").strip() if self.split_column else self.split
        split = {"validation": "val", "restval": "train"}.get(split, split or self.split)
        image = Path(location) if Path(location).is_absolute() else Path(self.image_root) / location
        columns.add(f"csv-{line}", caption, split, image_id=location, location=str(image))
