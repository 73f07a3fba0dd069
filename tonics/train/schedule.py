"""Learning-rate schedules that give every curriculum stage a real learning rate.

`per_stage` (the default): each stage warms up over `warmup_steps` and decays with a cosine to
`min_lr_ratio` of the peak by its own end (SGDR-style restarts at stage boundaries), so a hard
stage late in a run trains at the full rate rather than the tail of one run-long cosine. A plateau
stage whose end is not known yet holds the peak after its warm-up. `run`: one warm-up and one
cosine over the whole run (the classic schedule).

Each encoder's parameter groups are scaled further by a linear warm-up of their own, starting at
the step the encoder opens (`encoder_warmup_steps`): an encoder opened mid-run does not receive the
full rate on its first step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

LrSchedule = Literal["per_stage", "run"]


def warmup_cosine(t: int, length: int | None, warmup: int, min_ratio: float) -> float:
    """Factor at step `t` of a segment: linear warm-up over `warmup` steps, then a cosine from 1 to
    `min_ratio` at `length` (constant 1 after the warm-up when the length is unknown)."""
    if warmup > 0 and t < warmup:
        return (t + 1) / warmup
    if length is None:
        return 1.0
    progress = min(1.0, (t - warmup) / max(1, length - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def schedule_factor(
    step: int,
    *,
    kind: LrSchedule,
    total_steps: int,
    warmup_steps: int,
    min_lr_ratio: float,
    curriculum=None,
    steps_per_epoch: int = 1,
) -> float:
    """The base factor of every group at `step` (see the module docstring)."""
    if kind == "run" or curriculum is None:
        return warmup_cosine(step, total_steps, warmup_steps, min_lr_ratio)
    if kind != "per_stage":
        raise ValueError(f"model.schedule.kind must be 'per_stage' or 'run', got '{kind}'")
    _, start, end = curriculum.stage_bounds(step, steps_per_epoch, total_steps)
    return warmup_cosine(
        step - start, None if end is None else end - start, warmup_steps, min_lr_ratio
    )


def opening_warmup(step: int, opened_at: int | None, warmup: int) -> float:
    """0 before the group opens, then a linear ramp to 1 over `warmup` steps."""
    if opened_at is None or step < opened_at:
        return 0.0
    if warmup <= 0:
        return 1.0
    return min(1.0, (step - opened_at + 1) / warmup)


def group_lambdas(
    groups: list[dict],
    base: Callable[[int], float],
    opened_at: Callable[[str], int | None],
    encoder_warmup_steps: int,
) -> list[Callable[[int], float]]:
    """One LambdaLR function per optimizer group: the base factor, times the opening warm-up for
    groups that belong to an encoder (`group["tower"]` is 'text' or 'vision')."""
    lambdas = []
    for group in groups:
        tower = group.get("tower")
        if tower is None:
            lambdas.append(base)
        else:
            lambdas.append(
                lambda step, tower=tower: (
                    base(step) * opening_warmup(step, opened_at(tower), encoder_warmup_steps)
                )
            )
    return lambdas
