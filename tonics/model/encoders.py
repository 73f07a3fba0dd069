"""Text and vision encoders: any Hugging Face model (name or local path) or an offline short name,
reduced to one pooled vector per input.

Both encoders expose `blocks` (their stack of transformer/conv blocks), which the frozen-start
logic uses to unfreeze only the top-k blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer, PreTrainedModel

from tonics.model import packaged
from tonics.model.directories import pil_processor_options

TextPooling = Literal["cls", "mean"]
VisionPooling = Literal["pooled", "cls", "mean"]


class ModelNotFoundError(RuntimeError):
    """A model name that is neither an offline short name, a local directory, nor reachable."""


def _from_pretrained(loader, name: str, role: str, **kwargs):
    """Call `loader.from_pretrained`, turning hub/network failures into one clear line."""
    try:
        return loader.from_pretrained(name, **{"trust_remote_code": False, **kwargs})
    except (OSError, ValueError) as err:
        tried = (
            "a local directory"
            if Path(name).exists()
            else "the local Hugging Face cache and the hub"
        )
        raise ModelNotFoundError(
            f"cannot load {role} '{name}': tried {tried} ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:160]}). Offline short names: "
            f"{', '.join(packaged.TEXT_NAMES + packaged.VISION_NAMES)}; or pass a local directory "
            "written by save_pretrained(); or download it on a connected machine "
            "(huggingface-cli download NAME) and copy the cache."
        ) from err


def _tokenizer_source(name: str) -> str:
    if name in ("packaged:minilm", "tiny:bert"):
        return str(packaged.minilm_path())
    return name


def load_tokenizer(name: str):
    """The tokenizer that belongs to text encoder `name` (tiny:bert borrows MiniLM's)."""
    return _from_pretrained(AutoTokenizer, _tokenizer_source(name), "tokenizer")


def load_image_processor(name: str):
    """The image processor matching vision encoder `name`'s training normalisation."""
    if name == "packaged:mobilenet_v2":
        return packaged.imagenet_image_processor()
    if name.startswith("tiny:"):
        return packaged.tiny_image_processor()
    return _from_pretrained(AutoImageProcessor, name, "image processor", **pil_processor_options())


def load_text_model(name: str) -> PreTrainedModel:
    """The raw Hugging Face text model for `name`."""
    if name == "packaged:minilm":
        return _from_pretrained(AutoModel, str(packaged.minilm_path()), "text encoder")
    if name == "tiny:bert":
        return packaged.tiny_text_model()
    return _from_pretrained(AutoModel, name, "text encoder")


def load_vision_model(name: str) -> PreTrainedModel:
    """The raw Hugging Face vision model for `name` (a CLIP checkpoint yields its vision tower)."""
    if name == "packaged:mobilenet_v2":
        return packaged.load_packaged_mobilenet_classifier().mobilenet_v2
    if name.startswith("tiny:"):
        return packaged.tiny_vision_model(name)
    config = _from_pretrained(AutoConfig, name, "vision encoder config")
    if getattr(config, "model_type", "") == "clip":
        from transformers import CLIPVisionModel

        return _from_pretrained(CLIPVisionModel, name, "vision encoder")
    return _from_pretrained(AutoModel, name, "vision encoder")


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's main stack of blocks: its longest nn.ModuleList (encoder layers, conv stages)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no block list to unfreeze top-k blocks of")
    return max(lists, key=len)


def _hidden_size(model: PreTrainedModel) -> int | None:
    config = model.config
    for field in ("hidden_size", "projection_dim"):
        if isinstance(getattr(config, field, None), int):
            return getattr(config, field)
    sizes = getattr(config, "hidden_sizes", None)
    return sizes[-1] if sizes else None


def pool_text(
    hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: TextPooling
) -> torch.Tensor:
    """A caption's vector: its CLS hidden state, or the mean over its real (unpadded) tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)


def pool_vision(out, pooling: VisionPooling) -> torch.Tensor:
    """An image's vector from a model output: the model's own pooled output (CLS where it has
    none), the CLS token, or the mean over patch tokens / the spatial map."""
    if pooling == "pooled":
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        return out.last_hidden_state[:, 0]  # ViT without a pooler: CLS is its pooled output
    hidden = out.last_hidden_state
    if hidden.dim() == 4:  # convolutional feature map (B, C, H, W)
        return hidden.mean(dim=(2, 3))
    return hidden[:, 0] if pooling == "cls" else hidden[:, 1:].mean(1)


class TextEncoder(nn.Module):
    """A BERT-family encoder pooled to one vector per caption (CLS token or masked mean)."""

    def __init__(self, model: PreTrainedModel, pooling: TextPooling = "mean") -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"text pooling must be 'cls' or 'mean', got '{pooling}'")
        self.model = model
        self.pooling = pooling
        self.output_dim = int(model.config.hidden_size)

    @classmethod
    def from_name(cls, name: str, pooling: TextPooling = "mean") -> TextEncoder:
        """Load by Hugging Face name, local path, or offline short name."""
        return cls(load_text_model(name), pooling)

    @property
    def blocks(self) -> nn.ModuleList:
        """Transformer layers, bottom to top."""
        return find_blocks(self.model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled features, shape (batch, output_dim)."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.pool(hidden, attention_mask)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per caption from the last hidden states (shared with the prefix cache)."""
        return pool_text(hidden, attention_mask, self.pooling)


class VisionEncoder(nn.Module):
    """A vision backbone pooled to one vector per image (model's pooled output, CLS, or mean)."""

    def __init__(self, model: PreTrainedModel, pooling: VisionPooling = "pooled") -> None:
        super().__init__()
        if pooling not in ("pooled", "cls", "mean"):
            raise ValueError(f"vision pooling must be 'pooled', 'cls' or 'mean', got '{pooling}'")
        self.model = model
        self.pooling = pooling
        self.output_dim = self._probe_output_dim()

    @classmethod
    def from_name(cls, name: str, pooling: VisionPooling = "pooled") -> VisionEncoder:
        """Load by Hugging Face name, local path, or offline short name."""
        return cls(load_vision_model(name), pooling)

    @property
    def blocks(self) -> nn.ModuleList:
        """Transformer layers or inverted-residual blocks, bottom to top."""
        return find_blocks(self.model)

    def _probe_output_dim(self) -> int:
        size = _hidden_size(self.model)
        if size is not None and self.pooling != "pooled":
            return size
        image_size = getattr(self.model.config, "image_size", 224)
        channels = getattr(self.model.config, "num_channels", 3)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self(torch.zeros(1, channels, image_size, image_size))
        self.model.train(was_training)
        return int(out.shape[-1])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled features, shape (batch, output_dim)."""
        return self.pool(self.model(pixel_values=pixel_values))

    def pool(self, out) -> torch.Tensor:
        """One vector per image from a model output with `last_hidden_state` (and, where the
        model has one, `pooler_output`); shared with the prefix cache."""
        return pool_vision(out, self.pooling)
