"""Query a search index: words (text to image) or a picture (image to image), top k by cosine.

An image that is itself in the index is searched with its stored embedding (no model needed);
words and outside pictures are embedded by the model the manifest names, whose weights must
still have the fingerprint the index was built with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tonics.errors import InputError
from tonics.search.vectors import INDEX_KINDS, read_vector_index


@dataclass(frozen=True)
class Hit:
    """One result: the image's path (relative to the indexed root), its score (cosine) and rank."""

    path: str
    score: float
    rank: int


class SearchIndex:
    """An index directory opened for queries (`tonics.search.open`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = self._manifest()
        self.paths, self.embeddings = self._table_and_embeddings()
        self.row_of = {p: i for i, p in enumerate(self.paths)}
        self.vectors = self._vectors()
        self.root = Path(self.manifest["root"])
        self._towers = None

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
        from tonics.search.indexing import FORMAT

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
        return vectors

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def towers(self):
        """The model's towers, loaded on first use and checked against the index's fingerprint."""
        if self._towers is None:
            from tonics.search.indexing import load_towers, model_identity

            identity = model_identity(
                self.manifest.get("model"), *self.manifest.get("baseline", [None, None])
            )
            if identity["fingerprint"] != self.manifest["fingerprint"]:
                raise InputError(
                    f"{self.manifest['model']}: its weights changed since {self.path} was built; rebuild the index"
                )
            self._towers = load_towers(self.manifest)
        return self._towers

    def search(self, embedding: np.ndarray, k: int = 10) -> list[Hit]:
        """The k images nearest to an (L2-normalised) embedding."""
        query = np.ascontiguousarray(np.asarray(embedding, dtype=np.float32).reshape(1, -1))
        scores, rows = self.vectors.search(query, min(k, len(self.paths)))
        return [
            Hit(self.paths[r], float(s), n)
            for n, (s, r) in enumerate(zip(scores[0], rows[0]))
            if r >= 0
        ]

    def text(self, query: str, k: int = 10) -> list[Hit]:
        """Images matching words."""
        if not query.strip():
            raise InputError("an empty text query; type some words")
        return self.search(self.towers.encode_captions([query])[0].detach().numpy(), k)

    def image(self, image, k: int = 10) -> list[Hit]:
        """Images like `image`: an indexed path (relative to the root), a file, or a PIL image."""
        if isinstance(image, (str, Path)):
            relative = self._indexed(image)
            if relative is not None:
                return self.search(self.embeddings[self.row_of[relative]], k)
            from tonics.data.images import load_image
            from tonics.data.records import ImageRef

            image, reason = load_image(ImageRef(path=str(image)))
            if image is None:
                raise InputError(f"the query image cannot be used: {reason}")
        pixels = self.towers.image_processor(images=image.convert("RGB"), return_tensors="pt")
        return self.search(self.towers.encode_pixels(pixels["pixel_values"])[0].detach().numpy(), k)

    def _indexed(self, path: str | Path) -> str | None:
        """The indexed relative path `path` names (relative to the root, or absolute inside it)."""
        candidate = Path(path)
        if not candidate.is_absolute() and str(candidate) in self.row_of:
            return str(candidate)
        resolved = candidate.resolve()
        if resolved.is_relative_to(self.root):
            relative = str(resolved.relative_to(self.root))
            return relative if relative in self.row_of else None
        return None
