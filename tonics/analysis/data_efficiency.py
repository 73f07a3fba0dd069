"""Data-efficiency curves: each arm's validation figures against the fraction of training data,
and the paired difference from the baseline arm with its 95% interval, from the results file of
`benchmarks/data_efficiency.py` (one `tonics compare --split val` summary per fraction)."""

from __future__ import annotations

import json
from pathlib import Path

CURVE_METRICS = (
    "recall_mean",
    "within_object_image_to_text_R@1",
    "within_object_text_to_image_R@1",
)


def efficiency_rows(results: dict) -> list[dict]:
    """One row per (fraction, metric, arm): the arm's mean and, for arms other than the
    baseline, the paired difference with its 95% t interval."""
    rows = []
    for fraction, summary in sorted(results["fractions"].items(), key=lambda kv: float(kv[0])):
        baseline = summary["baseline"]
        for metric in CURVE_METRICS:
            entry = summary["metrics"].get(metric)
            if entry is None:
                continue
            for arm in summary["arms"]:
                row = {
                    "fraction": float(fraction),
                    "metric": metric,
                    "arm": arm,
                    "mean": entry[arm],
                    "seeds": summary["seeds"],
                }
                if arm != baseline:
                    row["difference"] = entry[f"{arm} - {baseline}"]
                rows.append(row)
    return rows


def merge_grids(grids: dict[str, dict]) -> dict:
    """One grid from several fraction grids that share a baseline arm (name -> results of
    `benchmarks/data_efficiency.py`), so arms measured in separate grids are read side by side.
    Each arm's difference stays the one paired with its own grid's baseline runs; the baseline's
    means are the first grid's, and every grid's baseline means are kept under `sources` (equal
    when the baseline runs were reproduced exactly)."""
    baselines = {
        summary["baseline"] for grid in grids.values() for summary in grid["fractions"].values()
    }
    if len(baselines) != 1:
        raise ValueError(f"merge_grids: the grids have different baselines {sorted(baselines)}")
    (baseline,) = baselines
    fractions: dict[str, dict] = {}
    for name, grid in grids.items():
        for fraction, summary in grid["fractions"].items():
            merged = fractions.setdefault(
                fraction,
                {"arms": [baseline], "baseline": baseline, "seeds": summary["seeds"]}
                | {"metrics": {}, "sources": {}},
            )
            merged["seeds"] = min(merged["seeds"], summary["seeds"])
            merged["sources"][name] = {
                "arms": summary["arms"],
                "seeds": summary["seeds"],
                "baseline_means": {m: e[baseline] for m, e in summary["metrics"].items()},
            }
            merged["arms"] += [a for a in summary["arms"] if a not in merged["arms"]]
            for metric, entry in summary["metrics"].items():
                target = merged["metrics"].setdefault(metric, {baseline: entry[baseline]})
                target.update({k: v for k, v in entry.items() if k != baseline})
    ordered = dict(sorted(fractions.items(), key=lambda kv: float(kv[0])))
    return {"benchmark": "data_efficiency", "grids": list(grids), "fractions": ordered}


def efficiency_figure(results_file: str | Path, out: str | Path) -> Path:
    """Top row: each arm's mean against the training fraction, per metric; bottom row: the
    paired difference from the baseline with its 95% interval (zero marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = efficiency_rows(json.loads(Path(results_file).read_text()))
    fig, axes = plt.subplots(
        2, len(CURVE_METRICS), figsize=(4 * len(CURVE_METRICS), 6), squeeze=False
    )
    for column, metric in enumerate(CURVE_METRICS):
        mine = [r for r in rows if r["metric"] == metric]
        for arm in dict.fromkeys(r["arm"] for r in mine):
            points = [r for r in mine if r["arm"] == arm]
            axes[0, column].plot(
                [r["fraction"] for r in points], [r["mean"] for r in points], marker="o", label=arm
            )
            diffs = [r for r in points if "difference" in r]
            if diffs:
                x = [r["fraction"] for r in diffs]
                mid = [r["difference"]["difference"] for r in diffs]
                low = [r["difference"]["t_low"] for r in diffs]
                high = [r["difference"]["t_high"] for r in diffs]
                axes[1, column].errorbar(
                    x,
                    mid,
                    yerr=[
                        [m - lo for m, lo in zip(mid, low)],
                        [hi - m for m, hi in zip(mid, high)],
                    ],
                    marker="o",
                    capsize=3,
                    label=f"{arm} - baseline",
                )
        axes[0, column].set_title(metric.replace("_", " "), fontsize=9)
        axes[1, column].axhline(0, color="grey", linewidth=0.8)
        for row in (0, 1):
            axes[row, column].set_xscale("log")
            axes[row, column].set_xlabel("fraction of training images", fontsize=8)
        axes[0, column].legend(fontsize=7)
        axes[1, column].legend(fontsize=7)
    axes[0, 0].set_ylabel("validation (mean over seeds)", fontsize=8)
    axes[1, 0].set_ylabel("paired difference, 95% CI", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
