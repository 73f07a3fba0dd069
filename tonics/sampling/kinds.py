"""The three kinds of minibatch. Each draws `size` pair indices from the pairs still available in
this epoch (a boolean mask it updates), so no pair repeats within an epoch whatever the mix.

- `random`: ordinary shuffled batches (the baseline);
- `ontology`: one node of the ontology is chosen with probability proportional to its subtree pair
  count ** alpha (counting the pairs still available this epoch), among the nodes of the stage's
  granularity that can still fill a batch; the batch is drawn from the node's subtree; once no
  such node is left, a node's parent (and so on up) is used instead;
- `diverse`: pairs whose main objects all differ (object-level negatives: a dog among pizzas).

Every kind can be capped at one pair per image (`image_of`: the image number of each pair), so a
batch never holds two captions of one image (true matches the loss would otherwise have to know).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tonics.ontology.graph import Ontology
from tonics.sampling.nodes import HardNodeRules, blocked_pairs, eligible_nodes, finest, hard_pool
from tonics.sampling.ranks import HUGE, take_by_rejection, true_at_ranks

ANY_FILLABLE_NODE = HardNodeRules(object_nodes_only=False)


@dataclass
class Draw:
    """A batch and what made it: the node (for ontology batches) and its depth."""

    indices: np.ndarray
    kind: str
    node: str | None = None
    depth: int | None = None
    stage: int = 0


def _take(
    pool: np.ndarray | None,
    available: np.ndarray,
    size: int,
    rng: np.random.Generator,
    image_of: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """A uniform draw of `size` free pairs of `pool` (None: of all pairs), marked unavailable.
    `mask`: `available[pool]` when the caller has it already. Ranks are drawn among the free
    count and only the chosen ranks are looked up (`tonics.sampling.ranks`): the same pairs as
    drawing from the list of free pairs, without writing that list."""
    if mask is None:
        if image_of is None and len(available if pool is None else pool) > HUGE:
            chosen = take_by_rejection(pool, available, size, rng)
            if chosen is not None:
                return chosen
        mask = available if pool is None else available.take(pool)
    free_count = int(np.count_nonzero(mask))

    def members(ranks: np.ndarray) -> np.ndarray:
        positions = true_at_ranks(mask, ranks)
        return positions if pool is None else pool[positions]

    if image_of is not None:
        return _take_distinct_images(free_count, members, available, size, rng, image_of)
    ranks = (
        rng.choice(free_count, size=size, replace=False)
        if free_count > size
        else rng.permutation(free_count)
    )
    chosen = members(ranks)
    available[chosen] = False
    return chosen


def _take_distinct_images(free_count, members, available, size, rng, image_of) -> np.ndarray:
    """Up to `size` free pairs with pairwise different images (fewer if the images run out);
    `members(ranks)`: the free pairs at these ranks."""
    candidates = members(rng.choice(free_count, size=min(free_count, 2 * size), replace=False))
    _, first = np.unique(image_of[candidates], return_index=True)
    if len(first) < size and len(candidates) < free_count:  # many captions per image: look wider
        candidates = members(rng.permutation(free_count))
        _, first = np.unique(image_of[candidates], return_index=True)
    chosen = candidates[np.sort(first)][:size]
    available[chosen] = False
    return chosen


def stage_nodes(
    ontology: Ontology,
    batch_size: int,
    *,
    granularity: str = "fine",
    min_depth: int = 0,
    max_depth: int = 100,
    rules: HardNodeRules = ANY_FILLABLE_NODE,
    pair_images=None,
    pair_captions=None,
) -> list[str]:
    """The nodes an ontology stage draws hard batches from: with `rules.object_nodes_only`, the
    finest (or depth-range) nodes among those `tonics.sampling.nodes` allows; otherwise the
    deepest nodes that can fill a batch (or every node in the depth range)."""
    graph = ontology.graph
    if granularity not in ("fine", "depth"):
        raise ValueError(f"granularity must be 'fine' or 'depth', got '{granularity}'")
    if rules.object_nodes_only:
        allowed = eligible_nodes(ontology, batch_size, rules, pair_images, pair_captions)
        nodes = (
            finest(ontology, allowed)
            if granularity == "fine"
            else [n for n in allowed if min_depth <= graph.nodes[n]["depth"] <= max_depth]
        )
    elif granularity == "fine":
        nodes = finest_fillable_nodes(ontology, batch_size)
    else:
        nodes = [n for n, d in graph.nodes(data=True) if min_depth <= d["depth"] <= max_depth]
    if not nodes:
        raise ValueError(
            f"no ontology node can make a hard batch at granularity '{granularity}' (depth "
            f"{min_depth}..{max_depth}, object nodes only: {rules.object_nodes_only}); widen the "
            "depths, lower min_distinct or the batch size"
        )
    return sorted(nodes)


def finest_fillable_nodes(ontology: Ontology, batch_size: int) -> list[str]:
    """The deepest nodes that can still fill a batch: subtree >= batch_size, no child that can.

    On a large corpus these are the named objects themselves (dog, pizza); on a small one, the
    smallest categories that hold a batch's worth of pairs (bird, fruit). Falls back to the named
    objects when no node can fill a batch.
    """
    graph = ontology.graph
    fillable = {n for n, d in graph.nodes(data=True) if d["subtree"] >= batch_size}
    nodes = [n for n in fillable if not any(c in fillable for c in graph.successors(n))]
    return nodes or [n for n, d in graph.nodes(data=True) if d["own"] > 0]


class BatchKind:
    """Interface: draw one batch from the available pairs."""

    name = "base"

    def draw(self, available: np.ndarray, size: int, rng: np.random.Generator) -> Draw:
        """`size` distinct available indices (marked unavailable), or fewer if too few remain."""
        raise NotImplementedError

    def _plan_siblings(self, batch_size, rules, blocked, granularity, min_depth, max_depth):
        """A sibling needs only its share of a batch: its candidates are the nodes that hold
        batch/k pairs (and distinct images/captions), usually finer than the batch's nodes."""
        share = max(1, batch_size // self.siblings)
        distinct = rules.min_distinct
        share_rules = replace(
            rules, min_distinct=None if distinct is None else max(1, distinct // self.siblings)
        )
        self.sibling_nodes = stage_nodes(
            self.ontology,
            share,
            granularity=granularity,
            min_depth=min_depth,
            max_depth=max_depth,
            rules=share_rules,
            pair_images=self._pair_images,
            pair_captions=self._pair_captions,
        )
        self.sibling_pools = [hard_pool(self.ontology, n, blocked) for n in self.sibling_nodes]
        self.sibling_groups = self._sibling_groups()

    def reset(self) -> None:
        """Start of an epoch: drop any per-epoch bookkeeping."""


class RandomKind(BatchKind):
    """Uniformly random batches."""

    name = "random"

    def __init__(self, num_pairs: int, image_of: np.ndarray | None = None) -> None:
        self.num_pairs = num_pairs
        self.image_of = image_of

    def draw(self, available, size, rng) -> Draw:
        """A uniform draw among the available pairs."""
        return Draw(_take(None, available, size, rng, self.image_of), self.name)


class OntologyKind(BatchKind):
    """Batches from one ontology node's subtree: "many images of the same kind of object"."""

    name = "ontology"

    def __init__(
        self,
        ontology: Ontology,
        *,
        granularity: str = "fine",
        min_depth: int = 0,
        max_depth: int = 100,
        alpha: float = 1.0,
        batch_size: int = 32,
        image_of: np.ndarray | None = None,
        rules: HardNodeRules = ANY_FILLABLE_NODE,
        siblings: int = 1,
        pair_images: np.ndarray | None = None,
        pair_captions: np.ndarray | None = None,
    ) -> None:
        self.ontology = ontology
        self.image_of = image_of
        self._pair_images, self._pair_captions = pair_images, pair_captions
        self.random = RandomKind(len(ontology), image_of)
        self.nodes = stage_nodes(
            ontology,
            batch_size,
            granularity=granularity,
            min_depth=min_depth,
            max_depth=max_depth,
            rules=rules,
            pair_images=pair_images,
            pair_captions=pair_captions,
        )
        blocked = blocked_pairs(ontology, rules)
        self.pools = [hard_pool(ontology, node, blocked) for node in self.nodes]
        self.siblings = siblings
        self.sibling_nodes, self.sibling_pools, self.sibling_groups = [], [], []
        if siblings > 1:
            self._plan_siblings(batch_size, rules, blocked, granularity, min_depth, max_depth)
        self.counts = np.array([len(pool) for pool in self.pools], dtype=float)
        self.alpha = alpha
        self.reset()

    def reset(self) -> None:
        """Forget what this epoch consumed (the sampler calls it at each epoch start)."""
        self.remaining = self.counts.copy()  # upper bounds of each node's available pairs

    def _choose(self, available, size, rng) -> tuple:
        """(node, pool, `available[pool]`, batch or None): a node with probability ~ remaining
        pairs ** alpha among those that can fill a batch; for a huge pool the batch is drawn here
        (by rejection, no mask), otherwise by the caller from the mask. All None: no node.

        `remaining` only ever overestimates (other kinds in a mix also consume pairs), so a chosen
        node's true count is checked and its estimate corrected; a few retries, then give up.
        """
        for _ in range(8):
            fillable = self.remaining >= size
            weights = np.zeros_like(self.remaining)
            weights[fillable] = (
                self.remaining[fillable] ** self.alpha
            )  # alpha 0: uniform over fillable
            if not fillable.any():
                return None, None, None, None
            j = int(rng.choice(len(self.nodes), p=weights / weights.sum()))
            pool = self.pools[j]
            if len(pool) > HUGE and self.image_of is None:  # no count: `remaining` stays a bound
                chosen = take_by_rejection(pool, available, size, rng)
                if chosen is not None:
                    self.remaining[j] -= size
                    return self.nodes[j], pool, None, chosen
            mask = available.take(pool)  # take: no cast of an int32 pool, unlike indexing
            free = int(np.count_nonzero(mask))
            self.remaining[j] = free
            if free >= size:
                self.remaining[j] = free - size
                return self.nodes[j], pool, mask, None
        return None, None, None, None

    def _sibling_groups(self) -> list[tuple[str, list[int]]]:
        """(parent, indices into self.sibling_nodes of its children among them), for parents
        with at least `siblings` such children."""
        children: dict[str, list[int]] = {}
        for j, node in enumerate(self.sibling_nodes):
            parent = self.ontology.parent(node)
            if parent is not None:
                children.setdefault(parent, []).append(j)
        return [(p, js) for p, js in sorted(children.items()) if len(js) >= self.siblings]

    def _draw_siblings(self, available, size, rng) -> Draw | None:
        """size/k pairs from each of k sibling nodes (children of one parent), or None."""
        share = size // self.siblings
        order = rng.permutation(len(self.sibling_groups))
        for g in order:
            parent, members = self.sibling_groups[g]
            free = {
                j: int(np.count_nonzero(available.take(self.sibling_pools[j]))) for j in members
            }
            ready = [j for j in members if free[j] >= share]
            if len(ready) < self.siblings:
                continue
            weights = np.array([free[j] for j in ready], dtype=float) ** self.alpha
            chosen = rng.choice(ready, size=self.siblings, replace=False, p=weights / weights.sum())
            parts = []
            for n, j in enumerate(chosen):
                want = share if n < self.siblings - 1 else size - share * (self.siblings - 1)
                pool = self.sibling_pools[j]
                parts.append(_take(pool, available, want, rng, self.image_of))
            depth = self.ontology.graph.nodes[parent]["depth"]
            return Draw(
                np.concatenate(parts), self.name, f"{parent} ({self.siblings} siblings)", depth + 1
            )
        return None

    def draw(self, available, size, rng) -> Draw:
        """A batch from one node's subtree (or from `siblings` sibling nodes); when no node of the
        stage can fill one any more, the parent of a node of the stage (and so on up) is used."""
        if self.siblings > 1:
            draw = self._draw_siblings(available, size, rng)
            if draw is not None:
                return draw
        node, pool, mask, drawn = self._choose(available, size, rng)
        if node is None:
            node = self.nodes[int(rng.choice(len(self.nodes), p=self.counts / self.counts.sum()))]
            while node is not None:
                pool = self.ontology.subtree_pairs(node)
                mask = available.take(pool)
                if int(np.count_nonzero(mask)) >= size:
                    break
                node = self.ontology.parent(node)
        if node is None:
            fallback = self.random.draw(available, size, rng)  # the whole tree is nearly used up
            return Draw(fallback.indices, "ontology-fallback")
        depth = self.ontology.graph.nodes[node]["depth"]
        if drawn is not None:  # a huge pool: drawn by rejection already
            return Draw(drawn, self.name, node, depth)
        chosen = _take(pool, available, size, rng, self.image_of, mask=mask)
        return Draw(chosen, self.name, node, depth)
