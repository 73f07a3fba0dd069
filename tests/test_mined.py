"""Mined batches with false-negative control (B3): an anchor and the pairs ranked after its `skip`
nearest by a teacher; against a brute-force ranking, within an object, and through `tonics fit`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import tiny_config

from tonics.cli import cli_main
from tonics.sampling.mined import MinedKind, teacher_rows


def _teacher(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return teacher_rows(rng.normal(size=(n, 6)), rng.normal(size=(n, 4)))


def test_teacher_rows_average_the_text_and_image_cosines():
    rng = np.random.default_rng(1)
    text, image = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    rows = teacher_rows(text, image)

    def cos(m):
        unit = m / np.linalg.norm(m, axis=1, keepdims=True)
        return unit @ unit.T

    assert np.allclose(rows @ rows.T, (cos(text) + cos(image)) / 2, atol=1e-6)


def test_a_mined_batch_is_the_anchor_and_the_ranks_after_the_skipped_neighbours():
    teacher = _teacher()
    kind = MinedKind(teacher, skip=5)
    available = np.ones(len(teacher), dtype=bool)
    available[[3, 17]] = False
    before = available.copy()
    draw = kind.draw(available, 8, np.random.default_rng(0))
    anchor = int(draw.indices[0])
    others = [j for j in range(len(teacher)) if j != anchor]
    brute = sorted(others, key=lambda j: (-float(teacher[j] @ teacher[anchor]), j))
    expected = [j for j in brute[5:] if before[j]][:7]
    assert draw.indices.tolist() == [anchor, *expected] and draw.kind == "mined"
    assert not available[draw.indices].any() and available.sum() == before.sum() - 8


def test_within_object_ranks_only_the_anchors_object_and_tops_up_at_random():
    teacher = _teacher(30)
    objects = ["dog"] * 6 + ["cat"] * 24
    kind = MinedKind(teacher, skip=2, within="object", main_objects=objects)
    assert set(kind.ranked(0).tolist()) == {1, 2, 3, 4, 5}
    available = np.zeros(30, dtype=bool)
    available[:6] = True
    available[10:20] = True
    draw = kind.draw(available, 6, np.random.default_rng(3))
    assert len(set(draw.indices.tolist())) == 6


@pytest.mark.slow
def test_mined_batches_train_through_the_cli(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "fit.yaml", split_file, root, tmp_path / "runs")
    settings = yaml.safe_load(Path(config).read_text())
    settings["data"]["stages"][1] = {
        "name": "mined",
        "mix": {"mined": 0.5, "random": 0.5},
        "mining": {"skip": 3},
        "steps": 2,
    }
    Path(config).write_text(yaml.safe_dump(settings))
    cli_main(["fit", "--config", config, "--no_test", "true"])
    with open(next((tmp_path / "runs").rglob("curriculum_steps.csv")), newline="") as handle:
        kinds = {row["stage_name"]: row["kind"] for row in csv.DictReader(handle)}
    assert "mined" in kinds
