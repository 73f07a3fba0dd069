"""`connect_run`: build a run's plan once, from the module's and the data module's settings, and
hand the same plan to the module, the data module and the curriculum callbacks.

The LightningCLI (`tonics.train.cli`) calls it right after it builds those objects; a library user
who drives a `Trainer` by hand calls it before `trainer.fit(module, datamodule=dm)`. Nothing in a
run finds another object through the trainer: each reads the plan it was given.
"""

from __future__ import annotations

from collections.abc import Iterable

from tonics.sampling.plan import RunPlan
from tonics.train.callbacks import CurriculumCallback
from tonics.train.datamodule import TonicsDataModule
from tonics.train.module import AlignmentModule


def connect_run(
    module: AlignmentModule, datamodule: TonicsDataModule, callbacks: Iterable = ()
) -> RunPlan:
    """The run's plan (`tonics.sampling.plan.RunPlan`), handed to `module`, `datamodule` and every
    `CurriculumCallback` in `callbacks`; each stage's opening is first checked against the
    model's towers (a ConfigError naming `data.stages[i].unfreeze_*`)."""
    datamodule.check_against_model(module)
    plan = RunPlan.build(
        datamodule.curriculum, feature_cache=datamodule.cache.enabled, **module.step_opening()
    )
    datamodule.use_plan(plan, towers=module.model)
    module.use_plan(plan)
    for callback in callbacks:
        if isinstance(callback, CurriculumCallback):
            callback.use_plan(plan)
    return plan
