"""Retrieval metrics that look where the curriculum acts.

- Within-object retrieval: each query is ranked only against the candidates that share its object
  (the first ontology object of its caption), so matching the object is not enough: this is the
  hard-negative skill that same-object batches train. text->image: a caption with object o ranks
  its image among the images having a caption with object o. image->text: for each object o of an
  image, the image's best caption with object o is ranked among all captions with object o. Queries
  with no negative among their candidates are left out. Ties: lower index wins, as in
  `tonics.eval.retrieval`.
- Caption-novel retrieval: text->image recall over the captions never seen verbatim (normalised) in
  training, where recalling a memorised caption cannot help.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from tonics.eval.ranking import tie_rank


def _recalls(ranks: list[int], ks: Sequence[int], prefix: str) -> dict[str, float]:
    ranks_t = torch.tensor(ranks, dtype=torch.long)
    out = {f"{prefix}_R@{k}": float((ranks_t < k).float().mean() * 100) for k in ks}
    out[f"{prefix}_queries"] = float(len(ranks))
    return out


def caption_annotations(
    records, train_records, **ontology_options
) -> tuple[list[str | None], list[bool]]:
    """For each record, in order: its caption's object (the first the ontology extracts, None if
    none) and whether its caption is novel (never seen verbatim, normalised, in `train_records`):
    what the within-object and caption-novel metrics need. `ontology_options` go to
    `ontology_for_records` (object source, cache)."""
    from tonics.data.records import caption_key, normalise_caption
    from tonics.ontology.index import ontology_for_records

    ontology = ontology_for_records(records, **ontology_options)
    objects = [objs[0] if objs else None for objs in ontology.pair_objects]
    if hasattr(train_records, "caption_keys"):  # a columnar table: its stored keys, no pass
        keys = np.array([caption_key(r.caption) for r in records], dtype=np.int64)
        return objects, (~np.isin(keys, train_records.caption_keys())).tolist()
    seen = {normalise_caption(r.caption) for r in train_records}
    return objects, [normalise_caption(r.caption) not in seen for r in records]


def within_object_metrics(
    images: torch.Tensor,
    texts: torch.Tensor,
    text_to_image: Sequence[int],
    caption_objects: Sequence[str | None],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Within-object R@K both ways (see the module docstring); `caption_objects[c]` is caption c's
    object (None: no object, not a query). Empty dict when no query has a negative."""
    images, texts = images.float(), texts.float()
    owner = list(text_to_image)
    captions_of: dict[str, list[int]] = defaultdict(list)
    for c, obj in enumerate(caption_objects):
        if obj is not None:
            captions_of[obj].append(c)
    t2i, i2t = [], []
    for _, captions in sorted(captions_of.items()):
        candidates = sorted({owner[c] for c in captions})  # images with a caption of this object
        if len(candidates) < 2:
            continue
        column = {image: j for j, image in enumerate(candidates)}
        scores = texts[captions] @ images[candidates].T  # (captions of o, images of o)
        target = torch.tensor([column[owner[c]] for c in captions])
        own = scores.gather(1, target[:, None]).squeeze(1)
        t2i += tie_rank(scores, own, target).tolist()
        image_scores = scores.T  # (images of o, captions of o)
        for j, image in enumerate(candidates):
            mine = torch.tensor([k for k, c in enumerate(captions) if owner[c] == image])
            if len(mine) == len(captions):
                continue
            best_score, best_slot = image_scores[j, mine].max(0)
            rank = tie_rank(image_scores[j : j + 1], best_score[None], mine[best_slot][None])
            i2t.append(int(rank))
    if not t2i:
        return {}
    return {
        **_recalls(t2i, ks, "within_object_text_to_image"),
        **_recalls(i2t, ks, "within_object_image_to_text"),
    }


def caption_novel_metrics(
    images: torch.Tensor,
    texts: torch.Tensor,
    text_to_image: Sequence[int],
    novel: Sequence[bool],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Text->image R@K over the captions never seen in training, against every image, and the
    share of such captions (percent)."""
    rows = [c for c, is_new in enumerate(novel) if is_new]
    out = {"caption_novel_share": 100.0 * len(rows) / max(1, len(novel))}
    if not rows:
        return out
    owner = torch.as_tensor(list(text_to_image), dtype=torch.long)[rows]
    scores = texts[rows].float() @ images.float().T
    own = scores.gather(1, owner[:, None]).squeeze(1)
    return {
        **out,
        **_recalls(tie_rank(scores, own, owner).tolist(), ks, "caption_novel_text_to_image"),
    }
