"""The built-in demo dataset as a reader: builds it on first use, then reads it with the same
KarpathyReader that COCO users use."""

from __future__ import annotations

from tonics.data.readers.karpathy import KarpathyReader


class DemoReader(KarpathyReader):
    """OpenClipart + emoji pairs with real human-written captions (see tonics.data.demo)."""

    def __init__(self, root: str | None = None, seed: int = 0) -> None:
        from tonics.data.demo import demo_dir

        directory = demo_dir(root)
        super().__init__(str(directory / "dataset_demo.json"), str(directory / "images"))
        self.root = root
        self.seed = seed

    def prepare(self) -> None:
        """Build the demo files if they are not cached yet."""
        from tonics.data.demo import build_demo

        build_demo(self.root, seed=self.seed)
