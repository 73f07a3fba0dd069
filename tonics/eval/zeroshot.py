"""Zero-shot classification, CLIP style: each class's text embedding is the normalised mean of its
name in several prompt templates; an image is assigned the most similar class."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "a drawing of a {}.",
    "clip art of a {}.",
    "an emoji of a {}.",
    "a close-up photo of the {}.",
    "a cartoon {}.",
)


def class_embeddings(encode_text: Callable[[list[str]], torch.Tensor], class_names: Sequence[str],
                     templates: Sequence[str] = TEMPLATES) -> torch.Tensor:  # fmt: skip
    """(classes, dim) L2-normalised prompt-ensemble embeddings."""
    if not class_names:
        raise ValueError("zero-shot classification needs at least one class name")
    rows = []
    with torch.no_grad():
        for name in class_names:
            prompts = [t.format(name) for t in templates]
            rows.append(F.normalize(F.normalize(encode_text(prompts), dim=-1).mean(0), dim=-1))
    return torch.stack(rows)


def zero_shot_accuracy(image_embeddings: torch.Tensor, labels: Sequence[int] | torch.Tensor,
                       classifier: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:  # fmt: skip
    """Top-k accuracy (percent) of images against class embeddings; ties go to the lower class."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    if not torch.isfinite(image_embeddings).all():
        raise ValueError("image embeddings contain NaN or inf")
    scores = image_embeddings.float() @ classifier.float().T
    own = scores.gather(1, labels[:, None])
    classes = torch.arange(scores.shape[1])
    rank = (scores > own).sum(1) + ((scores == own) & (classes[None, :] < labels[:, None])).sum(1)
    return {f"top{k}": float((rank < k).float().mean() * 100) for k in ks if k <= scores.shape[1]}
