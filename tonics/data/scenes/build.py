"""Build the scenes dataset: pick categories and drawings from the built demo (its leak-free
splits), plan scenes with a compositional hold-out, draw them in parallel, compose captions, and
write COCO and Karpathy files with a data card (`scenes.json`).

A second build with the same version, seed, sizes and demo returns at once; another version writes
a new directory (the version is in the cache path), so old files are never reused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from tonics.data.parallel import parallel_map
from tonics.data.scenes.captions import Mention, scene_captions
from tonics.data.scenes.card import scenes_card
from tonics.data.scenes.catalogue import read_catalogue
from tonics.data.scenes.coco_files import file_name, write_coco, write_karpathy
from tonics.data.scenes.compose import write_scene
from tonics.data.scenes.layout import held_out_pairs, plan_scenes

log = logging.getLogger(__name__)

SCENES_VERSION = 3  # 3: the same categories in every process (2: leak groups split once across
# categories; v1 let a caption cross splits)
HELD_OUT_PAIR_SHARE = 0.05  # of all category pairs: never together in a training scene
FULL_SIZE = {"train": 20_000, "val": 1_000, "test": 1_000}


def scenes_dir(root: str | Path | None = None) -> Path:
    """Directory of the scenes dataset (cache directory unless `root` is given)."""
    from tonics.data.demo.build import _extractor_version
    from tonics.paths import cache_dir

    if root is not None:
        return Path(root)
    return cache_dir() / f"scenes-v{SCENES_VERSION}-x{_extractor_version()}"


def _settings(seed: int, sizes: dict[str, int], demo_file: Path) -> dict:
    demo_meta = json.loads(demo_file.read_text()).get("tonics_demo", {})
    demo = {k: demo_meta.get(k) for k in ("version", "seed", "extractor")}
    return {"version": SCENES_VERSION, "seed": seed, "sizes": sizes, "demo": demo}


def _is_current(meta_file: Path, settings: dict) -> bool:
    if not meta_file.is_file():
        return False
    return json.loads(meta_file.read_text()).get("settings") == settings


def _draw_all(plans, drawings_root: Path, out: Path, workers: int) -> list[list[list[int]]]:
    tasks = [(p, str(drawings_root), str(out / "images" / p.split / file_name(p))) for p in plans]
    return parallel_map(write_scene, tasks, workers, "scenes: drawing", chunksize=64)


def _captions(plans, boxes) -> list[list[str]]:
    captions = []
    for plan, drawn in zip(plans, boxes, strict=True):
        mentions = [
            Mention(o.drawing.name, o.drawing.category, box)
            for o, box in zip(plan.objects, drawn, strict=True)
        ]
        captions.append(scene_captions(mentions, plan.background, plan.seed))
    return captions


def build_scenes(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    sizes: dict[str, int] | None = None,
    demo_root: str | Path | None = None,
    workers: int | None = None,
) -> Path:
    """Build (or reuse) the scenes; returns their directory (`annotations/`, `images/`,
    `dataset_scenes.json`, `scenes.json`). `sizes`: images per split (default: FULL_SIZE);
    `demo_root`: a demo built elsewhere (default: the cached demo, built if missing)."""
    from tonics.data.demo import build_demo

    sizes = dict(sizes or FULL_SIZE)
    out = scenes_dir(root)
    demo_file = build_demo(demo_root)
    settings = _settings(seed, sizes, demo_file)
    meta_file = out / "scenes.json"
    if _is_current(meta_file, settings):
        return out
    started = time.perf_counter()
    categories = read_catalogue(demo_file, seed=seed)
    held_out = held_out_pairs(categories, HELD_OUT_PAIR_SHARE, seed)
    plans = plan_scenes(categories, sizes, seed=seed, held_out=held_out)
    boxes = _draw_all(
        plans, demo_file.parent / "images", out, workers or min(4, os.cpu_count() or 1)
    )
    captions = _captions(plans, boxes)
    files = write_coco(out, plans, boxes, captions, categories)
    karpathy = write_karpathy(out, plans, captions)
    meta = {
        "settings": settings,
        "build_seconds": round(time.perf_counter() - started, 1),
        "files": {k: str(p.relative_to(out)) for k, p in {**files, "karpathy": karpathy}.items()},
        "held_out_pairs": sorted(sorted(p) for p in held_out),
        "card": scenes_card(plans, captions, categories, held_out),
    }
    tmp = meta_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(meta_file)
    log.info("scenes: %d images in %.0f s", len(plans), meta["build_seconds"])
    return out


def scenes_meta(root: str | Path | None = None, **options) -> dict:
    """The build record of the scenes (settings, files, held-out pairs, data card)."""
    return json.loads((build_scenes(root, **options) / "scenes.json").read_text())
