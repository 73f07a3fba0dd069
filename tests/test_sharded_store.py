"""Sharded, memory-mapped cache store: whole images per part, every rank writes its own parts in
parallel, rank 0 the manifest, a killed build resumes, rows come back exactly, nothing unpickles."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tonics.cache import store as sharded_store
from tonics.cache.store import ShardedStore, load_or_build, partition

IMAGE_IDS = [f"img{i // 3}" for i in range(30)] + ["img0", "solo"]  # 11 images + a late caption


def _build(calls: list | None = None, fail_pairs=()):
    """A part's arrays: per-pair rows, ragged rows (pair p has p % 3 + 1), per-image rows."""

    def build(pairs, description):
        if calls is not None:
            calls.append(tuple(pairs))
        images = list(dict.fromkeys(IMAGE_IDS[p] for p in pairs))
        row = {image: i for i, image in enumerate(images)}
        pair_image = torch.tensor([-1 if p in fail_pairs else row[IMAGE_IDS[p]] for p in pairs])
        ragged = [torch.full((p % 3 + 1, 2), float(p)) for p in pairs]
        arrays = {
            "pair_image": pair_image,
            "text": torch.tensor([[float(p), -float(p)] for p in pairs], dtype=torch.float16),
            "image": torch.tensor([[float(int(i[3:]) if i != "solo" else 99)] for i in images]),
            "tokens": torch.cat(ragged),
            "tokens_offsets": torch.tensor([0] + [len(r) for r in ragged]).cumsum(0),
        }
        return arrays, {p: ("file.jpg", "bad") for p in pairs if p in fail_pairs}

    return build


def test_partition_keeps_images_whole_and_covers_every_pair_once():
    parts = partition(IMAGE_IDS, 4)
    assert sorted(p for part in parts for p in part) == list(range(len(IMAGE_IDS)))
    owner = {IMAGE_IDS[p]: i for i, part in enumerate(parts) for p in part}
    assert all(owner[IMAGE_IDS[p]] == i for i, part in enumerate(parts) for p in part)
    assert len(parts) == 4 and all(parts)
    assert partition(["a"] * 5 + ["b"], 4) == [[0, 1, 2, 3, 4], [5]]  # no empty part


def test_rows_come_back_exactly_in_the_order_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(sharded_store, "PART_PAIRS", 8)
    store = load_or_build(tmp_path / "c", "k", IMAGE_IDS, _build(fail_pairs={4}))
    assert len(store.parts) == 4 and store.num_pairs == len(IMAGE_IDS)
    order = torch.tensor([31, 4, 0, 30, 17, 17])
    assert store.per_pair("text", order)[:, 0].tolist() == [31, 4, 0, 30, 17, 17]
    assert store.dtype("text") == torch.float16
    assert [r[0, 0].item() for r in store.ragged("tokens", order)] == [31, 4, 0, 30, 17, 17]
    assert [len(r) for r in store.ragged("tokens", order)] == [2, 2, 1, 1, 3, 3]
    image, usable = store.images_of("image", order)
    assert usable.tolist() == [True, False, True, True, True, True]
    assert image[:, 0].tolist() == [99, 0, 0, 5, 5]  # pair 30's image is img0, built in part 0
    assert store.failures == {4: ("file.jpg", "bad")}
    assert isinstance(store.parts[0]["text"], np.memmap)  # mapped, not read


def test_two_ranks_write_their_parts_in_parallel_and_rank_zero_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(sharded_store, "PART_PAIRS", 100)  # so the part count is the world size
    barrier, calls, stores = threading.Barrier(2), {0: [], 1: []}, {}

    def rank(r):
        stores[r] = load_or_build(
            tmp_path / "c",
            "k",
            IMAGE_IDS,
            _build(calls[r]),
            rank=r,
            world_size=2,
            barrier=barrier.wait,
        )

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls[0]) == len(calls[1]) == 1  # each rank encoded one part, not the corpus
    assert not set(calls[0][0]) & set(calls[1][0])
    manifest = (tmp_path / "c" / "manifest.json").read_text()
    assert '"written_by_ranks": 2' in manifest
    every = torch.arange(len(IMAGE_IDS))
    assert torch.equal(stores[0].per_pair("text", every), stores[1].per_pair("text", every))


def test_a_killed_build_resumes_from_the_parts_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(sharded_store, "PART_PAIRS", 8)
    calls = []
    build = _build(calls)

    def dies_on_third_part(pairs, description):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed in the middle of the build
        return build(pairs, description)

    with pytest.raises(KeyboardInterrupt):
        load_or_build(tmp_path / "c", "k", IMAGE_IDS, dies_on_third_part)
    assert not (tmp_path / "c" / "manifest.json").exists()
    assert not list((tmp_path / "c").glob(".*partial"))
    done = list(calls)
    store = load_or_build(tmp_path / "c", "k", IMAGE_IDS, build)
    assert len(calls) - len(done) == 2  # only the two parts not yet written
    assert store.per_pair("text", torch.arange(32))[:, 0].tolist() == list(range(32))


def test_missing_parts_on_a_filesystem_not_shared_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(sharded_store, "PART_PAIRS", 100)
    # rank 0 of 2, and rank 1 (on another node) never writes here
    with pytest.raises(RuntimeError, match=r"part-00001-of-00002.*TONICS_CACHE.*share"):
        load_or_build(tmp_path / "c", "k", IMAGE_IDS, _build(), rank=0, world_size=2)


def test_damaged_or_planted_files_are_refused_and_rebuilt(tmp_path, caplog):
    load_or_build(tmp_path / "c", "k", IMAGE_IDS, _build())
    (tmp_path / "c" / "manifest.json").write_bytes(b"\x80\x04K\x01.")  # a pickle
    with pytest.raises(ValueError, match="manifest.json"):
        ShardedStore.open(tmp_path / "c", "k")
    store = load_or_build(tmp_path / "c", "k", IMAGE_IDS, _build())
    assert "manifest.json" in caplog.text and store.num_pairs == len(IMAGE_IDS)
    with pytest.raises(ValueError, match="another format or key"):
        ShardedStore.open(tmp_path / "c", "other-key")


def _lie(path, key, pairs, arrays, failures_json):
    """Rewrite a part with tampered arrays or failures, as a damaged or planted file would be."""
    from safetensors.torch import save_file

    tensors = {name: t.contiguous() for name, t in arrays.items()}
    tensors["pairs"] = torch.tensor(pairs, dtype=torch.int64)
    save_file(tensors, str(path), metadata={"key": key, "failures": failures_json})


@pytest.mark.parametrize(
    "lie",
    ["pair claimed far outside the cache", "image row far past the images", "failure not a pair"],
)
def test_a_part_that_lies_about_its_rows_is_refused_and_computed_again(tmp_path, caplog, lie):
    directory = tmp_path / "c"
    fresh = load_or_build(directory, "k", IMAGE_IDS, _build())
    expected = fresh.per_pair("text", torch.arange(len(IMAGE_IDS))).clone()
    part = directory / sharded_store.part_name(0, 1)
    order = partition(IMAGE_IDS, 1)[0]  # the part's pairs, whole images in order
    pairs = list(order)
    arrays, _ = _build()(pairs, "lie")
    failures = "{}"
    if lie == "pair claimed far outside the cache":
        pairs[0] = 10**9
    elif lie == "image row far past the images":
        arrays["pair_image"][0] = 10**6
    else:
        failures = '{"0": 5}'
    _lie(part, "k", pairs, arrays, failures)
    with pytest.raises(ValueError, match="is not a whole part of this cache"):
        ShardedStore.open(directory, "k", len(IMAGE_IDS))
    calls = []
    store = load_or_build(directory, "k", IMAGE_IDS, _build(calls))
    assert calls == [tuple(order)]  # the lying part was computed again
    assert "is not a whole part of this cache" in caplog.text
    assert torch.equal(store.per_pair("text", torch.arange(len(IMAGE_IDS))), expected)
    keys = store.image_keys(torch.arange(len(IMAGE_IDS)))
    assert store.per_image("image", keys[keys >= 0]).shape[0] == len(IMAGE_IDS)
