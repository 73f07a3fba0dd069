"""Read a run directory: per-step curriculum CSV, stage summary, Lightning metrics, ontology."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from tonics.ontology.graph import Ontology


@dataclass
class RunData:
    """Everything the figures need, loaded from one run directory."""

    directory: Path
    steps: list[dict]
    stages: list[dict]
    metrics: list[dict]
    ontology: Ontology | None

    def stage_spans(self) -> list[tuple[int, int, str]]:
        """(first step, last step + 1, stage name) for every stage that ran."""
        spans = []
        for row in self.steps:
            step, name = int(row["step"]), row["stage_name"]
            if spans and spans[-1][2] == name:
                spans[-1] = (spans[-1][0], step + 1, name)
            else:
                spans.append((step, step + 1, name))
        return spans

    def metric_series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a Lightning metric logged in metrics.csv."""
        xs, ys = [], []
        for row in self.metrics:
            if row.get(key) not in (None, ""):
                xs.append(int(float(row["step"])))
                ys.append(float(row[key]))
        return xs, ys


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def load_run(directory: str | Path) -> RunData:
    """Load a run written by `tonics fit` (the logger's version directory)."""
    directory = Path(directory)
    steps_file = directory / "curriculum_steps.csv"
    if not steps_file.is_file():
        candidates = sorted(directory.rglob("curriculum_steps.csv"))
        if not candidates:
            raise FileNotFoundError(
                f"{directory}: no curriculum_steps.csv; pass the run's version directory"
            )
        directory = candidates[-1].parent
    summary = directory / "stage_summary.json"
    ontology_file = directory / "ontology.npz"
    return RunData(
        directory=directory,
        steps=_read_csv(directory / "curriculum_steps.csv"),
        stages=json.loads(summary.read_text()) if summary.is_file() else [],
        metrics=_read_csv(directory / "metrics.csv"),
        ontology=Ontology.load(ontology_file) if ontology_file.is_file() else None,
    )
