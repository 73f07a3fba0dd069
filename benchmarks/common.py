"""Shared pieces of the benchmarks: where result files go, the pass-through of `tonics fit`
arguments of the training grids, and a timed training step with the packaged encoders."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


def results_dir() -> Path:
    """Where a benchmark writes (and reads back) its result files: `benchmarks/results`, or the
    folder named by TONICS_BENCHMARK_RESULTS, so a smoke run never touches the committed files."""
    folder = Path(os.environ.get("TONICS_BENCHMARK_RESULTS") or Path(__file__).parent / "results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def written_by() -> dict:
    """The command line and the commit (with `+dirty` when the tree has changes) that write a
    result file, to store inside it."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(repo) if script.is_relative_to(repo) else script
    return {
        "command": " ".join(["python", str(shown), *sys.argv[1:]]),
        "commit": (git("rev-parse", "--short", "HEAD") or "unknown") + dirty,
    }


def add_fit_args(parser: argparse.ArgumentParser) -> None:
    """`--fit-args ...`: `tonics fit` arguments appended to every run of a grid (after its own,
    so they win), e.g. `--fit-args --config small.yaml --trainer.max_steps=6` for a smoke run."""
    parser.add_argument(
        "--fit-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="tonics fit arguments appended to every run (last on the command line)",
    )


def packaged_step_seconds(batch_size: int = 32, steps: int = 5, unfrozen: bool = False) -> float:
    """Median wall time of one optimiser step (packaged MiniLM + MobileNetV2, random inputs)."""
    from tonics.model import ClipLoss
    from tonics.model.factory import ModelSpec, create_model

    torch.manual_seed(0)
    model = create_model(ModelSpec("packaged:minilm", "packaged:mobilenet_v2"))
    if unfrozen:
        model.text.unfreeze()
        model.vision.unfreeze()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = ClipLoss()
    pixels = torch.randn(batch_size, 3, 224, 224)
    ids = torch.randint(1000, 8000, (batch_size, 16))
    mask = torch.ones_like(ids)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        image, text, scale = model(pixels, ids, mask)
        loss = loss_fn(image, text, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]
