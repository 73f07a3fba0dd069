"""Frozen-stage feature cache: same loss as the live path; invalidated when a stage unfreezes."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from dataclasses import replace

import torch
from helpers import tiny_config

from tonics.cache.features import cache_key, load_or_compute
from tonics.cli import cli_main
from tonics.data.readers import KarpathyReader
from tonics.model.factory import ModelSpec
from tonics.paths import cache_dir
from tonics.sampling import Stage
from tonics.train.datamodule import TonicsDataModule
from tonics.train.module import AlignmentModule
from tonics.train.settings import CacheSettings, LoaderSettings, SubsetSettings

STAGES = [
    Stage(name="frozen", mix={"ontology": 1.0}, steps=3, nodes={"granularity": "fine"}),
    Stage(name="open", mix={"random": 1.0}, opening={"vision": 1}),
]


def _setup(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    torch.manual_seed(0)
    dm = TonicsDataModule(
        KarpathyReader(split_file, root),
        loader=LoaderSettings(batch_size=8),
        cache=CacheSettings(enabled=True),
        stages=STAGES,
        text_encoder="tiny:bert",
        vision_encoder="tiny:vit",
        ontology_cache=str(tmp_path),
    )
    dm.setup("fit")
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    return dm, module


def test_cached_and_live_losses_match_on_the_same_batch(tiny_dataset, tmp_path):
    dm, module = _setup(tiny_dataset, tmp_path)
    module.feature_cache = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    loader = dm.train_dataloader()
    cached_batch = next(iter(loader))
    assert cached_batch["cached"] and cached_batch["pixel_values"] is None
    indices = cached_batch["indices"].tolist()
    live_batch = loader.collate_fn([loader.dataset[i] for i in indices])
    assert not live_batch["cached"] and live_batch["pixel_values"] is not None
    module.train()
    cached_loss = module.training_step(cached_batch, 0)
    live_loss = module.training_step(live_batch, 0)
    assert torch.allclose(cached_loss, live_loss, atol=1e-5)


def _all(cache):
    return cache.lookup(torch.arange(cache.store.num_pairs))


def test_second_run_loads_the_cache_from_disk(tiny_dataset, tmp_path, caplog):
    dm, module = _setup(tiny_dataset, tmp_path)
    first = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    with caplog.at_level(logging.INFO, logger="tonics.cache.store"):
        again = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    assert "loaded" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(_all(first), _all(again)))
    module.model.vision_head.weight.data.add_(1.0)  # heads are not part of the key
    assert torch.equal(
        _all(load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype))[1],
        _all(first)[1],
    )


def test_lookup_returns_the_live_features_of_each_pair(tiny_dataset, tmp_path):
    """Every pair's rows, in the order asked, equal the encoders' outputs (float32 and float16)."""
    dm, module = _setup(tiny_dataset, tmp_path)
    records = dm.split("train")
    order = torch.tensor([5, 0, 3, 3, 1])
    batch = dm.train_dataloader().collate_fn(
        [dm.train_dataloader().dataset[i] for i in order.tolist()]
    )
    with torch.no_grad():
        live_image = module.model.vision(batch["pixel_values"])
        live_text = module.model.text(batch["input_ids"], batch["attention_mask"])
    full = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    image, text, usable = full.lookup(order)
    assert usable.all() and len(records) > 5
    assert torch.allclose(image, live_image, atol=1e-5) and torch.allclose(
        text, live_text, atol=1e-5
    )
    dm.cache = replace(dm.cache, feature_dtype="float16")
    half = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    assert half.store.dtype("text") == torch.float16 and half.nbytes < 0.6 * full.nbytes
    image16, text16, _ = half.lookup(order)
    assert torch.allclose(image16, live_image, atol=1e-2) and torch.allclose(
        text16, live_text, atol=1e-2
    )


def test_a_stage_that_unfreezes_invalidates_the_cache(tiny_dataset, tmp_path):
    dm, module = _setup(tiny_dataset, tmp_path)
    module.feature_cache = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    batches = list(dm.batch_sampler)
    assert all(isinstance(i, tuple) for b in batches[:3] for i in b)  # frozen stage: no images
    assert all(isinstance(i, int) for b in batches[3:] for i in b)  # from the unfreezing stage on
    module.unfreeze("vision", 1)
    assert module.feature_cache is None


def test_fit_with_the_feature_cache_through_the_cli(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    config = tiny_config(
        tmp_path / "c.yaml", split_file, root, tmp_path, **{"data.cache.enabled": True}
    )
    cli_main(["fit", "--config", config, "--no_test", "true"])
    run = sorted((tmp_path / "tonics").glob("version_*"))[-1]
    summary = json.loads((run / "stage_summary.json").read_text())
    assert [s["steps"] for s in summary] == [2, 2, 2]
    assert all(s["mean_loss"] is not None for s in summary)


def test_cache_is_safetensors_and_a_planted_pickle_never_runs(tiny_dataset, tmp_path, caplog):
    dm, module = _setup(tiny_dataset, tmp_path)
    first_text = _all(load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype))[
        1
    ]  # read before the file is overwritten
    key = cache_key(module.model, dm.split("train"), dm.loader.max_text_length, dm.image_limits)
    directory = cache_dir() / "features" / f"features-{key}"  # (other tests add others)
    (path,) = directory.glob("part-*.safetensors")
    assert (directory / "manifest.json").is_file()
    assert path.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then JSON
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Payload()))  # a planted pickle in the cache's place
    again = load_or_compute(module.model, dm.cache_source(), dm.cache.feature_dtype)
    assert not marker.exists()  # never unpickled
    assert str(path) in caplog.text and "not a valid" in caplog.text
    assert torch.equal(first_text, _all(again)[1])  # recomputed, and rewritten as safetensors
    assert path.read_bytes()[8:9] == b"{"


def test_a_training_subset_copies_its_features_from_the_whole_splits_cache(
    tiny_dataset, tmp_path, monkeypatch
):
    """With `data.subset.fraction` below 1 and the whole split's cache complete, the subset's
    cache is copied from it (no encoder runs) and equals the subset's own encoding."""
    from tonics.cache import features

    split_file, root = tiny_dataset
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    options = dict(
        text_encoder="tiny:bert", vision_encoder="tiny:vit", cache=CacheSettings(enabled=True)
    )
    whole = TonicsDataModule(KarpathyReader(split_file, root), **options)
    half = TonicsDataModule(
        KarpathyReader(split_file, root), subset=SubsetSettings(fraction=0.5), **options
    )
    for dm in (whole, half):
        dm.setup("fit")
    encoded = load_or_compute(module.model, replace(half.cache_source(), superset=None), "float32")
    n = len(half.split("train"))
    pairs = torch.arange(n)
    expected = [t.clone() for t in encoded.lookup(pairs)]
    loaded = (encoded.store.image_keys(pairs) >= 0).copy()
    shutil.rmtree(encoded.store.directory)  # the subset's own encoding, kept in memory only
    assert half.cache_source().superset is not None and whole.cache_source().superset is None
    load_or_compute(module.model, whole.cache_source(), "float32")
    calls = []
    real = features.encode_part
    monkeypatch.setattr(features, "encode_part", lambda *a, **k: calls.append(1) or real(*a, **k))
    copied = load_or_compute(module.model, half.cache_source(), "float32")
    assert not calls  # copied, not encoded
    assert 0 < n < len(whole.split("train"))
    for a, b in zip(copied.lookup(pairs), expected, strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    assert ((copied.store.image_keys(pairs) >= 0) == loaded).all()


def test_an_image_rewritten_in_place_is_encoded_again(tmp_path, caplog):
    """The cache is keyed by each image file's size and modification time: the same paths and
    captions over a rewritten image are another cache; untouched files load the old one."""
    from conftest import write_karpathy
    from PIL import Image

    split_file = write_karpathy(tmp_path / "data", n_images=16)
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    options = dict(
        text_encoder="tiny:bert",
        vision_encoder="tiny:vit",
        cache=CacheSettings(enabled=True),
        loader=LoaderSettings(batch_size=8),
    )

    def cache():
        dm = TonicsDataModule(KarpathyReader(split_file, str(tmp_path / "data")), **options)
        dm.setup("fit")
        return load_or_compute(module.model, dm.cache_source(), "float32"), dm

    first, dm = cache()
    with caplog.at_level(logging.INFO, logger="tonics.cache.store"):
        cache()
    assert "loaded" in caplog.text  # the plant's control: nothing changed, the cache is reused
    record = dm.split("train")[0]
    Image.new("RGB", (40, 30), (255, 0, 255)).save(record.image.path)  # same path, new pixels
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tonics.cache.store"):
        second, _ = cache()
    assert "loaded" not in caplog.text
    pair = torch.tensor([0])
    assert not torch.equal(first.lookup(pair)[0], second.lookup(pair)[0])
