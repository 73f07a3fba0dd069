"""The vector index of a search index: inner product over L2-normalised embeddings (cosine).

- 'flat': exact; every query scores every image with `tonics.eval.ranking.top_k` (the same
  exact search the retrieval metrics use), straight from the stored embeddings: no extra file.
- 'ivf': faiss inverted lists (k-means cells, `nlist` about 4*sqrt(n); a query scans the
  `nprobe` nearest cells): approximate, its cost grows with n / nlist * nprobe.
- 'hnsw': faiss graph index (32 links per node): approximate, slow to build.

Their search parameters (`nprobe`, efSearch) are tuned for a recall target by
`tonics.search.tuning`, which also chooses between exact and IVF search.

faiss indexes are written with faiss's own binary format (no pickle), atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tonics.atomic import atomic_write_path
from tonics.errors import optional_import

INDEX_KINDS = ("flat", "ivf", "hnsw")


class ExactIndex:
    """Exact top-k over a matrix of embeddings, with faiss's `search` signature."""

    def __init__(self, embeddings: np.ndarray) -> None:
        import torch

        self.embeddings = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        self.ntotal = self.embeddings.shape[0]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (n_queries, k), best first; ties in row order."""
        import torch

        from tonics.eval.ranking import top_k

        scores, rows = top_k(torch.from_numpy(np.asarray(queries, np.float32)), self.embeddings, k)
        return scores.numpy(), rows.numpy()


def ivf_lists(n: int) -> int:
    """How many k-means cells an IVF index of n vectors gets: about 4*sqrt(n), and at least 39
    training vectors per cell (faiss's minimum)."""
    return max(1, min(int(4 * n**0.5), n // 39))


def build_vector_index(embeddings: np.ndarray, kind: str, seed: int = 0):
    """An index over `embeddings` (rows L2-normalised, float32)."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if kind == "flat":
        return ExactIndex(embeddings)
    faiss = optional_import("faiss", f"a '{kind}' search index")
    width = embeddings.shape[1]
    if kind == "ivf":
        lists = ivf_lists(len(embeddings))
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(width), width, lists, faiss.METRIC_INNER_PRODUCT
        )
        sample = np.random.default_rng(seed).permutation(len(embeddings))[: 64 * lists]
        index.cp.seed = seed
        index.train(embeddings[np.sort(sample)])
        index.nprobe = 1  # tuned afterwards (`tonics.search.tuning`)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(width, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 16  # tuned afterwards (`tonics.search.tuning`)
    else:
        raise ValueError(f"index kind must be one of {INDEX_KINDS}, got '{kind}'")
    index.add(embeddings)
    return index


def write_vector_index(index, path: Path) -> None:
    """Write a faiss `index` to `path` atomically (an exact index has nothing to write)."""
    if isinstance(index, ExactIndex):
        return
    faiss = optional_import("faiss", "writing a search index")
    atomic_write_path(path, lambda temporary: faiss.write_index(index, str(temporary)))


def read_vector_index(path: Path, kind: str, embeddings: np.ndarray):
    """The index of `kind` written by `write_vector_index` next to `embeddings`."""
    if kind == "flat":
        return ExactIndex(embeddings)
    faiss = optional_import("faiss", f"a '{kind}' search index")
    return faiss.read_index(str(path))
