"""Each pair's object synsets as two arrays (compressed sparse rows) instead of a tuple per pair.

At 12M pairs a Python tuple of strings per pair costs gigabytes and a minute to build on every
rank; two integer arrays (each pair's node numbers, flat, and where each pair's run starts) cost
~100 MB, load as memory maps shared by every process on a machine, and answer the questions the
sampler asks (each pair's main object, how many objects it has) without a loop over pairs. Indexing
still gives a pair's tuple of names, so code that reads a few pairs is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np


class PairObjects(Sequence):
    """A read-only sequence of tuples of synset names, one per pair, stored as `nodes` (int32
    numbers into `names`, every pair's objects in order, end to end) and `indptr` (int64, pair i's
    objects are `nodes[indptr[i]:indptr[i + 1]]`)."""

    def __init__(self, names: Sequence[str], nodes: np.ndarray, indptr: np.ndarray) -> None:
        """`names`: the node names the numbers refer to; `nodes`, `indptr`: as above."""
        if len(indptr) == 0 or int(indptr[0]) != 0 or int(indptr[-1]) != len(nodes):
            raise ValueError("pair objects: indptr must start at 0 and end at len(nodes)")
        self.names = list(names)
        self.nodes = nodes
        self.indptr = indptr

    @classmethod
    def from_tuples(cls, objects: Iterable[Sequence[str]]) -> PairObjects:
        """Pack per-pair sequences of names (names numbered in sorted order)."""
        objects = [tuple(o) for o in objects]
        names = sorted({name for objs in objects for name in objs})
        number = {name: i for i, name in enumerate(names)}
        counts = np.fromiter((len(o) for o in objects), np.int64, len(objects))
        nodes = np.fromiter(
            (number[name] for objs in objects for name in objs), np.int32, int(counts.sum())
        )
        return cls(names, nodes, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"pair {i} out of range for {len(self)} pairs")
        start, stop = int(self.indptr[i]), int(self.indptr[i + 1])
        return tuple(self.names[j] for j in self.nodes[start:stop].tolist())

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        names, nodes, bounds = self.names, self.nodes, self.indptr
        step = 1 << 16
        for first in range(0, len(self), step):  # a block of pairs per array access
            block = bounds[first : first + step + 1].tolist()
            flat = nodes[block[0] : block[-1]].tolist()
            base = block[0]
            for a, b in zip(block[:-1], block[1:]):
                yield tuple(names[j] for j in flat[a - base : b - base])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(
            tuple(a) == tuple(b) for a, b in zip(self, other, strict=True)
        )

    __hash__ = None  # mutable arrays underneath: not hashable, like a list

    def counts(self) -> np.ndarray:
        """How many objects each pair has."""
        return np.diff(self.indptr)

    def first(self) -> np.ndarray:
        """Each pair's main (first) object as a number into `names`, -1 for a pair with none."""
        counts = self.counts()
        first = np.full(len(self), -1, dtype=np.int64)
        has = counts > 0
        first[has] = self.nodes[self.indptr[:-1][has]]
        return first

    def renumbered(self, names: Sequence[str]) -> np.ndarray:
        """The flat node numbers translated into numbers of `names` (which must hold them all)."""
        number = {name: i for i, name in enumerate(names)}
        table = np.array([number[name] for name in self.names], dtype=np.int64)
        return table[self.nodes] if len(self.nodes) else np.zeros(0, dtype=np.int64)

    def node_counts(self) -> dict[str, int]:
        """How many pairs name each node among their objects (a pair naming it twice counts
        twice, as a `Counter` over the tuples would)."""
        counts = np.bincount(self.nodes, minlength=len(self.names))
        return {name: int(c) for name, c in zip(self.names, counts) if c}
