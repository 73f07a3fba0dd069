"""Drawing free pairs by rank: the same pairs as listing the free pairs and drawing from the
list."""

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


def test_rejection_draws_distinct_free_members_uniformly():
    from scipy.stats import chisquare

    from tonics.sampling.ranks import take_by_rejection

    setup = np.random.default_rng(3)
    pool = np.sort(setup.choice(5000, 400, replace=False))
    start = np.ones(5000, bool)
    start[setup.choice(5000, 1500, replace=False)] = False
    free = pool[start[pool]]
    rng = np.random.default_rng(11)
    counts = {int(p): 0 for p in free}
    for _ in range(400):
        available = start.copy()
        chosen = take_by_rejection(pool, available, 40, rng)
        assert len(set(chosen.tolist())) == 40 and set(chosen.tolist()) <= set(counts)
        assert not available[chosen].any() and available.sum() == start.sum() - 40
        for p in chosen.tolist():
            counts[p] += 1
    assert chisquare(list(counts.values())).pvalue > 0.001  # uniform over the free members
    nearly_empty = np.zeros(5000, bool)
    nearly_empty[pool[:3]] = True
    assert take_by_rejection(pool, nearly_empty, 5, rng) is None  # too few: nothing marked
    assert nearly_empty.sum() == 3


@pytest.mark.parametrize("web_scale", [False, True])
def test_huge_pools_still_give_epochs_without_repeats(monkeypatch, web_scale):
    """Pools above `HUGE` (groups above `HUGE_GROUP`) are drawn by rejection (both patched small
    here, so that these are): every
    batch is full and no pair repeats within an epoch, for every kind."""
    from tonics.ontology import build_ontology

    import tonics.sampling.diverse as diverse
    import tonics.sampling.kinds as kinds
    from tonics.sampling import Curriculum, CurriculumBatchSampler, Stage

    monkeypatch.setattr(kinds, "HUGE", 50)
    monkeypatch.setattr(diverse, "HUGE_GROUP", 20)
    if web_scale:  # a corpus "over 1M pairs": groups over WEB_SCALE_GROUP pick by rejection
        monkeypatch.setattr(diverse, "HUGE", 100)
        monkeypatch.setattr(diverse, "WEB_SCALE_GROUP", 5)
    objects = ["dog", "cat", "horse", "pizza", "banana", "car", "bus", "chair"]
    ontology = build_ontology(
        [f"a {objects[i % 8]} and a {objects[i % 3]}" for i in range(1200)],
        [str(i) for i in range(1200)],
    )
    for stage in (
        Stage(name="random", mix={"random": 1.0}),
        Stage(
            name="coarse",
            mix={"ontology": 1.0},
            nodes={"granularity": "depth", "min_depth": 1, "max_depth": 6},
        ),
        Stage(name="diverse", mix={"diverse": 1.0}),
    ):
        sampler = CurriculumBatchSampler(ontology, Curriculum([stage]), batch_size=16, seed=2)
        sampler.set_epoch(0)
        batches = list(sampler)
        flat = [i for b in batches for i in b]
        assert all(len(b) == 16 for b in batches) and len(flat) == len(set(flat)), stage.name
