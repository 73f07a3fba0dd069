"""Every `tonics` command answers bad input with one line on stderr naming the argument or file,
exit code 2 and no traceback (`TONICS_DEBUG=1` would show it). Table-driven: at least three bad
inputs per command; and a dataset without a split column is evaluated whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import tiny_config

from tonics.cli import cli_main
from tonics.commands import BY_NAME


@pytest.fixture(scope="module")
def files(tiny_dataset, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    split_file, image_root = tiny_dataset
    damaged = root / "damaged.ckpt"
    damaged.write_bytes(b"PK\x03\x04 truncated")
    (root / "empty").mkdir()
    evil = root / "evil"
    evil.mkdir()
    (evil / "config.json").write_text(
        json.dumps({"model_type": "x", "auto_map": {"AutoModel": "m.M"}})
    )
    folder = root / "folder" / "cat"
    folder.mkdir(parents=True)
    config = tiny_config(root / "fit.yaml", split_file, image_root, root / "runs")
    return {"split": split_file, "root": image_root, "damaged": str(damaged),
            "empty": str(root / "empty"), "evil": str(evil), "folder": str(folder.parent),
            "config": config, "missing": str(root / "missing")}  # fmt: skip


CASES = [
    (
        "fit",
        ["--config", "{missing}.yaml"],
        "config error: Parser key \"config\": File does not exist: '{missing}.yaml'",
    ),
    (
        "fit",
        ["--config", "{config}", "--data.loader.batch_size", "1"],
        "config error: data.loader.batch_size: must be >= 2; got 1",
    ),
    (
        "fit",
        ["--config", "{config}", "--ckpt_path", "{damaged}"],
        "input error: checkpoint {damaged} is damaged (RuntimeError: PytorchStreamReader failed "
        "reading zip archive: not a ZIP archive); no other loadable checkpoint is in that "
        "directory",
    ),
    (
        "fit",
        ["--config", "{config}", "--data.evaluation.split", "nope"],
        "config error: data.evaluation.split: the data has no 'nope' split (it has ['test', "
        "'train', 'val']); name one",
    ),
    (
        "validate",
        ["--config", "{missing}.yaml"],
        "config error: Parser key \"config\": File does not exist: '{missing}.yaml'",
    ),
    (
        "validate",
        ["--config", "{config}", "--bogus_key", "1"],
        "config error: unrecognized arguments: --bogus_key 1",
    ),
    (
        "validate",
        ["--config", "{config}", "--data.evaluation.split", "nope"],
        "config error: data.evaluation.split: the data has no 'nope' split (it has ['test', "
        "'train', 'val']); name one",
    ),
    (
        "test",
        ["--config", "{missing}.yaml"],
        "config error: Parser key \"config\": File does not exist: '{missing}.yaml'",
    ),
    (
        "test",
        ["--config", "{config}", "--ckpt_path", "{damaged}"],
        "input error: checkpoint {damaged} is damaged (RuntimeError: PytorchStreamReader failed "
        "reading zip archive: not a ZIP archive); no other loadable checkpoint is in that "
        "directory",
    ),
    (
        "test",
        ["--config", "{config}", "--model.spec.head", "cube"],
        "config error: Parser key \"model.spec.head\": Expected a typing.Literal['linear', "
        "'mlp']. Got value: cube",
    ),
    (
        "predict",
        ["--config", "{missing}.yaml"],
        "config error: Parser key \"config\": File does not exist: '{missing}.yaml'",
    ),
    (
        "predict",
        ["--config", "{config}", "--bogus_key", "1"],
        "config error: unrecognized arguments: --bogus_key 1",
    ),
    (
        "predict",
        ["--config", "{config}", "--data.loader.max_text_length", "0"],
        "config error: data.loader.max_text_length: must be >= 2; got 0",
    ),
    (
        "ontology",
        [],
        "usage error: tonics ontology: the following arguments are required: action (`tonics "
        "ontology --help` for usage)",
    ),
    (
        "ontology",
        ["stats"],
        "usage error: tonics: name exactly one dataset: --demo, --scenes, --karpathy, "
        "--coco-captions, --tsv, --webdataset, --hf or --csv",
    ),
    (
        "ontology",
        ["stats", "--karpathy", "{missing}.json"],
        "input error: {missing}.json: file not found",
    ),
    (
        "ontology",
        ["stats", "--load", "{missing}.npz"],
        "input error: {missing}.npz: no such ontology file; write one with `tonics ontology build`",
    ),
    (
        "export",
        [],
        "usage error: tonics export: the following arguments are required: checkpoint, out "
        "(`tonics export --help` for usage)",
    ),
    (
        "export",
        ["{missing}.ckpt", "{missing}-out"],
        "input error: {missing}.ckpt: no such checkpoint file; give a .ckpt a run wrote "
        "(runs/.../checkpoints/last.ckpt)",
    ),
    (
        "export",
        ["{damaged}", "{missing}-out"],
        "input error: checkpoint {damaged} is damaged (RuntimeError: PytorchStreamReader failed "
        "reading zip archive: not a ZIP archive); no other loadable checkpoint is in that "
        "directory",
    ),
    (
        "retrieval",
        ["--demo", "--karpathy", "{split}"],
        "usage error: tonics: name exactly one dataset: --demo, --scenes, --karpathy, "
        "--coco-captions, --tsv, --webdataset, --hf or --csv",
    ),
    (
        "retrieval",
        ["--model", "{missing}", "--karpathy", "{split}", "--image-root", "{root}"],
        "input error: {missing}: not a directory; give a model directory (tonics export)",
    ),
    (
        "retrieval",
        ["--model", "{evil}", "--karpathy", "{split}", "--image-root", "{root}"],
        "input error: {evil}/config.json: names custom code (auto_map); tonics never runs code "
        "from a model directory: remove auto_map or load a standard architecture",
    ),
    (
        "retrieval",
        ["--karpathy", "{split}", "--image-root", "{root}", "--split", "nope"],
        "input error: split 'nope' is empty; the data has splits ['test', 'train', 'val']",
    ),
    (
        "retrieval",
        ["--batch-size", "many"],
        "usage error: tonics retrieval: argument --batch-size: invalid int value: 'many' (`tonics "
        "retrieval --help` for usage)",
    ),
    (
        "zeroshot",
        [],
        "usage error: tonics zeroshot: the following arguments are required: --model (`tonics "
        "zeroshot --help` for usage)",
    ),
    (
        "zeroshot",
        ["--model", "{missing}", "--image-folder", "{folder}"],
        "input error: {missing}: not a directory; give a model directory (tonics export)",
    ),
    (
        "zeroshot",
        ["--model", "{evil}", "--image-folder", "{folder}"],
        "input error: {evil}/config.json: names custom code (auto_map); tonics never runs code "
        "from a model directory: remove auto_map or load a standard architecture",
    ),
    (
        "demo",
        ["--seed", "x"],
        "usage error: tonics demo: argument --seed: invalid int value: 'x' (`tonics demo --help` "
        "for usage)",
    ),
    (
        "demo",
        ["--bogus"],
        "usage error: tonics demo: unrecognized arguments: --bogus (`tonics demo --help` for "
        "usage)",
    ),
    (
        "demo",
        ["--stats", "--json", "extra"],
        "usage error: tonics demo: unrecognized arguments: extra (`tonics demo --help` for usage)",
    ),
    (
        "index",
        [],
        "usage error: tonics index: the following arguments are required: shards (`tonics index "
        "--help` for usage)",
    ),
    (
        "index",
        ["{missing}/*.tar"],
        "usage error: tonics index: no shards match '{missing}/*.tar'; check the glob",
    ),
    (
        "index",
        ["x.tar", "--workers", "y"],
        "usage error: tonics index: argument --workers: invalid int value: 'y' (`tonics index "
        "--help` for usage)",
    ),
    (
        "report",
        [],
        "usage error: tonics report: the following arguments are required: run_dir (`tonics report "
        "--help` for usage)",
    ),
    (
        "report",
        ["{missing}"],
        "input error: {missing}: no curriculum_steps.csv; pass the run's version directory",
    ),
    (
        "report",
        ["{empty}"],
        "input error: {empty}: no curriculum_steps.csv; pass the run's version directory",
    ),
    (
        "compare",
        [],
        "usage error: tonics compare: the following arguments are required: configs (`tonics "
        "compare --help` for usage)",
    ),
    (
        "compare",
        ["{config}"],
        "usage error: tonics compare: give two or more configs with different file names",
    ),
    (
        "compare",
        ["{config}", "{config}"],
        "usage error: tonics compare: give two or more configs with different file names",
    ),
    (
        "compare",
        ["{config}", "{missing}.yaml", "--seeds", "0"],
        "usage error: tonics compare: give at least two seeds (--seeds 0 1 2 3 4)",
    ),
    (
        "caption",
        [],
        "usage error: tonics caption: the following arguments are required: --model, images "
        "(`tonics caption --help` for usage)",
    ),
    (
        "caption",
        ["--model", "{missing}", "x.jpg"],
        "input error: {missing}: not a directory; give a model directory (tonics export)",
    ),
    (
        "caption",
        ["--model", "{evil}", "x.jpg"],
        "input error: {evil}/config.json: names custom code (auto_map); tonics never runs code "
        "from a model directory: remove auto_map or load a standard architecture",
    ),
    (
        "caption",
        ["--model", "{empty}", "x.jpg", "--beams", "0"],
        "usage error: tonics caption: --beams must be 1 to 64 and --batch-size 1 to 1024; got 0 "
        "and 16 (`tonics caption --help` for usage)",
    ),
    (
        "search",
        [],
        "usage error: tonics search: the following arguments are required: action (`tonics search "
        "--help` for usage)",
    ),
    (
        "search",
        ["index", "--images", "{missing}", "--out", "{missing}-ix"],
        "input error: {missing}: not a directory; give the folder of images to index",
    ),
    (
        "search",
        ["query", "{empty}", "a dog"],
        "input error: {empty}: not a search index (no manifest.json); build one with `tonics "
        "search index`",
    ),
    (
        "search",
        ["query", "{empty}"],
        "usage error: tonics search query: give words or --image PICTURE (one of them)",
    ),
    (
        "upgrade-config",
        [],
        "usage error: tonics upgrade-config: the following arguments are required: config "
        "(`tonics upgrade-config --help` for usage)",
    ),
    (
        "upgrade-config",
        ["{missing}.yaml"],
        "input error: {missing}.yaml: cannot be read (No such file or directory); give a YAML "
        "config",
    ),
    (
        "upgrade-config",
        ["{damaged}"],
        "input error: {damaged}: not YAML (ReaderError); give a YAML config",
    ),
    (
        "upgrade-config",
        ["{split}"],
        "input error: {split}: not a tonics fit config (no model, data or trainer section); give "
        "the YAML you pass to tonics fit --config",
    ),
]


def test_every_command_has_three_bad_inputs():
    counts = {name: sum(1 for c, _, _ in CASES if c == name) for name in BY_NAME}
    assert min(counts.values()) >= 3, counts


@pytest.mark.slow
@pytest.mark.parametrize(("command", "args", "message"), CASES)
def test_bad_input_is_one_line_exit_2(files, capsys, monkeypatch, command, args, message):
    """The whole stderr is the one line the code wrote: its kind of error, the field or file,
    the reason and what to do; nothing before it (no progress bar, no warning), nothing after."""
    monkeypatch.delenv("TONICS_DEBUG", raising=False)
    argv = [command, *(a.format(**files) for a in args)]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    expected = f"tonics: {message.format(**files)} (TONICS_DEBUG=1 for a traceback)\n"
    assert capsys.readouterr().err == expected


@pytest.mark.slow
def test_a_csv_without_a_split_column_is_evaluated_whole(tmp_path, capsys):
    from PIL import Image

    rows = ["filepath,title"]
    for i, (colour, noun) in enumerate([("red", "dog"), ("blue", "cat"), ("green", "car")]):
        Image.new("RGB", (16, 16), colour).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,a {colour} {noun}")
    (tmp_path / "photos.csv").write_text("\n".join(rows) + "\n")
    cli_main(["retrieval", "--csv", str(tmp_path / "photos.csv"), "--image-root", str(tmp_path),
              "--text-encoder", "tiny:bert", "--vision-encoder", "tiny:vit"])  # fmt: skip
    captured = capsys.readouterr()
    report = json.loads(captured.out[captured.out.index("{") :])
    assert report["captions"] == 3 and "evaluating every pair" in captured.err
    assert not any(key.startswith("caption_novel") for key in report)
    assert Path(tmp_path / "photos.csv").is_file()
