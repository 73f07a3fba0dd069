"""Image<->text retrieval metrics, computed in blocks so 5k images x 25k captions fit in memory.

Definitions (LAION's clip_benchmark, VSE++):
- text->image R@K: share of captions whose own image is among the K most similar images;
- image->text R@K: share of images with at least one of their captions among the K most similar
  captions (an image's rank is the best rank of its captions).
Ties are broken deterministically in favour of the lower index: an item's rank counts the items
scoring strictly higher plus the items scoring exactly the same that come earlier in the input.
Ranks reported as mean/median are 1-based.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tonics.eval.ranking import paired_ranks


@dataclass
class RetrievalResult:
    """Recall@K both directions plus mean/median rank, and the 0-based ranks themselves."""

    metrics: dict[str, float]
    text_to_image_ranks: torch.Tensor
    image_to_text_ranks: torch.Tensor


@dataclass
class EmbeddedSplit:
    """A split's embeddings ready for retrieval: images once each, captions that have an image."""

    images: torch.Tensor
    texts: torch.Tensor
    text_to_image: list[int]  # caption row -> image row
    image_ids: list[str]  # image row -> image id
    dropped: int = 0  # captions left out because their image failed to load
    kept: list[int] | None = None  # caption row -> position of its record in the loader's order


def collect_embeddings(chunks) -> EmbeddedSplit | None:
    """Join per-batch chunks (text embeddings or None, image embeddings or None, image ids,
    has_image[, dataset indices, pairs the collator already left out]).

    Batches come from `image_once_loader`: every caption has a text row, only each image's first
    pair has an image row. Captions whose image failed to load are left out and counted in
    `dropped`, whether the collator removed them (the pair's own image failed) or they arrive
    without an image row (their image's first pair failed). `kept` gives each caption row's
    dataset index (its position in the loader's records). None when nothing can be evaluated.
    """
    texts, images, rows, owners, positions, removed = [], [], {}, [], [], 0
    for text, image, image_ids, has_image, *extra in chunks:
        indices = extra[0].tolist() if extra and extra[0] is not None else None
        removed += int(extra[1]) if len(extra) > 1 else 0
        if text is None:
            continue
        texts.append(text)
        if image is not None:
            images.append(image)
            for image_id in (i for i, h in zip(image_ids, has_image.tolist()) if h):
                rows[image_id] = len(rows)
        positions.extend(
            indices if indices is not None else range(len(owners), len(owners) + len(image_ids))
        )
        owners.extend(image_ids)
    keep = [k for k, image_id in enumerate(owners) if image_id in rows]
    if not images or not keep:
        return None
    return EmbeddedSplit(
        torch.cat(images),
        torch.cat(texts)[keep],
        [rows[owners[k]] for k in keep],
        list(rows),
        dropped=len(owners) - len(keep) + removed,
        kept=[positions[k] for k in keep],
    )


def _check(name: str, emb: torch.Tensor) -> None:
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise ValueError(
            f"{name} embeddings must be a non-empty (n, d) matrix, got {tuple(emb.shape)}"
        )
    if not torch.isfinite(emb).all():
        bad = int((~torch.isfinite(emb)).any(dim=1).sum())
        raise ValueError(f"{name} embeddings contain NaN or inf in {bad} row(s)")


def retrieval_metrics(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    text_to_image: Sequence[int] | torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int | None = None,
) -> RetrievalResult:
    """Recall@K for similarity = dot product; `text_to_image[c]` is caption c's image row;
    `recall_mean` is the mean of every R@K both ways.
    Scores are computed once, in blocks of `chunk_size` image rows (default: about 8M scores per
    block), by `tonics.eval.ranking.paired_ranks`."""
    _check("image", image_embeddings)
    _check("text", text_embeddings)
    images, texts = image_embeddings.float(), text_embeddings.float()
    owner = torch.as_tensor(text_to_image, dtype=torch.long).cpu()
    if owner.shape[0] != texts.shape[0]:
        raise ValueError(f"{texts.shape[0]} captions but {owner.shape[0]} image indices")
    if owner.min() < 0 or owner.max() >= images.shape[0]:
        raise ValueError(
            f"a caption points at image {int(owner.max())}, but there are {images.shape[0]} images"
        )
    t2i, i2t = paired_ranks(images, texts, owner, _captions_of(owner, images.shape[0]), chunk_size)
    metrics = {}
    for k in ks:
        metrics[f"text_to_image_R@{k}"] = float((t2i < k).float().mean() * 100)
        metrics[f"image_to_text_R@{k}"] = float((i2t < k).float().mean() * 100)
    recalls = [v for key, v in metrics.items() if "_R@" in key]
    metrics["recall_mean"] = sum(recalls) / len(recalls)  # R@K both ways: what checkpoints track
    for name, ranks in (("text_to_image", t2i), ("image_to_text", i2t)):
        metrics[f"{name}_mean_rank"] = float((ranks + 1).float().mean())
        metrics[f"{name}_median_rank"] = float((ranks + 1).float().median())
    return RetrievalResult(metrics, t2i, i2t)


def _captions_of(owner: torch.Tensor, images: int) -> torch.Tensor:
    """(images, max captions per image): each image's caption indices, ascending; short rows are
    padded by repeating their first caption."""
    order = torch.argsort(owner, stable=True)
    counts = torch.bincount(owner, minlength=images)
    if (counts == 0).any():
        missing = int((counts == 0).nonzero()[0])
        raise ValueError(f"image {missing} has no caption; every image needs at least one")
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(int(counts.max()))[None, :].clamp(max=counts[:, None] - 1)
    return order[starts[:, None] + slot]
