"""Training step throughput: `tonics` (Lightning, AlignmentModule) against a minimal hand-written
PyTorch loop with the same encoders, heads, InfoNCE, optimizer, batch size and in-memory data, in
the same process; frozen and unfrozen; the frozen-stage feature cache against live frozen; and,
with the top 2 blocks of both towers open, the frozen-prefix cache (fp16 activations) against
live encoding (image decoding excluded from both, so the live path is flattered).

    python benchmarks/train_step.py [--steps 6] [--batch-size 32]

Prints one JSON line (pairs/s and ratios) and a Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from common import results_dir, written_by

from tonics.model.factory import ModelSpec
from tonics.model.loss import ClipLoss
from tonics.train.module import AlignmentModule


def _batch(batch_size: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 8000, (batch_size, 16), generator=g)
    return {
        "pixel_values": torch.randn(batch_size, 3, 224, 224, generator=g),
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "indices": torch.arange(batch_size),
        "has_image": torch.ones(batch_size, dtype=torch.bool),
        "skipped": [],
        "cached": False,
        "image_ids": [str(i) for i in range(batch_size)],
        "pair_keys": torch.arange(batch_size).repeat(2, 1).T.contiguous(),
    }


def _module(unfrozen: bool) -> AlignmentModule:
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="packaged:minilm", vision_encoder="packaged:mobilenet_v2")
    )
    if unfrozen:
        module.unfreeze("text", "all")
        module.unfreeze("vision", "all")
    return module


class _StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter() - self._start)


def lightning_step(unfrozen: bool, steps: int, batch_size: int) -> float:
    """Median step seconds inside `Trainer.fit` (the first step is warm-up)."""
    module = _module(unfrozen)
    batch = _batch(batch_size)
    loader = torch.utils.data.DataLoader([batch] * (steps + 1), batch_size=None)
    timer = _StepTimer()
    trainer = pl.Trainer(
        max_steps=steps + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, train_dataloaders=loader)
    return sorted(timer.times[1:])[len(timer.times[1:]) // 2]


def plain_step(unfrozen: bool, steps: int, batch_size: int) -> float:
    """Median step seconds of the minimal loop: forward, InfoNCE, backward, AdamW, zero_grad."""
    module = _module(unfrozen)
    model, loss_fn = module.model.train(), ClipLoss()
    heads = [*model.text_head.parameters(), *model.vision_head.parameters(), model.logit_scale]
    optimizer = torch.optim.AdamW(
        [{"params": heads, "lr": 1e-3}, {"params": model.encoder_parameters(), "lr": 1e-5}]
    )
    batch = _batch(batch_size)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        image, text, scale = model(
            batch["pixel_values"], batch["input_ids"], batch["attention_mask"]
        )
        loss = loss_fn(image, text, scale)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]


def cached_step(steps: int, batch_size: int) -> float:
    """Median step seconds of the frozen-stage path: heads on cached pooled features."""
    module = _module(False)
    model, loss_fn = module.model.train(), ClipLoss()
    optimizer = torch.optim.AdamW(
        [*model.text_head.parameters(), *model.vision_head.parameters(), model.logit_scale]
    )
    image_features, text_features = torch.randn(batch_size, 1280), torch.randn(batch_size, 384)
    times = []
    for _ in range(steps * 20 + 1):
        started = time.perf_counter()
        image = torch.nn.functional.normalize(model.vision_head(image_features), dim=-1)
        text = torch.nn.functional.normalize(model.text_head(text_features), dim=-1)
        loss = loss_fn(image, text, model.scale())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]


def prefix_vs_live_top2(steps: int, batch_size: int) -> tuple[float, float, int]:
    """(cached-prefix step s, live step s, cache bytes per pair): `tonics` training steps inside
    `Trainer.fit` with the top 2 blocks of both towers open. Live and cached batches alternate in
    one run, so that machine noise hits both alike (medians of each)."""
    import tempfile

    from tonics.cache.prefix import PrefixCache, TowerSplit, text_states
    from tonics.cache.store import load_or_build

    module = _module(False)
    module.unfreeze("text", 2)
    module.unfreeze("vision", 2)
    model, live = module.model, _batch(batch_size)
    ids, mask, pixels = live["input_ids"], live["attention_mask"], live["pixel_values"]
    texts = [t.half() for t in text_states(TowerSplit(model.text.encoder, 2), ids, mask)]
    arrays = {
        "text": torch.cat(texts),
        "text_offsets": torch.tensor([0] + [len(t) for t in texts]).cumsum(0),
        "image": TowerSplit(model.vision.encoder, 2).prefix(pixels).half(),
        "pair_image": torch.arange(batch_size),
    }
    store = load_or_build(
        Path(tempfile.mkdtemp()) / "prefix",
        "bench",
        [str(i) for i in range(batch_size)],
        lambda pairs, description: (arrays, {}),
    )
    module.prefix_caches[(2, 2)] = PrefixCache(split=(2, 2), store=store).bind(model)
    cached = {**live, "pixel_values": None, "cached": True}
    loader = torch.utils.data.DataLoader([live, cached] * (steps + 1), batch_size=None)
    timer = _StepTimer()
    trainer = pl.Trainer(
        max_steps=2 * (steps + 1),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, train_dataloaders=loader)
    live_s, cached_s = (
        sorted(t[1:])[len(t[1:]) // 2] for t in (timer.times[0::2], timer.times[1::2])
    )
    return cached_s, live_s, module.prefix_caches[(2, 2)].nbytes // batch_size


def main() -> None:
    """Measure all paths and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    n, steps = args.batch_size, args.steps
    result = {"benchmark": "train_step", "batch_size": n, "threads": torch.get_num_threads()}
    rows = []
    # first, in a fresh process as in a real top-k run: after a whole-tower backward pass in the
    # same process the live top-2 step measures up to 2x faster (CPU kernel state; seen here)
    prefix, live, per_pair = prefix_vs_live_top2(steps, n)
    for phase, unfrozen in (("frozen", False), ("unfrozen", True)):
        plain, light = plain_step(unfrozen, steps, n), lightning_step(unfrozen, steps, n)
        result[f"{phase}_plain_pairs_per_s"] = round(n / plain, 2)
        result[f"{phase}_tonics_pairs_per_s"] = round(n / light, 2)
        result[f"{phase}_tonics_over_plain"] = round(plain / light, 3)
        result[f"{phase}_tonics_step_s"] = round(light, 3)
        rows.append(f"| {phase} | {n / plain:.1f} | {n / light:.1f} | {plain / light:.3f} |")
    cached = cached_step(steps, n)
    result["cached_frozen_pairs_per_s"] = round(n / cached, 1)
    result["cached_over_live_frozen"] = round(result["frozen_tonics_step_s"] / cached, 1)
    result["top2_live_pairs_per_s"] = round(n / live, 2)
    result["top2_prefix_cache_pairs_per_s"] = round(n / prefix, 1)
    result["top2_prefix_over_live"] = round(live / prefix, 1)
    result["prefix_cache_bytes_per_pair"] = per_pair
    rows.append(f"| top-2 blocks of both towers, live | - | {n / live:.1f} | - |")
    rows.append(
        f"| top-2 blocks, frozen-prefix cache | - | {n / prefix:.1f} | {live / prefix:.1f}x live |"
    )
    result["goal"] = (
        "tonics/plain >= 0.95 unfrozen; cache >= 5x frozen; prefix cache >= 5x live top-2"
    )
    result["written_by"] = written_by()
    (results_dir() / "train_step.json").write_text(json.dumps(result) + "\n")
    print(json.dumps(result))
    print(
        "| phase | plain loop pairs/s | tonics pairs/s | ratio |\n|---|---|---|---|\n"
        + "\n".join(rows),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
