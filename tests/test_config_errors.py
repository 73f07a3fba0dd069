"""Every bad config ends in one line on stderr, exit code 2, naming the YAML key as written."""

from __future__ import annotations

import pytest
from helpers import tiny_config

from tonics.cli import cli_main

STAGES = [{"name": "a", "mix": {"random": 1.0}, "steps": 2}, {"name": "b", "mix": {"random": 1.0}}]
CASES = {  # name: (overrides, the key the message must name)
    "batch_size negative": ({"data.loader.batch_size": -1}, "data.loader.batch_size"),
    "batch_size zero": ({"data.loader.batch_size": 0}, "data.loader.batch_size"),
    "batch_size text": ({"data.loader.batch_size": "abc"}, "data.loader.batch_size"),
    "batch_size above the data": ({"data.loader.batch_size": 5000}, "data.loader.batch_size"),
    "eval_batch_size zero": ({"data.loader.eval_batch_size": 0}, "data.loader.eval_batch_size"),
    "num_workers negative": ({"data.loader.num_workers": -2}, "data.loader.num_workers"),
    "max_text_length zero": ({"data.loader.max_text_length": 0}, "data.loader.max_text_length"),
    "object_source unknown": ({"data.object_source": "boxes"}, "data.object_source"),
    "max_image_pixels zero": ({"data.images.max_pixels": 0}, "data.images.max_pixels"),
    "unknown data key": ({"data.batchsize": 8}, "batchsize"),
    "unfreeze_vision too many blocks": (
        {"data.stages": [STAGES[0], {**STAGES[1], "opening": {"vision": 99}}]},
        "data.stages[1].opening.vision",
    ),
    "unfreeze_text word": (
        {"data.stages": [STAGES[0], {**STAGES[1], "opening": {"text": "some"}}]},
        "data.stages[1].opening.text",
    ),
    "stage kind unknown": (
        {"data.stages": [{"name": "a", "mix": {"hardest": 1.0}}]},
        "data.stages[0].mix",
    ),
    "stage share negative": (
        {"data.stages": [{"name": "a", "mix": {"random": -1.0}}]},
        "data.stages[0].mix",
    ),
    "stage never advances": (
        {"data.stages": [{"name": "a", "mix": {"random": 1.0}}, STAGES[1]]},
        "data.stages[0]",
    ),
    "stage steps zero": (
        {"data.stages": [{**STAGES[0], "steps": 0}, STAGES[1]]},
        "data.stages[0].steps",
    ),
    "stage granularity unknown": (
        {"data.stages": [{**STAGES[0], "nodes": {"granularity": "leaf"}}, STAGES[1]]},
        "data.stages[0].nodes.granularity",
    ),
    "stage depths crossed": (
        {"data.stages": [{**STAGES[0], "nodes": {"min_depth": 9, "max_depth": 3}}, STAGES[1]]},
        "data.stages[0].nodes.min_depth",
    ),
    "lr negative": ({"model.optimizer.lr": -0.1}, "model.optimizer.lr"),
    "encoder_lr negative": ({"model.optimizer.encoder_lr": -1e-5}, "model.optimizer.encoder_lr"),
    "embed_dim zero": ({"model.spec.embed_dim": 0}, "model.spec.embed_dim"),
    "head unknown": ({"model.spec.head": "transformer"}, "model.spec.head"),
    "loss unknown": ({"model.loss.kind": "triplet"}, "model.loss.kind"),
    "false_negatives unknown": (
        {"model.loss.false_negatives": "drop"},
        "model.loss.false_negatives",
    ),
    "min_lr_ratio above one": ({"model.schedule.min_lr_ratio": 2.0}, "model.schedule.min_lr_ratio"),
    "unfreeze_top_k too many": ({"model.opening.top_k": 50}, "model.opening.top_k"),
    "text encoder not found": ({"model.spec.text_encoder": "/nonexistent/bert"}, "text encoder"),
    "reader split file missing": (
        {"data.reader.init_args.split_file": "/nonexistent/split.json"},
        "/nonexistent/split.json",
    ),
    "reader class unknown": (
        {"data.reader.class_path": "tonics.data.readers.NoSuchReader"},
        "data.reader",
    ),
    "trainer max_steps text": ({"trainer.max_steps": "many"}, "trainer.max_steps"),
}


@pytest.mark.parametrize("overrides,key", list(CASES.values()), ids=list(CASES))
def test_bad_config_is_one_line_naming_its_key(tiny_dataset, tmp_path, capsys, overrides, key):
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "c.yaml", split_file, root, tmp_path, **overrides)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", config, "--no_test", "true"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tonics:")]
    assert len(errors) == 1 and key in errors[0], errors
    assert "Traceback" not in capsys.readouterr().err


def test_debug_flag_shows_the_traceback(tiny_dataset, tmp_path, monkeypatch):
    split_file, root = tiny_dataset
    config = tiny_config(
        tmp_path / "c.yaml", split_file, root, tmp_path, **{"model.optimizer.lr": -1.0}
    )
    monkeypatch.setenv("TONICS_DEBUG", "1")
    with pytest.raises(ValueError, match="model.optimizer.lr"):
        cli_main(["fit", "--config", config, "--no_test", "true"])


def test_missing_config_file_and_yaml_syntax(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {lr: [unclosed\n")
    for path in (str(tmp_path / "absent.yaml"), str(bad)):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(["fit", "--config", path])
        assert exit_info.value.code == 2
        errors = [l for l in capsys.readouterr().err.splitlines() if l.startswith("tonics:")]  # noqa: E741
        assert len(errors) == 1 and "config" in errors[0]


def test_help_lists_every_command(capsys):
    from tonics.commands import BY_NAME

    cli_main(["--help"])
    out = capsys.readouterr().out
    for name in (*BY_NAME, "fit", "validate", "test", "predict", "retrieval", "compare"):
        assert f"  {name} " in out


def _printed(capsys, *configs):
    import yaml

    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", *[a for c in configs for a in ("--config", c)], "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


ON_A_BASE = {  # configs that overlay another (the rest resolve alone)
    "configs/ddp.yaml": "configs/demo.yaml",
    "configs/multinode.yaml": "configs/cc3m.yaml",
    "configs/captioning.yaml": "configs/demo.yaml",
    "configs/overlays/captioning_demo.yaml": "configs/demo.yaml",
    "configs/overlays/captioning_random.yaml": (
        "configs/demo.yaml,configs/overlays/random_baseline.yaml"
    ),
    "configs/overlays/random_baseline.yaml": "configs/demo.yaml",
    "configs/overlays/long_budget.yaml": (
        "configs/ablations/base.yaml,configs/ablations/frozen_mined_object_p10.yaml"
    ),
    "configs/overlays/scenes_random.yaml": "configs/scenes.yaml",
    "configs/overlays/scenes_mined.yaml": "configs/scenes.yaml",
}


@pytest.mark.slow
def test_every_shipped_config_resolves(capsys):
    """Every YAML under configs/ resolves to a full `tonics fit` config with stages, alone or on
    the base it overlays (the ablation arms, on configs/ablations/base.yaml, in the next test)."""
    from pathlib import Path

    for path in sorted(Path("configs").rglob("*.yaml")):
        name = str(path)
        if path.parent.name == "ablations":
            continue
        base = ON_A_BASE.get(name)
        config = _printed(capsys, *(base.split(",") if base else []), name)
        assert config["data"]["stages"], name


@pytest.mark.slow
def test_ablation_arms_take_their_stages_whole_from_the_base(capsys):
    from pathlib import Path

    import yaml

    for arm in sorted(Path("configs/ablations").glob("*.yaml")):
        if arm.name == "base.yaml":
            continue
        own = yaml.safe_load(arm.read_text())["data"]["stages"]
        printed = _printed(capsys, "configs/ablations/base.yaml", str(arm))["data"]["stages"]
        assert [s["name"] for s in printed] == [s["name"] for s in own], arm.name
        for mine, got in zip(own, printed, strict=True):
            for group, key, default in (
                ("opening", "text", None),
                ("opening", "vision", None),
                ("nodes", "object_nodes_only", False),
                (None, "ramp_steps", 0),
            ):
                own_group = mine.get(group, {}) if group else mine
                printed_group = got[group] if group else got
                expected = own_group.get(key, default)
                assert printed_group[key] == expected, (arm.name, mine["name"], group, key)


def test_captioning_overlays_add_the_head_to_their_recipe(capsys):
    for recipe, overlay in (
        ("configs/demo.yaml", "configs/captioning.yaml"),
        ("configs/demo.yaml", "configs/overlays/captioning_demo.yaml"),
        (
            "configs/demo.yaml,configs/overlays/random_baseline.yaml",
            "configs/overlays/captioning_random.yaml",
        ),
    ):
        printed = _printed(capsys, *recipe.split(","), overlay)
        assert printed["model"]["loss"]["caption_weight"] == 2.0, overlay
        assert printed["model"]["spec"]["captioner"]["queries"] == 32, overlay
        assert printed["data"]["stages"], overlay  # the recipe's curriculum is kept


def test_the_random_baseline_overlay_changes_only_the_batches(capsys):
    """demo.yaml + the random-baseline overlay: the demo's model, data, steps, stage boundaries
    and openings, with random batches in every stage."""
    demo = _printed(capsys, "configs/demo.yaml")
    random = _printed(capsys, "configs/demo.yaml", "configs/overlays/random_baseline.yaml")
    assert {k: v for k, v in random.items() if k != "data"} == {
        k: v for k, v in demo.items() if k != "data"
    }
    stages, base = random["data"].pop("stages"), demo["data"].pop("stages")
    assert random["data"] == demo["data"]
    assert [s["mix"] for s in stages] == [{"random": 1.0}] * 3
    for key in ("steps", "opening"):
        assert [s[key] for s in stages] == [s[key] for s in base], key
    assert [s["nodes"]["object_nodes_only"] for s in stages] == [False] * 3
    assert [s["ramp_steps"] for s in stages] == [0] * 3


def test_the_long_budget_overlay_is_the_measured_budget_arm(capsys):
    """The mined ablation arm with the long-budget overlay is exactly the arm the budget benchmark
    measured: 2,400 steps validated every 300, nothing else changed."""
    arm = ["configs/ablations/base.yaml", "configs/ablations/frozen_mined_object_p10.yaml"]
    shipped = _printed(capsys, *arm, "configs/overlays/long_budget.yaml")
    measured = _printed(capsys, *arm)
    measured["trainer"].update(max_steps=2400, val_check_interval=300)
    assert shipped == measured
