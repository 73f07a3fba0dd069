"""Read and summarise the results of `tonics compare` runs: each run's test or last-validation
figures, validation curves over steps, per-arm means with paired intervals, and a Markdown table.
Reads files only; no training code."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tonics.errors import InputError
from tonics.eval.intervals import paired_difference

TABLE_METRICS = (
    "recall_mean",
    "image_to_text_R@1",
    "text_to_image_R@1",
    "within_object_image_to_text_R@1",
    "within_object_text_to_image_R@1",
    "caption_novel_text_to_image_R@1",
    "seen_combination_text_to_image_R@1",  # images with several annotated objects (scenes)
    "seen_combination_image_to_text_R@1",
    "unseen_combination_text_to_image_R@1",
    "unseen_combination_image_to_text_R@1",
    "image_to_text_R@5",
    "text_to_image_R@5",
    "image_to_text_R@10",
    "text_to_image_R@10",
    "caption_BLEU-4",
    "caption_CIDEr",
)
# figures of a split held out of training, compared as `<split>_<metric>` (`transfer_recall_mean`)
HELD_OUT_METRICS = (
    "recall_mean",
    "image_to_text_R@1",
    "text_to_image_R@1",
    "within_object_image_to_text_R@1",
    "within_object_text_to_image_R@1",
    "caption_CIDEr",
)
CURVES = ("val/recall_mean", "val/within_object_text_to_image_R@1", "val/loss")


def fit_metrics(root: Path) -> Path:
    """The `metrics.csv` of the fit run under `root` (the directory holding curriculum_steps.csv;
    other evaluations may have written their own metrics.csv beside it)."""
    steps = sorted(root.rglob("curriculum_steps.csv"))
    if not steps:
        raise InputError(f"tonics compare: {root} holds no `tonics fit` run")
    return steps[-1].parent / "metrics.csv"


def validation_figures(root: Path) -> dict[str, float]:
    """The metrics of a run's last validation (without the 'val/' prefix)."""
    last: dict[str, float] = {}
    with open(fit_metrics(root), newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("val/recall_mean"):
                last = {
                    k.removeprefix("val/"): float(v)
                    for k, v in row.items()
                    if k.startswith("val/") and v
                }
    if not last:
        raise InputError(
            f"tonics compare: {root} has no validation metrics (set trainer.val_check_interval)"
        )
    return last


def figures_of(root: Path, which: str = "last") -> dict[str, float]:
    """A run's test metrics (without the 'test/' prefix): the 'last' weights' or the 'best'."""
    report = json.loads(next(root.rglob("retrieval_test.json")).read_text())
    figures = report["last"] if which == "last" else report
    test = {k.removeprefix("test/"): v for k, v in figures.items() if k.startswith("test/")}
    transfer = {"transfer_" + k.split("/", 1)[1]: v for k, v in report.get("transfer", {}).items()}
    return test | transfer  # the transfer split is measured with the last weights


def validation_curve(root: Path, key: str) -> dict[int, float]:
    """A logged validation metric by global step."""
    curve = {}
    with open(fit_metrics(root), newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get(key):
                curve[int(row["step"]) + 1] = float(row[key])
    return curve


def summarise(figures: dict[str, list[dict[str, float]]]) -> dict:
    """Means per arm and, for every other arm, the paired difference from the first arm; the
    per-seed figures beside them (`per_seed`: metric -> arm -> one value per seed, in seed
    order), so a comparison can be recomputed or extended without its run directories. A
    metric only some arms have (caption figures of arms with a captioning head) gets the means of
    those arms, and differences where the baseline has it too."""
    arms = list(figures)
    baseline = arms[0]
    names = list(TABLE_METRICS) + _held_out_names(figures)
    having = {m: [a for a, runs in figures.items() if all(m in f for f in runs)] for m in names}
    summary: dict = {
        "arms": arms,
        "seeds": len(figures[baseline]),
        "baseline": baseline,
        "metrics": {},
        "per_seed": {},
    }
    for metric in (m for m in names if having[m]):
        entry = {
            arm: round(sum(f[metric] for f in figures[arm]) / len(figures[arm]), 3)
            for arm in having[metric]
        }
        for arm in (a for a in arms[1:] if a in entry and baseline in entry):
            entry[f"{arm} - {baseline}"] = paired_difference(
                [f[metric] for f in figures[baseline]], [f[metric] for f in figures[arm]]
            ).as_dict()
        summary["metrics"][metric] = entry
        summary["per_seed"][metric] = {
            arm: [round(f[metric], 4) for f in figures[arm]] for arm in having[metric]
        }
    return summary


def _held_out_names(figures: dict[str, list[dict[str, float]]]) -> list[str]:
    """`<split>_<metric>` names of held-out figures present in some run, in table order."""
    present = {key for runs in figures.values() for f in runs for key in f}
    splits = sorted(
        {k.split("_", 1)[0] for k in present if "_" in k and k.split("_", 1)[1] in HELD_OUT_METRICS}
    )
    return [f"{s}_{m}" for s in splits for m in HELD_OUT_METRICS if f"{s}_{m}" in present]


def markdown(summary: dict) -> str:
    """The summary as a Markdown table (differences: mean [95% t interval])."""
    arms, baseline = summary["arms"], summary["baseline"]
    others = arms[1:]
    header = [
        f"metric ({summary.get('split', 'test')}, {summary['seeds']} seeds)",
        *arms,
        *(f"{a} - {baseline}" for a in others),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric, entry in summary["metrics"].items():
        cells = [f"{entry[arm]:.2f}" if arm in entry else "-" for arm in arms]
        for arm in others:
            d = entry.get(f"{arm} - {baseline}")
            cells.append(
                f"{d['difference']:+.2f} [{d['t_low']:+.2f}, {d['t_high']:+.2f}]" if d else "-"
            )
        lines.append(f"| {metric.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
