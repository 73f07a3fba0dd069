"""The run plan: one object, built from the config once before training, that the Lightning
module, the data module and the curriculum callback all read instead of reaching into each other.

It holds the curriculum (stages, and where the run is in them), the tower openings by step and
stage (from the stages' `opening` and the model's `opening.at_step`), which feature path
serves each step (`Openings.path_at`: pooled cache, prefix cache or live), the batch sampler and
the teacher schedule of mined batches once the data module has built them, and `RunData`, what
the module asks of the data (cache sources, evaluation splits and their annotations).

`tonics.train.wiring.connect_run` builds it and hands it out; the model card
(`tonics.export`) describes a run's openings from the same `Openings` built from its config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tonics.sampling.curriculum import Curriculum
from tonics.sampling.openings import Openings


@dataclass(frozen=True)
class RunData:
    """What the module asks of the run's data, supplied by the data module.

    cache_source: a split's pairs and reading settings (`tonics.cache.base.CacheSource`), for the
        feature and prefix caches; prefix_dtype / feature_dtype: how those caches store values;
    eval_feature_cache: whether frozen evaluation reads a pooled-feature cache of its split;
    split_evaluated: the data split an evaluation loop ('val', 'test') serves now;
    annotations: a split's caption objects, novelty and unseen combinations (the within-object,
        caption-novel and combination metrics), or None when the data cannot annotate.
    """

    cache_source: Callable[[str], object]
    prefix_dtype: str = "float16"
    feature_dtype: str = "float32"
    eval_feature_cache: bool = False
    split_evaluated: Callable[[str], str] = str
    annotations: Callable[[str], tuple] | None = None


class RunPlan:
    """The run's curriculum, tower openings, feature paths, sampler and teacher schedule."""

    def __init__(self, curriculum: Curriculum, openings: Openings) -> None:
        """`curriculum`: the stages and the run's place in them (saved in checkpoints);
        `openings`: when each tower opens and which feature path serves each step."""
        self.curriculum = curriculum
        self.openings = openings
        self.sampler = None  # the curriculum batch sampler, once the data module has built it
        self.data: RunData | None = None

    @classmethod
    def build(
        cls,
        curriculum: Curriculum,
        *,
        at_step: int | None = None,
        top_k: int | None = None,
        tokens: bool = False,
        feature_cache: bool = False,
    ) -> RunPlan:
        """The plan of `curriculum` with the model's step opening (`at_step`, `top_k`), whether
        steps need the vision token map (`tokens`: a captioning head) and whether cached feature
        paths may serve steps (`feature_cache`)."""
        openings = Openings.plan(
            curriculum.stages,
            at_step=at_step,
            top_k=top_k,
            feature_cache=feature_cache,
            tokens=tokens,
        )
        return cls(curriculum, openings)

    @property
    def teacher_schedule(self):
        """The teacher rows by step of mined batches ranked by the current model (the sampler's
        `tonics.sampling.mined.TeacherSchedule`), or None when no stage mines that way."""
        return self.sampler.teacher_schedule if self.sampler is not None else None

    def steps_per_epoch(self) -> int | None:
        """Batches in one pass of the sampler (None before the data module has built it)."""
        return len(self.sampler) if self.sampler is not None else None

    def stage_at(self, step: int) -> int:
        """The curriculum stage of `step` (0 before the sampler exists)."""
        if self.sampler is None:
            return 0
        return self.curriculum.stage_index(step, len(self.sampler))
