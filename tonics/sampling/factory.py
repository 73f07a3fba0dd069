"""The table of batch kinds, as stages' mixes name them: how each is built from the training
pairs and its stage's settings, and whether it needs teacher rows (mined batches rank pairs by
embeddings of the training pairs). The curriculum's validation, the sampler and the data module
all read this one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tonics.errors import ConfigError
from tonics.ontology.graph import Ontology
from tonics.sampling.diverse import DiverseKind
from tonics.sampling.kinds import BatchKind, OntologyKind, RandomKind
from tonics.sampling.mined import MinedKind
from tonics.sampling.nodes import HardNodeRules

Stage = Any  # a `tonics.sampling.curriculum.Stage` (which reads this table: no import back)


@dataclass(frozen=True)
class KindInputs:
    """What a batch kind is built from: the training pairs' ontology, the batch size, each
    pair's image code when a batch may hold one pair per image only (`image_of`), each pair's image
    and caption codes (hard-node variety), and the teacher rows of mined batches (None: none)."""

    ontology: Ontology
    batch_size: int
    image_of: np.ndarray | None = None
    pair_images: np.ndarray | None = None
    pair_captions: np.ndarray | None = None
    teacher: np.ndarray | None = None


def _random(inputs: KindInputs, stage: Stage, index: int) -> BatchKind:
    return RandomKind(len(inputs.ontology), inputs.image_of)


def _diverse(inputs: KindInputs, stage: Stage, index: int) -> BatchKind:
    return DiverseKind(inputs.ontology, inputs.image_of)


def _ontology(inputs: KindInputs, stage: Stage, index: int) -> BatchKind:
    return OntologyKind(
        inputs.ontology,
        batch_size=inputs.batch_size,
        image_of=inputs.image_of,
        granularity=stage.nodes.granularity,
        min_depth=stage.nodes.min_depth,
        max_depth=stage.nodes.max_depth,
        alpha=stage.nodes.alpha,
        rules=HardNodeRules(
            object_nodes_only=stage.nodes.object_nodes_only, min_distinct=stage.nodes.min_distinct
        ),
        siblings=stage.nodes.siblings,
        pair_images=inputs.pair_images,
        pair_captions=inputs.pair_captions,
    )


def _mined(inputs: KindInputs, stage: Stage, index: int) -> BatchKind:
    if inputs.teacher is None:
        raise ConfigError(
            f"data.stages[{index}].mix",
            "'mined' batches need teacher embeddings of the training pairs (the data module "
            "computes them from the frozen towers when the run is connected to a model)",
        )
    objects = [objs[0] if objs else None for objs in inputs.ontology.pair_objects]
    return MinedKind(
        inputs.teacher,
        skip=stage.mining.skip,
        within=stage.mining.within,
        main_objects=objects,
        image_of=inputs.image_of,
    )


@dataclass(frozen=True)
class KindEntry:
    """One batch kind: its builder and whether it ranks pairs by teacher rows."""

    build: Callable[[KindInputs, Stage, int], BatchKind]
    needs_teacher: bool = False


KINDS: dict[str, KindEntry] = {
    "random": KindEntry(build=_random),
    "ontology": KindEntry(build=_ontology),
    "diverse": KindEntry(build=_diverse),
    "mined": KindEntry(build=_mined, needs_teacher=True),
}


def make_kind(name: str, inputs: KindInputs, stage: Stage, index: int) -> BatchKind:
    """The kind `name` of stage `index` (`stage`); an unknown name is an error naming the known."""
    if name not in KINDS:
        raise ValueError(f"unknown sampler '{name}'; choose from {', '.join(KINDS)}")
    return KINDS[name].build(inputs, stage, index)


def ranks_by_teacher(stage: Stage) -> bool:
    """Whether a stage's mix holds a kind that ranks pairs by teacher rows."""
    return any(KINDS[name].needs_teacher for name in stage.mix if name in KINDS)
