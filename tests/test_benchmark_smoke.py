"""Every script in benchmarks/ runs at its smallest settings and prints its JSON line, so a
benchmark cannot rot unseen. Result files go to a scratch folder (TONICS_BENCHMARK_RESULTS), never
over the committed ones; the training grids run on 1% of the demo with tiny random towers and a
few steps a stage on the 48-image test dataset (their own `--fit-args` pass-through)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(  # the scripts, not the modules they share (common, the probe, the report)
    p.stem for p in (REPO / "benchmarks").glob("*.py") if '__name__ == "__main__"' in p.read_text()
)


def _small_training(directory: Path, tiny: tuple, *, stages: bool, fraction: bool) -> list:
    """`tonics fit` arguments that shrink a grid's every run: the tiny dataset, tiny towers, a
    few steps a stage."""
    config = {
        "model": {
            "spec": {"text_encoder": "tiny:bert", "vision_encoder": "tiny:vit", "embed_dim": 16}
        },
        "data": {
            "reader": {
                "class_path": "tonics.data.readers.KarpathyReader",
                "init_args": {"split_file": tiny[0], "image_root": tiny[1]},
            },
            "loader": {
                "batch_size": 4,
                "eval_batch_size": 64,
                "num_workers": 0,
                "persistent_workers": False,
            },
        },
        "trainer": {"max_steps": 6, "val_check_interval": 3},
    }
    if stages:  # the demo's three stages, two steps each, so every stage ends (and checkpoints)
        config["data"]["stages"] = [{"steps": 2}, {"steps": 2}, {"ramp_steps": 2}]
    if fraction:
        config["data"]["subset"] = {"fraction": 0.5}
    path = directory / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--fit-args", f"--config={path}"]


GRID = ["--out", "{tmp}/runs", "--seeds", "0", "1"]  # two paired seeds: the least an interval takes
SMALLEST = {  # each script's smallest settings; {tmp}: the test's scratch folder
    "cli_startup": ["--repeats", "1"],
    "ontology_build": ["--captions", "2000"],
    "shard_reads": ["--pairs", "200", "--per-shard", "50", "--reads", "50"],
    "caption_step": ["--steps", "1", "--batch-size", "2"],
    "train_step": ["--steps", "1", "--batch-size", "2"],
    "retrieval": ["--images", "200"],
    "sampler": ["--sizes", "2000", "--batches", "2", "--steps", "1", "--step-batch", "2"],
    "dataloader": ["--images", "16", "--demo-root", "{demo}"],
    "scale": ["--sizes", "3000", "--work", "{tmp}/scale"],
    "fit_startup": [  # one launch of one rank: the cold launch needs root (it drops the page cache)
        *("--pairs", "2000", "--real-pairs", "1000", "--ranks", "1", "--workers", "1"),
        *("--launches", "first", "--work", "{tmp}/fit"),
    ],
    "search": [
        *("--sizes", "1000", "--hnsw-sizes", "1000", "--queries", "10"),
        *("--data", "text", "clustered", "--cache", "{tmp}/vectors", "--demo-root", "{demo}"),
    ],
    "budget": [*GRID, "--settings", "steps2400", "--arms", "random", "objects_ramp"],
    "captioning_comparison": [*GRID, "--no-transfer"],
    "curriculum_vs_random": GRID,
    "data_efficiency": [*GRID, "--fractions", "0.5"],
    "search_quality": ["--out", "{tmp}/search", "--demo-root", "{demo}", "--pictures", "40"],
    "identical_figures": ["--before", "HEAD", "--after", "HEAD", "--runs", "{tmp}/identical"],
}
TRAINING = {  # scripts that train: the small-training overlay goes to their --fit-args
    "budget",
    "captioning_comparison",
    "curriculum_vs_random",
    "data_efficiency",
    "search_quality",
    "identical_figures",
}


def _arguments(script: str, tmp: Path, demo_root: Path, tiny: tuple) -> list[str]:
    """The script's smallest settings, with a small-training overlay for the scripts that train."""
    arguments = [a.format(tmp=tmp, demo=demo_root) for a in SMALLEST[script]]
    if script in TRAINING:
        arguments += _small_training(
            tmp, tiny, stages=script != "budget", fraction=script != "data_efficiency"
        )
    return arguments


def test_every_benchmark_script_has_its_smallest_settings():
    assert set(SMALLEST) == set(SCRIPTS), "give each new benchmarks/ script its smallest settings"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_prints_its_json_line(script, tmp_path, built_demo, tiny_dataset):
    demo_root = built_demo[0]
    results = tmp_path / "results"
    env = {**os.environ, "TONICS_BENCHMARK_RESULTS": str(results)}
    done = subprocess.run(
        [
            sys.executable,
            f"benchmarks/{script}.py",
            *_arguments(script, tmp_path, demo_root, tiny_dataset),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["benchmark"] == script
    committed = REPO / "benchmarks" / "results"
    assert not any(p.stat().st_mtime > tmp_path.stat().st_mtime for p in committed.iterdir()), (
        "a smoke run wrote over a committed result file"
    )
