"""Datasets: pair records, readers for the standard formats, image decoding, the demo.

Import layer (a module imports only layers to its left): model -> ontology -> **data** ->
caches/eval -> sampling/analysis -> train -> export -> commands -> cli.
"""

from tonics.data.records import ImageRef, PairRecord

__all__ = ["ImageRef", "PairRecord"]
