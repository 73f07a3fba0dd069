"""The alignment model: encoders, projection heads, InfoNCE loss. Usable without Lightning.

Flow position: data -> ontology -> sampler -> **model** -> eval.
"""

from tonics.model.alignment import AlignmentModel
from tonics.model.encoders import TextEncoder, VisionEncoder, load_image_processor, load_tokenizer
from tonics.model.loss import ClipLoss, SigLipLoss, clip_loss_reference, make_loss

__all__ = [
    "AlignmentModel",
    "ClipLoss",
    "SigLipLoss",
    "TextEncoder",
    "VisionEncoder",
    "clip_loss_reference",
    "load_image_processor",
    "load_tokenizer",
    "make_loss",
]
