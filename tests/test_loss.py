"""InfoNCE: parity with CLIP's formula, and the all-gathered loss under two gloo processes."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from tonics.model.loss import ClipLoss, clip_loss_reference


def _features(n=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)
    return image, text


def test_loss_matches_reference_formula():
    image, text = _features()
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    ours = ClipLoss()(image, text, scale).item()
    reference = clip_loss_reference(image.tolist(), text.tolist(), float(scale))
    assert abs(ours - reference) < 1e-6


def test_loss_hand_checkable_case():
    # identical unit vectors on the diagonal, orthogonal elsewhere: loss = log(1 + (n-1) e^-s)
    image = torch.eye(3, dtype=torch.float64)
    loss = ClipLoss()(image, image.clone(), torch.tensor(2.0, dtype=torch.float64)).item()
    assert loss == pytest.approx(math.log(1 + 2 * math.exp(-2.0)), abs=1e-12)


def _worker(rank, world, port, local_loss, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    image, text = _features(n=8)
    image = image[rank * 4 : (rank + 1) * 4].clone().requires_grad_(True)
    text = text[rank * 4 : (rank + 1) * 4].clone().requires_grad_(True)
    loss = ClipLoss(local_loss=local_loss)(image, text, torch.tensor(10.0, dtype=torch.float64))
    loss.backward()
    value = torch.tensor([loss.item()], dtype=torch.float64)
    dist.all_reduce(value)
    gathered = [torch.zeros(4, 5, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(gathered, image.grad)
    if rank == 0:
        torch.save({"loss": value.item() / world, "grad": torch.cat(gathered) / world}, out)
    dist.destroy_process_group()


@pytest.mark.parametrize("local_loss", [False, True])
def test_two_process_gather_equals_single_process_loss(tmp_path, local_loss):
    out = tmp_path / "result.pt"
    port = 29500 + (os.getpid() % 1000) + int(local_loss)
    mp.spawn(_worker, args=(2, port, local_loss, str(out)), nprocs=2, join=True)
    result = torch.load(out)
    image, text = _features(n=8)
    image.requires_grad_(True)
    single = ClipLoss()(image, text, torch.tensor(10.0, dtype=torch.float64))
    single.backward()
    assert result["loss"] == pytest.approx(single.item(), abs=1e-10)
    # each rank's feature gradient is world x its share of the global one; DDP's averaging undoes it
    assert torch.allclose(result["grad"], image.grad, atol=1e-10)
