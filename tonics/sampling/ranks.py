"""The free pairs at given ranks, without listing every free pair.

A uniform draw among a pool's available pairs used to list them all (`np.flatnonzero`, or
`pool[available[pool]]`) and then pick from the list: at 12M pairs that list is up to 96 MB written
per batch, several percent of a GPU step. numpy's `Generator.choice(k, ...)` and
`permutation(k)` pick ranks among k items with exactly the same random stream as picking from a
k-item array, so the draw only needs k (a count) and the items at the chosen ranks: counts per
block of the availability mask (popcounts over 8-byte words), then one block per chosen rank.
The batches drawn are the same pairs as listing them would give.

A pool of more than `HUGE` pairs (only corpora of millions of pairs have one) is drawn by
rejection instead: uniform positions in the pool, kept when free, duplicates dropped, which costs
microseconds instead of a pass over the pool. It is the same distribution (a uniform subset of the
free members) from a different random stream, so batches are identical to listing ones up to pools
of `HUGE` pairs and equally distributed above. When few of a huge pool's pairs are left free, the
draw falls back to counting.
"""

from __future__ import annotations

import numpy as np

BLOCK = 512  # mask entries per counted block: a multiple of 8 (whole 8-byte words)
SMALL = 8 * BLOCK
HUGE = 1 << 20  # pools larger than this are drawn by rejection (see the module doc)


def block_counts(mask: np.ndarray) -> np.ndarray:
    """How many True entries each block of `BLOCK` entries of a boolean mask holds (the last
    block may be shorter)."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    full = len(mask) // BLOCK * BLOCK
    words = mask[:full].view(np.uint64)
    counts = np.bitwise_count(words).reshape(-1, BLOCK // 8).sum(axis=1, dtype=np.int64)
    if full < len(mask):
        counts = np.append(counts, np.count_nonzero(mask[full:]))
    return counts


def true_at_ranks(mask: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """`np.flatnonzero(mask)[ranks]`: the positions of the True entries with these ranks (0: the
    first True), in the order of `ranks`, touching only the blocks they fall in."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    ranks = np.asarray(ranks, dtype=np.int64)
    if len(ranks) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(mask) <= SMALL:  # listing a short mask's True entries is cheaper than counting blocks
        return np.flatnonzero(mask)[ranks]
    counts = block_counts(mask)
    ends = np.cumsum(counts)
    if ranks.min() < 0 or ranks.max() >= ends[-1]:
        raise IndexError(f"ranks must lie in [0, {int(ends[-1])}): the mask's True entries")
    blocks = np.searchsorted(ends, ranks, side="right")
    within = ranks - (ends[blocks] - counts[blocks])  # rank inside its block
    full = len(mask) // BLOCK
    rows = np.zeros((len(ranks), BLOCK), dtype=bool)
    whole = blocks < full
    rows[whole] = mask[: full * BLOCK].reshape(full, BLOCK)[blocks[whole]]
    tail = mask[full * BLOCK :]
    rows[~whole, : len(tail)] = tail
    seen = np.cumsum(rows, axis=1, dtype=np.int32)  # True entries up to each column
    offset = np.argmax(seen > within[:, None], axis=1)
    return blocks * BLOCK + offset


def take_by_rejection(
    pool: np.ndarray | None,
    available: np.ndarray,
    size: int,
    rng: np.random.Generator,
    tries: int = 4,
) -> np.ndarray | None:
    """`size` distinct free pairs of `pool` (None: of all pairs), uniformly, marked unavailable;
    None (nothing marked) when `tries` rounds of oversampling did not find enough free ones."""
    n = len(available) if pool is None else len(pool)
    chosen = np.zeros(0, dtype=np.int64)
    for _ in range(tries):
        want = size - len(chosen)
        positions = rng.integers(n, size=2 * want + 32)
        drawn = positions if pool is None else pool[positions].astype(np.int64)
        drawn = drawn[available[drawn]]
        _, first = np.unique(drawn, return_index=True)
        drawn = drawn[np.sort(first)]  # distinct, in the order drawn
        drawn = drawn[~np.isin(drawn, chosen)]
        chosen = np.concatenate([chosen, drawn[:want]])
        if len(chosen) == size:
            available[chosen] = False
            return chosen
    return None
