"""The current model as the teacher of mined batches: every training pair embedded by the model
being trained, from the run's feature or prefix cache (no image is decoded again).

The rows are the heads' L2-normalised image and text embeddings, joined so that a dot product of
two rows is the mean of their image and text cosines (`tonics.sampling.mined.teacher_rows`); a
pair whose image failed to load gets a zero row (it never trains). The towers run as the current
stage has them open, in eval mode and without gradients; the random streams are left as they were,
so a refresh changes only the ranking of later mined batches.
"""

from __future__ import annotations

import numpy as np
import torch

from tonics.sampling.mined import teacher_rows
from tonics.sampling.openings import split_of


def _cached_path(module):
    """The cache that serves the model's current openings: (lookup(indices) -> image, text,
    usable) and the number of pairs it holds."""
    split = split_of(module.unfrozen)
    if split == (0, 0) and module.feature_cache is not None:
        cache = module.feature_cache
        return cache.lookup, cache.store.num_pairs
    if split in module.prefix_caches:
        cache = module.prefix_caches[split]
        return (lambda indices: cache.features(indices, module.device)), cache.store.num_pairs
    raise RuntimeError(
        f"mining.teacher: current needs the towers' cached prefix for the openings {split} "
        "(data.cache.enabled: true; a stage that opens a whole tower cannot be re-embedded)"
    )


@torch.no_grad()
def current_teacher_rows(module, chunk: int = 512) -> np.ndarray:
    """One teacher row per training pair from `module` (an `AlignmentModule` with caches)."""
    lookup, num_pairs = _cached_path(module)
    heads = {"image": module.model.vision_head, "text": module.model.text_head}
    width = module.model.embed_dim
    out = {name: np.zeros((num_pairs, width), dtype=np.float32) for name in heads}
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            for start in range(0, num_pairs, chunk):
                indices = torch.arange(start, min(start + chunk, num_pairs))
                image, text, usable = lookup(indices)
                rows = indices[usable].numpy()
                if len(rows) == 0 or image.shape[0] == 0:
                    continue
                for name, features in (("image", image), ("text", text)):
                    embedded = heads[name](features.to(module.device, torch.float32))
                    out[name][rows] = torch.nn.functional.normalize(embedded, dim=-1).cpu().numpy()
    finally:
        for m, mode in modes.items():
            m.training = mode
    return teacher_rows(out["text"], out["image"])
