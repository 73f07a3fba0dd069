"""Read a `tonics compare` directory: per arm and stage, what the batches were like (hardness,
false-negative rows, in-batch accuracy), and the arms' validation metrics over steps side by side.
Reads files only; no training code."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tonics.analysis.results import CURVES, validation_curve
from tonics.analysis.run import load_run

STAGE_FIGURES = ("hardness_mean", "false_negative_rows", "acc_i2t", "acc_t2i")


def arm_runs(compare_dir: str | Path) -> dict[str, list[Path]]:
    """Arm name -> its run directories, in the order of `comparison.json`."""
    compare_dir = Path(compare_dir)
    summary = json.loads((compare_dir / "comparison.json").read_text())
    return {
        arm: sorted(p for p in compare_dir.glob(f"{arm}-seed*") if p.is_dir())
        for arm in summary["arms"]
    }


def stage_table(compare_dir: str | Path) -> list[dict]:
    """One row per (arm, stage): steps, and the mean over seeds and steps of STAGE_FIGURES."""
    rows = []
    for arm, runs in arm_runs(compare_dir).items():
        values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        steps: dict[str, int] = defaultdict(int)
        for root in runs:
            for row in load_run(root).steps:
                steps[row["stage_name"]] += 1
                for key in STAGE_FIGURES:
                    if row.get(key) not in (None, ""):
                        values[row["stage_name"]][key].append(float(row[key]))
        for stage, figures in values.items():
            rows.append(
                {
                    "arm": arm,
                    "stage": stage,
                    "steps": steps[stage] // max(1, len(runs)),
                    **{k: round(sum(v) / len(v), 4) for k, v in figures.items() if v},
                }
            )
    return rows


def comparison_figure(compare_dir: str | Path, out: str | Path | None = None) -> Path:
    """Validation metrics over steps per arm (mean over seeds) as a PNG; returns its path."""
    compare_dir = Path(compare_dir)
    return plot_curves(arm_runs(compare_dir), Path(out or compare_dir / "validation_curves.png"))


def plot_curves(roots: dict[str, list[Path]], path: Path) -> Path:
    """Validation metrics over steps, mean over seeds, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in CURVES if any(validation_curve(r, k) for rs in roots.values() for r in rs)]
    if not keys:
        return path
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.6 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        for arm, runs in roots.items():
            by_step: dict[int, list[float]] = defaultdict(list)
            for root in runs:
                for step, value in validation_curve(root, key).items():
                    by_step[step].append(value)
            steps = sorted(by_step)
            ax.plot(
                steps, [sum(by_step[s]) / len(by_step[s]) for s in steps], marker="o", label=arm
            )
        ax.set_ylabel(key.removeprefix("val/"), fontsize=8)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
