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
    ("fit", ["--config", "{missing}.yaml"], "missing"),
    ("fit", ["--config", "{config}", "--data.batch_size", "1"], "data.batch_size"),
    ("fit", ["--config", "{config}", "--ckpt_path", "{damaged}"], "damaged"),
    ("fit", ["--config", "{config}", "--data.eval_split", "nope"], "data.eval_split"),
    ("validate", ["--config", "{missing}.yaml"], "missing"),
    ("validate", ["--config", "{config}", "--bogus_key", "1"], "bogus_key"),
    ("validate", ["--config", "{config}", "--data.eval_split", "nope"], "data.eval_split"),
    ("test", ["--config", "{missing}.yaml"], "missing"),
    ("test", ["--config", "{config}", "--ckpt_path", "{damaged}"], "damaged"),
    ("test", ["--config", "{config}", "--model.head", "cube"], "model.head"),
    ("predict", ["--config", "{missing}.yaml"], "missing"),
    ("predict", ["--config", "{config}", "--bogus_key", "1"], "bogus_key"),
    ("predict", ["--config", "{config}", "--data.max_text_length", "0"], "max_text_length"),
    ("ontology", [], "action"),
    ("ontology", ["stats"], "name exactly one dataset"),
    ("ontology", ["stats", "--karpathy", "{missing}.json"], "missing"),
    ("ontology", ["stats", "--load", "{missing}.npz"], "missing"),
    ("export", [], "checkpoint"),
    ("export", ["{missing}.ckpt", "{missing}-out"], "missing"),
    ("export", ["{damaged}", "{missing}-out"], "damaged"),
    ("retrieval", ["--demo", "--karpathy", "{split}"], "name exactly one dataset"),
    (
        "retrieval",
        ["--model", "{missing}", "--karpathy", "{split}", "--image-root", "{root}"],
        "missing",
    ),
    (
        "retrieval",
        ["--model", "{evil}", "--karpathy", "{split}", "--image-root", "{root}"],
        "auto_map",
    ),
    ("retrieval", ["--karpathy", "{split}", "--image-root", "{root}", "--split", "nope"], "nope"),
    ("retrieval", ["--batch-size", "many"], "batch-size"),
    ("zeroshot", [], "--model"),
    ("zeroshot", ["--model", "{missing}", "--image-folder", "{folder}"], "missing"),
    ("zeroshot", ["--model", "{evil}", "--image-folder", "{folder}"], "auto_map"),
    ("demo", ["--seed", "x"], "--seed"),
    ("demo", ["--bogus"], "--bogus"),
    ("demo", ["--stats", "--json", "extra"], "extra"),
    ("index", [], "shards"),
    ("index", ["{missing}/*.tar"], "no shards match"),
    ("index", ["x.tar", "--workers", "y"], "--workers"),
    ("report", [], "run_dir"),
    ("report", ["{missing}"], "missing"),
    ("report", ["{empty}"], "empty"),
    ("compare", [], "configs"),
    ("compare", ["{config}"], "two or more configs"),
    ("compare", ["{config}", "{config}"], "two or more configs"),
    ("compare", ["{config}", "{missing}.yaml", "--seeds", "0"], "two seeds"),
    ("caption", [], "--model"),
    ("caption", ["--model", "{missing}", "x.jpg"], "missing"),
    ("caption", ["--model", "{evil}", "x.jpg"], "auto_map"),
    ("caption", ["--model", "{empty}", "x.jpg", "--beams", "0"], "--beams"),
    ("search", [], "action"),
    ("search", ["index", "--images", "{missing}", "--out", "{missing}-ix"], "missing"),
    ("search", ["query", "{empty}", "a dog"], "not a search index"),
    ("search", ["query", "{empty}"], "give words or --image"),
]


def test_every_command_has_three_bad_inputs():
    counts = {name: sum(1 for c, _, _ in CASES if c == name) for name in BY_NAME}
    assert min(counts.values()) >= 3, counts


@pytest.mark.slow
@pytest.mark.parametrize(("command", "args", "named"), CASES)
def test_bad_input_is_one_line_exit_2(files, capsys, monkeypatch, command, args, named):
    monkeypatch.delenv("TONICS_DEBUG", raising=False)
    argv = [command, *(a.format(**files) for a in args)]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tonics")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert named.format(**files) in lines[0] or named in lines[0], lines[0]


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
