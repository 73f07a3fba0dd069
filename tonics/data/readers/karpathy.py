"""Karpathy split files (`dataset_coco.json`, `dataset_flickr30k.json`): the standard retrieval
splits (COCO 5k test, Flickr30k 1k test) with several captions per image."""

from __future__ import annotations

from pathlib import Path

from tonics.data.pair_columns import PairColumns
from tonics.data.readers.base import DataFormatError, PairReader, clean_caption, load_json


class KarpathyReader(PairReader):
    """Pairs from a Karpathy split file; `restval` counts as train unless `merge_restval` is off."""

    def __init__(self, split_file: str, image_root: str, merge_restval: bool = True) -> None:
        super().__init__()
        self.split_file = split_file
        self.image_root = image_root
        self.merge_restval = merge_restval

    def sources(self) -> list[Path]:
        """The split file."""
        return [Path(self.split_file)]

    def fill(self, columns: PairColumns) -> None:
        """One pair per sentence; images without sentences and empty sentences are skipped."""
        data = load_json(self.split_file, ("images",))
        for n, image in enumerate(data["images"]):
            if "filename" not in image or "split" not in image:
                raise DataFormatError(f"{self.split_file}: images[{n}] lacks 'filename' or 'split'")
            split = image["split"]
            if split == "restval" and self.merge_restval:
                split = "train"
            image_id = str(image.get("cocoid", image.get("imgid", n)))
            path = Path(self.image_root) / image.get("filepath", "") / image["filename"]
            sentences = image.get("sentences") or []
            if not sentences:
                self.skip("image without sentences")
            for k, sentence in enumerate(sentences):
                caption = clean_caption(sentence.get("raw"))
                if not caption:
                    self.skip("empty caption")
                    continue
                columns.add(
                    str(sentence.get("sentid", f"{image_id}-{k}")),
                    caption,
                    split,
                    image_id=image_id,
                    location=str(path),
                    objects=tuple(image.get("objects", ())),
                )
