"""TOnICS curriculum against random batches on the demo data: same model, same number of steps,
three seeds each, evaluated on the held-out test split (best checkpoint by validation loss).

    python benchmarks/curriculum_vs_random.py [--seeds 0 1 2] [--out benchmarks/results]

Runs `tonics fit` for configs/demo.yaml and configs/random_baseline.yaml per seed, then prints one
JSON line with mean and standard deviation of R@1/5/10 both directions, and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {"tonics": "configs/demo.yaml", "random": "configs/random_baseline.yaml"}
KEYS = [f"test/{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]


def run(config: str, seed: int, out: Path) -> dict:
    """One training run; returns its test retrieval figures."""
    root = out / f"{Path(config).stem}-seed{seed}"
    command = [sys.executable, "-m", "tonics.cli", "fit", "--config", config, f"--seed_everything={seed}",
               f"--data.seed={seed}", f"--trainer.default_root_dir={root}",
               f"--trainer.logger.init_args.save_dir={root}", "--trainer.enable_progress_bar=false"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads(next(root.rglob("retrieval_test.json")).read_text())
    return {**{k: report[k] for k in KEYS}, "seconds": round(time.perf_counter() - started)}


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Mean and standard deviation per figure and arm."""
    summary = {}
    for arm, results in runs.items():
        for key in KEYS:
            values = [r[key] for r in results]
            name = key.removeprefix("test/")
            summary[f"{arm}_{name}_mean"] = round(statistics.mean(values), 2)
            summary[f"{arm}_{name}_std"] = (
                round(statistics.stdev(values), 2) if len(values) > 1 else 0.0
            )
    return summary


def markdown(summary: dict, seeds: int) -> str:
    """The comparison as a Markdown table (mean ± std over seeds)."""
    lines = [
        f"| figure (test split, {seeds} seeds) | TOnICS curriculum | random batches |",
        "|---|---|---|",
    ]
    for key in KEYS:
        name = key.removeprefix("test/")
        cells = [
            f"{summary[f'{arm}_{name}_mean']:.2f} ± {summary[f'{arm}_{name}_std']:.2f}"
            for arm in CONFIGS
        ]
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Train both arms for every seed and report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/curriculum_vs_random")
    args = parser.parse_args()
    out = Path(args.out)
    runs = {arm: [run(config, seed, out) for seed in args.seeds] for arm, config in CONFIGS.items()}
    summary = summarise(runs)
    (out / "runs.json").write_text(json.dumps(runs, indent=2))
    print(json.dumps({"benchmark": "curriculum_vs_random", "seeds": args.seeds, **summary}))
    print(markdown(summary, len(args.seeds)))


if __name__ == "__main__":
    main()
