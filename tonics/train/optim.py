"""Optimizer parameter groups: heads, temperature (and a loss's own parameters), and each encoder
in its own groups (tagged with its tower, for the opening warm-up); biases, norms and scalars take
no weight decay."""

from __future__ import annotations

import torch
from torch import nn

TOWERS = ("text", "vision")


def _no_decay(name: str, parameter: torch.nn.Parameter) -> bool:
    """Biases, norm weights and scalars take no weight decay."""
    return parameter.ndim < 2 or name.endswith(".bias") or "norm" in name.lower()


def _split_decay(named, **group) -> list[dict]:
    named = list(named)
    decay = [p for n, p in named if not _no_decay(n, p)]
    plain = [p for n, p in named if _no_decay(n, p)]
    no_decay = {**group, "weight_decay": 0.0, "name": f"{group['name']}_no_decay"}
    return [g for g in ({**group, "params": decay}, {**no_decay, "params": plain}) if g["params"]]


def parameter_groups(
    model, loss: nn.Module, *, lr: float, encoder_lr: float, weight_decay: float
) -> list[dict]:
    """AdamW groups of an AlignmentModel and its loss (see the module docstring)."""
    heads = [*model.text_head.named_parameters(), *model.vision_head.named_parameters()]
    groups = _split_decay(heads, lr=lr, weight_decay=weight_decay, name="heads")
    if model.captioner is not None:
        groups += _split_decay(
            model.captioner.named_parameters(), lr=lr, weight_decay=weight_decay, name="captioner"
        )
    groups.append(
        {
            "params": [model.logit_scale, *loss.parameters()],
            "lr": lr,
            "weight_decay": 0.0,
            "name": "temperature",
        }
    )
    for tower in TOWERS:
        encoder = model.text if tower == "text" else model.vision
        groups += _split_decay(
            encoder.named_parameters(),
            lr=encoder_lr,
            weight_decay=weight_decay,
            name=f"{tower}_encoder",
            tower=tower,
        )
    return groups
