"""A finished run's last weights measured on a split held out of training (the demo's `transfer`
split): the figures `tonics compare --held-out SPLIT` adds to a validation comparison.

A validation comparison skips the test pass, so its runs carry no held-out figures. This measures
them afterwards, once per run: `last.ckpt` is exported to a temporary directory and evaluated on
the split with the run's own reader (`data.reader` of its saved config) by the same protocol as
`tonics retrieval` (recall, within-object and caption-novel R@K, caption scores of a model with a
captioning head). The figures are kept in the run directory (`held_out_<split>.json`), so a
second comparison reads them instead of measuring again.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from tonics.errors import InputError


def _one(root: Path, name: str) -> Path:
    """The single file `name` under `root` (a run directory holds one version)."""
    found = sorted(root.rglob(name))
    if not found:
        raise InputError(f"{root}: no {name} (is it a finished `tonics fit` run?)")
    return found[-1]


def run_reader(root: Path):
    """The data reader a run was trained with, built from its saved `config.yaml`."""
    import yaml

    config = yaml.safe_load(_one(root, "config.yaml").read_text()) or {}
    spec = (config.get("data") or {}).get("reader") or {}
    class_path = spec.get("class_path") if isinstance(spec, dict) else None
    if not class_path or "." not in class_path:
        raise InputError(f"{root}: its config.yaml names no data.reader class_path")
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**(spec.get("init_args") or {}))


def held_out_figures(root: Path, split: str) -> dict[str, float]:
    """The run's last weights on `split`, keys prefixed `<split>_` (as `transfer_recall_mean` in
    a test comparison); measured once and kept as `held_out_<split>.json` in the run."""
    from tonics.eval.protocol import evaluate_reader
    from tonics.export import export_checkpoint

    kept = Path(root) / f"held_out_{split}.json"
    if not kept.is_file():
        checkpoint = _one(Path(root), "last.ckpt")
        with tempfile.TemporaryDirectory(prefix="tonics-held-out-") as directory:
            export_checkpoint(checkpoint, directory)
            report = evaluate_reader(run_reader(Path(root)), split=split, model_dir=directory)
        report["checkpoint"] = str(checkpoint)
        kept.write_text(json.dumps(report, indent=2))
    report = json.loads(kept.read_text())
    return {
        f"{split}_{key}": float(value)
        for key, value in report.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def held_out(*splits: str) -> Callable[[Path], dict[str, float]]:
    """`held_out_figures` of these splits, merged, in the form `compare(also=...)` takes."""

    def figures(root: Path) -> dict[str, float]:
        merged: dict[str, float] = {}
        for split in splits:
            merged |= held_out_figures(root, split)
        return merged

    return figures
