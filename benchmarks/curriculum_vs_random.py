"""TOnICS curriculum against random batches on the demo data, and what opening the encoders adds.

    python benchmarks/curriculum_vs_random.py [--seeds 0 1 2 3 4] [--out runs/curriculum_vs_random]

For each seed, runs `tonics fit` for configs/demo.yaml and configs/random_baseline.yaml (same model,
data, steps and unfreezing step; the seed sets data order and head initialisation), then evaluates
on the test split: the last weights, the best checkpoint by validation mean recall, and the
checkpoint saved at the end of the last frozen stage (`tonics test --ckpt_path ...`). A run
directory that already holds its figures is reused, so an interrupted benchmark resumes.

Prints one JSON line and Markdown tables: per arm, last minus end-of-frozen-stage test mean recall
(the unfrozen phase must not hurt); curriculum minus random on every figure (last weights); the
validation loss just before and after the encoders open. Differences are paired by seed, with a
95% t interval (and a bootstrap interval in the JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

from tonics.eval.intervals import paired_difference

CONFIGS = {"tonics": "configs/demo.yaml", "random": "configs/random_baseline.yaml"}
FIGURES = [f"{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)] + [
    "recall_mean"
]


# validation every 60 steps instead of the configs' 30: half the validation cost; the loss curve
# still has a point at the step the encoders open and at the end
OVERRIDES = ["--trainer.enable_progress_bar=false", "--trainer.val_check_interval=60"]


def _tonics(*args: str) -> None:
    command = [sys.executable, "-m", "tonics.cli", *args, *OVERRIDES]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def first_open_stage(config: str) -> tuple[int, int]:
    """(index of the first stage that opens an encoder, the step it starts at)."""
    stages = yaml.safe_load(Path(config).read_text())["data"]["stages"]
    first = next(i for i, s in enumerate(stages) if s.get("unfreeze_vision") or s.get("unfreeze_text"))  # fmt: skip
    return first, sum(s["steps"] for s in stages[:first])


def frozen_end_checkpoint(config: str, run: Path) -> Path:
    """The stage-end checkpoint of the last stage before any encoder opens."""
    return next(run.rglob(f"stage{first_open_stage(config)[0] - 1}-*-end.ckpt"))


def val_loss_curve(run: Path) -> dict[int, float]:
    """Validation loss by global step, from the run's metrics.csv."""
    curve = {}
    for row in csv.DictReader(open(next(run.rglob("metrics.csv")))):
        if row.get("val/loss"):
            curve[int(row["step"]) + 1] = float(row["val/loss"])
    return curve


def run(config: str, seed: int, out: Path) -> dict:
    """One training run and its three test evaluations (reused when already on disk)."""
    root = out / f"{Path(config).stem}-seed{seed}"
    seeds = [f"--seed_everything={seed}", f"--data.seed={seed}"]
    if not list(root.rglob("retrieval_test.json")):
        _tonics("fit", "--config", config, *seeds, f"--trainer.default_root_dir={root}",
                f"--trainer.logger.init_args.save_dir={root}")  # fmt: skip
    report = json.loads(next(root.rglob("retrieval_test.json")).read_text())
    frozen_dir = root / "frozen_end"
    if not list(frozen_dir.rglob("retrieval_report.json")):
        _tonics("test", "--config", config, *seeds, f"--ckpt_path={frozen_end_checkpoint(config, root)}",
                f"--trainer.default_root_dir={frozen_dir}", f"--trainer.logger.init_args.save_dir={frozen_dir}")  # fmt: skip
    frozen = json.loads(next(frozen_dir.rglob("retrieval_report.json")).read_text())
    pick = lambda metrics: {f: metrics[f"test/{f}"] for f in FIGURES}  # noqa: E731
    return {"best": pick(report), "last": pick(report["last"]), "frozen_end": pick(frozen),
            "val_loss": val_loss_curve(root)}  # fmt: skip


def summarise(runs: dict[str, list[dict]], open_step: int) -> dict:
    """Arm means and paired differences (see the module docstring)."""
    summary: dict = {}
    for arm, results in runs.items():
        for which in ("frozen_end", "last", "best"):
            summary[f"{arm}_{which}_recall_mean"] = round(statistics.mean(r[which]["recall_mean"] for r in results), 2)  # fmt: skip
        summary[f"{arm}_last_minus_frozen_end"] = paired_difference(
            [r["frozen_end"]["recall_mean"] for r in results],
            [r["last"]["recall_mean"] for r in results],
        ).as_dict()
        steps = sorted(results[0]["val_loss"])
        summary[f"{arm}_val_loss"] = {s: round(statistics.mean(r["val_loss"][s] for r in results), 3)
                                      for s in steps}  # fmt: skip
    for figure in FIGURES:
        summary[f"tonics_minus_random_last_{figure}"] = paired_difference(
            [r["last"][figure] for r in runs["random"]], [r["last"][figure] for r in runs["tonics"]]
        ).as_dict()
    summary["encoders_open_at_step"] = open_step
    return summary


def markdown(runs: dict[str, list[dict]], summary: dict) -> str:
    """Three tables: unfrozen phase per arm, curriculum vs random, validation loss."""
    n = len(runs["tonics"])
    lines = [f"| arm ({n} seeds, test mean recall) | end of frozen stages | last | last - frozen end [95% CI] |",
             "|---|---|---|---|"]  # fmt: skip
    for arm in runs:
        d = paired_difference([r["frozen_end"]["recall_mean"] for r in runs[arm]],
                              [r["last"]["recall_mean"] for r in runs[arm]])  # fmt: skip
        lines.append(f"| {arm} | {d.mean_a:.2f} | {d.mean_b:.2f} | {d.cell()} |")
    lines += ["", f"| figure (test split, last weights, {n} seeds) | TOnICS | random | TOnICS - random [95% CI] |",
              "|---|---|---|---|"]  # fmt: skip
    for figure in FIGURES:
        d = paired_difference([r["last"][figure] for r in runs["random"]],
                              [r["last"][figure] for r in runs["tonics"]])  # fmt: skip
        lines.append(
            f"| {figure.replace('_', ' ')} | {d.mean_b:.2f} | {d.mean_a:.2f} | {d.cell()} |"
        )
    steps = list(summary["tonics_val_loss"])
    lines += ["", "| val/loss at step | " + " | ".join(str(s) for s in steps) + " |",
              "|---|" + "---|" * len(steps)]  # fmt: skip
    for arm in runs:
        lines.append(f"| {arm} | " + " | ".join(f"{summary[f'{arm}_val_loss'][s]:.3f}" for s in steps) + " |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Train both arms for every seed and report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/curriculum_vs_random")
    args = parser.parse_args()
    out = Path(args.out)
    runs = {arm: [] for arm in CONFIGS}
    for seed in args.seeds:  # seed-major: a partial benchmark still has paired arms
        for arm, config in CONFIGS.items():
            runs[arm].append(run(config, seed, out))
    summary = summarise(runs, first_open_stage(CONFIGS["tonics"])[1])
    (out / "runs.json").write_text(json.dumps(runs, indent=2))
    print(json.dumps({"benchmark": "curriculum_vs_random", "seeds": args.seeds, **summary}))
    print(markdown(runs, summary))


if __name__ == "__main__":
    main()
