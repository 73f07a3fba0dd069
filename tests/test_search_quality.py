"""A model trained by `tonics fit` finds pictures by their captions: trained on coloured shapes,
exported, then its index of unseen test pictures is queried with each picture's own caption; the
picture must come back in the top 10 for at least 90% of the captions (measured: 100%; chance is
10 / 48 = 21%). The same measurement on the demo with its trained model is
`benchmarks/search_quality.py` (benchmarks/results/search_demo_quality.json)."""

from __future__ import annotations

import json
import random

import pytest
import yaml
from PIL import Image, ImageDraw

import tonics.search as search
from tonics.cli import cli_main

pytestmark = pytest.mark.slow  # builds the demo, the scenes or several processes

COLOURS = {
    "red": (210, 30, 30),
    "green": (30, 180, 50),
    "blue": (40, 50, 210),
    "yellow": (225, 215, 40),
    "black": (20, 20, 20),
    "white": (235, 235, 235),
}
SHAPES = ("square", "circle", "triangle", "cross")


def _draw(shape: str, colour: tuple, background: tuple, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (48, 48), background)
    draw = ImageDraw.Draw(image)
    x, y, r = rng.randint(14, 34), rng.randint(14, 34), rng.randint(9, 13)
    if shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    else:
        draw.rectangle((x - r, y - 3, x + r, y + 3), fill=colour)
        draw.rectangle((x - 3, y - r, x + 3, y + r), fill=colour)
    return image


def _shapes_dataset(root, n: int = 240, seed: int = 0) -> str:
    """A Karpathy split file of coloured shapes on grey, captioned with colour and shape."""
    rng = random.Random(seed)
    (root / "imgs").mkdir(parents=True)
    images = []
    for i in range(n):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        grey = rng.randint(110, 150)
        _draw(shape, COLOURS[colour], (grey, grey, grey), rng).save(root / "imgs" / f"{i:04d}.png")
        split = "test" if i % 5 == 0 else "val" if i % 5 == 1 else "train"
        captions = [f"a {colour} {shape}", f"a {shape} in {colour}"]
        images.append(
            {
                "filepath": "imgs",
                "filename": f"{i:04d}.png",
                "split": split,
                "cocoid": i,
                "sentences": [{"raw": c} for c in captions],
            }
        )
    path = root / "shapes.json"
    path.write_text(json.dumps({"images": images, "dataset": "shapes"}))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(test pictures folder, their first captions, exported model) after `tonics fit`."""
    root = tmp_path_factory.mktemp("shapes")
    split_file = _shapes_dataset(root)
    run = root / "run"
    config = {
        "seed_everything": 0,
        "model": {
            "spec": {"text_encoder": "tiny:bert", "vision_encoder": "tiny:vit", "embed_dim": 32},
            "optimizer": {"lr": 0.003, "encoder_lr": 0.003},
            "schedule": {"warmup_steps": 5},
            "opening": {"at_step": 0},
        },
        "data": {
            "reader": {
                "class_path": "tonics.data.readers.KarpathyReader",
                "init_args": {"split_file": split_file, "image_root": str(root)},
            },
            "loader": {"batch_size": 16, "eval_batch_size": 48, "num_workers": 0},
            "object_source": "caption",
            "ontology_cache": str(run / "ontology"),
            "stages": [{"name": "random", "mix": {"random": 1.0}}],
        },
        "trainer": {
            "max_steps": 150,
            "val_check_interval": 150,
            "check_val_every_n_epoch": None,
            "default_root_dir": str(run),
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 10,
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": str(run), "name": "tonics"},
                }
            ],
            "accelerator": "cpu",
            "devices": 1,
        },
    }
    config_path = root / "fit.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cli_main(["fit", "--config", str(config_path), "--no_test", "true"])
    checkpoint = next(run.rglob("last.ckpt"))
    cli_main(["export", str(checkpoint), str(root / "model")])
    pictures = root / "test-pictures"
    pictures.mkdir()
    captions = {}
    for entry in json.loads((root / "shapes.json").read_text())["images"]:
        if entry["split"] == "test":
            (pictures / entry["filename"]).write_bytes(
                (root / "imgs" / entry["filename"]).read_bytes()
            )
            captions[entry["filename"]] = entry["sentences"][0]["raw"]
    return pictures, captions, root / "model"


def test_own_caption_finds_its_picture_far_above_chance(trained, tmp_path, capsys):
    pictures, captions, model = trained
    cli_main(
        [
            "search",
            "index",
            "--model",
            str(model),
            "--images",
            str(pictures),
            "--out",
            str(tmp_path / "ix"),
        ]
    )
    capsys.readouterr()
    index = search.open(tmp_path / "ix")
    assert len(index) == len(captions) == 48
    found = [
        name in {h.path for h in index.text(caption, k=10)} for name, caption in captions.items()
    ]
    chance = 10 / len(captions)
    rate = sum(found) / len(found)
    assert rate >= 0.9, (
        f"own picture in the top 10 for {rate:.0%} of captions (chance {chance:.0%})"
    )
    name, caption = next(iter(captions.items()))
    cli_main(["search", "query", str(tmp_path / "ix"), caption, "-k", "10", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in printed["hits"]] == [h.path for h in index.text(caption, k=10)]
