"""The WordNet object ontology: caption nouns and object labels -> synsets -> a hypernym graph,
with every image-caption pair attached to the nodes it mentions.

Installed as `tonics.ontology` (the folder keeps its place in the repository). It works on plain
strings and lists of captions and can index PairRecords; of the rest of tonics it uses only the
base utilities (`tonics.paths`, `tonics.memory`), nothing from data, sampling or training.
"""

from tonics.ontology.building import build_ontology
from tonics.ontology.extract import ExtractionSettings, NounExtractor
from tonics.ontology.graph import Ontology
from tonics.ontology.wordnet import WordNetNotFoundError, load_wordnet

__all__ = [
    "ExtractionSettings",
    "NounExtractor",
    "Ontology",
    "WordNetNotFoundError",
    "build_ontology",
    "load_wordnet",
]
