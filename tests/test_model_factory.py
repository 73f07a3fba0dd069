"""`ModelSpec` + `create_model` build the model the Lightning module trains: the same weights,
draw for draw, as assembling the towers, heads and captioning head by hand; every tower pair the
shipped configs name that is on this machine (the packaged encoders) builds from its spec."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import torch
import yaml

from tonics.errors import ConfigError
from tonics.model import AlignmentModel, TextEncoder, VisionEncoder, load_tokenizer
from tonics.model.captioner import CaptionSettings
from tonics.model.factory import ModelSpec, create_model
from tonics.train.model_settings import LossSettings
from tonics.train.module import AlignmentModule

ROOT = Path(__file__).resolve().parents[1]


def _by_hand(spec: ModelSpec) -> AlignmentModel:
    """The reference: the pieces assembled one by one, as the module did before the factory."""
    model = AlignmentModel(
        TextEncoder.from_name(spec.text_encoder, spec.text_pooling),
        VisionEncoder.from_name(spec.vision_encoder, spec.vision_pooling),
        embed_dim=spec.embed_dim,
        head=spec.head,
        train_bn_stats=spec.train_bn_stats,
        bn_momentum=spec.bn_momentum,
    )
    if spec.captioner is not None:
        settings = CaptionSettings.from_dict(spec.captioner)
        model.add_captioner(settings, load_tokenizer(spec.text_encoder))
    return model


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("tiny:bert", "tiny:vit", embed_dim=16),
        ModelSpec("tiny:bert", "tiny:vit", text_pooling="cls", embed_dim=8, head="mlp"),
        ModelSpec("tiny:bert", "tiny:mobilenet_v2", embed_dim=16, captioner={"layers": 1}),
    ],
)
def test_the_factory_builds_what_assembling_by_hand_builds(spec):
    torch.manual_seed(0)
    built = create_model(spec)
    torch.manual_seed(0)
    assert _same_weights(built, _by_hand(spec))
    torch.manual_seed(1)  # the control: another random stream gives other heads
    assert not _same_weights(built, create_model(spec))
    assert (built.captioner is not None) == (spec.captioner is not None)


def test_the_module_trains_the_model_its_spec_describes():
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(
            text_encoder="tiny:bert",
            vision_encoder="tiny:vit",
            embed_dim=16,
            head="mlp",
            captioner={},
        ),
        loss=LossSettings(caption_weight=1.0),
    )
    spec = module.spec
    assert spec == ModelSpec("tiny:bert", "tiny:vit", embed_dim=16, head="mlp", captioner={})
    torch.manual_seed(0)
    assert _same_weights(module.model, create_model(spec))
    assert module.hparams["spec"] == spec.to_dict()  # what load_from_checkpoint rebuilds from


def test_a_captioning_head_and_its_loss_come_together():
    towers = {"text_encoder": "tiny:bert", "vision_encoder": "tiny:vit"}
    with pytest.raises(ConfigError) as head_only:
        AlignmentModule(ModelSpec(**towers, captioner={"layers": 1}))
    assert str(head_only.value) == (
        "model.loss.caption_weight: must be above 0 when model.spec.captioner is set (the head "
        "learns only from it)"
    )
    with pytest.raises(ConfigError) as loss_only:
        AlignmentModule(ModelSpec(**towers), loss=LossSettings(caption_weight=2.0))
    assert str(loss_only.value) == (
        "model.spec.captioner: model.loss.caption_weight 2.0 trains a captioning head: set "
        "model.spec.captioner ({} for its defaults)"
    )


def _config_specs() -> dict[str, ModelSpec]:
    names = {f.name for f in fields(ModelSpec)}
    specs = {}
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        model = ((yaml.safe_load(path.read_text()) or {}).get("model") or {}).get("spec") or {}
        if "text_encoder" in model or "vision_encoder" in model:
            specs[path.name] = ModelSpec(**{k: v for k, v in model.items() if k in names})
    return specs


def test_every_offline_tower_pair_the_configs_name_builds():
    specs = _config_specs()
    offline = {name: s for name, s in specs.items() if s.text_encoder.startswith("packaged:")}
    assert "demo.yaml" in offline and "scenes.yaml" in offline
    pairs = {(s.text_encoder, s.vision_encoder, s.embed_dim) for s in offline.values()}
    for text, vision, width in pairs:
        model = create_model(ModelSpec(text, vision, embed_dim=width))
        image = model.encode_image(torch.zeros(1, 3, 224, 224))
        assert image.shape == (1, width)
    hub = {s.text_encoder for s in specs.values()} - {s.text_encoder for s in offline.values()}
    assert hub <= {"bert-base-uncased"}  # the GPU configs: hub weights, not on this machine
