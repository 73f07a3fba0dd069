"""Build (or reload from cache) the ontology for a list of pair records.

Records are duck-typed: anything with `pair_id`, `caption` and `objects` works, so this module
does not import `tonics`. The cache key hashes every pair's id, caption and labels together with
the extraction settings and object source, so a changed dataset or setting rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tonics.ontology.building import build_ontology
from tonics.ontology.extract import ExtractionSettings, NounExtractor
from tonics.ontology.graph import ObjectSource, Ontology

from tonics.paths import cache_dir

log = logging.getLogger(__name__)
EXTRACTOR_VERSION = 4  # bump when extraction rules change, so cached ontologies are rebuilt


def ontology_cache_key(
    records: Sequence, settings: ExtractionSettings, source: ObjectSource
) -> str:
    """A hash of the pairs (ids, captions, labels) and the settings. Records that hash their own
    content (`content_digest()`, a columnar pair table: its labels included) give
    that instead of being read one by one."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps([asdict(settings), source, EXTRACTOR_VERSION], sort_keys=True).encode()
    )
    if hasattr(records, "content_digest"):  # a columnar table hashes its own content, once
        digest.update(f"table\x1f{records.content_digest()}".encode())
        return digest.hexdigest()[:20]
    for r in records:
        digest.update(
            f"{r.pair_id}\x1f{r.caption}\x1f{'|'.join(r.objects)}\x1e".encode("utf-8", "replace")
        )
    return digest.hexdigest()[:20]


def ontology_for_records(
    records: Sequence,
    *,
    source: ObjectSource = "caption",
    settings: ExtractionSettings | None = None,
    cache: str | Path | None = None,
    category_table: dict[str, str] | None = None,
) -> Ontology:
    """The ontology of these pairs, in their order; loaded from the cache when nothing changed."""
    settings = settings or ExtractionSettings()
    key = ontology_cache_key(records, settings, source)
    directory = Path(cache) if cache is not None else cache_dir() / "ontology"
    path = directory / f"ontology-{key}.npz"
    columnar = hasattr(records, "content_digest")
    pair_ids = records.pair_ids if columnar else [r.pair_id for r in records]
    if path.is_file():
        log.info("ontology: loaded from cache %s", path)
        ontology = Ontology.load(path, pair_ids=pair_ids)  # in the key
        if not ontology._subtree_cache:  # a file written before the subtree index was stored
            ontology.precompute_subtrees()
        return ontology
    ontology = build_ontology(
        records.captions if columnar else [r.caption for r in records],
        pair_ids,
        image_objects=None if source == "caption" else _image_objects(records, columnar),
        source=source,
        extractor=NounExtractor(settings),
        category_table=category_table,
    )
    ontology.save(path)
    log.info(
        "ontology: built %d nodes for %d pairs, saved to %s",
        ontology.graph.number_of_nodes(),
        len(records),
        path,
    )
    return ontology


def _image_objects(records: Sequence, columnar: bool) -> list:
    """Each pair's labelled objects (a columnar table's objects column)."""
    if columnar:
        return [tuple(labels) for labels in records.objects]
    return [r.objects for r in records]
