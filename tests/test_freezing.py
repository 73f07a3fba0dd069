"""Frozen start: which parameters change in each phase; frozen BatchNorm/Dropout stay in eval."""

from __future__ import annotations

import re

import torch

from tonics.model import AlignmentModel, ClipLoss, TextEncoder, VisionEncoder


def _model(vision="tiny:mobilenet_v2"):
    torch.manual_seed(0)
    return AlignmentModel(
        TextEncoder.from_name("tiny:bert"), VisionEncoder.from_name(vision), embed_dim=16
    )


def _snapshot(module):
    return {n: t.detach().clone() for n, t in module.state_dict().items()}


def _train_steps(model, steps=3):
    optimizer = torch.optim.AdamW([p for p in model.parameters()], lr=1e-2)
    model.train()
    for step in range(steps):
        g = torch.Generator().manual_seed(step)
        pixels = torch.randn(4, 3, 32, 32, generator=g)
        ids = torch.randint(1000, 2000, (4, 6), generator=g)
        image, text, scale = model(pixels, ids, torch.ones_like(ids))
        loss = ClipLoss()(image, text, scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _changed(before, after, prefix):
    return {n for n in before if n.startswith(prefix) and not torch.equal(before[n], after[n])}


def test_frozen_phase_trains_only_heads_and_temperature():
    model = _model()
    before = _snapshot(model)
    _train_steps(model)
    after = _snapshot(model)
    assert _changed(before, after, "text.") == set()
    assert _changed(before, after, "vision.") == set()  # BatchNorm running stats included
    assert _changed(before, after, "text_head") and _changed(before, after, "vision_head")
    assert _changed(before, after, "logit_scale")


def test_frozen_encoders_stay_in_eval_mode_when_module_trains():
    model = _model()
    model.train()
    assert not model.text.encoder.training and not model.vision.encoder.training
    assert all(not m.training for m in model.vision.encoder.modules())
    assert model.text_head.training


def test_top_k_unfreezing_changes_only_the_top_blocks():
    model = _model("tiny:vit")
    model.vision.unfreeze(top_k=1)
    model.train()
    blocks = model.vision.encoder.blocks
    assert not blocks[0].training and blocks[1].training
    before = _snapshot(model)
    _train_steps(model)
    changed = _changed(before, _snapshot(model), "vision.")
    assert any(re.search(r"\.layers?\.1\.", n) for n in changed)
    assert not any(re.search(r"\.layers?\.0\.", n) or "embeddings" in n for n in changed)
    assert _changed(before, _snapshot(model), "text.") == set()


def test_whole_unfreezing_trains_every_encoder_part():
    model = _model("tiny:vit")
    model.text.unfreeze()
    before = _snapshot(model)
    _train_steps(model)
    changed = _changed(before, _snapshot(model), "text.")
    assert any("embeddings" in n for n in changed) and any(
        re.search(r"\.layers?\.1\.", n) for n in changed
    )
    assert model.text.encoder.training


def test_logit_scale_starts_at_clip_value_and_is_clamped():
    model = _model()
    assert abs(float(model.scale().detach()) - 1 / 0.07) < 1e-4
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert float(model.scale().detach()) == 100.0


# -- BatchNorm statistics in opened encoders -------------------------------------------------------
import pytest  # noqa: E402

from tonics.model.alignment import batch_norms  # noqa: E402


def _vision_eval_output(model, pixels):
    model.eval()
    with torch.no_grad():
        return model.encode_image(pixels)


def _open_and_train_at_zero_lr(model, pixels, steps=2):
    """Open the top-2 vision blocks, train with encoder lr 0: only BatchNorm stats could move."""
    model.vision.unfreeze(top_k=2)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.head_parameters(), "lr": 1e-2},
            {"params": model.encoder_parameters(), "lr": 0.0, "weight_decay": 0.05},
        ]
    )
    model.train()
    ids = torch.randint(
        1000, 2000, (pixels.shape[0], 6), generator=torch.Generator().manual_seed(1)
    )
    for _ in range(steps):
        image, text, scale = model(pixels * 3 + 1, ids, torch.ones_like(ids))  # shifted statistics
        loss = ClipLoss()(image, text, scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("vision,size", [("tiny:mobilenet_v2", 32), ("packaged:mobilenet_v2", 96)])
def test_opening_at_zero_lr_leaves_evaluation_outputs_unchanged(vision, size):
    model = _model(vision)
    assert batch_norms(model.vision.encoder)  # the test is about BatchNorm towers
    pixels = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    heads = {k: v.clone() for k, v in model.vision_head.state_dict().items()}
    before = model.vision(pixels)
    _open_and_train_at_zero_lr(model, pixels)
    model.vision_head.load_state_dict(heads)  # compare the towers, not the trained heads
    model.eval()
    with torch.no_grad():
        after = model.vision(pixels)
    assert torch.allclose(before, after, rtol=1e-5, atol=0.0)  # relative: tiny towers output ~1e-25
    # and the opened blocks did receive gradients (the BatchNorm affine parameters too)
    opened = [p for p in model.vision.encoder.parameters() if p.requires_grad]
    assert opened and all(p.grad is not None for p in opened)


def test_train_bn_stats_updates_statistics_with_pytorch_momentum():
    torch.manual_seed(0)
    model = AlignmentModel(
        TextEncoder.from_name("tiny:bert"),
        VisionEncoder.from_name("tiny:mobilenet_v2"),
        embed_dim=16,
        train_bn_stats=True,
        bn_momentum=0.1,
    )
    pixels = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    before = model.vision(pixels)
    _open_and_train_at_zero_lr(model, pixels, steps=1)
    opened = [m for m in batch_norms(model.vision.encoder) if m.training]
    assert opened and all(m.momentum == 0.1 for m in opened)
    model.eval()
    with torch.no_grad():
        after = model.vision(pixels)
    assert not torch.allclose(before, after, rtol=1e-3, atol=0.0)


def test_hf_mobilenet_momentum_would_overwrite_statistics():
    # why the default exists: transformers' MobileNetV2 uses momentum 0.997 in PyTorch's meaning
    model = _model("tiny:mobilenet_v2")
    assert any(m.momentum > 0.9 for m in batch_norms(model.vision.encoder))
