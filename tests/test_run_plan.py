"""One run plan, built once and handed out: the module, the data module and the curriculum
callback read the same object; a plain `trainer.fit` still opens the towers at
`model.opening.at_step`; the model card describes a run's openings from the same plan."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from test_plain_fit import _batches

from tonics.data.readers import KarpathyReader
from tonics.export import _training_section
from tonics.model.factory import ModelSpec
from tonics.sampling import Stage
from tonics.train.callbacks import CurriculumCallback
from tonics.train.datamodule import TonicsDataModule
from tonics.train.model_settings import StepOpening
from tonics.train.module import AlignmentModule
from tonics.train.settings import CacheSettings, LoaderSettings
from tonics.train.wiring import connect_run


def _plain_fit(module: AlignmentModule, steps: int) -> None:
    trainer = pl.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(_batches(steps), None))


def test_a_plain_fit_opens_the_towers_at_the_step_opening():
    torch.manual_seed(0)
    opened = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16),
        opening=StepOpening(at_step=2, top_k=1),
    )
    _plain_fit(opened, 4)
    assert opened.unfrozen == {"text": 1, "vision": 1} and opened.opened_at == {
        "text": 2,
        "vision": 2,
    }
    assert any(p.requires_grad for p in opened.model.vision.parameters())
    control = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )  # no step opening: shut
    _plain_fit(control, 4)
    assert control.unfrozen == {"text": None, "vision": None}


def test_connect_run_hands_one_plan_to_every_part(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    stages = [
        Stage(name="a", mix={"random": 1.0}, steps=2),
        Stage(name="b", mix={"random": 1.0}, opening={"text": 1}),
    ]
    dm = TonicsDataModule(
        KarpathyReader(split_file, root),
        loader=LoaderSettings(batch_size=8),
        cache=CacheSettings(enabled=True),
        stages=stages,
        text_encoder="tiny:bert",
        vision_encoder="tiny:vit",
        ontology_cache=str(tmp_path),
    )
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16),
        opening=StepOpening(at_step=3),
    )
    callback = CurriculumCallback()
    plan = connect_run(module, dm, [callback, pl.callbacks.LearningRateMonitor()])
    assert module.plan is plan and dm.plan is plan and callback.plan is plan
    assert plan.openings.at_step == 3 and plan.curriculum is dm.curriculum
    assert plan.data.split_evaluated("val") == "val" and plan.sampler is None
    dm.setup("fit")
    assert plan.sampler is dm.batch_sampler and dm.batch_sampler.openings is plan.openings
    assert plan.openings.at(3, 0) == {"text": "all", "vision": "all"}  # the model's step opening
    assert plan.openings.at(2, 1) == {"text": 1, "vision": None}  # the stage's
    assert plan.steps_per_epoch() == len(dm.batch_sampler) and plan.stage_at(2) == 1


def _card(model: dict) -> str:
    fit = {
        "model": model,
        "data": {
            "loader": {"batch_size": 4},
            "stages": [
                {"name": "heads", "steps": 10, "mix": {"random": 1.0}},
                {"name": "hard", "mix": {"ontology": 1.0}},
            ],
        },
    }
    stages = [
        {"name": "heads", "steps": 10, "mix": "random"},
        {"name": "hard", "steps": None, "mix": "ontology"},
    ]
    return "\n".join(_training_section(fit, stages))


def test_the_model_card_describes_a_run_opened_at_a_step():
    card = _card({"opening": {"at_step": 15, "top_k": 2}})
    assert "- towers opened at step 15: text top 2, vision top 2" in card
    assert "| heads | 10 | random | - | none (frozen) |" in card
    assert (
        "| hard | None | ontology | - | none (frozen); text top 2, vision top 2 from step 15 |"
        in card
    )
    frozen = _card({})  # the control: no step opening, both towers stay shut
    assert (
        "towers opened" not in frozen and "| hard | None | ontology | - | none (frozen) |" in frozen
    )
