"""A search index's files as stored on disk, read and checked: the manifest, the table of indexed
paths, the embeddings and the vector index. A damaged, truncated or non-regular file (a FIFO is
never opened) is one InputError naming it and the command that rebuilds the index. Used by the
query side (`tonics.search.query`) and by an update (`tonics.search.indexing`), which rebuilds what
it cannot read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tonics.errors import InputError
from tonics.search.tuning import apply_params
from tonics.search.vectors import INDEX_KINDS, read_vector_index

FORMAT = "tonics-search-1"


class StoredIndex:
    """An index directory's files, read and checked (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = self._manifest()
        self.paths, self.embeddings = self._table_and_embeddings()
        self.row_of = {p: i for i, p in enumerate(self.paths)}
        self.vectors = self._vectors()
        self.root = Path(self.manifest["root"])

    def _damaged(self, name: str, why: str) -> InputError:
        """One line naming the damaged file and the command that rebuilds the index."""
        return InputError(
            f"{self.path / name}: {why}; the search index is damaged: rebuild it with "
            f"`tonics search index --images FOLDER --out {self.path}`"
        )

    def _regular(self, name: str) -> Path:
        """The index file `name`, refused without opening it unless it is a regular file (a FIFO
        or a device would block or never end)."""
        import stat

        file = self.path / name
        try:
            mode = file.stat().st_mode
        except OSError:
            raise self._damaged(name, "missing") from None
        if not stat.S_ISREG(mode):
            raise self._damaged(name, "not a regular file")
        return file

    def _manifest(self) -> dict:
        if not self.path.is_dir() or not os.path.lexists(self.path / "manifest.json"):
            raise InputError(
                f"{self.path}: not a search index (no manifest.json); build one with "
                "`tonics search index`"
            )
        try:
            manifest = json.loads(self._regular("manifest.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise self._damaged("manifest.json", f"unreadable ({type(err).__name__})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self._damaged("manifest.json", "not a tonics search index of this version")
        if (
            not isinstance(manifest.get("root"), str)
            or manifest.get("index", "flat") not in INDEX_KINDS
        ):
            raise self._damaged("manifest.json", "its 'root' or 'index' field is invalid")
        return manifest

    def _table_and_embeddings(self) -> tuple[list[str], np.ndarray]:
        """The indexed paths in embedding-row order, and the embeddings, both checked."""
        import pyarrow.parquet as pq
        from safetensors.numpy import load_file

        try:
            table = pq.read_table(self._regular("table.parquet")).to_pylist()
            rows = sorted((int(r["row"]), str(r["path"])) for r in table if r["row"] >= 0)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
            raise self._damaged("table.parquet", f"unreadable ({type(err).__name__})") from None
        try:
            embeddings = load_file(str(self._regular("embeddings.safetensors")))["embeddings"]
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - SafetensorError, KeyError, OSError
            why = f"unreadable ({type(err).__name__})"
            raise self._damaged("embeddings.safetensors", why) from None
        if embeddings.ndim != 2 or [r for r, _ in rows] != list(range(len(embeddings))):
            raise self._damaged(
                "table.parquet", f"its rows do not match the {len(embeddings)} embeddings"
            )
        return [p for _, p in rows], embeddings

    def _vectors(self):
        kind = self.manifest.get("index", "flat")
        if kind == "flat":
            return read_vector_index(self.path / "index.faiss", kind, self.embeddings)
        try:
            vectors = read_vector_index(self._regular("index.faiss"), kind, self.embeddings)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - faiss raises RuntimeError for a bad file
            raise self._damaged("index.faiss", f"unreadable ({type(err).__name__})") from None
        if vectors.ntotal != len(self.embeddings):
            raise self._damaged("index.faiss", "it does not hold every embedding")
        tuning = self.manifest.get("tuning")
        try:
            apply_params(vectors, kind, tuning if isinstance(tuning, dict) else {})
        except ValueError as err:
            raise self._damaged("manifest.json", f"its 'tuning' field is invalid: {err}") from None
        return vectors

    def tuning(self) -> dict:
        """The vector index as built: kind, search parameters and the recall@10 measured then
        (without the list of settings tried)."""
        tuning = self.manifest.get("tuning")
        if not isinstance(tuning, dict):  # an index built before tuning: its kind only
            return {"kind": self.manifest.get("index", "flat")}
        return {key: value for key, value in tuning.items() if key != "trials"}
