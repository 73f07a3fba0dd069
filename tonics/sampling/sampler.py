"""The curriculum batch sampler: yields this rank's lists of dataset indices, epoch by epoch.

Batches come from (seed, epoch, rank) and the curriculum's stage starts. With several ranks, rank
r draws only among its own pairs (i % world == r), so the ranks' batches are distinct without any
rank drawing the others' (a step costs each rank one draw, whatever the world size: at 64 ranks a
shared sequence would cost 64); every rank has the same number of batches, and no pair repeats
within an epoch (a stage that begins mid-epoch starts a fresh pass, so that its batches are drawn
from the whole dataset rather than from the epoch's leftovers). One process draws among all
pairs. `skip` drops the batches a resumed run already trained on.
Set `use_distributed_sampler=False` in the Trainer and call `set_epoch` (the training callback
does): Lightning only does that for plain samplers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from tonics.errors import ConfigError
from tonics.ontology.graph import Ontology
from tonics.sampling.curriculum import Curriculum
from tonics.sampling.factory import KINDS, KindInputs, make_kind
from tonics.sampling.kinds import BatchKind, Draw
from tonics.sampling.mined import TeacherSchedule
from tonics.sampling.openings import Openings


class CurriculumBatchSampler(Sampler[list[int]]):
    """Batches of `batch_size` indices into the ontology's pairs, drawn as the curriculum says."""

    def __init__(
        self,
        ontology: Ontology,
        curriculum: Curriculum,
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        openings: Openings | None = None,
        pair_images: np.ndarray | None = None,
        pair_captions: np.ndarray | None = None,
        one_pair_per_image: bool = False,
        teacher: np.ndarray | None = None,
        teacher_schedule: TeacherSchedule | None = None,
    ) -> None:
        """`openings`: the run's tower openings; batches of steps it serves from a feature cache
        are yielded as (index, False) pairs: "no image needed, the features are cached".
        `pair_images` / `pair_captions`: each pair's image number and normalised-caption number
        (hard-node variety counts; None: every pair distinct). `one_pair_per_image` caps every
        batch at one pair per image (needs `pair_images`). `teacher`: one embedding row per
        pair, for mined batches (`tonics.sampling.mined`); `teacher_schedule`: the rows by step
        of stages that mine with the current model (`mining.teacher: current`)."""
        num_pairs = len(ontology)
        if batch_size > num_pairs // world_size:
            raise ConfigError(
                "data.loader.batch_size",
                f"{batch_size} x {world_size} rank(s) is larger than the {num_pairs} training "
                "pairs; lower the batch size",
            )
        self.ontology = ontology
        self.curriculum = curriculum
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.openings = openings if openings is not None else Openings.plan(curriculum.stages)
        self.pair_images = pair_images
        self.pair_captions = pair_captions
        self.image_of = pair_images if one_pair_per_image else None
        self.teacher = teacher
        self.teacher_schedule = teacher_schedule
        self.epoch = 0
        self.skip = 0
        self.draws: dict[int, Draw] = {}  # step -> how this rank's batch was made (diagnostics)
        self._kinds: dict[tuple[int, str], BatchKind] = {}

    def __len__(self) -> int:
        return len(self.ontology) // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields."""
        self.epoch = epoch

    def start_at(self, step: int) -> None:
        """Position the next iteration at a global step: its epoch, minus the batches done."""
        self.epoch, self.skip = divmod(step, len(self))

    def _kind(self, stage_index: int, name: str) -> BatchKind:
        key = (stage_index, name)
        if key not in self._kinds:
            inputs = KindInputs(
                self.ontology,
                batch_size=self.batch_size,
                image_of=self.image_of,
                pair_images=self.pair_images,
                pair_captions=self.pair_captions,
                teacher=self.teacher,
            )
            stage = self.curriculum.stages[stage_index]
            self._kinds[key] = make_kind(name, inputs, stage, stage_index)
        return self._kinds[key]

    def _round(self, step: int, available: np.ndarray, rng: np.random.Generator) -> Draw:
        stage_index = self.curriculum.stage_index(step, len(self))
        mix = self.curriculum.shares(step, len(self))
        names = sorted(mix)
        shares = np.array([mix[n] for n in names], dtype=float)
        name = names[rng.choice(len(names), p=shares / shares.sum())]
        kind = self._kind(stage_index, name)
        stage = self.curriculum.stages[stage_index]
        if KINDS[name].needs_teacher and stage.mining.teacher == "current":
            if self.teacher_schedule is None:
                raise ConfigError(
                    f"data.stages[{stage_index}].mining.teacher",
                    "'current' needs the training loop's teacher refreshes (tonics fit)",
                )
            kind.teacher = self.teacher_schedule.rows_for(step)
        draw = kind.draw(available, self.batch_size, rng)
        draw.stage = stage_index
        return draw

    def _fresh_pass(self, available: np.ndarray) -> None:
        """Mark this rank's pairs available again (all pairs with one rank)."""
        if self.world_size == 1:
            available[:] = True
        else:
            available[:] = False
            available[self.rank :: self.world_size] = True

    def __iter__(self) -> Iterator[list[int]]:
        steps = len(self)
        streams = [self.seed, self.epoch] + ([self.rank] if self.world_size > 1 else [])
        rng = np.random.default_rng(streams)
        available = np.empty(len(self.ontology), dtype=bool)
        self._fresh_pass(available)
        for kind in self._kinds.values():
            kind.reset()
        skip, self.skip = self.skip, 0
        stage = None
        for k in range(steps):
            step = self.epoch * steps + k
            now = self.curriculum.stage_index(step, steps)
            if stage is not None and now != stage:  # a new stage starts a fresh pass over the pairs
                self._fresh_pass(available)
                for kind in self._kinds.values():
                    kind.reset()
            stage = now
            draw = self._round(step, available, rng)
            if k < skip:
                continue
            self.draws[step] = draw
            if self.openings.served_from_cache(step, draw.stage):
                yield [(i, False) for i in draw.indices.tolist()]
            else:
                yield draw.indices.tolist()
