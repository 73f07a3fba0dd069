"""The captioning head: its loss against a hand computation, BLEU/CIDEr against the library, greedy
and beam decoding, and a tiny model trained with the captioning loss through `tonics fit`,
resumed exactly, tested (caption figures), exported, and captioning the same in a fresh process
through `tonics caption` as in memory."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from PIL import Image

from tonics.cli import cli_main
from tonics.errors import ConfigError
from tonics.eval.captioning import caption_scores, tokenise
from tonics.model.captioner import CaptionSettings, caption_loss
from tonics.model.factory import ModelSpec
from tonics.train.model_settings import LossSettings

DECODER = {"layers": 1, "heads": 2, "queries": 4, "max_length": 12}


def test_caption_loss_is_teacher_forced_cross_entropy_without_padding():
    # two captions: [5, 1, 2] (real) and [5, 3, pad] (last token is padding)
    input_ids = torch.tensor([[5, 1, 2], [5, 3, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    logits = torch.tensor(
        [
            [[0.0, 2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [9.0] * 6],
            [[0.0, 0.0, 0.0, 3.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0, 0.0], [9.0] * 6],
        ]
    )

    def nll(row, target):  # -log softmax(row)[target]
        return -(row[target] - math.log(sum(math.exp(v) for v in row)))

    # targets: caption 0 predicts 1 then 2; caption 1 predicts 3, then padding (ignored);
    # the last position of each caption predicts nothing
    expected = (
        nll([0, 2, 0, 0, 0, 0], 1) + nll([0, 0, 1, 0, 0, 0], 2) + nll([0, 0, 0, 3, 0, 0], 3)
    ) / 3
    assert caption_loss(logits, input_ids, mask).item() == pytest.approx(expected, rel=1e-6)


def test_bleu_and_cider_equal_the_library_on_a_toy_set():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    generated = {"a": "A red square.", "b": "a blue, round circle"}
    references = {
        "a": ["a red square", "a square in red", "red square on grey"],
        "b": ["a blue circle", "a circle in blue"],
    }
    scores = caption_scores(generated, references)
    truths = {k: [tokenise(r) for r in v] for k, v in references.items()}
    candidates = {k: [tokenise(v)] for k, v in generated.items()}
    assert candidates == {"a": ["a red square"], "b": ["a blue round circle"]}
    bleu, _ = Bleu(4).compute_score(truths, candidates, verbose=0)
    cider, _ = Cider().compute_score(truths, candidates)
    assert scores["BLEU-4"] == pytest.approx(100 * bleu[3])
    assert scores["CIDEr"] == pytest.approx(100 * cider)
    assert caption_scores({"a": "x"}, {}) == {}


def test_bad_decoder_settings_name_their_key():
    with pytest.raises(ConfigError, match="model.spec.captioner: unknown"):
        CaptionSettings.from_dict({"layer": 2})
    with pytest.raises(ConfigError, match="model.spec.captioner.max_length"):
        CaptionSettings.from_dict({"max_length": 2})


def test_beam_of_one_is_greedy_and_beams_are_deterministic():
    from tonics.model.generation import generate
    from tonics.train.module import AlignmentModule

    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(
            text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16, captioner=DECODER
        ),
        loss=LossSettings(caption_weight=1.0),
    )
    _, tokens = module.model.image_features_and_tokens(torch.randn(3, 3, 32, 32))
    head = module.model.captioner
    greedy = generate(head, tokens)
    assert greedy == generate(head, tokens, beams=1)
    assert all(len(ids) <= DECODER["max_length"] - 1 for ids in greedy)
    assert generate(head, tokens, beams=3) == generate(head, tokens, beams=3)
    head.eval()
    context, ids = head.context(tokens), torch.tensor([[101, 2000, 2001]] * 3)
    full = head.logits(context, ids, torch.ones_like(ids))[:, -1]
    torch.testing.assert_close(head.next_logits(context, ids), full)


def _version(directory):
    return sorted((directory / "tonics").glob("version_*"))[-1]


@pytest.fixture(scope="module")
def captioning_runs(tiny_dataset, tmp_path_factory):
    """A full 8-step run with the captioning loss, and one stopped at 3 then resumed to 8."""
    split_file, root = tiny_dataset
    base = tmp_path_factory.mktemp("captioning")

    def run(name, max_steps, ckpt=None):
        directory = base / name
        directory.mkdir(exist_ok=True)
        config = tiny_config(
            directory / "c.yaml",
            split_file,
            root,
            directory,
            **{
                "trainer.max_steps": max_steps,
                "trainer.val_check_interval": 4,
                "model.loss.caption_weight": 1.0,
                "model.spec.captioner": DECODER,
            },
        )
        args = ["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"]
        cli_main(args + (["--ckpt_path", str(ckpt)] if ckpt else []))
        return directory

    full = run("full", 8)
    full_version = _version(full)
    part = run("part", 3)
    run("part", 8, ckpt=_version(part) / "checkpoints" / "last.ckpt")
    return full, full_version, _version(part), root


def test_fit_logs_both_losses_and_resumes_exactly(captioning_runs):
    _, full, part, _ = captioning_runs
    rows = list(csv.DictReader(open(full / "metrics.csv")))
    caption = [float(r["train/caption_loss"]) for r in rows if r.get("train/caption_loss")]
    contrastive = [
        float(r["train/contrastive_loss"]) for r in rows if r.get("train/contrastive_loss")
    ]
    assert len(caption) == 8 and len(contrastive) == 8
    assert any(r.get("val/caption_CIDEr") for r in rows)  # validation captions the images
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(part / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert any(k.startswith("model.captioner.") for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_test_split_reports_caption_figures(captioning_runs, capsys):
    from tonics.train.cli import format_retrieval

    full, version, _, _ = captioning_runs
    config = full / "c.yaml"
    checkpoint = version / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    cli_main(["test", "--config", str(config), "--ckpt_path", str(checkpoint)])
    printed = capsys.readouterr().out
    assert "test/caption_CIDEr" in printed and "test/caption_BLEU-4" in printed
    report = format_retrieval({"test/caption_CIDEr": 12.5, "test/caption_BLEU-4": 3.25})
    assert "BLEU-4 3.25, CIDEr 12.50" in report


def test_exported_model_captions_the_same_in_a_fresh_process(captioning_runs, tmp_path):
    from tonics.model.exported import load
    from tonics.model.generation import generate
    from tonics.train.module import AlignmentModule

    _, version, _, root = captioning_runs
    checkpoint = version / "checkpoints" / "last.ckpt"
    cli_main(["export", str(checkpoint), str(tmp_path / "model")])
    pictures = [str(p) for p in sorted(Path(root).glob("imgs/*.jpg"))[:3]]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tonics.cli",
            "caption",
            "--model",
            str(tmp_path / "model"),
            *pictures,
            str(broken),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = json.loads(out.stdout)
    assert [p["path"] for p in printed] == pictures and "skipped" in out.stderr
    assert all(isinstance(p["caption"], str) for p in printed)
    module = AlignmentModule.load_from_checkpoint(checkpoint, weights_only=False).eval()
    exported = load(tmp_path / "model")
    pixels = exported._pixels([Image.open(p) for p in pictures])
    _, tokens = module.model.image_features_and_tokens(pixels)
    decode = exported.tokenizer.decode
    in_memory = [
        decode(ids, skip_special_tokens=True).strip()
        for ids in generate(module.model.captioner, tokens)
    ]
    assert [p["caption"] for p in printed] == in_memory
    assert "generates captions" in (tmp_path / "model" / "README.md").read_text()


def test_automodel_generate_equals_tonics_caption_and_no_caption_is_empty(
    captioning_runs, tmp_path
):
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    import tonics  # noqa: F401 - registers the model type with the Auto classes

    _, version, _, root = captioning_runs
    cli_main(["export", str(version / "checkpoints" / "last.ckpt"), str(tmp_path / "model")])
    pictures = [str(p) for p in sorted(Path(root).glob("imgs/*.jpg"))[:4]]
    command = [sys.executable, "-m", "tonics.cli", "caption", "--model", str(tmp_path / "model")]
    out = subprocess.run(
        [*command, *pictures, "--beams", "3", "--json"], capture_output=True, text=True, check=True
    )
    by_cli = [p["caption"] for p in json.loads(out.stdout)]
    model = AutoModel.from_pretrained(tmp_path / "model").eval()
    processor = AutoImageProcessor.from_pretrained(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    images = [Image.open(p).convert("RGB") for p in pictures]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    ids = model.generate(pixel_values=pixels, num_beams=3)
    by_automodel = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    assert by_automodel == by_cli
    greedy = tokenizer.batch_decode(model.generate(pixel_values=pixels), skip_special_tokens=True)
    assert all(caption.strip() for caption in by_cli + greedy)


def test_retrieval_report_of_a_captioner_has_caption_figures(
    captioning_runs, tiny_dataset, tmp_path
):
    _, version, _, _ = captioning_runs
    split_file, root = tiny_dataset
    cli_main(["export", str(version / "checkpoints" / "last.ckpt"), str(tmp_path / "model")])
    out = tmp_path / "report.json"
    cli_main(
        [
            "retrieval",
            "--model",
            str(tmp_path / "model"),
            "--karpathy",
            split_file,
            "--image-root",
            root,
            "--split",
            "test",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert report["caption_images"] == report["images"] and "caption_CIDEr" in report


def test_captioning_trains_from_the_prefix_cache(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    config = tiny_config(
        tmp_path / "c.yaml",
        split_file,
        root,
        tmp_path,
        **{
            "model.loss.caption_weight": 1.0,
            "model.spec.captioner": DECODER,
            "data.cache.enabled": True,
            "trainer.limit_val_batches": 0,
        },
    )
    cli_main(["fit", "--config", config, "--no_test", "true", "--checkpoint.monitor", "null"])
    version = _version(tmp_path)
    summary = json.loads((version / "stage_summary.json").read_text())
    paths = [path for stage in summary for path in stage["feature_paths"]]
    assert paths and all(path.startswith("prefix text=0 vision=1") for path in paths), paths
    rows = list(csv.DictReader(open(version / "metrics.csv")))
    losses = [float(r["train/caption_loss"]) for r in rows if r.get("train/caption_loss")]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)


def test_prefix_cache_tokens_equal_live_tokens():
    from tonics.model.captioner import image_tokens
    from tonics.model.tower_split import TowerSplit
    from tonics.train.module import AlignmentModule

    torch.manual_seed(0)
    module = AlignmentModule(
        ModelSpec(
            text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16, captioner=DECODER
        ),
        loss=LossSettings(caption_weight=1.0),
    ).eval()
    pixels = torch.randn(3, 3, 32, 32)
    split = TowerSplit(module.model.vision.encoder, 1)
    with torch.no_grad():
        _, live = module.model.image_features_and_tokens(pixels)
        out = split.vision_output(split.prefix(pixels))

    torch.testing.assert_close(image_tokens(out.last_hidden_state), live)


def test_caption_needs_a_model_with_a_captioning_head(tmp_path, capsys):
    from tonics.export import export_model
    from tonics.train.module import AlignmentModule

    module = AlignmentModule(
        ModelSpec(text_encoder="tiny:bert", vision_encoder="tiny:vit", embed_dim=16)
    )
    export_model(
        module.model,
        tmp_path / "m",
        text_name="tiny:bert",
        vision_name="tiny:vit",
        text_pooling="mean",
        vision_pooling="pooled",
        head="linear",
        run=None,
    )
    picture = tmp_path / "p.png"
    Image.new("RGB", (32, 32), (200, 0, 0)).save(picture)
    with pytest.raises(SystemExit):
        cli_main(["caption", "--model", str(tmp_path / "m"), str(picture)])
    assert "no captioning head" in capsys.readouterr().err


class _ToyHead:
    """A caption head over the vocabulary {bos, eos, a, b} whose next-token logits are a fixed
    random function of the prefix: small enough to search exhaustively."""

    def __init__(self, seed: int, max_length: int) -> None:
        import types

        self.special = {"bos_token_id": 0, "eos_token_id": 1}
        self.settings = types.SimpleNamespace(max_length=max_length)
        self.training = False
        self.seed = seed

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def context(self, tokens):
        return tokens

    def logits_after(self, prefix: tuple[int, ...]) -> torch.Tensor:
        generator = torch.Generator().manual_seed(hash((self.seed, prefix)) % (2**31))
        logits = torch.randn(4, generator=generator) * 2
        logits[0] = -1e9  # bos is never generated
        return logits

    def next_logits(self, context, ids):
        return torch.stack([self.logits_after(tuple(row)) for row in ids.tolist()])


def _exhaustive(
    head: _ToyHead, limit: int, length_penalty: float, min_length: int = 1
) -> list[int]:
    """The best caption by log-probability / length ** penalty over every sequence the decoder
    can emit: among those ended by eos (never before `min_length` words); a sequence cut at
    `limit` tokens (bos included) only when none ends."""
    ended, cut = [], []
    frontier = [((0,), 0.0)]
    while frontier:
        prefix, score = frontier.pop()
        logprobs = head.logits_after(prefix).log_softmax(-1)
        for token in (1, 2, 3):
            if token == 1 and len(prefix) - 1 < min_length:
                continue
            sequence, total = prefix + (token,), score + float(logprobs[token])
            normalised = total / (len(sequence) - 1) ** length_penalty
            if token == 1:
                ended.append((normalised, sequence))
            elif len(sequence) == limit:
                cut.append((normalised, sequence))
            else:
                frontier.append((sequence, total))
    best = max(ended or cut)[1]
    body = list(best[1:])
    return body[: body.index(1)] if 1 in body else body


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_search_of_three_equals_an_exhaustive_search(length_penalty):
    """With two word tokens and captions of at most two, every live prefix fits in three beams:
    beam search must then find the exhaustive optimum (an independent enumeration)."""
    from tonics.model.generation import generate

    for seed in range(25):
        head = _ToyHead(seed, max_length=3)
        found = generate(head, torch.zeros(1, 1, 1), beams=3, length_penalty=length_penalty)[0]
        assert found == _exhaustive(head, 3, length_penalty), seed
    greedy_differs = any(
        generate(_ToyHead(s, 3), torch.zeros(1, 1, 1), beams=1)[0]
        != _exhaustive(_ToyHead(s, 3), 3, 1.0)
        for s in range(25)
    )
    assert greedy_differs  # the reference is not something greedy decoding gets anyway


class _EndsAtOnceHead(_ToyHead):
    """A toy head whose most likely first token is the end token: an empty caption, unless
    decoding holds the end token back."""

    def logits_after(self, prefix):
        logits = super().logits_after(prefix)
        if prefix == (0,):
            logits[1] = 50.0
        return logits


@pytest.mark.parametrize("beams", [1, 3])
def test_no_empty_caption_even_when_the_head_would_end_at_once(beams):
    from tonics.model.generation import generate

    context = torch.zeros(1, 1, 1)
    planted = _EndsAtOnceHead(0, max_length=4)
    assert generate(planted, context, beams=beams, min_length=0) == [[]]  # the plant works
    caption = generate(planted, context, beams=beams)[0]
    assert caption and 1 not in caption and 0 not in caption
    if beams == 3:
        assert caption == _exhaustive(planted, 4, 1.0)
