"""The vector index of a search index: faiss, inner product over L2-normalised embeddings (cosine).

'flat' is exact (every query scores every image); 'hnsw' is a graph index (HNSW, 32 links per
node, efSearch 128) whose queries cost about log(n): chosen automatically for large collections.
Written with faiss's own binary format (no pickle), atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tonics.atomic import atomic_write_path

INDEX_KINDS = ("flat", "hnsw")


def build_vector_index(embeddings: np.ndarray, kind: str):
    """A faiss index over `embeddings` (rows L2-normalised, float32)."""
    import faiss

    width = embeddings.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(width)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(width, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        raise ValueError(f"index kind must be one of {INDEX_KINDS}, got '{kind}'")
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    return index


def write_vector_index(index, path: Path) -> None:
    """Write `index` to `path` atomically."""
    import faiss

    atomic_write_path(path, lambda temporary: faiss.write_index(index, str(temporary)))


def read_vector_index(path: Path):
    """Read an index written by `write_vector_index`."""
    import faiss

    return faiss.read_index(str(path))
