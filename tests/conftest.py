"""Shared fixtures: offline settings, a tiny real-format dataset written per session."""

from __future__ import annotations

import json
import os
import random

import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # n workers share the cores: one thread each, not n x
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # (inherited by the commands tests start)

NOUNS = [
    "dog",
    "cat",
    "horse",
    "pizza",
    "banana",
    "car",
    "bus",
    "bicycle",
    "chair",
    "sofa",
    "apple",
    "bird",
]
PLACES = [
    "on the grass",
    "in a kitchen",
    "near a table",
    "on a street",
    "in a field",
    "by a window",
]


def write_karpathy(
    root, n_images: int = 48, captions_per_image: int = 2, seed: int = 0, transfer: bool = False
) -> str:
    """A Karpathy-format split file with coloured JPEGs; captions name real objects. `transfer`:
    every eighth image (from the third) forms a held-out 'transfer' split."""
    rng = random.Random(seed)
    images = []
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        noun = NOUNS[i % len(NOUNS)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        Image.new("RGB", (40, 30), colour).save(root / "imgs" / f"{i:04d}.jpg")
        split = "test" if i % 8 == 0 else "val" if i % 8 == 1 else "train"
        if transfer and i % 8 == 2:
            split = "transfer"
        sentences = [{"raw": f"a {noun} {rng.choice(PLACES)}"} for _ in range(captions_per_image)]
        images.append(
            {
                "filepath": "imgs",
                "filename": f"{i:04d}.jpg",
                "split": split,
                "cocoid": i,
                "sentences": sentences,
            }
        )
    path = root / "dataset_tiny.json"
    path.write_text(json.dumps({"images": images, "dataset": "tiny"}))
    return str(path)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """(split file, image root) of a 48-image, 96-caption dataset."""
    root = tmp_path_factory.mktemp("tiny")
    return write_karpathy(root), str(root)


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory):
    """(root, split file, build seconds) of the demo built once per test run (the scenes are
    composed from its drawings); pytest-xdist workers share the one build through a file lock,
    and every worker gets the seconds the build took."""
    import time

    from filelock import FileLock

    from tonics.data.demo import build_demo

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base is inside the run's folder
        shared = shared.parent
    root, record = shared / "demo", shared / "demo-build.json"
    with FileLock(str(shared / "demo.lock")):
        if record.exists():
            return root, build_demo(root), json.loads(record.read_text())["seconds"]
        started = time.perf_counter()
        path = build_demo(root)
        seconds = time.perf_counter() - started
        record.write_text(json.dumps({"seconds": seconds}))
    return root, path, seconds


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory):
    """Keep ontology caches of the tests out of the user's cache (WordNet lexnames included)."""
    if "TONICS_CACHE" not in os.environ:
        os.environ["TONICS_CACHE"] = str(tmp_path_factory.mktemp("tonics-cache"))
    yield
