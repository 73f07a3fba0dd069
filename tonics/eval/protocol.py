"""Retrieval protocols over a dataset split: encode every image once and every caption, then
compute recall both ways. Works on an exported model or on untrained encoders (a baseline)."""

from __future__ import annotations

import time

import torch

from tonics.data.batches import PairDataset
from tonics.data.records import select_split
from tonics.eval.retrieval import retrieval_metrics


def _baseline(text_encoder: str, vision_encoder: str):
    """Untrained encoders with seeded random heads: the chance-level reference."""
    from tonics.model import (
        AlignmentModel,
        TextEncoder,
        VisionEncoder,
        load_image_processor,
        load_tokenizer,
    )

    torch.manual_seed(0)
    model = AlignmentModel(
        TextEncoder.from_name(text_encoder), VisionEncoder.from_name(vision_encoder)
    ).eval()
    tokenizer, processor = load_tokenizer(text_encoder), load_image_processor(vision_encoder)

    def text(captions):
        tokens = tokenizer(
            captions, padding="longest", truncation=True, max_length=64, return_tensors="pt"
        )
        return model.encode_text(tokens["input_ids"], tokens["attention_mask"])

    return text, model.encode_image, processor


def _zero_shot(encode_text, image_embeddings, records, rows) -> dict:
    """Top-1/5 accuracy over the images' own object labels (COCO categories, demo categories)."""
    from tonics.eval.zeroshot import class_embeddings, zero_shot_accuracy

    label_of = {}
    for r in records:
        if r.objects and r.image_id in rows:
            label_of.setdefault(r.image_id, r.objects[0])
    if len(set(label_of.values())) < 2:
        return {}
    names = sorted(set(label_of.values()))
    order = sorted(label_of, key=rows.get)
    classifier = class_embeddings(encode_text, [n.replace("_", " ").lower() for n in names])
    accuracy = zero_shot_accuracy(
        image_embeddings[[rows[i] for i in order]],
        [names.index(label_of[i]) for i in order],
        classifier,
    )
    return {f"zeroshot_{k}": v for k, v in accuracy.items()} | {"zeroshot_classes": len(names)}


def evaluate_reader(reader, *, split="test", model_dir=None, text_encoder="packaged:minilm",
                    vision_encoder="packaged:mobilenet_v2", batch_size=64) -> dict:  # fmt: skip
    """Retrieval figures for one split of a reader's dataset."""
    records = sorted(select_split(reader.read(), split), key=lambda r: r.image_id)
    if model_dir:
        from tonics.export import load

        model = load(model_dir)
        encode_text, encode_image, processor = (
            model.encode_text,
            model.encode_image,
            model.image_processor,
        )
    else:
        encode_text, encode_image, processor = _baseline(text_encoder, vision_encoder)
    started = time.perf_counter()
    first = {}
    for i, r in enumerate(records):
        first.setdefault(r.image_id, i)
    dataset = PairDataset(records, processor, images_for=set(first.values()))
    images, rows, failed = [], {}, 0
    with torch.no_grad():
        for start in range(0, len(records), batch_size):
            items = [
                dataset[i]
                for i in range(start, min(start + batch_size, len(records)))
                if i in dataset.images_for
            ]
            ok = [it for it in items if it["pixel_values"] is not None]
            failed += len(items) - len(ok)
            if ok:
                images.append(encode_image(torch.stack([it["pixel_values"] for it in ok])))
                for it in ok:
                    rows[it["image_id"]] = len(rows)
        keep = [r for r in records if r.image_id in rows]
        texts = torch.cat(
            [
                encode_text([r.caption for r in keep[s : s + batch_size]])
                for s in range(0, len(keep), batch_size)
            ]
        )
    result = retrieval_metrics(torch.cat(images), texts, [rows[r.image_id] for r in keep])
    zero_shot = _zero_shot(encode_text, torch.cat(images), records, rows)
    return {**zero_shot, "split": split, "model": model_dir or f"untrained {text_encoder} + {vision_encoder} (random heads)",
            "images": len(rows), "captions": len(keep), "images_failed": failed,
            "seconds": round(time.perf_counter() - started, 1), **result.metrics}  # fmt: skip
