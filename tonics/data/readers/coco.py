"""MS-COCO 2014/2017 `captions_*.json`, with optional `instances_*.json` object labels."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tonics.data.pair_columns import PairColumns
from tonics.data.readers.base import DataFormatError, PairReader, clean_caption, load_json


def split_from_filename(path: str | Path) -> str:
    """'captions_val2017.json' -> 'val'; 'captions_train2014.json', 'captions_train.json' ->
    'train'; 'captions_test.json' -> 'test'; else 'train'."""
    match = re.search(r"(?:^|[_-])(train|val|test)(?:\d{4})?(?=[._-]|$)", Path(path).name)
    return match.group(1) if match else "train"


def read_instance_labels(path: str | Path) -> dict[int, tuple[str, ...]]:
    """Image id -> sorted category labels from a COCO instances file: a category's WordNet
    `synset` where the file gives one (LVIS, tonics scenes), else its name."""
    data = load_json(path, ("categories", "annotations"))
    names = {}
    for category in data["categories"]:
        if "id" not in category or "name" not in category:
            raise DataFormatError(f"{path}: a category lacks 'id' or 'name': {category}")
        names[category["id"]] = category.get("synset") or category["name"]
    labels: dict[int, set[str]] = defaultdict(set)
    for ann in data["annotations"]:
        category = names.get(ann.get("category_id"))
        if category is None:
            raise DataFormatError(
                f"{path}: annotation {ann.get('id')} has category_id {ann.get('category_id')} "
                "not listed in 'categories'"
            )
        labels[ann["image_id"]].add(category)
    return {image_id: tuple(sorted(cats)) for image_id, cats in labels.items()}


class CocoCaptionsReader(PairReader):
    """Pairs from a COCO captions file; image files resolved under `image_root`."""

    def __init__(
        self,
        captions_file: str,
        image_root: str,
        instances_file: str | None = None,
        split: str | None = None,
    ) -> None:
        super().__init__()
        self.captions_file = captions_file
        self.image_root = image_root
        self.instances_file = instances_file
        self.split = split

    def sources(self) -> list[Path]:
        """The captions file and the instances file."""
        return [Path(p) for p in (self.captions_file, self.instances_file) if p]

    def fill(self, columns: PairColumns) -> None:
        """One pair per caption annotation; unknown image ids and empty captions are skipped."""
        data = load_json(self.captions_file, ("images", "annotations"))
        files = {}
        for image in data["images"]:
            if "id" not in image or "file_name" not in image:
                raise DataFormatError(f"{self.captions_file}: an image lacks 'id' or 'file_name'")
            files[image["id"]] = image["file_name"]
        labels = read_instance_labels(self.instances_file) if self.instances_file else {}
        split = self.split or split_from_filename(self.captions_file)
        for ann in data["annotations"]:
            image_id = ann.get("image_id")
            if image_id not in files:
                self.skip("caption with an image_id not in 'images'")
                continue
            caption = clean_caption(ann.get("caption"))
            if not caption:
                self.skip("empty caption")
                continue
            columns.add(
                f"coco-{ann.get('id', len(columns))}",
                caption,
                split,
                image_id=str(image_id),
                location=str(Path(self.image_root) / files[image_id]),
                objects=labels.get(image_id, ()),
            )
