"""The built-in demo dataset: real images and human-written text from registry packages, with
leak-free splits, a held-out transfer split and a data card."""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import imagehash
import pytest
from helpers import drawn_pair_ids_digest
from PIL import Image

from tonics.cli import cli_main
from tonics.data.demo import build_demo, emoji_annotations, svg_metadata
from tonics.data.demo.captions import BOILERPLATE, clean_text
from tonics.data.demo.sources import sources_dir
from tonics.data.demo.splits import near_duplicates
from tonics.data.images import load_image
from tonics.data.pair_table import PairTable
from tonics.data.readers import DemoReader
from tonics.data.records import normalise_caption, select_split

pytestmark = pytest.mark.slow  # builds the demo, the scenes or several processes


@pytest.fixture(scope="module")
def demo(built_demo):
    return built_demo


def _images(path):
    return json.loads(path.read_text())["images"]


def test_demo_sources_splits_and_size(demo):
    root, path, seconds = demo
    images = _images(path)
    assert seconds < 180  # the budget on 2 cores
    assert len(images) >= 8000  # ~2.7x the first demo's 3,018 distinct images
    by_source = defaultdict(set)
    for image in images:
        by_source[image["source"]].add(image["split"])
    assert by_source == {
        "openclipart": {"train", "val", "test"},
        "noto-emoji": {"train", "val", "test"},
        "twemoji": {"train", "val", "test"},
        "openmoji": {"transfer"},  # a rendering style held out of training entirely
    }
    records = DemoReader(str(root)).read()
    assert isinstance(records, PairTable)  # the demo reads as a memory-mapped table
    assert {r.split for r in records} == {"train", "val", "test", "transfer"}
    assert records.splits() == ["test", "train", "transfer", "val"]


def test_the_same_seed_draws_the_same_demo_pairs_as_before(demo, tmp_path):
    """The per-record code drew these pairs from the demo's training split (digest recorded before
    the ontology kept its pairs' objects as arrays); the same seed must draw exactly the same."""
    root, _, _ = demo
    train = select_split(DemoReader(str(root)).read(), "train")
    digests = json.loads((Path(__file__).parent / "draw_digests.json").read_text())
    assert drawn_pair_ids_digest(train, tmp_path, batch_size=32) == digests["demo_train_batch32"]


def test_same_seed_gives_the_same_files_and_a_second_build_is_instant(demo, tmp_path):
    root, path, first_seconds = demo
    started = time.perf_counter()
    assert build_demo(root) == path
    assert time.perf_counter() - started < min(1.0, first_seconds / 5)
    again = build_demo(tmp_path / "again", seed=0)
    assert _images(again) == _images(path)
    for image in _images(path)[::997]:
        relative = Path(image["filepath"]) / image["filename"]
        assert (root / "images" / relative).read_bytes() == (
            tmp_path / "again" / "images" / relative
        ).read_bytes()


def test_splits_are_leak_free(demo):
    root, path, _ = demo
    images = [i for i in _images(path) if i["split"] != "transfer"]
    split_of_concept, split_of_caption = {}, {}
    for image in images:
        assert split_of_concept.setdefault(image["concept"], image["split"]) == image["split"]
        for sentence in image["sentences"]:
            caption = normalise_caption(sentence["raw"])
            assert split_of_caption.setdefault(caption, image["split"]) == image["split"], caption
    card = json.loads(path.read_text())["tonics_demo"]["card"]
    assert card["splits"]["test"]["seen_in_train"] < 0.10
    assert card["splits"]["val"]["seen_in_train"] < 0.10
    # near-duplicate drawings (perceptual hash within 4 bits) never straddle splits
    hashes = []
    for image in images:
        with Image.open(root / "images" / image["filepath"] / image["filename"]) as pixels:
            hashes.append(int(str(imagehash.phash(pixels)), 16))
    crossing = [
        (i, j) for i, j in near_duplicates(hashes, 4) if images[i]["split"] != images[j]["split"]
    ]
    assert not crossing, [(images[i]["filename"], images[j]["filename"]) for i, j in crossing[:5]]


def test_evaluation_splits_hold_one_rendering_per_concept(demo):
    _, path, _ = demo
    per_concept = defaultdict(list)
    for image in _images(path):
        per_concept[(image["split"], image["concept"])].append(image["source"])
    for (split, _), sources in per_concept.items():
        if split in ("val", "test"):
            assert len(sources) == 1
    twice = [s for (split, _), s in per_concept.items() if split == "train" and len(s) == 2]
    assert len(twice) > 1000  # training keeps both renderings of an emoji, as positives


def test_captions_are_the_sources_own_text_without_boilerplate(demo):
    _, path, _ = demo
    images = _images(path)
    annotations = emoji_annotations()
    for image in [i for i in images if i["source"] == "openclipart"]:
        for sentence in image["sentences"]:  # licence, URL, tool-credit sentences were removed
            assert not BOILERPLATE.search(sentence["raw"]), sentence["raw"]
    for image in [i for i in images if i["source"] in ("noto-emoji", "twemoji")][::7]:
        chars = "".join(chr(int(h, 16)) for h in image["filename"][1:-4].split("-"))
        name, keywords = annotations.get(chars) or annotations[chars.replace("\ufe0f", "")]
        for sentence in image["sentences"]:
            assert sentence["raw"] == name or set(sentence["raw"].split(", ")) <= set(keywords)
    clipart = [i for i in images if i["source"] == "openclipart"]
    for image in clipart[:: max(1, len(clipart) // 60)]:
        svg = Path("/usr/share/openclipart/svg") / image["filepath"].removeprefix("clipart/")
        title, description, keywords = svg_metadata((svg / image["filename"]).with_suffix(".svg"))
        own = {clean_text(title), clean_text(description)}
        for sentence in image["sentences"]:
            raw = sentence["raw"]
            assert raw in own or set(raw.split(", ")) <= {k.strip().lower() for k in keywords}, raw
    with open(sources_dir() / "openmoji" / "data" / "openmoji.csv", encoding="utf-8") as handle:
        annotation = {row["hexcode"]: row["annotation"] for row in csv.DictReader(handle)}
    for image in [i for i in images if i["source"] == "openmoji"][::11]:
        assert image["sentences"][0]["raw"] == annotation[image["filename"][:-4]]


def test_demo_images_decode(demo):
    root, _, _ = demo
    records = DemoReader(str(root)).read()
    for record in records[:: max(1, len(records) // 60)]:
        image, failure = load_image(record.image)
        assert failure is None and image.mode == "RGB" and max(image.size) <= 160


def test_demo_stats_prints_the_data_card(demo, capsys):
    root, _, _ = demo
    cli_main(["demo", "--root", str(root), "--stats"])
    out = capsys.readouterr().out
    for expected in ("transfer", "OpenMoji", "CC BY 4.0", "public domain", "caption length"):
        assert expected in out
    cli_main(["demo", "--root", str(root), "--stats", "--json"])
    card = json.loads(capsys.readouterr().out)
    assert card["pairs"] == sum(card["caption_words"]["histogram"].values())
    assert sum(s["images"] for s in card["splits"].values()) == card["images"]


def test_retrieval_on_the_held_out_transfer_split(demo, tmp_path):
    root, _, _ = demo
    out = tmp_path / "transfer.json"
    cli_main(
        [
            "retrieval",
            "--demo-transfer",
            "--demo-root",
            str(root),
            "--text-encoder",
            "tiny:bert",
            "--vision-encoder",
            "tiny:vit",
            "--batch-size",
            "256",
            "--out",
            str(out),
        ]
    )
    figures = json.loads(out.read_text())
    transfer = [i for i in _images(demo[1]) if i["split"] == "transfer"]
    assert figures["split"] == "transfer" and figures["images"] == len(transfer)
    assert figures["images_failed"] == 0 and 0 <= figures["text_to_image_R@1"] <= 100
