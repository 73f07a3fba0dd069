"""Per-batch diagnostics logged at every training step: in-batch accuracy (a hit on any true
match counts), hardness of the true negatives, and the share of rows with a false negative."""

from __future__ import annotations

import torch

from tonics.model.loss import positive_mask


def batch_statistics(
    image: torch.Tensor,
    text: torch.Tensor,
    scale: torch.Tensor,
    pair_keys: torch.Tensor | None = None,
) -> dict[str, float]:
    """In-batch accuracy both ways (a hit on any true match counts), hardness (mean / max cosine
    similarity of the true negatives) and the share of rows with a false negative in the batch."""
    with torch.no_grad():
        sims = image @ text.T
        n = sims.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=sims.device)
        positives = positive_mask(pair_keys, pair_keys) | eye if pair_keys is not None else eye
        rows = torch.arange(n, device=sims.device)
        negatives = sims[~positives]
        return {
            "acc_i2t": float(positives[rows, sims.argmax(1)].float().mean()),
            "acc_t2i": float(positives[sims.argmax(0), rows].float().mean()),
            "hardness_mean": float(negatives.mean()) if negatives.numel() else 0.0,
            "hardness_max": float(negatives.max()) if negatives.numel() else 0.0,
            "false_negative_rows": float((positives & ~eye).any(1).float().mean()),
            "temperature": float(1 / scale),
        }
