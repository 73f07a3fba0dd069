"""Dataset items and collation: decode + preprocess images, tokenise captions, count failures.

Items the sampler marks as "features cached" skip image decoding entirely (frozen-stage fast path).
A failed image (corrupt, truncated, zero bytes, missing, not an image) drops its pair from the
batch and travels in `batch["skipped"]` (index, location, reason) to the main process, where a
callback counts it: worker processes cannot share counters, the batches can.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from tonics.data.images import ImageLimits, load_image, processor_draft_size
from tonics.data.records import PairRecord, pair_key


class PairDataset(Dataset):
    """Pairs as dicts: index, caption, image id, preprocessed pixels (or the failure reason).

    With `images_for` given, only those indices load their image (evaluation encodes each image
    once, through its first caption).
    """

    def __init__(
        self,
        records: Sequence[PairRecord],
        image_processor,
        images_for: set[int] | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        self.records = records
        self.image_processor = image_processor
        self.images_for = images_for
        self.limits = limits or ImageLimits(draft_size=processor_draft_size(image_processor))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, bool]) -> dict:
        """`key` is an index, or (index, need_image) from a sampler serving cached features."""
        index, need_image = key if isinstance(key, tuple) else (key, True)
        record = self.records[index]
        item = {
            "index": index,
            "caption": record.caption,
            "image_id": record.image_id,
            "pixel_values": None,
            "failure": None,
            "location": record.image.describe(),
            "cached": not need_image,
        }
        if not need_image or (self.images_for is not None and index not in self.images_for):
            return item
        image, failure = load_image(record.image, self.limits)
        if image is None:
            item["failure"] = failure
            return item
        try:
            pixels = self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]
        except Exception as err:  # noqa: BLE001 - e.g. a 1x1 image the processor cannot crop
            item["failure"] = f"preprocessing failed ({type(err).__name__})"
            return item
        item["pixel_values"] = pixels
        return item


class Collator:
    """Stacks images, tokenises captions (padded to the longest in the batch), lists failures, and
    gives each pair its (image, caption) key so the loss can tell true matches from negatives."""

    def __init__(self, tokenizer, max_length: int = 64) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, items: list[dict]) -> dict:
        skipped = [(it["index"], it["location"], it["failure"]) for it in items if it["failure"]]
        kept = [it for it in items if not it["failure"]]
        tokens = self.tokenizer(
            [it["caption"] for it in kept] or [""],
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        with_image = [k for k, it in enumerate(kept) if it["pixel_values"] is not None]
        return {
            "indices": torch.tensor([it["index"] for it in kept], dtype=torch.long),
            "image_ids": [it["image_id"] for it in kept],
            "input_ids": tokens["input_ids"][: len(kept)],
            "attention_mask": tokens["attention_mask"][: len(kept)],
            "pixel_values": torch.stack([kept[k]["pixel_values"] for k in with_image])
            if with_image
            else None,
            "has_image": torch.tensor(
                [it["pixel_values"] is not None for it in kept], dtype=torch.bool
            ),
            "pair_keys": torch.tensor(
                [pair_key(it["image_id"], it["caption"]) for it in kept], dtype=torch.long
            ).reshape(len(kept), 2),
            "skipped": skipped,
            "cached": bool(items) and all(it.get("cached", False) for it in items),
        }


def first_pair_of_each_image(records: Sequence[PairRecord]) -> set[int]:
    """Indices of each image's first pair: the ones that load the image in evaluation."""
    first: dict[str, int] = {}
    for i, record in enumerate(records):
        first.setdefault(record.image_id, i)
    return set(first.values())


def image_once_loader(
    records: Sequence[PairRecord],
    image_processor,
    tokenizer,
    *,
    batch_size: int,
    num_workers: int = 0,
    max_length: int = 64,
    persistent_workers: bool = False,
    limits: ImageLimits | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Sequential batches of every caption, each image decoded once (through its first pair).

    With `world_size` > 1 the loader serves rank `rank`'s share: a contiguous range of the
    records (dataset indices stay global), so the ranks' rows, joined in rank order, are exactly
    one process's rows. The loader draws its workers' seeds from a generator of its own, never
    from torch's global one: evaluating between training steps then leaves the training stream
    (dropout, anything drawn from the global generator) exactly as it would be without the
    evaluation."""
    dataset = PairDataset(
        records, image_processor, images_for=first_pair_of_each_image(records), limits=limits
    )
    share = -(-len(records) // world_size)  # ceil: the last rank may get fewer (or none)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=range(rank * share, min(len(records), (rank + 1) * share)),
        collate_fn=Collator(tokenizer, max_length),
        num_workers=num_workers,
        persistent_workers=persistent_workers and num_workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
