"""Frozen-stage feature cache: while both encoders are frozen their pooled outputs never change,
so each training pair's features are computed once and the heads train from them.

Features are pooled encoder outputs (before the projection heads): images once per image, captions
once per pair. They are kept in memory and saved under the cache directory, keyed by the encoders'
names, a fingerprint of their weights, the tokenisation length and the training pairs, so a second
run (another seed, the random baseline) loads them at once. Preprocessing is deterministic (no
augmentation), so cached and live features are the same up to float rounding.

The file is safetensors (tensors plus a JSON metadata field for the failures), written atomically:
reading it back never runs code. A file that is not valid safetensors (damaged, or planted) is
refused with a warning that names it, and the features are computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load, save
from tqdm.auto import tqdm

from ontology.wordnet import cache_dir
from tonics.atomic import atomic_write
from tonics.data.batches import image_once_loader

log = logging.getLogger(__name__)


@dataclass
class FeatureCache:
    """Pooled features: `image[pair_image[i]]` and `text[i]` for training pair i."""

    image: torch.Tensor
    text: torch.Tensor
    pair_image: torch.Tensor  # -1 where the pair's image failed to load
    failures: dict[int, tuple[str, str]]  # pair -> (location, reason) for failed images

    @property
    def nbytes(self) -> int:
        """Bytes held in memory."""
        return sum(t.numel() * t.element_size() for t in (self.image, self.text, self.pair_image))

    def lookup(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image features, text features, usable mask) for these pairs."""
        rows = self.pair_image[indices]
        usable = rows >= 0
        return self.image[rows[usable]], self.text[indices[usable]], usable


def _fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_key(model, records, max_text_length: int, limits=None) -> str:
    """Encoders' weights, tokenisation length, image decoding limits (JPEG draft size) and the
    pairs (ids and captions) in one hash."""
    digest = hashlib.sha256()
    digest.update(
        f"{_fingerprint(model.text)}|{_fingerprint(model.vision)}|{max_text_length}|{limits!r}".encode()
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


def compute_features(model, records, tokenizer, image_processor, *, batch_size=64, num_workers=0,
                     max_text_length=64, device="cpu", limits=None) -> FeatureCache:  # fmt: skip
    """Encode every image once and every caption, with the encoders as they are now."""
    images, texts, pair_image, failed = encode_pairs(
        records, tokenizer, image_processor,
        lambda ids, mask: list(model.text(ids, mask).float().cpu()),
        lambda pixels: model.vision(pixels).float(),
        batch_size=batch_size, num_workers=num_workers, max_text_length=max_text_length,
        device=device, limits=limits, desc="feature cache (frozen encoders)",
    )  # fmt: skip
    image = torch.stack(images) if images else torch.zeros(0, model.vision.output_dim)
    return FeatureCache(image, torch.stack(texts), pair_image, failed)


def save_cache(cache: FeatureCache, path: Path) -> None:
    """Write the cache as safetensors (failures as JSON metadata), atomically."""
    tensors = {"image": cache.image.contiguous(), "text": cache.text.contiguous(),
               "pair_image": cache.pair_image.contiguous()}  # fmt: skip
    failures = {str(k): list(v) for k, v in cache.failures.items()}
    payload = save(tensors, metadata={"failures": json.dumps(failures)})
    atomic_write(path, lambda out: out.write(payload))


def read_cache(path: Path) -> FeatureCache:
    """Read a cache written by `save_cache`; any invalid file raises ValueError naming it."""
    try:  # read into memory, not mmap: a file replaced in place later cannot fault a reader
        data = path.read_bytes()
        tensors = load(data)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        failures = json.loads(header["__metadata__"]["failures"])
        tensors = {name: tensors[name] for name in ("image", "text", "pair_image")}
    except Exception as err:  # noqa: BLE001 - whatever is wrong, the file is not ours
        raise ValueError(f"feature cache {path} is not a valid tonics safetensors file ({type(err).__name__})") from err  # fmt: skip
    return FeatureCache(**tensors, failures={int(k): tuple(v) for k, v in failures.items()})


def load_or_compute(model, datamodule, device="cpu") -> FeatureCache:
    """The cache for the datamodule's training pairs: from disk when present, else computed."""
    records = datamodule.split("train")
    key = cache_key(model, records, datamodule.max_text_length, datamodule.image_limits)
    path = cache_dir() / "features" / f"features-{key}.safetensors"
    if path.is_file():
        try:
            cache = read_cache(path)
            log.info("feature cache: loaded %s", path)
            return cache
        except ValueError as err:
            log.warning("%s; refusing it and computing the features again", err)
    cache = compute_features(model, records, datamodule.tokenizer, datamodule.image_processor,
                             batch_size=datamodule.eval_batch_size, num_workers=datamodule.num_workers,
                             max_text_length=datamodule.max_text_length, device=device,
                             limits=datamodule.image_limits)  # fmt: skip
    save_cache(cache, path)
    log.info(
        "feature cache: %d images, %d captions computed, saved to %s",
        len(cache.image),
        len(cache.text),
        path,
    )
    return cache
