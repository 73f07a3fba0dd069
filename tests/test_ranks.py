"""Drawing free pairs by rank: the same pairs as listing the free pairs and drawing from the list."""

from __future__ import annotations

import numpy as np
import pytest

from tonics.sampling.kinds import _take
from tonics.sampling.ranks import BLOCK, block_counts, true_at_ranks


def _listing_take(pool, available, size, rng, image_of=None):
    """Reference: the draw as written with the list of free pairs."""
    free = np.flatnonzero(available) if pool is None else pool[available[pool]]
    if image_of is not None:
        candidates = rng.choice(free, size=min(len(free), 2 * size), replace=False)
        _, first = np.unique(image_of[candidates], return_index=True)
        if len(first) < size and len(candidates) < len(free):
            candidates = rng.permutation(free)
            _, first = np.unique(image_of[candidates], return_index=True)
        chosen = candidates[np.sort(first)][:size]
    else:
        chosen = (
            rng.choice(free, size=size, replace=False)
            if len(free) > size
            else rng.permutation(free)
        )
    available[chosen] = False
    return chosen


@pytest.mark.parametrize("length", [0, 1, 7, BLOCK, 3 * BLOCK + 5, 8 * BLOCK + 1, 50_000])
def test_true_at_ranks_equals_listing_the_true_entries(length):
    rng = np.random.default_rng(length)
    for density in (0.001, 0.3, 0.97):
        mask = rng.random(length) < density
        listed = np.flatnonzero(mask)
        assert block_counts(mask).sum() == len(listed)
        if len(listed):
            ranks = rng.integers(len(listed), size=300)
            assert true_at_ranks(mask, ranks).tolist() == listed[ranks].tolist()
            assert true_at_ranks(mask, [len(listed) - 1, 0]).tolist() == [listed[-1], listed[0]]
            with pytest.raises(IndexError):
                true_at_ranks(mask, [len(listed)])
    assert true_at_ranks(np.ones(length, bool), []).tolist() == []


@pytest.mark.parametrize("with_images", [False, True])
@pytest.mark.parametrize("with_pool", [False, True])
def test_a_draw_by_rank_takes_the_same_pairs_as_a_draw_from_the_list(with_images, with_pool):
    n = 40_000
    setup = np.random.default_rng(1)
    pool = np.sort(setup.choice(n, 25_000, replace=False)) if with_pool else None
    image_of = setup.integers(0, 9_000, n) if with_images else None  # several pairs per image
    ours, theirs = np.ones(n, bool), np.ones(n, bool)
    ours[setup.random(n) < 0.4] = False
    theirs[:] = ours
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    while ours.any():
        for size in (256, 3, 1000):
            mine = _take(pool, ours, size, a, image_of)
            reference = _listing_take(pool, theirs, size, b, image_of)
            assert mine.tolist() == reference.tolist()
            assert (ours == theirs).all()
        if pool is not None and not ours[pool].any():
            break
