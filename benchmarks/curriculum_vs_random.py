"""TOnICS curriculum against random batches on the demo data, and what opening the encoders adds.

    python benchmarks/curriculum_vs_random.py [--seeds 0 1 2 3 4] [--out runs/curriculum_vs_random]

Runs `tonics compare configs/demo.yaml,configs/overlays/random_baseline.yaml configs/demo.yaml`
(same model, data, steps and
unfreezing step; the seed sets data order and head initialisation; validation every 200 steps), so
each run also has its best and last test figures, then evaluates on the test split the checkpoint
saved at the end of the last frozen stage (`tonics test --ckpt_path stage{i}-...-end.ckpt`).
Finished runs are reused, so an interrupted benchmark resumes.

Prints Markdown tables (on stderr), then one JSON line: per arm, last minus end-of-frozen-stage
test mean recall (the unfrozen phase must not hurt); curriculum minus random on every figure
(last weights, from `comparison.md`); the validation loss before and after the encoders open.
Differences are paired by seed, with a 95% t interval (a bootstrap interval too in the JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml
from common import add_fit_args

from tonics.analysis.results import figures_of, markdown, validation_curve
from tonics.cli import cli_main
from tonics.eval.intervals import paired_difference
from tonics.train.compare import compare, run_directory

CONFIGS = {
    "random": "configs/demo.yaml,configs/overlays/random_baseline.yaml",
    "tonics": "configs/demo.yaml",
}
# validation every 200 steps instead of the configs' 100: half the validation cost (a validation
# encodes the 484 validation images live); the curve keeps points at 200, 400 and 600
EXTRA = ["--trainer.val_check_interval=200"]


def arm_stages(config: str) -> list[dict]:
    """The stages of an arm (`base.yaml,overlay.yaml`): each file's stages merged into the
    earlier ones element by element, as `tonics fit` merges several --config files."""
    stages: list[dict] = []
    for path in config.split(","):
        own = (yaml.safe_load(Path(path).read_text()).get("data") or {}).get("stages") or []
        for i, stage in enumerate(own):
            if i < len(stages):
                stages[i] = _merged(stages[i], stage)
            else:
                stages.append(dict(stage))
    return stages


def _merged(earlier: dict, later: dict) -> dict:
    """`later`'s keys over `earlier`'s, groups (`nodes`, `mining`, `opening`) key by key."""
    merged = dict(earlier)
    for key, value in later.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "mix":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def first_open_stage(config: str) -> tuple[int, int]:
    """(index of the first stage that opens an encoder, the step it starts at)."""
    stages = arm_stages(config)
    first = next(
        i
        for i, s in enumerate(stages)
        if (s.get("opening") or {}).get("vision") or (s.get("opening") or {}).get("text")
    )
    return first, sum(s["steps"] for s in stages[:first])


def frozen_end_figures(
    config: str, seed: int, out: Path, fit_args: list[str] | None = None
) -> dict[str, float]:
    """Test figures of the checkpoint saved when the last frozen stage ended (tested with the same
    `tonics fit` arguments the run was trained with)."""
    root = run_directory(out, config, seed)
    target = root / "frozen_end"
    if not list(target.rglob("retrieval_report.json")):
        checkpoint = next(root.rglob(f"stage{first_open_stage(config)[0] - 1}-*-end.ckpt"))
        logger = {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(target), "name": "tonics"},
        }
        cli_main(
            [
                "test",
                *(arg for path in config.split(",") for arg in ("--config", path)),
                f"--seed_everything={seed}",
                f"--data.seed={seed}",
                f"--ckpt_path={checkpoint}",
                f"--trainer.default_root_dir={target}",
                f"--trainer.logger={json.dumps(logger)}",
                "--trainer.enable_progress_bar=false",
                *(fit_args or []),
            ]
        )
    report = json.loads(next(target.rglob("retrieval_report.json")).read_text())
    return {k.removeprefix("test/"): v for k, v in report.items() if k.startswith("test/")}


def main() -> None:
    """Train both arms for every seed and report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/curriculum_vs_random")
    add_fit_args(parser)
    args = parser.parse_args()
    out = Path(args.out)
    comparison = compare(list(CONFIGS.values()), args.seeds, out, extra=EXTRA + args.fit_args)
    open_step = first_open_stage(CONFIGS["tonics"])[1]
    lines = [
        f"| arm ({len(args.seeds)} seeds, test mean recall) | end of frozen stages (step "
        f"{open_step}) "
        "| last | last - frozen end [95% CI] |",
        "|---|---|---|---|",
    ]
    result: dict = {
        "benchmark": "curriculum_vs_random",
        "seeds": args.seeds,
        "encoders_open_at_step": open_step,
    }
    loss_rows = []
    for arm, config in CONFIGS.items():
        roots = [run_directory(out, config, s) for s in args.seeds]
        frozen = [
            frozen_end_figures(config, s, out, args.fit_args)["recall_mean"] for s in args.seeds
        ]
        last = [figures_of(r, "last")["recall_mean"] for r in roots]
        d = paired_difference(frozen, last)
        result[f"{arm}_last_minus_frozen_end"] = d.as_dict()
        lines.append(f"| {arm} | {d.mean_a:.2f} | {d.mean_b:.2f} | {d.cell()} |")
        curves = [validation_curve(r, "val/loss") for r in roots]
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        mean_loss = {s: round(statistics.mean(c[s] for c in curves), 3) for s in steps}
        result[f"{arm}_val_loss"] = mean_loss
        loss_rows.append((arm, mean_loss))
    result["comparison"] = comparison["metrics"]
    steps = list(loss_rows[0][1])
    lines += [
        "",
        markdown(comparison),
        "",
        "| val/loss at step | " + " | ".join(map(str, steps)) + " |",
        "|---|" + "---|" * len(steps),
    ]
    lines += [
        f"| {arm} | " + " | ".join(f"{loss[s]:.3f}" for s in steps) + " |"
        for arm, loss in loss_rows
    ]
    print("\n".join(lines), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
