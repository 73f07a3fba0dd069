"""Every reader returns one memory-mapped Arrow pair table: the same pairs a per-record reading
gives (ids, captions, image ids, splits, labels, images), kept in the cache and written again only
when a source file changes, with its skip counts given back; no reader module builds a record or a
list of them."""

from __future__ import annotations

import ast
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tonics.data.images import load_image, read_bytes
from tonics.data.pair_table import PairTable
from tonics.data.readers import (
    CocoCaptionsReader,
    ConceptualCaptionsTsvReader,
    CsvReader,
    HFDatasetReader,
    KarpathyReader,
)
from tonics.data.records import group_codes, select_split, sorted_by_image, splits_of

READERS = Path(__file__).resolve().parent.parent / "tonics" / "data" / "readers"


def _jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _coco(tmp_path: Path) -> CocoCaptionsReader:
    for name, colour in (("a.jpg", (200, 0, 0)), ("b.jpg", (0, 200, 0))):
        (tmp_path / name).write_bytes(_jpeg(colour))
    captions = {
        "images": [{"id": 2, "file_name": "b.jpg"}, {"id": 1, "file_name": "a.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 2, "caption": "a cat"},
            {"id": 11, "image_id": 1, "caption": "A dog"},
            {"id": 12, "image_id": 2, "caption": "the cat sleeps"},
            {"id": 13, "image_id": 1, "caption": " "},
        ],
    }
    instances = {
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [{"image_id": 2, "category_id": 1}, {"image_id": 1, "category_id": 2}],
    }
    (tmp_path / "captions_val2017.json").write_text(json.dumps(captions))
    (tmp_path / "instances_val2017.json").write_text(json.dumps(instances))
    return _coco_reader_of(tmp_path)


def test_coco_reads_as_a_table_with_image_ids_splits_and_labels(tmp_path):
    reader = _coco(tmp_path)
    table = reader.read()
    assert isinstance(table, PairTable)
    assert [(r.pair_id, r.caption, r.image_id, r.split, r.objects) for r in table] == [
        ("coco-10", "a cat", "2", "val", ("cat",)),
        ("coco-11", "A dog", "1", "val", ("dog",)),
        ("coco-12", "the cat sleeps", "2", "val", ("cat",)),
    ]
    assert [load_image(r.image)[1] for r in table] == [None] * 3
    assert reader.skipped == {"empty caption": 1}
    images, captions = group_codes(table)
    assert list(images) == [0, 1, 0] and list(captions) == [0, 1, 2]
    assert [r.pair_id for r in sorted_by_image(table)] == ["coco-11", "coco-10", "coco-12"]
    assert splits_of(table) == ["val"]
    with pytest.raises(Exception, match=r"split 'train' is empty; the data has splits \['val'\]"):
        select_split(table, "train")


def test_a_table_is_kept_and_written_again_only_when_a_source_changes(tmp_path, monkeypatch):
    reader = _coco(tmp_path)
    first = reader.read()
    fills = []
    monkeypatch.setattr(CocoCaptionsReader, "fill", lambda self, columns: fills.append(columns))
    again = _coco_reader_of(tmp_path)
    table = again.read()
    assert fills == [] and table.path == first.path  # kept: nothing read again
    assert again.skipped == {"empty caption": 1}  # its skips given back
    monkeypatch.undo()
    source = tmp_path / "instances_val2017.json"
    os.utime(source, ns=(source.stat().st_mtime_ns + 10**9,) * 2)  # the plant: a changed file
    monkeypatch.setattr(CocoCaptionsReader, "fill", lambda self, columns: fills.append(columns))
    assert len(_coco_reader_of(tmp_path).read()) == 0  # the stub, called this time, adds none
    assert len(fills) == 1


def _coco_reader_of(tmp_path: Path) -> CocoCaptionsReader:
    return CocoCaptionsReader(
        str(tmp_path / "captions_val2017.json"),
        str(tmp_path),
        str(tmp_path / "instances_val2017.json"),
    )


def test_karpathy_and_csv_and_cc_tables(tmp_path):
    (tmp_path / "0.jpg").write_bytes(_jpeg((1, 2, 3)))
    split_file = {
        "images": [
            {"filename": "0.jpg", "split": "test", "cocoid": 7, "objects": ["dog"],
             "sentences": [{"raw": "a dog", "sentid": 1}, {"raw": "dog!", "sentid": 2}]},
        ]
    }  # fmt: skip
    (tmp_path / "k.json").write_text(json.dumps(split_file))
    karpathy = KarpathyReader(str(tmp_path / "k.json"), str(tmp_path)).read()
    assert [(r.pair_id, r.image_id, r.split, r.objects) for r in karpathy] == [
        ("1", "7", "test", ("dog",)),
        ("2", "7", "test", ("dog",)),
    ]
    (tmp_path / "p.csv").write_text("filepath,title\n0.jpg,a thing\n0.jpg,the thing\n")
    csv = CsvReader(str(tmp_path / "p.csv"), str(tmp_path)).read()
    assert isinstance(csv, PairTable) and [r.image_id for r in csv] == ["0.jpg", "0.jpg"]
    assert read_bytes(csv[1].image) == (tmp_path / "0.jpg").read_bytes()
    (tmp_path / "cc.tsv").write_text("a red ball\thttp://x/1.jpg\nshort\n")
    cc = ConceptualCaptionsTsvReader(str(tmp_path / "cc.tsv"), str(tmp_path)).read()
    assert [(r.pair_id, r.caption, r.image_id) for r in cc] == [("cc-0", "a red ball", "cc-0")]


def test_hf_image_bytes_go_to_a_blob_beside_the_table(tmp_path):
    datasets = pytest.importorskip("datasets")
    pictures = [_jpeg((250, 0, 0)), _jpeg((0, 0, 250))]
    rows = {"img": [{"bytes": b, "path": None} for b in pictures], "text": ["red", "blue"]}
    data = datasets.Dataset.from_dict(rows).cast_column("img", datasets.Image())
    data.to_parquet(str(tmp_path / "part-0.parquet"))
    table = HFDatasetReader(str(tmp_path / "*.parquet"), format="parquet", image_column="img")
    table = table.read()
    assert isinstance(table, PairTable)
    assert [read_bytes(r.image) for r in table] == pictures
    assert all(r.image.path.endswith(".images.bin") for r in table)


def _offences(source: str, name: str) -> list[str]:
    """`PairRecord(...)` calls and names `records` in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PairRecord":
            found.append(f"{name}:{node.lineno} PairRecord(")
        if isinstance(node, ast.Name) and node.id == "records":
            found.append(f"{name}:{node.lineno} records")
    return found


def test_no_reader_module_builds_records_or_lists_of_pairs():
    """A reader adds rows to the table's columns; a `PairRecord(...)` or a `records` list in
    tonics/data/readers would bring the per-pair objects back."""
    found = [o for p in sorted(READERS.glob("*.py")) for o in _offences(p.read_text(), p.name)]
    assert found == []
    planted = "records = []\nrecords.append(PairRecord('1', image, 'a cat', '1'))\n"
    assert _offences(planted, "plant.py") == [
        "plant.py:1 records",
        "plant.py:2 PairRecord(",
        "plant.py:2 records",
    ]


def test_every_reader_reads_through_the_table_writer():
    """Only the webdataset reader has a `read` of its own (its table lies beside the shard
    index); every other reader fills the table's columns and reads through `PairReader.read`."""
    import tonics.data.readers as readers
    from tonics.data.readers.base import PairReader

    classes = [getattr(readers, n) for n in readers.__all__ if n.endswith("Reader")]
    classes = [c for c in classes if c is not PairReader]
    assert sorted(c.__name__ for c in classes if c.read is not PairReader.read) == [
        "WebDatasetReader"
    ]
    assert [c.__name__ for c in classes if c.fill is PairReader.fill] == ["WebDatasetReader"]


def test_a_changed_reader_writes_its_tables_again(tmp_path, monkeypatch):
    """The table's key holds a hash of the reader's code: a new tonics whose reader reads the
    files differently does not reuse a table the old one wrote."""
    import tonics.data.readers.base as base

    first = _coco(tmp_path).read()
    monkeypatch.setattr(base, "_reader_code_digest", lambda reader: "another reader")
    again = _coco_reader_of(tmp_path).read()
    assert again.path != first.path and list(again) == list(first)
    assert base.PairReader._table_source(_coco_reader_of(tmp_path))[0]["code"] == "another reader"


def test_chunks_without_labels_or_files_join_chunks_with_them(tmp_path, monkeypatch):
    """Rows become Arrow chunks of fixed types: a chunk whose pairs have no labels (or whose
    images are all bytes) joins a chunk whose pairs have them."""
    import tonics.data.pair_columns as pair_columns

    monkeypatch.setattr(pair_columns, "CHUNK", 1)  # every row its own chunk
    (tmp_path / "0.jpg").write_bytes(_jpeg((1, 2, 3)))
    images = [
        {"filename": "0.jpg", "split": "train", "cocoid": 1, "sentences": [{"raw": "a"}]},
        {"filename": "0.jpg", "split": "val", "cocoid": 2, "objects": ["dog"],
         "sentences": [{"raw": "a dog"}]},
    ]  # fmt: skip
    (tmp_path / "k.json").write_text(json.dumps({"images": images}))
    table = KarpathyReader(str(tmp_path / "k.json"), str(tmp_path)).read()
    assert [(r.split, r.objects) for r in table] == [("train", ()), ("val", ("dog",))]
