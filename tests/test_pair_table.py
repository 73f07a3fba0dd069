"""Columnar, memory-mapped pairs: the pair table beside the shard index, the ontology's per-pair
arrays, memory-mapped `.npz` members, and the same draws as the per-record code they replace."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers import drawn_pair_ids_digest
from PIL import Image
from tonics.ontology.building import build_ontology, caption_objects_of
from tonics.ontology.index import ontology_for_records
from tonics.ontology.pair_objects import PairObjects

from tonics.data.pair_table import PairTable
from tonics.data.readers import WebDatasetReader
from tonics.data.readers.webdataset import table_path
from tonics.data.records import (
    group_codes,
    image_subset,
    pair_ids_of,
    select_split,
    sorted_by_image,
    splits_of,
)
from tonics.errors import InputError
from tonics.mapped_arrays import mapped_npz

DIGESTS = json.loads((Path(__file__).parent / "draw_digests.json").read_text())


def _jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _add(tar, name, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


CAPTIONS = ["A dog on grass.", "a dog on  grass", "a cat on a sofa", "a plate of pasta"]


def _corpus(directory: Path, shards: int = 3, per_shard: int = 5) -> str:
    """Shards whose keys are out of name order and whose captions repeat (after normalising)."""
    directory.mkdir(parents=True, exist_ok=True)
    for s in reversed(range(shards)):
        with tarfile.open(directory / f"part-{s:02d}.tar", "w") as tar:
            for i in reversed(range(per_shard)):
                key = f"sub/{s:02d}{i:03d}" if i % 2 else f"{s:02d}{i:03d}"
                _add(tar, f"{key}.jpg", _jpeg((30 * s, 40 * i, 9)))
                _add(tar, f"{key}.txt", CAPTIONS[(s + i) % len(CAPTIONS)].encode())
            _add(tar, f"{s:02d}999.txt", b"an orphan")
    return str(directory / "part-*.tar")


def _reference_codes(records):
    images, captions = {}, {}
    from tonics.data.records import normalise_caption

    return (
        [images.setdefault(r.image_id, len(images)) for r in records],
        [captions.setdefault(normalise_caption(r.caption), len(captions)) for r in records],
    )


def test_the_table_holds_the_records_and_answers_from_its_columns(tmp_path):
    reader = WebDatasetReader(_corpus(tmp_path / "data"), index=str(tmp_path / "index.parquet"))
    table = reader.read()
    assert isinstance(table, PairTable) and len(table) == 15
    assert reader.skipped == {"tar key with a caption and no image": 3}
    records = list(table)
    assert {r.pair_id for r in records} >= {"part-00/sub/00001", "part-02/02004"}
    for r in records:
        assert r.image_id == r.pair_id and r.image.tar_member.split(".")[0] in r.pair_id
    assert table[-1] == records[-1] and table[3] == records[3]
    with pytest.raises(IndexError):
        table[15]
    # codes, order, subsets and ids: exactly what the per-record functions give on a list
    images, captions = group_codes(table)
    assert (images.tolist(), captions.tolist()) == _reference_codes(records)
    assert list(sorted_by_image(table)) == sorted(records, key=lambda r: r.image_id)
    for fraction in (0.2, 0.5):
        subset = image_subset(table, fraction, seed=3)
        assert isinstance(subset, PairTable)
        assert list(subset) == image_subset(records, fraction, seed=3)
        codes = group_codes(subset)
        assert [c.tolist() for c in codes] == [list(c) for c in _reference_codes(list(subset))]
        assert list(sorted_by_image(subset)) == sorted(subset, key=lambda r: r.image_id)
    assert pair_ids_of(table) == [r.pair_id for r in records]
    assert table.captions[2:5] == [r.caption for r in records[2:5]]
    assert list(table[4:9]) == records[4:9] and list(table[::-4]) == records[::-4]
    assert select_split(table, "train") is table and splits_of(table) == ["train"]
    import pickle

    subset = image_subset(table, 0.5, seed=3)
    sent = pickle.dumps(subset)  # as to a spawned DataLoader worker: the path and rows only
    assert len(sent) < 2000 and list(pickle.loads(sent)) == list(subset)
    with pytest.raises(InputError, match="split 'val' is empty"):
        select_split(table, "val")


def test_the_table_is_written_once_and_again_when_the_index_changes(tmp_path):
    pattern = _corpus(tmp_path / "data")
    index = tmp_path / "index.parquet"
    first = WebDatasetReader(pattern, index=str(index)).read()
    path = table_path(index, "train")
    written = path.stat().st_mtime_ns
    again = WebDatasetReader(pattern, index=str(index)).read()
    assert path.stat().st_mtime_ns == written and again.content_digest() == first.content_digest()
    expected, digest = list(first), first.content_digest()
    del first, again  # mapped: the table is replaced atomically, never overwritten in place
    path.write_bytes(b"not an arrow file")  # damaged: written again, not a crash
    assert list(WebDatasetReader(pattern, index=str(index)).read()) == expected
    with tarfile.open(tmp_path / "data" / "part-03.tar", "w") as tar:  # a new shard
        _add(tar, "03000.jpg", _jpeg((1, 2, 3)))
        _add(tar, "03000.txt", b"a new dog")
    grown = WebDatasetReader(pattern).read()  # the automatic index sees the new shard
    assert len(grown) == 16 and grown.content_digest() != digest
    with pytest.raises(InputError, match="not a readable tonics pair table"):
        PairTable(tmp_path / "data" / "part-00.tar")


def test_a_table_of_another_format_version_is_written_again(tmp_path, monkeypatch):
    import tonics.data.pair_columns as pair_columns
    import tonics.data.pair_table as pair_table

    pattern = _corpus(tmp_path / "data")
    index = tmp_path / "index.parquet"
    monkeypatch.setattr(pair_columns, "TABLE_VERSION", 1)  # as an older tonics wrote it
    monkeypatch.setattr(pair_table, "TABLE_VERSION", 1)  # (and read it)
    old = WebDatasetReader(pattern, index=str(index)).read()
    assert old.meta["version"] == 1
    monkeypatch.undo()
    with pytest.raises(InputError, match="format 1, this tonics reads"):
        PairTable(table_path(index, "train"))
    again = WebDatasetReader(pattern, index=str(index)).read()
    assert again.meta["version"] == pair_table.TABLE_VERSION and list(again) == list(old)


def test_the_ontology_of_a_table_is_keyed_by_its_content_and_equals_the_per_record_one(tmp_path):
    table = WebDatasetReader(_corpus(tmp_path / "data")).read()
    records = list(table)
    columnar = ontology_for_records(table, cache=tmp_path / "a")
    listed = ontology_for_records(records, cache=tmp_path / "b")
    assert columnar.pair_objects == listed.pair_objects
    assert columnar.pair_ids == listed.pair_ids
    for node in listed.graph:
        assert columnar.subtree_pairs(node).tolist() == listed.subtree_pairs(node).tolist()
    cached = ontology_for_records(table, cache=tmp_path / "a")  # loaded: ids are the table's
    assert cached.pair_ids is not None and list(cached.pair_ids) == [r.pair_id for r in records]
    assert len(list((tmp_path / "a").glob("*.npz"))) == 1


def test_caption_novelty_of_a_table_equals_the_per_record_answer(tmp_path):
    from tonics.eval.within_object import caption_annotations

    table = WebDatasetReader(_corpus(tmp_path / "data")).read()
    train, held_out = image_subset(table, 0.4, seed=1), list(table)[:6]
    held_out = [
        *held_out[:4],
        type(held_out[0])("new", held_out[0].image, "A brand new caption!", "new"),
        *held_out[4:],
    ]
    columnar = caption_annotations(held_out, train, cache=tmp_path / "a")
    listed = caption_annotations(held_out, list(train), cache=tmp_path / "b")
    assert columnar == listed and True in listed[1] and False in listed[1]


def test_pair_objects_pack_tuples_and_answer_without_a_loop():
    tuples = [("dog.n.01", "cat.n.01"), (), ("cat.n.01",), ("pasta.n.01", "dog.n.01", "dog.n.01")]
    packed = PairObjects.from_tuples(tuples)
    assert packed == tuples and list(packed) == tuples and packed[-1] == tuples[-1]
    assert packed[1:3] == tuples[1:3] and packed != tuples[:3] and packed != [("x",)] * 4
    assert packed.counts().tolist() == [2, 0, 1, 3]
    assert [packed.names[i] if i >= 0 else None for i in packed.first()] == [
        "dog.n.01",
        None,
        "cat.n.01",
        "pasta.n.01",
    ]
    assert packed.node_counts() == {"cat.n.01": 2, "dog.n.01": 3, "pasta.n.01": 1}
    names = ["pasta.n.01", "dog.n.01", "cat.n.01", "unused.n.01"]
    assert [names[j] for j in packed.renumbered(names)] == [o for t in tuples for o in t]
    with pytest.raises(IndexError):
        packed[4]
    with pytest.raises(ValueError, match="indptr"):
        PairObjects(["a"], np.zeros(2, np.int32), np.array([0, 1]))
    many = [(f"n{i % 7}",) * (i % 3) for i in range(70_000)]  # iteration crosses blocks
    assert list(PairObjects.from_tuples(many)) == many


def test_streamed_extraction_equals_one_pass():
    from tonics.ontology.extract import NounExtractor

    captions = ["a dog and a cat", "a dog and a cat", "", "a plate of pasta", "a dog", None] * 3
    extractor = NounExtractor()
    whole = caption_objects_of(captions, extractor)
    streamed = caption_objects_of(captions, extractor, chunk=4, memo_size=2)
    assert list(streamed) == list(whole) == [tuple(extractor.extract(c)) for c in captions]
    ontology = build_ontology(captions, [str(i) for i in range(len(captions))])
    assert list(ontology.pair_objects) == list(whole)


def test_mapped_npz_members_equal_the_saved_arrays(tmp_path):
    big = np.arange(300_000, dtype=np.int32)
    matrix = np.random.default_rng(0).random((200, 100))
    np.savez(tmp_path / "a.npz", big=big, matrix=matrix, small=np.arange(3))
    arrays = mapped_npz(tmp_path / "a.npz")
    assert isinstance(arrays["big"], np.memmap) and isinstance(arrays["matrix"], np.memmap)
    assert (arrays["big"] == big).all() and (arrays["matrix"] == matrix).all()
    assert arrays["small"].tolist() == [0, 1, 2]
    np.savez_compressed(tmp_path / "c.npz", big=big)  # compressed: read, not mapped
    assert (mapped_npz(tmp_path / "c.npz")["big"] == big).all()


@pytest.mark.slow
def test_the_same_seed_draws_the_same_pairs_as_before_at_30k(tmp_path, monkeypatch):
    """The list-of-records code drew these pairs (digest recorded before the columnar table);
    the same corpus through the index and the pair table must draw exactly the same."""
    benchmarks = Path(__file__).parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))  # as when the script runs: its shared module
    monkeypatch.setenv("TONICS_BENCHMARK_RESULTS", str(tmp_path / "results"))
    spec = importlib.util.spec_from_file_location("scale", benchmarks / "scale.py")
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    corpus = tmp_path / "corpus"
    scale.write_corpus(corpus, 30_000)
    scale.phase_index(corpus)
    table = WebDatasetReader(str(corpus / "*.tar"), index=str(corpus / "index.parquet")).read()
    assert len(table) == 30_000
    digest = drawn_pair_ids_digest(table, tmp_path / "ontology", batch_size=256)
    assert digest == DIGESTS["synthetic_30k_batch256"]
