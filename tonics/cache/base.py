"""What the feature cache and the frozen-prefix cache share: the pairs they encode and how
(`CacheSource`), storage dtypes, weight fingerprints for their keys, and the encoding loop that
computes one part of either (each image once, each caption once, failures counted).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tonics.cache.store import Failures
from tonics.data.batches import image_once_loader
from tonics.data.images import ImageLimits
from tonics.paths import cache_dir

STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class CacheSource:
    """The training pairs a cache holds and how they are read: records, tokenizer and image
    processor, loader batch size and workers, tokenisation length and image limits."""

    records: list
    tokenizer: object
    image_processor: object
    max_text_length: int = 64
    limits: ImageLimits | None = None
    batch_size: int = 64
    num_workers: int = 0
    superset: list | None = None  # records whose complete cache may hold every pair of `records`


def features_dir() -> Path:
    """The directory under the tonics cache where feature and prefix caches live."""
    return cache_dir() / "features"


def fingerprint(module: torch.nn.Module, skip: frozenset[int] = frozenset()) -> str:
    """A short hash of a module's weights and buffers (names and first values of each), leaving
    out the tensors whose `id` is in `skip`."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) in skip:
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def hash_records(digest, records) -> None:
    """Feed each pair's id, image id, image location and caption into `digest`, in order (the
    same annotations over images somewhere else are another cache), then each image file's size
    and modification time (an image rewritten in place is another cache). A columnar pair table
    gives its content hash (which covers the same fields) instead of being read pair by pair, and
    the paths of its images that are plain files."""
    if hasattr(records, "content_digest"):
        digest.update(f"pair table\x1f{records.content_digest()}\x1e".encode())
        paths = records.image_files()
    else:
        paths = {}
        for r in records:
            text = f"{r.pair_id}\x1f{r.image_id}\x1f{r.image.describe()}\x1f{r.caption}\x1e"
            digest.update(text.encode("utf-8", "replace"))
            if r.image.data is None:
                paths.setdefault(r.image.path, None)
    for path in paths:  # an image rewritten in place is another cache
        digest.update(f"{path}\x1f{_file_state(path)}\x1e".encode("utf-8", "replace"))


def _file_state(path: str) -> str:
    """A file's size and modification time (ns), or 'missing': what changes when it is
    rewritten in place."""
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    return f"{info.st_size}:{info.st_mtime_ns}"


@torch.no_grad()
def encode_pairs(
    source: CacheSource,
    records,
    text_fn,
    image_fn,
    *,
    device="cpu",
    desc="feature cache",
    on_first_batch=None,
):
    """Run `text_fn(ids, mask) -> one tensor per caption` over every caption of `records` and
    `image_fn(pixels) -> (images, ...)` over every image once, read as `source` says. Returns
    (per-image tensors in row order, per-pair text tensors, each pair's image row or -1, failures
    {pair: (location, reason)}). `on_first_batch(ids, mask, pixels, has_image)` sees the first
    batch holding both (a self-check)."""
    loader = image_once_loader(
        records,
        source.image_processor,
        source.tokenizer,
        batch_size=source.batch_size,
        num_workers=source.num_workers,
        max_length=source.max_text_length,
        limits=source.limits,
    )
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
            flags = zip(batch["indices"].tolist(), batch["has_image"].tolist())
            for index in [i for i, has_image in flags if has_image]:
                row_of_image[records[index].image_id] = len(row_of_image)
        for _, location, reason in batch["skipped"]:
            failures[location] = reason
    pair_image = torch.tensor([row_of_image.get(r.image_id, -1) for r in records], dtype=torch.long)
    failed = {
        i: (r.image.describe(), failures.get(r.image.describe(), "image failed"))
        for i, r in enumerate(records)
        if pair_image[i] < 0
    }
    _encode_lone_captions(source, records, texts, text_fn, device)
    return images, texts, pair_image, failed


def _encode_lone_captions(source: CacheSource, records, texts: list, text_fn, device) -> None:
    """Captions of pairs whose image failed were dropped from their batch: encode them alone."""
    for i in [i for i, t in enumerate(texts) if t is None]:
        tokens = source.tokenizer(
            [records[i].caption],
            truncation=True,
            max_length=source.max_text_length,
            return_tensors="pt",
        )
        texts[i] = text_fn(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))[0]


def encode_part(
    source: CacheSource,
    pairs: list[int],
    description: str,
    text_fn,
    image_fn,
    *,
    image_shape: tuple[int, ...],
    text_dtype,
    image_dtype,
    device,
    on_first_batch=None,
) -> tuple[dict[str, torch.Tensor], Failures]:
    """One part of a cache: `pair_image`, `image` and `text` (and `text_offsets` when the text
    rows are ragged, `text_fn` giving a variable number of rows per caption) for these pairs;
    `image_shape`: one image row's shape, for a part whose every image failed."""
    subset = [source.records[i] for i in pairs]
    images, texts, pair_image, failed = encode_pairs(
        source,
        subset,
        text_fn,
        image_fn,
        device=device,
        desc=description,
        on_first_batch=on_first_batch,
    )
    arrays = {"pair_image": pair_image}
    arrays["image"] = (
        torch.stack(images).to(image_dtype)
        if images
        else torch.zeros(0, *image_shape, dtype=image_dtype)
    )
    ragged = bool(texts) and texts[0].dim() == 2
    arrays["text"] = (torch.cat(texts) if ragged else torch.stack(texts)).to(text_dtype)
    if ragged:
        arrays["text_offsets"] = torch.tensor([0] + [len(t) for t in texts]).cumsum(0)
    return arrays, {pairs[i]: reason for i, reason in failed.items()}
