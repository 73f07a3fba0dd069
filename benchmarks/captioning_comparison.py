"""Contrastive only against contrastive + CoCa-style captioning, with random batches and with the
TOnICS curriculum, on the demo's validation split (5 paired seeds) and its held-out transfer split.

    python benchmarks/captioning_comparison.py [--seeds 0 1 2 3 4] [--out runs/captioning_cmp]

Runs `tonics compare` over four arms (`configs/demo.yaml,configs/overlays/random_baseline.yaml`,
the same +
`configs/overlays/captioning_random.yaml`, `configs/demo.yaml`, the same +
`configs/overlays/captioning_demo.yaml`) with `--split val --held-out transfer` (`--no-transfer`:
validation only) and validation
every 200 steps; finished runs are reused. Writes `benchmarks/results/captioning_comparison.json`
and `.md`: every arm against random batches (the compare table), and the two pairs that isolate
the captioning objective (each recipe with the head against itself without), with 95% t intervals
of the paired differences; the validation curves beside them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import add_fit_args, results_dir

from tonics.analysis.results import markdown, summarise, validation_figures
from tonics.commands.held_out import held_out
from tonics.commands.noise import quiet_known_noise
from tonics.train.compare import arm_name, compare, run_directory

ARMS = [
    "configs/demo.yaml,configs/overlays/random_baseline.yaml",
    "configs/demo.yaml,configs/overlays/random_baseline.yaml,configs/overlays/captioning_random.yaml",
    "configs/demo.yaml",
    "configs/demo.yaml,configs/overlays/captioning_demo.yaml",
]
PAIRS = [("random_baseline", "captioning_random"), ("demo", "captioning_demo")]
RESULTS = results_dir()


def main() -> None:
    """Run (or reuse) the comparison and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/captioning_cmp")
    parser.add_argument(
        "--no-transfer",
        action="store_true",
        help="validation figures only (the transfer split is measured per run, ~2-4 min each)",
    )
    add_fit_args(parser)
    args = parser.parse_args()
    quiet_known_noise()
    out = Path(args.out)
    also = (lambda root: {}) if args.no_transfer else held_out("transfer")
    extra = ["--trainer.val_check_interval=200", *args.fit_args]
    against_random = compare(ARMS, args.seeds, out, extra=extra, split="val", also=also)
    names = {arm_name(a): a for a in ARMS}
    result = {"benchmark": "captioning_comparison", "against_random": against_random}
    sections = ["## Every arm against random batches (validation; transfer_* rows: transfer split)"]
    sections.append(markdown(against_random))
    for without, with_head in PAIRS:
        figures = {
            arm: [
                validation_figures(run_directory(out, names[arm], s))
                | also(run_directory(out, names[arm], s))
                for s in args.seeds
            ]
            for arm in (without, with_head)
        }
        summary = {**summarise(figures), "split": "val"}
        result[f"{with_head} - {without}"] = summary
        sections += [
            f"## The captioning objective: {with_head} against {without}",
            markdown(summary),
        ]
    (RESULTS / "captioning_comparison.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "captioning_comparison.md").write_text("\n\n".join(sections) + "\n")
    shutil.copy(out / "validation_curves.png", RESULTS / "captioning_comparison_curves.png")
    print("\n\n".join(sections), file=sys.stderr)
    recall = against_random["metrics"]["recall_mean"]
    print(json.dumps({"benchmark": "captioning_comparison", "recall_mean": recall}))


if __name__ == "__main__":
    main()
