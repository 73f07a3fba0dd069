"""The Lightning module's training settings, grouped by concept and kept apart from the model's
architecture (`tonics.model.factory.ModelSpec`), each group validated in one place.

A config writes them as `model.optimizer.*`, `model.schedule.*`, `model.opening.*` and
`model.loss.*`; every check names that YAML key in its one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tonics.errors import require, require_choice, require_number
from tonics.model.factory import ModelSpec
from tonics.model.loss import FALSE_NEGATIVE_MODES, FalseNegatives
from tonics.train.schedule import LrSchedule


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW's settings: `lr` for the heads and temperature, `encoder_lr` for opened encoder
    blocks, `weight_decay` (never on biases, norms or the temperature)."""

    lr: float = 1e-3
    encoder_lr: float = 1e-5
    weight_decay: float = 0.05

    def __post_init__(self) -> None:
        require_number(self.lr, "model.optimizer.lr", low=0, low_open=True)
        require_number(self.encoder_lr, "model.optimizer.encoder_lr", low=0)
        require_number(self.weight_decay, "model.optimizer.weight_decay", low=0)


@dataclass(frozen=True)
class ScheduleSettings:
    """The learning-rate schedule.

    kind: 'per_stage' (warm-up + cosine within each curriculum stage) or 'run' (one warm-up +
        cosine over the whole run); warmup_steps: the warm-up of each segment; min_lr_ratio: the
        cosine's floor; encoder_warmup_steps: linear warm-up of an encoder's learning rate from
        the step it opens.
    """

    kind: LrSchedule = "per_stage"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    encoder_warmup_steps: int = 10

    def __post_init__(self) -> None:
        require_choice(self.kind, ("per_stage", "run"), "model.schedule.kind")
        require_number(self.warmup_steps, "model.schedule.warmup_steps", low=0, integer=True)
        require_number(self.min_lr_ratio, "model.schedule.min_lr_ratio", low=0, high=1)
        key = "model.schedule.encoder_warmup_steps"
        require_number(self.encoder_warmup_steps, key, low=0, integer=True)


@dataclass(frozen=True)
class StepOpening:
    """Both towers opened at a step, apart from the curriculum's stages: `at_step` (None: never),
    `top_k` blocks of each (None: the whole encoder). One way of writing the run's opening plan
    (`tonics.sampling.openings`)."""

    at_step: int | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.at_step is not None:
            require_number(self.at_step, "model.opening.at_step", low=0, integer=True)
        if self.top_k is not None:
            require_number(self.top_k, "model.opening.top_k", low=1, integer=True)


@dataclass(frozen=True)
class LossSettings:
    """The training loss.

    kind: 'infonce' (CLIP's) or 'siglip' (pairwise sigmoid).
    false_negatives: pairs sharing an image or an identical caption are 'positive' (multi-
        positive InfoNCE), 'mask'ed out of the negatives, or 'ignore'd (plain InfoNCE).
    local: each rank's loss over its own rows against all ranks' (open_clip's local loss).
    caption_weight: above 0, loss = contrastive + weight * captioning (CoCa: 2); needs a
        captioning head (`model.spec.captioner`).
    """

    kind: Literal["infonce", "siglip"] = "infonce"
    false_negatives: FalseNegatives = "positive"
    local: bool = False
    caption_weight: float = 0.0

    def __post_init__(self) -> None:
        require_choice(self.kind, ("infonce", "siglip"), "model.loss.kind")
        require_choice(self.false_negatives, FALSE_NEGATIVE_MODES, "model.loss.false_negatives")
        require_number(self.caption_weight, "model.loss.caption_weight", low=0)


def check_spec(spec: ModelSpec, loss: LossSettings) -> None:
    """The architecture's choices, and a captioning head exactly when a captioning loss trains
    it, each error naming its `model.spec.*` or `model.loss.*` key."""
    require_choice(spec.text_pooling, ("cls", "mean"), "model.spec.text_pooling")
    require_choice(spec.vision_pooling, ("pooled", "cls", "mean"), "model.spec.vision_pooling")
    require_choice(spec.head, ("linear", "mlp"), "model.spec.head")
    require_number(spec.embed_dim, "model.spec.embed_dim", low=1, integer=True)
    require_number(spec.bn_momentum, "model.spec.bn_momentum", low=0, high=1, low_open=True)
    require(
        loss.caption_weight == 0 or spec.captioner is not None,
        "model.spec.captioner",
        f"model.loss.caption_weight {loss.caption_weight} trains a captioning head: set "
        "model.spec.captioner ({} for its defaults)",
    )
    require(
        spec.captioner is None or loss.caption_weight > 0,
        "model.loss.caption_weight",
        "must be above 0 when model.spec.captioner is set (the head learns only from it)",
    )
