"""Hugging Face-native export: the exported directory loads through `transformers` (AutoModel,
AutoProcessor, the zero-shot pipeline) in a fresh process and gives the same embeddings as
`tonics.load` and as the trained model; all weights are safetensors; the card says what it is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

import tonics
from tonics.export import export_model
from tonics.model.factory import ModelSpec
from tonics.train.module import AlignmentModule

FRESH_PROCESS = r"""
import json, sys
import tonics  # registers the model type (no code is shipped inside the export)
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor, pipeline

directory = sys.argv[1]
images = [Image.new("RGB", (40, 40), (200, 30, 30)), Image.new("RGB", (40, 40), (20, 200, 40))]
model = AutoModel.from_pretrained(directory).eval()
processor = AutoProcessor.from_pretrained(directory)
inputs = processor(
    text=["a red square", "a green square"], images=images, return_tensors="pt", padding=True
)
with torch.no_grad():
    text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    image = model.get_image_features(inputs["pixel_values"]).pooler_output
classify = pipeline("zero-shot-image-classification", model=directory)
scores = [classify(im, candidate_labels=["red", "green", "blue"]) for im in images]
print(json.dumps({"text": text.tolist(), "image": image.tolist(), "type": type(model).__name__,
                  "processor": type(processor).__name__, "pipeline": scores}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("vision", ["tiny:vit", "tiny:clip_vision", "tiny:mobilenet_v2"])
def test_export_loads_through_transformers_and_the_pipeline(tmp_path, vision):
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(
            text_encoder="tiny:bert",
            vision_encoder=vision,
            embed_dim=16,
            head="mlp" if vision == "tiny:vit" else "linear",
        )
    )
    module.model.logit_scale.data.fill_(2.0)
    out = export_model(
        module.model,
        tmp_path / "export",
        text_name="tiny:bert",
        vision_name=vision,
        text_pooling="mean",
        vision_pooling="pooled",
        head=module.spec.head,
    )
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "processor_config.json"} <= files
    assert not [p for p in out.rglob("*") if p.suffix in (".pt", ".bin", ".pkl", ".ckpt")]

    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(out)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    assert fresh["type"] == "TonicsDualEncoderModel"
    assert fresh["processor"] == "VisionTextDualEncoderProcessor"

    loaded = tonics.load(out)
    images = [Image.new("RGB", (40, 40), (200, 30, 30)), Image.new("RGB", (40, 40), (20, 200, 40))]
    ours_text = loaded.encode_text(["a red square", "a green square"])
    ours_image = loaded.encode_image(images)
    normalise = lambda rows: torch.nn.functional.normalize(torch.tensor(rows), dim=-1)  # noqa: E731
    assert torch.allclose(normalise(fresh["text"]), ours_text, atol=1e-5)
    assert torch.allclose(normalise(fresh["image"]), ours_image, atol=1e-5)

    module.eval()  # and both equal the trained model's own embeddings
    pixels = loaded.image_processor(images=images, return_tensors="pt")["pixel_values"]
    tokens = loaded.tokenizer(["a red square", "a green square"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(module.model.encode_image(pixels), ours_image, atol=1e-5)
        assert torch.allclose(
            module.model.encode_text(tokens["input_ids"], tokens["attention_mask"]),
            ours_text,
            atol=1e-5,
        )

    for image, scores in zip(images, fresh["pipeline"]):  # the pipeline ranks by our logits
        labels = ["red", "green", "blue"]
        prompts = loaded.encode_text([f"This is a photo of {x}." for x in labels])
        logits = loaded.scale() * loaded.encode_image([image]) @ prompts.T
        expected = torch.softmax(logits, dim=-1)[0]
        got = {s["label"]: s["score"] for s in scores}
        assert torch.allclose(torch.tensor([got[x] for x in labels]), expected, atol=1e-4)


def test_model_card_front_matter_and_run_figures(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "retrieval_test.json").write_text(
        json.dumps(
            {
                "checkpoint": "best.ckpt",
                "test/recall_mean": 41.5,
                "test/image_to_text_R@1": 20.25,
                "test/images": 10.0,
                "test/captions": 20.0,
            }
        )
    )
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    out = export_model(
        module.model,
        tmp_path / "export",
        text_name="packaged:minilm",
        vision_name="tiny:vit",
        text_pooling="mean",
        vision_pooling="pooled",
        head="linear",
        run=tmp_path / "run",
    )
    card = (out / "README.md").read_text()
    front = card.split("---")[1]
    assert "pipeline_tag: zero-shot-image-classification" in front
    assert "base_model: [sentence-transformers/all-MiniLM-L6-v2]" in front
    assert "license: apache-2.0" in front
    assert "| recall_mean | 41.50 |" in card and "| image_to_text_R@1 | 20.25 |" in card


def test_retrieval_measures_any_transformers_dual_encoder(tiny_dataset, tmp_path):
    """`tonics retrieval --model` on a plain `VisionTextDualEncoderModel` (no tonics code in it)
    gives the recall a brute-force computation with the model's own features gives."""
    from transformers import (
        BertConfig,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
        VisionTextDualEncoderProcessor,
        ViTConfig,
    )

    from tonics.cli import cli_main
    from tonics.data.readers import KarpathyReader
    from tonics.data.records import select_split
    from tonics.model.packaged import TINY_IMAGE, TINY_TRANSFORMER, tiny_image_processor

    torch.manual_seed(0)
    config = VisionTextDualEncoderConfig.from_vision_text_configs(
        ViTConfig(**TINY_TRANSFORMER, **TINY_IMAGE),
        BertConfig(**TINY_TRANSFORMER),
        projection_dim=8,
    )
    model = VisionTextDualEncoderModel(config).eval()
    tokenizer = tonics.model.load_tokenizer("tiny:bert")
    processor = VisionTextDualEncoderProcessor(
        image_processor=tiny_image_processor(), tokenizer=tokenizer
    )
    model.save_pretrained(tmp_path / "dual")
    processor.save_pretrained(tmp_path / "dual")
    split_file, root = tiny_dataset
    cli_main(
        [
            "retrieval",
            "--model",
            str(tmp_path / "dual"),
            "--karpathy",
            split_file,
            "--image-root",
            root,
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    figures = json.loads((tmp_path / "r.json").read_text())

    records = sorted(
        select_split(KarpathyReader(split_file, root).read(), "test"), key=lambda r: r.image_id
    )
    image_ids = sorted({r.image_id for r in records})
    first = {r.image_id: r for r in reversed(records)}
    with torch.no_grad():
        pixels = processor(
            images=[Image.open(first[i].image.path).convert("RGB") for i in image_ids],
            return_tensors="pt",
        )["pixel_values"]
        tokens = tokenizer([r.caption for r in records], padding=True, return_tensors="pt")
        image = model.get_image_features(pixel_values=pixels)
        text = model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
    image, text = (
        torch.nn.functional.normalize(getattr(x, "pooler_output", x), dim=-1) for x in (image, text)
    )
    owner = torch.tensor([image_ids.index(r.image_id) for r in records])
    text_to_image_r1 = 100 * float(((text @ image.T).argmax(1) == owner).float().mean())
    assert figures["captions"] == len(records) and figures["images"] == len(image_ids)
    assert figures["text_to_image_R@1"] == pytest.approx(text_to_image_r1, abs=1e-6)


def test_zeroshot_command_on_an_image_folder(tmp_path, capsys):
    """Top-1 equals a brute-force argmax with one prompt; a broken image is skipped and counted."""
    from tonics.cli import cli_main

    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    out = export_model(
        module.model,
        tmp_path / "export",
        text_name="tiny:bert",
        vision_name="tiny:vit",
        text_pooling="mean",
        vision_pooling="pooled",
        head="linear",
    )
    colours = {"red_apple": (200, 20, 20), "green_leaf": (20, 200, 20), "blue_sky": (20, 20, 200)}
    images, labels = [], []
    for k, (name, rgb) in enumerate(colours.items()):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for j in range(2):
            image = Image.new("RGB", (30 + 7 * j, 30), tuple(min(255, c + 30 * j) for c in rgb))
            image.save(tmp_path / "folder" / name / f"{j}.png")
            images.append(image)
            labels.append(k)
    (tmp_path / "folder" / "blue_sky" / "broken.jpg").write_bytes(b"not a jpeg")
    cli_main(
        [
            "zeroshot",
            "--model",
            str(out),
            "--image-folder",
            str(tmp_path / "folder"),
            "--template",
            "a photo of a {}.",
            "--out",
            str(tmp_path / "z.json"),
        ]
    )
    report = json.loads((tmp_path / "z.json").read_text())
    model = tonics.load(out)
    prompts = model.encode_text([f"a photo of a {n.replace('_', ' ')}." for n in colours])
    predicted = (model.encode_image(images) @ prompts.T).argmax(1)
    expected = 100 * float((predicted == torch.tensor(labels)).float().mean())
    assert report["top1"] == pytest.approx(expected, abs=1e-6)
    assert report["images"] == 6 and report["classes"] == 3 and report["skipped"] == 1
    import datasets

    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(colours))}
    )
    data = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    datasets.DatasetDict({"test": data}).save_to_disk(str(tmp_path / "hf"))
    cli_main(
        [
            "zeroshot",
            "--model",
            str(out),
            "--hf-dataset",
            str(tmp_path / "hf"),
            "--template",
            "a photo of a {}.",
            "--out",
            str(tmp_path / "h.json"),
        ]
    )
    from_dataset = json.loads((tmp_path / "h.json").read_text())
    assert (
        from_dataset["top1"] == pytest.approx(expected, abs=1e-6) and from_dataset["skipped"] == 0
    )
