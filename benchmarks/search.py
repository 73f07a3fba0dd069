"""Search index costs: building and querying the vector index at 100k and 1M images (synthetic
256-d unit vectors), flat (exact) against HNSW; and, with `--demo`, indexing the demo's images with
the packaged encoders (throughput, and the share of time spent outside the encoders).

    python benchmarks/search.py [--sizes 100000 1000000] [--queries 200] [--demo]

Prints one JSON line: per size and kind, build seconds, bytes on disk, resident bytes added,
query latency p50/p99 (ms, one query at a time, the text embedding excluded) and recall@10 of HNSW
against exact search.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tonics.search.vectors import build_vector_index, read_vector_index, write_vector_index


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _unit_vectors(n: int, width: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, width), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def measure(n: int, kind: str, queries: np.ndarray, exact_top: np.ndarray | None) -> dict:
    """Build, write, reload and query one index; recall@10 against `exact_top` when given."""
    vectors = _unit_vectors(n, queries.shape[1], seed=0)
    before = _rss_bytes()
    started = time.perf_counter()
    index = build_vector_index(vectors, kind)
    build_s = time.perf_counter() - started
    added = _rss_bytes() - before
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "index.faiss"
        write_vector_index(index, path)
        disk = path.stat().st_size
        index = read_vector_index(path)
    latencies, tops = [], []
    for query in queries:
        started = time.perf_counter()
        _, rows = index.search(query[None], 10)
        latencies.append((time.perf_counter() - started) * 1000)
        tops.append(rows[0])
    tops = np.array(tops)
    result = {
        "build_s": round(build_s, 2),
        "disk_bytes": disk,
        "rss_added_bytes": added,
        "query_p50_ms": round(statistics.median(latencies), 3),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }
    if exact_top is not None:
        hits = [len(set(a) & set(b)) / 10 for a, b in zip(tops, exact_top)]
        result["recall_at_10_vs_exact"] = round(float(np.mean(hits)), 4)
    return result, tops


def demo_throughput() -> dict:
    """Index the demo's images with the packaged encoders; time inside and outside them."""
    import torch

    import tonics.search as search
    from tonics.data.demo import build_demo
    from tonics.search import indexing

    root = build_demo().parent
    towers = indexing.load_towers(
        {"model": None, "baseline": ["packaged:minilm", "packaged:mobilenet_v2"]}
    )
    inside = [0.0]
    encode = towers.encode_pixels

    def timed(pixels):
        started = time.perf_counter()
        with torch.no_grad():
            out = encode(pixels)
        inside[0] += time.perf_counter() - started
        return out

    towers.encode_pixels = timed
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        report = search.build(root, Path(directory) / "ix", towers=towers)
        total = time.perf_counter() - started
        index = search.open(Path(directory) / "ix")
        index._towers = towers
        latencies = []
        for query in ("a red car", "a dog", "a pizza", "a tree", "a bicycle") * 10:
            started = time.perf_counter()
            index.text(query, k=10)
            latencies.append((time.perf_counter() - started) * 1000)
    return {
        "images": report["images"],
        "seconds": round(total, 1),
        "images_per_s": round(report["images"] / total, 1),
        "share_outside_encoder": round(1 - inside[0] / total, 3),
        "text_query_with_embedding_p50_ms": round(statistics.median(latencies), 2),
        "text_query_with_embedding_p99_ms": round(float(np.percentile(latencies, 99)), 2),
    }


def main() -> None:
    """Measure every size and kind and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args()
    queries = _unit_vectors(args.queries, args.width, seed=1)
    results: dict = {}
    for n in args.sizes:
        flat, exact_top = measure(n, "flat", queries, None)
        hnsw, _ = measure(n, "hnsw", queries, exact_top)
        results[str(n)] = {"flat": flat, "hnsw": hnsw}
        print(json.dumps({"size": n, "flat": flat, "hnsw": hnsw}), flush=True)  # progress
    if args.demo:
        results["demo"] = demo_throughput()
    print(
        json.dumps(
            {
                "benchmark": "search",
                "width": args.width,
                "queries": args.queries,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
