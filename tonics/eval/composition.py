"""Retrieval on seen and unseen object combinations: does the model handle a pair of objects it
never saw together in one training image?

An evaluation image is *unseen* when two of its objects (its annotated categories, e.g. COCO
instances) never share a training image, *seen* when every pair of its objects does, and not
counted with fewer than two distinct objects. Standard recall (ranked against every candidate, as
in `tonics.eval.retrieval`) is then reported over the queries of each group: text->image over the
captions of the group's images, image->text over its images.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import torch


def object_pairs(objects: Iterable[str]) -> set[frozenset[str]]:
    """Every unordered pair of distinct objects."""
    return {frozenset(p) for p in itertools.combinations(sorted(set(objects)), 2)}


def unseen_combinations(records, train_records) -> list[bool | None]:
    """Per record, in order: whether its image's objects hold a pair no training image holds
    (None: fewer than two distinct objects)."""
    seen_images: set[str] = set()
    train_pairs: set[frozenset[str]] = set()
    for record in train_records:
        if record.image_id not in seen_images and len(record.objects) > 1:
            seen_images.add(record.image_id)
            train_pairs |= object_pairs(record.objects)
    flags: list[bool | None] = []
    for record in records:
        pairs = object_pairs(record.objects)
        flags.append(bool(pairs - train_pairs) if pairs else None)
    return flags


def composition_metrics(
    text_to_image_ranks: torch.Tensor,
    image_to_text_ranks: torch.Tensor,
    text_to_image: Sequence[int],
    unseen_of_caption: Sequence[bool | None],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """R@K both ways on seen and unseen combinations, from the full retrieval's 0-based ranks;
    `unseen_of_caption[c]` is the flag of caption c's image. Empty when no image has two objects."""
    owner = torch.as_tensor(list(text_to_image), dtype=torch.long)
    image_flag: dict[int, bool | None] = {}
    for c, flag in enumerate(unseen_of_caption):
        image_flag.setdefault(int(owner[c]), flag)
    out: dict[str, float] = {}
    for name, wanted in (("seen", False), ("unseen", True)):
        images = torch.tensor(
            sorted(i for i, f in image_flag.items() if f is wanted), dtype=torch.long
        )
        if not len(images):
            continue
        captions = torch.isin(owner, images)
        t2i, i2t = text_to_image_ranks[captions], image_to_text_ranks[images]
        for k in ks:
            out[f"{name}_combination_text_to_image_R@{k}"] = float((t2i < k).float().mean() * 100)
            out[f"{name}_combination_image_to_text_R@{k}"] = float((i2t < k).float().mean() * 100)
        out[f"{name}_combination_images"] = float(len(images))
    return out
