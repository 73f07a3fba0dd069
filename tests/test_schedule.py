"""Learning-rate schedule: per-stage warm-up/cosine, encoder opening warm-up, no decay on norms."""

from __future__ import annotations

import math

import pytest

from tonics.model.factory import ModelSpec
from tonics.sampling.curriculum import Curriculum, Stage
from tonics.train.model_settings import LossSettings
from tonics.train.schedule import opening_warmup, schedule_factor, warmup_cosine


def _curriculum():
    return Curriculum(
        [
            Stage(name="a", mix={"random": 1.0}, steps=10),
            Stage(name="b", mix={"random": 1.0}, steps=20),
            Stage(name="c", mix={"random": 1.0}),
        ]
    )


def test_warmup_cosine_reference_points():
    assert warmup_cosine(0, 100, 4, 0.0) == pytest.approx(0.25)
    assert warmup_cosine(3, 100, 4, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(4, 100, 4, 0.0) == pytest.approx(1.0)  # cosine starts at its peak
    middle = 4 + (100 - 4) / 2
    assert warmup_cosine(int(middle), 100, 4, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 4, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(50, None, 4, 0.0) == 1.0  # unknown end: hold the peak


def test_per_stage_schedule_restarts_at_each_stage():
    curriculum = _curriculum()
    factor = lambda step: schedule_factor(  # noqa: E731
        step,
        kind="per_stage",
        total_steps=60,
        warmup_steps=2,
        min_lr_ratio=0.0,
        curriculum=curriculum,
        steps_per_epoch=100,
    )
    assert factor(0) == pytest.approx(0.5) and factor(1) == pytest.approx(1.0)
    assert factor(9) < 0.1  # end of stage a
    assert factor(10) == pytest.approx(0.5) and factor(11) == pytest.approx(1.0)  # b restarts
    assert factor(29) < 0.05
    assert factor(31) == pytest.approx(1.0)  # c: the last stage runs to total_steps
    expected = 0.5 * (1 + math.cos(math.pi * (45 - 32) / (30 - 2)))
    assert factor(45) == pytest.approx(expected)
    # the whole-run schedule, by contrast, is already low in the last stage
    run = schedule_factor(45, kind="run", total_steps=60, warmup_steps=2, min_lr_ratio=0.0)
    assert run < 0.25 < factor(45)


def test_plateau_stage_holds_the_peak_until_told_to_advance():
    curriculum = Curriculum(
        [Stage(name="a", mix={"random": 1.0}, plateau_patience=2), Stage(name="b")]
    )
    kwargs = dict(
        kind="per_stage",
        total_steps=100,
        warmup_steps=0,
        min_lr_ratio=0.0,
        curriculum=curriculum,
        steps_per_epoch=1000,
    )
    assert schedule_factor(40, **kwargs) == 1.0
    curriculum.request_advance(50)
    assert schedule_factor(60, **kwargs) == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 50)))


def test_opening_warmup():
    assert opening_warmup(5, None, 10) == 0.0
    assert opening_warmup(19, 20, 10) == 0.0
    assert opening_warmup(20, 20, 10) == pytest.approx(0.1)
    assert opening_warmup(29, 20, 10) == pytest.approx(1.0)
    assert opening_warmup(100, 20, 0) == 1.0


def test_parameter_groups_exclude_norms_biases_and_scalars_from_decay():
    from tonics.train.module import AlignmentModule

    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=8, head="mlp"),
        loss=LossSettings(kind="siglip"),
    )
    groups = {g["name"]: g for g in module.parameter_groups()}
    names = {id(p): n for n, p in module.named_parameters()}
    for name, group in groups.items():
        members = [names[id(p)] for p in group["params"]]
        if name.endswith("no_decay") or name == "temperature":
            assert group["weight_decay"] == 0.0
            assert all(module.get_parameter(n).ndim < 2 or "norm" in n.lower() for n in members)
        else:
            assert group["weight_decay"] > 0
            assert not any(n.endswith(".bias") or "norm" in n.lower() for n in members)
    assert "loss.logit_bias" in {names[id(p)] for p in groups["temperature"]["params"]}
    assert (
        groups["vision_encoder"]["tower"] == "vision" and groups["text_encoder"]["tower"] == "text"
    )
    covered = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(covered) == sorted(id(p) for p in module.parameters())  # each exactly once
