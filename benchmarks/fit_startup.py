"""Start-up of `tonics fit` itself on a Conceptual-Captions-sized corpus, with several ranks and
DataLoader workers: the seconds from the command to the end of its first optimiser step, and the
memory of every process of the run at that moment.

    python benchmarks/fit_startup.py [--pairs 12000000] [--ranks 2] [--workers 4]
        [--work /tmp/tonics-fit-startup] [--real-pairs 200000] [--keep] [--no-save]

The corpus: `--real-pairs` pairs in real img2dataset webdataset shards (the synthetic CC-like
shards of `benchmarks/scale.py`), and a shard index of `--pairs` entries that point into them in
turn, each with a caption of its own (the same heavy-tailed WordNet-noun captions) and a key of its
own, so the run sees `--pairs` distinct pairs without that many images on disk. The run: the
packaged towers (frozen, read live), the Conceptual Captions config's stages, batch 64, on the CPU
with Lightning's DDP (gloo) over `--ranks` processes of `--workers` workers each.

Three launches, each timed from the command to its first optimiser step (`first_step_probe.py`):
- first: nothing cached yet: the run writes the pair table beside the index and builds the
  ontology into the cache (once per corpus, as `tonics index` / `tonics ontology build` would);
- cold: the same run again after the kernel's page cache is dropped (every file it reads, the
  Python environment included, comes from disk);
- warm: the same run again at once.
At the first step of each, the PSS, USS and RSS of every process (ranks and workers); the summed
PSS of a rank with its workers is what the node holds for that rank. The per-node figure for
8 ranks x 8 workers is computed, not measured: the pages the processes share (summed PSS - summed
USS) once, plus 8 ranks' and 64 workers' private pages at the measured means.

Merged into `benchmarks/results/scale.json` under the size (keys name the ranks and workers, e.g.
`fit_2x4_warm_s`); `benchmarks/scale.py --report` writes `scale.md` from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import results_dir, written_by

HERE = Path(__file__).resolve().parent
STAGES = """
  stages:
    - name: diverse
      mix: {diverse: 0.5, random: 0.5}
      steps: 5000
    - name: coarse
      mix: {ontology: 0.7, random: 0.3}
      nodes: {granularity: depth, min_depth: 4, max_depth: 7}
      steps: 10000
    - name: fine
      mix: {ontology: 1.0}
"""


def write_corpus(work: Path, pairs: int, real_pairs: int) -> dict:
    """Real shards of `real_pairs` pairs and an index of `pairs` entries pointing into them."""
    from scale import _captions
    from scale import write_corpus as write_shards

    from tonics.data.shard_index import ShardIndex, build_index, save_index

    started = time.perf_counter()
    write_shards(work / "shards", real_pairs)
    shards = sorted((work / "shards").glob("*.tar"))
    real = build_index(shards)
    turn = np.arange(pairs) % len(real)
    tiled = ShardIndex(
        shards=real.shards,
        shard=np.asarray(real.shard, np.int32)[turn],
        offset=np.asarray(real.offset, np.int64)[turn],
        size=np.asarray(real.size, np.int64)[turn],
        member=[f"{n:09d}.jpg" for n in range(pairs)],
        caption=list(_captions(pairs, seed=0)),
    )
    index = save_index(tiled, work / "index.parquet", "txt")
    return {
        "real_pairs": len(real),
        "real_shards": len(shards),
        "corpus_s": round(time.perf_counter() - started, 1),
        "index_bytes": index.stat().st_size,
    }


def write_config(work: Path, ranks: int, workers: int) -> Path:
    """The run's config: packaged towers, the corpus, CC's stages, DDP on the CPU."""
    config = f"""seed_everything: 0
model:
  spec:
    text_encoder: packaged:minilm
    vision_encoder: packaged:mobilenet_v2
    text_pooling: mean
    vision_pooling: pooled
    embed_dim: 256
    head: linear
data:
  reader:
    class_path: tonics.data.readers.WebDatasetReader
    init_args:
      shards: {work / "shards"}/*.tar
      index: {work / "index.parquet"}
  loader:
    batch_size: 64
    num_workers: {workers}
    persistent_workers: true
  evaluation:
    split: train
    max_pairs: 1000
{STAGES}
trainer:
  accelerator: cpu
  devices: {ranks}
  strategy: ddp
  max_steps: 100
  limit_val_batches: 0
  num_sanity_val_steps: 0
  default_root_dir: {work / "runs"}
"""
    path = work / "fit.yaml"
    path.write_text(config)
    return path


def drop_page_cache() -> str:
    """Empty the kernel's page cache (root only); how it was done, for the record."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "echo 3 > /proc/sys/vm/drop_caches"
    except OSError as err:
        raise SystemExit(f"fit_startup: cannot drop the page cache ({err}); run as root") from err


def launch(config: Path, work: Path, timeout: float) -> dict:
    """Run `tonics fit` until rank 0's first optimiser step; seconds and processes then."""
    probe = work / "probe.json"
    probe.unlink(missing_ok=True)
    env = {
        **os.environ,
        "TONICS_CACHE": str(work / "cache"),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "tonics.cli",
        "fit",
        "--config",
        str(config),
        "--trainer.callbacks+=first_step_probe.FirstStepProbe",
        f"--trainer.callbacks.out={probe}",
    ]
    log = open(work / "fit.log", "ab")
    started = time.time()
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=log, start_new_session=True, cwd=work
    )
    try:
        while not probe.exists():
            if process.poll() is not None:
                raise SystemExit(f"tonics fit ended (rc {process.returncode}); see {log.name}")
            if time.time() - started > timeout:
                raise SystemExit(f"no first step within {timeout:.0f} s; see {log.name}")
            time.sleep(0.05)
        record = json.loads(probe.read_text())
    finally:
        _stop(process)
        log.close()
    marks = {k.removesuffix("_at"): v - started for k, v in record["marks"].items()}
    return {
        "seconds": record["first_step_at"] - started,
        "marks": marks,
        "processes": record["processes"],
    }


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def memory_figures(processes: list[dict]) -> dict:
    """Summed and per-role memory at the first step, and the computed 8 x 8 node."""
    gb = 1024**2  # kB per GB
    ranks_rows = [p for p in processes if p["role"] == "rank"]
    worker_rows = [p for p in processes if p["role"] == "worker"]
    pss = sum(p["pss_kb"] for p in processes) / gb
    uss = sum(p["uss_kb"] for p in processes) / gb
    groups = [
        sum(p["pss_kb"] for p in processes if p["rank_pid"] == r["pid"]) / gb for r in ranks_rows
    ]
    rank_uss = float(np.mean([p["uss_kb"] for p in ranks_rows])) / gb
    worker_uss = float(np.mean([p["uss_kb"] for p in worker_rows])) / gb if worker_rows else 0.0
    return {
        "ranks_seen": len(ranks_rows),
        "workers_seen": len(worker_rows),
        "pss_sum_gb": pss,
        "uss_sum_gb": uss,
        "shared_gb": pss - uss,
        "rank_group_pss_max_gb": max(groups),
        "rank_pss_mean_gb": float(np.mean([p["pss_kb"] for p in ranks_rows])) / gb,
        "rank_uss_mean_gb": rank_uss,
        "worker_pss_mean_gb": float(np.mean([p["pss_kb"] for p in worker_rows])) / gb
        if worker_rows
        else 0.0,
        "worker_uss_mean_gb": worker_uss,
        "node_8x8_computed_gb": (pss - uss) + 8 * rank_uss + 64 * worker_uss,
    }


LAUNCHES = ("first", "cold", "warm")


def measure(work: Path, ranks: int, workers: int, timeout: float, launches=LAUNCHES) -> dict:
    """The first, cold and warm launches; one flat dict of figures with `fit_RxW_` keys."""
    config = write_config(work, ranks, workers)
    key = f"fit_{ranks}x{workers}"
    figures = {}
    for name in launches:
        if name == "cold":
            figures[f"{key}_cold_method"] = drop_page_cache()
        run = launch(config, work, timeout)
        figures[f"{key}_{name}_s"] = run["seconds"]
        figures.update({f"{key}_{name}_{mark}_s": at for mark, at in run["marks"].items()})
        memory = memory_figures(run["processes"])
        if name != "first":
            figures.update({f"{key}_{name}_{k}": v for k, v in memory.items()})
        print(f"[fit {ranks}x{workers}] {name}: {run['seconds']:.1f} s", file=sys.stderr)
    return figures


def save(pairs: int, figures: dict, launches: list[str]) -> None:
    """Merge the figures into scale.json's row for `pairs` (other figures kept), with the command
    and commit that measured these launches (`written_by["fit_first"]`, ...)."""
    path = results_dir() / "scale.json"
    summary = json.loads(path.read_text()) if path.is_file() else {"results": {}}
    row = summary["results"].setdefault(str(pairs), {})
    row.update(figures)
    row.setdefault("written_by", {})["fit_" + "_".join(launches)] = written_by()
    summary["results"] = dict(sorted(summary["results"].items(), key=lambda kv: int(kv[0])))
    path.write_text(json.dumps(summary) + "\n")


def main() -> None:
    """Write the corpus, launch the runs, print one JSON line and merge it into scale.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=12_000_000)
    parser.add_argument("--real-pairs", type=int, default=200_000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tonics-fit-startup"))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to a first step")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and caches")
    parser.add_argument(
        "--reuse", action="store_true", help="launch on the corpus (and caches) a --keep run left"
    )
    parser.add_argument("--launches", nargs="+", choices=LAUNCHES, default=list(LAUNCHES))
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="the conditions, kept with the figures")
    args = parser.parse_args()
    work = args.work / f"corpus-{args.pairs}"
    figures = {}
    if not (args.reuse and (work / "index.parquet").is_file()):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        corpus = write_corpus(work, args.pairs, args.real_pairs)
        figures.update({f"fit_corpus_{k}": v for k, v in corpus.items()})
    figures.update(measure(work, args.ranks, args.workers, args.timeout, args.launches))
    if args.note:
        figures[f"fit_{args.ranks}x{args.workers}_note_{'_'.join(args.launches)}"] = args.note
    print(json.dumps({"benchmark": "fit_startup", "pairs": args.pairs, **figures}))
    if not args.no_save:
        save(args.pairs, figures, args.launches)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
