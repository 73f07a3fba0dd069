"""`ModelSpec` and `create_model`: what an alignment model is made of (its two towers and their
pooling, the shared embedding size and head, how opened BatchNorm blocks behave, an optional
captioning head), kept apart from how it is trained, and the one function that builds it, as
open_clip's `factory.py` builds its models from a model config.

The Lightning module builds its model through here (`AlignmentModule.model_spec`), as do the
untrained chance-level reference of `tonics retrieval` and the benchmarks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tonics.model.alignment import AlignmentModel, HeadKind
from tonics.model.encoders import (
    TextEncoder,
    TextPooling,
    VisionEncoder,
    VisionPooling,
    load_tokenizer,
)


@dataclass(frozen=True)
class ModelSpec:
    """An alignment model's architecture.

    text_encoder / vision_encoder: a Hugging Face name or local path, or an offline short name
        (`packaged:minilm`, `packaged:mobilenet_v2`, `tiny:*`); text_pooling / vision_pooling:
        how each tower's output becomes one vector; embed_dim / head: the shared space and the
        projection heads ('linear' or 'mlp'); train_bn_stats / bn_momentum: whether opened
        BatchNorm blocks update their statistics; captioner: the captioning head's settings
        (`tonics.model.captioner.CaptionSettings` as a mapping; {} for its defaults), or None
        for a contrastive-only model.
    """

    text_encoder: str = "packaged:minilm"
    vision_encoder: str = "packaged:mobilenet_v2"
    text_pooling: TextPooling = "mean"
    vision_pooling: VisionPooling = "pooled"
    embed_dim: int = 256
    head: HeadKind = "linear"
    train_bn_stats: bool = False
    bn_momentum: float = 0.1
    captioner: dict | None = None

    def to_dict(self) -> dict:
        """The spec as plain data (for a checkpoint or a model card)."""
        return asdict(self)


def create_model(spec: ModelSpec) -> AlignmentModel:
    """The model `spec` describes: both towers loaded (frozen), the heads initialised from the
    current random stream, and the captioning head when `spec.captioner` is set."""
    model = AlignmentModel(
        TextEncoder.from_name(spec.text_encoder, spec.text_pooling),
        VisionEncoder.from_name(spec.vision_encoder, spec.vision_pooling),
        embed_dim=spec.embed_dim,
        head=spec.head,
        train_bn_stats=spec.train_bn_stats,
        bn_momentum=spec.bn_momentum,
    )
    if spec.captioner is not None:
        from tonics.model.captioner import CaptionSettings

        settings = CaptionSettings.from_dict(spec.captioner)
        model.add_captioner(settings, load_tokenizer(spec.text_encoder))
    return model
