"""The aligned model as a Hugging Face model: `TonicsDualEncoderModel`, a `PreTrainedModel`
holding both towers, the projection heads and the temperature, with its `TonicsDualEncoderConfig`.

Importing tonics registers them with `AutoConfig`, `AutoModel` and
`AutoModelForZeroShotImageClassification`, so an export loads with
`AutoModel.from_pretrained(DIR)` and runs in `pipeline("zero-shot-image-classification", DIR)`;
no code travels inside the export (no `trust_remote_code`). The API follows CLIP's:
`get_text_features` / `get_image_features` (projected, not normalised, in `pooler_output` as in
transformers 5, whose CLIP returns the same), and `forward` returns `CLIPOutput` with
`logits_per_image`. Pooling (mean or CLS for text; the model's pooled output, CLS or mean for
vision) is the training one, which `VisionTextDualEncoderModel` could not express (it always takes
the text model's pooler output), hence a class of our own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForZeroShotImageClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clip.modeling_clip import CLIPOutput

from tonics.model.alignment import LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, projection_head
from tonics.model.encoders import pool_text, pool_vision

MODEL_TYPE = "tonics_dual_encoder"
POOLER_OPTIONAL = ("bert", "roberta", "xlm-roberta", "vit", "deit", "mobilenet_v2")


def _sub_config(value):
    if isinstance(value, dict):
        value = dict(value)
        return AutoConfig.for_model(value.pop("model_type"), **value)
    return value


class TonicsDualEncoderConfig(PretrainedConfig):
    """Both towers' configs plus how they are pooled and projected (the training settings)."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        text_config=None,
        vision_config=None,
        text_pooling: str = "mean",
        vision_pooling: str = "pooled",
        head: str = "linear",
        embed_dim: int = 256,
        text_dim: int | None = None,
        vision_dim: int | None = None,
        text_pooler: bool = True,
        vision_pooler: bool = True,
        logit_scale_init_value: float = math.log(LOGIT_SCALE_INIT),
        caption_head: dict | None = None,
        **kwargs,
    ) -> None:
        """`text_dim`/`vision_dim`: pooled widths; `*_pooler`: whether the tower has its own
        pooling layer (BERT/ViT-style models are built without one when it was not trained);
        `caption_head`: the captioning head's settings, vocabulary, widths and special token ids
        (None: the model does not caption)."""
        self.caption_head = caption_head
        self.text_config = _sub_config(text_config)
        self.vision_config = _sub_config(vision_config)
        self.text_pooling, self.vision_pooling, self.head = text_pooling, vision_pooling, head
        self.embed_dim, self.text_dim, self.vision_dim = embed_dim, text_dim, vision_dim
        self.text_pooler, self.vision_pooler = text_pooler, vision_pooler
        self.logit_scale_init_value = logit_scale_init_value
        super().__init__(**kwargs)


def _tower(config, with_pooler: bool):
    if not with_pooler and config.model_type in POOLER_OPTIONAL:
        return AutoModel.from_config(config, add_pooling_layer=False)
    if config.model_type == "clip_vision_model":
        from transformers import CLIPVisionModel

        return CLIPVisionModel(config)
    return AutoModel.from_config(config)


class TonicsDualEncoderModel(PreTrainedModel):
    """Text and vision towers projected into one space (CLIP-style API, tonics pooling)."""

    config_class = TonicsDualEncoderConfig
    base_model_prefix = "tonics"
    main_input_name = "input_ids"

    def __init__(self, config: TonicsDualEncoderConfig) -> None:
        super().__init__(config)
        self.text_model = _tower(config.text_config, config.text_pooler)
        self.vision_model = _tower(config.vision_config, config.vision_pooler)
        self.text_projection = projection_head(config.text_dim, config.embed_dim, config.head)
        self.visual_projection = projection_head(config.vision_dim, config.embed_dim, config.head)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.caption_head = _caption_head(config.caption_head) if config.caption_head else None
        self.post_init()
        if self.caption_head is not None:  # the decoder's tied output layer, one level deeper
            ties = self.caption_head.decoder.all_tied_weights_keys
            prefix = "caption_head.decoder."
            self.all_tied_weights_keys.update({prefix + k: prefix + v for k, v in ties.items()})

    def get_image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The vision tower's token map (batch, tokens, width), as the captioning head reads it."""
        from tonics.model.captioner import image_tokens

        return image_tokens(self.vision_model(pixel_values=pixel_values).last_hidden_state)

    def generate_captions(
        self, pixel_values: torch.Tensor, *, beams: int = 1, max_length: int | None = None
    ) -> list[list[int]]:
        """Caption token ids per image (greedy, or beam search with `beams` > 1)."""
        from tonics.model.generation import generate

        if self.caption_head is None:
            raise ValueError("this model was trained without a captioning head; it cannot caption")
        tokens = self.get_image_tokens(pixel_values)
        return generate(self.caption_head, tokens, beams=beams, max_length=max_length)

    def generate(
        self,
        pixel_values: torch.Tensor,
        *,
        num_beams: int = 1,
        max_length: int | None = None,
        min_new_tokens: int = 1,
        length_penalty: float = 1.0,
    ) -> torch.LongTensor:
        """Caption token ids as transformers' `generate` returns them: a row per image (the start
        token, the caption, the end token), padded with the pad token; decode with the saved
        tokenizer's `batch_decode(ids, skip_special_tokens=True)`. Greedy, or beam search with
        `num_beams`; never an empty caption (`min_new_tokens`)."""
        from tonics.model.generation import generate

        if self.caption_head is None:
            raise ValueError("this model was trained without a captioning head; it cannot caption")
        special = self.caption_head.special
        captions = generate(
            self.caption_head,
            self.get_image_tokens(pixel_values),
            beams=num_beams,
            max_length=max_length,
            length_penalty=length_penalty,
            min_length=min_new_tokens,
        )
        rows = [[special["bos_token_id"], *c, special["eos_token_id"]] for c in captions]
        out = torch.full(
            (len(rows), max(map(len, rows))), special.get("pad_token_id") or 0, dtype=torch.long
        )
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def _init_weights(self, module) -> None:
        """Weights come from the export; nothing to initialise beyond the towers' own rules."""

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """Projected caption features in `pooler_output` (normalise them for cosine scores)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        pooled = pool_text(out.last_hidden_state, attention_mask, self.config.text_pooling)
        return BaseModelOutputWithPooling(
            last_hidden_state=out.last_hidden_state, pooler_output=self.text_projection(pooled)
        )

    def get_image_features(
        self, pixel_values: torch.Tensor, **kwargs
    ) -> BaseModelOutputWithPooling:
        """Projected image features in `pooler_output` (normalise them for cosine scores)."""
        out = self.vision_model(pixel_values=pixel_values)
        pooled = pool_vision(out, self.config.vision_pooling)
        return BaseModelOutputWithPooling(
            last_hidden_state=out.last_hidden_state, pooler_output=self.visual_projection(pooled)
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        **kwargs,
    ) -> CLIPOutput:
        """Cosine similarities scaled by the learnt temperature, both ways (CLIP's output)."""
        text = F.normalize(self.get_text_features(input_ids, attention_mask).pooler_output, dim=-1)
        image = F.normalize(self.get_image_features(pixel_values).pooler_output, dim=-1)
        logits_per_image = self.logit_scale.exp().clamp(max=LOGIT_SCALE_MAX) * image @ text.T
        loss = None
        if return_loss:
            target = torch.arange(len(image), device=image.device)
            loss = (
                F.cross_entropy(logits_per_image, target)
                + F.cross_entropy(logits_per_image.T, target)
            ) / 2
        return CLIPOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_image.T,
            text_embeds=text,
            image_embeds=image,
        )


def _caption_head(spec: dict):
    from tonics.model.captioner import CaptionHead, CaptionSettings

    return CaptionHead(
        CaptionSettings(**spec["settings"]),
        vocab_size=spec["vocab_size"],
        width=spec["width"],
        image_width=spec["image_width"],
        special=spec["special"],
    )


def register() -> None:
    """Make the Auto classes (and so `pipeline`) know the tonics model type; idempotent."""
    try:
        AutoConfig.register(MODEL_TYPE, TonicsDualEncoderConfig)
    except ValueError:  # already registered
        return
    AutoModel.register(TonicsDualEncoderConfig, TonicsDualEncoderModel)
    AutoModelForZeroShotImageClassification.register(
        TonicsDualEncoderConfig, TonicsDualEncoderModel
    )


register()
