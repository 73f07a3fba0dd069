"""Ontology build throughput: captions/s for 600,000 COCO-like captions on one core.

    python benchmarks/ontology_build.py [--captions 600000]

Captions are generated from templates over ~1,500 WordNet nouns (Zipf-distributed, as in real
caption corpora), verbs and adjectives, with a seed; every caption string is distinct-ish so
per-caption memoisation cannot hide the work. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time

TEMPLATES = [
    "a {adj} {noun} {verb} on a {noun2}",
    "two {noun}s {verb} near the {noun2}",
    "a {noun} with a {adj} {noun2} in the background",
    "the {adj} {noun} is next to a {noun2} and a {noun3}",
    "a man {verb} a {noun} in front of a {noun2}",
    "close up of a {noun} on top of a {adj} {noun2}",
]
VERBS = [
    "sitting",
    "standing",
    "walking",
    "running",
    "lying",
    "holding",
    "riding",
    "eating",
    "looking at",
    "parked",
]
ADJECTIVES = [
    "red",
    "small",
    "large",
    "white",
    "black",
    "wooden",
    "old",
    "young",
    "green",
    "empty",
    "orange",
]


def vocabulary(size: int = 1500) -> list[str]:
    """Frequent single-word physical nouns from WordNet (by SemCor counts)."""
    from tonics.ontology.extract import NounExtractor

    extractor = NounExtractor()
    wn = extractor.wn
    counts = {}  # sense key -> SemCor count: `Lemma.count()` read in one pass, not one search each
    with wn.open("cntlist.rev") as handle:
        for line in handle:
            key, _, count = line.split()
            counts[key] = int(count)
    scored = []
    for synset in wn.all_synsets("n"):
        for lemma in synset.lemmas():
            name = lemma.name()
            if name.isalpha() and name.islower() and counts.get(lemma.key(), 0) > 2:
                scored.append((counts[lemma.key()], name))
    nouns: dict[str, None] = {}  # the first `size` distinct object nouns, most frequent first
    for _, name in sorted(set(scored), reverse=True):
        if len(nouns) == size:
            break
        if name not in nouns and extractor.object_synset(name):
            nouns[name] = None
    return list(nouns)


def captions(n: int, nouns: list[str], seed: int = 0) -> list[str]:
    """`n` template captions with Zipf-distributed nouns."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(nouns))]
    picks = rng.choices(nouns, weights=weights, k=3 * n)
    out = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        out.append(
            template.format(
                adj=rng.choice(ADJECTIVES),
                verb=rng.choice(VERBS),
                noun=picks[3 * i],
                noun2=picks[3 * i + 1],
                noun3=picks[3 * i + 2],
            )
            + f" {i % 97}"
        )
    return out


def main() -> None:
    """Build the ontology of the generated captions and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--captions", type=int, default=600_000)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from tonics.ontology import build_ontology

    texts = captions(args.captions, vocabulary())
    started = time.perf_counter()
    ontology = build_ontology(texts, [str(i) for i in range(len(texts))])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| ontology_build | {len(texts):,} captions | {seconds:.1f} s | "
        f"{len(texts) / seconds:,.0f} captions/s |",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "benchmark": "ontology_build",
                "captions": len(texts),
                "seconds": round(seconds, 1),
                "captions_per_s": round(len(texts) / seconds),
                "coverage": round(ontology.coverage(), 4),
                "nodes": ontology.graph.number_of_nodes(),
                "peak_rss_mib": round(peak),
                "goal": "600k captions < 60 s, < 2 GiB",
            }
        )
    )


if __name__ == "__main__":
    main()
