"""Leak-free demo splits: images that show one concept, look alike or share a caption are one
group, and a group never straddles train / val / test.

Groups join (union-find) images with the same concept (renderings of one emoji), near-duplicate
perceptual hashes (a drawing re-filed or lightly edited) and an identical normalised caption, so a
test caption is, by construction, never seen verbatim in training. Whole groups are then drawn into
val and test in a seeded order; groups too large to move (a common caption) stay in train.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from tonics.data.records import normalise_caption


class UnionFind:
    """Disjoint sets over 0..n-1 (path halving)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The representative of i's set."""
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        """Merge the sets of i and j."""
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def near_duplicates(
    hashes: Sequence[int], max_distance: int, chunk: int = 512
) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose 64-bit hashes differ in at most `max_distance` bits."""
    values = np.array([h & 0xFFFFFFFFFFFFFFFF for h in hashes], dtype=np.uint64)
    pairs = []
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk]
        distance = np.bitwise_count(block[:, None] ^ values[None, :])
        rows, cols = np.nonzero(distance <= max_distance)
        rows = rows + start
        keep = rows < cols
        pairs.extend(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))
    return pairs


def group_images(
    concepts: Sequence[str],
    captions: Sequence[Sequence[str]],
    hashes: Sequence[int],
    max_distance: int = 4,
) -> list[int]:
    """Each image's group number: images joined by concept, caption or near-duplicate hash."""
    groups = UnionFind(len(concepts))
    first: dict[tuple[str, str], int] = {}
    for i, (concept, texts) in enumerate(zip(concepts, captions, strict=True)):
        for key in [("concept", concept)] + [("caption", normalise_caption(t)) for t in texts]:
            groups.union(i, first.setdefault(key, i))
    for i, j in near_duplicates(hashes, max_distance):
        groups.union(i, j)
    return [groups.find(i) for i in range(len(concepts))]


def assign_splits(
    groups: Sequence[int],
    *,
    seed: int,
    val_share: float,
    test_share: float,
    max_group_share: float = 0.005,
) -> list[str]:
    """'train' / 'val' / 'test' per image, whole groups at a time: groups in a seeded order fill
    val, then test, to their shares of all images; a group larger than `max_group_share` of the
    images stays in train (moving it would make the evaluation splits about one caption)."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    n = len(groups)
    targets = (("val", val_share * n), ("test", test_share * n))
    filled = {"val": 0, "test": 0}
    split = ["train"] * n
    for g in order:
        size = len(members[g])
        if size > max(1, max_group_share * n):
            continue
        for name, target in targets:
            if filled[name] + size <= target:
                filled[name] += size
                for i in members[g]:
                    split[i] = name
                break
    return split


def one_rendering_per_concept(
    concepts: Sequence[str], splits: Sequence[str], seed: int
) -> list[bool]:
    """Which images to keep: in val and test, one seeded-chosen image per concept (two renderings
    with one caption would make retrieval ambiguous); every image elsewhere."""
    by_concept: dict[str, list[int]] = {}
    for i, (concept, split) in enumerate(zip(concepts, splits, strict=True)):
        if split in ("val", "test"):
            by_concept.setdefault(concept, []).append(i)
    keep = [True] * len(concepts)
    rng = random.Random(seed)
    for concept in sorted(by_concept):
        images = by_concept[concept]
        chosen = rng.choice(images)
        for i in images:
            keep[i] = i == chosen
    return keep
