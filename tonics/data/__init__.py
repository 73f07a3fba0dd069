"""Datasets: pair records, readers for the standard formats, image decoding, the DataModule.

Flow position: **data** -> ontology -> sampler -> model -> eval.
"""

from tonics.data.records import ImageRef, PairRecord

__all__ = ["ImageRef", "PairRecord"]
