"""The random-access shard index: built once, read without opening shards, one seek + read per
image, skips kept, changed shards detected."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from tonics.cli import cli_main
from tonics.data.current_index import default_index_path
from tonics.data.images import load_image, read_bytes
from tonics.data.readers import DataFormatError, WebDatasetReader
from tonics.data.shard_index import load_index


def _jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _shards(directory, n_shards=3, per_shard=4):
    directory.mkdir(parents=True, exist_ok=True)
    for s in range(n_shards):
        with tarfile.open(directory / f"shard-{s:03d}.tar", "w") as tar:
            for i in range(per_shard):
                key = f"{s:03d}{i:04d}"
                _add(tar, f"{key}.jpg", _jpeg((40 * s, 20 * i, 0)))
                _add(tar, f"{key}.txt", f"a red square {key}".encode())
            _add(tar, f"{s:03d}9999.txt", b"an orphan caption")  # counted, not indexed
    return str(directory / "shard-*.tar")


def test_index_reads_each_image_with_one_seek_and_keeps_skips(tmp_path, monkeypatch):
    pattern = _shards(tmp_path / "data")
    first = WebDatasetReader(pattern)
    records = first.read()
    assert len(records) == 12 and first.skipped == {"tar key with a caption and no image": 3}
    for record in records:
        with tarfile.open(record.image.path) as tar:  # the bytes are the tar member's
            assert read_bytes(record.image) == tar.extractfile(record.image.tar_member).read()
        image, failure = load_image(record.image)
        assert failure is None and image.size == (8, 8)
    # a second start-up reads the index only: no shard is opened as a tar archive
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("a shard was walked"))
    again = WebDatasetReader(pattern)
    assert [(r.pair_id, r.caption, r.image) for r in again.read()] == [
        (r.pair_id, r.caption, r.image) for r in records
    ]
    assert again.skipped == first.skipped and again.skip_examples == first.skip_examples


def test_pair_ids_are_the_shard_and_key(tmp_path):
    records = WebDatasetReader(_shards(tmp_path / "data", n_shards=1, per_shard=2)).read()
    assert [r.pair_id for r in records] == ["shard-000/0000000", "shard-000/0000001"]


def test_a_changed_shard_rebuilds_the_cached_index(tmp_path):
    pattern = _shards(tmp_path / "data")
    assert len(WebDatasetReader(pattern).read()) == 12
    shard = tmp_path / "data" / "shard-001.tar"
    with tarfile.open(shard, "w") as tar:  # rewritten with one pair
        _add(tar, "x.jpg", _jpeg((0, 0, 255)))
        _add(tar, "x.txt", b"a blue square")
    records = WebDatasetReader(pattern).read()
    assert len(records) == 9 and "a blue square" in {r.caption for r in records}


def test_a_named_index_names_a_changed_or_missing_shard(tmp_path, capsys):
    pattern = _shards(tmp_path / "data")
    out = tmp_path / "cc.parquet"
    cli_main(["index", pattern, "--out", str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert summary["pairs"] == 12 and summary["shards"] == 3 and summary["skipped"] == 3
    index, manifest = load_index(out)
    assert len(index) == 12 and manifest["caption_extension"] == "txt"
    table = Path(summary["pair_table"])  # written with the index: start-up only maps it
    written = table.stat().st_mtime_ns
    assert len(WebDatasetReader(pattern, index=str(out)).read()) == 12
    assert table.stat().st_mtime_ns == written
    shard = tmp_path / "data" / "shard-002.tar"
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(DataFormatError, match=r"shard-002.tar changed since it was indexed"):
        WebDatasetReader(pattern, index=str(out)).read()
    shard.unlink()
    with pytest.raises(DataFormatError, match=r"shard-002.tar is missing.*tonics index"):
        WebDatasetReader(pattern, index=str(out)).read()


def test_default_index_lives_in_the_cache_keyed_by_shards(tmp_path):
    pattern = _shards(tmp_path / "data", n_shards=2)
    reader = WebDatasetReader(pattern)
    reader.read()
    shards = [p.resolve() for p in reader.shard_paths()]
    assert default_index_path(shards, "txt").is_file()
    assert default_index_path(shards[:1], "txt") != default_index_path(shards, "txt")


def _parquet_shards(directory, n_shards=2, per_shard=5):
    """img2dataset's parquet output: key, caption, status, jpg (null where the download failed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    images = {}
    for s in range(n_shards):
        rows = {"key": [], "caption": [], "status": [], "jpg": [], "url": []}
        for i in range(per_shard):
            key = f"{s:05d}{i:04d}"
            failed = i == 3
            images[key] = None if failed else _jpeg((50 * s, 40 * i, 9))
            rows["key"].append(key)
            rows["caption"].append(f"a blue square {key}")
            rows["status"].append("failed_to_download" if failed else "success")
            rows["jpg"].append(images[key])
            rows["url"].append(f"http://example.invalid/{key}.jpg")
        table = pa.table({**rows, "jpg": pa.array(rows["jpg"], pa.binary())})
        pq.write_table(table, directory / f"{s:05d}.parquet", row_group_size=2)
    return str(directory / "*.parquet"), images


def test_img2dataset_parquet_output_reads_through_the_same_index(tmp_path, monkeypatch):
    pattern, images = _parquet_shards(tmp_path / "data")
    out = tmp_path / "idx" / "cc.parquet"
    cli_main(["index", pattern, "--out", str(out)])
    reader = WebDatasetReader(pattern, index=str(out))
    records = reader.read()
    assert len(records) == 8 and reader.skipped == {
        "parquet row without image bytes (download failed)": 2
    }
    for record in records:  # one seek + read in the blob, the bytes img2dataset stored
        key = record.pair_id.split("/")[1]
        assert record.caption == f"a blue square {key}" and read_bytes(record.image) == images[key]
        assert record.image.path.startswith(str(out) + ".images")
    blob = next((tmp_path / "idx" / "cc.parquet.images").glob("*.bin"))
    blob.unlink()  # the copied images are part of the index: missing means re-index
    with pytest.raises(
        DataFormatError, match=r"\.bin \(the image bytes copied from .*\.parquet\) is missing"
    ):
        WebDatasetReader(pattern, index=str(out)).read()
    assert len(WebDatasetReader(pattern).read()) == 8  # the automatic index in the cache works too


def test_parallel_indexing_writes_the_same_index(tmp_path):
    from pathlib import Path

    from tonics.data.shard_index import build_index

    shards = sorted(
        Path(p) for p in __import__("glob").glob(_shards(tmp_path / "data", n_shards=4))
    )
    one, two = build_index(shards), build_index(shards, workers=2)
    assert len(one) == 16 and one == two  # entries, skips and manifest, in shard order
