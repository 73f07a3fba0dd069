"""Data efficiency: training recipes against random batches at fractions of the demo's training
images, on the validation split, with paired seeds.

    python benchmarks/data_efficiency.py [--fractions 0.1 0.25 0.5 1.0] [--seeds 0 1 2 3 4]
        [--out runs/data_efficiency] [--arms BASELINE.yaml ARM.yaml ...] [--name NAME]

For each fraction, `tonics compare BASELINE.yaml ARM.yaml ... --split val` with
`--data.subset.fraction F` (a nested, seeded subset of the training images; the ontology is built
on it) and validation every 200 steps. Finished runs are reused, so an interrupted grid resumes
(`--full-runs DIR` links the finished runs of another validation comparison of the same arms for
the 1.0 fraction). The grid is written after every fraction, so a partial grid is kept, to
`benchmarks/results/<NAME>.{json,md}` (default `data_efficiency_curriculum`: random batches
against the default curriculum): per fraction, each arm's mean validation mean recall and
within-object R@1 both ways, the paired difference from the baseline with a 95% t interval, and
the per-seed figures. Fractions of an existing grid of that name (same seeds and arms) that are
not run again are kept, so one fraction can be added to a grid later (`--fractions 1.0`). Then
every `data_efficiency_*.json` grid there with the same baseline is merged into
`benchmarks/results/data_efficiency.{json,md,png}`, the arms side by side (each difference paired
with its own grid's baseline runs), so an arm added later by its own grid (`--arms
configs/demo.yaml,configs/overlays/random_baseline.yaml NEW.yaml
--name data_efficiency_new`) joins the figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import add_fit_args, results_dir, written_by

from tonics.analysis.data_efficiency import efficiency_figure, merge_grids
from tonics.commands.noise import quiet_known_noise
from tonics.train.compare import arm_name, compare

ARMS = ["configs/demo.yaml,configs/overlays/random_baseline.yaml", "configs/demo.yaml"]
METRICS = (
    "recall_mean",
    "within_object_image_to_text_R@1",
    "within_object_text_to_image_R@1",
    "image_to_text_R@1",
    "text_to_image_R@1",
    "seen_combination_text_to_image_R@1",
    "unseen_combination_text_to_image_R@1",
    "seen_combination_image_to_text_R@1",
    "unseen_combination_image_to_text_R@1",
)
RESULTS = results_dir()


def table(rows: dict[str, dict]) -> str:
    """Markdown: one line per (fraction, metric), each arm's mean and each other arm's paired
    difference from the first arm (the baseline) with its 95% t interval; `-` where an arm has
    no figure at that fraction (a grid still running)."""
    if not rows:
        return ""
    arms = list(dict.fromkeys(a for summary in rows.values() for a in summary["arms"]))
    baseline = next(iter(rows.values()))["baseline"]
    others = [a for a in arms if a != baseline]
    lines = [
        "| train fraction | metric (val) | "
        + " | ".join(arms)
        + " | "
        + " | ".join(f"{a} - {baseline} [95% CI]" for a in others)
        + " |",
        "|---|---|" + "---|" * (len(arms) + len(others)),
    ]
    for fraction, summary in rows.items():
        for metric in METRICS:
            entry = summary["metrics"].get(metric)
            if entry is None:
                continue
            means = " | ".join(f"{entry[a]:.2f}" if a in entry else "-" for a in arms)
            differences = []
            for arm in others:
                d = entry.get(f"{arm} - {baseline}")
                differences.append(
                    f"{d['difference']:+.2f} [{d['t_low']:+.2f}, {d['t_high']:+.2f}]" if d else "-"
                )
            lines.append(f"| {fraction} | {metric} | {means} | " + " | ".join(differences) + " |")
    return "\n".join(lines)


def _link_finished(source: Path, out: Path, arms: list[str], seeds: list[int]) -> None:
    """Link `source`'s finished runs of these arms and seeds into `out` (runs already there are
    kept)."""
    from tonics.train.compare import _done, run_directory

    out.mkdir(parents=True, exist_ok=True)
    for arm in arms:
        for seed in seeds:
            found, target = run_directory(source, arm, seed), run_directory(out, arm, seed)
            if _done(found, "val") and not target.exists():
                target.symlink_to(found.resolve(), target_is_directory=True)


def earlier_fractions(path: Path, arms: list[str], seeds: list[int]) -> dict[str, dict]:
    """The fractions an existing grid file holds for the same arms and seeds (none otherwise):
    the rows a run of other fractions keeps."""
    if not path.exists():
        return {}
    grid = json.loads(path.read_text())
    if grid.get("seeds") != seeds:
        return {}
    names = [arm_name(arm) for arm in arms]
    return {f: row for f, row in grid["fractions"].items() if row.get("arms") == names}


def write_merged(merged_name: str = "data_efficiency") -> None:
    """Merge the `<merged_name>_*.json` grids into `<merged_name>.{json,md,png}`."""
    grids = {
        path.stem: json.loads(path.read_text())
        for path in sorted(RESULTS.glob(f"{merged_name}_*.json"))
    }
    merged = merge_grids(grids)
    (RESULTS / f"{merged_name}.json").write_text(json.dumps(merged, indent=1))
    (RESULTS / f"{merged_name}.md").write_text(table(merged["fractions"]) + "\n")
    efficiency_figure(RESULTS / f"{merged_name}.json", RESULTS / f"{merged_name}.png")


def main() -> None:
    """Run the grid fraction by fraction, rewriting the results after each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/data_efficiency")
    parser.add_argument(
        "--arms",
        nargs="+",
        default=ARMS,
        help="configs (comma-joined overlays allowed), the first the baseline; default: "
        + " ".join(ARMS),
    )
    parser.add_argument(
        "--full-runs",
        help="a `tonics compare --split val` directory (validation every 200 steps) whose "
        "finished runs of these arms serve the 1.0 fraction (the whole training split: the same "
        "training), linked instead of trained again",
    )
    parser.add_argument(
        "--name",
        default="data_efficiency_curriculum",
        help="the grid's results name under benchmarks/results (must start with MERGED_)",
    )
    parser.add_argument(
        "--merged",
        default="data_efficiency",
        help="the merged table's name: grids named MERGED_* are merged into MERGED.{json,md,png} "
        "(scenes: --merged scenes_data_efficiency --name scenes_data_efficiency_grid)",
    )
    add_fit_args(parser)
    args = parser.parse_args()
    if not args.name.startswith(f"{args.merged}_"):
        parser.error(f"--name {args.name}: start it with {args.merged}_ so the merge finds it")
    quiet_known_noise()
    rows = earlier_fractions(RESULTS / f"{args.name}.json", args.arms, args.seeds)
    for fraction in args.fractions:
        extra = ["--trainer.val_check_interval=200", f"--data.subset.fraction={fraction}"]
        extra += args.fit_args
        out = Path(args.out) / f"fraction-{fraction:g}"
        if fraction >= 1 and args.full_runs:
            _link_finished(Path(args.full_runs), out, args.arms, args.seeds)
        rows[f"{fraction:g}"] = compare(args.arms, args.seeds, out, extra=extra, split="val")
        rows = dict(sorted(rows.items(), key=lambda item: float(item[0])))
        result = {
            "benchmark": "data_efficiency",
            "written_by": written_by(),
            "seeds": args.seeds,
            "fractions": rows,
        }
        (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
        (RESULTS / f"{args.name}.md").write_text(table(rows) + "\n")
        write_merged(args.merged)
        print(table(rows), file=sys.stderr)
        recall = rows[f"{fraction:g}"]["metrics"]["recall_mean"]
        line = {"benchmark": "data_efficiency", "fraction": fraction, "recall_mean": recall}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
