"""The built-in demo dataset: real images and human-written text from Debian packages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tonics.data.demo import build_demo, emoji_annotations, svg_metadata
from tonics.data.images import load_image
from tonics.data.readers import DemoReader


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    path = build_demo(root)
    return root, path, time.perf_counter() - started


def test_demo_has_enough_real_pairs_and_fixed_splits(demo):
    root, path, _ = demo
    data = json.loads(path.read_text())
    records = DemoReader(str(root)).read()
    assert len(records) >= 3000
    splits = {r.split for r in records}
    assert splits == {"train", "val", "test"}
    sources = {image["source"] for image in data["images"]}
    assert sources == {"openclipart", "emoji"}
    again = build_demo(root / "second", seed=0)
    assert [i["split"] for i in json.loads(again.read_text())["images"]] == [
        i["split"] for i in data["images"]
    ]


def test_second_build_is_instant(demo):
    root, path, first_seconds = demo
    started = time.perf_counter()
    assert build_demo(root) == path
    assert time.perf_counter() - started < min(1.0, first_seconds / 5)


def test_captions_are_the_sources_own_text(demo):
    _, path, _ = demo
    images = json.loads(path.read_text())["images"]
    annotations = emoji_annotations()
    emoji = [i for i in images if i["source"] == "emoji"]
    assert emoji
    for image in emoji:
        name, keywords = annotations[chr(int(image["filename"][1:-4], 16))]
        for sentence in image["sentences"]:
            assert sentence["raw"] == name or set(sentence["raw"].split(", ")) <= set(keywords)
    clipart = [i for i in images if i["source"] == "openclipart"]
    for image in clipart[:: max(1, len(clipart) // 40)]:
        svg = (
            Path("/usr/share/openclipart/svg")
            / image["filepath"].removeprefix("clipart/")
            / image["filename"]
        )
        title, description, keywords = svg_metadata(svg.with_suffix(".svg"))
        own = {title.replace("_", " "), description}
        for sentence in image["sentences"]:
            raw = sentence["raw"]
            assert raw in own or set(raw.split(", ")) <= {k.strip().lower() for k in keywords}, raw


def test_demo_images_decode(demo):
    root, _, _ = demo
    records = DemoReader(str(root)).read()
    for record in records[:: max(1, len(records) // 50)]:
        image, failure = load_image(record.image)
        assert failure is None and image.mode == "RGB" and max(image.size) <= 160
