"""Frozen-stage feature cache: while both encoders are frozen their pooled outputs never change,
so each training pair's features are computed once and the heads train from them.

Features are pooled encoder outputs (before the projection heads): images once per image, captions
once per pair, stored as float32 or float16 (`data.feature_cache_dtype`). They live in a sharded,
memory-mapped store under the cache directory (`tonics.train.sharded_store`: every DDP rank
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
from tqdm.auto import tqdm

from ontology.wordnet import cache_dir
from tonics.data.batches import image_once_loader
from tonics.train.sharded_store import Failures, ShardedStore, load_or_build, ranks_of

log = logging.getLogger(__name__)


STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


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


def _fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_key(model, records, max_text_length: int, limits=None, dtype: str = "float32") -> str:
    """Encoders' weights, storage dtype, tokenisation length, image decoding limits (JPEG draft
    size) and the pairs (ids and captions) in one hash."""
    digest = hashlib.sha256()
    digest.update(
        f"{_fingerprint(model.text)}|{_fingerprint(model.vision)}|{dtype}|{max_text_length}|{limits!r}".encode()
    )
    for r in records:
        digest.update(f"{r.pair_id}\x1f{r.image_id}\x1f{r.caption}\x1e".encode("utf-8", "replace"))
    return digest.hexdigest()[:20]


@torch.no_grad()
def encode_pairs(records, tokenizer, image_processor, text_fn, image_fn, *, batch_size=64,
                 num_workers=0, max_text_length=64, device="cpu", limits=None, desc="feature cache",
                 on_first_batch=None):  # fmt: skip
    """Run `text_fn(ids, mask) -> one tensor per caption` over every caption and
    `image_fn(pixels) -> (images, ...)` over every image once (the shared loop of the feature and
    prefix caches). Returns (per-image tensors in row order, per-pair text tensors, each pair's
    image row or -1, failures {pair: (location, reason)}). `on_first_batch(ids, mask, pixels)` sees
    the first batch holding both (a self-check)."""
    loader = image_once_loader(records, image_processor, tokenizer, batch_size=batch_size,
                               num_workers=num_workers, max_length=max_text_length, limits=limits)  # fmt: skip
    images, texts, row_of_image, failures = [], [None] * len(records), {}, {}
    for batch in tqdm(loader, desc=desc, unit="batch", mininterval=2.0):
        if len(batch["indices"]):  # a batch whose every image failed has no row left
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            for index, text in zip(batch["indices"].tolist(), text_fn(ids, mask)):
                texts[index] = text
        if batch["pixel_values"] is not None:
            pixels = batch["pixel_values"].to(device)
            if on_first_batch is not None:
                on_first_batch(ids, mask, pixels, batch["has_image"])
                on_first_batch = None
            images.extend(image_fn(pixels).cpu())
            with_image = [
                i for i, h in zip(batch["indices"].tolist(), batch["has_image"].tolist()) if h
            ]
            for index in with_image:
                row_of_image[records[index].image_id] = len(row_of_image)
        for _, location, reason in batch["skipped"]:
            failures[location] = reason
    pair_image = torch.tensor([row_of_image.get(r.image_id, -1) for r in records], dtype=torch.long)
    failed = {i: (r.image.describe(), failures.get(r.image.describe(), "image failed"))
              for i, r in enumerate(records) if pair_image[i] < 0}  # fmt: skip
    for i in [i for i, t in enumerate(texts) if t is None]:
        # pairs whose image failed were dropped from their batch: encode their caption alone
        tokens = tokenizer(
            [records[i].caption], truncation=True, max_length=max_text_length, return_tensors="pt"
        )
        texts[i] = text_fn(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))[0]
    return images, texts, pair_image, failed


def encode_part(records, pairs: list[int], description: str, text_fn, image_fn, *,
                image_shape: tuple[int, ...],
                text_dtype, image_dtype, datamodule, device,
                on_first_batch=None) -> tuple[dict[str, torch.Tensor], Failures]:  # fmt: skip
    """One part of a cache: `pair_image`, `image` and `text` (and `text_offsets` when the text
    rows are ragged, `text_fn` giving a variable number of rows per caption) for these pairs;
    `image_shape`: one image row's shape, for a part whose every image failed."""
    subset = [records[i] for i in pairs]
    images, texts, pair_image, failed = encode_pairs(
        subset, datamodule.tokenizer, datamodule.image_processor, text_fn, image_fn,
        batch_size=datamodule.eval_batch_size, num_workers=datamodule.num_workers,
        max_text_length=datamodule.max_text_length, device=device, limits=datamodule.image_limits,
        desc=description, on_first_batch=on_first_batch,
    )  # fmt: skip
    arrays = {"pair_image": pair_image}
    arrays["image"] = torch.stack(images).to(image_dtype) if images else torch.zeros(0, *image_shape, dtype=image_dtype)  # fmt: skip
    ragged = bool(texts) and texts[0].dim() == 2
    arrays["text"] = (torch.cat(texts) if ragged else torch.stack(texts)).to(text_dtype)
    if ragged:
        arrays["text_offsets"] = torch.tensor([0] + [len(t) for t in texts]).cumsum(0)
    return arrays, {pairs[i]: reason for i, reason in failed.items()}


def load_or_compute(model, datamodule, device="cpu", trainer=None) -> FeatureCache:
    """The cache for the datamodule's training pairs: mapped from disk when complete, else
    computed (each rank of `trainer` encoding its own parts)."""
    records = datamodule.split("train")
    dtype = getattr(datamodule, "feature_cache_dtype", "float32")
    key = cache_key(model, records, datamodule.max_text_length, datamodule.image_limits, dtype)
    storage = STORAGE_DTYPES[dtype]

    def build(pairs: list[int], description: str):
        return encode_part(records, pairs, description,
                           lambda ids, mask: list(model.text(ids, mask).float().cpu()),
                           lambda pixels: model.vision(pixels).float(),
                           image_shape=(model.vision.output_dim,), text_dtype=storage,
                           image_dtype=storage, datamodule=datamodule, device=device)  # fmt: skip

    store = load_or_build(cache_dir() / "features" / f"features-{key}", key,
                          [r.image_id for r in records], build, what="feature cache (frozen encoders)",
                          **ranks_of(trainer))  # fmt: skip
    return FeatureCache(store)
