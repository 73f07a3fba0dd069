"""Build the demo dataset: read the sources, draw every image once (in parallel), group
near-duplicates and concepts, assign leak-free splits, and write a Karpathy-style split file
(`dataset_demo.json`, read by KarpathyReader, the reader COCO users use) with its data card.

A second build with the same version, seed and caption extractor returns at once; a changed one
writes a new directory (the version is in the cache path), so old caches are never reused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from tonics.data.demo.captions import drop_common_captions
from tonics.data.demo.card import data_card
from tonics.data.demo.render import write_image
from tonics.data.demo.sources import (
    DEBIAN_PACKAGES,
    EMOJI_FONT,
    NPM_PACKAGES,
    EnglishObjectFilter,
    clipart_images,
    emoji_images,
    missing_sources,
    openmoji_images,
)
from tonics.data.demo.splits import assign_splits, group_images, one_rendering_per_concept
from tonics.data.parallel import parallel_map

log = logging.getLogger(__name__)

DEMO_VERSION = 2
NEAR_DUPLICATE_BITS = 4  # of 64 perceptual-hash bits: re-filed or lightly edited drawings


def _extractor_version() -> int:
    from tonics.ontology.index import EXTRACTOR_VERSION

    return EXTRACTOR_VERSION


def demo_dir(root: str | Path | None = None) -> Path:
    """Directory of the demo dataset (cache directory unless `root` is given)."""
    from tonics.paths import cache_dir

    # the English/object filter uses the caption extractor: its version is part of the dataset's
    if root is not None:
        return Path(root)
    return cache_dir() / f"demo-v{DEMO_VERSION}-x{_extractor_version()}"


def _check_sources() -> None:
    missing = missing_sources()
    if missing:
        raise FileNotFoundError(
            f"demo sources missing: {', '.join(missing)}; run `bash scripts/install.sh` (it "
            "installs "
            f"the Debian packages {DEBIAN_PACKAGES} and unpacks the npm packages "
            f"{' '.join(NPM_PACKAGES.values())})"
        )


def _draw_all(items, out: Path, workers: int) -> list[int | None]:
    tasks = [(it.render, str(out / "images" / f"{it.key}.jpg"), str(EMOJI_FONT)) for it in items]
    return parallel_map(write_image, tasks, workers, "demo: drawing images")


def _is_current(split_file: Path, seed: int) -> bool:
    if not split_file.is_file():
        return False
    meta = json.loads(split_file.read_text()).get("tonics_demo", {})
    return (meta.get("version"), meta.get("seed"), meta.get("extractor")) == (
        DEMO_VERSION,
        seed,
        _extractor_version(),
    )


def _assign_splits(drawn, seed: int, val_share: float, test_share: float) -> None:
    """Draw whole leak-groups (concept, caption, near-duplicate look) into val/test by seed."""
    pool = [(it, h) for it, h in drawn if it.split is None]
    groups = group_images(
        [it.concept for it, _ in pool],
        [it.captions for it, _ in pool],
        [h for _, h in pool],
        NEAR_DUPLICATE_BITS,
    )
    splits = assign_splits(groups, seed=seed, val_share=val_share, test_share=test_share)
    for (it, _), split in zip(pool, splits, strict=True):
        it.split = split


def _image_entry(n: int, it) -> dict:
    """One image of the Karpathy-style split file."""
    return {
        "filepath": str(Path(it.key).parent),
        "filename": Path(it.key).name + ".jpg",
        "imgid": n,
        "split": it.split,
        "objects": [it.category],
        "source": it.source,
        "concept": it.concept,
        "sentences": [{"raw": c, "sentid": f"{n}-{k}"} for k, c in enumerate(it.captions)],
    }


def build_demo(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    val_share: float = 0.1,
    test_share: float = 0.1,
    workers: int | None = None,
) -> Path:
    """Build (or reuse) the demo dataset; returns the path of its Karpathy split file."""
    out = demo_dir(root)
    split_file = out / "dataset_demo.json"
    if _is_current(split_file, seed):
        return split_file
    _check_sources()
    started = time.perf_counter()
    english = EnglishObjectFilter()
    items, common_captions = drop_common_captions(clipart_images(english) + emoji_images(english))
    items += openmoji_images(english)
    hashes = _draw_all(items, out, workers or min(4, os.cpu_count() or 1))
    drawn = [(it, h) for it, h in zip(items, hashes, strict=True) if h is not None]
    _assign_splits(drawn, seed, val_share, test_share)
    keep = one_rendering_per_concept(
        [it.concept for it, _ in drawn], [it.split for it, _ in drawn], seed
    )
    written = [it for (it, _), kept in zip(drawn, keep, strict=True) if kept]
    images = [_image_entry(n, it) for n, it in enumerate(written)]
    meta = {
        "version": DEMO_VERSION,
        "seed": seed,
        "extractor": _extractor_version(),
        "build_seconds": round(time.perf_counter() - started, 1),
        "common_captions_removed": common_captions,
        "sources_left_out": len(items) - len(drawn),
        "renderings_left_out_of_eval": len(drawn) - len(written),
        "card": data_card(images),
    }
    tmp = split_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"dataset": "tonics-demo", "tonics_demo": meta, "images": images}))
    tmp.replace(split_file)
    log.info(
        "demo dataset: %d images, %d pairs in %.0f s",
        len(images),
        meta["card"]["pairs"],
        meta["build_seconds"],
    )
    return split_file


def demo_card(root: str | Path | None = None, *, seed: int = 0) -> dict:
    """The data card of the demo (building the demo first if needed)."""
    split_file = build_demo(root, seed=seed)
    return json.loads(split_file.read_text())["tonics_demo"]["card"]
