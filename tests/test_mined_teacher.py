"""Mined batches ranked by the model being trained (`mine_teacher: current`): the schedule of
teacher versions, the rows against the heads' embeddings, and through `tonics fit`: the batches
follow the refreshed model, and a resumed run draws exactly the uninterrupted run's batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import tiny_config

from tonics.cli import cli_main
from tonics.errors import ConfigError
from tonics.sampling.curriculum import Curriculum, Stage
from tonics.sampling.mined import TeacherSchedule
from tonics.train.teacher import current_teacher_rows


def test_a_refresh_ranks_the_batches_from_a_fixed_delay_on_and_a_missing_one_is_an_error():
    schedule = TeacherSchedule(np.zeros((4, 2)), every=10, steps_per_epoch=25, delay=3)
    assert [schedule.version_at(s) for s in (0, 12, 13, 22, 23)] == [0, 0, 1, 1, 2]
    assert not schedule.due(0) and schedule.due(10) and not schedule.due(11)
    with pytest.raises(RuntimeError, match="needed for step 13 but is not made yet"):
        schedule.rows_for(13)
    schedule.add(10, np.ones((4, 2)))
    assert schedule.rows_for(12).sum() == 0 and schedule.rows_for(13).sum() == 8
    with pytest.raises(ValueError, match="multiple of 10"):
        schedule.add(15, np.ones((4, 2)))


def test_the_schedule_keeps_the_versions_its_epoch_replays_and_restores_them():
    schedule = TeacherSchedule(np.zeros((3, 2)), every=10, steps_per_epoch=25, delay=3)
    for step in (10, 20, 30):
        schedule.add(step, np.full((3, 2), step))
    # at step 30 the epoch began at 25 (version 2): versions 0 and 1 can never be asked again
    assert sorted(schedule.versions) == [2, 3]
    state = schedule.state_dict(30)
    fresh = TeacherSchedule(np.zeros((3, 2)), every=10, steps_per_epoch=25, delay=3)
    fresh.load_state_dict(state)
    assert np.array_equal(fresh.rows_for(27), schedule.rows_for(27))
    assert np.array_equal(fresh.rows_for(33), np.full((3, 2), 30))


def test_stages_mining_with_the_current_model_share_one_refresh_interval():
    stage = dict(mix={"mined": 1.0}, steps=5)
    with pytest.raises(ConfigError, match=r"data.stages\[1\].mining.refresh"):
        Curriculum(
            [
                Stage(mining={"teacher": "current", "refresh": 10}, **stage),
                Stage(mining={"teacher": "current", "refresh": 20}, **stage),
            ]
        )
    with pytest.raises(ConfigError, match=r"data.stages\[0\].mining.teacher"):
        Curriculum([Stage(mix={"mined": 1.0}, mining={"teacher": "teacher"})])
    current = Stage(mining={"teacher": "current", "refresh": 7}, **stage)
    assert Curriculum([current]).teacher_refresh() == 7


class _Cache:
    def __init__(self, image, text, usable):
        self.image, self.text, self.usable = image, text, usable
        self.store = type("Store", (), {"num_pairs": len(image)})()

    def lookup(self, indices):
        usable = self.usable[indices]  # as the feature cache: rows of the usable pairs only
        return self.image[indices][usable], self.text[indices][usable], usable


class _Module(torch.nn.Module):
    def __init__(self, cache):
        super().__init__()
        self.model = torch.nn.Module()
        self.model.text_head = torch.nn.Linear(5, 3)
        self.model.vision_head = torch.nn.Linear(4, 3)
        self.model.embed_dim = 3
        self.unfrozen = {"text": None, "vision": None}
        self.feature_cache, self.prefix_caches = cache, {}
        self.device = torch.device("cpu")


def test_current_teacher_rows_average_the_heads_image_and_text_cosines():
    torch.manual_seed(0)
    image, text = torch.randn(7, 4), torch.randn(7, 5)
    usable = torch.tensor([True] * 5 + [False, True])
    module = _Module(_Cache(image, text, usable))
    module.train()
    rows = current_teacher_rows(module, chunk=3)
    assert module.training and module.model.text_head.training  # modes restored
    unit = lambda m: torch.nn.functional.normalize(m, dim=-1)  # noqa: E731
    with torch.no_grad():
        img, txt = unit(module.model.vision_head(image)), unit(module.model.text_head(text))
    expected = ((img @ img.T + txt @ txt.T) / 2).numpy()
    keep = usable.numpy()
    assert np.allclose((rows @ rows.T)[np.ix_(keep, keep)], expected[np.ix_(keep, keep)], atol=1e-5)
    assert not rows[~keep].any()  # a pair without its image never trains: a zero row


def _fit(
    tmp_path, split_file, root, name, teacher, max_steps, ckpt=None, feature_cache=True, **mined
):
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    stages = [
        {"name": "warm", "mix": {"random": 1.0}, "steps": 2},
        {
            "name": "mined",
            "mix": {"mined": 1.0},
            "mining": {"skip": 1, "teacher": teacher, "refresh": 2},
            "steps": 20,  # a fixed length: its learning rates do not depend on max_steps
            **mined,
        },
        {"name": "tail", "mix": {"random": 1.0}},
    ]
    record = {"class_path": "helpers.RecordBatches",
              "init_args": {"path": str(directory / "batches.jsonl")}}  # fmt: skip
    config = tiny_config(
        directory / "c.yaml", split_file, root, directory,
        **{"data.stages": stages, "data.cache.enabled": feature_cache,
           "trainer.max_steps": max_steps, "trainer.limit_val_batches": 0,
           "trainer.callbacks": [record]},
    )  # fmt: skip
    args = ["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"]
    args += ["--curriculum.lookahead", "2"]
    cli_main(args + (["--ckpt_path", str(ckpt)] if ckpt else []))
    return [json.loads(line) for line in (directory / "batches.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_batches_follow_the_refreshed_model_and_resume_exactly(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    frozen = _fit(tmp_path, split_file, root, "frozen", "frozen", 12)
    current = _fit(tmp_path, split_file, root, "current", "current", 12)
    # version 0 is the frozen towers: the runs part only once the refresh after step 2 ranks (4)
    assert current[:4] == frozen[:4] and current[4:] != frozen[4:]
    _fit(tmp_path, split_file, root, "part", "current", 5)
    last = sorted((tmp_path / "part" / "tonics").glob("version_*/checkpoints/last.ckpt"))[-1]
    resumed = _fit(tmp_path, split_file, root, "part", "current", 12, ckpt=last)
    assert len(current) == 12 and resumed == current  # crosses an epoch (9 batches) too


def test_a_current_teacher_without_the_feature_cache_is_refused(tiny_dataset, tmp_path, capsys):
    split_file, root = tiny_dataset
    with pytest.raises(SystemExit) as exit_info:
        _fit(tmp_path, split_file, root, "nocache", "current", 3, feature_cache=False)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "data.cache.enabled" in message and "set data.cache.enabled: true" in message


@pytest.mark.slow
def test_a_current_teacher_re_embeds_through_opened_top_blocks(
    tiny_dataset, tmp_path, caplog, monkeypatch
):
    split_file, root = tiny_dataset
    monkeypatch.setenv("TONICS_CACHE", str(tmp_path / "cache"))  # its prefix cache stays its own
    caplog.set_level("INFO", logger="tonics.train.callbacks")
    batches = _fit(
        tmp_path, split_file, root, "open", "current", 6, opening={"text": 1, "vision": 1}
    )
    assert len(batches) == 6
    refreshes = [r.message for r in caplog.records if "teacher re-embedded" in r.message]
    assert [m.split("after step ")[1].split()[0] for m in refreshes] == ["2", "4", "6"]
    steps = (next((tmp_path / "open").rglob("curriculum_steps.csv"))).read_text().splitlines()
    assert all(",prefix text=1 vision=1" in line for line in steps[3:])  # the opened steps
