"""Batch samplers and curricula: which pairs go together in a minibatch, stage by stage.

Flow position: data -> ontology -> **sampler** -> model -> eval.
"""

from tonics.sampling.curriculum import Curriculum, Stage
from tonics.sampling.kinds import BatchKind, DiverseKind, OntologyKind, RandomKind, make_kind
from tonics.sampling.sampler import CurriculumBatchSampler

__all__ = [
    "BatchKind",
    "Curriculum",
    "CurriculumBatchSampler",
    "DiverseKind",
    "OntologyKind",
    "RandomKind",
    "Stage",
    "make_kind",
]
