"""Search index costs at 100k and 1M vectors: exact (flat) search against IVF and HNSW indexes,
each tuned for a recall target by `tonics.search.tuning` (the code `tonics search index` runs), and
what `tonics search index` picks by default; with `--demo`, indexing the demo's images with the
packaged encoders (throughput, the share of time spent outside the encoders, and text-query
latency with the embedding included).

    python benchmarks/search.py [--sizes 100000 1000000] [--hnsw-sizes 100000 1000000]
        [--data text clustered iid] [--queries 200] [--recall 0.95] [--demo]

Three collections:
- `text`: real embeddings: the packaged text tower's (MiniLM, 384-d) vectors of distinct
  captions composed from the demo's human-written object names ('sunflower next to red apple');
  computed once (about an hour for 1M on 2 cores) and cached under `--cache`;
- `clustered`: synthetic, subjects of very unequal popularity (n/1000 clusters, Zipf-like sizes),
  each a centre plus noise of its own spread (256-d);
- `iid`: synthetic independent Gaussian directions, the worst case for any approximate index (no
  neighbourhood structure: a query's 10th neighbour is barely nearer than a random vector).
Queries are held-out draws of the same collection (not in the index).

Prints one JSON line: per collection, size and kind, build-and-tune seconds, the search parameters
chosen, the recall the tuning measured on the collection's own vectors, bytes on disk, resident
bytes added, query latency p50/p99 (ms, one query at a time, the text embedding excluded) and the
held-out queries' recall@10 against exact search; results go to `benchmarks/results/search.json`.
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
from common import results_dir, written_by

from tonics.search.tuning import (
    APPROXIMATE_ABOVE,
    DEFAULT_RECALL,
    apply_params,
    prefers_exact,
    tune,
)
from tonics.search.vectors import read_vector_index, write_vector_index

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


def measure(vectors: np.ndarray, kind: str, queries: np.ndarray, target: float) -> dict:
    """Build and tune one index (`tonics.search.tuning`, the code `tonics search index` runs),
    write and reload it, then query it with the held-out queries one at a time."""
    before = _rss_bytes()
    started = time.perf_counter()
    tuned = tune(vectors, kind, target=target, approximate_above=0)
    build_s = time.perf_counter() - started
    added = _rss_bytes() - before
    index = tuned.index
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "index.faiss"
        write_vector_index(index, path)
        disk = path.stat().st_size if path.exists() else 0
        index = read_vector_index(path, tuned.kind, vectors)
    apply_params(index, tuned.kind, tuned.params)
    latencies, tops = [], []
    for query in queries:
        started = time.perf_counter()
        _, rows = index.search(query[None], 10)
        latencies.append((time.perf_counter() - started) * 1000)
        tops.append(rows[0])
    result = {
        "build_and_tune_s": round(build_s, 2),
        "disk_bytes": disk + (vectors.nbytes if tuned.kind == "flat" else 0),
        "rss_added_bytes": added,
        "query_p50_ms": round(statistics.median(latencies), 3),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 3),
        **tuned.params,
        "tuned_recall_at_10_own_vectors": tuned.recall_at_10,
        "settings_tried": len(tuned.trials),
    }
    return result, np.array(tops), tuned


def held_out_recall(tops: np.ndarray, exact_top: np.ndarray) -> float:
    """Recall@10 of the held-out queries against exact search."""
    return round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops, exact_top)])), 4)


def measure_size(
    vectors: np.ndarray, queries: np.ndarray, hnsw: bool, target: float, ivf_too: bool = True
) -> dict:
    """Flat, tuned IVF (unless not `ivf_too`), tuned HNSW (when `hnsw`) and what `tonics search
    index` picks by default (exact up to APPROXIMATE_ABOVE vectors, then the tuned IVF index
    unless `prefers_exact`)."""
    row = {}
    row["flat"], exact_top, _ = measure(vectors, "flat", queries, target)
    if hnsw and not ivf_too:  # the graph alone, added to a row measured before
        row["hnsw"], tops, _ = measure(vectors, "hnsw", queries, target)
        row["hnsw"]["recall_at_10_vs_exact"] = held_out_recall(tops, exact_top)
        row["hnsw"]["written_by"] = written_by()
        return row
    row["ivf"], tops, ivf = measure(vectors, "ivf", queries, target)
    row["ivf"]["recall_at_10_vs_exact"] = held_out_recall(tops, exact_top)
    if hnsw:
        row["hnsw"], tops, _ = measure(vectors, "hnsw", queries, target)
        row["hnsw"]["recall_at_10_vs_exact"] = held_out_recall(tops, exact_top)
    exact = len(vectors) <= APPROXIMATE_ABOVE or prefers_exact(ivf, len(vectors))
    chosen = "flat" if exact else "ivf"
    row["auto"] = {"kind": chosen, "recall_target": target, **row[chosen]}
    row["auto"].setdefault("recall_at_10_vs_exact", 1.0)
    return row


COMPOSING_TEMPLATES = ("{} and {}", "{} next to {}", "{} with {}", "{} beside {}")
HELD_OUT = 1000  # held-out composed captions: the queries of the real-embedding rows


def composed_captions(n: int, seed: int = 0, demo_root: str | None = None) -> list[str]:
    """n distinct captions, each two of the demo's human-written object names (its captions of at
    most 2 words) joined by a template ('A and B', 'A next to B', ...)."""
    from tonics.data.demo import build_demo

    images = json.loads(build_demo(demo_root).read_text())["images"]
    names = sorted(  # object names: the short captions (2 words at most, not keyword lists)
        {
            s["raw"].strip()
            for i in images
            for s in i["sentences"]
            if 0 < len(s["raw"].split()) <= 2 and not set(",:") & set(s["raw"])
        }
    )
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int, int]] = set()
    while len(chosen) < n:
        draw = rng.integers(0, [len(names), len(names), len(COMPOSING_TEMPLATES)], size=(n, 3))
        chosen.update(tuple(int(v) for v in row) for row in draw if row[0] != row[1])
    ordered = sorted(chosen)
    picked = [ordered[i] for i in np.sort(rng.permutation(len(ordered))[:n])]
    return [COMPOSING_TEMPLATES[t].format(names[a], names[b]) for a, b, t in picked]


def text_tower_vectors(largest: int, cache: Path, demo_root: str | None = None) -> np.ndarray:
    """The packaged text tower's (MiniLM) mean-pooled, L2-normalised embeddings (384-d) of
    `largest` + HELD_OUT distinct composed captions; cached in `cache` (an hour on 2 cores)."""
    import torch
    from tqdm import tqdm

    from tonics.model.encoders import TextEncoder, load_tokenizer

    file = cache / f"minilm-{largest + HELD_OUT}.npy"
    if not file.exists():
        captions = composed_captions(largest + HELD_OUT, demo_root=demo_root)
        tokenizer = load_tokenizer("packaged:minilm")
        encoder = TextEncoder.from_name("packaged:minilm", "mean").eval()
        cache.mkdir(parents=True, exist_ok=True)
        partial, done_file = file.with_suffix(".partial.npy"), file.with_suffix(".done")
        done = int(done_file.read_text()) if done_file.exists() and partial.exists() else 0
        shape = (len(captions), encoder.output_dim)
        rows = np.lib.format.open_memmap(
            partial, mode="r+" if done else "w+", dtype=np.float32, shape=shape
        )
        order = np.argsort([len(c) for c in captions], kind="stable")  # little padding a batch
        with torch.inference_mode():  # resumable: `done` counts the batches already written
            for start in tqdm(range(done, len(captions), 1024), desc="embedding captions"):
                part = order[start : start + 1024]
                batch = tokenizer(
                    [captions[i] for i in part],
                    padding=True,
                    truncation=True,
                    max_length=16,
                    return_tensors="pt",
                )
                out = encoder(batch["input_ids"], batch["attention_mask"])
                rows[part] = torch.nn.functional.normalize(out, dim=-1).numpy()
                if (start // 1024) % 20 == 19:
                    rows.flush()
                    done_file.write_text(str(start + len(part)))
        rows.flush()
        del rows
        partial.replace(file)
        done_file.unlink(missing_ok=True)
    return np.load(file, mmap_mode="r")


def real_text(
    n: int, queries: int, largest: int, cache: Path, demo_root: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(n indexed vectors, held-out queries) from `text_tower_vectors`: the queries are the same
    HELD_OUT rows at every size, the indexed rows the first n of a seeded order of the rest."""
    rows = text_tower_vectors(largest, cache, demo_root)
    order = np.random.default_rng(1).permutation(len(rows))
    held, rest = order[:HELD_OUT], order[HELD_OUT:]
    return (
        np.ascontiguousarray(rows[np.sort(rest[:n])]),
        np.ascontiguousarray(rows[np.sort(held[:queries])]),
    )


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


KIND_NAMES = {
    "flat": "exact",
    "ivf": "IVF, tuned",
    "hnsw": "HNSW, tuned",
    "auto": "default (`auto`)",
}


def _setting(figures: dict) -> str:
    if "nprobe" in figures:
        return f"{figures['nprobe']} of {figures['nlist']} cells"
    if "ef_search" in figures:
        return f"efSearch {figures['ef_search']}"
    return "exact"


def report(results: dict) -> str:
    """search.md: one line per collection, size and index, from the rows of search.json."""
    lines = [
        "# Vector search costs",
        "",
        "Generated by `python benchmarks/search.py --report` from `search.json` (each row's",
        "command and commit: its `written_by` there). Queries one at a time, embedding excluded.",
        "",
        "| vectors | index | chosen setting | build + tune | query p50 / p99 | recall@10: own "
        "vectors (tuning) / held-out queries | commit |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        data, _, size = name.rpartition("-")
        if not size.isdigit():
            continue
        label = f"{int(size) / 1e6:g}M" if int(size) >= 10**6 else f"{int(size) // 1000}k"
        for kind in ("flat", "ivf", "hnsw", "auto"):
            if kind not in row:
                continue
            f = row[kind]
            index = KIND_NAMES[kind] + (f": **{f['kind']}**" if kind == "auto" else "")
            recall = f"{f.get('tuned_recall_at_10_own_vectors', '-')} / "
            recall += f"{f.get('recall_at_10_vs_exact', 1.0 if kind == 'flat' else '-')}"
            build = f"{f['build_and_tune_s']} s" if "build_and_tune_s" in f else "-"
            if kind == "auto" and f["kind"] == "flat" and int(size) > APPROXIMATE_ABOVE:
                tried = row["ivf"]["build_and_tune_s"]  # the IVF sweep came first, then exact
                build = f"{round(tried + f['build_and_tune_s'], 2)} s (IVF tried first)"
            lines.append(
                f"| {label} {data} | {index} | {_setting(f)} | {build} | "
                f"{f['query_p50_ms']} / {f['query_p99_ms']} ms | {recall} | "
                f"{f.get('written_by', row.get('written_by', {})).get('commit', '-')} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure every distribution, size and kind; print and write the JSON line as it grows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hnsw-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--data", nargs="+", default=["text", "clustered", "iid"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--width", type=int, default=256, help="of the synthetic vectors")
    parser.add_argument("--recall", type=float, default=DEFAULT_RECALL, help="the tuning target")
    parser.add_argument("--cache", default="runs/search_vectors", help="text-tower embeddings")
    parser.add_argument("--demo-root", help="the demo's folder (default: tonics' cache)")
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--note", default="")
    parser.add_argument("--report", action="store_true", help="write search.md and stop")
    parser.add_argument(
        "--hnsw-only",
        action="store_true",
        help="measure only the HNSW graph (and exact search for its held-out recall), adding it "
        "to each row measured before",
    )
    args = parser.parse_args()
    if args.report:
        rows = json.loads(RESULTS.read_text())["results"]
        (RESULTS.parent / "search.md").write_text(report(rows))
        return
    if not 1 <= args.queries <= HELD_OUT:
        parser.error(f"--queries must be in 1..{HELD_OUT}")
    results: dict = json.loads(RESULTS.read_text()).get("results", {}) if RESULTS.exists() else {}
    line = {
        "benchmark": "search",
        "width": args.width,
        "queries": args.queries,
        "recall_target": args.recall,
        "note": args.note,
        "provenance": "each row's written_by: the command and commit that measured it",
    }
    for data in args.data:
        for n in args.sizes:
            if data == "text":
                vectors, queries = real_text(
                    n, args.queries, max(args.sizes), Path(args.cache), args.demo_root
                )
            else:
                vectors, queries = synthetic(data, n, args.queries, args.width)
            hnsw = n in args.hnsw_sizes
            row = measure_size(vectors, queries, hnsw, args.recall, not args.hnsw_only)
            if args.hnsw_only:  # the rest of the row stays as it was measured
                kept = results.get(f"{data}-{n}", {})
                results[f"{data}-{n}"] = {**kept, "hnsw": row["hnsw"]}
            else:
                results[f"{data}-{n}"] = {
                    "dim": int(vectors.shape[1]),
                    **row,
                    "written_by": written_by(),
                }
            del vectors
            print(json.dumps({"data": data, "size": n, **row}), flush=True)  # progress
            RESULTS.write_text(json.dumps({**line, "results": results}, indent=1) + "\n")
    if args.demo:
        results["demo"] = {**demo_throughput(), "written_by": written_by()}
        RESULTS.write_text(json.dumps({**line, "results": results}, indent=1) + "\n")
    print(json.dumps({**line, "results": results}))


if __name__ == "__main__":
    main()
