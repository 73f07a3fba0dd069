"""Seed-0 demo figures before and after a change to the code: `tonics fit --config
configs/demo.yaml` run at two commits, each from its own git worktree, and compared step by step
(the training loss of every step) and figure by figure (every test and transfer figure of the
last weights and of the best checkpoint). A refactoring that should not change behaviour must come
out with 0 differing steps and 0 differing figures.

    python benchmarks/identical_figures.py --before COMMIT [--after COMMIT] [--fit-args ...]

`--after` defaults to HEAD. Each commit's run is kept under `runs/identical/<commit>/run` (its
worktree is removed once it has run) and reused by a later call (a run takes about 10 minutes on
2 cores). Prints one JSON line and writes it to `benchmarks/results/renovation_identical.json` (or
`--name`.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from common import add_fit_args, results_dir, written_by

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["fit", "--config", "configs/demo.yaml", "--trainer.enable_progress_bar=false"]


def resolve(commit: str) -> str:
    """The full hash of `commit`."""
    done = subprocess.run(
        ["git", "rev-parse", "--verify", commit + "^{commit}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"identical_figures: '{commit}' is not a commit of this repository")
    return done.stdout.strip()


def run_at(commit: str, root: Path, fit_args: list[str]) -> Path:
    """The run directory of the seed-0 demo fit at `commit` (run once, then reused)."""
    folder = root / commit[:12]
    done = folder / "run" / "retrieval_test.json"
    if done.is_file():
        return done.parent
    tree = folder / "tree"
    if not tree.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), commit], cwd=REPO, check=True
        )
    link = tree / "tonics" / "ontology"  # the top-level `ontology/` installs as tonics.ontology
    if not link.exists():
        link.symlink_to(Path("..") / "ontology")
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tonics; from tonics.cli import cli_main; "
            "assert tonics.__file__.startswith(sys.argv[1]), tonics.__file__; "
            "cli_main(sys.argv[2:])",
            str(tree),
            *COMMAND,
            *fit_args,
        ],
        cwd=tree,
        env=environment,
        check=True,
    )
    versions = sorted((tree / "runs" / "tonics").glob("version_*"), key=lambda p: p.stat().st_mtime)
    versions[-1].rename(folder / "run")
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=True)
    return folder / "run"


def step_losses(run: Path) -> dict[int, str]:
    """Each training step's loss as written (a string: compared exactly)."""
    with open(run / "curriculum_steps.csv", newline="") as handle:
        return {int(row["step"]): row["loss"] for row in csv.DictReader(handle)}


def figures(run: Path) -> dict[str, float]:
    """Every figure of `retrieval_test.json`, flattened (best checkpoint, last, transfer)."""
    found = json.loads((run / "retrieval_test.json").read_text())
    flat = {}
    for part, values in (("best", found), ("last", found.get("last", {}))):
        flat.update({f"{part}:{k}": v for k, v in values.items() if isinstance(v, float)})
    flat.update({f"transfer:{k}": v for k, v in found.get("transfer", {}).items()})
    return flat


def main() -> None:
    """Run (or reuse) both commits' fits and compare them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--runs", default="runs/identical")
    parser.add_argument(
        "--name", default="renovation_identical", help="the result file's name (without .json)"
    )
    add_fit_args(parser)
    args = parser.parse_args()
    root = Path(args.runs).resolve()
    commits = {"before": resolve(args.before), "after": resolve(args.after)}
    runs = {name: run_at(commit, root, args.fit_args) for name, commit in commits.items()}
    losses = {name: step_losses(run) for name, run in runs.items()}
    values = {name: figures(run) for name, run in runs.items()}
    steps = sorted(set(losses["before"]) | set(losses["after"]))
    keys = sorted(set(values["before"]) | set(values["after"]))
    line = {
        "benchmark": "identical_figures",
        "what": "seed-0 demo fit (configs/demo.yaml) at two commits, compared step by step",
        "fit": " ".join(["tonics", *COMMAND, *args.fit_args]),
        "commits": {name: commit[:12] for name, commit in commits.items()},
        "steps_compared": len(steps),
        "steps_differing": sum(losses["before"].get(s) != losses["after"].get(s) for s in steps),
        "figures_compared": len(keys),
        "figures_differing": [k for k in keys if values["before"].get(k) != values["after"].get(k)],
        "before": values["before"],
        "after": values["after"],
        "written_by": written_by(),
    }
    (results_dir() / f"{args.name}.json").write_text(json.dumps(line, indent=1) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
