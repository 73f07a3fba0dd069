"""Building an ontology from training pairs: each caption's objects extracted (and combined with
the image's annotated objects, by `source`), their WordNet hypernym closure as a graph, pair
counts per node, and the nodes that hold no pair pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict

import networkx as nx
import numpy as np
from tonics.ontology.coco_categories import category_synset
from tonics.ontology.graph import OBJECT_SOURCES, ObjectSource, Ontology
from tonics.ontology.pair_objects import PairObjects
from tqdm.auto import tqdm


def hypernym_closure(wn, synset_names: Iterable[str]) -> nx.DiGraph:
    """The WordNet hypernym graph above these synsets (instance hypernyms included), each node
    with its lemmas, depth and lexical file, and pair counts set to 0."""
    graph = nx.DiGraph()
    stack = [wn.synset(n) for n in synset_names]
    seen = set()
    while stack:
        synset = stack.pop()
        if synset.name() in seen:
            continue
        seen.add(synset.name())
        graph.add_node(
            synset.name(),
            lemmas=synset.lemma_names()[:5],
            depth=synset.min_depth(),
            lexname=synset.lexname(),
            own=0,
            subtree=0,
        )
        for parent in synset.hypernyms() + synset.instance_hypernyms():
            graph.add_edge(parent.name(), synset.name())
            stack.append(parent)
    for name in graph:  # parents reached only as edges still need attributes
        if "depth" not in graph.nodes[name]:
            synset = wn.synset(name)
            graph.nodes[name].update(
                lemmas=synset.lemma_names()[:5],
                depth=synset.min_depth(),
                lexname=synset.lexname(),
                own=0,
                subtree=0,
            )
    return graph


def combine_objects(
    caption: Sequence[str], image: Sequence[str], source: ObjectSource, is_ancestor
) -> tuple[str, ...]:
    """The pair's objects: caption's, image's, or those named in the caption and seen in the image.

    In `intersection` mode a caption synset counts when it equals, or is a hyponym of, an image
    synset ("puppy" with a COCO "dog" box), and an image synset counts when a caption synset is its
    hypernym ("animal" in the caption, a "dog" box): the more specific of the two is kept.
    """
    if source == "caption":
        return tuple(caption)
    if source in ("image", "instances"):
        return tuple(image)
    kept: dict[str, None] = {}
    for c in caption:
        for i in image:
            if c == i or is_ancestor(i, c):
                kept.setdefault(c, None)
            elif is_ancestor(c, i):
                kept.setdefault(i, None)
    return tuple(kept)


def caption_objects_of(
    captions: Sequence[object], extractor, chunk: int = 100_000, memo_size: int = 1_000_000
) -> PairObjects:
    """Each caption's object synsets, streamed: captions are read `chunk` at a time (a slice of a
    memory-mapped caption column stays on disk until then) and packed into arrays as they come,
    so the memory this takes beyond its output is one chunk and a bounded memo of distinct captions
    already extracted (cleared when it holds `memo_size`), whatever the corpus size."""
    number: dict[str, int] = {}
    memo: dict[object, list[int]] = {}
    nodes: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    progress = tqdm(
        total=len(captions),
        desc="ontology: objects in captions",
        unit="caption",
        mininterval=2.0,
        disable=len(captions) < 5000,
    )
    for start in range(0, len(captions), chunk):
        block_nodes: list[int] = []
        block_counts: list[int] = []
        for caption in captions[start : start + chunk]:
            key = caption if isinstance(caption, (str, bytes)) else None
            found = memo.get(key)
            if found is None:
                if len(memo) >= memo_size:
                    memo.clear()
                found = [number.setdefault(s, len(number)) for s in extractor.extract(caption)]
                memo[key] = found
            block_nodes.extend(found)
            block_counts.append(len(found))
        nodes.append(np.array(block_nodes, dtype=np.int32))
        counts.append(np.array(block_counts, dtype=np.int64))
        progress.update(len(block_counts))
    progress.close()
    flat = np.concatenate(nodes) if nodes else np.zeros(0, dtype=np.int32)
    per_pair = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    return PairObjects(list(number), flat, np.concatenate([[0], np.cumsum(per_pair)]))


def _count_and_prune(ontology: Ontology) -> None:
    """Store each node's own and subtree pair counts; drop nodes no pair reaches."""
    graph = ontology.graph
    ontology.precompute_subtrees()
    own = ontology.pair_objects.node_counts()
    for node in graph:
        graph.nodes[node]["own"] = own.get(node, 0)
        graph.nodes[node]["subtree"] = int(len(ontology.subtree_pairs(node)))
    unused = [n for n in graph if graph.nodes[n]["subtree"] == 0]
    graph.remove_nodes_from(unused)  # only intersection mode leaves nodes nobody kept
    for node in unused:
        ontology._subtree_cache.pop(node, None)


def build_ontology(
    captions: Sequence[object],
    pair_ids: Sequence[str],
    *,
    image_objects: Sequence[Sequence[str]] | None = None,
    source: ObjectSource = "caption",
    extractor=None,
    category_table: dict[str, str] | None = None,
) -> Ontology:
    """Extract objects for each pair and build the graph. `image_objects` are category names."""
    from tonics.ontology.extract import NounExtractor

    if source not in OBJECT_SOURCES:
        raise ValueError(f"object source must be one of {OBJECT_SOURCES}, got '{source}'")
    if source != "caption" and image_objects is None:
        raise ValueError(
            f"object source '{source}' needs image object labels; this dataset has none"
        )
    extractor = extractor or NounExtractor()
    wn = extractor.wn
    caption_objects = caption_objects_of(captions, extractor)
    settings = {"source": source, "extraction": asdict(extractor.settings)}
    if source == "caption":  # the common case, and the one at web scale: arrays all the way
        graph = hypernym_closure(wn, sorted(caption_objects.names))
        ontology = Ontology(graph, caption_objects, pair_ids, settings)
        _count_and_prune(ontology)
        return ontology
    image_synsets = [
        [category_synset(name, category_table) for name in labels] for labels in image_objects
    ]
    graph = hypernym_closure(
        wn, {*caption_objects.names, *(s for objs in image_synsets for s in objs)}
    )

    def is_ancestor(a: str, b: str) -> bool:
        return a in graph and b in graph and nx.has_path(graph, a, b)

    pair_objects = [
        combine_objects(caption, image, source, is_ancestor)
        for caption, image in zip(caption_objects, image_synsets, strict=True)
    ]
    del caption_objects, image_synsets  # the pairs' objects are all kept from here
    ontology = Ontology(graph, pair_objects, list(pair_ids), settings)
    _count_and_prune(ontology)
    return ontology
