"""Frozen-stage feature cache: while both encoders are frozen their pooled outputs never change,
so each training pair's features are computed once and the heads train from them.

Features are pooled encoder outputs (before the projection heads): images once per image, captions
once per pair, stored as float32 or float16 (`data.feature_cache_dtype`). They live in a sharded,
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


def load_or_compute(
    model, source: CacheSource, dtype: str = "float32", device="cpu", trainer=None
) -> FeatureCache:
    """The cache of `source`'s training pairs: mapped from disk when complete, else computed
    (each rank of `trainer` encoding its own parts); `dtype`: 'float32' or 'float16' storage."""
    records = source.records
    key = cache_key(model, records, source.max_text_length, source.limits, dtype)
    storage = STORAGE_DTYPES[dtype]

    def build(pairs: list[int], description: str):
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
