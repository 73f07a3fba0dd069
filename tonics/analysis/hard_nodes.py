"""Which ontology nodes a hard stage would draw its batches from, before training on them."""

from __future__ import annotations

import numpy as np

from tonics.data.records import group_codes
from tonics.sampling.kinds import stage_nodes
from tonics.sampling.nodes import HardNodeRules, blocked_pairs, distinct_counts, hard_pool


def hard_batch_nodes(ontology, records, batch_size: int, top: int = 25) -> dict:
    """Per granularity and rule set, the nodes a stage would draw hard batches from, with their
    distinct images / captions: what `object_nodes_only` changes, before training on it."""
    pair_images, pair_captions = (np.array(codes) for codes in group_codes(records))
    out = {}
    for label, rules in (
        ("fine, any node", HardNodeRules(object_nodes_only=False)),
        ("fine, object nodes only", HardNodeRules()),
    ):
        try:
            nodes = stage_nodes(
                ontology,
                batch_size,
                rules=rules,
                pair_images=pair_images,
                pair_captions=pair_captions,
            )
        except ValueError as err:
            out[label] = str(err)
            continue
        rows = []
        blocked = blocked_pairs(ontology, rules)
        for node in nodes:
            pairs = hard_pool(ontology, node, blocked)
            n_images, n_captions = distinct_counts(pairs, pair_images, pair_captions)
            rows.append(
                (
                    len(pairs),
                    f"{node}: {len(pairs)} pairs, {n_images} images, {n_captions} captions",
                )
            )
        out[label] = {
            "nodes": len(nodes),
            "largest": [text for _, text in sorted(rows, reverse=True)[:top]],
        }
    return out
