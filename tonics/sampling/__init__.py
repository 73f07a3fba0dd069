"""Batch samplers and curricula: which pairs go together in a minibatch, stage by stage.

Import layer (a module imports only layers to its left): model -> ontology -> data -> caches/eval
-> **sampling/analysis** -> train -> export -> commands -> cli.
"""

from tonics.sampling.curriculum import Curriculum, Stage
from tonics.sampling.diverse import DiverseKind
from tonics.sampling.factory import make_kind
from tonics.sampling.kinds import BatchKind, OntologyKind, RandomKind
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
