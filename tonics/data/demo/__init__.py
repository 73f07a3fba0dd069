"""The built-in offline demo dataset: real images with human-written text from registry packages
(Debian and npm), with leak-free splits and a held-out rendering style for zero-shot transfer.

This builder uses the ontology's WordNet to judge "English object description"; it is a
data-preparation tool run once, not part of the training flow. See `sources` for the sources and
their licences, `splits` for how splits stay leak-free, `card` for the data card.
"""

from tonics.data.demo.build import DEMO_VERSION, build_demo, demo_card, demo_dir
from tonics.data.demo.card import data_card, format_card
from tonics.data.demo.sources import SOURCES, emoji_annotations, svg_metadata

__all__ = [
    "DEMO_VERSION",
    "SOURCES",
    "build_demo",
    "data_card",
    "demo_card",
    "demo_dir",
    "emoji_annotations",
    "format_card",
    "svg_metadata",
]
