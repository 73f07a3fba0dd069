"""Write the scenes in the files a COCO user already has: `captions_<split>.json` and
`instances_<split>.json` (COCO 2017 layout; categories carry their WordNet synset, as LVIS's do)
and a Karpathy split file, so the readers a user points at real COCO read them unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from tonics.data.scenes.catalogue import Category
from tonics.data.scenes.layout import CANVAS, ScenePlan

INFO = {
    "description": "tonics scenes: drawings composed into scenes, captions composed by templates "
    "from the drawings' human-written names",
    "version": "1",
}


def file_name(plan: ScenePlan) -> str:
    """The image's file name inside its split folder."""
    return f"{plan.image_id:06d}.jpg"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _annotations(chosen_plans, chosen, boxes, captions, category_id) -> tuple[list, list]:
    """The caption and instance annotations of the chosen scenes (ids: image id * 10 + n)."""
    caption_anns, instance_anns = [], []
    for plan, k in zip(chosen_plans, chosen):
        for n, text in enumerate(captions[k]):
            caption_anns.append(
                {"id": plan.image_id * 10 + n, "image_id": plan.image_id, "caption": text}
            )
        for n, (placed, box) in enumerate(zip(plan.objects, boxes[k], strict=True)):
            instance_anns.append(
                {
                    "id": plan.image_id * 10 + n,
                    "image_id": plan.image_id,
                    "category_id": category_id[placed.drawing.category],
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    return caption_anns, instance_anns


def write_coco(
    out: Path,
    plans: list[ScenePlan],
    boxes: list[list[list[int]]],
    captions: list[list[str]],
    categories: list[Category],
) -> dict[str, Path]:
    """The COCO files of every split under `out/annotations`; name -> path."""
    category_id = {c.synset: n + 1 for n, c in enumerate(categories)}
    category_list = [
        {
            "id": category_id[c.synset],
            "name": c.name,
            "supercategory": c.supercategory,
            "synset": c.synset,
        }
        for c in categories
    ]
    written = {}
    for split in ("train", "val", "test"):
        chosen = [k for k, p in enumerate(plans) if p.split == split]
        images = [
            {
                "id": plans[k].image_id,
                "file_name": file_name(plans[k]),
                "width": CANVAS,
                "height": CANVAS,
            }
            for k in chosen
        ]
        caption_anns, instance_anns = _annotations(
            [plans[k] for k in chosen], chosen, boxes, captions, category_id
        )
        base = {"info": INFO, "licenses": [], "images": images}
        for kind, entries in (("captions", caption_anns), ("instances", instance_anns)):
            path = out / "annotations" / f"{kind}_{split}.json"
            extra = {"categories": category_list} if kind == "instances" else {}
            _write_json(path, {**base, "annotations": entries, **extra})
            written[f"{kind}_{split}"] = path
    return written


def write_karpathy(out: Path, plans: list[ScenePlan], captions: list[list[str]]) -> Path:
    """The Karpathy split file (`dataset_scenes.json`); image paths relative to `out/images`."""
    images = []
    for plan, texts in zip(plans, captions, strict=True):
        images.append(
            {
                "filepath": plan.split,
                "filename": file_name(plan),
                "imgid": plan.image_id,
                "cocoid": plan.image_id,
                "split": plan.split,
                "objects": sorted({o.drawing.category for o in plan.objects}),
                "drawings": [o.drawing.path for o in plan.objects],  # under the demo's images/
                "background": plan.background,
                "sentences": [
                    {
                        "raw": t,
                        "tokens": t.replace(",", "").replace(":", "").split(),
                        "sentid": plan.image_id * 10 + n,
                    }
                    for n, t in enumerate(texts)
                ],
            }
        )
    path = out / "dataset_scenes.json"
    _write_json(path, {"dataset": "tonics-scenes", "images": images})
    return path
