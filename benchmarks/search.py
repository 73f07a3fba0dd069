"""Search index costs: building and querying the vector index at 100k and 1M images (synthetic
256-d unit vectors), exact (flat) against approximate (IVF; HNSW where asked); and, with `--demo`,
indexing the demo's images with the packaged encoders (throughput, the share of time spent
outside the encoders, and text-query latency with the embedding included).

    python benchmarks/search.py [--sizes 100000 1000000] [--queries 200] [--hnsw-sizes 100000]
        [--data clustered iid] [--demo]

Two synthetic distributions:
- `iid`: independent Gaussian directions, the worst case for any approximate index (no
  neighbourhood structure: a query's 10th neighbour is barely nearer than a random vector);
- `clustered`: what a photo collection's embeddings look like: subjects of very unequal
  popularity (n/1000 clusters, Zipf-like sizes), each a centre plus noise of its own spread.
  Queries are held-out draws of the same distribution (not in the index).

Prints one JSON line: per distribution, size and kind, build seconds, bytes on disk, resident
bytes added, query latency p50/p99 (ms, one query at a time, the text embedding excluded) and
recall@10 against exact search; results go to `benchmarks/results/search.json`.
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
from common import results_dir

from tonics.search.vectors import build_vector_index, read_vector_index, write_vector_index

RESULTS = results_dir() / "search.json"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _normalised(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def synthetic(kind: str, n: int, queries: int, width: int, seed: int = 0):
    """(vectors, held-out queries) of distribution `kind` ('iid' or 'clustered')."""
    rng = np.random.default_rng(seed)
    total = n + queries
    if kind == "iid":
        rows = _normalised(rng.standard_normal((total, width), dtype=np.float32))
        return rows[:n], rows[n:]
    clusters = max(1, n // 1000)
    popularity = 1.0 / np.arange(1, clusters + 1) ** 0.8
    members = rng.choice(clusters, size=total, p=popularity / popularity.sum())
    centres = _normalised(rng.standard_normal((clusters, width), dtype=np.float32))
    spread = rng.uniform(0.6, 1.2, clusters).astype(np.float32)
    rows = np.empty((total, width), dtype=np.float32)
    for start in range(0, total, 100_000):
        part = members[start : start + 100_000]
        noise = rng.standard_normal((len(part), width), dtype=np.float32) / np.sqrt(width)
        rows[start : start + len(part)] = centres[part] + spread[part, None] * noise
    return _normalised(rows)[:n], _normalised(rows[n:].copy())


def measure(vectors: np.ndarray, kind: str, queries: np.ndarray, exact_top=None) -> tuple:
    """Build, write, reload and query one index; recall@10 against `exact_top` when given."""
    before = _rss_bytes()
    started = time.perf_counter()
    index = build_vector_index(vectors, kind)
    build_s = time.perf_counter() - started
    added = _rss_bytes() - before
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "index.faiss"
        write_vector_index(index, path)
        disk = path.stat().st_size if path.exists() else 0
        index = read_vector_index(path, kind, vectors)
    latencies, tops = [], []
    for query in queries:
        started = time.perf_counter()
        _, rows = index.search(query[None], 10)
        latencies.append((time.perf_counter() - started) * 1000)
        tops.append(rows[0])
    tops = np.array(tops)
    result = {
        "build_s": round(build_s, 2),
        "disk_bytes": disk + (vectors.nbytes if kind == "flat" else 0),
        "rss_added_bytes": added,
        "query_p50_ms": round(statistics.median(latencies), 3),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }
    if kind == "ivf":
        result["nprobe"], result["nlist"] = int(index.nprobe), int(index.nlist)
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
    """Measure every distribution, size and kind; print and write the JSON line as it grows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hnsw-sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--data", nargs="+", default=["clustered", "iid"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    results: dict = json.loads(RESULTS.read_text()).get("results", {}) if RESULTS.exists() else {}
    line = {"benchmark": "search", "width": args.width, "queries": args.queries, "note": args.note}
    for data in args.data:
        for n in args.sizes:
            vectors, queries = synthetic(data, n, args.queries, args.width)
            row = {}
            row["flat"], exact_top = measure(vectors, "flat", queries)
            row["ivf"], _ = measure(vectors, "ivf", queries, exact_top)
            if n in args.hnsw_sizes:
                row["hnsw"], _ = measure(vectors, "hnsw", queries, exact_top)
            results[f"{data}-{n}"] = row
            del vectors
            print(json.dumps({"data": data, "size": n, **row}), flush=True)  # progress
            RESULTS.write_text(json.dumps({**line, "results": results}, indent=1) + "\n")
    if args.demo:
        results["demo"] = demo_throughput()
        RESULTS.write_text(json.dumps({**line, "results": results}, indent=1) + "\n")
    print(json.dumps({**line, "results": results}))


if __name__ == "__main__":
    main()
