"""Run a comparison: two or more training recipes over the same seeds, with paired intervals.

    tonics compare configs/demo.yaml configs/demo.yaml,configs/overlays/random_baseline.yaml \\
        --seeds 0 1 2 3 4 --out runs/cmp

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

import json
from collections.abc import Callable
from pathlib import Path

from tonics.analysis.comparison import plot_curves
from tonics.analysis.results import figures_of, markdown, summarise, validation_figures
from tonics.errors import UsageError


def arm_name(arm: str) -> str:
    """An arm's name: the stem of its (last) config file."""
    return Path(arm.split(",")[-1]).stem


def run_directory(out: Path, arm: str, seed: int) -> Path:
    """Where the run of `arm` with `seed` lives."""
    return out / f"{arm_name(arm)}-seed{seed}"


def _done(root: Path, split: str) -> bool:
    """Whether `root` holds a finished run: its test report, or (validation comparisons) a stage
    summary that counts all the steps its config asks for beside a last checkpoint. A run killed
    midway has a summary and a checkpoint too (both are refreshed at each validation), so the
    step count tells it apart."""
    if split == "test":
        return bool(list(root.rglob("retrieval_test.json")))
    return any(_trained_to_the_end(summary) for summary in root.rglob("stage_summary.json"))


def _trained_to_the_end(summary: Path) -> bool:
    import yaml

    directory = summary.parent
    if not list(directory.rglob("last.ckpt")):
        return False
    config = directory / "config.yaml"
    trainer = (
        (yaml.safe_load(config.read_text()) or {}).get("trainer", {}) if config.is_file() else {}
    )
    max_steps = trainer.get("max_steps")
    if not isinstance(max_steps, int) or max_steps < 0:  # a run bounded by epochs: trust it
        return True
    return sum(stage.get("steps", 0) for stage in json.loads(summary.read_text())) >= max_steps


def fit_once(
    arm: str, seed: int, out: Path, extra: list[str] | None = None, split: str = "test"
) -> Path:
    """Train (unless already done) and test one arm for one seed; returns its run directory."""
    root = run_directory(out, arm, seed)
    if not _done(root, split):
        import shutil

        from tonics.train.cli import lightning_main

        shutil.rmtree(root, ignore_errors=True)  # an interrupted run starts again from scratch
        logger = {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(root), "name": "tonics"},
        }
        configs = [item for path in arm.split(",") for item in ("--config", path)]
        no_test = ["--no_test", "true"] if split == "val" else []
        lightning_main(
            [
                "fit",
                *configs,
                f"--seed_everything={seed}",
                f"--data.seed={seed}",
                f"--trainer.default_root_dir={root}",
                f"--trainer.logger={json.dumps(logger)}",
                "--trainer.enable_progress_bar=false",
                *no_test,
                *(extra or []),
            ]
        )
    return root


def compare(
    configs: list[str],
    seeds: list[int],
    out: Path,
    *,
    which: str = "last",
    extra: list[str] | None = None,
    split: str = "test",
    also: Callable[[Path], dict[str, float]] | None = None,
) -> dict:
    """Run every arm for every seed (seed-major, so a partial comparison is still paired) and
    write the comparison files; returns the summary. `also`: more figures of a finished run
    (from its directory), compared beside the split's (a held-out split's, for instance)."""
    if len(configs) < 2 or len({arm_name(c) for c in configs}) != len(configs):
        raise UsageError("tonics compare: give two or more configs with different file names")
    if len(seeds) < 2:
        raise UsageError("tonics compare: give at least two seeds (--seeds 0 1 2 3 4)")
    out.mkdir(parents=True, exist_ok=True)
    roots: dict[str, list[Path]] = {arm_name(c): [] for c in configs}
    for seed in seeds:
        for config in configs:
            roots[arm_name(config)].append(fit_once(config, seed, out, extra, split))
    read = (lambda r: figures_of(r, which)) if split == "test" else validation_figures

    def both(root: Path) -> dict[str, float]:
        return read(root) | (also(root) if also else {})

    figures = {arm: [both(r) for r in runs] for arm, runs in roots.items()}
    summary = {
        **summarise(figures),
        "checkpoint": which if split == "test" else "last validation",
        "split": split,
        "seed_list": seeds,
    }
    (out / "comparison.json").write_text(json.dumps(summary, indent=2))
    (out / "comparison.md").write_text(markdown(summary) + "\n")
    plot_curves(roots, out / "validation_curves.png")
    return summary
