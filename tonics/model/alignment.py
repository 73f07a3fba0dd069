"""The aligned two-tower model: encoders, projection heads, learnable temperature.

Encoders start frozen (no gradients, BatchNorm/Dropout held in eval mode) so only the heads and
the temperature learn; a stage's `opening` later open the whole encoder or its
top-k blocks. Pretrained BatchNorm statistics stay fixed even in opened blocks (their affine
parameters still train), as open_clip's `lock_image_tower(freeze_bn_stats=True)` and timm's
`freeze_batch_norm_2d` do: a small batch's statistics are a poor estimate of the pretraining
data's, and transformers' MobileNetV2 builds its BatchNorm with momentum 0.997 (TensorFlow's decay
read with PyTorch's meaning), so one train-mode forward would overwrite them. `train_bn_stats`
trains them instead, with a PyTorch momentum of `bn_momentum`. The model knows nothing of
training loops: Lightning lives in `tonics.train`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tonics.model.encoders import TextEncoder, VisionEncoder

HeadKind = Literal["linear", "mlp"]
LOGIT_SCALE_INIT = 1 / 0.07  # CLIP's initial temperature 0.07
LOGIT_SCALE_MAX = 100.0  # CLIP clamps exp(t) at 100 to keep training stable


def projection_head(in_dim: int, out_dim: int, kind: HeadKind = "linear") -> nn.Module:
    """A linear map, or a two-layer MLP with GELU, from encoder width to the shared space."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim, bias=False)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))
    raise ValueError(f"head must be 'linear' or 'mlp', got '{kind}'")


def is_tail_parameter(name: str) -> bool:
    """Parameters after the block stack (final norms, poolers), unfrozen along with top-k blocks."""
    lowered = name.lower()
    if "embed" in lowered or "conv_stem" in lowered or "pre_" in lowered:
        return False
    return any(
        key in lowered
        for key in ("layernorm", "layer_norm", "pooler", "post_", "conv_1x1", "final")
    )


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, sync) inside `module`."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class FreezableEncoder(nn.Module):
    """Wraps an encoder so that frozen parts stay without gradients and in eval mode, and
    BatchNorm statistics stay fixed unless `train_bn_stats`."""

    def __init__(
        self, encoder: nn.Module, *, train_bn_stats: bool = False, bn_momentum: float = 0.1
    ) -> None:
        super().__init__()
        if not 0.0 < bn_momentum <= 1.0:
            raise ValueError(
                f"bn_momentum must be in (0, 1] (PyTorch's meaning), got {bn_momentum}"
            )
        self.encoder = encoder
        self.train_bn_stats = train_bn_stats
        self.bn_momentum = bn_momentum
        self.frozen_modules: list[nn.Module] = []
        self.freeze()

    @property
    def output_dim(self) -> int:
        """Width of the pooled features."""
        return self.encoder.output_dim

    def freeze(self) -> None:
        """Stop all gradients and hold every submodule in eval mode."""
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.frozen_modules = [self.encoder]
        self.encoder.eval()

    def unfreeze(self, top_k: int | None = None) -> None:
        """Open the whole encoder (top_k None) or its top-k blocks plus the final norm/pooler."""
        if top_k is None:
            for p in self.encoder.parameters():
                p.requires_grad_(True)
            self.frozen_modules = []
            self._set_bn_momentum()
            self.train(self.training)
            return
        blocks = self.encoder.blocks
        if not 0 < top_k <= len(blocks):
            raise ValueError(f"top_k must be in 1..{len(blocks)} for this encoder, got {top_k}")
        in_blocks = {id(p) for p in blocks.parameters()}
        for block in list(blocks)[len(blocks) - top_k :]:
            for p in block.parameters():
                p.requires_grad_(True)
        for name, p in self.encoder.named_parameters():
            if id(p) not in in_blocks and is_tail_parameter(name):
                p.requires_grad_(True)
        self.frozen_modules = [
            m
            for m in self.encoder.modules()
            if any(True for _ in m.parameters())
            and not any(p.requires_grad for p in m.parameters())
        ]
        self._set_bn_momentum()
        self.train(self.training)

    def _set_bn_momentum(self) -> None:
        if self.train_bn_stats:
            for norm in batch_norms(self.encoder):
                norm.momentum = self.bn_momentum

    @property
    def is_frozen(self) -> bool:
        """True while no encoder parameter receives gradients."""
        return not any(p.requires_grad for p in self.encoder.parameters())

    def train(self, mode: bool = True) -> FreezableEncoder:
        """Set train/eval mode, keeping frozen parts in eval mode (no Dropout, BatchNorm statistics
        fixed) and, unless `train_bn_stats`, every BatchNorm layer in eval mode."""
        super().train(mode)
        for module in self.frozen_modules:
            module.eval()
        if not self.train_bn_stats:
            for norm in batch_norms(self.encoder):
                norm.eval()
        return self

    def forward(self, *args, **kwargs) -> torch.Tensor:
        """Pooled features; no autograd graph is built while the whole encoder is frozen."""
        if self.is_frozen:
            with torch.no_grad():
                return self.encoder(*args, **kwargs)
        return self.encoder(*args, **kwargs)


class AlignmentModel(nn.Module):
    """Text and vision towers projected into one L2-normalised space with a learnable
    temperature."""

    def __init__(
        self,
        text_encoder: TextEncoder,
        vision_encoder: VisionEncoder,
        *,
        embed_dim: int = 256,
        head: HeadKind = "linear",
        train_bn_stats: bool = False,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        bn = dict(train_bn_stats=train_bn_stats, bn_momentum=bn_momentum)
        self.text = FreezableEncoder(text_encoder, **bn)
        self.vision = FreezableEncoder(vision_encoder, **bn)
        self.text_head = projection_head(text_encoder.output_dim, embed_dim, head)
        self.vision_head = projection_head(vision_encoder.output_dim, embed_dim, head)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(LOGIT_SCALE_INIT)))
        self.embed_dim = embed_dim
        self.captioner = None  # a CaptionHead, when a captioning loss is trained (`add_captioner`)

    def add_captioner(self, settings, tokenizer) -> None:
        """Attach a CoCa-style captioning head (`tonics.model.captioner`) sized by `settings`,
        with `tokenizer`'s vocabulary and special tokens, reading this vision tower's tokens."""
        from tonics.model.captioner import CaptionHead, image_tokens

        text_model = self.text.encoder.model
        vision = self.vision.encoder
        with torch.no_grad():
            was_training = vision.training
            vision.eval()
            size = getattr(vision.model.config, "image_size", 224)
            channels = getattr(vision.model.config, "num_channels", 3)
            probe = vision.model(pixel_values=torch.zeros(1, channels, size, size))
            vision.train(was_training)
        special = {
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.cls_token_id,
            "eos_token_id": tokenizer.sep_token_id,
        }
        self.captioner = CaptionHead(
            settings,
            vocab_size=len(tokenizer),
            width=int(text_model.config.hidden_size),
            image_width=int(image_tokens(probe.last_hidden_state).shape[-1]),
            special=special,
            word_embeddings=text_model.get_input_embeddings(),
        )

    def image_features_and_tokens(self, pixel_values: torch.Tensor):
        """(L2-normalised image embeddings, the vision tower's token map) from one forward."""
        from tonics.model.captioner import image_tokens

        encoder = self.vision.encoder
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.vision.is_frozen):
            out = encoder.model(pixel_values=pixel_values)
        pooled = encoder.pool(out)
        return F.normalize(self.vision_head(pooled), dim=-1), image_tokens(out.last_hidden_state)

    def scale(self) -> torch.Tensor:
        """exp(t), clamped at 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=LOGIT_SCALE_MAX)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised text embeddings, shape (batch, embed_dim)."""
        return F.normalize(self.text_head(self.text(input_ids, attention_mask)), dim=-1)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings, shape (batch, embed_dim)."""
        return F.normalize(self.vision_head(self.vision(pixel_values)), dim=-1)

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image embeddings, text embeddings, logit scale) for a batch of pairs."""
        return (
            self.encode_image(pixel_values),
            self.encode_text(input_ids, attention_mask),
            self.scale(),
        )

    def head_parameters(self) -> list[nn.Parameter]:
        """Projection heads, temperature and the captioning head: trained from the first step."""
        caption = [*self.captioner.parameters()] if self.captioner is not None else []
        return [
            *self.text_head.parameters(),
            *self.vision_head.parameters(),
            self.logit_scale,
            *caption,
        ]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Both encoders' parameters (gradients flow only once unfrozen)."""
        return [*self.text.parameters(), *self.vision.parameters()]
