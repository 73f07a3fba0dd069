"""Scale simulation: what a Conceptual-Captions-sized corpus costs tonics on one machine.

    python benchmarks/scale.py [--sizes 300000 1000000 12000000] [--work /tmp/tonics-scale]
        [--keep] [--reuse] [--no-save]

For each size it writes a synthetic CC-like corpus (img2dataset webdataset layout, 10,000 pairs a
shard, one caption per image; captions composed from WordNet noun lemmas with a heavy-tailed
frequency, tiny generated JPEGs) and measures, each phase in a fresh process (so peak RSS is the
phase's own):

- index: build time and size of the shard index (`tonics index`);
- table: writing the memory-mapped pair table from the index (once per corpus);
- ontology: building it from the captions (time, peak RSS);
- start-up, what every rank does before its first step: records (the pair table) from the index,
  the cached ontology, the batch sampler and each batch kind's state (time, peak RSS);
- second: the memory a second rank adds on the same machine (PSS of both after - PSS of the
  first alone: pages both map are shared) and its start-up time;
- sampling: per-batch time of each batch kind (batch 256), against a 0.3 s GPU step (ViT-B/32,
  batch 256); a rank draws every rank's batch of a step, so multiply by the world size;
- reads: a random image read through the index against the same bytes as a plain file;
- feature cache: a sharded, memory-mapped store of the corpus (narrow fp16 rows): build, open and
  per-batch lookup times; bytes per pair for real encoder widths from the measured layout.

Each size's figures are merged into `benchmarks/results/scale.json` as it finishes (other sizes
kept; `--no-save` prints only). Prints a Markdown table (with a column extrapolated to 12M pairs
when 12M was not measured) and one JSON line. Targets at the largest size (CC12M, 12M pairs):
start-up < 30 s and < 2 GB peak RSS per process, < 0.5 GB added by a second process, ontology
build < 6 GB, sampling < 1% of a 0.3 s step, index read <= 2x a plain file read. `--reuse` with
`--keep`: measure a corpus (and its index) a previous run left instead of writing them again.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
from common import results_dir

PER_SHARD = 10_000
BATCH = 256
STEP_S = 0.3  # ViT-B/32, batch 256, one GPU: the reference step
WIDTHS = {"MobileNetV2 + MiniLM": (1280, 384), "ViT-B/16 + BERT-base": (768, 768)}
TARGETS = {  # at the largest size measured (12M pairs: CC12M)
    "startup_s": 30.0,
    "startup_rss_gb": 2.0,
    "second_added_pss_gb": 0.5,
    "ontology_rss_gb": 6.0,
    "sampling_share": 0.01,
    "read_ratio": 2.0,
}
RESULTS = results_dir() / "scale.json"


def peak_rss_gb() -> float:
    """This process's peak resident set size so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ---------------------------------------------------------------- corpus


def _vocabulary(rng: random.Random) -> list[str]:
    """Single-word noun lemmas of physical things from the installed WordNet."""
    from tonics.ontology.wordnet import load_wordnet

    wn = load_wordnet()
    words = set()
    for root in (
        "animal.n.01",
        "artifact.n.01",
        "food.n.02",
        "plant.n.02",
        "person.n.01",
        "natural_object.n.01",
        "geological_formation.n.01",
    ):
        for synset in wn.synset(root).closure(lambda s: s.hyponyms()):
            words.update(name for name in synset.lemma_names() if name.isalpha() and name.islower())
    words = sorted(words)
    rng.shuffle(words)
    return words


ADJECTIVES = ["red", "small", "old", "large", "white", "wooden", "black", "young", "green", "blue"]
PLACES = ["on", "near", "under", "beside", "in front of", "behind", "with", "in"]


def _captions(n: int, seed: int):
    """`n` captions of 1-3 WordNet nouns, drawn with a Zipf-like frequency (a few nouns in many
    captions, most in few), as in web alt-text."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    weights = 1.0 / np.arange(1, len(words) + 1) ** 1.1
    cumulative = np.cumsum(weights / weights.sum())
    picks = np.searchsorted(cumulative, np.random.default_rng(seed).random((n, 3)))
    for i in range(n):
        a, b, c = (words[j] for j in picks[i])
        form = i % 3
        if form == 0:
            yield f"a {rng.choice(ADJECTIVES)} {a} {rng.choice(PLACES)} the {b}"
        elif form == 1:
            yield f"{a} and {b} {rng.choice(PLACES)} a {rng.choice(ADJECTIVES)} {c}"
        else:
            yield f"the {a} of a {b}"


def _member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512)


def write_corpus(root: Path, pairs: int, seed: int = 0) -> float:
    """img2dataset-layout shards of `pairs` pairs; returns seconds taken."""
    from PIL import Image

    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    jpegs = []
    for _ in range(512):  # a pool of tiny JPEGs: content does not matter for these costs
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), tuple(rng.randrange(256) for _ in range(3))).save(buffer, "JPEG")
        jpegs.append(buffer.getvalue())
    captions = _captions(pairs, seed)
    for start in range(0, pairs, PER_SHARD):
        shard = start // PER_SHARD
        with open(root / f"{shard:05d}.tar", "wb") as out:
            for n in range(start, min(pairs, start + PER_SHARD)):
                key = f"{shard:05d}{n - start:04d}"
                out.write(_member(f"{key}.jpg", jpegs[n % len(jpegs)]))
                out.write(_member(f"{key}.txt", next(captions).encode()))
            out.write(b"\0" * 1024)
    return time.perf_counter() - started


# ---------------------------------------------------------------- phases (each in its own process)


def _stages():
    from tonics.sampling import Curriculum, Stage

    return Curriculum(
        [
            Stage(name="random", mix={"random": 1.0}, steps=1),
            Stage(name="diverse", mix={"diverse": 1.0}, steps=1),
            Stage(name="fine", mix={"ontology": 1.0}, steps=1, nodes={"granularity": "fine"}),
            Stage(
                name="depth",
                mix={"ontology": 1.0},
                steps=1,
                nodes={"granularity": "depth", "min_depth": 4, "max_depth": 7},
            ),
            Stage(
                name="objects",
                mix={"ontology": 1.0},
                steps=1,
                nodes={"granularity": "fine", "object_nodes_only": True},
            ),
            Stage(
                name="siblings", mix={"ontology": 1.0}, nodes={"granularity": "fine", "siblings": 4}
            ),
        ]
    )


def phase_index(corpus: Path) -> dict:
    from tonics.data.shard_index import build_index, save_index

    started = time.perf_counter()
    index = build_index(sorted(corpus.glob("*.tar")))
    path = save_index(index, corpus / "index.parquet", "txt")
    return {
        "index_build_s": time.perf_counter() - started,
        "index_bytes": path.stat().st_size,
        "index_rss_gb": peak_rss_gb(),
    }


def _records(corpus: Path):
    from tonics.data.readers import WebDatasetReader

    return WebDatasetReader(str(corpus / "*.tar"), index=str(corpus / "index.parquet")).read()


def phase_ontology(corpus: Path) -> dict:
    from tonics.ontology.index import ontology_for_records

    shutil.rmtree(corpus / "ontology", ignore_errors=True)  # measured from scratch
    records = _records(corpus)
    started = time.perf_counter()
    ontology = ontology_for_records(records, cache=corpus / "ontology")
    return {
        "ontology_build_s": time.perf_counter() - started,
        "ontology_rss_gb": peak_rss_gb(),
        "ontology_nodes": ontology.graph.number_of_nodes(),
        "coverage": ontology.coverage(),
    }


def _start(corpus: Path) -> tuple[dict, dict, object]:
    """What a rank does before its first step; (timings, batch kinds by stage, ontology)."""
    started = time.perf_counter()
    from tonics.ontology.index import ontology_for_records

    from tonics.data.records import group_codes
    from tonics.sampling.sampler import CurriculumBatchSampler

    imports_s = time.perf_counter() - started  # torch, transformers...: paid by any run, any size
    started = time.perf_counter()
    records = _records(corpus)
    records_s = time.perf_counter() - started
    ontology = ontology_for_records(records, cache=corpus / "ontology")
    ontology_s = time.perf_counter() - started - records_s
    codes_started = time.perf_counter()
    images, captions = (np.asarray(codes) for codes in group_codes(records))
    codes_s = time.perf_counter() - codes_started
    curriculum = _stages()
    sampler = CurriculumBatchSampler(
        ontology, curriculum, batch_size=BATCH, pair_images=images, pair_captions=captions
    )
    kinds = {
        stage.name: sampler._kind(i, next(iter(stage.mix)))
        for i, stage in enumerate(curriculum.stages)
    }
    startup_s = time.perf_counter() - started
    result = {
        "startup_s": startup_s,
        "startup_records_s": records_s,
        "startup_imports_s": imports_s,
        "startup_codes_s": codes_s,
        "startup_kinds_s": startup_s - records_s - ontology_s - codes_s,
        "startup_ontology_s": ontology_s,
        "startup_rss_gb": peak_rss_gb(),
    }
    return result, kinds, ontology


def phase_startup(corpus: Path) -> dict:
    result, kinds, ontology = _start(corpus)
    rng = np.random.default_rng(0)
    for name, kind in kinds.items():
        available = np.ones(len(ontology), dtype=bool)
        times = []
        for _ in range(40):
            t = time.perf_counter()
            kind.draw(available, BATCH, rng)
            times.append(time.perf_counter() - t)
        result[f"sample_{name}_ms"] = 1000 * float(np.median(times[1:]))
    return result


def phase_hold(corpus: Path) -> dict:
    """Start up, report, then hold everything until stdin closes (for `measure_second`)."""
    result, kinds, ontology = _start(corpus)
    print(json.dumps(result), flush=True)
    sys.stdin.read()
    return {"kinds": len(kinds), "pairs": len(ontology)}


def _pss_gb(pid: int) -> float:
    """A process's proportional set size: its private pages plus its share of shared ones."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024**2
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def measure_second(corpus: Path) -> dict:
    """The memory a second rank adds on the same machine: start one process, then a second on
    the same files while the first holds its state; added = the two PSS after - the first's
    PSS before (pages both map from the page cache are shared, not added)."""
    command = [sys.executable, __file__, "--phase", "hold", "--corpus", str(corpus)]
    first = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    second = None
    try:
        json.loads(first.stdout.readline())
        alone = _pss_gb(first.pid)
        second = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        second_start = json.loads(second.stdout.readline())
        together = _pss_gb(first.pid) + _pss_gb(second.pid)
        return {
            "first_pss_gb": alone,
            "second_added_pss_gb": together - alone,
            "second_startup_s": second_start["startup_s"],
            "second_startup_rss_gb": second_start["startup_rss_gb"],
        }
    finally:
        for process in (first, second):
            if process is not None:
                process.stdin.close()
                process.wait(timeout=120)


def phase_table(corpus: Path) -> dict:
    """Write the pair table from the index (what the first start-up on a corpus does once)."""
    from tonics.data.readers.webdataset import pair_table_for, table_path

    index = corpus / "index.parquet"
    table_path(index, "train").unlink(missing_ok=True)  # measured from scratch
    started = time.perf_counter()
    table = pair_table_for(index, "train")
    return {
        "table_write_s": time.perf_counter() - started,
        "table_rss_gb": peak_rss_gb(),
        "table_bytes": table.path.stat().st_size,
    }


def phase_reads(corpus: Path, reads: int = 2000) -> dict:
    from tonics.data.images import read_bytes

    records = _records(corpus)
    picks = random.Random(1).sample(range(len(records)), reads)
    files = corpus / "files"
    files.mkdir(exist_ok=True)
    for n in picks:
        (files / f"{n}.jpg").write_bytes(read_bytes(records[n].image))
    index_times, file_times = [], []
    for n in picks:  # alternating, so that noise hits both alike
        t = time.perf_counter()
        read_bytes(records[n].image)
        index_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        with open(files / f"{n}.jpg", "rb") as handle:
            handle.read()
        file_times.append(time.perf_counter() - t)
    index_us, file_us = 1e6 * float(np.median(index_times)), 1e6 * float(np.median(file_times))
    return {"read_index_us": index_us, "read_file_us": file_us, "read_ratio": index_us / file_us}


def phase_feature_cache(corpus: Path, width: int = 8) -> dict:
    import torch

    from tonics.cache.store import load_or_build

    image_ids = list(_records(corpus).pair_ids)  # a web corpus: one image per pair

    def build(pairs, description):
        n = len(pairs)
        return {
            "pair_image": torch.arange(n),
            "image": torch.zeros(n, width, dtype=torch.float16),
            "text": torch.zeros(n, width, dtype=torch.float16),
        }, {}

    directory = corpus / "features"
    shutil.rmtree(directory, ignore_errors=True)  # measured from scratch
    started = time.perf_counter()
    load_or_build(directory, "scale", image_ids, build)
    build_s = time.perf_counter() - started
    before = peak_rss_gb()
    started = time.perf_counter()
    store = load_or_build(directory, "scale", image_ids, build)
    open_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    times = []
    for _ in range(50):
        pairs = torch.from_numpy(rng.choice(len(image_ids), BATCH, replace=False))
        t = time.perf_counter()
        store.images_of("image", pairs)
        store.per_pair("text", pairs)
        times.append(time.perf_counter() - t)
    per_pair = store.nbytes / len(image_ids)
    overhead = per_pair - 2 * width * 2  # the index arrays every pair carries
    result = {
        "cache_build_s": build_s,
        "cache_open_s": open_s,
        "cache_lookup_ms": 1000 * float(np.median(times[1:])),
        "cache_overhead_bytes_per_pair": overhead,
        "cache_open_rss_gb": peak_rss_gb(),
        "cache_rss_before_open_gb": before,
    }
    for name, (image, text) in WIDTHS.items():
        result[f"cache_bytes_per_pair {name} fp16"] = overhead + 2 * (image + text)
    return result


PHASES = {
    "index": phase_index,
    "table": phase_table,
    "ontology": phase_ontology,
    "startup": phase_startup,
    "second": lambda corpus: measure_second(corpus),
    "reads": phase_reads,
    "feature_cache": phase_feature_cache,
}


def run_phase(name: str, corpus: Path) -> dict:
    """One phase in a fresh interpreter; its JSON result."""
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--corpus", str(corpus)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def extrapolate(sizes: list[int], values: list[float], target: int) -> float:
    """Least-squares line through (size, value), read at `target`."""
    slope, intercept = np.polyfit(np.array(sizes, float), np.array(values, float), 1)
    return float(slope * target + intercept)


ROWS = [  # (key, label, format)
    ("corpus_write_s", "write synthetic shards (s)", "{:.0f}"),
    ("index_build_s", "index build (s)", "{:.1f}"),
    ("index_bytes", "index size (MB)", "mb"),
    ("table_write_s", "pair table write, once (s)", "{:.1f}"),
    ("table_bytes", "pair table size (MB)", "mb"),
    ("table_rss_gb", "pair table write peak RSS (GB)", "{:.2f}"),
    ("ontology_build_s", "ontology build (s)", "{:.0f}"),
    ("ontology_rss_gb", "**ontology build peak RSS (GB)** (target < 6)", "{:.2f}"),
    ("startup_records_s", "start-up: records from the index (s)", "{:.1f}"),
    ("startup_ontology_s", "start-up: cached ontology (s)", "{:.1f}"),
    ("startup_codes_s", "start-up: image and caption codes (s)", "{:.1f}"),
    ("startup_kinds_s", "start-up: sampler and its 6 batch kinds (s)", "{:.1f}"),
    ("startup_s", "**start-up total, with sampler (s)** (target < 30)", "{:.1f}"),
    ("startup_rss_gb", "**start-up peak RSS (GB)** (target < 2)", "{:.2f}"),
    ("first_pss_gb", "one process after start-up, PSS (GB)", "{:.2f}"),
    ("second_added_pss_gb", "**memory a second process adds, PSS (GB)** (target < 0.5)", "{:.2f}"),
    ("second_startup_s", "second process start-up, same files (s)", "{:.1f}"),
    (
        "startup_imports_s",
        "imports before start-up (torch, transformers; s, not counted)",
        "{:.1f}",
    ),
    *[
        (f"sample_{k}_ms", f"sampling, {k} batch of 256 (ms)", "{:.2f}")
        for k in ("random", "diverse", "fine", "depth", "objects", "siblings")
    ],
    ("sampling_share", "**slowest kind / 0.3 s step** (target < 1%)", "pct"),
    ("read_index_us", "image read by index (us)", "{:.1f}"),
    ("read_file_us", "same bytes, plain file (us)", "{:.1f}"),
    ("read_ratio", "**index / plain file** (target <= 2x)", "{:.2f}x"),
    ("cache_build_s", "feature store write, 8-wide fp16 rows (s)", "{:.1f}"),
    ("cache_open_s", "feature store open (s)", "{:.2f}"),
    ("cache_lookup_ms", "feature lookup, batch of 256 (ms)", "{:.2f}"),
    *[
        (f"cache_bytes_per_pair {k} fp16", f"feature cache bytes/pair, {k}, fp16", "{:.0f}")
        for k in WIDTHS
    ],
    *[(f"cache_gb {k} fp16", f"feature cache on disk, {k}, fp16 (GB)", "{:.1f}") for k in WIDTHS],
]


def _cell(value: float, style: str) -> str:
    if style == "mb":
        return f"{value / 1e6:.1f}"
    if style == "pct":
        return f"{100 * value:.3f}%"
    return style.format(value)


def table(results: dict[int, dict], extra: int = 12_000_000) -> str:
    """Markdown table: one column per measured size, and one extrapolated to `extra` pairs when
    that size was not measured."""
    sizes = sorted(results)
    if extra in results:
        return _measured_table(results, sizes)
    lines = [
        "| | "
        + " | ".join(f"{s / 1e6:g}M pairs" for s in sizes)
        + f" | {extra / 1e6:g}M (extrapolated) |",
        "|---" * (len(sizes) + 2) + "|",
    ]
    for key, label, style in ROWS:
        values = [results[s].get(key) for s in sizes]
        if any(v is None for v in values):
            continue
        linear = (
            key
            not in (
                "startup_imports_s",
                "corpus_write_s",
                "read_index_us",
                "read_file_us",
                "read_ratio",
                "cache_lookup_ms",
            )
            and "per_pair" not in key
            and not key.startswith("sample")
        )
        far = extrapolate(sizes, values, extra) if linear and len(sizes) > 1 else values[-1]
        lines.append(
            f"| {label} | "
            + " | ".join(_cell(v, style) for v in values)
            + f" | {_cell(far, style)} |"
        )
    return "\n".join(lines)


def _measured_table(results: dict[int, dict], sizes: list[int]) -> str:
    lines = [
        "| | " + " | ".join(f"{s / 1e6:g}M pairs" for s in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
    ]
    for key, label, style in ROWS:
        values = [results[s].get(key) for s in sizes]
        if all(v is None for v in values):
            continue
        cells = ["-" if v is None else _cell(v, style) for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _met(figures: dict) -> dict:
    """Each target: met or not, at these figures (absent figures are left out)."""
    met = {}
    for key, limit in TARGETS.items():
        if key in figures:
            met[key] = figures[key] <= limit if key == "read_ratio" else figures[key] < limit
    return met


def _save(results: dict[int, dict], started: float) -> dict:
    """Merge these sizes into the committed results file (other sizes kept) and write it."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    merged = {int(k): v for k, v in previous.get("results", {}).items()}
    merged.update(results)
    largest = merged[max(merged)]
    summary = {
        "benchmark": "scale",
        "sizes": sorted(merged),
        "seconds": round(time.perf_counter() - started),
        "cpu_count": os.cpu_count(),
        "targets": TARGETS,
        "met_at_largest": _met(largest),
        "results": {str(k): merged[k] for k in sorted(merged)},
    }
    RESULTS.write_text(json.dumps(summary) + "\n")
    return summary


def main() -> None:
    """Build each corpus, run each phase, print the table and one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[300_000, 1_000_000, 3_300_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tonics-scale"))
    parser.add_argument("--keep", action="store_true", help="keep each corpus on disk")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure a corpus a --keep run left instead of writing it again",
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=list(PHASES),
        help="with --reuse: measure only these phases again, keeping the size's other figures "
        "from the results file",
    )
    parser.add_argument(
        "--report", action="store_true", help=f"write scale.md from {RESULTS.name} and stop"
    )
    parser.add_argument("--phase", choices=sorted([*PHASES, "hold"]), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-save", action="store_true", help="do not merge the figures into " + str(RESULTS)
    )
    args = parser.parse_args()
    if args.report:
        from scale_report import report

        (RESULTS.parent / "scale.md").write_text(report(RESULTS, _measured_table) + "\n")
        return
    if args.phase:
        print(json.dumps((phase_hold if args.phase == "hold" else PHASES[args.phase])(args.corpus)))
        return
    started, results = time.perf_counter(), {}
    for size in args.sizes:
        corpus = args.work / f"corpus-{size}"
        if args.reuse and (corpus / "complete").is_file():
            results[size] = json.loads((corpus / "complete").read_text())
            if args.phases and RESULTS.is_file():  # the figures of the phases not re-measured
                previous = json.loads(RESULTS.read_text())["results"].get(str(size), {})
                results[size] = {**previous, **results[size]}
        else:
            shutil.rmtree(corpus, ignore_errors=True)
            results[size] = {"corpus_write_s": write_corpus(corpus, size)}
            (corpus / "complete").write_text(json.dumps(results[size]))
        for name in PHASES:
            if args.phases and name not in args.phases:
                continue
            kept = corpus / "index.json"
            if name == "index" and args.reuse and kept.is_file():  # the shards did not change
                results[size].update(json.loads(kept.read_text()))
                continue
            results[size].update(run_phase(name, corpus))
            if name == "index":
                kept.write_text(json.dumps({k: results[size][k] for k in results[size]}))
            print(
                f"[{size}] {name} done, {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        figures = results[size]
        figures["sampling_share"] = (
            max(v for k, v in figures.items() if k.startswith("sample_")) / 1000 / STEP_S
        )
        for name in WIDTHS:
            figures[f"cache_gb {name} fp16"] = (
                figures[f"cache_bytes_per_pair {name} fp16"] * size / 1e9
            )
        if not args.no_save:
            _save({size: figures}, started)
        if not args.keep:
            shutil.rmtree(corpus, ignore_errors=True)
    print(table(results))
    at = results[max(results)]
    print(
        json.dumps(
            {
                "benchmark": "scale",
                "sizes": sorted(results),
                "seconds": round(time.perf_counter() - started),
                "cpu_count": os.cpu_count(),
                "targets": TARGETS,
                "met_at_largest": _met(at),
                "results": {str(k): v for k, v in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
