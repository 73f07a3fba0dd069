"""Budget: random batches, the real-object curriculum and mined batches at a longer training
budget and at batch 128, heads on frozen towers (the feature cache makes both affordable here) or
with the towers' top blocks open (the prefix cache), on the demo's validation split with 5 paired
seeds.

    python benchmarks/budget.py [--seeds 0 1 2 3 4] [--out runs/budget]
        [--settings steps2400 batch128]
        [--arms random objects_ramp mined_object_p10]
    python benchmarks/budget.py --settings batch128 --arms towers_random towers_curriculum

Arms on frozen towers: `configs/ablations/base.yaml` + `frozen_random.yaml` (the baseline),
+ `frozen_objects_ramp.yaml` (the default curriculum's stages on frozen towers) and
+ `frozen_mined_object_p10.yaml` (mined batches within the anchor's object, p = 10). Arms with the
towers' top blocks opened (the prefix cache serves their frozen part):
`configs/demo.yaml,configs/overlays/random_baseline.yaml`
(`towers_random`, the baseline) and `configs/demo.yaml`
(`towers_curriculum`, the default); they run in `<out>/<setting>-open` and are reported as the
setting `<setting>-open`. Settings: `steps2400` (2,400 steps instead of 600, validation every
300 steps: where the validation curve flattens), `batch128` (600 steps of 128 pairs instead of
32). Each setting is one `tonics compare --split val`; finished runs are reused. Every run
trained here is timed (wall seconds, this machine as it is, other jobs included) and the times
kept, so a resumed grid still reports them.
Writes `benchmarks/results/budget.json` (per setting: the compare summary with per-seed figures;
seconds per run per arm; the validation curves stay in each setting's run directory) and
`budget.md` (per setting and metric: each arm's mean and the paired difference from random
batches with its 95% t interval; the mean seconds per run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import add_fit_args, results_dir

from tonics.analysis.results import markdown
from tonics.commands.noise import quiet_known_noise
from tonics.train.compare import _done, arm_name, compare, fit_once, run_directory

A = "configs/ablations"
ARMS = {
    "random": f"{A}/base.yaml,{A}/frozen_random.yaml",
    "objects_ramp": f"{A}/base.yaml,{A}/frozen_objects_ramp.yaml",
    "mined_object_p10": f"{A}/base.yaml,{A}/frozen_mined_object_p10.yaml",
    "towers_random": "configs/demo.yaml,configs/overlays/random_baseline.yaml",
    "towers_curriculum": "configs/demo.yaml",
}
SETTINGS = {
    "steps2400": ["--trainer.max_steps=2400", "--trainer.val_check_interval=300"],
    "batch128": ["--data.loader.batch_size=128", "--trainer.val_check_interval=300"],
}
RESULTS = results_dir()


def timed_runs(
    setting: str,
    key: str,
    arms: list[str],
    out: Path,
    seeds: list[int],
    seconds: dict,
    fit_args: list[str],
) -> None:
    """Train every (seed, arm) of `setting` not yet finished, seed-major, recording wall seconds
    under `key` (the setting, or `<setting>-open` for open towers)."""
    for seed in seeds:
        for arm in arms:
            if _done(run_directory(out, arm, seed), "val"):
                continue
            start = time.perf_counter()
            fit_once(arm, seed, out, SETTINGS[setting] + fit_args, split="val")
            run = f"{arm_name(arm)}-seed{seed}"
            seconds.setdefault(key, {})[run] = round(time.perf_counter() - start, 1)
            save(seconds=seconds)


def save(*, seconds: dict, summaries: dict | None = None) -> None:
    """Rewrite `budget.json` (keeping what it holds) and `budget.md`."""
    path = RESULTS / "budget.json"
    result = json.loads(path.read_text()) if path.exists() else {"benchmark": "budget"}
    times = result.setdefault("seconds_per_run", {})  # another setting's process may write too
    for setting, runs in seconds.items():
        times.setdefault(setting, {}).update(runs)
    result.setdefault("settings", {}).update(summaries or {})
    path.write_text(json.dumps(result, indent=1))
    lines = []
    for setting, summary in result["settings"].items():
        times = result["seconds_per_run"].get(setting, {})
        cost = {
            arm: [s for run, s in times.items() if run.rsplit("-seed", 1)[0] == arm]
            for arm in summary["arms"]
        }
        cost_text = ", ".join(
            f"{arm} {sum(v) / len(v):.0f} s ({len(v)} runs)" for arm, v in cost.items() if v
        )
        flags = " ".join(SETTINGS[setting.removesuffix("-open")])
        lines += [f"## {setting}: {flags}", "", markdown(summary), ""]
        lines += [f"Seconds per run (wall, this machine, shared): {cost_text or 'not timed'}", ""]
    (RESULTS / "budget.md").write_text("\n".join(lines))


def main() -> None:
    """Run (or reuse) every setting's comparison and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="runs/budget")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument(
        "--arms",
        nargs="+",
        default=["random", "objects_ramp", "mined_object_p10"],
        choices=list(ARMS),
        help="the first is the baseline (default: the three frozen-tower arms)",
    )
    add_fit_args(parser)
    args = parser.parse_args()
    arms = [ARMS[name] for name in args.arms]
    quiet_known_noise()
    seconds: dict = {}  # this process's run times; `save` merges them into the file's
    open_towers = [name.startswith("towers_") for name in args.arms]
    if any(open_towers) and not all(open_towers):
        parser.error("--arms: towers_* arms (open towers) cannot be mixed with frozen-tower arms")
    for setting in args.settings:
        key = f"{setting}-open" if all(open_towers) else setting
        out = Path(args.out) / key
        timed_runs(setting, key, arms, out, args.seeds, seconds, args.fit_args)
        extra = SETTINGS[setting] + args.fit_args
        summary = compare(arms, args.seeds, out, extra=extra, split="val")
        save(seconds=seconds, summaries={key: summary})
        recall = summary["metrics"]["recall_mean"]
        print(
            json.dumps({"benchmark": "budget", "setting": key, "recall_mean": recall}), flush=True
        )


if __name__ == "__main__":
    main()
