"""Frozen-stage feature cache: while both encoders are frozen their pooled outputs never change,
so each training pair's features are computed once and the heads train from them.

Features are pooled encoder outputs (before the projection heads): images once per image, captions
once per pair, stored as float32 or float16 (`data.cache.feature_dtype`). They live in a sharded,
memory-mapped store under the cache directory (`tonics.cache.store`: every DDP rank
encodes its own parts, rank 0 writes the manifest; a killed build resumes; reading never runs
code), keyed by the encoders' names, a fingerprint of their weights, the storage dtype, the
tokenisation length, the image limits and the training pairs, so a second run (another seed, the
random baseline) maps it at once. Preprocessing is deterministic (no augmentation), so cached and
live features are the same up to float rounding. A damaged or planted file is refused with a
warning that names it, and its part is computed again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import torch

from tonics.cache.base import (
    STORAGE_DTYPES,
    CacheSource,
    encode_part,
    features_dir,
    fingerprint,
    hash_records,
)
from tonics.cache.store import Failures, ShardedStore, load_or_build, ranks_of

log = logging.getLogger(__name__)


@dataclass
class FeatureCache:
    """Pooled features of the training pairs, mapped from a sharded store."""

    store: ShardedStore

    @property
    def failures(self) -> Failures:
        """pair -> (location, reason) for pairs whose image failed to load."""
        return self.store.failures

    @property
    def nbytes(self) -> int:
        """Bytes of features on disk (memory-mapped: only the rows a batch touches are read)."""
        return self.store.nbytes

    def lookup(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image features, text features, usable mask) for these pairs, as float32."""
        image, usable = self.store.images_of("image", indices)
        text = self.store.per_pair("text", indices[usable])
        return image.float(), text.float(), usable


def cache_key(model, records, max_text_length: int, limits=None, dtype: str = "float32") -> str:
    """Encoders' weights, storage dtype, tokenisation length, image decoding limits (JPEG draft
    size) and the pairs (ids and captions) in one hash."""
    digest = hashlib.sha256()
    digest.update(
        f"{fingerprint(model.text)}|{fingerprint(model.vision)}|{dtype}|{max_text_length}|{limits!r}".encode()
    )
    hash_records(digest, records)
    return digest.hexdigest()[:20]


def _derived_part(parent, rows: list[int], pairs: list[int]):
    """A part for `pairs` copied from the `parent` store's `rows` (the same pairs there)."""
    keys = parent.image_keys(rows)
    image_row: dict[int, int] = {}
    for key in keys.tolist():
        if key >= 0:
            image_row.setdefault(key, len(image_row))
    pair_image = torch.tensor([image_row[k] if k >= 0 else -1 for k in keys.tolist()])
    arrays = {
        "pair_image": pair_image,
        "image": parent.per_image("image", np.array(list(image_row), dtype=np.int64)),
        "text": parent.per_pair("text", rows),
    }
    failures = {pairs[i]: parent.failures[rows[i]] for i in np.flatnonzero(keys < 0).tolist()}
    return arrays, failures


def _superset_store(model, source: CacheSource, dtype: str):
    """The complete on-disk cache of `source.superset` (same encoders and settings) and each of
    `source.records`' rows in it, or None: a subset of the training images (`data.subset.fraction`)
    then copies its features instead of encoding them again."""
    from tonics.cache.store import try_open

    if source.superset is None:
        return None
    key = cache_key(model, source.superset, source.max_text_length, source.limits, dtype)
    store = try_open(features_dir() / f"features-{key}", key, "feature cache", len(source.superset))
    if store is None:
        return None
    row_of = {r.pair_id: i for i, r in enumerate(source.superset)}
    rows = [row_of.get(r.pair_id) for r in source.records]
    return None if None in rows else (store, rows)


def load_or_compute(
    model, source: CacheSource, dtype: str = "float32", device="cpu", trainer=None
) -> FeatureCache:
    """The cache of `source`'s training pairs: mapped from disk when complete, else built (each
    rank of `trainer` its own parts): copied from the complete cache of `source.superset` when
    there is one, else encoded; `dtype`: 'float32' or 'float16' storage."""
    records = source.records
    key = cache_key(model, records, source.max_text_length, source.limits, dtype)
    storage = STORAGE_DTYPES[dtype]
    superset = _superset_store(model, source, dtype)

    def build(pairs: list[int], description: str):
        if superset is not None:
            store, rows = superset
            return _derived_part(store, [rows[i] for i in pairs], pairs)
        return encode_part(
            source,
            pairs,
            description,
            lambda ids, mask: list(model.text(ids, mask).float().cpu()),
            lambda pixels: model.vision(pixels).float(),
            image_shape=(model.vision.output_dim,),
            text_dtype=storage,
            image_dtype=storage,
            device=device,
        )

    store = load_or_build(
        features_dir() / f"features-{key}",
        key,
        [r.image_id for r in records],
        build,
        what="feature cache (frozen encoders)",
        **ranks_of(trainer),
    )
    return FeatureCache(store)
