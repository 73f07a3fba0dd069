"""Frozen-prefix activation cache: a cached-prefix step equals a live step with the same frozen
prefix (outputs and gradients, fp32 and fp16 storage), for every supported tower; unsupported
towers and failed self-checks fall back to live training; the cache file is keyed and safe."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from helpers import tiny_config
from torch.nn.utils.rnn import pad_sequence

from tonics.cache import prefix as prefix_cache
from tonics.cache.prefix import load_or_compute_prefix, prefix_key
from tonics.cli import cli_main
from tonics.data.readers import KarpathyReader
from tonics.model import tower_split
from tonics.model.alignment import FreezableEncoder
from tonics.model.encoders import TextEncoder, VisionEncoder, load_tokenizer
from tonics.model.factory import ModelSpec
from tonics.model.tower_split import TowerSplit, UnsupportedSplit, text_states
from tonics.sampling import Stage
from tonics.sampling.openings import split_of, widest
from tonics.train.datamodule import TonicsDataModule
from tonics.train.module import AlignmentModule
from tonics.train.settings import CacheSettings, LoaderSettings

# A cached step against a live one. fp32 storage: every output and gradient element agrees to
# 1e-5 of its tensor's scale (float reassociation only). fp16 storage rounds the cached
# activations to 11 bits: outputs agree to 5e-3; gradients, which ReLU6 clipping in MobileNetV2
# can move by more element-wise, agree as a whole (cosine >= 0.999, norm within 1%).
FP32_TOLERANCE, FP16_OUTPUT_TOLERANCE, FP16_COSINE, FP16_NORM = 1e-5, 5e-3, 0.999, 0.01
CAPTIONS = ["a dog catching a red frisbee in the park", "cat", "two people riding bicycles"]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


def _step(encoder: FreezableEncoder, run, weights: torch.Tensor):
    """Pooled output and the gradients of a fixed linear loss, dropout seeded."""
    torch.manual_seed(1)
    encoder.zero_grad(set_to_none=True)
    out = run()
    (out * weights).sum().backward()
    # (a trainable parameter the pooling does not use, e.g. an unused pooler, gets no gradient)
    grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
    return out.detach(), grads


def _check_equal(encoder, live, cached, dtype):
    weights = torch.randn(live().shape, generator=torch.Generator().manual_seed(0))
    out_live, grads_live = _step(encoder, live, weights)
    out_cached, grads_cached = _step(encoder, cached, weights)
    assert grads_live and grads_live.keys() == grads_cached.keys()
    if dtype == torch.float16:
        assert _relative(out_cached, out_live) <= FP16_OUTPUT_TOLERANCE
        a = torch.cat([g.flatten() for g in grads_live.values()])
        b = torch.cat([grads_cached[n].flatten() for n in grads_live])
        assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) >= FP16_COSINE
        assert abs(float(b.norm() / a.norm()) - 1) <= FP16_NORM
        return
    assert _relative(out_cached, out_live) <= FP32_TOLERANCE
    # each gradient relative to its own scale, floored at 1% of the largest one: some are zero
    # in exact arithmetic (a key bias under softmax) and only rounding noise remains of them
    largest = max(float(g.abs().max()) for g in grads_live.values())
    for name, grad in grads_live.items():
        scale = max(float(grad.abs().max()), 1e-2 * largest)
        error = float((grads_cached[name] - grad).abs().max())
        assert error <= FP32_TOLERANCE * scale, (name, error, scale)


VISION = [
    ("tiny:vit", "pooled"),
    ("tiny:vit", "mean"),
    ("tiny:clip_vision", "pooled"),
    ("tiny:clip_vision", "cls"),
    ("tiny:mobilenet_v2", "pooled"),
    ("packaged:mobilenet_v2", "pooled"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(("name", "pooling"), VISION)
def test_vision_cached_prefix_step_equals_live(name, pooling, dtype):
    if name == "tiny:mobilenet_v2" and dtype == torch.float16:
        pytest.skip("its random activations underflow fp16: see the self-check test below")
    torch.manual_seed(0)
    encoder = FreezableEncoder(VisionEncoder.from_name(name, pooling))
    encoder.unfreeze(2)
    encoder.train()
    size = 224 if name.startswith("packaged") else 32
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(2))
    split = TowerSplit(encoder.encoder, 2)
    state = split.prefix(pixels).to(dtype).float()
    assert not state.requires_grad
    _check_equal(encoder, lambda: encoder(pixels), lambda: split.suffix(state), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    ("name", "pooling"), [("tiny:bert", "mean"), ("tiny:bert", "cls"), ("packaged:minilm", "mean")]
)
def test_text_cached_prefix_step_equals_live(name, pooling, dtype):
    """Captions are cached unpadded and padded again per batch: still equal, dropout included."""
    torch.manual_seed(0)
    encoder = FreezableEncoder(TextEncoder.from_name(name, pooling))
    k = 1 if name.startswith("tiny") else 2
    encoder.unfreeze(k)
    encoder.train()
    tokens = load_tokenizer(name)(CAPTIONS, padding=True, return_tensors="pt")
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    split = TowerSplit(encoder.encoder, k)
    rows = [s.to(dtype).float() for s in text_states(split, ids, mask)]
    assert [len(r) for r in rows] == mask.sum(1).tolist()
    states = pad_sequence(rows, batch_first=True)
    _check_equal(encoder, lambda: encoder(ids, mask), lambda: split.suffix(states, mask), dtype)


def test_the_self_check_refuses_fp16_storage_that_underflows():
    """The tiny random MobileNetV2's activations entering its top blocks are ~1e-27: fp16 flushes
    them to zero, and the first-batch check refuses the cache rather than train on zeros."""
    torch.manual_seed(0)
    encoder = FreezableEncoder(VisionEncoder.from_name("tiny:mobilenet_v2"))
    towers = {"vision": TowerSplit(encoder.encoder, 2), "text": TowerSplit(encoder.encoder, 0)}
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with pytest.raises(UnsupportedSplit, match="activations differ from live.*float32"):
        prefix_cache._verify(towers, torch.float16)(None, None, pixels, None)
    prefix_cache._verify(towers, torch.float32)(None, None, pixels, None)  # fp32 holds them


def test_unknown_towers_and_whole_openings_are_not_split():
    from transformers import ResNetConfig, ResNetModel

    resnet = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 8], depths=[1, 1]))
    with pytest.raises(UnsupportedSplit, match="ResNetModel"):
        TowerSplit(VisionEncoder(resnet), 1)
    assert split_of({"text": "all", "vision": 2}) is None
    assert split_of({"text": None, "vision": 2}) == (0, 2)
    assert widest(2, 1) == 2 and widest(1, "all") == "all" and widest("all", 3) == "all"
    assert widest(None, 3) == 3 and widest(3, None) == 3


STAGES = [
    Stage(name="frozen", mix={"random": 1.0}, steps=2),
    Stage(name="open", mix={"random": 1.0}, opening={"text": 1, "vision": 1}),
]


def _datamodule(tiny_dataset, tmp_path, dtype="float32"):
    split_file, root = tiny_dataset
    dm = TonicsDataModule(
        KarpathyReader(split_file, root),
        loader=LoaderSettings(batch_size=8),
        cache=CacheSettings(enabled=True, prefix_dtype=dtype),
        stages=STAGES,
        text_encoder="tiny:bert",
        vision_encoder="tiny:vit",
        ontology_cache=str(tmp_path),
    )
    dm.setup("fit")
    return dm


def test_cache_store_round_trip_key_and_damage(tiny_dataset, tmp_path, caplog):
    dm = _datamodule(tiny_dataset, tmp_path, "float16")
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    records = dm.split("train")
    cache = load_or_compute_prefix(module.model, dm.cache_source(), (1, 1), dm.cache.prefix_dtype)
    assert cache.source == "computed" and cache.nbytes > 0
    assert (
        cache.store.dtype("text") == torch.float16 and cache.store.dtype("image") == torch.float16
    )
    rows = cache.store.ragged("text", torch.arange(len(records)))
    assert [len(r) for r in rows] == [
        int(m.sum())
        for m in dm.tokenizer(
            [r.caption for r in records],
            truncation=True,
            max_length=dm.loader.max_text_length,
            padding=True,
            return_tensors="pt",
        )["attention_mask"]
    ]
    again = load_or_compute_prefix(module.model, dm.cache_source(), (1, 1), dm.cache.prefix_dtype)
    assert again.source == "loaded"
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.store.ragged("text", torch.arange(len(records))), rows)
    )

    part = next(cache.store.directory.glob("part-*.safetensors"))
    part.write_bytes(b"\x00" * 16)  # damaged: refused with its name, recomputed
    with caplog.at_level(logging.WARNING):
        again = load_or_compute_prefix(
            module.model, dm.cache_source(), (1, 1), dm.cache.prefix_dtype
        )
    assert part.name in caplog.text and again.source == "computed"
    assert torch.equal(again.store.ragged("text", torch.arange(len(records)))[0], rows[0])

    def key(split=(1, 1), dtype="float16"):
        return prefix_key(module.model, split, records, 64, None, dtype)

    before = key()
    assert key((0, 1)) != before and key(dtype="float32") != before
    module.model.vision_head.weight.data.add_(1.0)  # heads and top blocks are not in the key
    module.model.vision.encoder.blocks[-1].mlp.fc1.weight.data.add_(1.0)
    assert key() == before
    module.model.vision.encoder.blocks[0].mlp.fc1.weight.data.add_(1.0)  # the prefix is
    assert key() != before


def test_a_failed_self_check_refuses_the_cache(tiny_dataset, tmp_path, monkeypatch):
    dm = _datamodule(tiny_dataset, tmp_path)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    original = TowerSplit.suffix
    monkeypatch.setattr(TowerSplit, "suffix", lambda self, *a: original(self, *a) * 1.1)
    with pytest.raises(UnsupportedSplit, match="differ from live"):
        load_or_compute_prefix(module.model, dm.cache_source(), (1, 1), dm.cache.prefix_dtype)


def _fit(tiny_dataset, tmp_path, **overrides):
    split_file, root = tiny_dataset
    tmp_path.mkdir(exist_ok=True)
    stages = [
        {"name": "frozen", "mix": {"random": 1.0}, "steps": 2},
        {
            "name": "open",
            "mix": {"ontology": 0.5, "random": 0.5},
            "nodes": {"granularity": "fine"},
            "opening": {"text": 1, "vision": 1},
        },
    ]
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        root,
        tmp_path,
        **{"data.stages": stages, "trainer.max_steps": 5, **overrides},
    )
    cli_main(["fit", "--config", config, "--no_test", "true"])
    run = sorted((tmp_path / "tonics").glob("version_*"))[-1]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return json.loads((run / "stage_summary.json").read_text()), ckpt["state_dict"]


def test_fit_with_the_prefix_cache_trains_as_live_does(tiny_dataset, tmp_path):
    """Through the CLI: the opened stage runs from the cache (no image decoded) and ends with the
    same weights as a live run (fp32 storage), top blocks and heads alike."""
    live_summary, live = _fit(tiny_dataset, tmp_path / "live")
    summary, cached = _fit(
        tiny_dataset,
        tmp_path / "cached",
        **{"data.cache.enabled": True, "data.cache.prefix_dtype": "float32"},
    )
    assert live_summary[1]["feature_paths"] == {"live": 3}
    assert summary[0]["feature_paths"] == {"pooled": 2}
    assert summary[1]["feature_paths"] == {"prefix text=1 vision=1": 3}
    cache = summary[1]["caches"]["prefix text=1 vision=1"]
    assert cache["bytes"] > 0 and cache["build_s"] >= 0 and summary[1]["mean_step_s"] > 0
    assert summary[0]["caches"]["pooled"]["source"] == "derived from the prefix cache"
    trained = [n for n in live if "layers.1." in n or "layer.1." in n or "head" in n]
    assert trained
    for name in live:
        assert torch.allclose(cached[name], live[name], rtol=1e-4, atol=1e-5), name


def test_an_unsupported_split_trains_live_with_one_line(
    tiny_dataset, tmp_path, monkeypatch, caplog
):
    def unsupported(encoder):
        raise UnsupportedSplit("no prefix split is known for this test")

    monkeypatch.setattr(tower_split, "family_of", unsupported)
    with caplog.at_level(logging.WARNING):
        summary, _ = _fit(tiny_dataset, tmp_path, **{"data.cache.enabled": True})
    assert summary[0]["feature_paths"] == {"pooled": 2}
    assert summary[1]["feature_paths"] == {"live": 3}
    assert any("steps run live: no prefix split is known" in r.getMessage() for r in caplog.records)


def test_a_run_resumed_inside_a_prefix_cached_stage_continues_exactly(tiny_dataset, tmp_path):
    """Resumed mid-way through the opened stage: the same batches, still served by the cache
    (loaded from disk: its key holds only the frozen prefix, which training never changes)."""
    split_file, root = tiny_dataset
    stages = [
        {"name": "frozen", "mix": {"random": 1.0}, "steps": 2},
        {"name": "open", "mix": {"random": 1.0}, "opening": {"text": 1, "vision": 1}},
    ]

    def run(name, max_steps, ckpt=None):
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        record = {
            "class_path": "helpers.RecordBatches",
            "init_args": {"path": str(directory / "batches.jsonl")},
        }
        config = tiny_config(
            directory / "c.yaml",
            split_file,
            root,
            directory,
            **{
                "data.stages": stages,
                "data.cache.enabled": True,
                "trainer.max_steps": max_steps,
                "trainer.limit_val_batches": 0,
                "trainer.callbacks": [record],
            },
        )
        args = ["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"]
        cli_main(args + (["--ckpt_path", str(ckpt)] if ckpt else []))
        return sorted((directory / "tonics").glob("version_*"))[-1]

    full = run("full", 6)
    part = run("part", 4)
    resumed = run("part", 6, ckpt=part / "checkpoints" / "last.ckpt")
    batches = lambda name: (tmp_path / name / "batches.jsonl").read_text().splitlines()  # noqa: E731
    assert batches("part") == batches("full")
    summary = json.loads((resumed / "stage_summary.json").read_text())
    assert summary[1]["feature_paths"] == {"prefix text=1 vision=1": 4}
    assert json.loads((full / "stage_summary.json").read_text())[1]["feature_paths"] == {
        "prefix text=1 vision=1": 4
    }
    assert summary[1]["caches"]["prefix text=1 vision=1"]["source"] == "loaded"
