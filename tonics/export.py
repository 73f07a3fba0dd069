"""Export a trained checkpoint to a directory that loads without tonics's training code, and load it.

Layout of an exported directory:
  text/    the text encoder (`save_pretrained`) and its tokenizer
  vision/  the vision encoder (`save_pretrained`) and its image processor
  heads.pt projection heads + logit scale (a plain state dict)
  tonics.json  pooling, embedding size, head kind, source checkpoint
`tonics.load(DIR)` returns an ExportedModel with `encode_text` and `encode_image`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

from tonics.model.alignment import LOGIT_SCALE_MAX, projection_head
from tonics.model.encoders import TextEncoder, VisionEncoder, load_image_processor, load_tokenizer

POOLER_OPTIONAL = ("bert", "roberta", "vit", "deit", "xlm-roberta")


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the aligned model in `checkpoint` (a `tonics fit` .ckpt) to directory `out`."""
    from tonics.train.module import AlignmentModule

    module = AlignmentModule.load_from_checkpoint(str(checkpoint), map_location="cpu")
    hp = module.hparams
    return export_model(module.model, out, text_name=hp.text_encoder, vision_name=hp.vision_encoder,
                        text_pooling=hp.text_pooling, vision_pooling=hp.vision_pooling, head=hp.head,
                        source=str(checkpoint))  # fmt: skip


def export_model(
    model, out, *, text_name, vision_name, text_pooling, vision_pooling, head, source=""
) -> Path:
    """Write an AlignmentModel plus its tokenizer and image processor to `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.text.encoder.model.save_pretrained(out / "text")
    load_tokenizer(text_name).save_pretrained(out / "text")
    model.vision.encoder.model.save_pretrained(out / "vision")
    load_image_processor(vision_name).save_pretrained(out / "vision")
    heads = {"text_head": model.text_head.state_dict(), "vision_head": model.vision_head.state_dict(),
             "logit_scale": model.logit_scale.detach().clone()}  # fmt: skip
    torch.save(heads, out / "heads.pt")
    meta = {"format": 1, "text_pooling": text_pooling, "vision_pooling": vision_pooling, "head": head,
            "embed_dim": model.embed_dim, "text_encoder": text_name, "vision_encoder": vision_name,
            "source": source}  # fmt: skip
    (out / "tonics.json").write_text(json.dumps(meta, indent=2))
    return out


def _load_as_saved(directory: Path):
    """AutoModel.from_pretrained, without adding a pooler the saved model did not have.

    BERT/ViT-style models get a randomly initialised pooling layer by default; a model trained
    without one must come back without one, or a "pooled" output would change.
    """
    from safetensors import safe_open

    weights = directory / "model.safetensors"
    kwargs = {}
    if weights.is_file():
        with safe_open(str(weights), "pt") as handle:
            has_pooler = any("pooler" in key for key in handle.keys())
        config = AutoConfig.from_pretrained(directory)
        if not has_pooler and config.model_type in POOLER_OPTIONAL:
            kwargs["add_pooling_layer"] = False
    return AutoModel.from_pretrained(directory, **kwargs)


class ExportedModel(nn.Module):
    """An exported aligned model: `encode_text(list[str])`, `encode_image(list[PIL.Image])`."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        directory = Path(directory)
        meta_path = directory / "tonics.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{directory} is not an exported tonics model (no tonics.json)")
        self.meta = json.loads(meta_path.read_text())
        self.tokenizer = AutoTokenizer.from_pretrained(directory / "text")
        self.image_processor = AutoImageProcessor.from_pretrained(
            directory / "vision", use_fast=False
        )
        self.text = TextEncoder(_load_as_saved(directory / "text"), self.meta["text_pooling"])
        self.vision = VisionEncoder(
            _load_as_saved(directory / "vision"), self.meta["vision_pooling"]
        )
        self.text_head = projection_head(
            self.text.output_dim, self.meta["embed_dim"], self.meta["head"]
        )
        self.vision_head = projection_head(
            self.vision.output_dim, self.meta["embed_dim"], self.meta["head"]
        )
        heads = torch.load(directory / "heads.pt", map_location="cpu", weights_only=True)
        self.text_head.load_state_dict(heads["text_head"])
        self.vision_head.load_state_dict(heads["vision_head"])
        self.logit_scale = nn.Parameter(heads["logit_scale"])
        self.eval()

    @torch.no_grad()
    def encode_text(self, captions: list[str], max_length: int = 64) -> torch.Tensor:
        """L2-normalised caption embeddings."""
        tokens = self.tokenizer(captions, padding="longest", truncation=True, max_length=max_length,
                                return_tensors="pt")  # fmt: skip
        return self.encode_tokens(tokens["input_ids"], tokens["attention_mask"])

    @torch.no_grad()
    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of already tokenised captions."""
        return F.normalize(self.text_head(self.text(input_ids, attention_mask)), dim=-1)

    @torch.no_grad()
    def encode_image(self, images) -> torch.Tensor:
        """L2-normalised image embeddings (PIL images or preprocessed pixel tensors)."""
        if isinstance(images, torch.Tensor):
            pixels = images
        else:
            pixels = self.image_processor(
                images=[im.convert("RGB") for im in images], return_tensors="pt"
            )["pixel_values"]
        return F.normalize(self.vision_head(self.vision(pixels)), dim=-1)

    def scale(self) -> torch.Tensor:
        """exp(t) clamped at 100."""
        return self.logit_scale.exp().clamp(max=LOGIT_SCALE_MAX)


def load(directory: str | Path) -> ExportedModel:
    """Load a model written by `tonics export`."""
    return ExportedModel(directory)
