"""Readers turn a dataset in a standard on-disk format into a memory-mapped pair table
(`tonics.data.pair_table.PairTable`, a sequence of PairRecord made on demand), written once from
the files and kept in the tonics cache (webdataset shards: beside their index).

Each reader counts what it had to skip (empty captions, captions pointing at unknown images,
short TSV rows, tar members without a partner) in `reader.skipped`, and raises a DataFormatError
naming the file and field when the file itself is unusable.
"""

from tonics.data.readers.base import DataFormatError, PairReader
from tonics.data.readers.coco import CocoCaptionsReader
from tonics.data.readers.conceptual import ConceptualCaptionsTsvReader
from tonics.data.readers.demo import DemoReader
from tonics.data.readers.hf import HFDatasetReader
from tonics.data.readers.karpathy import KarpathyReader
from tonics.data.readers.scenes import ScenesReader
from tonics.data.readers.table import CsvReader
from tonics.data.readers.webdataset import WebDatasetReader

__all__ = [
    "CocoCaptionsReader",
    "ConceptualCaptionsTsvReader",
    "CsvReader",
    "DataFormatError",
    "DemoReader",
    "HFDatasetReader",
    "KarpathyReader",
    "PairReader",
    "ScenesReader",
    "WebDatasetReader",
]
