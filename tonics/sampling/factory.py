"""Batch kinds by name, as stages' mixes name them."""

from __future__ import annotations

import numpy as np

from tonics.ontology.graph import Ontology
from tonics.sampling.diverse import DiverseKind
from tonics.sampling.kinds import BatchKind, OntologyKind, RandomKind

KINDS = ("random", "ontology", "diverse")


def make_kind(
    name: str, ontology: Ontology, batch_size: int, image_of: np.ndarray | None = None, **options
) -> BatchKind:
    """Build a kind by name; an unknown name is an error listing the known ones."""
    if name == "random":
        return RandomKind(len(ontology), image_of)
    if name == "ontology":
        return OntologyKind(ontology, batch_size=batch_size, image_of=image_of, **options)
    if name == "diverse":
        return DiverseKind(ontology, image_of)
    raise ValueError(f"unknown sampler '{name}'; choose from {', '.join(KINDS)}")
