"""DDP with two CPU processes through the CLI; the plateau rule; the ontology command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import tiny_config

from tonics.cli import cli_main
from tonics.sampling import Curriculum, Stage
from tonics.sampling.plan import RunPlan
from tonics.train.callbacks import CurriculumCallback


@pytest.mark.slow
def test_ddp_two_processes_get_distinct_batches(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    record = {
        "class_path": "helpers.RecordBatches",
        "init_args": {"path": str(tmp_path / "batches.jsonl")},
    }
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        root,
        tmp_path,
        **{
            "trainer.max_steps": 4,
            "trainer.limit_val_batches": 0,
            "trainer.callbacks": [record],
            "trainer.strategy": "ddp",
            "trainer.devices": 2,
            "data.loader.batch_size": 4,
        },
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    command = [
        sys.executable,
        "-m",
        "tonics.cli",
        "fit",
        "--config",
        config,
        "--no_test",
        "true",
        "--checkpoint.monitor",
        "null",
    ]
    subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=300, capture_output=True)
    rows = [json.loads(line) for line in (tmp_path / "batches.jsonl").read_text().splitlines()]
    by_rank = {r: [row for row in rows if row["rank"] == r] for r in (0, 1)}
    assert len(by_rank[0]) == len(by_rank[1]) == 4
    for stage_steps in (
        (0, 1),
        (2, 3),
    ):  # each stage is one pass: the ranks never share a pair in it
        seen = [
            {i for row in by_rank[r] if row["step"] in stage_steps for i in row["indices"]}
            for r in (0, 1)
        ]
        assert len(seen[0]) == len(seen[1]) == 8 and not seen[0] & seen[1]


def _fake_trainer(curriculum, loss):
    return SimpleNamespace(
        sanity_checking=False, training=True, callback_metrics={"val/loss": loss}
    )


def _planned(callback, curriculum):
    """The callback driving a plan of `curriculum` whose sampler exists (nothing draws here)."""
    plan = RunPlan.build(curriculum)
    plan.sampler = SimpleNamespace(teacher_schedule=None)
    callback.use_plan(plan)
    return callback


def test_plateau_advances_after_patience_checks_without_improvement():
    curriculum = Curriculum(
        [
            Stage(name="a", mix={"random": 1.0}, plateau_patience=2),
            Stage(name="b", mix={"diverse": 1.0}),
        ]
    )
    callback = _planned(CurriculumCallback(monitor="val/loss", mode="min", lookahead=5), curriculum)
    for step, loss in ((10, 2.0), (20, 1.5), (30, 1.6), (40, 1.55)):
        callback.steps_done = step
        callback.on_validation_end(_fake_trainer(curriculum, loss), None)
    assert curriculum.starts == [
        0,
        45,
    ]  # two checks without beating 1.5: next stage after lookahead
    assert curriculum.stage_index(44, 100) == 0 and curriculum.stage_index(45, 100) == 1


def test_plateau_on_a_higher_is_better_metric():
    curriculum = Curriculum(
        [
            Stage(name="a", mix={"random": 1.0}, plateau_patience=1),
            Stage(name="b", mix={"diverse": 1.0}),
        ]
    )
    callback = _planned(CurriculumCallback(lookahead=0), curriculum)  # val/recall_mean: higher
    for step, recall in ((10, 20.0), (20, 25.0)):
        callback.steps_done = step
        trainer = _fake_trainer(curriculum, 0.0)
        trainer.callback_metrics = {"val/recall_mean": recall}
        callback.on_validation_end(trainer, None)
    assert curriculum.starts == [0]  # improving: no change
    callback.steps_done = 30
    trainer.callback_metrics = {"val/recall_mean": 24.0}
    callback.on_validation_end(trainer, None)
    assert curriculum.starts == [0, 30]


def test_ontology_stats_command(tiny_dataset, capsys, tmp_path):
    split_file, root = tiny_dataset
    cli_main(
        [
            "ontology",
            "stats",
            "--karpathy",
            split_file,
            "--image-root",
            root,
            "--out",
            str(tmp_path / "o.npz"),
        ]
    )
    stats = json.loads(capsys.readouterr().out)
    assert (
        stats["coverage"] == 1.0
        and stats["pairs"] == 72
        and "horse.n.01" in json.dumps(stats["top_nodes_per_depth"])
    )
    assert stats["depth_histogram"]["0"] == 1 and "unmatched_nouns" in stats
    cli_main(["ontology", "stats", "--load", str(tmp_path / "o.npz")])
    assert json.loads(capsys.readouterr().out)["pairs"] == 72


@pytest.mark.slow
def test_sharded_validation_over_two_processes_equals_one(tiny_dataset, tmp_path):
    """With a captioning head, so one run checks both the retrieval figures (shared by every
    model) and the caption metrics (generated text gathered across ranks)."""
    import csv

    split_file, root = tiny_dataset
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    train = tmp_path / "train"
    head = {
        "model.loss.caption_weight": 1.0,
        "model.spec.captioner": {"layers": 1, "heads": 2, "queries": 4},
    }
    config = tiny_config(
        tmp_path / "train.yaml", split_file, root, train, **{"trainer.max_steps": 3, **head}
    )
    subprocess.run(
        [sys.executable, "-m", "tonics.cli", "fit", "--config", config, "--no_test", "true"],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        capture_output=True,
    )
    checkpoint = next(train.rglob("last.ckpt"))

    def validate(name: str, **overrides) -> dict[str, float]:
        run = tmp_path / name
        config = tiny_config(tmp_path / f"{name}.yaml", split_file, root, run, **overrides, **head)
        command = [sys.executable, "-m", "tonics.cli", "validate", "--config", config]
        command += ["--ckpt_path", str(checkpoint)]
        subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=300, capture_output=True)
        rows = list(csv.DictReader(open(next(run.rglob("metrics.csv")))))
        return {k: float(v) for row in rows for k, v in row.items() if k.startswith("val/") and v}

    def recorder(name: str) -> list[dict]:
        return [
            {
                "class_path": "helpers.RecordEvalBatches",
                "init_args": {"path": str(tmp_path / f"{name}.jsonl")},
            }
        ]

    one = validate("one", **{"trainer.callbacks": recorder("one")})
    two = validate(
        "two",
        **{"trainer.strategy": "ddp", "trainer.devices": 2, "trainer.callbacks": recorder("two")},
    )
    rows = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    shares = [{i for row in rows if row["rank"] == r for i in row["indices"]} for r in (0, 1)]
    single = {
        i
        for line in (tmp_path / "one.jsonl").read_text().splitlines()
        for i in json.loads(line)["indices"]
    }
    assert shares[0] and shares[1] and not shares[0] & shares[1]  # each rank encodes its share
    assert shares[0] | shares[1] == single
    figures = [k for k in one if k != "val/loss"]  # the loss is a mean over differing batches
    assert "val/recall_mean" in figures and "val/images" in figures
    assert "val/caption_CIDEr" in figures
    assert {k: two[k] for k in figures} == {k: one[k] for k in figures}
