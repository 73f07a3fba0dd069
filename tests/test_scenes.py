"""The scenes dataset: several demo drawings an image, template captions from human-written
names, COCO and Karpathy files read by the COCO readers, a compositional hold-out, leak-free and
deterministic builds, and the seen/unseen-combination metrics."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from tonics.data.pair_table import PairTable
from tonics.data.readers import CocoCaptionsReader, KarpathyReader, ScenesReader
from tonics.data.scenes import build_scenes
from tonics.data.scenes.captions import (
    TEMPLATES,
    Mention,
    join_phrases,
    plural,
    relation,
    scene_captions,
    with_article,
)
from tonics.data.scenes.card import pairs_of
from tonics.eval.composition import composition_metrics, unseen_combinations
from tonics.eval.ranking import tie_rank

pytestmark = pytest.mark.slow  # builds the demo, the scenes or several processes

SIZES = {"train": 240, "val": 60, "test": 60}


@pytest.fixture(scope="module")
def scenes(built_demo, tmp_path_factory):
    """(scenes directory, demo root) of a small scene build."""
    demo_root = built_demo[0]
    out = tmp_path_factory.mktemp("scenes")
    return build_scenes(out, sizes=SIZES, demo_root=demo_root), demo_root


def _karpathy(directory: Path) -> list[dict]:
    return json.loads((directory / "dataset_scenes.json").read_text())["images"]


def _meta(directory: Path) -> dict:
    return json.loads((directory / "scenes.json").read_text())


def test_scenes_hold_two_to_four_drawings_and_five_captions(scenes):
    directory, _ = scenes
    images = _karpathy(directory)
    assert {s: sum(i["split"] == s for i in images) for s in SIZES} == SIZES
    assert {len(i["drawings"]) for i in images} == {2, 3, 4}
    assert all(len(i["sentences"]) == 5 for i in images)
    twins = [i for i in images if len(set(i["objects"])) < len(i["drawings"])]
    assert 0.1 < len(twins) / len(images) < 0.3  # one category twice ("two apples") in ~20%
    card = _meta(directory)["card"]
    assert card["caption_words"]["median"] >= 6
    assert set(card["objects_per_image"]) == {"2", "3", "4"} and card["pairs"] == 5 * len(images)


def test_no_drawing_nor_concept_of_an_evaluation_scene_is_in_a_training_scene(scenes):
    directory, demo_root = scenes
    demo = json.loads((demo_root / "dataset_demo.json").read_text())["images"]
    concept = {str(Path(i["filepath"]) / i["filename"]): i["concept"] for i in demo}
    captions = {str(Path(i["filepath"]) / i["filename"]): i["sentences"][0]["raw"] for i in demo}
    split_of: dict[str, set] = defaultdict(set)
    for image in _karpathy(directory):
        for path in image["drawings"]:
            split_of[("drawing", path)].add(image["split"])
            split_of[("concept", concept[path])].add(image["split"])
            split_of[("title", captions[path].lower())].add(image["split"])
    crossing = [key for key, splits in split_of.items() if len(splits) > 1]
    assert not crossing, crossing[:5]
    assert any(key[0] == "drawing" and splits == {"test"} for key, splits in split_of.items())


def test_held_out_category_pairs_never_meet_in_training(scenes):
    directory, _ = scenes
    meta = _meta(directory)
    held_out = {frozenset(p) for p in meta["held_out_pairs"]}
    assert held_out
    shown = {s: set() for s in SIZES}
    for image in _karpathy(directory):
        shown[image["split"]] |= pairs_of(image["objects"])
    assert not shown["train"] & held_out
    assert shown["test"] & held_out and shown["val"] & held_out
    test = meta["card"]["splits"]["test"]
    assert 0 < test["images_with_a_pair_unseen_in_train"] <= test["object_sets_unseen_in_train"]


def test_the_same_seed_writes_the_same_files_and_a_second_build_is_reused(scenes, tmp_path):
    directory, demo_root = scenes
    again = build_scenes(tmp_path / "again", sizes=SIZES, demo_root=demo_root)
    for name in ("dataset_scenes.json", "annotations/captions_test.json"):
        assert (again / name).read_bytes() == (directory / name).read_bytes()
    assert (again / "annotations/instances_train.json").read_bytes() == (
        directory / "annotations/instances_train.json"
    ).read_bytes()
    for image in _karpathy(directory)[::97]:
        relative = Path("images") / image["filepath"] / image["filename"]
        assert (again / relative).read_bytes() == (directory / relative).read_bytes()
    stamp = (directory / "scenes.json").stat().st_mtime_ns
    assert build_scenes(directory, sizes=SIZES, demo_root=demo_root) == directory
    assert (directory / "scenes.json").stat().st_mtime_ns == stamp
    tiny = {"train": 20, "val": 5, "test": 5}  # a scene's plan does not depend on the sizes
    seed0 = _karpathy(build_scenes(tmp_path / "seed0", seed=0, sizes=tiny, demo_root=demo_root))
    seed1 = _karpathy(build_scenes(tmp_path / "seed1", seed=1, sizes=tiny, demo_root=demo_root))
    assert seed0[0]["drawings"] == _karpathy(directory)[0]["drawings"]
    assert [i["drawings"] for i in seed1] != [i["drawings"] for i in seed0]


def test_coco_files_read_by_the_coco_reader_give_the_karpathy_pairs(scenes):
    directory, _ = scenes
    coco = CocoCaptionsReader(
        str(directory / "annotations/captions_val.json"),
        str(directory / "images/val"),
        str(directory / "annotations/instances_val.json"),
    ).read()
    karpathy = [
        r
        for r in KarpathyReader(
            str(directory / "dataset_scenes.json"), str(directory / "images")
        ).read()
        if r.split == "val"
    ]
    assert {r.split for r in coco} == {"val"}  # from the file name, as for captions_val2017.json
    as_pairs = lambda records: sorted((r.image.path, r.caption, r.objects) for r in records)  # noqa: E731
    assert as_pairs(coco) == as_pairs(karpathy)
    assert all(re.fullmatch(r"[a-z_.-]+\.n\.\d\d", o) for r in coco for o in r.objects)
    instances = json.loads((directory / "annotations/instances_val.json").read_text())
    assert {"id", "name", "supercategory", "synset"} <= set(instances["categories"][0])
    box = instances["annotations"][0]["bbox"]
    assert len(box) == 4 and 0 <= box[0] < 224 and box[2] > 0


def test_scenes_reader_reads_every_split_in_both_formats(scenes):
    directory, demo_root = scenes
    kwargs = dict(root=str(directory), demo_root=str(demo_root), train_images=240, eval_images=60)
    coco = ScenesReader(**kwargs).read()
    karpathy = ScenesReader(**kwargs, file_format="karpathy").read()
    assert {r.split for r in coco} == {"train", "val", "test"}
    assert isinstance(coco, PairTable) and isinstance(karpathy, PairTable)
    assert len(coco) == len(karpathy) == 5 * sum(SIZES.values())
    assert [r.objects for r in coco[:20]] == [r.objects for r in karpathy[:20]]
    assert not ScenesReader(**kwargs).skipped


def test_instances_give_the_ontology_its_objects(scenes, tmp_path):
    from tonics.ontology.index import ontology_for_records

    directory, demo_root = scenes
    records = ScenesReader(
        str(directory), demo_root=str(demo_root), train_images=240, eval_images=60
    ).read()
    train = [r for r in records if r.split == "train"][:500]
    ontology = ontology_for_records(train, source="instances", cache=tmp_path / "o")
    for record, objects in zip(train, ontology.pair_objects, strict=True):
        assert sorted(objects) == sorted(record.objects)
    by_caption = ontology_for_records(train, source="caption", cache=tmp_path / "c")
    assert sum(map(len, by_caption.pair_objects)) > 0


def test_relations_and_grammar_follow_the_boxes():
    dog = Mention("dog", "dog.n.01", (10, 100, 40, 40))
    cup = Mention("cup", "cup.n.01", (150, 100, 40, 40))
    book = Mention("book", "book.n.02", (150, 180, 40, 40))
    assert relation(dog, cup) == "to the left of" and relation(cup, dog) == "to the right of"
    assert relation(cup, book) == "above" and relation(book, cup) == "below"
    assert relation(cup, Mention("pen", "pen.n.01", (155, 105, 40, 40))) == "next to"
    assert [plural(w) for w in ("apple", "mouse", "box", "cherry", "child", "toy", "bus")] == [
        "apples",
        "mice",
        "boxes",
        "cherries",
        "children",
        "toys",
        "buses",
    ]
    assert with_article("apple") == "an apple" and with_article("dog") == "a dog"
    assert join_phrases(["a", "b", "c"]) == "a, b and c"


def test_captions_name_only_what_the_scene_shows():
    rng = random.Random(0)
    words = ["dog", "apple", "cup", "book", "owl"]
    for seed in range(200):
        chosen = rng.sample(words, rng.choice((2, 3)))
        chosen.append(chosen[0]) if seed % 3 == 0 else None  # a twin: "two dogs"
        mentions = [
            Mention(w, f"{w}.n.01", (rng.randrange(180), rng.randrange(180), 40, 40))
            for w in chosen
        ]
        captions = scene_captions(mentions, "white", seed)
        assert len(captions) == len(set(captions)) == 5
        for caption in captions:
            named = {w for w in words if re.search(rf"\b{w}s?\b", caption)}
            assert named and named <= set(chosen), caption
        assert all(w in captions[0] for w in set(chosen))  # the first caption lists every object
        if seed % 3 == 0:
            assert f"two {chosen[0]}s" in captions[0]
        for caption in captions:
            for a, rel, b in re.findall(
                r"an? (\w+) (to the left of|to the right of|above|below) an? (\w+)", caption
            ):
                if chosen.count(a) == 1 and chosen.count(b) == 1:  # a twin: which of the two?
                    first = next(m for m in mentions if m.name == a)
                    second = next(m for m in mentions if m.name == b)
                    assert relation(first, second) == rel


def test_unseen_combinations_and_their_recall_against_a_hand_count():
    class R:
        def __init__(self, image_id, objects):
            self.image_id, self.objects = image_id, objects

    train = [R("t1", ("a", "b")), R("t1", ("a", "b")), R("t2", ("b", "c", "d"))]
    evaluation = [R("e1", ("a", "b")), R("e2", ("a", "c")), R("e3", ("d",)), R("e4", ("c", "d"))]
    assert unseen_combinations(evaluation, train) == [False, True, None, False]
    # 3 images, 2 captions each; image 1 holds an unseen pair
    images = torch.eye(3)
    texts = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0.5, 0]])
    owner = [0, 0, 1, 1, 2, 2]
    scores = texts @ images.T
    own = scores.gather(1, torch.tensor(owner)[:, None]).squeeze(1)
    t2i = tie_rank(scores, own, torch.tensor(owner))
    i2t = torch.tensor([0, 0, 1])  # image->text ranks as the full retrieval gave them
    figures = composition_metrics(
        t2i, i2t, owner, [False, False, True, True, False, False], ks=(1,)
    )
    # seen: images 0 and 2, captions 0,1,4,5 rank 0,1,0,2 (row 5 ties image 0, which comes
    # first) -> 50%; image->text ranks 0,1 -> 50%
    assert t2i.tolist() == [0, 1, 0, 1, 0, 2]
    assert figures["seen_combination_text_to_image_R@1"] == 50.0
    assert figures["seen_combination_image_to_text_R@1"] == 50.0
    # unseen: image 1, captions 2 (rank 0) and 3 (rank 1 behind image 0) -> 50%; i2t 100%
    assert figures["unseen_combination_text_to_image_R@1"] == 50.0
    assert figures["unseen_combination_image_to_text_R@1"] == 100.0
    assert figures["unseen_combination_images"] == 1.0
    assert composition_metrics(t2i, i2t, owner, [None] * 6) == {}


def test_demo_scenes_stats_prints_the_card_with_its_provenance(scenes):
    directory, demo_root = scenes
    common = ["--scenes", "--root", str(directory), "--demo-root", str(demo_root)]
    sizes = ["--train-images", "240", "--eval-images", "60"]
    text = subprocess.run(
        [sys.executable, "-m", "tonics.cli", "demo", *common, *sizes, "--stats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "NOT written by people" in text and "composed by templates" in text
    for name in TEMPLATES:
        assert f"  {name} " in text
    assert re.search(r"objects per image: 2: \d+, 3: \d+, 4: \d+", text)
    assert re.search(r"caption length in words: median \d+", text)
    assert re.search(
        r"category pairs: \d+, seen together in train: \d+, held out of train: \d+", text
    )
    card = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tonics.cli", "demo", *common, *sizes, "--stats", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert card == _meta(directory)["card"]
    bad = subprocess.run(
        [sys.executable, "-m", "tonics.cli", "demo", "--scenes", "--train-images", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr == (
        "tonics: usage error: tonics demo: --train-images must be at least 1; got 0 "
        "(`tonics demo --help` for usage) (TONICS_DEBUG=1 for a traceback)\n"
    )


@pytest.mark.slow
def test_fit_on_scenes_reports_the_scene_metrics_and_cached_evaluation_matches_live(
    scenes, tmp_path
):
    """`tonics fit --config configs/scenes.yaml` through the COCO readers with object_source
    instances; evaluation from the split's feature cache gives the figures of live encoding."""
    from tonics.cli import cli_main

    directory, demo_root = scenes
    reports = {}
    for cached in ("true", "false"):
        root = tmp_path / cached
        cli_main(
            [
                "fit",
                "--config",
                "configs/scenes.yaml",
                f"--data.reader.init_args.root={directory}",
                f"--data.reader.init_args.demo_root={demo_root}",
                "--data.reader.init_args.train_images=120",
                "--data.reader.init_args.eval_images=60",
                f"--data.cache.evaluation={cached}",
                "--data.loader.num_workers=0",
                "--data.loader.persistent_workers=false",
                "--trainer.max_steps=8",
                "--trainer.val_check_interval=4",
                "--trainer.enable_progress_bar=false",
                f"--trainer.default_root_dir={root}",
                "--trainer.logger="
                + json.dumps(
                    {
                        "class_path": "lightning.pytorch.loggers.CSVLogger",
                        "init_args": {"save_dir": str(root)},
                    }
                ),
            ]
        )
        (report,) = root.rglob("retrieval_test.json")
        reports[cached] = json.loads(report.read_text())["last"]
    figures = reports["true"]
    for key in (
        "test/text_to_image_R@1",
        "test/image_to_text_R@1",
        "test/within_object_text_to_image_R@1",
        "test/seen_combination_text_to_image_R@1",
        "test/unseen_combination_text_to_image_R@1",
        "test/unseen_combination_image_to_text_R@1",
    ):
        assert key in figures, key
    assert figures["test/images"] == 60 and figures["test/captions"] == 300
    assert figures["test/unseen_combination_images"] > 0
    shared = {k: v for k, v in reports["false"].items() if k != "test/loss"}
    assert {k: figures[k] for k in shared} == pytest.approx(shared, abs=1e-4)


def test_two_processes_with_different_string_hashing_build_the_same_scenes(built_demo, tmp_path):
    """The build depends on no set or dict order that string hashing changes between processes
    (nltk lists hypernym paths in such an order)."""
    demo_root = built_demo[0]
    code = (
        "import sys; from tonics.data.scenes import build_scenes; "
        "build_scenes(sys.argv[1], sizes={'train': 60, 'val': 20, 'test': 20}, "
        "demo_root=sys.argv[2], workers=1)"
    )
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"hash{seed}"
        subprocess.run(
            [sys.executable, "-c", code, str(out), str(demo_root)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
        )
        outputs.append(out)
    for name in ("dataset_scenes.json", "annotations/instances_train.json"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_the_evaluation_commands_name_the_scenes_with_one_flag():
    import argparse

    from tonics.commands.datasets import add_reader_options, reader_from_args

    parser = argparse.ArgumentParser()
    add_reader_options(parser)
    reader = reader_from_args(parser.parse_args(["--scenes", "--demo-root", "/nowhere"]))
    assert isinstance(reader, ScenesReader) and reader.demo_root == "/nowhere"
    assert reader.file_format == "coco" and reader.sizes() == {
        "train": 20_000,
        "val": 1_000,
        "test": 1_000,
    }
