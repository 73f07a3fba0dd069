"""Contrastive losses over a batch of image/text pairs, with features gathered across ranks with
gradients, and knowledge of which pairs in the (global) batch are true matches.

- `ClipLoss`: symmetric InfoNCE (the CLIP loss). Pairs that share an image or an identical
  normalised caption are not negatives of each other (false negatives): by default they count as
  positives (multi-positive InfoNCE: the target of a row is uniform over its positives), or they
  can be masked out of the negatives, or ignored (plain InfoNCE). With no duplicates in the batch
  every mode equals plain InfoNCE.
- `SigLipLoss`: SigLIP's pairwise sigmoid loss, -1/n sum_ij log sigmoid(z_ij (t s_ij + b)) with
  z_ij = +1 for positives and -1 otherwise; it takes the label matrix natively and suits small
  batches. It owns its learnable bias b (init -10, as in SigLIP).

With `local_loss=False` every rank computes the loss over the global batch, so the value equals
the single-process loss on the concatenated batch. `local_loss=True` computes only this rank's rows
against all columns (linear memory); averaged over ranks (as DDP does) it has the same value and
gradients. Pair keys (`pair_keys`, shape (n, 2): image key, caption key) are gathered without
gradients to build the positive mask.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

FalseNegatives = Literal["positive", "mask", "ignore"]
FALSE_NEGATIVE_MODES = ("positive", "mask", "ignore")


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


def gather_keys(keys: torch.Tensor) -> torch.Tensor:
    """Concatenate integer pair keys from every rank (no gradients)."""
    rank, world = _world()
    if world == 1:
        return keys
    gathered = [torch.empty_like(keys) for _ in range(world)]
    dist.all_gather(gathered, keys.contiguous())
    return torch.cat(gathered, dim=0)


def positive_mask(row_keys: torch.Tensor, column_keys: torch.Tensor) -> torch.Tensor:
    """(rows, columns) bool: True where two pairs share their image key or their caption key."""
    same = row_keys[:, None, :] == column_keys[None, :, :]
    return same.any(dim=-1)


def _own_columns(rows: int, offset: int, device) -> torch.Tensor:
    return torch.arange(rows, device=device) + offset


class _PairwiseLoss(nn.Module):
    """Shared plumbing: gather features and keys, pick this rank's rows, build the label mask."""

    def __init__(self, *, local_loss: bool = False) -> None:
        super().__init__()
        self.local_loss = local_loss

    def _layout(self, image_features, text_features, pair_keys):
        """(row images, row texts, all images, all texts, positives or None, own column of each
        row)."""
        rank, world = _world()
        local_n = image_features.shape[0]
        all_images = gather_features(image_features)
        all_texts = gather_features(text_features)
        all_keys = gather_keys(pair_keys) if pair_keys is not None else None
        if self.local_loss and world > 1:
            rows_i, rows_t, offset = image_features, text_features, rank * local_n
            row_keys = pair_keys
        else:
            rows_i, rows_t, offset, row_keys = all_images, all_texts, 0, all_keys
        own = _own_columns(rows_i.shape[0], offset, image_features.device)
        positives = positive_mask(row_keys, all_keys) if all_keys is not None else None
        if positives is not None:  # a pair is always its own positive, whatever its keys
            positives[torch.arange(len(own), device=own.device), own] = True
        return rows_i, rows_t, all_images, all_texts, positives, own


class ClipLoss(_PairwiseLoss):
    """Mean of image->text and text->image cross-entropy over the scaled similarity matrix."""

    def __init__(
        self, *, local_loss: bool = False, false_negatives: FalseNegatives = "positive"
    ) -> None:
        super().__init__(local_loss=local_loss)
        if false_negatives not in FALSE_NEGATIVE_MODES:
            raise ValueError(
                f"false_negatives must be one of {FALSE_NEGATIVE_MODES}, got '{false_negatives}'"
            )
        self.false_negatives = false_negatives

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        pair_keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss for L2-normalised features of matching rows; `logit_scale` is exp(t), not t.

        `pair_keys` (n, 2) int64 (image key, caption key) mark false negatives; None: plain InfoNCE.
        """
        keys = None if self.false_negatives == "ignore" else pair_keys
        rows_i, rows_t, all_images, all_texts, positives, own = self._layout(
            image_features, text_features, keys
        )
        logits_per_image = logit_scale * rows_i @ all_texts.T
        logits_per_text = logit_scale * rows_t @ all_images.T
        target: torch.Tensor = own  # class indices: each row's own pair
        if positives is not None and self.false_negatives == "mask":
            others = positives.clone()
            others[torch.arange(len(own), device=own.device), own] = False
            logits_per_image = logits_per_image.masked_fill(others, float("-inf"))
            logits_per_text = logits_per_text.masked_fill(others, float("-inf"))
        elif positives is not None:  # multi-positive: uniform over each row's true matches
            target = positives.to(logits_per_image.dtype)
            target = target / target.sum(dim=1, keepdim=True)
        return (
            F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_text, target)
        ) / 2


class SigLipLoss(_PairwiseLoss):
    """SigLIP's pairwise sigmoid loss with a learnable bias; positives from the pair keys."""

    def __init__(self, *, local_loss: bool = False, init_bias: float = -10.0) -> None:
        super().__init__(local_loss=local_loss)
        self.logit_bias = nn.Parameter(torch.tensor(init_bias))

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        pair_keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """-1/n sum over every (image, text) of log sigmoid(label * logit); n = this batch's
        rows."""
        rows_i, _, _, all_texts, positives, own = self._layout(
            image_features, text_features, pair_keys
        )
        logits = logit_scale * rows_i @ all_texts.T + self.logit_bias.to(rows_i.dtype)
        if positives is None:
            positives = torch.zeros_like(logits, dtype=torch.bool)
            positives[torch.arange(len(own), device=own.device), own] = True
        labels = positives.to(logits.dtype) * 2 - 1
        return -F.logsigmoid(labels * logits).sum() / rows_i.shape[0]


def make_loss(
    name: str, *, local_loss: bool = False, false_negatives: FalseNegatives = "positive"
) -> _PairwiseLoss:
    """A loss by name: 'infonce' (ClipLoss) or 'siglip' (false negatives always positives)."""
    if name == "infonce":
        return ClipLoss(local_loss=local_loss, false_negatives=false_negatives)
    if name == "siglip":
        return SigLipLoss(local_loss=local_loss)
    raise ValueError(f"model.loss.kind must be 'infonce' or 'siglip', got '{name}'")


# -- references for tests: explicit loops, no torch ops shared with the code above --------------


def _lse(values) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def _dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


def clip_loss_reference(image_features, text_features, logit_scale: float) -> float:
    """CLIP's formula written out with explicit log-sum-exp loops, for tests: no torch ops shared.

    loss = 1/(2N) * sum_i [ -s_ii + log sum_j exp(s_ij) ] + [ -s_ii + log sum_j exp(s_ji) ]
    """
    rows = [[logit_scale * _dot(i, t) for t in text_features] for i in image_features]
    n = len(rows)
    image_to_text = sum(_lse(rows[i]) - rows[i][i] for i in range(n)) / n
    text_to_image = sum(_lse([rows[j][i] for j in range(n)]) - rows[i][i] for i in range(n)) / n
    return (image_to_text + text_to_image) / 2


def _reference_positives(keys) -> list[list[bool]]:
    n = len(keys)
    return [
        [i == j or keys[i][0] == keys[j][0] or keys[i][1] == keys[j][1] for j in range(n)]
        for i in range(n)
    ]


def multi_positive_reference(
    image_features, text_features, logit_scale: float, keys, mode: str
) -> float:
    """Multi-positive ('positive') or masked ('mask') InfoNCE written out with loops, for tests.

    positive: row i's loss = -1/|P_i| sum_{j in P_i} log softmax(s_i)_j;
    mask:     row i's loss = -s_ii + log sum_{j not in P_i, or j = i} exp(s_ij).
    """
    s = [[logit_scale * _dot(i, t) for t in text_features] for i in image_features]
    n = len(s)
    pos = _reference_positives(keys)

    def row_loss(scores, positives, own):
        if mode == "positive":
            lse = _lse(scores)
            members = [j for j in range(n) if positives[j]]
            return sum(lse - scores[j] for j in members) / len(members)
        kept = [scores[j] for j in range(n) if j == own or not positives[j]]
        return _lse(kept) - scores[own]

    image_to_text = sum(row_loss(s[i], pos[i], i) for i in range(n)) / n
    text_to_image = sum(row_loss([s[j][i] for j in range(n)], pos[i], i) for i in range(n)) / n
    return (image_to_text + text_to_image) / 2


def siglip_reference(
    image_features, text_features, logit_scale: float, bias: float, keys=None
) -> float:
    """SigLIP's loss written out: -1/n sum_ij log(1 / (1 + exp(-z_ij (t s_ij + b))))."""
    n = len(image_features)
    pos = (
        _reference_positives(keys)
        if keys is not None
        else [[i == j for j in range(n)] for i in range(n)]
    )
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if pos[i][j] else -1.0
            logit = logit_scale * _dot(image_features[i], text_features[j]) + bias
            total += math.log1p(math.exp(-z * logit))
    return total / n
