"""Load a model written by `tonics export`: `encode_text`, `encode_image`, `encode_tokens`, and
`caption` for a model trained with a captioning head.

The directory is read as data: `config.json`, `model.safetensors` (a `TonicsDualEncoderModel`),
the tokenizer and image processor files.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoImageProcessor, AutoTokenizer

from tonics.model.alignment import LOGIT_SCALE_MAX
from tonics.model.directories import SAFE, check_model_directory, pil_processor_options
from tonics.model.hf_model import TonicsDualEncoderModel


@contextlib.contextmanager
def _no_progress_bars():
    """transformers' progress bars off for the block (restored after, as they were)."""
    from transformers.utils import logging as hf_logging

    was_disabled = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_disabled:
            hf_logging.enable_progress_bar()


class ExportedModel(nn.Module):
    """An exported aligned model: `encode_text(list[str])`, `encode_image(list[PIL.Image])`;
    `hf` is the underlying `TonicsDualEncoderModel`."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        directory = Path(directory)
        check_model_directory(directory)
        with _no_progress_bars():  # loading a small local model is not a task to watch
            self.hf = TonicsDualEncoderModel.from_pretrained(directory, use_safetensors=True)
        self.hf.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(directory, **SAFE)
        self.image_processor = AutoImageProcessor.from_pretrained(
            directory, **SAFE, **pil_processor_options()
        )
        self.meta = {"embed_dim": self.hf.config.embed_dim, **getattr(self.hf.config, "tonics", {})}
        self.logit_scale = self.hf.logit_scale
        self.eval()

    @torch.no_grad()
    def encode_text(self, captions: list[str], max_length: int = 64) -> torch.Tensor:
        """L2-normalised caption embeddings."""
        tokens = self.tokenizer(
            captions, padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
        )
        return self.encode_tokens(tokens["input_ids"], tokens["attention_mask"])

    @torch.no_grad()
    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of already tokenised captions."""
        features = self.hf.get_text_features(input_ids, attention_mask).pooler_output
        return F.normalize(features, dim=-1)

    @torch.no_grad()
    def encode_image(self, images) -> torch.Tensor:
        """L2-normalised image embeddings (PIL images or preprocessed pixel tensors)."""
        return F.normalize(self.hf.get_image_features(self._pixels(images)).pooler_output, dim=-1)

    @torch.no_grad()
    def caption(self, images, *, beams: int = 1, max_length: int | None = None) -> list[str]:
        """One caption per image (PIL images or preprocessed pixel tensors): greedy, or beam
        search with `beams` > 1; for models exported with a captioning head."""
        if self.hf.caption_head is None:
            raise ValueError(
                "this model has no captioning head: train with model.loss.caption_weight > 0"
            )
        pixels = self._pixels(images)
        ids = self.hf.generate_captions(pixels, beams=beams, max_length=max_length)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]

    def _pixels(self, images) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            return images
        return self.image_processor(
            images=[im.convert("RGB") for im in images], return_tensors="pt"
        )["pixel_values"]

    def scale(self) -> torch.Tensor:
        """exp(t) clamped at 100."""
        return self.logit_scale.exp().clamp(max=LOGIT_SCALE_MAX)


def load(directory: str | Path) -> ExportedModel:
    """Load a model written by `tonics export`."""
    return ExportedModel(directory)
