"""Shared pieces of the benchmarks: a timed training step with the packaged encoders."""

from __future__ import annotations

import time

import torch


def packaged_step_seconds(batch_size: int = 32, steps: int = 5, unfrozen: bool = False) -> float:
    """Median wall time of one optimiser step (packaged MiniLM + MobileNetV2, random inputs)."""
    from tonics.model import AlignmentModel, ClipLoss, TextEncoder, VisionEncoder

    torch.manual_seed(0)
    model = AlignmentModel(
        TextEncoder.from_name("packaged:minilm"), VisionEncoder.from_name("packaged:mobilenet_v2")
    )
    if unfrozen:
        model.text.unfreeze()
        model.vision.unfreeze()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = ClipLoss()
    pixels = torch.randn(batch_size, 3, 224, 224)
    ids = torch.randint(1000, 8000, (batch_size, 16))
    mask = torch.ones_like(ids)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        image, text, scale = model(pixels, ids, mask)
        loss = loss_fn(image, text, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]
