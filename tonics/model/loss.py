"""Symmetric InfoNCE (the CLIP loss) with features gathered across ranks with gradients.

With `gather_with_grad` and `local_loss=False` every rank computes the loss over the global batch,
so the value equals the single-process loss on the concatenated batch. `local_loss=True` computes
only this rank's rows against all columns (linear memory); averaged over ranks (as DDP does) it has
the same value and gradients.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(features: torch.Tensor) -> torch.Tensor:
    """Concatenate `features` from every rank along dim 0, keeping gradients to the local slice."""
    rank, world = _world()
    if world == 1:
        return features
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features), dim=0)


class ClipLoss(nn.Module):
    """Mean of image->text and text->image cross-entropy over the scaled similarity matrix."""

    def __init__(self, *, local_loss: bool = False) -> None:
        super().__init__()
        self.local_loss = local_loss

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor
    ) -> torch.Tensor:
        """Loss for L2-normalised features of matching rows; `logit_scale` is exp(t), not t."""
        rank, world = _world()
        local_n = image_features.shape[0]
        all_images = gather_features(image_features)
        all_texts = gather_features(text_features)
        if self.local_loss and world > 1:
            logits_per_image = logit_scale * image_features @ all_texts.T
            logits_per_text = logit_scale * text_features @ all_images.T
            labels = torch.arange(local_n, device=image_features.device) + rank * local_n
        else:
            logits_per_image = logit_scale * all_images @ all_texts.T
            logits_per_text = logits_per_image.T
            labels = torch.arange(all_images.shape[0], device=image_features.device)
        return (
            F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
        ) / 2


def clip_loss_reference(image_features, text_features, logit_scale: float) -> float:
    """CLIP's formula written out with explicit log-sum-exp loops, for tests: no torch ops shared.

    loss = 1/(2N) * sum_i [ -s_ii + log sum_j exp(s_ij) ] + [ -s_ii + log sum_j exp(s_ji) ]
    """
    import math

    rows = [
        [logit_scale * sum(a * b for a, b in zip(i, t)) for t in text_features]
        for i in image_features
    ]
    n = len(rows)

    def lse(values):
        m = max(values)
        return m + math.log(sum(math.exp(v - m) for v in values))

    image_to_text = sum(lse(rows[i]) - rows[i][i] for i in range(n)) / n
    text_to_image = sum(lse([rows[j][i] for j in range(n)]) - rows[i][i] for i in range(n)) / n
    return (image_to_text + text_to_image) / 2
