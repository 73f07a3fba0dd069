"""Validation cannot disturb training: the same seed trains the same batches, dropout and losses
whatever the validation cadence (evaluation loaders draw from their own random generator)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from helpers import tiny_config

from tonics.cli import cli_main


def _losses(tiny_dataset, directory: Path, every: int) -> list[str]:
    split_file, root = tiny_dataset
    directory.mkdir()
    overrides = {"trainer.max_steps": 8, "trainer.val_check_interval": every}
    config = tiny_config(directory / "fit.yaml", split_file, root, directory, **overrides)
    settings = yaml.safe_load(Path(config).read_text())
    settings["data"]["stages"][-1]["opening"] = {"text": 1}  # BERT's dropout draws from torch's RNG
    Path(config).write_text(yaml.safe_dump(settings))
    cli_main(["fit", "--config", config, "--no_test", "true"])
    with open(next(directory.rglob("curriculum_steps.csv")), newline="") as handle:
        return [row["loss"] for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_training_losses_do_not_depend_on_the_validation_cadence(tiny_dataset, tmp_path):
    every_two = _losses(tiny_dataset, tmp_path / "two", 2)
    every_three = _losses(tiny_dataset, tmp_path / "three", 3)
    assert len(every_two) == 8
    assert every_two == every_three
