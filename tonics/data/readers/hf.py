"""Hugging Face `datasets`: an imagefolder with `metadata.jsonl`, parquet files, or a dataset
saved with `save_to_disk`, with the image and text columns named in the config.

An imagefolder's `metadata.jsonl` is read line by line here rather than by `datasets`, whose loader
fails the whole dataset on one non-JSON or non-UTF-8 line: such lines are counted, named (file and
line) and skipped. Its layout is the one `datasets` reads: `metadata.jsonl` at the root (split
"train") or in split folders (`train/`, `validation/`, `test/`), `file_name` relative to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from tonics.data.pair_columns import PairColumns
from tonics.data.readers.base import DataFormatError, PairReader, clean_caption

HFFormat = Literal["imagefolder", "parquet", "disk"]


class HFDatasetReader(PairReader):
    """Pairs from a local Hugging Face dataset; every split it holds is kept under its name."""

    def __init__(
        self,
        path: str,
        format: HFFormat = "imagefolder",
        image_column: str = "image",
        text_column: str = "text",
        image_id_column: str | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.format = format
        self.image_column = image_column
        self.text_column = text_column
        self.image_id_column = image_id_column

    def parquet_files(self) -> list[Path]:
        """The parquet files `path` names (a glob, a file, or every file under a directory)."""
        root = Path(self.path)
        files = sorted(root.rglob("*")) if root.is_dir() else sorted(root.parent.glob(root.name))
        return [f for f in files if f.is_file()]

    def _load(self):
        import datasets

        if self.format == "parquet":
            files = [str(p) for p in self.parquet_files()]
            if not files:
                raise DataFormatError(f"no parquet files match '{self.path}'")
            return datasets.load_dataset("parquet", data_files={"train": files})
        loaded = datasets.load_from_disk(self.path)
        return loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}

    def _metadata_rows(self, metadata: Path):
        """(line number, row dict) of each usable line; bad lines counted and named."""
        for n, raw in enumerate(metadata.read_bytes().splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{metadata}:{n}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.skip("metadata line not UTF-8", where)
                continue
            except json.JSONDecodeError:
                self.skip("metadata line not JSON", where)
                continue
            if not isinstance(row, dict) or not isinstance(row.get("file_name"), str):
                self.skip("metadata line without a file_name", where)
                continue
            yield n, row

    def _metadata_files(self) -> list[Path]:
        root = Path(self.path)
        if (root / "metadata.jsonl").is_file():
            return [root / "metadata.jsonl"]
        return sorted(root.glob("*/metadata.jsonl"))

    def sources(self) -> list[Path]:
        """The metadata files of an imagefolder, else every file of the dataset."""
        if self.format == "imagefolder":
            return self._metadata_files()
        if self.format == "parquet":
            return self.parquet_files()
        root = Path(self.path)
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []

    def _fill_imagefolder(self, columns: PairColumns) -> None:
        root = Path(self.path)
        files = self._metadata_files()
        if not files:
            raise DataFormatError(f"{root}: no metadata.jsonl at the root or in split folders")
        for metadata in files:
            split_name = "train" if metadata.parent == root else metadata.parent.name
            split = "val" if split_name == "validation" else split_name
            rows = list(self._metadata_rows(metadata))
            names = sorted({k for _, row in rows for k in row})
            if rows and self.text_column not in names:
                raise DataFormatError(
                    f"{metadata}: no column '{self.text_column}'; columns are {names}. "
                    "Set text_column."
                )
            for n, row in rows:
                image = _inside(metadata.parent, row["file_name"])
                if image is None:
                    self.skip("file_name outside the dataset directory", f"{metadata}:{n}")
                    continue
                row = {**row, self.image_column: str(image)}
                self._add(columns, row, split, n)

    def fill(self, columns: PairColumns) -> None:
        """One pair per row; rows with an empty caption or no image are counted and skipped."""
        if not Path(self.path).exists() and self.format != "parquet":
            raise DataFormatError(f"{self.path}: dataset directory not found")
        if self.format == "imagefolder":
            self._fill_imagefolder(columns)
            return
        import datasets

        splits = self._load()
        for split_name, table in splits.items():
            for column in (self.image_column, self.text_column):
                if column not in table.column_names:
                    raise DataFormatError(
                        f"{self.path} [{split_name}]: no column '{column}'; columns are "
                        f"{table.column_names}. Set image_column / text_column."
                    )
            if isinstance(table.features[self.image_column], datasets.Image):
                table = table.cast_column(self.image_column, datasets.Image(decode=False))
            split = "val" if split_name == "validation" else split_name
            for n, row in enumerate(table):
                self._add(columns, row, split, n)

    def _add(self, columns: PairColumns, row: dict, split: str, n: int) -> None:
        caption = clean_caption(row.get(self.text_column))  # a missing column: counted as empty
        if not caption:
            self.skip("empty caption")
            return
        cell = row[self.image_column]
        image = {}
        if isinstance(cell, dict) and cell.get("bytes"):
            image = {"data": cell["bytes"]}  # kept in the table's blob file
        elif isinstance(cell, dict) and cell.get("path"):
            image = {"location": cell["path"]}
        elif isinstance(cell, str):
            image = {"location": str(Path(self.path) / cell)}
        else:
            self.skip("row without an image")
            return
        image_id = str(row.get(self.image_id_column)) if self.image_id_column else f"{split}-{n}"
        columns.add(f"hf-{split}-{n}", caption, split, image_id=image_id, **image)


def _inside(directory: Path, name: str) -> Path | None:
    """`directory / name` when it stays inside `directory` (no absolute path, no `..` out)."""
    target = (directory / name).resolve()
    return target if target.is_relative_to(directory.resolve()) else None
