"""Query a search index: words (text to image) or a picture (image to image), top k by cosine.

An image that is itself in the index is searched with its stored embedding (no model needed);
words and outside pictures are embedded by the model the manifest names, whose weights must
still have the fingerprint the index was built with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tonics.errors import InputError
from tonics.search.stored import StoredIndex


@dataclass(frozen=True)
class Hit:
    """One result: the image's path (relative to the indexed root), its score (cosine) and rank."""

    path: str
    score: float
    rank: int


class SearchIndex(StoredIndex):
    """An index directory opened for queries (`tonics.search.open`)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._towers = None

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
                    f"{self.manifest['model']}: its weights changed since {self.path} was "
                    "built; rebuild the index"
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
