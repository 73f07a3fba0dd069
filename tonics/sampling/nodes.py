"""Which ontology nodes may make a hard (same-object) batch.

A hard batch asks the model to tell apart pairs that share an object, so its node must be a real,
depicted object with enough variety under it:
- its WordNet lexical file names physical things (animals, artifacts, food, plants, people, body
  parts, natural objects, substances); places, groups, communication and the abstract top nodes
  (entity, artifact, organism...) are excluded;
- it is not on the reviewed stop-list (`data/hard_node_stoplist.tsv`: tags and wrong senses), and
  pairs that mention a stop-listed node are left out of every hard pool (so a tag's pairs do not
  reappear one level up, under its parent);
- its subtree holds at least `min_distinct` distinct images and distinct captions (default: the
  batch size), so a batch is not the same caption or image repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import networkx as nx
import numpy as np

from tonics.ontology.graph import Ontology
from tonics.ontology.wordnet import load_wordnet

OBJECT_LEXNAMES = (
    "noun.animal",
    "noun.artifact",
    "noun.food",
    "noun.plant",
    "noun.person",
    "noun.body",
    "noun.object",
    "noun.substance",
)
STOPLIST = Path(__file__).with_name("data") / "hard_node_stoplist.tsv"


@lru_cache(maxsize=1)
def stoplist() -> frozenset[str]:
    """The reviewed stop-list's synset names."""
    lines = STOPLIST.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.split("\t")[0] for line in lines if line.strip() and not line.startswith("#")
    )


@lru_cache(maxsize=65536)
def lexname(synset: str) -> str | None:
    """The WordNet lexical file of a synset name ('dog.n.01' -> 'noun.animal'), None if unknown."""
    try:
        return load_wordnet().synset(synset).lexname()  # load_wordnet is cached per process
    except Exception:  # noqa: BLE001 - a node that is not a WordNet synset (tests, labels)
        return None


@dataclass(frozen=True)
class HardNodeRules:
    """The rules of the module docstring; `object_nodes_only=False` turns them all off (then any
    node whose subtree holds a batch's worth of pairs qualifies)."""

    object_nodes_only: bool = True
    min_distinct: int | None = None  # None: the batch size
    lexnames: tuple[str, ...] = OBJECT_LEXNAMES


def distinct_counts(
    pairs: np.ndarray, image_of: np.ndarray, caption_of: np.ndarray
) -> tuple[int, int]:
    """(distinct images, distinct captions) among these pairs."""
    return len(np.unique(image_of[pairs])), len(np.unique(caption_of[pairs]))


def blocked_pairs(ontology: Ontology, rules: HardNodeRules) -> np.ndarray | None:
    """Boolean mask of the pairs that mention a stop-listed node (kept out of hard pools); None
    when the rules block nothing."""
    if not rules.object_nodes_only:
        return None
    blocked = np.zeros(len(ontology), dtype=bool)
    for node in stoplist() & set(ontology.graph.nodes):
        blocked[ontology.subtree_pairs(node)] = True
    return blocked


def hard_pool(ontology: Ontology, node: str, blocked: np.ndarray | None) -> np.ndarray:
    """The pairs a hard batch of `node` may use: its subtree's, less the blocked ones (the
    ontology's own array, not a copy, when none of them is blocked: at CC scale the pools of
    every node of a stage would otherwise be copied into each rank's memory)."""
    pairs = ontology.subtree_pairs(node)
    if blocked is None:
        return pairs
    inside = blocked[pairs]
    return pairs[~inside] if inside.any() else pairs


def eligible_nodes(
    ontology: Ontology,
    batch_size: int,
    rules: HardNodeRules = HardNodeRules(),
    image_of: np.ndarray | None = None,
    caption_of: np.ndarray | None = None,
) -> dict[str, tuple[int, int]]:
    """Nodes that may make a hard batch -> (distinct images, distinct captions) in their pool
    (exact, or lower bounds of at least the batch size for very large pools). Without
    `image_of`/`caption_of` every pair counts as its own image and caption."""
    n = len(ontology)
    image_of = np.arange(n) if image_of is None else image_of
    caption_of = np.arange(n) if caption_of is None else caption_of
    need = rules.min_distinct or batch_size
    excluded = stoplist() if rules.object_nodes_only else frozenset()
    blocked = blocked_pairs(ontology, rules)
    eligible = {}
    for node, data in ontology.graph.nodes(data=True):
        if data["subtree"] < need or node in excluded:
            continue
        lexical_file = data["lexname"] if "lexname" in data else lexname(node)  # stored at build
        if rules.object_nodes_only and lexical_file not in rules.lexnames:
            continue
        images, captions = _distinct_enough(
            hard_pool(ontology, node, blocked), image_of, caption_of, need
        )
        if not rules.object_nodes_only or (images >= need and captions >= need):
            eligible[node] = (images, captions)
    return eligible


def _distinct_enough(pool: np.ndarray, image_of, caption_of, need: int) -> tuple[int, int]:
    """Distinct (images, captions) of a pool: exact, except for a pool over 8x `need` pairs whose
    evenly spaced sample of 8x `need` already holds `need` of each; then the sample's counts
    (lower bounds that settle eligibility). At CC scale a node near the root holds millions of
    pairs, and exact counts of every node took most of the sampler's start-up."""
    cap = 8 * need
    if len(pool) > cap:
        sample = pool[:: len(pool) // cap]
        images, captions = distinct_counts(sample, image_of, caption_of)
        if images >= need and captions >= need:
            return images, captions
    return distinct_counts(pool, image_of, caption_of)


def finest(ontology: Ontology, eligible) -> list[str]:
    """The eligible nodes with no eligible node below them: the objects themselves on a large
    corpus, the smallest object categories that still fill a batch on a small one."""
    below = set()
    for node in eligible:
        below.update(nx.ancestors(ontology.graph, node))
    return sorted(n for n in eligible if n not in below)
