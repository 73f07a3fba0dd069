"""Search a photo collection: build an index with an exported model, query it by words and by
picture (CLI and Python), update it incrementally, resume a killed build, skip bad files, choose
the vector index by size, refuse what is not an index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tonics.search as search
from tonics.cli import cli_main
from tonics.errors import InputError
from tonics.model.factory import ModelSpec
from tonics.search import indexing as build_module

COLOURS = {
    "red": (220, 20, 20),
    "green": (20, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 30),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from tonics.export import export_model
    from tonics.train.module import AlignmentModule

    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    out = tmp_path_factory.mktemp("model") / "exported"
    export_model(
        module.model,
        out,
        text_name="tiny:bert",
        vision_name="tiny:vit",
        text_pooling="mean",
        vision_pooling="pooled",
        head="linear",
        run=None,
    )
    return out


def _photos(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        name = list(COLOURS)[i % 4]
        folder = root / ("sub" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(np.array(COLOURS[name]) + rng.integers(-15, 15, (32, 32, 3)), 0, 255)
        Image.fromarray(pixels.astype("uint8")).save(folder / f"{name}-{i}.png")
    return root


def _count_encodings(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = build_module._embed

    def counting(towers, root, files):
        calls.append(len(files))
        return original(towers, root, files)

    monkeypatch.setattr(build_module, "_embed", counting)
    return calls


def test_index_then_query_by_words_and_by_picture(exported, tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    cli_main(
        [
            "search",
            "index",
            "--model",
            str(exported),
            "--images",
            str(photos),
            "--out",
            str(tmp_path / "ix"),
        ]
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["images"] == 12 and report["skipped"] == 1 and report["index"] == "flat"
    cli_main(["search", "query", str(tmp_path / "ix"), "a red square", "-k", "5", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["index"] == {
        "kind": "flat",
        "recall_at_10": 1.0,
        "recall_target": 0.95,
        "recall_sample": 1,  # a tenth of the 12 images held out
        "query_p50_ms": printed["index"]["query_p50_ms"],
        "query_p99_ms": printed["index"]["query_p99_ms"],
    }
    hits = printed["hits"]
    assert len(hits) == 5 and [h["rank"] for h in hits] == list(range(5))
    assert hits == sorted(hits, key=lambda h: -h["score"])
    index = search.open(tmp_path / "ix")
    itself = index.image("sub/red-0.png", k=3)
    assert itself[0].path == "sub/red-0.png" and itself[0].score == pytest.approx(1.0, abs=1e-4)
    outside = tmp_path / "query.png"
    Image.open(photos / "sub" / "red-0.png").save(outside)  # same pixels, outside the root
    assert index.image(outside, k=1)[0].path == "sub/red-0.png"
    assert {h.path for h in index.text("green", k=12)} == set(index.paths)


def test_a_second_build_encodes_only_what_changed(exported, tmp_path, monkeypatch):
    photos = _photos(tmp_path / "photos")
    calls = _count_encodings(monkeypatch)
    first = search.build(photos, tmp_path / "ix", model=str(exported))
    assert first["encoded"] == 12 and sum(calls) == 12
    (photos / "green-1.png").unlink()
    Image.new("RGB", (20, 20), "purple").save(photos / "new.png")
    os.utime(photos / "red-4.png", ns=(1, 1))  # changed mtime: encoded again
    second = search.build(photos, tmp_path / "ix", model=str(exported))
    assert (second["encoded"], second["reused"], second["removed"]) == (2, 10, 1)
    assert sum(calls) == 14
    assert "green-1.png" not in search.open(tmp_path / "ix").paths


def test_a_killed_build_resumes_from_its_chunks(exported, tmp_path, monkeypatch):
    photos = _photos(tmp_path / "photos")
    calls = _count_encodings(monkeypatch)
    original = build_module._write

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "_write", killed)
    with pytest.raises(KeyboardInterrupt):
        search.build(photos, tmp_path / "ix", model=str(exported), chunk_size=5)
    assert sum(calls) == 12 and len(list((tmp_path / "ix" / "pending").iterdir())) == 3
    monkeypatch.setattr(build_module, "_write", original)
    report = search.build(photos, tmp_path / "ix", model=str(exported), chunk_size=5)
    assert report["images"] == 12 and sum(calls) == 12  # nothing encoded twice
    assert not list((tmp_path / "ix" / "pending").iterdir())


def test_approximate_indexes_agree_with_exact_search_and_report_their_tuning(
    exported, tmp_path, capsys
):
    photos = _photos(tmp_path / "photos", n=24)
    exact = search.build(photos, tmp_path / "flat", model=str(exported), kind="flat")
    cells = search.build(photos, tmp_path / "ivf", model=str(exported), kind="ivf")
    graph = search.build(photos, tmp_path / "hnsw", model=str(exported), kind="hnsw")
    assert (exact["index"], cells["index"], graph["index"]) == ("flat", "ivf", "hnsw")
    assert cells["search_params"] == {"nprobe": 1, "nlist": 1} and cells["recall_at_10"] == 1.0
    assert graph["search_params"] == {"ef_search": 16} and graph["recall_at_10"] == 1.0
    assert not (tmp_path / "flat" / "index.faiss").exists()  # exact search needs no file
    found = [
        [h.path for h in search.open(tmp_path / kind).text("blue", k=5)]
        for kind in ("flat", "ivf", "hnsw")
    ]
    assert found[0] == found[1] == found[2]
    # auto above the threshold tries IVF, but one cell of 24 vectors scores them all: exact kept
    auto = search.build(photos, tmp_path / "auto", model=str(exported), approximate_above=10)
    assert auto["index"] == "flat"
    cli_main(["search", "query", str(tmp_path / "hnsw"), "blue", "-k", "3", "--json"])
    reported = json.loads(capsys.readouterr().out)["index"]
    assert {k: reported[k] for k in ("kind", "ef_search", "recall_at_10", "recall_target")} == {
        "kind": "hnsw",
        "ef_search": 16,
        "recall_at_10": 1.0,
        "recall_target": 0.95,
    }
    assert "trials" not in reported  # recorded in the manifest, not repeated with every query
    manifest = json.loads((tmp_path / "hnsw" / "manifest.json").read_text())
    assert manifest["tuning"]["trials"] == [
        {
            "kind": "hnsw",
            "ef_search": 16,
            "recall_at_10": 1.0,
            "query_p50_ms": reported["query_p50_ms"],
        }
    ]


def test_a_recall_target_outside_0_to_1_is_refused_before_anything_is_read(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            ["search", "index", "--images", str(missing), "--out", str(missing), "--recall", "1.5"]
        )
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "tonics: usage error: tonics search: --recall must be a share in (0, 1], e.g. 0.95; got "
        "1.5 "
        "(`tonics search --help` for usage) (TONICS_DEBUG=1 for a traceback)\n"
    )
    assert not missing.exists()


def test_what_is_not_an_index_or_a_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a search index"):
        search.open(tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        search.build(tmp_path / "nowhere", tmp_path / "ix")
