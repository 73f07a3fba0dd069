"""Sampler cost: seconds to produce one batch for each kind at 100k and 1M pairs, as a share of a
training step (packaged encoders, batch 32, frozen and unfrozen) measured in the same run.

    python benchmarks/sampler.py [--sizes 100000 1000000] [--batches 200] [--steps 5]
        [--step-batch 32]

Prints one JSON line (and a Markdown table on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from tonics.ontology.building import hypernym_closure
from tonics.ontology.graph import Ontology


def synthetic_ontology(num_pairs: int, nouns: list[str], seed: int = 0) -> Ontology:
    """Pairs with 1-3 Zipf-distributed objects over WordNet nouns, on their real hypernym graph."""
    from tonics.ontology.extract import NounExtractor

    extractor = NounExtractor()
    synsets = sorted({extractor.object_synset(n) for n in nouns} - {None})
    graph = hypernym_closure(extractor.wn, synsets)
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, len(synsets) + 1)
    picks = rng.choice(len(synsets), size=(num_pairs, 3), p=weights / weights.sum())
    counts = rng.integers(1, 4, size=num_pairs)
    objects = [
        tuple(dict.fromkeys(synsets[j] for j in picks[i, : counts[i]])) for i in range(num_pairs)
    ]
    ontology = Ontology(graph, objects, [str(i) for i in range(num_pairs)])
    ontology.precompute_subtrees()
    for node in graph:
        graph.nodes[node]["subtree"] = len(ontology.subtree_pairs(node))
        graph.nodes[node]["own"] = 0
    for objs in objects:
        for o in objs:
            graph.nodes[o]["own"] += 1
    return ontology


def time_kind(ontology: Ontology, mix: dict, batches: int = 200, **stage) -> float:
    """Mean seconds per batch of a one-stage curriculum with this mix."""
    from tonics.sampling import Curriculum, CurriculumBatchSampler, Stage

    sampler = CurriculumBatchSampler(
        ontology, Curriculum([Stage(name="s", mix=mix, **stage)]), batch_size=32
    )
    iterator = iter(sampler)
    next(iterator)  # builds the kind's node tables
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - started) / batches


def main() -> None:
    """Run every kind at every size."""
    from common import packaged_step_seconds
    from ontology_build import vocabulary

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--batches", type=int, default=200, help="timed batches a kind (half at 1M+)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument(
        "--step-batch", type=int, default=32, help="batch of the timed training step (default 32)"
    )
    args = parser.parse_args()
    nouns = vocabulary()
    frozen_step = packaged_step_seconds(args.step_batch, steps=args.steps, unfrozen=False)
    unfrozen_step = packaged_step_seconds(args.step_batch, steps=args.steps, unfrozen=True)
    kinds = {
        "random": ({"random": 1.0}, {}),
        "diverse": ({"diverse": 1.0}, {}),
        "ontology_fine": ({"ontology": 1.0}, {"nodes": {"granularity": "fine"}}),
        "ontology_coarse": (
            {"ontology": 1.0},
            {"nodes": {"granularity": "depth", "min_depth": 4, "max_depth": 7}},
        ),
    }
    result = {
        "benchmark": "sampler",
        "batch_size": 32,
        "step_batch_size": args.step_batch,
        "frozen_step_s": round(frozen_step, 4),
        "unfrozen_step_s": round(unfrozen_step, 4),
        "goal": "< 1% of step time",
    }
    rows = []
    for size in args.sizes:
        started = time.perf_counter()
        ontology = synthetic_ontology(size, nouns)
        result[f"build_{size}_s"] = round(time.perf_counter() - started, 1)
        for name, (mix, stage) in kinds.items():
            seconds = time_kind(
                ontology,
                mix,
                batches=max(1, args.batches // 2) if size > 100_000 else args.batches,
                **stage,
            )
            share = seconds / frozen_step * 100
            result[f"{name}_{size}_ms"] = round(seconds * 1000, 3)
            result[f"{name}_{size}_share_of_frozen_step_pct"] = round(share, 3)
            rows.append(
                f"| {name} | {size:,} | {seconds * 1000:.2f} | {share:.2f}% | "
                f"{seconds / unfrozen_step * 100:.2f}% |"
            )
    print(json.dumps(result))
    print(
        "| kind | pairs | ms/batch | share of frozen step | share of unfrozen step |\n"
        "|---|---|---|---|---|",
        file=sys.stderr,
    )
    print("\n".join(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
