"""The curriculum's per-step log (`curriculum_steps.csv`, a row per training step: stage, batch
kind and node, loss, accuracies, hardness, timing and feature path) and the per-stage summary
(`stage_summary.json`) made from it.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

STEP_FIELDS = (
    "step",
    "epoch",
    "stage",
    "stage_name",
    "kind",
    "node",
    "depth",
    "loss",
    "acc_i2t",
    "acc_t2i",
    "hardness_mean",
    "hardness_max",
    "false_negative_rows",
    "temperature",
    "data_s",
    "step_s",
    "path",
)


NUMERIC_FIELDS = {"step", "epoch", "stage", "depth"}


def read_step_rows(path: Path) -> list[dict]:
    """The rows of a `curriculum_steps.csv`, numbers parsed (empty cells stay '')."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if value not in ("", None) and key not in ("stage_name", "kind", "node", "path"):
                    row[key] = int(value) if key in NUMERIC_FIELDS else float(value)
            rows.append(row)
    return rows


def stage_summary(rows: list[dict], curriculum, caches: dict | None = None) -> list[dict]:
    """Per stage: steps, first step, means of loss/accuracy/hardness, step time, node depths and
    top nodes, and how its steps got their features (`feature_paths`: pooled cache, frozen-prefix
    cache or live encoders) with each cache's size and build time (`caches`)."""
    by_stage: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_stage[row["stage"]].append(row)
    summary = []
    for index, stage in enumerate(curriculum.stages):
        stage_rows = by_stage.get(index, [])
        entry = {
            "stage": index,
            "name": stage.name,
            "steps": len(stage_rows),
            "first_step": stage_rows[0]["step"] if stage_rows else None,
            "mix": stage.mix,
        }
        for key in (
            "loss",
            "acc_i2t",
            "acc_t2i",
            "hardness_mean",
            "hardness_max",
            "temperature",
            "step_s",
            "data_s",
        ):
            values = [r[key] for r in stage_rows if isinstance(r.get(key), (int, float))]
            entry[f"mean_{key}"] = round(sum(values) / len(values), 5) if values else None
        entry["kinds"] = dict(Counter(r["kind"] for r in stage_rows))
        paths = Counter(r.get("path") or "unknown" for r in stage_rows)
        entry["feature_paths"] = dict(paths)
        entry["caches"] = {p: (caches or {})[p] for p in paths if p in (caches or {})}
        entry["top_nodes"] = Counter(r["node"] for r in stage_rows if r["node"]).most_common(10)
        entry["depth_histogram"] = dict(
            sorted(Counter(r["depth"] for r in stage_rows if r["depth"] != "").items())
        )
        summary.append(entry)
    return summary
