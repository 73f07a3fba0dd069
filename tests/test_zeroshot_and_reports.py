"""Zero-shot classification, reports, `tonics test` and `tonics retrieval` through the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_config

from tonics.cli import cli_main
from tonics.eval.report import config_hash, markdown_table
from tonics.eval.zeroshot import class_embeddings, zero_shot_accuracy


def test_prompt_ensemble_and_accuracy_on_a_hand_case():
    vectors = {"dog": torch.tensor([1.0, 0.0]), "cat": torch.tensor([0.0, 1.0])}

    def encode_text(prompts):
        name = "dog" if "dog" in prompts[0] else "cat"
        return torch.stack(
            [vectors[name] + 0.1 * k * torch.tensor([1.0, 1.0]) for k in range(len(prompts))]
        )

    classifier = class_embeddings(encode_text, ["dog", "cat"])
    assert classifier.shape == (2, 2) and torch.allclose(classifier.norm(dim=1), torch.ones(2))
    images = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0]])
    accuracy = zero_shot_accuracy(images, [0, 0, 0], classifier, ks=(1, 2))
    assert accuracy["top1"] == pytest.approx(200 / 3) and accuracy["top2"] == 100.0


def test_report_table_has_run_and_reference_rows():
    table = markdown_table("run", {"test/image_to_text_R@1": 12.5})
    assert (
        "| run | 12.50 |" in table
        and "CLIP ViT-B/32" in table
        and "50.1" in table
        and "30.4" in table
    )
    assert config_hash("a") != config_hash("b") and len(config_hash("a")) == 12


def test_fit_test_export_retrieval_commands(tiny_dataset, tmp_path, capsys):
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "c.yaml", split_file, root, tmp_path)
    cli_main(["fit", "--config", config])
    run = sorted((tmp_path / "tonics").glob("version_*"))[-1]
    report = json.loads((run / "retrieval_report.json").read_text())
    assert len(report["config_hash"]) == 12 and "test/text_to_image_R@1" in report
    assert "CLIP ViT-B/32" in (run / "retrieval_report.md").read_text()
    capsys.readouterr()
    cli_main(["test", "--config", config, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    assert "| image to text |" in capsys.readouterr().out
    cli_main(["export", str(run / "checkpoints" / "last.ckpt"), str(tmp_path / "exported")])
    cli_main(
        [
            "retrieval",
            "--model",
            str(tmp_path / "exported"),
            "--karpathy",
            split_file,
            "--image-root",
            root,
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    figures = json.loads((tmp_path / "r.json").read_text())
    assert (
        figures["images"] == 6
        and figures["captions"] == 12
        and 0 <= figures["image_to_text_R@10"] <= 100
    )
    # the metrics the curriculum should move, as at validation: objects from the captions,
    # novelty against the reader's training split
    assert 0 <= figures["within_object_text_to_image_R@1"] <= 100
    assert 0 <= figures["caption_novel_share"] <= 100
