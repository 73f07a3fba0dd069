"""Cost of the captioning objective per training step: the demo's encoders (MiniLM, MobileNetV2)
with and without the captioning head of `configs/captioning.yaml`, batch 32, frozen towers and
the top 2 blocks of both open, timed alternately in the same process (forward, backward and an
AdamW step; in-memory batches, image decoding excluded); and greedy captioning of 64 images.

    python benchmarks/caption_step.py [--steps 5] [--batch-size 32]

Prints one JSON line: seconds per step of each arm, the ratio, and captions per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import yaml
from train_step import _batch as train_step_batch

from tonics.model.factory import ModelSpec
from tonics.model.generation import generate
from tonics.train.module import AlignmentModule

CAPTIONING = Path(__file__).parents[1] / "configs" / "captioning.yaml"


def _batch(batch_size: int) -> dict:
    batch = train_step_batch(batch_size)  # the train-step benchmark's in-memory batch
    batch["input_ids"][:, 0], batch["input_ids"][:, -1] = 101, 102  # [CLS] ... [SEP]
    return batch


def _module(captioning: bool, open_blocks: int) -> AlignmentModule:
    torch.manual_seed(0)
    model = yaml.safe_load(CAPTIONING.read_text())["model"] if captioning else {}
    towers = {"text_encoder": "packaged:minilm", "vision_encoder": "packaged:mobilenet_v2"}
    spec = ModelSpec(**{**towers, **model.get("spec", {})})
    module = AlignmentModule(spec, loss=model.get("loss", {}))
    if open_blocks:
        module.unfreeze("text", open_blocks)
        module.unfreeze("vision", open_blocks)
    module.log = lambda *args, **kwargs: None  # no trainer attached
    return module.train()


def _step(module, optimizer, batch) -> float:
    started = time.perf_counter()
    loss = module.training_step(dict(batch, skipped=[]), 0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    """Alternate the two arms step by step; print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    batch = _batch(args.batch_size)
    result = {
        "benchmark": "caption_step",
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
    }
    for open_blocks in (0, 2):
        arms = {
            name: _module(name == "captioning", open_blocks)
            for name in ("contrastive", "captioning")
        }
        optimizers = {
            n: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad])
            for n, m in arms.items()
        }
        times = {name: [] for name in arms}
        for step in range(args.steps + 1):
            for name, module in arms.items():
                took = _step(module, optimizers[name], batch)
                if step:  # the first step warms up
                    times[name].append(took)
        key = "frozen" if not open_blocks else f"top{open_blocks}_open"
        median = {name: statistics.median(t) for name, t in times.items()}
        result[key] = {
            "contrastive_s_per_step": round(median["contrastive"], 3),
            "captioning_s_per_step": round(median["captioning"], 3),
            "ratio": round(median["captioning"] / median["contrastive"], 2),
        }
    module = arms["captioning"].eval()
    with torch.no_grad():
        _, tokens = module.model.image_features_and_tokens(
            batch["pixel_values"][:32].repeat(2, 1, 1, 1)
        )
        started = time.perf_counter()
        generate(module.model.captioner, tokens)
        result["greedy_captions_per_s"] = round(64 / (time.perf_counter() - started), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
