"""Budget: random batches, the real-object curriculum and mined batches at a longer training
budget and at batch 128, heads on frozen towers (the feature cache makes both affordable here),
on the demo's validation split with 5 paired seeds.

    python benchmarks/budget.py [--seeds 0 1 2 3 4] [--out runs/budget] [--settings steps2400 batch128]
        [--arms random objects_ramp mined_object_p10]

Arms: `configs/ablations/base.yaml` + `frozen_random.yaml` (the baseline), + `frozen_objects_ramp.yaml`
(the default curriculum's stages on frozen towers) and + `frozen_mined_object_p10.yaml` (mined
batches within the anchor's object, p = 10). Settings: `steps2400` (2,400 steps instead of 600,
validation every 300 steps: where the validation curve flattens), `batch128` (600 steps of 128
pairs instead of 32). Each setting is one `tonics compare --split val`; finished runs are reused.
Every run trained here is timed (wall seconds, this machine as it is, other jobs included) and
the times kept, so a resumed grid still reports them. Writes `benchmarks/results/budget.json`
(per setting: the compare summary with per-seed figures; seconds per run per arm; the
validation curves stay in each setting's run directory) and `budget.md` (per setting and metric:
each arm's mean and the paired difference from random batches with its 95% t interval; the mean
seconds per run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tonics.analysis.results import markdown
from tonics.commands.noise import quiet_known_noise
from tonics.train.compare import _done, arm_name, compare, fit_once, run_directory

A = "configs/ablations"
ARMS = {
    "random": f"{A}/base.yaml,{A}/frozen_random.yaml",
    "objects_ramp": f"{A}/base.yaml,{A}/frozen_objects_ramp.yaml",
    "mined_object_p10": f"{A}/base.yaml,{A}/frozen_mined_object_p10.yaml",
}
SETTINGS = {
    "steps2400": ["--trainer.max_steps=2400", "--trainer.val_check_interval=300"],
    "batch128": ["--data.batch_size=128", "--trainer.val_check_interval=300"],
}
RESULTS = Path(__file__).parent / "results"


def timed_runs(setting: str, arms: list[str], out: Path, seeds: list[int], seconds: dict) -> None:
    """Train every (seed, arm) of `setting` not yet finished, seed-major, recording wall seconds."""
    for seed in seeds:
        for arm in arms:
            if _done(run_directory(out, arm, seed), "val"):
                continue
            start = time.perf_counter()
            fit_once(arm, seed, out, SETTINGS[setting], split="val")
            key = f"{arm_name(arm)}-seed{seed}"
            seconds.setdefault(setting, {})[key] = round(time.perf_counter() - start, 1)
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
        lines += [f"## {setting}: {' '.join(SETTINGS[setting])}", "", markdown(summary), ""]
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
        default=list(ARMS),
        choices=list(ARMS),
        help="the first is the baseline (default: all three)",
    )
    args = parser.parse_args()
    arms = [ARMS[name] for name in args.arms]
    quiet_known_noise()
    path = RESULTS / "budget.json"
    seconds = json.loads(path.read_text()).get("seconds_per_run", {}) if path.exists() else {}
    for setting in args.settings:
        out = Path(args.out) / setting
        timed_runs(setting, arms, out, args.seeds, seconds)
        summary = compare(arms, args.seeds, out, extra=SETTINGS[setting], split="val")
        save(seconds=seconds, summaries={setting: summary})
        print(json.dumps({"setting": setting, "done": True}), flush=True)


if __name__ == "__main__":
    main()
