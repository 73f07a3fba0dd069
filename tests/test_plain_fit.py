"""The Lightning module is usable without tonics' data module: `trainer.fit(module,
train_dataloaders=loader)` trains it (what a library user and `benchmarks/train_step.py` do)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from tonics.model.factory import ModelSpec
from tonics.train.module import AlignmentModule


def _batches(n: int, batch_size: int = 4) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        ids = torch.randint(5, 90, (batch_size, 8), generator=g)
        batches.append(
            {
                "pixel_values": torch.randn(batch_size, 3, 32, 32, generator=g),
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "indices": torch.arange(batch_size),
                "has_image": torch.ones(batch_size, dtype=torch.bool),
                "skipped": [],
                "cached": False,
                "image_ids": [str(i) for i in range(batch_size)],
                "pair_keys": torch.arange(batch_size).repeat(2, 1).T.contiguous(),
            }
        )
    return batches


def test_a_plain_trainer_fit_with_a_loader_trains_the_heads(tmp_path):
    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    before = module.model.text_head.weight.detach().clone()
    loader = torch.utils.data.DataLoader(_batches(3), batch_size=None)
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(module, train_dataloaders=loader)
    assert trainer.global_step == 3
    assert not torch.equal(module.model.text_head.weight, before)
