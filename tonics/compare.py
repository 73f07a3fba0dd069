"""`tonics compare`: two or more training recipes over the same seeds, with paired intervals.

    tonics compare configs/demo.yaml configs/random_baseline.yaml --seeds 0 1 2 3 4 --out runs/cmp

An arm is one config, or several joined by commas (`base.yaml,override.yaml`: applied in order,
the arm named after the last). Each (arm, seed) is an ordinary `tonics fit` run directory,
`OUT/<arm>-seed<s>/`, trained
sequentially on this machine with `seed_everything` and `data.seed` set to the seed (one seed fixes
both arms' data order and head initialisation, so the arms are paired). A run directory that
already holds its test figures is reused, so an interrupted comparison resumes where it stopped.
Writes `comparison.json`, `comparison.md` (each test metric: the mean of every arm and the paired
difference from the first arm with a 95% t interval and a 95% bootstrap interval) and
`validation_curves.png` (validation metrics over steps, mean over seeds, per arm).
`--split val` compares the validation figures of the last validation instead (choose settings on
validation; report the test split once), and skips the test pass.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from tonics.eval.intervals import paired_difference

TABLE_METRICS = ("recall_mean", "image_to_text_R@1", "text_to_image_R@1",
                 "within_object_image_to_text_R@1", "within_object_text_to_image_R@1",
                 "caption_novel_text_to_image_R@1", "image_to_text_R@5", "text_to_image_R@5",
                 "image_to_text_R@10", "text_to_image_R@10", "transfer_recall_mean",
                 "transfer_image_to_text_R@1", "transfer_text_to_image_R@1")  # fmt: skip
CURVES = ("val/recall_mean", "val/within_object_text_to_image_R@1", "val/loss")


def arm_name(arm: str) -> str:
    """An arm's name: the stem of its (last) config file."""
    return Path(arm.split(",")[-1]).stem


def run_directory(out: Path, arm: str, seed: int) -> Path:
    """Where the run of `arm` with `seed` lives."""
    return out / f"{arm_name(arm)}-seed{seed}"


def _done(root: Path, split: str) -> bool:
    if split == "test":
        return bool(list(root.rglob("retrieval_test.json")))
    return bool(list(root.rglob("stage_summary.json"))) and bool(list(root.rglob("last.ckpt")))


def fit_once(arm: str, seed: int, out: Path, extra: list[str] | None = None, split: str = "test") -> Path:  # fmt: skip
    """Train (unless already done) and test one arm for one seed; returns its run directory."""
    root = run_directory(out, arm, seed)
    if not _done(root, split):
        from tonics.cli import cli_main

        logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
                  "init_args": {"save_dir": str(root), "name": "tonics"}}  # fmt: skip
        configs = [item for path in arm.split(",") for item in ("--config", path)]
        no_test = ["--no_test", "true"] if split == "val" else []
        cli_main(["fit", *configs, f"--seed_everything={seed}", f"--data.seed={seed}",
                  f"--trainer.default_root_dir={root}", f"--trainer.logger={json.dumps(logger)}",
                  "--trainer.enable_progress_bar=false", *no_test, *(extra or [])])  # fmt: skip
    return root


def fit_metrics(root: Path) -> Path:
    """The `metrics.csv` of the fit run under `root` (the directory holding curriculum_steps.csv;
    other evaluations may have written their own metrics.csv beside it)."""
    steps = sorted(root.rglob("curriculum_steps.csv"))
    if not steps:
        raise SystemExit(f"tonics compare: {root} holds no `tonics fit` run")
    return steps[-1].parent / "metrics.csv"


def validation_figures(root: Path) -> dict[str, float]:
    """The metrics of a run's last validation (without the 'val/' prefix)."""
    last: dict[str, float] = {}
    with open(fit_metrics(root), newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("val/recall_mean"):
                last = {k.removeprefix("val/"): float(v) for k, v in row.items() if k.startswith("val/") and v}  # fmt: skip
    if not last:
        raise SystemExit(f"tonics compare: {root} has no validation metrics (set trainer.val_check_interval)")  # fmt: skip
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
    """Means per arm and, for every other arm, the paired difference from the first arm."""
    arms = list(figures)
    baseline = arms[0]
    metrics = [m for m in TABLE_METRICS if all(m in f for runs in figures.values() for f in runs)]
    summary: dict = {
        "arms": arms,
        "seeds": len(figures[baseline]),
        "baseline": baseline,
        "metrics": {},
    }
    for metric in metrics:
        entry = {
            arm: round(sum(f[metric] for f in runs) / len(runs), 3) for arm, runs in figures.items()
        }
        for arm in arms[1:]:
            entry[f"{arm} - {baseline}"] = paired_difference(
                [f[metric] for f in figures[baseline]], [f[metric] for f in figures[arm]]
            ).as_dict()
        summary["metrics"][metric] = entry
    return summary


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
        cells = [f"{entry[arm]:.2f}" for arm in arms]
        for arm in others:
            d = entry[f"{arm} - {baseline}"]
            cells.append(f"{d['difference']:+.2f} [{d['t_low']:+.2f}, {d['t_high']:+.2f}]")
        lines.append(f"| {metric.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def compare(configs: list[str], seeds: list[int], out: Path, *, which: str = "last",
            extra: list[str] | None = None, split: str = "test") -> dict:  # fmt: skip
    """Run every arm for every seed (seed-major, so a partial comparison is still paired) and
    write the comparison files; returns the summary."""
    if len(configs) < 2 or len({arm_name(c) for c in configs}) != len(configs):
        raise SystemExit("tonics compare: give two or more configs with different file names")
    if len(seeds) < 2:
        raise SystemExit("tonics compare: give at least two seeds (--seeds 0 1 2 3 4)")
    out.mkdir(parents=True, exist_ok=True)
    roots: dict[str, list[Path]] = {arm_name(c): [] for c in configs}
    for seed in seeds:
        for config in configs:
            roots[arm_name(config)].append(fit_once(config, seed, out, extra, split))
    read = (lambda r: figures_of(r, which)) if split == "test" else validation_figures
    figures = {arm: [read(r) for r in runs] for arm, runs in roots.items()}
    summary = {**summarise(figures), "checkpoint": which if split == "test" else "last validation",
               "split": split, "seed_list": seeds}  # fmt: skip
    (out / "comparison.json").write_text(json.dumps(summary, indent=2))
    (out / "comparison.md").write_text(markdown(summary) + "\n")
    plot_curves(roots, out / "validation_curves.png")
    return summary


def main(argv: list[str]) -> int:
    """`tonics compare CONFIG CONFIG [...] --seeds ... --out DIR`."""
    parser = argparse.ArgumentParser(prog="tonics compare", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "configs", nargs="+", help="two or more `tonics fit` YAML files; the first is the baseline"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="compare test figures (after fit) or the last validation's (no test pass)")  # fmt: skip
    parser.add_argument(
        "--checkpoint",
        choices=("last", "best"),
        default="last",
        help="compare the last weights (equal steps, the default) or the best checkpoint",
    )
    parser.add_argument("--fit-args", nargs=argparse.REMAINDER, default=[],
                        help="extra `tonics fit` arguments for every run (put last)")  # fmt: skip
    args = parser.parse_args(argv)
    summary = compare(args.configs, args.seeds, Path(args.out), which=args.checkpoint,
                      extra=args.fit_args, split=args.split)  # fmt: skip
    print(markdown(summary))
    print(f"\nWritten: {Path(args.out) / 'comparison.md'}, comparison.json, validation_curves.png")
    return 0
