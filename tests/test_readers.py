"""Readers on small fixtures written in each real format, malformed files included."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from PIL import Image

from tonics.data.images import load_image
from tonics.data.readers import (
    CocoCaptionsReader,
    ConceptualCaptionsTsvReader,
    DataFormatError,
    HFDatasetReader,
    KarpathyReader,
    WebDatasetReader,
)


def _jpeg(colour=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_coco_captions_with_instances(tmp_path):
    captions = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": " A dog  on grass "},
            {"id": 11, "image_id": 2, "caption": "a cat"},
            {"id": 12, "image_id": 99, "caption": "orphan"},
            {"id": 13, "image_id": 2, "caption": "   "},
        ],
    }
    instances = {
        "categories": [{"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 18},
            {"id": 2, "image_id": 2, "category_id": 17},
        ],
    }
    (tmp_path / "captions_val2017.json").write_text(json.dumps(captions))
    (tmp_path / "instances_val2017.json").write_text(json.dumps(instances))
    reader = CocoCaptionsReader(
        str(tmp_path / "captions_val2017.json"),
        str(tmp_path),
        str(tmp_path / "instances_val2017.json"),
    )
    records = reader.read()
    assert [(r.caption, r.split, r.objects, r.image_id) for r in records] == [
        ("A dog on grass", "val", ("dog",), "1"),
        ("a cat", "val", ("cat",), "2"),
    ]
    assert records[0].image.path.endswith("a.jpg")
    assert reader.skipped == {"caption with an image_id not in 'images'": 1, "empty caption": 1}


def test_coco_missing_annotations_is_a_clear_error(tmp_path):
    path = tmp_path / "captions_train2014.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(
        DataFormatError, match=r"captions_train2014.json: missing the 'annotations' field"
    ):
        CocoCaptionsReader(str(path), str(tmp_path)).read()


def test_coco_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "captions_val2017.json"
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid UTF-8 JSON"):
        CocoCaptionsReader(str(path), str(tmp_path)).read()


def test_karpathy_splits_and_restval(tmp_path):
    data = {
        "images": [
            {
                "filepath": "val2014",
                "filename": "x.jpg",
                "split": "test",
                "cocoid": 5,
                "sentences": [{"raw": "a bus", "sentid": 1}, {"raw": "a red bus", "sentid": 2}],
            },
            {
                "filepath": "train2014",
                "filename": "y.jpg",
                "split": "restval",
                "cocoid": 6,
                "sentences": [{"raw": "a dog"}],
            },
            {"filename": "z.jpg", "split": "train", "imgid": 7, "sentences": []},
        ]
    }
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(data))
    reader = KarpathyReader(str(path), "/coco")
    records = reader.read()
    assert [(r.split, r.image_id, r.caption) for r in records] == [
        ("test", "5", "a bus"),
        ("test", "5", "a red bus"),
        ("train", "6", "a dog"),
    ]
    assert records[0].image.path == "/coco/val2014/x.jpg"
    assert reader.skipped == {"image without sentences": 1}
    assert KarpathyReader(str(path), "/coco", merge_restval=False).read()[2].split == "restval"


@pytest.mark.parametrize("order", ["caption_url", "url_caption"])
def test_conceptual_tsv_detects_column_order_and_skips_short_rows(tmp_path, order):
    rows = [
        ("a dog on a beach", "http://x/1.jpg"),
        ("a red car", "http://x/2.jpg"),
        ("short",),
        ("a cat", "http://x/3.jpg"),
    ]
    lines = ["\t".join(r if order == "caption_url" or len(r) == 1 else r[::-1]) for r in rows]
    (tmp_path / "cc.tsv").write_text("\n".join(lines) + "\n")
    reader = ConceptualCaptionsTsvReader(str(tmp_path / "cc.tsv"), str(tmp_path))
    records = reader.read()
    assert [r.caption for r in records] == ["a dog on a beach", "a red car", "a cat"]
    assert records[0].image.path.endswith("00000/000000000.jpg")
    assert records[2].image.path.endswith("00000/000000003.jpg")
    assert reader.skipped == {"TSV row with fewer than 2 columns": 1}


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_webdataset_shards_pair_members_and_count_orphans(tmp_path):
    with tarfile.open(tmp_path / "shard-000.tar", "w") as tar:
        _add(tar, "0000.jpg", _jpeg())
        _add(tar, "0000.txt", b"a red square")
        _add(tar, "0000.json", b"{}")
        _add(tar, "0001.txt", b"caption without image")
        _add(tar, "0002.jpg", _jpeg())
    reader = WebDatasetReader(str(tmp_path / "shard-*.tar"))
    records = reader.read()
    assert [r.caption for r in records] == ["a red square"]
    image, failure = load_image(records[0].image)
    assert failure is None and image.size == (8, 8)
    assert reader.skipped == {
        "tar key with a caption and no image": 1,
        "tar key with an image and no caption": 1,
    }


def test_webdataset_no_shards_is_an_error(tmp_path):
    with pytest.raises(DataFormatError, match="no webdataset shards"):
        WebDatasetReader(str(tmp_path / "*.tar")).read()


def test_hf_imagefolder_with_metadata(tmp_path):
    (tmp_path / "train").mkdir()
    for i in range(3):
        (tmp_path / "train" / f"{i}.jpg").write_bytes(_jpeg((i * 80, 0, 0)))
    (tmp_path / "train" / "metadata.jsonl").write_text(
        "\n".join(
            json.dumps({"file_name": f"{i}.jpg", "text": t})
            for i, t in enumerate(["a dog", "a cat", ""])
        )
    )
    reader = HFDatasetReader(str(tmp_path))
    records = reader.read()
    assert sorted(r.caption for r in records) == ["a cat", "a dog"]
    assert all(load_image(r.image)[1] is None for r in records)
    assert reader.skipped == {"empty caption": 1}
    with pytest.raises(DataFormatError, match="no column 'caption'"):
        HFDatasetReader(str(tmp_path), text_column="caption").read()


def test_hf_parquet_with_named_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_dict(
        {"img": [{"bytes": _jpeg(), "path": None}], "sentence": ["a bird"]}
    )
    table = table.cast_column("img", datasets.Image())
    table.to_parquet(str(tmp_path / "part-0.parquet"))
    records = HFDatasetReader(
        str(tmp_path / "*.parquet"), format="parquet", image_column="img", text_column="sentence"
    ).read()
    assert [r.caption for r in records] == ["a bird"] and load_image(records[0].image)[1] is None


def test_truncated_webdataset_shard_is_counted_and_named(tmp_path):
    with tarfile.open(tmp_path / "shard-000.tar", "w") as tar:
        for i in range(12):
            _add(tar, f"{i:04d}.jpg", _jpeg((i * 20, 0, 0)) + bytes(600))
            _add(tar, f"{i:04d}.txt", f"a red square number {i}".encode())
    data = (tmp_path / "shard-000.tar").read_bytes()
    complete = WebDatasetReader(str(tmp_path / "shard-*.tar"))
    assert len(complete.read()) == 12 and not complete.skipped
    for cut in (len(data) // 2, len(data) // 2 + 300, len(data) - 11000):
        directory = tmp_path / f"cut{cut}"  # (open shards are cached by path: a new path each)
        directory.mkdir()
        (directory / "shard-000.tar").write_bytes(data[:cut])
        reader = WebDatasetReader(str(directory / "shard-*.tar"))
        records = reader.read()
        assert 0 < len(records) < 12
        assert (
            reader.skipped["truncated or corrupt shard (members after this point unreadable)"] == 1
        )
        assert any("shard-000.tar" in example for example in reader.skip_examples)
        assert all(load_image(r.image)[1] is None for r in records)  # what is kept is whole


def test_hf_imagefolder_bad_metadata_lines_are_counted_not_fatal(tmp_path):
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(_jpeg((i * 60, 0, 0)))
    lines = [
        json.dumps({"file_name": "0.jpg", "text": "a dog"}).encode(),
        b"{not json",
        json.dumps({"file_name": "1.jpg", "text": "caf\u00e9 cat"}).encode("utf-8"),
        '{"file_name": "2.jpg", "text": "na\u00efve latin-1"}'.encode("latin-1"),
        json.dumps({"text": "no file"}).encode(),
        b"",
        json.dumps({"file_name": "3.jpg", "text": "a bird"}).encode(),
    ]
    (tmp_path / "metadata.jsonl").write_bytes(b"\n".join(lines))
    reader = HFDatasetReader(str(tmp_path))
    records = reader.read()
    assert [r.caption for r in records] == ["a dog", "café cat", "a bird"]
    assert all(r.split == "train" and load_image(r.image)[1] is None for r in records)
    assert reader.skipped == {
        "metadata line not JSON": 1,
        "metadata line not UTF-8": 1,
        "metadata line without a file_name": 1,
    }
    assert any(e.startswith(f"{tmp_path / 'metadata.jsonl'}:2") for e in reader.skip_examples)


def test_csv_reader_with_open_clip_columns(tmp_path):
    from tonics.data.readers import CsvReader

    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(_jpeg((i * 80, 0, 0)))
    (tmp_path / "train.csv").write_text(
        "filepath,title,split\n"
        "0.jpg,a red square,train\n"
        '0.jpg,"a square, red",train\n'  # a second caption of the same image, quoted comma
        "1.jpg,,train\n"  # empty caption
        ",orphan caption,train\n"  # no image
        "2.jpg,a dark square,validation\n"
        "1.jpg,too,many,fields\n"
    )
    reader = CsvReader(str(tmp_path / "train.csv"), str(tmp_path), split_column="split")
    records = reader.read()
    assert [(r.caption, r.split) for r in records] == [
        ("a red square", "train"),
        ("a square, red", "train"),
        ("a dark square", "val"),
    ]
    assert records[0].image_id == records[1].image_id == "0.jpg"
    assert all(load_image(r.image)[1] is None for r in records)
    assert reader.skipped == {
        "empty caption": 1,
        "row without an image path": 1,
        "row with more fields than the header": 1,
    }
    assert any(e.startswith(f"{tmp_path / 'train.csv'}:4") for e in reader.skip_examples)
    (tmp_path / "pairs.tsv").write_text("img\tcap\n0.jpg\ta red square\n")
    tsv = CsvReader(
        str(tmp_path / "pairs.tsv"), str(tmp_path), image_column="img", caption_column="cap"
    )
    assert [r.caption for r in tsv.read()] == ["a red square"]
    with pytest.raises(DataFormatError, match="no column 'title'.*csv-caption-key"):
        CsvReader(str(tmp_path / "pairs.tsv"), str(tmp_path), image_column="img").read()
