"""A damaged search index (garbage or truncated files, a FIFO in place of a file, a manifest that
lies, rows that do not match) gives exactly one line naming the damaged file and the command that
rebuilds it, exit code 2, within seconds; an update over a damaged index rebuilds it; `-k` is
range-checked before anything is read."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from test_search import _photos, exported  # noqa: F401 - the exported-model fixture

import tonics.search as search
from tonics.cli import cli_main

REBUILD = (
    "the search index is damaged: rebuild it with `tonics search index --images FOLDER --out {ix}`"
)


@pytest.fixture(scope="module")
def pristine(exported, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("damaged")
    photos = _photos(root / "photos", n=8)
    search.build(photos, root / "ix", model=str(exported), kind="hnsw")
    return root


@pytest.fixture()
def index(pristine, tmp_path):
    shutil.copytree(pristine / "ix", tmp_path / "ix")
    return tmp_path / "ix"


def _query_error(capsys, monkeypatch, argv) -> str:
    monkeypatch.delenv("TONICS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def _expected(ix: Path, name: str, why: str) -> str:
    line = f"{ix / name}: {why}; " + REBUILD.format(ix=ix)
    return f"tonics: input error: {line} (TONICS_DEBUG=1 for a traceback)\n"


def _damage(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"\x89\xff not what this file should hold \x00" * 8)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: max(8, path.stat().st_size // 3)])
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)


CASES = [
    ("table.parquet", "garbage", "unreadable (ArrowInvalid)"),
    ("table.parquet", "truncated", "unreadable (ArrowInvalid)"),
    ("table.parquet", "fifo", "not a regular file"),
    ("embeddings.safetensors", "garbage", "unreadable (SafetensorError)"),
    ("embeddings.safetensors", "truncated", "unreadable (SafetensorError)"),
    ("embeddings.safetensors", "fifo", "not a regular file"),
    ("manifest.json", "garbage", "unreadable (UnicodeDecodeError)"),
    ("manifest.json", "fifo", "not a regular file"),
    ("index.faiss", "garbage", "unreadable (RuntimeError)"),
    ("index.faiss", "fifo", "not a regular file"),
]


@pytest.mark.parametrize(("name", "how", "why"), CASES)
def test_a_damaged_file_is_one_line_naming_it_and_the_rebuild(
    index, capsys, monkeypatch, name, how, why
):
    _damage(index / name, how)
    finished = threading.Event()
    if how == "fifo":  # a FIFO must be refused without being opened: fail, do not hang
        threading.Timer(20, lambda: finished.is_set() or os._exit(3)).start()
    err = _query_error(capsys, monkeypatch, ["search", "query", str(index), "--image", "x.png"])
    finished.set()
    assert err == _expected(index, name, why)


def test_a_manifest_that_lies_and_rows_that_do_not_match(index, capsys, monkeypatch):
    manifest = json.loads((index / "manifest.json").read_text())
    (index / "manifest.json").write_text(json.dumps({**manifest, "index": "cube"}))
    err = _query_error(capsys, monkeypatch, ["search", "query", str(index), "--image", "x.png"])
    assert err == _expected(index, "manifest.json", "its 'root' or 'index' field is invalid")
    tuning = {**manifest["tuning"], "ef_search": -3}  # a search parameter that lies
    (index / "manifest.json").write_text(json.dumps({**manifest, "tuning": tuning}))
    err = _query_error(capsys, monkeypatch, ["search", "query", str(index), "--image", "x.png"])
    why = "its 'tuning' field is invalid: ef_search must be a positive integer; got -3"
    assert err == _expected(index, "manifest.json", why)
    (index / "manifest.json").write_text(json.dumps(manifest))
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(index / "table.parquet").to_pylist()
    table[0]["row"] = len(table) + 5  # a row past the embeddings
    pq.write_table(pa.Table.from_pylist(table), index / "table.parquet")
    err = _query_error(capsys, monkeypatch, ["search", "query", str(index), "--image", "x.png"])
    assert err.startswith(f"tonics: input error: {index / 'table.parquet'}: its rows do not match")
    assert err.count("\n") == 1 and REBUILD.format(ix=index) in err


@pytest.mark.parametrize("k", ["-5", "0", "100001"])
def test_k_is_range_checked_before_the_index_is_read(capsys, monkeypatch, tmp_path, k):
    missing = tmp_path / "no-such-index"  # never read: the argument is refused first
    err = _query_error(capsys, monkeypatch, ["search", "query", str(missing), "words", "-k", k])
    assert err == (
        f"tonics: usage error: tonics search: -k must be between 1 and 10000; got {k} "
        "(`tonics search --help` for usage) (TONICS_DEBUG=1 for a traceback)\n"
    )


def test_updating_a_damaged_index_rebuilds_it(index, pristine, capsys, caplog, exported):  # noqa: F811
    _damage(index / "embeddings.safetensors", "garbage")
    photos = pristine / "photos"
    with caplog.at_level("WARNING", logger="tonics.search.indexing"):
        report = search.build(photos, index, model=str(exported), kind="hnsw")
    assert report["encoded"] == 8 and report["reused"] == 0
    assert "encoding every image again" in caplog.text and "embeddings.safetensors" in caplog.text
    hits = search.open(index).image("sub/red-0.png", 3)
    assert hits[0].path == "sub/red-0.png"


def test_a_fifo_query_picture_is_refused_without_being_opened(index, capsys, monkeypatch, tmp_path):
    from tonics.data.images import load_image
    from tonics.data.records import ImageRef

    fifo = tmp_path / "query.png"
    os.mkfifo(fifo)
    finished = threading.Event()
    threading.Timer(20, lambda: finished.is_set() or os._exit(3)).start()  # fail, do not hang
    assert load_image(ImageRef(path=str(fifo))) == (
        None,
        "not a regular file (a FIFO, device or directory)",
    )
    err = _query_error(capsys, monkeypatch, ["search", "query", str(index), "--image", str(fifo)])
    finished.set()
    assert err == (
        "tonics: input error: the query image cannot be used: not a regular file (a FIFO, "
        "device or directory) (TONICS_DEBUG=1 for a traceback)\n"
    )


def test_links_and_fifos_left_out_of_an_index_are_counted(exported, tmp_path):  # noqa: F811
    photos = _photos(tmp_path / "photos", n=4)
    outside = tmp_path / "outside.png"
    shutil.copy(photos / "sub" / "red-0.png", outside)
    (photos / "out.png").symlink_to(outside)
    (photos / "nowhere.png").symlink_to(photos / "absent.png")
    (photos / "inside.png").symlink_to(photos / "sub" / "red-0.png")  # kept: it stays inside
    os.mkfifo(photos / "pipe.jpg")
    report = search.build(photos, tmp_path / "ix", model=str(exported))
    assert report["images"] == 5
    assert report["left_out"] == {
        "link out of the folder": 1,
        "link to nothing or unreadable": 1,
        "not a regular file (FIFO, device or directory)": 1,
    }
