"""The ontology: a networkx DiGraph of WordNet hypernym edges (parent -> child) over every synset
that a pair mentions, up to `entity.n.01`, with each pair indexed to its object nodes.

Node attributes: `lemmas` (names), `depth` (shortest distance from the root), `own` (pairs that
mention the node itself) and `subtree` (distinct pairs that mention it or any descendant).
The ontology serialises to one `.npz` file and reloads without WordNet.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np
from tonics.ontology.pair_objects import PairObjects

from tonics.mapped_arrays import mapped_npz

ObjectSource = Literal["caption", "image", "instances", "intersection"]
OBJECT_SOURCES = (
    "caption",
    "image",
    "instances",
    "intersection",
)  # instances: image, by its COCO file's name
FORMAT_VERSION = 1
PAIR_ID_SEPARATOR = "\x1e"  # ASCII record separator: never in a pair id


@dataclass
class Ontology:
    """Object graph plus, for each pair (in dataset order), the synsets it contains."""

    graph: nx.DiGraph
    pair_objects: PairObjects  # built from a list of tuples when given one
    pair_ids: Sequence[str]
    settings: dict = field(default_factory=dict)
    _subtree_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    loaded_from: Path | None = field(default=None, repr=False, compare=False)  # its file, if any

    def __post_init__(self) -> None:
        if not isinstance(self.pair_objects, PairObjects):
            self.pair_objects = PairObjects.from_tuples(self.pair_objects)

    @property
    def root(self) -> str:
        """The root node (entity.n.01 for WordNet nouns)."""
        return next(n for n, d in self.graph.in_degree() if d == 0)

    def __len__(self) -> int:
        return len(self.pair_objects)

    def subtree_pairs(self, node: str) -> np.ndarray:
        """Sorted indices of the pairs that mention `node` or any of its descendants."""
        cached = self._subtree_cache.get(node)
        if cached is None:
            members = {node} | nx.descendants(self.graph, node)
            cached = np.array(
                [i for i, objs in enumerate(self.pair_objects) if members.intersection(objs)],
                dtype=np.int64,
            )
            self._subtree_cache[node] = cached
        return cached

    def precompute_subtrees(self, chunk_pairs: int = 250_000) -> None:
        """Fill the subtree index for every node in one vectorised pass (fast sampling): each
        pair is listed under every node that is one of its objects or their ancestor. Pairs are
        expanded `chunk_pairs` at a time into one preallocated array, so the memory it takes is
        the index itself plus one chunk's work, whatever the corpus size."""
        nodes = sorted(self.graph.nodes)
        number = {n: i for i, n in enumerate(nodes)}
        closure = [sorted(number[a] for a in nx.ancestors(self.graph, n) | {n}) for n in nodes]
        lengths = np.array([len(c) for c in closure], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        closure_flat = np.array([a for c in closure for a in c], dtype=np.int64)
        objects = self.pair_objects
        flat_all = objects.renumbered(nodes)
        num_pairs = len(objects)
        dtype = np.int32 if num_pairs < 2**31 else np.int64
        chunks = []  # per chunk: (node of each entry, pair of each entry), sorted by node then pair
        counts = np.zeros(len(nodes), dtype=np.int64)
        for first in range(0, num_pairs, chunk_pairs):
            last = min(num_pairs, first + chunk_pairs)
            bounds = objects.indptr[first : last + 1]
            node_of, pair_of = _expand(
                flat_all[int(bounds[0]) : int(bounds[-1])],
                np.diff(bounds),
                first,
                lengths,
                starts,
                closure_flat,
            )
            counts += np.bincount(node_of, minlength=len(nodes))
            chunks.append((node_of.astype(np.int32), pair_of.astype(dtype)))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        pairs = np.empty(int(bounds[-1]), dtype=dtype)
        filled = bounds[:-1].copy()
        for node_of, pair_of in chunks:  # chunks come in pair order: each node's list stays sorted
            chunk_counts = np.bincount(node_of, minlength=len(nodes))
            first_of_node = np.concatenate([[0], np.cumsum(chunk_counts)[:-1]])
            rank = np.arange(len(node_of)) - first_of_node[node_of]
            pairs[filled[node_of] + rank] = pair_of
            filled += chunk_counts
        self._subtree_cache = {n: pairs[bounds[i] : bounds[i + 1]] for i, n in enumerate(nodes)}

    def parent(self, node: str) -> str | None:
        """The hypernym nearest the root (smallest depth) or None at the root."""
        parents = list(self.graph.predecessors(node))
        return min(parents, key=lambda p: (self.graph.nodes[p]["depth"], p)) if parents else None

    def coverage(self) -> float:
        """Share of pairs with at least one object."""
        return int(np.count_nonzero(self.pair_objects.counts())) / max(1, len(self.pair_objects))

    def stats(self, top: int = 5) -> dict:
        """Coverage, node counts, depth histogram and the largest nodes at each depth."""
        depths = Counter(d["depth"] for _, d in self.graph.nodes(data=True))
        by_depth: dict[int, list] = {}
        for node, data in self.graph.nodes(data=True):
            by_depth.setdefault(data["depth"], []).append((data["subtree"], node))
        return {
            "pairs": len(self),
            "pairs_with_objects": int(np.count_nonzero(self.pair_objects.counts())),
            "coverage": round(self.coverage(), 4),
            "nodes": self.graph.number_of_nodes(),
            "object_nodes": sum(1 for _, d in self.graph.nodes(data=True) if d["own"] > 0),
            "depth_histogram": {int(k): v for k, v in sorted(depths.items())},
            "top_nodes_per_depth": {
                int(depth): [f"{n} ({c})" for c, n in sorted(items, reverse=True)[:top]]
                for depth, items in sorted(by_depth.items())
            },
            "settings": self.settings,
        }

    def keep(self, path: str | Path) -> Path:
        """This ontology at `path` (a run directory's copy): a hard link to the file it was loaded
        from, which holds the same content (no bytes written: at CC12M that file is 1.2 GB and
        writing it again took 10 s of every start), a copy where no link can be made, else a
        fresh `save`."""
        path, source = Path(path), self.loaded_from
        if source is None or not source.is_file():
            return self.save(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp.npz")
        try:
            os.link(source, tmp)
        except OSError:  # another filesystem, or links not allowed there
            shutil.copyfile(source, tmp)
        tmp.replace(path)
        return path

    def save(self, path: str | Path) -> Path:
        """Write graph, pair index and settings to one `.npz` file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nodes = sorted(self.graph.nodes)
        flat = self.pair_objects.renumbered(nodes)
        indptr = self.pair_objects.indptr
        meta = {
            "version": FORMAT_VERSION,
            "nodes": [[n, self.graph.nodes[n]] for n in nodes],
            "edges": sorted(self.graph.edges),
            "settings": self.settings,
        }
        if set(self._subtree_cache) != set(nodes):
            self.precompute_subtrees()
        subtrees = [self._subtree_cache[n] for n in nodes]
        # a name of its own: nodes sharing the cache may write the same ontology at once
        tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp.npz")
        np.savez(  # uncompressed: start-up reads it on every rank, at CC scale in seconds
            tmp,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            pair_nodes=np.asarray(flat, dtype=np.int32),
            pair_indptr=np.asarray(indptr, dtype=np.int64),
            subtree_pairs=np.concatenate(subtrees) if subtrees else np.zeros(0, np.int32),
            subtree_indptr=np.cumsum([0] + [len(p) for p in subtrees]).astype(np.int64),
            # apart from the JSON, so that a caller holding the ids already need not parse them
            pair_ids=np.frombuffer(PAIR_ID_SEPARATOR.join(self.pair_ids).encode(), dtype=np.uint8),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, pair_ids: Sequence[str] | None = None) -> Ontology:
        """Read an ontology written by `save` (no WordNet needed). Its per-pair arrays are memory
        maps, shared by every process that loads the same file. `pair_ids`: the pairs' ids when
        the caller already holds them (a cache keyed by them), so they are not read again."""
        data = mapped_npz(path)
        meta = json.loads(data["meta"].tobytes().decode())
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: ontology format {meta.get('version')}, expected {FORMAT_VERSION}"
            )
        if pair_ids is None:
            if "pair_ids" in meta:
                pair_ids = meta["pair_ids"]
            else:
                stored = data["pair_ids"].tobytes().decode()
                pair_ids = (
                    stored.split(PAIR_ID_SEPARATOR)
                    if stored or len(data["pair_indptr"]) > 1
                    else []
                )
        graph = nx.DiGraph()
        graph.add_nodes_from((name, attrs) for name, attrs in meta["nodes"])
        graph.add_edges_from(tuple(e) for e in meta["edges"])
        names = [n for n, _ in meta["nodes"]]
        objects = PairObjects(names, data["pair_nodes"], data["pair_indptr"])
        ontology = cls(graph, objects, pair_ids, meta["settings"])
        ontology.loaded_from = Path(path)
        if "subtree_pairs" in data:
            pairs, bounds = data["subtree_pairs"], data["subtree_indptr"].tolist()
            ontology._subtree_cache = {
                n: pairs[bounds[i] : bounds[i + 1]] for i, n in enumerate(names)
            }
        return ontology


def _expand(flat, counts, first: int, lengths, starts, closure_flat):
    """(node, pair) for every ancestor-or-self of every object of these pairs (`flat`: their
    objects' node numbers end to end, `counts`: how many each pair has; pairs numbered from
    `first`), de-duplicated and sorted by node, then pair."""
    flat = np.asarray(flat, dtype=np.int64)
    per_object = lengths[flat]
    pair_of = np.repeat(np.repeat(np.arange(first, first + len(counts)), counts), per_object)
    within = np.arange(int(per_object.sum())) - np.repeat(
        np.cumsum(per_object) - per_object, per_object
    )
    node_of = closure_flat[np.repeat(starts[flat], per_object) + within]
    span = first + len(counts) + 1
    keys = np.unique(node_of * span + pair_of)
    return np.divmod(keys, span)
