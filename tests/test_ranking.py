"""The exact search core (`tonics.eval.ranking`) against a plain reference: score everything,
count what beats the target (ties: lower index), on random and on tie-laden inputs, through
every tile shape, and when a bracket misses."""

import pytest
import torch

from tonics.eval import ranking
from tonics.eval.ranking import paired_ranks, top_k
from tonics.eval.retrieval import _captions_of


def _reference(images, texts, owner):
    """Ranks both ways by brute force over the full score matrix."""
    scores = texts @ images.T
    t2i = []
    for c in range(texts.shape[0]):
        own = scores[c, owner[c]]
        t2i.append(int((scores[c] > own).sum() + (scores[c, : owner[c]] == own).sum()))
    i2t = []
    for i in range(images.shape[0]):
        row = images[i] @ texts.T
        mine = [c for c in range(texts.shape[0]) if owner[c] == i]
        best_index = max(mine, key=lambda c: (row[c], -c))  # highest score, then lowest index
        best = row[best_index]
        i2t.append(int((row > best).sum() + (row[:best_index] == best).sum()))
    return torch.tensor(t2i), torch.tensor(i2t)


def _inputs(seed: int, quantised: bool):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 40, (1,), generator=g))
    per = int(torch.randint(1, 5, (1,), generator=g))
    d = int(torch.randint(1, 7, (1,), generator=g))
    owner = torch.randint(0, n, (n * per,), generator=g)
    owner[:n] = torch.arange(n)  # every image has a caption
    if quantised:  # small integers: many exact ties, duplicated rows
        images = torch.randint(-2, 3, (n, d), generator=g).float()
        texts = torch.randint(-2, 3, (len(owner), d), generator=g).float()
    else:  # float64: two different products of the same vectors agree far below any real gap
        images = torch.nn.functional.normalize(torch.randn(n, d, generator=g).double(), dim=-1)
        noise = torch.randn(len(owner), d, generator=g).double()
        texts = torch.nn.functional.normalize(images[owner] + noise, dim=-1)
        images[1] = images[0]  # exact ties both ways
        texts[2] = texts[0]
    return images, texts, owner


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("quantised", [False, True])
def test_paired_ranks_equal_the_brute_force_reference(seed, quantised, monkeypatch):
    images, texts, owner = _inputs(seed, quantised)
    want = _reference(images, texts, owner)
    captions = _captions_of(owner, images.shape[0])
    for rows, columns in ((None, 1024), (1, 3), (7, 5)):
        monkeypatch.setattr(ranking, "TILE_COLUMNS", columns)
        got = paired_ranks(images, texts, owner, captions, rows_per_block=rows)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_a_bracket_that_misses_is_ranked_directly(monkeypatch):
    images, texts, owner = _inputs(3, quantised=False)
    want = _reference(images, texts, owner)
    of = ranking._Brackets.of

    def shifted(images, texts, owner):  # every bracket misses: both settle steps must notice
        brackets = of(images, texts, owner)
        brackets.caption_low = brackets.caption_low + 5
        brackets.caption_high = brackets.caption_high + 5
        return brackets

    monkeypatch.setattr(ranking._Brackets, "of", staticmethod(shifted))
    got = paired_ranks(images, texts, owner, _captions_of(owner, images.shape[0]))
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_a_realistic_split_matches_the_reference_through_many_tiles(monkeypatch):
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(300, 32, generator=g), dim=-1)
    owner = torch.arange(1500) // 5
    texts = torch.nn.functional.normalize(images[owner] + torch.randn(1500, 32, generator=g), -1)
    monkeypatch.setattr(ranking, "TILE_COLUMNS", 128)
    got = paired_ranks(images, texts, owner, _captions_of(owner, 300), rows_per_block=64)
    want = _reference(images, texts, owner)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("quantised", [False, True])
def test_top_k_is_a_stable_full_sort_cut_at_k(quantised):
    for seed in range(8):
        images, texts, _ = _inputs(seed, quantised)
        want = torch.sort(texts @ images.T, dim=1, descending=True, stable=True)
        for k in (1, 3, images.shape[0], images.shape[0] + 5):
            scores, rows = top_k(texts, images, k, rows_per_block=3)
            cut = min(k, images.shape[0])
            assert torch.equal(rows, want.indices[:, :cut])
            torch.testing.assert_close(scores, want.values[:, :cut])
