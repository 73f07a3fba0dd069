"""Retrieval evaluation cost: 5k images x 25k captions (COCO 5k test size), 256-d embeddings.

    python benchmarks/retrieval.py [--images 5000]

Prints one JSON line: seconds (best of 3), peak resident memory, and the ratio to the bare matrix
product `images @ texts.T` timed in the same run (the goal: within 1.5x of it).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

from tonics.eval.retrieval import retrieval_metrics


def best_of(work, repeats: int = 3) -> float:
    """The fastest of `repeats` timings of `work()` (seconds)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    """Time the chunked metric on random embeddings with 5 captions per image."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000, help="images (5 captions each)")
    count = parser.parse_args().images
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(count, 256, generator=g), dim=-1)
    owner = torch.arange(count * 5) // 5
    texts = torch.nn.functional.normalize(
        images[owner] + 1.5 * torch.randn(count * 5, 256, generator=g), dim=-1
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    retrieval_metrics(images[:100], texts[:500], owner[:500])  # warm-up
    product = best_of(lambda: images @ texts.T)
    seconds = best_of(lambda: retrieval_metrics(images, texts, owner))
    result = retrieval_metrics(images, texts, owner)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| retrieval | {count} x {count * 5} | {seconds:.2f} s | peak RSS {peak:.0f} MiB |",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "benchmark": "retrieval",
                "images": count,
                "captions": count * 5,
                "dim": 256,
                "seconds": round(seconds, 2),
                "product_seconds": round(product, 2),
                "ratio_to_product": round(seconds / product, 2),
                "peak_rss_mib": round(peak),
                "rss_growth_mib": round(peak - before),
                "threads": torch.get_num_threads(),
                "image_to_text_R@1": round(result.metrics["image_to_text_R@1"], 2),
                "goal": "ratio_to_product <= 1.5",
            }
        )
    )


if __name__ == "__main__":
    main()
