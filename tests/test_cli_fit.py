"""End to end through the `tonics` CLI on a tiny real-format dataset with tiny encoders."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_config
from PIL import Image

from tonics.cli import cli_main


def _version_dir(run_dir):
    return sorted((run_dir / "tonics").glob("version_*"))[-1]


def test_fit_passes_all_stages_and_reports_retrieval(tiny_dataset, tmp_path, capsys):
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "c.yaml", split_file, root, tmp_path)
    cli_main(["fit", "--config", config])
    out = capsys.readouterr().out
    assert "Retrieval on the test split" in out and "| image to text |" in out
    run = _version_dir(tmp_path)
    summary = json.loads((run / "stage_summary.json").read_text())
    assert [s["steps"] for s in summary] == [2, 2, 2]
    assert summary[1]["kinds"].get("ontology", 0) >= 1 and summary[2]["top_nodes"]
    steps = (run / "curriculum_steps.csv").read_text().splitlines()
    assert (
        steps[0].startswith("step,epoch,stage,stage_name,kind,node,depth,loss") and len(steps) == 7
    )
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "train/loss" in (run / "metrics.csv").read_text().splitlines()[0]
    retrieval = json.loads((run / "retrieval_test.json").read_text())
    assert 0 <= retrieval["test/image_to_text_R@1"] <= 100 and retrieval["test/images"] == 6
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["tonics_unfrozen"]["vision"] == 1  # the fine stage opened the top block
    assert checkpoint["global_step"] == 6  # last.ckpt is the last step, improved or not
    assert checkpoint["tonics_opened_at"] == {"text": None, "vision": 4}
    assert "last weights (step 6)" in out and "best checkpoint by val/recall_mean" in out
    assert 0 <= retrieval["last"]["test/recall_mean"] <= 100
    for name, step in (("stage0-diverse-end", 2), ("stage1-coarse-end", 4)):
        stage_end = torch.load(run / "checkpoints" / f"{name}.ckpt", weights_only=False)
        assert stage_end["global_step"] == step
        assert stage_end["tonics_unfrozen"]["vision"] is None  # saved before the stage opened it
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "val/recall_mean" in header and "val/within_object_text_to_image_R@1" in header
    assert (
        "test/within_object_image_to_text_R@1" in retrieval
        and "test/caption_novel_share" in retrieval
    )


def test_fit_with_siglip_masking_and_one_pair_per_image(tiny_dataset, tmp_path, capsys):
    split_file, root = tiny_dataset
    overrides = {
        "model.loss.kind": "siglip",
        "data.one_pair_per_image": True,
        "model.schedule.kind": "run",
        "model.spec.train_bn_stats": True,
        "trainer.max_steps": 4,
    }
    config = tiny_config(tmp_path / "c.yaml", split_file, root, tmp_path, **overrides)
    cli_main(["fit", "--config", config, "--no_test", "true"])
    run = _version_dir(tmp_path)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert "loss.logit_bias" in checkpoint["state_dict"]
    assert checkpoint["hyper_parameters"]["loss"]["kind"] == "siglip"


def test_exact_resume_mid_stage(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    common = {"trainer.limit_val_batches": 0}

    def run(name, max_steps, ckpt=None):
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        record = {
            "class_path": "helpers.RecordBatches",
            "init_args": {"path": str(directory / "batches.jsonl")},
        }
        config = tiny_config(
            directory / "c.yaml",
            split_file,
            root,
            directory,
            **common,
            **{"trainer.max_steps": max_steps, "trainer.callbacks": [record]},
        )
        args = ["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"]
        cli_main(args + (["--ckpt_path", str(ckpt)] if ckpt else []))
        return directory

    full = run("full", 12)  # 9 batches per epoch: crosses an epoch boundary
    part = run("part", 5)
    last = _version_dir(part) / "checkpoints" / "last.ckpt"
    run("part", 12, ckpt=last)
    expected = (full / "batches.jsonl").read_text().splitlines()
    resumed = (part / "batches.jsonl").read_text().splitlines()
    assert len(expected) == 12 and resumed == expected
    # the resumed run's diagnostics continue the interrupted run's: all 12 steps, once each
    steps = (_version_dir(part) / "curriculum_steps.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in steps] == list(range(12))
    summary = json.loads((_version_dir(part) / "stage_summary.json").read_text())
    assert sum(s["steps"] for s in summary) == 12


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    from conftest import write_karpathy

    split_file = write_karpathy(tmp_path, n_images=56, captions_per_image=2)
    data = json.loads(open(split_file).read())
    train = [im for im in data["images"] if im["split"] == "train"]
    (tmp_path / "imgs" / train[0]["filename"]).write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "imgs" / train[1]["filename"]).unlink()  # 2 of 42 train images (~5%)
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        str(tmp_path),
        tmp_path,
        **{
            "data.loader.batch_size": 4,
            "trainer.max_steps": -1,
            "trainer.max_epochs": 1,
            "trainer.limit_val_batches": 0,
        },
    )
    cli_main(["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"])
    report = json.loads((_version_dir(tmp_path) / "skipped_images.json").read_text())
    assert report["skipped_total"] == 4  # 2 images x 2 captions, each pair seen once in the epoch
    assert report["distinct_images"] == 2 and report["skipped_draws"] == 4
    assert report["by_reason"] == {"missing file": 2, "not an image": 2}
    # a second epoch, resumed from the checkpoint: the same pairs again are no new skips
    last = _version_dir(tmp_path) / "checkpoints" / "last.ckpt"
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        str(tmp_path),
        tmp_path,
        **{
            "data.loader.batch_size": 4,
            "trainer.max_steps": -1,
            "trainer.max_epochs": 2,
            "trainer.limit_val_batches": 0,
        },
    )
    cli_main(
        [
            "fit",
            "--config",
            config,
            "--no_test",
            "true",
            "--checkpoint.monitor",
            "null",
            "--ckpt_path",
            str(last),
        ]
    )
    report = json.loads((_version_dir(tmp_path) / "skipped_images.json").read_text())
    assert report["skipped_total"] == 4 and report["skipped_draws"] == 8


@pytest.mark.parametrize("feature_cache", [False, True])
def test_every_image_failing_stops_with_a_clear_error(tmp_path, capsys, feature_cache):
    from conftest import write_karpathy

    split_file = write_karpathy(tmp_path, n_images=24)
    for image in (tmp_path / "imgs").iterdir():
        image.write_bytes(b"")
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        str(tmp_path),
        tmp_path,
        **{
            "trainer.max_steps": -1,
            "trainer.max_epochs": 1,
            "trainer.limit_val_batches": 0,
            "data.cache.enabled": feature_cache,
        },
    )
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"])
    assert exit_info.value.code == 2
    assert "every image failed to load" in capsys.readouterr().err


def test_export_and_load_give_identical_embeddings(tiny_dataset, tmp_path):
    import tonics
    from tonics.train.module import AlignmentModule

    split_file, root = tiny_dataset
    config = tiny_config(
        tmp_path / "c.yaml", split_file, root, tmp_path, **{"trainer.max_steps": 3}
    )
    cli_main(["fit", "--config", config, "--no_test", "true"])
    ckpt = _version_dir(tmp_path) / "checkpoints" / "last.ckpt"
    cli_main(["export", str(ckpt), str(tmp_path / "exported")])
    exported = tonics.load(tmp_path / "exported")
    module = AlignmentModule.load_from_checkpoint(str(ckpt), map_location="cpu").eval()
    captions = ["a dog on the grass", "a red bus"]
    tokens = exported.tokenizer(captions, padding="longest", return_tensors="pt")
    tokens = {k: tokens[k] for k in ("input_ids", "attention_mask")}
    image = Image.new("RGB", (40, 30), (10, 200, 30))
    pixels = exported.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        assert torch.allclose(
            exported.encode_text(captions), module.model.encode_text(**tokens), atol=1e-6
        )
        assert torch.allclose(
            exported.encode_image([image]), module.model.encode_image(pixels), atol=1e-6
        )


def test_print_config_dumps_a_runnable_yaml(tiny_dataset, tmp_path, capsys):
    split_file, root = tiny_dataset
    config = tiny_config(tmp_path / "c.yaml", split_file, root, tmp_path)
    with pytest.raises(SystemExit) as done:
        cli_main(["fit", "--config", config, "--print_config"])
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert (
        "stages:" in out and "use_distributed_sampler" in out and "text_encoder: tiny:bert" in out
    )


def test_unknown_sampler_fails_before_training_naming_the_field(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        root,
        tmp_path,
        **{"data.stages": [{"name": "x", "mix": {"hardest": 1.0}}]},
    )
    with pytest.raises((SystemExit, ValueError)) as err:
        cli_main(["fit", "--config", config])
    assert "hardest" in str(err.value) or err.type is SystemExit


def test_default_loggers_write_csv_and_tensorboard_into_one_run_directory(
    tiny_dataset, tmp_path, monkeypatch
):
    import yaml

    split_file, root = tiny_dataset
    config = tiny_config(
        tmp_path / "c.yaml", split_file, root, tmp_path, **{"trainer.max_steps": 2}
    )
    settings = yaml.safe_load(open(config))
    del settings["trainer"]["logger"]  # the CLI's defaults: CSV and TensorBoard under ./runs
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", config, "--no_test", "true"])
    runs = sorted((tmp_path / "runs" / "tonics").iterdir())
    assert [r.name for r in runs] == ["version_0"]
    assert (runs[0] / "metrics.csv").is_file() and list(runs[0].glob("events.out.tfevents.*"))


def test_fit_reports_the_held_out_transfer_split_beside_test(tmp_path, capsys):
    from conftest import write_karpathy

    split_file = write_karpathy(tmp_path / "data", transfer=True)
    config = tiny_config(tmp_path / "c.yaml", split_file, str(tmp_path / "data"), tmp_path)
    cli_main(["fit", "--config", config])
    out = capsys.readouterr().out
    assert "Zero-shot transfer, last weights: the 'transfer' split" in out
    run = _version_dir(tmp_path)
    retrieval = json.loads((run / "retrieval_test.json").read_text())
    assert retrieval["test/images"] == 6 and retrieval["transfer"]["transfer/images"] == 6
    assert 0 <= retrieval["transfer"]["transfer/recall_mean"] <= 100
    from tonics.analysis.results import figures_of

    figures = figures_of(run)
    assert figures["transfer_recall_mean"] == retrieval["transfer"]["transfer/recall_mean"]
    assert figures["recall_mean"] == retrieval["last"]["test/recall_mean"]
