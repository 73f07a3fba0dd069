"""Data efficiency: random batches against the TOnICS curriculum at fractions of the demo's
training images, on the validation split, with paired seeds.

    python benchmarks/data_efficiency.py [--fractions 0.1 0.25 0.5 1.0] [--seeds 0 1 2 3 4]
        [--out runs/data_efficiency]

For each fraction, `tonics compare configs/random_baseline.yaml configs/demo.yaml --split val`
with `--data.train_fraction F` (a nested, seeded subset of the training images; the ontology is
built on it) and validation every 200 steps. Finished runs are reused, so an interrupted grid
resumes; the results files are rewritten after every fraction, so a partial grid is kept:
`benchmarks/results/data_efficiency.json`, `.md` and `.png` (per fraction: each arm's mean validation
mean recall and within-object R@1 both ways, and the paired difference curriculum - random with
a 95% t interval).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tonics.analysis.data_efficiency import efficiency_figure
from tonics.commands.noise import quiet_known_noise
from tonics.train.compare import compare

ARMS = ["configs/random_baseline.yaml", "configs/demo.yaml"]
METRICS = (
    "recall_mean",
    "within_object_image_to_text_R@1",
    "within_object_text_to_image_R@1",
    "image_to_text_R@1",
    "text_to_image_R@1",
)
RESULTS = Path(__file__).parent / "results"


def table(rows: dict[str, dict]) -> str:
    """Markdown: one line per (fraction, metric), arms' means and the paired difference."""
    lines = [
        "| train fraction | metric (val) | random_baseline | demo | demo - random [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for fraction, summary in rows.items():
        for metric in METRICS:
            entry = summary["metrics"].get(metric)
            if entry is None:
                continue
            d = entry["demo - random_baseline"]
            interval = f"{d['difference']:+.2f} [{d['t_low']:+.2f}, {d['t_high']:+.2f}]"
            lines.append(
                f"| {fraction} | {metric} | {entry['random_baseline']:.2f} | {entry['demo']:.2f} "
                f"| {interval} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Run the grid fraction by fraction, rewriting the results after each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/data_efficiency")
    args = parser.parse_args()
    quiet_known_noise()
    rows: dict[str, dict] = {}
    for fraction in args.fractions:
        extra = ["--trainer.val_check_interval=200", f"--data.train_fraction={fraction}"]
        out = Path(args.out) / f"fraction-{fraction:g}"
        rows[f"{fraction:g}"] = compare(ARMS, args.seeds, out, extra=extra, split="val")
        result = {"benchmark": "data_efficiency", "seeds": args.seeds, "fractions": rows}
        (RESULTS / "data_efficiency.json").write_text(json.dumps(result, indent=1))
        (RESULTS / "data_efficiency.md").write_text(table(rows) + "\n")
        efficiency_figure(RESULTS / "data_efficiency.json", RESULTS / "data_efficiency.png")
        print(json.dumps({"fraction": fraction, "done": True}), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
