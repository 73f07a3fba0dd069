"""Old flat config keys fail with one line naming their new, grouped place; every new place is a
key the parser really accepts."""

from __future__ import annotations

import pytest
import yaml

from tonics.cli import cli_main
from tonics.train.old_keys import DATA_MOVED, MODEL_MOVED, STAGE_MOVED, moved_key


def test_each_old_key_maps_to_its_group():
    assert moved_key("model.lr") == "model.optimizer.lr"
    assert moved_key("model.embed_dim") == "model.spec.embed_dim"
    assert moved_key("model.caption_decoder") == "model.spec.captioner"
    assert moved_key("model.unfreeze_at_step") == "model.opening.at_step"
    assert moved_key("model.loss", "siglip") == "model.loss.kind"
    assert moved_key("data.batch_size") == "data.loader.batch_size"
    assert moved_key("data.train_fraction") == "data.subset.fraction"
    assert moved_key("data.stages[2].unfreeze_vision") == "data.stages[2].opening.vision"
    assert moved_key("data.stages[0].mine_skip") == "data.stages[0].mining.skip"
    # current keys and the new loss group are not moved
    for key, value in (
        ("model.loss", {"kind": "siglip"}),
        ("model.optimizer", {"lr": 0.1}),
        ("data.stages[1].mix", {}),
        ("data.reader", {}),
        ("trainer.max_steps", 3),
    ):
        assert moved_key(key, value) is None, key


def _printed(capsys, *configs: str) -> dict:
    with pytest.raises(SystemExit):
        cli_main(["fit", *(a for c in configs for a in ("--config", c)), "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def _at(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def test_every_new_place_is_a_key_the_parser_accepts(capsys):
    printed = _printed(capsys, "configs/demo.yaml")
    for new in MODEL_MOVED.values():
        _at(printed["model"], new)  # a KeyError fails the test
    _at(printed["model"], "loss.kind")
    for new in DATA_MOVED.values():
        _at(printed["data"], new)
    stage = printed["data"]["stages"][0]
    for new in STAGE_MOVED.values():
        _at(stage, new)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            {"model": {"lr": 0.1}},
            "tonics: config error: model.lr: moved to model.optimizer.lr (in {file}); write it "
            "there, or rewrite every flat key of the file with `tonics upgrade-config {file}` "
            "(TONICS_DEBUG=1 for a traceback)\n",
        ),
        (
            {"model": {"loss": "siglip"}},
            "tonics: config error: model.loss: moved to model.loss.kind (in {file}); write it "
            "there, or rewrite every flat key of the file with `tonics upgrade-config {file}` "
            "(TONICS_DEBUG=1 for a traceback)\n",
        ),
        (
            {"data": {"stages": [{"name": "a", "mix": {"random": 1.0}, "unfreeze_text": 1}]}},
            "tonics: config error: data.stages[0].unfreeze_text: moved to "
            "data.stages[0].opening.text (in {file}); write it there, or rewrite every flat key "
            "of the file with `tonics upgrade-config {file}` (TONICS_DEBUG=1 for a traceback)\n",
        ),
    ],
)
def test_an_old_key_in_a_config_file_is_one_line(tmp_path, capsys, written, expected):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(written))
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", "configs/demo.yaml", "--config", str(old)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == expected.format(file=old)


def test_an_old_key_on_the_command_line_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", "configs/demo.yaml", "--data.batch_size=8"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "tonics: config error: data.batch_size: moved to data.loader.batch_size (on the command "
        "line); write --data.loader.batch_size (TONICS_DEBUG=1 for a traceback)\n"
    )


def test_the_same_settings_at_their_new_places_parse(tmp_path, capsys):
    """The control: the settings the old-key tests write, at their new places, are accepted."""
    new = tmp_path / "new.yaml"
    new.write_text(
        yaml.safe_dump(
            {
                "model": {"optimizer": {"lr": 0.1}, "loss": {"kind": "siglip"}},
                "data": {"loader": {"batch_size": 8}},
            }
        )
    )
    printed = _printed(capsys, "configs/demo.yaml", str(new))
    assert printed["model"]["optimizer"]["lr"] == 0.1
    assert printed["model"]["loss"]["kind"] == "siglip"
    assert printed["data"]["loader"]["batch_size"] == 8


def test_a_checkpoint_with_flat_hyperparameters_still_loads(tmp_path):
    """A checkpoint written before the grouping keeps flat hyperparameters; `from_checkpoint`
    moves each to its group and restores the weights (a captioning head only with its loss)."""
    import torch

    from tonics.model.factory import ModelSpec
    from tonics.train.model_settings import LossSettings
    from tonics.train.module import AlignmentModule

    torch.manual_seed(0)
    spec = ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16, head="mlp")
    trained = AlignmentModule(spec, loss=LossSettings(kind="siglip"))
    flat = {
        "text_encoder": "tiny:bert",
        "vision_encoder": "tiny:vit",
        "embed_dim": 16,
        "head": "mlp",
        "lr": 0.01,
        "loss": "siglip",
        "caption_decoder": {"layers": 1},  # without caption_loss_weight: no head, as before
        "unfreeze_at_step": 5,
    }
    path = tmp_path / "old.ckpt"
    opened = {"text": None, "vision": 1}  # the run had opened the vision tower's top block
    checkpoint = {"state_dict": trained.state_dict(), "hyper_parameters": flat}
    torch.save({**checkpoint, "tonics_unfrozen": opened}, path)
    torch.manual_seed(1)  # other random heads, until the weights are loaded
    loaded = AlignmentModule.from_checkpoint(path)
    assert loaded.spec == spec and loaded.model.captioner is None
    assert loaded.loss_settings.kind == "siglip" and loaded.optimizer_settings.lr == 0.01
    assert loaded.opening_settings.at_step == 5
    assert loaded.unfrozen == opened  # reopened as Lightning's load_from_checkpoint would
    for name, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_a_run_saved_before_the_grouping_is_described_like_a_new_one():
    """A run directory's config.yaml with flat keys: the model card reads its batch size and
    openings from the grouped form (the control: the same card from the grouped config)."""
    from tonics.export import _training_section
    from tonics.train.old_keys import grouped_config

    stages = [
        {"name": "heads", "steps": 10, "mix": "random"},
        {"name": "open", "steps": None, "mix": "random"},
    ]
    flat = {
        "model": {"lr": 0.1, "loss": "siglip", "unfreeze_at_step": 15, "unfreeze_top_k": 2},
        "data": {
            "batch_size": 4,
            "stages": [
                {"name": "heads", "steps": 10, "mix": {"random": 1.0}},
                {"name": "open", "mix": {"random": 1.0}, "unfreeze_vision": 1},
            ],
        },
    }
    grouped = {
        "model": {
            "optimizer": {"lr": 0.1},
            "loss": {"kind": "siglip"},
            "opening": {"at_step": 15, "top_k": 2},
        },
        "data": {
            "loader": {"batch_size": 4},
            "stages": [
                {"name": "heads", "steps": 10, "mix": {"random": 1.0}},
                {"name": "open", "mix": {"random": 1.0}, "opening": {"vision": 1}},
            ],
        },
    }
    assert grouped_config(flat) == grouped
    assert grouped_config(grouped) == grouped  # a new config is left as it is
    card = _training_section(grouped_config(flat), stages)
    assert card == _training_section(grouped, stages)
    assert "- steps: unknown, batch size 4, seed unknown" in card
    assert "- towers opened at step 15: text top 2, vision top 2" in card
