"""The built-in scenes dataset as a reader: builds it on first use, then reads its COCO files
(`captions_<split>.json` with `instances_<split>.json`) with the CocoCaptionsReader a user points at
real COCO, or its Karpathy split file with the KarpathyReader."""

from __future__ import annotations

from pathlib import Path

from tonics.data.pair_columns import PairColumns
from tonics.data.readers.base import PairReader
from tonics.data.readers.coco import CocoCaptionsReader
from tonics.data.readers.karpathy import KarpathyReader
from tonics.errors import require_choice

SPLITS = ("train", "val", "test")


class ScenesReader(PairReader):
    """Scenes of several drawings with template captions (see tonics.data.scenes).

    `train_images`/`eval_images` size a smaller build (tests, quick trials); `file_format`
    'coco' (objects from the instances files) or 'karpathy' (objects from the split file)."""

    def __init__(
        self,
        root: str | None = None,
        seed: int = 0,
        train_images: int | None = None,
        eval_images: int | None = None,
        file_format: str = "coco",
        demo_root: str | None = None,
    ) -> None:
        super().__init__()
        require_choice(file_format, ("coco", "karpathy"), "data.reader.init_args.file_format")
        self.root = root
        self.seed = seed
        self.train_images = train_images
        self.eval_images = eval_images
        self.file_format = file_format
        self.demo_root = demo_root
        self.directory: str | None = None  # the build's folder, once `prepare` has made it

    def sizes(self) -> dict[str, int]:
        """Images per split of the build this reader reads."""
        from tonics.data.scenes import FULL_SIZE

        train = self.train_images or FULL_SIZE["train"]
        evaluation = self.eval_images or FULL_SIZE["val"]
        return {"train": train, "val": evaluation, "test": evaluation}

    def prepare(self) -> str:
        """Build the scenes if they are not cached yet; their directory."""
        from tonics.data.scenes import build_scenes

        directory = build_scenes(
            self.root, seed=self.seed, sizes=self.sizes(), demo_root=self.demo_root
        )
        self.directory = str(directory)
        return self.directory

    def _readers(self) -> list[PairReader]:
        directory = self.directory or self.prepare()
        if self.file_format == "karpathy":
            return [KarpathyReader(f"{directory}/dataset_scenes.json", f"{directory}/images")]
        return [
            CocoCaptionsReader(
                f"{directory}/annotations/captions_{split}.json",
                f"{directory}/images/{split}",
                f"{directory}/annotations/instances_{split}.json",
                split=split,
            )
            for split in SPLITS
        ]

    def sources(self) -> list[Path]:
        """The build's COCO files (or its Karpathy split file)."""
        return [path for reader in self._readers() for path in reader.sources()]

    def fill(self, columns: PairColumns) -> None:
        """All scene pairs (train, val, test)."""
        for reader in self._readers():
            reader.fill(columns)
            self.skipped.update(reader.skipped)
            self.skip_examples += reader.skip_examples[: 20 - len(self.skip_examples)]
