"""The WordNet object ontology: caption nouns and object labels -> synsets -> a hypernym graph,
with every image-caption pair attached to the nodes it mentions.

Flow position: data -> **ontology** -> sampler -> model -> eval. Works on plain strings and
lists of captions, so it needs nothing from `tonics` but can index its PairRecords.
"""

from tonics.ontology.extract import ExtractionSettings, NounExtractor
from tonics.ontology.graph import Ontology, build_ontology
from tonics.ontology.wordnet import WordNetNotFoundError, load_wordnet

__all__ = [
    "ExtractionSettings",
    "NounExtractor",
    "Ontology",
    "WordNetNotFoundError",
    "build_ontology",
    "load_wordnet",
]
