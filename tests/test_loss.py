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


# -- false negatives and SigLIP ------------------------------------------------------------------
from tonics.model.loss import SigLipLoss, multi_positive_reference, positive_mask, siglip_reference  # noqa: E402

# pairs 0 and 1 share an image; pairs 2 and 4 share a caption; 3 and 5 are alone
KEYS = torch.tensor([[10, 100], [10, 101], [11, 102], [12, 103], [13, 102], [14, 104]])
UNIQUE = torch.tensor([[k, 100 + k] for k in range(6)])


def test_positive_mask_marks_shared_images_and_captions():
    mask = positive_mask(KEYS, KEYS)
    expected = torch.eye(6, dtype=torch.bool)
    for i, j in ((0, 1), (1, 0), (2, 4), (4, 2)):
        expected[i, j] = True
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("mode", ["positive", "mask"])
def test_false_negative_losses_match_reference(mode):
    image, text = _features()
    ours = ClipLoss(false_negatives=mode)(image, text, torch.tensor(7.0, dtype=torch.float64), KEYS)
    reference = multi_positive_reference(image.tolist(), text.tolist(), 7.0, KEYS.tolist(), mode)
    assert ours.item() == pytest.approx(reference, abs=1e-9)
    plain = ClipLoss(false_negatives="ignore")(image, text, torch.tensor(7.0, dtype=torch.float64))
    assert abs(ours.item() - plain.item()) > 1e-3  # the duplicates do change the loss


@pytest.mark.parametrize("mode", ["positive", "mask", "ignore"])
def test_every_mode_equals_plain_infonce_without_duplicates(mode):
    image, text = _features()
    scale = torch.tensor(7.0, dtype=torch.float64)
    ours = ClipLoss(false_negatives=mode)(image, text, scale, UNIQUE).item()
    assert ours == pytest.approx(clip_loss_reference(image.tolist(), text.tolist(), 7.0), abs=1e-9)


def test_multi_positive_hand_checkable_case():
    # two identical captions of two identical images: the best the loss can do is log 2 per row
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    keys = torch.tensor([[1, 5], [2, 5]])
    loss = ClipLoss()(image, image.clone(), torch.tensor(3.0, dtype=torch.float64), keys).item()
    assert loss == pytest.approx(math.log(2), abs=1e-12)
    plain = ClipLoss(false_negatives="ignore")(
        image, image.clone(), torch.tensor(3.0, dtype=torch.float64), keys
    )
    assert plain.item() == pytest.approx(math.log(2), abs=1e-12)  # same value, but a wrong target
    masked = ClipLoss(false_negatives="mask")(
        image, image.clone(), torch.tensor(3.0, dtype=torch.float64), keys
    )
    assert masked.item() == pytest.approx(0.0, abs=1e-12)  # the duplicate is no negative at all


@pytest.mark.parametrize("keys", [None, KEYS])
def test_siglip_matches_reference(keys):
    image, text = _features()
    loss = SigLipLoss(init_bias=-2.0).double()
    ours = loss(image, text, torch.tensor(5.0, dtype=torch.float64), keys).item()
    reference = siglip_reference(
        image.tolist(), text.tolist(), 5.0, -2.0, None if keys is None else keys.tolist()
    )
    assert ours == pytest.approx(reference, abs=1e-9)


def test_siglip_bias_is_learnable():
    image, text = _features()
    loss = SigLipLoss().double()
    loss(image, text, torch.tensor(5.0, dtype=torch.float64)).backward()
    assert loss.logit_bias.grad is not None and float(loss.logit_bias.grad) != 0.0


def _make(kind, local_loss):
    if kind == "siglip":
        return SigLipLoss(local_loss=local_loss, init_bias=-2.0).double()
    return ClipLoss(local_loss=local_loss, false_negatives=kind)


KEYED_CASES = [
    ("positive", False),
    ("positive", True),
    ("mask", True),
    ("siglip", False),
    ("siglip", True),
]


def _rank_loss(loss_fn, rank: int, world: int, n: int, scale: float, keys=None) -> dict:
    """This rank's share of n pairs through `loss_fn`: the mean loss over ranks and every rank's
    feature gradient (rank 0 keeps them)."""
    share = n // world
    image, text = _features(n=n)
    image = image[rank * share : (rank + 1) * share].clone().requires_grad_(True)
    text = text[rank * share : (rank + 1) * share].clone()
    own = None if keys is None else keys[rank * share : (rank + 1) * share]
    scale = torch.tensor(scale, dtype=torch.float64)
    loss = loss_fn(image, text, scale) if own is None else loss_fn(image, text, scale, own)
    loss.backward()
    value = torch.tensor([loss.item()], dtype=torch.float64)
    dist.all_reduce(value)
    gathered = [torch.zeros(share, 5, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(gathered, image.grad)
    return {"loss": value.item() / world, "grad": torch.cat(gathered) / world}


def _two_process_worker(rank, world, port, out):
    """Every two-process case in one process group (one spawn for them all)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    for local_loss in (False, True):
        results["plain", local_loss] = _rank_loss(
            ClipLoss(local_loss=local_loss), rank, world, 8, 10.0
        )
    for kind, local_loss in KEYED_CASES:
        results[kind, local_loss] = _rank_loss(_make(kind, local_loss), rank, world, 6, 7.0, KEYS)
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The losses and gradients two gloo processes compute, per case."""
    out = tmp_path_factory.mktemp("two-processes") / "results.pt"
    port = 29500 + (os.getpid() % 1000)
    mp.spawn(_two_process_worker, args=(2, port, str(out)), nprocs=2, join=True)
    return torch.load(out)


@pytest.mark.slow
@pytest.mark.parametrize("local_loss", [False, True])
def test_two_process_gather_equals_single_process_loss(two_processes, local_loss):
    result = two_processes["plain", local_loss]
    image, text = _features(n=8)
    image.requires_grad_(True)
    single = ClipLoss()(image, text, torch.tensor(10.0, dtype=torch.float64))
    single.backward()
    assert result["loss"] == pytest.approx(single.item(), abs=1e-10)
    # each rank's feature gradient is world x its share of the global one; DDP's averaging undoes it
    assert torch.allclose(result["grad"], image.grad, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("kind,local_loss", KEYED_CASES)
def test_two_process_keyed_losses_equal_single_process(two_processes, kind, local_loss):
    result = two_processes[kind, local_loss]
    image, text = _features(n=6)
    image.requires_grad_(True)
    single = _make(kind, False)(image, text, torch.tensor(7.0, dtype=torch.float64), KEYS)
    single.backward()
    assert result["loss"] == pytest.approx(single.item(), abs=1e-10)
    assert torch.allclose(result["grad"], image.grad, atol=1e-10)


def test_pair_keys_match_normalised_captions_and_images():
    from tonics.data.records import pair_key

    assert pair_key("a", "A dog.")[1] == pair_key("b", "a  dog")[1]
    assert pair_key("a", "a dog")[0] == pair_key("a", "a cat")[0]
    assert pair_key("a", "a dog")[0] != pair_key("b", "a dog")[0]
    assert pair_key("a", "a dog")[1] != pair_key("a", "a cat")[1]


def test_batch_statistics_count_a_true_match_as_a_hit():
    from tonics.train.module import batch_statistics

    # rows 0 and 1 are the same image with two captions; text 1 is most similar to image 0
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[0.9, 0.1], [1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([[1, 10], [1, 11], [2, 12]])
    with_keys = batch_statistics(image, text, torch.tensor(10.0), keys)
    without = batch_statistics(image, text, torch.tensor(10.0))
    assert with_keys["acc_i2t"] == 1.0 and without["acc_i2t"] < 1.0
    assert with_keys["false_negative_rows"] == pytest.approx(2 / 3)
    assert with_keys["hardness_max"] == pytest.approx(0.1)  # only true negatives count
