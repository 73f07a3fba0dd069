"""Retrieval protocols over a dataset split: encode every image once and every caption, then
compute recall both ways (and zero-shot accuracy when the data has object labels). Works on an
exported model or on untrained encoders (a baseline)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from tonics.data.batches import image_once_loader
from tonics.data.records import select_split, sorted_by_image, splits_of
from tonics.errors import InputError
from tonics.eval.retrieval import EmbeddedSplit, collect_embeddings, retrieval_metrics


@dataclass
class Towers:
    """What a protocol needs of a model: its preprocessing and its two embedding functions."""

    tokenizer: object
    image_processor: object
    encode_tokens: object  # (input_ids, attention_mask) -> normalised embeddings
    encode_pixels: object  # pixel_values -> normalised embeddings
    caption_pixels: object = None  # pixel_values -> captions (a model with a captioning head)

    def encode_captions(self, captions: list[str]) -> torch.Tensor:
        """Embeddings of raw captions (for zero-shot prompts)."""
        tokens = self.tokenizer(
            captions, padding="longest", truncation=True, max_length=64, return_tensors="pt"
        )
        return self.encode_tokens(tokens["input_ids"], tokens["attention_mask"])


def _features(output) -> torch.Tensor:
    """A `get_*_features` result: a tensor (transformers 4) or an output whose `pooler_output`
    holds the projected features (transformers 5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def exported_towers(model_dir: str, *, allow_pickle: bool = False) -> Towers:
    """The towers of a model written by `tonics export`, or of any dual encoder `transformers`
    loads with `get_text_features` / `get_image_features` (CLIPModel, SiglipModel,
    VisionTextDualEncoderModel...), so a reference model is measured on the same protocol. The
    directory is read as data (`tonics.model.directories`)."""
    from pathlib import Path

    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    from tonics.model.directories import SAFE, check_model_directory, pil_processor_options
    from tonics.model.exported import load
    from tonics.model.hf_model import MODEL_TYPE

    directory = Path(model_dir)
    config = check_model_directory(directory, allow_pickle=allow_pickle)
    if config.get("model_type") == MODEL_TYPE:
        model = load(model_dir)
        captions = model.caption if model.hf.caption_head is not None else None
        return Towers(
            model.tokenizer,
            model.image_processor,
            model.encode_tokens,
            model.encode_image,
            captions,
        )
    model = AutoModel.from_pretrained(directory, use_safetensors=not allow_pickle, **SAFE).eval()
    if not (hasattr(model, "get_text_features") and hasattr(model, "get_image_features")):
        raise InputError(
            f"--model {model_dir}: {type(model).__name__} has no get_text_features/"
            "get_image_features; give a dual encoder (CLIP, SigLIP, a tonics export)"
        )
    tokenizer = AutoTokenizer.from_pretrained(directory, **SAFE)

    @torch.no_grad()
    def encode_tokens(input_ids, attention_mask):
        return torch.nn.functional.normalize(
            _features(model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)),
            dim=-1,
        )

    @torch.no_grad()
    def encode_pixels(pixels):
        return torch.nn.functional.normalize(
            _features(model.get_image_features(pixel_values=pixels)), dim=-1
        )

    processor = AutoImageProcessor.from_pretrained(directory, **SAFE, **pil_processor_options())
    return Towers(tokenizer, processor, encode_tokens, encode_pixels)


def baseline_towers(text_encoder: str, vision_encoder: str) -> Towers:
    """Untrained encoders with seeded random heads: the chance-level reference."""
    from tonics.model import load_image_processor, load_tokenizer
    from tonics.model.factory import ModelSpec, create_model

    torch.manual_seed(0)
    model = create_model(ModelSpec(text_encoder=text_encoder, vision_encoder=vision_encoder)).eval()
    return Towers(
        load_tokenizer(text_encoder),
        load_image_processor(vision_encoder),
        model.encode_text,
        model.encode_image,
    )


def _zero_shot(towers: Towers, split: EmbeddedSplit, records) -> dict:
    """Top-1/5 accuracy over the images' own object labels (COCO categories, demo categories)."""
    from tonics.eval.zeroshot import class_embeddings, zero_shot_accuracy

    label_of = {}
    for r in records:
        if r.objects:
            label_of.setdefault(r.image_id, r.objects[0])
    rows = [k for k, image_id in enumerate(split.image_ids) if image_id in label_of]
    names = sorted({label_of[split.image_ids[k]] for k in rows})
    if len(names) < 2:
        return {}
    classifier = class_embeddings(
        towers.encode_captions, [n.replace("_", " ").lower() for n in names]
    )
    labels = [names.index(label_of[split.image_ids[k]]) for k in rows]
    accuracy = zero_shot_accuracy(split.images[rows], labels, classifier)
    return {f"zeroshot_{k}": v for k, v in accuracy.items()} | {"zeroshot_classes": len(names)}


def _hard_figures(split: EmbeddedSplit, split_records, all_records, result) -> dict:
    """Within-object R@K (objects extracted from the captions, as at validation) and
    caption-novel R@K (captions never seen verbatim in the reader's training split) and R@K on
    seen and unseen object combinations (images whose objects never shared a training image)."""
    from tonics.eval.composition import composition_metrics, unseen_combinations
    from tonics.eval.within_object import (
        caption_annotations,
        caption_novel_metrics,
        within_object_metrics,
    )

    if split.kept is None:
        return {}
    evaluated = split_records[0].split if split_records else None
    train = [r for r in all_records if r.split == "train"]
    objects, novel = caption_annotations(split_records, train)
    figures = within_object_metrics(
        split.images, split.texts, split.text_to_image, [objects[k] for k in split.kept]
    )
    if train and evaluated != "train":
        unseen = unseen_combinations(split_records, train)
        figures |= composition_metrics(
            result.text_to_image_ranks,
            result.image_to_text_ranks,
            split.text_to_image,
            [unseen[k] for k in split.kept],
        )
    if train and evaluated != "train":  # novel means "not in a training split": else n/a
        novel_of_kept = [novel[k] for k in split.kept]
        figures |= caption_novel_metrics(
            split.images, split.texts, split.text_to_image, novel_of_kept
        )
    return figures


@torch.no_grad()
def choose_split(records) -> str:
    """The split to evaluate when none is named: 'test', else the data's only split."""
    present = splits_of(records)
    if "test" in present:
        return "test"
    if len(present) == 1:
        print(
            f"tonics: evaluating every pair: the data has one split, '{present[0]}'",
            file=sys.stderr,
        )
        return present[0]
    raise InputError(f"the data has splits {present} and no 'test'; name one with --split")


def embed_split(towers: Towers, records, batch_size: int, split: str) -> tuple[EmbeddedSplit, int]:
    """Every caption and each image once through the towers; (embeddings, images that failed)."""
    chunks, failed = [], 0
    loader = image_once_loader(
        records, towers.image_processor, towers.tokenizer, batch_size=batch_size
    )
    for batch in tqdm(loader, desc=f"retrieval: encoding {split}", unit="batch", mininterval=2.0):
        failed += len(batch["skipped"])
        pixels, indices = batch["pixel_values"], batch["indices"]
        images = towers.encode_pixels(pixels) if pixels is not None else None
        texts = (
            towers.encode_tokens(batch["input_ids"], batch["attention_mask"])
            if len(indices)
            else None
        )
        chunks.append(
            (texts, images, batch["image_ids"], batch["has_image"], indices, len(batch["skipped"]))
        )
    embedded = collect_embeddings(chunks)
    if embedded is None:
        raise InputError(f"split '{split}': no image could be loaded ({failed} failed)")
    return embedded, failed


def evaluate_reader(
    reader,
    *,
    split="test",
    model_dir=None,
    allow_pickle=False,
    text_encoder="packaged:minilm",
    vision_encoder="packaged:mobilenet_v2",
    batch_size=64,
) -> dict:
    """Retrieval figures for one split of a reader's dataset (`split` None: 'test' when the data
    has it, else its only split, said on stderr; several splits and no test: an error)."""
    all_records = reader.read()
    split = split or choose_split(all_records)
    records = sorted_by_image(select_split(all_records, split))
    towers = (
        exported_towers(model_dir, allow_pickle=allow_pickle)
        if model_dir
        else baseline_towers(text_encoder, vision_encoder)
    )
    started = time.perf_counter()
    embedded, failed = embed_split(towers, records, batch_size, split)
    result = retrieval_metrics(embedded.images, embedded.texts, embedded.text_to_image)
    hard = _hard_figures(embedded, records, all_records, result)
    model = model_dir or f"untrained {text_encoder} + {vision_encoder} (random heads)"
    captions = _caption_figures(towers, records, batch_size) if towers.caption_pixels else {}
    return {
        **captions,
        **_zero_shot(towers, embedded, records),
        "split": split,
        "model": model,
        "images": len(embedded.image_ids),
        "captions": len(embedded.texts),
        "images_failed": failed,
        "seconds": round(time.perf_counter() - started, 1),
        **result.metrics,
        **hard,
    }


def _caption_figures(towers: Towers, records, batch_size: int) -> dict[str, float]:
    """BLEU-4 and CIDEr of the model's greedy caption of each image of the split against that
    image's captions (`caption_BLEU-4`, `caption_CIDEr`, `caption_images`); images that fail to
    load are left out, as in retrieval."""
    from tonics.data.images import load_image
    from tonics.eval.captioning import caption_scores

    references: dict[str, list[str]] = {}
    first: dict[str, object] = {}
    for record in records:
        references.setdefault(record.image_id, []).append(record.caption)
        first.setdefault(record.image_id, record.image)
    generated: dict[str, str] = {}
    ids = list(first)
    for start in range(0, len(ids), batch_size):
        loaded = [(i, load_image(first[i])[0]) for i in ids[start : start + batch_size]]
        loaded = [(i, image) for i, image in loaded if image is not None]
        if not loaded:
            continue
        pixels = towers.image_processor(images=[im for _, im in loaded], return_tensors="pt")
        captions = towers.caption_pixels(pixels["pixel_values"])
        generated.update({i: c for (i, _), c in zip(loaded, captions)})
    return {f"caption_{k}": v for k, v in caption_scores(generated, references).items()}
