"""Frozen-prefix activation cache: train the top k blocks of a tower at cached-feature speed.

When only the top k blocks of a tower train, everything below them is frozen, in eval mode (no
dropout) with fixed BatchNorm statistics, and no augmentation is applied: the input of block L-k
is a fixed function of the image or caption. It is computed once per image and caption (for the
text tower the hidden states of the caption's tokens, the attention mask being their count; for
the vision tower the feature map or token sequence entering block L-k) and each training step runs
only the top k blocks, the layers after them, the pooling and the heads. A tower that stays
frozen (k = 0) keeps its pooled features.

Supported: BERT-family text encoders (`packaged:minilm`, any `BertModel`-like model whose blocks
are `encoder.layer`), MobileNetV2, ViT and CLIP vision towers. Before a computed cache is used, the
first batch is run both ways (live and cached prefix) and must agree; any other model, a tower
opened wholly, or a parameter below the top blocks that would train makes `UnsupportedSplit`, and
the trainer trains those stages live with one line saying why.

Storage follows the feature cache: a sharded, memory-mapped store (`tonics.cache.store`:
every DDP rank writes its own parts, a killed build resumes, nothing is unpickled), keyed by the
frozen prefix's weights, the split, the storage dtype (fp16 halves the size; outputs then agree to
~1e-3), the tokenisation length, image limits and the training pairs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from tonics.cache.base import (
    STORAGE_DTYPES,
    CacheSource,
    encode_part,
    features_dir,
    fingerprint,
    hash_records,
)
from tonics.cache.features import FeatureCache
from tonics.cache.store import Failures, ShardedStore, load_or_build, ranks_of
from tonics.model.tower_split import TowerSplit, UnsupportedSplit, eval_mode, text_states

__all__ = [
    "PrefixCache",
    "Split",
    "UnsupportedSplit",
    "derive_feature_cache",
    "load_or_compute_prefix",
    "prefix_key",
]

log = logging.getLogger(__name__)

Split = tuple[int, int]  # (top blocks of the text tower, of the vision tower) that train; 0: frozen
# how close the cached path must come to the live one on the first batch (relative to the scale)
VERIFY_TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2}


@dataclass
class PrefixCache:
    """Cached prefix states for the training pairs under one split, mapped from a sharded store.

    Text (`text`): with k > 0, the hidden states of each caption's tokens (`text_states`, ragged);
    with k = 0, one pooled row per pair. Images (`image`): one state per image."""

    split: Split
    store: ShardedStore
    key: str = ""
    build_s: float = 0.0
    source: str = "computed"
    splits: dict = field(default_factory=dict, repr=False)  # tower -> TowerSplit, set on bind

    @property
    def failures(self) -> Failures:
        """pair -> (location, reason) for pairs whose image failed to load."""
        return self.store.failures

    @property
    def nbytes(self) -> int:
        """Bytes of cached states on disk (memory-mapped)."""
        return self.store.nbytes

    def bind(self, model) -> PrefixCache:
        """Attach the model's towers (split as this cache was made) for `features`."""
        self.splits = {
            "text": TowerSplit(model.text.encoder, self.split[0]),
            "vision": TowerSplit(model.vision.encoder, self.split[1]),
        }
        return self

    def _text(self, pairs: torch.Tensor, device, dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.split[0] == 0:
            return self.store.per_pair("text", pairs).to(device, dtype), None
        rows = self.store.ragged("text", pairs)
        states = pad_sequence(rows, batch_first=True).to(device, dtype)
        lengths = torch.tensor([len(r) for r in rows], device=device)
        mask = (torch.arange(states.shape[1], device=device)[None] < lengths[:, None]).long()
        return states, mask

    def features(self, indices: torch.Tensor, device, dtype=torch.float32, tokens: bool = False):
        """(image features, text features, usable mask) for these pairs, pooled through the
        towers' top blocks (gradients flow into those that train); with `tokens`, the vision
        tower's token map (batch, tokens, width) too, for a captioning head (needs a vision
        split, k > 0)."""
        from tonics.model.captioner import image_tokens

        for split in self.splits.values():
            split.check_trainable()
        image_states, usable = self.store.images_of("image", indices)
        if int(usable.sum()) < 2:  # nothing to contrast: the step is skipped
            empty = [
                torch.zeros(0, s.encoder.output_dim, device=device) for s in self.splits.values()
            ]
            return (empty[1], empty[0], usable) + ((None,) if tokens else ())
        vision, state = self.splits["vision"], image_states.to(device, dtype)
        token_map = None
        if tokens:
            if vision.k == 0:
                raise UnsupportedSplit("a vision tower cached as pooled features has no token map")
            out = vision.vision_output(state)
            image, token_map = vision.encoder.pool(out), image_tokens(out.last_hidden_state)
        else:
            image = vision.suffix(state)
        states, mask = self._text(indices[usable], device, dtype)
        text = self.splits["text"].suffix(states, mask)
        return (image, text, usable) + ((token_map,) if tokens else ())

    @torch.no_grad()
    def pooled_part(self, pairs: list[int], description: str, batch_size: int = 256, device="cpu"):
        """Pooled features of these pairs (and their images, once each) through the current
        (frozen) top blocks, in eval mode: one part of the derived feature cache."""
        keys = self.store.image_keys(torch.tensor(pairs))
        images, inverse = np.unique(keys[keys >= 0], return_inverse=True)
        pair_image = torch.full((len(pairs),), -1, dtype=torch.long)
        pair_image[torch.from_numpy(keys >= 0)] = torch.from_numpy(inverse.reshape(-1))
        text, image = [], []
        chunks = [("text", pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size)]
        chunks += [("image", images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        with eval_mode(self.splits["text"].encoder), eval_mode(self.splits["vision"].encoder):
            for kind, chunk in tqdm(chunks, desc=description, unit="batch", mininterval=2.0):
                if kind == "text":
                    states = self._text(torch.tensor(chunk), device, torch.float32)
                    text.append(self.splits["text"].suffix(*states).float().cpu())
                else:
                    states = self.store.per_image("image", chunk).to(device, torch.float32)
                    image.append(self.splits["vision"].suffix(states).float().cpu())
        width = self.splits["vision"].encoder.output_dim
        arrays = {
            "pair_image": pair_image,
            "text": torch.cat(text),
            "image": torch.cat(image) if image else torch.zeros(0, width),
        }
        return arrays, {p: self.failures[p] for p in pairs if p in self.failures}


def derive_feature_cache(
    prefix: PrefixCache, model, source: CacheSource, device="cpu", trainer=None
) -> FeatureCache:
    """The frozen stages' pooled features, derived from a prefix cache through the current
    (frozen) top blocks without encoding anything again; stored like any feature cache, under a
    key of its own (fp16 prefix states make them differ from directly encoded ones by ~1e-3)."""
    records = source.records
    # the prefix key holds the pairs, tokenisation and frozen prefix; add the towers' top blocks
    towers = f"{fingerprint(model.text)}|{fingerprint(model.vision)}"
    key = hashlib.sha256(f"derived from prefix {prefix.key}|{towers}".encode()).hexdigest()[:20]
    store = load_or_build(
        features_dir() / f"features-derived-{key}",
        key,
        [r.image_id for r in records],
        lambda pairs, description: prefix.pooled_part(pairs, description, device=device),
        what="feature cache (derived from the prefix cache)",
        **ranks_of(trainer),
    )
    return FeatureCache(store)


def _fingerprint_prefix(split: TowerSplit) -> str:
    """Hash of the weights and buffers the cached states depend on (not the trainable suffix)."""
    skip = {id(t) for m in split.suffix_modules() for t in (*m.parameters(), *m.buffers())}
    return fingerprint(split.encoder, frozenset(skip))


def prefix_key(model, split: Split, records, max_text_length: int, limits, dtype: str) -> str:
    """Frozen prefixes' weights, split, storage dtype, tokenisation length, image limits, pairs."""
    towers = (TowerSplit(model.text.encoder, split[0]), TowerSplit(model.vision.encoder, split[1]))
    digest = hashlib.sha256()
    digest.update(f"prefix|{split}|{dtype}|{max_text_length}|{limits!r}".encode())
    for tower in towers:
        pooling = getattr(tower.encoder, "pooling", "")
        digest.update(
            f"{_fingerprint_prefix(tower)}|{type(tower.encoder).__name__}|{pooling}".encode()
        )
    hash_records(digest, records)
    return digest.hexdigest()[:20]


def _verify(towers: dict[str, TowerSplit], dtype: torch.dtype):
    """A check run on the first batch: live pooled features equal the cached path's."""

    def check(ids, mask, pixels, has_image) -> None:
        for name, live_inputs in (("text", (ids, mask)), ("vision", (pixels,))):
            split = towers[name]
            if split.k == 0:
                continue
            with torch.no_grad(), eval_mode(split.encoder):
                live = split.encoder(*live_inputs)
                exact = split.prefix(*live_inputs)
                state = exact.to(dtype).float()
                cached = split.suffix(state, mask) if name == "text" else split.suffix(state)
            # the stored states themselves (fp16 underflow or overflow would zero or blow up the
            # top blocks' gradients even where the pooled output still agrees), then the output
            for what, got, want in (
                ("stored activations", state, exact),
                ("features", cached, live),
            ):
                error = float((got - want).abs().max() / want.abs().max().clamp(min=1e-30))
                if not error <= VERIFY_TOLERANCE[dtype]:
                    raise UnsupportedSplit(
                        f"{name}: cached-prefix {what} differ from live ones by {error:.2e} "
                        f"(relative) on the first batch, over the {VERIFY_TOLERANCE[dtype]:.0e} "
                        "allowed (with fp16 storage, try data.cache.prefix_dtype: float32)"
                    )

    return check


def load_or_compute_prefix(
    model, source: CacheSource, split: Split, dtype: str = "float16", device="cpu", trainer=None
) -> PrefixCache:
    """The prefix cache of `source`'s training pairs for `split`: mapped from disk when complete,
    else computed (each rank of `trainer` its own parts, the first batch of each part checked both
    ways); bound to the model's towers. `dtype`: storage of the activations."""
    records = source.records
    key = prefix_key(model, split, records, source.max_text_length, source.limits, dtype)
    towers = {
        "text": TowerSplit(model.text.encoder, split[0]),
        "vision": TowerSplit(model.vision.encoder, split[1]),
    }
    storage = STORAGE_DTYPES[dtype]
    # activations are stored in `storage`; a frozen tower's pooled features stay float32
    text_dtype, image_dtype = (storage if k else torch.float32 for k in split)
    computed = []

    def build(pairs: list[int], description: str):
        computed.append(description)
        return encode_part(
            source,
            pairs,
            description,
            lambda ids, mask: [t.to(text_dtype) for t in text_states(towers["text"], ids, mask)],
            lambda pixels: towers["vision"].prefix(pixels).to(image_dtype),
            image_shape=() if split[1] else (model.vision.output_dim,),
            text_dtype=text_dtype,
            image_dtype=image_dtype,
            device=device,
            on_first_batch=_verify(towers, storage),
        )

    started = time.perf_counter()
    store = load_or_build(
        features_dir() / f"prefix-{key}",
        key,
        [r.image_id for r in records],
        build,
        what=f"prefix cache (text top {split[0]}, vision top {split[1]})",
        **ranks_of(trainer),
    )
    cache = PrefixCache(
        split=split, store=store, key=key, source="computed" if computed else "loaded"
    )
    cache.build_s = time.perf_counter() - started
    _log_ready(cache)
    return cache.bind(model)


def _log_ready(cache: PrefixCache) -> None:
    """One line: the cache's split, whether it was computed or loaded, its time, size, place."""
    text_k, vision_k = cache.split
    log.info(
        "prefix cache (text top %d, vision top %d): %s in %.1f s, %.1f MB, %s",
        text_k,
        vision_k,
        cache.source,
        cache.build_s,
        cache.nbytes / 1e6,
        cache.store.directory,
    )
