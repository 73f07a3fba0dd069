"""Exact similarity search over embeddings: the one place where scores are ranked.

Used by retrieval metrics (`tonics retrieval`, `tonics test`, validation), within-object metrics
and photo search (`tonics.search`, exact index). Similarity is the dot product (cosine for
L2-normalised rows). Ties break deterministically towards the lower index: an item's rank counts
the items scoring strictly higher plus those scoring exactly the same that come earlier.

`paired_ranks` gives both retrieval directions from a single matrix product, computed in tiles
small enough to stay in cache. A rank is a count of scores above a threshold (a caption's own
score; an image's best own-caption score), but a tile is counted before the threshold's own tile
is computed, so each threshold is bracketed instead: a float32 estimate of it -/+ a rounding
bound. Scores above the bracket are counted as they come; the few inside it (the own score
itself, near ties) are kept and settled exactly, against the product's own values, at the end.
A threshold that falls outside its bracket is detected then and that query is ranked directly.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_ENTRIES = 1 << 23  # scores per block of `top_k` (32 MiB of float32)
TILE_ROWS, TILE_COLUMNS = 320, 1024  # a tile of `paired_ranks` (1.3 MB: stays in cache)


def tie_rank(
    scores: torch.Tensor, target_scores: torch.Tensor, target_index: torch.Tensor
) -> torch.Tensor:
    """Per row of `scores`: #scores > target + #scores == target at an index below the target's."""
    above = (scores > target_scores[:, None]).sum(1)
    equal = (scores == target_scores[:, None]).sum(1)
    tied_rows = (equal > 1).nonzero().flatten()  # rows where something besides the target ties
    if len(tied_rows):
        tied = scores[tied_rows] == target_scores[tied_rows, None]
        columns = torch.arange(scores.shape[1], device=scores.device)
        above[tied_rows] += (tied & (columns[None, :] < target_index[tied_rows, None])).sum(1)
    return above


def top_k(
    queries: torch.Tensor, keys: torch.Tensor, k: int, rows_per_block: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k keys most similar to each query: (scores, indices), both (n_queries, k), best first;
    equal scores in index order, and at the k-th place the lower index is kept."""
    queries, keys, k = queries.detach(), keys.detach(), min(k, keys.shape[0])
    rows = rows_per_block or max(1, BLOCK_ENTRIES // max(1, keys.shape[0]))
    values, indices = [], []
    with torch.no_grad():
        for start in range(0, queries.shape[0], rows):
            scores = queries[start : start + rows] @ keys.T
            best, where = scores.topk(k, dim=1)
            kth = best[:, -1:]
            crowded = ((scores >= kth).sum(1, dtype=torch.int32) > k).nonzero().flatten()
            for row in crowded.tolist():  # ties at the k-th place: keep the lower indices
                candidates = (scores[row] >= kth[row]).nonzero().flatten()
                order = torch.sort(scores[row, candidates], descending=True, stable=True).indices
                where[row] = candidates[order[:k]]
                best[row] = scores[row, where[row]]
            by_index = where.argsort(dim=1)  # equal scores in index order
            where, best = where.gather(1, by_index), best.gather(1, by_index)
            order = torch.sort(best, dim=1, descending=True, stable=True).indices
            values.append(best.gather(1, order))
            indices.append(where.gather(1, order))
    return torch.cat(values), torch.cat(indices)


def paired_ranks(
    images: torch.Tensor,
    texts: torch.Tensor,
    owner: torch.Tensor,
    captions: torch.Tensor,
    rows_per_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """0-based ranks both ways from one product `images @ texts.T`: text->image (each caption's
    own image `owner[c]` among all images) and image->text (each image's best caption among all
    captions; `captions[i]` lists image i's caption indices ascending, padded by repeating one).

    The product is computed tile by tile (`rows_per_block` image rows x 1024 captions); while a
    tile is in cache, its scores are counted against both directions' brackets (see the module
    docstring) and the few inside a bracket are kept to be settled exactly at the end."""
    images, texts = images.detach().cpu(), texts.detach().cpu()  # tiles are counted in numpy
    rows = min(MAX_TILE, rows_per_block or TILE_ROWS)
    brackets = _Brackets.of(images, texts, owner)
    t2i_above = np.zeros(texts.shape[0], dtype=np.int64)
    i2t_above = np.zeros(images.shape[0], dtype=np.int64)
    t2i_inside, i2t_inside = [], []
    scratch = [np.empty((rows, TILE_COLUMNS), dtype=bool) for _ in range(4)]
    with torch.no_grad():
        for r0 in range(0, images.shape[0], rows):
            block = images[r0 : r0 + rows]
            for c0 in range(0, texts.shape[0], TILE_COLUMNS):
                tile = (block @ texts[c0 : c0 + TILE_COLUMNS].T).numpy()
                flags = [f[: tile.shape[0], : tile.shape[1]] for f in scratch]
                counts = _count_tile(tile, r0, c0, brackets, flags)
                t2i_above[c0 : c0 + tile.shape[1]] += counts[0]
                i2t_above[r0 : r0 + tile.shape[0]] += counts[1]
                t2i_inside.append(counts[2])
                i2t_inside.append(counts[3])
    t2i, unsure_captions = _settle_text_to_image(t2i_above, t2i_inside, owner)
    i2t, unsure_images = _settle_image_to_text(i2t_above, i2t_inside, owner, unsure_captions)
    if len(unsure_captions):  # an own score outside its bracket (rare): rank directly
        scores = texts[unsure_captions] @ images.T
        own = scores.gather(1, owner[unsure_captions, None]).squeeze(1)
        t2i[unsure_captions] = tie_rank(scores, own, owner[unsure_captions])
    if len(unsure_images):
        scores = images[unsure_images] @ texts.T
        mine = captions[unsure_images]
        best, slot = scores.gather(1, mine).max(1)
        i2t[unsure_images] = tie_rank(scores, best, mine.gather(1, slot[:, None]).squeeze(1))
    return t2i, i2t


MAX_TILE = 32767  # counts within a tile are summed in int16


class _Brackets:
    """Float32 intervals expected to hold each caption's own score (text->image) and each
    image's best own-caption score (image->text) as the tiled product computes them: a float32
    dot product -/+ 2*sqrt(d)*u*|x|*|y|, five times the largest rounding error seen in tests. A
    bracket that misses is detected when settling and that query is ranked directly, so a
    bracket only has to be right almost always, never for correctness."""

    def __init__(self, caption_low, caption_high, image_low, image_high):
        self.caption_low, self.caption_high = caption_low, caption_high
        self.image_low, self.image_high = image_low[:, None], image_high[:, None]

    @classmethod
    def of(cls, images, texts, owner) -> _Brackets:
        """Brackets for `images @ texts.T` with caption c belonging to image `owner[c]`."""
        estimate = torch.linalg.vecdot(texts, images[owner])
        bound = 2 * texts.shape[1] ** 0.5 * 2.0**-24 * texts.norm(dim=1) * images.norm(dim=1)[owner]
        bound += torch.finfo(torch.float32).tiny
        low = torch.nextafter(estimate - bound, torch.tensor(-float("inf")))
        high = torch.nextafter(estimate + bound, torch.tensor(float("inf")))
        image_low = torch.full((images.shape[0],), float("inf"), dtype=low.dtype).scatter_reduce(
            0, owner, low, "amax", include_self=False
        )
        image_high = torch.full((images.shape[0],), float("inf"), dtype=low.dtype).scatter_reduce(
            0, owner, high, "amax", include_self=False
        )
        return cls(low.numpy(), high.numpy(), image_low.numpy(), image_high.numpy())


def _count_tile(tile: np.ndarray, r0: int, c0: int, brackets: _Brackets, flags):
    """One tile of scores: per caption column and per image row, how many scores lie above the
    bracket, and the (image, caption, score) entries inside each direction's brackets."""
    columns = slice(c0, c0 + tile.shape[1])
    rows = slice(r0, r0 + tile.shape[0])
    above_c = np.greater(tile, brackets.caption_high[columns], out=flags[0])
    maybe_c = np.greater_equal(tile, brackets.caption_low[columns], out=flags[1])
    above_r = np.greater(tile, brackets.image_high[rows], out=flags[2])
    maybe_r = np.greater_equal(tile, brackets.image_low[rows], out=flags[3])
    column_counts = _column_counts(above_c)
    row_counts = _row_counts(above_r)
    low_c, high_c = brackets.caption_low[columns], brackets.caption_high[columns]
    low_r, high_r = brackets.image_low[rows], brackets.image_high[rows]
    inside_columns = np.flatnonzero(_column_counts(maybe_c) - column_counts)
    inside_rows = np.flatnonzero(_row_counts(maybe_r) - row_counts)
    return (
        column_counts,
        row_counts,
        _inside(tile, r0, c0, low_c, high_c, inside_columns, axis=1),
        _inside(tile, r0, c0, low_r, high_r, inside_rows, axis=0),
    )


def _inside(tile, r0, c0, low, high, lines: np.ndarray, axis: int) -> np.ndarray:
    """(3, n) float64: image index, caption index, score of the tile's entries at or above
    `low` and not above `high`, looked for only in `lines` (columns when `axis` is 1, else
    rows): the ones whose counts say something is inside."""
    if axis == 1:
        sub = tile[:, lines]
        mask = (sub >= low[lines]) & ~(sub > high[lines])
        image_rows, slots = np.nonzero(mask)
        columns = lines[slots]
    else:
        sub = tile[lines]
        mask = (sub >= low[lines]) & ~(sub > high[lines])
        slots, columns = np.nonzero(mask)
        image_rows = lines[slots]
    return np.stack([image_rows + r0, columns + c0, sub[mask].astype(np.float64)])


def _settle_text_to_image(above, inside, owner) -> tuple[torch.Tensor, torch.Tensor]:
    """Text->image ranks: scores above the bracket plus bracketed scores that beat the caption's
    own (ties: lower image index); and the captions whose own score was not bracketed."""
    image, caption, score = (torch.from_numpy(x) for x in np.concatenate(inside, axis=1))
    image, caption = image.long(), caption.long()
    is_own = image == owner[caption]
    own_score = torch.full((len(above),), float("nan"), dtype=torch.float64)
    own_score[caption[is_own]] = score[is_own]
    others = ~is_own
    target = own_score[caption[others]]
    beats = (score[others] > target) | (
        (score[others] == target) & (image[others] < owner[caption[others]])
    )
    ranks = torch.from_numpy(above).index_add(0, caption[others], beats.long())
    return ranks, own_score.isnan().nonzero().flatten()


def _settle_image_to_text(
    above, inside, owner, unsure_captions
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image->text ranks: scores above the bracket plus bracketed captions of other images that
    beat the image's best own caption (ties: lower caption index); and the images whose best
    score is not certain to be bracketed (none of their captions in the bracket, or one of their
    captions' own brackets missed)."""
    image, caption, score = (torch.from_numpy(x) for x in np.concatenate(inside, axis=1))
    image, caption = image.long(), caption.long()
    n = len(above)
    is_own = owner[caption] == image
    best = torch.full((n,), -float("inf"), dtype=torch.float64).scatter_reduce(
        0, image[is_own], score[is_own], "amax"
    )
    at_best = is_own & (score == best[image])
    best_index = torch.full((n,), len(owner), dtype=torch.long).scatter_reduce(
        0, image[at_best], caption[at_best], "amin"
    )
    others = ~is_own
    beats = (score[others] > best[image[others]]) | (
        (score[others] == best[image[others]]) & (caption[others] < best_index[image[others]])
    )
    ranks = torch.from_numpy(above).index_add(0, image[others], beats.long())
    unsure = torch.isinf(best)
    unsure[owner[unsure_captions]] = True
    return ranks, unsure.nonzero().flatten()


def _column_counts(flags: np.ndarray) -> np.ndarray:
    """True entries per column of a (rows <= MAX_TILE, n) bool array, as int64 (numpy's
    uint8 -> int16 reduction is several times faster than torch's bool sums on CPU)."""
    return np.add.reduce(flags.view(np.uint8), axis=0, dtype=np.int16).astype(np.int64)


def _row_counts(flags: np.ndarray) -> np.ndarray:
    """True entries per row of a (n, columns <= MAX_TILE) bool array, as int64."""
    return np.add.reduce(flags.view(np.uint8), axis=1, dtype=np.int16).astype(np.int64)
