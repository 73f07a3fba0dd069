"""The alignment model: encoders, projection heads, InfoNCE loss. Usable without Lightning.

Import layer (a module imports only layers to its left): **model** -> ontology -> data ->
caches/eval -> sampling/analysis -> train -> export -> commands -> cli.
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
